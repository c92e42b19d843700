//! Docker-shaped JSON for the API and the CLI (kept apart from the internal model, like
//! netavark's types.rs vs internal_types.rs).
use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::{
    container_files::ContainerFiles,
    model::{format_mac, Container, Endpoint, NetMode, Network},
};

/// `docker network inspect` object.
pub fn network(n: &Network, members: &[(Container, Endpoint)]) -> Value {
    let config: Vec<Value> = n
        .ipam
        .iter()
        .map(|i| {
            let mut c = Map::new();
            c.insert("Subnet".into(), json!(i.subnet.to_string()));
            if let Some(r) = i.ip_range {
                c.insert("IPRange".into(), json!(r.to_string()));
            }
            c.insert("Gateway".into(), json!(i.gateway.to_string()));
            Value::Object(c)
        })
        .collect();
    let containers: Map<String, Value> = members
        .iter()
        .map(|(c, ep)| {
            (
                c.id.clone(),
                json!({
                    "Name": c.name,
                    "EndpointID": ep.id,
                    "MacAddress": format_mac(&ep.mac),
                    "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver.as_str(),
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": {}, "Config": config },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

/// `docker inspect CONTAINER` object (the parts netd has).
pub fn container(c: &Container, network_names: &BTreeMap<String, String>, files: &ContainerFiles) -> Value {
    let networks: Map<String, Value> = c
        .endpoints
        .iter()
        .map(|ep| {
            let name = network_names.get(&ep.network).cloned().unwrap_or_default();
            (
                name,
                json!({
                    "Aliases": ep.aliases,
                    "NetworkID": ep.network,
                    "EndpointID": ep.id,
                    "Gateway": ep.gateway.to_string(),
                    "IPAddress": ep.ip.to_string(),
                    "IPPrefixLen": ep.prefix,
                    "MacAddress": format_mac(&ep.mac),
                    "InterfaceName": ep.ifname,
                }),
            )
        })
        .collect();
    let network_mode = match &c.mode {
        NetMode::Own => c.endpoints.first().and_then(|ep| network_names.get(&ep.network).cloned()).unwrap_or_default(),
        NetMode::Host => "host".into(),
        NetMode::None => "none".into(),
        NetMode::Container(id) => format!("container:{id}"),
    };
    let running = c.pid.is_some_and(crate::process::alive);
    let first = c.endpoints.first();
    json!({
        "Id": c.id,
        "Created": c.created,
        "Name": format!("/{}", c.name),
        "State": { "Running": running, "Pid": c.pid.unwrap_or(0) },
        "Config": { "Hostname": c.hostname, "Cmd": c.cmd },
        "HostConfig": { "NetworkMode": network_mode },
        "HostsPath": files.hosts(),
        "ResolvConfPath": files.resolv_conf(),
        "NetworkSettings": {
            "SandboxKey": c.netns.clone().unwrap_or_default(),
            "Gateway": first.map(|e| e.gateway.to_string()).unwrap_or_default(),
            "IPAddress": first.map(|e| e.ip.to_string()).unwrap_or_default(),
            "IPPrefixLen": first.map(|e| e.prefix).unwrap_or(0),
            "MacAddress": first.map(|e| format_mac(&e.mac)).unwrap_or_default(),
            "Networks": networks,
        },
    })
}
