//! The health checker's probes as the dataplane carries them (see
//! [`crate::health::path`]): the ports they use and the frames the prober
//! hands to a worker.
//!
//! A probe is sent from one of the gateway's addresses (an FNAT local
//! address, or an interface address) and a port in [`PROBE_PORTS`]. The
//! local-address pools never hand those ports out
//! ([`crate::model::laddr::DEFAULT_PORTS`] ends below them) and Linux's
//! ephemeral range (32768 to 60999 by default) lies below them too, so on an
//! interface address shared with a kernel interface a reply to a probe port
//! is the prober's, not the kernel's. Workers hand such replies to the
//! prober instead of the kernel, and only where they would otherwise drop
//! them or give them to the kernel: never on the forwarding path.
//!
//! A probe reaches a worker as an IPv4 packet behind a 4-byte prefix, the
//! address to route it toward ([`ProbeFrame`]): its destination for FNAT,
//! NAT and TUN (the tunnel's outer destination), and the real server for DR,
//! whose packet is addressed to the VIP but must reach the server's MAC. The
//! worker routes it like one of its own packets (the route table, ARP, the
//! neighbour queue), so a probe takes the path the server's clients take.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

/// The source ports of probes, on every address of the gateway.
pub const PROBE_PORTS: RangeInclusive<u16> = 64512..=65535;

/// Whether `port` is a probe's (a reply to it is the prober's).
#[inline(always)]
pub fn is_probe_port(port: u16) -> bool {
    port >= *PROBE_PORTS.start()
}

/// A probe on its way from the prober to a worker: the route target, then the
/// IPv4 packet. Field offsets here and nowhere else.
#[derive(Debug, Clone, Copy)]
pub struct ProbeFrame<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use core::ops::Range;
    pub const TOWARD: Range<usize> = 0..4;
}

/// The length of the prefix before the IPv4 packet.
pub const PREFIX_LEN: usize = field::TOWARD.end;

/// A probe frame too short to hold its prefix and an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated(pub usize);

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a probe frame of {} bytes is shorter than its prefix and an IPv4 header", self.0)
    }
}

impl std::error::Error for Truncated {}

impl<T: AsRef<[u8]>> ProbeFrame<T> {
    /// A view of `buffer`, checked to hold the prefix and a minimal IPv4 header.
    pub fn new_checked(buffer: T) -> Result<ProbeFrame<T>, Truncated> {
        let len = buffer.as_ref().len();
        if len < PREFIX_LEN + 20 {
            return Err(Truncated(len));
        }
        Ok(ProbeFrame { buffer })
    }

    /// The address the packet is routed toward.
    pub fn toward(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::TOWARD];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The IPv4 packet.
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[PREFIX_LEN..]
    }
}

/// Writes a probe frame of `packet` routed toward `toward` into `out`
/// (cleared first).
pub fn emit(toward: Ipv4Addr, packet: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&toward.octets());
    out.extend_from_slice(packet);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_names_the_route_target_and_the_packet_follows() {
        let mut packet = [0u8; 20];
        packet[0] = 0x45;
        let mut out = vec![0xff; 3];
        emit(Ipv4Addr::new(10, 0, 2, 11), &packet, &mut out);
        assert_eq!(&out[..5], &[10, 0, 2, 11, 0x45]);
        let view = ProbeFrame::new_checked(&out[..]).unwrap();
        assert_eq!((view.toward(), view.packet()), (Ipv4Addr::new(10, 0, 2, 11), &packet[..]));
    }

    #[test]
    fn a_frame_without_a_whole_ipv4_header_is_refused() {
        assert_eq!(ProbeFrame::new_checked(&[10, 0, 2, 11, 0x45][..]).unwrap_err(), Truncated(5));
    }

    #[test]
    fn probe_ports_are_above_the_pools_and_the_kernels_ephemeral_range() {
        assert!(is_probe_port(64512) && is_probe_port(65535) && !is_probe_port(64511) && !is_probe_port(60999));
        assert!(*crate::model::laddr::DEFAULT_PORTS.end() < *PROBE_PORTS.start());
    }
}
