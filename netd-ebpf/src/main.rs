//! netd's datapath programs. Entry points stay thin: each calls its subsystem and hands the
//! verdict to `verdict::finish`, where every drop is counted. Subsystems live in their own
//! modules (Cilium's bpf/lib layout): forwarding, arp, policy, egress/nat/conntrack, route,
//! uplink, metrics; checksum rewrites in csum.
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
mod uplink;
mod verdict;

use aya_ebpf::{macros::classifier, programs::TcContext};
use netd_common::Hook;

/// TC ingress on the host side of an endpoint's veth: every packet a container sends.
#[classifier]
pub fn netd_ep_ingress(ctx: TcContext) -> i32 {
    verdict::finish(&ctx, Hook::EndpointIngress, forward::endpoint_ingress(&ctx))
}

/// TC ingress on an uplink: every packet that arrives from outside.
#[classifier]
pub fn netd_up_ingress(ctx: TcContext) -> i32 {
    verdict::finish(&ctx, Hook::UplinkIngress, uplink::uplink_ingress(&ctx))
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
