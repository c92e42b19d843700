//! Published ports' packet paths end to end (issue 11, item 3's first, third and fourth
//! bullets): a client outside reaches `-p` ports on the uplink address over TCP and UDP and the
//! server sees the client's real address (moby#15086); containers reach published ports on the
//! host address and on their gateway (hairpin), from the same network, from another network,
//! and a container its own published port. Published ports keep working through a `kill -9` of
//! the daemon, and no socket (netd's or any) listens on them in the host netns.
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

/// Sends `message` on an established stream and checks the echo, with context on failure.
fn still_exchanges(host: &TestHost, stream: &mut std::net::TcpStream, message: &str, when: &str) {
    exchange(stream, message).unwrap_or_else(|e| panic!("established connection {when}: {e}\n{}", log_tail(host)));
}

#[test]
fn published_ports_keep_working_through_a_kill_9_of_the_daemon_and_after_its_restart() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "pp-k9"]);
    host.ok(&["run", "-d", "--name", "web", "-p", "8080:80", "-p", "5353:7000/udp", "--network", "pp-k9"]);
    let netns = host.container_netns("web");
    let _tcp = TcpPeerServer::start(&netns, "0.0.0.0", 80);
    let _udp = UdpPeerServer::start(&netns, "0.0.0.0", 7000);
    let outside = outside_ns(&host);
    let (mut established, _) = tcp_peer(&outside, None, v4(UPLINK_ADDR, 8080), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("TCP to {UPLINK_ADDR}:8080: {e}\n{}", log_tail(&host)));
    still_exchanges(&host, &mut established, "before", "before the kill");

    host.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    // A few rounds while the daemon is down: the flow's state is in pinned maps only.
    for round in 0..3 {
        still_exchanges(&host, &mut established, &format!("down {round}"), "while the daemon is down");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    tcp_through(&host, &outside, v4(UPLINK_ADDR, 8080));
    udp_through(&host, &outside, v4(UPLINK_ADDR, 5353));
    // Host clients too (socket-LB), on loopback and on the uplink address.
    for dst in ["127.0.0.1", UPLINK_ADDR] {
        udp_through(&host, &host.netns_path(&host.host_ns), v4(dst, 5353));
    }

    host.start_daemon();
    still_exchanges(&host, &mut established, "after", "after the restart");
    tcp_through(&host, &outside, v4(UPLINK_ADDR, 8080));
    udp_through(&host, &outside, v4(UPLINK_ADDR, 5353));
    assert_eq!(host.ok(&["port", "web"]), "7000/udp -> 0.0.0.0:5353\n80/tcp -> 0.0.0.0:8080\n");
}

/// The inodes of the sockets in `/proc/<pid>/net/<table>` (the netns of `pid`) whose local port
/// is one of `ports` (every socket when `ports` is None).
fn proc_net_sockets(pid: u32, table: &str, ports: Option<&[u16]>) -> Vec<(String, u64)> {
    let path = format!("/proc/{pid}/net/{table}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut found = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = fields[1].rsplit_once(':').map(|(_, p)| u16::from_str_radix(p, 16).unwrap()).unwrap();
        if ports.is_none_or(|ports| ports.contains(&port)) {
            found.push((format!("{table}: {line}"), fields[9].parse().unwrap()));
        }
    }
    found
}

/// The inodes of the sockets the process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect()
}

#[test]
fn no_socket_listens_on_published_ports_and_the_daemon_holds_no_inet_socket_in_the_host() {
    let host = TestHost::start();
    host.ok(&["network", "create", "pp-nosock"]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "pp-nosock",
        "-p",
        "8080:80",
        "-p",
        "5353:7000/udp",
        "-p",
        "127.0.0.1:8081:80",
    ]);
    let netns = host.container_netns("web");
    let _tcp = TcpPeerServer::start(&netns, "0.0.0.0", 80);
    let _udp = UdpPeerServer::start(&netns, "0.0.0.0", 7000);
    // The ports work, a connection is established through one while the tables are read.
    let (mut established, _) = tcp_peer(&outside_ns(&host), None, v4(UPLINK_ADDR, 8080), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("TCP to {UPLINK_ADDR}:8080: {e}\n{}", log_tail(&host)));
    exchange(&mut established, "hello").unwrap();
    udp_through(&host, &outside_ns(&host), v4(UPLINK_ADDR, 5353));

    let daemon = host.daemon_pid();
    // A control: a listener of the test's own in the host netns is seen in the tables.
    let control = netd_tests::in_netns(&host.netns_path(&host.host_ns), || std::net::TcpListener::bind("0.0.0.0:7070"))
        .expect("control listener");
    assert_eq!(proc_net_sockets(daemon, "tcp", Some(&[7070])).len(), 1, "the control listener is listed");
    drop(control);
    let published = [8080, 8081, 5353];
    let mut on_published = Vec::new();
    let mut all = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        on_published.extend(proc_net_sockets(daemon, table, Some(&published)));
        all.extend(proc_net_sockets(daemon, table, None));
    }
    assert!(on_published.is_empty(), "sockets on published ports in the host netns: {on_published:#?}");
    let held = socket_inodes(daemon);
    assert!(!held.is_empty(), "the daemon holds its API socket at least");
    let daemons: Vec<&(String, u64)> = all.iter().filter(|(_, inode)| held.contains(inode)).collect();
    assert!(daemons.is_empty(), "the daemon holds TCP/UDP sockets in the host netns: {daemons:#?}");
}
