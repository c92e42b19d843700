//! Topologies: two endpoints (server, client) on this host, each a network namespace with an
//! address, and (for the "container → outside" rows) a way out to a server in an "outside"
//! netns. Setting one up returns a value whose Drop tears it all down again.

pub mod docker;
pub mod netd;
pub mod overlay;
pub mod veth;

use std::{
    collections::BTreeMap,
    fmt,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
};

use serde::{Deserialize, Serialize};

use crate::sys::Netns;

/// What a topology stands for in the comparison; ratios are netd/docker and netd/floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The floor: the cheapest possible path (a bare veth pair).
    Floor,
    Netd,
    Docker,
    /// Docker's containers on netd's remote driver: compared with Docker on docker0.
    DockerOnNetd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A veth pair between two netns: the floor.
    Veth,
    /// Two containers on one netd network.
    Netd,
    /// Two containers on Docker's default bridge (docker0), real dockerd.
    Docker0,
    /// The same Docker containers on a `docker network create -d netd` network (netd's
    /// remote driver and eBPF datapath).
    #[serde(rename = "docker-netd")]
    DockerNetd,
    /// Across hosts, the floor: a kernel VXLAN device on each of two hosts (not in the
    /// default run: `--topologies vxlan,netd-overlay`).
    Vxlan,
    /// Two containers on one netd overlay network, on two hosts (cluster mode, etcd).
    #[serde(rename = "netd-overlay")]
    #[value(name = "netd-overlay")]
    Overlay,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Veth, Kind::Netd, Kind::Docker0, Kind::DockerNetd];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Veth => "veth",
            Kind::Netd => "netd",
            Kind::Docker0 => "docker0",
            Kind::DockerNetd => "docker-netd",
            Kind::Vxlan => "vxlan",
            Kind::Overlay => "netd-overlay",
        }
    }

    pub fn role(self) -> Role {
        match self {
            Kind::Veth => Role::Floor,
            Kind::Netd => Role::Netd,
            Kind::Docker0 => Role::Docker,
            Kind::DockerNetd => Role::DockerOnNetd,
            Kind::Vxlan => Role::Floor,
            Kind::Overlay => Role::Netd,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One side of a topology: where to run a process and the address the other side reaches it at.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// A path `nsenter --net=` accepts: /run/netns/NAME, /proc/PID/ns/net, <run-dir>/netns/NAME.
    pub netns: PathBuf,
    pub ip: Ipv4Addr,
}

/// A published port of the server container: `-p HOST_PORT:CONTAINER_PORT`, and the two
/// ways a client reaches it.
#[derive(Debug, Clone)]
pub struct PublishedPort {
    /// The port the server listens on inside the server endpoint.
    pub container_port: u16,
    /// From the "outside" netns to the host's uplink address and the host port.
    pub from_outside: Target,
    /// From the host's own netns to 127.0.0.1 and the host port (socket-LB / docker-proxy).
    pub from_host: Target,
}

/// Where a client runs and what it connects to.
#[derive(Debug, Clone)]
pub struct Target {
    pub client_netns: PathBuf,
    pub addr: SocketAddr,
}

/// "container → outside": the topology's client reaching a server in its outside netns through
/// the topology's way out — netd's `--uplink` (eBPF masquerade), dockerd's netns (iptables
/// MASQUERADE + nf_conntrack), or, for the floor, a router netns that forwards without NAT.
#[derive(Debug, Clone)]
pub struct Egress {
    /// Where the client runs (the client container, or the floor's client netns).
    pub client_netns: PathBuf,
    /// The server: the outside netns and its address ([`OUTSIDE_IP`]).
    pub server: Endpoint,
}

/// Why a topology cannot run a probe.
#[derive(Debug, Clone)]
pub enum Unsupported {
    /// The topology has no such thing (a bare veth pair publishes no ports).
    NotApplicable,
    /// It should, but setting it up failed (e.g. the daemon lacks the feature yet).
    Unavailable(String),
    /// It could, but this run does not ask for it (e.g. opt-in: too slow by default).
    Skipped(String),
}

/// Which network a new container joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `--network none`: a network namespace with only `lo`, no endpoint.
    None,
    /// The topology's network (netd: its user-defined network; docker0: Docker's default
    /// bridge): one endpoint.
    Topology,
}

impl Network {
    /// As the report names it: `none` or `NET`.
    pub fn label(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Topology => "NET",
        }
    }
}

/// Control-plane operations of a topology's daemon, driven through its CLI like a user would.
pub trait ControlPlane {
    /// Connects a spare container to a spare network, then disconnects it again: the CLI's
    /// wall time of each, (connect, disconnect).
    fn attach_once(&self) -> anyhow::Result<(std::time::Duration, std::time::Duration)>;
    /// Resident memory of the daemon process(es), in bytes.
    fn daemon_rss(&self) -> anyhow::Result<u64>;
    /// What `daemon_rss` counts, e.g. "dockerd + containerd".
    fn daemon_label(&self) -> &'static str;
    /// Whether `run_publishing` can publish ports at all.
    fn can_publish(&self) -> Result<(), Unsupported>;
    /// Wall time of the CLI's `run -d` of a fresh container publishing `ports` ports
    /// (`-p P-Q:P-Q`, none when 0), and of its `rm -f` afterwards (an error if that failed).
    fn run_publishing(&self, ports: u16) -> anyhow::Result<(std::time::Duration, anyhow::Result<std::time::Duration>)>;
    /// A container name unique to this run, ending in `suffix`.
    fn container_name(&self, suffix: &str) -> String;
    /// The name of the `i`th scale-probe endpoint (unique to this run).
    fn endpoint_name(&self, i: usize) -> String {
        self.container_name(&format!("e{i:04}"))
    }
    /// The CLI command of `run -d` of a container `name` on `network` (the docker0 topology
    /// gives it its image and a `sleep`; netd's needs no command).
    fn run_command(&self, name: &str, network: Network) -> anyhow::Result<std::process::Command>;
    /// `run -d` of one more container `name` on `network`, like a user's loop (≤ 2 minutes).
    fn run_detached(&self, name: &str, network: Network) -> anyhow::Result<()> {
        crate::sys::run_timeout(&mut self.run_command(name, network)?, std::time::Duration::from_secs(120)).map(drop)
    }
    /// One `rm -f` of all `names`, bounded by `timeout`. Runs also after an interrupt (it is
    /// clean-up too).
    fn remove_containers(&self, names: &[String], timeout: std::time::Duration) -> anyhow::Result<()>;
    /// A generous bound on creating (and on removing) one endpoint; the scale probe gives up
    /// after `30 s + N × this`.
    fn endpoint_budget(&self) -> std::time::Duration;
    /// Whether N endpoints are slow and heavy on this daemon, so that the scale probe runs
    /// here only when asked for by name (`--probes rss1000`).
    fn scale_is_opt_in(&self) -> bool {
        false
    }
}

/// First host/container port of the `run_publishing` range for `ports` ports: disjoint
/// ranges, away from the other probes' ports.
pub fn publish_base(ports: u16) -> u16 {
    match ports {
        0..=10 => 30000,
        11..=100 => 31000,
        _ => 33000,
    }
}

/// VmRSS of a process, in bytes.
pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?;
    Ok(kib * 1024)
}

pub trait Topology {
    fn kind(&self) -> Kind;
    fn server(&self) -> &Endpoint;
    fn client(&self) -> &Endpoint;
    /// The server's published port, for the published-port probes.
    fn published_port(&self) -> Result<&PublishedPort, Unsupported> {
        Err(Unsupported::NotApplicable)
    }
    /// The way out to the outside netns, for the "container → outside" probes.
    fn egress(&self) -> Result<&Egress, Unsupported> {
        Err(Unsupported::NotApplicable)
    }
    /// The daemon behind the topology, for the control-plane probes.
    fn control_plane(&self) -> Result<&dyn ControlPlane, Unsupported> {
        Err(Unsupported::NotApplicable)
    }
    /// Facts worth recording with the results (versions, addresses).
    fn info(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

/// Unique names for everything one run creates: `nb-<pid>` (netns, containers) and `nb<pid>`
/// (interface names, which must stay within 15 bytes).
#[derive(Debug, Clone)]
pub struct Names {
    pub tag: String,
    pub short: String,
}

impl Names {
    pub fn for_this_process() -> Self {
        let pid = std::process::id();
        Self { tag: format!("nb-{pid}"), short: format!("nb{pid}") }
    }

    /// Names for a second instance of something in the same run (`nb-<pid>-<v>`,
    /// `nb<pid><v>`): still the run's, for the clean-up. `v` is one byte, so that
    /// [`Self::ifname`] still fits.
    pub fn variant(&self, v: &str) -> Self {
        debug_assert_eq!(v.len(), 1);
        Self { tag: format!("{}-{v}", self.tag), short: format!("{}{v}", self.short) }
    }

    pub fn netns(&self, what: &str) -> String {
        format!("{}-{what}", self.tag)
    }

    /// Interface name `nb<pid><suffix>`; `suffix` is at most 2 bytes so that it fits IFNAMSIZ.
    pub fn ifname(&self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.short);
        debug_assert!(name.len() <= 15);
        name
    }
}

/// The uplink of a host-like topology (the netd host, Docker's netns) to its "outside" netns:
/// 198.51.100.2/24 on the host side, .1/24 outside (DESIGN §6's test uplink).
pub const HOST_UPLINK_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const OUTSIDE_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

/// Connects `host` to `outside` with a veth pair `host_if`/`outside_if`, addressed and up.
/// The outside netns gets no other route: it can answer only addresses in 198.51.100.0/24
/// (and what a topology routes back explicitly), so a container's traffic that reaches a
/// server there and gets answers was translated to the uplink address (or, for the floor,
/// routed back on purpose).
pub fn connect_uplink(host: &Netns, outside: &Netns, host_if: &str, outside_if: &str) -> anyhow::Result<()> {
    host.ip(&["link", "add", host_if, "type", "veth", "peer", "name", outside_if, "netns", &outside.name])?;
    host.ip(&["addr", "add", &format!("{HOST_UPLINK_IP}/24"), "dev", host_if])?;
    outside.ip(&["addr", "add", &format!("{OUTSIDE_IP}/24"), "dev", outside_if])?;
    host.ip(&["link", "set", host_if, "up"])?;
    outside.ip(&["link", "set", outside_if, "up"])?;
    Ok(())
}

/// The way out from `client_netns` to a server at [`OUTSIDE_IP`] in `outside`, once checked
/// to work (a short TCP_RR exchange with the bench's own server); Err says why it does not.
/// Detects rather than assumes: a daemon without egress yet gets its rows marked unavailable.
pub fn checked_egress(client_netns: PathBuf, outside: &Netns) -> Result<Egress, String> {
    let egress = Egress { client_netns, server: Endpoint { netns: outside.path(), ip: OUTSIDE_IP } };
    match crate::probe::reachable(&egress.server, &egress.client_netns) {
        Ok(()) => Ok(egress),
        Err(e) => Err(format!(
            "no TCP exchange with the outside server {OUTSIDE_IP}: {}",
            format!("{e:#}").replace('\n', " ")
        )),
    }
}
