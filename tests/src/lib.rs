//! End-to-end test harness (DESIGN §6). A [`TestHost`] is a throwaway "host" netns with an
//! uplink veth to an "outside" netns, and a real `netd daemon` running inside "host" with its
//! own state, run and bpffs directories. Everything is torn down in `Drop`, even on panic.
//! Traffic only ever flows between these namespaces. Commands run through `netd_cmd`, each
//! bounded by [`COMMAND_TIMEOUT`]: a hung command fails its test instead of hanging the suite.
use std::{
    fs::File,
    os::fd::AsFd,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use netd_cmd::Limit;
use nix::sched::{setns, CloneFlags};

pub mod agreement;
pub mod cluster;
pub mod dockerd;
pub mod flows;
pub mod footprint;
pub mod packet;
pub mod probe;
pub mod published;
pub mod servers;
pub mod stats;
use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long one command (`ip`, `nsenter`, the netd CLI) may run before it is killed and its
/// test fails. Far above what any of them takes; only a hang reaches it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
const LIMIT: Limit = Limit::new(COMMAND_TIMEOUT);

/// The outside netns' address on the uplink (the host netns has 198.51.100.2 and its default
/// route points here).
pub const OUTSIDE_ADDR: &str = "198.51.100.1";

/// Pinned maps of the endpoints (by IPv4 address) and of their host-side veths (by ifindex),
/// relative to the daemon's bpffs directory.
pub const ENDPOINT_MAP: &str = "maps/NETD_EP_V2";
pub const INTERFACE_MAP: &str = "maps/NETD_IF_V2";
/// Where netd up to issue 14 pinned the tcx links of its endpoint program, one per host-side
/// veth; the endpoint program is now a cls_bpf filter (no pin) and a start removes these.
pub const LEGACY_ENDPOINT_LINKS: &str = "links/netd_ep_ingress";
/// netd's slot for the endpoint program's filter at clsact ingress of a host-side veth
/// (docs/architecture.md): priority and handle.
pub const ENDPOINT_FILTER_PREF: u64 = 78;
pub const ENDPOINT_FILTER_HANDLE: &str = "0x4e";
/// The endpoint program.
pub const ENDPOINT_PROGRAM: &str = "netd_ep_ingress";

/// The netd binary under test: `NETD_BIN` (set by `cargo xtask test`), else what `cargo xtask
/// build` made (target/dist/netd), else the release build.
pub fn netd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("NETD_BIN") {
        return PathBuf::from(p);
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let p = [target.join("dist/netd"), target.join("release/netd")].into_iter().find(|p| p.exists());
    p.expect("netd binary not found: build it (cargo xtask build) or set NETD_BIN")
}

/// The daemon's binary, beside [`netd_bin`] (`netd daemon` runs it).
pub fn daemon_bin() -> PathBuf {
    netd_bin().with_file_name("netd-daemon")
}

/// A short tag unique to this test process and call, for the names a fixture makes.
fn unique_tag() -> String {
    format!("{:x}{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

pub struct TestHost {
    /// Short unique tag used in every name this host creates.
    pub tag: String,
    pub host_ns: String,
    pub outside_ns: String,
    pub dir: PathBuf,
    pub bpffs: PathBuf,
    daemon: Option<Child>,
    options: DaemonOptions,
}

/// How the daemon process is started (every start, restarts included).
#[derive(Clone, Copy, Debug, Default)]
pub struct DaemonOptions {
    /// The umask the daemon starts with (default: the test process's).
    pub umask: Option<libc::mode_t>,
    /// RLIMIT_NOFILE (soft, hard) the daemon starts with (default: the test process's).
    pub nofile: Option<(u64, u64)>,
    /// A second uplink `eth1` (203.0.113.2/24) to a second outside netns
    /// ([`TestHost::second_outside_ns`], 203.0.113.1); the daemon gets both uplinks.
    pub second_uplink: bool,
    /// More `netd daemon` flags (map capacities, …).
    pub daemon_args: &'static [&'static str],
    /// The binary the daemon runs (default: [`netd_bin`]).
    pub binary: Option<&'static Path>,
}

/// The second outside netns' address (see [`DaemonOptions::second_uplink`]).
pub const SECOND_OUTSIDE_ADDR: &str = "203.0.113.1";

impl TestHost {
    /// Builds the namespaces and starts a daemon in "host".
    pub fn start() -> Self {
        Self::start_with(DaemonOptions::default())
    }

    /// [`TestHost::start`] with a daemon started under `options`.
    pub fn start_with(options: DaemonOptions) -> Self {
        let mut host = Self::prepare(options);
        host.start_daemon();
        host
    }

    /// The namespaces of [`TestHost::start_with`], without a daemon yet (the caller adds
    /// links first, then calls [`TestHost::start_daemon`]).
    pub fn prepare(options: DaemonOptions) -> Self {
        let tag = unique_tag();
        let host = Self {
            host_ns: format!("nt-{tag}-host"),
            outside_ns: format!("nt-{tag}-out"),
            dir: std::env::temp_dir().join(format!("netd-test-{tag}")),
            bpffs: PathBuf::from(format!("/sys/fs/bpf/netd-test-{tag}")),
            tag,
            daemon: None,
            options,
        };
        host.build_namespaces();
        host
    }

    fn build_namespaces(&self) {
        let (h, o) = (&self.host_ns, &self.outside_ns);
        let (hv, ov) = (format!("u{}h", self.tag), format!("u{}o", self.tag));
        sh(&["ip", "netns", "add", h]);
        sh(&["ip", "netns", "add", o]);
        sh(&["ip", "link", "add", &hv, "type", "veth", "peer", "name", &ov]);
        sh(&["ip", "link", "set", &hv, "netns", h, "name", "eth0"]);
        sh(&["ip", "link", "set", &ov, "netns", o, "name", "eth0"]);
        let outside = format!("{OUTSIDE_ADDR}/24");
        for (ns, addr) in [(h, "198.51.100.2/24"), (o, outside.as_str())] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"]);
        }
        sh(&["ip", "-n", h, "route", "add", "default", "via", "198.51.100.1"]);
        if self.options.second_uplink {
            let o2 = self.second_outside_ns();
            let (hv, ov) = (format!("w{}h", self.tag), format!("w{}o", self.tag));
            sh(&["ip", "netns", "add", &o2]);
            sh(&["ip", "link", "add", &hv, "type", "veth", "peer", "name", &ov]);
            sh(&["ip", "link", "set", &hv, "netns", h, "name", "eth1"]);
            sh(&["ip", "link", "set", &ov, "netns", &o2, "name", "eth0"]);
            let outside = format!("{SECOND_OUTSIDE_ADDR}/24");
            for (ns, dev, addr) in [(h.as_str(), "eth1", "203.0.113.2/24"), (o2.as_str(), "eth0", outside.as_str())] {
                sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
                sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
                sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            }
        }
    }

    /// The second outside netns (only with [`DaemonOptions::second_uplink`]).
    pub fn second_outside_ns(&self) -> String {
        format!("nt-{}-out2", self.tag)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("run/netd.sock")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The daemon's Docker plugin socket: one per test host, never the machine's
    /// /run/docker/plugins/netd.sock (outside the run dir, which `system reset` removes when
    /// empty). A dockerd for this host sees it as /run/docker/plugins/netd.sock through a bind
    /// mount of its directory.
    pub fn docker_plugin_socket(&self) -> PathBuf {
        self.dir.join("docker-plugins/netd.sock")
    }

    pub fn netns_path(&self, ns: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(ns)
    }

    /// Starts (or restarts) the daemon and waits until its API answers.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with_env(&[]);
        self.wait_for_api();
    }

    /// Starts the daemon with extra environment variables (e.g. `NETD_CRASH_AT`), without
    /// waiting for its API.
    pub fn start_daemon_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "daemon already running");
        std::fs::create_dir_all(&self.dir).unwrap();
        let log = File::options().create(true).append(true).open(self.dir.join("daemon.log")).unwrap();
        let DaemonOptions { umask, nofile, second_uplink, daemon_args, binary } = self.options;
        let mut command =
            netd_cmd::in_netns(&self.netns_path(&self.host_ns), binary.map_or_else(netd_bin, Path::to_path_buf));
        // SAFETY: umask and setrlimit are async-signal-safe syscalls; nsenter execs netd, which
        // inherits both.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(move || {
                if let Some(mask) = umask {
                    libc::umask(mask);
                }
                if let Some((soft, hard)) = nofile {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &libc::rlimit { rlim_cur: soft, rlim_max: hard }) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command
            .args(["daemon", "--uplink", "eth0"])
            .args(if second_uplink { &["--uplink", "eth1"][..] } else { &[] })
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .arg("--run-dir")
            .arg(self.run_dir())
            .arg("--bpffs")
            .arg(&self.bpffs)
            .arg("--docker-plugin-socket")
            .arg(self.docker_plugin_socket())
            // Names the embedded DNS does not know go to the outside netns, never to the
            // machine's real resolvers (tests/tests/dns.rs runs a fake upstream there).
            .args(["--dns-upstream", OUTSIDE_ADDR])
            .args(daemon_args)
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start netd daemon");
        self.daemon = Some(child);
    }

    /// Waits (bounded) until the daemon's API answers; panics if the daemon exits first.
    pub fn wait_for_api(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.netd(&["network", "ls", "-q"]).status.success() {
                return;
            }
            if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("netd daemon exited with {status}:\n{}", self.daemon_log());
            }
            assert!(Instant::now() < deadline, "netd daemon did not come up:\n{}", self.daemon_log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (bounded) until the daemon has removed, in the background, the veths of stopped
    /// and removed containers (`endpoints_being_removed` in `netd stats`), so that the host
    /// can be compared with an earlier state. Nothing to wait for without a daemon.
    pub fn wait_for_removals(&self) {
        if self.daemon.is_none() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The namespaces made ahead of `run` too: a snapshot never catches one half made.
            let out = self.netd(&["stats", "--format", "{{.endpoints_being_removed}} {{.netns_being_prepared}}"]);
            let pending = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !out.status.success() || pending == "0 0" {
                return;
            }
            assert!(Instant::now() < deadline, "endpoints being removed, netns being made: {pending} after 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's pid (nsenter execs it: the child is the daemon itself).
    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("daemon running").id()
    }

    /// How many fds the daemon has open now.
    pub fn daemon_fds(&self) -> usize {
        let dir = format!("/proc/{}/fd", self.daemon_pid());
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")).count()
    }

    /// Stops the daemon with `signal` (SIGTERM or SIGKILL) and waits for it to exit.
    pub fn stop_daemon(&mut self, signal: nix::sys::signal::Signal) {
        if let Some(mut child) = self.daemon.take() {
            let _ = netd_cmd::signal_child(&mut child, signal as i32);
            let _ = child.wait();
        }
    }

    /// Waits (bounded) for the daemon to exit and returns how it ended; the daemon is then
    /// known to be down.
    pub fn wait_daemon_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut child = self.daemon.take().expect("daemon running");
        match netd_cmd::wait_timeout(&mut child, timeout).unwrap() {
            Some(status) => status,
            None => {
                netd_cmd::kill_child(&mut child);
                panic!("netd daemon did not exit within {timeout:?}:\n{}", self.daemon_log());
            }
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// One more `netd daemon` in this host's netns, on the given dirs, that is expected to
    /// refuse to start; bounded: one that started after all is stopped by the limit and shows
    /// as a failure of the caller's assertions.
    pub fn daemon_expected_to_refuse(&self, state: &Path, run: &Path, bpffs: &Path, args: &[&str]) -> Output {
        let mut cmd = netd_cmd::in_netns(&self.netns_path(&self.host_ns), netd_bin());
        cmd.args(["daemon", "--uplink", "eth0", "--dns-upstream", OUTSIDE_ADDR])
            .arg("--state-dir")
            .arg(state)
            .arg("--run-dir")
            .arg(run)
            .arg("--bpffs")
            .arg(bpffs)
            .arg("--docker-plugin-socket")
            .arg(run.join("docker-plugins/netd.sock"))
            .args(args);
        netd_cmd::output(&mut cmd, netd_cmd::Limit::new(Duration::from_secs(30))).expect("run netd daemon")
    }

    /// [`TestHost::daemon_log`] without tracing's ANSI colours, for matching `key=value`.
    pub fn plain_daemon_log(&self) -> String {
        let log = self.daemon_log();
        let mut plain = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// Runs the netd CLI against this host's daemon.
    pub fn netd(&self, args: &[&str]) -> Output {
        netd_cmd::output(&mut self.cli(args), LIMIT).unwrap_or_else(|e| panic!("run netd CLI: {}", why(&e)))
    }

    /// The CLI against this host's daemon, not started yet (for callers that choose its stdio
    /// or run it in the background).
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cli = Command::new(netd_bin());
        cli.arg("--socket").arg(self.socket()).args(args);
        cli
    }

    /// Runs the CLI with `stdin` fed to it (prompts, `run -it`); returns (exit code, stdout,
    /// stderr).
    pub fn netd_with_stdin(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        use std::io::Write;
        let mut child = self
            .cli(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run netd CLI");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = netd_cmd::wait_output(child, "netd CLI", LIMIT).unwrap_or_else(|e| panic!("{}", why(&e)));
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
    }

    /// Runs the CLI and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.netd(args);
        assert!(
            out.status.success(),
            "netd {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI and asserts failure; returns stderr (one line, trimmed).
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.netd(args);
        assert!(
            !out.status.success(),
            "netd {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap().trim().to_string()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap_or_else(|e| panic!("netd {args:?}: bad JSON: {e}"))
    }

    /// The container's IPv4 address on `network`.
    pub fn ip_of(&self, container: &str, network: &str) -> String {
        let c = self.json(&["inspect", container]);
        c[0]["NetworkSettings"]["Networks"][network]["IPAddress"].as_str().unwrap().to_string()
    }

    /// Runs a command in the host netns (not the daemon: `ip`, `nft`, ...).
    pub fn in_host(&self, cmd: &[&str]) -> Output {
        let mut command = netd_cmd::in_netns(&self.netns_path(&self.host_ns), cmd[0]);
        command.args(&cmd[1..]);
        netd_cmd::output(&mut command, LIMIT).unwrap_or_else(|e| panic!("nsenter: {}", why(&e)))
    }

    pub fn in_host_ok(&self, cmd: &[&str]) -> String {
        let out = self.in_host(cmd);
        assert!(out.status.success(), "{cmd:?} in host netns failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// The bind-mounted netns of a container.
    pub fn container_netns(&self, name: &str) -> PathBuf {
        self.run_dir().join("netns").join(name)
    }

    /// The host netns's endpoint veths (`nd` + 12 hex digits).
    pub fn endpoint_veths(&self) -> Vec<String> {
        let links: serde_json::Value = serde_json::from_str(&self.in_host_ok(&["ip", "-j", "link", "show"])).unwrap();
        let mut names: Vec<String> = links
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["ifname"].as_str())
            .filter(|n| n.starts_with("nd") && n.len() == 14 && n[2..].bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }

    /// Every endpoint veth's ingress filters, one `veth pref handle name prog-id` line each.
    pub fn endpoint_filters(&self) -> Vec<String> {
        let ns = self.netns_path(&self.host_ns);
        self.endpoint_veths()
            .iter()
            .flat_map(|veth| {
                ingress_filters(&ns, veth)
                    .into_iter()
                    .map(move |f| format!("{veth} {} {} {} {}", f.pref, f.handle, f.bpf_name, f.prog_id))
            })
            .collect()
    }

    /// Everything a netd command may change, for "a failed command changes nothing": the
    /// host netns' links, addresses and routes, the netns mounts, the endpoint filters, and what
    /// `network ls` and `ps -a` show.
    pub fn snapshot(&self) -> Snapshot {
        self.wait_for_removals();
        let dir_listing = |dir: PathBuf| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            names.sort();
            names
        };
        // Link names only: carrier state and IPv6 link-local addresses settle by themselves.
        let links: Vec<String> = self
            .in_host_ok(&["ip", "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
            .collect();
        Snapshot {
            links,
            addrs: self.in_host_ok(&["ip", "-o", "-4", "addr", "show"]),
            routes: self.in_host_ok(&["ip", "-4", "route", "show", "table", "all"]),
            netns: dir_listing(self.run_dir().join("netns")),
            endpoint_filters: self.endpoint_filters(),
            networks: self.ok(&["network", "ls", "--no-trunc"]),
            containers: self.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Networks}} {{.State}}"]),
        }
    }

    /// Runs the CLI, asserts that it fails with exactly `error` on stderr and that it changed
    /// nothing (see [`TestHost::snapshot`]).
    pub fn fails_cleanly(&self, args: &[&str], error: &str) {
        let before = self.snapshot();
        assert_eq!(self.fails(args), error, "stderr of netd {args:?}");
        let after = self.snapshot();
        assert_eq!(before, after, "netd {args:?} failed but changed something");
    }
}

/// See [`TestHost::snapshot`].
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub links: Vec<String>,
    pub addrs: String,
    pub routes: String,
    pub netns: Vec<String>,
    /// Every host veth's ingress filters, `veth pref handle program` (see
    /// [`TestHost::endpoint_filters`]).
    pub endpoint_filters: Vec<String>,
    pub networks: String,
    pub containers: String,
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            let _ = self.netd(&["system", "reset"]);
        }
        self.stop_daemon(nix::sys::signal::Signal::SIGKILL);
        // Whatever the reset could not remove: container netns mounts, the namespaces made
        // ahead (after a kill), namespaces, pins.
        for dir in ["netns", "netns-ready"] {
            if let Ok(entries) = std::fs::read_dir(self.run_dir().join(dir)) {
                for e in entries.flatten() {
                    let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        let _ = nix::mount::umount2(&self.run_dir().join("host-netns"), nix::mount::MntFlags::MNT_DETACH);
        let _ = netd_cmd::output(Command::new("ip").args(["netns", "del", &self.host_ns]), LIMIT);
        let _ = netd_cmd::output(Command::new("ip").args(["netns", "del", &self.outside_ns]), LIMIT);
        if self.options.second_uplink {
            let _ = netd_cmd::output(Command::new("ip").args(["netns", "del", &self.second_outside_ns()]), LIMIT);
        }
        let _ = std::fs::remove_dir_all(&self.bpffs);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a command and asserts success.
pub fn sh(cmd: &[&str]) -> String {
    let out = netd_cmd::output(Command::new(cmd[0]).args(&cmd[1..]), LIMIT)
        .unwrap_or_else(|e| panic!("{cmd:?}: {}", why(&e)));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// An error with its causes, for panic messages.
fn why(err: &netd_cmd::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Runs `f` on a fresh thread inside the network namespace at `path`. Sockets made there stay
/// in that namespace.
pub fn in_netns<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    std::thread::spawn(move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("netns thread panicked")
}

/// Sends `request` over TCP from the netns `client` to `addr:port` served in the netns
/// `server`, which echoes it back upper-cased; returns the reply. Bounded by timeouts.
pub fn tcp_exchange(server: &Path, client: &Path, addr: &str, port: u16, request: &str) -> String {
    use std::io::{Read, Write};
    let listener = in_netns(server, move || std::net::TcpListener::bind(("0.0.0.0", port)).expect("bind"));
    let serve = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 256];
        let n = conn.read(&mut buf).expect("server read");
        conn.write_all(String::from_utf8_lossy(&buf[..n]).to_uppercase().as_bytes()).unwrap();
    });
    let target: std::net::SocketAddr = format!("{addr}:{port}").parse().unwrap();
    let request = request.to_string();
    let reply = in_netns(client, move || {
        let mut conn = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(5)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).expect("client read");
        reply
    });
    serve.join().unwrap();
    reply
}

/// One filter at ingress of a device (`tc -j filter show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressFilter {
    pub pref: u64,
    pub kind: String,
    pub handle: String,
    /// `TCA_BPF_NAME` of a bpf filter.
    pub bpf_name: String,
    pub prog_id: u64,
    pub direct_action: bool,
}

impl IngressFilter {
    /// netd's endpoint filter: its program, at its slot, direct action.
    pub fn is_netds(&self) -> bool {
        self.kind == "bpf"
            && self.pref == ENDPOINT_FILTER_PREF
            && self.handle == ENDPOINT_FILTER_HANDLE
            && self.bpf_name == ENDPOINT_PROGRAM
            && self.direct_action
    }
}

/// The filters at clsact ingress of `ifname` in the netns `ns` (none without a clsact qdisc).
pub fn ingress_filters(ns: &Path, ifname: &str) -> Vec<IngressFilter> {
    let net = format!("--net={}", ns.display());
    let out = sh(&["nsenter", &net, "tc", "-j", "filter", "show", "dev", ifname, "ingress"]);
    let filters: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("tc -j: {e}: {out}"));
    filters
        .as_array()
        .unwrap_or_else(|| panic!("tc -j: not a list: {out}"))
        .iter()
        // tc prints a header object per priority, then one object per filter (with options).
        .filter(|f| f.get("options").is_some())
        .map(|f| {
            let options = &f["options"];
            IngressFilter {
                pref: f["pref"].as_u64().unwrap_or(0),
                kind: f["kind"].as_str().unwrap_or("").to_string(),
                handle: options["handle"].as_str().unwrap_or("").to_string(),
                bpf_name: options["bpf_name"].as_str().unwrap_or("").to_string(),
                prog_id: options["prog"]["id"].as_u64().unwrap_or(0),
                direct_action: options["direct-action"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

/// Attaches the daemon's pinned endpoint program with tcx at ingress of `ifname` in the host
/// netns and pins the link as `links/netd_ep_ingress/<pin_name>`: how netd up to issue 14
/// attached endpoints (or what a daemon of that layout that died mid-operation left).
pub fn pin_tcx_link(host: &TestHost, ifname: &str, pin_name: &str) {
    use aya::programs::{
        links::{FdLink, LinkOrder},
        tc::TcAttachOptions,
        SchedClassifier, TcAttachType,
    };
    let prog_pin = host.bpffs.join("progs").join(ENDPOINT_PROGRAM);
    let links = host.bpffs.join(LEGACY_ENDPOINT_LINKS);
    std::fs::create_dir_all(&links).unwrap();
    let link_pin = links.join(pin_name);
    let ifname = ifname.to_string();
    in_netns(&host.netns_path(&host.host_ns), move || {
        let mut prog = SchedClassifier::from_pin(&prog_pin).expect("open pinned program");
        let id = prog
            .attach_with_options(&ifname, TcAttachType::Ingress, TcAttachOptions::TcxOrder(LinkOrder::default()))
            .expect("attach tcx");
        let link = FdLink::try_from(prog.take_link(id).unwrap()).expect("tcx link");
        link.pin(&link_pin).expect("pin link");
    });
}

/// Turns the endpoint veth `veth`'s filter into the previous layout's pinned tcx link, with no
/// moment without a program (the link first: tcx runs ahead of clsact), then removes the
/// clsact qdisc (the filter with it), which that layout never had. Only while no daemon runs.
pub fn endpoint_filter_to_tcx_link(host: &TestHost, veth: &str) {
    pin_tcx_link(host, veth, veth);
    host.in_host_ok(&["tc", "qdisc", "del", "dev", veth, "clsact"]);
    assert!(ingress_filters(&host.netns_path(&host.host_ns), veth).is_empty(), "filter left on {veth}");
}

/// Names of the programs attached with tcx at ingress of `ifname` in the netns `ns`.
pub fn tcx_ingress_programs(ns: &Path, ifname: &str) -> Vec<String> {
    let ifname = ifname.to_string();
    in_netns(ns, move || {
        let (_, progs) = aya::programs::SchedClassifier::query_tcx(&ifname, aya::programs::TcAttachType::Ingress)
            .unwrap_or_else(|e| panic!("query tcx on {ifname}: {e}"));
        progs.iter().map(|p| p.name_as_str().unwrap_or("").to_string()).collect()
    })
}

/// Waits (bounded by `timeout`) until process `pid` is gone from /proc: ended and reaped.
/// The cgroup2 directory of process `pid`.
pub fn cgroup_dir(pid: u32) -> PathBuf {
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::")).expect("a cgroup2 path").to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mountinfo
        .lines()
        .find(|l| l.split(" - ").nth(1).is_some_and(|fs| fs.starts_with("cgroup2 ")))
        .and_then(|l| l.split(' ').nth(4))
        .expect("a cgroup2 mount");
    PathBuf::from(mount).join(path.trim_start_matches('/'))
}

pub fn wait_process_gone(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "process {pid} still exists after {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
