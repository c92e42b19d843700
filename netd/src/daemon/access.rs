//! Who may read what the daemon keeps on disk and who may use its API (issue 8).
//!
//! - The state store holds `-e` values and the logs hold commands' output: root only (0700
//!   directories, 0600 files).
//! - The API runs commands as root: its socket is `root:netd 0660` when a group named `netd`
//!   exists (like Docker's `docker` group), else `0600`.
//! - A container's `hosts` and `resolv.conf` are read by its processes, which may not run as
//!   root: 0644, inside its 0700 directory (a bind mount resolves the path once, when it is
//!   mounted, so the directory's mode does not hide the mounted file).
//!
//! The daemon sets its umask to 0o077 before it creates anything ([`restrict_umask`]), so that
//! whatever it creates without thinking starts private, and sets the modes above explicitly,
//! so that they hold whatever umask it was started with and also for what an older version
//! left behind.
use std::{
    fs::{DirBuilder, File, OpenOptions, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use nix::unistd::Gid;

pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;
/// Read by container processes that may not run as root.
pub const CONTAINER_READABLE_FILE: u32 = 0o644;
/// The daemon's umask while it runs.
const DAEMON_UMASK: u32 = 0o077;
/// The group whose members may use the API without being root.
pub const API_GROUP: &str = "netd";

/// Makes everything the daemon creates from now on private unless opened up explicitly. Call
/// first thing in the daemon, before any file, directory or socket exists.
pub fn restrict_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(DAEMON_UMASK));
}

/// Creates `dir` (and missing parents) as 0700, or makes an existing one 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(dir)?;
    set_mode(dir, PRIVATE_DIR)
}

/// Opens `path` for reading and writing, created as 0600 if missing, and makes it 0600 if it
/// was there already (from an older version). Never truncates.
pub fn open_private_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(PRIVATE_FILE).open(path)?;
    file.set_permissions(Permissions::from_mode(PRIVATE_FILE))?;
    Ok(file)
}

/// Writes `contents` to `path` in place (the same inode: bind mounts of it see the change) and
/// makes it 0644.
pub fn write_container_readable(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write;
    let mut file =
        OpenOptions::new().write(true).create(true).truncate(true).mode(CONTAINER_READABLE_FILE).open(path)?;
    file.set_permissions(Permissions::from_mode(CONTAINER_READABLE_FILE))?;
    file.write_all(contents.as_bytes())
}

/// Creates `dir` and its missing parents as 0755: directories on the way to the API socket,
/// which the `netd` group must be able to traverse. An existing directory is left alone.
pub fn reachable_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        reachable_dir(parent)?;
    }
    match DirBuilder::new().mode(0o755).create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        result => result?,
    }
    set_mode(dir, 0o755)
}

/// The run dir: reachable (it holds the API socket by default), and writable by root only,
/// so that no one else can replace the socket; an existing one loses group and other write
/// permission.
pub fn run_dir(dir: &Path) -> io::Result<()> {
    reachable_dir(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        set_mode(dir, mode & !0o022)?;
    }
    Ok(())
}

/// Makes what an older version left in `<run-dir>/containers` private: the directory, each
/// container's directory and its `output.log` (its `hosts` and `resolv.conf` stay readable).
pub fn tighten_container_dirs(run_dir: &Path) -> io::Result<()> {
    let containers = run_dir.join("containers");
    if !containers.exists() {
        return Ok(());
    }
    set_mode(&containers, PRIVATE_DIR)?;
    for entry in std::fs::read_dir(&containers)? {
        let dir = entry?.path();
        if dir.is_dir() {
            set_mode(&dir, PRIVATE_DIR)?;
            let log = dir.join("output.log");
            if log.exists() {
                set_mode(&log, PRIVATE_FILE)?;
            }
        }
    }
    Ok(())
}

/// The owner group and mode of the API socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    pub group: Option<Gid>,
    pub mode: u32,
}

/// `root:netd 0660` when the `netd` group exists (its gid given), else root only.
pub fn socket_access(api_group: Option<Gid>) -> SocketAccess {
    match api_group {
        Some(gid) => SocketAccess { group: Some(gid), mode: 0o660 },
        None => SocketAccess { group: None, mode: 0o600 },
    }
}

/// Gives the freshly bound API socket its owner group and mode. Under the daemon's umask it was
/// created 0700 (root only), so it is never more open than the result.
pub fn secure_socket(path: &Path) -> io::Result<SocketAccess> {
    let group = nix::unistd::Group::from_name(API_GROUP).map_err(io::Error::from)?.map(|g| g.gid);
    let access = socket_access(group);
    if let Some(gid) = access.group {
        nix::unistd::chown(path, None, Some(gid)).map_err(io::Error::from)?;
    }
    set_mode(path, access.mode)?;
    Ok(access)
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("netd-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_socket_is_shared_with_the_netd_group_only_when_it_exists() {
        let gid = Gid::from_raw(4242);
        assert_eq!(socket_access(Some(gid)), SocketAccess { group: Some(gid), mode: 0o660 });
        assert_eq!(socket_access(None), SocketAccess { group: None, mode: 0o600 });
    }

    #[test]
    fn private_dirs_and_files_are_made_or_tightened() {
        let dir = scratch("private");
        private_dir(&dir.join("state")).unwrap();
        assert_eq!(mode_of(&dir.join("state")), 0o700);
        std::fs::set_permissions(dir.join("state"), Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir.join("state")).unwrap();
        assert_eq!(mode_of(&dir.join("state")), 0o700, "an older, open one is tightened");

        let file = dir.join("state/db");
        std::fs::write(&file, "kept").unwrap();
        std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        drop(open_private_file(&file).unwrap());
        assert_eq!(mode_of(&file), 0o600);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "kept", "never truncated");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn container_files_stay_readable_and_logs_become_private() {
        let run = scratch("run");
        let container = run.join("containers/abc");
        std::fs::create_dir_all(&container).unwrap();
        for (name, mode) in [("output.log", 0o644), ("hosts", 0o600)] {
            std::fs::write(container.join(name), "x").unwrap();
            std::fs::set_permissions(container.join(name), Permissions::from_mode(mode)).unwrap();
        }
        write_container_readable(&container.join("hosts"), "127.0.0.1\tlocalhost\n").unwrap();
        tighten_container_dirs(&run).unwrap();
        assert_eq!(mode_of(&run.join("containers")), 0o700);
        assert_eq!(mode_of(&container), 0o700);
        assert_eq!(mode_of(&container.join("output.log")), 0o600);
        assert_eq!(mode_of(&container.join("hosts")), 0o644);
        assert_eq!(std::fs::read_to_string(container.join("hosts")).unwrap(), "127.0.0.1\tlocalhost\n");

        std::fs::set_permissions(&run, Permissions::from_mode(0o777)).unwrap();
        run_dir(&run).unwrap();
        assert_eq!(mode_of(&run), 0o755, "no one else may replace the socket");
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn directories_to_the_socket_are_reachable() {
        // (The daemon's umask of 0o077 is covered end to end: changing it here would affect
        // the other tests of this process.)
        let dir = scratch("reachable");
        reachable_dir(&dir.join("a/b")).unwrap();
        assert_eq!((mode_of(&dir), mode_of(&dir.join("a")), mode_of(&dir.join("a/b"))), (0o755, 0o755, 0o755));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
