//! `BPF_PROG_TEST_RUN` tests of the published-port edges (issue 11): spoofed sources at the
//! uplink, broadcast never matching a wildcard publish, ICMP errors an endpoint sends about a
//! published flow, and later fragments on the hairpin path. The topology and packet builders
//! are `prog_test_nat`'s and `prog_test_ports`'s.
use std::net::Ipv4Addr;

use netd_common::{DropReason, Hook};

use super::{
    prog_test_nat::{
        alice, arriving, assert_frame, assert_reassembles, big_udp, bob, delivered, fragments, from, leaving, tcp, udp,
        with_quoted_l4_checksum_of, Nat, Pkt, CPORT, GATEWAY, L4, NAT_ADDR, TCP_ACK, TCP_SYN,
    },
    prog_test_ports::{carol, into, port, publish, to_host, to_peer, CLIENT_PORT, SECOND_ADDR},
    prog_test_support::{in_private_netns, ip, TC_ACT_OK, TC_ACT_REDIRECT},
    Datapath, Proto,
};

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_PORT_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;

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

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_container_reaches_a_wildcard_publish_on_host_addresses_never_on_a_broadcast_address() {
    in_private_netns(|| {
        let t = Nat::new("edge_hairpin_broadcast");
        ip(&["addr", "add", "198.51.100.3/24", "brd", "+", "dev", "up0"]);
        let (a, b) = (alice(), bob());
        publish(&t, &[port(None, 5353, Proto::Udp, &a, 53)]);
        t.fx.datapath.set_host_addresses(&[NAT_ADDR, SECOND_ADDR]).expect("host addresses");
        t.send_as(&b);
        // The subnet's broadcast address is the host's to take, untranslated.
        let frame = to_host(&b, SUBNET_BROADCAST, udp(CPORT, 5353)).frame();
        assert_eq!(t.fx.run(&frame), (TC_ACT_OK, frame.clone()), "to {SUBNET_BROADCAST}");
        // Host addresses and the gateway answer.
        for (dst, cport) in [(NAT_ADDR, CPORT), (SECOND_ADDR, CPORT + 1), (GATEWAY, CPORT + 2)] {
            t.assert_out(&to_host(&b, dst, udp(cport, 5353)), &into(&a, b.ip, udp(cport, 53)));
        }
        assert_eq!(t.ct_entries().len(), 3, "no flow for the broadcast datagram: {:?}", t.ct_entries());
        t.assert_drops(&[]);
    })
}

// ---------------------------------------------------------------------------------------------
// ICMP errors an endpoint sends about a published flow
// ---------------------------------------------------------------------------------------------

fn unreachable(code: u8, mtu: u16, quoted: Vec<u8>) -> L4 {
    L4::Error { ty: ICMP_DEST_UNREACH, code, mtu, quoted }
}

/// The endpoint program must redirect `sent`, an ICMP error, as `expected` whose quoted packet
/// is `expected_quoted` (its L4 checksum, which netd leaves as the endpoint quoted it, taken
/// from the output).
fn assert_error_out(t: &Nat, sent: &Pkt, expected: impl Fn(L4) -> Pkt, code: u8, mtu: u16, expected_quoted: Vec<u8>) {
    let (verdict, out) = t.out(sent);
    assert_eq!(verdict, TC_ACT_REDIRECT, "verdict for {sent:?}");
    let quoted = with_quoted_l4_checksum_of(&out, expected_quoted);
    assert_frame(&out, &expected(unreachable(code, mtu, quoted)).frame());
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn icmp_errors_the_endpoint_sends_about_a_published_flow_go_out_from_the_published_address() {
    in_private_netns(|| {
        let t = Nat::new("edge_icmp_out");
        let a = alice();
        t.fx.datapath.set_host_addresses(&[NAT_ADDR, SECOND_ADDR]).expect("host addresses");
        ip(&["addr", "add", "198.51.100.3/24", "dev", "up0"]);
        publish(&t, &[port(None, 5353, Proto::Udp, &a, 53), port(None, 8080, Proto::Tcp, &a, 80)]);
        // The client's datagram, to a port nothing listens on in the container...
        t.assert_back(&arriving(udp(CLIENT_PORT, 5353)), &delivered(&a, udp(CLIENT_PORT, 53)));
        // ...which answers "port unreachable" quoting all of it, as it received it.
        let received = delivered(&a, udp(CLIENT_PORT, 53));
        let sent = from(&a, unreachable(ICMP_PORT_UNREACH, 0, received.ip()));
        // The client gets it from the published address, about what it sent there.
        let as_sent = Pkt { dst: NAT_ADDR, ..delivered(&a, udp(CLIENT_PORT, 5353)) };
        assert_error_out(&t, &sent, leaving, ICMP_PORT_UNREACH, 0, as_sent.ip());

        // A publish on another host address: that address is the source; a TCP flow, a minimal
        // quote ("fragmentation needed" from the endpoint's side).
        t.assert_back(
            &arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)).to(SECOND_ADDR),
            &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)),
        );
        let received = delivered(&a, tcp(CLIENT_PORT, 80, TCP_ACK));
        let sent = from(&a, unreachable(ICMP_FRAG_NEEDED, 1400, received.ip()[..28].to_vec()));
        let as_sent = Pkt { dst: SECOND_ADDR, ..delivered(&a, tcp(CLIENT_PORT, 8080, TCP_ACK)) };
        let leaving_second = |l4| Pkt { src: SECOND_ADDR, ..leaving(l4) };
        assert_error_out(&t, &sent, leaving_second, ICMP_FRAG_NEEDED, 1400, as_sent.ip()[..28].to_vec());

        // About no published flow (another client port; or quoting a packet the endpoint did
        // not receive from that client): dropped as before.
        let other = from(&a, unreachable(ICMP_PORT_UNREACH, 0, delivered(&a, udp(CLIENT_PORT + 1, 53)).ip()));
        let other = t.assert_out_dropped(&other);
        let elsewhere = Pkt {
            dst: Ipv4Addr::new(203, 0, 113, 99),
            ..from(&a, unreachable(ICMP_PORT_UNREACH, 0, delivered(&a, udp(CLIENT_PORT, 53)).ip()))
        };
        let elsewhere = t.assert_out_dropped(&elsewhere);
        t.assert_drops(&[
            (Hook::EndpointIngress, DropReason::UnsupportedProtocol, &other),
            (Hook::EndpointIngress, DropReason::UnsupportedProtocol, &elsewhere),
        ]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn icmp_errors_the_endpoint_sends_to_a_hairpin_client_come_from_the_published_address() {
    in_private_netns(|| {
        let t = Nat::new("edge_icmp_hairpin");
        let (a, b, c) = (alice(), bob(), carol());
        publish(&t, &[port(None, 5353, Proto::Udp, &a, 53)]);
        // Bob (same network) and carol (another one) send to the published port.
        for (client, cport) in [(&b, CPORT), (&c, CPORT + 1)] {
            t.send_as(client);
            t.assert_out(&to_host(client, NAT_ADDR, udp(cport, 5353)), &into(&a, client.ip, udp(cport, 53)));
            t.send_as(&a);
            let received = into(&a, client.ip, udp(cport, 53));
            // Alice answers bob directly, carol through her gateway.
            let sent = if client.network_index == a.network_index {
                to_peer(&a, client, unreachable(ICMP_PORT_UNREACH, 0, received.ip()))
            } else {
                to_host(&a, client.ip, unreachable(ICMP_PORT_UNREACH, 0, received.ip()))
            };
            let as_sent = Pkt { dst: NAT_ADDR, ..into(&a, client.ip, udp(cport, 5353)) };
            let expected = |l4| Pkt { src: NAT_ADDR, ..into(client, NAT_ADDR, l4) };
            assert_error_out(&t, &sent, expected, ICMP_PORT_UNREACH, 0, as_sent.ip());
        }
        // Alice reaching her own published port: seen from her gateway; the error about it
        // comes back to her own address from the published one.
        t.assert_out(&to_host(&a, NAT_ADDR, udp(CPORT + 2, 5353)), &into(&a, GATEWAY, udp(CPORT + 2, 53)));
        let received = into(&a, GATEWAY, udp(CPORT + 2, 53));
        let sent = to_host(&a, GATEWAY, unreachable(ICMP_PORT_UNREACH, 0, received.ip()));
        let as_sent = Pkt { src: a.ip, dst: NAT_ADDR, ..into(&a, GATEWAY, udp(CPORT + 2, 5353)) };
        let expected = |l4| Pkt { src: NAT_ADDR, ..into(&a, NAT_ADDR, l4) };
        assert_error_out(&t, &sent, expected, ICMP_PORT_UNREACH, 0, as_sent.ip());
        t.assert_drops(&[]);
    })
}

// ---------------------------------------------------------------------------------------------
// Later fragments on the hairpin path
// ---------------------------------------------------------------------------------------------

/// Runs both fragments of `sent` (identification `id`) through the endpoint program; each must
/// be redirected as the matching fragment of `want`, and together they make `want`'s datagram.
fn assert_fragments_out(t: &Nat, sent: &Pkt, want: &Pkt, id: u16) {
    let out: Vec<Vec<u8>> = fragments(sent, id)
        .iter()
        .zip(fragments(want, id))
        .map(|(frame, expected)| {
            let (verdict, out) = t.fx.run(frame);
            assert_eq!(verdict, TC_ACT_REDIRECT, "verdict for {frame:02x?}");
            assert_frame(&out, &expected);
            out
        })
        .collect();
    assert_reassembles(&out, want);
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn fragmented_datagrams_on_the_hairpin_path_are_translated_whole_both_ways() {
    in_private_netns(|| {
        let t = Nat::new("edge_hairpin_frag");
        let (a, b) = (alice(), bob());
        publish(&t, &[port(None, 5353, Proto::Udp, &a, 53)]);
        // Bob to the published port and alice's answer to him.
        t.send_as(&b);
        assert_fragments_out(&t, &to_host(&b, NAT_ADDR, big_udp(CPORT, 5353)), &into(&a, b.ip, big_udp(CPORT, 53)), 1);
        t.send_as(&a);
        let reply = Pkt { src: NAT_ADDR, ..into(&b, NAT_ADDR, big_udp(5353, CPORT)) };
        assert_fragments_out(&t, &to_peer(&a, &b, big_udp(53, CPORT)), &reply, 2);
        // Alice to her own published port (from her gateway) and her answer to herself.
        let c = CPORT + 1;
        assert_fragments_out(&t, &to_host(&a, NAT_ADDR, big_udp(c, 5353)), &into(&a, GATEWAY, big_udp(c, 53)), 3);
        let reply = Pkt { src: NAT_ADDR, ..into(&a, NAT_ADDR, big_udp(5353, c)) };
        assert_fragments_out(&t, &to_host(&a, GATEWAY, big_udp(53, c)), &reply, 4);
        // A datagram of alice's to bob that is no reply, reusing identification 2: its later
        // fragment is not taken for the earlier reply's.
        for frame in fragments(&to_peer(&a, &b, big_udp(7777, 7777)), 2) {
            assert_eq!(t.fx.run(&frame), (TC_ACT_REDIRECT, frame.clone()), "forwarded as it is");
        }
        // Bob's datagram to the host itself, reusing identification 1: the host's.
        t.send_as(&b);
        for frame in fragments(&to_host(&b, NAT_ADDR, big_udp(CPORT, 9999)), 1) {
            assert_eq!(t.fx.run(&frame), (TC_ACT_OK, frame.clone()), "the host's");
        }
        t.assert_drops(&[]);
    })
}
