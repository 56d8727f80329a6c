//! Ethernet II frames with at most one 802.1Q VLAN tag.
//!
//! A single tag is what a gateway port on a trunk sees; stacked tags (QinQ,
//! 0x88a8) are reported as their outer EtherType and left to the caller to
//! drop, as DPVS does.

use std::fmt;

use super::{be16, put16, Error, Layer};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
    /// With a tag, the TCI follows the 0x8100 TPID, then the real EtherType.
    pub const VLAN_TCI: usize = 14;
    pub const VLAN_ETHERTYPE: usize = 16;
    pub const VLAN_HEADER_LEN: usize = 18;
}

/// Untagged Ethernet header length.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Ethernet header length with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = field::VLAN_HEADER_LEN;

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// The addresses an Ethernet header starts with, destination then source,
/// as the header holds them: a frame is addressed by one 12-byte copy,
/// made once for a next hop (the egress cache keeps it), not assembled from
/// two addresses for every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EthAddrs(pub [u8; 12]);

impl EthAddrs {
    pub fn new(dst: MacAddr, src: MacAddr) -> EthAddrs {
        let mut b = [0; 12];
        b[field::DST].copy_from_slice(&dst.0);
        b[field::SRC].copy_from_slice(&src.0);
        EthAddrs(b)
    }

    pub fn dst(&self) -> MacAddr {
        let mut b = [0; 6];
        b.copy_from_slice(&self.0[field::DST]);
        MacAddr(b)
    }

    pub fn src(&self) -> MacAddr {
        let mut b = [0; 6];
        b.copy_from_slice(&self.0[field::SRC]);
        MacAddr(b)
    }
}

/// An 802.1Q tag control field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    pub pcp: u8,
    pub dei: bool,
    pub vid: u16,
}

impl VlanTag {
    pub fn from_tci(tci: u16) -> Self {
        VlanTag { pcp: (tci >> 13) as u8, dei: tci & 0x1000 != 0, vid: tci & 0x0fff }
    }

    pub fn tci(&self) -> u16 {
        (u16::from(self.pcp & 7) << 13) | (u16::from(self.dei) << 12) | (self.vid & 0x0fff)
    }
}

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer the caller knows to hold the whole header.
    pub fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer after checking it holds the header, the tag included
    /// when there is one.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Ethernet, needed: field::HEADER_LEN, len });
        }
        let frame = EthernetFrame { buffer };
        if frame.outer_ethertype() == ETHERTYPE_VLAN && len < field::VLAN_HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Vlan, needed: field::VLAN_HEADER_LEN, len });
        }
        Ok(frame)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn dst_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(a)
    }

    pub fn src_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(a)
    }

    /// The EtherType right after the addresses (0x8100 when tagged).
    pub fn outer_ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// The 802.1Q tag, if the frame carries one.
    pub fn vlan(&self) -> Option<VlanTag> {
        (self.outer_ethertype() == ETHERTYPE_VLAN)
            .then(|| VlanTag::from_tci(be16(self.buffer.as_ref(), field::VLAN_TCI)))
    }

    /// The EtherType of the payload, past the tag if any.
    pub fn ethertype(&self) -> u16 {
        if self.outer_ethertype() == ETHERTYPE_VLAN {
            be16(self.buffer.as_ref(), field::VLAN_ETHERTYPE)
        } else {
            self.outer_ethertype()
        }
    }

    /// Header length: 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        if self.outer_ethertype() == ETHERTYPE_VLAN {
            field::VLAN_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Writes an untagged header's EtherType.
    pub fn set_outer_ethertype(&mut self, ethertype: u16) {
        put16(self.buffer.as_mut(), field::ETHERTYPE, ethertype);
    }

    /// Writes a tagged header: TPID, tag, then the payload EtherType. The
    /// buffer must hold [`VLAN_HEADER_LEN`] bytes.
    pub fn set_vlan(&mut self, tag: VlanTag, ethertype: u16) {
        let b = self.buffer.as_mut();
        put16(b, field::ETHERTYPE, ETHERTYPE_VLAN);
        put16(b, field::VLAN_TCI, tag.tci());
        put16(b, field::VLAN_ETHERTYPE, ethertype);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// The header of an Ethernet frame as values: what [`EthernetRepr::emit`]
/// writes and [`EthernetRepr::parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src_addr: MacAddr,
    pub dst_addr: MacAddr,
    /// The 802.1Q tag, if the frame carries one.
    pub vlan: Option<VlanTag>,
    /// The EtherType of the payload (past the tag).
    pub ethertype: u16,
}

impl EthernetRepr {
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> EthernetRepr {
        EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        }
    }

    /// Header length: 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header; the buffer must hold [`header_len`](Self::header_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => frame.set_vlan(tag, self.ethertype),
            None => frame.set_outer_ethertype(self.ethertype),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_print_as_iproute2_does() {
        assert_eq!(MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x5f]).to_string(), "52:54:00:12:34:5f");
    }

    #[test]
    fn a_headers_addresses_are_destination_then_source() {
        let (dst, src) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let addrs = EthAddrs::new(dst, src);
        assert_eq!(addrs.0, UNTAGGED[..12], "as a header holds them");
        assert_eq!((addrs.dst(), addrs.src()), (dst, src));
    }

    const UNTAGGED: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0xaa, 0xbb, // payload
    ];

    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // src
        0x81, 0x00, // 802.1Q
        0xa0, 0x64, // pcp 5, dei 0, vid 100
        0x08, 0x06, // ARP
        0x01, 0x02,
    ];

    #[test]
    fn parse_untagged() {
        let f = EthernetFrame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.ethertype(), ETHERTYPE_IPV4);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn parse_tagged() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        assert_eq!(f.src_addr().to_string(), "52:54:00:12:34:56");
        assert_eq!(f.outer_ethertype(), ETHERTYPE_VLAN);
        assert_eq!(f.vlan(), Some(VlanTag { pcp: 5, dei: false, vid: 100 }));
        assert_eq!(f.ethertype(), ETHERTYPE_ARP);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[1, 2]);
    }

    #[test]
    fn emit_same_bytes() {
        let mut buf = [0u8; 16];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_src_addr(MacAddr([2, 0, 0, 0, 0, 2]));
        f.set_outer_ethertype(ETHERTYPE_IPV4);
        f.payload_mut().copy_from_slice(&[0xaa, 0xbb]);
        assert_eq!(buf, UNTAGGED);

        let mut buf = [0u8; 20];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(MacAddr::BROADCAST);
        f.set_src_addr(MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]));
        f.set_vlan(VlanTag { pcp: 5, dei: false, vid: 100 }, ETHERTYPE_ARP);
        f.payload_mut().copy_from_slice(&[1, 2]);
        assert_eq!(buf, TAGGED);
    }

    #[test]
    fn truncated_headers_are_refused() {
        assert_eq!(
            EthernetFrame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated { layer: Layer::Ethernet, needed: 14, len: 13 }
        );
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]).unwrap_err(),
            Error::Truncated { layer: Layer::Vlan, needed: 18, len: 17 }
        );
    }

    #[test]
    fn tci_round_trips() {
        for tci in [0u16, 0xffff, 0x1001, 0xe00f] {
            assert_eq!(VlanTag::from_tci(tci).tci(), tci);
        }
    }

    #[test]
    fn repr_round_trips_the_literal_frames() {
        let untagged = EthernetRepr {
            src_addr: MacAddr([2, 0, 0, 0, 0, 2]),
            dst_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            vlan: None,
            ethertype: ETHERTYPE_IPV4,
        };
        let tagged = EthernetRepr {
            src_addr: MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            dst_addr: MacAddr::BROADCAST,
            vlan: Some(VlanTag { pcp: 5, dei: false, vid: 100 }),
            ethertype: ETHERTYPE_ARP,
        };
        for (bytes, repr) in [(&UNTAGGED[..], untagged), (&TAGGED[..], tagged)] {
            assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(bytes).unwrap()), repr);
            let mut buf = bytes.to_vec();
            buf[..repr.header_len()].fill(0);
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            assert_eq!(buf, bytes);
        }
    }
}
