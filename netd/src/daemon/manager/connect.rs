//! `network connect` and `network disconnect`, live on running containers (a new ethN, or
//! one removed) and recorded on stopped ones (applied by `start`). Docker's rules and texts for
//! `host`, `none` and `container:` modes. The gateway endpoint — of the networks that are not
//! internal, the one whose name sorts first, as libnetwork chooses — carries the default route
//! and the published ports; both move when a connect or disconnect changes it (measured on
//! Docker 20.10). Bindings no endpoint carries yet (only internal networks so far) are published
//! when a connect gives the container a gateway endpoint.
use std::path::Path;

use super::{check_endpoint_options, endpoint_error, ports::is_gateway_network, Kernel, Manager, State};
use crate::{
    api_types::ConnectRequest,
    container_files::ContainerFiles,
    crash,
    error::{Error, Result},
    model::{gateway_order, new_id, Attachment, Driver, NetMode},
    ports::Published,
    store::Changes,
    validate,
};

impl<K: Kernel> Manager<K> {
    pub async fn connect(&self, network: &str, req: ConnectRequest) -> Result<()> {
        validate::aliases(&req.aliases)?;
        let mut state = self.lock_settled().await;
        let container = req.container.clone();
        // An address taken in the cluster store (overlay networks): given back on failure.
        let mut reserved = Vec::new();
        let connected = self.connect_locked(&mut state, network, req, &mut reserved).await;
        match &connected {
            Err(_) => self.release_overlay(&reserved).await,
            Ok(()) => {
                if let Ok(c) = state.container(&container).cloned() {
                    self.announce_overlay(&state, &c).await;
                }
            }
        }
        connected
    }

    async fn connect_locked(
        &self,
        state: &mut State,
        network: &str,
        req: ConnectRequest,
        reserved: &mut Vec<crate::model::Endpoint>,
    ) -> Result<()> {
        let state = &mut *state;
        // The container first: Docker reports a missing container before a missing network.
        let mut container = state.container(&req.container)?.clone();
        let network = state.network(network)?.clone();
        if matches!(container.mode, NetMode::Container(_)) {
            return Err(Error::SharedNetwork);
        }
        if network.driver == Driver::Host {
            return Err(Error::HostNetworkConflict);
        }
        if container.mode == NetMode::Host {
            return Err(Error::SharedNetwork);
        }
        let attachments = container.attachments();
        let already = match container.mode {
            NetMode::None => network.driver == Driver::Null,
            _ => attachments.iter().any(|a| a.network == network.id),
        };
        if already {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                container.name, network.name
            )));
        }
        if container.mode == NetMode::None {
            return Err(Error::NoneModeExclusive);
        }
        if network.driver == Driver::Null {
            // Only a container on no network at all may go to `none`: nothing to plumb.
            if !attachments.is_empty() {
                return Err(Error::NoneModeExclusive);
            }
            container.mode = NetMode::None;
            container.sandbox_endpoint = new_id();
            return self.commit_container(state, container);
        }
        check_endpoint_options(&network, req.ip, &req.aliases)?;
        if let Some(stopped) = container.stopped.as_mut() {
            if let (Some(ip), Some(cfg)) = (req.ip, network.ipam.as_ref()) {
                if !cfg.subnet.contains(ip) {
                    return Err(Error::AddressOutsideSubnet(ip));
                }
            }
            stopped.attachments.push(Attachment { network: network.id.clone(), ip: req.ip, aliases: req.aliases });
            return self.commit_container(state, container);
        }
        let slot = (0..).find(|i| !container.endpoints.iter().any(|ep| ep.ifname == format!("eth{i}"))).unwrap();
        state.check_endpoint_capacity(1)?;
        let ep = self.new_endpoint(state, &network, req.ip, &req.aliases, slot, new_id()).await?;
        if network.driver == Driver::Overlay {
            reserved.push(ep.clone());
        }
        let netns = container
            .netns
            .clone()
            .ok_or_else(|| Error::Inconsistent(format!("container {} has no netns", container.name)))?;
        // The new endpoint becomes the gateway endpoint when its network sorts before the
        // current gateway's (or there is none): the default route and the published ports move
        // to it, as libnetwork moves them.
        let old_gateway = container.default_route_endpoint(&state.networks).cloned();
        let becomes_gateway = is_gateway_network(&state.networks, &network.id)
            && old_gateway.as_ref().is_none_or(|g| {
                gateway_order(&state.networks, &network.id) < gateway_order(&state.networks, &g.network)
            });
        let carries_ports = becomes_gateway && container.mode == NetMode::Own && !container.ports.is_empty();
        // Ports already published on the old gateway keep their host ports; bindings nothing
        // carries yet (only internal networks so far) are resolved and checked now, before
        // anything changes.
        let moved: Vec<Published> = match carries_ports {
            false => vec![],
            true if !container.published.is_empty() => {
                container.published.iter().map(|p| Published { backend: ep.ip, ..*p }).collect()
            }
            true => {
                let host_ports = self.resolve_ports(state, &container, &ep.id)?;
                host_ports.iter().map(|h| h.published(ep.ip)).collect()
            }
        };
        state.check_published_capacity(&container.id, moved.len())?;
        let old_entries: Vec<_> =
            if carries_ports { container.published.iter().map(|p| p.datapath()).collect() } else { vec![] };
        let entries: Vec<_> = moved.iter().map(|p| p.datapath()).collect();
        let netns = Path::new(&netns);
        self.kernel
            .add_endpoint(netns, &ep, (&network).into(), becomes_gateway && old_gateway.is_none())
            .await
            .map_err(|e| endpoint_error(e, &container.name, &network.name))?;
        crash::point("connect:endpoint");
        let old_route = old_gateway.as_ref().map(|g| g.gateway);
        let undo =
            ConnectUndo { netns, ep: &ep, network: &network, old_route, old_entries: &old_entries, entries: &entries };
        let moved_route = becomes_gateway && old_gateway.is_some();
        if moved_route {
            if let Err(e) = self.kernel.set_default_route(netns, Some(ep.gateway)).await {
                undo.run(&self.kernel, true, false, false).await;
                return Err(e);
            }
        }
        if !entries.is_empty() {
            // The old gateway's entries go first (the same service keys), then one call, all
            // or nothing, for the new ones.
            let published = match old_entries.is_empty() {
                true => Ok(()),
                false => self.kernel.unpublish(&old_entries),
            }
            .and_then(|()| self.kernel.publish(&entries));
            if let Err(e) = published {
                undo.run(&self.kernel, moved_route, !old_entries.is_empty(), false).await;
                return Err(e);
            }
            crash::point("connect:publish");
        }
        container.endpoints.push(ep.clone());
        if carries_ports {
            container.published = moved;
        }
        let committed = ContainerFiles::new(&self.run_dir, &container.id)
            .write(&container, &state.networks, self.dns.upstreams())
            .and_then(|_| self.store.commit(Changes { put_containers: vec![container.clone()], ..Default::default() }));
        if let Err(e) = committed {
            undo.run(&self.kernel, moved_route, !old_entries.is_empty(), !entries.is_empty()).await;
            return Err(e);
        }
        state.containers.insert(container.id.clone(), container);
        self.sync_dns(state);
        Ok(())
    }

    /// Removes the container's endpoint on the network, live. When it carried the default
    /// route, the gateway of the next network that is not internal takes over (none left: no
    /// default route).
    pub async fn disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let mut state = self.lock_settled().await;
        // `-f` matters in Docker for endpoints out of step with the store; netd keeps them in
        // step, so it changes only the error for an unknown container.
        let network = state.network(network)?.clone();
        // With -f Docker looks for a stale endpoint of that name: there is none.
        let mut container = match state.container(container) {
            Err(Error::ContainerNotFound(_)) if force => return Err(Error::EndpointNotFound(container.to_string())),
            found => found?.clone(),
        };
        let not_connected =
            || Error::Conflict(format!("container {} is not connected to network {}", container.id, network.name));
        match (&network.driver, &container.mode) {
            (Driver::Host, NetMode::Host) => return Err(Error::HostNetworkConflict),
            (Driver::Null, NetMode::None) => {
                // Leaves a netns with only `lo` that may be connected to networks again.
                let mut c = container.clone();
                c.mode = NetMode::Own;
                c.sandbox_endpoint.clear();
                return self.commit_container(&mut state, c);
            }
            (Driver::Host | Driver::Null, _) | (_, NetMode::Container(_)) => return Err(not_connected()),
            _ => {}
        }
        if let Some(stopped) = container.stopped.as_mut() {
            let Some(pos) = stopped.attachments.iter().position(|a| a.network == network.id) else {
                return Err(not_connected());
            };
            stopped.attachments.remove(pos);
            return self.commit_container(&mut state, container);
        }
        let Some(pos) = container.endpoints.iter().position(|ep| ep.network == network.id) else {
            return Err(not_connected());
        };
        // Committed first: a crash below leaves a veth the store does not know, which the
        // restart removes (and gives the container its default route again).
        let carried_default_route =
            container.default_route_endpoint(&state.networks).is_some_and(|d| d.id == container.endpoints[pos].id);
        let ep = container.endpoints.remove(pos);
        // Its published ports move to the next gateway endpoint with their host ports, as
        // libnetwork moves a sandbox's port mappings; none left: they are released.
        let (unpublished, moved): (Vec<_>, Vec<_>) = if container.published.iter().any(|p| p.backend == ep.ip) {
            let old = std::mem::take(&mut container.published);
            if let Some(next) = container.default_route_endpoint(&state.networks) {
                container.published = old.iter().map(|p| Published { backend: next.ip, ..*p }).collect();
            }
            (old.iter().map(|p| p.datapath()).collect(), container.published.iter().map(|p| p.datapath()).collect())
        } else {
            (vec![], vec![])
        };
        self.commit_container(&mut state, container.clone())?;
        self.sync_dns(&state);
        crash::point("disconnect:commit");
        let mut errors = Vec::new();
        if !unpublished.is_empty() {
            errors.extend(self.kernel.unpublish(&unpublished).err());
        }
        if !moved.is_empty() {
            errors.extend(self.kernel.publish(&moved).err());
        }
        let removed = match &container.netns {
            Some(netns) => self.kernel.detach_endpoint(Path::new(netns), &ep, (&network).into()).await,
            None => self.kernel.remove_endpoint(&ep, (&network).into()).await,
        };
        errors.extend(removed.err());
        if network.driver == Driver::Overlay {
            self.release_overlay(std::slice::from_ref(&ep)).await;
        }
        if let (true, Some(netns)) = (carried_default_route, &container.netns) {
            let next = container.default_route_endpoint(&state.networks).map(|next| next.gateway);
            errors.extend(self.kernel.set_default_route(Path::new(netns), next).await.err());
        }
        let files =
            ContainerFiles::new(&self.run_dir, &container.id).write(&container, &state.networks, self.dns.upstreams());
        if !errors.is_empty() {
            self.cleanup_after(&state, errors).await;
        }
        files
    }
}

/// What a refused `connect` puts back: the old gateway's route and ports, and no new endpoint.
struct ConnectUndo<'a> {
    netns: &'a Path,
    ep: &'a crate::model::Endpoint,
    network: &'a crate::model::Network,
    old_route: Option<std::net::Ipv4Addr>,
    old_entries: &'a [crate::datapath::PublishedPort],
    entries: &'a [crate::datapath::PublishedPort],
}

impl ConnectUndo<'_> {
    /// Undoes the steps taken: the route moved, the old gateway's ports unpublished (a failed
    /// publish of the new ones included: all or nothing, none of them is there), the new ones
    /// published.
    async fn run<K: Kernel>(&self, kernel: &K, moved_route: bool, unpublished_old: bool, published_new: bool) {
        if published_new {
            let _ = kernel.unpublish(self.entries);
        }
        if unpublished_old {
            let _ = kernel.publish(self.old_entries);
        }
        if moved_route {
            let _ = kernel.set_default_route(self.netns, self.old_route).await;
        }
        let _ = kernel.remove_endpoint(self.ep, self.network.into()).await;
    }
}
