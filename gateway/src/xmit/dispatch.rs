//! What each forwarding mode does to a connection's packets, in each
//! direction: the one place the (mode, direction) choice is made, shared by
//! the packets of a connection and the ICMP errors about them. (FNAT's lane
//! in the worker, `forward_fnat`, reads the FNAT rows' ends straight from
//! the connection's entry, for the instructions; the worker's tests hold it
//! to them in both directions.)
//!
//! | mode, direction | packet                                  | ICMP error about it              |
//! |-----------------|-----------------------------------------|----------------------------------|
//! | FNAT in         | `LIP:lport -> RIP:rport` (+ TOA)        | outer `LIP -> RIP`, quote swapped |
//! | FNAT out        | `VIP:vport -> CIP:cport`                | outer `VIP -> CIP`, quote swapped |
//! | NAT in          | destination `RIP:rport`                 | outer destination `RIP`           |
//! | NAT out         | source `VIP:vport`                      | outer source `VIP`                |
//! | DR in           | unchanged, to the real server on-link   | the same                          |
//! | TUN in          | IP-in-IP to the real server             | the same                          |
//! | DR, TUN out     | none: the real server answers directly  | none                              |
//!
//! An ICMP error quotes the packet its sender received, which went the other
//! way: its quote gets the reverse of the endpoints the outer header gets,
//! so the receiver recognises its own packet (IPVS `ip_vs_nat_icmp`).
//!
//! The types are generic over the address family, IPv4 by default: a
//! connection's endpoints are all of one family (NAT64 aside, which is not
//! here), and each family's [`Endpoints::translate`] is its own
//! monomorphic copy, so IPv6 costs the IPv4 path nothing. IPv6 packets
//! cross the gateway as they cross a router: hop limit decremented, never
//! fragmented (a packet too big for the egress link is refused for the
//! caller to answer with ICMPv6 packet too big), and TOA in DPVS's 20-byte
//! IPv6 form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::conn::Direction;
use crate::frame::Frame;
use crate::model::ForwardMethod;
use crate::wire::tcp::toa_bytes;
use crate::wire::{ip_proto, Ipv4Meta, Ipv6Meta};

use super::tcp_opts::{translate_inserting, translate_inserting_v6, ToaOutcome};
use super::{translate, translate_v6, IcmpErrorRewrite, Offload, Translation, XmitError};

/// An address (`Ipv4Addr` or `Ipv6Addr`) and port.
pub type Endpoint<A = Ipv4Addr> = (A, u16);

/// A connection's four endpoints, read once from its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends<A = Ipv4Addr> {
    pub client: Endpoint<A>,
    pub virtual_service: Endpoint<A>,
    /// FNAT: where packets to the real server come from. Other modes: the client.
    pub local: Endpoint<A>,
    pub real_server: Endpoint<A>,
}

impl<A: Copy> Ends<A> {
    /// Where a packet going `dir` is headed: the real server or the client.
    #[inline(always)]
    pub fn destination(&self, dir: Direction) -> A {
        match dir {
            Direction::In => self.real_server.0,
            Direction::Out => self.client.0,
        }
    }
}

/// The egress port's MTU and offloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Egress {
    pub mtu: u16,
    pub offload: Offload,
}

/// The sequence and timestamp shifts of a SYN-proxied connection, in the
/// translation's terms (see the module docs of [`super`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub seq: u32,
    pub ack: u32,
    pub tsval: u32,
    pub tsecr: u32,
}

impl Shift {
    pub const NONE: Shift = Shift { seq: 0, ack: 0, tsval: 0, tsecr: 0 };

    /// The client saw our numbering: the server's shifts into it on the way
    /// out and back on the way in ([`crate::synproxy::ProxyDeltas`]).
    #[inline(always)]
    pub fn proxied(seq: u32, ts: u32, dir: Direction) -> Shift {
        match dir {
            Direction::Out => Shift { seq, tsval: ts, ..Shift::NONE },
            Direction::In => Shift { ack: seq, tsecr: ts, ..Shift::NONE },
        }
    }
}

/// What happens to a packet of a connection, by mode and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite<A = Ipv4Addr> {
    /// FNAT or NAT: endpoints are replaced.
    Translate(Endpoints<A>),
    /// DR inbound: the IP packet goes unchanged to the real server, which
    /// holds the VIP itself and so must be on-link.
    OnLink,
    /// TUN inbound: the packet goes in an IP-in-IP header to the real server
    /// (the caller's to build, for the family).
    Encapsulate,
    /// DR and TUN outbound: the real server answers the client directly, so
    /// no packet of the connection comes this way (the table indexes no
    /// reply key for them).
    Bypassed,
}

impl<A: Copy> Rewrite<A> {
    /// The rewrite of connection `e`'s packets going `dir` in mode `method`.
    #[inline(always)]
    pub fn of(method: ForwardMethod, dir: Direction, e: &Ends<A>) -> Rewrite<A> {
        let (src, dst, toa) = match (method, dir) {
            (ForwardMethod::FullNat, Direction::In) => (Some(e.local), Some(e.real_server), Some(e.client)),
            (ForwardMethod::FullNat, Direction::Out) => (Some(e.virtual_service), Some(e.client), None),
            (ForwardMethod::Masq, Direction::In) => (None, Some(e.real_server), None),
            (ForwardMethod::Masq, Direction::Out) => (Some(e.virtual_service), None, None),
            (ForwardMethod::DirectRoute, Direction::In) => return Rewrite::OnLink,
            (ForwardMethod::Tunnel, Direction::In) => return Rewrite::Encapsulate,
            (ForwardMethod::DirectRoute | ForwardMethod::Tunnel, Direction::Out) => return Rewrite::Bypassed,
        };
        Rewrite::Translate(Endpoints { src, dst, toa })
    }
}

/// The endpoints a translation writes (`None` keeps the packet's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints<A = Ipv4Addr> {
    pub src: Option<Endpoint<A>>,
    pub dst: Option<Endpoint<A>>,
    /// FNAT inbound: the client, which a TCP packet may carry to the real
    /// server in a TOA option.
    pub toa: Option<Endpoint<A>>,
}

impl<A: Copy + Into<IpAddr>> Endpoints<A> {
    /// The rewrite of an ICMP error about a packet of the connection, relayed
    /// the same way: the outer header as a packet going this way, the quote
    /// (a packet that went the other way) with the reverse endpoints.
    pub fn icmp_error(&self) -> IcmpErrorRewrite {
        let addr = |e: Option<Endpoint<A>>| e.map(|(a, _)| a.into());
        let endpoint = |e: Option<Endpoint<A>>| e.map(|(a, p)| (a.into(), p));
        IcmpErrorRewrite {
            outer_src: addr(self.src),
            outer_dst: addr(self.dst),
            inner_src: endpoint(self.dst),
            inner_dst: endpoint(self.src),
            inner_seq_delta: 0,
            decrement_ttl: true,
        }
    }
}

impl Endpoints<Ipv4Addr> {
    /// Translates a classified TCP or UDP packet in place, as a router hop
    /// (TTL decremented), shifting its sequence space by `shift` and, when
    /// `with_toa` and the mode has one, inserting the client's address as a
    /// TOA; the outcome says whether it went in. On error the frame is
    /// unchanged, but for a truncation found after a TOA made room, which a
    /// classified frame never meets and which its caller only drops. `meta`
    /// keeps the tuple as received; its lengths follow the frame.
    ///
    /// Always inlined, with one copy per shape of endpoints: the per-packet
    /// work of a connection pays for none of the other modes' tests.
    #[inline(always)]
    pub fn translate<F: Frame>(
        &self,
        frame: &mut F,
        meta: &mut Ipv4Meta,
        shift: Shift,
        with_toa: bool,
        at: Egress,
    ) -> Result<ToaOutcome, XmitError> {
        let build = |src: Option<Endpoint>, dst: Option<Endpoint>| Translation {
            src: src.map(|(a, p)| (a.octets(), p)),
            dst: dst.map(|(a, p)| (a.octets(), p)),
            seq_delta: shift.seq,
            ack_delta: shift.ack,
            tsval_delta: shift.tsval,
            tsecr_delta: shift.tsecr,
            mss_clamp: None,
            decrement_ttl: true,
        };
        // One arm per shape, so each is compiled with its endpoints known.
        match (self.src, self.dst, self.toa) {
            (Some(s), Some(d), Some((client, port))) if with_toa && meta.protocol == ip_proto::TCP => {
                let toa = || toa_bytes(port, client);
                return translate_inserting(frame, meta, at.mtu, at.offload, || Ok(build(Some(s), Some(d))), toa);
            }
            (Some(s), Some(d), Some(_)) => {
                translate(frame, meta, at.offload, || Ok(build(Some(s), Some(d))))?;
                return Ok(if with_toa { ToaOutcome::NotApplicable } else { ToaOutcome::NotRequested });
            }
            (Some(s), Some(d), None) => translate(frame, meta, at.offload, || Ok(build(Some(s), Some(d))))?,
            (None, Some(d), _) => translate(frame, meta, at.offload, || Ok(build(None, Some(d))))?,
            (Some(s), None, _) => translate(frame, meta, at.offload, || Ok(build(Some(s), None)))?,
            (None, None, _) => translate(frame, meta, at.offload, || Ok(build(None, None)))?,
        }
        Ok(ToaOutcome::NotRequested)
    }
}

impl Endpoints<Ipv6Addr> {
    /// [`Endpoints::translate`] for an IPv6 packet, under the same
    /// contract: the hop limit decremented as a router's (refused at 1 with
    /// [`XmitError::TtlExpired`]), addresses and ports replaced with the
    /// TCP/UDP checksum updated incrementally or offloaded (there is no
    /// header checksum), `shift` applied, and when `with_toa` and the mode
    /// has one, the client's address inserted as DPVS's 20-byte IPv6 TOA.
    /// A packet longer than `at.mtu` is refused with
    /// [`XmitError::MtuExceeded`], for the caller to answer with packet too
    /// big; a TOA that would make it so is left out
    /// ([`ToaOutcome::ExceedsMtu`]). On error the frame is unchanged, with
    /// the same exception.
    #[inline(always)]
    pub fn translate<F: Frame>(
        &self,
        frame: &mut F,
        meta: &mut Ipv6Meta,
        shift: Shift,
        with_toa: bool,
        at: Egress,
    ) -> Result<ToaOutcome, XmitError> {
        let build = |src: Option<Endpoint<Ipv6Addr>>, dst: Option<Endpoint<Ipv6Addr>>| Translation {
            src: src.map(|(a, p)| (a.octets(), p)),
            dst: dst.map(|(a, p)| (a.octets(), p)),
            seq_delta: shift.seq,
            ack_delta: shift.ack,
            tsval_delta: shift.tsval,
            tsecr_delta: shift.tsecr,
            mss_clamp: None,
            decrement_ttl: true,
        };
        let (mtu, offload) = (at.mtu, at.offload);
        match (self.src, self.dst, self.toa) {
            (Some(s), Some(d), Some((client, port))) if with_toa && meta.protocol == ip_proto::TCP => {
                let toa = (port, client.octets());
                return translate_inserting_v6(frame, meta, mtu, offload, || build(Some(s), Some(d)), toa);
            }
            (Some(s), Some(d), Some(_)) => {
                translate_v6(frame, meta, mtu, offload, || build(Some(s), Some(d)))?;
                return Ok(if with_toa { ToaOutcome::NotApplicable } else { ToaOutcome::NotRequested });
            }
            (Some(s), Some(d), None) => translate_v6(frame, meta, mtu, offload, || build(Some(s), Some(d)))?,
            (None, Some(d), _) => translate_v6(frame, meta, mtu, offload, || build(None, Some(d)))?,
            (Some(s), None, _) => translate_v6(frame, meta, mtu, offload, || build(Some(s), None))?,
            (None, None, _) => translate_v6(frame, meta, mtu, offload, || build(None, None))?,
        }
        Ok(ToaOutcome::NotRequested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::*;
    use crate::xmit::{fnat, nat, FnatRewrite, NatRewrite, Toa};
    use proptest::prelude::*;

    const ENDS: Ends =
        Ends { client: (CLIENT, 40000), virtual_service: (VIP, 80), local: (LIP, 5001), real_server: (RIP, 8080) };
    const AT: Egress = Egress { mtu: 1500, offload: Offload::NONE };

    fn endpoints(method: ForwardMethod, dir: Direction) -> Endpoints {
        match Rewrite::of(method, dir, &ENDS) {
            Rewrite::Translate(e) => e,
            other => panic!("{method:?} {dir:?}: {other:?}"),
        }
    }

    #[test]
    fn dr_and_tun_are_routed_inbound_and_bypass_the_gateway_outbound() {
        assert_eq!(Rewrite::of(ForwardMethod::DirectRoute, Direction::In, &ENDS), Rewrite::OnLink);
        assert_eq!(Rewrite::of(ForwardMethod::Tunnel, Direction::In, &ENDS), Rewrite::Encapsulate);
        for method in [ForwardMethod::DirectRoute, ForwardMethod::Tunnel] {
            assert_eq!(Rewrite::of(method, Direction::Out, &ENDS), Rewrite::Bypassed);
        }
        assert_eq!(ENDS.destination(Direction::In), RIP);
        assert_eq!(ENDS.destination(Direction::Out), CLIENT);
    }

    /// Each mode's translation writes the bytes its own rewrite writes.
    #[test]
    fn translations_match_the_modes_own_rewrites() {
        let inbound = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 2000, flags::SYN, &[2, 4, 5, 0xb4], b"");
        let outbound = tcp_frame((RIP, 8080), (LIP, 5001), 9000, 1001, flags::ACK, &[], b"ok");
        let nat_outbound = tcp_frame((RIP, 8080), (CLIENT, 40000), 9000, 1001, flags::ACK, &[], b"ok");
        let run = |before: &[u8], method, dir, toa| {
            let (mut meta, mut f) = (meta_of(before), BufFrame::new(before));
            let outcome = endpoints(method, dir).translate(&mut f, &mut meta, Shift::NONE, toa, AT);
            (outcome, bytes(&f))
        };
        let reference = |before: &[u8], rewrite: &dyn Fn(&mut BufFrame, &mut Ipv4Meta)| {
            let (mut meta, mut f) = (meta_of(before), BufFrame::new(before));
            rewrite(&mut f, &mut meta);
            bytes(&f)
        };

        let mut rw = FnatRewrite::inbound(LIP.into(), 5001, RIP.into(), 8080);
        (rw.decrement_ttl, rw.toa) = (true, Some(Toa { addr: CLIENT.into(), port: 40000 }));
        let expected =
            reference(&inbound, &|f, m| assert_eq!(fnat::rewrite(f, m, &rw, Offload::NONE), Ok(ToaOutcome::Inserted)));
        assert_eq!(run(&inbound, ForwardMethod::FullNat, Direction::In, true), (Ok(ToaOutcome::Inserted), expected));
        rw.toa = None;
        let expected = reference(&inbound, &|f, m| fnat::rewrite(f, m, &rw, Offload::NONE).map(|_| ()).unwrap());
        assert_eq!(
            run(&inbound, ForwardMethod::FullNat, Direction::In, false),
            (Ok(ToaOutcome::NotRequested), expected)
        );

        let rw = FnatRewrite { decrement_ttl: true, ..FnatRewrite::outbound(VIP.into(), 80, CLIENT.into(), 40000) };
        let expected = reference(&outbound, &|f, m| fnat::rewrite(f, m, &rw, Offload::NONE).map(|_| ()).unwrap());
        assert_eq!(
            run(&outbound, ForwardMethod::FullNat, Direction::Out, true),
            (Ok(ToaOutcome::NotRequested), expected)
        );

        let rw = NatRewrite { decrement_ttl: true, ..NatRewrite::new(RIP.into(), 8080) };
        let expected = reference(&inbound, &|f, m| nat::rewrite_inbound(f, m, &rw, Offload::NONE).unwrap());
        assert_eq!(run(&inbound, ForwardMethod::Masq, Direction::In, true), (Ok(ToaOutcome::NotRequested), expected));

        let rw = NatRewrite { decrement_ttl: true, ..NatRewrite::new(VIP.into(), 80) };
        let expected = reference(&nat_outbound, &|f, m| nat::rewrite_outbound(f, m, &rw, Offload::NONE).unwrap());
        assert_eq!(
            run(&nat_outbound, ForwardMethod::Masq, Direction::Out, false),
            (Ok(ToaOutcome::NotRequested), expected)
        );
    }

    #[test]
    fn a_toa_goes_in_tcp_only() {
        let dns = udp_frame((CLIENT, 5353), (VIP, 53), b"query", true);
        let (mut meta, mut f) = (meta_of(&dns), BufFrame::new(&dns));
        let e = endpoints(ForwardMethod::FullNat, Direction::In);
        assert_eq!(e.translate(&mut f, &mut meta, Shift::NONE, true, AT), Ok(ToaOutcome::NotApplicable));
        let after = bytes(&f);
        assert_eq!((&after[30..34], &after[36..38]), (&RIP.octets()[..], &8080u16.to_be_bytes()[..]));
        assert_checksums_valid(&after);
    }

    #[test]
    fn a_refused_translation_leaves_the_frame_as_it_was() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], b"");
        let mut expiring = before.clone();
        let mut ip = crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut expiring[14..]);
        ip.set_ttl(1);
        ip.fill_checksum();
        let (mut meta, mut f) = (meta_of(&expiring), BufFrame::new(&expiring));
        let e = endpoints(ForwardMethod::Masq, Direction::In);
        assert_eq!(e.translate(&mut f, &mut meta, Shift::NONE, false, AT), Err(XmitError::TtlExpired { ttl: 1 }));
        assert_eq!(bytes(&f), expiring);
    }

    /// The error goes as the connection's packets go this way; its quote is
    /// the packet that went the other way, as its sender received it.
    #[test]
    fn icmp_errors_get_the_outer_endpoints_and_the_reversed_quote() {
        let v4 = |(a, p): Endpoint| (IpAddr::V4(a), p);
        let fnat_out = endpoints(ForwardMethod::FullNat, Direction::Out).icmp_error();
        assert_eq!((fnat_out.outer_src, fnat_out.outer_dst), (Some(VIP.into()), Some(CLIENT.into())));
        assert_eq!((fnat_out.inner_src, fnat_out.inner_dst), (Some(v4(ENDS.client)), Some(v4(ENDS.virtual_service))));
        let fnat_in = endpoints(ForwardMethod::FullNat, Direction::In).icmp_error();
        assert_eq!((fnat_in.outer_src, fnat_in.outer_dst), (Some(LIP.into()), Some(RIP.into())));
        assert_eq!((fnat_in.inner_src, fnat_in.inner_dst), (Some(v4(ENDS.real_server)), Some(v4(ENDS.local))));
        let nat_out = endpoints(ForwardMethod::Masq, Direction::Out).icmp_error();
        assert_eq!((nat_out.outer_src, nat_out.outer_dst), (Some(VIP.into()), None));
        assert_eq!((nat_out.inner_src, nat_out.inner_dst), (None, Some(v4(ENDS.virtual_service))));
        let nat_in = endpoints(ForwardMethod::Masq, Direction::In).icmp_error();
        assert_eq!((nat_in.outer_src, nat_in.outer_dst), (None, Some(RIP.into())));
        assert_eq!((nat_in.inner_src, nat_in.inner_dst), (Some(v4(ENDS.real_server)), None));
        assert!(nat_in.decrement_ttl && nat_in.inner_seq_delta == 0);
    }

    /// Option blocks a segment may carry: none, Linux's NOP NOP TS,
    /// TS then SACK, a lone NOP before TS (odd offsets), MSS and SACK-
    /// permitted of a SYN.
    fn options() -> impl Strategy<Value = Vec<u8>> {
        (any::<[u32; 4]>(), 0usize..5).prop_map(|(w, shape)| {
            let ts: Vec<u8> = [w[0], w[1]].iter().flat_map(|v| v.to_be_bytes()).collect();
            let sack: Vec<u8> = [w[2], w[3]].iter().flat_map(|v| v.to_be_bytes()).collect();
            match shape {
                0 => vec![],
                1 => [&[1, 1, 8, 10][..], &ts].concat(),
                2 => [&[1, 1, 8, 10][..], &ts, &[1, 1, 5, 10], &sack].concat(),
                3 => [&[1, 8, 10][..], &ts, &[0]].concat(),
                _ => vec![2, 4, (w[0] >> 8) as u8, w[0] as u8, 4, 2, 1, 1],
            }
        })
    }

    /// A TOA's insertion folded into the translation
    /// ([`super::translate_inserting`]) does what translating, then
    /// inserting, did: the same bytes, lengths, outcome, refusal and offload
    /// request, whatever the options, room, MTU, TTL, shift and offloads.
    mod toa_in_one_pass {
        use super::*;
        use crate::frame::Frame;

        proptest! {
            #[test]
            fn equals_translating_then_inserting(
                (seq, ack, flag_bits) in (any::<u32>(), any::<u32>(), any::<u8>()),
                opts in options(),
                padding in 0usize..6,
                payload in proptest::collection::vec(any::<u8>(), 0..64),
                shift in any::<[u32; 4]>(),
                ttl in prop_oneof![Just(1u8), Just(2u8), any::<u8>()],
                (mtu_slack, headroom) in (-12i32..12, prop_oneof![Just(0usize), Just(7usize), Just(8usize), Just(128usize)]),
                (ip_offload, tcp_offload) in (any::<bool>(), any::<bool>()),
            ) {
                // Up to 40 bytes of options: padding NOPs fill some blocks
                // to where no TOA fits.
                let mut opts = opts;
                opts.extend(std::iter::repeat_n(1u8, padding * 4));
                opts.truncate(40);
                opts.truncate(opts.len() / 4 * 4);
                let mut before = tcp_frame((CLIENT, 40000), (VIP, 80), seq, ack, flag_bits, &opts, &payload);
                let mut ip = crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut before[14..]);
                ip.set_ttl(ttl);
                ip.fill_checksum();
                let ip_len = before.len() - 14;
                let mtu = (ip_len as i32 + 8 + mtu_slack).clamp(0, 65535) as u16;
                let offload = Offload { ipv4_checksum: ip_offload, tcp_checksum: tcp_offload, ..Offload::NONE };
                let frame = || BufFrame::with_geometry(&before, headroom, before.len() + 64);

                let (mut meta, mut f) = (meta_of(&before), frame());
                let e = endpoints(ForwardMethod::FullNat, Direction::In);
                let shifted = Shift { seq: shift[0], ack: shift[1], tsval: shift[2], tsecr: shift[3] };
                let r = e.translate(&mut f, &mut meta, shifted, true, Egress { mtu, offload });

                let mut rw = FnatRewrite::inbound(LIP.into(), 5001, RIP.into(), 8080);
                (rw.seq_delta, rw.ack_delta, rw.tsval_delta, rw.tsecr_delta) = (shift[0], shift[1], shift[2], shift[3]);
                (rw.decrement_ttl, rw.mtu) = (true, mtu);
                rw.toa = Some(Toa { addr: CLIENT.into(), port: 40000 });
                let (mut want_meta, mut want) = (meta_of(&before), frame());
                let want_r = fnat::rewrite(&mut want, &mut want_meta, &rw, offload);

                prop_assert_eq!(r, want_r);
                prop_assert_eq!(bytes(&f), bytes(&want));
                prop_assert_eq!(meta, want_meta);
                prop_assert_eq!(f.tx_offload(), want.tx_offload());
                if r == Ok(ToaOutcome::Inserted) && !ip_offload && !tcp_offload {
                    assert_checksums_valid(&bytes(&f));
                }
            }
        }
    }

    /// IPv6: the same dispatch over `Ends<Ipv6Addr>`.
    mod v6 {
        use super::*;
        use crate::frame::{L4Offload, TxOffload};
        use crate::wire::build::ipv6;
        use crate::wire::checksum;
        use crate::wire::ipv6::ext;
        use crate::wire::tcp::{TcpOption, TcpPacket, TcpRepr};
        use crate::xmit::tcp_opts::insert_toa_v6;

        const ENDS6: Ends<Ipv6Addr> = Ends {
            client: (CLIENT6, 40000),
            virtual_service: (VIP6, 80),
            local: (LIP6, 5001),
            real_server: (RIP6, 8080),
        };
        /// Offsets in an untagged IPv6 frame without extension headers.
        const HOP: usize = 21;
        const SRC: std::ops::Range<usize> = 22..38;
        const DST: std::ops::Range<usize> = 38..54;
        const PORTS: std::ops::Range<usize> = 54..58;
        const TCP_SUM: std::ops::Range<usize> = 70..72;
        const UDP_SUM: std::ops::Range<usize> = 60..62;

        fn endpoints6(method: ForwardMethod, dir: Direction) -> Endpoints<Ipv6Addr> {
            match Rewrite::of(method, dir, &ENDS6) {
                Rewrite::Translate(e) => e,
                other => panic!("{method:?} {dir:?}: {other:?}"),
            }
        }

        fn run6(
            before: &[u8],
            e: Endpoints<Ipv6Addr>,
            shift: Shift,
            toa: bool,
            at: Egress,
        ) -> (Result<ToaOutcome, XmitError>, BufFrame, Ipv6Meta) {
            let (mut meta, mut f) = (meta_v6_of(before), BufFrame::new(before));
            let r = e.translate(&mut f, &mut meta, shift, toa, at);
            (r, f, meta)
        }

        #[test]
        fn dr_and_tun_are_routed_inbound_and_bypass_the_gateway_outbound() {
            assert_eq!(Rewrite::of(ForwardMethod::DirectRoute, Direction::In, &ENDS6), Rewrite::OnLink);
            assert_eq!(Rewrite::of(ForwardMethod::Tunnel, Direction::In, &ENDS6), Rewrite::Encapsulate);
            for method in [ForwardMethod::DirectRoute, ForwardMethod::Tunnel] {
                assert_eq!(Rewrite::of(method, Direction::Out, &ENDS6), Rewrite::Bypassed);
            }
            assert_eq!(ENDS6.destination(Direction::In), RIP6);
            assert_eq!(ENDS6.destination(Direction::Out), CLIENT6);
        }

        /// Every mode and direction, TCP and UDP: the bytes are those of the
        /// packet built with the new endpoints and hop limit 63 (its
        /// checksum computed in full), and nothing else changed.
        #[test]
        fn every_mode_and_direction_writes_exactly_its_fields() {
            let fnat_in = (ForwardMethod::FullNat, Direction::In);
            let fnat_out = (ForwardMethod::FullNat, Direction::Out);
            let nat_in = (ForwardMethod::Masq, Direction::In);
            let nat_out = (ForwardMethod::Masq, Direction::Out);
            let cases = [
                (fnat_in, (CLIENT6, 40000), (VIP6, 80), (LIP6, 5001), (RIP6, 8080), vec![SRC, DST]),
                (fnat_out, (RIP6, 8080), (LIP6, 5001), (VIP6, 80), (CLIENT6, 40000), vec![SRC, DST]),
                (nat_in, (CLIENT6, 40000), (VIP6, 80), (CLIENT6, 40000), (RIP6, 8080), vec![DST]),
                (nat_out, (RIP6, 8080), (CLIENT6, 40000), (VIP6, 80), (CLIENT6, 40000), vec![SRC]),
            ];
            let opts = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];
            for ((method, dir), from, to, new_from, new_to, addrs) in cases {
                let e = endpoints6(method, dir);
                let before = tcp_frame_v6(from, to, 1000, 2000, flags::ACK | flags::PSH, &opts, b"hello");
                let want = tcp_frame_v6_hop(new_from, new_to, 1000, 2000, flags::ACK | flags::PSH, &opts, b"hello", 63);
                let (r, f, meta) = run6(&before, e, Shift::NONE, false, AT);
                assert_eq!(r, Ok(ToaOutcome::NotRequested), "{method:?} {dir:?}");
                let after = bytes(&f);
                assert_eq!(after, want, "{method:?} {dir:?} tcp");
                let mut fields = addrs.clone();
                fields.extend([HOP..HOP + 1, PORTS, TCP_SUM]);
                assert_changed_only(&before, &after, &fields);
                assert_checksums_valid_v6(&after);
                assert_eq!(meta, meta_v6_of(&before), "the meta keeps the received tuple");
                assert_eq!(f.tx_offload(), TxOffload::default());
                // Only FNAT inbound has a TOA to insert (checked below).
                let (r, f, _) = run6(&before, e, Shift::NONE, true, AT);
                if (method, dir) == fnat_in {
                    assert_eq!(r, Ok(ToaOutcome::Inserted));
                } else {
                    assert_eq!((r, bytes(&f)), (Ok(ToaOutcome::NotRequested), want.clone()), "{method:?} {dir:?}");
                }

                let before = udp_frame_v6(from, to, b"query");
                let want = udp_frame_v6_hop(new_from, new_to, b"query", 63);
                let (r, f, _) = run6(&before, e, Shift::NONE, false, AT);
                assert_eq!(r, Ok(ToaOutcome::NotRequested));
                let after = bytes(&f);
                assert_eq!(after, want, "{method:?} {dir:?} udp");
                let mut fields = addrs;
                fields.extend([HOP..HOP + 1, PORTS, UDP_SUM]);
                assert_changed_only(&before, &after, &fields);
                assert_checksums_valid_v6(&after);
            }
        }

        /// The TOA of an FNAT inbound handshake packet, in DPVS's layout:
        /// kind 254, length 20, the client's port and IPv6 address, right
        /// after the fixed TCP header.
        #[test]
        fn fnat_inbound_carries_the_client_in_a_v6_toa() {
            let ts = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];
            let before = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 2000, flags::ACK, &ts, b"GET /");
            let (r, f, meta) = run6(&before, endpoints6(ForwardMethod::FullNat, Direction::In), Shift::NONE, true, AT);
            assert_eq!(r, Ok(ToaOutcome::Inserted));
            let after = bytes(&f);
            assert_eq!(after.len(), before.len() + 20);
            assert_eq!(f.headroom(), crate::frame::DEFAULT_HEADROOM - 20);
            let mut toa = vec![254, 20, 0x9c, 0x40];
            toa.extend_from_slice(&CLIENT6.octets());
            assert_eq!(&after[74..94], toa.as_slice());
            // The headers are those of the translated packet but for the
            // payload length and the data offset; the options and payload
            // follow the TOA as they were.
            let mut toa_opts = toa.clone();
            toa_opts.extend_from_slice(&ts);
            let want = tcp_frame_v6_hop((LIP6, 5001), (RIP6, 8080), 1000, 2000, flags::ACK, &toa_opts, b"GET /", 63);
            assert_eq!(after, want);
            assert_eq!(u16::from_be_bytes([after[18], after[19]]), 20 + 20 + 12 + 5);
            assert_eq!(after[66] >> 4, 13);
            assert_eq!(&after[94..], &before[74..]);
            assert_checksums_valid_v6(&after);
            assert_eq!(meta.l4_len, meta_v6_of(&after).l4_len);
            let t = TcpPacket::new_checked(&after[54..]).unwrap();
            let first = t.option_iter().next();
            assert_eq!(first, Some(Ok((0, TcpOption::ClientAddressV6 { port: 40000, addr: CLIENT6 }))));

            // UDP has no options: the datagram goes without.
            let dns = udp_frame_v6((CLIENT6, 5353), (VIP6, 53), b"query");
            let (r, f, _) = run6(&dns, endpoints6(ForwardMethod::FullNat, Direction::In), Shift::NONE, true, AT);
            assert_eq!(r, Ok(ToaOutcome::NotApplicable));
            assert_eq!(bytes(&f), udp_frame_v6_hop((LIP6, 5001), (RIP6, 8080), b"query", 63));
        }

        #[test]
        fn a_toa_that_does_not_fit_is_left_out() {
            let e = endpoints6(ForwardMethod::FullNat, Direction::In);
            // 24 bytes of options: 20 more would pass the 40-byte limit.
            let mut opts = vec![2, 4, 5, 0xa0, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
            opts.resize(24, 1);
            let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 7, 0, flags::SYN, &opts, b"");
            let want = tcp_frame_v6_hop((LIP6, 5001), (RIP6, 8080), 7, 0, flags::SYN, &opts, b"", 63);
            let (r, f, _) = run6(&syn, e, Shift::NONE, true, AT);
            assert_eq!((r, bytes(&f)), (Ok(ToaOutcome::NoOptionSpace), want));
            // 20 bytes of options leave room for it exactly.
            let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 7, 0, flags::SYN, &opts[..20], b"");
            let (r, f, _) = run6(&syn, e, Shift::NONE, true, AT);
            assert_eq!(r, Ok(ToaOutcome::Inserted));
            assert_eq!(bytes(&f)[66] >> 4, 15);
            assert_checksums_valid_v6(&bytes(&f));
            // A full-sized packet: 20 more bytes would pass the MTU.
            let payload = vec![0x5a; 1500 - 40 - 20];
            let full = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1, 1, flags::ACK, &[], &payload);
            let want = tcp_frame_v6_hop((LIP6, 5001), (RIP6, 8080), 1, 1, flags::ACK, &[], &payload, 63);
            let (r, f, _) = run6(&full, e, Shift::NONE, true, AT);
            assert_eq!((r, bytes(&f)), (Ok(ToaOutcome::ExceedsMtu), want));
        }

        #[test]
        fn hop_limit_is_decremented_or_expires_with_the_frame_unchanged() {
            let e = endpoints6(ForwardMethod::Masq, Direction::In);
            for hop in [0, 1] {
                let b = ipv6(CLIENT6, VIP6).hop_limit(hop).tcp(&TcpRepr {
                    src_port: 40000,
                    dst_port: 80,
                    seq_number: 1,
                    ack_number: 0,
                    flags: flags::SYN,
                    window_len: 1000,
                    options: &[],
                    payload: b"",
                });
                let (r, f, meta) = run6(&b, e, Shift::NONE, false, AT);
                assert_eq!(r, Err(XmitError::TtlExpired { ttl: hop }));
                assert_eq!(r.unwrap_err().drop_reason(), crate::wire::DropReason::TtlExpired);
                assert_eq!(bytes(&f), b, "a refused packet is untouched");
                assert_eq!(meta, meta_v6_of(&b));
            }
            let two = udp_frame_v6_hop((CLIENT6, 1), (VIP6, 53), b"x", 2);
            let (r, f, _) = run6(&two, e, Shift::NONE, false, AT);
            assert!(r.is_ok());
            assert_eq!(bytes(&f)[HOP], 1);
            assert_checksums_valid_v6(&bytes(&f));
        }

        #[test]
        fn a_packet_over_the_egress_mtu_is_refused_unchanged() {
            let payload = vec![7; 1400 - 40 - 20];
            let b = tcp_frame_v6((RIP6, 8080), (LIP6, 5001), 1, 1, flags::ACK, &[], &payload);
            let e = endpoints6(ForwardMethod::FullNat, Direction::Out);
            let (r, f, _) = run6(&b, e, Shift::NONE, false, Egress { mtu: 1399, ..AT });
            assert_eq!(r, Err(XmitError::MtuExceeded { len: 1400, mtu: 1399 }));
            assert_eq!(r.unwrap_err().drop_reason(), crate::wire::DropReason::MtuExceeded);
            assert_eq!(bytes(&f), b);
            let (r, f, _) = run6(&b, e, Shift::NONE, false, Egress { mtu: 1400, ..AT });
            assert!(r.is_ok());
            assert_checksums_valid_v6(&bytes(&f));
            // The hop limit is judged first, as a router does.
            let mut one = b.clone();
            one[HOP] = 1;
            let (r, _, _) = run6(&one, e, Shift::NONE, false, Egress { mtu: 1280, ..AT });
            assert_eq!(r, Err(XmitError::TtlExpired { ttl: 1 }));
        }

        /// Extension headers stay where they are; the offsets come from the
        /// classification, past them.
        #[test]
        fn extension_headers_are_carried_through() {
            // A destination options header of 8 bytes (PadN), then TCP.
            let chain = [ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0];
            let repr = |sport, dport, payload| TcpRepr {
                src_port: sport,
                dst_port: dport,
                seq_number: 5,
                ack_number: 6,
                flags: flags::ACK,
                window_len: 500,
                options: &[],
                payload,
            };
            let before = ipv6(CLIENT6, VIP6).ext_headers(ext::DEST_OPTS, &chain).tcp(&repr(40000, 80, b"abc"));
            let want =
                ipv6(LIP6, RIP6).hop_limit(63).ext_headers(ext::DEST_OPTS, &chain).tcp(&repr(5001, 8080, b"abc"));
            assert_eq!(meta_v6_of(&before).l3_len, 48);
            let e = endpoints6(ForwardMethod::FullNat, Direction::In);
            let (r, f, _) = run6(&before, e, Shift::NONE, false, AT);
            assert_eq!((r, bytes(&f)), (Ok(ToaOutcome::NotRequested), want));
            // With a TOA, the extension header moves with the fixed headers.
            let (r, f, _) = run6(&before, e, Shift::NONE, true, AT);
            assert_eq!(r, Ok(ToaOutcome::Inserted));
            let after = bytes(&f);
            assert_eq!(&after[54..62], &chain);
            assert_eq!(&after[82..86], &[254, 20, 0x9c, 0x40]);
            assert_checksums_valid_v6(&after);
            let t = TcpPacket::new_checked(&after[62..]).unwrap();
            assert_eq!(t.payload(), b"abc");
            // Offloaded: the pseudo-header counts the upper layer only.
            let (_, f, _) = run6(&before, e, Shift::NONE, false, Egress { offload: Offload::ALL, ..AT });
            let after = bytes(&f);
            let phdr = checksum::fold(checksum::pseudo_header_v6(LIP6.octets(), RIP6.octets(), 6, 23));
            assert_eq!(u16::from_be_bytes([after[78], after[79]]), phdr);
            assert_eq!(f.tx_offload().l3_len, 48);
        }

        /// What a NIC does with an offload request: the layer-4 checksum
        /// from scratch, over the pseudo-header sum left in its field.
        fn nic_fills(frame: &[u8], off: TxOffload) -> Vec<u8> {
            let mut nic = frame.to_vec();
            let l4 = usize::from(off.l2_len) + usize::from(off.l3_len);
            let at = l4 + if off.l4 == L4Offload::Tcp { 16 } else { 6 };
            let c = checksum::finish(checksum::sum(&nic[l4..]));
            nic[at..at + 2].copy_from_slice(&c.to_be_bytes());
            nic
        }

        #[test]
        fn offload_stores_the_v6_pseudo_header_sum() {
            let all = Egress { offload: Offload::ALL, ..AT };
            let before = tcp_frame_v6((RIP6, 8080), (LIP6, 5001), 9, 10, flags::ACK, &[], b"data");
            let want = tcp_frame_v6_hop((VIP6, 80), (CLIENT6, 40000), 9, 10, flags::ACK, &[], b"data", 63);
            let (r, f, _) = run6(&before, endpoints6(ForwardMethod::FullNat, Direction::Out), Shift::NONE, false, all);
            assert_eq!(r, Ok(ToaOutcome::NotRequested));
            let after = bytes(&f);
            let phdr = checksum::fold(checksum::pseudo_header_v6(VIP6.octets(), CLIENT6.octets(), 6, 24));
            assert_eq!(u16::from_be_bytes([after[70], after[71]]), phdr);
            let off = f.tx_offload();
            assert_eq!(off, TxOffload { l2_len: 14, l3_len: 40, ipv4_checksum: false, ipv6: true, l4: L4Offload::Tcp });
            assert_eq!(nic_fills(&after, off), want);

            let before = udp_frame_v6((RIP6, 8053), (CLIENT6, 5353), b"answer");
            let want = udp_frame_v6_hop((VIP6, 80), (CLIENT6, 5353), b"answer", 63);
            let (_, f, _) = run6(&before, endpoints6(ForwardMethod::Masq, Direction::Out), Shift::NONE, false, all);
            let off = f.tx_offload();
            assert_eq!(off, TxOffload { l2_len: 14, l3_len: 40, ipv4_checksum: false, ipv6: true, l4: L4Offload::Udp });
            assert_eq!(nic_fills(&bytes(&f), off), want);

            // The TOA under offload: the pseudo-header of the grown segment.
            let before = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1, 2, flags::ACK, &[], b"x");
            let (r, f, meta) = run6(&before, endpoints6(ForwardMethod::FullNat, Direction::In), Shift::NONE, true, all);
            assert_eq!(r, Ok(ToaOutcome::Inserted));
            let after = bytes(&f);
            assert_eq!(meta.l4_len, 41);
            assert_eq!(after[66] >> 4, 10, "the data offset counts the option");
            let phdr = checksum::fold(checksum::pseudo_header_v6(LIP6.octets(), RIP6.octets(), 6, 41));
            assert_eq!(u16::from_be_bytes([after[70], after[71]]), phdr);
            assert_eq!(f.tx_offload().l4, L4Offload::Tcp);
            assert!(f.tx_offload().ipv6);
            assert_checksums_valid_v6(&nic_fills(&after, f.tx_offload()));

            // A port that offloads UDP only: TCP is done in software.
            let udp_only = Egress { offload: Offload { udp_checksum: true, ..Offload::NONE }, ..AT };
            let before = tcp_frame_v6((RIP6, 8080), (LIP6, 5001), 9, 10, flags::ACK, &[], b"data");
            let want = tcp_frame_v6_hop((VIP6, 80), (CLIENT6, 40000), 9, 10, flags::ACK, &[], b"data", 63);
            let (_, f, _) =
                run6(&before, endpoints6(ForwardMethod::FullNat, Direction::Out), Shift::NONE, false, udp_only);
            assert_eq!((bytes(&f), f.tx_offload()), (want, TxOffload::default()));
        }

        /// IPv6 forbids a UDP datagram without a checksum: one that gets
        /// here anyway leaves with one computed in full.
        #[test]
        fn udp_without_a_checksum_leaves_with_one() {
            let valid = udp_frame_v6((CLIENT6, 5353), (VIP6, 53), b"query!");
            let mut meta = meta_v6_of(&valid);
            let mut zero = valid.clone();
            zero[60..62].copy_from_slice(&[0, 0]);
            let mut f = BufFrame::new(&zero);
            let e = endpoints6(ForwardMethod::FullNat, Direction::In);
            assert_eq!(e.translate(&mut f, &mut meta, Shift::NONE, false, AT), Ok(ToaOutcome::NotRequested));
            assert_eq!(bytes(&f), udp_frame_v6_hop((LIP6, 5001), (RIP6, 8080), b"query!", 63));
        }

        /// A SYN-proxied connection over IPv6: the server's numbers move
        /// into the client's space on the way out (seq, TSval), the
        /// client's back on the way in (ack, SACK edges, TSecr).
        #[test]
        fn syn_proxy_shifts_apply_as_for_v4() {
            let (seq, ts) = (0x1000_0000u32, 0xffff_f000u32);
            let tsopt = |tsval: u32, tsecr: u32| {
                let mut o = vec![1, 1, 8, 10];
                o.extend_from_slice(&tsval.to_be_bytes());
                o.extend_from_slice(&tsecr.to_be_bytes());
                o
            };
            let out = endpoints6(ForwardMethod::FullNat, Direction::Out);
            let before = tcp_frame_v6((RIP6, 8080), (LIP6, 5001), 500, 77, flags::ACK, &tsopt(0x2000, 9), b"OK");
            let want = tcp_frame_v6_hop(
                (VIP6, 80),
                (CLIENT6, 40000),
                500u32.wrapping_add(seq),
                77,
                flags::ACK,
                &tsopt(0x2000u32.wrapping_add(ts), 9),
                b"OK",
                63,
            );
            let (_, f, _) = run6(&before, out, Shift::proxied(seq, ts, Direction::Out), false, AT);
            assert_eq!(bytes(&f), want);

            let inb = endpoints6(ForwardMethod::Masq, Direction::In);
            let mut opts = tsopt(10, 0x2000u32.wrapping_add(ts));
            opts.extend_from_slice(&[1, 1, 5, 10]);
            opts.extend_from_slice(&600u32.wrapping_add(seq).to_be_bytes());
            opts.extend_from_slice(&700u32.wrapping_add(seq).to_be_bytes());
            let before =
                tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 77, 502u32.wrapping_add(seq), flags::ACK, &opts, b"");
            let mut opts = tsopt(10, 0x2000);
            opts.extend_from_slice(&[1, 1, 5, 10, 0, 0, 0x02, 0x58, 0, 0, 0x02, 0xbc]);
            let want = tcp_frame_v6_hop((CLIENT6, 40000), (RIP6, 8080), 77, 502, flags::ACK, &opts, b"", 63);
            let (_, f, _) = run6(&before, inb, Shift::proxied(seq, ts, Direction::In), false, AT);
            assert_eq!(bytes(&f), want);
        }

        fn v6_addr() -> impl Strategy<Value = Ipv6Addr> {
            any::<u128>().prop_map(Ipv6Addr::from)
        }

        proptest! {
            /// The IPv6 TOA folded into the translation
            /// ([`super::translate_inserting_v6`]) does what translating,
            /// then inserting, did: the same bytes, lengths, outcome,
            /// refusal and offload request.
            #[test]
            fn a_toa_in_one_pass_equals_translating_then_inserting(
                (seq, ack, flag_bits) in (any::<u32>(), any::<u32>(), any::<u8>()),
                opts in options(),
                padding in 0usize..6,
                payload in proptest::collection::vec(any::<u8>(), 0..64),
                shift in any::<[u32; 4]>(),
                hop_limit in prop_oneof![Just(1u8), Just(2u8), any::<u8>()],
                (mtu_slack, headroom) in (-24i32..24, prop_oneof![Just(0usize), Just(19usize), Just(20usize), Just(128usize)]),
                tcp_offload in any::<bool>(),
            ) {
                let mut opts = opts;
                opts.extend(std::iter::repeat_n(1u8, padding * 4));
                opts.truncate(40);
                opts.truncate(opts.len() / 4 * 4);
                let mut before = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), seq, ack, flag_bits, &opts, &payload);
                before[HOP] = hop_limit;
                let ip_len = before.len() - 14;
                let mtu = (ip_len as i32 + 20 + mtu_slack).clamp(0, 65535) as u16;
                let at = Egress { mtu, offload: Offload { tcp_checksum: tcp_offload, ..Offload::NONE } };
                let frame = || BufFrame::with_geometry(&before, headroom, before.len() + 64);
                let e = endpoints6(ForwardMethod::FullNat, Direction::In);
                let shift = Shift { seq: shift[0], ack: shift[1], tsval: shift[2], tsecr: shift[3] };

                let (mut meta, mut f) = (meta_v6_of(&before), frame());
                let r = e.translate(&mut f, &mut meta, shift, true, at);

                let (mut want_meta, mut want) = (meta_v6_of(&before), frame());
                let want_r = e.translate(&mut want, &mut want_meta, shift, false, at).map(|_| {
                    insert_toa_v6(&mut want, &mut want_meta, 40000, CLIENT6.octets(), mtu, at.offload)
                });

                prop_assert_eq!(r, want_r);
                prop_assert_eq!(bytes(&f), bytes(&want));
                prop_assert_eq!(meta, want_meta);
                prop_assert_eq!(f.tx_offload(), want.tx_offload());
                if r == Ok(ToaOutcome::Inserted) && !tcp_offload {
                    assert_checksums_valid_v6(&bytes(&f));
                }
            }

            /// Any IPv6 TCP segment, any endpoints, mode, direction, shift
            /// and offload: the checksum still verifies after the
            /// translation (after the NIC's share under offload), and the
            /// header says what the translation wrote.
            #[test]
            fn a_translated_v6_segment_always_verifies(
                addrs in proptest::array::uniform6(v6_addr()),
                ports in any::<[u16; 6]>(),
                (seq, ack, flag_bits) in (any::<u32>(), any::<u32>(), any::<u8>()),
                opts in options(),
                payload in proptest::collection::vec(any::<u8>(), 0..80),
                shift in any::<[u32; 4]>(),
                (mode, offload, toa) in (0usize..4, any::<bool>(), any::<bool>()),
            ) {
                let ends = Ends {
                    client: (addrs[0], ports[0]),
                    virtual_service: (addrs[1], ports[1]),
                    local: (addrs[2], ports[2]),
                    real_server: (addrs[3], ports[3]),
                };
                let (method, dir) = [
                    (ForwardMethod::FullNat, Direction::In),
                    (ForwardMethod::FullNat, Direction::Out),
                    (ForwardMethod::Masq, Direction::In),
                    (ForwardMethod::Masq, Direction::Out),
                ][mode];
                let Rewrite::Translate(e) = Rewrite::of(method, dir, &ends) else { unreachable!() };
                let before = tcp_frame_v6((addrs[4], ports[4]), (addrs[5], ports[5]), seq, ack, flag_bits, &opts, &payload);
                let shift = Shift { seq: shift[0], ack: shift[1], tsval: shift[2], tsecr: shift[3] };
                let at = Egress { mtu: 1500, offload: if offload { Offload::ALL } else { Offload::NONE } };
                let (r, f, _) = run6(&before, e, shift, toa, at);
                prop_assert!(r.is_ok(), "{r:?}");
                let after = if offload { nic_fills(&bytes(&f), f.tx_offload()) } else { bytes(&f) };
                assert_checksums_valid_v6(&after);
                let m = meta_v6_of(&after);
                let (src, dst) = (e.src.unwrap_or((addrs[4], ports[4])), e.dst.unwrap_or((addrs[5], ports[5])));
                prop_assert_eq!((m.src, m.src_port, m.dst, m.dst_port), (src.0, src.1, dst.0, dst.1));
                prop_assert_eq!(m.hop_limit, 63);
                let t = TcpPacket::new_checked(&after[m.l4_offset()..]).unwrap();
                prop_assert_eq!(t.seq_number(), seq.wrapping_add(shift.seq));
                let acked = if flag_bits & flags::ACK != 0 { ack.wrapping_sub(shift.ack) } else { ack };
                prop_assert_eq!(t.ack_number(), acked);
                prop_assert_eq!(t.payload(), payload.as_slice());
            }
        }
    }
}
