//! Overlay networks across hosts (VXLAN in the kernel's external mode, one device per host).
//!
//! Out: a packet from a local endpoint to an overlay peer on another host gets that host and
//! the network's VNI as its tunnel key (`bpf_skb_set_tunnel_key`) and is redirected to the
//! VXLAN device, which encapsulates it. In: the device's TC ingress sees the decapsulated
//! frame with the tunnel key; the VNI names the network, and the frame goes straight into the
//! local endpoint (`bpf_redirect_peer`) if its source is that network's endpoint on the host it
//! came from and its destination a local endpoint of that network.
use aya_ebpf::{
    bindings::bpf_tunnel_key,
    helpers::{bpf_redirect, bpf_skb_get_tunnel_key, bpf_skb_set_tunnel_key},
    programs::TcContext,
};
use netd_common::{DropReason, RemoteEndpointValue};
use network_types::eth::{EthHdr, EtherType};

use crate::{
    forward,
    maps::{ENDPOINTS_BY_IP, REMOTE_ENDPOINTS, TUNNEL_NETWORKS},
    packet::{ipv4, ptr_at},
    verdict::Verdict,
};

/// What the encapsulated packet's outer IP header gets.
const TUNNEL_TTL: u8 = 64;

/// The overlay peer at `daddr`, if it is one.
#[inline(always)]
pub fn remote_endpoint(daddr: u32) -> Option<RemoteEndpointValue> {
    // SAFETY: read-only lookup of a plain-old-data value.
    unsafe { REMOTE_ENDPOINTS.get(daddr) }.copied()
}

/// Sends the frame at `eth` to the overlay peer `dst` on its host.
#[inline(always)]
pub fn to_remote(ctx: &TcContext, eth: *mut EthHdr, dst: &RemoteEndpointValue) -> Result<Verdict, ()> {
    // Same L2 segment across hosts: the frame keeps its source MAC and is addressed to the peer.
    // SAFETY: `eth` was bounds-checked by ptr_at and no helper has changed the packet yet.
    unsafe { (*eth).dst_addr = dst.mac };
    // SAFETY: an all-zero key is valid; the fields the kernel reads are set below.
    let mut key: bpf_tunnel_key = unsafe { core::mem::zeroed() };
    key.tunnel_id = dst.vni;
    // The helper takes the remote address in host byte order.
    key.__bindgen_anon_1.remote_ipv4 = u32::from_be(dst.host);
    key.tunnel_ttl = TUNNEL_TTL;
    // SAFETY: helper call with the packet's own context and a valid key of the right size.
    let rc = unsafe {
        bpf_skb_set_tunnel_key(ctx.skb.skb as *mut _, &mut key, core::mem::size_of::<bpf_tunnel_key>() as u32, 0)
    };
    if rc != 0 {
        return Err(());
    }
    // SAFETY: plain helper call with the VXLAN device's ifindex.
    Ok(Verdict::Redirect(unsafe { bpf_redirect(dst.tunnel_ifindex, 0) }))
}

#[inline(always)]
pub fn tunnel_ingress(ctx: &TcContext) -> Result<Verdict, ()> {
    // SAFETY: an all-zero key is a valid out-parameter.
    let mut key: bpf_tunnel_key = unsafe { core::mem::zeroed() };
    // SAFETY: helper call with the packet's own context and a valid key of the right size.
    let rc = unsafe {
        bpf_skb_get_tunnel_key(ctx.skb.skb as *mut _, &mut key, core::mem::size_of::<bpf_tunnel_key>() as u32, 0)
    };
    if rc != 0 {
        return Ok(Verdict::Drop(DropReason::TunnelUnknownNetwork));
    }
    // SAFETY: read-only lookup of a plain-old-data value.
    let Some(network_index) = (unsafe { TUNNEL_NETWORKS.get(key.tunnel_id) }).copied() else {
        return Ok(Verdict::Drop(DropReason::TunnelUnknownNetwork));
    };
    // SAFETY: reading the union field the kernel filled for an IPv4 tunnel (host byte order).
    let outer_source = u32::to_be(unsafe { key.__bindgen_anon_1.remote_ipv4 });
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds-checked by ptr_at.
    if unsafe { (*eth).ether_type } != EtherType::Ipv4 as u16 {
        // Peers answer ARP locally: nothing but IPv4 crosses the tunnel.
        return Ok(Verdict::Drop(DropReason::TunnelUnknownEndpoint));
    }
    let pkt = ipv4(ctx)?;
    // The inner source must be that network's endpoint on the host the packet came from.
    match remote_endpoint(pkt.saddr) {
        Some(src) if src.network_index == network_index && src.host == outer_source => {}
        _ => return Ok(Verdict::Drop(DropReason::TunnelUnknownEndpoint)),
    }
    // SAFETY: read-only lookup of a plain-old-data value.
    match unsafe { ENDPOINTS_BY_IP.get(pkt.daddr) } {
        // `eth` was bounds-checked by ptr_at and no helper has changed the packet.
        Some(dst) if dst.network_index == network_index => Ok(forward::deliver(eth, dst)),
        _ => Ok(Verdict::Drop(DropReason::TunnelUnknownEndpoint)),
    }
}
