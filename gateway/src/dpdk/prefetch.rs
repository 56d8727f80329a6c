//! Software prefetch: ask for a cache line before it is needed, so a burst's
//! cache misses overlap instead of each stalling its packet (DPDK's
//! `rte_prefetch0`, VPP's `clib_prefetch_load`).
//!
//! Compiled with or without the `dpdk` feature: the connection table, which
//! tests and benches build without DPDK, prefetches too.

/// Starts loading the cache line at `p` into every cache level. A hint: it
/// never faults and changes no value, so any address will do, even one past
/// an array's end or never mapped (which is why it takes a pointer, and the
/// caller needs no bounds check).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, part of the x86_64 baseline; a
    // prefetch reads nothing architecturally and cannot fault, whatever the
    // address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
