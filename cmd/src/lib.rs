//! One way to run child commands, shared by `xtask`, the bench (`netd-bench`) and the
//! end-to-end harness (`netd-tests`):
//!
//! - building a [`Command`] inside a network namespace and/or pinned to one CPU
//!   ([`in_netns`], [`placed`]);
//! - running it to completion within a [`Limit`] (a timeout, and optionally a "stop now"
//!   condition such as the bench's Ctrl-C), capturing its output ([`output`], [`run`],
//!   [`wait_output`]);
//! - one text for a command in messages ([`describe`]), and [`which`];
//! - ending a child without races: through its [`Child`] handle while it is not reaped
//!   ([`signal_child`], [`wait_timeout`], [`kill_child`]), or through a pidfd opened and then
//!   checked when only a pid is known ([`Process`]).
//!
//! A child is only ever killed by its own PID (or pidfd): never `pkill`/`killall`, never a
//! process group this crate did not create.
//!
//! Why a crate of our own rather than `duct` or `xshell`: neither runs a command in a netns
//! or on one CPU, `xshell` has no timeouts, `duct`'s `kill` has no "stop when the user
//! pressed Ctrl-C" and neither can end a process known only by its pid without racing a pid
//! reuse. What the three callers need is ~300 lines on top of `std::process` and `libc`,
//! which every caller already depends on. netd's daemon keeps its own supervisor
//! (`netd/src/daemon/supervisor/pidfd.rs`, async, with process identities that survive restarts);
//! [`Process`] is the same idea for synchronous tools.
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
};

mod process;
mod run;

pub use process::{is_zombie, kill_child, signal_child, start_time, wait_timeout, Process};
pub use run::{output, run, wait_output, Error, Limit};

/// `PROGRAM` inside the network namespace at `netns` (`nsenter --net=NETNS`): the network
/// namespace only, not the mount namespace as `ip netns exec` would. nsenter execs, so the
/// child's PID is the program's PID.
pub fn in_netns(netns: &Path, program: impl AsRef<OsStr>) -> Command {
    placed(program, Some(netns), None)
}

/// `[taskset -c CPU] [nsenter --net=NETNS] PROGRAM`: inside the network namespace at `netns`
/// when given, pinned to one CPU when `cpu` is given. Both tools exec, so the child's PID is
/// the program's PID, and ending the child ends the program.
pub fn placed(program: impl AsRef<OsStr>, netns: Option<&Path>, cpu: Option<usize>) -> Command {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    if let Some(cpu) = cpu {
        parts.extend(["taskset".into(), "-c".into(), cpu.to_string().into()]);
    }
    if let Some(netns) = netns {
        let mut arg = std::ffi::OsString::from("--net=");
        arg.push(netns);
        parts.extend(["nsenter".into(), arg]);
    }
    parts.push(program.as_ref().to_owned());
    let mut command = Command::new(&parts[0]);
    command.args(&parts[1..]);
    command
}

/// The command line (program and arguments, separated by spaces), for messages.
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The executable file `program` names: itself when it holds a `/`, else the first match on
/// `$PATH`, then in the system directories (`/usr/sbin`, `/sbin`, `/usr/bin`, `/bin`) that a
/// non-login root shell may lack.
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_is_the_command_line() {
        let mut c = Command::new("ip");
        c.args(["-n", "x", "link", "set", "lo", "up"]);
        assert_eq!(describe(&c), "ip -n x link set lo up");
        assert_eq!(describe(&Command::new("true")), "true");
    }

    #[test]
    fn placement_wraps_the_program_in_taskset_and_nsenter() {
        let ns = Path::new("/run/netns/x");
        assert_eq!(describe(&in_netns(ns, "ip")), "nsenter --net=/run/netns/x ip");
        let mut c = placed("iperf3", Some(ns), Some(3));
        c.arg("-s");
        assert_eq!(describe(&c), "taskset -c 3 nsenter --net=/run/netns/x iperf3 -s");
        assert_eq!(describe(&placed("sh", None, Some(0))), "taskset -c 0 sh");
        assert_eq!(describe(&placed("sh", None, None)), "sh");
    }

    #[test]
    fn which_finds_executables_only() {
        let sh = which("sh").expect("sh on PATH");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(which("netd-cmd-no-such-program"), None);
        assert_eq!(which(&sh.to_string_lossy()), Some(sh));
        // A file that exists but is not executable.
        let plain = std::env::temp_dir().join(format!("netd-cmd-{}-plain", std::process::id()));
        std::fs::write(&plain, "").unwrap();
        let found = which(&plain.to_string_lossy());
        std::fs::remove_file(&plain).unwrap();
        assert_eq!(found, None);
    }

    /// A throwaway named netns (`ip netns add`), deleted on drop, also when the test panics.
    struct Netns(String);

    impl Netns {
        fn create(label: &str) -> Self {
            let name = format!("ncmd-{}-{label}", std::process::id());
            let limit = Limit::new(std::time::Duration::from_secs(30));
            run(Command::new("ip").args(["netns", "add", &name]), limit).unwrap();
            Self(name)
        }

        fn path(&self) -> PathBuf {
            Path::new("/run/netns").join(&self.0)
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let limit = Limit::new(std::time::Duration::from_secs(30));
            if let Err(e) = run(Command::new("ip").args(["netns", "del", &self.0]), limit) {
                eprintln!("deleting netns {}: {e}", self.0);
            }
        }
    }

    #[test]
    #[ignore = "needs root (creates a network namespace); cargo xtask test runs it"]
    fn a_placed_command_runs_in_the_netns_on_the_cpu() {
        let limit = Limit::new(std::time::Duration::from_secs(30));
        let ns = Netns::create("placed");
        // A fresh netns has only `lo`, down; the test's own has more.
        let links = run(in_netns(&ns.path(), "ip").args(["-o", "link", "show"]), limit).unwrap();
        let names: Vec<&str> = links.lines().filter_map(|l| l.split(": ").nth(1)).collect();
        assert_eq!(names, ["lo"], "{links}");
        // The same namespace as the one bind-mounted at the path.
        let inode = |path: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path).unwrap().ino()
        };
        let mut c = placed("readlink", Some(&ns.path()), Some(0));
        c.arg("/proc/self/ns/net");
        let inside = run(&mut c, limit).unwrap();
        assert_eq!(inside.trim(), format!("net:[{}]", inode(&ns.path())));
        // Pinned to CPU 0.
        let mut c = placed("grep", Some(&ns.path()), Some(0));
        c.args(["Cpus_allowed_list", "/proc/self/status"]);
        let cpus = run(&mut c, limit).unwrap();
        assert_eq!(cpus.split_whitespace().nth(1), Some("0"), "{cpus}");
        // A failure inside the netns is reported with the whole command line.
        let err = run(in_netns(&ns.path(), "ip").args(["link", "show", "nope0"]), limit).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "`nsenter --net={} ip link show nope0` failed (exit status: 1): ",
                ns.path().display()
            )),
            "{text}"
        );
    }
}
