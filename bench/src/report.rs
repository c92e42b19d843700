//! results.json (raw samples, medians, ranges, ratios, machine) and the markdown table.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    goals::{self, Goal},
    probe::{Probe, Quantity},
    runner::{row_key, Collected, Plan, SampleError},
    stats::{self, Summary},
    topology::{Kind, Role},
};

/// 2: rows have `aggregate`; the attach rows are percentiles of pooled samples; rss1000.
/// 3: rows have `goal` and `goal_met`; derived rows (`aggregate` says `a − b` or `a / b`).
pub const SCHEMA: u32 = 3;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema: u32,
    /// RFC 3339, UTC, when the run finished.
    pub date: String,
    pub duration_secs: f64,
    pub machine: Machine,
    pub settings: Settings,
    pub topologies: Vec<TopologyStatus>,
    pub rows: Vec<Row>,
    pub errors: Vec<SampleError>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub quick: bool,
    #[serde(flatten)]
    pub plan: Plan,
    pub method: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopologyStatus {
    pub name: Kind,
    pub role: Role,
    pub available: bool,
    /// Why it is unavailable.
    pub reason: Option<String>,
    /// Probes this topology does not run: "n/a" (it has no such thing) or "unavailable: why".
    pub unsupported: BTreeMap<Probe, String>,
    pub info: BTreeMap<String, String>,
}

impl TopologyStatus {
    /// Probes that could not be set up, grouped by reason: (reason, probe names).
    pub fn unavailable_probes(&self) -> BTreeMap<&str, Vec<&'static str>> {
        let mut by_reason: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
        for (probe, why) in &self.unsupported {
            if let Some(why) = why.strip_prefix("unavailable: ") {
                by_reason.entry(why).or_default().push(probe.name());
            }
        }
        by_reason
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// `<quantity>.<pinning>`, e.g. `tcp_rr.tps.same_cpu`.
    pub id: String,
    pub probe: Probe,
    pub metric: String,
    pub unit: String,
    /// `same_cpu`, `cross_cpu`, or null for probes that are not pinned.
    pub pinning: Option<String>,
    pub higher_is_better: bool,
    /// How each topology's headline (`median`) was computed from its samples: "median of
    /// rounds" (one sample per round), "once" (a single sample), or "p50 of all samples" /
    /// "p99 of all samples" (every sample of every round pooled; then `median` is that
    /// percentile, `min`/`max` those of all the samples).
    #[serde(default)]
    pub aggregate: String,
    /// Per topology name; null when the topology is unavailable or every sample failed.
    pub results: BTreeMap<String, Option<Summary>>,
    /// `netd/docker0` and `netd/veth`: ratios of medians (null when either is missing).
    pub ratios: BTreeMap<String, Option<f64>>,
    /// netd's goal for this row (issue #14), if it has one.
    #[serde(default)]
    pub goal: Option<Goal>,
    /// Whether netd's headline number meets `goal`; null without a goal, without a netd
    /// number, or when the goal is set for another endpoint count than the run's.
    #[serde(default)]
    pub goal_met: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    pub kernel: String,
    pub os: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub tools: BTreeMap<String, String>,
    /// /proc/loadavg (1, 5, 15 min) when the run started and when it ended: other work on
    /// the machine shows here, and in the spread of the cross-CPU rows.
    pub load_avg_start: String,
    pub load_avg_end: String,
}

pub fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    pub fn probe(load_avg_start: String) -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let field = |text: &str, key: &str| {
            text.lines()
                .find(|l| l.split(':').next().map(str::trim) == Some(key))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().trim_matches('"').to_string()))
                .unwrap_or_default()
        };
        let mem_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default();
        let mut tools = BTreeMap::new();
        if let Ok(v) = crate::sys::run(crate::sys::command("iperf3").arg("--version")) {
            tools.insert("iperf3".into(), v.lines().next().unwrap_or("").trim().to_string());
        }
        Self {
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
            cpu_model: field(&cpuinfo, "model name"),
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            tools,
            load_avg_start,
            load_avg_end: load_avg(),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{}, {} CPUs, {} GiB, kernel {} ({})",
            if self.cpu_model.is_empty() { "unknown CPU" } else { &self.cpu_model },
            self.cpus,
            self.memory_gib,
            self.kernel,
            self.os
        )
    }
}

/// The ratios reported per row, as (numerator role, denominator role): netd against Docker
/// and the floor, and Docker's own containers on netd against the same on docker0.
const RATIOS: [(Role, Role); 3] =
    [(Role::Netd, Role::Docker), (Role::Netd, Role::Floor), (Role::DockerOnNetd, Role::Docker)];

pub fn build_rows(plan: &Plan, collected: &Collected, topologies: &[TopologyStatus]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for (probe, q, pin) in plan.rows() {
        let id = |q: &Quantity| match pin {
            Some(p) => format!("{}.{}", q.id, p.id),
            None => q.id.to_string(),
        };
        let results: BTreeMap<String, Option<Summary>> = match &q.derived {
            // From the two rows it is derived from, built before it (same probe).
            Some(derived) => {
                let (a, b) = derived.operands();
                let headline = |q: &Quantity, topo: &str| {
                    rows.iter()
                        .find(|r| r.id == id(q))
                        .and_then(|r| r.results.get(topo).cloned().flatten())
                        .map(|s| s.median)
                };
                topologies
                    .iter()
                    .map(|t| {
                        let topo = t.name.name();
                        let v = headline(a, topo)
                            .zip(headline(b, topo))
                            .and_then(|(a, b)| derived.apply(a, b))
                            .and_then(|v| Summary::of(&[v]));
                        (topo.to_string(), v)
                    })
                    .collect()
            }
            None => {
                let per_topo = collected.samples.get(&row_key(q, pin));
                topologies
                    .iter()
                    .map(|t| {
                        let s = per_topo.and_then(|m| m.get(&t.name)).and_then(|v| match q.pooled {
                            Some(p) => Summary::pooled(v, p),
                            None => Summary::of(v),
                        });
                        (t.name.name().to_string(), s)
                    })
                    .collect()
            }
        };
        let by_role = |role: Role| topologies.iter().find(|t| t.role == role).map(|t| t.name.name());
        let mut ratios = BTreeMap::new();
        for (num, den) in RATIOS {
            if let (Some(n), Some(d)) = (by_role(num), by_role(den)) {
                let r = stats::ratio(results[n].as_ref(), results[d].as_ref());
                ratios.insert(format!("{n}/{d}"), r);
            }
        }
        let goal = goals::for_quantity(q.id);
        let goal_met = goal.as_ref().and_then(|g| {
            let netd = topologies.iter().find(|t| t.role == Role::Netd)?;
            let value = results.get(netd.name.name())?.as_ref()?.median;
            g.met(value, plan.endpoints)
        });
        rows.push(Row {
            id: id(q),
            probe,
            metric: plan.metric(q.metric),
            unit: q.unit.to_string(),
            pinning: pin.map(|p| p.id.clone()),
            higher_is_better: q.higher_is_better,
            aggregate: match (&q.derived, q.pooled, probe.once()) {
                (Some(d), ..) => d.describe(),
                (None, Some(p), _) => format!("p{:.0} of all samples", p * 100.0),
                (None, None, true) => "once".to_string(),
                (None, None, false) => "median of rounds".to_string(),
            },
            results,
            ratios,
            goal,
            goal_met,
        });
    }
    rows
}

pub fn write_json(results: &Results, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(results)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Compact numbers: 62.5k, 812, 23.4, 1.25.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if a >= 100_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A ratio with two decimals, or two significant digits below 0.1 (a 1,000-port publish is
/// 0.00094 of Docker's time, not "0.00").
fn ratio_text(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.1 {
        let decimals = (1 - v.abs().log10().floor() as i32).max(2) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2}")
    }
}

/// A table cell: "median [min–max]" (just the value for a single sample), or why there is
/// no number.
pub fn cell_text(t: &TopologyStatus, row: &Row) -> String {
    match short_status(t, row) {
        Some(status) => status,
        None => {
            let sum = row.results.get(t.name.name()).and_then(|x| x.as_ref()).expect("short_status checked");
            if sum.samples.len() == 1 {
                fmt_value(sum.median)
            } else {
                format!("{} [{}–{}]", fmt_value(sum.median), fmt_value(sum.min), fmt_value(sum.max))
            }
        }
    }
}

/// None when the cell has numbers; else "unavailable", "n/a", "failed", or why the run
/// skipped it (e.g. "opt-in: --probes rss1000").
pub fn short_status(t: &TopologyStatus, row: &Row) -> Option<String> {
    if !t.available {
        return Some("unavailable".into());
    }
    if let Some(why) = t.unsupported.get(&row.probe) {
        return Some(match why.strip_prefix("skipped: ") {
            Some(skipped) => skipped.to_string(),
            None if why == "n/a" => "n/a".into(),
            None => "unavailable".into(),
        });
    }
    match row.results.get(t.name.name()) {
        Some(Some(_)) => None,
        _ => Some("failed".into()),
    }
}

fn pinning_label(p: Option<&str>) -> &str {
    match p {
        Some("same_cpu") => "same",
        Some("cross_cpu") => "cross",
        Some(other) => other,
        None => "–",
    }
}

pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    s.push_str(&format!("### netd benchmark — {}\n\n", r.date));
    s.push_str(&format!(
        "Machine: {}; load average {} at the start, {} at the end.  \n",
        r.machine.describe(),
        r.machine.load_avg_start,
        r.machine.load_avg_end
    ));
    s.push_str(&format!(
        "Method: {} rounds × {} s per measurement, {}{}. Cells: median [min–max]; ↑ higher is better, ↓ lower is better.\n\n",
        r.settings.plan.rounds,
        r.settings.plan.secs,
        r.settings.method,
        if r.settings.quick { " (--quick)" } else { "" }
    ));
    let names: Vec<&TopologyStatus> = r.topologies.iter().collect();
    let ratio_names: Vec<String> = r.rows.first().map(|row| row.ratios.keys().cloned().collect()).unwrap_or_default();
    // The goal column only when some row has a goal (control-plane rows).
    let with_goals = r.rows.iter().any(|row| row.goal.is_some());
    s.push_str("| Metric | CPUs |");
    for t in &names {
        let extra = if t.role == Role::Floor { " (floor)" } else { "" };
        s.push_str(&format!(" {}{extra} |", t.name));
    }
    for rn in &ratio_names {
        s.push_str(&format!(" {rn} |"));
    }
    if with_goals {
        s.push_str(" netd goal |");
    }
    s.push_str("\n|---|---|");
    for _ in 0..names.len() + ratio_names.len() {
        s.push_str("---:|");
    }
    if with_goals {
        s.push_str("---|");
    }
    s.push('\n');
    for row in &r.rows {
        let arrow = if row.higher_is_better { "↑" } else { "↓" };
        s.push_str(&format!("| {} {} {arrow} | {} |", row.metric, row.unit, pinning_label(row.pinning.as_deref())));
        for t in &names {
            let cell = cell_text(t, row);
            s.push_str(&format!(" {cell} |"));
        }
        for rn in &ratio_names {
            let cell = row.ratios.get(rn).copied().flatten().map(ratio_text).unwrap_or_else(|| "–".into());
            s.push_str(&format!(" {cell} |"));
        }
        if with_goals {
            s.push_str(&format!(" {} |", goal_cell(row)));
        }
        s.push('\n');
    }
    s.push('\n');
    if with_goals {
        s.push_str(&goals_line(r));
    }
    for t in &r.topologies {
        if let Some(reason) = &t.reason {
            s.push_str(&format!("- {} unavailable: {reason}\n", t.name));
        }
        for (why, probes) in t.unavailable_probes() {
            s.push_str(&format!("- {}: {} unavailable: {why}\n", t.name, probes.join(", ")));
        }
    }
    if r.topologies.iter().any(|t| t.name == Kind::DockerNetd) {
        s.push_str(DOCKER_NETD_NOTE);
    }
    if r.rows.iter().any(|row| row.probe.needs_egress()) {
        s.push_str(EGRESS_NOTE);
    } else if r.settings.quick && !r.settings.plan.opt_in {
        // (`opt_in` is set exactly when --probes named the probes.)
        s.push_str("- --quick leaves out the container→outside rows (≈1 minute more); `--quick --probes egress-stream,egress-rr,egress-crr` runs just those.\n");
    }
    let rss: Vec<String> = r
        .topologies
        .iter()
        .filter_map(|t| t.info.get("daemon_rss_counts").map(|what| format!("{}: {what}", t.name)))
        .collect();
    if !rss.is_empty() && r.rows.iter().any(|row| row.probe == Probe::Rss) {
        s.push_str(&format!("- Daemon RSS counts {}.\n", rss.join("; ")));
    }
    let plan = &r.settings.plan;
    // Results of schema 2 (rewritten by `report`) had no detach rows: disconnect was not timed.
    let detach_timed = r.rows.iter().any(|row| row.id.starts_with("detach."));
    if r.rows.iter().any(|row| row.probe == Probe::Attach) && !detach_timed {
        s.push_str(&format!(
            "- Attach: wall time of the CLI's `network connect` (a spare container to a spare network; `disconnect` not timed), {} per round × {} rounds = {} per topology; p50/p99 over all {} of them, [min–max] of all of them.\n",
            plan.attach_per_round,
            plan.rounds,
            plan.attach_per_round * plan.rounds,
            plan.attach_per_round * plan.rounds,
        ));
    }
    if detach_timed {
        s.push_str(&format!(
            "- Attach/detach: wall time of the CLI's `network connect` of a spare container to a spare network, and of the `network disconnect` after it, {} per round × {} rounds = {} of each per topology; p50/p99 over all {} of them, [min–max] of all of them.\n",
            plan.attach_per_round,
            plan.rounds,
            plan.attach_per_round * plan.rounds,
            plan.attach_per_round * plan.rounds,
        ));
    }
    if r.rows.iter().any(|row| row.probe == Probe::RunRm) {
        s.push_str(&format!(
            "- run/rm: wall time of the CLI's `run -d --network none` and `run -d --network NET` (netd: its user-defined network; docker0: the default bridge, image + `sleep`; docker-netd: its netd network), then of each one's `rm -f`, back to back; {} pairs per round × {} rounds = {} of each; p50 over all of them, [min–max] of all of them. Network cost = p50 with NET − p50 with none.\n",
            plan.cycles_per_round,
            plan.rounds,
            plan.cycles_per_round * plan.rounds,
        ));
    }
    if r.rows.iter().any(|row| row.probe == Probe::Parallel) {
        s.push_str(&format!(
            "- Parallel clients: wall time of {n} CLI `run -d --network NET` one after another, then of {n} started at once (from their release to the last one's exit), once per round, each batch removed and the kernel's namespace tear-down waited for before the next; median of rounds. The ratio is of the medians. CPU busy: the machine's CPU time (/proc/stat, all CPUs, 10 ms ticks) not idle during each batch; with every CPU busy at once, the batch is as fast as the CPUs allow, whatever the daemon does.\n",
            n = crate::probe::PARALLEL_CLIENTS,
        ));
    }
    if r.rows.iter().any(|row| row.probe == Probe::Rss1000) {
        s.push_str(&endpoints_note(r));
    }
    if !r.errors.is_empty() {
        s.push_str(&format!("- {} measurement(s) failed; see `errors` in results.json.\n", r.errors.len()));
    }
    let mut versions: Vec<String> = r
        .topologies
        .iter()
        .flat_map(|t| t.info.iter().filter(|(k, _)| k.ends_with("_version")).map(|(k, v)| format!("{k} {v}")))
        .chain(r.machine.tools.values().cloned())
        .collect();
    // docker0 and docker-netd run the same dockerd; netd and docker-netd the same netd.
    let mut seen = std::collections::BTreeSet::new();
    versions.retain(|v| seen.insert(v.clone()));
    if !versions.is_empty() {
        s.push_str(&format!("- Versions: {}.\n", versions.join(", ")));
    }
    if let Some(head) = r.topologies.iter().find_map(|t| t.info.get("workspace_head")).filter(|h| !h.is_empty()) {
        s.push_str(&format!("- Workspace HEAD during the run: {head} (netd itself is the binary NETD_BIN named).\n"));
    }
    s
}

/// The goal column's cell: `≤ 8 ✓`, `≤ 8 ✗`, unchecked (`≤ 5 at 1,000`) or empty.
fn goal_cell(row: &Row) -> String {
    let Some(goal) = &row.goal else { return String::new() };
    match row.goal_met {
        Some(true) => format!("{} ✓", goal.text()),
        Some(false) => format!("{} ✗", goal.text()),
        None => goal.text(),
    }
}

/// The line under the table that sums up netd's goals: how many are met, which are not.
fn goals_line(r: &Results) -> String {
    let with_goal: Vec<&Row> = r.rows.iter().filter(|row| row.goal.is_some()).collect();
    let checked: Vec<&Row> = with_goal.iter().copied().filter(|row| row.goal_met.is_some()).collect();
    let netd = r.topologies.iter().find(|t| t.role == Role::Netd).map(|t| t.name.name()).unwrap_or("netd");
    let missed: Vec<String> = checked
        .iter()
        .filter(|row| row.goal_met == Some(false))
        .map(|row| {
            let value = row.results.get(netd).cloned().flatten().map(|s| fmt_value(s.median)).unwrap_or_default();
            let goal = row.goal.as_ref().map(Goal::text).unwrap_or_default();
            format!("{} {value} {} (goal {goal})", row.metric, row.unit)
        })
        .collect();
    let source = with_goal.first().and_then(|row| row.goal.as_ref()).map(|g| g.source.as_str()).unwrap_or("");
    let mut line = format!(
        "- netd goals ({source}): {} of {} met{}",
        checked.len() - missed.len(),
        checked.len(),
        if missed.is_empty() { String::new() } else { format!("; missed: {}", missed.join("; ")) }
    );
    let unchecked = with_goal.len() - checked.len();
    if unchecked > 0 {
        line.push_str(&format!(
            "; {unchecked} not checked (no netd number, or set for another endpoint count than this run's {})",
            crate::runner::fmt_count(r.settings.plan.endpoints)
        ));
    }
    line.push_str(". Medians include the CLI process.\n");
    line
}

/// The note under the table about Docker's containers on netd.
const DOCKER_NETD_NOTE: &str = "- docker-netd: docker0's dockerd, image and commands, with the containers on a `docker network create -d netd --ipam-driver netd` network (netd's remote driver; netd runs beside dockerd, in its netns, with the same uplink): container↔container through netd's eBPF forwarding, `-p` through netd's in-kernel publish, container→outside through netd's masquerade. docker-netd/docker0 is Docker on netd against Docker on docker0. Its network is a user-defined one, for which Docker also sets up its embedded DNS (docker0 has none): its run and connect rows include that.\n";

/// The note under the table about the "container → outside" rows.
const EGRESS_NOTE: &str = "- container→outside: the client to a server in an \"outside\" netns (198.51.100.1) — netd: the client container through the daemon's `--uplink`, masqueraded to 198.51.100.2 in eBPF; docker0: the client container through dockerd's netns, iptables MASQUERADE + nf_conntrack; veth (floor): a client netns → veth → a router netns with forwarding on → veth → the outside netns, no NAT.\n";

/// The note under the table about the rss1000 rows.
fn endpoints_note(r: &Results) -> String {
    let n = crate::runner::fmt_count(r.settings.plan.endpoints);
    let ran = |kind: Kind| {
        r.topologies.iter().any(|t| t.name == kind && t.available && !t.unsupported.contains_key(&Probe::Rss1000))
    };
    let mut s = format!(
        "- {n} endpoints (probe rss1000, once per run, after the rounds): `run -d` of {n} containers on the topology's network one after another (create), the daemon's RSS with all of them, then one `rm -f` of all {n} (remove"
    );
    if ran(Kind::Netd) || ran(Kind::Docker0) {
        s.push_str("; the CLI sends up to 50 requests at once: Docker's `parallelOperation`, which netd's CLI follows");
    }
    if ran(Kind::Docker0) {
        s.push_str(&format!(
            "). docker0's RSS counts dockerd + containerd, not the {n} containerd-shims (≈2.5 MiB PSS each"
        ));
    }
    s.push_str(").");
    if r.topologies.iter().any(|t| t.unsupported.get(&Probe::Rss1000).is_some_and(|w| w.starts_with("skipped: "))) {
        s.push_str(" On docker0 it is opt-in (`--probes rss1000`): 1,000 containers take ≈6 minutes there (measured: 265 s to create, 77 s to remove), with a containerd-shim each.");
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ratios_keep_two_significant_digits() {
        assert_eq!(ratio_text(1.2849), "1.28");
        assert_eq!(ratio_text(0.13), "0.13");
        assert_eq!(ratio_text(0.0661), "0.066");
        assert_eq!(ratio_text(0.000936), "0.00094");
        assert_eq!(ratio_text(0.0), "0.00");
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(fmt_value(62512.0), "62.5k");
        assert_eq!(fmt_value(123456.0), "123k");
        assert_eq!(fmt_value(812.4), "812");
        assert_eq!(fmt_value(23.44), "23.4");
        assert_eq!(fmt_value(1.254), "1.25");
    }

    fn status(kind: Kind, unsupported: &[(Probe, &str)]) -> TopologyStatus {
        TopologyStatus {
            name: kind,
            role: kind.role(),
            available: true,
            reason: None,
            unsupported: unsupported.iter().map(|(p, w)| (*p, w.to_string())).collect(),
            info: BTreeMap::new(),
        }
    }

    fn row(probe: Probe, results: &[(&str, Option<Summary>)]) -> Row {
        Row {
            id: "x".into(),
            probe,
            metric: "m".into(),
            unit: "u".into(),
            pinning: None,
            higher_is_better: false,
            aggregate: String::new(),
            results: results.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            ratios: BTreeMap::new(),
            goal: None,
            goal_met: None,
        }
    }

    #[test]
    fn cells_say_why_a_topology_has_no_number() {
        let docker = status(
            Kind::Docker0,
            &[(Probe::Rss1000, "skipped: opt-in: --probes rss1000"), (Probe::Publish, "unavailable: no -p")],
        );
        let veth = status(Kind::Veth, &[(Probe::Rss1000, "n/a")]);
        let r = row(Probe::Rss1000, &[("docker0", None), ("veth", None)]);
        assert_eq!(cell_text(&docker, &r), "opt-in: --probes rss1000");
        assert_eq!(cell_text(&veth, &r), "n/a");
        let r = row(Probe::Publish, &[("docker0", None)]);
        assert_eq!(cell_text(&docker, &r), "unavailable");
        let netd = status(Kind::Netd, &[]);
        assert_eq!(cell_text(&netd, &r), "failed");
    }

    #[test]
    fn a_single_sample_shows_without_a_range() {
        let netd = status(Kind::Netd, &[]);
        let r = row(Probe::Rss1000, &[("netd", Summary::of(&[34.7]))]);
        assert_eq!(cell_text(&netd, &r), "34.7");
        let r = row(Probe::Rss, &[("netd", Summary::of(&[12.0, 11.0, 13.0]))]);
        assert_eq!(cell_text(&netd, &r), "12.0 [11.0–13.0]");
    }

    #[test]
    fn pooled_rows_summarise_all_samples_by_percentile() {
        use crate::{
            probe::{ATTACH_P50_MS, ATTACH_P99_MS},
            runner::{row_key, Collected},
        };
        let plan = Plan {
            rounds: 5,
            secs: 1.0,
            probes: vec![Probe::Attach, Probe::Rss1000],
            pinnings: Vec::new(),
            attach_per_round: 20,
            cycles_per_round: 4,
            endpoints: 200,
            opt_in: false,
        };
        let mut collected = Collected::default();
        let all: Vec<f64> = (1..=100).map(f64::from).collect();
        for q in [&ATTACH_P50_MS, &ATTACH_P99_MS] {
            collected.samples.entry(row_key(q, None)).or_default().insert(Kind::Netd, all.clone());
        }
        let rows = build_rows(&plan, &collected, &[status(Kind::Netd, &[])]);
        let by_id = |id: &str| rows.iter().find(|r| r.id == id).unwrap();
        let p99 = by_id("attach.p99_ms");
        assert_eq!(p99.aggregate, "p99 of all samples");
        let s = p99.results["netd"].as_ref().unwrap();
        assert_eq!((s.median, s.min, s.max, s.samples.len()), (99.0, 1.0, 100.0, 100));
        assert_eq!(by_id("attach.p50_ms").results["netd"].as_ref().unwrap().median, 50.0);
        let rss = by_id("endpoints.rss_mib");
        assert_eq!(rss.metric, "daemon RSS with 200 endpoints");
        assert_eq!(rss.aggregate, "once");
    }

    #[test]
    fn derived_rows_come_from_the_headlines_and_goals_are_checked_for_netd() {
        use crate::{
            probe::{
                ENDPOINTS_CREATE_S, ENDPOINTS_REMOVE_S, PARALLEL_AT_ONCE_S, PARALLEL_SEQUENTIAL_S, RM_NET_MS,
                RM_NONE_MS, RUN_NET_MS, RUN_NONE_MS,
            },
            runner::{row_key, Collected},
        };
        let mut plan = Plan {
            rounds: 3,
            secs: 1.0,
            probes: vec![Probe::RunRm, Probe::Parallel, Probe::Rss1000],
            pinnings: Vec::new(),
            attach_per_round: 34,
            cycles_per_round: 7,
            endpoints: 1000,
            opt_in: true,
        };
        let mut collected = Collected::default();
        let mut put = |q: &Quantity, kind: Kind, v: &[f64]| {
            collected.samples.entry(row_key(q, None)).or_default().insert(kind, v.to_vec());
        };
        put(&RUN_NONE_MS, Kind::Netd, &[10.0, 8.0, 9.0]);
        put(&RUN_NET_MS, Kind::Netd, &[14.0, 12.0, 13.0]);
        put(&RUN_NONE_MS, Kind::Docker0, &[200.0]);
        put(&RUN_NET_MS, Kind::Docker0, &[250.0]);
        put(&RM_NONE_MS, Kind::Netd, &[7.0]);
        put(&RM_NET_MS, Kind::Netd, &[20.0]);
        put(&PARALLEL_SEQUENTIAL_S, Kind::Netd, &[1.0]);
        put(&PARALLEL_AT_ONCE_S, Kind::Netd, &[0.4]);
        put(&ENDPOINTS_CREATE_S, Kind::Netd, &[4.0]);
        put(&ENDPOINTS_REMOVE_S, Kind::Netd, &[3.5]);
        let topologies = [status(Kind::Netd, &[]), status(Kind::Docker0, &[])];
        let rows = build_rows(&plan, &collected, &topologies);
        let by_id = |id: &str| rows.iter().find(|r| r.id == id).unwrap().clone();
        let headline = |row: &Row, topo: &str| row.results[topo].as_ref().map(|s| s.median);

        let run_cost = by_id("run.network_cost_ms");
        assert_eq!(run_cost.aggregate, "run.net_ms − run.none_ms");
        assert_eq!((headline(&run_cost, "netd"), headline(&run_cost, "docker0")), (Some(4.0), Some(50.0)));
        assert_eq!(run_cost.ratios["netd/docker0"], Some(0.08));
        assert_eq!(run_cost.goal_met, Some(true));
        let rm_cost = by_id("rm.network_cost_ms");
        assert_eq!((headline(&rm_cost, "netd"), headline(&rm_cost, "docker0")), (Some(13.0), None));
        assert_eq!(rm_cost.goal_met, Some(false));
        let speedup = by_id("parallel.speedup");
        assert_eq!(headline(&speedup, "netd"), Some(2.5));
        assert!(speedup.higher_is_better);
        assert_eq!(speedup.goal_met, Some(true));
        assert_eq!(by_id("endpoints.create_s").goal_met, Some(true));
        assert_eq!(by_id("endpoints.remove_s").goal_met, Some(false));
        assert_eq!(by_id("endpoints.rss_mib").goal_met, None, "no number");
        assert_eq!(by_id("run.none_ms").goal, None);

        let results = |rows: Vec<Row>, plan: Plan| Results {
            schema: SCHEMA,
            date: "2026-12-04T00:00:00Z".into(),
            duration_secs: 1.0,
            machine: Machine::default(),
            settings: Settings { quick: false, plan, method: String::new() },
            topologies: topologies.to_vec(),
            rows,
            errors: Vec::new(),
        };
        let md = markdown(&results(rows.clone(), plan.clone()));
        assert!(md.contains("| netd/docker0 | netd goal |"), "{md}");
        assert!(md.contains("| network cost of run -d (NET − none) ms ↓ | – | 4.00 | 50.0 | 0.080 | ≤ 5 ✓ |"), "{md}");
        assert!(md.contains("| rm -f of a --network none container p50 ms ↓ | – | 7.00 | failed | – |  |"), "{md}");
        assert!(md.contains("- netd goals (issue #14): 3 of 5 met; missed: network cost of rm -f (one endpoint − none) 13.0 ms (goal ≤ 5); remove 1,000 endpoints (one rm -f of all) 3.50 s (goal ≤ 3 at 1,000); 1 not checked"), "{md}");

        // Another endpoint count: the scale goals are shown, not checked.
        plan.endpoints = 200;
        let rows = build_rows(&plan, &collected, &topologies);
        let create = rows.iter().find(|r| r.id == "endpoints.create_s").unwrap();
        assert_eq!(create.goal_met, None);
        assert!(markdown(&results(rows.clone(), plan)).contains("| ≤ 5 at 1,000 |"));
    }
}
