//! The daemon's state and every operation on it. Each mutation runs under one lock as
//! validate → apply to the kernel → commit to the store; when a kernel step fails, what was
//! applied is undone, so nothing is left half-created.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use tokio::sync::Mutex;

use crate::{
    container_files::ContainerFiles,
    endpoint::Plumber,
    error::{Error, Result},
    ipam,
    model::{new_id, now_rfc3339, Container, Driver, Endpoint, IpamConfig, NetMode, Network},
    process,
    store::{Changes, Store},
};

#[derive(Default)]
struct State {
    networks: BTreeMap<String, Network>,
    containers: BTreeMap<String, Container>,
}

pub struct Manager {
    state: Mutex<State>,
    store: Store,
    plumber: Plumber,
    run_dir: PathBuf,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CreateNetwork {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunContainer {
    pub name: String,
    /// `bridge` (default), a network name, `host`, `none` or `container:NAME`.
    pub network: Option<String>,
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ConnectRequest {
    pub container: String,
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Names of the networks that always exist, like Docker's.
pub const DEFAULT_BRIDGE: &str = "bridge";
const PREDEFINED: [(&str, Driver); 3] =
    [(DEFAULT_BRIDGE, Driver::Bridge), ("host", Driver::Host), ("none", Driver::Null)];

impl State {
    fn network(&self, name_or_id: &str) -> Result<&Network> {
        find(&self.networks, name_or_id, |n| &n.name).ok_or_else(|| Error::NetworkNotFound(name_or_id.into()))
    }

    fn container(&self, name_or_id: &str) -> Result<&Container> {
        find(&self.containers, name_or_id, |c| &c.name)
            .ok_or_else(|| Error::ContainerNotFound(name_or_id.into()))
    }

    fn used_addresses(&self, network_id: &str) -> BTreeSet<Ipv4Addr> {
        self.endpoints().filter(|(_, ep)| ep.network == network_id).map(|(_, ep)| ep.ip).collect()
    }

    fn endpoints(&self) -> impl Iterator<Item = (&Container, &Endpoint)> {
        self.containers.values().flat_map(|c| c.endpoints.iter().map(move |ep| (c, ep)))
    }

    fn subnets(&self) -> Vec<ipnetwork::Ipv4Network> {
        self.networks.values().filter_map(|n| n.ipam.as_ref().map(|i| i.subnet)).collect()
    }

    fn next_network_index(&self) -> u32 {
        self.networks.values().map(|n| n.index).max().unwrap_or(0) + 1
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

impl Manager {
    /// Loads the store, creates the predefined networks if missing, and reconciles the
    /// kernel (gateways, pinned datapath state) with what the store knows.
    pub async fn start(store: Store, plumber: Plumber, run_dir: &Path) -> Result<Self> {
        let mut state = State::default();
        for n in store.networks()? {
            state.networks.insert(n.id.clone(), n);
        }
        for c in store.containers()? {
            state.containers.insert(c.id.clone(), c);
        }
        let manager = Self { state: Mutex::new(state), store, plumber, run_dir: run_dir.to_path_buf() };
        manager.create_predefined().await?;
        manager.reconcile().await?;
        Ok(manager)
    }

    async fn create_predefined(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        for (name, driver) in PREDEFINED {
            if state.networks.values().any(|n| n.name == name) {
                continue;
            }
            let ipam = if driver == Driver::Bridge {
                let mut taken = state.subnets();
                taken.extend(self.plumber.host_routes().await?);
                let subnet = ipam::pick_subnet(&taken, ipam::DEFAULT_BRIDGE_SUBNET.parse().unwrap())?;
                Some(ipam::configure(Some(&subnet.to_string()), None, None, &[])?)
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
            };
            self.store.commit(Changes { put_networks: vec![network.clone()], ..Default::default() })?;
            state.networks.insert(network.id.clone(), network);
        }
        Ok(())
    }

    /// Makes the kernel match the store after a restart (`reconcile.rs`): what the store knows
    /// is adopted in place, netd's leftovers that it does not know are removed.
    async fn reconcile(&self) -> Result<()> {
        let state = self.state.lock().await;
        let networks: Vec<Network> = state.networks.values().cloned().collect();
        let containers: Vec<Container> = state.containers.values().cloned().collect();
        crate::reconcile::run(&self.plumber, &networks, &containers).await
    }

    pub async fn networks(&self) -> Vec<(Network, Vec<(Container, Endpoint)>)> {
        let state = self.state.lock().await;
        state.networks.values().map(|n| (n.clone(), members(&state, &n.id))).collect()
    }

    pub async fn network(&self, name: &str) -> Result<(Network, Vec<(Container, Endpoint)>)> {
        let state = self.state.lock().await;
        let n = state.network(name)?.clone();
        let m = members(&state, &n.id);
        Ok((n, m))
    }

    pub async fn create_network(&self, req: CreateNetwork) -> Result<Network> {
        let mut state = self.state.lock().await;
        if state.networks.values().any(|n| n.name == req.name) {
            return Err(Error::NetworkExists(req.name));
        }
        validate_name(&req.name)?;
        match req.driver.as_deref().unwrap_or("bridge") {
            "bridge" => {}
            "host" | "null" => {
                return Err(Error::Conflict(format!(
                    "only one instance of \"{}\" network is allowed",
                    req.driver.unwrap()
                )))
            }
            other => return Err(Error::InvalidArgument(format!("plugin \"{other}\" not found"))),
        }
        let mut taken = state.subnets();
        if req.subnet.is_none() {
            taken.extend(self.plumber.host_routes().await?);
        }
        let ipam = ipam::configure(req.subnet.as_deref(), req.ip_range.as_deref(), req.gateway.as_deref(), &taken)?;
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
        };
        self.plumber.add_gateway(&ipam).await?;
        if let Err(e) = self.store.commit(Changes { put_networks: vec![network.clone()], ..Default::default() }) {
            let _ = self.plumber.remove_gateway(&ipam).await;
            return Err(e);
        }
        state.networks.insert(network.id.clone(), network.clone());
        Ok(network)
    }

    pub async fn remove_network(&self, name: &str) -> Result<Network> {
        let mut state = self.state.lock().await;
        let network = state.network(name)?.clone();
        if PREDEFINED.iter().any(|(n, _)| *n == network.name) {
            return Err(Error::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        if state.endpoints().any(|(_, ep)| ep.network == network.id) {
            return Err(Error::NetworkInUse { name: network.name, id: network.id });
        }
        if let Some(ipam) = &network.ipam {
            self.plumber.remove_gateway(ipam).await?;
        }
        self.store.commit(Changes { del_networks: vec![network.id.clone()], ..Default::default() })?;
        state.networks.remove(&network.id);
        Ok(network)
    }

    pub async fn containers(&self) -> Vec<Container> {
        self.state.lock().await.containers.values().cloned().collect()
    }

    pub async fn container(&self, name: &str) -> Result<Container> {
        Ok(self.state.lock().await.container(name)?.clone())
    }

    /// Network names by id, for views.
    pub async fn network_names(&self) -> BTreeMap<String, String> {
        let state = self.state.lock().await;
        state.networks.values().map(|n| (n.id.clone(), n.name.clone())).collect()
    }

    pub async fn run(&self, req: RunContainer) -> Result<Container> {
        let mut state = self.state.lock().await;
        validate_name(&req.name)?;
        if state.containers.values().any(|c| c.name == req.name) {
            return Err(Error::ContainerExists(req.name));
        }
        let id = new_id();
        let hostname = req.hostname.clone().unwrap_or_else(|| id[..12].to_string());
        let network_arg = req.network.clone().unwrap_or_else(|| DEFAULT_BRIDGE.into());
        let (mode, network) = match network_arg.as_str() {
            "host" => (NetMode::Host, None),
            "none" => (NetMode::None, None),
            other => match other.strip_prefix("container:") {
                Some(target) => (NetMode::Container(state.container(target)?.id.clone()), None),
                None => (NetMode::Own, Some(state.network(other)?.clone())),
            },
        };
        if network.is_none() && (req.ip.is_some() || !req.aliases.is_empty()) {
            return Err(Error::InvalidArgument(
                "user specified IP address or aliases are supported only with a network of the bridge driver".into(),
            ));
        }
        let mut container = Container {
            id: id.clone(),
            name: req.name.clone(),
            mode: mode.clone(),
            hostname,
            endpoints: vec![],
            netns: None,
            cmd: req.cmd.clone(),
            pid: None,
            created: now_rfc3339(),
        };
        // Kernel steps, each undone by `undo` if a later one fails.
        let mut undo = Undo::default();
        let applied: Result<()> = async {
            container.netns = match &mode {
                NetMode::Host => None,
                NetMode::Container(target) => state.containers[target].netns.clone(),
                NetMode::Own | NetMode::None => {
                    let path = self.plumber.create_netns(&req.name).await?;
                    undo.netns = Some(path.clone());
                    Some(path.to_string_lossy().into_owned())
                }
            };
            if let Some(network) = &network {
                let ep = allocate_endpoint(&state, network, req.ip, &req.aliases, 0)?;
                let netns = PathBuf::from(container.netns.as_ref().unwrap());
                self.plumber.add_endpoint(&netns, &ep, network.index, true).await?;
                undo.endpoints.push((ep.clone(), network.index));
                container.endpoints.push(ep);
            }
            let files = ContainerFiles::new(&self.run_dir, &container.id);
            files.write(&container, &state.networks)?;
            undo.files = Some(files.clone());
            if !container.cmd.is_empty() {
                container.pid = Some(process::spawn(&container, &files)?);
            }
            self.store.commit(Changes { put_containers: vec![container.clone()], ..Default::default() })
        }
        .await;
        if let Err(e) = applied {
            undo.run(&self.plumber).await;
            return Err(e);
        }
        state.containers.insert(container.id.clone(), container.clone());
        Ok(container)
    }

    pub async fn remove_container(&self, name: &str, force: bool) -> Result<Container> {
        let mut state = self.state.lock().await;
        let container = state.container(name)?.clone();
        if container.pid.is_some_and(process::alive) && !force {
            return Err(Error::Conflict(format!(
                "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                container.name
            )));
        }
        let sharers: Vec<_> = state
            .containers
            .values()
            .filter(|c| c.mode == NetMode::Container(container.id.clone()))
            .map(|c| c.name.clone())
            .collect();
        if !sharers.is_empty() {
            return Err(Error::Conflict(format!(
                "cannot remove container \"/{}\": its network namespace is in use by {}",
                container.name,
                sharers.join(", ")
            )));
        }
        self.teardown(&state, &container).await?;
        self.store.commit(Changes { del_containers: vec![container.id.clone()], ..Default::default() })?;
        state.containers.remove(&container.id);
        Ok(container)
    }

    /// Stops the process, removes endpoints, netns and files. Keeps going after an error and
    /// reports the first one.
    async fn teardown(&self, state: &State, container: &Container) -> Result<()> {
        let mut first_error = None;
        if let Some(pid) = container.pid {
            process::kill(pid);
        }
        for ep in &container.endpoints {
            let index = state.networks.get(&ep.network).map(|n| n.index).unwrap_or(0);
            if let Err(e) = self.plumber.remove_endpoint(ep, index).await {
                first_error.get_or_insert(e);
            }
        }
        if matches!(container.mode, NetMode::Own | NetMode::None) {
            if let Some(netns) = &container.netns {
                if let Err(e) = self.plumber.remove_netns(Path::new(netns)) {
                    first_error.get_or_insert(e);
                }
            }
        }
        ContainerFiles::new(&self.run_dir, &container.id).remove();
        first_error.map_or(Ok(()), Err)
    }

    /// Removes every container and every user network, then the pins (`netd system reset`).
    pub async fn reset(&self) -> Result<()> {
        let mut state = self.state.lock().await;
        let mut first_error = None;
        // Containers sharing another's netns go first.
        let mut containers: Vec<_> = state.containers.values().cloned().collect();
        containers.sort_by_key(|c| !matches!(c.mode, NetMode::Container(_)));
        for c in &containers {
            if let Err(e) = self.teardown(&state, c).await {
                first_error.get_or_insert(e);
            }
        }
        for n in state.networks.values() {
            if let Some(ipam) = &n.ipam {
                if let Err(e) = self.plumber.remove_gateway(ipam).await {
                    first_error.get_or_insert(e);
                }
            }
        }
        let changes = Changes {
            del_networks: state.networks.keys().cloned().collect(),
            del_containers: state.containers.keys().cloned().collect(),
            ..Default::default()
        };
        self.store.commit(changes)?;
        state.networks.clear();
        state.containers.clear();
        if let Err(e) = self.plumber.datapath().purge() {
            first_error.get_or_insert(e);
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn members(state: &State, network_id: &str) -> Vec<(Container, Endpoint)> {
    state
        .endpoints()
        .filter(|(_, ep)| ep.network == network_id)
        .map(|(c, ep)| (c.clone(), ep.clone()))
        .collect()
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "Invalid name \"{name}\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

fn allocate_endpoint(
    state: &State,
    network: &Network,
    requested: Option<Ipv4Addr>,
    aliases: &[String],
    slot: usize,
) -> Result<Endpoint> {
    let ipam: &IpamConfig = network
        .ipam
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument(format!("network {} has no address pool", network.name)))?;
    let used = state.used_addresses(&network.id);
    let ip = match requested {
        Some(ip) => {
            ipam::check_requested(ipam, ip, &used)?;
            ip
        }
        None => ipam::next_address(ipam, &used)?,
    };
    let id = new_id();
    Ok(Endpoint {
        host_ifname: crate::endpoint::host_ifname(&id),
        id,
        network: network.id.clone(),
        ip,
        prefix: ipam.subnet.prefix(),
        gateway: ipam.gateway,
        mac: ipam::mac_for(ip),
        ifname: format!("eth{slot}"),
        aliases: aliases.to_vec(),
    })
}

/// What a failed operation has applied so far, undone in reverse order.
#[derive(Default)]
struct Undo {
    netns: Option<PathBuf>,
    endpoints: Vec<(Endpoint, u32)>,
    files: Option<ContainerFiles>,
}

impl Undo {
    async fn run(self, plumber: &Plumber) {
        if let Some(files) = self.files {
            files.remove();
        }
        for (ep, index) in self.endpoints.iter().rev() {
            let _ = plumber.remove_endpoint(ep, *index).await;
        }
        if let Some(path) = self.netns {
            let _ = plumber.remove_netns(&path);
        }
    }
}

impl Manager {
    /// Removes every user network without endpoints; returns their names.
    pub async fn prune_networks(&self) -> Result<Vec<String>> {
        let candidates: Vec<String> = {
            let state = self.state.lock().await;
            state
                .networks
                .values()
                .filter(|n| !PREDEFINED.iter().any(|(p, _)| *p == n.name))
                .filter(|n| !state.endpoints().any(|(_, ep)| ep.network == n.id))
                .map(|n| n.id.clone())
                .collect()
        };
        let mut removed = Vec::new();
        for id in candidates {
            removed.push(self.remove_network(&id).await?.name);
        }
        Ok(removed)
    }

    pub fn drop_stats(&self) -> Result<Vec<crate::datapath::DropStat>> {
        self.plumber.datapath().drop_stats()
    }
}

impl Manager {
    /// `network connect`: a new endpoint (ethN) in a running container, live.
    pub async fn connect(&self, network: &str, req: ConnectRequest) -> Result<()> {
        let mut state = self.state.lock().await;
        let network = state.network(network)?.clone();
        let mut container = state.container(&req.container)?.clone();
        match &container.mode {
            NetMode::Own => {}
            NetMode::None => return Err(Error::NoneModeExclusive),
            NetMode::Host => {
                return Err(Error::Conflict(
                    "container sharing network namespace with host cannot be connected to any other network".into(),
                ))
            }
            NetMode::Container(_) => {
                return Err(Error::Conflict(
                    "container sharing network namespace with another container cannot be connected to any other network".into(),
                ))
            }
        }
        if network.ipam.is_none() {
            return Err(Error::NoneModeExclusive);
        }
        if container.endpoints.iter().any(|ep| ep.network == network.id) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                container.name, network.name
            )));
        }
        let slot = (0..).find(|i| !container.endpoints.iter().any(|ep| ep.ifname == format!("eth{i}"))).unwrap();
        let ep = allocate_endpoint(&state, &network, req.ip, &req.aliases, slot)?;
        let netns = PathBuf::from(container.netns.clone().unwrap_or_default());
        let default_route = container.endpoints.is_empty();
        self.plumber.add_endpoint(&netns, &ep, network.index, default_route).await?;
        container.endpoints.push(ep.clone());
        let committed = ContainerFiles::new(&self.run_dir, &container.id)
            .write(&container, &state.networks)
            .and_then(|_| self.store.commit(Changes { put_containers: vec![container.clone()], ..Default::default() }));
        if let Err(e) = committed {
            let _ = self.plumber.remove_endpoint(&ep, network.index).await;
            return Err(e);
        }
        state.containers.insert(container.id.clone(), container);
        Ok(())
    }

    /// `network disconnect`: removes the container's endpoint on the network, live. When it
    /// carried the default route, the next network's gateway takes over (as in Docker).
    pub async fn disconnect(&self, network: &str, container: &str, force: bool) -> Result<()> {
        let mut state = self.state.lock().await;
        // `-f` matters for networks whose endpoint state is out of step; netd keeps them in
        // step, so it changes nothing here.
        let _ = force;
        let network = state.network(network)?.clone();
        let mut container = state.container(container)?.clone();
        let Some(pos) = container.endpoints.iter().position(|ep| ep.network == network.id) else {
            return Err(Error::Conflict(format!(
                "container {} is not connected to network {}",
                container.id, network.name
            )));
        };
        let ep = container.endpoints.remove(pos);
        self.plumber.remove_endpoint(&ep, network.index).await?;
        if pos == 0 {
            if let (Some(next), Some(netns)) = (container.endpoints.first(), &container.netns) {
                let inside = crate::netlink::Netlink::open_in(Path::new(netns))?;
                inside.add_default_route(next.gateway).await?;
            }
        }
        ContainerFiles::new(&self.run_dir, &container.id).write(&container, &state.networks)?;
        self.store.commit(Changes { put_containers: vec![container.clone()], ..Default::default() })?;
        state.containers.insert(container.id.clone(), container);
        Ok(())
    }
}
