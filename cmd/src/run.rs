//! Running a command to completion within a time bound, with its output.
use std::{
    io::{self, Read},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::{describe, kill_child, Process};

/// How often the stop condition is checked while a child runs.
const POLL: Duration = Duration::from_millis(10);

/// How long a child may run: at most `timeout`, and no longer than a `stop` condition (if
/// any) stays false, e.g. "the user pressed Ctrl-C". A child over its limit is killed.
#[derive(Clone, Copy)]
pub struct Limit<'a> {
    timeout: Duration,
    stop: Option<&'a dyn Fn() -> bool>,
}

impl<'a> Limit<'a> {
    /// At most `timeout` (`Duration::MAX`: no time bound).
    pub const fn new(timeout: Duration) -> Self {
        Self { timeout, stop: None }
    }

    /// Also ends the child (with [`Error::Interrupted`]) as soon as `stop()` is true.
    pub fn stop_when(self, stop: &'a dyn Fn() -> bool) -> Self {
        Self { stop: Some(stop), ..self }
    }

    fn stopped(&self) -> bool {
        self.stop.is_some_and(|stop| stop())
    }
}

/// Why running a command failed. The `Display` texts are what callers print (through
/// `anyhow`'s `{:#}` the source follows after ": ").
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started (missing, not executable, ...).
    #[error("starting `{command}`")]
    Start {
        command: String,
        #[source]
        source: io::Error,
    },
    /// Waiting for the child failed (it was killed).
    #[error("waiting for {what}")]
    Wait {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The child ran past its timeout and was killed.
    #[error("{what}: timed out after {timeout:?}")]
    TimedOut { what: String, timeout: Duration },
    /// The child exited, but its stdout or stderr stayed open until the timeout: a process it
    /// started (and that this crate does not end) still holds them.
    #[error("{what}: exited, but a process it started kept its output open for {timeout:?}")]
    OutputOpen { what: String, timeout: Duration },
    /// The limit's stop condition turned true; the child was killed.
    #[error("interrupted")]
    Interrupted,
    /// The child exited unsuccessfully; `detail` is the end of its stderr (or stdout).
    #[error("`{command}` failed ({status}): {detail}")]
    Failed { command: String, status: ExitStatus, detail: String },
}

/// Runs `command` with stdin from /dev/null (as [`Command::output`] does) and stdout/stderr
/// captured, within `limit`. The exit status is the caller's to judge.
pub fn output(command: &mut Command, limit: Limit) -> Result<Output, Error> {
    let what = describe(command);
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Start { command: describe(command), source })?;
    wait_output(child, &what, limit)
}

/// Runs `command` like [`output`] and returns its stdout; a non-zero exit is
/// [`Error::Failed`] with the last lines of its stderr (or of its stdout when stderr is empty).
pub fn run(command: &mut Command, limit: Limit) -> Result<String, Error> {
    let out = output(command, limit)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let msg = match stderr.trim() {
            "" => stdout.trim(),
            msg => msg,
        };
        return Err(Error::Failed { command: describe(command), status: out.status, detail: last_lines(msg, 6) });
    }
    Ok(stdout)
}

/// Waits for a spawned `child` within `limit`, reading its stdout and stderr (those that are
/// piped; the others come back empty). Over the limit, the child (only it, by its own PID) is
/// killed and reaped. `what` names it in errors.
pub fn wait_output(mut child: Child, what: &str, limit: Limit) -> Result<Output, Error> {
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut readers = 0;
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>),
        child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>),
    ];
    for (index, stream) in streams.into_iter().enumerate() {
        let Some(mut stream) = stream else { continue };
        let tx = tx.clone();
        readers += 1;
        // Not joined: when a descendant keeps the pipe open past the limit, the thread is
        // left to finish on its own rather than holding up the caller.
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            let _ = tx.send((index, bytes));
        });
    }
    drop(tx);
    let left = |limit: &Limit| limit.timeout.saturating_sub(start.elapsed());
    let over = |limit: &Limit| -> Option<Error> {
        if limit.stopped() {
            Some(Error::Interrupted)
        } else if left(limit).is_zero() {
            Some(Error::TimedOut { what: what.to_owned(), timeout: limit.timeout })
        } else {
            None
        }
    };

    // Wakes up as soon as the child exits (the pidfd is opened before the child is reaped, so
    // it is the child's); without one, checks every POLL.
    let exited = Process::open(child.id()).ok();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                kill_child(&mut child);
                return Err(Error::Wait { what: what.to_owned(), source });
            }
        }
        if let Some(err) = over(&limit) {
            kill_child(&mut child);
            return Err(err);
        }
        let slice = match limit.stop {
            Some(_) => POLL.min(left(&limit)),
            None => left(&limit),
        };
        match &exited {
            Some(process) => {
                process.wait_exit(slice);
            }
            None => thread::sleep(POLL.min(slice)),
        }
    };

    let mut captured = [Vec::new(), Vec::new()];
    while readers > 0 {
        match rx.recv_timeout(POLL.min(left(&limit))) {
            Ok((index, bytes)) => {
                captured[index] = bytes;
                readers -= 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => match over(&limit) {
                Some(Error::TimedOut { what, timeout }) => return Err(Error::OutputOpen { what, timeout }),
                Some(err) => return Err(err),
                None => {}
            },
            // A reader thread ended without sending (it cannot panic): nothing more to read.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let [stdout, stderr] = captured;
    Ok(Output { status, stdout, stderr })
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::Process;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    const LONG: Limit = Limit::new(Duration::from_secs(30));

    #[test]
    fn run_returns_stdout_and_reports_failures_with_their_stderr() {
        assert_eq!(run(&mut sh("echo hi; echo noise >&2"), LONG).unwrap(), "hi\n");
        let err = run(&mut sh("echo out; echo oops >&2; exit 3"), LONG).unwrap_err();
        assert_eq!(err.to_string(), "`sh -c echo out; echo oops >&2; exit 3` failed (exit status: 3): oops");
        // Without stderr, the end of stdout (the last 6 lines, on one line).
        let err = run(&mut sh("seq 1 10; exit 1"), LONG).unwrap_err();
        assert!(err.to_string().ends_with("): 5 | 6 | 7 | 8 | 9 | 10"), "{err}");
    }

    #[test]
    fn output_keeps_the_status_and_both_streams() {
        let out = output(&mut sh("printf a; printf b >&2; exit 4"), LONG).unwrap();
        assert_eq!(out.status.code(), Some(4));
        assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"a"[..], &b"b"[..]));
        // stdin is /dev/null: `cat` ends at once instead of waiting for a terminal.
        assert_eq!(run(&mut Command::new("cat"), LONG).unwrap(), "");
    }

    #[test]
    fn a_missing_program_is_a_start_error_with_the_cause() {
        let err = run(&mut Command::new("/nonexistent/netd-cmd-none"), LONG).unwrap_err();
        assert_eq!(err.to_string(), "starting `/nonexistent/netd-cmd-none`");
        let source = std::error::Error::source(&err).unwrap();
        let io = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }

    /// A `sleep 30` the test started in the background of a shell; killed (by pidfd) on drop,
    /// also when the test panics.
    struct Background(Option<Process>);

    impl Background {
        /// Reads the pid the shell wrote to `pidfile` and opens the process (a `sleep`).
        fn from_pidfile(pidfile: &PathBuf) -> Self {
            let deadline = Instant::now() + Duration::from_secs(10);
            let pid = loop {
                let text = std::fs::read_to_string(pidfile).unwrap_or_default();
                if let Some(pid) = text.strip_suffix('\n').and_then(|p| p.parse().ok()) {
                    break pid;
                }
                assert!(Instant::now() < deadline, "no pid in {}", pidfile.display());
                thread::sleep(Duration::from_millis(10));
            };
            let _ = std::fs::remove_file(pidfile);
            let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap();
            Self(Some(Process::open_checked(pid, |p| comm(p).trim() == "sleep").expect("the sleep")))
        }
    }

    impl Drop for Background {
        fn drop(&mut self) {
            if let Some(p) = self.0.take() {
                let _ = p.signal(libc::SIGKILL);
                assert!(p.wait_exit(Duration::from_secs(5)) || std::thread::panicking());
            }
        }
    }

    fn pidfile(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("netd-cmd-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_timeout_kills_only_its_own_child_and_returns_in_time() {
        // The shell leaves a `sleep` in the background holding the stdout pipe, then becomes
        // a `sleep` itself (exec: the child's PID).
        let file = pidfile("timeout");
        let script = format!("sleep 30 & echo $! > {}; exec sleep 30", file.display());
        let mut command = sh(&script);
        let child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let own = Process::open(child.id()).unwrap();
        let started = Instant::now();
        let err = wait_output(child, "the shell", Limit::new(Duration::from_millis(500)));
        let took = started.elapsed();
        let background = Background::from_pidfile(&file);
        let err = err.unwrap_err();
        assert_eq!(err.to_string(), "the shell: timed out after 500ms");
        assert!(took < Duration::from_secs(5), "took {took:?}");
        assert!(!own.is_alive(), "the child itself was not killed");
        let sleeper = background.0.as_ref().unwrap();
        assert!(sleeper.is_alive(), "a process the child started was killed too");
    }

    #[test]
    fn output_held_open_by_a_descendant_is_bounded_too() {
        let file = pidfile("open");
        let script = format!("sleep 30 & echo $! > {}; exit 0", file.display());
        let started = Instant::now();
        let err = output(&mut sh(&script), Limit::new(Duration::from_millis(500))).unwrap_err();
        let _background = Background::from_pidfile(&file);
        assert!(matches!(err, Error::OutputOpen { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn the_stop_condition_ends_the_child() {
        let stop = || true;
        let started = Instant::now();
        let err =
            output(Command::new("sleep").arg("30"), Limit::new(Duration::from_secs(30)).stop_when(&stop)).unwrap_err();
        assert!(matches!(err, Error::Interrupted), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn no_time_bound_with_duration_max() {
        assert_eq!(run(&mut sh("echo x"), Limit::new(Duration::MAX)).unwrap(), "x\n");
    }
}
