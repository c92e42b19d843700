//! The floor: a bare veth pair between two netns, no bridge, no BPF, no netfilter rules.
//!
//! For the "container → outside" rows the floor is a bare routed path instead: a client netns
//! → veth → a router netns with forwarding on (`net.ipv4.ip_forward=1` in that netns only) →
//! veth → an outside netns, no NAT (the outside routes the client's subnet back to the
//! router). The cheapest way out of a namespace, which masquerade can only add to.

use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};

use super::{checked_egress, connect_uplink, Egress, Endpoint, Kind, Names, Topology, Unsupported, HOST_UPLINK_IP};
use crate::sys::{self, Netns};

/// TEST-NET-3; these addresses exist only inside the two namespaces below.
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

/// The routed floor's client subnet (TEST-NET-3, its upper half): the router's side and the
/// client's. The router's uplink side and the outside are the usual 198.51.100.2 / .1.
const ROUTED_GW: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 129);
const ROUTED_CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 130);
const ROUTED_SUBNET: &str = "203.0.113.128/25";

pub struct VethPair {
    server: Endpoint,
    client: Endpoint,
    /// The routed floor for the "container → outside" rows, or why it could not be built.
    egress: Result<Egress, String>,
    // Dropping the namespaces deletes the veth pairs with them (and the router's forwarding
    // setting, which lives in its namespace).
    _routed: Vec<Netns>,
    _server_ns: Netns,
    _client_ns: Netns,
}

impl VethPair {
    pub fn setup(names: &Names) -> Result<Self> {
        let server_ns = Netns::create(&names.netns("veth-s"))?;
        let client_ns = Netns::create(&names.netns("veth-c"))?;
        let (s_if, c_if) = (names.ifname("vs"), names.ifname("vc"));
        server_ns
            .ip(&["link", "add", &s_if, "type", "veth", "peer", "name", &c_if, "netns", &client_ns.name])
            .context("creating the veth pair")?;
        server_ns.ip(&["addr", "add", &format!("{SERVER_IP}/24"), "dev", &s_if])?;
        client_ns.ip(&["addr", "add", &format!("{CLIENT_IP}/24"), "dev", &c_if])?;
        server_ns.ip(&["link", "set", &s_if, "up"])?;
        client_ns.ip(&["link", "set", &c_if, "up"])?;
        let mut routed = Vec::new();
        let egress = match routed_floor(names, &mut routed) {
            Ok(()) => checked_egress(routed[0].path(), &routed[2]),
            Err(e) => Err(format!("building the routed floor: {e:#}")),
        };
        Ok(Self {
            server: Endpoint { netns: server_ns.path(), ip: SERVER_IP },
            client: Endpoint { netns: client_ns.path(), ip: CLIENT_IP },
            egress,
            _routed: routed,
            _server_ns: server_ns,
            _client_ns: client_ns,
        })
    }
}

/// Builds client → router → outside, their netns pushed onto `made` in that order as they are
/// created (so that a failure half-way still removes them).
fn routed_floor(names: &Names, made: &mut Vec<Netns>) -> Result<()> {
    made.push(Netns::create(&names.netns("rt-c"))?);
    made.push(Netns::create(&names.netns("rt-r"))?);
    made.push(Netns::create(&names.netns("rt-o"))?);
    let [client, router, outside] = &made[..] else { unreachable!("three netns") };
    let (c_if, r_if) = (names.ifname("rc"), names.ifname("ri"));
    client.ip(&["link", "add", &c_if, "type", "veth", "peer", "name", &r_if, "netns", &router.name])?;
    client.ip(&["addr", "add", &format!("{ROUTED_CLIENT}/25"), "dev", &c_if])?;
    router.ip(&["addr", "add", &format!("{ROUTED_GW}/25"), "dev", &r_if])?;
    client.ip(&["link", "set", &c_if, "up"])?;
    router.ip(&["link", "set", &r_if, "up"])?;
    client.ip(&["route", "add", "default", "via", &ROUTED_GW.to_string()])?;
    connect_uplink(router, outside, &names.ifname("ru"), &names.ifname("ro"))?;
    outside.ip(&["route", "add", ROUTED_SUBNET, "via", &HOST_UPLINK_IP.to_string()])?;
    // Forwarding on in the router's namespace only: `sysctl` entered into that netns alone
    // (nsenter --net), where /proc/sys/net is the router's.
    sys::run(sys::netns_command(&router.path(), None, "sysctl").args(["-q", "-w", "net.ipv4.ip_forward=1"]))
        .context("turning forwarding on in the router netns")?;
    let now = sys::run(sys::netns_command(&router.path(), None, "sysctl").args(["-n", "net.ipv4.ip_forward"]))?;
    if now.trim() != "1" {
        bail!("the router netns's net.ipv4.ip_forward is {:?} after setting it to 1", now.trim());
    }
    Ok(())
}

impl Topology for VethPair {
    fn kind(&self) -> Kind {
        Kind::Veth
    }
    fn server(&self) -> &Endpoint {
        &self.server
    }
    fn client(&self) -> &Endpoint {
        &self.client
    }
    fn egress(&self) -> Result<&Egress, Unsupported> {
        self.egress.as_ref().map_err(|why| Unsupported::Unavailable(why.clone()))
    }
}
