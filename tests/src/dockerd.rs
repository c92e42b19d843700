//! A real dockerd (Debian's docker.io) for a [`TestHost`]: in the host's netns, where netd makes
//! the veths whose peers Docker moves into its sandboxes, and in a mount namespace of its own
//! with a tmpfs over `/run`, so that `/run/docker/plugins` there holds only this host's netd
//! plugin socket and nothing of the machine's `/run` is touched. Everything else dockerd and
//! its containerd keep is under the fixture's directory. Dropping it removes the containers and
//! stops dockerd, its containerd and their shims (found by the fixture's unique directory in
//! their command lines).
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use netd_cmd::Limit;

use crate::TestHost;

/// Debian's daemon and the CLI of the same package (another `docker` on PATH may be a newer
/// client that speaks another API version).
const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";
/// The image the tests run: busybox-static's applets, `docker import`ed.
pub const IMAGE: &str = "netd-test-busybox";
/// docker0's address: away from netd's own default bridge (172.17.0.0/16), which Docker does
/// not see (docs/docker-measurements.md, "Remote network driver").
pub const DOCKER0_BIP: &str = "172.31.250.1/24";
const LIMIT: Limit = Limit::new(Duration::from_secs(120));

pub struct Dockerd {
    dir: PathBuf,
    socket: PathBuf,
    exec_root: PathBuf,
    host_netns: PathBuf,
    plugins: PathBuf,
    process: Option<Child>,
}

impl Dockerd {
    /// Starts dockerd for `host` and imports [`IMAGE`].
    pub fn start(host: &TestHost) -> Self {
        assert!(Path::new(DOCKERD).exists(), "{DOCKERD} missing: `cargo xtask test` installs docker.io");
        let dir = host.dir.join("dockerd");
        let plugins = host.docker_plugin_socket().parent().unwrap().to_path_buf();
        let mut d = Self {
            socket: dir.join("docker.sock"),
            exec_root: dir.join("exec"),
            host_netns: host.netns_path(&host.host_ns),
            plugins,
            dir,
            process: None,
        };
        std::fs::create_dir_all(&d.dir).unwrap();
        d.start_daemon();
        d.import_image();
        d
    }

    /// Starts (or restarts) the daemon and waits until it answers.
    pub fn start_daemon(&mut self) {
        assert!(self.process.is_none(), "dockerd already running");
        std::fs::write(self.dir.join("daemon.json"), "{}\n").unwrap();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("dockerd.log")).unwrap();
        // In the host netns; then a private mount namespace whose /run is a tmpfs holding only
        // /run/docker/plugins = this host's plugin socket directory.
        let script = "mount -t tmpfs netd-test /run && mkdir -p /run/docker/plugins \
                      && mount --bind \"$0\" /run/docker/plugins && exec \"$@\"";
        let mut cmd = netd_cmd::in_netns(&self.host_netns, "unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", script])
            .arg(&self.plugins)
            .arg(DOCKERD)
            .arg("--config-file")
            .arg(self.dir.join("daemon.json"))
            .arg("--data-root")
            .arg(self.dir.join("data"))
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(["--bip", DOCKER0_BIP, "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        self.process = Some(cmd.spawn().expect("start dockerd"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.as_mut().unwrap().try_wait().unwrap() {
                panic!("dockerd exited ({status}):\n{}", self.log());
            }
            if self.socket.exists() && self.docker(&["version", "--format", "{{.Server.Version}}"]).status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "dockerd not ready after 60 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the daemon (SIGTERM: it stops its containers, as on a host's shutdown), then
    /// whatever of this fixture is still running.
    pub fn stop_daemon(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = netd_cmd::signal_child(&mut process, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while process.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if process.try_wait().ok().flatten().is_none() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
        self.kill_leftovers();
    }

    /// containerd and shims started for this fixture: their command lines name its exec root.
    fn kill_leftovers(&self) {
        let ours = self.exec_root.to_string_lossy().into_owned();
        let is_ours = |pid: u32| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&ours))
                .unwrap_or(false)
        };
        let pids: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        for pid in pids {
            // The pidfd is opened before the command line is read: a reused pid is never hit.
            if let Some(process) = netd_cmd::Process::open_checked(pid, is_ours) {
                let _ = process.signal(libc::SIGTERM);
                if !process.wait_exit(Duration::from_secs(10)) {
                    let _ = process.signal(libc::SIGKILL);
                    process.wait_exit(Duration::from_secs(5));
                }
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// `docker -H unix://SOCKET ARGS`.
    pub fn docker(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H").arg(format!("unix://{}", self.socket.display())).args(args).stdin(Stdio::null());
        netd_cmd::output(&mut cmd, LIMIT).unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
    }

    /// [`Self::docker`], asserting success; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// [`Self::docker`], asserting failure; its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(!out.status.success(), "docker {args:?} succeeded: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8(out.stderr).unwrap()
    }

    /// A container's address on `network`.
    pub fn ip_of(&self, container: &str, network: &str) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        self.ok(&["inspect", "-f", &format, container]).trim().to_string()
    }

    /// busybox-static with a link for each applet, as the image [`IMAGE`].
    fn import_image(&self) {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox missing: `cargo xtask test` installs busybox-static");
        let root = self.dir.join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
        let applets = Command::new(busybox).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&applets.stdout).lines().filter(|a| *a != "busybox") {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
        let tar = self.dir.join("rootfs.tar");
        crate::sh(&["tar", "-C", &root.to_string_lossy(), "-cf", &tar.to_string_lossy(), "."]);
        self.ok(&["import", "--change", "ENV PATH=/bin", "--change", "CMD [\"sh\"]", &tar.to_string_lossy(), IMAGE]);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if self.process.is_some() {
            let ids = self.docker(&["ps", "-aq"]);
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self.docker(&[&["rm", "-f"][..], &ids].concat());
            }
        }
        self.stop_daemon();
        // Its mounts lived in its own mount namespace, gone with its processes.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
