//! ICMPv6 messages (RFC 4443) and neighbour discovery (RFC 4861).
//!
//! The view is over the upper-layer bytes (after any extension headers).
//! Only the 8-byte header is checked; [`Icmpv6Packet::data`] is what follows
//! it (echo data, or the packet an error quotes). Unlike ICMPv4, the
//! checksum covers the IPv6 pseudo-header, so checking and filling it take
//! the addresses.
//!
//! An error quotes as much of the offending packet as fits 1280 bytes, so
//! the quoted packet is often cut short of its own payload length and the
//! IPv6 view (which checks that length) would refuse it:
//! [`Icmpv6Packet::quoted`] reads its header and walks its extension headers
//! over the bytes that are there.
//!
//! [`NdiscRepr`] is neighbour solicitation and advertisement, and router
//! advertisement's fixed fields with its source link-layer address and MTU
//! options (prefix information and the rest are walked over, not read: the
//! gateway's routes are configured, not learnt). Router solicitation and
//! redirect are not parsed. [`NdOptions`] walks the options, each length
//! checked before it is read.

use std::net::Ipv6Addr;

use super::ethernet::MacAddr;
use super::ipv6::{self, addr_at, Ipv6Repr, UpperLayer};
use super::{be16, be32, checksum, ip_proto, put16, put32, Error, Layer};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    /// The second word: unused, an MTU, a pointer, or the echo identifier
    /// and sequence number.
    pub const REST: usize = 4;

    /// Neighbour solicitation and advertisement: flags (advertisement
    /// only), reserved, the target address, then options.
    pub const NA_FLAGS: usize = 4;
    pub const TARGET: usize = 8;
    pub const NS_NA_OPTIONS: usize = 24;

    /// Router advertisement: current hop limit, flags, router lifetime,
    /// reachable time, retransmission timer, then options.
    pub const RA_HOP_LIMIT: usize = 4;
    pub const RA_FLAGS: usize = 5;
    pub const RA_LIFETIME: usize = 6;
    pub const RA_REACHABLE: usize = 8;
    pub const RA_RETRANS: usize = 12;
    pub const RA_OPTIONS: usize = 16;
}

/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
pub const HEADER_LEN: usize = 8;
/// The fixed part of a neighbour solicitation or advertisement.
pub const NS_NA_LEN: usize = field::NS_NA_OPTIONS;
/// The fixed part of a router advertisement.
pub const RA_LEN: usize = field::RA_OPTIONS;

/// Message types.
pub mod msg_type {
    pub const DEST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// Codes used here.
pub mod code {
    /// Destination unreachable: port unreachable.
    pub const PORT_UNREACHABLE: u8 = 4;
    /// Time exceeded: hop limit exceeded in transit.
    pub const HOP_LIMIT_EXCEEDED: u8 = 0;
}

/// Neighbour advertisement flags (the first byte after the checksum).
pub mod na_flags {
    pub const ROUTER: u8 = 0x80;
    pub const SOLICITED: u8 = 0x40;
    pub const OVERRIDE: u8 = 0x20;
}

/// Neighbour discovery option types.
pub mod nd_option {
    pub const SOURCE_LL_ADDR: u8 = 1;
    pub const TARGET_LL_ADDR: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const MTU: u8 = 5;
}

/// True for an error message (RFC 4443 §2.1: types below 128).
pub fn is_error(t: u8) -> bool {
    t < 128
}

/// True for the error types a load balancer relays to the connection they
/// belong to, the same four as for ICMPv4 (packet too big standing for
/// "fragmentation needed").
pub fn is_relayed_error(t: u8) -> bool {
    matches!(
        t,
        msg_type::DEST_UNREACHABLE | msg_type::PACKET_TOO_BIG | msg_type::TIME_EXCEEDED | msg_type::PARAM_PROBLEM
    )
}

/// The pseudo-header sum of an ICMPv6 message of `len` bytes.
fn pseudo(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u64 {
    checksum::pseudo_header_v6(src.octets(), dst.octets(), ip_proto::ICMPV6, len as u32)
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated { layer: Layer::Icmpv6, needed: HEADER_LEN, len });
        }
        Ok(Icmpv6Packet { buffer })
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
    /// The second header word, whole.
    pub fn rest_of_header(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST)
    }
    /// The MTU of a packet too big.
    pub fn mtu(&self) -> u32 {
        self.rest_of_header()
    }
    /// The offset of the offending byte, in a parameter problem.
    pub fn pointer(&self) -> u32 {
        self.rest_of_header()
    }
    /// True for an error message (of any type, relayed or not).
    pub fn is_error(&self) -> bool {
        is_error(self.msg_type())
    }
    /// Echo data, the packet an error quotes, or the body of a neighbour
    /// discovery message past its first word.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// The packet an error quotes, read as far as it is quoted.
    pub fn quoted(&self) -> Result<Quoted<'_>, Error> {
        Quoted::parse(self.data())
    }
    /// True when the checksum over the pseudo-header of `src` and `dst` and
    /// the whole message is right.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::verify(b, pseudo(src, dst, b.len()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
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
    /// Computes and stores the checksum over the pseudo-header of `src` and
    /// `dst` and the whole message.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let c = checksum::finish(checksum::sum(b) + pseudo(src, dst, b.len()));
        self.set_checksum(c);
    }
}

/// The packet an ICMPv6 error quotes: its header, and where its upper layer
/// starts in the bytes quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// The quoted header; its payload length is the one the packet was
    /// sent with, which the quote may be short of.
    pub ip: Ipv6Repr,
    /// Its extension headers walked within the bytes quoted.
    pub upper: UpperLayer,
    /// The upper-layer bytes quoted (from the upper-layer header to the end
    /// of the quote or of the quoted payload length, whichever is first).
    pub l4: &'a [u8],
}

impl<'a> Quoted<'a> {
    /// Reads a quoted IPv6 packet: a whole fixed header of version 6, and
    /// extension headers that end within the bytes present.
    pub fn parse(data: &'a [u8]) -> Result<Quoted<'a>, Error> {
        let Some(header) = data.first_chunk::<{ ipv6::HEADER_LEN }>() else {
            return Err(Error::Truncated { layer: Layer::Ipv6, needed: ipv6::HEADER_LEN, len: data.len() });
        };
        let view = ipv6::Ipv6Packet::new_unchecked(&header[..]);
        if view.version() != 6 {
            return Err(Error::BadIpVersion { found: view.version(), expected: 6 });
        }
        let ip = Ipv6Repr::parse(&view);
        let end = data.len().min(ipv6::HEADER_LEN + ip.payload_len);
        let payload = &data[ipv6::HEADER_LEN..end];
        let upper = ipv6::upper_layer(ip.next_header, payload)?;
        Ok(Quoted { ip, upper, l4: &payload[upper.ext_len..] })
    }
}

/// An ICMPv6 message as values: what [`Icmpv6Repr::emit`] writes and
/// [`Icmpv6Repr::parse`] reads. The second header word is kept whole (echo
/// identifier and sequence, an MTU, a pointer, or unused); neighbour
/// discovery has its own [`NdiscRepr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6Repr<'a> {
    pub msg_type: u8,
    pub msg_code: u8,
    pub rest_of_header: u32,
    /// Echo data, or the quoted packet of an error.
    pub data: &'a [u8],
}

impl<'a> Icmpv6Repr<'a> {
    /// The message's values, borrowing its data.
    pub fn parse(packet: &Icmpv6Packet<&'a [u8]>) -> Icmpv6Repr<'a> {
        let b: &'a [u8] = packet.buffer;
        Icmpv6Repr {
            msg_type: packet.msg_type(),
            msg_code: packet.msg_code(),
            rest_of_header: packet.rest_of_header(),
            data: &b[HEADER_LEN..],
        }
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data.len()
    }

    /// Writes the message with its checksum over the pseudo-header of `src`
    /// and `dst`; the buffer must hold exactly
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>, src: Ipv6Addr, dst: Ipv6Addr) {
        packet.set_msg_type(self.msg_type);
        packet.set_msg_code(self.msg_code);
        packet.set_rest_of_header(self.rest_of_header);
        packet.data_mut().copy_from_slice(self.data);
        packet.fill_checksum(src, dst);
    }
}

/// One neighbour discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdOption<'a> {
    SourceLinkLayerAddr(MacAddr),
    TargetLinkLayerAddr(MacAddr),
    Mtu(u32),
    /// Any other option (prefix information among them), its bytes after
    /// the type and length.
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

/// Length of a link-layer address option for Ethernet, and of the MTU
/// option: one unit of 8 bytes.
const LL_ADDR_OPTION_LEN: usize = 8;

impl NdOption<'_> {
    pub fn buffer_len(&self) -> usize {
        match self {
            NdOption::SourceLinkLayerAddr(_) | NdOption::TargetLinkLayerAddr(_) | NdOption::Mtu(_) => {
                LL_ADDR_OPTION_LEN
            }
            NdOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length, or
    /// `None` when `buf` is too short or an unknown option's bytes do not
    /// make whole units of 8 (nothing is written then).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.buffer_len();
        if !len.is_multiple_of(8) || len > 255 * 8 {
            return None;
        }
        let out = buf.get_mut(..len)?;
        let kind = match *self {
            NdOption::SourceLinkLayerAddr(mac) => {
                out[2..].copy_from_slice(&mac.0);
                nd_option::SOURCE_LL_ADDR
            }
            NdOption::TargetLinkLayerAddr(mac) => {
                out[2..].copy_from_slice(&mac.0);
                nd_option::TARGET_LL_ADDR
            }
            NdOption::Mtu(mtu) => {
                out[2..4].fill(0);
                put32(out, 4, mtu);
                nd_option::MTU
            }
            NdOption::Unknown { kind, data } => {
                out[2..].copy_from_slice(data);
                kind
            }
        };
        out[0] = kind;
        out[1] = (len / 8) as u8;
        Some(len)
    }
}

/// Walks the options of a neighbour discovery message, yielding each with
/// its offset; stops after the end of the options or after the first
/// malformed one (length zero, running past the message, or a length wrong
/// for its type).
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> NdOptions<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        NdOptions { data, pos: 0 }
    }
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = Result<(usize, NdOption<'a>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.pos;
        let rest = self.data.get(at..).filter(|r| !r.is_empty())?;
        let kind = rest[0];
        let units = rest.get(1).copied().unwrap_or(0);
        let len = usize::from(units) * 8;
        let Some(opt) = rest.get(..len).filter(|_| len > 0) else {
            self.pos = self.data.len();
            return Some(Err(Error::BadNdOption { kind, len: units }));
        };
        let value = &opt[2..];
        let parsed = match (kind, len) {
            (nd_option::SOURCE_LL_ADDR | nd_option::TARGET_LL_ADDR, LL_ADDR_OPTION_LEN) => {
                let mac = MacAddr([value[0], value[1], value[2], value[3], value[4], value[5]]);
                if kind == nd_option::SOURCE_LL_ADDR {
                    NdOption::SourceLinkLayerAddr(mac)
                } else {
                    NdOption::TargetLinkLayerAddr(mac)
                }
            }
            (nd_option::MTU, LL_ADDR_OPTION_LEN) => NdOption::Mtu(be32(value, 2)),
            // An Ethernet address in a longer option, or an MTU option of
            // another size: not something to guess at (Linux drops these too).
            (nd_option::SOURCE_LL_ADDR | nd_option::TARGET_LL_ADDR | nd_option::MTU, _) => {
                self.pos = self.data.len();
                return Some(Err(Error::BadNdOption { kind, len: units }));
            }
            _ => NdOption::Unknown { kind, data: value },
        };
        self.pos += len;
        Some(Ok((at, parsed)))
    }
}

/// A neighbour discovery message as values: what [`NdiscRepr::emit`] writes
/// and [`NdiscRepr::parse`] reads. Of the options, the link-layer address
/// and MTU ones are kept; the others are walked over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscRepr {
    NeighborSolicit {
        target_addr: Ipv6Addr,
        /// The source link-layer address option (absent in duplicate
        /// address detection, from the unspecified address).
        lladdr: Option<MacAddr>,
    },
    NeighborAdvert {
        /// [`na_flags`].
        flags: u8,
        target_addr: Ipv6Addr,
        /// The target link-layer address option.
        lladdr: Option<MacAddr>,
    },
    RouterAdvert {
        hop_limit: u8,
        /// Managed and other-configuration flags, as on the wire.
        flags: u8,
        /// Seconds; zero for a router that is not a default router.
        router_lifetime: u16,
        /// Milliseconds; zero for unspecified.
        reachable_time: u32,
        /// Milliseconds; zero for unspecified.
        retrans_timer: u32,
        /// The source link-layer address option.
        lladdr: Option<MacAddr>,
        mtu: Option<u32>,
    },
}

impl NdiscRepr {
    /// Reads a neighbour solicitation, advertisement or router
    /// advertisement. The code must be zero and the fixed part and every
    /// option whole (RFC 4861 §7.1.1, §6.1.2); the IPv6 hop limit of 255 and
    /// the checksum are the caller's to check, with the IP header at hand.
    pub fn parse<T: AsRef<[u8]>>(packet: &Icmpv6Packet<T>) -> Result<NdiscRepr, Error> {
        let b = packet.buffer.as_ref();
        let (msg_type, msg_code) = (packet.msg_type(), packet.msg_code());
        let fixed = match msg_type {
            msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT => NS_NA_LEN,
            msg_type::ROUTER_ADVERT => RA_LEN,
            _ => return Err(Error::NotNdisc { msg_type, msg_code }),
        };
        if msg_code != 0 {
            return Err(Error::NotNdisc { msg_type, msg_code });
        }
        if b.len() < fixed {
            return Err(Error::Truncated { layer: Layer::Icmpv6, needed: fixed, len: b.len() });
        }
        let (mut source, mut target, mut mtu) = (None, None, None);
        for option in NdOptions::new(&b[fixed..]) {
            match option?.1 {
                NdOption::SourceLinkLayerAddr(mac) => source = Some(mac),
                NdOption::TargetLinkLayerAddr(mac) => target = Some(mac),
                NdOption::Mtu(m) => mtu = Some(m),
                NdOption::Unknown { .. } => {}
            }
        }
        Ok(match msg_type {
            msg_type::NEIGHBOR_SOLICIT => {
                NdiscRepr::NeighborSolicit { target_addr: Ipv6Addr::from(addr_at(b, field::TARGET)), lladdr: source }
            }
            msg_type::NEIGHBOR_ADVERT => NdiscRepr::NeighborAdvert {
                flags: b[field::NA_FLAGS],
                target_addr: Ipv6Addr::from(addr_at(b, field::TARGET)),
                lladdr: target,
            },
            _ => NdiscRepr::RouterAdvert {
                hop_limit: b[field::RA_HOP_LIMIT],
                flags: b[field::RA_FLAGS],
                router_lifetime: be16(b, field::RA_LIFETIME),
                reachable_time: be32(b, field::RA_REACHABLE),
                retrans_timer: be32(b, field::RA_RETRANS),
                lladdr: source,
                mtu,
            },
        })
    }

    fn options(&self) -> [Option<NdOption<'static>>; 2] {
        match *self {
            NdiscRepr::NeighborSolicit { lladdr, .. } => [lladdr.map(NdOption::SourceLinkLayerAddr), None],
            NdiscRepr::NeighborAdvert { lladdr, .. } => [lladdr.map(NdOption::TargetLinkLayerAddr), None],
            NdiscRepr::RouterAdvert { lladdr, mtu, .. } => {
                [lladdr.map(NdOption::SourceLinkLayerAddr), mtu.map(NdOption::Mtu)]
            }
        }
    }

    pub fn buffer_len(&self) -> usize {
        let fixed = match self {
            NdiscRepr::NeighborSolicit { .. } | NdiscRepr::NeighborAdvert { .. } => NS_NA_LEN,
            NdiscRepr::RouterAdvert { .. } => RA_LEN,
        };
        fixed + self.options().iter().flatten().map(|o| o.buffer_len()).sum::<usize>()
    }

    /// Writes the message with its options and its checksum over the
    /// pseudo-header of `src` and `dst`; the buffer must hold exactly
    /// [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>, src: Ipv6Addr, dst: Ipv6Addr) {
        packet.set_msg_code(0);
        packet.set_rest_of_header(0);
        let b = packet.buffer.as_mut();
        let mut at = match *self {
            NdiscRepr::NeighborSolicit { target_addr, .. } => {
                b[field::TYPE] = msg_type::NEIGHBOR_SOLICIT;
                b[field::TARGET..NS_NA_LEN].copy_from_slice(&target_addr.octets());
                NS_NA_LEN
            }
            NdiscRepr::NeighborAdvert { flags, target_addr, .. } => {
                b[field::TYPE] = msg_type::NEIGHBOR_ADVERT;
                b[field::NA_FLAGS] = flags;
                b[field::TARGET..NS_NA_LEN].copy_from_slice(&target_addr.octets());
                NS_NA_LEN
            }
            NdiscRepr::RouterAdvert { hop_limit, flags, router_lifetime, reachable_time, retrans_timer, .. } => {
                b[field::TYPE] = msg_type::ROUTER_ADVERT;
                b[field::RA_HOP_LIMIT] = hop_limit;
                b[field::RA_FLAGS] = flags;
                put16(b, field::RA_LIFETIME, router_lifetime);
                put32(b, field::RA_REACHABLE, reachable_time);
                put32(b, field::RA_RETRANS, retrans_timer);
                RA_LEN
            }
        };
        for option in self.options().iter().flatten() {
            at += option.emit(&mut b[at..]).expect("buffer_len bytes hold the options");
        }
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    /// The solicited-node multicast address of [`PEER`].
    const SOLICITED: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    // The checksums of these literals were computed outside this crate.

    /// Echo request [`HOST`] -> [`PEER`]: ident 0x1234, seq 1, "ping".
    const ECHO: [u8; 12] = [128, 0, 0x33, 0x3e, 0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g'];

    /// Neighbour solicitation [`LINK_LOCAL`] -> [`SOLICITED`] for [`PEER`],
    /// with the source link-layer address option [`MAC1`].
    #[rustfmt::skip]
    const NS: [u8; 32] = [
        135, 0, 0x4b, 0x5f, 0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        1, 1, 2, 0, 0, 0, 0, 1, // source link-layer address
    ];

    /// Solicited, override neighbour advertisement [`PEER`] -> [`LINK_LOCAL`]
    /// for [`PEER`], with the target link-layer address option [`MAC2`].
    #[rustfmt::skip]
    const NA: [u8; 32] = [
        136, 0, 0xb9, 0xa9, 0x60, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        2, 1, 2, 0, 0, 0, 0, 2, // target link-layer address
    ];

    /// Router advertisement [`LINK_LOCAL`] -> [`ALL_NODES`]: hop limit 64,
    /// lifetime 1800 s, source link-layer address [`MAC1`], MTU 1500.
    #[rustfmt::skip]
    const RA: [u8; 32] = [
        134, 0, 0x27, 0x38, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
        1, 1, 2, 0, 0, 0, 0, 1, // source link-layer address
        5, 1, 0, 0, 0, 0, 0x05, 0xdc, // MTU
    ];

    /// A TCP SYN [`HOST`]:40000 -> [`PEER`]:80 with MSS 1440 (the one in
    /// `wire::ipv6`'s tests).
    #[rustfmt::skip]
    const SYN: [u8; 64] = [
        0x6b, 0x81, 0x23, 0x45, 0x00, 0x18, 0x06, 0x40,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0,
        0x60, 0x02, 0xff, 0xff, 0xa0, 0x2e, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0,
    ];

    fn theirs_valid(b: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        etherparse::Icmpv6Slice::from_slice(b).unwrap().is_checksum_valid(src.octets(), dst.octets())
    }

    #[test]
    fn parse_echo() {
        let p = Icmpv6Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq(), p.rest_of_header()), (0x1234, 1, 0x1234_0001));
        assert_eq!(p.checksum(), 0x333e);
        assert!(!p.is_error());
        assert_eq!(p.data(), b"ping");
        assert!(p.verify_checksum(HOST, PEER));
        assert!(!p.verify_checksum(HOST, LINK_LOCAL));
        assert!(theirs_valid(&ECHO, HOST, PEER));
    }

    #[test]
    fn emit_same_bytes() {
        let mut buf = [0u8; 12];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(msg_type::ECHO_REQUEST);
        p.set_msg_code(0);
        p.set_echo_ident(0x1234);
        p.set_echo_seq(1);
        p.data_mut().copy_from_slice(b"ping");
        p.fill_checksum(HOST, PEER);
        assert_eq!(buf, ECHO);
    }

    #[test]
    fn repr_round_trips_the_literal_echo() {
        let repr = Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&ECHO[..]).unwrap());
        assert_eq!(
            repr,
            Icmpv6Repr { msg_type: msg_type::ECHO_REQUEST, msg_code: 0, rest_of_header: 0x1234_0001, data: b"ping" }
        );
        assert_eq!(repr.buffer_len(), 12);
        let mut buf = [0xeeu8; 12];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), HOST, PEER);
        assert_eq!(buf, ECHO);
    }

    /// A packet too big (MTU 1280) from `from` quoting `quoted`.
    fn too_big(from: Ipv6Addr, quoted: &[u8]) -> Vec<u8> {
        let repr = Icmpv6Repr { msg_type: msg_type::PACKET_TOO_BIG, msg_code: 0, rest_of_header: 1280, data: quoted };
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut b[..]), from, HOST);
        b
    }

    #[test]
    fn packet_too_big_quotes_the_packet() {
        let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
        let b = too_big(router, &SYN);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.msg_type(), p.mtu()), (msg_type::PACKET_TOO_BIG, 1280));
        assert!(p.is_error() && is_relayed_error(p.msg_type()));
        assert!(p.verify_checksum(router, HOST));
        assert!(theirs_valid(&b, router, HOST));
        let q = p.quoted().unwrap();
        assert_eq!((q.ip.src_addr, q.ip.dst_addr, q.ip.payload_len), (HOST, PEER, 24));
        assert_eq!((q.upper.protocol, q.upper.ext_len), (ip_proto::TCP, 0));
        assert_eq!(q.l4, &SYN[40..]);
        // The whole quoted packet is a valid IPv6 packet.
        assert_eq!(ipv6::Ipv6Packet::new_checked(p.data()).unwrap().src_addr(), HOST);

        // Cut to the ports and sequence number: the header still reads, the
        // upper layer is what is there, though the IPv6 view refuses it.
        let b = too_big(router, &SYN[..48]);
        let p = Icmpv6Packet::new_checked(&b[..]).unwrap();
        assert!(ipv6::Ipv6Packet::new_checked(p.data()).is_err());
        let q = p.quoted().unwrap();
        assert_eq!(q.ip.payload_len, 24);
        assert_eq!(q.l4, &SYN[40..48]);
    }

    #[test]
    fn quotes_that_are_not_ipv6_are_refused() {
        assert_eq!(
            Quoted::parse(&SYN[..39]).unwrap_err(),
            Error::Truncated { layer: Layer::Ipv6, needed: 40, len: 39 }
        );
        let mut v4 = SYN;
        v4[0] = 0x45;
        assert_eq!(Quoted::parse(&v4).unwrap_err(), Error::BadIpVersion { found: 4, expected: 6 });
        // A quoted hop-by-hop header cut inside.
        let mut hbh = SYN;
        hbh[6] = ipv6::ext::HOP_BY_HOP;
        hbh[41] = 7;
        assert!(matches!(Quoted::parse(&hbh).unwrap_err(), Error::BadExtensionHeader { .. }));
    }

    #[test]
    fn neighbour_solicitation_with_source_option() {
        let p = Icmpv6Packet::new_checked(&NS[..]).unwrap();
        assert!(p.verify_checksum(LINK_LOCAL, SOLICITED));
        assert!(theirs_valid(&NS, LINK_LOCAL, SOLICITED));
        let repr = NdiscRepr::parse(&p).unwrap();
        assert_eq!(repr, NdiscRepr::NeighborSolicit { target_addr: PEER, lladdr: Some(MAC1) });
        assert_eq!(repr.buffer_len(), 32);
        let mut buf = [0xeeu8; 32];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), LINK_LOCAL, SOLICITED);
        assert_eq!(buf, NS);
        // Duplicate address detection: no option.
        let dad = NdiscRepr::NeighborSolicit { target_addr: PEER, lladdr: None };
        let mut buf = [0u8; 24];
        dad.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), Ipv6Addr::UNSPECIFIED, SOLICITED);
        assert_eq!(NdiscRepr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap()), Ok(dad));
    }

    #[test]
    fn neighbour_advertisement_with_target_option() {
        let p = Icmpv6Packet::new_checked(&NA[..]).unwrap();
        assert!(p.verify_checksum(PEER, LINK_LOCAL));
        assert!(theirs_valid(&NA, PEER, LINK_LOCAL));
        let repr = NdiscRepr::parse(&p).unwrap();
        let flags = na_flags::SOLICITED | na_flags::OVERRIDE;
        assert_eq!(repr, NdiscRepr::NeighborAdvert { flags, target_addr: PEER, lladdr: Some(MAC2) });
        let mut buf = [0xeeu8; 32];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), PEER, LINK_LOCAL);
        assert_eq!(buf, NA);
    }

    #[test]
    fn router_advertisement() {
        let p = Icmpv6Packet::new_checked(&RA[..]).unwrap();
        assert!(p.verify_checksum(LINK_LOCAL, ALL_NODES));
        assert!(theirs_valid(&RA, LINK_LOCAL, ALL_NODES));
        let repr = NdiscRepr::parse(&p).unwrap();
        assert_eq!(
            repr,
            NdiscRepr::RouterAdvert {
                hop_limit: 64,
                flags: 0,
                router_lifetime: 1800,
                reachable_time: 0,
                retrans_timer: 0,
                lladdr: Some(MAC1),
                mtu: Some(1500),
            }
        );
        let mut buf = [0xeeu8; 32];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), LINK_LOCAL, ALL_NODES);
        assert_eq!(buf, RA);
        // A prefix information option is walked over.
        let mut with_prefix = RA.to_vec();
        with_prefix.extend_from_slice(&[nd_option::PREFIX_INFO, 4, 64, 0xc0]);
        with_prefix.extend_from_slice(&[0; 28]);
        let p = Icmpv6Packet::new_checked(&with_prefix[..]).unwrap();
        assert_eq!(NdiscRepr::parse(&p), Ok(repr));
        let kinds: Vec<_> = NdOptions::new(&with_prefix[RA_LEN..]).map(|o| o.unwrap()).collect();
        assert_eq!(kinds[0], (0, NdOption::SourceLinkLayerAddr(MAC1)));
        assert_eq!(kinds[1], (8, NdOption::Mtu(1500)));
        assert!(matches!(kinds[2], (16, NdOption::Unknown { kind: nd_option::PREFIX_INFO, data }) if data.len() == 30));
    }

    #[test]
    fn bad_neighbour_discovery_is_refused() {
        let parse = |b: &[u8]| NdiscRepr::parse(&Icmpv6Packet::new_checked(b).unwrap());
        assert_eq!(parse(&ECHO), Err(Error::NotNdisc { msg_type: msg_type::ECHO_REQUEST, msg_code: 0 }));
        let mut b = NS;
        b[1] = 1;
        assert_eq!(parse(&b), Err(Error::NotNdisc { msg_type: msg_type::NEIGHBOR_SOLICIT, msg_code: 1 }));
        assert_eq!(parse(&NS[..23]), Err(Error::Truncated { layer: Layer::Icmpv6, needed: 24, len: 23 }));
        assert_eq!(parse(&RA[..15]), Err(Error::Truncated { layer: Layer::Icmpv6, needed: 16, len: 15 }));
        // An option of length zero would loop a naive walker forever.
        let mut b = NS;
        b[25] = 0;
        assert_eq!(parse(&b), Err(Error::BadNdOption { kind: 1, len: 0 }));
        // Running past the message.
        b[25] = 2;
        assert_eq!(parse(&b), Err(Error::BadNdOption { kind: 1, len: 2 }));
        // A link-layer address option of 16 bytes is not an Ethernet one.
        let mut long = NS.to_vec();
        long[25] = 2;
        long.extend_from_slice(&[0; 8]);
        assert_eq!(parse(&long), Err(Error::BadNdOption { kind: 1, len: 2 }));
        // A cut option.
        assert_eq!(parse(&NS[..31]), Err(Error::BadNdOption { kind: 1, len: 1 }));
        assert_eq!(parse(&NS[..25]), Err(Error::BadNdOption { kind: 1, len: 0 }));
    }

    #[test]
    fn truncated_at_every_offset_is_a_clean_error() {
        for msg in [&NS[..], &NA[..], &RA[..]] {
            for cut in 0..msg.len() {
                let Ok(p) = Icmpv6Packet::new_checked(&msg[..cut]) else {
                    assert!(cut < HEADER_LEN);
                    continue;
                };
                // Cut at an option boundary the message is whole but shorter;
                // anywhere else it is an error.
                let r = NdiscRepr::parse(&p);
                let boundary = cut >= NS_NA_LEN.min(RA_LEN) && (cut - RA_LEN).is_multiple_of(8);
                assert!(r.is_err() || boundary, "cut at {cut}: {r:?}");
            }
        }
        let error = too_big(LINK_LOCAL, &SYN);
        for cut in 0..error.len() {
            if let Ok(p) = Icmpv6Packet::new_checked(&error[..cut]) {
                let q = p.quoted();
                assert_eq!(q.is_ok(), cut >= HEADER_LEN + ipv6::HEADER_LEN, "cut at {cut}: {q:?}");
            }
        }
    }

    #[test]
    fn nd_options_emit_and_refuse() {
        let mut buf = [0u8; 8];
        assert_eq!(NdOption::Mtu(9000).emit(&mut buf), Some(8));
        assert_eq!(buf, [5, 1, 0, 0, 0, 0, 0x23, 0x28]);
        assert_eq!(NdOption::SourceLinkLayerAddr(MAC1).emit(&mut buf[..7]), None);
        assert_eq!(NdOption::Unknown { kind: 9, data: &[0; 5] }.emit(&mut buf), None, "not whole units");
        assert_eq!(NdOption::Unknown { kind: 9, data: &[7; 6] }.emit(&mut buf), Some(8));
        assert_eq!(NdOptions::new(&buf).next(), Some(Ok((0, NdOption::Unknown { kind: 9, data: &[7; 6] }))));
    }

    proptest! {
        /// Never panics, whatever the bytes; an option walk always ends.
        #[test]
        fn arbitrary_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..128), t in 0usize..4) {
            if !b.is_empty() {
                b[0] = [msg_type::NEIGHBOR_SOLICIT, msg_type::NEIGHBOR_ADVERT, msg_type::ROUTER_ADVERT, b[0]][t];
            }
            if let Ok(p) = Icmpv6Packet::new_checked(&b[..]) {
                let _ = (p.verify_checksum(HOST, PEER), p.mtu(), p.echo_seq(), Icmpv6Repr::parse(&p));
                if let Ok(q) = p.quoted() {
                    prop_assert!(q.l4.len() <= b.len());
                }
                if let Ok(repr) = NdiscRepr::parse(&p) {
                    prop_assert!(repr.buffer_len() <= b.len());
                }
            }
            prop_assert!(NdOptions::new(&b).count() <= b.len() / 8 + 1);
        }
    }
}
