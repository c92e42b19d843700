//! The JSON of Docker's remote NetworkDriver and IpamDriver protocol as Docker 20.10 sends it
//! (libnetwork `drivers/remote/api`, `ipams/remote/api`; /work/shared/research/
//! docker-plugin-protocol.md). Every field is optional on the way in: Docker leaves out what is
//! empty, and fields netd does not use are ignored.
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Docker's key for `-o k=v` of `docker network create`.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";
/// Set (true) by `docker network create --internal`.
pub const INTERNAL: &str = "com.docker.network.internal";
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// The port bindings in Join's and ProgramExternalConnectivity's options.
pub const PORT_MAP: &str = "com.docker.network.portmap";
/// RequestAddress's option value for the gateway's address.
pub const GATEWAY_REQUEST: &str = "com.docker.network.gateway";

/// Go marshals a nil map or slice as `null`: read it as empty.
fn null_as_empty<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `{"Err":"…"}`: what Docker reads from a non-200 reply.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorReply {
    #[serde(rename = "Err")]
    pub err: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Activate {
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Capabilities {
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "ConnectivityScope")]
    pub connectivity_scope: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateNetwork {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data")]
    #[serde(deserialize_with = "null_as_empty")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data")]
    #[serde(deserialize_with = "null_as_empty")]
    pub ipv6_data: Vec<IpamData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IpamData {
    pub address_space: String,
    /// CIDR.
    pub pool: String,
    /// CIDR (address with the pool's prefix).
    pub gateway: String,
    pub aux_addresses: Option<BTreeMap<String, String>>,
}

/// The ids of a network (DeleteNetwork) or an endpoint (EndpointOperInfo, Leave,
/// DeleteEndpoint, RevokeExternalConnectivity).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Ids {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateEndpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub interface: Option<EndpointInterface>,
    #[serde(deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointInterface {
    pub address: String,
    #[serde(rename = "AddressIPv6")]
    pub address_ipv6: String,
    pub mac_address: String,
}

/// CreateEndpoint's reply: only the fields that were empty in the request (Docker rolls the
/// endpoint back when a driver sets one that was set).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreateEndpointReply {
    #[serde(rename = "Interface", skip_serializing_if = "Option::is_none")]
    pub interface: Option<InterfaceReply>,
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InterfaceReply {
    #[serde(rename = "MacAddress", skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Join {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub sandbox_key: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct JoinReply {
    pub interface_name: InterfaceName,
    /// A bare IPv4 address (a CIDR fails Docker's parse).
    pub gateway: String,
    pub disable_gateway_service: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    pub src_name: String,
    pub dst_prefix: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ProgramExternalConnectivity {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, Value>,
}

/// One of `com.docker.network.portmap` (libnetwork `types.PortBinding`).
#[derive(Debug, Default, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct PortBinding {
    /// 6 tcp, 17 udp, 132 sctp.
    #[serde(rename = "Proto")]
    pub proto: u8,
    #[serde(rename = "IP")]
    pub ip: String,
    #[serde(rename = "Port")]
    pub port: u16,
    /// "" is every address.
    #[serde(rename = "HostIP")]
    pub host_ip: String,
    /// 0: the driver picks one.
    #[serde(rename = "HostPort")]
    pub host_port: u16,
    /// Above `host_port`: a range to pick one from.
    #[serde(rename = "HostPortEnd")]
    pub host_port_end: u16,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct IpamCapabilities {
    #[serde(rename = "RequiresMACAddress")]
    pub requires_mac_address: bool,
    pub requires_request_replay: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct AddressSpaces {
    pub local_default_address_space: String,
    pub global_default_address_space: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RequestPool {
    pub address_space: String,
    pub pool: String,
    pub sub_pool: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "V6")]
    pub v6: bool,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RequestPoolReply {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub pool: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PoolId {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RequestAddress {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub address: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RequestAddressReply {
    /// CIDR: the pool's prefix is what lands on the interface.
    pub address: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ReleaseAddress {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub address: String,
}
