//! The PROXY protocol header (HAProxy's specification, versions 1 and 2):
//! what a stock server (nginx `listen ... proxy_protocol`, HAProxy
//! `accept-proxy`, Envoy, Traefik) reads in front of a TCP stream to learn
//! the client's address when a proxy, here the FNAT director, hides it.
//!
//! Only what the gateway sends is emitted: TCP over IPv4 or IPv6, `PROXY`
//! command. A header is of one family ([`ProxyAddr`]: [`Ipv4Addr`] or
//! [`Ipv6Addr`]), as a connection is.
//! - v1 is one text line, `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (56
//!   bytes at most) or `PROXY TCP6 ...` (104 at most), its length depending
//!   on the addresses. IPv6 addresses are written as the specification asks:
//!   groups of hexadecimal digits between colons, one `::` for the longest run
//!   of zero groups (RFC 5952's choice of run: the first of the longest, never
//!   a single group), and no dotted IPv4 tail, not even for an IPv4-mapped
//!   address (`::ffff:c000:201`, where `inet_ntop` writes `::ffff:192.0.2.1`).
//! - v2 is binary: a 12-byte signature, version/command, family/transport,
//!   a length, then the addresses and ports; no TLVs. 28 bytes for IPv4
//!   (`AF_INET`, 0x11, a 12-byte block), 52 for IPv6 (`AF_INET6`, 0x21, a
//!   36-byte block).
//!
//! Emitting writes into a fixed array (no allocation: it runs on the packet
//! path). Parsing is here for the tests and for checking what was emitted.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The v2 header's fixed part; the address block follows it.
mod field {
    use std::ops::Range;
    pub const SIGNATURE: Range<usize> = 0..12;
    pub const VER_CMD: usize = 12;
    pub const FAMILY: usize = 13;
    pub const LENGTH: Range<usize> = 14..16;
    /// Where the address block starts: source address, destination
    /// address, source port, destination port.
    pub const BLOCK: usize = 16;
}

/// The v2 signature: chosen to be invalid as the start of any text protocol.
pub const V2_SIGNATURE: [u8; 12] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/// Version 2, command PROXY.
const V2_VER_CMD_PROXY: u8 = 0x21;
/// The v2 header's fixed part (signature to length).
const V2_FIXED_LEN: usize = 16;
/// A v2 header for TCP over IPv4.
pub const V2_TCP4_LEN: usize = V2_FIXED_LEN + <Ipv4Addr as ProxyAddr>::V2_BLOCK;
/// A v2 header for TCP over IPv6.
pub const V2_TCP6_LEN: usize = V2_FIXED_LEN + <Ipv6Addr as ProxyAddr>::V2_BLOCK;
/// The longest v1 line for TCP over IPv4:
/// `PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n`.
pub const V1_TCP4_MAX_LEN: usize = 56;
/// The longest v1 line for TCP over IPv6: two 39-character addresses
/// (eight groups of four digits, no zero group).
pub const V1_TCP6_MAX_LEN: usize = 104;
/// The longest header this module emits.
pub const MAX_LEN: usize = V1_TCP6_MAX_LEN;
/// The longest v1 line the specification allows (any family).
const V1_MAX_LEN: usize = 107;
// Every line emitted is one the specification allows.
const _: () = assert!(V1_TCP6_MAX_LEN <= V1_MAX_LEN && V1_TCP4_MAX_LEN <= V1_MAX_LEN);
/// The longest address text of either family (an IPv6 address of eight
/// four-digit groups).
const TEXT_MAX: usize = 39;

/// The protocol version a service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// An address family a header can carry: what TCP4 and TCP6 headers differ
/// in. Each family's emit is its own monomorphic copy.
pub trait ProxyAddr: Copy + Eq + fmt::Debug + FromStr {
    /// v1's protocol field.
    const V1_PROTOCOL: &'static str;
    /// v2's family/transport byte: the family over `SOCK_STREAM` (0x_1).
    const V2_FAMILY: u8;
    /// The address's length in bytes.
    const LEN: usize;
    /// v2's address block: two addresses and two ports.
    const V2_BLOCK: usize = 2 * Self::LEN + 4;
    /// Writes the address's bytes (network order) to `out`, [`Self::LEN`] long.
    fn write_octets(self, out: &mut [u8]);
    /// The address in `bytes`, [`Self::LEN`] long.
    fn from_octets(bytes: &[u8]) -> Self;
    /// Writes the address as v1 text to the start of `out`; returns its length.
    fn write_text(self, out: &mut [u8; TEXT_MAX]) -> usize;
    /// The length of [`ProxyAddr::write_text`]'s text.
    fn text_len(self) -> usize;
}

impl ProxyAddr for Ipv4Addr {
    const V1_PROTOCOL: &'static str = "TCP4";
    const V2_FAMILY: u8 = 0x11;
    const LEN: usize = 4;
    fn write_octets(self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }
    fn from_octets(b: &[u8]) -> Self {
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// Four decimal numbers between dots, no leading zeros.
    fn write_text(self, out: &mut [u8; TEXT_MAX]) -> usize {
        let mut at = 0;
        for (i, o) in self.octets().into_iter().enumerate() {
            if i > 0 {
                out[at] = b'.';
                at += 1;
            }
            at += write_decimal(&mut out[at..], u16::from(o));
        }
        at
    }
    fn text_len(self) -> usize {
        3 + self.octets().into_iter().map(|o| decimal_len(u16::from(o))).sum::<usize>()
    }
}

impl ProxyAddr for Ipv6Addr {
    const V1_PROTOCOL: &'static str = "TCP6";
    const V2_FAMILY: u8 = 0x21;
    const LEN: usize = 16;
    fn write_octets(self, out: &mut [u8]) {
        out.copy_from_slice(&self.octets());
    }
    fn from_octets(b: &[u8]) -> Self {
        let mut a = [0; 16];
        a.copy_from_slice(&b[..16]);
        Ipv6Addr::from(a)
    }
    /// Lowercase hexadecimal groups without leading zeros, the first of the
    /// longest runs of two or more zero groups written `::` (see the
    /// module docs: never a dotted tail).
    fn write_text(self, out: &mut [u8; TEXT_MAX]) -> usize {
        let groups = self.segments();
        let (run_at, run_len) = longest_zero_run(&groups);
        let mut at = 0;
        let mut i = 0;
        while i < groups.len() {
            if i == run_at && run_len >= 2 {
                out[at..at + 2].copy_from_slice(b"::");
                at += 2;
                i += run_len;
                continue;
            }
            if i > 0 && !(run_len >= 2 && i == run_at + run_len) {
                out[at] = b':';
                at += 1;
            }
            at += write_hex(&mut out[at..], groups[i]);
            i += 1;
        }
        at
    }
    fn text_len(self) -> usize {
        self.write_text(&mut [0; TEXT_MAX])
    }
}

/// Where the longest run of zero groups starts and its length (the first of
/// equal runs; length 0 when there is no zero group).
fn longest_zero_run(groups: &[u16; 8]) -> (usize, usize) {
    let (mut best, mut run) = ((0, 0), (0, 0));
    for (i, &g) in groups.iter().enumerate() {
        if g != 0 {
            run = (i + 1, 0);
            continue;
        }
        run.1 += 1;
        if run.1 > best.1 {
            best = run;
        }
    }
    best
}

/// Why bytes are not a PROXY header this module understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header needs (`needed` at least).
    Truncated { needed: usize, len: usize },
    /// Neither the v1 `PROXY ` prefix nor the v2 signature.
    NoSignature,
    /// A v1 line without `\r\n` within its 107 bytes, or with a field that
    /// does not parse (`field` is its position, from 0 for `PROXY`).
    BadV1Line { field: usize },
    /// A v1 protocol other than the family's (`TCP4`, `TCP6`: `family` 0),
    /// or a v2 family/transport byte other than TCP over the family.
    Unsupported { family: u8 },
    /// A v2 version/command byte other than version 2, PROXY.
    BadV2Command(u8),
    /// A v2 length field shorter than the family's address block (`needed`).
    BadV2Length { len: u16, needed: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, len } => write!(f, "proxy header needs {needed} bytes, {len} present"),
            Error::NoSignature => f.write_str("neither a v1 `PROXY ' line nor the v2 signature"),
            Error::BadV1Line { field } => write!(f, "v1 line: field {field} is malformed or the line has no CRLF"),
            Error::Unsupported { family: 0 } => f.write_str("v1 protocol is not TCP over the expected family"),
            Error::Unsupported { family } => {
                write!(f, "family/transport 0x{family:02x} is not TCP over the expected family")
            }
            Error::BadV2Command(b) => write!(f, "v2 version/command byte 0x{b:02x} is not 0x21 (v2, PROXY)"),
            Error::BadV2Length { len, needed } => {
                write!(f, "v2 length {len} is shorter than the {needed}-byte address block")
            }
        }
    }
}

impl std::error::Error for Error {}

/// A PROXY header as values: the client and the address it connected to,
/// each an address and a port of family `A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr<A = Ipv4Addr> {
    pub version: Version,
    pub src: (A, u16),
    pub dst: (A, u16),
}

impl<A: ProxyAddr> Repr<A> {
    /// The header's length on the wire.
    pub fn len(&self) -> usize {
        match self.version {
            Version::V2 => V2_FIXED_LEN + A::V2_BLOCK,
            // "PROXY TCPx " + src + ' ' + dst + ' ' + sport + ' ' + dport + "\r\n"
            Version::V1 => {
                11 + self.src.0.text_len()
                    + 1
                    + self.dst.0.text_len()
                    + 1
                    + decimal_len(self.src.1)
                    + 1
                    + decimal_len(self.dst.1)
                    + 2
            }
        }
    }

    /// Never empty: a header has at least its signature.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header at the start of `buf`; returns its length
    /// ([`Repr::len`]).
    pub fn emit(&self, buf: &mut [u8; MAX_LEN]) -> usize {
        match self.version {
            Version::V2 => {
                let (a, block) = (A::LEN, field::BLOCK);
                buf[field::SIGNATURE].copy_from_slice(&V2_SIGNATURE);
                buf[field::VER_CMD] = V2_VER_CMD_PROXY;
                buf[field::FAMILY] = A::V2_FAMILY;
                buf[field::LENGTH].copy_from_slice(&(A::V2_BLOCK as u16).to_be_bytes());
                self.src.0.write_octets(&mut buf[block..block + a]);
                self.dst.0.write_octets(&mut buf[block + a..block + 2 * a]);
                buf[block + 2 * a..block + 2 * a + 2].copy_from_slice(&self.src.1.to_be_bytes());
                buf[block + 2 * a + 2..block + 2 * a + 4].copy_from_slice(&self.dst.1.to_be_bytes());
                block + A::V2_BLOCK
            }
            Version::V1 => {
                let mut w = Writer { buf, at: 0 };
                w.bytes(b"PROXY ");
                w.bytes(A::V1_PROTOCOL.as_bytes());
                w.bytes(b" ");
                w.addr(self.src.0);
                w.bytes(b" ");
                w.addr(self.dst.0);
                w.bytes(b" ");
                w.decimal(self.src.1);
                w.bytes(b" ");
                w.decimal(self.dst.1);
                w.bytes(b"\r\n");
                w.at
            }
        }
    }

    /// Reads a header of family `A` from the start of `bytes`: the header
    /// and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Repr<A>, usize), Error> {
        if bytes.starts_with(&V2_SIGNATURE) {
            return Repr::parse_v2(bytes);
        }
        if bytes.starts_with(b"PROXY ") {
            return Repr::parse_v1(bytes);
        }
        // A prefix of either signature: more bytes may still make a header.
        if b"PROXY ".starts_with(bytes) {
            return Err(Error::Truncated { needed: 6, len: bytes.len() });
        }
        if V2_SIGNATURE.starts_with(bytes) {
            return Err(Error::Truncated { needed: V2_SIGNATURE.len(), len: bytes.len() });
        }
        Err(Error::NoSignature)
    }

    fn parse_v2(bytes: &[u8]) -> Result<(Repr<A>, usize), Error> {
        let len = bytes.len();
        if len < V2_FIXED_LEN {
            return Err(Error::Truncated { needed: V2_FIXED_LEN, len });
        }
        if bytes[field::VER_CMD] != V2_VER_CMD_PROXY {
            return Err(Error::BadV2Command(bytes[field::VER_CMD]));
        }
        if bytes[field::FAMILY] != A::V2_FAMILY {
            return Err(Error::Unsupported { family: bytes[field::FAMILY] });
        }
        let block = u16::from_be_bytes([bytes[14], bytes[15]]);
        if usize::from(block) < A::V2_BLOCK {
            return Err(Error::BadV2Length { len: block, needed: A::V2_BLOCK });
        }
        let total = V2_FIXED_LEN + usize::from(block);
        if len < total {
            return Err(Error::Truncated { needed: total, len });
        }
        let (a, at) = (A::LEN, field::BLOCK);
        let port = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let repr = Repr {
            version: Version::V2,
            src: (A::from_octets(&bytes[at..at + a]), port(at + 2 * a)),
            dst: (A::from_octets(&bytes[at + a..at + 2 * a]), port(at + 2 * a + 2)),
        };
        // TLVs past the address block are skipped.
        Ok((repr, total))
    }

    fn parse_v1(bytes: &[u8]) -> Result<(Repr<A>, usize), Error> {
        let window = &bytes[..bytes.len().min(V1_MAX_LEN)];
        let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
            return if bytes.len() < V1_MAX_LEN {
                Err(Error::Truncated { needed: bytes.len() + 1, len: bytes.len() })
            } else {
                Err(Error::BadV1Line { field: 0 })
            };
        };
        let line = std::str::from_utf8(&bytes[..end]).map_err(|_| Error::BadV1Line { field: 0 })?;
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() != 6 || fields[0] != "PROXY" {
            return Err(Error::BadV1Line { field: fields.len().min(6) });
        }
        if fields[1] != A::V1_PROTOCOL {
            return Err(Error::Unsupported { family: 0 });
        }
        let ip = |i: usize| fields[i].parse::<A>().map_err(|_| Error::BadV1Line { field: i });
        let port = |i: usize| {
            let f = fields[i];
            // The specification forbids leading zeros.
            if f.len() > 1 && f.starts_with('0') {
                return Err(Error::BadV1Line { field: i });
            }
            f.parse::<u16>().map_err(|_| Error::BadV1Line { field: i })
        };
        let repr = Repr { version: Version::V1, src: (ip(2)?, port(4)?), dst: (ip(3)?, port(5)?) };
        Ok((repr, end + 2))
    }
}

/// A cursor over the emit buffer (v1 lines fit: at most [`MAX_LEN`]).
struct Writer<'a> {
    buf: &'a mut [u8; MAX_LEN],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }
    fn decimal(&mut self, v: u16) {
        self.at += write_decimal(&mut self.buf[self.at..], v);
    }
    fn addr<A: ProxyAddr>(&mut self, a: A) {
        let mut text = [0; TEXT_MAX];
        let n = a.write_text(&mut text);
        self.bytes(&text[..n]);
    }
}

/// Writes `v` in decimal at the start of `out`; returns its length.
fn write_decimal(out: &mut [u8], v: u16) -> usize {
    let n = decimal_len(v);
    let mut v = v;
    for i in (0..n).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    n
}

/// Writes `v` in lowercase hexadecimal, no leading zeros, at the start of
/// `out`; returns its length.
fn write_hex(out: &mut [u8], v: u16) -> usize {
    let n = match v {
        0..=0xf => 1,
        0x10..=0xff => 2,
        0x100..=0xfff => 3,
        _ => 4,
    };
    for (i, out) in out[..n].iter_mut().enumerate() {
        let digit = (v >> (4 * (n - 1 - i))) & 0xf;
        *out = b"0123456789abcdef"[usize::from(digit)];
    }
    n
}

fn decimal_len(v: u16) -> usize {
    match v {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(version: Version) -> Repr {
        Repr { version, src: (Ipv4Addr::new(192, 168, 1, 10), 40000), dst: (Ipv4Addr::new(10, 0, 0, 1), 80) }
    }

    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

    fn repr6(version: Version) -> Repr<Ipv6Addr> {
        Repr { version, src: (CLIENT6, 40000), dst: (VIP6, 443) }
    }

    static V2_BYTES: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x11, 0x00, 0x0c, // v2 PROXY, TCP4, 12 bytes follow
        192, 168, 1, 10, 10, 0, 0, 1, // addresses
        0x9c, 0x40, 0x00, 0x50, // 40000, 80
    ];

    static V2_TCP6_BYTES: [u8; 52] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x21, 0x00, 0x24, // v2 PROXY, TCP6 (AF_INET6, STREAM), 36 bytes follow
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, // 2001:db8::10
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, // 2001:db8::1
        0x9c, 0x40, 0x01, 0xbb, // 40000, 443
    ];

    #[test]
    fn v2_emit_and_parse() {
        let mut buf = [0; MAX_LEN];
        assert_eq!(repr(Version::V2).emit(&mut buf), 28);
        assert_eq!(&buf[..28], &V2_BYTES);
        assert_eq!(repr(Version::V2).len(), V2_TCP4_LEN);
        assert_eq!(Repr::parse(&V2_BYTES), Ok((repr(Version::V2), 28)));
        // TLVs after the block are skipped as part of the header.
        let mut tlv = V2_BYTES.to_vec();
        tlv[15] = 12 + 4;
        tlv.extend_from_slice(&[0x05, 0x00, 0x01, 0x42, b'G', b'E', b'T']);
        assert_eq!(Repr::parse(&tlv), Ok((repr(Version::V2), 32)));
    }

    #[test]
    fn v2_tcp6_emit_and_parse() {
        let mut buf = [0; MAX_LEN];
        assert_eq!(repr6(Version::V2).emit(&mut buf), 52);
        assert_eq!(&buf[..52], &V2_TCP6_BYTES);
        assert_eq!((repr6(Version::V2).len(), V2_TCP6_LEN), (52, 52));
        assert_eq!(Repr::<Ipv6Addr>::parse(&V2_TCP6_BYTES), Ok((repr6(Version::V2), 52)));
        // Each family refuses the other's header by its family byte.
        assert_eq!(Repr::<Ipv4Addr>::parse(&V2_TCP6_BYTES), Err(Error::Unsupported { family: 0x21 }));
        assert_eq!(Repr::<Ipv6Addr>::parse(&V2_BYTES), Err(Error::Unsupported { family: 0x11 }));
        // A block too short for two IPv6 addresses.
        let mut short = V2_TCP6_BYTES;
        short[15] = 12;
        assert_eq!(Repr::<Ipv6Addr>::parse(&short), Err(Error::BadV2Length { len: 12, needed: 36 }));
        assert_eq!(Repr::<Ipv6Addr>::parse(&V2_TCP6_BYTES[..40]), Err(Error::Truncated { needed: 52, len: 40 }));
    }

    #[test]
    fn v1_emit_and_parse() {
        let line = b"PROXY TCP4 192.168.1.10 10.0.0.1 40000 80\r\n";
        let mut buf = [0; MAX_LEN];
        let n = repr(Version::V1).emit(&mut buf);
        assert_eq!(&buf[..n], line);
        assert_eq!(repr(Version::V1).len(), line.len());
        let mut with_data = line.to_vec();
        with_data.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(Repr::parse(&with_data), Ok((repr(Version::V1), line.len())));
    }

    #[test]
    fn v1_tcp6_emit_and_parse() {
        let line = b"PROXY TCP6 2001:db8::10 2001:db8::1 40000 443\r\n";
        let mut buf = [0; MAX_LEN];
        let n = repr6(Version::V1).emit(&mut buf);
        assert_eq!(&buf[..n], line);
        assert_eq!(repr6(Version::V1).len(), line.len());
        let mut with_data = line.to_vec();
        with_data.extend_from_slice(b"GET / HTTP/1.1\r\n");
        assert_eq!(Repr::<Ipv6Addr>::parse(&with_data), Ok((repr6(Version::V1), line.len())));
        assert_eq!(Repr::<Ipv4Addr>::parse(line), Err(Error::Unsupported { family: 0 }));
        assert_eq!(
            Repr::<Ipv6Addr>::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),
            Err(Error::Unsupported { family: 0 })
        );
        assert_eq!(Repr::<Ipv6Addr>::parse(b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), Err(Error::BadV1Line { field: 2 }));
    }

    /// The address texts of v1 TCP6 lines: the specification's form (hex
    /// groups, one `::` for the longest zero run), whatever the address.
    #[test]
    fn v1_tcp6_address_forms() {
        let cases: [(Ipv6Addr, &[u8]); 11] = [
            (Ipv6Addr::UNSPECIFIED, b"::"),
            (Ipv6Addr::LOCALHOST, b"::1"),
            (Ipv6Addr::new(1, 0, 0, 0, 0, 0, 0, 0), b"1::"),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1), b"2001:db8:0:1:1:1:1:1"),
            (Ipv6Addr::new(0x2001, 0, 0, 1, 0, 0, 0, 1), b"2001:0:0:1::1"),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1), b"2001:db8::1:0:0:1"),
            (Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0abc, 0x00de, 0xf, 0x1234), b"fe80::abc:de:f:1234"),
            // IPv4-mapped and IPv4-compatible: hex groups, no dotted tail.
            (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201), b"::ffff:c000:201"),
            (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0xc000, 0x0201), b"::c000:201"),
            (
                Ipv6Addr::new(0xABCD, 0xEF01, 0x2345, 0x6789, 0xabcd, 0xef01, 0x2345, 0x6789),
                b"abcd:ef01:2345:6789:abcd:ef01:2345:6789",
            ),
            (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), b"2001:db8::"),
        ];
        for (addr, text) in cases {
            let mut out = [0; TEXT_MAX];
            let n = addr.write_text(&mut out);
            assert_eq!(&out[..n], text, "{addr}");
            assert_eq!(addr.text_len(), n);
            assert_eq!(std::str::from_utf8(text).unwrap().parse::<Ipv6Addr>(), Ok(addr), "round trip");
        }
    }

    #[test]
    fn v1_longest_and_shortest_lines() {
        let max = Repr {
            version: Version::V1,
            src: (Ipv4Addr::BROADCAST, 65535),
            dst: (Ipv4Addr::new(255, 255, 255, 254), 65535),
        };
        let mut buf = [0; MAX_LEN];
        assert_eq!(max.emit(&mut buf), V1_TCP4_MAX_LEN);
        assert_eq!(&buf[..V1_TCP4_MAX_LEN], b"PROXY TCP4 255.255.255.255 255.255.255.254 65535 65535\r\n");
        let min = Repr { version: Version::V1, src: (Ipv4Addr::UNSPECIFIED, 0), dst: (Ipv4Addr::new(1, 2, 3, 4), 9) };
        let n = min.emit(&mut buf);
        assert_eq!(&buf[..n], b"PROXY TCP4 0.0.0.0 1.2.3.4 0 9\r\n");
        assert_eq!(min.len(), n);
        assert_eq!(Repr::parse(&buf[..n]), Ok((min, n)));

        let full = Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xfffe);
        let max6 = Repr { version: Version::V1, src: (full, 65535), dst: (full, 65535) };
        assert_eq!(max6.emit(&mut buf), V1_TCP6_MAX_LEN);
        assert_eq!(max6.len(), MAX_LEN);
        assert_eq!(&buf[..11], b"PROXY TCP6 ");
        assert_eq!(&buf[V1_TCP6_MAX_LEN - 14..], b" 65535 65535\r\n");
        let min6 = Repr { version: Version::V1, src: (Ipv6Addr::UNSPECIFIED, 0), dst: (Ipv6Addr::LOCALHOST, 9) };
        let n = min6.emit(&mut buf);
        assert_eq!(&buf[..n], b"PROXY TCP6 :: ::1 0 9\r\n");
        assert_eq!(min6.len(), n);
    }

    #[test]
    fn malformed_headers_are_refused() {
        type R = Repr<Ipv4Addr>;
        assert_eq!(R::parse(b"GET / HTTP/1.1\r\n"), Err(Error::NoSignature));
        assert_eq!(R::parse(b"PROX"), Err(Error::Truncated { needed: 6, len: 4 }));
        assert_eq!(R::parse(&V2_BYTES[..5]), Err(Error::Truncated { needed: 12, len: 5 }));
        assert!(matches!(R::parse(&V2_BYTES[..20]), Err(Error::Truncated { needed: 28, len: 20 })));
        assert!(matches!(R::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), Err(Error::Truncated { .. })));
        assert_eq!(R::parse(b"PROXY TCP6 ::1 ::1 1 2\r\n"), Err(Error::Unsupported { family: 0 }));
        assert_eq!(R::parse(b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), Err(Error::BadV1Line { field: 2 }));
        assert_eq!(R::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), Err(Error::BadV1Line { field: 4 }));
        assert_eq!(R::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), Err(Error::BadV1Line { field: 5 }));
        assert_eq!(R::parse(&[b'P'; 120][..]), Err(Error::NoSignature));
        let mut long = b"PROXY ".to_vec();
        long.resize(120, b'x');
        assert_eq!(R::parse(&long), Err(Error::BadV1Line { field: 0 }));
        let mut bad = V2_BYTES;
        bad[12] = 0x20;
        assert_eq!(R::parse(&bad), Err(Error::BadV2Command(0x20)));
        bad[12] = 0x21;
        bad[13] = 0x21;
        assert_eq!(R::parse(&bad), Err(Error::Unsupported { family: 0x21 }));
        bad[13] = 0x11;
        bad[15] = 4;
        assert_eq!(R::parse(&bad), Err(Error::BadV2Length { len: 4, needed: 12 }));
    }
}
