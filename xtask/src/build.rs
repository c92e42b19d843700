//! `cargo xtask build`: setup check, then the release build of the workspace and the shipped
//! binaries.
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};

use crate::{paths, process::run_step, setup};

/// The CLI's target: static, without glibc's start-up (see netd/src/main.rs).
pub const CLI_TARGET: &str = "x86_64-unknown-linux-musl";
/// The rustup component with that target's standard library.
pub const CLI_STD: &str = "rust-std-x86_64-unknown-linux-musl";

/// Builds the default members in release mode (netd/build.rs builds netd-ebpf through
/// aya-build, which needs bpf-linker on PATH), then the shipped binaries with the `dist`
/// profile (LTO) into target/dist: `netd-daemon`, and `netd` (the CLI) for [`CLI_TARGET`]
/// without the eBPF programs, which only the daemon loads. Returns the CLI's path.
pub fn run() -> Result<PathBuf> {
    setup::ensure()?;
    run_step("build", paths::cargo().args(["build", "--release"]))?;
    let dist = ["build", "--profile", "dist", "-p", "netd", "--bin"];
    run_step("build (dist daemon)", paths::cargo().args(dist).arg("netd-daemon"))?;
    run_step(
        "build (dist CLI)",
        paths::cargo().args(dist).args(["netd", "--no-default-features", "--target", CLI_TARGET]),
    )?;
    let netd = paths::netd_bin();
    let cli = paths::target_dir().join(CLI_TARGET).join("dist").join("netd");
    // Beside the daemon's binary, which the CLI runs for `netd daemon`; renamed into place, so
    // that a CLI running from the old file keeps it.
    let staged = netd.with_file_name(".netd.new");
    std::fs::copy(&cli, &staged).with_context(|| format!("build: copy {}", cli.display()))?;
    std::fs::rename(&staged, &netd).with_context(|| format!("build: install {}", netd.display()))?;
    let daemon = paths::daemon_bin();
    ensure!(daemon.is_file(), "build: {} was not produced", daemon.display());
    Ok(netd)
}
