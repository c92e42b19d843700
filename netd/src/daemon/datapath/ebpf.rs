//! The eBPF datapath: loads netd-ebpf, pins maps, programs and the uplinks' and socket-LB's
//! links under the daemon's bpffs directory, attaches the endpoint program as a cls_bpf filter
//! (`tc_filter.rs`: no pin, it belongs to the veth's qdisc), and keeps the maps in step with the
//! endpoints and uplinks.
//!
//! Layout under the directory: `maps/<MAP>`, `progs/<program>`, `links/<program>/<target>` (an
//! uplink's name for its tcx link, `cgroup2-root` for the socket-LB) — a link pin is keyed by
//! the program and its target, so each program's links are reconciled on their own. Older
//! netds pinned the endpoints' tcx links as `links/netd_ep_ingress/<host veth>`: a start
//! replaces each by a filter and removes the pins (`attach_endpoint`, `keep_exactly`).
use std::{
    collections::{BTreeSet, HashMap as HashMap_, HashSet},
    fs,
    hash::Hash,
    net::Ipv4Addr,
    os::fd::AsFd,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
};

use aya::{
    maps::{HashMap, MapData, PerCpuArray},
    programs::{
        links::{CgroupAttachMode, FdLink, LinkOrder, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions, TcHandle},
        Program, ProgramFd, SchedClassifier, TcAttachType,
    },
    Ebpf, EbpfLoader, Pod,
};
use netd_common::{
    maps, metric_slot, programs, timeouts, CtEntry, CtKey, DropCounter, DropReason, EndpointValue, Hook,
    InterfaceValue, NatReverse, PortKey, RemoteEndpointValue, ServiceKey, ServiceValue, UplinkValue, CT_DNAT,
    IF_INTERNAL, IF_PUBLISHES, RSVD_PUBLISHED, RSVD_SYSCTL_OWNED,
};

use super::{
    bpffs, migrate,
    tc_filter::{self, NewFilter, Side, Slot},
    Datapath, DatapathEndpoint, DatapathError, DropStat, FlowTables, GcReport, OverlayNetwork, PublishedPort,
    RemoteEndpoint, TableUsage, Tunnel, Uplink,
};
use crate::{
    error::{Error, Result},
    limits::Capacities,
};

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AttachPoint {
    /// A tcx hook of a device (the link target is the interface name): the uplinks.
    Tc(TcAttachType),
    /// netd's cls_bpf filters on the clsact qdisc of a device (`tc_filter.rs`; no link, no
    /// pin): the endpoints' host-side veths.
    Clsact,
    /// The root of the cgroup2 hierarchy (link target `CGROUP_ROOT`), multi-attach: every
    /// process's sockets, scoped to the daemon's netns by the programs themselves.
    CgroupRoot,
}

/// Every program netd attaches, with the hook it runs at.
const PROGRAMS: [(&str, AttachPoint); 9] = [
    (programs::ENDPOINT_INGRESS, AttachPoint::Clsact),
    (programs::ENDPOINT_EGRESS, AttachPoint::Clsact),
    (programs::UPLINK_INGRESS, AttachPoint::Tc(TcAttachType::Ingress)),
    (programs::TUNNEL_INGRESS, AttachPoint::Tc(TcAttachType::Ingress)),
    (programs::SOCK_CONNECT4, AttachPoint::CgroupRoot),
    (programs::SOCK_SENDMSG4, AttachPoint::CgroupRoot),
    (programs::SOCK_RECVMSG4, AttachPoint::CgroupRoot),
    (programs::SOCK_GETPEERNAME4, AttachPoint::CgroupRoot),
    (programs::SOCK_POST_BIND4, AttachPoint::CgroupRoot),
];

/// The link target name of the programs at the cgroup2 root.
pub const CGROUP_ROOT: &str = "cgroup2-root";

/// The netns's sysctl that keeps ports from being picked as ephemeral source ports.
const RESERVED_PORTS_SYSCTL: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

pub struct EbpfDatapath {
    dir: PathBuf,
    ebpf: Mutex<Ebpf>,
    /// The socket-LB is attached at the cgroup2 root (host clients reach published ports).
    host_clients: AtomicBool,
    /// Where `ip_local_reserved_ports` is read and written (tests point it elsewhere).
    reserved_ports_sysctl: PathBuf,
    /// Old pins `finish_migration` removes.
    migrated: Mutex<Option<migrate::Pending>>,
    /// Host-side veths this daemon attached its endpoint filter to and has not released: the
    /// filters have no pin, so `purge` deletes them by this list.
    endpoint_filters: Mutex<BTreeSet<String>>,
    /// The endpoint programs ([`ENDPOINT_FILTERS`]), a descriptor of each of its own: a new
    /// veth gets its filters without the `ebpf` lock ([`Self::attach_new_endpoint`]).
    endpoint_programs: Vec<(&'static str, Side, ProgramFd)>,
    /// The addresses published ports lead to, as `NETD_SVC_V1` holds them, read once and kept
    /// for `add_endpoint` (reading them walks every bucket of the map: 0.1–0.2 ms per `run`);
    /// `None` after a change to the map, read again when next needed. Only touched with the
    /// `ebpf` lock held.
    backends: Mutex<Option<HashSet<u32>>>,
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
    /// Maps are sized by `capacities`; a map pinned with another size refuses the start
    /// (its entries are live state that a resize would have to copy).
    pub fn load(dir: &Path, capacities: &Capacities) -> Result<Self> {
        let sizes = capacities.map_sizes();
        check_pinned_sizes(&dir.join("maps"), &sizes)?;
        Self::load_with(dir, &sizes)
    }

    /// `load`, with some maps sized differently (tests fill a small NAT map).
    pub fn load_with(dir: &Path, max_entries: &[(&str, u32)]) -> Result<Self> {
        bpffs::ensure(dir)?;
        for sub in ["maps", "links", "progs"] {
            fs::create_dir_all(dir.join(sub)).map_err(io_err("create pin dir"))?;
        }
        Self::move_legacy_link_pins(dir)?;
        let cookie = netns_cookie().map_err(io_err("netns cookie"))?;
        let mut loader = EbpfLoader::new();
        loader.default_map_pin_directory(dir.join("maps"));
        // The socket-LB acts only in this netns (the programs compare it first).
        loader.override_global(programs::NETNS_COOKIE_GLOBAL, &cookie, true);
        for (map, entries) in max_entries {
            loader.map_max_entries(map, *entries);
        }
        let mut ebpf = loader.load(object()?).map_err(DatapathError::from)?;
        // Before any program of this daemon is attached: the new maps hold the old entries.
        let migrated = migrate::copy_retired(&dir.join("maps"), &mut ebpf)?;
        for (name, _) in PROGRAMS {
            let prog = ebpf.program_mut(name).ok_or(DatapathError::Missing(name))?;
            match prog {
                Program::SchedClassifier(p) => p.load(),
                Program::CgroupSockAddr(p) => p.load(),
                Program::CgroupSock(p) => p.load(),
                _ => return Err(DatapathError::Missing(name).into()),
            }
            .map_err(program_err("load program"))?;
            let pin = dir.join("progs").join(name);
            // The previous daemon's program stays alive through its links until they are updated.
            remove_pin(&pin)?;
            prog.pin(&pin).map_err(pin_err("pin program"))?;
            if hook_of(name) != Some(AttachPoint::Clsact) {
                fs::create_dir_all(dir.join("links").join(name)).map_err(io_err("create pin dir"))?;
            }
        }
        // Retired layouts stay pinned until `finish_migration`; a name netd never had is no
        // state this daemon can read (a newer netd's, after a downgrade): it goes.
        let current: HashSet<String> = ebpf.maps().map(|(name, _)| name.to_string()).collect();
        remove_pins_except(&dir.join("maps"), |name| current.contains(name) || migrate::is_retired(name))?;
        remove_pins_except(&dir.join("progs"), |name| PROGRAMS.iter().any(|(p, _)| *p == name))?;
        let endpoint_programs = ENDPOINT_FILTERS
            .into_iter()
            .map(|(program, side)| {
                let fd = classifier(&mut ebpf, program)?.fd().map_err(program_err("program fd"))?;
                Ok((program, side, fd.try_clone().map_err(io_err("program fd"))?))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            ebpf: Mutex::new(ebpf),
            host_clients: AtomicBool::new(false),
            reserved_ports_sysctl: PathBuf::from(RESERVED_PORTS_SYSCTL),
            migrated: Mutex::new(Some(migrated)),
            endpoint_filters: Mutex::new(BTreeSet::new()),
            endpoint_programs,
            backends: Mutex::new(None),
        })
    }

    /// Unpins the maps of retired layouts whose entries `load` copied. Call once every link
    /// runs this daemon's programs (host clients attached, uplinks set, endpoints recovered);
    /// a crash before leaves the old pins for the next start to copy again.
    pub fn finish_migration(&self) -> Result<()> {
        match self.migrated.lock().unwrap().take() {
            Some(pending) => pending.unpin(),
            None => Ok(()),
        }
    }

    /// Attaches the socket-LB at the root of the cgroup2 hierarchy (found in
    /// /proc/self/mountinfo), so that host clients in this netns reach published ports. A host
    /// without a cgroup2 mount gets a warning: published ports work from outside and from
    /// containers, not from the host itself.
    pub fn attach_host_clients(&self) -> Result<()> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(io_err("read mountinfo"))?;
        let Some(root) = crate::daemon::supervisor::cgroup::cgroup2_mount(&mountinfo) else {
            tracing::warn!("no cgroup2 mount: host clients cannot reach published ports (outside and containers can)");
            return Ok(());
        };
        self.attach_sock_lb_at(&root)?;
        self.host_clients.store(true, Ordering::Relaxed);
        tracing::info!(cgroup2 = %root.display(), "socket-LB attached: host clients reach published ports");
        Ok(())
    }

    /// Attaches (or adopts) the socket-LB programs at the cgroup `cgroup` (the cgroup2 root;
    /// tests use an empty cgroup of their own).
    pub(crate) fn attach_sock_lb_at(&self, cgroup: &Path) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        for (program, hook) in PROGRAMS {
            if hook == AttachPoint::CgroupRoot {
                self.attach_cgroup(&mut ebpf, program, cgroup)?;
            }
        }
        Ok(())
    }

    /// (link id, program id) of each pinned socket-LB link.
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn sock_lb_links_for_test(&self) -> Vec<(u32, u32)> {
        PROGRAMS
            .iter()
            .filter(|(_, hook)| *hook == AttachPoint::CgroupRoot)
            .map(|(program, _)| {
                let link = PinnedLink::from_pin(self.link_pin(program, CGROUP_ROOT)).unwrap();
                let info = FdLink::from(link).info().unwrap();
                (info.id(), info.program_id())
            })
            .collect()
    }

    /// Moves the pinned cgroup link of a previous daemon onto this daemon's `program` (an
    /// atomic `BPF_LINK_UPDATE`, as `attach` does for tcx links: no moment without a program),
    /// or attaches `program` at the cgroup2 root mounted at `root` and pins the link. A pin that
    /// cannot be adopted is replaced by a fresh link, attached before the old pin goes; for
    /// that moment both run, which changes nothing: the second connect4/sendmsg4 sees the
    /// backend, which is no service; the second recvmsg4/getpeername4 sees the published
    /// address, which has no reverse entry; post_bind4 refuses the same binds.
    fn attach_cgroup(&self, ebpf: &mut Ebpf, program: &'static str, root: &Path) -> Result<()> {
        let pin = self.link_pin(program, CGROUP_ROOT);
        if pin.exists() {
            let prog = ebpf.program_mut(program).ok_or(DatapathError::Missing(program))?;
            match adopt_cgroup_link(prog, &pin) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(link = %pin.display(), error = %e, "cannot adopt pinned link; replacing it"),
            }
        }
        let cgroup = fs::File::open(root).map_err(io_err("open cgroup2 root"))?;
        // aya makes a bpf_link on kernels ≥ 5.7, and cgroup links always share the hook with
        // other programs; the kernel refuses BPF_F_ALLOW_MULTI in link flags (EINVAL), so the
        // mode is "Single" (flags 0) — which for a link is multi-attach.
        let mode = CgroupAttachMode::Single;
        let prog = ebpf.program_mut(program).ok_or(DatapathError::Missing(program))?;
        let link: FdLink = match prog {
            Program::CgroupSockAddr(p) => {
                let id = p.attach(&cgroup, mode).map_err(program_err("attach cgroup"))?;
                p.take_link(id).map_err(program_err("take link"))?.try_into().map_err(link_err("cgroup link"))?
            }
            Program::CgroupSock(p) => {
                let id = p.attach(&cgroup, mode).map_err(program_err("attach cgroup"))?;
                p.take_link(id).map_err(program_err("take link"))?.try_into().map_err(link_err("cgroup link"))?
            }
            _ => return Err(DatapathError::Missing(program).into()),
        };
        remove_pin(&pin)?;
        link.pin(&pin).map_err(pin_err("pin link"))?;
        Ok(())
    }

    /// Points `ip_local_reserved_ports` at another file (tests).
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn set_reserved_ports_sysctl(&mut self, path: PathBuf) {
        self.reserved_ports_sysctl = path;
    }

    /// Before programs had their own link directories, endpoint links were pinned straight
    /// under `links/`: move them where the tcx layout kept them, which `attach_endpoint`
    /// replaces by filters.
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
        let Some(AttachPoint::Tc(hook)) = hook_of(program) else {
            return Err(DatapathError::Missing(program).into());
        };
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

    /// The cached `published_backends` (read now if a change to the services dropped them).
    fn cached_backends(&self, ebpf: &mut Ebpf) -> Result<HashSet<u32>> {
        let mut cached = self.backends.lock().unwrap();
        if let Some(backends) = cached.as_ref() {
            return Ok(backends.clone());
        }
        let backends = published_backends(ebpf)?;
        *cached = Some(backends.clone());
        Ok(backends)
    }

    /// Adds the clsact qdisc and the endpoint filters to a veth just made, in one send
    /// (`tc_filter::attach_new`), without the `ebpf` lock: the first filter on a new clsact
    /// qdisc waits for an RCU grace period, which other runs' map work must not wait behind. A
    /// slot found taken (none should be, on a new veth) is read then: netd's own program is
    /// replaced in place, anyone else's filter refused (`attach_filter`).
    fn attach_new_endpoint(&self, ifname: &str, ifindex: u32) -> Result<()> {
        let filters: Vec<NewFilter<'_>> = self
            .endpoint_programs
            .iter()
            .map(|(program, side, fd)| NewFilter { side: *side, program, fd: fd.as_fd() })
            .collect();
        let created = tc_filter::attach_new(ifindex, &filters).map_err(io_err("attach endpoint filters"))?;
        for (&(program, side, _), created) in self.endpoint_programs.iter().zip(created) {
            if let Err(e) = created {
                match tc_filter::get_at(ifindex, side).map_err(io_err("read endpoint filter"))? {
                    Slot::Empty => return Err(io_err("attach endpoint filter")(e)),
                    _ => self.attach_filter(&mut self.ebpf.lock().unwrap(), ifname, ifindex, program, side)?,
                }
            }
        }
        self.endpoint_filters.lock().unwrap().insert(ifname.to_string());
        Ok(())
    }

    /// Attaches the endpoint programs to `ifname` as netd's cls_bpf filters
    /// (`tc_filter::PRIORITY`/`HANDLE`, direct action): at ingress (what the container sends)
    /// and at egress (what the host stack sends into it). A previous daemon's filter being
    /// there, its program is replaced in place: one `RTM_NEWTFILTER` on the same slot, atomic,
    /// no moment without a program. A filter at that slot that is not netd's program is
    /// refused, not replaced. Then the tcx link an older netd pinned for the veth goes: the
    /// filter runs first (tcx, ahead of clsact, keeps the packets until its link is unpinned),
    /// so traffic never stops.
    fn attach_endpoint(&self, ebpf: &mut Ebpf, ifname: &str) -> Result<()> {
        let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(|e| io_err("find veth")(e.into()))?;
        for (program, side) in ENDPOINT_FILTERS {
            self.attach_filter(ebpf, ifname, ifindex, program, side)?;
        }
        self.endpoint_filters.lock().unwrap().insert(ifname.to_string());
        remove_pin(&self.legacy_endpoint_pin(ifname))
    }

    /// Attaches (or replaces in place) netd's filter running `program` at `side` of `ifname`:
    /// an empty slot gets the filter as a new veth does (`tc_filter::attach_new`, the clsact
    /// qdisc with it); netd's own filter gets the program replaced through aya.
    ///
    /// aya keeps the link it returns and deletes the filter when that is dropped; the filter
    /// must outlive the daemon, so the link is taken out and forgotten (it holds no fd).
    fn attach_filter(
        &self,
        ebpf: &mut Ebpf,
        ifname: &str,
        ifindex: u32,
        program: &'static str,
        side: Side,
    ) -> Result<()> {
        let replace = match tc_filter::get_at(ifindex, side).map_err(io_err("read endpoint filter"))? {
            Slot::Empty => false,
            Slot::Filter(filter) if filter.is_program(program) => true,
            Slot::Filter(filter) => {
                return Err(foreign_filter(ifname, &format!("{} {}", filter.kind, filter.name.unwrap_or_default())))
            }
            Slot::Foreign => return Err(foreign_filter(ifname, "filters of another protocol")),
        };
        if !replace {
            let (_, _, fd) = self
                .endpoint_programs
                .iter()
                .find(|(name, at, _)| *name == program && *at == side)
                .ok_or(DatapathError::Missing(program))?;
            let filter = NewFilter { side, program, fd: fd.as_fd() };
            let created = tc_filter::attach_new(ifindex, &[filter]).map_err(io_err("attach endpoint filter"))?;
            return created.into_iter().collect::<std::io::Result<()>>().map_err(io_err("attach endpoint filter"));
        }
        let prog = classifier(ebpf, program)?;
        let handle = TcHandle::from(tc_filter::HANDLE);
        let link = SchedClassifierLink::attached(ifname, attach_type(side), tc_filter::PRIORITY, handle, None)
            .map_err(io_err("find veth"))?;
        let id = prog.attach_to_link(link).map_err(program_err("replace endpoint filter"))?;
        std::mem::forget(prog.take_link(id).map_err(program_err("take link"))?);
        Ok(())
    }

    /// Deletes netd's endpoint filters of `ifname` that are there and run netd's programs; a
    /// device that is gone took its filters with it.
    fn detach_endpoint(&self, ifname: &str) -> Result<()> {
        self.endpoint_filters.lock().unwrap().remove(ifname);
        let ifindex = match nix::net::if_::if_nametoindex(ifname) {
            Ok(ifindex) => ifindex,
            Err(nix::errno::Errno::ENODEV) => return Ok(()),
            Err(e) => return Err(io_err("find veth")(e.into())),
        };
        for (program, side) in ENDPOINT_FILTERS {
            match tc_filter::get_at(ifindex, side).map_err(io_err("read endpoint filter"))? {
                Slot::Filter(filter) if filter.is_program(program) => {
                    tc_filter::delete_at(ifindex, side).map_err(io_err("delete endpoint filter"))?
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Where the tcx layout pinned the endpoint link of `ifname`.
    fn legacy_endpoint_pin(&self, ifname: &str) -> PathBuf {
        self.link_pin(programs::ENDPOINT_INGRESS, ifname)
    }

    /// Removes every endpoint link pin of the tcx layout, and its directory: those of adopted
    /// endpoints went as their filters were attached; the rest are leftovers (unpinning
    /// detaches them).
    fn remove_legacy_endpoint_links(&self) -> Result<()> {
        let dir = self.dir.join("links").join(programs::ENDPOINT_INGRESS);
        remove_pins_except(&dir, |_| false)?;
        match fs::remove_dir(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove legacy link dir")(e)),
        }
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

    /// The id of this datapath's endpoint program.
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn endpoint_program_id_for_test(&self) -> u32 {
        let mut ebpf = self.ebpf.lock().unwrap();
        classifier(&mut ebpf, programs::ENDPOINT_INGRESS).unwrap().info().unwrap().id()
    }

    /// The bpffs directory the datapath pins under.
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn pin_dir_for_test(&self) -> &Path {
        &self.dir
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

/// The endpoint programs and the side of the veth's clsact qdisc each runs at.
const ENDPOINT_FILTERS: [(&str, Side); 2] =
    [(programs::ENDPOINT_INGRESS, Side::Ingress), (programs::ENDPOINT_EGRESS, Side::Egress)];

fn attach_type(side: Side) -> TcAttachType {
    match side {
        Side::Ingress => TcAttachType::Ingress,
        Side::Egress => TcAttachType::Egress,
    }
}

fn foreign_filter(ifname: &str, found: &str) -> Error {
    DatapathError::ForeignFilter {
        ifname: ifname.to_string(),
        priority: tc_filter::PRIORITY,
        handle: tc_filter::HANDLE,
        found: found.to_string(),
    }
    .into()
}

fn hook_of(program: &str) -> Option<AttachPoint> {
    PROGRAMS.iter().find(|(p, _)| *p == program).map(|(_, hook)| *hook)
}

/// Points the cgroup link pinned at `pin` at `prog` (`BPF_LINK_UPDATE`; the kernel refuses a
/// program of another attach type) and checks that the link now runs it. aya 0.14 has
/// `attach_to_link` only for tcx and XDP links and no fd of a pinned link, hence the two raw
/// bpf(2) calls.
fn adopt_cgroup_link(prog: &Program, pin: &Path) -> Result<()> {
    use std::os::{
        fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    };
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_LINK_UPDATE: libc::c_long = 29;
    #[repr(C)]
    struct ObjGet {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
    }
    #[repr(C)]
    struct LinkUpdate {
        link_fd: u32,
        new_prog_fd: u32,
        flags: u32,
        old_prog_fd: u32,
    }
    let path = std::ffi::CString::new(pin.as_os_str().as_bytes()).map_err(|e| io_err("link pin path")(e.into()))?;
    let attr = ObjGet { pathname: path.as_ptr() as u64, bpf_fd: 0, file_flags: 0 };
    // SAFETY: BPF_OBJ_GET reads `attr` (size given) and the NUL-terminated path it points to.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, &attr, std::mem::size_of::<ObjGet>()) };
    if fd < 0 {
        return Err(io_err("open pinned link")(std::io::Error::last_os_error()));
    }
    // SAFETY: the syscall returned a new fd that nothing else owns.
    let link = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let prog_fd = prog.fd().map_err(program_err("program fd"))?.as_fd().as_raw_fd();
    let attr = LinkUpdate { link_fd: link.as_raw_fd() as u32, new_prog_fd: prog_fd as u32, flags: 0, old_prog_fd: 0 };
    // SAFETY: BPF_LINK_UPDATE reads `attr` (size given); both fds are open.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_UPDATE, &attr, std::mem::size_of::<LinkUpdate>()) };
    if rc < 0 {
        return Err(io_err("update pinned link")(std::io::Error::last_os_error()));
    }
    drop(link);
    // The pin now runs this daemon's program — unless it was not a cgroup link at all.
    let info = FdLink::from(PinnedLink::from_pin(pin).map_err(link_err("open pinned link"))?)
        .info()
        .map_err(link_err("link info"))?;
    let ours = prog.info().map_err(program_err("program info"))?.id();
    if info.link_type().ok() != Some(aya::programs::links::LinkType::Cgroup) || info.program_id() != ours {
        return Err(
            DatapathError::NotAttached { pin: pin.display().to_string(), ifname: CGROUP_ROOT.to_string() }.into()
        );
    }
    Ok(())
}

/// The cookie of the netns this thread is in (`SO_NETNS_COOKIE`, Linux ≥ 5.14).
fn netns_cookie() -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .or_else(|_| std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: a valid socket fd, and a buffer of `len` bytes the kernel writes the cookie to.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cookie)
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

/// Refuses sizes that differ from those of maps already pinned in `maps_dir` (aya re-uses a
/// pin as it is, whatever size the loader asks for).
fn check_pinned_sizes(maps_dir: &Path, sizes: &[(&'static str, u32)]) -> Result<()> {
    for &(name, wanted) in sizes {
        let pin = maps_dir.join(name);
        if !pin.exists() {
            continue;
        }
        let pinned =
            MapData::from_pin(&pin).and_then(|map| map.info()).map_err(map_err("open pinned map"))?.max_entries();
        if pinned != wanted {
            return Err(DatapathError::PinnedSize { map: name, pinned, wanted, flag: Capacities::flag_of(name) }.into());
        }
    }
    Ok(())
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
        {
            let mut ebpf = self.ebpf.lock().unwrap();
            let backends = self.cached_backends(&mut ebpf)?;
            Self::insert_entries(&mut ebpf, ep, &backends)?;
        }
        if let Err(e) = self.attach_new_endpoint(&ep.host_ifname, ep.host_ifindex) {
            let _ = Self::remove_entries(&mut self.ebpf.lock().unwrap(), ep);
            return Err(e);
        }
        Ok(())
    }

    fn forget_endpoint(&self, ep: &DatapathEndpoint) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        Self::remove_entries(&mut ebpf, ep)?;
        // Its filter goes with its veth, which goes next (`reaper.rs`).
        self.endpoint_filters.lock().unwrap().remove(&ep.host_ifname);
        // Its flows go with it: the address is soon another endpoint's, which must not inherit
        // them (the periodic GC only purges flows of addresses no endpoint has). Only if the
        // datapath noted any: finding them reads every bucket of three tables (≈2 ms); with
        // its entries gone, the datapath notes it no more.
        let key = ip_key(ep.ip);
        let mut noted = hash_map::<u32, u8>(&mut ebpf, maps::FLOWS_OF)?;
        if noted.get(&key, 0).is_err() {
            return Ok(());
        }
        let _ = noted.remove(&key);
        forget_flows_of(&mut ebpf, &HashSet::from([key]))
    }

    fn release_link(&self, host_ifname: &str) -> Result<()> {
        self.detach_endpoint(host_ifname)
    }

    fn keep_exactly(&self, wanted: &[DatapathEndpoint]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        // Entries are rewritten with the same values and filters replaced in place: live
        // traffic never sees a gap. An endpoint that cannot be adopted is left out, not fatal;
        // its filter, if netd's, goes (as its pin did in the tcx layout).
        let mut known = Vec::with_capacity(wanted.len());
        // Endpoints with published ports keep IF_PUBLISHES throughout (hairpin replies).
        let backends = published_backends(&mut ebpf)?;
        for ep in wanted {
            let adopted = Self::insert_entries(&mut ebpf, ep, &backends)
                .and_then(|()| self.attach_endpoint(&mut ebpf, &ep.host_ifname));
            match adopted {
                Ok(()) => known.push(ep),
                Err(e) => {
                    tracing::warn!(veth = %ep.host_ifname, error = %e, "cannot adopt endpoint; leaving it out");
                    if let Err(e) = self.detach_endpoint(&ep.host_ifname) {
                        tracing::warn!(veth = %ep.host_ifname, error = %e, "cannot detach the endpoint's filter");
                    }
                }
            }
        }
        // Filters of unknown veths go with them (the sweep deletes the veths); link pins of the
        // tcx layout and entries that no adopted endpoint accounts for are leftovers.
        self.remove_legacy_endpoint_links()?;
        let ips: HashSet<u32> = known.iter().map(|ep| ip_key(ep.ip)).collect();
        let ifindexes: HashSet<u32> = known.iter().map(|ep| ep.host_ifindex).collect();
        let gone: HashSet<u32> = hash_map::<u32, EndpointValue>(&mut ebpf, maps::ENDPOINTS)?
            .keys()
            .flatten()
            .filter(|k| !ips.contains(k))
            .collect();
        remove_entries_except(&mut hash_map::<u32, EndpointValue>(&mut ebpf, maps::ENDPOINTS)?, |k, _| ips.contains(k));
        forget_flows_of(&mut ebpf, &gone)?;
        remove_entries_except(&mut hash_map::<u32, InterfaceValue>(&mut ebpf, maps::INTERFACES)?, |k, _| {
            ifindexes.contains(k)
        });
        // Flows made before this daemon started (perhaps by a netd that noted none) may name
        // any adopted endpoint: all of them are noted.
        let mut noted = hash_map::<u32, u8>(&mut ebpf, maps::FLOWS_OF)?;
        remove_entries_except(&mut noted, |k, _| ips.contains(k));
        for ip in &ips {
            noted.insert(ip, 1, 0).map_err(map_err("note endpoint flows"))?;
        }
        Ok(())
    }

    fn publish(&self, ports: &[PublishedPort]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        self.backends.lock().unwrap().take();
        let affected: HashSet<u32> = ports.iter().map(|p| ip_key(p.backend_addr)).collect();
        // The endpoints learn they publish before any client can reach them, so that no
        // hairpin reply leaves untranslated.
        let mut backends = published_backends(&mut ebpf)?;
        backends.extend(&affected);
        let mut result = set_publishes_flags(&mut ebpf, Some(&affected), &backends);
        let mut sysctl = self.reserved_sysctl();
        for (done, port) in ports.iter().enumerate() {
            if result.is_err() {
                break;
            }
            if let Err(e) = Self::insert_published(&mut ebpf, port, &mut sysctl) {
                // All or nothing: what this call added goes again (the failed one included: its
                // service entry may be in before its reserved entry failed).
                let _ = Self::remove_published(&mut ebpf, &ports[..=done], &mut sysctl);
                result = Err(e);
            }
        }
        self.write_reserved_sysctl(sysctl);
        if result.is_err() {
            if let Ok(backends) = published_backends(&mut ebpf) {
                let _ = set_publishes_flags(&mut ebpf, Some(&affected), &backends);
            }
        }
        result
    }

    fn unpublish(&self, ports: &[PublishedPort]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        self.backends.lock().unwrap().take();
        let mut sysctl = self.reserved_sysctl();
        let removed = Self::remove_published(&mut ebpf, ports, &mut sysctl);
        self.write_reserved_sysctl(sysctl);
        // An endpoint keeps IF_PUBLISHES while any of its ports is published.
        let affected: HashSet<u32> = ports.iter().map(|p| ip_key(p.backend_addr)).collect();
        let backends = published_backends(&mut ebpf)?;
        set_publishes_flags(&mut ebpf, Some(&affected), &backends)?;
        removed
    }

    fn keep_published(&self, ports: &[PublishedPort]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        self.backends.lock().unwrap().take();
        // Flags first (as in `publish`), cleared only after the services that go are gone.
        let mut backends = published_backends(&mut ebpf)?;
        backends.extend(ports.iter().map(|p| ip_key(p.backend_addr)));
        set_publishes_flags(&mut ebpf, None, &backends)?;
        let mut sysctl = self.reserved_sysctl();
        for port in ports {
            Self::insert_published(&mut ebpf, port, &mut sysctl)?;
        }
        let services: HashSet<ServiceKey> = ports.iter().map(service_key).collect();
        let reserved: HashSet<PortKey> = ports.iter().map(port_key).collect();
        remove_entries_except(&mut hash_map::<ServiceKey, ServiceValue>(&mut ebpf, maps::SERVICES)?, |k, _| {
            services.contains(k)
        });
        let mut table = hash_map::<PortKey, u8>(&mut ebpf, maps::RESERVED_PORTS)?;
        let stale: HashSet<PortKey> = table.keys().flatten().filter(|k| !reserved.contains(k)).collect();
        let release = reservations_to_release(&stale, &reserved, |k| table.get(&k, 0).ok());
        release.apply(&mut table, &mut sysctl);
        self.write_reserved_sysctl(sysctl);
        let backends = published_backends(&mut ebpf)?;
        set_publishes_flags(&mut ebpf, None, &backends)
    }

    fn set_host_addresses(&self, addrs: &[Ipv4Addr]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let mut table = hash_map::<u32, u8>(&mut ebpf, maps::HOST_ADDRS)?;
        for addr in addrs {
            table.insert(ip_key(*addr), 1, 0).map_err(map_err("update host address map"))?;
        }
        let wanted: HashSet<u32> = addrs.iter().map(|a| ip_key(*a)).collect();
        remove_entries_except(&mut table, |k, _| wanted.contains(k));
        Ok(())
    }

    fn host_clients(&self) -> bool {
        self.host_clients.load(Ordering::Relaxed)
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

    fn set_tunnel(&self, tunnel: Option<&Tunnel>) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        if let Some(tunnel) = tunnel {
            self.attach(&mut ebpf, programs::TUNNEL_INGRESS, &tunnel.ifname)?;
        }
        self.keep_links(programs::TUNNEL_INGRESS, |name| tunnel.is_some_and(|t| t.ifname == name))
    }

    fn set_overlay_networks(&self, networks: &[OverlayNetwork]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let mut map = hash_map::<u32, u32>(&mut ebpf, maps::TUNNEL_NETWORKS)?;
        let wanted: HashMap_<u32, u32> = networks.iter().map(|n| (n.vni, n.network_index)).collect();
        for (vni, index) in &wanted {
            map.insert(vni, index, 0).map_err(map_err("update tunnel network map"))?;
        }
        remove_entries_except(&mut map, |vni, index| wanted.get(vni) == Some(index));
        Ok(())
    }

    fn add_remote_endpoint(&self, ep: &RemoteEndpoint) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        hash_map::<u32, RemoteEndpointValue>(&mut ebpf, maps::REMOTE_ENDPOINTS)?
            .insert(ip_key(ep.ip), remote_value(ep), 0)
            .map_err(map_err("update remote endpoint map"))
    }

    fn remove_remote_endpoint(&self, ip: Ipv4Addr) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        match hash_map::<u32, RemoteEndpointValue>(&mut ebpf, maps::REMOTE_ENDPOINTS)?.remove(&ip_key(ip)) {
            Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
            Err(e) => Err(map_err("remove remote endpoint")(e)),
        }
    }

    fn keep_remote_endpoints(&self, endpoints: &[RemoteEndpoint]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        let mut map = hash_map::<u32, RemoteEndpointValue>(&mut ebpf, maps::REMOTE_ENDPOINTS)?;
        let wanted: HashMap_<u32, RemoteEndpointValue> =
            endpoints.iter().map(|ep| (ip_key(ep.ip), remote_value(ep))).collect();
        for (ip, value) in &wanted {
            map.insert(ip, value, 0).map_err(map_err("update remote endpoint map"))?;
        }
        remove_entries_except(&mut map, |ip, value| wanted.get(ip) == Some(value));
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
            host_clients: self.host_clients.load(Ordering::Relaxed),
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
        // netd's ports leave ip_local_reserved_ports; endpoint filters still attached (their
        // veths normally went first) are deleted; unpinning the links detaches every other
        // program, the socket-LB's at the cgroup2 root too.
        let attached: Vec<String> = self.endpoint_filters.lock().unwrap().iter().cloned().collect();
        for ifname in attached {
            if let Err(e) = self.detach_endpoint(&ifname) {
                tracing::warn!(veth = %ifname, error = %e, "cannot detach an endpoint filter");
            }
        }
        {
            let mut ebpf = self.ebpf.lock().unwrap();
            let mut sysctl = self.reserved_sysctl();
            if let Ok(table) = hash_map::<PortKey, u8>(&mut ebpf, maps::RESERVED_PORTS) {
                for (key, flags) in table.iter().flatten() {
                    if flags & RSVD_SYSCTL_OWNED != 0 {
                        if let Some(ports) = sysctl.as_mut() {
                            ports.remove(&key.port);
                        }
                    }
                }
            }
            self.write_reserved_sysctl(sysctl);
            self.host_clients.store(false, Ordering::Relaxed);
        }
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove pins")(e)),
        }
    }
}

fn remote_value(ep: &RemoteEndpoint) -> RemoteEndpointValue {
    RemoteEndpointValue {
        host: ip_key(ep.host),
        vni: ep.vni,
        network_index: ep.network_index,
        tunnel_ifindex: ep.tunnel_ifindex,
        mac: ep.mac,
        _pad: [0; 2],
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
    /// Adds `port`'s service entry and reserves its host port from NAT and, in `sysctl`
    /// (`ip_local_reserved_ports`), from the kernel's ephemeral ports — marking the port netd's
    /// when netd put it there (a port the admin had reserved stays the admin's).
    fn insert_published(ebpf: &mut Ebpf, port: &PublishedPort, sysctl: &mut Option<BTreeSet<u16>>) -> Result<()> {
        let value = ServiceValue { backend_addr: ip_key(port.backend_addr), backend_port: port.backend_port, _pad: 0 };
        hash_map::<ServiceKey, ServiceValue>(ebpf, maps::SERVICES)?
            .insert(service_key(port), value, 0)
            .map_err(map_err("update service map"))?;
        let mut table = hash_map::<PortKey, u8>(ebpf, maps::RESERVED_PORTS)?;
        let key = port_key(port);
        // Every entry of one port agrees on who owns the port in the sysctl (O(1): one lookup
        // per protocol).
        let owned = same_port(key).any(|k| table.get(&k, 0).is_ok_and(|flags| flags & RSVD_SYSCTL_OWNED != 0))
            || sysctl.as_mut().is_some_and(|ports| ports.insert(key.port));
        let flags = RSVD_PUBLISHED | if owned { RSVD_SYSCTL_OWNED } else { 0 };
        // The host port is kept from masquerade's NAT ports (whatever address it is on).
        table.insert(key, flags, 0).map_err(map_err("update reserved port map"))
    }

    /// Removes the service entries of `ports`, then the reserved host ports no service uses any
    /// more. Linear: the services map is scanned once for the whole batch, not once per port
    /// (a 1,000-port range went in 0.6 s, 2,000 ports in 2.5 s, rescanning it per port).
    fn remove_published(ebpf: &mut Ebpf, ports: &[PublishedPort], sysctl: &mut Option<BTreeSet<u16>>) -> Result<()> {
        let mut services = hash_map::<ServiceKey, ServiceValue>(ebpf, maps::SERVICES)?;
        for port in ports {
            let _ = services.remove(&service_key(port));
        }
        let in_use: HashSet<PortKey> =
            services.keys().flatten().map(|k| PortKey { port: k.port, proto: k.proto, _pad: 0 }).collect();
        let candidates: HashSet<PortKey> = ports.iter().map(port_key).collect();
        let mut table = hash_map::<PortKey, u8>(ebpf, maps::RESERVED_PORTS)?;
        let release = reservations_to_release(&candidates, &in_use, |k| table.get(&k, 0).ok());
        release.apply(&mut table, sysctl);
        Ok(())
    }

    /// The ports in `ip_local_reserved_ports` now; None (logged) when it cannot be read — then
    /// netd leaves the sysctl alone.
    fn reserved_sysctl(&self) -> Option<BTreeSet<u16>> {
        match crate::daemon::host_ports::read_sysctl(&self.reserved_ports_sysctl) {
            Ok(text) => Some(parse_port_list(&text)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read ip_local_reserved_ports: published ports may be picked as ephemeral ports");
                None
            }
        }
    }

    /// Writes `ports` back when they differ from what the sysctl holds. The file is the state:
    /// netd rewrites only its own ports (the reserved map's `RSVD_SYSCTL_OWNED`), keeps every
    /// other, and a restarted daemon reconciles against it in `keep_published`.
    fn write_reserved_sysctl(&self, ports: Option<BTreeSet<u16>>) {
        let Some(ports) = ports else { return };
        if self.reserved_sysctl().as_ref() == Some(&ports) {
            return;
        }
        // An empty write leaves the bitmap as it was: a lone newline clears it.
        let text = format!("{}\n", format_port_list(&ports));
        if let Err(e) = fs::write(&self.reserved_ports_sysctl, text) {
            tracing::warn!(error = %e, "cannot write ip_local_reserved_ports: published ports may be picked as ephemeral ports");
        }
    }
}

/// What leaves the reserved map and `ip_local_reserved_ports` once some services are gone.
#[derive(Debug, Default, PartialEq, Eq)]
struct Release {
    /// Reserved-map entries no service uses any more.
    entries: HashSet<PortKey>,
    /// Ports netd put in the sysctl (`RSVD_SYSCTL_OWNED`) that no protocol keeps reserved.
    sysctl_ports: BTreeSet<u16>,
}

impl Release {
    /// Removes the entries from the reserved map and the ports from `sysctl`.
    fn apply(&self, table: &mut HashMap<&mut MapData, PortKey, u8>, sysctl: &mut Option<BTreeSet<u16>>) {
        for key in &self.entries {
            let _ = table.remove(key);
        }
        if let Some(ports) = sysctl.as_mut() {
            for port in &self.sysctl_ports {
                ports.remove(port);
            }
        }
    }
}

/// Decides, for the (port, proto) pairs that may go (`candidates`: their services were just
/// removed, or no kept port has them), which reserved entries go: those no remaining service
/// (`in_use`) has. `reserved` answers the flags of a reserved-map entry as it is before any of
/// them goes (None: no entry). A port leaves the sysctl when netd owns it and every protocol's
/// entry of it is gone or going.
fn reservations_to_release(
    candidates: &HashSet<PortKey>,
    in_use: &HashSet<PortKey>,
    reserved: impl Fn(PortKey) -> Option<u8>,
) -> Release {
    let mut release = Release::default();
    for key in candidates.iter().filter(|k| !in_use.contains(k)) {
        if reserved(*key).is_some() {
            release.entries.insert(*key);
        }
    }
    for key in &release.entries {
        let owned = reserved(*key).is_some_and(|flags| flags & RSVD_SYSCTL_OWNED != 0);
        if owned && same_port(*key).all(|k| release.entries.contains(&k) || reserved(k).is_none()) {
            release.sysctl_ports.insert(key.port);
        }
    }
    release
}

/// The reserved-map keys of `key`'s port, every protocol (TCP, UDP).
fn same_port(key: PortKey) -> impl Iterator<Item = PortKey> {
    [6u8, 17].into_iter().map(move |proto| PortKey { port: key.port, proto, _pad: 0 })
}

/// `ip_local_reserved_ports` syntax: `8080,9000-9002` (empty: none).
fn parse_port_list(text: &str) -> BTreeSet<u16> {
    let mut ports = BTreeSet::new();
    for item in text.trim().split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        if let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
            ports.extend(lo..=hi);
        }
    }
    ports
}

fn format_port_list(ports: &BTreeSet<u16>) -> String {
    let mut ranges: Vec<(u16, u16)> = Vec::new();
    for &port in ports {
        match ranges.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(port) => *hi = port,
            _ => ranges.push((port, port)),
        }
    }
    let items: Vec<String> =
        ranges.iter().map(|&(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }).collect();
    items.join(",")
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

/// Removes the conntrack entries naming one of `addrs` (either side) and the NAT mappings
/// leading back to one.
fn forget_flows_of(ebpf: &mut Ebpf, addrs: &HashSet<u32>) -> Result<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    for ct in [maps::CT_TCP, maps::CT_OTHER] {
        remove_entries_except(&mut hash_map::<CtKey, CtEntry>(ebpf, ct)?, |key, _| {
            !addrs.contains(&key.saddr) && !addrs.contains(&key.daddr)
        });
    }
    remove_entries_except(&mut hash_map::<CtKey, NatReverse>(ebpf, maps::NAT)?, |key, value| {
        !addrs.contains(&value.addr) && !addrs.contains(&key.saddr)
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_port_lists_read_and_write_the_sysctl_syntax() {
        let ports = parse_port_list("80,8080-8082, 9000\n");
        assert_eq!(ports, BTreeSet::from([80, 8080, 8081, 8082, 9000]));
        assert_eq!(format_port_list(&ports), "80,8080-8082,9000");
        assert!(parse_port_list("\n").is_empty());
        assert_eq!(format_port_list(&BTreeSet::new()), "");
        assert_eq!(format_port_list(&BTreeSet::from([65534, 65535])), "65534-65535");
    }

    fn key(port: u16, proto: u8) -> PortKey {
        PortKey { port, proto, _pad: 0 }
    }

    #[test]
    fn reserved_entries_go_only_when_no_service_uses_them() {
        let reserved: std::collections::HashMap<PortKey, u8> = [
            (key(8080, 6), RSVD_PUBLISHED | RSVD_SYSCTL_OWNED),
            (key(8080, 17), RSVD_PUBLISHED | RSVD_SYSCTL_OWNED),
            (key(9000, 6), RSVD_PUBLISHED | RSVD_SYSCTL_OWNED),
            (key(9001, 6), RSVD_PUBLISHED),
            (key(9002, 6), RSVD_PUBLISHED | RSVD_SYSCTL_OWNED),
        ]
        .into();
        let lookup = |k: PortKey| reserved.get(&k).copied();
        // 8080/tcp goes but 8080/udp stays published: the sysctl keeps 8080. 9000/tcp is
        // still published on another address: its entry stays. 9001 was the admin's in the
        // sysctl: its entry goes, the sysctl keeps it. 9003 had no entry.
        let candidates = HashSet::from([key(8080, 6), key(9000, 6), key(9001, 6), key(9002, 6), key(9003, 6)]);
        let in_use = HashSet::from([key(8080, 17), key(9000, 6)]);
        let release = reservations_to_release(&candidates, &in_use, lookup);
        assert_eq!(release.entries, HashSet::from([key(8080, 6), key(9001, 6), key(9002, 6)]));
        assert_eq!(release.sysctl_ports, BTreeSet::from([9002]));
        // Both protocols of 8080 going at once: the port leaves the sysctl.
        let both = HashSet::from([key(8080, 6), key(8080, 17)]);
        let release = reservations_to_release(&both, &HashSet::new(), lookup);
        assert_eq!(release.entries, both);
        assert_eq!(release.sysctl_ports, BTreeSet::from([8080]));
    }
}
