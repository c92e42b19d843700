//! Starting a container command inside its cgroup.
//!
//! `clone3(CLONE_INTO_CGROUP | CLONE_PIDFD)` creates the child directly in the container's
//! cgroup and hands back its pidfd in the same call. The older way, a forked child writing
//! its pid to `cgroup.procs` before exec, takes the cgroup rwsem for writing, which waits a
//! full RCU grace period (≈7.5 ms here) on every spawn; `CLONE_INTO_CGROUP` only reads it.
//! Kernels without clone3 (< 5.3) or without `CLONE_INTO_CGROUP` (< 5.7), and seccomp
//! profiles that refuse clone3 with ENOSYS, get that older way (`fork_then_join`).
use std::{
    ffi::{CString, OsString},
    fs::File,
    io,
    os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::{ffi::OsStringExt, process::CommandExt},
    },
    process::{Command, Stdio},
};

use super::pidfd::{Pidfd, ProcessIdentity};

/// The program a container command starts as (`netd __enter …`, see `process::own_binary`).
const PROGRAM: &str = "/proc/self/exe";
const ARGV0: &str = "netd";

/// `CLONE_INTO_CGROUP` (Linux ≥ 5.7); libc declares it with a type too small for it.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `<linux/sched.h>`, up to `cgroup` (`CLONE_ARGS_SIZE_VER2`, 88 bytes).
/// libc 0.2 defines it only for a few musl targets.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Starts `PROGRAM args…` with `stdio` as its fds 0, 1 and 2 in the cgroup `cgroup_dir` (an
/// open directory of cgroup2) and returns its pidfd once it has exec'd. `procs` opens the
/// cgroup's `cgroup.procs` for the fallback on kernels without `CLONE_INTO_CGROUP`.
pub(super) fn start(
    args: &[String],
    stdio: [OwnedFd; 3],
    cgroup_dir: &File,
    procs: impl FnOnce() -> io::Result<File>,
) -> io::Result<(Pidfd, ProcessIdentity)> {
    let stdio = stdio.map(above_stdio).into_iter().collect::<io::Result<Vec<_>>>()?;
    let stdio: [OwnedFd; 3] = stdio.try_into().map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let plan = ExecPlan::new(PROGRAM, ARGV0, args, &stdio)?;
    match clone_into_cgroup(&plan, cgroup_dir) {
        Ok((pidfd, pid)) => Pidfd::of_child(pidfd, pid),
        Err(e) if kernel_lacks_clone_into_cgroup(&e) => {
            tracing::debug!(error = %e, "clone3 into a cgroup unavailable; forking and joining the cgroup instead");
            let mut cmd = crate::process::own_binary();
            cmd.args(args);
            fork_then_join(cmd, stdio, procs()?)
        }
        Err(e) => Err(e),
    }
}

/// Whether a clone3 failure means "this kernel (or its seccomp filter) cannot do it", so the
/// fork-then-join path must be taken: ENOSYS (no clone3, or a filter refusing it), EINVAL
/// (flag unknown, 5.3–5.6), E2BIG (the kernel knows a shorter `clone_args`). Anything else
/// (EMFILE, ENOMEM, EAGAIN, a cgroup that cannot take processes…) is a real failure.
fn kernel_lacks_clone_into_cgroup(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG))
}

/// Stdio sources numbered 0–2 would be overwritten by (or, as their own target, keep
/// close-on-exec through) the child's dup2: move them above.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    match fd.as_raw_fd() {
        0..=2 => fd.as_fd().try_clone_to_owned(), // F_DUPFD_CLOEXEC from 3
        _ => Ok(fd),
    }
}

/// Everything the child needs, allocated before the clone: between clone and exec the child
/// of a multi-threaded process may only make async-signal-safe calls (no allocation, no lock).
struct ExecPlan {
    program: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    stdio: [RawFd; 3],
}

impl ExecPlan {
    fn new(program: &str, argv0: &str, args: &[String], stdio: &[OwnedFd; 3]) -> io::Result<Self> {
        let cstring = |bytes: Vec<u8>| CString::new(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        let argv = std::iter::once(argv0.to_string()).chain(args.iter().cloned()).map(|a| cstring(a.into_bytes()));
        let argv = argv.collect::<io::Result<Vec<_>>>()?;
        // The daemon's environment, as std's Command would pass it.
        let envp = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                cstring(OsString::into_vec(kv))
            })
            .collect::<io::Result<Vec<_>>>()?;
        let pointers = |strings: &[CString]| {
            strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>()
        };
        let (argv_ptrs, envp_ptrs) = (pointers(&argv), pointers(&envp));
        Ok(Self {
            program: cstring(program.into())?,
            _strings: argv.into_iter().chain(envp).collect(),
            argv: argv_ptrs,
            envp: envp_ptrs,
            stdio: stdio.each_ref().map(|fd| fd.as_raw_fd()),
        })
    }
}

/// clone3 into the cgroup; the parent waits until the child has exec'd (a close-on-exec pipe
/// closes) or learns why it could not (the errno comes through the pipe), as std's spawn does.
fn clone_into_cgroup(plan: &ExecPlan, cgroup_dir: &File) -> io::Result<(OwnedFd, u32)> {
    let (report_read, report_write) = pipe()?;
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // A plain child: SIGCHLD to the daemon and reaped by waitid, like fork's.
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_dir.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM and without a stack is fork: the child gets a copy of this
    // address space and returns here with 0. `args` is a valid clone_args of the size passed;
    // `pidfd` outlives the call. The child only runs `exec_child`, which makes async-signal-safe
    // calls on memory prepared before the clone and never returns.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child, right after the clone (see above).
        unsafe { exec_child(plan, report_write.as_raw_fd()) }
    }
    // SAFETY: CLONE_PIDFD stored a fresh close-on-exec pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop(report_write);
    match read_report(&report_read)? {
        None => Ok((pidfd, pid as u32)),
        Some(errno) => {
            // The child exits right after reporting: reap it so no zombie is left.
            // SAFETY: waitid on our child's valid pidfd with a zeroed siginfo.
            unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED);
            }
            Err(io::Error::from_raw_os_error(errno))
        }
    }
}

/// The child between clone and exec: stdio, the limits and session the command gets (see
/// `limits::restore_for_child`), SIGPIPE back to default (the Rust runtime ignores it and an
/// ignored signal stays ignored through exec; std's spawn resets it too), then exec. On failure
/// the errno goes to `report` and the child exits 127.
///
/// # Safety
/// Only in the child of a fork-like clone; `plan`'s pointers must be valid.
unsafe fn exec_child(plan: &ExecPlan, report: RawFd) -> ! {
    let fail = || -> ! {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
        // SAFETY: write(2) and _exit(2) are async-signal-safe; `errno` lives on this stack.
        unsafe {
            libc::write(report, (&errno as *const i32).cast(), std::mem::size_of::<i32>());
            libc::_exit(127)
        }
    };
    // SAFETY: plain syscalls on fds the plan keeps open and on its NUL-terminated arrays.
    unsafe {
        for (target, &fd) in plan.stdio.iter().enumerate() {
            // The sources are ≥ 3 (`above_stdio`), so no dup2 overwrites a later source.
            if libc::dup2(fd, target as RawFd) < 0 {
                fail();
            }
        }
        if crate::limits::restore_for_child().is_err() || libc::setsid() < 0 {
            fail();
        }
        if libc::signal(libc::SIGPIPE, libc::SIG_DFL) == libc::SIG_ERR {
            fail();
        }
        libc::execve(plan.program.as_ptr(), plan.argv.as_ptr(), plan.envp.as_ptr());
    }
    fail()
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 fills two fds on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `None`: the pipe closed without a word (the child exec'd); `Some(errno)`: it failed.
fn read_report(pipe: &OwnedFd) -> io::Result<Option<i32>> {
    let mut errno = [0u8; 4];
    loop {
        // SAFETY: reading into a local buffer of the given length.
        let n = unsafe { libc::read(pipe.as_raw_fd(), errno.as_mut_ptr().cast(), errno.len()) };
        match n {
            0 => return Ok(None),
            4 => return Ok(Some(i32::from_ne_bytes(errno))),
            n if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            n if n < 0 => return Err(io::Error::last_os_error()),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "short report from a starting child")),
        }
    }
}

/// Kernels without `CLONE_INTO_CGROUP`: fork, and the child writes "0" to `cgroup.procs`
/// before it execs `cmd` (it joins before anything of the command runs).
fn fork_then_join(mut cmd: Command, stdio: [OwnedFd; 3], procs: File) -> io::Result<(Pidfd, ProcessIdentity)> {
    let [stdin, stdout, stderr] = stdio;
    cmd.stdin(Stdio::from(stdin)).stdout(Stdio::from(stdout)).stderr(Stdio::from(stderr));
    let procs_fd = procs.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls: write(2), umask(2),
    // get/setrlimit(2), setsid(2).
    unsafe {
        cmd.pre_exec(move || {
            if libc::write(procs_fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(io::Error::last_os_error());
            }
            crate::limits::restore_for_child()?;
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(procs);
    // The child is reaped through its pidfd; std's handle neither waits nor kills on drop.
    let pid = child.id();
    drop(child);
    Pidfd::for_child(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_kernel_without_clone_into_cgroup_takes_the_fork_path() {
        for errno in [libc::ENOSYS, libc::EINVAL, libc::E2BIG] {
            assert!(kernel_lacks_clone_into_cgroup(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        for errno in [libc::EPERM, libc::EMFILE, libc::ENOMEM, libc::EAGAIN, libc::EBUSY, libc::EOPNOTSUPP] {
            assert!(!kernel_lacks_clone_into_cgroup(&io::Error::from_raw_os_error(errno)), "{errno}");
        }
        assert!(!kernel_lacks_clone_into_cgroup(&io::Error::other("no errno")));
    }

    #[test]
    fn clone_args_has_the_kernels_ver2_size() {
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
    }

    #[test]
    fn the_plan_passes_argv0_the_args_and_the_environment() {
        let fds = [0, 1, 2].map(|_| File::open("/dev/null").unwrap().into());
        let plan = ExecPlan::new(PROGRAM, ARGV0, &["__enter".into(), "--".into(), "true".into()], &fds).unwrap();
        // SAFETY: the pointers point into `plan`'s own strings.
        let argv: Vec<_> = plan.argv[..plan.argv.len() - 1]
            .iter()
            .map(|&p| unsafe { std::ffi::CStr::from_ptr(p) }.to_str().unwrap().to_string())
            .collect();
        assert_eq!(argv, ["netd", "__enter", "--", "true"]);
        assert!(plan.argv.last().unwrap().is_null() && plan.envp.last().unwrap().is_null());
        assert_eq!(plan.envp.len(), std::env::vars_os().count() + 1);
        assert!(ExecPlan::new(PROGRAM, ARGV0, &["a\0b".into()], &fds).is_err(), "a NUL byte cannot be passed");
    }

    /// A cgroup of this test's own under the daemon's layout, removed (processes and all) on drop.
    struct TestCgroup(super::super::cgroup::Cgroups, &'static str);

    impl TestCgroup {
        fn new(name: &'static str) -> Self {
            let run_dir = std::env::temp_dir().join(format!("netd-spawn-test-{}", std::process::id()));
            let cgroups =
                super::super::cgroup::Cgroups::open(&run_dir, &format!("unit-{}-{name}", std::process::id())).unwrap();
            Self(cgroups, name)
        }
    }

    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = self.0.kill(self.1);
            self.0.remove_dir();
        }
    }

    /// Runs `sh -c SCRIPT` in a new cgroup by clone3 or by fork; returns its stdout, the
    /// cgroup's path and the exit code.
    fn run_in_cgroup(name: &'static str, script: &str, clone3: bool) -> (String, String, i32) {
        let cgroup = TestCgroup::new(name);
        let dir = cgroup.0.create(name).unwrap();
        let (out_read, out_write) = pipe().unwrap();
        let null: OwnedFd = File::open("/dev/null").unwrap().into();
        let stdio = [null, out_write.try_clone().unwrap(), out_write];
        let (pidfd, identity) = match clone3 {
            true => {
                let plan = ExecPlan::new("/bin/sh", "sh", &["-c".into(), script.into()], &stdio).unwrap();
                let (fd, pid) = clone_into_cgroup(&plan, &dir).unwrap();
                drop(stdio);
                Pidfd::of_child(fd, pid).unwrap()
            }
            false => {
                let mut cmd = Command::new("/bin/sh");
                cmd.args(["-c", script]);
                fork_then_join(cmd, stdio, cgroup.0.procs(name).unwrap()).unwrap()
            }
        };
        assert_eq!(identity.pid, pidfd.pid());
        let mut out = String::new();
        io::Read::read_to_string(&mut File::from(out_read), &mut out).unwrap();
        let code =
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(pidfd.wait_exit());
        let expected = format!("/netd/unit-{}-{name}/{name}", std::process::id());
        (out, expected, code)
    }

    #[test]
    #[ignore = "needs root (creates cgroups); cargo xtask test runs it"]
    fn both_ways_start_the_command_in_its_cgroup_with_its_stdio_and_exit_code() {
        let script = "cat /proc/self/cgroup; exit 3";
        for (clone3, name) in [(true, "by-clone3"), (false, "by-fork")] {
            let (out, cgroup, code) = run_in_cgroup(name, script, clone3);
            let line = out.lines().find(|l| l.starts_with("0::")).unwrap_or_else(|| panic!("{name}: {out:?}"));
            assert!(line.ends_with(&cgroup), "{name}: {line} is not {cgroup}");
            assert_eq!(code, 3, "{name}");
        }
    }

    #[test]
    #[ignore = "needs root (creates cgroups); cargo xtask test runs it"]
    fn a_failed_exec_is_reported_with_its_errno() {
        let cgroup = TestCgroup::new("exec-fails");
        let dir = cgroup.0.create("exec-fails").unwrap();
        let stdio = [0, 1, 2].map(|_| File::open("/dev/null").unwrap().into());
        let plan = ExecPlan::new("/nonexistent/program", "x", &[], &stdio).unwrap();
        let err = clone_into_cgroup(&plan, &dir).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    }
}
