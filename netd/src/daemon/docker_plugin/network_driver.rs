//! `NetworkDriver.*`: Docker's requests turned into the manager's Docker operations
//! (`manager/docker.rs`), and their answers in Docker's shapes.
use std::{collections::BTreeMap, net::Ipv4Addr};

use ipnetwork::Ipv4Network;
use serde_json::{json, Value};

use super::{
    types::{
        Capabilities, CreateEndpoint, CreateEndpointReply, CreateNetwork, Ids, InterfaceName, InterfaceReply, Join,
        JoinReply, PortBinding, ProgramExternalConnectivity, ENABLE_IPV6, GENERIC_OPTIONS, INTERNAL, PORT_MAP,
    },
    PluginError,
};
use crate::{
    kernel::Kernel,
    manager::{docker::DockerNetworkRequest, Manager},
    model::format_mac,
    ports::{PortMapping, Proto},
};

/// Local scope both ways: `global` needs a KV store in dockerd.
pub fn capabilities() -> Capabilities {
    Capabilities { scope: "local".into(), connectivity_scope: "local".into() }
}

/// CreateNetwork's pool, gateway, internal flag and `-o` options; IPv6 and more than one IPv4
/// pool are refused (netd's networks have one IPv4 subnet).
pub fn network_request(req: CreateNetwork) -> Result<DockerNetworkRequest, PluginError> {
    if !req.ipv6_data.is_empty() || req.options.get(ENABLE_IPV6).and_then(Value::as_bool) == Some(true) {
        return Err(PluginError::bad("netd networks are IPv4 only (no --ipv6)"));
    }
    let data = match req.ipv4_data.as_slice() {
        [one] => one,
        [] => return Err(PluginError::bad("netd networks need an IPv4 pool")),
        _ => return Err(PluginError::bad("netd networks have one IPv4 subnet (one --subnet)")),
    };
    let subnet = parse_cidr("Pool", &data.pool)?;
    let subnet = Ipv4Network::new(subnet.network(), subnet.prefix()).map_err(|e| PluginError::bad(e.to_string()))?;
    let gateway = parse_cidr("Gateway", &data.gateway)?.ip();
    if data.aux_addresses.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(PluginError::bad("netd networks take no auxiliary addresses (--aux-address)"));
    }
    let internal = req.options.get(INTERNAL).and_then(Value::as_bool).unwrap_or(false);
    let options = match req.options.get(GENERIC_OPTIONS) {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => {
            map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect()
        }
        Some(other) => return Err(PluginError::bad(format!("{GENERIC_OPTIONS} is not an object: {other}"))),
    };
    crate::model::mtu_option(&options).map_err(PluginError::bad)?;
    Ok(DockerNetworkRequest { id: req.network_id, subnet, gateway, internal, options })
}

fn parse_cidr(what: &str, s: &str) -> Result<Ipv4Network, PluginError> {
    s.parse::<Ipv4Network>()
        .ok()
        .filter(|_| s.contains('/'))
        .ok_or_else(|| PluginError::bad(format!("invalid IPv4 {what} {s:?}: not a CIDR")))
}

/// Parses a MAC as Go prints it (`aa:bb:cc:dd:ee:ff`).
fn parse_mac(s: &str) -> Result<[u8; 6], PluginError> {
    let bytes: Vec<u8> = s.split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    match (s.split(':').count(), <[u8; 6]>::try_from(bytes)) {
        (6, Ok(mac)) => Ok(mac),
        _ => Err(PluginError::bad(format!("invalid MAC address {s:?}"))),
    }
}

/// CreateEndpoint: the address Docker's (or netd's) IPAM gave must be there; the MAC is
/// returned only when Docker sent none.
pub async fn create_endpoint<K: Kernel>(
    manager: &Manager<K>,
    req: CreateEndpoint,
) -> Result<CreateEndpointReply, PluginError> {
    let iface = req.interface.unwrap_or_default();
    if !iface.address_ipv6.is_empty() {
        return Err(PluginError::bad("netd endpoints are IPv4 only"));
    }
    if iface.address.is_empty() {
        return Err(PluginError::bad("the endpoint has no IPv4 address"));
    }
    let address = parse_cidr("Address", &iface.address)?;
    let given = (!iface.mac_address.is_empty()).then(|| parse_mac(&iface.mac_address)).transpose()?;
    let mac = manager.docker_create_endpoint(&req.network_id, &req.endpoint_id, address, given).await?;
    Ok(CreateEndpointReply { interface: given.is_none().then(|| InterfaceReply { mac_address: format_mac(&mac) }) })
}

pub async fn join<K: Kernel>(manager: &Manager<K>, req: Join) -> Result<JoinReply, PluginError> {
    let info = manager.docker_join(&req.network_id, &req.endpoint_id).await?;
    Ok(JoinReply {
        interface_name: InterfaceName { src_name: info.src_name, dst_prefix: "eth".into() },
        gateway: info.gateway.to_string(),
        disable_gateway_service: true,
    })
}

/// `com.docker.network.portmap` as netd's port mappings: tcp and udp; HostIP "" is every
/// address; HostPort 0 a port netd picks; HostPort..HostPortEnd a range to pick one from.
pub fn port_mappings(options: &BTreeMap<String, Value>) -> Result<Vec<PortMapping>, PluginError> {
    let bindings: Vec<PortBinding> = match options.get(PORT_MAP) {
        None | Some(Value::Null) => vec![],
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| PluginError::bad(format!("{PORT_MAP}: {e}")))?,
    };
    bindings.iter().map(port_mapping).collect()
}

fn port_mapping(b: &PortBinding) -> Result<PortMapping, PluginError> {
    let proto = match b.proto {
        6 => Proto::Tcp,
        17 => Proto::Udp,
        other => return Err(PluginError::bad(format!("netd publishes tcp and udp ports only (protocol {other})"))),
    };
    if b.port == 0 {
        return Err(PluginError::bad("a port binding without a container port"));
    }
    let host_ip = match b.host_ip.as_str() {
        "" => None,
        ip => match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) if v4 == Ipv4Addr::UNSPECIFIED => None,
            Ok(ip) => Some(ip),
            Err(_) => return Err(PluginError::bad(format!("invalid HostIP {ip:?}"))),
        },
    };
    let host_ports = match (b.host_port, b.host_port_end) {
        (0, _) => None,
        (a, end) if end <= a => Some((a, a)),
        (a, end) => Some((a, end)),
    };
    Ok(PortMapping { container_port: b.port, proto, host_ip, host_ports })
}

pub async fn program<K: Kernel>(manager: &Manager<K>, req: ProgramExternalConnectivity) -> Result<Value, PluginError> {
    let mappings = port_mappings(&req.options)?;
    manager.docker_program(&req.network_id, &req.endpoint_id, &mappings).await?;
    Ok(json!({}))
}

pub async fn revoke<K: Kernel>(manager: &Manager<K>, req: Ids) -> Result<Value, PluginError> {
    manager.docker_revoke(&req.network_id, &req.endpoint_id).await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portmap_parsing_covers_random_ports_ranges_and_every_address() {
        let options: BTreeMap<String, Value> = serde_json::from_value(json!({
            "com.docker.network.portmap": [
                {"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080},
                {"Proto":17,"IP":"","Port":53,"HostIP":"127.0.0.1","HostPort":0,"HostPortEnd":0},
                {"Proto":6,"IP":"","Port":443,"HostIP":"0.0.0.0","HostPort":8000,"HostPortEnd":8010}
            ],
            "com.docker.network.endpoint.exposedports": [{"Proto":6,"Port":80}]
        }))
        .unwrap();
        let m = port_mappings(&options).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            (m[0].proto, m[0].container_port, m[0].host_ip, m[0].host_ports),
            (Proto::Tcp, 80, None, Some((8080, 8080)))
        );
        assert_eq!(m[1].proto, Proto::Udp);
        assert_eq!(m[1].host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(m[1].host_ports, None);
        assert_eq!((m[2].host_ip, m[2].host_ports), (None, Some((8000, 8010))));
        assert!(port_mappings(&BTreeMap::new()).unwrap().is_empty());
    }

    #[test]
    fn sctp_and_bad_host_addresses_are_refused() {
        let sctp = PortBinding { proto: 132, port: 80, ..Default::default() };
        assert!(port_mapping(&sctp).unwrap_err().0.contains("tcp and udp"));
        let bad = PortBinding { proto: 6, port: 80, host_ip: "nope".into(), ..Default::default() };
        assert!(port_mapping(&bad).unwrap_err().0.contains("HostIP"));
    }

    #[test]
    fn create_network_reads_pool_gateway_internal_and_generic_options() {
        let req: CreateNetwork = serde_json::from_value(json!({
            "NetworkID": "8d7c",
            "Options": {"com.docker.network.enable_ipv6": false, "com.docker.network.internal": true,
                        "com.docker.network.generic": {"mtu": "1450"}},
            "IPv4Data": [{"AddressSpace":"LocalDefault","Pool":"172.19.0.0/16","Gateway":"172.19.0.1/16"}],
            "IPv6Data": []
        }))
        .unwrap();
        let r = network_request(req).unwrap();
        assert_eq!(r.subnet, "172.19.0.0/16".parse::<Ipv4Network>().unwrap());
        assert_eq!(r.gateway, Ipv4Addr::new(172, 19, 0, 1));
        assert!(r.internal);
        assert_eq!(r.options.get("mtu").map(String::as_str), Some("1450"));
        let v6: CreateNetwork = serde_json::from_value(json!({"NetworkID":"x","IPv6Data":[{"Pool":"fd00::/64"}],
            "IPv4Data": [{"Pool":"172.19.0.0/16","Gateway":"172.19.0.1/16"}]}))
        .unwrap();
        assert!(network_request(v6).is_err());
        let none: CreateNetwork = serde_json::from_value(json!({"NetworkID":"x"})).unwrap();
        assert!(network_request(none).unwrap_err().0.contains("IPv4 pool"));
    }

    #[test]
    fn macs_parse_as_go_prints_them() {
        assert_eq!(parse_mac("02:42:ac:13:00:02").unwrap(), [2, 0x42, 0xac, 0x13, 0, 2]);
        assert!(parse_mac("02:42:ac:13:00").is_err());
        assert!(parse_mac("zz:42:ac:13:00:02").is_err());
    }
}
