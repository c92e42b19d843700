//! Daemon restarts (DESIGN §2). After SIGTERM and after `kill -9` the restarted daemon shows the
//! same state, traffic between containers never stops, the endpoint filters and pinned maps
//! are adopted rather than re-created (a filter's program replaced in place), and kernel
//! objects the store does not know are removed.
use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU32, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use netd_tests::{
    endpoint_filter_to_tcx_link, in_netns, ingress_filters, pin_tcx_link, tcp_exchange, tcx_ingress_programs,
    IngressFilter, TestHost, ENDPOINT_MAP, ENDPOINT_PROGRAM as PROGRAM, INTERFACE_MAP, LEGACY_ENDPOINT_LINKS,
};
use nix::sys::signal::Signal;
use serde_json::Value;

/// Every map the daemon pins: a restart keeps each one (conntrack and NAT included).
const MAPS: [&str; 8] = [
    "NETD_EP_V2",
    "NETD_IF_V2",
    "NETD_UPLINK_V1",
    "NETD_CT_TCP_V1",
    "NETD_CT_ANY_V1",
    "NETD_NAT_V1",
    "NETD_RSVD_V1",
    "NETD_METRICS_V1",
];
/// rtnetlink protocol of netd's routes (docs/architecture.md).
const NETD_ROUTE_PROTO: &str = "78";

#[test]
fn sigterm_restart_keeps_state_traffic_and_pins() {
    restart_keeps_state_traffic_and_pins(Signal::SIGTERM);
}

#[test]
fn kill_9_restart_keeps_state_traffic_and_pins() {
    restart_keeps_state_traffic_and_pins(Signal::SIGKILL);
}

fn restart_keeps_state_traffic_and_pins(signal: Signal) {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "rs-net"]);
    host.ok(&["network", "create", "--subnet", "10.77.0.0/24", "--label", "k=v", "rs-other"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "rs-net", "--", "sleep", "600"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "rs-net"]);
    host.ok(&["network", "connect", "rs-other", "two"]);
    host.ok(&["run", "-d", "--name", "three", "--network", "rs-other", "--ip", "10.77.0.50"]);
    host.ok(&["run", "-d", "--name", "four"]);
    host.ok(&["run", "-d", "--name", "stopped", "--network", "rs-other", "--", "sleep", "600"]);
    host.ok(&["stop", "stopped"]);
    let ip2 = host.ip_of("two", "rs-net");
    let (ns1, ns2) = (host.container_netns("one"), host.container_netns("two"));
    // `stop` answers before the kernel has removed the stopped container's veth (it goes with
    // its netns, in the kernel's netns clean-up, later when that is busy): the snapshot is of
    // the settled host.
    host.wait_for_removals();

    let views_before = views(&host);
    let kernel_before = kernel(&host);
    let pins_before = pins(&host);

    // Traffic runs across the whole stop → start window.
    let traffic = Traffic::start(&ns2, &ns1, &ip2, 7100);
    let ping = host_ping(&host, "one", &ip2);
    traffic.wait_for_rounds(5);
    host.stop_daemon(signal);
    traffic.next_phase();
    traffic.wait_for_rounds(10);
    host.start_daemon();
    traffic.next_phase();
    traffic.wait_for_rounds(10);
    let per_phase = traffic.stop();
    assert!(per_phase.iter().all(|n| *n > 0), "rounds per phase (before, down, after): {per_phase:?}");
    let (sent, received) = ping_result(ping);
    assert_eq!(received, sent, "ping across the restart lost packets");

    // Same state, same kernel objects, and each endpoint's filter, in the same slot, now runs
    // the new daemon's program (the old daemon's ran there before; a clean exit left it too).
    assert_same_views(&views(&host), &views_before);
    assert_eq!(kernel(&host), kernel_before, "kernel objects changed across the restart");
    let pins_after = pins(&host);
    assert_eq!(pins_after.maps, pins_before.maps, "maps were re-created instead of adopted");
    assert_ne!(pins_after.program, pins_before.program, "the program pin still holds the old daemon's program");
    assert_eq!(pins_after.filters.len(), 5, "one filter per endpoint: {:?}", pins_after.filters);
    assert_eq!(pins_after.filters.keys().collect::<Vec<_>>(), pins_before.filters.keys().collect::<Vec<_>>());
    for (ifname, filter) in &pins_after.filters {
        assert_eq!(pins_before.filters[ifname].prog_id, pins_before.program, "{ifname}: before the restart");
        assert_eq!(filter.prog_id, pins_after.program, "{ifname}: filter does not run the new program");
        assert!(tcx_ingress_programs(&host.netns_path(&host.host_ns), ifname).is_empty(), "tcx on {ifname}");
    }

    // The restarted daemon is fully in charge: new containers talk, removals clean up.
    host.ok(&["run", "-d", "--name", "five", "--network", "rs-net"]);
    let ip5 = host.ip_of("five", "rs-net");
    assert_eq!(tcp_exchange(&host.container_netns("five"), &ns1, &ip5, 7101, "after"), "AFTER");
    host.ok(&["start", "stopped"]);
    let ip_stopped = host.ip_of("stopped", "rs-other");
    assert_eq!(
        tcp_exchange(&host.container_netns("stopped"), &host.container_netns("three"), &ip_stopped, 7103, "started"),
        "STARTED"
    );
    host.ok(&["rm", "-f", "five", "one"]);
    // The veths (and their filters) go in the background.
    host.wait_for_removals();
    assert!(!host.bpffs.join(LEGACY_ENDPOINT_LINKS).exists(), "endpoint link pins");
    let links = host.in_host_ok(&["ip", "-o", "link", "show"]);
    assert!(!links.contains(&ifname_of(&views_before, "one")), "veth of one left behind:\n{links}");
    assert_eq!(tcp_exchange(&ns2, &host.container_netns("three"), "10.77.0.2", 7102, "still"), "STILL");
}

#[test]
fn restart_removes_objects_the_store_does_not_know() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "st-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "st-net"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "st-net"]);
    let ip2 = host.ip_of("two", "st-net");
    let views_before = views(&host);
    let pins_before = pins(&host);
    host.stop_daemon(Signal::SIGKILL);

    // Leftovers of the kind a crashed netd leaves, and look-alikes that are not netd's.
    let tag = &host.tag;
    let stray_veth = "nd0123456789ab";
    host.in_host_ok(&["ip", "link", "add", stray_veth, "type", "veth", "peer", "name", &format!("s{tag}p")]);
    let foreign_veth = format!("v{tag}keep");
    host.in_host_ok(&["ip", "link", "add", &foreign_veth, "type", "veth", "peer", "name", &format!("v{tag}kp")]);
    let lookalike = "ndnotanendpoint";
    host.in_host_ok(&["ip", "link", "add", lookalike, "type", "veth", "peer", "name", &format!("l{tag}p")]);
    // Pins of the previous (tcx) layout: an unknown endpoint's, and one under an unknown
    // endpoint's name that holds a link on a foreign device.
    pin_tcx_link(&host, stray_veth, stray_veth);
    pin_tcx_link(&host, &foreign_veth, "ndffffffffffff");
    let stray_netns = host.run_dir().join("netns").join("ghost");
    std::fs::File::create(&stray_netns).unwrap();
    netd_tests::sh(&["unshare", &format!("--net={}", stray_netns.display()), "true"]);
    let ep_map = host.bpffs.join(ENDPOINT_MAP);
    let if_map = host.bpffs.join(INTERFACE_MAP);
    let stray_ip_key = ["172", "31", "99", "99"].map(|b| format!("{:02x}", b.parse::<u8>().unwrap()));
    map_update(&ep_map, &stray_ip_key);
    let stray_ifindex_key = 99_999u32.to_ne_bytes().map(|b| format!("{b:02x}"));
    map_update(&if_map, &stray_ifindex_key);
    for cmd in [
        // netd's (marked) gateway and routes of a network the store does not have.
        &["ip", "addr", "add", "172.30.0.1/32", "dev", "lo", "label", "lo:netd"][..],
        &["ip", "route", "add", "unreachable", "172.30.0.0/16", "proto", NETD_ROUTE_PROTO],
        &["ip", "route", "add", "172.18.0.99/32", "dev", "lo", "proto", NETD_ROUTE_PROTO],
        // Look-alikes someone else made: same ranges, no netd marks.
        &["ip", "addr", "add", "172.29.0.1/32", "dev", "lo"],
        &["ip", "route", "add", "unreachable", "172.29.0.0/16"],
        &["ip", "route", "add", "192.168.77.0/24", "dev", "lo"],
    ] {
        host.in_host_ok(cmd);
    }

    host.start_daemon();

    let links = host.in_host_ok(&["ip", "-o", "link", "show"]);
    assert!(!links.contains(stray_veth), "stray endpoint veth left:\n{links}");
    assert!(links.contains(&foreign_veth) && links.contains(lookalike), "foreign veths removed:\n{links}");
    let host_ns = host.netns_path(&host.host_ns);
    assert!(tcx_ingress_programs(&host_ns, &foreign_veth).is_empty(), "stale pinned link still attached");
    assert!(!host.bpffs.join(LEGACY_ENDPOINT_LINKS).exists(), "stale link pins left");
    assert!(!stray_netns.exists(), "stale netns mount left");
    assert!(!map_has(&ep_map, &stray_ip_key), "stale endpoint map entry left");
    assert!(!map_has(&if_map, &stray_ifindex_key), "stale interface map entry left");
    let addrs = host.in_host_ok(&["ip", "-o", "-4", "addr", "show", "dev", "lo"]);
    assert!(!addrs.contains("172.30.0.1/32"), "stale gateway address left:\n{addrs}");
    assert!(addrs.contains("172.29.0.1/32"), "foreign address removed:\n{addrs}");
    let routes = host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]);
    assert!(!routes.contains("172.30.0.0/16") && !routes.contains("172.18.0.99"), "stale routes left:\n{routes}");
    assert!(
        routes.contains("172.29.0.0/16") && routes.contains("192.168.77.0/24"),
        "foreign routes removed:\n{routes}"
    );

    // What the store knows is untouched.
    assert_same_views(&views(&host), &views_before);
    let pins_after = pins(&host);
    assert_eq!(pins_after.filters.keys().collect::<Vec<_>>(), pins_before.filters.keys().collect::<Vec<_>>());
    assert!(pins_after.filters.values().all(|f| f.prog_id == pins_after.program), "{:?}", pins_after.filters);
    let (ns1, ns2) = (host.container_netns("one"), host.container_netns("two"));
    assert_eq!(tcp_exchange(&ns2, &ns1, &ip2, 7200, "known"), "KNOWN");

    for cleanup in [&["ip", "link", "del", &foreign_veth][..], &["ip", "link", "del", lookalike]] {
        host.in_host_ok(cleanup);
    }
    host.in_host_ok(&["ip", "addr", "del", "172.29.0.1/32", "dev", "lo"]);
}

/// The store and the kernel agree after a restart in both directions: an endpoint whose veth
/// vanished while its netns lives is made again (same address, MAC and name), and a container
/// whose netns vanished has exited (its process ended, its veth and map entries gone).
#[test]
fn restart_repairs_a_vanished_veth_and_stops_a_container_whose_netns_vanished() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "vn-net"]);
    for name in ["one", "two", "noveth"] {
        host.ok(&["run", "-d", "--name", name, "--network", "vn-net"]);
    }
    // Its process keeps the netns (and so the veth) alive after the mount is gone.
    host.ok(&["run", "-d", "--name", "nons", "--network", "vn-net", "--", "sleep", "600"]);
    let views_before = views(&host);
    let ip2 = host.ip_of("two", "vn-net");
    let (ip_noveth, ip_nons) = (host.ip_of("noveth", "vn-net"), host.ip_of("nons", "vn-net"));
    let nons_pid = host.json(&["inspect", "nons"])[0]["State"]["Pid"].as_u64().unwrap();
    assert!(nons_pid > 1 && Path::new(&format!("/proc/{nons_pid}")).exists());
    host.stop_daemon(Signal::SIGKILL);

    let noveth = ifname_of(&views_before, "noveth");
    host.in_host_ok(&["ip", "link", "del", &noveth]);
    let nons_path = host.container_netns("nons");
    nix::mount::umount2(&nons_path, nix::mount::MntFlags::MNT_DETACH).unwrap();
    std::fs::remove_file(&nons_path).unwrap();

    host.start_daemon();
    let log = host.daemon_log();
    assert!(log.contains("veth is gone") && log.contains("netns is gone"), "no warnings about lost endpoints:\n{log}");
    // noveth: its endpoint is back, with the same veth name, address and MAC, and forwards.
    // (nons's veth goes in the background.)
    host.wait_for_removals();
    let links = host.in_host_ok(&["ip", "-o", "link", "show"]);
    assert!(links.contains(&noveth), "the vanished veth was not made again:\n{links}");
    assert_eq!(host.ip_of("noveth", "vn-net"), ip_noveth);
    let (ns1, ns2, ns3) = (host.container_netns("one"), host.container_netns("two"), host.container_netns("noveth"));
    assert_eq!(tcp_exchange(&ns2, &ns1, &ip2, 7300, "alive"), "ALIVE");
    assert_eq!(tcp_exchange(&ns3, &ns1, &ip_noveth, 7301, "back"), "BACK");
    // nons: exited with Docker's code for an unknown exit, its process ended, nothing left.
    let nons = &host.json(&["inspect", "nons"])[0];
    assert_eq!(nons["State"]["Status"], "exited", "{nons}");
    assert_eq!(nons["State"]["ExitCode"], 255, "{nons}");
    assert!(!links.contains(&ifname_of(&views_before, "nons")), "veth of the lost netns left:\n{links}");
    netd_tests::wait_process_gone(nons_pid as u32, Duration::from_secs(10));
    let filters = pins(&host).filters;
    assert_eq!(filters.len(), 3, "the three live endpoints keep their filters: {filters:?}");
    let ep_map = host.bpffs.join(ENDPOINT_MAP);
    let key: Vec<String> = ip_nons.split('.').map(|b| format!("{:02x}", b.parse::<u8>().unwrap())).collect();
    assert!(!map_has(&ep_map, &key), "map entry of the lost endpoint {ip_nons} left");
    assert_eq!(host.ok(&["ps", "-q"]).lines().count(), 3);
    host.ok(&["rm", "-f", "noveth", "nons"]);
    assert_eq!(host.ok(&["ps", "-aq"]).lines().count(), 2);
}

/// One endpoint's filter was deleted by hand: the restart attaches it again. Another's slot
/// holds someone else's filter: the restart refuses to replace it, says so, and leaves it.
/// Also: a host end whose forwarding is off gets it back.
#[test]
fn restart_repairs_a_missing_filter_and_leaves_a_foreign_one() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "lp-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "lp-net"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "lp-net"]);
    host.ok(&["run", "-d", "--name", "three", "--network", "lp-net"]);
    let views_before = views(&host);
    let (veth1, veth2) = (ifname_of(&views_before, "one"), ifname_of(&views_before, "two"));
    let (ip1, ip3) = (host.ip_of("one", "lp-net"), host.ip_of("three", "lp-net"));
    host.stop_daemon(Signal::SIGKILL);

    let slot = ["ingress", "pref", "78", "handle", "0x4e", "bpf"];
    host.in_host_ok(&[&["tc", "filter", "del", "dev", &veth1][..], &slot].concat());
    // A classic BPF filter (accept all) in netd's slot: someone else's.
    host.in_host_ok(&[&["tc", "filter", "del", "dev", &veth2][..], &slot].concat());
    let foreign = [&["tc", "filter", "add", "dev", &veth2][..], &slot, &["bytecode", "1,6 0 0 4294967295"]].concat();
    host.in_host_ok(&foreign);
    let host_ns = host.netns_path(&host.host_ns);
    let foreign_before = ingress_filters(&host_ns, &veth2);
    // A host end without forwarding (as versions before egress made them): turned on again.
    let veth3 = ifname_of(&views_before, "three");
    let forwarding = format!("/proc/sys/net/ipv4/conf/{veth3}/forwarding");
    host.in_host_ok(&["sh", "-c", &format!("echo 0 > {forwarding}")]);

    host.start_daemon();
    assert_eq!(host.in_host_ok(&["cat", &forwarding]).trim(), "1", "{veth3}'s forwarding after the restart");
    let pins = pins(&host);
    assert_eq!(pins.filters[&veth1].prog_id, pins.program, "one's filter was not attached again");
    assert!(!pins.filters.contains_key(&veth2), "netd took over a foreign filter: {:?}", pins.filters);
    assert_eq!(ingress_filters(&host_ns, &veth2), foreign_before, "the foreign filter was touched");
    let log = host.plain_daemon_log();
    assert!(
        log.lines().any(|l| l.contains("cannot adopt endpoint") && l.contains(&veth2) && l.contains("not netd's")),
        "no refusal in the log:\n{log}"
    );
    let (ns1, ns3) = (host.container_netns("one"), host.container_netns("three"));
    assert_eq!(tcp_exchange(&ns3, &ns1, &ip3, 7400, "to three"), "TO THREE");
    assert_eq!(tcp_exchange(&ns1, &ns3, &ip1, 7401, "to one"), "TO ONE");
}

// --- what the user sees -----------------------------------------------------------------------

/// Everything the CLI shows about the state.
struct Views {
    network_ls: String,
    network_ls_json: Value,
    networks: Value,
    ps: String,
    containers: Value,
}

/// Daemons of earlier layouts left the endpoints' programs as pinned tcx links — one straight
/// under `links/` (the oldest layout), one under `links/netd_ep_ingress/` — and a map under an
/// older name: the new daemon attaches each endpoint's filter, then unpins its link (traffic
/// flows throughout: the old daemon's kill, the old layout, the new daemon's start), leaves no
/// link pin, and unpins the old map.
#[test]
fn restart_migrates_the_previous_pin_layouts() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "mg-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "mg-net"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "mg-net"]);
    let views_before = views(&host);
    let (veth1, veth2) = (ifname_of(&views_before, "one"), ifname_of(&views_before, "two"));
    let ip2 = host.ip_of("two", "mg-net");
    let (ns1, ns2) = (host.container_netns("one"), host.container_netns("two"));
    let traffic = Traffic::start(&ns2, &ns1, &ip2, 7401);
    traffic.wait_for_rounds(5);
    host.stop_daemon(Signal::SIGKILL);
    traffic.next_phase();

    let host_ns = host.netns_path(&host.host_ns);
    let links = host.bpffs.join("links");
    for veth in [&veth1, &veth2] {
        endpoint_filter_to_tcx_link(&host, veth);
        assert_eq!(tcx_ingress_programs(&host_ns, veth), [PROGRAM], "old layout on {veth}");
    }
    std::fs::rename(host.bpffs.join(LEGACY_ENDPOINT_LINKS).join(&veth1), links.join(&veth1)).unwrap();
    let old_map = host.bpffs.join("maps/NETD_EP_V1");
    let created = Command::new("bpftool")
        .args(["map", "create", &old_map.to_string_lossy(), "type", "hash", "key", "4", "value", "16"])
        .args(["entries", "16", "name", "NETD_EP_V1"])
        .output()
        .unwrap();
    assert!(created.status.success(), "bpftool map create: {}", String::from_utf8_lossy(&created.stderr));
    // The old layout still forwards while no daemon runs.
    traffic.wait_for_rounds(10);

    host.start_daemon();
    traffic.next_phase();
    traffic.wait_for_rounds(10);
    let per_phase = traffic.stop();
    assert!(per_phase.iter().all(|n| *n > 0), "rounds per phase (before, old layout, after): {per_phase:?}");
    let after = pins(&host);
    for veth in [&veth1, &veth2] {
        assert!(tcx_ingress_programs(&host_ns, veth).is_empty(), "{veth} still has its tcx link");
        assert_eq!(after.filters[veth.as_str()].prog_id, after.program, "{veth}: filter of another program");
    }
    assert!(!links.join(&veth1).exists(), "{veth1} still pinned in the oldest place");
    assert!(!host.bpffs.join(LEGACY_ENDPOINT_LINKS).exists(), "link pins of the tcx layout left");
    assert!(!old_map.exists(), "the old map is still pinned");
    assert_eq!(tcp_exchange(&ns2, &ns1, &ip2, 7402, "new"), "NEW");
    assert_same_views(&views(&host), &views_before);
}

fn views(host: &TestHost) -> Views {
    let names: Vec<String> = host.ok(&["network", "ls", "-q"]).lines().map(String::from).collect();
    let mut inspect = vec!["network", "inspect"];
    inspect.extend(names.iter().map(String::as_str));
    let containers: Vec<String> = host.ok(&["ps", "-a", "-q"]).lines().map(String::from).collect();
    Views {
        network_ls: host.ok(&["network", "ls"]),
        network_ls_json: json_lines(&host.ok(&["network", "ls", "--format", "json"])),
        networks: host.json(&inspect),
        ps: without_ages(&host.ok(&["ps", "-a"])),
        containers: Value::Array(containers.iter().map(|c| host.json(&["inspect", c])).collect()),
    }
}

/// `--format json` prints one object per line (Docker) or one array; either way, a list.
fn json_lines(out: &str) -> Value {
    serde_json::from_str(out)
        .unwrap_or_else(|_| Value::Array(out.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()))
}

/// `ps` shows ages ("Up 3 seconds", "Less than a second ago"), which move on by themselves;
/// they become `<age>` and the column padding is collapsed.
fn without_ages(ps: &str) -> String {
    const UNITS: [&str; 7] = ["second", "minute", "hour", "day", "week", "month", "year"];
    ps.lines()
        .map(|line| {
            let line = line.replace("Less than a second", "<age>").replace("About a", "1").replace("About an", "1");
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut out = Vec::new();
            let mut i = 0;
            while i < words.len() {
                let next_is_unit = words.get(i + 1).is_some_and(|u| UNITS.iter().any(|unit| u.starts_with(unit)));
                let is_count = words[i].parse::<u64>().is_ok() || ["a", "an"].contains(&words[i]);
                if is_count && next_is_unit {
                    out.push("<age>");
                    i += 2;
                } else {
                    out.push(words[i]);
                    i += 1;
                }
            }
            out.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares views part by part, naming the first JSON path that differs.
fn assert_same_views(after: &Views, before: &Views) {
    assert_eq!(after.network_ls, before.network_ls, "network ls changed");
    assert_eq!(after.ps, before.ps, "ps changed");
    for (what, a, b) in [
        ("network ls --format json", &after.network_ls_json, &before.network_ls_json),
        ("network inspect", &after.networks, &before.networks),
        ("inspect", &after.containers, &before.containers),
    ] {
        if let Some(path) = first_difference(a, b, String::new()) {
            panic!("{what} changed at {path}");
        }
    }
}

fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<_> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                first_difference(va, vb, format!("{path}.{k}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (va, vb))| first_difference(va, vb, format!("{path}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {b} -> {a}")),
    }
}

/// Host-side veth of a container's first endpoint.
fn ifname_of(views: &Views, container: &str) -> String {
    let c = views.containers.as_array().unwrap().iter().find(|c| c[0]["Name"] == format!("/{container}")).unwrap();
    let ep = c[0]["NetworkSettings"]["Networks"].as_object().unwrap().values().next().unwrap();
    format!("nd{}", &ep["EndpointID"].as_str().unwrap()[..12])
}

// --- kernel objects ---------------------------------------------------------------------------

/// The host netns's links (name → ifindex), addresses and routes.
#[derive(Debug, PartialEq)]
struct Kernel {
    links: BTreeMap<String, u64>,
    addrs: String,
    routes: String,
}

fn kernel(host: &TestHost) -> Kernel {
    let links: Value = serde_json::from_str(&host.in_host_ok(&["ip", "-j", "link", "show"])).unwrap();
    Kernel {
        links: links
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["ifname"].as_str().unwrap().to_string(), l["ifindex"].as_u64().unwrap()))
            .collect(),
        addrs: host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]),
        routes: host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]),
    }
}

/// Ids of the pinned objects and what runs on each endpoint veth: netd's filter.
struct Pins {
    /// netd's filter of each endpoint veth that has one.
    filters: BTreeMap<String, IngressFilter>,
    program: u64,
    maps: BTreeMap<String, u64>,
}

fn pins(host: &TestHost) -> Pins {
    let id = |v: &Value, key: &str| v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"));
    let host_ns = host.netns_path(&host.host_ns);
    let filters = host
        .endpoint_veths()
        .into_iter()
        .filter_map(|veth| {
            let netds: Vec<IngressFilter> =
                ingress_filters(&host_ns, &veth).into_iter().filter(|f| f.is_netds()).collect();
            assert!(netds.len() <= 1, "{veth}: {netds:?}");
            netds.into_iter().next().map(|f| (veth, f))
        })
        .collect();
    let prog = bpftool(&["prog", "show", "pinned", &host.bpffs.join("progs").join(PROGRAM).to_string_lossy()]);
    let maps = MAPS
        .iter()
        .map(|m| {
            let map = bpftool(&["map", "show", "pinned", &host.bpffs.join("maps").join(m).to_string_lossy()]);
            (m.to_string(), id(&map, "id"))
        })
        .collect();
    Pins { filters, program: id(&prog, "id"), maps }
}

fn bpftool(args: &[&str]) -> Value {
    let out = Command::new("bpftool").arg("-j").args(args).output().expect("run bpftool");
    assert!(out.status.success(), "bpftool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bpftool {args:?}: bad JSON: {e}"))
}

/// Writes an all-zero value under `key` (hex bytes) into a pinned hash map.
fn map_update(map: &Path, key: &[String]) {
    let info = bpftool(&["map", "show", "pinned", &map.to_string_lossy()]);
    let value_size = info["bytes_value"].as_u64().expect("bytes_value") as usize;
    let mut args = vec!["map".to_string(), "update".into(), "pinned".into(), map.to_string_lossy().into_owned()];
    args.push("key".into());
    args.push("hex".into());
    args.extend(key.iter().cloned());
    args.push("value".into());
    args.push("hex".into());
    args.extend(std::iter::repeat_n("00".to_string(), value_size));
    let out = Command::new("bpftool").args(&args).output().unwrap();
    assert!(out.status.success(), "bpftool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn map_has(map: &Path, key: &[String]) -> bool {
    let mut args = vec!["map", "lookup", "pinned"];
    let path = map.to_string_lossy();
    args.push(&path);
    args.extend(["key", "hex"]);
    args.extend(key.iter().map(String::as_str));
    Command::new("bpftool").args(&args).output().unwrap().status.success()
}

// --- traffic across the restart ---------------------------------------------------------------

/// TCP echo rounds from one container netns to another until stopped: each round uses one
/// long-lived connection and one new connection. Rounds are counted per phase (before the stop,
/// while the daemon is down, after the start); any failed round is recorded.
struct Traffic {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicU32>,
    rounds: Arc<[AtomicU32; 3]>,
    errors: Arc<Mutex<Vec<String>>>,
    client: JoinHandle<()>,
    server: JoinHandle<()>,
}

const MAX_ROUNDS: u32 = 5_000;
const TRAFFIC_DEADLINE: Duration = Duration::from_secs(90);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

impl Traffic {
    fn start(server_ns: &Path, client_ns: &Path, addr: &str, port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let listener = in_netns(server_ns, move || TcpListener::bind(("0.0.0.0", port)).expect("bind"));
        listener.set_nonblocking(true).unwrap();
        let server = {
            let stop = stop.clone();
            std::thread::spawn(move || serve_echo(listener, &stop))
        };
        let target: SocketAddr = format!("{addr}:{port}").parse().unwrap();
        let (phase, rounds, errors) = (Arc::new(AtomicU32::new(0)), Arc::new(Default::default()), Arc::default());
        let client = {
            let (stop, phase, rounds, errors) = (stop.clone(), phase.clone(), Arc::clone(&rounds), Arc::clone(&errors));
            let ns = std::fs::File::open(client_ns).unwrap();
            std::thread::spawn(move || {
                use std::os::fd::AsFd;
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
                run_rounds(target, &stop, &phase, &rounds, &errors);
            })
        };
        Self { stop, phase, rounds, errors, client, server }
    }

    fn next_phase(&self) {
        self.phase.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits until `n` rounds succeeded in the current phase (bounded).
    fn wait_for_rounds(&self, n: u32) {
        let phase = self.phase.load(Ordering::SeqCst) as usize;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.rounds[phase].load(Ordering::SeqCst) < n {
            let errors = self.errors.lock().unwrap().clone();
            assert!(Instant::now() < deadline, "traffic stalled in phase {phase}; errors: {errors:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the rounds; panics on any failed round; returns the rounds per phase.
    fn stop(self) -> [u32; 3] {
        self.stop.store(true, Ordering::SeqCst);
        self.client.join().expect("traffic client panicked");
        self.server.join().expect("traffic server panicked");
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "traffic failed across the restart: {errors:?}");
        [0, 1, 2].map(|p| self.rounds[p].load(Ordering::SeqCst))
    }
}

fn run_rounds(
    target: SocketAddr,
    stop: &AtomicBool,
    phase: &AtomicU32,
    rounds: &[AtomicU32; 3],
    errors: &Mutex<Vec<String>>,
) {
    let deadline = Instant::now() + TRAFFIC_DEADLINE;
    let connect = || -> std::io::Result<TcpStream> {
        let conn = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    };
    let mut long_lived = connect().expect("first connection");
    for round in 0..MAX_ROUNDS {
        if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
            return;
        }
        let p = phase.load(Ordering::SeqCst).min(2) as usize;
        let msg = format!("{round:08}");
        let result = echo(&mut long_lived, &msg).and_then(|_| echo(&mut connect()?, &msg));
        match result {
            Ok(()) => {
                rounds[p].fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => errors.lock().unwrap().push(format!("round {round} (phase {p}): {e}")),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn echo(conn: &mut TcpStream, msg: &str) -> std::io::Result<()> {
    conn.write_all(msg.as_bytes())?;
    let mut reply = vec![0u8; msg.len()];
    conn.read_exact(&mut reply)?;
    if reply != msg.as_bytes() {
        return Err(std::io::Error::other(format!("bad echo {:?}", String::from_utf8_lossy(&reply))));
    }
    Ok(())
}

/// Echoes every connection back until `stop`; one thread per connection.
fn serve_echo(listener: TcpListener, stop: &AtomicBool) {
    let deadline = Instant::now() + TRAFFIC_DEADLINE;
    let mut handlers = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match listener.accept() {
            Ok((mut conn, _)) => handlers.push(std::thread::spawn(move || {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            })),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("accept: {e}"),
        }
    }
    drop(listener);
    for h in handlers {
        let _ = h.join();
    }
}

/// `ping` from a container via `netd exec`, started while the daemon is up: exec needs the
/// daemon only to look the container up. Bounded by count and deadline.
fn host_ping(host: &TestHost, container: &str, ip: &str) -> Child {
    host.cli(&["exec", container, "--", "ping", "-c", "50", "-i", "0.1", "-W", "1", "-w", "30", ip])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ping")
}

/// (transmitted, received) from ping's summary.
fn ping_result(child: Child) -> (u32, u32) {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no ping summary:\n{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    let numbers: Vec<u32> = summary.split([' ', ',']).filter_map(|w| w.parse().ok()).collect();
    assert!(numbers[0] > 0, "ping sent nothing: {summary}");
    (numbers[0], numbers[1])
}
