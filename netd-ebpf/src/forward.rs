//! Traffic leaving a container (host-side veth ingress).
//!
//! ARP requests are answered in place; IPv4 to an endpoint on a shared network is redirected
//! straight into that endpoint's netns (`bpf_redirect_peer`), to one on another network dropped
//! (isolation); to this host it goes to the host stack; to anywhere else it is masqueraded to
//! the uplink the route leaves by and sent there without the host stack (`egress`).
use aya_ebpf::{helpers::bpf_redirect_peer, programs::TcContext};
use netd_common::{DropReason, InterfaceValue};
use network_types::eth::{EthHdr, EtherType};

use crate::{
    arp, egress,
    maps::{ENDPOINTS_BY_IFINDEX, ENDPOINTS_BY_IP},
    packet::{ipv4, is_never_routed, ptr_at},
    policy,
    route::{self, Route},
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
    if let Some(dst) = unsafe { ENDPOINTS_BY_IP.get(pkt.daddr) } {
        if dst.network_index != src.network_index {
            return Ok(Verdict::Drop(DropReason::Isolation));
        }
        // Same L2 segment: the frame keeps its source MAC and is addressed to the peer.
        // SAFETY: `eth` was bounds-checked by ptr_at and no helper has changed the packet yet.
        unsafe { (*eth).dst_addr = dst.mac };
        // SAFETY: plain helper call with the peer's host-side ifindex.
        return Ok(Verdict::Redirect(unsafe { bpf_redirect_peer(dst.ifindex, 0) }));
    }
    if pkt.daddr == src.gateway || is_never_routed(pkt.daddr) {
        // The gateway, what a bridge would flood, and 0.0.0.0/8 are the host's to see (as on
        // docker0); the host stack drops what it has no use for.
        return Ok(Verdict::Pass);
    }
    match route::lookup(ctx, &pkt) {
        Route::Local => Ok(Verdict::Pass),
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
