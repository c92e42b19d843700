//! `cargo xtask fuzz [--seconds N] [TARGET]`: the cargo-fuzz targets in `fuzz/` (the `-p`
//! parser, network IPAM flags, `--format` templates, the embedded DNS's answers, API request
//! bodies), each for N seconds (default 300), one after another; stops at the first crash
//! (the input is left under fuzz/artifacts/TARGET/). Installs cargo-fuzz when missing.
//! `cargo xtask test` runs each target for [`SECONDS_IN_TEST`] after the tests.
use anyhow::{bail, Result};

use crate::{
    paths,
    process::{probe, run_step},
};

pub const TARGETS: [&str; 5] = ["publish_spec", "network_ipam", "template", "dns_query", "api_request"];

/// How long `cargo xtask test` fuzzes each target: long enough to replay the seeds and the
/// corpus and to mutate beyond them, short enough for CI (the build takes minutes).
pub const SECONDS_IN_TEST: u64 = 12;

/// The cargo-fuzz `cargo xtask setup` installs (builds with stable Rust).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

#[derive(Debug, clap::Args)]
pub struct FuzzArgs {
    /// How long each target runs.
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// One target (default: all).
    target: Option<String>,
}

pub fn run(args: &FuzzArgs) -> Result<()> {
    let targets: Vec<&str> = match &args.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => bail!("no fuzz target {t}: one of {}", TARGETS.join(", ")),
        None => TARGETS.to_vec(),
    };
    fuzz(&targets, args.seconds)
}

/// Every target for `seconds` each.
pub fn run_all(seconds: u64) -> Result<()> {
    fuzz(&TARGETS, seconds)
}

fn fuzz(targets: &[&str], seconds: u64) -> Result<()> {
    ensure_cargo_fuzz()?;
    let root = paths::workspace_root();
    for &target in targets {
        // New inputs go to the (ignored) corpus dir; the committed seeds are read only.
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        run_step(
            &format!("fuzz {target}"),
            paths::command("rustup")
                .args(["run", "nightly", "cargo", "fuzz", "run", "--fuzz-dir", "fuzz", target])
                .arg(&corpus)
                .arg(root.join("fuzz/seeds").join(target))
                .args(["--", &format!("-max_total_time={seconds}"), "-rss_limit_mb=4096"])
                .current_dir(&root),
        )?;
    }
    Ok(())
}

/// Installs cargo-fuzz unless some version of it is there.
pub fn ensure_cargo_fuzz() -> Result<()> {
    if let Some(version) = probe(paths::command("rustup").args(["run", "nightly", "cargo", "fuzz", "--version"])) {
        println!("[setup] cargo-fuzz: {}", version.trim());
        return Ok(());
    }
    run_step(
        "setup: install cargo-fuzz",
        paths::cargo().args(["install", "cargo-fuzz", "--locked", "--version", CARGO_FUZZ_VERSION]),
    )
}
