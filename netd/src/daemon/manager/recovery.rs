//! Restart recovery (DESIGN §2), also run after a failed teardown step: the store and the
//! kernel are made to agree in both directions.
//!
//! - Kernel objects, processes and files the store does not know are removed
//!   (`crate::reconcile` for the kernel, the supervisor for processes, and the per-container
//!   file directories): what a crash left of a creation that never committed, or of a
//!   removal that committed first.
//! - What the store knows is adopted in place (veths, routes, pinned links, map entries,
//!   published ports, processes), so traffic and commands never stop. An endpoint whose veth is gone while its
//!   container's netns lives is made again with the same address, MAC and name.
//! - A running container whose command ended, or whose own netns vanished (a reboot, a
//!   crash inside `stop`), while no daemon watched is reported as exited: the caller stops it
//!   (Docker's 255 for an unknown exit code) or with `--rm` removes it.
use std::{collections::BTreeSet, path::Path};

use super::{datapath_network, Kernel, Manager, State};
use crate::{
    container_files::ContainerFiles,
    datapath::DatapathEndpoint,
    error::Error,
    model::{Container, NetMode},
    supervisor::UNKNOWN_EXIT,
};

/// What recovery found that the caller must act on.
#[derive(Default)]
pub(super) struct Repairs {
    /// Failures that did not stop the recovery (each is logged).
    pub errors: Vec<Error>,
    /// Running containers whose command or netns is gone, with their exit code.
    pub exited: Vec<(String, i32)>,
}

impl<K: Kernel> Manager<K> {
    pub(super) async fn recover(&self, state: &State) -> Repairs {
        let mut repairs = Repairs::default();
        for ipam in state.networks.values().filter_map(|n| n.ipam.as_ref()) {
            repairs.errors.extend(self.kernel.add_gateway(ipam).await.err());
        }
        let mut live = Vec::new();
        let mut published = Vec::new();
        let mut commands = BTreeSet::new();
        for c in state.containers.values().filter(|c| c.running()) {
            if !self.netns_alive(state, c) {
                tracing::warn!(container = %c.name, "container netns is gone; the container has exited");
                repairs.exited.push((c.id.clone(), UNKNOWN_EXIT));
                continue;
            }
            if let Some(process) = &c.process {
                if !self.kernel.adopt(&c.id, process) {
                    tracing::info!(container = %c.name, pid = process.pid, "command exited while the daemon was down");
                    repairs.exited.push((c.id.clone(), UNKNOWN_EXIT));
                    continue;
                }
                commands.insert(c.id.clone());
            }
            live.extend(self.adopt_endpoints(state, c, &mut repairs.errors).await);
            published.extend(c.published.iter().map(|p| p.datapath()));
        }
        // Docker's endpoints: their veths are adopted as they are (the peer may be in a
        // sandbox netd never sees); one whose veth is gone (its sandbox went with the peer)
        // stays until Docker's DeleteEndpoint.
        for n in state.networks.values() {
            for d in n.docker_endpoints() {
                let network = datapath_network(&state.networks, &n.id);
                match self.kernel.existing_entry(&d.endpoint, network).await {
                    Ok(Some(entry)) => match self.kernel.add_host_route(&d.endpoint, &entry).await {
                        Ok(()) => live.push(entry),
                        Err(e) => repairs.errors.push(e),
                    },
                    Ok(None) => tracing::warn!(endpoint = %d.endpoint.id, "Docker endpoint's veth is gone"),
                    Err(e) => repairs.errors.push(e),
                }
                published.extend(d.published.iter().map(|p| p.datapath()));
            }
        }
        // Objects of exited containers still count as known: their stop releases them.
        let containers: Vec<Container> = state.containers.values().cloned().collect();
        let networks: Vec<_> = state.networks.values().cloned().collect();
        repairs.errors.extend(self.kernel.sweep(&networks, &containers, &live).await);
        // Published ports: exactly those of the containers that run on (an exited one's go
        // when it is stopped, and a crash between publish and commit left ports nobody has).
        repairs.errors.extend(self.kernel.keep_published(&published).err());
        // Processes of containers not running (or not adopted) are orphans: end them.
        let exited = repairs.exited.iter().map(|(id, _)| id.clone());
        let keep_commands: BTreeSet<String> = commands.into_iter().chain(exited).collect();
        repairs.errors.extend(self.kernel.sweep_processes(&keep_commands).await);
        self.sweep_files(state, &mut repairs.errors);
        repairs
    }

    /// Whether the netns `c` runs in exists: its own mount (or the one a `container:` sharer
    /// kept), the end of its `container:` chain's, or the daemon's for `--network host`.
    fn netns_alive(&self, state: &State, c: &Container) -> bool {
        let owner = state.owner(c);
        owner.running()
            && (owner.mode == NetMode::Host
                || owner.netns.as_deref().is_some_and(|p| self.kernel.netns_alive(Path::new(p))))
    }

    /// Adopts the endpoints of a running container whose netns lives: each one's veth and /32
    /// route as they are, or made again when the veth is gone; the default route through the
    /// gateway endpoint (`Container::default_route_endpoint`; none such: no default route).
    /// Returns the datapath entries to keep.
    async fn adopt_endpoints(&self, state: &State, c: &Container, errors: &mut Vec<Error>) -> Vec<DatapathEndpoint> {
        let Some(netns) = c.netns.as_deref().map(Path::new) else { return vec![] };
        let default_route = c.default_route_endpoint(&state.networks);
        let mut live = Vec::new();
        for ep in &c.endpoints {
            let network = datapath_network(&state.networks, &ep.network);
            let entry = match self.kernel.existing_entry(ep, network).await {
                // The /32 route may have been removed by hand: adding it again is a no-op when
                // it is there.
                Ok(Some(entry)) => self.kernel.add_host_route(ep, &entry).await.map(|()| entry),
                Ok(None) => {
                    tracing::warn!(container = %c.name, endpoint = %ep.id, "endpoint's veth is gone; making it again");
                    self.kernel.add_endpoint(netns, ep, network, default_route == Some(ep)).await
                }
                Err(e) => Err(e),
            };
            match entry {
                Ok(entry) => live.push(entry),
                Err(e) => errors.push(e),
            }
        }
        if !c.endpoints.is_empty() {
            errors.extend(self.kernel.set_default_route(netns, default_route.map(|ep| ep.gateway)).await.err());
        }
        live
    }

    /// Per-container files: those of containers the store does not know are removed, the
    /// others rewritten from the store (a crash may have left them a step ahead).
    fn sweep_files(&self, state: &State, errors: &mut Vec<Error>) {
        for id in ContainerFiles::ids(&self.run_dir) {
            if !state.containers.contains_key(&id) {
                tracing::info!(container = %id, "removing files of an unknown container");
                ContainerFiles::new(&self.run_dir, &id).remove();
            }
        }
        for c in state.containers.values() {
            let files = ContainerFiles::new(&self.run_dir, &c.id);
            errors.extend(files.write(c, &state.networks, self.dns.upstreams()).err());
        }
    }
}
