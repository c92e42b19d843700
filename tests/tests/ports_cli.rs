//! Published ports, the control plane (issue 11 items 1, 2, 4, 5, 7): `-p`/`--publish` in every
//! form with Docker's texts for bad specs, options that never become IMAGE, unknown flags,
//! conflicts (container vs container, a host listener vs publish) that change nothing, random
//! ports inside the ephemeral range as `netd port` shows them, ranges, ports freed at `rm`, a
//! 1,000-port range. What the datapath holds is read from its pinned service and reserved-port
//! maps. Traffic through published ports is tested elsewhere.
use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, TcpListener, UdpSocket},
    time::Instant,
};

use netd_tests::{
    in_netns,
    published::{reserved, services, TCP, UDP},
    TestHost,
};

fn ip(host: &TestHost, name: &str, network: &str) -> Ipv4Addr {
    host.ip_of(name, network).parse().unwrap()
}

const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

#[test]
fn bad_specs_and_unknown_flags_get_dockers_texts_and_change_nothing() {
    let host = TestHost::start();
    for (spec, error) in [
        ("abc", "Invalid containerPort: abc"),
        ("99999:80", "Invalid hostPort: 99999"),
        ("80/sctpx", "Invalid proto: sctpx"),
        ("8000-8001:80-82", "Invalid ranges specified for container and host Ports: 80-82 and 8000-8001"),
        ("8080:", "No port specified: 8080:<empty>"),
        ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
    ] {
        let error = format!("netd: {error}.\nSee 'netd run --help'.");
        host.fails_cleanly(&["run", "-d", "--name", "bad", "-p", spec], &error);
        host.fails_cleanly(&["run", "-d", "--name", "bad", &format!("--publish={spec}"), "busybox"], &error);
    }
    for (args, error) in [
        (vec!["run", "-d", "--bogus", "busybox"], "unknown flag: --bogus"),
        (vec!["run", "-d", "--name", "x1", "--bogus=1", "--", "sleep", "9"], "unknown flag: --bogus"),
        (vec!["run", "-x", "busybox"], "unknown shorthand flag: 'x' in -x"),
        (vec!["run", "-dx", "busybox"], "unknown shorthand flag: 'x' in -dx"),
    ] {
        let out = host.netd(&args);
        assert_eq!(out.status.code(), Some(125), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), format!("{error}\nSee 'netd run --help'."), "{args:?}");
    }
    assert_eq!(host.ok(&["ps", "-aq"]), "");
    // `container:` refuses ports.
    host.ok(&["run", "-d", "--name", "owner"]);
    host.fails_cleanly(
        &["run", "-d", "--name", "sharer", "--network", "container:owner", "-p", "80"],
        "netd: Error response from daemon: conflicting options: port publishing and the container type network mode.\nSee 'netd run --help'.",
    );
}

#[test]
fn no_option_ever_becomes_image() {
    let host = TestHost::start();
    host.ok(&["network", "create", "pn"]);
    // The command: `-p` was taken as IMAGE and the rest as CMD on the default bridge.
    host.ok(&["run", "-d", "--name", "web", "-p", "8080:80", "--network", "pn"]);
    let c = &host.json(&["inspect", "web"])[0];
    assert_eq!(c["Config"]["Image"], "");
    // No command: Docker's nil Cmd.
    assert_eq!(c["Config"]["Cmd"], serde_json::Value::Null);
    assert_eq!(c["HostConfig"]["NetworkMode"], "pn");
    assert_eq!(c["HostConfig"]["PortBindings"], serde_json::json!({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}));
    assert_eq!(
        c["NetworkSettings"]["Ports"],
        serde_json::json!({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]})
    );
    assert_eq!(host.ok(&["port", "web"]), "80/tcp -> 0.0.0.0:8080\n");
    assert_eq!(host.ok(&["port", "web", "80"]), "0.0.0.0:8080\n");
    assert_eq!(host.fails(&["port", "web", "81"]), "Error: No public port '81/tcp' published for web");
    assert_eq!(host.ok(&["ps", "--format", "{{.Ports}}"]), "0.0.0.0:8080->80/tcp\n");
    assert_eq!(services(&host), BTreeSet::from([(ANY, 8080, TCP, ip(&host, "web", "pn"), 80)]));
    assert_eq!(reserved(&host), BTreeSet::from([(8080, TCP)]));
    // IMAGE and CMD with options of their own, `-- CMD`, several `-p`.
    host.ok(&["run", "-d", "--name", "two", "-p", "9090:90", "--publish", "5353:53/udp", "busybox", "sleep", "600"]);
    let c = &host.json(&["inspect", "two"])[0];
    assert_eq!(c["Config"]["Image"], "busybox");
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "600"]));
    assert_eq!(host.ok(&["port", "two"]), "53/udp -> 0.0.0.0:5353\n90/tcp -> 0.0.0.0:9090\n");
    host.ok(&["run", "-d", "--name", "three", "-p", "7070:70", "--", "sleep", "600"]);
    assert_eq!(host.json(&["inspect", "three"])[0]["Config"]["Cmd"], serde_json::json!(["sleep", "600"]));
    // `--network host`: kept, not published, with Docker's warning.
    let out = host.netd(&["run", "-d", "--name", "hosted", "--network", "host", "-p", "6060:60"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "WARNING: Published ports are discarded when using host network mode"
    );
    assert_eq!(host.ok(&["port", "hosted"]), "");
    assert!(!services(&host).iter().any(|s| s.1 == 6060));
}

#[test]
fn conflicts_change_nothing() {
    let host = TestHost::start();
    host.ok(&["network", "create", "cn"]);
    host.ok(&["run", "-d", "--name", "a1", "--network", "cn", "-p", "8080:80", "-p", "127.0.0.1:8081:80"]);
    let (svc, rsvd) = (services(&host), reserved(&host));
    // The error names the endpoint the new container would have had: its name, an id.
    let refused = |args: &[&str], why: &str| {
        let before = host.snapshot();
        let err = host.fails(args);
        let prefix =
            "netd: Error response from daemon: driver failed programming external connectivity on endpoint b1 (";
        assert!(err.starts_with(prefix), "{err}");
        let (id, rest) = err[prefix.len()..].split_once("): ").unwrap();
        assert_eq!(id.len(), 64, "{err}");
        assert_eq!(rest, format!("{why}."));
        assert_eq!(host.snapshot(), before, "netd {args:?} failed but changed something");
        assert_eq!((services(&host), reserved(&host)), (svc.clone(), rsvd.clone()));
    };
    refused(
        &["run", "-d", "--name", "b1", "--network", "cn", "-p", "8080:80"],
        "Bind for 0.0.0.0:8080 failed: port is already allocated",
    );
    refused(
        &["run", "-d", "--name", "b1", "--network", "cn", "-p", "9000:90", "-p", "8081:80"],
        "Error starting userland proxy: listen tcp4 0.0.0.0:8081: bind: address already in use",
    );
    refused(
        &["run", "-d", "--name", "b1", "-p", "127.0.0.1:8080:80"],
        "Error starting userland proxy: listen tcp4 127.0.0.1:8080: bind: address already in use",
    );
    // A host process holds a port in the daemon's netns.
    let ns = host.netns_path(&host.host_ns);
    let listener = in_netns(&ns, || TcpListener::bind(("0.0.0.0", 18081)).expect("bind"));
    let socket = in_netns(&ns, || UdpSocket::bind(("127.0.0.1", 15353)).expect("bind"));
    refused(
        &["run", "-d", "--name", "b1", "-p", "18081:80"],
        "Error starting userland proxy: listen tcp4 0.0.0.0:18081: bind: address already in use",
    );
    refused(
        &["run", "-d", "--name", "b1", "-p", "15353:53/udp"],
        "Error starting userland proxy: listen udp4 0.0.0.0:15353: bind: address already in use",
    );
    drop((listener, socket));
    // Once the host process is gone, the port publishes; other address or protocol: free.
    host.ok(&["run", "-d", "--name", "b1", "-p", "18081:80", "-p", "8080:80/udp", "-p", "127.0.0.2:8081:80"]);
    assert_eq!(host.ok(&["port", "b1"]), "80/tcp -> 0.0.0.0:18081\n80/tcp -> 127.0.0.2:8081\n80/udp -> 0.0.0.0:8080\n");
}

#[test]
fn random_ports_ranges_and_rm() {
    let host = TestHost::start();
    let range = host.in_host_ok(&["cat", "/proc/sys/net/ipv4/ip_local_port_range"]);
    let mut bounds = range.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let (start, end) = (bounds.next().unwrap(), bounds.next().unwrap());
    host.ok(&["run", "-d", "--name", "r1", "-p", "80", "-p", "127.0.0.1::81/udp"]);
    let lines = host.ok(&["port", "r1"]);
    let mut ports = Vec::new();
    for line in lines.lines() {
        let (_, hostport) = line.split_once(" -> ").unwrap();
        let port: u16 = hostport.rsplit_once(':').unwrap().1.parse().unwrap();
        assert!((start..=end).contains(&port), "{line} outside {start}-{end}");
        ports.push(port);
    }
    assert_eq!(ports.len(), 2, "{lines}");
    assert!(lines.starts_with("80/tcp -> 0.0.0.0:") && lines.contains("\n81/udp -> 127.0.0.1:"), "{lines}");
    // Sequential: the second is after the first.
    assert!(ports[1] > ports[0] || ports[1] == start, "{ports:?}");
    // Re-picked at start, after the last one handed out.
    host.ok(&["stop", "r1"]);
    assert_eq!(host.ok(&["port", "r1"]), "");
    assert_eq!(host.json(&["inspect", "r1"])[0]["NetworkSettings"]["Ports"], serde_json::json!({}));
    host.ok(&["start", "r1"]);
    let again: u16 = host.ok(&["port", "r1", "80"]).trim().rsplit_once(':').unwrap().1.parse().unwrap();
    assert_ne!(again, ports[0]);

    // Ranges: identity collapsed in ps; a host range for one port.
    host.ok(&["run", "-d", "--name", "g1", "-p", "9000-9002:9000-9002", "-p", "8000-8010:80"]);
    assert_eq!(
        host.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]).lines().find(|l| l.starts_with("g1 ")),
        Some("g1 0.0.0.0:9000-9002->9000-9002/tcp, 0.0.0.0:8000->80/tcp")
    );
    assert_eq!(
        host.json(&["inspect", "g1"])[0]["HostConfig"]["PortBindings"]["80/tcp"],
        serde_json::json!([{"HostIp": "", "HostPort": "8000-8010"}])
    );
    // Freed at rm: the same ports publish again at once.
    host.ok(&["rm", "-f", "g1"]);
    assert!(!services(&host).iter().any(|s| (9000..=9002).contains(&s.1) || s.1 == 8000));
    host.ok(&["run", "-d", "--name", "g2", "-p", "9000-9002:9000-9002", "-p", "8000:80"]);
    host.ok(&["rm", "-f", "g2", "r1"]);
    assert_eq!(services(&host), BTreeSet::new());
    assert_eq!(reserved(&host), BTreeSet::new());
}

#[test]
fn a_thousand_port_range_publishes_and_goes_quickly() {
    let host = TestHost::start();
    let t = Instant::now();
    host.ok(&["run", "-d", "--name", "big", "-p", "20000-20999:20000-20999"]);
    let run = t.elapsed();
    let backend = ip(&host, "big", "bridge");
    let svc = services(&host);
    assert_eq!(svc.len(), 1000);
    assert!(svc.contains(&(ANY, 20999, TCP, backend, 20999)));
    assert_eq!(host.ok(&["ps", "--format", "{{.Ports}}"]).trim(), "0.0.0.0:20000-20999->20000-20999/tcp");
    let t = Instant::now();
    host.ok(&["rm", "-f", "big"]);
    let rm = t.elapsed();
    println!("1,000 ports: run {run:?}, rm {rm:?} (each: the whole CLI command)");
    // The same with UDP, and both at once.
    let t = Instant::now();
    host.ok(&["run", "-d", "--name", "big", "-p", "20000-20999:20000-20999", "-p", "20000-20999:20000-20999/udp"]);
    let run = t.elapsed();
    assert!(services(&host).contains(&(ANY, 20999, UDP, backend, 20999)));
    let t = Instant::now();
    host.ok(&["rm", "-f", "big"]);
    println!("2,000 ports (TCP + UDP): run {run:?}, rm {:?}", t.elapsed());
    assert!(services(&host).is_empty() && reserved(&host).is_empty());
}

#[test]
fn published_ports_survive_a_daemon_restart_exactly() {
    let mut host = TestHost::start();
    host.ok(&["run", "-d", "--name", "k1", "-p", "8080:80", "-p", "127.0.0.1::53/udp"]);
    let before = (services(&host), reserved(&host), host.ok(&["port", "k1"]));
    host.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    host.start_daemon();
    assert_eq!((services(&host), reserved(&host), host.ok(&["port", "k1"])), before);
    host.ok(&["rm", "-f", "k1"]);
    assert!(services(&host).is_empty());
}
