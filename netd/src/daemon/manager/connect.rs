//! `network connect` and `network disconnect`, live on running containers (a new ethN, or
//! one removed, with the default route kept on the first remaining network) and recorded on
//! stopped ones (applied by `start`). Docker's rules and texts for `host`, `none` and
//! `container:` modes. A running container whose bindings no endpoint carries gets them
//! published on a new endpoint on a network that is not internal (Docker's rule).
use std::path::Path;

use super::{allocate_endpoint, check_endpoint_options, ports::backend_slot, Kernel, Manager};
use crate::{
    api_types::ConnectRequest,
    container_files::ContainerFiles,
    crash,
    error::{Error, Result},
    model::{new_id, Attachment, Driver, NetMode},
    ports::Published,
    store::Changes,
};

impl<K: Kernel> Manager<K> {
    pub async fn connect(&self, network: &str, req: ConnectRequest) -> Result<()> {
        let mut state = self.state.lock().await;
        let network = state.network(network)?.clone();
        let mut container = state.container(&req.container)?.clone();
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
            return self.commit_container(&mut state, container);
        }
        check_endpoint_options(&network, req.ip, &req.aliases)?;
        if let Some(stopped) = container.stopped.as_mut() {
            if let (Some(ip), Some(cfg)) = (req.ip, network.ipam.as_ref()) {
                if !cfg.subnet.contains(ip) {
                    return Err(Error::AddressOutsideSubnet(ip));
                }
            }
            stopped.attachments.push(Attachment { network: network.id.clone(), ip: req.ip, aliases: req.aliases });
            return self.commit_container(&mut state, container);
        }
        let slot = (0..).find(|i| !container.endpoints.iter().any(|ep| ep.ifname == format!("eth{i}"))).unwrap();
        let ep = allocate_endpoint(&state, &network, req.ip, &req.aliases, slot)?;
        let netns = container
            .netns
            .clone()
            .ok_or_else(|| Error::Inconsistent(format!("container {} has no netns", container.name)))?;
        // The first endpoint on a network that is not internal carries the default route:
        // connecting to a normal network gives a container on internal ones its way out.
        let default_route = !network.internal && container.default_route_endpoint(&state.networks).is_none();
        // The container's bindings go to the new endpoint when none of its endpoints carries
        // them yet (only internal networks so far, or the one that did was disconnected) and
        // this network is one ports are published on (libnetwork's buildCreateEndpointOptions).
        // Host ports are resolved and checked before anything changes.
        let gets_ports = container.mode == NetMode::Own
            && !container.ports.is_empty()
            && container.published.is_empty()
            && backend_slot(&[Attachment { network: network.id.clone(), ip: None, aliases: vec![] }], &state.networks)
                .is_some();
        let published: Vec<Published> = if gets_ports {
            let host_ports = self.resolve_ports(&mut state, &container, &ep.id)?;
            host_ports.iter().map(|h| h.published(ep.ip)).collect()
        } else {
            vec![]
        };
        let entries: Vec<_> = published.iter().map(|p| p.datapath()).collect();
        self.kernel.add_endpoint(Path::new(&netns), &ep, (&network).into(), default_route).await?;
        crash::point("connect:endpoint");
        if !entries.is_empty() {
            // One call, all or nothing; on a refusal the endpoint goes again.
            if let Err(e) = self.kernel.publish(&entries) {
                let _ = self.kernel.remove_endpoint(&ep, (&network).into()).await;
                return Err(e);
            }
            crash::point("connect:publish");
        }
        container.endpoints.push(ep.clone());
        if gets_ports {
            container.published = published;
        }
        let committed = ContainerFiles::new(&self.run_dir, &container.id)
            .write(&container, &state.networks, self.dns.upstreams())
            .and_then(|_| self.store.commit(Changes { put_containers: vec![container.clone()], ..Default::default() }));
        if let Err(e) = committed {
            if !entries.is_empty() {
                let _ = self.kernel.unpublish(&entries);
            }
            let _ = self.kernel.remove_endpoint(&ep, (&network).into()).await;
            return Err(e);
        }
        state.containers.insert(container.id.clone(), container);
        self.sync_dns(&state);
        Ok(())
    }

    /// Removes the container's endpoint on the network, live. When it carried the default
    /// route, the gateway of the next network that is not internal takes over (none left: no
    /// default route).
    pub async fn disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let mut state = self.state.lock().await;
        // `-f` matters in Docker for endpoints out of step with the store; netd keeps them in
        // step, so it changes nothing here.
        let _ = force;
        let network = state.network(network)?.clone();
        let mut container = state.container(container)?.clone();
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
        // Its published ports go with the endpoint they lead to (as libnetwork's bridge driver
        // releases an endpoint's port mappings).
        let unpublished: Vec<_> = if container.published.iter().any(|p| p.backend == ep.ip) {
            std::mem::take(&mut container.published).iter().map(|p| p.datapath()).collect()
        } else {
            vec![]
        };
        self.commit_container(&mut state, container.clone())?;
        self.sync_dns(&state);
        crash::point("disconnect:commit");
        let mut errors = Vec::new();
        if !unpublished.is_empty() {
            errors.extend(self.kernel.unpublish(&unpublished).err());
        }
        errors.extend(self.kernel.remove_endpoint(&ep, (&network).into()).await.err());
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
