//! Behaviours measured on Docker 20.10.24 (dockerd in its own netns, busybox image) that netd
//! reproduces: what happens to `container:` sharers when their target goes, `start` of a
//! container whose network was removed, and what a container sees of its own network stack.
use std::{os::unix::fs::MetadataExt, path::Path};

use netd_tests::{agreement::assert_store_and_kernel_agree, TestHost};
use nix::sys::signal::Signal;

/// Each test's own (tests run in parallel, and agreement checks look for every process
/// carrying its marker).
const REMOVED: &str = "600.0731";
const STOPPED: &str = "600.0732";
const GONE: &str = "600.0733";
const STACK: &str = "600.0734";

fn netns_inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).ino()
}

/// `rm -f owner` while `guest` shares its netns: Docker removes the owner; the guest keeps
/// running in the netns, which is left with only `lo` (`ip addr` shows lo alone), its `inspect`
/// keeps `NetworkMode: container:<owner id>` with no networks, and its `start` later fails
/// with `No such container: <owner id>` + `Error: failed to start containers: guest`.
#[test]
fn a_removed_target_leaves_its_sharers_running_with_only_lo() {
    let mut host = TestHost::start();
    host.ok(&["network", "create", "un"]);
    host.ok(&["run", "-d", "--name", "owner", "--network", "un", "--", "sleep", REMOVED]);
    host.ok(&["run", "-d", "--name", "guest", "--network", "container:owner", "--", "sleep", REMOVED]);
    host.ok(&["run", "-d", "--name", "stopped", "--network", "container:owner", "--", "sleep", REMOVED]);
    host.ok(&["stop", "stopped"]);
    let owner_id = host.json(&["inspect", "owner"])[0]["Id"].as_str().unwrap().to_string();
    let hosts_before = host.ok(&["exec", "owner", "cat", "/etc/hosts"]);
    let guest_pid = host.json(&["inspect", "guest"])[0]["State"]["Pid"].as_u64().unwrap();
    let guest_ns = netns_inode(Path::new(&format!("/proc/{guest_pid}/ns/net")));

    assert_eq!(host.ok(&["rm", "-f", "owner"]), "owner\n");
    let ps = host.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.lines().any(|l| l.starts_with("guest Up")), "{ps}");
    assert!(!ps.contains("owner"), "{ps}");
    let guest = &host.json(&["inspect", "guest"])[0];
    assert_eq!(guest["State"]["Status"], "running");
    assert_eq!(guest["State"]["Pid"].as_u64(), Some(guest_pid), "the same process, in the same netns");
    assert_eq!(guest["HostConfig"]["NetworkMode"], format!("container:{owner_id}"));
    assert_eq!(guest["NetworkSettings"]["Networks"], serde_json::json!({}));
    assert_eq!(netns_inode(Path::new(&format!("/proc/{guest_pid}/ns/net"))), guest_ns);
    // exec still works, in that netns: only lo is left; the files are what they were.
    let links = host.ok(&["exec", "guest", "ip", "-o", "link"]);
    assert_eq!(links.lines().map(|l| l.split(':').nth(1).unwrap().trim()).collect::<Vec<_>>(), ["lo"], "{links}");
    assert_eq!(host.ok(&["exec", "guest", "cat", "/etc/hosts"]), hosts_before);
    assert_store_and_kernel_agree(&host, REMOVED);

    // A daemon restart keeps it so.
    host.stop_daemon(Signal::SIGKILL);
    host.start_daemon();
    let guest = &host.json(&["inspect", "guest"])[0];
    assert_eq!((&guest["State"]["Status"], guest["State"]["Pid"].as_u64()), (&"running".into(), Some(guest_pid)));
    assert_eq!(host.ok(&["exec", "guest", "ip", "-o", "link"]), links);
    assert_store_and_kernel_agree(&host, REMOVED);

    // Stopped, it cannot start again: its target is gone (the stopped sharer neither).
    assert_eq!(host.ok(&["stop", "guest"]), "guest\n");
    for name in ["guest", "stopped"] {
        let out = host.netd(&["start", name]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "Error response from daemon: No such container: {owner_id}\nError: failed to start containers: {name}\n"
            )
        );
        let c = &host.json(&["inspect", name])[0];
        assert_eq!(c["State"]["Status"], "exited");
    }
    assert_store_and_kernel_agree(&host, REMOVED);
    host.ok(&["rm", "guest", "stopped"]);
    assert_eq!(host.ok(&["ps", "-aq"]), "");
    assert!(std::fs::read_dir(host.run_dir().join("netns")).map_or(true, |d| d.count() == 0), "no netns left");
    assert_store_and_kernel_agree(&host, REMOVED);
}

/// Stopping the target (or its command ending) releases its network as in Docker: a running
/// sharer stays up in the netns with only `lo`, and does not get the target's new netns when
/// the target starts again.
#[test]
fn a_stopped_target_leaves_its_sharers_in_the_old_netns() {
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "owner", "--", "sleep", STOPPED]);
    host.ok(&["run", "-d", "--name", "guest", "--network", "container:owner", "--", "sleep", STOPPED]);
    host.ok(&["run", "-d", "--name", "brief", "--", "sleep", "1"]);
    host.ok(&["run", "-d", "--name", "rider", "--network", "container:brief", "--", "sleep", STOPPED]);

    assert_eq!(host.ok(&["stop", "owner"]), "owner\n");
    let links = host.ok(&["exec", "guest", "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert_eq!(host.ok(&["start", "owner"]), "owner\n");
    assert!(host.ok(&["exec", "owner", "ip", "-o", "addr"]).contains("172.17.0."));
    assert_eq!(host.ok(&["exec", "guest", "ip", "-o", "link"]), links, "not the owner's new netns");

    // The command of `brief` ends: it stops, `rider` stays up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host.json(&["inspect", "brief"])[0]["State"]["Status"] != "exited" {
        assert!(std::time::Instant::now() < deadline, "brief did not stop");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(host.json(&["inspect", "rider"])[0]["State"]["Status"], "running");
    assert_eq!(host.ok(&["exec", "rider", "ip", "-o", "link"]).lines().count(), 1);
    assert_store_and_kernel_agree(&host, STOPPED);
    // The owner goes while `guest` still holds the netns kept from its first stop.
    host.ok(&["rm", "-f", "owner"]);
    assert_eq!(host.ok(&["exec", "guest", "ip", "-o", "link"]), links, "guest left its kept netns");
    host.ok(&["rm", "-f", "guest", "rider", "brief"]);
    assert!(std::fs::read_dir(host.run_dir().join("netns")).map_or(true, |d| d.count() == 0), "no netns left");
    assert_store_and_kernel_agree(&host, STOPPED);
}

/// `network rm` of a network only stopped containers are attached to succeeds (as in Docker);
/// their `start` then fails with `network <id> not found` and Docker's batch line, exit 1,
/// and leaves the container exited with nothing applied — also once a network of the same
/// name exists again (Docker looks the network up by id).
#[test]
fn start_after_the_network_was_removed_fails_like_dockers() {
    let host = TestHost::start();
    host.ok(&["network", "create", "gone"]);
    let net_id = host.json(&["network", "inspect", "gone"])[0]["Id"].as_str().unwrap().to_string();
    host.ok(&["run", "-d", "--name", "c1", "--network", "gone", "--", "sleep", GONE]);
    assert!(host.fails(&["network", "rm", "gone"]).contains("has active endpoints"));
    host.ok(&["stop", "c1"]);
    assert_eq!(host.ok(&["network", "rm", "gone"]), "gone\n");
    for again in [false, true] {
        if again {
            host.ok(&["network", "create", "gone"]);
        }
        let before = host.snapshot();
        let out = host.netd(&["start", "c1"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("Error response from daemon: network {net_id} not found\nError: failed to start containers: c1\n")
        );
        assert_eq!(host.snapshot(), before, "nothing applied");
        assert_eq!(host.json(&["inspect", "c1"])[0]["State"]["Status"], "exited");
    }
    assert_store_and_kernel_agree(&host, GONE);
}

/// `busybox ip addr` in a Docker container (default bridge, user network, `none`): IPv6 off
/// (no `::1` on lo, no link-local on eth0, `disable_ipv6` 1 for all/default/lo/eth0), eth0's
/// link an index that names nothing inside (`eth0@if13`, hence `M-DOWN`), no qlen (txqueuelen
/// 0, on the host end too), MTU 1500; the default route and the subnet's; `/etc/hosts` ending
/// with `IP\t<short id>`; resolv.conf the upstreams (bridge) or 127.0.0.11 + `options ndots:0`.
#[test]
fn a_containers_own_view_of_its_network_is_dockers() {
    let host = TestHost::start();
    host.ok(&["network", "create", "un"]);
    host.ok(&["run", "-d", "--name", "b1", "--", "sleep", STACK]);
    host.ok(&["run", "-d", "--name", "u1", "--network", "un", "--", "sleep", STACK]);
    host.ok(&["run", "-d", "--name", "n1", "--network", "none", "--", "sleep", STACK]);
    let lo = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n";
    for (name, ip, gateway, subnet, resolv) in [
        ("b1", "172.17.0.2", "172.17.0.1", "172.17.0.0/16", format!("nameserver {}\n", netd_tests::OUTSIDE_ADDR)),
        ("u1", "172.18.0.2", "172.18.0.1", "172.18.0.0/16", "nameserver 127.0.0.11\noptions ndots:0\n".into()),
    ] {
        let c = &host.json(&["inspect", name])[0];
        let (short, mac) = (
            &c["Id"].as_str().unwrap()[..12],
            c["NetworkSettings"]["Networks"].as_object().unwrap().values().next().unwrap()["MacAddress"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        let addr = host.ok(&["exec", name, "busybox", "ip", "addr"]);
        // `N: eth0@ifM:` — indexes vary; M names no link inside.
        let (head, rest) = addr.strip_prefix(lo).unwrap_or_else(|| panic!("{addr}")).split_once(": eth0@if").unwrap();
        let (peer, rest) = rest.split_once(':').unwrap();
        assert!(head.parse::<u32>().is_ok() && peer.parse::<u32>().is_ok(), "{addr}");
        assert_ne!(head, peer);
        let brd = ip.rsplit_once('.').unwrap().0.rsplit_once('.').unwrap().0.to_string() + ".255.255";
        assert_eq!(
            rest,
            format!(" <BROADCAST,MULTICAST,UP,LOWER_UP,M-DOWN> mtu 1500 qdisc noqueue \n    link/ether {mac} brd ff:ff:ff:ff:ff:ff\n    inet {ip}/16 brd {brd} scope global eth0\n       valid_lft forever preferred_lft forever\n"),
            "{addr}"
        );
        let sysctls = host.ok(&[
            "exec",
            name,
            "sh",
            "-c",
            "cd /proc/sys/net/ipv6/conf && cat all/disable_ipv6 default/disable_ipv6 lo/disable_ipv6 eth0/disable_ipv6",
        ]);
        assert_eq!(sysctls, "1\n1\n1\n1\n");
        assert!(host.ok(&["exec", name, "busybox", "ifconfig", "eth0"]).contains("collisions:0 txqueuelen:0 \n"));
        assert_eq!(
            host.ok(&["exec", name, "busybox", "ip", "route"]),
            format!("default via {gateway} dev eth0 \n{subnet} dev eth0 scope link  src {ip} \n")
        );
        let hosts = host.ok(&["exec", name, "cat", "/etc/hosts"]);
        assert!(hosts.ends_with(&format!("ff02::2\tip6-allrouters\n{ip}\t{short}\n")), "{hosts}");
        assert_eq!(host.ok(&["exec", name, "cat", "/etc/resolv.conf"]), resolv);
    }
    assert_eq!(host.ok(&["exec", "n1", "busybox", "ip", "addr"]), lo);
    // The host ends: txqueuelen 0 (`ip` prints no qlen then, as for Docker's); one TX and one
    // RX queue (what the kernel lowers a veth to, made so); IPv4 forwarding on for each (the
    // programs' route lookup needs it), set over netlink.
    let links: serde_json::Value =
        serde_json::from_str(&host.in_host_ok(&["ip", "-j", "-d", "link", "show", "type", "veth"])).unwrap();
    let netd_links: Vec<_> =
        links.as_array().unwrap().iter().filter(|l| l["ifname"].as_str().unwrap().starts_with("nd")).collect();
    assert_eq!(netd_links.len(), 2, "{links}");
    for l in netd_links {
        assert_eq!(
            (l["txqlen"].as_u64().unwrap_or(0), l["mtu"].as_u64()),
            (0, Some(1500)),
            "{l}: no qlen printed is 0"
        );
        assert_eq!((l["num_tx_queues"].as_u64(), l["num_rx_queues"].as_u64()), (Some(1), Some(1)), "{l}");
        let forwarding = format!("/proc/sys/net/ipv4/conf/{}/forwarding", l["ifname"].as_str().unwrap());
        assert_eq!(host.in_host_ok(&["cat", &forwarding]).trim(), "1", "{forwarding}");
    }
    assert_store_and_kernel_agree(&host, STACK);
}
