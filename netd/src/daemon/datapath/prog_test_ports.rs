//! `BPF_PROG_TEST_RUN` tests of published ports: destination NAT of a client's packets at the
//! uplink program (from outside) and at the endpoint program (hairpin from containers), the
//! endpoint's replies translated back, conntrack entries with `CT_DNAT`, which addresses a
//! publish answers on, and the loader's upkeep of `IF_PUBLISHES` and of `CT_DNAT` entries.
//!
//! The topology is `prog_test_nat`'s (uplink `up0` with 198.51.100.2, the test interface
//! ifindex 1 registered as an uplink with the same address, containers sending through
//! ifindex 1 by taking over its interface entry with `send_as`). Ports are published with
//! `Datapath::publish`, as the daemon does. Every packet a program returns is compared with one
//! built from scratch, and its checksums are verified on their own.
//!
//! Test-run only returns a redirect verdict (`bpf_redirect_peer` is not carried out), so these
//! tests check the translated packet and the verdict, not the delivery itself.
use std::net::Ipv4Addr;

use netd_common::{
    maps,
    timeouts::{TCP_ESTABLISHED, TCP_OPENING, UDP},
    CtEntry, CtKey, DropReason, Hook, InterfaceValue, NatReverse, CT_CLOSED, CT_DNAT, CT_ESTABLISHED, CT_FIN_ORIGINAL,
    CT_FIN_REPLY, CT_OPEN, CT_SEEN_REPLY, IF_PUBLISHES,
};

use super::{
    prog_test_nat::{
        alice, arriving, assert_expires, assert_frame, assert_nat_range, bob, ct_key, delivered, from, key, leaving,
        tcp, timed, udp, Nat, Pkt, CPORT, GATEWAY, L4, NAT_ADDR, ROUTER, SERVER, TCP_ACK, TCP_FIN, TCP_SYN,
    },
    prog_test_support::{
        endpoint, in_private_netns, ip, Fixture, IPPROTO_TCP, IPPROTO_UDP, IP_DF, LOOPBACK_IFINDEX, TC_ACT_OK,
        TC_ACT_REDIRECT,
    },
    Datapath, DatapathEndpoint, Proto, PublishedPort,
};

/// A second address of the uplink (not its masquerade address).
pub(super) const SECOND_ADDR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
/// An address routed through the host, not one of its own.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
/// The client's source port outside.
pub(super) const CLIENT_PORT: u16 = 5555;

/// A container on another network than alice's.
pub(super) fn carol() -> DatapathEndpoint {
    DatapathEndpoint {
        mac: [0x02, 0, 0, 0, 0xc0, 0x0c],
        host_mac: [0x02, 0, 0, 0, 0xee, 0x0c],
        ..endpoint(LOOPBACK_IFINDEX, 2, Ipv4Addr::new(10, 88, 0, 2), Ipv4Addr::new(10, 88, 0, 1))
    }
}

pub(super) fn port(
    host_addr: Option<Ipv4Addr>,
    host_port: u16,
    proto: Proto,
    backend: &DatapathEndpoint,
    backend_port: u16,
) -> PublishedPort {
    PublishedPort { host_addr, host_port, proto, backend_addr: backend.ip, backend_port }
}

pub(super) fn publish(t: &Nat, ports: &[PublishedPort]) {
    t.fx.datapath.publish(ports).expect("publish");
}

/// What a container sends to an address of the host (through its gateway's MAC).
pub(super) fn to_host(ep: &DatapathEndpoint, dst: Ipv4Addr, l4: L4) -> Pkt {
    Pkt { dst_mac: ep.host_mac, src_mac: ep.mac, src: ep.ip, dst, ttl: 64, frags: IP_DF, l4 }
}

/// What a container sends to a peer on its own network (to the peer's MAC).
pub(super) fn to_peer(ep: &DatapathEndpoint, peer: &DatapathEndpoint, l4: L4) -> Pkt {
    Pkt { dst_mac: peer.mac, src_mac: ep.mac, src: ep.ip, dst: peer.ip, ttl: 64, frags: IP_DF, l4 }
}

/// What must reach `ep` from `src`: routed by the host (TTL lowered, from its gateway's MAC).
pub(super) fn into(ep: &DatapathEndpoint, src: Ipv4Addr, l4: L4) -> Pkt {
    Pkt { dst_mac: ep.mac, src_mac: ep.host_mac, src, dst: ep.ip, ttl: 63, frags: IP_DF, l4 }
}

pub(super) fn assert_dnat_entry(entry: &CtEntry, addr: Ipv4Addr, port: u16, state: u8, flags: u8) {
    assert_eq!(
        (entry.nat_addr, entry.nat_port, entry.state, entry.flags),
        (key(addr), port, state, CT_DNAT | flags),
        "{entry:?}"
    );
}

fn nat_entries(t: &Nat) -> Vec<(CtKey, NatReverse)> {
    t.fx.datapath.entries_for_test::<CtKey, NatReverse>(maps::NAT)
}

// ---------------------------------------------------------------------------------------------
// From outside
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn outside_tcp_to_a_published_port_reaches_the_endpoint_with_the_client_address_and_replies_go_back() {
    in_private_netns(|| {
        let t = Nat::new("ports_tcp");
        let a = alice();
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        let ((), t0, t1) = timed(|| {
            t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)))
        });
        let ct = ct_key(a.ip, SERVER, 80, CLIENT_PORT, IPPROTO_TCP);
        let entry = t.ct(ct);
        assert_dnat_entry(&entry, NAT_ADDR, 8080, CT_OPEN, 0);
        // A SYN alone is an opening flow, not an established one.
        assert_expires(&entry, t0, t1, TCP_OPENING);

        // The reply leaves with the published address, and opens no NAT mapping.
        let ((), t0, t1) = timed(|| {
            t.assert_out(
                &from(&a, tcp(80, CLIENT_PORT, TCP_SYN | TCP_ACK)),
                &leaving(tcp(8080, CLIENT_PORT, TCP_SYN | TCP_ACK)),
            )
        });
        let entry = t.ct(ct);
        assert_dnat_entry(&entry, NAT_ADDR, 8080, CT_ESTABLISHED, CT_SEEN_REPLY);
        assert_expires(&entry, t0, t1, TCP_ESTABLISHED);
        assert_eq!(nat_entries(&t), vec![], "no NAT mapping for a published port's flow");
        t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_ACK)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_ACK)));

        // The client closes first: its FIN is the flow's original direction.
        t.assert_back(
            &arriving(tcp(CLIENT_PORT, 8080, TCP_FIN | TCP_ACK)),
            &delivered(&a, tcp(CLIENT_PORT, 80, TCP_FIN | TCP_ACK)),
        );
        assert_dnat_entry(&t.ct(ct), NAT_ADDR, 8080, netd_common::CT_CLOSING, CT_SEEN_REPLY | CT_FIN_ORIGINAL);
        t.assert_out(
            &from(&a, tcp(80, CLIENT_PORT, TCP_FIN | TCP_ACK)),
            &leaving(tcp(8080, CLIENT_PORT, TCP_FIN | TCP_ACK)),
        );
        assert_dnat_entry(&t.ct(ct), NAT_ADDR, 8080, CT_CLOSED, CT_SEEN_REPLY | CT_FIN_ORIGINAL | CT_FIN_REPLY);
        // The client's SYN on the closed tuple opens it again.
        t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)));
        assert_dnat_entry(&t.ct(ct), NAT_ADDR, 8080, CT_OPEN, 0);
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn outside_udp_to_a_published_port_reaches_the_endpoint_and_replies_go_back() {
    in_private_netns(|| {
        let t = Nat::new("ports_udp");
        let a = alice();
        publish(&t, &[port(None, 5353, Proto::Udp, &a, 53)]);
        let ((), t0, t1) =
            timed(|| t.assert_back(&arriving(udp(CLIENT_PORT, 5353)), &delivered(&a, udp(CLIENT_PORT, 53))));
        let ct = ct_key(a.ip, SERVER, 53, CLIENT_PORT, IPPROTO_UDP);
        let entry = t.ct(ct);
        assert_dnat_entry(&entry, NAT_ADDR, 5353, CT_OPEN, 0);
        assert_expires(&entry, t0, t1, UDP);
        t.assert_out(&from(&a, udp(53, CLIENT_PORT)), &leaving(udp(5353, CLIENT_PORT)));
        assert_dnat_entry(&t.ct(ct), NAT_ADDR, 5353, CT_ESTABLISHED, CT_SEEN_REPLY);
        assert_eq!(nat_entries(&t), vec![]);
        // The same port over TCP is not published.
        let frame = arriving(tcp(CLIENT_PORT, 5353, TCP_SYN)).frame();
        assert_eq!(t.fx.run_uplink(&frame), (TC_ACT_OK, frame.clone()));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_wildcard_publish_answers_on_every_host_address_and_only_there() {
    in_private_netns(|| {
        let t = Nat::new("ports_wildcard");
        ip(&["addr", "add", "198.51.100.3/24", "dev", "up0"]);
        // The host's addresses as the daemon lists them (`NETD_HOSTIP_V1`).
        t.fx.datapath.set_host_addresses(&[NAT_ADDR, SECOND_ADDR]).expect("host addresses");
        let a = alice();
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        // The uplink's own address (no route lookup) and a second address of the host.
        t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)));
        t.assert_back(
            &arriving(tcp(CLIENT_PORT + 1, 8080, TCP_SYN)).to(SECOND_ADDR),
            &delivered(&a, tcp(CLIENT_PORT + 1, 80, TCP_SYN)),
        );
        assert_dnat_entry(&t.ct(ct_key(a.ip, SERVER, 80, CLIENT_PORT + 1, IPPROTO_TCP)), SECOND_ADDR, 8080, CT_OPEN, 0);
        // Routed through the host to another address: not the host's port.
        for dst in [ELSEWHERE, Ipv4Addr::new(255, 255, 255, 255), Ipv4Addr::new(224, 0, 0, 9)] {
            let frame = arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)).to(dst).frame();
            assert_eq!(t.fx.run_uplink(&frame), (TC_ACT_OK, frame.clone()), "to {dst}");
        }
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn an_address_specific_publish_answers_only_on_its_address() {
    in_private_netns(|| {
        let t = Nat::new("ports_specific");
        ip(&["addr", "add", "198.51.100.3/24", "dev", "up0"]);
        let a = alice();
        publish(&t, &[port(Some(SECOND_ADDR), 9090, Proto::Tcp, &a, 80)]);
        t.assert_back(
            &arriving(tcp(CLIENT_PORT, 9090, TCP_SYN)).to(SECOND_ADDR),
            &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)),
        );
        let frame = arriving(tcp(CLIENT_PORT + 1, 9090, TCP_SYN)).frame();
        assert_eq!(t.fx.run_uplink(&frame), (TC_ACT_OK, frame.clone()), "the uplink address is not published");
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_port_published_on_loopback_is_not_reachable_from_the_uplink() {
    in_private_netns(|| {
        let t = Nat::new("ports_loopback");
        let a = alice();
        publish(&t, &[port(Some(Ipv4Addr::LOCALHOST), 8081, Proto::Tcp, &a, 80)]);
        let frame = t.assert_back_dropped(&arriving(tcp(CLIENT_PORT, 8081, TCP_SYN)).to(Ipv4Addr::LOCALHOST));
        let host = arriving(tcp(CLIENT_PORT, 8081, TCP_SYN)).frame();
        assert_eq!(t.fx.run_uplink(&host), (TC_ACT_OK, host.clone()), "not on the uplink address either");
        assert_eq!(t.ct_entries(), vec![]);
        t.assert_drops(&[(Hook::UplinkIngress, DropReason::LoopbackIngress, &frame)]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_masqueraded_flow_never_gets_a_published_port() {
    in_private_netns(|| {
        let t = Nat::new("ports_reserved");
        let a = alice();
        let b = bob();
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80), port(None, 5353, Proto::Udp, &a, 53)]);
        t.send_as(&b);
        let nat = t.nat_port_of(&from(&b, tcp(8080, 443, TCP_SYN)), &leaving(tcp(8080, 443, TCP_SYN)));
        assert_nat_range(nat);
        let nat = t.nat_port_of(&from(&b, udp(5353, 53)), &leaving(udp(5353, 53)));
        assert_nat_range(nat);
        // The other protocol's port is free.
        t.assert_out(&from(&b, udp(8080, 53)), &leaving(udp(8080, 53)));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn outside_to_a_published_port_whose_tuple_a_live_masqueraded_flow_holds_is_refused() {
    in_private_netns(|| {
        let t = Nat::new("ports_conflict");
        let a = alice();
        // Alice talks from port 80 to the client's port: that flow holds the tuple.
        t.assert_out(&from(&a, tcp(80, CLIENT_PORT, TCP_SYN)), &leaving(tcp(80, CLIENT_PORT, TCP_SYN)));
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        let frame = t.assert_back_dropped(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)));
        t.assert_drops(&[(Hook::UplinkIngress, DropReason::CtInvalid, &frame)]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn fragmentation_needed_about_a_published_flow_reaches_the_endpoint_translated() {
    const ICMP_DEST_UNREACH: u8 = 3;
    const ICMP_FRAG_NEEDED: u8 = 4;
    in_private_netns(|| {
        let t = Nat::new("ports_icmp");
        let a = alice();
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)));
        let error = |quoted| L4::Error { ty: ICMP_DEST_UNREACH, code: ICMP_FRAG_NEEDED, mtu: 1280, quoted };
        // A router quotes the endpoint's packet as it left the host, minimal quote.
        let quoted = leaving(tcp(8080, CLIENT_PORT, TCP_ACK)).ip()[..28].to_vec();
        let (verdict, out) = t.back(&arriving(error(quoted)).from(ROUTER));
        assert_eq!(verdict, TC_ACT_REDIRECT);
        let expected_quoted = from(&a, tcp(80, CLIENT_PORT, TCP_ACK)).ttl(63).ip()[..28].to_vec();
        assert_frame(&out, &delivered(&a, error(expected_quoted)).from(ROUTER).frame());
        // About a published port without such a flow: the host's.
        let quoted = leaving(tcp(8080, CLIENT_PORT + 1, TCP_ACK)).ip()[..28].to_vec();
        let frame = arriving(error(quoted)).from(ROUTER).frame();
        assert_eq!(t.fx.run_uplink(&frame), (TC_ACT_OK, frame.clone()));
        t.assert_drops(&[]);
    })
}

// ---------------------------------------------------------------------------------------------
// Hairpin
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_container_reaches_a_published_port_on_the_host_address_and_on_its_gateway() {
    in_private_netns(|| {
        let t = Nat::new("ports_hairpin");
        let (a, b) = (alice(), bob());
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80), port(None, 5353, Proto::Udp, &a, 53)]);
        for (dst, cport) in [(NAT_ADDR, CPORT), (GATEWAY, CPORT + 1)] {
            t.send_as(&b);
            t.assert_out(&to_host(&b, dst, tcp(cport, 8080, TCP_SYN)), &into(&a, b.ip, tcp(cport, 80, TCP_SYN)));
            assert_dnat_entry(&t.ct(ct_key(a.ip, b.ip, 80, cport, IPPROTO_TCP)), dst, 8080, CT_OPEN, 0);
            t.assert_out(&to_host(&b, dst, udp(cport, 5353)), &into(&a, b.ip, udp(cport, 53)));
            // Alice's replies go to bob's MAC directly; they come back from the published address.
            t.send_as(&a);
            let reply = |l4| Pkt { src: dst, ..into(&b, dst, l4) };
            t.assert_out(
                &to_peer(&a, &b, tcp(80, cport, TCP_SYN | TCP_ACK)),
                &reply(tcp(8080, cport, TCP_SYN | TCP_ACK)),
            );
            t.assert_out(&to_peer(&a, &b, udp(53, cport)), &reply(udp(5353, cport)));
            assert_dnat_entry(
                &t.ct(ct_key(a.ip, b.ip, 80, cport, IPPROTO_TCP)),
                dst,
                8080,
                CT_ESTABLISHED,
                CT_SEEN_REPLY,
            );
        }
        // Alice's own traffic to bob, outside any published flow, is forwarded as it is.
        let direct = to_peer(&a, &b, tcp(80, 7777, TCP_ACK));
        let (verdict, out) = t.out(&direct);
        assert_eq!((verdict, out), (TC_ACT_REDIRECT, direct.frame()));
        assert_eq!(nat_entries(&t), vec![]);
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_container_on_another_network_reaches_a_published_port_and_gets_the_replies() {
    in_private_netns(|| {
        let t = Nat::new("ports_hairpin_net");
        let (a, c) = (alice(), carol());
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        t.send_as(&c);
        t.assert_out(&to_host(&c, NAT_ADDR, tcp(CPORT, 8080, TCP_SYN)), &into(&a, c.ip, tcp(CPORT, 80, TCP_SYN)));
        t.send_as(&a);
        // Alice answers through her gateway (carol is on no network of hers).
        t.assert_out(
            &to_host(&a, c.ip, tcp(80, CPORT, TCP_SYN | TCP_ACK)),
            &Pkt { src: NAT_ADDR, ..into(&c, NAT_ADDR, tcp(8080, CPORT, TCP_SYN | TCP_ACK)) },
        );
        // Anything else from alice to carol is still isolated.
        let isolated = t.assert_out_dropped(&to_host(&a, c.ip, tcp(80, CPORT + 1, TCP_ACK)));
        t.assert_drops(&[(Hook::EndpointIngress, DropReason::Isolation, &isolated)]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_container_reaches_its_own_published_port_from_its_gateway_address() {
    in_private_netns(|| {
        let t = Nat::new("ports_own");
        let a = alice();
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80), port(None, 5353, Proto::Udp, &a, 53)]);
        t.send_as(&a);
        for (dst, cport) in [(NAT_ADDR, CPORT), (GATEWAY, CPORT + 1)] {
            // To itself, as if from its gateway (src == dst would be a martian)...
            t.assert_out(&to_host(&a, dst, tcp(cport, 8080, TCP_SYN)), &into(&a, GATEWAY, tcp(cport, 80, TCP_SYN)));
            assert_dnat_entry(&t.ct(ct_key(a.ip, GATEWAY, 80, cport, IPPROTO_TCP)), dst, 8080, CT_OPEN, 0);
            t.assert_out(&to_host(&a, dst, udp(cport, 5353)), &into(&a, GATEWAY, udp(cport, 53)));
            // ...and the reply, to the gateway, comes back from the published address.
            t.assert_out(
                &to_host(&a, GATEWAY, tcp(80, cport, TCP_SYN | TCP_ACK)),
                &Pkt { src: dst, ..into(&a, dst, tcp(8080, cport, TCP_SYN | TCP_ACK)) },
            );
            t.assert_out(&to_host(&a, GATEWAY, udp(53, cport)), &Pkt { src: dst, ..into(&a, dst, udp(5353, cport)) });
            t.assert_out(&to_host(&a, dst, tcp(cport, 8080, TCP_ACK)), &into(&a, GATEWAY, tcp(cport, 80, TCP_ACK)));
            assert_dnat_entry(
                &t.ct(ct_key(a.ip, GATEWAY, 80, cport, IPPROTO_TCP)),
                dst,
                8080,
                CT_ESTABLISHED,
                CT_SEEN_REPLY,
            );
        }
        // Alice's other traffic to her gateway is the host's.
        let host = to_host(&a, GATEWAY, tcp(80, 7777, TCP_ACK)).frame();
        assert_eq!(t.fx.run(&host), (TC_ACT_OK, host.clone()));
        t.assert_drops(&[]);
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn without_published_ports_a_container_keeps_the_direct_path() {
    in_private_netns(|| {
        let t = Nat::new("ports_direct");
        let (a, b, c) = (alice(), bob(), carol());
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        t.send_as(&b);
        // A tracked flow of bob's own tuple would be ignored: bob publishes nothing.
        t.fx.datapath.insert_for_test_into(
            maps::CT_TCP,
            ct_key(b.ip, a.ip, 80, CPORT, IPPROTO_TCP),
            CtEntry { expires: u64::MAX, nat_addr: key(NAT_ADDR), nat_port: 8080, state: CT_OPEN, flags: CT_DNAT },
        );
        let direct = to_peer(&b, &a, tcp(80, CPORT, TCP_ACK));
        assert_eq!(t.out(&direct), (TC_ACT_REDIRECT, direct.frame()));
        t.fx.datapath.insert_endpoint_only_for_test(&c);
        let isolated = t.assert_out_dropped(&to_host(&b, c.ip, tcp(80, CPORT, TCP_ACK)));
        t.assert_drops(&[(Hook::EndpointIngress, DropReason::Isolation, &isolated)]);
    })
}

// ---------------------------------------------------------------------------------------------
// The loader
// ---------------------------------------------------------------------------------------------

/// A veth in the test's netns that an endpoint can be adopted on (`keep_exactly` attaches).
fn real_endpoint(name: &str, network: u32, addr: Ipv4Addr) -> DatapathEndpoint {
    ip(&["link", "add", name, "type", "veth", "peer", "name", &format!("{name}-c")]);
    let ifindex = nix::net::if_::if_nametoindex(name).expect("ifindex");
    DatapathEndpoint { host_ifname: name.to_string(), ..endpoint(ifindex, network, addr, GATEWAY) }
}

fn publishes(fx: &Fixture, ep: &DatapathEndpoint) -> bool {
    let entries = fx.datapath.entries_for_test::<u32, InterfaceValue>(maps::INTERFACES);
    let (_, value) = entries.iter().find(|(k, _)| *k == ep.host_ifindex).expect("interface entry");
    value.flags & IF_PUBLISHES != 0
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn if_publishes_follows_the_published_ports_and_survives_keep_exactly() {
    in_private_netns(|| {
        let fx = Fixture::with_endpoints("ports_flag", &[]);
        let a = real_endpoint("pub-a", 1, Ipv4Addr::new(172, 18, 0, 2));
        let b = real_endpoint("pub-b", 1, Ipv4Addr::new(172, 18, 0, 3));
        let dp = &fx.datapath;
        dp.keep_exactly(&[a.clone(), b.clone()]).unwrap();
        assert_eq!((publishes(&fx, &a), publishes(&fx, &b)), (false, false));
        let web = port(None, 8080, Proto::Tcp, &a, 80);
        let dns = port(Some(NAT_ADDR), 5353, Proto::Udp, &a, 53);
        dp.publish(&[web.clone(), dns.clone()]).unwrap();
        assert_eq!((publishes(&fx, &a), publishes(&fx, &b)), (true, false));
        // A restart re-adopts the endpoints: the flag stays.
        dp.keep_exactly(&[a.clone(), b.clone()]).unwrap();
        assert_eq!((publishes(&fx, &a), publishes(&fx, &b)), (true, false));
        // One port of two goes: still publishing.
        dp.unpublish(std::slice::from_ref(&web)).unwrap();
        assert!(publishes(&fx, &a));
        dp.keep_published(std::slice::from_ref(&dns)).unwrap();
        assert!(publishes(&fx, &a));
        // A new endpoint with a port already published gets the flag with its entries.
        let bweb = port(None, 8081, Proto::Tcp, &b, 80);
        dp.publish(std::slice::from_ref(&bweb)).unwrap();
        assert_eq!((publishes(&fx, &a), publishes(&fx, &b)), (true, true));
        dp.remove_endpoint(&b).unwrap();
        dp.add_endpoint(&b).unwrap();
        assert!(publishes(&fx, &b));
        // Restart recovery with only bob's port: alice's flag goes, bob's stays.
        dp.keep_published(std::slice::from_ref(&bweb)).unwrap();
        assert_eq!((publishes(&fx, &a), publishes(&fx, &b)), (false, true));
        dp.unpublish(&[bweb]).unwrap();
        assert_eq!((publishes(&fx, &a), publishes(&fx, &b)), (false, false));
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn garbage_collection_handles_published_port_flows() {
    in_private_netns(|| {
        let t = Nat::new("ports_gc");
        let a = alice();
        publish(&t, &[port(None, 8080, Proto::Tcp, &a, 80)]);
        t.assert_back(&arriving(tcp(CLIENT_PORT, 8080, TCP_SYN)), &delivered(&a, tcp(CLIENT_PORT, 80, TCP_SYN)));
        let live = ct_key(a.ip, SERVER, 80, CLIENT_PORT, IPPROTO_TCP);
        let expired = ct_key(a.ip, SERVER, 80, CLIENT_PORT + 1, IPPROTO_TCP);
        t.fx.datapath.insert_for_test_into(
            maps::CT_TCP,
            expired,
            CtEntry { expires: 1, nat_addr: key(NAT_ADDR), nat_port: 8080, state: CT_OPEN, flags: CT_DNAT },
        );
        let report = t.fx.datapath.collect_garbage().unwrap();
        assert_eq!((report.expired, report.stale, report.orphans), (1, 0, 0), "{report:?}");
        let keys: Vec<CtKey> = t.ct_entries().iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, vec![live]);
        // A flow of an address no endpoint has is stale.
        t.fx.datapath.insert_for_test_into(
            maps::CT_TCP,
            ct_key(Ipv4Addr::new(10, 9, 9, 9), SERVER, 80, CLIENT_PORT, IPPROTO_TCP),
            CtEntry { expires: u64::MAX, nat_addr: key(NAT_ADDR), nat_port: 8080, state: CT_OPEN, flags: CT_DNAT },
        );
        let report = t.fx.datapath.collect_garbage().unwrap();
        assert_eq!((report.expired, report.stale, report.orphans), (0, 1, 0), "{report:?}");
        assert_eq!(t.ct_entries().iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![live]);
        // The endpoint goes: its flows go with it, before any GC.
        t.fx.datapath.remove_endpoint(&a).unwrap();
        assert_eq!(t.ct_entries(), vec![]);
    })
}
