//! Drop accounting: a per-CPU counter per stable reason code. Counting, never logging.
use aya_ebpf::programs::TcContext;
use netd_common::DropReason;

use crate::maps::DROPS;

#[inline(always)]
pub fn count(ctx: &TcContext, reason: DropReason) {
    if let Some(counter) = DROPS.get_ptr_mut(reason as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU.
        unsafe {
            (*counter).packets += 1;
            (*counter).bytes += ctx.len() as u64;
        }
    }
}
