//! Container → outside: conntrack, source NAT to the uplink's address, and the send.
use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::TcContext};
use netd_common::{CtKey, DropReason};

use crate::{
    conntrack, csum, fragments,
    maps::UPLINKS_BY_IFINDEX,
    nat,
    packet::{l4, Ipv4Packet, ICMP_ECHO_REQUEST, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_SRC_OFF},
    publish, route,
    verdict::Verdict,
};

#[inline(always)]
pub fn masquerade(
    ctx: &TcContext,
    pkt: &Ipv4Packet,
    ifindex: u32,
    next_hop: u32,
    macs: Option<([u8; 6], [u8; 6])>,
) -> Result<Verdict, ()> {
    // SAFETY: read-only lookup of a plain-old-data value.
    let nat_addr = match unsafe { UPLINKS_BY_IFINDEX.get(ifindex) } {
        Some(uplink) if uplink.nat_addr != 0 => uplink.nat_addr,
        _ => return Ok(Verdict::Drop(DropReason::NotViaUplink)),
    };
    match pkt.proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_ICMP => {}
        _ => return Ok(Verdict::Drop(DropReason::UnsupportedProtocol)),
    }
    if pkt.ttl <= 1 {
        return Ok(Verdict::Drop(DropReason::TtlExceeded));
    }
    if !route::fits_mtu(ctx, ifindex) {
        // Too big for the uplink, untranslated still. With DF the host stack forwards nothing:
        // it drops the packet and sends the container "fragmentation needed" (path MTU
        // discovery), as on docker0. Without DF it would fragment and forward it untranslated,
        // so netd drops it.
        return Ok(if pkt.dont_fragment { Verdict::Pass } else { Verdict::Drop(DropReason::MtuExceeded) });
    }
    if pkt.later_fragment {
        // No ports here: the datagram's first fragment said where it goes.
        let Some(target) = fragments::lookup(pkt.saddr, pkt.daddr, pkt) else {
            return Ok(Verdict::Drop(DropReason::Fragment));
        };
        csum::set_addr_l3(ctx, IP_SRC_OFF, pkt.saddr, target)?;
        return Ok(Verdict::Redirect(route::send(ctx, pkt, ifindex, next_hop, macs)?));
    }
    let ports = l4(ctx, pkt)?;
    if pkt.proto == IPPROTO_ICMP && ports.icmp_type != ICMP_ECHO_REQUEST {
        // An ICMP error about a flow through one of the container's published ports goes to
        // the client from the published address, as a reply would. Only echo requests open
        // flows; a container has no other flow an ICMP error could be about.
        let Some((quoted, nat_addr, nat_port)) = publish::backend_icmp_error(ctx, pkt, &ports) else {
            return Ok(Verdict::Drop(DropReason::UnsupportedProtocol));
        };
        if pkt.fragment {
            return Ok(Verdict::Drop(DropReason::IcmpErrorInvalid));
        }
        nat::rewrite_icmp_error_from_backend(ctx, pkt, &quoted, nat_addr, nat_port)?;
        return Ok(Verdict::Redirect(route::send(ctx, pkt, ifindex, next_hop, macs)?));
    }
    let orig = conntrack::tuple(pkt, &ports);
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    let (nat_addr, nat_port) = match conntrack::lookup(&orig) {
        Some(entry) => {
            conntrack::update(entry, pkt.proto, ports.tcp_flags, false, now);
            // SAFETY: read of a map value.
            unsafe { ((*entry).nat_addr, (*entry).nat_port) }
        }
        None => match open_flow(ctx, &orig, nat_addr, ports.tcp_flags, now) {
            Ok(mapping) => mapping,
            Err(reason) => return Ok(Verdict::Drop(reason)),
        },
    };
    if pkt.fragment {
        fragments::remember(pkt.saddr, pkt.daddr, pkt, nat_addr);
    }
    nat::rewrite_source(ctx, pkt, &orig, nat_addr, nat_port)?;
    Ok(Verdict::Redirect(route::send(ctx, pkt, ifindex, next_hop, macs)?))
}

/// Tracks a new flow: NAT port first (its reply tuple claimed), then the conntrack entry.
#[inline(always)]
fn open_flow(ctx: &TcContext, orig: &CtKey, nat_addr: u32, tcp_flags: u8, now: u64) -> Result<(u32, u16), DropReason> {
    if !conntrack::may_open(orig.proto, tcp_flags) {
        return Err(DropReason::CtInvalid);
    }
    // The NAT entry names the container too, and comes first.
    conntrack::note_endpoint(orig.saddr);
    let port = nat::allocate(ctx, orig, nat_addr, now)?;
    let entry = conntrack::new_entry(orig.proto, now, nat_addr, port, 0);
    if conntrack::create(orig, &entry).is_err() {
        // Another CPU tracked the flow first: use its mapping and give back ours, unless the
        // NAT entry we claimed is the one the winner uses.
        let Some(winner) = conntrack::lookup(orig) else {
            let _ = crate::maps::NAT_BY_REPLY.remove(&nat::reply_key(orig, nat_addr, port));
            return Err(DropReason::ConntrackFull);
        };
        // SAFETY: read of a map value.
        let (addr, won) = unsafe { ((*winner).nat_addr, (*winner).nat_port) };
        if won != port || addr != nat_addr {
            let _ = crate::maps::NAT_BY_REPLY.remove(&nat::reply_key(orig, nat_addr, port));
        }
        conntrack::update(winner, orig.proto, tcp_flags, false, now);
        return Ok((addr, won));
    }
    Ok((nat_addr, port))
}
