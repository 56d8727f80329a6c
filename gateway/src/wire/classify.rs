//! One pass over a received frame: what it is, where its layers start, the
//! flow it belongs to, or why it cannot be forwarded.
//!
//! This is the only parser on the per-packet path. It reads each header once,
//! checks every length the rewrites will rely on, and returns the offsets in
//! an [`Ipv4Meta`] so nothing is parsed twice. It deliberately does not use
//! the typed views: they re-derive lengths on every getter, which costs
//! instructions on a path with a budget of ~150 per packet. The views are the
//! reference the tests compare this pass against.
//!
//! What is checked, in order (the first failure wins and is the drop reason):
//! Ethernet header (one optional 802.1Q tag), EtherType, IPv4 version, IHL,
//! total length, header checksum (unless the NIC already said good, or the
//! policy skips it), fragments (dropped and counted, as DPVS does: a director
//! without reassembly cannot find the connection of a non-first fragment),
//! the layer-4 header and its lengths, and the layer-4 checksum when the
//! policy asks for software verification. TTL expiry is not decided here:
//! only a packet the gateway forwards as a router hop has its TTL
//! decremented, and only the rewrite knows that (see `xmit`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use super::icmp::Icmpv4Packet;
use super::icmpv6::Icmpv6Packet;
use super::tcp::TcpPacket;
use super::udp::UdpPacket;
use super::{ip_proto, ipv6, Error};
use crate::frame::{ChecksumStatus, Frame, RxChecksum};

/// Why a packet was not forwarded. Per-worker drop counters are an array
/// indexed by `reason as usize`; [`DropReason::ALL`] lists every reason in
/// index order and [`DropReason::name`] gives its stable metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Fewer bytes than a header needs.
    Truncated = 0,
    /// Neither IPv4 nor ARP (IPv6, QinQ, anything else).
    UnsupportedEthertype,
    /// IP version nibble is not 4 on an IPv4 EtherType (or 6 on an IPv6 one).
    BadIpVersion,
    /// IHL below 5 or beyond the bytes present.
    BadIhl,
    /// Total length below the header length or beyond the bytes present.
    BadTotalLength,
    /// IPv4 header checksum wrong (NIC or software verification).
    BadIpChecksum,
    /// An IPv4 fragment, or an IPv6 one (other than an atomic fragment):
    /// not reassembled, dropped and counted.
    Fragment,
    /// Not TCP, UDP or ICMP.
    UnknownProtocol,
    /// TCP data offset below 5 or beyond the segment.
    BadTcpHeader,
    /// UDP length field below 8 or beyond the datagram.
    BadUdpLength,
    /// TCP, UDP or ICMP checksum wrong (NIC or software verification).
    BadL4Checksum,
    /// An ICMP error whose quoted datagram is too short or not IPv4.
    BadIcmpQuote,
    /// TTL would reach zero at this hop; an ICMP time exceeded is due.
    TtlExpired,
    /// The rewritten packet would exceed the egress MTU.
    MtuExceeded,
    /// The frame has no headroom or tailroom for the rewrite.
    NoRoom,
    /// The rewrite does not apply to this packet (address family or protocol
    /// the mode cannot translate).
    NotRewritable,
    /// IPv6 payload length beyond the bytes present.
    BadPayloadLength,
    /// An IPv6 extension header running past the payload, or hop-by-hop
    /// options anywhere but first.
    BadExtensionHeader,
    /// More IPv6 extension headers than are walked
    /// ([`super::ipv6::MAX_EXT_HEADERS`]).
    TooManyExtensionHeaders,
}

impl DropReason {
    /// Number of reasons: the length of a per-reason counter array.
    pub const COUNT: usize = 19;

    /// Every reason, in index order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::Truncated,
        DropReason::UnsupportedEthertype,
        DropReason::BadIpVersion,
        DropReason::BadIhl,
        DropReason::BadTotalLength,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::UnknownProtocol,
        DropReason::BadTcpHeader,
        DropReason::BadUdpLength,
        DropReason::BadL4Checksum,
        DropReason::BadIcmpQuote,
        DropReason::TtlExpired,
        DropReason::MtuExceeded,
        DropReason::NoRoom,
        DropReason::NotRewritable,
        DropReason::BadPayloadLength,
        DropReason::BadExtensionHeader,
        DropReason::TooManyExtensionHeaders,
    ];

    /// Index into a per-reason counter array.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name, for counters and exporters.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::BadIpVersion => "bad_ip_version",
            DropReason::BadIhl => "bad_ihl",
            DropReason::BadTotalLength => "bad_total_length",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::Fragment => "fragment",
            DropReason::UnknownProtocol => "unknown_protocol",
            DropReason::BadTcpHeader => "bad_tcp_header",
            DropReason::BadUdpLength => "bad_udp_length",
            DropReason::BadL4Checksum => "bad_l4_checksum",
            DropReason::BadIcmpQuote => "bad_icmp_quote",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::NoRoom => "no_room",
            DropReason::NotRewritable => "not_rewritable",
            DropReason::BadPayloadLength => "bad_payload_length",
            DropReason::BadExtensionHeader => "bad_extension_header",
            DropReason::TooManyExtensionHeaders => "too_many_extension_headers",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What software verifies when the NIC did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifyPolicy {
    /// Verify the IPv4 header checksum (20-60 bytes: cheap; DPVS does it).
    pub verify_ip_checksum: bool,
    /// Verify TCP/UDP/ICMP checksums over the whole payload. Off by default:
    /// incremental rewrites carry a wrong checksum through unchanged, so the
    /// real server or client still rejects a corrupted packet, as with Linux
    /// IPVS. Turn it on when the ports fill checksums by TX offload (which
    /// would otherwise launder corruption) and the NIC cannot verify on RX.
    pub verify_l4_checksum: bool,
}

impl Default for ClassifyPolicy {
    fn default() -> Self {
        ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: false }
    }
}

/// Where an IPv4 packet's layers are and the flow it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Meta {
    /// Ethernet header length, 14 or 18: the offset of the IPv4 header.
    pub l2_len: u8,
    /// IPv4 header length, options included.
    pub l3_len: u8,
    /// Bytes from the layer-4 header to the end of the IPv4 total length.
    pub l4_len: u16,
    pub protocol: u8,
    pub ttl: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// TCP/UDP source port; the identifier of an ICMP echo; 0 for other ICMP.
    pub src_port: u16,
    /// TCP/UDP destination port; the identifier of an ICMP echo (so a reply
    /// matches the request's tuple reversed); 0 for other ICMP.
    pub dst_port: u16,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMP type and code (0 for other protocols).
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl Ipv4Meta {
    /// Offset of the IPv4 header in the frame.
    pub fn l3_offset(&self) -> usize {
        usize::from(self.l2_len)
    }
    /// Offset of the layer-4 header in the frame.
    pub fn l4_offset(&self) -> usize {
        usize::from(self.l2_len) + usize::from(self.l3_len)
    }
    /// The IPv4 total length.
    pub fn ip_total_len(&self) -> usize {
        usize::from(self.l3_len) + usize::from(self.l4_len)
    }
    /// The flow tuple, as the packet carries it.
    pub fn tuple(&self) -> FlowTuple {
        FlowTuple {
            protocol: self.protocol,
            src: IpAddr::V4(self.src),
            src_port: self.src_port,
            dst: IpAddr::V4(self.dst),
            dst_port: self.dst_port,
        }
    }
    /// True for an ICMP error the gateway relays to its connection.
    pub fn is_icmp_error(&self) -> bool {
        self.protocol == ip_proto::ICMP && super::icmp::is_relayed_error(self.icmp_type)
    }
    /// True for a TCP segment that opens a handshake: SYN without ACK or RST.
    #[inline(always)]
    pub fn is_bare_syn(&self) -> bool {
        opens_handshake(self.protocol, self.tcp_flags)
    }
}

/// Whether a segment of `protocol` with `tcp_flags` opens a TCP handshake:
/// SYN without ACK or RST. What both families' [`Ipv4Meta::is_bare_syn`]
/// and [`Ipv6Meta::is_bare_syn`] ask.
#[inline(always)]
fn opens_handshake(protocol: u8, tcp_flags: u8) -> bool {
    use super::tcp::flags::{ACK, RST, SYN};
    protocol == ip_proto::TCP && tcp_flags & (SYN | ACK | RST) == SYN
}

/// A transport flow, address-family neutral: the connection table's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    pub protocol: u8,
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
}

impl FlowTuple {
    /// The tuple of the other direction.
    pub fn reversed(&self) -> FlowTuple {
        FlowTuple {
            protocol: self.protocol,
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
        }
    }
}

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// An Ethernet/any ARP packet whose fixed header is present, for the
    /// neighbour code (which parses it with `wire::arp`).
    Arp {
        l2_len: u8,
    },
    Ipv4(Ipv4Meta),
    Ipv6(Ipv6Meta),
}

/// Classifies a received frame, taking the NIC's checksum verdicts into
/// account. Inlined whole into the worker loop: it is the first thing done
/// to every packet, and its result is consumed right there.
#[inline(always)]
pub fn classify<F: Frame>(frame: &F, policy: ClassifyPolicy) -> Result<Classified, DropReason> {
    classify_bytes(frame.data(), frame.rx_checksum(), policy)
}

/// [`classify`] for the frame nearly every packet is, untagged IPv4: its
/// meta, or why it is dropped; `None` for any other frame, which
/// [`classify`] takes. The worker's stages try it first, so that the meta
/// is at hand for the flow's hash rather than inside a [`Classified`] (the
/// enum was copied twice on the way: 19 instructions an established
/// packet, `measure_pipeline.sh`); through [`classify_plain_ipv4`] instead,
/// a staged established packet took 16 instructions more.
#[inline(always)]
pub fn classify_untagged_ipv4<F: Frame>(frame: &F, policy: ClassifyPolicy) -> Option<Result<Ipv4Meta, DropReason>> {
    untagged_ipv4(frame.data(), frame.rx_checksum(), policy)
}

/// The meta of a frame that is what nearly every packet is, a plain IPv4
/// flow packet ([`plain_ipv4`]: untagged, no IP options, not a fragment, TCP
/// or UDP, well formed); `None` for any other frame, good or bad, which
/// [`classify`] takes. The worker's packet-by-packet loop tries it first: a
/// meta with no reason beside it reaches the dispatch without being copied
/// (`measure_pipeline.sh`: an established packet 13 instructions fewer, a
/// proxied SYN 20, than through [`classify_untagged_ipv4`]).
#[inline(always)]
pub fn classify_plain_ipv4<F: Frame>(frame: &F, policy: ClassifyPolicy) -> Option<Ipv4Meta> {
    let (eth, after_eth) = frame.data().split_first_chunk::<14>()?;
    if [eth[12], eth[13]] != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    plain_ipv4(after_eth, 14, frame.rx_checksum(), policy)
}

/// [`classify_untagged_ipv4`] over plain bytes. The ethertype is compared as
/// wire bytes (no byte swap): the path nearly every packet takes is one
/// comparison long.
#[inline(always)]
fn untagged_ipv4(data: &[u8], rx: RxChecksum, policy: ClassifyPolicy) -> Option<Result<Ipv4Meta, DropReason>> {
    let (eth, after_eth) = data.split_first_chunk::<14>()?;
    if [eth[12], eth[13]] != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    Some(classify_ipv4(after_eth, 14, rx, policy))
}

/// [`classify`] over plain bytes with an explicit receive checksum state.
#[inline(always)]
pub fn classify_bytes(data: &[u8], rx: RxChecksum, policy: ClassifyPolicy) -> Result<Classified, DropReason> {
    let Some((eth, after_eth)) = data.split_first_chunk::<14>() else { return Err(DropReason::Truncated) };
    // Untagged IPv4 first, as in `untagged_ipv4` (written out again: called
    // here, the worker's loop came out 5 instructions an established packet
    // longer).
    let ethertype = [eth[12], eth[13]];
    if ethertype == ETHERTYPE_IPV4.to_be_bytes() {
        return classify_ipv4(after_eth, 14, rx, policy).map(Classified::Ipv4);
    }
    let (ethertype, l2_len, after_l2) = if ethertype == ETHERTYPE_VLAN.to_be_bytes() {
        let Some((tag, after_tag)) = after_eth.split_first_chunk::<4>() else { return Err(DropReason::Truncated) };
        if [tag[2], tag[3]] == ETHERTYPE_IPV4.to_be_bytes() {
            return classify_ipv4(after_tag, 18, rx, policy).map(Classified::Ipv4);
        }
        (u16::from_be_bytes([tag[2], tag[3]]), 18, after_tag)
    } else {
        (u16::from_be_bytes(ethertype), 14, after_eth)
    };
    match ethertype {
        ETHERTYPE_IPV6 => classify_ipv6_header(after_l2, l2_len, rx, policy).map(Classified::Ipv6),
        ETHERTYPE_ARP if after_l2.len() >= super::arp::PACKET_LEN => Ok(Classified::Arp { l2_len }),
        ETHERTYPE_ARP => Err(DropReason::Truncated),
        _ => Err(DropReason::UnsupportedEthertype),
    }
}

/// What differs between the families at layer 4: ICMP's protocol number and
/// echo types, whether UDP must carry a checksum (RFC 8200 §8.1), and the
/// meta the fields go into.
trait L4Family {
    const ICMP: u8;
    const ECHO_REQUEST: u8;
    const ECHO_REPLY: u8;
    const UDP_CHECKSUM_MANDATORY: bool;
    type Meta;
    fn set_ports(meta: &mut Self::Meta, src: u16, dst: u16);
    fn set_tcp_flags(meta: &mut Self::Meta, flags: u8);
    fn set_icmp(meta: &mut Self::Meta, kind: u8, code: u8);
}

struct Family4;
struct Family6;

impl L4Family for Family4 {
    const ICMP: u8 = ip_proto::ICMP;
    const ECHO_REQUEST: u8 = super::icmp::msg_type::ECHO_REQUEST;
    const ECHO_REPLY: u8 = super::icmp::msg_type::ECHO_REPLY;
    const UDP_CHECKSUM_MANDATORY: bool = false;
    type Meta = Ipv4Meta;
    #[inline(always)]
    fn set_ports(meta: &mut Ipv4Meta, src: u16, dst: u16) {
        (meta.src_port, meta.dst_port) = (src, dst);
    }
    #[inline(always)]
    fn set_tcp_flags(meta: &mut Ipv4Meta, flags: u8) {
        meta.tcp_flags = flags;
    }
    #[inline(always)]
    fn set_icmp(meta: &mut Ipv4Meta, kind: u8, code: u8) {
        (meta.icmp_type, meta.icmp_code) = (kind, code);
    }
}

impl L4Family for Family6 {
    const ICMP: u8 = ip_proto::ICMPV6;
    const ECHO_REQUEST: u8 = super::icmpv6::msg_type::ECHO_REQUEST;
    const ECHO_REPLY: u8 = super::icmpv6::msg_type::ECHO_REPLY;
    const UDP_CHECKSUM_MANDATORY: bool = true;
    type Meta = Ipv6Meta;
    #[inline(always)]
    fn set_ports(meta: &mut Ipv6Meta, src: u16, dst: u16) {
        (meta.src_port, meta.dst_port) = (src, dst);
    }
    #[inline(always)]
    fn set_tcp_flags(meta: &mut Ipv6Meta, flags: u8) {
        meta.tcp_flags = flags;
    }
    #[inline(always)]
    fn set_icmp(meta: &mut Ipv6Meta, kind: u8, code: u8) {
        (meta.icmp_type, meta.icmp_code) = (kind, code);
    }
}

/// Reads and checks the layer-4 header of `protocol` at the start of `l4`
/// (the bytes up to the end of the IP packet) into `meta`: TCP/UDP ports and
/// TCP flags, ICMP type and code and an echo's identifier (as both ports, so
/// a reply matches the request's tuple reversed).
#[inline(always)]
fn layer4<F: L4Family>(meta: &mut F::Meta, l4: &[u8], protocol: u8) -> Result<(), DropReason> {
    match protocol {
        ip_proto::TCP => {
            let Some(t) = l4.first_chunk::<20>() else { return Err(DropReason::Truncated) };
            let data_offset = usize::from(t[12] >> 4) * 4;
            if data_offset < 20 || data_offset > l4.len() {
                return Err(DropReason::BadTcpHeader);
            }
            F::set_ports(meta, u16::from_be_bytes([t[0], t[1]]), u16::from_be_bytes([t[2], t[3]]));
            F::set_tcp_flags(meta, t[13]);
        }
        ip_proto::UDP => {
            let Some(u) = l4.first_chunk::<8>() else { return Err(DropReason::Truncated) };
            let udp_len = usize::from(u16::from_be_bytes([u[4], u[5]]));
            if udp_len < 8 || udp_len > l4.len() {
                return Err(DropReason::BadUdpLength);
            }
            if F::UDP_CHECKSUM_MANDATORY && u[6] | u[7] == 0 {
                return Err(DropReason::BadL4Checksum);
            }
            F::set_ports(meta, u16::from_be_bytes([u[0], u[1]]), u16::from_be_bytes([u[2], u[3]]));
        }
        p if p == F::ICMP => {
            let Some(i) = l4.first_chunk::<8>() else { return Err(DropReason::Truncated) };
            F::set_icmp(meta, i[0], i[1]);
            if i[0] == F::ECHO_REQUEST || i[0] == F::ECHO_REPLY {
                let ident = u16::from_be_bytes([i[4], i[5]]);
                F::set_ports(meta, ident, ident);
            }
        }
        _ => return Err(DropReason::UnknownProtocol),
    }
    Ok(())
}

/// The meta of the IPv4 packet `ip` (the bytes from its header on, `l2_len`
/// past the frame's start), or why it is dropped.
#[inline(always)]
fn classify_ipv4(ip: &[u8], l2_len: u8, rx: RxChecksum, policy: ClassifyPolicy) -> Result<Ipv4Meta, DropReason> {
    match plain_ipv4(ip, l2_len, rx, policy) {
        Some(meta) => Ok(meta),
        None => classify_any_ipv4(ip, l2_len, rx, policy),
    }
}

/// [`classify_ipv4`] for the packet nearly every one is: no IP options, not
/// a fragment, TCP or UDP, and good (the checks and the checksum policy of
/// [`classify_any_ipv4`]); `None` for any other, good or bad, which
/// `classify_any_ipv4` then takes and says why it drops. A failed check
/// needs no reason here: with one, the compiler wrote each check's reason
/// into a register before the check, on the path every packet takes
/// (`measure_pipeline.sh`: a staged established packet 39 instructions
/// fewer with this path first). A property test holds the two to the same
/// answers.
#[inline(always)]
fn plain_ipv4(ip: &[u8], l2_len: u8, rx: RxChecksum, policy: ClassifyPolicy) -> Option<Ipv4Meta> {
    let (h, _) = ip.split_first_chunk::<20>()?;
    if h[0] != 0x45 {
        return None;
    }
    let l4 = ip.get(20..usize::from(u16::from_be_bytes([h[2], h[3]])))?;
    let header_good = match rx.ip {
        ChecksumStatus::Bad => false,
        ChecksumStatus::Unknown if policy.verify_ip_checksum => checksum::verify_ipv4_header_parts(h, &[]),
        _ => true,
    };
    if !header_good || (h[6] & 0x3f) | h[7] != 0 {
        return None;
    }
    let protocol = h[9];
    // `layer4`'s checks written again without reasons: through `layer4`,
    // its reasons discarded, an established packet took 7 instructions more,
    // a new IPv6 connection 43 (`measure_pipeline.sh`).
    let (src_port, dst_port, tcp_flags) = match protocol {
        ip_proto::TCP => {
            let t = l4.first_chunk::<20>()?;
            let data_offset = usize::from(t[12] >> 4) * 4;
            if data_offset < 20 || data_offset > l4.len() {
                return None;
            }
            (u16::from_be_bytes([t[0], t[1]]), u16::from_be_bytes([t[2], t[3]]), t[13])
        }
        ip_proto::UDP => {
            let u = l4.first_chunk::<8>()?;
            let udp_len = usize::from(u16::from_be_bytes([u[4], u[5]]));
            if udp_len < 8 || udp_len > l4.len() {
                return None;
            }
            (u16::from_be_bytes([u[0], u[1]]), u16::from_be_bytes([u[2], u[3]]), 0)
        }
        _ => return None,
    };
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    // Tested before the meta is built, so that it is built where it is
    // returned (tested on the meta, it was built, then copied).
    if l4_checksum_refused(protocol, (src, dst), l4, rx, policy) {
        return None;
    }
    Some(Ipv4Meta {
        l2_len,
        l3_len: 20,
        l4_len: l4.len() as u16,
        protocol,
        ttl: h[8],
        src,
        dst,
        src_port,
        dst_port,
        tcp_flags,
        icmp_type: 0,
        icmp_code: 0,
    })
}

/// Whether the layer-4 checksum of a packet of `protocol` between `addrs`
/// (source, destination) refuses it: the NIC found it bad, or the policy
/// asks for a software check the NIC did not make, and the sum is wrong.
/// The policy is tested first: off (the default), a packet the NIC did not
/// find bad takes one test less.
#[inline(always)]
fn l4_checksum_refused(
    protocol: u8,
    addrs: (Ipv4Addr, Ipv4Addr),
    l4: &[u8],
    rx: RxChecksum,
    policy: ClassifyPolicy,
) -> bool {
    let unverified = policy.verify_l4_checksum && rx.l4 == ChecksumStatus::Unknown;
    rx.l4 == ChecksumStatus::Bad || unverified && !verify_l4_checksum(protocol, addrs, l4)
}

/// [`classify_ipv4`] for any packet, with the reason of a drop: IP options,
/// ICMP, and the packets [`plain_ipv4`] refuses. Out of line, so that the
/// loops that classify hold one copy of it.
#[cold]
#[inline(never)]
fn classify_any_ipv4(ip: &[u8], l2_len: u8, rx: RxChecksum, policy: ClassifyPolicy) -> Result<Ipv4Meta, DropReason> {
    let Some((h, after_fixed)) = ip.split_first_chunk::<20>() else { return Err(DropReason::Truncated) };
    // Nearly every packet has no IP options: one comparison settles version
    // and IHL for them.
    let header_len = if h[0] == 0x45 {
        20
    } else {
        if h[0] >> 4 != 4 {
            return Err(DropReason::BadIpVersion);
        }
        let header_len = usize::from(h[0] & 0x0f) * 4;
        if header_len < 20 || header_len > ip.len() {
            return Err(DropReason::BadIhl);
        }
        header_len
    };
    let total_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // header_len <= total_len <= ip.len(), tested by taking the layer-4 bytes
    // (tested apart, the bounds were tested again where they were taken).
    let Some(l4) = ip.get(header_len..total_len) else { return Err(DropReason::BadTotalLength) };
    match rx.ip {
        ChecksumStatus::Bad => return Err(DropReason::BadIpChecksum),
        ChecksumStatus::Unknown if policy.verify_ip_checksum => {
            let options = after_fixed.get(..header_len - 20).unwrap_or(&[]);
            if !checksum::verify_ipv4_header_parts(h, options) {
                return Err(DropReason::BadIpChecksum);
            }
        }
        _ => {}
    }
    // MF set or a non-zero offset.
    if (h[6] & 0x3f) | h[7] != 0 {
        return Err(DropReason::Fragment);
    }
    let protocol = h[9];
    let src = Ipv4Addr::new(h[12], h[13], h[14], h[15]);
    let dst = Ipv4Addr::new(h[16], h[17], h[18], h[19]);
    let mut meta = Ipv4Meta {
        l2_len,
        l3_len: header_len as u8,
        l4_len: l4.len() as u16,
        protocol,
        ttl: h[8],
        src,
        dst,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
    };
    layer4::<Family4>(&mut meta, l4, protocol)?;
    if l4_checksum_refused(protocol, (src, dst), l4, rx, policy) {
        return Err(DropReason::BadL4Checksum);
    }
    Ok(meta)
}

/// Full software verification of the layer-4 checksum of a packet of
/// `protocol` between `(src, dst)` (`l4` is its layer-4 bytes up to the IPv4
/// total length).
fn verify_l4_checksum(protocol: u8, (src, dst): (Ipv4Addr, Ipv4Addr), l4: &[u8]) -> bool {
    match protocol {
        ip_proto::TCP => TcpPacket::new_checked(l4).is_ok_and(|p| p.verify_checksum(src, dst)),
        ip_proto::UDP => UdpPacket::new_checked(l4).is_ok_and(|p| p.verify_checksum(src, dst)),
        ip_proto::ICMP => Icmpv4Packet::new_checked(l4).is_ok_and(|p| p.verify_checksum()),
        _ => false,
    }
}

/// Where an IPv6 packet's layers are and the flow it belongs to: the IPv6
/// counterpart of [`Ipv4Meta`], from [`classify_ipv6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Meta {
    /// Ethernet header length, 14 or 18: the offset of the IPv6 header.
    pub l2_len: u8,
    /// The fixed header and the extension headers: the offset of the
    /// layer-4 header from the IPv6 header.
    pub l3_len: u16,
    /// Bytes from the layer-4 header to the end of the IPv6 payload length.
    pub l4_len: u16,
    /// The upper-layer protocol, past any extension headers.
    pub protocol: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// TCP/UDP source port; the identifier of an ICMPv6 echo; 0 for other
    /// ICMPv6.
    pub src_port: u16,
    /// TCP/UDP destination port; the identifier of an ICMPv6 echo; 0 for
    /// other ICMPv6.
    pub dst_port: u16,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// ICMPv6 type and code (0 for other protocols).
    pub icmp_type: u8,
    pub icmp_code: u8,
}

impl Ipv6Meta {
    /// Offset of the IPv6 header in the frame.
    pub fn l3_offset(&self) -> usize {
        usize::from(self.l2_len)
    }
    /// True for a TCP segment that opens a handshake: SYN without ACK or RST.
    #[inline(always)]
    pub fn is_bare_syn(&self) -> bool {
        opens_handshake(self.protocol, self.tcp_flags)
    }
    /// Offset of the layer-4 header in the frame.
    pub fn l4_offset(&self) -> usize {
        usize::from(self.l2_len) + usize::from(self.l3_len)
    }
    /// The fixed header plus the payload length.
    pub fn ip_total_len(&self) -> usize {
        usize::from(self.l3_len) + usize::from(self.l4_len)
    }
    /// The flow tuple, as the packet carries it.
    pub fn tuple(&self) -> FlowTuple {
        FlowTuple {
            protocol: self.protocol,
            src: IpAddr::V6(self.src),
            src_port: self.src_port,
            dst: IpAddr::V6(self.dst),
            dst_port: self.dst_port,
        }
    }
    /// True for an ICMPv6 error the gateway relays to its connection.
    pub fn is_icmp_error(&self) -> bool {
        self.protocol == ip_proto::ICMPV6 && super::icmpv6::is_relayed_error(self.icmp_type)
    }
}

/// Classifies an IPv6 frame (untagged or with one 802.1Q tag) as
/// [`classify`] does an IPv4 one: the fixed header, the payload length, the
/// extension headers (walked by [`ipv6::upper_layer`]: fragments dropped
/// and counted as IPv4 ones are), the layer-4 header and its lengths, and
/// the layer-4 checksum when the NIC says bad or the policy asks for
/// software verification. A UDP datagram without a checksum is dropped
/// whatever the policy: over IPv6 the checksum is mandatory (RFC 8200
/// §8.1), and reading it costs nothing. Hop-limit expiry is the rewrite's
/// to decide, as TTL expiry is.
/// [`classify`] gives the same result as [`Classified::Ipv6`].
#[inline(always)]
pub fn classify_ipv6<F: Frame>(frame: &F, policy: ClassifyPolicy) -> Result<Ipv6Meta, DropReason> {
    classify_ipv6_bytes(frame.data(), frame.rx_checksum(), policy)
}

/// [`classify_untagged_ipv4`] for IPv6: `None` unless the frame is untagged
/// IPv6, else what [`classify`] says of it, as its meta.
#[inline(always)]
pub fn classify_untagged_ipv6<F: Frame>(frame: &F, policy: ClassifyPolicy) -> Option<Result<Ipv6Meta, DropReason>> {
    let (eth, after_eth) = frame.data().split_first_chunk::<14>()?;
    if [eth[12], eth[13]] != ETHERTYPE_IPV6.to_be_bytes() {
        return None;
    }
    Some(classify_ipv6_header(after_eth, 14, frame.rx_checksum(), policy))
}

/// [`classify_ipv6`] over plain bytes with an explicit receive checksum state.
#[inline(always)]
pub fn classify_ipv6_bytes(data: &[u8], rx: RxChecksum, policy: ClassifyPolicy) -> Result<Ipv6Meta, DropReason> {
    let Some((eth, after_eth)) = data.split_first_chunk::<14>() else { return Err(DropReason::Truncated) };
    let (ethertype, l2_len, ip) = if [eth[12], eth[13]] == ETHERTYPE_VLAN.to_be_bytes() {
        let Some((tag, after_tag)) = after_eth.split_first_chunk::<4>() else { return Err(DropReason::Truncated) };
        ([tag[2], tag[3]], 18, after_tag)
    } else {
        ([eth[12], eth[13]], 14, after_eth)
    };
    if ethertype != ETHERTYPE_IPV6.to_be_bytes() {
        return Err(DropReason::UnsupportedEthertype);
    }
    classify_ipv6_header(ip, l2_len, rx, policy)
}

/// [`classify_ipv6_bytes`] from the IPv6 header on (`ip`), the layer-2
/// header being `l2_len` bytes.
#[inline(always)]
fn classify_ipv6_header(ip: &[u8], l2_len: u8, rx: RxChecksum, policy: ClassifyPolicy) -> Result<Ipv6Meta, DropReason> {
    let Some((h, after_fixed)) = ip.split_first_chunk::<{ ipv6::HEADER_LEN }>() else {
        return Err(DropReason::Truncated);
    };
    if h[0] >> 4 != 6 {
        return Err(DropReason::BadIpVersion);
    }
    let payload_len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let Some(payload) = after_fixed.get(..payload_len) else { return Err(DropReason::BadPayloadLength) };
    // Nearly every packet has no extension headers: one comparison settles
    // it for them, and the walk stays out of line.
    let (protocol, ext_len, l4) = match h[6] {
        ip_proto::TCP | ip_proto::UDP | ip_proto::ICMPV6 => (h[6], 0, payload),
        first => {
            let (protocol, ext_len) = walk_extension_headers(first, payload)?;
            // The walk ended within the payload.
            (protocol, ext_len, payload.get(ext_len..).ok_or(DropReason::BadExtensionHeader)?)
        }
    };
    // At most MAX_EXT_HEADERS headers of at most 2048 bytes: l3_len fits.
    let mut meta = Ipv6Meta {
        l2_len,
        l3_len: (ipv6::HEADER_LEN + ext_len) as u16,
        l4_len: l4.len() as u16,
        protocol,
        hop_limit: h[7],
        src: Ipv6Addr::from(ipv6::addr_at(h, 8)),
        dst: Ipv6Addr::from(ipv6::addr_at(h, 24)),
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
    };
    layer4::<Family6>(&mut meta, l4, protocol)?;
    // The policy first: off (the default), a packet the NIC did not find
    // bad takes one test less.
    let unverified = policy.verify_l4_checksum && rx.l4 == ChecksumStatus::Unknown;
    if rx.l4 == ChecksumStatus::Bad || unverified && !verify_l4_checksum_v6(&meta, l4) {
        return Err(DropReason::BadL4Checksum);
    }
    Ok(meta)
}

/// The upper-layer protocol and the extension headers' length of a payload
/// whose first header is `first`, or why the packet is dropped (a fragment
/// among them).
#[cold]
#[inline(never)]
fn walk_extension_headers(first: u8, payload: &[u8]) -> Result<(u8, usize), DropReason> {
    let upper = ipv6::upper_layer(first, payload).map_err(|e| match e {
        Error::TooManyExtensionHeaders { .. } => DropReason::TooManyExtensionHeaders,
        // The walk's other errors: a header running past the payload, or a
        // misplaced hop-by-hop header.
        _ => DropReason::BadExtensionHeader,
    })?;
    if upper.is_fragment() {
        return Err(DropReason::Fragment);
    }
    Ok((upper.protocol, upper.ext_len))
}

/// Full software verification of the layer-4 checksum of a packet
/// classified by [`classify_ipv6_bytes`] (`l4` is its layer-4 bytes up to the
/// end of the IPv6 payload).
pub fn verify_l4_checksum_v6(meta: &Ipv6Meta, l4: &[u8]) -> bool {
    match meta.protocol {
        ip_proto::TCP => TcpPacket::new_checked(l4).is_ok_and(|p| p.verify_checksum_v6(meta.src, meta.dst)),
        ip_proto::UDP => UdpPacket::new_checked(l4).is_ok_and(|p| p.verify_checksum_v6(meta.src, meta.dst)),
        ip_proto::ICMPV6 => Icmpv6Packet::new_checked(l4).is_ok_and(|p| p.verify_checksum(meta.src, meta.dst)),
        _ => false,
    }
}

/// Where the datagram quoted by an ICMP error is, and its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpQuote {
    /// Offset of the quoted IPv4 header in the frame.
    pub l3_offset: usize,
    /// Its header length.
    pub l3_len: usize,
    /// The quoted packet's flow, in the direction it was sent. The error
    /// travels the other way, so a connection lookup uses this tuple as the
    /// one of a packet going the quoted way.
    pub tuple: FlowTuple,
}

/// Parses the datagram quoted by an ICMP error (`meta` from [`classify`] on
/// the same bytes): an IPv4 header with at least the 8 bytes after it that
/// carry the ports (RFC 792), for TCP, UDP or an ICMP echo.
pub fn icmp_error_inner(data: &[u8], meta: &Ipv4Meta) -> Result<IcmpQuote, DropReason> {
    let l3_offset = meta.l4_offset() + super::icmp::HEADER_LEN;
    let quoted = data.get(l3_offset..meta.l3_offset() + meta.ip_total_len()).ok_or(DropReason::BadIcmpQuote)?;
    let Some(h) = quoted.first_chunk::<20>() else { return Err(DropReason::BadIcmpQuote) };
    let l3_len = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || l3_len < 20 {
        return Err(DropReason::BadIcmpQuote);
    }
    let Some(l4) = quoted.get(l3_len..l3_len + 8) else { return Err(DropReason::BadIcmpQuote) };
    let protocol = h[9];
    let (src_port, dst_port) = match protocol {
        ip_proto::TCP | ip_proto::UDP => (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])),
        ip_proto::ICMP if matches!(l4[0], super::icmp::msg_type::ECHO_REQUEST | super::icmp::msg_type::ECHO_REPLY) => {
            let ident = u16::from_be_bytes([l4[4], l4[5]]);
            (ident, ident)
        }
        _ => return Err(DropReason::BadIcmpQuote),
    };
    Ok(IcmpQuote {
        l3_offset,
        l3_len,
        tuple: FlowTuple {
            protocol,
            src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
            src_port,
            dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
            dst_port,
        },
    })
}

/// Parses the packet quoted by an ICMPv6 error (`meta` from
/// [`classify_ipv6`] on the same bytes): an IPv6 header, its extension
/// headers within the quote (a quoted fragment is refused: its ports may not
/// be there), and the 8 bytes after them that carry the ports, for TCP, UDP
/// or an ICMPv6 echo. The quote's `l3_len` includes the extension headers.
pub fn icmpv6_error_inner(data: &[u8], meta: &Ipv6Meta) -> Result<IcmpQuote, DropReason> {
    let l3_offset = meta.l4_offset() + super::icmpv6::HEADER_LEN;
    let quoted = data.get(l3_offset..meta.l3_offset() + meta.ip_total_len()).ok_or(DropReason::BadIcmpQuote)?;
    let q = super::icmpv6::Quoted::parse(quoted).map_err(|_| DropReason::BadIcmpQuote)?;
    if q.upper.is_fragment() {
        return Err(DropReason::BadIcmpQuote);
    }
    let Some(l4) = q.l4.first_chunk::<8>() else { return Err(DropReason::BadIcmpQuote) };
    let protocol = q.upper.protocol;
    let (src_port, dst_port) = match protocol {
        ip_proto::TCP | ip_proto::UDP => (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]])),
        ip_proto::ICMPV6
            if matches!(l4[0], super::icmpv6::msg_type::ECHO_REQUEST | super::icmpv6::msg_type::ECHO_REPLY) =>
        {
            let ident = u16::from_be_bytes([l4[4], l4[5]]);
            (ident, ident)
        }
        _ => return Err(DropReason::BadIcmpQuote),
    };
    Ok(IcmpQuote {
        l3_offset,
        l3_len: ipv6::HEADER_LEN + q.upper.ext_len,
        tuple: FlowTuple {
            protocol,
            src: IpAddr::V6(q.ip.src_addr),
            src_port,
            dst: IpAddr::V6(q.ip.dst_addr),
            dst_port,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::icmpv6::Icmpv6Repr;
    use crate::wire::tcp::TcpRepr;
    use crate::wire::udp::UdpRepr;
    use crate::wire::{build, ethernet, ipv4::Ipv4Packet, tcp::TcpPacket};
    use proptest::prelude::*;

    /// Ethernet + IPv4 + TCP ACK 192.168.1.10:50000 -> 10.0.0.80:80, 4 bytes
    /// of data, checksums filled by `fill`.
    const TCP_FRAME: [u8; 58] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, // ethernet
        0x45, 0x00, 0x00, 0x2c, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 192, 168, 1, 10, 10, 0, 0, 80, 0xc3,
        0x50, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x10, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, b'd', b'a', b't',
        b'a',
    ];

    fn fill(mut b: Vec<u8>, l2: usize) -> Vec<u8> {
        let mut ip = Ipv4Packet::new_unchecked(&mut b[l2..]);
        ip.fill_checksum();
        let (src, dst, hl, total) = (ip.src_addr(), ip.dst_addr(), ip.header_len(), usize::from(ip.total_len()));
        if ip.protocol() == ip_proto::TCP {
            if let Some(seg) = b.get_mut(l2 + hl..l2 + total) {
                TcpPacket::new_unchecked(seg).fill_checksum(src, dst);
            }
        }
        b
    }

    fn tcp_frame() -> Vec<u8> {
        fill(TCP_FRAME.to_vec(), 14)
    }

    fn run(b: &[u8]) -> Result<Classified, DropReason> {
        classify_bytes(b, RxChecksum::default(), ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true })
    }

    #[test]
    fn established_tcp() {
        let b = tcp_frame();
        let Ok(Classified::Ipv4(m)) = run(&b) else { panic!("{:?}", run(&b)) };
        assert_eq!((m.l2_len, m.l3_len, m.l4_len), (14, 20, 24));
        assert_eq!((m.l3_offset(), m.l4_offset(), m.ip_total_len()), (14, 34, 44));
        assert_eq!(m.protocol, ip_proto::TCP);
        assert_eq!(m.ttl, 64);
        assert_eq!(m.tcp_flags, 0x10);
        assert_eq!(
            m.tuple(),
            FlowTuple {
                protocol: 6,
                src: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
                src_port: 50000,
                dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 80)),
                dst_port: 80
            }
        );
        assert_eq!(m.tuple().reversed().reversed(), m.tuple());
        let frame = BufFrame::new(&b);
        assert_eq!(classify(&frame, ClassifyPolicy::default()), run(&b));
    }

    #[test]
    fn vlan_tagged_tcp() {
        let mut b = tcp_frame();
        b.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        let Ok(Classified::Ipv4(m)) = run(&b) else { panic!() };
        assert_eq!(m.l2_len, 18);
        assert_eq!(m.dst_port, 80);
    }

    #[test]
    fn arp_and_other_ethertypes() {
        let mut b = vec![0u8; 42];
        b[12..14].copy_from_slice(&ethernet::ETHERTYPE_ARP.to_be_bytes());
        assert_eq!(run(&b), Ok(Classified::Arp { l2_len: 14 }));
        assert_eq!(run(&b[..41]), Err(DropReason::Truncated));
        b[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV6.to_be_bytes());
        assert_eq!(run(&b), Err(DropReason::Truncated), "IPv6 is classified: 28 bytes hold no IPv6 header");
        b[12..14].copy_from_slice(&ethernet::ETHERTYPE_QINQ.to_be_bytes());
        assert_eq!(run(&b), Err(DropReason::UnsupportedEthertype));
    }

    /// Mutates the TCP frame, refills the checksums, and classifies.
    fn mutated(f: impl FnOnce(&mut Vec<u8>)) -> Result<Classified, DropReason> {
        let mut b = TCP_FRAME.to_vec();
        f(&mut b);
        run(&fill(b, 14))
    }

    #[test]
    fn every_drop_reason_of_classification() {
        let good = tcp_frame();
        assert_eq!(run(&good[..13]), Err(DropReason::Truncated));
        assert_eq!(run(&good[..33]), Err(DropReason::Truncated));
        assert_eq!(mutated(|b| b[14] = 0x65), Err(DropReason::BadIpVersion));
        assert_eq!(mutated(|b| b[14] = 0x44), Err(DropReason::BadIhl));
        assert_eq!(
            run(&{
                let mut b = good.clone();
                b[14] = 0x4f;
                b.truncate(70);
                b
            }),
            Err(DropReason::BadIhl)
        );
        assert_eq!(mutated(|b| b[17] = 0x2d), Err(DropReason::BadTotalLength));
        assert_eq!(mutated(|b| b[17] = 19), Err(DropReason::BadTotalLength));
        let mut bad_sum = good.clone();
        bad_sum[24] ^= 1;
        assert_eq!(run(&bad_sum), Err(DropReason::BadIpChecksum));
        assert_eq!(mutated(|b| b[20] = 0x20), Err(DropReason::Fragment));
        assert_eq!(mutated(|b| b[21] = 0x01), Err(DropReason::Fragment));
        assert_eq!(mutated(|b| b[23] = 47), Err(DropReason::UnknownProtocol));
        assert_eq!(mutated(|b| b[46] = 0x40), Err(DropReason::BadTcpHeader));
        assert_eq!(mutated(|b| b[46] = 0x70), Err(DropReason::BadTcpHeader));
        // An IP payload too short for a TCP header.
        assert_eq!(mutated(|b| b[17] = 39), Err(DropReason::Truncated));
        let mut bad_l4 = good.clone();
        bad_l4[57] ^= 0x80;
        assert_eq!(run(&bad_l4), Err(DropReason::BadL4Checksum));
        // UDP with a length field beyond the datagram.
        let udp = mutated(|b| {
            b[23] = ip_proto::UDP;
            b[38..40].copy_from_slice(&40u16.to_be_bytes());
            b[40..42].copy_from_slice(&[0, 0]);
        });
        assert_eq!(udp, Err(DropReason::BadUdpLength));
    }

    #[test]
    fn nic_verdicts_override_software() {
        let good = tcp_frame();
        let strict = ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true };
        let bad_ip = RxChecksum { ip: ChecksumStatus::Bad, l4: ChecksumStatus::Good };
        assert_eq!(classify_bytes(&good, bad_ip, strict), Err(DropReason::BadIpChecksum));
        let bad_l4 = RxChecksum { ip: ChecksumStatus::Good, l4: ChecksumStatus::Bad };
        assert_eq!(classify_bytes(&good, bad_l4, strict), Err(DropReason::BadL4Checksum));
        // A NIC "good" skips software verification entirely.
        let mut corrupt = good.clone();
        corrupt[24] ^= 1;
        corrupt[57] ^= 1;
        let both_good = RxChecksum { ip: ChecksumStatus::Good, l4: ChecksumStatus::Good };
        assert!(classify_bytes(&corrupt, both_good, strict).is_ok());
        let lax = ClassifyPolicy { verify_ip_checksum: false, verify_l4_checksum: false };
        assert!(classify_bytes(&corrupt, RxChecksum::default(), lax).is_ok());
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut b = tcp_frame();
        b.extend_from_slice(&[0; 6]);
        let Ok(Classified::Ipv4(m)) = run(&b) else { panic!() };
        assert_eq!(m.l4_len, 24);
    }

    #[test]
    fn icmp_error_quote() {
        // Port unreachable from 10.0.0.80 about a UDP datagram we sent.
        let mut b = vec![0u8; 14 + 20 + 8 + 28];
        b[12..14].copy_from_slice(&[8, 0]);
        let mut ip = Ipv4Packet::new_unchecked(&mut b[14..]);
        ip.set_version_and_header_len(20);
        ip.set_total_len(56);
        ip.set_ttl(64);
        ip.set_protocol(ip_proto::ICMP);
        ip.set_src_addr(Ipv4Addr::new(10, 0, 0, 80));
        ip.set_dst_addr(Ipv4Addr::new(10, 0, 0, 1));
        ip.fill_checksum();
        b[34] = 3;
        b[35] = 3;
        let mut inner = Ipv4Packet::new_unchecked(&mut b[42..]);
        inner.set_version_and_header_len(20);
        inner.set_total_len(28);
        inner.set_protocol(ip_proto::UDP);
        inner.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        inner.set_dst_addr(Ipv4Addr::new(10, 0, 0, 80));
        b[62..66].copy_from_slice(&[0x13, 0x88, 0x00, 0x35]);
        crate::wire::icmp::Icmpv4Packet::new_unchecked(&mut b[34..]).fill_checksum();
        let Ok(Classified::Ipv4(m)) = run(&b) else { panic!("{:?}", run(&b)) };
        assert!(m.is_icmp_error());
        assert_eq!((m.icmp_type, m.icmp_code), (3, 3));
        let q = icmp_error_inner(&b, &m).unwrap();
        assert_eq!((q.l3_offset, q.l3_len), (42, 20));
        assert_eq!(q.tuple.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!((q.tuple.protocol, q.tuple.src_port, q.tuple.dst_port), (17, 5000, 53));
        // Shortened so the quoted ports are missing.
        let mut short = b.clone();
        short.truncate(65);
        short[16..18].copy_from_slice(&51u16.to_be_bytes());
        let mut ip = Ipv4Packet::new_unchecked(&mut short[14..]);
        ip.fill_checksum();
        crate::wire::icmp::Icmpv4Packet::new_unchecked(&mut short[34..]).fill_checksum();
        let Ok(Classified::Ipv4(m)) = run(&short) else { panic!() };
        assert_eq!(icmp_error_inner(&short, &m), Err(DropReason::BadIcmpQuote));
    }

    #[test]
    fn drop_reasons_are_enumerable() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert!(
                r.name().bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'),
                "{}",
                r.name()
            );
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        assert_eq!(DropReason::Fragment.to_string(), "fragment");
    }

    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80);

    fn run6(b: &[u8]) -> Result<Ipv6Meta, DropReason> {
        let strict = ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true };
        let got = classify_ipv6_bytes(b, RxChecksum::default(), strict);
        assert_eq!(classify_ipv6(&BufFrame::new(b), strict), got);
        got
    }

    fn ack6() -> Vec<u8> {
        build::tcp_frame_v6((CLIENT6, 50000), (VIP6, 80), 1, 2, 0x10, &[], b"data")
    }

    #[test]
    fn ipv6_established_tcp() {
        let b = ack6();
        let m = run6(&b).unwrap();
        assert_eq!((m.l2_len, m.l3_len, m.l4_len), (14, 40, 24));
        assert_eq!((m.l3_offset(), m.l4_offset(), m.ip_total_len()), (14, 54, 64));
        assert_eq!((m.protocol, m.hop_limit, m.tcp_flags), (ip_proto::TCP, 64, 0x10));
        assert_eq!(
            m.tuple(),
            FlowTuple { protocol: 6, src: IpAddr::V6(CLIENT6), src_port: 50000, dst: IpAddr::V6(VIP6), dst_port: 80 }
        );
        // The one classification gives the same.
        assert_eq!(run(&b), Ok(Classified::Ipv6(m)));
        // And this one leaves IPv4 alone.
        assert_eq!(run6(&tcp_frame()), Err(DropReason::UnsupportedEthertype));
        // Tagged, with Ethernet padding after the packet.
        let mut tagged = b.clone();
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        tagged.extend_from_slice(&[0; 6]);
        let t = run6(&tagged).unwrap();
        assert_eq!((t.l2_len, t.l4_len), (18, 24));
    }

    #[test]
    fn ipv6_extension_headers_udp_and_icmpv6() {
        use crate::wire::ipv6::ext;
        let chain = [ext::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0, ip_proto::UDP, 0, 1, 4, 0, 0, 0, 0];
        let udp = UdpRepr { src_port: 40000, dst_port: 53, payload: b"q" };
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::HOP_BY_HOP, &chain).udp(&udp);
        let m = run6(&b).unwrap();
        assert_eq!((m.protocol, m.l3_len, m.l4_len, m.src_port, m.dst_port), (ip_proto::UDP, 56, 9, 40000, 53));
        // Over IPv6 a UDP datagram without a checksum is dropped even when
        // software verification is off.
        let mut bare = b.clone();
        bare[14 + 56 + 6..14 + 56 + 8].fill(0);
        let lax = ClassifyPolicy { verify_ip_checksum: false, verify_l4_checksum: false };
        assert_eq!(classify_ipv6_bytes(&bare, RxChecksum::default(), lax), Err(DropReason::BadL4Checksum));

        let echo = Icmpv6Repr { msg_type: 128, msg_code: 0, rest_of_header: 0x4242_0001, data: b"ping" };
        let m = run6(&build::ipv6(CLIENT6, VIP6).icmpv6(&echo)).unwrap();
        assert_eq!((m.protocol, m.icmp_type, m.src_port, m.dst_port), (ip_proto::ICMPV6, 128, 0x4242, 0x4242));
        assert!(!m.is_icmp_error());
        let too_big = build::icmpv6_error(VIP6, CLIENT6, 2, 0, 1280, &ack6()[14..], 48);
        let m = run6(&too_big).unwrap();
        assert!(m.is_icmp_error());
        assert_eq!((m.src_port, m.dst_port), (0, 0));
    }

    #[test]
    fn icmpv6_error_quotes() {
        use crate::wire::ipv6::ext;
        // Packet too big about the client's segment, quoted to its ports.
        let too_big = build::icmpv6_error(VIP6, CLIENT6, 2, 0, 1280, &ack6()[14..], 48);
        let m = run6(&too_big).unwrap();
        let q = icmpv6_error_inner(&too_big, &m).unwrap();
        assert_eq!((q.l3_offset, q.l3_len), (14 + 40 + 8, 40));
        assert_eq!(
            q.tuple,
            FlowTuple { protocol: 6, src: IpAddr::V6(CLIENT6), src_port: 50000, dst: IpAddr::V6(VIP6), dst_port: 80 }
        );
        // One byte short of the ports and sequence number.
        let short = build::icmpv6_error(VIP6, CLIENT6, 2, 0, 1280, &ack6()[14..], 47);
        assert_eq!(icmpv6_error_inner(&short, &run6(&short).unwrap()), Err(DropReason::BadIcmpQuote));
        // A quoted UDP datagram behind destination options.
        let chain = [ip_proto::UDP, 0, 1, 4, 0, 0, 0, 0];
        let udp = UdpRepr { src_port: 5000, dst_port: 53, payload: b"q" };
        let sent = build::ipv6(CLIENT6, VIP6).ext_headers(ext::DEST_OPTS, &chain).udp(&udp);
        let unreachable = build::icmpv6_error(VIP6, CLIENT6, 1, 4, 0, &sent[14..], 1232);
        let q = icmpv6_error_inner(&unreachable, &run6(&unreachable).unwrap()).unwrap();
        assert_eq!((q.l3_len, q.tuple.protocol, q.tuple.src_port, q.tuple.dst_port), (48, 17, 5000, 53));
        // A quoted fragment, and a quoted packet that is not IPv6.
        let fragment = [ip_proto::UDP, 0, 0, 1, 0, 0, 0, 9];
        let sent = build::ipv6(CLIENT6, VIP6).ext_headers(ext::FRAGMENT, &fragment).udp(&udp);
        let error = build::icmpv6_error(VIP6, CLIENT6, 3, 1, 0, &sent[14..], 1232);
        assert_eq!(icmpv6_error_inner(&error, &run6(&error).unwrap()), Err(DropReason::BadIcmpQuote));
        let error = build::icmpv6_error(VIP6, CLIENT6, 1, 4, 0, &tcp_frame()[14..], 1232);
        assert_eq!(icmpv6_error_inner(&error, &run6(&error).unwrap()), Err(DropReason::BadIcmpQuote));
    }

    #[test]
    fn every_ipv6_drop_reason() {
        use crate::wire::ipv6::ext;
        let good = ack6();
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            run6(&b)
        };
        assert_eq!(run6(&good[..13]), Err(DropReason::Truncated));
        assert_eq!(run6(&good[..53]), Err(DropReason::Truncated));
        assert_eq!(with(&|b| b[14] = 0x45), Err(DropReason::BadIpVersion));
        assert_eq!(run6(&good[..77]), Err(DropReason::BadPayloadLength));
        // Payload too short for the TCP header.
        assert_eq!(with(&|b| b[19] = 19), Err(DropReason::Truncated));
        assert_eq!(with(&|b| b[66] = 0x40), Err(DropReason::BadTcpHeader));
        assert_eq!(with(&|b| b[77] ^= 1), Err(DropReason::BadL4Checksum));
        assert_eq!(with(&|b| b[20] = 47), Err(DropReason::UnknownProtocol));
        let nic_bad = RxChecksum { ip: ChecksumStatus::Unknown, l4: ChecksumStatus::Bad };
        assert_eq!(classify_ipv6_bytes(&good, nic_bad, ClassifyPolicy::default()), Err(DropReason::BadL4Checksum));

        let tcp = TcpRepr {
            src_port: 50000,
            dst_port: 80,
            seq_number: 1,
            ack_number: 2,
            flags: 0x10,
            window_len: 65535,
            options: &[],
            payload: b"",
        };
        // A fragment (first of several): dropped and counted.
        let fragment = [ip_proto::TCP, 0, 0, 1, 0, 0, 0, 9];
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::FRAGMENT, &fragment).tcp(&tcp);
        assert_eq!(run6(&b), Err(DropReason::Fragment));
        // An atomic one is a whole packet.
        let atomic = [ip_proto::TCP, 0, 0, 0, 0, 0, 0, 9];
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::FRAGMENT, &atomic).tcp(&tcp);
        assert_eq!(run6(&b).map(|m| (m.l3_len, m.dst_port)), Ok((48, 80)));
        // A header claiming more than the payload.
        let long = [ip_proto::TCP, 200, 1, 4, 0, 0, 0, 0];
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::DEST_OPTS, &long).tcp(&tcp);
        assert_eq!(run6(&b), Err(DropReason::BadExtensionHeader));
        // Hop-by-hop second.
        let hbh = [ext::HOP_BY_HOP, 0, 1, 4, 0, 0, 0, 0, ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0];
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::DEST_OPTS, &hbh).tcp(&tcp);
        assert_eq!(run6(&b), Err(DropReason::BadExtensionHeader));
        // A chain of destination options longer than the walk follows.
        let mut chain = [ext::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0].repeat(ipv6::MAX_EXT_HEADERS + 1);
        let last = chain.len() - 8;
        chain[last] = ip_proto::TCP;
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::DEST_OPTS, &chain).tcp(&tcp);
        assert_eq!(run6(&b), Err(DropReason::TooManyExtensionHeaders));
        let b = build::ipv6(CLIENT6, VIP6).ext_headers(ext::DEST_OPTS, &chain[8..]).tcp(&tcp);
        assert_eq!(run6(&b).map(|m| m.l3_len), Ok(40 + 8 * ipv6::MAX_EXT_HEADERS as u16));
    }

    #[test]
    fn ipv6_truncated_at_every_offset() {
        let good = ack6();
        for cut in 0..good.len() {
            assert!(run6(&good[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        /// The untagged IPv4 path answers for exactly the frames `classify`
        /// takes as untagged IPv4, and as `classify` does: the well-formed
        /// TCP frame with any bytes of it changed, cut at any length, and any
        /// other ethertype.
        #[test]
        fn the_untagged_ipv4_path_agrees_with_classify(
            edits in proptest::collection::vec((0usize..58, any::<u8>()), 0..4),
            cut in 0usize..=58,
            ethertype in prop_oneof![Just([0x08u8, 0x00]), Just([0x81, 0x00]), Just([0x86, 0xdd]), any::<[u8; 2]>()],
            rx in prop_oneof![Just(ChecksumStatus::Unknown), Just(ChecksumStatus::Good), Just(ChecksumStatus::Bad)],
            verify in any::<bool>(),
        ) {
            let mut b = tcp_frame();
            b[12..14].copy_from_slice(&ethertype);
            for (at, byte) in edits {
                if let Some(x) = b.get_mut(at) {
                    *x = byte;
                }
            }
            b.truncate(cut);
            let rx = RxChecksum { ip: rx, l4: rx };
            let policy = ClassifyPolicy { verify_ip_checksum: verify, verify_l4_checksum: verify };
            let full = classify_bytes(&b, rx, policy);
            match untagged_ipv4(&b, rx, policy) {
                Some(fast) => prop_assert_eq!(fast.map(Classified::Ipv4), full),
                None => prop_assert!(b.len() < 14 || b[12..14] != [0x08, 0x00], "untagged IPv4 passed over"),
            }
        }

        /// The plain path answers exactly for the packets the full one
        /// accepts with no IP options as TCP or UDP, and as it does: a TCP,
        /// a UDP and an optioned TCP packet, with any bytes of them changed
        /// and cut at any length.
        #[test]
        fn the_plain_ipv4_path_agrees_with_the_full_one(
            shape in 0u8..3,
            edits in proptest::collection::vec((0usize..62, any::<u8>()), 0..4),
            cut in proptest::option::of(0usize..62),
            rx in prop_oneof![Just(ChecksumStatus::Unknown), Just(ChecksumStatus::Good), Just(ChecksumStatus::Bad)],
            verify in any::<bool>(),
        ) {
            let mut b = TCP_FRAME.to_vec();
            match shape {
                // UDP, 24 bytes long, no checksum.
                1 => {
                    b[23] = ip_proto::UDP;
                    b[38..42].copy_from_slice(&[0, 24, 0, 0]);
                }
                // A 4-byte IP option (four NOPs).
                2 => {
                    b.splice(34..34, [1, 1, 1, 1]);
                    b[14] = 0x46;
                    b[16..18].copy_from_slice(&48u16.to_be_bytes());
                }
                _ => {}
            }
            let mut b = fill(b, 14);
            for (at, byte) in edits {
                if let Some(x) = b.get_mut(at) {
                    *x = byte;
                }
            }
            b.truncate(cut.unwrap_or(b.len()));
            let ip = b.get(14..).unwrap_or(&[]);
            let rx = RxChecksum { ip: rx, l4: rx };
            let policy = ClassifyPolicy { verify_ip_checksum: verify, verify_l4_checksum: verify };
            let full = classify_any_ipv4(ip, 14, rx, policy);
            match plain_ipv4(ip, 14, rx, policy) {
                Some(plain) => prop_assert_eq!(Ok(plain), full),
                None => prop_assert!(
                    !matches!(full, Ok(m) if m.l3_len == 20 && matches!(m.protocol, ip_proto::TCP | ip_proto::UDP)),
                    "a plain packet passed over: {:?}", full
                ),
            }
        }

        /// Never panics, and whatever it accepts, the typed views accept too
        /// with the same offsets.
        #[test]
        fn ipv6_arbitrary_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..160), tag in any::<bool>()) {
            if b.len() > 14 {
                b[12] = 0x86;
                b[13] = 0xdd;
                b[14] = 0x60 | (b[14] & 0x0f);
                if tag {
                    b.splice(12..12, [0x81, 0x00, 0x00, 0x01]);
                }
            }
            let lax = ClassifyPolicy { verify_ip_checksum: false, verify_l4_checksum: false };
            if let Ok(m) = classify_ipv6_bytes(&b, RxChecksum::default(), lax) {
                let eth = ethernet::EthernetFrame::new_checked(&b[..]).unwrap();
                prop_assert_eq!(eth.header_len(), usize::from(m.l2_len));
                let ip = ipv6::Ipv6Packet::new_checked(eth.payload()).unwrap();
                let upper = ip.upper_layer().unwrap();
                prop_assert_eq!(ipv6::HEADER_LEN + upper.ext_len, usize::from(m.l3_len));
                prop_assert_eq!(ip.payload().len() - upper.ext_len, usize::from(m.l4_len));
                if m.protocol == ip_proto::TCP {
                    let t = TcpPacket::new_checked(&ip.payload()[upper.ext_len..]).unwrap();
                    prop_assert_eq!((t.src_port(), t.dst_port(), t.flags()), (m.src_port, m.dst_port, m.tcp_flags));
                }
                if m.is_icmp_error() {
                    if let Ok(q) = icmpv6_error_inner(&b, &m) {
                        prop_assert!(q.l3_offset + q.l3_len + 8 <= b.len());
                    }
                }
            }
        }

        /// Never panics, and whatever it accepts, the typed views accept too
        /// with the same offsets.
        #[test]
        fn arbitrary_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..128), tag in any::<bool>()) {
            if b.len() > 14 {
                b[12] = 8;
                b[13] = 0;
                b[14] = 0x40 | (b[14] & 0x0f);
                if tag {
                    b.splice(12..12, [0x81, 0x00, 0x00, 0x01]);
                }
            }
            let lax = ClassifyPolicy { verify_ip_checksum: false, verify_l4_checksum: false };
            if let Ok(Classified::Ipv4(m)) = classify_bytes(&b, RxChecksum::default(), lax) {
                let eth = ethernet::EthernetFrame::new_checked(&b[..]).unwrap();
                prop_assert_eq!(eth.header_len(), usize::from(m.l2_len));
                let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                prop_assert_eq!(ip.header_len(), usize::from(m.l3_len));
                prop_assert_eq!(ip.payload().len(), usize::from(m.l4_len));
                if m.protocol == ip_proto::TCP {
                    let t = TcpPacket::new_checked(ip.payload()).unwrap();
                    prop_assert_eq!((t.src_port(), t.dst_port(), t.flags()), (m.src_port, m.dst_port, m.tcp_flags));
                }
                if m.is_icmp_error() {
                    let _ = icmp_error_inner(&b, &m);
                }
            }
        }
    }
}
