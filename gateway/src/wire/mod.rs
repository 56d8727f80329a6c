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
//! `ArpRepr`, `Ipv4Repr`, `TcpRepr`, `UdpRepr`, `Icmpv4Repr`) that `parse`
//! reads from a view and `emit` writes into one. `build` (the `testing`
//! feature) composes the reprs into whole frames: the one packet builder of
//! the tests, benches, fuzz seeds and gwbench.
//!
//! [`classify()`] is the one pass the dataplane runs on every received frame:
//! it length-checks the layers it will touch and either returns their offsets
//! and the flow tuple or a [`DropReason`]. The rewrites in [`crate::xmit`]
//! then work on the offsets it returned.
//!
//! Only IPv4 is parsed for now. Addresses leave this module as
//! [`std::net::IpAddr`] inside [`FlowTuple`], and [`Classified`] is an enum
//! with one variant per network protocol, so IPv6 is an added variant and an
//! added file, not a redesign.

pub mod arp;
#[cfg(any(test, feature = "testing"))]
pub mod build;
pub mod checksum;
pub mod classify;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod tcp;
pub mod udp;

use std::fmt;

pub use classify::{classify, icmp_error_inner, Classified, ClassifyPolicy, DropReason, FlowTuple, Ipv4Meta};
pub use ethernet::MacAddr;

/// IP protocol numbers the gateway handles.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// The layer a view error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Tcp,
    Udp,
    Icmp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "802.1Q",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Icmp => "icmp",
        })
    }
}

/// Why bytes are not a valid header of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the fixed part of the header.
    Truncated { layer: Layer, needed: usize, len: usize },
    /// The IP version nibble is not the one the view parses.
    BadIpVersion(u8),
    /// IHL below 5, or a header longer than the bytes present.
    BadIhl { ihl: u8, len: usize },
    /// Total length shorter than the header or longer than the bytes present.
    BadTotalLength { total_len: u16, header_len: usize, len: usize },
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
            Error::BadIpVersion(v) => write!(f, "ip version {v} where 4 was expected"),
            Error::BadIhl { ihl, len } => {
                write!(f, "bad ipv4 IHL {ihl} ({} bytes) for a {len}-byte packet", usize::from(ihl) * 4)
            }
            Error::BadTotalLength { total_len, header_len, len } => {
                write!(f, "bad ipv4 total length {total_len}: header is {header_len} bytes, {len} bytes present")
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
    }
}
