//! Who may send what: anti-spoofing of endpoints and of what arrives on an uplink,
//! `--internal` networks, and what may enter from an uplink.
use aya_ebpf::programs::TcContext;
use netd_common::{DropReason, InterfaceValue, IF_INTERNAL};

use crate::{
    maps::{ENDPOINTS_BY_IFINDEX, ENDPOINTS_BY_IP, HOST_ADDRS},
    packet::is_loopback,
    verdict::Verdict,
};

/// What the host stack sends into a container, at egress of its host-side veth. netd's own
/// traffic to endpoints is redirected into their peers and never passes here; what does is the
/// host's own (no ingress device: its processes, its ARP, its ICMP errors), let through as
/// docker0 lets the host reach its containers, or a packet the host forwarded from another
/// device. Forwarded from one of netd's endpoints (only what netd handed to the stack) it goes
/// on; from any other device (docker0, another bridge, an uplink) it is dropped, as Docker
/// isolates its bridges from each other.
#[inline(always)]
pub fn endpoint_egress(ctx: &TcContext) -> Verdict {
    // SAFETY: reading a field of the context the program was given.
    let from = unsafe { (*ctx.skb.skb).ingress_ifindex };
    // SAFETY: the value is only tested for presence.
    if from == 0 || unsafe { ENDPOINTS_BY_IFINDEX.get(from) }.is_some() {
        Verdict::Pass
    } else {
        Verdict::Drop(DropReason::ForwardedToEndpoint)
    }
}

/// A frame from an endpoint must carry the endpoint's MAC (every ethertype).
#[inline(always)]
pub fn check_source_mac(src: &InterfaceValue, mac: &[u8; 6]) -> Result<(), DropReason> {
    if *mac != src.mac {
        return Err(DropReason::SpoofedSource);
    }
    Ok(())
}

/// An IPv4 packet from an endpoint must carry the endpoint's address.
#[inline(always)]
pub fn check_source_ip(src: &InterfaceValue, saddr: u32) -> Result<(), DropReason> {
    if saddr != src.ip {
        return Err(DropReason::SpoofedSource);
    }
    Ok(())
}

/// Whether the endpoint may send beyond its network and the host.
#[inline(always)]
pub fn check_may_leave(src: &InterfaceValue) -> Result<(), DropReason> {
    if src.flags & IF_INTERNAL != 0 {
        return Err(DropReason::InternalNetwork);
    }
    Ok(())
}

/// Nothing from outside reaches a container or loopback unasked (published ports, later, are
/// the only way in); masqueraded replies were taken before this check.
#[inline(always)]
pub fn check_may_enter(daddr: u32) -> Result<(), DropReason> {
    if is_loopback(daddr) {
        return Err(DropReason::LoopbackIngress);
    }
    if ENDPOINTS_BY_IP.get_ptr(daddr).is_some() {
        return Err(DropReason::UnpublishedIngress);
    }
    Ok(())
}

/// Whether `addr` is one of the host's own addresses (`NETD_HOSTIP_V1`: every IPv4 address of
/// the daemon's netns, its gateways on `lo` included; never a broadcast address).
#[inline(always)]
pub fn is_host_address(addr: u32) -> bool {
    HOST_ADDRS.get_ptr(&addr).is_some()
}

/// Nothing from outside may carry a netd address as its source: an endpoint's, or one of the
/// host's own (a gateway, the uplink's). Checked before any translation, so that such a packet
/// is neither taken for a masqueraded flow's reply nor let through a published port with a
/// source the endpoint would trust. Legitimate traffic never does: replies come from outside
/// addresses, and hairpin traffic never crosses the uplink.
#[inline(always)]
pub fn check_outside_source(saddr: u32) -> Result<(), DropReason> {
    if ENDPOINTS_BY_IP.get_ptr(saddr).is_some() || is_host_address(saddr) {
        return Err(DropReason::SpoofedSource);
    }
    Ok(())
}
