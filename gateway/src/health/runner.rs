//! The checker's thread: starts the probes the [`Engine`] says are due (the prober runs them:
//! gatewayd's all on its one thread, a blocking prober each on a thread of its own; see
//! [`Prober::start`]), takes their outcomes back over a channel and hands every transition
//! to the control plane.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engine::{Engine, Outcome, ProbeJob, Transition};
use super::probe::{Completion, Prober};

/// The longest the thread sleeps without looking at the engine: the bound on how late a
/// check configured meanwhile starts, and on how long a stop takes.
const MAX_IDLE: Duration = Duration::from_millis(100);

/// Probes in flight at most (for a blocking prober, each is a thread for up to its timeout).
/// A check configured for more servers than this at once spreads over its delay loop
/// anyway; past it, due probes wait their turn rather than starting without bound.
pub const MAX_PROBES_IN_FLIGHT: usize = 512;

/// The engine and its clock, shared by the checker's thread and the control plane (which
/// tells it the servers to check and lists their state).
#[derive(Debug)]
pub struct Checker {
    engine: Mutex<Engine>,
    epoch: Instant,
}

impl Checker {
    pub fn new() -> Arc<Checker> {
        Arc::new(Checker { engine: Mutex::new(Engine::new()), epoch: Instant::now() })
    }

    /// The engine's clock: time since the checker was made.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The engine, locked. Never held while taking the control state's lock (the control
    /// state takes this one under its own).
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs the checker on a thread named `gw-health` until `stop`; each transition goes to
    /// `on_transition`, on that thread.
    pub fn spawn(
        self: &Arc<Checker>,
        prober: Arc<dyn Prober>,
        mut on_transition: impl FnMut(Transition) + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<()>> {
        let checker = Arc::clone(self);
        std::thread::Builder::new().name("gw-health".into()).spawn(move || {
            let (done, results) = mpsc::channel::<(ProbeJob, Outcome)>();
            let mut in_flight = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let jobs = checker.engine().due(checker.now(), MAX_PROBES_IN_FLIGHT - in_flight);
                for job in jobs {
                    let done = done.clone();
                    let finished = job.clone();
                    in_flight += 1;
                    Arc::clone(&prober).start(
                        job,
                        Completion::new(move |outcome| {
                            let _ = done.send((finished, outcome));
                        }),
                    );
                }
                let wait = match checker.engine().next_due() {
                    Some(at) => at.saturating_sub(checker.now()).min(MAX_IDLE),
                    None => MAX_IDLE,
                };
                let Ok(first) = results.recv_timeout(wait) else { continue };
                for (job, outcome) in std::iter::once(first).chain(results.try_iter()) {
                    in_flight -= 1;
                    let transition = checker.engine().complete(&job.key, job.ticket, outcome, checker.now());
                    transition.into_iter().for_each(&mut on_transition);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::check::Check;
    use crate::health::engine::{Health, TargetKey};
    use gwapi::api::VirtualService;
    use gwapi::health::{CheckKind, HealthCheckConfig};
    use std::sync::atomic::AtomicUsize;

    /// Down for the first `fails` probes, up after; counts its probes.
    struct Flaky {
        fails: usize,
        probes: AtomicUsize,
    }

    impl Prober for Flaky {
        fn probe(&self, _job: &ProbeJob) -> Outcome {
            let n = self.probes.fetch_add(1, Ordering::SeqCst);
            if n < self.fails {
                Outcome::Down(format!("probe {n} failed"))
            } else {
                Outcome::Up { weight: None }
            }
        }
    }

    #[test]
    fn the_thread_probes_on_time_and_hands_over_each_transition() {
        let checker = Checker::new();
        let mut c = HealthCheckConfig::new(CheckKind::Tcp);
        c.delay_loop_ms = 50;
        c.delay_before_retry_ms = 20;
        c.retry = 1;
        c.rise = 2;
        let key = TargetKey {
            service: VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 },
            addr: "192.168.1.10".parse().unwrap(),
            port: 80,
        };
        checker.engine().sync(vec![(key, Arc::new(Check::new(&c).unwrap()), false)], checker.now());
        let prober = Arc::new(Flaky { fails: 2, probes: AtomicUsize::new(0) });
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = checker
            .spawn(
                Arc::clone(&prober) as Arc<dyn Prober>,
                move |t| tx.send((t, Instant::now())).unwrap(),
                Arc::clone(&stop),
            )
            .unwrap();
        let start = Instant::now();
        let (down, _) = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        let (up, at) = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        assert_eq!((down.health, down.reason.as_str()), (Health::Down, "probe 1 failed"));
        assert_eq!(up.health, Health::Up { weight: None });
        // Two failures (a retry), then two successes a delay loop apart.
        assert_eq!(prober.probes.load(Ordering::SeqCst), 4);
        assert!(at - start >= Duration::from_millis(50 + 20 + 50), "{:?}", at - start);
    }
}
