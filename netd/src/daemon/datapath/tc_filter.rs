//! The endpoint programs' attachment: cls_bpf filters in direct-action mode on the clsact
//! qdisc of the host-side veth, at ingress (what the container sends) and at egress (what the
//! host stack sends into it), each at netd's own priority and handle.
//!
//! Why not a tcx link (as the uplinks have): attaching and detaching a tcx link each wait for
//! a normal RCU grace period under rtnl (6–15 ms, docs/control-plane-latency.md), and a netns
//! teardown pays one per device. A cls_bpf filter is added, replaced and deleted with no grace
//! period on the caller's path. It belongs to the qdisc, not to a file descriptor or a pin, so
//! it survives the daemon (`kill -9` included) and goes with its device.
//!
//! aya attaches and replaces the filter (`NlOptions` with netd's priority and handle); this
//! module reads back what sits at that slot (to check ownership and the program it runs) and
//! deletes it, with one synchronous rtnetlink request each.
use std::io;

use rtnetlink::{
    packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST},
    packet_route::{
        tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcHeader, TcMessage, TcOption},
        AddressFamily, RouteNetlinkMessage,
    },
    sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr},
};

/// netd's filter priority at ingress of an endpoint's host-side veth (78, as netd's route
/// protocol: 'N'). Lower runs first; the veth is netd's own, so nothing else is expected there.
pub const PRIORITY: u16 = 78;
/// netd's filter handle at that priority.
pub const HANDLE: u32 = 78;

/// `ETH_P_ALL` in network byte order, the protocol aya attaches the filter with.
const ETH_P_ALL_BE: u32 = (libc::ETH_P_ALL as u16).to_be() as u32;

/// Which side of the clsact qdisc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Ingress,
    Egress,
}

/// What sits at netd's priority and handle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// The classifier (`bpf` for a cls_bpf filter).
    pub kind: String,
    /// `TCA_BPF_NAME`: the program name given at attach.
    pub name: Option<String>,
    /// `TCA_BPF_ID`: the program it runs.
    pub prog_id: Option<u32>,
}

impl Filter {
    /// A cls_bpf filter attached under `program`'s name (netd's, or a previous netd's).
    pub fn is_program(&self, program: &str) -> bool {
        self.kind == "bpf" && self.name.as_deref() == Some(program)
    }
}

/// What netd's slot holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot {
    Empty,
    Filter(Filter),
    /// Filters of another classifier or protocol hold netd's priority: no filter of netd's
    /// can be added there.
    Foreign,
}

/// The filter at netd's priority and handle at ingress of `ifindex`. A dump of the ingress
/// filters, not a get of the slot: a get answers EINVAL both for "no clsact qdisc" and for
/// "another protocol at this priority".
#[cfg(all(test, feature = "ebpf"))]
pub fn get(ifindex: u32) -> io::Result<Slot> {
    get_at(ifindex, Side::Ingress)
}

/// [`get`] at either side.
pub fn get_at(ifindex: u32, side: Side) -> io::Result<Slot> {
    let mut dump = message(ifindex, side);
    dump.header.handle = TcHandle::UNSPEC;
    dump.header.info = 0;
    let replies = match request(RouteNetlinkMessage::GetTrafficFilter(dump), NLM_F_DUMP) {
        Ok(replies) => replies,
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Ok(Slot::Empty),
        Err(e) => return Err(e),
    };
    let mut slot = Slot::Empty;
    for reply in replies {
        let RouteNetlinkMessage::NewTrafficFilter(tc) = reply else { continue };
        if tc.header.info >> 16 != u32::from(PRIORITY) {
            continue;
        }
        let filter = filter_of(&tc);
        if tc.header.info & 0xffff != ETH_P_ALL_BE || filter.kind != "bpf" {
            return Ok(Slot::Foreign);
        }
        if u32::from(tc.header.handle) == HANDLE {
            slot = Slot::Filter(filter);
        }
    }
    Ok(slot)
}

/// Deletes the filter at netd's priority and handle at `side` of `ifindex`; none is success.
pub fn delete_at(ifindex: u32, side: Side) -> io::Result<()> {
    match request(RouteNetlinkMessage::DelTrafficFilter(message(ifindex, side)), 0) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENODEV)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The request naming netd's slot: clsact side, priority, protocol, handle.
fn message(ifindex: u32, side: Side) -> TcMessage {
    let minor = match side {
        Side::Ingress => TcHandle::MIN_INGRESS,
        Side::Egress => TcHandle::MIN_EGRESS,
    };
    let header = TcHeader {
        family: AddressFamily::Unspec,
        index: ifindex as i32,
        handle: TcHandle::from(HANDLE),
        parent: TcHandle { major: TcHandle::CLSACT.major, minor },
        info: (u32::from(PRIORITY) << 16) | ETH_P_ALL_BE,
    };
    TcMessage::from_parts(header, Vec::new())
}

fn filter_of(tc: &TcMessage) -> Filter {
    let mut filter = Filter::default();
    for attr in &tc.attributes {
        match attr {
            TcAttribute::Kind(kind) => filter.kind = kind.clone(),
            TcAttribute::Options(options) => {
                for option in options {
                    match option {
                        TcOption::Bpf(TcFilterBpfOption::ProgName(name)) => filter.name = Some(name.clone()),
                        TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => filter.prog_id = Some(*id),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    filter
}

/// Sends one request on a fresh rtnetlink socket (in the calling thread's netns) and returns
/// the messages that came back before its acknowledgement (or the end of the dump).
fn request(message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut replies = Vec::new();
    // Bounded: a device's ingress filters fit in a few reads.
    for _ in 0..1024 {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]).map_err(io::Error::other)?;
            let length = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(replies),
                NetlinkPayload::InnerMessage(m) => replies.push(m),
                _ => {}
            }
            if length == 0 {
                break;
            }
            offset += (length + 3) & !3;
        }
    }
    Err(io::Error::other("no acknowledgement from rtnetlink"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_is_clsact_ingress_at_netds_priority_for_every_protocol() {
        let m = message(7, Side::Ingress);
        assert_eq!(m.header.index, 7);
        assert_eq!(u32::from(m.header.parent), 0xffff_fff2);
        assert_eq!(u32::from(m.header.handle), HANDLE);
        // tcm_info: priority in the upper half, htons(ETH_P_ALL) in the lower.
        assert_eq!(m.header.info >> 16, u32::from(PRIORITY));
        assert_eq!(m.header.info & 0xffff, u32::from(0x0003u16.to_be()));
        assert_eq!(u32::from(message(7, Side::Egress).header.parent), 0xffff_fff3);
    }

    #[test]
    fn only_a_bpf_filter_of_the_program_is_the_program() {
        let ours = Filter { kind: "bpf".into(), name: Some("netd_ep_ingress".into()), prog_id: Some(3) };
        assert!(ours.is_program("netd_ep_ingress"));
        assert!(!Filter { name: Some("other".into()), ..ours.clone() }.is_program("netd_ep_ingress"));
        assert!(!Filter { kind: "u32".into(), ..ours }.is_program("netd_ep_ingress"));
    }
}
