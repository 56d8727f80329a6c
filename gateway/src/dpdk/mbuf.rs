//! Owned mbufs and fixed-size bursts of them.

use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::slice;

use dpdk_sys::rte_mbuf;

use crate::frame::{ChecksumStatus, Frame, FrameError, L4Offload, RxChecksum, TxOffload};

/// Headroom of a freshly allocated or received mbuf (`RTE_PKTMBUF_HEADROOM`).
pub const MBUF_HEADROOM: usize = dpdk_sys::RTE_PKTMBUF_HEADROOM as usize;

/// The usual mbuf data room, headroom included (`RTE_MBUF_DEFAULT_BUF_SIZE`).
pub const MBUF_DEFAULT_BUF_SIZE: u16 = dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

/// The most packets one rx/tx/ring call moves; DPDK's customary burst.
pub const BURST_SIZE: usize = 32;

/// One packet buffer, owned: it is returned to its pool exactly once, when
/// dropped, unless ownership is handed back to DPDK (tx, ring enqueue).
#[repr(transparent)]
pub struct Mbuf(NonNull<rte_mbuf>);

// SAFETY: an mbuf is plain memory owned by whoever holds the pointer; DPDK
// allows freeing it on any thread (the pool is thread-safe).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nothing else owns or will free.
    pub(crate) unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Mbuf {
        Mbuf(raw)
    }

    #[inline]
    fn raw(&self) -> &rte_mbuf {
        // SAFETY: we own a valid mbuf; no one else accesses it.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut rte_mbuf {
        // SAFETY: we own a valid mbuf, and `&mut self` makes the access exclusive.
        unsafe { self.0.as_mut() }
    }

    /// Segments in the chain; the pipeline handles single-segment mbufs only.
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// The length of the whole packet, over every segment: the data's
    /// length for the single-segment mbufs the pipeline handles.
    pub fn packet_len(&self) -> u32 {
        self.raw().pkt_len
    }

    /// The port the mbuf was received on.
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Appends `bytes` at the end of the data.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        let old = self.len();
        self.append(bytes.len())?;
        self.data_mut()[old..].copy_from_slice(bytes);
        Ok(())
    }

    fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("segments", &self.segments())
            .field("port", &self.port())
            .finish()
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf (and its chain); this is the only free.
        unsafe { dpdk_sys::gw_pktmbuf_free(self.0.as_ptr()) }
    }
}

fn to_u16(n: usize) -> Option<u16> {
    u16::try_from(n).ok()
}

impl Frame for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off points at data_len initialised bytes of
        // the first segment's buffer, which we own for the borrow's duration.
        unsafe { slice::from_raw_parts((m.buf_addr as *const u8).add(m.data_off as usize), m.data_len as usize) }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` guarantees exclusive access.
        unsafe {
            let m = self.0.as_mut();
            slice::from_raw_parts_mut((m.buf_addr as *mut u8).add(m.data_off as usize), m.data_len as usize)
        }
    }

    #[inline]
    fn headroom(&self) -> usize {
        // rte_pktmbuf_headroom: the data starts data_off bytes into the buffer.
        usize::from(self.raw().data_off)
    }

    fn tailroom(&self) -> usize {
        // SAFETY: reads fields of an owned, valid mbuf.
        unsafe { dpdk_sys::gw_pktmbuf_tailroom(self.0.as_ptr()) as usize }
    }

    /// rte_pktmbuf_prepend, written out: a TOA's insertion grows every
    /// handshake's SYN and completing ACK at the front, and through the C
    /// shim that took two calls across the FFI (the headroom, then the
    /// prepend), neither inlinable.
    #[inline]
    fn prepend(&mut self, n: usize) -> Result<(), FrameError> {
        let m = self.raw_mut();
        let available = usize::from(m.data_off);
        if n > available {
            return Err(FrameError::NoHeadroom { wanted: n, available });
        }
        // n <= data_off, a u16; data_off + data_len <= buf_len, a u16 too, so
        // the first segment's new length fits.
        let grown = n as u16;
        m.data_off -= grown;
        m.data_len += grown;
        m.pkt_len += u32::from(grown);
        Ok(())
    }

    fn adj(&mut self, n: usize) -> Result<(), FrameError> {
        let err = FrameError::TooShort { wanted: n, len: self.len() };
        let n = to_u16(n).ok_or(err)?;
        // SAFETY: owned, valid mbuf; adj returns NULL (changing nothing) when
        // the first segment is shorter than `n`.
        let p = unsafe { dpdk_sys::gw_pktmbuf_adj(self.0.as_ptr(), n) };
        if p.is_null() {
            Err(err)
        } else {
            Ok(())
        }
    }

    fn append(&mut self, n: usize) -> Result<(), FrameError> {
        let err = FrameError::NoTailroom { wanted: n, available: self.tailroom() };
        let n = to_u16(n).ok_or(err)?;
        if self.segments() != 1 {
            return Err(err);
        }
        // SAFETY: owned, valid single-segment mbuf; append returns NULL
        // (changing nothing) when the tailroom is too small.
        let p = unsafe { dpdk_sys::gw_pktmbuf_append(self.0.as_ptr(), n) };
        if p.is_null() {
            Err(err)
        } else {
            Ok(())
        }
    }

    fn trim(&mut self, n: usize) -> Result<(), FrameError> {
        let err = FrameError::TooShort { wanted: n, len: self.len() };
        let n = to_u16(n).ok_or(err)?;
        if self.segments() != 1 {
            return Err(err);
        }
        // SAFETY: owned, valid single-segment mbuf; trim returns -1 (changing
        // nothing) when the data is shorter than `n`.
        let ret = unsafe { dpdk_sys::gw_pktmbuf_trim(self.0.as_ptr(), n) };
        if ret != 0 {
            Err(err)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn rx_checksum(&self) -> RxChecksum {
        use dpdk_sys::*;
        let flags = self.ol_flags();
        let status = |mask: u64, good: u64, bad: u64| match flags & mask {
            f if f == good => ChecksumStatus::Good,
            f if f == bad => ChecksumStatus::Bad,
            _ => ChecksumStatus::Unknown,
        };
        RxChecksum {
            ip: status(RTE_MBUF_F_RX_IP_CKSUM_MASK, RTE_MBUF_F_RX_IP_CKSUM_GOOD, RTE_MBUF_F_RX_IP_CKSUM_BAD),
            l4: status(RTE_MBUF_F_RX_L4_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_GOOD, RTE_MBUF_F_RX_L4_CKSUM_BAD),
        }
    }

    #[inline]
    fn set_tx_offload(&mut self, offload: TxOffload) {
        use dpdk_sys::*;
        let mut set = 0;
        if offload.ipv4_checksum || offload.l4 != L4Offload::None {
            set |= if offload.ipv6 { RTE_MBUF_F_TX_IPV6 } else { RTE_MBUF_F_TX_IPV4 };
        }
        if offload.ipv4_checksum {
            set |= RTE_MBUF_F_TX_IP_CKSUM;
        }
        set |= match offload.l4 {
            L4Offload::None => 0,
            L4Offload::Tcp => RTE_MBUF_F_TX_TCP_CKSUM,
            L4Offload::Udp => RTE_MBUF_F_TX_UDP_CKSUM,
        };
        let clear = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK;
        // tx_offload bit layout: l2_len:7, l3_len:9 (rte_mbuf_core.h).
        let lens = (offload.l2_len as u64 & 0x7f) | ((offload.l3_len as u64 & 0x1ff) << 7);
        // Writing a union's field is safe: `tx_offload` is the 64-bit view of
        // all of its length fields (rte_mbuf_core.h), and bindgen's layout
        // assertions pin the union between `next` and `shinfo`, where the C
        // struct has it.
        let m = self.raw_mut();
        m.ol_flags = (m.ol_flags & !clear) | set;
        m.__bindgen_anon_3.tx_offload = lens;
    }

    #[inline]
    fn tx_offload(&self) -> TxOffload {
        use dpdk_sys::*;
        let flags = self.ol_flags();
        // SAFETY: every bit pattern is a valid u64, and `tx_offload` spans
        // the whole union (rte_mbuf_core.h's "combined for easy fetch").
        let lens = unsafe { self.raw().__bindgen_anon_3.tx_offload };
        TxOffload {
            l2_len: (lens & 0x7f) as u8,
            l3_len: ((lens >> 7) & 0x1ff) as u16,
            ipv4_checksum: flags & RTE_MBUF_F_TX_IP_CKSUM != 0,
            ipv6: flags & RTE_MBUF_F_TX_IPV6 != 0,
            l4: match flags & RTE_MBUF_F_TX_L4_MASK {
                RTE_MBUF_F_TX_TCP_CKSUM => L4Offload::Tcp,
                RTE_MBUF_F_TX_UDP_CKSUM => L4Offload::Udp,
                _ => L4Offload::None,
            },
        }
    }

    #[inline]
    fn rss_hash(&self) -> Option<u32> {
        if self.ol_flags() & dpdk_sys::RTE_MBUF_F_RX_RSS_HASH == 0 {
            return None;
        }
        // SAFETY: every bit pattern is a valid u32; the flag says the NIC
        // wrote the RSS hash into this view of the hash union.
        Some(unsafe { self.raw().__bindgen_anon_2.hash.rss })
    }
}

/// Up to [`BURST_SIZE`] owned mbufs in a fixed array: what rx, tx and rings
/// move at once, with no allocation. Whatever is still in a burst when it is
/// dropped or cleared is freed, so a packet that could not be sent is never
/// leaked.
pub struct Burst {
    mbufs: [MaybeUninit<Mbuf>; BURST_SIZE],
    len: usize,
}

// SAFETY: a burst owns its mbufs, which are Send.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    pub fn new() -> Burst {
        Burst { mbufs: [const { MaybeUninit::uninit() }; BURST_SIZE], len: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Free slots.
    pub fn room(&self) -> usize {
        BURST_SIZE - self.len
    }

    /// Adds an mbuf at the end; hands it back when the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        self.mbufs[self.len].write(m);
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slot `len` was initialised and is now outside the live prefix.
        Some(unsafe { self.mbufs[self.len].assume_init_read() })
    }

    /// The mbufs, in order.
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: the first `len` slots are initialised; MaybeUninit<Mbuf> has
        // Mbuf's layout.
        unsafe { slice::from_raw_parts_mut(self.mbufs.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs, in order.
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: as in `as_mut_slice`.
        unsafe { slice::from_raw_parts(self.mbufs.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Takes every mbuf out, in order, leaving the burst empty.
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain { burst: self, next: 0, end: len }
    }

    /// Frees every mbuf; returns how many were freed (for drop counters).
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        for m in self.drain() {
            drop(m);
        }
        n
    }

    /// The raw slots for a C call that fills the burst from position `len`.
    pub(crate) fn spare_raw(&mut self) -> (*mut *mut rte_mbuf, usize) {
        // SAFETY: len <= BURST_SIZE, so the pointer is within or one past the array.
        let ptr = unsafe { self.mbufs.as_mut_ptr().add(self.len) }.cast::<*mut rte_mbuf>();
        (ptr, self.room())
    }

    /// Records that a C call initialised `n` more slots after the live prefix.
    ///
    /// # Safety
    /// The `n` slots after `len` must now hold valid, owned mbufs.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.len + n <= BURST_SIZE);
        self.len += n;
    }

    /// The raw pointers of the live mbufs, for a C call that consumes a prefix.
    pub(crate) fn live_raw(&mut self) -> *mut *mut rte_mbuf {
        self.mbufs.as_mut_ptr().cast::<*mut rte_mbuf>()
    }

    /// Forgets the first `n` mbufs (a C call took ownership of them) and moves
    /// the rest to the front.
    ///
    /// # Safety
    /// The first `n` mbufs must have been handed over to DPDK.
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        let rest = self.len - n;
        // SAFETY: both ranges lie within the array; copy handles the overlap.
        unsafe { std::ptr::copy(self.mbufs.as_ptr().add(n), self.mbufs.as_mut_ptr(), rest) };
        self.len = rest;
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator returned by [`Burst::drain`]; frees whatever it did not yield.
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let i = self.next;
        self.next += 1;
        // SAFETY: slots next..end were initialised and are read exactly once.
        Some(unsafe { self.burst.mbufs[i].assume_init_read() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.end - self.next, Some(self.end - self.next))
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}
