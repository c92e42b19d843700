//! Where things are: the workspace, cargo's bin dir, the netd binary; and who we run as.
use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Result};

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `$CARGO_HOME/bin`, or `~/.cargo/bin`: where rustup, cargo and bpf-linker are installed.
pub fn cargo_bin_dir() -> Option<PathBuf> {
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))?;
    Some(cargo_home.join("bin"))
}

/// `$PATH` with `extra` directories in front of it (those not already on it).
pub fn path_with(extra: &[PathBuf]) -> OsString {
    let current: Vec<PathBuf> = env::var_os("PATH").map(|path| env::split_paths(&path).collect()).unwrap_or_default();
    let missing = extra.iter().filter(|dir| !current.contains(dir)).cloned();
    let joined: Vec<PathBuf> = missing.chain(current.iter().cloned()).collect();
    env::join_paths(joined).expect("PATH entries never contain ':'")
}

/// `$PATH` with cargo's bin dir on it, so children (cargo → aya-build) find bpf-linker.
pub fn search_path() -> OsString {
    path_with(&cargo_bin_dir().into_iter().collect::<Vec<_>>())
}

/// A command for `program`, looked up and run with [`search_path`].
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env("PATH", search_path());
    command
}

/// The cargo that runs xtask (`$CARGO`), in the workspace root.
pub fn cargo() -> Command {
    let mut cargo = command(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo.current_dir(workspace_root());
    cargo
}

/// Cargo's target dir: `$CARGO_TARGET_DIR` (relative to the workspace root) or `target/`.
pub fn target_dir() -> PathBuf {
    let root = workspace_root();
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The netd binary (the CLI) that `cargo xtask build` produces (the `dist` profile: release +
/// LTO).
pub fn netd_bin() -> PathBuf {
    target_dir().join("dist").join("netd")
}

/// The daemon's binary, beside it (`netd daemon` runs it).
pub fn daemon_bin() -> PathBuf {
    netd_bin().with_file_name("netd-daemon")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails with "`task` must run as root" unless the effective uid is 0.
pub fn require_root(task: &str) -> Result<()> {
    if !is_root() {
        bail!("{task} must run as root");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("xtask").join("Cargo.toml").is_file());
        assert!(workspace_root().join("Cargo.toml").is_file());
    }

    #[test]
    fn path_with_prepends_only_absent_dirs() {
        let current = env::var_os("PATH").unwrap();
        let first = env::split_paths(&current).next().unwrap();
        assert_eq!(path_with(std::slice::from_ref(&first)), current);

        let new = PathBuf::from("/nonexistent/xtask-test-bin");
        let path = path_with(&[new.clone(), first]);
        let mut dirs = env::split_paths(&path);
        assert_eq!(dirs.next(), Some(new));
        assert!(dirs.eq(env::split_paths(&current)));
    }

    #[test]
    fn netd_bin_is_in_the_dist_dir() {
        assert!(netd_bin().ends_with("dist/netd"));
    }
}
