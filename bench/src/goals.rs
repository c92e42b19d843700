//! The goals netd's control plane is measured against (issue #14, "Control plane at kernel
//! speed"), shown beside their rows so a reader sees at a glance which are met. They are
//! netd's goals: the other topologies' numbers are there to compare with.

use serde::{Deserialize, Serialize};

use crate::runner::fmt_count;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtMost,
    AtLeast,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub bound: Bound,
    pub value: f64,
    /// The goal is set for this many endpoints (the scale rows): a run with another count
    /// shows it without checking it.
    pub endpoints: Option<usize>,
    /// Where the goal comes from.
    pub source: String,
}

const ISSUE: &str = "issue #14";

/// (quantity id, bound, value, endpoint count it is set for).
const GOALS: [(&str, Bound, f64, Option<usize>); 9] = [
    ("attach.p50_ms", Bound::AtMost, 8.0, None),
    ("attach.p99_ms", Bound::AtMost, 15.0, None),
    ("detach.p50_ms", Bound::AtMost, 8.0, None),
    ("run.network_cost_ms", Bound::AtMost, 5.0, None),
    ("rm.network_cost_ms", Bound::AtMost, 5.0, None),
    ("parallel.speedup", Bound::AtLeast, 2.0, None),
    ("endpoints.create_s", Bound::AtMost, 5.0, Some(1000)),
    ("endpoints.remove_s", Bound::AtMost, 3.0, Some(1000)),
    ("endpoints.rss_mib", Bound::AtMost, 30.0, Some(1000)),
];

/// The goal of the row of quantity `id`, if it has one.
pub fn for_quantity(id: &str) -> Option<Goal> {
    GOALS.iter().find(|(q, ..)| *q == id).map(|&(_, bound, value, endpoints)| Goal {
        bound,
        value,
        endpoints,
        source: ISSUE.to_string(),
    })
}

impl Goal {
    /// Whether `value` meets the goal, in a run with `endpoints` scale endpoints; None when
    /// the goal is set for another count.
    pub fn met(&self, value: f64, endpoints: usize) -> Option<bool> {
        if self.endpoints.is_some_and(|n| n != endpoints) {
            return None;
        }
        Some(match self.bound {
            Bound::AtMost => value <= self.value,
            Bound::AtLeast => value >= self.value,
        })
    }

    /// `≤ 5`, `≥ 2`, `≤ 5 at 1,000`.
    pub fn text(&self) -> String {
        let sign = match self.bound {
            Bound::AtMost => "≤",
            Bound::AtLeast => "≥",
        };
        let at = self.endpoints.map(|n| format!(" at {}", fmt_count(n))).unwrap_or_default();
        format!("{sign} {}{at}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Probe;

    #[test]
    fn every_goal_names_a_row() {
        let ids: Vec<&str> = Probe::DEFAULT.iter().flat_map(|p| p.quantities()).map(|q| q.id).collect();
        for (id, ..) in GOALS {
            assert!(ids.contains(&id), "goal for unknown row {id}");
        }
    }

    #[test]
    fn bounds_and_counts() {
        let cost = for_quantity("run.network_cost_ms").unwrap();
        assert_eq!(cost.text(), "≤ 5");
        assert_eq!((cost.met(5.0, 200), cost.met(5.1, 200)), (Some(true), Some(false)));
        let speedup = for_quantity("parallel.speedup").unwrap();
        assert_eq!((speedup.met(2.0, 1000), speedup.met(1.9, 1000)), (Some(true), Some(false)));
        let create = for_quantity("endpoints.create_s").unwrap();
        assert_eq!(create.text(), "≤ 5 at 1,000");
        assert_eq!((create.met(4.0, 1000), create.met(4.0, 200)), (Some(true), None));
        assert_eq!(for_quantity("tcp_rr.tps"), None);
    }
}
