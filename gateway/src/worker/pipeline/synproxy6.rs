//! The SYN proxy for IPv6 connections: IPv4's steps ([`super::synproxy`])
//! on the IPv6 director and its rewrite. The cookies, the segments built in
//! place and the handshake slab are the family-generic ones of
//! [`crate::synproxy`] (an IPv6 cookie binds both 16-byte addresses and
//! carries an MSS of Linux's IPv6 table); the settings, the keys and the
//! counters are the worker's one SYN proxy's. IPv6 handshakes have their own
//! slab, whose slots the IPv6 connection table names.

use std::net::IpAddr;

use super::dispatch::refusal_drop;
use super::synproxy::copy_frame;
use super::{Arrival, Io, Leg, Worker};
use crate::conn::{ConnId, Direction, FlowKey, Proxy};
use crate::frame::Frame;
use crate::model::Protocol;
use crate::synproxy::{
    parse_client_ack, parse_server_synack, reset_in_place, server_syn_in_place, synack_in_place, Handshake, InvalidAck,
    ProxyDeltas,
};
use crate::wire::tcp::flags as tcp_flags;
use crate::wire::{DropReason, Ipv6Meta};
use crate::worker::counters::Discard;
use crate::xmit::Offload;

impl<F: Frame> Worker<F> {
    /// Whether the SYN proxy answers the service of this IPv6 TCP packet.
    #[inline(always)]
    pub(super) fn proxies6(&self, meta: &Ipv6Meta) -> bool {
        self.any_proxied && self.proxies_service_of6(meta)
    }

    #[inline(never)]
    fn proxies_service_of6(&self, meta: &Ipv6Meta) -> bool {
        // An address another director holds gets no cookie from us.
        !self.v6.addrs.is_unheld(meta.dst)
            && self
                .v6
                .director
                .snapshot()
                .find(Protocol::Tcp, IpAddr::V6(meta.dst), meta.dst_port)
                .is_some_and(|id| self.service_proxied(id))
    }

    /// [`Worker::synproxy_reopens`] for an IPv6 connection.
    #[cold]
    pub(super) fn synproxy_reopens6(&self, id: ConnId, frame: &F, meta: &Ipv6Meta) -> bool {
        self.v6.director.conn(id).proxy() != Proxy::Off
            && meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::ACK
            && parse_client_ack(frame, meta).is_ok_and(|ack| ack.check(meta, &self.synproxy.cookies).is_ok())
    }

    /// An IPv6 TCP packet of no connection to a service the SYN proxy
    /// answers: a SYN gets the cookie SYN-ACK, an ACK is checked.
    #[inline(never)]
    pub(super) fn synproxy_first6(&mut self, mut frame: F, mut meta: Ipv6Meta, at: Arrival, io: &mut impl Io<F>) {
        let (in_port, now) = (at.port, at.now);
        match meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) {
            tcp_flags::SYN => {
                let offload = self.port_offload(in_port);
                let p = &self.synproxy;
                match synack_in_place(
                    &mut frame,
                    &mut meta,
                    &p.cookies,
                    &p.settings.synack,
                    now.wrapping_mul(1000),
                    offload,
                ) {
                    Ok(_) => {
                        self.counters.synproxy.syn_acks_sent.inc();
                        self.send_on_port(in_port, frame, io);
                    }
                    Err(e) => self.discard(frame, e.drop_reason().into(), io),
                }
            }
            tcp_flags::ACK => self.synproxy_ack6(frame, meta, at, io),
            _ => self.discard(frame, Discard::NoConnection, io),
        }
    }

    /// The client's ACK that may complete a handshake with us.
    fn synproxy_ack6(&mut self, mut frame: F, meta: Ipv6Meta, at: Arrival, io: &mut impl Io<F>) {
        let (in_port, now) = (at.port, at.now);
        let ack = match parse_client_ack(&frame, &meta) {
            Ok(ack) => ack,
            Err(e) => return self.discard(frame, e.drop_reason().into(), io),
        };
        let Ok(decoded) = ack.check(&meta, &self.synproxy.cookies) else {
            self.counters.synproxy.cookies_invalid.inc();
            return self.synproxy_refuse6(frame, meta, in_port, io);
        };
        self.counters.synproxy.cookies_valid.inc();
        if self.synproxy.handshakes6.is_full() {
            return self.discard(frame, Discard::SynProxyBusy, io);
        }
        let Some(copy) = copy_frame(&frame, io) else {
            return self.discard(frame, Discard::NoMbuf, io);
        };
        let key =
            FlowKey { proto: Protocol::Tcp, src: meta.src, sport: meta.src_port, dst: meta.dst, dport: meta.dst_port };
        let id = match self.open6(&key, None, self.v6.director.conns().hash_of(&key), now) {
            Ok(id) => id,
            Err(refused) => {
                io.free(copy);
                return self.discard(frame, refusal_drop(refused), io);
            }
        };
        let mut syn_meta = meta;
        // Built with software checksums: the mode's rewrite updates or offloads them.
        if let Err(e) = server_syn_in_place(&mut frame, &mut syn_meta, &ack, &decoded, Offload::NONE) {
            io.free(copy);
            self.v6.director.end_now(id);
            return self.discard(frame, e.drop_reason().into(), io);
        }
        let handshake = Handshake::new(id, ack, decoded, (copy, meta), in_port, now);
        let slot = match self.synproxy.handshakes6.insert(handshake) {
            Ok(slot) => slot,
            Err(h) => {
                h.into_packets().for_each(|(f, _)| io.free(f));
                self.v6.director.end_now(id);
                return self.discard(frame, Discard::SynProxyBusy, io);
            }
        };
        self.rewrite_and_send6(frame, syn_meta, Leg { id, dir: Direction::In }, Proxy::Off, at, io);
        self.v6.director.set_proxy(id, Proxy::Handshake(slot));
    }

    /// An ACK whose cookie failed: dropped, or answered with a RST.
    fn synproxy_refuse6(&mut self, mut frame: F, mut meta: Ipv6Meta, in_port: u16, io: &mut impl Io<F>) {
        if self.synproxy.settings.invalid_ack == InvalidAck::Drop {
            return self.discard(frame, Discard::SynProxyBadCookie, io);
        }
        let offload = self.port_offload(in_port);
        match reset_in_place(&mut frame, &mut meta, self.synproxy.settings.synack.ttl, offload) {
            Ok(()) => self.send_on_port(in_port, frame, io),
            Err(e) => self.discard(frame, e.drop_reason().into(), io),
        }
    }

    /// A packet of an IPv6 connection whose server has not answered yet.
    #[cold]
    #[inline(never)]
    pub(super) fn synproxy_handshaking6(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        leg: Leg,
        slot: u32,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let id = leg.id;
        if self.synproxy.handshakes6.get_mut(slot).is_none_or(|h| h.conn != id) {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        }
        let reset = meta.tcp_flags & tcp_flags::RST != 0;
        match leg.dir {
            Direction::In if reset => {
                // The client gives up: the server's half-open connection goes too.
                self.synproxy_close6(slot, io);
                self.v6.director.set_proxy(id, Proxy::Off);
                self.rewrite_and_send6(frame, meta, leg, Proxy::Off, at, io);
            }
            Direction::In => {
                let held = self.synproxy.handshakes6.get_mut(slot).map(|h| h.hold((frame, meta)));
                if let Some(Err((frame, _))) = held {
                    self.discard(frame, Discard::SynProxyHoldFull, io);
                }
            }
            Direction::Out if reset => self.synproxy_server_reset6(frame, meta, id, slot, at, io),
            Direction::Out => self.synproxy_server_synack6(frame, meta, id, slot, at.now, io),
        }
    }

    /// The server answers our SYN: the connection is established on both sides.
    fn synproxy_server_synack6(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        id: ConnId,
        slot: u32,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        let Ok(synack) = parse_server_synack(&frame, &meta) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        let Some(h) = self.synproxy.handshakes6.get_mut(slot).filter(|h| synack.ack == h.ack.isn.wrapping_add(1))
        else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        if h.decoded.wscale.is_some() && synack.options.wscale != self.synproxy.settings.synack.wscale {
            self.counters.synproxy.wscale_mismatches.inc();
        }
        let Some(h) = self.synproxy.handshakes6.remove(slot) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        let deltas = ProxyDeltas::new(h.ack.cookie, h.ack.timestamps.map(|(_, tsecr)| tsecr), &synack);
        let proxy = Proxy::Deltas { seq: deltas.seq, ts: deltas.ts };
        self.v6.director.set_proxy(id, proxy);
        self.counters.synproxy.server_handshakes.inc();
        self.v6.director.conn(id).count_to_dest(self.id, Direction::Out, || meta.ip_total_len());
        self.v6.director.on_packet(id, Direction::Out, meta.tcp_flags, now);
        // Consumed: the client's own ACK answers it.
        io.free(frame);
        let (leg, at) = (Leg { id, dir: Direction::In }, Arrival { port: h.in_port, now });
        for (frame, meta) in h.into_packets() {
            self.rewrite_and_send6(frame, meta, leg, proxy, at, io);
        }
    }

    /// The server refuses our SYN: the client gets the RST in our numbering.
    fn synproxy_server_reset6(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        id: ConnId,
        slot: u32,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let seq_at = meta.l4_offset() + crate::wire::tcp::offset::SEQ;
        let Some(seq) = frame.data().get(seq_at..seq_at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        else {
            return self.discard(frame, DropReason::Truncated.into(), io);
        };
        let Some(cookie) = self.synproxy.handshakes6.get_mut(slot).map(|h| h.ack.cookie) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        self.synproxy_close6(slot, io);
        self.counters.synproxy.server_resets.inc();
        let proxy = Proxy::Deltas { seq: cookie.wrapping_add(1).wrapping_sub(seq), ts: None };
        self.v6.director.set_proxy(id, proxy);
        self.rewrite_and_send6(frame, meta, Leg { id, dir: Direction::Out }, proxy, at, io);
    }

    /// Ends IPv6 handshake `slot`, freeing what it held.
    fn synproxy_close6(&mut self, slot: u32, io: &mut impl Io<F>) {
        if let Some(h) = self.synproxy.handshakes6.remove(slot) {
            h.into_packets().for_each(|(f, _)| io.free(f));
        }
    }

    /// The IPv6 SYNs due again (from [`Worker::synproxy_tick`], which has
    /// moved the cookies' period).
    pub(super) fn synproxy_tick6(&mut self, now: u32, io: &mut impl Io<F>) {
        if self.synproxy.handshakes6.is_empty() {
            return;
        }
        let mut due = std::mem::take(&mut self.synproxy.due);
        self.synproxy.handshakes6.due(now, &mut due);
        for &slot in &due {
            let Some(h) = self.synproxy.handshakes6.get_mut(slot) else { continue };
            let id = h.conn;
            if self.v6.director.conn(id).proxy() != Proxy::Handshake(slot) {
                self.synproxy_close6(slot, io);
                continue;
            }
            if h.retransmits < self.synproxy.settings.syn_retries {
                h.retransmitted(now);
                let (ack, decoded, in_port, mut meta) = (h.ack, h.decoded, h.in_port, h.client_ack.1);
                let Some(mut syn) = copy_frame(&h.client_ack.0, io) else {
                    self.counters.count(Discard::NoMbuf);
                    continue;
                };
                if let Err(e) = server_syn_in_place(&mut syn, &mut meta, &ack, &decoded, Offload::NONE) {
                    self.discard(syn, e.drop_reason().into(), io);
                    continue;
                }
                self.counters.synproxy.syn_retransmits.inc();
                let (leg, at) = (Leg { id, dir: Direction::In }, Arrival { port: in_port, now });
                self.rewrite_and_send6(syn, meta, leg, Proxy::Off, at, io);
            } else {
                self.synproxy_give_up6(slot, id, io);
            }
        }
        self.synproxy.due = due;
    }

    /// The server never answered: the connection ends and the client is reset.
    fn synproxy_give_up6(&mut self, slot: u32, id: ConnId, io: &mut impl Io<F>) {
        let Some(h) = self.synproxy.handshakes6.remove(slot) else { return };
        self.counters.synproxy.server_timeouts.inc();
        let in_port = h.in_port;
        let mut packets = h.into_packets();
        let client_ack = packets.next();
        packets.for_each(|(f, _)| io.free(f));
        self.v6.director.end_now(id);
        if let Some((mut frame, mut meta)) = client_ack {
            let offload = self.port_offload(in_port);
            match reset_in_place(&mut frame, &mut meta, self.synproxy.settings.synack.ttl, offload) {
                Ok(()) => self.send_on_port(in_port, frame, io),
                Err(e) => self.discard(frame, e.drop_reason().into(), io),
            }
        }
    }
}
