//! Connection tracking for masqueraded flows and flows through published ports: entries keyed
//! by the container's side of the flow (for masquerade that is the original tuple; for a
//! published port the tuple of the endpoint's replies, `CT_DNAT`), TCP state from SYN/FIN/RST
//! in both directions, timeouts per state (netd-common `timeouts`). The LRU maps make room by
//! evicting the least recently used flow; the daemon's GC removes expired entries.
use netd_common::{
    timeouts::*, CtEntry, CtKey, CT_CLOSED, CT_CLOSING, CT_DNAT, CT_ESTABLISHED, CT_FIN_ORIGINAL, CT_FIN_REPLY,
    CT_OPEN, CT_SEEN_REPLY,
};

use crate::{
    maps::{CONNTRACK_OTHER, CONNTRACK_TCP, ENDPOINTS_BY_IP, FLOWS_OF},
    packet::{Ipv4Packet, IPPROTO_ICMP, IPPROTO_TCP, L4, TCP_FIN, TCP_RST, TCP_SYN},
};

/// An expiry moves only when it changes by more than this: fewer writes to a shared line.
const REFRESH_SLACK: u64 = 1_000_000_000;

/// The packet's own tuple, as it travels.
#[inline(always)]
pub fn tuple(pkt: &Ipv4Packet, ports: &L4) -> CtKey {
    CtKey { saddr: pkt.saddr, daddr: pkt.daddr, sport: ports.sport, dport: ports.dport, proto: pkt.proto, _pad: [0; 3] }
}

#[inline(always)]
pub fn lookup(key: &CtKey) -> Option<*mut CtEntry> {
    if key.proto == IPPROTO_TCP {
        CONNTRACK_TCP.get_ptr_mut(key)
    } else {
        CONNTRACK_OTHER.get_ptr_mut(key)
    }
}

/// Notes that flow state names `addr` when it is a local endpoint's (`FLOWS_OF`), before the
/// state is made: the daemon purges a removed endpoint's flows only when noted.
#[inline(always)]
pub fn note_endpoint(addr: u32) {
    // SAFETY: read-only lookups of plain-old-data values.
    let known = unsafe { FLOWS_OF.get(&addr).is_some() || ENDPOINTS_BY_IP.get(&addr).is_none() };
    if !known {
        // Full (cannot be: one slot per endpoint): the entry is made anyway, as before notes.
        let _ = FLOWS_OF.insert(&addr, &1, 0);
    }
}

/// Inserts a new entry unless one exists (another CPU may have raced us to it); notes the
/// endpoints on either side first.
#[inline(always)]
pub fn create(key: &CtKey, entry: &CtEntry) -> Result<(), i64> {
    note_endpoint(key.saddr);
    note_endpoint(key.daddr);
    let flags = aya_ebpf::bindings::BPF_NOEXIST as u64;
    let r = if key.proto == IPPROTO_TCP {
        CONNTRACK_TCP.insert(key, entry, flags)
    } else {
        CONNTRACK_OTHER.insert(key, entry, flags)
    };
    r.map_err(|e| e as i64)
}

#[inline(always)]
fn timeout(proto: u8, state: u8) -> u64 {
    match proto {
        IPPROTO_TCP => match state {
            CT_ESTABLISHED => TCP_ESTABLISHED,
            CT_CLOSING => TCP_CLOSING,
            CT_CLOSED => TCP_CLOSED,
            _ => TCP_OPENING,
        },
        IPPROTO_ICMP => ICMP,
        _ => UDP,
    }
}

/// Whether a TCP segment with these flags may open a flow: anything but a RST (a flow picked
/// up mid-stream starts as opening and becomes established on its first reply).
#[inline(always)]
pub fn may_open(proto: u8, tcp_flags: u8) -> bool {
    proto != IPPROTO_TCP || tcp_flags & TCP_RST == 0
}

/// A fresh entry for the first packet of a flow (`flags`: 0, or `CT_DNAT`).
#[inline(always)]
pub fn new_entry(proto: u8, now: u64, nat_addr: u32, nat_port: u16, flags: u8) -> CtEntry {
    CtEntry { expires: now + timeout(proto, CT_OPEN), nat_addr, nat_port, state: CT_OPEN, flags }
}

/// Updates `entry` for a packet of its flow; `reply` says whether it went in the key's reply
/// direction. The state follows the side that opened the flow: the key's source for a
/// masqueraded flow, the key's destination (the client) for a `CT_DNAT` one — there
/// `CT_SEEN_REPLY` and `CT_FIN_REPLY` stand for the endpoint's packets.
#[inline(always)]
pub fn update(entry: *mut CtEntry, proto: u8, tcp_flags: u8, reply: bool, now: u64) {
    // SAFETY: `entry` points into a map value; concurrent updates of the same flow on two CPUs
    // can only lose a flag or an expiry refresh, which the next packet restores.
    let e = unsafe { &mut *entry };
    let mut flags = e.flags;
    let mut state = e.state;
    let dnat = flags & CT_DNAT;
    // From the side that did not open the flow.
    let answer = reply != (dnat != 0);
    if answer {
        flags |= CT_SEEN_REPLY;
    }
    if proto == IPPROTO_TCP {
        if tcp_flags & TCP_SYN != 0 && tcp_flags & TCP_RST == 0 && !answer && state == CT_CLOSED {
            // The same tuple opens again after the previous connection closed.
            flags = dnat;
            state = CT_OPEN;
        } else if tcp_flags & TCP_RST != 0 {
            state = CT_CLOSED;
        } else if state != CT_CLOSED {
            if tcp_flags & TCP_FIN != 0 {
                flags |= if answer { CT_FIN_REPLY } else { CT_FIN_ORIGINAL };
            }
            state = if flags & (CT_FIN_ORIGINAL | CT_FIN_REPLY) == CT_FIN_ORIGINAL | CT_FIN_REPLY {
                CT_CLOSED
            } else if flags & (CT_FIN_ORIGINAL | CT_FIN_REPLY) != 0 {
                CT_CLOSING
            } else if flags & CT_SEEN_REPLY != 0 {
                CT_ESTABLISHED
            } else {
                CT_OPEN
            };
        }
    } else if flags & CT_SEEN_REPLY != 0 {
        state = CT_ESTABLISHED;
    }
    let expires = now + timeout(proto, state);
    if state != e.state || flags != e.flags {
        e.state = state;
        e.flags = flags;
        e.expires = expires;
    } else if expires > e.expires + REFRESH_SLACK {
        e.expires = expires;
    }
}
