//! The control plane's side of health checks: which checks are configured, which servers the
//! checker holds at another weight than their configured one, and how both follow the
//! operator's changes.
//!
//! Design choices:
//!
//! - **The snapshot holds the weight in force.** A down, inhibited server is weight 0 in the
//!   snapshot the workers run, exactly as if the operator had set it: the workers need no
//!   notion of health, and the change reaches them by the normal atomic publish. The
//!   configured weight is kept here ([`Held::configured`]), so `-S` saves it and recovery
//!   restores it.
//! - **The operator's word wins over the checker's, and survives it.** An `-e` of a held
//!   server changes its configured spec (what it comes back with) while the checker's weight
//!   stays in force; `-d` forgets it; a check deleted lifts its hold. So a manual weight is
//!   never overwritten by the checker, and the checker's 0 never leaks into `-S`.
//! - **Passive detection joins in** (`health::passive` has the policy and the interplay): a
//!   server it inhibits is in `passive_down`, and the weight in force is the stricter of the
//!   two judges (`HealthTable::wanted`): an active down as its check's `on_failure` says,
//!   else a passive down at 0, else an active dynamic weight, else the configured one.
//! - **All or nothing.** Health changes travel in the same [`Change`] list as the others and
//!   are validated against the configuration those make; a refused one refuses the request.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use gwapi::api::{ApiError, Change, ErrorKind, VirtualService};
use gwapi::health::{CheckKind, OnFailure, PassiveConfig};

use super::apply::{config_error, dest_spec, service_key, virtual_service};
use super::publish::GatewayConfig;
use crate::health::{Check, Health, TargetKey};
use crate::model::{DestSpec, ServiceKey, SnapshotEditor};

/// A server the checker holds at another weight than its configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The server as the operator configured it (`-a`, later `-e`).
    pub configured: DestSpec,
    /// The weight in force; `None`: out of the service (`on_failure remove`).
    pub weight: Option<u32>,
}

/// Where a check is configured: a service, and one of its servers or (`None`) all.
type CheckSlot = (VirtualService, Option<(IpAddr, u16)>);

/// Configured checks and held servers.
#[derive(Debug, Clone, Default)]
pub struct HealthTable {
    /// By service, then server; `None`: the service's own, inherited by its servers.
    checks: BTreeMap<CheckSlot, Arc<Check>>,
    held: BTreeMap<TargetKey, Held>,
    /// Services with passive detection on.
    passive: BTreeMap<VirtualService, PassiveConfig>,
    /// Servers passive detection inhibits now.
    passive_down: BTreeSet<TargetKey>,
}

/// A request's changes as the configuration takes them, and the health table they make.
pub struct Plan {
    /// The changes for [`GatewayConfig::with_changes`]: the request's, less the health
    /// changes, with the edits of held servers made to their weight in force.
    pub changes: Vec<Change>,
    /// For each of `changes`, its index in the request.
    pub origin: Vec<usize>,
    health: Vec<(usize, Change)>,
    table: HealthTable,
}

fn key(service: &VirtualService, addr: IpAddr, port: u16) -> TargetKey {
    TargetKey { service: *service, addr, port }
}

fn at(index: usize, mut e: ApiError) -> ApiError {
    e.change_index = Some(index);
    e
}

impl HealthTable {
    /// The check `key` runs: its own, else its service's.
    pub fn check(&self, key: &TargetKey) -> Option<(&Arc<Check>, bool)> {
        self.checks
            .get(&(key.service, Some((key.addr, key.port))))
            .map(|c| (c, false))
            .or_else(|| self.checks.get(&(key.service, None)).map(|c| (c, true)))
    }

    pub fn held(&self, key: &TargetKey) -> Option<&Held> {
        self.held.get(key)
    }

    /// The passive detection of `service`, if on.
    pub fn passive(&self, service: &VirtualService) -> Option<&PassiveConfig> {
        self.passive.get(service)
    }

    /// Whether passive detection inhibits `key`.
    pub fn is_passive_down(&self, key: &TargetKey) -> bool {
        self.passive_down.contains(key)
    }

    /// The weight `key` should be held at, given its active check's health (`None`:
    /// unchecked): `None` its configured one, `Some(None)` out of the service.
    fn wanted(&self, k: &TargetKey, active: Option<Health>) -> Option<Option<u32>> {
        let check = self.check(k).map(|(c, _)| c);
        match (active, check) {
            (Some(Health::Down), Some(check)) => Some(match check.on_failure() {
                OnFailure::Inhibit => Some(0),
                OnFailure::Remove => None,
            }),
            _ if self.passive_down.contains(k) => Some(Some(0)),
            (Some(Health::Up { weight: Some(w) }), Some(_)) => Some(Some(w.min(DestSpec::MAX_WEIGHT))),
            _ => None,
        }
    }

    /// Splits `changes` into the ones the snapshot takes and the health ones, and makes the
    /// edits of held servers change their configured spec.
    pub fn plan(&self, changes: &[Change]) -> Result<Plan, ApiError> {
        let mut plan = Plan { changes: Vec::new(), origin: Vec::new(), health: Vec::new(), table: self.clone() };
        for (i, change) in changes.iter().enumerate() {
            let pass = match change {
                Change::SetHealthCheck { .. }
                | Change::DeleteHealthCheck { .. }
                | Change::SetPassive { .. }
                | Change::DeletePassive { .. } => {
                    plan.health.push((i, change.clone()));
                    None
                }
                Change::EditServer { service, server } => {
                    match plan.table.held.get_mut(&key(service, server.addr, server.port)) {
                        Some(held) => {
                            if server.weight > DestSpec::MAX_WEIGHT {
                                return Err(at(
                                    i,
                                    config_error(crate::model::ConfigError::WeightOutOfRange(server.weight)),
                                ));
                            }
                            held.configured = dest_spec(server);
                            // In force stays the checker's weight; a removed server has
                            // nothing in the snapshot to edit.
                            held.weight.map(|w| {
                                let mut edit = *server;
                                edit.weight = w;
                                Change::EditServer { service: *service, server: edit }
                            })
                        }
                        None => Some(change.clone()),
                    }
                }
                Change::DeleteServer { service, addr, port } => {
                    plan.table.passive_down.remove(&key(service, *addr, *port));
                    match plan.table.held.remove(&key(service, *addr, *port)) {
                        Some(Held { weight: None, .. }) => None,
                        _ => Some(change.clone()),
                    }
                }
                Change::AddServer { service, server } => {
                    if let Some(Held { weight: None, .. }) =
                        plan.table.held.get(&key(service, server.addr, server.port))
                    {
                        return Err(at(
                            i,
                            ApiError::new(
                                ErrorKind::DestExists,
                                format!(
                                    "server {} is configured in service {}, out of it while its health check fails",
                                    crate::model::SockAddr(server.addr, server.port),
                                    service_key(service)
                                ),
                            ),
                        ));
                    }
                    Some(change.clone())
                }
                _ => Some(change.clone()),
            };
            if let Some(c) = pass {
                plan.changes.push(c);
                plan.origin.push(i);
            }
        }
        Ok(plan)
    }
}

impl Plan {
    /// Applies the health changes to `config` (what the other changes made): validates them,
    /// forgets the checks and holds of what is gone, gives a server no check holds any more
    /// its configured spec back, and holds a server that is `down` as its check's
    /// `on_failure` now says (inhibited or removed). Returns the next health table.
    pub fn finish(
        mut self,
        config: &mut GatewayConfig,
        health: impl Fn(&TargetKey) -> Option<Health>,
    ) -> Result<HealthTable, ApiError> {
        let down = |k: &TargetKey| health(k) == Some(Health::Down);
        let snapshot = Arc::clone(&config.services);
        let table = &mut self.table;
        let exists =
            |table: &HealthTable, service: &VirtualService, server: Option<(IpAddr, u16)>| -> Result<(), ApiError> {
                let skey = service_key(service);
                let id = snapshot
                    .service_id(&skey)
                    .ok_or_else(|| config_error(crate::model::ConfigError::ServiceNotFound(skey)))?;
                if let Some((addr, port)) = server {
                    let configured = snapshot.service(id).dest_index(addr, port).is_some()
                        || table.held.contains_key(&key(service, addr, port));
                    if !configured {
                        return Err(config_error(crate::model::ConfigError::DestNotFound {
                            dest: crate::model::SockAddr(addr, port),
                            service: skey,
                        }));
                    }
                }
                Ok(())
            };
        for (i, change) in std::mem::take(&mut self.health) {
            match change {
                Change::SetHealthCheck { service, server, check } => {
                    exists(table, &service, server).map_err(|e| at(i, e))?;
                    let check = Check::new(&check)
                        .map_err(|e| at(i, ApiError::new(ErrorKind::InvalidArgument, e.to_string())))?;
                    if let (Some((addr, 0)), false) = (server, matches!(check.kind(), CheckKind::Misc { .. })) {
                        return Err(at(
                            i,
                            ApiError::new(
                                ErrorKind::InvalidArgument,
                                format!("server {addr} has port 0: a {} check needs a port", check.kind().name()),
                            ),
                        ));
                    }
                    table.checks.insert((service, server), Arc::new(check));
                }
                // The guard deletes the check; one that was not there is the error.
                Change::DeleteHealthCheck { service, server } if table.checks.remove(&(service, server)).is_none() => {
                    let whose = match server {
                        Some((addr, port)) => format!("server {} of ", crate::model::SockAddr(addr, port)),
                        None => String::new(),
                    };
                    return Err(at(
                        i,
                        ApiError::new(
                            ErrorKind::EntryNotFound,
                            format!("no health check of {whose}service {}", service_key(&service)),
                        ),
                    ));
                }
                Change::SetPassive { service, passive } => {
                    exists(table, &service, None).map_err(|e| at(i, e))?;
                    passive.validate().map_err(|m| at(i, ApiError::new(ErrorKind::InvalidArgument, m)))?;
                    table.passive.insert(service, passive);
                }
                Change::DeletePassive { service } if table.passive.remove(&service).is_none() => {
                    return Err(at(
                        i,
                        ApiError::new(
                            ErrorKind::EntryNotFound,
                            format!("no passive detection on service {}", service_key(&service)),
                        ),
                    ));
                }
                _ => {}
            }
        }
        // What went with its service or server goes from here too.
        let live = |k: &TargetKey| {
            snapshot
                .service_id(&service_key(&k.service))
                .is_some_and(|id| snapshot.service(id).dest_index(k.addr, k.port).is_some())
        };
        table
            .held
            .retain(|k, h| snapshot.service_id(&service_key(&k.service)).is_some() && (h.weight.is_none() || live(k)));
        let held = table.held.clone();
        table.checks.retain(|(service, server), _| match server {
            None => snapshot.service_id(&service_key(service)).is_some(),
            Some((addr, port)) => live(&key(service, *addr, *port)) || held.contains_key(&key(service, *addr, *port)),
        });
        let passive_on = |t: &HealthTable, k: &TargetKey| t.passive.contains_key(&k.service) && live(k);
        let unheld: Vec<TargetKey> = table.passive_down.iter().filter(|k| !passive_on(table, k)).copied().collect();
        for k in &unheld {
            table.passive_down.remove(k);
        }
        let lifted: Vec<TargetKey> = table
            .held
            .keys()
            .filter(|k| table.check(k).is_none() && !table.passive_down.contains(k))
            .copied()
            .collect();
        // Passive detection gone from a server its active check holds up: the check's
        // weight (configured or dynamic) is in force again.
        let released: Vec<(TargetKey, Option<Option<u32>>)> = unheld
            .iter()
            .filter(|k| table.check(k).is_some() && table.held.contains_key(k))
            .map(|k| (*k, table.wanted(k, health(k))))
            .collect();
        // A down server whose check changed its on_failure: inhibited where it was removed,
        // or the other way round.
        let switched: Vec<(TargetKey, Option<u32>)> = table
            .held
            .iter()
            .filter(|(k, _)| down(k))
            .filter_map(|(k, h)| {
                let wanted = match table.check(k)?.0.on_failure() {
                    OnFailure::Inhibit => Some(0),
                    OnFailure::Remove => None,
                };
                (wanted != h.weight && (wanted.is_none() || h.weight.is_none())).then_some((*k, wanted))
            })
            .collect();
        if !lifted.is_empty() || !switched.is_empty() || !released.is_empty() {
            let mut editor = config.services.edit();
            for (k, wanted) in released {
                let skey = service_key(&k.service);
                match wanted {
                    None => {
                        if let Some(h) = table.held.remove(&k) {
                            restore(&mut editor, &k, &h).map_err(config_error)?;
                        }
                    }
                    Some(Some(w)) => {
                        if let Some(h) = table.held.get_mut(&k) {
                            editor.edit_dest(&skey, h.configured.with_weight(w)).map_err(config_error)?;
                            h.weight = Some(w);
                        }
                    }
                    // Out of the service: its active check already holds it so.
                    Some(None) => {}
                }
            }
            for k in lifted {
                if let Some(h) = table.held.remove(&k) {
                    restore(&mut editor, &k, &h).map_err(config_error)?;
                }
            }
            for (k, wanted) in switched {
                let Some(h) = table.held.get_mut(&k) else { continue };
                let skey = service_key(&k.service);
                match wanted {
                    Some(w) => editor.add_dest(&skey, h.configured.with_weight(w)),
                    None => editor.delete_dest(&skey, k.addr, k.port),
                }
                .map_err(config_error)?;
                h.weight = wanted;
            }
            config.services = editor.finish();
        }
        Ok(self.table)
    }
}

/// Puts `held`'s configured spec back in force.
fn restore(editor: &mut SnapshotEditor, k: &TargetKey, held: &Held) -> Result<(), crate::model::ConfigError> {
    let skey = service_key(&k.service);
    match held.weight {
        Some(_) => editor.edit_dest(&skey, held.configured),
        None => editor.add_dest(&skey, held.configured),
    }
}

impl HealthTable {
    /// Every server a check applies to in `config`, with its check and whether it is the
    /// service's.
    /// The servers held out of their service, with their configured forwarding method
    /// (their probes still need it).
    pub fn removed(&self) -> crate::health::routes::Removed {
        self.held.iter().filter(|(_, h)| h.weight.is_none()).map(|(k, h)| (*k, h.configured.method)).collect()
    }

    pub fn targets(&self, config: &GatewayConfig) -> Vec<(TargetKey, Arc<Check>, bool)> {
        let mut out = Vec::new();
        for svc in config.services.services() {
            let service = virtual_service(&svc.key());
            let removed = self.held.iter().filter(|(k, h)| k.service == service && h.weight.is_none()).map(|(k, _)| *k);
            let keys: Vec<TargetKey> =
                svc.dests().iter().map(|d| key(&service, d.addr(), d.port())).chain(removed).collect();
            for k in keys {
                if let Some((check, inherited)) = self.check(&k) {
                    out.push((k, Arc::clone(check), inherited));
                }
            }
        }
        out
    }

    /// The configuration in which `key` is held as its active check's `health` makes it, and
    /// the next table; `None` when nothing changes (a server or check gone meanwhile, the
    /// same weight).
    pub fn transition(
        &self,
        config: &GatewayConfig,
        k: &TargetKey,
        health: Health,
    ) -> Option<(GatewayConfig, HealthTable)> {
        self.check(k)?;
        let (config, table) = self.clone().settle(config, k, Some(health))?;
        Some((config?, table))
    }

    /// The next table with `key` inhibited by passive detection (`down`) or not, given its
    /// active check's `health` (`None`: unchecked), and the configuration with the weight
    /// that makes, if the weight changes; `None` when the server is gone.
    pub fn passive_transition(
        &self,
        config: &GatewayConfig,
        k: &TargetKey,
        down: bool,
        health: Option<Health>,
    ) -> Option<(Option<GatewayConfig>, HealthTable)> {
        let mut table = self.clone();
        if down {
            table.passive_down.insert(*k);
        } else {
            table.passive_down.remove(k);
        }
        table.settle(config, k, health)
    }

    /// Puts the weight [`HealthTable::wanted`] says in force for `key`: the next table, and
    /// the configuration if the weight changed. `None` when the server is gone or the edit
    /// is refused (logged).
    fn settle(
        mut self,
        config: &GatewayConfig,
        k: &TargetKey,
        health: Option<Health>,
    ) -> Option<(Option<GatewayConfig>, HealthTable)> {
        let skey: ServiceKey = service_key(&k.service);
        let snapshot = &config.services;
        let svc = snapshot.service(snapshot.service_id(&skey)?);
        let in_force = svc.dest_index(k.addr, k.port).map(|i| *svc.dests()[i].spec());
        let current = self.held.get(k).map(|h| h.weight);
        let configured = match (self.held.get(k), in_force) {
            (Some(h), _) => h.configured,
            (None, Some(spec)) => spec,
            (None, None) => return None,
        };
        let wanted = self.wanted(k, health);
        if wanted == current {
            return Some((None, self));
        }
        let mut editor = snapshot.edit();
        let result = match wanted {
            None => {
                let h = self.held.remove(k)?;
                restore(&mut editor, k, &h)
            }
            Some(weight) => {
                self.held.insert(*k, Held { configured, weight });
                match (weight, in_force) {
                    (Some(w), Some(_)) => editor.edit_dest(&skey, configured.with_weight(w)),
                    (Some(w), None) => editor.add_dest(&skey, configured.with_weight(w)),
                    (None, Some(_)) => editor.delete_dest(&skey, k.addr, k.port),
                    (None, None) => Ok(()),
                }
            }
        };
        if let Err(e) = result {
            log::warn!(
                "gatewayd: health: cannot hold server {} of {skey} at {wanted:?}: {e}",
                crate::model::SockAddr(k.addr, k.port)
            );
            return None;
        }
        Some((Some(GatewayConfig { services: editor.finish(), ..config.clone() }), self))
    }

    /// Every server of a service with passive detection on that is in `config`, with the
    /// service's settings and the server's counters.
    pub fn passive_targets(
        &self,
        config: &GatewayConfig,
    ) -> Vec<(TargetKey, PassiveConfig, Arc<crate::model::DestCounters>)> {
        let mut out = Vec::new();
        for svc in config.services.services() {
            let service = virtual_service(&svc.key());
            let Some(passive) = self.passive.get(&service) else { continue };
            for d in svc.dests() {
                out.push((key(&service, d.addr(), d.port()), *passive, Arc::clone(d.counters())));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{ControlState, NoDataplane, NoWorkers};
    use crate::health::Transition;
    use gwapi::api::{Forwarding, Reply, Request, ServerConfig, ServiceConfig, ServiceInfo};
    use gwapi::health::{HealthCheckConfig, HealthState, PassiveConfig};

    fn vs() -> VirtualService {
        VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 }
    }

    fn server(last: u8, weight: u32) -> ServerConfig {
        ServerConfig {
            addr: IpAddr::from([192, 168, 1, last]),
            port: 80,
            forwarding: Forwarding::FullNat,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    fn tk(last: u8) -> TargetKey {
        TargetKey { service: vs(), addr: IpAddr::from([192, 168, 1, last]), port: 80 }
    }

    fn apply(state: &mut ControlState, changes: Vec<Change>) -> Result<(), ApiError> {
        state.handle(Request::Apply { changes }).map(drop)
    }

    fn tcp_check(on_failure: OnFailure) -> HealthCheckConfig {
        let mut c = HealthCheckConfig::new(CheckKind::Tcp);
        c.on_failure = on_failure;
        c
    }

    /// A service with servers .10 (weight 3) and .11 (weight 1) and a tcp check of the service.
    fn state(on_failure: OnFailure) -> ControlState {
        let mut s = ControlState::new(GatewayConfig::empty(), Box::new(NoWorkers), Box::new(NoDataplane::default()));
        let service = ServiceConfig {
            service: vs(),
            scheduler: "wrr".into(),
            persistence: None,
            one_packet: false,
            synproxy: false,
            proxy_protocol: None,
        };
        apply(
            &mut s,
            vec![
                Change::AddService { service },
                Change::AddServer { service: vs(), server: server(10, 3) },
                Change::AddServer { service: vs(), server: server(11, 1) },
                Change::SetHealthCheck { service: vs(), server: None, check: tcp_check(on_failure) },
            ],
        )
        .unwrap();
        s
    }

    fn listed(s: &mut ControlState) -> ServiceInfo {
        match s.handle(Request::ListServices { service: Some(vs()) }).unwrap() {
            Reply::Services(t) => t.services[0].clone(),
            other => panic!("{other:?}"),
        }
    }

    /// (configured weight, weight shown by -L) of each listed server.
    fn weights(s: &mut ControlState) -> Vec<(u8, u32, u32)> {
        listed(s)
            .servers
            .iter()
            .map(|d| {
                let IpAddr::V4(a) = d.config.addr else { unreachable!() };
                (a.octets()[3], d.config.weight, d.checked_weight.unwrap_or(d.config.weight))
            })
            .collect()
    }

    /// The weight the workers schedule `last` with; `None` if not in the snapshot.
    fn in_force(s: &ControlState, last: u8) -> Option<u32> {
        let snap = &s.config().services;
        let svc = snap.service(snap.service_id(&service_key(&vs())).unwrap());
        svc.dest_index(IpAddr::from([192, 168, 1, last]), 80).map(|i| svc.dests()[i].weight())
    }

    fn health(s: &mut ControlState, last: u8, health: Health) {
        s.set_server_health(&Transition { key: tk(last), health, reason: "test".into() }).unwrap();
    }

    #[test]
    fn a_service_check_covers_every_server_and_the_checker_is_told() {
        let s = state(OnFailure::Inhibit);
        let checker = s.checker();
        let engine = checker.engine();
        let keys: Vec<(TargetKey, bool)> = engine.statuses().map(|st| (st.key, st.inherited)).collect();
        assert_eq!(keys, vec![(tk(10), true), (tk(11), true)]);
    }

    #[test]
    fn inhibited_while_down_restored_on_recovery() {
        let mut s = state(OnFailure::Inhibit);
        let before = s.config().generation();
        health(&mut s, 10, Health::Down);
        assert!(s.config().generation() > before, "published as a new configuration");
        assert_eq!(in_force(&s, 10), Some(0));
        assert_eq!(weights(&mut s), vec![(10, 3, 0), (11, 1, 1)], "-L shows 0, -S the configured 3");
        health(&mut s, 10, Health::Down);
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), Some(3));
        assert_eq!(weights(&mut s), vec![(10, 3, 3), (11, 1, 1)]);
        assert_eq!(listed(&mut s).servers[0].checked_weight, None);
    }

    #[test]
    fn a_manual_weight_while_down_is_the_one_it_comes_back_with() {
        let mut s = state(OnFailure::Inhibit);
        health(&mut s, 10, Health::Down);
        apply(&mut s, vec![Change::EditServer { service: vs(), server: server(10, 7) }]).unwrap();
        assert_eq!(in_force(&s, 10), Some(0), "the checker's 0 stays in force");
        assert_eq!(weights(&mut s), vec![(10, 7, 0), (11, 1, 1)]);
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), Some(7));
        // A weight out of range is refused for a held server too.
        health(&mut s, 10, Health::Down);
        let e = apply(&mut s, vec![Change::EditServer { service: vs(), server: server(10, 70000) }]).unwrap_err();
        assert_eq!(e.message, "weight 70000 out of range 0..65535");
    }

    #[test]
    fn removed_while_down_and_back_with_its_configuration() {
        let mut s = state(OnFailure::Remove);
        health(&mut s, 10, Health::Down);
        assert_eq!(in_force(&s, 10), None);
        assert_eq!(weights(&mut s), vec![(11, 1, 1)]);
        let listing = match s.handle(Request::ListHealth).unwrap() {
            Reply::Health { servers } => servers,
            other => panic!("{other:?}"),
        };
        assert_eq!((listing[0].state, listing[0].weight, listing[0].configured_weight), (HealthState::Up, None, 3));
        // Still configured: -a is refused, -e changes what comes back.
        let e = apply(&mut s, vec![Change::AddServer { service: vs(), server: server(10, 1) }]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::DestExists);
        apply(&mut s, vec![Change::EditServer { service: vs(), server: server(10, 4) }]).unwrap();
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), Some(4));
        // -d of a removed server forgets it.
        health(&mut s, 10, Health::Down);
        apply(&mut s, vec![Change::DeleteServer { service: vs(), addr: tk(10).addr, port: 80 }]).unwrap();
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), None);
        assert_eq!(s.checker().engine().statuses().count(), 1);
    }

    #[test]
    fn a_down_server_follows_its_check_s_new_on_failure() {
        let mut s = state(OnFailure::Inhibit);
        health(&mut s, 10, Health::Down);
        let checker = s.checker();
        // The engine knows it is down too (it is what tells the control state).
        let down = |s: &mut ControlState, on_failure| {
            apply(s, vec![Change::SetHealthCheck { service: vs(), server: None, check: tcp_check(on_failure) }])
        };
        {
            // Two failures (the default retry 1) of its probes, at a time they are due.
            let mut engine = checker.engine();
            for round in 1..=2u64 {
                let now = std::time::Duration::from_secs(3600 * round);
                for job in engine.due(now, usize::MAX).into_iter().filter(|j| j.key == tk(10)) {
                    engine.complete(&job.key, job.ticket, crate::health::Outcome::Down("refused".into()), now);
                }
            }
            assert_eq!(engine.health(&tk(10)), Some(Health::Down));
        }
        down(&mut s, OnFailure::Remove).unwrap();
        assert_eq!(in_force(&s, 10), None, "removed now");
        down(&mut s, OnFailure::Inhibit).unwrap();
        assert_eq!(in_force(&s, 10), Some(0), "inhibited again");
        // Back in the service after the other, as a removed server comes back.
        assert_eq!(weights(&mut s), vec![(11, 1, 1), (10, 3, 0)]);
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), Some(3));
    }

    #[test]
    fn a_dynamic_weight_is_in_force_while_the_configured_one_is_kept() {
        let mut s = state(OnFailure::Inhibit);
        health(&mut s, 11, Health::Up { weight: Some(1) });
        health(&mut s, 10, Health::Up { weight: Some(1) });
        assert_eq!(weights(&mut s), vec![(10, 3, 1), (11, 1, 1)]);
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), Some(3));
    }

    #[test]
    fn deleting_the_check_gives_the_configured_weight_back() {
        let mut s = state(OnFailure::Remove);
        health(&mut s, 10, Health::Down);
        apply(&mut s, vec![Change::DeleteHealthCheck { service: vs(), server: None }]).unwrap();
        assert_eq!(in_force(&s, 10), Some(3));
        assert_eq!(s.checker().engine().statuses().count(), 0);
        // A server's own check replaces the service's for it alone.
        let http = HealthCheckConfig::new(CheckKind::Http {
            path: "/".into(),
            host: None,
            status: 200,
            digest: None,
            tls: false,
        });
        apply(
            &mut s,
            vec![
                Change::SetHealthCheck { service: vs(), server: None, check: tcp_check(OnFailure::Inhibit) },
                Change::SetHealthCheck { service: vs(), server: Some((tk(11).addr, 80)), check: http },
            ],
        )
        .unwrap();
        let kinds: Vec<(&str, bool)> = s
            .checker()
            .engine()
            .statuses()
            .map(|st| (st.check.kind().name(), st.inherited))
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        assert_eq!(kinds, vec![("tcp", true), ("http", false)]);
        // Deleting the service takes its checks along.
        apply(&mut s, vec![Change::DeleteService { service: vs() }]).unwrap();
        assert_eq!(s.checker().engine().statuses().count(), 0);
    }

    /// Passive detection's inhibition of .10 (`down`), as the policy's transition makes it.
    fn passive(s: &mut ControlState, down: bool) {
        let t = crate::health::passive::PassiveTransition { key: tk(10), down, reason: "test".into() };
        s.set_passive(&t).unwrap();
    }

    #[test]
    fn passive_and_active_the_stricter_wins() {
        let mut s = state(OnFailure::Remove);
        apply(&mut s, vec![Change::SetPassive { service: vs(), passive: PassiveConfig::default() }]).unwrap();
        // Passive down of a server its check holds up: inhibited, not removed.
        passive(&mut s, true);
        assert_eq!(in_force(&s, 10), Some(0));
        assert_eq!(weights(&mut s), vec![(10, 3, 0), (11, 1, 1)]);
        // The active check's down holds it as its on_failure says; its up leaves passive's 0.
        health(&mut s, 10, Health::Down);
        assert_eq!(in_force(&s, 10), None, "removed");
        health(&mut s, 10, Health::Up { weight: None });
        assert_eq!(in_force(&s, 10), Some(0), "still passive-down");
        // A manual weight while inhibited is the one it comes back with.
        apply(&mut s, vec![Change::EditServer { service: vs(), server: server(10, 5) }]).unwrap();
        assert_eq!(in_force(&s, 10), Some(0));
        passive(&mut s, false);
        assert_eq!(in_force(&s, 10), Some(5));
        // Passive detection turned off gives an inhibited server its weight back.
        passive(&mut s, true);
        apply(&mut s, vec![Change::DeletePassive { service: vs() }]).unwrap();
        assert_eq!(in_force(&s, 10), Some(5));
        assert!(!s.health_table().is_passive_down(&tk(10)));
        let e = apply(&mut s, vec![Change::DeletePassive { service: vs() }]).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (ErrorKind::EntryNotFound, "no passive detection on service TCP 10.0.0.100:80")
        );
        let bad = PassiveConfig { failures: 0, ..PassiveConfig::default() };
        let e = apply(&mut s, vec![Change::SetPassive { service: vs(), passive: bad }]).unwrap_err();
        assert_eq!(e.message, "passive failures 0 out of range 1..1000");
    }

    #[test]
    fn passive_tick_reads_the_servers_counters_and_publishes() {
        let mut s = state(OnFailure::Inhibit);
        apply(&mut s, vec![Change::DeleteHealthCheck { service: vs(), server: None }]).unwrap();
        let passive = PassiveConfig { failures: 2, backoff_ms: 10, max_backoff_ms: 10 };
        apply(&mut s, vec![Change::SetPassive { service: vs(), passive }]).unwrap();
        let counters = {
            let snap = &s.config().services;
            let svc = snap.service(snap.service_id(&service_key(&vs())).unwrap());
            Arc::clone(svc.dests()[svc.dest_index(tk(10).addr, 80).unwrap()].counters())
        };
        counters.passive().fail(crate::model::counters::ConnFailure::Refused);
        s.passive_tick().unwrap();
        assert_eq!(in_force(&s, 10), Some(3), "one failure of two");
        counters.passive().fail(crate::model::counters::ConnFailure::TimedOut);
        let generation = s.config().generation();
        s.passive_tick().unwrap();
        assert_eq!(in_force(&s, 10), Some(0));
        assert!(s.config().generation() > generation, "published");
        let listing = match s.handle(Request::ListHealth).unwrap() {
            Reply::Health { servers } => servers,
            other => panic!("{other:?}"),
        };
        let p = listing[0].passive.as_ref().unwrap();
        assert_eq!((listing[0].state, p.counts.refused, p.counts.timed_out), (HealthState::PassiveDown, 1, 1));
        assert_eq!(p.reason, "2 new connections failed in a row (1 refused, 1 timed out); inhibited for 0.01s");
        // The 10 ms back-off ends: on trial with its weight.
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.passive_tick().unwrap();
        assert_eq!(in_force(&s, 10), Some(3));
        // A success on the trial: serving.
        counters.passive().succeed();
        s.passive_tick().unwrap();
        assert_eq!(in_force(&s, 10), Some(3));
        match s.handle(Request::ListHealth).unwrap() {
            Reply::Health { servers } => {
                assert_eq!(servers[0].passive.as_ref().unwrap().state, gwapi::health::PassiveState::Serving)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passive_alone_inhibits_and_gives_back_with_no_check() {
        let mut s = state(OnFailure::Inhibit);
        apply(&mut s, vec![Change::DeleteHealthCheck { service: vs(), server: None }]).unwrap();
        apply(&mut s, vec![Change::SetPassive { service: vs(), passive: PassiveConfig::default() }]).unwrap();
        passive(&mut s, true);
        assert_eq!(in_force(&s, 10), Some(0));
        let listing = match s.handle(Request::ListHealth).unwrap() {
            Reply::Health { servers } => servers,
            other => panic!("{other:?}"),
        };
        assert_eq!(listing.len(), 2, "both servers watched");
        assert_eq!((listing[0].state, listing[0].check.is_none()), (HealthState::PassiveDown, true));
        passive(&mut s, false);
        assert_eq!(in_force(&s, 10), Some(3));
        // Deleting the server while inhibited forgets it.
        passive(&mut s, true);
        apply(&mut s, vec![Change::DeleteServer { service: vs(), addr: tk(10).addr, port: 80 }]).unwrap();
        assert!(!s.health_table().is_passive_down(&tk(10)));
    }

    #[test]
    fn bad_checks_are_refused_and_change_nothing() {
        let mut s = state(OnFailure::Inhibit);
        let generation = s.config().generation();
        let other = VirtualService::Tcp { addr: "10.0.0.200".parse().unwrap(), port: 80 };
        let misc = HealthCheckConfig::new(CheckKind::Misc { script: "/nonexistent/probe".into(), dynamic: false });
        for (change, kind, message) in [
            (
                Change::SetHealthCheck { service: other, server: None, check: tcp_check(OnFailure::Inhibit) },
                ErrorKind::ServiceNotFound,
                "service TCP 10.0.0.200:80 not defined",
            ),
            (
                Change::SetHealthCheck {
                    service: vs(),
                    server: Some((IpAddr::from([192, 168, 1, 99]), 80)),
                    check: tcp_check(OnFailure::Inhibit),
                },
                ErrorKind::DestNotFound,
                "",
            ),
            (
                Change::SetHealthCheck { service: vs(), server: None, check: misc },
                ErrorKind::InvalidArgument,
                "misc script /nonexistent/probe: No such file or directory (os error 2)",
            ),
            (
                Change::DeleteHealthCheck { service: vs(), server: Some((tk(10).addr, 80)) },
                ErrorKind::EntryNotFound,
                "no health check of server 192.168.1.10:80 of service TCP 10.0.0.100:80",
            ),
        ] {
            // After a good change in the same request: nothing of it is applied either.
            let e =
                apply(&mut s, vec![Change::EditServer { service: vs(), server: server(11, 9) }, change]).unwrap_err();
            assert_eq!((e.kind, e.change_index), (kind, Some(1)), "{e:?}");
            if !message.is_empty() {
                assert_eq!(e.message, message);
            }
            assert_eq!(s.config().generation(), generation);
            assert_eq!(in_force(&s, 11), Some(1));
        }
    }
}
