//! The checker's thread: runs the probes the [`Engine`] says are due, each on a thread of its
//! own (a probe blocks for up to its timeout; others must not wait for it), takes their
//! outcomes back over a channel and hands every transition to the control plane.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::engine::{Engine, Outcome, ProbeJob, Transition};
use super::probe::Prober;

/// The longest the thread sleeps without looking at the engine: the bound on how late a
/// check configured meanwhile starts, and on how long a stop takes.
const MAX_IDLE: Duration = Duration::from_millis(100);

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
            while !stop.load(Ordering::Relaxed) {
                let jobs = checker.engine().due(checker.now());
                for job in jobs {
                    let (prober, done) = (Arc::clone(&prober), done.clone());
                    let key = job.key;
                    let ticket = job.ticket;
                    let spawned = std::thread::Builder::new().name("gw-health-probe".into()).spawn(move || {
                        let outcome = prober.probe(&job);
                        let _ = done.send((job, outcome));
                    });
                    if let Err(e) = spawned {
                        let outcome = Outcome::Down(format!("no thread for the probe: {e}"));
                        let transition = checker.engine().complete(&key, ticket, outcome, checker.now());
                        transition.into_iter().for_each(&mut on_transition);
                    }
                }
                let wait = match checker.engine().next_due() {
                    Some(at) => at.saturating_sub(checker.now()).min(MAX_IDLE),
                    None => MAX_IDLE,
                };
                let Ok(first) = results.recv_timeout(wait) else { continue };
                for (job, outcome) in std::iter::once(first).chain(results.try_iter()) {
                    let transition = checker.engine().complete(&job.key, job.ticket, outcome, checker.now());
                    transition.into_iter().for_each(&mut on_transition);
                }
            }
        })
    }
}
