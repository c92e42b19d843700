//! The API contract: every request body the daemon accepts and every response the CLI reads,
//! one Rust type per shape, used by both ends (`api.rs` serves them, `client.rs` sends and
//! reads them). Kept apart from the internal model (`model.rs`), as netavark keeps `types.rs`
//! apart from `internal_types.rs`; `views.rs` builds the views from the model.
//!
//! - Requests reject unknown fields (`deny_unknown_fields`): a misspelt or wrong-typed key is
//!   a 400 with a one-line message, never a silent default. An empty body reads as `{}`.
//! - Responses accept unknown fields, so that a CLI reads a newer daemon's answers.
//! - Views are Docker's JSON: field order is Docker's key order (serde_json's
//!   `preserve_order` keeps it when the CLI turns a view into a `Value` for `--format`).
//!   Docker's maps are `BTreeMap`s: Go sorts map keys when it writes JSON (so
//!   `NetworkSettings.Networks` is by network name, whatever the order of attachment).
//!
//! | Method and path                          | Request                    | Response             |
//! |------------------------------------------|----------------------------|----------------------|
//! | `GET /networks`                          |                            | `Vec<NetworkView>`   |
//! | `POST /networks`                         | [`CreateNetwork`]          | [`NetworkView`]      |
//! | `GET /networks/{name}`                   |                            | [`NetworkView`]      |
//! | `DELETE /networks/{name}`                |                            | [`Removed`]          |
//! | `POST /networks/prune`                   | [`Empty`]                  | `Vec<String>` (names)|
//! | `POST /networks/{name}/connect`          | [`ConnectRequest`]         | [`Empty`]            |
//! | `POST /networks/{name}/disconnect`       | [`DisconnectRequest`]      | [`Empty`]            |
//! | `GET /containers`                        |                            | `Vec<ContainerView>` |
//! | `POST /containers`                       | [`RunContainer`]           | [`ContainerView`]    |
//! | `GET /containers/{name}`                 |                            | [`ContainerView`]    |
//! | `GET /containers/{name}/netns`           |                            | [`ContainerNetns`]   |
//! | `DELETE /containers/{name}?force=BOOL`   | [`RemoveContainer`] (query)| [`Removed`]          |
//! | `POST /containers/{name}/stop`           | [`StopContainer`]          | [`ContainerView`]    |
//! | `POST /containers/{name}/start`          | [`Empty`]                  | [`ContainerView`]    |
//! | `GET /stats`                             |                            | [`Stats`]            |
//! | `POST /system/reset`                     | [`Empty`]                  | [`Empty`]            |
//!
//! Failures answer a 4xx/5xx status with an [`ErrorResponse`]. The attach socket has its own
//! line protocol (`attach.rs`).
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
};

use serde::{Deserialize, Serialize};

// ---- Requests ----

/// `POST /networks` (`network create`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateNetwork {
    pub name: String,
    /// `bridge` when absent.
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

/// `POST /containers` (`run`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunContainer {
    /// A Docker-style random name (`eager_turing`) when absent.
    pub name: Option<String>,
    /// `bridge` (default), a network name or id, `host`, `none` or `container:NAME`.
    pub network: Option<String>,
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub auto_remove: bool,
    /// `--link NAME[:ALIAS]`.
    #[serde(default)]
    pub links: Vec<String>,
    /// `--add-host HOST:IP|HOST:host-gateway`.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `--dns IP`: the container's own upstream resolvers.
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    /// `-p`/`--publish`, parsed (`crate::ports::parse_spec`): one binding per container port.
    #[serde(default)]
    pub ports: Vec<crate::ports::PortMapping>,
    /// `run` without `-d`: the command starts when the CLI passes its terminal's stdio over
    /// the attach socket (`Manager::start_attached`), not now.
    #[serde(default)]
    pub attach: bool,
    /// `--label KEY=VALUE`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-t` and `-i`, recorded for `inspect`.
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
}

/// `POST /networks/{name}/connect` (`network connect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    pub container: String,
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// `POST /networks/{name}/disconnect` (`network disconnect`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    pub container: String,
    #[serde(default)]
    pub force: bool,
}

/// The query of `DELETE /containers/{name}` (`rm`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveContainer {
    #[serde(default)]
    pub force: bool,
}

/// `POST /containers/{name}/stop`. No options yet (Docker's `-t`/`-s` would go here); clients
/// never report exit codes or pids: the daemon knows its commands' own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopContainer {}

/// `{}`: the body of requests that take no options, and the answer of those that return
/// nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

// ---- Responses ----

/// The body of every failure (Docker's shape).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub message: String,
}

/// `GET /containers/{name}/netns`: the network namespace `exec` enters — the container's
/// own, or for a `container:` sharer its target's (or the one it kept when its target went);
/// `""` while it is not running. Not in Docker's inspect, where a sharer has no SandboxKey.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetns {
    #[serde(rename = "Path")]
    pub path: String,
}

/// What `network rm` and `rm` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
}

/// `GET /stats` (`netd stats`): the datapath's drop counters, every endpoint's traffic and
/// the flow tables' fill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every (reason, hook) pair, zero or not, in hook then code order.
    pub drops: Vec<DropCount>,
    /// One per endpoint of a running container: by container name, each container's in
    /// attachment order.
    pub endpoints: Vec<EndpointCount>,
    pub conntrack: ConntrackUsage,
    pub nat: TableFill,
    /// Endpoints of stopped or removed containers whose veths the kernel is still removing in
    /// the background (unreachable already; `daemon/reaper.rs`).
    pub endpoints_being_removed: u64,
    /// Network namespaces being made ahead of `run`, or removed after use
    /// (`daemon/netns_pool.rs`); 0 when idle.
    pub netns_being_prepared: u64,
    /// What does not work on this host (e.g. host clients of published ports without a cgroup2
    /// mount). Left out of the JSON when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropCount {
    pub reason: String,
    pub code: u8,
    /// Where the packet was dropped (`endpoint_ingress`, `uplink_ingress`).
    pub hook: String,
    pub packets: u64,
    pub bytes: u64,
}

impl From<crate::datapath::DropStat> for DropCount {
    fn from(d: crate::datapath::DropStat) -> Self {
        let crate::datapath::DropStat { reason, code, hook, packets, bytes } = d;
        DropCount { reason: reason.into(), code, hook: hook.into(), packets, bytes }
    }
}

/// One endpoint's packets and bytes as its container-side interface counted them: `rx` what
/// the container received, `tx` what it sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCount {
    /// Container name.
    pub container: String,
    /// Network name.
    pub network: String,
    /// The interface inside the container (`eth0`).
    pub interface: String,
    pub ip: Ipv4Addr,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// The two conntrack tables: TCP flows and the others (UDP, ICMP).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackUsage {
    pub tcp: TableFill,
    pub other: TableFill,
}

/// Entries of one table against its capacity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFill {
    pub entries: u64,
    pub capacity: u64,
}

impl From<crate::datapath::TableUsage> for TableFill {
    fn from(t: crate::datapath::TableUsage) -> Self {
        TableFill { entries: t.entries, capacity: t.capacity }
    }
}

// ---- `network inspect` (Docker's NetworkResource) ----

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkView {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    /// RFC 3339.
    #[serde(rename = "Created")]
    pub created: String,
    #[serde(rename = "Scope")]
    pub scope: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    #[serde(rename = "Internal")]
    pub internal: bool,
    #[serde(rename = "Attachable")]
    pub attachable: bool,
    #[serde(rename = "Ingress")]
    pub ingress: bool,
    #[serde(rename = "ConfigFrom")]
    pub config_from: ConfigReference,
    #[serde(rename = "ConfigOnly")]
    pub config_only: bool,
    /// By container id.
    #[serde(rename = "Containers")]
    pub containers: BTreeMap<String, NetworkMember>,
    #[serde(rename = "Options")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "Labels")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    #[serde(rename = "Driver")]
    pub driver: String,
    /// `null` for the predefined networks, `{}` for user-defined ones.
    #[serde(rename = "Options")]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "Config")]
    pub config: Vec<IpamPool>,
}

/// Docker's `IPAMConfig`; `IPRange` appears only when set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamPool {
    #[serde(rename = "Subnet")]
    pub subnet: String,
    #[serde(rename = "IPRange", default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(rename = "Gateway")]
    pub gateway: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigReference {
    #[serde(rename = "Network")]
    pub network: String,
}

/// A container in `network inspect` (Docker's EndpointResource). Members of `host` and
/// `none` have an endpoint id and no addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkMember {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// `a.b.c.d/nn`, or empty.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

// ---- `inspect CONTAINER` (Docker 20.10's ContainerJSON, every key in its order) ----
//
// Keys for what netd does not have (image layers, storage driver, mounts, cgroup limits, …)
// are kept with the value Docker shows for a container that has none of it, so that templates
// and tools find every key; `views.rs` says which values are netd's own.

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerView {
    pub id: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    /// Docker's image id; empty: netd runs commands from the host's filesystem.
    pub image: String,
    pub resolv_conf_path: String,
    /// Empty: netd sets the hostname (UTS namespace) and writes no hostname file.
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    /// `/NAME`, as Docker writes it.
    pub name: String,
    pub restart_count: u32,
    /// The storage driver; empty: netd has none.
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    pub mounts: Vec<serde_json::Value>,
    pub config: ContainerConfig,
    pub network_settings: NetworkSettings,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    /// `running` or `exited`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: u32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    /// Go's zero time while running.
    pub finished_at: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: Option<BTreeMap<String, String>>,
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    pub name: String,
    pub maximum_retry_count: i64,
}

/// Docker's HostConfig. `null` where Docker has a nil slice, `[]` where it has an empty one
/// (as measured).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    pub log_config: LogConfig,
    /// `--network` as given (`default` without it; `container:ID`).
    pub network_mode: String,
    /// `-p` as given, by `PORT/PROTO` (`HostIp`/`HostPort` empty when not given).
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub cgroupns_mode: String,
    pub dns: Vec<IpAddr>,
    pub dns_options: Vec<String>,
    pub dns_search: Vec<String>,
    /// `--add-host` as given.
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: String,
    pub cgroup: String,
    /// Legacy links on the default bridge, `/TARGET:/NAME/ALIAS`.
    pub links: Option<Vec<String>>,
    pub oom_score_adj: i64,
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    pub shm_size: i64,
    pub runtime: String,
    pub console_size: [u32; 2],
    pub isolation: String,
    pub cpu_shares: i64,
    pub memory: i64,
    pub nano_cpus: i64,
    pub cgroup_parent: String,
    pub blkio_weight: u16,
    pub blkio_weight_device: Vec<serde_json::Value>,
    pub blkio_device_read_bps: Option<Vec<serde_json::Value>>,
    pub blkio_device_write_bps: Option<Vec<serde_json::Value>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<serde_json::Value>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<serde_json::Value>>,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub devices: Vec<serde_json::Value>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub device_requests: Option<Vec<serde_json::Value>>,
    pub kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: i64,
    pub memory_reservation: i64,
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: bool,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<serde_json::Value>>,
    pub cpu_count: i64,
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// The container ports of `-p`; absent without any (Docker's `omitempty`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// `-e` as given; `null` without any.
    pub env: Option<Vec<String>>,
    /// `null` for a container without a command (a bare netns).
    pub cmd: Option<Vec<String>>,
    /// The IMAGE argument of `run`.
    pub image: String,
    pub volumes: Option<BTreeMap<String, Empty>>,
    pub working_dir: String,
    pub entrypoint: Option<Vec<String>>,
    pub on_build: Option<Vec<String>>,
    pub labels: BTreeMap<String, String>,
}

/// Docker fills the top-level addresses from the default bridge network only; empty strings
/// and zeros otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: u8,
    /// The published ports by `PORT/PROTO`, while running (random host ports resolved).
    pub ports: BTreeMap<String, Vec<PortBinding>>,
    /// The netns path while running, or empty.
    pub sandbox_key: String,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<serde_json::Value>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<serde_json::Value>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    pub mac_address: String,
    /// By network name (Go sorts map keys).
    pub networks: BTreeMap<String, EndpointSettings>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

/// Docker's EndpointSettings; `null` where Docker has a nil slice, map or pointer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSettings {
    /// `--ip` of `run`; `{}` (or with the address) for a `network connect`.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    /// `--link` of `run` on a user-defined network, as given.
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    /// On user-defined networks: the aliases, then the short container id.
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    /// `{}` for a `network connect`.
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// Docker's EndpointIPAMConfig: `{}` when no address was asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", default, skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;

    use super::*;

    /// Serializes and reads back: the value must come back equal, and serialize to the same
    /// text (maps keep their order).
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) -> String {
        let json = serde_json::to_string(&value).unwrap();
        let back: T = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, value, "{json}");
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        json
    }

    #[test]
    fn requests_round_trip() {
        round_trip(CreateNetwork {
            name: "n".into(),
            driver: Some("bridge".into()),
            subnet: Some("10.9.0.0/16".into()),
            ip_range: Some("10.9.1.0/24".into()),
            gateway: Some("10.9.0.254".into()),
            internal: true,
            labels: [("k".to_string(), "v".to_string())].into(),
            options: [("o".to_string(), String::new())].into(),
        });
        round_trip(RunContainer {
            name: Some("c".into()),
            network: Some("container:x".into()),
            ip: Some(Ipv4Addr::new(10, 9, 0, 5)),
            aliases: vec!["a".into()],
            hostname: Some("h".into()),
            cmd: vec!["sleep".into(), "9".into()],
            image: "busybox".into(),
            env: vec!["A=1".into()],
            auto_remove: true,
            links: vec!["db:d".into()],
            add_hosts: vec!["h:1.2.3.4".into()],
            dns: vec!["10.0.0.2".parse().unwrap(), "fd00::53".parse().unwrap()],
            ports: crate::ports::parse_specs(&["127.0.0.1:8000-8001:80-81/udp", "80", "[::1]:9000-9009:90"]).unwrap(),
            attach: true,
            labels: [("role".to_string(), "web".to_string())].into(),
            tty: true,
            open_stdin: true,
        });
        round_trip(ConnectRequest {
            container: "c".into(),
            ip: Some(Ipv4Addr::new(10, 9, 0, 6)),
            aliases: vec!["b".into()],
        });
        round_trip(DisconnectRequest { container: "c".into(), force: true });
        round_trip(RemoveContainer { force: true });
        assert_eq!(round_trip(StopContainer {}), "{}");
        assert_eq!(round_trip(Empty {}), "{}");
        // The query string form of `rm`'s options, as the client sends and axum reads it.
        let query = serde_urlencoded::to_string(RemoveContainer { force: true }).unwrap();
        assert_eq!(query, "force=true");
        assert_eq!(serde_urlencoded::from_str::<RemoveContainer>(&query).unwrap(), RemoveContainer { force: true });
        assert_eq!(serde_urlencoded::from_str::<RemoveContainer>("").unwrap(), RemoveContainer { force: false });
    }

    #[test]
    fn absent_optional_fields_take_their_defaults() {
        let run: RunContainer = serde_json::from_str("{}").unwrap();
        assert_eq!(run, RunContainer::default());
        let create: CreateNetwork = serde_json::from_str(r#"{"name":"n"}"#).unwrap();
        assert_eq!(create, CreateNetwork { name: "n".into(), ..Default::default() });
    }

    #[test]
    fn requests_refuse_unknown_and_mistyped_fields() {
        let unknown = serde_json::from_str::<RunContainer>(r#"{"name":"c","auto_rm":true}"#).unwrap_err();
        assert!(unknown.to_string().starts_with("unknown field `auto_rm`, expected one of `name`"), "{unknown}");
        let mistyped = serde_json::from_str::<ConnectRequest>(r#"{"container":"c","ip":"10.0.0.300"}"#).unwrap_err();
        assert!(mistyped.to_string().contains("invalid IPv4 address syntax"), "{mistyped}");
        assert!(serde_json::from_str::<CreateNetwork>(r#"{"name":"n","internal":"yes"}"#).is_err());
        assert!(serde_json::from_str::<CreateNetwork>(r#"{"driver":"bridge"}"#).is_err(), "name is required");
        assert!(serde_json::from_str::<DisconnectRequest>(r#"{"container":"c","forse":true}"#).is_err());
        assert!(serde_json::from_str::<StopContainer>(r#"{"t":10}"#).is_err());
        assert!(serde_json::from_str::<Empty>(r#"{"x":1}"#).is_err());
        assert!(serde_urlencoded::from_str::<RemoveContainer>("forse=true").is_err());
        assert!(serde_urlencoded::from_str::<RemoveContainer>("force=yes").is_err());
    }

    #[test]
    fn responses_round_trip_and_accept_unknown_fields() {
        assert_eq!(round_trip(Removed { name: "n".into(), id: "i".into() }), r#"{"Name":"n","Id":"i"}"#);
        assert_eq!(round_trip(ErrorResponse { message: "m".into() }), r#"{"message":"m"}"#);
        let drop =
            DropCount { reason: "isolation".into(), code: 3, hook: "endpoint_ingress".into(), packets: 7, bytes: 420 };
        let endpoint = EndpointCount {
            container: "c1".into(),
            network: "n1".into(),
            interface: "eth0".into(),
            ip: Ipv4Addr::new(172, 18, 0, 2),
            rx_packets: 1,
            rx_bytes: 2,
            tx_packets: 3,
            tx_bytes: 4,
        };
        let stats = Stats {
            drops: vec![drop],
            endpoints: vec![endpoint],
            conntrack: ConntrackUsage {
                tcp: TableFill { entries: 5, capacity: 262_144 },
                other: TableFill { entries: 6, capacity: 262_144 },
            },
            nat: TableFill { entries: 7, capacity: 524_288 },
            endpoints_being_removed: 8,
            netns_being_prepared: 9,
            warnings: vec![],
        };
        // The shape other tools parse (`netd stats --format json`), key for key.
        assert_eq!(
            round_trip(stats),
            concat!(
                r#"{"drops":[{"reason":"isolation","code":3,"hook":"endpoint_ingress","packets":7,"bytes":420}],"#,
                r#""endpoints":[{"container":"c1","network":"n1","interface":"eth0","ip":"172.18.0.2","#,
                r#""rx_packets":1,"rx_bytes":2,"tx_packets":3,"tx_bytes":4}],"#,
                r#""conntrack":{"tcp":{"entries":5,"capacity":262144},"other":{"entries":6,"capacity":262144}},"#,
                r#""nat":{"entries":7,"capacity":524288},"endpoints_being_removed":8,"netns_being_prepared":9}"#
            )
        );
        let empty = r#"{"drops":[],"endpoints":[],"conntrack":{"tcp":{"entries":0,"capacity":0},"other":{"entries":0,"capacity":0}},"nat":{"entries":0,"capacity":0},"endpoints_being_removed":0,"netns_being_prepared":0}"#;
        assert_eq!(round_trip(Stats::default()), empty);
        // A field missing from the daemon's answer is an error, not a silent zero.
        assert!(serde_json::from_str::<Stats>(r#"{"drops":[],"endpoints":[],"nat":{"entries":0,"capacity":0}}"#)
            .unwrap_err()
            .to_string()
            .starts_with("missing field `conntrack`"));
        let newer: Removed = serde_json::from_str(r#"{"Name":"n","Id":"i","Warnings":[]}"#).unwrap();
        assert_eq!(newer, Removed { name: "n".into(), id: "i".into() });
    }

    #[test]
    fn views_round_trip() {
        // The exact JSON of views is pinned in views.rs; here both kinds, with every optional
        // part set, come back equal.
        let network = NetworkView {
            name: "n".into(),
            ipam: Ipam {
                config: vec![IpamPool {
                    subnet: "10.9.0.0/16".into(),
                    ip_range: Some("10.9.1.0/24".into()),
                    gateway: "10.9.0.1".into(),
                }],
                ..Default::default()
            },
            containers: [("c".to_string(), NetworkMember { name: "one".into(), ..Default::default() })].into(),
            labels: [("k".to_string(), "v".to_string())].into(),
            ..Default::default()
        };
        round_trip(network);
        let settings = EndpointSettings {
            ipam_config: Some(EndpointIpamConfig { ipv4_address: "10.9.0.5".into() }),
            links: Some(vec!["db:d".into()]),
            aliases: Some(vec!["a".into()]),
            driver_opts: Some(BTreeMap::new()),
            ..Default::default()
        };
        let container = ContainerView {
            id: "c".into(),
            args: vec!["9".into()],
            state: ContainerState { running: true, pid: 42, ..Default::default() },
            exec_ids: Some(vec!["e".into()]),
            host_config: HostConfig {
                dns: vec!["10.0.0.2".parse().unwrap()],
                extra_hosts: Some(vec!["h:1.2.3.4".into()]),
                links: Some(vec!["/a:/c/b".into()]),
                memory_swappiness: Some(60),
                ..Default::default()
            },
            graph_driver: GraphDriver { data: Some([("k".to_string(), "v".to_string())].into()), name: "g".into() },
            config: ContainerConfig {
                exposed_ports: Some([("80/tcp".to_string(), Empty {})].into()),
                env: Some(vec!["A=1".into()]),
                cmd: Some(vec!["sleep".into(), "9".into()]),
                ..Default::default()
            },
            network_settings: NetworkSettings {
                ports: [(
                    "80/tcp".to_string(),
                    vec![PortBinding { host_ip: "0.0.0.0".into(), host_port: "8080".into() }],
                )]
                .into(),
                networks: [("z".to_string(), settings), ("a".to_string(), EndpointSettings::default())]
                    .into_iter()
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        let json = round_trip(container);
        // Go writes map keys sorted, whatever the order of attachment.
        assert!(json.contains(r#""Networks":{"a":{"#), "{json}");
        assert!(json.contains(r#""ExposedPorts":{"80/tcp":{}},"Tty""#), "{json}");
        // `{}` and `null` IPAM configs read back as they were.
        let connected = EndpointSettings { ipam_config: Some(EndpointIpamConfig::default()), ..Default::default() };
        assert!(round_trip(connected).starts_with(r#"{"IPAMConfig":{},"Links":null,"#));
        // No `-p`: no ExposedPorts key at all.
        assert!(!round_trip(ContainerConfig::default()).contains("ExposedPorts"));
    }
}
