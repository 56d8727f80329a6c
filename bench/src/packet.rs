//! The generator's packets: flow addressing, TCP segment templates, the real
//! servers' reflection and ARP answers. Plain byte slices, no DPDK, so every
//! piece is unit-tested on buffers.
//!
//! Frames are untagged Ethernet + IPv4 (no options) + TCP (no options):
//! 54 bytes of headers, then the payload. Client segments are written from a
//! [`TcpTemplate`] whose constant part and checksum partial sums are computed
//! once; a packet costs a 64-byte copy, a few stores and two folds.

use std::net::Ipv4Addr;

use gateway::wire::checksum::{finish, pseudo_header_v4, sum};

pub const ETH_LEN: usize = 14;
pub const IP_LEN: usize = 20;
pub const TCP_LEN: usize = 20;
/// Ethernet + IPv4 + TCP headers.
pub const HDR_LEN: usize = ETH_LEN + IP_LEN + TCP_LEN;
/// The largest payload a template carries.
pub const MAX_PAYLOAD: usize = 1400;

// The wire layer's numbers, not copies of them.
pub use gateway::wire::ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV4};
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

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Client segments toward one destination (VIP:port, or a real server when
/// a test bypasses the gateway) with a fixed payload length.
#[derive(Clone)]
pub struct TcpTemplate {
    bytes: [u8; HDR_LEN + MAX_PAYLOAD],
    len: usize,
    /// Sum of the IPv4 header with the source address and checksum zero.
    ip_base: u64,
    /// Sum of pseudo-header, TCP header and payload with the varying fields
    /// (source address and port, seq, ack, flags) and the checksum zero.
    tcp_base: u64,
}

impl TcpTemplate {
    /// `payload` bytes (at most [`MAX_PAYLOAD`]) of a repeating pattern.
    pub fn new(src_mac: [u8; 6], dst_mac: [u8; 6], dst: Ipv4Addr, dport: u16, payload: usize) -> TcpTemplate {
        assert!(payload <= MAX_PAYLOAD, "payload {payload} > {MAX_PAYLOAD}");
        let mut b = [0u8; HDR_LEN + MAX_PAYLOAD];
        b[0..6].copy_from_slice(&dst_mac);
        b[6..12].copy_from_slice(&src_mac);
        b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let ip = &mut b[ETH_LEN..ETH_LEN + IP_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((IP_LEN + TCP_LEN + payload) as u16).to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = PROTO_TCP;
        ip[16..20].copy_from_slice(&dst.octets());
        let ip_base = sum(ip);
        let t = ETH_LEN + IP_LEN;
        b[t + 2..t + 4].copy_from_slice(&dport.to_be_bytes());
        b[t + 12] = 0x50;
        b[t + 14..t + 16].copy_from_slice(&0xffffu16.to_be_bytes());
        for (k, byte) in b[HDR_LEN..HDR_LEN + payload].iter_mut().enumerate() {
            *byte = b'a' + (k % 26) as u8;
        }
        let l4 = (TCP_LEN + payload) as u16;
        let tcp_base = pseudo_header_v4([0; 4], dst.octets(), PROTO_TCP, l4) + sum(&b[t..HDR_LEN + payload]);
        TcpTemplate { bytes: b, len: HDR_LEN + payload, ip_base, tcp_base }
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the segment from `src:sport` into `out` (at least
    /// [`len`](Self::len) bytes) with both checksums.
    #[inline]
    pub fn write(&self, out: &mut [u8], src: u32, sport: u16, seq: u32, ack: u32, tcp_flags: u8) {
        let out = &mut out[..self.len];
        out.copy_from_slice(&self.bytes[..self.len]);
        out[26..30].copy_from_slice(&src.to_be_bytes());
        let ip_sum = finish(self.ip_base + u64::from(src));
        out[24..26].copy_from_slice(&ip_sum.to_be_bytes());
        out[34..36].copy_from_slice(&sport.to_be_bytes());
        out[38..42].copy_from_slice(&seq.to_be_bytes());
        out[42..46].copy_from_slice(&ack.to_be_bytes());
        out[47] = tcp_flags;
        let tcp_sum = finish(
            self.tcp_base + u64::from(src) + u64::from(sport) + u64::from(seq) + u64::from(ack) + u64::from(tcp_flags),
        );
        out[50..52].copy_from_slice(&tcp_sum.to_be_bytes());
    }
}

/// A TCP segment as the generator sees it (after IPIP decapsulation when it
/// arrived tunnelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: usize,
    pub tunnelled: bool,
}

/// Parses an Ethernet/IPv4/TCP frame, looking inside one IPIP layer.
pub fn parse(b: &[u8]) -> Option<Segment> {
    if b.len() < HDR_LEN || be16(b, 12) != ETHERTYPE_IPV4 {
        return None;
    }
    let mut l3 = ETH_LEN;
    let mut tunnelled = false;
    loop {
        let ihl = usize::from(b.get(l3)? & 0x0f) * 4;
        if b.get(l3)? >> 4 != 4 || ihl < IP_LEN || b.len() < l3 + ihl {
            return None;
        }
        let total = usize::from(be16(b, l3 + 2));
        if total < ihl || b.len() < l3 + total {
            return None;
        }
        match b[l3 + 9] {
            PROTO_IPIP if !tunnelled => {
                tunnelled = true;
                l3 += ihl;
            }
            PROTO_TCP => {
                let t = l3 + ihl;
                if total < ihl + TCP_LEN {
                    return None;
                }
                let doff = usize::from(b[t + 12] >> 4) * 4;
                if doff < TCP_LEN || total < ihl + doff {
                    return None;
                }
                return Some(Segment {
                    src: be32(b, l3 + 12),
                    dst: be32(b, l3 + 16),
                    sport: be16(b, t),
                    dport: be16(b, t + 2),
                    seq: be32(b, t + 4),
                    ack: be32(b, t + 8),
                    flags: b[t + 13],
                    payload: total - ihl - doff,
                    tunnelled,
                });
            }
            _ => return None,
        }
    }
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
/// `seq/ack/flags`: MACs, addresses and ports swapped, fresh 20-byte IPv4
/// and TCP headers without options or payload, both checksums. Returns the
/// new frame length ([`HDR_LEN`]); the caller trims the buffer to it.
pub fn write_answer(b: &mut [u8], s: &Segment, seq: u32, ack: u32, tcp_flags: u8) -> usize {
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&b[6..12]);
    macs[6..].copy_from_slice(&b[0..6]);
    b[..12].copy_from_slice(&macs);
    b[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let ip = &mut b[ETH_LEN..ETH_LEN + IP_LEN];
    ip[..12].copy_from_slice(&[0x45, 0, 0, (IP_LEN + TCP_LEN) as u8, 0, 0, 0x40, 0, 64, PROTO_TCP, 0, 0]);
    ip[12..16].copy_from_slice(&s.dst.to_be_bytes());
    ip[16..20].copy_from_slice(&s.src.to_be_bytes());
    let ip_sum = finish(sum(ip));
    ip[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    let t = &mut b[ETH_LEN + IP_LEN..HDR_LEN];
    t[0..2].copy_from_slice(&s.dport.to_be_bytes());
    t[2..4].copy_from_slice(&s.sport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 0x50;
    t[13] = tcp_flags;
    t[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    t[16..20].copy_from_slice(&[0; 4]);
    let tcp_sum =
        finish(pseudo_header_v4(s.dst.to_be_bytes(), s.src.to_be_bytes(), PROTO_TCP, TCP_LEN as u16) + sum(t));
    t[16..18].copy_from_slice(&tcp_sum.to_be_bytes());
    HDR_LEN
}

/// Answers an ARP request in place (any target: the generator stands for
/// every client and real server on its link). Returns the reply's length,
/// or `None` when the frame is not an ARP request.
pub fn arp_reply(b: &mut [u8], our_mac: [u8; 6]) -> Option<usize> {
    const ARP_LEN: usize = ETH_LEN + 28;
    if b.len() < ARP_LEN || be16(b, 12) != ETHERTYPE_ARP || be16(b, 14) != 1 || be16(b, 16) != 0x0800 {
        return None;
    }
    if be16(b, 20) != 1 || b[6..12] == our_mac {
        return None;
    }
    let (mut sha, mut spa, mut tpa) = ([0u8; 6], [0u8; 4], [0u8; 4]);
    sha.copy_from_slice(&b[22..28]);
    spa.copy_from_slice(&b[28..32]);
    tpa.copy_from_slice(&b[38..42]);
    b[0..6].copy_from_slice(&sha);
    b[6..12].copy_from_slice(&our_mac);
    b[20..22].copy_from_slice(&2u16.to_be_bytes());
    b[22..28].copy_from_slice(&our_mac);
    b[28..32].copy_from_slice(&tpa);
    b[32..38].copy_from_slice(&sha);
    b[38..42].copy_from_slice(&spa);
    Some(ARP_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::wire::checksum::{verify, verify_ipv4_header};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

    fn checksums_ok(b: &[u8]) -> bool {
        let ihl = usize::from(b[14] & 0xf) * 4;
        let total = usize::from(be16(b, 16));
        let l4 = &b[14 + ihl..14 + total];
        let mut src = [0; 4];
        let mut dst = [0; 4];
        src.copy_from_slice(&b[26..30]);
        dst.copy_from_slice(&b[30..34]);
        verify_ipv4_header(&b[14..14 + ihl]) && verify(l4, pseudo_header_v4(src, dst, PROTO_TCP, l4.len() as u16))
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
    fn tunnelled_segments_are_seen_inside() {
        let t = TcpTemplate::new(A, B, VIP, 80, 6);
        let mut inner = [0u8; 128];
        t.write(&mut inner, 0x0a01_0003, 2000, 9, 0, flags::ACK);
        let mut frame = vec![0u8; 14 + 20];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame[14] = 0x45;
        frame[16..18].copy_from_slice(&((20 + t.len() - 14) as u16).to_be_bytes());
        frame[23] = PROTO_IPIP;
        frame.extend_from_slice(&inner[14..t.len()]);
        let s = parse(&frame).unwrap();
        assert!(s.tunnelled);
        assert_eq!((s.src, s.sport, s.payload), (0x0a01_0003, 2000, 6));
        assert!(parse(&frame[..40]).is_none(), "truncated");
    }

    #[test]
    fn arp_requests_are_answered() {
        let mut b = [0u8; 60];
        b[0..6].copy_from_slice(&[0xff; 6]);
        b[6..12].copy_from_slice(&B);
        b[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        b[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        b[22..28].copy_from_slice(&B);
        b[28..32].copy_from_slice(&[192, 168, 1, 254]);
        b[38..42].copy_from_slice(&[192, 168, 1, 10]);
        assert_eq!(arp_reply(&mut b, A), Some(42));
        assert_eq!(&b[0..6], &B);
        assert_eq!(&b[22..28], &A);
        assert_eq!(&b[28..32], &[192, 168, 1, 10]);
        assert_eq!(&b[38..42], &[192, 168, 1, 254]);
        assert_eq!(arp_reply(&mut b, A), None, "a reply is not answered");
    }
}
