//! ICMPv4 messages (RFC 792): echo, and the errors that quote an IP header.
//!
//! The view is over the IPv4 payload. Only the 8-byte header is checked;
//! [`Icmpv4Packet::data`] is what follows (the echo data, or the quoted
//! datagram of an error, which callers parse with the IPv4 view).

use super::checksum;
use super::{be16, be32, put16, put32, Error, Layer};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const REST: usize = 4;
}

/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
pub const HEADER_LEN: usize = 8;

/// Message types.
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Codes of destination unreachable and time exceeded used here.
pub mod code {
    pub const FRAG_NEEDED: u8 = 4;
    pub const TTL_EXCEEDED: u8 = 0;
}

/// True for the error types a load balancer relays to the connection they
/// belong to: the ones Linux IPVS handles (`ip_vs_in_icmp`), plus parameter
/// problem. Redirects are for the director itself and are not relayed.
pub fn is_relayed_error(t: u8) -> bool {
    matches!(
        t,
        msg_type::DEST_UNREACHABLE | msg_type::SOURCE_QUENCH | msg_type::TIME_EXCEEDED | msg_type::PARAM_PROBLEM
    )
}

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Icmp, needed: HEADER_LEN, len });
        }
        Ok(Icmpv4Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    /// Echo sequence number.
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }
    /// The second header word (unused, MTU of a "fragmentation needed", or a
    /// parameter problem pointer).
    pub fn rest_of_header(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST)
    }
    /// Next-hop MTU of a "fragmentation needed" (RFC 1191).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SEQ)
    }
    pub fn is_error(&self) -> bool {
        is_relayed_error(self.msg_type())
    }
    /// Echo data, or the quoted datagram of an error.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buffer.as_ref(), 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    pub fn set_echo_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::IDENT, v);
    }
    pub fn set_echo_seq(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SEQ, v);
    }
    pub fn set_rest_of_header(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::REST, v);
    }
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
    /// Computes and stores the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An ICMPv4 message as values: what [`Icmpv4Repr::emit`] writes and
/// [`Icmpv4Repr::parse`] reads. The second header word is kept whole
/// (echo identifier and sequence, an MTU, a pointer, or unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Repr<'a> {
    pub msg_type: u8,
    pub msg_code: u8,
    pub rest_of_header: u32,
    /// Echo data, or the quoted datagram of an error.
    pub data: &'a [u8],
}

impl<'a> Icmpv4Repr<'a> {
    /// The message's values, borrowing its data.
    pub fn parse(packet: &Icmpv4Packet<&'a [u8]>) -> Icmpv4Repr<'a> {
        let b: &'a [u8] = packet.buffer;
        Icmpv4Repr {
            msg_type: packet.msg_type(),
            msg_code: packet.msg_code(),
            rest_of_header: packet.rest_of_header(),
            data: &b[HEADER_LEN..],
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Writes the message with its checksum; the buffer must hold exactly
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        packet.set_msg_type(self.msg_type);
        packet.set_msg_code(self.msg_code);
        packet.set_rest_of_header(self.rest_of_header);
        packet.data_mut().copy_from_slice(self.data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ping` echo request: ident 0x1234, seq 1, 4 bytes of data.
    const ECHO: [u8; 12] = [8, 0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g'];

    /// Port unreachable quoting a UDP datagram 10.0.0.1:40000 -> 10.0.0.2:53.
    const UNREACHABLE: [u8; 36] = [
        3, 3, 0x00, 0x00, 0, 0, 0, 0, // type 3 code 3, unused
        0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0, 0, 2, 0x9c, 0x40,
        0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
    ];

    fn with_checksum<const N: usize>(mut b: [u8; N]) -> [u8; N] {
        Icmpv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        b
    }

    #[test]
    fn parse_echo() {
        let b = with_checksum(ECHO);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq(), 1);
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert!(!p.is_error());
        assert_eq!(p.data(), b"ping");
        assert!(p.verify_checksum());
        assert_eq!(p.checksum(), !(0x0800u16 + 0x1234 + 0x0001 + 0x7069 + 0x6e67));
    }

    #[test]
    fn parse_error_with_quoted_datagram() {
        let b = with_checksum(UNREACHABLE);
        let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::DEST_UNREACHABLE, 3));
        assert!(p.is_error());
        let inner = crate::wire::ipv4::Ipv4Packet::new_checked(p.data()).unwrap();
        assert_eq!(inner.src_addr(), std::net::Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(inner.protocol(), 17);
        assert!(p.verify_checksum());
    }

    #[test]
    fn emit_same_bytes() {
        let original = with_checksum(ECHO);
        let mut buf = [0u8; 12];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(msg_type::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq(1);
        p.data_mut().copy_from_slice(b"ping");
        p.fill_checksum();
        assert_eq!(buf, original);

        let original = with_checksum(UNREACHABLE);
        let mut buf = [0u8; 36];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(msg_type::DEST_UNREACHABLE);
        p.set_msg_code(3);
        p.set_rest_of_header(0);
        p.data_mut().copy_from_slice(&UNREACHABLE[8..]);
        p.fill_checksum();
        assert_eq!(buf, original);
    }

    #[test]
    fn truncated_header_is_refused() {
        assert_eq!(
            Icmpv4Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated { layer: Layer::Icmp, needed: 8, len: 7 }
        );
    }

    #[test]
    fn repr_round_trips_the_literal_messages() {
        let b = with_checksum(ECHO);
        assert_eq!(&b[2..4], &[0x06, 0xfa], "the checksum of the literal echo request");
        let repr = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&b[..]).unwrap());
        assert_eq!(
            repr,
            Icmpv4Repr { msg_type: msg_type::ECHO_REQUEST, msg_code: 0, rest_of_header: 0x1234_0001, data: b"ping" }
        );
        let mut buf = [0xeeu8; 12];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, b);

        let b = with_checksum(UNREACHABLE);
        let repr = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&b[..]).unwrap());
        assert_eq!((repr.msg_type, repr.msg_code, repr.rest_of_header), (msg_type::DEST_UNREACHABLE, 3, 0));
        assert_eq!(repr.data, &UNREACHABLE[8..]);
        let mut buf = [0xeeu8; 36];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, b);
    }
}
