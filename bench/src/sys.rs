//! Process, namespace and mount helpers shared by every topology. Commands run through
//! `netd_cmd` (time bounds, output, pidfds); what is the bench's own is here: the Ctrl-C
//! handling, and that a run's commands end early when it is interrupted.
//!
//! Every child the bench starts runs in its own process group, so a Ctrl-C in the terminal
//! reaches only the bench itself: it then stops its children by PID and tears down what it
//! built, in order (RAII guards), instead of having dockerd or a daemon die under it.

use std::{
    ffi::OsStr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use netd_cmd::Limit;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Installs the SIGINT/SIGTERM/SIGHUP handler: the first signal asks the run to stop and clean
/// up; the third one exits at once (leaving whatever is left behind).
pub fn install_signal_handler() -> Result<()> {
    ctrlc::set_handler(|| {
        let n = SIGNALS.fetch_add(1, Ordering::SeqCst) + 1;
        INTERRUPTED.store(true, Ordering::SeqCst);
        match n {
            1 => eprintln!("\ninterrupted: stopping and cleaning up (Ctrl-C twice more to abandon cleanup)"),
            2 => eprintln!("\ncleanup in progress; one more Ctrl-C exits without it"),
            _ => std::process::exit(130),
        }
    })
    .context("installing the signal handler")
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn check_interrupted() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// A command in its own process group with stdin closed.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    own_group(Command::new(program))
}

/// `taskset -c CPU nsenter --net=NETNS PROGRAM` ([`netd_cmd::placed`]) in its own process
/// group with stdin closed: network namespace only, pinned to one CPU when `cpu` is given;
/// the child's PID is the program's PID.
pub fn netns_command(netns: &Path, cpu: Option<usize>, program: impl AsRef<OsStr>) -> Command {
    own_group(netd_cmd::placed(program, Some(netns), cpu))
}

fn own_group(mut c: Command) -> Command {
    c.stdin(Stdio::null()).process_group(0);
    c
}

/// At most `timeout`, and (unless `abort_on_interrupt` is false, for tear-down) no longer
/// than the run is not interrupted.
fn limit(timeout: Duration, abort_on_interrupt: bool) -> Limit<'static> {
    let limit = Limit::new(timeout);
    if abort_on_interrupt {
        limit.stop_when(&interrupted)
    } else {
        limit
    }
}

/// Waits for `child`, reading its stdout/stderr (if piped), and kills it (SIGKILL to its PID)
/// on the deadline or when the run is interrupted.
pub fn wait_output(child: Child, timeout: Duration, what: &str) -> Result<Output> {
    Ok(netd_cmd::wait_output(child, what, limit(timeout, true))?)
}

/// Runs a command to completion within `timeout`; error (with its stderr) on non-zero exit.
/// Gives up early when the run is interrupted.
pub fn run_timeout(c: &mut Command, timeout: Duration) -> Result<String> {
    Ok(netd_cmd::run(c, limit(timeout, true))?)
}

/// Like [`run_timeout`], but also after an interrupt: for tear-down that must finish (bounded
/// by `timeout`) and whose failure the caller handles.
pub fn run_cleanup(c: &mut Command, timeout: Duration) -> Result<String> {
    Ok(netd_cmd::run(c, limit(timeout, false))?)
}

/// Runs a set-up/tear-down command (2 minutes at most).
pub fn run(c: &mut Command) -> Result<String> {
    run_timeout(c, Duration::from_secs(120))
}

/// Tear-down: runs even after an interrupt (bounded by its timeout); a failure is reported
/// and does not stop the rest of the cleanup.
pub fn run_quiet(c: &mut Command) {
    if let Err(e) = run_cleanup(c, Duration::from_secs(60)) {
        eprintln!("cleanup: {e:#}");
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL after `grace`) when dropped.
pub struct ChildGuard {
    child: Child,
    what: String,
    grace: Duration,
}

impl ChildGuard {
    pub fn spawn(c: &mut Command, what: impl Into<String>, grace: Duration) -> Result<Self> {
        let what = what.into();
        let child = c.spawn().with_context(|| format!("starting {what}"))?;
        Ok(Self { child, what, grace })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ok(Some(status)) once the process has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = netd_cmd::signal_child(&mut self.child, libc::SIGTERM);
        if let Ok(Some(_)) = netd_cmd::wait_timeout(&mut self.child, self.grace) {
            return;
        }
        eprintln!("cleanup: {} (pid {}) ignored SIGTERM for {:?}; killing it", self.what, self.child.id(), self.grace);
        netd_cmd::kill_child(&mut self.child);
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> Result<Self> {
        run(command("ip").args(["netns", "add", name]))?;
        let ns = Self { name: name.to_string() };
        run(command("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n NAME ARGS...`
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        run(command("ip").arg("-n").arg(&self.name).args(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        run_quiet(command("ip").args(["netns", "del", &self.name]));
    }
}

/// Only directories the bench made are ever unmounted or removed: absolute paths at least
/// two levels deep (`/tmp/nb-…`, `/sys/fs/bpf/nb-…`), never `/` or a top-level directory.
fn safe_to_clean(dir: &Path) -> bool {
    dir.is_absolute() && dir.components().count() >= 3
}

/// Mount points at or below `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    if !safe_to_clean(dir) {
        return Vec::new();
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily unmounts everything at or below `dir` (mounts left by dockerd or netd).
pub fn unmount_all_under(dir: &Path) {
    for m in mounts_under(dir) {
        if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
            if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
                eprintln!("cleanup: umount {}: {}", m.display(), std::io::Error::last_os_error());
            }
        }
    }
}

/// Removes a directory tree after unmounting whatever is mounted inside it; never crosses
/// into a mount that could not be removed.
pub fn remove_tree(dir: &Path) {
    if !safe_to_clean(dir) || !dir.exists() {
        return;
    }
    unmount_all_under(dir);
    if !mounts_under(dir).is_empty() {
        eprintln!("cleanup: {} still has mounts; leaving it", dir.display());
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("cleanup: removing {}: {e}", dir.display());
    }
}

/// Polls `cond` every 20 ms until it is true or `timeout` passes; gives up when interrupted.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        check_interrupted()?;
        match cond() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_err {
                Some(e) => e.context(format!("{what}: not ready after {timeout:?}")),
                None => anyhow!("{what}: not ready after {timeout:?}"),
            });
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The machine's CPU time so far from /proc/stat (all CPUs, in clock ticks): (busy, total);
/// busy is all but idle and iowait. None when /proc/stat does not say.
pub fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().map(|f| f.parse().ok()).collect::<Option<_>>()?;
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some((total - idle, total))
}

/// The share of CPU time busy between two `cpu_ticks` readings, in percent.
pub fn busy_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> Option<f64> {
    let ((b0, t0), (b1, t1)) = (before?, after?);
    (t1 > t0).then(|| (b1 - b0) as f64 * 100.0 / (t1 - t0) as f64)
}

/// Network namespaces alive in the kernel (the `net_namespace` slab's active objects), also
/// those deleted but not yet torn down; None when /proc/slabinfo does not say.
pub fn net_namespaces() -> Option<u64> {
    std::fs::read_to_string("/proc/slabinfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("net_namespace "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// After many namespaces were deleted: waits (at most `timeout`) until the kernel's
/// asynchronous tear-down is done — the count is back near `before`, or has stopped falling
/// for 5 s (others on the machine may hold namespaces too). A fixed 2 s without a count.
pub fn settle_netns(before: Option<u64>, timeout: Duration) {
    let (Some(before), Some(mut last)) = (before, net_namespaces()) else {
        thread::sleep(Duration::from_secs(2));
        return;
    };
    let start = Instant::now();
    let mut last_fall = start;
    while start.elapsed() < timeout && last_fall.elapsed() < Duration::from_secs(5) {
        if last <= before + 2 {
            return;
        }
        thread::sleep(Duration::from_millis(100));
        let Some(now) = net_namespaces() else { return };
        if now < last {
            last_fall = Instant::now();
        }
        last = now;
    }
}

/// Whether the netns of process `pid` has a TCP socket listening on `port` (IPv4 or a
/// dual-stack IPv6 socket, as iperf3 opens), read from /proc/PID/net/tcp{,6}, which show
/// that process's network namespace.
pub fn tcp_listening(pid: u32, port: u16) -> Result<bool> {
    let mut table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"))
        .with_context(|| format!("reading /proc/{pid}/net/tcp"))?;
    table.push_str(&std::fs::read_to_string(format!("/proc/{pid}/net/tcp6")).unwrap_or_default());
    let want = format!(":{port:04X}");
    Ok(table.lines().filter(|l| !l.trim_start().starts_with("sl")).any(|l| {
        let mut f = l.split_whitespace();
        let local = f.nth(1).unwrap_or("");
        let state = f.nth(1).unwrap_or("");
        local.ends_with(&want) && state == "0A"
    }))
}
