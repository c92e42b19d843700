//! Crash consistency (issue: host safety): the daemon is killed with SIGKILL at each injected
//! crash point inside run, start, stop, rm, connect, disconnect, attach, network create/rm and
//! system reset (`NETD_CRASH_AT`, see netd/src/daemon/crash.rs); after a restart the store, the kernel
//! and the processes agree exactly, and the daemon keeps working.
use std::{
    os::unix::process::ExitStatusExt,
    process::Stdio,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use netd_tests::{agreement::assert_store_and_kernel_agree, TestHost};
use nix::sys::signal::Signal;

static HOSTS: AtomicU32 = AtomicU32::new(0);

/// The duration every container command of one test host sleeps: its digits mark that host's
/// processes apart from those of tests running in parallel.
fn unique_sleep() -> String {
    format!("600.{}{:03}", std::process::id(), HOSTS.fetch_add(1, Ordering::SeqCst))
}

/// Makes a host with a network `cp-net`, a running container `base` (command + endpoint), a
/// stopped container `idle`, a second network `cp-two` that `conn` is on, and an empty network
/// `cp-empty`, and `inner` on the internal network `cp-int` only; then restarts the daemon so
/// that it dies at `point`. `base`, `conn`, `idle` and `inner` have port bindings (TCP and UDP,
/// on every address and on one; `inner`'s published nowhere yet), so that every point checks
/// the ports are kept exactly for the containers that run and gone for the others.
fn host_crashing_at(point: &str, sleep: &str) -> TestHost {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "cp-net"]);
    host.ok(&["network", "create", "cp-two"]);
    host.ok(&["network", "create", "cp-empty"]);
    let base = ["run", "-d", "--name", "base", "--network", "cp-net", "-p", "9090:80", "-p", "9090:53/udp"];
    host.ok(&[&base[..], &["--", "sleep", sleep]].concat());
    let conn = ["run", "-d", "--name", "conn", "--network", "cp-net", "-p", "127.0.0.1:9091:80"];
    host.ok(&[&conn[..], &["--", "sleep", sleep]].concat());
    host.ok(&["network", "connect", "cp-two", "conn"]);
    host.ok(&["run", "-d", "--name", "idle", "--network", "cp-net", "-p", "9092:80", "--", "sleep", sleep]);
    host.ok(&["network", "create", "--internal", "cp-int"]);
    host.ok(&["run", "-d", "--name", "inner", "--network", "cp-int", "-p", "9093:80", "--", "sleep", sleep]);
    host.ok(&["stop", "idle"]);
    assert_store_and_kernel_agree(&host, sleep);
    host.stop_daemon(Signal::SIGTERM);
    host.start_daemon_with_env(&[("NETD_CRASH_AT", point)]);
    host.wait_for_api();
    host
}

/// Runs `args`, which must kill the daemon at its crash point; restarts the daemon and checks
/// that everything agrees and that the daemon still works.
fn crash_and_recover(point: &str, args: &[&str]) {
    let sleep = unique_sleep();
    let mut host = host_crashing_at(point, &sleep);
    let args: Vec<&str> = args.iter().map(|a| if *a == "SLEEP" { sleep.as_str() } else { a }).collect();
    let args = args.as_slice();
    // No captured output: an attached command would hold the pipes open until it ends.
    let status = host.cli(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(!status.success(), "netd {args:?} succeeded although the daemon was to die at {point}");
    let status = host.wait_daemon_exit(Duration::from_secs(30));
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the daemon did not die at {point}: {status}\n{}",
        host.daemon_log()
    );
    host.start_daemon();
    assert_store_and_kernel_agree(&host, &sleep);
    // Still fully working: a new network and container, then everything removed. `after`
    // publishes the port `victim` would have had: a reserved entry left behind would refuse
    // it (post_bind4 fails netd's own probe bind).
    host.ok(&["network", "create", "cp-after"]);
    host.ok(&["run", "-d", "--name", "after", "--network", "cp-after", "-p", "8080:80", "--", "sleep", &sleep]);
    assert_store_and_kernel_agree(&host, &sleep);
    let all = host.ok(&["ps", "-aq"]);
    let ids: Vec<&str> = all.lines().collect();
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids);
    host.ok(&rm);
    host.ok(&["network", "prune", "-f"]);
    assert_store_and_kernel_agree(&host, &sleep);
}

#[test]
fn crash_inside_run() {
    for point in ["run:netns", "run:endpoint", "run:publish", "run:files", "run:spawn"] {
        let victim = ["run", "-d", "--name", "victim", "--network", "cp-net", "-p", "8080:80", "-p", "8080:80/udp"];
        crash_and_recover(point, &[&victim[..], &["--", "sleep", "SLEEP"]].concat());
    }
}

#[test]
fn crash_inside_start() {
    for point in ["run:netns", "run:endpoint", "run:publish", "run:files", "run:spawn"] {
        crash_and_recover(point, &["start", "idle"]);
    }
}

#[test]
fn crash_inside_stop() {
    for point in ["stop:commit", "teardown:unpublish", "teardown:processes", "teardown:endpoint"] {
        crash_and_recover(point, &["stop", "base"]);
    }
}

#[test]
fn crash_inside_rm() {
    for point in ["rm:commit", "teardown:unpublish", "teardown:processes", "teardown:endpoint"] {
        crash_and_recover(point, &["rm", "-f", "conn"]);
    }
}

#[test]
fn crash_inside_connect_and_disconnect() {
    crash_and_recover("connect:endpoint", &["network", "connect", "cp-two", "base"]);
    // `inner`'s bindings are published on the endpoint the connect adds.
    crash_and_recover("connect:publish", &["network", "connect", "cp-two", "inner"]);
    crash_and_recover("disconnect:commit", &["network", "disconnect", "cp-net", "conn"]);
}

#[test]
fn crash_inside_an_attached_run() {
    crash_and_recover("attach:spawn", &["run", "--name", "fg", "--network", "cp-net", "--", "sleep", "SLEEP"]);
}

#[test]
fn crash_inside_network_create_and_rm() {
    crash_and_recover("network-create:gateway", &["network", "create", "cp-new"]);
    crash_and_recover("network-rm:commit", &["network", "rm", "cp-empty"]);
}

#[test]
fn crash_inside_system_reset() {
    crash_and_recover("reset:commit", &["system", "reset"]);
}
