//! Errors users meet, with Docker's texts (DESIGN §3). The API sends the Display text and a
//! status code; the CLI prints the text on one line.
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use crate::ipam::host::HostRoute;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    NetworkInUse { name: String, id: String },
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    /// `network disconnect -f` of a name that is no container (Docker then looks for an
    /// endpoint of that name).
    #[error("endpoint {0} not found")]
    EndpointNotFound(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    ContainerExists { name: String, id: String },
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap,
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    PoolsExhausted,
    #[error("Invalid subnet {0} : invalid CIDR address: {0}")]
    InvalidSubnet(String),
    /// A subnet with no address left for the gateway (/31, /32).
    #[error("failed to allocate gateway (): No available addresses on this pool")]
    SubnetTooSmall(String),
    /// An ip-range that is not a CIDR (Docker's CLI: Go's `net.ParseCIDR`).
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    // Subnets and gateways that would take over the host's own addresses (netd's texts:
    // Docker 20.10 accepts these; docs/architecture.md, Departures).
    #[error("invalid subnet {subnet}: {kind} addresses ({range}) cannot be used for a network")]
    ReservedSubnet { subnet: Ipv4Network, kind: &'static str, range: Ipv4Network },
    #[error("subnet {subnet} overlaps the host's route {route}")]
    SubnetOverlapsHostRoute { subnet: Ipv4Network, route: HostRoute },
    #[error("subnet {subnet} overlaps the host's address {address} (dev {dev})")]
    SubnetOverlapsHostAddress { subnet: Ipv4Network, address: Ipv4Network, dev: String },
    #[error("gateway {gateway} is already an address of this host (dev {dev})")]
    GatewayIsHostAddress { gateway: Ipv4Addr, dev: String },
    #[error("ip-range {range} contains {address}, already an address of this host (dev {dev})")]
    IpRangeHasHostAddress { range: Ipv4Network, address: Ipv4Addr, dev: String },
    #[error("no matching subnet for gateway {0}")]
    GatewayNotInSubnet(String),
    #[error("no matching subnet for range {0}")]
    IpRangeNotInSubnet(String),
    #[error("every ip-range or gateway must have a corresponding subnet")]
    NoSubnetForRangeOrGateway,
    /// A gateway given as a CIDR.
    #[error("invalid gateway address {0} in Ipam configuration")]
    InvalidGateway(String),
    /// The subnet's network or broadcast address as the gateway.
    #[error("failed to allocate gateway ({0}): Address already in use")]
    GatewayUnavailable(Ipv4Addr),
    #[error("operation is not permitted on predefined {0} network")]
    PredefinedNetwork(String),
    #[error("no available IPv4 addresses on this network's address pools: {name} ({id})")]
    NoAddresses { name: String, id: String },
    /// The datapath's maps are sized at daemon start (`netd daemon --max-endpoints …`).
    #[error("netd's datapath holds at most {capacity} {what} (netd daemon {flag})")]
    CapacityExceeded { what: &'static str, capacity: usize, flag: &'static str },
    #[error("Address already in use")]
    AddressInUse(Ipv4Addr),
    #[error("Invalid address {0}: It does not belong to any of this network's subnets")]
    AddressOutsideSubnet(Ipv4Addr),
    #[error("user specified IP address is supported on user defined networks only")]
    IpNeedsUserNetwork,
    #[error("user specified IP address is supported only when connecting to networks with user configured subnets")]
    IpNeedsUserSubnet,
    #[error("network-scoped alias is supported only for containers in user defined networks")]
    AliasNeedsUserNetwork,
    #[error("conflicting options: hostname and the network mode")]
    HostnameConflict,
    #[error("conflicting options: dns and the network mode")]
    DnsConflict,
    #[error("could not get container for {0}: No such container: {0}")]
    LinkTargetNotFound(String),
    #[error("Cannot link to /{0}, as it does not belong to the default network")]
    LinkTargetNotOnDefaultNetwork(String),
    #[error("Cannot link to /{name}, as it does not belong to the network {network}")]
    LinkTargetNotOnNetwork { name: String, network: String },
    #[error("bad format for add-host: \"{0}\"")]
    AddHostFormat(String),
    #[error("invalid IP address in add-host: \"{0}\"")]
    AddHostAddress(String),
    #[error("container cannot be connected to multiple networks with one of the networks in private (none) mode")]
    NoneModeExclusive,
    #[error(
        "container sharing network namespace with another container or host cannot be connected to any other network"
    )]
    SharedNetwork,
    #[error("container cannot be disconnected from host network or connected to host network")]
    HostNetworkConflict,
    /// `network create -d overlay` on a daemon without `--cluster-store`.
    #[error("overlay networks need a cluster store: start netd daemon with --cluster-store etcd://HOST:PORT --advertise-addr IP")]
    NoClusterStore,
    /// The cluster store (etcd) did not answer: commands that need it fail at once.
    #[error("cluster store {store} is unreachable: {reason}")]
    ClusterUnavailable { store: String, reason: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    /// An eBPF load, map or link operation failed.
    #[error(transparent)]
    Datapath(#[from] crate::datapath::DatapathError),
    /// An rtnetlink request failed, or the kernel answered something unexpected.
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An OS call failed (a file, mount, namespace, cgroup or process).
    #[error("{context}: {source}")]
    Os { context: String, source: std::io::Error },
    /// The host is not as netd left it (a link missing inside a netns it just configured).
    #[error("{0}")]
    Inconsistent(String),
    /// Several steps of a teardown failed (it goes on after each): every one, in order.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<Error>),
}

impl Error {
    /// An OS call's failure (`std::io::Error`, or nix's `Errno`) with what was being done.
    pub fn os(context: impl Into<String>, source: impl Into<std::io::Error>) -> Self {
        Error::Os { context: context.into(), source: source.into() }
    }

    /// HTTP status for the API.
    pub fn status(&self) -> u16 {
        match self {
            Error::NetworkNotFound(_) | Error::ContainerNotFound(_) | Error::EndpointNotFound(_) => 404,
            Error::PredefinedNetwork(_) => 403,
            Error::NetworkExists(_)
            | Error::ContainerExists { .. }
            | Error::NetworkInUse { .. }
            | Error::AddressInUse(_)
            | Error::SubnetOverlapsHostRoute { .. }
            | Error::SubnetOverlapsHostAddress { .. }
            | Error::GatewayIsHostAddress { .. }
            | Error::IpRangeHasHostAddress { .. }
            | Error::Conflict(_) => 409,
            Error::Datapath(_)
            | Error::Netlink(_)
            | Error::Store(_)
            | Error::Os { .. }
            | Error::Inconsistent(_)
            | Error::Several(_) => 500,
            Error::ClusterUnavailable { .. } => 503,
            _ => 400,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
