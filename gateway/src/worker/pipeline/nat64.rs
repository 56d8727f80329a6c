//! NAT64 connections: an IPv6 service's IPv4 real servers, in full NAT
//! ([`crate::xmit::nat64`] translates the packets).
//!
//! A NAT64 connection lives in the IPv6 table, its server-side addresses
//! IPv4-mapped ([`crate::conn::key::Family::from_server_ip`]): the client's
//! packets find it as any IPv6 connection's do, and leave here translated
//! to IPv4 instead of rewritten. The server's replies arrive over IPv4 to
//! an IPv4 local address; they miss the IPv4 table and, at the worker that
//! owns the local port, are looked up in the IPv6 one by their mapped key
//! ([`Worker::nat64_reply`]). That second lookup is on the IPv4 path's miss
//! branch only: IPv4 connections pay nothing for NAT64. ICMP errors about
//! a NAT64 connection's packets cross the families the same way, each side
//! getting the error about its own packet (`nat64_error_to_client`,
//! `nat64_error_to_server`).

use std::net::Ipv6Addr;

use super::ipv6::ends_of6;
use super::{Arrival, Io, Leg, Worker};
use crate::conn::{ConnId, Direction, FlowKey, State};
use crate::frame::Frame;
use crate::model::Protocol;
use crate::wire::{ip_proto, DropReason, Ipv4Meta, Ipv6Meta};
use crate::worker::counters::Discard;
use crate::xmit::nat64::{icmp_error_to_v4, icmp_error_to_v6, to_ipv4, to_ipv6};
use crate::xmit::{Ends, ToaOutcome};

impl<F: Frame> Worker<F> {
    /// A client's packet of NAT64 connection `ends` (already counted and
    /// its state moved on), translated to IPv4 and sent to the server; or
    /// refused as a router refuses it (hop limit, packet too big). An IPv6
    /// packet the other way (`leg.dir` out: from the server's side with
    /// IPv4-mapped addresses, which no real server sends and RFC 4291 keeps
    /// off the wire) is dropped, never reflected to the server.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn nat64_to_server(
        &mut self,
        mut frame: F,
        meta: Ipv6Meta,
        leg: Leg,
        ends: &Ends<Ipv6Addr>,
        before: State,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let (Some(lip), Some(rip)) = (ends.local.0.to_ipv4_mapped(), ends.real_server.0.to_ipv4_mapped()) else {
            return self.discard(frame, DropReason::NotRewritable.into(), io);
        };
        if leg.dir == Direction::Out {
            return self.discard(frame, DropReason::NotRewritable.into(), io);
        }
        let Some(out) = self.resolve(rip, at.now) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        // The TOA rides the handshake, as FNAT's (`Worker::forward`).
        let toa = (meta.protocol == ip_proto::TCP && before != State::Established).then_some(ends.client);
        match to_ipv4(&mut frame, &meta, (lip, ends.local.1), (rip, ends.real_server.1), toa, out.egress) {
            Ok((_, outcome)) => {
                if !matches!(outcome, ToaOutcome::Inserted | ToaOutcome::NotRequested) {
                    self.counters.toa_not_inserted.inc();
                }
                self.send_resolved(frame, out, at.now, io);
            }
            Err(e) => self.refuse6(frame, &meta, e, at, io),
        }
    }

    /// A TCP or UDP packet to one of this worker's IPv4 local ports that
    /// no IPv4 connection has: a server's reply of a NAT64 connection,
    /// translated to IPv6 and sent to the client, or else a packet of no
    /// connection (see [`Worker::unconsumed_flow`]).
    #[cold]
    #[inline(never)]
    pub(super) fn nat64_reply(
        &mut self,
        mut frame: F,
        meta: Ipv4Meta,
        proto: Protocol,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let key = FlowKey { proto, src: meta.src, sport: meta.src_port, dst: meta.dst, dport: meta.dst_port };
        let Some(id) = self.nat64_of(&key) else {
            return self.unconsumed_flow(frame, Discard::NoConnection, at, io);
        };
        let c = self.v6.director.conn(id);
        let ends = ends_of6(c);
        c.count_to_dest(self.id, Direction::Out, || meta.ip_total_len());
        self.v6.director.on_packet(id, Direction::Out, meta.tcp_flags, at.now);
        let Some(out) = self.resolve6(ends.client.0, at.now) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        match to_ipv6(&mut frame, &meta, ends.virtual_service, ends.client, out.egress) {
            Ok(_) => self.send_resolved6(frame, out, at.now, io),
            // Time exceeded, or fragmentation needed 20 bytes below the
            // client's link (IPv6's header is longer).
            Err(e) => self.refuse(frame, &meta, e, at, io),
        }
    }

    /// The NAT64 connection whose server sends IPv4 packets of `key` (to a
    /// local address), if any: a reply's own key, or the reverse of an ICMP
    /// error's quote.
    #[inline(always)]
    pub(super) fn nat64_of(&self, key: &FlowKey<std::net::Ipv4Addr>) -> Option<ConnId> {
        let mapped = FlowKey {
            proto: key.proto,
            src: key.src.to_ipv6_mapped(),
            sport: key.sport,
            dst: key.dst.to_ipv6_mapped(),
            dport: key.dport,
        };
        match self.v6.director.lookup(&mapped) {
            Some((id, Direction::Out)) => Some(id),
            _ => None,
        }
    }

    /// An ICMPv4 error about a packet the gateway sent NAT64 connection
    /// `id`'s server, translated into the ICMPv6 error its client gets
    /// about its own packet (path MTU discovery across the families).
    #[cold]
    #[inline(never)]
    pub(super) fn nat64_error_to_client(
        &mut self,
        mut frame: F,
        meta: Ipv4Meta,
        id: ConnId,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let ends = ends_of6(self.v6.director.conn(id));
        let Some((hop, _)) = self.egress6(ends.client.0) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let outer = (ends.virtual_service.0, ends.client.0);
        if let Err(e) = icmp_error_to_v6(&mut frame, &meta, outer, (ends.client, ends.virtual_service)) {
            return self.discard(frame, e.drop_reason().into(), io);
        }
        self.counters.icmp_errors_relayed.inc();
        self.send_via6(frame, hop, at.now, io);
    }

    /// An ICMPv6 error about a packet the gateway sent NAT64 connection
    /// `id`'s client, translated into the ICMPv4 error its server gets
    /// about its own packet.
    #[cold]
    #[inline(never)]
    pub(super) fn nat64_error_to_server(
        &mut self,
        mut frame: F,
        meta: Ipv6Meta,
        id: ConnId,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let ends = ends_of6(self.v6.director.conn(id));
        let (Some(lip), Some(rip)) = (ends.local.0.to_ipv4_mapped(), ends.real_server.0.to_ipv4_mapped()) else {
            return self.discard(frame, DropReason::NotRewritable.into(), io);
        };
        let Some((hop, _)) = self.egress(rip) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        if let Err(e) =
            icmp_error_to_v4(&mut frame, &meta, (lip, rip), ((rip, ends.real_server.1), (lip, ends.local.1)))
        {
            return self.discard(frame, e.drop_reason().into(), io);
        }
        self.counters.icmp_errors_relayed.inc();
        self.send_via(frame, hop, at.now, io);
    }
}
