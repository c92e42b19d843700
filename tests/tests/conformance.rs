//! The Docker-fidelity suite, netd's side: every scenario of tests/conformance/scenarios/
//! (Docker command lines) runs against netd on a fresh test host, and each step's exit code,
//! stdout and stderr are compared with what a real dockerd 20.10 did (the recordings in
//! tests/conformance/docker/, made by `cargo xtask conformance --record`; or a directory
//! named by NETD_CONFORMANCE_DOCKER, which `cargo xtask conformance` records afresh). A step
//! may differ only as a documented departure (tests/conformance/departures.toml, explained
//! in docs/docker-departures.md). The table of every step is written to
//! target/conformance/report.md and printed.
use netd_conformance::{compare, load_scenarios, recordings_dir, suite_dir, Departures, Outcome, Recording, Report};
use netd_tests::TestHost;

#[test]
fn netd_prints_what_docker_prints() {
    let suite = suite_dir();
    let departures = Departures::load(&suite.join("departures.toml")).unwrap();
    let doc = std::fs::read_to_string(suite.join("../../docs/docker-departures.md")).unwrap();
    departures.check(&doc).unwrap();
    let only = std::env::var("NETD_CONFORMANCE_ONLY").ok();
    let scenarios = load_scenarios(&suite.join("scenarios")).unwrap();
    assert!(!scenarios.is_empty(), "no scenarios in {}", suite.display());
    let recordings = recordings_dir();

    let mut report = Report::default();
    for scenario in scenarios.iter().filter(|s| only.as_deref().is_none_or(|o| s.name.contains(o))) {
        let docker = Recording::load(&recordings, scenario).unwrap_or_else(|e| panic!("{e:#}"));
        let host = TestHost::start();
        let netd: Vec<Outcome> = scenario
            .steps
            .iter()
            .map(|step| {
                let args: Vec<&str> = step.args.iter().map(String::as_str).collect();
                let out = host.netd(&args);
                let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                Outcome { exit: out.status.code().unwrap_or(-1), stdout: text(out.stdout), stderr: text(out.stderr) }
            })
            .collect();
        drop(host);
        let docker: Vec<Outcome> = docker.steps.into_iter().map(|s| s.outcome).collect();
        compare(scenario, &docker, &netd, &departures, &mut report);
    }

    let markdown = report.markdown();
    let out_dir = suite.join("../../target/conformance");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("report.md"), &markdown).unwrap();
    println!("{markdown}");
    assert_eq!(report.differing(), 0, "steps differ from Docker without a documented departure:\n{markdown}");
    if only.is_none() {
        let unused = report.unused(&departures);
        assert!(unused.is_empty(), "departures that no step needs any more (remove them): {unused:?}");
    }
}
