//! The immutable snapshot of services and real servers that workers read without locks, and
//! the editor that produces the next one.
//!
//! Why a snapshot: the packet path must neither lock nor see half a change (DESIGN.md
//! invariants 1 and 3). The control plane edits a private copy, validating every change
//! before it touches the copy, and publishes the result as an `Arc<Snapshot>`; each worker
//! switches its pointer between bursts. Services are `Arc`ed inside the snapshot so an edit
//! copies only the service it changes.
//!
//! What survives an edit: each real server's [`DestCounters`] are shared by every snapshot
//! that contains the server and by every connection bound to it. A removed server's counters
//! stay alive as long as a connection holds them (and until its service's traffic, which sums
//! them, has folded them in: [`ServiceTraffic`]), and if the same server is added back to the
//! same service meanwhile it gets the same counters again (IPVS revives it from its "trash"
//! list for the same reason): otherwise the old connections would decrement counters nobody
//! reads and the new ones would start from zero.
//!
//! Hash-based schedulers (dh, sh, mh) depend only on the real-server list, so their lookup
//! tables are computed here, once per edit on the control plane, and shared read-only by every
//! worker instead of being rebuilt on each.

use std::net::IpAddr;
use std::sync::{Arc, Weak};

use gwapi::addr::mask_prefix_len;

use super::counters::{DestCounters, ServiceTraffic};
use super::error::ConfigError;
use super::fasthash::FastMap;
use super::types::{
    DestSpec, ForwardMethod, MarkRule, Persistence, Protocol, SchedulerKind, ServiceKey, ServiceSpec, SockAddr,
};
use crate::conn::Timeouts;
use crate::net::cidr::network_of;
use crate::sched::{EditLog, EditStep, Prepared, WrrMeasure};
use crate::stats::TrafficCounts;

/// Index of a service in its snapshot. Valid only with the snapshot it came from.
pub type ServiceId = u32;

/// A real server as the workers see it.
#[derive(Debug, Clone)]
pub struct Dest {
    spec: DestSpec,
    counters: Arc<DestCounters>,
}

impl Dest {
    pub fn spec(&self) -> &DestSpec {
        &self.spec
    }
    pub fn addr(&self) -> IpAddr {
        self.spec.addr
    }
    pub fn port(&self) -> u16 {
        self.spec.port
    }
    pub fn method(&self) -> ForwardMethod {
        self.spec.method
    }
    pub fn weight(&self) -> u32 {
        self.spec.weight
    }
    pub fn counters(&self) -> &Arc<DestCounters> {
        &self.counters
    }
    /// Whether a scheduler may give this server a new connection: not quiescent (weight 0)
    /// and not over its upper threshold.
    pub fn is_available(&self) -> bool {
        self.spec.weight > 0 && !self.counters.is_overloaded()
    }
}

/// A local address of a FNAT service (`-P -z addr -F ifname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddr {
    pub addr: IpAddr,
    pub ifname: String,
}

/// A virtual service as the workers see it.
#[derive(Debug, Clone)]
pub struct Service {
    spec: ServiceSpec,
    dests: Vec<Dest>,
    laddrs: Vec<LocalAddr>,
    /// The dh/sh/mh lookup table for `dests`; `None` for the other schedulers.
    prepared: Option<Arc<Prepared>>,
    /// Kept across edits of the service; a deleted and re-added service starts from zero.
    traffic: Arc<ServiceTraffic>,
    /// What the edit that made this snapshot did to the service, change by change, for the
    /// workers' schedulers to replay (see `sched`).
    edits: EditLog,
}

impl Service {
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }
    pub fn key(&self) -> ServiceKey {
        self.spec.key
    }
    pub fn scheduler(&self) -> SchedulerKind {
        self.spec.scheduler
    }
    pub fn persistence(&self) -> Option<Persistence> {
        self.spec.persistence
    }
    pub fn dests(&self) -> &[Dest] {
        &self.dests
    }
    pub fn laddrs(&self) -> &[LocalAddr] {
        &self.laddrs
    }
    pub fn prepared(&self) -> Option<&Prepared> {
        self.prepared.as_deref()
    }
    pub fn edit_log(&self) -> &EditLog {
        &self.edits
    }
    /// The service's traffic counters (`--stats`, `--rate`).
    pub fn traffic(&self) -> &Arc<ServiceTraffic> {
        &self.traffic
    }
    /// The service's traffic counters, then each of its real servers': what `-Z` zeroes
    /// and the rate estimator steps.
    pub fn all_traffic(&self) -> impl Iterator<Item = &dyn TrafficCounts> {
        let service: &dyn TrafficCounts = &*self.traffic;
        std::iter::once(service).chain(self.dests.iter().map(|d| d.counters.traffic() as &dyn TrafficCounts))
    }
    /// Position of the real server `addr:port` in [`Service::dests`].
    pub fn dest_index(&self, addr: IpAddr, port: u16) -> Option<usize> {
        self.dests.iter().position(|d| d.spec.addr == addr && d.spec.port == port)
    }
}

/// Everything the workers need to place a new connection, immutable once published.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    generation: u64,
    services: Vec<Arc<Service>>,
    by_key: FastMap<ServiceKey, ServiceId>,
    /// The IPv4 services again, under a packed `u64` key: the per-new-connection lookup
    /// then hashes one word instead of an enum holding an `IpAddr`.
    by_v4: FastMap<u64, ServiceId>,
    mark_rules: Vec<MarkRule>,
    timeouts: Timeouts,
    /// How many workers count traffic (the slots of every real server's
    /// [`Traffic`](crate::stats::Traffic)).
    workers: usize,
    /// Counters of removed real servers that connections still hold (see the module docs).
    trash: FastMap<(ServiceKey, IpAddr, u16), Weak<DestCounters>>,
}

impl Snapshot {
    /// The snapshot a daemon starts with: no services, default timeouts.
    pub fn empty() -> Arc<Snapshot> {
        Snapshot::for_workers(1)
    }

    /// An empty snapshot whose traffic counters have a slot for each of `workers` workers.
    pub fn for_workers(workers: usize) -> Arc<Snapshot> {
        Arc::new(Snapshot { workers, ..Snapshot::default() })
    }

    /// Starts an edit; the snapshot itself never changes.
    pub fn edit(&self) -> SnapshotEditor {
        SnapshotEditor { next: self.clone() }
    }

    /// Counts the edits this snapshot descends from; workers report it to confirm a switch.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn services(&self) -> &[Arc<Service>] {
        &self.services
    }

    pub fn service(&self, id: ServiceId) -> &Service {
        &self.services[id as usize]
    }

    pub fn service_id(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.by_key.get(key).copied()
    }

    pub fn mark_rules(&self) -> &[MarkRule] {
        &self.mark_rules
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The service a new connection to `dst:dport` belongs to: the exact (protocol, address,
    /// port) service first, then the fwmark service of the first match rule that matches,
    /// then the address's all-ports service. An exact service is the most specific statement
    /// an operator can make, a match rule names ports explicitly, port 0 names none.
    ///
    /// Inline for the exact IPv4 service, which every new connection's packet looks up:
    /// the caller's address is then never built into an `IpAddr` and back.
    #[inline]
    pub fn find(&self, proto: Protocol, dst: IpAddr, dport: u16) -> Option<ServiceId> {
        if let IpAddr::V4(a) = dst {
            if let Some(id) = self.find_exact_v4(proto, a, dport) {
                return Some(id);
            }
        }
        self.find_inexact(proto, dst, dport)
    }

    /// The exact IPv4 service of `dst:dport`, the first step of [`Snapshot::find`].
    #[inline]
    pub fn find_exact_v4(&self, proto: Protocol, dst: std::net::Ipv4Addr, dport: u16) -> Option<ServiceId> {
        self.by_v4.get(&pack_v4(proto, dst, dport)).copied()
    }

    /// [`Snapshot::find`] past the exact IPv4 service: for a caller that asked
    /// [`Snapshot::find_exact_v4`] already.
    #[inline(never)]
    pub fn find_inexact(&self, proto: Protocol, dst: IpAddr, dport: u16) -> Option<ServiceId> {
        if dst.is_ipv6() {
            if let Some(&id) = self.by_key.get(&ServiceKey::Inet { proto, addr: dst, port: dport }) {
                return Some(id);
            }
        }
        for rule in &self.mark_rules {
            if rule_matches(rule, proto, dst, dport) {
                if let Some(&id) = self.by_key.get(&ServiceKey::Fwmark(rule.mark)) {
                    return Some(id);
                }
            }
        }
        match dst {
            IpAddr::V4(a) => self.by_v4.get(&pack_v4(proto, a, 0)).copied(),
            IpAddr::V6(_) => self.by_key.get(&ServiceKey::Inet { proto, addr: dst, port: 0 }).copied(),
        }
    }

    fn index(&mut self, key: ServiceKey, id: ServiceId) {
        self.by_key.insert(key, id);
        if let ServiceKey::Inet { proto, addr: IpAddr::V4(a), port } = key {
            self.by_v4.insert(pack_v4(proto, a, port), id);
        }
    }
}

fn pack_v4(proto: Protocol, addr: std::net::Ipv4Addr, port: u16) -> u64 {
    (proto.number() as u64) << 48 | (port as u64) << 32 | u32::from(addr) as u64
}

fn rule_matches(rule: &MarkRule, proto: Protocol, dst: IpAddr, dport: u16) -> bool {
    rule.proto.is_none_or(|p| p == proto)
        && prefix_contains(rule.dst, rule.prefix_len, dst)
        && (rule.ports.is_empty() || rule.ports.iter().any(|&(lo, hi)| lo <= dport && dport <= hi))
}

fn prefix_contains(net: IpAddr, prefix_len: u8, addr: IpAddr) -> bool {
    net.is_ipv4() == addr.is_ipv4() && network_of(net, prefix_len) == network_of(addr, prefix_len)
}

/// A private copy of a snapshot being edited. Each method either applies its whole change or
/// returns an error and changes nothing, so a failed request leaves the copy as it was;
/// [`SnapshotEditor::finish`] publishes the copy.
#[derive(Debug)]
pub struct SnapshotEditor {
    next: Snapshot,
}

impl SnapshotEditor {
    /// The snapshot as edited so far.
    pub fn current(&self) -> &Snapshot {
        &self.next
    }

    /// `-A`: adds a service with no real servers.
    pub fn add_service(&mut self, spec: ServiceSpec) -> Result<(), ConfigError> {
        validate_service(&spec)?;
        if self.next.by_key.contains_key(&spec.key) {
            return Err(ConfigError::ServiceExists(spec.key));
        }
        if let ServiceKey::Inet { addr, .. } = spec.key {
            if let Some(local_of) = self.local_address_of(addr) {
                return Err(ConfigError::VipIsLocalAddress { addr, vip_of: spec.key, local_of });
            }
        }
        let id = self.next.services.len() as ServiceId;
        let mut edits = EditLog::default();
        edits.record(self.next.generation + 1, EditStep::Restart { wrr: WrrMeasure::of(&[]) });
        self.next.services.push(Arc::new(Service {
            spec,
            dests: Vec::new(),
            laddrs: Vec::new(),
            prepared: None,
            traffic: ServiceTraffic::new(),
            edits,
        }));
        self.next.index(spec.key, id);
        Ok(())
    }

    /// `-E`: changes an existing service's scheduler, persistence and SYN proxy.
    pub fn edit_service(&mut self, spec: ServiceSpec) -> Result<(), ConfigError> {
        validate_service(&spec)?;
        if spec.synproxy {
            if let Some(d) = self.service(&spec.key)?.dests.iter().find(|d| !d.spec.method.sees_replies()) {
                return Err(synproxy_bypassed(spec.key, &d.spec));
            }
        }
        if spec.proxy_protocol.is_some() {
            if let Some(d) = self.service(&spec.key)?.dests.iter().find(|d| !d.spec.method.sees_replies()) {
                return Err(proxy_protocol_bypassed(spec.key, &d.spec));
            }
        }
        if let ServiceKey::Inet { addr: IpAddr::V6(_), .. } = spec.key {
            let nat64 = self.service(&spec.key)?.dests.iter().any(|d| d.spec.addr.is_ipv4());
            if nat64 && spec.synproxy {
                return Err(ConfigError::NotForNat64 { service: spec.key, what: "the SYN proxy (-j enable)" });
            }
            if nat64 && spec.proxy_protocol.is_some() {
                return Err(ConfigError::NotForNat64 {
                    service: spec.key,
                    what: "the PROXY protocol (--proxy-protocol)",
                });
            }
        }
        let generation = self.next.generation + 1;
        let svc = self.service_mut(&spec.key)?;
        if svc.spec.scheduler != spec.scheduler {
            svc.prepared = None;
            svc.edits.record(generation, EditStep::Restart { wrr: WrrMeasure::of(&svc.dests) });
        }
        svc.spec = spec;
        Ok(())
    }

    /// `-D`: removes a service with its real servers. Connections already bound to them
    /// keep running until they end.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        let id = self.id(key)?;
        let svc = self.next.services.remove(id as usize);
        for d in &svc.dests {
            self.retire(*key, d);
        }
        self.reindex();
        Ok(())
    }

    /// `-C`: removes every service (match rules and timeouts stay).
    pub fn clear(&mut self) {
        let services = std::mem::take(&mut self.next.services);
        for svc in &services {
            for d in &svc.dests {
                self.retire(svc.spec.key, d);
            }
        }
        self.reindex();
    }

    /// `-a`: adds a real server to a service.
    pub fn add_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<(), ConfigError> {
        let svc = self.service(key)?;
        validate_dest(svc, &spec)?;
        let dest = SockAddr(spec.addr, spec.port);
        if svc.dest_index(spec.addr, spec.port).is_some() {
            return Err(ConfigError::DestExists { dest, service: *key });
        }
        // Indices are 16 bits in scheduler tables; u16::MAX marks an empty bucket.
        const MAX_DESTS: usize = u16::MAX as usize;
        if svc.dests.len() >= MAX_DESTS {
            return Err(ConfigError::TooManyDests { service: *key, max: MAX_DESTS });
        }
        // A server revived from the trash keeps its counters only if it comes back to the
        // same service, not to a deleted and re-added one with new traffic counters.
        let service_traffic = Arc::clone(&svc.traffic);
        let workers = self.next.workers;
        let counters = self
            .next
            .trash
            .remove(&(*key, spec.addr, spec.port))
            .and_then(|w| service_traffic.revive(&w))
            .unwrap_or_else(|| service_traffic.add_server(spec.upper_threshold, spec.lower_threshold, workers));
        let svc = self.service_mut(key)?;
        svc.dests.push(Dest { spec, counters });
        svc.prepared = None;
        self.log_servers(key, None);
        Ok(())
    }

    /// `-e`: changes a real server's method, weight and thresholds.
    pub fn edit_dest(&mut self, key: &ServiceKey, spec: DestSpec) -> Result<(), ConfigError> {
        let svc = self.service(key)?;
        validate_dest(svc, &spec)?;
        let i = svc
            .dest_index(spec.addr, spec.port)
            .ok_or(ConfigError::DestNotFound { dest: SockAddr(spec.addr, spec.port), service: *key })?;
        let svc = self.service_mut(key)?;
        if svc.dests[i].spec.weight != spec.weight {
            svc.prepared = None;
        }
        svc.dests[i].spec = spec;
        self.log_servers(key, None);
        Ok(())
    }

    /// `-d`: removes a real server. Its connections keep their rewrite and counters and run
    /// until they end.
    pub fn delete_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), ConfigError> {
        let svc = self.service(key)?;
        let i = svc
            .dest_index(addr, port)
            .ok_or(ConfigError::DestNotFound { dest: SockAddr(addr, port), service: *key })?;
        let svc = self.service_mut(key)?;
        let dest = svc.dests.remove(i);
        svc.prepared = None;
        self.retire(*key, &dest);
        self.log_servers(key, Some((addr, port)));
        Ok(())
    }

    /// `-P`: adds a local address to a (FNAT) service.
    pub fn add_laddr(&mut self, key: &ServiceKey, laddr: LocalAddr) -> Result<(), ConfigError> {
        let svc = self.service(key)?;
        if svc.laddrs.iter().any(|l| l.addr == laddr.addr) {
            return Err(ConfigError::LaddrExists { laddr: laddr.addr, service: *key });
        }
        let family_error = |dest| ConfigError::LaddrFamilyMismatch { laddr: laddr.addr, service: *key, dest };
        if matches!(key, ServiceKey::Inet { addr: IpAddr::V4(_), .. }) && laddr.addr.is_ipv6() {
            return Err(family_error(None));
        }
        let fnat = svc.dests.iter().filter(|d| d.spec.method == ForwardMethod::FullNat);
        if let Some(d) = fnat.clone().find(|d| d.spec.addr.is_ipv4() != laddr.addr.is_ipv4()) {
            return Err(family_error(Some(SockAddr(d.spec.addr, d.spec.port))));
        }
        // Each family's connections take local ports from pools of their
        // own (`crate::model::laddr`): an IPv4 address shared by an IPv4
        // service and a NAT64 one would hand one port out twice.
        if laddr.addr.is_ipv4() {
            let nat64_side = |k: &ServiceKey| matches!(k, ServiceKey::Inet { addr: IpAddr::V6(_), .. });
            let clash = self.next.services.iter().find(|other| {
                nat64_side(&other.spec.key) != nat64_side(key) && other.laddrs.iter().any(|l| l.addr == laddr.addr)
            });
            if let Some(other) = clash {
                return Err(ConfigError::LaddrShared { laddr: laddr.addr, service: *key, other: other.spec.key });
            }
        }
        if let Some(vip_of) = self.service_at(laddr.addr) {
            return Err(ConfigError::VipIsLocalAddress { addr: laddr.addr, vip_of, local_of: *key });
        }
        self.service_mut(key)?.laddrs.push(laddr);
        Ok(())
    }

    /// A service whose VIP is `addr`, if any.
    fn service_at(&self, addr: IpAddr) -> Option<ServiceKey> {
        let mut keys = self.next.services.iter().map(|s| s.spec.key);
        keys.find(|k| matches!(k, ServiceKey::Inet { addr: vip, .. } if *vip == addr))
    }

    /// A service listing `addr` as a local address, if any.
    fn local_address_of(&self, addr: IpAddr) -> Option<ServiceKey> {
        let listing = self.next.services.iter().find(|s| s.laddrs.iter().any(|l| l.addr == addr));
        listing.map(|s| s.spec.key)
    }

    /// `-Q`: removes a local address. Connections using it run until they end; its ports
    /// return to the worker's pool, which outlives the address (see `laddr`).
    pub fn delete_laddr(&mut self, key: &ServiceKey, addr: IpAddr) -> Result<(), ConfigError> {
        let svc = self.service(key)?;
        let i = svc
            .laddrs
            .iter()
            .position(|l| l.addr == addr)
            .ok_or(ConfigError::LaddrNotFound { laddr: addr, service: *key })?;
        self.service_mut(key)?.laddrs.remove(i);
        Ok(())
    }

    /// `mark add`: adds a match rule.
    pub fn add_mark_rule(&mut self, rule: MarkRule) -> Result<(), ConfigError> {
        if rule.mark == 0 {
            return Err(ConfigError::FwmarkZero);
        }
        let max_prefix = if rule.dst.is_ipv4() { 32 } else { 128 };
        if rule.prefix_len > max_prefix {
            return Err(ConfigError::InvalidPrefix { addr: rule.dst, prefix_len: rule.prefix_len });
        }
        if let Some(&(low, high)) = rule.ports.iter().find(|(lo, hi)| lo > hi) {
            return Err(ConfigError::InvalidPortRange { low, high });
        }
        if self.next.mark_rules.contains(&rule) {
            return Err(ConfigError::MarkRuleExists(rule.mark));
        }
        self.next.mark_rules.push(rule);
        Ok(())
    }

    /// `mark del`: removes every match rule of `mark`.
    pub fn delete_mark_rules(&mut self, mark: u32) -> Result<(), ConfigError> {
        let before = self.next.mark_rules.len();
        self.next.mark_rules.retain(|r| r.mark != mark);
        if self.next.mark_rules.len() == before {
            return Err(ConfigError::MarkRuleNotFound(mark));
        }
        Ok(())
    }

    /// `--set tcp tcpfin udp`: 0 keeps the current value, as in ipvsadm.
    pub fn set_timeouts(&mut self, tcp: u32, tcp_fin: u32, udp: u32) {
        self.next.timeouts.set(tcp, tcp_fin, udp);
    }

    /// Sets the timeout of one state, including the short ones ipvsadm has no option for
    /// (SYN_RECV, CLOSE, ...); at least 1 second.
    pub fn set_state_timeout(&mut self, state: crate::conn::State, secs: u32) {
        self.next.timeouts.set_state(state, secs);
    }

    /// Publishes the edited snapshot: computes the hash schedulers' tables of the services
    /// whose real servers changed, installs edited thresholds in the shared counters and
    /// forgets removed servers whose last connection has ended.
    pub fn finish(mut self) -> Arc<Snapshot> {
        for svc in &mut self.next.services {
            if svc.prepared.is_none() {
                if let Some(p) = Prepared::build(svc.spec.scheduler, &svc.dests) {
                    Arc::make_mut(svc).prepared = Some(Arc::new(p));
                }
            }
            for d in &svc.dests {
                d.counters.set_thresholds(d.spec.upper_threshold, d.spec.lower_threshold);
            }
        }
        self.next.trash.retain(|_, w| w.strong_count() > 0);
        self.next.generation += 1;
        Arc::new(self.next)
    }

    fn id(&self, key: &ServiceKey) -> Result<ServiceId, ConfigError> {
        self.next.service_id(key).ok_or(ConfigError::ServiceNotFound(*key))
    }

    fn service(&self, key: &ServiceKey) -> Result<&Service, ConfigError> {
        Ok(self.next.service(self.id(key)?))
    }

    fn service_mut(&mut self, key: &ServiceKey) -> Result<&mut Service, ConfigError> {
        let id = self.id(key)?;
        Ok(Arc::make_mut(&mut self.next.services[id as usize]))
    }

    /// Logs a change of `key`'s servers for the schedulers (IPVS calls the scheduler's
    /// `upd_dest`/`add_dest`/`del_dest` for each).
    fn log_servers(&mut self, key: &ServiceKey, removed: Option<(IpAddr, u16)>) {
        let generation = self.next.generation + 1;
        if let Ok(svc) = self.service_mut(key) {
            // Only wrr reads it (a later change to wrr logs a restart measured then).
            let wrr = if svc.spec.scheduler == SchedulerKind::Wrr {
                WrrMeasure::of(&svc.dests)
            } else {
                WrrMeasure::default()
            };
            svc.edits.record(generation, EditStep::Servers { wrr, removed });
        }
    }

    fn retire(&mut self, key: ServiceKey, dest: &Dest) {
        // Only worth remembering while a connection still holds the counters; the snapshot
        // being edited holds one reference, older snapshots may hold more.
        if Arc::strong_count(&dest.counters) > 1 {
            let w = Arc::downgrade(&dest.counters);
            self.next.trash.insert((key, dest.spec.addr, dest.spec.port), w);
        }
    }

    fn reindex(&mut self) {
        self.next.by_key.clear();
        self.next.by_v4.clear();
        let keys: Vec<ServiceKey> = self.next.services.iter().map(|s| s.spec.key).collect();
        for (i, key) in keys.into_iter().enumerate() {
            self.next.index(key, i as ServiceId);
        }
    }
}

fn validate_service(spec: &ServiceSpec) -> Result<(), ConfigError> {
    if spec.key == ServiceKey::Fwmark(0) {
        return Err(ConfigError::FwmarkZero);
    }
    if spec.synproxy && matches!(spec.key, ServiceKey::Inet { proto: Protocol::Udp, .. }) {
        return Err(ConfigError::SynproxyNotTcp(spec.key));
    }
    if spec.proxy_protocol.is_some() && !matches!(spec.key, ServiceKey::Inet { proto: Protocol::Tcp, .. }) {
        return Err(ConfigError::ProxyProtocolNotTcp(spec.key));
    }
    if let Some(p) = spec.persistence {
        if p.timeout == 0 {
            return Err(ConfigError::PersistenceTimeoutZero);
        }
        let family_ok = match spec.key {
            ServiceKey::Inet { addr, .. } => addr.is_ipv4() == p.netmask.is_ipv4(),
            ServiceKey::Fwmark(_) => true,
        };
        if !family_ok || mask_prefix_len(p.netmask).is_none() {
            return Err(ConfigError::InvalidNetmask(p.netmask));
        }
    }
    Ok(())
}

fn synproxy_bypassed(service: ServiceKey, dest: &DestSpec) -> ConfigError {
    ConfigError::SynproxyBypassed { service, dest: SockAddr(dest.addr, dest.port), method: dest.method }
}

fn proxy_protocol_bypassed(service: ServiceKey, dest: &DestSpec) -> ConfigError {
    ConfigError::ProxyProtocolBypassed { service, dest: SockAddr(dest.addr, dest.port), method: dest.method }
}

fn validate_dest(svc: &Service, spec: &DestSpec) -> Result<(), ConfigError> {
    let key = svc.spec.key;
    let dest = SockAddr(spec.addr, spec.port);
    if spec.weight > DestSpec::MAX_WEIGHT {
        return Err(ConfigError::WeightOutOfRange(spec.weight));
    }
    // IPVS checks this even without an upper threshold: a lower one alone is meaningless.
    if spec.lower_threshold > spec.upper_threshold {
        return Err(ConfigError::ThresholdsInverted { upper: spec.upper_threshold, lower: spec.lower_threshold });
    }
    if svc.spec.synproxy && !spec.method.sees_replies() {
        return Err(synproxy_bypassed(key, spec));
    }
    if svc.spec.proxy_protocol.is_some() && !spec.method.sees_replies() {
        return Err(proxy_protocol_bypassed(key, spec));
    }
    // A fwmark service's servers are of one family, as IPVS's (`-f N -6`): a
    // flow is scheduled among all of them and could not go to the other's.
    if let (ServiceKey::Fwmark(_), Some(other)) = (key, svc.dests.first()) {
        if other.spec.addr.is_ipv4() != spec.addr.is_ipv4() {
            return Err(ConfigError::FamilyMismatch { dest, service: key });
        }
    }
    if let ServiceKey::Inet { addr, port, .. } = key {
        if addr.is_ipv4() != spec.addr.is_ipv4() {
            // FNAT bridges the families one way: an IPv6 service's IPv4
            // servers (DPVS's NAT64, `crate::xmit::nat64`).
            if addr.is_ipv4() || spec.method != ForwardMethod::FullNat {
                return Err(ConfigError::FamilyMismatch { dest, service: key });
            }
            if svc.spec.synproxy {
                return Err(ConfigError::NotForNat64 { service: key, what: "the SYN proxy (-j enable)" });
            }
            if svc.spec.proxy_protocol.is_some() {
                return Err(ConfigError::NotForNat64 { service: key, what: "the PROXY protocol (--proxy-protocol)" });
            }
        }
        // A flow is scheduled among all the servers, and its connection
        // lives in one family's table on the servers' side.
        let other_family = svc.dests.iter().find(|d| {
            d.spec.addr.is_ipv4() != spec.addr.is_ipv4() && (d.spec.addr, d.spec.port) != (spec.addr, spec.port)
        });
        if let Some(other) = other_family {
            return Err(ConfigError::ServerFamiliesMixed {
                dest,
                other: SockAddr(other.spec.addr, other.spec.port),
                service: key,
            });
        }
        if spec.method == ForwardMethod::FullNat {
            if let Some(l) = svc.laddrs.iter().find(|l| l.addr.is_ipv4() != spec.addr.is_ipv4()) {
                return Err(ConfigError::LaddrFamilyMismatch { laddr: l.addr, service: key, dest: Some(dest) });
            }
        }
        if !spec.method.can_change_port() && spec.port != 0 && spec.port != port {
            return Err(ConfigError::PortChangeNeedsNat { dest, service: key });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn web() -> ServiceKey {
        ServiceKey::tcp(ip("10.0.0.1"), 80)
    }

    fn with_web() -> Arc<Snapshot> {
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(web())).unwrap();
        ed.add_dest(&web(), DestSpec::new(ip("192.168.1.2"), 80).with_method(ForwardMethod::Masq)).unwrap();
        ed.finish()
    }

    #[test]
    fn add_find_and_generation() {
        let snap = with_web();
        assert_eq!(snap.generation(), 1);
        let id = snap.find(Protocol::Tcp, ip("10.0.0.1"), 80).unwrap();
        assert_eq!(snap.service(id).dests().len(), 1);
        assert_eq!(snap.find(Protocol::Udp, ip("10.0.0.1"), 80), None);
        assert_eq!(snap.find(Protocol::Tcp, ip("10.0.0.1"), 81), None);
    }

    #[test]
    fn lookup_order_exact_then_mark_then_all_ports() {
        let vip = ip("172.18.100.7");
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(ServiceKey::tcp(vip, 0))).unwrap();
        ed.add_service(ServiceSpec::new(ServiceKey::tcp(vip, 80))).unwrap();
        ed.add_service(ServiceSpec::new(ServiceKey::Fwmark(10))).unwrap();
        ed.add_mark_rule(MarkRule {
            mark: 10,
            dst: ip("172.18.100.0"),
            prefix_len: 24,
            proto: Some(Protocol::Tcp),
            ports: vec![(80, 80), (443, 443)],
        })
        .unwrap();
        let snap = ed.finish();
        let key = |id: Option<ServiceId>| snap.service(id.unwrap()).key();
        assert_eq!(key(snap.find(Protocol::Tcp, vip, 80)), ServiceKey::tcp(vip, 80));
        assert_eq!(key(snap.find(Protocol::Tcp, vip, 443)), ServiceKey::Fwmark(10));
        assert_eq!(key(snap.find(Protocol::Tcp, ip("172.18.100.9"), 443)), ServiceKey::Fwmark(10));
        assert_eq!(key(snap.find(Protocol::Tcp, vip, 8080)), ServiceKey::tcp(vip, 0));
        assert_eq!(snap.find(Protocol::Udp, vip, 443), None);
    }

    #[test]
    fn bad_edits_are_refused_and_change_nothing() {
        let snap = with_web();
        let mut ed = snap.edit();
        let rs = |p| DestSpec::new(ip("192.168.1.3"), p).with_method(ForwardMethod::Masq);
        let cases: Vec<(Result<(), ConfigError>, &str)> = vec![
            (ed.add_dest(&web(), rs(80).with_weight(70000)), "weight 70000 out of range 0..65535"),
            (
                ed.add_dest(&web(), DestSpec::new(ip("192.168.1.2"), 80)),
                "real server 192.168.1.2:80 already exists in service TCP 10.0.0.1:80",
            ),
            (
                ed.add_dest(&web(), rs(80).with_thresholds(100, 200)),
                "lower threshold 200 is higher than upper threshold 100",
            ),
            (
                ed.add_dest(&web(), DestSpec::new(ip("192.168.1.3"), 8080)),
                "real server 192.168.1.3:8080 has a port other than service TCP 10.0.0.1:80's; \
                 only NAT and FullNat can change the port",
            ),
            (
                ed.add_dest(&web(), DestSpec::new(ip("2001:db8::1"), 80)),
                "real server [2001:db8::1]:80 is not of the same address family as service TCP 10.0.0.1:80",
            ),
            (
                ed.edit_service(ServiceSpec {
                    persistence: Some(Persistence { timeout: 300, netmask: IpAddr::V4(Ipv4Addr::new(255, 0, 255, 0)) }),
                    ..ServiceSpec::new(web())
                }),
                "netmask 255.0.255.0 is not a valid mask for this service",
            ),
            (ed.add_service(ServiceSpec::new(web())), "service TCP 10.0.0.1:80 already exists"),
            (
                ed.delete_dest(&web(), ip("192.168.1.9"), 80),
                "real server 192.168.1.9:80 not found in service TCP 10.0.0.1:80",
            ),
            (ed.add_dest(&ServiceKey::tcp(ip("10.0.0.2"), 80), rs(80)), "service TCP 10.0.0.2:80 not defined"),
            (ed.add_service(ServiceSpec::new(ServiceKey::Fwmark(0))), "fwmark 0 is invalid (marks start at 1)"),
        ];
        for (result, message) in cases {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
        let after = ed.finish();
        let svc = after.service(after.service_id(&web()).unwrap());
        assert_eq!(after.services().len(), 1);
        assert_eq!(svc.dests().len(), 1);
        assert_eq!(svc.persistence(), None);
        assert_eq!(svc.dests()[0].spec(), snap.service(0).dests()[0].spec());
    }

    #[test]
    fn ipv6_services_take_ipv4s_features_under_ipv4s_rules() {
        let v6 = ServiceKey::tcp(ip("2001:db8::100"), 80);
        let mut ed = Snapshot::empty().edit();
        // The PROXY protocol: TCP, and replies through the gateway.
        let v2 = Some(crate::wire::proxy_protocol::Version::V2);
        let pp6 = ServiceKey::tcp(ip("2001:db8::102"), 80);
        ed.add_service(ServiceSpec { proxy_protocol: v2, ..ServiceSpec::new(pp6) }).unwrap();
        for method in [ForwardMethod::FullNat, ForwardMethod::Masq] {
            ed.add_dest(&pp6, DestSpec::new(ip("2001:db8:1::10"), 80).with_method(method)).unwrap();
            ed.delete_dest(&pp6, ip("2001:db8:1::10"), 80).unwrap();
        }
        assert_eq!(
            ed.add_dest(&pp6, DestSpec::new(ip("2001:db8:1::10"), 80).with_method(ForwardMethod::DirectRoute))
                .unwrap_err()
                .to_string(),
            "the PROXY protocol on TCP [2001:db8::102]:80 needs the replies to pass the gateway, but real server \
             [2001:db8:1::10]:80 is direct-routed (-g): use masquerading (-m) or fullnat (-b)"
        );
        let udp_pp6 = ServiceKey::Inet { proto: Protocol::Udp, addr: ip("2001:db8::102"), port: 53 };
        assert_eq!(
            ed.add_service(ServiceSpec { proxy_protocol: v2, ..ServiceSpec::new(udp_pp6) }),
            Err(ConfigError::ProxyProtocolNotTcp(udp_pp6))
        );
        // The SYN proxy is there for IPv6, under IPv4's rules: TCP, and
        // replies through the gateway.
        let proxied6 = ServiceKey::tcp(ip("2001:db8::101"), 80);
        ed.add_service(ServiceSpec { synproxy: true, ..ServiceSpec::new(proxied6) }).unwrap();
        let dr = DestSpec::new(ip("2001:db8:1::10"), 80).with_method(ForwardMethod::DirectRoute);
        assert!(ed.add_dest(&proxied6, dr).is_err());
        ed.add_dest(&proxied6, DestSpec::new(ip("2001:db8:1::10"), 80).with_method(ForwardMethod::FullNat)).unwrap();
        let udp6 = ServiceKey::Inet { proto: Protocol::Udp, addr: ip("2001:db8::101"), port: 53 };
        assert_eq!(
            ed.add_service(ServiceSpec { synproxy: true, ..ServiceSpec::new(udp6) }),
            Err(ConfigError::SynproxyNotTcp(udp6))
        );
        ed.add_service(ServiceSpec::new(v6)).unwrap();
        for method in [ForwardMethod::FullNat, ForwardMethod::Masq, ForwardMethod::DirectRoute, ForwardMethod::Tunnel] {
            ed.add_dest(&v6, DestSpec::new(ip("2001:db8:1::10"), 80).with_method(method)).unwrap();
            ed.delete_dest(&v6, ip("2001:db8:1::10"), 80).unwrap();
        }
        // The IPv4 services keep every feature.
        ed.add_service(ServiceSpec { synproxy: true, ..ServiceSpec::new(web()) }).unwrap();
        // A fwmark service's servers are of one family (each flow is scheduled among all).
        let fwm = ServiceKey::Fwmark(7);
        ed.add_service(ServiceSpec::new(fwm)).unwrap();
        ed.add_dest(&fwm, DestSpec::new(ip("2001:db8:1::10"), 80).with_method(ForwardMethod::DirectRoute)).unwrap();
        assert_eq!(
            ed.add_dest(&fwm, DestSpec::new(ip("192.168.1.10"), 80)).unwrap_err().to_string(),
            "real server 192.168.1.10:80 is not of the same address family as service FWM 7"
        );
    }

    #[test]
    fn the_syn_proxy_is_refused_where_replies_bypass_the_gateway_or_on_udp() {
        let proxied = ServiceSpec { synproxy: true, ..ServiceSpec::new(web()) };
        let bypass = |addr: &str, how: &str| {
            format!(
                "SYN proxy on TCP 10.0.0.1:80 needs the replies to pass the gateway, but real server {addr}:80 is \
                 {how}: use masquerading (-m) or fullnat (-b), or disable the SYN proxy (-j disable)"
            )
        };
        // Turning it on over a NAT server is fine; a DR or TUN server then is refused.
        let mut ed = with_web().edit();
        ed.edit_service(proxied).unwrap();
        let server = |addr: &str, method| DestSpec::new(ip(addr), 80).with_method(method);
        let refused = [
            (
                ed.add_dest(&web(), server("192.168.1.3", ForwardMethod::DirectRoute)),
                bypass("192.168.1.3", "direct-routed (-g)"),
            ),
            (
                ed.add_dest(&web(), server("192.168.1.3", ForwardMethod::Tunnel)),
                bypass("192.168.1.3", "tunnelled (-i)"),
            ),
            (
                ed.edit_dest(&web(), server("192.168.1.2", ForwardMethod::DirectRoute)),
                bypass("192.168.1.2", "direct-routed (-g)"),
            ),
        ];
        for (result, message) in refused {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
        ed.add_dest(&web(), server("192.168.1.3", ForwardMethod::FullNat)).unwrap();
        let snap = ed.finish();
        let svc = snap.service(0);
        assert!(svc.spec().synproxy);
        let methods: Vec<ForwardMethod> = svc.dests().iter().map(|d| d.method()).collect();
        assert_eq!(methods, [ForwardMethod::Masq, ForwardMethod::FullNat]);

        // Over a DR server, turning it on is refused and the service stays as it was.
        let mut ed = snap.edit();
        ed.edit_service(ServiceSpec::new(web())).unwrap();
        ed.edit_dest(&web(), server("192.168.1.2", ForwardMethod::DirectRoute)).unwrap();
        assert_eq!(ed.edit_service(proxied).unwrap_err().to_string(), bypass("192.168.1.2", "direct-routed (-g)"));
        assert!(!ed.current().service(0).spec().synproxy);

        // UDP has no handshake to answer; fwmark services may be proxied (their TCP flows).
        let dns = ServiceKey::udp(ip("10.0.0.1"), 53);
        assert_eq!(
            ed.add_service(ServiceSpec { synproxy: true, ..ServiceSpec::new(dns) }).unwrap_err().to_string(),
            "SYN proxy is only for TCP services, not UDP 10.0.0.1:53"
        );
        assert_eq!(ed.current().service_id(&dns), None);
        ed.add_service(ServiceSpec { synproxy: true, ..ServiceSpec::new(ServiceKey::Fwmark(7)) }).unwrap();
    }

    #[test]
    fn edit_keeps_counters_and_old_snapshot() {
        let old = with_web();
        old.service(0).dests()[0].counters().bind();
        let mut ed = old.edit();
        let spec = DestSpec::new(ip("192.168.1.2"), 80).with_method(ForwardMethod::Masq).with_weight(5);
        ed.edit_dest(&web(), spec).unwrap();
        ed.edit_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(web()) }).unwrap();
        let new = ed.finish();
        assert_eq!(old.service(0).dests()[0].weight(), 1, "the old snapshot is immutable");
        assert_eq!(old.service(0).scheduler(), SchedulerKind::Wlc);
        assert_eq!(new.service(0).dests()[0].weight(), 5);
        assert_eq!(new.service(0).dests()[0].counters().inactive(), 1, "counters carried over");
    }

    #[test]
    fn removed_server_readded_gets_its_live_counters_back() {
        let snap = with_web();
        let held = Arc::clone(snap.service(0).dests()[0].counters()); // a live connection
        held.bind();
        let mut ed = snap.edit();
        ed.delete_dest(&web(), ip("192.168.1.2"), 80).unwrap();
        let removed = ed.finish();
        assert!(removed.service(0).dests().is_empty());
        drop(snap);
        let mut ed = removed.edit();
        ed.add_dest(&web(), DestSpec::new(ip("192.168.1.2"), 80).with_method(ForwardMethod::Masq)).unwrap();
        let back = ed.finish();
        assert!(Arc::ptr_eq(back.service(0).dests()[0].counters(), &held));
        assert_eq!(back.service(0).dests()[0].counters().inactive(), 1);
    }

    #[test]
    fn delete_service_reindexes() {
        let mut ed = Snapshot::empty().edit();
        for port in [80, 81, 82] {
            ed.add_service(ServiceSpec::new(ServiceKey::tcp(ip("10.0.0.1"), port))).unwrap();
        }
        ed.delete_service(&ServiceKey::tcp(ip("10.0.0.1"), 80)).unwrap();
        let snap = ed.finish();
        let id = snap.find(Protocol::Tcp, ip("10.0.0.1"), 82).unwrap();
        assert_eq!(snap.service(id).key(), ServiceKey::tcp(ip("10.0.0.1"), 82));
        assert_eq!(snap.find(Protocol::Tcp, ip("10.0.0.1"), 80), None);
        let mut ed = snap.edit();
        ed.clear();
        assert!(ed.finish().services().is_empty());
    }

    /// `-M`: any contiguous mask of the service's family is kept as given
    /// (ipvsadm accepts /0 to /32 for IPv4), anything else is refused and
    /// leaves the service as it was.
    #[test]
    fn persistence_netmask_must_be_a_prefix_of_the_service_family() {
        let snap = with_web();
        for (mask, ok) in [
            ("255.255.255.255", true),
            ("255.255.255.0", true),
            ("0.0.0.0", true),
            ("255.255.0.255", false),
            ("0.255.255.255", false),
            ("ffff:ffff::", false),
        ] {
            let persistence = Persistence { timeout: 60, netmask: ip(mask) };
            let mut ed = snap.edit();
            let result = ed.edit_service(ServiceSpec { persistence: Some(persistence), ..ServiceSpec::new(web()) });
            let after = ed.finish();
            let id = after.find(Protocol::Tcp, ip("10.0.0.1"), 80).unwrap();
            if ok {
                assert_eq!(result, Ok(()), "{mask}");
                assert_eq!(after.service(id).persistence(), Some(persistence), "{mask}");
            } else {
                assert_eq!(
                    result.unwrap_err().to_string(),
                    format!("netmask {mask} is not a valid mask for this service")
                );
                assert_eq!(after.service(id).persistence(), None, "{mask}: the service is unchanged");
            }
        }
    }

    #[test]
    fn laddrs_and_timeouts() {
        let snap = with_web();
        let mut ed = snap.edit();
        let l = LocalAddr { addr: ip("192.168.1.254"), ifname: "dpdk1".into() };
        ed.add_laddr(&web(), l.clone()).unwrap();
        assert!(ed.add_laddr(&web(), l.clone()).is_err());
        assert!(ed.delete_laddr(&web(), ip("192.168.1.253")).is_err());
        ed.set_timeouts(0, 60, 0);
        // A VIP is never a local address too, whichever comes first; the edit
        // refused changes nothing.
        let vip_of_web = LocalAddr { addr: ip("10.0.0.1"), ifname: "dpdk1".into() };
        let refused = ed.add_laddr(&web(), vip_of_web).unwrap_err();
        assert_eq!(refused, ConfigError::VipIsLocalAddress { addr: ip("10.0.0.1"), vip_of: web(), local_of: web() });
        assert_eq!(
            refused.to_string(),
            "10.0.0.1 cannot be both the address of virtual service TCP 10.0.0.1:80 and a local address of service \
             TCP 10.0.0.1:80: packets to a local address are taken for replies to the gateway's connections"
        );
        let dns = ServiceKey::Inet { proto: Protocol::Udp, addr: ip("192.168.1.254"), port: 53 };
        assert_eq!(
            ed.add_service(ServiceSpec::new(dns)),
            Err(ConfigError::VipIsLocalAddress { addr: ip("192.168.1.254"), vip_of: dns, local_of: web() })
        );
        ed.set_state_timeout(crate::conn::State::SynRecv, 30);
        let snap = ed.finish();
        assert_eq!(snap.timeouts().of(crate::conn::State::SynRecv), 30);
        assert_eq!(snap.service(0).laddrs(), &[l]);
        assert_eq!(snap.services().len(), 1, "the refused service is not there");
        assert_eq!(snap.timeouts().tcp_fin(), 60);
        assert_eq!(snap.timeouts().tcp(), 900);
    }
}
