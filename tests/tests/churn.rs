//! Churn (issue #13): cycles of `network create` → `run -d` two containers (one publishing a
//! port) → TCP through the published port, container → container and container → outside
//! (masquerade) → `rm -f` both → `network rm` leave nothing behind. Checked against the state
//! before the first cycle: the host netns' links, addresses, routes and reserved ports, netns
//! mounts, bpffs pins and the entries of every pinned map (conntrack and NAT included: a
//! removed endpoint's flows are purged at once, since its address is the next cycle's); and
//! against the state after a warm-up: the daemon's fds, the BPF programs, maps and links it
//! holds, and its RSS within [`RSS_GROWTH_BOUND_KIB`].
//!
//! `NETD_CHURN_CYCLES` sets the number of cycles (default [`DEFAULT_CYCLES`];
//! `cargo xtask soak` runs 500).
use std::net::{Ipv4Addr, SocketAddrV4};

use netd_tests::{
    agreement::assert_store_and_kernel_agree,
    flows::echo_once,
    footprint::{daemon_rss_kib, flows_naming, DaemonFootprint, KernelFootprint},
    TestHost, OUTSIDE_ADDR,
};

const DEFAULT_CYCLES: usize = 100;
/// Cycles before the daemon's own footprint is taken as the baseline: the first ones grow
/// caches and allocator arenas once.
const WARM_UP: usize = 10;
/// How much the daemon's RSS may grow between the end of the warm-up and the last cycle.
/// Measured: +128 KiB over 20 cycles, +316 KiB over 490 (allocator noise, flattening out).
/// The bound is about five times that; a leak of 16 KiB a cycle (a container record with its
/// endpoint and ports, a buffer per connection) exceeds it within the default cycles, and of
/// 3 KiB a cycle within the soak's 500.
const RSS_GROWTH_BOUND_KIB: u64 = 1536;
/// How often (in cycles) the whole kernel footprint is compared (conntrack and NAT are
/// checked after every cycle).
const FOOTPRINT_EVERY: usize = 10;
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const PUBLISHED: u16 = 8080;

fn cycles() -> usize {
    match std::env::var("NETD_CHURN_CYCLES") {
        Ok(n) => n.parse().unwrap_or_else(|_| panic!("NETD_CHURN_CYCLES={n}: not a number")),
        Err(_) => DEFAULT_CYCLES,
    }
}

#[test]
fn churn_cycles_leave_nothing_behind() {
    let host = TestHost::start();
    let marker = format!("600.{}", std::process::id());
    let pristine = KernelFootprint::of(&host);
    let cycles = cycles();
    assert!(cycles > WARM_UP, "NETD_CHURN_CYCLES={cycles}: more than the {WARM_UP} warm-up cycles needed");
    let mut warm = None;
    let started = std::time::Instant::now();
    for cycle in 0..cycles {
        let addrs = one_cycle(&host, cycle, &marker);
        let left = flows_naming(&host, &addrs);
        assert!(left.is_empty(), "cycle {cycle}: flows of removed endpoints {addrs:?} left:\n{}", left.join("\n"));
        if (cycle + 1) % FOOTPRINT_EVERY == 0 {
            assert_eq!(KernelFootprint::of(&host), pristine, "cycle {cycle}: kernel objects left behind");
        }
        if cycle + 1 == WARM_UP {
            warm = Some((DaemonFootprint::of(&host), daemon_rss_kib(&host)));
        }
    }
    assert_eq!(KernelFootprint::of(&host), pristine, "kernel objects left behind after {cycles} cycles");
    let (warm_daemon, warm_rss) = warm.unwrap();
    assert_eq!(DaemonFootprint::of(&host), warm_daemon, "the daemon's fds or BPF objects changed after the warm-up");
    let rss = daemon_rss_kib(&host);
    println!(
        "churn: {cycles} cycles in {:?}; daemon RSS {warm_rss} KiB after {WARM_UP}, {rss} KiB after {cycles}",
        started.elapsed()
    );
    assert!(
        rss <= warm_rss + RSS_GROWTH_BOUND_KIB,
        "daemon RSS grew from {warm_rss} KiB to {rss} KiB over {} cycles",
        cycles - WARM_UP
    );
    assert_store_and_kernel_agree(&host, &marker);
    assert!(host.ok(&["ps", "-aq"]).is_empty() && host.ok(&["network", "ls", "-q", "--filter", "name=ch-"]).is_empty());
}

/// One cycle; returns the addresses its containers had.
fn one_cycle(host: &TestHost, cycle: usize, marker: &str) -> Vec<Ipv4Addr> {
    let (net, a, b) = (format!("ch-{cycle}"), format!("ch-a{cycle}"), format!("ch-b{cycle}"));
    host.ok(&["network", "create", &net]);
    let publish = format!("{PUBLISHED}:80");
    host.ok(&["run", "-d", "--name", &a, "--network", &net, "-p", &publish, "--", "sleep", marker]);
    host.ok(&["run", "-d", "--name", &b, "--network", &net, "--", "sleep", marker]);
    let ip_a: Ipv4Addr = host.ip_of(&a, &net).parse().unwrap();
    let ip_b: Ipv4Addr = host.ip_of(&b, &net).parse().unwrap();
    let (ns_a, ns_b) = (host.container_netns(&a), host.container_netns(&b));
    let outside = host.netns_path(&host.outside_ns);
    let outside_addr: Ipv4Addr = OUTSIDE_ADDR.parse().unwrap();
    let message = format!("cycle {cycle}");
    let via_port = echo_once(&ns_a, 80, &outside, SocketAddrV4::new(HOST_ADDR, PUBLISHED), &message);
    assert_eq!(via_port, message, "cycle {cycle}: through the published port");
    let direct = echo_once(&ns_a, 81, &ns_b, SocketAddrV4::new(ip_a, 81), &message);
    assert_eq!(direct, message, "cycle {cycle}: container to container");
    let out = echo_once(&outside, 7000, &ns_b, SocketAddrV4::new(outside_addr, 7000), &message);
    assert_eq!(out, message, "cycle {cycle}: container to outside");
    host.ok(&["rm", "-f", &a, &b]);
    host.ok(&["network", "rm", &net]);
    vec![ip_a, ip_b]
}
