//! Container processes. The daemon never forks-and-setns itself: it starts its own binary as
//! `netd __enter ...`, a fresh single-threaded process that enters the container (netns, a
//! private mount namespace with the container's /etc files, UTS) and then execs the command.
//! `netd exec` uses the same entry.
use std::{ffi::CString, fs::File, os::fd::AsFd, path::Path};

use nix::{
    mount::{mount, MsFlags},
    sched::{setns, unshare, CloneFlags},
    unistd::{execvp, sethostname},
};

/// A command running this very binary: `/proc/self/exe`, which the kernel resolves to the
/// running executable even when its file was replaced or deleted on disk (an upgrade while the
/// daemon runs), so the helper is always the daemon's own version. argv[0] stays `netd`.
pub fn own_binary() -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0("netd");
    cmd
}

/// What `__enter` needs to become the container.
#[derive(Debug, Clone, clap::Args)]
pub struct EnterArgs {
    /// The netns to run in: always given, so a command never runs in whatever netns its
    /// starter happens to be in (`--network host` passes the daemon's bind-mounted one).
    #[arg(long)]
    pub netns: String,
    #[arg(long)]
    pub hosts: Option<String>,
    #[arg(long)]
    pub resolv: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// KEY=VALUE for the command's environment (repeatable).
    #[arg(long)]
    pub env: Vec<String>,
    #[arg(last = true, required = true)]
    pub cmd: Vec<String>,
}

impl EnterArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec!["__enter".to_string(), "--netns".into(), self.netns.clone()];
        for (flag, value) in [("--hosts", &self.hosts), ("--resolv", &self.resolv), ("--hostname", &self.hostname)] {
            if let Some(v) = value {
                args.push(flag.into());
                args.push(v.clone());
            }
        }
        for kv in &self.env {
            args.push("--env".into());
            args.push(kv.clone());
        }
        args.push("--".into());
        args.extend(self.cmd.iter().cloned());
        args
    }
}

/// Enters the container and execs its command; returns only on failure.
pub fn enter_and_exec(args: &EnterArgs) -> anyhow::Error {
    match enter(args) {
        Ok(()) => {}
        Err(e) => return e,
    }
    let argv: Vec<CString> = match args.cmd.iter().map(|a| CString::new(a.as_str())).collect() {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    if let Err(e) = default_signals() {
        return anyhow::Error::new(e).context("reset signal dispositions");
    }
    match execvp(&argv[0], &argv) {
        Ok(never) => match never {},
        // The errno stays reachable (`main` turns it into Docker's exit codes).
        Err(e) => anyhow::Error::new(e).context(format!("exec {}", args.cmd[0])),
    }
}

/// Every signal at its default and none blocked, as a Docker container's command starts: an
/// ignored signal stays ignored across exec, and Rust's runtime ignores SIGPIPE here (a
/// daemon started from a shell's background job may ignore SIGINT and SIGQUIT too; a test
/// harness was seen ignoring signal 32).
fn default_signals() -> nix::Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    // The raw syscall: glibc's sigaction refuses the signals it keeps for itself (32, 33).
    // All zero is SIG_DFL, no flags, no mask, in every architecture's kernel `sigaction`.
    let default = [0u64; 4];
    for sig in (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP) {
        // SAFETY: `default` outlives the call and is at least the kernel's `sigaction` size;
        // no old action is asked for; 8 is the kernel's sigset size.
        let set =
            unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, default.as_ptr(), std::ptr::null::<u64>(), 8usize) };
        if set != 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

fn enter(args: &EnterArgs) -> anyhow::Result<()> {
    let netns = &args.netns;
    let ns = File::open(netns).map_err(|e| anyhow::anyhow!("open netns {netns}: {e}"))?;
    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS)?;
    // Private propagation so the bind mounts below stay in this process's view.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
    for (src, dst) in [(&args.hosts, "/etc/hosts"), (&args.resolv, "/etc/resolv.conf")] {
        if let Some(src) = src {
            if Path::new(src).exists() {
                mount(Some(src.as_str()), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| anyhow::anyhow!("bind-mount {src} on {dst}: {e}"))?;
            }
        }
    }
    if let Some(h) = &args.hostname {
        sethostname(h)?;
    }
    for kv in &args.env {
        match kv.split_once('=') {
            // SAFETY: this process is single-threaded (`__enter` runs before any thread is
            // started) and about to exec.
            Some((k, v)) if !k.is_empty() => unsafe { std::env::set_var(k, v) },
            _ => anyhow::bail!("invalid environment variable {kv:?}: expected KEY=VALUE"),
        }
    }
    Ok(())
}
