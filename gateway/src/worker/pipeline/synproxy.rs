//! The SYN proxy in the pipeline: when the cookies and handshake segments of
//! [`crate::synproxy`] are used, and what a proxied connection does until its
//! server has answered.
//!
//! - A client's SYN to a proxied service becomes our SYN-ACK (the cookie),
//!   sent back out of the port it came in on. Nothing is kept.
//! - A client's ACK of no connection is checked. A valid cookie opens the
//!   connection (scheduled like any other), files a [`Handshake`] holding a
//!   copy of the ACK, and the ACK itself becomes the SYN to the server,
//!   rewritten for the connection's mode like any inbound packet.
//! - Until the server answers, client packets wait in the handshake (a few;
//!   more are dropped and counted, and the client resends them); the SYN is
//!   resent after 1 to 2 s, then 2, 4 ... s, and after the last retry the connection is
//!   given up and the client reset.
//! - The server's SYN-ACK fixes the [`ProxyDeltas`]; it is consumed, and the
//!   client's ACK, shifted into the server's numbering, completes the
//!   server's handshake (carrying the TOA in FNAT), followed by what waited.
//!   A RST from the server reaches the client shifted to our numbering.
//!
//! From then on [`Proxy::Deltas`] rides in the connection entry and
//! `Worker::rewrite_and_send` applies it to every packet.

use std::net::IpAddr;

use super::dispatch::{flow_key, refusal_drop};
use super::{Arrival, Io, Leg, Worker};
use crate::conn::{ConnId, Direction, Proxy};
use crate::frame::Frame;
use crate::model::snapshot::ServiceId;
use crate::model::Protocol;
use crate::synproxy::{
    parse_client_ack, parse_server_synack, reset_in_place, server_syn_in_place, synack_in_place, Handshake, Handshakes,
    InvalidAck, ProxyDeltas, Settings, SynCookies,
};
use crate::wire::tcp::flags as tcp_flags;
use crate::wire::{DropReason, Ipv4Meta, Ipv6Meta};
use crate::worker::counters::Discard;
use crate::xmit::Offload;

/// A worker's SYN proxy: its settings, the cookies (keys for the current
/// and previous periods) and the handshakes it has open, a slab per family
/// (each connection table names slots of its own family's).
pub(super) struct SynProxy<F> {
    pub(super) settings: Settings,
    pub(super) cookies: SynCookies,
    handshakes: Handshakes<F>,
    pub(super) handshakes6: Handshakes<F, Ipv6Meta>,
    /// Scratch for the handshakes due at a tick.
    pub(super) due: Vec<u32>,
}

impl<F> SynProxy<F> {
    pub(super) fn new(settings: &Settings, now: u32) -> Self {
        let mut cookies = SynCookies::new(settings.seed);
        cookies.rotate(u64::from(now));
        SynProxy {
            settings: *settings,
            cookies,
            handshakes: Handshakes::new(settings.handshakes),
            handshakes6: Handshakes::new(settings.handshakes),
            due: Vec::with_capacity(settings.handshakes as usize),
        }
    }
}

impl<F: Frame> Worker<F> {
    /// Whether the SYN proxy answers the service of this TCP packet.
    #[inline(always)]
    pub(super) fn proxies(&self, meta: &Ipv4Meta) -> bool {
        self.any_proxied && self.proxies_service_of(meta)
    }

    /// [`Worker::proxies`] once some service is. Out of line: the service
    /// lookup would crowd the forwarding path.
    #[inline(never)]
    fn proxies_service_of(&self, meta: &Ipv4Meta) -> bool {
        // An address another director holds gets no cookie from us.
        !self.addrs.is_unheld(meta.dst)
            && self
                .director
                .snapshot()
                .find(Protocol::Tcp, IpAddr::V4(meta.dst), meta.dst_port)
                .is_some_and(|id| self.service_proxied(id))
    }

    /// Whether the SYN proxy answers service `id` of the current snapshot
    /// (`proxied` has an entry for each; an id of no snapshot is answered no).
    pub(super) fn service_proxied(&self, id: ServiceId) -> bool {
        self.proxied.get(id as usize) == Some(&true)
    }

    /// Whether a client packet on the ports of finished proxied connection
    /// `id` is instead the cookie ACK of a new connection (its SYN was
    /// answered without a lookup, so nothing ended the old one).
    #[cold]
    pub(super) fn synproxy_reopens(&self, id: ConnId, frame: &F, meta: &Ipv4Meta) -> bool {
        self.director.conn(id).proxy() != Proxy::Off
            && meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::ACK
            && parse_client_ack(frame, meta).is_ok_and(|ack| ack.check(meta, &self.synproxy.cookies).is_ok())
    }

    /// A TCP packet of no connection to a service the SYN proxy answers.
    /// Out of line: the forwarding path stays as tight as without a proxy.
    #[inline(never)]
    pub(super) fn synproxy_first(&mut self, mut frame: F, mut meta: Ipv4Meta, at: Arrival, io: &mut impl Io<F>) {
        let (in_port, now) = (at.port, at.now);
        match meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) {
            tcp_flags::SYN => {
                let offload = self.port_offload(in_port);
                let p = &self.synproxy;
                // Our TSval only has to be at most the TSvals the client sees
                // later (the server's, shifted from this one): whole seconds do.
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
            tcp_flags::ACK => self.synproxy_ack(frame, meta, at, io),
            _ => self.discard(frame, Discard::NoConnection, io),
        }
    }

    /// The client's ACK that may complete a handshake with us.
    fn synproxy_ack(&mut self, mut frame: F, meta: Ipv4Meta, at: Arrival, io: &mut impl Io<F>) {
        let (in_port, now) = (at.port, at.now);
        let ack = match parse_client_ack(&frame, &meta) {
            Ok(ack) => ack,
            Err(e) => return self.discard(frame, e.drop_reason().into(), io),
        };
        let Ok(decoded) = ack.check(&meta, &self.synproxy.cookies) else {
            self.counters.synproxy.cookies_invalid.inc();
            return self.synproxy_refuse(frame, meta, in_port, io);
        };
        self.counters.synproxy.cookies_valid.inc();
        if self.synproxy.handshakes.is_full() {
            return self.discard(frame, Discard::SynProxyBusy, io);
        }
        let Some(copy) = copy_frame(&frame, io) else {
            return self.discard(frame, Discard::NoMbuf, io);
        };
        let key = flow_key(Protocol::Tcp, &meta);
        let id = match self.open(&key, None, self.director.conns().hash_of(&key), now) {
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
            self.director.end_now(id);
            return self.discard(frame, e.drop_reason().into(), io);
        }
        let handshake = Handshake::new(id, ack, decoded, (copy, meta), in_port, now);
        let slot = match self.synproxy.handshakes.insert(handshake) {
            Ok(slot) => slot,
            // Checked above, but a full slab must not lose the frames.
            Err(h) => {
                h.into_packets().for_each(|(f, _)| io.free(f));
                self.director.end_now(id);
                return self.discard(frame, Discard::SynProxyBusy, io);
            }
        };
        self.rewrite_and_send(frame, syn_meta, Leg { id, dir: Direction::In }, Proxy::Off, at, io);
        self.director.set_proxy(id, Proxy::Handshake(slot));
    }

    /// An ACK whose cookie failed: dropped, or answered with a RST.
    fn synproxy_refuse(&mut self, mut frame: F, mut meta: Ipv4Meta, in_port: u16, io: &mut impl Io<F>) {
        if self.synproxy.settings.invalid_ack == InvalidAck::Drop {
            return self.discard(frame, Discard::SynProxyBadCookie, io);
        }
        let offload = self.port_offload(in_port);
        match reset_in_place(&mut frame, &mut meta, self.synproxy.settings.synack.ttl, offload) {
            Ok(()) => self.send_on_port(in_port, frame, io),
            Err(e) => self.discard(frame, e.drop_reason().into(), io),
        }
    }

    /// A packet of a connection whose server has not answered yet.
    #[cold]
    #[inline(never)]
    pub(super) fn synproxy_handshaking(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        leg: Leg,
        slot: u32,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let id = leg.id;
        // A slot and its connection part together; a mismatch would be a bug,
        // and the packet is not lost silently.
        if self.synproxy.handshakes.get_mut(slot).is_none_or(|h| h.conn != id) {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        }
        let reset = meta.tcp_flags & tcp_flags::RST != 0;
        match leg.dir {
            Direction::In if reset => {
                // The client gives up: the server's half-open connection goes too.
                self.synproxy_close(slot, io);
                self.director.set_proxy(id, Proxy::Off);
                self.rewrite_and_send(frame, meta, leg, Proxy::Off, at, io);
            }
            Direction::In => {
                let held = self.synproxy.handshakes.get_mut(slot).map(|h| h.hold((frame, meta)));
                if let Some(Err((frame, _))) = held {
                    self.discard(frame, Discard::SynProxyHoldFull, io);
                }
            }
            Direction::Out if reset => self.synproxy_server_reset(frame, meta, id, slot, at, io),
            Direction::Out => self.synproxy_server_synack(frame, meta, id, slot, at.now, io),
        }
    }

    /// The server answers our SYN: the connection is established on both sides.
    fn synproxy_server_synack(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        id: ConnId,
        slot: u32,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        let Ok(synack) = parse_server_synack(&frame, &meta) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        let Some(h) = self.synproxy.handshakes.get_mut(slot).filter(|h| synack.ack == h.ack.isn.wrapping_add(1)) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        // The client scales the server's windows by the shift our SYN-ACK
        // announced: a server using another one breaks that contract.
        if h.decoded.wscale.is_some() && synack.options.wscale != self.synproxy.settings.synack.wscale {
            self.counters.synproxy.wscale_mismatches.inc();
        }
        let Some(h) = self.synproxy.handshakes.remove(slot) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        let deltas = ProxyDeltas::new(h.ack.cookie, h.ack.timestamps.map(|(_, tsecr)| tsecr), &synack);
        let proxy = Proxy::Deltas { seq: deltas.seq, ts: deltas.ts };
        self.director.set_proxy(id, proxy);
        self.counters.synproxy.server_handshakes.inc();
        self.director.conn(id).count_to_dest(self.id, Direction::Out, || meta.ip_total_len());
        self.director.on_packet(id, Direction::Out, meta.tcp_flags, now);
        // Consumed: the client's own ACK answers it.
        io.free(frame);
        let (leg, at) = (Leg { id, dir: Direction::In }, Arrival { port: h.in_port, now });
        for (frame, meta) in h.into_packets() {
            self.rewrite_and_send(frame, meta, leg, proxy, at, io);
        }
    }

    /// The server refuses our SYN: the client, which thinks itself
    /// connected, gets the RST in our numbering (the cookie + 1 it expects).
    fn synproxy_server_reset(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
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
        let Some(cookie) = self.synproxy.handshakes.get_mut(slot).map(|h| h.ack.cookie) else {
            return self.discard(frame, Discard::SynProxyUnexpected, io);
        };
        self.synproxy_close(slot, io);
        self.counters.synproxy.server_resets.inc();
        let proxy = Proxy::Deltas { seq: cookie.wrapping_add(1).wrapping_sub(seq), ts: None };
        self.director.set_proxy(id, proxy);
        self.rewrite_and_send(frame, meta, Leg { id, dir: Direction::Out }, proxy, at, io);
    }

    /// Ends handshake `slot`, freeing what it held.
    fn synproxy_close(&mut self, slot: u32, io: &mut impl Io<F>) {
        if let Some(h) = self.synproxy.handshakes.remove(slot) {
            h.into_packets().for_each(|(f, _)| io.free(f));
        }
    }

    /// Once a second: the cookies' period, and the SYNs due again.
    pub(super) fn synproxy_tick(&mut self, now: u32, io: &mut impl Io<F>) {
        self.synproxy.cookies.rotate(u64::from(now));
        let mut due = std::mem::take(&mut self.synproxy.due);
        self.synproxy.handshakes.due(now, &mut due);
        for &slot in &due {
            let Some(h) = self.synproxy.handshakes.get_mut(slot) else { continue };
            let id = h.conn;
            // A connection ended meanwhile (flushed with its server) took its
            // claim on the slot with it.
            if self.director.conn(id).proxy() != Proxy::Handshake(slot) {
                self.synproxy_close(slot, io);
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
                self.rewrite_and_send(syn, meta, leg, Proxy::Off, at, io);
            } else {
                self.synproxy_give_up(slot, id, io);
            }
        }
        self.synproxy.due = due;
        self.synproxy_tick6(now, io);
    }

    /// The server never answered: the connection ends and the client, which
    /// thinks itself connected, is reset.
    fn synproxy_give_up(&mut self, slot: u32, id: ConnId, io: &mut impl Io<F>) {
        let Some(h) = self.synproxy.handshakes.remove(slot) else { return };
        self.counters.synproxy.server_timeouts.inc();
        let in_port = h.in_port;
        let mut packets = h.into_packets();
        let client_ack = packets.next();
        packets.for_each(|(f, _)| io.free(f));
        self.director.end_now(id);
        if let Some((mut frame, mut meta)) = client_ack {
            let offload = self.port_offload(in_port);
            match reset_in_place(&mut frame, &mut meta, self.synproxy.settings.synack.ttl, offload) {
                Ok(()) => self.send_on_port(in_port, frame, io),
                Err(e) => self.discard(frame, e.drop_reason().into(), io),
            }
        }
    }

    pub(super) fn port_offload(&self, port: u16) -> Offload {
        self.net.ports.get(usize::from(port)).map_or(Offload::NONE, |p| p.offload)
    }
}

/// A copy of `frame` in a frame of the pool.
pub(super) fn copy_frame<F: Frame>(frame: &F, io: &mut impl Io<F>) -> Option<F> {
    let mut copy = io.alloc()?;
    let (have, want) = (copy.len(), frame.len());
    let sized = if have < want { copy.append(want - have) } else { copy.trim(have - want) };
    if sized.is_err() {
        io.free(copy);
        return None;
    }
    copy.data_mut().copy_from_slice(frame.data());
    Some(copy)
}
