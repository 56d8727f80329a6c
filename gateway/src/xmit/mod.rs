//! Per-mode packet rewrites (FNAT, NAT, DR, TUN) and ICMP error relaying,
//! applied in place on a frame. [`dispatch`] says which rewrite a
//! connection's packet gets for its mode and direction, for its own packets
//! and for the ICMP errors about them alike.
//!
//! Every function here takes the frame, the [`Ipv4Meta`] that
//! [`crate::wire::classify`] returned for it, and a plain parameter struct the
//! dataplane fills from its connection entry. Nothing is parsed twice: the
//! offsets come from the classification. Because a caller could pass a meta
//! from another frame, every access is still bounds-checked (`get`,
//! `first_chunk`): a mismatch is an error, never a panic. After those checks
//! the code works on fixed-size arrays at constant offsets, which the
//! compiler compiles to plain loads and stores.
//!
//! Checksums: each rewrite records what it changes in a
//! [`checksum::Delta`] and applies it once per checksum (RFC 1624), so the
//! cost does not depend on the payload. An address change enters both the
//! IPv4 header checksum and the TCP/UDP pseudo-header. When the port can fill
//! checksums at transmit ([`Offload`]), the rewrite instead zeroes the IPv4
//! checksum and stores the pseudo-header sum in the TCP/UDP field, which is
//! DPDK's contract for `RTE_MBUF_F_TX_TCP_CKSUM`/`UDP_CKSUM`, and records the
//! request with [`Frame::set_tx_offload`].
//!
//! Sequence numbers and timestamps: when the director shifts a direction's
//! sequence space (its own ISN, or the SYN proxy's cookie), that direction
//! gets `seq_delta` added to `seq` and the other direction the same value as
//! `ack_delta`, subtracted from `ack` and every SACK edge. Timestamps work
//! the same way for the SYN proxy: the client saw the TSval of the
//! director's SYN-ACK and judges every later TSval against it (PAWS), so the
//! server's TSvals are shifted into that space (`tsval_delta`, added to the
//! TSval of server-to-client packets) and the client's TSecr, which echoes
//! those shifted values, is shifted back (`tsecr_delta`, subtracted from the
//! TSecr of client-to-server packets). Like `ack`, TSecr is edited only on
//! segments with ACK set (RFC 7323 §3.2: without it TSecr means nothing).
//! With every delta 0 and no MSS clamp the option block is not walked.
//!
//! TTL: the gateway may act as a router hop (`decrement_ttl` in the
//! parameter structs, as DPVS's `xmit_ttl` option). A packet that would leave
//! with TTL 0 is refused with [`XmitError::TtlExpired`]; the caller answers
//! it with [`icmp_error::error_reply`] and counts
//! [`DropReason::TtlExpired`].
//!
//! IPv6 ([`Ipv6Meta`], `Endpoints<Ipv6Addr>::translate`): the same core
//! over 16-byte addresses, with what IPv6 changes. There is no header
//! checksum, so an address change enters the TCP/UDP pseudo-header only and
//! the hop limit (the TTL's counterpart, refused at 1 the same way) enters
//! none. A router does not fragment IPv6: a packet longer than the egress
//! MTU is refused with [`XmitError::MtuExceeded`], for the caller to answer
//! with packet too big. UDP always leaves with a checksum (RFC 8200 §8.1).
//! Under offload the L4 field holds the IPv6 pseudo-header sum and the
//! request says IPv6 ([`TxOffload::ipv6`]). The pseudo-header is taken to
//! carry the IPv6 destination: a packet with a routing header whose
//! segments are not all visited (whose pseudo-header names its final
//! destination) is not one the gateway should translate, which is the
//! caller's to decide.

pub mod dispatch;
pub mod dr;
pub mod fnat;
pub mod icmp_error;
pub mod icmpv6_error;
pub mod nat;
pub mod nat64;
pub mod proxy_header;
pub mod tcp_opts;
pub mod tun;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::frame::{Frame, FrameError, L4Offload, TxOffload};
use crate::wire::checksum::{self, Delta};
use crate::wire::{ethernet, ip_proto, ipv4, ipv6, tcp, udp, DropReason, EthAddrs, Ipv4Meta, Ipv6Meta};

pub use dispatch::{Egress, Endpoints, Ends, Rewrite, Shift};
pub use dr::DrRewrite;
pub use fnat::ToaOutcome;
#[cfg(any(test, feature = "testing"))]
pub use fnat::{FnatRewrite, Toa};
pub use icmp_error::IcmpErrorRewrite;
#[cfg(any(test, feature = "testing"))]
pub use nat::NatRewrite;
pub use tun::{TunEncap, TunEncapV6};

/// What the egress port can compute at transmit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offload {
    pub ipv4_checksum: bool,
    pub tcp_checksum: bool,
    pub udp_checksum: bool,
}

impl Offload {
    /// Software checksums only (virtual devices, tests).
    pub const NONE: Offload = Offload { ipv4_checksum: false, tcp_checksum: false, udp_checksum: false };
    /// A port that fills every checksum.
    pub const ALL: Offload = Offload { ipv4_checksum: true, tcp_checksum: true, udp_checksum: true };
}

/// Why a rewrite was refused. The frame is unchanged unless noted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmitError {
    /// The frame is shorter than the classification said (a meta from
    /// another frame, or a frame changed since).
    Truncated { needed: usize, len: usize },
    /// The TTL would reach zero at this hop.
    TtlExpired { ttl: u8 },
    /// The rewritten packet would be `len` bytes on a `mtu`-byte link.
    MtuExceeded { len: usize, mtu: u16 },
    /// The frame could not grow.
    NoRoom(FrameError),
    /// An IPv6 address was given for an IPv4 packet (or the reverse).
    AddressFamily(IpAddr),
    /// The mode cannot translate this IP protocol.
    UnsupportedProtocol(u8),
    /// An ICMP error's checksum is wrong (checked before it is rewritten,
    /// since the rewrite recomputes it).
    BadIcmpChecksum,
    /// An ICMP error whose quoted datagram cannot be rewritten.
    BadIcmpQuote,
}

impl XmitError {
    /// The drop counter this error is counted in.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            XmitError::Truncated { .. } => DropReason::Truncated,
            XmitError::TtlExpired { .. } => DropReason::TtlExpired,
            XmitError::MtuExceeded { .. } => DropReason::MtuExceeded,
            XmitError::NoRoom(_) => DropReason::NoRoom,
            XmitError::AddressFamily(_) | XmitError::UnsupportedProtocol(_) => DropReason::NotRewritable,
            XmitError::BadIcmpChecksum => DropReason::BadL4Checksum,
            XmitError::BadIcmpQuote => DropReason::BadIcmpQuote,
        }
    }
}

impl fmt::Display for XmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmitError::Truncated { needed, len } => {
                write!(f, "frame of {len} bytes is shorter than the {needed} bytes classified")
            }
            XmitError::TtlExpired { ttl } => write!(f, "ttl {ttl} expires at this hop"),
            XmitError::MtuExceeded { len, mtu } => write!(f, "{len}-byte packet exceeds the {mtu}-byte mtu"),
            XmitError::NoRoom(e) => write!(f, "frame cannot grow: {e}"),
            XmitError::AddressFamily(a) => write!(f, "address {a} is not of the packet's family (ipv4)"),
            XmitError::UnsupportedProtocol(p) => write!(f, "ip protocol {p} cannot be translated in this mode"),
            XmitError::BadIcmpChecksum => f.write_str("icmp error with a wrong checksum"),
            XmitError::BadIcmpQuote => f.write_str("icmp error quoting an unusable datagram"),
        }
    }
}

impl std::error::Error for XmitError {}

/// The IPv4 address of an API-boundary address, or the family error.
#[inline(always)]
pub(crate) fn v4(addr: IpAddr) -> Result<Ipv4Addr, XmitError> {
    match addr {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(XmitError::AddressFamily(addr)),
    }
}

/// An endpoint to write: address (4 bytes for IPv4, 16 for IPv6) and port.
pub(crate) type Endpoint<A = [u8; 4]> = (A, u16);

/// A layer-3/4 translation: the shared core of FNAT and NAT, over the
/// address bytes of its family.
pub(crate) struct Translation<A = [u8; 4]> {
    pub src: Option<Endpoint<A>>,
    pub dst: Option<Endpoint<A>>,
    /// Added to the TCP sequence number.
    pub seq_delta: u32,
    /// Subtracted from the TCP acknowledgment number and SACK edges.
    pub ack_delta: u32,
    /// Added to the TSval of a TCP timestamps option.
    pub tsval_delta: u32,
    /// Subtracted from the TSecr of a TCP timestamps option (segments with
    /// ACK set).
    pub tsecr_delta: u32,
    pub mss_clamp: Option<u16>,
    pub decrement_ttl: bool,
}

/// Rewrites addresses, ports, TTL and TCP sequence space of a TCP or UDP
/// packet in place, with incremental or offloaded checksums.
///
/// The translation is built by `build` only after the frame's bytes are in
/// hand: built before, its fields would be copied to the stack to survive
/// the (possibly out-of-line) `data_mut` call and read back, which costs a
/// dozen instructions per packet.
#[inline(always)]
pub(crate) fn translate<F: Frame>(
    frame: &mut F,
    meta: &Ipv4Meta,
    offload: Offload,
    build: impl FnOnce() -> Result<Translation, XmitError>,
) -> Result<(), XmitError> {
    let data = frame.data_mut();
    let t = &build()?;
    let l4_offload = match plain_tcp(data, meta, t) {
        Some((packet, new)) => translate_plain_tcp(packet, new, meta.l4_len, offload)?,
        None => translate_bytes(data, meta, t, offload, Unapplied::NONE)?,
    };
    // A frame fresh from the NIC carries no transmit request, so there is
    // nothing to clear when no offload is used.
    if offload.ipv4_checksum || l4_offload != L4Offload::None {
        request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
    }
    Ok(())
}

/// The headers [`translate_plain_tcp`] rewrites: an IPv4 header without
/// options and a TCP header.
const PLAIN_TCP_LEN: usize = ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN;

/// The packet's headers and `t`'s endpoints when the packet and the
/// translation have the shape nearly every packet of a connection has, which
/// [`translate_plain_tcp`] takes: untagged, an IPv4 header without options,
/// TCP; both endpoints replaced, the TTL decremented, no sequence shift and
/// no MSS clamp. The tests of `t` fold away for a translation built of
/// constants but its endpoints (FNAT's, unproxied).
#[inline(always)]
fn plain_tcp<'d>(
    data: &'d mut [u8],
    meta: &Ipv4Meta,
    t: &Translation,
) -> Option<(&'d mut [u8; PLAIN_TCP_LEN], WireEnds)> {
    let (Some(src), Some(dst)) = (t.src, t.dst) else { return None };
    let unshifted = t.seq_delta | t.ack_delta | t.tsval_delta | t.tsecr_delta == 0 && t.mss_clamp.is_none();
    if !(unshifted && t.decrement_ttl && is_plain_tcp(meta)) {
        return None;
    }
    // What `check_layout` refuses but the TTL, the classification rules
    // out (`translate`'s meta describes the frame): tested, not paid for a
    // packet (8 instructions an established packet, `measure_pipeline.sh`).
    // A meta that lied would have its frame's headers rewritten, within it.
    debug_assert!(
        usize::from(meta.l4_len) >= tcp::MIN_HEADER_LEN
            && ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + usize::from(meta.l4_len) <= data.len(),
        "a classified TCP packet: {meta:?} in {} bytes",
        data.len()
    );
    let packet = data.get_mut(ethernet::HEADER_LEN..)?.first_chunk_mut::<PLAIN_TCP_LEN>()?;
    Some((packet, WireEnds::between(src, dst)))
}

/// Whether `meta` describes the packet [`translate_plain_tcp`] takes:
/// untagged, an IPv4 header without options, TCP.
#[inline(always)]
fn is_plain_tcp(meta: &Ipv4Meta) -> bool {
    // Compared as the meta's bytes, as they lie.
    [meta.l2_len, meta.l3_len, meta.protocol] == [ethernet::HEADER_LEN as u8, ipv4::MIN_HEADER_LEN as u8, ip_proto::TCP]
}

/// Both new endpoints of a translation as the wire carries them: what
/// [`translate_plain_tcp`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WireEnds {
    pub(crate) src: [u8; 4],
    pub(crate) dst: [u8; 4],
    /// The source port, then the destination's, in one value as the machine
    /// loads it from the wire (native byte order).
    pub(crate) ports: u32,
}

impl WireEnds {
    /// From `src` to `dst`, each an address's bytes and a port.
    #[inline(always)]
    pub(crate) fn between(src: Endpoint<[u8; 4]>, dst: Endpoint<[u8; 4]>) -> WireEnds {
        // Written so that the compiler loads a connection's two ports, which
        // lie side by side, as one value.
        let ports = (u32::from(dst.1) | u32::from(src.1) << 16).to_be();
        WireEnds { src: src.0, dst: dst.0, ports }
    }

    /// The same translation in [`translate_bytes`]' terms.
    #[inline(always)]
    fn translation(&self) -> Translation {
        let [s0, s1, d0, d1] = self.ports.to_ne_bytes();
        Translation::between((self.src, u16::from_be_bytes([s0, s1])), (self.dst, u16::from_be_bytes([d0, d1])))
    }
}

/// [`translate`] of a packet to `new`, both ends replaced, as a router hop.
#[inline(always)]
pub(crate) fn translate_to<F: Frame>(
    frame: &mut F,
    meta: &Ipv4Meta,
    offload: Offload,
    new: WireEnds,
) -> Result<(), XmitError> {
    translate(frame, meta, offload, || Ok(new.translation()))
}

/// [`translate`] of a packet to `new`, both ends replaced, as a router hop,
/// then its Ethernet addresses written (`macs`): a connection's packet in
/// FNAT's lane, its frame's bytes taken once for both.
#[inline(always)]
pub(crate) fn translate_and_address<F: Frame>(
    frame: &mut F,
    meta: &Ipv4Meta,
    offload: Offload,
    new: WireEnds,
    macs: &EthAddrs,
) -> Result<(), XmitError> {
    let data = frame.data_mut();
    let l4_offload = match data.get_mut(ethernet::HEADER_LEN..).and_then(|d| d.first_chunk_mut::<PLAIN_TCP_LEN>()) {
        Some(packet) if is_plain_tcp(meta) => translate_plain_tcp(packet, new, meta.l4_len, offload)?,
        _ => translate_bytes(data, meta, &new.translation(), offload, Unapplied::NONE)?,
    };
    dr::readdress_bytes(data, macs)?;
    if offload.ipv4_checksum || l4_offload != L4Offload::None {
        request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
    }
    Ok(())
}

/// [`translate_bytes`] for [`plain_tcp`]'s shape, on its headers: with every
/// offset a constant, nothing to bound-check or lay out again
/// (`measure_pipeline.sh`: an established packet and a reply 17
/// instructions fewer).
/// `translate_bytes` is the reference, and a test holds the two to the same
/// bytes. A TTL that would reach zero is refused before any write.
#[inline(always)]
fn translate_plain_tcp(
    packet: &mut [u8; PLAIN_TCP_LEN],
    new: WireEnds,
    l4_len: u16,
    offload: Offload,
) -> Result<L4Offload, XmitError> {
    const TCP: usize = ipv4::MIN_HEADER_LEN;
    let ttl = packet[ipv4::offset::TTL];
    if ttl <= 1 {
        return Err(XmitError::TtlExpired { ttl });
    }
    packet[ipv4::offset::TTL] = ttl - 1;
    let mut ip_delta = Delta::new();
    ip_delta.decrement_first_byte();
    // The pseudo-header sees the same address change as the IP header.
    let mut l4_delta = Delta::new();
    let (src, dst) = (new.src, new.dst);
    swap4(packet, ipv4::offset::SRC, src, &mut l4_delta);
    swap4(packet, ipv4::offset::DST, dst, &mut l4_delta);
    ip_delta.merge(l4_delta);
    let ip_checksum =
        if offload.ipv4_checksum { [0, 0] } else { ip_delta.apply_bytes(get2(packet, ipv4::offset::CHECKSUM)) };
    put2(packet, ipv4::offset::CHECKSUM, ip_checksum);
    // Both ports as one field (an established packet and a reply 2 to 3
    // instructions fewer than one by one).
    swap4(packet, TCP + tcp::offset::SRC_PORT, new.ports.to_ne_bytes(), &mut l4_delta);
    let (l4_checksum, l4_offload) = if offload.tcp_checksum {
        (pseudo_header_checksum_of(src, dst, ip_proto::TCP, l4_len).to_be_bytes(), L4Offload::Tcp)
    } else {
        (l4_delta.apply_bytes(get2(packet, TCP + tcp::offset::CHECKSUM)), L4Offload::None)
    };
    put2(packet, TCP + tcp::offset::CHECKSUM, l4_checksum);
    Ok(l4_offload)
}

impl<A> Translation<A> {
    /// Both ends replaced, the TTL decremented, nothing shifted or clamped:
    /// FNAT's and NAT64's translation before their particulars.
    #[inline(always)]
    pub(crate) fn between(src: Endpoint<A>, dst: Endpoint<A>) -> Self {
        Translation {
            src: Some(src),
            dst: Some(dst),
            seq_delta: 0,
            ack_delta: 0,
            tsval_delta: 0,
            tsecr_delta: 0,
            mss_clamp: None,
            decrement_ttl: true,
        }
    }
}

/// Checksum changes made to a packet before its translation and folded
/// into the translation's own updates, so that each checksum is updated
/// once: a TOA's insertion ([`tcp_opts::translate_inserting`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Unapplied {
    /// To the IPv4 header (its total length).
    pub header: Delta,
    /// To the TCP segment (its data offset, the option, the pseudo-header's
    /// length). A UDP datagram has none: only TCP carries options.
    pub segment: Delta,
}

impl Unapplied {
    pub const NONE: Unapplied = Unapplied { header: Delta::new(), segment: Delta::new() };
}

/// Whether [`translate_bytes`] refuses the packet `meta` describes: the
/// refusals it makes before its first write, for a caller that must know
/// before it changes the frame itself.
#[inline(always)]
pub(crate) fn check_translation(data: &[u8], meta: &Ipv4Meta, t: &Translation) -> Result<(), XmitError> {
    let layout = Layout {
        l3: meta.l3_offset(),
        l3_len: usize::from(meta.l3_len),
        l3_min: ipv4::MIN_HEADER_LEN,
        l4_len: usize::from(meta.l4_len),
        protocol: meta.protocol,
        ttl_at: ipv4::offset::TTL,
    };
    check_layout(data, &layout, t.decrement_ttl)
}

/// Where a classified packet's layers are, as the translations' refusals
/// need them: FNAT's and NAT's of either family, NAT64's both ways.
pub(crate) struct Layout {
    /// The IP header's offset in the frame, and the IP headers' length.
    pub l3: usize,
    pub l3_len: usize,
    /// The family's fixed IP header length.
    pub l3_min: usize,
    /// From the layer-4 header to the end of the IP packet.
    pub l4_len: usize,
    pub protocol: u8,
    /// The TTL's (hop limit's) offset in the IP header.
    pub ttl_at: usize,
}

/// The refusals both families make before a translation writes: the packet
/// within the frame, its fixed IP header and its TCP or UDP header whole, and
/// a TTL (hop limit) left to decrement when the translation decrements it.
#[inline(always)]
pub(crate) fn check_layout(data: &[u8], l: &Layout, decrement_ttl: bool) -> Result<(), XmitError> {
    let (total, len) = (l.l3_len + l.l4_len, data.len());
    let Some(packet) = data.get(l.l3..l.l3 + total) else {
        return Err(XmitError::Truncated { needed: l.l3 + total, len });
    };
    if l.l3_len < l.l3_min {
        return Err(XmitError::Truncated { needed: l.l3 + l.l3_min, len });
    }
    let l4_min = match l.protocol {
        ip_proto::TCP => tcp::MIN_HEADER_LEN,
        ip_proto::UDP => udp::HEADER_LEN,
        other => return Err(XmitError::UnsupportedProtocol(other)),
    };
    if l.l4_len < l4_min {
        return Err(XmitError::Truncated { needed: l.l3 + l.l3_len + l4_min, len });
    }
    // In range: l3_len >= l3_min, which holds the TTL.
    let ttl = packet[l.ttl_at];
    if decrement_ttl && ttl <= 1 {
        return Err(XmitError::TtlExpired { ttl });
    }
    Ok(())
}

/// Translates the packet's bytes, folding `unapplied` into the checksum
/// updates; returns the checksum offload to request.
#[inline(always)]
pub(crate) fn translate_bytes(
    data: &mut [u8],
    meta: &Ipv4Meta,
    t: &Translation,
    offload: Offload,
    unapplied: Unapplied,
) -> Result<L4Offload, XmitError> {
    // Every refusal comes before the first write, so a refused frame is
    // untouched and can still be answered (ICMP) or dropped as it was.
    check_translation(data, meta, t)?;
    let l3 = meta.l3_offset();
    let total = meta.ip_total_len();
    let len = data.len();
    // Checked above: these tests only give the slices their bounds.
    let packet = data.get_mut(l3..l3 + total).ok_or(XmitError::Truncated { needed: l3 + total, len })?;
    // total = l3_len + l4_len, so the split point is in range.
    let (ip_header, l4) = packet.split_at_mut(usize::from(meta.l3_len));
    let ip = ip_header
        .first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>()
        .ok_or(XmitError::Truncated { needed: l3 + ipv4::MIN_HEADER_LEN, len })?;
    let ttl = ip[ipv4::offset::TTL];

    let mut ip_delta = unapplied.header;
    if t.decrement_ttl {
        let ttl_protocol = [ttl - 1, ip[ipv4::offset::PROTOCOL]];
        swap2(ip, ipv4::offset::TTL, ttl_protocol, &mut ip_delta);
    }
    // The pseudo-header sees the same address change as the IP header.
    let mut l4_delta = Delta::new();
    if let Some((addr, _)) = t.src {
        swap4(ip, ipv4::offset::SRC, addr, &mut l4_delta);
    }
    if let Some((addr, _)) = t.dst {
        swap4(ip, ipv4::offset::DST, addr, &mut l4_delta);
    }
    ip_delta.merge(l4_delta);
    let ip_checksum =
        if offload.ipv4_checksum { [0, 0] } else { ip_delta.apply_bytes(get2(ip, ipv4::offset::CHECKSUM)) };
    put2(ip, ipv4::offset::CHECKSUM, ip_checksum);

    let l4_offload = if meta.protocol == ip_proto::TCP {
        // Length checked above.
        let Some((th, options)) = l4.split_first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>() else {
            return Err(XmitError::Truncated { needed: meta.l4_offset() + tcp::MIN_HEADER_LEN, len });
        };
        l4_delta.merge(unapplied.segment);
        edit_tcp(th, options, t, &mut l4_delta);
        if offload.tcp_checksum {
            put2(th, tcp::offset::CHECKSUM, pseudo_header_checksum(ip, ip_proto::TCP, meta.l4_len).to_be_bytes());
            L4Offload::Tcp
        } else {
            let c = l4_delta.apply_bytes(get2(th, tcp::offset::CHECKSUM));
            put2(th, tcp::offset::CHECKSUM, c);
            L4Offload::None
        }
    } else {
        let Some(uh) = l4.first_chunk_mut::<{ udp::HEADER_LEN }>() else {
            return Err(XmitError::Truncated { needed: meta.l4_offset() + udp::HEADER_LEN, len });
        };
        rewrite_ports(uh, t, &mut l4_delta);
        let old = get2(uh, udp::offset::CHECKSUM);
        // Zero means "no checksum": it stays zero, and needs no offload.
        if old == [0, 0] {
            L4Offload::None
        } else if offload.udp_checksum {
            let udp_len = u16::from_be_bytes(get2(uh, udp::offset::LENGTH));
            put2(uh, udp::offset::CHECKSUM, pseudo_header_checksum(ip, ip_proto::UDP, udp_len).to_be_bytes());
            L4Offload::Udp
        } else {
            let c = match l4_delta.apply_bytes(old) {
                [0, 0] => [0xff, 0xff],
                c => c,
            };
            put2(uh, udp::offset::CHECKSUM, c);
            L4Offload::None
        }
    };
    Ok(l4_offload)
}

/// [`translate`] for an IPv6 packet, as a router forwards one: the hop
/// limit decremented (refused at 1), no header checksum to update, and a
/// packet longer than the egress `mtu` refused with
/// [`XmitError::MtuExceeded`] (a router does not fragment IPv6; the caller
/// answers with packet too big). Extension headers stay as they are: the
/// offsets come from the classification, which walked them.
#[inline(always)]
pub(crate) fn translate_v6<F: Frame>(
    frame: &mut F,
    meta: &Ipv6Meta,
    mtu: u16,
    offload: Offload,
    build: impl FnOnce() -> Translation<[u8; 16]>,
) -> Result<(), XmitError> {
    let data = frame.data_mut();
    let t = &build();
    let l4_offload = translate_bytes_v6(data, meta, t, mtu, offload, Delta::new())?;
    if l4_offload != L4Offload::None {
        request_offload_v6(frame, meta, l4_offload);
    }
    Ok(())
}

/// Whether [`translate_bytes_v6`] refuses the packet `meta` describes, as
/// [`check_translation`] tells for IPv4; a packet longer than `mtu` too.
#[inline(always)]
pub(crate) fn check_translation_v6(
    data: &[u8],
    meta: &Ipv6Meta,
    t: &Translation<[u8; 16]>,
    mtu: u16,
) -> Result<(), XmitError> {
    let layout = Layout {
        l3: meta.l3_offset(),
        l3_len: usize::from(meta.l3_len),
        l3_min: ipv6::HEADER_LEN,
        l4_len: usize::from(meta.l4_len),
        protocol: meta.protocol,
        ttl_at: ipv6::offset::HOP_LIMIT,
    };
    // A router checks the hop limit before the link (RFC 8200 §3, RFC
    // 4443 §3.2; Linux's ip6_forward in the same order).
    check_layout(data, &layout, t.decrement_ttl)?;
    let total = meta.ip_total_len();
    if total > usize::from(mtu) {
        return Err(XmitError::MtuExceeded { len: total, mtu });
    }
    Ok(())
}

/// Translates the IPv6 packet's bytes, folding `unapplied` (to the TCP
/// segment: IPv6 has no header checksum) into the checksum update; returns
/// the checksum offload to request.
#[inline(always)]
pub(crate) fn translate_bytes_v6(
    data: &mut [u8],
    meta: &Ipv6Meta,
    t: &Translation<[u8; 16]>,
    mtu: u16,
    offload: Offload,
    unapplied: Delta,
) -> Result<L4Offload, XmitError> {
    // Every refusal comes before the first write, as for IPv4.
    check_translation_v6(data, meta, t, mtu)?;
    let l3 = meta.l3_offset();
    let total = meta.ip_total_len();
    let len = data.len();
    // Checked above: these tests only give the slices their bounds.
    let packet = data.get_mut(l3..l3 + total).ok_or(XmitError::Truncated { needed: l3 + total, len })?;
    // total = l3_len + l4_len, so the split point is in range.
    let (ip_headers, l4) = packet.split_at_mut(usize::from(meta.l3_len));
    let ip = ip_headers
        .first_chunk_mut::<{ ipv6::HEADER_LEN }>()
        .ok_or(XmitError::Truncated { needed: l3 + ipv6::HEADER_LEN, len })?;
    let hop_limit = ip[ipv6::offset::HOP_LIMIT];

    // The hop limit is in no checksum; the addresses are in the
    // pseudo-header only.
    if t.decrement_ttl {
        ip[ipv6::offset::HOP_LIMIT] = hop_limit - 1;
    }
    let mut l4_delta = Delta::new();
    if let Some((addr, _)) = t.src {
        swap16(ip, ipv6::offset::SRC, addr, &mut l4_delta);
    }
    if let Some((addr, _)) = t.dst {
        swap16(ip, ipv6::offset::DST, addr, &mut l4_delta);
    }

    let l4_offload = if meta.protocol == ip_proto::TCP {
        // Length checked above.
        let Some((th, options)) = l4.split_first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>() else {
            return Err(XmitError::Truncated { needed: meta.l4_offset() + tcp::MIN_HEADER_LEN, len });
        };
        l4_delta.merge(unapplied);
        edit_tcp(th, options, t, &mut l4_delta);
        if offload.tcp_checksum {
            let phdr = pseudo_header_checksum_v6(ip, ip_proto::TCP, u32::from(meta.l4_len));
            put2(th, tcp::offset::CHECKSUM, phdr.to_be_bytes());
            L4Offload::Tcp
        } else {
            let c = l4_delta.apply_bytes(get2(th, tcp::offset::CHECKSUM));
            put2(th, tcp::offset::CHECKSUM, c);
            L4Offload::None
        }
    } else {
        let Some((uh, _)) = l4.split_first_chunk_mut::<{ udp::HEADER_LEN }>() else {
            return Err(XmitError::Truncated { needed: meta.l4_offset() + udp::HEADER_LEN, len });
        };
        rewrite_ports(uh, t, &mut l4_delta);
        let old = get2(uh, udp::offset::CHECKSUM);
        if offload.udp_checksum {
            let udp_len = u16::from_be_bytes(get2(uh, udp::offset::LENGTH));
            let phdr = pseudo_header_checksum_v6(ip, ip_proto::UDP, u32::from(udp_len));
            put2(uh, udp::offset::CHECKSUM, phdr.to_be_bytes());
            L4Offload::Udp
        } else if old == [0, 0] {
            // No checksum, which IPv6 forbids (RFC 8200 §8.1): the
            // classification drops such datagrams, but one that got here
            // anyway leaves with a checksum computed in full, never with
            // a delta applied to a value that was never a sum.
            let (src, dst) = (addr_at(ip, ipv6::offset::SRC), addr_at(ip, ipv6::offset::DST));
            fill_udp_checksum_v6(src, dst, l4);
            L4Offload::None
        } else {
            let c = match l4_delta.apply_bytes(old) {
                [0, 0] => [0xff, 0xff],
                c => c,
            };
            put2(uh, udp::offset::CHECKSUM, c);
            L4Offload::None
        }
    };
    Ok(l4_offload)
}

/// Computes the checksum of a UDP datagram over IPv6 in full (its length
/// field bounding it, at most `l4`), for one that arrived without any.
#[cold]
#[inline(never)]
fn fill_udp_checksum_v6(src: [u8; 16], dst: [u8; 16], l4: &mut [u8]) {
    let udp_len = usize::from(u16::from_be_bytes(get2(l4, udp::offset::LENGTH))).clamp(udp::HEADER_LEN, l4.len());
    let datagram = &mut l4[..udp_len];
    put2(datagram, udp::offset::CHECKSUM, [0, 0]);
    let phdr = checksum::pseudo_header_v6(src, dst, ip_proto::UDP, udp_len as u32);
    let c = match checksum::finish(checksum::sum(datagram) + phdr) {
        0 => 0xffff,
        c => c,
    };
    put2(datagram, udp::offset::CHECKSUM, c.to_be_bytes());
}

/// The TCP edits of a translation, either family: ports, `seq`, and when
/// asked `ack` and the options.
#[inline(always)]
fn edit_tcp<A: Copy>(th: &mut [u8; tcp::MIN_HEADER_LEN], options: &mut [u8], t: &Translation<A>, delta: &mut Delta) {
    rewrite_ports(th, t, delta);
    if t.seq_delta != 0 {
        let new = u32::from_be_bytes(get4(th, tcp::offset::SEQ)).wrapping_add(t.seq_delta);
        swap4(th, tcp::offset::SEQ, new.to_be_bytes(), delta);
    }
    // One test for the acknowledgment and every option edit: the
    // common case (none) pays for it alone.
    if (t.ack_delta | t.tsval_delta | t.tsecr_delta) != 0 || t.mss_clamp.is_some() {
        edit_ack_and_options(th, options, t, delta);
    }
}

/// The edits of a translation after `seq`: `ack` (with ACK set) and the
/// option block (SACK edges, timestamps, MSS of a SYN).
#[inline(always)]
fn edit_ack_and_options<A>(
    th: &mut [u8; tcp::MIN_HEADER_LEN],
    options: &mut [u8],
    t: &Translation<A>,
    delta: &mut Delta,
) {
    let flags = th[tcp::offset::FLAGS];
    let has_ack = flags & tcp::flags::ACK != 0;
    let ack_edit = t.ack_delta != 0 && has_ack;
    if ack_edit {
        let new = u32::from_be_bytes(get4(th, tcp::offset::ACK)).wrapping_sub(t.ack_delta);
        swap4(th, tcp::offset::ACK, new.to_be_bytes(), delta);
    }
    let clamp = t.mss_clamp.filter(|_| flags & tcp::flags::SYN != 0);
    if ack_edit || clamp.is_some() || (t.tsval_delta | t.tsecr_delta) != 0 {
        let options_len = (usize::from(th[tcp::offset::DATA_OFFSET] >> 4) * 4).saturating_sub(tcp::MIN_HEADER_LEN);
        if let Some(opts) = options.get_mut(..options_len) {
            let edits = tcp_opts::OptionEdits {
                sack_delta: if ack_edit { t.ack_delta } else { 0 },
                mss_clamp: clamp,
                tsval_delta: t.tsval_delta,
                tsecr_delta: if has_ack { t.tsecr_delta } else { 0 },
            };
            tcp_opts::edit_options(opts, edits, delta);
        }
    }
}

/// Writes the ports a translation asks for (TCP and UDP share the layout).
#[inline(always)]
fn rewrite_ports<A>(l4: &mut [u8], t: &Translation<A>, delta: &mut Delta) {
    if let Some((_, port)) = t.src {
        swap2(l4, 0, port.to_be_bytes(), delta);
    }
    if let Some((_, port)) = t.dst {
        swap2(l4, 2, port.to_be_bytes(), delta);
    }
}

#[inline(always)]
fn get2(b: &[u8], at: usize) -> [u8; 2] {
    [b[at], b[at + 1]]
}

#[inline(always)]
fn get4(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

#[inline(always)]
fn put2(b: &mut [u8], at: usize, v: [u8; 2]) {
    b[at..at + 2].copy_from_slice(&v);
}

/// Replaces a 2-byte field at an even offset, recording the change.
#[inline(always)]
fn swap2(b: &mut [u8], at: usize, new: [u8; 2], delta: &mut Delta) {
    delta.replace2(get2(b, at), new);
    put2(b, at, new);
}

/// Replaces a 4-byte field at an even offset, recording the change.
#[inline(always)]
fn swap4(b: &mut [u8], at: usize, new: [u8; 4], delta: &mut Delta) {
    delta.replace4(get4(b, at), new);
    b[at..at + 4].copy_from_slice(&new);
}

/// Replaces a 16-byte IPv6 address at an even offset, recording the change.
#[inline(always)]
fn swap16(b: &mut [u8], at: usize, new: [u8; 16], delta: &mut Delta) {
    delta.replace_ipv6_addr(addr_at(b, at), new);
    b[at..at + 16].copy_from_slice(&new);
}

#[inline(always)]
fn addr_at(b: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

/// The value DPDK wants in the TCP/UDP checksum field when the NIC is to
/// finish it: the folded, not inverted, pseudo-header sum.
#[inline(always)]
pub(crate) fn pseudo_header_checksum(ip: &[u8; ipv4::MIN_HEADER_LEN], protocol: u8, l4_len: u16) -> u16 {
    let src = [ip[12], ip[13], ip[14], ip[15]];
    let dst = [ip[16], ip[17], ip[18], ip[19]];
    pseudo_header_checksum_of(src, dst, protocol, l4_len)
}

/// [`pseudo_header_checksum`] of the addresses in hand.
#[inline(always)]
fn pseudo_header_checksum_of(src: [u8; 4], dst: [u8; 4], protocol: u8, l4_len: u16) -> u16 {
    checksum::fold(checksum::pseudo_header_v4(src, dst, protocol, l4_len))
}

/// [`pseudo_header_checksum`] for IPv6 (RFC 8200 §8.1: the upper-layer
/// length, not the payload length, which counts extension headers too).
#[inline(always)]
pub(crate) fn pseudo_header_checksum_v6(ip: &[u8; ipv6::HEADER_LEN], protocol: u8, l4_len: u32) -> u16 {
    let (src, dst) = (addr_at(ip, ipv6::offset::SRC), addr_at(ip, ipv6::offset::DST));
    checksum::fold(checksum::pseudo_header_v6(src, dst, protocol, l4_len))
}

/// Records the transmit checksum request, or clears a stale one (a frame
/// rewritten twice, e.g. translated then tunnelled).
#[inline(always)]
pub(crate) fn request_offload<F: Frame>(frame: &mut F, meta: &Ipv4Meta, ipv4_checksum: bool, l4: L4Offload) {
    if ipv4_checksum || l4 != L4Offload::None {
        let l3_len = u16::from(meta.l3_len);
        frame.set_tx_offload(TxOffload { l2_len: meta.l2_len, l3_len, ipv4_checksum, ipv6: false, l4 });
    } else if frame.tx_offload() != TxOffload::default() {
        frame.set_tx_offload(TxOffload::default());
    }
}

/// [`request_offload`] for an IPv6 packet: only the layer-4 checksum is
/// asked for, `l3_len` spanning the extension headers.
#[inline(always)]
pub(crate) fn request_offload_v6<F: Frame>(frame: &mut F, meta: &Ipv6Meta, l4: L4Offload) {
    if l4 != L4Offload::None {
        frame.set_tx_offload(TxOffload {
            l2_len: meta.l2_len,
            l3_len: meta.l3_len,
            ipv4_checksum: false,
            ipv6: true,
            l4,
        });
    } else if frame.tx_offload() != TxOffload::default() {
        frame.set_tx_offload(TxOffload::default());
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Addresses, the packet builders of `wire::build`, and a
    //! full-recomputation checksum oracle shared by the rewrite tests.

    use super::*;
    use crate::frame::{BufFrame, Frame};
    use crate::wire::classify::{
        classify_bytes, classify_ipv6_bytes, verify_l4_checksum_v6, Classified, ClassifyPolicy,
    };
    use crate::wire::icmp::Icmpv4Packet;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::tcp::TcpPacket;
    use crate::wire::udp::UdpPacket;
    use std::net::Ipv6Addr;

    pub const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    pub const LIP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
    pub const RIP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 20);

    pub use crate::wire::build::{icmp_error, tcp_frame, udp_frame};

    pub fn meta_of(b: &[u8]) -> Ipv4Meta {
        match classify_bytes(
            b,
            Default::default(),
            ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true },
        ) {
            Ok(Classified::Ipv4(m)) => m,
            other => panic!("test packet does not classify: {other:?}"),
        }
    }

    /// Every checksum of an IPv4 frame verified by full recomputation: the
    /// IPv4 header, TCP/UDP with the pseudo-header, ICMP (and for ICMP
    /// errors, the quoted IPv4 header).
    pub fn assert_checksums_valid(b: &[u8]) {
        let ip = Ipv4Packet::new_checked(&b[14..]).expect("ipv4 header");
        assert!(ip.verify_checksum(), "ipv4 header checksum");
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        match ip.protocol() {
            ip_proto::TCP => {
                assert!(TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum(src, dst), "tcp checksum")
            }
            ip_proto::UDP => {
                assert!(UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum(src, dst), "udp checksum")
            }
            ip_proto::ICMP => {
                let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
                assert!(icmp.verify_checksum(), "icmp checksum");
                if icmp.is_error() {
                    let inner = Ipv4Packet::new_unchecked(icmp.data());
                    assert!(checksum::verify(&icmp.data()[..inner.header_len()], 0), "quoted ipv4 header checksum");
                }
            }
            ip_proto::IPIP => {
                let inner = Ipv4Packet::new_checked(ip.payload()).unwrap();
                assert!(inner.verify_checksum(), "inner ipv4 header checksum");
            }
            p => panic!("unexpected protocol {p}"),
        }
    }

    pub fn bytes(f: &BufFrame) -> Vec<u8> {
        f.data().to_vec()
    }

    pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x10);
    pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    pub const LIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0x16, 0, 0, 0, 1);
    pub const RIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0x16, 0, 0, 0, 0x20);

    pub use crate::wire::build::{tcp_frame_v6, udp_frame_v6};

    /// An IPv6 TCP frame as [`tcp_frame_v6`] builds it, with hop limit `hop`.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_frame_v6_hop(
        src: (Ipv6Addr, u16),
        dst: (Ipv6Addr, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        options: &[u8],
        payload: &[u8],
        hop: u8,
    ) -> Vec<u8> {
        let mut b = tcp_frame_v6(src, dst, seq, ack, flags, options, payload);
        b[14 + ipv6::offset::HOP_LIMIT] = hop;
        b
    }

    /// An IPv6 UDP frame as [`udp_frame_v6`] builds it, with hop limit `hop`.
    pub fn udp_frame_v6_hop(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), payload: &[u8], hop: u8) -> Vec<u8> {
        let mut b = udp_frame_v6(src, dst, payload);
        b[14 + ipv6::offset::HOP_LIMIT] = hop;
        b
    }

    pub fn meta_v6_of(b: &[u8]) -> Ipv6Meta {
        let policy = ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true };
        match classify_ipv6_bytes(b, Default::default(), policy) {
            Ok(m) => m,
            other => panic!("test packet does not classify: {other:?}"),
        }
    }

    /// The TCP or UDP checksum of an IPv6 frame verified by full
    /// recomputation with the pseudo-header of the addresses it carries.
    pub fn assert_checksums_valid_v6(b: &[u8]) {
        let policy = ClassifyPolicy { verify_ip_checksum: false, verify_l4_checksum: false };
        let meta = classify_ipv6_bytes(b, Default::default(), policy).expect("ipv6 frame");
        let l4 = &b[meta.l4_offset()..meta.l3_offset() + meta.ip_total_len()];
        assert!(matches!(meta.protocol, ip_proto::TCP | ip_proto::UDP), "protocol {}", meta.protocol);
        assert!(verify_l4_checksum_v6(&meta, l4), "layer-4 checksum over ipv6");
    }

    /// Asserts that two frames of one length differ only inside `fields`.
    pub fn assert_changed_only(before: &[u8], after: &[u8], fields: &[std::ops::Range<usize>]) {
        assert_eq!(before.len(), after.len());
        for i in (0..before.len()).filter(|&i| before[i] != after[i]) {
            assert!(fields.iter().any(|f| f.contains(&i)), "byte {i} changed: {:#04x} -> {:#04x}", before[i], after[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use crate::frame::{BufFrame, Frame};
    use crate::wire::build::{ipv4 as frame_v4, udp_frame};
    use crate::wire::ethernet::VlanTag;
    use crate::wire::tcp::{flags, TcpRepr};
    use crate::wire::udp::UdpRepr;

    /// A packet's ends as it arrives (from, to) and as it leaves (src, dst).
    type Leg = ((Ipv4Addr, u16), (Ipv4Addr, u16), (Ipv4Addr, u16), (Ipv4Addr, u16));

    /// Both FNAT directions.
    const FNAT_LEGS: [Leg; 2] = [
        ((CLIENT, 40000), (VIP, 80), (LIP, 5000), (RIP, 8080)),
        ((RIP, 8080), (LIP, 5000), (VIP, 80), (CLIENT, 40000)),
    ];

    /// The checksum offloads a port may have: none, all, each alone.
    const OFFLOADS: [Offload; 4] = [
        Offload::NONE,
        Offload::ALL,
        Offload { ipv4_checksum: true, ..Offload::NONE },
        Offload { tcp_checksum: true, udp_checksum: true, ..Offload::NONE },
    ];

    fn both_ends(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Translation {
        Translation::between((src.0.octets(), src.1), (dst.0.octets(), dst.1))
    }

    fn segment(from: (Ipv4Addr, u16), to: (Ipv4Addr, u16), ttl: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: from.1,
            dst_port: to.1,
            seq_number: 0x0102_0304,
            ack_number: 0xa0b0_c0d0,
            flags: flags::ACK | flags::PSH,
            window_len: 501,
            options,
            payload,
        };
        frame_v4(from.0, to.0).ttl(ttl).tcp(&tcp)
    }

    /// The common shape's rewrite gives the general one's bytes and answer:
    /// both FNAT directions, TTLs it takes and refuses (refused, the packet
    /// is untouched), software and offloaded checksums, with and without
    /// options and payload (the shape is the headers').
    #[test]
    fn the_plain_tcp_shape_is_translated_as_the_general_path_translates_it() {
        let bodies: [(&[u8], &[u8]); 3] =
            [(&[], &[]), (&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9], &[]), (&[], b"GET / HTTP/1.1\r\n")];
        for (from, to, src, dst) in FNAT_LEGS {
            let t = both_ends(src, dst);
            for ttl in [0, 1, 2, 64, 255] {
                for offload in OFFLOADS {
                    for (options, payload) in bodies {
                        let received = segment(from, to, ttl, options, payload);
                        let meta = meta_of(&received);
                        let mut general = received.clone();
                        let general_says = translate_bytes(&mut general, &meta, &t, offload, Unapplied::NONE);
                        let mut plain = received.clone();
                        let (packet, new) = plain_tcp(&mut plain, &meta, &t).expect("the plain shape");
                        let plain_says = translate_plain_tcp(packet, new, meta.l4_len, offload);
                        let case =
                            format!("{from:?} -> {to:?}, ttl {ttl}, {offload:?}, {} option bytes", options.len());
                        assert_eq!(plain_says, general_says, "{case}");
                        assert_eq!(plain, general, "{case}");
                        match plain_says {
                            Err(_) => assert_eq!(plain, received, "{case}: refused, untouched"),
                            Ok(L4Offload::None) if !offload.ipv4_checksum => assert_checksums_valid(&plain),
                            Ok(_) => {}
                        }
                    }
                }
            }
        }
    }

    /// A frame translated to both new ends and addressed in one pass
    /// ([`translate_and_address`], FNAT's lane) is the frame the general
    /// translation, then the Ethernet addresses, give; with the transmit
    /// offload [`translate`] requests. The plain shape and the others
    /// (options, a tagged frame, UDP with and without a checksum), both
    /// FNAT directions, TTLs taken and refused (refused, the frame is
    /// untouched), every offload.
    #[test]
    fn translating_and_addressing_in_one_pass_is_the_general_translation_then_the_addresses() {
        let macs = EthAddrs([2, 0, 0, 0, 0, 0xa, 2, 0, 0, 0, 0, 0xb]);
        let tag = VlanTag { pcp: 0, dei: false, vid: 100 };
        for (from, to, src, dst) in FNAT_LEGS {
            let new = WireEnds::between((src.0.octets(), src.1), (dst.0.octets(), dst.1));
            let t = both_ends(src, dst);
            let ends = |t: &Translation| (t.src, t.dst);
            assert_eq!(ends(&new.translation()), ends(&t), "the same ends in both terms");
            for ttl in [0, 1, 2, 64] {
                let tcp = TcpRepr {
                    src_port: from.1,
                    dst_port: to.1,
                    seq_number: 7,
                    ack_number: 9,
                    flags: flags::ACK,
                    window_len: 501,
                    options: &[],
                    payload: b"data",
                };
                let udp = UdpRepr { src_port: from.1, dst_port: to.1, payload: b"q" };
                let frames = [
                    ("plain", segment(from, to, ttl, &[], b"GET / HTTP/1.1\r\n")),
                    ("options", segment(from, to, ttl, &[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9], &[])),
                    ("tagged", frame_v4(from.0, to.0).vlan(tag).ttl(ttl).tcp(&tcp)),
                    ("udp", frame_v4(from.0, to.0).ttl(ttl).udp(&udp, true)),
                    ("udp without a checksum", frame_v4(from.0, to.0).ttl(ttl).udp(&udp, false)),
                ];
                for (shape, received) in frames {
                    for offload in OFFLOADS {
                        let case = format!("{shape}, {from:?} -> {to:?}, ttl {ttl}, {offload:?}");
                        let meta = meta_of(&received);
                        let mut general = received.clone();
                        let general_says = translate_bytes(&mut general, &meta, &t, offload, Unapplied::NONE);
                        let mut frame = BufFrame::new(&received);
                        let says = translate_and_address(&mut frame, &meta, offload, new, &macs);
                        assert_eq!(says, general_says.map(|_| ()), "{case}");
                        let Ok(l4) = general_says else {
                            assert_eq!(frame.data(), &received[..], "{case}: refused, untouched");
                            continue;
                        };
                        general[..12].copy_from_slice(&macs.0);
                        assert_eq!(frame.data(), &general[..], "{case}");
                        let asked = offload.ipv4_checksum || l4 != L4Offload::None;
                        let expected = TxOffload {
                            l2_len: meta.l2_len,
                            l3_len: meta.l3_len.into(),
                            ipv4_checksum: offload.ipv4_checksum,
                            ipv6: false,
                            l4,
                        };
                        assert_eq!(frame.tx_offload(), if asked { expected } else { TxOffload::default() }, "{case}");
                        if !asked && shape != "tagged" {
                            assert_checksums_valid(frame.data());
                        }
                    }
                }
            }
        }
    }

    /// Every other shape takes the general path: a tagged frame, UDP, a
    /// translation that shifts sequence numbers or clamps the MSS, or that
    /// replaces one end only (NAT).
    #[test]
    fn other_shapes_are_not_taken_for_the_plain_one() {
        let (from, to) = ((CLIENT, 40000), (VIP, 80));
        let t = both_ends((LIP, 5000), (RIP, 8080));
        let plain_takes = |mut frame: Vec<u8>, t: &Translation| {
            let meta = meta_of(&frame);
            plain_tcp(&mut frame, &meta, t).is_some()
        };
        assert!(plain_takes(segment(from, to, 64, &[], &[]), &t));
        let tag = VlanTag { pcp: 0, dei: false, vid: 100 };
        let tcp = TcpRepr {
            src_port: from.1,
            dst_port: to.1,
            seq_number: 1,
            ack_number: 1,
            flags: flags::ACK,
            window_len: 501,
            options: &[],
            payload: &[],
        };
        assert!(!plain_takes(frame_v4(from.0, to.0).vlan(tag).tcp(&tcp), &t), "tagged");
        assert!(!plain_takes(udp_frame(from, to, b"q", true), &t), "UDP");
        let segment = segment(from, to, 64, &[], &[]);
        for (shifted, what) in [
            (Translation { seq_delta: 1, ..both_ends((LIP, 5000), (RIP, 8080)) }, "seq"),
            (Translation { ack_delta: 1, ..both_ends((LIP, 5000), (RIP, 8080)) }, "ack"),
            (Translation { tsval_delta: 1, ..both_ends((LIP, 5000), (RIP, 8080)) }, "tsval"),
            (Translation { tsecr_delta: 1, ..both_ends((LIP, 5000), (RIP, 8080)) }, "tsecr"),
            (Translation { mss_clamp: Some(1400), ..both_ends((LIP, 5000), (RIP, 8080)) }, "mss"),
            (Translation { decrement_ttl: false, ..both_ends((LIP, 5000), (RIP, 8080)) }, "ttl kept"),
            (Translation { src: None, ..both_ends((LIP, 5000), (RIP, 8080)) }, "NAT in"),
            (Translation { dst: None, ..both_ends((LIP, 5000), (RIP, 8080)) }, "NAT out"),
        ] {
            assert!(!plain_takes(segment.clone(), &shifted), "{what}");
        }
    }
}
