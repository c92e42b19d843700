//! Container processes. The daemon never forks-and-setns itself: it starts its own binary as
//! `netd __enter ...`, a fresh single-threaded process that enters the container (netns, a
//! private mount namespace with the container's /etc files, UTS) and then execs the command.
//! `netd exec` uses the same entry.
use std::{
    ffi::CString,
    fs::File,
    os::fd::AsFd,
    path::Path,
    process::{Command, Stdio},
};

use nix::{
    mount::{mount, MsFlags},
    sched::{setns, unshare, CloneFlags},
    sys::signal::{kill as send_signal, Signal},
    unistd::{execvp, sethostname, Pid},
};

use crate::error::{Error, Result};

/// Where the reaper threads report `(pid, exit code)` of the commands the daemon started.
static EXITS: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<(u32, i32)>> = std::sync::OnceLock::new();

/// The stream of exits of container commands started by [`spawn`]; call once, before the
/// first spawn.
pub fn exit_events() -> tokio::sync::mpsc::UnboundedReceiver<(u32, i32)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _ = EXITS.set(tx);
    rx
}

/// A shell's view of an exit status: the code, or 128 + the signal.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// What `__enter` needs to become the container.
#[derive(Debug, Clone, clap::Args)]
pub struct EnterArgs {
    #[arg(long)]
    pub netns: Option<String>,
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
        let mut args = vec!["__enter".to_string()];
        for (flag, value) in [
            ("--netns", &self.netns),
            ("--hosts", &self.hosts),
            ("--resolv", &self.resolv),
            ("--hostname", &self.hostname),
        ] {
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
    match execvp(&argv[0], &argv) {
        Ok(never) => match never {},
        Err(e) => anyhow::anyhow!("exec {}: {e}", args.cmd[0]),
    }
}

fn enter(args: &EnterArgs) -> anyhow::Result<()> {
    if let Some(netns) = &args.netns {
        let ns = File::open(netns).map_err(|e| anyhow::anyhow!("open netns {netns}: {e}"))?;
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
    }
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

/// Starts a container's long-running command, detached, with output to its log file. Its
/// exit is reported on [`exit_events`].
pub fn spawn(args: &EnterArgs, log: &Path) -> Result<u32> {
    let exe = std::env::current_exe().map_err(|e| Error::system("locate netd binary", e))?;
    let log = File::create(log).map_err(|e| Error::system("create log", e))?;
    let log2 = log.try_clone().map_err(|e| Error::system("create log", e))?;
    let mut cmd = Command::new(exe);
    cmd.args(args.to_args()).stdin(Stdio::null()).stdout(log).stderr(log2);
    // SAFETY: setsid is async-signal-safe; it detaches the command from the daemon's session.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::system("start container command", e))?;
    let pid = child.id();
    // Reap it when it exits so it does not linger as a zombie of the daemon.
    std::thread::spawn(move || {
        if let Ok(status) = child.wait() {
            if let Some(tx) = EXITS.get() {
                let _ = tx.send((pid, exit_code(status)));
            }
        }
    });
    Ok(pid)
}

pub fn alive(pid: u32) -> bool {
    send_signal(Pid::from_raw(pid as i32), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(true)
}

/// Kills a container's process (its whole session).
pub fn kill(pid: u32) {
    let _ = send_signal(Pid::from_raw(-(pid as i32)), Signal::SIGKILL);
    let _ = send_signal(Pid::from_raw(pid as i32), Signal::SIGKILL);
}
