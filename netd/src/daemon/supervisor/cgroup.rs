//! One cgroup v2 per container command: `<cgroup2>/netd/<instance>/<container id>`. Every
//! process a container's command starts stays in it, so netd can find all of them (also
//! after a daemon restart, also orphans of a crash) and end them at once with `cgroup.kill` —
//! never by pid number, never by process group. No controller is enabled: the cgroup is only
//! a race-free handle on a set of processes.
use std::{
    fs::File,
    io::{self, BufRead},
    os::{
        fd::AsRawFd,
        unix::fs::{FileExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::pidfd::Pidfd;

/// How long `kill` waits for the killed processes to be gone before giving up on the rmdir.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Without cgroup.kill: how long to wait for the signalled members before signalling again.
const MEMBERS_ROUND: Duration = Duration::from_millis(50);

pub struct Cgroups {
    /// `<cgroup2 mount>/netd/<instance>`.
    dir: PathBuf,
}

impl Cgroups {
    /// The daemon's cgroup directory for `instance` (unique per state dir), mounting cgroup2
    /// under `run_dir` when the host has it nowhere.
    pub fn open(run_dir: &Path, instance: &str) -> io::Result<Self> {
        let root = match cgroup2_mount(&std::fs::read_to_string("/proc/self/mountinfo")?) {
            Some(root) => root,
            None => mount_cgroup2(&run_dir.join("cgroup2"))?,
        };
        let dir = root.join("netd").join(instance);
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, container: &str) -> PathBuf {
        self.dir.join(container)
    }

    /// Creates the container's cgroup (empty: a new command) and returns it opened as a
    /// directory, for `clone3(CLONE_INTO_CGROUP)` to start the command in.
    pub fn create(&self, container: &str) -> io::Result<File> {
        let path = self.path(container);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.kill(container)?,
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&path)?;
        File::options().read(true).custom_flags(libc::O_DIRECTORY).open(path)
    }

    /// The container's `cgroup.procs`, opened for a forked child to write "0" to between fork
    /// and exec (kernels without `CLONE_INTO_CGROUP`).
    pub fn procs(&self, container: &str) -> io::Result<File> {
        File::options().write(true).open(self.path(container).join("cgroup.procs"))
    }

    /// Whether `pid` is in the container's cgroup.
    pub fn contains(&self, container: &str, pid: u32) -> bool {
        self.pids(container).is_ok_and(|pids| pids.contains(&pid))
    }

    fn pids(&self, container: &str) -> io::Result<Vec<u32>> {
        let file = File::open(self.path(container).join("cgroup.procs"))?;
        Ok(io::BufReader::new(file).lines().map_while(Result::ok).filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Ends every process of the container and removes its cgroup. Gone already is success.
    pub fn kill(&self, container: &str) -> io::Result<()> {
        let path = self.path(container);
        if !path.exists() {
            return Ok(());
        }
        let deadline = Instant::now() + KILL_WAIT;
        match std::fs::write(path.join("cgroup.kill"), "1") {
            Ok(()) => wait_unpopulated(&path, deadline)?,
            // Kernels before 5.14 have no cgroup.kill: signal each member through a pidfd,
            // checking after opening it that the process is still a member; again for what
            // a member forked meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => loop {
                self.kill_members(container);
                let round = deadline.min(Instant::now() + MEMBERS_ROUND);
                match wait_unpopulated(&path, round) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut && Instant::now() < deadline => {}
                    Err(e) => return Err(e),
                }
            },
            Err(e) => return Err(e),
        }
        // Empty now; the kernel may still be finishing the last exit (EBUSY) for a moment.
        let mut pause = Duration::from_micros(100);
        loop {
            match std::fs::remove_dir(&path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) if Instant::now() >= deadline || e.raw_os_error() != Some(libc::EBUSY) => return Err(e),
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(5));
                }
            }
        }
    }

    fn kill_members(&self, container: &str) {
        for pid in self.pids(container).unwrap_or_default() {
            let Ok(pidfd) = Pidfd::open(pid) else { continue };
            if self.contains(container, pid) {
                let _ = pidfd.signal(libc::SIGKILL);
            }
        }
    }

    /// Container ids that have a cgroup here.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(ids)
    }

    /// Removes the (empty) instance directory, and `netd/` when no other daemon uses it.
    pub fn remove_dir(&self) {
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Waits until no process is left in the cgroup at `path` or its descendants (`cgroup.events`
/// says `populated 0`), sleeping in poll(2): the kernel notifies the file with POLLPRI on every
/// change, and a change after the last read wakes the next poll at once. Gone is empty.
fn wait_unpopulated(path: &Path, deadline: Instant) -> io::Result<()> {
    let events = match File::open(path.join("cgroup.events")) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut buf = [0u8; 256];
    loop {
        // Read from the start each time: reading is what re-arms the notification.
        let n = match events.read_at(&mut buf, 0) {
            Ok(n) => n,
            // Removed meanwhile (by a concurrent kill): nothing left in it.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !is_populated(&String::from_utf8_lossy(&buf[..n])) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "processes of the container did not exit"));
        }
        let mut fds = [libc::pollfd { fd: events.as_raw_fd(), events: libc::POLLPRI, revents: 0 }];
        let timeout_ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for an fd `events` keeps open.
        if unsafe { libc::poll(fds.as_mut_ptr(), 1, timeout_ms) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// `populated 1` in a `cgroup.events` text (this cgroup or a descendant has a process).
fn is_populated(events: &str) -> bool {
    events.lines().any(|line| line.split_whitespace().eq(["populated", "1"]))
}

/// Where cgroup2 is mounted, from /proc/self/mountinfo (hybrid hosts have it at
/// /sys/fs/cgroup/unified, unified ones at /sys/fs/cgroup).
pub(crate) fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split_whitespace().nth(4)?;
        (right.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

fn mount_cgroup2(target: &Path) -> io::Result<PathBuf> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(target)?;
    mount(
        Some("cgroup2"),
        target,
        Some("cgroup2"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(io::Error::from)?;
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_cgroup2_mount_in_hybrid_and_unified_layouts() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                      26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw\n\
                      27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        assert_eq!(cgroup2_mount(hybrid), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let unified = "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(cgroup2_mount(unified), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(cgroup2_mount("27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw\n"), None);
    }

    #[test]
    fn reads_populated_from_cgroup_events() {
        assert!(is_populated("populated 1\nfrozen 0\n"));
        assert!(!is_populated("populated 0\nfrozen 0\n"));
        assert!(!is_populated("frozen 1\n"), "no populated line: nothing to wait for");
    }
}
