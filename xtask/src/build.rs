//! `cargo xtask build`: setup check, then the release build of the workspace.
use std::path::PathBuf;

use anyhow::{ensure, Result};

use crate::{paths, process::run_step, setup};

/// Builds the default members in release mode (netd/build.rs builds netd-ebpf through
/// aya-build, which needs bpf-linker on PATH), then the netd binary with the `dist` profile
/// (LTO), and returns that binary's path.
pub fn run() -> Result<PathBuf> {
    setup::ensure()?;
    run_step("build", paths::cargo().args(["build", "--release"]))?;
    run_step("build (dist)", paths::cargo().args(["build", "--profile", "dist", "-p", "netd", "--bin", "netd"]))?;
    let netd = paths::netd_bin();
    ensure!(netd.is_file(), "build: {} was not produced", netd.display());
    Ok(netd)
}
