//! Checking on and ending processes without hitting the wrong one.
//!
//! A pid names a process only until that process is reaped; after that the kernel may give
//! the pid to anything. So: a [`Child`] is signalled by its pid only while `try_wait` says it
//! has not been reaped (we are its only reaper), and a process known only by its pid is
//! handled through a pidfd ([`Process`]), opened first and checked afterwards.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    process::{Child, ExitStatus},
    thread,
    time::{Duration, Instant},
};

/// Sends `signal` to `child` if it is still running; a child that has exited (and is now
/// reaped) is left alone, since its pid may already belong to another process.
pub fn signal_child(child: &mut Child, signal: i32) -> io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| esrch())?;
    // SAFETY: kill with the pid of our own child, which is not reaped yet (try_wait above), so
    // the pid is still that child's.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits at most `timeout` for `child` to exit: its status, or `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now().checked_add(timeout);
    // Opened while the child is not reaped yet, so it is the child's.
    let exited = Process::open(child.id()).ok();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = match deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => Duration::MAX,
        };
        if left.is_zero() {
            return Ok(None);
        }
        match &exited {
            Some(process) => {
                process.wait_exit(left);
            }
            None => thread::sleep(Duration::from_millis(10).min(left)),
        }
    }
}

/// SIGKILL to `child` (by its own PID, only if still running), then reaps it.
pub fn kill_child(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A process known by a pidfd: signals and checks reach that process and no other, even if
/// its pid is reused after it exits. For processes that are not our children (a daemon's
/// helper found by its pidfile, a process found in `/proc`).
#[derive(Debug)]
pub struct Process {
    fd: OwnedFd,
    pid: u32,
}

impl Process {
    /// A pidfd on whatever process has `pid` now. Use [`Process::open_checked`] to make sure
    /// it is the one meant.
    pub fn open(pid: u32) -> io::Result<Self> {
        // Never 0 (our own process group), init, or a negative pid (a group).
        if pid <= 1 || pid > i32::MAX as u32 {
            return Err(esrch());
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the syscall returned a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Self { fd, pid })
    }

    /// The process `pid`, if `is_it(pid)` says it is the one meant (it reads
    /// `/proc/PID/cmdline`, `comm`, ... ). The pidfd is opened before the check, and the
    /// check only counts if the process still holds its pid afterwards: so what `is_it` read
    /// was about the process behind the pidfd, not a later one that got the same pid.
    pub fn open_checked(pid: u32, is_it: impl FnOnce(u32) -> bool) -> Option<Self> {
        let process = Self::open(pid).ok()?;
        let checked = is_it(pid);
        (checked && process.holds_pid()).then_some(process)
    }

    /// The process `pid` if it is the one that started at `start_time` (see [`start_time`]):
    /// a pid with another start time is another process.
    pub fn reacquire(pid: u32, start_time: u64) -> Option<Self> {
        Self::open_checked(pid, |pid| self::start_time(pid).ok() == Some(start_time))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Still running (a zombie, exited but not reaped, counts as gone).
    pub fn is_alive(&self) -> bool {
        self.holds_pid() && !is_zombie(self.pid)
    }

    /// Sends `signal` to this process and only it. A process already gone is success.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        match self.send(signal) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            other => other,
        }
    }

    /// Waits at most `timeout` for the process to exit (a zombie has exited); whether it did.
    pub fn wait_exit(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(1),
            };
            // Rounded up: a poll of 0 ms would spin through the last fraction of a millisecond.
            let ms = left.as_micros().div_ceil(1000).min(1000) as libc::c_int;
            let mut poll = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd; a pidfd is readable once its process has exited.
            let ready = unsafe { libc::poll(&mut poll, 1, ms) };
            if ready > 0 {
                return true;
            }
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // Cannot poll: fall back to checking.
                thread::sleep(Duration::from_millis(20).min(left));
                if !self.is_alive() {
                    return true;
                }
            }
            if left.is_zero() {
                return !self.is_alive();
            }
        }
    }

    /// The process has not been reaped yet (running or a zombie), so `/proc/PID` is its own.
    fn holds_pid(&self) -> bool {
        self.send(0).is_ok()
    }

    fn send(&self, signal: i32) -> io::Result<()> {
        // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo, no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// When process `pid` started, in clock ticks after boot (`/proc/PID/stat` field 22): with
/// the pid, it tells one process from a later one that reuses the pid.
pub fn start_time(pid: u32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_start_time(&stat).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc stat"))
}

/// Fields after the command name (field 2), which may hold spaces and parentheses: they are
/// counted after its last ')'. Field 3 (state) is index 0, so field 22 is index 19.
fn parse_start_time(stat: &str) -> Option<u64> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// Gone or a zombie (exited, not yet reaped): not running any more.
pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])))
        .unwrap_or(true)
}

fn esrch() -> io::Error {
    io::Error::from_raw_os_error(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn sleep() -> Child {
        Command::new("sleep").arg("30").spawn().unwrap()
    }

    #[test]
    fn start_time_is_field_22_even_with_odd_command_names() {
        let stat = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn pids_that_name_groups_or_init_are_refused() {
        for pid in [0, 1, u32::MAX, i32::MAX as u32 + 1] {
            assert!(Process::open(pid).is_err(), "{pid}");
            assert!(Process::open_checked(pid, |_| true).is_none(), "{pid}");
        }
    }

    #[test]
    fn a_process_is_reacquired_only_with_its_own_start_time() {
        let mut child = sleep();
        let pid = child.id();
        let started = start_time(pid).unwrap();
        assert!(Process::reacquire(pid, started + 1).is_none());
        let process = Process::reacquire(pid, started).expect("the sleep");
        assert!(Process::open_checked(pid, |_| false).is_none());
        assert!(process.is_alive());
        process.signal(libc::SIGTERM).unwrap();
        assert!(process.wait_exit(Duration::from_secs(5)));
        // Exited but not reaped: a zombie counts as gone, and signals to it are no error.
        assert!(!process.is_alive());
        process.signal(libc::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGTERM));
        // Reaped: the pidfd still names that process, not whatever gets the pid next.
        assert!(!process.is_alive());
        assert!(process.wait_exit(Duration::ZERO));
    }

    #[test]
    fn wait_exit_times_out_on_a_running_process() {
        let mut child = sleep();
        let process = Process::open(child.id()).unwrap();
        let started = Instant::now();
        assert!(!process.wait_exit(Duration::from_millis(200)));
        assert!(started.elapsed() >= Duration::from_millis(200));
        kill_child(&mut child);
        assert!(process.wait_exit(Duration::ZERO));
    }

    #[test]
    fn a_child_is_signalled_only_while_it_is_ours() {
        let mut child = sleep();
        assert_eq!(wait_timeout(&mut child, Duration::from_millis(50)).unwrap(), None);
        signal_child(&mut child, libc::SIGTERM).unwrap();
        let status = wait_timeout(&mut child, Duration::from_secs(5)).unwrap().expect("exited");
        assert!(!status.success());
        // Reaped now: nothing is sent (the pid is no longer ours), and that is not an error.
        signal_child(&mut child, libc::SIGKILL).unwrap();
    }
}
