//! Published ports' edges end to end (issue 11, datapath gaps): a packet from outside carrying a
//! netd address as its source never reaches a backend; a datagram to the uplink subnet's
//! broadcast address never matches a wildcard publish; an ICMP error the backend sends about a
//! published flow reaches the outside client translated (its socket sees "connection refused");
//! a datagram a container sends to a published port in fragments arrives whole (hairpin).
//! Traffic only between the netns the test host made; every wait bounded.
use std::{
    io::ErrorKind,
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    path::PathBuf,
    time::{Duration, Instant},
};

use netd_tests::{
    in_netns,
    packet::ipv4_udp,
    probe::{send_ipv4, udp_peer, v4},
    servers::UdpPeerServer,
    TestHost, OUTSIDE_ADDR,
};

const UPLINK_ADDR: &str = "198.51.100.2";
const UPLINK_BROADCAST: &str = "198.51.100.255";

fn outside_ns(host: &TestHost) -> PathBuf {
    host.netns_path(&host.outside_ns)
}

fn outside() -> Ipv4Addr {
    OUTSIDE_ADDR.parse().unwrap()
}

/// The container's gateway (its default route's next hop).
fn gateway_of(host: &TestHost, name: &str) -> Ipv4Addr {
    let net = format!("--net={}", host.container_netns(name).display());
    let out = netd_tests::sh(&["nsenter", &net, "ip", "-4", "route", "show", "default"]);
    out.split_whitespace().skip_while(|w| *w != "via").nth(1).expect("default route via").parse().unwrap()
}

/// `web` on its own network with UDP 5353 published to its port 7000.
fn start_web(host: &TestHost, net: &str) -> Ipv4Addr {
    host.ok(&["network", "create", net]);
    host.ok(&["run", "-d", "--name", "web", "-p", "5353:7000/udp", "--network", net]);
    host.ip_of("web", net).parse().unwrap()
}

#[test]
fn packets_from_outside_with_a_netd_source_never_reach_a_published_port() {
    let host = TestHost::start();
    let web_ip = start_web(&host, "pe-spoof");
    let server = UdpPeerServer::start(&host.container_netns("web"), "0.0.0.0", 7000);
    let gateway = gateway_of(&host, "web");
    // The datapath learns the new gateway as a host address with the daemon's next refresh of
    // them (every 2 s): wait until the wildcard publish answers on it from outside.
    netd_tests::sh(&["ip", "-n", &host.outside_ns, "route", "add", &format!("{gateway}/32"), "via", UPLINK_ADDR]);
    let known = (0..4).any(|_| udp_peer(&outside_ns(&host), None, SocketAddrV4::new(gateway, 5353)).is_some());
    assert!(known, "the wildcard publish never answered on the gateway {gateway}");
    let before = host.drops("spoofed_source", "uplink_ingress");
    // The outside sends datagrams claiming the container's own address and its gateway.
    let uplink: Ipv4Addr = UPLINK_ADDR.parse().unwrap();
    for src in [web_ip, gateway] {
        send_ipv4(&outside_ns(&host), ipv4_udp(src, uplink, 4444, 5353, b"spoofed", true));
    }
    let counted = host.wait_drops_above("spoofed_source", "uplink_ingress", before + 1, Duration::from_secs(5));
    assert_eq!(counted, before + 2, "both spoofed datagrams dropped at the uplink");
    // A real client afterwards gets through: the spoofed ones, sent first, were never delivered.
    let seen = udp_peer(&outside_ns(&host), None, v4(UPLINK_ADDR, 5353)).expect("an answer to the real client");
    assert_eq!(seen.ip(), &outside());
    std::thread::sleep(Duration::from_millis(200));
    let peers = server.peers();
    assert!(peers.iter().all(|p| p.ip() == std::net::IpAddr::V4(outside())), "only the real client: {peers:?}");
}

#[test]
fn a_broadcast_datagram_never_matches_a_wildcard_publish() {
    let host = TestHost::start();
    start_web(&host, "pe-bcast");
    let server = UdpPeerServer::start(&host.container_netns("web"), "0.0.0.0", 7000);
    // The outside broadcasts on the uplink's subnet, to the published port.
    in_netns(&outside_ns(&host), || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
        socket.set_broadcast(true).expect("SO_BROADCAST");
        for _ in 0..3 {
            socket.send_to(b"to everyone", (UPLINK_BROADCAST, 5353)).expect("send broadcast");
        }
    });
    // The unicast datagram sent after them is answered; the broadcasts never reached the server.
    let seen = udp_peer(&outside_ns(&host), None, v4(UPLINK_ADDR, 5353)).expect("an answer to the unicast datagram");
    assert_eq!(seen.ip(), &outside());
    assert_eq!(server.peers().len(), 1, "only the unicast datagram: {:?}", server.peers());
}

#[test]
fn port_unreachable_from_the_backend_reaches_the_outside_client_translated() {
    let host = TestHost::start();
    start_web(&host, "pe-icmp");
    // Nothing listens on the container port: the container's kernel answers "port unreachable",
    // quoting the datagram as it received it (to the container's address and port 7000).
    let before = host.drops("unsupported_protocol", "endpoint_ingress");
    let refused = in_netns(&outside_ns(&host), || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
        // A connected UDP socket reports an ICMP error about its datagrams as ECONNREFUSED, but
        // only one that quotes exactly what it sent (to the published address and port).
        socket.connect(SocketAddrV4::new(UPLINK_ADDR.parse().unwrap(), 5353)).expect("connect");
        socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 64];
        while Instant::now() < deadline {
            let _ = socket.send(b"anyone?");
            match socket.recv(&mut buf) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return true,
                _ => {}
            }
            // The sender's ICMP rate limit lets one error a second through per peer.
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    });
    assert!(refused, "no port unreachable reached the client; stats: {}", host.ok(&["stats", "--format", "json"]));
    assert_eq!(host.drops("unsupported_protocol", "endpoint_ingress"), before, "the ICMP error is not dropped");
}

#[test]
fn a_fragmented_datagram_from_a_container_reaches_a_published_port_whole() {
    let host = TestHost::start();
    start_web(&host, "pe-frag");
    host.ok(&["run", "-d", "--name", "near", "--network", "pe-frag"]);
    let server = UdpPeerServer::start(&host.container_netns("web"), "0.0.0.0", 7000);
    let near: Ipv4Addr = host.ip_of("near", "pe-frag").parse().unwrap();
    let gateway = gateway_of(&host, "near");
    for dst in [UPLINK_ADDR.parse().unwrap(), gateway] {
        // Twice the veth's MTU: the client's kernel sends it in fragments; the server answers
        // only once it has them all.
        let answer = in_netns(&host.container_netns("near"), move || {
            let socket = UdpSocket::bind("0.0.0.0:0").expect("bind UDP");
            socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let big = vec![b'x'; 3000];
            let mut buf = [0u8; 256];
            for _ in 0..3 {
                socket.send_to(&big, (dst, 5353)).expect("send");
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    if from == std::net::SocketAddr::V4(SocketAddrV4::new(dst, 5353)) {
                        return Some(String::from_utf8_lossy(&buf[..n]).to_string());
                    }
                }
            }
            None
        });
        let answer = answer.unwrap_or_else(|| panic!("no answer to the fragmented datagram to {dst}:5353"));
        assert_eq!(answer.split(':').next(), Some(near.to_string().as_str()), "the server saw the client");
    }
    assert!(!server.peers().is_empty());
}
