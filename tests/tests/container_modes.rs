//! Containers end to end: `run` in Docker's forms (IMAGE [CMD], `-- CMD`, -e, --rm, attached
//! and interactive), `ps`, `inspect`, `stop`/`start`, `rm`, and the `host`, `none` and
//! `container:NAME` network modes.
use std::{
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

use netd_tests::{netd_bin, sh, TestHost};
use serde_json::Value;

/// The netns inode of a path (a mounted netns, or /proc/PID/ns/net).
fn netns_inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).ino()
}

/// Waits (bounded) until `ok` holds.
fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_forms_ps_inspect_stop_start_and_rm() {
    let host = TestHost::start();
    // Docker's forms: IMAGE with options before it; IMAGE CMD...; -- CMD...; no name.
    let web = host.ok(&["run", "-itd", "--name", "web", "nginx"]).trim().to_string();
    assert_eq!(web.len(), 64);
    host.ok(&["run", "-d", "--name", "one", "-e", "GREETING=hello world", "-e", "EMPTY=", "busybox", "sleep", "600"]);
    host.ok(&["run", "-d", "--name", "two", "--", "sleep", "601"]);
    let anon = host.ok(&["run", "-d", "busybox"]).trim().to_string();

    let one = &host.json(&["inspect", "one"])[0];
    assert_eq!(one["Config"]["Image"], "busybox");
    assert_eq!(one["Config"]["Cmd"], serde_json::json!(["sleep", "600"]));
    assert_eq!((&one["Path"], &one["Args"]), (&"sleep".into(), &serde_json::json!(["600"])));
    assert_eq!(one["Config"]["Env"], serde_json::json!(["GREETING=hello world", "EMPTY="]));
    assert_eq!(one["State"]["Status"], "running");
    assert!(one["State"]["Pid"].as_u64().unwrap() > 0);
    assert_eq!(one["Config"]["Hostname"], &one["Id"].as_str().unwrap()[..12]);
    // The command really runs in the container's netns, with its environment.
    let pid = one["State"]["Pid"].as_u64().unwrap();
    assert_eq!(netns_inode(Path::new(&format!("/proc/{pid}/ns/net"))), netns_inode(&host.container_netns("one")));
    assert_eq!(host.ok(&["exec", "one", "sh", "-c", "echo $GREETING"]), "hello world\n");
    assert_eq!(host.ok(&["exec", "-e", "X=1", "one", "--", "sh", "-c", "echo $X $GREETING"]), "1 hello world\n");
    assert_eq!(host.ok(&["exec", "one", "hostname"]).trim(), &one["Id"].as_str().unwrap()[..12]);
    let two = &host.json(&["container", "inspect", "two"])[0];
    assert_eq!((&two["Config"]["Image"], &two["Config"]["Cmd"]), (&"".into(), &serde_json::json!(["sleep", "601"])));
    // A generated name: adjective_surname.
    let anon_name = host.json(&["inspect", &anon])[0]["Name"].as_str().unwrap().trim_start_matches('/').to_string();
    assert!(anon_name.split_once('_').is_some_and(|(a, b)| !a.is_empty() && !b.is_empty()), "{anon_name}");

    // ps: Docker's columns, newest first.
    let ps = host.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    let header = lines[0];
    for (col, next) in [("CONTAINER ID", "IMAGE"), ("IMAGE", "COMMAND"), ("COMMAND", "CREATED"), ("CREATED", "STATUS")]
    {
        let (a, b) = (header.find(col).unwrap(), header.find(next).unwrap());
        assert!(a < b, "{col} before {next} in {header:?}");
    }
    assert!(header.ends_with("PORTS     NAMES"), "{header:?}");
    assert_eq!(lines.len(), 5);
    let names: Vec<&str> = lines[1..].iter().map(|l| l.split_whitespace().last().unwrap()).collect();
    assert_eq!(names, [anon_name.as_str(), "two", "one", "web"]);
    let one_row = lines.iter().find(|l| l.ends_with(" one")).unwrap();
    assert!(one_row.starts_with(&host.json(&["inspect", "one"])[0]["Id"].as_str().unwrap()[..12]));
    assert!(one_row.contains("   busybox   \"sleep 600\"   "), "{one_row}");
    assert!(one_row.contains(" ago ") && one_row.contains("   Up "), "{one_row}");
    let web_row = lines.iter().find(|l| l.ends_with(" web")).unwrap();
    assert!(web_row.contains("   nginx     \"\"   "), "{web_row}");
    assert_eq!(host.ok(&["ps", "-q"]).lines().count(), 4);
    assert_eq!(
        host.ok(&["ps", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.State}}"]).lines().nth(2),
        Some("one busybox \"sleep 600\" running")
    );
    let json_line: Value = serde_json::from_str(host.ok(&["ps", "--format", "json"]).lines().next().unwrap()).unwrap();
    assert_eq!(json_line["Names"], anon_name.as_str());
    assert_eq!(json_line["Networks"], "bridge");
    assert_eq!(host.ok(&["container", "ls", "-q"]), host.ok(&["ps", "-q"]));

    // stop: the command ends, the network is released (address, veth, netns), ps hides it,
    // ps -a shows it Exited; the attachments are kept for start.
    let one_ip = host.ip_of("one", "bridge");
    assert_eq!(host.ok(&["stop", "one", "web"]), "one\nweb\n");
    eventually("one's command to end", || !Path::new(&format!("/proc/{pid}")).exists());
    assert!(!host.container_netns("one").exists());
    let stopped = &host.json(&["inspect", "one"])[0];
    assert_eq!((&stopped["State"]["Status"], &stopped["State"]["Running"]), (&"exited".into(), &false.into()));
    assert_eq!(stopped["State"]["ExitCode"], 137);
    assert_eq!(stopped["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], "");
    assert_eq!(host.json(&["network", "inspect", "bridge"])[0]["Containers"].as_object().unwrap().len(), 2);
    assert_eq!(host.ok(&["ps", "-q"]).lines().count(), 2);
    let all = host.ok(&["ps", "-a"]);
    let row = all.lines().find(|l| l.ends_with(" one")).unwrap();
    assert!(row.contains("Exited (137) "), "{row}");
    let row = all.lines().find(|l| l.ends_with(" web")).unwrap();
    assert!(row.contains("Exited (0) "), "{row}");
    // Stopping again is fine; start brings back its network and command.
    assert_eq!(host.ok(&["stop", "one"]), "one\n");
    assert_eq!(host.ok(&["start", "one"]), "one\n");
    let started = &host.json(&["inspect", "one"])[0];
    assert_eq!(started["State"]["Status"], "running");
    assert_ne!(started["State"]["Pid"], pid);
    assert!(host.container_netns("one").exists());
    let again = host.ip_of("one", "bridge");
    assert!(again.starts_with("172.17.0."), "{again} (was {one_ip})");
    host.ok(&["exec", "one", "ping", "-c", "1", "-W", "2", &host.ip_of("two", "bridge")]);

    // rm: -f for a running command; several at once; what it was given is printed.
    assert_eq!(host.ok(&["rm", "-f", "one", "two"]), "one\ntwo\n");
    assert_eq!(host.ok(&["rm", "web", &anon[..12]]), format!("web\n{}\n", &anon[..12]));
    assert_eq!(host.ok(&["ps", "-aq"]), "");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(std::fs::read_dir(host.run_dir().join("netns")).unwrap().count(), 0);
}

#[test]
fn attached_interactive_and_auto_removed_runs() {
    let host = TestHost::start();
    host.ok(&["network", "create", "--subnet", "10.70.0.0/24", "att"]);
    host.ok(&["run", "-d", "--name", "target", "--network", "att", "--ip", "10.70.0.9"]);

    // Attached: the command's output and exit code come back; the container then stops.
    let out =
        host.ok(&["run", "--name", "pinger", "--network", "att", "busybox", "ping", "-c", "1", "-W", "2", "10.70.0.9"]);
    assert!(out.contains("1 received"), "{out}");
    let p = &host.json(&["inspect", "pinger"])[0];
    assert_eq!((&p["State"]["Status"], &p["State"]["ExitCode"]), (&"exited".into(), &0.into()));
    let failed = host.netd(&["run", "--name", "failing", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.status.code(), Some(7));
    assert_eq!(host.json(&["inspect", "failing"])[0]["State"]["ExitCode"], 7);

    // --hostname: the command's hostname and the container's /etc/hosts.
    let out = host.ok(&[
        "run",
        "--rm",
        "--hostname",
        "myhost",
        "--network",
        "att",
        "--",
        "sh",
        "-c",
        "hostname; cat /etc/hosts",
    ]);
    assert!(out.starts_with("myhost\n"), "{out}");
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["10.70.0.2", "myhost"]), "{out}");

    // Interactive (-it, no CMD): a shell reading stdin, in the container's netns — here the
    // seed's `run -it --network none` that shows only `lo`; --rm removes it afterwards.
    let (code, out, _) = host.netd_with_stdin(
        &["run", "-it", "--rm", "--name", "shell", "--network", "none", "ubuntu:14.04"],
        "ip -o link\nexit 3\n",
    );
    assert_eq!(code, 3);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains(": lo:"), "{out}");
    assert!(host.fails(&["inspect", "shell"]).contains("No such object"));

    // Detached --rm: removed when its command exits.
    host.ok(&["run", "-d", "--rm", "--name", "brief", "--network", "att", "--", "sleep", "0.2"]);
    eventually("brief to be removed", || !host.netd(&["inspect", "brief"]).status.success());
    assert_eq!(host.json(&["network", "inspect", "att"])[0]["Containers"].as_object().unwrap().len(), 1);
    // Detached without --rm: stopped when its command exits (network released).
    host.ok(&["run", "-d", "--name", "ends", "--network", "att", "--", "sh", "-c", "exit 5"]);
    eventually("ends to stop", || host.json(&["inspect", "ends"])[0]["State"]["Running"] == false);
    assert_eq!(host.json(&["inspect", "ends"])[0]["State"]["ExitCode"], 5);
    assert_eq!(host.json(&["network", "inspect", "att"])[0]["Containers"].as_object().unwrap().len(), 1);
    // A stopped container may be connected (applied at start) and started again.
    host.ok(&["network", "connect", "bridge", "ends"]);
    let nets = host.json(&["inspect", "ends"])[0]["NetworkSettings"]["Networks"].clone();
    assert_eq!(nets.as_object().unwrap().keys().collect::<Vec<_>>(), ["att", "bridge"]);
}

#[test]
fn host_mode_shares_the_daemons_netns() {
    let host = TestHost::start();
    let links_before = host.in_host_ok(&["ip", "-o", "link", "show"]);
    let id = host.ok(&["run", "-d", "--name", "h1", "--network", "host", "nginx"]).trim().to_string();
    let h = &host.json(&["inspect", "h1"])[0];
    let sandbox = h["NetworkSettings"]["SandboxKey"].as_str().unwrap().to_string();
    assert_eq!(Path::new(&sandbox), host.run_dir().join("host-netns"));
    assert_eq!(netns_inode(Path::new(&sandbox)), netns_inode(&host.netns_path(&host.host_ns)));
    assert_eq!(h["HostConfig"]["NetworkMode"], "host");
    let nets = &h["NetworkSettings"]["Networks"];
    assert_eq!(nets.as_object().unwrap().keys().collect::<Vec<_>>(), ["host"]);
    assert_eq!(nets["host"]["IPAddress"], "");
    // No veth, no address: the host's own interfaces, also for `exec` run from another netns.
    assert_eq!(host.in_host_ok(&["ip", "-o", "link", "show"]), links_before);
    let outside = host.netns_path(&host.outside_ns);
    let addrs = sh(&[
        "nsenter",
        &format!("--net={}", outside.display()),
        netd_bin().to_str().unwrap(),
        "--socket",
        host.socket().to_str().unwrap(),
        "exec",
        "h1",
        "ip",
        "-br",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(addrs.contains("198.51.100.2/24"), "exec into a host container from the outside netns saw:\n{addrs}");
    // A command started in it runs in the daemon's netns too, with the host's hostname.
    host.ok(&["run", "-d", "--name", "hc", "--network", "host", "--", "sleep", "600"]);
    let pid = host.json(&["inspect", "hc"])[0]["State"]["Pid"].as_u64().unwrap();
    assert_eq!(netns_inode(Path::new(&format!("/proc/{pid}/ns/net"))), netns_inode(Path::new(&sandbox)));
    let hostname = sh(&["hostname"]);
    assert_eq!(host.ok(&["exec", "hc", "hostname"]), hostname);
    let listed = &host.json(&["network", "inspect", "host"])[0]["Containers"];
    assert_eq!(listed.as_object().unwrap().len(), 2);
    assert_eq!(listed[&id]["Name"], "h1");
    host.ok(&["rm", "-f", "h1", "hc"]);
    // The daemon's netns mount stays for the next host container.
    assert!(host.run_dir().join("host-netns").exists());
}

#[test]
fn none_mode_has_only_loopback() {
    let host = TestHost::start();
    let id = host.ok(&["run", "-itd", "--name", "nonetest", "--network", "none", "ubuntu:14.04"]).trim().to_string();
    let links = host.ok(&["exec", "nonetest", "ip", "-o", "link"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains(": lo:") && links.contains("UP"), "{links}");
    assert_eq!(host.ok(&["exec", "nonetest", "ip", "-4", "route"]), "");
    let c = &host.json(&["inspect", "nonetest"])[0];
    assert_eq!(c["HostConfig"]["NetworkMode"], "none");
    assert_eq!(c["NetworkSettings"]["Networks"].as_object().unwrap().keys().collect::<Vec<_>>(), ["none"]);
    assert_eq!(host.json(&["network", "inspect", "none"])[0]["Containers"][&id]["Name"], "nonetest");
    // The seed's error, and nothing changed.
    host.fails_cleanly(
        &["network", "connect", "bridge", "nonetest"],
        "Error response from daemon: container cannot be connected to multiple networks with one of the networks in private (none) mode",
    );
    assert_eq!(host.ok(&["exec", "nonetest", "ip", "-o", "link"]), links);
    // Leaving `none` first makes it connectable, as in Docker.
    host.ok(&["network", "disconnect", "none", "nonetest"]);
    host.ok(&["network", "connect", "bridge", "nonetest"]);
    assert_eq!(host.ip_of("nonetest", "bridge"), "172.17.0.2");
    assert_eq!(host.ok(&["exec", "nonetest", "ip", "-o", "link"]).lines().count(), 2);
}

#[test]
fn container_mode_follows_its_target() {
    let host = TestHost::start();
    host.ok(&["network", "create", "bridgetest"]);
    host.ok(&["run", "-itd", "--name", "sourcecontainer", "--network", "bridgetest", "ubuntu:14.04"]);
    let src_id = host.json(&["inspect", "sourcecontainer"])[0]["Id"].as_str().unwrap().to_string();
    host.ok(&["run", "-itd", "--name", "targetcontainer", "--network", "container:sourcecontainer", "ubuntu:14.04"]);
    host.ok(&["run", "-d", "--name", "proc", "--network", "container:sourcecontainer", "--", "sleep", "600"]);

    // Same netns (same eth0, IP and MAC), same hostname; in inspect, as in Docker 20.10, its
    // files and hostname but no networks or sandbox of its own.
    let src_links = host.ok(&["exec", "sourcecontainer", "ip", "-o", "addr"]);
    assert_eq!(host.ok(&["exec", "targetcontainer", "ip", "-o", "addr"]), src_links);
    assert!(src_links.contains("172.18.0.2/16"));
    let pid = host.json(&["inspect", "proc"])[0]["State"]["Pid"].as_u64().unwrap();
    assert_eq!(
        netns_inode(Path::new(&format!("/proc/{pid}/ns/net"))),
        netns_inode(&host.container_netns("sourcecontainer"))
    );
    assert_eq!(host.ok(&["exec", "targetcontainer", "hostname"]).trim(), &src_id[..12]);
    let t = &host.json(&["inspect", "targetcontainer"])[0];
    assert_eq!(t["HostConfig"]["NetworkMode"], format!("container:{src_id}"));
    let s = &host.json(&["inspect", "sourcecontainer"])[0];
    assert_eq!(t["NetworkSettings"]["Networks"], serde_json::json!({}));
    assert_eq!((&t["NetworkSettings"]["SandboxID"], &t["NetworkSettings"]["SandboxKey"]), (&"".into(), &"".into()));
    assert_eq!(t["NetworkSettings"]["IPAddress"], "");
    assert_eq!(t["HostsPath"], s["HostsPath"]);
    assert_eq!(t["Config"]["Hostname"], s["Config"]["Hostname"]);
    assert_eq!(s["NetworkSettings"]["Networks"]["bridgetest"]["MacAddress"], "02:42:ac:12:00:02");
    let ps = host.ok(&["ps", "--format", "{{.Names}}:{{.Networks}}"]);
    assert!(ps.lines().any(|l| l == "targetcontainer:"), "{ps}");
    // Only the target has an endpoint on the network.
    let members = host.json(&["network", "inspect", "bridgetest"])[0]["Containers"].clone();
    assert_eq!(members.as_object().unwrap().keys().collect::<Vec<_>>(), [&src_id]);

    // Connecting the target shows in both; so does disconnecting.
    host.ok(&["network", "connect", "bridge", "sourcecontainer"]);
    assert_eq!(host.ip_of("sourcecontainer", "bridge"), "172.17.0.2");
    assert!(host.ok(&["exec", "targetcontainer", "ip", "-o", "addr"]).contains("172.17.0.2/16"));
    host.ok(&["network", "disconnect", "bridgetest", "sourcecontainer"]);
    let addrs = host.ok(&["exec", "targetcontainer", "ip", "-o", "addr"]);
    assert!(addrs.contains("172.17.0.2/16") && !addrs.contains("172.18.0.2/16"), "{addrs}");

    // The target can go while shared, as in Docker: the sharers stay up in its netns, which
    // is left with `lo` only (more in `behaviours.rs`).
    host.ok(&["rm", "-f", "sourcecontainer"]);
    assert_eq!(host.ok(&["exec", "proc", "ip", "-o", "link"]).lines().count(), 1);
    host.ok(&["rm", "-f", "proc", "targetcontainer"]);
    assert_eq!(host.ok(&["ps", "-aq"]), "");
}
