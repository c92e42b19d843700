//! Network namespaces: created and entered only on dedicated OS threads, never on a tokio
//! worker (a worker left in another netns would corrupt every later task on it).
use std::{
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
    sync::{mpsc, Mutex},
};

use nix::{
    mount::{mount, umount2, MntFlags, MsFlags},
    sched::{setns, unshare, CloneFlags},
};

use crate::error::{Error, Result};

/// A job for the netns thread: given the thread's own netns, enters another, runs, and says
/// whether the thread is back in its own.
type Job = Box<dyn FnOnce(&File) -> bool + Send>;

/// The netns thread: one OS thread that enters the netns of each job and returns to its own
/// (the daemon's) after it, so that it never holds a container's netns alive. A thread per
/// job cost a clone, a stack and an exit on every `run` (two jobs each).
static WORKER: Mutex<Option<mpsc::Sender<Job>>> = Mutex::new(None);

/// Runs `f` on the netns thread, inside the network namespace at `path`.
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let ns = File::open(path).map_err(|e| Error::os(format!("open netns {}", path.display()), e))?;
    let (done, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move |home| {
        if let Err(e) = setns(ns.as_fd(), CloneFlags::CLONE_NEWNET) {
            let _ = done.send(Err(Error::os("setns", e)));
            return true;
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            .unwrap_or_else(|_| Err(Error::Inconsistent("netns job panicked".into())));
        let back = setns(home.as_fd(), CloneFlags::CLONE_NEWNET).is_ok();
        let _ = done.send(ran);
        back
    });
    submit(job)?;
    result.recv().map_err(|_| Error::Inconsistent("the netns thread ended before its job".into()))?
}

/// Queues `job` on the netns thread, starting one if there is none (or it ended).
fn submit(job: Job) -> Result<()> {
    let mut worker = WORKER.lock().unwrap_or_else(|e| e.into_inner());
    let job = match worker.as_ref() {
        Some(tx) => match tx.send(job) {
            Ok(()) => return Ok(()),
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    let (tx, jobs) = mpsc::channel::<Job>();
    // The thread's own netns is the one it starts in: the caller's, the daemon's.
    let home = File::open("/proc/thread-self/ns/net").map_err(|e| Error::os("open own netns", e))?;
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            for job in jobs {
                if !job(&home) {
                    // Stuck in another netns: this thread ends and the next job starts another.
                    tracing::error!("the netns thread cannot return to its own netns; replacing it");
                    return;
                }
            }
        })
        .map_err(|e| Error::os("netns thread", e))?;
    tx.send(job).map_err(|_| Error::Inconsistent("the netns thread ended at once".into()))?;
    *worker = Some(tx);
    Ok(())
}

/// Creates a new network namespace bind-mounted at `path` (like `ip netns add`).
pub fn create(path: &Path) -> Result<()> {
    make(path, false)
}

/// [`create`], with `lo` up too (a netns made ahead, `netns_pool.rs`).
pub fn create_with_lo_up(path: &Path) -> Result<()> {
    make(path, true)
}

fn make(path: &Path, lo_up: bool) -> Result<()> {
    mount_point(path)?;
    let target: PathBuf = path.to_path_buf();
    let made = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::os("unshare netns", e))?;
        disable_ipv6()?;
        if lo_up {
            loopback_up()?;
        }
        mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| Error::os("bind-mount netns", e))
    })
    .join()
    .map_err(|_| Error::Inconsistent("netns thread panicked".into()))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// IPv6 off in the calling thread's (new) netns, before any link is up, as Docker does for a
/// container without `--ipv6`: `lo` has no `::1` and `eth0` no link-local address (`all`
/// turns it off on every device there, `default` on those that come later). A kernel without
/// IPv6 has no such files: nothing to do.
fn disable_ipv6() -> Result<()> {
    let proc = PrivateProc::open();
    for conf in ["all", "default"] {
        let path = format!("sys/net/ipv6/conf/{conf}/disable_ipv6");
        match proc.write(&path, "1") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::os(format!("write /proc/{path}"), e)),
        }
    }
    Ok(())
}

/// Sets `lo` up in the calling thread's netns. The interface-flags ioctl: one flag on a device
/// every netns has, with no netlink socket to open in a netns nothing else uses yet.
fn loopback_up() -> Result<()> {
    use std::os::fd::AsRawFd;
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::os("socket for lo", e))?;
    // SAFETY: an all-zero ifreq is valid; the name is NUL-terminated ("lo" in 16 bytes).
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (to, from) in request.ifr_name.iter_mut().zip(b"lo") {
        *to = *from as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq passed, which lives on.
    // (`as _`: the request's type is c_ulong in glibc's `ioctl` and c_int in musl's.)
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) < 0 {
            return Err(Error::os("get lo flags", std::io::Error::last_os_error()));
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &request) < 0 {
            return Err(Error::os("set lo up", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// A procfs instance of the calling thread's own (a detached `fsopen`/`fsmount`), for sysctls
/// of a new netns. Through the shared `/proc`, the first lookup of `sys/net` from a new netns
/// compares one cached entry per netns that looked there before (≈1.2 ms with 1,000
/// containers, measured); a fresh procfs has only its own. Falls back to `/proc` where the
/// kernel has no new mount API.
enum PrivateProc {
    Own(std::os::fd::OwnedFd),
    Shared,
}

impl PrivateProc {
    fn open() -> Self {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // From <linux/mount.h> (not in the libc crate).
        const FSOPEN_CLOEXEC: libc::c_uint = 1;
        const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
        const FSMOUNT_CLOEXEC: libc::c_uint = 1;
        // SAFETY: plain system calls on fds this function owns; a negative return is an error.
        unsafe {
            let fs = libc::syscall(libc::SYS_fsopen, c"proc".as_ptr(), FSOPEN_CLOEXEC);
            if fs < 0 {
                return Self::Shared;
            }
            let fs = OwnedFd::from_raw_fd(fs as i32);
            let created = libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<libc::c_char>(),
                std::ptr::null::<libc::c_void>(),
                0,
            );
            if created < 0 {
                return Self::Shared;
            }
            let mnt = libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0);
            if mnt < 0 {
                return Self::Shared;
            }
            Self::Own(OwnedFd::from_raw_fd(mnt as i32))
        }
    }

    /// Writes `value` to `path`, relative to the procfs root.
    fn write(&self, path: &str, value: &str) -> std::io::Result<()> {
        use std::{
            io::Write,
            os::fd::{AsRawFd, FromRawFd},
        };
        let mut file: std::fs::File = match self {
            Self::Own(root) => {
                let path = std::ffi::CString::new(path).map_err(std::io::Error::other)?;
                // SAFETY: a NUL-terminated path and a live directory fd; the result is checked.
                let fd = unsafe { libc::openat(root.as_raw_fd(), path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // SAFETY: a fresh fd nothing else owns.
                unsafe { std::fs::File::from_raw_fd(fd) }
            }
            Self::Shared => std::fs::OpenOptions::new().write(true).open(format!("/proc/{path}"))?,
        };
        file.write_all(value.as_bytes())
    }
}

/// Bind-mounts the calling process's own network namespace at `path` (the daemon's netns,
/// for `--network host` containers and `netd exec` into them from anywhere). Idempotent.
pub fn bind_own(path: &Path) -> Result<()> {
    // /proc/self is the main thread's view; the daemon never moves its threads, so both name
    // the daemon's netns.
    let own = Path::new("/proc/self/ns/net");
    // A mount left by a daemon that ran in another netns (its run dir outlived that netns, or
    // it was started elsewhere) names the wrong namespace: Docker's veths and `--network host`
    // containers would land there. Unmounted (each stacked mount) and bound again.
    for _ in 0..8 {
        if !is_netns_mount(path) {
            break;
        }
        if same_namespace(path, own) {
            return Ok(());
        }
        tracing::warn!(path = %path.display(), "the daemon's netns mount names another network namespace; binding it again");
        umount2(path, MntFlags::MNT_DETACH).map_err(|e| Error::os(format!("unmount {}", path.display()), e))?;
    }
    bind_at(own, path, "bind-mount the daemon's netns")
}

/// Whether two nsfs files name the same namespace (same device and inode).
fn same_namespace(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Bind-mounts the network namespace mounted at `from` at `path` too: a second name for the
/// same netns, which lives on after `from` is unmounted.
pub fn bind_existing(from: &Path, path: &Path) -> Result<()> {
    if !is_netns_mount(from) {
        return Err(Error::Inconsistent(format!("no network namespace mounted at {}", from.display())));
    }
    bind_at(from, path, "bind-mount netns")
}

/// An empty file at `path` (its directory made if needed) to mount a netns on.
fn mount_point(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::os("create netns dir", e))?;
    }
    File::create(path).map(drop).map_err(|e| Error::os("create netns file", e))
}

/// Bind-mounts the netns file `source` at `path`; the mount point goes again on failure.
fn bind_at(source: &Path, path: &Path, what: &str) -> Result<()> {
    mount_point(path)?;
    mount(Some(source), path, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| {
        let _ = std::fs::remove_file(path);
        Error::os(what, e)
    })
}

/// Whether `path` is a mounted network namespace (and not just the empty mount point).
pub fn is_netns_mount(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, NSFS_MAGIC};
    statfs(path).map(|s| s.filesystem_type() == NSFS_MAGIC).unwrap_or(false)
}

/// Unmounts and removes a namespace created by [`create`]; already gone is fine.
pub fn remove(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(Error::os(format!("unmount {}", path.display()), e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::os("remove netns file", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root (creates a network namespace); cargo xtask test runs it"]
    fn a_mount_of_another_netns_is_replaced_by_the_daemons_own() {
        let dir = std::env::temp_dir().join(format!("netd-netns-{}-{}", std::process::id(), crate::model::new_id()));
        let path = dir.join("host-netns");
        create(&path).unwrap();
        assert!(!same_namespace(&path, Path::new("/proc/self/ns/net")));
        bind_own(&path).unwrap();
        let own = same_namespace(&path, Path::new("/proc/self/ns/net"));
        // Idempotent once right: no second mount stacked on it.
        bind_own(&path).unwrap();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let stacked = mounts.lines().filter(|l| l.contains(&*path.to_string_lossy())).count();
        while is_netns_mount(&path) {
            umount2(&path, MntFlags::MNT_DETACH).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(own, "the mount still names the other netns");
        assert_eq!(stacked, 1, "one mount at the path");
    }
}
