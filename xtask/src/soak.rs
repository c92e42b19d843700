//! `cargo xtask soak`: the long versions of the reliability tests (issue #13) — 500 churn
//! cycles, more rounds of parallel clients and of kill -9 under load — with NETD_BIN pointing
//! at the build. `cargo xtask test` runs the same tests bounded.
use std::ffi::OsString;

use anyhow::Result;

use crate::{build, paths, process::run_step};

/// The soak tests and the environment that lengthens each (read by the tests themselves).
const TESTS: [&str; 3] = ["churn", "concurrency", "crash_soak"];
const LENGTHS: [(&str, &str); 3] =
    [("NETD_CHURN_CYCLES", "500"), ("NETD_CONCURRENCY_ROUNDS", "10"), ("NETD_CRASH_ROUNDS", "40")];

/// `cargo test --release -p netd-tests --test churn --test concurrency --test crash_soak
/// [args] -- --include-ignored --nocapture` (the tests print their seed and measurements). A
/// length already set in the caller's environment wins.
pub fn run(cargo_test_args: &[OsString]) -> Result<()> {
    paths::require_root("cargo xtask soak")?;
    let netd = build::run()?;
    let mut cargo = paths::cargo();
    cargo.args(["test", "--release", "--no-fail-fast", "-p", "netd-tests"]);
    for test in TESTS {
        cargo.args(["--test", test]);
    }
    cargo.args(test_args(cargo_test_args)).env("NETD_BIN", netd);
    for (name, value) in LENGTHS {
        if std::env::var_os(name).is_none() {
            cargo.env(name, value);
        }
    }
    run_step("soak", &mut cargo)
}

/// The caller's arguments, with the test binaries told to include ignored tests and to show
/// what the tests print.
fn test_args(args: &[OsString]) -> Vec<OsString> {
    let mut args = args.to_vec();
    if !args.iter().any(|a| a == "--") {
        args.push("--".into());
    }
    args.extend(["--include-ignored".into(), "--nocapture".into()]);
    args
}

#[cfg(test)]
mod tests {
    use super::test_args;

    #[test]
    fn the_test_binaries_include_ignored_tests_and_print() {
        let s = |v: &[&str]| v.iter().map(Into::into).collect::<Vec<std::ffi::OsString>>();
        assert_eq!(test_args(&[]), s(&["--", "--include-ignored", "--nocapture"]));
        assert_eq!(test_args(&s(&["--", "kill_9"])), s(&["--", "kill_9", "--include-ignored", "--nocapture"]));
    }
}
