//! Map layout migration: a daemon that starts over the pins of an older netd copies the entries
//! of each retired map layout into the map that replaced it, and unpins the old map only once
//! every link runs this daemon's programs (which use the new maps).
//!
//! The order follows Cilium's: the new map exists (pinned under its own versioned name) and is
//! filled before any program that reads it is attached; the old programs keep their old maps
//! through their links until those are updated atomically; only then does the old pin go. A
//! crash anywhere leaves the old pin in place, so the next start copies again. Copies never
//! overwrite (`BPF_NOEXIST`): an entry already in the new map is at least as fresh as the old one.
use std::path::{Path, PathBuf};

use aya::{
    maps::{HashMap, Map, MapData, MapError},
    Ebpf, Pod,
};
use netd_common::{
    legacy::{self, EndpointV1, InterfaceV1},
    maps, EndpointValue, InterfaceValue,
};

use super::DatapathError;
use crate::error::Result;

/// `bpf_map_update_elem` flag: only add, never replace.
const BPF_NOEXIST: u64 = 1;

/// A retired map layout: the pin an older netd left, and how its entries reach today's map.
struct Retired {
    old: &'static str,
    new: &'static str,
    /// Copies the entries of the old map pinned at `old_pin` into `new` (`maps_dir` holds the
    /// other old pins a conversion may need).
    copy: fn(old_pin: &Path, maps_dir: &Path, new: &mut Map) -> Result<Copied>,
}

/// Every layout netd ever retired, in the order their pins go: a map whose conversion reads
/// another old map comes before it (`NETD_EP_V1` takes the host MAC from `NETD_IF_V1`).
///
/// A same-layout move (a map that only changes type or size, e.g. a hash becoming an LRU hash
/// under a new name) is one more row whose conversion is the identity:
/// `|old, _, new| copy_entries::<K, V, V>(old, new, |_, v| Some(*v))`.
const RETIRED: [Retired; 2] = [
    Retired { old: legacy::maps::ENDPOINTS_V1, new: maps::ENDPOINTS, copy: copy_endpoints_v1 },
    Retired { old: legacy::maps::INTERFACES_V1, new: maps::INTERFACES, copy: copy_interfaces_v1 },
];

/// What one copy did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Entries written into the new map.
    pub copied: u64,
    /// Entries the new map already had (an earlier, interrupted start copied them, or the new
    /// programs wrote them): left as they are.
    pub present: u64,
    /// Entries with no counterpart in the new layout.
    pub unconvertible: u64,
    /// Entries that could not be read, or that the new map refused (full).
    pub failed: u64,
}

/// The old pins whose entries were copied; they go once the links run the new programs.
#[derive(Debug, Default)]
pub struct Pending {
    pins: Vec<PathBuf>,
}

/// True when `name` is the pin of a retired layout (kept until `Pending::unpin`).
pub fn is_retired(name: &str) -> bool {
    RETIRED.iter().any(|r| r.old == name)
}

/// Copies every retired map pinned under `maps_dir` into its successor in `ebpf`. Must run
/// before any of this daemon's programs is attached. An old map that cannot be read (another
/// size than its layout, say) is logged and still unpinned later: it would never become
/// readable, and a pin must not stay forever.
pub fn copy_retired(maps_dir: &Path, ebpf: &mut Ebpf) -> Result<Pending> {
    let mut pending = Pending::default();
    for retired in &RETIRED {
        let old_pin = maps_dir.join(retired.old);
        if !old_pin.exists() {
            continue;
        }
        let new = ebpf.map_mut(retired.new).ok_or(DatapathError::Missing(retired.new))?;
        match (retired.copy)(&old_pin, maps_dir, new) {
            Ok(c) => {
                tracing::info!(
                    old = retired.old,
                    new = retired.new,
                    copied = c.copied,
                    present = c.present,
                    unconvertible = c.unconvertible,
                    failed = c.failed,
                    "migrated map layout"
                );
                if c.unconvertible + c.failed > 0 {
                    tracing::warn!(
                        old = retired.old,
                        new = retired.new,
                        unconvertible = c.unconvertible,
                        failed = c.failed,
                        "some entries of a retired map were not migrated"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(old = retired.old, error = %e, "cannot read a retired map; unpinning it unmigrated")
            }
        }
        pending.pins.push(old_pin);
        crate::crash::point("migrate:copied");
    }
    Ok(pending)
}

impl Pending {
    /// Unpins the migrated old maps. Call only when every link runs this daemon's programs:
    /// until then an old program may still write to its old map, and a crash before this
    /// point must find the old pin to copy again.
    pub fn unpin(self) -> Result<()> {
        crate::crash::point("migrate:unpin");
        for pin in self.pins {
            tracing::info!(pin = %pin.display(), "unpinning migrated map");
            match std::fs::remove_file(&pin) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(DatapathError::Io { op: "unpin migrated map", source }.into()),
            }
            crate::crash::point("migrate:unpinned");
        }
        Ok(())
    }
}

fn map_err(op: &'static str) -> impl Fn(MapError) -> crate::error::Error {
    move |source| DatapathError::Map { op, source }.into()
}

/// A pinned hash map of an older netd, typed by its layout.
fn open_old<K: Pod, V: Pod>(pin: &Path) -> Result<HashMap<MapData, K, V>> {
    let data = MapData::from_pin(pin).map_err(map_err("open retired map"))?;
    let map = Map::from_map_data(data).map_err(map_err("open retired map"))?;
    HashMap::try_from(map).map_err(map_err("open retired map"))
}

/// Copies each entry of the old map at `old_pin` that `convert` turns into a new value.
fn copy_entries<K: Pod, Old: Pod, New: Pod>(
    old_pin: &Path,
    new: &mut Map,
    convert: impl Fn(&K, &Old) -> Option<New>,
) -> Result<Copied> {
    let old = open_old::<K, Old>(old_pin)?;
    let mut new = HashMap::<&mut MapData, K, New>::try_from(new).map_err(map_err("open map"))?;
    let mut copied = Copied::default();
    for entry in old.iter() {
        // An entry deleted while we iterate is skipped by the iterator; a failed read is counted.
        let (key, value) = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read an entry of a retired map");
                copied.failed += 1;
                continue;
            }
        };
        let Some(value) = convert(&key, &value) else {
            copied.unconvertible += 1;
            continue;
        };
        match new.insert(key, value, BPF_NOEXIST) {
            Ok(()) => copied.copied += 1,
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::EEXIST) => copied.present += 1,
            Err(e) => {
                tracing::warn!(error = %e, "cannot copy an entry into the new map");
                copied.failed += 1;
            }
        }
    }
    Ok(copied)
}

/// `NETD_IF_V1` → `NETD_IF_V2`.
fn copy_interfaces_v1(old_pin: &Path, _: &Path, new: &mut Map) -> Result<Copied> {
    copy_entries::<u32, InterfaceV1, InterfaceValue>(old_pin, new, |_, v| Some(interface_from_v1(v)))
}

/// `NETD_EP_V1` → `NETD_EP_V2`: the host-side MAC comes from the endpoint's `NETD_IF_V1` entry.
fn copy_endpoints_v1(old_pin: &Path, maps_dir: &Path, new: &mut Map) -> Result<Copied> {
    let interfaces = match open_old::<u32, InterfaceV1>(&maps_dir.join(legacy::maps::INTERFACES_V1)) {
        Ok(map) => map.iter().flatten().collect(),
        // Without it no endpoint converts; each is counted.
        Err(_) => std::collections::HashMap::new(),
    };
    copy_entries::<u32, EndpointV1, EndpointValue>(old_pin, new, |_, v| endpoint_from_v1(v, interfaces.get(&v.ifindex)))
}

/// V2 added `flags`; V1 knew neither internal networks nor published ports, so none is set.
pub fn interface_from_v1(v: &InterfaceV1) -> InterfaceValue {
    InterfaceValue {
        ip: v.ip,
        gateway: v.gateway,
        network_index: v.network,
        flags: 0,
        mac: v.mac,
        host_mac: v.host_mac,
    }
}

/// V2 added the host-side MAC, which V1 kept only in the interface entry of the same veth; an
/// endpoint without one has no V2 value.
pub fn endpoint_from_v1(v: &EndpointV1, interface: Option<&InterfaceV1>) -> Option<EndpointValue> {
    let interface = interface?;
    Some(EndpointValue { ifindex: v.ifindex, network_index: v.network, mac: v.mac, host_mac: interface.host_mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
    const HOST_MAC: [u8; 6] = [0x5a, 0x01, 0x02, 0x03, 0x04, 0x05];

    fn interface_v1() -> InterfaceV1 {
        InterfaceV1 { ip: 0x0200_11ac, gateway: 0x0100_11ac, network: 3, mac: MAC, host_mac: HOST_MAC }
    }

    #[test]
    fn interface_v1_keeps_every_field_and_sets_no_flag() {
        let v2 = interface_from_v1(&interface_v1());
        assert_eq!(
            v2,
            InterfaceValue {
                ip: 0x0200_11ac,
                gateway: 0x0100_11ac,
                network_index: 3,
                flags: 0,
                mac: MAC,
                host_mac: HOST_MAC
            }
        );
    }

    #[test]
    fn endpoint_v1_takes_the_host_mac_of_its_interface() {
        let v1 = EndpointV1 { ifindex: 42, network: 3, mac: MAC, _pad: [0; 2] };
        let v2 = endpoint_from_v1(&v1, Some(&interface_v1())).unwrap();
        assert_eq!(v2, EndpointValue { ifindex: 42, network_index: 3, mac: MAC, host_mac: HOST_MAC });
    }

    #[test]
    fn endpoint_v1_without_interface_does_not_convert() {
        let v1 = EndpointV1 { ifindex: 42, network: 3, mac: MAC, _pad: [0; 2] };
        assert_eq!(endpoint_from_v1(&v1, None), None);
    }

    #[test]
    fn retired_names_are_not_current_and_every_successor_is() {
        let current = [maps::ENDPOINTS, maps::INTERFACES];
        for retired in &RETIRED {
            assert!(!current.contains(&retired.old), "{} is still in use", retired.old);
            assert!(current.contains(&retired.new), "{} is not a current map", retired.new);
            assert!(is_retired(retired.old));
        }
        assert!(!is_retired(maps::ENDPOINTS));
    }

    #[test]
    fn a_conversion_reading_another_old_map_comes_before_it() {
        let position = |name| RETIRED.iter().position(|r| r.old == name).unwrap();
        assert!(position(legacy::maps::ENDPOINTS_V1) < position(legacy::maps::INTERFACES_V1));
    }
}

/// The migration over real pins: old-layout maps made with bpftool, as an older netd left them.
#[cfg(all(test, feature = "ebpf"))]
mod pinned_tests {
    use std::{path::PathBuf, process::Command};

    use netd_common::{maps, EndpointValue, InterfaceValue};

    use super::super::prog_test_support::load_retrying;

    const MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
    const HOST_MAC: [u8; 6] = [0x5a, 0x01, 0x02, 0x03, 0x04, 0x05];
    const IP: u32 = u32::from_ne_bytes([172, 17, 0, 2]);
    const ORPHAN_IP: u32 = u32::from_ne_bytes([172, 17, 0, 3]);

    /// A bpffs directory of one test, removed on drop.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn bpftool(args: &[String]) {
        let out = Command::new("bpftool").args(args).output().expect("run bpftool");
        assert!(out.status.success(), "bpftool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn hex(bytes: &[u8]) -> Vec<String> {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn create(pin: &std::path::Path, name: &str, value_size: usize) {
        let args = format!("map create {} type hash key 4 value {value_size} entries 16 name {name}", pin.display());
        bpftool(&args.split(' ').map(String::from).collect::<Vec<_>>());
    }

    fn update(pin: &std::path::Path, key: u32, value: &[u8]) {
        let mut args: Vec<String> = ["map", "update", "pinned"].map(String::from).into();
        args.push(pin.display().to_string());
        args.extend(["key".into(), "hex".into()]);
        args.extend(hex(&key.to_ne_bytes()));
        args.extend(["value".into(), "hex".into()]);
        args.extend(hex(value));
        bpftool(&args);
    }

    /// `NETD_IF_V1` and `NETD_EP_V1` as netd 0.1 pinned them: one endpoint with both entries,
    /// and one endpoint entry whose interface entry is missing.
    fn old_layout(test: &str) -> Dir {
        let dir = Dir(PathBuf::from(format!("/sys/fs/bpf/netd-unit-{}-{test}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        super::super::bpffs::ensure(&dir.0).unwrap();
        let maps_dir = dir.0.join("maps");
        std::fs::create_dir_all(&maps_dir).unwrap();
        let (ep, iface) = (maps_dir.join("NETD_EP_V1"), maps_dir.join("NETD_IF_V1"));
        create(&iface, "NETD_IF_V1", 24);
        create(&ep, "NETD_EP_V1", 16);
        let interface: Vec<u8> = [IP.to_ne_bytes(), [172, 17, 0, 1], 3u32.to_ne_bytes()].concat();
        update(&iface, 7, &[interface, MAC.to_vec(), HOST_MAC.to_vec()].concat());
        let endpoint = |ifindex: u32| [ifindex.to_ne_bytes(), 3u32.to_ne_bytes()].concat();
        update(&ep, IP, &[endpoint(7), MAC.to_vec(), vec![0, 0]].concat());
        update(&ep, ORPHAN_IP, &[endpoint(9), MAC.to_vec(), vec![0, 0]].concat());
        dir
    }

    #[test]
    #[ignore = "needs root (pins BPF maps); cargo xtask test runs it"]
    fn load_copies_old_entries_and_unpins_only_when_finished() {
        let dir = old_layout("migrate-copy");
        let datapath = load_retrying(&dir.0, &[], || {}).unwrap();
        let endpoints = datapath.entries_for_test::<u32, EndpointValue>(maps::ENDPOINTS);
        let expected = EndpointValue { ifindex: 7, network_index: 3, mac: MAC, host_mac: HOST_MAC };
        // The orphan has no host MAC to take: counted, not copied.
        assert_eq!(endpoints, [(IP, expected)]);
        let interfaces = datapath.entries_for_test::<u32, InterfaceValue>(maps::INTERFACES);
        let iface = InterfaceValue {
            ip: IP,
            gateway: u32::from_ne_bytes([172, 17, 0, 1]),
            network_index: 3,
            flags: 0,
            mac: MAC,
            host_mac: HOST_MAC,
        };
        assert_eq!(interfaces, [(7, iface)]);
        let old = [dir.0.join("maps/NETD_EP_V1"), dir.0.join("maps/NETD_IF_V1")];
        assert!(old.iter().all(|p| p.exists()), "old pins went before the links were switched");
        datapath.finish_migration().unwrap();
        assert!(!old.iter().any(|p| p.exists()), "old pins left after the migration finished");
    }

    /// A daemon killed between the copy and the unpin: the next start copies again, leaving
    /// what the new map already holds (entries written since are the fresher) and ending in
    /// the same result.
    #[test]
    #[ignore = "needs root (pins BPF maps); cargo xtask test runs it"]
    fn an_interrupted_migration_is_copied_again() {
        let dir = old_layout("migrate-again");
        let first = load_retrying(&dir.0, &[], || {}).unwrap();
        let newer = EndpointValue { ifindex: 7, network_index: 3, mac: MAC, host_mac: [0xaa; 6] };
        first.insert_for_test_into(maps::ENDPOINTS, IP, newer);
        drop(first);
        let second = load_retrying(&dir.0, &[], || {}).unwrap();
        assert_eq!(second.entries_for_test::<u32, EndpointValue>(maps::ENDPOINTS), [(IP, newer)]);
        assert_eq!(second.entries_for_test::<u32, InterfaceValue>(maps::INTERFACES).len(), 1);
        second.finish_migration().unwrap();
        assert!(!dir.0.join("maps/NETD_EP_V1").exists());
        drop(second);
        // Nothing left to migrate: a third start keeps the maps as they are.
        let third = load_retrying(&dir.0, &[], || {}).unwrap();
        assert_eq!(third.entries_for_test::<u32, EndpointValue>(maps::ENDPOINTS), [(IP, newer)]);
    }

    #[test]
    #[ignore = "needs root (pins BPF maps); cargo xtask test runs it"]
    fn a_pin_netd_never_had_goes_at_load() {
        let dir = old_layout("migrate-unknown");
        let unknown = dir.0.join("maps/NETD_FOO_V9");
        create(&unknown, "NETD_FOO_V9", 8);
        let _datapath = load_retrying(&dir.0, &[], || {}).unwrap();
        assert!(!unknown.exists(), "an unknown map pin was left");
        assert!(dir.0.join("maps/NETD_EP_V1").exists(), "a retired pin went before its copy was finished");
    }
}
