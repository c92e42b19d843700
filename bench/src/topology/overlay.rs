//! Across hosts: "hosts" are netns on an underlay (a bridge in a netns of its own, 192.0.2.0/24,
//! host `i` at 192.0.2.(11+i)); nothing crosses into the root netns.
//!
//! - `vxlan` (the floor): two such hosts with a kernel VXLAN device each (VNI 42, the other
//!   host as its static remote) and the endpoint address on that device: no veth, no bridge,
//!   no BPF. The least a packet between hosts can cost.
//! - `netd-overlay`: netd in cluster mode, one daemon per host, etcd (Debian's etcd-server) in
//!   the underlay's netns, a `network create -d overlay` network, the server container on one
//!   host and the client on the other.
//!
//! [`OverlayCluster`] is also what the convergence measurement (`convergence.rs`) runs on, with
//! 3 or 10 hosts.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::{connect_uplink, netd::Daemon, Endpoint, Kind, Names, Topology};
use crate::sys::{self, ChildGuard, Netns};

pub const ETCD: &str = "/usr/bin/etcd";
const ETCD_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VXLAN_SERVER: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
const VXLAN_CLIENT: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
/// The overlay network of `netd-overlay` (and of the convergence measurement).
pub const OVERLAY_NETWORK: &str = "nb-overlay";

/// Host `i`'s underlay address.
fn host_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 11 + i as u8)
}

/// The underlay: a bridge `br0` with etcd's address, in a netns of its own.
fn underlay(names: &Names) -> Result<Netns> {
    let ns = Netns::create(&names.netns("ul"))?;
    ns.ip(&["link", "add", "br0", "type", "bridge"])?;
    ns.ip(&["addr", "add", &format!("{ETCD_ADDR}/24"), "dev", "br0"])?;
    ns.ip(&["link", "set", "br0", "up"])?;
    Ok(ns)
}

/// Plugs `host` into the underlay as `eth1` with host `i`'s address.
fn plug(names: &Names, underlay: &Netns, host: &Netns, i: usize) -> Result<()> {
    let (h_if, u_if) = (names.ifname(&format!("{i}h")), names.ifname(&format!("{i}u")));
    host.ip(&["link", "add", &h_if, "type", "veth", "peer", "name", &u_if, "netns", &underlay.name])?;
    underlay.ip(&["link", "set", &u_if, "master", "br0", "up"])?;
    host.ip(&["link", "set", &h_if, "name", "eth1"])?;
    host.ip(&["addr", "add", &format!("{}/24", host_addr(i)), "dev", "eth1"])?;
    host.ip(&["link", "set", "eth1", "up"])?;
    Ok(())
}

pub struct VxlanPair {
    server: Endpoint,
    client: Endpoint,
    _hosts: Vec<Netns>,
    _underlay: Netns,
}

impl VxlanPair {
    pub fn setup(names: &Names) -> Result<Self> {
        let names = names.variant("x");
        let underlay = underlay(&names)?;
        let mut hosts = Vec::new();
        for (i, ip) in [VXLAN_SERVER, VXLAN_CLIENT].into_iter().enumerate() {
            let host = Netns::create(&names.netns(&format!("h{i}")))?;
            plug(&names, &underlay, &host, i)?;
            let (local, remote) = (host_addr(i).to_string(), host_addr(1 - i).to_string());
            host.ip(&[
                "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789", "local", &local, "remote",
                &remote, "dev", "eth1",
            ])?;
            host.ip(&["link", "set", "vx0", "mtu", "1450", "up"])?;
            host.ip(&["addr", "add", &format!("{ip}/24"), "dev", "vx0"])?;
            hosts.push(host);
        }
        Ok(Self {
            server: Endpoint { netns: hosts[0].path(), ip: VXLAN_SERVER },
            client: Endpoint { netns: hosts[1].path(), ip: VXLAN_CLIENT },
            _hosts: hosts,
            _underlay: underlay,
        })
    }
}

impl Topology for VxlanPair {
    fn kind(&self) -> Kind {
        Kind::Vxlan
    }
    fn server(&self) -> &Endpoint {
        &self.server
    }
    fn client(&self) -> &Endpoint {
        &self.client
    }
}

/// One host of an [`OverlayCluster`].
pub struct OverlayHost {
    daemon: Daemon,
    pub run_dir: PathBuf,
    _outside: Netns,
    _host: Netns,
}

impl OverlayHost {
    pub fn cli(&self) -> Command {
        self.daemon.cli()
    }

    /// `run -d` of container `name` on the overlay network; its netns and address.
    pub fn run(&self, name: &str) -> Result<Endpoint> {
        sys::run(self.cli().args(["run", "-d", "--name", name, "--network", OVERLAY_NETWORK]))
            .with_context(|| format!("netd run {name}"))?;
        self.daemon.endpoint_of(name, &self.run_dir)
    }
}

/// `n` hosts with a netd daemon each in cluster mode, etcd on the underlay, and the overlay
/// network [`OVERLAY_NETWORK`] made on the first and seen by all.
pub struct OverlayCluster {
    // Drop order: the daemons (their `system reset`) while etcd runs, then etcd, then the rest.
    pub hosts: Vec<OverlayHost>,
    _etcd: ChildGuard,
    _underlay: Netns,
    dir: PathBuf,
}

impl OverlayCluster {
    pub fn setup(names: &Names, n: usize) -> Result<Self> {
        if !Path::new(ETCD).exists() {
            bail!("{ETCD} not found (Debian's etcd-server; cargo xtask setup installs it)");
        }
        let underlay = underlay(names)?;
        let dir = tempfile::Builder::new().prefix(&format!("{}-overlay-", names.tag)).tempdir()?.keep();
        let made = Self::start(names, n, underlay, &dir);
        if made.is_err() {
            sys::remove_tree(&dir);
        }
        made
    }

    fn start(names: &Names, n: usize, underlay: Netns, dir: &Path) -> Result<Self> {
        let client = format!("http://{ETCD_ADDR}:2379");
        let log = std::fs::File::create(dir.join("etcd.log"))?;
        let mut etcd = sys::netns_command(&underlay.path(), None, ETCD);
        etcd.arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let etcd = ChildGuard::spawn(&mut etcd, "etcd", Duration::from_secs(10))?;
        let mut cluster = Self { hosts: Vec::new(), _etcd: etcd, _underlay: underlay, dir: dir.to_path_buf() };
        for i in 0..n {
            let host = Netns::create(&names.netns(&format!("ov{i}")))?;
            let outside = Netns::create(&names.netns(&format!("ovo{i}")))?;
            let (h_if, o_if) = (names.ifname(&format!("{i}e")), names.ifname(&format!("{i}o")));
            connect_uplink(&host, &outside, &h_if, &o_if)?;
            plug(names, &cluster._underlay, &host, i)?;
            let extra: Vec<String> = [
                "--cluster-store",
                &format!("etcd://{ETCD_ADDR}:2379"),
                "--advertise-addr",
                &host_addr(i).to_string(),
                // Names that are not containers' go to the outside netns, where nothing answers.
                "--dns-upstream",
                &super::OUTSIDE_IP.to_string(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let host_dir = dir.join(format!("h{i}"));
            let daemon = Daemon::start_with(&host, &host_dir, &names.netns(&format!("ov{i}")), &h_if, &extra)?;
            cluster.hosts.push(OverlayHost { daemon, run_dir: host_dir.join("run"), _outside: outside, _host: host });
        }
        // The first host's session up: then the network is made and every host waits for it.
        sys::wait_until(Duration::from_secs(30), "netd's cluster session", || {
            Ok(sys::run(cluster.hosts[0].cli().args(["network", "create", "-d", "overlay", OVERLAY_NETWORK])).is_ok())
        })?;
        for host in &cluster.hosts {
            sys::wait_until(Duration::from_secs(30), "the overlay network on every host", || {
                Ok(sys::run(host.cli().args(["network", "inspect", OVERLAY_NETWORK])).is_ok())
            })?;
        }
        Ok(cluster)
    }
}

impl Drop for OverlayCluster {
    fn drop(&mut self) {
        self.hosts.clear();
        sys::remove_tree(&self.dir);
    }
}

pub struct OverlayPair {
    server: Endpoint,
    client: Endpoint,
    _cluster: OverlayCluster,
}

impl OverlayPair {
    pub fn setup(names: &Names) -> Result<Self> {
        let names = names.variant("o");
        let cluster = OverlayCluster::setup(&names, 2)?;
        let server = cluster.hosts[0].run(&names.netns("srv"))?;
        let client = cluster.hosts[1].run(&names.netns("cli"))?;
        Ok(Self { server, client, _cluster: cluster })
    }
}

impl Topology for OverlayPair {
    fn kind(&self) -> Kind {
        Kind::Overlay
    }
    fn server(&self) -> &Endpoint {
        &self.server
    }
    fn client(&self) -> &Endpoint {
        &self.client
    }
}
