//! One worker's packet pipeline: classify, then ARP and ICMP for our own
//! addresses, or look up (or create) the connection, rewrite for its
//! forwarding mode, route, resolve the next hop and hand the frame to the
//! port, to the owning worker, or to the neighbour queue.
//!
//! The pipeline is pure Rust over [`Frame`]: the DPDK loop feeds it mbufs and
//! the tests feed it byte buffers. Whatever happens to a frame goes through an
//! [`Io`] sink (send, redirect, free, allocate), so one input may produce
//! several outputs (an ARP reply plus the packets that waited for it) and
//! the pipeline never touches a queue itself. Every frame that does not leave
//! is counted under a [`Discard`] reason before it is freed.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::counters::{Discard, WorkerCounters};
use crate::conn::director::{Director, DirectorConfig, Refused};
use crate::conn::{ConnId, Direction, FlowKey, Proxy, State};
use crate::frame::Frame;
use crate::net::arp::{handle_arp, write_arp_request, ArpSeen, ArpVerdict};
use crate::net::icmp::{echo_reply_in_place, error_destination, RateLimiter};
use crate::net::rss::ReplySteering;
use crate::net::{Ipv4Cidr, Learned, NeighbourTable, NextHop, Origin, PendingQueue, Queued, RouteTable};
use crate::service::fasthash::FastBuildHasher;
use crate::service::laddr::PortPartition;
use crate::service::{ForwardMethod, Protocol, ServiceKey, Snapshot};
use crate::wire::classify::icmp_error_inner;
use crate::wire::icmp::msg_type;
use crate::wire::tcp::flags as tcp_flags;
use crate::wire::{classify, ip_proto, ipv4, Classified, ClassifyPolicy, Ipv4Meta, MacAddr};
use crate::xmit::icmp_error::{IcmpErrorRewrite, OwnError};
use crate::xmit::{self, DrRewrite, FnatRewrite, NatRewrite, Offload, Toa, ToaOutcome, TunEncap, XmitError};

mod proxy;

use proxy::SynProxy;

/// Where the pipeline's frames go.
pub trait Io<F> {
    /// Transmit on `port` (the frame is fully addressed).
    fn send(&mut self, port: u16, frame: F);
    /// Hand to worker `worker`, which owns the frame's connection.
    fn redirect(&mut self, worker: u16, frame: F);
    /// Return the frame to its pool (already counted).
    fn free(&mut self, frame: F);
    /// An empty frame for a packet the gateway originates.
    fn alloc(&mut self) -> Option<F>;
    /// This worker learned a neighbour from the network that the others may
    /// need (an answer to a request, or an address we send to): tell them.
    fn neighbour_learned(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16);
}

/// A port as the pipeline sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    pub mac: MacAddr,
    pub mtu: u16,
    pub offload: Offload,
    /// Interface addresses on this port; the first is the source of the
    /// gateway's own packets (ARP requests, tunnel headers).
    pub addrs: Vec<Ipv4Cidr>,
    /// Which rx queue the NIC's RSS hash gives a reply arriving here, when
    /// the device lets us predict it: a FNAT connection then takes a local
    /// port whose replies land on its own worker's queue, so they need no
    /// redirect even without flow rules (DESIGN.md invariant 2).
    pub steering: Option<Arc<ReplySteering>>,
}

/// The gateway's layer-2/3 configuration, published to workers read-only.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    /// Indexed by DPDK port id.
    pub ports: Vec<PortView>,
    pub routes: RouteTable,
    /// Permanent neighbours: (address, MAC, port).
    pub static_neighbours: Vec<(Ipv4Addr, MacAddr, u16)>,
}

impl NetView {
    /// Connected routes for every interface address, plus `routes`.
    pub fn with_connected_routes(
        ports: Vec<PortView>,
        routes: &[crate::net::Route],
    ) -> Result<NetView, crate::net::RouteError> {
        let mut table = RouteTable::new();
        for (port, view) in ports.iter().enumerate() {
            for a in &view.addrs {
                let route = crate::net::Route { dst: a.network(), via: None, port: port as u16, src: Some(a.addr()) };
                match table.add(route) {
                    Ok(()) | Err(crate::net::RouteError::Exists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for r in routes {
            table.add(*r)?;
        }
        Ok(NetView { ports, routes: table, static_neighbours: Vec::new() })
    }

    fn source_on(&self, port: u16) -> Option<Ipv4Addr> {
        self.ports.get(usize::from(port))?.addrs.first().map(|a| a.addr())
    }
}

/// Sizes and policies of one worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub id: u16,
    pub workers: u16,
    pub conn_capacity: u32,
    pub template_capacity: u32,
    pub neighbour_capacity: usize,
    /// Seconds a learned neighbour lives without confirmation.
    pub neighbour_lifetime: u32,
    /// Packets waiting for ARP: in all, and per next hop.
    pub pending_capacity: usize,
    pub pending_per_hop: usize,
    /// Seconds a packet may wait for ARP.
    pub pending_max_wait: u32,
    pub classify: ClassifyPolicy,
    /// The SYN proxy's settings; the seed must be the same on every worker.
    pub synproxy: crate::synproxy::Settings,
}

impl WorkerConfig {
    pub fn new(id: u16, workers: u16) -> WorkerConfig {
        WorkerConfig {
            id,
            workers,
            conn_capacity: 1 << 20,
            template_capacity: 1 << 16,
            neighbour_capacity: 4096,
            neighbour_lifetime: 300,
            pending_capacity: 256,
            pending_per_hop: 16,
            pending_max_wait: 3,
            classify: ClassifyPolicy::default(),
            synproxy: crate::synproxy::Settings::new(),
        }
    }
}

type AddrSet = HashSet<Ipv4Addr, FastBuildHasher>;

/// Connections (and templates) one [`Worker::expire`] looks at: more than a
/// loop iteration can create (a 32-packet burst per port and one of
/// redirects), so expiry outpaces any arrival rate, while one call stays a
/// few microseconds.
pub const EXPIRY_BUDGET: usize = 128;

/// Everything one worker owns.
pub struct Worker<F> {
    id: u16,
    workers: u16,
    partition: PortPartition,
    director: Director<Ipv4Addr>,
    net: Arc<NetView>,
    /// `net`'s routes less those over ports whose link is down
    /// ([`Worker::follow_links`]): what packets are routed by.
    routes: RouteTable,
    /// The ports whose link is down, bit `p` for port `p`.
    down_ports: u64,
    neighbours: NeighbourTable,
    pending: PendingQueue<F>,
    pending_max_wait: u32,
    classify: ClassifyPolicy,
    /// Interface addresses (we answer ICMP echo and ARP for them).
    interface_addrs: AddrSet,
    /// Service addresses (ARP, ICMP echo, new connections).
    vips: AddrSet,
    /// FNAT local addresses (ARP, replies from real servers).
    lips: AddrSet,
    /// Real servers' addresses and routes' gateways: addresses the gateway
    /// sends to, so their ARP is learned as needed (see [`crate::net::neigh`]).
    dest_addrs: AddrSet,
    gateways: AddrSet,
    last_arp_retry: u32,
    ident: u16,
    /// Local ports tried for one whose replies land on our queue (0 when no
    /// port can be predicted).
    steering_tries: usize,
    /// ICMP errors the gateway originates, at most 1000 a second (Linux's
    /// icmp_msgs_per_sec), so a flood of expiring packets cannot double.
    icmp_errors: RateLimiter,
    /// By service id of the current snapshot, whether the SYN proxy answers
    /// the service.
    proxied: Vec<bool>,
    /// Whether it answers any: when not, new flows skip the service lookup
    /// the proxy needs.
    any_proxied: bool,
    synproxy: SynProxy<F>,
    counters: Arc<WorkerCounters>,
}

/// Why a worker could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerError(pub String);

impl std::fmt::Display for WorkerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WorkerError {}

impl<F: Frame> Worker<F> {
    pub fn new(cfg: &WorkerConfig, snap: Arc<Snapshot>, net: Arc<NetView>, now: u32) -> Result<Worker<F>, WorkerError> {
        let partition = PortPartition::new(cfg.workers, cfg.id).map_err(|e| WorkerError(e.to_string()))?;
        let director = Director::new(
            snap,
            DirectorConfig {
                conn_capacity: cfg.conn_capacity,
                template_capacity: cfg.template_capacity,
                partition,
                ports: crate::service::laddr::DEFAULT_PORTS,
            },
            now,
        );
        let mut w = Worker {
            id: cfg.id,
            workers: cfg.workers,
            partition,
            director,
            net: Arc::new(NetView::default()),
            routes: RouteTable::new(),
            down_ports: 0,
            neighbours: NeighbourTable::new(cfg.neighbour_capacity, cfg.neighbour_lifetime),
            pending: PendingQueue::new(cfg.pending_capacity, cfg.pending_per_hop),
            pending_max_wait: cfg.pending_max_wait,
            classify: cfg.classify,
            interface_addrs: AddrSet::default(),
            vips: AddrSet::default(),
            lips: AddrSet::default(),
            dest_addrs: AddrSet::default(),
            gateways: AddrSet::default(),
            last_arp_retry: now,
            ident: cfg.id.wrapping_mul(0x1000),
            icmp_errors: RateLimiter::new(1000, 50),
            steering_tries: 0,
            proxied: Vec::new(),
            any_proxied: false,
            synproxy: SynProxy::new(&cfg.synproxy, now),
            counters: Arc::new(WorkerCounters::default()),
        };
        w.set_net(net);
        w.index_services();
        w.counters.conns_capacity.set(w.director.conns().capacity() as u64);
        Ok(w)
    }

    pub fn id(&self) -> u16 {
        self.id
    }

    /// The counters, shared with the control thread.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    pub fn director(&self) -> &Director<Ipv4Addr> {
        &self.director
    }

    pub fn neighbours(&self) -> &NeighbourTable {
        &self.neighbours
    }

    /// Switches to a new configuration between bursts.
    pub fn switch(&mut self, snap: Arc<Snapshot>, net: Arc<NetView>) {
        if !Arc::ptr_eq(&snap, self.director.snapshot()) {
            self.director.switch(snap);
            self.index_services();
        }
        if !Arc::ptr_eq(&net, &self.net) {
            self.set_net(net);
        }
    }

    fn set_net(&mut self, net: Arc<NetView>) {
        self.interface_addrs = net.ports.iter().flat_map(|p| p.addrs.iter().map(|a| a.addr())).collect();
        self.gateways = net.routes.iter().filter_map(|r| r.via).collect();
        // With n queues a candidate fits with probability 1/n: 8n tries miss
        // all with probability (1 - 1/n)^(8n) < e^-8.
        let predictable = net.ports.iter().any(|p| p.steering.is_some());
        self.steering_tries = if predictable { (8 * usize::from(self.workers)).min(64) } else { 0 };
        for (ip, _, _) in &self.net.static_neighbours {
            if !net.static_neighbours.iter().any(|(new, _, _)| new == ip) {
                let _ = self.neighbours.delete(*ip);
            }
        }
        for (ip, mac, port) in &net.static_neighbours {
            // NetConfig refuses more than MAX_STATIC_NEIGHBOURS entries, the
            // table's own bound for statics (old ones are deleted above), so
            // every one the control plane accepted fits.
            let installed = self.neighbours.add_static(*ip, *mac, *port);
            debug_assert!(installed.is_ok(), "static neighbour {ip}: {installed:?}");
        }
        self.routes = net.routes.without_ports(self.down_ports);
        self.net = net;
    }

    /// Follows the ports' links (`down`: bit `p` set while port `p`'s link is
    /// down): routes over a down port give way to less specific routes over
    /// live ones, as a router's would. Called once per poll iteration; only a
    /// change rebuilds the table.
    pub fn follow_links(&mut self, down: u64) {
        if down != self.down_ports {
            self.down_ports = down;
            self.routes = self.net.routes.without_ports(down);
        }
    }

    fn index_services(&mut self) {
        let snap = self.director.snapshot().clone();
        self.vips.clear();
        self.lips.clear();
        self.dest_addrs.clear();
        self.proxied.clear();
        for svc in snap.services() {
            self.proxied.push(svc.spec().synproxy);
            if let ServiceKey::Inet { addr: IpAddr::V4(a), .. } = svc.key() {
                self.vips.insert(a);
            }
            for d in svc.dests() {
                if let IpAddr::V4(a) = d.addr() {
                    self.dest_addrs.insert(a);
                }
            }
            for l in svc.laddrs() {
                if let IpAddr::V4(a) = l.addr {
                    self.lips.insert(a);
                }
            }
        }
        self.any_proxied = self.proxied.contains(&true);
    }

    fn is_own(&self, ip: Ipv4Addr) -> bool {
        self.interface_addrs.contains(&ip) || self.vips.contains(&ip) || self.lips.contains(&ip)
    }

    fn discard(&self, frame: F, reason: Discard, io: &mut impl Io<F>) {
        self.counters.count(reason);
        io.free(frame);
    }

    /// Processes one received frame.
    pub fn process(&mut self, frame: F, in_port: u16, now: u32, io: &mut impl Io<F>) {
        self.counters.rx_packets.inc();
        self.counters.rx_bytes.add(frame.len() as u64);
        self.handle(frame, in_port, now, io);
    }

    /// Processes a frame another worker redirected here.
    pub fn process_redirected(&mut self, frame: F, in_port: u16, now: u32, io: &mut impl Io<F>) {
        self.counters.redirected_in.inc();
        self.handle(frame, in_port, now, io);
    }

    fn handle(&mut self, frame: F, in_port: u16, now: u32, io: &mut impl Io<F>) {
        match classify(&frame, self.classify) {
            Err(reason) => self.discard(frame, reason.into(), io),
            Ok(Classified::Arp { l2_len }) => self.arp(frame, usize::from(l2_len), in_port, now, io),
            Ok(Classified::Ipv4(meta)) if meta.protocol == ip_proto::ICMP => self.icmp(frame, meta, in_port, now, io),
            Ok(Classified::Ipv4(meta)) => {
                // classify passes only TCP, UDP and ICMP.
                let Some(proto) = Protocol::from_number(meta.protocol) else {
                    return self.discard(frame, crate::wire::DropReason::UnknownProtocol.into(), io);
                };
                // Everything from here is forwarded, as a router hop: refused before it
                // can create a connection.
                if meta.ttl <= 1 {
                    return self.refuse(frame, &meta, XmitError::TtlExpired { ttl: meta.ttl }, in_port, now, io);
                }
                let key = FlowKey { proto, src: meta.src, sport: meta.src_port, dst: meta.dst, dport: meta.dst_port };
                let bare_syn = proto == Protocol::Tcp
                    && meta.tcp_flags & (tcp_flags::SYN | tcp_flags::ACK | tcp_flags::RST) == tcp_flags::SYN;
                // A bare SYN to a proxied service is answered before the connection
                // lookup: each spoofed SYN of a flood would miss in an index sized for
                // millions of connections, a cache miss or two per SYN.
                if bare_syn && self.any_proxied && self.proxies(proto, &meta) {
                    return self.synproxy_first(frame, meta, key, in_port, now, io);
                }
                if let Some((id, dir)) = self.director.lookup(&key) {
                    // A client reusing the ports of a finished connection starts a new
                    // one, scheduled afresh (IPVS conn_reuse_mode): the old server may
                    // be quiesced or gone, and the old local port is still in TIME_WAIT.
                    // Through the SYN proxy the new one shows itself by its cookie ACK.
                    let finished = || matches!(self.director.conn(id).state(), State::TimeWait | State::Close);
                    let reused = dir == Direction::In
                        && (bare_syn || self.any_proxied)
                        && finished()
                        && (bare_syn || self.synproxy_reopens(id, &frame, &meta));
                    if !reused {
                        return self.forward(frame, meta, id, dir, in_port, now, io);
                    }
                    self.director.end_now(id);
                    self.counters.conns_reused.inc();
                }
                if self.lips.contains(&meta.dst) {
                    // A reply to a local port: its owner has the connection.
                    let owner = self.partition.owner(meta.dst_port);
                    if owner == self.id {
                        return self.discard(frame, Discard::NoConnection, io);
                    }
                    if owner >= self.workers {
                        return self.discard(frame, Discard::NoOwner, io);
                    }
                    self.counters.redirected_out.inc();
                    return io.redirect(owner, frame);
                }
                let to_vip = self.vips.contains(&meta.dst);
                let snap = self.director.snapshot();
                let service = (self.any_proxied || !to_vip)
                    .then(|| snap.find(proto, IpAddr::V4(meta.dst), meta.dst_port))
                    .flatten();
                if proto == Protocol::Tcp && service.is_some_and(|id| self.service_proxied(id)) {
                    // The client's ACK that may complete a handshake with us.
                    return self.synproxy_first(frame, meta, key, in_port, now, io);
                }
                if to_vip || service.is_some() {
                    // IPVS creates TCP connections on SYN only.
                    if proto == Protocol::Tcp && !bare_syn {
                        return self.discard(frame, Discard::NoConnection, io);
                    }
                    return match self.open(&key, now) {
                        Ok(id) => self.forward(frame, meta, id, Direction::In, in_port, now, io),
                        Err(refused) => self.discard(frame, refusal_drop(refused), io),
                    };
                }
                let reason =
                    if self.interface_addrs.contains(&meta.dst) { Discard::LocalUnhandled } else { Discard::NotForUs };
                self.discard(frame, reason, io)
            }
        }
    }

    /// Schedules and creates the connection of a new flow, counted.
    fn open(&mut self, key: &FlowKey<Ipv4Addr>, now: u32) -> Result<ConnId, Refused> {
        // Worker w reads rx queue w of every port: prefer a local port whose
        // reply the NIC hashes to that queue.
        let (net, routes, me) = (&self.net, &self.routes, self.id);
        let steered = |rip: IpAddr, rport: u16, lip: IpAddr, lport: u16| match (rip, lip) {
            (IpAddr::V4(rip), IpAddr::V4(lip)) => routes
                .next_hop(rip)
                .and_then(|hop| net.ports.get(usize::from(hop.port))?.steering.as_deref())
                .is_none_or(|s| s.queue(s.base(rip, rport, lip), lport) == me),
            _ => true,
        };
        let id = self.director.connect_preferring(key, now, self.steering_tries, steered)?;
        self.counters.new_conns.inc();
        // The gauge follows inserts at once; expiry updates it each tick.
        self.counters.conns_live.set(self.director.conns().len() as u64);
        if let Some(d) = self.director.conn(id).dest() {
            d.count_connection(self.id);
        }
        Ok(id)
    }

    fn arp(&mut self, mut frame: F, l2_len: usize, in_port: u16, now: u32, io: &mut impl Io<F>) {
        let Some(port) = self.net.ports.get(usize::from(in_port)) else {
            return self.discard(frame, Discard::NotForUs, io);
        };
        let our_mac = port.mac;
        let seen = match handle_arp(&mut frame, l2_len, our_mac, |ip| self.is_own(ip)) {
            Ok(seen) => seen,
            Err(_) => return self.discard(frame, Discard::BadArp, io),
        };
        if seen.learnable {
            self.learn_sender(&seen, in_port, now, io);
        }
        match seen.verdict {
            ArpVerdict::Reply => {
                self.counters.arp_replies.inc();
                self.transmit(in_port, frame, io);
            }
            ArpVerdict::Consumed => io.free(frame),
        }
    }

    /// Learns an ARP packet's sender, as Linux does: a known entry is
    /// refreshed by any ARP, a new one is made only from a packet to us. The
    /// sender must be on the port the gateway reaches its address by (the
    /// route's egress port), else one frame on the client segment claiming a
    /// real server's address would take that server's traffic. Addresses the
    /// gateway sends to are learned as needed; others (requesters) only in
    /// their bounded share of the table. Every refusal is counted.
    fn learn_sender(&mut self, seen: &ArpSeen, in_port: u16, now: u32, io: &mut impl Io<F>) {
        let (ip, mac) = (seen.sender_ip, seen.sender_mac);
        if !seen.for_us && self.neighbours.lookup(ip, now).is_none() {
            return;
        }
        if !self.reached_by(ip, in_port) {
            return self.counters.neighbours_wrong_port.inc();
        }
        if self.learn(ip, mac, in_port, self.origin_of(ip), now, io) {
            // The others hear of an answer (ARP lands on one worker's queue
            // whichever worker asked) and of what they need; a requester stays
            // here, so a flood of them does not spread.
            if seen.answer || self.neighbours.lookup(ip, now).is_some_and(|n| n.needed) {
                io.neighbour_learned(ip, mac, in_port);
            }
        }
    }

    /// Whether packets to `ip` leave by `port`: the only port whose ARP may
    /// tell us where `ip` is.
    fn reached_by(&self, ip: Ipv4Addr, port: u16) -> bool {
        self.net.routes.next_hop(ip).is_some_and(|hop| hop.port == port)
    }

    /// Whether the gateway sends to `ip`: a real server, a route's gateway,
    /// or an address packets wait for here.
    fn origin_of(&self, ip: Ipv4Addr) -> Origin {
        if self.dest_addrs.contains(&ip) || self.gateways.contains(&ip) || self.pending.is_waiting(ip) {
            Origin::Needed
        } else {
            Origin::Unsolicited
        }
    }

    /// Records a neighbour another worker learned, from the port it names, and
    /// sends what waited for it here.
    pub fn learn_neighbour(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16, now: u32, io: &mut impl Io<F>) {
        // The sender checked the port against the same routes, unless a new
        // configuration arrived in between.
        if !self.reached_by(ip, port) {
            return self.counters.neighbours_wrong_port.inc();
        }
        self.learn(ip, mac, port, self.origin_of(ip), now, io);
    }

    /// Records a neighbour, counting a refusal, and sends what waited for it.
    /// Returns whether the entry is new or changed.
    fn learn(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16, origin: Origin, now: u32, io: &mut impl Io<F>) -> bool {
        let news = match self.neighbours.learn(ip, mac, port, origin, now) {
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
        if let Some(n) = self.neighbours.lookup(ip, now).copied() {
            if let Some(src_mac) = self.net.ports.get(usize::from(n.port)).map(|p| p.mac) {
                let counters = &self.counters;
                self.pending.release(ip, |f| address_and_send(counters, f, n.port, n.mac, src_mac, io));
            }
        }
        news
    }

    fn icmp(&mut self, mut frame: F, meta: Ipv4Meta, in_port: u16, now: u32, io: &mut impl Io<F>) {
        if !self.is_own(meta.dst) {
            return self.discard(frame, Discard::NotForUs, io);
        }
        if meta.is_icmp_error() {
            return self.relay_icmp_error(frame, meta, now, io);
        }
        if meta.icmp_type != msg_type::ECHO_REQUEST {
            return self.discard(frame, Discard::LocalUnhandled, io);
        }
        match echo_reply_in_place(&mut frame, &meta) {
            Ok(()) => {
                self.counters.icmp_echo_replies.inc();
                self.transmit(in_port, frame, io);
            }
            Err(reason) => self.discard(frame, reason.into(), io),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        frame: F,
        meta: Ipv4Meta,
        id: ConnId,
        dir: Direction,
        in_port: u16,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        let proxy = self.director.conn(id).proxy();
        if let Proxy::Handshake(slot) = proxy {
            return self.synproxy_handshaking(frame, meta, id, dir, slot, in_port, now, io);
        }
        self.relay(frame, meta, id, dir, proxy, in_port, now, io);
    }

    /// Rewrites a packet of connection `id` for its mode (and the SYN proxy's
    /// deltas, `proxy`), then routes and sends it.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn relay(
        &mut self,
        mut frame: F,
        mut meta: Ipv4Meta,
        id: ConnId,
        dir: Direction,
        proxy: Proxy,
        in_port: u16,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        // Everything but the state is fixed for the connection's life: read it once.
        let c = self.director.conn(id);
        let before = c.state();
        let (client, cport, vaddr, vport) = (c.client, c.cport, c.vaddr, c.vport);
        let (laddr, lport, raddr, rport, method) = (c.laddr, c.lport, c.raddr, c.rport, c.method);
        if let Some(d) = c.dest() {
            // IPVS counts the IP length, before the rewrite changes it.
            let bytes = u64::from(meta.l3_len) + u64::from(meta.l4_len);
            match dir {
                Direction::In => d.count_inbound(self.id, 1, bytes),
                Direction::Out => d.count_outbound(self.id, 1, bytes),
            }
        }
        self.director.on_packet(id, dir, meta.tcp_flags, now);

        // Where the rewritten packet goes decides the MTU and the source of a tunnel.
        let to = match dir {
            Direction::In => raddr,
            Direction::Out => client,
        };
        let Some((mut hop, mtu, offload)) = self.egress(to) else {
            return self.discard(frame, Discard::NoRoute, io);
        };

        let result = match (method, dir) {
            (ForwardMethod::FullNat | ForwardMethod::Masq, _) => {
                let ends = Ends { client, cport, vaddr, vport, laddr, lport, raddr, rport };
                let toa = meta.protocol == ip_proto::TCP && before != State::Established;
                let at = Egress { mtu, offload };
                // Two copies: unproxied connections get the rewrite without the
                // delta arithmetic compiled in.
                match proxy {
                    Proxy::Deltas { seq, ts } => {
                        let shift = Shift::proxied(seq, ts.unwrap_or(0), dir);
                        translate(&mut frame, &mut meta, method, dir, &ends, toa, at, shift, &self.counters)
                    }
                    _ => translate(&mut frame, &mut meta, method, dir, &ends, toa, at, Shift::NONE, &self.counters),
                }
            }
            (ForwardMethod::DirectRoute, Direction::In) => {
                // The real server holds the VIP itself: it must be on-link.
                hop.addr = raddr;
                Ok(())
            }
            (ForwardMethod::Tunnel, Direction::In) => {
                let Some(encap) = self.tunnel(&hop, raddr, mtu) else {
                    return self.discard(frame, Discard::NoRoute, io);
                };
                xmit::tun::encapsulate(&mut frame, &mut meta, &encap, offload)
            }
            // DR and TUN replies bypass the gateway: the table indexes no reply
            // key for them, so a lookup never yields this pair.
            (ForwardMethod::DirectRoute | ForwardMethod::Tunnel, Direction::Out) => {
                return self.discard(frame, Discard::NoConnection, io);
            }
        };
        // A refused rewrite changed neither the frame nor `meta`.
        if let Err(e) = result {
            return self.refuse(frame, &meta, e, in_port, now, io);
        }
        self.output(frame, hop.port, hop.addr, now, io);
    }

    /// Drops a packet the rewrite refused, counted, answering it with the ICMP
    /// error a router would send: time exceeded, or fragmentation needed for a
    /// DF packet that outgrew the link. `received` describes the packet as it
    /// arrived (a refused rewrite leaves the frame unchanged).
    fn refuse(&mut self, mut frame: F, received: &Ipv4Meta, e: XmitError, in_port: u16, now: u32, io: &mut impl Io<F>) {
        self.counters.count(e.drop_reason().into());
        let error = match e {
            XmitError::TtlExpired { .. } => OwnError::TimeExceeded,
            XmitError::MtuExceeded { len, mtu } if dont_fragment(&frame, received) => {
                // The sender's packet must shrink by what we would add to it.
                let overhead = len.saturating_sub(received.ip_total_len());
                OwnError::FragmentationNeeded { next_hop_mtu: mtu.saturating_sub(overhead as u16).max(68) }
            }
            _ => return io.free(frame),
        };
        let offending = frame.data().get(received.l3_offset()..).unwrap_or(&[]);
        let (Some(from), Ok(_)) = (self.net.source_on(in_port), error_destination(offending)) else {
            return io.free(frame);
        };
        if !self.icmp_errors.allow(u64::from(now) * 1000) {
            self.counters.icmp_errors_limited.inc();
            return io.free(frame);
        }
        if xmit::icmp_error::error_reply(&mut frame, received, from, error).is_err() {
            return io.free(frame);
        }
        self.counters.icmp_errors_sent.inc();
        self.transmit(in_port, frame, io);
    }

    /// An ICMP error about a packet of one of our connections (a real server's
    /// port unreachable, a router's fragmentation needed on the way to the
    /// client): rewritten as the connection rewrites and passed to the other
    /// side, which recognises its own packet in the quote (IPVS `ip_vs_in_icmp`
    /// and `ip_vs_out_icmp`). Path MTU discovery through the gateway rests on it.
    fn relay_icmp_error(&mut self, mut frame: F, mut meta: Ipv4Meta, now: u32, io: &mut impl Io<F>) {
        let quote = match icmp_error_inner(frame.data(), &meta) {
            Ok(q) => q.tuple,
            Err(reason) => return self.discard(frame, reason.into(), io),
        };
        let (Some(proto), IpAddr::V4(qsrc), IpAddr::V4(qdst)) =
            (Protocol::from_number(quote.protocol), quote.src, quote.dst)
        else {
            return self.discard(frame, Discard::NoConnection, io);
        };
        // The quote is a packet we sent; its reverse is a packet of the connection.
        let key = FlowKey { proto, src: qdst, sport: quote.dst_port, dst: qsrc, dport: quote.src_port };
        let Some((id, dir)) = self.director.lookup(&key) else {
            return self.discard(frame, Discard::NoConnection, io);
        };
        let c = self.director.conn(id);
        let (client, cport, vaddr, vport) = (c.client, c.cport, IpAddr::V4(c.vaddr), c.vport);
        let (laddr, lport, raddr, rport, method) = (IpAddr::V4(c.laddr), c.lport, c.raddr, c.rport, c.method);
        let mut rw = IcmpErrorRewrite { decrement_ttl: true, ..IcmpErrorRewrite::default() };
        let (client_ip, raddr_ip) = (IpAddr::V4(client), IpAddr::V4(raddr));
        match (method, dir) {
            (ForwardMethod::FullNat, Direction::Out) => {
                rw.outer_src = Some(vaddr);
                rw.outer_dst = Some(client_ip);
                rw.inner_src = Some((client_ip, cport));
                rw.inner_dst = Some((vaddr, vport));
            }
            (ForwardMethod::FullNat, Direction::In) => {
                rw.outer_src = Some(laddr);
                rw.outer_dst = Some(raddr_ip);
                rw.inner_src = Some((raddr_ip, rport));
                rw.inner_dst = Some((laddr, lport));
            }
            (ForwardMethod::Masq, Direction::Out) => {
                rw.outer_src = Some(vaddr);
                rw.inner_dst = Some((vaddr, vport));
            }
            (ForwardMethod::Masq, Direction::In) => {
                rw.outer_dst = Some(raddr_ip);
                rw.inner_src = Some((raddr_ip, rport));
            }
            // The real server sent the quoted packet itself (from the VIP): it
            // gets the error as the client's packets reach it.
            (ForwardMethod::DirectRoute | ForwardMethod::Tunnel, _) => {}
        }
        let to = match dir {
            Direction::In => raddr,
            Direction::Out => client,
        };
        let Some((mut hop, mtu, offload)) = self.egress(to) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        let result = match method {
            ForwardMethod::FullNat | ForwardMethod::Masq => {
                xmit::icmp_error::rewrite(&mut frame, &mut meta, &rw, offload)
            }
            ForwardMethod::DirectRoute => {
                hop.addr = to;
                Ok(())
            }
            ForwardMethod::Tunnel => {
                let Some(encap) = self.tunnel(&hop, to, mtu) else {
                    return self.discard(frame, Discard::NoRoute, io);
                };
                xmit::tun::encapsulate(&mut frame, &mut meta, &encap, offload)
            }
        };
        if let Err(e) = result {
            return self.discard(frame, e.drop_reason().into(), io);
        }
        self.counters.icmp_errors_relayed.inc();
        self.output(frame, hop.port, hop.addr, now, io);
    }

    /// The next hop toward `to`, with the MTU and offloads of its port.
    #[inline(always)]
    fn egress(&self, to: Ipv4Addr) -> Option<(NextHop, u16, Offload)> {
        // With no live route, the configured one over a down port: the
        // packet is then dropped as link_down, which says why, not no_route.
        let hop = self.routes.next_hop(to).or_else(|| self.net.routes.next_hop(to))?;
        let port = self.net.ports.get(usize::from(hop.port))?;
        Some((hop, port.mtu, port.offload))
    }

    /// The IP-in-IP header toward `dst` through `hop`: from the route's
    /// source, else our first address on the port; `None` without either.
    fn tunnel(&mut self, hop: &NextHop, dst: Ipv4Addr, mtu: u16) -> Option<TunEncap> {
        let src = hop.src.or_else(|| self.net.source_on(hop.port))?;
        self.ident = self.ident.wrapping_add(1);
        Some(TunEncap { src: src.into(), dst: dst.into(), ttl: 64, ident: self.ident, mtu })
    }

    /// Addresses the frame to next hop `addr` on `port` and sends it, or
    /// queues it while the neighbour resolves.
    fn output(&mut self, frame: F, port: u16, addr: Ipv4Addr, now: u32, io: &mut impl Io<F>) {
        let Some(src_mac) = self.net.ports.get(usize::from(port)).map(|p| p.mac) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        if let Some(n) = self.neighbours.lookup(addr, now) {
            return address_and_send(&self.counters, frame, port, n.mac, src_mac, io);
        }
        match self.pending.push(addr, frame, now) {
            Queued::First => self.send_arp_request(port, addr, io),
            Queued::Behind => {}
            Queued::Full(frame) => self.discard(frame, Discard::NeighbourQueueFull, io),
        }
    }

    fn send_arp_request(&self, port: u16, target: Ipv4Addr, io: &mut impl Io<F>) {
        send_arp_request(&self.net, &self.counters, port, target, io);
    }

    fn transmit(&self, port: u16, frame: F, io: &mut impl Io<F>) {
        transmit(&self.counters, port, frame, io);
    }

    /// Expires due connections and templates, looking at most at
    /// [`EXPIRY_BUDGET`] of each. Call every burst: a backlog (a flood's
    /// entries all due in the same second) drains at that pace, not once a second.
    pub fn expire(&mut self, now: u32) {
        self.director.expire(now, EXPIRY_BUDGET);
    }

    /// Timers: expired connections, neighbours and waiting packets; ARP
    /// retries and the table's gauges once a second.
    pub fn tick(&mut self, now: u32, io: &mut impl Io<F>) {
        self.synproxy_tick(now, io);
        self.expire(now);
        let table = self.director.conns();
        self.counters.conns_live.set(table.len() as u64);
        self.counters.conns_capacity.set(table.capacity() as u64);
        self.counters.lblc_evictions.set(self.director.locality_evictions());
        let s = table.stats();
        self.counters.conns_expired.set(s.expired);
        self.counters.conns_reclaimed.set(s.reclaimed);
        self.counters.conns_shed.set(s.shed);
        self.neighbours.expire(now);
        let counters = &self.counters;
        self.pending.expire(now, self.pending_max_wait, |f| {
            counters.count(Discard::NeighbourTimeout);
            io.free(f);
        });
        if now != self.last_arp_retry && !self.pending.is_empty() {
            self.last_arp_retry = now;
            let (net, routes, counters) = (&self.net, &self.routes, &self.counters);
            self.pending.hops(|hop| {
                if let Some(next) = routes.next_hop(hop) {
                    send_arp_request(net, counters, next.port, hop, io);
                }
            });
        }
    }
}

/// The addresses and ports of a connection, copied out of its entry.
#[derive(Clone, Copy)]
struct Ends {
    client: Ipv4Addr,
    cport: u16,
    vaddr: Ipv4Addr,
    vport: u16,
    laddr: Ipv4Addr,
    lport: u16,
    raddr: Ipv4Addr,
    rport: u16,
}

/// The egress port's MTU and offloads.
#[derive(Clone, Copy)]
struct Egress {
    mtu: u16,
    offload: Offload,
}

/// The sequence and timestamp shifts of a SYN-proxied connection, in the
/// rewrite's terms.
#[derive(Clone, Copy)]
struct Shift {
    seq: u32,
    ack: u32,
    tsval: u32,
    tsecr: u32,
}

impl Shift {
    const NONE: Shift = Shift { seq: 0, ack: 0, tsval: 0, tsecr: 0 };

    /// The client saw our numbering: the server's shifts into it on the way
    /// out and back on the way in ([`crate::synproxy::ProxyDeltas`]).
    #[inline(always)]
    fn proxied(seq: u32, ts: u32, dir: Direction) -> Shift {
        match dir {
            Direction::Out => Shift { seq, tsval: ts, ..Shift::NONE },
            Direction::In => Shift { ack: seq, tsecr: ts, ..Shift::NONE },
        }
    }
}

/// The FNAT or NAT rewrite of a packet of connection `ends` going `dir`,
/// with the client's address as a TOA when `toa` (FNAT inbound only: the
/// toa module reads it from the packet completing the handshake).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn translate<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    method: ForwardMethod,
    dir: Direction,
    e: &Ends,
    toa: bool,
    at: Egress,
    shift: Shift,
    counters: &WorkerCounters,
) -> Result<(), XmitError> {
    match (method, dir) {
        (ForwardMethod::FullNat, Direction::In) => {
            let mut rw = FnatRewrite::inbound(e.laddr.into(), e.lport, e.raddr.into(), e.rport);
            rw.mtu = at.mtu;
            rw.decrement_ttl = true;
            (rw.ack_delta, rw.tsecr_delta) = (shift.ack, shift.tsecr);
            if toa {
                rw.toa = Some(Toa { addr: e.client.into(), port: e.cport });
            }
            xmit::fnat::rewrite(frame, meta, &rw, at.offload).map(|outcome| {
                // The packet still goes, without the client address: count it.
                if !matches!(outcome, ToaOutcome::Inserted | ToaOutcome::NotRequested) {
                    counters.toa_not_inserted.inc();
                }
            })
        }
        (ForwardMethod::FullNat, Direction::Out) => {
            let mut rw = FnatRewrite::outbound(e.vaddr.into(), e.vport, e.client.into(), e.cport);
            rw.mtu = at.mtu;
            rw.decrement_ttl = true;
            (rw.seq_delta, rw.tsval_delta) = (shift.seq, shift.tsval);
            xmit::fnat::rewrite(frame, meta, &rw, at.offload).map(|_| ())
        }
        (_, Direction::In) => {
            let rw = NatRewrite {
                decrement_ttl: true,
                ack_delta: shift.ack,
                tsecr_delta: shift.tsecr,
                ..NatRewrite::new(e.raddr.into(), e.rport)
            };
            xmit::nat::rewrite_inbound(frame, meta, &rw, at.offload)
        }
        (_, Direction::Out) => {
            let rw = NatRewrite {
                decrement_ttl: true,
                seq_delta: shift.seq,
                tsval_delta: shift.tsval,
                ..NatRewrite::new(e.vaddr.into(), e.vport)
            };
            xmit::nat::rewrite_outbound(frame, meta, &rw, at.offload)
        }
    }
}

/// Counts and hands a frame to port `port`.
fn transmit<F: Frame>(counters: &WorkerCounters, port: u16, frame: F, io: &mut impl Io<F>) {
    counters.tx_packets.inc();
    counters.tx_bytes.add(frame.len() as u64);
    io.send(port, frame);
}

/// Writes the next hop's and the egress port's MACs and sends the frame.
fn address_and_send<F: Frame>(
    counters: &WorkerCounters,
    mut frame: F,
    port: u16,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    io: &mut impl Io<F>,
) {
    if xmit::dr::rewrite(&mut frame, &DrRewrite { dst_mac, src_mac }).is_err() {
        counters.count(crate::wire::DropReason::Truncated.into());
        return io.free(frame);
    }
    transmit(counters, port, frame, io);
}

/// Sends an ARP request for `target` out of `port`, from the port's first address.
fn send_arp_request<F: Frame>(
    net: &NetView,
    counters: &WorkerCounters,
    port: u16,
    target: Ipv4Addr,
    io: &mut impl Io<F>,
) {
    let (Some(view), Some(src)) = (net.ports.get(usize::from(port)), net.source_on(port)) else {
        return;
    };
    let Some(mut req) = io.alloc() else {
        counters.count(Discard::NoMbuf);
        return;
    };
    if write_arp_request(&mut req, view.mac, src, target).is_err() {
        counters.count(Discard::NoMbuf);
        return io.free(req);
    }
    counters.arp_requests.inc();
    transmit(counters, port, req, io);
}

/// Whether the packet `meta` describes has DF set.
fn dont_fragment<F: Frame>(frame: &F, meta: &Ipv4Meta) -> bool {
    let at = meta.l3_offset() + ipv4::offset::FLAGS_FRAG;
    frame.data().get(at..at + 2).is_some_and(|b| u16::from_be_bytes([b[0], b[1]]) & ipv4::FLAG_DF != 0)
}

fn refusal_drop(r: Refused) -> Discard {
    match r {
        Refused::NoService => Discard::NoService,
        Refused::NoDest => Discard::NoDest,
        Refused::NoLocalPort => Discard::NoLocalPort,
        Refused::TableFull => Discard::TableFull,
        Refused::Exists => Discard::NoConnection,
    }
}
