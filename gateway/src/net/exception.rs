//! The kernel exception path as the workers see it: which of the gateway's
//! own packets go to the port's kernel interface, and with what precedence.
//!
//! A port may have a kernel interface (config `"kernel": "gwk0"`, a DPDK
//! `net_tap` carrying the port's MAC and addresses). What is addressed to the
//! gateway and that the datapath does not consume (not a service, not a
//! local-address connection, not the ARP and ICMP echo the workers answer)
//! leaves the worker through [`crate::worker::Io::to_kernel`] on one of two
//! rings toward the main lcore, by [`KernelClass`]: the protocols that keep
//! the director in its cluster (VRRP, BGP, ARP, IGMP) never wait behind bulk
//! traffic, so a flood at the gateway's address cannot cost it its VIPs or
//! its BGP sessions (DPVS users lose BGP sessions when a SYN flood fills the
//! KNI path).
//!
//! Here: the classes ([`KernelClass::of_ip`], [`non_ipv4`]), the re-reading
//! of the headers the classifier refused ([`other_ipv4`]), and the rates
//! ([`KernelRate`], [`KernelLimiter`]). Which packets a worker hands over is
//! the worker's decision: see `worker::pipeline::kernel`.

use std::net::Ipv4Addr;

use crate::net::icmp::RateLimiter;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};
use crate::wire::{ip_proto, MacAddr};

/// IP protocols of the control class besides BGP's TCP.
pub mod control_proto {
    pub const IGMP: u8 = 2;
    pub const OSPF: u8 = 89;
    pub const VRRP: u8 = 112;
}

/// BGP's TCP port: a segment from or to it is control traffic.
pub const BGP_PORT: u16 = 179;

/// The precedence of a packet toward the kernel interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelClass {
    /// Protocols that keep the director in its cluster: ARP, VRRP, IGMP,
    /// BGP, OSPF, IPv6 neighbour discovery. Their own ring and rate.
    Control,
    /// Everything else addressed to the gateway (ssh, ping replies to the
    /// kernel's own pings, a flood at the gateway's address).
    Bulk,
}

impl KernelClass {
    /// Both classes, in the order the main lcore drains them.
    pub const ALL: [KernelClass; 2] = [KernelClass::Control, KernelClass::Bulk];

    /// The index of this class in per-class arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// A stable name for counters and metrics.
    pub fn name(self) -> &'static str {
        match self {
            KernelClass::Control => "control",
            KernelClass::Bulk => "bulk",
        }
    }

    /// The class of an IPv4 or IPv6 packet of `protocol` (the protocol
    /// numbers are the same) between layer-4 ports
    /// `src_port` and `dst_port` (0 for protocols without ports).
    pub fn of_ip(protocol: u8, src_port: u16, dst_port: u16) -> KernelClass {
        match protocol {
            control_proto::IGMP | control_proto::OSPF | control_proto::VRRP => KernelClass::Control,
            ip_proto::TCP if src_port == BGP_PORT || dst_port == BGP_PORT => KernelClass::Control,
            _ => KernelClass::Bulk,
        }
    }
}

/// The EtherType and where the layer-3 header starts, past one optional
/// 802.1Q tag (the classifier's own reading).
fn layer3(frame: &[u8]) -> Option<(u16, usize)> {
    let outer = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if outer == ETHERTYPE_VLAN {
        return Some((u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]), 18));
    }
    Some((outer, 14))
}

/// The protocol and destination of an IPv4 frame the classifier refused as
/// an unknown protocol (its header was checked: version, lengths, checksum,
/// not a fragment).
/// `None` for a frame of another EtherType.
pub fn other_ipv4(frame: &[u8]) -> Option<(u8, Ipv4Addr)> {
    let (ethertype, l3) = layer3(frame)?;
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let h = frame.get(l3..l3 + 20)?;
    Some((h[9], Ipv4Addr::new(h[16], h[17], h[18], h[19])))
}

/// ICMPv6 types of neighbour discovery (RFC 4861): router solicitation and
/// advertisement, neighbour solicitation and advertisement, redirect.
const ND_TYPES: std::ops::RangeInclusive<u8> = 133..=137;
const IPV6_NEXT_HEADER_ICMPV6: u8 = 58;

/// The destination MAC and the class of a frame that is not IPv4 and that
/// the datapath does not consume (IPv6 to the kernel's own addresses or of a
/// protocol the datapath does not speak, LLDP, ...): IPv6 neighbour
/// discovery and IPv6 VRRP, OSPF and IGMP-like control protocols are
/// control, the rest bulk. `None` for a frame too short for its Ethernet
/// header.
pub fn non_ipv4(frame: &[u8]) -> Option<(MacAddr, KernelClass)> {
    let dst = MacAddr(frame.get(..6)?.try_into().ok()?);
    let (ethertype, l3) = layer3(frame)?;
    if ethertype != ETHERTYPE_IPV6 {
        return Some((dst, KernelClass::Bulk));
    }
    // Neighbour discovery carries no extension header (it is sent with hop
    // limit 255 and checked by it): ICMPv6 follows the fixed header; so do
    // VRRP's and OSPF's packets.
    let class = match frame.get(l3 + 6) {
        Some(&IPV6_NEXT_HEADER_ICMPV6) if frame.get(l3 + 40).is_some_and(|t| ND_TYPES.contains(t)) => {
            KernelClass::Control
        }
        Some(&next) => KernelClass::of_ip(next, 0, 0),
        None => KernelClass::Bulk,
    };
    Some((dst, class))
}

/// Packets per second, per port, that the workers together hand to the
/// kernel interface, by class (config `"kernel_rate"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRate {
    pub control: u32,
    pub bulk: u32,
}

impl KernelRate {
    /// The bounds of either rate. At least one packet a second; at most
    /// what one main lcore writing to a tap can take (a syscall a packet).
    pub const LIMITS: std::ops::RangeInclusive<u32> = 1..=1_000_000;

    /// The rate of `class`.
    pub fn of(&self, class: KernelClass) -> u32 {
        match class {
            KernelClass::Control => self.control,
            KernelClass::Bulk => self.bulk,
        }
    }
}

impl Default for KernelRate {
    /// Control 5000 pps: a VRRP advert a second per router, BGP keepalives and
    /// a full-table update burst, and the ARP of a busy /16 all fit with room
    /// to spare. Bulk 20000 pps: an interactive session, a package download
    /// or a tcpdump's view of a flood, while a flood at the gateway's
    /// address costs the main lcore a bounded share of a core.
    fn default() -> KernelRate {
        KernelRate { control: 5000, bulk: 20_000 }
    }
}

/// The most ports with a kernel interface a worker rate-limits: the
/// workers follow at most 64 ports' links (a `u64` of down ports); a port
/// beyond has no kernel path.
pub const MAX_KERNEL_PORTS: usize = 64;

/// One worker's token buckets toward the kernel interfaces: per port and per
/// class, so a bulk flood takes no control token. Each holds the worker's
/// share of [`KernelRate`] (rate / workers, rounded up) for a second: the
/// worker's clock counts seconds.
#[derive(Debug, Clone)]
pub struct KernelLimiter {
    buckets: [[RateLimiter; 2]; MAX_KERNEL_PORTS],
}

impl KernelLimiter {
    pub fn new(rate: KernelRate, workers: u16) -> KernelLimiter {
        let share = |class| {
            let per_worker = rate.of(class).div_ceil(u32::from(workers.max(1)));
            RateLimiter::new(per_worker, per_worker)
        };
        KernelLimiter { buckets: std::array::from_fn(|_| KernelClass::ALL.map(share)) }
    }

    /// Whether one more packet of `class` may go to `port`'s kernel interface
    /// at `now` (seconds); takes a token if so. A port beyond
    /// [`MAX_KERNEL_PORTS`] never may.
    pub fn allow(&mut self, port: u16, class: KernelClass, now: u32) -> bool {
        self.buckets.get_mut(usize::from(port)).is_some_and(|b| b[class.index()].allow(u64::from(now) * 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_protocols_and_bgp_either_way_are_control() {
        for (proto, sport, dport) in [(112, 0, 0), (2, 0, 0), (89, 0, 0), (6, 179, 40000), (6, 40000, 179)] {
            assert_eq!(KernelClass::of_ip(proto, sport, dport), KernelClass::Control, "{proto} {sport} {dport}");
        }
        for (proto, sport, dport) in [(6, 40000, 22), (17, 179, 179), (1, 0, 0), (47, 0, 0), (50, 0, 0)] {
            assert_eq!(KernelClass::of_ip(proto, sport, dport), KernelClass::Bulk, "{proto} {sport} {dport}");
        }
    }

    /// VRRP advert from 10.0.0.2 to 224.0.0.18, untagged then in VLAN 5.
    const VRRP: [u8; 34] = [
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x01, 0x08, 0x00, // ethernet
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0x00, 0x00, 10, 0, 0, 2, 224, 0, 0, 18,
    ];

    #[test]
    fn the_protocol_and_destination_are_read_past_a_vlan_tag() {
        assert_eq!(other_ipv4(&VRRP), Some((112, Ipv4Addr::new(224, 0, 0, 18))));
        let mut tagged = VRRP[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&VRRP[12..]);
        assert_eq!(other_ipv4(&tagged), Some((112, Ipv4Addr::new(224, 0, 0, 18))));
        assert_eq!(other_ipv4(&VRRP[..33]), None, "truncated");
    }

    /// An IPv6 neighbour solicitation to the solicited-node group (the
    /// ICMPv6 header's first bytes only).
    fn ipv6(next_header: u8, icmp_type: u8) -> Vec<u8> {
        let mut f = vec![0x33, 0x33, 0xff, 0x00, 0x00, 0x01, 0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd];
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, next_header, 255]);
        f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&[0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 1]);
        f.extend_from_slice(&[icmp_type, 0, 0, 0]);
        f
    }

    #[test]
    fn neighbour_discovery_is_control_other_ipv6_and_lldp_bulk() {
        let group = MacAddr([0x33, 0x33, 0xff, 0, 0, 1]);
        for t in 133..=137 {
            assert_eq!(non_ipv4(&ipv6(58, t)), Some((group, KernelClass::Control)), "type {t}");
        }
        assert_eq!(non_ipv4(&ipv6(58, 128)), Some((group, KernelClass::Bulk)), "echo request");
        assert_eq!(non_ipv4(&ipv6(0, 135)), Some((group, KernelClass::Bulk)), "behind a hop-by-hop header");
        assert_eq!(non_ipv4(&ipv6(58, 135)[..54]), Some((group, KernelClass::Bulk)), "no ICMPv6 header");
        let lldp = [0x01, 0x80, 0xc2, 0, 0, 0x0e, 0x52, 0x54, 0, 0, 0, 1, 0x88, 0xcc, 0x02, 0x07];
        assert_eq!(non_ipv4(&lldp), Some((MacAddr([0x01, 0x80, 0xc2, 0, 0, 0x0e]), KernelClass::Bulk)));
        assert_eq!(non_ipv4(&lldp[..13]), None);
    }

    #[test]
    fn each_worker_has_its_share_per_port_and_class() {
        let rate = KernelRate { control: 5, bulk: 3 };
        let mut l = KernelLimiter::new(rate, 2);
        let passed = |l: &mut KernelLimiter, port, class, now| (0..10).filter(|_| l.allow(port, class, now)).count();
        assert_eq!(passed(&mut l, 0, KernelClass::Bulk, 10), 2, "3 / 2 workers, rounded up");
        assert_eq!(passed(&mut l, 0, KernelClass::Control, 10), 3, "bulk took no control token");
        assert_eq!(passed(&mut l, 1, KernelClass::Bulk, 10), 2, "another port, its own bucket");
        assert_eq!(passed(&mut l, 0, KernelClass::Bulk, 10), 0, "until the next second");
        assert_eq!(passed(&mut l, 0, KernelClass::Bulk, 11), 2);
        assert_eq!(passed(&mut l, 64, KernelClass::Control, 10), 0, "beyond MAX_KERNEL_PORTS");
    }
}
