//! `netd stats --format json` as the tests read it: drop counters by (reason, hook), and the
//! conntrack/NAT table usage. The shape:
//! `{"drops":[{"reason","code","hook","packets","bytes"}...], "endpoints":[...],
//! "conntrack":{"tcp":{"entries","capacity"},"other":{...}}, "nat":{"entries","capacity"}}`.
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::TestHost;

/// Every drop reason of the datapath (netd-common's names): a typo in a test is caught here
/// instead of reading as "counter 0".
pub const DROP_REASONS: &[&str] = &[
    "malformed",
    "spoofed_source",
    "isolation",
    "arp_unknown_target",
    "unknown_interface",
    "no_route",
    "not_via_uplink",
    "internal_network",
    "unsupported_protocol",
    "fragment",
    "nat_port_exhausted",
    "nat_table_full",
    "ct_invalid",
    "unpublished_ingress",
    "loopback_ingress",
    "ttl_exceeded",
    "conntrack_full",
    "no_endpoint",
    "icmp_error_invalid",
    "mtu_exceeded",
];
pub const HOOKS: &[&str] = &["endpoint_ingress", "uplink_ingress"];

/// Entries in use and capacity of one flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableUsage {
    pub entries: u64,
    pub capacity: u64,
}

impl TestHost {
    /// `netd stats --format json`.
    pub fn stats(&self) -> Value {
        self.json(&["stats", "--format", "json"])
    }

    /// Packets dropped so far for `reason` at `hook`. Panics when the daemon reports no such
    /// counter (every (reason, hook) pair is listed, zeros included).
    pub fn drops(&self, reason: &str, hook: &str) -> u64 {
        assert!(DROP_REASONS.contains(&reason), "unknown drop reason {reason}");
        assert!(HOOKS.contains(&hook), "unknown hook {hook}");
        let stats = self.stats();
        let drops = stats["drops"].as_array().unwrap_or_else(|| panic!("netd stats: no drops list: {stats}"));
        let entry = drops
            .iter()
            .find(|d| d["reason"] == reason && d["hook"] == hook)
            .unwrap_or_else(|| panic!("netd stats has no counter for ({reason}, {hook}): {stats}"));
        entry["packets"].as_u64().unwrap_or_else(|| panic!("bad packets in {entry}"))
    }

    /// Waits (bounded by `timeout`) until the (reason, hook) counter is above `before`;
    /// returns it. Panics with the stats and the daemon log's tail when it is not.
    pub fn wait_drops_above(&self, reason: &str, hook: &str, before: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.drops(reason, hook);
            if now > before {
                return now;
            }
            if Instant::now() >= deadline {
                panic!(
                    "drop counter ({reason}, {hook}) stayed at {now} (was {before}); stats: {}\ndaemon log tail:\n{}",
                    self.ok(&["stats", "--format", "json"]),
                    self.daemon_log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Usage of a flow table from the stats: `path` is `["conntrack", "tcp"]`,
    /// `["conntrack", "other"]` or `["nat"]`.
    pub fn table_usage(&self, path: &[&str]) -> TableUsage {
        let stats = self.stats();
        let mut table = &stats;
        for key in path {
            table = &table[*key];
        }
        let field =
            |name: &str| table[name].as_u64().unwrap_or_else(|| panic!("netd stats: no {path:?}.{name}: {stats}"));
        TableUsage { entries: field("entries"), capacity: field("capacity") }
    }

    /// The last `lines` lines of the daemon's log, for failure messages.
    pub fn daemon_log_tail(&self, lines: usize) -> String {
        let log = self.daemon_log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}
