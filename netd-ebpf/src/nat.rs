//! Masquerade: source NAT of container flows to the uplink address, the reverse for replies,
//! and ICMP errors about a flow translated back (the quoted header included).
//!
//! Port choice (research/nat-and-ports.md §1): the flow's own source port when its reply tuple
//! is free, else candidates from `nat::PORT_MIN..=PORT_MAX`, first random then sequential, at
//! most `nat::RETRIES`. A candidate is taken only if no NAT entry holds its reply tuple
//! (claimed with BPF_NOEXIST), it is not a reserved (published) host port, and no socket of the
//! host would receive the reply (a host socket on the uplink address keeps its port).
use aya_ebpf::{
    bindings::{bpf_sock_tuple, BPF_F_CURRENT_NETNS, BPF_NOEXIST},
    helpers::{bpf_get_prandom_u32, bpf_sk_lookup_udp, bpf_sk_release, bpf_skc_lookup_tcp},
    programs::TcContext,
};
use netd_common::{nat, CtKey, DropReason, NatReverse, PortKey};

use crate::{
    csum,
    maps::{NAT_BY_REPLY, RESERVED_PORTS},
    packet::{ptr_at, Ipv4Packet, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_DST_OFF, IP_SRC_OFF},
};

/// E2BIG from a full hash map.
const E2BIG: i64 = -7;

/// The reply tuple of `orig` once its source is `nat_addr:port`.
#[inline(always)]
pub fn reply_key(orig: &CtKey, nat_addr: u32, port: u16) -> CtKey {
    CtKey { saddr: orig.daddr, daddr: nat_addr, sport: orig.dport, dport: port, proto: orig.proto, _pad: [0; 3] }
}

/// Whether a host socket would take a packet of the reply tuple `reply`.
#[inline(always)]
fn host_socket_holds(ctx: &TcContext, reply: &CtKey) -> bool {
    if reply.proto == IPPROTO_ICMP {
        return false;
    }
    // SAFETY: a zeroed tuple is valid; the ipv4 variant is filled before use.
    let mut tuple: bpf_sock_tuple = unsafe { core::mem::zeroed() };
    tuple.__bindgen_anon_1.ipv4.saddr = reply.saddr;
    tuple.__bindgen_anon_1.ipv4.daddr = reply.daddr;
    tuple.__bindgen_anon_1.ipv4.sport = reply.sport.to_be();
    tuple.__bindgen_anon_1.ipv4.dport = reply.dport.to_be();
    let size = core::mem::size_of::<u32>() as u32 * 3;
    let skb = ctx.skb.skb as *mut _;
    let netns = BPF_F_CURRENT_NETNS as u64;
    // SAFETY: helper calls with a valid tuple; a found socket is released at once.
    unsafe {
        let sk = if reply.proto == IPPROTO_TCP {
            bpf_skc_lookup_tcp(skb, &mut tuple, size, netns, 0)
        } else {
            bpf_sk_lookup_udp(skb, &mut tuple, size, netns, 0)
        };
        if sk.is_null() {
            return false;
        }
        bpf_sk_release(sk as *mut _);
    }
    true
}

/// Claims `port` for `orig`; Ok(true) when it is now (or already was) this flow's.
#[inline(always)]
fn claim(ctx: &TcContext, orig: &CtKey, nat_addr: u32, port: u16, now: u64) -> Result<bool, DropReason> {
    let reply = reply_key(orig, nat_addr, port);
    if let Some(held) = NAT_BY_REPLY.get_ptr(&reply) {
        // SAFETY: read of a map value.
        let held = unsafe { &*held };
        // A mapping left by this very flow (its conntrack entry was evicted): take it back.
        return Ok(held.addr == orig.saddr && held.port == orig.sport);
    }
    if orig.proto != IPPROTO_ICMP && RESERVED_PORTS.get_ptr(&PortKey { port, proto: orig.proto, _pad: 0 }).is_some() {
        return Ok(false);
    }
    if host_socket_holds(ctx, &reply) {
        return Ok(false);
    }
    let value = NatReverse { created: now, addr: orig.saddr, port: orig.sport, _pad: 0 };
    match NAT_BY_REPLY.insert(&reply, &value, BPF_NOEXIST as u64) {
        Ok(()) => Ok(true),
        Err(e) if e as i64 == E2BIG => Err(DropReason::NatTableFull),
        // EEXIST: another CPU claimed it first.
        Err(_) => Ok(false),
    }
}

/// Picks and claims the NAT port (or ICMP identifier) of a new flow.
#[inline(always)]
pub fn allocate(ctx: &TcContext, orig: &CtKey, nat_addr: u32, now: u64) -> Result<u16, DropReason> {
    if claim(ctx, orig, nat_addr, orig.sport, now)? {
        return Ok(orig.sport);
    }
    let span = (nat::PORT_MAX - nat::PORT_MIN) as u32 + 1;
    // SAFETY: plain helper call.
    let mut offset = unsafe { bpf_get_prandom_u32() } % span;
    for _ in 0..nat::RETRIES {
        let port = nat::PORT_MIN + offset as u16;
        if claim(ctx, orig, nat_addr, port, now)? {
            return Ok(port);
        }
        offset = (offset + 1) % span;
    }
    Err(DropReason::NatPortExhausted)
}

/// Offset of the translated 16-bit field: the source port, or the ICMP echo identifier.
#[inline(always)]
fn id_offset(pkt: &Ipv4Packet) -> usize {
    if pkt.proto == IPPROTO_ICMP {
        pkt.l4 + 4
    } else {
        pkt.l4
    }
}

/// Source NAT of a packet of `orig`'s flow to `nat_addr:nat_port`.
#[inline(always)]
pub fn rewrite_source(ctx: &TcContext, pkt: &Ipv4Packet, orig: &CtKey, nat_addr: u32, nat_port: u16) -> Result<(), ()> {
    csum::set_addr(ctx, IP_SRC_OFF, pkt.l4, pkt.proto, pkt.saddr, nat_addr)?;
    if nat_port != orig.sport {
        csum::set_l4_field(ctx, id_offset(pkt), pkt.l4, pkt.proto, orig.sport, nat_port)?;
    }
    Ok(())
}

/// Reverse NAT of a reply: destination back to the container's address and port.
#[inline(always)]
pub fn rewrite_destination(ctx: &TcContext, pkt: &Ipv4Packet, reply_dport: u16, to: &NatReverse) -> Result<(), ()> {
    set_destination(ctx, pkt, reply_dport, to.addr, to.port)
}

/// Destination of a packet whose destination port (or echo identifier) is `dport` rewritten to
/// `addr:port` (a reply back to its container, or a client's packet to a published port's
/// endpoint).
#[inline(always)]
pub fn set_destination(ctx: &TcContext, pkt: &Ipv4Packet, dport: u16, addr: u32, port: u16) -> Result<(), ()> {
    csum::set_addr(ctx, IP_DST_OFF, pkt.l4, pkt.proto, pkt.daddr, addr)?;
    if port != dport {
        let off = if pkt.proto == IPPROTO_ICMP { pkt.l4 + 4 } else { pkt.l4 + 2 };
        csum::set_l4_field(ctx, off, pkt.l4, pkt.proto, dport, port)?;
    }
    Ok(())
}

/// The quoted packet of an ICMP error: the flow it is about, as this host sent it.
pub struct Quoted {
    /// Offset of the quoted IPv4 header.
    pub ip: usize,
    /// The reply tuple of the flow (what the NAT map is keyed by).
    pub reply: CtKey,
}

/// Reads the packet quoted by an ICMP error. Quoted headers with options, fragments, or
/// protocols netd does not translate are refused.
#[inline(always)]
pub fn quoted(ctx: &TcContext, pkt: &Ipv4Packet) -> Result<Quoted, DropReason> {
    let ip = pkt.l4 + 8;
    let h: *const [u8; 28] = ptr_at(ctx, ip).map_err(|()| DropReason::IcmpErrorInvalid)?;
    // SAFETY: bounds-checked by ptr_at.
    let h = unsafe { &*h };
    let frag = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    if h[0] != 0x45 || frag != 0 {
        return Err(DropReason::IcmpErrorInvalid);
    }
    let proto = h[9];
    let saddr = u32::from_ne_bytes([h[12], h[13], h[14], h[15]]);
    let daddr = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
    let (sport, dport) = match proto {
        IPPROTO_TCP | IPPROTO_UDP => (u16::from_be_bytes([h[20], h[21]]), u16::from_be_bytes([h[22], h[23]])),
        // An echo request this host sent: the identifier is the NAT'd field.
        IPPROTO_ICMP if h[20] == crate::packet::ICMP_ECHO_REQUEST => (u16::from_be_bytes([h[24], h[25]]), 0),
        _ => return Err(DropReason::IcmpErrorInvalid),
    };
    // The quoted packet went out nat_addr:nat_port → remote:port; its reply tuple is the mirror.
    Ok(Quoted { ip, reply: CtKey { saddr: daddr, daddr: saddr, sport: dport, dport: sport, proto, _pad: [0; 3] } })
}

/// Translates an ICMP error about a masqueraded flow back to the container: the outer
/// destination, and the quoted packet's source address (with its header checksum) and port.
#[inline(always)]
pub fn rewrite_icmp_error(ctx: &TcContext, pkt: &Ipv4Packet, q: &Quoted, to: &NatReverse) -> Result<(), ()> {
    rewrite_quoted(ctx, pkt, q, Quote::Source, (q.reply.daddr, q.reply.dport), (to.addr, to.port))?;
    csum::set_addr(ctx, IP_DST_OFF, pkt.l4, IPPROTO_ICMP, pkt.daddr, to.addr)
}

/// Translates an ICMP error an endpoint sends about a flow through one of its published ports
/// (the quoted packet is the client's, to the endpoint): the outer source and the quoted
/// packet's destination address and port become the published `addr:port` the client used.
#[inline(always)]
pub fn rewrite_icmp_error_from_backend(
    ctx: &TcContext,
    pkt: &Ipv4Packet,
    q: &Quoted,
    addr: u32,
    port: u16,
) -> Result<(), ()> {
    rewrite_quoted(ctx, pkt, q, Quote::Destination, (q.reply.saddr, q.reply.sport), (addr, port))?;
    csum::set_addr(ctx, IP_SRC_OFF, pkt.l4, IPPROTO_ICMP, pkt.saddr, addr)
}

/// Which end of the quoted packet a rewrite changes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Source,
    Destination,
}

/// Rewrites one end of an ICMP error's quoted packet from `old` to `new` (address, port or —
/// for a quoted echo request's source — identifier): the quoted IPv4 header's own checksum
/// first (the ICMP checksum covers it as data), then the fields; the ICMP checksum follows every
/// change. The quoted L4 checksum is left as it is (receivers find the socket by addresses and
/// ports; a minimal quote does not even reach it).
#[inline(always)]
pub fn rewrite_quoted(
    ctx: &TcContext,
    pkt: &Ipv4Packet,
    q: &Quoted,
    end: Quote,
    old: (u32, u16),
    new: (u32, u16),
) -> Result<(), ()> {
    let icmp_csum = pkt.l4 + 2;
    let (addr_off, port_off) = match end {
        Quote::Source if q.reply.proto == IPPROTO_ICMP => (q.ip + 12, q.ip + 24),
        Quote::Source => (q.ip + 12, q.ip + 20),
        Quote::Destination => (q.ip + 16, q.ip + 22),
    };
    if new.0 != old.0 {
        csum::fix_quoted_ip_csum(ctx, icmp_csum, q.ip + 10, old.0, new.0)?;
        csum::set_icmp_payload_u32(ctx, icmp_csum, addr_off, old.0, new.0)?;
    }
    if new.1 != old.1 {
        csum::set_icmp_payload_u16(ctx, icmp_csum, port_off, old.1.to_be(), new.1.to_be())?;
    }
    Ok(())
}
