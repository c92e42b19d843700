//! What of the host's own addressing a network must never take: ranges no link may use, the
//! routes the host uses for its own links and addresses, and the addresses it already has.
//! A network's gateway becomes a local address and its subnet gets an `unreachable` route, so
//! a network on any of these would take the host's addresses over (and `network rm` would
//! then take them away).
//!
//! Pure: the caller dumps the host's addresses and routes (`Netlink::host_addressing`) and
//! passes them in as plain data, so that every rule is unit-tested without root.
use std::{fmt, net::Ipv4Addr};

use ipnetwork::Ipv4Network;

use super::overlaps;
use crate::{error::Error, model::IpamConfig, netlink::ROUTE_PROTOCOL, plumbing::GATEWAY_LABEL};

/// Ranges that no network may overlap, whatever the host has (RFC 6890): their addresses are
/// not unicast addresses of an ordinary link, and the kernel treats them specially (all of
/// 127/8 is local while `lo` is up, 224/4 cannot be a source, 255.255.255.255 is the limited
/// broadcast).
const RESERVED: [([u8; 4], u8, &str); 5] = [
    ([0, 0, 0, 0], 8, "\"this network\""),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved"),
];

/// The host's IPv4 addresses (every link) and routes (every table).
#[derive(Clone, Debug, Default)]
pub struct HostAddressing {
    pub addresses: Vec<HostAddress>,
    pub routes: Vec<HostRoute>,
}

#[derive(Clone, Debug)]
pub struct HostAddress {
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub dev: String,
    /// IFA_LABEL (the device name unless set otherwise).
    pub label: String,
}

#[derive(Clone, Debug)]
pub struct HostRoute {
    pub destination: Ipv4Network,
    pub kind: RouteKind,
    pub table: u32,
    /// Scope link: a connected route (the host reaches the destination on the link itself).
    pub scope_link: bool,
    pub protocol: u8,
    pub dev: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    /// The kernel's route for an address of the host (table local).
    Local,
    /// The kernel's route for the broadcast address of an address's prefix (table local).
    Broadcast,
    /// Blackhole, unreachable, prohibit, throw, ...: they take no traffic to a link, so they
    /// never make a subnet unusable (DESIGN §3).
    Other,
}

/// Which of the host's routes make a subnet unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteRule {
    /// A subnet the user chose with `--subnet`: the routes of the host's own links and
    /// addresses (connected routes of the main table, and the local table). A route through
    /// a gateway may be shadowed on purpose, as Docker allows.
    Explicit,
    /// An automatic pool: any unicast route too, so that a pool never hides a destination the
    /// host already reaches (DESIGN §3).
    Pool,
}

/// Main routing table id.
const RT_TABLE_MAIN: u32 = 254;

impl HostAddress {
    /// Made by netd (a network's gateway): never in the way of netd's own networks, whose
    /// overlaps are checked apart (`Pool overlaps with other one on this address space`).
    fn is_netd(&self) -> bool {
        self.label == GATEWAY_LABEL
    }

    /// `ip/prefix`, as `ip addr` shows it.
    fn cidr(&self) -> Ipv4Network {
        Ipv4Network::new(self.ip, self.prefix).unwrap_or_else(|_| Ipv4Network::from(self.ip))
    }
}

impl HostRoute {
    fn blocks(&self, rule: RouteRule, netd_gateways: &[Ipv4Addr]) -> bool {
        if self.protocol == ROUTE_PROTOCOL || self.destination.prefix() == 0 {
            return false;
        }
        match self.kind {
            // The local route the kernel made for a netd gateway address is netd's too.
            RouteKind::Local => !(self.destination.prefix() == 32 && netd_gateways.contains(&self.destination.ip())),
            RouteKind::Broadcast => true,
            RouteKind::Unicast => rule == RouteRule::Pool || (self.scope_link && self.table == RT_TABLE_MAIN),
            RouteKind::Other => false,
        }
    }
}

/// Like `ip route`: `198.51.100.0/24 (dev eth0)`, `local 10.99.0.1 (dev lo)`.
impl fmt::Display for HostRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RouteKind::Local => write!(f, "local ")?,
            RouteKind::Broadcast => write!(f, "broadcast ")?,
            RouteKind::Unicast | RouteKind::Other => {}
        }
        if self.destination.prefix() == 32 {
            write!(f, "{}", self.destination.ip())?;
        } else {
            write!(f, "{}", self.destination)?;
        }
        match &self.dev {
            Some(dev) => write!(f, " (dev {dev})"),
            None => Ok(()),
        }
    }
}

/// Refuses a subnet that overlaps a range no network may use.
pub fn check_reserved(subnet: Ipv4Network) -> Result<(), Error> {
    for (ip, prefix, kind) in RESERVED {
        let range = Ipv4Network::new(Ipv4Addr::from(ip), prefix).expect("valid reserved range");
        if overlaps(&subnet, &range) {
            return Err(Error::ReservedSubnet { subnet, kind, range });
        }
    }
    Ok(())
}

/// Refuses a network whose gateway is an address of the host, whose ip-range holds one, or
/// whose subnet overlaps a route of the host (see [`RouteRule`]) or the prefix of one of its
/// addresses (on a link that is down there is no route, but there will be one when it comes
/// up). The most specific error comes first: the gateway, the ip-range, then the subnet.
pub fn check_host(cfg: &IpamConfig, host: &HostAddressing, rule: RouteRule) -> Result<(), Error> {
    let (netd, others): (Vec<&HostAddress>, Vec<&HostAddress>) = host.addresses.iter().partition(|a| a.is_netd());
    if let Some(a) = others.iter().find(|a| a.ip == cfg.gateway) {
        return Err(Error::GatewayIsHostAddress { gateway: cfg.gateway, dev: a.dev.clone() });
    }
    if let Some(range) = cfg.ip_range {
        if let Some(a) = others.iter().find(|a| range.contains(a.ip)) {
            return Err(Error::IpRangeHasHostAddress { range, address: a.ip, dev: a.dev.clone() });
        }
    }
    let netd_gateways: Vec<Ipv4Addr> = netd.iter().map(|a| a.ip).collect();
    // Of several routes in the way, name the widest (the uplink's /24 rather than the local
    // route of the host's address in it), connected before local; dump order is no order.
    let route = host
        .routes
        .iter()
        .filter(|r| r.blocks(rule, &netd_gateways) && overlaps(&cfg.subnet, &r.destination))
        .min_by_key(|r| (r.destination.prefix(), r.kind != RouteKind::Unicast));
    if let Some(route) = route {
        return Err(Error::SubnetOverlapsHostRoute { subnet: cfg.subnet, route: route.clone() });
    }
    if let Some(a) = others.iter().find(|a| overlaps(&cfg.subnet, &a.cidr())) {
        return Err(Error::SubnetOverlapsHostAddress { subnet: cfg.subnet, address: a.cidr(), dev: a.dev.clone() });
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Network {
        s.parse().unwrap()
    }

    pub fn address(cidr: &str, dev: &str) -> HostAddress {
        let n = net(cidr);
        HostAddress { ip: n.ip(), prefix: n.prefix(), dev: dev.into(), label: dev.into() }
    }

    fn route(dest: &str, kind: RouteKind, table: u32, scope_link: bool, dev: &str) -> HostRoute {
        HostRoute { destination: net(dest), kind, table, scope_link, protocol: 2, dev: Some(dev.into()) }
    }

    pub fn connected(dest: &str, dev: &str) -> HostRoute {
        route(dest, RouteKind::Unicast, RT_TABLE_MAIN, true, dev)
    }

    pub fn via_gateway(dest: &str, dev: &str) -> HostRoute {
        route(dest, RouteKind::Unicast, RT_TABLE_MAIN, false, dev)
    }

    pub fn local(dest: &str, dev: &str) -> HostRoute {
        route(dest, RouteKind::Local, 255, false, dev)
    }

    /// The tests' host netns: lo 127.0.0.1/8, uplink eth0 198.51.100.2/24 with its default
    /// route via 198.51.100.1, as the kernel lists them.
    pub fn test_host() -> HostAddressing {
        HostAddressing {
            addresses: vec![address("127.0.0.1/8", "lo"), address("198.51.100.2/24", "eth0")],
            routes: vec![
                via_gateway("0.0.0.0/0", "eth0"),
                local("198.51.100.2/32", "eth0"),
                route("198.51.100.255/32", RouteKind::Broadcast, 255, true, "eth0"),
                connected("198.51.100.0/24", "eth0"),
                local("127.0.0.0/8", "lo"),
                local("127.0.0.1/32", "lo"),
            ],
        }
    }

    fn cfg(subnet: &str, gateway: &str, ip_range: Option<&str>) -> IpamConfig {
        IpamConfig {
            subnet: net(subnet),
            gateway: gateway.parse().unwrap(),
            ip_range: ip_range.map(net),
            user_subnet: true,
        }
    }

    fn explicit(c: &IpamConfig, host: &HostAddressing) -> Result<(), String> {
        check_host(c, host, RouteRule::Explicit).map_err(|e| e.to_string())
    }

    #[test]
    fn reserved_ranges_and_everything_overlapping_them_are_refused() {
        for (subnet, range) in [
            ("0.0.0.0/8", "\"this network\" addresses (0.0.0.0/8)"),
            ("0.0.0.0/1", "\"this network\" addresses (0.0.0.0/8)"),
            ("0.0.0.0/0", "\"this network\" addresses (0.0.0.0/8)"),
            ("127.0.0.0/8", "loopback addresses (127.0.0.0/8)"),
            ("127.0.0.0/30", "loopback addresses (127.0.0.0/8)"),
            ("96.0.0.0/3", "loopback addresses (127.0.0.0/8)"),
            ("169.254.0.0/16", "link-local addresses (169.254.0.0/16)"),
            ("169.254.169.0/24", "link-local addresses (169.254.0.0/16)"),
            ("169.0.0.0/8", "link-local addresses (169.254.0.0/16)"),
            ("224.0.0.0/4", "multicast addresses (224.0.0.0/4)"),
            ("239.255.0.0/16", "multicast addresses (224.0.0.0/4)"),
            ("240.0.0.0/4", "reserved addresses (240.0.0.0/4)"),
            ("255.255.255.252/30", "reserved addresses (240.0.0.0/4)"),
            ("192.0.0.0/2", "multicast addresses (224.0.0.0/4)"),
        ] {
            let err = check_reserved(net(subnet)).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid subnet {subnet}: {range} cannot be used for a network"));
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn ordinary_subnets_are_not_reserved() {
        for subnet in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "172.18.0.0/16",
            "192.168.0.0/16",
            "1.0.0.0/8",
            "126.0.0.0/8",
            "223.255.255.0/24",
        ] {
            assert!(check_reserved(net(subnet)).is_ok(), "{subnet}");
        }
        for (subnet, gateway) in
            [("10.44.0.0/16", "10.44.0.1"), ("172.30.0.0/16", "172.30.0.1"), ("192.168.44.0/24", "192.168.44.1")]
        {
            assert_eq!(explicit(&cfg(subnet, gateway, None), &test_host()), Ok(()));
            assert_eq!(
                check_host(&cfg(subnet, gateway, None), &test_host(), RouteRule::Pool).map_err(|e| e.to_string()),
                Ok(())
            );
        }
    }

    #[test]
    fn subnets_on_the_uplinks_connected_route_are_refused() {
        for subnet in ["198.51.100.0/25", "198.51.100.128/30", "198.51.100.0/24", "198.0.0.0/8"] {
            let first = Ipv4Addr::from(u32::from(net(subnet).network()) + 1).to_string();
            let err = check_host(&cfg(subnet, &first, None), &test_host(), RouteRule::Explicit).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("subnet {subnet} overlaps the host's route 198.51.100.0/24 (dev eth0)")
            );
            assert_eq!(err.status(), 409);
        }
    }

    #[test]
    fn local_and_broadcast_routes_block_subnets() {
        // An operator's /32 on lo: only its local route shows it (gateway elsewhere).
        let mut host = test_host();
        host.addresses.push(address("10.99.0.1/32", "lo"));
        host.routes.push(local("10.99.0.1/32", "lo"));
        assert_eq!(
            explicit(&cfg("10.99.0.0/24", "10.99.0.254", None), &host),
            Err("subnet 10.99.0.0/24 overlaps the host's route local 10.99.0.1 (dev lo)".into())
        );
        // An address without a prefix route (noprefixroute) still has its broadcast route.
        let host = HostAddressing {
            addresses: vec![],
            routes: vec![route("10.5.0.255/32", RouteKind::Broadcast, 255, true, "eth1")],
        };
        assert_eq!(
            explicit(&cfg("10.5.0.128/25", "10.5.0.129", None), &host),
            Err("subnet 10.5.0.128/25 overlaps the host's route broadcast 10.5.0.255 (dev eth1)".into())
        );
    }

    #[test]
    fn gateways_on_host_addresses_are_refused() {
        let mut host = test_host();
        host.addresses.push(address("10.99.0.1/32", "lo"));
        host.routes.push(local("10.99.0.1/32", "lo"));
        // Given or automatic, the gateway is checked before the subnet's routes.
        assert_eq!(
            explicit(&cfg("10.99.0.0/24", "10.99.0.1", None), &host),
            Err("gateway 10.99.0.1 is already an address of this host (dev lo)".into())
        );
        assert_eq!(
            explicit(&cfg("198.51.100.0/24", "198.51.100.2", None), &host),
            Err("gateway 198.51.100.2 is already an address of this host (dev eth0)".into())
        );
        let err = check_host(&cfg("10.99.0.0/24", "10.99.0.1", None), &host, RouteRule::Explicit).unwrap_err();
        assert_eq!(err.status(), 409);
    }

    #[test]
    fn ip_ranges_holding_host_addresses_are_refused() {
        let mut host = test_host();
        host.addresses.push(address("10.99.0.1/32", "lo"));
        assert_eq!(
            explicit(&cfg("10.99.0.0/24", "10.99.0.254", Some("10.99.0.0/28")), &host),
            Err("ip-range 10.99.0.0/28 contains 10.99.0.1, already an address of this host (dev lo)".into())
        );
    }

    #[test]
    fn addresses_of_links_that_are_down_block_their_prefix() {
        // No connected route (link down), but the prefix is the host's all the same.
        let host = HostAddressing { addresses: vec![address("10.77.0.5/24", "dn0")], routes: vec![] };
        assert_eq!(
            explicit(&cfg("10.77.0.0/25", "10.77.0.1", None), &host),
            Err("subnet 10.77.0.0/25 overlaps the host's address 10.77.0.5/24 (dev dn0)".into())
        );
        assert_eq!(
            explicit(&cfg("10.77.0.0/24", "10.77.0.5", None), &host),
            Err("gateway 10.77.0.5 is already an address of this host (dev dn0)".into())
        );
        assert_eq!(explicit(&cfg("10.77.1.0/24", "10.77.1.1", None), &host), Ok(()));
    }

    #[test]
    fn routes_through_gateways_block_pools_but_not_explicit_subnets() {
        let mut host = test_host();
        host.routes.push(via_gateway("10.66.0.0/16", "eth0"));
        let c = cfg("10.66.0.0/24", "10.66.0.1", None);
        assert_eq!(explicit(&c, &host), Ok(()));
        assert_eq!(
            check_host(&c, &host, RouteRule::Pool).map_err(|e| e.to_string()),
            Err("subnet 10.66.0.0/24 overlaps the host's route 10.66.0.0/16 (dev eth0)".into())
        );
        // Connected routes of other tables (policy routing) only block pools too.
        let mut host = test_host();
        host.routes.push(route("10.67.0.0/16", RouteKind::Unicast, 100, true, "eth1"));
        assert_eq!(explicit(&cfg("10.67.0.0/24", "10.67.0.1", None), &host), Ok(()));
    }

    #[test]
    fn default_fence_and_netd_routes_never_block() {
        let mut host = test_host();
        // An operator's `blackhole`/`unreachable`/`prohibit` route.
        host.routes.push(route("10.70.0.0/16", RouteKind::Other, RT_TABLE_MAIN, false, "lo"));
        // netd's own: protocol 78 routes, its labelled gateway and the gateway's local route.
        let mut own = connected("10.71.0.0/24", "nd0123456789ab");
        own.protocol = ROUTE_PROTOCOL;
        host.routes.push(own);
        host.addresses.push(HostAddress {
            ip: "10.72.0.1".parse().unwrap(),
            prefix: 32,
            dev: "lo".into(),
            label: GATEWAY_LABEL.into(),
        });
        host.routes.push(local("10.72.0.1/32", "lo"));
        for rule in [RouteRule::Explicit, RouteRule::Pool] {
            for (subnet, gateway) in
                [("10.70.0.0/24", "10.70.0.1"), ("10.71.0.0/24", "10.71.0.1"), ("10.72.0.0/24", "10.72.0.1")]
            {
                assert!(check_host(&cfg(subnet, gateway, None), &host, rule).is_ok(), "{subnet} {rule:?}");
            }
        }
        // The default route (via 198.51.100.1 in the test host) blocks nothing.
        assert!(check_host(&cfg("10.73.0.0/16", "10.73.0.1", None), &host, RouteRule::Pool).is_ok());
    }
}
