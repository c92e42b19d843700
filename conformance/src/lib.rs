//! The Docker-fidelity suite's shared part. The same scenarios (`tests/conformance/scenarios/`,
//! Docker command lines) run against a real dockerd 20.10 (recorded by `netd-bench
//! conformance`, kept as golden files in `tests/conformance/docker/`) and against netd (the
//! `conformance` end-to-end test); each step's exit code, stdout and stderr are normalised
//! (ids, times, durations, pids, the program's own name) and compared. A step that differs
//! is either a documented departure (`tests/conformance/departures.toml`, each one explained
//! in `docs/docker-departures.md`) or a failure.
mod compare;
mod departures;
mod normalise;
mod scenario;

use std::path::{Path, PathBuf};

pub use compare::{compare, Report, Verdict};
pub use departures::Departures;
pub use normalise::Normaliser;
pub use scenario::{load_scenarios, Outcome, RecordedStep, Recording, Scenario, Step};

/// The repository's `tests/conformance/` directory.
pub fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance")
}

/// Where Docker's recordings live unless `NETD_CONFORMANCE_DOCKER` names another directory
/// (`cargo xtask conformance` records a fresh set there and compares against it).
pub fn recordings_dir() -> PathBuf {
    std::env::var_os("NETD_CONFORMANCE_DOCKER").map(PathBuf::from).unwrap_or_else(|| suite_dir().join("docker"))
}

/// The image every scenario runs; the recorder imports a busybox root under this name, and
/// netd (which has no images) records it as given.
pub const IMAGE: &str = "busybox";
