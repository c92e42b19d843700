//! The control plane's one seam to the host: everything the manager does to namespaces,
//! links, addresses, routes, the datapath and container processes goes through [`Kernel`].
//! [`HostKernel`] is the real one (rtnetlink, netns, eBPF, cgroups and pidfds); the test-only
//! `fake::FakeKernel` keeps an in-memory host and a call log, so that the manager's Docker
//! rules and its undo paths are unit-tested without root.
use std::{
    collections::BTreeSet,
    future::Future,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    datapath::{
        DatapathEndpoint, DatapathNetwork, DropStat, FlowTables, OverlayNetwork, PublishedPort, RemoteEndpoint,
    },
    error::{Error, Result},
    host_ports::LocalPorts,
    ipam::host::HostAddressing,
    model::{Container, Endpoint, IpamConfig, Network},
    netlink::LinkCounters,
    netns,
    plumbing::Plumber,
    process::EnterArgs,
    supervisor::{CommandIo, ProcessIdentity, Supervisor},
};

#[cfg(test)]
pub mod fake;

pub trait Kernel: Send + Sync + 'static {
    // Namespaces.
    /// A new netns for a container, with `lo` up.
    fn create_netns(&self, container_name: &str) -> impl Future<Output = Result<PathBuf>> + Send;
    fn remove_netns(&self, path: &Path) -> Result<()>;
    /// Mounts the netns at `from` at `container_name`'s netns path too (a `container:`
    /// sharer keeps the netns its owner gives up).
    fn keep_netns(&self, from: &Path, container_name: &str) -> Result<PathBuf>;
    /// Whether a netns is mounted at `path`.
    fn netns_alive(&self, path: &Path) -> bool;
    /// The daemon's own netns, bind-mounted for `--network host` containers.
    fn host_netns(&self) -> Result<PathBuf>;
    fn remove_host_netns(&self) -> Result<()>;

    // Networks.
    fn add_gateway(&self, ipam: &IpamConfig) -> impl Future<Output = Result<()>> + Send;
    fn remove_gateway(&self, ipam: &IpamConfig) -> impl Future<Output = Result<()>> + Send;
    /// The host's addresses and routes, for IPAM's checks.
    fn host_addressing(&self) -> impl Future<Output = Result<HostAddressing>> + Send;

    // Endpoints.
    /// Veth pair, addresses, routes and datapath entries of one endpoint; all or nothing.
    /// `default_route`: the container's default route goes through the endpoint's gateway.
    fn add_endpoint(
        &self,
        netns: &Path,
        ep: &Endpoint,
        network: DatapathNetwork,
        default_route: bool,
    ) -> impl Future<Output = Result<DatapathEndpoint>> + Send;
    fn remove_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> impl Future<Output = Result<()>> + Send;
    /// A Docker endpoint: veth pair with both ends in the daemon's netns (the peer named
    /// `ep.ifname`, Docker moves it), host end configured, datapath entries; all or nothing.
    fn add_docker_endpoint(
        &self,
        ep: &Endpoint,
        network: DatapathNetwork,
    ) -> impl Future<Output = Result<DatapathEndpoint>> + Send;
    /// Makes an endpoint whose netns goes too (stop, rm) unreachable and its address reusable
    /// at once, and removes its veth pair in the background (see `reaper`).
    fn release_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> impl Future<Output = Result<()>> + Send;
    /// Takes an endpoint out of a running container (disconnect): unreachable and its address
    /// reusable at once, gone from the container's view of its addresses and routes; its veth
    /// is deleted in the background.
    fn detach_endpoint(
        &self,
        netns: &Path,
        ep: &Endpoint,
        network: DatapathNetwork,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Released endpoints whose veths are not removed yet.
    fn endpoints_being_removed(&self) -> usize;
    /// Starts making namespaces ahead of `run` (after recovery's sweep).
    fn prepare_netns_ahead(&self);
    /// Stops making namespaces ahead and removes the ready ones (the daemon is stopping).
    fn stop_preparing_netns(&self);
    /// How many `run`s are between their reservation and their commit now: making
    /// namespaces ahead waits while more than one is.
    fn set_runs_in_flight(&self, runs: usize);
    /// Namespaces being made ahead, or removed after use.
    fn netns_being_prepared(&self) -> usize;
    /// Waits until every released endpoint's veth is removed.
    fn removals_settled(&self) -> impl Future<Output = ()> + Send;
    /// The datapath's view of an endpoint whose veth exists, else `None`.
    fn existing_entry(
        &self,
        ep: &Endpoint,
        network: DatapathNetwork,
    ) -> impl Future<Output = Result<Option<DatapathEndpoint>>> + Send;
    fn add_host_route(&self, ep: &Endpoint, entry: &DatapathEndpoint) -> impl Future<Output = Result<()>> + Send;
    /// Points the container's default route at `gateway`; `None` removes it.
    fn set_default_route(&self, netns: &Path, gateway: Option<Ipv4Addr>) -> impl Future<Output = Result<()>> + Send;
    /// Counters of the container-side interface `ifname` in `netns` (`None`: no such link).
    fn link_counters(&self, netns: &Path, ifname: &str) -> impl Future<Output = Result<Option<LinkCounters>>> + Send;
    /// Removes netd's kernel objects that `networks` and `containers` do not account for and
    /// makes the datapath hold exactly `live`; returns every failure.
    fn sweep(
        &self,
        networks: &[Network],
        containers: &[Container],
        live: &[DatapathEndpoint],
    ) -> impl Future<Output = Vec<Error>> + Send;
    fn drop_stats(&self) -> Result<Vec<DropStat>>;

    // Published ports (docs/publishing.md).
    /// Publishes `ports` in the datapath: all or nothing.
    fn publish(&self, ports: &[PublishedPort]) -> Result<()>;
    /// Removes what `publish` added for `ports`; already gone is success.
    fn unpublish(&self, ports: &[PublishedPort]) -> Result<()>;
    /// Makes the datapath's published ports exactly `ports` (restart recovery).
    fn keep_published(&self, ports: &[PublishedPort]) -> Result<()>;
    /// The ephemeral port range of the daemon's netns and its reserved ports.
    fn local_ports(&self) -> LocalPorts;
    /// Whether a host socket of `proto` could bind `addr:port` in the daemon's netns (a bind
    /// tried and closed at once); `Err` is the reason as Go prints it.
    fn try_bind(&self, addr: Ipv4Addr, port: u16, proto: crate::ports::Proto) -> Result<(), String>;
    /// Conntrack and NAT entries against their capacity.
    fn flow_tables(&self) -> Result<FlowTables>;
    /// Unpins the whole datapath (`system reset`).
    fn purge_datapath(&self) -> Result<()>;

    // Overlay networks (cluster mode, `cluster/`).
    /// Makes the host's VXLAN device (external mode) and attaches the tunnel program to it.
    fn enable_overlay(&self) -> impl Future<Output = Result<()>> + Send;
    /// Makes the host's overlay networks (VNI → network) exactly `networks`.
    fn set_overlay_networks(&self, networks: &[OverlayNetwork]) -> Result<()>;
    /// Adds (or updates) `add` and removes `remove` among the overlay endpoints of other
    /// hosts; `full`: the datapath holds exactly `add` afterwards. Their `tunnel_ifindex` is
    /// filled in here.
    fn set_remote_endpoints(&self, add: &[RemoteEndpoint], remove: &[Ipv4Addr], full: bool) -> Result<()>;

    // Container processes (see `supervisor`).
    fn spawn(&self, container: &str, args: &EnterArgs, io: CommandIo) -> Result<ProcessIdentity>;
    fn adopt(&self, container: &str, identity: &ProcessIdentity) -> bool;
    fn is_alive(&self, container: &str) -> bool;
    fn signal(&self, container: &str, signal: i32) -> Result<()>;
    fn kill(&self, container: &str) -> impl Future<Output = Result<()>> + Send;
    /// Ends the processes of every container not in `keep`.
    fn sweep_processes(&self, keep: &BTreeSet<String>) -> impl Future<Output = Vec<Error>> + Send;
    fn remove_all_processes(&self) -> impl Future<Output = Vec<Error>> + Send;
}

/// The real host.
pub struct HostKernel {
    plumber: Plumber,
    procs: Supervisor,
    /// Poked when netd adds or removes a host address (a gateway): the egress task then
    /// re-reads the host's addresses at once instead of at its next refresh.
    addresses_changed: Arc<tokio::sync::Notify>,
    /// The VXLAN device's ifindex once [`Kernel::enable_overlay`] made it.
    tunnel: std::sync::OnceLock<u32>,
}

impl HostKernel {
    pub fn new(plumber: Plumber, procs: Supervisor, addresses_changed: Arc<tokio::sync::Notify>) -> Self {
        Self { plumber, procs, addresses_changed, tunnel: std::sync::OnceLock::new() }
    }
}

impl Kernel for HostKernel {
    async fn create_netns(&self, container_name: &str) -> Result<PathBuf> {
        self.plumber.create_netns(container_name).await
    }
    fn remove_netns(&self, path: &Path) -> Result<()> {
        self.plumber.remove_netns(path)
    }
    fn keep_netns(&self, from: &Path, container_name: &str) -> Result<PathBuf> {
        self.plumber.keep_netns(from, container_name)
    }
    fn netns_alive(&self, path: &Path) -> bool {
        netns::is_netns_mount(path)
    }
    fn host_netns(&self) -> Result<PathBuf> {
        self.plumber.host_netns()
    }
    fn remove_host_netns(&self) -> Result<()> {
        self.plumber.remove_host_netns()
    }
    async fn add_gateway(&self, ipam: &IpamConfig) -> Result<()> {
        let added = self.plumber.add_gateway(ipam).await;
        self.addresses_changed.notify_one();
        added
    }
    async fn remove_gateway(&self, ipam: &IpamConfig) -> Result<()> {
        let removed = self.plumber.remove_gateway(ipam).await;
        self.addresses_changed.notify_one();
        removed
    }
    async fn host_addressing(&self) -> Result<HostAddressing> {
        self.plumber.host_addressing().await
    }
    async fn add_endpoint(
        &self,
        netns: &Path,
        ep: &Endpoint,
        network: DatapathNetwork,
        default_route: bool,
    ) -> Result<DatapathEndpoint> {
        self.plumber.add_endpoint(netns, ep, network, default_route).await
    }
    async fn remove_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.plumber.remove_endpoint(ep, network).await
    }
    async fn add_docker_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<DatapathEndpoint> {
        self.plumber.add_docker_endpoint(ep, network).await
    }
    async fn release_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.plumber.release_endpoint(ep, network).await
    }
    async fn detach_endpoint(&self, netns: &Path, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.plumber.detach_endpoint(netns, ep, network).await
    }
    fn endpoints_being_removed(&self) -> usize {
        self.plumber.endpoints_being_removed()
    }
    fn prepare_netns_ahead(&self) {
        self.plumber.prepare_netns_ahead()
    }
    fn stop_preparing_netns(&self) {
        self.plumber.stop_preparing_netns()
    }
    fn set_runs_in_flight(&self, runs: usize) {
        self.plumber.set_runs_in_flight(runs)
    }
    fn netns_being_prepared(&self) -> usize {
        self.plumber.netns_being_prepared()
    }
    async fn removals_settled(&self) {
        self.plumber.removals_settled().await
    }
    async fn existing_entry(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<Option<DatapathEndpoint>> {
        self.plumber.existing_entry(ep, network).await
    }
    async fn add_host_route(&self, ep: &Endpoint, entry: &DatapathEndpoint) -> Result<()> {
        self.plumber.add_host_route(ep, entry).await
    }
    async fn set_default_route(&self, netns: &Path, gateway: Option<Ipv4Addr>) -> Result<()> {
        self.plumber.set_default_route(netns, gateway).await
    }
    async fn link_counters(&self, netns: &Path, ifname: &str) -> Result<Option<LinkCounters>> {
        self.plumber.link_counters(netns, ifname).await
    }
    async fn sweep(&self, networks: &[Network], containers: &[Container], live: &[DatapathEndpoint]) -> Vec<Error> {
        crate::sweep::remove_leftovers(&self.plumber, networks, containers, live).await
    }
    fn drop_stats(&self) -> Result<Vec<DropStat>> {
        self.plumber.datapath().drop_stats()
    }
    fn flow_tables(&self) -> Result<FlowTables> {
        self.plumber.datapath().flow_tables()
    }
    fn publish(&self, ports: &[PublishedPort]) -> Result<()> {
        self.plumber.datapath().publish(ports)
    }
    fn unpublish(&self, ports: &[PublishedPort]) -> Result<()> {
        self.plumber.datapath().unpublish(ports)
    }
    fn keep_published(&self, ports: &[PublishedPort]) -> Result<()> {
        self.plumber.datapath().keep_published(ports)
    }
    fn local_ports(&self) -> LocalPorts {
        LocalPorts::read()
    }
    fn try_bind(&self, addr: Ipv4Addr, port: u16, proto: crate::ports::Proto) -> Result<(), String> {
        crate::host_ports::try_bind(addr, port, proto)
    }
    fn purge_datapath(&self) -> Result<()> {
        self.plumber.datapath().purge()
    }
    async fn enable_overlay(&self) -> Result<()> {
        use crate::cluster::{VXLAN_DEVICE, VXLAN_PORT};
        let ifindex = self.plumber.host().ensure_vxlan(VXLAN_DEVICE, VXLAN_PORT).await?;
        let tunnel = crate::datapath::Tunnel { ifname: VXLAN_DEVICE.into(), ifindex };
        self.plumber.datapath().set_tunnel(Some(&tunnel))?;
        let _ = self.tunnel.set(ifindex);
        Ok(())
    }
    fn set_overlay_networks(&self, networks: &[OverlayNetwork]) -> Result<()> {
        self.plumber.datapath().set_overlay_networks(networks)
    }
    fn set_remote_endpoints(&self, add: &[RemoteEndpoint], remove: &[Ipv4Addr], full: bool) -> Result<()> {
        let ifindex =
            *self.tunnel.get().ok_or_else(|| Error::Inconsistent("no VXLAN device for overlay networks".into()))?;
        let add: Vec<RemoteEndpoint> =
            add.iter().map(|r| RemoteEndpoint { tunnel_ifindex: ifindex, ..r.clone() }).collect();
        let datapath = self.plumber.datapath();
        if full {
            return datapath.keep_remote_endpoints(&add);
        }
        for ip in remove {
            datapath.remove_remote_endpoint(*ip)?;
        }
        add.iter().try_for_each(|r| datapath.add_remote_endpoint(r))
    }
    fn spawn(&self, container: &str, args: &EnterArgs, io: CommandIo) -> Result<ProcessIdentity> {
        self.procs.spawn(container, args, io)
    }
    fn adopt(&self, container: &str, identity: &ProcessIdentity) -> bool {
        self.procs.adopt(container, identity)
    }
    fn is_alive(&self, container: &str) -> bool {
        self.procs.is_alive(container)
    }
    fn signal(&self, container: &str, signal: i32) -> Result<()> {
        self.procs.signal(container, signal)
    }
    async fn kill(&self, container: &str) -> Result<()> {
        self.procs.kill(container).await
    }
    async fn sweep_processes(&self, keep: &BTreeSet<String>) -> Vec<Error> {
        self.procs.sweep(keep).await
    }
    async fn remove_all_processes(&self) -> Vec<Error> {
        self.procs.remove_all().await
    }
}
