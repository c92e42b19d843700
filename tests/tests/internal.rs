//! `--internal` networks (issue 10 item 5): Docker sets no gateway on an internal network's
//! endpoint, so the container gets no default route through it and `inspect` shows no Gateway
//! for it; traffic inside the network and to the gateway address still works, and the
//! datapath drops whatever an internal endpoint sends outside (`internal_network`), also after
//! a restart. A container on an internal and a normal network leaves through the normal one.
use std::{process::Output, time::Duration};

use netd_cmd::Limit;
use netd_tests::{tcp_exchange, TestHost, OUTSIDE_ADDR};
use serde_json::Value;

const LIMIT: Limit = Limit::new(Duration::from_secs(60));

/// Runs `cmd` inside the container's netns (nsenter on its bind-mounted netns).
fn in_container(host: &TestHost, name: &str, cmd: &[&str]) -> Output {
    let mut command = netd_cmd::in_netns(&host.container_netns(name), cmd[0]);
    command.args(&cmd[1..]);
    netd_cmd::output(&mut command, LIMIT).unwrap_or_else(|e| panic!("{cmd:?} in {name}: {e}"))
}

fn in_container_ok(host: &TestHost, name: &str, cmd: &[&str]) -> String {
    let out = in_container(host, name, cmd);
    assert!(out.status.success(), "{cmd:?} in {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The container's IPv4 default routes, as `ip -4 route show default` prints them without
/// the protocol (`default via 10.90.0.1 dev eth1`), one per line.
fn default_routes(host: &TestHost, name: &str) -> String {
    let out = in_container_ok(host, name, &["ip", "-4", "route", "show", "default"]);
    let routes: Vec<String> =
        out.lines().map(|l| l.split(" proto ").next().unwrap().trim().to_string()).filter(|l| !l.is_empty()).collect();
    routes.join("\n")
}

fn ping(host: &TestHost, name: &str, addr: &str) -> bool {
    in_container(host, name, &["ping", "-c", "1", "-W", "2", addr]).status.success()
}

/// Packets the datapath dropped as `internal_network` at the endpoint ingress.
fn internal_drops(host: &TestHost) -> u64 {
    let stats = host.json(&["stats", "--format", "json"]);
    let drops = stats["drops"].as_array().expect("drops");
    let counter = drops
        .iter()
        .find(|d| d["reason"] == "internal_network" && d["hook"] == "endpoint_ingress")
        .unwrap_or_else(|| panic!("no internal_network counter in {stats}"));
    counter["packets"].as_u64().unwrap()
}

fn gateway_in_inspect(host: &TestHost, container: &str, network: &str) -> Value {
    host.json(&["inspect", container])[0]["NetworkSettings"]["Networks"][network]["Gateway"].clone()
}

#[test]
fn an_internal_network_has_no_default_route_but_peers_and_the_gateway_answer() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "--internal", "--subnet", "10.88.0.0/24", "sealed"]);
    host.ok(&["run", "-d", "--name", "a1", "--network", "sealed"]);
    host.ok(&["run", "-d", "--name", "b1", "--network", "sealed"]);
    let (ip_a, ip_b) = (host.ip_of("a1", "sealed"), host.ip_of("b1", "sealed"));
    let gateway = "10.88.0.1";

    // No default route: only the network's own connected route.
    assert_eq!(default_routes(&host, "a1"), "");
    let routes = in_container_ok(&host, "a1", &["ip", "-4", "route", "show"]);
    assert!(routes.starts_with("10.88.0.0/24 dev eth0"), "{routes}");
    assert_eq!(routes.lines().count(), 1, "{routes}");
    // inspect: no gateway on the endpoint; network inspect keeps the pool's gateway.
    assert_eq!(gateway_in_inspect(&host, "a1", "sealed"), "");
    let network = host.json(&["network", "inspect", "sealed"]);
    assert_eq!(network[0]["Internal"], true);
    assert_eq!(network[0]["IPAM"]["Config"][0]["Gateway"], gateway);

    // Peers and the gateway address (the host) answer: ICMP and TCP.
    assert!(ping(&host, "a1", &ip_b), "a cannot ping its peer");
    assert!(ping(&host, "a1", gateway), "a cannot ping the gateway address");
    let (ns_a, ns_b) = (host.container_netns("a1"), host.container_netns("b1"));
    assert_eq!(tcp_exchange(&ns_b, &ns_a, &ip_b, 7101, "to b"), "TO B");
    assert_eq!(tcp_exchange(&ns_a, &ns_b, &ip_a, 7102, "to a"), "TO A");
    let host_ns = host.netns_path(&host.host_ns);
    assert_eq!(tcp_exchange(&host_ns, &ns_a, gateway, 7103, "to the host"), "TO THE HOST");

    // Nothing gets out: without a route the kernel refuses at once; with a default route
    // added by hand the datapath drops the packets and counts them.
    assert!(!ping(&host, "a1", OUTSIDE_ADDR));
    in_container_ok(&host, "a1", &["ip", "route", "add", "default", "via", gateway]);
    let before = internal_drops(&host);
    assert!(!ping(&host, "a1", OUTSIDE_ADDR), "an internal container reached the outside");
    assert!(internal_drops(&host) > before, "internal_network counter did not move");

    // After a kill -9 and restart the datapath still knows the network is internal (the
    // recovered entries carry the flag), and the hand-made default route is gone.
    host.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    host.start_daemon();
    assert_eq!(default_routes(&host, "a1"), "");
    assert!(ping(&host, "a1", &ip_b), "peer traffic broken after the restart");
    in_container_ok(&host, "a1", &["ip", "route", "add", "default", "via", gateway]);
    let before = internal_drops(&host);
    assert!(!ping(&host, "a1", OUTSIDE_ADDR), "an internal container reached the outside after a restart");
    assert!(internal_drops(&host) > before, "internal_network counter did not move after the restart");
    assert!(ping(&host, "a1", gateway), "the gateway address stopped answering after the restart");
}

#[test]
fn a_container_on_an_internal_and_a_normal_network_leaves_through_the_normal_one() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--internal", "--subnet", "10.89.0.0/24", "sealed"]);
    host.ok(&["network", "create", "--subnet", "10.90.0.0/24", "open"]);
    host.ok(&["network", "create", "--subnet", "10.91.0.0/24", "open2"]);

    // Internal first, normal connected later: the route goes through the normal one.
    host.ok(&["run", "-d", "--name", "first-internal", "--network", "sealed"]);
    assert_eq!(default_routes(&host, "first-internal"), "");
    host.ok(&["network", "connect", "open", "first-internal"]);
    assert_eq!(default_routes(&host, "first-internal"), "default via 10.90.0.1 dev eth1");
    assert_eq!(gateway_in_inspect(&host, "first-internal", "sealed"), "");
    assert_eq!(gateway_in_inspect(&host, "first-internal", "open"), "10.90.0.1");
    assert!(ping(&host, "first-internal", OUTSIDE_ADDR), "no way out through the normal network");
    // A second normal network does not take the route over; disconnecting the one with the
    // route moves it to the next normal network, and the last one takes it away.
    host.ok(&["network", "connect", "open2", "first-internal"]);
    assert_eq!(default_routes(&host, "first-internal"), "default via 10.90.0.1 dev eth1");
    host.ok(&["network", "disconnect", "open", "first-internal"]);
    assert_eq!(default_routes(&host, "first-internal"), "default via 10.91.0.1 dev eth2");
    host.ok(&["network", "disconnect", "open2", "first-internal"]);
    assert_eq!(default_routes(&host, "first-internal"), "");
    assert!(!ping(&host, "first-internal", OUTSIDE_ADDR));

    // Normal first, internal connected later: the route stays on the normal one, also when
    // the internal one goes again.
    host.ok(&["run", "-d", "--name", "first-normal", "--network", "open"]);
    host.ok(&["network", "connect", "sealed", "first-normal"]);
    assert_eq!(default_routes(&host, "first-normal"), "default via 10.90.0.1 dev eth0");
    assert!(ping(&host, "first-normal", OUTSIDE_ADDR));
    // Both reach their internal peer directly.
    let peer = host.ip_of("first-internal", "sealed");
    assert!(ping(&host, "first-normal", &peer));
    host.ok(&["network", "disconnect", "sealed", "first-normal"]);
    assert_eq!(default_routes(&host, "first-normal"), "default via 10.90.0.1 dev eth0");

    // A stopped container started again on [internal, normal] gets its route on the normal one.
    host.ok(&["network", "connect", "open", "first-internal"]);
    host.ok(&["stop", "first-internal"]);
    host.ok(&["start", "first-internal"]);
    let route = default_routes(&host, "first-internal");
    assert!(route.starts_with("default via 10.90.0.1 dev eth"), "{route}");
    assert!(ping(&host, "first-internal", OUTSIDE_ADDR));
}
