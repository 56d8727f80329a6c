//! The prober's packets on the link: the TUN mode's outer header around a
//! probe, and what an arriving packet is to the prober (a segment to a probe
//! port, or an ICMP error quoting a probe), read with the [`crate::wire`]
//! views. Nothing here trusts a length it has not checked: an arriving packet
//! is whatever a worker handed over.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::net::probe::is_probe_port;
use crate::wire::icmp::{self, Icmpv4Packet};
use crate::wire::ip_proto;
use crate::wire::ipv4::{self, Ipv4Packet, Ipv4Repr};

/// The TTL of the TUN mode's outer header, as the tunnel's transmit uses.
pub const OUTER_TTL: u8 = 64;

/// The bytes the TUN mode adds in front of a probe.
pub const OUTER_LEN: usize = ipv4::MIN_HEADER_LEN;

/// Why a packet the stack emitted could not be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Not an IPv4 packet whose header fits its length.
    NotIpv4 { len: usize },
    /// The packet with its outer header would exceed IPv4's 65535 bytes.
    TooLong { len: usize },
}

impl std::fmt::Display for FramingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FramingError::NotIpv4 { len } => write!(f, "a packet of {len} bytes is not a whole IPv4 packet"),
            FramingError::TooLong { len } => {
                write!(f, "a packet of {len} bytes cannot be tunnelled (over 65535 bytes with the outer header)")
            }
        }
    }
}

/// Writes `inner` (an IPv4 packet) into `out` (cleared first) behind an
/// IPv4-in-IPv4 header from `src` to `server`, as [`crate::xmit::tun`]
/// encapsulates a client's packet: the inner TOS and DF bit copied (RFC 2003
/// §3.1), TTL [`OUTER_TTL`], identification `ident`.
pub fn encapsulate(
    src: Ipv4Addr,
    server: Ipv4Addr,
    ident: u16,
    inner: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FramingError> {
    let view = Ipv4Packet::new_checked(inner).map_err(|_| FramingError::NotIpv4 { len: inner.len() })?;
    if inner.len() + OUTER_LEN > usize::from(u16::MAX) {
        return Err(FramingError::TooLong { len: inner.len() });
    }
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: server,
        protocol: ip_proto::IPIP,
        payload_len: inner.len(),
        ttl: OUTER_TTL,
        ident,
        dont_frag: view.dont_frag(),
        dscp: view.dscp(),
        ecn: view.ecn(),
    };
    out.clear();
    out.resize(OUTER_LEN, 0);
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
    out.extend_from_slice(inner);
    Ok(())
}

/// The source port of an IPv4 packet carrying TCP or UDP (the stack's own
/// packets: which probe sent it).
pub fn source_port(packet: &[u8]) -> Option<u16> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    match ip.protocol() {
        ip_proto::TCP | ip_proto::UDP => ports(ip.payload()).map(|(src, _)| src),
        _ => None,
    }
}

/// The first two 16-bit fields of a TCP or UDP header: the ports.
fn ports(l4: &[u8]) -> Option<(u16, u16)> {
    let p = l4.first_chunk::<4>()?;
    Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
}

/// What an arriving packet is to the prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A TCP or UDP packet from `remote` to the probe port of `local`: for
    /// the stack, if a probe is there.
    Segment { protocol: u8, local: SocketAddrV4, remote: SocketAddrV4 },
    /// An ICMP destination unreachable (`code`) quoting the probe sent from
    /// `local` to `remote` (in TUN mode, the probe inside the quoted tunnel
    /// packet).
    Unreachable { protocol: u8, local: SocketAddrV4, remote: SocketAddrV4, code: u8 },
}

impl Arrival {
    /// The probe's own address and port.
    pub fn local(&self) -> SocketAddrV4 {
        match *self {
            Arrival::Segment { local, .. } | Arrival::Unreachable { local, .. } => local,
        }
    }

    /// The server's address and port, as the probe was sent to it.
    pub fn remote(&self) -> SocketAddrV4 {
        match *self {
            Arrival::Segment { remote, .. } | Arrival::Unreachable { remote, .. } => remote,
        }
    }
}

/// Reads an arriving packet; `None` for anything but a whole, unfragmented
/// TCP or UDP packet to a probe port or an ICMP destination unreachable
/// (with a valid checksum, not "fragmentation needed") quoting one.
pub fn arrival(packet: &[u8]) -> Option<Arrival> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    if ip.is_fragment() {
        return None;
    }
    match ip.protocol() {
        protocol @ (ip_proto::TCP | ip_proto::UDP) => {
            let (sport, dport) = ports(ip.payload())?;
            is_probe_port(dport).then(|| Arrival::Segment {
                protocol,
                local: SocketAddrV4::new(ip.dst_addr(), dport),
                remote: SocketAddrV4::new(ip.src_addr(), sport),
            })
        }
        ip_proto::ICMP => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
            if icmp.msg_type() != icmp::msg_type::DEST_UNREACHABLE
                || icmp.msg_code() == icmp::code::FRAG_NEEDED
                || !icmp.verify_checksum()
            {
                return None;
            }
            let (protocol, local, remote) = quoted(icmp.data(), true)?;
            (local.ip() == &ip.dst_addr() && is_probe_port(local.port())).then_some(Arrival::Unreachable {
                protocol,
                local,
                remote,
                code: icmp.msg_code(),
            })
        }
        _ => None,
    }
}

/// The TCP or UDP packet an ICMP error quotes: its header and at least the
/// ports (the quote is cut, so its total length is not checked). A quoted
/// tunnel packet (`tunnel`) is looked into once: the probe inside it.
fn quoted(quote: &[u8], tunnel: bool) -> Option<(u8, SocketAddrV4, SocketAddrV4)> {
    let fixed = quote.get(..ipv4::MIN_HEADER_LEN)?;
    let ip = Ipv4Packet::new_unchecked(fixed);
    if ip.version() != 4 || ip.header_len() < ipv4::MIN_HEADER_LEN {
        return None;
    }
    let payload = quote.get(ip.header_len()..)?;
    match ip.protocol() {
        protocol @ (ip_proto::TCP | ip_proto::UDP) => {
            let (sport, dport) = ports(payload)?;
            Some((protocol, SocketAddrV4::new(ip.src_addr(), sport), SocketAddrV4::new(ip.dst_addr(), dport)))
        }
        ip_proto::IPIP if tunnel => quoted(payload, false),
        _ => None,
    }
}

/// A probe's failure on an ICMP destination unreachable of `code`, worded as
/// the codes are named (RFC 792, RFC 1812).
pub fn unreachable_reason(code: u8) -> String {
    match code {
        0 => "ICMP network unreachable".into(),
        1 => "ICMP host unreachable".into(),
        2 => "ICMP protocol unreachable".into(),
        3 => super::super::probe::PORT_UNREACHABLE.into(),
        9 | 10 | 13 => "ICMP administratively prohibited".into(),
        code => format!("ICMP destination unreachable, code {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    /// 10.0.0.1:64512 -> 192.0.2.80:80, TCP SYN with DF and TOS 0x10.
    #[rustfmt::skip]
    const SYN: [u8; 40] = [
        0x45, 0x10, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00,
        0x40, 0x06, 0x00, 0x00, 10, 0, 0, 1, 192, 0, 2, 80,
        0xfc, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0,
        0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];

    #[test]
    fn the_outer_header_on_literal_bytes() {
        let mut out = vec![0xaa; 3];
        encapsulate(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 2, 11), 0x0102, &SYN, &mut out).unwrap();
        #[rustfmt::skip]
        let header = [
            0x45, 0x10, 0x00, 0x3c, // v4, ihl 5, the inner TOS, 20 + 40 bytes
            0x01, 0x02, 0x40, 0x00, // ident, DF copied
            64, 4, 0x00, 0x00,      // TTL 64, IPIP, checksum (below)
            10, 0, 0, 1, 10, 0, 2, 11,
        ];
        assert_eq!(out[..10], header[..10]);
        assert_eq!(out[12..20], header[12..20]);
        assert!(checksum::verify_ipv4_header(&out[..20]), "the outer checksum");
        assert_eq!(&out[20..], &SYN[..]);
        // Without DF inside, none outside.
        let mut no_df = SYN;
        no_df[6] = 0;
        encapsulate(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 2, 11), 0, &no_df, &mut out).unwrap();
        assert_eq!(out[6], 0);
        assert_eq!(
            encapsulate(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, 0, &SYN[..12], &mut out),
            Err(FramingError::NotIpv4 { len: 12 })
        );
    }

    #[test]
    fn a_reply_to_a_probe_port_is_a_segment() {
        // The server's SYN-ACK: 192.0.2.80:80 -> 10.0.0.1:64512.
        let mut reply = SYN;
        reply[12..16].copy_from_slice(&[192, 0, 2, 80]);
        reply[16..20].copy_from_slice(&[10, 0, 0, 1]);
        reply[20..24].copy_from_slice(&[0x00, 0x50, 0xfc, 0x00]);
        assert_eq!(
            arrival(&reply),
            Some(Arrival::Segment {
                protocol: ip_proto::TCP,
                local: "10.0.0.1:64512".parse().unwrap(),
                remote: "192.0.2.80:80".parse().unwrap(),
            })
        );
        assert_eq!(source_port(&SYN), Some(64512));
        // Not to a probe port.
        reply[22..24].copy_from_slice(&[0x9c, 0x40]);
        assert_eq!(arrival(&reply), None);
    }

    /// An ICMP port unreachable from 192.0.2.80 quoting `quote`.
    fn unreachable(code: u8, quote: &[u8]) -> Vec<u8> {
        let mut icmp = vec![3, code, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(quote);
        let c = checksum::checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut packet = vec![0u8; 20];
        Ipv4Repr::new(Ipv4Addr::new(192, 0, 2, 80), Ipv4Addr::new(10, 0, 0, 1), ip_proto::ICMP, icmp.len())
            .emit(&mut Ipv4Packet::new_unchecked(&mut packet[..]));
        packet.extend_from_slice(&icmp);
        packet
    }

    #[test]
    fn an_icmp_error_quoting_a_probe_names_it_even_inside_a_tunnel() {
        let expected = |code| Arrival::Unreachable {
            protocol: ip_proto::TCP,
            local: "10.0.0.1:64512".parse().unwrap(),
            remote: "192.0.2.80:80".parse().unwrap(),
            code,
        };
        // The header and the first 8 bytes, as RFC 792 quotes.
        assert_eq!(arrival(&unreachable(3, &SYN[..28])), Some(expected(3)));
        let mut tunnelled = Vec::new();
        encapsulate(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 2, 11), 0, &SYN, &mut tunnelled).unwrap();
        assert_eq!(arrival(&unreachable(2, &tunnelled[..48])), Some(expected(2)));
        // Cut before the ports, a bad checksum, or "fragmentation needed": nothing.
        assert_eq!(arrival(&unreachable(3, &SYN[..22])), None);
        assert_eq!(arrival(&unreachable(2, &tunnelled[..40])), None);
        let mut bad = unreachable(3, &SYN[..28]);
        bad[30] ^= 1;
        assert_eq!(arrival(&bad), None);
        assert_eq!(arrival(&unreachable(4, &SYN[..28])), None);
        assert_eq!(unreachable_reason(3), "ICMP port unreachable");
        assert_eq!(unreachable_reason(7), "ICMP destination unreachable, code 7");
    }

    #[test]
    fn garbage_is_nothing() {
        for len in 0..SYN.len() {
            assert_eq!(arrival(&SYN[..len]), None, "{len} bytes");
        }
        assert_eq!(arrival(&[0xff; 64]), None);
        assert_eq!(arrival(&unreachable(3, &[0x45; 3])), None);
        assert_eq!(arrival(&unreachable(3, &[0x4f; 28])), None);
    }
}
