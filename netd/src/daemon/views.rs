//! Docker-shaped views for the API, built from the internal model (kept apart from it, like
//! netavark's types.rs vs internal_types.rs). The types, in Docker's key order, are in
//! `api_types.rs`; the CLI reads the same types back. Every value here was measured against
//! Docker 20.10.24 (`docs/docker-json.md`); where netd has no such thing the value is
//! the one Docker shows for a container without it, or netd's own where they differ (marked
//! "netd:").
use std::{collections::BTreeMap, path::Path};

use crate::{
    api_types::{
        ConfigReference, ContainerConfig, ContainerState, ContainerView, Empty, EndpointIpamConfig, EndpointSettings,
        GraphDriver, HostConfig, Ipam, IpamPool, LogConfig, NetworkMember, NetworkSettings, NetworkView, PortBinding,
        RestartPolicy,
    },
    container_files::ContainerFiles,
    manager::{ContainerInfo, Member, DEFAULT_BRIDGE},
    model::{format_mac, Attachment, Container, Driver, Endpoint, NetMode, Network},
};

/// Whether `n` is one of the networks that always exist (`bridge`, `host`, `none`).
fn predefined(n: &Network) -> bool {
    !n.is_user_defined()
}

/// Docker's `com.docker.network.bridge.*` options of the default bridge, with netd's values:
/// containers on it talk to each other, leave masqueraded, `-p` binds 0.0.0.0, veths keep the
/// kernel's MTU. netd: no bridge device (the gateway address is on `lo`), so no name.
fn default_bridge_options() -> BTreeMap<String, String> {
    [
        ("com.docker.network.bridge.default_bridge", "true"),
        ("com.docker.network.bridge.enable_icc", "true"),
        ("com.docker.network.bridge.enable_ip_masquerade", "true"),
        ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
        ("com.docker.network.bridge.name", ""),
        ("com.docker.network.driver.mtu", "1500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `docker network inspect` object.
pub fn network(n: &Network, members: &[Member]) -> NetworkView {
    let config = n
        .ipam
        .iter()
        .map(|i| IpamPool {
            subnet: i.subnet.to_string(),
            ip_range: i.ip_range.map(|r| r.to_string()),
            gateway: i.gateway.to_string(),
        })
        .collect();
    let containers = members
        .iter()
        .map(|m| {
            let c = &m.container;
            let entry = match &m.endpoint {
                Some(ep) => NetworkMember {
                    name: c.name.clone(),
                    endpoint_id: ep.id.clone(),
                    mac_address: format_mac(&ep.mac),
                    ipv4_address: format!("{}/{}", ep.ip, ep.prefix),
                    ipv6_address: String::new(),
                },
                None => NetworkMember {
                    name: c.name.clone(),
                    endpoint_id: c.sandbox_endpoint.clone(),
                    mac_address: String::new(),
                    ipv4_address: String::new(),
                    ipv6_address: String::new(),
                },
            };
            (c.id.clone(), entry)
        })
        .chain(docker_members(n))
        .collect();
    let mut options = n.options.clone();
    if n.driver == Driver::Bridge && n.name == DEFAULT_BRIDGE {
        options.extend(default_bridge_options());
    }
    if let Some(vni) = n.vni() {
        // Docker's overlay driver shows its VNI there.
        options.insert("com.docker.network.driver.overlay.vxlanid_list".into(), vni.to_string());
    }
    NetworkView {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: n.scope().into(),
        driver: n.driver_name().into(),
        enable_ipv6: false,
        ipam: Ipam { driver: ipam_driver(n).into(), options: (!predefined(n)).then(BTreeMap::new), config },
        internal: n.internal,
        attachable: false,
        ingress: false,
        config_from: ConfigReference { network: String::new() },
        config_only: false,
        containers,
        options,
        labels: n.labels.clone(),
    }
}

/// The endpoints Docker made on a network it owns, keyed by endpoint id: netd never learns
/// which container Docker joins them to.
fn docker_members(n: &Network) -> impl Iterator<Item = (String, NetworkMember)> + '_ {
    n.docker.iter().flat_map(|d| &d.endpoints).map(|d| {
        let ep = &d.endpoint;
        let member = NetworkMember {
            name: String::new(),
            endpoint_id: ep.id.clone(),
            mac_address: format_mac(&ep.mac),
            ipv4_address: format!("{}/{}", ep.ip, ep.prefix),
            ipv6_address: String::new(),
        };
        (ep.id.clone(), member)
    })
}

/// `netd` when netd's IpamDriver gave a Docker-owned network its pool.
fn ipam_driver(n: &Network) -> &'static str {
    match &n.docker {
        Some(d) if d.pool.is_some() => "netd",
        _ => "default",
    }
}

/// The network `run --network` put the container on (the one in `HostConfig.NetworkMode`);
/// the others came from `network connect`.
fn run_network<'a>(c: &Container, networks: &'a BTreeMap<String, Network>) -> Option<&'a Network> {
    let mode = match c.network_mode.as_str() {
        // Stores of earlier versions: the first network it was attached to.
        "" => return c.attachments().first().and_then(|a| networks.get(&a.network)),
        "default" => DEFAULT_BRIDGE,
        mode => mode,
    };
    networks.values().find(|n| n.name == mode).or_else(|| networks.values().find(|n| n.id.starts_with(mode)))
}

/// `docker inspect CONTAINER` object. A `container:NAME` container has, as in Docker, NAME's
/// files and hostname but no networks, sandbox or addresses of its own.
pub fn container(info: &ContainerInfo, run_dir: &Path) -> ContainerView {
    let c = &info.container;
    let owner = &info.owner;
    let files = ContainerFiles::new(run_dir, &owner.id);
    let own_files = ContainerFiles::new(run_dir, &c.id);
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let running = c.running();
    let sharer = matches!(c.mode, NetMode::Container(_));
    let network_name = |id: &str| info.networks.get(id).map(|n| n.name.clone()).unwrap_or_default();
    // Docker fills the top-level addresses from the default bridge network only.
    let default = owner
        .endpoints
        .iter()
        .filter(|_| !sharer)
        .find(|ep| info.networks.get(&ep.network).is_some_and(|n| n.name == DEFAULT_BRIDGE));
    let network_mode = match (&c.mode, c.network_mode.as_str()) {
        (_, mode) if !mode.is_empty() => mode.to_string(),
        (NetMode::Own, _) => {
            c.attachments().first().map(|a| network_name(&a.network)).unwrap_or_else(|| "default".into())
        }
        (NetMode::Host, _) => "host".into(),
        (NetMode::None, _) => "none".into(),
        (NetMode::Container(id), _) => format!("container:{id}"),
    };
    let on_default_bridge = c.mode == NetMode::Own && run_network(c, &info.networks).is_some_and(predefined);
    let (exit_code, finished) = match &c.stopped {
        Some(s) => (s.exit_code, s.at.clone()),
        None => (0, "0001-01-01T00:00:00Z".to_string()),
    };
    let started = if c.started.is_empty() { c.created.clone() } else { c.started.clone() };
    let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let mut exposed: BTreeMap<String, Empty> = BTreeMap::new();
    for m in &c.ports {
        exposed.insert(m.key(), Empty {});
    }
    ContainerView {
        id: c.id.clone(),
        created: c.created.clone(),
        path: c.cmd.first().cloned().unwrap_or_default(),
        args: c.cmd.iter().skip(1).cloned().collect(),
        state: ContainerState {
            status: if running { "running" } else { "exited" }.into(),
            running,
            paused: false,
            restarting: false,
            oom_killed: false,
            dead: false,
            pid: if running { c.process.as_ref().map_or(0, |p| p.pid) } else { 0 },
            exit_code,
            error: String::new(),
            started_at: started,
            finished_at: finished,
        },
        // netd: no image (commands run from the host's filesystem), no hostname file (the
        // name is set in the command's UTS namespace), no storage driver.
        image: String::new(),
        resolv_conf_path: path(files.resolv_conf()),
        hostname_path: String::new(),
        hosts_path: path(files.hosts()),
        log_path: path(own_files.log()),
        name: format!("/{}", c.name),
        restart_count: 0,
        driver: String::new(),
        platform: "linux".into(),
        mount_label: String::new(),
        process_label: String::new(),
        app_armor_profile: String::new(),
        exec_ids: None,
        host_config: HostConfig {
            binds: None,
            container_id_file: String::new(),
            // netd: the command's output is kept as written (LogPath), in no Docker log
            // driver's format.
            log_config: LogConfig { kind: String::new(), config: BTreeMap::new() },
            network_mode,
            port_bindings: port_bindings(c),
            restart_policy: RestartPolicy { name: "no".into(), maximum_retry_count: 0 },
            auto_remove: c.auto_remove,
            volume_driver: String::new(),
            volumes_from: None,
            cap_add: None,
            cap_drop: None,
            cgroupns_mode: "host".into(),
            dns: c.dns.clone(),
            dns_options: vec![],
            dns_search: vec![],
            extra_hosts: some(&c.add_hosts),
            group_add: None,
            // netd: commands share the host's IPC and PID namespaces and run as root with
            // every capability and nothing masked.
            ipc_mode: "host".into(),
            cgroup: String::new(),
            links: some(&c.links).filter(|_| on_default_bridge),
            oom_score_adj: 0,
            pid_mode: "host".into(),
            privileged: true,
            publish_all_ports: false,
            readonly_rootfs: false,
            security_opt: None,
            uts_mode: String::new(),
            userns_mode: String::new(),
            // netd: no /dev/shm of its own, no OCI runtime.
            shm_size: 0,
            runtime: String::new(),
            console_size: [0, 0],
            isolation: String::new(),
            cpu_shares: 0,
            memory: 0,
            nano_cpus: 0,
            cgroup_parent: String::new(),
            blkio_weight: 0,
            blkio_weight_device: vec![],
            blkio_device_read_bps: None,
            blkio_device_write_bps: None,
            blkio_device_read_iops: None,
            blkio_device_write_iops: None,
            cpu_period: 0,
            cpu_quota: 0,
            cpu_realtime_period: 0,
            cpu_realtime_runtime: 0,
            cpuset_cpus: String::new(),
            cpuset_mems: String::new(),
            devices: vec![],
            device_cgroup_rules: None,
            device_requests: None,
            kernel_memory: 0,
            kernel_memory_tcp: 0,
            memory_reservation: 0,
            memory_swap: 0,
            memory_swappiness: None,
            oom_kill_disable: false,
            pids_limit: None,
            ulimits: None,
            cpu_count: 0,
            cpu_percent: 0,
            io_maximum_iops: 0,
            io_maximum_bandwidth: 0,
            masked_paths: None,
            readonly_paths: None,
        },
        graph_driver: GraphDriver { data: None, name: String::new() },
        mounts: vec![],
        config: ContainerConfig {
            hostname: c.hostname.clone(),
            domainname: String::new(),
            user: String::new(),
            attach_stdin: false,
            attach_stdout: c.attached,
            attach_stderr: c.attached,
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: false,
            env: some(&c.env),
            cmd: some(&c.cmd),
            image: c.image.clone(),
            volumes: None,
            working_dir: String::new(),
            entrypoint: None,
            on_build: None,
            labels: c.labels.clone(),
        },
        network_settings: NetworkSettings {
            bridge: String::new(),
            sandbox_id: if sharer { String::new() } else { owner.id.clone() },
            hairpin_mode: false,
            link_local_ipv6_address: String::new(),
            link_local_ipv6_prefix_len: 0,
            ports: crate::ports::network_settings_ports(&c.published)
                .into_iter()
                .map(|(k, v)| {
                    (k, v.into_iter().map(|(host_ip, host_port)| PortBinding { host_ip, host_port }).collect())
                })
                .collect(),
            // netd: empty while stopped (Docker keeps the path of the netns it removed).
            sandbox_key: match (sharer, running) {
                (false, true) => owner.netns.clone().unwrap_or_default(),
                _ => String::new(),
            },
            secondary_ip_addresses: None,
            secondary_ipv6_addresses: None,
            endpoint_id: default.map(|e| e.id.clone()).unwrap_or_default(),
            gateway: default.map(|e| e.gateway.to_string()).unwrap_or_default(),
            global_ipv6_address: String::new(),
            global_ipv6_prefix_len: 0,
            ip_address: default.map(|e| e.ip.to_string()).unwrap_or_default(),
            ip_prefix_len: default.map(|e| e.prefix).unwrap_or(0),
            ipv6_gateway: String::new(),
            mac_address: default.map(|e| format_mac(&e.mac)).unwrap_or_default(),
            networks: if sharer { BTreeMap::new() } else { networks(info, c) },
        },
    }
}

/// `HostConfig.PortBindings`: the bindings as given, by `PORT/PROTO` in the order given.
fn port_bindings(c: &Container) -> BTreeMap<String, Vec<PortBinding>> {
    let mut bindings: BTreeMap<String, Vec<PortBinding>> = Default::default();
    for m in &c.ports {
        bindings.entry(m.key()).or_default().push(PortBinding {
            host_ip: m.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: m.host_port_text(),
        });
    }
    bindings
}

/// `NetworkSettings.Networks` of a container with a netns of its own: one entry per
/// attachment (with empty addresses while stopped), or the `host`/`none` network.
fn networks(info: &ContainerInfo, c: &Container) -> BTreeMap<String, EndpointSettings> {
    let find = |driver: Driver| info.networks.values().find(|n| n.driver == driver);
    let special = match c.mode {
        NetMode::Host => find(Driver::Host),
        NetMode::None => find(Driver::Null),
        _ => None,
    };
    if let Some(n) = special {
        let endpoint = if c.running() { c.sandbox_endpoint.clone() } else { String::new() };
        return [(n.name.clone(), endpoint_settings(n, c, None, None, &endpoint, false))].into_iter().collect();
    }
    let run_network = run_network(c, &info.networks).map(|n| n.id.as_str());
    c.attachments()
        .iter()
        .filter_map(|a| {
            let n = info.networks.get(&a.network)?;
            let ep = c.endpoints.iter().find(|ep| ep.network == a.network);
            let id = ep.map(|e| e.id.clone()).unwrap_or_default();
            let connected = run_network != Some(n.id.as_str());
            Some((n.name.clone(), endpoint_settings(n, c, Some(a), ep, &id, connected)))
        })
        .collect()
}

/// Docker's `EndpointSettings`. `connected`: made by `network connect`, whose requests always
/// carry an IPAM config and driver options (`{}`), where `run`'s have none (`null`).
fn endpoint_settings(
    n: &Network,
    c: &Container,
    attachment: Option<&Attachment>,
    ep: Option<&Endpoint>,
    endpoint_id: &str,
    connected: bool,
) -> EndpointSettings {
    let user_defined = !predefined(n);
    // On user-defined networks Docker adds the short id to the aliases (the names the
    // embedded DNS answers for besides the container's name).
    let mut aliases: Vec<String> = attachment.map(|a| a.aliases.clone()).unwrap_or_default();
    if user_defined {
        aliases.push(c.id[..12].to_string());
    }
    let requested_ip = attachment.and_then(|a| a.ip).map(|ip| ip.to_string());
    let ipam_config = match (requested_ip, connected) {
        (Some(ip), _) => Some(EndpointIpamConfig { ipv4_address: ip }),
        (None, true) => Some(EndpointIpamConfig::default()),
        (None, false) => None,
    };
    EndpointSettings {
        ipam_config,
        // `--link` on a user-defined network belongs to the network `run` put it on.
        links: (user_defined && !connected && !c.links.is_empty()).then(|| c.links.clone()),
        aliases: (!aliases.is_empty()).then_some(aliases),
        network_id: n.id.clone(),
        endpoint_id: endpoint_id.to_string(),
        // netd gives an `--internal` network's endpoint no default route, so no gateway
        // (Docker 20.10 gives it both).
        gateway: ep.filter(|_| !n.internal).map(|e| e.gateway.to_string()).unwrap_or_default(),
        ip_address: ep.map(|e| e.ip.to_string()).unwrap_or_default(),
        ip_prefix_len: ep.map(|e| e.prefix).unwrap_or(0),
        ipv6_gateway: String::new(),
        global_ipv6_address: String::new(),
        global_ipv6_prefix_len: 0,
        mac_address: ep.map(|e| format_mac(&e.mac)).unwrap_or_default(),
        driver_opts: connected.then(BTreeMap::new),
    }
}

#[cfg(test)]
mod tests {
    //! netd's views against documents measured on Docker 20.10.24 (`docker_20.10/`, made by
    //! `docker inspect` and `docker network inspect` of the containers and networks named in
    //! each test). The netd model of each is what `run`/`network connect` would make for the
    //! same command line, with Docker's ids, addresses and times; the view must be Docker's
    //! document key for key, in its order, once netd's documented departures
    //! ([`departures`]) are applied to it.
    use std::{collections::BTreeMap, net::Ipv4Addr};

    use serde_json::{json, Value};

    use super::*;
    use crate::{
        ipam,
        model::{IpamConfig, Stopped},
        ports::{parse_specs, Proto, Published},
    };

    const RUN_DIR: &str = "/run/netd";

    fn docker(name: &str) -> Value {
        let text = match name {
            "container_bridge_running" => include_str!("docker_20.10/container_bridge_running.json"),
            "container_connected" => include_str!("docker_20.10/container_connected.json"),
            "container_container_mode" => include_str!("docker_20.10/container_container_mode.json"),
            "container_dns_add_host" => include_str!("docker_20.10/container_dns_add_host.json"),
            "container_host" => include_str!("docker_20.10/container_host.json"),
            "container_link_default_bridge" => include_str!("docker_20.10/container_link_default_bridge.json"),
            "container_link_user_network" => include_str!("docker_20.10/container_link_user_network.json"),
            "container_none" => include_str!("docker_20.10/container_none.json"),
            "container_ports" => include_str!("docker_20.10/container_ports.json"),
            "container_static_ip" => include_str!("docker_20.10/container_static_ip.json"),
            "container_stopped" => include_str!("docker_20.10/container_stopped.json"),
            "container_user_aliases" => include_str!("docker_20.10/container_user_aliases.json"),
            "network_bridge" => include_str!("docker_20.10/network_bridge.json"),
            "network_empt" => include_str!("docker_20.10/network_empt.json"),
            "network_host" => include_str!("docker_20.10/network_host.json"),
            "network_my_net" => include_str!("docker_20.10/network_my_net.json"),
            "network_none" => include_str!("docker_20.10/network_none.json"),
            "network_sn" => include_str!("docker_20.10/network_sn.json"),
            other => panic!("no document {other}"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn str_of(v: &Value) -> String {
        v.as_str().unwrap_or_else(|| panic!("not a string: {v}")).to_string()
    }

    fn strings(v: &Value) -> Vec<String> {
        v.as_array().map(|a| a.iter().map(str_of).collect()).unwrap_or_default()
    }

    /// The netd model of a measured network.
    fn network_of(doc: &Value) -> Network {
        let driver = match doc["Driver"].as_str().unwrap() {
            "bridge" => Driver::Bridge,
            "host" => Driver::Host,
            "overlay" => Driver::Overlay,
            _ => Driver::Null,
        };
        let ipam = doc["IPAM"]["Config"].as_array().unwrap().first().map(|pool| {
            let subnet: ipnetwork::Ipv4Network = str_of(&pool["Subnet"]).parse().unwrap();
            IpamConfig {
                subnet,
                // The default bridge's is absent on a dockerd's first start: the pool's first.
                gateway: pool["Gateway"].as_str().map_or(subnet.nth(1).unwrap(), |g| g.parse().unwrap()),
                ip_range: pool["IPRange"].as_str().map(|r| r.parse().unwrap()),
                user_subnet: true,
            }
        });
        let map = |v: &Value| -> BTreeMap<String, String> {
            v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), str_of(v))).collect()
        };
        let predefined = doc["IPAM"]["Options"].is_null();
        Network {
            id: str_of(&doc["Id"]),
            name: str_of(&doc["Name"]),
            driver,
            index: 1,
            ipam,
            internal: doc["Internal"].as_bool().unwrap(),
            labels: map(&doc["Labels"]),
            // The default bridge's options are netd's own, not stored.
            options: if predefined { BTreeMap::new() } else { map(&doc["Options"]) },
            created: str_of(&doc["Created"]),
            docker: None,
            overlay: None,
        }
    }

    fn networks() -> BTreeMap<String, Network> {
        ["network_bridge", "network_host", "network_none", "network_my_net", "network_sn"]
            .into_iter()
            .map(|name| network_of(&docker(name)))
            .map(|n| (n.id.clone(), n))
            .collect()
    }

    fn by_name<'a>(networks: &'a BTreeMap<String, Network>, name: &str) -> &'a Network {
        networks.values().find(|n| n.name == name).unwrap()
    }

    /// How a container joined a network: the aliases and `--ip` given.
    struct Joined<'a> {
        network: &'a str,
        aliases: &'a [&'a str],
        ip: bool,
    }

    fn joined<'a>(network: &'a str, aliases: &'a [&'a str], ip: bool) -> Joined<'a> {
        Joined { network, aliases, ip }
    }

    /// The netd model of a measured container: what `run` makes of `network_mode`, `joined`
    /// (in order of attachment) and the other options set by the caller, with the addresses
    /// and ids Docker gave it.
    fn container_of(
        doc: &Value,
        networks: &BTreeMap<String, Network>,
        network_mode: &str,
        joined: &[Joined],
    ) -> Container {
        let id = str_of(&doc["Id"]);
        let running = doc["State"]["Running"] == true;
        let settings = &doc["NetworkSettings"]["Networks"];
        let endpoints = joined
            .iter()
            .filter(|_| running)
            .map(|j| {
                let s = &settings[j.network];
                let ip: Ipv4Addr = str_of(&s["IPAddress"]).parse().unwrap();
                Endpoint {
                    id: str_of(&s["EndpointID"]),
                    network: by_name(networks, j.network).id.clone(),
                    ip,
                    prefix: s["IPPrefixLen"].as_u64().unwrap() as u8,
                    gateway: by_name(networks, j.network).ipam.as_ref().unwrap().gateway,
                    mac: ipam::mac_for(ip),
                    ifname: "eth0".into(),
                    host_ifname: "nd000000000000".into(),
                    aliases: j.aliases.iter().map(|a| a.to_string()).collect(),
                    static_ip: j.ip,
                }
            })
            .collect();
        let stopped = (!running).then(|| Stopped {
            at: str_of(&doc["State"]["FinishedAt"]),
            exit_code: doc["State"]["ExitCode"].as_i64().unwrap() as i32,
            attachments: joined
                .iter()
                .map(|j| Attachment {
                    network: by_name(networks, j.network).id.clone(),
                    ip: None,
                    aliases: j.aliases.iter().map(|a| a.to_string()).collect(),
                })
                .collect(),
        });
        let config = &doc["Config"];
        Container {
            image: str_of(&config["Image"]),
            cmd: strings(&config["Cmd"]),
            env: strings(&config["Env"]),
            hostname: str_of(&config["Hostname"]),
            created: str_of(&doc["Created"]),
            started: str_of(&doc["State"]["StartedAt"]),
            netns: running.then(|| format!("{RUN_DIR}/netns/{}", &doc["Name"].as_str().unwrap()[1..])),
            process: running.then(|| crate::supervisor::ProcessIdentity {
                pid: doc["State"]["Pid"].as_u64().unwrap() as u32,
                start_time: 1,
                boot_id: "b".into(),
            }),
            endpoints,
            stopped,
            network_mode: network_mode.into(),
            ..Container::fixture(&id, &doc["Name"].as_str().unwrap()[1..])
        }
    }

    fn info(c: Container, networks: &BTreeMap<String, Network>) -> ContainerInfo {
        ContainerInfo { owner: c.clone(), container: c, networks: networks.clone() }
    }

    fn set(doc: &mut Value, path: &[&str], value: Value) {
        let mut at = doc;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        let last = path[path.len() - 1];
        assert!(at.get(last).is_some(), "Docker's document has no {path:?}");
        at[last] = value;
    }

    /// Docker's document with netd's documented departures (docs/docker-json.md):
    /// what netd does not have (image, storage driver, hostname file, OCI runtime, log
    /// driver, IPv6), what it does differently (commands share the host's IPC and PID
    /// namespaces as root, nothing masked), and its own paths and process ids.
    fn departures(mut doc: Value, view: &Value) -> Value {
        let own = |path: &[&str]| path.iter().fold(view, |v, k| &v[*k]).clone();
        for (path, value) in [
            (&["Image"][..], json!("")),
            (&["HostnamePath"], json!("")),
            (&["Driver"], json!("")),
            (&["GraphDriver"], json!({ "Data": null, "Name": "" })),
            (&["HostConfig", "LogConfig", "Type"], json!("")),
            (&["HostConfig", "IpcMode"], json!("host")),
            (&["HostConfig", "PidMode"], json!("host")),
            (&["HostConfig", "Privileged"], json!(true)),
            (&["HostConfig", "ShmSize"], json!(0)),
            (&["HostConfig", "Runtime"], json!("")),
            (&["HostConfig", "MaskedPaths"], json!(null)),
            (&["HostConfig", "ReadonlyPaths"], json!(null)),
            (&["ResolvConfPath"], own(&["ResolvConfPath"])),
            (&["HostsPath"], own(&["HostsPath"])),
            (&["LogPath"], own(&["LogPath"])),
        ] {
            set(&mut doc, path, value);
        }
        let running = doc["State"]["Running"] == true;
        let settings = &mut doc["NetworkSettings"];
        // netd's sandbox is the container (its id); its netns is gone once stopped.
        if settings["SandboxID"] != "" {
            settings["SandboxID"] = own(&["NetworkSettings", "SandboxID"]);
            settings["SandboxKey"] = if running { own(&["NetworkSettings", "SandboxKey"]) } else { json!("") };
        }
        // IPv4 only: no `::` bindings.
        for bindings in settings["Ports"].as_object_mut().unwrap().values_mut() {
            bindings.as_array_mut().unwrap().retain(|b| b["HostIp"] != "::");
        }
        doc
    }

    /// The view of `info` is `name`'s document, departures applied, byte for byte.
    fn assert_docker_container(name: &str, info: &ContainerInfo) {
        let view = serde_json::to_value(super::container(info, Path::new(RUN_DIR))).unwrap();
        let expected = departures(docker(name), &view);
        assert_eq!(view.to_string(), expected.to_string(), "{name}");
        // What the CLI prints: the view read back, as a Value for `--format`/inspect.
        let read: ContainerView = serde_json::from_value(view.clone()).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap().to_string(), expected.to_string(), "{name}");
    }

    #[test]
    fn a_container_on_the_default_bridge_is_dockers() {
        // run -d --name web busybox sleep 1000
        let networks = networks();
        let doc = docker("container_bridge_running");
        let c = container_of(&doc, &networks, "default", &[joined("bridge", &[], false)]);
        assert_docker_container("container_bridge_running", &info(c, &networks));
    }

    #[test]
    fn a_container_on_a_user_network_has_its_aliases_then_its_short_id() {
        // run -d --name ua --network my-net --network-alias foo --network-alias bar …
        let networks = networks();
        let doc = docker("container_user_aliases");
        let c = container_of(&doc, &networks, "my-net", &[joined("my-net", &["foo", "bar"], false)]);
        assert_docker_container("container_user_aliases", &info(c, &networks));
        assert_eq!(doc["NetworkSettings"]["Networks"]["my-net"]["Aliases"], json!(["foo", "bar", "12e2c8a85a43"]));
    }

    #[test]
    fn a_connected_network_has_empty_ipam_config_and_driver_options() {
        // run -d --name cn busybox sleep 1000; network connect --alias zz my-net cn
        let networks = networks();
        let doc = docker("container_connected");
        let joined = [joined("bridge", &[], false), joined("my-net", &["zz"], false)];
        let c = container_of(&doc, &networks, "default", &joined);
        assert_docker_container("container_connected", &info(c, &networks));
    }

    #[test]
    fn networks_are_by_name_whatever_the_order_of_attachment() {
        let networks = networks();
        let doc = docker("container_connected");
        let joined = [joined("my-net", &["zz"], false), joined("bridge", &[], false)];
        let c = container_of(&doc, &networks, "default", &joined);
        let view = serde_json::to_value(super::container(&info(c, &networks), Path::new(RUN_DIR))).unwrap();
        let names: Vec<&String> = view["NetworkSettings"]["Networks"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["bridge", "my-net"]);
        // Whichever came first, `run`'s network has null configs, the connected one `{}`.
        assert_eq!(view["NetworkSettings"]["Networks"]["bridge"]["IPAMConfig"], json!(null));
        assert_eq!(view["NetworkSettings"]["Networks"]["my-net"]["DriverOpts"], json!({}));
    }

    #[test]
    fn links_are_in_host_config_on_the_default_bridge_and_in_the_network_otherwise() {
        // run -d --name c2 --link web:alias busybox sleep 1000
        let networks = networks();
        let doc = docker("container_link_default_bridge");
        let mut c = container_of(&doc, &networks, "default", &[joined("bridge", &[], false)]);
        c.links = vec!["/web:/c2/alias".into()];
        assert_docker_container("container_link_default_bridge", &info(c, &networks));
        // run -d --name ul --network my-net --link un:db busybox sleep 1000
        let doc = docker("container_link_user_network");
        let mut c = container_of(&doc, &networks, "my-net", &[joined("my-net", &[], false)]);
        c.links = vec!["un:db".into()];
        assert_docker_container("container_link_user_network", &info(c, &networks));
    }

    #[test]
    fn published_ports_are_dockers() {
        // run -d --name pp -p 8080:80 -p 127.0.0.1::53/udp busybox sleep 1000
        let networks = networks();
        let doc = docker("container_ports");
        let mut c = container_of(&doc, &networks, "default", &[joined("bridge", &[], false)]);
        c.ports = parse_specs(&["8080:80", "127.0.0.1::53/udp"]).unwrap();
        let backend = c.endpoints[0].ip;
        c.published = vec![
            Published { host_ip: [0, 0, 0, 0].into(), host_port: 8080, container_port: 80, proto: Proto::Tcp, backend },
            Published {
                host_ip: [127, 0, 0, 1].into(),
                host_port: 32768,
                container_port: 53,
                proto: Proto::Udp,
                backend,
            },
        ];
        assert_docker_container("container_ports", &info(c, &networks));
    }

    #[test]
    fn host_none_and_container_modes_are_dockers() {
        let networks = networks();
        // run -d --name ho --network host busybox sleep 1000
        let doc = docker("container_host");
        let mut c = container_of(&doc, &networks, "host", &[]);
        c.mode = NetMode::Host;
        c.netns = Some(format!("{RUN_DIR}/host-netns"));
        c.sandbox_endpoint = str_of(&doc["NetworkSettings"]["Networks"]["host"]["EndpointID"]);
        assert_docker_container("container_host", &info(c, &networks));
        // run -d --name no --network none busybox sleep 1000
        let doc = docker("container_none");
        let mut c = container_of(&doc, &networks, "none", &[]);
        c.mode = NetMode::None;
        c.sandbox_endpoint = str_of(&doc["NetworkSettings"]["Networks"]["none"]["EndpointID"]);
        assert_docker_container("container_none", &info(c, &networks));
        // run -d --name cw --network container:web busybox sleep 1000: web's files and
        // hostname, no networks or sandbox.
        let web =
            container_of(&docker("container_bridge_running"), &networks, "default", &[joined("bridge", &[], false)]);
        let doc = docker("container_container_mode");
        let mut c = container_of(&doc, &networks, &format!("container:{}", web.id), &[]);
        c.mode = NetMode::Container(web.id.clone());
        c.netns = None;
        let info = ContainerInfo { container: c, owner: web, networks };
        assert_docker_container("container_container_mode", &info);
    }

    #[test]
    fn a_stopped_container_keeps_its_networks_without_addresses() {
        // run -d --name st busybox sleep 1000; stop st
        let networks = networks();
        let doc = docker("container_stopped");
        let c = container_of(&doc, &networks, "default", &[joined("bridge", &[], false)]);
        assert_docker_container("container_stopped", &info(c, &networks));
    }

    #[test]
    fn hostname_dns_and_extra_hosts_are_dockers() {
        // run -d --name hn --hostname myhost --add-host foo:1.2.3.4 --dns 9.9.9.9 …
        let networks = networks();
        let doc = docker("container_dns_add_host");
        let mut c = container_of(&doc, &networks, "default", &[joined("bridge", &[], false)]);
        c.add_hosts = vec!["foo:1.2.3.4".into()];
        c.dns = vec!["9.9.9.9".parse().unwrap()];
        assert_docker_container("container_dns_add_host", &info(c, &networks));
    }

    #[test]
    fn a_static_address_is_in_ipam_config() {
        // network create --subnet 10.50.0.0/16 --ip-range 10.50.1.0/24 --gateway 10.50.0.254
        //   --internal … sn; run -d --name ip --network sn --ip 10.50.0.50 …
        let networks = networks();
        let doc = docker("container_static_ip");
        let c = container_of(&doc, &networks, "sn", &[joined("sn", &[], true)]);
        let view = serde_json::to_value(super::container(&info(c, &networks), Path::new(RUN_DIR))).unwrap();
        // netd gives an internal network's endpoint no default route, hence no Gateway (Docker
        // 20.10 gives it both).
        let mut expected = departures(doc, &view);
        expected["NetworkSettings"]["Networks"]["sn"]["Gateway"] = json!("");
        assert_eq!(view.to_string(), expected.to_string());
    }

    #[test]
    fn the_command_and_attach_flags_are_in_config() {
        let networks = networks();
        let doc = docker("container_bridge_running");
        let mut c = container_of(&doc, &networks, "default", &[joined("bridge", &[], false)]);
        c.cmd = vec![];
        c.env = vec!["A=1".into(), "B".into()];
        c.attached = true;
        let view = serde_json::to_value(super::container(&info(c, &networks), Path::new(RUN_DIR))).unwrap();
        let config = &view["Config"];
        // Docker: `run` without -d attaches stdout and stderr; `-e` as given.
        assert_eq!(
            (&config["AttachStdin"], &config["AttachStdout"], &config["AttachStderr"]),
            (&json!(false), &json!(true), &json!(true))
        );
        assert_eq!(config["Env"], json!(["A=1", "B"]));
        // A netns without a command.
        assert_eq!((&config["Cmd"], &view["Path"], &view["Args"]), (&json!(null), &json!(""), &json!([])));
    }

    fn members(doc: &Value, networks: &BTreeMap<String, Network>, n: &Network) -> Vec<Member> {
        doc["Containers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, m)| {
                let container = Container {
                    sandbox_endpoint: str_of(&m["EndpointID"]),
                    ..Container::fixture(id, m["Name"].as_str().unwrap())
                };
                let endpoint = m["IPv4Address"].as_str().filter(|a| !a.is_empty()).map(|a| {
                    let (ip, prefix) = a.split_once('/').unwrap();
                    let ip: Ipv4Addr = ip.parse().unwrap();
                    Endpoint {
                        id: str_of(&m["EndpointID"]),
                        network: n.id.clone(),
                        ip,
                        prefix: prefix.parse().unwrap(),
                        gateway: networks[&n.id].ipam.as_ref().unwrap().gateway,
                        mac: ipam::mac_for(ip),
                        ifname: "eth0".into(),
                        host_ifname: "nd000000000000".into(),
                        aliases: vec![],
                        static_ip: false,
                    }
                });
                Member { container, endpoint }
            })
            .collect()
    }

    #[test]
    fn networks_are_dockers() {
        let mut all = networks();
        let empty = network_of(&docker("network_empt"));
        all.insert(empty.id.clone(), empty);
        for name in ["network_bridge", "network_host", "network_none", "network_my_net", "network_sn", "network_empt"] {
            let mut doc = docker(name);
            let n = &all[doc["Id"].as_str().unwrap()];
            let view = serde_json::to_value(super::network(n, &members(&doc, &all, n))).unwrap();
            if n.name == DEFAULT_BRIDGE {
                // netd has no bridge device. Docker omits the Gateway on a dockerd's first
                // start only (it shows it once docker0 exists).
                doc["Options"]["com.docker.network.bridge.name"] = json!("");
                doc["IPAM"]["Config"][0]["Gateway"] = json!("172.17.0.1");
            }
            assert_eq!(view.to_string(), doc.to_string(), "{name}");
            let read: NetworkView = serde_json::from_value(view).unwrap();
            assert_eq!(serde_json::to_value(read).unwrap().to_string(), doc.to_string(), "{name}");
        }
    }
}
