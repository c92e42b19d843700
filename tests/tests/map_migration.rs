//! Map layout migration (issue 13 item 8), end to end: a daemon starts over the pins an older
//! netd left — its endpoint maps under the retired names and layouts `NETD_EP_V1`/`NETD_IF_V1`
//! — copies their entries into `NETD_EP_V2`/`NETD_IF_V2`, switches every link and endpoint
//! filter to its own programs, unpins the old maps, and long-lived flows (container ↔
//! container and masqueraded to the outside) carry data throughout. The same over the
//! previous netd's endpoint programs, tcx links pinned under `links/netd_ep_ingress/`: each
//! becomes netd's cls_bpf filter and the pins go.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::TcpStream,
    os::unix::process::ExitStatusExt,
    path::Path,
    process::Command,
    time::Duration,
};

use netd_tests::{
    agreement::assert_store_and_kernel_agree,
    endpoint_filter_to_tcx_link, ingress_filters,
    probe::{exchange, tcp_peer, v4, IO_TIMEOUT},
    servers::TcpPeerServer,
    tcx_ingress_programs, TestHost, ENDPOINT_PROGRAM, LEGACY_ENDPOINT_LINKS, OUTSIDE_ADDR,
};
use nix::sys::signal::Signal;
use serde_json::Value;

/// In the command line of every container of one test (the agreement check looks for every
/// process carrying it; tests run in parallel).
const MIGRATED: &str = "600.1381";
const KILLED_MIDWAY: &str = "600.1382";
const TCX_LINKS: &str = "600.1383";
const UPLINK_ADDR: &str = "198.51.100.2";
/// An endpoint entry of the old map whose interface entry is missing: it has no V2 value.
const ORPHAN_KEY: [u8; 4] = [10, 99, 99, 99];

/// key bytes → value bytes of a pinned hash map.
type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

fn bpftool(args: &[&str]) -> Value {
    let out = Command::new("bpftool").arg("-j").args(args).output().expect("run bpftool");
    assert!(out.status.success(), "bpftool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bpftool {args:?}: bad JSON: {e}"))
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .expect("byte array")
        .iter()
        .map(|b| u8::from_str_radix(b.as_str().unwrap().trim_start_matches("0x"), 16).unwrap())
        .collect()
}

fn dump(map: &Path) -> Entries {
    let entries = bpftool(&["map", "dump", "pinned", &map.to_string_lossy()]);
    entries.as_array().unwrap().iter().map(|e| (bytes(&e["key"]), bytes(&e["value"]))).collect()
}

fn hex(bytes: &[u8]) -> Vec<String> {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a hash map pinned at `pin` as an older netd would have (same name as its pin).
fn create_old_map(pin: &Path, value_size: usize, entries: &Entries) {
    let name = pin.file_name().unwrap().to_string_lossy().into_owned();
    let out = Command::new("bpftool")
        .args(["map", "create", &pin.to_string_lossy(), "type", "hash", "key", "4"])
        .args(["value", &value_size.to_string(), "entries", "65536", "name", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "bpftool map create {name}: {}", String::from_utf8_lossy(&out.stderr));
    for (key, value) in entries {
        assert_eq!(value.len(), value_size);
        let mut args = vec!["map".to_string(), "update".into(), "pinned".into(), pin.to_string_lossy().into_owned()];
        args.extend(["key".into(), "hex".into()]);
        args.extend(hex(key));
        args.extend(["value".into(), "hex".into()]);
        args.extend(hex(value));
        let out = Command::new("bpftool").args(&args).output().unwrap();
        assert!(out.status.success(), "bpftool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `InterfaceValue` (ip, gateway, network, flags, mac, host_mac) → `InterfaceV1` (no flags).
fn interface_to_v1(v2: &[u8]) -> Vec<u8> {
    assert_eq!(v2.len(), 28);
    [&v2[..12], &v2[16..]].concat()
}

/// `EndpointValue` (ifindex, network, mac, host_mac) → `EndpointV1` (mac, 2 bytes padding).
fn endpoint_to_v1(v2: &[u8]) -> Vec<u8> {
    assert_eq!(v2.len(), 20);
    [&v2[..14], &[0, 0]].concat()
}

/// The `migrated map layout` line of `old` in the log.
fn migration_line(log: &str, old: &str) -> String {
    log.lines()
        .find(|l| l.contains("migrated map layout") && l.contains(&format!("old=\"{old}\"")))
        .unwrap_or_else(|| panic!("no migration of {old} in the daemon log:\n{log}"))
        .to_string()
}

/// Map ids by pin name under `maps/`.
fn pinned_map_ids(host: &TestHost) -> BTreeMap<String, u64> {
    std::fs::read_dir(host.bpffs.join("maps"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let info = bpftool(&["map", "show", "pinned", &e.path().to_string_lossy()]);
            (e.file_name().to_string_lossy().into_owned(), info["id"].as_u64().unwrap())
        })
        .collect()
}

/// Every pinned link runs the pinned program of its directory (this daemon's), every endpoint
/// veth's filter runs this daemon's endpoint program, and every netd map those programs use
/// is one pinned now: no program of the old layout is left.
fn assert_links_run_new_programs(host: &TestHost) {
    let pinned = pinned_map_ids(host);
    let pinned_ids: BTreeSet<u64> = pinned.values().copied().collect();
    let prog_of =
        |program: &str| bpftool(&["prog", "show", "pinned", &host.bpffs.join("progs").join(program).to_string_lossy()]);
    let mut links = 0;
    for program_dir in std::fs::read_dir(host.bpffs.join("links")).unwrap() {
        let program_dir = program_dir.unwrap();
        let program = program_dir.file_name().to_string_lossy().into_owned();
        let prog = prog_of(&program);
        for link in std::fs::read_dir(program_dir.path()).unwrap() {
            let link = link.unwrap().path();
            let info = bpftool(&["link", "show", "pinned", &link.to_string_lossy()]);
            assert_eq!(info["prog_id"], prog["id"], "{} does not run this daemon's {program}", link.display());
            links += 1;
        }
    }
    let endpoint_prog = prog_of(ENDPOINT_PROGRAM);
    let host_ns = host.netns_path(&host.host_ns);
    for veth in host.endpoint_veths() {
        let filters = ingress_filters(&host_ns, &veth);
        assert!(
            filters.len() == 1 && filters[0].is_netds() && Some(filters[0].prog_id) == endpoint_prog["id"].as_u64(),
            "{veth} does not run this daemon's {ENDPOINT_PROGRAM} as netd's filter: {filters:?}"
        );
        assert!(tcx_ingress_programs(&host_ns, &veth).is_empty(), "tcx program left on {veth}");
        links += 1;
    }
    for program in std::fs::read_dir(host.bpffs.join("progs")).unwrap() {
        let program = program.unwrap().file_name().to_string_lossy().into_owned();
        let prog = prog_of(&program);
        for map_id in prog["map_ids"].as_array().into_iter().flatten() {
            let map = bpftool(&["map", "show", "id", &map_id.to_string()]);
            let name = map["name"].as_str().unwrap_or_default();
            if name.starts_with("NETD_") {
                assert!(
                    pinned_ids.contains(&map_id.as_u64().unwrap()),
                    "{program} uses {name}, not pinned: {pinned:?}"
                );
            }
        }
    }
    assert!(links >= 3, "expected filters of two endpoints and the uplink's link, found {links}");
}

/// A long-lived connection through the datapath.
struct Flow {
    stream: TcpStream,
    what: &'static str,
}

impl Flow {
    fn open(from: &Path, to: &str, port: u16, what: &'static str) -> (Self, std::net::SocketAddrV4) {
        let (stream, seen) = tcp_peer(from, None, v4(to, port), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("{what}: cannot connect to {to}:{port}: {e}"));
        (Self { stream, what }, seen)
    }

    fn exchange(&mut self, when: &str) {
        exchange(&mut self.stream, &format!("{} {when}", self.what))
            .unwrap_or_else(|e| panic!("{} {when}: {e}", self.what));
    }
}

/// A host whose daemon was killed over two long-lived flows and whose pins were then turned
/// into what an older netd leaves: its endpoint maps under the old names and layouts (plus one
/// endpoint entry that has no V2 value), no V2 pin. Its programs are this build's, still
/// attached through their pinned links — the programs of a real older build cannot be had
/// here; what the new daemon must handle is the pins.
struct OldLayout {
    host: TestHost,
    inner: Flow,
    egress: Flow,
    /// The V2 maps' entries before the kill: what the migration must end with.
    endpoints: Entries,
    interfaces: Entries,
    marker: &'static str,
    _servers: [TcpPeerServer; 2],
}

impl OldLayout {
    fn make(marker: &'static str) -> Self {
        let mut host = TestHost::start();
        host.ok(&["network", "create", "mm-net"]);
        host.ok(&["run", "-d", "--name", "ma", "--network", "mm-net", "--", "sleep", marker]);
        host.ok(&["run", "-d", "--name", "mb", "--network", "mm-net", "--", "sleep", marker]);
        let (ns_a, ns_b) = (host.container_netns("ma"), host.container_netns("mb"));
        let ip_b = host.ip_of("mb", "mm-net");
        let servers = [
            TcpPeerServer::start(&ns_b, "0.0.0.0", 7301),
            TcpPeerServer::start(&host.netns_path(&host.outside_ns), OUTSIDE_ADDR, 7302),
        ];
        let (mut inner, _) = Flow::open(&ns_a, &ip_b, 7301, "container to container");
        let (mut egress, seen) = Flow::open(&ns_a, OUTSIDE_ADDR, 7302, "masqueraded to the outside");
        assert_eq!(seen.ip().to_string(), UPLINK_ADDR, "the outside flow is not masqueraded");
        inner.exchange("before");
        egress.exchange("before");

        let maps = host.bpffs.join("maps");
        let (ep_v2, if_v2) = (maps.join("NETD_EP_V2"), maps.join("NETD_IF_V2"));
        let (endpoints, interfaces) = (dump(&ep_v2), dump(&if_v2));
        assert_eq!((endpoints.len(), interfaces.len()), (2, 2), "endpoint maps before the kill");
        host.stop_daemon(Signal::SIGKILL);

        let old_interfaces: Entries = interfaces.iter().map(|(k, v)| (k.clone(), interface_to_v1(v))).collect();
        let mut old_endpoints: Entries = endpoints.iter().map(|(k, v)| (k.clone(), endpoint_to_v1(v))).collect();
        let orphan_value = [999_999u32.to_ne_bytes().as_slice(), &[0; 12]].concat();
        old_endpoints.insert(ORPHAN_KEY.to_vec(), orphan_value);
        create_old_map(&maps.join("NETD_IF_V1"), 24, &old_interfaces);
        create_old_map(&maps.join("NETD_EP_V1"), 16, &old_endpoints);
        std::fs::remove_file(&ep_v2).unwrap();
        std::fs::remove_file(&if_v2).unwrap();
        inner.exchange("with the daemon dead");
        egress.exchange("with the daemon dead");
        Self { host, inner, egress, endpoints, interfaces, marker, _servers: servers }
    }

    fn exchange(&mut self, when: &str) {
        self.inner.exchange(when);
        self.egress.exchange(when);
    }

    /// Turns the endpoints' filters into what the previous netd attached instead: tcx links
    /// pinned under `links/netd_ep_ingress/` (each link before its filter goes: the flows see
    /// no moment without a program).
    fn with_tcx_endpoint_links(mut self) -> Self {
        let veths = self.host.endpoint_veths();
        assert_eq!(veths.len(), 2, "endpoint veths: {veths:?}");
        for veth in &veths {
            endpoint_filter_to_tcx_link(&self.host, veth);
        }
        self.exchange("in the tcx layout");
        self
    }

    /// The end every (possibly interrupted) migration must reach: no old pin, the V2 maps
    /// holding the entries of before, every link on this daemon's programs, old and new flows
    /// working, and store and kernel agreeing.
    fn assert_migrated(&mut self) {
        let host = &self.host;
        let maps = host.bpffs.join("maps");
        for old in ["NETD_EP_V1", "NETD_IF_V1"] {
            assert!(!maps.join(old).exists(), "{old} still pinned: {:?}", pinned_map_ids(host));
        }
        assert_eq!(dump(&maps.join("NETD_EP_V2")), self.endpoints, "endpoint map after the migration");
        assert_eq!(dump(&maps.join("NETD_IF_V2")), self.interfaces, "interface map after the migration");
        assert_links_run_new_programs(host);
        assert!(!host.bpffs.join(LEGACY_ENDPOINT_LINKS).exists(), "endpoint link pins of the tcx layout left");
        self.inner.exchange("after the migration");
        self.egress.exchange("after the migration");

        let (ns_a, ns_b) = (host.container_netns("ma"), host.container_netns("mb"));
        let ip_b = host.ip_of("mb", "mm-net");
        let (mut fresh_inner, _) = Flow::open(&ns_a, &ip_b, 7301, "new container to container");
        fresh_inner.exchange("after the migration");
        let (mut fresh_egress, seen) = Flow::open(&ns_b, OUTSIDE_ADDR, 7302, "new masqueraded");
        assert_eq!(seen.ip().to_string(), UPLINK_ADDR);
        fresh_egress.exchange("after the migration");
        // The restarted daemon is fully in charge.
        host.ok(&["run", "-d", "--name", "mc", "--network", "mm-net", "--", "sleep", self.marker]);
        let (mut third, _) = Flow::open(&host.container_netns("mc"), &ip_b, 7301, "third container");
        third.exchange("after");
        assert_store_and_kernel_agree(host, self.marker);
    }
}

#[test]
fn restart_over_old_layout_pins_migrates_entries_and_keeps_flows() {
    let mut old = OldLayout::make(MIGRATED);
    old.host.start_daemon();
    let log = old.host.plain_daemon_log();
    let ep_line = migration_line(&log, "NETD_EP_V1");
    assert!(ep_line.contains("copied=2 ") && ep_line.contains("unconvertible=1 "), "{ep_line}");
    let if_line = migration_line(&log, "NETD_IF_V1");
    assert!(if_line.contains("copied=2 ") && if_line.contains("unconvertible=0 "), "{if_line}");
    old.assert_migrated();
}

/// `kill -9` at each step of the migration (after the first map's copy, before the unpin, after
/// the first unpin), one after the other on the same pins: the next start ends where an
/// uninterrupted migration does, and the flows carry data after every crash.
#[test]
fn a_migration_killed_midway_ends_the_same() {
    let mut old = OldLayout::make(KILLED_MIDWAY);
    let maps = old.host.bpffs.join("maps");
    for (point, old_pins_left) in [("migrate:copied", 2), ("migrate:unpin", 2), ("migrate:unpinned", 1)] {
        old.host.start_daemon_with_env(&[("NETD_CRASH_AT", point)]);
        let status = old.host.wait_daemon_exit(Duration::from_secs(60));
        assert_eq!(status.signal(), Some(Signal::SIGKILL as i32), "the daemon did not die at {point}");
        let left = ["NETD_EP_V1", "NETD_IF_V1"].iter().filter(|p| maps.join(p).exists()).count();
        assert_eq!(left, old_pins_left, "old pins left after a crash at {point}");
        old.exchange(&format!("after a crash at {point}"));
    }
    old.host.start_daemon();
    old.assert_migrated();
}

/// The previous netd's state as a whole: retired map layouts and the endpoint programs as pinned
/// tcx links. The new daemon attaches each endpoint's filter before it unpins its link; the
/// long-lived flows carry data before, in the old layout with no daemon, and after.
#[test]
fn restart_over_tcx_link_pins_moves_endpoints_to_filters_and_keeps_flows() {
    let mut old = OldLayout::make(TCX_LINKS).with_tcx_endpoint_links();
    old.host.start_daemon();
    old.exchange("right after the start");
    old.assert_migrated();
}
