//! Concurrency (issue #13): [`CLIENTS`] parallel CLI clients against one daemon create and
//! remove networks (some on the same subnet on purpose), run and remove containers publishing
//! host ports (pairs of clients on the same port on purpose), all connect and disconnect the
//! same container, and all create and remove a network and a container of the same name. Every command is bounded by [`CALL_TIMEOUT`] (a hang fails the test);
//! every failure must be one of Docker's texts for the collisions the test provokes. Afterwards:
//! no duplicate subnet, address, MAC, host port or name, every container a client ran and kept is
//! listed, the daemon logged no error, and store, kernel and maps agree.
//!
//! `NETD_CONCURRENCY_ROUNDS` sets the rounds per client (default [`DEFAULT_ROUNDS`]).
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::Duration,
};

use netd_cmd::Limit;
use netd_tests::{agreement::assert_store_and_kernel_agree, TestHost};

const CLIENTS: usize = 32;
const DEFAULT_ROUNDS: usize = 3;
/// Far above what any command takes even with 32 at once on a busy machine: only a hang
/// reaches it.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
const SHARED: &str = "cc-shared";
const TARGET: &str = "cc-target";

/// The failures the collisions provoke, in Docker's words.
const PORT_TAKEN: &str = "port is already allocated";
const POOL_OVERLAP: &str = "Pool overlaps with other one on this address space";
const ALREADY_CONNECTED: &str = "endpoint with name cc-target already exists in network cc-shared";
const NOT_CONNECTED: &str = "is not connected to network cc-shared";
/// The name of the network and of the container every client creates and removes.
const SAME: &str = "cc-same";
const NETWORK_EXISTS: &str = "network with name cc-same already exists";
const NO_NETWORK: &str = "network cc-same not found";
const NO_SUCH_NETWORK: &str = "Error: No such network: cc-same";
const NETWORK_IN_USE: &str = "has active endpoints";
const NAME_IN_USE: &str = "Conflict. The container name \"/cc-same\" is already in use by container";
const NO_CONTAINER: &str = "No such container: cc-same";

/// Refusals seen: the last round holds both of every colliding pair, so there are some.
static PORT_REFUSALS: AtomicUsize = AtomicUsize::new(0);
static POOL_REFUSALS: AtomicUsize = AtomicUsize::new(0);

fn rounds() -> usize {
    match std::env::var("NETD_CONCURRENCY_ROUNDS") {
        Ok(n) => n.parse().unwrap_or_else(|_| panic!("NETD_CONCURRENCY_ROUNDS={n}: not a number")),
        Err(_) => DEFAULT_ROUNDS,
    }
}

/// Runs one CLI command, bounded; `Ok(stdout)` or `Err(stderr)`. A hang or a crash of the CLI
/// fails the test.
fn call(host: &TestHost, args: &[&str]) -> Result<String, String> {
    let out = netd_cmd::output(&mut host.cli(args), Limit::new(CALL_TIMEOUT))
        .unwrap_or_else(|e| panic!("netd {args:?} did not finish within {CALL_TIMEOUT:?}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Ok(stdout.into_owned()),
        Some(_) => Err(stderr.into_owned()),
        None => panic!("netd {args:?} died: {}\n{stderr}", out.status),
    }
}

/// `call` that must succeed.
fn must(host: &TestHost, args: &[&str]) -> String {
    call(host, args).unwrap_or_else(|e| panic!("netd {args:?} failed: {e}"))
}

/// `call` that may fail only with an error whose first line contains one of `allowed`;
/// returns whether it succeeded.
fn may_fail(host: &TestHost, args: &[&str], allowed: &[&str]) -> bool {
    match call(host, args) {
        Ok(_) => true,
        Err(stderr) => {
            let first = stderr.lines().next().unwrap_or("");
            assert!(
                allowed.iter().any(|a| first.contains(a)),
                "netd {args:?} failed with an unexpected error (allowed: {allowed:?}):\n{stderr}"
            );
            false
        }
    }
}

/// One client's work. Returns the containers it ran and kept (its last round keeps them).
fn client(host: &TestHost, t: usize, rounds: usize, marker: &str) -> Vec<String> {
    let mut kept = Vec::new();
    for r in 0..rounds {
        let last = r + 1 == rounds;
        let net = format!("cc-n{t}r{r}");
        // A quarter share a subnet pairwise (one of each pair is refused while the other holds
        // it), a quarter have their own subnet, half take one from the default pools.
        let subnet = match t % 4 {
            1 => Some(format!("10.98.{}.0/24", t / 8)),
            3 => Some(format!("10.96.{t}.0/24")),
            _ => None,
        };
        let mut create = vec!["network", "create"];
        if let Some(subnet) = &subnet {
            create.extend(["--subnet", subnet]);
        }
        create.push(&net);
        let have_net = may_fail(host, &create, &[POOL_OVERLAP]);
        if !have_net {
            POOL_REFUSALS.fetch_add(1, Ordering::SeqCst);
        }
        if have_net {
            // Pairs of clients publish the same host port.
            let publish = format!("{}:80", 21_000 + t / 2);
            let (c, d) = (format!("cc-c{t}r{r}"), format!("cc-d{t}r{r}"));
            let run = ["run", "-d", "--name", &c, "--network", &net, "-p", &publish, "--", "sleep", marker];
            if may_fail(host, &run, &[PORT_TAKEN]) {
                kept.push(c.clone());
            } else {
                PORT_REFUSALS.fetch_add(1, Ordering::SeqCst);
                // Docker keeps a container whose ports could not be had as `Created`.
                may_fail(host, &["rm", "-f", &c], &["No such container"]);
            }
            must(host, &["run", "-d", "--name", &d, "--network", &net]);
            kept.push(d.clone());
            must(host, &["network", "connect", &net, TARGET]);
            for name in &kept {
                must(host, &["inspect", "--format", "{{.Id}}", name]);
            }
            if !last {
                must(host, &["network", "disconnect", &net, TARGET]);
                let mut rm = vec!["rm", "-f"];
                rm.extend(kept.iter().map(String::as_str));
                must(host, &rm);
                kept.clear();
                must(host, &["network", "rm", &net]);
            }
        }
        // Everyone connects and disconnects the same container on the same network.
        may_fail(host, &["network", "connect", SHARED, TARGET], &[ALREADY_CONNECTED]);
        may_fail(host, &["network", "disconnect", SHARED, TARGET], &[NOT_CONNECTED]);
        // Everyone creates and removes a network and a container of the same names.
        may_fail(host, &["network", "create", SAME], &[NETWORK_EXISTS]);
        may_fail(host, &["run", "-d", "--name", SAME, "--network", SAME], &[NAME_IN_USE, NO_NETWORK]);
        may_fail(host, &["rm", "-f", SAME], &[NO_CONTAINER]);
        may_fail(host, &["network", "rm", SAME], &[NO_SUCH_NETWORK, NETWORK_IN_USE]);
    }
    kept
}

#[test]
fn parallel_clients_never_duplicate_lose_or_hang() {
    let host = TestHost::start();
    let marker = format!("600.{}", std::process::id());
    must(&host, &["network", "create", "--subnet", "10.97.0.0/24", SHARED]);
    must(&host, &["network", "create", "--subnet", "10.97.1.0/24", "cc-base"]);
    must(&host, &["run", "-d", "--name", TARGET, "--network", "cc-base", "--", "sleep", &marker]);
    let rounds = rounds();
    let kept = Mutex::new(Vec::new());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..CLIENTS {
            let (host, marker, kept) = (&host, &marker, &kept);
            scope.spawn(move || {
                let mine = client(host, t, rounds, marker);
                kept.lock().unwrap().extend(mine);
            });
        }
    });
    let refusals = (PORT_REFUSALS.load(Ordering::SeqCst), POOL_REFUSALS.load(Ordering::SeqCst));
    println!(
        "concurrency: {CLIENTS} clients x {rounds} rounds in {:?}; (port, pool) refusals {refusals:?}",
        started.elapsed()
    );
    assert!(refusals.0 > 0 && refusals.1 > 0, "the provoked collisions never happened: {refusals:?}");

    let listed: BTreeSet<String> =
        must(&host, &["ps", "-a", "--format", "{{.Names}}"]).lines().map(str::to_string).collect();
    for name in kept.lock().unwrap().iter() {
        assert!(listed.contains(name), "container {name} was run and kept but is not listed: {listed:?}");
    }
    assert_no_duplicates(&host);
    assert_store_and_kernel_agree(&host, &marker);
    let log = host.daemon_log();
    let bad: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ") || l.contains("panicked")).collect();
    assert!(bad.is_empty(), "the daemon logged errors:\n{}", bad.join("\n"));
}

/// No two networks share a subnet; no two endpoints an address or MAC; no two running
/// containers a host port (per host address and protocol).
fn assert_no_duplicates(host: &TestHost) {
    let mut subnets = BTreeMap::new();
    let mut network_names = BTreeSet::new();
    for id in must(host, &["network", "ls", "-q", "--no-trunc"]).lines() {
        let n = &host.json(&["network", "inspect", id])[0];
        let name = n["Name"].as_str().unwrap();
        assert!(network_names.insert(name.to_string()), "two networks are named {name}");
        for cfg in n["IPAM"]["Config"].as_array().into_iter().flatten() {
            if let Some(subnet) = cfg["Subnet"].as_str() {
                let name = n["Name"].as_str().unwrap().to_string();
                if let Some(other) = subnets.insert(subnet.to_string(), name.clone()) {
                    panic!("networks {other} and {name} share the subnet {subnet}");
                }
            }
        }
    }
    let (mut addrs, mut macs, mut ports) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut container_names = BTreeSet::new();
    for id in must(host, &["ps", "-aq", "--no-trunc"]).lines() {
        let c = &host.json(&["inspect", id])[0];
        let name = c["Name"].as_str().unwrap().to_string();
        assert!(container_names.insert(name.clone()), "two containers are named {name}");
        for (net, ep) in c["NetworkSettings"]["Networks"].as_object().into_iter().flatten() {
            let what = format!("{name} on {net}");
            for (seen, field) in [(&mut addrs, "IPAddress"), (&mut macs, "MacAddress")] {
                let value = ep[field].as_str().unwrap_or("");
                if value.is_empty() {
                    continue;
                }
                if let Some(other) = seen.insert(value.to_string(), what.clone()) {
                    panic!("{other} and {what} share the {field} {value}");
                }
            }
        }
        if c["State"]["Running"] != true {
            continue;
        }
        for (spec, bindings) in c["NetworkSettings"]["Ports"].as_object().into_iter().flatten() {
            let proto = spec.split_once('/').map(|(_, p)| p).unwrap_or("tcp");
            for b in bindings.as_array().into_iter().flatten() {
                let key = format!("{}:{}/{proto}", b["HostIp"].as_str().unwrap(), b["HostPort"].as_str().unwrap());
                if let Some(other) = ports.insert(key.clone(), name.clone()) {
                    panic!("{other} and {name} both publish {key}");
                }
            }
        }
    }
    assert!(addrs.len() > CLIENTS, "too few endpoints to compare: {addrs:?}");
}
