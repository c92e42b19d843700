//! `netd network ...` end to end: create (every flag), ls (columns, -q, --format, --filter),
//! inspect (Docker's exact JSON shape), rm (several names, id prefixes), prune, and
//! connect/disconnect on running containers (ethN, addresses, the default route).
use netd_tests::TestHost;
use serde_json::Value;

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Routes inside a container's netns.
fn container_routes(host: &TestHost, name: &str) -> String {
    let ns = host.container_netns(name);
    netd_tests::sh(&["nsenter", &format!("--net={}", ns.display()), "ip", "-4", "route", "show"])
}

#[test]
fn network_inspect_has_dockers_exact_shape() {
    let host = TestHost::start();
    let id = host.ok(&["network", "create", "my-net"]).trim().to_string();
    assert!(is_hex_id(&id), "network id {id:?}");

    let out = host.ok(&["network", "inspect", "my-net"]);
    // Docker indents inspect output with four spaces.
    assert!(out.starts_with("[\n    {\n        \"Name\": \"my-net\",\n        \"Id\": "), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let n = &v[0];
    assert_eq!(
        keys(n),
        [
            "Name",
            "Id",
            "Created",
            "Scope",
            "Driver",
            "EnableIPv6",
            "IPAM",
            "Internal",
            "Attachable",
            "Ingress",
            "ConfigFrom",
            "ConfigOnly",
            "Containers",
            "Options",
            "Labels"
        ]
    );
    assert_eq!(n["Id"], id.as_str());
    // Go's RFC3339Nano, as Docker writes it: UTC, the fraction without trailing zeros
    // ("2026-12-04T14:49:56.321422447Z", "…:56.3214Z", "…:56Z").
    let created = n["Created"].as_str().unwrap();
    let body = created.strip_suffix('Z').unwrap_or_else(|| panic!("Created {created}"));
    let (seconds, fraction) = body.split_once('.').unwrap_or((body, ""));
    assert!(
        seconds.len() == 19
            && seconds.chars().enumerate().all(|(i, c)| match i {
                4 | 7 => c == '-',
                10 => c == 'T',
                13 | 16 => c == ':',
                _ => c.is_ascii_digit(),
            })
            && fraction.len() <= 9
            && fraction.chars().all(|c| c.is_ascii_digit())
            && !fraction.ends_with('0'),
        "Created {created}"
    );
    assert_eq!(
        (
            &n["Scope"],
            &n["Driver"],
            &n["EnableIPv6"],
            &n["Internal"],
            &n["Attachable"],
            &n["Ingress"],
            &n["ConfigOnly"]
        ),
        (&"local".into(), &"bridge".into(), &false.into(), &false.into(), &false.into(), &false.into(), &false.into())
    );
    assert_eq!(keys(&n["IPAM"]), ["Driver", "Options", "Config"]);
    assert_eq!(n["IPAM"]["Driver"], "default");
    assert_eq!(n["IPAM"]["Options"], serde_json::json!({}));
    assert_eq!(n["IPAM"]["Config"], serde_json::json!([{ "Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1" }]));
    assert_eq!(keys(&n["IPAM"]["Config"][0]), ["Subnet", "Gateway"]);
    assert_eq!(n["ConfigFrom"], serde_json::json!({ "Network": "" }));
    for empty in ["Containers", "Options", "Labels"] {
        assert_eq!(n[empty], serde_json::json!({}), "{empty}");
    }

    // Containers entries: Docker's keys, MAC 02:42 + the IPv4 bytes, "a.b.c.d/nn".
    let cid = host.ok(&["run", "-itd", "--name", "one", "--network", "my-net", "busybox"]).trim().to_string();
    let n = &host.json(&["network", "inspect", "my-net"])[0];
    let entry = &n["Containers"][&cid];
    assert_eq!(keys(entry), ["Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"]);
    assert_eq!(entry["Name"], "one");
    assert!(is_hex_id(entry["EndpointID"].as_str().unwrap()));
    assert_eq!(entry["MacAddress"], "02:42:ac:12:00:02");
    assert_eq!(entry["IPv4Address"], "172.18.0.2/16");
    assert_eq!(entry["IPv6Address"], "");

    // IPRange appears (between Subnet and Gateway) only when set; labels and options show.
    host.ok(&[
        "network",
        "create",
        "--subnet",
        "172.30.0.0/16",
        "--ip-range",
        "172.30.5.0/24",
        "--gateway",
        "172.30.5.254",
        "--label",
        "env=test",
        "-o",
        "com.example.opt=1",
        "--internal",
        "ranged",
    ]);
    let r = &host.json(&["inspect", "--type", "network", "ranged"])[0];
    assert_eq!(keys(&r["IPAM"]["Config"][0]), ["Subnet", "IPRange", "Gateway"]);
    assert_eq!(
        r["IPAM"]["Config"][0],
        serde_json::json!({ "Subnet": "172.30.0.0/16", "IPRange": "172.30.5.0/24", "Gateway": "172.30.5.254" })
    );
    assert_eq!(r["Labels"], serde_json::json!({ "env": "test" }));
    assert_eq!(r["Options"], serde_json::json!({ "com.example.opt": "1" }));
    assert_eq!(r["Internal"], true);

    // The predefined networks: host and none drivers, no IPAM config; their containers listed
    // without addresses.
    let hid = host.ok(&["run", "-d", "--name", "h1", "--network", "host"]).trim().to_string();
    let h = &host.json(&["network", "inspect", "host"])[0];
    assert_eq!((&h["Driver"], &h["IPAM"]["Config"]), (&"host".into(), &serde_json::json!([])));
    assert_eq!(keys(&h["Containers"][&hid]), ["Name", "EndpointID", "MacAddress", "IPv4Address", "IPv6Address"]);
    assert_eq!(h["Containers"][&hid]["IPv4Address"], "");
    assert_eq!(host.json(&["network", "inspect", "none"])[0]["Driver"], "null");
    let b = &host.json(&["network", "inspect", "bridge"])[0];
    assert_eq!(b["IPAM"]["Config"], serde_json::json!([{ "Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1" }]));
    // Docker 20.10's default bridge options (netd has no bridge device: no name), and no
    // IPAM options on the predefined networks (`{}` on user-defined ones, above).
    assert_eq!(
        b["Options"],
        serde_json::json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": "",
            "com.docker.network.driver.mtu": "1500"
        })
    );
    for predefined in ["bridge", "host", "none"] {
        let n = &host.json(&["network", "inspect", predefined])[0];
        assert_eq!(n["IPAM"]["Options"], serde_json::Value::Null, "{predefined}");
        assert_eq!(keys(&n["IPAM"]), ["Driver", "Options", "Config"]);
    }
    assert_eq!(
        host.ok(&["network", "inspect", "-f", "{{json .IPAM.Options}} {{json .Options}}", "none", "my-net"]),
        "null {}\n{} {}\n"
    );

    // Several at once, any mix of names and ids; `--format` templates.
    let both = host.json(&["network", "inspect", "my-net", &id[..12], "bridge"]);
    assert_eq!(both.as_array().unwrap().len(), 3);
    assert_eq!(
        host.ok(&["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "my-net", "none"]),
        "my-net bridge\nnone null\n"
    );
    assert_eq!(
        host.ok(&["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "ranged"]),
        "172.30.0.0/16\n"
    );
    // `netd inspect NAME` finds networks too.
    assert_eq!(host.json(&["inspect", "ranged"])[0]["Name"], "ranged");
}

#[test]
fn network_ls_rm_and_prune() {
    let host = TestHost::start();
    let ls = host.ok(&["network", "ls"]);
    let lines: Vec<&str> = ls.lines().collect();
    assert_eq!(lines[0], "NETWORK ID     NAME      DRIVER    SCOPE");
    let rows: Vec<Vec<&str>> = lines[1..].iter().map(|l| l.split_whitespace().collect()).collect();
    let names: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[1], r[2], r[3])).collect();
    assert_eq!(names, [("bridge", "bridge", "local"), ("host", "host", "local"), ("none", "null", "local")]);
    assert!(rows.iter().all(|r| r[0].len() == 12));

    for name in ["net10", "net2", "net1"] {
        host.ok(&["network", "create", "--label", &format!("n={name}"), name]);
    }
    // Names in natural order; -q prints ids only; --no-trunc full ids.
    let ls = host.ok(&["network", "ls"]);
    let names: Vec<&str> = ls.lines().skip(1).map(|l| l.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(names, ["bridge", "host", "net1", "net2", "net10", "none"]);
    let ids = host.ok(&["network", "ls", "-q"]);
    assert_eq!(ids.lines().count(), 6);
    assert!(ids.lines().all(|l| l.len() == 12 && l.bytes().all(|b| b.is_ascii_hexdigit())));
    assert!(host.ok(&["network", "ls", "-q", "--no-trunc"]).lines().all(is_hex_id));

    // --format json: one object per line with Docker's keys and string values.
    let json = host.ok(&["network", "ls", "--format", "json"]);
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(keys(&first), ["CreatedAt", "Driver", "ID", "IPv6", "Internal", "Labels", "Name", "Scope"]);
    assert_eq!(
        (&first["Name"], &first["IPv6"], &first["Internal"]),
        (&"bridge".into(), &"false".into(), &"false".into())
    );
    assert!(first["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"), "{first}");
    let net1: Value = serde_json::from_str(json.lines().nth(2).unwrap()).unwrap();
    assert_eq!((&net1["Name"], &net1["Labels"]), (&"net1".into(), &"n=net1".into()));
    // Go templates and filters.
    assert_eq!(host.ok(&["network", "ls", "--format", "{{.Name}}:{{.Driver}}", "-f", "driver=null"]), "none:null\n");
    assert_eq!(host.ok(&["network", "ls", "--format", "{{.Name}}", "--filter", "name=net1"]), "net1\nnet10\n");
    assert_eq!(host.ok(&["network", "ls", "--format", "{{.Name}}", "--filter", "label=n=net2"]), "net2\n");
    assert_eq!(host.ok(&["network", "ls", "-q", "-f", "type=custom"]).lines().count(), 3);
    let table = host.ok(&["network", "ls", "--format", "table {{.Name}}\t{{.Scope}}", "-f", "name=net2"]);
    assert_eq!(table, "NAME      SCOPE\nnet2      local\n");

    // rm: several names, by id prefix; prints what it was given.
    let id2 = host.json(&["network", "inspect", "net2"])[0]["Id"].as_str().unwrap().to_string();
    assert_eq!(host.ok(&["network", "rm", "net1", &id2[..6]]), format!("net1\n{}\n", &id2[..6]));
    assert_eq!(host.fails(&["network", "inspect", "net1"]), "Error: No such network: net1");
    assert_eq!(host.fails(&["network", "inspect", "net2"]), "Error: No such network: net2");

    // prune: only unused user networks; without -f it asks (and "no" keeps everything).
    host.ok(&["network", "create", "used"]);
    host.ok(&["network", "create", "unused"]);
    host.ok(&["run", "-d", "--name", "c1", "--network", "used"]);
    let asked = host.ok(&["network", "prune"]);
    assert!(asked.starts_with("WARNING! This will remove all custom networks not used by at least one container."));
    assert!(
        host.ok(&["network", "ls", "-q", "-f", "name=unused"]).lines().count() == 1,
        "prune without -f removed networks"
    );
    let pruned = host.ok(&["network", "prune", "-f"]);
    assert_eq!(pruned, "Deleted Networks:\nnet10\nunused\n\n");
    let names = host.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert_eq!(names, "bridge\nhost\nnone\nused\n");
    // Nothing left to prune: nothing printed.
    assert_eq!(host.ok(&["network", "prune", "-f"]), "");
}

#[test]
fn connect_and_disconnect_running_containers() {
    let host = TestHost::start();
    host.ok(&["network", "create", "front"]);
    host.ok(&["network", "create", "--subnet", "10.60.0.0/24", "back"]);
    host.ok(&["run", "-d", "--name", "web", "busybox"]);
    host.ok(&["run", "-d", "--name", "peer", "--network", "back"]);
    assert_eq!(host.ip_of("web", "bridge"), "172.17.0.2");
    assert!(container_routes(&host, "web").starts_with("default via 172.17.0.1 dev eth0"));

    // A second and third network: eth1, eth2, live. The default route goes through the
    // network whose name sorts first (Docker's gateway endpoint, measured on 20.10): it stays
    // on `bridge` when `front` comes, and moves to `back`.
    host.ok(&["network", "connect", "front", "web"]);
    host.ok(&["network", "connect", "--ip", "10.60.0.77", "--alias", "www", "--alias", "site", "back", "web"]);
    let web = &host.json(&["inspect", "web"])[0];
    let short_id = &web["Id"].as_str().unwrap()[..12];
    // Docker 20.10: `run` without --network is NetworkMode `default`; the networks by name
    // (Go sorts map keys), each with EndpointSettings' keys in this order.
    assert_eq!(web["HostConfig"]["NetworkMode"], "default");
    let nets = &web["NetworkSettings"]["Networks"];
    assert_eq!(keys(nets), ["back", "bridge", "front"]);
    for net in ["back", "bridge", "front"] {
        assert_eq!(
            keys(&nets[net]),
            [
                "IPAMConfig",
                "Links",
                "Aliases",
                "NetworkID",
                "EndpointID",
                "Gateway",
                "IPAddress",
                "IPPrefixLen",
                "IPv6Gateway",
                "GlobalIPv6Address",
                "GlobalIPv6PrefixLen",
                "MacAddress",
                "DriverOpts"
            ],
            "{net}"
        );
    }
    assert_eq!(nets["front"]["IPAddress"], "172.18.0.2");
    assert_eq!(nets["back"]["IPAddress"], "10.60.0.77");
    // On user-defined networks the aliases, then the short id; none on the default bridge.
    assert_eq!(nets["back"]["Aliases"], serde_json::json!(["www", "site", short_id]));
    assert_eq!(nets["front"]["Aliases"], serde_json::json!([short_id]));
    assert_eq!(nets["bridge"]["Aliases"], serde_json::Value::Null);
    assert_eq!(nets["back"]["IPAMConfig"], serde_json::json!({ "IPv4Address": "10.60.0.77" }));
    // `network connect` always sends an IPAM config and driver options; `run` did not.
    assert_eq!(
        (&nets["front"]["IPAMConfig"], &nets["front"]["DriverOpts"]),
        (&serde_json::json!({}), &serde_json::json!({}))
    );
    assert_eq!(
        (&nets["bridge"]["IPAMConfig"], &nets["bridge"]["DriverOpts"]),
        (&serde_json::Value::Null, &serde_json::Value::Null)
    );
    assert_eq!(nets["back"]["MacAddress"], "02:42:0a:3c:00:4d");
    // Templates over the same shapes, as in Docker: the top-level address is the default
    // bridge's; `range` goes by network name.
    assert_eq!(
        host.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.IPAddress}}|{{range .NetworkSettings.Networks}}{{.IPAddress}},{{end}}",
            "web"
        ]),
        "172.17.0.2|10.60.0.77,172.17.0.2,172.18.0.2,\n"
    );
    // Docker fills the top-level addresses from the default bridge only.
    assert_eq!(web["NetworkSettings"]["IPAddress"], "172.17.0.2");
    assert_eq!(web["NetworkSettings"]["Gateway"], "172.17.0.1");
    let links = host.ok(&["exec", "web", "ip", "-br", "-4", "addr"]);
    for (dev, addr) in [("eth0", "172.17.0.2/16"), ("eth1", "172.18.0.2/16"), ("eth2", "10.60.0.77/24")] {
        assert!(links.lines().any(|l| l.starts_with(dev) && l.contains(addr)), "{dev} {addr} in\n{links}");
    }
    assert!(
        container_routes(&host, "web").starts_with("default via 10.60.0.1 dev eth2"),
        "{}",
        container_routes(&host, "web")
    );
    // Traffic on the new network, both ways.
    host.ok(&["exec", "web", "ping", "-c", "1", "-W", "2", "10.60.0.2"]);
    host.ok(&["exec", "peer", "ping", "-c", "1", "-W", "2", "10.60.0.77"]);
    let back = &host.json(&["network", "inspect", "back"])[0]["Containers"];
    assert_eq!(back.as_object().unwrap().len(), 2);

    // Disconnecting the gateway's network moves the default route to the next one by name.
    host.ok(&["network", "disconnect", "back", "web"]);
    assert!(
        container_routes(&host, "web").starts_with("default via 172.17.0.1 dev eth0"),
        "{}",
        container_routes(&host, "web")
    );
    host.ok(&["network", "connect", "--ip", "10.60.0.77", "--alias", "www", "--alias", "site", "back", "web"]);
    assert!(container_routes(&host, "web").starts_with("default via 10.60.0.1 dev eth"));
    host.ok(&["network", "disconnect", "bridge", "web"]);
    assert_eq!(host.json(&["network", "inspect", "bridge"])[0]["Containers"], serde_json::json!({}));
    assert_eq!(host.json(&["inspect", "web"])[0]["NetworkSettings"]["IPAddress"], "");
    // -f is accepted; the last network goes too: only lo, no default route.
    host.ok(&["network", "disconnect", "-f", "front", "web"]);
    assert!(container_routes(&host, "web").starts_with("default via 10.60.0.1 dev eth2"));
    host.ok(&["network", "disconnect", "back", "web"]);
    assert_eq!(container_routes(&host, "web"), "");
    // The veth goes in the background (down, without addresses, at once).
    host.wait_for_removals();
    assert_eq!(host.ok(&["exec", "web", "ip", "-br", "link"]).lines().count(), 1);
    // ... and connecting again starts at eth0 with the default route, reusing the address.
    host.ok(&["network", "connect", "bridge", "web"]);
    assert_eq!(host.ip_of("web", "bridge"), "172.17.0.2");
    assert!(container_routes(&host, "web").starts_with("default via 172.17.0.1 dev eth0"));
    // Released addresses are reused: the freed 10.60.0.77 goes to the next --ip.
    host.ok(&["run", "-d", "--name", "late", "--network", "back", "--ip", "10.60.0.77"]);
    assert_eq!(host.ip_of("late", "back"), "10.60.0.77");
    // Docker's `--network default` is the default bridge.
    host.ok(&["run", "-d", "--name", "dflt", "--network", "default"]);
    assert_eq!(host.ip_of("dflt", "bridge"), "172.17.0.3");
}

#[test]
fn automatic_subnets_skip_host_routes() {
    let mut host = TestHost::start();
    // A route to 172.18.0.0/24 on the host: the first user network skips 172.18.0.0/16.
    host.in_host_ok(&["ip", "route", "add", "172.18.0.0/24", "via", "198.51.100.1"]);
    host.ok(&["network", "create", "a"]);
    host.ok(&["network", "create", "b"]);
    let subnet = |n: &str| host.json(&["network", "inspect", n])[0]["IPAM"]["Config"][0]["Subnet"].clone();
    assert_eq!((subnet("a"), subnet("b")), ("172.19.0.0/16".into(), "172.20.0.0/16".into()));
    // A freed pool is not given again at once: the search goes on after the last pool taken
    // (Docker 20.10, measured).
    host.ok(&["network", "rm", "a"]);
    host.ok(&["network", "create", "c"]);
    assert_eq!(subnet("c"), "172.21.0.0/16");
    // An explicit --subnet may overlap a host route (only networks count, as in Docker).
    host.ok(&["network", "create", "--subnet", "172.18.0.0/16", "explicit"]);

    // The default bridge moves off 172.17.0.0/16 when a host route covers it at start.
    host.ok(&["system", "reset"]);
    host.stop_daemon(nix::sys::signal::Signal::SIGTERM);
    host.in_host_ok(&["ip", "route", "add", "172.17.3.0/24", "via", "198.51.100.1"]);
    host.start_daemon();
    let bridge = &host.json(&["network", "inspect", "bridge"])[0]["IPAM"]["Config"][0];
    assert_eq!(bridge, &serde_json::json!({ "Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1" }));
}

/// The MTU of `ifname` inside the netns at `ns`.
fn mtu_in(ns: &std::path::Path, ifname: &str) -> u64 {
    let out = netd_tests::sh(&["nsenter", &format!("--net={}", ns.display()), "ip", "-j", "link", "show", ifname]);
    let links: Value = serde_json::from_str(&out).unwrap();
    links[0]["mtu"].as_u64().unwrap_or_else(|| panic!("no mtu in {out}"))
}

#[test]
fn mtu_option_sets_both_ends_of_every_veth_and_bad_values_get_dockers_errors() {
    let host = TestHost::start();
    // Docker 20.10 reads the value with Go's strconv.Atoi and refuses a negative one
    // (docs/docker-measurements.md, "MTU option"); nothing is created.
    for (value, error) in [
        ("abc", "failed to parse com.docker.network.driver.mtu value: abc (strconv.Atoi: parsing \"abc\": invalid syntax)"),
        ("", "failed to parse com.docker.network.driver.mtu value:  (strconv.Atoi: parsing \"\": invalid syntax)"),
        ("-1", "invalid MTU number: -1"),
        (
            "99999999999999999999",
            "failed to parse com.docker.network.driver.mtu value: 99999999999999999999 (strconv.Atoi: parsing \"99999999999999999999\": value out of range)",
        ),
    ] {
        let opt = format!("com.docker.network.driver.mtu={value}");
        host.fails_cleanly(&["network", "create", "-o", &opt, "bad"], &format!("Error response from daemon: {error}"));
    }

    host.ok(&["network", "create", "-o", "com.docker.network.driver.mtu=1400", "small"]);
    host.ok(&["network", "create", "-o", "com.docker.network.driver.mtu=0", "zero"]);
    host.ok(&["run", "-d", "--name", "ma", "--network", "small"]);
    host.ok(&["run", "-d", "--name", "mb", "--network", "zero"]);
    host.ok(&["network", "connect", "small", "mb"]);
    let host_ns = host.netns_path(&host.host_ns);
    let (a, b) = (host.container_netns("ma"), host.container_netns("mb"));
    assert_eq!(mtu_in(&a, "eth0"), 1400);
    assert_eq!(mtu_in(&b, "eth0"), 1500, "0 is the kernel's default, as in Docker");
    assert_eq!(mtu_in(&b, "eth1"), 1400, "connect makes the veth with the network's MTU");
    let mut host_mtus: Vec<u64> = host.endpoint_veths().iter().map(|v| mtu_in(&host_ns, v)).collect();
    host_mtus.sort();
    assert_eq!(host_mtus, [1400, 1400, 1500], "the host ends match their peers");
    // The inspect shows the option as given, as Docker's does.
    let v = host.json(&["network", "inspect", "small"]);
    assert_eq!(v[0]["Options"]["com.docker.network.driver.mtu"], "1400");

    // A value Docker takes at create but the kernel refuses fails at run and at connect, with
    // Docker's text, and leaves nothing behind.
    host.ok(&["network", "create", "-o", "com.docker.network.driver.mtu=67", "tiny"]);
    let refused = |args: &[&str], prefix: &str, suffix: &str| {
        let before = host.snapshot();
        let err = host.fails(args);
        // The host end's name (nd + 12 hex digits) is the endpoint's.
        let name = err.strip_prefix(prefix).and_then(|e| e.strip_suffix(suffix)).unwrap_or_else(|| panic!("{err:?}"));
        assert!(name.len() == 14 && name.starts_with("nd"), "{err:?}");
        assert_eq!(before, host.snapshot(), "netd {args:?} failed but changed something");
    };
    refused(
        &["run", "-d", "--name", "mc", "--network", "tiny"],
        "netd: Error response from daemon: failed to create endpoint mc on network tiny: failed to set MTU on host interface ",
        ": invalid argument.\nSee 'netd run --help'.",
    );
    refused(
        &["network", "connect", "tiny", "ma"],
        "Error response from daemon: failed to create endpoint ma on network tiny: failed to set MTU on host interface ",
        ": invalid argument",
    );
}
