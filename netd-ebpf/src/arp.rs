//! ARP answered in the kernel from the endpoint maps: a peer on the same network gets the
//! peer's MAC (an overlay peer on another host too), the gateway gets the host-side veth MAC.
//! Nothing is flooded.
use aya_ebpf::{helpers::bpf_redirect, programs::TcContext};
use netd_common::{DropReason, InterfaceValue};
use network_types::{arp::ArpHdr, eth::EthHdr};

use crate::{maps::ENDPOINTS_BY_IP, packet::ptr_at, tunnel, verdict::Verdict};

const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;

#[inline(always)]
pub fn handle(ctx: &TcContext, src: &InterfaceValue) -> Result<Verdict, ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    let arp: *mut ArpHdr = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: both pointers were bounds-checked by ptr_at.
    let (eth, arp) = unsafe { (&mut *eth, &mut *arp) };

    // The sender fields must be the endpoint's own; 0.0.0.0 is an address probe (RFC 5227).
    let sender_ip = u32::from_ne_bytes(arp.spa);
    if arp.sha != src.mac || (sender_ip != src.ip && sender_ip != 0) {
        return Ok(Verdict::Drop(DropReason::SpoofedSource));
    }
    if u16::from_be_bytes(arp.oper) != ARP_REQUEST {
        // Replies and announcements go to the host stack, which keeps its neighbour entries.
        return Ok(Verdict::Pass);
    }
    let target = u32::from_ne_bytes(arp.tpa);
    let answer = if target == src.gateway {
        src.host_mac
    } else {
        // SAFETY: read-only lookup of a plain-old-data value.
        match unsafe { ENDPOINTS_BY_IP.get(target) } {
            Some(peer) if peer.network_index == src.network_index => peer.mac,
            Some(_) => return Ok(Verdict::Drop(DropReason::ArpUnknownTarget)),
            // An overlay peer on another host answers from here too.
            None => match tunnel::remote_endpoint(target) {
                Some(peer) if peer.network_index == src.network_index => peer.mac,
                _ => return Ok(Verdict::Drop(DropReason::ArpUnknownTarget)),
            },
        }
    };

    // Turn the request into the reply in place and send it back out of the same veth.
    eth.dst_addr = eth.src_addr;
    eth.src_addr = answer;
    arp.oper = ARP_REPLY.to_be_bytes();
    arp.tha = arp.sha;
    arp.sha = answer;
    let requester_ip = arp.spa;
    arp.spa = arp.tpa;
    arp.tpa = requester_ip;

    // SAFETY: plain helper call; the ifindex is the interface the packet arrived on.
    Ok(Verdict::Redirect(unsafe { bpf_redirect((*ctx.skb.skb).ifindex, 0) }))
}
