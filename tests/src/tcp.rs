//! TCP segments for the tests: read them out of captured Ethernet frames,
//! and send hand-made ones (spoofed sources, forged ACKs) from a namespace.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Stdio;

use crate::Netns;

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Option kinds (RFC 9293, 2018, 7323).
pub const OPT_MSS: u8 = 2;
pub const OPT_WSCALE: u8 = 3;
pub const OPT_SACK_PERMITTED: u8 = 4;
pub const OPT_SACK: u8 = 5;
pub const OPT_TIMESTAMPS: u8 = 8;

/// A TCP segment of a captured Ethernet frame (IPv4, or IPv6 without
/// extension headers).
#[derive(Debug, Clone)]
pub struct Segment {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The option space (between the fixed header and the payload).
    pub options: Vec<u8>,
    /// Payload bytes (by the IP total length, not the captured length).
    pub payload_len: usize,
}

impl Segment {
    /// Parses a frame; `None` when it is not TCP over IPv4 or IPv6.
    pub fn parse(frame: &[u8]) -> Option<Segment> {
        let (src, dst, ip_len, tcp) = match frame.get(12..14)? {
            [0x08, 0x00] => {
                let ip = frame.get(14..14 + 20)?;
                let ihl = usize::from(ip[0] & 0x0f) * 4;
                if ip[0] >> 4 != 4 || ip[9] != 6 {
                    return None;
                }
                let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
                let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
                let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                (IpAddr::V4(src), IpAddr::V4(dst), total.checked_sub(ihl)?, frame.get(14 + ihl..)?)
            }
            [0x86, 0xdd] => {
                let ip = frame.get(14..14 + 40)?;
                if ip[0] >> 4 != 6 || ip[6] != 6 {
                    return None;
                }
                let addr = |at: usize| IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[at..at + 16]).unwrap()));
                let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                (addr(8), addr(24), payload, frame.get(14 + 40..)?)
            }
            _ => return None,
        };
        if tcp.len() < 20 {
            return None;
        }
        let doff = usize::from(tcp[12] >> 4) * 4;
        assert!((20..=tcp.len()).contains(&doff), "a sound TCP data offset {doff}: {frame:02x?}");
        let be32 = |at: usize| u32::from_be_bytes([tcp[at], tcp[at + 1], tcp[at + 2], tcp[at + 3]]);
        Some(Segment {
            src,
            dst,
            sport: u16::from_be_bytes([tcp[0], tcp[1]]),
            dport: u16::from_be_bytes([tcp[2], tcp[3]]),
            seq: be32(4),
            ack: be32(8),
            flags: tcp[13],
            options: tcp[20..doff].to_vec(),
            payload_len: ip_len.saturating_sub(doff),
        })
    }

    /// Whether every flag of `set` is on and every other flag of `mask` off.
    pub fn has(&self, set: u8, mask: u8) -> bool {
        self.flags & mask == set
    }

    /// The options as (kind, whole option bytes).
    pub fn option_list(&self) -> Vec<(u8, Vec<u8>)> {
        options(&self.options)
    }

    /// The first option of `kind`, whole (kind and length bytes included).
    pub fn option(&self, kind: u8) -> Option<Vec<u8>> {
        self.option_list().into_iter().find(|(k, _)| *k == kind).map(|(_, o)| o)
    }

    /// The SACK blocks (left, right edges) this segment carries.
    pub fn sack_blocks(&self) -> Vec<(u32, u32)> {
        self.option(OPT_SACK)
            .map(|o| {
                o[2..]
                    .chunks_exact(8)
                    .map(|b| {
                        (u32::from_be_bytes([b[0], b[1], b[2], b[3]]), u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The segments of captured frames (frames that are not IPv4/TCP are skipped).
pub fn segments(frames: &[Vec<u8>]) -> Vec<Segment> {
    frames.iter().filter_map(|f| Segment::parse(f)).collect()
}

/// The options of an option space as (kind, whole option bytes); panics on
/// a malformed one (the peer's stack would not read past it either).
pub fn options(mut space: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(&kind) = space.first() {
        match kind {
            0 => break,
            1 => space = &space[1..],
            _ => {
                let len = usize::from(*space.get(1).expect("option length"));
                assert!(len >= 2 && len <= space.len(), "malformed option {kind} in {space:02x?}");
                out.push((kind, space[..len].to_vec()));
                space = &space[len..];
            }
        }
    }
    out
}

/// One hand-made segment for [`send_raw`].
#[derive(Debug, Clone)]
pub struct RawSegment {
    pub src: Ipv4Addr,
    pub sport: u16,
    pub dst: Ipv4Addr,
    pub dport: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// With the options a Linux client puts on its SYN (MSS 1460,
    /// SACK-permitted, timestamps, window scale 7).
    pub syn_options: bool,
}

/// Sends `segments` from inside `ns` through a raw IPv4 socket (the
/// namespace's routes and ARP pick the link; any source address may be
/// written), at most `per_ms` packets a millisecond so that the links'
/// queues do not overflow. Returns the number the kernel took.
///
/// Python, because it is everywhere the tests run; only `socket` and
/// `struct` are used (no scapy).
pub fn send_raw(ns: &Netns, segments: &[RawSegment], per_ms: usize) -> usize {
    const SENDER: &str = r#"
import socket, struct, sys, time
per_ms = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
SYN_OPTS = struct.pack("!BBH", 2, 4, 1460) + bytes([4, 2, 8, 10]) + struct.pack("!II", 1000, 0) + bytes([1, 3, 3, 7])
sent = errors = 0
n = 0
start = time.monotonic()
for line in sys.stdin:
    src, sport, dst, dport, flags, seq, ack, synopts = line.split()
    src, dst = socket.inet_aton(src), socket.inet_aton(dst)
    opts = SYN_OPTS if synopts == "1" else b""
    hdr = struct.pack("!HHIIBBHHH", int(sport), int(dport), int(seq), int(ack), (5 + len(opts) // 4) << 4, int(flags), 64240, 0, 0) + opts
    c = csum(src + dst + struct.pack("!BBH", 0, 6, len(hdr)) + hdr)
    tcp = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), n & 0xffff, 0, 64, 6, 0, src, dst) + tcp
    try:
        s.sendto(ip, (socket.inet_ntoa(dst), 0))
        sent += 1
    except OSError:
        errors += 1
    n += 1
    # Pace: no more than per_ms packets per elapsed millisecond.
    ahead = n / per_ms / 1000.0 - (time.monotonic() - start)
    if ahead > 0.0005:
        time.sleep(ahead)
print("sent %d errors %d" % (sent, errors))
"#;
    let mut input = String::with_capacity(segments.len() * 64);
    for s in segments {
        input += &format!(
            "{} {} {} {} {} {} {} {}\n",
            s.src,
            s.sport,
            s.dst,
            s.dport,
            s.flags,
            s.seq,
            s.ack,
            u8::from(s.syn_options)
        );
    }
    let mut child = ns
        .command("python3")
        .args(["-c", SENDER, &per_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the raw sender");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("feed the raw sender");
    let out = child.wait_with_output().expect("raw sender output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "raw sender: {text}{}", String::from_utf8_lossy(&out.stderr));
    text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("raw sender said {text:?}"))
}
