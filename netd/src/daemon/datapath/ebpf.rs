//! The eBPF datapath: loads netd-ebpf, pins maps, programs and tcx links under the daemon's
//! bpffs directory, and keeps the maps in step with the endpoints and uplinks.
//!
//! Layout under the directory: `maps/<MAP>`, `progs/<program>`, `links/<program>/<ifname>` — a
//! link pin is keyed by the program and its target, so each program's links are reconciled on
//! their own.
use std::{
    collections::HashSet,
    fs,
    hash::Hash,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Mutex,
};

use aya::{
    maps::{HashMap, MapData, PerCpuArray},
    programs::{
        links::{FdLink, LinkOrder, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
        SchedClassifier, TcAttachType,
    },
    Ebpf, EbpfLoader, Pod,
};
use netd_common::{
    maps, metric_slot, programs, timeouts, CtEntry, CtKey, DropCounter, DropReason, EndpointValue, Hook,
    InterfaceValue, NatReverse, PortKey, ServiceKey, ServiceValue, UplinkValue, CT_DNAT, IF_INTERNAL, IF_PUBLISHES,
};

use super::{
    bpffs, Datapath, DatapathEndpoint, DatapathError, DropStat, FlowTables, GcReport, PublishedPort, TableUsage, Uplink,
};
use crate::error::{Error, Result};

/// Every program netd attaches, with the hook it runs at.
const PROGRAMS: [(&str, TcAttachType); 2] =
    [(programs::ENDPOINT_INGRESS, TcAttachType::Ingress), (programs::UPLINK_INGRESS, TcAttachType::Ingress)];

pub struct EbpfDatapath {
    dir: PathBuf,
    ebpf: Mutex<Ebpf>,
}

fn program_err(op: &'static str) -> impl Fn(aya::programs::ProgramError) -> Error {
    move |source| DatapathError::Program { op, source }.into()
}

fn map_err(op: &'static str) -> impl Fn(aya::maps::MapError) -> Error {
    move |source| DatapathError::Map { op, source }.into()
}

fn pin_err(op: &'static str) -> impl Fn(aya::pin::PinError) -> Error {
    move |source| DatapathError::Pin { op, source }.into()
}

fn link_err(op: &'static str) -> impl Fn(aya::programs::links::LinkError) -> Error {
    move |source| DatapathError::Link { op, source }.into()
}

fn io_err(op: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| DatapathError::Io { op, source }.into()
}

fn ip_key(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// Removes a file; already gone is fine.
fn remove_pin(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("unpin")(e)),
    }
}

/// Removes every pin directly under `dir` whose name `keep` refuses.
fn remove_pins_except(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("list pins")(e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_ok_and(|t| t.is_file()) && !keep(&name) {
            tracing::info!(pin = %entry.path().display(), "removing stale pin");
            remove_pin(&entry.path())?;
        }
    }
    Ok(())
}

/// Monotonic nanoseconds, the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
    now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64
}

impl EbpfDatapath {
    /// Loads the programs, re-using maps already pinned under `dir` (a restarted daemon keeps
    /// the live forwarding and connection state).
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_with(dir, &[])
    }

    /// `load`, with some maps sized differently (tests fill a small NAT map).
    pub fn load_with(dir: &Path, max_entries: &[(&str, u32)]) -> Result<Self> {
        bpffs::ensure(dir)?;
        for sub in ["maps", "links", "progs"] {
            fs::create_dir_all(dir.join(sub)).map_err(io_err("create pin dir"))?;
        }
        Self::move_legacy_link_pins(dir)?;
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(dir.join("maps"));
        for (map, entries) in max_entries {
            loader.map_max_entries(map, *entries);
        }
        let mut ebpf = loader.load(object()?).map_err(DatapathError::from)?;
        for (name, _) in PROGRAMS {
            let prog = classifier(&mut ebpf, name)?;
            prog.load().map_err(program_err("load program"))?;
            let pin = dir.join("progs").join(name);
            // The previous daemon's program stays alive through its links until they are updated.
            remove_pin(&pin)?;
            prog.pin(&pin).map_err(pin_err("pin program"))?;
            fs::create_dir_all(dir.join("links").join(name)).map_err(io_err("create pin dir"))?;
        }
        // Maps of an older layout (another pin name) are rebuilt from the store by
        // `keep_exactly`; their pins go.
        let current: HashSet<String> = ebpf.maps().map(|(name, _)| name.to_string()).collect();
        remove_pins_except(&dir.join("maps"), |name| current.contains(name))?;
        remove_pins_except(&dir.join("progs"), |name| PROGRAMS.iter().any(|(p, _)| *p == name))?;
        Ok(Self { dir: dir.to_path_buf(), ebpf: Mutex::new(ebpf) })
    }

    /// Before programs had their own link directories, endpoint links were pinned straight
    /// under `links/`: move them where `attach` adopts them.
    fn move_legacy_link_pins(dir: &Path) -> Result<()> {
        let links = dir.join("links");
        let endpoint_links = links.join(programs::ENDPOINT_INGRESS);
        for entry in fs::read_dir(&links).map_err(io_err("list link pins"))?.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                fs::create_dir_all(&endpoint_links).map_err(io_err("create pin dir"))?;
                if let Err(e) = fs::rename(entry.path(), endpoint_links.join(entry.file_name())) {
                    // The endpoint gets a fresh link when it is adopted.
                    tracing::warn!(pin = %entry.path().display(), error = %e, "cannot move legacy link pin; removing it");
                    remove_pin(&entry.path())?;
                }
            }
        }
        Ok(())
    }

    fn link_pin(&self, program: &str, ifname: &str) -> PathBuf {
        self.dir.join("links").join(program).join(ifname)
    }

    /// Writes the endpoint's map entries; `backends` are the addresses published ports lead
    /// to (`published_backends`): such an endpoint's interface entry keeps `IF_PUBLISHES`.
    fn insert_entries(ebpf: &mut Ebpf, ep: &DatapathEndpoint, backends: &HashSet<u32>) -> Result<()> {
        let mut flags = if ep.internal { IF_INTERNAL } else { 0 };
        if backends.contains(&ip_key(ep.ip)) {
            flags |= IF_PUBLISHES;
        }
        let iface = InterfaceValue {
            ip: ip_key(ep.ip),
            gateway: ip_key(ep.gateway),
            network_index: ep.network_index,
            flags,
            mac: ep.mac,
            host_mac: ep.host_mac,
        };
        let endpoint = EndpointValue {
            ifindex: ep.host_ifindex,
            network_index: ep.network_index,
            mac: ep.mac,
            host_mac: ep.host_mac,
        };
        hash_map::<u32, InterfaceValue>(ebpf, maps::INTERFACES)?
            .insert(ep.host_ifindex, iface, 0)
            .map_err(map_err("update interface map"))?;
        let added = hash_map::<u32, EndpointValue>(ebpf, maps::ENDPOINTS)
            .and_then(|mut m| m.insert(ip_key(ep.ip), endpoint, 0).map_err(map_err("update endpoint map")));
        if added.is_err() {
            // All or nothing: a full endpoint map must not leave the interface entry behind.
            let _ = hash_map::<u32, InterfaceValue>(ebpf, maps::INTERFACES)?.remove(&ep.host_ifindex);
        }
        added
    }

    fn remove_entries(ebpf: &mut Ebpf, ep: &DatapathEndpoint) -> Result<()> {
        // A missing key is fine: removal is idempotent.
        let _ = hash_map::<u32, InterfaceValue>(ebpf, maps::INTERFACES)?.remove(&ep.host_ifindex);
        let _ = hash_map::<u32, EndpointValue>(ebpf, maps::ENDPOINTS)?.remove(&ip_key(ep.ip));
        Ok(())
    }

    /// Moves the pinned link of a previous daemon onto this daemon's `program` (an atomic
    /// update: no moment without a program), or attaches and pins a fresh tcx link. A pinned
    /// link that cannot be updated is replaced by a fresh one, attached before the old one is
    /// unpinned.
    fn attach(&self, ebpf: &mut Ebpf, program: &'static str, ifname: &str) -> Result<()> {
        let pin = self.link_pin(program, ifname);
        let hook = attach_type(program);
        if pin.exists() {
            match Self::adopt(classifier(ebpf, program)?, &pin, ifname, hook) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(link = %pin.display(), error = %e, "cannot adopt pinned link; replacing it"),
            }
        }
        let link = Self::attach_fresh(classifier(ebpf, program)?, ifname, hook)?;
        remove_pin(&pin)?;
        link.pin(&pin).map_err(pin_err("pin link"))?;
        Ok(())
    }

    fn adopt(prog: &mut SchedClassifier, pin: &Path, ifname: &str, hook: TcAttachType) -> Result<()> {
        let link = PinnedLink::from_pin(pin).map_err(link_err("open pinned link"))?;
        let link = SchedClassifierLink::try_from(FdLink::from(link)).map_err(link_err("adopt pinned link"))?;
        let id = prog.attach_to_link(link).map_err(program_err("update pinned link"))?;
        // The pin keeps the link; holding its fd too would keep it attached after an unpin.
        drop(prog.take_link(id).map_err(program_err("take link"))?);
        // A pin left by a crash may hold another device's link: adopted only if the program
        // now runs at this device's hook.
        let ours = prog.info().map_err(program_err("program info"))?.id();
        let (_, attached) = SchedClassifier::query_tcx(ifname, hook).map_err(program_err("query tcx"))?;
        if !attached.iter().any(|p| p.id() == ours) {
            return Err(
                DatapathError::NotAttached { pin: pin.display().to_string(), ifname: ifname.to_string() }.into()
            );
        }
        Ok(())
    }

    fn attach_fresh(prog: &mut SchedClassifier, ifname: &str, hook: TcAttachType) -> Result<FdLink> {
        let id = prog
            .attach_with_options(ifname, hook, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .map_err(program_err("attach tc program"))?;
        let link = prog.take_link(id).map_err(program_err("take link"))?;
        FdLink::try_from(link).map_err(link_err("tcx link"))
    }

    /// Unpins the links of `program` whose target `keep` refuses; unpinning drops the last
    /// reference to a tcx link, which detaches it.
    fn keep_links(&self, program: &str, keep: impl Fn(&str) -> bool) -> Result<()> {
        remove_pins_except(&self.dir.join("links").join(program), keep)
    }

    /// Runs `program` once on `packet` with aya's `TestRun` (`BPF_PROG_TEST_RUN`); returns the
    /// verdict and the packet as the program left it. The syscall's own error is returned as it
    /// came (some kernels refuse short IPv4 input with EINVAL).
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn test_run_program(&self, program: &'static str, packet: &[u8]) -> std::io::Result<(u32, Vec<u8>)> {
        use aya::programs::{ProgramError, TestRun, TestRunOptions};
        let mut ebpf = self.ebpf.lock().unwrap();
        let prog = classifier(&mut ebpf, program).map_err(std::io::Error::other)?;
        // The programs never grow a packet; the slack only makes a change in that visible.
        let mut out = vec![0u8; packet.len() + 64];
        let opts = TestRunOptions { data_in: Some(packet), data_out: Some(&mut out), ..Default::default() };
        match prog.test_run(opts) {
            Ok(result) => {
                out.truncate(result.data_size_out as usize);
                Ok((result.return_value, out))
            }
            Err(ProgramError::SyscallError(e)) => Err(e.io_error),
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn insert_for_test(&self, ep: &DatapathEndpoint) {
        let mut ebpf = self.ebpf.lock().unwrap();
        let backends = published_backends(&mut ebpf).unwrap();
        Self::insert_entries(&mut ebpf, ep, &backends).unwrap();
    }

    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn insert_endpoint_only_for_test(&self, ep: &DatapathEndpoint) {
        let endpoint = EndpointValue {
            ifindex: ep.host_ifindex,
            network_index: ep.network_index,
            mac: ep.mac,
            host_mac: ep.host_mac,
        };
        let mut ebpf = self.ebpf.lock().unwrap();
        hash_map::<u32, EndpointValue>(&mut ebpf, maps::ENDPOINTS).unwrap().insert(ip_key(ep.ip), endpoint, 0).unwrap();
    }

    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn interface_keys_for_test(&self) -> Vec<u32> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let mut keys: Vec<u32> =
            hash_map::<u32, InterfaceValue>(&mut ebpf, maps::INTERFACES).unwrap().keys().flatten().collect();
        keys.sort();
        keys
    }

    /// Every entry of the map `name` (tests inspect conntrack and NAT state).
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn entries_for_test<K: Pod, V: Pod>(&self, name: &'static str) -> Vec<(K, V)> {
        let mut ebpf = self.ebpf.lock().unwrap();
        hash_map::<K, V>(&mut ebpf, name).unwrap().iter().flatten().collect()
    }

    /// Writes one entry into the map `name` (tests set up uplinks, reserved ports, stale flows).
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn insert_for_test_into<K: Pod, V: Pod>(&self, name: &'static str, key: K, value: V) {
        let mut ebpf = self.ebpf.lock().unwrap();
        hash_map::<K, V>(&mut ebpf, name).unwrap().insert(key, value, 0).unwrap();
    }
}

/// The eBPF object build.rs made and embedded.
#[cfg(feature = "ebpf")]
fn object() -> Result<&'static [u8]> {
    Ok(aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netd")))
}

#[cfg(not(feature = "ebpf"))]
fn object() -> Result<&'static [u8]> {
    Err(DatapathError::BuiltWithout.into())
}

fn attach_type(program: &str) -> TcAttachType {
    PROGRAMS.iter().find(|(p, _)| *p == program).map(|(_, hook)| *hook).unwrap_or(TcAttachType::Ingress)
}

fn classifier<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut SchedClassifier> {
    ebpf.program_mut(name).ok_or(DatapathError::Missing(name))?.try_into().map_err(program_err("program type"))
}

/// A hash (or LRU hash) map of the object by name.
fn hash_map<'a, K: Pod, V: Pod>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<HashMap<&'a mut MapData, K, V>> {
    let map = ebpf.map_mut(name).ok_or(DatapathError::Missing(name))?;
    HashMap::try_from(map).map_err(map_err("open map"))
}

/// Removes every entry of `map` that `keep` refuses; returns how many went.
fn remove_entries_except<K: Pod + Eq + Hash, V: Pod>(
    map: &mut HashMap<&mut MapData, K, V>,
    keep: impl Fn(&K, &V) -> bool,
) -> usize {
    let stale: Vec<K> = map.iter().flatten().filter(|(k, v)| !keep(k, v)).map(|(k, _)| k).collect();
    stale.iter().filter(|k| map.remove(k).is_ok()).count()
}

/// Entries of the map `name` against its capacity.
fn table_usage<K: Pod, V: Pod>(ebpf: &mut Ebpf, name: &'static str) -> Result<TableUsage> {
    let capacity = match ebpf.map(name).ok_or(DatapathError::Missing(name))? {
        aya::maps::Map::HashMap(data) | aya::maps::Map::LruHashMap(data) => {
            data.info().map_err(map_err("map info"))?.max_entries()
        }
        _ => return Err(DatapathError::Missing(name).into()),
    };
    let entries = hash_map::<K, V>(ebpf, name)?.keys().flatten().count();
    Ok(TableUsage { entries: entries as u64, capacity: capacity as u64 })
}

impl Datapath for EbpfDatapath {
    fn add_endpoint(&self, ep: &DatapathEndpoint) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let backends = published_backends(&mut ebpf)?;
        Self::insert_entries(&mut ebpf, ep, &backends)?;
        if let Err(e) = self.attach(&mut ebpf, programs::ENDPOINT_INGRESS, &ep.host_ifname) {
            let _ = Self::remove_entries(&mut ebpf, ep);
            return Err(e);
        }
        Ok(())
    }

    fn remove_endpoint(&self, ep: &DatapathEndpoint) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        // Unpinning drops the last reference to the tcx link, which detaches it.
        remove_pin(&self.link_pin(programs::ENDPOINT_INGRESS, &ep.host_ifname))?;
        Self::remove_entries(&mut ebpf, ep)
    }

    fn keep_exactly(&self, wanted: &[DatapathEndpoint]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        // Entries are rewritten with the same values and links updated in place: live traffic
        // never sees a gap. An endpoint that cannot be adopted is left out, not fatal.
        let mut known = Vec::with_capacity(wanted.len());
        // Endpoints with published ports keep IF_PUBLISHES throughout (hairpin replies).
        let backends = published_backends(&mut ebpf)?;
        for ep in wanted {
            let adopted = Self::insert_entries(&mut ebpf, ep, &backends)
                .and_then(|()| self.attach(&mut ebpf, programs::ENDPOINT_INGRESS, &ep.host_ifname));
            match adopted {
                Ok(()) => known.push(ep),
                Err(e) => tracing::warn!(veth = %ep.host_ifname, error = %e, "cannot adopt endpoint; leaving it out"),
            }
        }
        // Pins and entries that no adopted endpoint accounts for are leftovers.
        self.keep_links(programs::ENDPOINT_INGRESS, |name| known.iter().any(|ep| ep.host_ifname == name))?;
        let ips: HashSet<u32> = known.iter().map(|ep| ip_key(ep.ip)).collect();
        let ifindexes: HashSet<u32> = known.iter().map(|ep| ep.host_ifindex).collect();
        remove_entries_except(&mut hash_map::<u32, EndpointValue>(&mut ebpf, maps::ENDPOINTS)?, |k, _| ips.contains(k));
        remove_entries_except(&mut hash_map::<u32, InterfaceValue>(&mut ebpf, maps::INTERFACES)?, |k, _| {
            ifindexes.contains(k)
        });
        Ok(())
    }

    fn publish(&self, ports: &[PublishedPort]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let affected: HashSet<u32> = ports.iter().map(|p| ip_key(p.backend_addr)).collect();
        // The endpoints learn they publish before any client can reach them, so that no
        // hairpin reply leaves untranslated.
        let mut backends = published_backends(&mut ebpf)?;
        backends.extend(&affected);
        let mut result = set_publishes_flags(&mut ebpf, Some(&affected), &backends);
        for (done, port) in ports.iter().enumerate() {
            if result.is_err() {
                break;
            }
            if let Err(e) = Self::insert_published(&mut ebpf, port) {
                // All or nothing: what this call added goes again.
                for added in &ports[..=done] {
                    let _ = Self::remove_published(&mut ebpf, added, ports);
                }
                result = Err(e);
            }
        }
        if result.is_err() {
            if let Ok(backends) = published_backends(&mut ebpf) {
                let _ = set_publishes_flags(&mut ebpf, Some(&affected), &backends);
            }
        }
        result
    }

    fn unpublish(&self, ports: &[PublishedPort]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        for port in ports {
            Self::remove_published(&mut ebpf, port, &[])?;
        }
        // An endpoint keeps IF_PUBLISHES while any of its ports is published.
        let affected: HashSet<u32> = ports.iter().map(|p| ip_key(p.backend_addr)).collect();
        let backends = published_backends(&mut ebpf)?;
        set_publishes_flags(&mut ebpf, Some(&affected), &backends)
    }

    fn keep_published(&self, ports: &[PublishedPort]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        // Flags first (as in `publish`), cleared only after the services that go are gone.
        let mut backends = published_backends(&mut ebpf)?;
        backends.extend(ports.iter().map(|p| ip_key(p.backend_addr)));
        set_publishes_flags(&mut ebpf, None, &backends)?;
        for port in ports {
            Self::insert_published(&mut ebpf, port)?;
        }
        let services: HashSet<ServiceKey> = ports.iter().map(service_key).collect();
        let reserved: HashSet<PortKey> = ports.iter().map(port_key).collect();
        remove_entries_except(&mut hash_map::<ServiceKey, ServiceValue>(&mut ebpf, maps::SERVICES)?, |k, _| {
            services.contains(k)
        });
        remove_entries_except(&mut hash_map::<PortKey, u8>(&mut ebpf, maps::RESERVED_PORTS)?, |k, _| {
            reserved.contains(k)
        });
        let backends = published_backends(&mut ebpf)?;
        set_publishes_flags(&mut ebpf, None, &backends)
    }

    fn set_uplinks(&self, uplinks: &[Uplink]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        for uplink in uplinks {
            let value = UplinkValue { nat_addr: uplink.nat_addr.map(ip_key).unwrap_or(0), _pad: 0 };
            hash_map::<u32, UplinkValue>(&mut ebpf, maps::UPLINKS)?
                .insert(uplink.ifindex, value, 0)
                .map_err(map_err("update uplink map"))?;
            self.attach(&mut ebpf, programs::UPLINK_INGRESS, &uplink.ifname)?;
        }
        self.keep_links(programs::UPLINK_INGRESS, |name| uplinks.iter().any(|u| u.ifname == name))?;
        let ifindexes: HashSet<u32> = uplinks.iter().map(|u| u.ifindex).collect();
        remove_entries_except(&mut hash_map::<u32, UplinkValue>(&mut ebpf, maps::UPLINKS)?, |k, _| {
            ifindexes.contains(k)
        });
        Ok(())
    }

    fn drop_stats(&self) -> Result<Vec<DropStat>> {
        let ebpf = self.ebpf.lock().unwrap();
        let map = ebpf.map(maps::METRICS).ok_or(DatapathError::Missing(maps::METRICS))?;
        let counters: PerCpuArray<&MapData, DropCounter> =
            PerCpuArray::try_from(map).map_err(map_err("open metrics map"))?;
        let mut stats = Vec::with_capacity(Hook::ALL.len() * DropReason::ALL.len());
        for hook in Hook::ALL {
            for reason in DropReason::ALL {
                let values = counters.get(&metric_slot(reason, hook), 0).map_err(map_err("read drop counters"))?;
                stats.push(DropStat {
                    reason: reason.name(),
                    code: reason as u8,
                    hook: hook.name(),
                    packets: values.iter().map(|v| v.packets).sum(),
                    bytes: values.iter().map(|v| v.bytes).sum(),
                });
            }
        }
        Ok(stats)
    }

    fn flow_tables(&self) -> Result<FlowTables> {
        let mut ebpf = self.ebpf.lock().unwrap();
        Ok(FlowTables {
            conntrack_tcp: table_usage::<CtKey, CtEntry>(&mut ebpf, maps::CT_TCP)?,
            conntrack_other: table_usage::<CtKey, CtEntry>(&mut ebpf, maps::CT_OTHER)?,
            nat: table_usage::<CtKey, NatReverse>(&mut ebpf, maps::NAT)?,
        })
    }

    fn collect_garbage(&self) -> Result<GcReport> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let now = monotonic_ns();
        let endpoints: HashSet<u32> =
            hash_map::<u32, EndpointValue>(&mut ebpf, maps::ENDPOINTS)?.keys().flatten().collect();
        let mut report = GcReport::default();
        let mut live_mappings: HashSet<CtKey> = HashSet::new();
        for ct in [maps::CT_TCP, maps::CT_OTHER] {
            let mut table = hash_map::<CtKey, CtEntry>(&mut ebpf, ct)?;
            let entries: Vec<(CtKey, CtEntry)> = table.iter().flatten().collect();
            let mut dead = Vec::new();
            for (key, entry) in entries {
                // Both kinds are keyed by the endpoint's side: masqueraded flows by their
                // original tuple, flows through published ports (CT_DNAT, no NAT entry) by the
                // tuple of the endpoint's replies.
                if entry.expires < now {
                    report.expired += 1;
                    dead.push(key);
                } else if !endpoints.contains(&key.saddr) {
                    report.stale += 1;
                    dead.push(key);
                } else if entry.flags & CT_DNAT == 0 {
                    live_mappings.insert(reply_key(&key, &entry));
                }
            }
            for key in &dead {
                let _ = table.remove(key);
            }
        }
        // A NAT entry lives exactly as long as the flow that uses it; one being set up has
        // its conntrack entry a moment later, hence the grace period.
        let mut nat = hash_map::<CtKey, NatReverse>(&mut ebpf, maps::NAT)?;
        report.orphans = remove_entries_except(&mut nat, |key, value| {
            live_mappings.contains(key) || now.saturating_sub(value.created) < timeouts::NAT_ORPHAN_GRACE
        });
        Ok(report)
    }

    fn purge(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove pins")(e)),
        }
    }
}

fn service_key(port: &PublishedPort) -> ServiceKey {
    ServiceKey {
        addr: port.host_addr.map(ip_key).unwrap_or(0),
        port: port.host_port,
        proto: port.proto.number(),
        _pad: 0,
    }
}

fn port_key(port: &PublishedPort) -> PortKey {
    PortKey { port: port.host_port, proto: port.proto.number(), _pad: 0 }
}

impl EbpfDatapath {
    fn insert_published(ebpf: &mut Ebpf, port: &PublishedPort) -> Result<()> {
        let value = ServiceValue { backend_addr: ip_key(port.backend_addr), backend_port: port.backend_port, _pad: 0 };
        hash_map::<ServiceKey, ServiceValue>(ebpf, maps::SERVICES)?
            .insert(service_key(port), value, 0)
            .map_err(map_err("update service map"))?;
        // The host port is kept from masquerade's NAT ports (whatever address it is on).
        hash_map::<PortKey, u8>(ebpf, maps::RESERVED_PORTS)?
            .insert(port_key(port), 1, 0)
            .map_err(map_err("update reserved port map"))
    }

    /// Removes `port`'s service entry, and its reserved host port unless another of `keep`
    /// or another service entry still uses the same (port, protocol).
    fn remove_published(ebpf: &mut Ebpf, port: &PublishedPort, keep: &[PublishedPort]) -> Result<()> {
        let key = service_key(port);
        let mut services = hash_map::<ServiceKey, ServiceValue>(ebpf, maps::SERVICES)?;
        let _ = services.remove(&key);
        let still_used = services.keys().flatten().any(|k| k.port == key.port && k.proto == key.proto)
            || keep.iter().any(|p| p != port && port_key(p) == port_key(port));
        if !still_used {
            let _ = hash_map::<PortKey, u8>(ebpf, maps::RESERVED_PORTS)?.remove(&port_key(port));
        }
        Ok(())
    }
}

/// The addresses published ports lead to.
fn published_backends(ebpf: &mut Ebpf) -> Result<HashSet<u32>> {
    let services = hash_map::<ServiceKey, ServiceValue>(ebpf, maps::SERVICES)?;
    Ok(services.iter().flatten().map(|(_, v)| v.backend_addr).collect())
}

/// Sets `IF_PUBLISHES` on the interface entries of `backends` and clears it on the others,
/// among the endpoints with an address in `only` (every endpoint when None).
fn set_publishes_flags(ebpf: &mut Ebpf, only: Option<&HashSet<u32>>, backends: &HashSet<u32>) -> Result<()> {
    let mut interfaces = hash_map::<u32, InterfaceValue>(ebpf, maps::INTERFACES)?;
    let changed: Vec<(u32, InterfaceValue)> = interfaces
        .iter()
        .flatten()
        .filter(|(_, v)| only.is_none_or(|only| only.contains(&v.ip)))
        .filter(|(_, v)| (v.flags & IF_PUBLISHES != 0) != backends.contains(&v.ip))
        .map(|(k, v)| (k, InterfaceValue { flags: v.flags ^ IF_PUBLISHES, ..v }))
        .collect();
    for (ifindex, value) in changed {
        interfaces.insert(ifindex, value, 0).map_err(map_err("update interface map"))?;
    }
    Ok(())
}

/// The NAT map key of a tracked flow.
fn reply_key(orig: &CtKey, entry: &CtEntry) -> CtKey {
    CtKey {
        saddr: orig.daddr,
        daddr: entry.nat_addr,
        sport: orig.dport,
        dport: entry.nat_port,
        proto: orig.proto,
        _pad: [0; 3],
    }
}
