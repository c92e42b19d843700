//! The kernel half of restart recovery (`manager/recovery.rs` decides what is live): what
//! netd made but the store does not know is removed, and the pinned datapath is made to hold
//! exactly the live endpoints.
//!
//! netd recognises its own objects by marks it sets when it creates them, never by address
//! ranges alone: host veth names (`nd` + 12 hex digits), the rtnetlink protocol of its routes
//! (`netlink::ROUTE_PROTOCOL`), the label of its gateway addresses on `lo`
//! (`plumbing::GATEWAY_LABEL`), and its own netns and pin directories.
use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use netlink_packet_route::link::InfoKind;

use crate::{
    datapath::DatapathEndpoint,
    error::Error,
    model::{Container, Network},
    netlink::Netlink,
    netns,
    plumbing::{self, Plumber},
};

/// Removes netd's kernel objects that `networks` and `containers` do not account for, and
/// makes the pinned datapath hold exactly `live`. Keeps going after an error and returns
/// every one: a leftover that cannot be removed does not stop the daemon.
pub async fn remove_leftovers(
    plumber: &Plumber,
    networks: &[Network],
    containers: &[Container],
    live: &[DatapathEndpoint],
) -> Vec<Error> {
    let mut errors = Vec::new();
    let host = plumber.host();
    errors.extend(plumber.datapath().keep_exactly(live).err());
    // Veths made before netd masqueraded lack per-device forwarding (the route lookup needs it).
    for ep in live {
        errors.extend(host.enable_ipv4_forwarding(&ep.host_ifname).await.err());
    }
    remove_stale_veths(host, networks, containers, &mut errors).await;
    remove_stale_netns(plumber.netns_dir(), containers, &mut errors);
    // Namespaces a previous daemon made ahead: no container has one.
    remove_stale_netns(plumber.ready_netns_dir(), &[], &mut errors);
    remove_stale_gateways(host, networks, &mut errors).await;
    remove_stale_routes(host, networks, live, &mut errors).await;
    errors
}

/// Host-side veths named like netd's that belong to no endpoint in the store.
/// Docker's endpoints (in the networks it owns) are known too: their peers may be in sandboxes
/// netd never sees, or back in this netns under their `SrcName` after a Leave.
async fn remove_stale_veths(host: &Netlink, networks: &[Network], containers: &[Container], errors: &mut Vec<Error>) {
    let docker = networks.iter().flat_map(|n| n.docker_endpoints()).map(|d| &d.endpoint);
    let known: BTreeSet<String> =
        containers.iter().flat_map(|c| &c.endpoints).chain(docker).map(|ep| plumbing::host_ifname(&ep.id)).collect();
    let veths = match host.link_names_of_kind(InfoKind::Veth).await {
        Ok(v) => v,
        Err(e) => return errors.push(e),
    };
    for name in veths.into_iter().filter(|n| plumbing::is_host_ifname(n) && !known.contains(n)) {
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
    let addrs = match host.labelled_addresses(plumbing::LOOPBACK_INDEX, plumbing::GATEWAY_LABEL).await {
        Ok(a) => a,
        Err(e) => return errors.push(e),
    };
    for (ip, prefix) in addrs.into_iter().filter(|(ip, _)| !known.contains(ip)) {
        tracing::info!(address = %ip, "removing stale gateway address");
        if let Err(e) =
            host.delete_labelled_address(plumbing::LOOPBACK_INDEX, ip, prefix, plumbing::GATEWAY_LABEL).await
        {
            errors.push(e);
        }
    }
}

/// netd's routes (by protocol) that are neither the `unreachable` route of a known network's
/// subnet nor the /32 route of a live endpoint through its veth.
async fn remove_stale_routes(host: &Netlink, networks: &[Network], live: &[DatapathEndpoint], errors: &mut Vec<Error>) {
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
    use crate::plumbing::{host_ifname, is_host_ifname};

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
