//! A race-free handle on one process: a pidfd (Linux ≥ 5.3) opened while the process is
//! provably the one netd means. Signals go through the pidfd, so a pid that was reused by an
//! unrelated process can never receive them.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use netd_cmd::{is_zombie, start_time};
use tokio::io::unix::AsyncFd;

/// Exit code reported when a process ended but its status cannot be known (it was not the
/// daemon's child: the daemon restarted in between). Docker reports 255 after a crash.
pub const UNKNOWN_EXIT: i32 = 255;

/// What identifies a process across daemon restarts: its pid, its start time in clock ticks
/// after boot (`/proc/<pid>/stat` field 22) and the boot it ran in. A pid alone can be reused.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub start_time: u64,
    pub boot_id: String,
}

#[derive(Debug)]
pub struct Pidfd {
    fd: OwnedFd,
    pid: u32,
}

impl Pidfd {
    /// Opens a pidfd for the daemon's own child `pid` (not yet waited for, so the pid cannot
    /// have been reused) and reads its identity.
    pub fn for_child(pid: u32) -> io::Result<(Self, ProcessIdentity)> {
        let pidfd = Self::open(pid)?;
        let identity = ProcessIdentity { pid, start_time: start_time(pid)?, boot_id: boot_id()? };
        Ok((pidfd, identity))
    }

    /// Takes the pidfd `clone3(CLONE_PIDFD)` returned for the daemon's own child `pid` (not yet
    /// waited for) and reads its identity.
    pub fn of_child(fd: OwnedFd, pid: u32) -> io::Result<(Self, ProcessIdentity)> {
        let identity = ProcessIdentity { pid, start_time: start_time(pid)?, boot_id: boot_id()? };
        Ok((Self { fd, pid }, identity))
    }

    /// Opens a pidfd for the process `identity` describes, or `None` when that process is gone
    /// (the pid may now be another process's: the start time and boot tell them apart). The
    /// identity is checked after the pidfd is open, so the pidfd is the identified process.
    pub fn reacquire(identity: &ProcessIdentity) -> Option<Self> {
        if boot_id().ok()? != identity.boot_id || identity.pid <= 1 {
            return None;
        }
        let pidfd = Self::open(identity.pid).ok()?;
        let same = start_time(identity.pid).ok()? == identity.start_time;
        (same && pidfd.is_alive()).then_some(pidfd)
    }

    /// A pidfd for whatever process has `pid` now; the caller proves it is the right one.
    pub fn open(pid: u32) -> io::Result<Self> {
        // Never a process group, the caller's own group or init.
        if pid <= 1 || pid > i32::MAX as u32 {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        Ok(Self { fd: unsafe { OwnedFd::from_raw_fd(fd as i32) }, pid })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` to this process (and only it). Gone already is success.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo, no flags.
        let r = unsafe {
            libc::syscall(libc::SYS_pidfd_send_signal, self.fd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0)
        };
        match r {
            0 => Ok(()),
            _ => match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
                e => Err(e),
            },
        }
    }

    /// Still running (a zombie counts as gone).
    pub fn is_alive(&self) -> bool {
        // SAFETY: signal 0 only checks; ESRCH means the process has exited.
        let r =
            unsafe { libc::syscall(libc::SYS_pidfd_send_signal, self.fd.as_raw_fd(), 0, std::ptr::null::<u8>(), 0) };
        r == 0 && !is_zombie(self.pid)
    }

    /// Waits until the process exits; for a child of the daemon, reaps it and returns a
    /// shell's view of its status (the code, or 128 + signal), else [`UNKNOWN_EXIT`].
    pub async fn wait_exit(&self) -> i32 {
        // SAFETY: the fd is `self.fd`, which stays open and unchanged while `self` is borrowed,
        // longer than the AsyncFd that lives in this call.
        let watched = unsafe { AsyncFd::register_with_interest(self.fd.as_raw_fd(), tokio::io::Interest::READABLE) };
        match watched {
            // A pidfd becomes readable when its process exits.
            Ok(fd) => {
                if let Ok(mut guard) = fd.readable().await {
                    guard.retain_ready();
                }
            }
            Err(e) => {
                tracing::warn!(pid = self.pid, error = ?e, "cannot watch process exit with epoll; polling it");
                while self.is_alive() {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
        reap(&self.fd)
    }
}

/// Reaps a child by pidfd (`waitid(P_PIDFD)`); not our child → [`UNKNOWN_EXIT`].
fn reap(fd: &OwnedFd) -> i32 {
    // SAFETY: siginfo_t is plain data; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pidfd and siginfo pointer.
    let r =
        unsafe { libc::waitid(libc::P_PIDFD, fd.as_raw_fd() as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG) };
    // SAFETY: after a successful waitid the child fields of the union are set.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if r != 0 || pid == 0 {
        return UNKNOWN_EXIT;
    }
    match info.si_code {
        libc::CLD_EXITED => status,
        _ => 128 + status,
    }
}

/// This boot's id: a start time is only meaningful within one boot.
pub fn boot_id() -> io::Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_can_be_reacquired_and_a_wrong_start_time_cannot() {
        let pid = std::process::id();
        let me = ProcessIdentity { pid, start_time: start_time(pid).unwrap(), boot_id: boot_id().unwrap() };
        assert!(Pidfd::reacquire(&me).is_some());
        let reused = ProcessIdentity { start_time: me.start_time + 1, ..me.clone() };
        assert!(Pidfd::reacquire(&reused).is_none(), "a pid with another start time is another process");
        let other_boot = ProcessIdentity { boot_id: "x".into(), ..me };
        assert!(Pidfd::reacquire(&other_boot).is_none());
    }

    #[test]
    fn pids_that_name_groups_or_init_are_refused() {
        for pid in [0, 1, u32::MAX, i32::MAX as u32 + 1] {
            assert!(Pidfd::open(pid).is_err(), "{pid}");
            let id = ProcessIdentity { pid, start_time: 0, boot_id: boot_id().unwrap() };
            assert!(Pidfd::reacquire(&id).is_none(), "{pid}");
        }
    }
}
