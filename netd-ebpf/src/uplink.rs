//! Traffic arriving on an uplink (TC ingress): packets from a netd address (spoofed) are
//! dropped first; replies of masqueraded flows are translated back and delivered straight into
//! their container (`bpf_redirect_peer`); packets for a published port are translated to the
//! endpoint behind it and delivered the same way (`publish`); packets for a container address
//! or loopback are dropped; everything else — the host's own traffic — is left to the host
//! stack after a few map lookups.
use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_redirect_peer},
    programs::TcContext,
};
use netd_common::{CtKey, DropReason, EndpointValue};
use network_types::eth::{EthHdr, EtherType};

use crate::{
    conntrack, csum, fragments,
    maps::{ENDPOINTS_BY_IP, NAT_BY_REPLY, UPLINKS_BY_IFINDEX},
    nat,
    packet::{
        ipv4, l4, ptr_at, Ipv4Packet, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_PARAMETER_PROBLEM, ICMP_TIME_EXCEEDED,
        IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_DST_OFF,
    },
    policy, publish,
    verdict::Verdict,
};

/// `skb->pkt_type` of a packet the host sent and looped back to itself (multicast).
const PACKET_LOOPBACK: u32 = 5;

#[inline(always)]
pub fn uplink_ingress(ctx: &TcContext) -> Result<Verdict, ()> {
    let eth: *const EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds-checked by ptr_at.
    if unsafe { (*eth).ether_type } != EtherType::Ipv4 as u16 {
        return Ok(Verdict::Pass);
    }
    let pkt = ipv4(ctx)?;
    // SAFETY: ctx.skb.skb is the context pointer the kernel passed in.
    let (ifindex, pkt_type) = unsafe { ((*ctx.skb.skb).ifindex, (*ctx.skb.skb).pkt_type) };
    // The host's own multicast looped back to it passes this hook too; anything from the wire
    // with a netd source address is spoofed, and goes before any translation.
    if pkt_type != PACKET_LOOPBACK {
        if let Err(reason) = policy::check_outside_source(pkt.saddr) {
            return Ok(Verdict::Drop(reason));
        }
    }
    // SAFETY: read-only lookup of a plain-old-data value.
    let uplink_addr = unsafe { UPLINKS_BY_IFINDEX.get(ifindex) }.map_or(0, |u| u.nat_addr);
    // Replies of masqueraded flows first: a NAT mapping made before a port was published wins
    // over the published port (Cilium #34041).
    if pkt.later_fragment || (uplink_addr == pkt.daddr && uplink_addr != 0) {
        if let Some(verdict) = reply(ctx, &pkt)? {
            return Ok(verdict);
        }
    }
    if let Some(verdict) = publish::from_outside(ctx, &pkt, uplink_addr)? {
        return Ok(verdict);
    }
    if let Err(reason) = policy::check_may_enter(pkt.daddr) {
        return Ok(Verdict::Drop(reason));
    }
    Ok(Verdict::Pass)
}

/// The verdict for a packet to the masquerade address (or a later fragment to any address),
/// or None when it belongs to no translated flow.
#[inline(always)]
fn reply(ctx: &TcContext, pkt: &Ipv4Packet) -> Result<Option<Verdict>, ()> {
    match pkt.proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP => {}
        _ => return Ok(None),
    }
    if pkt.later_fragment {
        // No L4 header: found by the datagram its first fragment recorded (a masqueraded
        // flow's reply or a client's datagram to a published port), else the host's.
        let Some(addr) = fragments::lookup(pkt.saddr, pkt.daddr, pkt) else {
            return Ok(None);
        };
        let ep = match endpoint(pkt, addr) {
            Ok(ep) => ep,
            Err(reason) => return Ok(Some(Verdict::Drop(reason))),
        };
        csum::set_addr_l3(ctx, IP_DST_OFF, pkt.daddr, addr)?;
        return deliver(ctx, pkt, &ep).map(Some);
    }
    let ports = l4(ctx, pkt)?;
    if pkt.proto == IPPROTO_ICMP {
        match ports.icmp_type {
            ICMP_ECHO_REPLY => {}
            ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM => return icmp_error(ctx, pkt),
            _ => return Ok(None),
        }
    }
    // Echo replies carry the identifier where the original carried it (see CtKey).
    let (sport, dport) = if pkt.proto == IPPROTO_ICMP { (0, ports.sport) } else { (ports.sport, ports.dport) };
    let key = CtKey { saddr: pkt.saddr, daddr: pkt.daddr, sport, dport, proto: pkt.proto, _pad: [0; 3] };
    // SAFETY: read-only lookup of a plain-old-data value.
    let Some(to) = (unsafe { NAT_BY_REPLY.get(&key) }).copied() else {
        if pkt.fragment {
            fragments::forget(pkt.saddr, pkt.daddr, pkt);
        }
        return Ok(None);
    };
    let ep = match endpoint(pkt, to.addr) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    if pkt.fragment {
        fragments::remember(pkt.saddr, pkt.daddr, pkt, to.addr);
    }
    let orig = CtKey { saddr: to.addr, daddr: pkt.saddr, sport: to.port, dport: sport, proto: pkt.proto, _pad: [0; 3] };
    if let Some(entry) = conntrack::lookup(&orig) {
        // SAFETY: plain helper call.
        conntrack::update(entry, pkt.proto, ports.tcp_flags, true, unsafe { bpf_ktime_get_ns() });
    }
    nat::rewrite_destination(ctx, pkt, dport, &to)?;
    deliver(ctx, pkt, &ep).map(Some)
}

/// An ICMP error about a masqueraded flow, or about a flow through a published port on the
/// uplink's address, goes to the container with the quoted packet translated; one about
/// anything else is the host's.
#[inline(always)]
fn icmp_error(ctx: &TcContext, pkt: &Ipv4Packet) -> Result<Option<Verdict>, ()> {
    let quoted = match nat::quoted(ctx, pkt) {
        Ok(q) => q,
        // Not about a flow netd could have translated: leave it to the host.
        Err(_) => return Ok(None),
    };
    // SAFETY: read-only lookup of a plain-old-data value.
    let to = match (unsafe { NAT_BY_REPLY.get(&quoted.reply) }).copied() {
        Some(to) => to,
        // About a flow through a published port (the quoted source is the published address).
        None => match publish::icmp_error_target(&quoted.reply) {
            Some(to) => to,
            None => return Ok(None),
        },
    };
    if pkt.fragment {
        return Ok(Some(Verdict::Drop(DropReason::IcmpErrorInvalid)));
    }
    let ep = match endpoint(pkt, to.addr) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    nat::rewrite_icmp_error(ctx, pkt, &quoted, &to)?;
    deliver(ctx, pkt, &ep).map(Some)
}

/// The endpoint a translated packet for `addr` goes to, checked before anything is changed
/// (a dropped reply neither rewrites the packet nor counts as the flow's reply).
#[inline(always)]
pub fn endpoint(pkt: &Ipv4Packet, addr: u32) -> Result<EndpointValue, DropReason> {
    // SAFETY: read-only lookup of a plain-old-data value.
    let ep = (unsafe { ENDPOINTS_BY_IP.get(addr) }).copied().ok_or(DropReason::NoEndpoint)?;
    if pkt.ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    Ok(ep)
}

/// Into the container that owns the flow, as if from its gateway.
#[inline(always)]
pub fn deliver(ctx: &TcContext, pkt: &Ipv4Packet, ep: &EndpointValue) -> Result<Verdict, ()> {
    csum::decrement_ttl(ctx, pkt.ttl, pkt.proto)?;
    csum::set_macs(ctx, &ep.mac, &ep.host_mac)?;
    // SAFETY: plain helper call with the endpoint's host-side ifindex.
    Ok(Verdict::Redirect(unsafe { bpf_redirect_peer(ep.ifindex, 0) }))
}
