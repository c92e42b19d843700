//! Several uplinks (issue: egress): the host's routes pick the uplink a container's flow
//! leaves by, and the flow is masqueraded to that uplink's address; an address change is
//! picked up; the host's own traffic through an uplink is untouched by netd's program.
use std::{
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use netd_tests::{
    in_netns,
    probe::{tcp_connect, tcp_peer, v4, IO_TIMEOUT},
    servers::{StreamEnd, TcpPeerServer, TcpSink},
    tcx_ingress_programs, DaemonOptions, TestHost, OUTSIDE_ADDR, SECOND_OUTSIDE_ADDR,
};

/// The source address a [`TcpPeerServer`] at `dst` sees a connection from the netns `client`
/// come from, or the error that kept it from answering.
fn source_seen(client: &Path, dst: &str, port: u16, timeout: Duration) -> std::io::Result<String> {
    tcp_peer(client, None, v4(dst, port), timeout).map(|(_, peer)| peer.ip().to_string())
}

#[test]
fn each_flow_is_masqueraded_to_the_uplink_its_route_takes() {
    let host = TestHost::start_with(DaemonOptions { second_uplink: true, ..Default::default() });
    let host_ns = host.netns_path(&host.host_ns);
    for uplink in ["eth0", "eth1"] {
        assert_eq!(tcx_ingress_programs(&host_ns, uplink), ["netd_up_ingress"], "on {uplink}");
    }
    host.ok(&["network", "create", "up-net"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "up-net", "--", "sleep", "600"]);
    let c1 = host.container_netns("c1");
    let _server1 = TcpPeerServer::start(&host.netns_path(&host.outside_ns), OUTSIDE_ADDR, 7501);
    let _server2 = TcpPeerServer::start(&host.netns_path(&host.second_outside_ns()), SECOND_OUTSIDE_ADDR, 7502);
    let seen = |client: &Path, dst: &str, port: u16| {
        source_seen(client, dst, port, IO_TIMEOUT).unwrap_or_else(|e| panic!("no answer from {dst}:{port}: {e}"))
    };

    // The default route leaves by eth0, the connected 203.0.113.0/24 by eth1.
    assert_eq!(seen(&c1, OUTSIDE_ADDR, 7501), "198.51.100.2");
    assert_eq!(seen(&c1, SECOND_OUTSIDE_ADDR, 7502), "203.0.113.2");

    // The host's own connections through both uplinks pass the programs untouched.
    assert_eq!(seen(&host_ns, OUTSIDE_ADDR, 7501), "198.51.100.2");
    assert_eq!(seen(&host_ns, SECOND_OUTSIDE_ADDR, 7502), "203.0.113.2");

    // A new primary address on eth1 becomes its masquerade address for new flows. Until the
    // daemon has seen it, connections fail (replies go to the address that is gone).
    host.in_host_ok(&["ip", "addr", "del", "203.0.113.2/24", "dev", "eth1"]);
    host.in_host_ok(&["ip", "addr", "add", "203.0.113.7/24", "dev", "eth1"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let seen = loop {
        let seen = source_seen(&c1, SECOND_OUTSIDE_ADDR, 7502, Duration::from_secs(2));
        if seen.as_ref().is_ok_and(|s| s == "203.0.113.7") || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(seen.ok().as_deref(), Some("203.0.113.7"), "the new uplink address was not picked up");
}

/// An uplink with a smaller MTU than the containers' 1500: a TCP stream with DF learns the
/// path MTU from the host's "fragmentation needed" (as through docker0) instead of vanishing
/// in a black hole; a datagram without DF that does not fit is dropped and counted, never
/// sent on untranslated.
#[test]
fn a_smaller_uplink_mtu_is_discovered_not_a_black_hole() {
    let host = TestHost::start();
    host.in_host_ok(&["ip", "link", "set", "eth0", "mtu", "1400"]);
    netd_tests::sh(&["ip", "-n", &host.outside_ns, "link", "set", "eth0", "mtu", "1400"]);
    host.ok(&["network", "create", "mtu-net"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "mtu-net", "--", "sleep", "600"]);
    let c1 = host.container_netns("c1");
    let out = host.netns_path(&host.outside_ns);

    // First (before the container has learnt the path MTU, which it would then fragment to):
    // a 1450-byte datagram with DF off cannot be sent whole, and netd does not fragment.
    let before = host.drops("mtu_exceeded", "endpoint_ingress");
    in_netns(&c1, || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let dont = libc::IP_PMTUDISC_DONT;
        // SAFETY: setsockopt with a valid int option on an open socket.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                &dont as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "IP_MTU_DISCOVER");
        socket.send_to(&[1u8; 1450 - 28], (OUTSIDE_ADDR, 7602)).unwrap();
    });
    assert_eq!(host.wait_drops_above("mtu_exceeded", "endpoint_ingress", before, Duration::from_secs(5)), before + 1);

    // 1 MiB: far more than fits before the container's TCP has learnt the smaller MTU.
    let sink = TcpSink::start(&out, OUTSIDE_ADDR, 7601);
    let mut stream = tcp_connect(&c1, None, v4(OUTSIDE_ADDR, 7601), IO_TIMEOUT).expect("connect");
    stream.write_all(&vec![7u8; 1 << 20]).expect("send");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.ends().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sink.ends(), [StreamEnd::Eof(1 << 20)], "the stream did not get through");
}
