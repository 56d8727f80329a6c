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
//!
//! - here: the worker's state, its configuration and timers.
//! - [`dispatch`]: where a received frame goes (ARP, ICMP, a connection, a
//!   new connection, the owning worker, the SYN proxy).
//! - [`forward`]: a connection's packets, and the ICMP errors about them,
//!   rewritten for its mode (see [`crate::xmit::dispatch`]) and sent.
//! - [`egress`]: where packets to a destination went last, so the next
//!   ones skip the route, port and neighbour lookups.
//! - [`local`]: the gateway's own addresses (ARP, ICMP echo), neighbours, and
//!   the sends every path ends in.
//! - [`kernel`]: what of the gateway's own traffic goes to a port's kernel
//!   interface instead of being dropped.
//! - [`synproxy`]: the SYN proxy's handshakes; [`synproxy6`] for IPv6.
//! - [`probe`]: the health checker's probes, sent and answered.
//! - [`proxy_protocol`]: the packets of connections sending a PROXY protocol
//!   header, IPv4 or IPv6.
//!
//! The verbs: a frame is *forwarded* when it passes through as a packet of a
//! connection (rewritten, then sent); it is *sent* when it leaves: `send_via`
//! a next hop (resolving its MAC, or queueing for ARP), `send_to_neighbour`
//! (the MACs known), `send_on_port` (fully addressed, counted as it goes).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use super::counters::{Discard, WorkerCounters};
use crate::conn::director::{Director, DirectorConfig, Installed};
use crate::conn::{ConnId, Direction, Family, State};
use crate::frame::Frame;
use crate::model::laddr::PortPartition;
use crate::model::Protocol;
use crate::model::{NetView, ServiceKey, Snapshot};
use crate::net::exception::{KernelLimiter, KernelRate};
use crate::net::icmp::RateLimiter;
use crate::net::{KernelClass, NeighbourTable, PendingQueue, RouteTable};
use crate::sync::queue::{Refusal, WorkerQueues, WorkerSyncCounters};
use crate::sync::record::{record_of, Synced};
use crate::sync::wire::{ConnRepr, Record, SyncFamily};
use crate::wire::{ClassifyPolicy, MacAddr};

mod burst;
mod dispatch;
mod egress;
mod forward;
mod ipv6;
mod kernel;
mod local;
mod nat64;
mod probe;
mod proxy_protocol;
mod roles;
mod synproxy;
mod synproxy6;

pub use burst::{FrameBurst, STAGE};
use egress::EgressCache;
use ipv6::Inet6;
use local::send_arp_request;
use roles::{AddrRoles, Addresses};
use synproxy::SynProxy;

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
    fn neighbour_learned(&mut self, ip: IpAddr, mac: MacAddr, port: u16);
    /// Hand to the kernel interface of `port` (the port it arrived on),
    /// through the main lcore, with precedence `class`. Only called for a
    /// port whose [`PortView::kernel`](crate::model::PortView) is set.
    fn to_kernel(&mut self, port: u16, frame: F, class: KernelClass);
    /// Hand a reply to a health probe to the prober (see [`crate::net::probe`]).
    fn to_prober(&mut self, frame: F);
}

/// Whether the connection sync sends a record of `c`, whose state just moved
/// (see [`crate::conn::table::ConnTable::drain_sync_due`]): a TCP connection
/// once established and its later moves toward its close, a UDP one once.
fn sync_wanted<A: crate::conn::Family>(c: &crate::conn::table::Conn<A>) -> bool {
    c.is_live()
        && match c.proto {
            Protocol::Tcp => c.state() == State::Established || (c.is_synced() && !c.state().is_half_open()),
            Protocol::Udp => !c.is_synced(),
        }
}

/// Queues a record of each of `director`'s connections packets moved to
/// where the sync wants one ([`sync_wanted`]) if a master runs (`master`);
/// with none running, notes them as synced all the same, so their later
/// changes follow if one starts. One table's part of [`Worker::sync_due`].
fn queue_sync_due<A: SyncFamily>(
    director: &mut Director<A>,
    master: Option<&WorkerQueues>,
    counters: &WorkerSyncCounters,
    now: u32,
) where
    ConnRepr<A>: Into<Record>,
{
    director.drain_sync_due(|c| {
        if sync_wanted(c) {
            if let Some(queues) = master {
                queues.push(record_of(c, now).into(), counters);
            }
            c.mark_synced();
        }
    });
}

/// Expires `director`'s due connections while a master runs, queueing a
/// record of each synced one a packet kept alive (its refresh), and of each
/// UDP one of a method that sees no replies at its first re-filing. One
/// table's part of [`Worker::expire`].
fn expire_syncing<A: SyncFamily>(
    director: &mut Director<A>,
    queues: &WorkerQueues,
    counters: &WorkerSyncCounters,
    now: u32,
) where
    ConnRepr<A>: Into<Record>,
{
    director.expire_refiling(now, EXPIRY_BUDGET, |c| {
        if c.is_synced() || (c.proto == Protocol::Udp && !c.method.sees_replies()) {
            c.mark_synced();
            queues.push(record_of(c, now).into(), counters);
        }
    });
}

/// Installs or refreshes the connection `record` describes in `director`,
/// the table of the record's family.
fn install_synced<A: SyncFamily>(
    director: &mut Director<A>,
    record: &ConnRepr<A>,
    now: u32,
) -> Result<Installed, Refusal> {
    Synced::of(record).and_then(|s| director.install_synced(&s, now))
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
    /// What the workers together hand to each port's kernel interface, per
    /// second and class: each worker takes its share.
    pub kernel_rate: KernelRate,
    /// Live connections (both families) from which a burst runs in stages
    /// ([`burst`]): below it the tables sit in the caches and the stages'
    /// bookkeeping would not pay; 0 stages every burst.
    pub staged_from: u64,
}

/// [`WorkerConfig::staged_from`]'s default. With 10k live connections (about
/// 1 MiB of entries and index) the stages took ~30 % fewer pipeline cycles a
/// packet than the packet-by-packet loop (PERFORMANCE.md, the eighth pass;
/// 32k was the threshold before). With 1k they still paid for established
/// traffic, but a SYN flood on a table that small, whose SYNs the proxy
/// answers before any lookup, ran 20-27 % more cycles a SYN staged.
pub const STAGED_FROM: u64 = 4 * 1024;

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
            kernel_rate: KernelRate::default(),
            // The unit tests' tables are small: they would never reach the
            // stages. The end-to-end tests run the gateway's default.
            staged_from: if cfg!(test) { 0 } else { STAGED_FROM },
        }
    }
}

/// Connections (and templates) one [`Worker::expire`] looks at: more than a
/// loop iteration can create (a 32-packet burst per port and one of
/// redirects), so expiry outpaces any arrival rate, while one call stays a
/// few microseconds.
pub const EXPIRY_BUDGET: usize = 128;

/// Sync records one [`Worker::take_synced`] installs: a backup catching up
/// with a master's whole table takes a few thousand iterations, each a few
/// microseconds longer.
pub const SYNC_BUDGET: usize = 64;

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
    /// Where packets to a destination went last ([`egress`]): invalidated
    /// with every change to `net`, `routes` or `neighbours`.
    egress_cache: EgressCache<Ipv4Addr>,
    pending: PendingQueue<F>,
    pending_max_wait: u32,
    classify: ClassifyPolicy,
    /// What each IPv4 address is to us: interface address, VIP, local
    /// address, held elsewhere, real server or gateway.
    addrs: AddrRoles<Ipv4Addr>,
    last_arp_retry: u32,
    ident: u16,
    /// Local ports tried for one whose replies land on our queue (0 when no
    /// port can be predicted).
    steering_tries: usize,
    /// ICMP errors the gateway originates, at most 1000 a second (Linux's
    /// icmp_msgs_per_sec), so a flood of expiring packets cannot double.
    icmp_errors: RateLimiter,
    /// This worker's share of the ports' kernel rates (see [`kernel`]).
    kernel_limiter: KernelLimiter,
    /// By service id of the current snapshot, whether the SYN proxy answers
    /// the service.
    proxied: Vec<bool>,
    /// Whether it answers any: when not, new flows skip the service lookup
    /// the proxy needs.
    any_proxied: bool,
    synproxy: SynProxy<F>,
    /// The IPv6 side: its connections, routes and neighbours ([`ipv6`]).
    /// Boxed: the IPv4 path's fields stay together.
    v6: Box<Inet6<F>>,
    /// Toward and from the sync daemon ([`crate::sync`]); `None` in a
    /// gateway built without it (tests).
    sync: Option<WorkerQueues>,
    /// See [`WorkerConfig::staged_from`].
    staged_from: u64,
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

/// Where and when a packet came in: answers to it leave by `port`, and
/// `now` (the worker's clock, in seconds) times what it does.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    port: u16,
    now: u32,
}

/// A connection, and the direction a packet of it goes.
#[derive(Debug, Clone, Copy)]
struct Leg {
    id: ConnId,
    dir: Direction,
}

impl<F: Frame> Worker<F> {
    pub fn new(cfg: &WorkerConfig, snap: Arc<Snapshot>, net: Arc<NetView>, now: u32) -> Result<Worker<F>, WorkerError> {
        let partition = PortPartition::new(cfg.workers, cfg.id).map_err(|e| WorkerError(e.to_string()))?;
        let director_config = DirectorConfig {
            conn_capacity: cfg.conn_capacity,
            template_capacity: cfg.template_capacity,
            partition,
            ports: crate::model::laddr::DEFAULT_PORTS,
        };
        let v6 = Box::new(Inet6::new(
            snap.clone(),
            director_config.clone(),
            NeighbourTable::new(cfg.neighbour_capacity, cfg.neighbour_lifetime),
            PendingQueue::new(cfg.pending_capacity, cfg.pending_per_hop),
            now,
        ));
        let director = Director::new(snap, director_config, now);
        let mut w = Worker {
            id: cfg.id,
            workers: cfg.workers,
            partition,
            director,
            net: Arc::new(NetView::default()),
            routes: RouteTable::new(),
            down_ports: 0,
            neighbours: NeighbourTable::new(cfg.neighbour_capacity, cfg.neighbour_lifetime),
            egress_cache: EgressCache::new(),
            pending: PendingQueue::new(cfg.pending_capacity, cfg.pending_per_hop),
            pending_max_wait: cfg.pending_max_wait,
            classify: cfg.classify,
            addrs: AddrRoles::default(),
            last_arp_retry: now,
            ident: cfg.id.wrapping_mul(0x1000),
            icmp_errors: RateLimiter::new(1000, 50),
            kernel_limiter: KernelLimiter::new(cfg.kernel_rate, cfg.workers),
            steering_tries: 0,
            proxied: Vec::new(),
            any_proxied: false,
            synproxy: SynProxy::new(&cfg.synproxy, now),
            v6,
            sync: None,
            staged_from: cfg.staged_from,
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

    /// Connects the worker to the sync daemon: it queues records of its
    /// connections while a master runs, and installs what a backup received.
    pub fn set_sync(&mut self, queues: WorkerQueues) {
        self.sync = Some(queues);
    }

    pub fn director(&self) -> &Director<Ipv4Addr> {
        &self.director
    }

    /// The IPv6 connections' director.
    pub fn director6(&self) -> &Director<Ipv6Addr> {
        &self.v6.director
    }

    pub fn neighbours(&self) -> &NeighbourTable {
        &self.neighbours
    }

    pub fn neighbours6(&self) -> &NeighbourTable<Ipv6Addr> {
        self.v6.neighbours()
    }

    /// Switches to a new configuration between bursts.
    pub fn switch(&mut self, snap: Arc<Snapshot>, net: Arc<NetView>) {
        if !Arc::ptr_eq(&snap, self.director.snapshot()) {
            self.v6.director.switch(snap.clone());
            self.director.switch(snap);
            self.index_services();
        }
        if !Arc::ptr_eq(&net, &self.net) {
            self.set_net(net);
        }
    }

    fn set_net(&mut self, net: Arc<NetView>) {
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
        self.egress_cache.invalidate(&net.routes);
        self.v6.set_net(&self.net, &net, self.down_ports);
        self.net = net;
        self.index_addresses();
    }

    /// Follows the ports' links (`down`: bit `p` set while port `p`'s link is
    /// down): routes over a down port give way to less specific routes over
    /// live ones, as a router's would. Called once per poll iteration; only a
    /// change rebuilds the table.
    pub fn follow_links(&mut self, down: u64) {
        if down != self.down_ports {
            self.down_ports = down;
            self.routes = self.net.routes.without_ports(down);
            self.egress_cache.invalidate(&self.net.routes);
            self.v6.follow_links(&self.net, down);
        }
    }

    fn index_services(&mut self) {
        self.proxied.clear();
        for svc in self.director.snapshot().services() {
            self.proxied.push(svc.spec().synproxy);
        }
        self.any_proxied = self.proxied.contains(&true);
        self.v6.index_services(&self.net);
        self.index_addresses();
    }

    /// Makes the map of what each IPv4 address is to us afresh, after the
    /// services or the network view changed; never per packet.
    fn index_addresses(&mut self) {
        let (snap, net) = (self.director.snapshot(), &self.net);
        let v4 = <Ipv4Addr as Family>::from_ip;
        let addrs = Addresses {
            interface: net.ports.iter().flat_map(|p| p.addrs.iter().map(|a| a.addr())),
            vips: snap.services().iter().filter_map(|svc| match svc.key() {
                ServiceKey::Inet { addr, .. } => v4(addr),
                _ => None,
            }),
            local: snap.services().iter().flat_map(|svc| svc.laddrs().iter().filter_map(|l| v4(l.addr))),
            needed: (snap.services().iter().flat_map(|svc| svc.dests().iter().filter_map(|d| v4(d.addr()))))
                .chain(net.routes.iter().filter_map(|r| r.via)),
        };
        self.addrs.rebuild(addrs, net.held.as_deref());
    }

    /// Connections in both families' tables.
    fn conns_live(&self) -> u64 {
        (self.director.conns().len() + self.v6.director.conns().len()) as u64
    }

    /// Sets the live connections' gauge: after each burst, which its new
    /// connections join at once (set at each, it cost a new connection 5
    /// instructions, `measure_pipeline.sh`), and at each tick, after expiry.
    #[inline(always)]
    fn gauge_live(&self) {
        self.counters.conns_live.set(self.conns_live());
    }

    fn discard(&self, frame: F, reason: Discard, io: &mut impl Io<F>) {
        self.counters.count(reason);
        io.free(frame);
    }

    /// Queues the sync records packets made due (see [`crate::sync`]), then
    /// expires due connections and templates, looking at most at
    /// [`EXPIRY_BUDGET`] of each. Call every burst: a backlog (a flood's
    /// entries all due in the same second) drains at that pace, not once a second.
    pub fn expire(&mut self, now: u32) {
        self.sync_due(now);
        match self.sync.as_ref().filter(|q| q.master.is_on()) {
            Some(queues) => {
                let counters = &self.counters.sync;
                expire_syncing(&mut self.director, queues, counters, now);
                expire_syncing(&mut self.v6.director, queues, counters, now);
            }
            None => {
                self.director.expire(now, EXPIRY_BUDGET);
                self.v6.director.expire(now, EXPIRY_BUDGET);
            }
        }
    }

    /// Installs what the backup sync daemon received for this worker's
    /// connections, at most [`SYNC_BUDGET`] records a call. Call every loop
    /// iteration.
    pub fn take_synced(&mut self, now: u32) {
        let Some(queues) = self.sync.as_ref() else { return };
        for _ in 0..SYNC_BUDGET {
            let Ok(record) = queues.inbox.try_recv() else { return };
            let counters = &self.counters.sync;
            let installed = match &record {
                Record::V4(r) => install_synced(&mut self.director, r, now),
                Record::V6(r) => install_synced(&mut self.v6.director, r, now),
            };
            match installed {
                Ok(Installed::Created(_)) => counters.installed.inc(),
                Ok(Installed::Refreshed(_)) => counters.updated.inc(),
                Err(why) => counters.refuse(why),
            }
        }
    }

    /// Queues a record of each connection, of either table, packets moved
    /// to where the sync wants one
    /// ([`ConnTable::drain_sync_due`](crate::conn::table::ConnTable::drain_sync_due)),
    /// while a master runs; with none running, notes them as synced all the
    /// same, so their later changes follow if one starts.
    fn sync_due(&mut self, now: u32) {
        let master = self.sync.as_ref().filter(|q| q.master.is_on());
        let counters = &self.counters.sync;
        queue_sync_due(&mut self.director, master, counters, now);
        queue_sync_due(&mut self.v6.director, master, counters, now);
    }

    /// Timers: expired connections, neighbours and waiting packets; ARP
    /// retries and the table's gauges once a second.
    pub fn tick(&mut self, now: u32, io: &mut impl Io<F>) {
        self.synproxy_tick(now, io);
        self.expire(now);
        self.tick6(now, io);
        self.gauge_live();
        let (table, table6) = (self.director.conns(), self.v6.director.conns());
        self.counters.conns_capacity.set(table.capacity() as u64);
        self.counters.lblc_evictions.set(self.director.locality_evictions() + self.v6.director.locality_evictions());
        let (s, s6) = (table.stats(), table6.stats());
        self.counters.conns_expired.set(s.expired + s6.expired);
        self.counters.conns_reclaimed.set(s.reclaimed + s6.reclaimed);
        self.counters.conns_shed.set(s.shed + s6.shed);
        self.counters.egress_route_lookups.set(self.egress_cache.route_lookups() + self.v6.egress_route_lookups());
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
