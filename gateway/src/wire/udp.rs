//! UDP headers (RFC 768).
//!
//! The view is over the IPv4 payload. A checked view guarantees
//! `8 <= length field <= len`; [`UdpPacket::payload`] stops at the length
//! field. A zero checksum means the sender did not compute one; rewrites
//! must keep it zero, and a computed zero is sent as 0xffff. Over IPv6 the
//! checksum is mandatory (RFC 8200 §8.1): zero there is a wrong checksum.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{be16, ip_proto, put16, Error, Layer};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Offsets of the fields the rewrites patch.
pub mod offset {
    pub const SRC_PORT: usize = super::field::SRC_PORT;
    pub const DST_PORT: usize = super::field::DST_PORT;
    pub const LENGTH: usize = super::field::LENGTH;
    pub const CHECKSUM: usize = super::field::CHECKSUM;
}

pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Checks the header and the length field against the bytes present.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Udp, needed: HEADER_LEN, len });
        }
        let p = UdpPacket { buffer };
        let udp_len = p.len();
        if usize::from(udp_len) < HEADER_LEN || usize::from(udp_len) > len {
            return Err(Error::BadUdpLength { udp_len, len });
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// The length field (header plus data).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }
    /// True when the checksum is right or absent (zero).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len();
        let b = &self.buffer.as_ref()[..usize::from(len)];
        checksum::verify(b, checksum::pseudo_header_v4(src.octets(), dst.octets(), ip_proto::UDP, len))
    }
    /// True when the checksum over the IPv6 pseudo-header is right; zero
    /// (no checksum) is wrong over IPv6.
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        if self.checksum() == 0 {
            return false;
        }
        let len = self.len();
        let b = &self.buffer.as_ref()[..usize::from(len)];
        checksum::verify(b, checksum::pseudo_header_v6(src.octets(), dst.octets(), ip_proto::UDP, u32::from(len)))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
    /// Computes and stores the checksum (0xffff when it computes to zero).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let b = &self.buffer.as_ref()[..usize::from(len)];
        let pseudo = checksum::pseudo_header_v4(src.octets(), dst.octets(), ip_proto::UDP, len);
        let c = checksum::finish(checksum::sum(b) + pseudo);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
    /// [`fill_checksum`](Self::fill_checksum) over the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let len = self.len();
        let b = &self.buffer.as_ref()[..usize::from(len)];
        let pseudo = checksum::pseudo_header_v6(src.octets(), dst.octets(), ip_proto::UDP, u32::from(len));
        let c = checksum::finish(checksum::sum(b) + pseudo);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A UDP datagram as values: what [`UdpRepr::emit`] writes and
/// [`UdpRepr::parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

impl<'a> UdpRepr<'a> {
    /// The datagram's values, borrowing its payload (up to the length field).
    pub fn parse(packet: &UdpPacket<&'a [u8]>) -> UdpRepr<'a> {
        let b: &'a [u8] = packet.buffer;
        UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &b[HEADER_LEN..usize::from(packet.len())],
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram; the buffer must hold
    /// [`buffer_len`](Self::buffer_len) bytes, at most 65535. With
    /// `checksum` the checksum over the pseudo-header of `src` and `dst` is
    /// filled, without it the field is zero ("not computed").
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: bool,
    ) {
        self.emit_fields(packet);
        if checksum {
            packet.fill_checksum(src, dst);
        }
    }

    /// Writes the datagram with its checksum over the IPv6 pseudo-header
    /// (always: it is mandatory over IPv6).
    pub fn emit_v6<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpPacket<T>, src: Ipv6Addr, dst: Ipv6Addr) {
        self.emit_fields(packet);
        packet.fill_checksum_v6(src, dst);
    }

    /// Everything but the checksum, which is left zero.
    fn emit_fields<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpPacket<T>) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(self.buffer_len() as u16);
        packet.set_checksum(0);
        packet.payload_mut().copy_from_slice(self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);

    /// A DNS-looking datagram 40000 -> 53 with 4 bytes of data, followed by
    /// 2 bytes that are not part of it.
    const DATAGRAM: [u8; 14] = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xca, 0xfe, 0xba, 0xbe, 0x77, 0x77];

    fn with_checksum() -> [u8; 14] {
        let mut b = DATAGRAM;
        UdpPacket::new_unchecked(&mut b[..]).fill_checksum(SRC, DST);
        b
    }

    #[test]
    fn parse_every_field() {
        let b = with_checksum();
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_ne!(p.checksum(), 0);
        assert_eq!(p.payload(), &[0xca, 0xfe, 0xba, 0xbe]);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, DST));
    }

    #[test]
    fn emit_same_bytes() {
        let original = with_checksum();
        let mut buf = [0x77u8; 14];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(40000);
        p.set_dst_port(53);
        p.set_len(12);
        p.payload_mut().copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe]);
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, original);
    }

    #[test]
    fn zero_checksum_means_none() {
        let p = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert_eq!(
            UdpPacket::new_checked(&DATAGRAM[..7]).unwrap_err(),
            Error::Truncated { layer: Layer::Udp, needed: 8, len: 7 }
        );
        assert_eq!(UdpPacket::new_checked(&DATAGRAM[..11]).unwrap_err(), Error::BadUdpLength { udp_len: 12, len: 11 });
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap_err(), Error::BadUdpLength { udp_len: 7, len: 14 });
    }

    /// The same datagram [2001:db8::1] -> [2001:db8::35]; 0x81fb was
    /// computed outside this crate.
    const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x35);

    #[test]
    fn ipv6_checksum_is_mandatory() {
        let mut b = DATAGRAM;
        let repr = UdpRepr { src_port: 40000, dst_port: 53, payload: &[0xca, 0xfe, 0xba, 0xbe] };
        repr.emit_v6(&mut UdpPacket::new_unchecked(&mut b[..12]), V6_SRC, V6_DST);
        assert_eq!(&b[6..8], &[0x81, 0xfb]);
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum_v6(V6_SRC, V6_DST));
        assert!(!p.verify_checksum_v6(V6_SRC, V6_SRC));
        // No checksum is fine over IPv4, wrong over IPv6.
        let bare = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert!(bare.verify_checksum(SRC, DST));
        assert!(!bare.verify_checksum_v6(V6_SRC, V6_DST));
        // A sum that computes to zero is sent as 0xffff: payload chosen so.
        let mut zero = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        let mut p = UdpPacket::new_unchecked(&mut zero[..]);
        p.fill_checksum_v6(V6_SRC, V6_DST);
        let c = p.checksum();
        // Put the checksum's complement into the data so the sum is zero.
        zero[8..10].copy_from_slice(&c.to_be_bytes());
        let mut p = UdpPacket::new_unchecked(&mut zero[..]);
        p.fill_checksum_v6(V6_SRC, V6_DST);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum_v6(V6_SRC, V6_DST));
    }

    #[test]
    fn repr_round_trips_the_literal_datagram() {
        let b = with_checksum();
        assert_eq!(&b[6..8], &[0x11, 0xbc], "the checksum of the literal datagram");
        let repr = UdpRepr::parse(&UdpPacket::new_checked(&b[..]).unwrap());
        assert_eq!(repr, UdpRepr { src_port: 40000, dst_port: 53, payload: &[0xca, 0xfe, 0xba, 0xbe] });
        let mut buf = [0xeeu8; 12];
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC, DST, true);
        assert_eq!(buf, b[..12]);
        repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC, DST, false);
        assert_eq!(buf, DATAGRAM[..12]);
    }
}
