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
