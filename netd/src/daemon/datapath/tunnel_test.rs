//! Overlay traffic between two hosts through the datapath's tunnel programs, with real packets:
//! two "host" netns joined by an underlay veth (192.0.2.0/24), each with a VXLAN device in
//! external mode, a datapath of its own and one container netns on the overlay network; the
//! remote endpoints, VNI and tunnel are set through the `Datapath` API as netd's control plane
//! sets them. Checks that containers on the two hosts ping each other, that the receiving
//! host refuses an inner source it does not know on the sending host (anti-spoofing), and that
//! an overlay peer on another network is isolated.
//!
//! Needs root: ignored by a plain `cargo test`, run by `cargo xtask test`. Every netns and pin
//! directory is removed at the end, also on panic.
use std::{net::Ipv4Addr, path::PathBuf, process::Command};

use netd_common::{DropReason, Hook};

use super::{
    prog_test_support::{ip, Fixture},
    Datapath, DatapathEndpoint, OverlayNetwork, RemoteEndpoint, Tunnel,
};
use crate::{netlink::Netlink, netns};

const VNI: u32 = 4242;
const NETWORK: u32 = 1;
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// Named netns of this test, deleted on drop.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, name: String) -> PathBuf {
        ip(&["netns", "add", &name]);
        self.0.push(name.clone());
        PathBuf::from("/run/netns").join(name)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// One simulated host: its netns, datapath, VXLAN device, and one container on the overlay.
struct Host {
    ns: PathBuf,
    container_ns: String,
    underlay: Ipv4Addr,
    endpoint: DatapathEndpoint,
    tunnel: Tunnel,
    fixture: Option<Fixture>,
}

impl Host {
    /// Builds the host's VXLAN device and container (`ip` in the host's netns) and loads its
    /// datapath there.
    fn start(test: &str, ns: PathBuf, container_ns: &str, underlay: Ipv4Addr, ip_addr: Ipv4Addr) -> Host {
        let (container_ns, pins) = (container_ns.to_string(), format!("{test}-{}", underlay.octets()[3]));
        let container = container_ns.clone();
        let vxlan = ensure_vxlan(&ns);
        assert_eq!(ensure_vxlan(&ns), vxlan, "a restart keeps the device");
        let (endpoint, tunnel, fixture) = netns::run_in(&ns, move || {
            ip(&["link", "set", "lo", "up"]);
            ip(&["link", "add", "ep", "type", "veth", "peer", "name", "eth0", "netns", &container]);
            ip(&["link", "set", "ep", "up"]);
            std::fs::write("/proc/sys/net/ipv4/conf/ep/forwarding", "1").unwrap();
            let in_container = |args: &[&str]| ip(&[&["-n", container.as_str()][..], args].concat());
            in_container(&["link", "set", "lo", "up"]);
            in_container(&["link", "set", "eth0", "address", &mac_text(&container_mac(ip_addr))]);
            in_container(&["addr", "add", &format!("{ip_addr}/24"), "dev", "eth0"]);
            in_container(&["link", "set", "eth0", "up", "mtu", "1450"]);
            in_container(&["route", "add", "default", "via", &GATEWAY.to_string()]);
            let index = |name: &str| nix::net::if_::if_nametoindex(name).expect("ifindex");
            let endpoint = DatapathEndpoint {
                ip: ip_addr,
                gateway: GATEWAY,
                network_index: NETWORK,
                internal: false,
                mac: container_mac(ip_addr),
                host_mac: read_mac("ep"),
                host_ifname: "ep".into(),
                host_ifindex: index("ep"),
            };
            let tunnel = Tunnel { ifname: "vx".into(), ifindex: vxlan };
            assert_eq!(index("vx"), vxlan);
            let fixture = Fixture::with_endpoints(&pins, &[]);
            fixture.datapath.add_endpoint(&endpoint)?;
            fixture.datapath.set_tunnel(Some(&tunnel))?;
            fixture.datapath.set_overlay_networks(&[OverlayNetwork { vni: VNI, network_index: NETWORK }])?;
            Ok((endpoint, tunnel, fixture))
        })
        .expect("set up the host");
        Host { ns, container_ns, underlay, endpoint, tunnel, fixture: Some(fixture) }
    }

    fn datapath(&self) -> &dyn Datapath {
        &self.fixture.as_ref().unwrap().datapath
    }

    /// `other`'s container as this host's control plane announces it.
    fn remote(&self, other: &Host, network_index: u32) -> RemoteEndpoint {
        RemoteEndpoint {
            ip: other.endpoint.ip,
            mac: other.endpoint.mac,
            host: other.underlay,
            vni: VNI,
            network_index,
            tunnel_ifindex: self.tunnel.ifindex,
        }
    }

    /// Whether this host's container gets an answer from `target` (two probes, bounded).
    fn pings(&self, target: Ipv4Addr) -> bool {
        let ns = format!("--net=/run/netns/{}", self.container_ns);
        Command::new("nsenter")
            .args([ns.as_str(), "ping", "-c", "2", "-i", "0.2", "-W", "1", "-s", "1000", &target.to_string()])
            .output()
            .expect("run ping")
            .status
            .success()
    }

    /// Packets the datapath counted as dropped for `reason` at `hook`.
    fn drops(&self, reason: DropReason, hook: Hook) -> u64 {
        let stats = self.datapath().drop_stats().expect("drop counters");
        stats.iter().filter(|s| s.code == reason as u8 && s.hook == hook.name()).map(|s| s.packets).sum()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Filters and the tunnel link go in the host's netns; the pins with the fixture.
        if let Some(fixture) = self.fixture.take() {
            let _ = netns::run_in(&self.ns, move || fixture.datapath.purge().map(|()| drop(fixture)));
        }
    }
}

/// netd's VXLAN device `vx` in the netns at `ns` (`Netlink::ensure_vxlan`, UDP 4789).
fn ensure_vxlan(ns: &std::path::Path) -> u32 {
    try_ensure_vxlan(ns).expect("ensure_vxlan")
}

/// `Netlink::ensure_vxlan("vx", 4789)` in the netns at `ns`, on a runtime of its own.
fn try_ensure_vxlan(ns: &std::path::Path) -> crate::error::Result<u32> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async { Netlink::open_in(ns)?.ensure_vxlan("vx", 4789).await })
}

fn container_mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The MAC of `ifname` in the calling thread's netns (sysfs shows the mounting process's).
fn read_mac(ifname: &str) -> [u8; 6] {
    let out = Command::new("ip").args(["-br", "link", "show", ifname]).output().expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let mac = text.split_whitespace().nth(2).unwrap_or_else(|| panic!("no MAC in {text:?}"));
    let bytes: Vec<u8> = mac.split(':').map(|h| u8::from_str_radix(h, 16).unwrap()).collect();
    bytes.try_into().expect("six bytes")
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn overlay_peers_on_two_hosts_talk_through_the_tunnel_and_nothing_else_gets_through() {
    let tag = format!("nt-tun-{}", std::process::id());
    let mut namespaces = Namespaces(vec![]);
    let (ns_a, ns_b) = (namespaces.add(format!("{tag}-a")), namespaces.add(format!("{tag}-b")));
    let (ca, cb) = (format!("{tag}-ca"), format!("{tag}-cb"));
    namespaces.add(ca.clone());
    namespaces.add(cb.clone());
    // The underlay: 192.0.2.1 (a) — 192.0.2.2 (b), TEST-NET-1, only inside the test's netns.
    let (ua, ub) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    ip(&[
        "-n",
        &format!("{tag}-a"),
        "link",
        "add",
        "ul",
        "type",
        "veth",
        "peer",
        "name",
        "ul",
        "netns",
        &format!("{tag}-b"),
    ]);
    for (ns, addr) in [(format!("{tag}-a"), ua), (format!("{tag}-b"), ub)] {
        ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "ul"]);
        ip(&["-n", &ns, "link", "set", "ul", "up"]);
    }
    // A link of netd's VXLAN name that is not one in external mode is refused, not taken.
    ip(&["-n", &format!("{tag}-a"), "link", "add", "vx", "type", "veth", "peer", "name", "vx-peer"]);
    let refused = try_ensure_vxlan(&ns_a);
    assert!(
        matches!(&refused, Err(crate::error::Error::Conflict(m)) if m == "vx exists and is not a VXLAN device in external mode"),
        "{refused:?}"
    );
    ip(&["-n", &format!("{tag}-a"), "link", "del", "vx"]);
    let a = Host::start("tunnel_a", ns_a, &ca, ua, Ipv4Addr::new(10, 99, 0, 2));
    let b = Host::start("tunnel_b", ns_b, &cb, ub, Ipv4Addr::new(10, 99, 0, 3));

    // Each host knows the other's container: they talk through the tunnel (ARP answered
    // locally with the peer's MAC, the frame encapsulated to the peer's host, decapsulated and
    // redirected into the container there).
    a.datapath().add_remote_endpoint(&a.remote(&b, NETWORK)).unwrap();
    b.datapath().add_remote_endpoint(&b.remote(&a, NETWORK)).unwrap();
    assert!(a.pings(b.endpoint.ip), "a's container cannot ping b's through the tunnel");
    assert!(b.pings(a.endpoint.ip), "b's container cannot ping a's through the tunnel");

    // b forgets a's container: its packets still reach b, whose tunnel ingress refuses an
    // inner source that is not an overlay endpoint on the sending host.
    b.datapath().remove_remote_endpoint(a.endpoint.ip).unwrap();
    let refused = b.drops(DropReason::TunnelUnknownEndpoint, Hook::TunnelIngress);
    assert!(!a.pings(b.endpoint.ip), "b accepted a source it does not know");
    assert!(
        b.drops(DropReason::TunnelUnknownEndpoint, Hook::TunnelIngress) > refused,
        "b's tunnel ingress did not drop it"
    );
    b.datapath().keep_remote_endpoints(&[b.remote(&a, NETWORK)]).unwrap();
    assert!(a.pings(b.endpoint.ip), "after the resync");

    // b's container announced on another network: a isolates it at its own endpoint.
    a.datapath().keep_remote_endpoints(&[a.remote(&b, NETWORK + 1)]).unwrap();
    let isolated = a.drops(DropReason::Isolation, Hook::EndpointIngress);
    assert!(!a.pings(b.endpoint.ip), "a reached a peer on another network");
    assert!(a.drops(DropReason::Isolation, Hook::EndpointIngress) > isolated, "not dropped as isolation");

    // A VNI b does not have: dropped at b's tunnel ingress.
    a.datapath().keep_remote_endpoints(&[a.remote(&b, NETWORK)]).unwrap();
    b.datapath().set_overlay_networks(&[]).unwrap();
    assert!(!a.pings(b.endpoint.ip), "b took a VNI it does not have");
    assert!(b.drops(DropReason::TunnelUnknownNetwork, Hook::TunnelIngress) > 0);
    drop((a, b));
    drop(namespaces);
}
