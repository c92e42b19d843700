//! `netd-bench conformance`: Docker's side of the Docker-fidelity suite. Runs every scenario
//! of `tests/conformance/scenarios/` against a real dockerd 20.10 (a fresh one per scenario,
//! in a netns of its own, as the bench starts it) and writes what each command did — exit
//! code, stdout, stderr — as one JSON recording per scenario. netd's side and the comparison
//! are the `conformance` end-to-end test (tests/tests/conformance.rs).
use std::{path::PathBuf, process::Stdio, time::Duration};

use anyhow::{bail, Context, Result};
use netd_conformance::{Outcome, RecordedStep, Recording, Scenario, IMAGE};

use crate::{
    progress::Progress,
    setup, sys,
    topology::{
        docker::{import_image, Dockerd},
        Kind, Names,
    },
};

/// A command that takes longer than this is a broken scenario.
const STEP_LIMIT: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct ConformanceArgs {
    /// Where the scenario files are.
    #[arg(long, default_value_os_t = netd_conformance::suite_dir().join("scenarios"))]
    scenarios: PathBuf,
    /// Where the recordings go (one `<scenario>.json` each).
    #[arg(long)]
    out: PathBuf,
    /// Only the scenarios whose name contains this.
    #[arg(long)]
    only: Option<String>,
    /// Do not install missing tools with apt-get.
    #[arg(long)]
    no_install: bool,
}

pub fn record(args: ConformanceArgs) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("must run as root (it creates network namespaces and starts dockerd)");
    }
    sys::install_signal_handler()?;
    let scenarios: Vec<Scenario> = netd_conformance::load_scenarios(&args.scenarios)?
        .into_iter()
        .filter(|s| args.only.as_deref().is_none_or(|o| s.name.contains(o)))
        .collect();
    let mut progress = Progress::new(scenarios.len());
    if !args.no_install {
        setup::ensure_tools(&[Kind::Docker0], &mut progress)?;
    }
    for scenario in &scenarios {
        progress.start_step(&scenario.name);
        let recording = record_one(scenario)?;
        recording.save(&args.out)?;
        progress.finish_step(&scenario.name, &format!("{} steps", recording.steps.len()));
    }
    progress.finish();
    Ok(())
}

/// One scenario on a dockerd of its own, so that every scenario starts from Docker's state
/// after installation (its port allocator, for one, never goes back to the start of its range).
fn record_one(scenario: &Scenario) -> Result<Recording> {
    let names = Names::for_this_process();
    let dockerd = Dockerd::start(&names)?;
    // The image's CMD is busybox's shell, as in the real busybox image.
    import_image(&dockerd, &format!("{IMAGE}:latest"), &["CMD [\"sh\"]"])?;
    let mut steps = Vec::new();
    for step in &scenario.steps {
        sys::check_interrupted()?;
        let child = dockerd
            .cli()
            .args(&step.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", step.command))?;
        let out = sys::wait_output(child, STEP_LIMIT, &step.command)?;
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        steps.push(RecordedStep {
            command: step.command.clone(),
            outcome: Outcome {
                exit: out.status.code().unwrap_or(-1),
                stdout: text(out.stdout),
                stderr: text(out.stderr),
            },
        });
    }
    // Containers first: dockerd stops them itself on exit, but rm -f is quicker.
    let ids = sys::run(dockerd.cli().args(["ps", "-aq"]))?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        sys::run_quiet(dockerd.cli().args(["rm", "-f"]).args(&ids));
    }
    Ok(Recording { engine: format!("docker {}", dockerd.version), scenario: scenario.name.clone(), steps })
}
