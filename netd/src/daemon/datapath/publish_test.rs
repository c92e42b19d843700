//! `publish`/`unpublish`/`keep_published` and the netns's `ip_local_reserved_ports`: netd adds
//! and removes only its own ports, keeps the admin's, and a restarted daemon reconciles against
//! the file and the pinned reserved-port map. The sysctl is a temp file here.
use std::{net::Ipv4Addr, path::PathBuf};

use super::{prog_test_support::Fixture, Datapath, Proto, PublishedPort};

fn port(host_port: u16, proto: Proto) -> PublishedPort {
    PublishedPort { host_addr: None, host_port, proto, backend_addr: Ipv4Addr::new(10, 77, 0, 2), backend_port: 80 }
}

struct Sysctl(PathBuf);

impl Sysctl {
    fn new(test: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("netd-unit-{}-{test}-reserved", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Sysctl(path)
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap().trim().to_string()
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn published_ports_are_reserved_from_ephemeral_ports_and_the_admins_stay() {
    let sysctl = Sysctl::new("reserve", "8080,9000-9001\n");
    let mut fixture = Fixture::with_endpoints("reserve", &[]);
    fixture.datapath.set_reserved_ports_sysctl(sysctl.0.clone());
    let dp = &fixture.datapath;

    // 8080 was the admin's: it stays when netd's publish on it goes.
    dp.publish(&[port(8080, Proto::Tcp), port(8081, Proto::Tcp), port(8081, Proto::Udp)]).unwrap();
    assert_eq!(sysctl.read(), "8080-8081,9000-9001");
    dp.unpublish(&[port(8081, Proto::Tcp)]).unwrap();
    assert_eq!(sysctl.read(), "8080-8081,9000-9001", "8081/udp still published");
    dp.unpublish(&[port(8080, Proto::Tcp), port(8081, Proto::Udp)]).unwrap();
    assert_eq!(sysctl.read(), "8080,9000-9001");

    // A restart: the pinned map says which ports are netd's; keep_published removes the rest.
    dp.publish(&[port(7000, Proto::Tcp), port(7001, Proto::Udp)]).unwrap();
    assert_eq!(sysctl.read(), "7000-7001,8080,9000-9001");
    dp.keep_published(&[port(7001, Proto::Udp)]).unwrap();
    assert_eq!(sysctl.read(), "7001,8080,9000-9001");

    // system reset: netd's ports go, the admin's stay.
    dp.purge().unwrap();
    assert_eq!(sysctl.read(), "8080,9000-9001");
}

#[test]
fn the_last_of_netds_ports_leaves_the_sysctl_empty() {
    let sysctl = Sysctl::new("empty", "\n");
    let mut fixture = Fixture::with_endpoints("empty", &[]);
    fixture.datapath.set_reserved_ports_sysctl(sysctl.0.clone());
    fixture.datapath.publish(&[port(20000, Proto::Tcp), port(20001, Proto::Tcp)]).unwrap();
    assert_eq!(sysctl.read(), "20000-20001");
    fixture.datapath.unpublish(&[port(20000, Proto::Tcp), port(20001, Proto::Tcp)]).unwrap();
    assert_eq!(sysctl.read(), "");
}

#[test]
fn a_publish_that_fails_midway_leaves_the_maps_and_the_sysctl_as_they_were() {
    use netd_common::{maps, PortKey, ServiceKey, ServiceValue};
    let sysctl = Sysctl::new("rollback", "\n");
    // Room for three services: the fourth insert fails.
    let mut fixture = Fixture::with_map_sizes("rollback", &[], &[(maps::SERVICES, 3)]);
    fixture.datapath.set_reserved_ports_sysctl(sysctl.0.clone());
    let dp = &fixture.datapath;
    let on = |addr: [u8; 4], host_port: u16, proto: Proto| PublishedPort {
        host_addr: Some(addr.into()),
        ..port(host_port, proto)
    };
    dp.publish(&[on([127, 0, 0, 1], 9000, Proto::Tcp)]).unwrap();
    let before = (
        dp.entries_for_test::<ServiceKey, ServiceValue>(maps::SERVICES),
        dp.entries_for_test::<PortKey, u8>(maps::RESERVED_PORTS),
        sysctl.read(),
    );
    assert_eq!(before.2, "9000");
    // 9000/tcp on another address shares the reserved entry of the port already published.
    let batch = [on([10, 0, 0, 1], 9000, Proto::Tcp), port(7000, Proto::Udp), port(7001, Proto::Tcp)];
    assert!(dp.publish(&batch).is_err(), "the services map holds three entries");
    let after = (
        dp.entries_for_test::<ServiceKey, ServiceValue>(maps::SERVICES),
        dp.entries_for_test::<PortKey, u8>(maps::RESERVED_PORTS),
        sysctl.read(),
    );
    assert_eq!(after, before);
}

/// A cgroup of its own under the cgroup2 mount (no process in it), removed on drop.
struct ScratchCgroup(std::path::PathBuf);

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_restarted_datapath_adopts_the_pinned_cgroup_links() {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(root) = crate::daemon::supervisor::cgroup::cgroup2_mount(&mountinfo) else {
        eprintln!("no cgroup2 mount: skipped");
        return;
    };
    let cgroup = ScratchCgroup(root.join(format!("netd-unit-{}", std::process::id())));
    std::fs::create_dir_all(&cgroup.0).unwrap();
    let first = Fixture::with_endpoints("adopt", &[]);
    first.datapath.attach_sock_lb_at(&cgroup.0).unwrap();
    let before = first.datapath.sock_lb_links_for_test();
    let second = first.reload();
    second.datapath.attach_sock_lb_at(&cgroup.0).unwrap();
    let after = second.datapath.sock_lb_links_for_test();
    assert_eq!(before.len(), 5);
    for ((link1, prog1), (link2, prog2)) in before.iter().zip(&after) {
        assert_eq!(link1, link2, "link not adopted");
        assert_ne!(prog1, prog2, "the adopted link runs the new program");
    }
}
