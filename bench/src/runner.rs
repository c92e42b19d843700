//! The round loop: every round visits every topology once, in an order rotated by one each
//! round, and runs every probe in every CPU pinning there. Medians over the rounds then
//! compare topologies that all saw the same drifts of a noisy machine.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::probe::{self, Pinning, Probe, Quantity, Tools};
use crate::progress::Progress;
use crate::sys;
use crate::topology::{Kind, Topology, Unsupported};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub rounds: usize,
    /// Seconds per measurement.
    pub secs: f64,
    pub probes: Vec<Probe>,
    pub pinnings: Vec<Pinning>,
    /// `network connect` operations timed per round by the attach probe.
    pub attach_per_round: usize,
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
            .filter(|&&p| support(topo, p).is_ok())
            .map(|p| if p.pinned() { self.pinnings.len() } else { 1 })
            .sum::<usize>()
            * self.rounds
    }
}

/// Whether `topo` can run `probe` at all (a veth pair has no published ports).
pub fn support(topo: &dyn Topology, probe: Probe) -> Result<(), Unsupported> {
    if probe.needs_published_port() {
        topo.published_port()?;
    }
    if probe.needs_control_plane() {
        let cp = topo.control_plane()?;
        if probe.needs_publishing() {
            cp.can_publish()?;
        }
    }
    Ok(())
}

/// Row key: quantity id and pinning id ("" for unpinned probes).
pub type RowKey = (String, String);

pub fn row_key(q: &Quantity, pin: Option<&Pinning>) -> RowKey {
    (
        q.id.to_string(),
        pin.map(|p| p.id.clone()).unwrap_or_default(),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleError {
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
pub fn run(
    plan: &Plan,
    topologies: &[&dyn Topology],
    tools: &Tools,
    progress: &mut Progress,
) -> Result<Collected> {
    let mut out = Collected::default();
    let indices: Vec<usize> = (0..topologies.len()).collect();
    for round in 0..plan.rounds {
        for i in round_order(&indices, round) {
            let topo = topologies[i];
            for &probe in plan.probes.iter().filter(|&&p| support(topo, p).is_ok()) {
                let pins: Vec<Option<&Pinning>> = if probe.pinned() {
                    plan.pinnings.iter().map(Some).collect()
                } else {
                    vec![None]
                };
                for pin in pins {
                    sys::check_interrupted()?;
                    let label = format!(
                        "round {}/{} · {} · {}{}",
                        round + 1,
                        plan.rounds,
                        topo.kind(),
                        probe.name(),
                        pin.map(|p| format!(" {}", p.label())).unwrap_or_default()
                    );
                    progress.start_step(&label);
                    let pin_for_probe = pin.cloned().unwrap_or_else(|| plan.pinnings[0].clone());
                    match probe::measure(probe, topo, &pin_for_probe, plan, tools) {
                        Ok(samples) => {
                            let shown = samples
                                .iter()
                                .map(|(q, v)| {
                                    format!("{} {}", crate::report::fmt_value(*v), q.unit)
                                })
                                .collect::<Vec<_>>()
                                .join(", ");
                            progress.finish_step(&label, &shown);
                            for (q, v) in samples {
                                out.samples
                                    .entry(row_key(q, pin))
                                    .or_default()
                                    .entry(topo.kind())
                                    .or_default()
                                    .push(v);
                            }
                        }
                        Err(e) => {
                            sys::check_interrupted()?;
                            let error = format!("{e:#}");
                            progress.finish_step(&label, &format!("FAILED: {error}"));
                            out.errors.push(SampleError {
                                round: round + 1,
                                topology: topo.kind(),
                                probe,
                                pinning: pin.map(|p| p.id.clone()),
                                error,
                            });
                        }
                    }
                }
            }
        }
    }
    progress.finish();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_order() {
        let t = ["veth", "netd", "docker0"];
        assert_eq!(round_order(&t, 0), vec!["veth", "netd", "docker0"]);
        assert_eq!(round_order(&t, 1), vec!["netd", "docker0", "veth"]);
        assert_eq!(round_order(&t, 2), vec!["docker0", "veth", "netd"]);
        assert_eq!(round_order(&t, 3), vec!["veth", "netd", "docker0"]);
        assert!(round_order::<u8>(&[], 1).is_empty());
    }

    #[test]
    fn plan_rows_cover_every_quantity_and_pinning() {
        let pins = vec![
            Pinning {
                id: "same_cpu".into(),
                server_cpu: 1,
                client_cpu: 1,
            },
            Pinning {
                id: "cross_cpu".into(),
                server_cpu: 0,
                client_cpu: 1,
            },
        ];
        let plan = Plan {
            rounds: 5,
            secs: 1.0,
            probes: Probe::DEFAULT.to_vec(),
            pinnings: pins,
            attach_per_round: 1,
        };
        let pinned: usize = Probe::DEFAULT
            .iter()
            .filter(|p| p.pinned())
            .map(|p| p.quantities().len())
            .sum();
        let unpinned: usize = Probe::DEFAULT
            .iter()
            .filter(|p| !p.pinned())
            .map(|p| p.quantities().len())
            .sum();
        assert_eq!(plan.rows().len(), pinned * 2 + unpinned);
    }
}
