//! The floor: a bare veth pair between two netns, no bridge, no BPF, no netfilter rules.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};

use super::{Endpoint, Kind, Names, Topology};
use crate::sys::Netns;

/// TEST-NET-3; these addresses exist only inside the two namespaces below.
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);

pub struct VethPair {
    server: Endpoint,
    client: Endpoint,
    // Dropping the namespaces deletes the veth pair with them.
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
        Ok(Self {
            server: Endpoint { netns: server_ns.path(), ip: SERVER_IP },
            client: Endpoint { netns: client_ns.path(), ip: CLIENT_IP },
            _server_ns: server_ns,
            _client_ns: client_ns,
        })
    }
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
}
