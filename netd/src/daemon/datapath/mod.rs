//! The datapath boundary. The rest of netd talks in domain terms (an endpoint with an address,
//! a MAC and a network); only the eBPF implementation knows map layouts and pins. The trait
//! keeps that boundary explicit; the control plane's kernel plumbing is tested end to end and
//! the programs with BPF_PROG_TEST_RUN, so no stand-in implementation exists.
use std::net::Ipv4Addr;

use crate::error::Result;

#[cfg(all(test, feature = "ebpf"))]
mod attach_test;
pub(crate) mod bpffs;
pub mod ebpf;
mod migrate;
#[cfg(all(test, feature = "ebpf"))]
mod prog_test;
#[cfg(all(test, feature = "ebpf"))]
mod prog_test_edges;
#[cfg(all(test, feature = "ebpf"))]
mod prog_test_nat;
#[cfg(all(test, feature = "ebpf"))]
mod prog_test_ports;
#[cfg(all(test, feature = "ebpf"))]
mod prog_test_support;
#[cfg(all(test, feature = "ebpf"))]
mod publish_test;
mod tc_filter;
#[cfg(all(test, feature = "ebpf"))]
mod tunnel_test;

/// What can fail in the eBPF datapath: aya's errors with what netd was doing, and pin files.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("load eBPF object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("{op}: {source}")]
    Program { op: &'static str, source: aya::programs::ProgramError },
    #[error("{op}: {source}")]
    Map { op: &'static str, source: aya::maps::MapError },
    #[error("{op}: {source}")]
    Pin { op: &'static str, source: aya::pin::PinError },
    #[error("{op}: {source}")]
    Link { op: &'static str, source: aya::programs::links::LinkError },
    #[error("{op}: {source}")]
    Io { op: &'static str, source: std::io::Error },
    /// The object lacks a program or map netd needs.
    #[error("{0} missing from the eBPF object")]
    Missing(&'static str),
    /// A pin left by a crash holds a link that is not where it should be.
    #[error("pinned link {pin} is not attached to {ifname}")]
    NotAttached { pin: String, ifname: String },
    /// Someone else's filter holds netd's slot at ingress of an endpoint's veth.
    #[error("ingress of {ifname} has a filter that is not netd's at priority {priority} handle {handle}: {found}")]
    ForeignFilter { ifname: String, priority: u16, handle: u32, found: String },
    /// A map pinned by an earlier start has another size than this start's flags ask for.
    #[error(
        "map {map} is pinned with {pinned} entries but {flag} asks for {wanted}: start with \
         {flag} {pinned}, or run `netd system reset` (removes every container and network) to \
         apply the new size"
    )]
    PinnedSize { map: &'static str, pinned: u32, wanted: u32, flag: &'static str },
    #[error("netd was built without its eBPF programs (cargo feature `ebpf`)")]
    BuiltWithout,
}

/// What the datapath needs to know about an endpoint's network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatapathNetwork {
    /// The network's `Network::index` (BPF maps key networks by this number, not by id).
    pub index: u32,
    /// The network is `--internal`: nothing leaves it but to peers and the host.
    pub internal: bool,
    /// Its veths' MTU (`-o com.docker.network.driver.mtu`); `None`: the kernel's default.
    pub mtu: Option<u32>,
}

impl From<&crate::model::Network> for DatapathNetwork {
    fn from(n: &crate::model::Network) -> Self {
        DatapathNetwork { index: n.index, internal: n.internal, mtu: n.mtu() }
    }
}

/// What the datapath needs to know about one endpoint.
#[derive(Clone, Debug)]
pub struct DatapathEndpoint {
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
    /// The network's `Network::index` (BPF maps key networks by this number, not by id).
    pub network_index: u32,
    /// The network is `--internal`: nothing leaves it but to peers and the host.
    pub internal: bool,
    pub mac: [u8; 6],
    /// MAC of the host-side veth (the gateway's MAC as the container sees it).
    pub host_mac: [u8; 6],
    pub host_ifname: String,
    pub host_ifindex: u32,
}

/// IP protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The IPPROTO_ number the maps use.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

/// One published host port as the datapath needs it: where clients reach it and the endpoint
/// behind it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PublishedPort {
    /// The host address it is published on; `None` is every address (Docker's 0.0.0.0).
    pub host_addr: Option<Ipv4Addr>,
    pub host_port: u16,
    pub proto: Proto,
    pub backend_addr: Ipv4Addr,
    pub backend_port: u16,
}

/// An uplink: where masqueraded traffic leaves and its replies arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uplink {
    pub ifname: String,
    pub ifindex: u32,
    /// The uplink's primary IPv4 address, the masquerade address. An uplink without one gets
    /// its ingress program (nothing enters unasked) but no masqueraded flow leaves through it.
    pub nat_addr: Option<Ipv4Addr>,
}

/// The host's VXLAN device (external mode): overlay traffic to and from other hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tunnel {
    pub ifname: String,
    pub ifindex: u32,
}

/// An overlay network on this host: VXLAN packets with its VNI belong to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlayNetwork {
    pub vni: u32,
    /// The network's `Network::index` here.
    pub network_index: u32,
}

/// An overlay endpoint on another host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEndpoint {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// The other host's underlay address.
    pub host: Ipv4Addr,
    pub vni: u32,
    /// The network's `Network::index` on this host.
    pub network_index: u32,
    /// This host's VXLAN device ([`Tunnel::ifindex`]).
    pub tunnel_ifindex: u32,
}

/// Packets and bytes one drop reason counted at one hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropStat {
    pub reason: &'static str,
    pub code: u8,
    pub hook: &'static str,
    pub packets: u64,
    pub bytes: u64,
}

/// Entries of one flow table against its capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableUsage {
    pub entries: u64,
    pub capacity: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTables {
    pub conntrack_tcp: TableUsage,
    pub conntrack_other: TableUsage,
    pub nat: TableUsage,
    /// The socket-LB is attached: host clients reach published ports.
    pub host_clients: bool,
}

/// What one garbage-collection pass removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Conntrack entries past their timeout (with their NAT entries).
    pub expired: usize,
    /// NAT entries whose conntrack entry is gone.
    pub orphans: usize,
    /// Conntrack entries of addresses that are no longer endpoints.
    pub stale: usize,
}

pub trait Datapath: Send + Sync {
    /// Attaches the program to the endpoint's host-side veth (a cls_bpf filter, which outlives
    /// the daemon with no pin) and adds its map entries. All or nothing.
    fn add_endpoint(&self, ep: &DatapathEndpoint) -> Result<()>;
    /// Removes what `add_endpoint` created; already gone is success.
    fn remove_endpoint(&self, ep: &DatapathEndpoint) -> Result<()> {
        self.forget_endpoint(ep)?;
        self.release_link(&ep.host_ifname)
    }
    /// Removes the endpoint's map entries and flows, and leaves its program attached to its
    /// veth until [`Self::release_link`]: the veth is about to go and takes the filter with it.
    fn forget_endpoint(&self, ep: &DatapathEndpoint) -> Result<()>;
    /// Deletes the program filter of the endpoint whose host-side veth is `host_ifname` if the
    /// veth still exists; a veth that is gone (or a filter already gone) is success.
    fn release_link(&self, host_ifname: &str) -> Result<()>;
    /// Makes the datapath state match exactly `endpoints`: re-adopts the filters of known
    /// endpoints (same slot, this daemon's program, replaced in place; an older netd's pinned
    /// tcx link is replaced by a filter, then unpinned) and removes link pins and map entries
    /// nobody knows. An endpoint that cannot be adopted is logged and left out.
    fn keep_exactly(&self, endpoints: &[DatapathEndpoint]) -> Result<()>;
    /// Makes the uplinks exactly `uplinks`: their ingress programs attached (pinned, adopted
    /// after a restart) and their masquerade addresses current; others detached.
    fn set_uplinks(&self, uplinks: &[Uplink]) -> Result<()>;
    /// Makes the VXLAN device's ingress program attached to `tunnel` only (pinned, adopted
    /// after a restart); `None` detaches it.
    fn set_tunnel(&self, tunnel: Option<&Tunnel>) -> Result<()>;
    /// Makes this host's overlay networks (VNI → network) exactly `networks`.
    fn set_overlay_networks(&self, networks: &[OverlayNetwork]) -> Result<()>;
    /// Adds (or updates) an overlay endpoint on another host.
    fn add_remote_endpoint(&self, ep: &RemoteEndpoint) -> Result<()>;
    /// Removes the overlay endpoint at `ip`; already gone is success.
    fn remove_remote_endpoint(&self, ip: Ipv4Addr) -> Result<()>;
    /// Makes the overlay endpoints on other hosts exactly `endpoints` (a resync).
    fn keep_remote_endpoints(&self, endpoints: &[RemoteEndpoint]) -> Result<()>;
    /// Publishes `ports` (service entries, and their host ports reserved from NAT and from
    /// host processes' binds). All or nothing.
    fn publish(&self, ports: &[PublishedPort]) -> Result<()>;
    /// Removes what `publish` added for `ports`; already gone is success.
    fn unpublish(&self, ports: &[PublishedPort]) -> Result<()>;
    /// Makes the published ports exactly `ports` (restart recovery).
    fn keep_published(&self, ports: &[PublishedPort]) -> Result<()>;
    /// Makes the host's own addresses (every IPv4 address of the daemon's netns) exactly
    /// `addrs`: the socket-LB treats a connect to one of them like one to 127.0.0.1.
    fn set_host_addresses(&self, addrs: &[Ipv4Addr]) -> Result<()>;
    /// Whether host clients reach published ports (the socket-LB is attached at the cgroup2
    /// root; not on a host without a cgroup2 mount).
    fn host_clients(&self) -> bool;
    /// Every (reason, hook) counter.
    fn drop_stats(&self) -> Result<Vec<DropStat>>;
    fn flow_tables(&self) -> Result<FlowTables>;
    /// Removes expired conntrack entries, NAT entries without a flow, and flows of addresses
    /// that are no longer endpoints.
    fn collect_garbage(&self) -> Result<GcReport>;
    /// Unpins everything (maps, programs, links) and deletes the endpoint filters still attached.
    fn purge(&self) -> Result<()>;
}
