//! Networks never take over the host's own addresses (issue 8, item 3): subnets in ranges no
//! network may use, subnets on the host's connected or local routes, and gateways or ip-ranges
//! on addresses the host already has are refused, each with one clear line and nothing
//! changed; and `network rm` removes only the gateway addresses and routes netd made.
//!
//! The harness's host netns has `lo` (127.0.0.1/8) and the uplink eth0 198.51.100.2/24, whose
//! default route goes to 198.51.100.1.
use netd_tests::TestHost;
use nix::sys::signal::Signal;

const DAEMON: &str = "Error response from daemon: ";

fn create(subnet: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["network".to_string(), "create".into(), "--subnet".into(), subnet.into()];
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push("refused".into());
    args
}

fn refused(host: &TestHost, subnet: &str, extra: &[&str], error: &str) {
    let args = create(subnet, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    host.fails_cleanly(&args, &format!("{DAEMON}{error}"));
}

/// The network's one `IPAM.Config` entry (`Subnet`, `Gateway`).
fn ipam_config(host: &TestHost, network: &str) -> serde_json::Value {
    host.json(&["network", "inspect", network])[0]["IPAM"]["Config"][0].clone()
}

/// `ip -o -4 addr show dev lo`, one line per address.
fn lo_addresses(host: &TestHost) -> String {
    host.in_host_ok(&["ip", "-o", "-4", "addr", "show", "dev", "lo"])
}

/// `ip` is on lo exactly once, as a /32 with lo's own label (not netd's `lo:netd`).
fn assert_operators_address(host: &TestHost, ip: &str) {
    let lo = lo_addresses(host);
    let lines: Vec<&str> = lo.lines().filter(|l| l.contains(&format!("inet {ip}/32 "))).collect();
    assert_eq!(lines.len(), 1, "{ip} on lo:\n{lo}");
    assert!(lines[0].contains("scope global lo\\"), "{ip} is not the operator's:\n{lo}");
}

#[test]
fn subnets_in_ranges_no_network_may_use_are_refused() {
    let host = TestHost::start();
    for (subnet, range) in [
        ("127.0.0.0/8", "loopback addresses (127.0.0.0/8)"),
        ("127.1.0.0/16", "loopback addresses (127.0.0.0/8)"),
        ("96.0.0.0/3", "loopback addresses (127.0.0.0/8)"),
        ("0.0.0.0/8", "\"this network\" addresses (0.0.0.0/8)"),
        ("0.0.0.0/1", "\"this network\" addresses (0.0.0.0/8)"),
        ("169.254.0.0/16", "link-local addresses (169.254.0.0/16)"),
        ("169.254.3.0/24", "link-local addresses (169.254.0.0/16)"),
        ("224.0.0.0/4", "multicast addresses (224.0.0.0/4)"),
        ("239.1.0.0/16", "multicast addresses (224.0.0.0/4)"),
        ("240.0.0.0/4", "reserved addresses (240.0.0.0/4)"),
        ("255.255.255.252/30", "reserved addresses (240.0.0.0/4)"),
    ] {
        refused(&host, subnet, &[], &format!("invalid subnet {subnet}: {range} cannot be used for a network"));
    }
    // The host's loopback is untouched: 127.0.0.1/8 on lo keeps all of 127/8 local.
    assert!(lo_addresses(&host).contains("inet 127.0.0.1/8 "), "{}", lo_addresses(&host));
    let route = host.in_host_ok(&["ip", "route", "get", "127.0.0.2"]);
    assert!(route.starts_with("local 127.0.0.2 dev lo"), "{route}");
    // Ordinary private subnets still work.
    for (name, subnet) in [("ten", "10.44.0.0/16"), ("one72", "172.30.0.0/16"), ("one92", "192.168.44.0/24")] {
        host.ok(&["network", "create", "--subnet", subnet, name]);
    }
}

#[test]
fn gateways_and_ranges_on_host_addresses_are_refused_and_survive() {
    let host = TestHost::start();
    // An operator's address on lo, and one on a link that is down (no connected route).
    host.in_host_ok(&["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"]);
    host.in_host_ok(&["ip", "link", "add", "dn0", "type", "veth", "peer", "name", "dn1"]);
    host.in_host_ok(&["ip", "addr", "add", "10.77.0.5/24", "dev", "dn0"]);

    let on_lo = "gateway 10.99.0.1 is already an address of this host (dev lo)";
    refused(&host, "10.99.0.0/24", &["--gateway", "10.99.0.1"], on_lo);
    // The automatic gateway (the subnet's first address) too.
    refused(&host, "10.99.0.0/24", &[], on_lo);
    refused(
        &host,
        "10.99.0.0/24",
        &["--gateway", "10.99.0.254", "--ip-range", "10.99.0.0/28"],
        "ip-range 10.99.0.0/28 contains 10.99.0.1, already an address of this host (dev lo)",
    );
    // The address's own local route: a container given 10.99.0.1 would be the host.
    refused(
        &host,
        "10.99.0.0/24",
        &["--gateway", "10.99.0.254"],
        "subnet 10.99.0.0/24 overlaps the host's route local 10.99.0.1 (dev lo)",
    );
    refused(
        &host,
        "10.77.0.0/24",
        &["--gateway", "10.77.0.5"],
        "gateway 10.77.0.5 is already an address of this host (dev dn0)",
    );
    // The down link has no connected route; its address's prefix is the host's all the same.
    refused(&host, "10.77.0.128/25", &[], "subnet 10.77.0.128/25 overlaps the host's address 10.77.0.5/24 (dev dn0)");
    refused(
        &host,
        "198.51.100.0/24",
        &["--gateway", "198.51.100.2"],
        "gateway 198.51.100.2 is already an address of this host (dev eth0)",
    );

    // The operator's address is still there, unlabelled, exactly once.
    assert_operators_address(&host, "10.99.0.1");

    // A subnet next to the operator's addresses is fine.
    host.ok(&["network", "create", "--subnet", "10.99.1.0/24", "beside"]);
    host.ok(&["network", "rm", "beside"]);
    assert_operators_address(&host, "10.99.0.1");
}

#[test]
fn subnets_on_the_uplinks_routes_are_refused() {
    let host = TestHost::start();
    let uplink = |subnet: &str| format!("subnet {subnet} overlaps the host's route 198.51.100.0/24 (dev eth0)");
    for subnet in ["198.51.100.0/25", "198.51.100.128/26", "198.51.100.0/24", "198.51.0.0/16"] {
        refused(&host, subnet, &[], &uplink(subnet));
    }
    // The host's default gateway is still a neighbour on eth0, not a local address.
    let route = host.in_host_ok(&["ip", "route", "get", "198.51.100.1"]);
    assert!(route.starts_with("198.51.100.1 dev eth0 src 198.51.100.2"), "{route}");
    // A route through a gateway (not a connected one) does not stop an explicit --subnet, as
    // in Docker; netd's own routes never count against anything.
    host.in_host_ok(&["ip", "route", "add", "10.66.0.0/16", "via", "198.51.100.1"]);
    host.ok(&["network", "create", "--subnet", "10.66.0.0/24", "routed"]);
    // Another netd network stays Docker's overlap error.
    refused(&host, "10.66.0.128/25", &[], "Pool overlaps with other one on this address space");
}

#[test]
fn automatic_pools_and_the_default_bridge_avoid_host_addresses() {
    let mut host = TestHost::start();
    // 172.18.0.1 is the host's own (on lo): the first user pool's gateway would take it over.
    host.in_host_ok(&["ip", "addr", "add", "172.18.0.1/32", "dev", "lo"]);
    host.ok(&["network", "create", "auto"]);
    assert_eq!(ipam_config(&host, "auto"), serde_json::json!({ "Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1" }));

    // At start, the default bridge skips 172.17.0.0/16 when the host has 172.17.0.1 (a leftover
    // docker0 address on a link that is down, say).
    host.ok(&["system", "reset"]);
    host.stop_daemon(Signal::SIGTERM);
    host.in_host_ok(&["ip", "link", "add", "old0", "type", "veth", "peer", "name", "old1"]);
    host.in_host_ok(&["ip", "addr", "add", "172.17.0.1/16", "dev", "old0"]);
    host.start_daemon();
    assert_eq!(ipam_config(&host, "bridge"), serde_json::json!({ "Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1" }));
    assert_operators_address(&host, "172.18.0.1");
}

#[test]
fn network_rm_deletes_only_what_netd_made() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.98.0.0/24", "live"]);
    host.ok(&["network", "create", "--subnet", "10.97.0.0/24", "restarted"]);
    let lo = lo_addresses(&host);
    assert!(lo.contains("inet 10.98.0.1/32 scope global lo:netd"), "{lo}");

    // While the daemon runs, the operator replaces netd's gateway address by one of their own
    // (no label) and netd's unreachable route by their own (no protocol 78).
    host.in_host_ok(&["ip", "addr", "del", "10.98.0.1/32", "dev", "lo"]);
    host.in_host_ok(&["ip", "addr", "add", "10.98.0.1/32", "dev", "lo"]);
    host.in_host_ok(&["ip", "route", "del", "unreachable", "10.98.0.0/24", "proto", "78"]);
    host.in_host_ok(&["ip", "route", "add", "unreachable", "10.98.0.0/24"]);
    // The same while the daemon is down: the restarted daemon must not adopt the address.
    host.stop_daemon(Signal::SIGKILL);
    host.in_host_ok(&["ip", "addr", "del", "10.97.0.1/32", "dev", "lo"]);
    host.in_host_ok(&["ip", "addr", "add", "10.97.0.1/32", "dev", "lo"]);
    host.start_daemon();
    assert!(
        host.daemon_log().contains("gateway 10.97.0.1 is already an address of this host (dev lo)"),
        "restart did not report the operator's address:\n{}",
        host.daemon_log()
    );

    host.ok(&["network", "rm", "live", "restarted"]);
    assert_operators_address(&host, "10.98.0.1");
    assert_operators_address(&host, "10.97.0.1");
    let routes = host.in_host_ok(&["ip", "route", "show", "table", "all"]);
    assert!(routes.contains("unreachable 10.98.0.0/24 "), "{routes}");
    // netd's own route of the restarted network did go.
    assert!(!routes.contains("10.97.0.0/24"), "{routes}");
}
