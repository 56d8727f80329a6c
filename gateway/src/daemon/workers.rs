//! The workers as the control plane reaches them: adapters between the control plane's
//! configuration and counters and the dataplane's own types, so `gatewayd` only has to name
//! its ports and hand over its workers' counters.
//!
//! - [`worker_updates`] converts each published configuration into the [`WorkerUpdate`]
//!   every worker receives (the service snapshot and the network view), computing
//!   the view again only when the network configuration changed.
//! - [`net_view`] turns the network configuration (`gwctl addr|route|neigh`, by interface
//!   name) into the [`NetView`] workers route with (by port id). It refuses what the
//!   dataplane cannot do (IPv6 entries, unknown interfaces) with an error naming the entry; a
//!   [`SnapshotSink`](crate::control::SnapshotSink) that calls it fails the publish, so the change is
//!   refused and nothing is applied.
//! - [`WorkerStatsReader`] serves `gwctl stats` from the workers' [`WorkerCounters`]
//!   (relaxed atomics the workers already keep; reading them costs a worker nothing).
//! - [`ConnectionLister`] serves `gwctl -Lc` by asking every worker for its connection table
//!   through a [`query`] channel, one page at a time; a worker answers with
//!   [`connections_of`] over its `Director`'s table. A page is bounded so answering costs a
//!   worker a bounded pause between bursts (copying a table of millions in one go would
//!   stall its forwarding for as long); the listing pages through every table, so nothing
//!   is left out, up to a bound on the whole reply. What it misses (a worker that did not
//!   answer, the bound) it says in the reply.
//! - [`LaddrUsageReader`] serves `gwctl -G` the same way: every worker answers from its port pool
//!   of the address ([`LaddrPools::usage`]), and the answers are summed. Ports are pooled
//!   per address, so an address that several services list shows their usage together.
//! - [`control_channels`] makes both ends: each worker's [`ControlInbox`] (the updates
//!   published to it and the questions asked of it, polled together between bursts) and the
//!   control plane's sink and askers.
//!
//! The daemon's one [`DataplaneView`](crate::control::DataplaneView) holds these three
//! readers and the ports, and answers each question from the one that has it.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use gwapi::api::{ConnectionInfo, KernelPathStats, PollStats, TransportProtocol, WorkerStats};

use crate::conn::{ConnTable, Family};
use crate::control::dataplane::ConnectionListing;
use crate::control::publish::{self, Broadcaster, Convert, GatewayConfig, Generation, Mailbox, PublishError};
use crate::control::query::{self, Answerer, Asker};
use crate::frame::Frame;
use crate::model::laddr::LaddrPools;
use crate::model::{ForwardMethod, NetConfig, Protocol, Snapshot};
use crate::model::{NetView, NetView6, PortView};
use crate::net::rss::ReplySteering;
use crate::net::{Cidr, FamilyAddr, Route, RouteError};
use crate::wire::ethernet::MacAddr;
use crate::worker::counters::WorkerCounters;
use crate::worker::pipeline::Worker;
use crate::worker::watchdog::Liveness;
use crate::xmit::Offload;

/// A port as `gatewayd` opened it; its index in the slice given to [`net_view`] is its DPDK
/// port id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPort {
    pub name: String,
    pub mac: MacAddr,
    /// Whether the port has a kernel exception interface (see [`PortView::kernel`]).
    pub kernel: bool,
    pub mtu: u16,
    pub offload: Offload,
    /// Predicts the rx queue of replies arriving on this port (see [`PortView::steering`]).
    pub steering: Option<Arc<ReplySteering>>,
}

/// Why a network configuration cannot be given to the workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetViewError {
    UnknownInterface(String),
    /// A prefix length longer than its address, or a route's gateway of the other
    /// family than its destination (both of which [`NetConfig`] refuses before).
    BadPrefix(IpAddr, u8),
    FamilyMismatch {
        dst: IpAddr,
        via: IpAddr,
    },
    Route(RouteError),
    RouteV6(RouteError<Ipv6Addr>),
}

impl fmt::Display for NetViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetViewError::UnknownInterface(name) => write!(f, "no port is named {name:?}"),
            NetViewError::BadPrefix(a, len) => write!(f, "{a}/{len} is not a prefix"),
            NetViewError::FamilyMismatch { dst, via } => write!(f, "gateway {via} is not of the same family as {dst}"),
            NetViewError::Route(e) => write!(f, "{e}"),
            NetViewError::RouteV6(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NetViewError {}

fn cidr<A: FamilyAddr + Into<IpAddr>>(addr: A, prefix_len: u8) -> Result<Cidr<A>, NetViewError> {
    // NetConfig has checked the prefix length against the family already.
    Cidr::new(addr, prefix_len).ok_or(NetViewError::BadPrefix(addr.into(), prefix_len))
}

/// The workers' view of `net` on `ports`, for each family: interface addresses (each with
/// its connected route), static routes and permanent neighbours. [`NetConfig`] has made
/// sure a route's gateway is of its destination's family.
pub fn net_view(net: &NetConfig, ports: &[OpenedPort]) -> Result<NetView, NetViewError> {
    let port_id = |name: &str| -> Result<u16, NetViewError> {
        ports
            .iter()
            .position(|p| p.name == name)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or_else(|| NetViewError::UnknownInterface(name.to_string()))
    };
    let mut views: Vec<PortView> = ports
        .iter()
        .map(|p| PortView {
            mac: p.mac,
            mtu: p.mtu,
            offload: p.offload,
            addrs: Vec::new(),
            steering: p.steering.clone(),
            kernel: p.kernel,
        })
        .collect();
    let mut addrs6 = Vec::new();
    for a in net.addrs() {
        let port = port_id(&a.ifname)?;
        match a.addr {
            IpAddr::V4(addr) => views[usize::from(port)].addrs.push(cidr(addr, a.prefix_len)?),
            IpAddr::V6(addr) => addrs6.push((port, cidr(addr, a.prefix_len)?)),
        }
    }
    let (mut routes, mut routes6) = (Vec::new(), Vec::new());
    for r in net.routes() {
        let port = port_id(&r.ifname)?;
        let mismatch = |via| NetViewError::FamilyMismatch { dst: r.dst, via };
        match r.dst {
            IpAddr::V4(dst) => {
                let via = r.via.map(|v| if let IpAddr::V4(v) = v { Ok(v) } else { Err(mismatch(v)) }).transpose()?;
                routes.push(Route { dst: cidr(dst, r.prefix_len)?.network(), via, port, src: None });
            }
            IpAddr::V6(dst) => {
                let via = r.via.map(|v| if let IpAddr::V6(v) = v { Ok(v) } else { Err(mismatch(v)) }).transpose()?;
                routes6.push(Route { dst: cidr(dst, r.prefix_len)?.network(), via, port, src: None });
            }
        }
    }
    let mut view = NetView::with_connected_routes(views, &routes).map_err(NetViewError::Route)?;
    view.v6 = NetView6::new(&view.ports, &addrs6, &routes6).map_err(NetViewError::RouteV6)?;
    for n in net.neighbours() {
        let neighbour = (MacAddr(n.lladdr), port_id(&n.ifname)?);
        match n.addr {
            IpAddr::V4(addr) => view.static_neighbours.push((addr, neighbour.0, neighbour.1)),
            IpAddr::V6(addr) => view.v6.static_neighbours.push((addr, neighbour.0, neighbour.1)),
        }
    }
    Ok(view)
}

/// What each worker receives when a configuration is published: the service snapshot and
/// the network view, resolved once on the control thread. A worker installs it in
/// [`ControlInbox::poll`].
#[derive(Debug, Clone)]
pub struct WorkerUpdate {
    pub services: Arc<Snapshot>,
    pub net: Arc<NetView>,
}

impl Generation for WorkerUpdate {
    fn generation(&self) -> u64 {
        self.services.generation()
    }
}

/// The converter for [`control_channels`], and the update for `initial`
/// (what the workers start with). Each update recomputes the network view only
/// when the network configuration changed. A configuration the dataplane
/// cannot run fails the publish with the reason, and so the request.
pub fn worker_updates(
    ports: Vec<OpenedPort>,
    initial: &GatewayConfig,
) -> Result<(WorkerUpdate, Convert<WorkerUpdate>), NetViewError> {
    let update =
        |config: &GatewayConfig, net: Arc<NetView>| WorkerUpdate { services: Arc::clone(&config.services), net };
    // The held addresses ride in the view: the workers decide by them what they answer.
    let view_of = |config: &GatewayConfig, ports: &[OpenedPort]| {
        net_view(&config.net, ports)
            .map(|view| Arc::new(NetView { held: config.held.as_deref().map(<[_]>::to_vec), ..view }))
    };
    let first_view = view_of(initial, &ports)?;
    let first = update(initial, Arc::clone(&first_view));
    let mut cache = (Arc::clone(&initial.net), initial.held.clone(), first_view);
    let convert: Convert<WorkerUpdate> = Box::new(move |config: &GatewayConfig| {
        if !Arc::ptr_eq(&cache.0, &config.net) || cache.1 != config.held {
            let view = view_of(config, &ports).map_err(|e| PublishError { message: e.to_string() })?;
            cache = (Arc::clone(&config.net), config.held.clone(), view);
        }
        Ok(update(config, Arc::clone(&cache.2)))
    });
    Ok((first, convert))
}

/// One worker's counters and where it runs.
#[derive(Debug, Clone)]
pub struct WorkerHandle {
    pub worker: u32,
    pub lcore: u32,
    pub counters: Arc<WorkerCounters>,
    /// Its health as the main lcore's watchdog judges it.
    pub liveness: Arc<Liveness>,
}

/// `gwctl stats` from the workers' own counters.
pub struct WorkerStatsReader {
    pub workers: Vec<WorkerHandle>,
}

impl WorkerStatsReader {
    pub fn worker_stats(&self) -> Vec<WorkerStats> {
        self.workers
            .iter()
            .map(|w| {
                let c = &w.counters;
                WorkerStats {
                    worker: w.worker,
                    lcore: w.lcore,
                    health: w.liveness.health().describe(),
                    rx_packets: c.rx_packets.get(),
                    rx_bytes: c.rx_bytes.get(),
                    tx_packets: c.tx_packets.get(),
                    tx_bytes: c.tx_bytes.get(),
                    redirected_out: c.redirected_out.get(),
                    redirected_in: c.redirected_in.get(),
                    new_connections: c.new_conns.get(),
                    connections: c.conns_live.get(),
                    connection_capacity: c.conns_capacity.get(),
                    events: c.nonzero_events().into_iter().map(|(e, n)| (e.to_string(), n)).collect(),
                    drops: c.nonzero_drops().into_iter().map(|(r, n)| (r.to_string(), n)).collect(),
                    kernel: c
                        .kernel
                        .nonzero()
                        .into_iter()
                        .map(|k| KernelPathStats {
                            port_id: k.port,
                            class: k.class.name().to_string(),
                            handed: k.handed,
                            rate_limited: k.rate_limited,
                        })
                        .collect(),
                    poll: poll_stats(&c.poll),
                }
            })
            .collect()
    }
}

/// A worker's [`PollStats`], once its loop set the cycle counter's rate.
fn poll_stats(c: &crate::worker::counters::PollCycles) -> Option<PollStats> {
    let hz = c.hz.get();
    (hz > 0).then(|| PollStats {
        hz,
        bursts: c.bursts.get(),
        busy: c.busy.get(),
        idle: c.idle.get(),
        pipeline: c.pipeline.get(),
        send: c.send.get(),
    })
}

/// The question `-Lc` asks every worker: the next page of its connections, at most `limit`
/// of them from entry `from[worker]` on (`None`: this worker is done, answer nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionsQuery {
    pub from: Vec<Option<u32>>,
    pub limit: usize,
}

/// A worker's answer to [`ConnectionsQuery`]: one page of its connections as `-Lc` shows
/// them, and where the next page starts (`None`: this was the last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionsPage {
    pub rows: Vec<ConnectionInfo>,
    pub next: Option<u32>,
}

/// The bit of a [`ConnectionsQuery`] cursor that says it is in the worker's IPv6 table:
/// entry indices stay below it ([`crate::conn::table::MAX_CAPACITY`]).
const V6_CURSOR: u32 = 1 << 31;

/// Worker `worker`'s answer to `query`: its IPv4 table, then its IPv6 table, one cursor
/// running through both ([`V6_CURSOR`] set in the second).
fn worker_connections<F: Frame>(w: &Worker<F>, worker: u32, now: u32, query: &ConnectionsQuery) -> ConnectionsPage {
    let Some(Some(from)) = query.from.get(worker as usize).copied() else {
        return ConnectionsPage::default();
    };
    let in_v6 = |page: ConnectionsPage| ConnectionsPage { next: page.next.map(|n| n | V6_CURSOR), ..page };
    if from >= V6_CURSOR {
        return in_v6(connections_page(w.director6().conns(), worker, now, from - V6_CURSOR, query.limit));
    }
    let mut page = connections_page(w.director().conns(), worker, now, from, query.limit);
    if page.next.is_none() && !w.director6().conns().is_empty() {
        // The rest of the page from the IPv6 table.
        let room = query.limit - page.rows.len();
        let more = in_v6(connections_page(w.director6().conns(), worker, now, 0, room));
        page.next = if room == 0 { Some(V6_CURSOR) } else { more.next };
        page.rows.extend(more.rows);
    }
    page
}

/// Worker `worker`'s answer to `query` from its table. `now` is the worker's clock in the
/// seconds its table's expiry times use.
pub fn connections_of<A: Family>(
    table: &ConnTable<A>,
    worker: u32,
    now: u32,
    query: &ConnectionsQuery,
) -> ConnectionsPage {
    match query.from.get(worker as usize).copied() {
        Some(Some(from)) => connections_page(table, worker, now, from, query.limit),
        _ => ConnectionsPage::default(),
    }
}

/// At most `limit` of `table`'s connections from entry `from` on, and where the next page
/// starts.
fn connections_page<A: Family>(
    table: &ConnTable<A>,
    worker: u32,
    now: u32,
    from: u32,
    limit: usize,
) -> ConnectionsPage {
    let mut rows = Vec::with_capacity(limit.min(table.len()));
    let mut next = None;
    for (id, c) in table.iter_from(from) {
        if rows.len() == limit {
            next = Some(id);
            break;
        }
        rows.push(ConnectionInfo {
            protocol: match c.proto {
                Protocol::Tcp => TransportProtocol::Tcp,
                Protocol::Udp => TransportProtocol::Udp,
            },
            state: c.state().name().to_string(),
            expires: c.expires().saturating_sub(now),
            client: (c.client.to_ip(), c.cport),
            virtual_addr: (c.vaddr.to_ip(), c.vport),
            server: (c.raddr.to_server_ip(), c.rport),
            local: (c.method == ForwardMethod::FullNat).then(|| (c.laddr.to_server_ip(), c.lport)),
            worker,
        });
    }
    ConnectionsPage { rows, next }
}

/// The question `-G` asks every worker: its usage of one local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaddrQuery {
    pub addr: IpAddr,
}

/// A worker's answer to [`LaddrQuery`]: (port conflicts, connections), as
/// [`DataplaneView::laddr_stats`](crate::control::DataplaneView::laddr_stats) gives them.
pub fn laddr_usage_of(pools: &LaddrPools, query: &LaddrQuery) -> (u64, u64) {
    let u = pools.usage(query.addr);
    (u.conflicts, u.conns)
}

/// `gwctl -G` from the workers' own port pools.
pub struct LaddrUsageReader {
    pub asker: Asker<LaddrQuery, (u64, u64)>,
}

impl LaddrUsageReader {
    /// (port conflicts, connections) of `addr`, summed over the workers. A worker that
    /// does not answer in time leaves the usage unknown, shown as zero, as
    /// [`ConnectionLister`] leaves its entries out.
    pub fn usage(&self, addr: IpAddr) -> (u64, u64) {
        match self.asker.ask(LaddrQuery { addr }) {
            Ok(per_worker) => per_worker.into_iter().fold((0, 0), |(c, n), (wc, wn)| (c + wc, n + wn)),
            Err(_) => (0, 0),
        }
    }
}

/// `gwctl -Lc` from the workers' own tables, page by page.
pub struct ConnectionLister {
    pub asker: Asker<ConnectionsQuery, ConnectionsPage>,
    /// Entries a worker copies per answer: its pause between bursts.
    pub page: usize,
    /// Rows in one listing at most (a reply must stay within what a client accepts).
    pub max_rows: usize,
}

impl ConnectionLister {
    /// Pages through every worker's table. The listing is a picture of tables that change
    /// while they are read, as in IPVS; what it misses is said, never dropped silently.
    pub fn connections(&self) -> ConnectionListing {
        let workers = self.asker.workers();
        let mut from: Vec<Option<u32>> = vec![Some(0); workers];
        let mut listed = vec![0usize; workers];
        let mut listing = ConnectionListing::default();
        while from.iter().any(Option::is_some) {
            let room = self.max_rows.saturating_sub(listing.connections.len());
            if room == 0 {
                listing.incomplete.push(format!(
                    "the listing stops at {} connections, its bound; the workers' tables hold more",
                    listing.connections.len()
                ));
                break;
            }
            let asked = from.iter().filter(|f| f.is_some()).count();
            let limit = self.page.min(room.div_ceil(asked)).max(1);
            let answers = self.asker.ask_each(ConnectionsQuery { from: from.clone(), limit });
            for (w, answer) in answers.into_iter().enumerate() {
                if from[w].is_none() {
                    continue;
                }
                match answer {
                    Ok(mut page) => {
                        let room = self.max_rows - listing.connections.len();
                        if page.rows.len() > room {
                            // Rounding gave this worker more than the bound leaves: the
                            // rest is reported with the bound.
                            page.rows.truncate(room);
                            page.next = page.next.or(Some(u32::MAX));
                        }
                        listed[w] += page.rows.len();
                        listing.connections.extend(page.rows);
                        from[w] = page.next;
                    }
                    Err(e) => {
                        listing
                            .incomplete
                            .push(format!("{e}: its connections after the first {} are missing", listed[w]));
                        from[w] = None;
                    }
                }
            }
        }
        listing
    }
}

/// One worker's end of the control plane: the updates published to it and the `-Lc` and `-G`
/// questions asked of it, each an inbox of the control [`mailbox`](crate::control::mailbox),
/// polled together once between bursts.
pub struct ControlInbox {
    updates: Mailbox<WorkerUpdate>,
    connections: Answerer<ConnectionsQuery, ConnectionsPage>,
    laddrs: Answerer<LaddrQuery, (u64, u64)>,
}

impl ControlInbox {
    /// Switches `worker` to a newly published update, if any, and answers the questions
    /// pending for it; `now` is the worker's clock. With nothing pending it is three atomic
    /// loads.
    pub fn poll<F: Frame>(&mut self, worker: &mut Worker<F>, now: u32) {
        self.updates.poll(|update| worker.switch(update.services.clone(), update.net.clone()));
        let id = u32::from(worker.id());
        self.connections.poll(|query| worker_connections(worker, id, now, &query));
        self.laddrs.poll(|query| match query.addr {
            IpAddr::V4(_) => laddr_usage_of(worker.director().pools(), &query),
            IpAddr::V6(_) => laddr_usage_of(worker.director6().pools(), &query),
        });
    }
}

/// Both ends of the control plane's channels to the workers.
pub struct ControlChannels {
    /// Publishes each configuration to every worker.
    pub sink: Broadcaster<WorkerUpdate>,
    /// Asks `-Lc`'s question (for [`ConnectionLister`]).
    pub connections: Asker<ConnectionsQuery, ConnectionsPage>,
    /// Asks `-G`'s question (for [`LaddrUsageReader`]).
    pub laddrs: Asker<LaddrQuery, (u64, u64)>,
    /// One per worker, in worker order.
    pub inboxes: Vec<ControlInbox>,
}

/// The channels to `workers` workers that start with `first`; each published configuration
/// reaches them as `convert` makes it (see [`worker_updates`]). `timeout` bounds how long a
/// publish or a question waits for the slowest worker.
pub fn control_channels(
    workers: usize,
    first: WorkerUpdate,
    convert: Convert<WorkerUpdate>,
    timeout: Duration,
) -> ControlChannels {
    let (sink, updates) = publish::broadcast_with(workers, first, timeout, convert);
    let (connections, connection_answerers) = query::queries(workers, timeout);
    let (laddrs, laddr_answerers) = query::queries(workers, timeout);
    let inboxes = updates
        .into_iter()
        .zip(connection_answerers)
        .zip(laddr_answerers)
        .map(|((updates, connections), laddrs)| ControlInbox { updates, connections, laddrs })
        .collect();
    ControlChannels { sink, connections, laddrs, inboxes }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::dataplane::NoDataplane;
    use crate::model::ServiceKey;
    use crate::net::{Ipv4Cidr, Ipv6Cidr};
    use crate::worker::counters::Discard;
    use gwapi::api::{InterfaceAddr, NeighbourConfig, RouteConfig};
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ports() -> Vec<OpenedPort> {
        ["dpdk0", "dpdk1"]
            .iter()
            .enumerate()
            .map(|(i, n)| OpenedPort {
                name: n.to_string(),
                mac: MacAddr([2, 0, 0, 0, 0, i as u8]),
                // dpdk1 has a kernel interface.
                kernel: i == 1,
                mtu: 1500,
                offload: Offload::NONE,
                steering: None,
            })
            .collect()
    }

    #[test]
    fn net_config_becomes_the_workers_view() {
        let mut net = NetConfig::default();
        net.add_addr(InterfaceAddr { addr: ip("10.0.0.1"), prefix_len: 24, ifname: "dpdk1".into() }).unwrap();
        net.add_route(RouteConfig {
            dst: ip("192.168.0.0"),
            prefix_len: 16,
            via: Some(ip("10.0.0.254")),
            ifname: "dpdk1".into(),
        })
        .unwrap();
        net.add_neighbour(NeighbourConfig {
            addr: ip("10.0.0.254"),
            lladdr: [2, 1, 2, 3, 4, 5],
            ifname: "dpdk1".into(),
        })
        .unwrap();
        let view = net_view(&net, &ports()).unwrap();
        assert_eq!(view.ports[1].addrs, vec![Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 1), 24).unwrap()]);
        assert!(view.ports[0].addrs.is_empty());
        let hop = view.routes.lookup(Ipv4Addr::new(192, 168, 3, 4)).unwrap();
        assert_eq!((hop.via, hop.port), (Some(Ipv4Addr::new(10, 0, 0, 254)), 1));
        assert_eq!(view.routes.lookup(Ipv4Addr::new(10, 0, 0, 9)).unwrap().port, 1, "connected route");
        assert_eq!(view.static_neighbours, vec![(Ipv4Addr::new(10, 0, 0, 254), MacAddr([2, 1, 2, 3, 4, 5]), 1)]);
        assert_eq!((view.ports[0].kernel, view.ports[1].kernel), (false, true), "the port with a kernel interface");
    }

    #[test]
    fn what_the_dataplane_cannot_do_is_named() {
        let mut net = NetConfig::default();
        net.add_addr(InterfaceAddr { addr: ip("10.0.0.1"), prefix_len: 24, ifname: "eth9".into() }).unwrap();
        assert_eq!(net_view(&net, &ports()).unwrap_err().to_string(), "no port is named \"eth9\"");
    }

    #[test]
    fn ipv6_addresses_routes_and_neighbours_reach_the_workers_view() {
        let mut net = NetConfig::default();
        net.add_addr(InterfaceAddr { addr: ip("10.0.0.1"), prefix_len: 24, ifname: "dpdk1".into() }).unwrap();
        net.add_addr(InterfaceAddr { addr: ip("2001:db8::1"), prefix_len: 64, ifname: "dpdk1".into() }).unwrap();
        net.add_addr(InterfaceAddr { addr: ip("2001:db8:1::1"), prefix_len: 64, ifname: "dpdk0".into() }).unwrap();
        let route = |dst: &str, prefix_len, via: &str, dev: &str| RouteConfig {
            dst: ip(dst),
            prefix_len,
            via: Some(ip(via)),
            ifname: dev.into(),
        };
        net.add_route(route("2001:db8:100::", 48, "2001:db8::fe", "dpdk1")).unwrap();
        net.add_route(route("::", 0, "fe80::1", "dpdk0")).unwrap();
        net.add_route(route("0.0.0.0", 0, "10.0.0.254", "dpdk1")).unwrap();
        net.add_neighbour(NeighbourConfig {
            addr: ip("2001:db8::fe"),
            lladdr: [2, 1, 2, 3, 4, 5],
            ifname: "dpdk1".into(),
        })
        .unwrap();
        let view = net_view(&net, &ports()).unwrap();
        // The IPv4 side has only its own family.
        assert_eq!(view.ports[1].addrs, vec![Ipv4Cidr::new(Ipv4Addr::new(10, 0, 0, 1), 24).unwrap()]);
        assert_eq!((view.routes.len(), view.static_neighbours.len()), (2, 0));
        let v6 = &view.v6;
        assert_eq!(v6.ports[1].addrs, vec!["2001:db8::1/64".parse::<Ipv6Cidr>().unwrap()]);
        assert_eq!(v6.ports[0].link_local, "fe80::ff:fe00:0".parse::<Ipv6Addr>().unwrap(), "02:00:00:00:00:00");
        let hop = |to: &str| v6.routes.next_hop(to.parse().unwrap()).unwrap();
        assert_eq!((hop("2001:db8:100:5::1").addr, hop("2001:db8:100:5::1").port), (ip6("2001:db8::fe"), 1));
        assert_eq!((hop("2001:db8::9").addr, hop("2001:db8::9").port), (ip6("2001:db8::9"), 1), "connected");
        assert_eq!(hop("2001:db8::9").src, Some(ip6("2001:db8::1")));
        assert_eq!((hop("2001:db8:1::9").port, hop("2001:db9::1").port), (0, 0));
        assert_eq!(hop("2001:db9::1").addr, ip6("fe80::1"), "the default route's link-local gateway");
        assert_eq!(v6.static_neighbours, vec![(ip6("2001:db8::fe"), MacAddr([2, 1, 2, 3, 4, 5]), 1)]);
        assert_eq!(v6.port_of(ip6("2001:db8:1::1")), Some(0));
        assert_eq!(v6.port_of(v6.ports[1].link_local), Some(1));
        assert_eq!(v6.source_on(1, ip6("2001:db8::9")), Some(ip6("2001:db8::1")));
        assert_eq!(v6.source_on(0, ip6("fe80::1")), Some(v6.ports[0].link_local));
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn a_configuration_the_dataplane_cannot_run_is_refused_whole() {
        use crate::control::apply::ControlState;
        use crate::control::publish::broadcast_with;
        use gwapi::api::{Change, ErrorKind, Request};
        use std::time::Duration;

        let initial = GatewayConfig::empty();
        let (first, convert) = worker_updates(ports(), &initial).unwrap();
        let (sink, mut mailboxes) = broadcast_with(1, first, Duration::from_secs(5), convert);
        let mut mailbox = mailboxes.remove(0);
        let worker = std::thread::spawn(move || {
            let mut switched = Vec::new();
            let until = std::time::Instant::now() + Duration::from_secs(5);
            while switched.is_empty() && std::time::Instant::now() < until {
                mailbox.poll(|u| switched.push((u.generation(), u.net.ports[0].addrs.len())));
            }
            switched
        });
        let mut state = ControlState::new(initial, Box::new(sink), Box::new(NoDataplane::default()));
        let add = |ifname: &str| Request::Apply {
            changes: vec![Change::AddAddr {
                addr: InterfaceAddr { addr: ip("10.0.0.1"), prefix_len: 24, ifname: ifname.into() },
            }],
        };
        let e = state.handle(add("eth9")).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::PublishFailed, "configuration not applied: no port is named \"eth9\"")
        );
        assert!(state.config().net.addrs().is_empty());
        state.handle(add("dpdk0")).unwrap();
        assert_eq!(worker.join().unwrap(), vec![(1, 1)], "the worker switched to the accepted change only");
    }

    /// The held addresses reach the workers in their network view, a configuration of
    /// their own confirmed like any other; a view is made again for a new held set alone.
    #[test]
    fn held_addresses_reach_the_workers_view() {
        use crate::control::apply::ControlState;
        use crate::control::publish::broadcast_with;
        use std::time::Duration;

        let initial = GatewayConfig::empty();
        let (first, convert) = worker_updates(ports(), &initial).unwrap();
        assert_eq!(first.net.held, None, "no kernel interface: every address held");
        let (sink, mut mailboxes) = broadcast_with(1, first, Duration::from_secs(5), convert);
        let mut mailbox = mailboxes.remove(0);
        let worker = std::thread::spawn(move || {
            let mut switched = Vec::new();
            let until = std::time::Instant::now() + Duration::from_secs(5);
            while switched.len() < 3 && std::time::Instant::now() < until {
                mailbox.poll(|u| switched.push((u.generation(), u.net.held.clone(), u.net.ports.len())));
            }
            switched
        });
        let mut state = ControlState::new(initial, Box::new(sink), Box::new(NoDataplane::default()));
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        state.set_held(Some(vec![vip.into()])).unwrap();
        state.set_held(Some(Vec::new())).unwrap();
        state.set_held(None).unwrap();
        assert_eq!(
            worker.join().unwrap(),
            vec![(1, Some(vec![vip.into()]), 2), (2, Some(Vec::new()), 2), (3, None, 2)],
            "each set confirmed in turn, the ports kept"
        );
    }

    /// What gatewayd's workers poll between bursts: each switches to a published
    /// configuration and answers `-Lc` and `-G` through its one inbox.
    #[test]
    fn a_worker_polling_its_control_inbox_switches_and_answers_both_questions() {
        use crate::control::SnapshotSink;
        use crate::frame::BufFrame;
        use crate::worker::pipeline::WorkerConfig;
        use std::sync::atomic::{AtomicBool, Ordering};

        let initial = GatewayConfig::empty();
        let (first, convert) = worker_updates(ports(), &initial).unwrap();
        let channels = control_channels(2, first.clone(), convert, Duration::from_secs(10));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = channels
            .inboxes
            .into_iter()
            .enumerate()
            .map(|(w, mut inbox)| {
                let (stop, first) = (stop.clone(), first.clone());
                std::thread::spawn(move || {
                    let mut cfg = WorkerConfig::new(w as u16, 2);
                    cfg.conn_capacity = 64;
                    let mut worker =
                        Worker::<BufFrame>::new(&cfg, first.services.clone(), first.net.clone(), 0).unwrap();
                    while !stop.load(Ordering::SeqCst) {
                        inbox.poll(&mut worker, 25);
                        std::thread::yield_now();
                    }
                    worker.director().snapshot().generation()
                })
            })
            .collect();
        let config = GatewayConfig { services: initial.services.edit().finish(), ..initial };
        let mut sink = channels.sink;
        sink.publish(&config).unwrap();
        assert_eq!(channels.laddrs.ask(LaddrQuery { addr: ip("192.168.1.254") }), Ok(vec![(0, 0), (0, 0)]));
        let listing = ConnectionLister { asker: channels.connections, page: 10, max_rows: 100 }.connections();
        assert_eq!((listing.connections.len(), listing.incomplete), (0, Vec::<String>::new()), "both answered");
        stop.store(true, Ordering::SeqCst);
        let running: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(running, vec![1, 1]);
    }

    /// A worker's director with `n` FNAT connections from 203.0.113.5, ports 40000 on, at t=10.
    fn director_with(n: u16) -> crate::conn::Director<Ipv4Addr> {
        use crate::conn::state::tcp_flags::SYN;
        use crate::conn::{Direction, Director, DirectorConfig};
        use crate::model::laddr::PortPartition;
        use crate::model::{DestSpec, LocalAddr, SchedulerKind, ServiceSpec};

        let key = ServiceKey::tcp(ip("10.0.0.1"), 80);
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(key) }).unwrap();
        ed.add_dest(&key, DestSpec::new(ip("192.168.1.2"), 8080).with_method(ForwardMethod::FullNat)).unwrap();
        ed.add_laddr(&key, LocalAddr { addr: ip("192.168.1.254"), ifname: "dpdk1".into() }).unwrap();
        let cfg = DirectorConfig {
            conn_capacity: 64,
            template_capacity: 16,
            partition: PortPartition::new(1, 0).unwrap(),
            ports: 1025..=65535,
        };
        let mut director = Director::<Ipv4Addr>::new(ed.finish(), cfg, 0);
        for i in 0..n {
            let flow =
                Director::<Ipv4Addr>::key(Protocol::Tcp, ip("203.0.113.5"), 40000 + i, ip("10.0.0.1"), 80).unwrap();
            let id = director.connect(&flow, 10).unwrap();
            director.on_packet(id, Direction::In, SYN, 10);
        }
        director
    }

    /// Workers answering from `directors` (None: a worker that never polls) until `stop`.
    fn answering(
        directors: Vec<Option<crate::conn::Director<Ipv4Addr>>>,
        page: usize,
        max_rows: usize,
    ) -> (ConnectionLister, Arc<std::sync::atomic::AtomicBool>, Vec<std::thread::JoinHandle<usize>>) {
        use crate::control::query::queries;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Duration;

        let (asker, answerers) =
            queries::<ConnectionsQuery, ConnectionsPage>(directors.len(), Duration::from_millis(300));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = answerers
            .into_iter()
            .zip(directors)
            .enumerate()
            .map(|(w, (mut answerer, director))| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // The worker's poll loop: answer between bursts, with its own clock (now
                    // = 25); a worker without a director is busy and never polls.
                    let mut answered = 0;
                    let until = std::time::Instant::now() + Duration::from_secs(10);
                    while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
                        if let Some(d) = &director {
                            if answerer.poll(|q| connections_of(d.conns(), w as u32, 25, &q)) {
                                answered += 1;
                            }
                        }
                        std::thread::yield_now();
                    }
                    answered
                })
            })
            .collect();
        let view = ConnectionLister { asker, page, max_rows };
        (view, stop, threads)
    }

    fn finish(stop: Arc<std::sync::atomic::AtomicBool>, threads: Vec<std::thread::JoinHandle<usize>>) -> Vec<usize> {
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn connections_come_from_the_workers_tables_through_a_query() {
        let director = director_with(1);
        let lport = director.conns().iter().next().unwrap().1.lport;
        let (view, stop, threads) = answering(vec![None, None, None, Some(director)], 1000, 1000);
        // Workers 0-2 never answer here; the one that does is worker 3.
        let listing = view.connections();
        finish(stop, threads);
        assert_eq!(
            listing.connections,
            vec![ConnectionInfo {
                protocol: TransportProtocol::Tcp,
                state: "SYN_RECV".into(),
                expires: 45, // SYN_RECV lives 60 s from t=10
                client: (ip("203.0.113.5"), 40000),
                virtual_addr: (ip("10.0.0.1"), 80),
                server: (ip("192.168.1.2"), 8080),
                local: Some((ip("192.168.1.254"), lport)),
                worker: 3,
            }]
        );
    }

    /// `-G`'s numbers are what the workers' pools hold after real connections: the live
    /// connections using the address, and the allocations that found it full, summed over
    /// the workers that answer.
    #[test]
    fn laddr_usage_comes_from_the_workers_pools_through_a_query() {
        use crate::conn::{Director, DirectorConfig, Refused};
        use crate::control::query::queries;
        use crate::model::laddr::PortPartition;
        use crate::model::{DestSpec, LocalAddr, ServiceSpec};
        use std::time::Duration;

        let key = ServiceKey::tcp(ip("10.0.0.1"), 80);
        let lip = ip("192.168.1.254");
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(key)).unwrap();
        ed.add_dest(&key, DestSpec::new(ip("192.168.1.2"), 8080).with_method(ForwardMethod::FullNat)).unwrap();
        ed.add_laddr(&key, LocalAddr { addr: lip, ifname: "dpdk1".into() }).unwrap();
        let snap = ed.finish();
        // Two workers, each with two ports of the address (5000..=5003 split by parity).
        let mut directors: Vec<Director<Ipv4Addr>> = (0..2)
            .map(|w| {
                let cfg = DirectorConfig {
                    conn_capacity: 16,
                    template_capacity: 16,
                    partition: PortPartition::new(2, w).unwrap(),
                    ports: 5000..=5003,
                };
                Director::new(Arc::clone(&snap), cfg, 0)
            })
            .collect();
        let flow =
            |cport| Director::<Ipv4Addr>::key(Protocol::Tcp, ip("203.0.113.5"), cport, ip("10.0.0.1"), 80).unwrap();
        // Worker 0: both ports taken, a third connection finds the address full; then one ends.
        for cport in 1..=2 {
            directors[0].connect(&flow(cport), 0).unwrap();
        }
        assert_eq!(directors[0].connect(&flow(3), 0), Err(Refused::NoLocalPort));
        let first = directors[0].lookup(&flow(1)).unwrap().0;
        directors[0].end_now(first);
        // Worker 1: one connection.
        directors[1].connect(&flow(4), 0).unwrap();

        let (asker, answerers) = queries::<LaddrQuery, (u64, u64)>(2, Duration::from_secs(10));
        let workers: Vec<_> = directors
            .into_iter()
            .zip(answerers)
            .map(|(director, mut answerer)| {
                std::thread::spawn(move || {
                    let until = std::time::Instant::now() + Duration::from_secs(10);
                    while std::time::Instant::now() < until && !answerer.poll(|q| laddr_usage_of(director.pools(), &q))
                    {
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let view = LaddrUsageReader { asker };
        let usage = view.usage(lip);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(usage, (1, 2), "(conflicts, connections) over both workers");
    }

    #[test]
    fn the_listing_pages_through_every_table_and_says_what_it_misses() {
        // Two workers of 10 and 7 connections, pages of 3: everything is listed, each worker
        // answering one page a question (4 and 3 pages, and empty answers once done).
        let (view, stop, threads) = answering(vec![Some(director_with(10)), Some(director_with(7))], 3, 1000);
        let listing = view.connections();
        let answered = finish(stop, threads);
        assert_eq!(listing.incomplete, Vec::<String>::new());
        let per_worker = |w: u32| listing.connections.iter().filter(|c| c.worker == w).count();
        assert_eq!((per_worker(0), per_worker(1)), (10, 7));
        let mut ports: Vec<u16> = listing.connections.iter().filter(|c| c.worker == 0).map(|c| c.client.1).collect();
        ports.sort_unstable();
        assert_eq!(ports, (40000..40010).collect::<Vec<u16>>(), "each connection once");
        assert_eq!(answered, vec![4, 4]);

        // The listing's bound: it says where it stopped.
        let (view, stop, threads) = answering(vec![Some(director_with(10)), Some(director_with(7))], 3, 8);
        let listing = view.connections();
        finish(stop, threads);
        assert_eq!(listing.connections.len(), 8);
        assert_eq!(
            listing.incomplete,
            vec!["the listing stops at 8 connections, its bound; the workers' tables hold more".to_string()]
        );

        // A worker that does not answer: the others' rows, and which worker is missing.
        let (view, stop, threads) = answering(vec![Some(director_with(5)), None], 3, 1000);
        let listing = view.connections();
        finish(stop, threads);
        assert_eq!(listing.connections.len(), 5);
        assert_eq!(
            listing.incomplete,
            vec!["worker 1 did not answer within 300ms: its connections after the first 0 are missing".to_string()]
        );
    }

    #[test]
    fn stats_read_the_workers_counters() {
        let counters = Arc::new(WorkerCounters::default());
        counters.rx_packets.add(10);
        counters.new_conns.inc();
        counters.count(Discard::NoService);
        counters.count(Discard::NoService);
        let view = WorkerStatsReader {
            workers: vec![WorkerHandle { worker: 0, lcore: 1, counters: counters.clone(), liveness: Arc::default() }],
        };
        let stats = view.worker_stats();
        assert_eq!(stats.len(), 1);
        assert_eq!((stats[0].rx_packets, stats[0].new_connections), (10, 1));
        assert_eq!(stats[0].drops, vec![("no_service".to_string(), 2)]);
        counters.rx_packets.inc();
        assert_eq!(view.worker_stats()[0].rx_packets, 11, "read live, not copied at construction");
    }
}
