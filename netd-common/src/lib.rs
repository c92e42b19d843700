//! Types shared by the eBPF programs and the userspace daemon: map keys/values, pin names,
//! drop reasons. Everything is `#[repr(C)]` with explicit padding so both sides agree on the
//! layout byte for byte.
#![no_std]

/// Pin names carry the layout version: a changed layout gets a new name (and a migration),
/// never an in-place reshape. BPF object names are limited to 15 characters.
pub mod maps {
    /// EndpointValue by IPv4 address (the destination side of a forwarding decision).
    pub const ENDPOINTS: &str = "NETD_EP_V1";
    /// EndpointValue by the ifindex of its host-side veth (the source side).
    pub const INTERFACES: &str = "NETD_IF_V1";
    /// Per-CPU drop counters indexed by [`crate::DropReason`].
    pub const DROPS: &str = "NETD_DROPS_V1";
    pub const MAX_ENDPOINTS: u32 = 65_536;
    pub const DROP_SLOTS: u32 = 64;
}

/// Program names as they appear in the object file.
pub mod programs {
    pub const ENDPOINT_INGRESS: &str = "netd_ep_ingress";
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
    pub _pad: [u8; 2],
}

/// An endpoint as the source of a packet, keyed by the ifindex of its host-side veth.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterfaceValue {
    /// The endpoint's own IPv4 address (network order); anything else is spoofed.
    pub ip: u32,
    /// The network's gateway address (network order), answered by ARP with `host_mac`.
    pub gateway: u32,
    pub network_index: u32,
    /// Container-side MAC (anti-spoofing).
    pub mac: [u8; 6],
    /// Host-side veth MAC: the gateway's MAC as the container sees it.
    pub host_mac: [u8; 6],
}

/// Per-CPU drop counter value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounter {
    pub packets: u64,
    pub bytes: u64,
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
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all three are repr(C), Copy, and have no implicit padding.
    unsafe impl aya::Pod for super::EndpointValue {}
    unsafe impl aya::Pod for super::InterfaceValue {}
    unsafe impl aya::Pod for super::DropCounter {}
}
