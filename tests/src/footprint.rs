//! Everything netd holds on a test host, counted, for "N cycles leave nothing behind": the
//! host netns' links, addresses and routes, netns mounts, bpffs pins, the entries of every
//! pinned map, the BPF programs, maps and links the daemon's fds hold, its fd count and RSS.
//! Only this host's objects are read (its netns, run dir, bpffs and daemon pid), so tests
//! running in parallel on the machine do not disturb the counts.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use serde_json::Value;

use crate::TestHost;

/// Kernel objects of the test host; equal before and after a cycle that cleans up.
#[derive(Debug, PartialEq, Eq)]
pub struct KernelFootprint {
    pub links: BTreeSet<String>,
    pub addrs: String,
    pub routes: String,
    pub reserved_ports: String,
    /// Mounts under the test host's directory (container netns mounts, the host-netns mount),
    /// but for the namespaces the daemon made ahead of `run`, which are counted instead (their
    /// names change as they are used).
    pub mounts: BTreeSet<String>,
    pub ready_netns: usize,
    /// Every path under the test host's bpffs directory.
    pub pins: BTreeSet<String>,
    /// Entries of every map pinned under `maps/`, by pin name.
    pub map_entries: BTreeMap<String, usize>,
}

/// What the daemon process holds.
#[derive(Debug, PartialEq, Eq)]
pub struct DaemonFootprint {
    pub fds: usize,
    /// Ids of the BPF programs, maps and links its fds refer to (from /proc/PID/fdinfo).
    pub prog_ids: BTreeSet<u32>,
    pub map_ids: BTreeSet<u32>,
    pub link_ids: BTreeSet<u32>,
}

impl KernelFootprint {
    pub fn of(host: &TestHost) -> Self {
        host.wait_for_removals();
        let links = host
            .in_host_ok(&["ip", "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap().to_string()))
            .collect();
        let dir = host.dir.to_string_lossy().into_owned();
        let ready_dir = host.run_dir().join("netns-ready").to_string_lossy().into_owned();
        let (ready, mounts): (Vec<String>, Vec<String>) = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .map(str::to_string)
            .partition(|m| m.starts_with(&ready_dir));
        let mut pins = BTreeSet::new();
        walk(&host.bpffs, &host.bpffs, &mut pins);
        let map_entries = std::fs::read_dir(host.bpffs.join("maps"))
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), map_dump(&p).len()))
            .collect();
        Self {
            links,
            addrs: host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]),
            routes: host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]),
            reserved_ports: host.in_host_ok(&["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"]),
            mounts: mounts.into_iter().collect(),
            ready_netns: ready.len(),
            pins,
            map_entries,
        }
    }
}

impl DaemonFootprint {
    pub fn of(host: &TestHost) -> Self {
        let pid = host.daemon_pid();
        let mut footprint =
            Self { fds: 0, prog_ids: BTreeSet::new(), map_ids: BTreeSet::new(), link_ids: BTreeSet::new() };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
        for fd in fds.flatten() {
            footprint.fds += 1;
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()))
                .unwrap_or_default();
            for line in info.lines() {
                let (key, value) = line.split_once(':').unwrap_or((line, ""));
                let set = match key {
                    "prog_id" => &mut footprint.prog_ids,
                    "map_id" => &mut footprint.map_ids,
                    "link_id" => &mut footprint.link_ids,
                    _ => continue,
                };
                set.insert(value.trim().parse().unwrap());
            }
        }
        footprint
    }
}

/// The daemon's resident set size in KiB.
pub fn daemon_rss_kib(host: &TestHost) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.daemon_pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The entries of the pinned map at `map` as bpftool shows them (JSON objects).
pub fn map_dump(map: &Path) -> Vec<Value> {
    let out = Command::new("bpftool").args(["-j", "map", "dump", "pinned"]).arg(map).output().expect("run bpftool");
    assert!(out.status.success(), "bpftool map dump {}: {}", map.display(), String::from_utf8_lossy(&out.stderr));
    let entries: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    entries.as_array().unwrap().clone()
}

/// Pinned maps under the host's bpffs whose name starts with `prefix` (e.g. `NETD_CT_`): the
/// tests find maps by kind, whatever version suffix their pins carry.
pub fn pinned_maps(host: &TestHost, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut maps: Vec<_> =
        std::fs::read_dir(host.bpffs.join("maps")).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    maps.retain(|p: &std::path::PathBuf| p.file_name().unwrap().to_string_lossy().starts_with(prefix));
    maps.sort();
    maps
}

/// Conntrack and NAT entries that name one of `addrs` (as key source or destination, or as a
/// NAT mapping's original source), as text for a failure message; empty when there is none.
pub fn flows_naming(host: &TestHost, addrs: &[std::net::Ipv4Addr]) -> Vec<String> {
    let mut found = Vec::new();
    for map in pinned_maps(host, "NETD_CT_").into_iter().chain(pinned_maps(host, "NETD_NAT_")) {
        for entry in map_dump(&map) {
            let key = bytes(&entry["key"]);
            let value = bytes(&entry["value"]);
            let nat = map.file_name().unwrap().to_string_lossy().starts_with("NETD_NAT_");
            // CtKey: saddr, daddr first; NatReverse: created (8 bytes), then addr.
            let names = |addr: &std::net::Ipv4Addr| {
                let addr = addr.octets();
                key[0..4] == addr || key[4..8] == addr || (nat && value.get(8..12) == Some(&addr[..]))
            };
            if addrs.iter().any(names) {
                found.push(format!("{}: {entry}", map.display()));
            }
        }
    }
    found
}

fn bytes(list: &Value) -> Vec<u8> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect()
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        }
    }
}
