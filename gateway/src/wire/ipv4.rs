//! IPv4 headers (RFC 791), options included.
//!
//! A checked view guarantees `20 <= header_len <= total_len <= buffer len`, so
//! [`Ipv4Packet::options`] and [`Ipv4Packet::payload`] are in bounds; bytes
//! past the total length (Ethernet padding of short frames) are not payload.
//! Options are carried, never interpreted: a load balancer forwards them.

use std::net::Ipv4Addr;

use super::checksum;
use super::{be16, put16, Error, Layer};

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Offsets of the fields the rewrites patch, for code that works on a
/// header already proven to hold [`MIN_HEADER_LEN`] bytes.
pub mod offset {
    pub const LENGTH: usize = super::field::LENGTH;
    pub const IDENT: usize = super::field::IDENT;
    pub const FLAGS_FRAG: usize = super::field::FLAGS_FRAG;
    pub const TTL: usize = super::field::TTL;
    pub const PROTOCOL: usize = super::field::PROTOCOL;
    pub const CHECKSUM: usize = super::field::CHECKSUM;
    pub const SRC: usize = super::field::SRC;
    pub const DST: usize = super::field::DST;
}

pub const MIN_HEADER_LEN: usize = 20;
pub const MAX_HEADER_LEN: usize = 60;

/// Don't Fragment, in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More Fragments, in the flags/fragment-offset word.
pub const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Checks version, IHL and total length against the bytes present.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Ipv4, needed: MIN_HEADER_LEN, len });
        }
        let p = Ipv4Packet { buffer };
        if p.version() != 4 {
            return Err(Error::BadIpVersion { found: p.version(), expected: 4 });
        }
        let header_len = p.header_len();
        if header_len < MIN_HEADER_LEN || header_len > len {
            return Err(Error::BadIhl { ihl: p.ihl(), len });
        }
        let total_len = p.total_len();
        if usize::from(total_len) < header_len || usize::from(total_len) > len {
            return Err(Error::BadTotalLength { total_len, header_len, len });
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in 32-bit words.
    pub fn ihl(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] & 0x0f
    }
    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 3
    }
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET_MASK) << 3
    }
    /// True for any fragment, first or later.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[field::SRC], b[field::SRC + 1], b[field::SRC + 2], b[field::SRC + 3])
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[field::DST], b[field::DST + 1], b[field::DST + 2], b[field::DST + 3])
    }
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    /// The bytes after the header up to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
    /// True when the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(&self.buffer.as_ref()[..self.header_len()], 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 3);
    }
    pub fn set_total_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, len);
    }
    pub fn set_ident(&mut self, ident: u16) {
        put16(self.buffer.as_mut(), field::IDENT, ident);
    }
    /// Writes the flags and the fragment offset (in bytes, a multiple of 8).
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        put16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }
    pub fn set_checksum(&mut self, checksum: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&a.octets());
    }
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..end]
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }
    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(&self.buffer.as_ref()[..self.header_len()]);
        self.set_checksum(c);
    }
}

/// An IPv4 header without options, as values: what [`Ipv4Repr::emit`]
/// writes and [`Ipv4Repr::parse`] reads. Options, when a packet has them,
/// are carried by the view, not the repr (a load balancer never builds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: u8,
    /// Bytes after the header (the total length less the header).
    pub payload_len: usize,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub dscp: u8,
    pub ecn: u8,
}

impl Ipv4Repr {
    /// A header with the common defaults: TTL 64, ident 0, DF set, best effort.
    pub fn new(src_addr: Ipv4Addr, dst_addr: Ipv4Addr, protocol: u8, payload_len: usize) -> Ipv4Repr {
        Ipv4Repr { src_addr, dst_addr, protocol, payload_len, ttl: 64, ident: 0, dont_frag: true, dscp: 0, ecn: 0 }
    }

    /// The header's values; options and fragmentation, if any, are left out.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Ipv4Repr {
        Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()).saturating_sub(packet.header_len()),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
        }
    }

    pub fn header_len(&self) -> usize {
        MIN_HEADER_LEN
    }

    pub fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN + self.payload_len
    }

    /// Writes the 20-byte header with its checksum (not the payload); the
    /// buffer must hold [`MIN_HEADER_LEN`] bytes and the total length must
    /// fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_version_and_header_len(MIN_HEADER_LEN);
        packet.set_dscp_ecn(self.dscp, self.ecn);
        packet.set_total_len(self.buffer_len() as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_frag_offset(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.1 -> 10.0.0.2, TCP, 24-byte header with a 4-byte option
    /// (router alert), 4 bytes of payload, 2 bytes of Ethernet padding.
    const PACKET: [u8; 30] = [
        0x46, 0xb8, 0x00, 0x1c, // v4, ihl 6, dscp 46, ecn 0, total 28
        0x12, 0x34, 0x40, 0x00, // ident, DF
        0x40, 0x06, 0x7e, 0xe9, // ttl 64, tcp, checksum
        10, 0, 0, 1, 10, 0, 0, 2, // addresses
        0x94, 0x04, 0x00, 0x00, // router alert option
        0xde, 0xad, 0xbe, 0xef, // payload
        0x00, 0x00, // padding
    ];

    #[test]
    fn parse_every_field() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.ihl(), 6);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp(), 46);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.checksum(), 0x7ee9);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn emit_same_bytes() {
        let mut buf = [0u8; 30];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_version_and_header_len(24);
        p.set_dscp_ecn(46, 0);
        p.set_total_len(28);
        p.set_ident(0x1234);
        p.set_flags_and_frag_offset(true, false, 0);
        p.set_ttl(64);
        p.set_protocol(6);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.options_mut().copy_from_slice(&[0x94, 0x04, 0, 0]);
        p.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        p.fill_checksum();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn fragments_are_recognised() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_flags_and_frag_offset(false, true, 0);
        assert!(p.is_fragment() && p.more_frags());
        p.set_flags_and_frag_offset(false, false, 1480);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset(), 1480);
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..19]).unwrap_err(),
            Error::Truncated { layer: Layer::Ipv4, needed: 20, len: 19 }
        );
        let mut b = PACKET;
        b[0] = 0x66;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Error::BadIpVersion { found: 6, expected: 4 });
        b[0] = 0x44;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Error::BadIhl { ihl: 4, len: 30 });
        b[0] = 0x4f;
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap_err(), Error::BadIhl { ihl: 15, len: 30 });
        b[0] = 0x46;
        b[3] = 31;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadTotalLength { total_len: 31, header_len: 24, len: 30 }
        );
        b[3] = 23;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadTotalLength { total_len: 23, header_len: 24, len: 30 }
        );
    }

    #[test]
    fn corrupted_checksum_fails_verification() {
        let mut b = PACKET;
        b[8] = 63;
        assert!(!Ipv4Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    /// 192.168.1.10 -> 10.0.0.53, UDP, no options, dscp 46, 8 bytes of payload.
    const PLAIN_HEADER: [u8; 20] = [
        0x45, 0xb8, 0x00, 0x1c, // v4, ihl 5, dscp 46, total 28
        0x12, 0x34, 0x40, 0x00, // ident, DF
        0x40, 0x11, 0x5b, 0xfe, // ttl 64, udp, checksum
        192, 168, 1, 10, 10, 0, 0, 53, // addresses
    ];

    #[test]
    fn repr_round_trips_a_literal_header() {
        let repr = Ipv4Repr {
            dscp: 46,
            ident: 0x1234,
            ..Ipv4Repr::new(Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(10, 0, 0, 53), 17, 8)
        };
        let mut packet = PLAIN_HEADER.to_vec();
        packet.extend_from_slice(&[0xab; 8]);
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&packet[..]).unwrap()), repr);
        assert_eq!(repr.buffer_len(), 28);
        let mut buf = [0xeeu8; 20];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, PLAIN_HEADER);
        // The header with options parses to its values, options left out.
        let with_options = Ipv4Repr::parse(&Ipv4Packet::new_checked(&PACKET[..]).unwrap());
        assert_eq!((with_options.payload_len, with_options.protocol, with_options.dscp), (4, 6, 46));
    }
}
