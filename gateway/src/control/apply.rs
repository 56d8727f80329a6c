//! Applies control requests to the configuration model.
//!
//! [`ControlState`] owns the configuration in force and the two seams to the dataplane: the
//! [`SnapshotSink`] that publishes a new configuration and the [`DataplaneView`] that
//! listings read counters from. A [`Request::Apply`] is handled in three steps:
//!
//! 1. every change is applied to private copies (a snapshot editor and a copy of the
//!    network table); the first refused change ends the request with an error
//!    that says which change it was, and the copies are dropped;
//! 2. the copies become the next [`GatewayConfig`], published to every worker;
//! 3. only when every worker confirmed does the next configuration become the one in force.
//!
//! So a request is answered after the whole change runs everywhere, or it changed nothing
//! (DESIGN.md invariant 3). If publishing fails, the previous configuration is published
//! again so no worker is left on the refused one.
//!
//! The connection sync daemons (`--start-daemon`, `--stop-daemon`) are no part of the
//! configuration: they are threads the state owns ([`SyncDaemons`]), started and stopped
//! when their change is applied. A request's daemon changes are checked (against the
//! daemons running and the ones before them in the request) before anything happens, run
//! before the configuration is published, and undone if a later daemon change or the
//! publish fails, so a request mixing both is still all or nothing.

use std::net::IpAddr;
use std::sync::Arc;

use gwapi::api::{
    ApiError, Change, ErrorKind, Forwarding, GatewayInfo, HeldAddr, LaddrConfig, LaddrInfo, MarkRuleConfig,
    PersistenceConfig, ProxyProtocol, Reply, Request, ServerConfig, ServerInfo, ServiceConfig, ServiceInfo,
    ServiceTable, SyncBackupStats, SyncDaemonConfig, SyncInfo, SyncMasterStats, SyncState, TimeoutsInfo, TrafficStats,
    TransportProtocol, VirtualService, IPVS_VERSION,
};

use super::dataplane::DataplaneView;
use super::health::HealthTable;
use super::publish::{GatewayConfig, PublishError, SnapshotSink};
use crate::health::passive::{Observation, PassiveEngine, PassiveTransition};
use crate::health::routes::PublishedRoutes;
use crate::health::{Checker, Health, TargetKey, Transition};
use crate::model::net::NetError;
use crate::model::{
    ConfigError, DestSpec, ForwardMethod, LocalAddr, MarkRule, NetConfig, Persistence, Protocol, SchedulerKind,
    Service, ServiceKey, ServiceSpec, SnapshotEditor,
};
use crate::stats::TrafficCounts;
use crate::sync::daemon::{DaemonSpec, Malformed, Role, SyncDaemons, SyncError};
use crate::wire::proxy_protocol::Version;

/// The configuration in force and the seams to the workers.
pub struct ControlState {
    current: GatewayConfig,
    sink: Box<dyn SnapshotSink>,
    dataplane: Box<dyn DataplaneView>,
    sync: SyncDaemons,
    /// The configured health checks and the servers they hold (see [`super::health`]).
    health: HealthTable,
    /// The checker's engine, told the servers to check after every change.
    checker: Arc<Checker>,
    /// What the prober routes by, told the servers out of their service (see
    /// [`crate::health::routes`]); `None` without a prober (tests).
    probe_routes: Option<Arc<PublishedRoutes>>,
    /// Passive detection's policy ([`crate::health::passive`]), told the servers to watch
    /// after every change, run by [`ControlState::passive_tick`].
    passive: PassiveEngine,
}

impl ControlState {
    /// `initial` must be what the workers already run (they start from it). Its sync
    /// daemons have no workers to serve ([`SyncDaemons::without_workers`]) until
    /// [`ControlState::with_sync`] gives it the gateway's.
    pub fn new(initial: GatewayConfig, sink: Box<dyn SnapshotSink>, dataplane: Box<dyn DataplaneView>) -> ControlState {
        ControlState {
            current: initial,
            sink,
            dataplane,
            sync: SyncDaemons::without_workers(),
            health: HealthTable::default(),
            checker: Checker::new(),
            probe_routes: None,
            passive: PassiveEngine::new(),
        }
    }

    /// The state with `routes` as what gatewayd's prober routes by.
    pub fn with_probe_routes(mut self, routes: Arc<PublishedRoutes>) -> ControlState {
        self.probe_routes = Some(routes);
        self
    }

    /// The state with `sync` as its sync daemons (gatewayd's, on the workers' queues,
    /// possibly running already: those the configuration file starts).
    pub fn with_sync(mut self, sync: SyncDaemons) -> ControlState {
        self.sync = sync;
        self
    }

    /// The checker whose transitions [`ControlState::set_server_health`] takes: gatewayd
    /// runs it ([`Checker::spawn`]).
    pub fn checker(&self) -> Arc<Checker> {
        Arc::clone(&self.checker)
    }

    /// The configured health checks, passive detection and the servers they hold.
    pub fn health_table(&self) -> &HealthTable {
        &self.health
    }

    /// The configuration every worker runs.
    pub fn config(&self) -> &GatewayConfig {
        &self.current
    }

    /// One step of the rate estimator of every service and real server (`--rate`); call
    /// every [`crate::stats::ESTIMATE_INTERVAL`], `elapsed` after the previous call.
    pub fn estimate_rates(&self, elapsed: std::time::Duration) {
        for svc in self.current.services.services() {
            svc.all_traffic().for_each(|t| t.estimate(elapsed));
        }
    }

    /// Handles one request; never panics on any input.
    pub fn handle(&mut self, request: Request) -> Result<Reply, ApiError> {
        match request {
            Request::Apply { changes } => self.apply(&changes),
            // The server reads a stream's changes and hands them on as one `Apply`; the
            // request line alone (from an embedding that calls `handle` directly) has none.
            Request::ApplyStream { changes } => Err(ApiError::new(
                ErrorKind::Malformed,
                format!("a streamed apply of {changes} changes must be sent over the control socket, followed by its changes"),
            )),
            Request::Zero { service } => {
                let key = match service {
                    Some(vs) => {
                        let key = service_key(&vs);
                        if self.current.services.service_id(&key).is_none() {
                            return Err(config_error(ConfigError::ServiceNotFound(key)));
                        }
                        Some(key)
                    }
                    None => None,
                };
                for svc in self.current.services.services() {
                    if key.is_none_or(|k| k == svc.key()) {
                        svc.all_traffic().for_each(|t| t.zero());
                    }
                }
                Ok(Reply::Zeroed)
            }
            Request::ListServices { service } => self.list_services(service),
            Request::ListConnections => {
                let listing = self.dataplane.connections();
                Ok(Reply::Connections { connections: listing.connections, incomplete: listing.incomplete })
            }
            Request::GetTimeouts => {
                let t = self.current.services.timeouts();
                Ok(Reply::Timeouts(TimeoutsInfo {
                    tcp: t.tcp(),
                    tcp_fin: t.tcp_fin(),
                    udp: t.udp(),
                }))
            }
            Request::ListLaddrs { service } => {
                let svc = self.service(&service)?;
                let key = svc.key();
                let laddrs = svc
                    .laddrs()
                    .iter()
                    .map(|l| {
                        let (port_conflicts, conns) = self.dataplane.laddr_stats(&key, l.addr);
                        LaddrInfo {
                            addr: l.addr,
                            ifname: l.ifname.clone(),
                            port_conflicts,
                            conns,
                        }
                    })
                    .collect();
                Ok(Reply::Laddrs { service, laddrs })
            }
            Request::ListMarks => Ok(Reply::Marks {
                rules: self
                    .current
                    .services
                    .mark_rules()
                    .iter()
                    .map(mark_rule_config)
                    .collect(),
            }),
            Request::ListAddrs => Ok(Reply::Addrs {
                addrs: self.current.net.addrs().to_vec(),
                held: self.held_addrs(),
            }),
            Request::ListRoutes => Ok(Reply::Routes {
                routes: self.current.net.routes().to_vec(),
            }),
            Request::ListNeighbours => Ok(Reply::Neighbours {
                neighbours: self.current.net.neighbours().to_vec(),
            }),
            Request::ListLinks => Ok(Reply::Links {
                links: self.dataplane.links(),
            }),
            Request::GetStats => Ok(Reply::Stats {
                workers: self.dataplane.worker_stats(),
            }),
            Request::Info => Ok(Reply::Info(self.info())),
            Request::ListDaemons => Ok(Reply::Daemons(self.sync_info())),
            Request::ListHealth => Ok(Reply::Health { servers: self.health_listing() }),
        }
    }

    fn sync_info(&self) -> SyncInfo {
        let counters = self.sync.counters();
        let (m, b) = (&counters.master, &counters.backup);
        SyncInfo {
            daemons: self.sync.running().iter().map(daemon_config).collect(),
            master: SyncMasterStats {
                records_sent: m.records_sent.get(),
                datagrams_sent: m.datagrams_sent.get(),
                send_errors: m.send_errors.get(),
                rate_dropped: m.rate_dropped.get(),
            },
            backup: SyncBackupStats {
                datagrams_received: b.datagrams_received.get(),
                malformed: Malformed::ALL
                    .iter()
                    .map(|&why| (why.name().to_string(), b.malformed[why as usize].get()))
                    .collect(),
                syncid_mismatch: b.syncid_mismatch.get(),
                stale: b.stale.get(),
                records_received: b.records_received.get(),
                records_skipped: b.records_skipped.get(),
                records_handed: b.records_handed.get(),
                worker_queue_full: b.worker_queue_full.get(),
            },
            workers: self.dataplane.worker_sync(),
        }
    }

    /// `--health -L`: every server an active check or passive detection watches, in
    /// service and server order.
    fn health_listing(&self) -> Vec<gwapi::health::ServerHealth> {
        use gwapi::health::HealthState;
        let now = self.checker.now();
        let engine = self.checker.engine();
        let mut active: std::collections::BTreeMap<TargetKey, &crate::health::TargetStatus> =
            engine.statuses().map(|st| (st.key, st)).collect();
        let mut keys: Vec<TargetKey> = active.keys().chain(self.passive.keys()).copied().collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|k| {
                let st = active.remove(&k);
                let passive = self.passive.status(&k, now);
                let held = self.health.held(&k);
                let in_force = self.current.services.service_id(&service_key(&k.service)).and_then(|id| {
                    let svc = self.current.services.service(id);
                    svc.dest_index(k.addr, k.port).map(|i| svc.dests()[i].weight())
                });
                let state = match st.map(|st| st.health) {
                    Some(Health::Down) => HealthState::Down,
                    _ if self.health.is_passive_down(&k) => HealthState::PassiveDown,
                    _ => HealthState::Up,
                };
                gwapi::health::ServerHealth {
                    service: k.service,
                    addr: k.addr,
                    port: k.port,
                    check: st.map(|st| st.check.config.clone()),
                    passive,
                    inherited: st.is_some_and(|st| st.inherited),
                    state,
                    configured_weight: held.map(|h| h.configured.weight).or(in_force).unwrap_or(0),
                    weight: in_force,
                    last_result: st.and_then(|st| st.last_ok).map(|ok| if ok { "ok" } else { "failed" }.to_string()),
                    reason: st.map(|st| st.reason.clone()).unwrap_or_default(),
                    since_change_secs: st.and_then(|st| st.last_change).map(|at| now.saturating_sub(at).as_secs()),
                    checks: st.map_or(0, |st| st.checks),
                    failures: st.map_or(0, |st| st.failures),
                    transitions: st.map_or(0, |st| st.transitions),
                }
            })
            .collect()
    }

    /// One look of passive detection at the servers it watches (call every
    /// [`crate::health::passive::TICK`], on the control side): inhibits those whose new
    /// connections keep failing and gives back those whose back-off ended or that
    /// succeeded, each published to every worker before the next, as the active checker's
    /// transitions are. A transition a worker did not confirm is taken back (the previous
    /// configuration stays in force) and decided again at the next look.
    pub fn passive_tick(&mut self) -> Result<(), PublishError> {
        let now = self.checker.now();
        let transitions = {
            let engine = self.checker.engine();
            let active: std::collections::BTreeMap<TargetKey, (u64, Option<bool>)> =
                engine.statuses().map(|st| (st.key, (st.checks, st.last_ok))).collect();
            let snapshot = &self.current.services;
            self.passive.tick(now, |k| {
                let svc = snapshot.service(snapshot.service_id(&service_key(&k.service))?);
                let d = &svc.dests()[svc.dest_index(k.addr, k.port)?];
                Some(Observation { reading: d.counters().passive().read(), active: active.get(k).copied() })
            })
        };
        let mut result = Ok(());
        for t in transitions {
            if let Err(e) = self.set_passive(&t) {
                log::warn!(
                    "gatewayd: health: passive {} of server {} not applied ({e}); decided again",
                    if t.down { "inhibition" } else { "return" },
                    crate::model::SockAddr(t.key.addr, t.key.port)
                );
                self.passive.retract(&t);
                result = Err(e);
            }
        }
        result
    }

    /// Applies passive detection's `transition` to the weight in force, published as
    /// [`ControlState::set_server_health`] publishes, and logged.
    pub(crate) fn set_passive(&mut self, t: &PassiveTransition) -> Result<(), PublishError> {
        let k = &t.key;
        let active = self.checker.engine().health(k);
        let Some((config, table)) = self.health.passive_transition(&self.current, k, t.down, active) else {
            return Ok(());
        };
        if let Some(config) = config {
            if let Err(e) = self.sink.publish(&config) {
                let _ = self.sink.publish(&self.current);
                return Err(e);
            }
            self.current = config;
        }
        let in_force = match table.held(k) {
            Some(h) => h.weight.map_or("out of the service".to_string(), |w| format!("weight {w}")),
            None => "its configured weight".to_string(),
        };
        self.health = table;
        let line = format!(
            "gatewayd: health: server {} of {} passive-{} ({}): {in_force}; generation {}",
            crate::model::SockAddr(k.addr, k.port),
            service_key(&k.service),
            if t.down { "down" } else { "up" },
            t.reason,
            self.current.generation()
        );
        if t.down {
            log::warn!("{line}");
        } else {
            log::info!("{line}");
        }
        Ok(())
    }

    /// Tells passive detection the servers to watch now.
    fn sync_passive(&mut self) {
        let targets = self.health.passive_targets(&self.current);
        self.passive.sync(targets.into_iter().map(|(k, c, d)| (k, c, d.passive().read())).collect());
    }

    /// Applies the checker's `transition` to the weight in force: a down server to weight 0
    /// (or out of its service), an up one to its configured weight (or a dynamic MISC
    /// check's), published to every worker before this returns, as a request's change is
    /// (DESIGN.md invariant 3), and logged. Nothing changes when the server or its check has
    /// gone meanwhile, or it is already held so; nor (the previous configuration staying in
    /// force) when a worker does not confirm, and the checker's next transition tries again.
    pub fn set_server_health(&mut self, transition: &Transition) -> Result<(), PublishError> {
        let k: &TargetKey = &transition.key;
        let Some((config, table)) = self.health.transition(&self.current, k, transition.health) else {
            return Ok(());
        };
        // Before the publish: from it on, a server taken out is in no snapshot.
        if let Some(routes) = &self.probe_routes {
            routes.set_removed(table.removed());
        }
        if let Err(e) = self.sink.publish(&config) {
            let _ = self.sink.publish(&self.current);
            if let Some(routes) = &self.probe_routes {
                routes.set_removed(self.health.removed());
            }
            return Err(e);
        }
        self.current = config;
        let generation = self.current.generation();
        let configured = table.held(k).map(|h| h.configured.weight);
        let in_force = match table.held(k) {
            Some(h) => h.weight.map_or("out of the service".to_string(), |w| format!("weight {w}")),
            None => "its configured weight".to_string(),
        };
        self.health = table;
        let state = if transition.health == Health::Down { "down" } else { "up" };
        let configured = configured.map(|w| format!(" (configured {w})")).unwrap_or_default();
        let server = crate::model::SockAddr(k.addr, k.port);
        let service = service_key(&k.service);
        let line = format!(
            "gatewayd: health: server {server} of {service} {state} ({}): {in_force}{configured}; generation {generation}",
            transition.reason
        );
        if transition.health == Health::Down {
            log::warn!("{line}");
        } else {
            log::info!("{line}");
        }
        Ok(())
    }

    /// Tells the checker the servers to check now.
    fn sync_checker(&self) {
        if let Some(routes) = &self.probe_routes {
            routes.set_removed(self.health.removed());
        }
        let targets = self.health.targets(&self.current);
        let now = self.checker.now();
        self.checker.engine().sync(targets, now);
    }

    fn info(&self) -> GatewayInfo {
        GatewayInfo {
            ipvs_version: IPVS_VERSION.to_string(),
            conn_table_size: self.dataplane.conn_table_size(),
            generation: self.current.generation(),
        }
    }

    fn service(&self, vs: &VirtualService) -> Result<&Service, ApiError> {
        let key = service_key(vs);
        let snap = &self.current.services;
        match snap.service_id(&key) {
            Some(id) => Ok(snap.service(id)),
            None => Err(config_error(ConfigError::ServiceNotFound(key))),
        }
    }

    fn list_services(&self, only: Option<VirtualService>) -> Result<Reply, ApiError> {
        let services: Vec<&Service> = match only {
            Some(vs) => vec![self.service(&vs)?],
            None => self.current.services.services().iter().map(|s| &**s).collect(),
        };
        let services = services.into_iter().map(|svc| self.service_info(svc)).collect();
        Ok(Reply::Services(ServiceTable { info: self.info(), services }))
    }

    fn service_info(&self, svc: &Service) -> ServiceInfo {
        let key = svc.key();
        let servers = svc
            .dests()
            .iter()
            .map(|d| {
                // A server the checker holds shows its configured spec, and the weight in
                // force beside it.
                let held =
                    self.health.held(&TargetKey { service: virtual_service(&key), addr: d.addr(), port: d.port() });
                let spec = held.map_or(d.spec(), |h| &h.configured);
                ServerInfo {
                    config: ServerConfig {
                        addr: spec.addr,
                        port: spec.port,
                        forwarding: forwarding(spec.method),
                        weight: spec.weight,
                        upper_threshold: spec.upper_threshold,
                        lower_threshold: spec.lower_threshold,
                    },
                    checked_weight: held.map(|_| d.weight()),
                    passive: crate::health::passive::counts(&d.counters().passive().read()),
                    active_conns: d.counters().active(),
                    inactive_conns: d.counters().inactive(),
                    persistent_conns: d.counters().persistent(),
                    stats: traffic_stats(d.counters().traffic()),
                }
            })
            .collect();
        ServiceInfo {
            config: ServiceConfig {
                service: virtual_service(&key),
                scheduler: svc.scheduler().name().to_string(),
                persistence: svc.persistence().map(|p| PersistenceConfig { timeout: p.timeout, netmask: p.netmask }),
                one_packet: false,
                synproxy: svc.spec().synproxy,
                proxy_protocol: svc.spec().proxy_protocol.map(|v| match v {
                    Version::V1 => ProxyProtocol::V1,
                    Version::V2 => ProxyProtocol::V2,
                }),
            },
            stats: traffic_stats(&**svc.traffic()),
            servers,
            laddrs: laddr_configs(svc),
        }
    }

    /// The service addresses the workers serve while held (VIPs and local
    /// addresses) and every address the kernel interfaces carry, sorted, each with
    /// whether it is held; `None` without kernel interfaces (every address held).
    fn held_addrs(&self) -> Option<Vec<HeldAddr>> {
        let held = self.current.held.as_deref()?;
        let mut addrs: Vec<IpAddr> = held.to_vec();
        for svc in self.current.services.services() {
            if let ServiceKey::Inet { addr, .. } = svc.key() {
                addrs.push(addr);
            }
            addrs.extend(svc.laddrs().iter().map(|l| l.addr));
        }
        addrs.sort_unstable();
        addrs.dedup();
        Some(addrs.into_iter().map(|a| HeldAddr { addr: a, held: held.binary_search(&a).is_ok() }).collect())
    }

    /// Publishes `held`, the addresses the kernel interfaces carry now (see
    /// [`GatewayConfig::held`]), as its own configuration: a new generation every worker
    /// confirms before this returns, as for a request (DESIGN.md invariant 3). Logs each
    /// address that became held or stopped being held. Nothing changes (and the previous
    /// set stays in force) if a worker does not confirm; the caller tries again.
    pub fn set_held(&mut self, held: Option<Vec<IpAddr>>) -> Result<(), PublishError> {
        let held: Option<Arc<[IpAddr]>> = held.map(|mut h| {
            h.sort_unstable();
            h.dedup();
            h.into()
        });
        if held == self.current.held {
            return Ok(());
        }
        let config = GatewayConfig {
            services: self.current.services.edit().finish(),
            net: Arc::clone(&self.current.net),
            held: held.clone(),
        };
        if let Err(e) = self.sink.publish(&config) {
            let _ = self.sink.publish(&self.current);
            return Err(e);
        }
        let before = std::mem::replace(&mut self.current, config).held;
        let generation = self.current.generation();
        match (&before, &held) {
            (_, None) => log::info!("gatewayd: every address held (no kernel interface); generation {generation}"),
            (None, Some(_)) => {
                log::info!(
                    "gatewayd: addresses held only while a kernel interface carries them; generation {generation}"
                )
            }
            _ => {}
        }
        let (before, after) = (before.as_deref().unwrap_or_default(), held.as_deref().unwrap_or_default());
        for a in after.iter().filter(|a| !before.contains(a)) {
            log::info!(
                "gatewayd: address {a} held (a kernel interface carries it): served here; generation {generation}"
            );
        }
        for a in before.iter().filter(|a| !after.contains(a)) {
            log::info!("gatewayd: address {a} not held (no kernel interface carries it): no ARP answer or new connection here; generation {generation}");
        }
        Ok(())
    }

    fn apply(&mut self, changes: &[Change]) -> Result<Reply, ApiError> {
        if changes.is_empty() {
            // Nothing to publish (an empty `-R`): the workers already run the answer.
            return Ok(Reply::Applied { generation: self.current.generation() });
        }
        let daemon_changes = self.check_daemon_changes(changes)?;
        if daemon_changes.len() == changes.len() {
            self.run_daemon_changes(&daemon_changes)?;
            return Ok(Reply::Applied { generation: self.current.generation() });
        }
        let plan = self.health.plan(changes)?;
        let origin = plan.origin.clone();
        let mut config = self.current.with_changes(&plan.changes).map_err(|mut e| {
            e.change_index = e.change_index.and_then(|i| origin.get(i).copied());
            e
        })?;
        let checker = &self.checker;
        let health = plan.finish(&mut config, |k| checker.engine().health(k))?;
        let undo = self.run_daemon_changes(&daemon_changes)?;
        if let Err(e) = self.sink.publish(&config) {
            // Some workers may run `config`; put everyone back on the configuration in force.
            let _ = self.sink.publish(&self.current);
            self.undo_daemon_changes(undo);
            return Err(ApiError::new(ErrorKind::PublishFailed, format!("configuration not applied: {e}")));
        }
        self.current = config;
        self.health = health;
        self.sync_checker();
        self.sync_passive();
        let generation = self.current.generation();
        log::info!("gatewayd: configuration changed: {}; generation {generation}", change_summary(changes));
        for change in changes {
            match change {
                Change::AddAddr { addr: a } => {
                    log::info!("gatewayd: address {}/{} added on {}", a.addr, a.prefix_len, a.ifname)
                }
                Change::DeleteAddr { addr: a } => {
                    log::info!("gatewayd: address {}/{} removed from {}", a.addr, a.prefix_len, a.ifname)
                }
                _ => {}
            }
        }
        Ok(Reply::Applied { generation })
    }
}

impl ControlState {
    /// The request's daemon changes with their indexes, each checked against the daemons
    /// running and the changes before it: nothing has run yet when one is refused.
    fn check_daemon_changes(&self, changes: &[Change]) -> Result<Vec<(usize, DaemonChange)>, ApiError> {
        let mut running = [Role::Master, Role::Backup].map(|role| self.sync.spec(role).cloned());
        let slot = |role: Role| role as usize;
        let mut checked = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            let at = |e: ApiError| ApiError { change_index: Some(i), ..e };
            let change = match change {
                Change::StartDaemon { daemon } => {
                    let spec = daemon_spec(daemon).map_err(at)?;
                    if let Some(r) = &running[slot(spec.role)] {
                        return Err(at(sync_error(SyncError::AlreadyRunning {
                            role: r.role,
                            mcast_interface: r.mcast_interface.clone(),
                            syncid: r.syncid,
                        })));
                    }
                    if !SyncDaemons::interface_exists(&spec.mcast_interface).map_err(|e| at(sync_error(e)))? {
                        return Err(at(sync_error(SyncError::NoDevice { name: spec.mcast_interface })));
                    }
                    running[slot(spec.role)] = Some(spec.clone());
                    DaemonChange::Start(spec)
                }
                Change::StopDaemon { state } => {
                    let role = role(*state);
                    if running[slot(role)].take().is_none() {
                        return Err(at(sync_error(SyncError::NotRunning { role })));
                    }
                    DaemonChange::Stop(role)
                }
                _ => continue,
            };
            checked.push((i, change));
        }
        Ok(checked)
    }

    /// Runs checked daemon changes; returns how to undo them. If one fails (its socket or
    /// thread), those before it are undone and the error names it.
    fn run_daemon_changes(&mut self, changes: &[(usize, DaemonChange)]) -> Result<Vec<DaemonChange>, ApiError> {
        let mut undo = Vec::new();
        for (i, change) in changes {
            let done = match change {
                DaemonChange::Start(spec) => self.sync.start(spec).map(|()| DaemonChange::Stop(spec.role)),
                DaemonChange::Stop(role) => self.sync.stop(*role).map(DaemonChange::Start),
            };
            match done {
                Ok(reverse) => undo.push(reverse),
                Err(e) => {
                    self.undo_daemon_changes(undo);
                    return Err(ApiError { change_index: Some(*i), ..sync_error(e) });
                }
            }
        }
        Ok(undo)
    }

    /// Puts the daemons back as they were before [`ControlState::run_daemon_changes`].
    fn undo_daemon_changes(&mut self, undo: Vec<DaemonChange>) {
        for change in undo.into_iter().rev() {
            let result = match &change {
                DaemonChange::Start(spec) => self.sync.start(spec),
                DaemonChange::Stop(role) => self.sync.stop(*role).map(drop),
            };
            if let Err(e) = result {
                log::error!("gatewayd: cannot undo a sync daemon change of a refused request: {e}");
            }
        }
    }
}

/// A checked `--start-daemon` or `--stop-daemon`, or how to undo one.
#[derive(Debug, Clone)]
enum DaemonChange {
    Start(DaemonSpec),
    Stop(Role),
}

fn role(state: SyncState) -> Role {
    match state {
        SyncState::Master => Role::Master,
        SyncState::Backup => Role::Backup,
    }
}

/// The daemon a `--start-daemon` asks for, its syncid checked.
pub fn daemon_spec(c: &SyncDaemonConfig) -> Result<DaemonSpec, ApiError> {
    let syncid = u8::try_from(c.syncid).map_err(|_| invalid(format!("syncid {} is out of range 0..=255", c.syncid)))?;
    Ok(DaemonSpec { role: role(c.state), mcast_interface: c.mcast_interface.clone(), syncid })
}

fn daemon_config(spec: &DaemonSpec) -> SyncDaemonConfig {
    SyncDaemonConfig {
        state: match spec.role {
            Role::Master => SyncState::Master,
            Role::Backup => SyncState::Backup,
        },
        mcast_interface: spec.mcast_interface.clone(),
        syncid: u32::from(spec.syncid),
    }
}

/// The sync daemons' error as an API error: the kind tells `gwctl` which ipvsadm text
/// to print.
fn sync_error(e: SyncError) -> ApiError {
    let kind = match &e {
        SyncError::AlreadyRunning { .. } => ErrorKind::DaemonRunning,
        SyncError::NotRunning { .. } => ErrorKind::DaemonNotRunning,
        SyncError::NoDevice { .. } => ErrorKind::NoDevice,
        SyncError::MtuTooSmall { .. } => ErrorKind::InvalidArgument,
        SyncError::Socket { .. } | SyncError::Thread { .. } => ErrorKind::DaemonFailed,
    };
    ApiError::new(kind, e.to_string())
}

/// What an applied request did, for its log line: how many changes of each kind, in the
/// order the kinds first appear (`3 changes: add_service 1, add_server 2`). A restored rule
/// file of thousands of changes is still one short line.
fn change_summary(changes: &[Change]) -> String {
    let mut kinds: Vec<(&'static str, usize)> = Vec::new();
    for change in changes {
        let name = change_name(change);
        match kinds.iter_mut().find(|(k, _)| *k == name) {
            Some((_, n)) => *n += 1,
            None => kinds.push((name, 1)),
        }
    }
    let counts: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let plural = if changes.len() == 1 { "" } else { "s" };
    format!("{} change{plural}: {}", changes.len(), counts.join(", "))
}

/// A change's name, as its `"change"` field on the wire spells it.
fn change_name(change: &Change) -> &'static str {
    match change {
        Change::AddService { .. } => "add_service",
        Change::EditService { .. } => "edit_service",
        Change::DeleteService { .. } => "delete_service",
        Change::Clear => "clear",
        Change::AddServer { .. } => "add_server",
        Change::EditServer { .. } => "edit_server",
        Change::DeleteServer { .. } => "delete_server",
        Change::SetTimeouts { .. } => "set_timeouts",
        Change::AddLaddr { .. } => "add_laddr",
        Change::DeleteLaddr { .. } => "delete_laddr",
        Change::StartDaemon { .. } => "start_daemon",
        Change::StopDaemon { .. } => "stop_daemon",
        Change::AddMark { .. } => "add_mark",
        Change::DeleteMark { .. } => "delete_mark",
        Change::AddAddr { .. } => "add_addr",
        Change::DeleteAddr { .. } => "delete_addr",
        Change::AddRoute { .. } => "add_route",
        Change::DeleteRoute { .. } => "delete_route",
        Change::AddNeighbour { .. } => "add_neighbour",
        Change::DeleteNeighbour { .. } => "delete_neighbour",
        Change::SetHealthCheck { .. } => "set_health_check",
        Change::DeleteHealthCheck { .. } => "delete_health_check",
        Change::SetPassive { .. } => "set_passive",
        Change::DeletePassive { .. } => "delete_passive",
    }
}

impl GatewayConfig {
    /// The configuration `changes` make of this one, every change validated; the first
    /// refused one is the error (with its index), and `self` is untouched either way.
    pub fn with_changes(&self, changes: &[Change]) -> Result<GatewayConfig, ApiError> {
        // The network is copied only if a change touches it, so an unchanged one keeps
        // its `Arc` and the workers' views of it stay valid.
        let mut next = Draft { editor: self.services.edit(), net: Arc::clone(&self.net) };
        for (i, change) in changes.iter().enumerate() {
            next.apply(change).map_err(|mut e| {
                e.change_index = Some(i);
                e
            })?;
        }
        Ok(GatewayConfig { services: next.editor.finish(), net: next.net, held: self.held.clone() })
    }
}

/// The next configuration as one `Apply` drafts it: private copies of the snapshot (its
/// editor) and of the network table, dropped if a change is refused.
struct Draft {
    editor: SnapshotEditor,
    net: Arc<NetConfig>,
}

impl Draft {
    fn apply(&mut self, change: &Change) -> Result<(), ApiError> {
        match change {
            Change::AddService { service } => self.editor.add_service(service_spec(service)?).map_err(config_error)?,
            Change::EditService { service } => {
                self.editor.edit_service(service_spec(service)?).map_err(config_error)?
            }
            Change::DeleteService { service } => {
                self.editor.delete_service(&service_key(service)).map_err(config_error)?
            }
            Change::Clear => self.editor.clear(),
            Change::AddServer { service, server } => {
                let key = service_key(service);
                self.editor.add_dest(&key, dest_spec(server)).map_err(config_error)?;
            }
            Change::EditServer { service, server } => {
                let key = service_key(service);
                self.editor.edit_dest(&key, dest_spec(server)).map_err(config_error)?;
            }
            Change::DeleteServer { service, addr, port } => {
                let key = service_key(service);
                self.editor.delete_dest(&key, *addr, *port).map_err(config_error)?;
            }
            Change::SetTimeouts { tcp, tcp_fin, udp } => {
                // ipvsadm's bound (MAX_TIMEOUT, 31 days): longer is a typo, not a policy.
                const MAX_TIMEOUT: u32 = 86400 * 31;
                if let Some(v) = [tcp, tcp_fin, udp].into_iter().find(|v| **v > MAX_TIMEOUT) {
                    return Err(invalid(format!("timeout {v} is out of range 0..{MAX_TIMEOUT} seconds")));
                }
                self.editor.set_timeouts(*tcp, *tcp_fin, *udp);
            }
            Change::AddLaddr { service, laddr } => {
                // The family rules (NAT64's IPv4 addresses for an IPv6 service
                // included) are the model's: `Editor::add_laddr`.
                let key = service_key(service);
                if laddr.addr.is_unspecified() || laddr.addr.is_multicast() {
                    return Err(invalid(format!("local address {} is not unicast", laddr.addr)));
                }
                if laddr.ifname.is_empty() {
                    return Err(invalid(format!(
                        "local address {} needs the interface that owns it (-F ifname)",
                        laddr.addr
                    )));
                }
                let local = LocalAddr { addr: laddr.addr, ifname: laddr.ifname.clone() };
                self.editor.add_laddr(&key, local).map_err(config_error)?;
            }
            Change::DeleteLaddr { service, addr } => {
                self.editor.delete_laddr(&service_key(service), *addr).map_err(config_error)?;
            }
            // Not configuration: `ControlState::apply` runs them on the sync daemons.
            Change::StartDaemon { .. } | Change::StopDaemon { .. } => {}
            Change::AddMark { rule } => {
                self.editor.add_mark_rule(mark_rule(rule)).map_err(config_error)?;
            }
            Change::DeleteMark { mark } => {
                self.editor.delete_mark_rules(*mark).map_err(config_error)?;
            }
            Change::AddAddr { addr } => Arc::make_mut(&mut self.net).add_addr(addr.clone()).map_err(net_error)?,
            Change::DeleteAddr { addr } => {
                Arc::make_mut(&mut self.net).delete_addr(addr.addr, &addr.ifname).map_err(net_error)?
            }
            Change::AddRoute { route } => Arc::make_mut(&mut self.net).add_route(route.clone()).map_err(net_error)?,
            Change::DeleteRoute { dst, prefix_len } => {
                Arc::make_mut(&mut self.net).delete_route(*dst, *prefix_len).map_err(net_error)?
            }
            Change::AddNeighbour { neighbour } => {
                Arc::make_mut(&mut self.net).add_neighbour(neighbour.clone()).map_err(net_error)?
            }
            Change::DeleteNeighbour { addr, ifname } => {
                Arc::make_mut(&mut self.net).delete_neighbour(*addr, ifname).map_err(net_error)?
            }
            // They act on the control state's health table, which takes them out of a
            // request before the rest reaches a draft (`ControlState::apply`).
            Change::SetHealthCheck { .. }
            | Change::DeleteHealthCheck { .. }
            | Change::SetPassive { .. }
            | Change::DeletePassive { .. } => {
                return Err(invalid("a health check is applied by the control state, not to a configuration".into()))
            }
        }
        Ok(())
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorKind::InvalidArgument, message)
}

fn net_error(e: NetError) -> ApiError {
    let kind = if e.is_exists() {
        ErrorKind::EntryExists
    } else if e.is_not_found() {
        ErrorKind::EntryNotFound
    } else {
        ErrorKind::InvalidArgument
    };
    ApiError::new(kind, e.to_string())
}

/// The model's error as an API error: the kind tells `gwctl` which ipvsadm text to print,
/// the message keeps the model's wording, which names the value.
pub fn config_error(e: ConfigError) -> ApiError {
    use ConfigError::*;
    let kind = match &e {
        UnknownScheduler(_) => ErrorKind::SchedulerNotFound,
        ServiceExists(_) => ErrorKind::ServiceExists,
        ServiceNotFound(_) => ErrorKind::ServiceNotFound,
        DestExists { .. } => ErrorKind::DestExists,
        DestNotFound { .. } => ErrorKind::DestNotFound,
        LaddrExists { .. } => ErrorKind::LaddrExists,
        LaddrNotFound { .. } => ErrorKind::LaddrNotFound,
        MarkRuleExists(_) => ErrorKind::MarkRuleExists,
        MarkRuleNotFound(_) => ErrorKind::MarkRuleNotFound,
        _ => ErrorKind::InvalidArgument,
    };
    ApiError::new(kind, e.to_string())
}

pub fn service_key(vs: &VirtualService) -> ServiceKey {
    ServiceKey::from(vs)
}

pub fn virtual_service(key: &ServiceKey) -> VirtualService {
    match *key {
        ServiceKey::Inet { proto: Protocol::Tcp, addr, port } => VirtualService::Tcp { addr, port },
        ServiceKey::Inet { proto: Protocol::Udp, addr, port } => VirtualService::Udp { addr, port },
        ServiceKey::Fwmark(mark) => VirtualService::Fwmark { mark },
    }
}

fn service_spec(c: &ServiceConfig) -> Result<ServiceSpec, ApiError> {
    let key = service_key(&c.service);
    let scheduler: SchedulerKind = c.scheduler.parse().map_err(config_error)?;
    if c.one_packet && matches!(c.service, VirtualService::Tcp { .. }) {
        return Err(invalid(format!("one-packet scheduling is only for UDP services, not {key}")));
    }
    // Not implemented by the workers (every datagram gets a connection
    // entry): refused, so no rule says otherwise.
    if c.one_packet {
        return Err(invalid(format!("one-packet scheduling (-o) is not supported by this gateway: {key}")));
    }
    let persistence = c.persistence.map(|p| Persistence { timeout: p.timeout, netmask: p.netmask });
    let proxy_protocol = c.proxy_protocol.map(|v| match v {
        ProxyProtocol::V1 => Version::V1,
        ProxyProtocol::V2 => Version::V2,
    });
    Ok(ServiceSpec { key, scheduler, persistence, synproxy: c.synproxy, proxy_protocol })
}

pub fn dest_spec(s: &ServerConfig) -> DestSpec {
    DestSpec::new(s.addr, s.port)
        .with_method(forward_method(s.forwarding))
        .with_weight(s.weight)
        .with_thresholds(s.upper_threshold, s.lower_threshold)
}

fn forward_method(f: Forwarding) -> ForwardMethod {
    match f {
        Forwarding::FullNat => ForwardMethod::FullNat,
        Forwarding::Masq => ForwardMethod::Masq,
        Forwarding::Route => ForwardMethod::DirectRoute,
        Forwarding::Tunnel => ForwardMethod::Tunnel,
    }
}

fn forwarding(m: ForwardMethod) -> Forwarding {
    match m {
        ForwardMethod::FullNat => Forwarding::FullNat,
        ForwardMethod::Masq => Forwarding::Masq,
        ForwardMethod::DirectRoute => Forwarding::Route,
        ForwardMethod::Tunnel => Forwarding::Tunnel,
    }
}

fn laddr_configs(svc: &Service) -> Vec<LaddrConfig> {
    svc.laddrs().iter().map(|l| LaddrConfig { addr: l.addr, ifname: l.ifname.clone() }).collect()
}

fn transport(p: Protocol) -> TransportProtocol {
    match p {
        Protocol::Tcp => TransportProtocol::Tcp,
        Protocol::Udp => TransportProtocol::Udp,
    }
}

fn mark_rule(c: &MarkRuleConfig) -> MarkRule {
    MarkRule {
        mark: c.mark,
        dst: c.dst,
        prefix_len: c.prefix_len,
        proto: c.protocol.map(|p| match p {
            TransportProtocol::Tcp => Protocol::Tcp,
            TransportProtocol::Udp => Protocol::Udp,
        }),
        ports: c.ports.clone(),
    }
}

fn mark_rule_config(r: &MarkRule) -> MarkRuleConfig {
    MarkRuleConfig {
        mark: r.mark,
        dst: r.dst,
        prefix_len: r.prefix_len,
        protocol: r.proto.map(transport),
        ports: r.ports.clone(),
    }
}

/// `--stats` and `--rate` of a service or real server.
fn traffic_stats(t: &dyn TrafficCounts) -> TrafficStats {
    let (n, r) = (t.totals(), t.rates());
    TrafficStats {
        conns: n.conns,
        in_packets: n.in_packets,
        out_packets: n.out_packets,
        in_bytes: n.in_bytes,
        out_bytes: n.out_bytes,
        cps: r.cps,
        in_pps: r.in_pps,
        out_pps: r.out_pps,
        in_bps: r.in_bps,
        out_bps: r.out_bps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::dataplane::NoDataplane;
    use crate::control::publish::{NoWorkers, PublishError};
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn web() -> VirtualService {
        VirtualService::Tcp { addr: ip("10.0.0.1"), port: 80 }
    }

    fn state() -> ControlState {
        ControlState::new(GatewayConfig::empty(), Box::new(NoWorkers), Box::new(NoDataplane::default()))
    }

    fn add_web() -> Change {
        Change::AddService {
            service: ServiceConfig {
                service: web(),
                scheduler: "rr".into(),
                persistence: None,
                one_packet: false,
                synproxy: true,
                proxy_protocol: None,
            },
        }
    }

    fn server(addr: &str, port: u16) -> ServerConfig {
        ServerConfig {
            addr: ip(addr),
            port,
            forwarding: Forwarding::Masq,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    #[test]
    fn a_change_summary_counts_each_kind_in_wire_names() {
        let rs = |port| Change::AddServer { service: web(), server: server("10.0.0.2", port) };
        assert_eq!(change_summary(&[add_web()]), "1 change: add_service 1");
        assert_eq!(
            change_summary(&[add_web(), rs(80), rs(81), Change::DeleteService { service: web() }, rs(82)]),
            "5 changes: add_service 1, add_server 3, delete_service 1"
        );
        // The names are the wire's own (`"change": "add_server"`).
        let wire = serde_json::to_value(rs(80)).unwrap();
        assert_eq!(wire["change"], change_name(&rs(80)));
        let wire = serde_json::to_value(Change::Clear).unwrap();
        assert_eq!(wire["change"], change_name(&Change::Clear));
    }

    #[test]
    fn the_syn_proxy_refuses_servers_whose_replies_bypass_the_gateway() {
        let mut st = state();
        st.handle(Request::Apply { changes: vec![add_web()] }).unwrap();
        let before = st.config().generation();
        for forwarding in [Forwarding::Route, Forwarding::Tunnel] {
            let err = st
                .handle(Request::Apply {
                    changes: vec![Change::AddServer {
                        service: web(),
                        server: ServerConfig { forwarding, ..server("192.168.1.2", 80) },
                    }],
                })
                .unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgument);
            assert!(err.message.starts_with("SYN proxy on TCP 10.0.0.1:80 needs the replies to pass the gateway, but real server 192.168.1.2:80 is"), "{}", err.message);
        }
        assert_eq!(st.config().generation(), before, "nothing applied");
        // A NAT server is fine; turning -j on over a DR server is refused too.
        st.handle(Request::Apply {
            changes: vec![Change::AddServer { service: web(), server: server("192.168.1.3", 80) }],
        })
        .unwrap();
        let Change::AddService { service: plain } = add_web() else { unreachable!() };
        let plain = ServiceConfig { synproxy: false, ..plain };
        let dr = ServerConfig { forwarding: Forwarding::Route, ..server("192.168.1.4", 80) };
        st.handle(Request::Apply {
            changes: vec![
                Change::EditService { service: plain.clone() },
                Change::AddServer { service: web(), server: dr },
            ],
        })
        .unwrap();
        let err = st
            .handle(Request::Apply {
                changes: vec![Change::EditService { service: ServiceConfig { synproxy: true, ..plain } }],
            })
            .unwrap_err();
        assert!(err.message.contains("192.168.1.4:80 is direct-routed (-g)"), "{}", err.message);
    }

    #[test]
    fn one_packet_scheduling_is_refused_for_every_kind_of_service() {
        let mut st = state();
        st.handle(Request::Apply { changes: vec![add_web()] }).unwrap();
        let before = st.config().generation();
        let udp = VirtualService::Udp { addr: ip("10.0.0.1"), port: 53 };
        let cases = [
            (
                Change::AddService {
                    service: ServiceConfig {
                        service: udp,
                        scheduler: "rr".into(),
                        persistence: None,
                        one_packet: true,
                        synproxy: false,
                        proxy_protocol: None,
                    },
                },
                "UDP 10.0.0.1:53",
            ),
            (
                Change::AddService {
                    service: ServiceConfig {
                        service: VirtualService::Fwmark { mark: 3 },
                        scheduler: "rr".into(),
                        persistence: None,
                        one_packet: true,
                        synproxy: false,
                        proxy_protocol: None,
                    },
                },
                "FWM 3",
            ),
            (
                Change::EditService {
                    service: ServiceConfig {
                        service: web(),
                        scheduler: "rr".into(),
                        persistence: None,
                        one_packet: true,
                        synproxy: false,
                        proxy_protocol: None,
                    },
                },
                "",
            ),
        ];
        for (change, key) in cases {
            let err = st.handle(Request::Apply { changes: vec![change] }).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgument);
            if key.is_empty() {
                assert_eq!(err.message, "one-packet scheduling is only for UDP services, not TCP 10.0.0.1:80");
            } else {
                assert_eq!(err.message, format!("one-packet scheduling (-o) is not supported by this gateway: {key}"));
            }
        }
        assert_eq!(st.config().generation(), before, "nothing applied");
    }

    #[test]
    fn a_refused_change_in_a_batch_changes_nothing() {
        let mut st = state();
        st.handle(Request::Apply { changes: vec![add_web()] }).unwrap();
        let before = st.config().generation();
        let err = st
            .handle(Request::Apply {
                changes: vec![
                    Change::AddServer { service: web(), server: server("192.168.1.2", 80) },
                    Change::DeleteService { service: web() },
                    Change::AddServer { service: web(), server: server("192.168.1.3", 80) },
                ],
            })
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::ServiceNotFound);
        assert_eq!(err.change_index, Some(2));
        assert_eq!(err.message, "service TCP 10.0.0.1:80 not defined");
        assert_eq!(st.config().generation(), before);
        let Reply::Services(table) = st.handle(Request::ListServices { service: None }).unwrap() else {
            panic!("not a service table")
        };
        assert_eq!(table.services.len(), 1);
        assert!(table.services[0].servers.is_empty());
        assert!(table.services[0].config.synproxy, "flags survive");
    }

    #[test]
    fn errors_have_kinds_that_name_values() {
        let mut st = state();
        st.handle(Request::Apply { changes: vec![add_web()] }).unwrap();
        let one = |st: &mut ControlState, c: Change| st.handle(Request::Apply { changes: vec![c] }).unwrap_err();
        let e = one(&mut st, add_web());
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::ServiceExists, "service TCP 10.0.0.1:80 already exists"));
        let mut bad_sched = add_web();
        if let Change::AddService { service } = &mut bad_sched {
            service.scheduler = "fastest".into();
            service.service = VirtualService::Udp { addr: ip("10.0.0.1"), port: 53 };
        }
        let e = one(&mut st, bad_sched);
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::SchedulerNotFound, "unknown scheduler \"fastest\""));
        let e = one(
            &mut st,
            Change::AddServer { service: web(), server: ServerConfig { weight: 65536, ..server("192.168.1.2", 80) } },
        );
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::InvalidArgument, "weight 65536 out of range 0..65535"));
        let e = one(
            &mut st,
            Change::StartDaemon {
                daemon: gwapi::api::SyncDaemonConfig {
                    state: gwapi::api::SyncState::Master,
                    mcast_interface: "nosuchif0".into(),
                    syncid: 255,
                },
            },
        );
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::NoDevice, "no interface named \"nosuchif0\" for the sync daemon")
        );
        let e = one(&mut st, Change::SetTimeouts { tcp: 86400 * 32, tcp_fin: 0, udp: 0 });
        assert_eq!(e.message, "timeout 2764800 is out of range 0..2678400 seconds");
        let e = st.handle(Request::Zero { service: Some(VirtualService::Fwmark { mark: 3 }) }).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::ServiceNotFound, "service FWM 3 not defined"));
    }

    fn start(state: SyncState, ifname: &str, syncid: u32) -> Change {
        Change::StartDaemon { daemon: SyncDaemonConfig { state, mcast_interface: ifname.into(), syncid } }
    }

    fn daemons(st: &mut ControlState) -> Vec<SyncDaemonConfig> {
        match st.handle(Request::ListDaemons).unwrap() {
            Reply::Daemons(info) => info.daemons,
            other => panic!("{other:?}"),
        }
    }

    fn apply(st: &mut ControlState, changes: Vec<Change>) -> Result<Reply, ApiError> {
        st.handle(Request::Apply { changes })
    }

    #[test]
    fn sync_daemons_start_stop_and_list_master_first() {
        let mut st = state();
        let before = st.config().generation();
        assert_eq!(daemons(&mut st), vec![]);
        apply(&mut st, vec![start(SyncState::Backup, "lo", 0)]).unwrap();
        apply(&mut st, vec![start(SyncState::Master, "lo", 7)]).unwrap();
        assert_eq!(
            daemons(&mut st),
            vec![
                SyncDaemonConfig { state: SyncState::Master, mcast_interface: "lo".into(), syncid: 7 },
                SyncDaemonConfig { state: SyncState::Backup, mcast_interface: "lo".into(), syncid: 0 },
            ]
        );
        assert_eq!(st.config().generation(), before, "the daemons are no configuration: nothing published");
        apply(&mut st, vec![Change::StopDaemon { state: SyncState::Backup }]).unwrap();
        assert_eq!(
            daemons(&mut st),
            vec![SyncDaemonConfig { state: SyncState::Master, mcast_interface: "lo".into(), syncid: 7 }]
        );
        // Every counter is listed, zero or not.
        let Reply::Daemons(info) = st.handle(Request::ListDaemons).unwrap() else { panic!() };
        assert_eq!(info.backup.malformed.len(), 5);
        assert_eq!(info.workers.refused.len(), 8);
        // Stopped and started again in one request: the new settings.
        apply(&mut st, vec![Change::StopDaemon { state: SyncState::Master }, start(SyncState::Master, "lo", 9)])
            .unwrap();
        assert_eq!(daemons(&mut st)[0].syncid, 9);
    }

    #[test]
    fn sync_daemon_refusals_say_what_and_change_nothing() {
        let mut st = state();
        apply(&mut st, vec![start(SyncState::Master, "lo", 7)]).unwrap();
        let e = apply(&mut st, vec![start(SyncState::Master, "lo", 8)]).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str(), e.change_index),
            (ErrorKind::DaemonRunning, "a master sync daemon is already running (mcast=lo, syncid=7)", Some(0))
        );
        let e = apply(&mut st, vec![Change::StopDaemon { state: SyncState::Backup }]).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::DaemonNotRunning, "no backup sync daemon is running"));
        let e = apply(&mut st, vec![start(SyncState::Backup, "lo", 256)]).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::InvalidArgument, "syncid 256 is out of range 0..=255"));
        // Checked in order, against the changes before: two backups in one request.
        let e = apply(&mut st, vec![start(SyncState::Backup, "lo", 1), start(SyncState::Backup, "lo", 2)]).unwrap_err();
        assert_eq!((e.kind, e.change_index), (ErrorKind::DaemonRunning, Some(1)));
        // A refused service change after a daemon change: neither happens.
        let before = st.config().generation();
        let e =
            apply(&mut st, vec![Change::StopDaemon { state: SyncState::Master }, add_web(), add_web()]).unwrap_err();
        assert_eq!((e.kind, e.change_index), (ErrorKind::ServiceExists, Some(2)));
        let e = apply(
            &mut st,
            vec![
                start(SyncState::Backup, "lo", 1),
                Change::StopDaemon { state: SyncState::Master },
                start(SyncState::Master, "nosuchif0", 1),
            ],
        )
        .unwrap_err();
        assert_eq!((e.kind, e.change_index), (ErrorKind::NoDevice, Some(2)));
        assert_eq!(
            daemons(&mut st),
            vec![SyncDaemonConfig { state: SyncState::Master, mcast_interface: "lo".into(), syncid: 7 }]
        );
        assert_eq!(st.config().generation(), before);
    }

    #[test]
    fn a_failed_publish_undoes_the_requests_daemon_changes() {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut st = ControlState::new(
            GatewayConfig::empty(),
            Box::new(Refusing { calls: calls.clone() }),
            Box::new(NoDataplane::default()),
        );
        apply(&mut st, vec![start(SyncState::Master, "lo", 7)]).unwrap();
        let e = apply(
            &mut st,
            vec![Change::StopDaemon { state: SyncState::Master }, start(SyncState::Backup, "lo", 3), add_web()],
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::PublishFailed);
        assert_eq!(
            daemons(&mut st),
            vec![SyncDaemonConfig { state: SyncState::Master, mcast_interface: "lo".into(), syncid: 7 }]
        );
    }

    struct Refusing {
        calls: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    }

    impl SnapshotSink for Refusing {
        fn publish(&mut self, config: &GatewayConfig) -> Result<(), PublishError> {
            self.calls.lock().unwrap().push(config.generation());
            if config.generation() > 0 {
                Err(PublishError { message: "worker 1 did not confirm".into() })
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_failed_publish_keeps_and_republishes_the_previous_configuration() {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut st = ControlState::new(
            GatewayConfig::empty(),
            Box::new(Refusing { calls: calls.clone() }),
            Box::new(NoDataplane::default()),
        );
        let e = st.handle(Request::Apply { changes: vec![add_web()] }).unwrap_err();
        assert_eq!(e.kind, ErrorKind::PublishFailed);
        assert_eq!(e.message, "configuration not applied: worker 1 did not confirm");
        assert_eq!(*calls.lock().unwrap(), vec![1, 0]);
        assert!(st.config().services.services().is_empty());
    }

    #[test]
    fn a_held_set_the_workers_did_not_confirm_is_not_in_force() {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut st = ControlState::new(
            GatewayConfig::empty(),
            Box::new(Refusing { calls: calls.clone() }),
            Box::new(NoDataplane::default()),
        );
        let e = st.set_held(Some(vec![std::net::Ipv4Addr::new(10, 0, 0, 1).into()])).unwrap_err();
        assert_eq!(e.message, "worker 1 did not confirm");
        assert_eq!(*calls.lock().unwrap(), vec![1, 0], "published, then the configuration in force again");
        assert_eq!(st.config().held, None);
        match st.handle(Request::ListAddrs).unwrap() {
            Reply::Addrs { held, .. } => assert_eq!(held, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn held_addresses_survive_requests_and_list_with_the_services_addresses() {
        let mut st = state();
        st.handle(Request::Apply { changes: vec![add_web()] }).unwrap();
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        st.set_held(Some(vec![v4("10.0.0.9"), v4("10.0.0.1"), v4("10.0.0.9")])).unwrap();
        assert_eq!(st.config().held.as_deref(), Some(&[v4("10.0.0.1"), v4("10.0.0.9")][..]), "sorted, each once");
        let generation = st.config().generation();
        st.set_held(Some(vec![v4("10.0.0.1"), v4("10.0.0.9")])).unwrap();
        assert_eq!(st.config().generation(), generation, "the same set again publishes nothing");
        st.set_held(Some(vec![v4("10.0.0.9")])).unwrap();
        assert_eq!(st.config().generation(), generation + 1);
        st.handle(Request::Apply { changes: vec![Change::Clear] }).unwrap();
        st.handle(Request::Apply { changes: vec![add_web()] }).unwrap();
        assert_eq!(st.config().held.as_deref(), Some(&[v4("10.0.0.9")][..]), "requests keep it");
        let held = match st.handle(Request::ListAddrs).unwrap() {
            Reply::Addrs { held, .. } => held.unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            held,
            vec![HeldAddr { addr: ip("10.0.0.1"), held: false }, HeldAddr { addr: ip("10.0.0.9"), held: true }],
            "the VIP (not held) and what the kernel interfaces carry"
        );
    }
}
