//! Making sure a bpffs is mounted where the pins go.
use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::error::{Error, Result};

/// True when `path` or one of its ancestors is a bpf filesystem mount point.
fn on_bpffs(path: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    mountinfo.lines().any(|line| {
        // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPER"
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            return false;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or("");
        right.split(' ').next() == Some("bpf") && path.starts_with(mount_point) && mount_point != "/"
    })
}

/// Mounts bpffs at /sys/fs/bpf when nothing covers `dir`, then creates `dir` as 0700 (or
/// tightens an existing one): pinned maps hold every container's addresses and flows.
pub fn ensure(dir: &Path) -> Result<()> {
    if !on_bpffs(dir) {
        let root = if dir.starts_with("/sys/fs/bpf") { Path::new("/sys/fs/bpf") } else { dir };
        std::fs::create_dir_all(root).map_err(|e| Error::os("create bpffs mount point", e))?;
        mount(Some("bpf"), root, Some("bpf"), MsFlags::empty(), Some("mode=0700"))
            .map_err(|e| Error::os(format!("mount bpffs at {}", root.display()), e))?;
    }
    crate::daemon::access::private_dir(dir).map_err(|e| Error::os("create bpffs dir", e))
}
