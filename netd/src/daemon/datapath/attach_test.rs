//! The endpoint program's cls_bpf filter on real veths in a private netns: it outlives the
//! datapath that attached it (a daemon's exit), the next datapath replaces its program in the
//! same slot, an older netd's pinned tcx link is replaced by it and unpinned, `release_link`
//! and `purge` delete it, and someone else's filter in netd's slot is refused and left alone.
use std::{net::Ipv4Addr, process::Command};

use aya::programs::{
    links::{FdLink, LinkOrder},
    tc::TcAttachOptions,
    SchedClassifier, TcAttachType,
};
use netd_common::programs;

use super::{
    prog_test_nat::GATEWAY,
    prog_test_support::{endpoint, in_private_netns, ip, Fixture},
    tc_filter::{self, Slot},
    Datapath, DatapathEndpoint,
};

/// A veth in the test's netns for an endpoint.
fn veth_endpoint(name: &str, addr: Ipv4Addr) -> DatapathEndpoint {
    ip(&["link", "add", name, "type", "veth", "peer", "name", &format!("{name}-c")]);
    let ifindex = nix::net::if_::if_nametoindex(name).expect("ifindex");
    DatapathEndpoint { host_ifname: name.to_string(), ..endpoint(ifindex, 1, addr, GATEWAY) }
}

/// The program id netd's slot at ingress of `ep`'s veth runs, if netd's filter is there.
fn slot_program(ep: &DatapathEndpoint) -> Option<u32> {
    match tc_filter::get(ep.host_ifindex).expect("read the slot") {
        Slot::Filter(f) if f.is_program(programs::ENDPOINT_INGRESS) => f.prog_id,
        _ => None,
    }
}

fn tc(args: &[&str]) {
    let out = Command::new("tc").args(args).output().unwrap_or_else(|e| panic!("run tc {args:?}: {e}"));
    assert!(out.status.success(), "tc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Programs attached with tcx at ingress of `ifname`.
fn tcx_programs(ifname: &str) -> usize {
    SchedClassifier::query_tcx(ifname, TcAttachType::Ingress).expect("query tcx").1.len()
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn the_filter_outlives_the_datapath_and_the_next_one_replaces_its_program_in_place() {
    in_private_netns(|| {
        let fx = Fixture::with_endpoints("attach_adopt", &[]);
        let ep = veth_endpoint("att-a", Ipv4Addr::new(172, 18, 0, 2));
        fx.datapath.add_endpoint(&ep).unwrap();
        let first = fx.datapath.endpoint_program_id_for_test();
        assert_eq!(slot_program(&ep), Some(first));
        // The daemon exits (its Ebpf object is dropped): the filter stays, with its program.
        let fx = fx.reload();
        assert_eq!(slot_program(&ep), Some(first), "the filter went with the datapath");
        fx.datapath.keep_exactly(std::slice::from_ref(&ep)).unwrap();
        let second = fx.datapath.endpoint_program_id_for_test();
        assert_ne!(second, first);
        assert_eq!(slot_program(&ep), Some(second), "the filter does not run the new program");
        // Re-adoption is idempotent and adds no second filter.
        fx.datapath.keep_exactly(std::slice::from_ref(&ep)).unwrap();
        let out = Command::new("tc").args(["-j", "filter", "show", "dev", "att-a", "ingress"]).output().unwrap();
        let listed = String::from_utf8_lossy(&out.stdout).matches("\"bpf_name\"").count();
        assert_eq!(listed, 1, "{}", String::from_utf8_lossy(&out.stdout));

        fx.datapath.release_link("att-a").unwrap();
        assert_eq!(tc_filter::get(ep.host_ifindex).unwrap(), Slot::Empty, "release left the filter");
        // A veth that is gone took its filter with it.
        fx.datapath.release_link("att-gone").unwrap();
        fx.datapath.add_endpoint(&ep).unwrap();
        fx.datapath.purge().unwrap();
        assert_eq!(tc_filter::get(ep.host_ifindex).unwrap(), Slot::Empty, "purge left the filter");
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_pinned_tcx_link_of_the_previous_layout_is_replaced_by_the_filter_and_unpinned() {
    in_private_netns(|| {
        let fx = Fixture::with_endpoints("attach_tcx", &[]);
        let known = veth_endpoint("att-t", Ipv4Addr::new(172, 18, 0, 2));
        let unknown = veth_endpoint("att-u", Ipv4Addr::new(172, 18, 0, 3));
        let links = fx.datapath.pin_dir_for_test().join("links").join(programs::ENDPOINT_INGRESS);
        std::fs::create_dir_all(&links).unwrap();
        for ep in [&known, &unknown] {
            let mut prog = SchedClassifier::from_pin(
                fx.datapath.pin_dir_for_test().join("progs").join(programs::ENDPOINT_INGRESS),
            )
            .unwrap();
            let id = prog
                .attach_with_options(
                    &ep.host_ifname,
                    TcAttachType::Ingress,
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                )
                .unwrap();
            FdLink::try_from(prog.take_link(id).unwrap()).unwrap().pin(links.join(&ep.host_ifname)).unwrap();
            assert_eq!(tcx_programs(&ep.host_ifname), 1);
        }
        let fx = fx.reload();
        fx.datapath.keep_exactly(std::slice::from_ref(&known)).unwrap();
        assert_eq!(slot_program(&known), Some(fx.datapath.endpoint_program_id_for_test()));
        assert!(!links.exists(), "link pins of the tcx layout left");
        // Unpinning releases a tcx link in a kernel worker, after a grace period.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while (tcx_programs("att-t") + tcx_programs("att-u")) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!((tcx_programs("att-t"), tcx_programs("att-u")), (0, 0), "tcx links still attached");
        assert_eq!(slot_program(&unknown), None, "an unknown endpoint got a filter");
    })
}

#[test]
#[ignore = "needs root (loads BPF programs, network namespaces); cargo xtask test runs it"]
fn a_foreign_filter_in_netds_slot_is_refused_and_left() {
    in_private_netns(|| {
        let fx = Fixture::with_endpoints("attach_foreign", &[]);
        let ep = veth_endpoint("att-f", Ipv4Addr::new(172, 18, 0, 2));
        tc(&["qdisc", "add", "dev", "att-f", "clsact"]);
        // Classic BPF, accept all: a cls_bpf filter with no program name.
        tc(&[
            "filter",
            "add",
            "dev",
            "att-f",
            "ingress",
            "pref",
            "78",
            "handle",
            "0x4e",
            "bpf",
            "bytecode",
            "1,6 0 0 4294967295",
        ]);
        let foreign = tc_filter::get(ep.host_ifindex).unwrap();
        assert!(matches!(&foreign, Slot::Filter(f) if f.name.is_none()), "{foreign:?}");
        let err = fx.datapath.add_endpoint(&ep).expect_err("a foreign filter was replaced");
        assert!(err.to_string().contains("not netd's"), "{err}");
        assert!(fx.datapath.interface_keys_for_test().is_empty(), "add_endpoint left its entries");
        // Restart recovery leaves the endpoint out and the filter as it was.
        fx.datapath.keep_exactly(std::slice::from_ref(&ep)).unwrap();
        fx.datapath.release_link("att-f").unwrap();
        assert_eq!(tc_filter::get(ep.host_ifindex).unwrap(), foreign);
        // Another protocol at netd's priority: refused too.
        tc(&["filter", "del", "dev", "att-f", "ingress", "pref", "78"]);
        tc(&[
            "filter",
            "add",
            "dev",
            "att-f",
            "ingress",
            "pref",
            "78",
            "protocol",
            "ip",
            "bpf",
            "bytecode",
            "1,6 0 0 4294967295",
        ]);
        assert_eq!(tc_filter::get(ep.host_ifindex).unwrap(), Slot::Foreign);
        assert!(fx.datapath.add_endpoint(&ep).is_err());
    })
}
