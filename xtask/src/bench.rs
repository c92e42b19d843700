//! `cargo xtask bench`: builds, then runs the netd-bench scenarios against the build.
use std::ffi::OsString;

use anyhow::Result;

use crate::{build, paths, process::run_step_waiting};

/// `cargo run --release -p netd-bench -- [args]` with NETD_BIN set. On Ctrl-C, xtask waits
/// for the bench to clean up and exits with its status (the bench gets the SIGINT from the
/// terminal itself).
pub fn run(bench_args: &[OsString]) -> Result<()> {
    paths::require_root("cargo xtask bench")?;
    let netd = build::run()?;
    run_step_waiting(
        "bench",
        paths::cargo().args(["run", "--release", "-p", "netd-bench", "--"]).args(bench_args).env("NETD_BIN", netd),
    )
}
