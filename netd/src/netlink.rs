//! Typed rtnetlink operations. A `Netlink` is bound to the namespace it was opened in: the
//! socket stays there even when used from tokio workers elsewhere.
use std::{net::Ipv4Addr, os::fd::AsRawFd, path::Path};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::AddressAttribute,
    link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo},
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType},
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::{
    error::{Error, Result},
    netns,
};

/// rtnetlink protocol number of every route netd adds in the host netns ('N'; not taken in
/// /etc/iproute2/rt_protos), so that a restarted daemon can tell its own routes from others'.
pub const ROUTE_PROTOCOL: u8 = 78;

/// Main routing table id.
const RT_TABLE_MAIN: u8 = 254;

/// A route netd added (protocol [`ROUTE_PROTOCOL`], main table), as found in the kernel.
pub struct OwnRoute {
    pub destination: ipnetwork::Ipv4Network,
    pub unreachable: bool,
    pub oif: Option<u32>,
    message: RouteMessage,
}

#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn nl_err(what: &str) -> impl Fn(rtnetlink::Error) -> Error + '_ {
    move |e| Error::system(what, e)
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

impl Netlink {
    /// Opens a netlink socket in the calling thread's (the daemon's) namespace.
    pub fn open() -> Result<Self> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| Error::system("netlink socket", e))?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Opens a netlink socket inside the namespace at `path`.
    pub fn open_in(path: &Path) -> Result<Self> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle) = netns::run_in(path, move || {
            let _enter = rt.enter();
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| Error::system("netlink socket", e))?;
            Ok((conn, handle))
        })?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    pub async fn link_index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(Error::system("get link", e)),
        }
    }

    pub async fn link_mac(&self, index: u32) -> Result<[u8; 6]> {
        let mut links = self.handle.link().get().match_index(index).execute();
        let link = links.try_next().await.map_err(nl_err("get link"))?;
        link.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::Address(mac) if mac.len() == 6 => mac.try_into().ok(),
                _ => None,
            })
        })
        .ok_or_else(|| Error::System(format!("link {index} has no MAC address")))
    }

    /// Creates a veth pair whose peer is born inside the namespace `peer_netns` with its final
    /// name and MAC, in one request.
    pub async fn create_veth(
        &self,
        host_name: &str,
        peer_name: &str,
        peer_mac: [u8; 6],
        peer_netns: &Path,
    ) -> Result<u32> {
        let ns = std::fs::File::open(peer_netns).map_err(|e| Error::system("open netns", e))?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer_name.to_string())
            .address(peer_mac.to_vec())
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.handle.link().add(msg).execute().await.map_err(nl_err("create veth"))?;
        self.link_index(host_name)
            .await?
            .ok_or_else(|| Error::System(format!("veth {host_name} vanished")))
    }

    pub async fn set_up(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl_err("set link up"))
    }

    /// Deletes a link; already gone is success.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
            Err(e) => Err(Error::system("delete link", e)),
        }
    }

    pub async fn add_address(&self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        match self.handle.address().add(index, ip.into(), prefix).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::system("add address", e)),
        }
    }

    /// Removes an address from a link; already gone is success.
    pub async fn delete_address(&self, index: u32, ip: Ipv4Addr) -> Result<()> {
        let mut addrs = self.handle.address().get().set_link_index_filter(index).execute();
        while let Some(msg) = addrs.try_next().await.map_err(nl_err("list addresses"))? {
            let matches = msg.attributes.iter().any(|a| {
                matches!(a, AddressAttribute::Local(std::net::IpAddr::V4(a)) if *a == ip)
            });
            if matches {
                return match self.handle.address().del(msg).execute().await {
                    Ok(()) => Ok(()),
                    Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => Ok(()),
                    Err(e) => Err(Error::system("delete address", e)),
                };
            }
        }
        Ok(())
    }

    /// `ip route add DEST/32 dev INDEX src SRC`
    pub async fn add_host_route(&self, dest: Ipv4Addr, index: u32, src: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, 32)
            .output_interface(index)
            .pref_source(src)
            .protocol(ROUTE_PROTOCOL.into())
            .build();
        match self.handle.route().add(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::system("add route", e)),
        }
    }

    fn unreachable_route(subnet: ipnetwork::Ipv4Network) -> RouteMessage {
        RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(subnet.network(), subnet.prefix())
            .kind(RouteType::Unreachable)
            .protocol(ROUTE_PROTOCOL.into())
            .build()
    }

    /// `ip route add unreachable SUBNET`
    pub async fn add_unreachable_route(&self, subnet: ipnetwork::Ipv4Network) -> Result<()> {
        match self.handle.route().add(Self::unreachable_route(subnet)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::system("add unreachable route", e)),
        }
    }

    /// `ip route del unreachable SUBNET`; already gone is success.
    pub async fn delete_unreachable_route(&self, subnet: ipnetwork::Ipv4Network) -> Result<()> {
        match self.handle.route().del(Self::unreachable_route(subnet)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ESRCH) => Ok(()),
            Err(e) => Err(Error::system("delete unreachable route", e)),
        }
    }

    /// `ip route add default via GW`
    pub async fn add_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).build();
        self.handle.route().add(route).execute().await.map_err(nl_err("add default route"))
    }

    /// Sets the default route to `gateway`, replacing one that exists (a repair after a
    /// restart, or the next network taking over after a disconnect).
    pub async fn replace_default_route(&self, gateway: Ipv4Addr) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gateway).build();
        self.handle.route().add(route).replace().execute().await.map_err(nl_err("set default route"))
    }

    /// Every IPv4 route's destination in the main table, for IPAM's overlap check. Default
    /// routes and blackhole/unreachable/prohibit routes are left out (they do not make a pool
    /// unusable, DESIGN §3), and so are netd's own routes (inside its networks' subnets, or
    /// leftovers that the restart reconciliation removes).
    pub async fn route_destinations(&self) -> Result<Vec<ipnetwork::Ipv4Network>> {
        Ok(self
            .ipv4_routes()
            .await?
            .iter()
            .filter(|r| {
                r.header.destination_prefix_length != 0
                    && r.header.kind == RouteType::Unicast
                    && r.header.protocol != RouteProtocol::from(ROUTE_PROTOCOL)
            })
            .filter_map(route_destination)
            .collect())
    }

    /// The names of the devices that carry the default routes.
    pub async fn default_route_devices(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for route in self.ipv4_routes().await? {
            let Some(index) = (route.header.destination_prefix_length == 0).then(|| route_oif(&route)).flatten()
            else {
                continue;
            };
            let mut links = self.handle.link().get().match_index(index).execute();
            if let Some(link) = links.try_next().await.map_err(nl_err("get link"))? {
                names.extend(link_name(link.attributes));
            }
        }
        Ok(names)
    }

    /// Adds an address with an IFA_LABEL (`ip addr add IP/PREFIX dev DEV label LABEL`).
    pub async fn add_labelled_address(&self, index: u32, ip: Ipv4Addr, prefix: u8, label: &str) -> Result<()> {
        let mut req = self.handle.address().add(index, ip.into(), prefix);
        req.message_mut().attributes.push(AddressAttribute::Label(label.to_string()));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::system("add address", e)),
        }
    }

    /// The IPv4 addresses on a link that carry `label`.
    pub async fn labelled_addresses(&self, index: u32, label: &str) -> Result<Vec<Ipv4Addr>> {
        let mut addrs = self.handle.address().get().set_link_index_filter(index).execute();
        let mut out = Vec::new();
        while let Some(msg) = addrs.try_next().await.map_err(nl_err("list addresses"))? {
            if !msg.attributes.iter().any(|a| matches!(a, AddressAttribute::Label(l) if l == label)) {
                continue;
            }
            out.extend(msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(std::net::IpAddr::V4(ip)) => Some(*ip),
                _ => None,
            }));
        }
        Ok(out)
    }

    /// Names of the links of one kind (`ip link show type KIND`).
    pub async fn link_names_of_kind(&self, kind: InfoKind) -> Result<Vec<String>> {
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links.try_next().await.map_err(nl_err("list links"))? {
            let is_kind = link.attributes.iter().any(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().any(|i| matches!(i, LinkInfo::Kind(k) if *k == kind)),
                _ => false,
            });
            if is_kind {
                out.extend(link_name(link.attributes));
            }
        }
        Ok(out)
    }

    /// The routes netd added: protocol [`ROUTE_PROTOCOL`] in the main table.
    pub async fn own_routes(&self) -> Result<Vec<OwnRoute>> {
        Ok(self
            .ipv4_routes()
            .await?
            .into_iter()
            .filter(|r| r.header.protocol == RouteProtocol::from(ROUTE_PROTOCOL) && r.header.table == RT_TABLE_MAIN)
            .filter_map(|route| {
                Some(OwnRoute {
                    destination: route_destination(&route)?,
                    unreachable: route.header.kind == RouteType::Unreachable,
                    oif: route_oif(&route),
                    message: route,
                })
            })
            .collect())
    }

    /// Every IPv4 route (all tables).
    async fn ipv4_routes(&self) -> Result<Vec<RouteMessage>> {
        self.handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(nl_err("list routes"))
    }

    /// Deletes a route found by [`Self::own_routes`]; already gone is success.
    pub async fn delete_own_route(&self, route: OwnRoute) -> Result<()> {
        match self.handle.route().del(route.message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ESRCH) => Ok(()),
            Err(e) => Err(Error::system("delete route", e)),
        }
    }
}

/// A route's destination prefix (0.0.0.0/0 for a default route).
fn route_destination(route: &RouteMessage) -> Option<ipnetwork::Ipv4Network> {
    let ip = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        })
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    ipnetwork::Ipv4Network::new(ip, route.header.destination_prefix_length).ok()
}

fn route_oif(route: &RouteMessage) -> Option<u32> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(i) => Some(*i),
        _ => None,
    })
}

fn link_name(attributes: Vec<LinkAttribute>) -> Option<String> {
    attributes.into_iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n),
        _ => None,
    })
}
