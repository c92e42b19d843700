//! docker0: two containers on Docker's default bridge, with a dockerd of our own.
//!
//! The bench starts its own dockerd (Debian's docker.io) with its own --data-root,
//! --exec-root, socket and an empty config file, inside a network namespace of its own
//! ("the Docker host"). docker0, Docker's iptables rules, its ip_forward and
//! bridge-nf-call-iptables settings (br_netfilter is per netns) all live in that namespace,
//! so nothing in the root netns is touched and deleting the namespace takes them all away;
//! and the namespace has no route off the machine at all. The datapath measured is Docker's
//! own: veth → docker0 bridge → br_netfilter/iptables FORWARD → veth. Its veth uplink to an
//! "outside" netns (198.51.100.2 / .1) carries the published-port clients and the
//! "container → outside" rows: the client container to a server there, through Docker's
//! iptables MASQUERADE and nf_conntrack in that namespace (checked once at set-up).

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::{
    checked_egress, connect_uplink, publish_base, rss_of, ControlPlane, Egress, Endpoint, Kind, Names, Network,
    PublishedPort, Target, Topology, Unsupported, HOST_UPLINK_IP,
};
use crate::sys::{self, ChildGuard, Netns};

/// `-p HOST_PORT:CONTAINER_PORT` on the server container.
const HOST_PORT: u16 = 17000;
const CONTAINER_PORT: u16 = 7000;

/// Which network driver the containers of a [`DockerBridge`] use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Docker's default bridge, docker0 (Docker's own datapath).
    Docker0,
    /// A `docker network create -d netd --ipam-driver netd` network: netd's remote driver,
    /// netd's eBPF datapath, the very same Docker containers.
    Netd,
}

/// With [`Driver::Netd`], dockerd runs in a mount namespace of its own whose `/run` is a tmpfs
/// holding only `/run/docker/plugins` = netd's plugin socket directory (`$0`), so that it finds
/// that netd and nothing of the machine's `/run` is touched.
const PLUGIN_DIR_SCRIPT: &str =
    "mount -t tmpfs nb-plugins /run && mkdir -p /run/docker/plugins && mount --bind \"$0\" /run/docker/plugins && exec \"$@\"";

/// docker0's address when netd runs beside dockerd: away from netd's own default bridge
/// (172.17.0.0/16), which Docker does not see.
const DOCKER0_BIP_BESIDE_NETD: &str = "172.31.250.1/24";

/// A dockerd process of our own; stopping it (by its PID) and removing its directories on drop.
pub struct Dockerd {
    cli: PathBuf,
    socket: PathBuf,
    exec_root: PathBuf,
    data_root: PathBuf,
    run_dir: PathBuf,
    process: Option<ChildGuard>,
    pub version: String,
    /// The netd daemon whose plugin this dockerd uses ([`Driver::Netd`]); stopped after dockerd.
    netd: Option<super::netd::Daemon>,
    // Dropped after the daemon has stopped (fields drop in order, after Drop::drop).
    netns: Netns,
    outside: Netns,
    _dir: TempDirPath,
}

/// A temp directory removed on drop only after everything mounted under it is unmounted.
struct TempDirPath(PathBuf);

impl Drop for TempDirPath {
    fn drop(&mut self) {
        sys::remove_tree(&self.0);
    }
}

impl Dockerd {
    /// A dockerd with Docker's defaults (docker0).
    pub fn start(names: &Names) -> Result<Self> {
        Self::start_for(names, Driver::Docker0)
    }

    /// A dockerd for `driver`: with [`Driver::Netd`], a netd daemon first, in the same netns
    /// with the same uplink, whose plugin socket dockerd finds at /run/docker/plugins.
    pub fn start_for(names: &Names, driver: Driver) -> Result<Self> {
        let dockerd = netd_cmd::which("dockerd").context("dockerd not found (package docker.io)")?;
        // Debian's CLI from the same package, matching the daemon's API version.
        let cli = ["/usr/bin/docker"]
            .map(PathBuf::from)
            .into_iter()
            .find(|p| p.exists())
            .or_else(|| netd_cmd::which("docker"))
            .context("docker CLI not found (package docker.io)")?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-docker-", names.tag))
            .tempdir()
            .context("creating dockerd's directory")?
            .keep();
        let dir = TempDirPath(dir);
        // The socket path is the documented one, made unique per run.
        let run_dir = match driver {
            Driver::Docker0 => PathBuf::from("/run/netd-bench").join(&names.tag),
            // dockerd's /run is private (below): its socket lives in the run's directory.
            Driver::Netd => dir.0.join("run"),
        };
        std::fs::create_dir_all(&run_dir)?;
        let netns = Netns::create(&names.netns("docker"))?;
        // Belt and braces: the namespace has no uplink at all; a blackhole for Docker's
        // default pools makes it explicit that no container traffic is routed anywhere else.
        netns.ip(&["route", "add", "blackhole", "172.16.0.0/12"])?;
        // An uplink to an "outside" netns, for clients of published ports and servers of the
        // "container → outside" rows (its 198.51.100.0/24 is the only route out of here).
        let outside = Netns::create(&names.netns("dout"))?;
        let (h_if, o_if) = (names.ifname("dh"), names.ifname("do"));
        connect_uplink(&netns, &outside, &h_if, &o_if)?;

        let netd = match driver {
            Driver::Docker0 => None,
            Driver::Netd => Some(super::netd::Daemon::start(&netns, &dir.0.join("netd"), &names.netns("dn"), &h_if)?),
        };

        let exec_root = dir.0.join("exec");
        let data_root = dir.0.join("data");
        let config = dir.0.join("daemon.json");
        std::fs::write(&config, "{}\n")?;
        let log = std::fs::File::create(dir.0.join("dockerd.log"))?;
        let socket = run_dir.join("docker.sock");
        let mut cmd = match &netd {
            None => sys::netns_command(&netns.path(), None, &dockerd),
            Some(netd) => {
                let plugins = netd.plugin_socket.parent().context("plugin socket path")?;
                let mut cmd = sys::netns_command(&netns.path(), None, "unshare");
                cmd.args(["--mount", "--propagation", "private", "sh", "-c", PLUGIN_DIR_SCRIPT])
                    .arg(plugins)
                    .arg(&dockerd)
                    .args(["--bip", DOCKER0_BIP_BESIDE_NETD]);
                cmd
            }
        };
        cmd.arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(exec_root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            // Docker's defaults, spelled out: iptables rules on (docker0 NAT/forwarding as a
            // user has it), userland proxy on. cgroupfs driver: there is no systemd here.
            .args(["--iptables=true", "--userland-proxy=true", "--exec-opt", "native.cgroupdriver=cgroupfs"])
            .args(["--log-level", "warn"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let process = ChildGuard::spawn(&mut cmd, "dockerd", Duration::from_secs(20))?;
        let mut d = Self {
            cli,
            socket,
            exec_root,
            data_root,
            run_dir,
            process: Some(process),
            version: String::new(),
            netd,
            netns,
            outside,
            _dir: dir,
        };
        let log_path = d._dir.0.join("dockerd.log");
        sys::wait_until(Duration::from_secs(60), "dockerd", || {
            if let Some(p) = d.process.as_mut() {
                if let Some(status) = p.try_wait()? {
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(5).collect();
                    bail!("dockerd exited ({status}): {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | "));
                }
            }
            Ok(d.socket.exists() && sys::run(d.cli().args(["version", "--format", "{{.Server.Version}}"])).is_ok())
        })?;
        d.version = sys::run(d.cli().args(["version", "--format", "{{.Server.Version}}"]))?.trim().to_string();
        Ok(d)
    }

    /// `docker -H unix://SOCKET ...`
    pub fn cli(&self) -> Command {
        let mut c = sys::command(&self.cli);
        c.arg("-H").arg(format!("unix://{}", self.socket.display()));
        c
    }

    fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        process.stop();
        // dockerd stops its containerd; if it could not (killed), stop that child by its PID
        // (only if its command line names our exec-root, i.e. it is the one we caused).
        let pidfile = self.exec_root.join("containerd/containerd.pid");
        // The pidfd is opened before the command line is read, so a reused pid is never
        // signalled.
        let ours = |pid: u32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&*self.exec_root.to_string_lossy()))
                .unwrap_or(false)
        };
        if let Some(containerd) = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .and_then(|pid| netd_cmd::Process::open_checked(pid, ours))
        {
            if containerd.is_alive() {
                let _ = containerd.signal(libc::SIGTERM);
                containerd.wait_exit(Duration::from_secs(10));
            }
        }
        sys::unmount_all_under(&self.exec_root);
        sys::unmount_all_under(&self.data_root);
        // netd last: dockerd's clean-up of its networks and endpoints called its plugin.
        drop(self.netd.take());
        let _ = std::fs::remove_dir_all(&self.run_dir);
        if self.run_dir.starts_with("/run/netd-bench") {
            let _ = std::fs::remove_dir(self.run_dir.parent().unwrap_or(Path::new("/nonexistent")));
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Builds the tiny rootfs (busybox + iperf3 + this binary + their shared libraries) and
/// `docker import`s it as `tag`, with `changes` (Dockerfile lines such as `CMD ["sh"]`).
pub fn import_image(d: &Dockerd, tag: &str, changes: &[&str]) -> Result<()> {
    let root = tempfile::Builder::new().prefix("nb-rootfs-").tempdir()?;
    let r = root.path();
    for dir in ["bin", "tmp", "etc", "proc", "sys", "dev"] {
        std::fs::create_dir_all(r.join(dir))?;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| p.exists())
        .context("busybox not found (package busybox-static)")?;
    let iperf3 = netd_cmd::which("iperf3").context("iperf3 not found")?;
    let me = std::env::current_exe()?;
    let bins = [(busybox, "busybox"), (iperf3, "iperf3"), (me, "netd-bench")];
    for (src, name) in &bins {
        std::fs::copy(src, r.join("bin").join(name)).with_context(|| format!("copying {}", src.display()))?;
        copy_shared_libs(src, r)?;
    }
    for applet in ["sh", "sleep", "ip", "cat", "ls", "ps", "ifconfig", "nslookup", "ping", "hostname", "route"] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(applet))?;
    }
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;

    let mut tar = sys::command("tar")
        .arg("-C")
        .arg(r)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting tar")?;
    let tar_out = tar.stdout.take().context("tar stdout")?;
    // Spawned here rather than through `sys::run`, which gives every command /dev/null as
    // stdin: `docker import -` would then make an empty image.
    let import = d
        .cli()
        .arg("import")
        .args(changes.iter().flat_map(|c| ["-c", c]))
        .args(["-", tag])
        .stdin(Stdio::from(tar_out))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting docker import");
    let import = import.and_then(|child| sys::wait_output(child, Duration::from_secs(120), "docker import"));
    let tar_status = tar.wait().context("waiting for tar")?;
    let import = import?;
    if !import.status.success() {
        bail!("docker import failed ({}): {}", import.status, String::from_utf8_lossy(&import.stderr).trim());
    }
    if !tar_status.success() {
        bail!("tar -c of the image's root failed ({tar_status})");
    }
    Ok(())
}

/// Copies the shared libraries `ldd` lists for `bin` into the same paths under `root`.
fn copy_shared_libs(bin: &Path, root: &Path) -> Result<()> {
    let out = sys::command("ldd").arg(bin).stderr(Stdio::null()).output()?;
    if !out.status.success() {
        return Ok(()); // "not a dynamic executable"
    }
    for lib in String::from_utf8_lossy(&out.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
        let dest = root.join(lib.trim_start_matches('/'));
        if dest.exists() {
            continue;
        }
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::copy(lib, &dest).with_context(|| format!("copying {lib}"))?;
    }
    Ok(())
}

/// Two Docker containers on docker0 ([`Driver::Docker0`]) or on a netd network
/// ([`Driver::Netd`]): the same dockerd, image and commands either way.
pub struct DockerBridge {
    driver: Driver,
    /// The containers' network: `bridge` (docker0) or the netd network's name.
    network: String,
    server: Endpoint,
    client: Endpoint,
    published: Option<PublishedPort>,
    /// The client container's way out (MASQUERADE in dockerd's netns), or why there is none.
    egress: Result<Egress, String>,
    /// (network, container) for the attach probe, or why they could not be made.
    attach: Result<(String, String), String>,
    networks: Vec<String>,
    containers: Vec<String>,
    image: Option<String>,
    tag: String,
    dockerd: Dockerd, // dropped (stopped) after Drop::drop removed containers and image
}

impl DockerBridge {
    pub fn setup(names: &Names, driver: Driver) -> Result<Self> {
        // Both topologies may run in one bench run: their names (netns, interfaces,
        // containers, image) must differ.
        let names = &match driver {
            Driver::Docker0 => names.clone(),
            Driver::Netd => names.variant("n"),
        };
        let dockerd = Dockerd::start_for(names, driver)?;
        let mut t = Self {
            driver,
            network: "bridge".into(),
            server: Endpoint { netns: PathBuf::new(), ip: Ipv4Addr::UNSPECIFIED },
            client: Endpoint { netns: PathBuf::new(), ip: Ipv4Addr::UNSPECIFIED },
            published: None,
            egress: Err("not set up".into()),
            attach: Err("not set up".into()),
            networks: Vec::new(),
            containers: Vec::new(),
            image: None,
            tag: names.tag.clone(),
            dockerd,
        };
        let image = format!("{}-image:latest", names.tag);
        import_image(&t.dockerd, &image, &[])?;
        t.image = Some(image.clone());
        if driver == Driver::Netd {
            t.network = names.netns("dnet");
            t.create_network(&t.network.clone())?;
        }
        let publish = format!("{HOST_PORT}:{CONTAINER_PORT}");
        t.server = t.start_container(&names.netns("srv"), &image, &["-p", &publish])?;
        t.client = t.start_container(&names.netns("cli"), &image, &[])?;
        t.egress = checked_egress(t.client.netns.clone(), &t.dockerd.outside);
        // A spare container and a spare (user-defined bridge) network for the attach probe.
        let (att_net, att_ctr) = (names.netns("attnet"), names.netns("att"));
        t.create_network(&att_net)?;
        t.start_container(&att_ctr, &image, &[])?;
        t.attach = Ok((att_net, att_ctr));
        t.published = Some(PublishedPort {
            container_port: CONTAINER_PORT,
            from_outside: Target {
                client_netns: t.dockerd.outside.path(),
                addr: SocketAddr::from((HOST_UPLINK_IP, HOST_PORT)),
            },
            from_host: Target {
                client_netns: t.dockerd.netns.path(),
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, HOST_PORT)),
            },
        });
        Ok(t)
    }

    /// A user-defined network: Docker's bridge driver, or netd's driver and IPAM.
    fn create_network(&mut self, name: &str) -> Result<()> {
        let mut cmd = self.dockerd.cli();
        cmd.args(["network", "create"]);
        if self.driver == Driver::Netd {
            cmd.args(["-d", "netd", "--ipam-driver", "netd"]);
        }
        sys::run(cmd.arg(name)).with_context(|| format!("docker network create {name}"))?;
        self.networks.push(name.to_string());
        Ok(())
    }

    fn start_container(&mut self, name: &str, image: &str, extra: &[&str]) -> Result<Endpoint> {
        sys::run(
            self.dockerd.cli().args(["run", "-d", "--network", &self.network, "--name", name]).args(extra).args([
                image,
                "/bin/sleep",
                "86400",
            ]),
        )
        .with_context(|| format!("docker run {name}"))?;
        self.containers.push(name.to_string());
        let format =
            format!("{{{{.State.Pid}}}} {{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.network);
        let out = sys::run(self.dockerd.cli().args(["inspect", "-f", &format, name]))?;
        let mut f = out.split_whitespace();
        let (Some(pid), Some(ip)) = (f.next(), f.next()) else {
            bail!("docker inspect {name}: unexpected output {out:?}");
        };
        let pid: u32 = pid.parse().context("container pid")?;
        if pid == 0 {
            bail!("container {name} is not running");
        }
        Ok(Endpoint { netns: PathBuf::from(format!("/proc/{pid}/ns/net")), ip: ip.parse().context("container ip")? })
    }
}

impl Drop for DockerBridge {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            sys::run_quiet(self.dockerd.cli().args(["rm", "-f"]).args(&self.containers));
        }
        for net in self.networks.iter().rev() {
            sys::run_quiet(self.dockerd.cli().args(["network", "rm", net]));
        }
        if let Some(image) = &self.image {
            sys::run_quiet(self.dockerd.cli().args(["rmi", "-f", image]));
        }
    }
}

impl Topology for DockerBridge {
    fn kind(&self) -> Kind {
        match self.driver {
            Driver::Docker0 => Kind::Docker0,
            Driver::Netd => Kind::DockerNetd,
        }
    }
    fn server(&self) -> &Endpoint {
        &self.server
    }
    fn client(&self) -> &Endpoint {
        &self.client
    }
    fn published_port(&self) -> Result<&PublishedPort, Unsupported> {
        self.published.as_ref().ok_or(Unsupported::NotApplicable)
    }
    fn egress(&self) -> Result<&Egress, Unsupported> {
        self.egress.as_ref().map_err(|why| Unsupported::Unavailable(why.clone()))
    }
    fn control_plane(&self) -> Result<&dyn ControlPlane, Unsupported> {
        match &self.attach {
            Ok(_) => Ok(self),
            Err(why) => Err(Unsupported::Unavailable(why.clone())),
        }
    }
    fn info(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("docker_version".to_string(), self.dockerd.version.clone()),
            ("dockerd_netns".to_string(), self.dockerd.netns.name.clone()),
            ("network".to_string(), self.network.clone()),
            ("server_ip".to_string(), self.server.ip.to_string()),
            ("client_ip".to_string(), self.client.ip.to_string()),
        ])
    }
}

impl ControlPlane for DockerBridge {
    fn attach_once(&self) -> Result<(Duration, Duration)> {
        let (net, ctr) = self.attach.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let t0 = std::time::Instant::now();
        sys::run(self.dockerd.cli().args(["network", "connect", net, ctr]))?;
        let connect = t0.elapsed();
        let t0 = std::time::Instant::now();
        sys::run(self.dockerd.cli().args(["network", "disconnect", net, ctr]))?;
        Ok((connect, t0.elapsed()))
    }

    fn daemon_rss(&self) -> Result<u64> {
        let dockerd = self.dockerd.process.as_ref().context("dockerd not running")?.pid();
        let containerd = std::fs::read_to_string(self.dockerd.exec_root.join("containerd/containerd.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let netd = self.dockerd.netd.as_ref().map(|d| d.pid().and_then(rss_of)).transpose()?;
        Ok(rss_of(dockerd)? + containerd.map(rss_of).transpose()?.unwrap_or(0) + netd.unwrap_or(0))
    }

    fn daemon_label(&self) -> &'static str {
        match self.driver {
            Driver::Docker0 => "dockerd + containerd",
            Driver::Netd => "dockerd + containerd + netd",
        }
    }

    fn can_publish(&self) -> Result<(), Unsupported> {
        Ok(())
    }

    fn run_publishing(&self, ports: u16) -> Result<(Duration, Result<Duration>)> {
        let image = self.image.as_deref().context("no image")?;
        let name = format!("{}-pub{ports}", self.tag);
        let mut cmd = self.dockerd.cli();
        cmd.args(["run", "-d", "--network", &self.network, "--name", &name]);
        if ports > 0 {
            let (a, b) = (publish_base(ports), publish_base(ports) + ports - 1);
            cmd.arg("-p").arg(format!("{a}-{b}:{a}-{b}"));
        }
        cmd.args([image, "/bin/sleep", "86400"]);
        let t0 = std::time::Instant::now();
        let res = sys::run_timeout(&mut cmd, Duration::from_secs(300));
        let took = t0.elapsed();
        let t0 = std::time::Instant::now();
        let rm = sys::run_cleanup(self.dockerd.cli().args(["rm", "-f", &name]), Duration::from_secs(300));
        let rm_took = t0.elapsed();
        res.map(|_| (took, rm.map(|_| rm_took)))
    }

    fn container_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.tag)
    }

    fn run_command(&self, name: &str, network: Network) -> Result<Command> {
        let image = self.image.as_deref().context("no image")?;
        let network = match network {
            Network::None => "none",
            Network::Topology => &self.network,
        };
        let mut cmd = self.dockerd.cli();
        cmd.args(["run", "-d", "--network", network, "--name", name, image, "/bin/sleep", "86400"]);
        Ok(cmd)
    }

    fn remove_containers(&self, names: &[String], timeout: Duration) -> Result<()> {
        sys::run_cleanup(self.dockerd.cli().args(["rm", "-f"]).args(names), timeout).map(drop)
    }

    fn endpoint_budget(&self) -> Duration {
        // ≈0.3–0.5 s each on the 2-CPU VM (one containerd-shim and one process per container).
        Duration::from_secs(2)
    }

    fn scale_is_opt_in(&self) -> bool {
        true
    }
}
