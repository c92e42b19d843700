//! The round loop: every round visits every topology once, in an order rotated by one each
//! round, and runs every probe in every CPU pinning there. Medians over the rounds then
//! compare topologies that all saw the same drifts of a noisy machine.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::{
    probe::{self, Pinning, Probe, Quantity, Sample, Tools},
    progress::Progress,
    stats, sys,
    topology::{Kind, Topology, Unsupported},
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub rounds: usize,
    /// Seconds per measurement.
    pub secs: f64,
    pub probes: Vec<Probe>,
    pub pinnings: Vec<Pinning>,
    /// `network connect` operations timed per round by the attach probe (≥100 in all).
    pub attach_per_round: usize,
    /// run/rm cycles per round of the run-rm probe (≥[`RUN_RM_SAMPLES`] in all).
    #[serde(default)]
    pub cycles_per_round: usize,
    /// Containers the scale probe (`rss1000`) creates: 1,000, fewer with --quick.
    #[serde(default)]
    pub endpoints: usize,
    /// Whether probes that are opt-in on some topology (rss1000 on docker0) run there too:
    /// only when named in `--probes`.
    #[serde(default)]
    pub opt_in: bool,
}

/// Attach samples wanted in all, over every round.
pub const ATTACH_SAMPLES: usize = 100;

/// run/rm cycles (each: run -d and rm -f of a `--network none` container and of one on the
/// network) wanted in all, over every round: ≈1.5 s each on docker0, ≈0.1 s on netd.
pub const RUN_RM_SAMPLES: usize = 20;

/// `1000` → `1,000`.
pub fn fmt_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Plan {
    /// The rows of the report, in display order: (probe, quantity, pinning or None).
    pub fn rows(&self) -> Vec<(Probe, &'static Quantity, Option<&Pinning>)> {
        let mut rows = Vec::new();
        for &probe in &self.probes {
            for &q in probe.quantities() {
                if probe.pinned() {
                    rows.extend(self.pinnings.iter().map(|p| (probe, q, Some(p))));
                } else {
                    rows.push((probe, q, None));
                }
            }
        }
        rows
    }

    /// How many measurements the plan makes on `topo`.
    pub fn measurements(&self, topo: &dyn Topology) -> usize {
        self.probes
            .iter()
            .filter(|&&p| self.support(topo, p).is_ok())
            .map(|p| match (p.once(), p.pinned()) {
                (true, _) => 1,
                (false, true) => self.pinnings.len() * self.rounds,
                (false, false) => self.rounds,
            })
            .sum()
    }

    /// Whether `topo` runs `probe` in this plan (a veth pair has no published ports, a daemon
    /// without egress no way out; docker0
    /// runs rss1000 only when asked for by name).
    pub fn support(&self, topo: &dyn Topology, probe: Probe) -> Result<(), Unsupported> {
        if probe.needs_published_port() {
            topo.published_port()?;
        }
        if probe.needs_egress() {
            topo.egress()?;
        }
        if probe.needs_control_plane() {
            let cp = topo.control_plane()?;
            if probe.needs_publishing() {
                cp.can_publish()?;
            }
            if probe == Probe::Rss1000 && cp.scale_is_opt_in() && !self.opt_in {
                return Err(Unsupported::Skipped("opt-in: --probes rss1000".into()));
            }
        }
        Ok(())
    }

    /// A metric's text with the plan's counts filled in (`{n}` → the endpoint count).
    pub fn metric(&self, text: &str) -> String {
        text.replace("{n}", &fmt_count(self.endpoints))
    }

    /// The probe's name for the progress display, with its count where it has one.
    pub fn probe_label(&self, probe: Probe) -> String {
        match probe {
            Probe::Rss1000 => self.metric("{n} endpoints: create, RSS, remove"),
            other => other.name().to_string(),
        }
    }
}

/// Row key: quantity id and pinning id ("" for unpinned probes).
pub type RowKey = (String, String);

pub fn row_key(q: &Quantity, pin: Option<&Pinning>) -> RowKey {
    (q.id.to_string(), pin.map(|p| p.id.clone()).unwrap_or_default())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleError {
    /// 1-based; 0 for a once-per-run probe (run after the rounds).
    pub round: usize,
    pub topology: Kind,
    pub probe: Probe,
    pub pinning: Option<String>,
    pub error: String,
}

#[derive(Debug, Default)]
pub struct Collected {
    pub samples: BTreeMap<RowKey, BTreeMap<Kind, Vec<f64>>>,
    pub errors: Vec<SampleError>,
}

/// The topology order of round `round`: the list rotated left by `round`.
pub fn round_order<T: Copy>(items: &[T], round: usize) -> Vec<T> {
    let n = items.len();
    (0..n).map(|i| items[(i + round) % n.max(1)]).collect()
}

/// Runs the plan; returns Err only when interrupted (a failed measurement is recorded and the
/// run goes on).
pub fn run(plan: &Plan, topologies: &[&dyn Topology], tools: &Tools, progress: &mut Progress) -> Result<Collected> {
    let mut out = Collected::default();
    let indices: Vec<usize> = (0..topologies.len()).collect();
    for round in 0..plan.rounds {
        for i in round_order(&indices, round) {
            let topo = topologies[i];
            for &probe in plan.probes.iter().filter(|&&p| !p.once()) {
                if plan.support(topo, probe).is_err() {
                    continue;
                }
                let pins: Vec<Option<&Pinning>> =
                    if probe.pinned() { plan.pinnings.iter().map(Some).collect() } else { vec![None] };
                for pin in pins {
                    let at = format!("round {}/{}", round + 1, plan.rounds);
                    one(plan, tools, progress, &mut out, &at, round + 1, topo, probe, pin)?;
                }
            }
        }
    }
    // The once-per-run probes, after every round: their tear-down (1,000 namespaces) must not
    // overlap the data-plane rounds.
    for i in round_order(&indices, plan.rounds) {
        let topo = topologies[i];
        for &probe in plan.probes.iter().filter(|&&p| p.once()) {
            if plan.support(topo, probe).is_ok() {
                one(plan, tools, progress, &mut out, "once", 0, topo, probe, None)?;
            }
        }
    }
    progress.finish();
    Ok(out)
}

/// One measurement, recorded in `out` (samples, or the error). `round` is 1-based; 0 for the
/// once-per-run probes.
#[allow(clippy::too_many_arguments)]
fn one(
    plan: &Plan,
    tools: &Tools,
    progress: &mut Progress,
    out: &mut Collected,
    at: &str,
    round: usize,
    topo: &dyn Topology,
    probe: Probe,
    pin: Option<&Pinning>,
) -> Result<()> {
    sys::check_interrupted()?;
    let label = format!(
        "{at} · {} · {}{}",
        topo.kind(),
        plan.probe_label(probe),
        pin.map(|p| format!(" {}", p.label())).unwrap_or_default()
    );
    progress.start_step(&label);
    let pin_for_probe = pin.cloned().unwrap_or_else(|| plan.pinnings[0].clone());
    match probe::measure(probe, topo, &pin_for_probe, plan, tools) {
        Ok(samples) => {
            progress.finish_step(&label, &shown(&samples));
            for (q, v) in samples {
                out.samples.entry(row_key(q, pin)).or_default().entry(topo.kind()).or_default().push(v);
            }
        }
        Err(e) => {
            sys::check_interrupted()?;
            let error = format!("{e:#}");
            progress.finish_step(&label, &format!("FAILED: {error}"));
            out.errors.push(SampleError {
                round,
                topology: topo.kind(),
                probe,
                pinning: pin.map(|p| p.id.clone()),
                error,
            });
        }
    }
    Ok(())
}

/// A measurement's result for the progress display: each quantity's value, or for pooled
/// quantities (many samples) their percentile in this measurement.
fn shown(samples: &[Sample]) -> String {
    let mut quantities: Vec<&Quantity> = Vec::new();
    for (q, _) in samples {
        if !quantities.iter().any(|seen| seen.id == q.id) {
            quantities.push(q);
        }
    }
    quantities
        .iter()
        .filter_map(|q| {
            let values: Vec<f64> = samples.iter().filter(|(s, _)| s.id == q.id).map(|(_, v)| *v).collect();
            let v = match q.pooled {
                Some(p) => stats::percentile(&values, p)?,
                None => *values.first()?,
            };
            Some(format!("{} {}", crate::report::fmt_value(v), q.unit))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::topology::{ControlPlane, Endpoint};

    #[test]
    fn rounds_rotate_the_order() {
        let t = ["veth", "netd", "docker0"];
        assert_eq!(round_order(&t, 0), vec!["veth", "netd", "docker0"]);
        assert_eq!(round_order(&t, 1), vec!["netd", "docker0", "veth"]);
        assert_eq!(round_order(&t, 2), vec!["docker0", "veth", "netd"]);
        assert_eq!(round_order(&t, 3), vec!["veth", "netd", "docker0"]);
        assert!(round_order::<u8>(&[], 1).is_empty());
    }

    /// A topology with a daemon whose scale probe is opt-in (like docker0) or not (netd).
    struct Fake {
        opt_in: bool,
        ep: Endpoint,
    }

    impl Fake {
        fn new(opt_in: bool) -> Self {
            Self { opt_in, ep: Endpoint { netns: "/nonexistent".into(), ip: std::net::Ipv4Addr::LOCALHOST } }
        }
    }

    impl Topology for Fake {
        fn kind(&self) -> Kind {
            if self.opt_in {
                Kind::Docker0
            } else {
                Kind::Netd
            }
        }
        fn server(&self) -> &Endpoint {
            &self.ep
        }
        fn client(&self) -> &Endpoint {
            &self.ep
        }
        fn control_plane(&self) -> Result<&dyn ControlPlane, Unsupported> {
            Ok(self)
        }
    }

    impl ControlPlane for Fake {
        fn attach_once(&self) -> Result<(Duration, Duration)> {
            unreachable!("the scale-probe tests never call this")
        }
        fn daemon_rss(&self) -> Result<u64> {
            unreachable!("the scale-probe tests never call this")
        }
        fn daemon_label(&self) -> &'static str {
            "fake"
        }
        fn can_publish(&self) -> Result<(), Unsupported> {
            Ok(())
        }
        fn run_publishing(&self, _: u16) -> Result<(Duration, Result<Duration>)> {
            unreachable!("the scale-probe tests never call this")
        }
        fn container_name(&self, suffix: &str) -> String {
            suffix.to_string()
        }
        fn run_command(&self, _: &str, _: crate::topology::Network) -> Result<std::process::Command> {
            unreachable!("the scale-probe tests never call this")
        }
        fn remove_containers(&self, _: &[String], _: Duration) -> Result<()> {
            unreachable!("the scale-probe tests never call this")
        }
        fn endpoint_budget(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn scale_is_opt_in(&self) -> bool {
            self.opt_in
        }
    }

    fn plan(probes: &[Probe], opt_in: bool) -> Plan {
        Plan {
            rounds: 5,
            secs: 1.0,
            probes: probes.to_vec(),
            pinnings: Pinning::defaults(),
            attach_per_round: ATTACH_SAMPLES.div_ceil(5),
            cycles_per_round: RUN_RM_SAMPLES.div_ceil(5),
            endpoints: 1000,
            opt_in,
        }
    }

    #[test]
    fn rss1000_is_opt_in_where_the_daemon_says_so() {
        let (netd, docker) = (Fake::new(false), Fake::new(true));
        let default = plan(&Probe::DEFAULT, false);
        assert!(default.support(&netd, Probe::Rss1000).is_ok());
        match default.support(&docker, Probe::Rss1000) {
            Err(Unsupported::Skipped(why)) => assert_eq!(why, "opt-in: --probes rss1000"),
            other => panic!("docker0 rss1000 by default: {other:?}"),
        }
        assert!(default.support(&docker, Probe::Rss).is_ok());
        let named = plan(&[Probe::Rss1000], true);
        assert!(named.support(&docker, Probe::Rss1000).is_ok());
    }

    #[test]
    fn egress_rows_run_only_where_there_is_a_way_out() {
        // The fake has no `egress`: n/a, like a topology without an outside netns.
        let p = plan(&[Probe::EgressStream, Probe::EgressRr, Probe::EgressCrr, Probe::Rss], false);
        let netd = Fake::new(false);
        for probe in [Probe::EgressStream, Probe::EgressRr, Probe::EgressCrr] {
            assert!(probe.pinned() && probe.needs_egress() && !probe.needs_control_plane());
            assert!(matches!(p.support(&netd, probe), Err(Unsupported::NotApplicable)), "{probe:?}");
        }
        assert_eq!(p.measurements(&netd), 5);
    }

    #[test]
    fn once_probes_count_once_and_rounds_probes_every_round() {
        let netd = Fake::new(false);
        assert_eq!(plan(&[Probe::Rss1000], false).measurements(&netd), 1);
        assert_eq!(plan(&[Probe::Rss, Probe::Attach], false).measurements(&netd), 10);
        assert_eq!(plan(&[Probe::RunRm, Probe::Parallel], false).measurements(&netd), 10);
        assert_eq!(plan(&[Probe::Rss1000], false).measurements(&Fake::new(true)), 0);
    }

    #[test]
    fn attach_samples_reach_a_hundred_whatever_the_rounds() {
        for rounds in [1, 3, 5, 7, 9, 100] {
            assert!(ATTACH_SAMPLES.div_ceil(rounds) * rounds >= 100, "{rounds} rounds");
            assert!(RUN_RM_SAMPLES.div_ceil(rounds) * rounds >= RUN_RM_SAMPLES, "{rounds} rounds");
        }
    }

    #[test]
    fn metric_counts_read_like_the_issue() {
        assert_eq!(fmt_count(7), "7");
        assert_eq!(fmt_count(200), "200");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1234567), "1,234,567");
        let p = plan(&[], false);
        assert_eq!(p.metric(crate::probe::ENDPOINTS_RSS_MIB.metric), "daemon RSS with 1,000 endpoints");
        assert_eq!(p.probe_label(Probe::Rss1000), "1,000 endpoints: create, RSS, remove");
        assert_eq!(p.probe_label(Probe::Rss), "daemon RSS");
    }

    #[test]
    fn pooled_quantities_show_their_percentile() {
        use crate::probe::{ATTACH_P50_MS, ATTACH_P99_MS, DAEMON_RSS_MIB};
        let mut samples: Vec<Sample> = Vec::new();
        for v in 1..=100 {
            samples.push((&ATTACH_P50_MS, f64::from(v)));
            samples.push((&ATTACH_P99_MS, f64::from(v)));
        }
        assert_eq!(shown(&samples), "50.0 p50 ms, 99.0 p99 ms");
        assert_eq!(shown(&[(&DAEMON_RSS_MIB, 12.0)]), "12.0 MiB");
    }

    #[test]
    fn plan_rows_cover_every_quantity_and_pinning() {
        let pins = vec![
            Pinning { id: "same_cpu".into(), server_cpu: 1, client_cpu: 1 },
            Pinning { id: "cross_cpu".into(), server_cpu: 0, client_cpu: 1 },
        ];
        let plan = Plan {
            rounds: 5,
            secs: 1.0,
            probes: Probe::DEFAULT.to_vec(),
            pinnings: pins,
            attach_per_round: 1,
            cycles_per_round: 1,
            endpoints: 1000,
            opt_in: false,
        };
        let pinned: usize = Probe::DEFAULT.iter().filter(|p| p.pinned()).map(|p| p.quantities().len()).sum();
        let unpinned: usize = Probe::DEFAULT.iter().filter(|p| !p.pinned()).map(|p| p.quantities().len()).sum();
        assert_eq!(plan.rows().len(), pinned * 2 + unpinned);
    }
}
