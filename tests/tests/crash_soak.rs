//! Crashes under load (issue #13): while clients create networks, run containers publishing
//! ports, connect, disconnect and remove in parallel, and long-lived TCP connections run
//! (container ↔ container, outside → a published port, container → outside through the
//! masquerade), the daemon is killed with SIGKILL at a random moment (a seeded RNG; the seed
//! is printed, `NETD_CRASH_SEED` replays it). After each restart store, kernel, maps and
//! processes agree, and every long-lived connection keeps carrying data: the same
//! connection, never a new one.
//!
//! `NETD_CRASH_ROUNDS` sets the kill/restart rounds (default [`DEFAULT_ROUNDS`];
//! `cargo xtask soak` runs more).
//!
//! Also: after a host reboot (container processes, netns, pins, routes and the run dir gone;
//! the state dir kept) containers show `Exited`, not `Up`, and start again.
use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use netd_cmd::Limit;
use netd_tests::{
    agreement::assert_store_and_kernel_agree,
    cgroup_dir,
    flows::{echo_once, LongFlow},
    TestHost, OUTSIDE_ADDR,
};
use nix::sys::signal::Signal;

const DEFAULT_ROUNDS: usize = 5;
const CLIENTS: usize = 4;
/// Far above what any command takes: only a hang reaches it.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Commands one client may issue in one round (the kill usually ends the round first).
const OPS_PER_ROUND: usize = 200;
/// The kill comes between these many milliseconds after the clients start.
const KILL_AFTER_MS: (u64, u64) = (50, 2_000);
const HOST_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(n) => n.parse().unwrap_or_else(|_| panic!("{name}={n}: not a number")),
        Err(_) => default,
    }
}

/// xorshift64*: a small seeded generator, so that a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One CLI command, bounded: a hang fails the test; failure is fine (the daemon may die under
/// it). Returns whether it succeeded.
fn attempt(host: &TestHost, args: &[&str]) -> bool {
    let out = netd_cmd::output(&mut host.cli(args), Limit::new(CALL_TIMEOUT))
        .unwrap_or_else(|e| panic!("netd {args:?} did not finish within {CALL_TIMEOUT:?}: {e}"));
    out.status.success()
}

/// One client's load until `stop` (or [`OPS_PER_ROUND`]): a network, a container publishing a
/// random port on it, a second one connected and disconnected, the long-lived client
/// container connected to the network and back, everything removed again.
fn client(host: &TestHost, round: usize, k: usize, seed: u64, marker: &str, stop: &AtomicBool, done: &AtomicUsize) {
    let mut rng = Rng(seed | 1);
    let mut ops = 0;
    for i in 0.. {
        let net = format!("cs-r{round}k{k}i{i}");
        let (c, d) = (format!("{net}c"), format!("{net}d"));
        let publish = format!("{}:80", 30_000 + rng.below(500));
        let steps: [&[&str]; 9] = [
            &["network", "create", &net],
            &["run", "-d", "--name", &c, "--network", &net, "-p", &publish, "--", "sleep", marker],
            &["run", "-d", "--name", &d],
            &["network", "connect", &net, &d],
            &["network", "connect", &net, "cs-client"],
            &["network", "disconnect", &net, "cs-client"],
            &["network", "disconnect", &net, &d],
            &["rm", "-f", &c, &d],
            &["network", "rm", &net],
        ];
        for step in steps {
            if stop.load(Ordering::SeqCst) || ops == OPS_PER_ROUND {
                return;
            }
            if attempt(host, step) {
                done.fetch_add(1, Ordering::SeqCst);
            }
            ops += 1;
        }
    }
}

#[test]
fn kill_9_under_load_keeps_store_kernel_and_flows_agreeing() {
    let rounds = env_number("NETD_CRASH_ROUNDS", DEFAULT_ROUNDS as u64) as usize;
    let seed = env_number("NETD_CRASH_SEED", std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos() as u64);
    println!("crash soak: seed {seed} (replay with NETD_CRASH_SEED={seed}), {rounds} rounds");
    let mut rng = Rng(seed | 1);
    let mut host = TestHost::start();
    // Each test its own marker: both run in this process.
    let marker = format!("600.{}01", std::process::id());
    host.ok(&["network", "create", "cs-net"]);
    host.ok(&["run", "-d", "--name", "cs-server", "--network", "cs-net", "-p", "9000:80", "--", "sleep", &marker]);
    host.ok(&["run", "-d", "--name", "cs-client", "--network", "cs-net", "--", "sleep", &marker]);
    let server_ip: Ipv4Addr = host.ip_of("cs-server", "cs-net").parse().unwrap();
    let (server, client_ns) = (host.container_netns("cs-server"), host.container_netns("cs-client"));
    let outside = host.netns_path(&host.outside_ns);
    let outside_addr: Ipv4Addr = OUTSIDE_ADDR.parse().unwrap();
    let flows = [
        LongFlow::start("container to container", &server, 81, &client_ns, SocketAddrV4::new(server_ip, 81)),
        LongFlow::start("outside to published port", &server, 80, &outside, SocketAddrV4::new(HOST_ADDR, 9000)),
        LongFlow::start("container to outside", &outside, 7000, &client_ns, SocketAddrV4::new(outside_addr, 7000)),
    ];
    for flow in &flows {
        flow.assert_flowing(5);
    }
    let started = Instant::now();
    let mut total_done = 0;
    for round in 0..rounds {
        let (stop, done) = (AtomicBool::new(false), AtomicUsize::new(0));
        let kill_after = Duration::from_millis(KILL_AFTER_MS.0 + rng.below(KILL_AFTER_MS.1 - KILL_AFTER_MS.0));
        let seeds: Vec<u64> = (0..CLIENTS).map(|_| rng.next()).collect();
        std::thread::scope(|scope| {
            for (k, seed) in seeds.iter().enumerate() {
                let (host, marker, stop, done) = (&host, &marker, &stop, &done);
                scope.spawn(move || client(host, round, k, *seed, marker, stop, done));
            }
            std::thread::sleep(kill_after);
            // The clients keep going until the daemon is gone: the kill lands mid-command.
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(host.daemon_pid() as i32), Signal::SIGKILL).unwrap();
            stop.store(true, Ordering::SeqCst);
        });
        host.stop_daemon(Signal::SIGKILL);
        for flow in &flows {
            flow.assert_flowing(3);
        }
        host.start_daemon();
        assert_store_and_kernel_agree(&host, &marker);
        for flow in &flows {
            flow.assert_flowing(3);
        }
        let done = done.load(Ordering::SeqCst);
        total_done += done;
        println!("round {round}: killed after {kill_after:?} and {done} commands; store, kernel and flows agree");
    }
    assert!(total_done > 0, "no client command succeeded before a kill: no load");
    // What the clients left goes; the long-lived containers and their flows stay.
    let names = host.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let leftovers: Vec<&str> = names.lines().filter(|n| n.starts_with("cs-r")).collect();
    if !leftovers.is_empty() {
        host.ok(&[&["rm", "-f"][..], &leftovers].concat());
    }
    host.ok(&["network", "prune", "-f"]);
    assert_store_and_kernel_agree(&host, &marker);
    for flow in &flows {
        flow.assert_flowing(5);
    }
    println!("crash soak: {rounds} rounds in {:?}", started.elapsed());
}

/// A host reboot: the daemon and every container process gone, their network namespaces, the
/// bpffs pins, netd's routes, gateway addresses and reserved ports, the run dir (tmpfs) and
/// the containers' cgroups gone; only the state dir is kept. The daemon then shows every
/// container exited, the kernel agrees, and the containers start again and carry traffic.
#[test]
fn after_a_host_reboot_containers_show_exited() {
    let mut host = TestHost::start();
    // Each test its own marker: both run in this process.
    let marker = format!("600.{}02", std::process::id());
    host.ok(&["network", "create", "rb-net"]);
    host.ok(&["run", "-d", "--name", "rb-one", "--network", "rb-net", "-p", "9100:80", "--", "sleep", &marker]);
    host.ok(&["run", "-d", "--name", "rb-two", "--network", "rb-net"]);
    host.ok(&["run", "-d", "--name", "rb-stopped", "--network", "rb-net", "--", "sleep", &marker]);
    host.ok(&["stop", "rb-stopped"]);
    let pid = host.json(&["inspect", "rb-one"])[0]["State"]["Pid"].as_u64().unwrap() as u32;
    assert!(pid > 1);
    let cgroup = cgroup_dir(pid);
    host.stop_daemon(Signal::SIGKILL);

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    netd_tests::wait_process_gone(pid, Duration::from_secs(10));
    std::fs::remove_dir(&cgroup).unwrap_or_else(|e| panic!("rmdir {}: {e}", cgroup.display()));
    // Every mount goes with a reboot: the containers' netns and those made ahead of `run`.
    for dir in ["netns", "netns-ready"] {
        for entry in std::fs::read_dir(host.run_dir().join(dir)).unwrap().flatten() {
            nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
        }
    }
    nix::mount::umount2(&host.run_dir().join("host-netns"), nix::mount::MntFlags::MNT_DETACH).ok();
    std::fs::remove_dir_all(host.run_dir()).unwrap();
    std::fs::remove_dir_all(&host.bpffs).unwrap();
    host.in_host_ok(&["ip", "route", "flush", "table", "all", "proto", "78"]);
    let lo = host.in_host_ok(&["ip", "-o", "-4", "addr", "show", "dev", "lo", "label", "lo:netd"]);
    for addr in lo.lines().filter_map(|l| l.split_whitespace().nth(3)) {
        host.in_host_ok(&["ip", "addr", "del", addr, "dev", "lo"]);
    }
    host.in_host_ok(&["sh", "-c", "echo > /proc/sys/net/ipv4/ip_local_reserved_ports"]);
    // The veths go with the namespaces (nothing holds them any more), which the kernel
    // cleans up in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let links = host.in_host_ok(&["ip", "-o", "link", "show"]);
        if !links.contains(": nd") {
            break;
        }
        assert!(Instant::now() < deadline, "a container veth outlived its netns:\n{links}");
        std::thread::sleep(Duration::from_millis(100));
    }

    host.start_daemon();
    for name in ["rb-one", "rb-two", "rb-stopped"] {
        let c = &host.json(&["inspect", name])[0];
        assert_eq!(c["State"]["Status"], "exited", "{name} after the reboot: {}", c["State"]);
        assert_eq!(c["State"]["Running"], false, "{name}: {}", c["State"]);
    }
    let status = host.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(status.lines().all(|l| l.contains(" Exited (")), "ps -a after the reboot:\n{status}");
    assert!(host.ok(&["ps", "-q"]).is_empty(), "containers shown running after the reboot");
    assert_store_and_kernel_agree(&host, &marker);

    host.ok(&["start", "rb-one", "rb-two"]);
    assert_store_and_kernel_agree(&host, &marker);
    let outside = host.netns_path(&host.outside_ns);
    let reply =
        echo_once(&host.container_netns("rb-one"), 80, &outside, SocketAddrV4::new(HOST_ADDR, 9100), "after reboot");
    assert_eq!(reply, "after reboot", "the published port after the restart");
}
