//! Domain types: what netd knows about networks and containers. The datapath module is the
//! only place that turns these into map entries; the API module turns them into Docker's JSON.
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

/// The name of the default bridge network, Docker's docker0 (`bridge`).
pub const DEFAULT_BRIDGE: &str = "bridge";

/// Docker's `-o com.docker.network.driver.mtu=N`: the MTU of the network's veths.
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// The MTU set in a network's `options`, read as Docker 20.10 reads it (Go's `strconv.Atoi`,
/// then `< 0` refused; docs/docker-measurements.md, "MTU option"): `Ok(None)` when unset or 0
/// (the kernel's default), Err with Docker's message. Values the kernel refuses (67, 65536)
/// pass here as in Docker, and fail when a veth is made.
pub fn mtu_option(options: &BTreeMap<String, String>) -> Result<Option<u32>, String> {
    let Some(value) = options.get(MTU_OPTION) else {
        return Ok(None);
    };
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "failed to parse {MTU_OPTION} value: {value} (strconv.Atoi: parsing {value:?}: invalid syntax)"
        ));
    }
    let Ok(mtu) = value.parse::<i64>() else {
        return Err(format!(
            "failed to parse {MTU_OPTION} value: {value} (strconv.Atoi: parsing {value:?}: value out of range)"
        ));
    };
    match mtu {
        ..0 => Err(format!("invalid MTU number: {mtu}")),
        0 => Ok(None),
        // Beyond u32 the kernel refuses it as it refuses 65536: at the veth.
        _ => Ok(Some(u32::try_from(mtu).unwrap_or(u32::MAX))),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Host,
    Null,
    /// A multi-host network shared through the cluster store (`daemon/cluster`).
    Overlay,
}

/// The MTU of overlay endpoints without an MTU option: 1500 less VXLAN's 50 bytes.
pub const OVERLAY_MTU: u32 = 1450;

/// What an overlay network has besides a bridge network's fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OverlayInfo {
    /// The VXLAN network identifier its packets carry between hosts (4097 upwards, as
    /// Docker's overlay driver).
    pub vni: u32,
}

impl Network {
    /// User-defined bridge networks: they take `--ip`, aliases, and have the embedded DNS
    /// (the default `bridge` has neither, like Docker's docker0).
    pub fn is_user_defined(&self) -> bool {
        (self.driver == Driver::Bridge && self.name != DEFAULT_BRIDGE) || self.driver == Driver::Overlay
    }

    /// The endpoints of a Docker-owned network (none for netd's own).
    pub fn docker_endpoints(&self) -> impl Iterator<Item = &DockerEndpoint> {
        self.docker.iter().flat_map(|d| &d.endpoints)
    }

    /// The MTU of the network's veths (`-o com.docker.network.driver.mtu`); `None`: the kernel's
    /// default. Checked at create: a stored value always parses.
    pub fn mtu(&self) -> Option<u32> {
        let default = (self.driver == Driver::Overlay).then_some(OVERLAY_MTU);
        mtu_option(&self.options).ok().flatten().or(default)
    }

    /// Docker's `Scope`: `global` for a network every host of the cluster shares.
    pub fn scope(&self) -> &'static str {
        match self.driver {
            Driver::Overlay => "global",
            _ => "local",
        }
    }

    /// The VNI of an overlay network.
    pub fn vni(&self) -> Option<u32> {
        self.overlay.as_ref().map(|o| o.vni)
    }

    /// The driver name users see: `netd` for the networks Docker made through netd's plugin.
    pub fn driver_name(&self) -> &'static str {
        match self.docker {
            Some(_) => "netd",
            None => self.driver.as_str(),
        }
    }
}

impl Driver {
    pub fn as_str(&self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Host => "host",
            Driver::Null => "null",
            Driver::Overlay => "overlay",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters, like Docker's.
    pub id: String,
    pub name: String,
    pub driver: Driver,
    /// Small number that identifies the network in the datapath maps.
    pub index: u32,
    /// None for the `host` and `none` networks.
    pub ipam: Option<IpamConfig>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created: String,
    /// Set for a network Docker created through netd's plugin (`docker network create -d
    /// netd`): Docker owns it, and its endpoints are Docker's (`daemon/docker_plugin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerOwned>,
    /// Set for an overlay network (`Driver::Overlay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<OverlayInfo>,
}

/// What netd keeps of a Docker-owned network: dockerd never replays its creates, so every
/// endpoint (and its published ports) must survive a restart of netd.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DockerOwned {
    /// The IPAM pool of netd's IpamDriver the network's subnet came from (`None`: Docker's own
    /// IPAM chose it).
    #[serde(default)]
    pub pool: Option<String>,
    pub endpoints: Vec<DockerEndpoint>,
}

/// A Docker endpoint: a veth pair netd made in its own netns; Docker moves the peer into the
/// container's sandbox (which netd never sees), so everything is keyed on the host end.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DockerEndpoint {
    /// `ifname` is the peer's name in netd's netns until Docker moves it (Join's `SrcName`).
    pub endpoint: Endpoint,
    /// Ports published by ProgramExternalConnectivity (none before it and after Revoke).
    #[serde(default)]
    pub published: Vec<crate::ports::Published>,
}

/// A pool handed out by netd's IpamDriver (RequestPool), kept until ReleasePool.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DockerPool {
    /// The PoolID Docker uses in later calls.
    pub id: String,
    pub pool: Ipv4Network,
    /// `--ip-range`: where addresses without a requested one come from.
    pub sub_pool: Option<Ipv4Network>,
    /// The pool was asked for with `--subnet`.
    pub user: bool,
    /// Addresses handed out (the gateway included).
    pub addresses: std::collections::BTreeSet<Ipv4Addr>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct IpamConfig {
    pub subnet: Ipv4Network,
    pub gateway: Ipv4Addr,
    /// The part of the subnet that automatic allocation draws from (`--ip-range`).
    pub ip_range: Option<Ipv4Network>,
    /// The subnet was given with `--subnet` (Docker allows `--ip` only on such networks).
    #[serde(default)]
    pub user_subnet: bool,
}

/// How a container's network namespace is provided (`--network`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// Its own netns with one endpoint per connected network.
    Own,
    /// The daemon's netns.
    Host,
    /// Its own netns with only `lo`.
    None,
    /// The netns of another container (by container id).
    Container(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub mode: NetMode,
    pub hostname: String,
    /// Live endpoints (none while stopped, and none for `host`/`none`/`container:` modes).
    pub endpoints: Vec<Endpoint>,
    /// Path of the bind-mounted netns of its own (absent for `host` and `container:` modes,
    /// and while stopped).
    pub netns: Option<String>,
    pub cmd: Vec<String>,
    /// The command's main process while it runs (started by the daemon; see `supervisor`).
    /// Stores of earlier versions had a bare `pid` here, which is ignored: a pid alone cannot
    /// prove which process it is.
    #[serde(default)]
    pub process: Option<crate::supervisor::ProcessIdentity>,
    pub created: String,
    /// The IMAGE argument of `run`, recorded for `ps`/`inspect` (netd runs commands on the
    /// host's filesystem).
    #[serde(default)]
    pub image: String,
    /// `-e KEY=VAL` for the command and for `exec`.
    #[serde(default)]
    pub env: Vec<String>,
    /// `--rm`: removed when its command exits.
    #[serde(default)]
    pub auto_remove: bool,
    /// When it was last started (RFC 3339); empty means `created`.
    #[serde(default)]
    pub started: String,
    /// Set while stopped: when, with which exit code, and the attachments `start` re-makes.
    #[serde(default)]
    pub stopped: Option<Stopped>,
    /// Endpoint id shown for the `host`/`none` attachment (Docker lists those too).
    #[serde(default)]
    pub sandbox_endpoint: String,
    /// Extra /etc/hosts lines from `--link` and `--add-host`, in the order given.
    #[serde(default)]
    pub extra_hosts: Vec<HostEntry>,
    /// `--dns`: the container's own upstream resolvers (the embedded DNS forwards to them; on
    /// the default bridge they are its resolv.conf). Empty: the daemon's upstreams.
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// `-p`: the bindings as given (Docker's `HostConfig.PortBindings`), one per container
    /// port.
    #[serde(default)]
    pub ports: Vec<crate::ports::PortMapping>,
    /// The ports published while it runs, random host ports resolved (empty while stopped:
    /// `start` picks random ones again, as Docker does).
    #[serde(default)]
    pub published: Vec<crate::ports::Published>,
    /// `--network` as given (Docker's `HostConfig.NetworkMode`): `default` without it,
    /// `container:ID` with the full id. Empty in stores of earlier versions.
    #[serde(default)]
    pub network_mode: String,
    /// `--link` as Docker shows it: `/TARGET:/NAME/ALIAS` on the default bridge
    /// (`HostConfig.Links`), as given on a user-defined network (its `EndpointSettings.Links`).
    #[serde(default)]
    pub links: Vec<String>,
    /// `--add-host` as given (Docker's `HostConfig.ExtraHosts`).
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// Made by `run` without `-d` (Docker's `Config.AttachStdout`/`AttachStderr`).
    #[serde(default)]
    pub attached: bool,
    /// `--label KEY=VALUE` (Docker's `Config.Labels`; `ps --filter label=`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-t` and `-i` as given (Docker's `Config.Tty` and `Config.OpenStdin`).
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
}

#[cfg(any(test, feature = "fuzzing"))]
impl Container {
    /// A running container of its own netns with no endpoints, for unit tests; callers set the
    /// fields their test is about.
    pub fn fixture(id: &str, name: &str) -> Self {
        Container {
            id: id.into(),
            name: name.into(),
            mode: NetMode::Own,
            hostname: id.chars().take(12).collect(),
            endpoints: vec![],
            netns: None,
            cmd: vec![],
            process: None,
            created: String::new(),
            image: String::new(),
            env: vec![],
            auto_remove: false,
            started: String::new(),
            stopped: None,
            sandbox_endpoint: String::new(),
            extra_hosts: vec![],
            dns: vec![],
            ports: vec![],
            published: vec![],
            network_mode: String::new(),
            links: vec![],
            add_hosts: vec![],
            attached: false,
            labels: BTreeMap::new(),
            tty: false,
            open_stdin: false,
        }
    }
}

/// One /etc/hosts line: an address and its names.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostEntry {
    pub ip: Ipv4Addr,
    pub names: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stopped {
    /// RFC 3339.
    pub at: String,
    pub exit_code: i32,
    pub attachments: Vec<Attachment>,
}

/// A network a stopped container goes back to on `start`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    /// Network id.
    pub network: String,
    /// The address the user asked for (`--ip`), kept across stop/start like Docker does.
    pub ip: Option<Ipv4Addr>,
    pub aliases: Vec<String>,
}

/// The order in which a container's networks compete to be its gateway: by name (libnetwork
/// sorts a sandbox's endpoints so); a network missing from `networks` last.
pub fn gateway_order<'a>(networks: &'a BTreeMap<String, Network>, network: &str) -> (bool, &'a str) {
    match networks.get(network) {
        Some(n) => (false, n.name.as_str()),
        None => (true, ""),
    }
}

impl Container {
    pub fn running(&self) -> bool {
        self.stopped.is_none()
    }

    /// Its gateway endpoint, which carries the default route and the published ports: of the
    /// endpoints on networks that are not `--internal`, the one whose network's name sorts
    /// first — libnetwork's choice, measured on Docker 20.10 (on `bridge`, connected to
    /// `front` then `back`: the route and the ports move to `back`; disconnected from it, to
    /// `bridge`). Docker gives an internal network's endpoint no gateway, so a container only
    /// on internal networks has no default route. (A network missing from `networks`, a
    /// corrupt store, counts as not internal and sorts last.)
    pub fn default_route_endpoint<'a>(&'a self, networks: &BTreeMap<String, Network>) -> Option<&'a Endpoint> {
        self.endpoints
            .iter()
            .filter(|ep| !networks.get(&ep.network).is_some_and(|n| n.internal))
            .min_by_key(|ep| gateway_order(networks, &ep.network))
    }

    /// The attachments it has (live endpoints) or will have again (stopped).
    pub fn attachments(&self) -> Vec<Attachment> {
        match &self.stopped {
            Some(s) => s.attachments.clone(),
            None => self
                .endpoints
                .iter()
                .map(|ep| Attachment {
                    network: ep.network.clone(),
                    ip: ep.static_ip.then_some(ep.ip),
                    aliases: ep.aliases.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    /// Network id.
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
    /// Interface name inside the container (eth0, eth1, ...).
    pub ifname: String,
    /// Host-side veth name.
    pub host_ifname: String,
    pub aliases: Vec<String>,
    /// The address was asked for with `--ip`.
    #[serde(default)]
    pub static_ip: bool,
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// A random 64-hex-character id, like Docker's object ids.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now in Go's `RFC3339Nano`, as Docker writes its times: UTC, the fraction without trailing
/// zeros (none at all when zero).
pub fn now_rfc3339() -> String {
    go_rfc3339_nano(chrono::Utc::now())
}

pub fn go_rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    let text = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let (fraction_start, z) = (text.len() - 11, text.len() - 1);
    let fraction = text[fraction_start + 1..z].trim_end_matches('0');
    let dot = if fraction.is_empty() { "" } else { "." };
    format!("{}{dot}{fraction}Z", &text[..fraction_start])
}

#[cfg(test)]
mod tests {

    #[test]
    fn mtu_is_read_as_docker_reads_it() {
        let read = |v: &str| mtu_option(&BTreeMap::from([(MTU_OPTION.to_string(), v.to_string())]));
        assert_eq!(mtu_option(&BTreeMap::new()), Ok(None));
        assert_eq!(read("1400"), Ok(Some(1400)));
        assert_eq!(read("+1400"), Ok(Some(1400)), "Atoi takes a sign");
        assert_eq!(read("0"), Ok(None), "0: the kernel's default");
        assert_eq!(read("-0"), Ok(None));
        assert_eq!(read("67"), Ok(Some(67)), "the kernel refuses it at the veth, not here");
        assert_eq!(read("4294967296"), Ok(Some(u32::MAX)));
        assert_eq!(read("-1"), Err("invalid MTU number: -1".into()));
        for bad in ["abc", "", " 1400", "1400 ", "14.0", "+", "0x10"] {
            let err = read(bad).unwrap_err();
            assert_eq!(
                err,
                format!("failed to parse {MTU_OPTION} value: {bad} (strconv.Atoi: parsing {bad:?}: invalid syntax)")
            );
        }
        assert!(read("99999999999999999999").unwrap_err().ends_with(": value out of range)"));
    }
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn times_are_gos_rfc3339_nano() {
        let t = |nanos| super::go_rfc3339_nano(chrono::Utc.timestamp_opt(1_796_395_759, nanos).unwrap());
        assert_eq!(t(14_910_129), "2026-12-04T14:49:19.014910129Z");
        assert_eq!(t(14_910_000), "2026-12-04T14:49:19.01491Z");
        assert_eq!(t(0), "2026-12-04T14:49:19Z");
    }
}
