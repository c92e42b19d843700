//! IP fragments of translated datagrams. Only the first fragment carries the ports a flow is
//! found by; it records the address it was translated to, keyed by the datagram (addresses,
//! identification, protocol), and the later fragments get the same translation. A later
//! fragment that arrives before its first one, after `timeouts::FRAGMENT`, or after its entry
//! was evicted, is not translated: netd does not reassemble.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use netd_common::{timeouts, FragKey, FragTarget};

use crate::{maps::FRAGMENTS, packet::Ipv4Packet};

#[inline(always)]
fn key(saddr: u32, daddr: u32, pkt: &Ipv4Packet) -> FragKey {
    FragKey { saddr, daddr, id: pkt.id, proto: pkt.proto, _pad: 0 }
}

/// Records the translation of a first fragment (`saddr`/`daddr` as it arrived).
#[inline(always)]
pub fn remember(saddr: u32, daddr: u32, pkt: &Ipv4Packet, translated: u32) {
    // Best effort: a full LRU map makes room; a failed insert only costs the later fragments.
    // SAFETY: plain helper call.
    let created = unsafe { bpf_ktime_get_ns() };
    let _ = FRAGMENTS.insert(&key(saddr, daddr, pkt), &FragTarget { created, addr: translated, _pad: 0 }, 0);
}

/// A first fragment netd does not translate (the host's own datagram) ends any earlier
/// datagram's entry under the same key: its later fragments are not that datagram's.
#[inline(always)]
pub fn forget(saddr: u32, daddr: u32, pkt: &Ipv4Packet) {
    let _ = FRAGMENTS.remove(&key(saddr, daddr, pkt));
}

/// The address a later fragment's first fragment was translated to.
#[inline(always)]
pub fn lookup(saddr: u32, daddr: u32, pkt: &Ipv4Packet) -> Option<u32> {
    // SAFETY: read-only lookup of a plain-old-data value.
    let target = unsafe { FRAGMENTS.get(&key(saddr, daddr, pkt)) }?;
    // SAFETY: plain helper call.
    let age = unsafe { bpf_ktime_get_ns() }.saturating_sub(target.created);
    (age < timeouts::FRAGMENT).then_some(target.addr)
}
