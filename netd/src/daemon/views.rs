//! Docker-shaped views for the API, built from the internal model (kept apart from it, like
//! netavark's types.rs vs internal_types.rs). The types, in Docker's key order, are in
//! `api_types.rs`; the CLI reads the same types back.
use std::path::Path;

use crate::{
    api_types::{
        ConfigReference, ContainerConfig, ContainerState, ContainerView, EndpointIpamConfig, EndpointSettings,
        HostConfig, Ipam, IpamPool, NetworkMember, NetworkSettings, NetworkView, PortBinding,
    },
    container_files::ContainerFiles,
    manager::{ContainerInfo, Member, DEFAULT_BRIDGE},
    model::{format_mac, Attachment, Container, Driver, Endpoint, NetMode, Network},
};

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
        .collect();
    NetworkView {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: "local".into(),
        driver: n.driver.as_str().into(),
        enable_ipv6: false,
        ipam: Ipam { driver: "default".into(), options: Default::default(), config },
        internal: n.internal,
        attachable: false,
        ingress: false,
        config_from: ConfigReference { network: String::new() },
        config_only: false,
        containers,
        options: n.options.clone(),
        labels: n.labels.clone(),
    }
}

/// `docker inspect CONTAINER` object (the parts netd has). A `container:NAME` container shows
/// NAME's networks, addresses and files: it has no others.
pub fn container(info: &ContainerInfo, run_dir: &Path) -> ContainerView {
    let c = &info.container;
    let owner = &info.owner;
    let files = ContainerFiles::new(run_dir, &owner.id);
    let own_files = ContainerFiles::new(run_dir, &c.id);
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    let running = c.running();
    let network_name = |id: &str| info.networks.get(id).map(|n| n.name.clone()).unwrap_or_default();
    // Docker fills the top-level addresses from the default bridge network only.
    let default =
        owner.endpoints.iter().find(|ep| info.networks.get(&ep.network).is_some_and(|n| n.name == DEFAULT_BRIDGE));
    let network_mode = match &c.mode {
        NetMode::Own => c.attachments().first().map(|a| network_name(&a.network)).unwrap_or_else(|| "default".into()),
        NetMode::Host => "host".into(),
        NetMode::None => "none".into(),
        NetMode::Container(id) => format!("container:{id}"),
    };
    let (exit_code, finished) = match &c.stopped {
        Some(s) => (s.exit_code, s.at.clone()),
        None => (0, "0001-01-01T00:00:00Z".to_string()),
    };
    let started = if c.started.is_empty() { c.created.clone() } else { c.started.clone() };
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
        image: String::new(),
        resolv_conf_path: path(files.resolv_conf()),
        hosts_path: path(files.hosts()),
        log_path: path(own_files.log()),
        name: format!("/{}", c.name),
        host_config: HostConfig {
            network_mode,
            port_bindings: port_bindings(c),
            auto_remove: c.auto_remove,
            dns: c.dns.clone(),
        },
        config: ContainerConfig {
            hostname: c.hostname.clone(),
            env: c.env.clone(),
            cmd: c.cmd.clone(),
            image: c.image.clone(),
        },
        network_settings: NetworkSettings {
            bridge: String::new(),
            sandbox_id: if running { owner.id.clone() } else { String::new() },
            ports: crate::ports::network_settings_ports(&c.published)
                .into_iter()
                .map(|(k, v)| {
                    (k, v.into_iter().map(|(host_ip, host_port)| PortBinding { host_ip, host_port }).collect())
                })
                .collect(),
            sandbox_key: if running { owner.netns.clone().unwrap_or_default() } else { String::new() },
            endpoint_id: default.map(|e| e.id.clone()).unwrap_or_default(),
            gateway: default.map(|e| e.gateway.to_string()).unwrap_or_default(),
            global_ipv6_address: String::new(),
            global_ipv6_prefix_len: 0,
            ip_address: default.map(|e| e.ip.to_string()).unwrap_or_default(),
            ip_prefix_len: default.map(|e| e.prefix).unwrap_or(0),
            ipv6_gateway: String::new(),
            mac_address: default.map(|e| format_mac(&e.mac)).unwrap_or_default(),
            networks: networks(info, owner),
        },
    }
}

/// `HostConfig.PortBindings`: the bindings as given, by `PORT/PROTO` in the order given.
fn port_bindings(c: &Container) -> std::collections::BTreeMap<String, Vec<PortBinding>> {
    let mut bindings: std::collections::BTreeMap<String, Vec<PortBinding>> = Default::default();
    for m in &c.ports {
        bindings.entry(m.key()).or_default().push(PortBinding {
            host_ip: m.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: m.host_port_text(),
        });
    }
    bindings
}

/// `NetworkSettings.Networks`: one entry per attachment (with empty addresses while
/// stopped), or the `host`/`none` network.
fn networks(info: &ContainerInfo, owner: &Container) -> indexmap::IndexMap<String, EndpointSettings> {
    let find = |driver: Driver| info.networks.values().find(|n| n.driver == driver);
    let special = match owner.mode {
        NetMode::Host => find(Driver::Host),
        NetMode::None => find(Driver::Null),
        _ => None,
    };
    if let Some(n) = special {
        let endpoint = if owner.running() { owner.sandbox_endpoint.clone() } else { String::new() };
        return [(n.name.clone(), endpoint_settings(n, owner, None, None, &endpoint))].into_iter().collect();
    }
    owner
        .attachments()
        .iter()
        .filter_map(|a| {
            let n = info.networks.get(&a.network)?;
            let ep = owner.endpoints.iter().find(|ep| ep.network == a.network);
            let id = ep.map(|e| e.id.clone()).unwrap_or_default();
            Some((n.name.clone(), endpoint_settings(n, owner, Some(a), ep, &id)))
        })
        .collect()
}

/// Docker's `EndpointSettings`.
fn endpoint_settings(
    n: &Network,
    c: &Container,
    attachment: Option<&Attachment>,
    ep: Option<&Endpoint>,
    endpoint_id: &str,
) -> EndpointSettings {
    let user_defined = n.driver == Driver::Bridge && n.name != DEFAULT_BRIDGE;
    let aliases: Vec<String> = attachment.map(|a| a.aliases.clone()).unwrap_or_default();
    let dns_names = (user_defined && ep.is_some()).then(|| {
        let mut names = vec![c.name.clone(), c.id[..12].to_string()];
        names.extend(aliases.iter().cloned());
        names
    });
    EndpointSettings {
        ipam_config: attachment.and_then(|a| a.ip).map(|ip| EndpointIpamConfig { ipv4_address: ip.to_string() }),
        links: None,
        aliases: (!aliases.is_empty()).then_some(aliases),
        mac_address: ep.map(|e| format_mac(&e.mac)).unwrap_or_default(),
        driver_opts: None,
        network_id: n.id.clone(),
        endpoint_id: endpoint_id.to_string(),
        // Docker gives an internal network's endpoint no gateway (`network inspect` still
        // shows the pool's).
        gateway: ep.filter(|_| !n.internal).map(|e| e.gateway.to_string()).unwrap_or_default(),
        ip_address: ep.map(|e| e.ip.to_string()).unwrap_or_default(),
        ip_prefix_len: ep.map(|e| e.prefix).unwrap_or(0),
        ipv6_gateway: String::new(),
        global_ipv6_address: String::new(),
        global_ipv6_prefix_len: 0,
        dns_names,
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, net::Ipv4Addr};

    use super::*;
    use crate::{ipam, model::IpamConfig};

    fn json(view: impl serde::Serialize) -> String {
        serde_json::to_string(&view).unwrap()
    }

    fn sample(ip_range: Option<&str>) -> Network {
        Network {
            id: "ab".repeat(32),
            name: "my-net".into(),
            driver: Driver::Bridge,
            index: 4,
            ipam: Some(IpamConfig {
                subnet: "172.18.0.0/16".parse().unwrap(),
                gateway: Ipv4Addr::new(172, 18, 0, 1),
                ip_range: ip_range.map(|r| r.parse().unwrap()),
                user_subnet: false,
            }),
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: "2022-08-02T09:05:20.250288712Z".into(),
        }
    }

    fn member(n: &Network) -> Member {
        let ip = Ipv4Addr::new(172, 18, 0, 2);
        let container = Container { image: "busybox".into(), ..Container::fixture(&"cd".repeat(32), "one") };
        let endpoint = Endpoint {
            id: "ef".repeat(32),
            network: n.id.clone(),
            ip,
            prefix: 16,
            gateway: Ipv4Addr::new(172, 18, 0, 1),
            mac: ipam::mac_for(ip),
            ifname: "eth0".into(),
            host_ifname: "ndefefefefefef".into(),
            aliases: vec![],
            static_ip: false,
        };
        Member { container, endpoint: Some(endpoint) }
    }

    fn bridge(id: &str, name: &str, subnet: &str) -> Network {
        let subnet: ipnetwork::Ipv4Network = subnet.parse().unwrap();
        let gateway = subnet.nth(1).unwrap();
        Network {
            id: id.repeat(32),
            name: name.into(),
            ipam: Some(IpamConfig { subnet, gateway, ip_range: None, user_subnet: true }),
            ..sample(None)
        }
    }

    fn endpoint(network: &Network, ip: [u8; 4], aliases: &[&str], static_ip: bool) -> Endpoint {
        let ipam = network.ipam.as_ref().unwrap();
        let ip = Ipv4Addr::from(ip);
        Endpoint {
            id: format!("{:0>64}", ip.octets()[3]),
            network: network.id.clone(),
            ip,
            prefix: ipam.subnet.prefix(),
            gateway: ipam.gateway,
            mac: ipam::mac_for(ip),
            ifname: "eth0".into(),
            host_ifname: "nd000000000000".into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            static_ip,
        }
    }

    /// The views of a running container on the default bridge and a user network (with an
    /// alias and `--ip`), of a stopped one, and of a `--network host` one, exactly.
    fn containers() -> Vec<(ContainerInfo, &'static str)> {
        let default = bridge("01", DEFAULT_BRIDGE, "172.17.0.0/16");
        let user = bridge("02", "my-net", "172.18.0.0/16");
        let host =
            Network { id: "03".repeat(32), name: "host".into(), driver: Driver::Host, ipam: None, ..sample(None) };
        let networks: BTreeMap<String, Network> =
            [&default, &user, &host].into_iter().map(|n| (n.id.clone(), n.clone())).collect();
        let running = Container {
            image: "busybox".into(),
            cmd: vec!["sleep".into(), "600".into()],
            env: vec!["A=1".into()],
            netns: Some("/run/netd/netns/one".into()),
            process: Some(crate::supervisor::ProcessIdentity { pid: 4242, start_time: 1, boot_id: "b".into() }),
            created: "2024-01-02T03:04:05.000000006Z".into(),
            started: "2024-01-02T03:04:06.000000007Z".into(),
            endpoints: vec![
                endpoint(&default, [172, 17, 0, 2], &[], false),
                endpoint(&user, [172, 18, 0, 9], &["db"], true),
            ],
            dns: vec!["10.0.0.2".parse().unwrap()],
            ..Container::fixture(&"cd".repeat(32), "one")
        };
        let stopped = Container {
            stopped: Some(crate::model::Stopped {
                at: "2024-01-02T04:00:00.000000001Z".into(),
                exit_code: 137,
                attachments: vec![Attachment { network: user.id.clone(), ip: None, aliases: vec!["x".into()] }],
            }),
            auto_remove: true,
            ..Container::fixture(&"ef".repeat(32), "two")
        };
        let hosted = Container {
            mode: NetMode::Host,
            sandbox_endpoint: "0a".repeat(32),
            ..Container::fixture(&"12".repeat(32), "three")
        };
        let info = |c: &Container| ContainerInfo { container: c.clone(), owner: c.clone(), networks: networks.clone() };
        vec![
            (
                info(&running),
                r#"{"Id":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","Created":"2024-01-02T03:04:05.000000006Z","Path":"sleep","Args":["600"],"State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":4242,"ExitCode":0,"Error":"","StartedAt":"2024-01-02T03:04:06.000000007Z","FinishedAt":"0001-01-01T00:00:00Z"},"Image":"","ResolvConfPath":"/run/netd/containers/cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd/resolv.conf","HostsPath":"/run/netd/containers/cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd/hosts","LogPath":"/run/netd/containers/cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd/output.log","Name":"/one","HostConfig":{"NetworkMode":"bridge","PortBindings":{},"AutoRemove":false,"Dns":["10.0.0.2"]},"Config":{"Hostname":"cdcdcdcdcdcd","Env":["A=1"],"Cmd":["sleep","600"],"Image":"busybox"},"NetworkSettings":{"Bridge":"","SandboxID":"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd","Ports":{},"SandboxKey":"/run/netd/netns/one","EndpointID":"0000000000000000000000000000000000000000000000000000000000000002","Gateway":"172.17.0.1","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"IPAddress":"172.17.0.2","IPPrefixLen":16,"IPv6Gateway":"","MacAddress":"02:42:ac:11:00:02","Networks":{"bridge":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"02:42:ac:11:00:02","DriverOpts":null,"NetworkID":"0101010101010101010101010101010101010101010101010101010101010101","EndpointID":"0000000000000000000000000000000000000000000000000000000000000002","Gateway":"172.17.0.1","IPAddress":"172.17.0.2","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null},"my-net":{"IPAMConfig":{"IPv4Address":"172.18.0.9"},"Links":null,"Aliases":["db"],"MacAddress":"02:42:ac:12:00:09","DriverOpts":null,"NetworkID":"0202020202020202020202020202020202020202020202020202020202020202","EndpointID":"0000000000000000000000000000000000000000000000000000000000000009","Gateway":"172.18.0.1","IPAddress":"172.18.0.9","IPPrefixLen":16,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":["one","cdcdcdcdcdcd","db"]}}}}"#,
            ),
            (
                info(&stopped),
                r#"{"Id":"efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef","Created":"","Path":"","Args":[],"State":{"Status":"exited","Running":false,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":137,"Error":"","StartedAt":"","FinishedAt":"2024-01-02T04:00:00.000000001Z"},"Image":"","ResolvConfPath":"/run/netd/containers/efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef/resolv.conf","HostsPath":"/run/netd/containers/efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef/hosts","LogPath":"/run/netd/containers/efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef/output.log","Name":"/two","HostConfig":{"NetworkMode":"my-net","PortBindings":{},"AutoRemove":true,"Dns":[]},"Config":{"Hostname":"efefefefefef","Env":[],"Cmd":[],"Image":""},"NetworkSettings":{"Bridge":"","SandboxID":"","Ports":{},"SandboxKey":"","EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","MacAddress":"","Networks":{"my-net":{"IPAMConfig":null,"Links":null,"Aliases":["x"],"MacAddress":"","DriverOpts":null,"NetworkID":"0202020202020202020202020202020202020202020202020202020202020202","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#,
            ),
            (
                info(&hosted),
                r#"{"Id":"1212121212121212121212121212121212121212121212121212121212121212","Created":"","Path":"","Args":[],"State":{"Status":"running","Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"","FinishedAt":"0001-01-01T00:00:00Z"},"Image":"","ResolvConfPath":"/run/netd/containers/1212121212121212121212121212121212121212121212121212121212121212/resolv.conf","HostsPath":"/run/netd/containers/1212121212121212121212121212121212121212121212121212121212121212/hosts","LogPath":"/run/netd/containers/1212121212121212121212121212121212121212121212121212121212121212/output.log","Name":"/three","HostConfig":{"NetworkMode":"host","PortBindings":{},"AutoRemove":false,"Dns":[]},"Config":{"Hostname":"121212121212","Env":[],"Cmd":[],"Image":""},"NetworkSettings":{"Bridge":"","SandboxID":"1212121212121212121212121212121212121212121212121212121212121212","Ports":{},"SandboxKey":"","EndpointID":"","Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","MacAddress":"","Networks":{"host":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"NetworkID":"0303030303030303030303030303030303030303030303030303030303030303","EndpointID":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}"#,
            ),
        ]
    }

    #[test]
    fn container_views_are_dockers_json() {
        for (info, expected) in containers() {
            let got = json(super::container(&info, std::path::Path::new("/run/netd")));
            assert_eq!(got, expected, "{}", info.container.name);
            // What the CLI prints: the view read back, as a Value for `--format`/inspect.
            let read: ContainerView = serde_json::from_str(&got).unwrap();
            assert_eq!(serde_json::to_value(read).unwrap().to_string(), expected, "{}", info.container.name);
        }
    }

    #[test]
    fn ports_are_dockers_json() {
        use crate::ports::{parse_specs, Proto, Published};
        let (info, _) = containers().remove(0);
        let mut c = info.container.clone();
        c.ports = parse_specs(&["8080:80", "127.0.0.1::53/udp", "9000-9001:9000-9001"]).unwrap();
        let backend = Ipv4Addr::new(172, 17, 0, 2);
        let p = |host_ip: [u8; 4], host_port, container_port, proto| Published {
            host_ip: host_ip.into(),
            host_port,
            container_port,
            proto,
            backend,
        };
        c.published = vec![
            p([0, 0, 0, 0], 8080, 80, Proto::Tcp),
            p([127, 0, 0, 1], 32768, 53, Proto::Udp),
            p([0, 0, 0, 0], 9000, 9000, Proto::Tcp),
            p([0, 0, 0, 0], 9001, 9001, Proto::Tcp),
        ];
        let info = ContainerInfo { container: c.clone(), owner: c.clone(), ..info };
        let got = json(super::container(&info, std::path::Path::new("/run/netd")));
        let bindings = r#""PortBindings":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":""}],"80/tcp":[{"HostIp":"","HostPort":"8080"}],"9000/tcp":[{"HostIp":"","HostPort":"9000"}],"9001/tcp":[{"HostIp":"","HostPort":"9001"}]}"#;
        assert!(got.contains(&format!(r#""NetworkMode":"bridge",{bindings},"AutoRemove""#)), "{got}");
        let ports = r#""Ports":{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"32768"}],"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}],"9000/tcp":[{"HostIp":"0.0.0.0","HostPort":"9000"}],"9001/tcp":[{"HostIp":"0.0.0.0","HostPort":"9001"}]}"#;
        assert!(got.contains(&format!(r#""SandboxID":"{}",{ports},"SandboxKey""#, c.id)), "{got}");
        // Stopped: the bindings stay, nothing is published.
        let mut stopped = c.clone();
        stopped.published.clear();
        stopped.stopped = Some(crate::model::Stopped { at: String::new(), exit_code: 0, attachments: vec![] });
        let info = ContainerInfo { container: stopped.clone(), owner: stopped, ..info };
        let got = json(super::container(&info, std::path::Path::new("/run/netd")));
        assert!(got.contains(bindings) && got.contains(r#""Ports":{},"#), "{got}");
    }

    #[test]
    fn network_view_is_the_seeds_json() {
        let n = sample(None);
        let expected = r#"{"Name":"my-net","Id":"abababababababababababababababababababababababababababababababab","Created":"2022-08-02T09:05:20.250288712Z","Scope":"local","Driver":"bridge","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"}]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd":{"Name":"one","EndpointID":"efefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefef","MacAddress":"02:42:ac:12:00:02","IPv4Address":"172.18.0.2/16","IPv6Address":""}},"Options":{},"Labels":{}}"#;
        assert_eq!(json(super::network(&n, &[member(&n)])), expected);
        let read: NetworkView = serde_json::from_str(expected).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap().to_string(), expected);
    }

    #[test]
    fn host_network_lists_its_containers_without_addresses() {
        let host = Network { name: "host".into(), driver: Driver::Host, ipam: None, ..sample(None) };
        let c = Container {
            mode: NetMode::Host,
            sandbox_endpoint: "0a".repeat(32),
            ..Container::fixture(&"12".repeat(32), "three")
        };
        let got = json(super::network(&host, &[Member { container: c, endpoint: None }]));
        assert_eq!(
            got,
            r#"{"Name":"host","Id":"abababababababababababababababababababababababababababababababab","Created":"2022-08-02T09:05:20.250288712Z","Scope":"local","Driver":"host","EnableIPv6":false,"IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigFrom":{"Network":""},"ConfigOnly":false,"Containers":{"1212121212121212121212121212121212121212121212121212121212121212":{"Name":"three","EndpointID":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","MacAddress":"","IPv4Address":"","IPv6Address":""}},"Options":{},"Labels":{}}"#
        );
    }

    #[test]
    fn ip_range_sits_between_subnet_and_gateway() {
        let n = sample(Some("172.18.5.0/24"));
        let view = serde_json::to_value(super::network(&n, &[])).unwrap();
        let config = &view["IPAM"]["Config"][0];
        let keys: Vec<&String> = config.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Subnet", "IPRange", "Gateway"]);
        assert_eq!(config["IPRange"], "172.18.5.0/24");
    }
}
