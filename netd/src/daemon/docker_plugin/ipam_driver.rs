//! `IpamDriver.*`: pools and addresses for Docker networks, from the same candidate pools as
//! netd's own networks and never overlapping them (`manager/docker.rs`).
use std::collections::BTreeMap;

use super::{
    types::{
        AddressSpaces, IpamCapabilities, PoolId, ReleaseAddress, RequestAddress, RequestAddressReply, RequestPool,
        RequestPoolReply, GATEWAY_REQUEST,
    },
    PluginError,
};
use crate::{kernel::Kernel, manager::Manager};

/// Docker's key for the kind of address asked for.
const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";

pub fn capabilities() -> IpamCapabilities {
    IpamCapabilities { requires_mac_address: false, requires_request_replay: false }
}

pub fn address_spaces() -> AddressSpaces {
    AddressSpaces {
        local_default_address_space: "netd-local".into(),
        global_default_address_space: "netd-global".into(),
    }
}

pub async fn request_pool<K: Kernel>(manager: &Manager<K>, req: RequestPool) -> Result<RequestPoolReply, PluginError> {
    if req.v6 {
        return Err(PluginError::bad("netd's IPAM driver has IPv4 pools only"));
    }
    let pool = (!req.pool.is_empty()).then_some(req.pool.as_str());
    let sub_pool = (!req.sub_pool.is_empty()).then_some(req.sub_pool.as_str());
    let p = manager.docker_request_pool(pool, sub_pool).await?;
    Ok(RequestPoolReply { pool_id: p.id, pool: p.pool.to_string(), data: BTreeMap::new() })
}

pub async fn release_pool<K: Kernel>(manager: &Manager<K>, req: PoolId) -> Result<(), PluginError> {
    Ok(manager.docker_release_pool(&req.pool_id).await?)
}

pub async fn request_address<K: Kernel>(
    manager: &Manager<K>,
    req: RequestAddress,
) -> Result<RequestAddressReply, PluginError> {
    let address = match req.address.as_str() {
        "" => None,
        a => Some(a.parse().map_err(|_| PluginError::bad(format!("invalid IPv4 address {a:?}")))?),
    };
    let gateway = req.options.get(REQUEST_ADDRESS_TYPE).map(String::as_str) == Some(GATEWAY_REQUEST);
    let cidr = manager.docker_request_address(&req.pool_id, address, gateway).await?;
    Ok(RequestAddressReply { address: cidr.to_string(), data: BTreeMap::new() })
}

pub async fn release_address<K: Kernel>(manager: &Manager<K>, req: ReleaseAddress) -> Result<(), PluginError> {
    // Docker sends the bare address; a CIDR is taken too.
    let bare = req.address.split('/').next().unwrap_or_default();
    let address = bare.parse().map_err(|_| PluginError::bad(format!("invalid IPv4 address {:?}", req.address)))?;
    Ok(manager.docker_release_address(&req.pool_id, address).await?)
}
