//! Embedded DNS (DESIGN §5), with real queries: `dig` and `ping` inside containers, against
//! 127.0.0.11. Names that are not containers' go to a fake upstream resolver that each test
//! runs in its outside netns (the daemon's `--dns-upstream`, set by the harness): no query
//! ever leaves the test's namespaces.
use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, UdpSocket},
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{rdata::A, RData, Record, RecordType},
};
use netd_tests::{sh, TestHost, OUTSIDE_ADDR};
use nix::sys::signal::Signal;

/// What the fake upstream answers (A records); every other name is NXDOMAIN.
const EXTERNAL_NAME: &str = "example.test";
const EXTERNAL_ADDR: &str = "203.0.113.7";

/// A tiny DNS server (UDP and TCP) inside a netns: A records from a fixed zone, NXDOMAIN for
/// the rest. It records what it was asked. Stops on drop; its loops also end by themselves
/// after a few minutes.
struct FakeUpstream {
    stop: Arc<AtomicBool>,
    asked: Arc<Mutex<Vec<(String, &'static str)>>>,
    threads: Vec<JoinHandle<()>>,
}

const FAKE_UPSTREAM_LIFETIME: Duration = Duration::from_secs(300);

impl FakeUpstream {
    fn start(netns: &Path, addr: &str, zone: &[(&str, &str)]) -> Self {
        let bind: SocketAddr = format!("{addr}:53").parse().unwrap();
        let (udp, tcp) = netd_tests::in_netns(netns, move || {
            (UdpSocket::bind(bind).expect("bind fake upstream (udp)"), TcpListener::bind(bind).expect("bind (tcp)"))
        });
        udp.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let zone: Arc<BTreeMap<String, std::net::Ipv4Addr>> =
            Arc::new(zone.iter().map(|(n, ip)| (format!("{n}."), ip.parse().unwrap())).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let deadline = Instant::now() + FAKE_UPSTREAM_LIFETIME;
        let running = {
            let stop = stop.clone();
            move || !stop.load(Ordering::SeqCst) && Instant::now() < deadline
        };
        let udp_thread = {
            let (zone, asked, running) = (zone.clone(), asked.clone(), running.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while running() {
                    let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(reply) = reply(&zone, &asked, &buf[..n], "udp") {
                        let _ = udp.send_to(&reply, peer);
                    }
                }
            })
        };
        let tcp_thread = {
            let asked = asked.clone();
            std::thread::spawn(move || {
                while running() {
                    match tcp.accept() {
                        Ok((mut conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                            let mut len = [0u8; 2];
                            while conn.read_exact(&mut len).is_ok() {
                                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                                if conn.read_exact(&mut query).is_err() {
                                    break;
                                }
                                let Some(answer) = reply(&zone, &asked, &query, "tcp") else {
                                    break;
                                };
                                let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
                                framed.extend_from_slice(&answer);
                                if conn.write_all(&framed).is_err() {
                                    break;
                                }
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
        };
        FakeUpstream { stop, asked, threads: vec![udp_thread, tcp_thread] }
    }

    /// (lowercase name with its final dot, "udp"/"tcp") of every query so far.
    fn asked(&self) -> Vec<(String, &'static str)> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn reply(
    zone: &BTreeMap<String, std::net::Ipv4Addr>,
    asked: &Mutex<Vec<(String, &'static str)>>,
    raw: &[u8],
    transport: &'static str,
) -> Option<Vec<u8>> {
    let query = Message::from_vec(raw).ok()?;
    let question = query.queries.first()?.clone();
    let name = question.name().to_ascii().to_ascii_lowercase();
    asked.lock().unwrap().push((name.clone(), transport));
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.queries = query.queries.clone();
    match zone.get(&name) {
        Some(ip) if question.query_type() == RecordType::A => {
            response.answers.push(Record::from_rdata(question.name().clone(), 60, RData::A(A(*ip))));
        }
        Some(_) => {}
        None => response.metadata.response_code = ResponseCode::NXDomain,
    }
    response.to_vec().ok()
}

fn start_upstream(host: &TestHost) -> FakeUpstream {
    FakeUpstream::start(&host.netns_path(&host.outside_ns), OUTSIDE_ADDR, &[(EXTERNAL_NAME, EXTERNAL_ADDR)])
}

/// `dig` in the container with bounded retries; returns stdout.
fn dig(host: &TestHost, container: &str, args: &[&str]) -> String {
    let mut cmd = vec!["exec", container, "--", "dig", "+time=3", "+tries=2"];
    cmd.extend_from_slice(args);
    host.ok(&cmd)
}

/// `dig +short NAME`: the answers, one per line.
fn short(host: &TestHost, container: &str, name: &str) -> Vec<String> {
    dig(host, container, &["+short", name]).lines().map(str::to_string).collect()
}

/// The response code `dig` reports for NAME (NOERROR, NXDOMAIN, SERVFAIL...).
fn status(host: &TestHost, container: &str, name: &str) -> String {
    let out = dig(host, container, &["+noall", "+comments", name]);
    let status = out.split("status: ").nth(1).and_then(|s| s.split(',').next());
    status.unwrap_or_else(|| panic!("no status in dig output:\n{out}")).to_string()
}

fn ping(host: &TestHost, from: &str, to: &str) -> String {
    host.ok(&["exec", from, "--", "ping", "-c", "1", "-W", "2", to])
}

#[test]
fn container_names_resolve_on_a_user_network_and_ping_works_both_ways() {
    let host = TestHost::start();
    // Seed 000: one starts on the default bridge, joins my-net and leaves the bridge; two
    // starts on my-net.
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-itd", "--name", "one", "busybox"]);
    host.ok(&["network", "connect", "my-net", "one"]);
    host.ok(&["network", "disconnect", "bridge", "one"]);
    host.ok(&["run", "-itd", "--name", "two", "--hostname", "second", "--network", "my-net", "busybox"]);
    let (one_ip, two_ip) = (host.ip_of("one", "my-net"), host.ip_of("two", "my-net"));

    assert!(ping(&host, "one", "two").contains(&format!("PING two ({two_ip})")));
    assert!(ping(&host, "two", "one").contains(&format!("PING one ({one_ip})")));

    assert_eq!(
        host.ok(&["exec", "one", "--", "cat", "/etc/resolv.conf"]).lines().next(),
        Some("nameserver 127.0.0.11")
    );
    assert!(host.ok(&["exec", "one", "--", "cat", "/etc/resolv.conf"]).ends_with("options ndots:0\n"));
    let full = dig(&host, "one", &["two"]);
    assert!(full.contains("SERVER: 127.0.0.11#53"), "{full}");
    // Name, hostname, short id, name.network; case does not matter; AAAA has no data.
    let two_id = host.json(&["inspect", "two"])[0]["Id"].as_str().unwrap()[..12].to_string();
    for name in ["two", "second", &two_id, "two.my-net", "TWO"] {
        assert_eq!(short(&host, "one", name), [two_ip.as_str()], "{name}");
    }
    assert_eq!(short(&host, "two", "one"), [one_ip.as_str()]);
    assert_eq!(short(&host, "two", "two"), [two_ip.as_str()], "its own name");
    assert_eq!(dig(&host, "one", &["+short", "AAAA", "two"]), "");
    assert_eq!(status(&host, "one", "two"), "NOERROR");
    // Reverse lookups of containers' addresses are answered too.
    assert_eq!(dig(&host, "one", &["+short", "-x", &two_ip]).trim(), "two.my-net.");
}

#[test]
fn an_alias_of_several_containers_returns_every_address_in_rotating_order() {
    let host = TestHost::start();
    let _upstream = start_upstream(&host);
    host.ok(&["network", "create", "my-net"]);
    for name in ["web1", "web2", "web3"] {
        host.ok(&["run", "-d", "--name", name, "--network", "my-net", "--network-alias", "web", "nginx"]);
    }
    host.ok(&["run", "-d", "--name", "client", "--network", "my-net", "busybox"]);
    let mut all: Vec<String> = ["web1", "web2", "web3"].iter().map(|c| host.ip_of(c, "my-net")).collect();
    all.sort();
    let first = short(&host, "client", "web");
    let second = short(&host, "client", "web");
    for answer in [&first, &second] {
        let mut sorted = answer.clone();
        sorted.sort();
        assert_eq!(sorted, all, "every address, every time");
    }
    assert_ne!(first[0], second[0], "the order rotates: {first:?} then {second:?}");
    assert!(ping(&host, "client", "web").contains("1 received"));

    // `network connect --alias`: the alias resolves on that network.
    host.ok(&["network", "create", "backend"]);
    host.ok(&["network", "connect", "--alias", "api", "backend", "web1"]);
    host.ok(&["network", "connect", "backend", "client"]);
    assert_eq!(short(&host, "client", "api"), [host.ip_of("web1", "backend")]);
    // web1's name is answered from client's first network that has it (my-net).
    assert_eq!(short(&host, "client", "web1"), [host.ip_of("web1", "my-net")]);

    // Removing a container takes its address out of the alias.
    host.ok(&["rm", "-f", "web3"]);
    let mut rest = short(&host, "client", "web");
    rest.sort();
    let mut expected: Vec<String> = ["web1", "web2"].iter().map(|c| host.ip_of(c, "my-net")).collect();
    expected.sort();
    assert_eq!(rest, expected);
}

#[test]
fn names_resolve_only_on_shared_networks_and_disconnect_removes_them() {
    let host = TestHost::start();
    let _upstream = start_upstream(&host);
    host.ok(&["network", "create", "net-a"]);
    host.ok(&["network", "create", "net-b"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "net-a", "busybox"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "net-a", "busybox"]);
    host.ok(&["run", "-d", "--name", "three", "--network", "net-b", "--network-alias", "third", "busybox"]);
    host.ok(&["run", "-d", "--name", "plain", "busybox"]);
    for name in ["three", "third", "plain"] {
        assert_eq!(status(&host, "one", name), "NXDOMAIN", "{name} is on no network one shares");
    }
    assert_eq!(status(&host, "three", "one"), "NXDOMAIN");

    // Connected to net-b, one sees three; three sees one.
    host.ok(&["network", "connect", "net-b", "one"]);
    assert_eq!(short(&host, "one", "third"), [host.ip_of("three", "net-b")]);
    assert_eq!(short(&host, "three", "one"), [host.ip_of("one", "net-b")]);

    host.ok(&["network", "disconnect", "net-a", "two"]);
    assert_eq!(status(&host, "one", "two"), "NXDOMAIN");
    // two has no network left: no embedded DNS in its netns any more.
    assert!(!host.ok(&["exec", "two", "--", "cat", "/etc/resolv.conf"]).contains("127.0.0.11"));
    assert!(!host.netd(&["exec", "two", "--", "dig", "+time=1", "+tries=1", "@127.0.0.11", "one"]).status.success());
    // Back on the network, its name comes back and its listener too.
    host.ok(&["network", "connect", "net-a", "two"]);
    assert_eq!(short(&host, "one", "two"), [host.ip_of("two", "net-a")]);
    assert_eq!(short(&host, "two", "one"), [host.ip_of("one", "net-a")]);
}

#[test]
fn the_default_bridge_has_no_embedded_dns() {
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "b1", "busybox"]);
    host.ok(&["run", "-d", "--name", "b2", "busybox"]);
    let resolv = host.ok(&["exec", "b1", "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with(&format!("nameserver {OUTSIDE_ADDR}\n")), "the daemon's upstream: {resolv}");
    assert!(!resolv.contains("127.0.0.11") && !resolv.contains("ndots"), "{resolv}");
    let out = host.netd(&["exec", "b1", "--", "dig", "+time=1", "+tries=1", "@127.0.0.11", "b2"]);
    assert!(!out.status.success(), "something answers on 127.0.0.11: {}", String::from_utf8_lossy(&out.stdout));
    // By address only, as in Docker.
    assert!(host
        .ok(&["exec", "b1", "--", "ping", "-c", "1", "-W", "2", &host.ip_of("b2", "bridge")])
        .contains("1 received"));
}

#[test]
fn host_docker_internal_is_the_asking_containers_gateway() {
    let host = TestHost::start();
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["network", "create", "--subnet", "10.77.0.0/24", "--gateway", "10.77.0.254", "other"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "other", "busybox"]);
    assert_eq!(short(&host, "one", "host.docker.internal"), ["172.18.0.1"]);
    assert_eq!(short(&host, "two", "host.docker.internal"), ["10.77.0.254"]);
    assert!(ping(&host, "one", "host.docker.internal").contains("PING host.docker.internal (172.18.0.1)"));
}

#[test]
fn other_names_are_forwarded_upstream_over_udp_and_tcp() {
    let host = TestHost::start();
    let upstream = start_upstream(&host);
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "my-net", "busybox"]);

    assert_eq!(short(&host, "one", EXTERNAL_NAME), [EXTERNAL_ADDR]);
    assert_eq!(dig(&host, "one", &["+tcp", "+short", EXTERNAL_NAME]).trim(), EXTERNAL_ADDR);
    assert_eq!(status(&host, "one", "nosuch.test"), "NXDOMAIN");
    let asked = upstream.asked();
    let name = format!("{EXTERNAL_NAME}.");
    assert!(asked.contains(&(name.clone(), "udp")) && asked.contains(&(name, "tcp")), "{asked:?}");
    // Container names are answered locally, over TCP too, and never asked upstream.
    assert_eq!(dig(&host, "one", &["+tcp", "+short", "two"]).trim(), host.ip_of("two", "my-net"));
    assert!(!upstream.asked().iter().any(|(n, _)| n == "two."), "{:?}", upstream.asked());
}

#[test]
fn dns_servers_of_a_container_replace_the_upstreams() {
    let host = TestHost::start();
    let _upstream = start_upstream(&host);
    // A second resolver in the outside netns with its own answer for the same name.
    let outside = host.netns_path(&host.outside_ns);
    sh(&["ip", "-n", &host.outside_ns, "addr", "add", "198.51.100.3/24", "dev", "eth0"]);
    let own = FakeUpstream::start(&outside, "198.51.100.3", &[(EXTERNAL_NAME, "203.0.113.3")]);
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-d", "--name", "plain", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "own", "--network", "my-net", "--dns", "198.51.100.3", "busybox"]);
    assert_eq!(short(&host, "plain", EXTERNAL_NAME), [EXTERNAL_ADDR]);
    assert_eq!(short(&host, "own", EXTERNAL_NAME), ["203.0.113.3"]);
    assert_eq!(short(&host, "own", "plain"), [host.ip_of("plain", "my-net")], "container names stay local");
    assert_eq!(own.asked(), [(format!("{EXTERNAL_NAME}."), "udp")]);
    assert_eq!(host.json(&["inspect", "own"])[0]["HostConfig"]["Dns"], serde_json::json!(["198.51.100.3"]));

    // On the default bridge, --dns is the resolv.conf.
    host.ok(&["run", "-d", "--name", "bridged", "--dns", "198.51.100.3", "--dns", "198.51.100.1", "busybox"]);
    assert_eq!(
        host.ok(&["exec", "bridged", "--", "cat", "/etc/resolv.conf"]).lines().take(2).collect::<Vec<_>>(),
        ["nameserver 198.51.100.3", "nameserver 198.51.100.1"]
    );
    assert_eq!(
        host.fails(&["run", "-d", "--name", "x1", "--network", "container:plain", "--dns", "198.51.100.3", "busybox"]),
        "netd: Error response from daemon: conflicting options: dns and the network mode.\nSee 'netd run --help'."
    );
}

#[test]
fn containers_sharing_a_netns_share_its_listener() {
    let host = TestHost::start();
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-d", "--name", "src", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "peer", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "sidecar", "--network", "container:src", "busybox"]);
    assert_eq!(short(&host, "sidecar", "peer"), [host.ip_of("peer", "my-net")]);
    assert_eq!(short(&host, "sidecar", "src"), [host.ip_of("src", "my-net")]);
    assert!(ping(&host, "sidecar", "peer").contains("1 received"));
}

#[test]
fn dns_keeps_working_after_a_daemon_restart_and_a_container_restart() {
    let mut host = TestHost::start();
    let upstream = start_upstream(&host);
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "two", "--network", "my-net", "--network-alias", "db", "busybox"]);
    let two_ip = host.ip_of("two", "my-net");
    assert_eq!(short(&host, "one", "db"), [two_ip.as_str()]);

    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        host.stop_daemon(signal);
        host.start_daemon();
        assert_eq!(short(&host, "one", "db"), [two_ip.as_str()], "after {signal}");
        assert_eq!(short(&host, "two", "one"), [host.ip_of("one", "my-net")], "after {signal}");
        assert_eq!(short(&host, "one", EXTERNAL_NAME), [EXTERNAL_ADDR], "after {signal}");
        assert!(ping(&host, "one", "two").contains("1 received"), "after {signal}");
    }

    // A stopped container leaves the names; started again (in a new netns), it is back and
    // has a listener of its own again.
    host.ok(&["stop", "two"]);
    assert_eq!(status(&host, "one", "db"), "NXDOMAIN");
    host.ok(&["start", "two"]);
    assert_eq!(short(&host, "one", "db"), [host.ip_of("two", "my-net")]);
    assert_eq!(short(&host, "two", "one"), [host.ip_of("one", "my-net")]);
    drop(upstream);
}

/// Local answers as Docker 20.10's 127.0.0.11 gives them (measured with dig in a Docker
/// container): flags `qr rd ra` (RD as asked), no AA, no EDNS OPT record although dig asks
/// with one, TTL 600; AAAA of a container name is NOERROR without records; ANY is forwarded;
/// busybox's nslookup says `Non-authoritative answer:`. A name no upstream answers gets no
/// answer at all (the client times out), as in Docker.
#[test]
fn local_answers_carry_dockers_flags_and_unanswered_names_get_nothing() {
    let host = TestHost::start();
    host.ok(&["network", "create", "my-net"]);
    host.ok(&["run", "-d", "--name", "one", "--network", "my-net", "busybox"]);
    host.ok(&["run", "-d", "--name", "web", "--network", "my-net", "busybox"]);
    let web = host.ip_of("web", "my-net");

    let out = dig(&host, "one", &["+noall", "+comments", "+answer", "web"]);
    assert!(out.contains("status: NOERROR") && out.contains("flags: qr rd ra;"), "{out}");
    assert!(out.contains("ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0") && !out.contains("OPT PSEUDOSECTION"), "{out}");
    assert!(out.contains(&format!("web.\t\t\t600\tIN\tA\t{web}")), "{out}");
    // Names not compressed, as Docker's (miekg/dns) answers: 40 bytes, as dig measured there.
    let out = dig(&host, "one", &["+noall", "+stats", "web"]);
    assert!(out.contains("MSG SIZE  rcvd: 40"), "{out}");
    let out = dig(&host, "one", &["+noall", "+comments", "+norecurse", "web"]);
    assert!(out.contains("flags: qr ra;"), "{out}");
    let out = dig(&host, "one", &["+noall", "+comments", "web", "AAAA"]);
    assert!(out.contains("status: NOERROR") && out.contains("ANSWER: 0,") && out.contains("flags: qr rd ra;"), "{out}");
    let out = dig(&host, "one", &["+noall", "+comments", "+answer", "-x", &web]);
    assert!(out.contains("flags: qr rd ra;") && out.contains("600\tIN\tPTR\tweb.my-net."), "{out}");
    let nslookup = host.ok(&["exec", "one", "busybox", "nslookup", "web"]);
    assert!(nslookup.contains(&format!("Non-authoritative answer:\nName:\tweb\nAddress: {web}\n")), "{nslookup}");

    // No upstream runs: unknown names (and ANY) get no answer.
    let out = host.netd(&["exec", "one", "--", "dig", "+time=1", "+tries=1", "nosuch.test"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("timed out") && !stdout.contains("status:"), "{stdout}");
    let out = host.netd(&["exec", "one", "--", "dig", "+time=1", "+tries=1", "web", "ANY"]);
    assert!(!out.status.success(), "ANY is forwarded: {}", String::from_utf8_lossy(&out.stdout));
    // With one, ANY goes there.
    let upstream = start_upstream(&host);
    assert_eq!(status(&host, "one", "nosuch.test"), "NXDOMAIN");
    let out = dig(&host, "one", &["+noall", "+comments", "web", "ANY"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(upstream.asked().iter().any(|(n, _)| n == "web."), "{:?}", upstream.asked());
}
