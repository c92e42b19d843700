//! One daemon per state dir, run dir and bpffs dir (issue #13): a second daemon that shares
//! any one of them with a running daemon is refused at once, naming the directory and the
//! running daemon's pid, and the running daemon's containers keep talking; a `kill -9`'d
//! daemon leaves no lock behind. `netd system reset` leaves nothing of netd in the run dir
//! and the bpffs dir.
use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use netd_tests::{tcp_exchange, TestHost};

fn second_daemon(host: &TestHost, state: &Path, run: &Path, bpffs: &Path) -> Output {
    host.daemon_expected_to_refuse(state, run, bpffs, &[])
}

/// Removes the second daemon's own bpffs dir even on panic.
struct OwnBpffs(PathBuf);

impl Drop for OwnBpffs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn assert_containers_talk(host: &TestHost, round: &str) {
    let ip = host.ip_of("lk1", "lk-net");
    let reply = tcp_exchange(&host.container_netns("lk1"), &host.container_netns("lk2"), &ip, 7300, round);
    assert_eq!(reply, round.to_uppercase(), "{round}");
}

#[test]
fn a_second_daemon_sharing_any_dir_is_refused_and_the_first_keeps_working() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "lk-net"]);
    host.ok(&["run", "-d", "--name", "lk1", "--network", "lk-net"]);
    host.ok(&["run", "-d", "--name", "lk2", "--network", "lk-net"]);
    assert_containers_talk(&host, "before");
    let own = OwnBpffs(PathBuf::from(format!("{}-second", host.bpffs.display())));
    let (own_state, own_run) = (host.dir.join("second-state"), host.dir.join("second-run"));
    let (state, run) = (host.dir.join("state"), host.run_dir());
    let pid = host.daemon_pid();
    for (what, dir, out) in [
        ("state dir", &state, second_daemon(&host, &state, &own_run, &own.0)),
        ("run dir", &run, second_daemon(&host, &own_state, &run, &own.0)),
        ("bpffs dir", &host.bpffs, second_daemon(&host, &own_state, &own_run, &host.bpffs)),
    ] {
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("another netd daemon (pid {pid}) is using the {what} {}", dir.display());
        assert!(stderr.contains(&expected), "{what}: {stderr}");
        assert_containers_talk(&host, what);
        assert!(host.ok(&["network", "ls"]).contains("lk-net"));
    }
    // A daemon killed outright leaves no lock: the next start takes the same dirs.
    host.stop_daemon(nix::sys::signal::Signal::SIGKILL);
    host.start_daemon();
    assert_containers_talk(&host, "after a restart");
}

/// Every path under `dir` (recursively), for messages.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        found.push(entry.path());
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(tree(&entry.path()));
        }
    }
    found
}

#[test]
fn system_reset_leaves_nothing_in_the_run_dir_and_the_bpffs_dir() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "rs-net"]);
    host.ok(&[
        "run",
        "-d",
        "--name",
        "rs1",
        "--network",
        "rs-net",
        "-p",
        "8090:80",
        "--",
        "sh",
        "-c",
        "echo hi; sleep 1000",
    ]);
    host.ok(&["run", "-d", "--name", "rs2", "--network", "none", "--", "sleep", "1000"]);
    let files = host.run_dir().join("containers");
    assert_eq!(std::fs::read_dir(&files).unwrap().count(), 2, "each container has its files");
    host.ok(&["system", "reset"]);
    host.wait_daemon_exit(Duration::from_secs(30));
    let left: Vec<PathBuf> = tree(&host.run_dir()).into_iter().chain(tree(&host.bpffs)).collect();
    assert!(left.is_empty(), "left after reset: {left:?}");
}
