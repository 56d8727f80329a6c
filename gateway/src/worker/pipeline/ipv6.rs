//! IPv6: the gateway's own IPv6 addresses (neighbour discovery, echo) and the
//! connections of IPv6 services in FNAT, NAT and DR, beside IPv4.
//!
//! The family has its own state in [`Inet6`]: its connection table and
//! director (a table per family keeps the IPv4 entry at 64 bytes, see
//! [`crate::conn::key`]), routes, neighbours and the packets waiting for
//! them, and its address sets. The worker's own state (the configuration
//! snapshot, the local-port partition, the counters, the kernel interface's
//! limiter) is shared. The dispatch follows IPv4's ([`super::dispatch`])
//! where IPVS's rules are the same (a TCP connection starts on a SYN, a
//! reply to a local port goes to the worker owning it), and so does the SYN
//! proxy's ([`super::synproxy6`]). Tunnelled servers get IPv6-in-IPv6
//! ([`crate::xmit::tun::encapsulate_v6`]). A connection sending a PROXY
//! protocol header takes IPv4's path for it ([`super::proxy_protocol`],
//! generic over the family), out of line as IPv4's.
//!
//! Packets for the gateway's addresses that the datapath does not consume
//! go to the port's kernel interface as IPv4's do ([`super::kernel`]):
//! router advertisements, neighbour discovery for addresses only the kernel
//! holds, TCP to an address and port no service has.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::egress::{route, EgressCache, Resolved};
use super::forward::{opened_by, quoted_tcp_seq};
use super::local::{send_on_port, send_to_neighbour};
use super::roles::{AddrRoles, Addresses};
use super::{Arrival, Io, Leg, Worker};
use crate::conn::director::{Director, DirectorConfig, Refused};
use crate::conn::table::{Conn, KeyHash};
use crate::conn::{ConnId, Direction, Family, FlowKey, Proxy, State};
use crate::frame::Frame;
use crate::model::{ForwardMethod, NetView, Protocol, ServiceId, ServiceKey, Snapshot};
use crate::net::icmp::echo_reply_in_place_v6;
use crate::net::ndisc::{handle_ndisc, write_neighbor_solicit, NdiscDrop, NdiscVerdict};
use crate::net::{KernelClass, Learned, NeighbourTable, NextHop, Origin, PendingQueue, Queued, RouteTable};
use crate::wire::icmpv6::msg_type;
use crate::wire::{icmpv6_error_inner, ip_proto, DropReason, EthAddrs, Ipv6Meta, MacAddr};
use crate::worker::counters::{Discard, WorkerCounters};
use crate::xmit::icmpv6_error::{error_reply_v6, OriginatedErrorV6};
use crate::xmit::{Egress, Ends, IcmpErrorRewrite, Rewrite, Shift, ToaOutcome, TunEncapV6, XmitError};

/// A worker's IPv6 state (see the module docs).
pub(super) struct Inet6<F> {
    pub(super) director: Director<Ipv6Addr>,
    /// The view's IPv6 routes less those over ports whose link is down.
    routes: RouteTable<Ipv6Addr>,
    neighbours: NeighbourTable<Ipv6Addr>,
    /// Where packets to a destination went last (see [`super::egress`]).
    egress_cache: EgressCache<Ipv6Addr>,
    pending: PendingQueue<F, Ipv6Addr>,
    /// What each IPv6 address is to us (see the IPv4 worker's), the
    /// interface addresses with their link-local ones.
    pub(super) addrs: AddrRoles<Ipv6Addr>,
    last_solicit: u32,
}

impl<F: Frame> Inet6<F> {
    pub(super) fn new(
        snap: Arc<Snapshot>,
        cfg: DirectorConfig,
        neighbours: NeighbourTable<Ipv6Addr>,
        pending: PendingQueue<F, Ipv6Addr>,
        now: u32,
    ) -> Inet6<F> {
        Inet6 {
            director: Director::new(snap, cfg, now),
            routes: RouteTable::new(),
            neighbours,
            egress_cache: EgressCache::new(),
            pending,
            addrs: AddrRoles::default(),
            last_solicit: now,
        }
    }

    pub(super) fn neighbours(&self) -> &NeighbourTable<Ipv6Addr> {
        &self.neighbours
    }

    /// Indexes the IPv6 addresses of the director's snapshot and of `net`.
    pub(super) fn index_services(&mut self, net: &NetView) {
        let snap = self.director.snapshot();
        let v6 = <Ipv6Addr as Family>::from_ip;
        let ports = &net.v6.ports;
        let addrs = Addresses {
            interface: ports
                .iter()
                .flat_map(|p| p.addrs.iter().map(|a| a.addr()))
                .chain(ports.iter().map(|p| p.link_local)),
            vips: snap.services().iter().filter_map(|svc| match svc.key() {
                ServiceKey::Inet { addr, .. } => v6(addr),
                _ => None,
            }),
            local: snap.services().iter().flat_map(|svc| svc.laddrs().iter().filter_map(|l| v6(l.addr))),
            needed: (snap.services().iter().flat_map(|svc| svc.dests().iter().filter_map(|d| v6(d.addr()))))
                .chain(net.v6.routes.iter().filter_map(|r| r.via)),
        };
        self.addrs.rebuild(addrs, net.held.as_deref());
    }

    /// Takes a new network view: addresses, routes (less the ports down),
    /// permanent neighbours.
    pub(super) fn set_net(&mut self, old: &NetView, net: &NetView, down_ports: u64) {
        for (ip, _, _) in &old.v6.static_neighbours {
            if !net.v6.static_neighbours.iter().any(|(new, _, _)| new == ip) {
                let _ = self.neighbours.delete(*ip);
            }
        }
        for (ip, mac, port) in &net.v6.static_neighbours {
            // Bounded by the control plane as IPv4's are (see Worker::set_net).
            let installed = self.neighbours.add_static(*ip, *mac, *port);
            debug_assert!(installed.is_ok(), "static neighbour {ip}: {installed:?}");
        }
        self.routes = net.v6.routes.without_ports(down_ports);
        self.egress_cache.invalidate(&net.v6.routes);
        self.index_services(net);
    }

    /// The IPv6 egress cache's lookups that had to route.
    pub(super) fn egress_route_lookups(&self) -> u64 {
        self.egress_cache.route_lookups()
    }

    pub(super) fn follow_links(&mut self, net: &NetView, down: u64) {
        self.routes = net.v6.routes.without_ports(down);
        self.egress_cache.invalidate(&net.v6.routes);
    }
}

impl<F: Frame> Worker<F> {
    /// An IPv6 frame, classified.
    pub(super) fn handle_v6(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        hash: Option<KeyHash>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if meta.protocol == ip_proto::ICMPV6 {
            return self.icmp6(frame, meta, at, io);
        }
        self.handle_flow6(frame, meta, hash, at, io)
    }

    /// ICMPv6: neighbour discovery, echo requests to our addresses, errors
    /// about our connections; the rest is the kernel interface's.
    fn icmp6(&mut self, mut frame: F, meta: Ipv6Meta, at: Arrival, io: &mut impl Io<F>) {
        if (msg_type::ROUTER_SOLICIT..=msg_type::REDIRECT).contains(&meta.icmp_type) {
            return self.ndisc(frame, meta, at, io);
        }
        let own = self.v6.addrs.of(meta.dst).is_own();
        if meta.is_icmp_error() && own {
            return self.forward_icmp6_error(frame, meta, at, io);
        }
        if !own {
            // The kernel's own addresses (its link-local ones, what
            // keepalived holds), its multicast groups.
            return self.kernel6_or_discard(frame, KernelClass::Bulk, Discard::NotForUs, at, io);
        }
        if meta.icmp_type != msg_type::ECHO_REQUEST {
            return self.kernel6_or_discard(frame, KernelClass::Bulk, Discard::LocalUnhandled, at, io);
        }
        match echo_reply_in_place_v6(&mut frame, &meta) {
            Ok(()) => {
                self.counters.icmp_echo_replies.inc();
                self.send_on_port(at.port, frame, io);
            }
            Err(reason) => self.discard(frame, reason.into(), io),
        }
    }

    /// An ICMPv6 error about a packet of one of our connections (a server's
    /// port unreachable, a router's packet too big on the way to the client):
    /// rewritten as the connection rewrites and passed to the other side, as
    /// IPv4's are ([`Worker::forward_icmp_error`]). Path MTU discovery through
    /// the gateway rests on it. An error about no connection of ours is the
    /// kernel interface's.
    fn forward_icmp6_error(&mut self, mut frame: F, mut meta: Ipv6Meta, at: Arrival, io: &mut impl Io<F>) {
        let quote = match icmpv6_error_inner(frame.data(), &meta) {
            Ok(q) => q,
            Err(reason) => return self.discard(frame, reason.into(), io),
        };
        let tuple = quote.tuple;
        let key = match (Protocol::from_number(tuple.protocol), tuple.src, tuple.dst) {
            // The quote is a packet the gateway sent; its reverse is a packet of the connection.
            (Some(proto), IpAddr::V6(qsrc), IpAddr::V6(qdst)) => {
                FlowKey { proto, src: qdst, sport: tuple.dst_port, dst: qsrc, dport: tuple.src_port }
            }
            _ => return self.kernel6_or_discard(frame, KernelClass::Bulk, Discard::NoConnection, at, io),
        };
        let Some((id, dir)) = self.v6.director.lookup(&key) else {
            return self.kernel6_or_discard(frame, KernelClass::Bulk, Discard::NoConnection, at, io);
        };
        let c = self.v6.director.conn(id);
        let (ends, method) = (ends_of6(c), c.method);
        if ends.real_server.0.to_ipv4_mapped().is_some() {
            // NAT64: only the client's side speaks IPv6.
            return self.nat64_error_to_server(frame, meta, id, at, io);
        }
        // From the server's side, about a client segment a PROXY header
        // shifted: its quote goes back into the client's numbering (as IPv4's).
        let header = dir == Direction::Out && c.has_proxy_header();
        let inner_seq_delta = match header.then(|| quoted_tcp_seq(frame.data(), &quote)).flatten() {
            Some(seq) => self.v6.director.header_mut(id).map_or(0, |h| h.quoted_delta(seq)),
            None => 0,
        };
        let to = ends.destination(dir);
        let Some(mut out) = self.resolve6(to, at.now) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let result = match Rewrite::of(method, dir, &ends) {
            Rewrite::Translate(endpoints) => {
                let rw = IcmpErrorRewrite { inner_seq_delta, ..endpoints.icmp_error() };
                crate::xmit::icmp_error::rewrite_v6(&mut frame, &meta, &rw)
            }
            // The real server sent the quoted packet itself (from the VIP).
            Rewrite::OnLink => {
                out = out.on_link(to);
                Ok(())
            }
            Rewrite::Encapsulate => {
                let Some(encap) = self.tunnel6(&out.hop, to, out.egress.mtu) else {
                    return self.discard(frame, Discard::NoRoute, io);
                };
                crate::xmit::tun::encapsulate_v6(&mut frame, &mut meta, &encap)
            }
            Rewrite::Bypassed => return self.discard(frame, Discard::NoConnection, io),
        };
        if let Err(e) = result {
            return self.discard(frame, e.drop_reason().into(), io);
        }
        self.counters.icmp_errors_relayed.inc();
        self.send_resolved6(frame, out, at.now, io);
    }

    /// Neighbour discovery: a solicitation for one of our addresses is
    /// answered; what it says of its sender, and an advertisement's target,
    /// is learned under IPv4's rules (see `learn_sender` for ARP); the rest
    /// (router discovery, redirects, solicitations for the kernel's own
    /// addresses) goes to the kernel interface when the port has one.
    fn ndisc(&mut self, mut frame: F, meta: Ipv6Meta, at: Arrival, io: &mut impl Io<F>) {
        let Some(mac) = self.net.ports.get(usize::from(at.port)).map(|p| p.mac) else {
            return self.discard(frame, Discard::NotForUs, io);
        };
        let addrs = &self.v6.addrs;
        let seen = match handle_ndisc(&mut frame, &meta, mac, |ip| addrs.of(ip).is_own()) {
            Ok(seen) => seen,
            Err(NdiscDrop::NotNeighbour) => {
                return self.hand_to_kernel_or_discard(
                    frame,
                    KernelClass::Control,
                    Discard::Ndisc(NdiscDrop::NotNeighbour),
                    at,
                    io,
                )
            }
            Err(why) => return self.discard(frame, Discard::Ndisc(why), io),
        };
        if let Some((ip, lladdr)) = seen.learnable(&self.v6.neighbours, at.now) {
            let news = self.learn6(ip, lladdr, at.port, at.now, io);
            // The others hear of an answer (it lands on one worker's queue
            // whichever worker asked) and of what they need, as for ARP.
            if news && (seen.answer || self.v6.addrs.of(ip).is_needed()) {
                io.neighbour_learned(ip.into(), lladdr, at.port);
            }
        }
        match seen.verdict {
            NdiscVerdict::Reply => {
                self.counters.nd_advertisements.inc();
                self.send_on_port(at.port, frame, io);
            }
            NdiscVerdict::Consumed => self.consumed_arp(frame, at, io),
        }
    }

    /// Records an IPv6 neighbour another worker learned, from the port it
    /// names, and sends what waited for it here.
    pub(super) fn learn_neighbour6(&mut self, ip: Ipv6Addr, mac: MacAddr, port: u16, now: u32, io: &mut impl Io<F>) {
        self.learn6(ip, mac, port, now, io);
    }

    /// Records an IPv6 neighbour a message may teach ([`NdiscSeen::learnable`]),
    /// only from the port the gateway reaches the address by (else one frame
    /// on the client segment claiming a real server's address would take its
    /// traffic), and sends what waited for it. Returns whether the entry is
    /// new or changed.
    ///
    /// [`NdiscSeen::learnable`]: crate::net::ndisc::NdiscSeen::learnable
    fn learn6(&mut self, ip: Ipv6Addr, mac: MacAddr, port: u16, now: u32, io: &mut impl Io<F>) -> bool {
        let v6 = &mut *self.v6;
        if v6.routes.next_hop(ip).is_none_or(|hop| hop.port != port) {
            self.counters.neighbours_wrong_port.inc();
            return false;
        }
        let origin =
            if v6.addrs.of(ip).is_needed() || v6.pending.is_waiting(ip) { Origin::Needed } else { Origin::Unsolicited };
        let news = match v6.neighbours.learn(ip, mac, port, origin, now) {
            Learned::New | Learned::Changed => {
                self.counters.neighbours_learned.inc();
                true
            }
            Learned::Refreshed | Learned::Static => false,
            Learned::Full => {
                self.counters.neighbours_table_full.inc();
                return false;
            }
            Learned::UnsolicitedFull => {
                self.counters.neighbours_unsolicited_full.inc();
                return false;
            }
        };
        if let Some(n) = v6.neighbours.lookup(ip, now).copied() {
            if let Some(src_mac) = self.net.ports.get(usize::from(n.port)).map(|p| p.mac) {
                let counters = &self.counters;
                v6.pending.release(ip, |f| send_to_neighbour(counters, f, n.port, EthAddrs::new(n.mac, src_mac), io));
            }
        }
        news
    }

    /// A TCP or UDP packet over IPv6 (classify passes no other protocol).
    fn handle_flow6(&mut self, frame: F, meta: Ipv6Meta, hash: Option<KeyHash>, at: Arrival, io: &mut impl Io<F>) {
        // Branches, as `handle_flow` takes them.
        let proto = match meta.protocol {
            ip_proto::TCP => Protocol::Tcp,
            ip_proto::UDP => Protocol::Udp,
            _ => return self.discard(frame, DropReason::UnknownProtocol.into(), io),
        };
        if meta.hop_limit <= 1 {
            return self.expiring6(frame, meta, at, io);
        }
        let bare_syn = meta.is_bare_syn();
        if bare_syn && self.proxies6(&meta) {
            return self.synproxy_first6(frame, meta, at, io);
        }
        let key = flow_key6(proto, &meta);
        let table = self.v6.director.conns();
        let hash = hash.unwrap_or_else(|| table.hash_of(&key));
        if let Some((id, dir, c)) = table.find_hashed(&key, hash) {
            if !(dir == Direction::In && self.starts_over6(id, bare_syn, &frame, &meta)) {
                let plain_fnat = c.method == ForwardMethod::FullNat && c.is_plain();
                return self.forward_found6(frame, meta, Leg { id, dir }, plain_fnat, at, io);
            }
            self.v6.director.end_now(id);
            self.counters.conns_reused.inc();
        }
        // What the destination is to us, asked once.
        let roles = self.v6.addrs.of(meta.dst);
        if roles.is_local() {
            // A reply to a local port: its owner has the connection.
            let owner = self.partition.owner(meta.dst_port);
            if owner == self.id {
                return self.unconsumed_flow6(frame, meta, Discard::NoConnection, at, io);
            }
            if owner >= self.workers {
                return self.unconsumed_flow6(frame, meta, Discard::NoOwner, at, io);
            }
            self.counters.redirected_out.inc();
            return io.redirect(owner, frame);
        }
        if roles.is_unheld() {
            // Another director serves it now (keepalived moved it).
            return self.discard(frame, Discard::NotHeld, io);
        }
        let Some(service) = self.v6.director.snapshot().find(proto, IpAddr::V6(meta.dst), meta.dst_port) else {
            let reason = if roles.is_vip() { Discard::NoService } else { Discard::NotForUs };
            return self.unconsumed_flow6(frame, meta, reason, at, io);
        };
        if proto == Protocol::Tcp && self.any_proxied && self.service_proxied(service) {
            // The client's ACK that may complete a handshake with us.
            return self.synproxy_first6(frame, meta, at, io);
        }
        // IPVS creates TCP connections on SYN only.
        if proto == Protocol::Tcp && !bare_syn {
            return self.discard(frame, Discard::NoConnection, io);
        }
        match self.open6(&key, Some(service), hash, at.now) {
            Ok(id) => self.forward_opening6(frame, meta, Leg { id, dir: Direction::In }, at, io),
            Err(refused) => self.discard(frame, super::dispatch::refusal_drop(refused), io),
        }
    }

    /// Whether a client packet on the ports of IPv6 connection `id` opens a
    /// new connection instead, under IPv4's rule ([`Worker::starts_over`]).
    fn starts_over6(&self, id: ConnId, bare_syn: bool, frame: &F, meta: &Ipv6Meta) -> bool {
        let finished = matches!(self.v6.director.conn(id).state(), State::TimeWait | State::Close);
        if bare_syn {
            finished
        } else {
            self.any_proxied && finished && self.synproxy_reopens6(id, frame, meta)
        }
    }

    /// Schedules and creates the IPv6 connection of a new flow, counted;
    /// `hash` is `key`'s in the table, `service` its service when the caller
    /// found it (else the director looks it up). Inlined: left to the
    /// compiler, it was a call (35 instructions an IPv6 SYN,
    /// `measure_pipeline.sh`'s new6).
    #[inline(always)]
    pub(super) fn open6(
        &mut self,
        key: &FlowKey<Ipv6Addr>,
        service: Option<ServiceId>,
        hash: KeyHash,
        now: u32,
    ) -> Result<ConnId, Refused> {
        // No local port is steered: IPv6 replies' RSS is not predicted.
        let id = self.v6.director.connect_preferring(key, service, hash, now, 0, |_, _, _, _| true)?;
        self.counters.new_conns.inc();
        if let Some(d) = self.v6.director.conn(id).dest() {
            d.count_connection(self.id);
        }
        Ok(id)
    }

    /// An IPv6 TCP or UDP packet the datapath does not forward, which it
    /// would drop as `reason`: when no service has its address and port, the
    /// kernel interface's (see [`Worker::kernel6_or_discard`]).
    #[cold]
    #[inline(never)]
    fn unconsumed_flow6(&mut self, frame: F, meta: Ipv6Meta, reason: Discard, at: Arrival, io: &mut impl Io<F>) {
        let reason = if reason == Discard::NotForUs && self.v6.addrs.of(meta.dst).is_interface() {
            Discard::LocalUnhandled
        } else {
            reason
        };
        if matches!(reason, Discard::NotForUs | Discard::NoService | Discard::LocalUnhandled) {
            let class = KernelClass::of_ip(meta.protocol, meta.src_port, meta.dst_port);
            return self.kernel6_or_discard(frame, class, reason, at, io);
        }
        self.discard(frame, reason, io)
    }

    /// An IPv6 packet the datapath does not consume: to the kernel interface
    /// of its port as `class` when it has one and the frame is addressed to
    /// the port's MAC or a multicast one (the rule of every EtherType the
    /// gateway does not speak, which IPv6 was), else dropped as `reason`.
    #[cold]
    #[inline(never)]
    fn kernel6_or_discard(&mut self, frame: F, class: KernelClass, reason: Discard, at: Arrival, io: &mut impl Io<F>) {
        let port_mac = self.net.ports.get(usize::from(at.port)).filter(|p| p.kernel).map(|p| p.mac);
        let dst_mac = frame.data().first_chunk::<6>().map(|m| MacAddr(*m));
        match (port_mac, dst_mac) {
            (Some(ours), Some(dst)) if dst == ours || dst.is_multicast() => self.hand_to_kernel(frame, class, at, io),
            _ => self.discard(frame, reason, io),
        }
    }

    /// A TCP or UDP packet whose hop limit expires here: the kernel's when it
    /// is addressed to it, else dropped as a router drops it.
    #[cold]
    #[inline(never)]
    fn expiring6(&mut self, frame: F, meta: Ipv6Meta, at: Arrival, io: &mut impl Io<F>) {
        if self.v6.addrs.of(meta.dst).is_interface() {
            let class = KernelClass::of_ip(meta.protocol, meta.src_port, meta.dst_port);
            return self.kernel6_or_discard(frame, class, DropReason::TtlExpired.into(), at, io);
        }
        self.refuse6(frame, &meta, XmitError::TtlExpired { ttl: meta.hop_limit }, at, io)
    }

    /// [`Worker::forward6`] for a packet that found its connection: a plain
    /// FNAT connection's (`plain_fnat`, read from the entry where the lookup
    /// found it, as IPv4's lane is) rewrite compiled in, as IPv4's
    /// ([`Worker::forward_found`]); any other takes `forward6`, out of line.
    /// Unlike IPv4's, the lane keeps the client's packets that carry a TOA:
    /// sending them out of it measured 2 to 7 instructions more on the
    /// established IPv6 paths (11 fewer on NAT64's).
    #[inline(always)]
    fn forward_found6(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        leg: Leg,
        plain_fnat: bool,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if plain_fnat {
            return self.rewrite_with6::<false, true, false>(frame, meta, leg, Proxy::Off, at, io);
        }
        self.forward6(frame, meta, leg, at, io)
    }

    /// A packet of an IPv6 connection: held while the SYN proxy's handshake
    /// with the server is open, else rewritten for its mode and sent.
    fn forward6(&mut self, frame: F, meta: Ipv6Meta, leg: Leg, at: Arrival, io: &mut impl Io<F>) {
        let c = self.v6.director.conn(leg.id);
        // One test for both rare cases, out of line, as IPv4's.
        if c.is_rare() {
            return self.forward_rare6(frame, meta, leg, at, io);
        }
        let proxy = c.proxy();
        self.rewrite_with6::<false, false, false>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::forward6`] for the packet that opened connection `leg.id`,
    /// not accounted to it again (see [`Worker::forward_opening`]).
    fn forward_opening6(&mut self, frame: F, meta: Ipv6Meta, leg: Leg, at: Arrival, io: &mut impl Io<F>) {
        let c = self.v6.director.conn(leg.id);
        debug_assert!(opened_by(c, meta.tcp_flags), "the opening packet leaves the state as filed");
        if c.is_rare() {
            return self.forward_rare6(frame, meta, leg, at, io);
        }
        let proxy = c.proxy();
        self.rewrite_with6::<false, false, true>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::forward6`] for a connection in the SYN proxy's handshake or
    /// sending a PROXY header.
    #[cold]
    #[inline(never)]
    fn forward_rare6(&mut self, frame: F, meta: Ipv6Meta, leg: Leg, at: Arrival, io: &mut impl Io<F>) {
        let proxy = self.v6.director.conn(leg.id).proxy();
        if let Proxy::Handshake(slot) = proxy {
            return self.synproxy_handshaking6(frame, meta, leg, slot, at, io);
        }
        self.rewrite_with6::<true, false, false>(frame, meta, leg, proxy, at, io);
    }

    /// Rewrites a packet of an IPv6 connection for its mode (and the SYN
    /// proxy's deltas, `proxy`), then routes and sends it.
    pub(super) fn rewrite_and_send6(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        leg: Leg,
        proxy: Proxy,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if self.v6.director.conn(leg.id).has_proxy_header() {
            return self.rewrite_and_send6_with_header(frame, meta, leg, proxy, at, io);
        }
        self.rewrite_with6::<false, false, false>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::rewrite_and_send6`] for a connection sending a PROXY
    /// header: out of line, so no other connection's path holds its code.
    #[inline(never)]
    fn rewrite_and_send6_with_header(
        &mut self,
        frame: F,
        meta: Ipv6Meta,
        leg: Leg,
        proxy: Proxy,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        self.rewrite_with6::<true, false, false>(frame, meta, leg, proxy, at, io);
    }

    /// [`Worker::rewrite_and_send6`], compiled once for connections with a
    /// PROXY header (`HEADER`) and once for the others, and for FNAT
    /// connections alone (`FNAT`: the caller checked the mode) once more;
    /// and for the packet that opened its connection (`OPENING`).
    #[inline(always)]
    fn rewrite_with6<const HEADER: bool, const FNAT: bool, const OPENING: bool>(
        &mut self,
        mut frame: F,
        mut meta: Ipv6Meta,
        Leg { id, dir }: Leg,
        proxy: Proxy,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        let c = self.v6.director.conn(id);
        let before = c.state();
        let method = if FNAT { ForwardMethod::FullNat } else { c.method };
        let ends = ends_of6(c);
        c.count_to_dest(self.id, dir, || meta.ip_total_len());
        if !OPENING {
            self.v6.director.on_packet(id, dir, meta.tcp_flags, at.now);
        }
        if method == ForwardMethod::FullNat && ends.real_server.0.to_ipv4_mapped().is_some() {
            // Its server is IPv4 (its replies come in over IPv4: `nat64_reply`).
            return self.nat64_to_server(frame, meta, Leg { id, dir }, &ends, before, at, io);
        }
        // The answer is read where it lies, as IPv4's is (`rewrite_with`).
        let to = ends.destination(dir);
        let (v6, net) = (&mut *self.v6, &self.net);
        let (live, cache, neighbours) = (&v6.routes, &mut v6.egress_cache, &v6.neighbours);
        let resolved = cache.resolve(to, at.now, neighbours, |to| route(live, &net.v6.routes, &net.ports, to));
        let Some(mut out) = resolved else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let copied: Resolved<Ipv6Addr>;
        let result = match Rewrite::of(method, dir, &ends) {
            // Its own path: the connection's numbers shift, the header goes in.
            Rewrite::Translate(endpoints) if HEADER => {
                let (leg, out) = (Leg { id, dir }, *out);
                return self.forward_with_header(frame, meta, leg, proxy, endpoints, out, at, io);
            }
            Rewrite::Translate(endpoints) => {
                let with_toa = meta.protocol == ip_proto::TCP && before != State::Established;
                // Two copies, as IPv4's: unproxied connections get the rewrite
                // without the delta arithmetic compiled in.
                let translated = match proxy {
                    Proxy::Deltas { seq, ts } => {
                        let shift = Shift::proxied(seq, ts.unwrap_or(0), dir);
                        endpoints.translate(&mut frame, &mut meta, shift, with_toa, out.egress)
                    }
                    _ => endpoints.translate(&mut frame, &mut meta, Shift::NONE, with_toa, out.egress),
                };
                translated.map(|outcome| {
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
                let Some(encap) = self.tunnel6(&out.hop, to, out.egress.mtu) else {
                    return self.discard(frame, Discard::NoRoute, io);
                };
                crate::xmit::tun::encapsulate_v6(&mut frame, &mut meta, &encap)
            }
            Rewrite::Bypassed => return self.discard(frame, Discard::NoConnection, io),
        };
        if let Err(e) = result {
            return self.refuse6(frame, &meta, e, at, io);
        }
        if let Some(macs) = out.macs {
            return send_to_neighbour(&self.counters, frame, out.hop.port, macs, io);
        }
        let out = *out;
        self.send_resolved6(frame, out, at.now, io);
    }

    /// Drops a packet the IPv6 rewrite refused, counted, answering it with
    /// the ICMPv6 error a router would send: hop limit exceeded, or packet
    /// too big for a packet that outgrew the link (IPv6 is never fragmented
    /// on the way: the sender must shrink it). `received` describes the
    /// packet as it arrived (a refused rewrite leaves the frame unchanged).
    #[cold]
    #[inline(never)]
    pub(super) fn refuse6(
        &mut self,
        mut frame: F,
        received: &Ipv6Meta,
        e: XmitError,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        self.counters.count(e.drop_reason().into());
        let error = match e {
            XmitError::TtlExpired { .. } => OriginatedErrorV6::HopLimitExceeded,
            XmitError::MtuExceeded { len, mtu } => {
                // The sender's packet must shrink by what we would add to it,
                // and may be larger by what we take off (NAT64's IPv4 header
                // is 20 bytes shorter).
                let fits = (u32::from(mtu) + received.ip_total_len() as u32).saturating_sub(len as u32);
                OriginatedErrorV6::PacketTooBig { mtu: fits }
            }
            _ => return io.free(frame),
        };
        // Never about an error or to a multicast source (RFC 4443 §2.4 (e)).
        let is_error = received.protocol == ip_proto::ICMPV6 && crate::wire::icmpv6::is_error(received.icmp_type);
        let Some(from) = self.source6_on(at.port, received.src).filter(|_| !is_error && !received.src.is_multicast())
        else {
            return io.free(frame);
        };
        if !self.icmp_errors.allow(u64::from(at.now) * 1000) {
            self.counters.icmp_errors_limited.inc();
            return io.free(frame);
        }
        if error_reply_v6(&mut frame, received, from, error).is_err() {
            return io.free(frame);
        }
        self.counters.icmp_errors_sent.inc();
        self.send_on_port(at.port, frame, io);
    }

    fn source6_on(&self, port: u16, to: Ipv6Addr) -> Option<Ipv6Addr> {
        self.net.v6.source_on(port, to)
    }

    /// The IPv6-in-IPv6 header toward `dst` through `hop`: from the route's
    /// source, else the port's address toward the server; hop limit 64, as
    /// IPv4's tunnel's TTL.
    fn tunnel6(&self, hop: &NextHop<Ipv6Addr>, dst: Ipv6Addr, mtu: u16) -> Option<TunEncapV6> {
        let src = hop.src.or_else(|| self.source6_on(hop.port, dst))?;
        Some(TunEncapV6 { src, dst, hop_limit: 64, mtu })
    }

    /// The next hop toward `to`, with the MTU and offloads of its port.
    #[inline(always)]
    pub(super) fn egress6(&self, to: Ipv6Addr) -> Option<(NextHop<Ipv6Addr>, Egress)> {
        route(&self.v6.routes, &self.net.v6.routes, &self.net.ports, to).map(|(hop, egress, _)| (hop, egress))
    }

    /// [`Worker::egress6`] and the next hop's MAC, from the egress cache
    /// (see [`super::egress`]) when it answers.
    #[inline(always)]
    pub(super) fn resolve6(&mut self, to: Ipv6Addr, now: u32) -> Option<Resolved<Ipv6Addr>> {
        let (v6, net) = (&mut *self.v6, &self.net);
        let (live, cache, neighbours) = (&v6.routes, &mut v6.egress_cache, &v6.neighbours);
        cache.resolve(to, now, neighbours, |to| route(live, &net.v6.routes, &net.ports, to)).copied()
    }

    /// Sends the frame where `out` says: straight to the next hop's MAC when
    /// known, else by [`Worker::send_via6`] (which queues it for neighbour
    /// discovery).
    #[inline(always)]
    pub(super) fn send_resolved6(&mut self, frame: F, out: Resolved<Ipv6Addr>, now: u32, io: &mut impl Io<F>) {
        match out.macs {
            Some(macs) => send_to_neighbour(&self.counters, frame, out.hop.port, macs, io),
            None => self.send_via6(frame, out.hop, now, io),
        }
    }

    /// Sends the frame to IPv6 next hop `hop`, or queues it while neighbour
    /// discovery resolves it.
    pub(super) fn send_via6(&mut self, frame: F, hop: NextHop<Ipv6Addr>, now: u32, io: &mut impl Io<F>) {
        let Some(src_mac) = self.net.ports.get(usize::from(hop.port)).map(|p| p.mac) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        if let Some(n) = self.v6.neighbours.lookup(hop.addr, now) {
            return send_to_neighbour(&self.counters, frame, hop.port, EthAddrs::new(n.mac, src_mac), io);
        }
        match self.v6.pending.push(hop.addr, frame, now) {
            Queued::First => send_solicitation(&self.net, &self.counters, hop.port, hop.addr, io),
            Queued::Behind => {}
            Queued::Full(frame) => self.discard(frame, Discard::NeighbourQueueFull, io),
        }
    }

    /// IPv6's timers (its connections expire with IPv4's, in
    /// [`Worker::expire`]): neighbours, waiting packets, and the
    /// solicitations repeated once a second for what still waits.
    pub(super) fn tick6(&mut self, now: u32, io: &mut impl Io<F>) {
        self.v6.neighbours.expire(now);
        let counters = &self.counters;
        let max_wait = self.pending_max_wait;
        self.v6.pending.expire(now, max_wait, |f| {
            counters.count(Discard::NeighbourTimeout);
            io.free(f);
        });
        if now != self.v6.last_solicit && !self.v6.pending.is_empty() {
            self.v6.last_solicit = now;
            let (net, v6, counters) = (&self.net, &self.v6, &self.counters);
            v6.pending.hops(|hop| {
                if let Some(next) = v6.routes.next_hop(hop) {
                    send_solicitation(net, counters, next.port, hop, io);
                }
            });
        }
    }
}

/// Sends a neighbour solicitation for `target` out of `port`, from an address
/// of the port on the target's prefix, else from its link-local address.
fn send_solicitation<F: Frame>(
    net: &NetView,
    counters: &WorkerCounters,
    port: u16,
    target: Ipv6Addr,
    io: &mut impl Io<F>,
) {
    let (Some(view), Some(src)) = (net.ports.get(usize::from(port)), net.v6.source_on(port, target)) else {
        return;
    };
    let Some(mut req) = io.alloc() else {
        return counters.count(Discard::NoMbuf);
    };
    if write_neighbor_solicit(&mut req, view.mac, src, target).is_err() {
        counters.count(Discard::NoMbuf);
        return io.free(req);
    }
    counters.nd_solicitations.inc();
    send_on_port(counters, port, req, io);
}

/// The connection key of an IPv6 packet, as received.
#[inline(always)]
pub(super) fn flow_key6(proto: Protocol, meta: &Ipv6Meta) -> FlowKey<Ipv6Addr> {
    FlowKey { proto, src: meta.src, sport: meta.src_port, dst: meta.dst, dport: meta.dst_port }
}

/// The endpoints of IPv6 connection `c`, as its packets are rewritten.
pub(super) fn ends_of6(c: &Conn<Ipv6Addr>) -> Ends<Ipv6Addr> {
    Ends {
        client: (c.client, c.cport),
        virtual_service: (c.vaddr, c.vport),
        local: (c.laddr, c.lport),
        real_server: (c.raddr, c.rport),
    }
}
