//! Header rewrites with incremental checksum updates, all in one place. The kernel helpers
//! handle CHECKSUM_PARTIAL (veth TX offload) and CHECKSUM_COMPLETE; `BPF_F_MARK_MANGLED_0` keeps
//! a zero UDP checksum zero. Values are passed as they sit in the packet (network order).
use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    programs::TcContext,
};

use crate::packet::{l4_csum_offset, IPPROTO_ICMP, IPPROTO_UDP, IP_CSUM_OFF, IP_TTL_OFF};

/// Flags for `bpf_l4_csum_replace` on `proto`'s checksum.
#[inline(always)]
fn l4_flags(proto: u8) -> u64 {
    if proto == IPPROTO_UDP {
        BPF_F_MARK_MANGLED_0 as u64
    } else {
        0
    }
}

/// Rewrites the IPv4 address at `addr_off` from `old` to `new`, fixing the IP checksum and —
/// for TCP/UDP, whose checksum covers the pseudo-header — the L4 checksum at `l4`.
#[inline(always)]
pub fn set_addr(ctx: &TcContext, addr_off: usize, l4: usize, proto: u8, old: u32, new: u32) -> Result<(), ()> {
    set_addr_with(ctx, addr_off, Some(l4), proto, old, new)
}

/// `set_addr` for a later fragment: no L4 header in this packet (the first fragment's L4
/// checksum covered the address change for the whole datagram).
#[inline(always)]
pub fn set_addr_l3(ctx: &TcContext, addr_off: usize, old: u32, new: u32) -> Result<(), ()> {
    set_addr_with(ctx, addr_off, None, IPPROTO_ICMP, old, new)
}

#[inline(always)]
fn set_addr_with(ctx: &TcContext, addr_off: usize, l4: Option<usize>, proto: u8, old: u32, new: u32) -> Result<(), ()> {
    if let (Some(l4), true) = (l4, proto != IPPROTO_ICMP) {
        let flags = l4_flags(proto) | BPF_F_PSEUDO_HDR as u64 | 4;
        ctx.l4_csum_replace(l4 + l4_csum_offset(proto), old as u64, new as u64, flags).map_err(|_| ())?;
    }
    ctx.l3_csum_replace(IP_CSUM_OFF, old as u64, new as u64, 4).map_err(|_| ())?;
    ctx.store(addr_off, &new, 0).map_err(|_| ())
}

/// Rewrites the 16-bit L4 field at `field_off` (a port, or the ICMP echo identifier) from `old`
/// to `new` (host order), fixing the L4 checksum at `l4`.
#[inline(always)]
pub fn set_l4_field(ctx: &TcContext, field_off: usize, l4: usize, proto: u8, old: u16, new: u16) -> Result<(), ()> {
    let (old, new) = (old.to_be(), new.to_be());
    ctx.l4_csum_replace(l4 + l4_csum_offset(proto), old as u64, new as u64, l4_flags(proto) | 2).map_err(|_| ())?;
    ctx.store(field_off, &new, 0).map_err(|_| ())
}

/// Lowers the TTL by one (the host routes the packet), fixing the IP checksum.
#[inline(always)]
pub fn decrement_ttl(ctx: &TcContext, ttl: u8, proto: u8) -> Result<(), ()> {
    // The checksum covers TTL and protocol as one 16-bit word.
    let old = u16::from_ne_bytes([ttl, proto]);
    let new = u16::from_ne_bytes([ttl - 1, proto]);
    ctx.l3_csum_replace(IP_CSUM_OFF, old as u64, new as u64, 2).map_err(|_| ())?;
    ctx.store(IP_TTL_OFF, &(ttl - 1), 0).map_err(|_| ())
}

/// Rewrites bytes inside an ICMP error's quoted packet: the ICMP checksum at `icmp_csum_off`
/// covers them as plain data (no pseudo-header).
#[inline(always)]
pub fn set_icmp_payload_u32(ctx: &TcContext, icmp_csum_off: usize, off: usize, old: u32, new: u32) -> Result<(), ()> {
    ctx.l4_csum_replace(icmp_csum_off, old as u64, new as u64, 4).map_err(|_| ())?;
    ctx.store(off, &new, 0).map_err(|_| ())
}

#[inline(always)]
pub fn set_icmp_payload_u16(ctx: &TcContext, icmp_csum_off: usize, off: usize, old: u16, new: u16) -> Result<(), ()> {
    ctx.l4_csum_replace(icmp_csum_off, old as u64, new as u64, 2).map_err(|_| ())?;
    ctx.store(off, &new, 0).map_err(|_| ())
}

/// Updates the checksum of a quoted IPv4 header at `quoted_csum_off` for its address changing
/// from `old` to `new`, and the ICMP checksum at `icmp_csum_off` for that checksum's change.
#[inline(always)]
pub fn fix_quoted_ip_csum(
    ctx: &TcContext,
    icmp_csum_off: usize,
    quoted_csum_off: usize,
    old: u32,
    new: u32,
) -> Result<(), ()> {
    let before: u16 = ctx.load(quoted_csum_off).map_err(|_| ())?;
    ctx.l3_csum_replace(quoted_csum_off, old as u64, new as u64, 4).map_err(|_| ())?;
    let after: u16 = ctx.load(quoted_csum_off).map_err(|_| ())?;
    ctx.l4_csum_replace(icmp_csum_off, before as u64, after as u64, 2).map_err(|_| ())
}

/// Sets the Ethernet addresses (after a rewrite the old packet pointers are invalid).
#[inline(always)]
pub fn set_macs(ctx: &TcContext, dst: &[u8; 6], src: &[u8; 6]) -> Result<(), ()> {
    ctx.store(0, dst, 0).map_err(|_| ())?;
    ctx.store(6, src, 0).map_err(|_| ())
}
