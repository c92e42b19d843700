//! Published ports' packet paths end to end (issue 11, item 3's first, third and fourth
//! bullets): a client outside reaches `-p` ports on the uplink address over TCP and UDP and the
//! server sees the client's real address (moby#15086); containers reach published ports on the
//! host address and on their gateway (hairpin), from the same network, from another network,
//! and a container its own published port.
use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
};

use netd_tests::{
    probe::{exchange, tcp_peer, udp_peer, v4, IO_TIMEOUT},
    servers::{TcpPeerServer, UdpPeerServer},
    sh, TestHost, OUTSIDE_ADDR,
};

const UPLINK_ADDR: &str = "198.51.100.2";

fn outside_ns(host: &TestHost) -> PathBuf {
    host.netns_path(&host.outside_ns)
}

/// Connects from `netns` to `dst` (a TcpPeerServer behind it), exchanges a line and returns
/// the source the server saw.
fn tcp_through(host: &TestHost, netns: &Path, dst: SocketAddrV4) -> SocketAddrV4 {
    let (mut stream, seen) =
        tcp_peer(netns, None, dst, IO_TIMEOUT).unwrap_or_else(|e| panic!("TCP to {dst}: {e}\n{}", log_tail(host)));
    exchange(&mut stream, "hello").unwrap_or_else(|e| panic!("exchange with {dst}: {e}"));
    assert_eq!(stream.peer_addr().unwrap(), SocketAddr::V4(dst), "the client talks to the published address");
    seen
}

fn udp_through(host: &TestHost, netns: &Path, dst: SocketAddrV4) -> SocketAddrV4 {
    // udp_peer accepts only a reply whose source is exactly `dst`.
    udp_peer(netns, None, dst).unwrap_or_else(|| panic!("no UDP reply from {dst}\n{}", log_tail(host)))
}

fn log_tail(host: &TestHost) -> String {
    let log = host.daemon_log();
    log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The container's gateway (its default route's next hop).
fn gateway_of(netns: &Path) -> String {
    let net = format!("--net={}", netns.display());
    let out = sh(&["nsenter", &net, "ip", "-4", "route", "show", "default"]);
    out.split_whitespace().skip_while(|w| *w != "via").nth(1).expect("default route via").to_string()
}

#[test]
fn outside_clients_reach_published_tcp_and_udp_ports_with_their_own_address() {
    let host = TestHost::start();
    host.ok(&["network", "create", "pp-out"]);
    host.ok(&["run", "-d", "--name", "web", "-p", "8080:80", "-p", "5353:7000/udp", "--network", "pp-out"]);
    let netns = host.container_netns("web");
    let tcp = TcpPeerServer::start(&netns, "0.0.0.0", 80);
    let udp = UdpPeerServer::start(&netns, "0.0.0.0", 7000);
    let outside: Ipv4Addr = OUTSIDE_ADDR.parse().unwrap();
    let seen = tcp_through(&host, &outside_ns(&host), v4(UPLINK_ADDR, 8080));
    assert_eq!(seen.ip(), &outside, "the server sees the client's real address");
    assert_eq!(tcp.peers().len(), 1);
    let seen = udp_through(&host, &outside_ns(&host), v4(UPLINK_ADDR, 5353));
    assert_eq!(seen.ip(), &outside);
    assert!(udp.peers().iter().all(|p| p.ip() == std::net::IpAddr::V4(outside)), "{:?}", udp.peers());
    // The container port itself is not reachable from outside, nor the unpublished protocol.
    let ip = host.ip_of("web", "pp-out");
    assert!(tcp_peer(&outside_ns(&host), None, v4(&ip, 80), IO_TIMEOUT).is_err());
    assert_eq!(udp_peer(&outside_ns(&host), None, v4(UPLINK_ADDR, 8080)), None);
    // After rm the port answers no more.
    host.ok(&["rm", "-f", "web"]);
    assert!(tcp_peer(&outside_ns(&host), None, v4(UPLINK_ADDR, 8080), IO_TIMEOUT).is_err());
}

#[test]
fn a_port_published_on_loopback_is_not_reachable_from_outside() {
    let host = TestHost::start();
    host.ok(&["network", "create", "pp-lo"]);
    host.ok(&["run", "-d", "--name", "local", "-p", "127.0.0.1:8081:80", "--network", "pp-lo"]);
    let _tcp = TcpPeerServer::start(&host.container_netns("local"), "0.0.0.0", 80);
    assert!(tcp_peer(&outside_ns(&host), None, v4(UPLINK_ADDR, 8081), IO_TIMEOUT).is_err());
}

#[test]
fn containers_reach_published_ports_on_the_host_address_and_their_gateway() {
    let host = TestHost::start();
    host.ok(&["network", "create", "pp-a"]);
    host.ok(&["network", "create", "pp-b"]);
    host.ok(&["run", "-d", "--name", "web", "-p", "8080:80", "-p", "5353:7000/udp", "--network", "pp-a"]);
    host.ok(&["run", "-d", "--name", "near", "--network", "pp-a"]);
    host.ok(&["run", "-d", "--name", "far", "--network", "pp-b"]);
    let web = host.container_netns("web");
    let _tcp = TcpPeerServer::start(&web, "0.0.0.0", 80);
    let _udp = UdpPeerServer::start(&web, "0.0.0.0", 7000);
    for (client, net) in [("near", "pp-a"), ("far", "pp-b")] {
        let netns = host.container_netns(client);
        let own: Ipv4Addr = host.ip_of(client, net).parse().unwrap();
        let gateway = gateway_of(&netns);
        for dst in [UPLINK_ADDR, gateway.as_str()] {
            let seen = tcp_through(&host, &netns, v4(dst, 8080));
            assert_eq!(seen.ip(), &own, "{client} → {dst}:8080: the server sees the client's address");
            let seen = udp_through(&host, &netns, v4(dst, 5353));
            assert_eq!(seen.ip(), &own, "{client} → {dst}:5353/udp");
        }
    }
    // The server's own published port, from inside it: seen from its gateway.
    let gateway = gateway_of(&web);
    for dst in [UPLINK_ADDR, gateway.as_str()] {
        let seen = tcp_through(&host, &web, v4(dst, 8080));
        assert_eq!(seen.ip().to_string(), gateway, "web → {dst}:8080 comes from its gateway");
        let seen = udp_through(&host, &web, v4(dst, 5353));
        assert_eq!(seen.ip().to_string(), gateway, "web → {dst}:5353/udp");
    }
}
