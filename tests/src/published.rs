//! What the datapath holds for published ports, read from its pinned maps.
use std::{collections::BTreeSet, net::Ipv4Addr};

use aya::maps::{HashMap, Map, MapData};

use crate::TestHost;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// The service map's entries: (host address, host port, proto) → (backend, container port).
pub fn services(host: &TestHost) -> BTreeSet<(Ipv4Addr, u16, u8, Ipv4Addr, u16)> {
    let data = MapData::from_pin(host.bpffs.join("maps/NETD_SVC_V1")).expect("open the pinned service map");
    let map: HashMap<MapData, [u8; 8], [u8; 8]> = HashMap::try_from(Map::HashMap(data)).unwrap();
    map.iter()
        .map(|e| {
            let (k, v) = e.unwrap();
            (
                Ipv4Addr::new(k[0], k[1], k[2], k[3]),
                u16::from_ne_bytes([k[4], k[5]]),
                k[6],
                Ipv4Addr::new(v[0], v[1], v[2], v[3]),
                u16::from_ne_bytes([v[4], v[5]]),
            )
        })
        .collect()
}

/// The reserved-port map's entries: (port, proto).
pub fn reserved(host: &TestHost) -> BTreeSet<(u16, u8)> {
    let data = MapData::from_pin(host.bpffs.join("maps/NETD_RSVD_V1")).expect("open the pinned reserved-port map");
    let map: HashMap<MapData, [u8; 4], u8> = HashMap::try_from(Map::HashMap(data)).unwrap();
    map.keys().map(|k| k.unwrap()).map(|k| (u16::from_ne_bytes([k[0], k[1]]), k[2])).collect()
}
