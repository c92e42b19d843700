//! `cargo xtask test`: builds, then runs every test with NETD_BIN pointing at the build.
use std::ffi::OsString;

use anyhow::Result;

use crate::{build, paths, process::run_step};

/// `cargo test --release --no-fail-fast [args]`: every suite runs even after a failure, and
/// xtask fails (with cargo's exit code) when any test failed.
pub fn run(cargo_test_args: &[OsString]) -> Result<()> {
    paths::require_root("cargo xtask test")?;
    let netd = build::run()?;
    run_step(
        "test",
        paths::cargo()
            .args(["test", "--release", "--no-fail-fast"])
            .args(cargo_test_args)
            .env("NETD_BIN", netd),
    )
}
