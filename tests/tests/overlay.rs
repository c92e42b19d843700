//! Multi-host overlay networks (cluster mode): three simulated hosts, each a netns with its
//! own daemon, on an underlay with etcd in a netns of its own (`netd_tests::cluster`). Real
//! VXLAN packets between the hosts, real etcd, real DNS queries inside the containers.
use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use netd_tests::{cluster::Cluster, tcp_exchange, TestHost, OUTSIDE_ADDR};
use nix::sys::signal::Signal;

/// Seconds a host's endpoints stay announced after its daemon stops renewing its lease.
const LEASE_TTL: u32 = 5;
/// How long a change may take to reach the other hosts before a test fails (watches deliver
/// within milliseconds; this only bounds a failure).
const CONVERGE: Duration = Duration::from_secs(20);

fn run(host: &TestHost, name: &str, network: &str) -> String {
    host.ok(&["run", "-d", "--name", name, "--network", network, "img", "sleep", "600"]);
    host.ip_of(name, network)
}

fn pings(host: &TestHost, container: &str, target: &str) -> bool {
    host.netd(&["exec", container, "ping", "-c", "1", "-W", "1", target]).status.success()
}

/// The addresses the embedded DNS gives `container` for `name`.
fn resolve(host: &TestHost, container: &str, name: &str) -> Vec<String> {
    let out = host.netd(&["exec", container, "dig", "+short", "+time=1", "+tries=1", "@127.0.0.11", name]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.parse::<std::net::Ipv4Addr>().is_ok())
        .map(String::from)
        .collect()
}

/// Serves one TCP connection on `port` in `netns`: what it reads, upper-cased. Gives up after
/// [`CONVERGE`] without a client.
fn upper_case_echo_once(netns: &std::path::Path, port: u16) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    let listener = netd_tests::in_netns(netns, move || std::net::TcpListener::bind(("0.0.0.0", port)).expect("bind"));
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + CONVERGE;
        let mut conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("no client: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).expect("server read");
        conn.write_all(String::from_utf8_lossy(&buf[..n]).to_uppercase().as_bytes()).unwrap();
    })
}

/// Waits (bounded by [`CONVERGE`]) until `check` holds; panics with `what` otherwise.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + CONVERGE;
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn network_ids(host: &TestHost, name: &str) -> Option<String> {
    let out = host.netd(&["network", "inspect", "-f", "{{.Id}} {{.Driver}} {{.Scope}}", name]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
#[ignore = "needs root, eBPF and Debian's etcd-server; cargo xtask test runs it"]
fn three_hosts_share_overlay_networks_addresses_and_names() {
    let cluster = Cluster::start(3, LEASE_TTL);
    let h = &cluster.hosts;

    // One network, seen by every host with Docker's overlay shape.
    let id = h[0].ok(&["network", "create", "-d", "overlay", "ov1"]).trim().to_string();
    h[0].ok(&["network", "create", "-d", "overlay", "--subnet", "10.10.0.0/24", "ov2"]);
    for host in h {
        eventually("ov1 and ov2 on every host", || {
            network_ids(host, "ov1").is_some() && network_ids(host, "ov2").is_some()
        });
        assert_eq!(network_ids(host, "ov1").unwrap(), format!("{id} overlay global"));
        let ls = host.ok(&["network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}} {{.Scope}}"]);
        assert_eq!(ls, "ov1 global\nov2 global\n");
    }
    let inspect = h[1].json(&["network", "inspect", "ov1"]);
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "10.0.0.0/24", "Docker's first overlay pool");
    assert_eq!(inspect[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"], "4097");
    h[2].fails_cleanly(
        &["network", "create", "-d", "overlay", "ov1"],
        "Error response from daemon: network with name ov1 already exists",
    );
    h[2].fails_cleanly(
        &["network", "create", "-d", "overlay", "--subnet", "10.0.0.0/16", "ov3"],
        "Error response from daemon: Pool overlaps with other one on this address space",
    );

    // Every host runs containers at once: no address is handed out twice.
    let ips: Vec<(usize, String, String)> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|i| {
                let host = &h[i];
                s.spawn(move || {
                    (0..4).map(|k| (i, format!("c{i}{k}"), run(host, &format!("c{i}{k}"), "ov1"))).collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let distinct: BTreeSet<&String> = ips.iter().map(|(_, _, ip)| ip).collect();
    assert_eq!(distinct.len(), 12, "addresses handed out twice: {ips:?}");
    assert!(ips.iter().all(|(_, _, ip)| ip.starts_with("10.0.0.")), "{ips:?}");

    // By address and by name, across hosts, with VXLAN's MTU.
    let link = h[0].ok(&["exec", "c00", "ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains(" mtu 1450 "), "{link}");
    for (i, name, ip) in ips.iter().filter(|(i, _, _)| *i != 0) {
        eventually(&format!("c00 reaches {name} on host {i}"), || pings(&h[0], "c00", ip));
        assert_eq!(resolve(&h[0], "c00", name), vec![ip.clone()], "{name} by name from host 0");
        assert!(pings(&h[0], "c00", &format!("{name}.ov1")), "{name}.ov1 by name from host 0");
    }
    let c10 = ips.iter().find(|(_, n, _)| n == "c10").unwrap().2.clone();
    assert_eq!(resolve(&h[2], "c20", "c10"), vec![c10.clone()]);
    let reply = tcp_exchange(&h[1].container_netns("c10"), &h[2].container_netns("c20"), &c10, 7101, "over vxlan");
    assert_eq!(reply, "OVER VXLAN");
    // TCP by name: the client inside the container resolves the name itself.
    let served = upper_case_echo_once(&h[1].container_netns("c10"), 7103);
    let script = "exec 3<>/dev/tcp/c10/7103 && printf 'by name' >&3 && timeout 5 cat <&3";
    assert_eq!(h[2].ok(&["exec", "c20", "bash", "-c", script]), "BY NAME");
    served.join().unwrap();

    // Isolation: another overlay network and a bridge network reach none of ov1's containers.
    run(&h[1], "other", "ov2");
    h[2].ok(&["network", "create", "local"]);
    run(&h[2], "local1", "local");
    let c00 = &ips[0].2;
    assert!(!pings(&h[1], "other", c00), "ov2 reached ov1 across hosts");
    assert!(!pings(&h[1], "other", &c10), "ov2 reached ov1 on its own host");
    assert!(!pings(&h[2], "local1", c00), "a bridge network reached ov1 on another host");
    assert!(resolve(&h[1], "other", "c00").is_empty(), "ov2 resolved a name of ov1");

    // Out through the container's own host's masquerade; an internal overlay network spans
    // hosts but leads nowhere else.
    let outside = h[0].netns_path(&h[0].outside_ns);
    assert_eq!(tcp_exchange(&outside, &h[0].container_netns("c00"), OUTSIDE_ADDR, 7102, "out"), "OUT");
    h[0].ok(&["network", "create", "-d", "overlay", "--internal", "ovi"]);
    eventually("ovi on host 1", || network_ids(&h[1], "ovi").is_some());
    run(&h[0], "in0", "ovi");
    let in1 = run(&h[1], "in1", "ovi");
    eventually("in0 reaches in1 on the internal overlay", || pings(&h[0], "in0", &in1));
    assert!(!pings(&h[0], "in0", OUTSIDE_ADDR), "an internal overlay network reached the outside");

    // In use anywhere: refused everywhere, with Docker's text.
    for host in h {
        host.fails_cleanly(
            &["network", "rm", "ov1"],
            &format!(
                "Error response from daemon: error while removing network: network ov1 id {id} has active endpoints"
            ),
        );
    }

    // Addresses released on one host are taken again on another.
    let freed: BTreeSet<String> = ips.iter().filter(|(i, _, _)| *i == 1).map(|(_, _, ip)| ip.clone()).collect();
    for k in 0..4 {
        h[1].ok(&["rm", "-f", &format!("c1{k}")]);
    }
    eventually("c10's name gone from host 0", || resolve(&h[0], "c00", "c10").is_empty());
    let again = run(&h[2], "reuse", "ov1");
    assert_eq!(&again, freed.iter().min_by_key(|ip| ip.parse::<std::net::Ipv4Addr>().unwrap()).unwrap());
    eventually("the new holder reachable from host 0", || pings(&h[0], "c00", "reuse"));

    // Free everywhere: removed from every host.
    for (i, host) in h.iter().enumerate() {
        let names: Vec<String> = ips.iter().filter(|(n, _, _)| *n == i && i != 1).map(|(_, n, _)| n.clone()).collect();
        for name in names {
            host.ok(&["rm", "-f", &name]);
        }
    }
    h[2].ok(&["rm", "-f", "reuse"]);
    h[0].ok(&["network", "rm", "ov1"]);
    for host in h {
        eventually("ov1 gone from every host", || network_ids(host, "ov1").is_none());
    }
}

#[test]
#[ignore = "needs root, eBPF and Debian's etcd-server; cargo xtask test runs it"]
fn overlay_traffic_survives_a_dead_daemon_and_an_etcd_restart() {
    let mut cluster = Cluster::start(2, LEASE_TTL);
    cluster.hosts[0].ok(&["network", "create", "-d", "overlay", "ov"]);
    eventually("ov on host 1", || network_ids(&cluster.hosts[1], "ov").is_some());
    let a = run(&cluster.hosts[0], "ca", "ov");
    cluster.hosts[1].ok(&[
        "run",
        "-d",
        "--name",
        "cb",
        "--network",
        "ov",
        "--network-alias",
        "bee",
        "img",
        "sleep",
        "600",
    ]);
    let b = cluster.hosts[1].ip_of("cb", "ov");
    eventually("ca reaches cb", || pings(&cluster.hosts[0], "ca", "cb"));
    assert_eq!(resolve(&cluster.hosts[0], "ca", "bee"), vec![b.clone()], "an alias on another host");

    // A daemon killed: its containers stay reachable (pinned datapath, lease still held) …
    cluster.hosts[1].stop_daemon(Signal::SIGKILL);
    assert!(pings(&cluster.hosts[0], "ca", &b), "a lost b as soon as b's daemon died");
    // … until its lease expires: then its endpoints are gone everywhere.
    eventually("b's name gone after the lease", || resolve(&cluster.hosts[0], "ca", "cb").is_empty());
    assert!(!pings(&cluster.hosts[0], "ca", &b), "b still reachable after its host's lease expired");
    // Back: announced again.
    cluster.hosts[1].start_daemon();
    eventually("b announced again", || resolve(&cluster.hosts[0], "ca", "cb") == vec![b.clone()]);
    assert!(pings(&cluster.hosts[0], "ca", "cb"));

    // etcd down: traffic goes on; commands that need it fail at once; the rest work.
    cluster.stop_etcd();
    assert!(pings(&cluster.hosts[0], "ca", &b), "traffic stopped with etcd");
    assert!(pings(&cluster.hosts[1], "cb", &a), "traffic stopped with etcd");
    eventually("run on ov refused while etcd is down", || {
        let err = cluster.hosts[0].fails(&["run", "-d", "--name", "late", "--network", "ov", "img"]);
        err.contains("cluster store etcd://192.0.2.1:2379 is unreachable")
    });
    assert!(cluster.hosts[0].netd(&["inspect", "late"]).status.code() != Some(0), "a refused run left a container");
    cluster.hosts[0].ok(&["run", "-d", "--name", "bridged", "img", "sleep", "60"]);
    // Removed while etcd is down: its address is given back when etcd is back.
    cluster.hosts[1].ok(&["rm", "-f", "cb"]);

    cluster.start_etcd();
    cluster.wait_session(0);
    cluster.wait_session(1);
    let c = run(&cluster.hosts[1], "cc", "ov");
    assert_eq!(c, b, "b's address, released on reconnection, is the lowest free one");
    eventually("a reaches c after the restart", || pings(&cluster.hosts[0], "ca", "cc"));
    assert_eq!(resolve(&cluster.hosts[1], "cc", "ca"), vec![a]);
}
