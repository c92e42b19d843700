//! The walking skeleton end to end: one network, two containers, real traffic through the eBPF
//! datapath, and nothing of netd left behind.
use netd_tests::{tcp_exchange, tcx_ingress_programs, TestHost, ENDPOINT_LINKS};

#[test]
fn two_containers_talk_through_the_ebpf_datapath_and_leave_nothing_behind() {
    let host = TestHost::start();
    let routes_before = host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]);
    let links_before = host.in_host_ok(&["ip", "-o", "link", "show"]);
    let addrs_before = host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]);

    host.ok(&["network", "create", "skel-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "skel-net"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "skel-net"]);
    let (ip1, ip2) = (host.ip_of("one", "skel-net"), host.ip_of("two", "skel-net"));
    assert_eq!((ip1.as_str(), ip2.as_str()), ("172.18.0.2", "172.18.0.3"));

    // ICMP both ways.
    host.ok(&["exec", "one", "--", "ping", "-c", "2", "-W", "2", &ip2]);
    host.ok(&["exec", "two", "--", "ping", "-c", "2", "-W", "2", &ip1]);
    // TCP both ways.
    let (ns1, ns2) = (host.container_netns("one"), host.container_netns("two"));
    assert_eq!(tcp_exchange(&ns2, &ns1, &ip2, 7001, "hello two"), "HELLO TWO");
    assert_eq!(tcp_exchange(&ns1, &ns2, &ip1, 7002, "hello one"), "HELLO ONE");

    // The host forwards nothing itself: no bridge, no iptables/nft rules, ip_forward off.
    let host_ns = host.netns_path(&host.host_ns);
    assert_eq!(host.in_host_ok(&["ip", "-o", "link", "show", "type", "bridge"]).trim(), "");
    assert_eq!(host.in_host_ok(&["nft", "list", "ruleset"]).trim(), "");
    let iptables = host.in_host_ok(&["iptables-save"]);
    assert!(!iptables.lines().any(|l| l.starts_with("-A")), "iptables rules found:\n{iptables}");
    assert_eq!(host.in_host_ok(&["sysctl", "-n", "net.ipv4.ip_forward"]).trim(), "0");

    // The forwarding program is attached (tcx) at ingress of both host-side veths.
    let inspect = host.json(&["network", "inspect", "skel-net"]);
    let endpoints: Vec<String> = inspect[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["EndpointID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(endpoints.len(), 2);
    for ep in &endpoints {
        let ifname = format!("nd{}", &ep[..12]);
        assert_eq!(tcx_ingress_programs(&host_ns, &ifname), ["netd_ep_ingress"], "on {ifname}");
        assert!(host.bpffs.join(ENDPOINT_LINKS).join(&ifname).exists(), "link of {ifname} is not pinned");
    }

    host.ok(&["rm", "-f", "one", "two"]);
    host.ok(&["network", "rm", "skel-net"]);
    assert!(!ns1.exists() && !ns2.exists(), "container netns left behind");
    assert_eq!(host.in_host_ok(&["ip", "-o", "link", "show"]), links_before);
    assert_eq!(host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]), routes_before);
    assert_eq!(host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]), addrs_before);
    let pinned_links: Vec<_> = std::fs::read_dir(host.bpffs.join(ENDPOINT_LINKS)).unwrap().collect();
    assert!(pinned_links.is_empty(), "link pins left behind: {pinned_links:?}");
    // The uplink keeps its program for as long as the daemon runs.
    assert_eq!(tcx_ingress_programs(&host_ns, "eth0"), ["netd_up_ingress"]);

    // `system reset` removes the rest (the default bridge's gateway, routes, every pin, the
    // run dir) and stops the daemon, whose state is gone.
    host.ok(&["system", "reset"]);
    assert!(!host.bpffs.exists(), "pins left after system reset");
    assert!(tcx_ingress_programs(&host_ns, "eth0").is_empty(), "the uplink program outlived system reset");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host.run_dir().exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!host.run_dir().exists(), "run dir left after system reset");
    let routes = host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]);
    assert!(!routes.contains("172.17.") && !routes.contains("172.18."), "routes left after reset:\n{routes}");
    let addrs = host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]);
    assert!(!addrs.contains("172.1"), "gateway addresses left after reset:\n{addrs}");
}
