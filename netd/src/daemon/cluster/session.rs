//! The daemon's session with etcd: a lease kept alive, this host's endpoints announced under
//! it, and a watch of everything under `/netd/v1/` applied to the manager.
//!
//! Every session starts by reconciling (as after a restart, or after etcd was unreachable):
//! addresses this host holds in etcd but no longer uses are released, those it uses are
//! held, its endpoints are announced again and stale announcements withdrawn; then the whole
//! view is applied, and from then on each watch event. When anything fails the session ends
//! and a new one starts (after a pause): the datapath keeps what it has meanwhile, so traffic
//! between existing endpoints goes on while etcd is away.
use std::{collections::BTreeSet, future::Future, net::Ipv4Addr, sync::Arc, time::Duration};

use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp, WatchOptions};
use ipnetwork::Ipv4Network;

use super::{
    records::{self, Announcement, Reservation, View},
    Cluster,
};
use crate::error::Result;

/// What the session needs of the manager.
pub trait ClusterSink: Send + Sync + 'static {
    /// This host's running endpoints on overlay networks, with their reservations' endpoint
    /// ids. Waits for commands in progress (it takes the manager's lock).
    fn local_announcements(&self) -> impl Future<Output = Vec<Announcement>> + Send;
    /// Subnets of this host's own networks and routes (overlays must avoid them).
    fn local_subnets(&self) -> impl Future<Output = Vec<Ipv4Network>> + Send;
    /// Makes the host's overlay networks, tunnel maps and names follow `view`; `full`: a new
    /// session, whatever the datapath holds is rebuilt.
    fn apply_view(&self, view: &View, full: bool) -> impl Future<Output = ()> + Send;
}

/// Pause between sessions.
const RETRY: Duration = Duration::from_secs(1);

/// Runs sessions for as long as the daemon runs.
pub async fn run<S: ClusterSink>(cluster: Arc<Cluster>, sink: Arc<S>) {
    loop {
        let error = session(&cluster, &*sink).await.err();
        cluster.set_lease(None);
        if let Some(e) = error {
            tracing::warn!(error = %e, "cluster session ended; starting again");
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn session<S: ClusterSink>(cluster: &Cluster, sink: &S) -> Result<()> {
    let mut client = cluster.client.clone();
    let ttl = i64::from(cluster.config.lease_ttl);
    let lease = cluster.call(client.lease_grant(ttl, None)).await?.id();
    let (mut keeper, mut keepalives) = cluster.call(client.lease_keep_alive(lease)).await?;
    // The view first, then the local endpoints: a reservation made in between is not in the
    // view, so it cannot be taken for a leftover below.
    let (mut view, revision) = cluster.list(records::PREFIX).await?;
    let local = sink.local_announcements().await;
    reconcile(cluster, &view, &local, lease).await?;
    cluster.announce_member_now(sink.local_subnets().await, lease).await?;
    cluster.set_lease(Some(lease));
    tracing::info!(lease, members = view.members.len() + 1, "cluster session up");
    sink.apply_view(&view, true).await;

    let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
    let (_watcher, mut events) = cluster.call(client.watch(records::PREFIX, Some(options))).await?;
    let mut renew = tokio::time::interval(Duration::from_secs((ttl as u64 / 3).max(1)));
    loop {
        tokio::select! {
            _ = renew.tick() => cluster.call(keeper.keep_alive()).await?,
            answer = keepalives.message() => {
                let answer = answer.map_err(|e| cluster.unavailable(e))?;
                if answer.is_none_or(|a| a.ttl() <= 0) {
                    return Err(cluster.unavailable("the lease expired"));
                }
            }
            message = events.message() => {
                let message = message.map_err(|e| cluster.unavailable(e))?.ok_or_else(|| cluster.unavailable("watch closed"))?;
                if message.canceled() {
                    return Err(cluster.unavailable(format!("watch cancelled: {}", message.cancel_reason())));
                }
                for event in message.events() {
                    let Some(kv) = event.kv() else { continue };
                    let value = (event.event_type() == EventType::Put).then(|| kv.value());
                    view.apply(kv.key_str().unwrap_or_default(), value);
                }
                sink.apply_view(&view, false).await;
            }
            _ = cluster.resync.notified() => return Err(cluster.unavailable("resync asked for")),
        }
    }
}

/// Makes etcd hold exactly this host's endpoints: each reserved and announced under `lease`,
/// and nothing else of this host's.
async fn reconcile(cluster: &Cluster, view: &View, local: &[Announcement], lease: i64) -> Result<()> {
    let me = cluster.config.advertise;
    let mine: BTreeSet<(String, Ipv4Addr)> = local.iter().map(|a| (a.network.clone(), a.ip)).collect();
    let mut client = cluster.client.clone();
    for ((network, ip), reservation) in &view.reservations {
        if reservation.host == me && !mine.contains(&(network.clone(), *ip)) {
            cluster.release_now(network, *ip, &reservation.endpoint).await?;
        }
    }
    for ((network, ip), a) in &view.endpoints {
        if a.host == me && !mine.contains(&(network.clone(), *ip)) {
            cluster.call(client.delete(records::endpoint_key(network, *ip), None)).await?;
        }
    }
    for a in local {
        let held = view.reservations.get(&(a.network.clone(), a.ip));
        let reservation = Reservation { host: me, endpoint: a.endpoint.clone() };
        match held {
            Some(r) if *r == reservation => {}
            Some(r) => {
                tracing::error!(ip = %a.ip, holder = %r.host, "cluster: an address of this host's is held by another host")
            }
            None => {
                // Released while this host was away (etcd's data lost): take it again if free.
                let key = records::ipam_key(&a.network, a.ip);
                let txn = Txn::new()
                    .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.as_str(), serde_json::to_vec(&reservation).unwrap(), None)]);
                cluster.call(client.txn(txn)).await?;
            }
        }
        cluster.announce_now(a, lease).await?;
    }
    Ok(())
}
