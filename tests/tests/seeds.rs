//! The five seed articles (shared/seeds/), replayed with `netd` in place of `docker`: every
//! network command they show, in their order, with the outputs they show (modulo ids and
//! times). Containers ping each other by name, as the articles do, through the embedded DNS
//! (127.0.0.11) of user-defined networks. Seed 003's `--link` sequence is replayed in
//! hosts_entries.rs. Their `-p`/`--publish` commands are replayed for what the control plane
//! shows (`ps` PORTS, `port`, `inspect`); traffic through published ports is checked elsewhere.
use std::path::PathBuf;

use netd_tests::{tcp_exchange, TestHost};
use serde_json::{json, Value};

fn id(host: &TestHost, args: &[&str]) -> String {
    host.json(args)[0]["Id"].as_str().unwrap().to_string()
}

fn ls_names(host: &TestHost) -> Vec<(String, String, String)> {
    host.ok(&["network", "ls"])
        .lines()
        .skip(1)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[1].to_string(), w[2].to_string(), w[3].to_string())
        })
        .collect()
}

/// Pings `to` (a name or an address) from `from`; returns ping's output.
fn ping(host: &TestHost, from: &str, to: &str) -> String {
    host.ok(&["exec", from, "ping", "-c", "2", "-W", "2", to])
}

/// 000: my-net, one and two, connect/disconnect, ping, rm with active endpoints, stop, prune.
#[test]
fn seed_000_docker_network() {
    let host = TestHost::start();
    host.ok(&["network", "create", "my-net"]);
    assert!(ls_names(&host).contains(&("my-net".into(), "bridge".into(), "local".into())));

    let net = &host.json(&["network", "inspect", "my-net"])[0];
    let net_id = net["Id"].as_str().unwrap().to_string();
    let expected = json!({
        "Name": "my-net", "Id": net_id, "Created": net["Created"], "Scope": "local", "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": {}, "Config": [{ "Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1" }] },
        "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": { "Network": "" }, "ConfigOnly": false,
        "Containers": {}, "Options": {}, "Labels": {}
    });
    assert_eq!(net, &expected);

    let one = host.ok(&["run", "-it", "-d", "--name", "one", "busybox"]).trim().to_string();
    let bridge = &host.json(&["network", "inspect", "bridge"])[0]["Containers"][&one];
    assert_eq!(bridge["Name"], "one");
    assert_eq!(bridge["MacAddress"], "02:42:ac:11:00:02");
    assert_eq!(bridge["IPv4Address"], "172.17.0.2/16");
    assert_eq!(bridge["IPv6Address"], "");

    host.ok(&["network", "connect", "my-net", "one"]);
    let entry = &host.json(&["network", "inspect", "my-net"])[0]["Containers"][&one];
    assert_eq!((&entry["Name"], &entry["MacAddress"]), (&"one".into(), &"02:42:ac:12:00:02".into()));
    assert_eq!(entry["IPv4Address"], "172.18.0.2/16");

    host.ok(&["network", "disconnect", "bridge", "one"]);
    assert_eq!(host.json(&["network", "inspect", "bridge"])[0]["Containers"], json!({}));

    let two = host.ok(&["run", "-it", "-d", "--name", "two", "--network", "my-net", "busybox"]).trim().to_string();
    let members = host.json(&["network", "inspect", "my-net"])[0]["Containers"].clone();
    assert_eq!(members.as_object().unwrap().len(), 2);
    assert_eq!(members[&two]["IPv4Address"], "172.18.0.3/16");
    assert_eq!(members[&two]["MacAddress"], "02:42:ac:12:00:03");

    // `docker exec one ping two` / `docker exec two ping one`, by name.
    assert!(ping(&host, "one", "two").starts_with("PING two (172.18.0.3)"));
    assert!(ping(&host, "two", "one").starts_with("PING one (172.18.0.2)"));

    assert_eq!(
        host.fails(&["network", "rm", "my-net"]),
        format!(
            "Error response from daemon: error while removing network: network my-net id {net_id} has active endpoints"
        )
    );
    assert_eq!(host.ok(&["stop", "one", "two"]), "one\ntwo\n");
    assert_eq!(host.ok(&["network", "rm", "my-net"]), "my-net\n");

    // `docker network prune`, answered "y".
    host.ok(&["network", "create", "leftover"]);
    let (code, out, _) = host.netd_with_stdin(&["network", "prune"], "y\n");
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] Deleted Networks:\nleftover\n\n"
    );
    let names: Vec<String> = ls_names(&host).into_iter().map(|n| n.0).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
}

/// 001: default addresses, network ls/inspect/create --driver=, --network=host/none,
/// container: sharing, connecting after start.
#[test]
fn seed_001_network_structure() {
    let host = TestHost::start();
    // `docker run -it ubuntu:focal`, then ifconfig inside: eth0 172.17.0.2.
    let (code, out, err) = host.netd_with_stdin(&["run", "-it", "ubuntu:focal"], "ifconfig eth0\nexit\n");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("inet 172.17.0.2"), "{out}");
    assert!(out.contains("02:42:ac:11:00:02"), "{out}");

    let names: Vec<String> = ls_names(&host).into_iter().map(|n| n.0).collect();
    assert_eq!(names, ["bridge", "host", "none"]);
    assert_eq!(host.json(&["network", "inspect", "bridge"])[0]["Name"], "bridge");

    host.ok(&["network", "create", "--driver=bridge", "seunghwan-bridge"]);
    assert!(ls_names(&host).contains(&("seunghwan-bridge".into(), "bridge".into(), "local".into())));
    let c = host.ok(&["run", "-d", "--network=seunghwan-bridge", "nginx"]).trim().to_string();
    assert_eq!(
        host.json(&["network", "inspect", "seunghwan-bridge"])[0]["Containers"][&c]["IPv4Address"],
        "172.18.0.2/16"
    );

    // `docker run -d --network=host nginx`: no ports, no address; the host's interfaces.
    let h = host.ok(&["run", "-d", "--network=host", "nginx"]).trim().to_string();
    assert!(host.ok(&["exec", &h, "ifconfig"]).contains("198.51.100.2"));
    // `docker run --network none ubuntu:focal`
    let n = host.ok(&["run", "--network", "none", "ubuntu:focal"]).trim().to_string();
    assert_eq!(host.ok(&["exec", &n, "ip", "-o", "link"]).lines().count(), 1);

    host.ok(&["run", "-it", "-d", "--name", "network_container_1", "ubuntu:18.04"]);
    host.ok(&[
        "run",
        "-it",
        "-d",
        "--name",
        "network_container_2",
        "--net",
        "container:network_container_1",
        "ubuntu:18.04",
    ]);
    let first = host.ok(&["exec", "network_container_1", "ifconfig", "eth0"]);
    assert_eq!(mac_and_inet(&host.ok(&["exec", "network_container_2", "ifconfig", "eth0"])), mac_and_inet(&first));
    // The interactive container above has exited and released 172.17.0.2.
    assert_eq!(mac_and_inet(&first), (Some("02:42:ac:11:00:02".into()), Some("172.17.0.2".into())));

    // Joining at run time, and after start.
    host.ok(&["network", "create", "customNetwork"]);
    host.ok(&["run", "--network", "customNetwork", "--name", "container1", "containerImage:1"]);
    assert_eq!(host.ip_of("container1", "customNetwork"), "172.19.0.2");
    host.ok(&["network", "create", "our-net"]);
    host.ok(&["run", "-d", "--name", "one", "busybox"]);
    host.ok(&["network", "connect", "our-net", "one"]);
    assert_eq!(host.ip_of("one", "our-net"), "172.20.0.2");
}

/// 002: web on the default bridge, my_bridge with db, isolation, connecting web, the
/// inspect --format templates.
#[test]
fn seed_002_user_defined_bridge() {
    let host = TestHost::start();
    assert_eq!(ls_names(&host).len(), 3);
    let web = host.ok(&["run", "-itd", "--name=web", "nginx"]).trim().to_string();
    assert_eq!(host.json(&["network", "inspect", "bridge"])[0]["Containers"][&web]["Name"], "web");
    let bridge_ipam = &host.json(&["network", "inspect", "bridge"])[0]["IPAM"]["Config"][0];
    assert_eq!(bridge_ipam, &json!({ "Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1" }));

    host.ok(&["network", "create", "my_bridge"]);
    host.ok(&["run", "-d", "--net=my_bridge", "--name=db", "redis"]);
    let nets: Value =
        serde_json::from_str(&host.ok(&["inspect", "--format={{json .NetworkSettings.Networks}}", "db"])).unwrap();
    assert_eq!(nets.as_object().unwrap().keys().collect::<Vec<_>>(), ["my_bridge"]);
    assert_eq!(nets["my_bridge"]["IPAddress"], "172.18.0.2");
    assert_eq!(nets["my_bridge"]["Gateway"], "172.18.0.1");

    // web (172.17.0.2) and db are on different networks: db's pings are dropped.
    let out = host.netd(&["exec", "db", "ping", "-c", "1", "-W", "1", "172.17.0.2"]);
    assert!(!out.status.success(), "db reached web across networks");

    host.ok(&["network", "connect", "my_bridge", "web"]);
    assert_eq!(host.json(&["network", "inspect", "my_bridge"])[0]["Containers"][&web]["Name"], "web");
    let ips =
        host.ok(&["inspect", "--format={{range .NetworkSettings.Networks}}{{split .IPAddress \",\"}}{{end}}", "web"]);
    assert_eq!(ips, "[172.17.0.2][172.18.0.3]\n");
    // `docker container exec -it db bash` then `ping web`: by the container's name.
    let out = host.ok(&["container", "exec", "-it", "db", "ping", "-c", "2", "-W", "2", "web"]);
    assert!(out.starts_with("PING web (172.18.0.3)"), "{out}");

    host.ok(&["network", "disconnect", "my_bridge", "web"]);
    assert!(host.netd(&["exec", "db", "ping", "-c", "1", "-W", "1", "172.18.0.3"]).status.code() != Some(0));
    host.ok(&["network", "connect", &id(&host, &["network", "inspect", "my_bridge"])[..12], &web[..12]]);
    assert!(ping(&host, "db", "web").starts_with(&format!("PING web ({})", host.ip_of("web", "my_bridge"))));
}

/// 003: bridgetest, --subnet/--ip-range/--gateway, host, none (and its error), container:,
/// a shared localhost, aliases.
#[test]
fn seed_003_bridge_host_none_container() {
    let host = TestHost::start();
    // A first container takes 172.17.0.2, as in the article.
    let (code, out, _) = host.netd_with_stdin(&["run", "-it", "-d", "ubuntu:14.04"], "");
    assert_eq!(code, 0);
    let first = out.trim().to_string();
    assert!(host.ok(&["exec", &first, "ifconfig", "eth0"]).contains("inet 172.17.0.2"));

    let ls = host.ok(&["network", "ls"]);
    let rows: Vec<Vec<&str>> = ls.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(ls.lines().next().unwrap(), "NETWORK ID     NAME      DRIVER    SCOPE");
    assert_eq!(
        rows[1..].iter().map(|r| (r[1], r[2], r[3])).collect::<Vec<_>>(),
        [("bridge", "bridge", "local"), ("host", "host", "local"), ("none", "null", "local")]
    );
    let b = &host.json(&["inspect", "--type", "network", "bridge"])[0]["IPAM"];
    assert_eq!(b["Driver"], "default");
    assert_eq!(b["Config"], json!([{ "Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1" }]));

    host.ok(&["network", "create", "--driver", "bridge", "bridgetest"]);
    // `docker run -it --network bridgetest ubuntu:14.04`, kept running (-d) so that the
    // article's inspect and connect/disconnect can follow.
    let kind = host.ok(&["run", "-itd", "--network", "bridgetest", "ubuntu:14.04"]).trim().to_string();
    let ifc = host.ok(&["exec", &kind, "ifconfig", "eth0"]);
    assert!(ifc.contains("inet 172.18.0.2") && ifc.contains("02:42:ac:12:00:02"), "{ifc}");
    let name = host.json(&["inspect", &kind])[0]["Name"].as_str().unwrap().trim_start_matches('/').to_string();
    let entry = &host.json(&["inspect", "--type", "network", "bridgetest"])[0]["Containers"][&kind];
    assert_eq!(
        entry,
        &json!({ "Name": name, "EndpointID": entry["EndpointID"], "MacAddress": "02:42:ac:12:00:02", "IPv4Address": "172.18.0.2/16", "IPv6Address": "" })
    );
    host.ok(&["network", "disconnect", "bridgetest", &name]);
    assert_eq!(host.json(&["inspect", "--type", "network", "bridgetest"])[0]["Containers"], json!({}));
    host.ok(&["network", "connect", "bridge", &name]);
    let entry = &host.json(&["inspect", "--type", "network", "bridge"])[0]["Containers"][&kind];
    assert_eq!((&entry["MacAddress"], &entry["IPv4Address"]), (&"02:42:ac:11:00:03".into(), &"172.17.0.3/16".into()));

    // --subnet, --ip-range, --gateway.
    host.ok(&[
        "network",
        "create",
        "--subnet",
        "172.30.0.0/16",
        "--ip-range",
        "172.30.5.0/24",
        "--gateway",
        "172.30.5.254",
        "rangetest",
    ]);
    host.ok(&["run", "-itd", "--name", "ranged", "--network", "rangetest", "ubuntu:14.04"]);
    let ifc = host.ok(&["exec", "ranged", "ifconfig", "eth0"]);
    assert!(ifc.contains("inet 172.30.5.0") && ifc.contains("netmask 255.255.0.0"), "{ifc}");
    assert!(host.ok(&["exec", "ranged", "ip", "route"]).starts_with("default via 172.30.5.254 dev eth0"));

    // Host: the host's interfaces (its uplink and netd's veths).
    let (code, out, _) = host.netd_with_stdin(
        &["run", "-it", "--name", "hostnettest", "--network", "host", "ubuntu:14.04"],
        "ifconfig -a\n",
    );
    assert_eq!(code, 0);
    assert!(out.contains("198.51.100.2") && out.contains("nd"), "{out}");

    // None: only lo; connecting it later fails with Docker's message.
    let (code, out, _) =
        host.netd_with_stdin(&["run", "-it", "--name", "nonetest", "--network", "none", "ubuntu:14.04"], "ifconfig\n");
    assert_eq!(code, 0);
    assert!(out.starts_with("lo:") && !out.contains("eth0"), "{out}");
    assert_eq!(
        host.fails(&["network", "connect", "bridge", "nonetest"]),
        "Error response from daemon: container cannot be connected to multiple networks with one of the networks in private (none) mode"
    );

    // Container network: same eth0, MAC and address.
    host.ok(&["run", "-itd", "--name", "sourcecontainer", "--network", "bridgetest", "ubuntu:14.04"]);
    let src = host.ok(&["exec", "sourcecontainer", "ifconfig", "eth0"]);
    assert!(src.contains("inet 172.18.0.2") && src.contains("02:42:ac:12:00:02"), "{src}");
    host.ok(&["run", "-itd", "--name", "targetcontainer", "--network", "container:sourcecontainer", "ubuntu:14.04"]);
    let tgt = host.ok(&["exec", "targetcontainer", "ifconfig", "eth0"]);
    assert_eq!(mac_and_inet(&tgt), mac_and_inet(&src));

    // The MySQL/Node.js experiment: the sharer reaches the target's service on localhost.
    host.ok(&[
        "run",
        "-d",
        "--name",
        "sqlbridge",
        "-e",
        "MYSQL_ROOT_PASSWORD=hoplin1234!",
        "--network",
        "bridgetest",
        "mysql",
    ]);
    host.ok(&["run", "-itd", "--name", "nodectn", "--network", "container:sqlbridge", "nodebridge"]);
    let sandbox =
        |c: &str| PathBuf::from(host.json(&["inspect", c])[0]["NetworkSettings"]["SandboxKey"].as_str().unwrap());
    // A `container:` sharer has no SandboxKey of its own (Docker 20.10): its commands run in
    // sqlbridge's netns.
    assert_eq!(sandbox("nodectn"), PathBuf::new());
    let netns = sandbox("sqlbridge");
    assert_eq!(tcp_exchange(&netns, &netns, "127.0.0.1", 3306, "select 1+1"), "SELECT 1+1");
    assert_eq!(host.ok(&["exec", "nodectn", "ip", "-o", "addr"]), host.ok(&["exec", "sqlbridge", "ip", "-o", "addr"]));
    assert_eq!(host.ok(&["exec", "sqlbridge", "printenv", "MYSQL_ROOT_PASSWORD"]), "hoplin1234!\n");

    // Aliases on a user network, resolved by the embedded DNS at 127.0.0.11.
    host.ok(&[
        "run",
        "--name",
        "bridgeredis",
        "--network",
        "bridgetest",
        "--network-alias",
        "rediss",
        "-p",
        "6379:6379",
        "-d",
        "arm64v8/redis",
    ]);
    let sql = host.ok(&[
        "run",
        "-d",
        "-e",
        "MYSQL_ROOT_PASSWORD=hoplin1234!",
        "-e",
        "MYSQL_ROOT_HOST=%",
        "--network",
        "bridgetest",
        "--network-alias",
        "sqll",
        "--publish",
        "3306:3306",
        "mysql",
    ]);
    let sql = sql.trim();
    assert_eq!(host.ok(&["port", "bridgeredis"]), "6379/tcp -> 0.0.0.0:6379\n");
    assert_eq!(host.ok(&["port", sql, "3306"]), "0.0.0.0:3306\n");
    assert_eq!(
        host.json(&["inspect", sql])[0]["NetworkSettings"]["Ports"],
        json!({"3306/tcp": [{"HostIp": "0.0.0.0", "HostPort": "3306"}]})
    );
    host.ok(&["rm", "-f", "nodectn"]);
    host.ok(&["run", "-itd", "--name", "nodectn", "--network", "bridgetest", "--net-alias", "nodesql", "nodebridge"]);
    // Docker 20.10 lists the short id after the aliases given.
    let aliases = |c: &str| {
        let c = &host.json(&["inspect", c])[0];
        (c["NetworkSettings"]["Networks"]["bridgetest"]["Aliases"].clone(), c["Id"].as_str().unwrap()[..12].to_string())
    };
    let (redis, id) = aliases("bridgeredis");
    assert_eq!(redis, json!(["rediss", id]));
    let (node, id) = aliases("nodectn");
    assert_eq!(node, json!(["nodesql", id]));
    // `dig sqll` / `dig rediss` in nodectn: the aliased containers' addresses, from 127.0.0.11.
    for (alias, container) in [("sqll", sql), ("rediss", "bridgeredis")] {
        let dig = host.ok(&["exec", "nodectn", "dig", "+time=3", "+tries=2", alias]);
        let ip = host.ip_of(container, "bridgetest");
        let answer = [format!("{alias}."), "600".into(), "IN".into(), "A".into(), ip];
        assert!(dig.lines().any(|l| l.split_whitespace().eq(answer.iter().map(String::as_str))), "{dig}");
        assert!(dig.contains("SERVER: 127.0.0.11#53(127.0.0.11)"), "{dig}");
    }
}

fn mac_and_inet(ifconfig: &str) -> (Option<String>, Option<String>) {
    let word_after = |key: &str| {
        let words: Vec<&str> = ifconfig.split_whitespace().collect();
        words.iter().position(|w| *w == key).and_then(|i| words.get(i + 1)).map(|w| w.to_string())
    };
    (word_after("ether"), word_after("inet"))
}

/// 004: a container's address from `container inspect`, --network before the network
/// exists, connect/disconnect after start, rm and prune.
#[test]
fn seed_004_container_networking() {
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "mongodb", "mongo"]);
    let c = &host.json(&["container", "inspect", "mongodb"])[0];
    assert_eq!(c["NetworkSettings"]["IPAddress"], "172.17.0.2");
    assert_eq!(c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "172.17.0.2");
    host.ok(&["rm", "-f", "mongodb"]);

    // Networks are not created on demand: the run fails until the network exists.
    assert_eq!(
        host.fails(&["run", "-d", "--name", "mongodb", "--network", "favorites-net", "mongo"]),
        "netd: Error response from daemon: network favorites-net not found."
    );
    host.ok(&["network", "create", "favorites-net"]);
    host.ok(&["run", "-d", "--name", "mongodb", "--network", "favorites-net", "mongo"]);
    assert_eq!(host.ip_of("mongodb", "favorites-net"), "172.18.0.2");

    host.ok(&["network", "create", "my_network"]);
    host.ok(&["run", "-d", "--name", "springbootback", "springboot"]);
    host.ok(&["network", "connect", "my_network", "springbootback"]);
    ping(&host, "springbootback", "172.19.0.1");
    host.ok(&[
        "run",
        "--rm",
        "-d",
        "-p",
        "3000:3000",
        "--name",
        "favorites",
        "--network",
        "favorites-net",
        "favorites-node",
    ]);
    assert_eq!(host.ok(&["port", "favorites"]), "3000/tcp -> 0.0.0.0:3000\n");
    // `mongodb://mongodb:27017/...`: the container's name as its address.
    let out = ping(&host, "favorites", "mongodb");
    assert!(out.starts_with(&format!("PING mongodb ({})", host.ip_of("mongodb", "favorites-net"))), "{out}");
    // `host.docker.internal`: the host, through the container's gateway.
    assert!(ping(&host, "favorites", "host.docker.internal").starts_with("PING host.docker.internal (172.18.0.1)"));
    host.ok(&["network", "disconnect", "my_network", "springbootback"]);

    assert!(host.fails(&["network", "rm", "favorites-net"]).ends_with("has active endpoints"));
    assert_eq!(host.ok(&["network", "rm", "my_network"]), "my_network\n");
    host.ok(&["rm", "-f", "mongodb", "favorites"]);
    assert_eq!(host.ok(&["network", "prune", "-f"]), "Deleted Networks:\nfavorites-net\n\n");

    // Two containers, the same container port on host ports 8080 and 8081.
    host.ok(&["run", "-p", "8080:8080", "--name", "a1", "containerA"]);
    host.ok(&["run", "-p", "8081:8080", "--name", "b1", "containerB"]);
    let ports = host.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ports.lines().any(|l| l == "a1 0.0.0.0:8080->8080/tcp"), "{ports}");
    assert!(ports.lines().any(|l| l == "b1 0.0.0.0:8081->8080/tcp"), "{ports}");
}

/// 001's three `-p` examples, one after the other: every host address, a random host port
/// (the seed's 49153 was an older Docker's range; netd's comes from ip_local_port_range), one
/// address.
#[test]
fn seed_001_publishing() {
    let host = TestHost::start();
    let c = host.ok(&["run", "-d", "-p", "80:80", "nginx"]).trim().to_string();
    assert_eq!(host.ok(&["ps", "--format", "{{.Ports}}"]), "0.0.0.0:80->80/tcp\n");
    assert_eq!(host.ok(&["port", &c]), "80/tcp -> 0.0.0.0:80\n");
    // Another container cannot have the same port on any address.
    let err = host.fails(&["run", "-d", "-p", "127.0.0.1:80:80", "nginx"]);
    assert!(
        err.ends_with("Error starting userland proxy: listen tcp4 127.0.0.1:80: bind: address already in use."),
        "{err}"
    );
    host.ok(&["rm", "-f", &c]);

    let c = host.ok(&["run", "-d", "-p", "80", "nginx"]).trim().to_string();
    let range = host.in_host_ok(&["cat", "/proc/sys/net/ipv4/ip_local_port_range"]);
    let first: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    // Docker's allocator starts at the range's start.
    assert_eq!(host.ok(&["port", &c]), format!("80/tcp -> 0.0.0.0:{first}\n"));
    assert_eq!(host.ok(&["ps", "--format", "{{.Ports}}"]), format!("0.0.0.0:{first}->80/tcp\n"));
    host.ok(&["rm", "-f", &c]);

    let c = host.ok(&["run", "-d", "-p", "127.0.0.1:80:80", "nginx"]).trim().to_string();
    assert_eq!(host.ok(&["ps", "--format", "{{.Ports}}"]), "127.0.0.1:80->80/tcp\n");
    assert_eq!(
        host.json(&["inspect", &c])[0]["HostConfig"]["PortBindings"],
        json!({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "80"}]})
    );
}
