//! Docker's networks and endpoints on netd (`docker network create -d netd`, served by
//! `docker_plugin`). A Docker network is a netd bridge network whose id is Docker's NetworkID
//! and whose `docker` part holds Docker's endpoints; an endpoint is a veth pair netd makes in
//! its own netns (Docker moves the peer into the sandbox itself), keyed on the host end, so
//! nothing depends on the container's netns. Same crash-safety order as the rest of the
//! manager: creates apply to the kernel and commit last, removes commit first.
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use super::{datapath_network, Kernel, Manager, State};
use crate::{
    crash,
    datapath::DatapathNetwork,
    error::{Error, Result},
    ipam,
    model::{now_rfc3339, DockerEndpoint, DockerOwned, DockerPool, Driver, Endpoint, IpamConfig, Network},
    ports::PortMapping,
    store::Changes,
};

#[cfg(test)]
mod tests;

/// The refusal of netd's own commands on a network Docker owns.
pub(super) fn owned_by_docker(network: &Network) -> Error {
    Error::Conflict(format!(
        "network {} is owned by Docker (driver netd): use docker network commands for it",
        network.name
    ))
}

/// The name netd shows for a Docker network: Docker never sends its name, so it is derived
/// from the NetworkID (`docker-` + 12 hex digits, as `docker network ls` shortens ids).
pub fn network_name(network_id: &str) -> String {
    format!("docker-{}", &network_id[..12.min(network_id.len())])
}

/// The peer's name in netd's netns until Docker moves it (Join's `SrcName`; ≤ 15 bytes):
/// "nc" + the first 12 characters of the endpoint id (the host end is "nd" + the same).
pub fn peer_name(endpoint_id: &str) -> String {
    format!("nc{}", &endpoint_id[..12])
}

/// What CreateNetwork carries that netd keeps.
#[derive(Debug, Clone)]
pub struct DockerNetworkRequest {
    pub id: String,
    /// Pool and gateway of the one IPv4 pool (from netd's IpamDriver or Docker's own).
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    /// `-o k=v` (`com.docker.network.generic`).
    pub options: std::collections::BTreeMap<String, String>,
}

/// What Join answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInfo {
    pub src_name: String,
    pub gateway: Ipv4Addr,
}

/// Checks that a Docker id is 64 lowercase hex digits: they name veths and networks.
fn check_id(what: &str, id: &str) -> Result<()> {
    match id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        true => Ok(()),
        false => Err(Error::InvalidArgument(format!("invalid {what} {id:?}: not 64 hexadecimal digits"))),
    }
}

impl State {
    fn docker_network(&self, network_id: &str) -> Result<&Network> {
        let network = self.networks.get(network_id).ok_or_else(|| Error::NetworkNotFound(network_id.into()))?;
        match network.docker {
            Some(_) => Ok(network),
            None => Err(Error::Conflict(format!("network {} is netd's, not Docker's", network.name))),
        }
    }

    fn docker_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<(&Network, &DockerEndpoint)> {
        let network = self.docker_network(network_id)?;
        let ep = network.docker_endpoints().find(|d| d.endpoint.id == endpoint_id);
        Ok((network, ep.ok_or_else(|| Error::EndpointNotFound(endpoint_id.into()))?))
    }

    /// [`Self::docker_endpoint`], copied; `None` when it is gone already (after `netd system
    /// reset` its network too): Docker's clean-up of it then ends without an error.
    fn docker_endpoint_if_known(
        &self,
        network_id: &str,
        endpoint_id: &str,
    ) -> Result<Option<(Network, DockerEndpoint)>> {
        match self.docker_endpoint(network_id, endpoint_id) {
            Ok((n, d)) => Ok(Some((n.clone(), d.clone()))),
            Err(Error::EndpointNotFound(_) | Error::NetworkNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Docker endpoints on all networks.
    pub(super) fn docker_endpoint_count(&self) -> usize {
        self.networks.values().map(|n| n.docker_endpoints().count()).sum()
    }
}

/// `network` with `change` applied to its Docker endpoints.
fn with_endpoints(network: &Network, change: impl FnOnce(&mut Vec<DockerEndpoint>)) -> Network {
    let mut n = network.clone();
    if let Some(d) = n.docker.as_mut() {
        change(&mut d.endpoints);
    }
    n
}

impl<K: Kernel> Manager<K> {
    /// CreateNetwork: the subnet must not overlap another network's (netd's or Docker's) nor a
    /// pool netd's IpamDriver handed out for something else — Docker's own IPAM knows nothing
    /// of netd's networks, so that is where an overlap shows.
    pub async fn docker_create_network(&self, req: DockerNetworkRequest) -> Result<Network> {
        check_id("NetworkID", &req.id)?;
        let mut state = self.lock_settled().await;
        if state.networks.contains_key(&req.id) {
            return Err(Error::Conflict(format!("network {} exists already", req.id)));
        }
        let name = network_name(&req.id);
        if state.networks.values().any(|n| n.name == name) {
            return Err(Error::NetworkExists(name));
        }
        let pool = state.docker_pools.values().find(|p| p.pool == req.subnet).cloned();
        if let Some(other) =
            state.networks.values().find(|n| n.ipam.as_ref().is_some_and(|i| ipam::overlaps(&i.subnet, &req.subnet)))
        {
            return Err(Error::Conflict(format!(
                "subnet {} overlaps netd network {} ({}): give Docker another one (--subnet, or --ipam-driver netd)",
                req.subnet,
                other.name,
                other.ipam.as_ref().map(|i| i.subnet.to_string()).unwrap_or_default()
            )));
        }
        if pool.is_none() {
            if let Some(p) = state.docker_pools.values().find(|p| ipam::overlaps(&p.pool, &req.subnet)) {
                return Err(Error::Conflict(format!(
                    "subnet {} overlaps pool {} held by netd's IPAM driver",
                    req.subnet, p.pool
                )));
            }
        }
        if !req.subnet.contains(req.gateway) {
            return Err(Error::GatewayNotInSubnet(req.gateway.to_string()));
        }
        let ipam = IpamConfig {
            subnet: req.subnet,
            gateway: req.gateway,
            ip_range: pool.as_ref().and_then(|p| p.sub_pool),
            user_subnet: pool.as_ref().is_none_or(|p| p.user),
        };
        let network = Network {
            id: req.id,
            name,
            driver: Driver::Bridge,
            index: state.next_network_index(),
            ipam: Some(ipam.clone()),
            internal: req.internal,
            labels: Default::default(),
            options: req.options,
            created: now_rfc3339(),
            docker: Some(DockerOwned { pool: pool.map(|p| p.id), endpoints: vec![] }),
            overlay: None,
        };
        self.kernel.add_gateway(&ipam).await?;
        crash::point("docker-network-create:gateway");
        if let Err(e) = self.store.commit(Changes { put_networks: vec![network.clone()], ..Default::default() }) {
            let _ = self.kernel.remove_gateway(&ipam).await;
            return Err(e);
        }
        state.networks.insert(network.id.clone(), network.clone());
        Ok(network)
    }

    /// DeleteNetwork: one netd does not know is gone already (success, so that `docker
    /// network rm` can finish); one with endpoints is refused.
    pub async fn docker_delete_network(&self, network_id: &str) -> Result<()> {
        let mut state = self.lock_settled().await;
        let Some(network) = state.networks.get(network_id).cloned() else {
            tracing::info!(network = %network_id, "DeleteNetwork of a network netd does not have");
            return Ok(());
        };
        state.docker_network(network_id)?;
        if network.docker_endpoints().next().is_some() {
            return Err(Error::NetworkInUse { name: network.name, id: network.id });
        }
        self.delete_network(&mut state, &network, "docker-network-rm:commit").await
    }

    /// CreateEndpoint: the veth pair (host end, forwarding, /32 route, datapath entries) at
    /// `address` (its prefix is the pool's, as Docker's IPAM gives it), then the commit.
    /// Returns the MAC: `mac` when Docker set one, else 02:42 + the address.
    pub async fn docker_create_endpoint(
        &self,
        network_id: &str,
        endpoint_id: &str,
        address: Ipv4Network,
        mac: Option<[u8; 6]>,
    ) -> Result<[u8; 6]> {
        check_id("EndpointID", endpoint_id)?;
        let mut state = self.lock_settled().await;
        let network = state.docker_network(network_id)?.clone();
        let ipam = network.ipam.clone().ok_or_else(|| Error::Inconsistent("Docker network without IPAM".into()))?;
        if state.networks.values().flat_map(|n| n.docker_endpoints()).any(|d| d.endpoint.id == endpoint_id) {
            return Err(Error::Conflict(format!("endpoint {endpoint_id} exists already")));
        }
        let ip = address.ip();
        if !ipam.subnet.contains(ip) || ip == ipam.gateway {
            return Err(Error::AddressOutsideSubnet(ip));
        }
        if network.docker_endpoints().any(|d| d.endpoint.ip == ip) {
            return Err(Error::AddressInUse(ip));
        }
        let in_use = state.endpoints().count() + state.docker_endpoint_count();
        let capacity = state.capacities.endpoints as usize;
        if in_use >= capacity {
            return Err(Error::CapacityExceeded { what: "endpoints", capacity, flag: "--max-endpoints" });
        }
        let mac = mac.unwrap_or_else(|| ipam::mac_for(ip));
        let endpoint = Endpoint {
            id: endpoint_id.into(),
            network: network.id.clone(),
            ip,
            prefix: address.prefix(),
            gateway: ipam.gateway,
            mac,
            ifname: peer_name(endpoint_id),
            host_ifname: crate::plumbing::host_ifname(endpoint_id),
            aliases: vec![],
            static_ip: false,
        };
        let dp = DatapathNetwork::from(&network);
        self.kernel.add_docker_endpoint(&endpoint, dp).await?;
        crash::point("docker-endpoint-create:veth");
        let docker = DockerEndpoint { endpoint: endpoint.clone(), published: vec![] };
        let updated = with_endpoints(&network, |eps| eps.push(docker));
        if let Err(e) = self.store.commit(Changes { put_networks: vec![updated.clone()], ..Default::default() }) {
            let _ = self.kernel.remove_endpoint(&endpoint, dp).await;
            return Err(e);
        }
        state.networks.insert(updated.id.clone(), updated);
        Ok(mac)
    }

    /// Join: the peer Docker moves into the sandbox, and the gateway (always: without one
    /// Docker never programs ports and adds docker_gwbridge instead).
    pub async fn docker_join(&self, network_id: &str, endpoint_id: &str) -> Result<JoinInfo> {
        let state = self.lock_settled().await;
        let (_, d) = state.docker_endpoint(network_id, endpoint_id)?;
        Ok(JoinInfo { src_name: d.endpoint.ifname.clone(), gateway: d.endpoint.gateway })
    }

    /// Leave: nothing to undo (Docker moves the peer back after it); the endpoint must exist.
    pub async fn docker_leave(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let state = self.lock_settled().await;
        state.docker_endpoint(network_id, endpoint_id).map(|_| ())
    }

    /// Whether the endpoint exists (EndpointOperInfo).
    pub async fn docker_endpoint_exists(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        self.docker_leave(network_id, endpoint_id).await
    }

    /// DeleteEndpoint: commit, then its ports, datapath entries and veth pair go (a veth
    /// already gone — its sandbox died with the peer in it — is fine). An endpoint netd does
    /// not know is gone already.
    pub async fn docker_delete_endpoint(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut state = self.lock_settled().await;
        let Some((network, d)) = state.docker_endpoint_if_known(network_id, endpoint_id)? else {
            return Ok(());
        };
        let updated = with_endpoints(&network, |eps| eps.retain(|e| e.endpoint.id != endpoint_id));
        self.store.commit(Changes { put_networks: vec![updated.clone()], ..Default::default() })?;
        state.networks.insert(updated.id.clone(), updated);
        crash::point("docker-endpoint-rm:commit");
        let mut errors = Vec::new();
        if !d.published.is_empty() {
            let ports: Vec<_> = d.published.iter().map(|p| p.datapath()).collect();
            errors.extend(self.kernel.unpublish(&ports).err());
        }
        let dp = datapath_network(&state.networks, network_id);
        match self.kernel.existing_entry(&d.endpoint, dp).await {
            Ok(Some(_)) => errors.extend(self.kernel.remove_endpoint(&d.endpoint, dp).await.err()),
            // The veth went with a sandbox that died with the peer in it: its map entries can
            // no longer be found by its interface, so the datapath is made to hold exactly the
            // live endpoints (recovery's sweep).
            Ok(None) => {
                tracing::info!(endpoint = %endpoint_id, "Docker endpoint's veth is gone already");
                self.cleanup_after(&state, vec![]).await;
            }
            Err(e) => errors.push(e),
        }
        if !errors.is_empty() {
            self.cleanup_after(&state, errors).await;
        }
        Ok(())
    }

    /// ProgramExternalConnectivity: publishes `mappings` to the endpoint in the datapath
    /// (random and range host ports resolved as for `run -p`), replacing what it had.
    pub async fn docker_program(&self, network_id: &str, endpoint_id: &str, mappings: &[PortMapping]) -> Result<()> {
        let mut state = self.lock_settled().await;
        let (network, d) = state.docker_endpoint(network_id, endpoint_id).map(|(n, d)| (n.clone(), d.clone()))?;
        if network.internal && !mappings.is_empty() {
            return Err(Error::InvalidArgument("an internal network publishes no ports".into()));
        }
        let in_use: usize = state.containers.values().map(|c| c.published.len()).sum::<usize>()
            + state.networks.values().flat_map(|n| n.docker_endpoints()).map(|e| e.published.len()).sum::<usize>()
            - d.published.len();
        let capacity = state.capacities.published_ports as usize;
        if in_use + mappings.len() > capacity {
            return Err(Error::CapacityExceeded { what: "published ports", capacity, flag: "--max-published-ports" });
        }
        let short = &endpoint_id[..12.min(endpoint_id.len())];
        let chosen = self.resolve_mappings(&mut state, endpoint_id, short, mappings, endpoint_id)?;
        let published: Vec<_> = chosen.iter().map(|h| h.published(d.endpoint.ip)).collect();
        if published == d.published {
            return Ok(());
        }
        let old: Vec<_> = d.published.iter().map(|p| p.datapath()).collect();
        let new: Vec<_> = published.iter().map(|p| p.datapath()).collect();
        self.kernel.unpublish(&old)?;
        if let Err(e) = self.kernel.publish(&new) {
            let _ = self.kernel.publish(&old);
            return Err(e);
        }
        crash::point("docker-program:publish");
        let updated = with_endpoints(&network, |eps| {
            if let Some(e) = eps.iter_mut().find(|e| e.endpoint.id == endpoint_id) {
                e.published = published;
            }
        });
        if let Err(e) = self.store.commit(Changes { put_networks: vec![updated.clone()], ..Default::default() }) {
            let _ = self.kernel.unpublish(&new);
            let _ = self.kernel.publish(&old);
            return Err(e);
        }
        state.networks.insert(updated.id.clone(), updated);
        Ok(())
    }

    /// RevokeExternalConnectivity: commit, then the endpoint's ports leave the datapath.
    pub async fn docker_revoke(&self, network_id: &str, endpoint_id: &str) -> Result<()> {
        let mut state = self.lock_settled().await;
        let Some((network, d)) = state.docker_endpoint_if_known(network_id, endpoint_id)? else {
            return Ok(());
        };
        if d.published.is_empty() {
            return Ok(());
        }
        let updated = with_endpoints(&network, |eps| {
            if let Some(e) = eps.iter_mut().find(|e| e.endpoint.id == endpoint_id) {
                e.published.clear();
            }
        });
        self.store.commit(Changes { put_networks: vec![updated.clone()], ..Default::default() })?;
        state.networks.insert(updated.id.clone(), updated);
        crash::point("docker-revoke:commit");
        let ports: Vec<_> = d.published.iter().map(|p| p.datapath()).collect();
        if let Err(e) = self.kernel.unpublish(&ports) {
            self.cleanup_after(&state, vec![e]).await;
        }
        Ok(())
    }

    /// `netd stats` rows of Docker's endpoints, as their containers count: the host end's
    /// counters with receive and transmit swapped (the peer is in a sandbox netd never sees).
    /// The container column names the endpoint: netd never learns the container.
    pub(super) async fn docker_endpoint_counts(&self, state: &State) -> Vec<crate::api_types::EndpointCount> {
        let Ok(own_netns) = self.kernel.host_netns() else { return vec![] };
        let mut rows = Vec::new();
        for n in state.networks.values() {
            for d in n.docker_endpoints() {
                let ep = &d.endpoint;
                let counters = match self.kernel.link_counters(&own_netns, &ep.host_ifname).await {
                    Ok(Some(c)) => c,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(endpoint = %ep.id, error = %e, "cannot read counters");
                        continue;
                    }
                };
                rows.push(crate::api_types::EndpointCount {
                    container: format!("docker-endpoint-{}", &ep.id[..12]),
                    network: n.name.clone(),
                    interface: "eth".into(),
                    ip: ep.ip,
                    rx_packets: counters.tx_packets,
                    rx_bytes: counters.tx_bytes,
                    tx_packets: counters.rx_packets,
                    tx_bytes: counters.rx_bytes,
                });
            }
        }
        rows
    }

    /// The veths and ports of every Docker endpoint in `networks` (`system reset`, after the
    /// commit).
    pub(super) async fn remove_docker_endpoints(
        &self,
        networks: &std::collections::BTreeMap<String, Network>,
    ) -> Vec<Error> {
        let mut errors = Vec::new();
        for n in networks.values() {
            for d in n.docker_endpoints() {
                let ports: Vec<_> = d.published.iter().map(|p| p.datapath()).collect();
                if !ports.is_empty() {
                    errors.extend(self.kernel.unpublish(&ports).err());
                }
                errors.extend(self.kernel.remove_endpoint(&d.endpoint, DatapathNetwork::from(n)).await.err());
            }
        }
        errors
    }

    // IpamDriver.

    /// RequestPool: `pool` (`--subnet`, with `sub_pool` as `--ip-range`) when it overlaps
    /// nothing, else the next free candidate pool (Docker's order) that overlaps no network,
    /// no held pool and nothing of the host's — so a pool libnetwork asks again for while
    /// holding the last one is never that one.
    pub async fn docker_request_pool(&self, pool: Option<&str>, sub_pool: Option<&str>) -> Result<DockerPool> {
        let mut state = self.lock_settled().await;
        let subnets = state.subnets();
        let (subnet, user) = match pool {
            Some(p) => {
                let subnet = ipam::parse_subnet(p)?;
                if subnets.iter().any(|s| ipam::overlaps(s, &subnet)) {
                    return Err(Error::PoolOverlap);
                }
                (subnet, true)
            }
            None => {
                if sub_pool.is_some() {
                    return Err(Error::NoSubnetForRangeOrGateway);
                }
                let host = self.kernel.host_addressing().await?;
                let from = state.next_pool.unwrap_or_else(ipam::first_user_pool);
                (ipam::pick_subnet(&subnets, &host, from)?, false)
            }
        };
        let sub_pool = match sub_pool {
            Some(r) => {
                let range: Ipv4Network = r.parse().map_err(|_| Error::InvalidCidr(r.into()))?;
                let range =
                    Ipv4Network::new(range.network(), range.prefix()).map_err(|_| Error::InvalidCidr(r.into()))?;
                if !subnet.contains(range.network()) || range.prefix() < subnet.prefix() {
                    return Err(Error::IpRangeNotInSubnet(r.into()));
                }
                Some(range)
            }
            None => None,
        };
        let p =
            DockerPool { id: format!("netd/{subnet}"), pool: subnet, sub_pool, user, addresses: Default::default() };
        self.store.commit(Changes { put_pools: vec![p.clone()], ..Default::default() })?;
        if !user {
            state.next_pool = Some(ipam::pool_after(subnet));
        }
        state.docker_pools.insert(p.id.clone(), p.clone());
        Ok(p)
    }

    /// ReleasePool: one netd does not hold is released already.
    pub async fn docker_release_pool(&self, pool_id: &str) -> Result<()> {
        let mut state = self.lock_settled().await;
        if state.docker_pools.contains_key(pool_id) {
            self.store.commit(Changes { del_pools: vec![pool_id.into()], ..Default::default() })?;
            state.docker_pools.remove(pool_id);
        }
        Ok(())
    }

    /// RequestAddress: `address` when given and free; for the gateway the pool's first
    /// address, else the next free one of the sub-pool (or pool). Returns it with the pool's
    /// prefix (what lands on the container's interface).
    pub async fn docker_request_address(
        &self,
        pool_id: &str,
        address: Option<Ipv4Addr>,
        gateway: bool,
    ) -> Result<Ipv4Network> {
        let mut state = self.lock_settled().await;
        let mut p = state.docker_pools.get(pool_id).cloned().ok_or_else(|| pool_not_found(pool_id))?;
        let usable = |ip: Ipv4Addr| ip != p.pool.network() && ip != p.pool.broadcast() && !p.addresses.contains(&ip);
        let ip = match address {
            Some(ip) if !p.pool.contains(ip) => return Err(Error::AddressOutsideSubnet(ip)),
            Some(ip) if !usable(ip) => return Err(Error::AddressInUse(ip)),
            Some(ip) => ip,
            None => {
                let from = if gateway { p.pool } else { p.sub_pool.unwrap_or(p.pool) };
                from.iter().find(|ip| usable(*ip)).ok_or(Error::NoAddresses { name: p.id.clone(), id: p.id.clone() })?
            }
        };
        p.addresses.insert(ip);
        self.store.commit(Changes { put_pools: vec![p.clone()], ..Default::default() })?;
        let prefix = p.pool.prefix();
        state.docker_pools.insert(p.id.clone(), p);
        Ipv4Network::new(ip, prefix).map_err(|e| Error::Inconsistent(e.to_string()))
    }

    /// ReleaseAddress: one not handed out (or of a pool netd no longer holds, as after `netd
    /// system reset`) is released already.
    pub async fn docker_release_address(&self, pool_id: &str, address: Ipv4Addr) -> Result<()> {
        let mut state = self.lock_settled().await;
        let Some(mut p) = state.docker_pools.get(pool_id).cloned() else { return Ok(()) };
        if p.addresses.remove(&address) {
            self.store.commit(Changes { put_pools: vec![p.clone()], ..Default::default() })?;
            state.docker_pools.insert(p.id.clone(), p);
        }
        Ok(())
    }
}

fn pool_not_found(pool_id: &str) -> Error {
    Error::InvalidArgument(format!("pool {pool_id} not found"))
}
