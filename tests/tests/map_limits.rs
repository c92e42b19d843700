//! Map capacities (issue #13): the daemon's flags size the datapath's maps; a command that
//! would exceed the endpoint or published-port maps is refused up front and changes nothing;
//! a full conntrack table makes room by LRU and established flows that carry traffic go on;
//! a map pinned with another size refuses the start with a clear line; bad values are refused.
use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream},
    time::Duration,
};

use netd_tests::{flows::LongFlow, in_netns, DaemonOptions, TestHost, OUTSIDE_ADDR};

fn host_with(daemon_args: &'static [&'static str]) -> TestHost {
    TestHost::start_with(DaemonOptions { daemon_args, ..Default::default() })
}

#[test]
fn endpoints_beyond_max_endpoints_are_refused_and_fit_again_after_rm() {
    let host = host_with(&["--max-endpoints", "16"]);
    host.ok(&["network", "create", "lim-a"]);
    host.ok(&["network", "create", "lim-b"]);
    for i in 0..15 {
        host.ok(&["run", "-d", "--name", &format!("ep{i}"), "--network", "lim-a"]);
    }
    let full = "netd's datapath holds at most 16 endpoints (netd daemon --max-endpoints)";
    // One left: a container on two networks needs two.
    host.ok(&["run", "-d", "--name", "nobody", "--network", "none"]);
    host.ok(&["network", "connect", "lim-b", "ep0"]);
    host.fails_cleanly(
        &["run", "-d", "--name", "ep16", "--network", "lim-a"],
        &format!("netd: Error response from daemon: {full}."),
    );
    host.fails_cleanly(&["network", "connect", "lim-b", "ep1"], &format!("Error response from daemon: {full}"));
    // Containers without an endpoint still run.
    host.ok(&["run", "-d", "--name", "nobody2", "--network", "none"]);
    host.ok(&["rm", "-f", "ep2"]);
    host.ok(&["network", "connect", "lim-b", "ep1"]);
    let stats = host.json(&["stats", "--format", "json"]);
    assert!(stats.is_object(), "{stats}");
}

#[test]
fn published_ports_beyond_max_published_ports_are_refused() {
    let host = host_with(&["--max-published-ports", "16"]);
    host.ok(&["network", "create", "lim-p"]);
    host.ok(&["run", "-d", "--name", "p1", "--network", "lim-p", "-p", "9000-9009:9000-9009"]);
    let full = "netd's datapath holds at most 16 published ports (netd daemon --max-published-ports)";
    host.fails_cleanly(
        &["run", "-d", "--name", "p2", "--network", "lim-p", "-p", "9100-9106:9100-9106"],
        &format!("netd: Error response from daemon: {full}."),
    );
    host.ok(&["run", "-d", "--name", "p2", "--network", "lim-p", "-p", "9100-9105:9100-9105"]);
    host.fails_cleanly(
        &["run", "-d", "--name", "p3", "--network", "lim-p", "-p", "9200:9200/udp"],
        &format!("netd: Error response from daemon: {full}."),
    );
    host.ok(&["rm", "-f", "p1"]);
    host.ok(&["run", "-d", "--name", "p3", "--network", "lim-p", "-p", "9200:9200/udp"]);
    assert_eq!(host.ok(&["port", "p3"]).trim(), "9200/udp -> 0.0.0.0:9200");
}

/// Short TCP connections from `client` to the outside's `port`, each closed at once.
fn short_flows(client: &std::path::Path, target: SocketAddrV4, count: usize) -> usize {
    in_netns(client, move || {
        (0..count)
            .filter(|_| {
                TcpStream::connect_timeout(&target.into(), Duration::from_secs(5))
                    .and_then(|mut s| {
                        s.set_read_timeout(Some(Duration::from_secs(5)))?;
                        s.write_all(b"x")?;
                        let mut buf = [0u8; 1];
                        s.read_exact(&mut buf)
                    })
                    .is_ok()
            })
            .count()
    })
}

#[test]
fn a_full_conntrack_table_makes_room_by_lru_and_live_flows_go_on() {
    const CAPACITY: u64 = 64;
    const SHORT: usize = 300;
    let host = host_with(&["--conntrack-entries", "64"]);
    host.ok(&["network", "create", "lim-ct"]);
    host.ok(&["run", "-d", "--name", "ct1", "--network", "lim-ct"]);
    let (ns, outside) = (host.container_netns("ct1"), host.netns_path(&host.outside_ns));
    let outside_addr: Ipv4Addr = OUTSIDE_ADDR.parse().unwrap();
    let long = LongFlow::start("ct1→outside", &outside, 7100, &ns, SocketAddrV4::new(outside_addr, 7100));
    long.assert_flowing(5);
    // A server for the short flows: answers one byte per connection, bounded in count.
    let listener = in_netns(&outside, || TcpListener::bind(("0.0.0.0", 7101)).unwrap());
    let server = std::thread::spawn(move || {
        for conn in listener.incoming().take(SHORT) {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 1];
            if conn.read_exact(&mut buf).is_ok() {
                let _ = conn.write_all(&buf);
            }
        }
    });
    let done = short_flows(&ns, SocketAddrV4::new(outside_addr, 7101), SHORT);
    server.join().unwrap();
    assert_eq!(done, SHORT, "every new flow is tracked, the table full or not");
    let stats = host.json(&["stats", "--format", "json"]);
    let tcp = &stats["conntrack"]["tcp"];
    assert_eq!(tcp["capacity"], CAPACITY, "{stats}");
    assert!(tcp["entries"].as_u64().unwrap() <= CAPACITY, "{stats}");
    // The established flow kept its entry: the same connection carries on.
    long.assert_flowing(10);
    long.assert_unbroken();
}

/// `netd daemon` with `args` on `host`'s own dirs (its daemon is down).
fn daemon_once(host: &TestHost, args: &[&str]) -> std::process::Output {
    host.daemon_expected_to_refuse(&host.dir.join("state"), &host.run_dir(), &host.bpffs, args)
}

#[test]
fn a_map_pinned_with_another_size_refuses_the_start_and_changes_nothing() {
    let mut host = host_with(&[]);
    host.ok(&["network", "create", "lim-r"]);
    host.ok(&["run", "-d", "--name", "r1", "--network", "lim-r"]);
    host.stop_daemon(nix::sys::signal::Signal::SIGTERM);
    let out = daemon_once(&host, &["--max-endpoints", "1024"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "map NETD_EP_V2 is pinned with 65536 entries but --max-endpoints asks for 1024: start with \
             --max-endpoints 65536, or run `netd system reset`"
        ),
        "{stderr}"
    );
    // The same daemon comes back with its container and its network.
    host.start_daemon();
    assert_eq!(host.ok(&["ps", "--format", "{{.Names}}"]).trim(), "r1");
    assert!(host.ip_of("r1", "lim-r").starts_with("172."));
}

#[test]
fn capacities_out_of_range_are_refused() {
    let mut host = host_with(&[]);
    host.stop_daemon(nix::sys::signal::Signal::SIGTERM);
    for (flag, value, why) in [
        ("--max-endpoints", "0", "0 is not in 16..=16777216"),
        ("--conntrack-entries", "99999999999", "99999999999 is not in 16..=16777216"),
        ("--nat-entries", "x", "invalid digit found in string"),
    ] {
        let out = daemon_once(&host, &[flag, value]);
        assert_eq!(out.status.code(), Some(125), "{flag} {value}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("invalid argument \"{value}\" for \"{flag}\" flag: {why}\nSee 'netd daemon --help'.\n")
        );
    }
}
