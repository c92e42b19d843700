//! Host clients of published ports (issue 11, item 3's second bullet; item 4's host-bind
//! safety), end to end: the socket-LB at the cgroup2 root sends a host client's TCP connect and
//! UDP datagrams for 127.0.0.1:port and the host's address:port straight to the container, and
//! shows the published address as the peer; host binds on a published port get EADDRINUSE;
//! published ports are reserved from the host's ephemeral ports; other netns are untouched;
//! the path survives `kill -9` of the daemon and a restart; `system reset` detaches it.
//!
//! Ports are published by writing the daemon's pinned maps (`NETD_SVC_V1`, `NETD_RSVD_V1`)
//! as `Datapath::publish` does, until `-p` is on this branch.
use std::{
    io::ErrorKind,
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket},
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    maps::{HashMap, Map, MapData},
    programs::links::PinnedLink,
    Pod,
};
use netd_tests::{
    in_netns,
    probe::{exchange, tcp_peer, udp_peer, v4, IO_TIMEOUT},
    servers::{TcpPeerServer, UdpPeerServer},
    sh, TestHost,
};
use nix::sys::signal::Signal;

const UPLINK_ADDR: &str = "198.51.100.2";
const TCP: u8 = 6;
const UDP: u8 = 17;
/// The socket-LB's programs, and where their links are pinned.
const SOCK_PROGRAMS: [&str; 5] = [
    "netd_sock_connect4",
    "netd_sock_sendmsg4",
    "netd_sock_recvmsg4",
    "netd_sock_getpeername4",
    "netd_sock_post_bind4",
];

/// netd-common's `ServiceKey`/`ServiceValue`/`PortKey`, byte for byte.
#[repr(C)]
#[derive(Clone, Copy)]
struct ServiceKey {
    addr: u32,
    port: u16,
    proto: u8,
    _pad: u8,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct ServiceValue {
    backend_addr: u32,
    backend_port: u16,
    _pad: u16,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct PortKey {
    port: u16,
    proto: u8,
    _pad: u8,
}
// SAFETY: repr(C), Copy, no implicit padding.
unsafe impl Pod for ServiceKey {}
// SAFETY: as above.
unsafe impl Pod for ServiceValue {}
// SAFETY: as above.
unsafe impl Pod for PortKey {}

fn key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// Publishes `host_addr:port/proto` (None: every address) on `backend:backend_port` in the
/// daemon's pinned maps.
fn publish(host: &TestHost, host_addr: Option<Ipv4Addr>, port: u16, proto: u8, backend: Ipv4Addr, backend_port: u16) {
    let data = MapData::from_pin(host.bpffs.join("maps/NETD_SVC_V1")).expect("open the pinned service map");
    let mut services: HashMap<MapData, ServiceKey, ServiceValue> = HashMap::try_from(Map::HashMap(data)).unwrap();
    let k = ServiceKey { addr: host_addr.map(key).unwrap_or(0), port, proto, _pad: 0 };
    services.insert(k, ServiceValue { backend_addr: key(backend), backend_port, _pad: 0 }, 0).unwrap();
    let data = MapData::from_pin(host.bpffs.join("maps/NETD_RSVD_V1")).expect("open the pinned reserved-port map");
    let mut reserved: HashMap<MapData, PortKey, u8> = HashMap::try_from(Map::HashMap(data)).unwrap();
    reserved.insert(PortKey { port, proto, _pad: 0 }, 1, 0).unwrap();
}

fn host_ns(host: &TestHost) -> PathBuf {
    host.netns_path(&host.host_ns)
}

fn outside_ns(host: &TestHost) -> PathBuf {
    host.netns_path(&host.outside_ns)
}

/// A network `net` with a command-less container `name`; its address and netns.
fn backend(host: &TestHost, net: &str, name: &str) -> (Ipv4Addr, PathBuf) {
    host.ok(&["network", "create", net]);
    host.ok(&["run", "-d", "--name", name, "--network", net]);
    (host.ip_of(name, net).parse().unwrap(), host.container_netns(name))
}

/// Connects from `netns` to `dst` (a TcpPeerServer behind it), exchanges a line and returns
/// what the client's getpeername says and the source the server saw.
fn tcp_through(netns: &Path, dst: SocketAddrV4) -> std::io::Result<(SocketAddr, SocketAddrV4)> {
    let (mut stream, seen) = tcp_peer(netns, None, dst, IO_TIMEOUT)?;
    exchange(&mut stream, "hello")?;
    Ok((stream.peer_addr()?, seen))
}

/// Binds `proto` on `addr:port` in `netns`; the error kind when refused.
fn bind_in(netns: &Path, addr: Ipv4Addr, port: u16, proto: u8) -> Result<(), (ErrorKind, Option<i32>)> {
    in_netns(netns, move || {
        let res = if proto == TCP {
            TcpListener::bind((addr, port)).map(drop)
        } else {
            UdpSocket::bind((addr, port)).map(drop)
        };
        res.map_err(|e| (e.kind(), e.raw_os_error()))
    })
}

fn log_tail(host: &TestHost) -> String {
    let log = host.daemon_log();
    log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

#[test]
fn host_tcp_clients_reach_a_published_port_on_loopback_and_the_host_address() {
    let host = TestHost::start();
    let (ip, netns) = backend(&host, "ph-tcp", "web");
    let _server = TcpPeerServer::start(&netns, "0.0.0.0", 80);
    publish(&host, None, 8080, TCP, ip, 80);
    for dst in ["127.0.0.1", UPLINK_ADDR] {
        let (peer, seen) = tcp_through(&host_ns(&host), v4(dst, 8080))
            .unwrap_or_else(|e| panic!("{dst}:8080: {e}\n{}", log_tail(&host)));
        assert_eq!(peer, SocketAddr::V4(v4(dst, 8080)), "getpeername must show the published address");
        assert_ne!(seen.ip(), &Ipv4Addr::LOCALHOST, "the backend sees the host's address on its network, not loopback");
    }
    // An address-specific publish answers only on that address.
    publish(&host, Some(Ipv4Addr::LOCALHOST), 8081, TCP, ip, 80);
    tcp_through(&host_ns(&host), v4("127.0.0.1", 8081)).expect("127.0.0.1:8081");
    let err = tcp_through(&host_ns(&host), v4(UPLINK_ADDR, 8081)).expect_err("8081 is published on 127.0.0.1 only");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    // Another netns (the outside) is not redirected: nothing listens there.
    let err = tcp_through(&outside_ns(&host), v4("127.0.0.1", 8080)).expect_err("outside netns redirected");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn host_udp_clients_see_replies_from_the_published_address() {
    let host = TestHost::start();
    let (ip, netns) = backend(&host, "ph-udp", "dns");
    let _server = UdpPeerServer::start(&netns, "0.0.0.0", 7000);
    publish(&host, None, 5353, UDP, ip, 7000);
    for dst in ["127.0.0.1", UPLINK_ADDR] {
        // udp_peer accepts only a reply whose source is exactly `dst` (recvmsg4 at work).
        let seen = udp_peer(&host_ns(&host), None, v4(dst, 5353));
        assert!(seen.is_some(), "no reply from {dst}:5353\n{}", log_tail(&host));
    }
    // A connected UDP socket's peer (getpeername4).
    let peer = in_netns(&host_ns(&host), || {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect("127.0.0.1:5353").unwrap();
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        socket.send(b"hi").unwrap();
        let mut buf = [0u8; 64];
        socket.recv(&mut buf).expect("reply on the connected socket");
        socket.peer_addr().unwrap()
    });
    assert_eq!(peer, SocketAddr::V4(v4("127.0.0.1", 5353)));
    // The outside netns gets no answer from its own 127.0.0.1:5353.
    assert_eq!(udp_peer(&outside_ns(&host), None, v4("127.0.0.1", 5353)), None);
}

#[test]
fn host_binds_on_a_published_port_fail_with_eaddrinuse() {
    let host = TestHost::start();
    let (ip, _) = backend(&host, "ph-bind", "web");
    publish(&host, None, 8080, TCP, ip, 80);
    publish(&host, Some(Ipv4Addr::LOCALHOST), 8082, UDP, ip, 53);
    let ns = host_ns(&host);
    let in_use = Err((ErrorKind::AddrInUse, Some(libc::EADDRINUSE)));
    assert_eq!(bind_in(&ns, Ipv4Addr::UNSPECIFIED, 8080, TCP), in_use);
    assert_eq!(bind_in(&ns, Ipv4Addr::LOCALHOST, 8080, TCP), in_use);
    assert_eq!(bind_in(&ns, UPLINK_ADDR.parse().unwrap(), 8080, TCP), in_use);
    assert_eq!(bind_in(&ns, Ipv4Addr::UNSPECIFIED, 8082, UDP), in_use);
    assert_eq!(bind_in(&ns, Ipv4Addr::LOCALHOST, 8082, UDP), in_use);
    // Other ports, the other protocol, another address for an address-specific publish, and
    // other netns are not touched.
    assert_eq!(bind_in(&ns, Ipv4Addr::UNSPECIFIED, 8083, TCP), Ok(()));
    assert_eq!(bind_in(&ns, Ipv4Addr::UNSPECIFIED, 8080, UDP), Ok(()));
    assert_eq!(bind_in(&ns, UPLINK_ADDR.parse().unwrap(), 8082, UDP), Ok(()));
    assert_eq!(bind_in(&outside_ns(&host), Ipv4Addr::UNSPECIFIED, 8080, TCP), Ok(()));
}

/// (link id, program id) of each socket-LB link pinned under the daemon's bpffs dir.
fn socket_lb_links(host: &TestHost) -> Vec<(u32, u32)> {
    SOCK_PROGRAMS
        .iter()
        .map(|p| {
            let pin = host.bpffs.join("links").join(p).join("cgroup2-root");
            let link = PinnedLink::from_pin(&pin).unwrap_or_else(|e| panic!("{}: {e}", pin.display()));
            let info = aya::programs::links::FdLink::from(link).info().unwrap();
            (info.id(), info.program_id())
        })
        .collect()
}

/// Program ids attached at the cgroup2 root (bpftool), every daemon's.
fn cgroup_root_programs() -> Vec<u32> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = mountinfo
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4).unwrap().to_string())
        })
        .expect("a cgroup2 mount");
    let out = sh(&["bpftool", "-j", "cgroup", "show", &root]);
    let progs: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    progs.as_array().cloned().unwrap_or_default().iter().filter_map(|p| p["id"].as_u64()).map(|id| id as u32).collect()
}

#[test]
fn the_host_path_survives_kill_9_and_a_restart_and_reset_detaches_it() {
    let mut host = TestHost::start();
    let (ip, netns) = backend(&host, "ph-life", "web");
    let _server = TcpPeerServer::start(&netns, "0.0.0.0", 80);
    publish(&host, None, 8080, TCP, ip, 80);
    let first = socket_lb_links(&host);
    let attached = cgroup_root_programs();
    assert!(first.iter().all(|(_, prog)| attached.contains(prog)), "{first:?} not all in {attached:?}");

    host.stop_daemon(Signal::SIGKILL);
    tcp_through(&host_ns(&host), v4("127.0.0.1", 8080)).expect("host → 127.0.0.1:8080 with the daemon down");

    host.start_daemon();
    tcp_through(&host_ns(&host), v4("127.0.0.1", 8080)).expect("host → 127.0.0.1:8080 after a restart");
    let second = socket_lb_links(&host);
    let attached = cgroup_root_programs();
    assert!(second.iter().all(|(_, prog)| attached.contains(prog)), "{second:?} not all in {attached:?}");
    // The restarted daemon adopted the same links (BPF_LINK_UPDATE) with its own programs; the
    // previous daemon's programs run nowhere any more.
    for ((link1, prog1), (link2, prog2)) in first.iter().zip(&second) {
        assert_eq!(link1, link2, "link not adopted:\n{}", log_tail(&host));
        assert_ne!(prog1, prog2, "the adopted link still runs the previous daemon's program");
        assert!(!attached.contains(prog1), "program {prog1} of the killed daemon still attached");
    }

    host.ok(&["system", "reset"]);
    let _ = host.wait_daemon_exit(Duration::from_secs(30));
    let live: Vec<u32> = aya::programs::loaded_links().filter_map(Result::ok).map(|l| l.id()).collect();
    assert!(second.iter().all(|(link, _)| !live.contains(link)), "links {second:?} survived the reset");
    let attached = cgroup_root_programs();
    assert!(
        second.iter().all(|(_, prog)| !attached.contains(prog)),
        "programs {second:?} still attached at the cgroup2 root: {attached:?}"
    );
}
