//! Smoke tests: the whole harness on tiny settings (one round of short measurements on the
//! veth topology, its routed "container → outside" floor included; two rounds of the
//! control-plane probes on netd with 3 endpoints; one round of the "container → outside" rows
//! on veth and netd; one round of container↔container, published-port and "container → outside"
//! rows on Docker's containers on docker0 and on a netd network, with dockerds of the bench's
//! own; no installs), checking the shape of what it writes, that
//! nothing is left behind and that the root netns's forwarding setting is untouched. They
//! never assert a timing: numbers on a shared CI machine mean nothing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

// Root tests are ignored by a plain `cargo test` (shown as ignored, with the reason) and run
// by `cargo xtask test`, which runs as root with `--include-ignored`.
#[test]
#[ignore = "needs root (creates network namespaces); cargo xtask test runs it"]
fn harness_writes_results_of_the_expected_shape() {
    let forwarding = root_ip_forward();
    let (json, out, pid) = run_bench(&["--topologies", "veth", "--rounds", "1", "--secs", "0.3"], None);
    assert_eq!(json["schema"], 3);
    assert!(json["date"].as_str().unwrap().ends_with('Z'));
    assert!(json["machine"]["kernel"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(json["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(json["settings"]["rounds"], 1);

    let topologies = json["topologies"].as_array().unwrap();
    assert_eq!(topologies.len(), 1);
    assert_eq!(topologies[0]["name"], "veth");
    assert_eq!(topologies[0]["role"], "floor");
    assert_eq!(topologies[0]["available"], true);

    let rows = json["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for want in [
        "tcp_rr.tps.same_cpu",
        "tcp_crr.cps.same_cpu",
        "udp_rr.tps.same_cpu",
        "tcp_stream.gbps.same_cpu",
        "published_tcp_rr.tps.same_cpu",
        "egress_tcp_stream.gbps.same_cpu",
        "egress_tcp_rr.tps.same_cpu",
        "egress_tcp_crr.cps.same_cpu",
    ] {
        assert!(ids.contains(&want), "row {want} missing from {ids:?}");
    }
    // Our own load tool must have produced numbers; iperf3 may be absent (--no-install), in
    // which case its rows are null and the failure is listed under `errors`.
    for row in rows {
        for key in ["metric", "unit", "higher_is_better", "results", "ratios"] {
            assert!(!row[key].is_null(), "row {} lacks {key}", row["id"]);
        }
        let veth = &row["results"]["veth"];
        let probe = row["probe"].as_str().unwrap();
        if let Some(why) = topologies[0]["unsupported"][probe].as_str() {
            // A veth pair has no published ports: listed as "n/a", no numbers.
            assert_eq!(why, "n/a", "row {}", row["id"]);
            assert!(veth.is_null());
            continue;
        }
        let id = row["id"].as_str().unwrap();
        if (id.starts_with("tcp_stream") || id.starts_with("egress_tcp_stream")) && veth.is_null() {
            assert!(!json["errors"].as_array().unwrap().is_empty());
            continue;
        }
        assert_eq!(veth["samples"].as_array().unwrap().len(), 1, "row {}", row["id"]);
        for key in ["median", "min", "max"] {
            assert!(veth[key].as_f64().is_some_and(|v| v > 0.0), "row {}: {key} = {}", row["id"], veth[key]);
        }
    }

    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("| Metric | CPUs | veth (floor) |"), "{md}");
    assert!(md.contains("TCP_CRR conn/s"));
    assert!(md.contains("TCP_CRR container→outside conn/s"), "{md}");
    assert!(md.contains("- container→outside: "), "{md}");
    let png = std::fs::read(out.path().join("results.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    assert_nothing_left(pid);
    assert_eq!(root_ip_forward(), forwarding, "the root netns's net.ipv4.ip_forward changed");
}

/// net.ipv4.ip_forward of the netns the test runs in (the root one): the routed floor turns
/// forwarding on in its router netns only.
/// Runs netd-bench with `args` (plus `--no-install` and an output dir of its own) and, when
/// given, `netd` as the binary under test; asserts it succeeded. Returns results.json, the
/// output dir (kept alive for the caller) and the bench's pid.
fn run_bench(args: &[&str], netd: Option<&Path>) -> (serde_json::Value, tempfile::TempDir, u32) {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new(build_dir().join("netd-bench"));
    command.args(args).args(["--no-install", "--out-dir"]).arg(out.path());
    if let Some(netd) = netd {
        command.env("NETD_BIN", netd);
    }
    let mut child = command.spawn().expect("running netd-bench");
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(status.success(), "netd-bench exited with {status}");
    let json = serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap()).unwrap();
    (json, out, pid)
}

fn root_ip_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim().to_string()
}

/// Nothing of run `pid` is left behind: netns, temp dirs and bpffs dirs all carry nb-<pid>.
fn assert_nothing_left(pid: u32) {
    let tag = format!("nb-{pid}");
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n == &tag || n.starts_with(&format!("{tag}-")))
                    .collect()
            })
            .unwrap_or_default()
    };
    for dir in [
        PathBuf::from("/run/netns"),
        std::env::temp_dir(),
        PathBuf::from("/sys/fs/bpf"),
        PathBuf::from("/run/netd-bench"),
    ] {
        let left = names(&dir);
        assert!(left.is_empty(), "left behind in {}: {left:?}", dir.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&tag), "mounts left behind: {mounts}");
}

/// The directory of this build's binaries (target/release), found from this test's own
/// path (target/release/deps/smoke-…), not from paths compiled in: a target/ dir copied from
/// another clone must not run that clone's binaries.
fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).expect("test binary in <target>/<profile>/deps").to_path_buf()
}

/// The netd binary the bench would use, if there is one.
fn netd_binary() -> PathBuf {
    let path = std::env::var_os("NETD_BIN").map(PathBuf::from).unwrap_or_else(|| build_dir().join("netd"));
    assert!(path.is_file(), "no netd binary at {}: set NETD_BIN or build it (cargo xtask build)", path.display());
    path
}

#[test]
#[ignore = "needs root (creates network namespaces) and a netd build; cargo xtask test runs it"]
fn control_plane_rows_on_netd() {
    let netd = netd_binary();
    let probes = "attach,run-rm,parallel,rss,rss1000";
    let args = ["--topologies", "netd", "--probes", probes, "--rounds", "2", "--endpoints", "3"];
    let (json, out, pid) = run_bench(&args, Some(&netd));
    let netd_status = &json["topologies"][0];
    assert_eq!(netd_status["name"], "netd");
    assert_eq!(netd_status["available"], true, "{netd_status}");
    assert!(netd_status["unsupported"].as_object().unwrap().is_empty(), "{netd_status}");
    assert!(json["errors"].as_array().unwrap().is_empty(), "{}", json["errors"]);
    let rows = json["rows"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("row {id} missing"));
    let samples = |id: &str| row(id)["results"]["netd"]["samples"].as_array().unwrap().len();

    let headline = |id: &str| row(id)["results"]["netd"]["median"].as_f64().unwrap();

    // Attach and detach: percentiles over every attach (detach) of both rounds (≥100 in all).
    let attaches = json["settings"]["attach_per_round"].as_u64().unwrap() as usize * 2;
    assert!(attaches >= 100);
    for op in ["attach", "detach"] {
        for p in ["p50", "p99"] {
            let id = format!("{op}.{p}_ms");
            assert_eq!(row(&id)["aggregate"], format!("{p} of all samples"));
            assert_eq!(samples(&id), attaches, "{id}");
        }
        let (p50, p99) = (headline(&format!("{op}.p50_ms")), headline(&format!("{op}.p99_ms")));
        assert!(0.0 < p50 && p50 <= p99, "{op}: p50 {p50}, p99 {p99}");
    }

    // run/rm with and without a network: p50 of every cycle of both rounds; the network's
    // cost is the difference of the two p50s (whatever its sign on a noisy machine).
    let cycles = json["settings"]["cycles_per_round"].as_u64().unwrap() as usize * 2;
    assert!(cycles >= 20);
    for (op, cost) in [("run", "run.network_cost_ms"), ("rm", "rm.network_cost_ms")] {
        let (none, net) = (format!("{op}.none_ms"), format!("{op}.net_ms"));
        for id in [&none, &net] {
            assert_eq!(samples(id), cycles, "{id}");
            assert!(headline(id) > 0.0, "{id}");
        }
        assert_eq!(row(cost)["aggregate"], format!("{net} − {none}"));
        assert!((headline(cost) - (headline(&net) - headline(&none))).abs() < 1e-9, "{cost}");
        assert_eq!(row(cost)["goal"]["value"], 5.0, "{cost}");
        assert_eq!(row(cost)["goal_met"].as_bool(), Some(headline(cost) <= 5.0), "{cost}");
    }

    // 32 clients one after another and at once: one sample each per round, and their ratio.
    for id in ["parallel.sequential_s", "parallel.at_once_s"] {
        assert_eq!(samples(id), 2, "{id}");
        assert!(headline(id) > 0.0, "{id}");
    }
    let speedup = headline("parallel.speedup");
    assert!((speedup - headline("parallel.sequential_s") / headline("parallel.at_once_s")).abs() < 1e-9);
    assert_eq!(row("parallel.speedup")["goal_met"].as_bool(), Some(speedup >= 2.0));

    // Idle RSS: one sample per round; the scale probe: once, labelled with its count.
    assert_eq!(samples("daemon.rss_mib"), 2);
    assert_eq!(row("daemon.rss_mib")["aggregate"], "median of rounds");
    for id in ["endpoints.create_s", "endpoints.rss_mib", "endpoints.remove_s"] {
        assert_eq!(row(id)["aggregate"], "once");
        assert!(row(id)["metric"].as_str().unwrap().contains("3 endpoints"));
        assert_eq!(samples(id), 1, "{id}");
        assert!(row(id)["results"]["netd"]["median"].as_f64().unwrap() > 0.0);
        // The goals are set for 1,000 endpoints: shown, not checked with 3.
        assert_eq!(row(id)["goal"]["endpoints"], 1000, "{id}");
        assert!(row(id)["goal_met"].is_null(), "{id}");
    }
    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("daemon RSS with 3 endpoints MiB"), "{md}");
    assert!(md.contains(" netd goal |"), "{md}");
    assert!(md.contains("- netd goals (issue #14): "), "{md}");

    assert_nothing_left(pid);
}

#[test]
#[ignore = "needs root (creates network namespaces) and a netd build; cargo xtask test runs it"]
fn egress_rows_on_veth_and_netd() {
    let netd = netd_binary();
    let forwarding = root_ip_forward();
    let args = ["--topologies", "veth,netd", "--probes", "egress-stream,egress-rr,egress-crr", "--rounds", "1"];
    let (json, out, pid) = run_bench(&[&args[..], &["--secs", "0.3"]].concat(), Some(&netd));
    let topologies = json["topologies"].as_array().unwrap();
    let status_of = |name: &str| topologies.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{name}"));
    let (veth, netd) = (status_of("veth"), status_of("netd"));
    assert_eq!(veth["available"], true, "{veth}");
    assert!(veth["unsupported"].as_object().unwrap().is_empty(), "the routed floor: {veth}");
    assert_eq!(netd["available"], true, "{netd}");
    // netd's way out is checked once at set-up: either every egress row has numbers, or each
    // is unavailable with the reason (a netd without egress yet), never a made-up number.
    let netd_egress = netd["unsupported"].as_object().unwrap();
    for why in netd_egress.values() {
        let why = why.as_str().unwrap();
        assert!(why.starts_with("unavailable: no TCP exchange with the outside server 198.51.100.1: "), "{why}");
    }
    if !netd_egress.is_empty() {
        eprintln!("netd egress unavailable here: {netd_egress:?}");
    }

    let rows = json["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for quantity in ["egress_tcp_stream.gbps", "egress_tcp_rr.tps", "egress_tcp_crr.cps"] {
        assert!(ids.contains(&format!("{quantity}.same_cpu").as_str()), "{quantity} missing from {ids:?}");
    }
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let probe = row["probe"].as_str().unwrap();
        assert!(probe.starts_with("egress_"), "row {id} of probe {probe}");
        assert!(row["ratios"].as_object().unwrap().contains_key("netd/veth"), "row {id}");
        let iperf3_missing = id.starts_with("egress_tcp_stream") && !json["errors"].as_array().unwrap().is_empty();
        for (name, unavailable) in [("veth", false), ("netd", netd_egress.contains_key(probe))] {
            let cell = &row["results"][name];
            if unavailable || (iperf3_missing && cell.is_null()) {
                assert!(cell.is_null(), "row {id}, {name}: {cell}");
                continue;
            }
            assert_eq!(cell["samples"].as_array().unwrap().len(), 1, "row {id}, {name}");
            assert!(cell["median"].as_f64().is_some_and(|v| v > 0.0), "row {id}, {name}: {cell}");
        }
    }
    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("| TCP_RR container→outside trans/s ↑ | same |"), "{md}");
    assert!(md.contains("| netd/veth |"), "{md}");

    assert_nothing_left(pid);
    assert_eq!(root_ip_forward(), forwarding, "the root netns's net.ipv4.ip_forward changed");
}

#[test]
#[ignore = "needs root, docker.io (cargo xtask test installs it) and a netd build; cargo xtask test runs it"]
fn docker_containers_on_netd_beside_docker0() {
    let netd = netd_binary();
    let forwarding = root_ip_forward();
    let args = ["--topologies", "docker0,docker-netd", "--probes", "rr,pub-rr,egress-rr", "--rounds", "1"];
    let (json, out, pid) = run_bench(&[&args[..], &["--secs", "0.3"]].concat(), Some(&netd));
    let topologies = json["topologies"].as_array().unwrap();
    let status_of = |name: &str| topologies.iter().find(|t| t["name"] == name).unwrap_or_else(|| panic!("{name}"));
    let (docker0, on_netd) = (status_of("docker0"), status_of("docker-netd"));
    for t in [docker0, on_netd] {
        // Both have every probe asked for: no cell may be unavailable.
        assert_eq!(t["available"], true, "{t}");
        assert!(t["unsupported"].as_object().unwrap().is_empty(), "{t}");
    }
    assert_eq!(on_netd["role"], "docker_on_netd");
    // The containers are on a netd network of the run's, not on docker0.
    let network = on_netd["info"]["network"].as_str().unwrap();
    assert!(network.starts_with(&format!("nb-{pid}-")), "{on_netd}");
    assert_eq!(docker0["info"]["network"], "bridge");

    let rows = json["rows"].as_array().unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for want in ["tcp_rr.tps.same_cpu", "published_tcp_rr.tps.same_cpu", "egress_tcp_rr.tps.same_cpu"] {
        assert!(ids.contains(&want), "row {want} missing from {ids:?}");
    }
    for row in rows {
        let id = row["id"].as_str().unwrap();
        for name in ["docker0", "docker-netd"] {
            let cell = &row["results"][name];
            assert_eq!(cell["samples"].as_array().unwrap().len(), 1, "row {id}, {name}");
            assert!(cell["median"].as_f64().is_some_and(|v| v > 0.0), "row {id}, {name}: {cell}");
        }
        let ratio = row["ratios"]["docker-netd/docker0"].as_f64();
        assert!(ratio.is_some_and(|r| r > 0.0), "row {id}: {}", row["ratios"]);
    }
    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("| docker0 | docker-netd | docker-netd/docker0 |"), "{md}");

    assert_nothing_left(pid);
    assert_eq!(root_ip_forward(), forwarding, "the root netns's net.ipv4.ip_forward changed");
}

#[test]
#[ignore = "needs root, Debian's etcd-server (cargo xtask test installs it) and a netd build; cargo xtask test runs it"]
fn overlay_rows_against_bare_vxlan_and_convergence() {
    let netd = netd_binary();
    let args = ["--topologies", "vxlan,netd-overlay", "--probes", "rr", "--rounds", "1", "--secs", "0.3"];
    let (json, out, pid) = run_bench(&args, Some(&netd));
    let topologies = json["topologies"].as_array().unwrap();
    for t in topologies {
        assert_eq!(t["available"], true, "{t}");
    }
    for row in json["rows"].as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        for name in ["vxlan", "netd-overlay"] {
            let cell = &row["results"][name];
            assert!(cell["median"].as_f64().is_some_and(|v| v > 0.0), "row {id}, {name}: {cell}");
        }
        assert!(row["ratios"]["netd-overlay/vxlan"].as_f64().is_some_and(|r| r > 0.0), "row {id}: {}", row["ratios"]);
    }
    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("| vxlan (floor) | netd-overlay | netd-overlay/vxlan |"), "{md}");
    assert_nothing_left(pid);

    let conv = tempfile::tempdir().unwrap();
    let mut command = Command::new(build_dir().join("netd-bench"));
    command
        .args(["convergence", "--hosts", "3", "--samples", "3", "--out-dir"])
        .arg(conv.path())
        .env("NETD_BIN", &netd);
    let mut child = command.spawn().expect("running netd-bench convergence");
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "netd-bench convergence failed");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(conv.path().join("convergence.json")).unwrap()).unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["hosts"], 3);
    for field in ["p50_ms", "p99_ms", "after_return_p50_ms", "run_p50_ms"] {
        assert!(row[field].as_f64().is_some_and(|v| v > 0.0), "{field}: {row}");
    }
    assert!(std::fs::read_to_string(conv.path().join("convergence.md")).unwrap().contains("| 3 |"));
    assert!(conv.path().join("convergence.png").metadata().is_ok_and(|m| m.len() > 0), "no convergence figure");
    assert_nothing_left(pid);
}
