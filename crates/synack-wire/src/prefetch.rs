//! A cache prefetch hint, for callers that know which memory they will
//! read next (the stack, handed a batch of packets, fetches the
//! connection of a later packet while it processes an earlier one).
// The one other module allowed `unsafe`: the prefetch instruction is an
// intrinsic declared unsafe, though it reads nothing and cannot fault.
#![allow(unsafe_code)]

/// Asks the CPU to bring the first `lines` cache lines of `*r` (at most
/// those it spans) into all cache levels. A hint only: it has no effect
/// on the program's results, never faults, and does nothing on targets
/// without such an instruction.
#[inline(always)]
pub fn prefetch<T: ?Sized>(r: &T, lines: usize) {
    let lines = lines.min(core::mem::size_of_val(r).div_ceil(64));
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        #[cfg(target_arch = "x86")]
        use core::arch::x86::{_mm_prefetch, _MM_HINT_T0};
        #[cfg(target_arch = "x86_64")]
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = (r as *const T).cast::<i8>();
        for line in 0..lines {
            // SAFETY: PREFETCHT0 only hints the cache: it does not access
            // memory architecturally and cannot fault, whatever the
            // address; the addresses are inside `*r` anyway. SSE (which
            // adds the instruction) is in every x86_64 target.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(line * 64)) };
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
    let _ = (r, lines);
}
