//! TCP headers (RFC 9293) and their options.
//!
//! The view is over the whole segment (the IPv4 payload, header through
//! data). A checked view guarantees `20 <= header_len <= len`.
//!
//! [`TcpOptions`] is the crate's one option walker. It yields each option
//! with its offset, so the rewrites in `xmit::tcp_opts` can patch values in
//! place (MSS clamp, SACK edges, timestamps) at whatever alignment the
//! sender chose, resuming the walk after each edit
//! ([`TcpOptions::from_offset`]); the SYN proxy (`synproxy::handshake`)
//! reads the handshake options with it. Both first compare a few bytes
//! against Linux's own layouts and walk only what differs. Known
//! kinds with an impossible length are errors, as are options that run past
//! the header; unknown kinds are yielded with their bytes so nothing a peer
//! sends is lost. Kind 254 with length 8 is the TOA client-address option
//! (port, then IPv4 address, as DPVS and the `toa` kernel module use it),
//! with length 20 its IPv6 form (port, then IPv6 address: DPVS's
//! `tcpopt_ip6_addr`, the module's `toa_ip6_data`); 254 with another length
//! is an RFC 6994 experiment and stays unknown.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::{be16, be32, ip_proto, put16, put32, Error, Layer};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// Offsets of the fields the rewrites patch, for code that works on a
/// header already proven to hold [`MIN_HEADER_LEN`] bytes.
pub mod offset {
    pub const SRC_PORT: usize = super::field::SRC_PORT;
    pub const DST_PORT: usize = super::field::DST_PORT;
    pub const SEQ: usize = super::field::SEQ;
    pub const ACK: usize = super::field::ACK;
    pub const DATA_OFFSET: usize = super::field::DATA_OFFSET;
    pub const FLAGS: usize = super::field::FLAGS;
    pub const CHECKSUM: usize = super::field::CHECKSUM;
}

pub const MIN_HEADER_LEN: usize = 20;
pub const MAX_HEADER_LEN: usize = 60;

/// Flag bits of byte 13.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Option kinds.
pub mod kind {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const TOA: u8 = 254;
}

/// Length of the TOA option.
pub const TOA_LEN: usize = 8;

/// Length of the TOA option carrying an IPv6 address.
pub const TOA_V6_LEN: usize = 20;

/// The SACK blocks of one option: 1 to 4 (left, right) edge pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlocks<'a>(&'a [u8]);

impl<'a> SackBlocks<'a> {
    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        self.0.chunks_exact(8).map(|b| (be32(b, 0), be32(b, 4)))
    }
    /// The option value bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    MaxSegmentSize(u16),
    WindowScale(u8),
    SackPermitted,
    Sack(SackBlocks<'a>),
    Timestamps {
        tsval: u32,
        tsecr: u32,
    },
    /// TOA: the client's address, carried to the real server in FNAT.
    ClientAddress {
        port: u16,
        addr: Ipv4Addr,
    },
    /// TOA with an IPv6 client address.
    ClientAddressV6 {
        port: u16,
        addr: Ipv6Addr,
    },
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Bytes the option occupies.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(b) => 2 + b.0.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::ClientAddress { .. } => TOA_LEN,
            TcpOption::ClientAddressV6 { .. } => TOA_V6_LEN,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length, or
    /// `None` when `buf` is too short (nothing is written then).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len)?;
        match *self {
            TcpOption::EndOfList => out[0] = kind::END,
            TcpOption::NoOperation => out[0] = kind::NOP,
            TcpOption::MaxSegmentSize(mss) => {
                out[..2].copy_from_slice(&[kind::MSS, 4]);
                put16(out, 2, mss);
            }
            TcpOption::WindowScale(shift) => out.copy_from_slice(&[kind::WINDOW_SCALE, 3, shift]),
            TcpOption::SackPermitted => out.copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::Sack(blocks) => {
                out[..2].copy_from_slice(&[kind::SACK, len as u8]);
                out[2..].copy_from_slice(blocks.0);
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                out[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                put32(out, 2, tsval);
                put32(out, 6, tsecr);
            }
            TcpOption::ClientAddress { port, addr } => toa_bytes(port, addr).iter().zip(out).for_each(|(s, d)| *d = *s),
            TcpOption::ClientAddressV6 { port, addr } => out.copy_from_slice(&toa_v6_bytes(port, addr)),
            TcpOption::Unknown { kind, data } => {
                out[..2].copy_from_slice(&[kind, len as u8]);
                out[2..].copy_from_slice(data);
            }
        }
        Some(len)
    }
}

/// The 8 bytes of a TOA option.
#[inline]
pub fn toa_bytes(port: u16, addr: Ipv4Addr) -> [u8; TOA_LEN] {
    let p = port.to_be_bytes();
    let a = addr.octets();
    [kind::TOA, TOA_LEN as u8, p[0], p[1], a[0], a[1], a[2], a[3]]
}

/// The 20 bytes of an IPv6 TOA option: kind, length, port, address.
#[inline]
pub fn toa_v6_bytes(port: u16, addr: Ipv6Addr) -> [u8; TOA_V6_LEN] {
    let mut b = [0; TOA_V6_LEN];
    b[..2].copy_from_slice(&[kind::TOA, TOA_V6_LEN as u8]);
    b[2..4].copy_from_slice(&port.to_be_bytes());
    b[4..].copy_from_slice(&addr.octets());
    b
}

/// Walks an option space, yielding `(offset, option)`; stops after the end
/// of the space, after an End-of-List, or after the first malformed option.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> TcpOptions<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        TcpOptions { data, pos: 0 }
    }

    /// A walk that starts at `offset` of the option space: at an option a
    /// previous walk reached ([`offset`](Self::offset)), or past a prefix
    /// the caller has recognised itself. A caller that edits options in
    /// place walks one option at a time this way, the borrow of the space
    /// ending between two steps.
    pub fn from_offset(data: &'a [u8], offset: usize) -> Self {
        TcpOptions { data, pos: offset }
    }

    /// Where the next option starts; the end of the space once the walk
    /// is over (after End-of-List or a malformed option too).
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<(usize, TcpOption<'a>), Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos;
        let rest = self.data.get(at..).filter(|r| !r.is_empty())?;
        let k = rest[0];
        if k == kind::END {
            self.pos = self.data.len();
            return Some(Ok((at, TcpOption::EndOfList)));
        }
        if k == kind::NOP {
            self.pos += 1;
            return Some(Ok((at, TcpOption::NoOperation)));
        }
        let len = rest.get(1).copied().unwrap_or(0);
        let fail = |this: &mut Self| {
            this.pos = this.data.len();
            Some(Err(Error::BadTcpOption { kind: k, len }))
        };
        let Some(opt) = rest.get(..usize::from(len)).filter(|_| len >= 2) else {
            return fail(self);
        };
        let value = &opt[2..];
        let parsed = match (k, len) {
            (kind::MSS, 4) => TcpOption::MaxSegmentSize(be16(value, 0)),
            (kind::WINDOW_SCALE, 3) => TcpOption::WindowScale(value[0]),
            (kind::SACK_PERMITTED, 2) => TcpOption::SackPermitted,
            (kind::SACK, 10 | 18 | 26 | 34) => TcpOption::Sack(SackBlocks(value)),
            (kind::TIMESTAMPS, 10) => TcpOption::Timestamps { tsval: be32(value, 0), tsecr: be32(value, 4) },
            (kind::TOA, 8) => TcpOption::ClientAddress {
                port: be16(value, 0),
                addr: Ipv4Addr::new(value[2], value[3], value[4], value[5]),
            },
            (kind::TOA, 20) => {
                let mut addr = [0; 16];
                addr.copy_from_slice(&value[2..]);
                TcpOption::ClientAddressV6 { port: be16(value, 0), addr: addr.into() }
            }
            (kind::MSS | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::SACK | kind::TIMESTAMPS, _) => {
                return fail(self)
            }
            _ => TcpOption::Unknown { kind: k, data: value },
        };
        self.pos += usize::from(len);
        Some(Ok((at, parsed)))
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Checks the fixed header and the data offset against the bytes present.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Tcp, needed: MIN_HEADER_LEN, len });
        }
        let p = TcpPacket { buffer };
        let header_len = p.header_len();
        if header_len < MIN_HEADER_LEN || header_len > len {
            return Err(Error::BadTcpDataOffset { data_offset: p.data_offset(), len });
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
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK)
    }
    /// Header length in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[field::DATA_OFFSET] >> 4
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }
    pub fn syn(&self) -> bool {
        self.flags() & flags::SYN != 0
    }
    pub fn ack(&self) -> bool {
        self.flags() & flags::ACK != 0
    }
    pub fn fin(&self) -> bool {
        self.flags() & flags::FIN != 0
    }
    pub fn rst(&self) -> bool {
        self.flags() & flags::RST != 0
    }
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// True when the checksum over the pseudo-header and the whole segment
    /// is right.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else { return false };
        checksum::verify(b, checksum::pseudo_header_v4(src.octets(), dst.octets(), ip_proto::TCP, len))
    }
    /// [`verify_checksum`](Self::verify_checksum) over the IPv6
    /// pseudo-header (the segment's length there is 32 bits).
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u32::try_from(b.len()) else { return false };
        checksum::verify(b, checksum::pseudo_header_v6(src.octets(), dst.octets(), ip_proto::TCP, len))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT, v);
    }
    pub fn set_seq_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::SEQ, v);
    }
    pub fn set_ack_number(&mut self, v: u32) {
        put32(self.buffer.as_mut(), field::ACK, v);
    }
    /// Sets the header length in bytes (a multiple of 4), keeping the
    /// reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::DATA_OFFSET];
        *b = (((len / 4) as u8) << 4) | (*b & 0x0f);
    }
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }
    pub fn set_window_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::WINDOW, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, v);
    }
    pub fn set_urgent_at(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::URGENT, v);
    }
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[MIN_HEADER_LEN..end]
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
    /// Computes and stores the checksum over the pseudo-header and segment.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v4(src.octets(), dst.octets(), ip_proto::TCP, b.len() as u16);
        let c = checksum::finish(checksum::sum(b) + pseudo);
        self.set_checksum(c);
    }
    /// [`fill_checksum`](Self::fill_checksum) over the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let pseudo = checksum::pseudo_header_v6(src.octets(), dst.octets(), ip_proto::TCP, b.len() as u32);
        let c = checksum::finish(checksum::sum(b) + pseudo);
        self.set_checksum(c);
    }
}

/// A TCP segment as values: what [`TcpRepr::emit`] writes and
/// [`TcpRepr::parse`] reads. Options stay bytes (as the sender laid them
/// out, alignment and padding included); [`TcpOption::emit`] writes typed
/// ones into them and [`TcpOptions`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    /// The flag byte ([`flags`]).
    pub flags: u8,
    pub window_len: u16,
    /// The option space, at most 40 bytes; [`emit`](Self::emit) pads it
    /// with End-of-List bytes to a whole number of words.
    pub options: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// The segment's values, borrowing its options and payload.
    pub fn parse(packet: &TcpPacket<&'a [u8]>) -> TcpRepr<'a> {
        let b: &'a [u8] = packet.buffer;
        let header_len = packet.header_len();
        TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            options: &b[MIN_HEADER_LEN..header_len],
            payload: &b[header_len..],
        }
    }

    /// Header length: the fixed 20 bytes and the options, padded to a word.
    pub fn header_len(&self) -> usize {
        MIN_HEADER_LEN + self.options.len().next_multiple_of(4)
    }

    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the whole segment with its checksum over the pseudo-header of
    /// `src` and `dst`; the buffer must hold exactly
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>, src: Ipv4Addr, dst: Ipv4Addr) {
        self.emit_fields(packet);
        packet.fill_checksum(src, dst);
    }

    /// [`emit`](Self::emit) with the checksum over the IPv6 pseudo-header.
    pub fn emit_v6<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>, src: Ipv6Addr, dst: Ipv6Addr) {
        self.emit_fields(packet);
        packet.fill_checksum_v6(src, dst);
    }

    /// Everything but the checksum.
    fn emit_fields<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut TcpPacket<T>) {
        debug_assert!(self.options.len() <= MAX_HEADER_LEN - MIN_HEADER_LEN, "more than 40 bytes of options");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.buffer.as_mut()[field::DATA_OFFSET] = 0;
        packet.set_header_len(self.header_len());
        packet.set_flags(self.flags);
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(0);
        let options = packet.options_mut();
        let (given, padding) = options.split_at_mut(self.options.len());
        given.copy_from_slice(self.options);
        padding.fill(kind::END);
        packet.payload_mut().copy_from_slice(self.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 80);

    /// A SYN with the options Linux sends (MSS, SACK-permitted, timestamps,
    /// NOP, window scale) plus a TOA, and 4 bytes of data that look like an option.
    const SYN: [u8; 56] = [
        0xc3, 0x50, 0x00, 0x50, // 50000 -> 80
        0x01, 0x02, 0x03, 0x04, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xd0, 0x02, 0xfa, 0xf0, // doff 13, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum (filled by the test), urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0x00, 0x00, 0x7b, 0x00, 0x00, 0x00, 0x00, // TS 123, 0
        0x01, // NOP
        0x03, 0x03, 0x07, // WS 7
        0xfe, 0x08, 0x1f, 0x90, 172, 16, 0, 1, // TOA 8080, 172.16.0.1
        0x01, 0x01, 0x01, 0x01, // NOP padding
        0x05, 0x0a, 0x00, 0x00, // (payload from here on) looks like SACK but isn't an option
    ];

    /// A SYN [2001:db8::1]:40000 -> [2001:db8::2]:80, seq 7, MSS 1440; its
    /// checksum 0xa02e was computed outside this crate.
    const V6_SYN: [u8; 24] = [
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0, // ports, seq, ack
        0x60, 0x02, 0xff, 0xff, 0xa0, 0x2e, 0x00, 0x00, // doff 6, SYN, window, checksum, urgent
        0x02, 0x04, 0x05, 0xa0, // MSS 1440
    ];

    #[test]
    fn ipv6_checksum() {
        let (src, dst) =
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
        let p = TcpPacket::new_checked(&V6_SYN[..]).unwrap();
        assert!(p.verify_checksum_v6(src, dst));
        assert!(!p.verify_checksum_v6(src, src));
        let repr = TcpRepr::parse(&p);
        let mut buf = [0xeeu8; 24];
        repr.emit_v6(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst);
        assert_eq!(buf, V6_SYN);
        TcpPacket::new_unchecked(&mut buf[..]).fill_checksum_v6(dst, src);
        assert_eq!(buf, V6_SYN, "the pseudo-header sum does not depend on the direction");
    }

    fn syn_with_checksum() -> [u8; 56] {
        let mut b = SYN;
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(SRC, DST);
        b
    }

    #[test]
    fn parse_every_field() {
        let b = syn_with_checksum();
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 50000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x01020304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.data_offset(), 13);
        assert_eq!(p.header_len(), 52);
        assert_eq!(p.flags(), flags::SYN);
        assert!(p.syn() && !p.ack() && !p.fin() && !p.rst());
        assert_eq!(p.window_len(), 64240);
        assert_eq!(p.urgent_at(), 0);
        assert_eq!(p.payload(), &[0x05, 0x0a, 0x00, 0x00]);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 81)));
        let opts: Vec<_> = p.option_iter().map(|o| o.unwrap()).collect();
        assert_eq!(
            opts,
            vec![
                (0, TcpOption::MaxSegmentSize(1460)),
                (4, TcpOption::SackPermitted),
                (6, TcpOption::Timestamps { tsval: 123, tsecr: 0 }),
                (16, TcpOption::NoOperation),
                (17, TcpOption::WindowScale(7)),
                (20, TcpOption::ClientAddress { port: 8080, addr: Ipv4Addr::new(172, 16, 0, 1) }),
                (28, TcpOption::NoOperation),
                (29, TcpOption::NoOperation),
                (30, TcpOption::NoOperation),
                (31, TcpOption::NoOperation),
            ]
        );
    }

    #[test]
    fn emit_same_bytes() {
        let original = syn_with_checksum();
        let parsed = TcpPacket::new_checked(&original[..]).unwrap();
        let mut buf = [0u8; 56];
        let mut p = TcpPacket::new_unchecked(&mut buf[..]);
        p.set_src_port(50000);
        p.set_dst_port(80);
        p.set_seq_number(0x01020304);
        p.set_ack_number(0);
        p.set_header_len(52);
        p.set_flags(flags::SYN);
        p.set_window_len(64240);
        p.set_urgent_at(0);
        let mut at = 0;
        for opt in parsed.option_iter() {
            at += opt.unwrap().1.emit(&mut p.options_mut()[at..]).unwrap();
        }
        assert_eq!(at, 32);
        p.payload_mut().copy_from_slice(&[0x05, 0x0a, 0, 0]);
        p.fill_checksum(SRC, DST);
        assert_eq!(buf, original);
    }

    #[test]
    fn sack_blocks_and_unknown_options() {
        let opts = [
            1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0x10, // 2 blocks
            30, 4, 0xab, 0xcd, // unknown (MPTCP kind)
            0, 9, 9, 9, // EOL then garbage that must not be read
        ];
        let got: Vec<_> = TcpOptions::new(&opts).map(|o| o.unwrap()).collect();
        assert_eq!(got.len(), 5);
        match got[2] {
            (2, TcpOption::Sack(blocks)) => {
                assert_eq!(blocks.len(), 2);
                assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![(1, 2), (0xffff_fff0, 0x10)]);
            }
            other => panic!("expected SACK at 2, got {other:?}"),
        }
        assert_eq!(got[3], (20, TcpOption::Unknown { kind: 30, data: &[0xab, 0xcd] }));
        assert_eq!(got[4], (24, TcpOption::EndOfList));
        let mut out = [0u8; 18];
        assert_eq!(got[2].1.emit(&mut out), Some(18));
        assert_eq!(&out[..], &opts[2..20]);
        assert_eq!(got[2].1.emit(&mut out[..17]), None);
    }

    #[test]
    fn a_walk_resumes_where_another_stopped() {
        let b = syn_with_checksum();
        let options = &b[20..52];
        let mut walk = TcpOptions::new(options);
        walk.next();
        walk.next();
        assert_eq!(walk.offset(), 6);
        let rest: Vec<_> = TcpOptions::from_offset(options, walk.offset()).map(|o| o.unwrap()).collect();
        assert_eq!(rest, walk.collect::<Vec<_>>().into_iter().map(|o| o.unwrap()).collect::<Vec<_>>());
        assert_eq!(rest[0], (6, TcpOption::Timestamps { tsval: 123, tsecr: 0 }));
        let mut end = TcpOptions::from_offset(&[2, 4, 5, 0xb4, 0, 1, 1], 4);
        assert_eq!(end.next(), Some(Ok((4, TcpOption::EndOfList))));
        assert_eq!((end.offset(), end.next()), (7, None));
        assert_eq!(TcpOptions::from_offset(&[1, 1], 9).next(), None, "an offset past the end walks nothing");
    }

    #[test]
    fn malformed_options_stop_the_walk() {
        for (bytes, kind, len) in [
            (&[2u8, 3, 5][..], 2u8, 3u8),                        // MSS with length 3
            (&[8, 10, 0, 0][..], 8, 10),                         // timestamps running past the end
            (&[30][..], 30, 0),                                  // kind without a length byte
            (&[30, 1][..], 30, 1),                               // length below 2
            (&[5, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..], 5, 12), // SACK not 2+8n
        ] {
            let mut it = TcpOptions::new(bytes);
            assert_eq!(it.next(), Some(Err(Error::BadTcpOption { kind, len })), "{bytes:?}");
            assert_eq!(it.next(), None);
        }
        // A TOA-kind option of another length is someone else's experiment.
        let exp = [254u8, 6, 0xf9, 0x89, 1, 2];
        assert_eq!(
            TcpOptions::new(&exp).next(),
            Some(Ok((0, TcpOption::Unknown { kind: 254, data: &[0xf9, 0x89, 1, 2] })))
        );
        // Length 20 is the IPv6 TOA: port 8080, 2001:db8::1.
        let mut toa6 = [254u8, 20, 0x1f, 0x90, 0x20, 0x01, 0x0d, 0xb8].to_vec();
        toa6.extend_from_slice(&[0; 11]);
        toa6.push(1);
        let addr: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let want = TcpOption::ClientAddressV6 { port: 8080, addr };
        assert_eq!(TcpOptions::new(&toa6).next(), Some(Ok((0, want))));
        assert_eq!(toa_v6_bytes(8080, addr).as_slice(), toa6.as_slice());
        let mut out = [0; 20];
        assert_eq!(want.emit(&mut out), Some(20));
        assert_eq!(out.as_slice(), toa6.as_slice());
    }

    #[test]
    fn bad_data_offsets_are_refused() {
        let b = syn_with_checksum();
        assert_eq!(
            TcpPacket::new_checked(&b[..19]).unwrap_err(),
            Error::Truncated { layer: Layer::Tcp, needed: 20, len: 19 }
        );
        assert_eq!(TcpPacket::new_checked(&b[..51]).unwrap_err(), Error::BadTcpDataOffset { data_offset: 13, len: 51 });
        let mut b = b;
        b[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&b[..]).unwrap_err(), Error::BadTcpDataOffset { data_offset: 4, len: 56 });
    }

    #[test]
    fn repr_round_trips_the_literal_syn() {
        let b = syn_with_checksum();
        assert_eq!(&b[16..18], &[0xb8, 0x24], "the checksum of the literal SYN");
        let packet = TcpPacket::new_checked(&b[..]).unwrap();
        let repr = TcpRepr::parse(&packet);
        assert_eq!(
            repr,
            TcpRepr {
                src_port: 50000,
                dst_port: 80,
                seq_number: 0x01020304,
                ack_number: 0,
                flags: flags::SYN,
                window_len: 64240,
                options: &SYN[20..52],
                payload: &[0x05, 0x0a, 0x00, 0x00],
            }
        );
        let mut buf = [0xeeu8; 56];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST);
        assert_eq!(buf, b);
    }

    #[test]
    fn repr_pads_options_to_a_word() {
        let repr = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq_number: 3,
            ack_number: 4,
            flags: flags::ACK,
            window_len: 5,
            options: &[kind::NOP, kind::WINDOW_SCALE, 3, 7, kind::SACK_PERMITTED, 2],
            payload: b"x",
        };
        assert_eq!((repr.header_len(), repr.buffer_len()), (28, 29));
        let mut buf = [0xeeu8; 29];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST);
        assert_eq!(&buf[12..14], &[0x70, flags::ACK]);
        assert_eq!(&buf[20..29], &[1, 3, 3, 7, 4, 2, 0, 0, b'x']);
        assert!(TcpPacket::new_checked(&buf[..]).unwrap().verify_checksum(SRC, DST));
    }
}
