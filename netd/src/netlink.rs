//! Typed rtnetlink operations. A `Netlink` is bound to the namespace it was opened in: the
//! socket stays there even when used from tokio workers elsewhere.
use std::{net::Ipv4Addr, os::fd::AsRawFd, path::Path};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::AddressAttribute,
    link::{InfoData, InfoKind, InfoVeth, LinkAttribute},
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::{
    error::{Error, Result},
    netns,
};

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
            .build();
        match self.handle.route().add(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(Error::system("add route", e)),
        }
    }

    fn unreachable_route(subnet: ipnetwork::Ipv4Network) -> netlink_packet_route::route::RouteMessage {
        RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(subnet.network(), subnet.prefix())
            .kind(netlink_packet_route::route::RouteType::Unreachable)
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

    /// Every IPv4 route's destination in the main table, for IPAM's overlap check. Default
    /// routes and blackhole/unreachable/prohibit routes are left out (they do not make a pool
    /// unusable, DESIGN §3).
    pub async fn route_destinations(&self) -> Result<Vec<ipnetwork::Ipv4Network>> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteType};
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(route) = routes.try_next().await.map_err(nl_err("list routes"))? {
            let prefix = route.header.destination_prefix_length;
            if prefix == 0 || route.header.kind != RouteType::Unicast {
                continue;
            }
            let dest = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            if let Some(net) = dest.and_then(|ip| ipnetwork::Ipv4Network::new(ip, prefix).ok()) {
                out.push(net);
            }
        }
        Ok(out)
    }

    /// The names of the devices that carry the default routes.
    pub async fn default_route_devices(&self) -> Result<Vec<String>> {
        use netlink_packet_route::route::RouteAttribute;
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut indexes = Vec::new();
        while let Some(route) = routes.try_next().await.map_err(nl_err("list routes"))? {
            if route.header.destination_prefix_length != 0 {
                continue;
            }
            indexes.extend(route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            }));
        }
        let mut names = Vec::new();
        for index in indexes {
            let mut links = self.handle.link().get().match_index(index).execute();
            if let Some(link) = links.try_next().await.map_err(nl_err("get link"))? {
                names.extend(link.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }));
            }
        }
        Ok(names)
    }
}
