//! The checker's state machine, keepalived's semantics, on a clock it is given (so tests run
//! it on a fake one): which server is due for a probe, and what a probe's outcome makes of
//! the server.
//!
//! Per server, as keepalived's checkers do:
//!
//! - a server starts **up** (keepalived adds its real servers to IPVS before the first check)
//!   and is probed every `delay_loop`; the first probes are spread over one `delay_loop` by a
//!   hash of the server, so thousands of servers never make a burst;
//! - a failure of an up server is retried after `delay_before_retry`, `retry` times; the
//!   failure after those makes it **down** (so `retry + 1` failures in a row);
//! - a down server is probed every `delay_loop`; `rise` successes in a row make it up again,
//!   a failure starts the count over;
//! - a MISC check's dynamic weight (`misc_dynamic`) is part of the server's health: a new
//!   one is a transition of its own.
//!
//! The engine decides; it neither probes (the runner hands [`ProbeJob`]s to a
//! [`super::probe::Prober`]) nor changes weights (the control state does, from a
//! [`Transition`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use gwapi::api::VirtualService;

use super::check::Check;

/// One checked server of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetKey {
    pub service: VirtualService,
    pub addr: IpAddr,
    pub port: u16,
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Up; with a weight when a dynamic MISC check gave one.
    Up { weight: Option<u32> },
    /// Down, and why ("connection refused", "status 404", "timed out after 2 s").
    Down(String),
}

/// What the checker holds a server at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up { weight: Option<u32> },
    Down,
}

/// A server whose health changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub key: TargetKey,
    pub health: Health,
    /// The last probe's finding.
    pub reason: String,
}

/// A probe to run.
#[derive(Debug, Clone)]
pub struct ProbeJob {
    pub key: TargetKey,
    pub check: Arc<Check>,
    /// Names this probe: a result for an older ticket (the check was replaced meanwhile) is
    /// dropped.
    pub ticket: u64,
}

/// A server's checker state, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    pub key: TargetKey,
    pub check: Arc<Check>,
    pub inherited: bool,
    pub health: Health,
    /// `Some(true)` after a success, `Some(false)` after a failure, `None` before the first.
    pub last_ok: Option<bool>,
    pub reason: String,
    pub last_change: Option<Duration>,
    pub checks: u64,
    pub failures: u64,
    pub transitions: u64,
}

#[derive(Debug)]
struct Target {
    status: TargetStatus,
    /// Failures in a row of an up server (retries used), successes in a row of a down one.
    fails: u32,
    rises: u32,
    /// When the next probe is due; `None` while one is in flight.
    next: Option<Duration>,
    ticket: u64,
}

/// Every checked server's state.
#[derive(Debug, Default)]
pub struct Engine {
    targets: BTreeMap<TargetKey, Target>,
    tickets: u64,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Makes the checked servers `wanted` (key, check, inherited from the service): new ones
    /// start up, with their first probe spread over their delay loop; the ones gone are
    /// forgotten; one whose check changed keeps its state, with its counts started over and
    /// a probe of the new check soon.
    pub fn sync(&mut self, wanted: Vec<(TargetKey, Arc<Check>, bool)>, now: Duration) {
        let mut next: BTreeMap<TargetKey, Target> = BTreeMap::new();
        for (key, check, inherited) in wanted {
            let target = match self.targets.remove(&key) {
                Some(mut t) if t.status.check == check => {
                    t.status.inherited = inherited;
                    t
                }
                Some(mut t) => {
                    self.tickets += 1;
                    t.ticket = self.tickets;
                    t.next = Some(now + spread(&key, check.delay_loop));
                    t.fails = 0;
                    t.rises = 0;
                    t.status.check = check;
                    t.status.inherited = inherited;
                    t
                }
                None => {
                    self.tickets += 1;
                    Target {
                        next: Some(now + spread(&key, check.delay_loop)),
                        status: TargetStatus {
                            key,
                            check,
                            inherited,
                            health: Health::Up { weight: None },
                            last_ok: None,
                            reason: String::new(),
                            last_change: None,
                            checks: 0,
                            failures: 0,
                            transitions: 0,
                        },
                        fails: 0,
                        rises: 0,
                        ticket: self.tickets,
                    }
                }
            };
            next.insert(key, target);
        }
        self.targets = next;
    }

    /// The probes due at `now`, at most `max` of them (the rest stay due); each server has
    /// at most one in flight.
    pub fn due(&mut self, now: Duration, max: usize) -> Vec<ProbeJob> {
        let mut jobs = Vec::new();
        for (key, t) in &mut self.targets {
            if jobs.len() >= max {
                break;
            }
            if t.next.is_some_and(|at| at <= now) {
                t.next = None;
                jobs.push(ProbeJob { key: *key, check: Arc::clone(&t.status.check), ticket: t.ticket });
            }
        }
        jobs
    }

    /// When the next probe is due, if any is waiting.
    pub fn next_due(&self) -> Option<Duration> {
        self.targets.values().filter_map(|t| t.next).min()
    }

    /// Takes the outcome of the probe `ticket` of `key`, finished at `now`; returns the
    /// server's transition if its health changed.
    pub fn complete(&mut self, key: &TargetKey, ticket: u64, outcome: Outcome, now: Duration) -> Option<Transition> {
        let t = self.targets.get_mut(key)?;
        if t.ticket != ticket || t.next.is_some() {
            return None;
        }
        let check = Arc::clone(&t.status.check);
        let s = &mut t.status;
        s.checks += 1;
        let before = s.health;
        match outcome {
            Outcome::Up { weight } => {
                s.last_ok = Some(true);
                s.reason = match weight {
                    Some(w) => format!("up with weight {w}"),
                    None => "ok".into(),
                };
                t.fails = 0;
                match s.health {
                    Health::Up { .. } => s.health = Health::Up { weight },
                    Health::Down => {
                        t.rises += 1;
                        if t.rises >= check.rise() {
                            t.rises = 0;
                            s.health = Health::Up { weight };
                        }
                    }
                }
                t.next = Some(now + check.delay_loop);
            }
            Outcome::Down(reason) => {
                s.last_ok = Some(false);
                s.failures += 1;
                s.reason = reason;
                t.rises = 0;
                match s.health {
                    Health::Up { .. } if t.fails < check.retry() => {
                        t.fails += 1;
                        t.next = Some(now + check.delay_before_retry);
                    }
                    Health::Up { .. } => {
                        t.fails = 0;
                        s.health = Health::Down;
                        t.next = Some(now + check.delay_loop);
                    }
                    Health::Down => t.next = Some(now + check.delay_loop),
                }
            }
        }
        if s.health == before {
            return None;
        }
        s.transitions += 1;
        s.last_change = Some(now);
        Some(Transition { key: *key, health: s.health, reason: s.reason.clone() })
    }

    /// Takes back `transition`, which the control plane could not apply (its configuration
    /// change was not published): the server is held at what it was before, so the probes
    /// that find it so again report the transition again (after `retry` failures or `rise`
    /// successes), instead of the checker and the workers disagreeing until it changes
    /// back. A dynamic weight that was not applied is taken back to the plain up.
    pub fn retract(&mut self, transition: &Transition) {
        let Some(t) = self.targets.get_mut(&transition.key) else { return };
        if t.status.health != transition.health {
            return;
        }
        t.status.health = match transition.health {
            Health::Down => Health::Up { weight: None },
            Health::Up { weight: Some(_) } => Health::Up { weight: None },
            Health::Up { weight: None } => Health::Down,
        };
        t.status.transitions = t.status.transitions.saturating_sub(1);
        (t.fails, t.rises) = (0, 0);
    }

    /// The health the checker holds `key` at.
    pub fn health(&self, key: &TargetKey) -> Option<Health> {
        self.targets.get(key).map(|t| t.status.health)
    }

    /// Every checked server's state, in key order.
    pub fn statuses(&self) -> impl Iterator<Item = &TargetStatus> {
        self.targets.values().map(|t| &t.status)
    }
}

/// Where in its delay loop a server's first probe falls: a fixed fraction per server, so
/// the probes of many servers spread evenly and a server keeps its slot across restarts.
fn spread(key: &TargetKey, delay_loop: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    delay_loop.mul_f64((h.finish() % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gwapi::health::{CheckKind, HealthCheckConfig};

    fn key(last: u8) -> TargetKey {
        TargetKey {
            service: VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 },
            addr: IpAddr::from([192, 168, 1, last]),
            port: 80,
        }
    }

    /// delay_loop 10 s, delay_before_retry 1 s, timeout 2 s.
    fn check(retry: u32, rise: u32) -> Arc<Check> {
        let mut c = HealthCheckConfig::new(CheckKind::Tcp);
        c.delay_loop_ms = 10_000;
        c.delay_before_retry_ms = 1_000;
        c.connect_timeout_ms = 2_000;
        c.retry = retry;
        c.rise = rise;
        Arc::new(Check::new(&c).unwrap())
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// A fake prober: runs whatever is due at `now` with `outcome`; returns the transitions
    /// and how many probes ran.
    fn run(engine: &mut Engine, now: Duration, outcome: &Outcome) -> (Vec<Transition>, usize) {
        let jobs = engine.due(now, usize::MAX);
        let n = jobs.len();
        let t = jobs.into_iter().filter_map(|j| engine.complete(&j.key, j.ticket, outcome.clone(), now)).collect();
        (t, n)
    }

    fn down(why: &str) -> Outcome {
        Outcome::Down(why.into())
    }

    const UP: Outcome = Outcome::Up { weight: None };

    #[test]
    fn first_probes_are_spread_over_the_delay_loop() {
        let mut e = Engine::new();
        let wanted = (1..=200).map(|i| (key(i), check(1, 1), false)).collect();
        e.sync(wanted, Duration::ZERO);
        let per_second: Vec<usize> = (0..10).map(|s| run(&mut e, secs(f64::from(s) + 0.999), &UP).1).collect();
        assert_eq!(per_second.iter().sum::<usize>(), 200, "every server probed within one delay loop");
        assert!(per_second.iter().all(|&n| n < 40), "no burst: {per_second:?}");
    }

    #[test]
    fn a_transition_not_applied_is_reported_again() {
        let mut e = Engine::new();
        let t0 = started(&mut e, check(0, 2));
        let (t, _) = run(&mut e, t0 + secs(10.0), &down("refused"));
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].health, Health::Down);
        e.retract(&t[0]);
        assert_eq!(e.health(&key(1)), Some(Health::Up { weight: None }), "held up, as the workers still have it");
        let (again, _) = run(&mut e, t0 + secs(20.0), &down("refused"));
        assert_eq!(
            again.iter().map(|t| t.health).collect::<Vec<_>>(),
            vec![Health::Down],
            "the next failure reports it again"
        );
        // Coming back: retracted, it takes `rise` successes again.
        let (up, _) = run(&mut e, t0 + secs(30.0), &UP);
        assert!(up.is_empty());
        let (up, _) = run(&mut e, t0 + secs(40.0), &UP);
        assert_eq!(up[0].health, Health::Up { weight: None });
        e.retract(&up[0]);
        assert_eq!(e.health(&key(1)), Some(Health::Down));
        let stale = Transition { key: key(9), health: Health::Down, reason: String::new() };
        e.retract(&stale);
        assert_eq!(e.health(&key(9)), None, "an unknown server is left alone");
    }

    /// Starts one server and runs its first probe (up) at `t0`; returns `t0`.
    fn started(e: &mut Engine, check: Arc<Check>) -> Duration {
        e.sync(vec![(key(1), check, false)], Duration::ZERO);
        let t0 = e.next_due().unwrap();
        assert_eq!(run(e, t0, &UP), (vec![], 1));
        t0
    }

    #[test]
    fn a_server_falls_after_retry_plus_one_failures_spaced_by_delay_before_retry() {
        let mut e = Engine::new();
        let t0 = started(&mut e, check(2, 1));
        // Not yet due a second before the loop comes round.
        assert_eq!(run(&mut e, t0 + secs(9.0), &down("refused")).1, 0);
        assert_eq!(run(&mut e, t0 + secs(10.0), &down("refused")), (vec![], 1));
        assert_eq!(e.next_due(), Some(t0 + secs(11.0)), "retried after delay_before_retry");
        assert_eq!(run(&mut e, t0 + secs(11.0), &down("refused")), (vec![], 1));
        let (t, n) = run(&mut e, t0 + secs(12.0), &down("connection refused"));
        assert_eq!(n, 1);
        assert_eq!(t, vec![Transition { key: key(1), health: Health::Down, reason: "connection refused".into() }]);
        assert_eq!(e.next_due(), Some(t0 + secs(22.0)), "a down server is probed every delay_loop");
    }

    #[test]
    fn a_success_between_failures_starts_the_retries_over() {
        let mut e = Engine::new();
        let t0 = started(&mut e, check(1, 1));
        run(&mut e, t0 + secs(10.0), &down("refused"));
        run(&mut e, t0 + secs(11.0), &UP);
        run(&mut e, t0 + secs(21.0), &down("refused"));
        assert_eq!(e.health(&key(1)), Some(Health::Up { weight: None }), "one failure in a row, one retry left");
        assert_eq!(run(&mut e, t0 + secs(22.0), &down("refused")).0.len(), 1);
        assert_eq!(e.health(&key(1)), Some(Health::Down));
    }

    #[test]
    fn a_down_server_rises_after_rise_successes_in_a_row() {
        let mut e = Engine::new();
        let t0 = started(&mut e, check(0, 3));
        assert_eq!(run(&mut e, t0 + secs(10.0), &down("refused")).0.len(), 1, "retry 0: the first failure");
        assert_eq!(run(&mut e, t0 + secs(20.0), &UP).0, vec![]);
        assert_eq!(run(&mut e, t0 + secs(30.0), &UP).0, vec![]);
        assert_eq!(run(&mut e, t0 + secs(40.0), &down("reset")).0, vec![], "a failure starts the count over");
        assert_eq!(run(&mut e, t0 + secs(50.0), &UP).0, vec![]);
        assert_eq!(run(&mut e, t0 + secs(60.0), &UP).0, vec![]);
        let (t, _) = run(&mut e, t0 + secs(70.0), &UP);
        assert_eq!(t, vec![Transition { key: key(1), health: Health::Up { weight: None }, reason: "ok".into() }]);
        let status = e.statuses().next().unwrap();
        assert_eq!((status.checks, status.failures, status.transitions), (8, 2, 2));
        assert_eq!(status.last_change, Some(t0 + secs(70.0)));
    }

    #[test]
    fn a_dynamic_weight_is_a_transition_of_its_own() {
        let mut e = Engine::new();
        let t0 = started(&mut e, check(0, 1));
        let w = |w| Outcome::Up { weight: Some(w) };
        assert_eq!(run(&mut e, t0 + secs(10.0), &w(1)).0[0].health, Health::Up { weight: Some(1) });
        assert_eq!(run(&mut e, t0 + secs(20.0), &w(1)).0, vec![], "the same weight again");
        assert_eq!(run(&mut e, t0 + secs(30.0), &UP).0[0].health, Health::Up { weight: None });
    }

    #[test]
    fn a_replaced_check_drops_the_old_probe_and_keeps_the_state() {
        let mut e = Engine::new();
        let t0 = started(&mut e, check(0, 1));
        run(&mut e, t0 + secs(10.0), &down("refused"));
        let job = e.due(t0 + secs(20.0), usize::MAX).pop().unwrap();
        e.sync(vec![(key(1), check(0, 2), true)], t0 + secs(20.5));
        assert_eq!(e.complete(&job.key, job.ticket, UP, t0 + secs(21.0)), None, "a stale ticket");
        assert_eq!(e.health(&key(1)), Some(Health::Down));
        assert!(e.next_due().unwrap() <= t0 + secs(30.5), "the new check runs within its delay loop");
        e.sync(vec![], t0 + secs(22.0));
        assert_eq!(e.statuses().count(), 0);
        assert_eq!(e.next_due(), None);
    }
}
