//! Traffic leaving a container (host-side veth ingress).
//!
//! ARP requests are answered in place; IPv4 to an endpoint on a shared network is redirected
//! straight into that endpoint's netns (`bpf_redirect_peer`), to one on another network dropped
//! (isolation); to an overlay peer on another host it goes through the VXLAN device
//! (`tunnel`); to a published port of this host it is translated to the endpoint behind it
//! (hairpin, `publish`), to anything else of this host it goes to the host stack; to anywhere
//! else it is masqueraded to the uplink the route leaves by and sent there without the host
//! stack (`egress`).
use aya_ebpf::{helpers::bpf_redirect_peer, programs::TcContext};
use netd_common::{DropReason, EndpointValue, InterfaceValue, IF_PUBLISHES};
use network_types::eth::{EthHdr, EtherType};

use crate::{
    arp, egress,
    maps::{ENDPOINTS_BY_IFINDEX, ENDPOINTS_BY_IP},
    packet::{ipv4, is_never_routed, ptr_at, Ipv4Packet},
    policy, publish,
    route::{self, Route},
    tunnel,
    verdict::Verdict,
};

#[inline(always)]
pub fn endpoint_ingress(ctx: &TcContext) -> Result<Verdict, ()> {
    // SAFETY: ctx.skb.skb is the context pointer the kernel passed in.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: read-only lookup of a plain-old-data value.
    let Some(src) = (unsafe { ENDPOINTS_BY_IFINDEX.get(ifindex) }).copied() else {
        return Ok(Verdict::Drop(DropReason::UnknownInterface));
    };
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds-checked by ptr_at.
    let (src_mac, ether_type) = unsafe { ((*eth).src_addr, (*eth).ether_type) };
    if let Err(reason) = policy::check_source_mac(&src, &src_mac) {
        return Ok(Verdict::Drop(reason));
    }
    if ether_type == EtherType::Arp as u16 {
        return arp::handle(ctx, &src);
    }
    if ether_type != EtherType::Ipv4 as u16 {
        return Ok(Verdict::Pass);
    }
    forward_ipv4(ctx, eth, &src)
}

#[inline(always)]
fn forward_ipv4(ctx: &TcContext, eth: *mut EthHdr, src: &InterfaceValue) -> Result<Verdict, ()> {
    let pkt = ipv4(ctx)?;
    if let Err(reason) = policy::check_source_ip(src, pkt.saddr) {
        return Ok(Verdict::Drop(reason));
    }
    // SAFETY: read-only lookup of a plain-old-data value.
    let dst = unsafe { ENDPOINTS_BY_IP.get(pkt.daddr) };
    if src.flags & IF_PUBLISHES != 0 && (dst.is_some() || pkt.daddr == src.gateway) {
        // Replies of hairpin flows go back with the published address, whatever network the
        // client is on; only endpoints with published ports pay for the lookup.
        if let Some(verdict) = publish::hairpin_reply(ctx, &pkt, src)? {
            return Ok(verdict);
        }
    }
    if let Some(dst) = dst {
        if dst.network_index != src.network_index {
            return Ok(Verdict::Drop(DropReason::Isolation));
        }
        return Ok(deliver(eth, dst));
    }
    if let Some(dst) = tunnel::remote_endpoint(pkt.daddr) {
        if dst.network_index != src.network_index {
            return Ok(Verdict::Drop(DropReason::Isolation));
        }
        return tunnel::to_remote(ctx, eth, &dst);
    }
    if is_never_routed(pkt.daddr) {
        // What a bridge would flood, and 0.0.0.0/8, are the host's to see (as on docker0); the
        // host stack drops what it has no use for.
        return Ok(Verdict::Pass);
    }
    if pkt.daddr == src.gateway {
        return to_host(ctx, &pkt, src);
    }
    match route::lookup(ctx, &pkt) {
        Route::Local => to_host(ctx, &pkt, src),
        Route::None => Ok(Verdict::Drop(match policy::check_may_leave(src) {
            Err(reason) => reason,
            Ok(()) => DropReason::NoRoute,
        })),
        Route::Via { ifindex, next_hop, macs } => {
            if let Err(reason) = policy::check_may_leave(src) {
                return Ok(Verdict::Drop(reason));
            }
            egress::masquerade(ctx, &pkt, ifindex, next_hop, macs)
        }
    }
}

/// Hands the frame at `eth` straight to the endpoint `dst` in its netns. Same L2 segment: the
/// frame keeps its source MAC and is addressed to the peer. `eth` must be bounds-checked, and
/// no helper may have changed the packet since.
#[inline(always)]
pub fn deliver(eth: *mut EthHdr, dst: &EndpointValue) -> Verdict {
    // SAFETY: the caller bounds-checked `eth` and changed nothing since.
    unsafe { (*eth).dst_addr = dst.mac };
    // SAFETY: plain helper call with the peer's host-side ifindex.
    Verdict::Redirect(unsafe { bpf_redirect_peer(dst.ifindex, 0) })
}

/// A packet for an address of this host: to a published port it goes to the endpoint behind
/// it (hairpin), anything else to the host stack.
#[inline(always)]
fn to_host(ctx: &TcContext, pkt: &Ipv4Packet, src: &InterfaceValue) -> Result<Verdict, ()> {
    Ok(publish::hairpin(ctx, pkt, src)?.unwrap_or(Verdict::Pass))
}
