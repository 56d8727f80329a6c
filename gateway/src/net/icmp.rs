//! ICMP for the gateway itself: echo replies for its own addresses, IPv4 and
//! IPv6 (turned around in place), the RFC 1122/1812 rule of when an error may be sent at
//! all, and a token bucket to rate-limit errors. The errors themselves are
//! built in place by `xmit::icmp_error`.

use std::net::Ipv4Addr;

use crate::frame::Frame;
use crate::wire::checksum::{self, Delta};
use crate::wire::ethernet::EthernetFrame;
use crate::wire::icmp::{self, msg_type, Icmpv4Packet};
use crate::wire::icmpv6::{self, Icmpv6Packet};
use crate::wire::ipv4::{Ipv4Packet, MIN_HEADER_LEN};
use crate::wire::ipv6::{self, Ipv6Packet};
use crate::wire::{ip_proto, DropReason, Ipv4Meta, Ipv6Meta};

/// TTL of packets the gateway originates.
pub const DEFAULT_TTL: u8 = 64;

/// Turns an echo request to one of our addresses into its reply, in place:
/// addresses swapped, type 0, a fresh TTL, checksums fixed.
pub fn echo_reply_in_place<F: Frame>(frame: &mut F, meta: &Ipv4Meta) -> Result<(), DropReason> {
    if meta.protocol != ip_proto::ICMP || meta.icmp_type != msg_type::ECHO_REQUEST || meta.icmp_code != 0 {
        return Err(DropReason::NotRewritable);
    }
    let l3 = meta.l3_offset();
    let l4 = meta.l4_offset();
    let end = l3 + meta.ip_total_len();
    let data = frame.data_mut();
    if data.len() < end {
        return Err(DropReason::Truncated);
    }
    if checksum::checksum(&data[l4..end]) != 0 {
        return Err(DropReason::BadL4Checksum);
    }
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    let (src_mac, dst_mac) = (eth.src_addr(), eth.dst_addr());
    eth.set_dst_addr(src_mac);
    eth.set_src_addr(dst_mac);

    let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..end]);
    ip.set_src_addr(meta.dst);
    ip.set_dst_addr(meta.src);
    ip.set_ttl(DEFAULT_TTL);
    ip.fill_checksum();

    let mut msg = Icmpv4Packet::new_unchecked(&mut data[l4..end]);
    let mut delta = Delta::default();
    delta.replace16(u16::from(msg_type::ECHO_REQUEST) << 8, u16::from(msg_type::ECHO_REPLY) << 8);
    let sum = msg.checksum();
    msg.set_msg_type(msg_type::ECHO_REPLY);
    msg.set_checksum(delta.apply(sum));
    Ok(())
}

/// Turns an ICMPv6 echo request to one of our addresses into its reply, in
/// place: addresses swapped, type 129, hop limit [`DEFAULT_TTL`], the
/// checksum adjusted for the type alone (the pseudo-header sums the same
/// with the addresses swapped). Refused as [`DropReason::NotRewritable`]: a
/// request to a multicast address or from `::` or a multicast one (the
/// reply would have no unicast source or no destination), and one with
/// extension headers (rare for a ping; answering would mean turning a
/// routing header around).
pub fn echo_reply_in_place_v6<F: Frame>(frame: &mut F, meta: &Ipv6Meta) -> Result<(), DropReason> {
    if meta.protocol != ip_proto::ICMPV6
        || meta.icmp_type != icmpv6::msg_type::ECHO_REQUEST
        || meta.icmp_code != 0
        || usize::from(meta.l3_len) != ipv6::HEADER_LEN
        || meta.dst.is_multicast()
        || meta.src.is_multicast()
        || meta.src.is_unspecified()
    {
        return Err(DropReason::NotRewritable);
    }
    let l3 = meta.l3_offset();
    let l4 = meta.l4_offset();
    let end = l3 + meta.ip_total_len();
    let data = frame.data_mut();
    if data.len() < end {
        return Err(DropReason::Truncated);
    }
    if !Icmpv6Packet::new_unchecked(&data[l4..end]).verify_checksum(meta.src, meta.dst) {
        return Err(DropReason::BadL4Checksum);
    }
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    let (src_mac, dst_mac) = (eth.src_addr(), eth.dst_addr());
    eth.set_dst_addr(src_mac);
    eth.set_src_addr(dst_mac);

    let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..l4]);
    ip.set_src_addr(meta.dst);
    ip.set_dst_addr(meta.src);
    ip.set_hop_limit(DEFAULT_TTL);

    let mut msg = Icmpv6Packet::new_unchecked(&mut data[l4..end]);
    let mut delta = Delta::default();
    delta.replace16(u16::from(icmpv6::msg_type::ECHO_REQUEST) << 8, u16::from(icmpv6::msg_type::ECHO_REPLY) << 8);
    let sum = msg.checksum();
    msg.set_msg_type(icmpv6::msg_type::ECHO_REPLY);
    msg.set_checksum(delta.apply(sum));
    Ok(())
}

/// Why no ICMP error is sent about a packet (RFC 1122 3.2.2 and 1812 4.3.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSuppressed {
    /// The offending packet is itself an ICMP error.
    AboutAnError,
    /// Not the first fragment.
    LaterFragment,
    /// Its source is not a single host (zero, broadcast, multicast, loopback).
    SourceNotAHost,
    /// Too short to quote an IPv4 header.
    Malformed,
}

/// Checks whether an error may be sent about `offending` (bytes from its IPv4
/// header) and returns its source, the error's destination.
pub fn error_destination(offending: &[u8]) -> Result<Ipv4Addr, ErrorSuppressed> {
    let ip = Ipv4Packet::new_unchecked(offending);
    if offending.len() < MIN_HEADER_LEN || ip.version() != 4 || ip.header_len() > offending.len() {
        return Err(ErrorSuppressed::Malformed);
    }
    let src = ip.src_addr();
    if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src.is_loopback() {
        return Err(ErrorSuppressed::SourceNotAHost);
    }
    if ip.frag_offset() != 0 {
        return Err(ErrorSuppressed::LaterFragment);
    }
    if ip.protocol() == ip_proto::ICMP {
        let t = offending.get(ip.header_len()).copied();
        if t.is_none_or(icmp::is_relayed_error) || t.is_some_and(|t| !matches!(t, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18))
        {
            return Err(ErrorSuppressed::AboutAnError);
        }
    }
    Ok(src)
}

/// A token bucket: at most `burst` events at once and `per_second` on
/// average. Time is milliseconds from the caller's coarse clock.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_second: u32,
    burst: u32,
    tokens: u32,
    last_ms: u64,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter { per_second, burst, tokens: burst, last_ms: 0 }
    }

    /// Whether one more event may happen at `now_ms`; takes a token if so.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        let refill = elapsed.saturating_mul(u64::from(self.per_second)) / 1000;
        if refill > 0 {
            self.tokens = (u64::from(self.tokens) + refill).min(u64::from(self.burst)) as u32;
            // Keep the remainder: advance only by the time the refill stands for.
            self.last_ms += refill * 1000 / u64::from(self.per_second.max(1));
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::frame::RxChecksum;
    use crate::wire::classify::classify_bytes;
    use crate::wire::MacAddr;
    use crate::wire::{Classified, ClassifyPolicy};

    const OUR_MAC: MacAddr = MacAddr([0x02, 0x47, 0x57, 0, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);

    /// ping 10.0.0.1 from 10.0.0.2: id 0x1234, seq 1, 4 bytes of data "abcd".
    fn echo_request() -> Vec<u8> {
        let mut f = vec![
            0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00, // ethernet
            0x45, 0x00, 0x00, 0x20, 0xab, 0xcd, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 2, 10, 0, 0,
            1, // ipv4
            0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd', // icmp echo request
        ];
        let ip_sum = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&ip_sum.to_be_bytes());
        let icmp_sum = checksum::checksum(&f[34..]);
        f[36..38].copy_from_slice(&icmp_sum.to_be_bytes());
        f
    }

    fn meta(bytes: &[u8]) -> Ipv4Meta {
        match classify_bytes(bytes, RxChecksum::default(), ClassifyPolicy::default()).unwrap() {
            Classified::Ipv4(m) => m,
            other => panic!("not IPv4: {other:?}"),
        }
    }

    #[test]
    fn echo_request_becomes_a_valid_reply() {
        let req = echo_request();
        let mut f = BufFrame::new(&req);
        echo_reply_in_place(&mut f, &meta(&req)).unwrap();
        let out = f.data();
        assert_eq!(&out[0..6], &PEER_MAC.0);
        assert_eq!(&out[6..12], &OUR_MAC.0);
        assert_eq!(&out[26..30], &[10, 0, 0, 1], "source is the address pinged");
        assert_eq!(&out[30..34], &[10, 0, 0, 2]);
        assert_eq!(out[22], DEFAULT_TTL);
        assert_eq!(out[34], msg_type::ECHO_REPLY);
        assert_eq!(&out[38..], &req[38..], "identifier, sequence and data echoed");
        assert_eq!(checksum::checksum(&out[14..34]), 0, "IPv4 checksum verifies");
        assert_eq!(checksum::checksum(&out[34..]), 0, "ICMP checksum verifies");
        // Cross-check with an independent parser.
        let parsed = etherparse::SlicedPacket::from_ethernet(out).unwrap();
        assert!(matches!(parsed.net, Some(etherparse::NetSlice::Ipv4(_))));
    }

    #[test]
    fn corrupt_or_non_echo_requests_are_refused() {
        let mut req = echo_request();
        req[44] ^= 1;
        let m = meta(&req);
        assert_eq!(echo_reply_in_place(&mut BufFrame::new(&req), &m), Err(DropReason::BadL4Checksum));
        let mut reply = echo_request();
        reply[34] = msg_type::ECHO_REPLY;
        let m = meta(&reply);
        assert_eq!(echo_reply_in_place(&mut BufFrame::new(&reply), &m), Err(DropReason::NotRewritable));
    }

    const HOST6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const PEER6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// ping6 2001:db8::1 from 2001:db8::2: id 0x1234, seq 1, "ping".
    fn echo_request_v6(to: std::net::Ipv6Addr) -> Vec<u8> {
        let echo = crate::wire::icmpv6::Icmpv6Repr {
            msg_type: icmpv6::msg_type::ECHO_REQUEST,
            msg_code: 0,
            rest_of_header: 0x1234_0001,
            data: b"ping",
        };
        crate::wire::build::ipv6(PEER6, to).macs(PEER_MAC, OUR_MAC).icmpv6(&echo)
    }

    fn meta6(bytes: &[u8]) -> Ipv6Meta {
        crate::wire::classify_ipv6(&BufFrame::new(bytes), ClassifyPolicy::default()).unwrap()
    }

    /// The reply [`HOST6`] -> [`PEER6`] (its checksum computed outside this
    /// crate).
    #[rustfmt::skip]
    const ECHO_REPLY_V6: [u8; 66] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 0x86, 0xdd,
        0x60, 0, 0, 0, 0x00, 0x0c, 58, 64,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        129, 0, 0x32, 0x3e, 0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn echo_request_v6_becomes_the_reply() {
        let req = echo_request_v6(HOST6);
        let mut f = BufFrame::new(&req);
        echo_reply_in_place_v6(&mut f, &meta6(&req)).unwrap();
        assert_eq!(f.data(), &ECHO_REPLY_V6[..]);
        let icmp = etherparse::Icmpv6Slice::from_slice(&f.data()[54..]).unwrap();
        assert!(icmp.is_checksum_valid(HOST6.octets(), PEER6.octets()));
    }

    #[test]
    fn echo_requests_v6_that_cannot_be_answered_are_refused() {
        let mut bad = echo_request_v6(HOST6);
        bad[60] ^= 1;
        let m = meta6(&bad);
        assert_eq!(echo_reply_in_place_v6(&mut BufFrame::new(&bad), &m), Err(DropReason::BadL4Checksum));
        let all_nodes = echo_request_v6(crate::wire::ipv6::ALL_NODES);
        let m = meta6(&all_nodes);
        assert_eq!(echo_reply_in_place_v6(&mut BufFrame::new(&all_nodes), &m), Err(DropReason::NotRewritable));
        let mut reply = echo_request_v6(HOST6);
        reply[54] = icmpv6::msg_type::ECHO_REPLY;
        let m = meta6(&reply);
        assert_eq!(echo_reply_in_place_v6(&mut BufFrame::new(&reply), &m), Err(DropReason::NotRewritable));
    }

    #[test]
    fn no_error_about_errors_fragments_or_non_hosts() {
        let req = echo_request();
        let mut err = req.clone();
        err[34] = msg_type::DEST_UNREACHABLE;
        assert_eq!(error_destination(&err[14..]), Err(ErrorSuppressed::AboutAnError));
        let mut frag = req.clone();
        frag[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
        assert_eq!(error_destination(&frag[14..]), Err(ErrorSuppressed::LaterFragment));
        let mut bcast = req.clone();
        bcast[26..30].copy_from_slice(&[255, 255, 255, 255]);
        assert_eq!(error_destination(&bcast[14..]), Err(ErrorSuppressed::SourceNotAHost));
        assert_eq!(error_destination(&req[14..20]), Err(ErrorSuppressed::Malformed));
        assert_eq!(error_destination(&req[14..]), Ok(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn rate_limiter_allows_the_burst_then_the_rate() {
        let mut r = RateLimiter::new(10, 3);
        assert!((0..3).all(|_| r.allow(0)));
        assert!(!r.allow(0));
        assert!(!r.allow(99), "a token takes 100 ms at 10/s");
        assert!(r.allow(100));
        assert!(!r.allow(150));
        assert!(r.allow(10_000) && r.allow(10_000) && r.allow(10_000) && !r.allow(10_000), "refill caps at the burst");
    }
}
