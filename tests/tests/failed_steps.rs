//! A kernel step that fails undoes every earlier step of its operation (issue: host safety):
//! with the endpoint map full, `network connect` and `run` fail cleanly — no interface map
//! entry, veth, route, pin or half-connected container is left, however often they are tried.
use std::path::Path;

use aya::maps::{HashMap, Map, MapData};
use netd_tests::{TestHost, ENDPOINT_MAP, INTERFACE_MAP};

/// Fills the pinned endpoint map to capacity with addresses in 10.0.0.0/8 (no netd network
/// uses them here); returns the keys added.
fn fill_endpoint_map(bpffs: &Path) -> Vec<u32> {
    let data = MapData::from_pin(bpffs.join(ENDPOINT_MAP)).expect("open the pinned endpoint map");
    let mut map: HashMap<MapData, u32, [u8; 20]> = HashMap::try_from(Map::HashMap(data)).unwrap();
    let mut added = Vec::new();
    for i in 0..70_000u32 {
        let key = u32::from_ne_bytes((0x0a00_0000 + i).to_be_bytes());
        if map.insert(key, [0u8; 20], 0).is_err() {
            break;
        }
        added.push(key);
    }
    assert!(map.insert(0x0a7f_ffff, [0u8; 20], 0).is_err(), "the endpoint map did not fill up");
    added
}

fn empty_endpoint_map(bpffs: &Path, keys: &[u32]) {
    let data = MapData::from_pin(bpffs.join(ENDPOINT_MAP)).unwrap();
    let mut map: HashMap<MapData, u32, [u8; 20]> = HashMap::try_from(Map::HashMap(data)).unwrap();
    for k in keys {
        map.remove(k).unwrap();
    }
}

fn interface_map_keys(bpffs: &Path) -> Vec<u32> {
    let data = MapData::from_pin(bpffs.join(INTERFACE_MAP)).unwrap();
    let map: HashMap<MapData, u32, [u8; 28]> = HashMap::try_from(Map::HashMap(data)).unwrap();
    let mut keys: Vec<u32> = map.keys().map(|k| k.unwrap()).collect();
    keys.sort();
    keys
}

#[test]
fn a_full_endpoint_map_fails_connect_and_run_cleanly() {
    let host = TestHost::start();
    host.ok(&["network", "create", "fm-one"]);
    host.ok(&["network", "create", "fm-two"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "fm-one"]);
    let filler = fill_endpoint_map(&host.bpffs);
    let (before, interfaces) = (host.snapshot(), interface_map_keys(&host.bpffs));
    for _ in 0..3 {
        let err = host.fails(&["network", "connect", "fm-two", "c1"]);
        assert!(err.contains("endpoint map"), "{err}");
        let err = host.fails(&["run", "-d", "--name", "d1", "--network", "fm-two"]);
        assert!(err.contains("endpoint map"), "{err}");
    }
    assert_eq!(host.snapshot(), before, "a failed connect or run changed something");
    assert_eq!(interface_map_keys(&host.bpffs), interfaces, "failed attempts left interface map entries");
    let c = &host.json(&["inspect", "c1"])[0];
    assert_eq!(c["NetworkSettings"]["Networks"].as_object().unwrap().len(), 1, "half-connected: {c}");
    // With room again, both work.
    empty_endpoint_map(&host.bpffs, &filler);
    host.ok(&["network", "connect", "fm-two", "c1"]);
    host.ok(&["run", "-d", "--name", "d1", "--network", "fm-two"]);
}
