//! Where a received frame goes: ARP and ICMP to [`super::local`]; a TCP or
//! UDP packet to its connection ([`super::forward`]), to the worker owning
//! the local port it answers, to the SYN proxy, or into a new connection.
//!
//! The SYN proxy takes a packet of no connection to a proxied service
//! ([`Worker::synproxy_first`]). A bare SYN is offered to it before the
//! connection lookup: each spoofed SYN of a flood would miss in an index
//! sized for millions of connections, a cache miss or two per SYN. Any other
//! packet can belong to a connection, so it is offered after the lookup.

use std::net::{IpAddr, Ipv4Addr};

use super::forward::Lane;
use super::roles::Roles;
use super::{Arrival, Io, Leg, Worker};
use crate::conn::director::Refused;
use crate::conn::table::KeyHash;
use crate::conn::{ConnId, Direction, FlowKey, State};
use crate::frame::Frame;
use crate::model::{Protocol, ServiceId};
use crate::net::probe::is_probe_port;
use crate::wire::{ip_proto, Classified, DropReason, Ipv4Meta};
use crate::worker::counters::Discard;

impl<F: Frame> Worker<F> {
    /// Where a classified frame goes; `hash` is its flow key's if the burst's
    /// stages computed it ([`super::burst`]), for a TCP or UDP packet.
    #[inline(always)]
    pub(super) fn dispatch(
        &mut self,
        frame: F,
        classified: Result<Classified, DropReason>,
        hash: Option<KeyHash>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        match classified {
            Err(reason) => self.unclassified(frame, reason, at, io),
            Ok(Classified::Arp { l2_len }) => self.arp(frame, usize::from(l2_len), at.port, at.now, io),
            Ok(Classified::Ipv4(meta)) => self.dispatch_ipv4(frame, meta, hash, at, io),
            Ok(Classified::Ipv6(meta)) => self.handle_v6(frame, meta, hash, at, io),
        }
    }

    /// [`Worker::dispatch`] for a classified IPv4 packet.
    #[inline(always)]
    pub(super) fn dispatch_ipv4(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        hash: Option<KeyHash>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if meta.protocol == ip_proto::ICMP {
            return self.icmp(frame, meta, at.port, at.now, io);
        }
        self.handle_flow(frame, meta, hash, at, io)
    }

    /// A TCP or UDP packet: [`Worker::dispatch_ipv4`] takes ICMP apart,
    /// classification passes no other protocol, and the packet-by-packet
    /// loop calls it for a plain packet ([`classify_plain_ipv4`]), TCP or
    /// UDP alone.
    ///
    /// [`classify_plain_ipv4`]: crate::wire::classify_plain_ipv4
    #[inline(always)]
    pub(super) fn handle_flow(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        hash: Option<KeyHash>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        // Branches, TCP's first: through `Protocol::from_number`, the
        // compiler chose among three values without a branch, then tested
        // the result (4 to 8 instructions a packet, `measure_pipeline.sh`).
        let proto = match meta.protocol {
            ip_proto::TCP => Protocol::Tcp,
            ip_proto::UDP => Protocol::Udp,
            _ => return self.discard(frame, DropReason::UnknownProtocol.into(), io),
        };
        // Everything from here is forwarded, as a router hop: refused before it
        // can create a connection.
        if meta.ttl <= 1 {
            return self.expiring(frame, meta, at, io);
        }
        if meta.is_bare_syn() {
            return self.handle_syn(frame, meta, proto, hash, at, io);
        }
        let key = flow_key(proto, &meta);
        let table = self.director.conns();
        let hash = hash.unwrap_or_else(|| table.hash_of(&key));
        if let Some((id, dir, c)) = table.find_hashed(&key, hash) {
            if !(dir == Direction::In && self.starts_over(id, false, &frame, &meta)) {
                let lane = Lane::of(c, dir);
                return self.forward_found(frame, meta, Leg { id, dir }, lane, at, io);
            }
            self.director.end_now(id);
            self.counters.conns_reused.inc();
        }
        self.handle_unmatched(frame, meta, proto, hash, at, io)
    }

    /// A bare SYN: offered to the SYN proxy before the lookup (see the module
    /// doc), else to its connection (a retransmission, or the start of a new
    /// one on a finished one's ports) or to a new connection. The lookup is
    /// written out here and in [`Worker::handle_flow`]: one function for both
    /// cost a new connection 13 instructions and an IPv6 one 31
    /// (`measure_pipeline.sh`), the inlining of the loop moved.
    #[inline(always)]
    fn handle_syn(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        proto: Protocol,
        hash: Option<KeyHash>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if self.proxies(&meta) {
            return self.synproxy_first(frame, meta, at, io);
        }
        let key = flow_key(proto, &meta);
        let table = self.director.conns();
        let hash = hash.unwrap_or_else(|| table.hash_of(&key));
        if let Some((id, dir)) = table.lookup_hashed(&key, hash) {
            if !(dir == Direction::In && self.starts_over(id, true, &frame, &meta)) {
                return self.forward(frame, meta, Leg { id, dir }, at, io);
            }
            self.director.end_now(id);
            self.counters.conns_reused.inc();
        }
        self.without_connection::<true>(frame, meta, proto, hash, at, io)
    }

    /// A packet of no connection other than a bare SYN: a reply to a local
    /// port (of a NAT64 connection, or another worker's), a UDP flow's first
    /// datagram, the SYN proxy's cookie ACK, or nobody's. Out of line, so
    /// that the loop holds one copy of what a packet of no connection needs,
    /// the SYN's (`measure_pipeline.sh`: an established packet 15
    /// instructions fewer, a reply 12, a NAT64 reply 18 more).
    #[inline(never)]
    fn handle_unmatched(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        proto: Protocol,
        hash: KeyHash,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        self.without_connection::<false>(frame, meta, proto, hash, at, io)
    }

    /// A packet `hash`'s lookup found no connection for, a bare SYN or not.
    #[inline(always)]
    fn without_connection<const BARE_SYN: bool>(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        proto: Protocol,
        hash: KeyHash,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        // A SYN of no connection is to an exact service, whose address is a
        // VIP. While every VIP is held and none is a local address, that is
        // all the roles' map would tell the tests below (nothing past them
        // asks it when there is a service), so it is not asked: one lookup
        // for the service and the address instead of two (34 instructions a
        // new connection, `measure_pipeline.sh`). Not for other packets: a
        // reply to a local address (NAT64's, every one) would ask both.
        let exact = if BARE_SYN { self.exact_service(proto, &meta) } else { None };
        let roles = if exact.is_some() && self.addrs.vips_are_plain() {
            Roles::PLAIN_VIP
        } else {
            // What the destination is to us, asked once.
            self.addrs.of(meta.dst)
        };
        if roles.is_local() {
            if is_probe_port(meta.dst_port) {
                return self.hand_to_prober(frame, io);
            }
            // A reply to a local port: its owner has the connection.
            let owner = self.partition.owner(meta.dst_port);
            if owner == self.id {
                // Not of an IPv4 connection: of a NAT64 one, or of none.
                return self.nat64_reply(frame, meta, proto, at, io);
            }
            if owner >= self.workers {
                return self.unconsumed_flow(frame, Discard::NoOwner, at, io);
            }
            self.counters.redirected_out.inc();
            return io.redirect(owner, frame);
        }
        if roles.is_unheld() {
            // Another director serves it now (keepalived moved it): checked
            // before the service lookup below, which would find its service.
            return self.discard(frame, Discard::NotHeld, io);
        }
        let to_vip = roles.is_vip();
        let service = match exact {
            Some(_) => exact,
            None => self.service_past_exact(BARE_SYN, to_vip, proto, &meta),
        };
        if proto == Protocol::Tcp && self.any_proxied && service.is_some_and(|id| self.service_proxied(id)) {
            // The client's ACK that may complete a handshake with us.
            return self.synproxy_first(frame, meta, at, io);
        }
        if to_vip || service.is_some() {
            // IPVS creates TCP connections on SYN only.
            if proto == Protocol::Tcp && !BARE_SYN {
                return self.unconsumed_flow(frame, Discard::NoConnection, at, io);
            }
            // Made again from `meta`: kept from the lookup for here, the key
            // was written to the stack for every packet.
            let key = flow_key(proto, &meta);
            return match self.open(&key, service, hash, at.now) {
                Ok(id) => self.forward_opening(frame, meta, Leg { id, dir: Direction::In }, at, io),
                Err(refused) => self.unconsumed_flow(frame, refusal_drop(refused), at, io),
            };
        }
        if self.answers_probe(meta.dst, meta.dst_port) {
            return self.hand_to_prober(frame, io);
        }
        let reason = if roles.is_interface() { Discard::LocalUnhandled } else { Discard::NotForUs };
        self.unconsumed_flow(frame, reason, at, io)
    }

    /// Whether a client packet on the ports of connection `id` opens a new
    /// connection instead (IPVS conn_reuse_mode): once the old one is
    /// finished, a bare SYN does, and through the SYN proxy the cookie ACK of
    /// a new handshake (its SYN was answered without a lookup, so nothing
    /// ended the old one). The new one is scheduled afresh: the old server
    /// may be quiesced or gone, and the old local port is still in TIME_WAIT.
    #[inline(always)]
    fn starts_over(&self, id: ConnId, bare_syn: bool, frame: &F, meta: &Ipv4Meta) -> bool {
        let finished = || matches!(self.director.conn(id).state(), State::TimeWait | State::Close);
        if bare_syn {
            finished()
        } else {
            self.any_proxied && finished() && self.synproxy_reopens(id, frame, meta)
        }
    }

    /// The exact service of a packet of no connection ([`Snapshot::find_exact_v4`]). Out of
    /// line, as [`Worker::service_past_exact`]: inlined, a service lookup's code in the
    /// dispatch loop cost an established packet 9 instructions.
    ///
    /// [`Snapshot::find_exact_v4`]: crate::model::Snapshot::find_exact_v4
    #[inline(never)]
    fn exact_service(&self, proto: Protocol, meta: &Ipv4Meta) -> Option<ServiceId> {
        self.director.snapshot().find_exact_v4(proto, meta.dst, meta.dst_port)
    }

    /// The service of a packet of no connection that has no exact one, or was not asked for
    /// it (`asked_exact`: [`Worker::exact_service`] found none). A SYN that missed is to a
    /// fwmark or all-ports service, or to nobody's (the kernel's, a closed port). Other
    /// packets to a VIP need none while no service is SYN-proxied: the director looks up a
    /// new connection's itself. Out of line, so that the dispatch of an exact service's SYN
    /// holds none of its code.
    #[inline(never)]
    fn service_past_exact(
        &self,
        asked_exact: bool,
        to_vip: bool,
        proto: Protocol,
        meta: &Ipv4Meta,
    ) -> Option<ServiceId> {
        let (snapshot, dst) = (self.director.snapshot(), IpAddr::V4(meta.dst));
        if asked_exact {
            snapshot.find_inexact(proto, dst, meta.dst_port)
        } else if to_vip && !self.any_proxied {
            None
        } else {
            snapshot.find(proto, dst, meta.dst_port)
        }
    }

    /// Schedules and creates the connection of a new flow, counted; `hash` is
    /// `key`'s in the table, `service` its service when the caller found it
    /// (else the director looks it up). Inlined, as `open6` is (13
    /// instructions a SYN).
    #[inline(always)]
    pub(super) fn open(
        &mut self,
        key: &FlowKey<Ipv4Addr>,
        service: Option<ServiceId>,
        hash: KeyHash,
        now: u32,
    ) -> Result<ConnId, Refused> {
        // Worker w reads rx queue w of every port: prefer a local port whose
        // reply the NIC hashes to that queue.
        let (net, routes, me) = (&self.net, &self.routes, self.id);
        let steered = |rip: Ipv4Addr, rport: u16, lip: Ipv4Addr, lport: u16| {
            routes
                .next_hop(rip)
                .and_then(|hop| net.ports.get(usize::from(hop.port))?.steering.as_deref())
                .is_none_or(|s| s.queue(s.base(rip, rport, lip), lport) == me)
        };
        let id = self.director.connect_preferring(key, service, hash, now, self.steering_tries, steered)?;
        self.counters.new_conns.inc();
        if let Some(d) = self.director.conn(id).dest() {
            d.count_connection(self.id);
        }
        Ok(id)
    }
}

/// The connection key of a packet, as received.
#[inline(always)]
pub(super) fn flow_key(proto: Protocol, meta: &Ipv4Meta) -> FlowKey<Ipv4Addr> {
    FlowKey { proto, src: meta.src, sport: meta.src_port, dst: meta.dst, dport: meta.dst_port }
}

pub(super) fn refusal_drop(r: Refused) -> Discard {
    match r {
        Refused::NoService => Discard::NoService,
        Refused::NoDest => Discard::NoDest,
        Refused::NoLocalPort => Discard::NoLocalPort,
        Refused::TableFull => Discard::TableFull,
        Refused::Exists => Discard::NoConnection,
    }
}
