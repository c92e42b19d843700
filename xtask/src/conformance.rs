//! `cargo xtask conformance`: the Docker-fidelity suite against a live dockerd. Records
//! Docker's side afresh (netd-bench conformance: a real dockerd 20.10 per scenario, installed
//! from Debian's docker.io when missing), then runs netd's side and prints the table
//! (tests/tests/conformance.rs). `--record` writes the recordings over the golden files in
//! tests/conformance/docker/ that `cargo xtask test` compares against.
use std::path::PathBuf;

use anyhow::Result;

use crate::{build, paths, process::run_step_waiting};

#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// Write Docker's recordings over the golden files (tests/conformance/docker/).
    #[arg(long)]
    record: bool,
    /// Only the scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

pub fn run(args: &ConformanceArgs) -> Result<()> {
    paths::require_root("cargo xtask conformance")?;
    let netd = build::run()?;
    let out: PathBuf = if args.record {
        paths::workspace_root().join("tests/conformance/docker")
    } else {
        paths::target_dir().join("conformance/docker")
    };
    let mut record = paths::cargo();
    record.args(["run", "--release", "-p", "netd-bench", "--", "conformance", "--out"]).arg(&out);
    if let Some(only) = &args.only {
        record.args(["--only", only]);
    }
    run_step_waiting("record Docker's side", &mut record)?;
    let mut compare = paths::cargo();
    compare
        .args(["test", "--release", "-p", "netd-tests", "--test", "conformance", "--", "--nocapture"])
        .env("NETD_BIN", netd)
        .env("NETD_CONFORMANCE_DOCKER", &out);
    if let Some(only) = &args.only {
        compare.env("NETD_CONFORMANCE_ONLY", only);
    }
    run_step_waiting("compare netd with it", &mut compare)
}
