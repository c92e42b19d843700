//! IP fragments of translated datagrams. Only the first fragment carries the ports a flow is
//! found by; it records the address it was translated to, keyed by the datagram (addresses,
//! identification, protocol), and the later fragments get the same translation. A later
//! fragment that arrives before its first one, or after its entry was evicted, is dropped
//! (`fragment`): netd does not reassemble.
use netd_common::{FragKey, FragTarget};

use crate::{maps::FRAGMENTS, packet::Ipv4Packet};

#[inline(always)]
fn key(saddr: u32, daddr: u32, pkt: &Ipv4Packet) -> FragKey {
    FragKey { saddr, daddr, id: pkt.id, proto: pkt.proto, _pad: 0 }
}

/// Records the translation of a first fragment (`saddr`/`daddr` as it arrived).
#[inline(always)]
pub fn remember(saddr: u32, daddr: u32, pkt: &Ipv4Packet, translated: u32) {
    // Best effort: a full LRU map makes room; a failed insert only costs the later fragments.
    let _ = FRAGMENTS.insert(&key(saddr, daddr, pkt), &FragTarget { addr: translated, _pad: 0 }, 0);
}

/// The address a later fragment's first fragment was translated to.
#[inline(always)]
pub fn lookup(saddr: u32, daddr: u32, pkt: &Ipv4Packet) -> Option<u32> {
    // SAFETY: read-only lookup of a plain-old-data value.
    unsafe { FRAGMENTS.get(&key(saddr, daddr, pkt)) }.map(|t| t.addr)
}
