//! Upgrades and restarts of containers (issue #13): replacing or deleting the netd binary on
//! disk while the daemon runs does not break `run` (the daemon starts container commands from
//! its own running image); `start` keeps the log of earlier runs, and a failed `start` keeps
//! the stopped container's files.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use netd_tests::{daemon_bin, netd_bin, DaemonOptions, TestHost};

/// A copy of the netd binary in a directory of its own, removed even on panic.
struct BinaryCopy {
    dir: PathBuf,
}

/// The CLI and the daemon's binary, copied into a directory of their own.
impl BinaryCopy {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netd-upgrade-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(netd_bin(), dir.join("netd")).unwrap();
        std::fs::copy(daemon_bin(), dir.join("netd-daemon")).unwrap();
        Self { dir }
    }

    /// The CLI, which the daemon is started with (`netd daemon` becomes `netd-daemon`).
    fn path(&self) -> PathBuf {
        self.dir.join("netd")
    }

    /// The binary the daemon runs.
    fn daemon(&self) -> PathBuf {
        self.dir.join("netd-daemon")
    }
}

impl Drop for BinaryCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn state_of(host: &TestHost, name: &str) -> String {
    host.ok(&["inspect", "-f", "{{.State.Status}}", name]).trim().to_string()
}

/// Waits (bounded) until `name`'s command has exited.
fn wait_exited(host: &TestHost, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(host, name) != "exited" {
        assert!(Instant::now() < deadline, "{name} still {}", state_of(host, name));
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The container runs and its main process becomes the command: `run -d` returns once
/// `netd __enter` has started (as Docker's returns once runc's init has), and `__enter` execs
/// the command a moment later, so wait for that (bounded).
fn assert_running_command(host: &TestHost, name: &str) {
    let c = &host.json(&["inspect", name])[0];
    assert_eq!(c["State"]["Running"], true, "{name}: {c}");
    let pid = c["State"]["Pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        match comm.trim() {
            "sleep" => return,
            // The daemon's binary as `netd __enter`, still entering the container.
            "exe" if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            other => panic!("{name}'s main process is {other:?}, not sleep"),
        }
    }
}

#[test]
fn run_works_after_the_binary_was_replaced_or_deleted_on_disk() {
    let copy = BinaryCopy::new("replace");
    let binary: &'static Path = Box::leak(copy.path().into_boxed_path());
    let host = TestHost::start_with(DaemonOptions { binary: Some(binary), ..Default::default() });
    host.ok(&["run", "-d", "--name", "up1", "--", "sleep", "1000"]);
    assert_running_command(&host, "up1");
    // An upgrade: a new file renamed over the old one.
    let new = copy.dir.join("netd-daemon.new");
    std::fs::copy(daemon_bin(), &new).unwrap();
    std::fs::rename(&new, copy.daemon()).unwrap();
    host.ok(&["run", "-d", "--name", "up2", "--", "sleep", "1000"]);
    assert_running_command(&host, "up2");
    // And no file at all.
    std::fs::remove_file(copy.daemon()).unwrap();
    std::fs::remove_file(binary).unwrap();
    host.ok(&["run", "-d", "--name", "up3", "--", "sleep", "1000"]);
    assert_running_command(&host, "up3");
    assert_eq!(host.ok(&["run", "--name", "up4", "--", "sh", "-c", "echo attached"]), "attached\n");
}

#[test]
fn start_keeps_the_log_and_a_failed_start_keeps_the_files() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.91.0.0/24", "st-net"]);
    let run = ["run", "-d", "--name", "st1", "--network", "st-net", "--ip", "10.91.0.5", "--", "sh", "-c", "echo ran"];
    host.ok(&run);
    wait_exited(&host, "st1");
    let c = &host.json(&["inspect", "st1"])[0];
    let log = PathBuf::from(c["LogPath"].as_str().unwrap());
    let dir = log.parent().unwrap().to_path_buf();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");
    host.ok(&["start", "st1"]);
    wait_exited(&host, "st1");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\nran\n", "the first run's output stays");
    // Its address is another container's now: its start fails.
    host.ok(&["run", "-d", "--name", "st2", "--network", "st-net", "--ip", "10.91.0.5", "--", "sleep", "1000"]);
    let before: Vec<(String, String)> = ["hosts", "resolv.conf", "output.log"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap()))
        .collect();
    host.fails(&["start", "st1"]);
    assert_eq!(state_of(&host, "st1"), "exited");
    for (file, contents) in &before {
        assert_eq!(&std::fs::read_to_string(dir.join(file)).unwrap(), contents, "{file} after a failed start");
    }
    host.ok(&["rm", "-f", "st2"]);
    host.ok(&["start", "st1"]);
    wait_exited(&host, "st1");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\nran\nran\n");
}
