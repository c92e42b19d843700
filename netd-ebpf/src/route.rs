//! Sending a packet on through the host's routing table without the host stack:
//! `bpf_fib_lookup` from the interface it arrived on, then `bpf_redirect` with the neighbour's
//! MAC, or `bpf_redirect_neigh` when the kernel has no neighbour entry yet. The lookup needs
//! forwarding enabled on that interface only (netd sets it on its own veths), never the host's
//! global `ip_forward`.
use aya_ebpf::{
    bindings::{
        bpf_check_mtu_flags::BPF_MTU_CHK_SEGS, bpf_fib_lookup as FibParams, bpf_redir_neigh,
        BPF_FIB_LKUP_RET_FRAG_NEEDED, BPF_FIB_LKUP_RET_NOT_FWDED, BPF_FIB_LKUP_RET_NO_NEIGH, BPF_FIB_LKUP_RET_SUCCESS,
    },
    helpers::{bpf_check_mtu, bpf_fib_lookup, bpf_redirect, bpf_redirect_neigh},
    programs::TcContext,
};

use crate::{csum, packet::Ipv4Packet};

const AF_INET: u8 = 2;

/// Where the routing table sends a packet.
pub enum Route {
    /// To this host (a local address, broadcast): the host stack takes it.
    Local,
    /// Out of `ifindex`; `next_hop` is the gateway or the destination itself.
    Via { ifindex: u32, next_hop: u32, macs: Option<([u8; 6], [u8; 6])> },
    /// Unreachable, prohibited, blackholed, or not routable from here.
    None,
}

#[inline(always)]
pub fn lookup(ctx: &TcContext, pkt: &Ipv4Packet) -> Route {
    // SAFETY: an all-zero lookup request is valid; the IPv4 fields are set below.
    let mut params: FibParams = unsafe { core::mem::zeroed() };
    params.family = AF_INET;
    params.l4_protocol = pkt.proto;
    params.__bindgen_anon_3.ipv4_src = pkt.saddr;
    params.__bindgen_anon_4.ipv4_dst = pkt.daddr;
    // SAFETY: ctx.skb.skb is the context pointer the kernel passed in.
    params.ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // tot_len stays 0: the kernel then checks the packet itself against the route's device
    // (a GSO packet passes) and answers FRAG_NEEDED with the route filled in; the caller
    // decides what a too-big packet gets (`fits_mtu`).
    // SAFETY: helper call with a valid request of the right size.
    let rc = unsafe { bpf_fib_lookup(ctx.skb.skb as *mut _, &mut params, core::mem::size_of::<FibParams>() as i32, 0) };
    // SAFETY: reading union fields the kernel filled for AF_INET.
    let next_hop = unsafe { params.__bindgen_anon_4.ipv4_dst };
    match rc as u32 {
        BPF_FIB_LKUP_RET_SUCCESS | BPF_FIB_LKUP_RET_FRAG_NEEDED => {
            Route::Via { ifindex: params.ifindex, next_hop, macs: Some((params.dmac, params.smac)) }
        }
        BPF_FIB_LKUP_RET_NO_NEIGH => Route::Via { ifindex: params.ifindex, next_hop, macs: None },
        BPF_FIB_LKUP_RET_NOT_FWDED => Route::Local,
        _ => Route::None,
    }
}

/// Whether the packet fits the MTU of `ifindex` (a GSO packet: each of its segments).
#[inline(always)]
pub fn fits_mtu(ctx: &TcContext, ifindex: u32) -> bool {
    let mut mtu_len: u32 = 0;
    // SAFETY: helper call with the packet's own context and a valid out-parameter.
    let rc = unsafe { bpf_check_mtu(ctx.skb.skb as *mut _, ifindex, &mut mtu_len, 0, BPF_MTU_CHK_SEGS as u64) };
    rc == 0
}

/// Sends the (already translated) packet out of `ifindex`, lowering its TTL as a router does.
#[inline(always)]
pub fn send(
    ctx: &TcContext,
    pkt: &Ipv4Packet,
    ifindex: u32,
    next_hop: u32,
    macs: Option<([u8; 6], [u8; 6])>,
) -> Result<i64, ()> {
    csum::decrement_ttl(ctx, pkt.ttl, pkt.proto)?;
    match macs {
        Some((dst, src)) => {
            csum::set_macs(ctx, &dst, &src)?;
            // SAFETY: plain helper call.
            Ok(unsafe { bpf_redirect(ifindex, 0) })
        }
        None => {
            // SAFETY: a zeroed request is valid; family and next hop are set.
            let mut nh: bpf_redir_neigh = unsafe { core::mem::zeroed() };
            nh.nh_family = AF_INET as u32;
            nh.__bindgen_anon_1.ipv4_nh = next_hop;
            // SAFETY: helper call with a valid request of the right size.
            Ok(unsafe { bpf_redirect_neigh(ifindex, &mut nh, core::mem::size_of::<bpf_redir_neigh>() as i32, 0) })
        }
    }
}
