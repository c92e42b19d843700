//! Every error users meet (DESIGN §3, Docker's texts), each checked for its exact message and
//! for "a failed command changes nothing": the host netns' links, addresses and routes, the
//! netns mounts, the pinned links, `network ls` and `ps -a` are the same before and after.
use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use netd_tests::TestHost;

fn id_of(host: &TestHost, args: &[&str]) -> String {
    host.json(args)[0]["Id"].as_str().unwrap().to_string()
}

#[test]
fn network_errors_are_dockers_and_change_nothing() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.80.0.0/24", "en"]);
    let en = id_of(&host, &["network", "inspect", "en"]);

    // Duplicate name, invalid names and drivers.
    host.fails_cleanly(&["network", "create", "en"], "Error response from daemon: network with name en already exists");
    host.fails_cleanly(
        &["network", "create", "bad name"],
        "Error response from daemon: Invalid name \"bad name\", only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
    host.fails_cleanly(
        &["network", "create", "-d", "overlay", "ov"],
        "Error response from daemon: plugin \"overlay\" not found",
    );
    host.fails_cleanly(
        &["network", "create", "-d", "host", "h2"],
        "Error response from daemon: only one instance of \"host\" network is allowed",
    );

    // Invalid CIDRs; gateway and ip-range outside the subnet.
    for bad in ["10.0.0.0/33", "nonsense", "300.1.0.0/16", "10.1.0.0"] {
        host.fails_cleanly(
            &["network", "create", "--subnet", bad, "bad"],
            &format!("Error response from daemon: invalid subnet {bad}"),
        );
    }
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--gateway", "10.82.0.1", "bad"],
        "Error response from daemon: gateway 10.82.0.1 is not in subnet 10.81.0.0/24",
    );
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--ip-range", "10.82.0.0/25", "bad"],
        "Error response from daemon: ip-range 10.82.0.0/25 is not in subnet 10.81.0.0/24",
    );
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--ip-range", "10.81.0.0/23", "bad"],
        "Error response from daemon: ip-range 10.81.0.0/23 is not in subnet 10.81.0.0/24",
    );

    // Overlapping subnets: with a user network and with the default bridge.
    for overlapping in ["10.80.0.128/25", "10.0.0.0/8", "172.17.5.0/24"] {
        host.fails_cleanly(
            &["network", "create", "--subnet", overlapping, "bad"],
            "Error response from daemon: Pool overlaps with other one on this address space",
        );
    }

    // Unknown networks, everywhere a network is named.
    host.ok(&["run", "-d", "--name", "c1", "--network", "en"]);
    for args in [
        vec!["network", "inspect", "nosuch"],
        vec!["network", "rm", "nosuch"],
        vec!["network", "connect", "nosuch", "c1"],
        vec!["network", "disconnect", "nosuch", "c1"],
        vec!["run", "-d", "--name", "x", "--network", "nosuch"],
        vec!["inspect", "--type", "network", "nosuch"],
    ] {
        host.fails_cleanly(&args, "Error response from daemon: network nosuch not found");
    }

    // The predefined networks stay; a network with endpoints stays.
    host.fails_cleanly(
        &["network", "rm", "bridge"],
        "Error response from daemon: bridge is a pre-defined network and cannot be removed",
    );
    host.fails_cleanly(
        &["network", "rm", "en"],
        &format!("Error response from daemon: error while removing network: network en id {en} has active endpoints"),
    );
    // By id prefix too, and among several names the others still go.
    host.fails_cleanly(
        &["network", "rm", &en[..10]],
        &format!("Error response from daemon: error while removing network: network en id {en} has active endpoints"),
    );
    host.ok(&["network", "create", "gone"]);
    let out = host.netd(&["network", "rm", "en", "gone"]);
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "gone\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("has active endpoints"));
    assert!(host.fails(&["network", "inspect", "gone"]).ends_with("network gone not found"));
}

#[test]
fn address_errors_are_dockers_and_change_nothing() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.80.0.0/24", "en"]);
    host.ok(&["network", "create", "auto"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "en", "--ip", "10.80.0.10"]);
    host.ok(&["run", "-d", "--name", "c2"]);

    // --ip taken (by a container, or the gateway) or outside the subnet.
    for taken in ["10.80.0.10", "10.80.0.1"] {
        host.fails_cleanly(
            &["run", "-d", "--name", "x", "--network", "en", "--ip", taken],
            "Error response from daemon: Address already in use",
        );
        host.fails_cleanly(
            &["network", "connect", "--ip", taken, "en", "c2"],
            "Error response from daemon: Address already in use",
        );
    }
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network", "en", "--ip", "10.81.0.5"],
        "Error response from daemon: no configured subnet or ip-range contain the IP address 10.81.0.5",
    );
    host.fails_cleanly(
        &["network", "connect", "--ip", "10.81.0.5", "en", "c2"],
        "Error response from daemon: no configured subnet or ip-range contain the IP address 10.81.0.5",
    );
    // --ip and aliases only where Docker takes them.
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--ip", "172.17.0.50"],
        "Error response from daemon: user specified IP address is supported on user defined networks only",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network", "auto", "--ip", "172.18.0.50"],
        "Error response from daemon: user specified IP address is supported only when connecting to networks with user configured subnets",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network-alias", "web"],
        "Error response from daemon: network-scoped alias is supported only for containers in user defined networks",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network", "host", "--ip", "10.80.0.20"],
        "Error response from daemon: user specified IP address is supported on user defined networks only",
    );

    // A pool with a single free address: the second container does not fit.
    host.ok(&["network", "create", "--subnet", "10.90.0.0/30", "tiny"]);
    let tiny = id_of(&host, &["network", "inspect", "tiny"]);
    host.ok(&["run", "-d", "--name", "t1", "--network", "tiny"]);
    assert_eq!(host.ip_of("t1", "tiny"), "10.90.0.2");
    let exhausted = format!(
        "Error response from daemon: no available IPv4 addresses on this network's address pools: tiny ({tiny})"
    );
    host.fails_cleanly(&["run", "-d", "--name", "t2", "--network", "tiny"], &exhausted);
    host.fails_cleanly(&["network", "connect", "tiny", "c2"], &exhausted);
    // The address comes back when its container goes.
    host.ok(&["rm", "-f", "t1"]);
    host.ok(&["run", "-d", "--name", "t2", "--network", "tiny"]);
    assert_eq!(host.ip_of("t2", "tiny"), "10.90.0.2");

    // Every automatic pool overlaps a host route: nothing left to give.
    host.in_host_ok(&["ip", "route", "add", "172.16.0.0/12", "via", "198.51.100.1"]);
    host.in_host_ok(&["ip", "route", "add", "192.168.0.0/16", "via", "198.51.100.1"]);
    host.fails_cleanly(
        &["network", "create", "nopool"],
        "Error response from daemon: could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network",
    );
    host.in_host_ok(&["ip", "route", "del", "192.168.0.0/16"]);
    host.ok(&["network", "create", "frompool"]);
    let subnet = host.json(&["network", "inspect", "frompool"])[0]["IPAM"]["Config"][0]["Subnet"].clone();
    assert_eq!(subnet, "192.168.0.0/20");
    host.in_host_ok(&["ip", "route", "del", "172.16.0.0/12"]);
}

#[test]
fn container_errors_are_dockers_and_change_nothing() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.80.0.0/24", "en"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "en"]);
    host.ok(&["run", "-d", "--name", "c2"]);
    host.ok(&["run", "-d", "--name", "nc", "--network", "none"]);
    host.ok(&["run", "-d", "--name", "hc", "--network", "host"]);
    host.ok(&["run", "-d", "--name", "sc", "--network", "container:c1"]);
    host.ok(&["run", "-d", "--name", "busy", "--", "sleep", "600"]);
    let c1 = id_of(&host, &["inspect", "c1"]);
    let c2 = id_of(&host, &["inspect", "c2"]);

    // Unknown containers.
    for args in [
        vec!["network", "connect", "en", "nosuch"],
        vec!["network", "disconnect", "en", "nosuch"],
        vec!["rm", "nosuch"],
        vec!["stop", "nosuch"],
        vec!["exec", "nosuch", "true"],
        vec!["run", "-d", "--name", "x", "--network", "container:nosuch"],
    ] {
        host.fails_cleanly(&args, "Error response from daemon: No such container: nosuch");
    }
    // `start` ends with Docker's batch line (measured).
    host.fails_cleanly(
        &["start", "nosuch"],
        "Error response from daemon: No such container: nosuch\nError: failed to start containers: nosuch",
    );
    host.fails_cleanly(&["inspect", "nosuch"], "Error: No such object: nosuch");
    host.fails_cleanly(&["container", "inspect", "nosuch"], "Error: No such container: nosuch");

    // Names.
    host.fails_cleanly(
        &["run", "-d", "--name", "bad/name"],
        "Error response from daemon: Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "c1"],
        &format!("Error response from daemon: Conflict. The container name \"/c1\" is already in use by container \"{c1}\". You have to remove (or rename) that container to be able to reuse that name."),
    );

    // none + any other network, both ways.
    let none = "Error response from daemon: container cannot be connected to multiple networks with one of the networks in private (none) mode";
    host.fails_cleanly(&["network", "connect", "bridge", "nc"], none);
    host.fails_cleanly(&["network", "connect", "en", "nc"], none);
    host.fails_cleanly(&["network", "connect", "none", "c2"], none);
    // host and container: modes share a netns: no networks of their own.
    let shared = "Error response from daemon: container sharing network namespace with another container or host cannot be connected to any other network";
    host.fails_cleanly(&["network", "connect", "en", "hc"], shared);
    host.fails_cleanly(&["network", "connect", "en", "sc"], shared);
    let host_net =
        "Error response from daemon: container cannot be disconnected from host network or connected to host network";
    host.fails_cleanly(&["network", "connect", "host", "c2"], host_net);
    host.fails_cleanly(&["network", "disconnect", "host", "hc"], host_net);
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network", "host", "--hostname", "h"],
        "Error response from daemon: conflicting options: hostname and the network mode",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network", "container:c1", "--hostname", "h"],
        "Error response from daemon: conflicting options: hostname and the network mode",
    );

    // Connected twice; disconnected when not connected.
    host.fails_cleanly(
        &["network", "connect", "en", "c1"],
        "Error response from daemon: endpoint with name c1 already exists in network en",
    );
    host.fails_cleanly(
        &["network", "disconnect", "en", "c2"],
        &format!("Error response from daemon: container {c2} is not connected to network en"),
    );

    // Removing what is in use.
    // (A container whose netns others share can go: `container_modes.rs`.)
    host.fails_cleanly(
        &["rm", "busy"],
        "Error response from daemon: cannot remove container \"/busy\": container is running: stop the container before removing or force remove",
    );

    // A stopped container runs nothing; a container: target must be running.
    host.ok(&["stop", "c2"]);
    host.fails_cleanly(&["exec", "c2", "true"], &format!("Error response from daemon: Container {c2} is not running"));
    host.fails_cleanly(
        &["run", "-d", "--name", "x", "--network", "container:c2"],
        &format!("Error response from daemon: cannot join network of a non running container: {c2}"),
    );
}

/// One request on the API socket, as any client may send it: the status and the JSON body.
fn api_request(host: &TestHost, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut conn = UnixStream::connect(host.socket()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: netd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body.as_bytes()).unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{reply:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head:?}"));
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}")))
}

/// The API's request types refuse what they do not define (netd/src/api_types.rs): a misspelt
/// or mistyped field is a 400 with a one-line message, never a silent default, and nothing
/// is created, changed or removed.
#[test]
fn requests_that_do_not_fit_the_api_are_refused_and_change_nothing() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.80.0.0/24", "en"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "en"]);
    let cases = [
        (
            "POST",
            "/networks",
            r#"{"name":"typo","subnet":"10.90.0.0/24","internall":true}"#,
            "invalid request body: unknown field `internall`, expected one of `name`, `driver`, `subnet`, `ip_range`, `gateway`, `internal`, `labels`, `options` at line 1 column 50",
        ),
        (
            "POST",
            "/containers",
            r#"{"name":"c2","ip":"10.80.0.300"}"#,
            "invalid request body: invalid IPv4 address syntax at line 1 column 31",
        ),
        (
            "POST",
            "/networks/en/connect",
            r#"{"container":"c1","aliases":"a"}"#,
            "invalid request body: invalid type: string \"a\", expected a sequence at line 1 column 31",
        ),
        ("POST", "/networks/en/disconnect", r#"{"container":"c1","forse":true}"#, "invalid request body: unknown field `forse`, expected `container` or `force` at line 1 column 25"),
        ("POST", "/containers/c1/stop", r#"{"t":1}"#, "invalid request body: unknown field `t`, there are no fields at line 1 column 4"),
        ("DELETE", "/containers/c1?force=true&volumes=true", "", "invalid query string: unknown field `volumes`, expected `force`"),
        ("DELETE", "/containers/c1?force=yes", "", "invalid query string: provided string was not `true` or `false`"),
    ];
    let mut answers = Vec::new();
    for (method, path, body, _) in cases {
        let before = host.snapshot();
        let (status, reply) = api_request(&host, method, path, body);
        answers.push((status, reply["message"].as_str().unwrap_or_default().to_string()));
        assert_eq!(host.snapshot(), before, "{method} {path} {body} was refused but changed something");
    }
    let expected: Vec<(u16, String)> = cases.iter().map(|c| (400, c.3.to_string())).collect();
    assert_eq!(answers, expected);
    // The same routes with fitting requests work.
    let (status, reply) = api_request(&host, "DELETE", "/containers/c1?force=true", "");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["Name"], "c1");
}
