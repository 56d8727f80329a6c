//! The seam between the control plane and the workers: a [`SnapshotSink`] takes each new
//! [`GatewayConfig`] to every worker and returns only when every worker runs it (DESIGN.md
//! invariant 3).
//!
//! [`broadcast`] is an implementation on the workers' [`mailbox`]: the control
//! thread posts the new configuration to one [`Mailbox`] per worker and waits, with a deadline,
//! for each to acknowledge it. A worker calls [`Mailbox::poll`] between bursts with a closure
//! that installs the configuration; the acknowledgement is sent after the closure returns, so
//! "confirmed" means "running". Newest wins: a configuration a worker has not taken yet (an
//! earlier publish timed out on it) is replaced by the next one, so a worker that wakes
//! switches once, to the newest, and a rollback reaches it. Old configurations are freed on
//! the control thread, not on a worker: the broadcaster keeps the last confirmed payload until
//! every worker has confirmed the next, and a replaced one is dropped by the broadcaster.
//! [`broadcast_with`] sends workers a converted payload instead (see `daemon::workers`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::mailbox::{self, IfPending, Inbox, NoAnswer, Requester};
use crate::model::{NetConfig, Snapshot};

/// Everything the control plane publishes at once. Cheap to clone (three `Arc`s).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub services: Arc<Snapshot>,
    pub net: Arc<NetConfig>,
    /// The addresses the kernel interfaces carry, sorted, when any port has one (see
    /// [`crate::model::NetView::held`]); `None`: every address is held. A runtime input
    /// (keepalived moves addresses, `local::held` follows them), not configuration: no
    /// request sets or clears it, so `gwctl -S` never saves it and `-C`/`-R` keep it.
    pub held: Option<Arc<[IpAddr]>>,
}

impl GatewayConfig {
    /// No services, no addresses, default timeouts: what `gatewayd` starts with before it
    /// reads its configuration file.
    pub fn empty() -> GatewayConfig {
        GatewayConfig { services: Snapshot::empty(), net: Arc::default(), held: None }
    }

    /// The generation of the service snapshot; every published configuration has a new one.
    pub fn generation(&self) -> u64 {
        self.services.generation()
    }
}

/// Why a configuration was not confirmed by every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishError {
    pub message: String,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PublishError {}

/// Hands configurations to the workers.
pub trait SnapshotSink: Send {
    /// Makes every worker switch to `config` and returns when each has. On error the control
    /// server keeps its previous configuration and publishes it again, so an implementation
    /// need not undo a partial switch itself.
    fn publish(&mut self, config: &GatewayConfig) -> Result<(), PublishError>;
}

/// A sink for a gateway without workers (`gatewayd` before the dataplane starts, tests of
/// the control plane alone): there is nobody to confirm, so every publish succeeds.
#[derive(Debug, Default)]
pub struct NoWorkers;

impl SnapshotSink for NoWorkers {
    fn publish(&mut self, _config: &GatewayConfig) -> Result<(), PublishError> {
        Ok(())
    }
}

/// What a worker receives: anything cloneable that names its configuration generation.
pub trait Generation: Clone + Send + 'static {
    fn generation(&self) -> u64;
}

impl Generation for GatewayConfig {
    fn generation(&self) -> u64 {
        GatewayConfig::generation(self)
    }
}

/// Turns the published configuration into what workers receive (e.g. resolving interface
/// names to ports once, on the control thread, instead of on every worker).
pub type Convert<P> = Box<dyn FnMut(&GatewayConfig) -> Result<P, PublishError> + Send>;

/// The control side of [`broadcast`].
pub struct Broadcaster<P: Generation> {
    /// Each payload is posted with the number of its publish attempt, which is what workers
    /// acknowledge: generations can repeat after a refused publish, attempts cannot, so a late
    /// acknowledgement of a failed attempt is never taken for a new one's.
    workers: Requester<P, ()>,
    /// Whether a publish failed after posting: workers may then run something other than
    /// `last`, and republishing `last` must reach them.
    diverged: bool,
    convert: Convert<P>,
    /// The last payload every worker confirmed: kept so that the worker never drops the
    /// last reference to a configuration (freeing it is control-thread work).
    last: Option<P>,
}

/// A worker's side of [`broadcast`]: its inbox of configurations and the one it runs.
#[derive(Debug)]
pub struct Mailbox<P: Generation> {
    inbox: Inbox<P, ()>,
    current: P,
}

/// Creates a broadcaster of whole [`GatewayConfig`]s and `workers` mailboxes that start with
/// `initial`. `timeout` bounds how long [`SnapshotSink::publish`] waits for the slowest
/// worker.
pub fn broadcast(
    workers: usize,
    initial: &GatewayConfig,
    timeout: Duration,
) -> (Broadcaster<GatewayConfig>, Vec<Mailbox<GatewayConfig>>) {
    broadcast_with(workers, initial.clone(), timeout, Box::new(|c: &GatewayConfig| Ok(c.clone())))
}

/// Like [`broadcast`], but workers receive `convert(config)`; a conversion error fails the
/// publish before any worker sees anything.
pub fn broadcast_with<P: Generation>(
    workers: usize,
    initial: P,
    timeout: Duration,
    convert: Convert<P>,
) -> (Broadcaster<P>, Vec<Mailbox<P>>) {
    let (requester, inboxes) = mailbox::inboxes(workers, timeout);
    let mailboxes = inboxes.into_iter().map(|inbox| Mailbox { inbox, current: initial.clone() }).collect();
    (Broadcaster { workers: requester, diverged: false, convert, last: Some(initial) }, mailboxes)
}

impl<P: Generation> SnapshotSink for Broadcaster<P> {
    fn publish(&mut self, config: &GatewayConfig) -> Result<(), PublishError> {
        let payload = (self.convert)(config)?;
        let generation = payload.generation();
        // Republishing what every worker confirmed last (the control server's rollback after
        // a refused conversion) has nothing to do.
        if !self.diverged && self.last.as_ref().is_some_and(|l| l.generation() == generation) {
            return Ok(());
        }
        self.diverged = true;
        let round = self.workers.post(&payload, IfPending::Replace);
        // A stopped worker fails the publish for certain: no use waiting for the others.
        if let Some((i, _)) = round.refused().find(|&(_, why)| why == NoAnswer::Stopped) {
            return Err(PublishError { message: format!("worker {i} has stopped") });
        }
        let answers = self.workers.collect(round);
        let late: Vec<usize> = (0..answers.len()).filter(|&i| answers[i] == Err(NoAnswer::Late)).collect();
        if !late.is_empty() {
            return Err(PublishError {
                message: format!(
                    "workers {late:?} did not confirm configuration {generation} within {:?}",
                    self.workers.timeout()
                ),
            });
        }
        self.last = Some(payload);
        self.diverged = false;
        Ok(())
    }
}

impl<P: Generation> Mailbox<P> {
    /// The configuration this worker runs.
    pub fn current(&self) -> &P {
        &self.current
    }

    /// Takes the newest published configuration, if any, lets `switch` install it in the
    /// worker, and only then confirms it to the control plane: a confirmed configuration is
    /// one the worker runs. Returns whether there was one. Call between bursts; it does not
    /// block, and with nothing published it is one atomic load.
    pub fn poll(&mut self, switch: impl FnOnce(&P)) -> bool {
        let current = &mut self.current;
        self.inbox.poll(|next| {
            switch(&next);
            // The control thread holds its own reference (see `Broadcaster::last`), so this
            // replacement never frees a configuration here.
            *current = next;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    fn next(config: &GatewayConfig) -> GatewayConfig {
        GatewayConfig { services: config.services.edit().finish(), ..config.clone() }
    }

    #[test]
    fn publish_returns_after_every_worker_switched() {
        let initial = GatewayConfig::empty();
        let (mut sink, mailboxes) = broadcast(3, &initial, Duration::from_secs(10));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = mailboxes
            .into_iter()
            .map(|mut mb| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        mb.poll(|_| {});
                        std::thread::yield_now();
                    }
                    mb.current().generation()
                })
            })
            .collect();
        let mut config = initial;
        for _ in 0..20 {
            config = next(&config);
            sink.publish(&config).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            assert_eq!(w.join().unwrap(), 20);
        }
    }

    #[test]
    fn a_stuck_worker_fails_the_publish_with_its_index() {
        let initial = GatewayConfig::empty();
        let (mut sink, mut mailboxes) = broadcast(2, &initial, Duration::from_millis(1000));
        let config = next(&initial);
        // Worker 0 polls in time, worker 1 never does.
        let mut zero = mailboxes.remove(0);
        let poller = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && !zero.poll(|_| {}) {
                std::thread::yield_now();
            }
            zero
        });
        let err = sink.publish(&config).unwrap_err();
        assert_eq!(err.message, "workers [1] did not confirm configuration 1 within 1s");
        assert_eq!(poller.join().unwrap().current().generation(), 1);
        // The late worker catches up on its next poll.
        let mut one = mailboxes.remove(0);
        assert!(one.poll(|_| {}));
        assert_eq!(one.current().generation(), 1);
        // Worker 0's mailbox is gone (dropped with the poller's result): a later publish
        // names it instead of waiting for it.
        let later = next(&config);
        assert_eq!(sink.publish(&later).unwrap_err().message, "worker 0 has stopped");
    }

    /// Newest wins: a worker that slept through a failed publish and its rollback switches
    /// once, to the rolled-back configuration, never to the refused one.
    #[test]
    fn a_worker_that_wakes_switches_straight_to_the_newest() {
        let initial = GatewayConfig::empty();
        let (mut sink, mut mailboxes) = broadcast(1, &initial, Duration::from_millis(100));
        let refused = next(&initial);
        assert_eq!(
            sink.publish(&refused).unwrap_err().message,
            "workers [0] did not confirm configuration 1 within 100ms"
        );
        // The control server's rollback: the previous configuration again, posted in place
        // of the refused one, which the worker never sees.
        assert!(sink.publish(&initial).is_err());
        let mut seen = Vec::new();
        while mailboxes[0].poll(|c| seen.push(c.generation())) {}
        assert_eq!(seen, vec![0]);
        // Every worker runs `initial` again, so the next publish is confirmed as usual.
        let mut zero = mailboxes.remove(0);
        let poller = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && !zero.poll(|_| {}) {
                std::thread::yield_now();
            }
            zero.current().generation()
        });
        let later = next(&refused);
        sink.publish(&later).unwrap();
        assert_eq!(poller.join().unwrap(), 2);
    }
}
