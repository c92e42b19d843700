//! `cargo xtask test`: builds, then runs every test with NETD_BIN pointing at the build, then
//! (when no test was named) a short run of every fuzz target.
use std::ffi::OsString;

use anyhow::Result;

use crate::{build, fuzz, paths, process::run_step};

/// `cargo test --release --no-fail-fast [args] -- --include-ignored`: every suite runs even
/// after a failure, and xtask fails (with cargo's exit code) when any test failed. Tests that
/// need root are `#[ignore]`d for a plain `cargo test`; here (as root) they run too.
pub fn run(cargo_test_args: &[OsString]) -> Result<()> {
    paths::require_root("cargo xtask test")?;
    let netd = build::run()?;
    fuzz::ensure_cargo_fuzz()?;
    lint()?;
    run_step(
        "test",
        paths::cargo()
            .args(["test", "--release", "--no-fail-fast"])
            .args(with_ignored(cargo_test_args))
            .env("NETD_BIN", netd),
    )?;
    // `cargo xtask test --test NAME` is for one suite: the fuzz run belongs to the whole one.
    match cargo_test_args.is_empty() {
        true => fuzz::run_all(fuzz::SECONDS_IN_TEST),
        false => Ok(()),
    }
}

/// The habits CI holds the tree to: rustfmt (nightly: rustfmt.toml groups imports with
/// unstable options), clippy with every warning an error, and netd's logic without eBPF.
fn lint() -> Result<()> {
    run_step(
        "fmt",
        paths::command("rustup")
            .args(["run", "nightly", "cargo", "fmt", "--all", "--check"])
            .current_dir(paths::workspace_root()),
    )?;
    run_step("clippy", paths::cargo().args(["clippy", "--release", "--all-targets", "--", "-D", "warnings"]))?;
    // The control plane's logic must keep building (and its tests running) without the eBPF
    // build: no bpf-linker, no root.
    run_step(
        "test without eBPF",
        paths::cargo().args(["test", "--release", "-p", "netd", "--no-default-features", "--lib"]),
    )
}

/// The caller's arguments with `--include-ignored` added for the test binaries.
fn with_ignored(args: &[OsString]) -> Vec<OsString> {
    let mut args = args.to_vec();
    if !args.iter().any(|a| a == "--") {
        args.push("--".into());
    }
    args.push("--include-ignored".into());
    args
}

#[cfg(test)]
mod tests {
    use super::with_ignored;

    #[test]
    fn ignored_tests_are_included_with_or_without_the_callers_test_args() {
        let s = |v: &[&str]| v.iter().map(Into::into).collect::<Vec<std::ffi::OsString>>();
        assert_eq!(with_ignored(&[]), s(&["--", "--include-ignored"]));
        assert_eq!(with_ignored(&s(&["-p", "netd"])), s(&["-p", "netd", "--", "--include-ignored"]));
        assert_eq!(with_ignored(&s(&["--", "dns"])), s(&["--", "dns", "--include-ignored"]));
    }
}
