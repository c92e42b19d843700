//! `cargo xtask setup|build|run|test|soak|fuzz|bench|conformance`: the one entry point for developers and CI.
mod bench;
mod build;
mod conformance;
mod fuzz;
mod paths;
mod process;
mod run;
mod setup;
mod soak;
mod test;

use std::{ffi::OsString, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Set up, build, run, test and benchmark netd")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the build and test prerequisites (root; idempotent, skips what is present).
    Setup,
    /// Setup check, then `cargo build --release` and the shipped binaries with LTO in
    /// target/dist: `netd` (the CLI, static with musl) and `netd-daemon`.
    Build,
    /// Setup + build, then run `netd daemon [ARGS]` in the foreground (root).
    Run {
        /// Arguments for `netd daemon`, e.g. `-- --uplink eth0`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Setup + build, then `cargo test --release --no-fail-fast [ARGS]` with NETD_BIN set (root).
    Test {
        /// Extra arguments for `cargo test`, e.g. `-- e2e -- --nocapture`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Setup + build, then the long reliability tests: 500 churn cycles, more rounds of
    /// parallel clients and of kill -9 under load (root).
    Soak {
        /// Extra arguments for `cargo test`, e.g. `-- kill_9`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// The cargo-fuzz targets (`fuzz/`), each for `--seconds` (installs cargo-fuzz if missing).
    Fuzz(fuzz::FuzzArgs),
    /// Setup + build, then run the benchmarks (`netd-bench [ARGS]`) with NETD_BIN set (root).
    Bench {
        /// Arguments for netd-bench, e.g. `--quick` or `--rounds 5`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Setup + build, then the Docker-fidelity suite against a live dockerd 20.10 (installed
    /// when missing): every scenario on both, and a table of the differences (root).
    Conformance(conformance::ConformanceArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            process::exit_code(&err)
        }
    }
}

fn dispatch(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Setup => setup::run(),
        Task::Build => build::run().map(drop),
        Task::Run { args } => run::run(&args),
        Task::Test { args } => test::run(&args),
        Task::Soak { args } => soak::run(&args),
        Task::Fuzz(args) => fuzz::run(&args),
        Task::Bench { args } => bench::run(&args),
        Task::Conformance(args) => conformance::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Task {
        Cli::try_parse_from(std::iter::once("xtask").chain(argv.iter().copied())).expect("arguments parse").command
    }

    fn forwarded(task: Task) -> Vec<String> {
        let args = match task {
            Task::Run { args } | Task::Test { args } | Task::Soak { args } | Task::Bench { args } => args,
            other => panic!("no forwarded arguments in {other:?}"),
        };
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn forwards_arguments_after_double_dash() {
        let args = forwarded(parse(&["test", "--", "e2e", "--", "--nocapture"]));
        assert_eq!(args, ["e2e", "--", "--nocapture"]);
    }

    #[test]
    fn forwards_flags_without_double_dash() {
        assert_eq!(forwarded(parse(&["bench", "--rounds", "5"])), ["--rounds", "5"]);
        assert_eq!(forwarded(parse(&["run", "--uplink", "eth0"])), ["--uplink", "eth0"]);
    }

    #[test]
    fn no_arguments_forward_nothing() {
        assert!(forwarded(parse(&["test"])).is_empty());
    }

    #[test]
    fn setup_and_build_take_no_arguments() {
        assert!(Cli::try_parse_from(["xtask", "setup", "extra"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "build", "extra"]).is_err());
    }
}
