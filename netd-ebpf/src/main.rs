//! netd's datapath programs. Entry points stay thin: each calls its subsystem and hands the
//! verdict to `verdict::finish`, where every drop is counted. Subsystems live in their own
//! modules (Cilium's bpf/lib layout): forwarding, arp, policy, egress/nat/conntrack, route,
//! uplink, tunnel (overlay networks across hosts), metrics; checksum rewrites in csum.
#![no_std]
#![no_main]

mod arp;
mod conntrack;
mod csum;
mod egress;
mod forward;
mod fragments;
mod maps;
mod metrics;
mod nat;
mod packet;
mod policy;
mod publish;
mod route;
mod sock;
mod tunnel;
mod uplink;
mod verdict;

use aya_ebpf::{
    macros::{cgroup_sock, cgroup_sock_addr, classifier},
    programs::{SockAddrContext, SockContext, TcContext},
};
use netd_common::Hook;

/// TC ingress on the host side of an endpoint's veth: every packet a container sends.
#[classifier]
pub fn netd_ep_ingress(ctx: TcContext) -> i32 {
    verdict::finish(&ctx, Hook::EndpointIngress, forward::endpoint_ingress(&ctx))
}

/// TC egress on the host side of an endpoint's veth: what the host stack sends into a
/// container.
#[classifier]
pub fn netd_ep_egress(ctx: TcContext) -> i32 {
    verdict::finish(&ctx, Hook::EndpointEgress, Ok(policy::endpoint_egress(&ctx)))
}

/// TC ingress on an uplink: every packet that arrives from outside.
#[classifier]
pub fn netd_up_ingress(ctx: TcContext) -> i32 {
    verdict::finish(&ctx, Hook::UplinkIngress, uplink::uplink_ingress(&ctx))
}

/// TC ingress on the host's VXLAN device: packets from overlay peers on other hosts.
#[classifier]
pub fn netd_tun_ingress(ctx: TcContext) -> i32 {
    verdict::finish(&ctx, Hook::TunnelIngress, tunnel::tunnel_ingress(&ctx))
}

/// Socket-LB (cgroup2 root; `sock` explains the netns scoping): a host client's connect to
/// a published port goes to the backend.
#[cgroup_sock_addr(connect4)]
pub fn netd_sock_connect4(ctx: SockAddrContext) -> i32 {
    sock::redirect(&ctx)
}

/// Each UDP datagram a host client sends to a published port goes to the backend.
#[cgroup_sock_addr(sendmsg4)]
pub fn netd_sock_sendmsg4(ctx: SockAddrContext) -> i32 {
    sock::redirect(&ctx)
}

/// A datagram from the backend shows the published address as its source.
#[cgroup_sock_addr(recvmsg4)]
pub fn netd_sock_recvmsg4(ctx: SockAddrContext) -> i32 {
    sock::reverse(&ctx)
}

/// getpeername shows the published address.
#[cgroup_sock_addr(getpeername4)]
pub fn netd_sock_getpeername4(ctx: SockAddrContext) -> i32 {
    sock::reverse(&ctx)
}

/// A host bind on a published port fails with EADDRINUSE.
#[cgroup_sock(post_bind4)]
pub fn netd_sock_post_bind4(ctx: SockContext) -> i32 {
    sock::post_bind(&ctx)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
