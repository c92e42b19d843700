//! Egress (issue 10), end to end: isolation between networks, masquerade of TCP/UDP/ICMP to
//! the outside netns (with and without the container's TX checksum offload, and a UDP zero
//! checksum) from user networks, the default bridge and a dual-homed container; refusals (RST,
//! ICMP port unreachable) and fragments; forged sources; NAT port choice (two containers on one
//! source port, a host socket on the uplink address); conntrack/NAT usage in `netd stats`;
//! `--internal` networks; nothing entering from the uplink unasked (also with `ip_forward=1`);
//! established flows surviving `kill -9` of the daemon; and the host left as it was (no bridge,
//! no netfilter rule, `ip_forward` untouched). Every drop case checks its counter.
//!
//! The "outside" is the test's outside netns (198.51.100.1); the host's uplink eth0 is
//! 198.51.100.2, the address every masqueraded flow must show. Servers there record what they
//! see (tests/src/servers.rs); clients run inside the container's netns (tests/src/probe.rs).
use std::{
    collections::BTreeSet,
    io::{ErrorKind, Write},
    net::{IpAddr, Ipv4Addr, Shutdown, SocketAddrV4, UdpSocket},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use netd_tests::{
    in_netns,
    packet::{ethernet_ipv4, ipv4_udp, Checksum, Ipv4Seen, ICMP_ECHO_REQUEST, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP},
    probe::{
        exchange, link_mac, net_sysctl, ping, send_frame, send_ipv4, set_net_sysctl, set_tx_checksum_offload,
        tcp_connect, tcp_peer, tx_checksum_offload, udp_peer, udp_send, v4, IO_TIMEOUT,
    },
    servers::{FrameRecorder, RawRecorder, StreamEnd, TcpPeerServer, TcpSink, UdpPeerServer},
    tcx_ingress_programs, TestHost, OUTSIDE_ADDR,
};
use nix::sys::signal::Signal;

/// The host's address on its uplink: the source every masqueraded packet must carry.
const UPLINK_ADDR: &str = "198.51.100.2";

fn uplink() -> Ipv4Addr {
    UPLINK_ADDR.parse().unwrap()
}

fn outside() -> Ipv4Addr {
    OUTSIDE_ADDR.parse().unwrap()
}

/// The TC program netd attaches at each uplink's ingress.
const UPLINK_PROGRAM: &str = "netd_up_ingress";

/// How long a path that must be dropped is given to (wrongly) work.
const BLOCKED: Duration = Duration::from_secs(2);

/// Starts a command-less container `name` on `network`; returns its netns.
fn run(host: &TestHost, name: &str, network: &str) -> PathBuf {
    host.ok(&["run", "-d", "--name", name, "--network", network]);
    host.container_netns(name)
}

fn outside_ns(host: &TestHost) -> PathBuf {
    host.netns_path(&host.outside_ns)
}

fn host_ns(host: &TestHost) -> PathBuf {
    host.netns_path(&host.host_ns)
}

fn ip(host: &TestHost, container: &str, network: &str) -> Ipv4Addr {
    host.ip_of(container, network).parse().unwrap()
}

/// What to show when traffic does not do what it should: the drop counters that are not zero,
/// the rest of `netd stats` (flow tables, endpoints) and the daemon log's tail.
fn diagnose(host: &TestHost) -> String {
    let out = host.netd(&["stats", "--format", "json"]);
    let mut stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let drops: Vec<String> = stats["drops"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|d| d["packets"].as_u64().unwrap_or(0) > 0)
        .map(|d| format!("{}@{}={}", d["reason"], d["hook"], d["packets"]))
        .collect();
    if let Some(o) = stats.as_object_mut() {
        o.remove("drops");
    }
    format!(
        "\nnon-zero drops: {drops:?}\nrest of netd stats: {stats} {}\ndaemon log tail:\n{}",
        String::from_utf8_lossy(&out.stderr).trim(),
        host.daemon_log_tail(30)
    )
}

/// Waits (bounded) until `f` returns something; None when `timeout` passed first.
fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The packets a recorder saw for which `pick` holds, waiting (bounded) for at least one.
fn recorded(rec: &RawRecorder, what: &str, pick: impl Fn(&Ipv4Seen) -> bool) -> Vec<Ipv4Seen> {
    wait_for(IO_TIMEOUT, || Some(rec.matching(&pick)).filter(|p| !p.is_empty()))
        .unwrap_or_else(|| panic!("the outside recorded no {what}"))
}

/// 3 networks × 2 containers + one container on two of them; every ordered pair of (container,
/// address of another container) is tried with TCP and ping from inside the source container.
/// Exactly the pairs where the source is on the address's network work.
#[test]
fn isolation_matrix_all_pairs() {
    const PORT: u16 = 7070;
    let host = TestHost::start();
    for net in ["iso-a", "iso-b", "iso-c"] {
        host.ok(&["network", "create", net]);
    }
    let members = [
        ("a1", "iso-a"),
        ("a2", "iso-a"),
        ("b1", "iso-b"),
        ("b2", "iso-b"),
        ("c1", "iso-c"),
        ("c2", "iso-c"),
        ("d1", "iso-a"),
    ];
    for (name, net) in members {
        run(&host, name, net);
    }
    host.ok(&["network", "connect", "iso-b", "d1"]);

    // Every endpoint: (owner, network, address), from what the daemon reports.
    let mut endpoints: Vec<(String, String, Ipv4Addr)> = Vec::new();
    for (name, _) in members {
        let nets = host.json(&["inspect", name])[0]["NetworkSettings"]["Networks"].clone();
        for (net, settings) in nets.as_object().unwrap() {
            let addr = settings["IPAddress"].as_str().unwrap().parse().unwrap();
            endpoints.push((name.to_string(), net.clone(), addr));
        }
    }
    let on: BTreeSet<(String, String)> = endpoints.iter().map(|(c, n, _)| (c.clone(), n.clone())).collect();
    assert_eq!(on.len(), 8, "expected 8 endpoints (d1 on iso-a and iso-b): {endpoints:?}");
    assert!(on.contains(&("d1".into(), "iso-b".into())), "{endpoints:?}");

    let _servers: Vec<TcpPeerServer> =
        members.iter().map(|(name, _)| TcpPeerServer::start(&host.container_netns(name), "0.0.0.0", PORT)).collect();
    // What enters each container's netns at all: a pair that must not work must not deliver
    // even one packet (its failure could otherwise come from the way back alone).
    let arrivals: std::collections::BTreeMap<&str, [RawRecorder; 2]> = members
        .iter()
        .map(|(name, _)| {
            let ns = host.container_netns(name);
            (*name, [RawRecorder::start(&ns, IPPROTO_TCP), RawRecorder::start(&ns, IPPROTO_ICMP)])
        })
        .collect();
    let isolation_before = host.drops("isolation", "endpoint_ingress");

    // All pairs at once: the dropped ones each wait out their timeouts, in parallel.
    let mut probes = Vec::new();
    for (src, _) in members {
        for (owner, net, addr) in &endpoints {
            if owner == src {
                continue;
            }
            let src_ns = host.container_netns(src);
            let (addr, label) = (*addr, format!("{src:>2} -> {owner}@{net} ({addr})"));
            let expected = on.contains(&(src.to_string(), net.clone()));
            // The address the target must see: the source's own on that network (no NAT inside).
            let source_addr = expected.then(|| ip(&host, src, net));
            let (src, owner) = (src.to_string(), owner.clone());
            probes.push(std::thread::spawn(move || {
                let tcp = tcp_peer(&src_ns, None, SocketAddrV4::new(addr, PORT), BLOCKED)
                    .and_then(|(mut stream, seen)| exchange(&mut stream, "hello").map(|()| seen));
                let pinged = ping(&src_ns, addr, BLOCKED + Duration::from_secs(1));
                (label, src, owner, addr, expected, source_addr, tcp.map_err(|e| e.to_string()), pinged)
            }));
        }
    }
    let mut table = String::new();
    let mut wrong = Vec::new();
    for probe in probes {
        let (label, src, owner, addr, expected, source_addr, tcp, pinged) = probe.join().unwrap();
        let yes = |b: bool| if b { "yes" } else { "no" };
        table.push_str(&format!(
            "{label}: expected {}, tcp {}, ping {}\n",
            yes(expected),
            match &tcp {
                Ok(seen) => format!("ok (seen from {seen})"),
                Err(e) => format!("failed ({e})"),
            },
            yes(pinged)
        ));
        let tcp_right = match (&tcp, source_addr) {
            (Ok(seen), Some(addr)) => *seen.ip() == addr,
            (Err(_), None) => true,
            _ => false,
        };
        let src_addrs: Vec<Ipv4Addr> = endpoints.iter().filter(|(c, _, _)| *c == src).map(|e| e.2).collect();
        let entered = arrivals[owner.as_str()]
            .iter()
            .flat_map(|rec| rec.matching(|p| p.dst == addr && src_addrs.contains(&p.src)))
            .count();
        if !expected && entered > 0 {
            table.push_str(&format!("{label}: {entered} packets entered the target's netns\n"));
        }
        if !tcp_right || pinged != expected || (!expected && entered > 0) {
            wrong.push(label);
        }
    }
    assert!(wrong.is_empty(), "pairs that did not behave: {wrong:?}\n{table}{}", diagnose(&host));
    host.wait_drops_above("isolation", "endpoint_ingress", isolation_before, IO_TIMEOUT);
}

/// TCP, UDP and ICMP echo from a container to the outside, and a UDP datagram with a zero
/// checksum. The outside sees the uplink address, never the container's, replies come back,
/// and every checksum the outside receives is right for the rewritten packet.
fn egress_round(offload: bool) {
    let host = TestHost::start();
    host.ok(&["network", "create", "eg"]);
    let c = run(&host, "cx", "eg");
    let c_ip = ip(&host, "cx", "eg");
    let out = outside_ns(&host);
    if !offload {
        set_tx_checksum_offload(&c, "eth0", false);
    }
    assert_eq!(tx_checksum_offload(&c, "eth0"), offload, "TX checksum offload of the container's eth0");

    let wire = FrameRecorder::start(&out);
    let (tcp_rec, udp_rec, icmp_rec) = (
        RawRecorder::start(&out, IPPROTO_TCP),
        RawRecorder::start(&out, IPPROTO_UDP),
        RawRecorder::start(&out, IPPROTO_ICMP),
    );
    let _tcp = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8080);
    let _udp = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8081);
    let zero = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8082);

    let (mut stream, seen) = tcp_peer(&c, None, v4(OUTSIDE_ADDR, 8080), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("TCP from the container to the outside: {e}{}", diagnose(&host)));
    assert_eq!(*seen.ip(), uplink(), "the outside saw the TCP connection from {seen}");
    exchange(&mut stream, "hello outside, from a container")
        .unwrap_or_else(|e| panic!("TCP exchange with the outside: {e}{}", diagnose(&host)));
    stream.shutdown(Shutdown::Both).unwrap();

    let seen = udp_peer(&c, None, v4(OUTSIDE_ADDR, 8081))
        .unwrap_or_else(|| panic!("no UDP answer from the outside{}", diagnose(&host)));
    assert_eq!(*seen.ip(), uplink(), "the outside saw the UDP datagram from {seen}");

    assert!(ping(&c, outside(), IO_TIMEOUT), "no echo reply from the outside{}", diagnose(&host));

    // A UDP datagram without a checksum (0) must keep it: an incrementally "fixed" 0 would be
    // wrong, and the outside would drop it.
    send_ipv4(&c, ipv4_udp(c_ip, outside(), 40999, 8082, b"no checksum", false));
    let peer = wait_for(IO_TIMEOUT, || zero.peers().first().copied())
        .unwrap_or_else(|| panic!("the zero-checksum datagram did not reach the outside's socket{}", diagnose(&host)));
    assert_eq!(peer.ip(), IpAddr::V4(uplink()), "zero-checksum datagram seen from {peer}");
    let zero_seen = recorded(&udp_rec, "zero-checksum datagram", |p| p.ports().is_some_and(|(_, d)| d == 8082));
    for p in &zero_seen {
        assert_eq!((p.src, p.checksum_field()), (uplink(), Some(0)), "zero-checksum datagram as received: {p:?}");
    }

    // What the outside received, packet by packet: from the uplink address, checksums right.
    let acceptable: &[Checksum] = if offload {
        // veth to veth, a CHECKSUM_PARTIAL packet stays partial: its field holds the
        // pseudo-header sum, which must match the rewritten addresses.
        &[Checksum::Full, Checksum::PartialSeed]
    } else {
        &[Checksum::Full]
    };
    let tcp_seen = recorded(&tcp_rec, "TCP packet to port 8080", |p| p.ports().is_some_and(|(_, d)| d == 8080));
    let udp_seen = recorded(&udp_rec, "UDP datagram to port 8081", |p| p.ports().is_some_and(|(_, d)| d == 8081));
    let icmp_seen = recorded(&icmp_rec, "echo request", |p| p.icmp_type() == Some(ICMP_ECHO_REQUEST));
    for (what, packets, allowed) in [
        ("TCP", &tcp_seen, acceptable),
        ("UDP", &udp_seen, acceptable),
        ("ICMP echo", &icmp_seen, &[Checksum::Full][..]),
    ] {
        let kinds: Vec<Checksum> = packets.iter().map(Ipv4Seen::checksum).collect();
        eprintln!("offload {offload}: {what} packets at the outside, checksums {kinds:?}");
        for p in packets {
            assert_eq!(p.src, uplink(), "{what} packet reached the outside from {}: {p:?}", p.src);
            assert!(
                allowed.contains(&p.checksum()),
                "{what} packet reached the outside with checksum {:?} (field {:#06x?}; offload {offload}): {p:?}",
                p.checksum(),
                p.checksum_field()
            );
        }
    }
    for rec in [&tcp_rec, &udp_rec, &icmp_rec] {
        let leaked = rec.matching(|p| p.src == c_ip);
        assert!(leaked.is_empty(), "the container's own address reached the outside: {leaked:?}");
    }
    assert!(!wire.matching(|p| p.src == uplink()).is_empty(), "the outside's frame recorder saw no frame at all");
    let leaked = wire.matching(|p| p.src == c_ip || p.dst == c_ip);
    assert!(leaked.is_empty(), "the container's own address was on the outside wire: {leaked:?}");
}

#[test]
fn egress_tcp_udp_icmp_with_tx_checksum_offload() {
    egress_round(true);
}

#[test]
fn egress_tcp_udp_icmp_without_tx_checksum_offload() {
    egress_round(false);
}

/// While a TCP and a UDP flow are open, `netd stats` shows conntrack and NAT entries, against
/// capacities sized for at least 256K flows.
#[test]
fn egress_flows_show_in_conntrack_and_nat_stats() {
    let host = TestHost::start();
    host.ok(&["network", "create", "ct"]);
    let c = run(&host, "cx", "ct");
    let out = outside_ns(&host);
    let _tcp = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8080);
    let _udp = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8081);
    let (mut stream, _) = tcp_peer(&c, None, v4(OUTSIDE_ADDR, 8080), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("TCP to the outside: {e}{}", diagnose(&host)));
    exchange(&mut stream, "open").unwrap();
    udp_peer(&c, None, v4(OUTSIDE_ADDR, 8081)).unwrap_or_else(|| panic!("no UDP answer{}", diagnose(&host)));

    let tcp = host.table_usage(&["conntrack", "tcp"]);
    let other = host.table_usage(&["conntrack", "other"]);
    let nat = host.table_usage(&["nat"]);
    assert!(tcp.entries > 0, "no TCP conntrack entry while a TCP flow is open: {tcp:?}");
    assert!(other.entries > 0, "no non-TCP conntrack entry after a UDP exchange: {other:?}");
    assert!(nat.entries >= 2, "NAT entries for an open TCP and UDP flow: {nat:?}");
    for (what, t) in [("conntrack tcp", tcp), ("conntrack other", other), ("nat", nat)] {
        assert!(t.capacity >= 256 * 1024, "{what} capacity {} < 256K flows", t.capacity);
    }
    exchange(&mut stream, "still open").unwrap();
}

/// Refusals from the outside come back translated: a TCP RST for a closed port, and the ICMP
/// port unreachable for a UDP datagram (its quoted header translated back, or the container's
/// socket would never learn of it).
#[test]
fn refusals_come_back() {
    let host = TestHost::start();
    host.ok(&["network", "create", "rf"]);
    let c = run(&host, "cx", "rf");
    match tcp_connect(&c, None, v4(OUTSIDE_ADDR, 8096), IO_TIMEOUT) {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!("TCP to a closed outside port: {other:?}, not refused{}", diagnose(&host)),
    }
    let udp = in_netns(&c, || {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        socket.connect(v4(OUTSIDE_ADDR, 8097)).unwrap();
        socket.send(b"anyone?").unwrap();
        let mut buf = [0u8; 64];
        socket.recv(&mut buf)
    });
    match udp {
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        other => panic!("UDP to a closed outside port: {other:?}, not refused (no ICMP error back){}", diagnose(&host)),
    }
}

/// A UDP datagram larger than the MTU leaves the container in fragments. netd either
/// translates them (the outside gets the datagram from the uplink address) or drops them,
/// counted as `fragment`; no fragment ever reaches the outside with the container's address.
#[test]
fn fragments_are_translated_or_counted() {
    let host = TestHost::start();
    host.ok(&["network", "create", "fr"]);
    let c = run(&host, "cx", "fr");
    let c_ip = ip(&host, "cx", "fr");
    let out = outside_ns(&host);
    let wire = FrameRecorder::start(&out);
    let server = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8098);
    let before = host.drops("fragment", "endpoint_ingress");
    in_netns(&c, || {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        let dont: libc::c_int = libc::IP_PMTUDISC_DONT;
        // SAFETY: setsockopt with a valid int option on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                (&dont as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        assert_eq!(rc, 0, "IP_MTU_DISCOVER: {}", std::io::Error::last_os_error());
        socket.send_to(&[0x42u8; 4000], v4(OUTSIDE_ADDR, 8098)).expect("send a 4000-byte datagram");
    });
    match wait_for(Duration::from_secs(3), || server.peers().first().copied()) {
        Some(peer) => {
            eprintln!("fragments were translated");
            assert_eq!(peer.ip(), IpAddr::V4(uplink()), "the reassembled datagram came from {peer}");
        }
        None => {
            host.wait_drops_above("fragment", "endpoint_ingress", before, IO_TIMEOUT);
            eprintln!("fragments were dropped and counted");
        }
    }
    let leaked = wire.matching(|p| p.src == c_ip);
    assert!(leaked.is_empty(), "fragments with the container's address reached the outside: {leaked:?}");
}

/// Egress works from the default `bridge` network (no `--network`) and from a container on
/// two user networks (it leaves by its default route): both show the uplink address.
#[test]
fn egress_from_default_bridge_and_dual_homed_container() {
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "plain"]);
    host.ok(&["network", "create", "left"]);
    host.ok(&["network", "create", "right"]);
    run(&host, "both", "left");
    host.ok(&["network", "connect", "right", "both"]);
    let _tcp = TcpPeerServer::start(&outside_ns(&host), OUTSIDE_ADDR, 8080);
    let _udp = UdpPeerServer::start(&outside_ns(&host), OUTSIDE_ADDR, 8081);
    for name in ["plain", "both"] {
        let ns = host.container_netns(name);
        let (mut s, seen) = tcp_peer(&ns, None, v4(OUTSIDE_ADDR, 8080), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("TCP from {name} to the outside: {e}{}", diagnose(&host)));
        assert_eq!(*seen.ip(), uplink(), "{name}'s connection seen from {seen}");
        exchange(&mut s, name).unwrap();
        let seen = udp_peer(&ns, None, v4(OUTSIDE_ADDR, 8081))
            .unwrap_or_else(|| panic!("no UDP answer to {name}{}", diagnose(&host)));
        assert_eq!(*seen.ip(), uplink(), "{name}'s datagram seen from {seen}");
        assert!(ping(&ns, outside(), IO_TIMEOUT), "no echo reply to {name}{}", diagnose(&host));
    }
}

/// A container that forges its source address (a neighbour's, or the uplink's own) gets
/// nothing out: the packets are dropped as `spoofed_source` before any translation.
#[test]
fn spoofed_sources_never_leave() {
    let host = TestHost::start();
    host.ok(&["network", "create", "sf"]);
    let (liar, _) = (run(&host, "liar", "sf"), run(&host, "neighbour", "sf"));
    let neighbour = ip(&host, "neighbour", "sf");
    let out = outside_ns(&host);
    let wire = FrameRecorder::start(&out);
    let server = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8099);
    let before = host.drops("spoofed_source", "endpoint_ingress");
    for forged in [neighbour, uplink(), Ipv4Addr::new(192, 0, 2, 77)] {
        send_ipv4(&liar, ipv4_udp(forged, outside(), 40000, 8099, b"forged", true));
    }
    host.wait_drops_above("spoofed_source", "endpoint_ingress", before, IO_TIMEOUT);
    // The datagrams went out together: by the time the counter moved, any that passed would
    // be on the outside's wire within a short while.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.peers(), vec![], "forged datagrams reached the outside");
    let arrived = wire.matching(|p| p.proto == IPPROTO_UDP && p.ports().is_some_and(|(_, d)| d == 8099));
    assert!(arrived.is_empty(), "forged datagrams on the outside wire: {arrived:?}");
}

/// Two containers on one network use the same source port towards the same outside server:
/// both flows work, and the server sees two different ports on the uplink address.
#[test]
fn same_source_port_from_two_containers() {
    const P: u16 = 41234;
    let host = TestHost::start();
    host.ok(&["network", "create", "sp"]);
    let (c1, c2) = (run(&host, "c1", "sp"), run(&host, "c2", "sp"));
    let out = outside_ns(&host);
    let _tcp = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8083);
    let _udp = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8084);
    let from_p = Some(v4("0.0.0.0", P));

    let connect = |ns: &Path, who: &str| {
        tcp_peer(ns, from_p, v4(OUTSIDE_ADDR, 8083), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("TCP from {who} (source port {P}): {e}{}", diagnose(&host)))
    };
    let (mut s1, seen1) = connect(&c1, "c1");
    let (mut s2, seen2) = connect(&c2, "c2");
    assert_eq!((*seen1.ip(), *seen2.ip()), (uplink(), uplink()), "sources seen: {seen1}, {seen2}");
    assert_ne!(seen1.port(), seen2.port(), "both flows share one NAT port: {seen1}, {seen2}");
    exchange(&mut s1, "first container").unwrap();
    exchange(&mut s2, "second container").unwrap();
    exchange(&mut s1, "first again").unwrap();

    let u1 = udp_peer(&c1, from_p, v4(OUTSIDE_ADDR, 8084)).unwrap_or_else(|| panic!("no UDP answer to c1"));
    let u2 = udp_peer(&c2, from_p, v4(OUTSIDE_ADDR, 8084)).unwrap_or_else(|| panic!("no UDP answer to c2"));
    assert_eq!((*u1.ip(), *u2.ip()), (uplink(), uplink()), "UDP sources seen: {u1}, {u2}");
    assert_ne!(u1.port(), u2.port(), "both UDP flows share one NAT port: {u1}, {u2}");
}

/// A host socket bound to the uplink address and port P has a connection to an outside server;
/// a container then connects to the same server from source port P. Both work; the
/// container's flow gets another port; the host's connection still works afterwards. The same
/// for a UDP socket of the host.
#[test]
fn host_socket_keeps_its_port() {
    const P: u16 = 42345;
    let host = TestHost::start();
    host.ok(&["network", "create", "hc"]);
    let c = run(&host, "cx", "hc");
    let (out, hns) = (outside_ns(&host), host_ns(&host));
    let _tcp = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8085);
    let _udp = UdpPeerServer::start(&out, OUTSIDE_ADDR, 8086);

    let (mut host_stream, host_seen) = tcp_peer(&hns, Some(v4(UPLINK_ADDR, P)), v4(OUTSIDE_ADDR, 8085), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("host TCP from {UPLINK_ADDR}:{P}: {e}"));
    assert_eq!(host_seen, v4(UPLINK_ADDR, P));
    let (mut c_stream, c_seen) = tcp_peer(&c, Some(v4("0.0.0.0", P)), v4(OUTSIDE_ADDR, 8085), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("container TCP from port {P}: {e}{}", diagnose(&host)));
    assert_eq!(*c_seen.ip(), uplink(), "container flow seen from {c_seen}");
    assert_ne!(c_seen.port(), P, "the container's flow took the port of the host's socket");
    exchange(&mut c_stream, "container").unwrap();
    exchange(&mut host_stream, "host, after the container").unwrap_or_else(|e| panic!("host connection: {e}"));
    exchange(&mut c_stream, "container again").unwrap();

    // UDP: a host socket on 198.51.100.2:P talks to the server before and after the container.
    let host_udp = in_netns(&hns, move || UdpSocket::bind(v4(UPLINK_ADDR, P)).expect("bind host UDP"));
    host_udp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let host_udp_round = |what: &str| {
        host_udp.send_to(b"host", v4(OUTSIDE_ADDR, 8086)).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = host_udp.recv_from(&mut buf).unwrap_or_else(|e| panic!("host UDP answer {what}: {e}"));
        assert_eq!(&buf[..n], format!("{UPLINK_ADDR}:{P}").as_bytes(), "host UDP answer {what}");
    };
    host_udp_round("before the container");
    let u = udp_peer(&c, Some(v4("0.0.0.0", P)), v4(OUTSIDE_ADDR, 8086))
        .unwrap_or_else(|| panic!("no UDP answer to the container{}", diagnose(&host)));
    assert_eq!(*u.ip(), uplink());
    assert_ne!(u.port(), P, "the container's UDP flow took the port of the host's socket");
    host_udp_round("after the container");
}

/// `--internal`: no default route and no Gateway in the container; peers and the gateway
/// address work; a container that adds a default route itself still reaches nothing outside,
/// and the drops are counted.
#[test]
fn internal_network() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--internal", "int"]);
    let (i1, i2) = (run(&host, "i1", "int"), run(&host, "i2", "int"));
    let net = &host.json(&["network", "inspect", "int"])[0];
    assert_eq!(net["Internal"], true);
    let gateway = net["IPAM"]["Config"][0]["Gateway"].as_str().unwrap().to_string();
    assert!(!gateway.is_empty(), "internal network without a gateway address: {net}");
    // Every problem is collected and asserted at the end, so that one failure report says
    // everything that is wrong (the checks do not depend on each other).
    let mut problems = Vec::new();
    let settings = &host.json(&["inspect", "i1"])[0]["NetworkSettings"]["Networks"]["int"];
    if settings["Gateway"] != "" {
        problems.push(format!("inspect shows Gateway {} (Docker: \"\")", settings["Gateway"]));
    }
    let routes = host.ok(&["exec", "i1", "ip", "-4", "route", "show"]);
    if routes.lines().any(|l| l.starts_with("default")) {
        problems.push(format!("the container has a default route: {routes:?}"));
    }

    // Inside the network, and the gateway address (the host), work.
    let i2_ip = ip(&host, "i2", "int");
    let _peer = TcpPeerServer::start(&i2, "0.0.0.0", 8087);
    match tcp_peer(&i1, None, SocketAddrV4::new(i2_ip, 8087), IO_TIMEOUT) {
        Ok((mut s, seen)) => {
            if *seen.ip() != ip(&host, "i1", "int") {
                problems.push(format!("the peer saw i1's connection from {seen}"));
            }
            if let Err(e) = exchange(&mut s, "peer") {
                problems.push(format!("TCP exchange with a peer: {e}"));
            }
        }
        Err(e) => problems.push(format!("TCP to a peer on the internal network: {e}")),
    }
    if !ping(&i1, i2_ip, IO_TIMEOUT) {
        problems.push("no ping reply from a peer".into());
    }
    let gw: Ipv4Addr = gateway.parse().unwrap();
    let _at_host = TcpPeerServer::start(&host_ns(&host), "0.0.0.0", 8088);
    if let Err(e) =
        tcp_peer(&i1, None, SocketAddrV4::new(gw, 8088), IO_TIMEOUT).and_then(|(mut s, _)| exchange(&mut s, "gateway"))
    {
        problems.push(format!("TCP to the gateway address {gw}: {e}"));
    }
    if !ping(&i1, gw, IO_TIMEOUT) {
        problems.push(format!("no ping reply from the gateway {gw}"));
    }

    // A hostile container routes to the outside by itself (`replace`: also when netd wrongly
    // gave it a default route).
    host.ok(&["exec", "i1", "ip", "route", "replace", "default", "via", &gateway]);
    let out = outside_ns(&host);
    let recorders = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP].map(|proto| RawRecorder::start(&out, proto));
    let _server = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8089);
    let before = host.drops("internal_network", "endpoint_ingress");
    if tcp_connect(&i1, None, v4(OUTSIDE_ADDR, 8089), BLOCKED).is_ok() {
        problems.push("the container connected to the outside by TCP".into());
    }
    for _ in 0..3 {
        udp_send(&i1, v4(OUTSIDE_ADDR, 8090), b"let me out");
    }
    if ping(&i1, outside(), BLOCKED) {
        problems.push("the container got a ping reply from the outside".into());
    }
    let counted = wait_for(IO_TIMEOUT, || (host.drops("internal_network", "endpoint_ingress") > before).then_some(()));
    if counted.is_none() {
        problems.push(format!("the drop counter (internal_network, endpoint_ingress) did not move from {before}"));
    }
    for rec in &recorders {
        let arrived: Vec<String> = rec.seen().iter().map(|p| format!("{:?} {} -> {}", p.proto, p.src, p.dst)).collect();
        if !arrived.is_empty() {
            problems.push(format!("packets reached the outside: {arrived:?}"));
        }
    }
    assert!(problems.is_empty(), "internal network:\n- {}{}", problems.join("\n- "), diagnose(&host));
}

/// Nothing from the uplink reaches a container unless published — even when the host
/// forwards (`ip_forward=1`, as on a Docker host) and the outside routes the container subnet
/// to it — and nothing reaches 127.0.0.0/8. Both drops are counted.
#[test]
fn nothing_enters_unasked() {
    let host = TestHost::start();
    host.ok(&["network", "create", "pub"]);
    let t = run(&host, "tx", "pub");
    let t_ip = ip(&host, "tx", "pub");
    let subnet =
        host.json(&["network", "inspect", "pub"])[0]["IPAM"]["Config"][0]["Subnet"].as_str().unwrap().to_string();
    let listener = TcpPeerServer::start(&t, "0.0.0.0", 8091);
    let udp_listener = UdpPeerServer::start(&t, "0.0.0.0", 8092);
    // What reaches the container's netns at all, before its own stack answers: without the
    // uplink's drop, SYNs do arrive here even though the handshake then fails (the container's
    // answers would be masqueraded), so the listener alone would prove nothing.
    let in_container = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP].map(|proto| RawRecorder::start(&t, proto));

    let hns = host_ns(&host);
    assert_eq!(set_net_sysctl(&hns, "ipv4/ip_forward", "1"), "0", "the test host forwarded before the test");
    assert_eq!(host.in_host_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(), "1");
    netd_tests::sh(&["ip", "-n", &host.outside_ns, "route", "add", &subnet, "via", UPLINK_ADDR]);

    let out = outside_ns(&host);
    let before = host.drops("unpublished_ingress", "uplink_ingress");
    let tcp = tcp_connect(&out, None, SocketAddrV4::new(t_ip, 8091), BLOCKED);
    assert!(tcp.is_err(), "the outside connected to an unpublished container port");
    assert!(!ping(&out, t_ip, BLOCKED), "the outside pinged a container");
    assert!(udp_peer(&out, None, SocketAddrV4::new(t_ip, 8092)).is_none(), "the outside reached a container by UDP");
    host.wait_drops_above("unpublished_ingress", "uplink_ingress", before, IO_TIMEOUT);
    assert_eq!(listener.peers(), vec![], "connections reached the container");
    assert_eq!(udp_listener.peers(), vec![], "datagrams reached the container");
    for rec in &in_container {
        let arrived = rec.matching(|p| p.src == outside());
        assert!(arrived.is_empty(), "packets from the outside reached the container: {arrived:?}");
    }

    // A frame for the host's MAC with destination 127.0.0.1.
    let before = host.drops("loopback_ingress", "uplink_ingress");
    let frame = ethernet_ipv4(
        link_mac(&host.host_ns, "eth0"),
        link_mac(&host.outside_ns, "eth0"),
        &ipv4_udp(outside(), Ipv4Addr::LOCALHOST, 40000, 9999, b"to loopback", true),
    );
    for _ in 0..3 {
        send_frame(&out, "eth0", frame.clone());
    }
    host.wait_drops_above("loopback_ingress", "uplink_ingress", before, IO_TIMEOUT);
}

/// A container streams to an outside sink; the daemon is killed with SIGKILL mid-stream and
/// restarted. The stream never stalls for good nor resets, and ends cleanly with every byte
/// delivered; new egress flows work after the restart.
#[test]
fn kill_9_during_egress_stream() {
    /// How much the sink must receive in each phase: more than any socket buffer could hold,
    /// so that it went through the datapath during the phase.
    const PHASE_BYTES: u64 = 2 << 20;
    /// Bound of each phase (a working path moves PHASE_BYTES in well under a second).
    const PHASE_BOUND: Duration = Duration::from_secs(15);
    let mut host = TestHost::start();
    host.ok(&["network", "create", "st"]);
    let s = run(&host, "sx", "st");
    let out = outside_ns(&host);
    let sink = TcpSink::start(&out, OUTSIDE_ADDR, 8093);
    let stream = tcp_connect(&s, None, v4(OUTSIDE_ADDR, 8093), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("TCP to the outside sink: {e}{}", diagnose(&host)));

    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let failure: Arc<Mutex<Option<String>>> = Arc::default();
    let writer = {
        let (stop, written, failure) = (stop.clone(), written.clone(), failure.clone());
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let chunk = [0x5au8; 16 * 1024];
            let deadline = Instant::now() + Duration::from_secs(240);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                // Each write is bounded by the stream's write timeout (IO_TIMEOUT).
                if let Err(e) = stream.write_all(&chunk) {
                    *failure.lock().unwrap() = Some(e.to_string());
                    return;
                }
                written.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let phase = |host: &TestHost, what: &str| {
        let from = sink.received();
        let moved = wait_for(PHASE_BOUND, || {
            if let Some(e) = failure.lock().unwrap().clone() {
                panic!("the stream failed {what}: {e}{}", diagnose(host));
            }
            (sink.received() >= from + PHASE_BYTES).then_some(())
        });
        assert!(
            moved.is_some(),
            "the stream stalled {what}: {} bytes received in {PHASE_BOUND:?}; sink ends {:?}{}",
            sink.received() - from,
            sink.ends(),
            diagnose(host)
        );
        assert_eq!(sink.ends(), vec![], "the sink's connection ended {what}");
    };

    phase(&host, "before the kill");
    let hns = host_ns(&host);
    let uplink_programs = || tcx_ingress_programs(&hns, "eth0");
    assert_eq!(uplink_programs(), [UPLINK_PROGRAM], "programs at the uplink's ingress before the kill");
    host.stop_daemon(Signal::SIGKILL);
    phase(&host, "with the daemon dead");
    std::thread::sleep(Duration::from_secs(1));
    phase(&host, "with the daemon dead, a second later");
    host.start_daemon();
    phase(&host, "after the restart");
    // Across the restarted daemon's first uplink refresh and garbage collection.
    std::thread::sleep(Duration::from_secs(3));
    phase(&host, "seconds after the restart");
    // Re-adopted, not attached a second time.
    assert_eq!(uplink_programs(), [UPLINK_PROGRAM], "programs at the uplink's ingress after the restart");

    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!(*failure.lock().unwrap(), None, "the stream failed at the end");
    stream.shutdown(Shutdown::Write).unwrap();
    let total = written.load(Ordering::SeqCst);
    let ends = wait_for(PHASE_BOUND, || Some(sink.ends()).filter(|e| !e.is_empty()))
        .unwrap_or_else(|| panic!("the sink never saw the stream end{}", diagnose(&host)));
    assert_eq!(ends, vec![StreamEnd::Eof(total)], "how the stream ended (bytes written: {total})");

    let _fresh = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8094);
    let (mut fresh, seen) = tcp_peer(&s, None, v4(OUTSIDE_ADDR, 8094), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("new egress flow after the restart: {e}{}", diagnose(&host)));
    assert_eq!(*seen.ip(), uplink());
    exchange(&mut fresh, "after restart").unwrap();
}

/// Egress works and the host is as it was: no bridge device in the test host, its
/// `ip_forward` still 0, the root netns' `ip_forward` unchanged, and no iptables or nftables
/// rule in the test host.
#[test]
fn host_untouched() {
    // The test process's own netns (its threads never setns; in_netns uses fresh ones).
    let root_forward =
        || std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("read ip_forward").trim().to_string();
    let root_before = root_forward();
    let host = TestHost::start();
    host.ok(&["network", "create", "ht"]);
    let c = run(&host, "cx", "ht");
    let out = outside_ns(&host);
    let _tcp = TcpPeerServer::start(&out, OUTSIDE_ADDR, 8095);
    let (mut s, seen) = tcp_peer(&c, None, v4(OUTSIDE_ADDR, 8095), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("egress TCP: {e}{}", diagnose(&host)));
    assert_eq!(*seen.ip(), uplink());
    exchange(&mut s, "egress works").unwrap();
    assert!(ping(&c, outside(), IO_TIMEOUT), "egress ping{}", diagnose(&host));

    let bridges = host.in_host_ok(&["ip", "-j", "link", "show", "type", "bridge"]);
    let bridges: serde_json::Value = serde_json::from_str(bridges.trim()).unwrap_or(serde_json::json!([]));
    assert_eq!(bridges, serde_json::json!([]), "bridge devices in the test host");

    let hns = host_ns(&host);
    assert_eq!(net_sysctl(&hns, "ipv4/ip_forward"), "0", "the test host's net.ipv4.ip_forward");
    assert_eq!(net_sysctl(&hns, "ipv4/conf/all/forwarding"), "0", "the test host's conf.all.forwarding");

    // iptables-legacy: tables come into being in a netns when first used; none may exist.
    for file in ["ip_tables_names", "ip6_tables_names", "arp_tables_names"] {
        let out = host.in_host(&["cat", &format!("/proc/net/{file}")]);
        // An absent file means the module is not loaded: no legacy table anywhere.
        if out.status.success() {
            let names = String::from_utf8_lossy(&out.stdout);
            assert_eq!(names.trim(), "", "iptables-legacy tables in the test host ({file})");
        }
    }
    // nftables (iptables-nft too): the whole ruleset must be empty.
    let nft = host.in_host(&["nft", "list", "ruleset"]);
    assert!(
        nft.status.success(),
        "cannot check nftables (`nft list ruleset` in the test host): {}",
        String::from_utf8_lossy(&nft.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&nft.stdout).trim(), "", "nftables rules in the test host");

    assert_eq!(root_forward(), root_before, "the root netns' net.ipv4.ip_forward changed");
}
