//! Docker's own containers on netd (issue 15): a real dockerd 20.10 (`tests/src/dockerd.rs`)
//! uses netd as its remote network and IPAM driver. Names through Docker's DNS, container to
//! container, egress through netd's masquerade, `-p` from outside (the client's address kept),
//! `-o com.docker.network.driver.mtu`, isolation from docker0,
//! `connect`/`disconnect`, `docker restart`, netd `kill -9` with containers running, a dockerd
//! restart, and `docker network rm` leaving nothing of netd.
use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use netd_tests::{
    dockerd::{Dockerd, IMAGE},
    in_netns, TestHost, OUTSIDE_ADDR,
};
use nix::sys::signal::Signal;

/// A server that answers every connection with its container's name, for ever.
fn run_server(d: &Dockerd, name: &str, network: &str, extra: &[&str]) {
    let script = "while true; do echo \"hello from $(hostname)\" | nc -l -p 80; done";
    let args = [
        &["run", "-d", "--name", name, "--hostname", name, "--network", network][..],
        extra,
        &[IMAGE, "sh", "-c", script],
    ]
    .concat();
    d.ok(&args);
}

/// What `from` gets connecting to `target` port 80.
fn fetch(d: &Dockerd, from: &str, target: &str) -> String {
    fetch_port(d, from, target, 80)
}

/// What `from` gets connecting to `target:port`, retried while the server loop is between
/// two connections.
fn fetch_port(d: &Dockerd, from: &str, target: &str, port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = d.docker(&["exec", from, "sh", "-c", &format!("nc -w 3 {target} {port} </dev/null")]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() {
            return text;
        }
        assert!(Instant::now() < deadline, "{from} → {target}:{port}: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What a client in the outside netns reads from the host's uplink address at `port`.
fn fetch_from_outside(host: &TestHost, port: u16) -> String {
    fetch_in(&host.netns_path(&host.outside_ns), "198.51.100.2", port)
}

/// What a client in the host netns reads from `addr:port`.
fn fetch_from_host(host: &TestHost, addr: &str, port: u16) -> String {
    fetch_in(&host.netns_path(&host.host_ns), addr, port)
}

/// What a client in the netns at `netns` reads from `addr:port`, retried while the server
/// loop is between two connections.
fn fetch_in(netns: &std::path::Path, addr: &str, port: u16) -> String {
    let target: SocketAddr = format!("{addr}:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = in_netns(netns, move || -> std::io::Result<String> {
            let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
            conn.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut text = String::new();
            conn.read_to_string(&mut text)?;
            Ok(text)
        });
        match got {
            Ok(text) if !text.trim().is_empty() => return text.trim().to_string(),
            other => assert!(Instant::now() < deadline, "{} → {target}: {other:?}", netns.display()),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Whether `from` can ping `target` (one probe, bounded).
fn pings(d: &Dockerd, from: &str, target: &str) -> bool {
    d.docker(&["exec", from, "ping", "-c", "1", "-W", "2", target]).status.success()
}

/// Connects from container `from` to a server in the outside netns; returns the peer address
/// the outside saw.
fn egress_source(host: &TestHost, d: &Dockerd, from: &str, port: u16) -> String {
    let listener = in_netns(&host.netns_path(&host.outside_ns), move || TcpListener::bind(("0.0.0.0", port)).unwrap());
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match listener.accept() {
                Ok((mut conn, peer)) => {
                    let _ = conn.write_all(b"outside\n");
                    return Some(peer.ip().to_string());
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return None,
            }
        }
    });
    let out = d.docker(&["exec", from, "sh", "-c", &format!("nc -w 3 {OUTSIDE_ADDR} {port} </dev/null")]);
    let peer = server.join().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("outside"),
        "{from} → outside:{port}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    peer.expect("the outside saw no connection")
}

/// Holds a connection from the outside netns to the host's uplink address at `port` (published
/// by `container`, whose server keeps connections open) and returns the peer address
/// `container`'s netstat shows for it.
fn client_seen_behind_port(host: &TestHost, d: &Dockerd, container: &str, port: u16) -> String {
    let target: SocketAddr = format!("198.51.100.2:{port}").parse().unwrap();
    let outside = host.netns_path(&host.outside_ns);
    let deadline = Instant::now() + Duration::from_secs(15);
    let _conn = loop {
        match in_netns(&outside, move || TcpStream::connect_timeout(&target, Duration::from_secs(3))) {
            Ok(conn) => break conn,
            Err(e) => assert!(Instant::now() < deadline, "outside → {target}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    loop {
        // busybox netstat -tn: "tcp 0 0 ::ffff:LOCAL:81 ::ffff:PEER:PORT STATE" (busybox nc
        // listens on ::; it may have closed its side already: FIN_WAIT2).
        let table = d.ok(&["exec", container, "netstat", "-tn"]);
        let peer = table.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 6 && f[0] == "tcp" && f[3].ends_with(":81")).then(|| f[4].to_string())
        });
        if let Some(peer) = peer {
            let addr = peer.rsplit_once(':').unwrap().0;
            return addr.strip_prefix("::ffff:").unwrap_or(addr).to_string();
        }
        assert!(Instant::now() < deadline, "no connection to :81 in {container}: {table}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// netd's view of a Docker network: subnet and the IPv4 addresses of its endpoints.
fn netd_view(host: &TestHost, docker_id: &str) -> (String, Vec<String>) {
    subnet_and_addresses(&host.json(&["network", "inspect", docker_id])[0])
}

/// Docker's view of the same network.
fn docker_view(d: &Dockerd, network: &str) -> (String, Vec<String>) {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["network", "inspect", network])).unwrap();
    subnet_and_addresses(&v[0])
}

/// From `network inspect`'s JSON (the same shape in Docker and netd).
fn subnet_and_addresses(n: &serde_json::Value) -> (String, Vec<String>) {
    let subnet = n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or_default().to_string();
    let mut ips: Vec<String> = n["Containers"]
        .as_object()
        .map(|m| m.values().map(|c| c["IPv4Address"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    ips.sort();
    (subnet, ips)
}

#[test]
fn docker_containers_talk_publish_and_reach_out_on_a_netd_network() {
    let mut host = TestHost::start();
    let d = Dockerd::start(&host);
    let id = d.ok(&["network", "create", "-d", "netd", "--ipam-driver", "netd", "--subnet", "10.77.0.0/24", "dnet"]);
    let id = id.trim().to_string();
    run_server(&d, "web", "dnet", &["-p", "8080:80"]);
    run_server(&d, "cli", "dnet", &[]);

    // Names through Docker's embedded DNS; both ways.
    assert!(pings(&d, "cli", "web"), "cli cannot ping web");
    assert_eq!(fetch(&d, "cli", "web"), "hello from web");
    assert_eq!(fetch(&d, "web", "cli"), "hello from cli");
    // Both views of the network agree.
    let docker = docker_view(&d, "dnet");
    assert_eq!(docker.0, "10.77.0.0/24");
    assert_eq!(docker.1.len(), 2, "{docker:?}");
    assert_eq!(netd_view(&host, &id), docker, "netd and Docker disagree on the network");

    // -p from the outside netns, from the host (loopback and its own address), by hairpin
    // (a container to the host's address), and egress masqueraded to the uplink address.
    assert_eq!(fetch_from_outside(&host, 8080), "hello from web");
    for addr in ["127.0.0.1", "198.51.100.2"] {
        assert_eq!(fetch_from_host(&host, addr, 8080), "hello from web", "host → {addr}:8080");
    }
    assert_eq!(fetch_port(&d, "cli", "198.51.100.2", 8080), "hello from web", "hairpin");
    assert_eq!(egress_source(&host, &d, "cli", 9301), "198.51.100.2");

    // -o com.docker.network.driver.mtu reaches the veths; behind -p the container sees the
    // outside client's own address (no proxy, no SNAT).
    d.ok(&[
        "network",
        "create",
        "-d",
        "netd",
        "--ipam-driver",
        "netd",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "dmtu",
    ]);
    let hold = "while true; do nc -l -p 81 >/dev/null; done";
    d.ok(&["run", "-d", "--name", "held", "--network", "dmtu", "-p", "8082:81", IMAGE, "sh", "-c", hold]);
    assert_eq!(d.ok(&["exec", "held", "cat", "/sys/class/net/eth0/mtu"]).trim(), "1400");
    assert_eq!(client_seen_behind_port(&host, &d, "held", 8082), "198.51.100.1");

    // Isolation from docker0 (a container on Docker's default bridge) both ways.
    d.ok(&["run", "-d", "--name", "plain", IMAGE, "sleep", "600"]);
    let plain = d.ip_of("plain", "bridge");
    let web = d.ip_of("web", "dnet");
    assert!(!pings(&d, "cli", &plain), "a netd container reached docker0's {plain}");
    assert!(!pings(&d, "plain", &web), "a docker0 container reached netd's {web}");
    let stats = host.json(&["stats", "--format", "json"]);
    let forwarded = stats["drops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["reason"] == "forwarded_to_endpoint" && d["hook"] == "endpoint_egress")
        .map(|d| d["packets"].as_u64().unwrap())
        .sum::<u64>();
    assert!(forwarded > 0, "docker0's ping was not dropped by netd's endpoint egress: {stats}");

    // connect/disconnect live: plain joins dnet, reaches web by name, leaves again.
    d.ok(&["network", "connect", "dnet", "plain"]);
    assert_eq!(fetch(&d, "plain", "web"), "hello from web");
    d.ok(&["network", "disconnect", "dnet", "plain"]);
    let out = d.ok(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", "plain"]);
    assert!(!out.contains("dnet") && out.contains("bridge"), "after disconnect: {out}");
    assert!(!pings(&d, "cli", &plain), "after disconnect, cli reaches plain's docker0 address");
    assert!(!pings(&d, "plain", &web), "after disconnect, plain still reaches {web}");

    // docker restart: same network, still reachable by name.
    d.ok(&["restart", "-t", "1", "web"]);
    assert_eq!(fetch(&d, "cli", "web"), "hello from web");

    // netd killed and restarted while containers run: traffic goes on, and on after.
    host.stop_daemon(Signal::SIGKILL);
    assert_eq!(fetch(&d, "cli", "web"), "hello from web", "while netd is down");
    host.start_daemon();
    assert_eq!(fetch(&d, "cli", "web"), "hello from web");
    assert_eq!(fetch_from_outside(&host, 8080), "hello from web");
    assert_eq!(netd_view(&host, &id), docker_view(&d, "dnet"), "after netd's restart");

    // Docker's own IPAM with netd's driver works too (a subnet netd does not use).
    d.ok(&["network", "create", "-d", "netd", "--subnet", "10.78.0.0/24", "dnet2"]);
    run_server(&d, "far", "dnet2", &[]);
    assert!(!pings(&d, "cli", &d.ip_of("far", "dnet2")), "two netd networks are not isolated");

    // Everything goes: nothing of netd is left.
    d.ok(&["rm", "-f", "web", "cli", "plain", "far", "held"]);
    d.ok(&["network", "rm", "dnet", "dnet2", "dmtu"]);
    host.wait_for_removals();
    let names = host.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!names.lines().any(|n| n.starts_with("docker-")), "Docker's networks left in netd: {names}");
    assert_eq!(host.endpoint_veths(), Vec::<String>::new(), "veths left");
}

#[test]
fn containers_come_back_after_a_dockerd_restart() {
    let host = TestHost::start();
    let mut d = Dockerd::start(&host);
    d.ok(&["network", "create", "-d", "netd", "--ipam-driver", "netd", "rnet"]);
    run_server(&d, "one", "rnet", &["-p", "8081:80"]);
    run_server(&d, "two", "rnet", &[]);
    assert_eq!(fetch(&d, "two", "one"), "hello from one");
    // dockerd stops its containers; they come back on the same netd network with `start`.
    d.stop_daemon();
    d.start_daemon();
    d.ok(&["start", "one", "two"]);
    assert_eq!(fetch(&d, "two", "one"), "hello from one");
    assert_eq!(fetch(&d, "one", "two"), "hello from two");
    assert_eq!(fetch_from_outside(&host, 8081), "hello from one");
    d.ok(&["rm", "-f", "one", "two"]);
    d.ok(&["network", "rm", "rnet"]);
    host.wait_for_removals();
    assert_eq!(host.endpoint_veths(), Vec::<String>::new(), "veths left");
}
