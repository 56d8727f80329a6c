//! What each forwarding mode does to a connection's packets, in each
//! direction: the one place the (mode, direction) choice is made, shared by
//! the packets of a connection and the ICMP errors about them.
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

use std::net::{IpAddr, Ipv4Addr};

use crate::conn::Direction;
use crate::frame::Frame;
use crate::model::ForwardMethod;
use crate::wire::{ip_proto, Ipv4Meta};

use super::tcp_opts::{insert_toa, ToaOutcome};
use super::{translate, IcmpErrorRewrite, Offload, Translation, XmitError};

/// An address and port.
pub type Endpoint = (Ipv4Addr, u16);

/// A connection's four endpoints, read once from its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub client: Endpoint,
    pub virtual_service: Endpoint,
    /// FNAT: where packets to the real server come from. Other modes: the client.
    pub local: Endpoint,
    pub real_server: Endpoint,
}

impl Ends {
    /// Where a packet going `dir` is headed: the real server or the client.
    #[inline(always)]
    pub fn destination(&self, dir: Direction) -> Ipv4Addr {
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
pub enum Rewrite {
    /// FNAT or NAT: endpoints are replaced.
    Translate(Endpoints),
    /// DR inbound: the IP packet goes unchanged to the real server, which
    /// holds the VIP itself and so must be on-link.
    OnLink,
    /// TUN inbound: the packet goes in an IP-in-IP header to the real server.
    Encapsulate,
    /// DR and TUN outbound: the real server answers the client directly, so
    /// no packet of the connection comes this way (the table indexes no
    /// reply key for them).
    Bypassed,
}

impl Rewrite {
    /// The rewrite of connection `e`'s packets going `dir` in mode `method`.
    #[inline(always)]
    pub fn of(method: ForwardMethod, dir: Direction, e: &Ends) -> Rewrite {
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
pub struct Endpoints {
    pub src: Option<Endpoint>,
    pub dst: Option<Endpoint>,
    /// FNAT inbound: the client, which a TCP packet may carry to the real
    /// server in a TOA option.
    pub toa: Option<Endpoint>,
}

impl Endpoints {
    /// Translates a classified TCP or UDP packet in place, as a router hop
    /// (TTL decremented), shifting its sequence space by `shift` and, when
    /// `with_toa` and the mode has one, inserting the client's address as a
    /// TOA; the outcome says whether it went in. On error the frame is
    /// unchanged. `meta` keeps the tuple as received; its lengths follow the
    /// frame.
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
            (Some(s), Some(d), Some((client, port))) => {
                translate(frame, meta, at.offload, || Ok(build(Some(s), Some(d))))?;
                return Ok(match meta.protocol {
                    ip_proto::TCP if with_toa => insert_toa(frame, meta, port, client.octets(), at.mtu, at.offload),
                    _ if with_toa => ToaOutcome::NotApplicable,
                    _ => ToaOutcome::NotRequested,
                });
            }
            (Some(s), Some(d), None) => translate(frame, meta, at.offload, || Ok(build(Some(s), Some(d))))?,
            (None, Some(d), _) => translate(frame, meta, at.offload, || Ok(build(None, Some(d))))?,
            (Some(s), None, _) => translate(frame, meta, at.offload, || Ok(build(Some(s), None)))?,
            (None, None, _) => translate(frame, meta, at.offload, || Ok(build(None, None)))?,
        }
        Ok(ToaOutcome::NotRequested)
    }

    /// The rewrite of an ICMP error about a packet of the connection, relayed
    /// the same way: the outer header as a packet going this way, the quote
    /// (a packet that went the other way) with the reverse endpoints.
    pub fn icmp_error(&self) -> IcmpErrorRewrite {
        let addr = |e: Option<Endpoint>| e.map(|(a, _)| IpAddr::V4(a));
        let endpoint = |e: Option<Endpoint>| e.map(|(a, p)| (IpAddr::V4(a), p));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::*;
    use crate::xmit::{fnat, nat, FnatRewrite, NatRewrite, Toa};

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
}
