//! Running child commands as named steps, and turning their failures into exit codes.
//! Describing and bounding commands is `netd_cmd`'s: steps here run with the terminal, as
//! long as they take (a build, the test suite, the bench).
use std::{
    os::unix::process::ExitStatusExt,
    process::{Command, ExitCode, ExitStatus},
    time::Duration,
};

use anyhow::{Context, Result};
use netd_cmd::describe;

/// A step whose command ran and exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed ({status})")]
pub struct StepFailed {
    pub step: String,
    pub status: ExitStatus,
}

/// Prints the step and its command line, runs it with inherited stdio, and fails unless it
/// exits 0.
pub fn run_step(step: &str, command: &mut Command) -> Result<()> {
    println!("[xtask] {step}: `{}`", describe(command));
    let status = command.status().with_context(|| format!("{step}: cannot start `{}`", describe(command)))?;
    if status.success() {
        Ok(())
    } else {
        Err(StepFailed { step: step.to_owned(), status }.into())
    }
}

/// Like [`run_step`], but SIGINT and SIGTERM do not stop xtask while the child runs: a
/// Ctrl-C reaches the child from the terminal's process group by itself, and xtask waits
/// until the child has finished (e.g. the bench's clean-up) and then exits with its status,
/// instead of giving the prompt back while the child is still tearing down.
pub fn run_step_waiting(step: &str, command: &mut Command) -> Result<()> {
    let _shield = ShieldSignals::install()?;
    run_step(step, command)
}

/// While alive, SIGINT and SIGTERM do nothing to this process. A no-op handler, not SIG_IGN:
/// an ignored signal stays ignored across exec, a handled one goes back to its default, so
/// the children started meanwhile still get them as usual. The old handlers come back on drop.
struct ShieldSignals {
    old: Vec<(libc::c_int, libc::sigaction)>,
}

extern "C" fn ignore_signal(_: libc::c_int) {}

impl ShieldSignals {
    fn install() -> Result<Self> {
        let mut shield = Self { old: Vec::new() };
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that does
            // nothing (async-signal-safe).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, &action, &mut old) != 0 {
                    return Err(std::io::Error::last_os_error()).context("installing a signal handler");
                }
                shield.old.push((sig, old));
            }
        }
        Ok(shield)
    }
}

impl Drop for ShieldSignals {
    fn drop(&mut self) {
        for (sig, old) in self.old.drain(..).rev() {
            // SAFETY: restores the disposition sigaction returned.
            unsafe {
                libc::sigaction(sig, &old, std::ptr::null_mut());
            }
        }
    }
}

/// How long a probe (`dpkg-query`, `rustup component list`, `bpf-linker --version`) may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a probe command quietly: its stdout if it exits 0, `None` if it fails, is absent or
/// does not finish within [`PROBE_TIMEOUT`].
pub fn probe(command: &mut Command) -> Option<String> {
    netd_cmd::run(command, netd_cmd::Limit::new(PROBE_TIMEOUT)).ok()
}

/// A failed child's own exit code (so `cargo xtask test` exits like `cargo test`), 128 + N
/// for a child killed by signal N (as a shell reports it), else 1.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<StepFailed>())
        .and_then(|failed| failed.status.code().or_else(|| failed.status.signal().map(|sig| 128 + sig)))
        .and_then(|code| u8::try_from(code).ok())
        .filter(|&code| code != 0)
        .map(ExitCode::from)
        .unwrap_or(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signal shield is process-wide: tests that install it (and send xtask signals) must
    /// not overlap, or one test's guard restores the default SIGTERM action while another's
    /// child is signalling, and the default action ends the whole test binary.
    static SIGNAL_SHIELD: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn run_step_reports_the_step_and_keeps_the_exit_code() {
        let err = run_step("probe step", Command::new("sh").args(["-c", "exit 7"])).unwrap_err();
        assert!(err.to_string().starts_with("probe step failed"), "{err}");
        assert_eq!(exit_code(&err), ExitCode::from(7));
    }

    #[test]
    fn run_step_names_a_missing_program() {
        let err = run_step("missing", &mut Command::new("/nonexistent/xtask-none")).unwrap_err();
        assert!(format!("{err:#}").starts_with("missing: cannot start"), "{err:#}");
        assert_eq!(exit_code(&err), ExitCode::FAILURE);
    }

    #[test]
    fn a_child_killed_by_a_signal_exits_128_plus_it() {
        let err = run_step("killed", Command::new("sh").args(["-c", "kill -KILL $$"])).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::from(128 + 9));
    }

    #[test]
    fn run_step_waiting_outlives_a_sigterm_and_keeps_the_exit_code() {
        // The child signals xtask (its parent), then exits 5 a little later: xtask must still
        // be there to collect the status.
        let _serial = SIGNAL_SHIELD.lock().unwrap_or_else(|e| e.into_inner());
        let err = run_step_waiting("shielded", Command::new("sh").args(["-c", "kill -TERM $PPID; sleep 0.2; exit 5"]))
            .unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::from(5));
    }

    #[test]
    fn run_step_waiting_leaves_the_childs_signals_at_their_defaults() {
        // Were SIGINT ignored (SIG_IGN is inherited across exec), the shell would exit 0.
        let _serial = SIGNAL_SHIELD.lock().unwrap_or_else(|e| e.into_inner());
        let err = run_step_waiting("child", Command::new("sh").args(["-c", "kill -INT $$; exit 0"])).unwrap_err();
        assert_eq!(exit_code(&err), ExitCode::from(128 + 2));
    }

    #[test]
    fn probe_returns_stdout_only_on_success() {
        assert_eq!(probe(Command::new("echo").arg("hi")).as_deref(), Some("hi\n"));
        assert_eq!(probe(&mut Command::new("false")), None);
        assert_eq!(probe(&mut Command::new("/nonexistent/xtask-none")), None);
    }
}
