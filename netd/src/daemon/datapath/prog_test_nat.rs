//! `BPF_PROG_TEST_RUN` tests of the masquerade datapath: source NAT at the endpoint program
//! (`netd_ep_ingress`), the reverse at the uplink program (`netd_up_ingress`), NAT port choice,
//! conntrack states, and the drops of both. Every expected packet is built from scratch by the
//! test's own builders (checksums computed over the whole header, never incrementally), and the
//! checksums of every packet a program returns are verified on their own as well.
//!
//! Each test runs on a thread in a network namespace of its own (`in_private_netns`): test-run
//! packets arrive on that namespace's loopback (ifindex 1), where the endpoint program's
//! `bpf_fib_lookup` starts. The namespace gets a veth `up0` with the uplink address
//! 198.51.100.2/24, a default route via 198.51.100.1 and a permanent neighbour entry for it, so
//! the lookup answers with the router's MAC; `up0` is registered as an uplink. Ifindex 1 is
//! registered as an uplink too (with the same address), for the uplink program's runs. The
//! sending container is registered with `host_ifindex` 1; a second container sends by taking
//! over that interface entry (`send_as`).
//!
//! Needs root (loading programs, bpffs pins, namespaces): ignored by a plain `cargo test`, run by
//! `cargo xtask test` (`--include-ignored`).
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use netd_common::{
    maps, nat, timeouts, CtEntry, CtKey, DropReason, Hook, NatReverse, PortKey, UplinkValue, CT_CLOSED, CT_CLOSING,
    CT_ESTABLISHED, CT_FIN_ORIGINAL, CT_FIN_REPLY, CT_OPEN, CT_SEEN_REPLY,
};

use super::{
    prog_test_support::{
        checksum, endpoint, ethernet, in_private_netns, ip, ipv4_with, with_pseudo_header, Fixture, Mac, ETH_HLEN,
        ETH_P_IP, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_DF, LOOPBACK_IFINDEX, TC_ACT_OK, TC_ACT_REDIRECT,
        TC_ACT_SHOT,
    },
    Datapath, DatapathEndpoint,
};

// ---------------------------------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------------------------------

/// The uplink's address: the masquerade address.
pub(super) const NAT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub(super) const UPLINK_MAC: Mac = [0x02, 0, 0, 0, 0xaa, 0x01];
/// The next hop of the default route, with a permanent neighbour entry.
pub(super) const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub(super) const ROUTER_MAC: Mac = [0x02, 0, 0, 0, 0xbb, 0x01];
/// An address outside: everything the containers send there is masqueraded.
pub(super) const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub(super) const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 18, 0, 1);
/// The source port the containers use.
pub(super) const CPORT: u16 = 40_000;
/// The ICMP echo identifier the containers use.
const ECHO_ID: u16 = 0x4e44;

pub(super) const TCP_FIN: u8 = 0x01;
pub(super) const TCP_SYN: u8 = 0x02;
pub(super) const TCP_RST: u8 = 0x04;
pub(super) const TCP_ACK: u8 = 0x10;
const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_PORT_UNREACH: u8 = 3;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
const IPPROTO_GRE: u8 = 47;
/// IPv4 flags/fragment-offset field: more fragments follow.
const MORE_FRAGMENTS: u16 = 0x2000;

/// The container every flow starts from unless a test says otherwise.
pub(super) fn alice() -> DatapathEndpoint {
    endpoint(LOOPBACK_IFINDEX, 1, Ipv4Addr::new(172, 18, 0, 2), GATEWAY)
}

/// Alice's neighbour on the same network (it sends through the same test interface).
pub(super) fn bob() -> DatapathEndpoint {
    DatapathEndpoint {
        mac: [0x02, 0, 0, 0, 0xc0, 0x03],
        host_mac: [0x02, 0, 0, 0, 0xee, 0x03],
        ..endpoint(LOOPBACK_IFINDEX, 1, Ipv4Addr::new(172, 18, 0, 3), GATEWAY)
    }
}

/// A container on an `--internal` network.
fn hermit() -> DatapathEndpoint {
    DatapathEndpoint {
        internal: true,
        mac: [0x02, 0, 0, 0, 0xc0, 0x09],
        host_mac: [0x02, 0, 0, 0, 0xee, 0x09],
        ..endpoint(LOOPBACK_IFINDEX, 2, Ipv4Addr::new(10, 99, 0, 2), Ipv4Addr::new(10, 99, 0, 1))
    }
}

pub(super) fn key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// A conntrack / NAT map key.
pub(super) fn ct_key(saddr: Ipv4Addr, daddr: Ipv4Addr, sport: u16, dport: u16, proto: u8) -> CtKey {
    CtKey { saddr: key(saddr), daddr: key(daddr), sport, dport, proto, _pad: [0; 3] }
}

/// The loaded datapath in this thread's private netns, with the uplink set up.
pub(super) struct Nat {
    pub(super) fx: Fixture,
}

impl Nat {
    pub(super) fn new(test: &str) -> Self {
        Self::with_map_sizes(test, &[])
    }

    pub(super) fn with_map_sizes(test: &str, sizes: &[(&str, u32)]) -> Self {
        let mac = mac_string(UPLINK_MAC);
        ip(&["link", "add", "up0", "address", &mac, "type", "veth", "peer", "name", "up0-peer"]);
        ip(&["link", "set", "up0", "up"]);
        ip(&["link", "set", "up0-peer", "up"]);
        ip(&["addr", "add", "198.51.100.2/24", "dev", "up0"]);
        ip(&["route", "add", "default", "via", &ROUTER.to_string(), "dev", "up0"]);
        ip(&[
            "neigh",
            "replace",
            &ROUTER.to_string(),
            "lladdr",
            &mac_string(ROUTER_MAC),
            "dev",
            "up0",
            "nud",
            "permanent",
        ]);
        let uplink = nix::net::if_::if_nametoindex("up0").expect("ifindex of up0");
        let fx = Fixture::with_map_sizes(test, &[alice()], sizes);
        let value = UplinkValue { nat_addr: key(NAT_ADDR), _pad: 0 };
        fx.datapath.insert_for_test_into(maps::UPLINKS, uplink, value);
        fx.datapath.insert_for_test_into(maps::UPLINKS, LOOPBACK_IFINDEX, value);
        // As the daemon keeps it: the host's addresses, the uplink's among them.
        fx.datapath.set_host_addresses(&[NAT_ADDR]).expect("host addresses");
        Nat { fx }
    }

    /// Makes `ep` the container behind the test interface (ifindex 1) and known by its address.
    pub(super) fn send_as(&self, ep: &DatapathEndpoint) {
        self.fx.datapath.insert_for_test(ep);
    }

    /// Runs the endpoint program on `pkt`.
    pub(super) fn out(&self, pkt: &Pkt) -> (u32, Vec<u8>) {
        self.fx.run(&pkt.frame())
    }

    /// Runs the uplink program on `pkt`.
    pub(super) fn back(&self, pkt: &Pkt) -> (u32, Vec<u8>) {
        self.fx.run_uplink(&pkt.frame())
    }

    /// The endpoint program must redirect `sent` as exactly `expected`.
    pub(super) fn assert_out(&self, sent: &Pkt, expected: &Pkt) {
        let (verdict, out) = self.out(sent);
        assert_eq!(verdict, TC_ACT_REDIRECT, "verdict for {sent:?}");
        assert_frame(&out, &expected.frame());
    }

    /// The uplink program must redirect `sent` as exactly `expected`.
    pub(super) fn assert_back(&self, sent: &Pkt, expected: &Pkt) {
        let (verdict, out) = self.back(sent);
        assert_eq!(verdict, TC_ACT_REDIRECT, "verdict for {sent:?}");
        assert_frame(&out, &expected.frame());
    }

    /// The endpoint program must drop `sent`, unchanged; returns the frame for the counters.
    pub(super) fn assert_out_dropped(&self, sent: &Pkt) -> Vec<u8> {
        let frame = sent.frame();
        let (verdict, out) = self.fx.run(&frame);
        assert_eq!(verdict, TC_ACT_SHOT, "verdict for {sent:?}");
        assert_eq!(out, frame, "a dropped packet is not rewritten");
        frame
    }

    /// The uplink program must drop `sent`, unchanged; returns the frame for the counters.
    pub(super) fn assert_back_dropped(&self, sent: &Pkt) -> Vec<u8> {
        let frame = sent.frame();
        let (verdict, out) = self.fx.run_uplink(&frame);
        assert_eq!(verdict, TC_ACT_SHOT, "verdict for {sent:?}");
        assert_eq!(out, frame, "a dropped packet is not rewritten");
        frame
    }

    /// The NAT source port the endpoint program gave `sent`: it must be redirected with
    /// everything but that port (and the checksums it covers) as in `expected`.
    pub(super) fn nat_port_of(&self, sent: &Pkt, expected: &Pkt) -> u16 {
        let (verdict, out) = self.out(sent);
        assert_eq!(verdict, TC_ACT_REDIRECT, "verdict for {sent:?}");
        assert_checksums(&out);
        let port = l4_source(&out);
        assert_frame(&out, &expected.clone().with_source_port(port).frame());
        port
    }

    pub(super) fn ct_entries(&self) -> Vec<(CtKey, CtEntry)> {
        let mut all = self.fx.datapath.entries_for_test::<CtKey, CtEntry>(maps::CT_TCP);
        all.extend(self.fx.datapath.entries_for_test::<CtKey, CtEntry>(maps::CT_OTHER));
        all
    }

    /// The conntrack entry of `key`, which must exist in the map of its protocol.
    pub(super) fn ct(&self, key: CtKey) -> CtEntry {
        let map = if key.proto == IPPROTO_TCP { maps::CT_TCP } else { maps::CT_OTHER };
        let entries = self.fx.datapath.entries_for_test::<CtKey, CtEntry>(map);
        entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, e)| *e)
            .unwrap_or_else(|| panic!("no conntrack entry for {key:?} in {map}: {entries:?}"))
    }

    pub(super) fn nat_entries(&self) -> Vec<(CtKey, NatReverse)> {
        self.fx.datapath.entries_for_test::<CtKey, NatReverse>(maps::NAT)
    }

    pub(super) fn reserve(&self, port: u16, proto: u8) {
        self.fx.datapath.insert_for_test_into(maps::RESERVED_PORTS, PortKey { port, proto, _pad: 0 }, 1u8);
    }

    pub(super) fn assert_drops(&self, expected: &[(Hook, DropReason, &[u8])]) {
        self.fx.assert_drops_by_hook(expected);
    }
}

pub(super) fn mac_string(mac: Mac) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// `CLOCK_MONOTONIC` in nanoseconds, the clock of `bpf_ktime_get_ns`.
pub(super) fn now_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

/// Runs `f` and returns its result with the clock read just before and just after.
pub(super) fn timed<T>(f: impl FnOnce() -> T) -> (T, u64, u64) {
    let before = now_ns();
    let result = f();
    (result, before, now_ns())
}

/// The entry's expiry is `timeout` after a moment between `before` and `after`.
pub(super) fn assert_expires(entry: &CtEntry, before: u64, after: u64, timeout: u64) {
    assert!(
        (before + timeout..=after + timeout).contains(&entry.expires),
        "expiry {} not {timeout} ns after [{before}, {after}] (off by {} ns): {entry:?}",
        entry.expires,
        entry.expires as i128 - (before + timeout) as i128,
    );
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

/// The L4 part of a test packet; its checksum is computed when the packet is built.
#[derive(Clone, Debug)]
pub(super) enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
    },
    /// `csum: false` sends a zero checksum (none).
    Udp {
        sport: u16,
        dport: u16,
        csum: bool,
        payload: Vec<u8>,
    },
    /// Echo request or reply.
    Echo {
        ty: u8,
        id: u16,
    },
    /// An ICMP error quoting the IPv4 packet `quoted` (`mtu`: the next-hop MTU of a
    /// "fragmentation needed", else 0).
    Error {
        ty: u8,
        code: u8,
        mtu: u16,
        quoted: Vec<u8>,
    },
    /// Any protocol's payload, as is.
    Raw {
        proto: u8,
        bytes: Vec<u8>,
    },
}

pub(super) fn tcp(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::Tcp { sport, dport, flags }
}

pub(super) fn udp(sport: u16, dport: u16) -> L4 {
    L4::Udp { sport, dport, csum: true, payload: b"netd query".to_vec() }
}

fn udp_without_checksum(sport: u16, dport: u16) -> L4 {
    L4::Udp { sport, dport, csum: false, payload: b"netd query".to_vec() }
}

fn echo(ty: u8, id: u16) -> L4 {
    L4::Echo { ty, id }
}

impl L4 {
    /// Protocol number and bytes, with the checksum computed over `src` → `dst`.
    fn build(&self, src: Ipv4Addr, dst: Ipv4Addr) -> (u8, Vec<u8>) {
        match self {
            L4::Tcp { sport, dport, flags } => {
                let ack: u32 = if flags & TCP_ACK != 0 { 0x0a0b_0c0d } else { 0 };
                let mut seg = [
                    &sport.to_be_bytes()[..],
                    &dport.to_be_bytes(),
                    &0x0102_0304u32.to_be_bytes(),
                    &ack.to_be_bytes(),
                    &[5 << 4, *flags],
                    &0xfaf0u16.to_be_bytes(), // window
                    &[0, 0, 0, 0],            // checksum, urgent pointer
                    b"netd",
                ]
                .concat();
                let check = checksum(&with_pseudo_header(src, dst, IPPROTO_TCP, &seg));
                seg[16..18].copy_from_slice(&check.to_be_bytes());
                (IPPROTO_TCP, seg)
            }
            L4::Udp { sport, dport, csum, payload } => {
                let len = (8 + payload.len()) as u16;
                let mut seg =
                    [&sport.to_be_bytes()[..], &dport.to_be_bytes(), &len.to_be_bytes(), &[0, 0], payload].concat();
                if *csum {
                    // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
                    let check = match checksum(&with_pseudo_header(src, dst, IPPROTO_UDP, &seg)) {
                        0 => 0xffff,
                        c => c,
                    };
                    seg[6..8].copy_from_slice(&check.to_be_bytes());
                }
                (IPPROTO_UDP, seg)
            }
            L4::Echo { ty, id } => {
                (IPPROTO_ICMP, icmp_message(&[*ty, 0, 0, 0, (id >> 8) as u8, *id as u8, 0, 1], b"netd ping"))
            }
            L4::Error { ty, code, mtu, quoted } => {
                let [hi, lo] = mtu.to_be_bytes();
                (IPPROTO_ICMP, icmp_message(&[*ty, *code, 0, 0, 0, 0, hi, lo], quoted))
            }
            L4::Raw { proto, bytes } => (*proto, bytes.clone()),
        }
    }
}

/// An ICMP message: the 8-byte header `header` (checksum field zero) and `body`, checksummed.
fn icmp_message(header: &[u8; 8], body: &[u8]) -> Vec<u8> {
    let mut msg = [&header[..], body].concat();
    let check = checksum(&msg);
    msg[2..4].copy_from_slice(&check.to_be_bytes());
    msg
}

/// A test packet: Ethernet, IPv4 (no options), L4.
#[derive(Clone, Debug)]
pub(super) struct Pkt {
    pub(super) dst_mac: Mac,
    pub(super) src_mac: Mac,
    pub(super) src: Ipv4Addr,
    pub(super) dst: Ipv4Addr,
    pub(super) ttl: u8,
    /// Flags and fragment offset.
    pub(super) frags: u16,
    pub(super) l4: L4,
}

impl Pkt {
    /// The IPv4 packet.
    pub(super) fn ip(&self) -> Vec<u8> {
        let (proto, payload) = self.l4.build(self.src, self.dst);
        ipv4_with(self.ttl, self.frags, self.src, self.dst, proto, &payload)
    }

    pub(super) fn frame(&self) -> Vec<u8> {
        ethernet(self.dst_mac, self.src_mac, ETH_P_IP, &self.ip())
    }

    pub(super) fn ttl(self, ttl: u8) -> Self {
        Pkt { ttl, ..self }
    }

    pub(super) fn frags(self, frags: u16) -> Self {
        Pkt { frags, ..self }
    }

    pub(super) fn to(self, dst: Ipv4Addr) -> Self {
        Pkt { dst, ..self }
    }

    pub(super) fn from(self, src: Ipv4Addr) -> Self {
        Pkt { src, ..self }
    }

    /// The packet with its TCP/UDP source port or its echo identifier set to `port`.
    pub(super) fn with_source_port(self, port: u16) -> Self {
        let l4 = match self.l4 {
            L4::Tcp { dport, flags, .. } => L4::Tcp { sport: port, dport, flags },
            L4::Udp { dport, csum, payload, .. } => L4::Udp { sport: port, dport, csum, payload },
            L4::Echo { ty, .. } => L4::Echo { ty, id: port },
            other => panic!("no source port in {other:?}"),
        };
        Pkt { l4, ..self }
    }
}

/// What a container sends to the server (addressed to its gateway's MAC).
pub(super) fn from(ep: &DatapathEndpoint, l4: L4) -> Pkt {
    Pkt { dst_mac: ep.host_mac, src_mac: ep.mac, src: ep.ip, dst: SERVER, ttl: 64, frags: IP_DF, l4 }
}

/// What must leave the uplink: masqueraded, routed (TTL lowered), addressed to the router.
pub(super) fn leaving(l4: L4) -> Pkt {
    Pkt { dst_mac: ROUTER_MAC, src_mac: UPLINK_MAC, src: NAT_ADDR, dst: SERVER, ttl: 63, frags: IP_DF, l4 }
}

/// What arrives on the uplink from the server.
pub(super) fn arriving(l4: L4) -> Pkt {
    Pkt { dst_mac: UPLINK_MAC, src_mac: ROUTER_MAC, src: SERVER, dst: NAT_ADDR, ttl: 64, frags: IP_DF, l4 }
}

/// What must reach the container: its address, TTL lowered, from its gateway's MAC.
pub(super) fn delivered(ep: &DatapathEndpoint, l4: L4) -> Pkt {
    Pkt { dst_mac: ep.mac, src_mac: ep.host_mac, src: SERVER, dst: ep.ip, ttl: 63, frags: IP_DF, l4 }
}

// ---------------------------------------------------------------------------------------------
// Checking packets
// ---------------------------------------------------------------------------------------------

/// Verifies every checksum of `frame` from scratch: the IPv4 header's, the TCP or UDP checksum
/// over the pseudo-header (a zero UDP checksum means none), the ICMP checksum, and for an ICMP
/// error the quoted IPv4 header's.
pub(super) fn assert_checksums(frame: &[u8]) {
    let ip = &frame[ETH_HLEN..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    assert_eq!(checksum(&ip[..ihl]), 0, "IPv4 header checksum of {frame:02x?}");
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(total, ip.len(), "IPv4 total length");
    let (src, dst) = (Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]), Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]));
    let l4 = &ip[ihl..];
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        // A fragment: its L4 checksum covers the whole datagram (see `assert_reassembles`).
        return;
    }
    match ip[9] {
        IPPROTO_TCP => {
            assert_eq!(checksum(&with_pseudo_header(src, dst, IPPROTO_TCP, l4)), 0, "TCP checksum of {frame:02x?}")
        }
        IPPROTO_UDP if l4[6..8] == [0, 0] => {}
        IPPROTO_UDP => {
            assert_eq!(checksum(&with_pseudo_header(src, dst, IPPROTO_UDP, l4)), 0, "UDP checksum of {frame:02x?}")
        }
        IPPROTO_ICMP => {
            assert_eq!(checksum(l4), 0, "ICMP checksum of {frame:02x?}");
            if matches!(l4[0], ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED) {
                let quoted = &l4[8..];
                let qihl = usize::from(quoted[0] & 0x0f) * 4;
                assert_eq!(checksum(&quoted[..qihl]), 0, "quoted IPv4 header checksum of {frame:02x?}");
            }
        }
        _ => {}
    }
}

/// `out` must be exactly `expected`, and its checksums right by themselves.
pub(super) fn assert_frame(out: &[u8], expected: &[u8]) {
    assert_checksums(out);
    assert_eq!(out, expected, "\n   got {out:02x?}\nwanted {expected:02x?}");
}

/// The UDP checksum field of a frame.
fn udp_checksum(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[ETH_HLEN + 26], frame[ETH_HLEN + 27]])
}

/// The TCP/UDP source port, or the ICMP echo identifier, of a frame.
pub(super) fn l4_source(frame: &[u8]) -> u16 {
    let l4 = ETH_HLEN + 20;
    match frame[ETH_HLEN + 9] {
        IPPROTO_ICMP => u16::from_be_bytes([frame[l4 + 4], frame[l4 + 5]]),
        _ => u16::from_be_bytes([frame[l4], frame[l4 + 1]]),
    }
}

/// A NAT port must come from netd's range when it is not the flow's own.
pub(super) fn assert_nat_range(port: u16) {
    assert!((nat::PORT_MIN..=nat::PORT_MAX).contains(&port), "NAT port {port} outside the NAT range");
}

/// The ICMP error `received` (as the uplink program left it) quotes a packet whose L4
/// checksum (when the quote reaches it) this test does not prescribe: it is not part of what a receiver checks (Linux
/// finds the socket by the quoted addresses and ports), so `expected_quoted` gets `received`'s
/// value before the packets are compared.
pub(super) fn with_quoted_l4_checksum_of(received: &[u8], mut expected_quoted: Vec<u8>) -> Vec<u8> {
    let quoted_l4 = ETH_HLEN + 20 + 8 + 20;
    let off = match expected_quoted[9] {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => 2,
    };
    if expected_quoted.len() >= 20 + off + 2 {
        expected_quoted[20 + off..20 + off + 2].copy_from_slice(&received[quoted_l4 + off..quoted_l4 + off + 2]);
    }
    expected_quoted
}

/// A UDP payload for `src:sport → dst:dport` whose checksum computes to zero, which RFC 768
/// sends as 0xffff: "netd query" and two bytes that make the sum come out at all ones.
fn payload_summing_to_zero(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let mut payload = b"netd query\0\0".to_vec();
    let probe = L4::Udp { sport, dport, csum: false, payload: payload.clone() };
    let (_, seg) = probe.build(src, dst);
    let fill = checksum(&with_pseudo_header(src, dst, IPPROTO_UDP, &seg));
    payload[10..12].copy_from_slice(&fill.to_be_bytes());
    let (_, seg) = L4::Udp { sport, dport, csum: false, payload: payload.clone() }.build(src, dst);
    assert_eq!(checksum(&with_pseudo_header(src, dst, IPPROTO_UDP, &seg)), 0);
    payload
}

/// A program run: frame in, verdict and frame out.
type Program<'a> = dyn Fn(&[u8]) -> (u32, Vec<u8>) + 'a;

/// A UDP datagram long enough to be sent in two fragments.
pub(super) fn big_udp(sport: u16, dport: u16) -> L4 {
    L4::Udp { sport, dport, csum: true, payload: b"netd: one datagram, sent as two fragments".to_vec() }
}

/// Bytes of the UDP datagram in the first fragment (a multiple of 8).
const FIRST_FRAGMENT: usize = 24;

/// `pkt` as the two fragments (frames) of one datagram with identification `id`: the first
/// `FIRST_FRAGMENT` bytes of its IP payload with more-fragments set, then the rest.
pub(super) fn fragments(pkt: &Pkt, id: u16) -> [Vec<u8>; 2] {
    let ip = pkt.ip();
    let (proto, payload) = (ip[9], &ip[20..]);
    let offset = (FIRST_FRAGMENT / 8) as u16;
    [(MORE_FRAGMENTS, &payload[..FIRST_FRAGMENT]), (offset, &payload[FIRST_FRAGMENT..])].map(|(frags, part)| {
        let mut ip = ipv4_with(pkt.ttl, frags, pkt.src, pkt.dst, proto, part);
        ip[4..6].copy_from_slice(&id.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let check = checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&check.to_be_bytes());
        ethernet(pkt.dst_mac, pkt.src_mac, ETH_P_IP, &ip)
    })
}

/// The fragments `out` put together are `whole`'s IP payload, and its L4 checksum is right.
pub(super) fn assert_reassembles(out: &[Vec<u8>], whole: &Pkt) {
    let payload: Vec<u8> = out.iter().flat_map(|f| f[ETH_HLEN + 20..].to_vec()).collect();
    assert_eq!(payload, whole.ip()[20..], "reassembled datagram");
    assert_eq!(checksum(&with_pseudo_header(whole.src, whole.dst, IPPROTO_UDP, &payload)), 0, "UDP checksum");
}

// ---------------------------------------------------------------------------------------------
// Source NAT out, reverse NAT back
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn tcp_syn_is_masqueraded_and_routed_and_its_syn_ack_comes_back() {
    in_private_netns(|| {
        let t = Nat::new("nat_tcp");
        let a = alice();
        let ((), t0, t1) =
            timed(|| t.assert_out(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN))));
        let entry = t.ct(ct_key(a.ip, SERVER, CPORT, 80, IPPROTO_TCP));
        assert_eq!((entry.nat_addr, entry.nat_port), (key(NAT_ADDR), CPORT), "the free source port is kept");
        // The reply tuple maps back to the container.
        let nat = t.nat_entries();
        assert_eq!(nat.len(), 1, "{nat:?}");
        let (reply, to) = nat[0];
        assert_eq!(reply, ct_key(SERVER, NAT_ADDR, 80, CPORT, IPPROTO_TCP));
        assert_eq!((to.addr, to.port), (key(a.ip), CPORT));
        assert!((t0..=t1).contains(&to.created), "created {} not in [{t0}, {t1}]", to.created);

        t.assert_back(&arriving(tcp(80, CPORT, TCP_SYN | TCP_ACK)), &delivered(&a, tcp(80, CPORT, TCP_SYN | TCP_ACK)));
        // The rest of the handshake and data take the same way.
        t.assert_out(&from(&a, tcp(CPORT, 80, TCP_ACK)), &leaving(tcp(CPORT, 80, TCP_ACK)));
        t.assert_back(&arriving(tcp(80, CPORT, TCP_ACK)), &delivered(&a, tcp(80, CPORT, TCP_ACK)));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn udp_with_a_checksum_is_masqueraded_and_its_reply_comes_back() {
    in_private_netns(|| {
        let t = Nat::new("nat_udp");
        let a = alice();
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        t.assert_back(&arriving(udp(53, CPORT)), &delivered(&a, udp(53, CPORT)));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn udp_zero_checksum_stays_zero_both_ways() {
    in_private_netns(|| {
        let t = Nat::new("nat_udp0");
        let a = alice();
        let (verdict, out) = t.out(&from(&a, udp_without_checksum(CPORT, 53)));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(udp_checksum(&out), 0, "no checksum stays no checksum");
        assert_frame(&out, &leaving(udp_without_checksum(CPORT, 53)).frame());
        let (verdict, out) = t.back(&arriving(udp_without_checksum(53, CPORT)));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(udp_checksum(&out), 0);
        assert_frame(&out, &delivered(&a, udp_without_checksum(53, CPORT)).frame());

        // Also when the port is translated (Bob's source port is Alice's).
        let b = bob();
        t.send_as(&b);
        let port = t.nat_port_of(&from(&b, udp_without_checksum(CPORT, 53)), &leaving(udp_without_checksum(CPORT, 53)));
        assert_ne!(port, CPORT);
        let (verdict, out) = t.out(&from(&b, udp_without_checksum(CPORT, 53)));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(udp_checksum(&out), 0, "no checksum stays no checksum with a new port");
        let (verdict, out) = t.back(&arriving(udp_without_checksum(53, port)));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(udp_checksum(&out), 0);
        assert_frame(&out, &delivered(&b, udp_without_checksum(53, CPORT)).frame());
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn udp_checksum_that_comes_out_zero_is_sent_as_all_ones() {
    in_private_netns(|| {
        let t = Nat::new("nat_udpffff");
        let a = alice();
        // Payloads whose checksum is zero once translated: the rewrite must send 0xffff, as a
        // sender computing it from scratch would (a zero would mean "no checksum").
        let out_payload = payload_summing_to_zero(NAT_ADDR, SERVER, CPORT, 53);
        let up = L4::Udp { sport: CPORT, dport: 53, csum: true, payload: out_payload };
        let (verdict, out) = t.out(&from(&a, up.clone()));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(udp_checksum(&out), 0xffff);
        assert_frame(&out, &leaving(up).frame());

        let back_payload = payload_summing_to_zero(SERVER, a.ip, 53, CPORT);
        let down = L4::Udp { sport: 53, dport: CPORT, csum: true, payload: back_payload };
        let (verdict, out) = t.back(&arriving(down.clone()));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_eq!(udp_checksum(&out), 0xffff);
        assert_frame(&out, &delivered(&a, down).frame());
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn icmp_echo_is_masqueraded_and_its_reply_comes_back() {
    in_private_netns(|| {
        let t = Nat::new("nat_icmp");
        let a = alice();
        t.assert_out(&from(&a, echo(ICMP_ECHO_REQUEST, ECHO_ID)), &leaving(echo(ICMP_ECHO_REQUEST, ECHO_ID)));
        let entry = t.ct(ct_key(a.ip, SERVER, ECHO_ID, 0, IPPROTO_ICMP));
        assert_eq!((entry.nat_addr, entry.nat_port), (key(NAT_ADDR), ECHO_ID), "the free identifier is kept");
        t.assert_back(&arriving(echo(ICMP_ECHO_REPLY, ECHO_ID)), &delivered(&a, echo(ICMP_ECHO_REPLY, ECHO_ID)));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn icmp_port_unreachable_reaches_the_container_with_the_quoted_packet_translated() {
    in_private_netns(|| {
        let t = Nat::new("nat_icmp_unreach");
        let (a, b) = (alice(), bob());
        // Alice keeps her port; Bob, same source port to the same server, gets another.
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        t.send_as(&b);
        let port = t.nat_port_of(&from(&b, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        assert_ne!(port, CPORT);

        for (ep, nat_port) in [(&a, CPORT), (&b, port)] {
            // The server's error quotes the datagram as it arrived there.
            let quoted = leaving(udp(nat_port, 53)).ip();
            let error = |quoted| L4::Error { ty: ICMP_DEST_UNREACH, code: ICMP_PORT_UNREACH, mtu: 0, quoted };
            let (verdict, out) = t.back(&arriving(error(quoted)));
            assert_eq!(verdict, TC_ACT_REDIRECT, "error about {}'s flow", ep.ip);
            // As the container sent it: its address and port, TTL as it left the uplink.
            let expected_quoted = with_quoted_l4_checksum_of(&out, from(ep, udp(CPORT, 53)).ttl(63).ip());
            assert_frame(&out, &delivered(ep, error(expected_quoted)).frame());
        }
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn ttl_exceeded_quoting_an_echo_request_reaches_the_container_translated() {
    in_private_netns(|| {
        let t = Nat::new("nat_icmp_ttl");
        let (a, b) = (alice(), bob());
        let request = echo(ICMP_ECHO_REQUEST, ECHO_ID);
        t.assert_out(&from(&a, request.clone()), &leaving(request.clone()));
        t.send_as(&b);
        let id = t.nat_port_of(&from(&b, request.clone()), &leaving(request.clone()));
        assert_ne!(id, ECHO_ID, "the identifier Alice holds towards the server is not Bob's");

        for (ep, nat_id) in [(&a, ECHO_ID), (&b, id)] {
            // A router on the way, not the server, reports the expiry of the quoted request.
            let quoted = leaving(echo(ICMP_ECHO_REQUEST, nat_id)).ttl(1).ip();
            let error = |quoted| L4::Error { ty: ICMP_TIME_EXCEEDED, code: 0, mtu: 0, quoted };
            let (verdict, out) = t.back(&arriving(error(quoted)).from(ROUTER));
            assert_eq!(verdict, TC_ACT_REDIRECT, "error about {}'s flow", ep.ip);
            let expected_quoted = with_quoted_l4_checksum_of(&out, from(ep, request.clone()).ttl(1).ip());
            assert_frame(&out, &delivered(ep, error(expected_quoted)).from(ROUTER).frame());
        }
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn fragmentation_needed_with_a_minimal_quote_reaches_the_container_translated() {
    const ICMP_FRAG_NEEDED: u8 = 4;
    in_private_netns(|| {
        let t = Nat::new("nat_icmp_frag_needed");
        let (a, b) = (alice(), bob());
        t.assert_out(&from(&a, tcp(CPORT, 443, TCP_SYN)), &leaving(tcp(CPORT, 443, TCP_SYN)));
        t.send_as(&b);
        let port = t.nat_port_of(&from(&b, tcp(CPORT, 443, TCP_SYN)), &leaving(tcp(CPORT, 443, TCP_SYN)));
        assert_ne!(port, CPORT);
        // A router quotes the minimum RFC 792 asks for: the IPv4 header and 8 bytes (the ports
        // and the sequence number, no TCP checksum).
        let error = |quoted| L4::Error { ty: ICMP_DEST_UNREACH, code: ICMP_FRAG_NEEDED, mtu: 1280, quoted };
        let quoted = leaving(tcp(port, 443, TCP_ACK)).ip()[..28].to_vec();
        let (verdict, out) = t.back(&arriving(error(quoted)).from(ROUTER));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        let expected_quoted = from(&b, tcp(CPORT, 443, TCP_ACK)).ttl(63).ip()[..28].to_vec();
        assert_frame(&out, &delivered(&b, error(expected_quoted)).from(ROUTER).frame());
        t.assert_drops(&[]);
    })
}

// ---------------------------------------------------------------------------------------------
// NAT port choice
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_second_container_with_the_same_source_port_gets_another_nat_port() {
    in_private_netns(|| {
        let t = Nat::new("nat_second");
        let (a, b) = (alice(), bob());
        t.assert_out(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        t.send_as(&b);
        let port = t.nat_port_of(&from(&b, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        assert_ne!(port, CPORT);
        assert_nat_range(port);
        // The mapping is stable for the flow's later packets.
        t.assert_out(&from(&b, tcp(CPORT, 80, TCP_ACK)), &leaving(tcp(port, 80, TCP_ACK)));
        let entry = t.ct(ct_key(b.ip, SERVER, CPORT, 80, IPPROTO_TCP));
        assert_eq!((entry.nat_addr, entry.nat_port), (key(NAT_ADDR), port));

        // Each reply reaches its own container, on the container's own port.
        let syn_ack = TCP_SYN | TCP_ACK;
        t.assert_back(&arriving(tcp(80, CPORT, syn_ack)), &delivered(&a, tcp(80, CPORT, syn_ack)));
        t.assert_back(&arriving(tcp(80, port, syn_ack)), &delivered(&b, tcp(80, CPORT, syn_ack)));
        let mut nat = t.nat_entries();
        nat.sort_by_key(|(k, _)| k.dport);
        let mapped: Vec<(CtKey, u32, u16)> = nat.iter().map(|(k, v)| (*k, v.addr, v.port)).collect();
        let mut want = vec![
            (ct_key(SERVER, NAT_ADDR, 80, CPORT, IPPROTO_TCP), key(a.ip), CPORT),
            (ct_key(SERVER, NAT_ADDR, 80, port, IPPROTO_TCP), key(b.ip), CPORT),
        ];
        want.sort_by_key(|(k, _, _)| k.dport);
        assert_eq!(mapped, want);
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn removing_an_endpoint_forgets_its_flows_at_once_and_keeps_the_others() {
    in_private_netns(|| {
        let t = Nat::new("nat_forget");
        let (a, b) = (alice(), bob());
        t.assert_out(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        t.send_as(&b);
        let port = t.nat_port_of(&from(&b, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        // Not left to the GC: alice's address may be the next endpoint's before it runs.
        t.fx.datapath.remove_endpoint(&a).unwrap();
        let flows: Vec<CtKey> = t.ct_entries().iter().map(|(k, _)| *k).collect();
        assert_eq!(flows, vec![ct_key(b.ip, SERVER, CPORT, 80, IPPROTO_TCP)]);
        let nat: Vec<(CtKey, u32)> = t.nat_entries().iter().map(|(k, v)| (*k, v.addr)).collect();
        assert_eq!(nat, vec![(ct_key(SERVER, NAT_ADDR, 80, port, IPPROTO_TCP), key(b.ip))]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_reserved_port_is_never_chosen() {
    in_private_netns(|| {
        let t = Nat::new("nat_reserved");
        let a = alice();
        // A published TCP port equal to the container's source port: not kept for TCP...
        t.reserve(CPORT, IPPROTO_TCP);
        let port = t.nat_port_of(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        assert_ne!(port, CPORT);
        assert_nat_range(port);
        // ...but kept for UDP, where nothing reserves it.
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn with_every_nat_port_reserved_a_taken_source_port_is_dropped_as_exhausted() {
    in_private_netns(|| {
        let t = Nat::new("nat_exhausted");
        let (a, b) = (alice(), bob());
        for port in nat::PORT_MIN..=nat::PORT_MAX {
            t.reserve(port, IPPROTO_TCP);
        }
        // Alice's own port is free and kept; Bob's is Alice's, and every candidate is reserved.
        t.assert_out(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        t.send_as(&b);
        let dropped = t.assert_out_dropped(&from(&b, tcp(CPORT, 80, TCP_SYN)));
        assert_eq!(t.nat_entries().len(), 1, "a refused flow leaves no NAT entry");
        assert_eq!(t.ct_entries().len(), 1, "a refused flow leaves no conntrack entry");
        // Alice's flow is unharmed.
        t.assert_back(&arriving(tcp(80, CPORT, TCP_SYN | TCP_ACK)), &delivered(&a, tcp(80, CPORT, TCP_SYN | TCP_ACK)));
        t.assert_drops(&[(Hook::EndpointIngress, DropReason::NatPortExhausted, &dropped)]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_host_socket_on_the_uplink_address_keeps_its_port() {
    in_private_netns(|| {
        let t = Nat::new("nat_host_socket");
        let a = alice();
        // Sockets of this (private) netns's host on the uplink address.
        let _udp = UdpSocket::bind((NAT_ADDR, CPORT)).expect("bind UDP on the uplink address");
        let _tcp = TcpListener::bind((NAT_ADDR, CPORT + 1)).expect("listen on the uplink address");
        let _any = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, CPORT + 2)).expect("bind UDP on every address");
        let port = t.nat_port_of(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        assert_ne!(port, CPORT, "the reply would reach the host's UDP socket");
        assert_nat_range(port);
        let port = t.nat_port_of(&from(&a, tcp(CPORT + 1, 80, TCP_SYN)), &leaving(tcp(CPORT + 1, 80, TCP_SYN)));
        assert_ne!(port, CPORT + 1, "the reply would reach the host's listener");
        assert_nat_range(port);
        let port = t.nat_port_of(&from(&a, udp(CPORT + 2, 53)), &leaving(udp(CPORT + 2, 53)));
        assert_ne!(port, CPORT + 2, "the reply would reach the host's wildcard socket");
        assert_nat_range(port);
        // A port no host socket holds is kept.
        t.assert_out(&from(&a, udp(CPORT + 3, 53)), &leaving(udp(CPORT + 3, 53)));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_full_nat_map_drops_new_flows_and_keeps_existing_ones() {
    const CAPACITY: u32 = 4;
    in_private_netns(|| {
        let t = Nat::with_map_sizes("nat_full", &[(maps::NAT, CAPACITY)]);
        let a = alice();
        for i in 0..CAPACITY as u16 {
            t.assert_out(&from(&a, udp(CPORT + i, 53)), &leaving(udp(CPORT + i, 53)));
        }
        assert_eq!(t.nat_entries().len(), CAPACITY as usize);
        let new_udp = t.assert_out_dropped(&from(&a, udp(CPORT + 100, 53)));
        let new_tcp = t.assert_out_dropped(&from(&a, tcp(CPORT, 80, TCP_SYN)));
        // Existing flows go on both ways.
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        t.assert_back(&arriving(udp(53, CPORT + 3)), &delivered(&a, udp(53, CPORT + 3)));
        assert_eq!(t.ct_entries().len(), CAPACITY as usize, "refused flows leave no conntrack entry");
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::NatTableFull, &new_udp),
            (Hook::EndpointIngress, DropReason::NatTableFull, &new_tcp),
        ]);
    })
}

// ---------------------------------------------------------------------------------------------
// Conntrack
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn tcp_conntrack_goes_open_established_closing_closed_and_reopens() {
    in_private_netns(|| {
        let t = Nat::new("ct_tcp_fin");
        let a = alice();
        let flow = ct_key(a.ip, SERVER, CPORT, 80, IPPROTO_TCP);
        let out = |flags| t.assert_out(&from(&a, tcp(CPORT, 80, flags)), &leaving(tcp(CPORT, 80, flags)));
        let back = |flags| t.assert_back(&arriving(tcp(80, CPORT, flags)), &delivered(&a, tcp(80, CPORT, flags)));

        let ((), t0, t1) = timed(|| out(TCP_SYN));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_OPEN, 0));
        assert_expires(&e, t0, t1, timeouts::TCP_OPENING);

        let ((), t0, t1) = timed(|| back(TCP_SYN | TCP_ACK));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_ESTABLISHED, CT_SEEN_REPLY));
        assert_expires(&e, t0, t1, timeouts::TCP_ESTABLISHED);

        out(TCP_ACK);
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_ESTABLISHED, CT_SEEN_REPLY));

        let ((), t0, t1) = timed(|| out(TCP_FIN | TCP_ACK));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_CLOSING, CT_SEEN_REPLY | CT_FIN_ORIGINAL));
        assert_expires(&e, t0, t1, timeouts::TCP_CLOSING);

        let ((), t0, t1) = timed(|| back(TCP_FIN | TCP_ACK));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_CLOSED, CT_SEEN_REPLY | CT_FIN_ORIGINAL | CT_FIN_REPLY));
        assert_expires(&e, t0, t1, timeouts::TCP_CLOSED);
        // The last ACK still goes out and leaves the flow closed.
        out(TCP_ACK);
        assert_eq!(t.ct(flow).state, CT_CLOSED);

        // A new connection on the same tuple reopens the entry, with the same NAT port.
        let ((), t0, t1) = timed(|| out(TCP_SYN));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags, e.nat_port), (CT_OPEN, 0, CPORT));
        assert_expires(&e, t0, t1, timeouts::TCP_OPENING);
        let ((), t0, t1) = timed(|| back(TCP_SYN | TCP_ACK));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_ESTABLISHED, CT_SEEN_REPLY));
        assert_expires(&e, t0, t1, timeouts::TCP_ESTABLISHED);
        assert_eq!(t.ct_entries().len(), 1);
        assert_eq!(t.nat_entries().len(), 1);
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn tcp_conntrack_closes_when_the_outside_sends_fin_first() {
    in_private_netns(|| {
        let t = Nat::new("ct_tcp_fin_reply");
        let a = alice();
        let flow = ct_key(a.ip, SERVER, CPORT, 80, IPPROTO_TCP);
        let out = |flags| t.assert_out(&from(&a, tcp(CPORT, 80, flags)), &leaving(tcp(CPORT, 80, flags)));
        let back = |flags| t.assert_back(&arriving(tcp(80, CPORT, flags)), &delivered(&a, tcp(80, CPORT, flags)));
        out(TCP_SYN);
        back(TCP_SYN | TCP_ACK);
        let ((), t0, t1) = timed(|| back(TCP_FIN | TCP_ACK));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_CLOSING, CT_SEEN_REPLY | CT_FIN_REPLY));
        assert_expires(&e, t0, t1, timeouts::TCP_CLOSING);
        let ((), t0, t1) = timed(|| out(TCP_FIN | TCP_ACK));
        let e = t.ct(flow);
        assert_eq!((e.state, e.flags), (CT_CLOSED, CT_SEEN_REPLY | CT_FIN_ORIGINAL | CT_FIN_REPLY));
        assert_expires(&e, t0, t1, timeouts::TCP_CLOSED);
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn tcp_rst_either_way_closes_the_flow() {
    in_private_netns(|| {
        let t = Nat::new("ct_tcp_rst");
        let a = alice();
        // The server resets an established flow.
        let flow = ct_key(a.ip, SERVER, CPORT, 80, IPPROTO_TCP);
        t.assert_out(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        t.assert_back(&arriving(tcp(80, CPORT, TCP_SYN | TCP_ACK)), &delivered(&a, tcp(80, CPORT, TCP_SYN | TCP_ACK)));
        let ((), t0, t1) =
            timed(|| t.assert_back(&arriving(tcp(80, CPORT, TCP_RST)), &delivered(&a, tcp(80, CPORT, TCP_RST))));
        let e = t.ct(flow);
        assert_eq!(e.state, CT_CLOSED);
        assert_expires(&e, t0, t1, timeouts::TCP_CLOSED);

        // The container resets a connection still opening (the server refused it).
        let other = ct_key(a.ip, SERVER, CPORT + 1, 443, IPPROTO_TCP);
        t.assert_out(&from(&a, tcp(CPORT + 1, 443, TCP_SYN)), &leaving(tcp(CPORT + 1, 443, TCP_SYN)));
        let ((), t0, t1) = timed(|| {
            t.assert_out(
                &from(&a, tcp(CPORT + 1, 443, TCP_RST | TCP_ACK)),
                &leaving(tcp(CPORT + 1, 443, TCP_RST | TCP_ACK)),
            )
        });
        let e = t.ct(other);
        assert_eq!(e.state, CT_CLOSED);
        assert_expires(&e, t0, t1, timeouts::TCP_CLOSED);

        // A SYN on the closed tuple opens it again.
        t.assert_out(&from(&a, tcp(CPORT, 80, TCP_SYN)), &leaving(tcp(CPORT, 80, TCP_SYN)));
        assert_eq!((t.ct(flow).state, t.ct(flow).flags), (CT_OPEN, 0));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn udp_and_icmp_flows_are_tracked_with_their_timeouts() {
    in_private_netns(|| {
        let t = Nat::new("ct_other");
        let a = alice();
        let dns = ct_key(a.ip, SERVER, CPORT, 53, IPPROTO_UDP);
        let ping = ct_key(a.ip, SERVER, ECHO_ID, 0, IPPROTO_ICMP);

        let ((), t0, t1) = timed(|| t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53))));
        let e = t.ct(dns);
        assert_eq!((e.state, e.flags, e.nat_addr, e.nat_port), (CT_OPEN, 0, key(NAT_ADDR), CPORT));
        assert_expires(&e, t0, t1, timeouts::UDP);
        let ((), t0, t1) = timed(|| t.assert_back(&arriving(udp(53, CPORT)), &delivered(&a, udp(53, CPORT))));
        let e = t.ct(dns);
        assert_eq!((e.state, e.flags), (CT_ESTABLISHED, CT_SEEN_REPLY));
        assert_expires(&e, t0, t1, timeouts::UDP);

        let request = echo(ICMP_ECHO_REQUEST, ECHO_ID);
        let ((), t0, t1) = timed(|| t.assert_out(&from(&a, request.clone()), &leaving(request.clone())));
        let e = t.ct(ping);
        assert_eq!((e.state, e.flags, e.nat_addr, e.nat_port), (CT_OPEN, 0, key(NAT_ADDR), ECHO_ID));
        assert_expires(&e, t0, t1, timeouts::ICMP);
        let reply = echo(ICMP_ECHO_REPLY, ECHO_ID);
        let ((), t0, t1) = timed(|| t.assert_back(&arriving(reply.clone()), &delivered(&a, reply.clone())));
        let e = t.ct(ping);
        assert_eq!((e.state, e.flags), (CT_ESTABLISHED, CT_SEEN_REPLY));
        assert_expires(&e, t0, t1, timeouts::ICMP);

        assert!(t.fx.datapath.entries_for_test::<CtKey, CtEntry>(maps::CT_TCP).is_empty(), "UDP/ICMP in their own map");
        assert_eq!(t.ct_entries().len(), 2);
        t.assert_drops(&[]);
    })
}

// ---------------------------------------------------------------------------------------------
// Drops at the endpoint
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn fragments_of_a_datagram_are_translated_both_ways() {
    in_private_netns(|| {
        let t = Nat::new("frag_both_ways");
        let (a, b) = (alice(), bob());
        // Runs `sent` through `run`; each fragment must be redirected exactly as `want`'s.
        let pass = |run: &Program, sent: [Vec<u8>; 2], want: &Pkt, id: u16| {
            let out: Vec<Vec<u8>> = sent
                .iter()
                .zip(fragments(want, id))
                .map(|(frame, expected)| {
                    let (verdict, out) = run(frame);
                    assert_eq!(verdict, TC_ACT_REDIRECT, "verdict for {frame:02x?}");
                    assert_frame(&out, &expected);
                    out
                })
                .collect();
            assert_reassembles(&out, want);
        };
        let out = |frame: &[u8]| t.fx.run(frame);
        let back = |frame: &[u8]| t.fx.run_uplink(frame);

        // Alice keeps her port.
        pass(&out, fragments(&from(&a, big_udp(CPORT, 53)), 0x0101), &leaving(big_udp(CPORT, 53)), 0x0101);
        pass(&back, fragments(&arriving(big_udp(53, CPORT)), 0x0202), &delivered(&a, big_udp(53, CPORT)), 0x0202);

        // Bob's port is translated in the first fragment; the second has no ports.
        t.send_as(&b);
        let [first, later] = fragments(&from(&b, big_udp(CPORT, 53)), 0x0303);
        let (verdict, first_out) = t.fx.run(&first);
        assert_eq!(verdict, TC_ACT_REDIRECT);
        let port = l4_source(&first_out);
        assert_ne!(port, CPORT);
        assert_nat_range(port);
        let [want_first, want_later] = fragments(&leaving(big_udp(port, 53)), 0x0303);
        assert_frame(&first_out, &want_first);
        let (verdict, later_out) = t.fx.run(&later);
        assert_eq!(verdict, TC_ACT_REDIRECT);
        assert_frame(&later_out, &want_later);
        assert_reassembles(&[first_out, later_out], &leaving(big_udp(port, 53)));
        pass(&back, fragments(&arriving(big_udp(53, port)), 0x0404), &delivered(&b, big_udp(53, CPORT)), 0x0404);
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_later_fragment_without_its_first_is_dropped_going_out_and_left_to_the_host_coming_in() {
    in_private_netns(|| {
        let t = Nat::new("frag_orphan");
        let a = alice();
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        let [_, later] = fragments(&from(&a, big_udp(CPORT, 53)), 0x0505);
        let (verdict, out) = t.fx.run(&later);
        assert_eq!((verdict, &out), (TC_ACT_SHOT, &later));
        // Coming in, it may be the host's own datagram: the host stack reassembles it.
        let [_, later_in] = fragments(&arriving(big_udp(53, CPORT)), 0x0606);
        assert_eq!(t.fx.run_uplink(&later_in), (TC_ACT_OK, later_in.clone()));
        t.assert_drops(&[(Hook::EndpointIngress, DropReason::Fragment, &later)]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_host_datagram_reusing_an_ip_id_keeps_its_later_fragment() {
    in_private_netns(|| {
        let t = Nat::new("frag_host_id");
        let a = alice();
        // A fragmented reply to Alice's flow, identification 0x0707.
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        let [first, later] = fragments(&arriving(big_udp(53, CPORT)), 0x0707);
        assert_eq!(t.fx.run_uplink(&first).0, TC_ACT_REDIRECT);
        assert_eq!(t.fx.run_uplink(&later).0, TC_ACT_REDIRECT);
        // Later the server sends the host (a socket of its own on port 5353) a fragmented
        // datagram whose identification has come round to 0x0707 again: the server numbers
        // every datagram to the uplink address from one counter, the host's and the
        // containers' alike. Both fragments are the host's.
        for frame in fragments(&arriving(big_udp(53, 5353)), 0x0707) {
            let (verdict, out) = t.fx.run_uplink(&frame);
            assert_eq!((verdict, &out), (TC_ACT_OK, &frame), "a fragment of the host's datagram is the host's");
        }
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_packet_too_big_for_the_uplink_goes_to_the_host_with_df_and_is_dropped_without() {
    in_private_netns(|| {
        let t = Nat::new("mtu");
        let a = alice();
        ip(&["link", "set", "up0", "mtu", "1280"]);
        // IPv4 total length: exactly the MTU, and 20 bytes more.
        let sized = |total: usize| L4::Udp { sport: CPORT, dport: 53, csum: true, payload: vec![0x61; total - 28] };
        t.assert_out(&from(&a, sized(1280)), &leaving(sized(1280)));
        // With DF: untranslated to the host stack, which answers "fragmentation needed".
        let df = from(&a, sized(1300)).frame();
        assert_eq!(t.fx.run(&df), (TC_ACT_OK, df.clone()), "drops: {:?}", t.fx.datapath.drop_stats());
        let no_df = t.assert_out_dropped(&from(&a, sized(1300)).frags(0));
        assert_eq!(t.ct_entries().len(), 1, "only the flow that fitted is tracked");
        t.assert_drops(&[(Hook::EndpointIngress, DropReason::MtuExceeded, &no_df)]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn an_internal_network_does_not_reach_the_outside() {
    in_private_netns(|| {
        let t = Nat::new("drop_internal");
        let h = hermit();
        t.send_as(&h);
        let tcp = t.assert_out_dropped(&from(&h, tcp(CPORT, 80, TCP_SYN)));
        let ping = t.assert_out_dropped(&from(&h, echo(ICMP_ECHO_REQUEST, ECHO_ID)));
        assert!(t.ct_entries().is_empty() && t.nat_entries().is_empty(), "no flow state for a dropped packet");
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::InternalNetwork, &tcp),
            (Hook::EndpointIngress, DropReason::InternalNetwork, &ping),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn other_protocols_and_icmp_other_than_echo_are_dropped_as_unsupported() {
    in_private_netns(|| {
        let t = Nat::new("drop_unsupported");
        let a = alice();
        // GRE (protocol 47): flags/version 0, protocol type IPv4, then an inner packet stub.
        let gre = Pkt {
            l4: L4::Raw { proto: IPPROTO_GRE, bytes: vec![0, 0, 0x08, 0, 0x45, 0, 0, 20] },
            ..from(&a, udp(1, 1))
        };
        let gre = t.assert_out_dropped(&gre);
        let echo_reply = t.assert_out_dropped(&from(&a, echo(ICMP_ECHO_REPLY, ECHO_ID)));
        assert!(t.ct_entries().is_empty() && t.nat_entries().is_empty());
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::UnsupportedProtocol, &gre),
            (Hook::EndpointIngress, DropReason::UnsupportedProtocol, &echo_reply),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_ttl_that_would_expire_on_the_way_out_is_dropped() {
    in_private_netns(|| {
        let t = Nat::new("drop_ttl");
        let a = alice();
        let one = t.assert_out_dropped(&from(&a, udp(CPORT, 53)).ttl(1));
        let zero = t.assert_out_dropped(&from(&a, tcp(CPORT, 80, TCP_SYN)).ttl(0));
        assert!(t.ct_entries().is_empty() && t.nat_entries().is_empty());
        // TTL 2 leaves with 1.
        t.assert_out(&from(&a, udp(CPORT, 53)).ttl(2), &leaving(udp(CPORT, 53)).ttl(1));
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::TtlExceeded, &one),
            (Hook::EndpointIngress, DropReason::TtlExceeded, &zero),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_rst_opening_no_flow_is_dropped_as_invalid() {
    in_private_netns(|| {
        let t = Nat::new("drop_rst");
        let a = alice();
        let rst = t.assert_out_dropped(&from(&a, tcp(CPORT, 80, TCP_RST)));
        let rst_ack = t.assert_out_dropped(&from(&a, tcp(CPORT, 80, TCP_RST | TCP_ACK)));
        assert!(t.ct_entries().is_empty() && t.nat_entries().is_empty(), "no flow state for an invalid segment");
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::CtInvalid, &rst),
            (Hook::EndpointIngress, DropReason::CtInvalid, &rst_ack),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn no_route_and_a_route_not_via_an_uplink_are_dropped() {
    in_private_netns(|| {
        let t = Nat::new("drop_route");
        let a = alice();
        ip(&["route", "add", "unreachable", "192.0.2.0/24"]);
        // A second device that is not an uplink, with a neighbour the lookup can answer with.
        ip(&["link", "add", "side0", "type", "veth", "peer", "name", "side0-peer"]);
        ip(&["link", "set", "side0", "up"]);
        ip(&["link", "set", "side0-peer", "up"]);
        ip(&["addr", "add", "100.64.0.1/24", "dev", "side0"]);
        ip(&["neigh", "replace", "100.64.0.9", "lladdr", "02:00:00:00:dd:09", "dev", "side0", "nud", "permanent"]);
        let unreachable = t.assert_out_dropped(&from(&a, udp(CPORT, 53)).to(Ipv4Addr::new(192, 0, 2, 1)));
        let sideways = t.assert_out_dropped(&from(&a, udp(CPORT, 53)).to(Ipv4Addr::new(100, 64, 0, 9)));
        assert!(t.ct_entries().is_empty() && t.nat_entries().is_empty());
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::NoRoute, &unreachable),
            (Hook::EndpointIngress, DropReason::NotViaUplink, &sideways),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn multicast_and_broadcast_from_a_container_are_not_masqueraded() {
    in_private_netns(|| {
        let t = Nat::new("not_masqueraded");
        let a = alice();
        // The host stack never forwards these (ip_route_input: multicast without multicast
        // routing, limited broadcast, 0.0.0.0/8 as martian), but `bpf_fib_lookup` matches them
        // against the default route like any unicast address. They go to the host stack, as
        // the uplink subnet's own broadcast address does and as Docker's bridge does.
        let never_forwarded = [
            from(&a, udp(5353, 5353)).to(Ipv4Addr::new(224, 0, 0, 251)), // mDNS, link-local
            from(&a, udp(CPORT, 1900)).to(Ipv4Addr::new(239, 255, 255, 250)), // SSDP
            from(&a, udp(68, 67)).to(Ipv4Addr::BROADCAST),
            from(&a, udp(CPORT, 9)).to(Ipv4Addr::UNSPECIFIED),
            from(&a, udp(CPORT, 9)).to(Ipv4Addr::new(198, 51, 100, 255)),
        ];
        for pkt in &never_forwarded {
            let frame = pkt.frame();
            let (verdict, out) = t.fx.run(&frame);
            assert_eq!((verdict, &out), (TC_ACT_OK, &frame), "{} is not masqueraded out of the uplink", pkt.dst);
        }
        assert!(t.ct_entries().is_empty() && t.nat_entries().is_empty(), "no flow state: {:?}", t.ct_entries());
        t.assert_drops(&[]);
    })
}

// ---------------------------------------------------------------------------------------------
// The uplink
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn the_uplink_drops_packets_for_containers_and_loopback() {
    in_private_netns(|| {
        let t = Nat::new("uplink_drops");
        let a = alice();
        let to_container = t.assert_back_dropped(&arriving(tcp(5555, 80, TCP_SYN)).to(a.ip));
        let to_container_udp = t.assert_back_dropped(&arriving(udp(5555, 53)).to(a.ip));
        let to_loopback = t.assert_back_dropped(&arriving(tcp(5555, 80, TCP_SYN)).to(Ipv4Addr::LOCALHOST));
        let to_loopback_net = t.assert_back_dropped(&arriving(udp(5555, 53)).to(Ipv4Addr::new(127, 1, 2, 3)));
        t.assert_drops(&[
            (Hook::UplinkIngress, DropReason::UnpublishedIngress, &to_container),
            (Hook::UplinkIngress, DropReason::UnpublishedIngress, &to_container_udp),
            (Hook::UplinkIngress, DropReason::LoopbackIngress, &to_loopback),
            (Hook::UplinkIngress, DropReason::LoopbackIngress, &to_loopback_net),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn host_traffic_on_the_uplink_passes_unchanged() {
    in_private_netns(|| {
        let t = Nat::new("uplink_host");
        let a = alice();
        // Masqueraded flows exist; none of these packets belongs to them.
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        t.assert_out(&from(&a, echo(ICMP_ECHO_REQUEST, ECHO_ID)), &leaving(echo(ICMP_ECHO_REQUEST, ECHO_ID)));
        let host = [
            // A ping of the host that happens to carry the echo flow's identifier.
            arriving(echo(ICMP_ECHO_REQUEST, ECHO_ID)),
            arriving(tcp(5555, 22, TCP_SYN)),
            arriving(udp(53, CPORT + 1)),
            // The flow's port from another remote port, and from another address.
            arriving(udp(54, CPORT)),
            arriving(udp(53, CPORT)).from(Ipv4Addr::new(203, 0, 113, 11)),
            arriving(echo(ICMP_ECHO_REQUEST, 7)),
            arriving(echo(ICMP_ECHO_REPLY, 7)),
            // An ICMP error about one of the host's own flows.
            arriving(L4::Error {
                ty: ICMP_DEST_UNREACH,
                code: ICMP_PORT_UNREACH,
                mtu: 0,
                quoted: leaving(udp(33_000, 53)).ip(),
            }),
            arriving(L4::Raw { proto: IPPROTO_GRE, bytes: vec![0, 0, 0x08, 0, 0x45, 0, 0, 20] }),
            // Routed through this host to somewhere else.
            arriving(udp(53, CPORT)).to(Ipv4Addr::new(198, 51, 100, 77)),
        ];
        for pkt in &host {
            let frame = pkt.frame();
            let (verdict, out) = t.fx.run_uplink(&frame);
            assert_eq!(verdict, TC_ACT_OK, "verdict for {pkt:?}");
            assert_eq!(out, frame, "host traffic is not rewritten: {pkt:?}");
        }
        // Not IPv4 at all (an ARP request for the uplink address).
        let arp = ethernet(
            [0xff; 6],
            ROUTER_MAC,
            0x0806,
            &[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0xbb, 1, 198, 51, 100, 1, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2],
        );
        assert_eq!(t.fx.run_uplink(&arp), (TC_ACT_OK, arp.clone()));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn replies_that_cannot_be_delivered_are_dropped_at_the_uplink() {
    in_private_netns(|| {
        let t = Nat::new("uplink_reply_drops");
        let a = alice();
        t.assert_out(&from(&a, udp(CPORT, 53)), &leaving(udp(CPORT, 53)));
        // Only the verdict is checked: what a program leaves in a dropped packet goes nowhere.
        let dropped = |pkt: Pkt| {
            let frame = pkt.frame();
            assert_eq!(t.fx.run_uplink(&frame).0, TC_ACT_SHOT, "verdict for {pkt:?}");
            frame
        };
        let ttl = dropped(arriving(udp(53, CPORT)).ttl(1));
        let error =
            L4::Error { ty: ICMP_DEST_UNREACH, code: ICMP_PORT_UNREACH, mtu: 0, quoted: leaving(udp(CPORT, 53)).ip() };
        let fragmented_error = dropped(arriving(error).frags(MORE_FRAGMENTS));
        // The container is gone and a reply comes before its flow is forgotten (removal
        // purges the flow right after the endpoint's entries): the flow is put back.
        let (flows, mappings) = (t.ct_entries(), t.nat_entries());
        t.fx.datapath.remove_endpoint(&a).expect("remove the endpoint");
        for (key, entry) in flows {
            t.fx.datapath.insert_for_test_into(maps::CT_OTHER, key, entry);
        }
        for (reply, to) in mappings {
            t.fx.datapath.insert_for_test_into(maps::NAT, reply, to);
        }
        let orphan = dropped(arriving(udp(53, CPORT)));
        t.assert_drops(&[
            (Hook::UplinkIngress, DropReason::TtlExceeded, &ttl),
            (Hook::UplinkIngress, DropReason::IcmpErrorInvalid, &fragmented_error),
            (Hook::UplinkIngress, DropReason::NoEndpoint, &orphan),
        ]);
    })
}
