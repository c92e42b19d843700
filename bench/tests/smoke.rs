//! Smoke test: the whole harness on tiny settings (veth topology only, one round, short
//! measurements, no docker, no installs), checking the shape of what it writes. It never
//! asserts a timing: numbers on a shared CI machine mean nothing.

use std::process::Command;

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn harness_writes_results_of_the_expected_shape() {
    if !is_root() {
        eprintln!("skipped: needs root (creates network namespaces)");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netd-bench"))
        .args([
            "--topologies",
            "veth",
            "--rounds",
            "1",
            "--secs",
            "0.3",
            "--no-install",
            "--out-dir",
        ])
        .arg(out.path())
        .spawn()
        .expect("running netd-bench");
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(status.success(), "netd-bench exited with {status}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], 1);
    assert!(json["date"].as_str().unwrap().ends_with('Z'));
    assert!(json["machine"]["kernel"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));
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
        if row["id"].as_str().unwrap().starts_with("tcp_stream") && veth.is_null() {
            assert!(!json["errors"].as_array().unwrap().is_empty());
            continue;
        }
        assert_eq!(
            veth["samples"].as_array().unwrap().len(),
            1,
            "row {}",
            row["id"]
        );
        for key in ["median", "min", "max"] {
            assert!(
                veth[key].as_f64().is_some_and(|v| v > 0.0),
                "row {}: {key} = {}",
                row["id"],
                veth[key]
            );
        }
    }

    let md = std::fs::read_to_string(out.path().join("results.md")).unwrap();
    assert!(md.contains("| Metric | CPUs | veth (floor) |"), "{md}");
    assert!(md.contains("TCP_CRR conn/s"));
    let png = std::fs::read(out.path().join("results.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    // Nothing of this run is left behind: its names all start with nb-<pid>-.
    let prefix = format!("nb-{pid}-");
    let leftovers: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !leftovers.iter().any(|n| n.starts_with(&prefix)),
        "netns left behind: {leftovers:?}"
    );
}
