//! Typed views over packet bytes: one file per protocol, parse and emit, no
//! forwarding logic.
//!
//! The shape follows smoltcp's `wire` module: a view `Packet<T: AsRef<[u8]>>`
//! wraps a buffer, field offsets are consts in one `field` module per file,
//! `new_checked` verifies every length the getters rely on (so a getter on a
//! checked view cannot go out of bounds) and `new_unchecked` is for buffers
//! the caller has already sized, such as one being emitted. Getters and
//! setters read and write the bytes in place; nothing is copied or allocated.
//! Each layer also has a `Repr` (its header as values: `EthernetRepr`,
//! `ArpRepr`, `Ipv4Repr`, `Ipv6Repr`, `TcpRepr`, `UdpRepr`, `Icmpv4Repr`,
//! `Icmpv6Repr`, `NdiscRepr`) that `parse` reads from a view and `emit`
//! writes into one. `build` (the `testing`
//! feature) composes the reprs into whole frames: the one packet builder of
//! the tests, benches, fuzz seeds and gwbench.
//!
//! [`classify()`] is the one pass the dataplane runs on every received frame:
//! it length-checks the layers it will touch and either returns their offsets
//! and the flow tuple or a [`DropReason`]. The rewrites in [`crate::xmit`]
//! then work on the offsets it returned.
//!
//! IPv6 has its views (`ipv6`, with the bounded extension-header walk, and
//! `icmpv6`, with neighbour discovery), its pseudo-header checksums, its
//! frames in `build`, and its classification pass: [`classify()`] gives
//! [`Classified::Ipv6`] with an [`Ipv6Meta`] after IPv4's one-comparison
//! test, so IPv4's fast path is unchanged ([`classify_ipv6`] is the same
//! pass for a caller that wants IPv6 only). Addresses leave this module as
//! [`std::net::IpAddr`] inside [`FlowTuple`].

pub mod arp;
#[cfg(any(test, feature = "testing"))]
pub mod build;
pub mod checksum;
pub mod classify;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod proxy_protocol;
pub mod tcp;
pub mod udp;

use std::fmt;

pub use classify::{
    classify, classify_ipv6, classify_plain_ipv4, classify_untagged_ipv4, classify_untagged_ipv6, icmp_error_inner,
    icmpv6_error_inner, Classified, ClassifyPolicy, DropReason, FlowTuple, Ipv4Meta, Ipv6Meta,
};
pub use ethernet::{EthAddrs, MacAddr};

/// IP protocol numbers the gateway handles.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv6 in IPv6 or IPv4 (ip6ip6, ip6ip).
    pub const IPV6: u8 = 41;
    pub const ICMPV6: u8 = 58;
}

/// The layer a view error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "802.1Q",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
            Layer::Icmpv6 => "icmpv6",
        })
    }
}

/// Why bytes are not a valid header of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the fixed part of the header.
    Truncated { layer: Layer, needed: usize, len: usize },
    /// The IP version nibble is not the one the view parses.
    BadIpVersion { found: u8, expected: u8 },
    /// IHL below 5, or a header longer than the bytes present.
    BadIhl { ihl: u8, len: usize },
    /// Total length shorter than the header or longer than the bytes present.
    BadTotalLength { total_len: u16, header_len: usize, len: usize },
    /// An IPv6 payload length beyond the bytes present after the header.
    BadPayloadLength { payload_len: u16, len: usize },
    /// An IPv6 extension header (its next-header value, and its offset in
    /// the payload) that runs past the payload's `len` bytes.
    BadExtensionHeader { next_header: u8, offset: usize, len: usize },
    /// A hop-by-hop options header anywhere but first (RFC 8200 §4.3).
    MisplacedHopByHop { offset: usize },
    /// More IPv6 extension headers than the walk follows.
    TooManyExtensionHeaders { limit: usize },
    /// A neighbour discovery option of length zero or running past the
    /// message (`len` in units of 8 bytes, as on the wire).
    BadNdOption { kind: u8, len: u8 },
    /// An ICMPv6 message that is not the neighbour discovery message asked
    /// for, or one with a non-zero code (RFC 4861 §7.1).
    NotNdisc { msg_type: u8, msg_code: u8 },
    /// TCP data offset below 5 or beyond the bytes present.
    BadTcpDataOffset { data_offset: u8, len: usize },
    /// UDP length field below 8 or beyond the bytes present.
    BadUdpLength { udp_len: u16, len: usize },
    /// A TCP option whose length byte is impossible for its kind or runs past
    /// the option space.
    BadTcpOption { kind: u8, len: u8 },
    /// An ARP packet for another hardware or protocol type than Ethernet/IPv4.
    UnsupportedArp { hardware: u16, protocol: u16, hlen: u8, plen: u8 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { layer, needed, len } => {
                write!(f, "truncated {layer} header: needs {needed} bytes, {len} present")
            }
            Error::BadIpVersion { found, expected } => write!(f, "ip version {found} where {expected} was expected"),
            Error::BadIhl { ihl, len } => {
                write!(f, "bad ipv4 IHL {ihl} ({} bytes) for a {len}-byte packet", usize::from(ihl) * 4)
            }
            Error::BadTotalLength { total_len, header_len, len } => {
                write!(f, "bad ipv4 total length {total_len}: header is {header_len} bytes, {len} bytes present")
            }
            Error::BadPayloadLength { payload_len, len } => {
                write!(f, "bad ipv6 payload length {payload_len}: {len} bytes present after the header")
            }
            Error::BadExtensionHeader { next_header, offset, len } => write!(
                f,
                "ipv6 extension header {next_header} at payload offset {offset} runs past the {len}-byte payload"
            ),
            Error::MisplacedHopByHop { offset } => {
                write!(f, "ipv6 hop-by-hop options at payload offset {offset}: only first is allowed")
            }
            Error::TooManyExtensionHeaders { limit } => write!(f, "more than {limit} ipv6 extension headers"),
            Error::BadNdOption { kind, len } => {
                write!(f, "bad neighbour discovery option type {kind} with length {len} (x 8 bytes)")
            }
            Error::NotNdisc { msg_type, msg_code } => {
                write!(f, "icmpv6 type {msg_type} code {msg_code} is not the neighbour discovery message expected")
            }
            Error::BadTcpDataOffset { data_offset, len } => write!(
                f,
                "bad tcp data offset {data_offset} ({} bytes) for a {len}-byte segment",
                usize::from(data_offset) * 4
            ),
            Error::BadUdpLength { udp_len, len } => {
                write!(f, "bad udp length {udp_len} for a {len}-byte datagram")
            }
            Error::BadTcpOption { kind, len } => write!(f, "bad tcp option kind {kind} with length {len}"),
            Error::UnsupportedArp { hardware, protocol, hlen, plen } => {
                write!(f, "unsupported arp: hardware {hardware:#06x} protocol {protocol:#06x} lengths {hlen}/{plen}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Reads a big-endian u16 at a constant offset of a fixed-size header.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a big-endian u32 at a constant offset of a fixed-size header.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline(always)]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

#[inline(always)]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_and_which_value() {
        let e = Error::Truncated { layer: Layer::Tcp, needed: 20, len: 7 };
        assert_eq!(e.to_string(), "truncated tcp header: needs 20 bytes, 7 present");
        let e = Error::BadIhl { ihl: 3, len: 40 };
        assert_eq!(e.to_string(), "bad ipv4 IHL 3 (12 bytes) for a 40-byte packet");
        let e = Error::BadTcpOption { kind: 2, len: 5 };
        assert_eq!(e.to_string(), "bad tcp option kind 2 with length 5");
        let e = Error::BadIpVersion { found: 4, expected: 6 };
        assert_eq!(e.to_string(), "ip version 4 where 6 was expected");
        let e = Error::BadExtensionHeader { next_header: 60, offset: 8, len: 12 };
        assert_eq!(e.to_string(), "ipv6 extension header 60 at payload offset 8 runs past the 12-byte payload");
        let e = Error::TooManyExtensionHeaders { limit: 8 };
        assert_eq!(e.to_string(), "more than 8 ipv6 extension headers");
    }
}
