//! Kernel plumbing for containers: namespaces, veth pairs, addresses, routes, gateways, and the
//! datapath entries. Every step that fails undoes the steps before it.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    datapath::{Datapath, DatapathEndpoint, DatapathNetwork},
    error::{Error, Result},
    ipam::host::HostAddressing,
    model::{Endpoint, IpamConfig},
    netlink::{LabelledAdd, LinkCounters, Netlink, VethEnds},
    netns,
    netns_pool::NetnsPool,
    reaper::Reaper,
};

/// Gateway addresses live on `lo` as /32s (no dummy driver in these kernels); each subnet gets
/// an `unreachable` route so that an address without an endpoint never follows the default
/// route out of the host. Per-endpoint /32 routes win over it.
pub const LOOPBACK_INDEX: u32 = 1;
/// IFA_LABEL of the gateway addresses: marks them as netd's for the restart reconciliation.
pub const GATEWAY_LABEL: &str = "lo:netd";

pub struct Plumber {
    host: Netlink,
    netns_dir: PathBuf,
    /// The daemon's own netns, bind-mounted for `--network host` containers.
    host_netns: PathBuf,
    datapath: Arc<dyn Datapath>,
    /// Netlink sockets inside container netns (each stays bound to the netns it was opened
    /// in), reused while they are among the last used; dropped when netd removes the netns.
    inside: std::sync::Mutex<InsideSockets>,
    /// Removes the veths of released endpoints in the background.
    reaper: Reaper,
    /// Namespaces made ahead of `run`.
    netns_pool: NetnsPool,
    /// The highest host ifindex netd has seen (0: not looked up yet): the next veth's host end
    /// gets one two above it, its peer the one between.
    last_host_index: std::sync::atomic::AtomicU32,
}

/// A random locally administered unicast MAC for a host-side veth, as the kernel would pick
/// one (set explicitly, it is known without a lookup, and udev's MAC policy leaves it alone).
fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// Host-side veth name: "nd" + the first 12 characters of the endpoint id (IFNAMSIZ is 16).
pub fn host_ifname(endpoint_id: &str) -> String {
    format!("nd{}", &endpoint_id[..12])
}

/// The netlink sockets of the container netns used last. A command configures one netns in a
/// burst of requests (a run: `lo`, each endpoint, the default route); keeping every one open
/// would cost ≈80 KiB of buffers per container (docs/architecture.md, "Daemon memory") and
/// keep each netns alive after its mount is gone until the socket is freed.
#[derive(Default)]
struct InsideSockets {
    /// Most recently used last.
    open: std::collections::VecDeque<(PathBuf, Netlink)>,
}

impl InsideSockets {
    /// How many stay open.
    const KEPT: usize = 4;

    fn get(&mut self, netns: &Path) -> Option<Netlink> {
        let at = self.open.iter().position(|(path, _)| path == netns)?;
        let entry = self.open.remove(at)?;
        let nl = entry.1.clone();
        self.open.push_back(entry);
        Some(nl)
    }

    fn insert(&mut self, netns: PathBuf, nl: Netlink) {
        self.remove(&netns);
        if self.open.len() == Self::KEPT {
            self.open.pop_front();
        }
        self.open.push_back((netns, nl));
    }

    fn remove(&mut self, netns: &Path) {
        self.open.retain(|(path, _)| path != netns);
    }
}

/// A disconnected endpoint's container-side name until its veth is deleted: "nx" + the first
/// 12 characters of the endpoint id.
fn departing_ifname(endpoint_id: &str) -> String {
    format!("nx{}", &endpoint_id[..12])
}

/// Whether `name` has the shape of [`host_ifname`] (ids are lowercase hex).
pub fn is_host_ifname(name: &str) -> bool {
    name.strip_prefix("nd")
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl Plumber {
    /// `reaper_socket`: the background remover's own socket, so that its deletions (which
    /// wait for RCU callbacks inside `sendto`) never hold up `host`'s requests.
    /// `netns_ahead`: how many network namespaces are kept ready (`netns_pool.rs`).
    pub fn new(
        host: Netlink,
        reaper_socket: Netlink,
        run_dir: &Path,
        netns_ahead: usize,
        datapath: Arc<dyn Datapath>,
    ) -> Self {
        Self {
            reaper: Reaper::new(reaper_socket),
            netns_pool: NetnsPool::new(run_dir.join("netns-ready"), netns_ahead),
            last_host_index: Default::default(),
            host,
            netns_dir: run_dir.join("netns"),
            host_netns: run_dir.join("host-netns"),
            datapath,
            inside: Default::default(),
        }
    }

    /// The netlink socket of the daemon's own netns.
    pub fn host(&self) -> &Netlink {
        &self.host
    }

    /// The netlink socket inside the container netns at `netns` (opened on first use).
    fn inside(&self, netns: &Path) -> Result<Netlink> {
        let mut sockets = self.inside.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(nl) = sockets.get(netns) {
            return Ok(nl);
        }
        let nl = Netlink::open_in(netns)?;
        sockets.insert(netns.to_path_buf(), nl.clone());
        Ok(nl)
    }

    fn forget_inside(&self, netns: &Path) {
        self.inside.lock().unwrap_or_else(|e| e.into_inner()).remove(netns);
    }

    pub fn datapath(&self) -> &Arc<dyn Datapath> {
        &self.datapath
    }

    /// Where container netns are bind-mounted.
    pub fn netns_dir(&self) -> &Path {
        &self.netns_dir
    }

    /// Where the namespaces made ahead are mounted (all of them leftovers at a start).
    pub fn ready_netns_dir(&self) -> &Path {
        self.netns_pool.dir()
    }

    /// Starts making namespaces ahead of `run` (after the start-up sweep).
    pub fn prepare_netns_ahead(&self) {
        self.netns_pool.start();
    }

    /// Stops making namespaces ahead and removes the ready ones (the daemon is stopping).
    pub fn stop_preparing_netns(&self) {
        self.netns_pool.stop();
    }

    /// How many `run`s are between their reservation and their commit.
    pub fn set_runs_in_flight(&self, runs: usize) {
        self.netns_pool.set_runs_in_flight(runs);
    }

    /// Namespaces being made ahead or removed after use.
    pub fn netns_being_prepared(&self) -> usize {
        self.netns_pool.pending()
    }

    pub fn netns_path(&self, container_name: &str) -> PathBuf {
        self.netns_dir.join(container_name)
    }

    /// A new netns with `lo` up: one made ahead if one is ready.
    pub async fn create_netns(&self, container_name: &str) -> Result<PathBuf> {
        let path = self.netns_path(container_name);
        match self.netns_pool.take_into(&path) {
            Some(Ok(())) => {
                self.forget_inside(&path);
                return Ok(path);
            }
            // The ready one could not be mounted there (and is removed): make one here.
            Some(Err(e)) => tracing::warn!(netns = %path.display(), error = %e, "cannot use a netns made ahead"),
            None => {}
        }
        netns::create(&path)?;
        // A new netns at this path: a socket of an earlier one must not be reused.
        self.forget_inside(&path);
        let lo_up = async { self.inside(&path)?.set_up(1).await };
        if let Err(e) = lo_up.await {
            self.forget_inside(&path);
            let _ = netns::remove(&path);
            return Err(e);
        }
        Ok(path)
    }

    /// The netns mounted at `from`, mounted at `container_name`'s path too.
    pub fn keep_netns(&self, from: &Path, container_name: &str) -> Result<PathBuf> {
        let path = self.netns_path(container_name);
        self.forget_inside(&path);
        netns::bind_existing(from, &path)?;
        Ok(path)
    }

    pub fn remove_netns(&self, path: &Path) -> Result<()> {
        self.forget_inside(path);
        netns::remove(path)
    }

    /// The daemon's own netns at `<run-dir>/host-netns` (bind-mounted if it is not yet), the
    /// SandboxKey of `--network host` containers. It lives outside `<run-dir>/netns/` so that
    /// no container name can collide with it.
    pub fn host_netns(&self) -> Result<PathBuf> {
        netns::bind_own(&self.host_netns)?;
        Ok(self.host_netns.clone())
    }

    /// Unmounts the daemon's netns (`system reset`).
    pub fn remove_host_netns(&self) -> Result<()> {
        netns::remove(&self.host_netns)
    }

    /// Makes the host answer on the network's gateway address and fences off the subnet.
    /// The gateway already there with netd's label is netd's (a restart re-adds every
    /// gateway); without the label it is the operator's, and adopting it would let `network
    /// rm` delete it: refused. An `unreachable` (or other) route to the subnet that is not
    /// netd's stays the operator's and is never deleted (see `delete_unreachable_route`).
    pub async fn add_gateway(&self, ipam: &IpamConfig) -> Result<()> {
        match self.host.add_labelled_address(LOOPBACK_INDEX, ipam.gateway, 32, GATEWAY_LABEL).await? {
            LabelledAdd::SomeoneElses => Err(Error::GatewayIsHostAddress { gateway: ipam.gateway, dev: "lo".into() }),
            LabelledAdd::AlreadyThere => self.host.add_unreachable_route(ipam.subnet).await,
            LabelledAdd::Added => {
                if let Err(e) = self.host.add_unreachable_route(ipam.subnet).await {
                    let _ = self.remove_gateway_address(ipam).await;
                    return Err(e);
                }
                Ok(())
            }
        }
    }

    /// Removes what [`Self::add_gateway`] made, and only that: the address if it carries
    /// netd's label, the route if it has netd's protocol.
    pub async fn remove_gateway(&self, ipam: &IpamConfig) -> Result<()> {
        self.host.delete_unreachable_route(ipam.subnet).await?;
        self.remove_gateway_address(ipam).await
    }

    async fn remove_gateway_address(&self, ipam: &IpamConfig) -> Result<()> {
        self.host.delete_labelled_address(LOOPBACK_INDEX, ipam.gateway, 32, GATEWAY_LABEL).await
    }

    /// Creates the veth pair, configures both ends and registers the endpoint with the
    /// datapath. `default_route`: the container's default route goes through this endpoint's
    /// gateway (the manager picks the endpoint).
    pub async fn add_endpoint(
        &self,
        netns: &Path,
        ep: &Endpoint,
        network: DatapathNetwork,
        default_route: bool,
    ) -> Result<DatapathEndpoint> {
        self.add_veth_endpoint(netns, ep, network, Some(default_route)).await
    }

    /// A Docker endpoint (`docker_plugin`): the veth pair with both ends in the daemon's netns
    /// — Docker moves the peer (`ep.ifname`) into the container's sandbox after Join and
    /// configures it there — and the host end's forwarding, /32 route and datapath entries,
    /// none of which depend on the container's netns. All or nothing.
    pub async fn add_docker_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<DatapathEndpoint> {
        let own_netns = self.host_netns()?;
        self.add_veth_endpoint(&own_netns, ep, network, None).await
    }

    /// The veth pair with its peer in `netns`, the host end configured and registered with the
    /// datapath; the container side too when `container_side` says whether it gets the default
    /// route (`None`: someone else configures it, Docker). All or nothing.
    async fn add_veth_endpoint(
        &self,
        netns: &Path,
        ep: &Endpoint,
        network: DatapathNetwork,
        container_side: Option<bool>,
    ) -> Result<DatapathEndpoint> {
        let host_ifname = host_ifname(&ep.id);
        let host_mac = random_mac();
        let ends =
            VethEnds { host_name: &host_ifname, host_mac, peer_name: &ep.ifname, peer_mac: ep.mac, peer_netns: netns };
        let host_ifindex = self.create_veth(&ends, network.mtu).await?;
        let configured = async {
            let entry = DatapathEndpoint {
                ip: ep.ip,
                gateway: ep.gateway,
                network_index: network.index,
                internal: network.internal,
                mac: ep.mac,
                host_mac,
                host_ifname: host_ifname.clone(),
                host_ifindex,
            };
            if let Some(default_route) = container_side {
                // The peer's index is the one below the host end's (`Netlink::create_veth`).
                self.configure_container_side(netns, ep, host_ifindex - 1, default_route).await?;
            }
            // Programs first, while the host end is down: a qdisc added to a device that is up
            // deactivates it and waits for an RCU grace period, holding rtnl (every other
            // link change on the machine waits too).
            self.datapath.add_endpoint(&entry)?;
            let up = async {
                // Adding the clsact qdisc gave the device the default txqueuelen (1000): back
                // to Docker's 0, and forwarding on, before it is up (no packet meets it
                // without forwarding).
                self.host.set_txqueuelen_and_forwarding(host_ifindex, 0).await?;
                self.host.set_up(host_ifindex).await?;
                self.host.add_host_route(ep.ip, host_ifindex, ep.gateway).await
            };
            if let Err(e) = up.await {
                let _ = self.datapath.remove_endpoint(&entry);
                return Err(e);
            }
            Ok(entry)
        };
        match configured.await {
            Ok(entry) => Ok(entry),
            Err(e) => {
                // Deleting the host end removes the peer and the route with it.
                let _ = self.host.delete_link(&host_ifname).await;
                Err(e)
            }
        }
    }

    /// The veth pair of an endpoint; the host end's index one above the highest netd has seen
    /// here (the peer gets the one below it: see `Netlink::create_veth`).
    async fn create_veth(&self, ends: &VethEnds<'_>, mtu: Option<u32>) -> Result<u32> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.last_host_index.load(Relaxed) == 0 {
            self.last_host_index.fetch_max(self.host.max_link_index().await?, Relaxed);
        }
        // Taken, not just read: runs in flight side by side each get indexes of their own.
        let host_index = self.last_host_index.fetch_add(2, Relaxed) + 2;
        let index = self.host.create_veth(ends, host_index, mtu).await?;
        self.last_host_index.fetch_max(index, Relaxed);
        Ok(index)
    }

    /// The address (and default route) of the container's end, `index` in `netns`, made up.
    async fn configure_container_side(
        &self,
        netns: &Path,
        ep: &Endpoint,
        index: u32,
        default_route: bool,
    ) -> Result<()> {
        let inside = self.inside(netns)?;
        inside.add_address(index, ep.ip, ep.prefix).await?;
        inside.set_up(index).await?;
        if default_route {
            inside.add_default_route(ep.gateway).await?;
        }
        Ok(())
    }

    /// The /32 route to an existing endpoint through its host veth (already there is fine).
    pub async fn add_host_route(&self, ep: &Endpoint, entry: &DatapathEndpoint) -> Result<()> {
        self.host.add_host_route(ep.ip, entry.host_ifindex, ep.gateway).await
    }

    /// Points the container's default route at `gateway` (replacing the current one), or
    /// removes every default route of the container when `None`.
    pub async fn set_default_route(&self, netns: &Path, gateway: Option<std::net::Ipv4Addr>) -> Result<()> {
        let inside = self.inside(netns)?;
        match gateway {
            Some(gateway) => inside.replace_default_route(gateway).await,
            None => inside.delete_default_routes().await,
        }
    }

    /// The datapath's view of an endpoint that already exists in the kernel.
    pub async fn existing_entry(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<Option<DatapathEndpoint>> {
        let host_ifname = host_ifname(&ep.id);
        let Some(host_ifindex) = self.host.link_index(&host_ifname).await? else {
            return Ok(None);
        };
        Ok(Some(DatapathEndpoint {
            ip: ep.ip,
            gateway: ep.gateway,
            network_index: network.index,
            internal: network.internal,
            mac: ep.mac,
            host_mac: self.host.link_mac(host_ifindex).await?,
            host_ifname,
            host_ifindex,
        }))
    }

    /// Removes the datapath state, then the veth pair (reverse order of setup).
    pub async fn remove_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        if let Some(entry) = self.existing_entry(ep, network).await? {
            self.datapath.remove_endpoint(&entry)?;
        }
        self.host.delete_link(&host_ifname(&ep.id)).await
    }

    /// Makes the endpoint unreachable and its address reusable at once — map entries, flows
    /// and the /32 route — and leaves its veth pair (and the program filter on it) to the
    /// reaper. Only for an endpoint whose netns is going too (stop, rm): the container-side
    /// name stays taken in it until the reaper is done.
    pub async fn release_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.make_unreachable(ep, network).await?;
        self.reaper.reap(host_ifname(&ep.id));
        Ok(())
    }

    /// Takes an endpoint out of a container that keeps running (disconnect): unreachable and
    /// its address reusable at once (map entries, flows, the /32 route), its container side
    /// without addresses, down (its routes go) and renamed out of the way of the next `ethN`;
    /// the veth itself is deleted in the background (a deletion waits for RCU callbacks).
    pub async fn detach_endpoint(&self, netns: &Path, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.make_unreachable(ep, network).await?;
        let inside = self.inside(netns)?;
        if let Some(index) = inside.link_index(&ep.ifname).await? {
            inside.flush_addresses(index).await?;
            inside.set_down_and_rename(index, &departing_ifname(&ep.id)).await?;
        }
        self.reaper.delete(host_ifname(&ep.id));
        Ok(())
    }

    /// Removes the endpoint's map entries, flows and /32 route, leaving its veth as it is.
    async fn make_unreachable(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        if let Some(entry) = self.existing_entry(ep, network).await? {
            self.datapath.forget_endpoint(&entry)?;
            self.host.delete_host_route(ep.ip, entry.host_ifindex).await?;
        }
        Ok(())
    }

    /// Released endpoints whose veths are not removed yet.
    pub fn endpoints_being_removed(&self) -> usize {
        self.reaper.pending()
    }

    /// Waits until every released endpoint's veth is gone.
    pub async fn removals_settled(&self) {
        self.reaper.settled().await
    }

    /// The counters of the interface `ifname` inside the container netns at `netns`, as the
    /// container sees them (rx: received by the container), or `None` when it has no such
    /// interface.
    pub async fn link_counters(&self, netns: &Path, ifname: &str) -> Result<Option<LinkCounters>> {
        self.inside(netns)?.link_counters(ifname).await
    }

    /// The host's addresses and routes, for IPAM's checks.
    pub async fn host_addressing(&self) -> Result<HostAddressing> {
        self.host.host_addressing().await
    }
}
