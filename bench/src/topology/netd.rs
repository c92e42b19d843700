//! netd: two containers on one netd network, driven through netd's CLI contract (DESIGN §3).
//!
//! Like the end-to-end tests, the daemon runs inside a "host" netns the bench creates, with a
//! veth uplink to an "outside" netns (198.51.100.2 host / .1 outside), its own state, run
//! and bpffs directories, so it never touches the root netns. The daemon gets that uplink as
//! `--uplink`: the "container → outside" rows go from the client container to a server in the
//! outside netns, masqueraded to 198.51.100.2 by netd's eBPF datapath (when it can: checked
//! once at set-up, else those rows are unavailable with the reason).

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
    PublishedPort, Target, Topology, Unsupported, OUTSIDE_IP,
};
use crate::sys::{self, ChildGuard, Netns};

const HOST_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// `-p HOST_PORT:CONTAINER_PORT` on the server container (same ports as the docker0 topology).
const HOST_PORT: u16 = 17000;
const CONTAINER_PORT: u16 = 7000;

/// Where the netd binary is: $NETD_BIN, else beside this binary (the same cargo build:
/// target/release/netd next to target/release/netd-bench).
pub fn netd_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("NETD_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe().context("locating netd-bench")?.with_file_name("netd"),
    };
    if !path.exists() {
        bail!("netd binary not found at {} (build it: cargo build --release -p netd, or set NETD_BIN)", path.display());
    }
    Ok(path)
}

/// A netd daemon of the bench's own, in a netns the bench made, with its state, run and bpffs
/// directories and its Docker plugin socket under a directory of the run.
pub(super) struct Daemon {
    bin: PathBuf,
    socket: PathBuf,
    bpffs: PathBuf,
    /// Never the machine's /run/docker/plugins/netd.sock: a dockerd of the bench's own sees
    /// this one's directory as its /run/docker/plugins (docker-netd topology).
    pub(super) plugin_socket: PathBuf,
    process: Option<ChildGuard>,
    log: PathBuf,
}

impl Daemon {
    /// Starts netd in `host` with `uplink` as its `--uplink`, its directories under `dir`, and
    /// waits until its API answers.
    /// Its bpffs is `/sys/fs/bpf/<bpffs_name>` (a name carrying the run's tag).
    pub(super) fn start(host: &Netns, dir: &Path, bpffs_name: &str, uplink: &str) -> Result<Self> {
        Self::start_with(host, dir, bpffs_name, uplink, &[])
    }

    /// [`Self::start`] with more `netd daemon` flags (`--cluster-store …`).
    pub(super) fn start_with(
        host: &Netns,
        dir: &Path,
        bpffs_name: &str,
        uplink: &str,
        extra: &[String],
    ) -> Result<Self> {
        let bin = netd_binary()?;
        let (state, run) = (dir.join("state"), dir.join("run"));
        std::fs::create_dir_all(&state)?;
        std::fs::create_dir_all(&run)?;
        let log = dir.join("netd.log");
        let mut daemon = Daemon {
            bin: bin.clone(),
            socket: run.join("netd.sock"),
            bpffs: PathBuf::from("/sys/fs/bpf").join(bpffs_name),
            plugin_socket: dir.join("docker-plugins/netd.sock"),
            process: None,
            log: log.clone(),
        };
        let logf = std::fs::File::create(&log)?;
        let mut cmd = sys::netns_command(&host.path(), None, &bin);
        cmd.arg("--socket")
            .arg(&daemon.socket)
            .arg("daemon")
            .arg("--state-dir")
            .arg(&state)
            .arg("--run-dir")
            .arg(&run)
            .arg("--bpffs")
            .arg(&daemon.bpffs)
            .arg("--docker-plugin-socket")
            .arg(&daemon.plugin_socket)
            .arg("--uplink")
            .arg(uplink)
            .args(extra)
            .stdout(Stdio::from(logf.try_clone()?))
            .stderr(Stdio::from(logf));
        daemon.process = Some(ChildGuard::spawn(&mut cmd, "netd daemon", Duration::from_secs(10))?);
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let res = sys::wait_until(Duration::from_secs(30), "netd daemon", || {
            if let Some(status) = self.process.as_mut().unwrap().try_wait()? {
                bail!("netd daemon exited ({status})");
            }
            Ok(self.socket.exists() && sys::run(self.cli().args(["network", "ls", "-q"])).is_ok())
        });
        res.with_context(|| format!("daemon log: {}", self.log_tail()))
    }

    /// The daemon's PID, for its RSS.
    pub(super) fn pid(&self) -> Result<u32> {
        Ok(self.process.as_ref().context("netd daemon not running")?.pid())
    }

    pub(super) fn cli(&self) -> Command {
        let mut c = sys::command(&self.bin);
        c.arg("--socket").arg(&self.socket);
        c
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            sys::run_quiet(self.cli().args(["system", "reset"]));
            p.stop();
        }
        // The daemon may have mounted a bpffs here; pins under it go with it.
        sys::remove_tree(&self.bpffs);
    }
}

pub struct NetdNetwork {
    server: Endpoint,
    client: Endpoint,
    networks: Vec<String>,
    containers: Vec<String>,
    /// The server's published port, or why publishing failed.
    published: Result<PublishedPort, String>,
    /// The client container's way out through the uplink, or why there is none.
    egress: Result<Egress, String>,
    /// (network, container) for the attach probe, or why they could not be made.
    attach: Result<(String, String), String>,
    /// Whether this netd's `run` has `-p`, else why not.
    can_publish: Result<(), String>,
    tag: String,
    version: String,
    // Drop order: containers and network (Drop::drop), then the daemon, then the dirs and netns.
    daemon: Option<Daemon>,
    dir: PathBuf,
    _outside: Netns,
    _host: Netns,
}

impl NetdNetwork {
    pub fn setup(names: &Names) -> Result<Self> {
        let host = Netns::create(&names.netns("host"))?;
        let outside = Netns::create(&names.netns("out"))?;
        let (h_if, o_if) = (names.ifname("uh"), names.ifname("uo"));
        connect_uplink(&host, &outside, &h_if, &o_if)?;
        host.ip(&["route", "add", "default", "via", &OUTSIDE_IP.to_string()])?;

        let dir = tempfile::Builder::new().prefix(&format!("{}-netd-", names.tag)).tempdir()?.keep();
        let run = dir.join("run");
        let daemon = match Daemon::start(&host, &dir, &names.tag, &h_if) {
            Ok(d) => d,
            Err(e) => {
                sys::remove_tree(&dir);
                return Err(e);
            }
        };
        let bin = daemon.bin.clone();
        let version = sys::run(sys::command(&bin).arg("--version")).unwrap_or_default().trim().to_string();
        let mut t = Self {
            server: Endpoint { netns: PathBuf::new(), ip: Ipv4Addr::UNSPECIFIED },
            client: Endpoint { netns: PathBuf::new(), ip: Ipv4Addr::UNSPECIFIED },
            networks: Vec::new(),
            containers: Vec::new(),
            published: Err("not set up".into()),
            egress: Err("not set up".into()),
            attach: Err("not set up".into()),
            can_publish: Err("not set up".into()),
            tag: names.tag.clone(),
            version,
            daemon: Some(daemon),
            dir,
            _outside: outside,
            _host: host,
        };
        let network = names.netns("net");
        sys::run(t.daemon().cli().args(["network", "create", &network])).context("netd network create")?;
        t.networks.push(network.clone());
        let server = names.netns("srv");
        let publish = format!("{HOST_PORT}:{CONTAINER_PORT}");
        let can_publish =
            sys::run(t.daemon().cli().args(["run", "--help"])).map(|help| help.contains("--publish")).unwrap_or(false);
        t.can_publish = if can_publish { Ok(()) } else { Err("this netd's `run` has no -p/--publish yet".into()) };
        t.server = if !can_publish {
            t.published = Err("this netd's `run` has no -p/--publish yet".into());
            t.start_container(&server, &network, &run, &[])?
        } else {
            match t.start_container(&server, &network, &run, &["-p", &publish]) {
                Ok(ep) => {
                    t.published = t.check_published(&server).map(|()| PublishedPort {
                        container_port: CONTAINER_PORT,
                        from_outside: Target {
                            client_netns: t._outside.path(),
                            addr: SocketAddr::from((HOST_IP, HOST_PORT)),
                        },
                        from_host: Target {
                            client_netns: t._host.path(),
                            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, HOST_PORT)),
                        },
                    });
                    ep
                }
                Err(e) => {
                    // The container-to-container rows do not need the port: go on without it.
                    t.published = Err(format!("netd run -p {publish}: {}", one_line(&format!("{e:#}"))));
                    sys::run_quiet(t.daemon().cli().args(["rm", "-f", &server]));
                    t.containers.retain(|c| c != &server);
                    t.start_container(&server, &network, &run, &[])?
                }
            }
        };
        t.client = t.start_container(&names.netns("cli"), &network, &run, &[])?;
        t.egress = checked_egress(t.client.netns.clone(), &t._outside);
        // A spare container and a spare network for the attach probe.
        let (att_net, att_ctr) = (names.netns("attnet"), names.netns("att"));
        t.attach = match sys::run(t.daemon().cli().args(["network", "create", &att_net])) {
            Err(e) => Err(format!("netd network create: {}", one_line(&format!("{e:#}")))),
            Ok(_) => {
                t.networks.push(att_net.clone());
                t.start_container(&att_ctr, &network, &run, &[])
                    .map(|_| (att_net, att_ctr))
                    .map_err(|e| one_line(&format!("{e:#}")))
            }
        };
        Ok(t)
    }

    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().expect("daemon present until drop")
    }

    /// `netd port NAME` must list the mapping (`7000/tcp -> 0.0.0.0:17000`).
    fn check_published(&self, name: &str) -> Result<(), String> {
        let out =
            sys::run(self.daemon().cli().args(["port", name])).map_err(|e| one_line(&format!("netd port: {e:#}")))?;
        if out.lines().any(|l| {
            l.starts_with(&format!("{CONTAINER_PORT}/tcp")) && l.trim_end().ends_with(&format!(":{HOST_PORT}"))
        }) {
            Ok(())
        } else {
            Err(format!("netd port {name} does not list {CONTAINER_PORT}/tcp -> :{HOST_PORT} (got {:?})", out.trim()))
        }
    }

    fn start_container(&mut self, name: &str, network: &str, run_dir: &Path, extra: &[&str]) -> Result<Endpoint> {
        self.containers.push(name.to_string());
        // Options such as `-p` go first, so that a CLI that does not know them fails instead
        // of taking them for the container's command.
        sys::run(self.daemon().cli().arg("run").args(extra).args(["-d", "--name", name, "--network", network]))
            .with_context(|| format!("netd run {name}"))?;
        self.daemon().endpoint_of(name, run_dir)
    }
}

impl Daemon {
    /// Container `name`'s netns (under `run_dir`) and address, from `netd inspect`.
    pub(super) fn endpoint_of(&self, name: &str, run_dir: &Path) -> Result<Endpoint> {
        let out = sys::run(self.cli().args(["inspect", name]))?;
        let json: serde_json::Value = serde_json::from_str(&out).context("netd inspect: not JSON")?;
        let ip = find_ipv4(&json).with_context(|| format!("netd inspect {name}: no IPv4 address in {out}"))?;
        let netns = run_dir.join("netns").join(name);
        if !netns.exists() {
            bail!("netd run {name}: {} does not exist", netns.display());
        }
        Ok(Endpoint { netns, ip })
    }
}

/// What the CLI said (the text after the command line and its exit status), on one line.
fn one_line(s: &str) -> String {
    let said = s.rsplit_once("): ").map(|(_, said)| said).unwrap_or(s);
    said.replace('\n', " ").chars().take(160).collect()
}

/// The container's address from `netd inspect` JSON, whatever its exact shape: Docker's
/// `IPAddress` ("a.b.c.d") or `IPv4Address` ("a.b.c.d/nn"), at any depth.
fn find_ipv4(v: &serde_json::Value) -> Option<Ipv4Addr> {
    match v {
        serde_json::Value::Object(map) => {
            for key in ["IPAddress", "IPv4Address", "ip", "ipv4", "address"] {
                if let Some(ip) =
                    map.get(key).and_then(|s| s.as_str()).and_then(|s| s.split('/').next()).and_then(|s| s.parse().ok())
                {
                    return Some(ip);
                }
            }
            map.values().find_map(find_ipv4)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_ipv4),
        _ => None,
    }
}

impl Drop for NetdNetwork {
    fn drop(&mut self) {
        if let Some(d) = &self.daemon {
            if !self.containers.is_empty() {
                sys::run_quiet(d.cli().args(["rm", "-f"]).args(&self.containers));
            }
            for net in self.networks.iter().rev() {
                sys::run_quiet(d.cli().args(["network", "rm", net]));
            }
        }
        // Stop the daemon (its Drop), then remove the dirs; the netns fields go last.
        drop(self.daemon.take());
        sys::remove_tree(&self.dir);
    }
}

impl Topology for NetdNetwork {
    fn kind(&self) -> Kind {
        Kind::Netd
    }
    fn server(&self) -> &Endpoint {
        &self.server
    }
    fn client(&self) -> &Endpoint {
        &self.client
    }
    fn published_port(&self) -> Result<&PublishedPort, Unsupported> {
        self.published.as_ref().map_err(|why| Unsupported::Unavailable(why.clone()))
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
        // Which source the binary most likely came from (the working tree may differ from HEAD):
        // the checkout the bench runs from.
        let head = crate::checkout::current()
            .and_then(|root| {
                sys::run(sys::command("git").arg("-C").arg(root).args(["rev-parse", "--short", "HEAD"])).ok()
            })
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        BTreeMap::from([
            ("netd_version".to_string(), self.version.clone()),
            ("netd_binary".to_string(), self.daemon().bin.display().to_string()),
            ("workspace_head".to_string(), head),
            ("server_ip".to_string(), self.server.ip.to_string()),
            ("client_ip".to_string(), self.client.ip.to_string()),
        ])
    }
}

impl ControlPlane for NetdNetwork {
    fn attach_once(&self) -> Result<(Duration, Duration)> {
        let (net, ctr) = self.attach.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let t0 = std::time::Instant::now();
        sys::run(self.daemon().cli().args(["network", "connect", net, ctr]))?;
        let connect = t0.elapsed();
        let t0 = std::time::Instant::now();
        sys::run(self.daemon().cli().args(["network", "disconnect", net, ctr]))?;
        Ok((connect, t0.elapsed()))
    }

    fn daemon_rss(&self) -> Result<u64> {
        rss_of(self.daemon().pid()?)
    }

    fn daemon_label(&self) -> &'static str {
        "netd daemon"
    }

    fn can_publish(&self) -> Result<(), Unsupported> {
        self.can_publish.clone().map_err(Unsupported::Unavailable)
    }

    fn run_publishing(&self, ports: u16) -> Result<(Duration, Result<Duration>)> {
        let network = self.networks.first().context("no network")?;
        let name = format!("{}-pub{ports}", self.tag);
        let mut cmd = self.daemon().cli();
        cmd.arg("run");
        if ports > 0 {
            let (a, b) = (publish_base(ports), publish_base(ports) + ports - 1);
            cmd.arg("-p").arg(format!("{a}-{b}:{a}-{b}"));
        }
        cmd.args(["-d", "--name", &name, "--network", network]);
        let t0 = std::time::Instant::now();
        let res = sys::run_timeout(&mut cmd, Duration::from_secs(300));
        let took = t0.elapsed();
        let t0 = std::time::Instant::now();
        let rm = sys::run_cleanup(self.daemon().cli().args(["rm", "-f", &name]), Duration::from_secs(300));
        let rm_took = t0.elapsed();
        res.map(|_| (took, rm.map(|_| rm_took)))
    }

    fn container_name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.tag)
    }

    fn run_command(&self, name: &str, network: Network) -> Result<Command> {
        let network = match network {
            Network::None => "none",
            Network::Topology => self.networks.first().context("no network")?,
        };
        let mut cmd = self.daemon().cli();
        cmd.args(["run", "-d", "--name", name, "--network", network]);
        Ok(cmd)
    }

    fn remove_containers(&self, names: &[String], timeout: Duration) -> Result<()> {
        sys::run_cleanup(self.daemon().cli().args(["rm", "-f"]).args(names), timeout).map(drop)
    }

    fn endpoint_budget(&self) -> Duration {
        // ≈20 ms each on the 2-CPU VM; a tenfold margin.
        Duration::from_millis(250)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ip_in_docker_shapes() {
        let v: serde_json::Value =
            serde_json::from_str(r#"[{"Name":"a","NetworkSettings":{"Networks":{"n":{"IPAddress":"172.18.0.2"}}}}]"#)
                .unwrap();
        assert_eq!(find_ipv4(&v), Some(Ipv4Addr::new(172, 18, 0, 2)));
        let v: serde_json::Value = serde_json::from_str(r#"{"Networks":[{"IPv4Address":"172.18.0.3/16"}]}"#).unwrap();
        assert_eq!(find_ipv4(&v), Some(Ipv4Addr::new(172, 18, 0, 3)));
        assert_eq!(find_ipv4(&serde_json::json!({"IPAddress": ""})), None);
    }
}
