//! IPv6 headers (RFC 8200) and the walk over their extension headers.
//!
//! A checked view guarantees `40 + payload length <= buffer len`, so
//! [`Ipv6Packet::payload`] is in bounds; bytes past the payload length
//! (Ethernet padding of short frames) are not payload. Jumbograms (RFC 2675:
//! payload length zero and a hop-by-hop jumbo option) do not fit an Ethernet
//! frame and are not recognised: payload length zero is an empty payload.
//!
//! Extension headers are part of the payload. [`upper_layer`] walks them
//! (hop-by-hop options, routing, destination options, fragment) to the
//! upper-layer header, checking each length before reading past it and
//! following at most [`MAX_EXT_HEADERS`] of them, and reports a fragment
//! header so the caller can drop and count the fragment as it does IPv4
//! ones. Options inside the headers are carried, never interpreted: a load
//! balancer forwards them. AH and ESP end the walk (ESP cannot be walked,
//! and a director does not terminate IPsec), as does anything else that is
//! not one of the four: it is reported as the upper-layer protocol.

use std::net::Ipv6Addr;

use super::ethernet::MacAddr;
use super::{be16, be32, put16, put32, Error, Layer};

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;

    /// In every extension header: the next header, then (except in the
    /// fragment header) the length in 8-byte units beyond the first 8.
    pub const EXT_NEXT_HEADER: usize = 0;
    pub const EXT_LEN: usize = 1;
    /// In the fragment header: offset (13 bits, 8-byte units), two reserved
    /// bits and the M flag; then the identification.
    pub const FRAG_OFFSET_M: usize = 2;
    pub const FRAG_IDENT: usize = 4;
}

/// Offsets of the fields the rewrites patch, for code that works on a
/// header already proven to hold [`HEADER_LEN`] bytes.
pub mod offset {
    pub const PAYLOAD_LEN: usize = super::field::PAYLOAD_LEN;
    pub const NEXT_HEADER: usize = super::field::NEXT_HEADER;
    pub const HOP_LIMIT: usize = super::field::HOP_LIMIT;
    pub const SRC: usize = super::field::SRC;
    pub const DST: usize = super::field::DST;
}

/// The fixed header; extension headers follow it, in the payload.
pub const HEADER_LEN: usize = 40;

/// Next-header values of the extension headers [`upper_layer`] walks, and
/// the one that says nothing follows.
pub mod ext {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const NO_NEXT_HEADER: u8 = 59;
    pub const DEST_OPTS: u8 = 60;
}

/// Length of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// The most extension headers [`upper_layer`] follows before giving up.
/// RFC 8200 §4.1 has each header at most once, destination options twice:
/// a conforming packet has at most five the walk enters (hop-by-hop,
/// destination options, routing, fragment, destination options); a longer
/// chain is an attack on whoever walks it, and is refused.
pub const MAX_EXT_HEADERS: usize = 8;

const FRAG_M: u16 = 1;
const FRAG_OFFSET_MASK: u16 = !7;

/// A fragment header, as [`upper_layer`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    pub ident: u32,
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

impl Ipv6Fragment {
    /// An atomic fragment (offset zero, no more fragments) is a whole packet
    /// and is processed as one (RFC 6946 §4).
    pub fn is_atomic(&self) -> bool {
        self.offset == 0 && !self.more
    }
}

/// Where the upper-layer header of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol ([`super::ip_proto`]), or whatever the walk
    /// does not enter (AH, ESP, [`ext::NO_NEXT_HEADER`], an inner IP
    /// header). After a non-atomic fragment header, the fragment's next
    /// header: only the first fragment starts with that header.
    pub protocol: u8,
    /// Bytes of extension headers: the upper layer starts this far into the
    /// payload, [`HEADER_LEN`] + `ext_len` into the packet.
    pub ext_len: usize,
    /// The fragment header the walk crossed, if any. The walk goes on past
    /// an atomic fragment and stops after any other one.
    pub fragment: Option<Ipv6Fragment>,
}

impl UpperLayer {
    /// True for a piece of a fragmented packet: something to drop and count
    /// without reassembly (an atomic fragment is a whole packet).
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some_and(|f| !f.is_atomic())
    }
}

/// Walks the extension headers of a payload whose first header is
/// `next_header`, to the upper layer. Every header's fixed bytes and length
/// are checked against the payload before anything past them is read; a
/// hop-by-hop header anywhere but first, a header running past the payload
/// and more than [`MAX_EXT_HEADERS`] headers are errors.
#[inline]
pub fn upper_layer(next_header: u8, payload: &[u8]) -> Result<UpperLayer, Error> {
    let mut nh = next_header;
    let mut at = 0usize;
    let mut fragment = None;
    let mut walked = 0usize;
    loop {
        let fixed_len = match nh {
            ext::HOP_BY_HOP if at != 0 => return Err(Error::MisplacedHopByHop { offset: at }),
            ext::HOP_BY_HOP | ext::ROUTING | ext::DEST_OPTS => None,
            ext::FRAGMENT => Some(FRAGMENT_HEADER_LEN),
            _ => return Ok(UpperLayer { protocol: nh, ext_len: at, fragment }),
        };
        if walked == MAX_EXT_HEADERS {
            return Err(Error::TooManyExtensionHeaders { limit: MAX_EXT_HEADERS });
        }
        walked += 1;
        let runs_past = Error::BadExtensionHeader { next_header: nh, offset: at, len: payload.len() };
        let rest = payload.get(at..).ok_or(runs_past)?;
        let len = match fixed_len {
            Some(len) => len,
            None => (usize::from(*rest.get(field::EXT_LEN).ok_or(runs_past)?) + 1) * 8,
        };
        let header = rest.get(..len).ok_or(runs_past)?;
        let following = header[field::EXT_NEXT_HEADER];
        at += len;
        if nh == ext::FRAGMENT {
            let offset_m = be16(header, field::FRAG_OFFSET_M);
            let f = Ipv6Fragment {
                ident: be32(header, field::FRAG_IDENT),
                offset: offset_m & FRAG_OFFSET_MASK,
                more: offset_m & FRAG_M != 0,
            };
            fragment = Some(f);
            if !f.is_atomic() {
                return Ok(UpperLayer { protocol: following, ext_len: at, fragment });
            }
        }
        nh = following;
    }
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Checks the fixed header, the version and the payload length against
    /// the bytes present (extension headers are checked by
    /// [`upper_layer`](Self::upper_layer)).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Ipv6, needed: HEADER_LEN, len });
        }
        let p = Ipv6Packet { buffer };
        if p.version() != 6 {
            return Err(Error::BadIpVersion { found: p.version(), expected: 6 });
        }
        let payload_len = p.payload_len();
        if usize::from(payload_len) > len - HEADER_LEN {
            return Err(Error::BadPayloadLength { payload_len, len: len - HEADER_LEN });
        }
        Ok(p)
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }
    /// The traffic class byte (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[field::VER_TC_FLOW] << 4) | (b[field::VER_TC_FLOW + 1] >> 4)
    }
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 3
    }
    /// The 20-bit flow label.
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }
    /// Bytes after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }
    /// The fixed header and the payload.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }
    /// The first header of the payload: an extension header or the upper
    /// layer.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr_at(self.buffer.as_ref(), field::SRC))
    }
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(addr_at(self.buffer.as_ref(), field::DST))
    }
    /// The bytes after the fixed header up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }
    /// Walks the extension headers to the upper layer ([`upper_layer`]).
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        upper_layer(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Writes version 6, keeping the traffic class and flow label.
    pub fn set_version(&mut self) {
        let b = &mut self.buffer.as_mut()[field::VER_TC_FLOW];
        *b = 0x60 | (*b & 0x0f);
    }
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buffer.as_mut();
        b[field::VER_TC_FLOW] = (b[field::VER_TC_FLOW] & 0xf0) | (tc >> 4);
        b[field::VER_TC_FLOW + 1] = (tc << 4) | (b[field::VER_TC_FLOW + 1] & 0x0f);
    }
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.set_traffic_class((dscp << 2) | (ecn & 3));
    }
    /// Writes the low 20 bits of `label`, keeping version and traffic class.
    pub fn set_flow_label(&mut self, label: u32) {
        let b = self.buffer.as_mut();
        let word = be32(b, field::VER_TC_FLOW);
        put32(b, field::VER_TC_FLOW, (word & 0xfff0_0000) | (label & 0x000f_ffff));
    }
    pub fn set_payload_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v;
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(&a.octets());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The 16 bytes of an address at a constant offset of a checked header.
#[inline(always)]
pub(crate) fn addr_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

/// An IPv6 fixed header, as values: what [`Ipv6Repr::emit`] writes and
/// [`Ipv6Repr::parse`] reads. Extension headers, when a packet has them, are
/// part of the payload: `next_header` is the first of them then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    pub next_header: u8,
    /// Bytes after the fixed header.
    pub payload_len: usize,
    pub hop_limit: u8,
    pub dscp: u8,
    pub ecn: u8,
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// A header with the common defaults: hop limit 64, best effort, no flow
    /// label.
    pub fn new(src_addr: Ipv6Addr, dst_addr: Ipv6Addr, next_header: u8, payload_len: usize) -> Ipv6Repr {
        Ipv6Repr { src_addr, dst_addr, next_header, payload_len, hop_limit: 64, dscp: 0, ecn: 0, flow_label: 0 }
    }

    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Ipv6Repr {
        Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            flow_label: packet.flow_label(),
        }
    }

    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the 40-byte header (not the payload); the buffer must hold
    /// [`HEADER_LEN`] bytes and the payload length must fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.buffer.as_mut()[field::VER_TC_FLOW] = 0x60;
        packet.set_dscp_ecn(self.dscp, self.ecn);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

/// All nodes on the link (RFC 4291 §2.7.1): where unsolicited neighbour
/// advertisements go, and the answer to duplicate address detection.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast address of `addr` (RFC 4291 §2.7.1),
/// `ff02::1:ffXX:XXXX` with its last 24 bits: where a neighbour
/// solicitation for `addr` goes.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(o[13]), u16::from_be_bytes([o[14], o[15]]))
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 §7),
/// `33:33` and the group's last 32 bits.
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The link-local address of an interface with Ethernet address `mac`:
/// `fe80::/64` and the modified EUI-64 interface identifier (RFC 4291
/// Appendix A, RFC 2464 §4): `ff:fe` in the middle of the MAC and its
/// universal/local bit inverted.
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    let id = [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]];
    let mut o = [0u8; 16];
    o[..2].copy_from_slice(&[0xfe, 0x80]);
    o[8..].copy_from_slice(&id);
    Ipv6Addr::from(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum, ip_proto};
    use proptest::prelude::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A TCP SYN [2001:db8::1]:40000 -> [2001:db8::2]:80, seq 7, MSS 1440,
    /// DSCP 46, flow label 0x12345, then 2 bytes of Ethernet padding. The
    /// TCP checksum 0xa02e was computed outside this crate.
    #[rustfmt::skip]
    const SYN: [u8; 66] = [
        0x6b, 0x81, 0x23, 0x45, // v6, traffic class 0xb8, flow label 0x12345
        0x00, 0x18, 0x06, 0x40, // payload 24, tcp, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // source
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // destination
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0, // ports, seq, ack
        0x60, 0x02, 0xff, 0xff, 0xa0, 0x2e, 0x00, 0x00, // doff 6, SYN, window, checksum, urgent
        0x02, 0x04, 0x05, 0xa0, // MSS 1440
        0x00, 0x00, // padding
    ];

    /// [`SYN`]'s TCP segment behind hop-by-hop options (8 bytes: PadN) and
    /// destination options (16 bytes: PadN), the payload length covering
    /// all three.
    fn with_options() -> Vec<u8> {
        let mut b = SYN[..40].to_vec();
        b[4..6].copy_from_slice(&(8u16 + 16 + 24).to_be_bytes());
        b[6] = ext::HOP_BY_HOP;
        b.extend_from_slice(&[ext::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[ip_proto::TCP, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&SYN[40..64]);
        b
    }

    #[test]
    fn parse_every_field() {
        let p = Ipv6Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!((p.dscp(), p.ecn()), (46, 0));
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 24);
        assert_eq!(p.total_len(), 64);
        assert_eq!(p.next_header(), ip_proto::TCP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
        assert_eq!(p.payload(), &SYN[40..64]);
        assert_eq!(p.upper_layer(), Ok(UpperLayer { protocol: ip_proto::TCP, ext_len: 0, fragment: None }));
    }

    #[test]
    fn emit_same_bytes() {
        let mut buf = [0u8; 66];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version();
        p.set_dscp_ecn(46, 0);
        p.set_flow_label(0x12345);
        p.set_payload_len(24);
        p.set_next_header(ip_proto::TCP);
        p.set_hop_limit(64);
        p.set_src_addr(SRC);
        p.set_dst_addr(DST);
        p.payload_mut().copy_from_slice(&SYN[40..64]);
        assert_eq!(buf, SYN);
        // Each setter keeps the neighbouring bits.
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_traffic_class(0x03);
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0x03, 0x12345));
        p.set_flow_label(0xfff_ffff);
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0x03, 0xf_ffff));
    }

    #[test]
    fn the_literal_syn_has_its_checksum() {
        let p = Ipv6Packet::new_checked(&SYN[..]).unwrap();
        let seg = p.payload();
        let pseudo = checksum::pseudo_header_v6(SRC.octets(), DST.octets(), ip_proto::TCP, seg.len() as u32);
        assert!(checksum::verify(seg, pseudo));
        let mut zeroed = seg.to_vec();
        zeroed[16..18].fill(0);
        assert_eq!(checksum::finish(checksum::sum(&zeroed) + pseudo), 0xa02e);
        let theirs = etherparse::TcpSlice::from_slice(seg).unwrap();
        assert_eq!(theirs.calc_checksum_ipv6(SRC.octets(), DST.octets()).unwrap(), 0xa02e);
    }

    #[test]
    fn repr_round_trips_the_literal_header() {
        let repr = Ipv6Repr { dscp: 46, flow_label: 0x12345, ..Ipv6Repr::new(SRC, DST, ip_proto::TCP, 24) };
        assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&SYN[..]).unwrap()), repr);
        assert_eq!((repr.header_len(), repr.buffer_len()), (40, 64));
        let mut buf = [0xeeu8; 40];
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, SYN[..40]);
    }

    #[test]
    fn bad_lengths_and_version_are_refused() {
        assert_eq!(
            Ipv6Packet::new_checked(&SYN[..39]).unwrap_err(),
            Error::Truncated { layer: Layer::Ipv6, needed: 40, len: 39 }
        );
        assert_eq!(
            Ipv6Packet::new_checked(&SYN[..63]).unwrap_err(),
            Error::BadPayloadLength { payload_len: 24, len: 23 }
        );
        let mut b = SYN;
        b[0] = 0x4b;
        assert_eq!(Ipv6Packet::new_checked(&b[..]).unwrap_err(), Error::BadIpVersion { found: 4, expected: 6 });
    }

    #[test]
    fn hop_by_hop_and_destination_options_are_walked() {
        let b = with_options();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        let upper = p.upper_layer().unwrap();
        assert_eq!(upper, UpperLayer { protocol: ip_proto::TCP, ext_len: 24, fragment: None });
        assert!(!upper.is_fragment());
        assert_eq!(&p.payload()[upper.ext_len..], &SYN[40..64]);
        // etherparse finds the same upper layer at the same place.
        let theirs = etherparse::Ipv6Slice::from_slice(&b).unwrap();
        assert_eq!(theirs.payload().ip_number, etherparse::IpNumber::TCP);
        assert_eq!(theirs.extensions().slice().len(), upper.ext_len);
        // The extension headers are not in the pseudo-header: the
        // checksum of the segment is the same as without them.
        let seg = &p.payload()[upper.ext_len..];
        assert!(checksum::verify(seg, checksum::pseudo_header_v6(SRC.octets(), DST.octets(), 6, 24)));
    }

    #[test]
    fn routing_header_is_walked() {
        // Routing type 4 (segment routing) with one segment: 24 bytes.
        let mut payload = vec![ip_proto::UDP, 2, 4, 0, 0, 0, 0, 0];
        payload.extend_from_slice(&DST.octets());
        payload.extend_from_slice(&[0; 8]);
        assert_eq!(
            upper_layer(ext::ROUTING, &payload),
            Ok(UpperLayer { protocol: ip_proto::UDP, ext_len: 24, fragment: None })
        );
    }

    /// A fragment header: next header UDP, offset 1480, M set, ident
    /// 0xdeadbeef.
    const FRAGMENT: [u8; 8] = [ip_proto::UDP, 0, 0x05, 0xc9, 0xde, 0xad, 0xbe, 0xef];

    #[test]
    fn fragments_are_reported() {
        let mut payload = FRAGMENT.to_vec();
        payload.extend_from_slice(&[0xab; 16]);
        let upper = upper_layer(ext::FRAGMENT, &payload).unwrap();
        assert_eq!(
            upper,
            UpperLayer {
                protocol: ip_proto::UDP,
                ext_len: 8,
                fragment: Some(Ipv6Fragment { ident: 0xdead_beef, offset: 1480, more: true }),
            }
        );
        assert!(upper.is_fragment());
        // The first fragment: offset 0, M set.
        payload[2..4].copy_from_slice(&[0, 1]);
        let first = upper_layer(ext::FRAGMENT, &payload).unwrap();
        assert!(first.is_fragment());
        assert_eq!(first.fragment.map(|f| (f.offset, f.more)), Some((0, true)));
        // The last one: M clear, offset set.
        payload[2..4].copy_from_slice(&[0x05, 0xc8]);
        assert!(upper_layer(ext::FRAGMENT, &payload).unwrap().is_fragment());
        // An atomic fragment is a whole packet: the walk goes on past it.
        let mut atomic = vec![ext::DEST_OPTS, 0, 0, 0, 0, 0, 0, 1];
        atomic.extend_from_slice(&[ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0]);
        let upper = upper_layer(ext::FRAGMENT, &atomic).unwrap();
        assert_eq!(upper.protocol, ip_proto::TCP);
        assert_eq!(upper.ext_len, 16);
        assert!(!upper.is_fragment() && upper.fragment.is_some_and(|f| f.is_atomic()));
        // etherparse agrees that the first one is fragmented.
        let mut b = SYN[..40].to_vec();
        b[4..6].copy_from_slice(&24u16.to_be_bytes());
        b[6] = ext::FRAGMENT;
        b.extend_from_slice(&payload);
        assert!(etherparse::Ipv6Slice::from_slice(&b).unwrap().payload().fragmented);
    }

    #[test]
    fn chains_that_run_past_the_payload_are_refused() {
        // Hop-by-hop claiming 16 bytes in a payload of 8.
        assert_eq!(
            upper_layer(ext::HOP_BY_HOP, &[ip_proto::TCP, 1, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadExtensionHeader { next_header: ext::HOP_BY_HOP, offset: 0, len: 8 })
        );
        // A destination options header that ends the payload, announcing
        // a routing header that is not there.
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &[ext::ROUTING, 0, 1, 4, 0, 0, 0, 0]),
            Err(Error::BadExtensionHeader { next_header: ext::ROUTING, offset: 8, len: 8 })
        );
        // Only its next-header byte is there.
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &[ext::ROUTING, 0, 1, 4, 0, 0, 0, 0, 6]),
            Err(Error::BadExtensionHeader { next_header: ext::ROUTING, offset: 8, len: 9 })
        );
        // A fragment header cut short.
        assert_eq!(
            upper_layer(ext::FRAGMENT, &FRAGMENT[..7]),
            Err(Error::BadExtensionHeader { next_header: ext::FRAGMENT, offset: 0, len: 7 })
        );
        // An empty payload announcing an extension header.
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &[]),
            Err(Error::BadExtensionHeader { next_header: ext::DEST_OPTS, offset: 0, len: 0 })
        );
        // But one announcing no next header is an empty upper layer.
        assert_eq!(upper_layer(ext::NO_NEXT_HEADER, &[]).unwrap().protocol, ext::NO_NEXT_HEADER);
    }

    #[test]
    fn hop_by_hop_only_first() {
        let chain = [ext::HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0, ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(upper_layer(ext::DEST_OPTS, &chain), Err(Error::MisplacedHopByHop { offset: 8 }));
        assert_eq!(upper_layer(ext::HOP_BY_HOP, &chain), Err(Error::MisplacedHopByHop { offset: 8 }));
    }

    /// `n` destination options headers, each naming the next, then TCP.
    fn dest_opts_chain(n: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for i in 0..n {
            let next = if i + 1 == n { ip_proto::TCP } else { ext::DEST_OPTS };
            b.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        b
    }

    #[test]
    fn overlong_chains_end_with_an_error() {
        let upper = upper_layer(ext::DEST_OPTS, &dest_opts_chain(MAX_EXT_HEADERS)).unwrap();
        assert_eq!((upper.protocol, upper.ext_len), (ip_proto::TCP, 8 * MAX_EXT_HEADERS));
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &dest_opts_chain(MAX_EXT_HEADERS + 1)),
            Err(Error::TooManyExtensionHeaders { limit: MAX_EXT_HEADERS })
        );
        // A "loop": a chain of headers each naming the next, to the end of
        // the largest payload, stops at the limit, not at the end.
        let endless: Vec<u8> = [ext::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0].repeat(65535 / 8);
        assert_eq!(
            upper_layer(ext::DEST_OPTS, &endless),
            Err(Error::TooManyExtensionHeaders { limit: MAX_EXT_HEADERS })
        );
    }

    #[test]
    fn truncated_at_every_offset_is_a_clean_error() {
        let b = with_options();
        for cut in 0..b.len() {
            let Ok(p) = Ipv6Packet::new_checked(&b[..cut]) else { continue };
            panic!("accepted a {cut}-byte cut of a {}-byte packet: {:?}", b.len(), p.upper_layer());
        }
        // With the payload length following the cut, the walk fails cleanly
        // wherever the cut falls inside the extension headers.
        for cut in 40..64 {
            let mut short = b[..cut].to_vec();
            short[4..6].copy_from_slice(&((cut - 40) as u16).to_be_bytes());
            let p = Ipv6Packet::new_checked(&short[..]).unwrap();
            assert!(
                matches!(p.upper_layer(), Err(Error::BadExtensionHeader { .. })),
                "cut at {cut}: {:?}",
                p.upper_layer()
            );
        }
    }

    proptest! {
        /// Never panics, and whatever the walk accepts lies inside the payload.
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..160), nh in any::<u8>()) {
            if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
                let _ = (Ipv6Repr::parse(&p), p.traffic_class(), p.flow_label());
            }
            // Bias the first header toward the ones the walk enters.
            let first = [ext::HOP_BY_HOP, ext::ROUTING, ext::FRAGMENT, ext::DEST_OPTS][usize::from(nh & 3)];
            for next_header in [nh, first] {
                if let Ok(upper) = upper_layer(next_header, &b) {
                    prop_assert!(upper.ext_len <= b.len());
                }
            }
        }
    }

    #[test]
    fn multicast_and_link_local_addresses() {
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(solicited_node(ip("2001:db8::abcd:1234:5678")), ip("ff02::1:ff34:5678"));
        assert_eq!(solicited_node(ip("fe80::5054:ff:fe12:3456")), ip("ff02::1:ff12:3456"));
        assert_eq!(multicast_mac(ip("ff02::1:ff34:5678")), MacAddr([0x33, 0x33, 0xff, 0x34, 0x56, 0x78]));
        assert_eq!(multicast_mac(ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
        // What Linux gives an interface with this MAC (addr_gen_mode eui64).
        assert_eq!(link_local(MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])), ip("fe80::5054:ff:fe12:3456"));
        // A locally administered MAC loses the bit the identifier inverts.
        assert_eq!(link_local(MacAddr([0x02, 0x47, 0x57, 0, 0, 1])), ip("fe80::47:57ff:fe00:1"));
    }
}
