//! The PROXY protocol header (HAProxy's specification, versions 1 and 2):
//! what a stock server (nginx `listen ... proxy_protocol`, HAProxy
//! `accept-proxy`, Envoy, Traefik) reads in front of a TCP stream to learn
//! the client's address when a proxy, here the FNAT director, hides it.
//!
//! Only what the gateway sends is emitted: TCP over IPv4, `PROXY` command.
//! - v1 is one text line, `PROXY TCP4 <src> <dst> <sport> <dport>\r\n`, 56
//!   bytes at most for IPv4, its length depending on the addresses.
//! - v2 is binary: a 12-byte signature, version/command, family/transport,
//!   a length, then the addresses and ports; 28 bytes for IPv4, no TLVs.
//!
//! Emitting writes into a fixed array (no allocation: it runs on the packet
//! path). Parsing is here for the tests and for checking what was emitted.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

/// The v2 header's fixed part.
mod field {
    use std::ops::Range;
    pub const SIGNATURE: Range<usize> = 0..12;
    pub const VER_CMD: usize = 12;
    pub const FAMILY: usize = 13;
    pub const LENGTH: Range<usize> = 14..16;
    /// The IPv4 address block, right after the fixed part.
    pub const SRC_ADDR: Range<usize> = 16..20;
    pub const DST_ADDR: Range<usize> = 20..24;
    pub const SRC_PORT: Range<usize> = 24..26;
    pub const DST_PORT: Range<usize> = 26..28;
}

/// The v2 signature: chosen to be invalid as the start of any text protocol.
pub const V2_SIGNATURE: [u8; 12] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/// Version 2, command PROXY.
const V2_VER_CMD_PROXY: u8 = 0x21;
/// AF_INET, SOCK_STREAM.
const V2_FAMILY_TCP4: u8 = 0x11;
/// The v2 header's fixed part (signature to length).
const V2_FIXED_LEN: usize = 16;
/// The IPv4 address block: two addresses, two ports.
const V2_IPV4_BLOCK: usize = 12;
/// A v2 header for TCP over IPv4.
pub const V2_TCP4_LEN: usize = V2_FIXED_LEN + V2_IPV4_BLOCK;
/// The longest v1 line for TCP over IPv4:
/// `PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n`.
pub const V1_TCP4_MAX_LEN: usize = 56;
/// The longest header this module emits.
pub const MAX_LEN: usize = V1_TCP4_MAX_LEN;
/// The longest v1 line the specification allows (any family).
const V1_MAX_LEN: usize = 107;

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
    /// A v1 protocol other than `TCP4`, or a v2 family other than TCP over IPv4.
    Unsupported { family: u8 },
    /// A v2 version/command byte other than version 2, PROXY.
    BadV2Command(u8),
    /// A v2 length field shorter than the IPv4 address block.
    BadV2Length(u16),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, len } => write!(f, "proxy header needs {needed} bytes, {len} present"),
            Error::NoSignature => f.write_str("neither a v1 `PROXY ' line nor the v2 signature"),
            Error::BadV1Line { field } => write!(f, "v1 line: field {field} is malformed or the line has no CRLF"),
            Error::Unsupported { family } => write!(f, "family/transport 0x{family:02x} is not TCP over IPv4"),
            Error::BadV2Command(b) => write!(f, "v2 version/command byte 0x{b:02x} is not 0x21 (v2, PROXY)"),
            Error::BadV2Length(l) => write!(f, "v2 length {l} is shorter than the 12-byte IPv4 block"),
        }
    }
}

impl std::error::Error for Error {}

/// A PROXY header as values: the client and the address it connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub version: Version,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

impl Repr {
    /// The header's length on the wire.
    pub fn len(&self) -> usize {
        match self.version {
            Version::V2 => V2_TCP4_LEN,
            // "PROXY TCP4 " + src + ' ' + dst + ' ' + sport + ' ' + dport + "\r\n"
            Version::V1 => {
                11 + ipv4_text_len(*self.src.ip())
                    + 1
                    + ipv4_text_len(*self.dst.ip())
                    + 1
                    + decimal_len(self.src.port())
                    + 1
                    + decimal_len(self.dst.port())
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
                buf[field::SIGNATURE].copy_from_slice(&V2_SIGNATURE);
                buf[field::VER_CMD] = V2_VER_CMD_PROXY;
                buf[field::FAMILY] = V2_FAMILY_TCP4;
                buf[field::LENGTH].copy_from_slice(&(V2_IPV4_BLOCK as u16).to_be_bytes());
                buf[field::SRC_ADDR].copy_from_slice(&self.src.ip().octets());
                buf[field::DST_ADDR].copy_from_slice(&self.dst.ip().octets());
                buf[field::SRC_PORT].copy_from_slice(&self.src.port().to_be_bytes());
                buf[field::DST_PORT].copy_from_slice(&self.dst.port().to_be_bytes());
                V2_TCP4_LEN
            }
            Version::V1 => {
                let mut w = Writer { buf, at: 0 };
                w.bytes(b"PROXY TCP4 ");
                w.ipv4(*self.src.ip());
                w.bytes(b" ");
                w.ipv4(*self.dst.ip());
                w.bytes(b" ");
                w.decimal(self.src.port());
                w.bytes(b" ");
                w.decimal(self.dst.port());
                w.bytes(b"\r\n");
                w.at
            }
        }
    }

    /// Reads a header from the start of `bytes`: the header and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Repr, usize), Error> {
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

    fn parse_v2(bytes: &[u8]) -> Result<(Repr, usize), Error> {
        let len = bytes.len();
        if len < V2_FIXED_LEN {
            return Err(Error::Truncated { needed: V2_FIXED_LEN, len });
        }
        if bytes[field::VER_CMD] != V2_VER_CMD_PROXY {
            return Err(Error::BadV2Command(bytes[field::VER_CMD]));
        }
        if bytes[field::FAMILY] != V2_FAMILY_TCP4 {
            return Err(Error::Unsupported { family: bytes[field::FAMILY] });
        }
        let block = u16::from_be_bytes([bytes[14], bytes[15]]);
        if usize::from(block) < V2_IPV4_BLOCK {
            return Err(Error::BadV2Length(block));
        }
        let total = V2_FIXED_LEN + usize::from(block);
        if len < total {
            return Err(Error::Truncated { needed: total, len });
        }
        let addr = |r: std::ops::Range<usize>| {
            Ipv4Addr::new(bytes[r.start], bytes[r.start + 1], bytes[r.start + 2], bytes[r.start + 3])
        };
        let port = |r: std::ops::Range<usize>| u16::from_be_bytes([bytes[r.start], bytes[r.start + 1]]);
        let repr = Repr {
            version: Version::V2,
            src: SocketAddrV4::new(addr(field::SRC_ADDR), port(field::SRC_PORT)),
            dst: SocketAddrV4::new(addr(field::DST_ADDR), port(field::DST_PORT)),
        };
        // TLVs past the address block are skipped.
        Ok((repr, total))
    }

    fn parse_v1(bytes: &[u8]) -> Result<(Repr, usize), Error> {
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
        if fields[1] != "TCP4" {
            return Err(Error::Unsupported { family: 0 });
        }
        let ip = |i: usize| fields[i].parse::<Ipv4Addr>().map_err(|_| Error::BadV1Line { field: i });
        let port = |i: usize| {
            let f = fields[i];
            // The specification forbids leading zeros.
            if f.len() > 1 && f.starts_with('0') {
                return Err(Error::BadV1Line { field: i });
            }
            f.parse::<u16>().map_err(|_| Error::BadV1Line { field: i })
        };
        let repr = Repr {
            version: Version::V1,
            src: SocketAddrV4::new(ip(2)?, port(4)?),
            dst: SocketAddrV4::new(ip(3)?, port(5)?),
        };
        Ok((repr, end + 2))
    }
}

/// A cursor over the emit buffer (v1 lines fit: at most [`V1_TCP4_MAX_LEN`]).
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
        let n = decimal_len(v);
        let mut v = v;
        for i in (0..n).rev() {
            self.buf[self.at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.at += n;
    }
    fn ipv4(&mut self, a: Ipv4Addr) {
        for (i, o) in a.octets().into_iter().enumerate() {
            if i > 0 {
                self.bytes(b".");
            }
            self.decimal(u16::from(o));
        }
    }
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

fn ipv4_text_len(a: Ipv4Addr) -> usize {
    3 + a.octets().into_iter().map(|o| decimal_len(u16::from(o))).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(version: Version) -> Repr {
        Repr {
            version,
            src: SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 10), 40000),
            dst: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 80),
        }
    }

    static V2_BYTES: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x11, 0x00, 0x0c, // v2 PROXY, TCP4, 12 bytes follow
        192, 168, 1, 10, 10, 0, 0, 1, // addresses
        0x9c, 0x40, 0x00, 0x50, // 40000, 80
    ];

    #[test]
    fn v2_emit_and_parse() {
        let mut buf = [0; MAX_LEN];
        assert_eq!(repr(Version::V2).emit(&mut buf), 28);
        assert_eq!(&buf[..28], &V2_BYTES);
        assert_eq!(repr(Version::V2).len(), 28);
        assert_eq!(Repr::parse(&V2_BYTES), Ok((repr(Version::V2), 28)));
        // TLVs after the block are skipped as part of the header.
        let mut tlv = V2_BYTES.to_vec();
        tlv[15] = 12 + 4;
        tlv.extend_from_slice(&[0x05, 0x00, 0x01, 0x42, b'G', b'E', b'T']);
        assert_eq!(Repr::parse(&tlv), Ok((repr(Version::V2), 32)));
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
    fn v1_longest_and_shortest_lines() {
        let max = Repr {
            version: Version::V1,
            src: SocketAddrV4::new(Ipv4Addr::BROADCAST, 65535),
            dst: SocketAddrV4::new(Ipv4Addr::new(255, 255, 255, 254), 65535),
        };
        let mut buf = [0; MAX_LEN];
        assert_eq!(max.emit(&mut buf), V1_TCP4_MAX_LEN);
        assert_eq!(&buf[..], b"PROXY TCP4 255.255.255.255 255.255.255.254 65535 65535\r\n");
        let min = Repr {
            version: Version::V1,
            src: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            dst: SocketAddrV4::new(Ipv4Addr::new(1, 2, 3, 4), 9),
        };
        let n = min.emit(&mut buf);
        assert_eq!(&buf[..n], b"PROXY TCP4 0.0.0.0 1.2.3.4 0 9\r\n");
        assert_eq!(min.len(), n);
        assert_eq!(Repr::parse(&buf[..n]), Ok((min, n)));
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(Repr::parse(b"GET / HTTP/1.1\r\n"), Err(Error::NoSignature));
        assert_eq!(Repr::parse(b"PROX"), Err(Error::Truncated { needed: 6, len: 4 }));
        assert_eq!(Repr::parse(&V2_BYTES[..5]), Err(Error::Truncated { needed: 12, len: 5 }));
        assert!(matches!(Repr::parse(&V2_BYTES[..20]), Err(Error::Truncated { needed: 28, len: 20 })));
        assert!(matches!(Repr::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2"), Err(Error::Truncated { .. })));
        assert_eq!(Repr::parse(b"PROXY TCP6 ::1 ::1 1 2\r\n"), Err(Error::Unsupported { family: 0 }));
        assert_eq!(Repr::parse(b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), Err(Error::BadV1Line { field: 2 }));
        assert_eq!(Repr::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), Err(Error::BadV1Line { field: 4 }));
        assert_eq!(Repr::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), Err(Error::BadV1Line { field: 5 }));
        assert_eq!(Repr::parse(&[b'P'; 120][..]), Err(Error::NoSignature));
        let mut long = b"PROXY ".to_vec();
        long.resize(120, b'x');
        assert_eq!(Repr::parse(&long), Err(Error::BadV1Line { field: 0 }));
        let mut bad = V2_BYTES;
        bad[12] = 0x20;
        assert_eq!(Repr::parse(&bad), Err(Error::BadV2Command(0x20)));
        bad[12] = 0x21;
        bad[13] = 0x21;
        assert_eq!(Repr::parse(&bad), Err(Error::Unsupported { family: 0x21 }));
        bad[13] = 0x11;
        bad[15] = 4;
        assert_eq!(Repr::parse(&bad), Err(Error::BadV2Length(4)));
    }
}
