//! Neighbour discovery (RFC 4861) for the gateway's own IPv6 addresses: the
//! counterpart of [`super::arp`]. A solicitation for one of our addresses is
//! turned into the advertisement in place; solicitations for next hops and
//! unsolicited advertisements are written into new frames; what a
//! solicitation or an advertisement says about its sender is handed back
//! for the neighbour table (`NeighbourTable<Ipv6Addr>`).
//!
//! Every message is checked as RFC 4861 §7.1 asks before anything is read
//! from it or learned: hop limit 255 (so it comes from the link, not from
//! beyond a router), code 0, a right checksum, a whole fixed part and
//! options, a unicast target, and the rules of duplicate address detection
//! (from `::`, to the target's solicited-node group, no source link-layer
//! option). A message failing one is dropped with an [`NdiscDrop`] to count.
//!
//! Every message written here carries hop limit [`ND_HOP_LIMIT`].

use std::fmt;
use std::net::Ipv6Addr;

use super::neigh::NeighbourTable;
use crate::frame::{Frame, FrameError};
use crate::wire::ethernet::{EthernetFrame, EthernetRepr, ETHERTYPE_IPV6};
use crate::wire::icmpv6::{msg_type, na_flags, Icmpv6Packet, NdiscRepr};
use crate::wire::ipv6::{self, multicast_mac, solicited_node, Ipv6Packet, Ipv6Repr, ALL_NODES};
use crate::wire::{ip_proto, Error, Ipv6Meta, MacAddr};

/// The hop limit of every neighbour discovery message, sent or accepted.
pub const ND_HOP_LIMIT: u8 = 255;

/// The flags of our advertisements: the gateway forwards (its NAT-mode real
/// servers route through it), so it says it is a router as Linux does with
/// forwarding on; and it owns the addresses it answers for, so its answer
/// overrides what a neighbour had cached.
const OUR_FLAGS: u8 = na_flags::ROUTER | na_flags::OVERRIDE;

/// Why a neighbour discovery message was dropped. One counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscDrop {
    /// Not a neighbour solicitation or advertisement (router discovery and
    /// redirects are not handled here).
    NotNeighbour = 0,
    /// IPv6 hop limit other than 255: the message crossed a router.
    BadHopLimit,
    /// ICMPv6 code other than 0.
    BadCode,
    BadChecksum,
    /// The message is shorter than its fixed part.
    Truncated,
    /// An option of length zero, running past the message, or of a length
    /// wrong for its type.
    BadOption,
    /// The target is a multicast address.
    MulticastTarget,
    /// Duplicate address detection (a solicitation from `::`) not sent to
    /// the target's solicited-node group, or carrying a source link-layer
    /// address.
    BadDad,
    /// A solicited advertisement sent to a multicast address.
    SolicitedToMulticast,
    /// The frame cannot hold the advertisement written in its place.
    NoRoom,
}

impl NdiscDrop {
    /// Number of reasons: the length of a per-reason counter array.
    pub const COUNT: usize = 10;

    /// Every reason, in index order.
    pub const ALL: [NdiscDrop; Self::COUNT] = [
        NdiscDrop::NotNeighbour,
        NdiscDrop::BadHopLimit,
        NdiscDrop::BadCode,
        NdiscDrop::BadChecksum,
        NdiscDrop::Truncated,
        NdiscDrop::BadOption,
        NdiscDrop::MulticastTarget,
        NdiscDrop::BadDad,
        NdiscDrop::SolicitedToMulticast,
        NdiscDrop::NoRoom,
    ];

    /// Index into a per-reason counter array.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name, for counters and exporters.
    pub const fn name(self) -> &'static str {
        match self {
            NdiscDrop::NotNeighbour => "nd_not_neighbour",
            NdiscDrop::BadHopLimit => "nd_bad_hop_limit",
            NdiscDrop::BadCode => "nd_bad_code",
            NdiscDrop::BadChecksum => "nd_bad_checksum",
            NdiscDrop::Truncated => "nd_truncated",
            NdiscDrop::BadOption => "nd_bad_option",
            NdiscDrop::MulticastTarget => "nd_multicast_target",
            NdiscDrop::BadDad => "nd_bad_dad",
            NdiscDrop::SolicitedToMulticast => "nd_solicited_to_multicast",
            NdiscDrop::NoRoom => "nd_no_room",
        }
    }
}

impl fmt::Display for NdiscDrop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do with a neighbour discovery message after [`handle_ndisc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscVerdict {
    /// The frame now holds the advertisement: send it out of the port it
    /// came in on.
    Reply,
    /// Nothing to send; free the frame.
    Consumed,
}

/// What a neighbour solicitation or advertisement said, for the neighbour
/// table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdiscSeen {
    pub verdict: NdiscVerdict,
    /// The address asked or told about.
    pub target: Ipv6Addr,
    /// The neighbour the message tells where it is: a solicitation's source
    /// with its source link-layer address option, an advertisement's target
    /// with its target link-layer address option. `None` without the
    /// option, for duplicate address detection, when the address or the
    /// MAC is not a single host's, or when the address is one of ours.
    pub neighbour: Option<(Ipv6Addr, MacAddr)>,
    /// A solicitation for one of our addresses, or a solicited advertisement
    /// to one of them: its neighbour may be learned even if unknown
    /// (otherwise only a known entry is refreshed, as for ARP).
    pub for_us: bool,
    /// A solicited advertisement: its sender answered a solicitation
    /// (perhaps another worker's), so the other workers may wait for it.
    pub answer: bool,
    /// The neighbour's MAC may replace a different one cached: always for a
    /// solicitation's source option (RFC 4861 §7.2.3), only with the
    /// override flag for an advertisement (§7.2.5).
    pub overrides: bool,
}

impl NdiscSeen {
    /// The neighbour to record in `table` at `now`, by the rules of ARP and
    /// of RFC 4861 §7.2.5: a new entry only from a message for us, a known
    /// one refreshed by any message, and a cached MAC replaced only by a
    /// message that overrides. Which port may teach which address (the
    /// route's egress port) is still the caller's to check.
    pub fn learnable(&self, table: &NeighbourTable<Ipv6Addr>, now: u32) -> Option<(Ipv6Addr, MacAddr)> {
        let (ip, mac) = self.neighbour?;
        match table.lookup(ip, now) {
            None if !self.for_us => None,
            Some(n) if n.mac != mac && !self.overrides => None,
            _ => Some((ip, mac)),
        }
    }
}

fn parse_error(e: Error) -> NdiscDrop {
    match e {
        Error::Truncated { .. } => NdiscDrop::Truncated,
        Error::NotNdisc { .. } => NdiscDrop::BadCode,
        _ => NdiscDrop::BadOption,
    }
}

/// Checks a neighbour solicitation or advertisement classified as `meta`
/// and, when it solicits an address `is_ours` accepts, turns it into the
/// advertisement in place (VLAN tag kept, extension headers dropped): from
/// the target, with our MAC as the target link-layer address, solicited
/// and to the solicitation's source, or, answering duplicate address
/// detection, unsolicited to all nodes (RFC 4861 §7.2.4). The answer goes
/// to the source link-layer address, or without one the frame's source; a
/// multicast one gets no answer.
pub fn handle_ndisc<F: Frame>(
    frame: &mut F,
    meta: &Ipv6Meta,
    our_mac: MacAddr,
    is_ours: impl Fn(Ipv6Addr) -> bool,
) -> Result<NdiscSeen, NdiscDrop> {
    if meta.protocol != ip_proto::ICMPV6
        || !matches!(meta.icmp_type, msg_type::NEIGHBOR_SOLICIT | msg_type::NEIGHBOR_ADVERT)
    {
        return Err(NdiscDrop::NotNeighbour);
    }
    if meta.hop_limit != ND_HOP_LIMIT {
        return Err(NdiscDrop::BadHopLimit);
    }
    if meta.icmp_code != 0 {
        return Err(NdiscDrop::BadCode);
    }
    let (l4, end) = (meta.l4_offset(), meta.l4_offset() + usize::from(meta.l4_len));
    let Some(msg) = frame.data().get(l4..end) else { return Err(NdiscDrop::Truncated) };
    let packet = Icmpv6Packet::new_checked(msg).map_err(|_| NdiscDrop::Truncated)?;
    if !packet.verify_checksum(meta.src, meta.dst) {
        return Err(NdiscDrop::BadChecksum);
    }
    // A neighbour is a single host, and never one of our own addresses
    // (another host claiming one of them is not to be believed).
    let unicast = |ip: Ipv6Addr| !ip.is_unspecified() && !ip.is_multicast();
    let other_host = |ip: Ipv6Addr| unicast(ip) && !is_ours(ip);
    match NdiscRepr::parse(&packet).map_err(parse_error)? {
        NdiscRepr::NeighborSolicit { target_addr: target, lladdr } => {
            if target.is_multicast() {
                return Err(NdiscDrop::MulticastTarget);
            }
            let dad = meta.src.is_unspecified();
            if dad && (lladdr.is_some() || meta.dst != solicited_node(target)) {
                return Err(NdiscDrop::BadDad);
            }
            let for_us = is_ours(target);
            let neighbour = lladdr.filter(|m| !m.is_multicast() && other_host(meta.src)).map(|m| (meta.src, m));
            let frame_src = EthernetFrame::new_unchecked(frame.data()).src_addr();
            let (to, to_mac, flags) = if dad {
                (ALL_NODES, multicast_mac(ALL_NODES), OUR_FLAGS)
            } else {
                (meta.src, lladdr.unwrap_or(frame_src), OUR_FLAGS | na_flags::SOLICITED)
            };
            let reply = for_us && (dad || (unicast(meta.src) && !to_mac.is_multicast()));
            let verdict = if reply {
                let na = NdiscRepr::NeighborAdvert { flags, target_addr: target, lladdr: Some(our_mac) };
                advertise_in_place(frame, usize::from(meta.l2_len), our_mac, to_mac, target, to, &na)?;
                NdiscVerdict::Reply
            } else {
                NdiscVerdict::Consumed
            };
            Ok(NdiscSeen { verdict, target, neighbour, for_us, answer: false, overrides: true })
        }
        NdiscRepr::NeighborAdvert { flags, target_addr: target, lladdr } => {
            if target.is_multicast() {
                return Err(NdiscDrop::MulticastTarget);
            }
            let solicited = flags & na_flags::SOLICITED != 0;
            if solicited && meta.dst.is_multicast() {
                return Err(NdiscDrop::SolicitedToMulticast);
            }
            let neighbour = lladdr.filter(|m| !m.is_multicast() && other_host(target)).map(|m| (target, m));
            Ok(NdiscSeen {
                verdict: NdiscVerdict::Consumed,
                target,
                neighbour,
                for_us: solicited && is_ours(meta.dst),
                answer: solicited,
                overrides: flags & na_flags::OVERRIDE != 0,
            })
        }
        // The types were checked above; a router advertisement parses too.
        NdiscRepr::RouterAdvert { .. } => Err(NdiscDrop::NotNeighbour),
    }
}

/// Replaces everything after the Ethernet header (of `l2_len` bytes, its
/// VLAN tag kept) with `nd` from `src` to `dst`, and readdresses the frame
/// from `our_mac` to `dst_mac`.
fn advertise_in_place<F: Frame>(
    frame: &mut F,
    l2_len: usize,
    our_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: &NdiscRepr,
) -> Result<(), NdiscDrop> {
    let len = l2_len + ipv6::HEADER_LEN + nd.buffer_len();
    let have = frame.len();
    let resized = if have < len { frame.append(len - have) } else { frame.trim(have - len) };
    resized.map_err(|_| NdiscDrop::NoRoom)?;
    let data = frame.data_mut();
    let mut eth = EthernetFrame::new_unchecked(&mut data[..]);
    eth.set_dst_addr(dst_mac);
    eth.set_src_addr(our_mac);
    emit_nd(&mut data[l2_len..], src, dst, nd);
    Ok(())
}

/// Writes the IPv6 header (hop limit 255) and `nd` into `buf`, which holds
/// exactly both.
fn emit_nd(buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, nd: &NdiscRepr) {
    let ip = Ipv6Repr { hop_limit: ND_HOP_LIMIT, ..Ipv6Repr::new(src, dst, ip_proto::ICMPV6, nd.buffer_len()) };
    let (header, body) = buf.split_at_mut(ipv6::HEADER_LEN);
    ip.emit(&mut Ipv6Packet::new_unchecked(header));
    nd.emit(&mut Icmpv6Packet::new_unchecked(body), src, dst);
}

/// Appends an untagged Ethernet frame `our_mac` -> `dst_mac` carrying `nd`
/// from `src` to `dst`.
fn write_nd<F: Frame>(
    frame: &mut F,
    our_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: &NdiscRepr,
) -> Result<(), FrameError> {
    let eth = EthernetRepr { src_addr: our_mac, dst_addr: dst_mac, vlan: None, ethertype: ETHERTYPE_IPV6 };
    let start = frame.len();
    let l2 = eth.header_len();
    // At least 14 + 40 + 24 bytes: never under the Ethernet minimum.
    frame.append(l2 + ipv6::HEADER_LEN + nd.buffer_len())?;
    let data = &mut frame.data_mut()[start..];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut data[..]));
    emit_nd(&mut data[l2..], src, dst, nd);
    Ok(())
}

/// Writes into an empty frame a neighbour solicitation for `target` from
/// `our_ip` (an address of the port, its link-local one when no other fits)
/// to the target's solicited-node group and its multicast MAC, with our
/// source link-layer address: what resolves a next hop.
pub fn write_neighbor_solicit<F: Frame>(
    frame: &mut F,
    our_mac: MacAddr,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Result<(), FrameError> {
    let group = solicited_node(target);
    let ns = NdiscRepr::NeighborSolicit { target_addr: target, lladdr: Some(our_mac) };
    write_nd(frame, our_mac, multicast_mac(group), our_ip, group, &ns)
}

/// Writes into an empty frame an advertisement of our address `addr` (with
/// our MAC as its target link-layer address, the router and override flags
/// set) to `dst`: unicast to a neighbour (at `dst_mac`) with `solicited`,
/// or unsolicited to [`ALL_NODES`] (`dst_mac` then its multicast MAC, as
/// [`write_unsolicited_advert`] does) when an address moves to this
/// gateway.
pub fn write_neighbor_advert<F: Frame>(
    frame: &mut F,
    our_mac: MacAddr,
    addr: Ipv6Addr,
    dst: Ipv6Addr,
    dst_mac: MacAddr,
    solicited: bool,
) -> Result<(), FrameError> {
    let flags = if solicited { OUR_FLAGS | na_flags::SOLICITED } else { OUR_FLAGS };
    let na = NdiscRepr::NeighborAdvert { flags, target_addr: addr, lladdr: Some(our_mac) };
    write_nd(frame, our_mac, dst_mac, addr, dst, &na)
}

/// Writes into an empty frame the unsolicited advertisement of our address
/// `addr` to all nodes: the IPv6 gratuitous ARP.
pub fn write_unsolicited_advert<F: Frame>(frame: &mut F, our_mac: MacAddr, addr: Ipv6Addr) -> Result<(), FrameError> {
    write_neighbor_advert(frame, our_mac, addr, ALL_NODES, multicast_mac(ALL_NODES), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::net::neigh::{Learned, Origin};
    use crate::wire::build;
    use crate::wire::ethernet::VlanTag;
    use crate::wire::{classify_ipv6, ClassifyPolicy};

    const OUR_MAC: MacAddr = MacAddr([0x02, 0x47, 0x57, 0, 0, 1]);
    const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    const OURS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    /// The solicited-node group of [`OURS`].
    const OURS_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 1);

    // The checksums of these literals were computed outside this crate.

    /// The advertisement answering [`PEER`]'s solicitation for [`OURS`]:
    /// router, solicited, override; target link-layer address [`OUR_MAC`].
    #[rustfmt::skip]
    const NA: [u8; 86] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 0x86, 0xdd,
        0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // source: the target
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // to the solicitation's source
        136, 0, 0xb3, 0x2b, 0xe0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // target
        2, 1, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, // target link-layer address
    ];

    /// The answer to duplicate address detection of [`OURS`]: to all nodes,
    /// router and override but not solicited.
    #[rustfmt::skip]
    const DAD_NA: [u8; 86] = [
        0x33, 0x33, 0, 0, 0, 1, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 0x86, 0xdd,
        0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        136, 0, 0x21, 0xe3, 0xa0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        2, 1, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01,
    ];

    /// Our solicitation for [`PEER`] from [`OURS`]: to ff02::1:ff00:2 at
    /// 33:33:ff:00:00:02, source link-layer address [`OUR_MAC`].
    #[rustfmt::skip]
    const NS: [u8; 86] = [
        0x33, 0x33, 0xff, 0x00, 0x00, 0x02, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, 0x86, 0xdd,
        0x60, 0, 0, 0, 0x00, 0x20, 58, 255,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0x00, 0x00, 0x02, // solicited-node group
        135, 0, 0xc4, 0xdf, 0, 0, 0, 0,
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        1, 1, 0x02, 0x47, 0x57, 0x00, 0x00, 0x01, // source link-layer address
    ];

    fn meta(b: &[u8]) -> Ipv6Meta {
        classify_ipv6(&BufFrame::new(b), ClassifyPolicy::default()).unwrap()
    }

    fn handle(b: &[u8], is_ours: impl Fn(Ipv6Addr) -> bool) -> (Result<NdiscSeen, NdiscDrop>, BufFrame) {
        let mut f = BufFrame::new(b);
        let m = meta(b);
        (handle_ndisc(&mut f, &m, OUR_MAC, is_ours), f)
    }

    fn theirs_valid(frame: &[u8]) -> bool {
        let ip = Ipv6Packet::new_checked(&frame[14..]).unwrap();
        let icmp = etherparse::Icmpv6Slice::from_slice(ip.payload()).unwrap();
        icmp.is_checksum_valid(ip.src_addr().octets(), ip.dst_addr().octets())
    }

    /// [`PEER`] (at [`PEER_MAC`]) asks for [`OURS`], as Linux would.
    fn solicitation() -> Vec<u8> {
        build::neighbor_solicit(PEER_MAC, PEER, OURS)
    }

    #[test]
    fn a_solicitation_for_us_becomes_the_advertisement() {
        let (seen, f) = handle(&solicitation(), |ip| ip == OURS);
        assert_eq!(
            seen,
            Ok(NdiscSeen {
                verdict: NdiscVerdict::Reply,
                target: OURS,
                neighbour: Some((PEER, PEER_MAC)),
                for_us: true,
                answer: false,
                overrides: true,
            })
        );
        assert_eq!(f.data(), &NA[..]);
        assert!(theirs_valid(f.data()));
    }

    #[test]
    fn a_solicitation_without_its_option_is_answered_to_the_frame_source() {
        // 24 bytes of message: the advertisement needs 8 more.
        let ns = NdiscRepr::NeighborSolicit { target_addr: OURS, lladdr: None };
        let b = build::ipv6(PEER, OURS).macs(PEER_MAC, OUR_MAC).hop_limit(255).ndisc(&ns);
        let (seen, f) = handle(&b, |ip| ip == OURS);
        let seen = seen.unwrap();
        assert_eq!((seen.verdict, seen.neighbour), (NdiscVerdict::Reply, None), "nothing to learn");
        assert_eq!(f.data(), &NA[..]);
    }

    #[test]
    fn a_frame_without_tailroom_for_the_answer_is_dropped() {
        let ns = NdiscRepr::NeighborSolicit { target_addr: OURS, lladdr: None };
        let b = build::ipv6(PEER, OURS).hop_limit(255).ndisc(&ns);
        let mut f = BufFrame::with_geometry(&b, 128, b.len());
        assert_eq!(handle_ndisc(&mut f, &meta(&b), OUR_MAC, |_| true), Err(NdiscDrop::NoRoom));
    }

    #[test]
    fn a_tagged_solicitation_keeps_its_tag() {
        let tag = VlanTag { pcp: 0, dei: false, vid: 42 };
        let ns = NdiscRepr::NeighborSolicit { target_addr: OURS, lladdr: Some(PEER_MAC) };
        let b =
            build::ipv6(PEER, OURS_GROUP).macs(PEER_MAC, multicast_mac(OURS_GROUP)).vlan(tag).hop_limit(255).ndisc(&ns);
        let (seen, f) = handle(&b, |ip| ip == OURS);
        assert_eq!(seen.unwrap().verdict, NdiscVerdict::Reply);
        assert_eq!(&f.data()[12..18], &[0x81, 0x00, 0x00, 42, 0x86, 0xdd]);
        assert_eq!(&f.data()[..12], &NA[..12]);
        assert_eq!(&f.data()[18..], &NA[14..]);
    }

    #[test]
    fn a_solicitation_for_another_address_is_only_seen() {
        let b = solicitation();
        let (seen, f) = handle(&b, |ip| ip == Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9));
        let seen = seen.unwrap();
        assert_eq!(
            (seen.verdict, seen.for_us, seen.neighbour),
            (NdiscVerdict::Consumed, false, Some((PEER, PEER_MAC)))
        );
        assert_eq!(f.data(), &b[..], "untouched");
    }

    #[test]
    fn duplicate_address_detection_is_answered_to_all_nodes() {
        let ns = NdiscRepr::NeighborSolicit { target_addr: OURS, lladdr: None };
        let b = build::ipv6(Ipv6Addr::UNSPECIFIED, OURS_GROUP)
            .macs(PEER_MAC, multicast_mac(OURS_GROUP))
            .hop_limit(255)
            .ndisc(&ns);
        let (seen, f) = handle(&b, |ip| ip == OURS);
        let seen = seen.unwrap();
        assert_eq!((seen.verdict, seen.neighbour), (NdiscVerdict::Reply, None), "`::` is nobody to learn");
        assert_eq!(f.data(), &DAD_NA[..]);
        assert!(theirs_valid(f.data()));
        // Detection must go to the solicited-node group, without an option.
        let wrong_group = build::ipv6(Ipv6Addr::UNSPECIFIED, OURS).hop_limit(255).ndisc(&ns);
        assert_eq!(handle(&wrong_group, |_| true).0, Err(NdiscDrop::BadDad));
        let with_option = NdiscRepr::NeighborSolicit { target_addr: OURS, lladdr: Some(PEER_MAC) };
        let b = build::ipv6(Ipv6Addr::UNSPECIFIED, OURS_GROUP).hop_limit(255).ndisc(&with_option);
        assert_eq!(handle(&b, |_| true).0, Err(NdiscDrop::BadDad));
    }

    #[test]
    fn bad_messages_are_dropped_by_reason() {
        let good = solicitation();
        let l4 = 14 + 40;
        let mut routed = good.clone();
        routed[14 + 7] = 254;
        assert_eq!(handle(&routed, |_| true).0, Err(NdiscDrop::BadHopLimit));
        let mut bad_sum = good.clone();
        bad_sum[l4 + 2] ^= 1;
        assert_eq!(handle(&bad_sum, |_| true).0, Err(NdiscDrop::BadChecksum));
        let mut bad_code = good.clone();
        bad_code[l4 + 1] = 1;
        assert_eq!(handle(&bad_code, |_| true).0, Err(NdiscDrop::BadCode));
        // An option of length zero (the checksum made right again).
        let ns = NdiscRepr::NeighborSolicit { target_addr: OURS, lladdr: Some(PEER_MAC) };
        let mut body = [0u8; 32];
        ns.emit(&mut Icmpv6Packet::new_unchecked(&mut body[..]), PEER, OURS_GROUP);
        body[25] = 0;
        Icmpv6Packet::new_unchecked(&mut body[..]).fill_checksum(PEER, OURS_GROUP);
        let b = build::ipv6(PEER, OURS_GROUP).hop_limit(255).ip_payload(ip_proto::ICMPV6, &body);
        assert_eq!(handle(&b, |_| true).0, Err(NdiscDrop::BadOption));
        // Shorter than the fixed part.
        let b = build::ipv6(PEER, OURS_GROUP).hop_limit(255).ip_payload(ip_proto::ICMPV6, &{
            let mut short = [0u8; 16];
            short[0] = msg_type::NEIGHBOR_SOLICIT;
            Icmpv6Packet::new_unchecked(&mut short[..]).fill_checksum(PEER, OURS_GROUP);
            short
        });
        assert_eq!(handle(&b, |_| true).0, Err(NdiscDrop::Truncated));
        // A multicast target.
        let ns = NdiscRepr::NeighborSolicit { target_addr: OURS_GROUP, lladdr: Some(PEER_MAC) };
        let b = build::ipv6(PEER, OURS_GROUP).hop_limit(255).ndisc(&ns);
        assert_eq!(handle(&b, |_| true).0, Err(NdiscDrop::MulticastTarget));
        // A solicited advertisement to a multicast address.
        let na = NdiscRepr::NeighborAdvert { flags: na_flags::SOLICITED, target_addr: PEER, lladdr: Some(PEER_MAC) };
        let b = build::ipv6(PEER, ALL_NODES).hop_limit(255).ndisc(&na);
        assert_eq!(handle(&b, |_| true).0, Err(NdiscDrop::SolicitedToMulticast));
        // Not neighbour discovery at all.
        let echo = build::ipv6(PEER, OURS).icmpv6(&crate::wire::icmpv6::Icmpv6Repr {
            msg_type: msg_type::ECHO_REQUEST,
            msg_code: 0,
            rest_of_header: 0,
            data: b"",
        });
        assert_eq!(handle(&echo, |_| true).0, Err(NdiscDrop::NotNeighbour));
        assert_eq!(NdiscDrop::ALL.iter().enumerate().filter(|(i, d)| d.index() != *i).count(), 0);
        assert_eq!(NdiscDrop::BadHopLimit.to_string(), "nd_bad_hop_limit");
    }

    #[test]
    fn a_solicitation_from_a_multicast_mac_is_not_answered() {
        let b = build::neighbor_solicit(MacAddr([1, 0, 0x5e, 0, 0, 1]), PEER, OURS);
        let seen = handle(&b, |ip| ip == OURS).0.unwrap();
        assert_eq!((seen.verdict, seen.neighbour), (NdiscVerdict::Consumed, None));
    }

    #[test]
    fn writes_the_solicitation_for_a_next_hop_byte_for_byte() {
        let mut f = BufFrame::new(&[]);
        write_neighbor_solicit(&mut f, OUR_MAC, OURS, PEER).unwrap();
        assert_eq!(f.data(), &NS[..]);
        assert!(theirs_valid(f.data()));
        assert_eq!(f.data(), &build::neighbor_solicit(OUR_MAC, OURS, PEER)[..], "the builders agree");
    }

    #[test]
    fn writes_advertisements() {
        let mut f = BufFrame::new(&[]);
        write_neighbor_advert(&mut f, OUR_MAC, OURS, PEER, PEER_MAC, true).unwrap();
        assert_eq!(f.data(), &NA[..]);
        let mut f = BufFrame::new(&[]);
        write_unsolicited_advert(&mut f, OUR_MAC, OURS).unwrap();
        assert_eq!(f.data(), &DAD_NA[..]);
    }

    #[test]
    fn an_advertisement_answering_us_is_learned() {
        // PEER answers the solicitation of NS, as its advertisement.
        let na = NdiscRepr::NeighborAdvert {
            flags: na_flags::SOLICITED | na_flags::OVERRIDE,
            target_addr: PEER,
            lladdr: Some(PEER_MAC),
        };
        let b = build::ipv6(PEER, OURS).macs(PEER_MAC, OUR_MAC).hop_limit(255).ndisc(&na);
        let (seen, f) = handle(&b, |ip| ip == OURS);
        let seen = seen.unwrap();
        assert_eq!(
            seen,
            NdiscSeen {
                verdict: NdiscVerdict::Consumed,
                target: PEER,
                neighbour: Some((PEER, PEER_MAC)),
                for_us: true,
                answer: true,
                overrides: true,
            }
        );
        assert_eq!(f.data(), &b[..]);
        let mut table: NeighbourTable<Ipv6Addr> = NeighbourTable::new(16, 300);
        let (ip, mac) = seen.learnable(&table, 10).unwrap();
        assert_eq!(table.learn(ip, mac, 1, Origin::Needed, 10), Learned::New);
        assert_eq!(table.lookup(PEER, 11).map(|n| (n.mac, n.port)), Some((PEER_MAC, 1)));

        // An advertisement without the override flag refreshes the same MAC
        // but does not replace it with another.
        let moved = MacAddr([0x52, 0x54, 0, 0, 0, 9]);
        let weak = NdiscRepr::NeighborAdvert { flags: na_flags::SOLICITED, target_addr: PEER, lladdr: Some(moved) };
        let b = build::ipv6(PEER, OURS).hop_limit(255).ndisc(&weak);
        let seen = handle(&b, |ip| ip == OURS).0.unwrap();
        assert!(!seen.overrides);
        assert_eq!(seen.learnable(&table, 20), None);
        let same = NdiscRepr::NeighborAdvert { flags: 0, target_addr: PEER, lladdr: Some(PEER_MAC) };
        let b = build::ipv6(PEER, ALL_NODES).hop_limit(255).ndisc(&same);
        let seen = handle(&b, |ip| ip == OURS).0.unwrap();
        assert_eq!((seen.for_us, seen.answer), (false, false), "unsolicited, to all nodes");
        assert_eq!(seen.learnable(&table, 20), Some((PEER, PEER_MAC)), "a known entry is refreshed");
        // An unsolicited one about an unknown address teaches nothing.
        let stranger = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);
        let na = NdiscRepr::NeighborAdvert { flags: na_flags::OVERRIDE, target_addr: stranger, lladdr: Some(moved) };
        let b = build::ipv6(stranger, ALL_NODES).hop_limit(255).ndisc(&na);
        let seen = handle(&b, |ip| ip == OURS).0.unwrap();
        assert_eq!(seen.neighbour, Some((stranger, moved)));
        assert_eq!(seen.learnable(&table, 20), None);
    }

    #[test]
    fn a_solicitation_teaches_its_source() {
        let seen = handle(&solicitation(), |ip| ip == OURS).0.unwrap();
        let table: NeighbourTable<Ipv6Addr> = NeighbourTable::new(16, 300);
        assert_eq!(seen.learnable(&table, 0), Some((PEER, PEER_MAC)));
    }

    #[test]
    fn a_host_claiming_one_of_our_addresses_is_not_learned() {
        let claim = NdiscRepr::NeighborAdvert { flags: na_flags::OVERRIDE, target_addr: OURS, lladdr: Some(PEER_MAC) };
        let b = build::ipv6(PEER, ALL_NODES).hop_limit(255).ndisc(&claim);
        assert_eq!(handle(&b, |ip| ip == OURS).0.unwrap().neighbour, None);
        let b = build::neighbor_solicit(PEER_MAC, OURS, PEER);
        let seen = handle(&b, |ip| ip == OURS).0.unwrap();
        assert_eq!((seen.verdict, seen.neighbour), (NdiscVerdict::Consumed, None));
    }
}
