//! The manager's Docker rules and undo paths, through the in-memory `FakeKernel`: no root, no
//! kernel. End-to-end tests (tests/) check the same paths against the real kernel.
use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use super::Manager;
use crate::{
    api_types::{ConnectRequest, CreateNetwork, RunContainer},
    container_files::ContainerFiles,
    dns::Dns,
    error::Error,
    kernel::fake::{FakeHost, FakeKernel},
    store::Store,
    supervisor::Exit,
};

/// Removes its directory on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A manager on a fake host with its store and run dir in a directory removed on drop.
struct Fixture {
    manager: Manager<FakeKernel>,
    dir: PathBuf,
    _cleanup: TempDir,
}

impl Fixture {
    async fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netd-manager-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let manager = Self::start(&dir, FakeKernel::new(&dir.join("run"))).await;
        Fixture { manager, _cleanup: TempDir(dir.clone()), dir }
    }

    async fn start(dir: &Path, kernel: FakeKernel) -> Manager<FakeKernel> {
        let store = Store::open(&dir.join("state")).unwrap();
        Manager::start(store, kernel, &dir.join("run"), Dns::new(vec![], 64), Default::default()).await.unwrap()
    }

    /// Stops the manager (as a crash would: nothing is torn down) and starts a new one on the
    /// same store and host.
    async fn restart(self) -> Self {
        let Fixture { manager, dir, _cleanup } = self;
        let Manager { kernel, store, .. } = manager;
        drop(store);
        Fixture { manager: Self::start(&dir, kernel).await, dir, _cleanup }
    }

    fn host(&self) -> FakeHost {
        self.manager.kernel.host()
    }

    fn kernel(&self) -> &FakeKernel {
        &self.manager.kernel
    }

    async fn network(&self, name: &str, subnet: Option<&str>) {
        let req = CreateNetwork { name: name.into(), subnet: subnet.map(str::to_string), ..Default::default() };
        self.manager.create_network(req).await.unwrap();
    }

    async fn run(&self, name: &str, network: &str, cmd: &[&str]) -> Result<String, Error> {
        let req = RunContainer {
            name: Some(name.into()),
            network: Some(network.into()),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        self.manager.run(req).await.map(|c| c.container.id)
    }

    async fn connect(&self, network: &str, container: &str) -> Result<(), Error> {
        let req = ConnectRequest { container: container.into(), ..Default::default() };
        self.manager.connect(network, req).await
    }

    async fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.manager.containers().await.into_iter().map(|c| c.container.name).collect();
        names.sort();
        names
    }

    async fn ip(&self, name: &str) -> Ipv4Addr {
        self.manager.container(name).await.unwrap().container.endpoints[0].ip
    }

    fn files_exist(&self, id: &str) -> bool {
        ContainerFiles::new(&self.dir.join("run"), id).hosts().exists()
    }
}

#[tokio::test]
async fn run_makes_netns_endpoint_files_and_process_and_rm_removes_them() {
    let fx = Fixture::new("run").await;
    fx.network("n1", Some("10.10.0.0/24")).await;
    let id = fx.run("web", "n1", &["sleep", "600"]).await.unwrap();
    let host = fx.host();
    let netns = fx.dir.join("run/netns/web");
    assert!(host.netns.contains(&netns));
    assert_eq!(
        host.veths.values().map(|(ns, name, ip)| (ns.clone(), name.as_str(), *ip)).collect::<Vec<_>>(),
        [(netns.clone(), "eth0", Ipv4Addr::new(10, 10, 0, 2))]
    );
    assert_eq!(host.default_routes.get(&netns), Some(&Ipv4Addr::new(10, 10, 0, 1)));
    let pid = host.processes[&id];
    assert_eq!(host.commands[&pid], (netns.to_string_lossy().into_owned(), vec!["sleep".into(), "600".into()]));
    assert!(fx.files_exist(&id));

    let before = fx.kernel().calls().len();
    fx.manager.remove_container("web", true).await.unwrap();
    let host = fx.host();
    assert!(host.netns.is_empty() && host.veths.is_empty() && host.processes.is_empty(), "{host:?}");
    assert!(!fx.files_exist(&id));
    // Teardown runs in reverse order of setup: the processes, the endpoint, the netns.
    let ops: Vec<String> =
        fx.kernel().calls()[before..].iter().map(|c| c.split(' ').next().unwrap().to_string()).collect();
    assert_eq!(ops, ["kill", "remove_endpoint", "remove_netns"]);
    assert!(fx.names().await.is_empty());
}

#[tokio::test]
async fn a_failed_step_of_run_undoes_every_earlier_one() {
    let fx = Fixture::new("run-undo").await;
    fx.network("n1", None).await;
    let clean = fx.host();
    for (op, skip) in [("create_netns", 0), ("add_endpoint", 0), ("spawn", 0)] {
        fx.kernel().fail(op, skip);
        let err = fx.run("web", "n1", &["sleep", "600"]).await.unwrap_err();
        assert_eq!(err.to_string(), format!("injected failure: {op}"));
        assert_eq!(fx.host(), clean, "a failed {op} left something behind");
        assert!(fx.names().await.is_empty(), "a failed {op} left the container in the store");
        assert!(ContainerFiles::ids(&fx.dir.join("run")).is_empty(), "a failed {op} left files");
    }
    // Nothing was lost: the same run now works.
    fx.run("web", "n1", &["sleep", "600"]).await.unwrap();
}

#[tokio::test]
async fn the_namespace_maker_is_told_of_runs_in_flight_until_they_end() {
    let fx = Fixture::new("in-flight").await;
    fx.network("n1", None).await;
    fx.run("web", "n1", &["sleep", "600"]).await.unwrap();
    assert_eq!(fx.kernel().runs_in_flight(), [1, 0]);
    // A failed run ends too.
    fx.kernel().fail("add_endpoint", 0);
    fx.run("api", "n1", &["sleep", "600"]).await.unwrap_err();
    assert_eq!(fx.kernel().runs_in_flight(), [1, 0, 1, 0]);
}

#[tokio::test]
async fn a_failed_second_endpoint_of_start_undoes_the_first() {
    let fx = Fixture::new("start-undo").await;
    fx.network("n1", None).await;
    fx.network("n2", None).await;
    fx.run("web", "n1", &["sleep", "600"]).await.unwrap();
    fx.connect("n2", "web").await.unwrap();
    fx.manager.stop("web", None).await.unwrap();
    let stopped = fx.host();
    assert!(stopped.netns.is_empty() && stopped.veths.is_empty() && stopped.processes.is_empty());
    fx.kernel().fail("add_endpoint", 1);
    fx.manager.start_container("web").await.unwrap_err();
    assert_eq!(fx.host(), stopped);
    let c = fx.manager.container("web").await.unwrap().container;
    assert_eq!(c.stopped.as_ref().map(|s| s.attachments.len()), Some(2), "still stopped with both attachments");
    fx.manager.start_container("web").await.unwrap();
    assert_eq!(fx.host().veths.len(), 2);
}

#[tokio::test]
async fn a_failed_connect_leaves_the_container_as_it_was() {
    let fx = Fixture::new("connect-undo").await;
    fx.network("n1", None).await;
    fx.network("n2", None).await;
    fx.run("web", "n1", &[]).await.unwrap();
    let before = fx.host();
    fx.kernel().fail("add_endpoint", 0);
    fx.connect("n2", "web").await.unwrap_err();
    assert_eq!(fx.host(), before);
    assert_eq!(fx.manager.container("web").await.unwrap().container.endpoints.len(), 1);
}

#[tokio::test]
async fn removals_commit_first_and_clean_up_a_failed_teardown_step() {
    let fx = Fixture::new("rm-teardown").await;
    fx.network("n1", None).await;
    fx.run("web", "n1", &["sleep", "600"]).await.unwrap();
    fx.kernel().fail("remove_endpoint", 0);
    fx.manager.remove_container("web", true).await.unwrap();
    assert!(fx.names().await.is_empty());
    // The clean-up after the failed step removed the veth the store no longer knows.
    let host = fx.host();
    assert!(host.veths.is_empty() && host.netns.is_empty() && host.processes.is_empty(), "{host:?}");
}

#[tokio::test]
async fn connect_and_disconnect_follow_dockers_rules_for_each_mode() {
    let fx = Fixture::new("modes").await;
    fx.network("n1", None).await;
    fx.run("own", "n1", &[]).await.unwrap();
    fx.run("hosted", "host", &[]).await.unwrap();
    fx.run("alone", "none", &[]).await.unwrap();
    fx.run("shared", "container:own", &[]).await.unwrap();
    let text = |r: Result<(), Error>| r.unwrap_err().to_string();
    assert_eq!(
        text(fx.connect("n1", "shared").await),
        "container sharing network namespace with another container or host cannot be connected to any other network"
    );
    assert_eq!(
        text(fx.connect("n1", "hosted").await),
        "container sharing network namespace with another container or host cannot be connected to any other network"
    );
    assert_eq!(
        text(fx.connect("host", "own").await),
        "container cannot be disconnected from host network or connected to host network"
    );
    assert_eq!(
        text(fx.connect("n1", "alone").await),
        "container cannot be connected to multiple networks with one of the networks in private (none) mode"
    );
    assert_eq!(text(fx.connect("n1", "own").await), "endpoint with name own already exists in network n1");
    assert_eq!(
        text(fx.manager.disconnect("host", "hosted", false).await),
        "container cannot be disconnected from host network or connected to host network"
    );
    let own = fx.manager.container("own").await.unwrap().container.id;
    assert_eq!(
        text(fx.manager.disconnect("n1", "shared", false).await),
        format!(
            "container {} is not connected to network n1",
            fx.manager.container("shared").await.unwrap().container.id
        )
    );
    // `none` → disconnected leaves a bare netns that may then join a network.
    fx.manager.disconnect("none", "alone", false).await.unwrap();
    fx.connect("n1", "alone").await.unwrap();
    // Disconnecting the gateway's network (n1 sorts before n2) moves the default route to the
    // next one.
    fx.network("n2", None).await;
    fx.connect("n2", "own").await.unwrap();
    fx.manager.disconnect("n1", "own", false).await.unwrap();
    let netns = fx.dir.join("run/netns/own");
    let n2 = fx.manager.network("n2").await.unwrap().0;
    assert_eq!(fx.host().default_routes.get(&netns), Some(&n2.ipam.unwrap().gateway));
    // The owner of a shared netns can go (Docker's): its running sharer keeps the netns, which
    // is left with `lo` only, also after a restart; removed, it releases the netns.
    fx.manager.remove_container(&own, true).await.unwrap();
    let kept = fx.dir.join("run/netns/shared");
    let shared = fx.manager.container("shared").await.unwrap().container;
    assert_eq!((shared.running(), shared.netns.as_deref()), (true, kept.to_str()));
    let host = fx.host();
    assert!(host.netns.contains(&kept) && !host.netns.contains(&netns), "{host:?}");
    assert!(host.veths.values().all(|(ns, _, _)| ns != &netns), "{host:?}");
    let fx = fx.restart().await;
    let shared = fx.manager.container("shared").await.unwrap().container;
    assert_eq!((shared.running(), shared.netns.as_deref()), (true, kept.to_str()));
    fx.manager.remove_container("shared", true).await.unwrap();
    assert!(!fx.host().netns.contains(&kept));
}

#[tokio::test]
async fn stop_releases_the_network_and_start_keeps_requested_addresses() {
    let fx = Fixture::new("stop-start").await;
    fx.network("n1", Some("10.20.0.0/24")).await;
    let req = RunContainer {
        name: Some("fixed".into()),
        network: Some("n1".into()),
        ip: Some(Ipv4Addr::new(10, 20, 0, 50)),
        ..Default::default()
    };
    fx.manager.run(req).await.unwrap();
    fx.run("moving", "n1", &[]).await.unwrap();
    fx.manager.stop("fixed", None).await.unwrap();
    fx.manager.stop("moving", None).await.unwrap();
    assert!(fx.host().veths.is_empty());
    // The network can go now that nothing is attached (seed 000), but not while it is in use.
    fx.run("taker", "n1", &[]).await.unwrap();
    fx.manager.start_container("fixed").await.unwrap();
    fx.manager.start_container("moving").await.unwrap();
    assert_eq!(fx.ip("fixed").await, Ipv4Addr::new(10, 20, 0, 50), "--ip is kept across stop/start");
    assert_eq!(fx.ip("taker").await, Ipv4Addr::new(10, 20, 0, 2), "the freed address went to the next container");
    assert_eq!(fx.ip("moving").await, Ipv4Addr::new(10, 20, 0, 3));
}

#[tokio::test]
async fn an_exhausted_network_refuses_the_next_container_and_changes_nothing() {
    let fx = Fixture::new("exhausted").await;
    fx.network("tiny", Some("10.30.0.0/30")).await;
    fx.run("one", "tiny", &[]).await.unwrap();
    let before = fx.host();
    let err = fx.run("two", "tiny", &[]).await.unwrap_err();
    assert!(matches!(err, Error::NoAddresses { .. }), "{err}");
    assert_eq!(fx.host(), before);
    assert_eq!(fx.names().await, ["one"]);
}

#[tokio::test]
async fn a_command_exit_stops_the_container_or_removes_it_with_rm() {
    let fx = Fixture::new("exit").await;
    fx.network("n1", None).await;
    let kept = fx.run("kept", "n1", &["true"]).await.unwrap();
    let req = RunContainer {
        name: Some("gone".into()),
        network: Some("n1".into()),
        cmd: vec!["true".into()],
        auto_remove: true,
        ..Default::default()
    };
    let gone = fx.manager.run(req).await.unwrap().container.id;
    for id in [&kept, &gone] {
        let pid = fx.host().processes[id];
        fx.kernel().exit(id);
        fx.manager.process_exited(Exit { container: id.clone(), pid, code: 3 }).await;
    }
    let c = fx.manager.container("kept").await.unwrap().container;
    assert_eq!(c.stopped.map(|s| s.exit_code), Some(3));
    assert_eq!(fx.names().await, ["kept"]);
    let host = fx.host();
    assert!(host.veths.is_empty() && host.netns.is_empty(), "{host:?}");
    // An exit of a process the container no longer records changes nothing.
    fx.manager.start_container("kept").await.unwrap();
    fx.manager.process_exited(Exit { container: kept.clone(), pid: 1, code: 9 }).await;
    assert!(fx.manager.container("kept").await.unwrap().container.running());
}

#[tokio::test]
async fn container_chains_of_any_depth_run_in_the_owners_netns() {
    let fx = Fixture::new("chain").await;
    fx.network("n1", None).await;
    fx.run("c0", "n1", &["sleep", "1"]).await.unwrap();
    for i in 1..=12 {
        fx.run(&format!("c{i}"), &format!("container:c{}", i - 1), &["sleep", "1"]).await.unwrap();
    }
    let owner = fx.dir.join("run/netns/c0").to_string_lossy().into_owned();
    let host = fx.host();
    assert_eq!(host.commands.len(), 13);
    for (netns, _) in host.commands.values() {
        assert_eq!(netns, &owner);
    }
}

#[tokio::test]
async fn a_restart_finds_exited_commands_vanished_netns_and_lost_veths() {
    let fx = Fixture::new("recovery").await;
    fx.network("n1", None).await;
    let exited = fx.run("exited", "n1", &["sleep", "1"]).await.unwrap();
    fx.run("nonetns", "n1", &[]).await.unwrap();
    fx.run("noveth", "n1", &[]).await.unwrap();
    fx.run("fine", "n1", &["sleep", "600"]).await.unwrap();
    // Sharers: of a container whose command ended (it keeps the netns), and of one whose netns
    // vanished (it has exited too).
    fx.run("keeper", "container:exited", &["sleep", "600"]).await.unwrap();
    fx.run("lost", "container:nonetns", &["sleep", "600"]).await.unwrap();
    fx.kernel().exit(&exited);
    fx.kernel().lose_netns(&fx.dir.join("run/netns/nonetns"));
    let noveth = fx.manager.container("noveth").await.unwrap().container.endpoints[0].host_ifname.clone();
    fx.kernel().lose_veth(&noveth);
    let fx = fx.restart().await;
    let exit_code = |name: &'static str| {
        let fx = &fx;
        async move { fx.manager.container(name).await.unwrap().container.stopped.map(|s| s.exit_code) }
    };
    assert_eq!(exit_code("exited").await, Some(255), "its command ended while no daemon watched");
    assert_eq!(exit_code("nonetns").await, Some(255), "its netns vanished");
    assert_eq!(exit_code("fine").await, None);
    assert_eq!(exit_code("noveth").await, None);
    assert_eq!(exit_code("keeper").await, None);
    assert_eq!(exit_code("lost").await, Some(255), "its target's netns vanished");
    let host = fx.host();
    assert!(host.veths.contains_key(&noveth), "the lost veth was not made again: {host:?}");
    assert_eq!(host.veths.len(), 2, "only fine and noveth have veths: {host:?}");
    assert_eq!(host.processes.len(), 2, "fine and keeper: {host:?}");
    assert!(
        host.netns.contains(&fx.dir.join("run/netns/keeper")) && !host.netns.contains(&fx.dir.join("run/netns/exited"))
    );
    assert!(!host.netns.contains(&fx.dir.join("run/netns/nonetns")));
}

#[tokio::test]
async fn the_default_route_goes_through_the_normal_network_whose_name_sorts_first() {
    use crate::kernel::Kernel;
    let fx = Fixture::new("internal").await;
    let internal = CreateNetwork { name: "int".into(), internal: true, ..Default::default() };
    fx.manager.create_network(internal).await.unwrap();
    fx.network("n1", None).await;
    fx.network("n2", None).await;
    let gateway = |name: &'static str| {
        let fx = &fx;
        async move { fx.manager.network(name).await.unwrap().0.ipam.unwrap().gateway }
    };
    let (g_int, g1, g2) = (gateway("int").await, gateway("n1").await, gateway("n2").await);
    let index = |name: &'static str| {
        let fx = &fx;
        async move { fx.manager.network(name).await.unwrap().0.index }
    };
    let (i_int, i1) = (index("int").await, index("n1").await);
    let route = |name: &str| fx.host().default_routes.get(&netns_of(&fx.dir, name)).copied();
    // What the datapath was given for each endpoint of `name`: (network index, internal).
    let datapath = |name: &'static str| {
        let fx = &fx;
        async move {
            let c = fx.manager.container(name).await.unwrap().container;
            let host = fx.host();
            c.endpoints.iter().map(|ep| host.datapath[&ep.host_ifname]).collect::<Vec<_>>()
        }
    };

    // Only on an internal network: no default route; the datapath knows it is internal.
    fx.run("cc", "int", &[]).await.unwrap();
    assert_eq!(route("cc"), None);
    assert_eq!(datapath("cc").await, [(i_int, true)]);
    // Inspect shows no gateway for the internal network (network inspect still has the pool's).
    let view = crate::views::container(&fx.manager.container("cc").await.unwrap(), &fx.dir.join("run"));
    assert_eq!(view.network_settings.networks["int"].gateway, "");
    assert!(!view.network_settings.networks["int"].ip_address.is_empty());
    // A normal network connected later gives it its way out, whatever the order.
    fx.connect("n1", "cc").await.unwrap();
    assert_eq!(route("cc"), Some(g1));
    assert_eq!(datapath("cc").await, [(i_int, true), (i1, false)]);
    let view = crate::views::container(&fx.manager.container("cc").await.unwrap(), &fx.dir.join("run"));
    assert_eq!(view.network_settings.networks["n1"].gateway, g1.to_string());
    fx.connect("n2", "cc").await.unwrap();
    assert_eq!(route("cc"), Some(g1), "a normal network that sorts after n1 does not take the route over");
    // One that sorts first does (libnetwork's gateway endpoint); disconnected, it gives it back.
    fx.network("a0", None).await;
    let g_a0 = gateway("a0").await;
    fx.connect("a0", "cc").await.unwrap();
    assert_eq!(route("cc"), Some(g_a0));
    fx.manager.disconnect("a0", "cc", false).await.unwrap();
    assert_eq!(route("cc"), Some(g1));
    // Disconnecting the network with the route moves it to the next normal one, then away.
    fx.manager.disconnect("n1", "cc", false).await.unwrap();
    assert_eq!(route("cc"), Some(g2));
    fx.manager.disconnect("n2", "cc", false).await.unwrap();
    assert_eq!(route("cc"), None);
    // Disconnecting an endpoint that never carried the route leaves the route alone.
    fx.run("dd", "n1", &[]).await.unwrap();
    fx.connect("int", "dd").await.unwrap();
    assert_eq!(route("dd"), Some(g1));
    assert_eq!(datapath("dd").await, [(i1, false), (i_int, true)]);
    let before = fx.kernel().calls().len();
    fx.manager.disconnect("int", "dd", false).await.unwrap();
    assert_eq!(route("dd"), Some(g1));
    assert!(!fx.kernel().calls()[before..].iter().any(|c| c.starts_with("set_default_route")));
    fx.connect("int", "dd").await.unwrap();

    // Stopped and started again with [int, n1], `start` gives the route to n1.
    fx.connect("n1", "cc").await.unwrap();
    fx.manager.stop("cc", None).await.unwrap();
    fx.manager.start_container("cc").await.unwrap();
    assert_eq!(route("cc"), Some(g1));
    assert_eq!(datapath("cc").await, [(i_int, true), (i1, false)]);

    // A restart re-adopts the endpoints with their internal flag and repairs the routes: an
    // internal-only container loses a default route found there, the others get theirs.
    fx.run("ee", "int", &[]).await.unwrap();
    fx.kernel().set_default_route(&netns_of(&fx.dir, "ee"), Some(g_int)).await.unwrap();
    fx.kernel().set_default_route(&netns_of(&fx.dir, "cc"), None).await.unwrap();
    fx.kernel().set_default_route(&netns_of(&fx.dir, "dd"), Some(g_int)).await.unwrap();
    let fx = fx.restart().await;
    let route = |name: &str| fx.host().default_routes.get(&netns_of(&fx.dir, name)).copied();
    assert_eq!((route("cc"), route("dd"), route("ee")), (Some(g1), Some(g1), None));
    let host = fx.host();
    for (name, expected) in [("cc", vec![(i_int, true), (i1, false)]), ("dd", vec![(i1, false), (i_int, true)])] {
        let c = fx.manager.container(name).await.unwrap().container;
        let live: Vec<_> = c.endpoints.iter().map(|ep| host.datapath[&ep.host_ifname]).collect();
        assert_eq!(live, expected, "datapath entries of {name} after the restart");
    }
    // An internal endpoint whose veth was lost is made again as internal.
    let c = fx.manager.container("cc").await.unwrap().container;
    fx.kernel().lose_veth(&c.endpoints[0].host_ifname);
    let fx = fx.restart().await;
    assert!(fx.host().veths.contains_key(&c.endpoints[0].host_ifname));
    assert_eq!(fx.host().datapath[&c.endpoints[0].host_ifname], (i_int, true));
    assert_eq!(fx.host().default_routes.get(&netns_of(&fx.dir, "cc")), Some(&g1));
}

fn netns_of(dir: &Path, name: &str) -> PathBuf {
    dir.join("run/netns").join(name)
}

#[tokio::test]
async fn stats_list_each_running_endpoint_with_its_interface_counters() {
    use crate::{api_types::EndpointCount, netlink::LinkCounters};
    let fx = Fixture::new("stats").await;
    fx.network("n1", Some("10.30.0.0/24")).await;
    fx.network("n2", Some("10.31.0.0/24")).await;
    fx.run("zed", "n1", &[]).await.unwrap();
    fx.run("alpha", "n2", &[]).await.unwrap();
    fx.connect("n1", "alpha").await.unwrap();
    fx.run("gone", "n1", &[]).await.unwrap();
    fx.manager.stop("gone", None).await.unwrap();
    let alpha = fx.manager.container("alpha").await.unwrap().container;
    let counters = LinkCounters { rx_packets: 1, rx_bytes: 2, tx_packets: 3, tx_bytes: 4 };
    fx.kernel().set_counters(&alpha.endpoints[1].host_ifname, counters);

    let stats = fx.manager.stats().await.unwrap();
    let count = |container: &str, network: &str, interface: &str, ip: [u8; 4], c: LinkCounters| EndpointCount {
        container: container.into(),
        network: network.into(),
        interface: interface.into(),
        ip: ip.into(),
        rx_packets: c.rx_packets,
        rx_bytes: c.rx_bytes,
        tx_packets: c.tx_packets,
        tx_bytes: c.tx_bytes,
    };
    // By container name, each one's endpoints in attachment order; stopped ones have none.
    assert_eq!(
        stats.endpoints,
        [
            count("alpha", "n2", "eth0", [10, 31, 0, 2], LinkCounters::default()),
            count("alpha", "n1", "eth1", [10, 30, 0, 3], counters),
            count("zed", "n1", "eth0", [10, 30, 0, 2], LinkCounters::default()),
        ]
    );
    // An interface gone behind the daemon's back is left out; the others are still shown.
    fx.kernel().lose_veth(&alpha.endpoints[0].host_ifname);
    let stats = fx.manager.stats().await.unwrap();
    let shown: Vec<_> = stats.endpoints.iter().map(|e| (e.container.as_str(), e.interface.as_str())).collect();
    assert_eq!(shown, [("alpha", "eth1"), ("zed", "eth0")]);
}

// ---- Published ports (`-p`) ----

type Published = std::collections::BTreeMap<(Option<Ipv4Addr>, u16, crate::ports::Proto), (Ipv4Addr, u16)>;

impl Fixture {
    async fn run_p(&self, name: &str, network: &str, specs: &[&str]) -> Result<String, Error> {
        let req = RunContainer {
            name: Some(name.into()),
            network: Some(network.into()),
            ports: crate::ports::parse_specs(specs).unwrap(),
            ..Default::default()
        };
        self.manager.run(req).await.map(|c| c.container.id)
    }

    async fn published(&self, name: &str) -> Vec<(Ipv4Addr, u16, u16)> {
        let c = self.manager.container(name).await.unwrap().container;
        c.published.iter().map(|p| (p.host_ip, p.host_port, p.container_port)).collect()
    }
}

fn entry(addr: Option<[u8; 4]>, port: u16, tcp: bool, backend: Ipv4Addr, bport: u16) -> Published {
    let proto = if tcp { crate::ports::Proto::Tcp } else { crate::ports::Proto::Udp };
    [((addr.map(Ipv4Addr::from), port, proto), (backend, bport))].into()
}

#[tokio::test]
async fn run_publishes_once_after_the_endpoint_and_rm_unpublishes_first() {
    let fx = Fixture::new("publish").await;
    fx.network("n1", Some("10.10.0.0/24")).await;
    let before = fx.kernel().calls().len();
    fx.run_p("web", "n1", &["8080:80", "127.0.0.1:5353:53/udp"]).await.unwrap();
    let ops: Vec<String> =
        fx.kernel().calls()[before..].iter().map(|c| c.split(' ').next().unwrap().to_string()).collect();
    assert_eq!(ops, ["create_netns", "add_endpoint", "publish"]);
    assert!(fx.kernel().calls().contains(&"publish 2".to_string()));
    let ip = fx.ip("web").await;
    let mut expected = entry(None, 8080, true, ip, 80);
    expected.extend(entry(Some([127, 0, 0, 1]), 5353, false, ip, 53));
    assert_eq!(fx.host().published, expected);
    // The endpoint named in the error texts is the one that has the ports.
    let c = fx.manager.container("web").await.unwrap().container;
    assert_eq!(c.published[0].backend, c.endpoints[0].ip);

    let before = fx.kernel().calls().len();
    fx.manager.remove_container("web", true).await.unwrap();
    let ops: Vec<String> =
        fx.kernel().calls()[before..].iter().map(|c| c.split(' ').next().unwrap().to_string()).collect();
    assert_eq!(ops, ["unpublish", "kill", "remove_endpoint", "remove_netns"]);
    assert!(fx.host().published.is_empty());
    // Freed at once: the same ports publish again.
    fx.run_p("again", "n1", &["8080:80", "127.0.0.1:5353:53/udp"]).await.unwrap();
}

#[tokio::test]
async fn a_failed_publish_undoes_the_container() {
    let fx = Fixture::new("publish-fails").await;
    fx.network("n1", Some("10.10.0.0/24")).await;
    let host = fx.host();
    fx.kernel().fail("publish", 0);
    assert!(fx.run_p("web", "n1", &["8080:80", "8081:81"]).await.is_err());
    assert_eq!(fx.host(), host);
    assert!(fx.names().await.is_empty());
}

#[tokio::test]
async fn connect_publishes_the_bindings_no_endpoint_carries_all_or_nothing() {
    let fx = Fixture::new("connect-publish").await;
    let internal =
        CreateNetwork { name: "int".into(), subnet: Some("10.20.0.0/24".into()), internal: true, ..Default::default() };
    fx.manager.create_network(internal).await.unwrap();
    fx.network("n1", Some("10.10.0.0/24")).await;
    fx.network("n2", Some("10.30.0.0/24")).await;
    fx.run_p("web", "int", &["8080:80"]).await.unwrap();
    assert!(fx.published("web").await.is_empty() && fx.host().published.is_empty());
    // A failed publish takes the new endpoint away again.
    let host = fx.host();
    fx.kernel().fail("publish", 0);
    fx.connect("n1", "web").await.unwrap_err();
    assert_eq!(fx.host(), host);
    assert_eq!(fx.manager.container("web").await.unwrap().container.endpoints.len(), 1);

    fx.connect("n1", "web").await.unwrap();
    let ip = fx.manager.container("web").await.unwrap().container.endpoints[1].ip;
    assert_eq!(fx.host().published, entry(None, 8080, true, ip, 80));
    assert_eq!(fx.published("web").await, [(Ipv4Addr::UNSPECIFIED, 8080, 80)]);
    // Another network: the bindings stay on the endpoint that has them.
    fx.connect("n2", "web").await.unwrap();
    assert_eq!(fx.host().published, entry(None, 8080, true, ip, 80));
    assert_eq!(fx.published("web").await, [(Ipv4Addr::UNSPECIFIED, 8080, 80)]);
    let last_ip = || async { fx.manager.container("web").await.unwrap().container.endpoints.last().unwrap().ip };
    let ip2 = last_ip().await;
    // Disconnected from the gateway's network: the ports move to the next gateway (n2), with
    // their host ports.
    fx.manager.disconnect("n1", "web", false).await.unwrap();
    assert_eq!(fx.host().published, entry(None, 8080, true, ip2, 80));
    assert_eq!(fx.published("web").await, [(Ipv4Addr::UNSPECIFIED, 8080, 80)]);
    // A network whose name sorts first becomes the gateway: the ports move to it; a failed
    // publish there leaves them where they were.
    fx.network("a0", Some("10.40.0.0/24")).await;
    let host = fx.host();
    fx.kernel().fail("publish", 0);
    fx.connect("a0", "web").await.unwrap_err();
    assert_eq!(fx.host(), host);
    fx.connect("a0", "web").await.unwrap();
    let ip3 = last_ip().await;
    assert_eq!(fx.host().published, entry(None, 8080, true, ip3, 80));
    fx.manager.disconnect("a0", "web", false).await.unwrap();
    assert_eq!(fx.host().published, entry(None, 8080, true, ip2, 80));
    // No gateway left: released.
    fx.manager.disconnect("n2", "web", false).await.unwrap();
    assert!(fx.host().published.is_empty() && fx.published("web").await.is_empty());
}

#[tokio::test]
async fn conflicts_use_dockers_texts_and_change_nothing() {
    let fx = Fixture::new("conflicts").await;
    fx.network("n1", Some("10.10.0.0/24")).await;
    fx.run_p("aa", "n1", &["8080:80", "127.0.0.1:8081:80", "5353:53/udp"]).await.unwrap();
    let host = fx.host();
    let calls = fx.kernel().calls().len();
    let refused = |name: &str, err: Error, why: &str| {
        let text = err.to_string();
        let prefix = format!("driver failed programming external connectivity on endpoint {name} (");
        assert!(text.starts_with(&prefix), "{text}");
        let (id, rest) = text[prefix.len()..].split_once("): ").unwrap();
        assert_eq!(id.len(), 64, "{text}");
        assert_eq!(rest, why);
    };
    for (specs, why) in [
        (vec!["8080:80"], "Bind for 0.0.0.0:8080 failed: port is already allocated"),
        (vec!["9000:90", "8080:80"], "Bind for 0.0.0.0:8080 failed: port is already allocated"),
        (vec!["127.0.0.1:8081:80"], "Bind for 127.0.0.1:8081 failed: port is already allocated"),
        // Overlapping addresses: what docker-proxy's listen met.
        (vec!["8081:80"], "Error starting userland proxy: listen tcp4 0.0.0.0:8081: bind: address already in use"),
        (
            vec!["127.0.0.1:8080:80"],
            "Error starting userland proxy: listen tcp4 127.0.0.1:8080: bind: address already in use",
        ),
        (vec!["5353:53/udp"], "Bind for 0.0.0.0:5353 failed: port is already allocated"),
        // Twice in one container.
        (vec!["7000:70", "7000:71"], "Bind for 0.0.0.0:7000 failed: port is already allocated"),
    ] {
        refused("bb", fx.run_p("bb", "n1", &specs).await.unwrap_err(), why);
    }
    // A host socket holds a port.
    fx.kernel().bind_socket(Ipv4Addr::UNSPECIFIED, 7070, crate::ports::Proto::Tcp);
    refused(
        "bb",
        fx.run_p("bb", "n1", &["127.0.0.1:7070:80"]).await.unwrap_err(),
        "Error starting userland proxy: listen tcp4 127.0.0.1:7070: bind: address already in use",
    );
    // Nothing changed: no kernel call, no container.
    assert_eq!(fx.host(), FakeHost { sockets: fx.host().sockets, ..host });
    assert_eq!(fx.kernel().calls().len(), calls);
    assert_eq!(fx.names().await, ["aa"]);
    // Another protocol, another address of the same port: free.
    fx.run_p("cc", "n1", &["8080:80/udp", "127.0.0.2:8081:80"]).await.unwrap();
    // `container:` refuses ports; `host` and `none` keep them and publish nothing.
    let err = fx.run_p("dd", "container:aa", &["80"]).await.unwrap_err();
    assert_eq!(err.to_string(), "conflicting options: port publishing and the container type network mode");
    let published = fx.host().published.len();
    fx.run_p("hh", "host", &["80"]).await.unwrap();
    fx.run_p("nn", "none", &["80"]).await.unwrap();
    assert_eq!(fx.host().published.len(), published);
    assert!(fx.published("hh").await.is_empty() && fx.published("nn").await.is_empty());
    assert_eq!(fx.manager.container("hh").await.unwrap().container.ports.len(), 1);
}

#[tokio::test]
async fn random_ports_come_sequentially_from_the_range_and_are_repicked_at_start() {
    let fx = Fixture::new("random").await;
    fx.network("n1", Some("10.10.0.0/24")).await;
    fx.kernel().set_local_ports(crate::host_ports::LocalPorts { start: 40000, end: 40005, reserved: [40001].into() });
    fx.kernel().bind_socket(Ipv4Addr::UNSPECIFIED, 40002, crate::ports::Proto::Tcp);
    fx.run_p("aa", "n1", &["80", "81"]).await.unwrap();
    // 40001 is reserved, 40002 held by a host socket.
    assert_eq!(fx.published("aa").await, [(Ipv4Addr::UNSPECIFIED, 40000, 80), (Ipv4Addr::UNSPECIFIED, 40003, 81)]);
    fx.manager.stop("aa", None).await.unwrap();
    assert!(fx.host().published.is_empty());
    fx.manager.start_container("aa").await.unwrap();
    // After the last one handed out, wrapping at the end.
    assert_eq!(fx.published("aa").await, [(Ipv4Addr::UNSPECIFIED, 40004, 80), (Ipv4Addr::UNSPECIFIED, 40005, 81)]);
    fx.run_p("bb", "n1", &["127.0.0.1::80", "8000-8003:90"]).await.unwrap();
    // Wrapped (40000 was freed by the stop), and a host range's first free port.
    assert_eq!(fx.published("bb").await, [(Ipv4Addr::LOCALHOST, 40000, 80), (Ipv4Addr::UNSPECIFIED, 8000, 90)]);
    fx.run_p("cc", "n1", &["8000-8003:90"]).await.unwrap();
    assert_eq!(fx.published("cc").await, [(Ipv4Addr::UNSPECIFIED, 8001, 90)]);
    // Every port of the range taken.
    let err = fx.run_p("dd", "n1", &["80", "81", "82"]).await.unwrap_err();
    assert!(err.to_string().ends_with("): all ports are allocated"), "{err}");
    assert_eq!(fx.host().published.len(), 5);
}

#[tokio::test]
async fn a_restart_keeps_exactly_the_running_containers_ports() {
    let fx = Fixture::new("keep-published").await;
    fx.network("n1", Some("10.10.0.0/24")).await;
    fx.run_p("aa", "n1", &["8080:80"]).await.unwrap();
    fx.run_p("bb", "n1", &["9090:90"]).await.unwrap();
    fx.run_p("gone", "n1", &["7070:70"]).await.unwrap();
    let ip_a = fx.ip("aa").await;
    let ip_b = fx.ip("bb").await;
    fx.run_p("cc", "n1", &["6060:60"]).await.unwrap();
    fx.manager.remove_container("gone", true).await.unwrap();
    // A crash left an entry of a port nobody has (published before the commit).
    crate::kernel::Kernel::publish(
        fx.kernel(),
        &[crate::datapath::PublishedPort {
            host_addr: None,
            host_port: 5050,
            proto: crate::ports::Proto::Tcp,
            backend_addr: Ipv4Addr::new(10, 10, 0, 99),
            backend_port: 50,
        }],
    )
    .unwrap();
    let fx = fx.restart().await;
    let mut expected = entry(None, 8080, true, ip_a, 80);
    expected.extend(entry(None, 9090, true, ip_b, 90));
    expected.extend(entry(None, 6060, true, fx.ip("cc").await, 60));
    assert_eq!(fx.host().published, expected);
    assert!(fx.kernel().calls().iter().any(|c| c == "keep_published 3"), "{:?}", fx.kernel().calls());
    // Disconnecting the network the ports lead to unpublishes them.
    fx.manager.disconnect("n1", "bb", false).await.unwrap();
    assert!(fx.published("bb").await.is_empty());
    assert!(!fx.host().published.keys().any(|(_, port, _)| *port == 9090));
}

#[tokio::test]
async fn an_overlay_network_needs_a_cluster_store_and_nothing_is_made_without_one() {
    let fx = Fixture::new("overlay-no-cluster").await;
    let calls = fx.kernel().calls().len();
    let req = CreateNetwork { name: "ov".into(), driver: Some("overlay".into()), ..Default::default() };
    let err = fx.manager.create_network(req).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "overlay networks need a cluster store: start netd daemon with --cluster-store etcd://HOST:PORT --advertise-addr IP"
    );
    assert!(fx.manager.network("ov").await.is_err());
    assert_eq!(fx.kernel().calls().len(), calls, "a refused overlay network touched the host");
}
