//! The daemon's state and every operation on it. Each mutation runs under one lock, except the
//! kernel work of a `run` that makes its own netns, which runs between a reservation and the
//! commit without it (`State::pending`, `containers.rs` `bring_up`).
//!
//! Crash safety comes from the order of the steps, so that `kill -9` at any point leaves
//! something the next start repairs (`manager/recovery.rs`) without any intent log:
//! - what creates (run, start, connect, network create) applies to the kernel first and
//!   commits last: a crash in between leaves kernel objects, processes and files the store
//!   does not know, and the restart removes them; a failed step undoes the earlier ones
//!   (`Undo`);
//! - what removes (stop, rm, disconnect, network rm, reset) commits first and then tears
//!   down: a crash in between leaves leftovers of objects the store no longer has, removed
//!   the same way. A teardown step that fails is logged and the same clean-up runs at once.
//!
//! Networks live here; container lifecycles (`run`, `stop`, `start`, `rm`) are in
//! `containers.rs` and `network connect`/`disconnect` in `connect.rs`.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use tokio::sync::Mutex;

use crate::{
    api_types::{ConntrackUsage, CreateNetwork, EndpointCount, Stats},
    container_files::ContainerFiles,
    crash,
    datapath::DatapathNetwork,
    dns::Dns,
    error::{Error, Result},
    ipam,
    kernel::{HostKernel, Kernel},
    model::{new_id, now_rfc3339, Container, Driver, Endpoint, IpamConfig, NetMode, Network},
    store::{Changes, Store},
    validate,
};

mod connect;
mod containers;
pub mod docker;
mod hosts;
mod overlay;
mod ports;
mod recovery;
#[cfg(test)]
mod tests;

pub use containers::ContainerInfo;
pub use overlay::Sink;

#[derive(Default)]
struct State {
    networks: BTreeMap<String, Network>,
    containers: BTreeMap<String, Container>,
    /// Containers made by an attached `run`, whose command starts when the CLI passes its
    /// stdio over the attach socket.
    awaiting_attach: BTreeSet<String>,
    /// Where random host ports continue from (`ports.rs`).
    port_cursor: ports::PortCursor,
    /// Where the search for the next automatic subnet starts: after the pool the last
    /// network took (in memory only, as Docker's; `None`: the first user pool).
    next_pool: Option<ipnetwork::Ipv4Network>,
    /// What the datapath's maps hold: commands that would exceed it are refused up front.
    capacities: crate::limits::Capacities,
    /// Pools netd's Docker IpamDriver handed out, by PoolID (`docker.rs`).
    docker_pools: BTreeMap<String, crate::model::DockerPool>,
    /// Overlay endpoints of other hosts as the datapath holds them (`overlay.rs`).
    remote: HashMap<Ipv4Addr, crate::datapath::RemoteEndpoint>,
    /// Their announcements, for the embedded DNS.
    remote_names: crate::dns::RemoteNames,
    /// Containers a `run` has reserved (name, addresses, host ports: they are in `containers`)
    /// and is making in the kernel without the lock; committed or gone when it ends. Only
    /// such runs see them: every other command waits until there are none (`lock_settled`).
    pending: BTreeSet<String>,
}

pub struct Manager<K: Kernel = HostKernel> {
    state: Mutex<State>,
    store: Store,
    /// Namespaces, links, routes, the datapath and container processes.
    kernel: K,
    run_dir: PathBuf,
    /// The embedded DNS: its records and listeners follow the state (`sync_dns`).
    dns: Dns,
    /// CLIs of attached runs waiting for their command's exit code, by (container id, pid).
    exit_waiters: std::sync::Mutex<HashMap<(String, u32), tokio::sync::oneshot::Sender<i32>>>,
    /// Cluster mode: the etcd session's handle (`overlay.rs`); `None`: a single host.
    cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    /// Woken when a pending `run` ends (`State::pending`).
    settled: tokio::sync::Notify,
}

/// A container attached to a network, for `network inspect`: bridge networks list their
/// endpoints; `host` and `none` list the containers in that mode (without addresses).
#[derive(Clone, Debug)]
pub struct Member {
    pub container: Container,
    pub endpoint: Option<Endpoint>,
}

/// Names of the networks that always exist, like Docker's.
pub use crate::model::DEFAULT_BRIDGE;
const PREDEFINED: [(&str, Driver); 3] =
    [(DEFAULT_BRIDGE, Driver::Bridge), ("host", Driver::Host), ("none", Driver::Null)];

impl State {
    fn network(&self, name_or_id: &str) -> Result<&Network> {
        find(&self.networks, name_or_id, |n| &n.name).ok_or_else(|| Error::NetworkNotFound(name_or_id.into()))
    }

    fn container(&self, name_or_id: &str) -> Result<&Container> {
        find(&self.containers, name_or_id, |c| &c.name).ok_or_else(|| Error::ContainerNotFound(name_or_id.into()))
    }

    fn used_addresses(&self, network_id: &str) -> BTreeSet<Ipv4Addr> {
        self.endpoints().filter(|(_, ep)| ep.network == network_id).map(|(_, ep)| ep.ip).collect()
    }

    fn endpoints(&self) -> impl Iterator<Item = (&Container, &Endpoint)> {
        self.containers.values().flat_map(|c| c.endpoints.iter().map(move |ep| (c, ep)))
    }

    /// Refuses `adding` more endpoints when the endpoint maps could not hold them.
    fn check_endpoint_capacity(&self, adding: usize) -> Result<()> {
        let in_use = self.endpoints().count() + self.docker_endpoint_count();
        let capacity = self.capacities.endpoints as usize;
        match in_use + adding > capacity {
            true => Err(Error::CapacityExceeded { what: "endpoints", capacity, flag: "--max-endpoints" }),
            false => Ok(()),
        }
    }

    /// Refuses `adding` more published ports (besides those `except` has now) when the service
    /// map could not hold them.
    fn check_published_capacity(&self, except: &str, adding: usize) -> Result<()> {
        let docker: usize = self.networks.values().flat_map(|n| n.docker_endpoints()).map(|d| d.published.len()).sum();
        let in_use: usize =
            self.containers.values().filter(|c| c.id != except).map(|c| c.published.len()).sum::<usize>() + docker;
        let capacity = self.capacities.published_ports as usize;
        match in_use + adding > capacity {
            true => Err(Error::CapacityExceeded { what: "published ports", capacity, flag: "--max-published-ports" }),
            false => Ok(()),
        }
    }

    /// Subnets in use: every network's and every pool Docker holds of netd's IpamDriver.
    fn subnets(&self) -> Vec<ipnetwork::Ipv4Network> {
        let networks = self.networks.values().filter_map(|n| n.ipam.as_ref().map(|i| i.subnet));
        networks.chain(self.docker_pools.values().map(|p| p.pool)).collect()
    }

    fn next_network_index(&self) -> u32 {
        self.networks.values().map(|n| n.index).max().unwrap_or(0) + 1
    }

    /// The container whose netns and endpoints `c` uses: itself, or for `container:NAME` the
    /// end of the chain, however long — or the first container on it with a netns of its own:
    /// a running sharer keeps the netns its target gives up by stopping or going. A chain
    /// cannot loop (a target exists before its sharer), but a corrupt store could: then the
    /// chain ends where it would repeat, at a container in `container:` mode, which owns no
    /// netns (callers refuse to run there).
    fn owner<'a>(&'a self, c: &'a Container) -> &'a Container {
        let mut current = c;
        let mut seen = BTreeSet::new();
        while let (NetMode::Container(id), None) = (&current.mode, &current.netns) {
            match self.containers.get(id) {
                Some(next) if seen.insert(next.id.as_str()) => current = next,
                _ => break,
            }
        }
        current
    }

    /// Containers that use `id`'s netns directly (`--network container:ID`).
    fn sharers(&self, id: &str) -> Vec<&Container> {
        self.containers.values().filter(|c| matches!(&c.mode, NetMode::Container(t) if t == id)).collect()
    }

    fn members(&self, network: &Network) -> Vec<Member> {
        let mode = match network.driver {
            Driver::Host => Some(NetMode::Host),
            Driver::Null => Some(NetMode::None),
            Driver::Bridge | Driver::Overlay => None,
        };
        match mode {
            Some(mode) => self
                .containers
                .values()
                .filter(|c| c.mode == mode && c.running())
                .map(|c| Member { container: c.clone(), endpoint: None })
                .collect(),
            None => self
                .endpoints()
                .filter(|(_, ep)| ep.network == network.id)
                .map(|(c, ep)| Member { container: c.clone(), endpoint: Some(ep.clone()) })
                .collect(),
        }
    }
}

/// Looks up by exact name, then exact id, then unique id prefix (Docker's order).
fn find<'a, T>(map: &'a BTreeMap<String, T>, key: &str, name: impl Fn(&T) -> &String) -> Option<&'a T> {
    if let Some(v) = map.values().find(|v| name(v) == key) {
        return Some(v);
    }
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    let mut matches = map.iter().filter(|(id, _)| !key.is_empty() && id.starts_with(key));
    match (matches.next(), matches.next()) {
        (Some((_, v)), None) => Some(v),
        _ => None,
    }
}

impl<K: Kernel> Manager<K> {
    /// Loads the store, creates the predefined networks if missing, and makes the
    /// store and the kernel agree (gateways, endpoints, pinned datapath, processes, files).
    pub async fn start(
        store: Store,
        kernel: K,
        run_dir: &Path,
        dns: Dns,
        capacities: crate::limits::Capacities,
    ) -> Result<Self> {
        Self::start_in_cluster(store, kernel, run_dir, dns, capacities, None).await
    }

    /// [`Self::start`], in cluster mode with `cluster` (overlay networks).
    pub async fn start_in_cluster(
        store: Store,
        kernel: K,
        run_dir: &Path,
        dns: Dns,
        capacities: crate::limits::Capacities,
        cluster: Option<std::sync::Arc<crate::cluster::Cluster>>,
    ) -> Result<Self> {
        let mut state = State { capacities, ..State::default() };
        for n in store.networks()? {
            state.networks.insert(n.id.clone(), n);
        }
        for c in store.containers()? {
            state.containers.insert(c.id.clone(), c);
        }
        for p in store.docker_pools()? {
            state.docker_pools.insert(p.id.clone(), p);
        }
        let manager = Self {
            state: Mutex::new(state),
            settled: tokio::sync::Notify::new(),
            store,
            kernel,
            run_dir: run_dir.to_path_buf(),
            dns,
            exit_waiters: Default::default(),
            cluster,
        };
        if manager.cluster.is_some() {
            manager.kernel.enable_overlay().await?;
        }
        manager.create_predefined().await?;
        manager.recover_after_restart().await?;
        // The VNIs of the overlay networks this host had, before the session brings news.
        manager.sync_overlay_networks(&*manager.lock_settled().await);
        Ok(manager)
    }

    async fn create_predefined(&self) -> Result<()> {
        let mut state = self.lock_settled().await;
        for (name, driver) in PREDEFINED {
            if state.networks.values().any(|n| n.name == name) {
                continue;
            }
            let ipam = if driver == Driver::Bridge {
                Some(ipam::default_bridge(&state.subnets(), &self.kernel.host_addressing().await?)?)
            } else {
                None
            };
            let network = Network {
                id: new_id(),
                name: name.into(),
                driver,
                index: state.next_network_index(),
                ipam,
                internal: false,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                created: now_rfc3339(),
                docker: None,
                overlay: None,
            };
            self.store.commit(Changes { put_networks: vec![network.clone()], ..Default::default() })?;
            state.networks.insert(network.id.clone(), network);
        }
        Ok(())
    }

    /// After a (re)start the store and the kernel are made to agree (`recovery.rs`), and
    /// containers found exited are stopped or removed.
    async fn recover_after_restart(&self) -> Result<()> {
        let mut state = self.lock_settled().await;
        let state = &mut *state;
        let repairs = self.recover(state).await;
        for e in &repairs.errors {
            tracing::warn!(error = %e, "recovery");
        }
        // Containers whose command ended, or whose netns vanished, while no daemon watched.
        for (id, code) in repairs.exited {
            if let Some(c) = state.containers.get(&id).cloned() {
                if let Err(e) = self.exited_locked(state, &c, code).await {
                    tracing::warn!(container = %c.name, error = %e, "recovery: container exited while the daemon was down");
                }
            }
        }
        // Listeners of the previous daemon closed with it: make them for every live container.
        self.sync_dns(state);
        Ok(())
    }

    /// Commits from now on are made durable in the background, shared by the commands that
    /// come together ([`crate::store::Store::group_commits`]).
    pub fn group_commits(&self) {
        self.store.group_commits();
    }

    /// Starts making namespaces ahead of `run` (`netns_pool.rs`).
    pub fn prepare_netns_ahead(&self) {
        self.kernel.prepare_netns_ahead();
    }

    /// Stops making namespaces ahead and removes the ready ones (the daemon is stopping).
    pub fn stop_preparing_netns(&self) {
        self.kernel.stop_preparing_netns();
    }

    /// Waits until every change committed so far is on disk.
    pub async fn durable(&self) -> Result<()> {
        self.store.durable().await
    }

    /// The state once no `run` is pending: what every command but `run` works on.
    async fn lock_settled(&self) -> tokio::sync::MutexGuard<'_, State> {
        loop {
            // Made before looking, so that a run settling in between still wakes it.
            let settled = self.settled.notified();
            let state = self.state.lock().await;
            if state.pending.is_empty() {
                return state;
            }
            drop(state);
            settled.await;
        }
    }

    /// Brings the embedded DNS (names and listeners) in line with `state`; called after every
    /// change to containers or their endpoints.
    fn sync_dns(&self, state: &State) {
        // Pending containers have no name yet.
        self.dns.sync(&state.networks, &state.containers, &state.pending, &state.remote_names);
    }

    pub async fn networks(&self) -> Vec<(Network, Vec<Member>)> {
        let state = self.lock_settled().await;
        state.networks.values().map(|n| (n.clone(), state.members(n))).collect()
    }

    pub async fn network(&self, name: &str) -> Result<(Network, Vec<Member>)> {
        let state = self.lock_settled().await;
        let n = state.network(name)?.clone();
        let m = state.members(&n);
        Ok((n, m))
    }

    pub async fn create_network(&self, req: CreateNetwork) -> Result<Network> {
        let mut state = self.lock_settled().await;
        if PREDEFINED.iter().any(|(n, _)| *n == req.name) {
            return Err(Error::PredefinedNetwork(req.name));
        }
        validate::create_network(&req)?;
        if state.networks.values().any(|n| n.name == req.name) {
            return Err(Error::NetworkExists(req.name));
        }
        // An empty driver is the default one, as in Docker.
        match req.driver.as_deref().filter(|d| !d.is_empty()).unwrap_or("bridge") {
            "bridge" => {}
            "overlay" => return self.create_overlay(&mut state, req).await,
            "host" | "null" => {
                return Err(Error::Conflict(format!(
                    "only one instance of \"{}\" network is allowed",
                    req.driver.unwrap()
                )))
            }
            other => return Err(Error::InvalidArgument(format!("plugin \"{other}\" not found"))),
        }
        let host = self.kernel.host_addressing().await?;
        let ipam = ipam::configure(
            req.subnet.as_deref(),
            req.ip_range.as_deref(),
            req.gateway.as_deref(),
            &state.subnets(),
            &host,
            state.next_pool.unwrap_or_else(ipam::first_user_pool),
        )?;
        let network = Network {
            id: new_id(),
            name: req.name,
            driver: Driver::Bridge,
            index: state.next_network_index(),
            ipam: Some(ipam.clone()),
            internal: req.internal,
            labels: req.labels,
            options: req.options,
            created: now_rfc3339(),
            docker: None,
            overlay: None,
        };
        self.kernel.add_gateway(&ipam).await?;
        crash::point("network-create:gateway");
        if let Err(e) = self.store.commit(Changes { put_networks: vec![network.clone()], ..Default::default() }) {
            let _ = self.kernel.remove_gateway(&ipam).await;
            return Err(e);
        }
        if req.subnet.is_none() {
            state.next_pool = Some(ipam::pool_after(ipam.subnet));
        }
        state.networks.insert(network.id.clone(), network.clone());
        self.announce_member(&state).await;
        Ok(network)
    }

    pub async fn remove_network(&self, name: &str) -> Result<Network> {
        let mut state = self.lock_settled().await;
        self.remove_network_locked(&mut state, name).await
    }

    async fn remove_network_locked(&self, state: &mut State, name: &str) -> Result<Network> {
        let network = state.network(name)?.clone();
        if PREDEFINED.iter().any(|(n, _)| *n == network.name) {
            return Err(Error::Conflict(format!("{} is a pre-defined network and cannot be removed", network.name)));
        }
        if network.docker.is_some() {
            return Err(docker::owned_by_docker(&network));
        }
        if state.endpoints().any(|(_, ep)| ep.network == network.id) {
            return Err(Error::NetworkInUse { name: network.name, id: network.id });
        }
        if network.driver == Driver::Overlay {
            // In use on any host: refused there (the cluster store knows every address).
            self.cluster()?.remove_network(&network).await?;
        }
        self.delete_network(state, &network, "network-rm:commit").await?;
        match network.driver {
            Driver::Overlay => self.sync_overlay_networks(state),
            _ => self.announce_member(state).await,
        }
        Ok(network)
    }

    /// Removes a network its caller found free: commit first, then its gateway goes (a step
    /// that fails is logged and cleaned up as every teardown). `crash_point`: where a crash
    /// test may stop the daemon after the commit.
    async fn delete_network(&self, state: &mut State, network: &Network, crash_point: &str) -> Result<()> {
        self.store.commit(Changes { del_networks: vec![network.id.clone()], ..Default::default() })?;
        state.networks.remove(&network.id);
        crash::point(crash_point);
        if let Some(ipam) = &network.ipam {
            if let Err(e) = self.kernel.remove_gateway(ipam).await {
                self.cleanup_after(state, vec![e]).await;
            }
        }
        Ok(())
    }

    /// Removes every user network without endpoints; returns their names.
    pub async fn prune_networks(&self) -> Result<Vec<String>> {
        let mut state = self.lock_settled().await;
        let mut candidates: Vec<(String, String)> = state
            .networks
            .values()
            .filter(|n| !PREDEFINED.iter().any(|(p, _)| *p == n.name) && n.docker.is_none())
            .filter(|n| !state.endpoints().any(|(_, ep)| ep.network == n.id))
            .map(|n| (n.name.clone(), n.id.clone()))
            .collect();
        candidates.sort();
        let mut removed = Vec::new();
        for (_, id) in candidates {
            match self.remove_network_locked(&mut state, &id).await {
                Ok(network) => removed.push(network.name),
                // An overlay network with endpoints on another host is in use: kept.
                Err(Error::NetworkInUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// `netd stats`: every drop counter, each endpoint's traffic as its container-side
    /// interface counted it, and the flow tables against their capacity.
    pub async fn stats(&self) -> Result<Stats> {
        let state = self.lock_settled().await;
        let mut containers: Vec<&Container> = state.containers.values().filter(|c| c.running()).collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut endpoints = Vec::new();
        for c in containers {
            let Some(netns) = c.netns.as_deref().map(Path::new) else { continue };
            for ep in &c.endpoints {
                let counters = match self.kernel.link_counters(netns, &ep.ifname).await {
                    Ok(Some(counters)) => counters,
                    // Gone behind the daemon's back (the next restart repairs it): nothing to
                    // count, and no reason to fail the others.
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(container = %c.name, interface = %ep.ifname, error = %e, "cannot read counters");
                        continue;
                    }
                };
                endpoints.push(EndpointCount {
                    container: c.name.clone(),
                    network: state.networks.get(&ep.network).map_or_else(|| ep.network.clone(), |n| n.name.clone()),
                    interface: ep.ifname.clone(),
                    ip: ep.ip,
                    rx_packets: counters.rx_packets,
                    rx_bytes: counters.rx_bytes,
                    tx_packets: counters.tx_packets,
                    tx_bytes: counters.tx_bytes,
                });
            }
        }
        endpoints.extend(self.docker_endpoint_counts(&state).await);
        drop(state);
        let flows = self.kernel.flow_tables()?;
        Ok(Stats {
            drops: self.kernel.drop_stats()?.into_iter().map(Into::into).collect(),
            endpoints,
            conntrack: ConntrackUsage { tcp: flows.conntrack_tcp.into(), other: flows.conntrack_other.into() },
            nat: flows.nat.into(),
            endpoints_being_removed: self.kernel.endpoints_being_removed() as u64,
            netns_being_prepared: self.kernel.netns_being_prepared() as u64,
            warnings: if flows.host_clients {
                vec![]
            } else {
                vec!["host clients cannot reach published ports: no cgroup2 mount for the socket-LB".into()]
            },
        })
    }

    /// Removes every container and every network, the daemon's netns mount, the per-container
    /// files and cgroups, then the pins (`netd system reset`). The store is emptied first; a
    /// crash during the teardown leaves only leftovers that the next start removes.
    pub async fn reset(&self) -> Result<()> {
        let mut state = self.lock_settled().await;
        let changes = Changes {
            del_networks: state.networks.keys().cloned().collect(),
            del_containers: state.containers.keys().cloned().collect(),
            del_pools: state.docker_pools.keys().cloned().collect(),
            ..Default::default()
        };
        self.store.commit(changes)?;
        let networks = std::mem::take(&mut state.networks);
        let containers = std::mem::take(&mut state.containers);
        state.docker_pools.clear();
        state.awaiting_attach.clear();
        self.sync_dns(&state);
        crash::point("reset:commit");
        let mut errors = Vec::new();
        // Containers sharing another's netns go first.
        let mut containers: Vec<_> = containers.into_values().collect();
        containers.sort_by_key(|c| !matches!(c.mode, NetMode::Container(_)));
        for c in &containers {
            // Sharers first: every netns goes with its owner.
            errors.extend(self.teardown(&networks, c, true).await);
            ContainerFiles::new(&self.run_dir, &c.id).remove();
        }
        errors.extend(self.remove_docker_endpoints(&networks).await);
        // The pins and links go below: nothing may be left in the background.
        self.kernel.removals_settled().await;
        for ipam in networks.values().filter_map(|n| n.ipam.as_ref()) {
            errors.extend(self.kernel.remove_gateway(ipam).await.err());
        }
        errors.extend(self.kernel.remove_host_netns().err());
        errors.extend(self.kernel.remove_all_processes().await);
        ContainerFiles::remove_all(&self.run_dir);
        errors.extend(self.kernel.purge_datapath().err());
        combine(errors)
    }

    /// Stores `c` and makes it the state's (one container's commit).
    fn commit_container(&self, state: &mut State, c: Container) -> Result<()> {
        self.store.commit(Changes { put_containers: vec![c.clone()], ..Default::default() })?;
        state.containers.insert(c.id.clone(), c);
        Ok(())
    }

    /// A teardown step failed after its change was committed: log it and remove whatever
    /// the store no longer accounts for, as a restart would.
    async fn cleanup_after(&self, state: &State, errors: Vec<Error>) {
        for e in &errors {
            tracing::warn!(error = %e, "teardown step failed; cleaning up");
        }
        // Containers found exited here are left to the next start's recovery: stopping them
        // from inside a stop would recurse.
        for e in self.recover(state).await.errors {
            tracing::warn!(error = %e, "clean-up after a failed teardown");
        }
    }
}

/// One error for several: each one's text, in order.
fn combine(errors: Vec<Error>) -> Result<()> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.into_iter().next().unwrap()),
        _ => Err(Error::Several(errors)),
    }
}

/// Rejects `--ip`/`--alias` where Docker does: only user-defined bridge networks take
/// aliases, and only those with a user-configured subnet take a fixed address.
fn check_endpoint_options(network: &Network, ip: Option<Ipv4Addr>, aliases: &[String]) -> Result<()> {
    if network.docker.is_some() {
        return Err(docker::owned_by_docker(network));
    }
    let user_defined = network.is_user_defined();
    if ip.is_some() {
        if !user_defined {
            return Err(Error::IpNeedsUserNetwork);
        }
        if !network.ipam.as_ref().is_some_and(|i| i.user_subnet) {
            return Err(Error::IpNeedsUserSubnet);
        }
    }
    if !aliases.is_empty() && !user_defined {
        return Err(Error::AliasNeedsUserNetwork);
    }
    Ok(())
}

/// A new endpoint `id` on a (bridge) network of this host, its address from this host's IPAM.
fn allocate_endpoint(
    state: &State,
    network: &Network,
    requested: Option<Ipv4Addr>,
    aliases: &[String],
    slot: usize,
    id: String,
) -> Result<Endpoint> {
    let ip = ipam::choose_address(network, network_ipam(network)?, requested, &state.used_addresses(&network.id))?;
    endpoint_at(network, ip, requested.is_some(), aliases, slot, id)
}

fn network_ipam(network: &Network) -> Result<&IpamConfig> {
    network.ipam.as_ref().ok_or_else(|| Error::InvalidArgument(format!("network {} has no address pool", network.name)))
}

/// Endpoint `id` at `ip` on `network`, as the container's `eth{slot}`.
fn endpoint_at(
    network: &Network,
    ip: Ipv4Addr,
    static_ip: bool,
    aliases: &[String],
    slot: usize,
    id: String,
) -> Result<Endpoint> {
    let ipam = network_ipam(network)?;
    Ok(Endpoint {
        host_ifname: crate::plumbing::host_ifname(&id),
        id,
        network: network.id.clone(),
        ip,
        prefix: ipam.subnet.prefix(),
        gateway: ipam.gateway,
        mac: ipam::mac_for(ip),
        ifname: format!("eth{slot}"),
        aliases: aliases.to_vec(),
        static_ip,
    })
}

/// A refusal of the endpoint's settings (an MTU the kernel does not take) as Docker words it
/// at `run` and `connect`: "failed to create endpoint CONTAINER on network NETWORK: …".
fn endpoint_error(e: Error, container: &str, network: &str) -> Error {
    match e {
        Error::InvalidArgument(m) => {
            Error::InvalidArgument(format!("failed to create endpoint {container} on network {network}: {m}"))
        }
        e => e,
    }
}

/// What the datapath needs of the network `id`; one missing from the store (corrupt) is index
/// 0, not internal.
fn datapath_network(networks: &BTreeMap<String, Network>, id: &str) -> DatapathNetwork {
    networks.get(id).map(DatapathNetwork::from).unwrap_or_default()
}

/// What a failed operation has applied so far, undone in reverse order.
#[derive(Default)]
struct Undo {
    netns: Option<PathBuf>,
    endpoints: Vec<(Endpoint, DatapathNetwork)>,
    /// Ports published in the datapath.
    published: Vec<crate::datapath::PublishedPort>,
    files: Option<ContainerFiles>,
    /// The container whose command was started.
    process: Option<String>,
}

impl Undo {
    async fn run(self, kernel: &impl Kernel) {
        if let Some(container) = self.process {
            let _ = kernel.kill(&container).await;
        }
        if let Some(files) = self.files {
            files.remove();
        }
        if !self.published.is_empty() {
            let _ = kernel.unpublish(&self.published);
        }
        for (ep, network) in self.endpoints.iter().rev() {
            let _ = kernel.remove_endpoint(ep, *network).await;
        }
        if let Some(path) = self.netns {
            let _ = kernel.remove_netns(&path);
        }
    }
}
