//! The seam between the control plane and the workers: a [`SnapshotSink`] takes each new
//! [`GatewayConfig`] to every worker and returns only when every worker runs it (DESIGN.md
//! invariant 3).
//!
//! [`broadcast`] is an implementation on plain std channels: the control thread sends the
//! new configuration to one [`Mailbox`] per worker and waits, with a deadline, for each to
//! acknowledge it. A worker calls [`Mailbox::poll`] between bursts with a closure that
//! installs the configuration; the acknowledgement is sent after the closure returns, so
//! "confirmed" means "running". Polling never blocks and, with nothing published, never
//! allocates (`try_recv` on an empty channel is a couple of atomic loads), so it fits a
//! poll-mode loop. Old configurations are freed on the control thread, not on a worker: the
//! broadcaster keeps the last confirmed payload until every worker has confirmed the next.
//! [`broadcast_with`] sends workers a converted payload instead (see `daemon::workers`).

use std::fmt;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::{NetConfig, Snapshot};

/// Everything the control plane publishes at once. Cheap to clone (two `Arc`s).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub services: Arc<Snapshot>,
    pub net: Arc<NetConfig>,
}

impl GatewayConfig {
    /// No services, no addresses, default timeouts: what `gatewayd` starts with before it
    /// reads its configuration file.
    pub fn empty() -> GatewayConfig {
        GatewayConfig { services: Snapshot::empty(), net: Arc::default() }
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
    /// Each payload travels with the sequence number of its publish attempt, which is what
    /// workers acknowledge: generations can repeat after a refused publish, attempts cannot,
    /// so a late acknowledgement of a failed attempt is never taken for a new one's.
    to_workers: Vec<SyncSender<(u64, P)>>,
    acks: Receiver<(usize, u64)>,
    seq: u64,
    /// Whether a publish failed after sending: workers may then run something other than
    /// `last`, and republishing `last` must reach them.
    diverged: bool,
    timeout: Duration,
    convert: Convert<P>,
    /// The last payload every worker confirmed: kept so that the worker never drops the
    /// last reference to a configuration (freeing it is control-thread work).
    last: Option<P>,
}

/// A worker's side of [`broadcast`].
#[derive(Debug)]
pub struct Mailbox<P: Generation> {
    index: usize,
    inbox: Receiver<(u64, P)>,
    ack: Sender<(usize, u64)>,
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
    let (ack, acks) = mpsc::channel();
    let mut to_workers = Vec::with_capacity(workers);
    let mut mailboxes = Vec::with_capacity(workers);
    for index in 0..workers {
        // Capacity 1: a worker has at most one configuration waiting; see `publish`.
        let (tx, inbox) = mpsc::sync_channel(1);
        to_workers.push(tx);
        mailboxes.push(Mailbox { index, inbox, ack: ack.clone(), current: initial.clone() });
    }
    let broadcaster = Broadcaster { to_workers, acks, seq: 0, diverged: false, timeout, convert, last: Some(initial) };
    (broadcaster, mailboxes)
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
        let deadline = Instant::now() + self.timeout;
        self.seq += 1;
        let seq = self.seq;
        self.diverged = true;
        // Acks of an earlier attempt that timed out may still be queued; they carry an older
        // sequence number and are skipped below.
        for (i, tx) in self.to_workers.iter().enumerate() {
            let mut pending = (seq, payload.clone());
            loop {
                match tx.try_send(pending) {
                    Ok(()) => break,
                    // The worker has not taken the previous configuration yet (an earlier
                    // publish timed out); wait for it within the same deadline.
                    Err(TrySendError::Full(back)) => {
                        if Instant::now() >= deadline {
                            return Err(PublishError {
                                message: format!(
                                    "worker {i} did not take configuration {generation} within {:?}",
                                    self.timeout
                                ),
                            });
                        }
                        pending = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(PublishError { message: format!("worker {i} has stopped") });
                    }
                }
            }
        }
        let mut confirmed = vec![false; self.to_workers.len()];
        let mut missing = confirmed.len();
        while missing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.acks.recv_timeout(left) {
                Ok((i, s)) if s == seq && !confirmed[i] => {
                    confirmed[i] = true;
                    missing -= 1;
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    let late: Vec<usize> = (0..confirmed.len()).filter(|&i| !confirmed[i]).collect();
                    return Err(PublishError {
                        message: format!(
                            "workers {late:?} did not confirm configuration {generation} within {:?}",
                            self.timeout
                        ),
                    });
                }
            }
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
    /// block, and with nothing published it costs a `try_recv` on an empty channel.
    pub fn poll(&mut self, switch: impl FnOnce(&P)) -> bool {
        let Some((seq, next)) = self.take_newest() else {
            return false;
        };
        switch(&next);
        self.install(next);
        self.confirm(seq);
        true
    }

    fn take_newest(&mut self) -> Option<(u64, P)> {
        let mut newest = None;
        while let Ok(next) = self.inbox.try_recv() {
            newest = Some(next);
        }
        newest
    }

    fn install(&mut self, next: P) {
        // The control thread holds its own reference (see `Broadcaster::last`), so this
        // replacement never frees a configuration here.
        self.current = next;
    }

    fn confirm(&self, seq: u64) {
        // The control thread may have given up waiting; a lost ack is harmless.
        let _ = self.ack.send((self.index, seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

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
}
