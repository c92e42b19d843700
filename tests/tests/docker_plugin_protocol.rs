//! Docker's remote network and IPAM driver protocol, driven directly on netd's plugin socket
//! the way dockerd 20.10 drives it (no dockerd here: tests/tests/docker_driver.rs has the real
//! one). The "sandboxes" are netns this test makes, configured as libnetwork would after Join:
//! the peer moved in, renamed to eth0, MAC and address set, default route via the gateway.
use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use netd_tests::{agreement::assert_store_and_kernel_agree, in_netns, sh, TestHost, OUTSIDE_ADDR};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const HOST_ADDR: &str = "198.51.100.2";

/// One HTTP/1.1 call as dockerd's plugin client makes it: `POST /Iface.Method`, a JSON body
/// (none for Activate), no Content-Type. Returns the status and the JSON reply.
fn call(socket: &Path, method: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "POST /{method} HTTP/1.1\r\nHost: netd\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap_or_else(|e| panic!("{method}: read: {e}"));
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{method}: no HTTP reply: {reply:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{method}: {head}"));
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{method}: reply {body:?}: {e}"));
    (status, json)
}

/// Whether a command succeeded (bounded by its own timeouts).
fn sh_status(cmd: &[&str]) -> bool {
    std::process::Command::new(cmd[0]).args(&cmd[1..]).output().unwrap().status.success()
}

/// A call that must succeed (200).
fn ok(socket: &Path, method: &str, body: Value) -> Value {
    let (status, reply) = call(socket, method, Some(body));
    assert_eq!(status, 200, "{method}: {reply}");
    reply
}

/// A 64-hex-digit id like Docker's, unique per test run.
fn docker_id(tag: &str, n: u8) -> String {
    let hex: String = tag.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}{n:02x}{}", "0".repeat(64))[..64].to_string()
}

/// A "sandbox": a netns the test made (removed on drop), as Docker's SandboxKey.
struct Sandbox {
    name: String,
}

impl Sandbox {
    fn new(name: String) -> Self {
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Sandbox { name }
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// What libnetwork does after Join (osl `AddInterface`, `SetGateway`).
    fn take_interface(&self, host: &TestHost, src_name: &str, mac: &str, address: &str, gateway: &str) {
        host.in_host_ok(&["ip", "link", "set", src_name, "netns", &self.path().to_string_lossy()]);
        let n = &self.name;
        sh(&["ip", "-n", n, "link", "set", src_name, "name", "eth0"]);
        sh(&["ip", "-n", n, "link", "set", "eth0", "address", mac]);
        sh(&["ip", "-n", n, "addr", "add", address, "dev", "eth0"]);
        sh(&["ip", "-n", n, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", n, "route", "add", "default", "via", gateway]);
    }

    /// What libnetwork does after Leave: the interface back to the host netns under its
    /// SrcName.
    fn give_back(&self, host: &TestHost, src_name: &str) {
        let n = &self.name;
        sh(&["ip", "-n", n, "link", "set", "eth0", "down"]);
        sh(&["ip", "-n", n, "link", "set", "eth0", "name", src_name]);
        let host_ns = host.netns_path(&host.host_ns);
        sh(&["ip", "-n", n, "link", "set", src_name, "netns", &host_ns.to_string_lossy()]);
    }

    fn ping(&self, ip: &str) -> bool {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, "ping", "-c1", "-W2", ip])
            .output()
            .unwrap();
        out.status.success()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// One Docker endpoint as dockerd makes it: address from netd's IPAM, CreateEndpoint, Join.
struct Joined {
    id: String,
    address: String,
    src_name: String,
    gateway: String,
}

fn create_and_join(socket: &Path, network: &str, pool: &str, id: String) -> Joined {
    let address = ok(socket, "IpamDriver.RequestAddress", json!({"PoolID":pool,"Address":"","Options":null}));
    let address = address["Address"].as_str().unwrap().to_string();
    let created = ok(
        socket,
        "NetworkDriver.CreateEndpoint",
        json!({"NetworkID":network,"EndpointID":id,"Interface":{"Address":address,"AddressIPv6":"","MacAddress":""},
               "Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":8080}]}}),
    );
    let ip = address.split('/').next().unwrap();
    let octets: Vec<String> = ip.split('.').map(|o| format!("{:02x}", o.parse::<u8>().unwrap())).collect();
    assert_eq!(created, json!({"Interface":{"MacAddress":format!("02:42:{}", octets.join(":"))}}));
    let join = ok(
        socket,
        "NetworkDriver.Join",
        json!({"NetworkID":network,"EndpointID":id,"SandboxKey":"/var/run/docker/netns/0123456789ab","Options":null}),
    );
    assert_eq!(join["InterfaceName"]["DstPrefix"], "eth");
    assert_eq!(join["DisableGatewayService"], true);
    let src_name = join["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    assert!(src_name.len() <= 15, "{src_name}");
    let gateway = join["Gateway"].as_str().unwrap().to_string();
    assert!(!gateway.contains('/'), "Gateway must be a bare address: {gateway}");
    ok(socket, "NetworkDriver.EndpointOperInfo", json!({"NetworkID":network,"EndpointID":id}));
    Joined { id, address, src_name, gateway }
}

/// A TCP server on `port` in `server` that answers with the client's address as it saw it,
/// and a client in `client` connecting to `addr:port`; returns that answer.
fn client_address_seen(server: &Path, client: &Path, addr: &str, port: u16) -> String {
    let listener = in_netns(server, move || TcpListener::bind(("0.0.0.0", port)).expect("bind"));
    let serve = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().expect("accept");
        conn.write_all(peer.ip().to_string().as_bytes()).unwrap();
    });
    let target: std::net::SocketAddr = format!("{addr}:{port}").parse().unwrap();
    let seen = in_netns(client, move || {
        let mut conn = TcpStream::connect_timeout(&target, Duration::from_secs(5)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut seen = String::new();
        conn.read_to_string(&mut seen).expect("read");
        seen
    });
    serve.join().unwrap();
    seen
}

fn connect_refused_or_timeout(client: &Path, addr: &str, port: u16) -> bool {
    let target: std::net::SocketAddr = format!("{addr}:{port}").parse().unwrap();
    in_netns(client, move || TcpStream::connect_timeout(&target, Duration::from_secs(2)).is_err())
}

#[test]
fn dockerd_call_sequence_runs_traffic_publishes_survives_kill_9_and_leaves_nothing() {
    let mut host = TestHost::start();
    let socket = host.docker_plugin_socket();
    let outside = host.netns_path(&host.outside_ns);
    let before = host.snapshot();

    // Activation, as dockerd does on first use of the driver.
    let (status, activate) = call(&socket, "Plugin.Activate", None);
    assert_eq!((status, activate), (200, json!({"Implements":["NetworkDriver","IpamDriver"]})));
    assert_eq!(ok(&socket, "NetworkDriver.GetCapabilities", json!({}))["Scope"], "local");
    ok(&socket, "IpamDriver.GetCapabilities", json!({}));
    ok(&socket, "IpamDriver.GetDefaultAddressSpaces", json!({}));

    // `docker network create -d netd --ipam-driver netd`.
    let network = docker_id(&host.tag, 0xee);
    let pool = ok(
        &socket,
        "IpamDriver.RequestPool",
        json!({"AddressSpace":"netd-local","Pool":"","SubPool":"","Options":{},"V6":false}),
    );
    let (pool_id, subnet) = (pool["PoolID"].as_str().unwrap().to_string(), pool["Pool"].as_str().unwrap().to_string());
    let gw = ok(
        &socket,
        "IpamDriver.RequestAddress",
        json!({"PoolID":pool_id,"Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}),
    );
    ok(
        &socket,
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID":network,"Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{}},
               "IPv4Data":[{"AddressSpace":"netd-local","Pool":subnet,"Gateway":gw["Address"]}],"IPv6Data":[]}),
    );
    let shown = &host.json(&["network", "inspect", &network])[0];
    assert_eq!(shown["Driver"], "netd");
    assert_eq!(shown["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    // netd's own commands leave it to Docker.
    let name = shown["Name"].as_str().unwrap().to_string();
    assert!(host.fails(&["network", "rm", &name]).contains("owned by Docker"));

    // An overlapping pool from Docker's own IPAM is refused with Docker's error form.
    let (status, refused) = call(
        &socket,
        "NetworkDriver.CreateNetwork",
        Some(json!({"NetworkID":docker_id(&host.tag, 0xef),"Options":{},
                    "IPv4Data":[{"AddressSpace":"LocalDefault","Pool":subnet,"Gateway":gw["Address"]}]})),
    );
    assert_eq!(status, 500);
    assert!(refused["Err"].as_str().unwrap().contains("overlaps"), "{refused}");

    // Two containers.
    let sandboxes = [Sandbox::new(format!("nt-{}-c1", host.tag)), Sandbox::new(format!("nt-{}-c2", host.tag))];
    let eps: Vec<Joined> =
        (1..=2).map(|n| create_and_join(&socket, &network, &pool_id, docker_id(&host.tag, n))).collect();
    for (sb, ep) in sandboxes.iter().zip(&eps) {
        let shown = &host.json(&["network", "inspect", &network])[0]["Containers"][&ep.id];
        sb.take_interface(&host, &ep.src_name, shown["MacAddress"].as_str().unwrap(), &ep.address, &ep.gateway);
    }
    let ip = |n: usize| eps[n].address.split('/').next().unwrap().to_string();
    assert!(sandboxes[0].ping(&ip(1)) && sandboxes[1].ping(&ip(0)), "containers cannot ping each other");
    assert_eq!(client_address_seen(&sandboxes[1].path(), &sandboxes[0].path(), &ip(1), 7001), ip(0));
    // Egress to the outside netns, masqueraded.
    assert!(sandboxes[0].ping(OUTSIDE_ADDR), "no egress");
    // `netd stats` counts Docker's endpoints as their containers do.
    let stats = host.stats();
    let row = stats["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ip"] == ip(0).as_str())
        .unwrap_or_else(|| panic!("no stats row for {}: {stats}", ip(0)))
        .clone();
    assert!(row["tx_packets"].as_u64().unwrap() >= 3 && row["rx_packets"].as_u64().unwrap() >= 3, "{row}");
    // Isolated from netd's own networks, both ways.
    host.ok(&["network", "create", "dp-iso"]);
    host.ok(&["run", "-d", "--name", "dp-iso1", "--network", "dp-iso"]);
    let iso_ip = host.ip_of("dp-iso1", "dp-iso");
    let iso_ns = host.container_netns("dp-iso1");
    let net = format!("--net={}", iso_ns.display());
    assert!(sh_status(&["nsenter", &net, "ping", "-c1", "-W2", OUTSIDE_ADDR]), "the netd container has no network");
    let ping_from_iso = sh_status(&["nsenter", &net, "ping", "-c1", "-W1", &ip(0)]);
    assert!(!ping_from_iso, "a netd network reaches a Docker network");
    assert!(!sandboxes[0].ping(&iso_ip), "a Docker network reaches a netd network");
    host.ok(&["rm", "-f", "dp-iso1"]);
    host.ok(&["network", "rm", "dp-iso"]);
    assert_store_and_kernel_agree(&host, "no-container-commands");

    // `-p 8080:8080` and `-p 8081` (netd picks the host port).
    let portmap = json!([{"Proto":6,"IP":"","Port":8080,"HostIP":"","HostPort":8080,"HostPortEnd":8080},
                         {"Proto":6,"IP":"","Port":8081,"HostIP":"","HostPort":0,"HostPortEnd":0}]);
    ok(
        &socket,
        "NetworkDriver.ProgramExternalConnectivity",
        json!({"NetworkID":network,"EndpointID":eps[0].id,"Options":{"com.docker.network.portmap":portmap}}),
    );
    assert_eq!(client_address_seen(&sandboxes[0].path(), &outside, HOST_ADDR, 8080), OUTSIDE_ADDR);

    // kill -9 in the middle: the pinned datapath keeps forwarding; the restarted daemon knows
    // every network, endpoint, pool and port.
    host.stop_daemon(Signal::SIGKILL);
    assert!(sandboxes[0].ping(&ip(1)), "traffic stopped with the daemon");
    host.start_daemon();
    assert!(sandboxes[1].ping(&ip(0)), "traffic stopped after the restart");
    assert_eq!(client_address_seen(&sandboxes[0].path(), &outside, HOST_ADDR, 8080), OUTSIDE_ADDR);
    let join = ok(&socket, "NetworkDriver.Join", json!({"NetworkID":network,"EndpointID":eps[1].id}));
    assert_eq!(join["InterfaceName"]["SrcName"], eps[1].src_name.as_str());
    let next = ok(&socket, "IpamDriver.RequestAddress", json!({"PoolID":pool_id,"Address":"","Options":{}}));
    assert!(![ip(0), ip(1), gw["Address"].as_str().unwrap().split('/').next().unwrap().to_string()]
        .contains(&next["Address"].as_str().unwrap().split('/').next().unwrap().to_string()));
    ok(
        &socket,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID":pool_id,"Address":next["Address"].as_str().unwrap().split('/').next().unwrap()}),
    );

    // docker stop: Revoke, Leave, the interface back, DeleteEndpoint, the address released.
    ok(&socket, "NetworkDriver.RevokeExternalConnectivity", json!({"NetworkID":network,"EndpointID":eps[0].id}));
    assert!(connect_refused_or_timeout(&outside, HOST_ADDR, 8080), "port still published after Revoke");
    assert_store_and_kernel_agree(&host, "no-container-commands");
    for (sb, ep) in sandboxes.iter().zip(&eps) {
        ok(&socket, "NetworkDriver.Leave", json!({"NetworkID":network,"EndpointID":ep.id}));
        sb.give_back(&host, &ep.src_name);
        ok(&socket, "NetworkDriver.DeleteEndpoint", json!({"NetworkID":network,"EndpointID":ep.id}));
        let bare = ep.address.split('/').next().unwrap();
        ok(&socket, "IpamDriver.ReleaseAddress", json!({"PoolID":pool_id,"Address":bare}));
    }
    // docker network rm: DeleteNetwork, the gateway's address, the pool.
    ok(&socket, "NetworkDriver.DeleteNetwork", json!({"NetworkID":network}));
    ok(
        &socket,
        "IpamDriver.ReleaseAddress",
        json!({"PoolID":pool_id,"Address":gw["Address"].as_str().unwrap().split('/').next().unwrap()}),
    );
    ok(&socket, "IpamDriver.ReleasePool", json!({"PoolID":pool_id}));
    assert_eq!(host.snapshot(), before, "something of the Docker network is left");
    // The pool is free again: the next one is the same.
    let again = ok(&socket, "IpamDriver.RequestPool", json!({"AddressSpace":"netd-local"}));
    assert_eq!(again["Pool"], subnet.as_str());
    ok(&socket, "IpamDriver.ReleasePool", json!({"PoolID":again["PoolID"]}));
}

#[test]
fn the_socket_is_root_only_and_off_with_no_docker_plugin() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let host = TestHost::start();
    let meta = std::fs::metadata(host.docker_plugin_socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let (status, reply) = call(&host.docker_plugin_socket(), "NetworkDriver.NoSuchMethod", Some(json!({})));
    assert_eq!(status, 500);
    assert!(reply["Err"].as_str().unwrap().contains("NoSuchMethod"));
    drop(host);

    static OFF: &[&str] = &["--no-docker-plugin"];
    let host = TestHost::start_with(netd_tests::DaemonOptions { daemon_args: OFF, ..Default::default() });
    assert!(!host.docker_plugin_socket().exists());
}

/// Sends one call to a daemon that is to die at its crash point: no reply is expected.
fn call_into_crash(socket: &Path, method: &str, body: Value) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.to_string();
    let request = format!("POST /{method} HTTP/1.1\r\nHost: netd\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    assert!(reply.is_empty(), "{method} answered although the daemon was to die: {reply}");
}

/// `kill -9` at each crash point of the Docker operations: after a restart the store and the
/// kernel agree, what Docker saw succeed exists and what it saw fail does not, and the whole
/// sequence can run on.
#[test]
fn crash_points_of_docker_operations_leave_store_and_kernel_agreeing() {
    /// (network known, endpoint known, port published)
    type State = (bool, bool, bool);
    use std::os::unix::process::ExitStatusExt;
    // (crash point, the call that hits it, how many set-up steps run first)
    let cases: [(&str, &str, usize); 6] = [
        ("docker-network-create:gateway", "NetworkDriver.CreateNetwork", 0),
        ("docker-endpoint-create:veth", "NetworkDriver.CreateEndpoint", 1),
        ("docker-program:publish", "NetworkDriver.ProgramExternalConnectivity", 2),
        ("docker-revoke:commit", "NetworkDriver.RevokeExternalConnectivity", 3),
        ("docker-endpoint-rm:commit", "NetworkDriver.DeleteEndpoint", 2),
        ("docker-network-rm:commit", "NetworkDriver.DeleteNetwork", 1),
    ];
    for (point, method, setup) in cases {
        let mut host = TestHost::start();
        let socket = host.docker_plugin_socket();
        let (network, endpoint) = (docker_id(&host.tag, 0xaa), docker_id(&host.tag, 0xbb));
        let create_network = json!({"NetworkID":network,"Options":{},
            "IPv4Data":[{"AddressSpace":"LocalDefault","Pool":"10.91.0.0/24","Gateway":"10.91.0.1/24"}]});
        let create_endpoint =
            json!({"NetworkID":network,"EndpointID":endpoint,"Interface":{"Address":"10.91.0.2/24","MacAddress":""}});
        let portmap = json!([{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]);
        let program =
            json!({"NetworkID":network,"EndpointID":endpoint,"Options":{"com.docker.network.portmap":portmap}});
        let ids = json!({"NetworkID":network,"EndpointID":endpoint});
        let steps = [
            ("NetworkDriver.CreateNetwork", create_network),
            ("NetworkDriver.CreateEndpoint", create_endpoint),
            ("NetworkDriver.ProgramExternalConnectivity", program),
        ];
        for (m, body) in steps.iter().take(setup) {
            ok(&socket, m, body.clone());
        }
        let body = match method {
            "NetworkDriver.RevokeExternalConnectivity" | "NetworkDriver.DeleteEndpoint" => ids.clone(),
            "NetworkDriver.DeleteNetwork" => json!({"NetworkID":network}),
            m => steps.iter().find(|(s, _)| *s == m).unwrap().1.clone(),
        };
        host.stop_daemon(Signal::SIGTERM);
        host.start_daemon_with_env(&[("NETD_CRASH_AT", point)]);
        host.wait_for_api();
        call_into_crash(&socket, method, body);
        let status = host.wait_daemon_exit(Duration::from_secs(30));
        assert_eq!(status.signal(), Some(libc::SIGKILL), "did not die at {point}\n{}", host.daemon_log());
        host.start_daemon();
        let network_known = host.netd(&["network", "inspect", &network]).status.success();
        let endpoints = if network_known {
            host.json(&["network", "inspect", &network])[0]["Containers"].clone()
        } else {
            json!({})
        };
        let endpoint_known = endpoints.get(&endpoint).is_some();
        let published = !connect_refused_or_timeout(&host.netns_path(&host.outside_ns), HOST_ADDR, 8080);
        let state = (network_known, endpoint_known, published);
        // Creates commit last: a crash undoes them. Removes commit first, but the commit is
        // on disk only once the group commit's flush ran (docs/architecture.md, "Crash
        // safety"), and the crash point comes before the answer that waits for it: a crash
        // there either completes the remove or leaves it not done at all, never half.
        let (expected, before): (State, Option<State>) = match method {
            "NetworkDriver.CreateNetwork" => ((false, false, false), None),
            "NetworkDriver.CreateEndpoint" => ((true, false, false), None),
            "NetworkDriver.ProgramExternalConnectivity" => ((true, true, false), None),
            "NetworkDriver.RevokeExternalConnectivity" => ((true, true, false), Some((true, true, true))),
            "NetworkDriver.DeleteEndpoint" => ((true, false, false), Some((true, true, false))),
            "NetworkDriver.DeleteNetwork" => ((false, false, false), Some((true, false, false))),
            _ => unreachable!(),
        };
        assert!(
            state == expected || Some(state) == before,
            "after a crash at {point}: (network, endpoint, published) = {state:?}, expected {expected:?} or {before:?}"
        );
        if method == "NetworkDriver.RevokeExternalConnectivity" {
            // The revoke may not have happened (above), and netd's CLI, which the agreement
            // check reads, does not list Docker's ports: revoke again first (a no-op when it
            // did happen), as Docker's clean-up after the failed call removes them too.
            ok(&socket, "NetworkDriver.RevokeExternalConnectivity", ids.clone());
        }
        assert_store_and_kernel_agree(&host, "no-container-commands");
        // Docker goes on: whatever is left is removed the usual way, and nothing remains.
        if endpoint_known {
            ok(&socket, "NetworkDriver.DeleteEndpoint", ids.clone());
        }
        if network_known {
            ok(&socket, "NetworkDriver.DeleteNetwork", json!({"NetworkID":network}));
        }
        assert!(host.endpoint_veths().is_empty(), "veths left after {point}: {:?}", host.endpoint_veths());
        assert_store_and_kernel_agree(&host, "no-container-commands");
    }
}
