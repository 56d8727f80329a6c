//! The queues between the workers and the sync daemon.
//!
//! Std's bounded channels: `try_send` and `try_recv` on the array flavour are lock-free and
//! never allocate, and the daemon polls (it never blocks in `recv`), so a worker's
//! `try_send` never has a sleeper to wake (no system call). One queue each way per worker:
//! records of one connection always travel one queue, so they arrive in order.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use super::wire::Record;
use crate::stats::Counter;

/// Records one worker may have waiting toward the daemon (a burst of state changes of a
/// 32-packet burst on every port many times over), and the daemon toward one worker.
pub const QUEUE_LEN: usize = 8192;

/// Why a received record was not installed (one counter each in [`WorkerSyncCounters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No service matches the record's protocol, virtual address and port (or fwmark).
    NoService,
    /// The service has no real server at the record's address and port.
    NoDest,
    /// FNAT: the record's local address is not one of the service's, or its port is not
    /// this worker's.
    NoLocalAddress,
    /// FNAT: the local port is held by another connection here.
    PortInUse,
    /// The connection table is full (of established connections).
    TableFull,
    /// The connection exists here with another real server, local address or mode.
    Conflict,
    /// Older than what this worker has: a TCP state that moves backwards (a replay).
    Stale,
    /// Something this gateway does not carry: a template record, a protocol other than TCP
    /// and UDP, a forwarding method it does not know, a state that is not the protocol's.
    Unsupported,
}

impl Refusal {
    pub const COUNT: usize = 8;
    pub const ALL: [Refusal; Refusal::COUNT] = [
        Refusal::NoService,
        Refusal::NoDest,
        Refusal::NoLocalAddress,
        Refusal::PortInUse,
        Refusal::TableFull,
        Refusal::Conflict,
        Refusal::Stale,
        Refusal::Unsupported,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The name counters and listings use.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::NoService => "no_service",
            Refusal::NoDest => "no_dest",
            Refusal::NoLocalAddress => "no_local_address",
            Refusal::PortInUse => "port_in_use",
            Refusal::TableFull => "table_full",
            Refusal::Conflict => "conflict",
            Refusal::Stale => "stale",
            Refusal::Unsupported => "unsupported",
        }
    }
}

/// A worker's sync counters (one writer: the worker).
#[derive(Debug, Default)]
pub struct WorkerSyncCounters {
    /// Records pushed toward the daemon.
    pub queued: Counter,
    /// Records dropped: the queue toward the daemon was full.
    pub queue_full: Counter,
    /// Received records that created a connection here.
    pub installed: Counter,
    /// Received records that refreshed one (state, deadline, deltas).
    pub updated: Counter,
    /// Received records refused, by [`Refusal::index`].
    pub refused: [Counter; Refusal::COUNT],
}

impl WorkerSyncCounters {
    pub fn refuse(&self, why: Refusal) {
        self.refused[why.index()].inc();
    }
}

/// Whether the workers sync, shared by the daemon (which sets it while a master runs) and
/// every worker (which reads it when a connection would be synced, never per packet).
#[derive(Debug, Default)]
pub struct MasterSwitch(AtomicBool);

impl MasterSwitch {
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One worker's ends.
pub struct WorkerQueues {
    outbox: SyncSender<Record>,
    pub inbox: Receiver<Record>,
    pub master: Arc<MasterSwitch>,
}

impl WorkerQueues {
    /// Pushes `record` toward the daemon if a master runs; counts it, or its drop.
    pub fn push(&self, record: Record, counters: &WorkerSyncCounters) {
        match self.outbox.try_send(record) {
            Ok(()) => counters.queued.inc(),
            Err(TrySendError::Full(_)) => counters.queue_full.inc(),
            // The daemon's ends are gone (the daemon is stopping): nothing to sync to.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The daemon's ends, by worker id.
pub struct DaemonQueues {
    pub from_workers: Vec<Receiver<Record>>,
    pub to_workers: Vec<SyncSender<Record>>,
    pub master: Arc<MasterSwitch>,
}

/// The queues for `workers` workers.
pub fn queues(workers: u16) -> (DaemonQueues, Vec<WorkerQueues>) {
    let master = Arc::new(MasterSwitch::default());
    let mut daemon = DaemonQueues { from_workers: Vec::new(), to_workers: Vec::new(), master: Arc::clone(&master) };
    let mut ends = Vec::new();
    for _ in 0..workers {
        let (outbox, from_worker) = sync_channel(QUEUE_LEN);
        let (to_worker, inbox) = sync_channel(QUEUE_LEN);
        daemon.from_workers.push(from_worker);
        daemon.to_workers.push(to_worker);
        ends.push(WorkerQueues { outbox, inbox, master: Arc::clone(&master) });
    }
    (daemon, ends)
}
