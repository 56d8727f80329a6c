//! ICMPv6 errors the gateway originates about an IPv6 packet it cannot
//! forward (RFC 4443): hop limit exceeded in transit, and packet too big for
//! the next link, on which IPv6 path MTU discovery rests (IPv6 routers never
//! fragment). The counterpart of [`super::icmp_error::error_reply`] for IPv4.

use std::net::Ipv6Addr;

use super::XmitError;
use crate::frame::{Frame, TxOffload};
use crate::wire::icmpv6::{self, code, msg_type, Icmpv6Packet};
use crate::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use crate::wire::{ip_proto, Ipv6Meta};

/// The smallest MTU every IPv6 link has (RFC 8200 §5): an error is never
/// larger, so it reaches the sender whatever the path.
pub const MIN_MTU: usize = 1280;

/// Which error the gateway sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginatedErrorV6 {
    /// The hop limit ran out here (type 3, code 0).
    HopLimitExceeded,
    /// Too big for the next link (type 2): the largest packet that would
    /// fit, as the sender should send it (never below [`MIN_MTU`]).
    PacketTooBig { mtu: u32 },
}

impl OriginatedErrorV6 {
    /// Type, code and the 4 bytes after the checksum.
    fn header(self) -> (u8, u8, u32) {
        match self {
            OriginatedErrorV6::HopLimitExceeded => (msg_type::TIME_EXCEEDED, code::HOP_LIMIT_EXCEEDED, 0),
            OriginatedErrorV6::PacketTooBig { mtu } => (msg_type::PACKET_TOO_BIG, 0, mtu.max(MIN_MTU as u32)),
        }
    }
}

/// Turns an IPv6 packet the gateway cannot forward into the ICMPv6 error
/// answering it: from `from` to the packet's source, quoting as much of the
/// packet as keeps the error within [`MIN_MTU`], sent back to the Ethernet
/// address it came from. The checksum is computed in software: this is not
/// the fast path.
pub fn error_reply_v6<F: Frame>(
    frame: &mut F,
    meta: &Ipv6Meta,
    from: Ipv6Addr,
    error: OriginatedErrorV6,
) -> Result<(), XmitError> {
    const HEADERS: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
    let l2 = meta.l3_offset();
    let quoted = meta.ip_total_len().min(MIN_MTU - HEADERS);
    let needed = l2 + HEADERS + quoted;
    let len = frame.len();
    if len < l2 + quoted {
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

    let repr = Ipv6Repr::new(from, meta.src, ip_proto::ICMPV6, icmpv6::HEADER_LEN + quoted);
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut data[l2..l2 + ipv6::HEADER_LEN]));
    let (kind, code, rest) = error.header();
    let mut message = Icmpv6Packet::new_unchecked(&mut data[l2 + ipv6::HEADER_LEN..needed]);
    message.set_msg_type(kind);
    message.set_msg_code(code);
    message.set_rest_of_header(rest);
    message.fill_checksum(from, meta.src);
    frame.set_tx_offload(TxOffload::default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::build;
    use crate::wire::classify::classify_ipv6;
    use crate::wire::ethernet::EthernetFrame;
    use crate::wire::{ClassifyPolicy, MacAddr};

    const CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const GW: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    const MAC_CLIENT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const MAC_GW: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);

    fn packet(payload: usize) -> (BufFrame, Ipv6Meta) {
        let bytes = build::ipv6(CLIENT, VIP).macs(MAC_CLIENT, MAC_GW).hop_limit(1).udp(&crate::wire::udp::UdpRepr {
            src_port: 40000,
            dst_port: 53,
            payload: &vec![0xab; payload],
        });
        let frame = BufFrame::new(&bytes);
        let meta = classify_ipv6(&frame, ClassifyPolicy::default()).unwrap();
        (frame, meta)
    }

    /// The error as it leaves: MACs, the IPv6 header, the ICMPv6 header and
    /// checksum, and the quote.
    fn check(frame: &BufFrame, original: &[u8], kind: u8, rest: u32, quoted: usize) {
        let eth = EthernetFrame::new_checked(frame.data()).unwrap();
        assert_eq!((eth.dst_addr(), eth.src_addr()), (MAC_CLIENT, MAC_GW));
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (GW, CLIENT, ip_proto::ICMPV6));
        assert_eq!(usize::from(ip.payload_len()), 8 + quoted);
        assert_eq!(ip.hop_limit(), 64);
        let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((msg.msg_type(), msg.msg_code(), msg.rest_of_header()), (kind, 0, rest));
        assert!(msg.verify_checksum(GW, CLIENT));
        assert_eq!(msg.data(), &original[14..14 + quoted], "the quote is the packet as it came");
        assert!(frame.data().len() <= 14 + MIN_MTU);
    }

    #[test]
    fn hop_limit_exceeded_quotes_the_whole_small_packet() {
        let (mut frame, meta) = packet(20);
        let original = frame.data().to_vec();
        error_reply_v6(&mut frame, &meta, GW, OriginatedErrorV6::HopLimitExceeded).unwrap();
        check(&frame, &original, msg_type::TIME_EXCEEDED, 0, original.len() - 14);
    }

    #[test]
    fn packet_too_big_says_the_mtu_and_stays_within_the_minimum_mtu() {
        let (mut frame, meta) = packet(1400);
        let original = frame.data().to_vec();
        error_reply_v6(&mut frame, &meta, GW, OriginatedErrorV6::PacketTooBig { mtu: 1400 }).unwrap();
        check(&frame, &original, msg_type::PACKET_TOO_BIG, 1400, MIN_MTU - 48);
        assert_eq!(frame.data().len(), 14 + MIN_MTU);
        // Never an MTU below IPv6's minimum.
        let (mut frame, meta) = packet(10);
        error_reply_v6(&mut frame, &meta, GW, OriginatedErrorV6::PacketTooBig { mtu: 600 }).unwrap();
        let eth = EthernetFrame::new_checked(frame.data()).unwrap();
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(Icmpv6Packet::new_checked(ip.payload()).unwrap().mtu(), 1280);
    }

    #[test]
    fn a_meta_from_a_longer_frame_is_refused_unchanged() {
        let (_, meta) = packet(500);
        let (mut frame, _) = packet(10);
        let before = frame.data().to_vec();
        let e = error_reply_v6(&mut frame, &meta, GW, OriginatedErrorV6::HopLimitExceeded).unwrap_err();
        assert!(matches!(e, XmitError::Truncated { .. }), "{e:?}");
        assert_eq!(frame.data(), &before[..]);
    }
}
