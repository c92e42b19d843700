//! netd's datapath programs. Entry points stay thin: each calls a `try_` function and maps an
//! error to a safe verdict. Subsystems live in their own modules (Cilium's bpf/lib layout).
#![no_std]
#![no_main]

mod arp;
mod drop;
mod forward;
mod maps;
mod packet;

use aya_ebpf::{bindings::TC_ACT_SHOT, macros::classifier, programs::TcContext};

/// TC ingress on the host side of an endpoint's veth: every packet a container sends.
#[classifier]
pub fn netd_ep_ingress(ctx: TcContext) -> i32 {
    match forward::endpoint_ingress(&ctx) {
        Ok(verdict) => verdict,
        Err(()) => {
            drop::count(&ctx, netd_common::DropReason::Malformed);
            TC_ACT_SHOT as i32
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
