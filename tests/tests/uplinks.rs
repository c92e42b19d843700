//! Several uplinks (issue: egress): the host's routes pick the uplink a container's flow
//! leaves by, and the flow is masqueraded to that uplink's address; an address change is
//! picked up; the host's own traffic through an uplink is untouched by netd's program.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use netd_tests::{in_netns, tcx_ingress_programs, DaemonOptions, TestHost, OUTSIDE_ADDR, SECOND_OUTSIDE_ADDR};

/// Connects from the netns `client` to `addr:port`, served in the netns `server`, which
/// answers with the source address it saw.
fn source_seen(server: &Path, client: &Path, addr: &str, port: u16) -> String {
    try_source_seen(server, client, addr, port).unwrap_or_else(|| panic!("no connection to {addr}:{port}"))
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
    let (out1, out2) = (host.netns_path(&host.outside_ns), host.netns_path(&host.second_outside_ns()));

    // The default route leaves by eth0, the connected 203.0.113.0/24 by eth1.
    assert_eq!(source_seen(&out1, &c1, OUTSIDE_ADDR, 7501), "198.51.100.2");
    assert_eq!(source_seen(&out2, &c1, SECOND_OUTSIDE_ADDR, 7502), "203.0.113.2");

    // The host's own connections through both uplinks pass the programs untouched.
    assert_eq!(source_seen(&out1, &host_ns, OUTSIDE_ADDR, 7503), "198.51.100.2");
    assert_eq!(source_seen(&out2, &host_ns, SECOND_OUTSIDE_ADDR, 7504), "203.0.113.2");

    // A new primary address on eth1 becomes its masquerade address for new flows.
    host.in_host_ok(&["ip", "addr", "del", "203.0.113.2/24", "dev", "eth1"]);
    host.in_host_ok(&["ip", "addr", "add", "203.0.113.7/24", "dev", "eth1"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut port = 7510;
    let seen = loop {
        let seen = try_source_seen(&out2, &c1, SECOND_OUTSIDE_ADDR, port);
        if seen.as_deref() == Some("203.0.113.7") || Instant::now() > deadline {
            break seen;
        }
        port += 1;
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(seen.as_deref(), Some("203.0.113.7"), "the new uplink address was not picked up");
}

/// `source_seen`, or `None` when no connection is made (after an address change the old
/// address is gone, so replies to it go nowhere). Bounded by timeouts.
fn try_source_seen(server: &Path, client: &Path, addr: &str, port: u16) -> Option<String> {
    let bind = format!("{addr}:{port}");
    let listener = in_netns(server, move || TcpListener::bind(bind).expect("bind"));
    listener.set_nonblocking(true).unwrap();
    let target = format!("{addr}:{port}").parse().unwrap();
    let client = in_netns(client, move || {
        let conn = TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Some(conn)
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    let (mut conn, peer) = loop {
        match listener.accept() {
            Ok(accepted) => break accepted,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return None,
        }
    };
    conn.write_all(peer.ip().to_string().as_bytes()).ok()?;
    drop(conn);
    let mut seen = String::new();
    client?.read_to_string(&mut seen).ok()?;
    Some(seen)
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
    let listener = in_netns(&out, || TcpListener::bind((OUTSIDE_ADDR, 7601)).expect("bind"));
    let sink = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).map(|_| got.len())
    });
    let sent = in_netns(&c1, || {
        let target = format!("{OUTSIDE_ADDR}:7601").parse().unwrap();
        let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(5)).expect("connect");
        conn.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        conn.write_all(&vec![7u8; 1 << 20]).map(|()| 1 << 20)
    });
    assert_eq!(sent.expect("send"), 1 << 20);
    assert_eq!(sink.join().unwrap().expect("receive"), 1 << 20, "the stream did not get through");
}
