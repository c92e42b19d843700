//! Socket-LB for host clients of published ports (cgroup programs on the cgroup2 root).
//!
//! They run for every process on the machine, so each returns at once — allow, untouched —
//! unless the socket lives in the daemon's netns (`bpf_get_netns_cookie` against the cookie
//! the daemon set at load). In the daemon's netns: `connect4`/`sendmsg4` point a socket that
//! asks for a published (address, port, protocol) at the backend and remember what it asked
//! for; `getpeername4`/`recvmsg4` show that again; `post_bind4` refuses binds on published
//! ports. No packet is translated: the host's route to the backend carries the traffic.
use aya_ebpf::{
    bindings::{bpf_sock, bpf_sock_addr},
    helpers::generated::{bpf_get_netns_cookie, bpf_get_socket_cookie, bpf_set_retval},
    programs::{SockAddrContext, SockContext},
    EbpfContext, Global,
};
use netd_common::{ServiceKey, ServiceValue, SockRevKey, SockRevValue};

use crate::maps::{HOST_ADDRS, RESERVED_PORTS, SERVICES, SOCK_REVERSE};

/// Allow (cgroup programs: 1 lets the syscall go on, 0 refuses it).
pub const ALLOW: i32 = 1;
pub const REFUSE: i32 = 0;

const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const AF_INET: u32 = 2;
const EADDRINUSE: i32 = 98;

/// The daemon's netns cookie, set by the loader (`EbpfLoader::override_global`); read-only
/// data, so the verifier sees a constant. 0 is never a netns cookie: unset matches nothing.
#[unsafe(no_mangle)]
static NETD_NETNS_COOKIE: Global<u64> = Global::new(0);

#[inline(always)]
fn in_daemon_netns<C: EbpfContext>(ctx: &C) -> bool {
    let ours = NETD_NETNS_COOKIE.load();
    // SAFETY: ctx is the context the kernel passed to this cgroup program.
    ours != 0 && unsafe { bpf_get_netns_cookie(ctx.as_ptr()) } == ours
}

/// 127.0.0.0/8 or an address of the daemon's netns (network order).
#[inline(always)]
fn is_host_addr(addr: u32) -> bool {
    addr.to_ne_bytes()[0] == 127 || HOST_ADDRS.get_ptr(addr).is_some()
}

/// The service for (addr, port, proto): the exact address, else every address of the host.
#[inline(always)]
fn service(addr: u32, port: u16, proto: u8) -> Option<ServiceValue> {
    let key = ServiceKey { addr, port, proto, _pad: 0 };
    if let Some(v) = SERVICES.get_ptr(&key) {
        // SAFETY: the pointer is to a live map value of this type.
        return Some(unsafe { *v });
    }
    if addr == 0 || !is_host_addr(addr) {
        return None;
    }
    // SAFETY: as above.
    SERVICES.get_ptr(&ServiceKey { addr: 0, ..key }).map(|v| unsafe { *v })
}

/// connect4 (TCP, UDP) and sendmsg4 (UDP): destination → backend.
#[inline(always)]
pub fn redirect(ctx: &SockAddrContext) -> i32 {
    if !in_daemon_netns(ctx) {
        return ALLOW;
    }
    let sa: *mut bpf_sock_addr = ctx.sock_addr;
    // SAFETY: sa is the kernel's context; these fields are readable by sock_addr programs.
    let (family, proto, addr, port_be) =
        unsafe { ((*sa).user_family, (*sa).protocol, (*sa).user_ip4, (*sa).user_port) };
    if family != AF_INET || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return ALLOW;
    }
    let port = u16::from_be(port_be as u16);
    let Some(backend) = service(addr, port, proto as u8) else {
        return ALLOW;
    };
    // SAFETY: as above.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let key = SockRevKey { cookie, backend_addr: backend.backend_addr, backend_port: backend.backend_port, _pad: 0 };
    // Best effort: without the entry the socket still reaches the backend, it only sees the
    // backend as its peer.
    let _ = SOCK_REVERSE.insert(&key, &SockRevValue { addr, port, _pad: 0 }, 0);
    // SAFETY: user_ip4/user_port are writable for connect4 and sendmsg4 (4-byte stores).
    unsafe {
        (*sa).user_ip4 = backend.backend_addr;
        (*sa).user_port = u16::to_be(backend.backend_port) as u32;
    }
    ALLOW
}

/// getpeername4 and recvmsg4: backend → what the socket asked for.
#[inline(always)]
pub fn reverse(ctx: &SockAddrContext) -> i32 {
    if !in_daemon_netns(ctx) {
        return ALLOW;
    }
    let sa: *mut bpf_sock_addr = ctx.sock_addr;
    // SAFETY: as in `redirect`.
    let (family, addr, port_be) = unsafe { ((*sa).user_family, (*sa).user_ip4, (*sa).user_port) };
    if family != AF_INET {
        return ALLOW;
    }
    // SAFETY: as in `redirect`.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    let key = SockRevKey { cookie, backend_addr: addr, backend_port: u16::from_be(port_be as u16), _pad: 0 };
    if let Some(orig) = SOCK_REVERSE.get_ptr(&key) {
        // SAFETY: live map value; user_ip4/user_port are writable for these hooks.
        unsafe {
            (*sa).user_ip4 = (*orig).addr;
            (*sa).user_port = u16::to_be((*orig).port) as u32;
        }
    }
    ALLOW
}

/// post_bind4: a bind on a published (port, protocol) — on 0.0.0.0, or on an address that
/// has the service (or on a host address when published on every address) — fails with
/// EADDRINUSE.
#[inline(always)]
pub fn post_bind(ctx: &SockContext) -> i32 {
    if !in_daemon_netns(ctx) {
        return ALLOW;
    }
    let sk: *mut bpf_sock = ctx.sock;
    // SAFETY: the kernel's context; family, protocol, src_ip4 and src_port are readable.
    let (family, proto, addr, port) = unsafe { ((*sk).family, (*sk).protocol, (*sk).src_ip4, (*sk).src_port) };
    if family != AF_INET || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) || port == 0 || port > 0xffff {
        return ALLOW;
    }
    let (port, proto) = (port as u16, proto as u8);
    let taken = if addr == 0 {
        RESERVED_PORTS.get_ptr(&netd_common::PortKey { port, proto, _pad: 0 }).is_some()
    } else {
        service(addr, port, proto).is_some()
    };
    if !taken {
        return ALLOW;
    }
    // SAFETY: bpf_set_retval is allowed for post_bind4 (kernel ≥ 5.18); the syscall then
    // returns -EADDRINUSE instead of the default -EPERM.
    unsafe { bpf_set_retval(-EADDRINUSE) };
    REFUSE
}
