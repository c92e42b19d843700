//! The walking skeleton end to end: one network, two containers, real traffic through the eBPF
//! datapath, and nothing of netd left behind.
use netd_tests::{ingress_filters, tcp_exchange, tcx_ingress_programs, TestHost, LEGACY_ENDPOINT_LINKS};

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

    // The forwarding program is attached at ingress of both host-side veths: netd's cls_bpf
    // filter (direct action, at its priority and handle), no tcx link and no pin.
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
        let filters = ingress_filters(&host_ns, &ifname);
        assert!(filters.len() == 1 && filters[0].is_netds(), "on {ifname}: {filters:?}");
        assert!(tcx_ingress_programs(&host_ns, &ifname).is_empty(), "tcx program on {ifname}");
    }
    assert!(!host.bpffs.join(LEGACY_ENDPOINT_LINKS).exists(), "endpoint link pins");

    host.ok(&["rm", "-f", "one", "two"]);
    host.ok(&["network", "rm", "skel-net"]);
    assert!(!ns1.exists() && !ns2.exists(), "container netns left behind");
    // The veths go in the background, with their netns.
    host.wait_for_removals();
    assert_eq!(host.in_host_ok(&["ip", "-o", "link", "show"]), links_before);
    assert_eq!(host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]), routes_before);
    assert_eq!(host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]), addrs_before);
    assert!(host.endpoint_veths().is_empty(), "endpoint veths left behind");
    // The uplink keeps its program for as long as the daemon runs.
    assert_eq!(tcx_ingress_programs(&host_ns, "eth0"), ["netd_up_ingress"]);

    // `system reset` removes the rest (the default bridge's gateway, routes, every pin, the
    // run dir) and stops the daemon, whose state is gone.
    host.ok(&["system", "reset"]);
    assert!(!host.bpffs.exists(), "pins left after system reset");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // Unpinning the uplink's tcx link releases it in a kernel worker (after a grace period).
    while !tcx_ingress_programs(&host_ns, "eth0").is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(tcx_ingress_programs(&host_ns, "eth0").is_empty(), "the uplink program outlived system reset");
    while host.run_dir().exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!host.run_dir().exists(), "run dir left after system reset");
    let routes = host.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]);
    assert!(!routes.contains("172.17.") && !routes.contains("172.18."), "routes left after reset:\n{routes}");
    let addrs = host.in_host_ok(&["ip", "-o", "-4", "addr", "show"]);
    assert!(!addrs.contains("172.1"), "gateway addresses left after reset:\n{addrs}");
}
