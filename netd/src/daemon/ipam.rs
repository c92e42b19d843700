//! IP address management, Docker's way: user networks take the next free /16 from
//! 172.18.0.0/16, 172.19.0.0/16, ..., each search starting after the pool the last one took
//! (measured on Docker 20.10: a pool freed by `network rm` is not taken again until the
//! search wraps around); addresses are handed out in order from the ip-range (or
//! the subnet), skipping the gateway; the gateway is the first address unless given. No
//! network takes the host's own addresses or routes (`host.rs`).
use std::{collections::BTreeSet, net::Ipv4Addr};

use ipnetwork::Ipv4Network;

use crate::{error::Error, model::IpamConfig};

pub mod host;

use host::{HostAddressing, RouteRule};

/// Docker's default bridge network.
pub const DEFAULT_BRIDGE_SUBNET: &str = "172.17.0.0/16";

/// Candidate pools for automatic subnets, in Docker's order: 172.17–31/16 then 192.168.x/20.
fn candidate_pools() -> impl Iterator<Item = Ipv4Network> {
    let b = (17u8..=31).map(|second| Ipv4Network::new(Ipv4Addr::new(172, second, 0, 0), 16).unwrap());
    let c = (0u16..16).map(|i| Ipv4Network::new(Ipv4Addr::new(192, 168, (i * 16) as u8, 0), 20).unwrap());
    b.chain(c)
}

pub fn overlaps(a: &Ipv4Network, b: &Ipv4Network) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

/// The first candidate pool, searching from `from` and wrapping around, that overlaps none of
/// `networks` (the other networks' subnets) and takes nothing of the host's: no route
/// (default and fence routes aside) and no address, its gateway included.
pub fn pick_subnet(networks: &[Ipv4Network], host: &HostAddressing, from: Ipv4Network) -> Result<Ipv4Network, Error> {
    let start = candidate_pools().position(|pool| pool == from).unwrap_or(0);
    first_free(candidate_pools().skip(start).chain(candidate_pools().take(start)), networks, host)
}

/// Overlay networks' automatic subnets: the first free /24 of 10.0.0.0/8, as Docker's
/// default address pool for overlays. `networks`: every subnet in use on any member host.
pub fn pick_overlay_subnet(networks: &[Ipv4Network], host: &HostAddressing) -> Result<Ipv4Network, Error> {
    let pools = (0u32..1 << 16).map(|i| Ipv4Network::new(Ipv4Addr::from((10 << 24) | (i << 8)), 24).unwrap());
    first_free(pools, networks, host)
}

fn first_free(
    mut pools: impl Iterator<Item = Ipv4Network>,
    networks: &[Ipv4Network],
    host: &HostAddressing,
) -> Result<Ipv4Network, Error> {
    pools
        .find(|pool| {
            let cfg = IpamConfig { subnet: *pool, gateway: first_host(pool), ip_range: None, user_subnet: false };
            !networks.iter().any(|n| overlaps(pool, n))
                && host::check_reserved(*pool).is_ok()
                && host::check_host(&cfg, host, RouteRule::Pool).is_ok()
        })
        .ok_or(Error::PoolsExhausted)
}

/// The default `bridge` network's config: 172.17.0.0/16 unless that is taken (see
/// [`pick_subnet`]), then the next free pool.
pub fn default_bridge(networks: &[Ipv4Network], host: &HostAddressing) -> Result<IpamConfig, Error> {
    let subnet = pick_subnet(networks, host, DEFAULT_BRIDGE_SUBNET.parse().unwrap())?;
    configure(Some(&subnet.to_string()), None, None, networks, host, first_user_pool())
}

/// Where the search for the first user-defined network's pool starts.
pub fn first_user_pool() -> Ipv4Network {
    "172.18.0.0/16".parse().unwrap()
}

/// Where the next search starts once `pool` was taken: the candidate after it (wrapping).
pub fn pool_after(pool: Ipv4Network) -> Ipv4Network {
    candidate_pools().skip_while(|p| *p != pool).nth(1).unwrap_or_else(|| candidate_pools().next().unwrap())
}

/// Builds a network's IPAM config from the user's flags; `networks` are the subnets of the
/// other networks, `host` the host's addresses and routes (see `host.rs`), `next_pool` where
/// the search for an automatic subnet starts ([`pool_after`] the last one taken).
pub fn configure(
    subnet: Option<&str>,
    ip_range: Option<&str>,
    gateway: Option<&str>,
    networks: &[Ipv4Network],
    host: &HostAddressing,
    next_pool: Ipv4Network,
) -> Result<IpamConfig, Error> {
    configure_with(subnet, ip_range, gateway, networks, host, || pick_subnet(networks, host, next_pool))
}

/// [`configure`] for an overlay network: an automatic subnet is a /24 of 10.0.0.0/8.
pub fn configure_overlay(
    subnet: Option<&str>,
    ip_range: Option<&str>,
    gateway: Option<&str>,
    networks: &[Ipv4Network],
    host: &HostAddressing,
) -> Result<IpamConfig, Error> {
    configure_with(subnet, ip_range, gateway, networks, host, || pick_overlay_subnet(networks, host))
}

fn configure_with(
    subnet: Option<&str>,
    ip_range: Option<&str>,
    gateway: Option<&str>,
    networks: &[Ipv4Network],
    host: &HostAddressing,
    pick: impl FnOnce() -> Result<Ipv4Network, Error>,
) -> Result<IpamConfig, Error> {
    let user_subnet = subnet.is_some();
    check_flags(subnet.as_slice(), ip_range.as_slice(), gateway.as_slice())?;
    let (subnet, rule) = match subnet {
        Some(s) => {
            let net = parse_subnet(s)?;
            host::check_reserved(net)?;
            if networks.iter().any(|t| overlaps(&net, t)) {
                return Err(Error::PoolOverlap);
            }
            (net, RouteRule::Explicit)
        }
        None => (pick()?, RouteRule::Pool),
    };
    // A range may be wider than the subnet (as in Docker): addresses come from both.
    let ip_range = match ip_range {
        Some(r) => Some(r.parse::<Ipv4Network>().map_err(|_| Error::InvalidCidr(r.into()))?),
        None => None,
    };
    let ip_range = ip_range.map(|r| Ipv4Network::new(r.network(), r.prefix()).expect("a parsed prefix is valid"));
    let gateway = match gateway {
        Some(g) if g.contains('/') => return Err(Error::InvalidGateway(g.into())),
        Some(g) => {
            let ip: Ipv4Addr = g.parse().map_err(|_| Error::GatewayNotInSubnet(g.into()))?;
            if ip == subnet.network() || ip == subnet.broadcast() {
                return Err(Error::GatewayUnavailable(ip));
            }
            ip
        }
        None => first_host(&subnet),
    };
    let cfg = IpamConfig { subnet, gateway, ip_range, user_subnet };
    host::check_host(&cfg, host, rule)?;
    Ok(cfg)
}

/// Docker's CLI checks of `--subnet`, `--ip-range` and `--gateway` before it asks its daemon
/// (`consolidateIpam`), with its texts and in its order: every range and gateway needs a
/// subnet that contains it (its address as written), at most one of each per subnet, and
/// subnets must not overlap. The CLI runs them first; the daemon again for other clients.
pub fn check_flags(subnets: &[&str], ranges: &[&str], gateways: &[&str]) -> Result<(), Error> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err(Error::NoSubnetForRangeOrGateway);
    }
    // Go's `subnetMatches`: does `subnet` contain the address of `data` (a CIDR or an IP)?
    let matches = |subnet: &str, data: &str| -> Result<bool, Error> {
        let net: Ipv4Network = subnet
            .parse()
            .map_err(|_| Error::InvalidArgument(format!("invalid subnet: invalid CIDR address: {subnet}")))?;
        let net = Ipv4Network::new(net.network(), net.prefix()).expect("a parsed prefix is valid");
        Ok(match data.split_once('/') {
            Some(_) => net.contains(data.parse::<Ipv4Network>().map_err(|_| Error::InvalidCidr(data.into()))?.ip()),
            None => data.parse::<Ipv4Addr>().is_ok_and(|ip| net.contains(ip)),
        })
    };
    for (i, s) in subnets.iter().enumerate() {
        for k in &subnets[..i] {
            if matches(s, k)? || matches(k, s)? {
                return Err(Error::InvalidArgument(
                    "multiple overlapping subnet configuration is not supported".into(),
                ));
            }
        }
    }
    for (items, what) in [(ranges, "range"), (gateways, "gateway")] {
        let mut taken: Vec<Option<&str>> = vec![None; subnets.len()];
        for item in items {
            let mut found = false;
            for (i, s) in subnets.iter().enumerate() {
                if !matches(s, item)? {
                    continue;
                }
                if let Some(before) = taken[i] {
                    return Err(Error::InvalidArgument(match what {
                        "range" => {
                            format!("cannot configure multiple ranges ({item}, {before}) on the same subnet ({s})")
                        }
                        _ => format!("cannot configure multiple gateways ({item}, {before}) for the same subnet ({s})"),
                    }));
                }
                taken[i] = Some(item);
                found = true;
            }
            if !found {
                return Err(match what {
                    "range" => Error::IpRangeNotInSubnet(item.to_string()),
                    _ => Error::GatewayNotInSubnet(item.to_string()),
                });
            }
        }
    }
    Ok(())
}

/// Parses a CIDR and normalises it to its network address, like Docker does.
pub fn parse_subnet(s: &str) -> Result<Ipv4Network, Error> {
    // A CIDR needs its prefix length (Go's `net.ParseCIDR`).
    let net: Ipv4Network = s.parse().ok().filter(|_| s.contains('/')).ok_or_else(|| Error::InvalidSubnet(s.into()))?;
    if net.prefix() > 30 {
        return Err(Error::SubnetTooSmall(s.into()));
    }
    Ipv4Network::new(net.network(), net.prefix()).map_err(|_| Error::InvalidSubnet(s.into()))
}

fn first_host(net: &Ipv4Network) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

/// The next free address, in order from the start of the ip-range (or subnet); `None` when
/// the pool is exhausted. Released addresses are reused first (lowest free wins).
pub fn next_address(cfg: &IpamConfig, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let pool = cfg.ip_range.unwrap_or(cfg.subnet);
    pool.iter().find(|ip| usable(cfg, *ip) && !used.contains(ip))
}

/// The address of a new endpoint on `network` (whose config is `cfg`): `requested` if it may
/// be taken ([`check_requested`]), else the next free one ([`next_address`]).
pub fn choose_address(
    network: &crate::model::Network,
    cfg: &IpamConfig,
    requested: Option<Ipv4Addr>,
    used: &BTreeSet<Ipv4Addr>,
) -> Result<Ipv4Addr, Error> {
    match requested {
        Some(ip) => check_requested(cfg, ip, used).map(|()| ip),
        None => next_address(cfg, used)
            .ok_or_else(|| Error::NoAddresses { name: network.name.clone(), id: network.id.clone() }),
    }
}

/// Checks a requested `--ip`: it must lie in the subnet (anywhere, not only in the ip-range,
/// as in Docker) and be free; the gateway, network and broadcast addresses are never free.
pub fn check_requested(cfg: &IpamConfig, ip: Ipv4Addr, used: &BTreeSet<Ipv4Addr>) -> Result<(), Error> {
    if !cfg.subnet.contains(ip) {
        return Err(Error::AddressOutsideSubnet(ip));
    }
    if !usable(cfg, ip) || used.contains(&ip) {
        return Err(Error::AddressInUse(ip));
    }
    Ok(())
}

fn usable(cfg: &IpamConfig, ip: Ipv4Addr) -> bool {
    cfg.subnet.contains(ip) && ip != cfg.subnet.network() && ip != cfg.subnet.broadcast() && ip != cfg.gateway
}

/// Docker's MAC: 02:42 followed by the four bytes of the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Network {
        s.parse().unwrap()
    }

    fn no_host() -> HostAddressing {
        HostAddressing::default()
    }

    #[test]
    fn automatic_subnets_follow_dockers_order_and_skip_overlaps() {
        let cfg = configure(None, None, None, &[net("172.17.0.0/16")], &no_host(), first_user_pool()).unwrap();
        assert_eq!(cfg.subnet, net("172.18.0.0/16"));
        assert_eq!(cfg.gateway, Ipv4Addr::new(172, 18, 0, 1));
        let taken = [net("172.17.0.0/16"), net("172.18.0.0/16"), net("172.19.5.0/24")];
        assert_eq!(
            configure(None, None, None, &taken, &no_host(), first_user_pool()).unwrap().subnet,
            net("172.20.0.0/16")
        );
    }

    #[test]
    fn explicit_subnet_is_validated() {
        assert!(matches!(
            configure(Some("172.28.0.0/33"), None, None, &[], &no_host(), first_user_pool()),
            Err(Error::InvalidSubnet(_))
        ));
        assert!(matches!(
            configure(Some("nonsense"), None, None, &[], &no_host(), first_user_pool()),
            Err(Error::InvalidSubnet(_))
        ));
        assert!(matches!(
            configure(Some("172.28.0.0/16"), None, None, &[net("172.28.5.0/24")], &no_host(), first_user_pool()),
            Err(Error::PoolOverlap)
        ));
        assert!(matches!(
            configure(Some("172.28.0.0/31"), None, None, &[], &no_host(), first_user_pool()),
            Err(Error::SubnetTooSmall(_))
        ));
        // Docker's texts, measured on Docker 20.10.24.
        let text = |s: Option<&str>, r: Option<&str>, g: Option<&str>| {
            configure(s, r, g, &[], &no_host(), first_user_pool()).map(|_| ()).unwrap_err().to_string()
        };
        let s = Some("172.28.0.0/16");
        assert_eq!(
            text(Some("300.1.0.0/16"), None, None),
            "Invalid subnet 300.1.0.0/16 : invalid CIDR address: 300.1.0.0/16"
        );
        assert_eq!(text(s, None, Some("172.29.0.1")), "no matching subnet for gateway 172.29.0.1");
        assert_eq!(text(s, None, Some("abc")), "no matching subnet for gateway abc");
        assert_eq!(text(s, Some("172.29.5.0/24"), None), "no matching subnet for range 172.29.5.0/24");
        assert_eq!(text(s, Some("172.28.1.0/33"), None), "invalid CIDR address: 172.28.1.0/33");
        assert_eq!(text(None, None, Some("172.28.0.1")), "every ip-range or gateway must have a corresponding subnet");
        assert_eq!(
            text(None, Some("172.28.0.0/24"), None),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(text(Some("abc"), None, Some("1.2.3.4")), "invalid subnet: invalid CIDR address: abc");
        assert_eq!(
            text(s, None, Some("172.28.0.0")),
            "failed to allocate gateway (172.28.0.0): Address already in use"
        );
        assert_eq!(
            text(s, None, Some("172.28.255.255")),
            "failed to allocate gateway (172.28.255.255): Address already in use"
        );
        assert_eq!(text(s, None, Some("172.28.0.1/24")), "invalid gateway address 172.28.0.1/24 in Ipam configuration");
        assert_eq!(
            text(Some("10.0.0.0/32"), None, None),
            "failed to allocate gateway (): No available addresses on this pool"
        );
        let flags = |s: &[&str], r: &[&str], g: &[&str]| check_flags(s, r, g).unwrap_err().to_string();
        assert_eq!(
            flags(&["10.87.0.0/16", "10.88.0.0/16"], &[], &["10.87.0.2", "10.87.0.1"]),
            "cannot configure multiple gateways (10.87.0.1, 10.87.0.2) for the same subnet (10.87.0.0/16)"
        );
        assert_eq!(
            flags(&["10.86.0.0/16"], &["10.86.0.0/24", "10.86.1.0/24"], &[]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            flags(&["10.89.0.0/16", "10.89.1.0/24"], &[], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(flags(&["10.89.0.0/16", "abc"], &[], &[]), "invalid subnet: invalid CIDR address: abc");
        // A range wider than its subnet, or with host bits, is taken as Docker takes it.
        let cfg =
            configure(Some("10.81.0.0/24"), Some("10.81.0.0/23"), None, &[], &no_host(), first_user_pool()).unwrap();
        assert_eq!(cfg.ip_range, Some(net("10.81.0.0/23")));
        let cfg = configure(
            Some("172.28.0.0/16"),
            Some("172.28.5.0/24"),
            Some("172.28.5.254"),
            &[],
            &no_host(),
            first_user_pool(),
        )
        .unwrap();
        assert_eq!(cfg.gateway, Ipv4Addr::new(172, 28, 5, 254));
        assert_eq!(cfg.ip_range, Some(net("172.28.5.0/24")));
    }

    #[test]
    fn addresses_are_given_in_order_and_reused() {
        let cfg = configure(Some("10.5.0.0/29"), None, None, &[], &no_host(), first_user_pool()).unwrap();
        let mut used = BTreeSet::new();
        let mut got = vec![];
        while let Some(ip) = next_address(&cfg, &used) {
            used.insert(ip);
            got.push(ip.to_string());
        }
        assert_eq!(got, ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]);
        assert_eq!(next_address(&cfg, &used), None);
        used.remove(&Ipv4Addr::new(10, 5, 0, 3));
        assert_eq!(next_address(&cfg, &used), Some(Ipv4Addr::new(10, 5, 0, 3)));
    }

    #[test]
    fn ip_range_starts_allocation() {
        let cfg =
            configure(Some("172.28.0.0/16"), Some("172.28.5.0/24"), None, &[], &no_host(), first_user_pool()).unwrap();
        assert_eq!(next_address(&cfg, &BTreeSet::new()), Some(Ipv4Addr::new(172, 28, 5, 0)));
        // The gateway stays the subnet's first address; `--ip` may lie outside the range.
        assert_eq!(cfg.gateway, Ipv4Addr::new(172, 28, 0, 1));
        assert!(check_requested(&cfg, Ipv4Addr::new(172, 28, 9, 9), &BTreeSet::new()).is_ok());
        // A range whose addresses are all used is exhausted even though the subnet is not.
        let small =
            configure(Some("172.28.0.0/16"), Some("172.28.5.0/30"), None, &[], &no_host(), first_user_pool()).unwrap();
        let used: BTreeSet<_> = small.ip_range.unwrap().iter().collect();
        assert_eq!(next_address(&small, &used), None);
    }

    #[test]
    fn user_subnet_is_recorded() {
        assert!(configure(Some("10.9.0.0/16"), None, None, &[], &no_host(), first_user_pool()).unwrap().user_subnet);
        assert!(!configure(None, None, None, &[], &no_host(), first_user_pool()).unwrap().user_subnet);
    }

    #[test]
    fn automatic_subnets_skip_host_routes_but_not_the_default_route() {
        let networks = [net("172.17.0.0/16")];
        let routed = |dests: &[&str]| HostAddressing {
            addresses: vec![],
            routes: dests.iter().map(|d| host::tests::via_gateway(d, "eth0")).collect(),
        };
        // A /24 route inside 172.18/16 makes the whole pool unusable; the default route and
        // 172.16.0.0/12 covering every 172.x pool: next are the 192.168.x.0/20 pools.
        let host = routed(&["0.0.0.0/0", "172.18.3.0/24", "172.16.0.0/12"]);
        assert_eq!(pick_subnet(&networks, &host, first_user_pool()).unwrap(), net("192.168.0.0/20"));
        let host = routed(&["0.0.0.0/0", "172.18.3.0/24"]);
        assert_eq!(pick_subnet(&networks, &host, first_user_pool()).unwrap(), net("172.19.0.0/16"));
        // A host route that contains a pool (e.g. 172.18.0.0/15 spans 172.18 and 172.19).
        let host = routed(&["172.18.0.0/15"]);
        assert_eq!(pick_subnet(&networks, &host, first_user_pool()).unwrap(), net("172.20.0.0/16"));
    }

    #[test]
    fn automatic_subnets_skip_pools_holding_host_addresses() {
        // 172.18.0.1 on lo (a /32: only its local route shows it) would be the pool's gateway;
        // 172.19.0.0/16 holds an address of a link that is down (no route at all).
        let host = HostAddressing {
            addresses: vec![host::tests::address("172.18.0.1/32", "lo"), host::tests::address("172.19.7.7/24", "dn0")],
            routes: vec![host::tests::local("172.18.0.1/32", "lo")],
        };
        let cfg = configure(None, None, None, &[net("172.17.0.0/16")], &host, first_user_pool()).unwrap();
        assert_eq!((cfg.subnet, cfg.gateway), (net("172.20.0.0/16"), Ipv4Addr::new(172, 20, 0, 1)));
        // Without the local route the address alone is enough.
        let host = HostAddressing { addresses: vec![host::tests::address("172.18.0.1/32", "lo")], routes: vec![] };
        assert_eq!(
            configure(None, None, None, &[net("172.17.0.0/16")], &host, first_user_pool()).unwrap().subnet,
            net("172.19.0.0/16")
        );
    }

    #[test]
    fn default_bridge_moves_when_172_17_is_taken() {
        let from: Ipv4Network = DEFAULT_BRIDGE_SUBNET.parse().unwrap();
        assert_eq!(pick_subnet(&[], &no_host(), from).unwrap(), net("172.17.0.0/16"));
        assert_eq!(pick_subnet(&[net("172.17.8.0/24")], &no_host(), from).unwrap(), net("172.18.0.0/16"));
        // A leftover docker0 address (link down: no connected route) keeps it off 172.17 too,
        // and so does the uplink's connected route.
        let host = HostAddressing { addresses: vec![host::tests::address("172.17.0.1/16", "old0")], routes: vec![] };
        let bridge = default_bridge(&[], &host).unwrap();
        assert_eq!((bridge.subnet, bridge.gateway), (net("172.18.0.0/16"), Ipv4Addr::new(172, 18, 0, 1)));
        let mut host = host::tests::test_host();
        host.routes.push(host::tests::connected("172.17.0.0/16", "eth1"));
        assert_eq!(default_bridge(&[], &host).unwrap().subnet, net("172.18.0.0/16"));
        assert_eq!(default_bridge(&[], &host::tests::test_host()).unwrap().subnet, net("172.17.0.0/16"));
    }

    #[test]
    fn explicit_subnets_that_take_host_addressing_are_refused() {
        let mut host = host::tests::test_host();
        host.routes.push(host::tests::connected("10.80.0.0/16", "eth1"));
        let err = |subnet: &str, gateway: Option<&str>| {
            configure(Some(subnet), None, gateway, &[net("10.80.0.0/24")], &host, first_user_pool())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("127.0.0.0/8", None),
            "invalid subnet 127.0.0.0/8: loopback addresses (127.0.0.0/8) cannot be used for a network"
        );
        // Normalised first, like every subnet.
        assert_eq!(
            err("224.1.2.3/16", None),
            "invalid subnet 224.1.0.0/16: multicast addresses (224.0.0.0/4) cannot be used for a network"
        );
        assert_eq!(
            err("198.51.100.0/25", None),
            "subnet 198.51.100.0/25 overlaps the host's route 198.51.100.0/24 (dev eth0)"
        );
        assert_eq!(
            err("198.51.100.0/24", Some("198.51.100.2")),
            "gateway 198.51.100.2 is already an address of this host (dev eth0)"
        );
        // Another network stays Docker's overlap, even where the host's routes overlap too.
        assert_eq!(err("10.80.0.0/16", None), "Pool overlaps with other one on this address space");
        // Ordinary private subnets pass.
        for subnet in ["10.81.0.0/16", "172.28.0.0/16", "192.168.5.0/24"] {
            assert!(
                configure(Some(subnet), None, None, &[net("10.80.0.0/24")], &host, first_user_pool()).is_ok(),
                "{subnet}"
            );
        }
    }

    #[test]
    fn every_pool_taken_is_exhaustion() {
        let taken = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert!(matches!(pick_subnet(&taken, &no_host(), first_user_pool()), Err(Error::PoolsExhausted)));
        assert!(matches!(
            configure(None, None, None, &taken, &no_host(), first_user_pool()),
            Err(Error::PoolsExhausted)
        ));
    }

    #[test]
    fn the_search_starts_after_the_last_pool_taken_and_wraps_around() {
        // Docker 20.10 (measured): 172.18 and 172.19 taken and freed again, the next network
        // takes 172.20, not 172.18.
        let only_bridge = [net("172.17.0.0/16")];
        let after_19 = pool_after(net("172.19.0.0/16"));
        assert_eq!(after_19, net("172.20.0.0/16"));
        assert_eq!(configure(None, None, None, &only_bridge, &no_host(), after_19).unwrap().subnet, after_19);
        // From the last pool, the search wraps around to the first free one.
        let last = candidate_pools().last().unwrap();
        assert_eq!(pool_after(last), net("172.17.0.0/16"));
        assert_eq!(
            configure(None, None, None, &only_bridge, &no_host(), pool_after(last)).unwrap().subnet,
            net("172.18.0.0/16")
        );
        // Freed pools are taken again once the search reaches them.
        let taken = [net("172.17.0.0/16"), net("172.19.0.0/16")];
        assert_eq!(
            configure(None, None, None, &taken, &no_host(), first_user_pool()).unwrap().subnet,
            net("172.18.0.0/16")
        );
    }

    #[test]
    fn overlap_is_symmetric_and_covers_containment() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.2.0/24")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.0.0.0/8")));
        assert!(overlaps(&net("10.1.2.0/24"), &net("10.1.2.0/24")));
        assert!(!overlaps(&net("10.1.2.0/24"), &net("10.1.3.0/24")));
    }

    #[test]
    fn subnets_are_parsed_and_normalised() {
        assert_eq!(parse_subnet("172.28.5.3/16").unwrap(), net("172.28.0.0/16"));
        for bad in ["172.28.0.0", "300.1.0.0/16", "172.28.0.0/16x", ""] {
            let err = parse_subnet(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("Invalid subnet {bad} : invalid CIDR address: {bad}"));
        }
        assert!(matches!(parse_subnet("172.28.0.0/31"), Err(Error::SubnetTooSmall(_))));
    }

    #[test]
    fn requested_addresses() {
        let cfg = configure(Some("172.28.0.0/16"), None, None, &[], &no_host(), first_user_pool()).unwrap();
        let used: BTreeSet<_> = [Ipv4Addr::new(172, 28, 0, 2)].into();
        assert!(check_requested(&cfg, Ipv4Addr::new(172, 28, 0, 9), &used).is_ok());
        assert!(matches!(check_requested(&cfg, Ipv4Addr::new(172, 28, 0, 2), &used), Err(Error::AddressInUse(_))));
        // The gateway and the network/broadcast addresses are taken from the start.
        for taken in [Ipv4Addr::new(172, 28, 0, 1), Ipv4Addr::new(172, 28, 0, 0), Ipv4Addr::new(172, 28, 255, 255)] {
            assert!(matches!(check_requested(&cfg, taken, &used), Err(Error::AddressInUse(_))), "{taken}");
        }
        let outside = check_requested(&cfg, Ipv4Addr::new(10, 0, 0, 1), &used).unwrap_err();
        assert_eq!(
            outside.to_string(),
            "Invalid address 10.0.0.1: It does not belong to any of this network's subnets"
        );
    }

    #[test]
    fn mac_follows_the_address() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
    }
}
