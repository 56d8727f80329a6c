//! ICMP errors that belong to a connection, and the time-exceeded answer.
//!
//! An ICMP error about a packet the gateway translated quotes that packet as
//! the gateway sent it. Before relaying the error to the other side, both
//! the outer header (who the error goes to, and from whom it appears to
//! come) and the quoted header (so the receiver recognises its own packet)
//! are rewritten. In FNAT, an error from the real-server side about
//! `LIP:lport -> RIP:rport` goes to the client as `VIP -> CIP` quoting
//! `CIP:cport -> VIP:vport`; in NAT only the quoted source and the outer
//! source (`RIP -> VIP`) change, as Linux IPVS does.
//!
//! The quoted IPv4 header checksum and, when quoted in full, the quoted
//! TCP/UDP checksum are updated incrementally. The ICMP checksum covers the
//! whole message and no NIC offloads it, so it is verified first (a corrupt
//! error is dropped, never relayed with a fresh checksum) and recomputed
//! after the rewrite, as Linux IPVS does (`ip_vs_nat_icmp`); ICMP errors are
//! rare and at most a few hundred bytes.
//!
//! ICMPv6 errors ([`rewrite_v6`]) are relayed the same way, with what IPv6
//! changes: no header checksums, a hop limit for the TTL, and an ICMPv6
//! checksum that covers the outer pseudo-header too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::frame::{Frame, L4Offload, TxOffload};
use crate::wire::checksum::{self, Delta};
use crate::wire::classify::{icmp_error_inner, icmpv6_error_inner};
use crate::wire::icmp::{self, code, msg_type};
use crate::wire::icmpv6;
use crate::wire::{ip_proto, ipv4, ipv6, Ipv4Meta, Ipv6Meta};

use super::{request_offload, request_offload_v6, v4, Offload, XmitError};

/// How to rewrite one relayed ICMP error. `None` leaves a field as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IcmpErrorRewrite {
    pub outer_src: Option<IpAddr>,
    pub outer_dst: Option<IpAddr>,
    /// New source address and port of the quoted packet.
    pub inner_src: Option<(IpAddr, u16)>,
    /// New destination address and port of the quoted packet.
    pub inner_dst: Option<(IpAddr, u16)>,
    /// Added to the quoted TCP sequence number (the inverse of the delta the
    /// quoted packet's direction was shifted by).
    pub inner_seq_delta: u32,
    pub decrement_ttl: bool,
}

fn opt_v4(a: Option<IpAddr>) -> Result<Option<Ipv4Addr>, XmitError> {
    a.map(v4).transpose()
}

#[inline]
fn swap_word(b: &mut [u8], at: usize, new: [u8; 2], delta: &mut Delta) {
    let old = u16::from_be_bytes([b[at], b[at + 1]]);
    delta.replace16(old, u16::from_be_bytes(new));
    b[at..at + 2].copy_from_slice(&new);
}

#[inline]
fn swap_addr(b: &mut [u8], at: usize, new: Ipv4Addr, delta: &mut Delta) {
    let old = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    delta.replace32(old, u32::from(new));
    b[at..at + 4].copy_from_slice(&new.octets());
}

/// Rewrites a classified ICMP error (see [`Ipv4Meta::is_icmp_error`]) in
/// place. On error the frame is unchanged. `meta` describes the packet as
/// received.
pub fn rewrite<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    rw: &IcmpErrorRewrite,
    offload: Offload,
) -> Result<(), XmitError> {
    let outer_src = opt_v4(rw.outer_src)?;
    let outer_dst = opt_v4(rw.outer_dst)?;
    let inner_src = rw.inner_src.map(|(a, p)| v4(a).map(|a| (a, p))).transpose()?;
    let inner_dst = rw.inner_dst.map(|(a, p)| v4(a).map(|a| (a, p))).transpose()?;
    if meta.protocol != ip_proto::ICMP || !meta.is_icmp_error() {
        return Err(XmitError::UnsupportedProtocol(meta.protocol));
    }
    let quote = icmp_error_inner(frame.data(), meta).map_err(|_| XmitError::BadIcmpQuote)?;
    let (l3, l4, end) = (meta.l3_offset(), meta.l4_offset(), meta.l3_offset() + meta.ip_total_len());
    let len = frame.len();
    // icmp_error_inner proved l3..end is in the frame and holds the quote.
    let message = frame.data().get(l4..end).ok_or(XmitError::Truncated { needed: end, len })?;
    if !checksum::verify(message, 0) {
        return Err(XmitError::BadIcmpChecksum);
    }
    let ttl = frame.data()[l3 + ipv4::offset::TTL];
    if rw.decrement_ttl && ttl <= 1 {
        return Err(XmitError::TtlExpired { ttl });
    }

    let data = frame.data_mut();
    // Outer header.
    let mut outer = Delta::new();
    let ip = &mut data[l3..l3 + ipv4::MIN_HEADER_LEN];
    if rw.decrement_ttl {
        swap_word(ip, ipv4::offset::TTL, [ttl - 1, ip[ipv4::offset::PROTOCOL]], &mut outer);
    }
    if let Some(a) = outer_src {
        swap_addr(ip, ipv4::offset::SRC, a, &mut outer);
    }
    if let Some(a) = outer_dst {
        swap_addr(ip, ipv4::offset::DST, a, &mut outer);
    }
    let c = if offload.ipv4_checksum { 0 } else { outer.apply(u16::from_be_bytes([ip[10], ip[11]])) };
    ip[10..12].copy_from_slice(&c.to_be_bytes());

    // Quoted header and the first bytes of its layer 4.
    let quoted = &mut data[quote.l3_offset..end];
    let mut inner_ip = Delta::new();
    if let Some((a, _)) = inner_src {
        swap_addr(quoted, ipv4::offset::SRC, a, &mut inner_ip);
    }
    if let Some((a, _)) = inner_dst {
        swap_addr(quoted, ipv4::offset::DST, a, &mut inner_ip);
    }
    let c = inner_ip.apply(u16::from_be_bytes([quoted[10], quoted[11]]));
    quoted[10..12].copy_from_slice(&c.to_be_bytes());
    let protocol = quote.tuple.protocol;
    let inner_l4 = &mut quoted[quote.l3_len..];
    if matches!(protocol, ip_proto::TCP | ip_proto::UDP) {
        let mut l4_delta = inner_ip;
        if let Some((_, p)) = inner_src {
            swap_word(inner_l4, 0, p.to_be_bytes(), &mut l4_delta);
        }
        if let Some((_, p)) = inner_dst {
            swap_word(inner_l4, 2, p.to_be_bytes(), &mut l4_delta);
        }
        let checksum_at = if protocol == ip_proto::TCP {
            if rw.inner_seq_delta != 0 {
                let old = u32::from_be_bytes([inner_l4[4], inner_l4[5], inner_l4[6], inner_l4[7]]);
                let new = old.wrapping_add(rw.inner_seq_delta);
                l4_delta.replace32(old, new);
                inner_l4[4..8].copy_from_slice(&new.to_be_bytes());
            }
            16
        } else {
            6
        };
        if let Some(field) = inner_l4.get_mut(checksum_at..checksum_at + 2) {
            let old = u16::from_be_bytes([field[0], field[1]]);
            // A UDP datagram sent without a checksum keeps none.
            if !(protocol == ip_proto::UDP && old == 0) {
                let new = match l4_delta.apply(old) {
                    0 if protocol == ip_proto::UDP => 0xffff,
                    c => c,
                };
                field.copy_from_slice(&new.to_be_bytes());
            }
        }
    }

    let message = &mut data[l4..end];
    message[icmp::CHECKSUM_OFFSET..icmp::CHECKSUM_OFFSET + 2].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(message);
    message[icmp::CHECKSUM_OFFSET..icmp::CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());

    request_offload(frame, meta, offload.ipv4_checksum, L4Offload::None);
    Ok(())
}

fn v6(addr: IpAddr) -> Result<Ipv6Addr, XmitError> {
    match addr {
        IpAddr::V6(a) => Ok(a),
        IpAddr::V4(_) => Err(XmitError::AddressFamily(addr)),
    }
}

#[inline]
fn swap_addr_v6(b: &mut [u8], at: usize, new: Ipv6Addr, delta: &mut Delta) {
    let mut old = [0; 16];
    old.copy_from_slice(&b[at..at + 16]);
    delta.replace_ipv6_addr(old, new.octets());
    b[at..at + 16].copy_from_slice(&new.octets());
}

/// [`rewrite`] for an ICMPv6 error (see [`Ipv6Meta::is_icmp_error`]): the
/// outer addresses and hop limit (no header checksum), the quoted packet's
/// addresses and ports with its TCP/UDP checksum updated incrementally when
/// quoted (IPv6 quotes carry no header checksum), and the ICMPv6 checksum,
/// verified first and then recomputed over the whole message with the new
/// outer pseudo-header, since both it and the quote changed. On error the
/// frame is unchanged. `meta` describes the packet as received.
pub fn rewrite_v6<F: Frame>(frame: &mut F, meta: &Ipv6Meta, rw: &IcmpErrorRewrite) -> Result<(), XmitError> {
    let outer_src = rw.outer_src.map(v6).transpose()?;
    let outer_dst = rw.outer_dst.map(v6).transpose()?;
    let inner_src = rw.inner_src.map(|(a, p)| v6(a).map(|a| (a, p))).transpose()?;
    let inner_dst = rw.inner_dst.map(|(a, p)| v6(a).map(|a| (a, p))).transpose()?;
    if meta.protocol != ip_proto::ICMPV6 || !meta.is_icmp_error() {
        return Err(XmitError::UnsupportedProtocol(meta.protocol));
    }
    let quote = icmpv6_error_inner(frame.data(), meta).map_err(|_| XmitError::BadIcmpQuote)?;
    let (l3, l4, end) = (meta.l3_offset(), meta.l4_offset(), meta.l3_offset() + meta.ip_total_len());
    let len = frame.len();
    // icmpv6_error_inner proved l3..end is in the frame and holds the quote.
    let message = frame.data().get(l4..end).ok_or(XmitError::Truncated { needed: end, len })?;
    let received = |at: usize| {
        let mut a = [0; 16];
        a.copy_from_slice(&frame.data()[l3 + at..l3 + at + 16]);
        a
    };
    let (src, dst) = (received(ipv6::offset::SRC), received(ipv6::offset::DST));
    if !checksum::verify(message, checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, message.len() as u32)) {
        return Err(XmitError::BadIcmpChecksum);
    }
    let hop_limit = frame.data()[l3 + ipv6::offset::HOP_LIMIT];
    if rw.decrement_ttl && hop_limit <= 1 {
        return Err(XmitError::TtlExpired { ttl: hop_limit });
    }
    let src = outer_src.map_or(src, |a| a.octets());
    let dst = outer_dst.map_or(dst, |a| a.octets());

    let data = frame.data_mut();
    // Outer header: in no checksum but the ICMPv6 one, recomputed below.
    let ip = &mut data[l3..l3 + ipv6::HEADER_LEN];
    if rw.decrement_ttl {
        ip[ipv6::offset::HOP_LIMIT] = hop_limit - 1;
    }
    ip[ipv6::offset::SRC..ipv6::offset::SRC + 16].copy_from_slice(&src);
    ip[ipv6::offset::DST..ipv6::offset::DST + 16].copy_from_slice(&dst);

    // The quoted packet: its addresses enter only its own pseudo-header.
    let quoted = &mut data[quote.l3_offset..end];
    let mut l4_delta = Delta::new();
    if let Some((a, _)) = inner_src {
        swap_addr_v6(quoted, ipv6::offset::SRC, a, &mut l4_delta);
    }
    if let Some((a, _)) = inner_dst {
        swap_addr_v6(quoted, ipv6::offset::DST, a, &mut l4_delta);
    }
    let protocol = quote.tuple.protocol;
    let inner_l4 = &mut quoted[quote.l3_len..];
    if matches!(protocol, ip_proto::TCP | ip_proto::UDP) {
        if let Some((_, p)) = inner_src {
            swap_word(inner_l4, 0, p.to_be_bytes(), &mut l4_delta);
        }
        if let Some((_, p)) = inner_dst {
            swap_word(inner_l4, 2, p.to_be_bytes(), &mut l4_delta);
        }
        let checksum_at = if protocol == ip_proto::TCP {
            if rw.inner_seq_delta != 0 {
                let old = u32::from_be_bytes([inner_l4[4], inner_l4[5], inner_l4[6], inner_l4[7]]);
                let new = old.wrapping_add(rw.inner_seq_delta);
                l4_delta.replace32(old, new);
                inner_l4[4..8].copy_from_slice(&new.to_be_bytes());
            }
            16
        } else {
            6
        };
        if let Some(field) = inner_l4.get_mut(checksum_at..checksum_at + 2) {
            let old = u16::from_be_bytes([field[0], field[1]]);
            // A quoted zero is what was sent (invalid over IPv6, but the
            // sender's to own): it is not turned into a sum of nothing.
            if old != 0 {
                let new = match l4_delta.apply(old) {
                    0 if protocol == ip_proto::UDP => 0xffff,
                    c => c,
                };
                field.copy_from_slice(&new.to_be_bytes());
            }
        }
    }

    let message = &mut data[l4..end];
    let at = icmpv6::CHECKSUM_OFFSET;
    message[at..at + 2].copy_from_slice(&[0, 0]);
    let phdr = checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, message.len() as u32);
    let c = checksum::finish(checksum::sum(message) + phdr);
    message[at..at + 2].copy_from_slice(&c.to_be_bytes());

    request_offload_v6(frame, meta, L4Offload::None);
    Ok(())
}

/// An ICMP error the gateway originates about a packet it cannot forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginatedError {
    /// The TTL ran out here (RFC 792 time exceeded in transit).
    TimeExceeded,
    /// Too big for the next link with DF set (RFC 1191): the largest packet
    /// that would fit, as the sender should send it.
    FragmentationNeeded { next_hop_mtu: u16 },
}

impl OriginatedError {
    /// Type, code and the 4 bytes after the checksum.
    fn header(self) -> [u8; 8] {
        match self {
            OriginatedError::TimeExceeded => [msg_type::TIME_EXCEEDED, code::TTL_EXCEEDED, 0, 0, 0, 0, 0, 0],
            OriginatedError::FragmentationNeeded { next_hop_mtu } => {
                let m = next_hop_mtu.to_be_bytes();
                [msg_type::DEST_UNREACHABLE, code::FRAG_NEEDED, 0, 0, 0, 0, m[0], m[1]]
            }
        }
    }
}

/// Turns a packet the gateway cannot forward into the ICMP error answering
/// it: from `from` to the packet's source, quoting its IPv4 header and first
/// 8 bytes (the RFC 792 minimum, which holds the ports), sent back to the
/// Ethernet address it came from. Checksums are computed in software: this
/// is not the fast path.
pub fn error_reply<F: Frame>(
    frame: &mut F,
    meta: &Ipv4Meta,
    from: Ipv4Addr,
    error: OriginatedError,
) -> Result<(), XmitError> {
    const HEADERS: usize = ipv4::MIN_HEADER_LEN + icmp::HEADER_LEN;
    let l2 = meta.l3_offset();
    let quoted = usize::from(meta.l3_len) + usize::from(meta.l4_len).min(8);
    let needed = l2 + HEADERS + quoted;
    let len = frame.len();
    if len < l2 + quoted || usize::from(meta.l3_len) < ipv4::MIN_HEADER_LEN {
        return Err(XmitError::Truncated { needed: l2 + quoted, len });
    }
    if len < needed {
        frame.append(needed - len).map_err(XmitError::NoRoom)?;
    } else {
        frame.trim(len - needed).map_err(XmitError::NoRoom)?;
    }
    let data = frame.data_mut();
    data.copy_within(l2..l2 + quoted, l2 + HEADERS);
    // Back to where it came from.
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&data[6..12]);
    macs[6..].copy_from_slice(&data[..6]);
    data[..12].copy_from_slice(&macs);

    let total = ((HEADERS + quoted) as u16).to_be_bytes();
    let (s, d) = (from.octets(), meta.src.octets());
    // DSCP CS6 (internetwork control) and TTL 64, as Linux sends its errors.
    #[rustfmt::skip]
    let ip: [u8; 20] = [
        0x45, 0xc0, total[0], total[1], 0, 0, 0, 0, 64, ip_proto::ICMP, 0, 0,
        s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3],
    ];
    data[l2..l2 + 20].copy_from_slice(&ip);
    let c = checksum::checksum(&ip);
    data[l2 + 10..l2 + 12].copy_from_slice(&c.to_be_bytes());
    let message = &mut data[l2 + 20..needed];
    message[..8].copy_from_slice(&error.header());
    let c = checksum::checksum(message);
    message[2..4].copy_from_slice(&c.to_be_bytes());
    frame.set_tx_offload(TxOffload::default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::icmp::Icmpv4Packet;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::*;

    const ROUTER: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 9);

    fn fnat_to_client() -> IcmpErrorRewrite {
        IcmpErrorRewrite {
            outer_src: Some(VIP.into()),
            outer_dst: Some(CLIENT.into()),
            inner_src: Some((CLIENT.into(), 40000)),
            inner_dst: Some((VIP.into(), 80)),
            inner_seq_delta: 0,
            decrement_ttl: false,
        }
    }

    #[test]
    fn golden_fnat_error_relayed_to_the_client() {
        // What the gateway sent to the real server, with a shifted seq.
        let sent = tcp_frame((LIP, 5001), (RIP, 8080), 1100, 7, flags::ACK, &[], b"0123456789");
        let original = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 7, flags::ACK, &[], b"0123456789");
        for quote_len in [28, 40, 1000] {
            let before = icmp_error(ROUTER, LIP, 3, code::FRAG_NEEDED, &sent[14..], quote_len);
            let expected = icmp_error(VIP, CLIENT, 3, code::FRAG_NEEDED, &original[14..], quote_len);
            let mut meta = meta_of(&before);
            let mut f = BufFrame::new(&before);
            let rw = IcmpErrorRewrite { inner_seq_delta: 100u32.wrapping_neg(), ..fnat_to_client() };
            rewrite(&mut f, &mut meta, &rw, Offload::NONE).unwrap();
            let out = bytes(&f);
            assert_eq!(out, expected, "quote of {quote_len} bytes");
            assert_eq!(meta.l4_len, meta_of(&out).l4_len);
            assert_checksums_valid(&out);
        }
    }

    #[test]
    fn golden_nat_udp_error() {
        let sent = udp_frame((RIP, 8053), (CLIENT, 5353), b"answer", true);
        let original = udp_frame((VIP, 53), (CLIENT, 5353), b"answer", true);
        let before = icmp_error(RIP, CLIENT, 3, 3, &sent[14..], 100);
        let expected = icmp_error(VIP, CLIENT, 3, 3, &original[14..], 100);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        let rw =
            IcmpErrorRewrite { outer_src: Some(VIP.into()), inner_src: Some((VIP.into(), 53)), ..Default::default() };
        rewrite(&mut f, &mut meta, &rw, Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);
    }

    #[test]
    fn corrupt_or_unusable_errors_are_refused_untouched() {
        let sent = tcp_frame((LIP, 5001), (RIP, 8080), 1, 2, flags::ACK, &[], b"");
        let mut before = icmp_error(ROUTER, LIP, 11, 0, &sent[14..], 28);
        let mut meta = meta_of(&before);
        before[36] ^= 0xff;
        let mut f = BufFrame::new(&before);
        assert_eq!(rewrite(&mut f, &mut meta, &fnat_to_client(), Offload::NONE), Err(XmitError::BadIcmpChecksum));
        assert_eq!(bytes(&f), before);
        let short = icmp_error(ROUTER, LIP, 11, 0, &sent[14..], 27);
        let mut meta = meta_of(&short);
        let mut f = BufFrame::new(&short);
        assert_eq!(rewrite(&mut f, &mut meta, &fnat_to_client(), Offload::NONE), Err(XmitError::BadIcmpQuote));
        let echo = icmp_error(ROUTER, LIP, 8, 0, &sent[14..], 28);
        let mut meta = meta_of(&echo);
        let mut f = BufFrame::new(&echo);
        assert_eq!(
            rewrite(&mut f, &mut meta, &fnat_to_client(), Offload::NONE),
            Err(XmitError::UnsupportedProtocol(1))
        );
    }

    #[test]
    fn time_exceeded_answers_the_sender() {
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        for payload in [&b""[..], b"abc", b"a longer payload than eight bytes"] {
            let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], payload);
            let meta = meta_of(&before);
            let mut f = BufFrame::new(&before);
            error_reply(&mut f, &meta, gw, OriginatedError::TimeExceeded).unwrap();
            let out = bytes(&f);
            assert_checksums_valid(&out);
            assert_eq!(&out[..6], &before[6..12]);
            assert_eq!(&out[6..12], &before[..6]);
            let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
            assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol()), (gw, CLIENT, 1));
            let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
            assert_eq!((m.msg_type(), m.msg_code()), (11, 0));
            // The IPv4 header and the first 8 bytes of TCP.
            assert_eq!(m.data(), &before[14..42]);
            let em = meta_of(&out);
            assert!(em.is_icmp_error());
            let q = icmp_error_inner(&out, &em).unwrap();
            assert_eq!(q.tuple, meta.tuple());
        }
    }

    #[test]
    fn fragmentation_needed_carries_the_next_hop_mtu() {
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], &[0x55; 1460]);
        let meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        error_reply(&mut f, &meta, gw, OriginatedError::FragmentationNeeded { next_hop_mtu: 1480 }).unwrap();
        let out = bytes(&f);
        assert_checksums_valid(&out);
        assert_eq!(out.len(), 14 + 20 + 8 + 28, "the header and 8 bytes are quoted, not the payload");
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((m.msg_type(), m.msg_code()), (3, 4));
        assert_eq!(&out[38..42], &[0, 0, 0x05, 0xc8], "unused, then MTU 1480");
        assert_eq!(m.data(), &before[14..42]);
    }

    mod v6 {
        use super::*;
        use crate::conn::Direction;
        use crate::model::ForwardMethod;
        use crate::wire::build::icmpv6_error;
        use crate::wire::icmpv6::msg_type as v6_type;
        use crate::wire::tcp::TcpPacket;
        use crate::xmit::{Ends, Rewrite};

        const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0x16, 0, 0, 0, 9);
        const ENDS6: Ends<Ipv6Addr> = Ends {
            client: (CLIENT6, 40000),
            virtual_service: (VIP6, 80),
            local: (LIP6, 5001),
            real_server: (RIP6, 8080),
        };

        fn relayed(method: ForwardMethod, dir: Direction) -> IcmpErrorRewrite {
            match Rewrite::of(method, dir, &ENDS6) {
                Rewrite::Translate(e) => e.icmp_error(),
                other => panic!("{other:?}"),
            }
        }

        /// The error as its sender built it, then with the hop limit it
        /// leaves the gateway with.
        fn error_frame(from: Ipv6Addr, to: Ipv6Addr, t: u8, rest: u32, quoted: &[u8], len: usize, hop: u8) -> Vec<u8> {
            let mut b = icmpv6_error(from, to, t, 0, rest, quoted, len);
            b[14 + ipv6::offset::HOP_LIMIT] = hop;
            b
        }

        fn assert_icmpv6_valid(b: &[u8]) {
            let meta = meta_v6_of(b);
            let message = &b[meta.l4_offset()..meta.l3_offset() + meta.ip_total_len()];
            let phdr = checksum::pseudo_header_v6(meta.src.octets(), meta.dst.octets(), 58, message.len() as u32);
            assert!(checksum::verify(message, phdr), "icmpv6 checksum");
        }

        /// A packet too big from a router on the real server's side, about
        /// `LIP:lport -> RIP:rport` (its seq shifted by 100), reaches the
        /// client as `VIP -> CIP` quoting `CIP:cport -> VIP:vport`: every
        /// byte as the client's own packet had it, whatever the quote's
        /// length (the whole segment, the header and a part, 8 bytes).
        #[test]
        fn golden_fnat_packet_too_big_relayed_to_the_client() {
            let sent = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1100, 7, flags::ACK, &[], b"0123456789");
            let original = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 7, flags::ACK, &[], b"0123456789");
            let rw = IcmpErrorRewrite {
                inner_seq_delta: 100u32.wrapping_neg(),
                ..relayed(ForwardMethod::FullNat, Direction::Out)
            };
            assert_eq!((rw.outer_src, rw.outer_dst), (Some(VIP6.into()), Some(CLIENT6.into())));
            assert_eq!((rw.inner_src, rw.inner_dst), (Some((CLIENT6.into(), 40000)), Some((VIP6.into(), 80))));
            let t = v6_type::PACKET_TOO_BIG;
            for quote_len in [48, 60, 1000] {
                let before = error_frame(ROUTER6, LIP6, t, 1400, &sent[14..], quote_len, 60);
                let expected = error_frame(VIP6, CLIENT6, t, 1400, &original[14..], quote_len, 59);
                let meta = meta_v6_of(&before);
                let mut f = BufFrame::new(&before);
                rewrite_v6(&mut f, &meta, &rw).unwrap();
                let out = bytes(&f);
                assert_eq!(out, expected, "quote of {quote_len} bytes");
                assert_icmpv6_valid(&out);
                if quote_len == 1000 {
                    let quoted = TcpPacket::new_checked(&out[14 + 48 + 40..]).unwrap();
                    assert!(quoted.verify_checksum_v6(CLIENT6, VIP6), "the quoted segment's checksum");
                }
            }
        }

        /// NAT: the real server's port unreachable about `CIP:cport ->
        /// RIP:rport` goes out from the VIP, quoting `CIP:cport ->
        /// VIP:vport` (the outer destination is the client already).
        #[test]
        fn golden_nat_udp_error() {
            let sent = udp_frame_v6((CLIENT6, 5353), (RIP6, 8080), b"query");
            let original = udp_frame_v6((CLIENT6, 5353), (VIP6, 80), b"query");
            let rw = relayed(ForwardMethod::Masq, Direction::Out);
            assert_eq!((rw.outer_src, rw.outer_dst), (Some(VIP6.into()), None));
            assert_eq!((rw.inner_src, rw.inner_dst), (None, Some((VIP6.into(), 80))));
            let t = v6_type::DEST_UNREACHABLE;
            let before = error_frame(RIP6, CLIENT6, t, 0, &sent[14..], 200, 60);
            let expected = error_frame(VIP6, CLIENT6, t, 0, &original[14..], 200, 59);
            let mut f = BufFrame::new(&before);
            rewrite_v6(&mut f, &meta_v6_of(&before), &rw).unwrap();
            assert_eq!(bytes(&f), expected);
            assert_icmpv6_valid(&expected);
        }

        #[test]
        fn refusals_leave_the_error_untouched() {
            let sent = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1, 2, flags::ACK, &[], b"");
            let rw = relayed(ForwardMethod::FullNat, Direction::Out);
            let t = v6_type::TIME_EXCEEDED;
            let good = error_frame(ROUTER6, LIP6, t, 0, &sent[14..], 48, 60);
            let meta = meta_v6_of(&good);
            let mut corrupt = good.clone();
            corrupt[70] ^= 0xff;
            let mut f = BufFrame::new(&corrupt);
            assert_eq!(rewrite_v6(&mut f, &meta, &rw), Err(XmitError::BadIcmpChecksum));
            assert_eq!(bytes(&f), corrupt);
            let last_hop = error_frame(ROUTER6, LIP6, t, 0, &sent[14..], 48, 1);
            let mut f = BufFrame::new(&last_hop);
            assert_eq!(rewrite_v6(&mut f, &meta_v6_of(&last_hop), &rw), Err(XmitError::TtlExpired { ttl: 1 }));
            assert_eq!(bytes(&f), last_hop);
            let v4_addr = IcmpErrorRewrite { outer_dst: Some(CLIENT.into()), ..rw };
            let mut f = BufFrame::new(&good);
            assert_eq!(rewrite_v6(&mut f, &meta, &v4_addr), Err(XmitError::AddressFamily(CLIENT.into())));
            // A quote without the ports.
            let short = error_frame(ROUTER6, LIP6, t, 0, &sent[14..], 47, 60);
            let mut f = BufFrame::new(&short);
            assert_eq!(rewrite_v6(&mut f, &meta_v6_of(&short), &rw), Err(XmitError::BadIcmpQuote));
            assert_eq!(bytes(&f), short);
        }
    }
}
