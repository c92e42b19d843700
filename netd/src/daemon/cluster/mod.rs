//! Cluster mode (`netd daemon --cluster-store etcd://…`): overlay networks, their addresses
//! and their endpoints shared by every daemon through etcd (key layout in `records.rs`).
//!
//! Each daemon keeps its own store as the truth for its containers; etcd holds what the
//! others need. Commands that need etcd (overlay `network create`/`rm`, `run`/`connect` on an
//! overlay network) fail at once when the session is down (`Error::ClusterUnavailable`);
//! releases and announcements made while it is down are made good by the next session's
//! reconciliation (`session.rs`), as after a daemon restart.
use std::{net::Ipv4Addr, sync::Mutex, time::Duration};

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp};

use self::records::{Announcement, Reservation, View};
use crate::{
    error::{Error, Result},
    ipam,
    model::Network,
};

pub mod records;
mod session;

pub use session::{run, ClusterSink};

/// How long one request to etcd may take before the command fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts of a transaction that lost a race to another host.
const TXN_ATTEMPTS: usize = 32;
/// The first VNI of overlay networks (Docker's overlay driver starts at 4096 + 1).
const FIRST_VNI: u32 = 4097;
/// The host's VXLAN device, and its UDP port (IANA's).
pub const VXLAN_DEVICE: &str = "netd_vxlan";
pub const VXLAN_PORT: u16 = 4789;

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// As the user wrote it (`etcd://HOST:PORT[,HOST:PORT…]`), for messages.
    pub store: String,
    /// etcd's gRPC endpoints (`http://HOST:PORT`).
    pub endpoints: Vec<String>,
    /// This host's underlay address: other hosts tunnel to it, and it names this host.
    pub advertise: Ipv4Addr,
    /// Seconds this host's endpoints stay announced after its daemon stops renewing them.
    pub lease_ttl: u32,
}

impl ClusterConfig {
    /// Reads `--cluster-store` (`etcd://HOST:PORT[,HOST:PORT…]`).
    pub fn parse(store: &str, advertise: Ipv4Addr, lease_ttl: u32) -> anyhow::Result<Self> {
        let hosts = store.strip_prefix("etcd://").ok_or_else(|| {
            anyhow::anyhow!("--cluster-store {store}: only etcd://HOST:PORT[,HOST:PORT…] is supported")
        })?;
        let endpoints: Vec<String> = hosts.split(',').map(|h| format!("http://{h}")).collect();
        if hosts.is_empty()
            || hosts.split(',').any(|h| h.rsplit_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_err()))
        {
            anyhow::bail!("--cluster-store {store}: every member needs HOST:PORT");
        }
        Ok(Self { store: store.to_string(), endpoints, advertise, lease_ttl })
    }
}

pub struct Cluster {
    config: ClusterConfig,
    client: Client,
    /// The lease of the session that is up; `None` while etcd is unreachable.
    lease: Mutex<Option<i64>>,
    /// Asks the session to start again (and so to reconcile everything).
    resync: tokio::sync::Notify,
}

impl Cluster {
    /// Makes the client; it connects lazily, so a daemon starts while etcd is down.
    pub async fn new(config: ClusterConfig) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(1))
            // A dead member is found within seconds even on an idle watch.
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(&config.endpoints, Some(options))
            .await
            .map_err(|e| Error::ClusterUnavailable { store: config.store.clone(), reason: e.to_string() })?;
        Ok(Self { config, client, lease: Mutex::new(None), resync: tokio::sync::Notify::new() })
    }

    pub fn advertise(&self) -> Ipv4Addr {
        self.config.advertise
    }

    fn unavailable(&self, reason: impl ToString) -> Error {
        Error::ClusterUnavailable { store: self.config.store.clone(), reason: reason.to_string() }
    }

    /// The session's lease, or the error a command gets while there is none.
    fn lease(&self) -> Result<i64> {
        self.lease.lock().unwrap_or_else(|e| e.into_inner()).ok_or_else(|| self.unavailable("not connected"))
    }

    fn set_lease(&self, lease: Option<i64>) {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = lease;
    }

    /// One request, bounded by [`REQUEST_TIMEOUT`].
    async fn call<T>(&self, request: impl std::future::Future<Output = Result<T, etcd_client::Error>>) -> Result<T> {
        match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.unavailable(e)),
            Err(_) => Err(self.unavailable(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))),
        }
    }

    /// Everything under `prefix`, and the store's revision it was read at.
    async fn list(&self, prefix: &str) -> Result<(View, i64)> {
        let mut client = self.client.clone();
        let response = self.call(client.get(prefix, Some(GetOptions::new().with_prefix()))).await?;
        let mut view = View::default();
        for kv in response.kvs() {
            view.apply(kv.key_str().unwrap_or_default(), Some(kv.value()));
        }
        Ok((view, response.header().map_or(0, |h| h.revision())))
    }

    /// A key's modification revision (0: absent).
    async fn mod_revision(&self, key: &str) -> Result<i64> {
        let mut client = self.client.clone();
        let response = self.call(client.get(key, None)).await?;
        Ok(response.kvs().first().map_or(0, |kv| kv.mod_revision()))
    }

    /// Creates an overlay network: `build` makes it from what the cluster has (other networks,
    /// every member's subnets), checking names and subnets; it is stored only if no network
    /// was created or removed meanwhile (else `build` runs again on the new state).
    pub async fn create_network(&self, build: impl Fn(&View, u32) -> Result<Network>) -> Result<Network> {
        self.lease()?;
        for _ in 0..TXN_ATTEMPTS {
            let revision = self.mod_revision(records::NETWORKS_REV).await?;
            let (view, _) = self.list(records::PREFIX).await?;
            let vni = (FIRST_VNI..).find(|v| !view.networks.values().any(|n| n.vni() == Some(*v))).expect("a free VNI");
            let network = build(&view, vni)?;
            let value = serde_json::to_vec(&network).expect("a network serialises");
            let txn =
                Txn::new().when([Compare::mod_revision(records::NETWORKS_REV, CompareOp::Equal, revision)]).and_then([
                    TxnOp::put(records::network_key(&network.id), value, None),
                    TxnOp::put(records::NETWORKS_REV, network.id.as_bytes(), None),
                ]);
            let mut client = self.client.clone();
            if self.call(client.txn(txn)).await?.succeeded() {
                return Ok(network);
            }
        }
        Err(self.unavailable("too many concurrent network changes"))
    }

    /// Removes an overlay network no host has an address on; `Err(NetworkInUse)` otherwise.
    pub async fn remove_network(&self, network: &Network) -> Result<()> {
        self.lease()?;
        let (network_key, rev_key) = (records::network_key(&network.id), records::ipam_rev_key(&network.id));
        for _ in 0..TXN_ATTEMPTS {
            let networks_rev = self.mod_revision(records::NETWORKS_REV).await?;
            let ipam_rev = self.mod_revision(&rev_key).await?;
            let mut client = self.client.clone();
            let prefix = records::ipam_prefix(&network.id);
            let taken = self.call(client.get(prefix, Some(GetOptions::new().with_prefix().with_count_only()))).await?;
            if taken.count() > 0 {
                return Err(Error::NetworkInUse { name: network.name.clone(), id: network.id.clone() });
            }
            let txn = Txn::new()
                .when([
                    Compare::mod_revision(records::NETWORKS_REV, CompareOp::Equal, networks_rev),
                    Compare::mod_revision(rev_key.as_str(), CompareOp::Equal, ipam_rev),
                ])
                .and_then([
                    TxnOp::delete(network_key.as_str(), None),
                    TxnOp::delete(rev_key.as_str(), None),
                    TxnOp::put(records::NETWORKS_REV, network.id.as_bytes(), None),
                ]);
            if self.call(client.txn(txn)).await?.succeeded() {
                return Ok(());
            }
        }
        Err(self.unavailable("too many concurrent network changes"))
    }

    /// Takes an address on overlay `network` for `endpoint`: `requested`, or the lowest free
    /// one. Unique across the cluster: the key is created only if absent.
    pub async fn reserve(&self, network: &Network, requested: Option<Ipv4Addr>, endpoint: &str) -> Result<Ipv4Addr> {
        self.lease()?;
        let cfg = network.ipam.as_ref().ok_or_else(|| Error::NetworkNotFound(network.name.clone()))?;
        let reservation = Reservation { host: self.config.advertise, endpoint: endpoint.to_string() };
        let value = serde_json::to_vec(&reservation).expect("a reservation serialises");
        for _ in 0..TXN_ATTEMPTS {
            let (view, _) = self.list(&records::ipam_prefix(&network.id)).await?;
            let used = view.reservations.keys().map(|(_, ip)| *ip).collect();
            let ip = ipam::choose_address(network, cfg, requested, &used)?;
            let key = records::ipam_key(&network.id, ip);
            let network_key = records::network_key(&network.id);
            let txn = Txn::new()
                .when([
                    Compare::create_revision(network_key.as_str(), CompareOp::Greater, 0),
                    Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                ])
                .and_then([
                    TxnOp::put(key.as_str(), value.clone(), None),
                    TxnOp::put(records::ipam_rev_key(&network.id), endpoint.as_bytes(), None),
                ]);
            let mut client = self.client.clone();
            if self.call(client.txn(txn)).await?.succeeded() {
                return Ok(ip);
            }
            if self.mod_revision(&network_key).await? == 0 {
                return Err(Error::NetworkNotFound(network.name.clone()));
            }
        }
        Err(self.unavailable("too many concurrent address reservations"))
    }

    /// Gives back `ip` (if `endpoint` of this host still holds it) and withdraws its
    /// announcement. While etcd is unreachable the next session does it.
    pub async fn release(&self, network: &str, ip: Ipv4Addr, endpoint: &str) {
        if self.lease().is_ok() {
            self.or_resync("address release", self.release_now(network, ip, endpoint).await);
        }
    }

    async fn release_now(&self, network: &str, ip: Ipv4Addr, endpoint: &str) -> Result<()> {
        let reservation = Reservation { host: self.config.advertise, endpoint: endpoint.to_string() };
        let key = records::ipam_key(network, ip);
        let txn = Txn::new()
            .when([Compare::value(key.as_str(), CompareOp::Equal, serde_json::to_vec(&reservation).unwrap())])
            .and_then([TxnOp::delete(key.as_str(), None), TxnOp::delete(records::endpoint_key(network, ip), None)]);
        let mut client = self.client.clone();
        self.call(client.txn(txn)).await.map(drop)
    }

    /// Announces a running endpoint under this host's lease. While etcd is unreachable the
    /// next session does it.
    pub async fn announce(&self, announcement: &Announcement) {
        if let Ok(lease) = self.lease() {
            self.or_resync("endpoint announcement", self.announce_now(announcement, lease).await);
        }
    }

    /// Announces this host's own subnets under its lease (they change with its bridge
    /// networks). While etcd is unreachable the next session does it.
    pub async fn announce_member(&self, subnets: Vec<ipnetwork::Ipv4Network>) {
        if let Ok(lease) = self.lease() {
            self.or_resync("host's subnets", self.announce_member_now(subnets, lease).await);
        }
    }

    /// A write that failed now is left to the next session's reconciliation, started at once.
    fn or_resync(&self, what: &str, written: Result<()>) {
        if let Err(e) = written {
            tracing::warn!(what, error = %e, "cluster: not written; resyncing");
            self.resync.notify_one();
        }
    }

    async fn announce_member_now(&self, subnets: Vec<ipnetwork::Ipv4Network>, lease: i64) -> Result<()> {
        let value = serde_json::to_vec(&records::Member { subnets }).expect("a member serialises");
        self.put_leased(records::member_key(self.config.advertise), value, lease).await
    }

    async fn announce_now(&self, a: &Announcement, lease: i64) -> Result<()> {
        let value = serde_json::to_vec(a).expect("an announcement serialises");
        self.put_leased(records::endpoint_key(&a.network, a.ip), value, lease).await
    }

    /// Puts `key` under `lease`: it goes when the lease does.
    async fn put_leased(&self, key: String, value: Vec<u8>, lease: i64) -> Result<()> {
        let mut client = self.client.clone();
        self.call(client.put(key, value, Some(PutOptions::new().with_lease(lease)))).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_store_addresses_are_etcd_members_with_ports() {
        let advertise = Ipv4Addr::new(192, 0, 2, 11);
        let config = ClusterConfig::parse("etcd://192.0.2.1:2379,192.0.2.2:2379", advertise, 10).unwrap();
        assert_eq!(config.endpoints, ["http://192.0.2.1:2379", "http://192.0.2.2:2379"]);
        for bad in ["consul://192.0.2.1:8500", "etcd://", "etcd://192.0.2.1", "etcd://192.0.2.1:x"] {
            assert!(ClusterConfig::parse(bad, advertise, 10).is_err(), "{bad}");
        }
    }
}
