//! A connection's packets, and the ICMP errors about them: rewritten as
//! [`Rewrite::of`] says for the connection's mode and the packet's direction,
//! routed, and sent; or refused, with the ICMP error a router would send.

use std::net::{IpAddr, Ipv4Addr};

use super::{Arrival, Io, Leg, Worker};
use crate::conn::table::Conn;
use crate::conn::{ConnId, Direction, FlowKey, Proxy, State};
use crate::frame::Frame;
use crate::model::{ForwardMethod, Protocol};
use crate::net::icmp::error_destination;
use crate::net::{KernelClass, NextHop, Queued};
use crate::wire::classify::{icmp_error_inner, IcmpQuote};
use crate::wire::{ip_proto, ipv4, DropReason, EthAddrs, Ipv4Meta};
use crate::worker::counters::Discard;
use crate::xmit::icmp_error::{IcmpErrorRewrite, OriginatedError};
use crate::xmit::{self, Egress, Ends, Rewrite, Shift, ToaOutcome, TunEncap, WireEnds, XmitError};

use super::egress::{route, Resolved};
use super::local::{send_on_port, send_to_neighbour};

impl<F: Frame> Worker<F> {
    /// [`Worker::forward`] for a packet that found its connection, down the
    /// path [`Lane::of`] chose for it, compiled into its caller for the common
    /// case: an FNAT connection that neither the SYN proxy nor a PROXY header
    /// touches, whose rewrite alone is then inlined ([`Worker::forward_fnat`],
    /// its mode known, the others' code left out), once for each direction.
    /// Any other connection takes `forward`, out of line, as do the client's
    /// packets that carry a TOA: the lane holds none of its code (with it,
    /// `measure_pipeline.sh` counted 17 more instructions an established
    /// packet).
    #[inline(always)]
    pub(super) fn forward_found(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        leg: Leg,
        lane: Lane,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        match lane {
            Lane::FnatIn => self.forward_fnat::<true>(frame, meta, leg.id, at, io),
            Lane::FnatOut => self.forward_fnat::<false>(frame, meta, leg.id, at, io),
            Lane::General => self.forward(frame, meta, leg, at, io),
        }
    }

    /// A packet of a connection: held while the SYN proxy's handshake with
    /// the server is open, else rewritten and sent.
    pub(super) fn forward(&mut self, frame: F, meta: Ipv4Meta, leg: Leg, at: Arrival, io: &mut impl Io<F>) {
        let c = self.director.conn(leg.id);
        // One test for both rare cases, out of line.
        if c.is_rare() {
            return self.forward_rare(frame, meta, leg, at, io);
        }
        let proxy = c.proxy();
        self.rewrite_with::<false, false>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::forward`] for the packet that opened connection `leg.id`:
    /// the table filed the connection in the state and with the deadline
    /// that packet gives it (SYN_RECV for a SYN, or UDP's), so the packet is
    /// not accounted to it again (`measure_pipeline.sh`: 84 instructions a
    /// new connection). Inlined into its one caller, the dispatch: as a call
    /// it cost a new connection 15 instructions more, and the established
    /// packet's count did not move.
    #[inline(always)]
    pub(super) fn forward_opening(&mut self, frame: F, meta: Ipv4Meta, leg: Leg, at: Arrival, io: &mut impl Io<F>) {
        let c = self.director.conn(leg.id);
        debug_assert!(opened_by(c, meta.tcp_flags), "the opening packet leaves the state as filed");
        if c.is_rare() {
            return self.forward_rare(frame, meta, leg, at, io);
        }
        let proxy = c.proxy();
        self.rewrite_with::<false, true>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::forward`] for a connection in the SYN proxy's handshake or
    /// sending a PROXY header.
    #[cold]
    #[inline(never)]
    fn forward_rare(&mut self, frame: F, meta: Ipv4Meta, leg: Leg, at: Arrival, io: &mut impl Io<F>) {
        let proxy = self.director.conn(leg.id).proxy();
        if let Proxy::Handshake(slot) = proxy {
            return self.synproxy_handshaking(frame, meta, leg, slot, at, io);
        }
        self.rewrite_with::<true, false>(frame, meta, leg, proxy, at, io);
    }

    /// Rewrites a packet of a connection for its mode (and the SYN proxy's
    /// deltas, `proxy`), then routes and sends it.
    pub(super) fn rewrite_and_send(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        leg: Leg,
        proxy: Proxy,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if self.director.conn(leg.id).has_proxy_header() {
            return self.rewrite_and_send_with_header(frame, meta, leg, proxy, at, io);
        }
        self.rewrite_with::<false, false>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::rewrite_and_send`] for a connection sending a PROXY
    /// header: out of line, so no other connection's path holds its code.
    #[inline(never)]
    fn rewrite_and_send_with_header(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        leg: Leg,
        proxy: Proxy,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        self.rewrite_with::<true, false>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::rewrite_and_send`], compiled once for connections with a
    /// PROXY header (`HEADER`) and once for the others, and for the packet
    /// that opened its connection (`OPENING`: not accounted to it again).
    #[inline(always)]
    fn rewrite_with<const HEADER: bool, const OPENING: bool>(
        &mut self,
        mut frame: F,
        mut meta: Ipv4Meta,
        Leg { id, dir }: Leg,
        proxy: Proxy,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        // Everything but the state is fixed for the connection's life: read it once.
        let c = self.director.conn(id);
        // The TOA rides the handshake (the toa module reads it from the
        // packet completing it) and the packets before it settles: decided
        // by the state before this packet moves it.
        let with_toa = awaits_toa(c);
        let method = c.method;
        let ends = ends_of(c);
        c.count_to_dest(self.id, dir, || meta.ip_total_len());
        if !OPENING {
            self.director.on_packet(id, dir, meta.tcp_flags, at.now);
        }

        // Where the rewritten packet goes decides the MTU and the source of a tunnel.
        // The answer is read where it lies in the egress cache (copied out,
        // an established packet cost 9 instructions more), borrowed by field
        // so that the counters stay at hand; the arms that call back into
        // the worker copy it first.
        let to = ends.destination(dir);
        let (live, net) = (&self.routes, &self.net);
        let resolved =
            self.egress_cache.resolve(to, at.now, &self.neighbours, |to| route(live, &net.routes, &net.ports, to));
        let Some(mut out) = resolved else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let copied: Resolved<Ipv4Addr>;
        let result = match Rewrite::of(method, dir, &ends) {
            // Its own path: the connection's numbers shift, the header goes in.
            Rewrite::Translate(endpoints) if HEADER => {
                let (leg, out) = (Leg { id, dir }, *out);
                return self.forward_with_header(frame, meta, leg, proxy, endpoints, out, at, io);
            }
            Rewrite::Translate(endpoints) => {
                // Two copies: unproxied connections get the rewrite without the
                // delta arithmetic compiled in.
                let translated = match proxy {
                    Proxy::Deltas { seq, ts } => {
                        let shift = Shift::proxied(seq, ts.unwrap_or(0), dir);
                        endpoints.translate(&mut frame, &mut meta, shift, with_toa, out.egress)
                    }
                    _ => endpoints.translate(&mut frame, &mut meta, Shift::NONE, with_toa, out.egress),
                };
                translated.map(|outcome| {
                    // The packet still goes, without the client address: count it.
                    if !matches!(outcome, ToaOutcome::Inserted | ToaOutcome::NotRequested) {
                        self.counters.toa_not_inserted.inc();
                    }
                })
            }
            Rewrite::OnLink => {
                copied = out.on_link(to);
                out = &copied;
                Ok(())
            }
            Rewrite::Encapsulate => {
                copied = *out;
                out = &copied;
                let Some(encap) = self.tunnel(&out.hop, to, out.egress.mtu) else {
                    return self.discard(frame, Discard::NoRoute, io);
                };
                xmit::tun::encapsulate(&mut frame, &mut meta, &encap, out.egress.offload)
            }
            Rewrite::Bypassed => return self.discard(frame, Discard::NoConnection, io),
        };
        // A refused rewrite changed neither the frame nor `meta`.
        if let Err(e) = result {
            return self.refuse(frame, &meta, e, at, io);
        }
        // As `send_resolved` sends, the usual case here, with the answer in place.
        if let Some(macs) = out.macs {
            return send_to_neighbour(&self.counters, frame, out.hop.port, macs, io);
        }
        let out = *out;
        self.send_resolved(frame, out, at.now, io);
    }

    /// [`Worker::rewrite_with`] for FNAT's lane (see [`Worker::forward_found`]):
    /// both ends replaced, no shift, no TOA; compiled once for each
    /// direction (`IN`), so that which fields are read, which counter
    /// counts and how the state moves are constants. What the rewrite needs
    /// is read from the entry after the state moved, not copied before and
    /// kept across it, and the frame's bytes are taken once for the rewrite
    /// and the Ethernet addresses ([`xmit::translate_and_address`]).
    /// `measure_pipeline.sh`: an established packet 34 instructions fewer, a
    /// reply 38, than through `rewrite_with`.
    #[inline(always)]
    fn forward_fnat<const IN: bool>(
        &mut self,
        mut frame: F,
        meta: Ipv4Meta,
        id: ConnId,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let dir = if IN { Direction::In } else { Direction::Out };
        self.director.on_packet(id, dir, meta.tcp_flags, at.now);
        let c = self.director.conn(id);
        c.count_to_dest(self.id, dir, || meta.ip_total_len());
        let to = match dir {
            Direction::In => c.raddr,
            Direction::Out => c.client,
        };
        let (live, net) = (&self.routes, &self.net);
        let resolved =
            self.egress_cache.resolve(to, at.now, &self.neighbours, |to| route(live, &net.routes, &net.ports, to));
        let Some(out) = resolved else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let new = fnat_ends(c, dir);
        if let Some(macs) = &out.macs {
            let port = out.hop.port;
            return match xmit::translate_and_address(&mut frame, &meta, out.egress.offload, new, macs) {
                Ok(()) => send_on_port(&self.counters, port, frame, io),
                Err(e) => self.refuse(frame, &meta, e, at, io),
            };
        }
        let out = *out;
        if let Err(e) = xmit::translate_to(&mut frame, &meta, out.egress.offload, new) {
            return self.refuse(frame, &meta, e, at, io);
        }
        self.send_resolved(frame, out, at.now, io);
    }

    /// Drops a packet the rewrite refused, counted, answering it with the ICMP
    /// error a router would send: time exceeded, or fragmentation needed for a
    /// DF packet that outgrew the link. `received` describes the packet as it
    /// arrived (a refused rewrite leaves the frame unchanged).
    pub(super) fn refuse(&mut self, mut frame: F, received: &Ipv4Meta, e: XmitError, at: Arrival, io: &mut impl Io<F>) {
        self.counters.count(e.drop_reason().into());
        let error = match e {
            XmitError::TtlExpired { .. } => OriginatedError::TimeExceeded,
            XmitError::MtuExceeded { len, mtu } if dont_fragment(&frame, received) => {
                // The sender's packet must shrink by what we would add to it.
                let overhead = len.saturating_sub(received.ip_total_len());
                OriginatedError::FragmentationNeeded { next_hop_mtu: mtu.saturating_sub(overhead as u16).max(68) }
            }
            _ => return io.free(frame),
        };
        let offending = frame.data().get(received.l3_offset()..).unwrap_or(&[]);
        let (Some(from), Ok(_)) = (self.net.source_on(at.port), error_destination(offending)) else {
            return io.free(frame);
        };
        if !self.icmp_errors.allow(u64::from(at.now) * 1000) {
            self.counters.icmp_errors_limited.inc();
            return io.free(frame);
        }
        if xmit::icmp_error::error_reply(&mut frame, received, from, error).is_err() {
            return io.free(frame);
        }
        self.counters.icmp_errors_sent.inc();
        self.send_on_port(at.port, frame, io);
    }

    /// An ICMP error to a VIP or local address another director holds now:
    /// forwarded like any other when it is about a connection still here,
    /// else dropped as `not_held` (no kernel interface carries the address
    /// either, so it is nobody's).
    #[cold]
    #[inline(never)]
    pub(super) fn forward_icmp_error_unheld(&mut self, frame: F, meta: Ipv4Meta, at: Arrival, io: &mut impl Io<F>) {
        let about_a_connection =
            matches!(quoted_flow(&frame, &meta), Ok(Some(key)) if self.director.lookup(&key).is_some());
        if !about_a_connection {
            return self.discard(frame, Discard::NotHeld, io);
        }
        self.forward_icmp_error(frame, meta, at, io)
    }

    /// An ICMP error about a packet of one of our connections (a real server's
    /// port unreachable, a router's fragmentation needed on the way to the
    /// client): rewritten as the connection rewrites and passed to the other
    /// side, which recognises its own packet in the quote (IPVS `ip_vs_in_icmp`
    /// and `ip_vs_out_icmp`). Path MTU discovery through the gateway rests on it.
    /// An error about no connection of ours (the kernel's own traffic) goes
    /// to the port's kernel interface, if it has one.
    pub(super) fn forward_icmp_error(&mut self, mut frame: F, mut meta: Ipv4Meta, at: Arrival, io: &mut impl Io<F>) {
        let key = match quoted_flow(&frame, &meta) {
            Ok(Some(key)) => key,
            Ok(None) => return self.hand_to_kernel_or_discard(frame, KernelClass::Bulk, Discard::NoConnection, at, io),
            Err(reason) => return self.discard(frame, reason.into(), io),
        };
        let Some((id, dir)) = self.director.lookup(&key) else {
            if let Some(id) = self.nat64_of(&key) {
                return self.nat64_error_to_client(frame, meta, id, at, io);
            }
            // The quote is of a packet we sent from (key.dst, key.dport).
            if self.answers_probe(key.dst, key.dport) {
                return self.hand_to_prober(frame, io);
            }
            return self.hand_to_kernel_or_discard(frame, KernelClass::Bulk, Discard::NoConnection, at, io);
        };
        let c = self.director.conn(id);
        let (ends, method) = (ends_of(c), c.method);
        // From the server's side, about a client segment a PROXY header
        // shifted: its quote goes back into the client's numbering.
        let header = dir == Direction::Out && c.has_proxy_header();
        let quote = || icmp_error_inner(frame.data(), &meta).ok().and_then(|q| quoted_tcp_seq(frame.data(), &q));
        let inner_seq_delta = match header.then(quote).flatten() {
            Some(seq) => self.director.header_mut(id).map_or(0, |h| h.quoted_delta(seq)),
            None => 0,
        };
        let to = ends.destination(dir);
        let Some(mut out) = self.resolve(to, at.now) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let result = match Rewrite::of(method, dir, &ends) {
            Rewrite::Translate(endpoints) => {
                let rw = IcmpErrorRewrite { inner_seq_delta, ..endpoints.icmp_error() };
                xmit::icmp_error::rewrite(&mut frame, &mut meta, &rw, out.egress.offload)
            }
            // The real server sent the quoted packet itself (from the VIP): it
            // gets the error as the client's packets reach it.
            Rewrite::OnLink => {
                out = out.on_link(to);
                Ok(())
            }
            Rewrite::Encapsulate => {
                let Some(encap) = self.tunnel(&out.hop, to, out.egress.mtu) else {
                    return self.discard(frame, Discard::NoRoute, io);
                };
                xmit::tun::encapsulate(&mut frame, &mut meta, &encap, out.egress.offload)
            }
            Rewrite::Bypassed => return self.discard(frame, Discard::NoConnection, io),
        };
        if let Err(e) = result {
            return self.discard(frame, e.drop_reason().into(), io);
        }
        self.counters.icmp_errors_relayed.inc();
        self.send_resolved(frame, out, at.now, io);
    }

    /// The next hop toward `to`, with the MTU and offloads of its port.
    #[inline(always)]
    pub(super) fn egress(&self, to: Ipv4Addr) -> Option<(NextHop, Egress)> {
        route(&self.routes, &self.net.routes, &self.net.ports, to).map(|(hop, egress, _)| (hop, egress))
    }

    /// [`Worker::egress`] and the next hop's MAC, from the egress cache (see
    /// [`super::egress`]) when it answers.
    #[inline(always)]
    pub(super) fn resolve(&mut self, to: Ipv4Addr, now: u32) -> Option<Resolved<Ipv4Addr>> {
        let (live, net) = (&self.routes, &self.net);
        self.egress_cache.resolve(to, now, &self.neighbours, |to| route(live, &net.routes, &net.ports, to)).copied()
    }

    /// Sends the frame where `out` says: straight to the next hop's MAC when
    /// known, else by [`Worker::send_via`] (which queues it for ARP).
    #[inline(always)]
    pub(super) fn send_resolved(&mut self, frame: F, out: Resolved<Ipv4Addr>, now: u32, io: &mut impl Io<F>) {
        match out.macs {
            Some(macs) => send_to_neighbour(&self.counters, frame, out.hop.port, macs, io),
            None => self.send_via(frame, out.hop, now, io),
        }
    }

    /// The IP-in-IP header toward `dst` through `hop`: from the route's
    /// source, else our first address on the port; `None` without either.
    fn tunnel(&mut self, hop: &NextHop, dst: Ipv4Addr, mtu: u16) -> Option<TunEncap> {
        let src = hop.src.or_else(|| self.net.source_on(hop.port))?;
        self.ident = self.ident.wrapping_add(1);
        Some(TunEncap { src: src.into(), dst: dst.into(), ttl: 64, ident: self.ident, mtu })
    }

    /// Sends the frame to next hop `hop`, or queues it while the neighbour
    /// resolves.
    pub(super) fn send_via(&mut self, frame: F, hop: NextHop, now: u32, io: &mut impl Io<F>) {
        let Some(src_mac) = self.net.ports.get(usize::from(hop.port)).map(|p| p.mac) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        if let Some(n) = self.neighbours.lookup(hop.addr, now) {
            return send_to_neighbour(&self.counters, frame, hop.port, EthAddrs::new(n.mac, src_mac), io);
        }
        match self.pending.push(hop.addr, frame, now) {
            Queued::First => self.send_arp_request(hop.port, hop.addr, io),
            Queued::Behind => {}
            Queued::Full(frame) => self.discard(frame, Discard::NeighbourQueueFull, io),
        }
    }
}

/// The path a packet of a found connection takes ([`Worker::forward_found`]):
/// chosen where the lookup found the connection, from the entry it holds (the
/// connection looked up again by its id was checked against the table's
/// bounds again: `measure_pipeline.sh`, 4 instructions an established
/// packet, 6 a reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// FNAT's lane, the client's packet ([`Worker::forward_fnat`]).
    FnatIn,
    /// FNAT's lane, the server's packet.
    FnatOut,
    /// Any other: [`Worker::forward`].
    General,
}

impl Lane {
    /// The path of connection `c`'s packet going `dir`.
    #[inline(always)]
    pub(super) fn of(c: &Conn<Ipv4Addr>, dir: Direction) -> Lane {
        if c.method != ForwardMethod::FullNat || !c.is_plain() {
            return Lane::General;
        }
        match dir {
            Direction::Out => Lane::FnatOut,
            // Not `awaits_toa`, written out with the state first, which
            // settles it for nearly every packet: through the function, an
            // established packet took 6 instructions more
            // (`measure_pipeline.sh`).
            Direction::In if c.state() == State::Established || c.proto != Protocol::Tcp => Lane::FnatIn,
            Direction::In => Lane::General,
        }
    }
}

/// Whether the client's packets of connection `c` carry its address to the
/// real server in a TOA (when the mode has one: FNAT): a TCP connection's
/// until it is established, as the toa module reads it from the packet that
/// completes the handshake.
#[inline(always)]
fn awaits_toa(c: &Conn<Ipv4Addr>) -> bool {
    c.proto == Protocol::Tcp && c.state() != State::Established
}

/// Whether the client's packet with `tcp_flags` that opened connection `c`
/// would leave it as the table filed it, so that accounting the packet to it
/// changes nothing: the state (a TCP connection opens in SYN_RECV, which a
/// SYN keeps; a UDP one has one state) and so the deadline.
pub(super) fn opened_by<A: crate::conn::Family>(c: &Conn<A>, tcp_flags: u8) -> bool {
    c.proto != Protocol::Tcp
        || crate::conn::tcp_transition(c.state(), Direction::In, c.method.sees_replies(), tcp_flags) == c.state()
}

/// The endpoints of connection `c`, as its packets are rewritten.
#[inline(always)]
fn ends_of(c: &Conn<Ipv4Addr>) -> Ends {
    Ends {
        client: (c.client, c.cport),
        virtual_service: (c.vaddr, c.vport),
        local: (c.laddr, c.lport),
        real_server: (c.raddr, c.rport),
    }
}

/// The ends an FNAT connection's packet going `dir` is given:
/// [`Rewrite::of`]'s for FNAT, as the wire carries them.
#[inline(always)]
fn fnat_ends(c: &Conn<Ipv4Addr>, dir: Direction) -> WireEnds {
    let ((src, sport), (dst, dport)) = match dir {
        Direction::In => ((c.laddr, c.lport), (c.raddr, c.rport)),
        Direction::Out => ((c.vaddr, c.vport), (c.client, c.cport)),
    };
    WireEnds::between((src.octets(), sport), (dst.octets(), dport))
}

/// Whether the packet `meta` describes has DF set.
fn dont_fragment<F: Frame>(frame: &F, meta: &Ipv4Meta) -> bool {
    let at = meta.l3_offset() + ipv4::offset::FLAGS_FRAG;
    frame.data().get(at..at + 2).is_some_and(|b| u16::from_be_bytes([b[0], b[1]]) & ipv4::FLAG_DF != 0)
}

/// The TCP sequence number of the segment an ICMP or ICMPv6 error quotes
/// (`quote`, in the error's frame `data`), if it quotes one.
pub(super) fn quoted_tcp_seq(data: &[u8], quote: &IcmpQuote) -> Option<u32> {
    if quote.tuple.protocol != ip_proto::TCP {
        return None;
    }
    let at = quote.l3_offset + quote.l3_len + crate::wire::tcp::offset::SEQ;
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The connection key of the packet an ICMP error quotes, as the connection
/// receives it: the quote is a packet the gateway sent, its reverse a packet
/// of the connection. `None` when the quote is of no protocol or address
/// family the datapath tracks; an error when it is malformed.
fn quoted_flow<F: Frame>(frame: &F, meta: &Ipv4Meta) -> Result<Option<FlowKey<Ipv4Addr>>, DropReason> {
    let quote = icmp_error_inner(frame.data(), meta)?.tuple;
    Ok(match (Protocol::from_number(quote.protocol), quote.src, quote.dst) {
        (Some(proto), IpAddr::V4(qsrc), IpAddr::V4(qdst)) => {
            Some(FlowKey { proto, src: qdst, sport: quote.dst_port, dst: qsrc, dport: quote.src_port })
        }
        _ => None,
    })
}
