//! Passive detection of failing real servers (DPVS's `dest-check` idea): the policy that
//! turns the connection table's counts into inhibitions, on a clock it is given (tests run
//! it on a fake one).
//!
//! The datapath only counts: each worker's connection table tells a server's
//! [`PassiveCounters`](crate::model::counters::PassiveCounters) how each new connection's
//! handshake ended (`conn::table`'s module doc says exactly when a connection is a success
//! or a failure), once per connection, with relaxed atomics. This engine runs on the
//! control side (`gw-passive`, a thread beside the control server, never a worker), reads
//! those counts every [`TICK`], and for each server of a service with passive detection on
//! (`gwctl --health -t VIP:PORT --passive`):
//!
//! - **serving**: `failures` new connections failed with no success between (counted from
//!   when detection started watching it, so failures from before it was on are not held
//!   against it) inhibit it: weight 0, for the back-off;
//! - **down** (inhibited): after the back-off it is given its weight back for a **trial**.
//!   The back-off is `backoff << n` for its `n`-th inhibition since its last success, at
//!   most `max_backoff` (5 s, 10 s, 20 s, ... 5 min by default);
//! - **trial**: its next new connections decide: one failure with no success inhibits it
//!   again (for twice as long); a success makes it serving, and the next inhibition starts
//!   from the first back-off again. A success while it is down (a handshake that was under
//!   way when it was inhibited) brings it back at once, serving.
//!
//! With an active check on the same server (`--check`), both judge it and the stricter
//! wins: an active **down** holds it as its check's `on_failure` says, whatever the
//! passive state (the back-off still runs, and its trial waits for the active check's
//! up); a passive down inhibits a server its active check holds up; and an active
//! **success** (a probe that passed after the inhibition) ends a passive inhibition early,
//! as a trial: the probe saw the server answer, the next connections confirm it (the
//! back-off level is kept, so a server that passes probes but fails clients is still
//! backed off more each time). The weights go through the same atomic snapshot publish as
//! the active checker's (`control::health`), and a manual `-e -w` while it is inhibited
//! changes the weight it comes back with.

use std::collections::BTreeMap;
use std::time::Duration;

use gwapi::health::{PassiveConfig, PassiveCounts, PassiveHealth, PassiveState};

use super::engine::TargetKey;
use crate::model::counters::PassiveReading;

/// How often the policy reads the counts: the bound on how late an inhibition comes after
/// the failure that decides it.
pub const TICK: Duration = Duration::from_millis(100);

/// What the policy sees of a server at one tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Observation {
    pub reading: PassiveReading,
    /// Its active check's probes so far and whether the last passed; `None` without one.
    pub active: Option<(u64, Option<bool>)>,
}

/// A server passive detection inhibits (`down`) or gives its weight back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassiveTransition {
    pub key: TargetKey,
    pub down: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Serving,
    Down { until: Duration, probes: Option<u64> },
    Trial,
}

#[derive(Debug, Clone)]
struct Target {
    config: PassiveConfig,
    state: State,
    /// Inhibitions since the last success: the next back-off is `backoff << level`.
    level: u32,
    /// Failures since the last success or the trial, as the policy counts them.
    streak: u32,
    last: PassiveReading,
    /// The reading the streak counts from (its failures' kinds are named in the reason).
    from: PassiveReading,
    inhibitions: u64,
    reason: String,
}

/// Every watched server's passive state.
#[derive(Debug, Default)]
pub struct PassiveEngine {
    targets: BTreeMap<TargetKey, Target>,
}

impl PassiveEngine {
    pub fn new() -> PassiveEngine {
        PassiveEngine::default()
    }

    /// Makes the watched servers `wanted`, each with its service's configuration: a new one
    /// starts serving, its counts from now on; one gone is forgotten; one whose
    /// configuration changed keeps its state.
    pub fn sync(&mut self, wanted: Vec<(TargetKey, PassiveConfig, PassiveReading)>) {
        let mut next = BTreeMap::new();
        for (key, config, reading) in wanted {
            let target = match self.targets.remove(&key) {
                Some(t) => Target { config, ..t },
                None => Target {
                    config,
                    state: State::Serving,
                    level: 0,
                    streak: 0,
                    last: reading,
                    from: reading,
                    inhibitions: 0,
                    reason: String::new(),
                },
            };
            next.insert(key, target);
        }
        self.targets = next;
    }

    /// Whether passive detection inhibits `key` now.
    pub fn is_down(&self, key: &TargetKey) -> bool {
        self.targets.get(key).is_some_and(|t| matches!(t.state, State::Down { .. }))
    }

    /// One look at every watched server at `now`, each as `observe` sees it (`None`: not
    /// there any more, left as it is); returns the servers to inhibit or give back.
    pub fn tick(
        &mut self,
        now: Duration,
        mut observe: impl FnMut(&TargetKey) -> Option<Observation>,
    ) -> Vec<PassiveTransition> {
        let mut out = Vec::new();
        for (key, t) in &mut self.targets {
            let Some(seen) = observe(key) else { continue };
            if let Some(down) = t.step(now, seen) {
                out.push(PassiveTransition { key: *key, down, reason: t.reason.clone() });
            }
        }
        out
    }

    /// Takes back `transition`, which the control plane could not publish: the server is
    /// where it was, and the next tick decides again.
    pub fn retract(&mut self, transition: &PassiveTransition) {
        let Some(t) = self.targets.get_mut(&transition.key) else { return };
        if transition.down {
            t.state = State::Serving;
            t.level = t.level.saturating_sub(1);
            t.inhibitions = t.inhibitions.saturating_sub(1);
        } else {
            t.state = State::Down { until: Duration::ZERO, probes: None };
        }
    }

    /// `key`'s state as `--health -L` shows it, at `now`.
    pub fn status(&self, key: &TargetKey, now: Duration) -> Option<PassiveHealth> {
        let t = self.targets.get(key)?;
        let (state, backoff_left_ms) = match t.state {
            State::Serving => (PassiveState::Serving, None),
            State::Trial => (PassiveState::Trial, None),
            State::Down { until, .. } => {
                (PassiveState::Down, Some(until.saturating_sub(now).as_millis().try_into().unwrap_or(u64::MAX)))
            }
        };
        Some(PassiveHealth {
            config: t.config,
            state,
            backoff_left_ms,
            streak: t.streak,
            counts: counts(&t.last),
            inhibitions: t.inhibitions,
            reason: t.reason.clone(),
        })
    }

    /// The watched servers, in key order.
    pub fn keys(&self) -> impl Iterator<Item = &TargetKey> {
        self.targets.keys()
    }
}

/// The counts a reading holds, as the API carries them.
pub fn counts(r: &PassiveReading) -> PassiveCounts {
    PassiveCounts { refused: r.refused, timed_out: r.timed_out, unanswered: r.unanswered, succeeded: r.succeeded }
}

impl Target {
    /// Takes one observation at `now`; `Some(down)` when the server changes sides.
    fn step(&mut self, now: Duration, seen: Observation) -> Option<bool> {
        let step = self.decide(now, seen);
        if self.streak == 0 {
            self.from = self.last;
        }
        step
    }

    fn decide(&mut self, now: Duration, seen: Observation) -> Option<bool> {
        let r = seen.reading;
        if r.succeeded < self.last.succeeded || r.failed() < self.last.failed() {
            // New counters (the server left the service and came back): they count from
            // here, and this look decides nothing.
            (self.last, self.from, self.streak) = (r, r, 0);
            return None;
        }
        let succeeded = r.succeeded.wrapping_sub(self.last.succeeded) != 0;
        let failed = r.failed().wrapping_sub(self.last.failed());
        let before = self.last;
        self.last = r;
        // Failures after the last success: the workers' own streak when a success came
        // since the last look (it counts from that success), else ours plus the new ones.
        self.streak = if succeeded { r.streak } else { self.streak.saturating_add(failed.min(u32::MAX as u64) as u32) };
        if succeeded {
            self.from = before;
        } else if self.streak == 0 {
            self.from = r;
        }
        match self.state {
            State::Serving | State::Trial => {
                if succeeded {
                    if self.state == State::Trial {
                        self.reason = "a new connection succeeded on its trial".into();
                    }
                    self.state = State::Serving;
                    self.level = 0;
                }
                if self.streak < self.threshold() {
                    return None;
                }
                let backoff = self.backoff();
                self.reason = format!(
                    "{} new connection{} failed in a row ({}); inhibited for {}",
                    self.streak,
                    if self.streak == 1 { "" } else { "s" },
                    how(&self.from, &r),
                    secs(backoff)
                );
                self.state = State::Down { until: now + backoff, probes: seen.active.map(|(n, _)| n) };
                self.level = self.level.saturating_add(1);
                self.inhibitions += 1;
                Some(true)
            }
            State::Down { .. } if succeeded => {
                self.reason = "a new connection succeeded while inhibited".into();
                self.state = State::Serving;
                (self.level, self.streak) = (0, 0);
                Some(false)
            }
            State::Down { probes: Some(at), .. }
                if seen.active.is_some_and(|(n, last_ok)| n > at && last_ok == Some(true)) =>
            {
                self.reason = "its active check passed: on trial".into();
                (self.state, self.streak) = (State::Trial, 0);
                Some(false)
            }
            State::Down { until, .. } if now >= until => {
                self.reason = "back-off over: on trial".into();
                (self.state, self.streak) = (State::Trial, 0);
                Some(false)
            }
            State::Down { .. } => None,
        }
    }

    /// Failures that inhibit: the configured number, or one on a trial.
    fn threshold(&self) -> u32 {
        if self.state == State::Trial {
            1
        } else {
            self.config.failures
        }
    }

    /// The back-off of the next inhibition.
    fn backoff(&self) -> Duration {
        let doubled = self.config.backoff_ms.saturating_mul(1 << self.level.min(40));
        Duration::from_millis(doubled.min(self.config.max_backoff_ms))
    }
}

/// The kinds of the failures between two readings ("2 refused, 1 timed out").
fn how(before: &PassiveReading, after: &PassiveReading) -> String {
    let kinds = [
        (after.refused.wrapping_sub(before.refused), "refused"),
        (after.timed_out.wrapping_sub(before.timed_out), "timed out"),
        (after.unanswered.wrapping_sub(before.unanswered), "unanswered"),
    ];
    let parts: Vec<String> = kinds.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")).collect();
    if parts.is_empty() {
        "counted earlier".into()
    } else {
        parts.join(", ")
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_millis() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gwapi::api::VirtualService;

    fn key() -> TargetKey {
        TargetKey {
            service: VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 },
            addr: "192.168.1.10".parse().unwrap(),
            port: 80,
        }
    }

    /// A server's counts as the table makes them, and the engine watching it.
    struct Fake {
        engine: PassiveEngine,
        r: PassiveReading,
        active: Option<(u64, Option<bool>)>,
        now: Duration,
    }

    impl Fake {
        fn new(config: PassiveConfig) -> Fake {
            let mut engine = PassiveEngine::new();
            // Failures from before detection was on are not held against it.
            let r = PassiveReading { refused: 10, streak: 10, ..Default::default() };
            engine.sync(vec![(key(), config, r)]);
            Fake { engine, r, active: None, now: Duration::ZERO }
        }
        fn fail(&mut self, n: u64) {
            self.r.refused += n;
            self.r.streak += n as u32;
        }
        fn succeed(&mut self) {
            self.r.succeeded += 1;
            self.r.streak = 0;
        }
        /// Advances the clock by `ms` and looks: the transition, if any.
        fn tick(&mut self, ms: u64) -> Option<bool> {
            self.now += Duration::from_millis(ms);
            let seen = Observation { reading: self.r, active: self.active };
            let out = self.engine.tick(self.now, |_| Some(seen));
            assert!(out.len() <= 1);
            out.first().map(|t| t.down)
        }
        fn state(&self) -> PassiveHealth {
            self.engine.status(&key(), self.now).unwrap()
        }
    }

    fn config(failures: u32, backoff_ms: u64, max_backoff_ms: u64) -> PassiveConfig {
        PassiveConfig { failures, backoff_ms, max_backoff_ms }
    }

    #[test]
    fn failures_in_a_row_inhibit_with_a_doubling_back_off() {
        let mut f = Fake::new(config(3, 5000, 15000));
        assert_eq!(f.tick(100), None, "the 10 failures before it watched do not count");
        f.fail(2);
        assert_eq!(f.tick(100), None);
        f.fail(1);
        assert_eq!(f.tick(100), Some(true));
        let s = f.state();
        assert_eq!((s.state, s.backoff_left_ms, s.inhibitions), (PassiveState::Down, Some(5000), 1));
        assert_eq!(s.reason, "3 new connections failed in a row (3 refused); inhibited for 5s");
        assert_eq!(f.tick(4900), None);
        assert_eq!(f.tick(100), Some(false), "5 s later: on trial");
        assert_eq!(f.state().state, PassiveState::Trial);
        // One failure on the trial: twice as long, then 15 s at most.
        for backoff in [10_000, 15_000, 15_000] {
            f.fail(1);
            assert_eq!(f.tick(100), Some(true));
            assert_eq!(f.state().backoff_left_ms, Some(backoff));
            assert_eq!(f.tick(backoff - 100), None);
            assert_eq!(f.tick(100), Some(false));
        }
        // A success on the trial: serving, and the next inhibition is 5 s again, after 3.
        f.succeed();
        assert_eq!(f.tick(100), None);
        assert_eq!(f.state().state, PassiveState::Serving);
        f.fail(1);
        assert_eq!(f.tick(100), None, "serving again: one failure is not enough");
        f.fail(2);
        assert_eq!(f.tick(100), Some(true));
        assert_eq!((f.state().backoff_left_ms, f.state().inhibitions), (Some(5000), 5));
    }

    #[test]
    fn a_success_between_starts_the_count_over() {
        let mut f = Fake::new(config(3, 5000, 300_000));
        f.fail(2);
        f.succeed();
        f.fail(2);
        assert_eq!(f.tick(100), None, "2 after the success");
        assert_eq!(f.state().streak, 2);
        f.fail(1);
        assert_eq!(f.tick(100), Some(true));
        // A handshake under way when it was inhibited succeeds: serving at once.
        f.succeed();
        assert_eq!(f.tick(100), Some(false));
        assert_eq!(f.state().state, PassiveState::Serving);
        assert_eq!(f.state().reason, "a new connection succeeded while inhibited");
    }

    #[test]
    fn an_active_check_s_success_ends_the_inhibition_as_a_trial() {
        let mut f = Fake::new(config(1, 60_000, 300_000));
        f.active = Some((7, Some(true)));
        f.fail(1);
        assert_eq!(f.tick(100), Some(true));
        assert_eq!(f.tick(100), None, "no probe since");
        f.active = Some((8, Some(false)));
        assert_eq!(f.tick(100), None, "a failed probe keeps it down");
        f.active = Some((9, Some(true)));
        assert_eq!(f.tick(100), Some(false));
        assert_eq!(f.state().state, PassiveState::Trial);
        // The level is kept: a failure now backs it off twice as long.
        f.fail(1);
        assert_eq!(f.tick(100), Some(true));
        assert_eq!(f.state().backoff_left_ms, Some(120_000));
    }

    #[test]
    fn new_counters_are_a_new_baseline() {
        let mut f = Fake::new(config(3, 1000, 1000));
        f.fail(2);
        assert_eq!(f.tick(100), None);
        f.r = PassiveReading { refused: 1, streak: 1, ..Default::default() };
        assert_eq!(f.tick(100), None, "fewer than before: counted from here");
        f.fail(2);
        assert_eq!(f.tick(100), None, "2 since the new baseline, and the 2 before it are not added");
        f.fail(1);
        assert_eq!(f.tick(100), Some(true));
    }

    #[test]
    fn a_retracted_transition_is_decided_again() {
        let mut f = Fake::new(config(1, 1000, 1000));
        f.fail(1);
        assert_eq!(f.tick(100), Some(true));
        let t = PassiveTransition { key: key(), down: true, reason: String::new() };
        f.engine.retract(&t);
        assert!(!f.engine.is_down(&key()));
        f.fail(1);
        assert_eq!(f.tick(100), Some(true), "tried again");
        assert_eq!(f.state().inhibitions, 1);
        // Forgotten when its service's detection goes.
        f.engine.sync(vec![]);
        assert!(f.engine.status(&key(), f.now).is_none());
    }
}
