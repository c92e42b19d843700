//! What the embedded DNS knows, rebuilt from the manager's state after every change: the
//! names on each user-defined network, and for each listener (a container netns) the networks
//! it may see, its gateway and its own upstream servers.
use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    sync::Mutex,
};

use crate::model::{Container, NetMode, Network};

/// Answered with the asking container's gateway: the way to the host.
pub const HOST_GATEWAY_NAME: &str = "host.docker.internal";

/// A container netns that gets a listener: a running container with its own netns and at
/// least one endpoint on a user-defined network. `container:NAME` containers use NAME's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The bind-mounted netns the listener lives in.
    pub netns: PathBuf,
    /// Ids of its user-defined networks, in endpoint order (a name found on several of them
    /// is answered from the first, as Docker does).
    pub networks: Vec<String>,
    /// `host.docker.internal`: the gateway its default route points at (on internal
    /// networks only, where it has none: its first endpoint's gateway, which it reaches
    /// through that network's own route).
    pub gateway: Ipv4Addr,
    /// `--dns`: forward to these instead of the daemon's upstreams.
    pub servers: Vec<IpAddr>,
}

/// One user-defined network's names.
#[derive(Debug, Default)]
struct NetworkNames {
    /// Lowercase name → addresses, in container creation order, without repeats.
    forward: BTreeMap<String, Vec<Ipv4Addr>>,
    /// Address → `name.network` (PTR).
    reverse: HashMap<Ipv4Addr, String>,
}

/// The names and clients at one moment. Immutable; replaced as a whole on every change.
#[derive(Debug, Default)]
pub struct Records {
    networks: HashMap<String, NetworkNames>,
    /// By the id of the container that owns the netns.
    clients: BTreeMap<String, Client>,
}

impl Records {
    pub fn build(networks: &BTreeMap<String, Network>, containers: &BTreeMap<String, Container>) -> Self {
        let mut records = Records::default();
        let mut running: Vec<&Container> = containers.values().filter(|c| c.running()).collect();
        running.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        for c in running {
            let mut client_networks = Vec::new();
            for ep in &c.endpoints {
                let Some(network) = networks.get(&ep.network).filter(|n| n.is_user_defined()) else {
                    continue;
                };
                client_networks.push(network.id.clone());
                let names = records.networks.entry(network.id.clone()).or_default();
                let short_id = &c.id[..c.id.len().min(12)];
                let mut add = |name: &str| {
                    let ips = names.forward.entry(name.to_ascii_lowercase()).or_default();
                    if !ips.contains(&ep.ip) {
                        ips.push(ep.ip);
                    }
                };
                for name in [c.name.as_str(), c.hostname.as_str(), short_id] {
                    add(name);
                }
                for name in std::iter::once(&c.name).chain(&ep.aliases) {
                    add(name);
                    add(&format!("{name}.{}", network.name));
                }
                names
                    .reverse
                    .entry(ep.ip)
                    .or_insert_with(|| format!("{}.{}", c.name, network.name).to_ascii_lowercase());
            }
            let netns = c.netns.as_ref().filter(|_| c.mode == NetMode::Own);
            if let (Some(netns), false) = (netns, client_networks.is_empty()) {
                records.clients.insert(
                    c.id.clone(),
                    Client {
                        netns: PathBuf::from(netns),
                        networks: client_networks,
                        gateway: c.default_route_endpoint(networks).unwrap_or(&c.endpoints[0]).gateway,
                        servers: c.dns.clone(),
                    },
                );
            }
        }
        records
    }

    pub fn clients(&self) -> &BTreeMap<String, Client> {
        &self.clients
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    /// The addresses of `name` (lowercase, without the final dot) as `client` sees it: from
    /// the first of its networks that has the name, else `host.docker.internal`. `None`: not
    /// a name of ours (forward it).
    pub fn addresses(&self, client: &Client, name: &str) -> Option<Vec<Ipv4Addr>> {
        let found =
            client.networks.iter().filter_map(|n| self.networks.get(n)).find_map(|names| names.forward.get(name));
        match found {
            Some(ips) => Some(ips.clone()),
            None if name == HOST_GATEWAY_NAME => Some(vec![client.gateway]),
            None => None,
        }
    }

    /// `name.network` of the container with address `ip` on one of `client`'s networks.
    pub fn name_of(&self, client: &Client, ip: Ipv4Addr) -> Option<&str> {
        client
            .networks
            .iter()
            .filter_map(|n| self.networks.get(n))
            .find_map(|names| names.reverse.get(&ip))
            .map(String::as_str)
    }
}

/// Round-robin order of names with several addresses: each answer starts one further along.
/// Kept across rebuilds of [`Records`].
#[derive(Debug, Default)]
pub struct Rotation {
    next: Mutex<HashMap<String, usize>>,
}

impl Rotation {
    pub fn rotate(&self, name: &str, ips: &mut [Ipv4Addr]) {
        if ips.len() < 2 {
            return;
        }
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let counter = next.entry(name.to_string()).or_insert(0);
        ips.rotate_left(*counter % ips.len());
        *counter = counter.wrapping_add(1);
    }

    /// Forgets the names that no longer exist.
    pub fn retain(&self, records: &Records) {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        next.retain(|name, _| records.networks.values().any(|n| n.forward.contains_key(name)));
    }
}

// The fixture is also what the DNS fuzz target (`fuzz/`, feature `fuzzing`) answers from.
#[cfg(any(test, feature = "fuzzing"))]
pub(super) mod tests {
    use super::*;
    use crate::model::{Driver, Endpoint, IpamConfig, Stopped};

    fn network(id: &str, name: &str) -> Network {
        Network {
            id: id.into(),
            name: name.into(),
            driver: Driver::Bridge,
            index: 1,
            ipam: Some(IpamConfig {
                subnet: "172.18.0.0/16".parse().unwrap(),
                gateway: "172.18.0.1".parse().unwrap(),
                ip_range: None,
                user_subnet: false,
            }),
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: String::new(),
            docker: None,
        }
    }

    fn endpoint(network: &str, ip: &str, gateway: &str, aliases: &[&str]) -> Endpoint {
        Endpoint {
            id: crate::model::new_id(),
            network: network.into(),
            ip: ip.parse().unwrap(),
            prefix: 16,
            gateway: gateway.parse().unwrap(),
            mac: [0; 6],
            ifname: "eth0".into(),
            host_ifname: String::new(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            static_ip: false,
        }
    }

    fn container(id: &str, name: &str, created: &str, endpoints: Vec<Endpoint>) -> Container {
        Container {
            hostname: format!("{id:0<12}"),
            endpoints,
            netns: Some(format!("/run/netd/netns/{name}")),
            created: created.into(),
            ..Container::fixture(&format!("{id:0<64}"), name)
        }
    }

    /// my-net: one, Two (alias web), three (aliases web, three); other: far; the default
    /// bridge: plain; a stopped container.
    pub(in crate::daemon::dns) fn state() -> (BTreeMap<String, Network>, BTreeMap<String, Container>) {
        let networks: BTreeMap<String, Network> = [
            network("n1", "my-net"),
            network("n2", "other"),
            Network { name: "bridge".into(), ..network("n0", "bridge") },
        ]
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
        let containers = [
            container("a1", "one", "1", vec![endpoint("n1", "172.18.0.2", "172.18.0.1", &[])]),
            container("b2", "Two", "2", vec![endpoint("n1", "172.18.0.3", "172.18.0.1", &["web"])]),
            container("c3", "three", "3", vec![endpoint("n1", "172.18.0.4", "172.18.0.1", &["web", "three"])]),
            container("d4", "far", "4", vec![endpoint("n2", "172.19.0.2", "172.19.0.1", &[])]),
            container("e5", "plain", "5", vec![endpoint("n0", "172.17.0.2", "172.17.0.1", &[])]),
            Container {
                stopped: Some(Stopped { at: String::new(), exit_code: 0, attachments: vec![] }),
                ..container("f6", "gone", "6", vec![])
            },
        ]
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
        (networks, containers)
    }

    pub(in crate::daemon::dns) fn id(short: &str) -> String {
        format!("{short:0<64}")
    }

    #[test]
    fn names_hostnames_short_ids_and_aliases_resolve_on_shared_networks_only() {
        let (networks, containers) = state();
        let records = Records::build(&networks, &containers);
        let one = records.client(&id("a1")).unwrap();
        let ip = |s: &str| -> Ipv4Addr { s.parse().unwrap() };
        assert_eq!(records.addresses(one, "two"), Some(vec![ip("172.18.0.3")]), "names are case-insensitive");
        assert_eq!(records.addresses(one, "one"), Some(vec![ip("172.18.0.2")]));
        assert_eq!(records.addresses(one, "b20000000000"), Some(vec![ip("172.18.0.3")]), "hostname / short id");
        assert_eq!(records.addresses(one, "web"), Some(vec![ip("172.18.0.3"), ip("172.18.0.4")]));
        assert_eq!(
            records.addresses(one, "three"),
            Some(vec![ip("172.18.0.4")]),
            "an alias equal to the name counts once"
        );
        assert_eq!(records.addresses(one, "web.my-net"), Some(vec![ip("172.18.0.3"), ip("172.18.0.4")]));
        assert_eq!(records.addresses(one, "far"), None, "not on a shared network");
        assert_eq!(records.addresses(one, "plain"), None, "the default bridge has no names");
        assert_eq!(records.addresses(one, "gone"), None);
        assert_eq!(records.addresses(one, HOST_GATEWAY_NAME), Some(vec![ip("172.18.0.1")]));
        assert_eq!(records.name_of(one, ip("172.18.0.3")), Some("two.my-net"));
        assert_eq!(records.name_of(one, ip("172.19.0.2")), None);
        let far = records.client(&id("d4")).unwrap();
        assert_eq!(records.addresses(far, HOST_GATEWAY_NAME), Some(vec![ip("172.19.0.1")]));
        assert_eq!(records.addresses(far, "one"), None);
    }

    #[test]
    fn only_running_containers_with_a_user_network_get_a_listener() {
        let (networks, containers) = state();
        let records = Records::build(&networks, &containers);
        let ids: Vec<&String> = records.clients().keys().collect();
        assert_eq!(ids, [&id("a1"), &id("b2"), &id("c3"), &id("d4")]);
        let mut containers = containers;
        let sharer = Container { mode: NetMode::Container(id("a1")), netns: None, ..container("g7", "g", "7", vec![]) };
        containers.insert(sharer.id.clone(), sharer);
        let host = Container { mode: NetMode::Host, ..container("h8", "h", "8", vec![]) };
        containers.insert(host.id.clone(), host);
        assert_eq!(Records::build(&networks, &containers).clients().len(), 4);
    }

    #[test]
    fn several_addresses_rotate_on_each_answer() {
        let rotation = Rotation::default();
        let ips: Vec<Ipv4Addr> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().map(|s| s.parse().unwrap()).collect();
        let firsts: Vec<Ipv4Addr> = (0..4)
            .map(|_| {
                let mut answer = ips.clone();
                rotation.rotate("web", &mut answer);
                let mut sorted = answer.clone();
                sorted.sort();
                assert_eq!(sorted, ips, "every address, every time");
                answer[0]
            })
            .collect();
        assert_eq!(firsts, [ips[0], ips[1], ips[2], ips[0]]);
        let (networks, containers) = state();
        rotation.retain(&Records::build(&networks, &containers));
        let mut kept = ips.clone();
        rotation.rotate("web", &mut kept);
        assert_eq!(kept[0], ips[1], "a name that still exists keeps its place");
        rotation.retain(&Records::default());
        let mut again = ips.clone();
        rotation.rotate("web", &mut again);
        assert_eq!(again[0], ips[0], "the name is gone from the records, so is its counter");
    }
}
