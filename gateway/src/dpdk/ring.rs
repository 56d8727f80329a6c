//! Lockless rings of mbufs between lcores (`rte_ring`).
//!
//! A ring is split into a sender and a receiver half. Single-producer rings
//! have one sender that cannot be cloned; multi-producer rings (the redirect
//! rings that every worker feeds toward one owner) hand out clones. Mbufs
//! still queued when both halves are gone are freed with the ring.

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::{last_errno, strerror, Burst, DpdkError, Eal, EalRef, Mbuf};

/// Who may enqueue or dequeue concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Single,
    Multi,
}

struct RingShared {
    raw: NonNull<dpdk_sys::rte_ring>,
    name: String,
    multi_producer: bool,
    _eal: EalRef,
}

// SAFETY: rte_ring is built for concurrent use across lcores; the halves
// enforce the single-producer / single-consumer contracts by ownership.
unsafe impl Send for RingShared {}
// SAFETY: as above; shared access only reads counters or goes through a half.
unsafe impl std::marker::Sync for RingShared {}

impl Drop for RingShared {
    fn drop(&mut self) {
        // Both halves are gone: free whatever is still queued, then the ring.
        let mut burst = Burst::new();
        // SAFETY: no producer or consumer remains.
        while unsafe { dequeue_into(self.raw, &mut burst) } > 0 {
            burst.clear();
        }
        // SAFETY: the ring is empty and nothing refers to it any more.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) };
    }
}

/// Dequeues into the burst's free room; returns how many came out.
///
/// # Safety
/// `ring` must be live, and no other consumer may dequeue concurrently unless
/// the ring is multi-consumer.
#[inline]
unsafe fn dequeue_into(ring: NonNull<dpdk_sys::rte_ring>, burst: &mut Burst) -> usize {
    let (slots, room) = burst.spare_raw();
    // SAFETY: `slots` has `room` writable slots; the caller guarantees the ring
    // is live and the dequeue is not concurrent with another consumer.
    let n = unsafe { dpdk_sys::gw_ring_dequeue_burst(ring.as_ptr(), slots.cast(), room as u32, std::ptr::null_mut()) }
        as usize;
    // SAFETY: the ring only ever holds owned mbufs enqueued by a sender.
    unsafe { burst.commit(n) };
    n
}

/// Constructor namespace for mbuf rings.
pub struct Ring;

impl Ring {
    /// Creates a ring holding up to `capacity - 1` mbufs (`capacity` a power of
    /// two, as rte_ring requires).
    // A ring is only ever used through its two ends, so that is what `new` makes.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        eal: &Eal,
        name: &str,
        capacity: u32,
        producers: Sync,
        consumers: Sync,
    ) -> Result<(RingSender, RingReceiver), DpdkError> {
        let max = dpdk_sys::RTE_RING_NAMESIZE as usize - 1;
        if name.len() > max {
            return Err(DpdkError::NameTooLong { name: name.into(), max });
        }
        if !capacity.is_power_of_two() || capacity < 2 {
            return Err(DpdkError::Ring {
                name: name.into(),
                code: 22,
                reason: format!("capacity {capacity} is not a power of two >= 2"),
            });
        }
        let c_name = CString::new(name).map_err(|_| DpdkError::NulInArgument { arg: name.into() })?;
        let mut flags = 0;
        if producers == Sync::Single {
            flags |= dpdk_sys::RING_F_SP_ENQ;
        }
        if consumers == Sync::Single {
            flags |= dpdk_sys::RING_F_SC_DEQ;
        }
        // SAFETY: valid C string; the EAL is initialised (we hold &Eal).
        let ptr =
            unsafe { dpdk_sys::rte_ring_create(c_name.as_ptr(), capacity, dpdk_sys::rte_socket_id() as i32, flags) };
        let raw = NonNull::new(ptr).ok_or_else(|| {
            let code = last_errno();
            DpdkError::Ring { name: name.into(), code, reason: strerror(code) }
        })?;
        let shared = Arc::new(RingShared {
            raw,
            name: name.into(),
            multi_producer: producers == Sync::Multi,
            _eal: eal.handle(),
        });
        Ok((RingSender { ring: shared.clone() }, RingReceiver { ring: shared }))
    }
}

/// The enqueue half of a ring.
pub struct RingSender {
    ring: Arc<RingShared>,
}

impl RingSender {
    /// Another sender, for multi-producer rings only.
    pub fn try_clone(&self) -> Option<RingSender> {
        self.ring.multi_producer.then(|| RingSender { ring: self.ring.clone() })
    }

    pub fn name(&self) -> &str {
        &self.ring.name
    }

    /// Enqueues from the front of the burst; returns how many went in. The
    /// rest stay in the burst (the ring was full): retry or drop and count.
    #[inline]
    pub fn send_burst(&mut self, burst: &mut Burst) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let len = burst.len();
        // SAFETY: the first `len` slots are owned mbufs; single-producer rings
        // have exactly one sender and `&mut self` serialises its calls.
        let n = unsafe {
            dpdk_sys::gw_ring_enqueue_burst(
                self.ring.raw.as_ptr(),
                burst.live_raw().cast(),
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the ring took ownership of the first `n` mbufs.
        unsafe { burst.consume_front(n) };
        n
    }

    /// Enqueues one mbuf, or hands it back when the ring is full.
    pub fn send(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        let mut burst = Burst::new();
        // A fresh burst always has room.
        let _ = burst.push(m);
        self.send_burst(&mut burst);
        burst.pop().map_or(Ok(()), Err)
    }
}

/// The dequeue half of a ring.
pub struct RingReceiver {
    ring: Arc<RingShared>,
}

impl RingReceiver {
    /// Dequeues up to the burst's free room; returns how many arrived.
    #[inline]
    pub fn recv_burst(&mut self, burst: &mut Burst) -> usize {
        // SAFETY: there is one receiver and `&mut self` serialises its calls.
        unsafe { dequeue_into(self.ring.raw, burst) }
    }

    /// Mbufs waiting in the ring.
    pub fn len(&self) -> usize {
        // SAFETY: reads the ring's head and tail; safe at any time.
        unsafe { dpdk_sys::gw_ring_count(self.ring.raw.as_ptr()) as usize }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
