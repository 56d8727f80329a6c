//! The one safe layer over DPDK (`dpdk-sys`), and over the memory mappings of
//! [`hugemem`]. All platform `unsafe` of the gateway lives in this folder; every
//! block carries a `// SAFETY:` note. Everything but `hugemem`, `prefetch` and
//! `block` needs DPDK (the `dpdk` feature): `hugemem` is plain Linux, used by
//! the connection table in every build (tests, fuzzers and benches build
//! without DPDK), and the other two are processor instructions.
//!
//! Lifetimes. DPDK objects (mempools, ports, rings, launched lcores) are only
//! valid between `rte_eal_init` and `rte_eal_cleanup`. Rather than threading a
//! lifetime through every type, each object holds an [`EalRef`], a counted
//! reference to the initialised EAL, and [`Eal::cleanup`] refuses while any
//! exists or any mempool still has mbufs out. Mbufs themselves carry no
//! reference (they are the hot path); a mempool that is dropped while some of
//! its mbufs are alive is deliberately leaked instead of freed, so an mbuf
//! never points into freed memory.
//!
//! DPDK initialises once per process. Tests that need the EAL therefore live
//! one per integration-test binary (see the README's testing section).

pub mod block;
pub mod hugemem;
pub mod prefetch;

/// The items that need DPDK, each under the `dpdk` feature.
macro_rules! with_eal {
    ($($item:item)*) => { $( #[cfg(feature = "dpdk")] $item )* };
}

with_eal! {
    mod eal;
    mod error;
    mod fence;
    mod mbuf;
    mod mempool;
    mod port;
    mod ring;
    mod vdev;

    pub use eal::{Eal, EalRef, LcoreJob};
    pub use error::DpdkError;
    pub use fence::{needs_fence, FenceWorker, IoFence};
    pub use mbuf::{Burst, Mbuf, BURST_SIZE, MBUF_DEFAULT_BUF_SIZE, MBUF_HEADROOM};
    pub use mempool::Mempool;
    pub use port::{pairs_queues, port_name};
    pub use port::{LinkState, LinkStatus, Port, PortCaps, PortConfig, PortStats, RxQueue, TxQueue};
    pub use ring::{Ring, RingReceiver, RingSender, Sync as RingSync};
    pub use vdev::Vdev;

    use std::ffi::CStr;

    /// DPDK's text for an errno value (positive or negative).
    pub(crate) fn strerror(code: i32) -> String {
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string that stays valid until the next call on this
        // thread; it is copied out at once.
        unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(code.abs())) }.to_string_lossy().into_owned()
    }

    /// The calling thread's `rte_errno`.
    pub(crate) fn last_errno() -> i32 {
        // SAFETY: reads the calling thread's per-lcore errno variable; no preconditions.
        unsafe { dpdk_sys::gw_errno() }
    }

    /// The id of the calling lcore, or `None` on a thread that is not an EAL lcore.
    pub fn lcore_id() -> Option<u32> {
        // SAFETY: reads a thread-local; valid on any thread.
        let id = unsafe { dpdk_sys::gw_lcore_id() };
        (id != dpdk_sys::LCORE_ID_ANY).then_some(id)
    }

    /// The time-stamp counter, for coarse clocks read once per burst.
    #[inline]
    pub fn rdtsc() -> u64 {
        // SAFETY: rdtsc has no preconditions.
        unsafe { dpdk_sys::gw_rdtsc() }
    }

    /// Time-stamp counter ticks per second (valid after EAL init).
    pub fn tsc_hz() -> u64 {
        // SAFETY: plain getter of a value EAL measured at init.
        unsafe { dpdk_sys::rte_get_tsc_hz() }
    }

    /// DPDK's software Toeplitz hash (`rte_softrss`) over `words` (the tuple as
    /// host-order 32-bit words, as `rte_thash` lays it out) with a 40-byte key.
    /// The pure-Rust prediction in `net::rss` is checked against it.
    pub fn softrss(words: &[u32], key: &[u8; 40]) -> u32 {
        // rte_softrss reads key bytes up to index 4 * len + 3, so at most nine
        // words fit a 40-byte key; more are cut rather than read out of bounds.
        let mut buf = [0u32; 9];
        let n = words.len().min(buf.len());
        buf[..n].copy_from_slice(&words[..n]);
        // SAFETY: `buf` holds `n` words and the key is 40 bytes, enough for `n` <= 9.
        unsafe { dpdk_sys::gw_softrss(buf.as_mut_ptr(), n as u32, key.as_ptr()) }
    }
}
