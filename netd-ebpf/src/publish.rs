//! Published ports (`-p`): a client's packets to a published host address:port get their
//! destination translated to the endpoint behind it (the client's address kept) and are
//! delivered straight into that endpoint; the endpoint's replies get the published address put
//! back as their source.
//!
//! - From outside (`from_outside`, uplink ingress): `NETD_SVC_V1` by (daddr, dport, proto),
//!   then the wildcard (0, dport, proto) when daddr is an address of this host (the uplink's
//!   own address, else one in `NETD_HOSTIP_V1`; never a broadcast address). 127.0.0.0/8 never
//!   matches here.
//! - From a container to a host address or its gateway (`hairpin`, endpoint ingress, where
//!   traffic for the host would go to the stack): the same lookup, delivered into the endpoint
//!   whatever network it is on — a published port is the host's. A container reaching its own
//!   published port also gets its source translated to its gateway address (src == dst is a
//!   martian).
//! - Replies: to an outside client through the masquerade path (`egress`, which finds the
//!   conntrack entry by the packet's tuple and puts the published address back, no NAT map
//!   entry); to a container (`hairpin_reply`) before the isolation check, only for endpoints
//!   with `IF_PUBLISHES`.
//!
//! - ICMP errors the endpoint sends about such a flow (`backend_icmp_error`): to an outside
//!   client through `egress`, to a container client in `hairpin_reply`; the published
//!   address:port put back in the outer source and the quoted destination.
//! - Later fragments on the hairpin path follow their first fragment both ways
//!   (`NETD_FRAG_V1`).
//!
//! Conntrack entries are keyed by the endpoint's side of the flow `{backend, client,
//! backend_port, client_port}` with `CT_DNAT`; `nat_addr:nat_port` is what the client talks
//! to. A tuple another live flow holds is not taken over (`ct_invalid`).
use aya_ebpf::{helpers::bpf_ktime_get_ns, programs::TcContext};
use netd_common::{CtKey, DropReason, InterfaceValue, NatReverse, ServiceKey, ServiceValue, CT_CLOSED, CT_DNAT};

use crate::{
    conntrack, csum, fragments,
    maps::{ENDPOINTS_BY_IP, SERVICES},
    nat,
    packet::{
        is_icmp_error, is_loopback, l4, Ipv4Packet, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IP_DST_OFF, IP_SRC_OFF, L4,
    },
    policy,
    uplink::{deliver, endpoint},
    verdict::Verdict,
};

/// The endpoint behind `daddr:dport`, and whether only the wildcard entry matched (then
/// `daddr` must still be shown to be an address of this host).
#[inline(always)]
fn service(daddr: u32, dport: u16, proto: u8) -> Option<(ServiceValue, bool)> {
    let mut key = ServiceKey { addr: daddr, port: dport, proto, _pad: 0 };
    // SAFETY: read-only lookup of a plain-old-data value.
    if let Some(svc) = unsafe { SERVICES.get(&key) } {
        return Some((*svc, false));
    }
    key.addr = 0;
    // SAFETY: read-only lookup of a plain-old-data value.
    unsafe { SERVICES.get(&key) }.map(|svc| (*svc, true))
}

/// The ports of a TCP or UDP packet that carries its L4 header, else None.
#[inline(always)]
fn ports(ctx: &TcContext, pkt: &Ipv4Packet) -> Result<Option<L4>, ()> {
    if (pkt.proto != IPPROTO_TCP && pkt.proto != IPPROTO_UDP) || pkt.later_fragment {
        return Ok(None);
    }
    l4(ctx, pkt).map(Some)
}

/// A packet from outside to a published port: translated and delivered, or None (the host's).
/// `uplink_addr` is the address of the uplink it arrived on (0 if none).
#[inline(always)]
pub fn from_outside(ctx: &TcContext, pkt: &Ipv4Packet, uplink_addr: u32) -> Result<Option<Verdict>, ()> {
    if is_loopback(pkt.daddr) {
        // A port published on 127.0.0.1 is the socket-LB's only (moby#45610).
        return Ok(None);
    }
    let Some(ports) = ports(ctx, pkt)? else {
        return Ok(None);
    };
    let Some((svc, wildcard)) = service(pkt.daddr, ports.dport, pkt.proto) else {
        return Ok(None);
    };
    // SAFETY: read-only lookup of a plain-old-data value.
    let backend = unsafe { ENDPOINTS_BY_IP.get(svc.backend_addr) }.copied();
    // Every unicast address of the host, and only those (Docker's `--dst-type LOCAL`): the
    // uplink's own, or one the daemon lists in `NETD_HOSTIP_V1`. Not the FIB: it answers "not
    // forwarded" for a subnet's broadcast address just as for a local one.
    if wildcard && pkt.daddr != uplink_addr && !policy::is_host_address(pkt.daddr) {
        return Ok(None);
    }
    let Some(ep) = backend else {
        return Ok(Some(Verdict::Drop(DropReason::NoEndpoint)));
    };
    if pkt.ttl <= 1 {
        return Ok(Some(Verdict::Drop(DropReason::TtlExceeded)));
    }
    let key = backend_side(&svc, pkt.saddr, &ports, pkt.proto);
    if let Err(reason) = track(&key, pkt.daddr, ports.dport, ports.tcp_flags) {
        return Ok(Some(Verdict::Drop(reason)));
    }
    if pkt.fragment {
        fragments::remember(pkt.saddr, pkt.daddr, pkt, svc.backend_addr);
    }
    nat::set_destination(ctx, pkt, ports.dport, svc.backend_addr, svc.backend_port)?;
    deliver(ctx, pkt, &ep).map(Some)
}

/// A container's packet for the host (its gateway, or what the FIB does not forward: a local
/// address or a broadcast one): to a published port of a host address it is translated and
/// delivered into the endpoint behind it; None leaves it to the host. A wildcard publish
/// matches the gateway and the host's own addresses only, never a broadcast address (as
/// Docker's `--dst-type LOCAL`).
#[inline(always)]
pub fn hairpin(ctx: &TcContext, pkt: &Ipv4Packet, src: &InterfaceValue) -> Result<Option<Verdict>, ()> {
    if pkt.later_fragment {
        return hairpin_later_fragment(ctx, pkt, src);
    }
    let Some(ports) = ports(ctx, pkt)? else {
        return Ok(None);
    };
    let found = service(pkt.daddr, ports.dport, pkt.proto)
        .filter(|(_, wildcard)| !wildcard || pkt.daddr == src.gateway || policy::is_host_address(pkt.daddr));
    let Some((svc, _)) = found else {
        if pkt.fragment {
            // The host's datagram: an earlier one's entry under the same key is not its.
            fragments::forget(pkt.saddr, pkt.daddr, pkt);
        }
        return Ok(None);
    };
    let ep = match endpoint(pkt, svc.backend_addr) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    // A container reaching itself is seen by itself as coming from its gateway.
    let own = svc.backend_addr == pkt.saddr;
    let client = if own { src.gateway } else { pkt.saddr };
    let key = backend_side(&svc, client, &ports, pkt.proto);
    if let Err(reason) = track(&key, pkt.daddr, ports.dport, ports.tcp_flags) {
        return Ok(Some(Verdict::Drop(reason)));
    }
    if pkt.fragment {
        fragments::remember(pkt.saddr, pkt.daddr, pkt, svc.backend_addr);
    }
    if own {
        csum::set_addr(ctx, IP_SRC_OFF, pkt.l4, pkt.proto, pkt.saddr, client)?;
    }
    nat::set_destination(ctx, pkt, ports.dport, svc.backend_addr, svc.backend_port)?;
    deliver(ctx, pkt, &ep).map(Some)
}

/// A later fragment of a container's datagram to a host address: if its first fragment went to
/// a published port's endpoint (`hairpin` recorded it), it follows — destination the endpoint,
/// and for a container reaching itself source its gateway; else None (the host's).
#[inline(always)]
fn hairpin_later_fragment(ctx: &TcContext, pkt: &Ipv4Packet, src: &InterfaceValue) -> Result<Option<Verdict>, ()> {
    let Some(backend) = fragments::lookup(pkt.saddr, pkt.daddr, pkt) else {
        return Ok(None);
    };
    let ep = match endpoint(pkt, backend) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    if backend == pkt.saddr {
        csum::set_addr_l3(ctx, IP_SRC_OFF, pkt.saddr, src.gateway)?;
    }
    csum::set_addr_l3(ctx, IP_DST_OFF, pkt.daddr, backend)?;
    deliver(ctx, pkt, &ep).map(Some)
}

/// A later fragment of an endpoint's datagram to another endpoint or its gateway: if its first
/// fragment was a hairpin reply (`hairpin_reply` recorded the published address), it follows —
/// source the published address, and for a container that reached itself destination its own
/// address; else None.
#[inline(always)]
fn hairpin_reply_later_fragment(
    ctx: &TcContext,
    pkt: &Ipv4Packet,
    src: &InterfaceValue,
) -> Result<Option<Verdict>, ()> {
    let Some(published) = fragments::lookup(pkt.saddr, pkt.daddr, pkt) else {
        return Ok(None);
    };
    let client = if pkt.daddr == src.gateway { src.ip } else { pkt.daddr };
    let ep = match endpoint(pkt, client) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    csum::set_addr_l3(ctx, IP_SRC_OFF, pkt.saddr, published)?;
    if client != pkt.daddr {
        csum::set_addr_l3(ctx, IP_DST_OFF, pkt.daddr, client)?;
    }
    deliver(ctx, pkt, &ep).map(Some)
}

/// A packet of an endpoint with published ports to another endpoint or to its own gateway: if
/// it is a reply of a hairpin flow, its source becomes the published address again (and for a
/// container that reached itself the destination its own address) and it is delivered into
/// the client; None: not such a reply.
#[inline(always)]
pub fn hairpin_reply(ctx: &TcContext, pkt: &Ipv4Packet, src: &InterfaceValue) -> Result<Option<Verdict>, ()> {
    if pkt.later_fragment {
        return hairpin_reply_later_fragment(ctx, pkt, src);
    }
    if pkt.proto == IPPROTO_ICMP {
        return hairpin_icmp_error(ctx, pkt, src);
    }
    let Some(ports) = ports(ctx, pkt)? else {
        return Ok(None);
    };
    let key = conntrack::tuple(pkt, &ports);
    let dnat = conntrack::lookup(&key).and_then(|entry| {
        // SAFETY: read of a map value.
        let (flags, nat_addr, nat_port) = unsafe { ((*entry).flags, (*entry).nat_addr, (*entry).nat_port) };
        (flags & CT_DNAT != 0).then_some((entry, nat_addr, nat_port))
    });
    let Some((entry, nat_addr, nat_port)) = dnat else {
        if pkt.fragment {
            // Not a hairpin reply: an earlier one's entry under the same key is not its.
            fragments::forget(pkt.saddr, pkt.daddr, pkt);
        }
        return Ok(None);
    };
    // The gateway as a hairpin client is this container itself (see `hairpin`).
    let client = if pkt.daddr == src.gateway { src.ip } else { pkt.daddr };
    let ep = match endpoint(pkt, client) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    if pkt.fragment {
        fragments::remember(pkt.saddr, pkt.daddr, pkt, nat_addr);
    }
    // SAFETY: plain helper call.
    conntrack::update(entry, pkt.proto, ports.tcp_flags, false, unsafe { bpf_ktime_get_ns() });
    nat::rewrite_source(ctx, pkt, &key, nat_addr, nat_port)?;
    if client != pkt.daddr {
        nat::set_destination(ctx, pkt, ports.dport, client, ports.dport)?;
    }
    deliver(ctx, pkt, &ep).map(Some)
}

/// An ICMP error of an endpoint with published ports about a hairpin flow (the client is
/// another endpoint, or itself through its gateway): translated as `backend_icmp_error` says —
/// and for a container that reached itself, its gateway in the outer destination and the quoted
/// source becomes its own address again — and delivered into the client. None: not such an
/// error.
#[inline(always)]
fn hairpin_icmp_error(ctx: &TcContext, pkt: &Ipv4Packet, src: &InterfaceValue) -> Result<Option<Verdict>, ()> {
    let icmp = l4(ctx, pkt)?;
    let Some((quoted, nat_addr, nat_port)) = backend_icmp_error(ctx, pkt, &icmp) else {
        return Ok(None);
    };
    if pkt.fragment {
        return Ok(Some(Verdict::Drop(DropReason::IcmpErrorInvalid)));
    }
    let client = if pkt.daddr == src.gateway { src.ip } else { pkt.daddr };
    let ep = match endpoint(pkt, client) {
        Ok(ep) => ep,
        Err(reason) => return Ok(Some(Verdict::Drop(reason))),
    };
    nat::rewrite_icmp_error_from_backend(ctx, pkt, &quoted, nat_addr, nat_port)?;
    if client != pkt.daddr {
        let port = quoted.reply.dport;
        nat::rewrite_quoted(ctx, pkt, &quoted, nat::Quote::Source, (pkt.daddr, port), (client, port))?;
        csum::set_addr(ctx, IP_DST_OFF, pkt.l4, IPPROTO_ICMP, pkt.daddr, client)?;
    }
    deliver(ctx, pkt, &ep).map(Some)
}

/// For an ICMP error an endpoint sends (`pkt`, its L4 header read as `icmp`) about a flow that
/// entered through one of its published ports: the quoted packet (the client's, as the endpoint
/// received it: client → endpoint:port) and the published address and port the client used.
/// None: not such an error. The quoted packet's reply tuple, as `nat::quoted` reads it, is the
/// flow's conntrack key; the error must come from that endpoint and go to that client.
#[inline(always)]
pub fn backend_icmp_error(ctx: &TcContext, pkt: &Ipv4Packet, icmp: &L4) -> Option<(nat::Quoted, u32, u16)> {
    if pkt.proto != IPPROTO_ICMP || !is_icmp_error(icmp.icmp_type) {
        return None;
    }
    let quoted = nat::quoted(ctx, pkt).ok()?;
    if quoted.reply.saddr != pkt.saddr || quoted.reply.daddr != pkt.daddr {
        return None;
    }
    let entry = conntrack::lookup(&quoted.reply)?;
    // SAFETY: read of a map value.
    let (flags, nat_addr, nat_port) = unsafe { ((*entry).flags, (*entry).nat_addr, (*entry).nat_port) };
    if flags & CT_DNAT == 0 {
        return None;
    }
    Some((quoted, nat_addr, nat_port))
}

/// For an ICMP error arriving about the flow whose reply tuple (client → published address, as
/// `nat::quoted` reads it) is `reply`: the endpoint's address and port the quoted packet must
/// show, when a tracked flow through that published port exists.
#[inline(always)]
pub fn icmp_error_target(reply: &CtKey) -> Option<NatReverse> {
    if reply.proto != IPPROTO_TCP && reply.proto != IPPROTO_UDP {
        return None;
    }
    // Called for the uplink's own address only: the wildcard entry applies.
    let (svc, _) = service(reply.daddr, reply.dport, reply.proto)?;
    let key = CtKey {
        saddr: svc.backend_addr,
        daddr: reply.saddr,
        sport: svc.backend_port,
        dport: reply.sport,
        proto: reply.proto,
        _pad: [0; 3],
    };
    let entry = conntrack::lookup(&key)?;
    // SAFETY: read of a map value.
    let e = unsafe { *entry };
    if e.flags & CT_DNAT == 0 || e.nat_addr != reply.daddr || e.nat_port != reply.dport {
        return None;
    }
    Some(NatReverse { created: 0, addr: svc.backend_addr, port: svc.backend_port, _pad: 0 })
}

/// The conntrack key of a published port's flow: its tuple as the endpoint sends its replies.
#[inline(always)]
fn backend_side(svc: &ServiceValue, client: u32, ports: &L4, proto: u8) -> CtKey {
    CtKey { saddr: svc.backend_addr, daddr: client, sport: svc.backend_port, dport: ports.sport, proto, _pad: [0; 3] }
}

/// Tracks a client's packet (the key's reply direction) of the flow `key` through the
/// published `addr:port`. A tuple held by another flow is taken over only once that flow is
/// closed or expired.
#[inline(always)]
fn track(key: &CtKey, addr: u32, port: u16, tcp_flags: u8) -> Result<(), DropReason> {
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(entry) = conntrack::lookup(key) {
        // SAFETY: read of a map value.
        let e = unsafe { *entry };
        if e.flags & CT_DNAT != 0 && e.nat_addr == addr && e.nat_port == port {
            conntrack::update(entry, key.proto, tcp_flags, true, now);
            return Ok(());
        }
        if (e.state != CT_CLOSED && e.expires >= now) || !conntrack::may_open(key.proto, tcp_flags) {
            return Err(DropReason::CtInvalid);
        }
        // SAFETY: `entry` points into a map value; a racing writer of the same dead tuple
        // writes an entry just as valid.
        unsafe { *entry = conntrack::new_entry(key.proto, now, addr, port, CT_DNAT) };
        return Ok(());
    }
    if !conntrack::may_open(key.proto, tcp_flags) {
        return Err(DropReason::CtInvalid);
    }
    if conntrack::create(key, &conntrack::new_entry(key.proto, now, addr, port, CT_DNAT)).is_err() {
        // Another CPU tracked it first, or the map refused.
        let Some(winner) = conntrack::lookup(key) else {
            return Err(DropReason::ConntrackFull);
        };
        // SAFETY: read of a map value.
        let e = unsafe { *winner };
        if e.flags & CT_DNAT == 0 || e.nat_addr != addr || e.nat_port != port {
            return Err(DropReason::CtInvalid);
        }
        conntrack::update(winner, key.proto, tcp_flags, true, now);
    }
    Ok(())
}
