//! An in-memory host for unit tests of the manager: namespaces, veths, gateways and
//! processes are sets; every call is logged; any operation can be made to fail on its n-th
//! call, so that undo paths are tested step by step.
use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Mutex,
};

use super::Kernel;
use crate::{
    datapath::{DatapathEndpoint, DatapathNetwork, DropStat, FlowTables, PublishedPort},
    error::{Error, Result},
    host_ports::LocalPorts,
    ipam::host::HostAddressing,
    model::{Container, Endpoint, IpamConfig, Network},
    netlink::LinkCounters,
    process::EnterArgs,
    supervisor::{CommandIo, ProcessIdentity},
};

/// What exists on the fake host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FakeHost {
    pub netns: BTreeSet<PathBuf>,
    /// Host veth name → (container netns, container-side name, address).
    pub veths: BTreeMap<String, (PathBuf, String, Ipv4Addr)>,
    /// What the datapath holds of each endpoint, by host veth name: (network index,
    /// internal). Written by `add_endpoint`, made exactly the live entries by `sweep`.
    pub datapath: BTreeMap<String, (u32, bool)>,
    /// Default route of each netns: the gateway.
    pub default_routes: BTreeMap<PathBuf, Ipv4Addr>,
    pub gateways: BTreeSet<Ipv4Addr>,
    /// Container id → its command's pid.
    pub processes: BTreeMap<String, u32>,
    /// The command each process runs (pid → netns and argv).
    pub commands: BTreeMap<u32, (String, Vec<String>)>,
    /// Published ports in the datapath: (host address, host port, proto) → (backend, port).
    pub published: BTreeMap<(Option<Ipv4Addr>, u16, crate::ports::Proto), (Ipv4Addr, u16)>,
    /// Host sockets bound by other processes: (address, port, proto).
    pub sockets: BTreeSet<(Ipv4Addr, u16, crate::ports::Proto)>,
}

#[derive(Default)]
struct Inner {
    host: FakeHost,
    calls: Vec<String>,
    /// Operation → calls left before it fails (0: the next call fails).
    failures: BTreeMap<&'static str, usize>,
    next_pid: u32,
    /// Counters of container-side interfaces, by host veth name (absent: all zero).
    counters: BTreeMap<String, LinkCounters>,
    /// The ephemeral range (`None`: 32768–60999 and none reserved).
    local_ports: Option<LocalPorts>,
    /// Every count of runs in flight the manager reported, in order.
    runs_in_flight: Vec<usize>,
}

pub struct FakeKernel {
    run_dir: PathBuf,
    inner: Mutex<Inner>,
}

impl FakeKernel {
    pub fn new(run_dir: &Path) -> Self {
        let inner = Inner { next_pid: 1000, ..Default::default() };
        Self { run_dir: run_dir.to_path_buf(), inner: Mutex::new(inner) }
    }

    /// Makes the call to `op` after `skip` successful ones fail (once).
    pub fn fail(&self, op: &'static str, skip: usize) {
        self.inner.lock().unwrap().failures.insert(op, skip);
    }

    pub fn host(&self) -> FakeHost {
        self.inner.lock().unwrap().host.clone()
    }

    /// Every call so far, as `op arg…`.
    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Every count of runs in flight the manager reported so far (not a kernel change: not
    /// in [`Self::calls`]).
    pub fn runs_in_flight(&self) -> Vec<usize> {
        self.inner.lock().unwrap().runs_in_flight.clone()
    }

    /// The command of a container ends by itself (the manager hears of it separately).
    pub fn exit(&self, container: &str) {
        self.inner.lock().unwrap().host.processes.remove(container);
    }

    /// A netns vanishes behind the daemon's back (a reboot, an unmount).
    pub fn lose_netns(&self, path: &Path) {
        let mut inner = self.inner.lock().unwrap();
        inner.host.netns.remove(path);
        inner.host.veths.retain(|_, (ns, _, _)| ns != path);
    }

    /// A host veth vanishes behind the daemon's back.
    pub fn lose_veth(&self, host_ifname: &str) {
        self.inner.lock().unwrap().host.veths.remove(host_ifname);
    }

    /// Sets what the container side of the veth `host_ifname` has counted.
    pub fn set_counters(&self, host_ifname: &str, counters: LinkCounters) {
        self.inner.lock().unwrap().counters.insert(host_ifname.to_string(), counters);
    }

    /// A host process binds `addr:port` (0.0.0.0: every address).
    pub fn bind_socket(&self, addr: Ipv4Addr, port: u16, proto: crate::ports::Proto) {
        self.inner.lock().unwrap().host.sockets.insert((addr, port, proto));
    }

    /// Sets the ephemeral range random host ports come from.
    pub fn set_local_ports(&self, ports: LocalPorts) {
        self.inner.lock().unwrap().local_ports = Some(ports);
    }

    /// Logs `call` and fails it if so configured.
    fn step(&self, op: &'static str, call: String) -> Result<()> {
        let mut inner = self.inner.lock().unwrap();
        inner.calls.push(call);
        match inner.failures.get_mut(op) {
            Some(0) => {
                inner.failures.remove(op);
                Err(Error::Inconsistent(format!("injected failure: {op}")))
            }
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn entry(ep: &Endpoint, network: DatapathNetwork) -> DatapathEndpoint {
        DatapathEndpoint {
            ip: ep.ip,
            gateway: ep.gateway,
            network_index: network.index,
            internal: network.internal,
            mac: ep.mac,
            host_mac: [2, 0, 0, 0, 0, 1],
            host_ifname: crate::plumbing::host_ifname(&ep.id),
            host_ifindex: 100,
        }
    }
}

impl Kernel for FakeKernel {
    async fn create_netns(&self, name: &str) -> Result<PathBuf> {
        self.step("create_netns", format!("create_netns {name}"))?;
        let path = self.run_dir.join("netns").join(name);
        self.inner.lock().unwrap().host.netns.insert(path.clone());
        Ok(path)
    }
    fn remove_netns(&self, path: &Path) -> Result<()> {
        self.step("remove_netns", format!("remove_netns {}", path.display()))?;
        let mut inner = self.inner.lock().unwrap();
        inner.host.netns.remove(path);
        inner.host.default_routes.remove(path);
        Ok(())
    }
    fn keep_netns(&self, from: &Path, name: &str) -> Result<PathBuf> {
        self.step("keep_netns", format!("keep_netns {} {name}", from.display()))?;
        let path = self.run_dir.join("netns").join(name);
        let mut inner = self.inner.lock().unwrap();
        if !inner.host.netns.contains(from) {
            return Err(crate::error::Error::Inconsistent(format!("no netns at {}", from.display())));
        }
        inner.host.netns.insert(path.clone());
        Ok(path)
    }
    fn netns_alive(&self, path: &Path) -> bool {
        path == self.run_dir.join("host-netns") || self.inner.lock().unwrap().host.netns.contains(path)
    }
    fn host_netns(&self) -> Result<PathBuf> {
        Ok(self.run_dir.join("host-netns"))
    }
    fn remove_host_netns(&self) -> Result<()> {
        self.step("remove_host_netns", "remove_host_netns".into())
    }
    async fn add_gateway(&self, ipam: &IpamConfig) -> Result<()> {
        self.step("add_gateway", format!("add_gateway {}", ipam.gateway))?;
        self.inner.lock().unwrap().host.gateways.insert(ipam.gateway);
        Ok(())
    }
    async fn remove_gateway(&self, ipam: &IpamConfig) -> Result<()> {
        self.step("remove_gateway", format!("remove_gateway {}", ipam.gateway))?;
        self.inner.lock().unwrap().host.gateways.remove(&ipam.gateway);
        Ok(())
    }
    async fn host_addressing(&self) -> Result<HostAddressing> {
        Ok(HostAddressing::default())
    }
    async fn add_endpoint(
        &self,
        netns: &Path,
        ep: &Endpoint,
        network: DatapathNetwork,
        default_route: bool,
    ) -> Result<DatapathEndpoint> {
        self.step("add_endpoint", format!("add_endpoint {} {} {}", ep.ifname, ep.ip, netns.display()))?;
        let mut inner = self.inner.lock().unwrap();
        if !inner.host.netns.contains(netns) {
            return Err(Error::Inconsistent(format!("no netns {}", netns.display())));
        }
        let entry = Self::entry(ep, network);
        inner.host.veths.insert(entry.host_ifname.clone(), (netns.to_path_buf(), ep.ifname.clone(), ep.ip));
        inner.host.datapath.insert(entry.host_ifname.clone(), (network.index, network.internal));
        if default_route {
            inner.host.default_routes.insert(netns.to_path_buf(), ep.gateway);
        }
        Ok(entry)
    }
    async fn remove_endpoint(&self, ep: &Endpoint, _network: DatapathNetwork) -> Result<()> {
        self.step("remove_endpoint", format!("remove_endpoint {} {}", ep.ifname, ep.ip))?;
        let mut inner = self.inner.lock().unwrap();
        let host_ifname = crate::plumbing::host_ifname(&ep.id);
        inner.host.datapath.remove(&host_ifname);
        if let Some((netns, _, _)) = inner.host.veths.remove(&host_ifname) {
            // The default route through the veth goes with it, as in the kernel.
            if inner.host.default_routes.get(&netns) == Some(&ep.gateway) {
                inner.host.default_routes.remove(&netns);
            }
        }
        Ok(())
    }
    async fn add_docker_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<DatapathEndpoint> {
        self.step("add_docker_endpoint", format!("add_docker_endpoint {} {}", ep.ifname, ep.ip))?;
        let mut inner = self.inner.lock().unwrap();
        let entry = Self::entry(ep, network);
        inner.host.veths.insert(entry.host_ifname.clone(), (self.run_dir.join("host-netns"), ep.ifname.clone(), ep.ip));
        inner.host.datapath.insert(entry.host_ifname.clone(), (network.index, network.internal));
        Ok(entry)
    }
    /// The fake has no background removal: released is removed.
    async fn release_endpoint(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.remove_endpoint(ep, network).await
    }
    async fn detach_endpoint(&self, _netns: &Path, ep: &Endpoint, network: DatapathNetwork) -> Result<()> {
        self.remove_endpoint(ep, network).await
    }
    fn endpoints_being_removed(&self) -> usize {
        0
    }
    /// The fake makes each netns when asked.
    fn prepare_netns_ahead(&self) {}
    fn stop_preparing_netns(&self) {}
    fn set_runs_in_flight(&self, runs: usize) {
        self.inner.lock().unwrap().runs_in_flight.push(runs);
    }
    fn netns_being_prepared(&self) -> usize {
        0
    }
    async fn removals_settled(&self) {}
    async fn existing_entry(&self, ep: &Endpoint, network: DatapathNetwork) -> Result<Option<DatapathEndpoint>> {
        let exists = self.inner.lock().unwrap().host.veths.contains_key(&crate::plumbing::host_ifname(&ep.id));
        Ok(exists.then(|| Self::entry(ep, network)))
    }
    async fn add_host_route(&self, _ep: &Endpoint, _entry: &DatapathEndpoint) -> Result<()> {
        Ok(())
    }
    async fn set_default_route(&self, netns: &Path, gateway: Option<Ipv4Addr>) -> Result<()> {
        let shown = gateway.map_or_else(|| "none".to_string(), |g| g.to_string());
        self.step("set_default_route", format!("set_default_route {} {shown}", netns.display()))?;
        let mut inner = self.inner.lock().unwrap();
        match gateway {
            Some(gateway) => inner.host.default_routes.insert(netns.to_path_buf(), gateway),
            None => inner.host.default_routes.remove(netns),
        };
        Ok(())
    }
    async fn link_counters(&self, netns: &Path, ifname: &str) -> Result<Option<LinkCounters>> {
        let inner = self.inner.lock().unwrap();
        let host_ifname =
            inner.host.veths.iter().find(|(_, (ns, name, _))| ns == netns && name == ifname).map(|(host, _)| host);
        Ok(host_ifname.map(|h| inner.counters.get(h).copied().unwrap_or_default()))
    }
    async fn sweep(&self, networks: &[Network], containers: &[Container], live: &[DatapathEndpoint]) -> Vec<Error> {
        let gateways: BTreeSet<Ipv4Addr> = networks.iter().filter_map(|n| n.ipam.as_ref().map(|i| i.gateway)).collect();
        let docker = networks.iter().flat_map(|n| n.docker_endpoints()).map(|d| &d.endpoint);
        let veths: BTreeSet<String> = containers
            .iter()
            .flat_map(|c| &c.endpoints)
            .chain(docker)
            .map(|ep| crate::plumbing::host_ifname(&ep.id))
            .collect();
        let netns: BTreeSet<PathBuf> = containers.iter().filter_map(|c| c.netns.as_ref().map(PathBuf::from)).collect();
        let mut inner = self.inner.lock().unwrap();
        inner.calls.push("sweep".into());
        inner.host.gateways.retain(|g| gateways.contains(g));
        inner.host.veths.retain(|name, _| veths.contains(name));
        inner.host.netns.retain(|p| netns.contains(p));
        // `keep_exactly`: the datapath holds the live entries, as they are now.
        inner.host.datapath = live.iter().map(|e| (e.host_ifname.clone(), (e.network_index, e.internal))).collect();
        vec![]
    }
    fn drop_stats(&self) -> Result<Vec<DropStat>> {
        Ok(vec![])
    }
    fn flow_tables(&self) -> Result<FlowTables> {
        Ok(FlowTables { host_clients: true, ..Default::default() })
    }
    fn publish(&self, ports: &[PublishedPort]) -> Result<()> {
        self.step("publish", format!("publish {}", ports.len()))?;
        let mut inner = self.inner.lock().unwrap();
        for p in ports {
            inner.host.published.insert((p.host_addr, p.host_port, p.proto), (p.backend_addr, p.backend_port));
        }
        Ok(())
    }
    fn unpublish(&self, ports: &[PublishedPort]) -> Result<()> {
        self.step("unpublish", format!("unpublish {}", ports.len()))?;
        let mut inner = self.inner.lock().unwrap();
        for p in ports {
            inner.host.published.remove(&(p.host_addr, p.host_port, p.proto));
        }
        Ok(())
    }
    fn keep_published(&self, ports: &[PublishedPort]) -> Result<()> {
        self.step("keep_published", format!("keep_published {}", ports.len()))?;
        self.inner.lock().unwrap().host.published =
            ports.iter().map(|p| ((p.host_addr, p.host_port, p.proto), (p.backend_addr, p.backend_port))).collect();
        Ok(())
    }
    fn local_ports(&self) -> LocalPorts {
        let inner = self.inner.lock().unwrap();
        inner.local_ports.clone().unwrap_or(LocalPorts { start: 32768, end: 60999, reserved: BTreeSet::new() })
    }
    fn try_bind(&self, addr: Ipv4Addr, port: u16, proto: crate::ports::Proto) -> Result<(), String> {
        let inner = self.inner.lock().unwrap();
        let taken =
            inner.host.sockets.iter().any(|&(a, p, pr)| {
                p == port && pr == proto && (a == addr || a.is_unspecified() || addr.is_unspecified())
            });
        if taken {
            Err("address already in use".into())
        } else {
            Ok(())
        }
    }
    fn purge_datapath(&self) -> Result<()> {
        self.step("purge_datapath", "purge_datapath".into())
    }
    async fn enable_overlay(&self) -> Result<()> {
        self.step("enable_overlay", "enable_overlay".into())
    }
    fn set_overlay_networks(&self, networks: &[crate::datapath::OverlayNetwork]) -> Result<()> {
        self.step("set_overlay_networks", format!("set_overlay_networks {}", networks.len()))
    }
    fn set_remote_endpoints(
        &self,
        add: &[crate::datapath::RemoteEndpoint],
        remove: &[Ipv4Addr],
        full: bool,
    ) -> Result<()> {
        self.step("set_remote_endpoints", format!("set_remote_endpoints +{} -{} full={full}", add.len(), remove.len()))
    }
    fn spawn(&self, container: &str, args: &EnterArgs, _io: CommandIo) -> Result<ProcessIdentity> {
        self.step("spawn", format!("spawn {container} in {}", args.netns))?;
        let mut inner = self.inner.lock().unwrap();
        let pid = inner.next_pid;
        inner.next_pid += 1;
        inner.host.processes.insert(container.to_string(), pid);
        inner.host.commands.insert(pid, (args.netns.clone(), args.cmd.clone()));
        Ok(ProcessIdentity { pid, start_time: u64::from(pid), boot_id: "fake".into() })
    }
    fn adopt(&self, container: &str, identity: &ProcessIdentity) -> bool {
        self.inner.lock().unwrap().host.processes.get(container) == Some(&identity.pid)
    }
    fn is_alive(&self, container: &str) -> bool {
        self.inner.lock().unwrap().host.processes.contains_key(container)
    }
    fn signal(&self, container: &str, signal: i32) -> Result<()> {
        self.step("signal", format!("signal {container} {signal}"))
    }
    async fn kill(&self, container: &str) -> Result<()> {
        self.step("kill", format!("kill {container}"))?;
        self.inner.lock().unwrap().host.processes.remove(container);
        Ok(())
    }
    async fn sweep_processes(&self, keep: &BTreeSet<String>) -> Vec<Error> {
        self.inner.lock().unwrap().host.processes.retain(|id, _| keep.contains(id));
        vec![]
    }
    async fn remove_all_processes(&self) -> Vec<Error> {
        self.inner.lock().unwrap().host.processes.clear();
        vec![]
    }
}
