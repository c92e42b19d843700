//! Typed rtnetlink operations. A `Netlink` is bound to the namespace it was opened in: the
//! socket stays there even when used from tokio workers elsewhere.
use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    os::fd::AsRawFd,
    path::Path,
};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::{AddressAttribute, AddressMessage},
    link::{AfSpecInet, AfSpecUnspec, InetDevConf, InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkInfo},
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType},
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};

use crate::{
    error::{Error, Result},
    ipam::host::{HostAddress, HostAddressing, HostRoute, RouteKind},
    netns,
};

/// rtnetlink protocol number of every route netd adds in the host netns ('N'; not taken in
/// /etc/iproute2/rt_protos), so that a restarted daemon can tell its own routes from others'.
pub const ROUTE_PROTOCOL: u8 = 78;

/// Main routing table id.
const RT_TABLE_MAIN: u8 = 254;

/// What [`Netlink::add_labelled_address`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum LabelledAdd {
    Added,
    /// The address was there with the label already (a restart re-adding its own).
    AlreadyThere,
    /// The address was there without the label; nothing was changed.
    SomeoneElses,
}

/// A route netd added (protocol [`ROUTE_PROTOCOL`], main table), as found in the kernel.
pub struct OwnRoute {
    pub destination: ipnetwork::Ipv4Network,
    pub unreachable: bool,
    pub oif: Option<u32>,
    message: RouteMessage,
}

/// A link's own counters: `rx` what it received, `tx` what it sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

/// What can fail talking rtnetlink.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A request the kernel refused (`op`: what netd asked for).
    #[error("{op}: {source}")]
    Request { op: &'static str, source: rtnetlink::Error },
    /// A netlink socket could not be opened.
    #[error("netlink socket: {0}")]
    Socket(std::io::Error),
    /// The kernel's answer lacks what netd needs.
    #[error("{0}")]
    Unexpected(String),
}

fn nl_err(op: &'static str) -> impl Fn(rtnetlink::Error) -> Error {
    move |source| Error::Netlink(NetlinkError::Request { op, source })
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

impl Netlink {
    /// Opens a netlink socket in the calling thread's (the daemon's) namespace.
    pub fn open() -> Result<Self> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::Netlink(NetlinkError::Socket(e)))?;
        tokio::spawn(conn);
        Ok(Self { handle })
    }

    /// Opens a netlink socket in the calling thread's namespace whose requests are sent from
    /// an OS thread of its own (`name`). The kernel handles a request inside the `sendto` that
    /// carries it, and some take tens of milliseconds (deleting a veth waits for RCU
    /// callbacks): on a thread of its own that wait stalls neither tokio's workers nor the
    /// requests of other sockets.
    pub fn open_on_own_thread(name: &str) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::os("netlink runtime", e))?;
        let (opened, handle) = std::sync::mpsc::sync_channel(1);
        // A new thread starts in its creator's namespace. The connection ends, and the thread
        // with it, when the last handle is dropped.
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                rt.block_on(async move {
                    match rtnetlink::new_connection() {
                        Ok((conn, handle, _)) => {
                            let _ = opened.send(Ok(handle));
                            conn.await
                        }
                        Err(e) => {
                            let _ = opened.send(Err(e));
                        }
                    }
                })
            })
            .map_err(|e| Error::os("netlink thread", e))?;
        let handle = handle
            .recv()
            .map_err(|_| Error::Netlink(NetlinkError::Unexpected("netlink thread ended".into())))?
            .map_err(|e| Error::Netlink(NetlinkError::Socket(e)))?;
        Ok(Self { handle })
    }

    /// Opens a netlink socket inside the namespace at `path`.
    pub fn open_in(path: &Path) -> Result<Self> {
        let rt = tokio::runtime::Handle::current();
        let (conn, handle) = netns::run_in(path, move || {
            let _enter = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::Netlink(NetlinkError::Socket(e)))?;
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
            Err(e) => Err(nl_err("get link")(e)),
        }
    }

    /// The highest ifindex in this netns (0 when it has no link).
    pub async fn max_link_index(&self) -> Result<u32> {
        let links: Vec<_> = self.handle.link().get().execute().try_collect().await.map_err(nl_err("list links"))?;
        Ok(links.iter().map(|l| l.header.index).max().unwrap_or(0))
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
        .ok_or_else(|| Error::Netlink(NetlinkError::Unexpected(format!("link {index} has no MAC address"))))
    }

    /// Creates a veth pair (`ends`) as Docker does (`txqueuelen` 0 on both ends: Docker's
    /// `TxQLen: 0`; a container's `ifconfig` shows `txqueuelen:0`), the peer made directly
    /// inside `peer_netns` as `peer_name` with its final MAC: moving a device between
    /// namespaces afterwards waits for RCU callbacks under the rtnl lock (≈15 ms,
    /// docs/control-plane-latency.md). The host end gets the index `host_index` (taken: one
    /// above the highest here) and the peer the one below it, as a peer made here and moved in
    /// would (Docker's `12: eth0@if13`), so that the peer's link — the host end's index —
    /// names no device inside. The host end gets `host_mac`, so that no lookup is needed; both
    /// ends are down. Each end is made with one TX and one RX queue, the count the kernel
    /// lowers a veth to anyway; lowering it after the fact waits for an RCU grace period per
    /// end, holding rtnl. `mtu` (both ends; `None`: the kernel's default) the kernel refuses is
    /// Docker's error. Returns the host end's index (the peer's is the one below it).
    pub async fn create_veth(&self, ends: &VethEnds<'_>, host_index: u32, mtu: Option<u32>) -> Result<u32> {
        let VethEnds { host_name, host_mac, peer_name, peer_mac, peer_netns } = *ends;
        let ns = std::fs::File::open(peer_netns).map_err(|e| Error::os("open netns", e))?;
        // The kernel takes the peer's index only when the host end's is given too.
        let request = |host_index: u32| {
            let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
                .index(host_index.saturating_sub(1))
                .name(peer_name.to_string())
                .address(peer_mac.to_vec())
                .txqueuelen(0)
                .append_extra_attribute(LinkAttribute::NumTxQueues(1))
                .append_extra_attribute(LinkAttribute::NumRxQueues(1))
                .setns_by_fd(ns.as_raw_fd());
            let mut host = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .index(host_index)
                .name(host_name.to_string())
                .address(host_mac.to_vec())
                .txqueuelen(0)
                .append_extra_attribute(LinkAttribute::NumTxQueues(1))
                .append_extra_attribute(LinkAttribute::NumRxQueues(1));
            if let Some(mtu) = mtu {
                peer = peer.mtu(mtu);
                host = host.mtu(mtu);
            }
            host.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build()))).build()
        };
        let refused_mtu = |e: &rtnetlink::Error| mtu.is_some() && is_errno(e, libc::EINVAL);
        // The kernel gives a new link the index asked for or fails: no lookup afterwards.
        match self.handle.link().add(request(host_index)).execute().await {
            Err(e) if refused_mtu(&e) => Err(Error::InvalidArgument(format!(
                "failed to set MTU on host interface {host_name}: invalid argument"
            ))),
            // Taken here since the caller looked (or it names an existing link: then this
            // fails the same way).
            Err(e) if host_index > 2 && is_errno(&e, libc::EEXIST) => {
                let above = self.max_link_index().await? + 2;
                self.handle.link().add(request(above)).execute().await.map_err(nl_err("create veth"))?;
                Ok(above)
            }
            created => created.map(|()| host_index).map_err(nl_err("create veth")),
        }
    }

    /// Takes a link down (its routes go with it) and renames it, in two requests: a link that
    /// is up cannot be renamed.
    pub async fn set_down_and_rename(&self, index: u32, name: &str) -> Result<()> {
        let down = LinkUnspec::new_with_index(index).down().build();
        self.handle.link().set(down).execute().await.map_err(nl_err("set link down"))?;
        let renamed = LinkUnspec::new_with_index(index).name(name.to_string()).build();
        self.handle.link().set(renamed).execute().await.map_err(nl_err("rename link"))
    }

    /// Removes every address of a link; none there is success.
    pub async fn flush_addresses(&self, index: u32) -> Result<()> {
        let addrs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(nl_err("list addresses"))?;
        for msg in addrs.into_iter().filter(|m| m.header.index == index) {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => {}
                Err(e) => return Err(nl_err("delete address")(e)),
            }
        }
        Ok(())
    }

    /// Turns IPv4 forwarding on for the device `name`: `bpf_fib_lookup` routes a container's
    /// packet only from a device that forwards. The host's `ip_forward` and every other device
    /// stay as they are; netd's programs redirect every routed packet themselves, so the host
    /// stack never forwards from these devices. By name, netd's own (`nd…`): an index from the
    /// store might name another device by now.
    pub async fn enable_ipv4_forwarding(&self, name: &str) -> Result<()> {
        let request = LinkUnspec::new_with_name(name).append_extra_attribute(ipv4_forwarding_on());
        self.handle.link().set(request.build()).execute().await.map_err(nl_err("enable forwarding"))
    }

    /// A new host end's last settings, in one request while it is still down: `txqueuelen`
    /// (changing it on a device that is up deactivates the device, which waits for an RCU
    /// grace period holding rtnl) and IPv4 forwarding ([`Self::enable_ipv4_forwarding`]).
    pub async fn set_txqueuelen_and_forwarding(&self, index: u32, len: u32) -> Result<()> {
        let request = LinkUnspec::new_with_index(index).txqueuelen(len).append_extra_attribute(ipv4_forwarding_on());
        self.handle.link().set(request.build()).execute().await.map_err(nl_err("configure link"))
    }

    pub async fn set_up(&self, index: u32) -> Result<()> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl_err("set link up"))
    }

    /// The host's VXLAN device for overlay networks, up: external mode (each packet brings its
    /// VNI and remote host as tunnel metadata from netd's programs), UDP `port`, no learning
    /// (the peers are in netd's maps). One of that name already there (a restart) is kept if
    /// it is a VXLAN device in external mode, and refused otherwise. Returns its index.
    pub async fn ensure_vxlan(&self, name: &str, port: u16) -> Result<u32> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        let existing = match links.try_next().await {
            Ok(link) => link,
            Err(e) if is_errno(&e, libc::ENODEV) => None,
            Err(e) => return Err(nl_err("get link")(e)),
        };
        if let Some(link) = existing {
            let external = link.attributes.iter().any(|a| match a {
                LinkAttribute::LinkInfo(info) => info.iter().any(|i| {
                    matches!(i, LinkInfo::Data(InfoData::Vxlan(attrs)) if attrs.contains(&InfoVxlan::CollectMetadata(true)))
                }),
                _ => false,
            });
            if !external {
                return Err(Error::Conflict(format!("{name} exists and is not a VXLAN device in external mode")));
            }
            self.set_up(link.header.index).await?;
            return Ok(link.header.index);
        }
        let vxlan = LinkMessageBuilder::<LinkVxlan>::new(name).collect_metadata(true).port(port).learning(false).up();
        self.handle.link().add(vxlan.build()).execute().await.map_err(nl_err("create vxlan"))?;
        self.link_index(name)
            .await?
            .ok_or_else(|| Error::Netlink(NetlinkError::Unexpected(format!("vxlan {name} vanished"))))
    }

    /// Deletes a link; already gone is success.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        let Some(index) = self.link_index(name).await? else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(()),
            Err(e) => Err(nl_err("delete link")(e)),
        }
    }

    pub async fn add_address(&self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        match self.handle.address().add(index, ip.into(), prefix).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(nl_err("add address")(e)),
        }
    }

    /// Removes `ip/prefix` from a link if it carries `label`; already gone is success. The
    /// same address without the label (or with another prefix) is someone else's and stays.
    pub async fn delete_labelled_address(&self, index: u32, ip: Ipv4Addr, prefix: u8, label: &str) -> Result<()> {
        let Some(msg) = self.find_address(index, ip, prefix).await? else {
            return Ok(());
        };
        if address_label(&msg) != Some(label) {
            return Ok(());
        }
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => Ok(()),
            Err(e) => Err(nl_err("delete address")(e)),
        }
    }

    /// The address `ip/prefix` on a link, as the kernel lists it.
    async fn find_address(&self, index: u32, ip: Ipv4Addr, prefix: u8) -> Result<Option<AddressMessage>> {
        let mut addrs = self.handle.address().get().set_link_index_filter(index).execute();
        while let Some(msg) = addrs.try_next().await.map_err(nl_err("list addresses"))? {
            if msg.header.index == index && msg.header.prefix_len == prefix && address_ipv4(&msg) == Some(ip) {
                return Ok(Some(msg));
            }
        }
        Ok(None)
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
            Err(e) => Err(nl_err("add route")(e)),
        }
    }

    /// `ip route del DEST/32 dev INDEX proto 78`: the route [`Self::add_host_route`] made;
    /// already gone is success.
    pub async fn delete_host_route(&self, dest: Ipv4Addr, index: u32) -> Result<()> {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dest, 32)
            .output_interface(index)
            .protocol(ROUTE_PROTOCOL.into())
            .build();
        match self.handle.route().del(route).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ESRCH) => Ok(()),
            Err(e) => Err(nl_err("delete route")(e)),
        }
    }

    fn unreachable_route(subnet: ipnetwork::Ipv4Network) -> RouteMessage {
        RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(subnet.network(), subnet.prefix())
            .kind(RouteType::Unreachable)
            .protocol(ROUTE_PROTOCOL.into())
            .build()
    }

    /// `ip route add unreachable SUBNET proto 78`. A route to the subnet already there is
    /// success: netd's own after a restart, or an operator's (a blackhole, or a route through a
    /// gateway, which an explicit `--subnet` may shadow), which then does the fencing and is
    /// never deleted (see [`Self::delete_unreachable_route`]).
    pub async fn add_unreachable_route(&self, subnet: ipnetwork::Ipv4Network) -> Result<()> {
        match self.handle.route().add(Self::unreachable_route(subnet)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(e) => Err(nl_err("add unreachable route")(e)),
        }
    }

    /// `ip route del unreachable SUBNET proto 78`; already gone is success. The kernel deletes
    /// only a route whose type and protocol match (`fib_table_delete`), so someone else's
    /// route to the same subnet is never removed.
    pub async fn delete_unreachable_route(&self, subnet: ipnetwork::Ipv4Network) -> Result<()> {
        match self.handle.route().del(Self::unreachable_route(subnet)).execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::ESRCH) => Ok(()),
            Err(e) => Err(nl_err("delete unreachable route")(e)),
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

    /// Deletes every IPv4 default route of the main table, whoever added it (a container whose
    /// networks are all `--internal` has none); none there is success.
    pub async fn delete_default_routes(&self) -> Result<()> {
        let defaults = self
            .ipv4_routes()
            .await?
            .into_iter()
            .filter(|r| r.header.destination_prefix_length == 0 && route_table(r) == u32::from(RT_TABLE_MAIN));
        for route in defaults {
            match self.handle.route().del(route).execute().await {
                Ok(()) => {}
                Err(e) if is_errno(&e, libc::ESRCH) => {}
                Err(e) => return Err(nl_err("delete default route")(e)),
            }
        }
        Ok(())
    }

    /// The kernel's packet and byte counters of the link `name` (IFLA_STATS64), or `None`
    /// when there is no such link.
    pub async fn link_counters(&self, name: &str) -> Result<Option<LinkCounters>> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            Ok(None) => return Ok(None),
            Err(e) if is_errno(&e, libc::ENODEV) => return Ok(None),
            Err(e) => return Err(nl_err("get link")(e)),
        };
        let stats = link.attributes.into_iter().find_map(|a| match a {
            LinkAttribute::Stats64(s) => Some(s),
            _ => None,
        });
        let stats =
            stats.ok_or_else(|| Error::Netlink(NetlinkError::Unexpected(format!("link {name} has no statistics"))))?;
        Ok(Some(LinkCounters {
            rx_packets: stats.rx_packets,
            rx_bytes: stats.rx_bytes,
            tx_packets: stats.tx_packets,
            tx_bytes: stats.tx_bytes,
        }))
    }

    /// The host's IPv4 addresses (every link) and routes (every table) as plain data, for
    /// IPAM's checks (`ipam::host`), which decide what counts.
    pub async fn host_addressing(&self) -> Result<HostAddressing> {
        let names = self.link_names().await?;
        let dev = |index: u32| names.get(&index).cloned().unwrap_or_else(|| format!("if{index}"));
        let mut addresses = Vec::new();
        let mut dump = self.handle.address().get().execute();
        while let Some(msg) = dump.try_next().await.map_err(nl_err("list addresses"))? {
            let Some(ip) = address_ipv4(&msg) else { continue };
            let dev = dev(msg.header.index);
            let label = address_label(&msg).map_or_else(|| dev.clone(), str::to_string);
            addresses.push(HostAddress { ip, prefix: msg.header.prefix_len, dev, label });
        }
        let routes = self
            .ipv4_routes()
            .await?
            .iter()
            .filter_map(|r| {
                Some(HostRoute {
                    destination: route_destination(r)?,
                    kind: match r.header.kind {
                        RouteType::Unicast => RouteKind::Unicast,
                        RouteType::Local => RouteKind::Local,
                        RouteType::Broadcast => RouteKind::Broadcast,
                        _ => RouteKind::Other,
                    },
                    table: route_table(r),
                    scope_link: r.header.scope == RouteScope::Link,
                    protocol: r.header.protocol.into(),
                    dev: route_oif(r).map(dev),
                })
            })
            .collect();
        Ok(HostAddressing { addresses, routes })
    }

    /// Every IPv4 address of this netns (every link).
    pub async fn ipv4_addresses(&self) -> Result<Vec<Ipv4Addr>> {
        let mut addrs = Vec::new();
        let mut dump = self.handle.address().get().execute();
        while let Some(msg) = dump.try_next().await.map_err(nl_err("list addresses"))? {
            addrs.extend(address_ipv4(&msg));
        }
        addrs.sort();
        addrs.dedup();
        Ok(addrs)
    }

    /// Every link's name by index.
    async fn link_names(&self) -> Result<BTreeMap<u32, String>> {
        let mut links = self.handle.link().get().execute();
        let mut names = BTreeMap::new();
        while let Some(link) = links.try_next().await.map_err(nl_err("list links"))? {
            let index = link.header.index;
            names.extend(link_name(link.attributes).map(|name| (index, name)));
        }
        Ok(names)
    }

    /// The uplink `name` as the datapath needs it: its ifindex and primary IPv4 address (the
    /// first global one the kernel lists; later ones on the same subnet are secondaries).
    pub async fn uplink(&self, name: &str) -> Result<Option<crate::datapath::Uplink>> {
        let Some(ifindex) = self.link_index(name).await? else {
            return Ok(None);
        };
        let mut dump = self.handle.address().get().set_link_index_filter(ifindex).execute();
        let mut nat_addr = None;
        while let Some(msg) = dump.try_next().await.map_err(nl_err("list addresses"))? {
            if nat_addr.is_none() && msg.header.scope == netlink_packet_route::address::AddressScope::Universe {
                nat_addr = address_ipv4(&msg);
            }
        }
        Ok(Some(crate::datapath::Uplink { ifname: name.to_string(), ifindex, nat_addr }))
    }

    /// The names of the devices that carry the default routes.
    pub async fn default_route_devices(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for route in self.ipv4_routes().await? {
            let Some(index) = (route.header.destination_prefix_length == 0).then(|| route_oif(&route)).flatten() else {
                continue;
            };
            let mut links = self.handle.link().get().match_index(index).execute();
            if let Some(link) = links.try_next().await.map_err(nl_err("get link"))? {
                names.extend(link_name(link.attributes));
            }
        }
        Ok(names)
    }

    /// Adds an address with an IFA_LABEL (`ip addr add IP/PREFIX dev DEV label LABEL`). An
    /// address already there is adopted only if it carries the label: without it, it is
    /// someone else's, and whoever removes the label's addresses later must not take it.
    pub async fn add_labelled_address(&self, index: u32, ip: Ipv4Addr, prefix: u8, label: &str) -> Result<LabelledAdd> {
        let mut req = self.handle.address().add(index, ip.into(), prefix);
        req.message_mut().attributes.push(AddressAttribute::Label(label.to_string()));
        match req.execute().await {
            Ok(()) => Ok(LabelledAdd::Added),
            Err(e) if is_errno(&e, libc::EEXIST) => {
                let existing = self.find_address(index, ip, prefix).await?;
                match existing.as_ref().and_then(address_label) {
                    Some(l) if l == label => Ok(LabelledAdd::AlreadyThere),
                    _ => Ok(LabelledAdd::SomeoneElses),
                }
            }
            Err(e) => Err(nl_err("add address")(e)),
        }
    }

    /// The IPv4 addresses (with their prefix lengths) on a link that carry `label`.
    pub async fn labelled_addresses(&self, index: u32, label: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
        let mut addrs = self.handle.address().get().set_link_index_filter(index).execute();
        let mut out = Vec::new();
        while let Some(msg) = addrs.try_next().await.map_err(nl_err("list addresses"))? {
            if msg.header.index == index && address_label(&msg) == Some(label) {
                out.extend(address_ipv4(&msg).map(|ip| (ip, msg.header.prefix_len)));
            }
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
            Err(e) => Err(nl_err("delete route")(e)),
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

/// A route's table: RTA_TABLE when present (ids above 255), else the header's.
fn route_table(route: &RouteMessage) -> u32 {
    route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(route.header.table.into())
}

/// An IPv4 address's local address (IFA_LOCAL; IFA_ADDRESS where there is none).
fn address_ipv4(msg: &AddressMessage) -> Option<Ipv4Addr> {
    let v4 = |want_local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) if want_local => Some(*ip),
            AddressAttribute::Address(IpAddr::V4(ip)) if !want_local => Some(*ip),
            _ => None,
        })
    };
    v4(true).or_else(|| v4(false))
}

fn address_label(msg: &AddressMessage) -> Option<&str> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Label(l) => Some(l.as_str()),
        _ => None,
    })
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

/// IPv4 forwarding on, as an attribute of a link request. Over netlink rather than by writing
/// the device's `forwarding` sysctl: that write takes rtnl with a trylock and restarts the
/// whole system call while rtnl is taken, spinning on a CPU through every other client's link
/// changes. Only the attribute given is set; the device's other settings stay.
fn ipv4_forwarding_on() -> LinkAttribute {
    let mut conf = InetDevConf::default();
    conf.forwarding = 1;
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![AfSpecInet::DevConfRequest(conf)])])
}

/// The two ends of a veth pair to create (`Netlink::create_veth`).
#[derive(Clone, Copy)]
pub struct VethEnds<'a> {
    pub host_name: &'a str,
    pub host_mac: [u8; 6],
    pub peer_name: &'a str,
    pub peer_mac: [u8; 6],
    /// Where the peer is made.
    pub peer_netns: &'a Path,
}
