//! NAT64 in full NAT (DPVS's): an IPv6 service in front of IPv4 real
//! servers. The client's packet `CIP6:cport -> VIP6:vport` leaves as
//! `LIP4:lport -> RIP4:rport`, the server's `RIP4:rport -> LIP4:lport` as
//! `VIP6:vport -> CIP6:cport`: the IP header is replaced (RFC 7915's header
//! translation, §4 and §5), the ports and the TCP/UDP checksum rewritten
//! as FNAT rewrites them.
//!
//! What maps, and what is dropped (RFC 7915, as it applies to a stateful
//! translator whose every packet belongs to one of its TCP or UDP
//! connections):
//!
//! - IPv6 to IPv4: traffic class to type of service; hop limit, less one,
//!   to TTL (refused at 1, as a router refuses it); the payload's length;
//!   next header to protocol. Extension headers are not carried: the
//!   classification has walked them and kept only those a translator may
//!   drop (a fragment header is refused there, counted as `fragment`).
//!   Identification 0 and don't fragment set: the gateway's TCP peers do
//!   path MTU discovery, and a packet too big for the server's link is
//!   refused here with [`XmitError::MtuExceeded`], which the caller answers
//!   with an ICMPv6 packet too big naming the IPv6 size that would fit.
//! - IPv4 to IPv6: type of service to traffic class, flow label 0; TTL,
//!   less one, to hop limit (refused at 1); IPv4 options are dropped. A
//!   packet that would outgrow the client's link (IPv6 is 20 bytes longer)
//!   is refused with [`XmitError::MtuExceeded`] for the caller to answer
//!   with fragmentation needed; the gateway does not fragment.
//! - TCP and UDP: the checksum follows the pseudo-header's change of
//!   addresses (the length and protocol words sum the same in both
//!   families), incrementally; a UDP datagram from IPv4 without a checksum
//!   gets one computed in full (IPv6 requires it, RFC 7915 §4.5). The MSS
//!   of a SYN is clamped to what the egress link carries in the new family,
//!   so neither end is promised segments that cannot pass.
//! - The client's address reaches the server in DPVS's 20-byte IPv6 TOA,
//!   which its `toa` module reads from IPv4 segments (its NAT64 mode).
//! - ICMP errors about a connection's packets (RFC 7915 §4.2 and §5.2):
//!   destination unreachable, packet too big / fragmentation needed (the
//!   MTU moved by the headers' 20-byte difference) and time exceeded are
//!   translated, their quote too (the packet as its receiver sent it, so it
//!   finds its socket); parameter problems, source quench, redirects and
//!   the codes without a counterpart are refused with
//!   [`XmitError::UnsupportedProtocol`], for the caller to count. The quoted
//!   transport checksum is left as quoted (no receiver checks it).
//!
//! Checksums are computed in software here (the translated packet is a
//! different shape from the one the port's offload flags were read for);
//! any transmit request the frame carried is cleared.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frame::{Frame, FrameError, TxOffload};
use crate::wire::checksum::{self, Delta};
use crate::wire::{icmp, icmpv6, ip_proto, ipv4, ipv6, tcp, udp, Ipv4Meta, Ipv6Meta};

use super::dispatch::{Egress, Endpoint};
use super::tcp_opts::{insert_toa_v6_in_v4, ToaOutcome};
use super::{
    addr_at, check_layout, edit_tcp, fill_udp_checksum_v6, get2, put2, rewrite_ports, Layout, Offload, Translation,
    XmitError,
};

/// The EtherTypes the translated frame is relabelled with.
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];

/// The TCP MSS a link of `mtu` bytes carries with an IP header of
/// `ip_header` bytes and a bare TCP header.
fn mss_for(mtu: u16, ip_header: usize) -> u16 {
    mtu.saturating_sub((ip_header + tcp::MIN_HEADER_LEN) as u16)
}

/// An IPv4 address where an IPv6 one stood, for the checksum arithmetic:
/// its four bytes then zeros, which sum as the IPv4 address does.
fn widened(a: Ipv4Addr) -> [u8; 16] {
    let mut w = [0; 16];
    w[..4].copy_from_slice(&a.octets());
    w
}

/// Translates a client's IPv6 TCP or UDP packet of a NAT64 connection into
/// the IPv4 packet `src -> dst` (the local and the real server's endpoints),
/// inserting `toa` (the client) when given and the packet is TCP. Returns
/// the classification of the translated packet (the IPv4 header is 20
/// bytes) and whether the TOA went in. On error the frame is unchanged.
pub fn to_ipv4<F: Frame>(
    frame: &mut F,
    meta: &Ipv6Meta,
    src: Endpoint<Ipv4Addr>,
    dst: Endpoint<Ipv4Addr>,
    toa: Option<Endpoint<Ipv6Addr>>,
    at: Egress,
) -> Result<(Ipv4Meta, ToaOutcome), XmitError> {
    let (l2, l3_len, l4_len) = (usize::from(meta.l2_len), usize::from(meta.l3_len), usize::from(meta.l4_len));
    let layout = Layout {
        l3: l2,
        l3_len,
        l3_min: ipv6::HEADER_LEN,
        l4_len,
        protocol: meta.protocol,
        ttl_at: ipv6::offset::HOP_LIMIT,
    };
    let total = check(frame.data(), &layout, ipv4::MIN_HEADER_LEN, at.mtu)?;
    let end = l2 + l3_len + l4_len;

    let data = frame.data_mut();
    let ip6 = &data[l2..l2 + ipv6::HEADER_LEN];
    let tos = (ip6[0] << 4) | (ip6[1] >> 4);
    let (src6, dst6) = (addr_at(ip6, ipv6::offset::SRC), addr_at(ip6, ipv6::offset::DST));
    let mut delta = Delta::new();
    delta.replace_ipv6_addr(src6, widened(src.0));
    delta.replace_ipv6_addr(dst6, widened(dst.0));
    let t = Translation {
        mss_clamp: Some(mss_for(at.mtu, ipv4::MIN_HEADER_LEN)),
        ..Translation::between((src.0.octets(), src.1), (dst.0.octets(), dst.1))
    };
    let l4 = &mut data[l2 + l3_len..end];
    let udp_unchecked = edit_l4(l4, meta.protocol, &t, delta);
    debug_assert!(!udp_unchecked, "classification refuses IPv6 UDP without a checksum");

    // The IPv4 header replaces the IPv6 headers; the link header moves up.
    let shrink = l3_len - ipv4::MIN_HEADER_LEN;
    data.copy_within(0..l2, shrink);
    data[shrink + l2 - 2..shrink + l2].copy_from_slice(&ETHERTYPE_IPV4);
    let ttl = meta.hop_limit - 1;
    let header = ipv4_header(tos, total as u16, ttl, meta.protocol, src.0, dst.0);
    data[shrink + l2..shrink + l2 + ipv4::MIN_HEADER_LEN].copy_from_slice(&header);
    if udp_unchecked {
        let (s, d) = (src.0.octets(), dst.0.octets());
        fill_udp_checksum_v4(s, d, &mut data[shrink + l2 + ipv4::MIN_HEADER_LEN..shrink + end]);
    }
    frame.adj(shrink).map_err(XmitError::NoRoom)?;
    clear_offload(frame);

    let mut out = Ipv4Meta {
        l2_len: meta.l2_len,
        l3_len: ipv4::MIN_HEADER_LEN as u8,
        l4_len: meta.l4_len,
        protocol: meta.protocol,
        ttl,
        src: src.0,
        dst: dst.0,
        src_port: src.1,
        dst_port: dst.1,
        tcp_flags: meta.tcp_flags,
        icmp_type: 0,
        icmp_code: 0,
    };
    let outcome = match toa {
        Some((client, port)) if meta.protocol == ip_proto::TCP => {
            insert_toa_v6_in_v4(frame, &mut out, port, client.octets(), at.mtu, Offload::NONE)
        }
        Some(_) => ToaOutcome::NotApplicable,
        None => ToaOutcome::NotRequested,
    };
    Ok((out, outcome))
}

/// Translates a real server's IPv4 TCP or UDP packet of a NAT64 connection
/// into the IPv6 packet `src -> dst` (the virtual service's and the
/// client's endpoints). Returns the classification of the translated packet
/// (a bare 40-byte IPv6 header). On error the frame is unchanged.
pub fn to_ipv6<F: Frame>(
    frame: &mut F,
    meta: &Ipv4Meta,
    src: Endpoint<Ipv6Addr>,
    dst: Endpoint<Ipv6Addr>,
    at: Egress,
) -> Result<Ipv6Meta, XmitError> {
    let (l2, l3_len, l4_len) = (usize::from(meta.l2_len), usize::from(meta.l3_len), usize::from(meta.l4_len));
    let layout = Layout {
        l3: l2,
        l3_len,
        l3_min: ipv4::MIN_HEADER_LEN,
        l4_len,
        protocol: meta.protocol,
        ttl_at: ipv4::offset::TTL,
    };
    check(frame.data(), &layout, ipv6::HEADER_LEN, at.mtu)?;
    let end = l2 + l3_len + l4_len;
    // IPv4 options (up to 40 bytes) may leave room to spare; else the
    // frame grows at the front, which must be possible before any write.
    let grow = ipv6::HEADER_LEN.saturating_sub(l3_len);
    if frame.headroom() < grow {
        return Err(XmitError::NoRoom(FrameError::NoHeadroom { wanted: grow, available: frame.headroom() }));
    }

    let data = frame.data_mut();
    let ip4 = &data[l2..l2 + ipv4::MIN_HEADER_LEN];
    let tos = ip4[1];
    let (src4, dst4) = (get4(ip4, ipv4::offset::SRC), get4(ip4, ipv4::offset::DST));
    let mut delta = Delta::new();
    delta.replace_ipv6_addr(widened(src4.into()), src.0.octets());
    delta.replace_ipv6_addr(widened(dst4.into()), dst.0.octets());
    let t = Translation {
        mss_clamp: Some(mss_for(at.mtu, ipv6::HEADER_LEN)),
        ..Translation::between((src.0.octets(), src.1), (dst.0.octets(), dst.1))
    };
    let udp_unchecked = edit_l4(&mut data[l2 + l3_len..end], meta.protocol, &t, delta);

    // The IPv6 header replaces the IPv4 one (and its options).
    let hop_limit = meta.ttl - 1;
    let header = ipv6_header(tos, l4_len as u16, meta.protocol, hop_limit, src.0, dst.0);
    let l3 = if grow > 0 {
        frame.prepend(grow).map_err(XmitError::NoRoom)?;
        let data = frame.data_mut();
        data.copy_within(grow..grow + l2, 0);
        l2
    } else {
        let shrink = l3_len - ipv6::HEADER_LEN;
        data.copy_within(0..l2, shrink);
        frame.adj(shrink).map_err(XmitError::NoRoom)?;
        l2
    };
    let data = frame.data_mut();
    data[l3 - 2..l3].copy_from_slice(&ETHERTYPE_IPV6);
    data[l3..l3 + ipv6::HEADER_LEN].copy_from_slice(&header);
    if udp_unchecked {
        let l4_end = l3 + ipv6::HEADER_LEN + l4_len;
        fill_udp_checksum_v6(src.0.octets(), dst.0.octets(), &mut data[l3 + ipv6::HEADER_LEN..l4_end]);
    }
    clear_offload(frame);
    Ok(Ipv6Meta {
        l2_len: meta.l2_len,
        l3_len: ipv6::HEADER_LEN as u16,
        l4_len: meta.l4_len,
        protocol: meta.protocol,
        hop_limit,
        src: src.0,
        dst: dst.0,
        src_port: src.1,
        dst_port: dst.1,
        tcp_flags: meta.tcp_flags,
        icmp_type: 0,
        icmp_code: 0,
    })
}

/// The largest ICMPv6 error, as RFC 4443 §2.4 (c) bounds it: the minimum MTU.
const ICMPV6_ERROR_MAX: usize = 1280;
/// The largest ICMPv4 error, as RFC 1812 §4.3.2.3 bounds it.
const ICMPV4_ERROR_MAX: usize = 576;

/// The ICMPv6 type, code and 32-bit field of an ICMPv4 error (RFC 7915
/// §4.2), or `None` for one without a counterpart.
fn icmp_type_to_v6(ty: u8, code: u8, rest: [u8; 4]) -> Option<(u8, u8, u32)> {
    use icmpv6::msg_type as v6;
    match (ty, code) {
        (icmp::msg_type::DEST_UNREACHABLE, icmp::code::FRAG_NEEDED) => {
            // The IPv6 packet may be 20 bytes longer than the IPv4 one; never
            // below IPv6's minimum MTU.
            let mtu = u32::from(u16::from_be_bytes([rest[2], rest[3]]));
            Some((v6::PACKET_TOO_BIG, 0, (mtu + 20).max(1280)))
        }
        // Network or host unreachable, source route failed, unknown or
        // isolated network or host, for the type of service.
        (icmp::msg_type::DEST_UNREACHABLE, 0 | 1 | 5..=8 | 11 | 12) => Some((v6::DEST_UNREACHABLE, 0, 0)),
        // Administratively prohibited, in each form.
        (icmp::msg_type::DEST_UNREACHABLE, 9 | 10 | 13 | 15) => Some((v6::DEST_UNREACHABLE, 1, 0)),
        (icmp::msg_type::DEST_UNREACHABLE, 3) => Some((v6::DEST_UNREACHABLE, 4, 0)),
        (icmp::msg_type::TIME_EXCEEDED, 0 | 1) => Some((v6::TIME_EXCEEDED, code, 0)),
        _ => None,
    }
}

/// The ICMPv4 type, code and 32-bit field of an ICMPv6 error (RFC 7915
/// §5.2), or `None` for one without a counterpart.
fn icmp_type_to_v4(ty: u8, code: u8, rest: [u8; 4]) -> Option<(u8, u8, [u8; 4])> {
    use icmp::msg_type as v4;
    match (ty, code) {
        (icmpv6::msg_type::PACKET_TOO_BIG, _) => {
            let mtu = u32::from_be_bytes(rest).saturating_sub(20).min(u32::from(u16::MAX)) as u16;
            let [hi, lo] = mtu.to_be_bytes();
            Some((v4::DEST_UNREACHABLE, icmp::code::FRAG_NEEDED, [0, 0, hi, lo]))
        }
        // No route, beyond the scope of the source address, address unreachable.
        (icmpv6::msg_type::DEST_UNREACHABLE, 0 | 2 | 3) => Some((v4::DEST_UNREACHABLE, 1, [0; 4])),
        (icmpv6::msg_type::DEST_UNREACHABLE, 1) => Some((v4::DEST_UNREACHABLE, 10, [0; 4])),
        (icmpv6::msg_type::DEST_UNREACHABLE, 4) => Some((v4::DEST_UNREACHABLE, 3, [0; 4])),
        (icmpv6::msg_type::TIME_EXCEEDED, 0 | 1) => Some((v4::TIME_EXCEEDED, code, [0; 4])),
        _ => None,
    }
}

/// Translates an ICMPv4 error from the servers' side about a packet the
/// gateway sent a NAT64 connection's server into the ICMPv6 error its
/// client gets: outer `from -> to` (the VIP to the client), the quote the
/// client's own packet `client -> vip`. The frame is rebuilt in place
/// behind its link header; on error it is unchanged.
pub fn icmp_error_to_v6<F: Frame>(
    frame: &mut F,
    meta: &Ipv4Meta,
    (from, to): (Ipv6Addr, Ipv6Addr),
    (client, vip): (Endpoint<Ipv6Addr>, Endpoint<Ipv6Addr>),
) -> Result<(), XmitError> {
    let l2 = usize::from(meta.l2_len);
    let (header, quote) = error_parts(frame.data(), meta.l4_offset(), meta.l3_offset() + meta.ip_total_len())?;
    let rest = [header[4], header[5], header[6], header[7]];
    let (ty, code, field) =
        icmp_type_to_v6(header[0], header[1], rest).ok_or(XmitError::UnsupportedProtocol(ip_proto::ICMP))?;
    if meta.ttl <= 1 {
        return Err(XmitError::TtlExpired { ttl: meta.ttl });
    }
    let Some(inner) = quote.first_chunk::<{ ipv4::MIN_HEADER_LEN }>() else { return Err(XmitError::BadIcmpQuote) };
    let ihl = usize::from(inner[0] & 0x0f) * 4;
    let protocol = inner[ipv4::offset::PROTOCOL];
    let inner_total = usize::from(u16::from_be_bytes([inner[2], inner[3]]));
    let Some(l4) = quote.get(ihl..).filter(|l4| l4.len() >= 8 && ihl >= ipv4::MIN_HEADER_LEN) else {
        return Err(XmitError::BadIcmpQuote);
    };
    if !matches!(protocol, ip_proto::TCP | ip_proto::UDP) {
        return Err(XmitError::BadIcmpQuote);
    }
    // What fits in the minimum MTU of the quoted transport bytes.
    let room = ICMPV6_ERROR_MAX - 2 * ipv6::HEADER_LEN - icmpv6::HEADER_LEN;
    let l4 = &l4[..l4.len().min(room)];
    let mut msg = [0u8; ICMPV6_ERROR_MAX - ipv6::HEADER_LEN];
    let len = icmpv6::HEADER_LEN + ipv6::HEADER_LEN + l4.len();
    msg[0] = ty;
    msg[1] = code;
    msg[4..8].copy_from_slice(&field.to_be_bytes());
    let payload_len = inner_total.saturating_sub(ihl) as u16;
    let quoted_header = ipv6_header(inner[1], payload_len, protocol, inner[ipv4::offset::TTL], client.0, vip.0);
    msg[8..48].copy_from_slice(&quoted_header);
    msg[48..len].copy_from_slice(l4);
    msg[48..50].copy_from_slice(&client.1.to_be_bytes());
    msg[50..52].copy_from_slice(&vip.1.to_be_bytes());
    let msg = &mut msg[..len];
    let sum = checksum::sum(msg) + checksum::pseudo_header_v6(from.octets(), to.octets(), ip_proto::ICMPV6, len as u32);
    let sum = checksum::finish(sum);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());

    let header = ipv6_header(0, len as u16, ip_proto::ICMPV6, meta.ttl - 1, from, to);
    rebuild(frame, l2, ETHERTYPE_IPV6, &header, msg)
}

/// Translates an ICMPv6 error from the clients' side about a packet the
/// gateway sent a NAT64 connection's client into the ICMPv4 error its
/// server gets: outer `from -> to` (the local address to the server), the
/// quote the server's own packet `server -> local`. The frame is rebuilt
/// in place behind its link header; on error it is unchanged.
pub fn icmp_error_to_v4<F: Frame>(
    frame: &mut F,
    meta: &Ipv6Meta,
    (from, to): (Ipv4Addr, Ipv4Addr),
    (server, local): (Endpoint<Ipv4Addr>, Endpoint<Ipv4Addr>),
) -> Result<(), XmitError> {
    let l2 = usize::from(meta.l2_len);
    let (header, quote) = error_parts(frame.data(), meta.l4_offset(), meta.l3_offset() + meta.ip_total_len())?;
    let rest = [header[4], header[5], header[6], header[7]];
    let (ty, code, field) =
        icmp_type_to_v4(header[0], header[1], rest).ok_or(XmitError::UnsupportedProtocol(ip_proto::ICMPV6))?;
    if meta.hop_limit <= 1 {
        return Err(XmitError::TtlExpired { ttl: meta.hop_limit });
    }
    let q = icmpv6::Quoted::parse(quote).map_err(|_| XmitError::BadIcmpQuote)?;
    let protocol = q.upper.protocol;
    if q.upper.is_fragment() || !matches!(protocol, ip_proto::TCP | ip_proto::UDP) || q.l4.len() < 8 {
        return Err(XmitError::BadIcmpQuote);
    }
    let room = ICMPV4_ERROR_MAX - 2 * ipv4::MIN_HEADER_LEN - icmp::HEADER_LEN;
    let l4 = &q.l4[..q.l4.len().min(room)];
    let mut msg = [0u8; ICMPV4_ERROR_MAX - ipv4::MIN_HEADER_LEN];
    let len = icmp::HEADER_LEN + ipv4::MIN_HEADER_LEN + l4.len();
    msg[0] = ty;
    msg[1] = code;
    msg[4..8].copy_from_slice(&field);
    let inner_total = (ipv4::MIN_HEADER_LEN + q.ip.payload_len.saturating_sub(q.upper.ext_len)) as u16;
    let quoted_header = ipv4_header(0, inner_total, q.ip.hop_limit, protocol, server.0, local.0);
    msg[8..28].copy_from_slice(&quoted_header);
    msg[28..len].copy_from_slice(l4);
    msg[28..30].copy_from_slice(&server.1.to_be_bytes());
    msg[30..32].copy_from_slice(&local.1.to_be_bytes());
    let msg = &mut msg[..len];
    let sum = checksum::checksum(msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());

    let header = ipv4_header(0, (ipv4::MIN_HEADER_LEN + len) as u16, meta.hop_limit - 1, ip_proto::ICMP, from, to);
    rebuild(frame, l2, ETHERTYPE_IPV4, &header, msg)
}

/// An ICMP or ICMPv6 error's 8-byte header and the quote after it, from
/// the message at `l4` ending at `end` (both families' headers are 8 bytes).
fn error_parts(data: &[u8], l4: usize, end: usize) -> Result<([u8; 8], &[u8]), XmitError> {
    const _: () = assert!(icmp::HEADER_LEN == 8 && icmpv6::HEADER_LEN == 8);
    let message = data.get(l4..end).ok_or(XmitError::BadIcmpQuote)?;
    let (header, quote) = message.split_first_chunk::<8>().ok_or(XmitError::BadIcmpQuote)?;
    Ok((*header, quote))
}

/// Replaces everything after the frame's `l2`-byte link header with
/// `header` and `msg`, relabelling the EtherType; the frame unchanged if it
/// cannot hold them.
fn rebuild<F: Frame>(frame: &mut F, l2: usize, ethertype: [u8; 2], header: &[u8], msg: &[u8]) -> Result<(), XmitError> {
    let want = l2 + header.len() + msg.len();
    let len = frame.len();
    if want > len && frame.tailroom() < want - len {
        return Err(XmitError::NoRoom(FrameError::NoTailroom { wanted: want - len, available: frame.tailroom() }));
    }
    if want > len {
        frame.append(want - len).map_err(XmitError::NoRoom)?;
    } else {
        frame.trim(len - want).map_err(XmitError::NoRoom)?;
    }
    let data = frame.data_mut();
    data[l2 - 2..l2].copy_from_slice(&ethertype);
    data[l2..l2 + header.len()].copy_from_slice(header);
    data[l2 + header.len()..want].copy_from_slice(msg);
    clear_offload(frame);
    Ok(())
}

/// The refusals both NAT64 translations make before any write: every
/// translation's ([`check_layout`], the hop limit always decremented), an
/// Ethernet header too short for the ethertype the translation rewrites,
/// and a translated packet (its IP header `new_l3` bytes) longer than
/// `mtu`. Returns that packet's length.
fn check(data: &[u8], layout: &Layout, new_l3: usize, mtu: u16) -> Result<usize, XmitError> {
    if layout.l3 < 2 {
        return Err(XmitError::Truncated { needed: 2 + layout.l3_min, len: data.len() });
    }
    check_layout(data, layout, true)?;
    let total = new_l3 + layout.l4_len;
    if total > usize::from(mtu) {
        return Err(XmitError::MtuExceeded { len: total, mtu });
    }
    Ok(total)
}

/// The ports, the TCP edits and the checksum of the layer-4 bytes `l4`,
/// with `delta` holding the pseudo-header's address change. Returns true
/// for a UDP datagram that carried no checksum, whose checksum the caller
/// computes in full once the new header is in place.
fn edit_l4<A: Copy>(l4: &mut [u8], protocol: u8, t: &Translation<A>, mut delta: Delta) -> bool {
    if protocol == ip_proto::TCP {
        let Some((th, options)) = l4.split_first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>() else { return false };
        edit_tcp(th, options, t, &mut delta);
        let c = delta.apply_bytes(get2(th, tcp::offset::CHECKSUM));
        put2(th, tcp::offset::CHECKSUM, c);
        return false;
    }
    let Some(uh) = l4.first_chunk_mut::<{ udp::HEADER_LEN }>() else { return false };
    rewrite_ports(uh, t, &mut delta);
    let old = get2(uh, udp::offset::CHECKSUM);
    if old == [0, 0] {
        return true;
    }
    let c = match delta.apply_bytes(old) {
        [0, 0] => [0xff, 0xff],
        c => c,
    };
    put2(uh, udp::offset::CHECKSUM, c);
    false
}

fn get4(b: &[u8], at: usize) -> [u8; 4] {
    [b[at], b[at + 1], b[at + 2], b[at + 3]]
}

/// A 20-byte IPv4 header with its checksum: identification 0, don't
/// fragment set (see the module docs).
fn ipv4_header(tos: u8, total: u16, ttl: u8, protocol: u8, src: Ipv4Addr, dst: Ipv4Addr) -> [u8; 20] {
    let mut h = [0u8; ipv4::MIN_HEADER_LEN];
    h[0] = 0x45;
    h[1] = tos;
    h[ipv4::offset::LENGTH..ipv4::offset::LENGTH + 2].copy_from_slice(&total.to_be_bytes());
    h[ipv4::offset::FLAGS_FRAG..ipv4::offset::FLAGS_FRAG + 2].copy_from_slice(&ipv4::FLAG_DF.to_be_bytes());
    h[ipv4::offset::TTL] = ttl;
    h[ipv4::offset::PROTOCOL] = protocol;
    h[ipv4::offset::SRC..ipv4::offset::SRC + 4].copy_from_slice(&src.octets());
    h[ipv4::offset::DST..ipv4::offset::DST + 4].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&h);
    h[ipv4::offset::CHECKSUM..ipv4::offset::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    h
}

/// A 40-byte IPv6 header: traffic class `tos`, flow label 0.
fn ipv6_header(tos: u8, payload_len: u16, next_header: u8, hop_limit: u8, src: Ipv6Addr, dst: Ipv6Addr) -> [u8; 40] {
    let mut h = [0u8; ipv6::HEADER_LEN];
    h[0] = 0x60 | (tos >> 4);
    h[1] = tos << 4;
    h[ipv6::offset::PAYLOAD_LEN..ipv6::offset::PAYLOAD_LEN + 2].copy_from_slice(&payload_len.to_be_bytes());
    h[ipv6::offset::NEXT_HEADER] = next_header;
    h[ipv6::offset::HOP_LIMIT] = hop_limit;
    h[ipv6::offset::SRC..ipv6::offset::SRC + 16].copy_from_slice(&src.octets());
    h[ipv6::offset::DST..ipv6::offset::DST + 16].copy_from_slice(&dst.octets());
    h
}

/// Computes a UDP-over-IPv4 checksum in full (an IPv6 datagram never lacks
/// one; this is for the impossible case the classification let through).
fn fill_udp_checksum_v4(src: [u8; 4], dst: [u8; 4], l4: &mut [u8]) {
    put2(l4, udp::offset::CHECKSUM, [0, 0]);
    let phdr = checksum::pseudo_header_v4(src, dst, ip_proto::UDP, l4.len() as u16);
    let c = match checksum::finish(checksum::sum(l4) + phdr) {
        0 => 0xffff,
        c => c,
    };
    put2(l4, udp::offset::CHECKSUM, c.to_be_bytes());
}

fn clear_offload<F: Frame>(frame: &mut F) {
    if frame.tx_offload() != TxOffload::default() {
        frame.set_tx_offload(TxOffload::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::tcp::{flags, TcpOption, TcpPacket};
    use crate::xmit::test_support::*;

    const EGRESS: Egress = Egress { mtu: 1500, offload: Offload::NONE };
    /// The v4 side of a NAT64 connection.
    const LIP4: (Ipv4Addr, u16) = (LIP, 5001);
    const RIP4: (Ipv4Addr, u16) = (RIP, 8080);

    fn inbound(before: &[u8], toa: bool, at: Egress) -> (Result<(Ipv4Meta, ToaOutcome), XmitError>, BufFrame) {
        let meta = meta_v6_of(before);
        let mut f = BufFrame::new(before);
        let toa = toa.then_some((CLIENT6, 40000));
        (to_ipv4(&mut f, &meta, LIP4, RIP4, toa, at), f)
    }

    fn outbound(before: &[u8], at: Egress) -> (Result<Ipv6Meta, XmitError>, BufFrame) {
        let meta = meta_of(before);
        let mut f = BufFrame::new(before);
        (to_ipv6(&mut f, &meta, (VIP6, 80), (CLIENT6, 40000), at), f)
    }

    /// The IPv4 frame `tcp_frame` builds, with the TTL and the don't
    /// fragment flag a translator writes and its checksum refilled.
    fn as_translated_v4(mut b: Vec<u8>, ttl: u8) -> Vec<u8> {
        b[14 + ipv4::offset::TTL] = ttl;
        b[14 + ipv4::offset::IDENT..14 + ipv4::offset::IDENT + 2].copy_from_slice(&[0, 0]);
        b[14 + ipv4::offset::FLAGS_FRAG..14 + ipv4::offset::FLAGS_FRAG + 2].copy_from_slice(&[0x40, 0]);
        let mut ip = crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut b[14..]);
        ip.fill_checksum();
        b
    }

    #[test]
    fn a_client_segment_becomes_the_ipv4_segment_fnat_would_send() {
        let before =
            tcp_frame_v6_hop((CLIENT6, 40000), (VIP6, 80), 1000, 2000, flags::ACK | flags::PSH, &[], b"hello", 64);
        let (r, f) = inbound(&before, false, EGRESS);
        let (meta, outcome) = r.unwrap();
        assert_eq!(outcome, ToaOutcome::NotRequested);
        let want = as_translated_v4(tcp_frame(LIP4, RIP4, 1000, 2000, flags::ACK | flags::PSH, &[], b"hello"), 63);
        assert_eq!(bytes(&f), want);
        assert_checksums_valid(&bytes(&f));
        assert_eq!(meta, Ipv4Meta { ttl: 63, ..meta_of(&want) });
    }

    #[test]
    fn the_handshake_carries_the_ipv6_client_in_a_toa_and_a_clamped_mss() {
        // A client on a 9000-byte link offers MSS 8940: the server's side
        // is a 1500-byte IPv4 link.
        let syn = tcp_frame_v6_hop((CLIENT6, 40000), (VIP6, 80), 7, 0, flags::SYN, &[2, 4, 0x22, 0xec], b"", 64);
        let (r, f) = inbound(&syn, true, EGRESS);
        let (meta, outcome) = r.unwrap();
        assert_eq!(outcome, ToaOutcome::Inserted);
        let out = bytes(&f);
        assert_checksums_valid(&out);
        assert_eq!(meta.l4_len, 20 + 4 + 20);
        let seg = TcpPacket::new_checked(&out[34..]).unwrap();
        let opts: Vec<_> = seg.option_iter().map(|o| o.unwrap().1).collect();
        assert_eq!(opts[0], TcpOption::ClientAddressV6 { port: 40000, addr: CLIENT6 });
        assert_eq!(opts[1], TcpOption::MaxSegmentSize(1460));
        // The option's bytes as DPVS's toa module reads them: kind 254, length 20.
        assert_eq!(&out[54..58], &[254, 20, 0x9c, 0x40]);
        assert_eq!(&out[58..74], &CLIENT6.octets());
    }

    #[test]
    fn a_server_segment_becomes_the_ipv6_segment_to_the_client() {
        let before = tcp_frame(RIP4, LIP4, 9000, 1005, flags::ACK, &[], b"world");
        let (r, f) = outbound(&before, EGRESS);
        let meta = r.unwrap();
        let want = tcp_frame_v6_hop((VIP6, 80), (CLIENT6, 40000), 9000, 1005, flags::ACK, &[], b"world", 63);
        assert_eq!(bytes(&f), want);
        assert_checksums_valid_v6(&bytes(&f));
        assert_eq!(meta, Ipv6Meta { hop_limit: 63, ..meta_v6_of(&want) });
        // The server's SYN-ACK offers 1460: the client's side carries 1440.
        let synack = tcp_frame(RIP4, LIP4, 1, 8, flags::SYN | flags::ACK, &[2, 4, 0x05, 0xb4], b"");
        let (_, f) = outbound(&synack, EGRESS);
        let out = bytes(&f);
        let seg = TcpPacket::new_checked(&out[54..]).unwrap();
        assert_eq!(seg.option_iter().next().unwrap().unwrap().1, TcpOption::MaxSegmentSize(1440));
        assert_checksums_valid_v6(&bytes(&f));
    }

    #[test]
    fn udp_both_ways_and_a_datagram_without_checksum() {
        let before = udp_frame_v6((CLIENT6, 5353), (VIP6, 53), b"query");
        let meta = meta_v6_of(&before);
        let mut f = BufFrame::new(&before);
        let (out, _) = to_ipv4(&mut f, &meta, LIP4, RIP4, Some((CLIENT6, 5353)), EGRESS).unwrap();
        assert_eq!(out.protocol, ip_proto::UDP);
        assert_eq!(bytes(&f), as_translated_v4(udp_frame(LIP4, RIP4, b"query", true), 63));

        let answer = udp_frame(RIP4, LIP4, b"answer", true);
        let (r, f) = outbound(&answer, EGRESS);
        r.unwrap();
        let mut want = udp_frame_v6((VIP6, 80), (CLIENT6, 40000), b"answer");
        want[14 + ipv6::offset::HOP_LIMIT] = 63;
        assert_eq!(bytes(&f), want);
        // Without a checksum from IPv4, the IPv6 datagram gets one.
        let bare = udp_frame(RIP4, LIP4, b"answer", false);
        let (_, f) = outbound(&bare, EGRESS);
        assert_eq!(bytes(&f), want);
        assert_checksums_valid_v6(&bytes(&f));
    }

    #[test]
    fn ipv4_options_are_dropped() {
        // A 24-byte IPv4 header (one NOP-padded option word).
        let plain = tcp_frame(RIP4, LIP4, 9000, 1005, flags::ACK, &[], b"xy");
        let mut with_options = plain[..34].to_vec();
        with_options.extend_from_slice(&[1, 1, 1, 0]);
        with_options.extend_from_slice(&plain[34..]);
        with_options[14] = 0x46;
        let total = u16::from_be_bytes([plain[16], plain[17]]) + 4;
        with_options[16..18].copy_from_slice(&total.to_be_bytes());
        let mut ip = crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut with_options[14..]);
        ip.fill_checksum();
        let (r, f) = outbound(&with_options, EGRESS);
        r.unwrap();
        let (_, plain_out) = outbound(&plain, EGRESS);
        assert_eq!(bytes(&f), bytes(&plain_out));
    }

    #[test]
    fn refusals_leave_the_frame_as_it_was() {
        let v6 = tcp_frame_v6_hop((CLIENT6, 40000), (VIP6, 80), 1, 2, flags::ACK, &[], &[7; 1400], 64);
        let (r, f) = inbound(&v6, false, Egress { mtu: 1400, ..EGRESS });
        assert_eq!(r.unwrap_err(), XmitError::MtuExceeded { len: 1440, mtu: 1400 });
        assert_eq!(bytes(&f), v6);
        let expiring = tcp_frame_v6_hop((CLIENT6, 40000), (VIP6, 80), 1, 2, flags::ACK, &[], b"", 1);
        let (r, f) = inbound(&expiring, false, EGRESS);
        assert_eq!(r.unwrap_err(), XmitError::TtlExpired { ttl: 1 });
        assert_eq!(bytes(&f), expiring);

        let v4 = tcp_frame(RIP4, LIP4, 1, 2, flags::ACK, &[], &[7; 1460]);
        let (r, f) = outbound(&v4, EGRESS);
        assert_eq!(r.unwrap_err(), XmitError::MtuExceeded { len: 1520, mtu: 1500 });
        assert_eq!(bytes(&f), v4);
        let mut cramped = BufFrame::with_geometry(&tcp_frame(RIP4, LIP4, 1, 2, flags::ACK, &[], b""), 8, 2048);
        let before = bytes(&cramped);
        let r = to_ipv6(&mut cramped, &meta_of(&before), (VIP6, 80), (CLIENT6, 40000), EGRESS);
        assert!(matches!(r, Err(XmitError::NoRoom(_))), "{r:?}");
        assert_eq!(bytes(&cramped), before);
        // A meta promising more than the frame holds.
        let mut meta = meta_of(&v4);
        meta.l4_len += 100;
        let mut f = BufFrame::new(&v4);
        assert!(matches!(to_ipv6(&mut f, &meta, (VIP6, 80), (CLIENT6, 1), EGRESS), Err(XmitError::Truncated { .. })));
        let mut meta = meta_v6_of(&v6);
        meta.protocol = ip_proto::ICMPV6;
        let mut f = BufFrame::new(&v6);
        assert_eq!(
            to_ipv4(&mut f, &meta, LIP4, RIP4, None, EGRESS).unwrap_err(),
            XmitError::UnsupportedProtocol(ip_proto::ICMPV6)
        );
    }

    /// An ICMPv4 error to LIP from `from`, quoting the segment the gateway
    /// sent the server (`LIP4 -> RIP4`), whole.
    fn icmp4_error(t: u8, c: u8, rest: u32, quoted_proto_udp: bool) -> Vec<u8> {
        let sent = if quoted_proto_udp {
            udp_frame(LIP4, RIP4, b"query", true)
        } else {
            tcp_frame(LIP4, RIP4, 1000, 2000, flags::ACK, &[], &[5; 100])
        };
        let repr = crate::wire::icmp::Icmpv4Repr { msg_type: t, msg_code: c, rest_of_header: rest, data: &sent[14..] };
        crate::wire::build::ipv4(Ipv4Addr::new(172, 16, 0, 254), LIP).ttl(60).icmp(&repr)
    }

    #[test]
    fn an_ipv4_error_about_a_server_segment_reaches_the_client_as_the_ipv6_error_about_its_own() {
        let before = icmp4_error(icmp::msg_type::DEST_UNREACHABLE, icmp::code::FRAG_NEEDED, 1400, false);
        let mut f = BufFrame::new(&before);
        icmp_error_to_v6(&mut f, &meta_of(&before), (VIP6, CLIENT6), ((CLIENT6, 40000), (VIP6, 80))).unwrap();
        let out = bytes(&f);
        assert_eq!(&out[12..14], &ETHERTYPE_IPV6);
        let ip = crate::wire::ipv6::Ipv6Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.next_header()), (VIP6, CLIENT6, 59, 58));
        let msg = crate::wire::icmpv6::Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(msg.verify_checksum(VIP6, CLIENT6));
        let m = ip.payload();
        assert_eq!((m[0], m[1], &m[4..8]), (icmpv6::msg_type::PACKET_TOO_BIG, 0, &1420u32.to_be_bytes()[..]));
        // The quote: the client's segment as it sent it, whole (it fits).
        let quoted = crate::wire::ipv6::Ipv6Packet::new_checked(&m[8..]).unwrap();
        assert_eq!((quoted.src_addr(), quoted.dst_addr(), quoted.next_header()), (CLIENT6, VIP6, ip_proto::TCP));
        assert_eq!(usize::from(quoted.payload_len()), 20 + 100);
        assert_eq!(&m[48..52], &[0x9c, 0x40, 0, 80], "ports 40000 -> 80");
        assert_eq!(m.len(), 8 + 40 + 120);

        // Port unreachable for a datagram; an IPv4 MTU low enough to be
        // raised to IPv6's minimum.
        let before = icmp4_error(icmp::msg_type::DEST_UNREACHABLE, 3, 0, true);
        let mut f = BufFrame::new(&before);
        icmp_error_to_v6(&mut f, &meta_of(&before), (VIP6, CLIENT6), ((CLIENT6, 5353), (VIP6, 53))).unwrap();
        let out = bytes(&f);
        assert_eq!((out[54], out[55]), (icmpv6::msg_type::DEST_UNREACHABLE, 4));
        assert_eq!(&out[102..106], &[0x14, 0xe9, 0, 53]);
        let before = icmp4_error(icmp::msg_type::DEST_UNREACHABLE, icmp::code::FRAG_NEEDED, 576, false);
        let mut f = BufFrame::new(&before);
        icmp_error_to_v6(&mut f, &meta_of(&before), (VIP6, CLIENT6), ((CLIENT6, 40000), (VIP6, 80))).unwrap();
        assert_eq!(&bytes(&f)[58..62], &1280u32.to_be_bytes());
    }

    #[test]
    fn an_ipv6_error_about_a_client_segment_reaches_the_server_as_the_ipv4_error_about_its_own() {
        // A router toward the client cannot carry 1500 bytes: the segment the
        // gateway sent the client (VIP6 -> CLIENT6) comes back quoted.
        let sent = tcp_frame_v6_hop((VIP6, 80), (CLIENT6, 40000), 9000, 1005, flags::ACK, &[], &[9; 1000], 63);
        let before = crate::wire::build::icmpv6_error(
            Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1),
            VIP6,
            icmpv6::msg_type::PACKET_TOO_BIG,
            0,
            1400,
            &sent[14..],
            1232,
        );
        let mut f = BufFrame::new(&before);
        icmp_error_to_v4(&mut f, &meta_v6_of(&before), (LIP, RIP), (RIP4, LIP4)).unwrap();
        let out = bytes(&f);
        assert_checksums_valid(&out);
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.protocol()), (LIP, RIP, 59, ip_proto::ICMP));
        let m = ip.payload();
        assert_eq!((m[0], m[1], &m[6..8]), (icmp::msg_type::DEST_UNREACHABLE, 4, &1380u16.to_be_bytes()[..]));
        let quoted = crate::wire::ipv4::Ipv4Packet::new_unchecked(&m[8..]);
        assert_eq!((quoted.src_addr(), quoted.dst_addr(), quoted.protocol()), (RIP, LIP, ip_proto::TCP));
        assert_eq!(quoted.total_len(), 20 + 20 + 1000, "the length the server sent");
        assert_eq!(&m[28..32], &[0x1f, 0x90, 0x13, 0x89], "ports 8080 -> 5001");
        assert_eq!(ip.total_len(), 576, "no more than RFC 1812's 576 bytes");

        // Hop limit exceeded toward the client: time exceeded to the server.
        let before =
            crate::wire::build::icmpv6_error(VIP6, VIP6, icmpv6::msg_type::TIME_EXCEEDED, 0, 0, &sent[14..], 100);
        let mut f = BufFrame::new(&before);
        icmp_error_to_v4(&mut f, &meta_v6_of(&before), (LIP, RIP), (RIP4, LIP4)).unwrap();
        let out = bytes(&f);
        assert_checksums_valid(&out);
        assert_eq!((out[34], out[35]), (icmp::msg_type::TIME_EXCEEDED, 0));
    }

    #[test]
    fn errors_without_a_counterpart_or_with_a_short_quote_are_refused_unchanged() {
        let before = icmp4_error(icmp::msg_type::PARAM_PROBLEM, 0, 0, false);
        let mut f = BufFrame::new(&before);
        let r = icmp_error_to_v6(&mut f, &meta_of(&before), (VIP6, CLIENT6), ((CLIENT6, 40000), (VIP6, 80)));
        assert_eq!(r, Err(XmitError::UnsupportedProtocol(ip_proto::ICMP)));
        assert_eq!(bytes(&f), before);
        let sent = tcp_frame_v6_hop((VIP6, 80), (CLIENT6, 40000), 9000, 1005, flags::ACK, &[], b"", 63);
        let short =
            crate::wire::build::icmpv6_error(VIP6, VIP6, icmpv6::msg_type::DEST_UNREACHABLE, 4, 0, &sent[14..], 44);
        let mut f = BufFrame::new(&short);
        let r = icmp_error_to_v4(&mut f, &meta_v6_of(&short), (LIP, RIP), (RIP4, LIP4));
        assert_eq!(r, Err(XmitError::BadIcmpQuote));
        assert_eq!(bytes(&f), short);
        let redirect =
            crate::wire::build::icmpv6_error(VIP6, VIP6, icmpv6::msg_type::PARAM_PROBLEM, 0, 6, &sent[14..], 80);
        let mut f = BufFrame::new(&redirect);
        let r = icmp_error_to_v4(&mut f, &meta_v6_of(&redirect), (LIP, RIP), (RIP4, LIP4));
        assert_eq!(r, Err(XmitError::UnsupportedProtocol(ip_proto::ICMPV6)));
    }

    proptest::proptest! {
        /// Any TCP segment over IPv6, any endpoints, with or without a TOA:
        /// translated to IPv4 its checksums verify and it says what was
        /// written; translated back (as the server's reply would be), the
        /// IPv6 checksum verifies and the payload is untouched.
        #[test]
        fn a_translated_segment_verifies_both_ways(
            v6 in proptest::array::uniform2(proptest::prelude::any::<u128>()),
            v4 in proptest::array::uniform2(proptest::prelude::any::<u32>()),
            ports in proptest::prelude::any::<[u16; 4]>(),
            (seq, ack, flag_bits, toa) in proptest::prelude::any::<(u32, u32, u8, bool)>(),
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            let (client, vip) = ((Ipv6Addr::from(v6[0]), ports[0]), (Ipv6Addr::from(v6[1]), ports[1]));
            let (local, server) = ((Ipv4Addr::from(v4[0]), ports[2]), (Ipv4Addr::from(v4[1]), ports[3]));
            let before = tcp_frame_v6_hop(client, vip, seq, ack, flag_bits, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], &payload, 64);
            let mut f = BufFrame::new(&before);
            let (m4, _) = to_ipv4(&mut f, &meta_v6_of(&before), local, server, toa.then_some(client), EGRESS).unwrap();
            let out = bytes(&f);
            assert_checksums_valid(&out);
            proptest::prop_assert_eq!((m4.src, m4.src_port, m4.dst, m4.dst_port), (local.0, local.1, server.0, server.1));
            proptest::prop_assert_eq!(meta_of(&out).l4_len, m4.l4_len);
            let seg = TcpPacket::new_checked(&out[34..]).unwrap();
            proptest::prop_assert_eq!((seg.seq_number(), seg.payload()), (seq, &payload[..]));

            let reply = tcp_frame(server, local, ack, seq, flag_bits, &[], &payload);
            let mut f = BufFrame::new(&reply);
            let m6 = to_ipv6(&mut f, &meta_of(&reply), vip, client, EGRESS).unwrap();
            let back = bytes(&f);
            assert_checksums_valid_v6(&back);
            proptest::prop_assert_eq!(meta_v6_of(&back), m6);
            let seg = TcpPacket::new_checked(&back[54..]).unwrap();
            proptest::prop_assert_eq!(seg.payload(), &payload[..]);
        }
    }
}
