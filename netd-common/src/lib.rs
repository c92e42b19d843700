//! Types shared by the eBPF programs and the userspace daemon: map keys/values, pin names,
//! drop reasons, hooks, conntrack states and timeouts. Everything is `#[repr(C)]` with explicit
//! padding so both sides agree on the layout byte for byte.
#![no_std]

/// Pin names carry the layout version: a changed layout gets a new name, never an in-place
/// reshape; the old layout moves to [`legacy`] and the daemon copies its entries into the new
/// map before unpinning it. BPF object names are limited to 15 characters.
pub mod maps {
    /// EndpointValue by IPv4 address (the destination side of a forwarding decision).
    pub const ENDPOINTS: &str = "NETD_EP_V2";
    /// InterfaceValue by the ifindex of its host-side veth (the source side).
    pub const INTERFACES: &str = "NETD_IF_V2";
    /// UplinkValue by the uplink's ifindex.
    pub const UPLINKS: &str = "NETD_UPLINK_V1";
    /// CtEntry by CtKey (the flow's original direction), TCP flows.
    pub const CT_TCP: &str = "NETD_CT_TCP_V1";
    /// CtEntry by CtKey, UDP and ICMP flows.
    pub const CT_OTHER: &str = "NETD_CT_ANY_V1";
    /// NatReverse by the reply tuple as it arrives on an uplink.
    pub const NAT: &str = "NETD_NAT_V1";
    /// Host ports NAT must never hand out (published ports), by PortKey.
    pub const RESERVED_PORTS: &str = "NETD_RSVD_V1";
    /// ServiceValue by ServiceKey: published host ports and the endpoint behind each.
    pub const SERVICES: &str = "NETD_SVC_V1";
    /// SockRevValue by SockRevKey: what a socket-LB'd UDP socket must see as its peer.
    pub const SOCK_REVERSE: &str = "NETD_SOCKREV_V1";
    /// The IPv4 addresses of the daemon's netns (u32 key, network order; value unused), for
    /// the socket-LB, which cannot ask the FIB whether an address is local.
    pub const HOST_ADDRS: &str = "NETD_HOSTIP_V1";
    /// FragTarget by FragKey: how later fragments of a translated datagram are translated.
    pub const FRAGMENTS: &str = "NETD_FRAG_V1";
    /// Per-CPU drop counters indexed by `metric_slot(reason, hook)`.
    pub const METRICS: &str = "NETD_METRICS_V1";
    /// RemoteEndpointValue by IPv4 address: overlay endpoints on other hosts.
    pub const REMOTE_ENDPOINTS: &str = "NETD_REMOTE_V1";
    /// Network index (u32) by VNI: this host's overlay networks, for VXLAN packets that arrive.
    pub const TUNNEL_NETWORKS: &str = "NETD_VNI_V1";
    /// The addresses of local endpoints (u32 key, network order; value unused) that some
    /// conntrack or NAT entry may name, noted by the datapath as it makes one: removing an
    /// endpoint scans the flow tables (every bucket: ≈2 ms) only for those. Sized as the
    /// endpoint maps.
    pub const FLOWS_OF: &str = "NETD_FLOWS_OF_V1";

    pub const MAX_ENDPOINTS: u32 = 65_536;
    pub const MAX_UPLINKS: u32 = 64;
    /// Conntrack maps are LRU: when full, the least recently used flow makes room.
    pub const CT_TCP_ENTRIES: u32 = 262_144;
    pub const CT_OTHER_ENTRIES: u32 = 262_144;
    /// The NAT map is a plain hash: when full a new flow is dropped (counted) rather than
    /// evicting a live flow's reverse mapping.
    pub const NAT_ENTRIES: u32 = 524_288;
    pub const MAX_RESERVED_PORTS: u32 = 65_536;
    /// Published (address, port, protocol) triples.
    pub const MAX_SERVICES: u32 = 65_536;
    pub const SOCK_REVERSE_ENTRIES: u32 = 65_536;
    pub const MAX_HOST_ADDRS: u32 = 1_024;
    pub const MAX_REMOTE_ENDPOINTS: u32 = 65_536;
    pub const MAX_TUNNEL_NETWORKS: u32 = 4_096;
    /// Datagrams being fragmented at once (LRU: a datagram's fragments arrive within moments).
    pub const FRAGMENT_ENTRIES: u32 = 8_192;
    /// Slots per hook in the metrics array (codes are below this).
    pub const REASON_SLOTS: u32 = 64;
    pub const HOOK_SLOTS: u32 = 4;
    pub const METRIC_SLOTS: u32 = REASON_SLOTS * HOOK_SLOTS;
}

/// Program names as they appear in the object file.
pub mod programs {
    /// TC ingress of an endpoint's host-side veth: everything a container sends.
    pub const ENDPOINT_INGRESS: &str = "netd_ep_ingress";
    /// TC egress of an endpoint's host-side veth: what the host stack sends into a container
    /// (netd's own traffic is redirected into the peer and never passes there).
    pub const ENDPOINT_EGRESS: &str = "netd_ep_egress";
    /// TC ingress of an uplink: replies of masqueraded flows, published ports, and what must
    /// not enter.
    pub const UPLINK_INGRESS: &str = "netd_up_ingress";
    /// TC ingress of the host's VXLAN device (external mode): packets from overlay peers on
    /// other hosts, decapsulated, go straight into the local endpoint.
    pub const TUNNEL_INGRESS: &str = "netd_tun_ingress";
    /// cgroup socket-LB for host clients of published ports (cgroup2 root, scoped by netns
    /// cookie): connect4, sendmsg4, recvmsg4, getpeername4; post_bind4 keeps host processes
    /// off published ports.
    pub const SOCK_CONNECT4: &str = "netd_sock_connect4";
    pub const SOCK_SENDMSG4: &str = "netd_sock_sendmsg4";
    pub const SOCK_RECVMSG4: &str = "netd_sock_recvmsg4";
    pub const SOCK_GETPEERNAME4: &str = "netd_sock_getpeername4";
    pub const SOCK_POST_BIND4: &str = "netd_sock_post_bind4";
    /// The global (`.rodata`) the socket-LB programs compare `bpf_get_netns_cookie` with:
    /// the daemon's netns cookie, set at load (`EbpfLoader::override_global`). 0 never matches.
    pub const NETNS_COOKIE_GLOBAL: &str = "NETD_NETNS_COOKIE";
}

/// `PortKey` values in `NETD_RSVD_V1` (bits): the (port, protocol) is published; netd added the
/// port to the netns's `net.ipv4.ip_local_reserved_ports` (it was not there before), so it is
/// netd's to remove again.
pub const RSVD_PUBLISHED: u8 = 1;
pub const RSVD_SYSCTL_OWNED: u8 = 2;

/// NAT source ports. A flow keeps its own source port when nothing else holds the reply tuple;
/// otherwise a port is drawn from this range, which lies above Linux's default ephemeral range
/// (32768–60999), so the host's own connections do not pick these ports by themselves.
pub mod nat {
    pub const PORT_MIN: u16 = 61_000;
    pub const PORT_MAX: u16 = 65_535;
    /// Candidates tried before a new flow is dropped as `nat_port_exhausted`.
    pub const RETRIES: u32 = 32;
}

/// Conntrack timeouts in nanoseconds of `CLOCK_MONOTONIC` (`bpf_ktime_get_ns`).
pub mod timeouts {
    const SECOND: u64 = 1_000_000_000;
    /// TCP until the reply direction is seen.
    pub const TCP_OPENING: u64 = 60 * SECOND;
    pub const TCP_ESTABLISHED: u64 = 6 * 3600 * SECOND;
    /// TCP after one side sent FIN.
    pub const TCP_CLOSING: u64 = 120 * SECOND;
    /// TCP after both FINs or a RST.
    pub const TCP_CLOSED: u64 = 10 * SECOND;
    pub const UDP: u64 = 60 * SECOND;
    pub const ICMP: u64 = 30 * SECOND;
    /// A NAT entry whose conntrack entry is gone is removed by the daemon's GC only after this
    /// long, so that a flow being set up (NAT first, conntrack second) is never taken for one.
    pub const NAT_ORPHAN_GRACE: u64 = 10 * SECOND;
    /// How long later fragments follow their first one (Linux's `ipfrag_time`): an IP
    /// identification that comes round again later belongs to another datagram.
    pub const FRAGMENT: u64 = 30 * SECOND;
}

/// An endpoint as the destination of a packet, keyed by its IPv4 address (network order, as the
/// four bytes of the address read with `u32::from_ne_bytes`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointValue {
    /// ifindex of the host-side veth; `bpf_redirect_peer` to it lands in the container.
    pub ifindex: u32,
    /// Network the endpoint belongs to; forwarding only happens within one network.
    pub network_index: u32,
    /// MAC address of the container-side interface.
    pub mac: [u8; 6],
    /// Host-side veth MAC: the source MAC of frames netd delivers from outside the network.
    pub host_mac: [u8; 6],
}

/// An overlay endpoint on another host, keyed by its IPv4 address (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteEndpointValue {
    /// The other host's underlay address (network order): the VXLAN packet's destination.
    pub host: u32,
    /// VXLAN network identifier of the endpoint's network.
    pub vni: u32,
    /// The network's index on this host (isolation compares it like a local endpoint's).
    pub network_index: u32,
    /// ifindex of this host's VXLAN device (external mode) that carries the packet.
    pub tunnel_ifindex: u32,
    /// MAC of the container-side interface (ARP answers and the inner destination MAC).
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// `InterfaceValue::flags`: the endpoint's network is `--internal` (no way out).
pub const IF_INTERNAL: u32 = 1;

/// An endpoint as the source of a packet, keyed by the ifindex of its host-side veth.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceValue {
    /// The endpoint's own IPv4 address (network order); anything else is spoofed.
    pub ip: u32,
    /// The network's gateway address (network order), answered by ARP with `host_mac`.
    pub gateway: u32,
    pub network_index: u32,
    /// `IF_*` bits.
    pub flags: u32,
    /// Container-side MAC (anti-spoofing).
    pub mac: [u8; 6],
    /// Host-side veth MAC: the gateway's MAC as the container sees it.
    pub host_mac: [u8; 6],
}

/// An uplink, keyed by its ifindex.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkValue {
    /// The uplink's primary IPv4 address (network order): the masquerade address.
    pub nat_addr: u32,
    pub _pad: u32,
}

/// A flow's tuple. Conntrack keys it by the original direction (container → outside), the NAT
/// map by the reply direction as it arrives (outside → NAT address). Addresses in network
/// order, ports in host order; for ICMP echo `sport` is the identifier and `dport` 0 in the
/// original direction (the reverse: `sport` 0, `dport` the identifier).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtKey {
    pub saddr: u32,
    pub daddr: u32,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// `CtEntry::state` for TCP (UDP and ICMP entries stay `CT_OPEN`/`CT_ESTABLISHED`).
pub const CT_OPEN: u8 = 1;
pub const CT_ESTABLISHED: u8 = 2;
pub const CT_CLOSING: u8 = 3;
pub const CT_CLOSED: u8 = 4;

/// `CtEntry::flags`. "Reply" is the side that did not open the flow: the key's destination
/// for a masqueraded flow, the endpoint (the key's source) for a `CT_DNAT` one.
pub const CT_SEEN_REPLY: u8 = 1;
pub const CT_FIN_ORIGINAL: u8 = 2;
pub const CT_FIN_REPLY: u8 = 4;

/// A tracked flow.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtEntry {
    /// `bpf_ktime_get_ns` after which the entry is dead.
    pub expires: u64,
    /// The source address and port the flow leaves with (the masquerade).
    pub nat_addr: u32,
    pub nat_port: u16,
    pub state: u8,
    pub flags: u8,
}

/// The original source of a masqueraded flow, keyed by its reply tuple.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatReverse {
    /// When the mapping was made (`bpf_ktime_get_ns`); see `timeouts::NAT_ORPHAN_GRACE`.
    pub created: u64,
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}

/// A published host port: the host address it is published on (network order; 0 = every
/// address of the host, Docker's 0.0.0.0), the port (host order) and the protocol.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub addr: u32,
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// The endpoint behind a published port: its address (network order) and container port
/// (host order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceValue {
    pub backend_addr: u32,
    pub backend_port: u16,
    pub _pad: u16,
}

/// A UDP socket the socket-LB pointed at an endpoint: its socket cookie and the endpoint.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockRevKey {
    pub cookie: u64,
    pub backend_addr: u32,
    pub backend_port: u16,
    pub _pad: u16,
}

/// The address and port that socket asked for, which it must see as its peer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockRevValue {
    pub addr: u32,
    pub port: u16,
    pub _pad: u16,
}

/// `CtEntry::flags`: the entry is keyed by an endpoint's side of a flow that entered through a
/// published port; `nat_addr:nat_port` is the published address the client talks to.
pub const CT_DNAT: u8 = 8;

/// `InterfaceValue::flags`: the endpoint has published ports, so its packets to other
/// endpoints may be replies that need the published address put back (hairpin).
pub const IF_PUBLISHES: u32 = 2;

/// One fragmented datagram: its addresses (network order), IP identification (as in the
/// packet) and protocol. Only the first fragment has ports; the later ones are found by this.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub saddr: u32,
    pub daddr: u32,
    pub id: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// The address the first fragment was translated to (the source on the way out, the
/// destination on the way back): later fragments get the same, for `timeouts::FRAGMENT`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragTarget {
    /// When the first fragment passed (`bpf_ktime_get_ns`).
    pub created: u64,
    pub addr: u32,
    pub _pad: u32,
}

/// A host port by protocol (`IPPROTO_TCP`/`IPPROTO_UDP`), in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortKey {
    pub port: u16,
    pub proto: u8,
    pub _pad: u8,
}

/// Per-CPU drop counter value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounter {
    pub packets: u64,
    pub bytes: u64,
}

/// Where a program runs. Stable codes (they index the metrics array).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    EndpointIngress = 0,
    UplinkIngress = 1,
    EndpointEgress = 2,
    /// TC ingress of the host's VXLAN device: packets from overlay peers on other hosts.
    TunnelIngress = 3,
}

impl Hook {
    pub const ALL: [Hook; 4] = [Hook::EndpointIngress, Hook::UplinkIngress, Hook::EndpointEgress, Hook::TunnelIngress];

    pub const fn name(self) -> &'static str {
        match self {
            Hook::EndpointIngress => "endpoint_ingress",
            Hook::UplinkIngress => "uplink_ingress",
            Hook::EndpointEgress => "endpoint_egress",
            Hook::TunnelIngress => "tunnel_ingress",
        }
    }
}

/// Index of the counter of `reason` at `hook` in the metrics array.
pub const fn metric_slot(reason: DropReason, hook: Hook) -> u32 {
    hook as u32 * maps::REASON_SLOTS + reason as u32
}

/// Declares `DropReason` with its codes and names in one list, so that `ALL`, `name` and
/// `from_code` cannot drift from the enum.
macro_rules! drop_reasons {
    ($($(#[doc = $doc:literal])* $variant:ident = $code:literal => $name:literal,)+) => {
        /// Stable drop-reason codes: never renumber; a retired code stays as `UnusedN`.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum DropReason {
            $($(#[doc = $doc])* $variant = $code,)+
        }

        impl DropReason {
            /// Every reason, in code order.
            pub const ALL: [DropReason; [$($code),+].len()] = [$(DropReason::$variant),+];

            /// The name `netd stats` shows.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)+
                }
            }

            pub const fn from_code(code: u8) -> Option<DropReason> {
                match code {
                    $($code => Some(DropReason::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

drop_reasons! {
    /// Malformed or truncated header.
    Malformed = 1 => "malformed",
    /// Source IP or MAC is not the endpoint's own.
    SpoofedSource = 2 => "spoofed_source",
    /// Destination is an endpoint on a network the source does not share.
    Isolation = 3 => "isolation",
    /// ARP request for an address that is neither a peer nor the gateway.
    ArpUnknownTarget = 4 => "arp_unknown_target",
    /// A packet arrived on an interface that has no endpoint entry.
    UnknownInterface = 5 => "unknown_interface",
    /// The host has no route to the destination (unreachable, prohibited, blackhole).
    NoRoute = 6 => "no_route",
    /// The route to the destination leaves through a device that is not an uplink.
    NotViaUplink = 7 => "not_via_uplink",
    /// A container on an `--internal` network sent to the outside.
    InternalNetwork = 8 => "internal_network",
    /// Only TCP, UDP and ICMP are masqueraded.
    UnsupportedProtocol = 9 => "unsupported_protocol",
    /// A later IP fragment whose first fragment netd did not see (or no longer remembers).
    Fragment = 10 => "fragment",
    /// No free NAT source port for the flow's destination after `nat::RETRIES` candidates.
    NatPortExhausted = 11 => "nat_port_exhausted",
    /// The NAT map is full: new flows are refused, existing ones keep working.
    NatTableFull = 12 => "nat_table_full",
    /// A TCP segment that cannot open a flow (RST without a tracked flow), or a client's packet
    /// to a published port whose tuple, as the endpoint sees it, a live other flow holds.
    CtInvalid = 13 => "ct_invalid",
    /// A packet from outside for a container address that no published port let in.
    UnpublishedIngress = 14 => "unpublished_ingress",
    /// A packet from outside for 127.0.0.0/8.
    LoopbackIngress = 15 => "loopback_ingress",
    /// TTL would reach zero on the way out.
    TtlExceeded = 16 => "ttl_exceeded",
    /// The conntrack map refused a new entry.
    ConntrackFull = 17 => "conntrack_full",
    /// A reply's original source is no longer an endpoint.
    NoEndpoint = 18 => "no_endpoint",
    /// An ICMP error that carries a fragment or a truncated inner header.
    IcmpErrorInvalid = 19 => "icmp_error_invalid",
    /// A packet without DF too big for the uplink (netd does not fragment).
    MtuExceeded = 20 => "mtu_exceeded",
    /// A packet the host stack forwarded towards an endpoint from a device that is not netd's
    /// (docker0 or another bridge): the networks stay isolated as Docker's bridges are.
    ForwardedToEndpoint = 21 => "forwarded_to_endpoint",
    /// A VXLAN packet whose VNI is not one of this host's overlay networks.
    TunnelUnknownNetwork = 22 => "tunnel_unknown_network",
    /// A VXLAN packet whose inner source is not an endpoint of that network on the host it came
    /// from, or whose inner destination is not a local endpoint of that network.
    TunnelUnknownEndpoint = 23 => "tunnel_unknown_endpoint",
}

/// Layouts of maps that older netd versions pinned, kept so that a daemon starting over their
/// pins can copy the entries into today's maps (the daemon's `datapath::migrate`). Never used by
/// the programs; a layout stays here for as long as a pin of it may exist on some host.
pub mod legacy {
    /// Pin names of the retired layouts.
    pub mod maps {
        /// `EndpointV1` by IPv4 address; replaced by `NETD_EP_V2` (host-side MAC added).
        pub const ENDPOINTS_V1: &str = "NETD_EP_V1";
        /// `InterfaceV1` by host-side ifindex; replaced by `NETD_IF_V2` (flags added).
        pub const INTERFACES_V1: &str = "NETD_IF_V1";
    }

    /// `NETD_EP_V1` value: an endpoint as the destination of a packet.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct EndpointV1 {
        pub ifindex: u32,
        pub network: u32,
        pub mac: [u8; 6],
        pub _pad: [u8; 2],
    }

    /// `NETD_IF_V1` value: an endpoint as the source of a packet.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct InterfaceV1 {
        pub ip: u32,
        pub gateway: u32,
        pub network: u32,
        pub mac: [u8; 6],
        pub host_mac: [u8; 6],
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are repr(C), Copy, and have no implicit padding.
    unsafe impl aya::Pod for super::EndpointValue {}
    unsafe impl aya::Pod for super::InterfaceValue {}
    unsafe impl aya::Pod for super::UplinkValue {}
    unsafe impl aya::Pod for super::RemoteEndpointValue {}
    unsafe impl aya::Pod for super::CtKey {}
    unsafe impl aya::Pod for super::CtEntry {}
    unsafe impl aya::Pod for super::NatReverse {}
    unsafe impl aya::Pod for super::PortKey {}
    unsafe impl aya::Pod for super::FragKey {}
    unsafe impl aya::Pod for super::ServiceKey {}
    unsafe impl aya::Pod for super::ServiceValue {}
    unsafe impl aya::Pod for super::SockRevKey {}
    unsafe impl aya::Pod for super::SockRevValue {}
    unsafe impl aya::Pod for super::FragTarget {}
    unsafe impl aya::Pod for super::DropCounter {}
    unsafe impl aya::Pod for super::legacy::EndpointV1 {}
    unsafe impl aya::Pod for super::legacy::InterfaceV1 {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_implicit_padding() {
        use core::mem::size_of;
        assert_eq!(size_of::<EndpointValue>(), 4 + 4 + 6 + 6);
        assert_eq!(size_of::<InterfaceValue>(), 4 * 4 + 6 + 6);
        assert_eq!(size_of::<UplinkValue>(), 8);
        assert_eq!(size_of::<RemoteEndpointValue>(), 4 * 4 + 6 + 2);
        assert_eq!(size_of::<CtKey>(), 16);
        assert_eq!(size_of::<CtEntry>(), 16);
        assert_eq!(size_of::<NatReverse>(), 16);
        assert_eq!(size_of::<PortKey>(), 4);
        assert_eq!(size_of::<FragKey>(), 12);
        assert_eq!(size_of::<ServiceKey>(), 8);
        assert_eq!(size_of::<ServiceValue>(), 8);
        assert_eq!(size_of::<SockRevKey>(), 16);
        assert_eq!(size_of::<SockRevValue>(), 8);
        assert_eq!(size_of::<FragTarget>(), 16);
        assert_eq!(size_of::<legacy::EndpointV1>(), 16);
        assert_eq!(size_of::<legacy::InterfaceV1>(), 4 * 3 + 6 + 6);
    }

    #[test]
    fn every_reason_fits_the_metric_slots() {
        for reason in DropReason::ALL {
            assert!((reason as u32) < maps::REASON_SLOTS);
            for hook in Hook::ALL {
                assert!(metric_slot(reason, hook) < maps::METRIC_SLOTS);
            }
        }
    }
}
