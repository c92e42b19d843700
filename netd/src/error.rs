//! Errors users meet, with Docker's texts (DESIGN §3). The API sends the Display text and a
//! status code; the CLI prints the text on one line.
use std::net::Ipv4Addr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("network {0} not found")]
    NetworkNotFound(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("network {name} id {id} has active endpoints")]
    NetworkInUse { name: String, id: String },
    #[error("No such container: {0}")]
    ContainerNotFound(String),
    #[error("Conflict. The container name \"/{0}\" is already in use")]
    ContainerExists(String),
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap,
    #[error("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")]
    PoolsExhausted,
    #[error("invalid subnet {0}")]
    InvalidSubnet(String),
    #[error("gateway {0} is not in subnet {1}")]
    GatewayNotInSubnet(String, String),
    #[error("ip-range {0} is not in subnet {1}")]
    IpRangeNotInSubnet(String, String),
    #[error("no available IPv4 addresses on this network's address pools")]
    NoAddresses,
    #[error("Address already in use: {0}")]
    AddressInUse(Ipv4Addr),
    #[error("container cannot be connected to multiple networks with one of the networks in private (none) mode")]
    NoneModeExclusive,
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    /// A kernel or I/O failure; the operation was rolled back.
    #[error("{0}")]
    System(String),
}

impl Error {
    pub fn system(context: &str, err: impl std::fmt::Display) -> Self {
        Error::System(format!("{context}: {err}"))
    }

    /// HTTP status for the API.
    pub fn status(&self) -> u16 {
        match self {
            Error::NetworkNotFound(_) | Error::ContainerNotFound(_) => 404,
            Error::NetworkExists(_)
            | Error::ContainerExists(_)
            | Error::NetworkInUse { .. }
            | Error::AddressInUse(_)
            | Error::Conflict(_) => 409,
            Error::System(_) => 500,
            _ => 400,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
