//! Domain types: what netd knows about networks and containers. The datapath module is the
//! only place that turns these into map entries; the API module turns them into Docker's JSON.
use std::{collections::BTreeMap, net::Ipv4Addr};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
}

impl Driver {
    pub fn as_str(&self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters, like Docker's.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// Small number that identifies the network in the datapath maps.
    pub index: u32,
    /// None for the `host` and `none` networks.
    pub ipam: Option<IpamConfig>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpamConfig {
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    /// The part of the subnet that automatic allocation draws from (`--ip-range`).
    pub ip_range: Option<Ipv4Network>,
}

/// How a container's network namespace is provided (`--network`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Its own netns with one endpoint per connected network.
    Own,
    /// The daemon's netns.
    Host,
    /// Its own netns with only `lo`.
    None,
    /// The netns of another container (by container id).
    Container(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub mode: NetMode,
    pub hostname: String,
    pub endpoints: Vec<Endpoint>,
    /// Path of the bind-mounted netns (absent for `host`).
    pub netns: Option<String>,
    pub cmd: Vec<String>,
    pub pid: Option<u32>,
    pub created: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    /// Network id.
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
    /// Interface name inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// Host-side veth name.
    pub host_ifname: String,
    pub aliases: Vec<String>,
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A random 64-hex-character id, like Docker's object ids.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
