//! Mbuf pools.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::eal::PoolWatch;
use super::{last_errno, strerror, DpdkError, Eal, EalRef, Mbuf};

/// A raw mempool pointer that may cross threads: rte_mempool's get/put and
/// counters are thread-safe.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawPool(NonNull<dpdk_sys::rte_mempool>);

// SAFETY: DPDK mempools are designed for concurrent use from any thread.
unsafe impl Send for RawPool {}
// SAFETY: as above; shared references only call thread-safe functions.
unsafe impl Sync for RawPool {}

impl RawPool {
    pub(crate) fn avail_count(self) -> u32 {
        // SAFETY: the pointer is a live mempool (pools are freed only after
        // being removed from every registry that holds a RawPool).
        unsafe { dpdk_sys::rte_mempool_avail_count(self.0.as_ptr()) }
    }
}

/// A pool of packet buffers (`rte_pktmbuf_pool_create`). Cloning shares the
/// pool; ports keep a clone for as long as their queues may allocate from it.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: RawPool,
    name: String,
    size: u32,
    eal: EalRef,
}

impl Mempool {
    /// Creates a pool of `size` mbufs with `data_room` bytes each (headroom
    /// included; `dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE` is the usual value) and a
    /// per-lcore cache of `cache_size` mbufs, on the caller's NUMA socket.
    pub fn new(eal: &Eal, name: &str, size: u32, cache_size: u32, data_room: u16) -> Result<Mempool, DpdkError> {
        let max = dpdk_sys::RTE_MEMPOOL_NAMESIZE as usize - 1;
        if name.len() > max {
            return Err(DpdkError::NameTooLong { name: name.into(), max });
        }
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInArgument { arg: name.into() })?;
        // SAFETY: c_name is a valid C string; the EAL is initialised (we hold &Eal).
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                size,
                cache_size,
                0,
                data_room,
                dpdk_sys::rte_socket_id() as i32,
            )
        };
        let raw = NonNull::new(ptr).ok_or_else(|| {
            let code = last_errno();
            DpdkError::Mempool { name: name.into(), code, reason: strerror(code) }
        })?;
        let inner = PoolInner { raw: RawPool(raw), name: name.into(), size, eal: eal.handle() };
        inner.eal.0.pools.lock().unwrap_or_else(|e| e.into_inner()).push(PoolWatch { pool: inner.raw, size });
        Ok(Mempool { inner: Arc::new(inner) })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.inner.size
    }

    /// Mbufs currently in the pool (including per-lcore caches).
    pub fn avail_count(&self) -> u32 {
        self.inner.raw.avail_count()
    }

    /// Mbufs currently out of the pool.
    pub fn in_use_count(&self) -> u32 {
        self.size() - self.avail_count()
    }

    /// Whether every mbuf is back in the pool: the leak check of the tests.
    pub fn is_full(&self) -> bool {
        self.avail_count() == self.size()
    }

    /// Takes one mbuf, empty (length 0, default headroom); `None` when the
    /// pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is live; a non-null result is a fresh mbuf we own.
        let m = unsafe { dpdk_sys::gw_pktmbuf_alloc(self.as_ptr()) };
        // SAFETY: a non-null pointer from alloc is an mbuf owned by nobody else.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Takes one mbuf holding a copy of `bytes`; `None` when the pool is
    /// exhausted or `bytes` do not fit the data room.
    pub fn alloc_with(&self, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = self.alloc()?;
        m.extend_from_slice(bytes).ok()?;
        Some(m)
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.inner.raw.0.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let mut pools = self.eal.0.pools.lock().unwrap_or_else(|e| e.into_inner());
        if self.raw.avail_count() != self.size {
            // An mbuf of this pool is still alive somewhere and points into it:
            // keep the pool (and its registry entry, so EAL cleanup refuses).
            return;
        }
        pools.retain(|p| p.pool != self.raw);
        // SAFETY: every mbuf is back and this was the last handle: ports hold
        // a Mempool clone until they are closed, so none can allocate from it.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.0.as_ptr()) };
    }
}
