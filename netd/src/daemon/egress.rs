//! The daemon's side of egress: keeps the datapath's uplinks (their ingress programs and
//! masquerade addresses) and the host's addresses (the socket-LB's "is this the host?") in
//! step with the host, and collects conntrack/NAT garbage.
use std::{sync::Arc, time::Duration};

use crate::{
    datapath::{Datapath, Uplink},
    error::{Error, Result},
    netlink::Netlink,
};

/// How often uplink addresses are re-read (an address change is picked up this late).
const UPLINK_REFRESH: Duration = Duration::from_secs(2);
/// How often expired flows are collected. The LRU maps make room by themselves in between.
const GC_INTERVAL: Duration = Duration::from_secs(10);

/// The uplinks `names` as they are now; a name that does not exist is an error.
pub async fn resolve(host: &Netlink, names: &[String]) -> Result<Vec<Uplink>> {
    let mut uplinks = Vec::with_capacity(names.len());
    for name in names {
        match host.uplink(name).await? {
            Some(uplink) => uplinks.push(uplink),
            None => return Err(Error::InvalidArgument(format!("uplink {name} not found"))),
        }
    }
    Ok(uplinks)
}

/// Attaches the uplinks' programs before the daemon serves (a missing uplink stops it), then
/// keeps them current and collects garbage for as long as the daemon runs. A poke of
/// `addresses_changed` (netd added or removed a gateway) refreshes at once.
pub async fn start(
    host: Netlink,
    names: Vec<String>,
    datapath: Arc<dyn Datapath>,
    addresses_changed: Arc<tokio::sync::Notify>,
) -> Result<tokio::task::JoinHandle<()>> {
    let uplinks = resolve(&host, &names).await?;
    for uplink in &uplinks {
        if uplink.nat_addr.is_none() {
            tracing::warn!(uplink = %uplink.ifname, "uplink has no IPv4 address: nothing is masqueraded through it");
        }
    }
    datapath.set_uplinks(&uplinks)?;
    tracing::info!(?uplinks, "uplinks attached");
    let addrs = host.ipv4_addresses().await?;
    datapath.set_host_addresses(&addrs)?;
    Ok(tokio::spawn(maintain(host, names, uplinks, addrs, datapath, addresses_changed)))
}

async fn maintain(
    host: Netlink,
    names: Vec<String>,
    mut current: Vec<Uplink>,
    mut addrs: Vec<std::net::Ipv4Addr>,
    datapath: Arc<dyn Datapath>,
    addresses_changed: Arc<tokio::sync::Notify>,
) {
    let mut refresh = tokio::time::interval(UPLINK_REFRESH);
    let mut gc = tokio::time::interval(GC_INTERVAL);
    loop {
        tokio::select! {
            // A new network's gateway is a host address for the wildcard publishes and the
            // uplink's source check from now, not from the next tick.
            _ = async { tokio::select! { _ = refresh.tick() => {}, _ = addresses_changed.notified() => {} } } => {
                match host.ipv4_addresses().await {
                    Ok(now) if now != addrs => match datapath.set_host_addresses(&now) {
                        Ok(()) => addrs = now,
                        Err(e) => tracing::warn!(error = %e, "cannot update host addresses"),
                    },
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read host addresses"),
                }
                let mut now = Vec::with_capacity(names.len());
                for name in &names {
                    match host.uplink(name).await {
                        Ok(Some(uplink)) => now.push(uplink),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(uplink = %name, error = %e, "cannot read uplink"),
                    }
                }
                if now != current {
                    match datapath.set_uplinks(&now) {
                        Ok(()) => {
                            tracing::info!(uplinks = ?now, "uplinks changed");
                            current = now;
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot update uplinks"),
                    }
                }
            }
            _ = gc.tick() => {
                let datapath = datapath.clone();
                match tokio::task::spawn_blocking(move || datapath.collect_garbage()).await {
                    Ok(Ok(report)) if report != Default::default() => tracing::debug!(?report, "flow garbage collected"),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "flow garbage collection failed"),
                    Err(e) => tracing::warn!(error = %e, "flow garbage collection panicked"),
                }
            }
        }
    }
}
