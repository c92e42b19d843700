//! netd-bench: netd vs Docker's docker0 vs a bare veth pair, in one run of interleaved rounds.
//! See DESIGN.md §7 and bench/README.md. `cargo xtask bench [--quick] [--rounds N]` runs it.

mod checkout;
mod cleanup;
mod conformance;
mod convergence;
mod goals;
mod load;
mod plot;
mod probe;
mod progress;
mod report;
mod runner;
mod setup;
mod stats;
mod sys;
mod topology;

use std::{path::PathBuf, time::Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use probe::{Pinning, Probe, Tools};
use progress::Progress;
use report::{Results, Settings, TopologyStatus};
use runner::Plan;
use topology::{Kind, Names, Topology, Unsupported};

#[derive(Parser)]
#[command(name = "netd-bench", about = "netd vs docker0 vs a bare veth pair", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Remove what earlier runs that were killed (SIGKILL) left behind: their netns,
    /// directories, mounts and the daemons they started.
    Cleanup,
    /// Rewrite results.md and results.png from a results.json (no measuring).
    Report {
        /// The results.json to read; the .md and .png are written beside it [default:
        /// bench/results.json of the checkout around the current directory].
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Docker's side of the Docker-fidelity suite: runs tests/conformance/scenarios against a
    /// real dockerd and records every command's exit code and output.
    Conformance(conformance::ConformanceArgs),
    /// Overlay convergence: time from `netd run` on one host until the other hosts of a
    /// cluster know the container, with 3 and 10 simulated hosts (etcd, netd per host).
    Convergence(convergence::ConvergenceArgs),
    /// Load server: TCP and UDP echo on --port (used inside the topologies).
    #[command(hide = true)]
    Serve(load::ServeArgs),
    /// TCP_RR client.
    #[command(hide = true)]
    Rr(load::ClientArgs),
    /// TCP_CRR client.
    #[command(hide = true)]
    Crr(load::ClientArgs),
    /// UDP_RR client.
    #[command(hide = true)]
    Udprr(load::ClientArgs),
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Short run: 3 rounds of 1 s measurements (unless --rounds/--secs), without the
    /// container→outside rows (unless --probes); well within 5 minutes.
    #[arg(long)]
    quick: bool,
    /// Interleaved rounds (default 5, or 3 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Seconds per measurement (default 3, or 1 with --quick).
    #[arg(long)]
    secs: Option<f64>,
    /// Topologies to compare.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Kind::ALL.to_vec())]
    topologies: Vec<Kind>,
    /// Probes to run [default: all but publish1000, and rss1000 without docker0; --quick also
    /// leaves out egress-stream, egress-rr and egress-crr]. Naming rss1000 here runs it on
    /// docker0 too (1,000 containers there: ≈6 minutes more).
    #[arg(long, value_enum, value_delimiter = ',')]
    probes: Option<Vec<Probe>>,
    /// Containers the rss1000 probe creates (default 1,000, or 200 with --quick).
    #[arg(long)]
    endpoints: Option<usize>,
    /// Where results.json, results.md and results.png go [default: bench/ of the netd
    /// checkout around the current directory, never the one the binary was built in].
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Do not install missing tools with apt-get.
    #[arg(long)]
    no_install: bool,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Cleanup) => cleanup::run(),
        Some(Command::Report { json: Some(json) }) => rewrite_report(&json),
        Some(Command::Report { json: None }) => {
            checkout::results_dir().and_then(|dir| rewrite_report(&dir.join("results.json")))
        }
        Some(Command::Conformance(a)) => conformance::record(a),
        Some(Command::Convergence(a)) => convergence::measure(a),
        Some(Command::Serve(a)) => load::serve(&a),
        Some(Command::Rr(a)) => print_report(load::ClientKind::Rr, &a),
        Some(Command::Crr(a)) => print_report(load::ClientKind::Crr, &a),
        Some(Command::Udprr(a)) => print_report(load::ClientKind::Udprr, &a),
        None => bench(cli.run),
    };
    if let Err(e) = result {
        eprintln!("netd-bench: {e:#}");
        std::process::exit(if sys::interrupted() { 130 } else { 1 });
    }
}

fn print_report(kind: load::ClientKind, args: &load::ClientArgs) -> Result<()> {
    let report = load::client(kind, args)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn bench(args: RunArgs) -> Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        bail!("must run as root (it creates network namespaces and starts dockerd)");
    }
    sys::install_signal_handler()?;
    let started = Instant::now();
    let load_at_start = report::load_avg();
    let mut kinds: Vec<Kind> = Vec::new();
    for k in &args.topologies {
        if !kinds.contains(k) {
            kinds.push(*k);
        }
    }
    let rounds = args.rounds.unwrap_or(if args.quick { 3 } else { 5 }).max(1);
    let mut probes: Vec<Probe> = Vec::new();
    let defaults = if args.quick { Probe::quick() } else { Probe::DEFAULT.to_vec() };
    for p in args.probes.as_deref().unwrap_or(&defaults) {
        if !probes.contains(p) {
            probes.push(*p);
        }
    }
    let plan = Plan {
        rounds,
        secs: args.secs.unwrap_or(if args.quick { 1.0 } else { 3.0 }),
        probes,
        pinnings: Pinning::defaults(),
        attach_per_round: runner::ATTACH_SAMPLES.div_ceil(rounds),
        cycles_per_round: runner::RUN_RM_SAMPLES.div_ceil(rounds),
        endpoints: args.endpoints.unwrap_or(if args.quick { 200 } else { 1000 }),
        opt_in: args.probes.is_some(),
    };
    if !(plan.secs > 0.0 && plan.secs <= 60.0) {
        bail!("--secs must be in (0, 60]");
    }
    if !(1..=5000).contains(&plan.endpoints) {
        bail!("--endpoints must be in 1..=5000");
    }
    let out_dir = match &args.out_dir {
        Some(dir) => dir.clone(),
        None => checkout::results_dir()?,
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let mut progress = Progress::new(0);
    let stale = cleanup::stale_runs();
    if !stale.is_empty() {
        let tags: Vec<String> = stale.iter().map(|p| format!("nb-{p}")).collect();
        progress.note(&format!(
            "note: killed runs left things behind ({}); `netd-bench cleanup` removes them",
            tags.join(", ")
        ));
    }
    if !args.no_install {
        if let Err(e) = setup::ensure_tools(&kinds, &mut progress) {
            sys::check_interrupted()?;
            progress.note(&format!("warning: installing tools: {e:#}"));
        }
    }
    let tools = Tools::find()?;
    let names = Names::for_this_process();

    // Set up every topology (each one's Drop tears it down, also on error, panic or Ctrl-C).
    let mut built: Vec<Box<dyn Topology>> = Vec::new();
    let mut statuses: Vec<TopologyStatus> = Vec::new();
    for &kind in &kinds {
        sys::check_interrupted()?;
        progress.note(&format!("setting up {kind}…"));
        let t0 = Instant::now();
        match topology_setup(kind, &names) {
            Ok(t) => {
                progress.note(&format!("  {kind} ready in {:.1} s", t0.elapsed().as_secs_f64()));
                let unsupported = plan
                    .probes
                    .iter()
                    .filter_map(|&p| match plan.support(t.as_ref(), p) {
                        Ok(()) => None,
                        Err(Unsupported::NotApplicable) => Some((p, "n/a".to_string())),
                        Err(Unsupported::Unavailable(why)) => Some((p, format!("unavailable: {why}"))),
                        Err(Unsupported::Skipped(why)) => Some((p, format!("skipped: {why}"))),
                    })
                    .collect();
                let mut info = t.info();
                if let Ok(cp) = t.control_plane() {
                    info.insert("daemon_rss_counts".into(), cp.daemon_label().into());
                }
                let status =
                    TopologyStatus { name: kind, role: kind.role(), available: true, reason: None, unsupported, info };
                for (why, probes) in status.unavailable_probes() {
                    progress.note(&format!("  {kind}: {} unavailable: {why}", probes.join(", ")));
                }
                statuses.push(status);
                built.push(t);
            }
            Err(e) => {
                sys::check_interrupted()?;
                let reason = format!("{e:#}");
                progress.note(&format!("  {kind} unavailable: {reason}"));
                statuses.push(TopologyStatus {
                    name: kind,
                    role: kind.role(),
                    available: false,
                    reason: Some(reason),
                    unsupported: Default::default(),
                    info: Default::default(),
                });
            }
        }
    }
    if built.is_empty() {
        bail!("no topology could be set up");
    }

    let refs: Vec<&dyn Topology> = built.iter().map(|b| b.as_ref()).collect();
    let mut progress = Progress::new(refs.iter().map(|&t| plan.measurements(t)).sum());
    let collected = runner::run(&plan, &refs, &tools, &mut progress)?;

    let rows = report::build_rows(&plan, &collected, &statuses);
    let results = Results {
        schema: report::SCHEMA,
        date: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        duration_secs: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        machine: report::Machine::probe(load_at_start),
        settings: Settings {
            quick: args.quick,
            plan,
            method: "interleaved rounds, topology order rotated each round, client and server pinned with taskset"
                .to_string(),
        },
        topologies: statuses,
        rows,
        errors: collected.errors,
    };
    write_outputs(&results, &out_dir, true)?;

    progress.note("cleaning up…");
    drop(refs);
    for t in built.into_iter().rev() {
        drop(t);
    }
    Ok(())
}

fn rewrite_report(json: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let results: Results = serde_json::from_str(&text).context("parsing results.json")?;
    let dir = json.parent().unwrap_or(std::path::Path::new("."));
    write_outputs(&results, dir, false)
}

/// results.md and results.png (and results.json unless `with_json` is false) in `dir`.
fn write_outputs(results: &Results, dir: &std::path::Path, with_json: bool) -> Result<()> {
    let json = dir.join("results.json");
    if with_json {
        report::write_json(results, &json)?;
    }
    let md = report::markdown(results);
    let md_path = dir.join("results.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    let png = dir.join("results.png");
    if let Err(e) = plot::draw(results, &png) {
        eprintln!("warning: plot: {e:#}");
    }
    println!("{md}");
    eprintln!("wrote {}, {} and {}", json.display(), md_path.display(), png.display());
    Ok(())
}

fn topology_setup(kind: Kind, names: &Names) -> Result<Box<dyn Topology>> {
    Ok(match kind {
        Kind::Veth => Box::new(topology::veth::VethPair::setup(names)?),
        Kind::Netd => Box::new(topology::netd::NetdNetwork::setup(names)?),
        Kind::Docker0 => Box::new(topology::docker::DockerBridge::setup(names, topology::docker::Driver::Docker0)?),
        Kind::DockerNetd => Box::new(topology::docker::DockerBridge::setup(names, topology::docker::Driver::Netd)?),
        Kind::Vxlan => Box::new(topology::overlay::VxlanPair::setup(names)?),
        Kind::Overlay => Box::new(topology::overlay::OverlayPair::setup(names)?),
    })
}
