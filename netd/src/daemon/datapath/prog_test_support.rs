//! What the `BPF_PROG_TEST_RUN` test modules share: a freshly loaded datapath under its own
//! bpffs directory, the drop-counter assertion, packet builders with checksums computed from
//! scratch, and a thread in a private network namespace.
//!
//! Test-run executes a program on a private skb and transmits nothing: a redirect verdict is
//! only returned, never carried out. Without a `ctx_in` the skb's device is the loopback of the
//! calling thread's netns, so a program sees ifindex 1 as the interface the packet arrived on.
use std::{
    io,
    net::Ipv4Addr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
};

use netd_common::{programs, DropReason, Hook};

use super::{ebpf::EbpfDatapath, Datapath, DatapathEndpoint};

// ---------------------------------------------------------------------------------------------
// Running a program
// ---------------------------------------------------------------------------------------------

pub(super) const TC_ACT_OK: u32 = 0;
pub(super) const TC_ACT_SHOT: u32 = 2;
pub(super) const TC_ACT_REDIRECT: u32 = 7;

/// bpffs directory of one test, removed on drop (also when loading failed half-way).
pub(super) struct PinDir(PathBuf);

impl PinDir {
    fn new(test: &str) -> Self {
        let dir = PinDir(PathBuf::from(format!("/sys/fs/bpf/netd-unit-{}-{test}", std::process::id())));
        dir.remove();
        dir
    }

    fn remove(&self) {
        match std::fs::remove_dir_all(&self.0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove {}: {e}", self.0.display()),
        }
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        // Not `remove`: a second panic while unwinding would abort the test binary.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A freshly loaded datapath with its own maps.
pub(super) struct Fixture {
    pub(super) datapath: EbpfDatapath,
    _pins: PinDir,
}

impl Fixture {
    /// The same pins loaded by a new datapath after this one is gone (a daemon restart).
    pub(super) fn reload(self) -> Self {
        let Fixture { datapath, _pins: pins } = self;
        drop(datapath);
        let datapath =
            load_retrying(&pins.0, &[], || {}).unwrap_or_else(|e| panic!("reload {}: {e}", pins.0.display()));
        Fixture { datapath, _pins: pins }
    }

    pub(super) fn with_endpoints(test: &str, endpoints: &[DatapathEndpoint]) -> Self {
        Self::with_map_sizes(test, endpoints, &[])
    }

    /// `with_endpoints`, some maps sized `(map, max_entries)` instead of their default.
    pub(super) fn with_map_sizes(test: &str, endpoints: &[DatapathEndpoint], sizes: &[(&str, u32)]) -> Self {
        let pins = PinDir::new(test);
        // A failed attempt's pins go: the next one starts from nothing, as the first did.
        let datapath = load_retrying(&pins.0, sizes, || pins.remove())
            .unwrap_or_else(|e| panic!("load datapath under {}: {e}", pins.0.display()));
        for ep in endpoints {
            datapath.insert_for_test(ep);
        }
        Fixture { datapath, _pins: pins }
    }

    /// Runs `program` once on `packet`; returns its verdict and the packet as it left the
    /// program. Panics when the syscall itself fails, so no test can pass without the program
    /// having run.
    pub(super) fn run_program(&self, program: &'static str, packet: &[u8]) -> (u32, Vec<u8>) {
        self.datapath
            .test_run_program(program, packet)
            .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN of {program} on {packet:02x?}: {e}"))
    }

    /// `run_program` of the endpoint program (`netd_ep_ingress`).
    pub(super) fn run(&self, packet: &[u8]) -> (u32, Vec<u8>) {
        self.run_program(programs::ENDPOINT_INGRESS, packet)
    }

    /// `run_program` of the uplink program (`netd_up_ingress`).
    pub(super) fn run_uplink(&self, packet: &[u8]) -> (u32, Vec<u8>) {
        self.run_program(programs::UPLINK_INGRESS, packet)
    }

    pub(super) fn try_run(&self, packet: &[u8]) -> io::Result<(u32, Vec<u8>)> {
        self.datapath.test_run_program(programs::ENDPOINT_INGRESS, packet)
    }

    /// Asserts every drop counter: each `(reason, packet)` in `expected` counted once with the
    /// packet's length at the endpoint hook, every other counter (every hook) zero.
    pub(super) fn assert_drops(&self, expected: &[(DropReason, &[u8])]) {
        self.assert_drops_at(Hook::EndpointIngress, expected);
    }

    /// `assert_drops` for the program at `hook`.
    pub(super) fn assert_drops_at(&self, at: Hook, expected: &[(DropReason, &[u8])]) {
        let expected: Vec<(Hook, DropReason, &[u8])> = expected.iter().map(|(r, p)| (at, *r, *p)).collect();
        self.assert_drops_by_hook(&expected);
    }

    /// Asserts every drop counter: each `(hook, reason, packet)` in `expected` counted once with
    /// the packet's length, every other counter zero.
    pub(super) fn assert_drops_by_hook(&self, expected: &[(Hook, DropReason, &[u8])]) {
        let stats = self.datapath.drop_stats().expect("read drop counters");
        // One counter per code the enum knows and hook, each once, with the enum's name:
        // checked against every u8, not against a list built from the same enum.
        let known: Vec<u8> = (0..=u8::MAX).filter(|c| DropReason::from_code(*c).is_some()).collect();
        for hook in Hook::ALL {
            let mut codes: Vec<u8> = stats.iter().filter(|s| s.hook == hook.name()).map(|s| s.code).collect();
            codes.sort();
            assert_eq!(codes, known, "one counter per drop reason at {}", hook.name());
        }
        for stat in &stats {
            assert_eq!(Some(stat.reason), DropReason::from_code(stat.code).map(DropReason::name));
        }
        for stat in stats {
            let mine: Vec<usize> = expected
                .iter()
                .filter(|(h, r, _)| *r as u8 == stat.code && stat.hook == h.name())
                .map(|(_, _, p)| p.len())
                .collect();
            let want = (mine.len() as u64, mine.iter().sum::<usize>() as u64);
            assert_eq!(
                (stat.packets, stat.bytes),
                want,
                "drop counter {} at {} (packets, bytes)",
                stat.reason,
                stat.hook
            );
        }
    }
}

/// Attempts at loading the datapath before an `EAGAIN` fails the test.
pub(super) const LOAD_ATTEMPTS: u32 = 5;

/// `EbpfDatapath::load_with`, tried again (at most `LOAD_ATTEMPTS` times in all, a short pause
/// between attempts, `before_retry` run before each new one) while it fails with `EAGAIN`: the
/// kernel's `BPF_PROG_LOAD` returns it when the verifier is interrupted (a signal, memory
/// pressure), which happens under a parallel test load. Any other error fails at once.
pub(super) fn load_retrying(
    dir: &Path,
    sizes: &[(&str, u32)],
    before_retry: impl FnMut(),
) -> crate::error::Result<EbpfDatapath> {
    retry_on_eagain(LOAD_ATTEMPTS, || EbpfDatapath::load_with(dir, sizes), before_retry)
}

/// Runs `attempt` up to `attempts` times while its error is (caused by) `EAGAIN`.
pub(super) fn retry_on_eagain<T, E: std::error::Error + 'static>(
    attempts: u32,
    mut attempt: impl FnMut() -> Result<T, E>,
    mut before_retry: impl FnMut(),
) -> Result<T, E> {
    let mut tried = 1;
    loop {
        match attempt() {
            Err(e) if tried < attempts && is_eagain(&e) => {
                tried += 1;
                before_retry();
                std::thread::sleep(std::time::Duration::from_millis(50 * u64::from(tried)));
            }
            result => return result,
        }
    }
}

/// Whether `EAGAIN` is somewhere in the chain of `e`'s causes.
pub(super) fn is_eagain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if io.raw_os_error() == Some(nix::libc::EAGAIN) {
                return true;
            }
        }
        cause = err.source();
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

pub(super) type Mac = [u8; 6];

pub(super) const LOOPBACK_IFINDEX: u32 = 1;

/// An endpoint whose MACs are derived from its (fictitious, apart from 1) host-side ifindex.
pub(super) fn endpoint(host_ifindex: u32, network_index: u32, ip: Ipv4Addr, gateway: Ipv4Addr) -> DatapathEndpoint {
    let n = host_ifindex as u8;
    DatapathEndpoint {
        ip,
        gateway,
        network_index,
        internal: false,
        mac: [0x02, 0, 0, 0, 0xc0, n],
        host_mac: [0x02, 0, 0, 0, 0xee, n],
        host_ifname: format!("veth-test{host_ifindex}"),
        host_ifindex,
    }
}

// ---------------------------------------------------------------------------------------------
// Packet builders
// ---------------------------------------------------------------------------------------------

pub(super) const ETH_HLEN: usize = 14;
pub(super) const ETH_P_IP: u16 = 0x0800;
pub(super) const IPPROTO_ICMP: u8 = 1;
pub(super) const IPPROTO_TCP: u8 = 6;
pub(super) const IPPROTO_UDP: u8 = 17;
/// IPv4 flags/fragment-offset field: don't fragment.
pub(super) const IP_DF: u16 = 0x4000;

pub(super) fn ethernet(dst: Mac, src: Mac, ether_type: u16, payload: &[u8]) -> Vec<u8> {
    [&dst[..], &src[..], &ether_type.to_be_bytes(), payload].concat()
}

/// The Internet checksum (RFC 1071) of `bytes`.
pub(super) fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 =
        bytes.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The IPv4 pseudo-header TCP and UDP checksums cover, followed by `segment`.
pub(super) fn with_pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, segment: &[u8]) -> Vec<u8> {
    let len = (segment.len() as u16).to_be_bytes();
    [&src.octets()[..], &dst.octets(), &[0, proto], &len, segment].concat()
}

/// IPv4 header (no options, valid checksum) with the given TTL and flags/fragment-offset
/// field, followed by `payload`.
pub(super) fn ipv4_with(ttl: u8, frags: u16, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut header = [0u8; 20];
    header[0] = 0x45;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    header[6..8].copy_from_slice(&frags.to_be_bytes());
    header[8] = ttl;
    header[9] = proto;
    header[12..16].copy_from_slice(&src.octets());
    header[16..20].copy_from_slice(&dst.octets());
    let check = checksum(&header);
    header[10..12].copy_from_slice(&check.to_be_bytes());
    [&header[..], payload].concat()
}

/// IPv4 header (no options, DF, TTL 64, valid checksum) followed by `payload`.
pub(super) fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    ipv4_with(64, IP_DF, src, dst, proto, payload)
}

/// ICMP echo request with a valid checksum.
pub(super) fn icmp_echo() -> Vec<u8> {
    let mut icmp = [&[8u8, 0, 0, 0, 0x4e, 0x44, 0, 1][..], b"netd ping"].concat();
    let check = checksum(&icmp);
    icmp[2..4].copy_from_slice(&check.to_be_bytes());
    icmp
}

/// UDP datagram without a checksum (0 is valid for UDP over IPv4).
pub(super) fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = (8 + payload.len()) as u16;
    [&src_port.to_be_bytes()[..], &dst_port.to_be_bytes(), &len.to_be_bytes(), &[0, 0], payload].concat()
}

// ---------------------------------------------------------------------------------------------
// A private network namespace
// ---------------------------------------------------------------------------------------------

/// Runs `f` on a new thread that first moves into a network namespace of its own
/// (`unshare(CLONE_NEWNET)` affects only the calling thread), brings its loopback up and turns
/// forwarding on for the loopback only: `BPF_PROG_TEST_RUN` from that thread runs on a skb of
/// that loopback, and `bpf_fib_lookup` from a device needs forwarding on that device. The
/// namespace (with every device made in it) goes away with the thread. A panic in `f` is
/// re-raised here with its own message.
pub(super) fn in_private_netns<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let outer_ns = netns_inode();
    let outer_forwarding = std::fs::read_to_string(LO_FORWARDING).expect("read lo forwarding");
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
            assert_ne!(netns_inode(), outer_ns, "the test thread is in a netns of its own");
            ip(&["link", "set", "lo", "up"]);
            // /proc/sys/net resolves against the netns of the thread that opens it.
            std::fs::write(LO_FORWARDING, "1").expect("enable forwarding on the private lo");
            assert_eq!(std::fs::read_to_string(LO_FORWARDING).unwrap().trim(), "1");
            f()
        })
        .join()
    });
    let after = std::fs::read_to_string(LO_FORWARDING).expect("read lo forwarding");
    assert_eq!(after, outer_forwarding, "the outer netns' lo forwarding is untouched");
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

const LO_FORWARDING: &str = "/proc/sys/net/ipv4/conf/lo/forwarding";

/// The inode of the calling thread's network namespace.
fn netns_inode() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").expect("stat /proc/thread-self/ns/net").ino()
}

/// Runs `ip args` in the calling thread's netns (a child inherits the namespaces of the thread
/// that spawns it).
pub(super) fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("run ip {args:?}: {e}"));
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// The loader's retry (no root needed)
// ---------------------------------------------------------------------------------------------

/// A load error as `EbpfDatapath::load_with` returns it, caused by `errno`.
fn load_error(errno: i32) -> crate::error::Error {
    super::DatapathError::Io { op: "load program", source: io::Error::from_raw_os_error(errno) }.into()
}

#[test]
fn eagain_is_found_through_the_error_chain_and_nothing_else_is() {
    assert!(is_eagain(&load_error(nix::libc::EAGAIN)));
    assert!(!is_eagain(&load_error(nix::libc::EPERM)));
    assert!(!is_eagain(&super::DatapathError::Missing("netd_up_ingress")));
}

#[test]
fn a_load_failing_with_eagain_is_retried_a_bounded_number_of_times() {
    // Succeeds at the third attempt: two retries, each after `before_retry`.
    let (mut attempts, mut cleanups) = (0, 0);
    let got = retry_on_eagain(
        LOAD_ATTEMPTS,
        || {
            attempts += 1;
            if attempts < 3 {
                Err(load_error(nix::libc::EAGAIN))
            } else {
                Ok(attempts)
            }
        },
        || cleanups += 1,
    );
    assert_eq!((got.expect("third attempt"), cleanups), (3, 2));

    // Always EAGAIN: gives up after LOAD_ATTEMPTS with the last error.
    let mut attempts = 0;
    let got: Result<(), _> = retry_on_eagain(
        LOAD_ATTEMPTS,
        || {
            attempts += 1;
            Err(load_error(nix::libc::EAGAIN))
        },
        || {},
    );
    assert!(got.is_err_and(|e| is_eagain(&e)));
    assert_eq!(attempts, LOAD_ATTEMPTS);

    // Any other error: no retry.
    let mut attempts = 0;
    let got: Result<(), _> = retry_on_eagain(
        LOAD_ATTEMPTS,
        || {
            attempts += 1;
            Err(load_error(nix::libc::EINVAL))
        },
        || {},
    );
    assert!(got.is_err());
    assert_eq!(attempts, 1);
}
