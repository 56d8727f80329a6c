//! Whether every worker lcore still polls: a dead or stuck worker must not
//! leave a half-working daemon that answers `gwctl` and forwards nothing.
//!
//! Each worker bumps its [`Liveness`] heartbeat once per poll iteration (a
//! relaxed atomic store: no lock, no fence, nothing per packet). The main
//! lcore runs a [`Watchdog`] a few times a second: a worker whose loop ended
//! (a panic, caught on its lcore by `Eal::launch`, or a return) is
//! [`Health::Stopped`]; one whose heartbeat has not moved for the stall
//! time is [`Health::Stalled`] (a loop stuck in a spin, a deadlock, a
//! blocking call), until it moves again. The daemon logs each verdict,
//! serves the health in `gwctl stats`, and by default exits non-zero so a
//! supervisor (systemd, keepalived) fails over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A worker's health as the main lcore last judged it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Polling,
    /// Its heartbeat has not moved for this long.
    Stalled(Duration),
    /// Its loop ended while the gateway runs: why (the panic message).
    Stopped(String),
}

impl Health {
    /// How `gwctl stats` shows an unhealthy worker; `None` while it polls.
    pub fn describe(&self) -> Option<String> {
        match self {
            Health::Polling => None,
            Health::Stalled(d) => Some(format!("stalled: no poll for {} s", d.as_secs())),
            Health::Stopped(why) => Some(format!("stopped: {why}")),
        }
    }
}

/// What one worker shares with the main lcore and the control thread.
#[derive(Debug, Default)]
pub struct Liveness {
    beats: AtomicU64,
    /// Written by the main lcore, read by the control thread; never by the worker.
    health: Mutex<Health>,
}

impl Liveness {
    /// Called by the worker once per poll iteration.
    #[inline]
    pub fn beat(&self) {
        // Only this worker writes: a load and a store, no locked read-modify-write.
        self.beats.store(self.beats.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }

    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::Relaxed)
    }

    pub fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(PoisonError::into_inner) = health;
    }
}

/// A change in a worker's health, for the daemon to log and act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Stalled { worker: usize, for_: Duration },
    Resumed { worker: usize },
    Stopped { worker: usize, why: String },
}

/// The main lcore's watch over the workers' heartbeats.
pub struct Watchdog {
    workers: Vec<Arc<Liveness>>,
    stall_after: Duration,
    /// Per worker: the heartbeat last seen and when it last moved.
    seen: Vec<(u64, Instant)>,
}

impl Watchdog {
    /// Watches `workers` from `now`; a heartbeat still for `stall_after` is a stall.
    pub fn new(workers: Vec<Arc<Liveness>>, stall_after: Duration, now: Instant) -> Watchdog {
        let seen = workers.iter().map(|l| (l.beats(), now)).collect();
        Watchdog { workers, stall_after, seen }
    }

    /// Judges every worker at `now`. `stopped(w)` tells whether worker `w`'s
    /// loop has ended, and why; it is asked once per check of a worker not
    /// yet known to be stopped. Returns the changes since the last check.
    pub fn check(&mut self, now: Instant, mut stopped: impl FnMut(usize) -> Option<String>) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        for (w, liveness) in self.workers.iter().enumerate() {
            let health = liveness.health();
            if matches!(health, Health::Stopped(_)) {
                continue;
            }
            if let Some(why) = stopped(w) {
                liveness.set_health(Health::Stopped(why.clone()));
                verdicts.push(Verdict::Stopped { worker: w, why });
                continue;
            }
            let beats = liveness.beats();
            let (last, moved) = &mut self.seen[w];
            if beats != *last {
                (*last, *moved) = (beats, now);
                if health != Health::Polling {
                    liveness.set_health(Health::Polling);
                    verdicts.push(Verdict::Resumed { worker: w });
                }
                continue;
            }
            let still = now.saturating_duration_since(*moved);
            if still >= self.stall_after {
                liveness.set_health(Health::Stalled(still));
                if health == Health::Polling {
                    verdicts.push(Verdict::Stalled { worker: w, for_: still });
                }
            }
        }
        verdicts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> (Vec<Arc<Liveness>>, Watchdog, Instant) {
        let workers: Vec<Arc<Liveness>> = (0..2).map(|_| Arc::default()).collect();
        let t0 = Instant::now();
        let dog = Watchdog::new(workers.clone(), Duration::from_secs(2), t0);
        (workers, dog, t0)
    }

    #[test]
    fn a_worker_that_keeps_beating_is_never_stalled() {
        let (workers, mut dog, t0) = two();
        for s in 1..10 {
            workers.iter().for_each(|l| l.beat());
            assert_eq!(dog.check(t0 + Duration::from_secs(s), |_| None), vec![]);
        }
        assert!(workers.iter().all(|l| l.health() == Health::Polling && l.health().describe().is_none()));
    }

    #[test]
    fn a_still_heartbeat_is_a_stall_once_then_a_resumption() {
        let (workers, mut dog, t0) = two();
        let at = |s: u64| t0 + Duration::from_millis(s);
        workers[0].beat();
        workers[1].beat();
        assert_eq!(dog.check(at(100), |_| None), vec![]);
        // Worker 1 stops beating at 100 ms; worker 0 goes on.
        for ms in [500, 1000, 1500, 2000] {
            workers[0].beat();
            assert_eq!(dog.check(at(ms), |_| None), vec![], "{ms} ms: not yet 2 s still");
        }
        workers[0].beat();
        assert_eq!(dog.check(at(2100), |_| None), vec![Verdict::Stalled { worker: 1, for_: Duration::from_secs(2) }]);
        assert_eq!(workers[1].health().describe().as_deref(), Some("stalled: no poll for 2 s"));
        // Reported once; the health keeps counting.
        workers[0].beat();
        assert_eq!(dog.check(at(5100), |_| None), vec![]);
        assert_eq!(workers[1].health(), Health::Stalled(Duration::from_secs(5)));
        workers[0].beat();
        workers[1].beat();
        assert_eq!(dog.check(at(5200), |_| None), vec![Verdict::Resumed { worker: 1 }]);
        assert_eq!(workers[1].health(), Health::Polling);
    }

    #[test]
    fn a_stopped_worker_is_reported_once_and_stays_stopped() {
        let (workers, mut dog, t0) = two();
        let mut asked = Vec::new();
        let verdicts = dog.check(t0 + Duration::from_millis(100), |w| {
            asked.push(w);
            (w == 0).then(|| "panicked: boom".to_string())
        });
        assert_eq!(verdicts, vec![Verdict::Stopped { worker: 0, why: "panicked: boom".into() }]);
        assert_eq!(workers[0].health().describe().as_deref(), Some("stopped: panicked: boom"));
        // A stopped worker's still heartbeat is not also a stall, and it is not asked again.
        workers[1].beat();
        asked.clear();
        assert_eq!(
            dog.check(t0 + Duration::from_secs(10), |w| {
                asked.push(w);
                None
            }),
            vec![]
        );
        assert_eq!(asked, vec![1]);
        assert_eq!(workers[0].health(), Health::Stopped("panicked: boom".into()));
    }
}
