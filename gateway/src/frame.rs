//! The frame abstraction the packet pipeline is written against.
//!
//! A frame is one packet in one contiguous buffer with room before the data
//! (headroom, for encapsulation and option insertion) and after it (tailroom).
//! Two implementations exist: [`crate::dpdk::Mbuf`] on the datapath, and
//! [`BufFrame`], a plain byte buffer with the same geometry as an mbuf, for
//! unit tests, property tests, fuzzers and the instruction-count benchmark.
//!
//! The trait is deliberately small: everything the rewrites need is "the bytes,
//! mutable", "grow or shrink at either end", and the checksum offload state
//! the NIC reported or should be asked for. Multi-segment packets are not
//! frames; the receive path drops (and counts) chained mbufs before they get
//! here, as DPVS does for the fast path.

use std::fmt;

/// Headroom a freshly received frame has before its data: DPDK's
/// `RTE_PKTMBUF_HEADROOM` default, mirrored so [`BufFrame`] behaves the same.
pub const DEFAULT_HEADROOM: usize = 128;

/// Data room of a standard DPDK mbuf (`RTE_MBUF_DEFAULT_DATAROOM`).
pub const DEFAULT_DATAROOM: usize = 2048;

/// Why a frame could not be resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// `prepend` asked for more bytes than the headroom holds.
    NoHeadroom { wanted: usize, available: usize },
    /// `append` asked for more bytes than the tailroom holds.
    NoTailroom { wanted: usize, available: usize },
    /// `adj` or `trim` asked to remove more bytes than the frame has.
    TooShort { wanted: usize, len: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::NoHeadroom { wanted, available } => {
                write!(f, "cannot prepend {wanted} bytes: only {available} bytes of headroom")
            }
            FrameError::NoTailroom { wanted, available } => {
                write!(f, "cannot append {wanted} bytes: only {available} bytes of tailroom")
            }
            FrameError::TooShort { wanted, len } => {
                write!(f, "cannot remove {wanted} bytes from a {len}-byte frame")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// What the receiving NIC said about one checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumStatus {
    /// The NIC did not check (or cannot): software must verify if it cares.
    #[default]
    Unknown,
    Good,
    Bad,
}

/// Checksum state reported at receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxChecksum {
    pub ip: ChecksumStatus,
    pub l4: ChecksumStatus,
}

/// Which layer-4 checksum the NIC is asked to fill at transmit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum L4Offload {
    #[default]
    None,
    Tcp,
    Udp,
}

/// A request for the NIC to compute checksums at transmit. When `l4` is not
/// `None`, DPDK's contract applies: the L4 checksum field must hold the
/// pseudo-header checksum (not the full one) when the frame is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOffload {
    pub l2_len: u8,
    /// The IP header, with an IPv6 packet's extension headers: the offset
    /// of the layer-4 header from the IP header.
    pub l3_len: u16,
    pub ipv4_checksum: bool,
    /// The packet is IPv6 (DPDK's `RTE_MBUF_F_TX_IPV6` instead of
    /// `RTE_MBUF_F_TX_IPV4`); `ipv4_checksum` is false then, IPv6 having no
    /// header checksum.
    pub ipv6: bool,
    pub l4: L4Offload,
}

/// One packet in one contiguous buffer.
pub trait Frame {
    /// The packet bytes, from the first byte of the Ethernet header.
    fn data(&self) -> &[u8];
    /// The packet bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];

    /// Bytes free in front of the data.
    fn headroom(&self) -> usize;
    /// Bytes free after the data.
    fn tailroom(&self) -> usize;

    /// Grows the frame by `n` bytes at the front; the new bytes are
    /// unspecified and come first in [`Frame::data`].
    fn prepend(&mut self, n: usize) -> Result<(), FrameError>;
    /// Removes `n` bytes from the front.
    fn adj(&mut self, n: usize) -> Result<(), FrameError>;
    /// Grows the frame by `n` bytes at the end; the new bytes are unspecified.
    fn append(&mut self, n: usize) -> Result<(), FrameError>;
    /// Removes `n` bytes from the end.
    fn trim(&mut self, n: usize) -> Result<(), FrameError>;

    /// Checksum state reported by the NIC when the frame was received.
    fn rx_checksum(&self) -> RxChecksum {
        RxChecksum::default()
    }
    /// Asks the NIC to fill checksums at transmit. Frames that never reach a
    /// NIC (tests) record the request so it can be checked.
    fn set_tx_offload(&mut self, offload: TxOffload);
    /// The transmit checksum request currently set.
    fn tx_offload(&self) -> TxOffload;

    /// The NIC's RSS hash of the frame, when it computed one.
    fn rss_hash(&self) -> Option<u32> {
        None
    }

    // Always inlined: left to the compiler, it was a call on the per-packet
    // path (a TOA's insertion, the received bytes' count).
    #[inline(always)]
    fn len(&self) -> usize {
        self.data().len()
    }
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }
}

/// A frame in an owned byte buffer with an mbuf's geometry (headroom, then
/// data, then tailroom). Used wherever DPDK is not: tests, fuzzing, benches.
///
/// The frame itself is one pointer, as an mbuf is: moving it through the
/// pipeline costs what moving an mbuf does, so the instruction-count
/// benchmarks on it tell the gateway's cost.
#[derive(Clone)]
pub struct BufFrame(Box<Buf>);

/// A [`BufFrame`]'s buffer and geometry.
#[derive(Clone)]
struct Buf {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    rx_checksum: RxChecksum,
    tx_offload: TxOffload,
    rss_hash: Option<u32>,
}

impl BufFrame {
    /// A frame holding `bytes` with the default headroom and a data room of
    /// at least [`DEFAULT_DATAROOM`] (more if `bytes` is longer).
    pub fn new(bytes: &[u8]) -> Self {
        Self::with_geometry(bytes, DEFAULT_HEADROOM, DEFAULT_DATAROOM.max(bytes.len()))
    }

    /// A frame holding `bytes` with exactly `headroom` bytes in front and a
    /// data room (data plus tailroom) of `dataroom` bytes.
    ///
    /// # Panics
    /// If `bytes` does not fit in `dataroom`: this is a test-construction
    /// error, never reachable from packet input.
    pub fn with_geometry(bytes: &[u8], headroom: usize, dataroom: usize) -> Self {
        assert!(bytes.len() <= dataroom, "{} bytes do not fit a {dataroom}-byte data room", bytes.len());
        let mut buf = vec![0u8; headroom + dataroom].into_boxed_slice();
        buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
        BufFrame(Box::new(Buf {
            buf,
            start: headroom,
            end: headroom + bytes.len(),
            rx_checksum: RxChecksum::default(),
            tx_offload: TxOffload::default(),
            rss_hash: None,
        }))
    }

    /// Replaces the contents with `bytes` at the default headroom, keeping the
    /// buffer (no allocation): how benchmarks and fuzzers reuse one frame.
    ///
    /// # Panics
    /// If `bytes` does not fit the buffer after the default headroom.
    pub fn reset(&mut self, bytes: &[u8]) {
        let start = DEFAULT_HEADROOM.min(self.0.buf.len());
        assert!(start + bytes.len() <= self.0.buf.len(), "{} bytes do not fit the frame buffer", bytes.len());
        self.0.buf[start..start + bytes.len()].copy_from_slice(bytes);
        self.0.start = start;
        self.0.end = start + bytes.len();
        self.0.rx_checksum = RxChecksum::default();
        self.0.tx_offload = TxOffload::default();
        self.0.rss_hash = None;
    }

    /// Sets what a NIC would have reported at receive time.
    pub fn set_rx_checksum(&mut self, rx: RxChecksum) {
        self.0.rx_checksum = rx;
    }

    /// Sets the RSS hash a NIC would have reported.
    pub fn set_rss_hash(&mut self, hash: Option<u32>) {
        self.0.rss_hash = hash;
    }
}

impl fmt::Debug for BufFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufFrame")
            .field("len", &self.len())
            .field("headroom", &self.headroom())
            .field("tailroom", &self.tailroom())
            .finish()
    }
}

impl Frame for BufFrame {
    // Always inlined, as an mbuf's are: left to the compiler, `data_mut` was
    // a call in the forwarding path, and the pipeline's instruction counts
    // (measured on this frame) held calls the real datapath does not make.
    #[inline(always)]
    fn data(&self) -> &[u8] {
        &self.0.buf[self.0.start..self.0.end]
    }

    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.0.buf[self.0.start..self.0.end]
    }

    // The geometry's difference, as an mbuf's is its `data_len`: through
    // `data()`, each count of the bytes paid the slice's two bounds checks.
    #[inline(always)]
    fn len(&self) -> usize {
        self.0.end - self.0.start
    }

    fn headroom(&self) -> usize {
        self.0.start
    }

    fn tailroom(&self) -> usize {
        self.0.buf.len() - self.0.end
    }

    fn prepend(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.0.start {
            return Err(FrameError::NoHeadroom { wanted: n, available: self.0.start });
        }
        self.0.start -= n;
        Ok(())
    }

    fn adj(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.len() {
            return Err(FrameError::TooShort { wanted: n, len: self.len() });
        }
        self.0.start += n;
        Ok(())
    }

    fn append(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.tailroom() {
            return Err(FrameError::NoTailroom { wanted: n, available: self.tailroom() });
        }
        self.0.end += n;
        Ok(())
    }

    fn trim(&mut self, n: usize) -> Result<(), FrameError> {
        if n > self.len() {
            return Err(FrameError::TooShort { wanted: n, len: self.len() });
        }
        self.0.end -= n;
        Ok(())
    }

    fn rx_checksum(&self) -> RxChecksum {
        self.0.rx_checksum
    }

    fn set_tx_offload(&mut self, offload: TxOffload) {
        self.0.tx_offload = offload;
    }

    fn tx_offload(&self) -> TxOffload {
        self.0.tx_offload
    }

    fn rss_hash(&self) -> Option<u32> {
        self.0.rss_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_an_mbuf() {
        let f = BufFrame::new(&[1, 2, 3]);
        assert_eq!(f.data(), &[1, 2, 3]);
        assert_eq!(f.headroom(), DEFAULT_HEADROOM);
        assert_eq!(f.tailroom(), DEFAULT_DATAROOM - 3);
    }

    #[test]
    fn prepend_and_adj_move_the_front() {
        let mut f = BufFrame::new(&[1, 2, 3]);
        f.prepend(2).unwrap();
        f.data_mut()[..2].copy_from_slice(&[9, 8]);
        assert_eq!(f.data(), &[9, 8, 1, 2, 3]);
        f.adj(3).unwrap();
        assert_eq!(f.data(), &[2, 3]);
        assert_eq!(f.adj(3), Err(FrameError::TooShort { wanted: 3, len: 2 }));
        assert_eq!(f.data(), &[2, 3], "a refused adj changes nothing");
    }

    #[test]
    fn append_and_trim_move_the_back() {
        let mut f = BufFrame::with_geometry(&[1, 2], 0, 4);
        f.append(2).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f.append(1), Err(FrameError::NoTailroom { wanted: 1, available: 0 }));
        f.trim(3).unwrap();
        assert_eq!(f.data(), &[1]);
        assert_eq!(f.trim(2), Err(FrameError::TooShort { wanted: 2, len: 1 }));
    }

    #[test]
    fn prepend_beyond_headroom_is_refused() {
        let mut f = BufFrame::with_geometry(&[1], 4, 8);
        assert_eq!(f.prepend(5), Err(FrameError::NoHeadroom { wanted: 5, available: 4 }));
        f.prepend(4).unwrap();
        assert_eq!(f.headroom(), 0);
    }

    #[test]
    fn reset_reuses_the_buffer() {
        let mut f = BufFrame::new(&[1, 2, 3]);
        f.prepend(10).unwrap();
        f.set_tx_offload(TxOffload { l2_len: 14, l3_len: 20, ipv4_checksum: true, ipv6: false, l4: L4Offload::Tcp });
        f.reset(&[7, 7]);
        assert_eq!(f.data(), &[7, 7]);
        assert_eq!(f.headroom(), DEFAULT_HEADROOM);
        assert_eq!(f.tx_offload(), TxOffload::default());
    }

    #[test]
    fn error_messages_name_the_values() {
        let e = FrameError::NoHeadroom { wanted: 20, available: 8 };
        assert_eq!(e.to_string(), "cannot prepend 20 bytes: only 8 bytes of headroom");
    }
}
