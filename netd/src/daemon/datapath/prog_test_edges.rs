//! `BPF_PROG_TEST_RUN` tests of the published-port edges (issue 11): spoofed sources at the
//! uplink, broadcast never matching a wildcard publish, ICMP errors an endpoint sends about a
//! published flow, and later fragments on the hairpin path. The topology and packet builders
//! are `prog_test_nat`'s and `prog_test_ports`'s.
use std::net::Ipv4Addr;

use netd_common::{DropReason, Hook};

use super::{
    prog_test_nat::{alice, arriving, bob, delivered, from, leaving, tcp, udp, Nat, GATEWAY, NAT_ADDR, TCP_SYN},
    prog_test_ports::{port, publish, CLIENT_PORT, SECOND_ADDR},
    prog_test_support::{in_private_netns, ip, TC_ACT_OK},
    Datapath, Proto,
};

/// The broadcast address of the uplink's /24.
const SUBNET_BROADCAST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 255);

// ---------------------------------------------------------------------------------------------
// Spoofed sources
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn packets_from_the_uplink_with_a_netd_source_are_dropped_before_any_translation() {
    in_private_netns(|| {
        let t = Nat::new("edge_spoof");
        let (a, b) = (alice(), bob());
        t.fx.datapath.insert_endpoint_only_for_test(&b);
        t.fx.datapath.set_host_addresses(&[NAT_ADDR, GATEWAY]).expect("host addresses");
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80), port(None, 5353, Proto::Udp, &a, 53)]);
        // Alice has a masqueraded flow whose replies come from the server.
        t.assert_out(&from(&a, udp(40_000, 53)), &leaving(udp(40_000, 53)));
        let ct_before = t.ct_entries();

        let mut dropped = Vec::new();
        // To a published port, to the host itself, and as a "reply" of alice's flow: from an
        // endpoint (alice herself, bob), from a gateway, from the uplink's own address.
        for src in [a.ip, b.ip, GATEWAY, NAT_ADDR] {
            for sent in [
                arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)).from(src),
                arriving(udp(CLIENT_PORT, 5353)).from(src),
                arriving(tcp(CLIENT_PORT, 22, TCP_SYN)).from(src),
                arriving(udp(53, 40_000)).from(src),
            ] {
                dropped.push(t.assert_back_dropped(&sent));
            }
        }
        assert_eq!(t.ct_entries(), ct_before, "a spoofed packet neither opens nor touches a flow");

        // The same packets from outside addresses are translated (or the host's) as before.
        t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)));
        t.assert_back(&arriving(udp(53, 40_000)), &delivered(&a, udp(53, 40_000)));
        let host = arriving(tcp(CLIENT_PORT, 22, TCP_SYN)).frame();
        assert_eq!(t.fx.run_uplink(&host), (TC_ACT_OK, host.clone()));
        let expected: Vec<_> =
            dropped.iter().map(|f| (Hook::UplinkIngress, DropReason::SpoofedSource, f.as_slice())).collect();
        t.assert_drops(&expected);
    })
}

// ---------------------------------------------------------------------------------------------
// Which destinations a wildcard publish answers on
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_wildcard_publish_answers_on_host_addresses_never_on_a_broadcast_address() {
    in_private_netns(|| {
        let t = Nat::new("edge_broadcast");
        ip(&["addr", "add", "198.51.100.3/24", "brd", "+", "dev", "up0"]);
        let routes = std::process::Command::new("ip")
            .args(["route", "show", "table", "local", "type", "broadcast"])
            .output()
            .expect("ip route");
        let routes = String::from_utf8_lossy(&routes.stdout);
        assert!(routes.contains(&SUBNET_BROADCAST.to_string()), "a broadcast route for the subnet: {routes}");
        let a = alice();
        publish(&t, &[port(None, 5353, Proto::Udp, &a, 53), port(None, 8080, Proto::Tcp, &a, 80)]);
        t.fx.datapath.set_host_addresses(&[NAT_ADDR, SECOND_ADDR]).expect("host addresses");
        // The subnet's broadcast address is local to the FIB, not an address of the host.
        for sent in [arriving(udp(CLIENT_PORT, 5353)), arriving(tcp(CLIENT_PORT, 8080, TCP_SYN))] {
            let frame = sent.to(SUBNET_BROADCAST).frame();
            assert_eq!(t.fx.run_uplink(&frame), (TC_ACT_OK, frame.clone()), "to {SUBNET_BROADCAST}");
        }
        // Host addresses still answer: the uplink's own, and one the daemon lists.
        t.assert_back(&arriving(udp(CLIENT_PORT, 5353)), &delivered(&a, udp(CLIENT_PORT, 53)));
        t.assert_back(&arriving(udp(CLIENT_PORT + 1, 5353)).to(SECOND_ADDR), &delivered(&a, udp(CLIENT_PORT + 1, 53)));
        assert_eq!(t.ct_entries().len(), 2, "no flow for the broadcast datagrams: {:?}", t.ct_entries());
        t.assert_drops(&[]);
    })
}
