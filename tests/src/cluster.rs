//! Several [`TestHost`]s in cluster mode: each gets a second link `eth1` on an underlay
//! (192.0.2.0/24, a bridge in a netns of its own) where etcd (Debian's etcd-server) runs at
//! 192.0.2.1, started and ended by this fixture. Each daemon runs with `--cluster-store
//! etcd://192.0.2.1:2379 --advertise-addr 192.0.2.(11+i)`. Nothing leaves these namespaces.
use std::{
    fs::File,
    path::PathBuf,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::{sh, DaemonOptions, TestHost};

pub const ETCD: &str = "/usr/bin/etcd";
pub const ETCD_ADDR: &str = "192.0.2.1";

pub struct Cluster {
    /// Dropped first: their daemons reset while etcd still answers.
    pub hosts: Vec<TestHost>,
    pub underlay_ns: String,
    etcd: Option<Child>,
    etcd_dir: PathBuf,
}

/// The underlay address of host `i`.
pub fn host_addr(i: usize) -> String {
    format!("192.0.2.{}", 11 + i)
}

impl Cluster {
    /// `n` hosts whose daemons keep their endpoints announced `lease_ttl` seconds after they
    /// stop renewing them. Returns once every daemon's session with etcd is up.
    pub fn start(n: usize, lease_ttl: u32) -> Self {
        let tag = crate::unique_tag();
        let underlay_ns = format!("nt-{tag}-ul");
        sh(&["ip", "netns", "add", &underlay_ns]);
        let mut cluster = Cluster {
            hosts: vec![],
            underlay_ns: underlay_ns.clone(),
            etcd: None,
            etcd_dir: std::env::temp_dir().join(format!("netd-test-{tag}-etcd")),
        };
        sh(&["ip", "-n", &underlay_ns, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &underlay_ns, "link", "add", "br0", "type", "bridge"]);
        sh(&["ip", "-n", &underlay_ns, "addr", "add", &format!("{ETCD_ADDR}/24"), "dev", "br0"]);
        sh(&["ip", "-n", &underlay_ns, "link", "set", "br0", "up"]);
        cluster.start_etcd();
        for i in 0..n {
            let args: Vec<&'static str> = [
                "--cluster-store".to_string(),
                format!("etcd://{ETCD_ADDR}:2379"),
                "--advertise-addr".to_string(),
                host_addr(i),
                "--cluster-lease-ttl".to_string(),
                lease_ttl.to_string(),
            ]
            .into_iter()
            .map(|a| &*Box::leak(a.into_boxed_str()))
            .collect();
            let options = DaemonOptions { daemon_args: Box::leak(args.into_boxed_slice()), ..Default::default() };
            let mut host = TestHost::prepare(options);
            let (hv, uv) = (format!("c{}h", host.tag), format!("c{}u", host.tag));
            sh(&["ip", "link", "add", &hv, "type", "veth", "peer", "name", &uv]);
            sh(&["ip", "link", "set", &uv, "netns", &underlay_ns]);
            sh(&["ip", "-n", &underlay_ns, "link", "set", &uv, "master", "br0", "up"]);
            sh(&["ip", "link", "set", &hv, "netns", &host.host_ns, "name", "eth1"]);
            sh(&["ip", "-n", &host.host_ns, "addr", "add", &format!("{}/24", host_addr(i)), "dev", "eth1"]);
            sh(&["ip", "-n", &host.host_ns, "link", "set", "eth1", "up"]);
            host.start_daemon();
            cluster.hosts.push(host);
        }
        for i in 0..n {
            cluster.wait_session(i);
        }
        cluster
    }

    /// Starts etcd (again: its data directory is kept, as a restarted member's).
    pub fn start_etcd(&mut self) {
        assert!(self.etcd.is_none(), "etcd already running");
        std::fs::create_dir_all(&self.etcd_dir).unwrap();
        let log = File::options().create(true).append(true).open(self.etcd_dir.join("etcd.log")).unwrap();
        let client = format!("http://{ETCD_ADDR}:2379");
        let child = netd_cmd::in_netns(&PathBuf::from("/run/netns").join(&self.underlay_ns), ETCD)
            .arg("--data-dir")
            .arg(self.etcd_dir.join("data"))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start etcd (Debian's etcd-server; cargo xtask setup installs it)");
        self.etcd = Some(child);
    }

    /// Ends etcd (SIGTERM, as a service manager would) and waits for it.
    pub fn stop_etcd(&mut self) {
        if let Some(mut child) = self.etcd.take() {
            let _ = netd_cmd::signal_child(&mut child, libc::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Waits (bounded) until host `i`'s daemon has a session with etcd: an overlay network
    /// on the underlay's own subnet gets past the store to be refused for its subnet (a
    /// route of this host, or of another member).
    pub fn wait_session(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = ["network", "create", "-d", "overlay", "--subnet", "192.0.2.0/24", "nt-cluster-probe"];
        loop {
            let out = self.hosts[i].netd(&probe);
            assert!(!out.status.success(), "an overlay network took the underlay's subnet");
            let text = String::from_utf8_lossy(&out.stderr).to_string();
            if !text.contains("unreachable") {
                assert!(text.contains("overlap"), "{text}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "host {i}: no session with etcd: {text}\n{}\netcd:\n{}",
                self.hosts[i].daemon_log(),
                std::fs::read_to_string(self.etcd_dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.hosts.clear();
        self.stop_etcd();
        let _ =
            netd_cmd::output(std::process::Command::new("ip").args(["netns", "del", &self.underlay_ns]), crate::LIMIT);
        let _ = std::fs::remove_dir_all(&self.etcd_dir);
    }
}
