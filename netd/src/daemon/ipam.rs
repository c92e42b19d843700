//! IP address management, Docker's way: user networks take the next free /16 from
//! 172.18.0.0/16, 172.19.0.0/16, ...; addresses are handed out in order from the ip-range (or
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

/// The first candidate pool (at or after `from`) that overlaps none of `networks` (the other
/// networks' subnets) and takes nothing of the host's: no route (default and fence routes
/// aside) and no address, its gateway included.
pub fn pick_subnet(networks: &[Ipv4Network], host: &HostAddressing, from: Ipv4Network) -> Result<Ipv4Network, Error> {
    candidate_pools()
        .skip_while(|pool| *pool != from)
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
    configure(Some(&subnet.to_string()), None, None, networks, host)
}

/// The first pool for user-defined networks.
pub fn first_user_pool() -> Ipv4Network {
    "172.18.0.0/16".parse().unwrap()
}

/// Builds a network's IPAM config from the user's flags; `networks` are the subnets of the
/// other networks, `host` the host's addresses and routes (see `host.rs`).
pub fn configure(
    subnet: Option<&str>,
    ip_range: Option<&str>,
    gateway: Option<&str>,
    networks: &[Ipv4Network],
    host: &HostAddressing,
) -> Result<IpamConfig, Error> {
    let user_subnet = subnet.is_some();
    let (subnet, rule) = match subnet {
        Some(s) => {
            let net = parse_subnet(s)?;
            host::check_reserved(net)?;
            if networks.iter().any(|t| overlaps(&net, t)) {
                return Err(Error::PoolOverlap);
            }
            (net, RouteRule::Explicit)
        }
        None => {
            if ip_range.is_some() || gateway.is_some() {
                return Err(Error::InvalidArgument("ip-range and gateway need an explicit --subnet".into()));
            }
            (pick_subnet(networks, host, first_user_pool())?, RouteRule::Pool)
        }
    };
    let ip_range = match ip_range {
        Some(r) => {
            let range = parse_subnet(r)?;
            if !subnet.contains(range.network()) || range.prefix() < subnet.prefix() {
                return Err(Error::IpRangeNotInSubnet(r.into(), subnet.to_string()));
            }
            Some(range)
        }
        None => None,
    };
    let gateway = match gateway {
        Some(g) => {
            let ip: Ipv4Addr = g.parse().map_err(|_| Error::InvalidArgument(format!("invalid gateway address {g}")))?;
            if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
                return Err(Error::GatewayNotInSubnet(g.into(), subnet.to_string()));
            }
            ip
        }
        None => first_host(&subnet),
    };
    let cfg = IpamConfig { subnet, gateway, ip_range, user_subnet };
    host::check_host(&cfg, host, rule)?;
    Ok(cfg)
}

/// Parses a CIDR and normalises it to its network address, like Docker does.
pub fn parse_subnet(s: &str) -> Result<Ipv4Network, Error> {
    let net: Ipv4Network = s.parse().map_err(|_| Error::InvalidSubnet(s.into()))?;
    if net.prefix() > 30 {
        return Err(Error::InvalidSubnet(s.into()));
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
        let cfg = configure(None, None, None, &[net("172.17.0.0/16")], &no_host()).unwrap();
        assert_eq!(cfg.subnet, net("172.18.0.0/16"));
        assert_eq!(cfg.gateway, Ipv4Addr::new(172, 18, 0, 1));
        let taken = [net("172.17.0.0/16"), net("172.18.0.0/16"), net("172.19.5.0/24")];
        assert_eq!(configure(None, None, None, &taken, &no_host()).unwrap().subnet, net("172.20.0.0/16"));
    }

    #[test]
    fn explicit_subnet_is_validated() {
        assert!(matches!(configure(Some("172.28.0.0/33"), None, None, &[], &no_host()), Err(Error::InvalidSubnet(_))));
        assert!(matches!(configure(Some("nonsense"), None, None, &[], &no_host()), Err(Error::InvalidSubnet(_))));
        assert!(matches!(
            configure(Some("172.28.0.0/16"), None, None, &[net("172.28.5.0/24")], &no_host()),
            Err(Error::PoolOverlap)
        ));
        assert!(matches!(
            configure(Some("172.28.0.0/16"), None, Some("172.29.0.1"), &[], &no_host()),
            Err(Error::GatewayNotInSubnet(..))
        ));
        assert!(matches!(
            configure(Some("172.28.0.0/16"), Some("172.29.5.0/24"), None, &[], &no_host()),
            Err(Error::IpRangeNotInSubnet(..))
        ));
        let cfg =
            configure(Some("172.28.0.0/16"), Some("172.28.5.0/24"), Some("172.28.5.254"), &[], &no_host()).unwrap();
        assert_eq!(cfg.gateway, Ipv4Addr::new(172, 28, 5, 254));
        assert_eq!(cfg.ip_range, Some(net("172.28.5.0/24")));
    }

    #[test]
    fn addresses_are_given_in_order_and_reused() {
        let cfg = configure(Some("10.5.0.0/29"), None, None, &[], &no_host()).unwrap();
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
        let cfg = configure(Some("172.28.0.0/16"), Some("172.28.5.0/24"), None, &[], &no_host()).unwrap();
        assert_eq!(next_address(&cfg, &BTreeSet::new()), Some(Ipv4Addr::new(172, 28, 5, 0)));
        // The gateway stays the subnet's first address; `--ip` may lie outside the range.
        assert_eq!(cfg.gateway, Ipv4Addr::new(172, 28, 0, 1));
        assert!(check_requested(&cfg, Ipv4Addr::new(172, 28, 9, 9), &BTreeSet::new()).is_ok());
        // A range whose addresses are all used is exhausted even though the subnet is not.
        let small = configure(Some("172.28.0.0/16"), Some("172.28.5.0/30"), None, &[], &no_host()).unwrap();
        let used: BTreeSet<_> = small.ip_range.unwrap().iter().collect();
        assert_eq!(next_address(&small, &used), None);
    }

    #[test]
    fn user_subnet_is_recorded() {
        assert!(configure(Some("10.9.0.0/16"), None, None, &[], &no_host()).unwrap().user_subnet);
        assert!(!configure(None, None, None, &[], &no_host()).unwrap().user_subnet);
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
        let cfg = configure(None, None, None, &[net("172.17.0.0/16")], &host).unwrap();
        assert_eq!((cfg.subnet, cfg.gateway), (net("172.20.0.0/16"), Ipv4Addr::new(172, 20, 0, 1)));
        // Without the local route the address alone is enough.
        let host = HostAddressing { addresses: vec![host::tests::address("172.18.0.1/32", "lo")], routes: vec![] };
        assert_eq!(configure(None, None, None, &[net("172.17.0.0/16")], &host).unwrap().subnet, net("172.19.0.0/16"));
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
            configure(Some(subnet), None, gateway, &[net("10.80.0.0/24")], &host).unwrap_err().to_string()
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
            assert!(configure(Some(subnet), None, None, &[net("10.80.0.0/24")], &host).is_ok(), "{subnet}");
        }
    }

    #[test]
    fn every_pool_taken_is_exhaustion() {
        let taken = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert!(matches!(pick_subnet(&taken, &no_host(), first_user_pool()), Err(Error::PoolsExhausted)));
        assert!(matches!(configure(None, None, None, &taken, &no_host()), Err(Error::PoolsExhausted)));
    }

    #[test]
    fn released_subnets_are_reused() {
        // 172.18 was freed by `network rm`: the next network takes it again before 172.20.
        let taken = [net("172.17.0.0/16"), net("172.19.0.0/16")];
        assert_eq!(configure(None, None, None, &taken, &no_host()).unwrap().subnet, net("172.18.0.0/16"));
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
        for bad in ["172.28.0.0", "300.1.0.0/16", "172.28.0.0/16x", "", "172.28.0.0/31"] {
            let err = parse_subnet(bad).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid subnet {bad}"));
        }
    }

    #[test]
    fn requested_addresses() {
        let cfg = configure(Some("172.28.0.0/16"), None, None, &[], &no_host()).unwrap();
        let used: BTreeSet<_> = [Ipv4Addr::new(172, 28, 0, 2)].into();
        assert!(check_requested(&cfg, Ipv4Addr::new(172, 28, 0, 9), &used).is_ok());
        assert!(matches!(check_requested(&cfg, Ipv4Addr::new(172, 28, 0, 2), &used), Err(Error::AddressInUse(_))));
        // The gateway and the network/broadcast addresses are taken from the start.
        for taken in [Ipv4Addr::new(172, 28, 0, 1), Ipv4Addr::new(172, 28, 0, 0), Ipv4Addr::new(172, 28, 255, 255)] {
            assert!(matches!(check_requested(&cfg, taken, &used), Err(Error::AddressInUse(_))), "{taken}");
        }
        let outside = check_requested(&cfg, Ipv4Addr::new(10, 0, 0, 1), &used).unwrap_err();
        assert_eq!(outside.to_string(), "no configured subnet or ip-range contain the IP address 10.0.0.1");
    }

    #[test]
    fn mac_follows_the_address() {
        assert_eq!(mac_for(Ipv4Addr::new(172, 17, 0, 2)), [0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
    }
}
