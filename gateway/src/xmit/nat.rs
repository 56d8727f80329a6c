//! NAT (LVS masquerading): one endpoint of the packet is replaced.
//!
//! Inbound, the destination `VIP:vport` becomes `RIP:rport` and the client's
//! address is kept, so the real server must route its replies through the
//! director. Outbound, the source `RIP:rport` becomes `VIP:vport`. As in
//! FNAT, a shifted sequence space (SYN proxy) is carried by `seq_delta` and
//! `ack_delta`, and a shifted timestamp clock by `tsval_delta` (outbound)
//! and `tsecr_delta` (inbound).
//!
//! The worker's packets take these endpoints from
//! [`super::dispatch::Rewrite::of`]; [`NatRewrite`] and its two rewrites,
//! built only for tests (and the `testing` feature), are the reference the dispatch is checked against.

#![cfg(any(test, feature = "testing"))]

use std::net::IpAddr;

use crate::frame::Frame;
use crate::wire::Ipv4Meta;

use super::{translate, v4, Offload, Translation, XmitError};

/// The endpoint to write and the TCP adjustments of one NAT direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatRewrite {
    /// The real server (inbound) or the virtual service (outbound).
    pub addr: IpAddr,
    pub port: u16,
    /// Added to the TCP sequence number (mod 2^32).
    pub seq_delta: u32,
    /// Subtracted from the TCP acknowledgment number and SACK edges.
    pub ack_delta: u32,
    /// Added to the TSval of the TCP timestamps option (mod 2^32).
    pub tsval_delta: u32,
    /// Subtracted from the TSecr of the TCP timestamps option (segments
    /// with ACK set).
    pub tsecr_delta: u32,
    /// Act as a router hop: decrement TTL, refuse at 1.
    pub decrement_ttl: bool,
}

impl NatRewrite {
    pub fn new(addr: IpAddr, port: u16) -> Self {
        NatRewrite { addr, port, seq_delta: 0, ack_delta: 0, tsval_delta: 0, tsecr_delta: 0, decrement_ttl: false }
    }

    fn translation(&self, dst: bool) -> Result<Translation, XmitError> {
        let endpoint = Some((v4(self.addr)?.octets(), self.port));
        Ok(Translation {
            src: if dst { None } else { endpoint },
            dst: if dst { endpoint } else { None },
            seq_delta: self.seq_delta,
            ack_delta: self.ack_delta,
            tsval_delta: self.tsval_delta,
            tsecr_delta: self.tsecr_delta,
            mss_clamp: None,
            decrement_ttl: self.decrement_ttl,
        })
    }
}

/// Client to real server: the destination becomes `rw.addr:rw.port`. On
/// error the frame is unchanged. `meta` keeps the tuple as received (it is
/// `&mut` like every rewrite's, for rewrites that change the layout).
pub fn rewrite_inbound<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    rw: &NatRewrite,
    offload: Offload,
) -> Result<(), XmitError> {
    translate(frame, meta, offload, || rw.translation(true))
}

/// Real server to client: the source becomes `rw.addr:rw.port`. On error
/// the frame is unchanged. `meta` keeps the tuple as received.
pub fn rewrite_outbound<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    rw: &NatRewrite,
    offload: Offload,
) -> Result<(), XmitError> {
    translate(frame, meta, offload, || rw.translation(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufFrame, L4Offload};
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::*;

    #[test]
    fn golden_inbound_changes_only_the_destination() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 7, 8, flags::ACK, &[], b"abc");
        let expected = tcp_frame((CLIENT, 40000), (RIP, 8080), 7, 8, flags::ACK, &[], b"abc");
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        rewrite_inbound(&mut f, &mut meta, &NatRewrite::new(RIP.into(), 8080), Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);
        assert_eq!(meta, meta_of(&before), "the meta keeps the received tuple");
    }

    #[test]
    fn golden_outbound_changes_only_the_source() {
        let before = udp_frame((RIP, 8053), (CLIENT, 5353), b"answer", true);
        let expected = udp_frame((VIP, 53), (CLIENT, 5353), b"answer", true);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        rewrite_outbound(&mut f, &mut meta, &NatRewrite::new(VIP.into(), 53), Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);
        assert_eq!(meta, meta_of(&before), "the meta keeps the received tuple");
    }

    #[test]
    fn timestamps_round_trip() {
        // SYN proxy through NAT: the server's TSval moves into the space of
        // our SYN-ACK (TSval 100) on the way out, the client's echo of it
        // moves back on the way in.
        let ts_delta = 100u32.wrapping_sub(0xffff_ff00);
        let ts = |tsval: u32, tsecr: u32| {
            let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
            o[4..8].copy_from_slice(&tsval.to_be_bytes());
            o[8..12].copy_from_slice(&tsecr.to_be_bytes());
            o
        };
        let reply = tcp_frame((RIP, 8080), (CLIENT, 40000), 1, 2, flags::ACK, &ts(0xffff_ff10, 7), b"data");
        let expected = tcp_frame((VIP, 80), (CLIENT, 40000), 1, 2, flags::ACK, &ts(116, 7), b"data");
        let mut meta = meta_of(&reply);
        let mut f = BufFrame::new(&reply);
        let out = NatRewrite { tsval_delta: ts_delta, ..NatRewrite::new(VIP.into(), 80) };
        rewrite_outbound(&mut f, &mut meta, &out, Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);

        let ack = tcp_frame((CLIENT, 40000), (VIP, 80), 2, 5, flags::ACK, &ts(8, 116), b"");
        let expected = tcp_frame((CLIENT, 40000), (RIP, 8080), 2, 5, flags::ACK, &ts(8, 0xffff_ff10), b"");
        let mut meta = meta_of(&ack);
        let mut f = BufFrame::new(&ack);
        let inb = NatRewrite { tsecr_delta: ts_delta, ..NatRewrite::new(RIP.into(), 8080) };
        rewrite_inbound(&mut f, &mut meta, &inb, Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);
    }

    #[test]
    fn offloaded_udp() {
        let before = udp_frame((RIP, 8053), (CLIENT, 5353), b"answer", true);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        let off = Offload { ipv4_checksum: false, tcp_checksum: false, udp_checksum: true };
        rewrite_outbound(&mut f, &mut meta, &NatRewrite::new(VIP.into(), 53), off).unwrap();
        let out = bytes(&f);
        // The IPv4 checksum is still done in software.
        assert!(crate::wire::ipv4::Ipv4Packet::new_checked(&out[14..]).unwrap().verify_checksum());
        let want =
            crate::wire::checksum::fold(crate::wire::checksum::pseudo_header_v4(VIP.octets(), CLIENT.octets(), 17, 14));
        assert_eq!(u16::from_be_bytes([out[40], out[41]]), want);
        assert_eq!(f.tx_offload().l4, L4Offload::Udp);
        assert!(!f.tx_offload().ipv4_checksum);
    }
}
