//! The eBPF datapath: loads netd-ebpf, pins maps, programs and tcx links under the daemon's
//! bpffs directory, and keeps the maps in step with the endpoints.
use std::{
    fs,
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
    Ebpf, EbpfLoader,
};
use netd_common::{maps, programs, DropCounter, DropReason, EndpointValue, InterfaceValue};

use super::{bpffs, Datapath, DatapathEndpoint, DatapathError, DropStat};
use crate::error::{Error, Result};

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

impl EbpfDatapath {
    /// Loads the programs, re-using maps already pinned under `dir` (a restarted daemon keeps
    /// the live forwarding state).
    pub fn load(dir: &Path) -> Result<Self> {
        bpffs::ensure(dir)?;
        for sub in ["maps", "links", "progs"] {
            fs::create_dir_all(dir.join(sub)).map_err(io_err("create pin dir"))?;
        }
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(dir.join("maps"))
            .load(object()?)
            .map_err(DatapathError::from)?;
        let prog = classifier(&mut ebpf)?;
        prog.load().map_err(program_err("load program"))?;
        let prog_pin = dir.join("progs").join(programs::ENDPOINT_INGRESS);
        // The previous daemon's program stays alive through its links until they are updated.
        let _ = fs::remove_file(&prog_pin);
        prog.pin(&prog_pin).map_err(pin_err("pin program"))?;
        Ok(Self { dir: dir.to_path_buf(), ebpf: Mutex::new(ebpf) })
    }

    fn link_pin(&self, host_ifname: &str) -> PathBuf {
        self.dir.join("links").join(host_ifname)
    }

    fn insert_entries(ebpf: &mut Ebpf, ep: &DatapathEndpoint) -> Result<()> {
        let iface = InterfaceValue {
            ip: ip_key(ep.ip),
            gateway: ip_key(ep.gateway),
            network_index: ep.network_index,
            mac: ep.mac,
            host_mac: ep.host_mac,
        };
        let endpoint =
            EndpointValue { ifindex: ep.host_ifindex, network_index: ep.network_index, mac: ep.mac, _pad: [0; 2] };
        interfaces(ebpf)?.insert(ep.host_ifindex, iface, 0).map_err(map_err("update interface map"))?;
        let added = endpoints(ebpf)
            .and_then(|mut m| m.insert(ip_key(ep.ip), endpoint, 0).map_err(map_err("update endpoint map")));
        if added.is_err() {
            // All or nothing: a full endpoint map must not leave the interface entry behind.
            let _ = interfaces(ebpf)?.remove(&ep.host_ifindex);
        }
        added
    }

    fn remove_entries(ebpf: &mut Ebpf, ep: &DatapathEndpoint) -> Result<()> {
        // A missing key is fine: removal is idempotent.
        let _ = interfaces(ebpf)?.remove(&ep.host_ifindex);
        let _ = endpoints(ebpf)?.remove(&ip_key(ep.ip));
        Ok(())
    }

    /// Moves the pinned link of a previous daemon onto this daemon's program (an atomic update:
    /// no moment without a program), or attaches and pins a fresh tcx link. A pinned link that
    /// cannot be updated is replaced by a fresh one, attached before the old one is unpinned.
    fn attach(&self, ebpf: &mut Ebpf, ep: &DatapathEndpoint) -> Result<()> {
        let pin = self.link_pin(&ep.host_ifname);
        if pin.exists() {
            match Self::adopt(classifier(ebpf)?, &pin, &ep.host_ifname) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::warn!(link = %pin.display(), error = %e, "cannot adopt pinned link; replacing it"),
            }
        }
        let link = Self::attach_fresh(classifier(ebpf)?, &ep.host_ifname)?;
        match fs::remove_file(&pin) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("unpin link")(e)),
        }
        link.pin(&pin).map_err(pin_err("pin link"))?;
        Ok(())
    }

    fn adopt(prog: &mut SchedClassifier, pin: &Path, ifname: &str) -> Result<()> {
        let link = PinnedLink::from_pin(pin).map_err(link_err("open pinned link"))?;
        let link = SchedClassifierLink::try_from(FdLink::from(link)).map_err(link_err("adopt pinned link"))?;
        let id = prog.attach_to_link(link).map_err(program_err("update pinned link"))?;
        // The pin keeps the link; holding its fd too would keep it attached after an unpin.
        drop(prog.take_link(id).map_err(program_err("take link"))?);
        // A pin left by a crash may hold another device's link: adopted only if the program
        // now runs at this veth's ingress.
        let ours = prog.info().map_err(program_err("program info"))?.id();
        let (_, attached) =
            SchedClassifier::query_tcx(ifname, TcAttachType::Ingress).map_err(program_err("query tcx"))?;
        if !attached.iter().any(|p| p.id() == ours) {
            return Err(
                DatapathError::NotAttached { pin: pin.display().to_string(), ifname: ifname.to_string() }.into()
            );
        }
        Ok(())
    }

    fn attach_fresh(prog: &mut SchedClassifier, ifname: &str) -> Result<FdLink> {
        let id = prog
            .attach_with_options(ifname, TcAttachType::Ingress, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .map_err(program_err("attach tc program"))?;
        let link = prog.take_link(id).map_err(program_err("take link"))?;
        FdLink::try_from(link).map_err(link_err("tcx link"))
    }

    /// Runs the endpoint program once on `packet` with aya's `TestRun` (`BPF_PROG_TEST_RUN`);
    /// returns the verdict and the packet as the program left it. The syscall's own error is
    /// returned as it came (some kernels refuse short IPv4 input with EINVAL).
    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn test_run(&self, packet: &[u8]) -> std::io::Result<(u32, Vec<u8>)> {
        use aya::programs::{ProgramError, TestRun, TestRunOptions};
        let mut ebpf = self.ebpf.lock().unwrap();
        let prog = classifier(&mut ebpf).map_err(std::io::Error::other)?;
        // The program never grows a packet; the slack only makes a change in that visible.
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
        Self::insert_entries(&mut self.ebpf.lock().unwrap(), ep).unwrap();
    }

    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn insert_endpoint_only_for_test(&self, ep: &DatapathEndpoint) {
        let endpoint =
            EndpointValue { ifindex: ep.host_ifindex, network_index: ep.network_index, mac: ep.mac, _pad: [0; 2] };
        endpoints(&mut self.ebpf.lock().unwrap()).unwrap().insert(ip_key(ep.ip), endpoint, 0).unwrap();
    }

    #[cfg(all(test, feature = "ebpf"))]
    pub(crate) fn interface_keys_for_test(&self) -> Vec<u32> {
        let mut keys: Vec<u32> = interfaces(&mut self.ebpf.lock().unwrap()).unwrap().keys().flatten().collect();
        keys.sort();
        keys
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

fn classifier(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier> {
    ebpf.program_mut(programs::ENDPOINT_INGRESS)
        .ok_or(DatapathError::Missing("program netd_ep_ingress"))?
        .try_into()
        .map_err(program_err("program type"))
}

fn endpoints(ebpf: &mut Ebpf) -> Result<HashMap<&mut MapData, u32, EndpointValue>> {
    let map = ebpf.map_mut(maps::ENDPOINTS).ok_or(DatapathError::Missing("endpoint map"))?;
    HashMap::try_from(map).map_err(map_err("endpoint map"))
}

fn interfaces(ebpf: &mut Ebpf) -> Result<HashMap<&mut MapData, u32, InterfaceValue>> {
    let map = ebpf.map_mut(maps::INTERFACES).ok_or(DatapathError::Missing("interface map"))?;
    HashMap::try_from(map).map_err(map_err("interface map"))
}

impl Datapath for EbpfDatapath {
    fn add_endpoint(&self, ep: &DatapathEndpoint) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        Self::insert_entries(&mut ebpf, ep)?;
        if let Err(e) = self.attach(&mut ebpf, ep) {
            let _ = Self::remove_entries(&mut ebpf, ep);
            return Err(e);
        }
        Ok(())
    }

    fn remove_endpoint(&self, ep: &DatapathEndpoint) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        // Unpinning drops the last reference to the tcx link, which detaches it.
        match fs::remove_file(self.link_pin(&ep.host_ifname)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("unpin link")(e)),
        }
        Self::remove_entries(&mut ebpf, ep)
    }

    fn keep_exactly(&self, wanted: &[DatapathEndpoint]) -> Result<()> {
        let mut ebpf = self.ebpf.lock().unwrap();
        // Entries are rewritten with the same values and links updated in place: live traffic
        // never sees a gap. An endpoint that cannot be adopted is left out, not fatal.
        let mut known = Vec::with_capacity(wanted.len());
        for ep in wanted {
            let adopted = Self::insert_entries(&mut ebpf, ep).and_then(|()| self.attach(&mut ebpf, ep));
            match adopted {
                Ok(()) => known.push(ep),
                Err(e) => tracing::warn!(veth = %ep.host_ifname, error = %e, "cannot adopt endpoint; leaving it out"),
            }
        }
        // Pins and entries that no adopted endpoint accounts for are leftovers: remove them.
        // Unpinning drops the last reference to a tcx link, which detaches it.
        let links = fs::read_dir(self.dir.join("links")).map_err(io_err("list link pins"))?;
        for entry in links.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.iter().any(|ep| ep.host_ifname == name) {
                tracing::info!(pin = %entry.path().display(), "removing stale link pin");
                let _ = fs::remove_file(entry.path());
            }
        }
        let stale_ips: Vec<u32> =
            endpoints(&mut ebpf)?.keys().flatten().filter(|k| !known.iter().any(|ep| ip_key(ep.ip) == *k)).collect();
        let mut eps = endpoints(&mut ebpf)?;
        for k in stale_ips {
            let _ = eps.remove(&k);
        }
        let stale_ifs: Vec<u32> =
            interfaces(&mut ebpf)?.keys().flatten().filter(|k| !known.iter().any(|ep| ep.host_ifindex == *k)).collect();
        let mut ifs = interfaces(&mut ebpf)?;
        for k in stale_ifs {
            let _ = ifs.remove(&k);
        }
        Ok(())
    }

    fn drop_stats(&self) -> Result<Vec<DropStat>> {
        let ebpf = self.ebpf.lock().unwrap();
        let map = ebpf.map(maps::DROPS).ok_or(DatapathError::Missing("drop map"))?;
        let drops: PerCpuArray<&MapData, DropCounter> = PerCpuArray::try_from(map).map_err(map_err("drop map"))?;
        DropReason::ALL
            .iter()
            .map(|reason| {
                let values = drops.get(&(*reason as u32), 0).map_err(map_err("read drop counters"))?;
                Ok(DropStat {
                    reason: reason.name().to_string(),
                    code: *reason as u8,
                    packets: values.iter().map(|v| v.packets).sum(),
                    bytes: values.iter().map(|v| v.bytes).sum(),
                })
            })
            .collect()
    }

    fn purge(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove pins")(e)),
        }
    }
}
