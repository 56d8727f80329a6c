//! The generator's packets: flow addressing, TCP segment templates, the real
//! servers' reflection and ARP answers. Plain byte slices, no DPDK, so every
//! piece is unit-tested on buffers.
//!
//! Frames are untagged Ethernet + IPv4 (no options) + TCP (no options):
//! 54 bytes of headers, then the payload; or Ethernet + IPv6 (no extension
//! headers) + TCP, 74 bytes, whose client addresses are [`CLIENTS6`]'s
//! prefix with the IPv4 scheme's 32 bits below it ([`Flows`] serves both). Client segments are written from a
//! [`TcpTemplate`] whose constant part and checksum partial sums are computed
//! once; a packet costs a 64-byte copy, a few stores and two folds.

use std::net::{Ipv4Addr, Ipv6Addr};

use gateway::wire::arp::{ArpPacket, ArpRepr, OP_REPLY, OP_REQUEST};
use gateway::wire::checksum::{finish, pseudo_header_v4, pseudo_header_v6, sum};
use gateway::wire::ethernet::{EthernetFrame, EthernetRepr, MacAddr};
use gateway::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use gateway::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use gateway::wire::tcp::{TcpPacket, TcpRepr};

pub const ETH_LEN: usize = 14;
pub const IP_LEN: usize = 20;
pub const TCP_LEN: usize = 20;
/// Ethernet + IPv4 + TCP headers.
pub const HDR_LEN: usize = ETH_LEN + IP_LEN + TCP_LEN;
pub const IP6_LEN: usize = 40;
/// Ethernet + IPv6 + TCP headers.
pub const HDR_LEN_V6: usize = ETH_LEN + IP6_LEN + TCP_LEN;
/// Where the low 32 bits of an IPv6 header's source address start.
const IP6_SRC_LOW: usize = 8 + 12;
/// The IPv6 clients: this /96, the low 32 bits those of the IPv4 scheme's
/// address ([`Flows::addr`]), so one flow index names either family's client.
pub const CLIENTS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0);

/// The IPv6 address of a client whose IPv4 scheme address is `low`.
pub fn client6(low: u32) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(CLIENTS6) | u128::from(low))
}
/// The largest payload a template carries.
pub const MAX_PAYLOAD: usize = 1400;

// The wire layer's numbers, not copies of them.
pub use gateway::wire::ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
pub use gateway::wire::ip_proto::{IPIP as PROTO_IPIP, TCP as PROTO_TCP};
pub use gateway::wire::tcp::flags;

/// The initial sequence number the real servers answer with.
pub const SERVER_ISN: u32 = 0x5e5e_0000;

/// How flow `i` is addressed: client address `base + i % addrs`, client
/// port `port_base + i / addrs`. Many addresses and ports, so the gateway's
/// connection table and the RSS hash see a realistic spread. Two families
/// share the scheme: real clients and spoofed (SYN flood) sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flows {
    pub base: u32,
    pub addrs: u32,
    pub port_base: u16,
}

impl Flows {
    /// Real clients: 10.1.0.0/16.
    pub const CLIENTS: Flows = Flows { base: u32::from_be_bytes([10, 1, 0, 0]), addrs: 1 << 16, port_base: 1024 };
    /// Spoofed sources of the SYN flood: 10.2.0.0/16.
    pub const SPOOFED: Flows = Flows { base: u32::from_be_bytes([10, 2, 0, 0]), addrs: 1 << 16, port_base: 1024 };

    /// The most flows the scheme can address.
    pub fn capacity(&self) -> u64 {
        u64::from(self.addrs) * u64::from(u16::MAX - self.port_base + 1)
    }

    /// Client address (as a big-endian number) and port of flow `i`.
    #[inline]
    pub fn addr(&self, i: u32) -> (u32, u16) {
        (self.base + i % self.addrs, self.port_base + (i / self.addrs) as u16)
    }

    /// The flow a client address and port belong to, if any.
    #[inline]
    pub fn index(&self, addr: u32, port: u16) -> Option<u32> {
        let a = addr.wrapping_sub(self.base);
        if a >= self.addrs || port < self.port_base {
            return None;
        }
        Some(u32::from(port - self.port_base) * self.addrs + a)
    }
}

/// The client's initial sequence number on flow `i`.
#[inline]
pub fn client_isn(i: u32) -> u32 {
    i.wrapping_mul(0x9e37_79b1)
}

/// Client segments toward one destination (VIP:port, or a real server when
/// a test bypasses the gateway) with a fixed payload length, over IPv4 or
/// IPv6.
#[derive(Clone)]
pub struct TcpTemplate {
    bytes: [u8; HDR_LEN_V6 + MAX_PAYLOAD],
    len: usize,
    /// The IP header's length: [`IP_LEN`] or [`IP6_LEN`] (then IPv6).
    ip_len: usize,
    /// Sum of the IPv4 header with the source address and checksum zero
    /// (unused over IPv6, which has no header checksum).
    ip_base: u64,
    /// Sum of pseudo-header, TCP header and payload with the varying fields
    /// (source address and port, seq, ack, flags) and the checksum zero.
    tcp_base: u64,
}

impl TcpTemplate {
    /// `payload` bytes (at most [`MAX_PAYLOAD`]) of a repeating pattern.
    pub fn new(src_mac: [u8; 6], dst_mac: [u8; 6], dst: Ipv4Addr, dport: u16, payload: usize) -> TcpTemplate {
        assert!(payload <= MAX_PAYLOAD, "payload {payload} > {MAX_PAYLOAD}");
        let mut pattern = [0u8; MAX_PAYLOAD];
        for (k, byte) in pattern.iter_mut().enumerate() {
            *byte = b'a' + (k % 26) as u8;
        }
        // The varying fields (source address and port, seq, ack, flags) are
        // written zero, and the checksums zeroed after the emit, so the sums
        // below are those of the constant part.
        let tcp = TcpRepr {
            src_port: 0,
            dst_port: dport,
            seq_number: 0,
            ack_number: 0,
            flags: 0,
            window_len: 0xffff,
            options: &[],
            payload: &pattern[..payload],
        };
        let ip = Ipv4Repr::new(Ipv4Addr::UNSPECIFIED, dst, PROTO_TCP, tcp.buffer_len());
        let eth = EthernetRepr {
            src_addr: MacAddr(src_mac),
            dst_addr: MacAddr(dst_mac),
            vlan: None,
            ethertype: ETHERTYPE_IPV4,
        };
        let mut b = [0u8; HDR_LEN_V6 + MAX_PAYLOAD];
        let len = HDR_LEN + payload;
        eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        let mut ip_packet = Ipv4Packet::new_unchecked(&mut b[ETH_LEN..len]);
        ip.emit(&mut ip_packet);
        ip_packet.set_checksum(0);
        let mut tcp_packet = TcpPacket::new_unchecked(&mut b[ETH_LEN + IP_LEN..len]);
        tcp.emit(&mut tcp_packet, ip.src_addr, dst);
        tcp_packet.set_checksum(0);
        let ip_base = sum(&b[ETH_LEN..ETH_LEN + IP_LEN]);
        let tcp_base =
            pseudo_header_v4([0; 4], dst.octets(), PROTO_TCP, tcp.buffer_len() as u16) + sum(&b[ETH_LEN + IP_LEN..len]);
        TcpTemplate { bytes: b, len, ip_len: IP_LEN, ip_base, tcp_base }
    }

    /// [`TcpTemplate::new`] over IPv6, from the clients of [`CLIENTS6`].
    pub fn new_v6(src_mac: [u8; 6], dst_mac: [u8; 6], dst: Ipv6Addr, dport: u16, payload: usize) -> TcpTemplate {
        assert!(payload <= MAX_PAYLOAD, "payload {payload} > {MAX_PAYLOAD}");
        let mut pattern = [0u8; MAX_PAYLOAD];
        for (k, byte) in pattern.iter_mut().enumerate() {
            *byte = b'a' + (k % 26) as u8;
        }
        // As in `new`: the varying fields zero (the source address is the
        // prefix alone), the checksum zeroed after the emit.
        let tcp = TcpRepr {
            src_port: 0,
            dst_port: dport,
            seq_number: 0,
            ack_number: 0,
            flags: 0,
            window_len: 0xffff,
            options: &[],
            payload: &pattern[..payload],
        };
        let ip = Ipv6Repr::new(CLIENTS6, dst, PROTO_TCP, tcp.buffer_len());
        let eth = EthernetRepr {
            src_addr: MacAddr(src_mac),
            dst_addr: MacAddr(dst_mac),
            vlan: None,
            ethertype: ETHERTYPE_IPV6,
        };
        let mut b = [0u8; HDR_LEN_V6 + MAX_PAYLOAD];
        let len = HDR_LEN_V6 + payload;
        eth.emit(&mut EthernetFrame::new_unchecked(&mut b[..]));
        ip.emit(&mut Ipv6Packet::new_unchecked(&mut b[ETH_LEN..len]));
        let mut tcp_packet = TcpPacket::new_unchecked(&mut b[ETH_LEN + IP6_LEN..len]);
        tcp.emit_v6(&mut tcp_packet, CLIENTS6, dst);
        tcp_packet.set_checksum(0);
        let tcp_base = pseudo_header_v6(CLIENTS6.octets(), dst.octets(), PROTO_TCP, tcp.buffer_len() as u32)
            + sum(&b[ETH_LEN + IP6_LEN..len]);
        TcpTemplate { bytes: b, len, ip_len: IP6_LEN, ip_base: 0, tcp_base }
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the segment from `src:sport` into `out` (at least
    /// [`len`](Self::len) bytes) with its checksums. Over IPv6 `src` is the
    /// low 32 bits of the client's address (see [`client6`]).
    #[inline]
    pub fn write(&self, out: &mut [u8], src: u32, sport: u16, seq: u32, ack: u32, tcp_flags: u8) {
        let out = &mut out[..self.len];
        out.copy_from_slice(&self.bytes[..self.len]);
        let (ip, tcp) = out[ETH_LEN..].split_at_mut(self.ip_len);
        if self.ip_len == IP6_LEN {
            ip[IP6_SRC_LOW..IP6_SRC_LOW + 4].copy_from_slice(&src.to_be_bytes());
        } else {
            let mut ip = Ipv4Packet::new_unchecked(ip);
            ip.set_src_addr(Ipv4Addr::from(src));
            ip.set_checksum(finish(self.ip_base + u64::from(src)));
        }
        let mut tcp = TcpPacket::new_unchecked(tcp);
        tcp.set_src_port(sport);
        tcp.set_seq_number(seq);
        tcp.set_ack_number(ack);
        tcp.set_flags(tcp_flags);
        // The flags byte is the low byte of its 16-bit word, so it adds as is.
        tcp.set_checksum(finish(
            self.tcp_base + u64::from(src) + u64::from(sport) + u64::from(seq) + u64::from(ack) + u64::from(tcp_flags),
        ));
    }
}

/// A TCP segment as the generator sees it (after IPIP decapsulation when it
/// arrived tunnelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// The addresses; over IPv6 their low 32 bits (see [`CLIENTS6`]).
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: usize,
    pub tunnelled: bool,
    /// It came over IPv6.
    pub v6: bool,
}

/// Parses an untagged Ethernet/IPv4/TCP frame, looking inside one IPIP
/// layer, or an Ethernet/IPv6/TCP one (no extension headers).
pub fn parse(b: &[u8]) -> Option<Segment> {
    let frame = EthernetFrame::new_checked(b).ok()?;
    if frame.outer_ethertype() == ETHERTYPE_IPV6 {
        return parse_v6(frame.payload());
    }
    if frame.outer_ethertype() != ETHERTYPE_IPV4 {
        return None;
    }
    let outer = Ipv4Packet::new_checked(frame.payload()).ok()?;
    let tunnelled = outer.protocol() == PROTO_IPIP;
    let inner;
    let ip = if tunnelled {
        inner = Ipv4Packet::new_checked(outer.payload()).ok()?;
        &inner
    } else {
        &outer
    };
    if ip.protocol() != PROTO_TCP {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    Some(Segment {
        src: ip.src_addr().to_bits(),
        dst: ip.dst_addr().to_bits(),
        sport: tcp.src_port(),
        dport: tcp.dst_port(),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        payload: tcp.payload().len(),
        tunnelled,
        v6: false,
    })
}

fn parse_v6(b: &[u8]) -> Option<Segment> {
    let ip = Ipv6Packet::new_checked(b).ok()?;
    if ip.next_header() != PROTO_TCP {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let low = |a: Ipv6Addr| u128::from(a) as u32;
    Some(Segment {
        src: low(ip.src_addr()),
        dst: low(ip.dst_addr()),
        sport: tcp.src_port(),
        dport: tcp.dst_port(),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags: tcp.flags(),
        payload: tcp.payload().len(),
        tunnelled: false,
        v6: true,
    })
}

/// What the answer to a segment is, by TCP's rules as a real server (or a
/// client completing a handshake) would apply them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Write this segment back (addresses and ports swapped).
    Reply { seq: u32, ack: u32, flags: u8 },
    /// Nothing to say (a pure ACK, a reset).
    None,
}

/// The answer to `s`: SYN -> SYN-ACK (server ISN [`SERVER_ISN`]),
/// SYN-ACK -> ACK, data or FIN -> ACK of it, anything else -> nothing.
pub fn answer(s: &Segment) -> Answer {
    let f = s.flags;
    if f & flags::RST != 0 {
        return Answer::None;
    }
    if f & flags::SYN != 0 {
        return if f & flags::ACK != 0 {
            Answer::Reply { seq: s.ack, ack: s.seq.wrapping_add(1), flags: flags::ACK }
        } else {
            Answer::Reply { seq: SERVER_ISN, ack: s.seq.wrapping_add(1), flags: flags::SYN | flags::ACK }
        };
    }
    let fin = u32::from(f & flags::FIN != 0);
    if s.payload == 0 && fin == 0 {
        return Answer::None;
    }
    Answer::Reply { seq: s.ack, ack: s.seq.wrapping_add(s.payload as u32 + fin), flags: flags::ACK }
}

/// Rewrites the frame in `b` (which held `s`, untunnelled) into the answer
/// `seq/ack/flags`: MACs, addresses and ports swapped, fresh IP (20-byte
/// IPv4, or IPv6 without extension headers) and TCP headers without options
/// or payload, the checksums. Returns the new frame length ([`HDR_LEN`] or
/// [`HDR_LEN_V6`]); the caller trims the buffer to it.
pub fn write_answer(b: &mut [u8], s: &Segment, seq: u32, ack: u32, tcp_flags: u8) -> usize {
    let received = EthernetRepr::parse(&EthernetFrame::new_unchecked(&*b));
    let eth = EthernetRepr {
        src_addr: received.dst_addr,
        dst_addr: received.src_addr,
        vlan: None,
        ethertype: if s.v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IPV4 },
    };
    let tcp = TcpRepr {
        src_port: s.dport,
        dst_port: s.sport,
        seq_number: seq,
        ack_number: ack,
        flags: tcp_flags,
        window_len: 0xffff,
        options: &[],
        payload: &[],
    };
    if s.v6 {
        let received = Ipv6Packet::new_unchecked(&b[ETH_LEN..]);
        let ip = Ipv6Repr::new(received.dst_addr(), received.src_addr(), PROTO_TCP, tcp.buffer_len());
        let b = &mut b[..HDR_LEN_V6];
        eth.emit(&mut EthernetFrame::new_unchecked(&mut *b));
        let (ip_header, segment) = b[ETH_LEN..].split_at_mut(IP6_LEN);
        ip.emit(&mut Ipv6Packet::new_unchecked(ip_header));
        tcp.emit_v6(&mut TcpPacket::new_unchecked(segment), ip.src_addr, ip.dst_addr);
        return HDR_LEN_V6;
    }
    let b = &mut b[..HDR_LEN];
    let ip = Ipv4Repr::new(Ipv4Addr::from(s.dst), Ipv4Addr::from(s.src), PROTO_TCP, tcp.buffer_len());
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *b));
    let (ip_header, segment) = b[ETH_LEN..].split_at_mut(IP_LEN);
    ip.emit(&mut Ipv4Packet::new_unchecked(ip_header));
    tcp.emit(&mut TcpPacket::new_unchecked(segment), ip.src_addr, ip.dst_addr);
    HDR_LEN
}

/// Answers an ARP request in place (any target: the generator stands for
/// every client and real server on its link). Returns the reply's length,
/// or `None` when the frame is not an ARP request.
pub fn arp_reply(b: &mut [u8], our_mac: [u8; 6]) -> Option<usize> {
    let our_mac = MacAddr(our_mac);
    let frame = EthernetFrame::new_checked(&*b).ok()?;
    if frame.outer_ethertype() != ETHERTYPE_ARP || frame.src_addr() == our_mac {
        return None;
    }
    let request = ArpRepr::parse(&ArpPacket::new_checked(frame.payload()).ok()?);
    if request.operation != OP_REQUEST {
        return None;
    }
    let eth = EthernetRepr {
        src_addr: our_mac,
        dst_addr: request.sender_hardware_addr,
        vlan: None,
        ethertype: ETHERTYPE_ARP,
    };
    let reply = ArpRepr {
        operation: OP_REPLY,
        sender_hardware_addr: our_mac,
        sender_protocol_addr: request.target_protocol_addr,
        target_hardware_addr: request.sender_hardware_addr,
        target_protocol_addr: request.sender_protocol_addr,
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *b));
    reply.emit(&mut ArpPacket::new_unchecked(&mut b[ETH_LEN..]));
    Some(ETH_LEN + reply.buffer_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::wire::build;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    fn checksums_ok(b: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(&b[ETH_LEN..]).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        ip.verify_checksum() && tcp.verify_checksum(ip.src_addr(), ip.dst_addr())
    }

    #[test]
    fn flows_round_trip_and_stay_apart() {
        for i in [0u32, 1, 65535, 65536, 1_000_000, 9_999_999] {
            let (a, p) = Flows::CLIENTS.addr(i);
            assert_eq!(Flows::CLIENTS.index(a, p), Some(i));
            assert_eq!(Flows::SPOOFED.index(a, p), None);
        }
        assert_eq!(Flows::CLIENTS.addr(65537), (u32::from_be_bytes([10, 1, 0, 1]), 1025));
        assert_eq!(Flows::CLIENTS.index(u32::from_be_bytes([10, 1, 0, 0]), 80), None);
        assert!(Flows::CLIENTS.capacity() > 10_000_000);
    }

    #[test]
    fn template_writes_valid_segments() {
        let t = TcpTemplate::new(A, B, VIP, 80, 6);
        assert_eq!(t.len(), 60);
        let mut buf = [0u8; 128];
        for (i, fl) in [(0u32, flags::SYN), (70_000, flags::ACK | flags::PSH), (123_456, flags::ACK)] {
            let (src, sport) = Flows::CLIENTS.addr(i);
            t.write(&mut buf, src, sport, client_isn(i), 77, fl);
            let b = &buf[..t.len()];
            assert!(checksums_ok(b), "flow {i}");
            let s = parse(b).unwrap();
            assert_eq!((s.src, s.sport, s.dst, s.dport), (src, sport, u32::from(VIP), 80));
            assert_eq!((s.seq, s.ack, s.flags, s.payload, s.tunnelled), (client_isn(i), 77, fl, 6, false));
            assert_eq!(&b[0..6], &B);
        }
    }

    #[test]
    fn the_templates_fast_path_writes_what_the_builder_writes() {
        let t = TcpTemplate::new(A, B, VIP, 80, 30);
        let mut buf = [0u8; 128];
        let (src, sport) = Flows::CLIENTS.addr(77_777);
        t.write(&mut buf, src, sport, 0xfedc_ba98, 0x0123_4567, flags::ACK | flags::PSH);
        let built = build::ipv4(Ipv4Addr::from(src), VIP).macs(MacAddr(A), MacAddr(B)).tcp(&TcpRepr {
            src_port: sport,
            dst_port: 80,
            seq_number: 0xfedc_ba98,
            ack_number: 0x0123_4567,
            flags: flags::ACK | flags::PSH,
            window_len: 0xffff,
            options: &[],
            payload: b"abcdefghijklmnopqrstuvwxyzabcd",
        });
        assert_eq!(&buf[..t.len()], &built[..]);
    }

    #[test]
    fn the_handshake_and_data_are_answered_like_tcp() {
        let t = TcpTemplate::new(A, B, VIP, 80, 0);
        let mut buf = [0u8; 128];
        let (src, sport) = Flows::CLIENTS.addr(5);
        t.write(&mut buf, src, sport, 1000, 0, flags::SYN);
        let syn = parse(&buf[..t.len()]).unwrap();
        let Answer::Reply { seq, ack, flags: f } = answer(&syn) else { panic!() };
        assert_eq!((seq, ack, f), (SERVER_ISN, 1001, flags::SYN | flags::ACK));
        let n = write_answer(&mut buf, &syn, seq, ack, f);
        assert!(checksums_ok(&buf[..n]));
        let synack = parse(&buf[..n]).unwrap();
        assert_eq!((synack.src, synack.sport, synack.dst, synack.dport), (u32::from(VIP), 80, src, sport));
        assert_eq!(&buf[0..6], &A);
        // The client completes the handshake from the SYN-ACK.
        assert_eq!(answer(&synack), Answer::Reply { seq: 1001, ack: SERVER_ISN + 1, flags: flags::ACK });
        // A pure ACK is not answered; data is acknowledged.
        let mut ack = synack;
        ack.flags = flags::ACK;
        assert_eq!(answer(&ack), Answer::None);
        let t = TcpTemplate::new(A, B, VIP, 80, 10);
        t.write(&mut buf, src, sport, 1001, SERVER_ISN + 1, flags::ACK | flags::PSH);
        let data = parse(&buf[..t.len()]).unwrap();
        assert_eq!(answer(&data), Answer::Reply { seq: SERVER_ISN + 1, ack: 1011, flags: flags::ACK });
        let mut rst = data;
        rst.flags = flags::RST;
        assert_eq!(answer(&rst), Answer::None);
    }

    #[test]
    fn answers_drop_options_and_payload() {
        // A SYN carrying 8 bytes of options (as the gateway's TOA adds).
        let t = TcpTemplate::new(A, B, VIP, 80, 8);
        let mut buf = [0u8; 128];
        t.write(&mut buf, 0x0a01_0002, 4000, 1, 0, flags::SYN);
        buf[46] = 0x70; // data offset 28: the "payload" is now options
        let s = parse(&buf[..t.len()]).unwrap();
        assert_eq!(s.payload, 0);
        let Answer::Reply { seq, ack, flags: f } = answer(&s) else { panic!() };
        let n = write_answer(&mut buf, &s, seq, ack, f);
        assert_eq!(n, HDR_LEN);
        assert!(checksums_ok(&buf[..n]));
    }

    #[test]
    fn ipv6_segments_are_written_parsed_and_answered() {
        let vip6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
        let t = TcpTemplate::new_v6(A, B, vip6, 80, 30);
        assert_eq!(t.len(), HDR_LEN_V6 + 30);
        let mut buf = [0u8; 160];
        let (src, sport) = Flows::CLIENTS.addr(77_777);
        t.write(&mut buf, src, sport, 0xfedc_ba98, 0x0123_4567, flags::ACK | flags::PSH);
        // Byte for byte what the gateway's frame builder writes.
        let built = build::ipv6(client6(src), vip6).macs(MacAddr(A), MacAddr(B)).tcp(&TcpRepr {
            src_port: sport,
            dst_port: 80,
            seq_number: 0xfedc_ba98,
            ack_number: 0x0123_4567,
            flags: flags::ACK | flags::PSH,
            window_len: 0xffff,
            options: &[],
            payload: b"abcdefghijklmnopqrstuvwxyzabcd",
        });
        assert_eq!(&buf[..t.len()], &built[..]);
        let s = parse(&buf[..t.len()]).unwrap();
        assert_eq!((s.src, s.sport, s.dst, s.dport, s.v6), (src, sport, u128::from(vip6) as u32, 80, true));
        assert_eq!(Flows::CLIENTS.index(s.src, s.sport), Some(77_777));
        // The server's answer: addresses swapped whole, checksum valid.
        let Answer::Reply { seq, ack, flags: f } = answer(&s) else { panic!() };
        let n = write_answer(&mut buf, &s, seq, ack, f);
        assert_eq!(n, HDR_LEN_V6);
        let ip = Ipv6Packet::new_checked(&buf[ETH_LEN..n]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (vip6, client6(src)));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum_v6(vip6, client6(src)));
        assert_eq!((tcp.seq_number(), tcp.ack_number()), (0x0123_4567, 0xfedc_ba98 + 30));
        assert_eq!(&buf[0..6], &A);
    }

    #[test]
    fn tunnelled_segments_are_seen_inside() {
        let t = TcpTemplate::new(A, B, VIP, 80, 6);
        let mut inner = [0u8; 128];
        t.write(&mut inner, 0x0a01_0003, 2000, 9, 0, flags::ACK);
        let frame = build::ipv4(Ipv4Addr::new(10, 9, 9, 9), VIP).ip_payload(PROTO_IPIP, &inner[ETH_LEN..t.len()]);
        let s = parse(&frame).unwrap();
        assert!(s.tunnelled);
        assert_eq!((s.src, s.sport, s.payload), (0x0a01_0003, 2000, 6));
        assert!(parse(&frame[..40]).is_none(), "truncated");
    }

    #[test]
    fn arp_requests_are_answered() {
        let who_has = ArpRepr {
            operation: OP_REQUEST,
            sender_hardware_addr: MacAddr(B),
            sender_protocol_addr: Ipv4Addr::new(192, 168, 1, 254),
            target_hardware_addr: MacAddr::default(),
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 10),
        };
        let mut b = build::arp(MacAddr(B), MacAddr::BROADCAST, &who_has);
        assert_eq!(arp_reply(&mut b, A), Some(42));
        assert_eq!(&b[0..6], &B);
        assert_eq!(&b[22..28], &A);
        assert_eq!(&b[28..32], &[192, 168, 1, 10]);
        assert_eq!(&b[38..42], &[192, 168, 1, 254]);
        assert_eq!(arp_reply(&mut b, A), None, "a reply is not answered");
    }
}
