//! "Store, kernel and processes agree": what the daemon reports (`ps -a`, `inspect`, `network
//! inspect`) must be exactly what exists in the test host's kernel — veths and their program
//! filters, pinned uplink links, map entries, routes, gateway addresses, netns mounts,
//! published ports (service and reserved-port maps, `ip_local_reserved_ports`) — and in the
//! process table and run dir.
//! Used after crashes and restarts, where any half-done operation shows up as a difference.
use std::{collections::BTreeSet, path::Path, process::Command};

use serde_json::Value;

use crate::TestHost;

/// What the daemon says exists.
#[derive(Debug, Default)]
struct Reported {
    container_ids: BTreeSet<String>,
    veths: BTreeSet<String>,
    endpoint_ips: BTreeSet<String>,
    netns_mounts: BTreeSet<String>,
    /// Running `container:` sharers: inspect shows no SandboxKey for them (as Docker), but
    /// one whose target stopped or went keeps the netns in a mount named after it.
    sharers: BTreeSet<String>,
    subnets: BTreeSet<String>,
    gateways: BTreeSet<String>,
    /// Main process pid → container id, of running containers with a command.
    processes: Vec<(u32, String)>,
    /// Published ports of running containers (`NetworkSettings.Ports`): (host address, host
    /// port, protocol number, container port, container id).
    published: BTreeSet<(String, u16, u8, u16, String)>,
    /// The addresses of each running container that publishes ports (its backends).
    publisher_ips: Vec<(String, BTreeSet<String>)>,
}

fn reported(host: &TestHost) -> Reported {
    let mut r = Reported::default();
    let ids = host.ok(&["ps", "-aq", "--no-trunc"]);
    for id in ids.lines().filter(|l| !l.is_empty()) {
        let c = &host.json(&["inspect", id])[0];
        r.container_ids.insert(id.to_string());
        if c["State"]["Running"] != true {
            continue;
        }
        let pid = c["State"]["Pid"].as_u64().unwrap_or(0) as u32;
        if pid != 0 {
            r.processes.push((pid, id.to_string()));
        }
        if c["HostConfig"]["NetworkMode"].as_str().unwrap_or("").starts_with("container:") {
            r.sharers.insert(c["Name"].as_str().unwrap_or("").trim_start_matches('/').to_string());
        }
        let sandbox = c["NetworkSettings"]["SandboxKey"].as_str().unwrap_or("");
        if sandbox.starts_with(&host.run_dir().join("netns").to_string_lossy().into_owned()) {
            r.netns_mounts.insert(Path::new(sandbox).file_name().unwrap().to_string_lossy().into_owned());
        }
        // `container:` sharers show their owner's networks: the sets below take them once.
        let mut ips = BTreeSet::new();
        for net in c["NetworkSettings"]["Networks"].as_object().into_iter().flatten().map(|(_, n)| n) {
            let (ep, ip) = (net["EndpointID"].as_str().unwrap_or(""), net["IPAddress"].as_str().unwrap_or(""));
            if !ip.is_empty() {
                r.veths.insert(format!("nd{}", &ep[..12]));
                r.endpoint_ips.insert(ip.to_string());
                ips.insert(ip.to_string());
            }
        }
        let ports = c["NetworkSettings"]["Ports"].as_object().cloned().unwrap_or_default();
        for (spec, bindings) in &ports {
            let (port, proto) = spec.split_once('/').unwrap_or_else(|| panic!("port key {spec}"));
            let proto = match proto {
                "tcp" => 6,
                "udp" => 17,
                other => panic!("protocol {other} in {spec}"),
            };
            for b in bindings.as_array().into_iter().flatten() {
                let host_ip = b["HostIp"].as_str().unwrap().to_string();
                let host_port = b["HostPort"].as_str().unwrap().parse().unwrap();
                r.published.insert((host_ip, host_port, proto, port.parse().unwrap(), id.to_string()));
            }
        }
        if !ports.is_empty() {
            r.publisher_ips.push((id.to_string(), ips));
        }
    }
    for id in host.ok(&["network", "ls", "-q", "--no-trunc"]).lines().filter(|l| !l.is_empty()) {
        let n = &host.json(&["network", "inspect", id])[0];
        // Docker's endpoints on the networks it owns (driver `netd`): veths and addresses. Their
        // published ports are Docker's to report; netd's CLI does not show them.
        if n["Driver"] == "netd" {
            for ep in n["Containers"].as_object().into_iter().flatten().map(|(_, e)| e) {
                let id = ep["EndpointID"].as_str().unwrap_or("");
                r.veths.insert(format!("nd{}", &id[..12]));
                let ip = ep["IPv4Address"].as_str().unwrap_or("").split('/').next().unwrap_or("");
                r.endpoint_ips.insert(ip.to_string());
            }
        }
        for cfg in n["IPAM"]["Config"].as_array().into_iter().flatten() {
            if let (Some(subnet), Some(gateway)) = (cfg["Subnet"].as_str(), cfg["Gateway"].as_str()) {
                r.subnets.insert(subnet.to_string());
                r.gateways.insert(gateway.to_string());
            }
        }
    }
    r
}

/// Asserts that the daemon's view and the host agree in both directions. `marker` is a string
/// in the command line of every container command the test started (e.g. `sleep 600.0417`):
/// no process carrying it may run outside a running container.
pub fn assert_store_and_kernel_agree(host: &TestHost, marker: &str) {
    host.wait_for_removals();
    let r = reported(host);
    let ctx = |what: &str| format!("{what} (daemon log:\n{})", tail(&host.daemon_log()));

    let links: Value = serde_json::from_str(&host.in_host_ok(&["ip", "-j", "link", "show"])).unwrap();
    let netd_links: Vec<&Value> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with("nd") && n.len() == 14))
        .collect();
    let veths: BTreeSet<String> = netd_links.iter().map(|l| l["ifname"].as_str().unwrap().to_string()).collect();
    assert_eq!(veths, r.veths, "{}", ctx("host veths vs the endpoints the daemon reports"));

    // Each endpoint veth runs the daemon's current program as netd's one filter; no link pin
    // of the tcx layout is left.
    let program = program_id(&host.bpffs.join("progs").join(crate::ENDPOINT_PROGRAM));
    let host_ns = host.netns_path(&host.host_ns);
    for veth in &veths {
        let filters = crate::ingress_filters(&host_ns, veth);
        let netds: Vec<_> = filters.iter().filter(|f| f.is_netds() && f.prog_id == program).collect();
        assert_eq!(netds.len(), 1, "{}", ctx(&format!("netd's filter on {veth} (program {program}): {filters:?}")));
    }
    assert!(!host.bpffs.join(crate::LEGACY_ENDPOINT_LINKS).exists(), "{}", ctx("endpoint link pins of the tcx layout"));
    // The test host's one uplink keeps its ingress program whatever happened to containers.
    let uplink_pins = dir_names(&host.bpffs.join("links/netd_up_ingress"));
    assert_eq!(uplink_pins, BTreeSet::from(["eth0".to_string()]), "{}", ctx("pinned uplink links"));
    let ifindexes: BTreeSet<u32> = netd_links.iter().map(|l| l["ifindex"].as_u64().unwrap() as u32).collect();
    assert_eq!(map_keys_u32(&host.bpffs.join(crate::INTERFACE_MAP)), ifindexes, "{}", ctx("interface map vs veths"));
    let ep_keys: BTreeSet<String> = map_keys(&host.bpffs.join(crate::ENDPOINT_MAP))
        .iter()
        .map(|k| k.iter().map(|b| b.to_string()).collect::<Vec<_>>().join("."))
        .collect();
    assert_eq!(ep_keys, r.endpoint_ips, "{}", ctx("endpoint map vs endpoint addresses"));

    let routes = host.in_host_ok(&["ip", "-4", "route", "show", "table", "all", "proto", "78"]);
    let mut unreachable = BTreeSet::new();
    let mut host_routes = BTreeSet::new();
    for line in routes.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["unreachable", dst, ..] => unreachable.insert(dst.to_string()),
            [dst, "dev", ..] => host_routes.insert(dst.to_string()),
            _ => panic!("unexpected netd route: {line}"),
        };
    }
    assert_eq!(unreachable, r.subnets, "{}", ctx("unreachable routes vs network subnets"));
    assert_eq!(host_routes, r.endpoint_ips, "{}", ctx("/32 routes vs endpoint addresses"));

    let addrs: Value =
        serde_json::from_str(&host.in_host_ok(&["ip", "-j", "-4", "addr", "show", "dev", "lo"])).unwrap();
    let gateways: BTreeSet<String> = addrs[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["label"] == "lo:netd")
        .map(|a| a["local"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(gateways, r.gateways, "{}", ctx("gateway addresses on lo vs networks"));

    assert_published_ports_agree(host, &r, &ctx);

    let mounts = dir_names(&host.run_dir().join("netns"));
    assert_eq!(
        mounts.iter().filter(|m| !r.sharers.contains(*m)).cloned().collect::<BTreeSet<_>>(),
        r.netns_mounts,
        "{}",
        ctx("netns mounts vs running containers (sharers aside)")
    );
    assert_eq!(
        dir_names(&host.run_dir().join("containers")),
        r.container_ids,
        "{}",
        ctx("per-container files vs containers")
    );

    // Processes: each running command is alive and in its container's cgroup, and no process
    // of a container command runs anywhere else.
    for (pid, id) in &r.processes {
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap_or_else(|_| panic!("{}", ctx(&format!("container {id} reports pid {pid}, which is gone"))));
        assert!(
            cgroup.lines().any(|l| l.starts_with("0::") && l.ends_with(&format!("/{id}"))),
            "{}",
            ctx(&format!("pid {pid} is not in container {id}'s cgroup: {cgroup}"))
        );
    }
    let marked = processes_with(marker);
    let mut expected: Vec<u32> = r.processes.iter().map(|(pid, _)| *pid).collect();
    expected.sort();
    assert_eq!(marked, expected, "{}", ctx(&format!("processes running `{marker}` vs running containers")));
}

/// Published ports: the service map holds exactly the running containers' published ports,
/// each leading to an address of its container; the reserved-port map and the host netns's
/// `ip_local_reserved_ports` hold exactly their (port, protocol) pairs and ports (test hosts
/// start with an empty sysctl: every port in it is netd's).
fn assert_published_ports_agree(host: &TestHost, r: &Reported, ctx: &dyn Fn(&str) -> String) {
    let mut services = BTreeSet::new();
    for (key, value) in map_entries(&host.bpffs.join(SERVICE_MAP)) {
        let host_ip = format!("{}.{}.{}.{}", key[0], key[1], key[2], key[3]);
        let (host_port, proto) = (u16::from_ne_bytes([key[4], key[5]]), key[6]);
        let backend = format!("{}.{}.{}.{}", value[0], value[1], value[2], value[3]);
        let backend_port = u16::from_ne_bytes([value[4], value[5]]);
        let owner = r.publisher_ips.iter().find(|(_, ips)| ips.contains(&backend)).map(|(id, _)| id.clone());
        let owner = owner.unwrap_or_else(|| format!("no publishing container has {backend}"));
        services.insert((host_ip, host_port, proto, backend_port, owner));
    }
    assert_eq!(services, r.published, "{}", ctx("service map vs the running containers' published ports"));
    let pairs: BTreeSet<(u16, u8)> = r.published.iter().map(|(_, port, proto, _, _)| (*port, *proto)).collect();
    let reserved: BTreeSet<(u16, u8)> =
        map_keys(&host.bpffs.join(RESERVED_MAP)).iter().map(|k| (u16::from_ne_bytes([k[0], k[1]]), k[2])).collect();
    assert_eq!(reserved, pairs, "{}", ctx("reserved-port map vs published ports"));
    let ports: BTreeSet<u16> = pairs.iter().map(|(port, _)| *port).collect();
    let sysctl = host.in_host_ok(&["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"]);
    let mut in_sysctl = BTreeSet::new();
    for item in sysctl.trim().split(',').filter(|i| !i.is_empty()) {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        in_sysctl.extend(lo.parse::<u16>().unwrap()..=hi.parse::<u16>().unwrap());
    }
    assert_eq!(in_sysctl, ports, "{}", ctx("ip_local_reserved_ports vs published ports"));
}

const SERVICE_MAP: &str = "maps/NETD_SVC_V1";
const RESERVED_MAP: &str = "maps/NETD_RSVD_V1";

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The id of the program pinned at `pin`.
fn program_id(pin: &Path) -> u64 {
    let out = Command::new("bpftool").args(["-j", "prog", "show", "pinned"]).arg(pin).output().expect("run bpftool");
    assert!(out.status.success(), "bpftool prog show {}: {}", pin.display(), String::from_utf8_lossy(&out.stderr));
    let prog: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    prog["id"].as_u64().unwrap_or_else(|| panic!("no id in {prog}"))
}

fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

/// Pids (sorted) of the processes whose command line contains `marker`, zombies excluded.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            !netd_cmd::is_zombie(*pid) && String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(marker)
        })
        .collect();
    pids.sort();
    pids
}

/// Keys of a pinned BPF hash map, as byte lists.
fn map_keys(map: &Path) -> Vec<Vec<u8>> {
    map_entries(map).into_iter().map(|(key, _)| key).collect()
}

/// Entries (key, value) of a pinned BPF hash map, as byte lists.
fn map_entries(map: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let out = Command::new("bpftool").args(["-j", "map", "dump", "pinned"]).arg(map).output().expect("run bpftool");
    assert!(out.status.success(), "bpftool map dump {}: {}", map.display(), String::from_utf8_lossy(&out.stderr));
    let entries: Value = serde_json::from_slice(&out.stdout).expect("bpftool JSON");
    entries.as_array().unwrap().iter().map(|e| (bytes(e, "key"), bytes(e, "value"))).collect()
}

/// A byte list of bpftool's JSON (`["0x0a", ...]`).
fn bytes(entry: &Value, field: &str) -> Vec<u8> {
    entry[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {entry}"))
        .iter()
        .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect()
}

fn map_keys_u32(map: &Path) -> BTreeSet<u32> {
    map_keys(map).iter().map(|k| u32::from_ne_bytes(k[..4].try_into().unwrap())).collect()
}
