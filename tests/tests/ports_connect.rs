//! Published ports and `network connect`/`disconnect` (issue 11): Docker gives a new endpoint
//! the container's port bindings only when none of the container's endpoints carries them yet
//! and the network is not internal. A container run with `-p` on internal networks only
//! publishes nothing; connected to a normal network, its bindings are published on the new
//! endpoint (all or nothing, Docker's conflict texts, a refused connect changes nothing);
//! they follow the gateway endpoint — of the normal networks, the one whose name sorts first —
//! with the default route when a connect or disconnect changes it (measured on Docker 20.10);
//! with no normal network left they are released; random host ports are picked afresh.
use std::net::Ipv4Addr;

use netd_tests::{
    probe::{exchange, tcp_peer, udp_peer, v4, IO_TIMEOUT},
    published::{reserved, services, TCP, UDP},
    servers::{TcpPeerServer, UdpPeerServer},
    TestHost, OUTSIDE_ADDR,
};
use serde_json::{json, Value};

const UPLINK_ADDR: &str = "198.51.100.2";
const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

fn ip(host: &TestHost, name: &str, network: &str) -> Ipv4Addr {
    host.ip_of(name, network).parse().unwrap()
}

/// `NetworkSettings.Ports` and the `ps` PORTS column of `name`.
fn shown_ports(host: &TestHost, name: &str) -> (Value, String) {
    let c = host.json(&["inspect", name]);
    let ps = host.ok(&["ps", "--format", "{{.Names}}|{{.Ports}}"]);
    let row = ps.lines().find_map(|l| l.strip_prefix(&format!("{name}|"))).unwrap_or_else(|| panic!("{name} in {ps}"));
    (c[0]["NetworkSettings"]["Ports"].clone(), row.trim().to_string())
}

/// Whether an outside client gets through `UPLINK_ADDR:port` to a TcpPeerServer and is seen
/// with its own address.
fn outside_tcp_reaches(host: &TestHost, port: u16) -> bool {
    let outside = host.netns_path(&host.outside_ns);
    match tcp_peer(&outside, None, v4(UPLINK_ADDR, port), IO_TIMEOUT) {
        Ok((mut stream, seen)) => {
            exchange(&mut stream, "hello").unwrap();
            assert_eq!(seen.ip().to_string(), OUTSIDE_ADDR, "the server sees the client's address");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn a_container_on_internal_networks_publishes_when_connected_and_releases_at_disconnect() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--internal", "pc-int"]);
    host.ok(&["network", "create", "pc-ext"]);
    host.ok(&["run", "-d", "--name", "web", "--network", "pc-int", "-p", "8080:80", "-p", "5353:7000/udp"]);
    let netns = host.container_netns("web");
    let _tcp = TcpPeerServer::start(&netns, "0.0.0.0", 80);
    let _udp = UdpPeerServer::start(&netns, "0.0.0.0", 7000);
    // Kept, not published.
    assert_eq!(host.ok(&["port", "web"]), "");
    assert_eq!(shown_ports(&host, "web"), (json!({}), String::new()));
    let bindings = host.json(&["inspect", "web"])[0]["HostConfig"]["PortBindings"].clone();
    assert_eq!(bindings["80/tcp"], json!([{"HostIp": "", "HostPort": "8080"}]));
    assert!(services(&host).is_empty() && reserved(&host).is_empty());
    assert!(!outside_tcp_reaches(&host, 8080));

    host.ok(&["network", "connect", "pc-ext", "web"]);
    let backend = ip(&host, "web", "pc-ext");
    assert_eq!(services(&host), [(ANY, 5353, UDP, backend, 7000), (ANY, 8080, TCP, backend, 80)].into_iter().collect());
    assert_eq!(reserved(&host), [(5353, UDP), (8080, TCP)].into_iter().collect());
    assert_eq!(host.ok(&["port", "web"]), "7000/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:8080\n");
    let (ports, ps) = shown_ports(&host, "web");
    assert_eq!(ports["80/tcp"], json!([{"HostIp": "0.0.0.0", "HostPort": "8080"}]));
    assert_eq!(ps, "0.0.0.0:8080->80/tcp, 0.0.0.0:5353->7000/udp");
    assert!(outside_tcp_reaches(&host, 8080), "TCP through the port published at connect");
    let seen = udp_peer(&host.netns_path(&host.outside_ns), None, v4(UPLINK_ADDR, 5353));
    assert_eq!(seen.map(|s| s.ip().to_string()), Some(OUTSIDE_ADDR.to_string()), "UDP through it");

    // A second normal network: the ports stay where they are.
    host.ok(&["network", "create", "pc-ext2"]);
    host.ok(&["network", "connect", "pc-ext2", "web"]);
    assert!(services(&host).iter().all(|s| s.3 == backend), "{:?}", services(&host));
    host.ok(&["network", "disconnect", "pc-ext2", "web"]);
    assert!(outside_tcp_reaches(&host, 8080));

    // A network whose name sorts first becomes the gateway endpoint: the ports and the default
    // route move to it, with their host ports; disconnected from it, they move back.
    host.ok(&["network", "create", "pc-a"]);
    host.ok(&["network", "connect", "pc-a", "web"]);
    let first = ip(&host, "web", "pc-a");
    assert!(services(&host).iter().all(|s| s.3 == first), "{:?}", services(&host));
    let gateway = host.json(&["network", "inspect", "pc-a"])[0]["IPAM"]["Config"][0]["Gateway"].clone();
    let route = host.ok(&["exec", "web", "ip", "-4", "route", "show", "default"]);
    assert!(route.starts_with(&format!("default via {} ", gateway.as_str().unwrap())), "{route}");
    assert!(outside_tcp_reaches(&host, 8080), "TCP through the port moved to pc-a");
    assert_eq!(host.ok(&["port", "web"]), "7000/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:8080\n");
    host.ok(&["network", "disconnect", "pc-a", "web"]);
    assert!(services(&host).iter().all(|s| s.3 == backend), "{:?}", services(&host));
    assert!(outside_tcp_reaches(&host, 8080), "TCP through the port moved back to pc-ext");

    // Disconnected from the network they lead to: released everywhere at once.
    host.ok(&["network", "disconnect", "pc-ext", "web"]);
    assert_eq!(host.ok(&["port", "web"]), "");
    assert_eq!(shown_ports(&host, "web"), (json!({}), String::new()));
    assert_eq!((services(&host), reserved(&host)), Default::default(), "{}", host.daemon_log());
    assert!(!outside_tcp_reaches(&host, 8080));
    // The host port is free for another container.
    host.ok(&["run", "-d", "--name", "next", "--network", "pc-ext", "-p", "8080:80"]);
}

#[test]
fn a_refused_connect_changes_nothing_and_has_dockers_texts() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--internal", "pc-int"]);
    host.ok(&["network", "create", "pc-ext"]);
    host.ok(&["run", "-d", "--name", "holder", "--network", "pc-ext", "-p", "8080:80", "-p", "127.0.0.1:8081:80"]);
    let held = (services(&host), reserved(&host));
    for (ports, why) in [
        (["-p", "9000:90", "-p", "8080:80"], "Bind for 0.0.0.0:8080 failed: port is already allocated"),
        (
            ["-p", "9000:90", "-p", "8081:80"],
            "Error starting userland proxy: listen tcp4 0.0.0.0:8081: bind: address already in use",
        ),
    ] {
        host.ok(&[&["run", "-d", "--name", "web", "--network", "pc-int"][..], &ports[..]].concat());
        let before = host.snapshot();
        let err = host.fails(&["network", "connect", "pc-ext", "web"]);
        let prefix = "Error response from daemon: driver failed programming external connectivity on endpoint web (";
        assert!(err.starts_with(prefix), "{err}");
        let (id, rest) = err[prefix.len()..].split_once("): ").unwrap();
        assert_eq!(id.len(), 64, "{err}");
        assert_eq!(rest, why);
        assert_eq!(host.snapshot(), before, "the refused connect changed something");
        assert_eq!((services(&host), reserved(&host)), held);
        let networks = host.json(&["inspect", "web"])[0]["NetworkSettings"]["Networks"].clone();
        assert_eq!(networks.as_object().unwrap().keys().collect::<Vec<_>>(), ["pc-int"]);
        assert_eq!(host.ok(&["port", "web"]), "");
        host.ok(&["rm", "-f", "web"]);
    }
}

#[test]
fn random_host_ports_are_picked_afresh_at_each_connect() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--internal", "pc-int"]);
    host.ok(&["network", "create", "pc-ext"]);
    host.ok(&["run", "-d", "--name", "web", "--network", "pc-int", "-p", "80"]);
    let _tcp = TcpPeerServer::start(&host.container_netns("web"), "0.0.0.0", 80);
    assert_eq!(host.ok(&["port", "web"]), "");
    let mut picked = Vec::new();
    for _ in 0..2 {
        host.ok(&["network", "connect", "pc-ext", "web"]);
        let line = host.ok(&["port", "web", "80"]);
        let port: u16 = line.trim().strip_prefix("0.0.0.0:").unwrap_or_else(|| panic!("{line}")).parse().unwrap();
        assert!(outside_tcp_reaches(&host, port), "the random port {port}");
        host.ok(&["network", "disconnect", "pc-ext", "web"]);
        assert!(!outside_tcp_reaches(&host, port), "{port} released at disconnect");
        picked.push(port);
    }
    // Docker's allocator hands out the next port after the last one.
    assert_ne!(picked[0], picked[1], "{picked:?}");
}
