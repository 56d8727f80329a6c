//! IP tunnelling (LVS `-i`): IPv4-in-IPv4 encapsulation (RFC 2003).
//!
//! The original packet, untouched, becomes the payload of a new IPv4 header
//! from a gateway address to the real server, which decapsulates it and
//! answers the client directly. The frame grows at the front by 20 bytes:
//! the Ethernet header moves forward and the outer header goes between it
//! and the inner packet, so the payload is never copied. The outer header
//! copies the inner TOS and DF bit (RFC 2003 §3.1); its identification comes
//! from the caller (a per-worker counter). A result larger than the MTU is
//! refused with [`XmitError::MtuExceeded`]: the caller answers a DF packet
//! with "fragmentation needed" (MTU minus 20) and drops the others, since
//! the gateway does not fragment.

use std::net::IpAddr;

use crate::frame::{Frame, FrameError, L4Offload};
use crate::wire::{checksum, ip_proto, ipv4, Ipv4Meta};

use super::{request_offload, v4, Offload, XmitError};

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
}
