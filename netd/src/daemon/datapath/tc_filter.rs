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
//! A new veth gets its clsact qdisc and both filters here, in one send ([`attach_new`]); aya
//! replaces a filter in place (`NlOptions` with netd's priority and handle) when a restart
//! adopts a veth. This module also reads back what sits at netd's slot (to check ownership and
//! the program it runs) and deletes it, with one synchronous rtnetlink request each.
use std::{
    io,
    ops::ControlFlow,
    os::fd::{AsRawFd, BorrowedFd},
};

use rtnetlink::{
    packet_core::{
        NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
    },
    packet_route::{
        tc::{TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcHeader, TcMessage, TcOption},
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

/// A program for netd's slot at one side of a new veth.
pub struct NewFilter<'a> {
    pub side: Side,
    /// The program's name, which the filter carries (`TCA_BPF_NAME`, as aya names it).
    pub program: &'static str,
    pub fd: BorrowedFd<'a>,
}

/// Adds the clsact qdisc to the new device `ifindex` and a filter at netd's slot for each of
/// `filters` (direct action), in one send on one socket: the kernel handles the requests one
/// after another and acknowledges each, so that a run pays for one socket and one system call
/// instead of three of each (aya opens a socket per request). A qdisc already there is fine.
/// The outer error: the requests could not be sent or answered; the inner ones, each filter's
/// own (`EEXIST`: the slot is taken), in the order of `filters`.
pub fn attach_new(ifindex: u32, filters: &[NewFilter<'_>]) -> io::Result<Vec<io::Result<()>>> {
    let qdisc = TcHeader {
        family: AddressFamily::Unspec,
        index: ifindex as i32,
        handle: TcHandle { major: TcHandle::CLSACT.major, minor: 0 },
        parent: TcHandle::CLSACT,
        info: 0,
    };
    let qdisc = TcMessage::from_parts(qdisc, vec![TcAttribute::Kind("clsact".into())]);
    let mut messages = vec![(RouteNetlinkMessage::NewQueueDiscipline(qdisc), NLM_F_CREATE | NLM_F_EXCL)];
    for filter in filters {
        let mut tc = message(ifindex, filter.side);
        tc.attributes = vec![
            TcAttribute::Kind("bpf".into()),
            TcAttribute::Options(vec![
                TcOption::Bpf(TcFilterBpfOption::ProgFd(filter.fd.as_raw_fd() as u32)),
                TcOption::Bpf(TcFilterBpfOption::ProgName(filter.program.into())),
                TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
            ]),
        ];
        messages.push((RouteNetlinkMessage::NewTrafficFilter(tc), NLM_F_CREATE | NLM_F_EXCL));
    }
    let mut acks = requests(messages)?.into_iter();
    match acks.next() {
        Some(Ok(())) => {}
        Some(Err(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Some(Err(e)) => return Err(e),
        None => return Err(io::Error::other("no acknowledgement from rtnetlink")),
    }
    Ok(acks.collect())
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
    let socket = open()?;
    let mut buf = Vec::new();
    append(&mut buf, message, flags, 1);
    socket.send(&buf, 0)?;
    let mut replies = Vec::new();
    read_replies(&socket, |reply| match reply.payload {
        NetlinkPayload::Error(e) if e.code.is_some() => ControlFlow::Break(Err(e.to_io())),
        NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => ControlFlow::Break(Ok(())),
        NetlinkPayload::InnerMessage(m) => {
            replies.push(m);
            ControlFlow::Continue(())
        }
        _ => ControlFlow::Continue(()),
    })?;
    Ok(replies)
}

/// A fresh rtnetlink socket in the calling thread's netns, connected to the kernel.
fn open() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Appends `message` as a request (acknowledged, with `flags` besides) numbered `seq`.
fn append(buf: &mut Vec<u8>, message: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
    packet.finalize();
    let at = buf.len();
    buf.resize(at + packet.buffer_len(), 0);
    packet.serialize(&mut buf[at..]);
}

/// Sends `messages` (each with its extra flags) in one buffer on a fresh rtnetlink socket and
/// returns each one's acknowledgement, in their order.
fn requests(messages: Vec<(RouteNetlinkMessage, u16)>) -> io::Result<Vec<io::Result<()>>> {
    let socket = open()?;
    let count = messages.len();
    let mut buf = Vec::new();
    for (seq, (message, flags)) in (1u32..).zip(messages) {
        append(&mut buf, message, flags, seq);
    }
    socket.send(&buf, 0)?;
    let mut acks: Vec<Option<io::Result<()>>> = (0..count).map(|_| None).collect();
    read_replies(&socket, |reply| {
        let slot = (reply.header.sequence_number as usize).checked_sub(1).and_then(|i| acks.get_mut(i));
        if let (NetlinkPayload::Error(e), Some(slot)) = (reply.payload, slot) {
            *slot = Some(match e.code {
                Some(_) => Err(e.to_io()),
                None => Ok(()),
            });
        }
        match acks.iter().all(Option::is_some) {
            true => ControlFlow::Break(Ok(())),
            false => ControlFlow::Continue(()),
        }
    })?;
    Ok(acks.into_iter().map(|ack| ack.expect("all acknowledged")).collect())
}

/// Reads what the kernel sends back on `socket`, each message to `each` until it breaks.
/// Bounded: the replies to netd's few requests fit in a few reads.
fn read_replies(
    socket: &Socket,
    mut each: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> ControlFlow<io::Result<()>>,
) -> io::Result<()> {
    for _ in 0..1024 {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..]).map_err(io::Error::other)?;
            let length = reply.header.length as usize;
            if let ControlFlow::Break(done) = each(reply) {
                return done;
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
