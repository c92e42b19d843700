//! Restart recovery (DESIGN §2): a restarted daemon makes the kernel match its store.
//!
//! What the store knows is adopted in place, so container traffic never stops: veths, routes
//! and pinned tcx links stay, map entries are rewritten with the same values, and only the
//! program behind each pinned link is swapped (atomically). An endpoint whose netns or veth
//! vanished while the daemon was down is logged and left out of the datapath; its container
//! stays in the store until `rm`.
//!
//! What netd made but the store does not know is removed. netd recognises its own objects by
//! marks it sets when it creates them, never by address ranges alone: host veth names (`nd` +
//! 12 hex digits), the rtnetlink protocol of its routes (`netlink::ROUTE_PROTOCOL`), the label
//! of its gateway addresses on `lo` (`endpoint::GATEWAY_LABEL`), and its own netns and pin
//! directories.
use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use netlink_packet_route::link::InfoKind;

use crate::{
    datapath::EndpointEntry,
    endpoint::{self, Plumber},
    error::{Error, Result},
    model::{Container, Network},
    netlink::Netlink,
    netns,
};

/// Reconciles the host netns, the container netns mounts and the pinned datapath with
/// `networks` and `containers`. Keeps going after an error: each one is logged, and a
/// leftover that cannot be removed does not stop the daemon.
pub async fn run(plumber: &Plumber, networks: &[Network], containers: &[Container]) -> Result<()> {
    let host = Netlink::open()?;
    let mut errors = Vec::new();
    for ipam in networks.iter().filter_map(|n| n.ipam.as_ref()) {
        if let Err(e) = plumber.add_gateway(ipam).await {
            errors.push(e);
        }
    }
    let live = live_endpoints(plumber, &host, networks, containers, &mut errors).await;
    if let Err(e) = plumber.datapath().reconcile(&live) {
        errors.push(e);
    }
    remove_stale_veths(&host, containers, &mut errors).await;
    remove_stale_netns(plumber.netns_dir(), containers, &mut errors);
    remove_stale_gateways(&host, networks, &mut errors).await;
    remove_stale_routes(&host, networks, &live, &mut errors).await;
    for e in &errors {
        tracing::warn!(error = %e, "reconcile");
    }
    Ok(())
}

/// The datapath entries of the endpoints whose netns and host veth both still exist. A veth
/// whose container netns is gone can no longer be managed: it is deleted.
async fn live_endpoints(
    plumber: &Plumber,
    host: &Netlink,
    networks: &[Network],
    containers: &[Container],
    errors: &mut Vec<Error>,
) -> Vec<EndpointEntry> {
    let mut live = Vec::new();
    for c in containers {
        let netns_alive = c.netns.as_deref().is_some_and(|p| netns::is_netns_mount(Path::new(p)));
        for ep in &c.endpoints {
            let index = networks.iter().find(|n| n.id == ep.network).map(|n| n.index).unwrap_or(0);
            let entry = match plumber.existing_entry(ep, index).await {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            match entry {
                Some(entry) if netns_alive => {
                    // The /32 route may have been removed by hand; adding it again is a no-op
                    // when it is there.
                    if let Err(e) = host.add_host_route(ep.ip, entry.host_ifindex, ep.gateway).await {
                        errors.push(e);
                    }
                    live.push(entry);
                }
                Some(entry) => {
                    tracing::warn!(container = %c.name, endpoint = %ep.id, "container netns is gone; leaving it out");
                    if let Err(e) = host.delete_link(&entry.host_ifname).await {
                        errors.push(e);
                    }
                }
                None => {
                    tracing::warn!(container = %c.name, endpoint = %ep.id, "endpoint's veth is gone; leaving it out")
                }
            }
        }
    }
    live
}

/// Host-side veths named like netd's that belong to no endpoint in the store.
async fn remove_stale_veths(host: &Netlink, containers: &[Container], errors: &mut Vec<Error>) {
    let known: BTreeSet<String> =
        containers.iter().flat_map(|c| &c.endpoints).map(|ep| endpoint::host_ifname(&ep.id)).collect();
    let veths = match host.link_names_of_kind(InfoKind::Veth).await {
        Ok(v) => v,
        Err(e) => return errors.push(e),
    };
    for name in veths.into_iter().filter(|n| endpoint::is_host_ifname(n) && !known.contains(n)) {
        tracing::info!(veth = %name, "removing stale veth");
        if let Err(e) = host.delete_link(&name).await {
            errors.push(e);
        }
    }
}

/// Netns mounts under `<run-dir>/netns` that no container in the store uses.
fn remove_stale_netns(dir: &Path, containers: &[Container], errors: &mut Vec<Error>) {
    let known: BTreeSet<PathBuf> = containers.iter().filter_map(|c| c.netns.as_ref().map(PathBuf::from)).collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|e| e.path()).filter(|p| !known.contains(p)) {
        tracing::info!(netns = %path.display(), "removing stale netns");
        if let Err(e) = netns::remove(&path) {
            errors.push(e);
        }
    }
}

/// Gateway addresses (by netd's label on `lo`) of networks the store does not have.
async fn remove_stale_gateways(host: &Netlink, networks: &[Network], errors: &mut Vec<Error>) {
    let known: BTreeSet<Ipv4Addr> = networks.iter().filter_map(|n| n.ipam.as_ref().map(|i| i.gateway)).collect();
    let addrs = match host.labelled_addresses(endpoint::LOOPBACK_INDEX, endpoint::GATEWAY_LABEL).await {
        Ok(a) => a,
        Err(e) => return errors.push(e),
    };
    for (ip, prefix) in addrs.into_iter().filter(|(ip, _)| !known.contains(ip)) {
        tracing::info!(address = %ip, "removing stale gateway address");
        if let Err(e) = host.delete_labelled_address(endpoint::LOOPBACK_INDEX, ip, prefix, endpoint::GATEWAY_LABEL).await {
            errors.push(e);
        }
    }
}

/// netd's routes (by protocol) that are neither the `unreachable` route of a known network's
/// subnet nor the /32 route of a live endpoint through its veth.
async fn remove_stale_routes(host: &Netlink, networks: &[Network], live: &[EndpointEntry], errors: &mut Vec<Error>) {
    let subnets: BTreeSet<_> = networks.iter().filter_map(|n| n.ipam.as_ref().map(|i| i.subnet)).collect();
    let routes = match host.own_routes().await {
        Ok(r) => r,
        Err(e) => return errors.push(e),
    };
    for route in routes {
        let known = if route.unreachable {
            subnets.contains(&route.destination)
        } else {
            route.destination.prefix() == 32
                && live.iter().any(|ep| ep.ip == route.destination.ip() && Some(ep.host_ifindex) == route.oif)
        };
        if !known {
            tracing::info!(route = %route.destination, "removing stale route");
            if let Err(e) = host.delete_own_route(route).await {
                errors.push(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::endpoint::{host_ifname, is_host_ifname};

    #[test]
    fn only_names_shaped_like_netd_host_veths_count_as_netd_veths() {
        assert!(is_host_ifname(&host_ifname(&crate::model::new_id())));
        for other in
            ["nd", "nd0123456789a", "nd0123456789abc", "ndNOTANENDPOINT", "nd0123456789AB", "eth0", "vnd0123456789a"]
        {
            assert!(!is_host_ifname(other), "{other}");
        }
    }
}
