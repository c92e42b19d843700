//! Published ports in the container's transaction (docs/publishing.md, State): host ports are
//! resolved and checked before anything changes — random ones picked as Docker's allocator
//! does, conflicts with other containers' ports and with host sockets refused with Docker's
//! texts — and published with one datapath call once the endpoint exists.
use std::{
    collections::{BTreeMap, HashMap},
    net::{IpAddr, Ipv4Addr},
};

use super::{Kernel, Manager, State};
use crate::{
    error::{Error, Result},
    model::{Attachment, Container, Driver, Network},
    ports::{PortMapping, Proto, Published},
};

/// A host port chosen for one mapping, before the endpoint behind it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HostPort {
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl HostPort {
    pub fn published(self, backend: Ipv4Addr) -> Published {
        Published {
            host_ip: self.host_ip,
            host_port: self.host_port,
            container_port: self.container_port,
            proto: self.proto,
            backend,
        }
    }
}

/// The cursor of Docker's allocator: random host ports are handed out sequentially after the
/// last one, per protocol (kept in memory: a restarted daemon starts at the range's start).
#[derive(Default)]
pub(super) struct PortCursor {
    last: BTreeMap<Proto, u16>,
}

/// The attachment whose endpoint is the container's gateway endpoint — it carries the default
/// route and the published ports (libnetwork programs a sandbox's port mappings on its gateway
/// endpoint): of the bridge networks that are not internal, the one whose name sorts first
/// (`Container::default_route_endpoint`). `None`: no default route and nothing published
/// (`--network none`, only internal networks).
pub(super) fn gateway_slot(attachments: &[Attachment], networks: &BTreeMap<String, Network>) -> Option<usize> {
    attachments
        .iter()
        .enumerate()
        .filter(|(_, a)| is_gateway_network(networks, &a.network))
        .min_by_key(|(_, a)| crate::model::gateway_order(networks, &a.network))
        .map(|(slot, _)| slot)
}

/// Whether an endpoint on `network` may be a gateway endpoint (a bridge that is not internal).
pub(super) fn is_gateway_network(networks: &BTreeMap<String, Network>, network: &str) -> bool {
    networks
        .get(network)
        .is_some_and(|n| matches!(n.driver, Driver::Bridge | Driver::Overlay) && !n.internal && n.ipam.is_some())
}

/// Docker's prefix of a failed port mapping.
fn driver_failed(name: &str, endpoint_id: &str, why: String) -> Error {
    Error::Conflict(format!(
        "driver failed programming external connectivity on endpoint {name} ({endpoint_id}): {why}"
    ))
}

/// Whether two host addresses share a port: the same address, or either is every address.
fn overlaps(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

impl State {
    /// Host ports held by running containers and Docker endpoints other than `except` (a
    /// container or Docker endpoint id): (port, proto) → addresses.
    fn held_ports(&self, except: &str) -> HashMap<(u16, Proto), Vec<Ipv4Addr>> {
        let mut held: HashMap<(u16, Proto), Vec<Ipv4Addr>> = HashMap::new();
        let containers = self.containers.values().filter(|c| c.id != except && c.running()).flat_map(|c| &c.published);
        let docker = self.networks.values().flat_map(|n| n.docker_endpoints());
        let docker = docker.filter(|d| d.endpoint.id != except).flat_map(|d| &d.published);
        for p in containers.chain(docker) {
            held.entry((p.host_port, p.proto)).or_default().push(p.host_ip);
        }
        held
    }
}

impl<K: Kernel> Manager<K> {
    /// Picks and checks the host ports of `c`'s bindings; its endpoint (for the error texts) will
    /// be `endpoint_id`. Changes nothing but the allocator's cursor. Fixed ports: refused when
    /// another container holds the same address (`port is already allocated`) or an
    /// overlapping one, or a host socket holds it (`address already in use`, as docker-proxy's
    /// listen failed). Random ports: the next free one after the cursor in the ephemeral range,
    /// skipping `ip_local_reserved_ports`; a host range: its first free port.
    pub(super) fn resolve_ports(&self, state: &mut State, c: &Container, endpoint_id: &str) -> Result<Vec<HostPort>> {
        self.resolve_mappings(state, &c.id, &c.name, &c.ports, endpoint_id)
    }

    /// [`Self::resolve_ports`] for the `mappings` of `owner` (a container or Docker endpoint
    /// id; `name` is for the error texts).
    pub(super) fn resolve_mappings(
        &self,
        state: &mut State,
        owner: &str,
        name: &str,
        mappings: &[PortMapping],
        endpoint_id: &str,
    ) -> Result<Vec<HostPort>> {
        let mut held = state.held_ports(owner);
        let local = self.kernel.local_ports();
        let mut chosen = Vec::with_capacity(mappings.len());
        for m in mappings {
            let host_ip = match m.host_ip {
                None => Ipv4Addr::UNSPECIFIED,
                Some(IpAddr::V4(ip)) => ip,
                Some(IpAddr::V6(ip)) => {
                    return Err(Error::InvalidArgument(format!("netd publishes on IPv4 addresses only: {ip}")))
                }
            };
            // Why a host port cannot be had: `None` when it is free.
            let refusal = |held: &HashMap<(u16, Proto), Vec<Ipv4Addr>>, port: u16| -> Option<String> {
                let holders = held.get(&(port, m.proto)).map(Vec::as_slice).unwrap_or_default();
                if holders.contains(&host_ip) {
                    return Some(format!("Bind for {host_ip}:{port} failed: port is already allocated"));
                }
                let listen = || format!("Error starting userland proxy: listen {}4 {host_ip}:{port}: bind:", m.proto);
                if holders.iter().any(|&h| overlaps(h, host_ip)) {
                    return Some(format!("{} address already in use", listen()));
                }
                self.kernel.try_bind(host_ip, port, m.proto).err().map(|why| format!("{} {why}", listen()))
            };
            let port = match m.host_ports {
                Some((a, b)) if a == b && a != 0 => {
                    if let Some(why) = refusal(&held, a) {
                        return Err(driver_failed(name, endpoint_id, why));
                    }
                    a
                }
                Some((a, b)) if a != 0 => (a..=b)
                    .find(|&p| refusal(&held, p).is_none())
                    .ok_or_else(|| driver_failed(name, endpoint_id, "all ports are allocated".into()))?,
                _ => {
                    let (start, end) = (local.start, local.end);
                    let last = state.port_cursor.last.get(&m.proto).copied().unwrap_or(end);
                    let span = u32::from(end - start) + 1;
                    let first = if last >= end || last < start { start } else { last + 1 };
                    let port = (0..span)
                        .map(|i| (start as u32 + (u32::from(first - start) + i) % span) as u16)
                        .find(|p| !local.reserved.contains(p) && refusal(&held, *p).is_none())
                        .ok_or_else(|| driver_failed(name, endpoint_id, "all ports are allocated".into()))?;
                    state.port_cursor.last.insert(m.proto, port);
                    port
                }
            };
            held.entry((port, m.proto)).or_default().push(host_ip);
            chosen.push(HostPort { host_ip, host_port: port, container_port: m.container_port, proto: m.proto });
        }
        Ok(chosen)
    }
}

/// Checks of `run`'s bindings against its network mode (Docker's runconfig): `container:`
/// refuses them; `host` and `none` keep them and publish nothing (the CLI warns for `host`).
pub(super) fn check_mode(mode: &crate::model::NetMode, ports: &[PortMapping]) -> Result<()> {
    if !ports.is_empty() && matches!(mode, crate::model::NetMode::Container(_)) {
        return Err(Error::InvalidArgument(
            "conflicting options: port publishing and the container type network mode".into(),
        ));
    }
    Ok(())
}
