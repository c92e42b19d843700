//! What the embedded DNS knows: the names on each user-defined network, and for each listener
//! (a container netns) the networks it may see, its gateway and its own upstream servers.
//!
//! Kept up to date from the manager's state after every change. Only the containers that
//! changed since the last sync are recomputed (their old names out, their new names in), so a
//! command costs the same with 1,000 containers as with 10; a change to the networks rebuilds
//! everything.
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    sync::Mutex,
};

use crate::{
    cluster::records::Announcement,
    model::{gateway_order, Container, Endpoint, NetMode, Network},
};

/// Answered with the asking container's gateway: the way to the host.
pub const HOST_GATEWAY_NAME: &str = "host.docker.internal";

/// A container netns that gets a listener: a running container with its own netns and at
/// least one endpoint on a user-defined network. `container:NAME` containers use NAME's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    /// The bind-mounted netns the listener lives in.
    pub netns: PathBuf,
    /// When the container last started: every start makes a new netns at the same path, so a
    /// listener made before it is in the old one.
    pub started: String,
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

/// Where a container sorts among those holding a name: creation time, then id.
type CreationOrder = (String, String);

/// One user-defined network's names.
#[derive(Clone, Debug, Default)]
struct NetworkNames {
    /// Lowercase name → addresses, in container creation order, without repeats.
    forward: BTreeMap<String, Vec<Ipv4Addr>>,
    /// Address → `name.network` (PTR).
    reverse: HashMap<Ipv4Addr, String>,
    /// Address → the container holding it, which places it in `forward`'s lists.
    holder: HashMap<Ipv4Addr, CreationOrder>,
}

/// What of a container its names and its listener follow from: a sync recomputes a
/// container only when one of these changed.
#[derive(Clone, Debug)]
struct Inputs {
    running: bool,
    created: String,
    name: String,
    hostname: String,
    mode: NetMode,
    netns: Option<String>,
    started: String,
    dns: Vec<IpAddr>,
    endpoints: Vec<Endpoint>,
}

impl Inputs {
    fn of(c: &Container) -> Self {
        Self {
            running: c.running(),
            created: c.created.clone(),
            name: c.name.clone(),
            hostname: c.hostname.clone(),
            mode: c.mode.clone(),
            netns: c.netns.clone(),
            started: c.started.clone(),
            dns: c.dns.clone(),
            endpoints: c.endpoints.clone(),
        }
    }

    /// A container on another host, as its announcement on one overlay network names it: it
    /// has names there but no listener here.
    fn remote(a: &Announcement) -> Self {
        let endpoint = Endpoint {
            id: a.endpoint.clone(),
            network: a.network.clone(),
            ip: a.ip,
            prefix: 0,
            gateway: Ipv4Addr::UNSPECIFIED,
            mac: a.mac,
            ifname: String::new(),
            host_ifname: String::new(),
            aliases: a.aliases.clone(),
            static_ip: false,
        };
        Self {
            running: true,
            created: a.created.clone(),
            name: a.container_name.clone(),
            hostname: a.hostname.clone(),
            mode: NetMode::Own,
            netns: None,
            started: String::new(),
            dns: vec![],
            endpoints: vec![endpoint],
        }
    }

    /// Compares without allocating: this runs for every container on every sync.
    fn matches(&self, c: &Container) -> bool {
        self.running == c.running()
            && self.created == c.created
            && self.name == c.name
            && self.hostname == c.hostname
            && self.mode == c.mode
            && self.netns == c.netns
            && self.started == c.started
            && self.dns == c.dns
            && self.endpoints == c.endpoints
    }

    /// The names it has on `network` (lowercase, each once), for an endpoint there.
    fn names(&self, id: &str, ep: &Endpoint, network: &Network) -> Vec<String> {
        let short_id = &id[..id.len().min(12)];
        let mut names: Vec<String> = Vec::with_capacity(5 + 2 * ep.aliases.len());
        let mut add = |name: String| {
            let name = name.to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        };
        for name in [self.name.as_str(), self.hostname.as_str(), short_id] {
            add(name.to_string());
        }
        for name in std::iter::once(&self.name).chain(&ep.aliases) {
            add(name.clone());
            add(format!("{name}.{}", network.name));
        }
        names
    }
}

/// What of a network the names follow from; any change rebuilds every record.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NetworkInputs {
    id: String,
    name: String,
    user_defined: bool,
    internal: bool,
}

impl NetworkInputs {
    fn matches(&self, n: &Network) -> bool {
        self.id == n.id
            && self.name == n.name
            && self.user_defined == n.is_user_defined()
            && self.internal == n.internal
    }
}

/// The names and clients at one moment; listeners read a shared copy, the daemon updates it
/// in place (`Arc::make_mut`) between queries.
#[derive(Clone, Debug, Default)]
pub struct Records {
    networks: HashMap<String, NetworkNames>,
    /// By the id of the container that owns the netns.
    clients: BTreeMap<String, Client>,
    /// Every container of the state last synced, by id, as its records were computed.
    containers: HashMap<String, Inputs>,
    /// The networks of the state last synced.
    network_inputs: Vec<NetworkInputs>,
    /// Overlay endpoints of other hosts last synced, by [`remote_key`] (their [`Inputs`] are
    /// in `containers` under the same key).
    remote: HashMap<String, Announcement>,
    /// The [`super::RemoteNames::generation`] they came from (0: none yet, or the records were
    /// rebuilt since).
    remote_generation: u64,
}

/// Where a remote endpoint's names are kept: its container id first (the short id is a name).
fn remote_key(a: &Announcement) -> String {
    format!("{}@{}", a.container_id, a.network)
}

impl Records {
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn build(networks: &BTreeMap<String, Network>, containers: &BTreeMap<String, Container>) -> Self {
        let mut records = Records::default();
        records.update(networks, containers);
        records
    }

    /// Brings the records in line with `networks` and `containers`, recomputing only the
    /// containers that changed. Returns whether anything changed.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn update(&mut self, networks: &BTreeMap<String, Network>, containers: &BTreeMap<String, Container>) -> bool {
        self.update_settled(networks, containers, &BTreeSet::new())
    }

    /// [`Self::update`] with the containers of `pending` left out (a `run` between its
    /// reservation and its commit has no name yet), without copying the others.
    pub fn update_settled(
        &mut self,
        networks: &BTreeMap<String, Network>,
        containers: &BTreeMap<String, Container>,
        pending: &BTreeSet<String>,
    ) -> bool {
        let settled = |id: &String| containers.contains_key(id) && !pending.contains(id);
        let same_networks = self.network_inputs.len() == networks.len()
            && self.network_inputs.iter().zip(networks.values()).all(|(old, n)| old.matches(n));
        if !same_networks {
            *self = Records {
                network_inputs: networks
                    .values()
                    .map(|n| NetworkInputs {
                        id: n.id.clone(),
                        name: n.name.clone(),
                        user_defined: n.is_user_defined(),
                        internal: n.internal,
                    })
                    .collect(),
                ..Records::default()
            };
        }
        let mut changed = !same_networks;
        for (id, c) in containers.iter().filter(|(id, _)| !pending.contains(*id)) {
            if self.containers.get(id).is_some_and(|old| old.matches(c)) {
                continue;
            }
            self.remove(id, networks);
            self.add(id, Inputs::of(c), networks);
            changed = true;
        }
        // Every settled id is known now: more known ids means some went.
        let pending_there = pending.iter().filter(|id| containers.contains_key(*id)).count();
        if self.containers.len() != containers.len() - pending_there + self.remote.len() {
            let gone: Vec<String> =
                self.containers.keys().filter(|id| !settled(id) && !self.remote.contains_key(*id)).cloned().collect();
            for id in gone {
                self.remove(&id, networks);
            }
            changed = true;
        }
        changed
    }

    /// Brings the names of other hosts' overlay endpoints in line with `remote` (after
    /// [`Self::update`], which forgets them all when the networks changed). Returns whether
    /// anything changed.
    pub fn update_remote(&mut self, networks: &BTreeMap<String, Network>, remote: &super::RemoteNames) -> bool {
        if remote.generation == self.remote_generation {
            return false;
        }
        self.remote_generation = remote.generation;
        let wanted: HashMap<String, &Announcement> = remote.announcements.iter().map(|a| (remote_key(a), a)).collect();
        let gone: Vec<String> = self.remote.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        let mut changed = !gone.is_empty();
        for key in gone {
            self.remote.remove(&key);
            self.remove(&key, networks);
        }
        for (key, a) in wanted {
            if self.remote.get(&key) == Some(a) {
                continue;
            }
            self.remove(&key, networks);
            self.add(&key, Inputs::remote(a), networks);
            self.remote.insert(key, a.clone());
            changed = true;
        }
        changed
    }

    fn add(&mut self, id: &str, c: Inputs, networks: &BTreeMap<String, Network>) {
        if c.running {
            let mut client_networks = Vec::new();
            for ep in &c.endpoints {
                let Some(network) = networks.get(&ep.network).filter(|n| n.is_user_defined()) else {
                    continue;
                };
                client_networks.push(network.id.clone());
                let names = self.networks.entry(network.id.clone()).or_default();
                let order: CreationOrder = (c.created.clone(), id.to_string());
                for name in c.names(id, ep, network) {
                    let ips = names.forward.entry(name).or_default();
                    if ips.contains(&ep.ip) {
                        continue;
                    }
                    let at = ips.partition_point(|ip| names.holder.get(ip).is_some_and(|h| *h < order));
                    ips.insert(at, ep.ip);
                }
                names
                    .reverse
                    .entry(ep.ip)
                    .or_insert_with(|| format!("{}.{}", c.name, network.name).to_ascii_lowercase());
                names.holder.entry(ep.ip).or_insert(order);
            }
            let netns = c.netns.as_ref().filter(|_| c.mode == NetMode::Own);
            if let (Some(netns), false) = (netns, client_networks.is_empty()) {
                let gateway = c
                    .endpoints
                    .iter()
                    .filter(|ep| !networks.get(&ep.network).is_some_and(|n| n.internal))
                    .min_by_key(|ep| gateway_order(networks, &ep.network))
                    .unwrap_or(&c.endpoints[0])
                    .gateway;
                self.clients.insert(
                    id.to_string(),
                    Client {
                        netns: PathBuf::from(netns),
                        started: if c.started.is_empty() { c.created.clone() } else { c.started.clone() },
                        networks: client_networks,
                        gateway,
                        servers: c.dns.clone(),
                    },
                );
            }
        }
        self.containers.insert(id.to_string(), c);
    }

    /// Takes out what [`Self::add`] put in for container `id` (with the same `networks`: a
    /// change to them rebuilds everything instead).
    fn remove(&mut self, id: &str, networks: &BTreeMap<String, Network>) {
        let Some(c) = self.containers.remove(id) else { return };
        self.clients.remove(id);
        if !c.running {
            return;
        }
        for ep in &c.endpoints {
            let Some(network) = networks.get(&ep.network).filter(|n| n.is_user_defined()) else {
                continue;
            };
            let Some(names) = self.networks.get_mut(&ep.network) else { continue };
            // Its address only if it holds it (addresses are unique on a network; this
            // keeps a record of another container safe should two ever claim one).
            if names.holder.get(&ep.ip).is_none_or(|(_, holder)| holder != id) {
                continue;
            }
            names.holder.remove(&ep.ip);
            names.reverse.remove(&ep.ip);
            for name in c.names(id, ep, network) {
                if let Some(ips) = names.forward.get_mut(&name) {
                    ips.retain(|ip| *ip != ep.ip);
                    if ips.is_empty() {
                        names.forward.remove(&name);
                    }
                }
            }
        }
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
            overlay: None,
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
    fn pending_containers_are_left_out_until_they_settle() {
        let (networks, containers) = state();
        let one: Ipv4Addr = "172.18.0.2".parse().unwrap();
        let pending: BTreeSet<String> = [id("a1")].into();
        let mut records = Records::default();
        assert!(records.update_settled(&networks, &containers, &pending));
        let two = records.client(&id("b2")).unwrap().clone();
        assert_eq!(records.addresses(&two, "one"), None, "a pending container has no name yet");
        assert!(records.client(&id("a1")).is_none(), "nor a listener");
        assert!(!records.update_settled(&networks, &containers, &pending), "nothing more to do");
        assert!(records.update_settled(&networks, &containers, &BTreeSet::new()), "it settles");
        assert_eq!(records.addresses(&two, "one"), Some(vec![one]));
        assert_eq!(view(&records), view(&Records::build(&networks, &containers)), "as if never pending");
        // Pending again (a container that was known): it is left out again.
        assert!(records.update_settled(&networks, &containers, &pending));
        assert_eq!(records.addresses(&two, "one"), None);
        let mut without = containers.clone();
        without.remove(&id("a1"));
        assert_eq!(view(&records), view(&Records::build(&networks, &without)), "as if it were not there");
    }

    #[test]
    fn other_hosts_overlay_endpoints_are_named_and_follow_each_new_generation() {
        let (networks, containers) = state();
        let mut records = Records::build(&networks, &containers);
        let announce = |name: &str, ip: &str, aliases: &[&str]| Announcement {
            network: "n1".into(),
            ip: ip.parse().unwrap(),
            mac: [2, 0x42, 0, 0, 0, 9],
            host: "192.0.2.12".parse().unwrap(),
            endpoint: crate::model::new_id(),
            container_id: id(&format!("r{name}")),
            container_name: name.into(),
            hostname: name.into(),
            created: "9".into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        };
        let mut remote = super::super::RemoteNames::default();
        remote.set(vec![announce("remote", "172.18.0.9", &["web"])]);
        assert!(records.update_remote(&networks, &remote));
        assert!(!records.update_remote(&networks, &remote), "the same generation changes nothing");
        let one = records.client(&id("a1")).unwrap().clone();
        let ip = |s: &str| -> Ipv4Addr { s.parse().unwrap() };
        assert_eq!(records.addresses(&one, "remote"), Some(vec![ip("172.18.0.9")]));
        assert_eq!(records.addresses(&one, "remote.my-net"), Some(vec![ip("172.18.0.9")]));
        assert_eq!(records.addresses(&one, "web"), Some(vec![ip("172.18.0.3"), ip("172.18.0.4"), ip("172.18.0.9")]));
        assert_eq!(records.name_of(&one, ip("172.18.0.9")), Some("remote.my-net"));
        assert!(records.client(&format!("{}@n1", id("rremote"))).is_none(), "no listener for another host's container");
        // A local change keeps them; a change to the networks rebuilds everything, them too.
        assert!(!records.update(&networks, &containers));
        let mut renamed = networks.clone();
        renamed.get_mut("n2").unwrap().name = "other2".into();
        assert!(records.update(&renamed, &containers));
        assert!(records.update_remote(&renamed, &remote));
        assert_eq!(records.addresses(&one, "remote"), Some(vec![ip("172.18.0.9")]));
        remote.set(vec![]);
        assert!(records.update_remote(&renamed, &remote));
        assert_eq!(records.addresses(&one, "remote"), None);
        assert_eq!(records.addresses(&one, "web"), Some(vec![ip("172.18.0.3"), ip("172.18.0.4")]));
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

    /// What answers depend on, for comparing two `Records`.
    #[cfg(test)]
    type View = (Vec<(String, Vec<(String, Vec<Ipv4Addr>)>, Vec<(Ipv4Addr, String)>)>, Vec<(String, Client)>);

    #[cfg(test)]
    fn view(r: &Records) -> View {
        let mut networks: Vec<_> = r
            .networks
            .iter()
            .filter(|(_, n)| !n.forward.is_empty() || !n.reverse.is_empty())
            .map(|(id, n)| {
                let mut reverse: Vec<_> = n.reverse.iter().map(|(ip, name)| (*ip, name.clone())).collect();
                reverse.sort();
                (id.clone(), n.forward.iter().map(|(k, v)| (k.clone(), v.clone())).collect(), reverse)
            })
            .collect();
        networks.sort();
        (networks, r.clients.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    #[test]
    fn updating_in_place_gives_what_a_rebuild_gives() {
        let (mut networks, mut containers) = state();
        let mut records = Records::build(&networks, &containers);
        fn check(
            records: &mut Records,
            networks: &BTreeMap<String, Network>,
            containers: &BTreeMap<String, Container>,
            what: &str,
        ) {
            assert!(records.update(networks, containers), "{what}: a change is seen");
            assert!(!records.update(networks, containers), "{what}: nothing more to do");
            assert_eq!(view(records), view(&Records::build(networks, containers)), "{what}");
        }
        // An older container joins "web" after newer ones: its address goes first.
        let zero = container("z0", "zero", "0", vec![endpoint("n1", "172.18.0.9", "172.18.0.1", &["web"])]);
        containers.insert(zero.id.clone(), zero);
        check(&mut records, &networks, &containers, "an older container with a shared alias");
        assert_eq!(
            records.addresses(records.client(&id("a1")).unwrap(), "web").unwrap()[0],
            "172.18.0.9".parse::<Ipv4Addr>().unwrap()
        );
        let b2 = id("b2");
        containers.get_mut(&b2).unwrap().stopped =
            Some(Stopped { at: String::new(), exit_code: 0, attachments: vec![] });
        check(&mut records, &networks, &containers, "a container stops");
        containers.get_mut(&b2).unwrap().stopped = None;
        containers.get_mut(&b2).unwrap().started = "later".into();
        check(&mut records, &networks, &containers, "it starts again");
        containers.get_mut(&id("c3")).unwrap().endpoints[0].aliases = vec!["db".into()];
        check(&mut records, &networks, &containers, "aliases change");
        containers.get_mut(&id("a1")).unwrap().endpoints.push(endpoint("n2", "172.19.0.7", "172.19.0.1", &[]));
        check(&mut records, &networks, &containers, "a connect");
        containers.remove(&id("d4"));
        check(&mut records, &networks, &containers, "a container goes");
        networks.insert("n3".into(), network("n3", "third"));
        check(&mut records, &networks, &containers, "a network comes");
        networks.get_mut("n1").unwrap().internal = true;
        check(&mut records, &networks, &containers, "a network's gateway rule changes");
    }
}
