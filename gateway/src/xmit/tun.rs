//! IP tunnelling (LVS `-i`): IPv4-in-IPv4 (RFC 2003) for IPv4 services,
//! IPv6-in-IPv6 (RFC 2473, Linux's ip6ip6) for IPv6 ones.
//!
//! The original packet, untouched, becomes the payload of a new IP header
//! from a gateway address to the real server, which decapsulates it and
//! answers the client directly. The frame grows at the front by the outer
//! header (20 bytes, or 40 for IPv6): the Ethernet header moves forward and
//! the outer header goes between it and the inner packet, so the payload is
//! never copied. The outer IPv4 header copies the inner TOS and DF bit (RFC
//! 2003 §3.1); its identification comes from the caller (a per-worker
//! counter). The outer IPv6 header copies the inner traffic class, as
//! IPVS's ip6ip6 transmit does, and the inner flow label, so one flow's
//! packets stay one flow to the routers on the way (RFC 6438). The inner
//! packet crosses no router hop here (its TTL or hop limit is as it
//! arrived, as IPVS leaves it; the caller has refused one that expires).
//! A result larger than the MTU is refused with [`XmitError::MtuExceeded`]:
//! the caller answers an IPv4 DF packet with "fragmentation needed" (MTU
//! minus 20) and drops the others, since the gateway does not fragment; an
//! IPv6 packet, never fragmented on the way, with packet too big (MTU minus
//! 40).

use std::net::{IpAddr, Ipv6Addr};

use crate::frame::{Frame, FrameError, L4Offload};
use crate::wire::{checksum, ip_proto, ipv4, ipv6, Ipv4Meta, Ipv6Meta};

use super::{request_offload, request_offload_v6, v4, Offload, XmitError};

/// Outer header of one tunnelled packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunEncap {
    /// A gateway address.
    pub src: IpAddr,
    /// The real server.
    pub dst: IpAddr,
    pub ttl: u8,
    /// Outer identification.
    pub ident: u16,
    /// Egress MTU.
    pub mtu: u16,
}

/// Encapsulates a classified IPv4 packet. On success `meta` describes the
/// outer packet (its layer 4 is the inner IPv4 packet). On error the frame
/// is unchanged.
#[inline]
pub fn encapsulate<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    encap: &TunEncap,
    offload: Offload,
) -> Result<(), XmitError> {
    const OUTER: usize = ipv4::MIN_HEADER_LEN;
    let src = v4(encap.src)?;
    let dst = v4(encap.dst)?;
    let l2 = meta.l3_offset();
    let inner_len = meta.ip_total_len();
    let outer_len = inner_len + OUTER;
    if outer_len > usize::from(encap.mtu) {
        return Err(XmitError::MtuExceeded { len: outer_len, mtu: encap.mtu });
    }
    let len = frame.len();
    let inner = frame.data().get(l2..l2 + inner_len).ok_or(XmitError::Truncated { needed: l2 + inner_len, len })?;
    let Some(inner) = inner.first_chunk::<OUTER>() else {
        return Err(XmitError::Truncated { needed: l2 + OUTER, len });
    };
    let tos = inner[1];
    let df = u16::from_be_bytes([inner[6], inner[7]]) & ipv4::FLAG_DF;
    if frame.headroom() < OUTER {
        return Err(XmitError::NoRoom(FrameError::NoHeadroom { wanted: OUTER, available: frame.headroom() }));
    }
    // Ethernet padding after the inner packet must not end up inside the
    // outer one's length accounting on the wire.
    let padding = len - (l2 + inner_len);
    if padding > 0 {
        frame.trim(padding).map_err(XmitError::NoRoom)?;
    }
    frame.prepend(OUTER).map_err(XmitError::NoRoom)?;
    let data = frame.data_mut();
    data.copy_within(OUTER..OUTER + l2, 0);
    let Some(outer) = data.get_mut(l2..l2 + OUTER).and_then(|h| h.first_chunk_mut::<OUTER>()) else {
        return Err(XmitError::Truncated { needed: l2 + OUTER, len });
    };
    let total = (outer_len as u16).to_be_bytes();
    let ident = encap.ident.to_be_bytes();
    let flags = df.to_be_bytes();
    let (s, d) = (src.octets(), dst.octets());
    // One header row per line, as RFC 791 draws it.
    #[rustfmt::skip]
    let header = [
        0x45, tos, total[0], total[1],
        ident[0], ident[1], flags[0], flags[1],
        encap.ttl, ip_proto::IPIP, 0, 0,
        s[0], s[1], s[2], s[3],
        d[0], d[1], d[2], d[3],
    ];
    *outer = header;
    if !offload.ipv4_checksum {
        let c = checksum::checksum(outer);
        outer[10..12].copy_from_slice(&c.to_be_bytes());
    }
    *meta = Ipv4Meta {
        l3_len: OUTER as u8,
        l4_len: inner_len as u16,
        protocol: ip_proto::IPIP,
        ttl: encap.ttl,
        src,
        dst,
        ..*meta
    };
    request_offload(frame, meta, offload.ipv4_checksum, L4Offload::None);
    Ok(())
}

/// Outer header of one packet tunnelled over IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunEncapV6 {
    /// The gateway's address on the egress port.
    pub src: Ipv6Addr,
    /// The real server.
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// Egress MTU.
    pub mtu: u16,
}

/// Encapsulates a classified IPv6 packet in an IPv6 header (next header
/// 41). On success `meta` describes the outer packet (its layer 4 is the
/// inner IPv6 packet, extension headers and all). On error the frame is
/// unchanged. There is no header checksum, and the inner packet's
/// checksums hold as they are: no offload is requested.
#[inline]
pub fn encapsulate_v6<F: Frame>(frame: &mut F, meta: &mut Ipv6Meta, encap: &TunEncapV6) -> Result<(), XmitError> {
    const OUTER: usize = ipv6::HEADER_LEN;
    let l2 = meta.l3_offset();
    let inner_len = meta.ip_total_len();
    let outer_len = inner_len + OUTER;
    if outer_len > usize::from(encap.mtu) {
        return Err(XmitError::MtuExceeded { len: outer_len, mtu: encap.mtu });
    }
    let len = frame.len();
    let inner = frame.data().get(l2..l2 + inner_len).ok_or(XmitError::Truncated { needed: l2 + inner_len, len })?;
    let Some(inner) = inner.first_chunk::<OUTER>() else {
        return Err(XmitError::Truncated { needed: l2 + OUTER, len });
    };
    // Version, traffic class and flow label (see the module docs).
    let ver_tc_flow = [inner[0], inner[1], inner[2], inner[3]];
    if frame.headroom() < OUTER {
        return Err(XmitError::NoRoom(FrameError::NoHeadroom { wanted: OUTER, available: frame.headroom() }));
    }
    let padding = len - (l2 + inner_len);
    if padding > 0 {
        frame.trim(padding).map_err(XmitError::NoRoom)?;
    }
    frame.prepend(OUTER).map_err(XmitError::NoRoom)?;
    let data = frame.data_mut();
    data.copy_within(OUTER..OUTER + l2, 0);
    let Some(outer) = data.get_mut(l2..l2 + OUTER).and_then(|h| h.first_chunk_mut::<OUTER>()) else {
        return Err(XmitError::Truncated { needed: l2 + OUTER, len });
    };
    // Within the MTU checked above, so within the 16-bit payload length.
    let payload_len = (inner_len as u16).to_be_bytes();
    outer[..4].copy_from_slice(&ver_tc_flow);
    outer[ipv6::offset::PAYLOAD_LEN..ipv6::offset::NEXT_HEADER].copy_from_slice(&payload_len);
    outer[ipv6::offset::NEXT_HEADER] = ip_proto::IPV6;
    outer[ipv6::offset::HOP_LIMIT] = encap.hop_limit;
    outer[ipv6::offset::SRC..ipv6::offset::DST].copy_from_slice(&encap.src.octets());
    outer[ipv6::offset::DST..].copy_from_slice(&encap.dst.octets());
    *meta = Ipv6Meta {
        l3_len: OUTER as u16,
        l4_len: inner_len as u16,
        protocol: ip_proto::IPV6,
        hop_limit: encap.hop_limit,
        src: encap.src,
        dst: encap.dst,
        ..*meta
    };
    request_offload_v6(frame, meta, L4Offload::None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::*;
    use std::net::Ipv4Addr;

    const GW: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 254);

    fn encap() -> TunEncap {
        TunEncap { src: GW.into(), dst: RIP.into(), ttl: 64, ident: 0x0102, mtu: 1500 }
    }

    #[test]
    fn golden_encapsulation() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], b"payload");
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        encapsulate(&mut f, &mut meta, &encap(), Offload::NONE).unwrap();
        let out = bytes(&f);
        let mut expected = before[..14].to_vec();
        let mut outer = [0u8; 20];
        let mut ip = Ipv4Packet::new_unchecked(&mut outer[..]);
        ip.set_version_and_header_len(20);
        ip.set_total_len((before.len() - 14 + 20) as u16);
        ip.set_ident(0x0102);
        ip.set_flags_and_frag_offset(true, false, 0);
        ip.set_ttl(64);
        ip.set_protocol(ip_proto::IPIP);
        ip.set_src_addr(GW);
        ip.set_dst_addr(RIP);
        ip.fill_checksum();
        expected.extend_from_slice(&outer);
        expected.extend_from_slice(&before[14..]);
        assert_eq!(out, expected);
        assert_checksums_valid(&out);
        assert_eq!((meta.l2_len, meta.l3_len, meta.l4_len), (14, 20, (before.len() - 14) as u16));
        assert_eq!((meta.protocol, meta.src, meta.dst, meta.ttl), (ip_proto::IPIP, GW, RIP, 64));
    }

    #[test]
    fn padding_is_dropped_and_tos_copied() {
        let mut before = udp_frame((CLIENT, 1), (VIP, 53), b"q", true);
        before[15] = 0xb8;
        Ipv4Packet::new_unchecked(&mut before[14..]).fill_checksum();
        let inner = before[14..].to_vec();
        before.extend_from_slice(&[0; 17]);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        encapsulate(&mut f, &mut meta, &encap(), Offload::ALL).unwrap();
        let out = bytes(&f);
        assert_eq!(out.len(), 14 + 20 + inner.len());
        assert_eq!(&out[34..], &inner[..]);
        assert_eq!(out[15], 0xb8);
        assert_eq!(out[20] & 0x40, 0, "DF copied (clear)");
        assert_eq!(&out[24..26], &[0, 0], "left to the NIC");
        let off = f.tx_offload();
        assert!(off.ipv4_checksum);
        assert_eq!((off.l2_len, off.l3_len, off.l4), (14, 20, L4Offload::None));
    }

    #[test]
    fn too_big_for_the_mtu_is_an_error() {
        let before = tcp_frame((CLIENT, 1), (VIP, 80), 1, 2, flags::ACK, &[], &[0; 1460]);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        let e = encapsulate(&mut f, &mut meta, &encap(), Offload::NONE).unwrap_err();
        assert_eq!(e, XmitError::MtuExceeded { len: 1520, mtu: 1500 });
        assert_eq!(e.to_string(), "1520-byte packet exceeds the 1500-byte mtu");
        assert_eq!(bytes(&f), before);
        let mut f = BufFrame::with_geometry(&before, 19, 2048);
        let e = encapsulate(&mut f, &mut meta, &TunEncap { mtu: 9000, ..encap() }, Offload::NONE).unwrap_err();
        assert_eq!(e.drop_reason(), crate::wire::DropReason::NoRoom);
        assert_eq!(bytes(&f), before);
    }

    /// IPv6-in-IPv6.
    mod v6 {
        use super::*;
        use crate::frame::TxOffload;
        use crate::wire::build;
        use crate::wire::ipv6::Ipv6Packet;

        const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0x16, 0, 0, 0, 0xfe);

        fn encap6(mtu: u16) -> TunEncapV6 {
            TunEncapV6 { src: GW6, dst: RIP6, hop_limit: 64, mtu }
        }

        /// A client's segment with a traffic class (DSCP EF) and a flow label.
        fn marked_segment(payload: &[u8]) -> Vec<u8> {
            build::ipv6(CLIENT6, VIP6).dscp(46).flow_label(0x1_2345).hop_limit(57).tcp(&crate::wire::tcp::TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq_number: 1,
                ack_number: 2,
                flags: flags::ACK,
                window_len: 512,
                options: &[],
                payload,
            })
        }

        #[test]
        fn golden_encapsulation() {
            let before = marked_segment(b"payload");
            let mut meta = meta_v6_of(&before);
            let mut f = BufFrame::new(&before);
            encapsulate_v6(&mut f, &mut meta, &encap6(1500)).unwrap();
            let out = bytes(&f);
            let inner_len = before.len() - 14;
            let payload_len = (inner_len as u16).to_be_bytes();
            let mut expected = before[..14].to_vec();
            // Version 6, traffic class 0xb8 (EF), flow label 0x12345: the inner's.
            expected.extend_from_slice(&[0x6b, 0x81, 0x23, 0x45]);
            expected.extend_from_slice(&[payload_len[0], payload_len[1], 41, 64]);
            expected.extend_from_slice(&GW6.octets());
            expected.extend_from_slice(&RIP6.octets());
            expected.extend_from_slice(&before[14..]);
            assert_eq!(out, expected);
            // The same header as the frame builder writes it.
            let built = build::ipv6(GW6, RIP6).dscp(46).flow_label(0x1_2345).ip_payload(41, &before[14..]);
            assert_eq!(&out[14..], &built[14..]);
            let inner = Ipv6Packet::new_checked(&out[54..]).unwrap();
            assert_eq!((inner.hop_limit(), inner.src_addr(), inner.dst_addr()), (57, CLIENT6, VIP6));
            assert_eq!((meta.l2_len, meta.l3_len, meta.l4_len), (14, 40, inner_len as u16));
            assert_eq!((meta.protocol, meta.src, meta.dst, meta.hop_limit), (41, GW6, RIP6, 64));
            assert_eq!((meta.src_port, meta.dst_port), (40000, 80), "the inner ports stay in the meta");
        }

        #[test]
        fn padding_is_dropped_behind_a_vlan_tag_and_a_transmit_request_cleared() {
            let tagged = build::ipv6(CLIENT6, VIP6)
                .vlan(crate::wire::ethernet::VlanTag { pcp: 0, dei: false, vid: 7 })
                .udp(&crate::wire::udp::UdpRepr { src_port: 5353, dst_port: 53, payload: b"q" });
            let inner = tagged[18..].to_vec();
            let mut before = tagged.clone();
            before.extend_from_slice(&[0; 9]);
            let mut meta = meta_v6_of(&before);
            let mut f = BufFrame::new(&before);
            let stale = TxOffload { l2_len: 18, l3_len: 40, ipv4_checksum: false, ipv6: true, l4: L4Offload::Udp };
            f.set_tx_offload(stale);
            encapsulate_v6(&mut f, &mut meta, &encap6(1500)).unwrap();
            let out = bytes(&f);
            assert_eq!(out.len(), 18 + 40 + inner.len());
            assert_eq!(&out[..18], &tagged[..18], "Ethernet header and tag moved forward");
            assert_eq!(&out[18 + 4..18 + 6], &(inner.len() as u16).to_be_bytes());
            assert_eq!(&out[58..], &inner[..]);
            assert_eq!(f.tx_offload(), TxOffload::default());
            assert_eq!((meta.l2_len, meta.l3_len), (18, 40));
        }

        #[test]
        fn too_big_for_the_mtu_or_the_headroom_is_an_error_and_the_frame_unchanged() {
            let before = marked_segment(&[0; 1440]);
            assert_eq!(before.len() - 14, 1500);
            let mut meta = meta_v6_of(&before);
            let received = meta;
            let mut f = BufFrame::new(&before);
            let e = encapsulate_v6(&mut f, &mut meta, &encap6(1500)).unwrap_err();
            assert_eq!(e, XmitError::MtuExceeded { len: 1540, mtu: 1500 });
            assert_eq!(e.drop_reason(), crate::wire::DropReason::MtuExceeded);
            assert_eq!((bytes(&f), meta), (before.clone(), received));
            // Exactly the MTU goes.
            encapsulate_v6(&mut f, &mut meta, &encap6(1540)).unwrap();
            assert_eq!(bytes(&f).len(), 14 + 1540);

            let mut meta = received;
            let mut f = BufFrame::with_geometry(&before, 39, 2048);
            let e = encapsulate_v6(&mut f, &mut meta, &encap6(9000)).unwrap_err();
            assert_eq!(e, XmitError::NoRoom(FrameError::NoHeadroom { wanted: 40, available: 39 }));
            assert_eq!((bytes(&f), meta), (before.clone(), received));
            let mut f = BufFrame::with_geometry(&before, 40, 2048);
            encapsulate_v6(&mut f, &mut meta, &encap6(9000)).unwrap();
            assert_eq!(&bytes(&f)[54..], &before[14..]);
        }
    }
}
