//! Drop accounting: a per-CPU counter per (reason, hook). Counting, never logging.
use aya_ebpf::programs::TcContext;
use netd_common::{metric_slot, DropReason, Hook};

use crate::maps::METRICS;

#[inline(always)]
pub fn count_drop(ctx: &TcContext, reason: DropReason, hook: Hook) {
    if let Some(counter) = METRICS.get_ptr_mut(metric_slot(reason, hook)) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += ctx.len() as u64;
        }
    }
}
