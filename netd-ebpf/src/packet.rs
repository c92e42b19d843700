//! Bounds-checked packet access (the aya book's `ptr_at`): fixed-size reads only, so the
//! verifier can prove every access.
use core::mem;

use aya_ebpf::programs::TcContext;

#[inline(always)]
pub fn ptr_at<T>(ctx: &TcContext, offset: usize) -> Result<*mut T, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + mem::size_of::<T>() > end {
        return Err(());
    }
    Ok((start + offset) as *mut T)
}

/// Reads an IPv4 address field as the u32 key the maps use (network byte order kept).
#[inline(always)]
pub fn ip_key(addr: [u8; 4]) -> u32 {
    u32::from_ne_bytes(addr)
}
