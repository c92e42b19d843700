//! Overlay networks (cluster mode): created and removed through the cluster store, mirrored
//! into this host's state as networks of driver `overlay` (so `run`, `connect`, the DNS and
//! the views treat them as user-defined networks), their addresses reserved cluster-wide, the
//! endpoints of this host announced and those of the others put in the tunnel's maps.
use std::{collections::HashMap, net::Ipv4Addr, sync::Arc};

use ipnetwork::Ipv4Network;

use super::{allocate_endpoint, endpoint_at, Kernel, Manager, State};
use crate::{
    api_types::CreateNetwork,
    cluster::{
        records::{Announcement, View},
        Cluster, ClusterSink,
    },
    datapath::{OverlayNetwork, RemoteEndpoint},
    error::{Error, Result},
    ipam,
    model::{new_id, now_rfc3339, Container, Driver, Endpoint, Network, OverlayInfo},
    store::Changes,
};

impl<K: Kernel> Manager<K> {
    pub(super) fn cluster(&self) -> Result<&Arc<Cluster>> {
        self.cluster.as_ref().ok_or(Error::NoClusterStore)
    }

    /// `network create -d overlay`: stored in the cluster, then made here at once (the other
    /// hosts make it when their watch sees it).
    pub(super) async fn create_overlay(&self, state: &mut State, req: CreateNetwork) -> Result<Network> {
        let cluster = self.cluster()?;
        let host = self.kernel.host_addressing().await?;
        let local = state.subnets();
        let network = cluster
            .create_network(|view, vni| {
                if view.networks.values().any(|n| n.name == req.name) {
                    return Err(Error::NetworkExists(req.name.clone()));
                }
                let mut taken = view.subnets_in_use();
                taken.extend(&local);
                let ipam = ipam::configure_overlay(
                    req.subnet.as_deref(),
                    req.ip_range.as_deref(),
                    req.gateway.as_deref(),
                    &taken,
                    &host,
                )?;
                Ok(Network {
                    id: new_id(),
                    name: req.name.clone(),
                    driver: Driver::Overlay,
                    // Each host numbers its networks itself.
                    index: 0,
                    ipam: Some(ipam),
                    internal: req.internal,
                    labels: req.labels.clone(),
                    options: req.options.clone(),
                    created: now_rfc3339(),
                    docker: None,
                    overlay: Some(OverlayInfo { vni }),
                })
            })
            .await?;
        match self.add_overlay_here(state, network.clone()).await {
            Ok(network) => Ok(network),
            Err(e) => {
                // Nothing half-made: the other hosts drop it again from their watch.
                if let Err(undo) = cluster.remove_network(&network).await {
                    tracing::warn!(network = %network.name, error = %undo, "cluster: a network this host could not make stays");
                }
                Err(e)
            }
        }
    }

    /// Makes an overlay network of the cluster a network of this host: its gateway (the
    /// same address on every host: each is its containers' way out) and its VNI.
    async fn add_overlay_here(&self, state: &mut State, mut network: Network) -> Result<Network> {
        network.index = state.next_network_index();
        let ipam = network.ipam.clone().ok_or_else(|| Error::NetworkNotFound(network.name.clone()))?;
        self.kernel.add_gateway(&ipam).await?;
        if let Err(e) = self.store.commit(Changes { put_networks: vec![network.clone()], ..Default::default() }) {
            let _ = self.kernel.remove_gateway(&ipam).await;
            return Err(e);
        }
        state.networks.insert(network.id.clone(), network.clone());
        self.sync_overlay_networks(state);
        Ok(network)
    }

    /// Tells the tunnel program which VNI is which network here.
    pub(super) fn sync_overlay_networks(&self, state: &State) {
        if self.cluster.is_none() {
            return;
        }
        let networks: Vec<OverlayNetwork> = state
            .networks
            .values()
            .filter_map(|n| n.vni().map(|vni| OverlayNetwork { vni, network_index: n.index }))
            .collect();
        if let Err(e) = self.kernel.set_overlay_networks(&networks) {
            tracing::error!(error = %e, "overlay networks not in the datapath");
        }
    }

    /// A new endpoint `id` on `network`: on an overlay network its address is reserved in the
    /// cluster store (the caller gives it back if the command fails: [`Self::release_overlay`]).
    pub(super) async fn new_endpoint(
        &self,
        state: &State,
        network: &Network,
        requested: Option<std::net::Ipv4Addr>,
        aliases: &[String],
        slot: usize,
        id: String,
    ) -> Result<Endpoint> {
        if network.driver != Driver::Overlay {
            return allocate_endpoint(state, network, requested, aliases, slot, id);
        }
        let ip = self.cluster()?.reserve(network, requested, &id).await?;
        endpoint_at(network, ip, requested.is_some(), aliases, slot, id)
    }

    /// Gives back the cluster addresses of `endpoints` (overlay endpoints that went).
    pub(super) async fn release_overlay(&self, endpoints: &[Endpoint]) {
        let Some(cluster) = &self.cluster else { return };
        for ep in endpoints {
            cluster.release(&ep.network, ep.ip, &ep.id).await;
        }
    }

    /// Announces the overlay endpoints of a container that is running here now.
    pub(super) async fn announce_overlay(&self, state: &State, container: &Container) {
        let Some(cluster) = &self.cluster else { return };
        for a in announcements(state, container, cluster.advertise()) {
            cluster.announce(&a).await;
        }
    }

    /// Makes this host follow the cluster's `view`: overlay networks made or removed here,
    /// the tunnel's map of other hosts' endpoints, and their names. `full`: a session
    /// (re)started, and the datapath's map of other hosts' endpoints is made exactly the
    /// view's in one step (it may hold entries of a daemon before a restart, which keep
    /// forwarding until then).
    async fn apply_view(&self, view: &View, full: bool) {
        let Some(me) = self.cluster.as_ref().map(|c| c.advertise()) else { return };
        let mut state = self.lock_settled().await;
        let state = &mut *state;
        for network in view.networks.values() {
            if state.networks.contains_key(&network.id) {
                continue;
            }
            if state.networks.values().any(|n| n.name == network.name) {
                tracing::warn!(network = %network.name, "cluster: an overlay network has the name of a local network; not made here");
                continue;
            }
            if let Err(e) = self.add_overlay_here(state, network.clone()).await {
                tracing::warn!(network = %network.name, error = %e, "cluster: overlay network not made here");
            }
        }
        let gone: Vec<Network> = state
            .networks
            .values()
            .filter(|n| n.driver == Driver::Overlay && !view.networks.contains_key(&n.id))
            .filter(|n| !state.endpoints().any(|(_, ep)| ep.network == n.id))
            .cloned()
            .collect();
        for network in &gone {
            if let Err(e) = self.delete_network(state, network, "network-rm:commit").await {
                tracing::warn!(network = %network.name, error = %e, "cluster: overlay network not removed here");
            }
        }
        if !gone.is_empty() || full {
            self.sync_overlay_networks(state);
        }
        self.sync_remote_endpoints(state, view, me, full);
    }

    /// The tunnel's map and the DNS names of other hosts' endpoints, changed by difference.
    fn sync_remote_endpoints(&self, state: &mut State, view: &View, me: Ipv4Addr, full: bool) {
        let mut wanted: HashMap<Ipv4Addr, RemoteEndpoint> = HashMap::new();
        let mut names = Vec::new();
        for a in view.endpoints.values().filter(|a| a.host != me) {
            let Some(network) = state.networks.get(&a.network) else { continue };
            let Some(vni) = network.vni() else { continue };
            let remote = RemoteEndpoint {
                ip: a.ip,
                mac: a.mac,
                host: a.host,
                vni,
                network_index: network.index,
                tunnel_ifindex: 0,
            };
            wanted.insert(a.ip, remote);
            names.push(a.clone());
        }
        let add: Vec<RemoteEndpoint> =
            wanted.values().filter(|r| full || state.remote.get(&r.ip) != Some(*r)).cloned().collect();
        let remove: Vec<Ipv4Addr> = state.remote.keys().filter(|ip| !wanted.contains_key(ip)).copied().collect();
        if full || !add.is_empty() || !remove.is_empty() {
            if let Err(e) = self.kernel.set_remote_endpoints(&add, &remove, full) {
                tracing::error!(error = %e, "cluster: remote endpoints not in the datapath");
            }
        }
        state.remote = wanted;
        if names != state.remote_names.announcements {
            state.remote_names.set(names);
            self.sync_dns(state);
        }
    }

    /// This host's overlay endpoints, for the session's reconciliation.
    async fn local_announcements(&self) -> Vec<Announcement> {
        let Some(cluster) = &self.cluster else { return vec![] };
        let state = self.lock_settled().await;
        state.containers.values().flat_map(|c| announcements(&state, c, cluster.advertise())).collect()
    }

    /// Tells the other hosts this host's subnets again (a local network came or went), so
    /// that no overlay network takes them.
    pub(super) async fn announce_member(&self, state: &State) {
        let Some(cluster) = &self.cluster else { return };
        cluster.announce_member(self.subnets_of(state).await).await;
    }

    /// Subnets of this host's own networks and of its routes.
    async fn local_subnets(&self) -> Vec<Ipv4Network> {
        let state = self.lock_settled().await;
        self.subnets_of(&state).await
    }

    async fn subnets_of(&self, state: &State) -> Vec<Ipv4Network> {
        let own = state.networks.values().filter(|n| n.driver != Driver::Overlay);
        let mut subnets: Vec<Ipv4Network> = own.filter_map(|n| n.ipam.as_ref().map(|i| i.subnet)).collect();
        if let Ok(host) = self.kernel.host_addressing().await {
            let unicast = host.routes.iter().filter(|r| r.kind == crate::ipam::host::RouteKind::Unicast);
            subnets.extend(unicast.map(|r| r.destination).filter(|d| d.prefix() > 0));
        }
        subnets
    }
}

/// What other hosts learn of `container`'s overlay endpoints while it runs.
fn announcements(state: &State, container: &Container, me: Ipv4Addr) -> Vec<Announcement> {
    if !container.running() {
        return vec![];
    }
    let overlay = |ep: &&Endpoint| state.networks.get(&ep.network).is_some_and(|n| n.driver == Driver::Overlay);
    container
        .endpoints
        .iter()
        .filter(overlay)
        .map(|ep| Announcement {
            network: ep.network.clone(),
            ip: ep.ip,
            mac: ep.mac,
            host: me,
            endpoint: ep.id.clone(),
            container_id: container.id.clone(),
            container_name: container.name.clone(),
            hostname: container.hostname.clone(),
            created: container.created.clone(),
            aliases: ep.aliases.clone(),
        })
        .collect()
}

/// The session's view of the manager.
pub struct Sink<K: Kernel>(pub Arc<Manager<K>>);

impl<K: Kernel> ClusterSink for Sink<K> {
    async fn local_announcements(&self) -> Vec<Announcement> {
        self.0.local_announcements().await
    }
    async fn local_subnets(&self) -> Vec<Ipv4Network> {
        self.0.local_subnets().await
    }
    async fn apply_view(&self, view: &View, full: bool) {
        self.0.apply_view(view, full).await
    }
}
