//! `netd stats [--format json]` (issue 10 item 7): drops by reason and hook, each endpoint's
//! packets and bytes both ways (the container-side interface's own counters), and the
//! conntrack and NAT tables against their capacity.
use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::Output,
    time::Duration,
};

use netd_cmd::Limit;
use netd_tests::{in_netns, tcp_exchange, TestHost, OUTSIDE_ADDR};
use serde_json::Value;

const LIMIT: Limit = Limit::new(Duration::from_secs(60));

fn in_container(host: &TestHost, name: &str, cmd: &[&str]) -> Output {
    let mut command = netd_cmd::in_netns(&host.container_netns(name), cmd[0]);
    command.args(&cmd[1..]);
    netd_cmd::output(&mut command, LIMIT).unwrap_or_else(|e| panic!("{cmd:?} in {name}: {e}"))
}

fn stats(host: &TestHost) -> Value {
    host.json(&["stats", "--format", "json"])
}

/// The entry of `stats.endpoints` for `container`'s interface `interface`.
fn endpoint<'a>(stats: &'a Value, container: &str, interface: &str) -> &'a Value {
    stats["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .find(|e| e["container"] == container && e["interface"] == interface)
        .unwrap_or_else(|| panic!("no endpoint {container}/{interface} in {stats}"))
}

fn counter(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

fn drop_packets(stats: &Value, reason: &str, hook: &str) -> u64 {
    let drops = stats["drops"].as_array().expect("drops");
    let d = drops
        .iter()
        .find(|d| d["reason"] == reason && d["hook"] == hook)
        .unwrap_or_else(|| panic!("no {reason}/{hook} counter in {stats}"));
    counter(d, "packets")
}

#[test]
fn stats_count_endpoint_traffic_both_ways_and_isolation_drops() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.70.0.0/24", "left"]);
    host.ok(&["network", "create", "--subnet", "10.71.0.0/24", "right"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "left"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "left"]);
    host.ok(&["run", "-d", "--name", "other", "--network", "right"]);
    let (ip_two, ip_other) = (host.ip_of("two", "left"), host.ip_of("other", "right"));

    // Every (reason, hook) pair is listed once, zero or not.
    let before = stats(&host);
    let pairs: BTreeSet<(String, String)> = before["drops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["reason"].as_str().unwrap().to_string(), d["hook"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(pairs.len(), before["drops"].as_array().unwrap().len(), "a (reason, hook) pair is listed twice");
    for hook in ["endpoint_ingress", "uplink_ingress"] {
        for reason in ["isolation", "spoofed_source", "internal_network", "unpublished_ingress"] {
            assert!(pairs.contains(&(reason.to_string(), hook.to_string())), "{reason}/{hook} missing");
        }
    }
    let isolation = before["drops"].as_array().unwrap().iter().find(|d| d["reason"] == "isolation").unwrap();
    assert_eq!(isolation["code"], 3);
    // Every endpoint is listed with its container, network, interface and address.
    let e = endpoint(&before, "two", "eth0");
    assert_eq!((e["network"].as_str(), e["ip"].as_str()), (Some("left"), Some(ip_two.as_str())));
    assert_eq!(before["endpoints"].as_array().unwrap().len(), 3);

    // Five pings from one to two: one sent (tx) at least five echo requests of 84 bytes and
    // received (rx) their replies; two the other way round. Replies are delivered with
    // bpf_redirect_peer, which the kernel counts in the receiver's rx as well.
    let out = in_container(&host, "one", &["ping", "-c", "5", "-i", "0.2", "-W", "2", &ip_two]);
    assert!(out.status.success(), "ping: {}", String::from_utf8_lossy(&out.stdout));
    let after = stats(&host);
    for (name, sent, received) in [("one", "tx", "rx"), ("two", "rx", "tx")] {
        let (b, a) = (endpoint(&before, name, "eth0"), endpoint(&after, name, "eth0"));
        for dir in [sent, received] {
            let packets = counter(a, &format!("{dir}_packets")) - counter(b, &format!("{dir}_packets"));
            let bytes = counter(a, &format!("{dir}_bytes")) - counter(b, &format!("{dir}_bytes"));
            assert!(packets >= 5, "{name} {dir}_packets grew by {packets} only");
            assert!(bytes >= 5 * 84, "{name} {dir}_bytes grew by {bytes} only");
        }
    }
    // TCP adds more on both sides (the harness's echo server reads up to 256 bytes).
    let (ns_one, ns_two) = (host.container_netns("one"), host.container_netns("two"));
    assert_eq!(tcp_exchange(&ns_two, &ns_one, &ip_two, 7201, &"x".repeat(200)), "X".repeat(200));
    let after_tcp = stats(&host);
    let grew = |name: &str, field: &str| {
        counter(endpoint(&after_tcp, name, "eth0"), field) - counter(endpoint(&after, name, "eth0"), field)
    };
    // 200 bytes of payload each way, plus the handshake and teardown segments.
    for (name, field) in [("one", "tx_bytes"), ("two", "rx_bytes"), ("two", "tx_bytes"), ("one", "rx_bytes")] {
        assert!(grew(name, field) >= 200 + 4 * 54, "{name} {field} grew by {} only", grew(name, field));
    }

    // Pings across networks are dropped at the sender's endpoint ingress as isolation.
    let isolated = drop_packets(&after_tcp, "isolation", "endpoint_ingress");
    assert!(!in_container(&host, "one", &["ping", "-c", "3", "-i", "0.2", "-W", "1", &ip_other]).status.success());
    let now = stats(&host);
    assert!(drop_packets(&now, "isolation", "endpoint_ingress") >= isolated + 3, "isolation counter did not move");

    // The table form: the drop that happened (and only non-zero ones), every endpoint, the flows.
    let table = host.ok(&["stats"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "DROPS");
    assert!(lines[1].starts_with("REASON") && lines[1].contains("HOOK") && lines[1].ends_with("BYTES"), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("isolation") && l.contains("endpoint_ingress")), "{table}");
    assert!(!lines.iter().any(|l| l.starts_with("malformed")), "zero counters shown:\n{table}");
    assert!(lines.iter().any(|l| l.starts_with("one ") && l.contains("left") && l.contains("eth0")), "{table}");
    assert!(lines.contains(&"ENDPOINTS") && lines.contains(&"FLOWS"), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("conntrack tcp") && l.ends_with("262144")), "{table}");
}

#[test]
fn stats_show_conntrack_and_nat_entries_against_capacity_while_a_flow_is_open() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.72.0.0/24", "egress"]);
    host.ok(&["run", "-d", "--name", "client", "--network", "egress"]);
    let quiet = stats(&host);
    assert_eq!(quiet["conntrack"]["tcp"]["capacity"], 262_144);
    assert_eq!(quiet["conntrack"]["other"]["capacity"], 262_144);
    assert_eq!(quiet["nat"]["capacity"], 524_288);
    assert_eq!(quiet["conntrack"]["tcp"]["entries"], 0, "{quiet}");
    assert_eq!(quiet["nat"]["entries"], 0, "{quiet}");

    // A TCP connection from the container to the outside netns, held open.
    let outside = host.netns_path(&host.outside_ns);
    let listener = in_netns(&outside, || TcpListener::bind(("0.0.0.0", 7301)).expect("bind"));
    let target = format!("{OUTSIDE_ADDR}:7301").parse().unwrap();
    let mut conn = in_netns(&host.container_netns("client"), move || {
        TcpStream::connect_timeout(&target, Duration::from_secs(5)).expect("connect to the outside")
    });
    let (mut served, _) = listener.accept().expect("accept");
    conn.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    served.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    served.read_exact(&mut buf).unwrap();
    // And one ICMP echo, which stays tracked for its timeout.
    assert!(in_container(&host, "client", &["ping", "-c", "1", "-W", "2", OUTSIDE_ADDR]).status.success());

    let open = stats(&host);
    let entries = |v: &Value, path: &[&str]| path.iter().fold(v, |v, k| &v[*k])["entries"].as_u64().unwrap();
    assert!(entries(&open, &["conntrack", "tcp"]) >= 1, "{open}");
    assert!(entries(&open, &["conntrack", "other"]) >= 1, "{open}");
    assert!(entries(&open, &["nat"]) >= 2, "{open}");
    assert_eq!(open["conntrack"]["tcp"]["capacity"], 262_144);
    assert_eq!(open["nat"]["capacity"], 524_288);
    let e = endpoint(&open, "client", "eth0");
    assert!(counter(e, "tx_packets") >= 3 && counter(e, "rx_packets") >= 3, "{e}");
    drop((conn, served));
}
