//! Entry points of the cargo-fuzz targets (`fuzz/`, built with the `fuzzing` feature): each
//! feeds one untrusted input to the code that first reads it and checks what must hold for any
//! input, beyond not panicking. No I/O.
use std::collections::BTreeSet;

use crate::{
    api_types,
    daemon::ipam::{self, host::HostAddressing},
};

/// `-p`/`--publish` specs as the CLI parses them: every mapping has ports, a range maps as
/// many host ports as container ports (or a random host port), and parsing is deterministic.
pub fn publish_spec(spec: &str) {
    let parsed = crate::ports::parse_spec(spec);
    assert_eq!(parsed, crate::ports::parse_spec(spec), "parsing {spec:?} twice differs");
    if let Ok(mappings) = parsed {
        assert!(!mappings.is_empty(), "{spec:?} parsed to no mapping");
    }
}

/// `network create --subnet/--ip-range/--gateway` (NUL-separated) against two existing
/// networks: a config it accepts never overlaps them, its gateway is a host address of its
/// subnet, and the first address it hands out is in the subnet, not the gateway.
pub fn network_ipam(input: &str) {
    let mut parts = input.splitn(3, '\0');
    let mut next = || parts.next().filter(|s| !s.is_empty());
    let (subnet, range, gateway) = (next(), next(), next());
    let taken: Vec<ipnetwork::Ipv4Network> = vec!["172.17.0.0/16".parse().unwrap(), "10.5.0.0/24".parse().unwrap()];
    let host = HostAddressing::default();
    let Ok(cfg) = ipam::configure(subnet, range, gateway, &taken, &host, ipam::first_user_pool()) else { return };
    assert!(!taken.iter().any(|t| ipam::overlaps(&cfg.subnet, t)), "{input:?}: {cfg:?} overlaps");
    if gateway.is_none() {
        assert!(cfg.subnet.contains(cfg.gateway), "{input:?}: {cfg:?}");
    }
    assert!(cfg.gateway != cfg.subnet.network() && cfg.gateway != cfg.subnet.broadcast(), "{input:?}: {cfg:?}");
    if let Some(ip) = ipam::next_address(&cfg, &BTreeSet::from([cfg.gateway])) {
        assert!(ip != cfg.gateway, "{input:?}: {cfg:?} hands out its gateway");
        assert!(
            cfg.subnet.contains(ip) || cfg.ip_range.is_some_and(|r| r.contains(ip)),
            "{input:?}: {ip} outside {cfg:?}"
        );
    }
}

/// A `--format` template, parsed and run on a container-like object, as a row and as a header.
pub fn template(src: &str) {
    use crate::cli::template::Template;
    let Ok(template) = Template::parse(src) else { return };
    let data = serde_json::json!({
        "Id": "0123456789ab", "Name": "/web", "State": {"Running": true, "Pid": 42},
        "Config": {"Labels": {"a": "b"}, "Env": ["A=1"]},
        "NetworkSettings": {"Networks": {"my-net": {"IPAddress": "172.18.0.2", "Aliases": ["web"]}}},
        "Ports": [1, 2.5, null, "x"],
    });
    let _ = template.execute(&data);
    let _ = template.execute_row(&data, "container");
    let _ = template.execute_header(&data);
}

/// One DNS query from a container (see `daemon::dns::fuzz_query`); the first byte picks UDP
/// or TCP.
pub fn dns_query(input: &[u8]) {
    let Some((&transport, raw)) = input.split_first() else { return };
    let _ = crate::daemon::dns::fuzz_query(raw, transport & 1 == 1);
}

/// A request body as the API decodes it, for each request type; what decodes encodes and
/// decodes back to the same request.
pub fn api_request(body: &[u8]) {
    fn round_trip<T>(body: &[u8])
    where
        T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
    {
        if let Ok(request) = serde_json::from_slice::<T>(body) {
            let again: T = serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
            assert_eq!(again, request);
        }
    }
    round_trip::<api_types::CreateNetwork>(body);
    round_trip::<api_types::RunContainer>(body);
    round_trip::<api_types::ConnectRequest>(body);
    round_trip::<api_types::DisconnectRequest>(body);
    round_trip::<api_types::RemoveContainer>(body);
}
