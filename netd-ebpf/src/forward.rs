//! Forwarding for traffic leaving a container (host-side veth ingress).
//!
//! Verdicts: ARP requests are answered in place; IPv4 to an endpoint on a shared network is
//! redirected straight into that endpoint's netns (`bpf_redirect_peer`); IPv4 to an endpoint on
//! another network is dropped (isolation); any other destination — the gateway, the host, the
//! outside — goes to the host stack (`TC_ACT_OK`), which routes it.
use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    helpers::bpf_redirect_peer,
    programs::TcContext,
};
use netd_common::{DropReason, InterfaceValue};
use network_types::{
    eth::{EthHdr, EtherType},
    ip::Ipv4Hdr,
};

use crate::{
    arp, drop,
    maps::{ENDPOINTS_BY_IFINDEX, ENDPOINTS_BY_IP},
    packet::{ip_key, ptr_at},
};

#[inline(always)]
pub fn endpoint_ingress(ctx: &TcContext) -> Result<i32, ()> {
    // SAFETY: ctx.skb.skb is the context pointer the kernel passed in.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: read-only lookup of a plain-old-data value.
    let src = match unsafe { ENDPOINTS_BY_IFINDEX.get(ifindex) } {
        Some(src) => *src,
        None => {
            drop::count(ctx, DropReason::UnknownInterface);
            return Ok(TC_ACT_SHOT as i32);
        }
    };

    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // Anti-spoofing comes first, for every ethertype: a frame must carry the endpoint's MAC.
    // SAFETY: bounds-checked by ptr_at.
    let (src_mac, ether_type) = unsafe { ((*eth).src_addr, (*eth).ether_type) };
    if src_mac != src.mac {
        drop::count(ctx, DropReason::SpoofedSource);
        return Ok(TC_ACT_SHOT as i32);
    }
    if ether_type == EtherType::Arp as u16 {
        return arp::handle(ctx, &src);
    }
    if ether_type != EtherType::Ipv4 as u16 {
        return Ok(TC_ACT_OK as i32);
    }
    forward_ipv4(ctx, eth, &src)
}

#[inline(always)]
fn forward_ipv4(ctx: &TcContext, eth: *mut EthHdr, src: &InterfaceValue) -> Result<i32, ()> {
    let ip: *const Ipv4Hdr = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: bounds-checked by ptr_at.
    let (saddr, daddr) = unsafe { (ip_key((*ip).src_addr), ip_key((*ip).dst_addr)) };
    if saddr != src.ip {
        drop::count(ctx, DropReason::SpoofedSource);
        return Ok(TC_ACT_SHOT as i32);
    }
    // SAFETY: read-only lookup of a plain-old-data value.
    let Some(dst) = (unsafe { ENDPOINTS_BY_IP.get(daddr) }) else {
        return Ok(TC_ACT_OK as i32);
    };
    if dst.network_index != src.network_index {
        drop::count(ctx, DropReason::Isolation);
        return Ok(TC_ACT_SHOT as i32);
    }
    // Same L2 segment: the frame keeps its source MAC and is addressed to the peer.
    // SAFETY: bounds-checked by ptr_at.
    unsafe { (*eth).dst_addr = dst.mac };
    // SAFETY: plain helper call with the peer's host-side ifindex.
    Ok(unsafe { bpf_redirect_peer(dst.ifindex, 0) } as i32)
}
