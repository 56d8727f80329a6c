//! ARP for the gateway's own addresses: answering requests in place, learning
//! neighbours, and writing requests to resolve next hops.

use std::net::Ipv4Addr;

use crate::frame::{Frame, FrameError};
use crate::wire::arp::{self, ArpPacket};
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_ARP, ETHERTYPE_IPV4};
use crate::wire::MacAddr;

/// Smallest Ethernet frame without FCS: short frames are padded to it.
pub const MIN_FRAME_LEN: usize = 60;

/// What to do with an ARP packet after [`handle_arp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpVerdict {
    /// The frame now holds the reply: send it out of the port it came in on.
    Reply,
    /// Nothing to send; free the frame.
    Consumed,
}

/// What an ARP packet said, for the neighbour table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpSeen {
    pub verdict: ArpVerdict,
    pub sender_ip: Ipv4Addr,
    pub sender_mac: MacAddr,
    /// The packet was addressed to one of our addresses: learn its sender
    /// even if unknown (otherwise only refresh a known entry, as Linux does).
    pub for_us: bool,
    /// An ARP reply: its sender answered a request (perhaps another worker's,
    /// as ARP lands on one queue), so the other workers may be waiting for it.
    pub answer: bool,
    /// The sender may be learned (a unicast MAC and a real address; not an
    /// address-conflict probe from 0.0.0.0).
    pub learnable: bool,
}

/// Why an ARP packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpDrop {
    /// Too short, or not Ethernet/IPv4 ARP.
    Malformed,
    /// Neither a request nor a reply.
    UnknownOperation(u16),
}

/// Handles an ARP packet whose ARP header starts at `l2_len`. A request for
/// an address `is_ours` accepts is turned into the reply in place (VLAN tag
/// kept).
pub fn handle_arp<F: Frame>(
    frame: &mut F,
    l2_len: usize,
    our_mac: MacAddr,
    is_ours: impl Fn(Ipv4Addr) -> bool,
) -> Result<ArpSeen, ArpDrop> {
    let data = frame.data_mut();
    let Some(body) = data.get_mut(l2_len..) else { return Err(ArpDrop::Malformed) };
    let mut pkt = ArpPacket::new_checked(body).map_err(|_| ArpDrop::Malformed)?;
    let op = pkt.operation();
    let (sender_ip, sender_mac, target_ip) =
        (pkt.sender_protocol_addr(), pkt.sender_hardware_addr(), pkt.target_protocol_addr());
    let for_us = is_ours(target_ip);
    let learnable = !sender_mac.is_multicast() && !sender_ip.is_unspecified() && !sender_ip.is_broadcast();
    let verdict = match op {
        arp::OP_REQUEST if for_us && !sender_mac.is_multicast() => {
            pkt.set_operation(arp::OP_REPLY);
            pkt.set_target_hardware_addr(sender_mac);
            pkt.set_target_protocol_addr(sender_ip);
            pkt.set_sender_hardware_addr(our_mac);
            pkt.set_sender_protocol_addr(target_ip);
            let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
            eth.set_dst_addr(sender_mac);
            eth.set_src_addr(our_mac);
            ArpVerdict::Reply
        }
        arp::OP_REQUEST | arp::OP_REPLY => ArpVerdict::Consumed,
        other => return Err(ArpDrop::UnknownOperation(other)),
    };
    Ok(ArpSeen { verdict, sender_ip, sender_mac, for_us, answer: op == arp::OP_REPLY, learnable })
}

/// Writes a broadcast ARP request for `target` into an empty frame.
pub fn write_arp_request<F: Frame>(
    frame: &mut F,
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
) -> Result<(), FrameError> {
    let start = frame.len();
    frame.append(MIN_FRAME_LEN)?;
    let data = &mut frame.data_mut()[start..];
    data.fill(0);
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst_addr(MacAddr::BROADCAST);
    eth.set_src_addr(our_mac);
    eth.set_outer_ethertype(ETHERTYPE_ARP);
    let mut pkt = ArpPacket::new_unchecked(&mut data[14..14 + arp::PACKET_LEN]);
    pkt.set_ethernet_ipv4();
    pkt.set_operation(arp::OP_REQUEST);
    pkt.set_sender_hardware_addr(our_mac);
    pkt.set_sender_protocol_addr(our_ip);
    pkt.set_target_hardware_addr(MacAddr([0; 6]));
    pkt.set_target_protocol_addr(target);
    debug_assert_eq!(ETHERTYPE_IPV4, 0x0800);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;

    const OUR_MAC: MacAddr = MacAddr([0x02, 0x47, 0x57, 0, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    /// Who has 10.0.0.1? Tell 10.0.0.2 — from 52:54:00:12:34:56, padded to 60.
    const REQUEST: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, // ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op=request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 2, // sha spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 1, // tha tpa
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // padding
    ];

    /// 10.0.0.1 is at 02:47:57:00:00:01 — to 52:54:00:12:34:56.
    const REPLY: [u8; 60] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 0x08, 0x06, // ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // op=reply
        0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sha spa
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 2, // tha tpa
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn a_request_for_us_becomes_the_reply() {
        let mut f = BufFrame::new(&REQUEST);
        let seen = handle_arp(&mut f, 14, OUR_MAC, |ip| ip == Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!(
            seen,
            ArpSeen {
                verdict: ArpVerdict::Reply,
                sender_ip: Ipv4Addr::new(10, 0, 0, 2),
                sender_mac: PEER_MAC,
                for_us: true,
                answer: false,
                learnable: true
            }
        );
        assert_eq!(f.data(), &REPLY[..]);
    }

    #[test]
    fn a_request_for_someone_else_is_only_seen() {
        let mut f = BufFrame::new(&REQUEST);
        let seen = handle_arp(&mut f, 14, OUR_MAC, |_| false).unwrap();
        assert_eq!((seen.verdict, seen.for_us), (ArpVerdict::Consumed, false));
        assert_eq!(f.data(), &REQUEST[..], "untouched");
    }

    #[test]
    fn a_reply_to_us_is_learnable() {
        // The reply we would have sent, seen from the other side.
        let mut f = BufFrame::new(&REPLY);
        let seen = handle_arp(&mut f, 14, PEER_MAC, |ip| ip == Ipv4Addr::new(10, 0, 0, 2)).unwrap();
        assert_eq!(seen.verdict, ArpVerdict::Consumed);
        assert_eq!((seen.sender_ip, seen.sender_mac, seen.for_us), (Ipv4Addr::new(10, 0, 0, 1), OUR_MAC, true));
        assert!(seen.answer);
    }

    #[test]
    fn probes_are_answered_but_not_learned() {
        let mut probe = REQUEST;
        probe[28..32].copy_from_slice(&[0, 0, 0, 0]);
        let mut f = BufFrame::new(&probe);
        let seen = handle_arp(&mut f, 14, OUR_MAC, |ip| ip == Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!((seen.verdict, seen.learnable), (ArpVerdict::Reply, false));
    }

    #[test]
    fn malformed_and_unknown_operations_are_dropped() {
        let mut short = BufFrame::new(&REQUEST[..30]);
        assert_eq!(handle_arp(&mut short, 14, OUR_MAC, |_| true), Err(ArpDrop::Malformed));
        let mut rarp = REQUEST;
        rarp[21] = 3;
        assert_eq!(handle_arp(&mut BufFrame::new(&rarp), 14, OUR_MAC, |_| true), Err(ArpDrop::UnknownOperation(3)));
        let mut not_ipv4 = REQUEST;
        not_ipv4[16] = 0x86;
        assert_eq!(handle_arp(&mut BufFrame::new(&not_ipv4), 14, OUR_MAC, |_| true), Err(ArpDrop::Malformed));
        assert_eq!(handle_arp(&mut BufFrame::new(&REQUEST), 100, OUR_MAC, |_| true), Err(ArpDrop::Malformed));
    }

    #[test]
    fn writes_the_request_byte_for_byte() {
        let mut f = BufFrame::new(&[]);
        write_arp_request(&mut f, PEER_MAC, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!(f.data(), &REQUEST[..]);
    }
}
