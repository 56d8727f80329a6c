//! Whole frames composed from the reprs, for the tests, the benches, the
//! fuzzer's seeds and gwbench's tests: the one place outside the dataplane
//! that writes Ethernet, IPv4, IPv6, TCP, UDP, ICMP, ICMPv6 and ARP headers.
//!
//! Behind the `testing` feature (and `cfg(test)`): each frame is a fresh
//! `Vec`, which the daemon never wants.
//!
//! ```
//! # use std::net::Ipv4Addr;
//! # use gateway::wire::{build, tcp::{flags, TcpRepr}};
//! let client = (Ipv4Addr::new(192, 168, 1, 10), 40000);
//! let vip = (Ipv4Addr::new(10, 0, 0, 100), 80);
//! // The common case in one call ...
//! let syn = build::tcp_frame(client, vip, 7, 0, flags::SYN, &[2, 4, 5, 0xb4], b"");
//! // ... or every field chosen.
//! let same = build::ipv4(client.0, vip.0).ident(0x4242).tcp(&TcpRepr {
//!     src_port: client.1,
//!     dst_port: vip.1,
//!     seq_number: 7,
//!     ack_number: 0,
//!     flags: flags::SYN,
//!     window_len: 65535,
//!     options: &[2, 4, 5, 0xb4],
//!     payload: b"",
//! });
//! assert_eq!(syn, same);
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use super::arp::{ArpPacket, ArpRepr};
use super::ethernet::{EthernetFrame, EthernetRepr, MacAddr, VlanTag, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::icmp::{Icmpv4Packet, Icmpv4Repr};
use super::icmpv6::{Icmpv6Packet, Icmpv6Repr, NdiscRepr};
use super::ip_proto;
use super::ipv4::{Ipv4Packet, Ipv4Repr};
use super::ipv6::{Ipv6Packet, Ipv6Repr};
use super::tcp::{TcpPacket, TcpRepr};
use super::udp::{UdpPacket, UdpRepr};

/// The source MAC of a built frame unless [`FrameBuilder::macs`] says otherwise.
pub const SRC_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
/// The destination MAC of a built frame unless [`FrameBuilder::macs`] says otherwise.
pub const DST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

/// Ethernet frames shorter than this are padded (without the FCS).
pub const MIN_FRAME_LEN: usize = 60;

/// The Ethernet and IPv4 layers of a frame; [`tcp`](Self::tcp),
/// [`udp`](Self::udp), [`icmp`](Self::icmp) or [`ip_payload`](Self::ip_payload)
/// add the rest and return the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBuilder {
    pub eth: EthernetRepr,
    /// Its protocol and payload length are set by the finishing call.
    pub ip: Ipv4Repr,
}

/// An untagged IPv4 frame from `src` to `dst`: MACs [`SRC_MAC`] to
/// [`DST_MAC`], TTL 64, ident 0, DF set.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> FrameBuilder {
    FrameBuilder {
        eth: EthernetRepr { src_addr: SRC_MAC, dst_addr: DST_MAC, vlan: None, ethertype: ETHERTYPE_IPV4 },
        ip: Ipv4Repr::new(src, dst, 0, 0),
    }
}

impl FrameBuilder {
    pub fn macs(mut self, src: MacAddr, dst: MacAddr) -> Self {
        self.eth.src_addr = src;
        self.eth.dst_addr = dst;
        self
    }

    pub fn vlan(mut self, tag: VlanTag) -> Self {
        self.eth.vlan = Some(tag);
        self
    }

    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ip.ttl = ttl;
        self
    }

    pub fn ident(mut self, ident: u16) -> Self {
        self.ip.ident = ident;
        self
    }

    pub fn dont_frag(mut self, dont_frag: bool) -> Self {
        self.ip.dont_frag = dont_frag;
        self
    }

    pub fn dscp(mut self, dscp: u8) -> Self {
        self.ip.dscp = dscp;
        self
    }

    /// The frame with a TCP segment, checksums filled.
    pub fn tcp(&self, tcp: &TcpRepr) -> Vec<u8> {
        let (src, dst) = (self.ip.src_addr, self.ip.dst_addr);
        self.finish(ip_proto::TCP, tcp.buffer_len(), |b| tcp.emit(&mut TcpPacket::new_unchecked(b), src, dst))
    }

    /// The frame with a UDP datagram, its checksum filled or left zero.
    pub fn udp(&self, udp: &UdpRepr, checksum: bool) -> Vec<u8> {
        let (src, dst) = (self.ip.src_addr, self.ip.dst_addr);
        self.finish(ip_proto::UDP, udp.buffer_len(), |b| udp.emit(&mut UdpPacket::new_unchecked(b), src, dst, checksum))
    }

    /// The frame with an ICMP message, checksums filled.
    pub fn icmp(&self, icmp: &Icmpv4Repr) -> Vec<u8> {
        self.finish(ip_proto::ICMP, icmp.buffer_len(), |b| icmp.emit(&mut Icmpv4Packet::new_unchecked(b)))
    }

    /// The frame with `payload` as the IPv4 payload of `protocol` (an inner
    /// IPv4 packet for IPIP, or bytes no one parses).
    pub fn ip_payload(&self, protocol: u8, payload: &[u8]) -> Vec<u8> {
        self.finish(protocol, payload.len(), |b| b.copy_from_slice(payload))
    }

    fn finish(&self, protocol: u8, payload_len: usize, write_payload: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let ip = Ipv4Repr { protocol, payload_len, ..self.ip };
        let l2 = self.eth.header_len();
        let mut b = vec![0u8; l2 + ip.buffer_len()];
        self.eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        let (header, payload) = b[l2..].split_at_mut(ip.header_len());
        ip.emit(&mut Ipv4Packet::new_unchecked(header));
        write_payload(payload);
        b
    }
}

/// The Ethernet and IPv6 layers of a frame, extension headers included;
/// [`tcp`](Self::tcp), [`udp`](Self::udp), [`icmpv6`](Self::icmpv6),
/// [`ndisc`](Self::ndisc) or [`ip_payload`](Self::ip_payload) add the rest
/// and return the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6FrameBuilder<'a> {
    pub eth: EthernetRepr,
    /// Its next header (unless there are extension headers) and payload
    /// length are set by the finishing call.
    pub ip: Ipv6Repr,
    /// Extension headers between the fixed header and the upper layer, the
    /// first named by `ip.next_header`, the last naming the upper layer.
    pub ext_headers: &'a [u8],
}

/// An untagged IPv6 frame from `src` to `dst`: MACs [`SRC_MAC`] to
/// [`DST_MAC`], hop limit 64, no flow label, no extension headers.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6FrameBuilder<'static> {
    Ipv6FrameBuilder {
        eth: EthernetRepr { src_addr: SRC_MAC, dst_addr: DST_MAC, vlan: None, ethertype: ETHERTYPE_IPV6 },
        ip: Ipv6Repr::new(src, dst, 0, 0),
        ext_headers: &[],
    }
}

impl<'a> Ipv6FrameBuilder<'a> {
    pub fn macs(mut self, src: MacAddr, dst: MacAddr) -> Self {
        self.eth.src_addr = src;
        self.eth.dst_addr = dst;
        self
    }

    pub fn vlan(mut self, tag: VlanTag) -> Self {
        self.eth.vlan = Some(tag);
        self
    }

    pub fn hop_limit(mut self, hop_limit: u8) -> Self {
        self.ip.hop_limit = hop_limit;
        self
    }

    pub fn dscp(mut self, dscp: u8) -> Self {
        self.ip.dscp = dscp;
        self
    }

    pub fn flow_label(mut self, label: u32) -> Self {
        self.ip.flow_label = label;
        self
    }

    /// Extension headers `chain`, the first of kind `first`; the chain's
    /// own next-header bytes link the rest, its last one must name the
    /// upper layer the finishing call writes.
    pub fn ext_headers<'b>(self, first: u8, chain: &'b [u8]) -> Ipv6FrameBuilder<'b> {
        Ipv6FrameBuilder { eth: self.eth, ip: Ipv6Repr { next_header: first, ..self.ip }, ext_headers: chain }
    }

    /// The frame with a TCP segment, checksum filled.
    pub fn tcp(&self, tcp: &TcpRepr) -> Vec<u8> {
        let (src, dst) = (self.ip.src_addr, self.ip.dst_addr);
        self.finish(ip_proto::TCP, tcp.buffer_len(), |b| tcp.emit_v6(&mut TcpPacket::new_unchecked(b), src, dst))
    }

    /// The frame with a UDP datagram, checksum filled (mandatory over IPv6).
    pub fn udp(&self, udp: &UdpRepr) -> Vec<u8> {
        let (src, dst) = (self.ip.src_addr, self.ip.dst_addr);
        self.finish(ip_proto::UDP, udp.buffer_len(), |b| udp.emit_v6(&mut UdpPacket::new_unchecked(b), src, dst))
    }

    /// The frame with an ICMPv6 message, checksum filled.
    pub fn icmpv6(&self, icmp: &Icmpv6Repr) -> Vec<u8> {
        let (src, dst) = (self.ip.src_addr, self.ip.dst_addr);
        self.finish(ip_proto::ICMPV6, icmp.buffer_len(), |b| icmp.emit(&mut Icmpv6Packet::new_unchecked(b), src, dst))
    }

    /// The frame with a neighbour discovery message, checksum filled. The
    /// hop limit is the builder's: neighbour discovery wants 255.
    pub fn ndisc(&self, nd: &NdiscRepr) -> Vec<u8> {
        let (src, dst) = (self.ip.src_addr, self.ip.dst_addr);
        self.finish(ip_proto::ICMPV6, nd.buffer_len(), |b| nd.emit(&mut Icmpv6Packet::new_unchecked(b), src, dst))
    }

    /// The frame with `payload` as the upper layer `next_header` (an inner
    /// packet for a tunnel, or bytes no one parses).
    pub fn ip_payload(&self, next_header: u8, payload: &[u8]) -> Vec<u8> {
        self.finish(next_header, payload.len(), |b| b.copy_from_slice(payload))
    }

    fn finish(&self, upper: u8, upper_len: usize, write_upper: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let next_header = if self.ext_headers.is_empty() { upper } else { self.ip.next_header };
        let ip = Ipv6Repr { next_header, payload_len: self.ext_headers.len() + upper_len, ..self.ip };
        let l2 = self.eth.header_len();
        let mut b = vec![0u8; l2 + ip.buffer_len()];
        self.eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        let (header, payload) = b[l2..].split_at_mut(ip.header_len());
        ip.emit(&mut Ipv6Packet::new_unchecked(header));
        let (ext, l4) = payload.split_at_mut(self.ext_headers.len());
        ext.copy_from_slice(self.ext_headers);
        write_upper(l4);
        b
    }
}

/// An Ethernet + IPv6 + TCP frame with a valid checksum: hop limit 64,
/// window 65535, the given options (padded to a word) and payload.
pub fn tcp_frame_v6(
    src: (Ipv6Addr, u16),
    dst: (Ipv6Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    ipv6(src.0, dst.0).tcp(&TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 65535,
        options,
        payload,
    })
}

/// An Ethernet + IPv6 + UDP frame with its (mandatory) checksum.
pub fn udp_frame_v6(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), payload: &[u8]) -> Vec<u8> {
    ipv6(src.0, dst.0).udp(&UdpRepr { src_port: src.1, dst_port: dst.1, payload })
}

/// An Ethernet + IPv6 + ICMPv6 error (hop limit 60) of type `t`, code `c`
/// and second word `rest` (an MTU, a pointer, or 0) from `from` to `to`,
/// quoting `quoted` (an IPv6 packet without Ethernet) cut to `quote_len`
/// bytes.
pub fn icmpv6_error(from: Ipv6Addr, to: Ipv6Addr, t: u8, c: u8, rest: u32, quoted: &[u8], quote_len: usize) -> Vec<u8> {
    let data = &quoted[..quote_len.min(quoted.len())];
    ipv6(from, to).hop_limit(60).icmpv6(&Icmpv6Repr { msg_type: t, msg_code: c, rest_of_header: rest, data })
}

/// The multicast addresses neighbour solicitations use, defined with the
/// IPv6 view and named here too for the callers of the builders.
pub use super::ipv6::{multicast_mac, solicited_node};

/// A neighbour solicitation from `src` (`src_mac`) for `target`, to its
/// solicited-node group, hop limit 255, with the source link-layer address.
pub fn neighbor_solicit(src_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let group = solicited_node(target);
    ipv6(src, group)
        .macs(src_mac, multicast_mac(group))
        .hop_limit(255)
        .ndisc(&NdiscRepr::NeighborSolicit { target_addr: target, lladdr: Some(src_mac) })
}

/// An ARP frame from `src_mac` to `dst_mac`, padded to [`MIN_FRAME_LEN`].
pub fn arp(src_mac: MacAddr, dst_mac: MacAddr, arp: &ArpRepr) -> Vec<u8> {
    let eth = EthernetRepr { src_addr: src_mac, dst_addr: dst_mac, vlan: None, ethertype: ETHERTYPE_ARP };
    let mut b = vec![0u8; MIN_FRAME_LEN.max(eth.header_len() + arp.buffer_len())];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
    arp.emit(&mut ArpPacket::new_unchecked(&mut b[eth.header_len()..]));
    b
}

/// An Ethernet + IPv4 + TCP frame with valid checksums: ident 0x4242, DF,
/// TTL 64, window 65535, the given options (padded to a word) and payload.
pub fn tcp_frame(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    ipv4(src.0, dst.0).ident(0x4242).tcp(&TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: seq,
        ack_number: ack,
        flags,
        window_len: 65535,
        options,
        payload,
    })
}

/// An Ethernet + IPv4 + UDP frame (no DF) with a valid or absent checksum.
pub fn udp_frame(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8], with_checksum: bool) -> Vec<u8> {
    ipv4(src.0, dst.0).dont_frag(false).udp(&UdpRepr { src_port: src.1, dst_port: dst.1, payload }, with_checksum)
}

/// An Ethernet + IPv4 + ICMP error (TTL 60, no DF) of type `t` and code `c`
/// from `from` to `to`, quoting `quoted` (an IPv4 packet without Ethernet)
/// cut to `quote_len` bytes.
pub fn icmp_error(from: Ipv4Addr, to: Ipv4Addr, t: u8, c: u8, quoted: &[u8], quote_len: usize) -> Vec<u8> {
    let data = &quoted[..quote_len.min(quoted.len())];
    ipv4(from, to).ttl(60).dont_frag(false).icmp(&Icmpv4Repr { msg_type: t, msg_code: c, rest_of_header: 0, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::OP_REPLY;
    use crate::wire::tcp::flags;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    /// A SYN 192.168.1.10:40000 -> 10.0.0.100:80 with MSS 1460, as
    /// `tcp_frame` writes it, checksums included.
    #[rustfmt::skip]
    const SYN: [u8; 58] = [
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, // ethernet
        0x45, 0x00, 0x00, 0x2c, 0x42, 0x42, 0x40, 0x00, 0x40, 0x06, 0x2c, 0x74, // ipv4 ...
        192, 168, 1, 10, 10, 0, 0, 100, // ... addresses
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0, // ports, seq, ack
        0x60, 0x02, 0xff, 0xff, 0x2f, 0x79, 0x00, 0x00, // doff 6, SYN, window, checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
    ];

    #[test]
    fn a_tcp_frame_is_the_literal_bytes() {
        assert_eq!(tcp_frame((CLIENT, 40000), (VIP, 80), 7, 0, flags::SYN, &[2, 4, 5, 0xb4], b""), SYN);
    }

    #[test]
    fn a_tagged_frame_carries_the_tag_before_ipv4() {
        let tag = VlanTag { pcp: 0, dei: false, vid: 100 };
        let tagged = ipv4(CLIENT, VIP).ident(0x4242).vlan(tag).tcp(&TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: 7,
            ack_number: 0,
            flags: flags::SYN,
            window_len: 65535,
            options: &[2, 4, 5, 0xb4],
            payload: b"",
        });
        assert_eq!(&tagged[..12], &SYN[..12]);
        assert_eq!(&tagged[12..18], &[0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
        assert_eq!(&tagged[18..], &SYN[14..]);
    }

    #[test]
    fn udp_and_icmp_frames_have_their_checksums() {
        let udp = udp_frame((CLIENT, 40000), (VIP, 53), b"q", true);
        let ip = Ipv4Packet::new_checked(&udp[14..]).unwrap();
        assert!(ip.verify_checksum() && !ip.dont_frag());
        let datagram = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(datagram.checksum() != 0 && datagram.verify_checksum(CLIENT, VIP));
        assert_eq!(datagram.payload(), b"q");
        let bare = udp_frame((CLIENT, 40000), (VIP, 53), b"q", false);
        assert_eq!(UdpPacket::new_checked(&bare[34..]).unwrap().checksum(), 0);

        let error = icmp_error(VIP, CLIENT, 3, 4, &SYN[14..], 28);
        let ip = Ipv4Packet::new_checked(&error[14..]).unwrap();
        assert_eq!((ip.ttl(), ip.protocol(), ip.total_len()), (60, ip_proto::ICMP, 20 + 8 + 28));
        let icmp = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!((icmp.msg_type(), icmp.msg_code(), icmp.data()), (3, 4, &SYN[14..42]));
    }

    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A SYN [2001:db8::1]:40000 -> [2001:db8::2]:80 with MSS 1440, as
    /// `tcp_frame_v6` writes it; the checksum 0xa02e was computed outside
    /// this crate.
    #[rustfmt::skip]
    const SYN6: [u8; 78] = [
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd, // ethernet
        0x60, 0, 0, 0, 0x00, 0x18, 0x06, 0x40, // ipv6: payload 24, tcp, hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
        0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 7, 0, 0, 0, 0, // ports, seq, ack
        0x60, 0x02, 0xff, 0xff, 0xa0, 0x2e, 0x00, 0x00, // doff 6, SYN, window, checksum, urgent
        0x02, 0x04, 0x05, 0xa0, // MSS 1440
    ];

    #[test]
    fn an_ipv6_tcp_frame_is_the_literal_bytes() {
        assert_eq!(tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 7, 0, flags::SYN, &[2, 4, 5, 0xa0], b""), SYN6);
    }

    #[test]
    fn extension_headers_go_between_ipv6_and_the_upper_layer() {
        use crate::wire::ipv6::ext;
        let chain = [ext::DEST_OPTS, 0, 1, 4, 0, 0, 0, 0, ip_proto::UDP, 0, 1, 4, 0, 0, 0, 0];
        let b = ipv6(CLIENT6, VIP6).ext_headers(ext::HOP_BY_HOP, &chain).udp(&UdpRepr {
            src_port: 40000,
            dst_port: 53,
            payload: b"q",
        });
        let ip = Ipv6Packet::new_checked(&b[14..]).unwrap();
        assert_eq!((ip.next_header(), ip.payload_len()), (ext::HOP_BY_HOP, 16 + 9));
        let upper = ip.upper_layer().unwrap();
        assert_eq!((upper.protocol, upper.ext_len), (ip_proto::UDP, 16));
        let udp = UdpPacket::new_checked(&ip.payload()[16..]).unwrap();
        assert!(udp.verify_checksum_v6(CLIENT6, VIP6));
        assert_eq!(udp.payload(), b"q");
        let theirs = etherparse::SlicedPacket::from_ethernet(&b).unwrap();
        assert!(matches!(theirs.transport, Some(etherparse::TransportSlice::Udp(_))));
    }

    #[test]
    fn ipv6_udp_icmpv6_and_neighbour_frames() {
        let udp = udp_frame_v6((CLIENT6, 40000), (VIP6, 53), b"q");
        let ip = Ipv6Packet::new_checked(&udp[14..]).unwrap();
        assert!(UdpPacket::new_checked(ip.payload()).unwrap().verify_checksum_v6(CLIENT6, VIP6));

        let too_big = icmpv6_error(VIP6, CLIENT6, 2, 0, 1280, &SYN6[14..], 48);
        let ip = Ipv6Packet::new_checked(&too_big[14..]).unwrap();
        assert_eq!((ip.hop_limit(), ip.next_header(), ip.payload_len()), (60, ip_proto::ICMPV6, 8 + 48));
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(VIP6, CLIENT6));
        assert_eq!((icmp.msg_type(), icmp.mtu(), icmp.data()), (2, 1280, &SYN6[14..62]));

        let ns = neighbor_solicit(SRC_MAC, CLIENT6, VIP6);
        assert_eq!(&ns[..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        let ip = Ipv6Packet::new_checked(&ns[14..]).unwrap();
        assert_eq!(ip.dst_addr(), "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.hop_limit(), 255);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(CLIENT6, ip.dst_addr()));
        assert_eq!(
            NdiscRepr::parse(&icmp),
            Ok(NdiscRepr::NeighborSolicit { target_addr: VIP6, lladdr: Some(SRC_MAC) })
        );
        assert_eq!(
            solicited_node("2001:db8::abcd:1234:5678".parse().unwrap()),
            "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn an_arp_frame_is_padded_to_the_minimum() {
        let reply = ArpRepr {
            operation: OP_REPLY,
            sender_hardware_addr: SRC_MAC,
            sender_protocol_addr: VIP,
            target_hardware_addr: DST_MAC,
            target_protocol_addr: CLIENT,
        };
        let b = arp(SRC_MAC, DST_MAC, &reply);
        assert_eq!(b.len(), MIN_FRAME_LEN);
        assert_eq!(&b[12..14], &[0x08, 0x06]);
        assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&b[14..]).unwrap()), reply);
        assert!(b[42..].iter().all(|&x| x == 0));
    }
}
