//! A worker's whole connection-placement state, and the new-connection path through it.
//!
//! [`Director`] bundles what one worker owns (DESIGN.md invariant 1): its view of the
//! current snapshot, its schedulers, its local-port pools, its persistence templates and its
//! connection table. The dataplane calls:
//!
//! - [`Director::lookup`] for every packet, then [`Director::on_packet`] with the result;
//! - [`Director::connect`] for the first packet of an unknown flow: find the service, find
//!   or make the persistence template, schedule, take a local port (FNAT), insert;
//! - [`Director::expire`] once per burst or timer tick;
//! - [`Director::switch`] between bursts when the control plane publishes a snapshot.
//!
//! Nothing here allocates on the packet path or per new connection (lblc/lblcr maps aside,
//! while they grow to their fixed capacity; full, they evict and reuse); refusals are typed
//! and counted.

use std::net::IpAddr;
use std::sync::Arc;

use super::key::{Family, FlowKey};
use super::proxy_protocol::HeaderState;
use super::state::{Direction, State};
use super::table::{Conn, ConnId, ConnTable, InsertError, KeyHash, NewConn, NO_TEMPLATE};
use crate::model::laddr::{LaddrPools, PortPartition, TakeError};
use crate::model::persist::{PersistTable, TemplateKey};
use crate::model::{ForwardMethod, Protocol, ServiceId, ServiceKey, Snapshot};
use crate::sched::Schedulers;
use crate::sync::queue::Refusal;
use crate::sync::record::{close_rank, Synced};
use crate::sync::wire::SyncFamily;
use crate::sync::BACKUP_GRACE_SECS;
use crate::wire::proxy_protocol::Version;

/// Whether a service of `snap` of family `A` sends PROXY protocol headers (only such a
/// service's connections are in a table of that family).
fn sends_proxy_headers<A: Family>(snap: &Snapshot) -> bool {
    snap.services().iter().any(|s| {
        s.spec().proxy_protocol.is_some()
            && matches!(s.key(), ServiceKey::Inet { addr, .. } if A::from_ip(addr).is_some())
    })
}

/// The PROXY header state of a new connection of a service sending `version`: TCP, its
/// client and virtual service of one family, IPv4 or IPv6 (the service's validation
/// refuses the rest). Every new connection asks; only those of such a service go on,
/// out of line, so the others' path holds none of it.
#[inline(always)]
fn proxy_header<A: Family>(version: Option<Version>, key: &FlowKey<A>) -> Option<HeaderState> {
    header_state(version?, key.proto, (key.src.to_ip(), key.sport), (key.dst.to_ip(), key.dport))
}

#[cold]
#[inline(never)]
fn header_state(
    version: Version,
    proto: Protocol,
    client: (IpAddr, u16),
    virtual_service: (IpAddr, u16),
) -> Option<HeaderState> {
    match (version, proto, client.0, virtual_service.0) {
        (v, Protocol::Tcp, IpAddr::V4(c), IpAddr::V4(vs)) => {
            Some(HeaderState::new(v, (c, client.1), (vs, virtual_service.1)))
        }
        (v, Protocol::Tcp, IpAddr::V6(c), IpAddr::V6(vs)) => {
            Some(HeaderState::new(v, (c, client.1), (vs, virtual_service.1)))
        }
        _ => None,
    }
}

/// Why a new connection was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No virtual service matches the packet.
    NoService,
    /// The service has no available real server (none, all quiescent or overloaded).
    NoDest,
    /// Every local address of the FNAT service is out of ports on this worker, or it has no
    /// local address (of the connection's family).
    NoLocalPort,
    /// The connection table is full.
    TableFull,
    /// The 5-tuple already belongs to a connection.
    Exists,
}

/// What [`Director::install_synced`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// A new connection.
    Created(ConnId),
    /// An existing one moved to the record's state and deadline.
    Refreshed(ConnId),
}

/// Refusal counters of one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectorStats {
    pub no_service: u64,
    pub no_dest: u64,
    pub no_local_port: u64,
    pub table_full: u64,
    pub exists: u64,
}

/// Sizes of a worker's preallocated tables.
#[derive(Debug, Clone)]
pub struct DirectorConfig {
    pub conn_capacity: u32,
    pub template_capacity: u32,
    pub partition: PortPartition,
    pub ports: std::ops::RangeInclusive<u16>,
}

#[derive(Debug)]
pub struct Director<A> {
    snap: Arc<Snapshot>,
    scheds: Schedulers,
    pools: LaddrPools,
    persist: PersistTable,
    conns: ConnTable<A>,
    stats: DirectorStats,
}

impl<A: Family> Director<A> {
    pub fn new(snap: Arc<Snapshot>, cfg: DirectorConfig, now: u32) -> Director<A> {
        let mut pools = LaddrPools::new(cfg.partition, cfg.ports);
        pools.sync(&snap);
        let mut conns = ConnTable::new(cfg.conn_capacity, now);
        conns.set_timeouts(snap.timeouts());
        if sends_proxy_headers::<A>(&snap) {
            conns.enable_proxy_headers();
        }
        Director {
            scheds: Schedulers::new(&snap),
            persist: PersistTable::new(cfg.template_capacity, now),
            snap,
            pools,
            conns,
            stats: DirectorStats::default(),
        }
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }
    pub fn conns(&self) -> &ConnTable<A> {
        &self.conns
    }
    pub fn pools(&self) -> &LaddrPools {
        &self.pools
    }
    pub fn persist(&self) -> &PersistTable {
        &self.persist
    }
    pub fn stats(&self) -> DirectorStats {
        self.stats
    }

    /// lblc/lblcr destinations evicted from full maps, over this director's life.
    pub fn locality_evictions(&self) -> u64 {
        self.scheds.evictions()
    }

    /// Moves to a new snapshot: schedulers keep their state, pools follow the local
    /// addresses, timeouts apply from each connection's next packet. Existing connections
    /// are untouched: they carry their own rewrite.
    pub fn switch(&mut self, new: Arc<Snapshot>) {
        self.scheds.switch(&self.snap, &new);
        self.pools.sync(&new);
        self.conns.set_timeouts(new.timeouts());
        if sends_proxy_headers::<A>(&new) {
            self.conns.enable_proxy_headers();
        }
        self.snap = new;
    }

    #[inline]
    pub fn lookup(&self, key: &FlowKey<A>) -> Option<(ConnId, Direction)> {
        self.conns.lookup(key)
    }

    // Inlined into the forwarding path: as a call it costs ~25 instructions a packet.
    #[inline(always)]
    pub fn on_packet(&mut self, id: ConnId, dir: Direction, tcp_flags: u8, now: u32) -> State {
        self.conns.on_packet(id, dir, tcp_flags, now)
    }

    pub fn conn(&self, id: ConnId) -> &Conn<A> {
        self.conns.get(id)
    }

    /// See [`ConnTable::drain_sync_due`].
    pub fn drain_sync_due(&mut self, f: impl FnMut(&mut Conn<A>)) {
        self.conns.drain_sync_due(f);
    }

    /// The PROXY header state of connection `id`, if it sends one.
    #[inline(always)]
    pub fn header_mut(&mut self, id: ConnId) -> Option<&mut HeaderState> {
        self.conns.header_mut(id)
    }

    /// Sets where connection `id` stands with the SYN proxy.
    pub fn set_proxy(&mut self, id: ConnId, proxy: crate::conn::Proxy) {
        self.conns.set_proxy(id, proxy);
    }

    /// New FNAT connections hold their reply keys back from the index until
    /// [`Director::index_reply_keys`] (see [`ConnTable::defer_reply_keys`]).
    #[inline(always)]
    pub fn defer_reply_keys(&mut self) {
        self.conns.defer_reply_keys();
    }

    /// Indexes the reply keys held back since [`Director::defer_reply_keys`]. A
    /// connection whose key cannot be (its local port was lent twice) goes, its port
    /// and template released, counted as `exists`.
    pub fn index_reply_keys(&mut self) {
        let (pools, persist) = (&mut self.pools, &mut self.persist);
        let clashes = self.conns.index_reply_keys(|c| release(pools, persist, c));
        self.stats.exists += clashes as u64;
    }

    /// Creates the connection for the first packet of an unknown flow (`key` is its
    /// client-to-VIP 5-tuple). The caller then feeds the packet to [`Director::on_packet`].
    /// A full table makes room as [`ConnTable::make_room`] does (an expired or half-open
    /// connection goes, its port and template released) or refuses with `TableFull`.
    pub fn connect(&mut self, key: &FlowKey<A>, now: u32) -> Result<ConnId, Refused> {
        let hash = self.conns.hash_of(key);
        self.connect_preferring(key, None, hash, now, 0, |_, _, _, _| true)
    }

    /// [`Director::connect`] choosing the FNAT local port among up to `tries` free ones by
    /// `prefer(raddr, rport, laddr, lport)`, e.g. "the NIC's RSS hash of the reply lands on
    /// this worker's queue" (`net::rss`), so replies need no redirect (DESIGN.md invariant 2).
    /// `hash` is `key`'s in the table ([`ConnTable::hash_of`]), which the lookup that
    /// missed computed; `service` is `key`'s service when the caller found it in this
    /// director's snapshot ([`Director::snapshot`]), else it is looked up here.
    pub fn connect_preferring(
        &mut self,
        key: &FlowKey<A>,
        service: Option<ServiceId>,
        hash: KeyHash,
        now: u32,
        tries: usize,
        prefer: impl FnMut(A, u16, A, u16) -> bool,
    ) -> Result<ConnId, Refused> {
        let r = self.try_connect(key, service, hash, now, tries, prefer);
        if let Err(e) = r {
            let s = &mut self.stats;
            *match e {
                Refused::NoService => &mut s.no_service,
                Refused::NoDest => &mut s.no_dest,
                Refused::NoLocalPort => &mut s.no_local_port,
                Refused::TableFull => &mut s.table_full,
                Refused::Exists => &mut s.exists,
            } += 1;
        }
        r
    }

    fn try_connect(
        &mut self,
        key: &FlowKey<A>,
        service: Option<ServiceId>,
        hash: KeyHash,
        now: u32,
        tries: usize,
        mut prefer: impl FnMut(A, u16, A, u16) -> bool,
    ) -> Result<ConnId, Refused> {
        let sid = match service {
            Some(sid) => {
                debug_assert_eq!(
                    self.snap.find(key.proto, key.dst.to_ip(), key.dport),
                    Some(sid),
                    "the caller's service is the key's, in this snapshot"
                );
                sid
            }
            None => self.snap.find(key.proto, key.dst.to_ip(), key.dport).ok_or(Refused::NoService)?,
        };
        let svc = self.snap.service(sid);

        // Persistence: reuse the client's template if its server is still in the service.
        let mut template = None;
        let mut picked = None;
        let persistence = svc.persistence();
        if let Some(p) = persistence {
            let tkey = TemplateKey::new(svc.key(), key.src.to_ip(), p.netmask);
            if let Some(t) = self.persist.find(&tkey, now) {
                let (addr, port) = self.persist.dest(t);
                match svc.dest_index(addr, port) {
                    Some(i) => (template, picked) = (Some(t), Some(i)),
                    None => self.persist.forget(t, now),
                }
            }
            if picked.is_none() {
                let i = self.scheds.pick(&self.snap, sid, key, now).ok_or(Refused::NoDest)?;
                let d = &svc.dests()[i];
                template = self.persist.create(tkey, d.addr(), d.port(), d.counters(), p.timeout, now);
                picked = Some(i);
            }
        }
        let i = match picked {
            Some(i) => i,
            None => self.scheds.pick(&self.snap, sid, key, now).ok_or(Refused::NoDest)?,
        };
        let dest = &svc.dests()[i];
        let raddr = A::from_server_ip(dest.addr()).ok_or(Refused::NoDest)?;
        let rport = if dest.port() == 0 { key.dport } else { dest.port() };

        // A full table makes room before the local port is taken, so the port of the
        // connection that goes is free for this one.
        if self.conns.is_full() {
            let (pools, persist) = (&mut self.pools, &mut self.persist);
            if !self.conns.make_room(now, |c| release(pools, persist, c)) {
                return Err(Refused::TableFull);
            }
        }
        let (laddr, lport) = if dest.method() == ForwardMethod::FullNat {
            self.pools
                .alloc_preferring(sid, tries, |lip, lport| prefer(raddr, rport, lip, lport))
                .ok_or(Refused::NoLocalPort)?
        } else {
            (key.src, key.sport)
        };

        let new = NewConn {
            proto: key.proto,
            client: key.src,
            cport: key.sport,
            vaddr: key.dst,
            vport: key.dport,
            laddr,
            lport,
            raddr,
            rport,
            method: dest.method(),
            dest: Arc::clone(dest.counters()),
            template: template.unwrap_or(NO_TEMPLATE),
            proxy_header: proxy_header(svc.spec().proxy_protocol, key),
        };
        match self.conns.insert_hashed(new, hash, now) {
            Ok(id) => {
                if let (Some(t), Some(p)) = (template, persistence) {
                    self.persist.hold(t, p.timeout, now);
                }
                Ok(id)
            }
            Err(e) => {
                if dest.method() == ForwardMethod::FullNat {
                    self.pools.release(laddr.to_server_ip(), lport);
                }
                Err(match e {
                    InsertError::Full => Refused::TableFull,
                    InsertError::Exists => Refused::Exists,
                })
            }
        }
    }

    /// Installs or refreshes the connection a sync record describes (see [`crate::sync`]):
    /// bound to the configured service's real server (its counters counted once, however
    /// many records refresh it), FNAT's local port taken from this worker's pool, the
    /// client's persistence template found or made. Lives until `timeout_secs` plus the
    /// backup's grace from `now`. The record's family is the table's.
    pub fn install_synced(&mut self, s: &Synced<A>, now: u32) -> Result<Installed, Refusal>
    where
        A: SyncFamily,
    {
        let ((client_a, cport), (vaddr_a, vport), (raddr_a, rport)) =
            (A::split(s.client), A::split(s.virtual_service), A::split(s.real_server));
        // A NAT64 connection's server side is IPv4, mapped in its IPv6 record.
        let (client, vaddr, raddr) = (client_a.to_ip(), vaddr_a.to_ip(), raddr_a.to_server_ip());
        let local = s.local.map(A::split);
        let (laddr, lport) = local.unwrap_or((client_a, cport));
        let expires = now.saturating_add(s.timeout_secs).saturating_add(BACKUP_GRACE_SECS);
        let key = FlowKey { proto: s.proto, src: client_a, sport: cport, dst: vaddr_a, dport: vport };
        if let Some((id, dir)) = self.conns.lookup(&key) {
            let c = self.conns.get(id);
            let same = dir == Direction::In
                && c.method == s.method
                && c.raddr == raddr_a
                && c.rport == rport
                && c.laddr == laddr
                && c.lport == lport;
            let finished = matches!(c.state(), State::TimeWait | State::Close);
            if same {
                if s.proto == Protocol::Tcp && close_rank(s.state) < close_rank(c.state()) {
                    return Err(Refusal::Stale);
                }
                self.conns.refresh(id, s.state, expires, s.proxy);
                return Ok(Installed::Refreshed(id));
            }
            if !(finished && s.state == State::Established) {
                return Err(Refusal::Conflict);
            }
            // The client reopened its ports (IPVS conn_reuse_mode) on the master: the old
            // connection here ends and the new one takes its place.
            self.end_now(id);
        }
        let sid = self.snap.find(s.proto, vaddr, vport).ok_or(Refusal::NoService)?;
        let svc = self.snap.service(sid);
        let i = svc.dest_index(raddr, rport).or_else(|| svc.dest_index(raddr, 0)).ok_or(Refusal::NoDest)?;
        let dest = &svc.dests()[i];
        if local.is_some() {
            let lip = laddr.to_server_ip();
            if !svc.laddrs().iter().any(|a| a.addr == lip) {
                return Err(Refusal::NoLocalAddress);
            }
            self.pools.take(lip, lport).map_err(|e| match e {
                TakeError::NotOwned => Refusal::NoLocalAddress,
                TakeError::InUse => Refusal::PortInUse,
            })?;
        }
        let mut template = None;
        if let Some(p) = svc.persistence() {
            let tkey = TemplateKey::new(svc.key(), client, p.netmask);
            template = match self.persist.find(&tkey, now) {
                Some(t) => Some(t),
                None => self.persist.create(tkey, dest.addr(), dest.port(), dest.counters(), p.timeout, now),
            };
        }
        let release_port = |pools: &mut LaddrPools| {
            if local.is_some() {
                pools.release(laddr.to_server_ip(), lport);
            }
        };
        if self.conns.is_full() {
            let (pools, persist) = (&mut self.pools, &mut self.persist);
            if !self.conns.make_room(now, |c| release(pools, persist, c)) {
                release_port(&mut self.pools);
                return Err(Refusal::TableFull);
            }
        }
        let new = NewConn {
            proto: s.proto,
            client: client_a,
            cport,
            vaddr: vaddr_a,
            vport,
            laddr,
            lport,
            raddr: raddr_a,
            rport,
            method: s.method,
            dest: Arc::clone(dest.counters()),
            template: template.unwrap_or(NO_TEMPLATE),
            // Established elsewhere: the header went from the other director, only the
            // shift is left (with this director's configuration of the service).
            proxy_header: proxy_header(
                svc.spec().proxy_protocol,
                &FlowKey { proto: s.proto, src: client_a, sport: cport, dst: vaddr_a, dport: vport },
            )
            .map(|h| if s.state == State::SynRecv { h } else { h.established() }),
        };
        match self.conns.install(new, s.state, expires, s.proxy) {
            Ok(id) => {
                if let (Some(t), Some(p)) = (template, svc.persistence()) {
                    self.persist.hold(t, p.timeout, now);
                }
                Ok(Installed::Created(id))
            }
            Err(e) => {
                release_port(&mut self.pools);
                Err(match e {
                    InsertError::Full => Refusal::TableFull,
                    InsertError::Exists => Refusal::Conflict,
                })
            }
        }
    }

    /// An explicit expiry policy for a removed real server (IPVS's `expire_nodest_conn`):
    /// every connection bound to the server with these counters ends at the next
    /// [`Director::expire`]. A scan of the table, for the control path, not per packet.
    /// Returns how many were marked.
    pub fn expire_dest_conns(&mut self, dest: &Arc<crate::model::DestCounters>, now: u32) -> usize {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.dest().is_some_and(|d| Arc::ptr_eq(d, dest)))
            .map(|(id, _)| id)
            .collect();
        for &id in &ids {
            self.conns.expire_now(id, now);
        }
        ids.len()
    }

    /// Expires due connections (returning their local ports and releasing their templates)
    /// and due templates, looking at most at `budget` of each. Returns the connections
    /// expired. Call it every burst: what one call leaves is taken up by the next.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        self.expire_refiling(now, budget, |_| {})
    }

    /// [`Director::expire`], calling `on_refile` with each connection a packet kept alive
    /// ([`ConnTable::expire_refiling`]).
    pub fn expire_refiling(&mut self, now: u32, budget: usize, on_refile: impl FnMut(&mut Conn<A>)) -> usize {
        let (pools, persist) = (&mut self.pools, &mut self.persist);
        let n = self.conns.expire_refiling(now, budget, |c| release(pools, persist, c), on_refile);
        self.persist.expire(now, budget);
        n
    }

    /// Ends connection `id` now, releasing its local port and template: IPVS's
    /// `conn_reuse_mode`, where a client's new SYN on the ports of a connection in
    /// TIME_WAIT or CLOSE is scheduled afresh instead of reviving the old connection.
    pub fn end_now(&mut self, id: ConnId) {
        let (pools, persist) = (&mut self.pools, &mut self.persist);
        self.conns.remove_now(id, |c| release(pools, persist, c));
    }

    /// The client-to-VIP key of a packet, a convenience for tests and callers holding
    /// `IpAddr`s; `None` if an address is not of this table's family.
    pub fn key(proto: Protocol, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> Option<FlowKey<A>> {
        Some(FlowKey { proto, src: A::from_ip(src)?, sport, dst: A::from_ip(dst)?, dport })
    }
}

/// Gives back what a departing connection held.
fn release<A: Family>(pools: &mut LaddrPools, persist: &mut PersistTable, c: &Conn<A>) {
    if c.method == ForwardMethod::FullNat {
        pools.release(c.laddr.to_server_ip(), c.lport);
    }
    if c.template != NO_TEMPLATE {
        persist.release(c.template);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::state::tcp_flags::*;
    use crate::model::snapshot::LocalAddr;
    use crate::model::{DestSpec, Persistence, SchedulerKind, ServiceKey, ServiceSpec};
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg(cap: u32) -> DirectorConfig {
        DirectorConfig {
            conn_capacity: cap,
            template_capacity: cap,
            partition: PortPartition::new(1, 0).unwrap(),
            ports: 1025..=65535,
        }
    }

    fn fnat(persistent: bool, port: u16) -> Arc<Snapshot> {
        let key = ServiceKey::tcp(ip("10.0.0.1"), port);
        let mut ed = Snapshot::empty().edit();
        let persistence = persistent.then(|| Persistence { timeout: 300, netmask: ip("255.255.255.0") });
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, persistence, ..ServiceSpec::new(key) }).unwrap();
        for i in 2..5 {
            let rs = DestSpec::new(ip(&format!("192.168.1.{i}")), 8080).with_method(ForwardMethod::FullNat);
            ed.add_dest(&key, rs).unwrap();
        }
        ed.add_laddr(&key, LocalAddr { addr: ip("192.168.1.254"), ifname: "dpdk1".into() }).unwrap();
        ed.finish()
    }

    fn key(client: &str, cport: u16, vport: u16) -> FlowKey<Ipv4Addr> {
        Director::<Ipv4Addr>::key(Protocol::Tcp, ip(client), cport, ip("10.0.0.1"), vport).unwrap()
    }

    /// A new FNAT connection's reply key, held back ([`Director::defer_reply_keys`]),
    /// is indexed at the end; one a NAT connection took meanwhile (its client
    /// spoofing our local address and the port lent) makes the FNAT connection go,
    /// its port released, counted as `exists`.
    #[test]
    fn held_back_reply_keys_are_indexed_and_a_clash_undoes_its_connection() {
        let (fnat_key, nat_key) = (ServiceKey::tcp(ip("10.0.0.1"), 80), ServiceKey::tcp(ip("10.0.0.1"), 81));
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(fnat_key)).unwrap();
        ed.add_dest(&fnat_key, DestSpec::new(ip("192.168.1.2"), 8080).with_method(ForwardMethod::FullNat)).unwrap();
        ed.add_laddr(&fnat_key, LocalAddr { addr: ip("192.168.1.254"), ifname: "dpdk1".into() }).unwrap();
        ed.add_service(ServiceSpec::new(nat_key)).unwrap();
        ed.add_dest(&nat_key, DestSpec::new(ip("192.168.1.2"), 8080).with_method(ForwardMethod::Masq)).unwrap();
        let mut d = Director::<Ipv4Addr>::new(ed.finish(), cfg(16), 0);
        let lip = ip("192.168.1.254");

        d.defer_reply_keys();
        let kept = d.connect(&key("1.2.3.4", 1, 80), 0).unwrap();
        let reply = d.conn(kept).key(Direction::Out);
        assert_eq!(d.lookup(&reply), None, "held back");
        d.index_reply_keys();
        assert_eq!(d.lookup(&reply), Some((kept, Direction::Out)));

        d.defer_reply_keys();
        let gone = d.connect(&key("1.2.3.4", 2, 80), 0).unwrap();
        let lport = d.conn(gone).lport;
        assert_eq!(d.pools().usage(lip).conns, 2);
        let nat = d.connect(&key("192.168.1.254", lport, 81), 0).unwrap();
        assert_eq!(d.conn(nat).key(Direction::Out), d.conn(gone).key(Direction::Out), "the same reply key");
        d.index_reply_keys();
        assert_eq!(d.lookup(&key("1.2.3.4", 2, 80)), None, "the FNAT connection went");
        assert_eq!(d.lookup(&d.conn(nat).key(Direction::Out)), Some((nat, Direction::Out)));
        assert_eq!((d.stats().exists, d.conns().len()), (1, 2));
        assert_eq!(d.pools().usage(lip).conns, 1, "its port released");
        let counters = Arc::clone(d.snapshot().service(0).dests()[0].counters());
        assert_eq!(counters.inactive(), 1, "unbound from its server");
    }

    #[test]
    fn connections_of_a_proxy_protocol_service_carry_its_header_state() {
        let key80 = ServiceKey::tcp(ip("10.0.0.1"), 80);
        let mut ed = fnat(false, 80).edit();
        let spec = *ed.current().service(0).spec();
        ed.edit_service(ServiceSpec { proxy_protocol: Some(Version::V1), ..spec }).unwrap();
        let snap = ed.finish();
        assert_eq!(snap.service_id(&key80), Some(0));
        let mut d = Director::<Ipv4Addr>::new(snap, cfg(16), 0);
        let id = d.connect(&key("1.2.3.4", 40000, 80), 0).unwrap();
        assert!(d.conn(id).has_proxy_header());
        // "PROXY TCP4 1.2.3.4 10.0.0.1 40000 80\r\n"
        let h = *d.header_mut(id).unwrap();
        assert_eq!((h.version(), h.len(), h.acked()), (Version::V1, 38, false));

        // A connection the sync installs established: only the shift is left.
        let c = d.conn(id).clone();
        let synced = Synced {
            proto: Protocol::Tcp,
            client: "1.2.3.5:40000".parse().unwrap(),
            virtual_service: "10.0.0.1:80".parse().unwrap(),
            real_server: std::net::SocketAddrV4::new(c.raddr, 8080),
            method: ForwardMethod::FullNat,
            local: Some(std::net::SocketAddrV4::new(c.laddr, 50000)),
            state: State::Established,
            timeout_secs: 900,
            proxy: crate::conn::Proxy::Off,
        };
        let Ok(Installed::Created(synced_id)) = d.install_synced(&synced, 0) else { panic!("installed") };
        let h = *d.header_mut(synced_id).unwrap();
        assert_eq!((h.version(), h.len(), h.acked()), (Version::V1, 38, true));

        // Another service's connections have none.
        let mut d = Director::<Ipv4Addr>::new(fnat(false, 80), cfg(16), 0);
        let id = d.connect(&key("1.2.3.4", 40000, 80), 0).unwrap();
        assert!(!d.conn(id).has_proxy_header());
    }

    #[test]
    fn fnat_connection_both_directions_and_cleanup() {
        let mut d = Director::<Ipv4Addr>::new(fnat(false, 80), cfg(16), 0);
        let k = key("1.2.3.4", 40000, 80);
        assert_eq!(d.lookup(&k), None);
        let id = d.connect(&k, 0).unwrap();
        d.on_packet(id, Direction::In, SYN, 0);
        let c = d.conn(id).clone();
        assert_eq!((c.raddr, c.rport), (Ipv4Addr::new(192, 168, 1, 2), 8080));
        assert_eq!(c.laddr, Ipv4Addr::new(192, 168, 1, 254));
        let reply = FlowKey { proto: Protocol::Tcp, src: c.raddr, sport: 8080, dst: c.laddr, dport: c.lport };
        assert_eq!(d.lookup(&reply), Some((id, Direction::Out)));
        assert_eq!(d.pools().pool(ip("192.168.1.254")).unwrap().in_use(), 1);
        assert_eq!(d.expire(61, 100), 1, "SYN_RECV lives 60 s");
        assert_eq!(d.pools().pool(ip("192.168.1.254")).unwrap().in_use(), 0, "port returned");
        assert_eq!(d.connect(&key("1.2.3.4", 1, 81), 61), Err(Refused::NoService));
        assert_eq!(d.stats().no_service, 1);
    }

    #[test]
    fn persistence_across_ports_until_the_template_expires() {
        let mut d = Director::<Ipv4Addr>::new(fnat(true, 0), cfg(64), 0);
        // rr would rotate; persistence keeps 1.2.3.x on the first server, on any port.
        let first = d.connect(&key("1.2.3.4", 1000, 80), 0).unwrap();
        let server = d.conn(first).raddr;
        for (i, vport) in [443u16, 8080, 22].into_iter().enumerate() {
            let id = d.connect(&key("1.2.3.77", 2000 + i as u16, vport), 1).unwrap();
            assert_eq!(d.conn(id).raddr, server, "same /24, port {vport}");
            assert_eq!(d.conn(id).rport, 8080);
        }
        let other = d.connect(&key("1.2.4.4", 1000, 80), 1).unwrap();
        assert_ne!(d.conn(other).raddr, server, "another /24 is scheduled (rr moves on)");
        // All connections end (SYN_RECV lives 60 s); the template outlives them by its timeout.
        d.expire(61, 1000);
        assert!(d.conns().is_empty());
        let again = d.connect(&key("1.2.3.9", 3000, 80), 200).unwrap();
        assert_eq!(d.conn(again).raddr, server, "template alive: 1 + 300 > 200");
        d.expire(600, 1000);
        assert_eq!(d.persist().len(), 0, "template expired 300 s after its last use");
        let after = d.connect(&key("1.2.3.9", 3001, 80), 600).unwrap();
        assert_ne!(d.conn(after).raddr, server, "rescheduled: rr moved on");
    }

    #[test]
    fn removed_server_keeps_its_connections_until_they_end() {
        let snap = fnat(false, 80);
        let mut d = Director::<Ipv4Addr>::new(Arc::clone(&snap), cfg(16), 0);
        let id = d.connect(&key("1.2.3.4", 40000, 80), 0).unwrap();
        d.on_packet(id, Direction::In, SYN, 0);
        d.on_packet(id, Direction::Out, SYN | ACK, 0);
        d.on_packet(id, Direction::In, ACK, 0);
        let counters = Arc::clone(snap.service(0).dests()[0].counters());
        assert_eq!(counters.active(), 1);
        let mut ed = snap.edit();
        ed.delete_dest(&ServiceKey::tcp(ip("10.0.0.1"), 80), ip("192.168.1.2"), 8080).unwrap();
        d.switch(ed.finish());
        let c = d.conn(id).clone();
        assert_eq!(d.lookup(&c.key(Direction::In)), Some((id, Direction::In)));
        assert_eq!(d.on_packet(id, Direction::In, ACK, 5), State::Established);
        let next = d.connect(&key("1.2.3.5", 40000, 80), 5).unwrap();
        assert_ne!(d.conn(next).raddr, Ipv4Addr::new(192, 168, 1, 2));
        d.expire(2000, 100);
        assert_eq!(counters.active(), 0, "the removed server's counter followed its connection");
    }

    #[test]
    fn explicit_expiry_of_a_removed_servers_connections() {
        let snap = fnat(false, 80);
        let mut d = Director::<Ipv4Addr>::new(Arc::clone(&snap), cfg(16), 0);
        for cport in 1..=6 {
            let id = d.connect(&key("1.2.3.4", cport, 80), 0).unwrap();
            d.on_packet(id, Direction::In, SYN, 0); // SYN_RECV, 60 s
        }
        let counters = Arc::clone(snap.service(0).dests()[0].counters());
        assert_eq!(counters.inactive(), 2, "rr gave 2 of 6 to the first server");
        assert_eq!(d.expire_dest_conns(&counters, 5), 2);
        assert_eq!(d.expire(5, 100), 2);
        assert_eq!(counters.inactive(), 0);
        assert_eq!(d.conns().len(), 4);
    }

    #[test]
    fn port_preference_is_applied() {
        let mut d = Director::<Ipv4Addr>::new(fnat(false, 80), cfg(16), 0);
        let mut asked = vec![];
        let k = key("1.2.3.4", 1, 80);
        let id = d
            .connect_preferring(&k, None, d.conns().hash_of(&k), 0, 8, |rip, rport, lip, lport| {
                asked.push((rip, rport, lip, lport));
                lport % 4 == 3
            })
            .unwrap();
        assert_eq!(d.conn(id).lport % 4, 3);
        assert_eq!(asked[0].0, Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!((asked[0].1, asked[0].2), (8080, Ipv4Addr::new(192, 168, 1, 254)));
    }

    #[test]
    fn exhaustion_and_full_table_refuse_cleanly() {
        let cfg = DirectorConfig { ports: 5000..=5001, ..cfg(3) };
        let mut d = Director::<Ipv4Addr>::new(fnat(false, 80), cfg, 0);
        d.connect(&key("1.2.3.4", 1, 80), 0).unwrap();
        d.connect(&key("1.2.3.4", 2, 80), 0).unwrap();
        assert_eq!(d.connect(&key("1.2.3.4", 3, 80), 0), Err(Refused::NoLocalPort));
        assert_eq!(d.stats().no_local_port, 1);
        assert_eq!(d.conns().len(), 2, "existing connections untouched");
        let cfg = DirectorConfig { conn_capacity: 1, ..self::cfg(1) };
        let mut d = Director::<Ipv4Addr>::new(fnat(false, 80), cfg, 0);
        let id = d.connect(&key("1.2.3.4", 1, 80), 0).unwrap();
        establish(&mut d, id, 0);
        assert_eq!(d.connect(&key("1.2.3.4", 2, 80), 0), Err(Refused::TableFull));
        assert_eq!(d.pools().pool(ip("192.168.1.254")).unwrap().in_use(), 1, "port given back");
    }

    fn establish(d: &mut Director<Ipv4Addr>, id: ConnId, now: u32) {
        d.on_packet(id, Direction::In, SYN, now);
        d.on_packet(id, Direction::Out, SYN | ACK, now);
        assert_eq!(d.on_packet(id, Direction::In, ACK, now), State::Established);
    }

    /// A table full of a SYN flood's half-open connections admits a new one by shedding the
    /// oldest, which gives back its local port, its template and its server's count; the
    /// established connection is never shed.
    #[test]
    fn full_table_sheds_the_oldest_half_open_and_releases_it() {
        let snap = fnat(true, 80);
        let mut d = Director::<Ipv4Addr>::new(Arc::clone(&snap), cfg(4), 0);
        let bound = || -> (u64, u64) {
            let dests = snap.service(0).dests();
            (
                dests.iter().map(|x| x.counters().active() as u64).sum(),
                dests.iter().map(|x| x.counters().inactive() as u64).sum(),
            )
        };
        let real = d.connect(&key("9.9.9.9", 1, 80), 0).unwrap();
        establish(&mut d, real, 0);
        // Three flood SYNs from one /24 (one template), a second apart.
        let flood: Vec<ConnId> = (0..3u16)
            .map(|i| {
                let id = d.connect(&key("1.2.3.4", 100 + i, 80), u32::from(i)).unwrap();
                d.on_packet(id, Direction::In, SYN, u32::from(i));
                id
            })
            .collect();
        assert!(d.conns().is_full());
        assert_eq!(d.conns().half_open(), 4, "`real` moves to the other wheel when the wheel reaches it");
        let in_use = |d: &Director<Ipv4Addr>| d.pools().pool(ip("192.168.1.254")).unwrap().in_use();
        // A retransmitted SYN makes the oldest the youngest: the next oldest goes.
        d.on_packet(flood[0], Direction::In, SYN, 3);
        let gone = d.conn(flood[1]).key(Direction::In);
        let new = d.connect(&key("5.6.7.8", 1, 80), 4).unwrap();
        assert_eq!(d.conns().stats().shed, 1);
        assert_eq!(d.lookup(&gone), None);
        assert_eq!(new, flood[1], "the new connection took the shed one's entry");
        assert_eq!(d.lookup(&d.conn(flood[0]).key(Direction::In)), Some((flood[0], Direction::In)), "refreshed, kept");
        assert_eq!((d.conns().len(), in_use(&d)), (4, 4), "the shed one's port came back");
        assert_eq!(bound(), (1, 3), "the shed one unbound from its server, the new one bound");
        // In age order (by the second): flood[2] (second 2), flood[0] (refreshed at 3), the
        // first newcomer (4). Never `real`.
        let newer: Vec<ConnId> = (2..5u16).map(|i| d.connect(&key("5.6.7.8", i, 80), 5).unwrap()).collect();
        assert_eq!(newer, vec![flood[2], flood[0], new]);
        assert_eq!(d.conns().stats().shed, 4);
        assert_eq!(d.conn(real).state(), State::Established);
        assert_eq!((bound(), in_use(&d)), ((1, 3), 4));
        // The flood's template lost its holders as they were shed: once the half-open
        // connections expire, only the established connection's template is left.
        d.expire(400, 100);
        assert_eq!(d.conns().len(), 1);
        assert_eq!(d.persist().len(), 1, "the shed connections released their template");
        assert_eq!((bound(), in_use(&d)), ((1, 0), 1));
    }

    /// Established connections are never shed: a table full of them refuses, counted.
    /// Connections past their deadline that expiry has not reached are reclaimed at once.
    #[test]
    fn full_table_reclaims_the_expired_and_never_sheds_established() {
        let mut d = Director::<Ipv4Addr>::new(fnat(false, 80), cfg(3), 0);
        let ids: Vec<ConnId> = (1..=3).map(|p| d.connect(&key("1.2.3.4", p, 80), 0).unwrap()).collect();
        for &id in &ids {
            establish(&mut d, id, 0);
        }
        assert_eq!(d.connect(&key("1.2.3.5", 1, 80), 10), Err(Refused::TableFull));
        assert_eq!((d.conns().stats().refused_full, d.stats().table_full, d.conns().stats().shed), (1, 1, 0));
        // One closes (CLOSE lives 10 s); at 20 it is past its deadline, not yet expired.
        d.on_packet(ids[1], Direction::In, RST, 5);
        let new = d.connect(&key("1.2.3.5", 1, 80), 20).unwrap();
        assert_eq!(new, ids[1]);
        assert_eq!((d.conns().stats().reclaimed, d.conns().stats().expired), (1, 0));
        assert_eq!(d.pools().pool(ip("192.168.1.254")).unwrap().in_use(), 3);
        // The established ones are untouched.
        for id in [ids[0], ids[2]] {
            assert_eq!(d.conn(id).state(), State::Established);
        }
    }
}
