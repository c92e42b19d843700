//! `run --link NAME[:ALIAS]` and `--add-host`: extra /etc/hosts lines, as in seed 003
//! (`docker run --link linktest1` then `ping -c 1 linktest1` and `cat /etc/hosts`).
use netd_tests::TestHost;

#[test]
fn links_and_added_hosts_land_in_etc_hosts_and_resolve() {
    let host = TestHost::start();
    host.ok(&["run", "-itd", "--name", "linktest1", "ubuntu:14.04"]);
    let target = host.json(&["inspect", "linktest1"]);
    let id12 = &target[0]["Id"].as_str().unwrap()[..12];
    host.ok(&[
        "run",
        "-d",
        "--name",
        "linktest2",
        "--link",
        "linktest1",
        "--link",
        "linktest1:db",
        "--add-host",
        "foo.example:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "ubuntu:14.04",
    ]);
    let own = host.json(&["inspect", "linktest2"]);
    let own_id12 = &own[0]["Id"].as_str().unwrap()[..12];

    let hosts = host.ok(&["exec", "linktest2", "--", "cat", "/etc/hosts"]);
    let expected = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n\
         172.17.0.2\tlinktest1 {id12}\n172.17.0.2\tdb {id12} linktest1\n10.1.2.3\tfoo.example\n\
         172.17.0.1\tgw\n172.17.0.3\t{own_id12}\n"
    );
    assert_eq!(hosts, expected);

    // The names resolve through /etc/hosts: ping by link name and by alias.
    let ping = host.ok(&["exec", "linktest2", "--", "ping", "-c", "1", "-W", "2", "linktest1"]);
    assert!(ping.contains("PING linktest1 (172.17.0.2)"), "{ping}");
    host.ok(&["exec", "linktest2", "--", "ping", "-c", "1", "-W", "2", "db"]);
    // The linked container's own file is untouched.
    let target_hosts = host.ok(&["exec", "linktest1", "--", "cat", "/etc/hosts"]);
    // (Compared by whole names: a container id may well begin with "db".)
    let names: Vec<&str> = target_hosts.lines().flat_map(|l| l.split_whitespace().skip(1)).collect();
    assert!(!names.contains(&"linktest2") && !names.contains(&"db"), "{target_hosts}");
}

#[test]
fn bad_links_and_added_hosts_fail_cleanly() {
    let host = TestHost::start();
    host.ok(&["run", "-d", "--name", "target", "busybox"]);
    host.ok(&["network", "create", "other"]);
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--link", "nope", "busybox"],
        "netd: Error response from daemon: could not get container for nope: No such container: nope.\nSee 'netd run --help'.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "other", "--link", "target", "busybox"],
        "netd: Error response from daemon: Cannot link to /target, as it does not belong to the network other.\nSee 'netd run --help'.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--network", "none", "--link", "target", "busybox"],
        "netd: Error response from daemon: Cannot link to /target, as it does not belong to the default network.\nSee 'netd run --help'.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--add-host", "nocolon", "busybox"],
        "invalid argument \"nocolon\" for \"--add-host\" flag: bad format for add-host: \"nocolon\"\nSee 'netd run --help'.",
    );
    host.fails_cleanly(
        &["run", "-d", "--name", "x1", "--add-host", "h:not-an-ip", "busybox"],
        "invalid argument \"h:not-an-ip\" for \"--add-host\" flag: invalid IP address in add-host: \"not-an-ip\"\nSee 'netd run --help'.",
    );
}
