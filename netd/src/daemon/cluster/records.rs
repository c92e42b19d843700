//! What the daemons of a cluster share in etcd, under `/netd/v1/`:
//!
//! - `networks/<id>`: an overlay network (JSON [`Network`], its `index` is each host's own);
//! - `networks-rev`: bumped by every network create and remove, which compare it, so that two
//!   hosts never create overlapping subnets, one name twice or one VNI twice;
//! - `ipam/<network id>/<ip>`: an address taken ([`Reservation`]), created only if absent;
//! - `ipam-rev/<network id>`: bumped by every reservation, compared by `network rm`, which
//!   then cannot miss a reservation made since it looked;
//! - `endpoints/<network id>/<ip>`: a running endpoint ([`Announcement`]) under its host's
//!   lease: when a host stops renewing it, its endpoints vanish everywhere;
//! - `hosts/<advertise address>`: a member ([`Member`]) under its lease, with the subnets it
//!   uses locally, which no overlay network may take.
use std::{collections::BTreeMap, net::Ipv4Addr};

use ipnetwork::Ipv4Network;
use serde::{Deserialize, Serialize};

use crate::model::Network;

pub const PREFIX: &str = "/netd/v1/";
pub const NETWORKS_REV: &str = "/netd/v1/networks-rev";

pub fn network_key(id: &str) -> String {
    format!("{PREFIX}networks/{id}")
}

pub fn ipam_prefix(network: &str) -> String {
    format!("{PREFIX}ipam/{network}/")
}

pub fn ipam_key(network: &str, ip: Ipv4Addr) -> String {
    format!("{}{ip}", ipam_prefix(network))
}

pub fn ipam_rev_key(network: &str) -> String {
    format!("{PREFIX}ipam-rev/{network}")
}

pub fn endpoint_key(network: &str, ip: Ipv4Addr) -> String {
    format!("{PREFIX}endpoints/{network}/{ip}")
}

pub fn member_key(host: Ipv4Addr) -> String {
    format!("{PREFIX}hosts/{host}")
}

/// Who holds an address: the host, and the endpoint there.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reservation {
    pub host: Ipv4Addr,
    pub endpoint: String,
}

/// A running endpoint of an overlay network, as other hosts need it: where to tunnel to, and
/// the names the embedded DNS answers for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Announcement {
    pub network: String,
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// The underlay address of the host it runs on.
    pub host: Ipv4Addr,
    pub endpoint: String,
    pub container_id: String,
    pub container_name: String,
    pub hostname: String,
    /// The container's creation time (RFC 3339): DNS orders holders of a name by it.
    pub created: String,
    pub aliases: Vec<String>,
}

/// A member host.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    /// Subnets of its local networks and its own routes: an overlay network must avoid them.
    pub subnets: Vec<Ipv4Network>,
}

/// Everything under [`PREFIX`] as one host last saw it.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub networks: BTreeMap<String, Network>,
    /// By (network id, address).
    pub endpoints: BTreeMap<(String, Ipv4Addr), Announcement>,
    pub reservations: BTreeMap<(String, Ipv4Addr), Reservation>,
    pub members: BTreeMap<Ipv4Addr, Member>,
}

/// What a key names.
enum Key<'a> {
    Network(&'a str),
    Endpoint(&'a str, Ipv4Addr),
    Reservation(&'a str, Ipv4Addr),
    Member(Ipv4Addr),
    Other,
}

fn parse_key(key: &str) -> Key<'_> {
    let Some(rest) = key.strip_prefix(PREFIX) else { return Key::Other };
    fn split(rest: &str) -> Option<(&str, Ipv4Addr)> {
        let (network, ip) = rest.split_once('/')?;
        Some((network, ip.parse().ok()?))
    }
    if let Some(id) = rest.strip_prefix("networks/") {
        return Key::Network(id);
    }
    if let Some((network, ip)) = rest.strip_prefix("endpoints/").and_then(split) {
        return Key::Endpoint(network, ip);
    }
    if let Some((network, ip)) = rest.strip_prefix("ipam/").and_then(split) {
        return Key::Reservation(network, ip);
    }
    if let Some(Ok(host)) = rest.strip_prefix("hosts/").map(str::parse) {
        return Key::Member(host);
    }
    Key::Other
}

impl View {
    /// Applies a put (`Some(value)`) or a delete (`None`) of `key`. A value that does not
    /// parse (another version's, or damaged) is logged and treated as absent.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        fn parse<T: for<'de> Deserialize<'de>>(key: &str, value: Option<&[u8]>) -> Option<T> {
            let value = value?;
            serde_json::from_slice(value)
                .inspect_err(|e| tracing::warn!(key, error = %e, "cluster store: unreadable value ignored"))
                .ok()
        }
        match parse_key(key) {
            Key::Network(id) => set(&mut self.networks, id.to_string(), parse(key, value)),
            Key::Endpoint(network, ip) => set(&mut self.endpoints, (network.to_string(), ip), parse(key, value)),
            Key::Reservation(network, ip) => set(&mut self.reservations, (network.to_string(), ip), parse(key, value)),
            Key::Member(host) => set(&mut self.members, host, parse(key, value)),
            Key::Other => {}
        }
    }

    /// Every subnet an overlay network must avoid: the overlay networks' own and every
    /// member's local ones.
    pub fn subnets_in_use(&self) -> Vec<Ipv4Network> {
        let overlays = self.networks.values().filter_map(|n| n.ipam.as_ref().map(|i| i.subnet));
        overlays.chain(self.members.values().flat_map(|m| m.subnets.iter().copied())).collect()
    }
}

fn set<K: Ord, V>(map: &mut BTreeMap<K, V>, key: K, value: Option<V>) {
    match value {
        Some(v) => map.insert(key, v),
        None => map.remove(&key),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_into_the_view_and_deletes_take_them_out() {
        let mut view = View::default();
        let ip: Ipv4Addr = "10.0.0.2".parse().unwrap();
        let reservation = Reservation { host: "192.0.2.11".parse().unwrap(), endpoint: "e1".into() };
        view.apply(&ipam_key("n1", ip), Some(&serde_json::to_vec(&reservation).unwrap()));
        let member = Member { subnets: vec!["172.18.0.0/16".parse().unwrap()] };
        view.apply(&member_key(reservation.host), Some(&serde_json::to_vec(&member).unwrap()));
        assert_eq!(view.reservations.get(&("n1".to_string(), ip)), Some(&reservation));
        assert_eq!(view.subnets_in_use(), member.subnets);
        view.apply(&ipam_key("n1", ip), None);
        assert!(view.reservations.is_empty());
        // Unreadable values and foreign keys change nothing.
        view.apply(&endpoint_key("n1", ip), Some(b"{"));
        view.apply("/netd/v1/something-else", Some(b"1"));
        view.apply(&ipam_rev_key("n1"), Some(b"1"));
        assert!(view.endpoints.is_empty() && view.reservations.is_empty());
    }
}
