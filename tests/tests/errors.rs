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
    // Overlay networks need cluster mode (tests/tests/overlay.rs); other drivers do not exist.
    host.fails_cleanly(
        &["network", "create", "-d", "overlay", "ov"],
        "Error response from daemon: overlay networks need a cluster store: start netd daemon with --cluster-store etcd://HOST:PORT --advertise-addr IP",
    );
    host.fails_cleanly(
        &["network", "create", "-d", "macvlan", "mv"],
        "Error response from daemon: plugin \"macvlan\" not found",
    );
    host.fails_cleanly(
        &["network", "create", "-d", "host", "h2"],
        "Error response from daemon: only one instance of \"host\" network is allowed",
    );

    // Invalid CIDRs; gateway and ip-range outside the subnet.
    for bad in ["10.0.0.0/33", "nonsense", "300.1.0.0/16", "10.1.0.0"] {
        host.fails_cleanly(
            &["network", "create", "--subnet", bad, "bad"],
            &format!("Error response from daemon: Invalid subnet {bad} : invalid CIDR address: {bad}"),
        );
    }
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--gateway", "10.82.0.1", "bad"],
        "no matching subnet for gateway 10.82.0.1",
    );
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--ip-range", "10.82.0.0/25", "bad"],
        "no matching subnet for range 10.82.0.0/25",
    );
    // Docker's CLI checks (consolidateIpam), before the daemon is asked.
    for args in [vec!["--gateway", "10.81.0.1"], vec!["--ip-range", "10.81.0.0/25"]] {
        host.fails_cleanly(
            &[&["network", "create"], &args[..], &["bad"]].concat(),
            "every ip-range or gateway must have a corresponding subnet",
        );
    }
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--ip-range", "10.81.0.0/33", "bad"],
        "invalid CIDR address: 10.81.0.0/33",
    );
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--gateway", "10.81.0.1", "--gateway", "10.81.0.2", "bad"],
        "every ip-range or gateway must have a corresponding subnet",
    );
    // The daemon's: gateways that cannot be, predefined names, and a subnet with no room.
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--gateway", "10.81.0.0", "bad"],
        "Error response from daemon: failed to allocate gateway (10.81.0.0): Address already in use",
    );
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/24", "--gateway", "10.81.0.1/24", "bad"],
        "Error response from daemon: invalid gateway address 10.81.0.1/24 in Ipam configuration",
    );
    host.fails_cleanly(
        &["network", "create", "--subnet", "10.81.0.0/31", "bad"],
        "Error response from daemon: failed to allocate gateway (): No available addresses on this pool",
    );
    for predefined in ["bridge", "host", "none"] {
        host.fails_cleanly(
            &["network", "create", predefined],
            &format!("Error response from daemon: operation is not permitted on predefined {predefined} network"),
        );
    }

    // Overlapping subnets: with a user network and with the default bridge.
    for overlapping in ["10.80.0.128/25", "10.0.0.0/8", "172.17.5.0/24"] {
        host.fails_cleanly(
            &["network", "create", "--subnet", overlapping, "bad"],
            "Error response from daemon: Pool overlaps with other one on this address space",
        );
    }

    // Unknown networks, everywhere a network is named.
    host.ok(&["run", "-d", "--name", "c1", "--network", "en"]);
    for args in [vec!["network", "connect", "nosuch", "c1"], vec!["network", "disconnect", "nosuch", "c1"]] {
        host.fails_cleanly(&args, "Error response from daemon: network nosuch not found");
    }
    for args in [
        vec!["network", "inspect", "nosuch"],
        vec!["network", "rm", "nosuch"],
        vec!["inspect", "--type", "network", "nosuch"],
    ] {
        host.fails_cleanly(&args, "Error: No such network: nosuch");
    }
    // run: Docker's daemon finds this when it starts the container: no `See` line.
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "nosuch"],
        "netd: Error response from daemon: network nosuch not found.",
    );

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
    assert_eq!(host.fails(&["network", "inspect", "gone"]), "Error: No such network: gone");
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
            &["run", "-d", "--name", "x1", "--network", "en", "--ip", taken],
            "netd: Error response from daemon: Address already in use.",
        );
        host.fails_cleanly(
            &["network", "connect", "--ip", taken, "en", "c2"],
            "Error response from daemon: Address already in use",
        );
    }
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "en", "--ip", "10.81.0.5"],
        "netd: Error response from daemon: Invalid address 10.81.0.5: It does not belong to any of this network's subnets.",
    );
    host.fails_cleanly(
        &["network", "connect", "--ip", "10.81.0.5", "en", "c2"],
        "Error response from daemon: Invalid address 10.81.0.5: It does not belong to any of this network's subnets",
    );
    // --ip and aliases only where Docker takes them.
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--ip", "172.17.0.50"],
        "netd: Error response from daemon: user specified IP address is supported on user defined networks only.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "auto", "--ip", "172.18.0.50"],
        "netd: Error response from daemon: user specified IP address is supported only when connecting to networks with user configured subnets.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network-alias", "web"],
        "netd: Error response from daemon: network-scoped alias is supported only for containers in user defined networks.\nSee 'netd run --help'.",
    );
    // Docker's CLI refuses aliases with a mode that is no user-defined network.
    for mode in ["host", "none", "bridge", "container:c1"] {
        host.fails_cleanly(
            &["run", "-d", "--name", "x1", "--network", mode, "--network-alias", "web"],
            "netd: network-scoped aliases are only supported for user-defined networks.\nSee 'netd run --help'.",
        );
    }
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "host", "--ip", "10.80.0.20"],
        "netd: Error response from daemon: user specified IP address is supported on user defined networks only.",
    );

    // A pool with a single free address: the second container does not fit.
    host.ok(&["network", "create", "--subnet", "10.90.0.0/30", "tiny"]);
    let tiny = id_of(&host, &["network", "inspect", "tiny"]);
    host.ok(&["run", "-d", "--name", "t1", "--network", "tiny"]);
    assert_eq!(host.ip_of("t1", "tiny"), "10.90.0.2");
    let exhausted = format!(
        "Error response from daemon: no available IPv4 addresses on this network's address pools: tiny ({tiny})"
    );
    host.fails_cleanly(&["run", "-d", "--name", "t2", "--network", "tiny"], &format!("netd: {exhausted}."));
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
    let busy = id_of(&host, &["inspect", "busy"]);

    // Unknown containers.
    for args in [
        vec!["network", "connect", "en", "nosuch"],
        vec!["network", "disconnect", "en", "nosuch"],
        vec!["stop", "nosuch"],
    ] {
        host.fails_cleanly(&args, "Error response from daemon: No such container: nosuch");
    }
    for args in [vec!["rm", "nosuch"], vec!["exec", "nosuch", "true"], vec!["port", "nosuch"]] {
        host.fails_cleanly(&args, "Error: No such container: nosuch");
    }
    host.fails_cleanly(
        &["start", "nosuch"],
        "Error response from daemon: No such container: nosuch\nError: failed to start containers: nosuch",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "container:nosuch"],
        "netd: Error response from daemon: No such container: nosuch.",
    );
    host.fails_cleanly(&["inspect", "nosuch"], "Error: No such object: nosuch");
    host.fails_cleanly(&["container", "inspect", "nosuch"], "Error: No such container: nosuch");

    // Names.
    host.fails_cleanly(
        &["run", "-d", "--name", "bad/name"],
        "netd: Error response from daemon: Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.\nSee 'netd run --help'.",
    );
    // One character is not a name either, as in Docker.
    host.fails_cleanly(
        &["run", "-d", "--name", "a"],
        "netd: Error response from daemon: Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed.\nSee 'netd run --help'.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "c1"],
        &format!("netd: Error response from daemon: Conflict. The container name \"/c1\" is already in use by container \"{c1}\". You have to remove (or rename) that container to be able to reuse that name.\nSee 'netd run --help'."),
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
        &["run", "-d", "--name", "x1", "--network", "host", "--hostname", "h"],
        "netd: Error response from daemon: conflicting options: hostname and the network mode.\nSee 'netd run --help'.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "container:c1", "--hostname", "h"],
        "netd: Error response from daemon: conflicting options: hostname and the network mode.\nSee 'netd run --help'.",
    );

    // With -f Docker looks for an endpoint of that name.
    host.fails_cleanly(
        &["network", "disconnect", "-f", "en", "nosuch"],
        "Error response from daemon: endpoint nosuch not found",
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
        &format!("Error response from daemon: You cannot remove a running container {busy}. Stop the container before attempting removal or force remove"),
    );

    // A stopped container runs nothing; a container: target must be running.
    host.ok(&["stop", "c2"]);
    host.fails_cleanly(&["exec", "c2", "true"], &format!("Error response from daemon: Container {c2} is not running"));
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "container:c2"],
        &format!("netd: Error response from daemon: cannot join network of a non running container: {c2}."),
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

/// (exit code, stdout, stderr) of a CLI run.
fn outcome(host: &TestHost, args: &[&str]) -> (i32, String, String) {
    let out = host.netd(args);
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// Command lines that do not parse: cobra's texts and exit codes, as Docker 20.10.24 prints
/// them (measured; `docker` is `netd`), all on stderr.
#[test]
fn usage_errors_are_cobras() {
    let host = TestHost::start();
    let usage = |path: &str, rule: &str, usage: &str, about: &str| {
        format!("\"netd {path}\" {rule}.\nSee 'netd {path} --help'.\n\nUsage:  netd {path} {usage}\n\n{about}\n")
    };
    for (args, expected) in [
        (
            vec!["network", "create"],
            usage("network create", "requires exactly 1 argument", "[OPTIONS] NETWORK", "Create a network"),
        ),
        (
            vec!["network", "create", "a1", "b1"],
            usage("network create", "requires exactly 1 argument", "[OPTIONS] NETWORK", "Create a network"),
        ),
        (
            vec!["network", "rm"],
            usage("network rm", "requires at least 1 argument", "NETWORK [NETWORK...]", "Remove one or more networks"),
        ),
        (
            vec!["network", "connect", "x1"],
            usage(
                "network connect",
                "requires exactly 2 arguments",
                "[OPTIONS] NETWORK CONTAINER",
                "Connect a container to a network",
            ),
        ),
        (vec!["network", "ls", "x1"], usage("network ls", "accepts no arguments", "[OPTIONS]", "List networks")),
        (vec!["ps", "x1"], usage("ps", "accepts no arguments", "[OPTIONS]", "List containers")),
        (
            vec!["exec", "x1"],
            usage(
                "exec",
                "requires at least 2 arguments",
                "[OPTIONS] CONTAINER COMMAND [ARG...]",
                "Run a command in a running container",
            ),
        ),
        (
            vec!["port", "a1", "80", "c1"],
            usage(
                "port",
                "requires at least 1 and at most 2 arguments",
                "CONTAINER [PRIVATE_PORT[/PROTO]]",
                "List port mappings or a specific mapping for the container",
            ),
        ),
        (
            vec!["container", "rm"],
            usage(
                "container rm",
                "requires at least 1 argument",
                "[OPTIONS] CONTAINER [CONTAINER...]",
                "Remove one or more containers",
            ),
        ),
    ] {
        assert_eq!(outcome(&host, &args), (1, String::new(), expected), "{args:?}");
    }
    // Flags: pflag's texts, the `See` line, exit code 125.
    for (args, expected) in [
        (vec!["network", "ls", "--bogus"], "unknown flag: --bogus\nSee 'netd network ls --help'.\n"),
        (vec!["stop", "-x", "a1"], "unknown shorthand flag: 'x' in -x\nSee 'netd stop --help'.\n"),
        (vec!["container", "run", "--bogus", "busybox"], "unknown flag: --bogus\nSee 'netd container run --help'.\n"),
        (
            vec!["network", "create", "--subnet"],
            "flag needs an argument: --subnet\nSee 'netd network create --help'.\n",
        ),
        (vec!["network", "create", "-o"], "flag needs an argument: 'o' in -o\nSee 'netd network create --help'.\n"),
        (
            vec!["run", "--dns", "abc", "busybox"],
            "invalid argument \"abc\" for \"--dns\" flag: abc is not an ip address\nSee 'netd run --help'.\n",
        ),
        (
            vec!["run", "-d", "--ip", "10.80.0.300", "busybox"],
            "netd: Error response from daemon: invalid IPv4 address: 10.80.0.300.\nSee 'netd run --help'.\n",
        ),
    ] {
        assert_eq!(outcome(&host, &args), (125, String::new(), expected.to_string()), "{args:?}");
    }
    assert_eq!(
        outcome(&host, &["bogus"]),
        (1, String::new(), "netd: 'bogus' is not a netd command.\nSee 'netd --help'\n".to_string())
    );
    assert_eq!(host.ok(&["ps", "-aq"]), "");
}

/// Several names at once: each is tried; successes on stdout, each failure on stderr in
/// Docker's words; exit code 1 if any failed (measured on Docker 20.10.24).
#[test]
fn several_names_are_reported_one_by_one() {
    let host = TestHost::start();
    host.ok(&["network", "create", "g1"]);
    host.ok(&["network", "create", "g2"]);
    host.ok(&["run", "-d", "--name", "st", "--", "sleep", "600"]);
    host.ok(&["run", "-d", "--name", "up", "--", "sleep", "600"]);
    let st = id_of(&host, &["inspect", "st"]);
    let up = id_of(&host, &["inspect", "up"]);
    host.ok(&["stop", "st"]);

    assert_eq!(
        outcome(&host, &["network", "rm", "g1", "nosuch", "bridge", "g2"]),
        (
            1,
            "g1\ng2\n".to_string(),
            "Error: No such network: nosuch\nError response from daemon: bridge is a pre-defined network and cannot be removed\n"
                .to_string()
        )
    );
    let (code, out, err) = outcome(&host, &["inspect", "up", "nosuch"]);
    assert_eq!((code, err.as_str()), (1, "Error: No such object: nosuch\n"));
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["Id"], up.as_str());
    assert_eq!(
        outcome(&host, &["inspect", "-f", "{{.Name}}", "up", "nosuch"]),
        (1, "/up\n".to_string(), "Error: No such object: nosuch\n".to_string())
    );
    assert_eq!(
        outcome(&host, &["network", "inspect", "nosuch1", "nosuch2"]),
        (1, "[]\n".to_string(), "Error: No such network: nosuch1\nError: No such network: nosuch2\n".to_string())
    );
    assert_eq!(
        outcome(&host, &["start", "st", "nosuch", "nosuch2"]),
        (
            1,
            "st\n".to_string(),
            "Error response from daemon: No such container: nosuch\nError response from daemon: No such container: nosuch2\n\
             Error: failed to start containers: nosuch, nosuch2\n"
                .to_string()
        )
    );
    assert_eq!(
        outcome(&host, &["stop", "st", "nosuch", "up"]),
        (1, "st\nup\n".to_string(), "Error response from daemon: No such container: nosuch\n".to_string())
    );
    host.ok(&["start", "up"]);
    assert_eq!(
        outcome(&host, &["rm", "nosuch1", "up", "st", "nosuch2"]),
        (
            1,
            "st\n".to_string(),
            format!(
                "Error: No such container: nosuch1\nError response from daemon: You cannot remove a running container {up}. \
                 Stop the container before attempting removal or force remove\nError: No such container: nosuch2\n"
            )
        )
    );
    let _ = st;
    // -f: an unknown name is reported but is no failure.
    assert_eq!(
        outcome(&host, &["rm", "-f", "nosuch", "up"]),
        (0, "up\n".to_string(), "Error: No such container: nosuch\n".to_string())
    );
}

/// `exec` and `run` exit codes as in Docker: a daemon-side refusal is 1 for exec (measured),
/// a command that cannot be started 126 with the text on stdout; `run -p` on the host network
/// warns on stderr and starts.
#[test]
fn exec_and_run_exit_codes_are_dockers() {
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "c1", "--", "sleep", "600"]);
    assert_eq!(
        outcome(&host, &["exec", "c1", "nosuchcmd"]),
        (
            126,
            "exec failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH\r\n"
                .to_string(),
            String::new()
        )
    );
    assert_eq!(outcome(&host, &["exec", "c1", "/etc"]).0, 126);
    assert_eq!(outcome(&host, &["exec", "c1", "sh", "-c", "exit 3"]).0, 3);
    assert_eq!(
        outcome(&host, &["exec", "nosuch", "true"]),
        (1, String::new(), "Error: No such container: nosuch\n".into())
    );
    let (code, out, err) =
        outcome(&host, &["run", "-d", "--name", "h1", "--network", "host", "-p", "80:80", "--", "sleep", "600"]);
    assert_eq!((code, err.as_str()), (0, "WARNING: Published ports are discarded when using host network mode\n"));
    assert_eq!(out.trim().len(), 64);
    assert_eq!(host.ok(&["port", "h1"]), "");
}
