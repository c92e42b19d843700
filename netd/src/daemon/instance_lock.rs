//! One daemon per state dir, run dir and bpffs dir. A second daemon sharing any of them would
//! sweep the first's netns mounts, pins and links as leftovers of its own (issue 13), so the
//! daemon takes an exclusive `flock` on each directory before it changes anything, and keeps
//! them while it runs. flock locks belong to the open file: a daemon that is killed (`kill
//! -9`) leaves none behind, and no stale lock file can keep the next start out.
use std::{
    fs::File,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use nix::fcntl::{Flock, FlockArg};

/// The locks held for the daemon's lifetime.
pub struct InstanceLocks {
    _held: Vec<Flock<File>>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another netd daemon{} is using the {what} {}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), dir.display())]
    InUse { what: &'static str, dir: PathBuf, pid: Option<u32> },
    #[error("lock the {what} {}: {source}", dir.display())]
    Io { what: &'static str, dir: PathBuf, source: std::io::Error },
}

/// Locks each `(what, dir)`; the directories must exist.
pub fn lock_all(dirs: &[(&'static str, &Path)]) -> Result<InstanceLocks, LockError> {
    let mut held = Vec::with_capacity(dirs.len());
    for &(what, dir) in dirs {
        let io = |source| LockError::Io { what, dir: dir.to_path_buf(), source };
        // A directory opens read-only, which is all flock needs (bpffs holds no regular file).
        let file = File::open(dir).map_err(io)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => held.push(lock),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                let pid = file.metadata().ok().and_then(|m| holder_of(m.dev(), m.ino()));
                return Err(LockError::InUse { what, dir: dir.to_path_buf(), pid });
            }
            Err((_, errno)) => return Err(io(errno.into())),
        }
    }
    Ok(InstanceLocks { _held: held })
}

/// The pid holding a flock on the inode (`dev`, `ino`), from /proc/locks.
fn holder_of(dev: u64, ino: u64) -> Option<u32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let wanted = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&"FLOCK") && fields.get(5) == Some(&wanted.as_str()))
            .then(|| fields.get(4)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_dir_is_refused_naming_the_holder_and_freed_with_the_first() {
        let dir = std::env::temp_dir().join(format!("netd-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = lock_all(&[("run dir", &dir)]).unwrap();
        match lock_all(&[("run dir", &dir)]) {
            Err(LockError::InUse { what, pid, .. }) => {
                assert_eq!(what, "run dir");
                assert_eq!(pid, Some(std::process::id()));
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        let text = lock_all(&[("run dir", &dir)]).err().unwrap().to_string();
        assert_eq!(
            text,
            format!("another netd daemon (pid {}) is using the run dir {}", std::process::id(), dir.display())
        );
        drop(first);
        lock_all(&[("run dir", &dir)]).unwrap();
        std::fs::remove_dir(&dir).unwrap();
    }
}
