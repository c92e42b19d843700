//! What a program decides for a packet. Every drop leaves through `finish`, so each one is
//! counted in exactly one place, by reason and hook.
use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT},
    programs::TcContext,
};
use netd_common::{DropReason, Hook};

use crate::metrics;

pub enum Verdict {
    /// Hand the packet to the host stack.
    Pass,
    /// A redirect helper's return value (`TC_ACT_REDIRECT`, or `TC_ACT_SHOT` when it failed).
    Redirect(i64),
    Drop(DropReason),
}

/// The TC return code for `verdict`; a drop is counted here and only here.
#[inline(always)]
pub fn finish(ctx: &TcContext, hook: Hook, verdict: Result<Verdict, ()>) -> i32 {
    match verdict {
        Ok(Verdict::Pass) => TC_ACT_OK as i32,
        Ok(Verdict::Redirect(code)) => code as i32,
        Ok(Verdict::Drop(reason)) => {
            metrics::count_drop(ctx, reason, hook);
            TC_ACT_SHOT as i32
        }
        Err(()) => {
            metrics::count_drop(ctx, DropReason::Malformed, hook);
            TC_ACT_SHOT as i32
        }
    }
}
