//! The sync daemons: threads of gatewayd (never a worker lcore), one per role, as IPVS runs
//! them (`--start-daemon master|backup`). A director may run both at once, each with its
//! own interface and syncid, so two directors back each other up.
//!
//! - **Master** ([`Batcher`], [`TokenBucket`]): polls every worker's queue with `try_recv`
//!   every [`POLL_PERIOD`] (it never sleeps in `recv`, so a worker's `try_send` has nobody
//!   to wake), packs the records into datagrams no larger than the interface's MTU allows,
//!   sends a datagram when the next record does not fit or [`FLUSH_PERIOD`] after its first
//!   record, at most [`DATAGRAMS_PER_SEC`] a second (what is over is dropped and counted),
//!   to IPVS's group [`SYNC_GROUP`]:[`SYNC_PORT`] out of the `--mcast-interface` (TTL 1, no
//!   loopback: a backup on this director never reads its own master). Each datagram is
//!   stamped ([`wire::Stamp`]) with the master's run (when it started, in seconds; a later
//!   start of a master of this process always has a later run) and its number in the run.
//! - **Backup** ([`BackupReceiver`]): a socket bound to the group's address and port, joined to
//!   the group on the `--mcast-interface` only. Each datagram is checked whole first: a
//!   malformed one is dropped and counted by [`Malformed`] reason, one of another syncid is
//!   dropped (syncid 0 on the backup accepts any, as IPVS), and so is a stamped one whose
//!   number of its run was taken already (a replay, from whatever address) or whose run is
//!   older than its sender's last (counted as stale; an unstamped one, a kernel IPVS
//!   master's, is taken); then each record the gateway cannot read alone
//!   ([`wire::Error::drops_datagram`] false) is skipped and counted and each good one is
//!   handed to the worker that is to carry it ([`owning_worker`]) with `try_send` (a full
//!   queue is a counted drop).
//!
//! Sockets are made with `rustix` (no `unsafe` here), which has no `SO_BINDTODEVICE`: the
//! backup's socket is tied to its interface by its group membership, the kernel's
//! equivalent for multicast. A datagram for the group that arrives on another interface
//! is delivered only if something on this host joined the group there too.
//!
//! The daemons' counters ([`SyncCounters`]) outlive the daemons: a restart goes on counting.
//! Each counter has one writer, the thread of its role (a role's next thread starts after
//! its previous one was joined).

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::net::{netdevice, sockopt, AddressFamily, SocketType};

use super::owner::owning_worker;
use super::queue::{DaemonQueues, MasterSwitch};
use super::wire::{self, DatagramWriter, Record, Stamp};
use crate::model::NetView;
use crate::stats::Counter;

/// IPVS's sync group (`IP_VS_SYNC_GROUP`).
pub const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// IPVS's sync port (`IP_VS_SYNC_PORT`).
pub const SYNC_PORT: u16 = 8848;
/// How often the master looks at the workers' queues.
pub const POLL_PERIOD: Duration = Duration::from_millis(10);
/// The longest a record waits in a datagram that is not full.
pub const FLUSH_PERIOD: Duration = Duration::from_millis(50);
/// Datagrams a master sends per second at most (at 1500 bytes of MTU, some 40 records
/// each: 400 000 records a second), and the burst it may send at once.
pub const DATAGRAMS_PER_SEC: u32 = 10_000;
pub const DATAGRAM_BURST: u32 = 200;
/// How long the backup waits in `recv` before it looks at its stop flag.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(50);
/// An IPv4 header without options and a UDP header.
const IP_UDP_HEADERS: usize = 28;
/// The longest record a master writes: IPv6's fixed part and every option this gateway sends
/// (`SEQ_DATA` 2 + 24, `FNAT_LOCAL` 2 + 18, `SYNPROXY` 2 + 8).
const MAX_RECORD_LEN: usize = wire::CONN_V6_LEN + 26 + 20 + 10;
/// What the stamp adds to a datagram at most: its option on the first record, and the
/// padding it may add after that record.
const STAMP_SPACE: usize = (2 + wire::option::STAMP_LEN + 3) & !3;
/// Runs, and senders, whose last stamp a backup remembers (the masters of one segment; an
/// entry forgotten for a newer one costs only a replay check).
const STAMPS_KEPT: usize = 16;

/// Which daemon: IPVS's two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Master,
    Backup,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }
}

/// What a daemon is started with (`--start-daemon ROLE --mcast-interface IF --syncid N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    pub role: Role,
    /// The Linux interface the group is sent to or joined on (a kernel exception interface
    /// of gatewayd, such as `gwk0`).
    pub mcast_interface: String,
    /// The master writes it in every datagram; the backup takes only datagrams with it
    /// (0: any).
    pub syncid: u8,
}

/// Why a daemon did not start or stop. The first three are IPVS's `EEXIST`, `ESRCH` and
/// `ENODEV`, which ipvsadm words as "Daemon has already run", "No daemon is running" and
/// "No such device".
#[derive(Debug)]
pub enum SyncError {
    AlreadyRunning {
        role: Role,
        mcast_interface: String,
        syncid: u8,
    },
    NotRunning {
        role: Role,
    },
    NoDevice {
        name: String,
    },
    /// The interface's MTU leaves no room for a datagram of one record.
    MtuTooSmall {
        name: String,
        mtu: u32,
    },
    /// A socket call failed.
    Socket {
        role: Role,
        what: &'static str,
        name: String,
        error: io::Error,
    },
    /// The daemon's thread could not be started.
    Thread {
        role: Role,
        error: io::Error,
    },
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::AlreadyRunning { role, mcast_interface, syncid } => {
                write!(f, "a {} sync daemon is already running (mcast={mcast_interface}, syncid={syncid})", role.name())
            }
            SyncError::NotRunning { role } => write!(f, "no {} sync daemon is running", role.name()),
            SyncError::NoDevice { name } => write!(f, "no interface named {name:?} for the sync daemon"),
            SyncError::MtuTooSmall { name, mtu } => write!(
                f,
                "interface {name:?} has an MTU of {mtu}: a sync datagram of one record needs {}",
                IP_UDP_HEADERS + wire::HEADER_LEN + STAMP_SPACE + MAX_RECORD_LEN
            ),
            SyncError::Socket { role, what, name, error } => {
                write!(f, "{} sync daemon on {name:?}: cannot {what}: {error}", role.name())
            }
            SyncError::Thread { role, error } => {
                write!(f, "cannot start the {} sync daemon's thread: {error}", role.name())
            }
        }
    }
}

impl std::error::Error for SyncError {}

/// Why a received datagram was dropped whole (a small fixed set of counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than its header, a record or an option header says.
    Truncated,
    /// Not version 1 (a version-0 datagram, or not sync at all).
    BadVersion,
    /// The header's size is not the datagram's length.
    SizeMismatch,
    /// A record's version, size or type is wrong.
    BadRecord,
    /// An option is empty, runs past its record, has the wrong length or comes twice.
    BadOption,
}

impl Malformed {
    pub const COUNT: usize = 5;
    pub const ALL: [Malformed; Malformed::COUNT] = [
        Malformed::Truncated,
        Malformed::BadVersion,
        Malformed::SizeMismatch,
        Malformed::BadRecord,
        Malformed::BadOption,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::BadVersion => "bad_version",
            Malformed::SizeMismatch => "size_mismatch",
            Malformed::BadRecord => "bad_record",
            Malformed::BadOption => "bad_option",
        }
    }

    /// The reason a datagram-dropping error is counted under; `None` for an error that
    /// drops only its record.
    pub fn of(e: &wire::Error) -> Option<Malformed> {
        use wire::Error::*;
        Some(match e {
            Truncated { .. } => Malformed::Truncated,
            NotVersion1 { .. } | BadVersion { .. } => Malformed::BadVersion,
            SizeMismatch { .. } => Malformed::SizeMismatch,
            BadRecordVersion { .. } | RecordTooShort { .. } | RecordPastDatagram { .. } | BadRecordType { .. } => {
                Malformed::BadRecord
            }
            EmptyOption { .. } | OptionPastRecord { .. } | BadOptionLength { .. } | DuplicateOption { .. } => {
                Malformed::BadOption
            }
            UnknownOption { .. } | PersistenceEngineOption { .. } => return None,
        })
    }
}

/// The master's counters.
#[derive(Debug, Default)]
pub struct MasterCounters {
    /// Records in datagrams sent.
    pub records_sent: Counter,
    pub datagrams_sent: Counter,
    /// Datagrams the socket refused (its buffer full, the interface down).
    pub send_errors: Counter,
    /// Records dropped because their datagram was over [`DATAGRAMS_PER_SEC`].
    pub rate_dropped: Counter,
}

/// The backup's counters.
#[derive(Debug, Default)]
pub struct BackupCounters {
    pub datagrams_received: Counter,
    /// Datagrams dropped whole, by [`Malformed`] reason.
    pub malformed: [Counter; Malformed::COUNT],
    /// Datagrams of another syncid.
    pub syncid_mismatch: Counter,
    /// Stamped datagrams taken already (a replay) or of an earlier run of their sender.
    pub stale: Counter,
    /// Records of accepted datagrams, skipped ones included.
    pub records_received: Counter,
    /// Records this gateway cannot read (an unknown mandatory option,
    /// persistence-engine data): skipped, the rest of the datagram taken.
    pub records_skipped: Counter,
    /// Records handed to a worker's queue.
    pub records_handed: Counter,
    /// Records dropped: the owning worker's queue was full (or the gateway has no workers).
    pub worker_queue_full: Counter,
}

/// Both roles' counters.
#[derive(Debug, Default)]
pub struct SyncCounters {
    pub master: MasterCounters,
    pub backup: BackupCounters,
}

/// Packs records into stamped datagrams of at most `max_len` bytes, on the master.
#[derive(Debug)]
pub struct Batcher {
    syncid: u8,
    max_len: usize,
    /// The next datagram's stamp.
    stamp: Stamp,
    pending: Vec<Record>,
    /// Bytes the pending records take in a datagram, header and stamp included (each counted
    /// with the padding to the next 4-byte boundary, which the last one does not get: an
    /// upper bound by a few bytes).
    len: usize,
    /// When the oldest pending record was added.
    since: Option<Instant>,
    buffer: Vec<u8>,
}

impl Batcher {
    /// A batcher of datagrams of at most `max_len` bytes (capped at the sync header's
    /// 16-bit size), stamped `run` and numbered from 0; `max_len` must hold a header, a
    /// stamp and one record of [`MAX_RECORD_LEN`].
    pub fn new(syncid: u8, max_len: usize, run: u32) -> Batcher {
        let max_len = max_len.min(wire::MAX_DATAGRAM_LEN);
        Batcher {
            syncid,
            max_len,
            stamp: Stamp { run, number: 0 },
            pending: Vec::with_capacity(wire::MAX_RECORDS),
            len: wire::HEADER_LEN + STAMP_SPACE,
            since: None,
            buffer: vec![0; max_len],
        }
    }

    /// Records waiting for the next datagram.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Adds `record`; when it does not fit the datagram being filled, that datagram is
    /// handed to `send` (its bytes and record count) first.
    pub fn push(&mut self, record: Record, now: Instant, send: &mut impl FnMut(&[u8], usize)) {
        let space = (record.record_len() + 3) & !3;
        if !self.pending.is_empty() && (self.len + space > self.max_len || self.pending.len() == wire::MAX_RECORDS) {
            self.flush(send);
        }
        self.pending.push(record);
        self.len += space;
        self.since.get_or_insert(now);
    }

    /// Sends the datagram being filled if its oldest record has waited [`FLUSH_PERIOD`].
    pub fn flush_due(&mut self, now: Instant, send: &mut impl FnMut(&[u8], usize)) {
        if self.since.is_some_and(|since| now.duration_since(since) >= FLUSH_PERIOD) {
            self.flush(send);
        }
    }

    /// Sends the datagram being filled, if it holds any record.
    pub fn flush(&mut self, send: &mut impl FnMut(&[u8], usize)) {
        if self.pending.is_empty() {
            return;
        }
        // `new` sized the buffer past a header; `push` kept the records within it.
        if let Ok(writer) = DatagramWriter::new(&mut self.buffer, self.syncid) {
            let mut writer = writer.stamped(self.stamp);
            let written = self.pending.iter().take_while(|r| writer.push(r).is_ok()).count();
            debug_assert_eq!(written, self.pending.len(), "the batcher's bound is the writer's");
            let len = writer.finish();
            send(&self.buffer[..len], written);
            self.stamp.number = self.stamp.number.wrapping_add(1);
        }
        self.pending.clear();
        self.len = wire::HEADER_LEN + STAMP_SPACE;
        self.since = None;
    }
}

/// The run of a master starting now: the time in seconds, later than every run this
/// process gave before (a master stopped and started within a second is a new run).
fn next_run() -> u32 {
    static LAST: AtomicU32 = AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    let previous = LAST.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| Some(now.max(last.wrapping_add(1))));
    // `fetch_update` with a closure that always answers cannot fail.
    let last = previous.unwrap_or_else(|last| last);
    now.max(last.wrapping_add(1))
}

/// A token bucket of datagrams: [`TokenBucket::take`] says whether one may go now.
#[derive(Debug)]
pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// Full at first.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket { per_sec: f64::from(per_sec), burst: f64::from(burst), tokens: f64::from(burst), last: now }
    }

    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The network view the backup routes received records with ([`owning_worker`]): the one
/// published to the workers last, set by the control thread on each publish and read by
/// the backup once per datagram.
#[derive(Debug, Default)]
pub struct SharedNetView(Mutex<Arc<NetView>>);

impl SharedNetView {
    pub fn new(view: Arc<NetView>) -> SharedNetView {
        SharedNetView(Mutex::new(view))
    }

    pub fn set(&self, view: Arc<NetView>) {
        *self.lock() = view;
    }

    pub fn get(&self) -> Arc<NetView> {
        Arc::clone(&self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Arc<NetView>> {
        // A plain replacement cannot leave the value half-written.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The backup's checks and routing of one datagram.
pub struct BackupReceiver {
    /// 0: any.
    syncid: u8,
    to_workers: Vec<SyncSender<Record>>,
    /// The last number taken of each run, and the last run taken from each sender (by
    /// source address), least recently taken first.
    runs: Vec<(u32, u32)>,
    senders: Vec<(Ipv4Addr, u32)>,
}

impl BackupReceiver {
    pub fn new(syncid: u8, to_workers: Vec<SyncSender<Record>>) -> BackupReceiver {
        BackupReceiver {
            syncid,
            to_workers,
            runs: Vec::with_capacity(STAMPS_KEPT),
            senders: Vec::with_capacity(STAMPS_KEPT),
        }
    }

    /// Checks `datagram` (sent by `from`) whole, then hands each good record to its worker;
    /// counts all.
    pub fn receive(&mut self, datagram: &[u8], from: Ipv4Addr, net: &NetView, counters: &BackupCounters) {
        counters.datagrams_received.inc();
        let (header, records) = match wire::parse(datagram) {
            Ok(parsed) => parsed,
            Err(e) => return count_malformed(&e, counters),
        };
        // A record error that leaves the rest unreadable drops the whole datagram, not what
        // follows it only: nothing of a datagram is taken before all of it was read.
        if let Some(e) = records.clone().filter_map(Result::err).find(wire::Error::drops_datagram) {
            return count_malformed(&e, counters);
        }
        if self.syncid != 0 && header.syncid != self.syncid {
            counters.syncid_mismatch.inc();
            return;
        }
        if let Some(stamp) = wire::stamp_of(datagram) {
            if !self.take_stamp(from, stamp) {
                counters.stale.inc();
                return;
            }
        }
        let workers = u16::try_from(self.to_workers.len()).unwrap_or(u16::MAX);
        for record in records {
            counters.records_received.inc();
            let Ok(record) = record else {
                counters.records_skipped.inc();
                continue;
            };
            let worker = owning_worker(&record, workers, net);
            // Full, or a worker that has stopped (or none): either way the record is lost.
            match self.to_workers.get(usize::from(worker)) {
                Some(queue) if queue.try_send(record).is_ok() => counters.records_handed.inc(),
                Some(_) | None => counters.worker_queue_full.inc(),
            }
        }
    }
}

impl BackupReceiver {
    /// Whether a datagram stamped `stamp` from `from` is new: not a number of its run taken
    /// already (whoever sends it again: a replay from any address is one), and not of a run
    /// older than the last one its sender sent. If so, it becomes the last of both.
    ///
    /// A run is its master's start in seconds, so two masters started in the same second
    /// that send to one backup with one syncid share a run, and each one's datagrams that
    /// do not follow the other's last are taken for stale.
    fn take_stamp(&mut self, from: Ipv4Addr, stamp: Stamp) -> bool {
        let run = self.runs.iter().position(|&(run, _)| run == stamp.run);
        if let Some(i) = run {
            if !stamp.follows(Stamp { run: stamp.run, number: self.runs[i].1 }) {
                return false;
            }
        }
        let sender = self.senders.iter().position(|&(sender, _)| sender == from);
        if sender.is_some_and(|i| stamp.run < self.senders[i].1) {
            return false;
        }
        keep_last(&mut self.runs, run, (stamp.run, stamp.number));
        keep_last(&mut self.senders, sender, (from, stamp.run));
        true
    }
}

/// Makes `entry` the most recent of `entries` (replacing the one at `at`, or else the least
/// recent when [`STAMPS_KEPT`] are kept already).
fn keep_last<T>(entries: &mut Vec<T>, at: Option<usize>, entry: T) {
    match at {
        Some(i) => {
            entries.remove(i);
        }
        None if entries.len() == STAMPS_KEPT => {
            entries.remove(0);
        }
        None => {}
    }
    entries.push(entry);
}

fn count_malformed(e: &wire::Error, counters: &BackupCounters) {
    // Every error `parse` ends a datagram with has a reason; a record-only one here would
    // be a bug of the caller, counted as a bad record rather than lost.
    let reason = Malformed::of(e).unwrap_or(Malformed::BadRecord);
    counters.malformed[reason as usize].inc();
}

/// A running daemon.
struct Running {
    spec: DaemonSpec,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Running {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if self.thread.join().is_err() {
            log::error!("gatewayd: the {} sync daemon's thread panicked", self.spec.role.name());
        }
    }
}

/// The sync daemons of a gateway and their ends of the workers' queues: what the control
/// plane starts, stops and lists.
pub struct SyncDaemons {
    /// The master's thread holds the lock while it runs; between masters nobody reads them.
    from_workers: Arc<Mutex<Vec<mpsc::Receiver<Record>>>>,
    to_workers: Vec<SyncSender<Record>>,
    switch: Arc<MasterSwitch>,
    net: Arc<SharedNetView>,
    counters: Arc<SyncCounters>,
    master: Option<Running>,
    backup: Option<Running>,
}

impl SyncDaemons {
    /// The daemons of a gateway whose workers hold the other ends of `queues`; a backup
    /// routes with what `net` holds when each datagram arrives.
    pub fn new(queues: DaemonQueues, net: Arc<SharedNetView>) -> SyncDaemons {
        SyncDaemons {
            from_workers: Arc::new(Mutex::new(queues.from_workers)),
            to_workers: queues.to_workers,
            switch: queues.master,
            net,
            counters: Arc::default(),
            master: None,
            backup: None,
        }
    }

    /// The daemons of a gateway without workers (the control plane alone, in tests): a
    /// master has nothing to send, a backup receives and checks but hands nothing on.
    pub fn without_workers() -> SyncDaemons {
        SyncDaemons::new(super::queue::queues(0).0, Arc::default())
    }

    pub fn counters(&self) -> &Arc<SyncCounters> {
        &self.counters
    }

    /// The daemons running, master first (as IPVS lists them).
    pub fn running(&self) -> Vec<DaemonSpec> {
        [&self.master, &self.backup].into_iter().flatten().map(|r| r.spec.clone()).collect()
    }

    /// The spec of `role`'s daemon, if it runs.
    pub fn spec(&self, role: Role) -> Option<&DaemonSpec> {
        self.slot(role).as_ref().map(|r| &r.spec)
    }

    /// Whether `name` is an interface here (the check `start` makes first).
    pub fn interface_exists(name: &str) -> Result<bool, SyncError> {
        interface_index(name, Role::Master).map(|index| index.is_some())
    }

    fn slot(&self, role: Role) -> &Option<Running> {
        match role {
            Role::Master => &self.master,
            Role::Backup => &self.backup,
        }
    }

    /// Starts `spec`'s daemon: its socket is set up here, so a bad interface is refused
    /// before any thread starts. A master turns the workers' syncing on.
    pub fn start(&mut self, spec: &DaemonSpec) -> Result<(), SyncError> {
        if let Some(running) = self.spec(spec.role) {
            return Err(SyncError::AlreadyRunning {
                role: spec.role,
                mcast_interface: running.mcast_interface.clone(),
                syncid: running.syncid,
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread_name = format!("gw-sync-{}", spec.role.name());
        let thread = match spec.role {
            Role::Master => {
                let (socket, max_len) = master_socket(&spec.mcast_interface)?;
                let master = MasterLoop {
                    socket,
                    batcher: Batcher::new(spec.syncid, max_len, next_run()),
                    bucket: TokenBucket::new(DATAGRAMS_PER_SEC, DATAGRAM_BURST, Instant::now()),
                    from_workers: Arc::clone(&self.from_workers),
                    counters: Arc::clone(&self.counters),
                    stop: Arc::clone(&stop),
                };
                std::thread::Builder::new().name(thread_name).spawn(move || master.run())
            }
            Role::Backup => {
                let socket = backup_socket(&spec.mcast_interface)?;
                let backup = BackupLoop {
                    socket,
                    receiver: BackupReceiver::new(spec.syncid, self.to_workers.clone()),
                    net: Arc::clone(&self.net),
                    counters: Arc::clone(&self.counters),
                    stop: Arc::clone(&stop),
                };
                std::thread::Builder::new().name(thread_name).spawn(move || backup.run())
            }
        }
        .map_err(|error| SyncError::Thread { role: spec.role, error })?;
        let running = Running { spec: spec.clone(), stop, thread };
        match spec.role {
            Role::Master => {
                self.master = Some(running);
                self.switch.set(true);
            }
            Role::Backup => self.backup = Some(running),
        }
        log::info!(
            "gatewayd: {} sync daemon started (mcast={}, syncid={}, group {SYNC_GROUP}:{SYNC_PORT})",
            spec.role.name(),
            spec.mcast_interface,
            spec.syncid
        );
        Ok(())
    }

    /// Stops `role`'s daemon and returns what it ran with. Stopping a master turns the
    /// workers' syncing off first, then sends what they had queued.
    pub fn stop(&mut self, role: Role) -> Result<DaemonSpec, SyncError> {
        let running = match role {
            Role::Master => self.master.take(),
            Role::Backup => self.backup.take(),
        };
        let Some(running) = running else { return Err(SyncError::NotRunning { role }) };
        if role == Role::Master {
            self.switch.set(false);
        }
        let spec = running.spec.clone();
        running.stop();
        let (m, b) = (&self.counters.master, &self.counters.backup);
        let counted = match role {
            Role::Master => format!(
                "records sent {} datagrams sent {} send errors {} rate dropped {}",
                m.records_sent.get(),
                m.datagrams_sent.get(),
                m.send_errors.get(),
                m.rate_dropped.get()
            ),
            Role::Backup => format!(
                "datagrams received {} malformed {} syncid mismatch {} stale {} records received {} skipped {} \
                 handed {} worker queue full {}",
                b.datagrams_received.get(),
                b.malformed.iter().map(Counter::get).sum::<u64>(),
                b.syncid_mismatch.get(),
                b.stale.get(),
                b.records_received.get(),
                b.records_skipped.get(),
                b.records_handed.get(),
                b.worker_queue_full.get()
            ),
        };
        log::info!(
            "gatewayd: {} sync daemon stopped (mcast={}, syncid={}); since gatewayd started: {counted}",
            role.name(),
            spec.mcast_interface,
            spec.syncid
        );
        Ok(spec)
    }

    /// Stops every daemon (gatewayd's exit).
    pub fn stop_all(&mut self) {
        for role in [Role::Master, Role::Backup] {
            let _ = self.stop(role);
        }
    }
}

impl Drop for SyncDaemons {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn socket_error<'a>(role: Role, what: &'static str, name: &'a str) -> impl FnOnce(rustix::io::Errno) -> SyncError + 'a {
    move |e| SyncError::Socket { role, what, name: name.to_string(), error: e.into() }
}

/// `name`'s interface index, `None` if there is no such interface here.
fn interface_index(name: &str, role: Role) -> Result<Option<u32>, SyncError> {
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(socket_error(
        role,
        "open a socket",
        name,
    ))?;
    // The kernel's interface names are at most 15 bytes; a longer one names nothing.
    if name.is_empty() || name.len() >= 16 || name.contains('\0') {
        return Ok(None);
    }
    match netdevice::name_to_index(&fd, name) {
        Ok(index) => Ok(Some(index)),
        Err(rustix::io::Errno::NODEV) => Ok(None),
        Err(e) => Err(socket_error(role, "look the interface up", name)(e)),
    }
}

/// The master's socket, connected to the group out of `name`, and the largest datagram
/// the interface's MTU takes.
fn master_socket(name: &str) -> Result<(UdpSocket, usize), SyncError> {
    let role = Role::Master;
    let index = interface_index(name, role)?.ok_or_else(|| SyncError::NoDevice { name: name.to_string() })?;
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(socket_error(
        role,
        "open a socket",
        name,
    ))?;
    sockopt::set_ip_multicast_if_with_ifindex(&fd, &SYNC_GROUP, &Ipv4Addr::UNSPECIFIED, index)
        .map_err(socket_error(role, "send multicast out of the interface", name))?;
    sockopt::set_ip_multicast_ttl(&fd, 1).map_err(socket_error(role, "set the multicast TTL", name))?;
    sockopt::set_ip_multicast_loop(&fd, false).map_err(socket_error(role, "turn multicast loopback off", name))?;
    // Connected, a multicast socket routes by its multicast interface, and IP_MTU is
    // that interface's MTU.
    rustix::net::connect(&fd, &SocketAddrV4::new(SYNC_GROUP, SYNC_PORT)).map_err(socket_error(
        role,
        "connect to the sync group",
        name,
    ))?;
    let mtu = sockopt::ip_mtu(&fd).map_err(socket_error(role, "read the interface's MTU", name))?;
    let max_len = (mtu as usize).saturating_sub(IP_UDP_HEADERS);
    if max_len < wire::HEADER_LEN + STAMP_SPACE + MAX_RECORD_LEN {
        return Err(SyncError::MtuTooSmall { name: name.to_string(), mtu });
    }
    let socket = UdpSocket::from(fd);
    socket.set_nonblocking(true).map_err(|error| SyncError::Socket {
        role,
        what: "make the socket non-blocking",
        name: name.to_string(),
        error,
    })?;
    Ok((socket, max_len))
}

/// The backup's socket: bound to the group's address and port (so it takes the group's
/// datagrams only) and joined to the group on `name` only.
fn backup_socket(name: &str) -> Result<UdpSocket, SyncError> {
    let role = Role::Backup;
    let index = interface_index(name, role)?.ok_or_else(|| SyncError::NoDevice { name: name.to_string() })?;
    let fd = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(socket_error(
        role,
        "open a socket",
        name,
    ))?;
    // Another program's (or another gateway's) backup may listen for the group too.
    sockopt::set_socket_reuseaddr(&fd, true).map_err(socket_error(role, "set SO_REUSEADDR", name))?;
    rustix::net::bind(&fd, &SocketAddrV4::new(SYNC_GROUP, SYNC_PORT)).map_err(socket_error(
        role,
        "bind to the sync group's port",
        name,
    ))?;
    sockopt::set_ip_add_membership_with_ifindex(&fd, &SYNC_GROUP, &Ipv4Addr::UNSPECIFIED, index)
        .map_err(socket_error(role, "join the sync group on the interface", name))?;
    let socket = UdpSocket::from(fd);
    socket.set_read_timeout(Some(RECEIVE_TIMEOUT)).map_err(|error| SyncError::Socket {
        role,
        what: "set a receive timeout",
        name: name.to_string(),
        error,
    })?;
    Ok(socket)
}

struct MasterLoop {
    socket: UdpSocket,
    batcher: Batcher,
    bucket: TokenBucket,
    from_workers: Arc<Mutex<Vec<mpsc::Receiver<Record>>>>,
    counters: Arc<SyncCounters>,
    stop: Arc<AtomicBool>,
}

impl MasterLoop {
    fn run(mut self) {
        let from_workers = Arc::clone(&self.from_workers);
        // A panicked master left the receivers as they were: usable.
        let queues = from_workers.lock().unwrap_or_else(PoisonError::into_inner);
        let MasterLoop { socket, batcher, bucket, counters, stop, .. } = &mut self;
        let counters = &counters.master;
        let mut send = |datagram: &[u8], records: usize| {
            if !bucket.take(Instant::now()) {
                counters.rate_dropped.add(records as u64);
                return;
            }
            match socket.send(datagram) {
                Ok(_) => {
                    counters.datagrams_sent.inc();
                    counters.records_sent.add(records as u64);
                }
                Err(_) => counters.send_errors.inc(),
            }
        };
        loop {
            // Read before draining: what a worker queued before the switch went off is
            // drained by the last round and sent.
            let stopping = stop.load(Ordering::Relaxed);
            let now = Instant::now();
            for queue in queues.iter() {
                while let Ok(record) = queue.try_recv() {
                    batcher.push(record, now, &mut send);
                }
            }
            if stopping {
                batcher.flush(&mut send);
                return;
            }
            batcher.flush_due(now, &mut send);
            std::thread::sleep(POLL_PERIOD);
        }
    }
}

struct BackupLoop {
    socket: UdpSocket,
    receiver: BackupReceiver,
    net: Arc<SharedNetView>,
    counters: Arc<SyncCounters>,
    stop: Arc<AtomicBool>,
}

impl BackupLoop {
    fn run(mut self) {
        let mut buffer = vec![0u8; wire::MAX_DATAGRAM_LEN];
        while !self.stop.load(Ordering::Relaxed) {
            match self.socket.recv_from(&mut buffer) {
                Ok((len, from)) => {
                    let from = match from.ip() {
                        std::net::IpAddr::V4(a) => a,
                        std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                    };
                    self.receiver.receive(&buffer[..len], from, &self.net.get(), &self.counters.backup)
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Not expected of a bound UDP socket; keep serving, without spinning.
                    log::warn!("gatewayd: backup sync daemon: receive failed: {e}");
                    std::thread::sleep(RECEIVE_TIMEOUT);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::queue::{queues, WorkerSyncCounters};
    use crate::sync::wire::{ConnRepr, SynProxyDeltas};

    /// A FNAT record whose local port says which of 4 workers carries it (the port's low
    /// two bits, [`owning_worker`]).
    fn record(client_port: u16, local_port: u16) -> Record {
        conn(client_port, local_port).into()
    }

    fn conn(client_port: u16, local_port: u16) -> ConnRepr<Ipv4Addr> {
        ConnRepr {
            protocol: 6,
            flags: 0,
            state: 1,
            client: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), client_port),
            virtual_service: "10.0.0.100:80".parse().unwrap(),
            real_server: "192.168.1.10:80".parse().unwrap(),
            fwmark: 0,
            timeout_secs: 900,
            seq_data: None,
            fnat_local: Some(SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 200), local_port)),
            synproxy: None,
        }
    }

    /// [`record`]'s IPv6 twin.
    fn record6(client_port: u16, local_port: u16) -> Record {
        let c = conn(client_port, local_port);
        let v6 = |s: &str, port| std::net::SocketAddrV6::new(s.parse().unwrap(), port, 0, 0);
        Record::V6(ConnRepr {
            protocol: c.protocol,
            flags: c.flags,
            state: c.state,
            client: v6("2001:db8::1", client_port),
            virtual_service: v6("2001:db8::100", 80),
            real_server: v6("2001:db8:1::10", 80),
            fwmark: c.fwmark,
            timeout_secs: c.timeout_secs,
            seq_data: c.seq_data,
            fnat_local: Some(v6("2001:db8:1::200", local_port)),
            synproxy: c.synproxy,
        })
    }

    /// Every datagram a batcher sends, parsed back; each is stamped with run 5 and the next
    /// number (`numbers`).
    fn sent(
        batcher: &mut Batcher,
        numbers: &mut std::ops::RangeFrom<u32>,
        push: impl FnOnce(&mut Batcher, &mut dyn FnMut(&[u8], usize)),
    ) -> Vec<Vec<Record>> {
        let mut datagrams = Vec::new();
        let mut send = |d: &[u8], n: usize| {
            let (header, records) = wire::parse(d).unwrap();
            assert_eq!((usize::from(header.nr_conns), header.syncid), (n, 9));
            assert_eq!(wire::stamp_of(d), Some(Stamp { run: 5, number: numbers.next().unwrap() }));
            datagrams.push(records.map(Result::unwrap).collect());
        };
        push(batcher, &mut send);
        datagrams
    }

    #[test]
    fn a_datagram_goes_when_the_next_record_does_not_fit() {
        // A header, a stamp and three 44-byte records: 8 + 12 + 132 bytes.
        let mut batcher = Batcher::new(9, 152, 5);
        let numbers = &mut (0..);
        let now = Instant::now();
        let records: Vec<Record> = (0..4).map(|i| record(4000 + i, 1024 + i)).collect();
        let datagrams = sent(&mut batcher, numbers, |b, send| {
            for r in &records {
                b.push(*r, now, &mut |d, n| send(d, n));
            }
        });
        assert_eq!(datagrams, vec![records[..3].to_vec()]);
        assert_eq!(batcher.pending(), 1);
        let rest = sent(&mut batcher, numbers, |b, send| b.flush(&mut |d, n| send(d, n)));
        assert_eq!(rest, vec![records[3..].to_vec()]);
        let none = sent(&mut batcher, numbers, |b, send| b.flush(&mut |d, n| send(d, n)));
        assert!(none.is_empty(), "nothing left to send");
        assert_eq!(numbers.next(), Some(2), "two datagrams, numbered 0 and 1");
    }

    #[test]
    fn records_of_odd_lengths_are_padded_and_fit_the_bound() {
        // 36 + 10 = 46 bytes each, 48 with padding, the first 56 with the stamp: a header
        // and two take 8 + 56 + 46.
        let odd = |port| {
            Record::V4(ConnRepr {
                fnat_local: None,
                synproxy: Some(SynProxyDeltas { seq_delta: 1, ts_delta: 2 }),
                ..conn(port, 1024)
            })
        };
        let mut batcher = Batcher::new(9, 8 + 12 + 48 + 48, 5);
        let now = Instant::now();
        let mut lens = Vec::new();
        let mut got = Vec::new();
        for port in [1, 2, 3] {
            batcher.push(odd(port), now, &mut |d, _| {
                lens.push(d.len());
                got.extend(wire::parse(d).unwrap().1.map(Result::unwrap));
            });
        }
        assert_eq!(lens, vec![110]);
        assert_eq!(got, vec![odd(1), odd(2)]);
    }

    #[test]
    fn a_datagram_goes_after_the_flush_period_or_at_255_records() {
        let mut batcher = Batcher::new(9, wire::MAX_DATAGRAM_LEN, 5);
        let t0 = Instant::now();
        let mut count = 0;
        batcher.push(record(1, 1024), t0, &mut |_, _| count += 1);
        batcher.push(record(2, 1024), t0 + Duration::from_millis(30), &mut |_, _| count += 1);
        batcher.flush_due(t0 + FLUSH_PERIOD - Duration::from_millis(1), &mut |_, _| count += 1);
        assert_eq!(count, 0, "the oldest record has not waited the period");
        let mut records = 0;
        batcher.flush_due(t0 + FLUSH_PERIOD, &mut |_, n| records += n);
        assert_eq!(records, 2);
        // 256 records fit 65535 bytes, but the header counts 255 at most.
        let mut sizes = Vec::new();
        for i in 0..256 {
            batcher.push(record(i, 1024), t0, &mut |_, n| sizes.push(n));
        }
        assert_eq!((sizes, batcher.pending()), (vec![255], 1));
    }

    #[test]
    fn the_bucket_admits_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 2, t0);
        assert!(bucket.take(t0) && bucket.take(t0));
        assert!(!bucket.take(t0), "the burst is spent");
        assert!(!bucket.take(t0 + Duration::from_millis(50)), "half a token");
        assert!(bucket.take(t0 + Duration::from_millis(100)));
        assert!(bucket.take(t0 + Duration::from_secs(60)) && bucket.take(t0 + Duration::from_secs(60)));
        assert!(!bucket.take(t0 + Duration::from_secs(60)), "an idle minute refills the burst, no more");
    }

    const SENDER: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 251);

    fn datagram(syncid: u8, records: &[Record]) -> Vec<u8> {
        let mut buf = vec![0; 1500];
        let mut writer = DatagramWriter::new(&mut buf, syncid).unwrap();
        for r in records {
            writer.push(r).unwrap();
        }
        let len = writer.finish();
        buf.truncate(len);
        buf
    }

    fn malformed(c: &BackupCounters) -> Vec<(&'static str, u64)> {
        Malformed::ALL.iter().map(|m| (m.name(), c.malformed[*m as usize].get())).filter(|(_, n)| *n != 0).collect()
    }

    /// `(received, mismatched, stale, records received, skipped, handed, queue full)`.
    fn tally(c: &BackupCounters) -> [u64; 7] {
        [
            c.datagrams_received.get(),
            c.syncid_mismatch.get(),
            c.stale.get(),
            c.records_received.get(),
            c.records_skipped.get(),
            c.records_handed.get(),
            c.worker_queue_full.get(),
        ]
    }

    #[test]
    fn each_record_reaches_the_worker_that_owns_it() {
        let (daemon_ends, workers) = queues(4);
        let mut receiver = BackupReceiver::new(7, daemon_ends.to_workers);
        let counters = BackupCounters::default();
        let net = NetView::default();
        receiver.receive(&datagram(7, &[record(1, 1027), record(2, 1026), record(3, 1030)]), SENDER, &net, &counters);
        assert_eq!(tally(&counters), [1, 0, 0, 3, 0, 3, 0]);
        let got: Vec<Vec<u16>> =
            workers.iter().map(|w| w.inbox.try_iter().map(|r| r.client_port()).collect()).collect();
        assert_eq!(got, vec![vec![], vec![], vec![2, 3], vec![1]]);
    }

    #[test]
    fn ipv6_records_travel_with_ipv4_ones_to_the_workers_that_own_them() {
        let mut batcher = Batcher::new(7, 1500 - IP_UDP_HEADERS, 5);
        let now = Instant::now();
        let records = [record(1, 1027), record6(2, 1026), record6(3, 1031), record(4, 1024)];
        let mut datagrams = Vec::new();
        for r in records {
            batcher.push(r, now, &mut |d, _| datagrams.push(d.to_vec()));
        }
        batcher.flush(&mut |d, _| datagrams.push(d.to_vec()));
        assert_eq!(datagrams.len(), 1, "one datagram holds both families");
        let (daemon_ends, workers) = queues(4);
        let mut receiver = BackupReceiver::new(7, daemon_ends.to_workers);
        let counters = BackupCounters::default();
        receiver.receive(&datagrams[0], SENDER, &NetView::default(), &counters);
        assert_eq!(tally(&counters), [1, 0, 0, 4, 0, 4, 0]);
        let got: Vec<Vec<Record>> = workers.iter().map(|w| w.inbox.try_iter().collect()).collect();
        assert_eq!(got, vec![vec![records[3]], vec![], vec![records[1]], vec![records[0], records[2]]]);
    }

    #[test]
    fn another_syncid_is_dropped_unless_the_backup_takes_any() {
        let (daemon_ends, workers) = queues(4);
        let counters = BackupCounters::default();
        let net = NetView::default();
        let mut strict = BackupReceiver::new(7, daemon_ends.to_workers.clone());
        strict.receive(&datagram(8, &[record(1, 1024)]), SENDER, &net, &counters);
        assert_eq!(tally(&counters), [1, 1, 0, 0, 0, 0, 0]);
        assert!(workers[0].inbox.try_recv().is_err());
        let mut any = BackupReceiver::new(0, daemon_ends.to_workers);
        any.receive(&datagram(8, &[record(1, 1024)]), SENDER, &net, &counters);
        any.receive(&datagram(255, &[record(2, 1024)]), SENDER, &net, &counters);
        assert_eq!(tally(&counters), [3, 1, 0, 2, 0, 2, 0]);
        assert_eq!(workers[0].inbox.try_iter().count(), 2);
    }

    #[test]
    fn a_malformed_datagram_is_dropped_whole_and_counted_by_reason() {
        let (daemon_ends, workers) = queues(4);
        let mut receiver = BackupReceiver::new(7, daemon_ends.to_workers);
        let counters = BackupCounters::default();
        let net = NetView::default();
        let good = datagram(7, &[record(1, 1024), record(2, 1024)]);
        let mut bad_version = good.clone();
        bad_version[5] = 2;
        let mut version0 = good.clone();
        version0[0] = 2;
        let mut longer = good.clone();
        longer.push(0);
        // The second record says it is 20 bytes long: the first is good, but not taken.
        let mut bad_record = good.clone();
        bad_record[8 + 44 + 3] = 20;
        // The first record's FNAT option says 5 bytes.
        let mut bad_option = good.clone();
        bad_option[8 + 36 + 1] = 5;
        for d in [&good[..3], &bad_version, &version0, &longer, &bad_record, &bad_option, &[][..]] {
            receiver.receive(d, SENDER, &net, &counters);
        }
        assert_eq!(
            malformed(&counters),
            vec![("truncated", 2), ("bad_version", 2), ("size_mismatch", 1), ("bad_record", 1), ("bad_option", 1)]
        );
        assert_eq!(tally(&counters), [7, 0, 0, 0, 0, 0, 0]);
        assert!(workers[0].inbox.try_recv().is_err(), "nothing of a malformed datagram is handed on");
    }

    #[test]
    fn a_record_that_cannot_be_read_alone_is_skipped_and_the_rest_taken() {
        let (daemon_ends, workers) = queues(4);
        let mut receiver = BackupReceiver::new(7, daemon_ends.to_workers);
        let counters = BackupCounters::default();
        let mut d = datagram(7, &[record(1, 1024), record(2, 1024), record(3, 1024)]);
        d[8 + 44 + 36] = 0x3f; // the second record's option is one nobody defined
        receiver.receive(&d, SENDER, &NetView::default(), &counters);
        assert_eq!(tally(&counters), [1, 0, 0, 3, 1, 2, 0]);
        assert_eq!(workers[0].inbox.try_iter().map(|r| r.client_port()).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn a_full_worker_queue_or_no_worker_drops_the_record() {
        let (tx, rx) = mpsc::sync_channel(1);
        let mut receiver = BackupReceiver::new(7, vec![tx]);
        let counters = BackupCounters::default();
        receiver.receive(&datagram(7, &[record(1, 1024), record(2, 1024)]), SENDER, &NetView::default(), &counters);
        assert_eq!(tally(&counters), [1, 0, 0, 2, 0, 1, 1]);
        assert_eq!(rx.try_recv().unwrap().client_port(), 1);
        let mut none = BackupReceiver::new(7, Vec::new());
        none.receive(&datagram(7, &[record(1, 1024)]), SENDER, &NetView::default(), &counters);
        assert_eq!(tally(&counters), [2, 0, 0, 3, 0, 1, 2]);
    }

    fn stamped(run: u32, number: u32, client_port: u16) -> Vec<u8> {
        let mut buf = vec![0; 1500];
        let mut writer = DatagramWriter::new(&mut buf, 7).unwrap().stamped(Stamp { run, number });
        writer.push(&record(client_port, 1024)).unwrap();
        let len = writer.finish();
        buf.truncate(len);
        buf
    }

    #[test]
    fn a_replayed_or_earlier_datagram_is_stale() {
        let (daemon_ends, workers) = queues(4);
        let mut receiver = BackupReceiver::new(7, daemon_ends.to_workers);
        let counters = BackupCounters::default();
        let net = NetView::default();
        let other = Ipv4Addr::new(192, 168, 1, 252);
        let cases = [
            (stamped(100, 5, 1), SENDER),
            (stamped(100, 5, 2), SENDER),               // the same stamp again: a replay
            (stamped(100, 5, 3), other),                // a replay from another address too
            (stamped(100, 4, 4), SENDER),               // an earlier number
            (stamped(200, 9, 5), other),                // another master's run counts apart
            (stamped(100, 7, 6), SENDER),               // a later one (6 was lost)
            (stamped(99, 1000, 7), SENDER),             // an earlier run of the sender
            (stamped(101, 0, 8), SENDER),               // the sender restarted
            (stamped(100, 8, 9), SENDER),               // then its previous run is over
            (datagram(7, &[record(10, 1024)]), SENDER), // unstamped (a kernel IPVS master's): taken
            (datagram(7, &[record(10, 1024)]), SENDER), // every time
        ];
        for (d, from) in &cases {
            receiver.receive(d, *from, &net, &counters);
        }
        assert_eq!(tally(&counters), [11, 0, 5, 6, 0, 6, 0]);
        let got: Vec<u16> = workers[0].inbox.try_iter().map(|r| r.client_port()).collect();
        assert_eq!(got, vec![1, 5, 6, 8, 10, 10]);
        // Runs pushed out by newer ones are forgotten: a replay of one is taken again.
        for run in 1000..1000 + STAMPS_KEPT as u32 {
            receiver.receive(&stamped(run, 0, 11), Ipv4Addr::new(10, 9, 9, 1), &net, &counters);
        }
        receiver.receive(&stamped(200, 9, 12), Ipv4Addr::new(10, 9, 9, 2), &net, &counters);
        assert_eq!(counters.stale.get(), 5);
        // One it keeps is still refused.
        receiver.receive(&stamped(1015, 0, 13), Ipv4Addr::new(10, 9, 9, 2), &net, &counters);
        assert_eq!(counters.stale.get(), 6);
    }

    #[test]
    fn runs_only_move_forward() {
        let (a, b) = (next_run(), next_run());
        assert!(b > a, "{a} then {b}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32;
        assert!(a >= now - 1, "a run is the time it started, in seconds: {a} at {now}");
    }

    fn spec(role: Role, ifname: &str, syncid: u8) -> DaemonSpec {
        DaemonSpec { role, mcast_interface: ifname.into(), syncid }
    }

    #[test]
    fn starting_twice_stopping_what_is_not_running_and_unknown_interfaces_are_refused() {
        let mut daemons = SyncDaemons::without_workers();
        let e = daemons.start(&spec(Role::Backup, "nosuchif0", 1)).unwrap_err();
        assert_eq!(e.to_string(), "no interface named \"nosuchif0\" for the sync daemon");
        assert!(matches!(daemons.start(&spec(Role::Master, "", 1)), Err(SyncError::NoDevice { .. })));
        assert!(matches!(
            daemons.start(&spec(Role::Master, "an-interface-name-too-long", 1)),
            Err(SyncError::NoDevice { .. })
        ));
        let e = daemons.stop(Role::Master).unwrap_err();
        assert_eq!(e.to_string(), "no master sync daemon is running");
        daemons.start(&spec(Role::Master, "lo", 7)).unwrap();
        assert!(daemons.switch.is_on(), "a master turns the workers' syncing on");
        let e = daemons.start(&spec(Role::Master, "lo", 8)).unwrap_err();
        assert_eq!(e.to_string(), "a master sync daemon is already running (mcast=lo, syncid=7)");
        daemons.start(&spec(Role::Backup, "lo", 0)).unwrap();
        assert_eq!(daemons.running(), vec![spec(Role::Master, "lo", 7), spec(Role::Backup, "lo", 0)]);
        assert_eq!(daemons.stop(Role::Master).unwrap(), spec(Role::Master, "lo", 7));
        assert!(!daemons.switch.is_on());
        assert_eq!(daemons.running(), vec![spec(Role::Backup, "lo", 0)]);
        assert!(matches!(daemons.stop(Role::Master), Err(SyncError::NotRunning { role: Role::Master })));
        daemons.start(&spec(Role::Master, "lo", 9)).unwrap();
        daemons.stop_all();
        assert!(daemons.running().is_empty());
    }

    /// A network namespace of the test's own, removed when dropped (a failed test too).
    struct TestNetns(String);

    impl TestNetns {
        fn new(what: &str) -> TestNetns {
            let name = format!("gwsync-{what}-{}", std::process::id());
            let ip = |args: &[&str]| {
                let status = std::process::Command::new("ip").args(args).status().expect("ip(8) runs");
                assert!(status.success(), "ip {args:?}: {status}");
            };
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &name])
                .stderr(std::process::Stdio::null())
                .status();
            ip(&["netns", "add", &name]);
            let ns = TestNetns(name);
            ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
            ns
        }

        /// Moves the calling thread into the namespace.
        fn enter(&self) {
            let fd = std::fs::File::open(format!("/run/netns/{}", self.0)).expect("the namespace's file");
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&fd),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
        }
    }

    impl Drop for TestNetns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    /// A master and a backup exchange records over real sockets, on the loopback interface
    /// of a network namespace of the test's own.
    #[test]
    fn a_master_and_a_backup_exchange_records_over_multicast() {
        let ns = TestNetns::new("exchange");
        // setns moves one thread only: this test's own, not the harness's.
        let thread = std::thread::spawn(move || {
            ns.enter();
            let (master_ends, master_workers) = queues(2);
            let mut master = SyncDaemons::new(master_ends, Arc::default());
            let (backup_ends, backup_workers) = queues(4);
            let mut backup = SyncDaemons::new(backup_ends, Arc::default());
            backup.start(&spec(Role::Backup, "lo", 7)).unwrap();
            master.start(&spec(Role::Master, "lo", 7)).unwrap();
            let queued = WorkerSyncCounters::default();
            // A third of them IPv6, in the same datagrams.
            let records: Vec<Record> = (0..100)
                .map(|i| if i % 3 == 0 { record6(5000 + i, 1024 + i) } else { record(5000 + i, 1024 + i) })
                .collect();
            for r in &records {
                master_workers[usize::from(r.client_port() % 2)].push(*r, &queued);
            }
            assert_eq!(queued.queued.get(), 100);
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut got: Vec<Vec<Record>> = vec![Vec::new(); 4];
            while got.iter().map(Vec::len).sum::<usize>() < records.len() && Instant::now() < deadline {
                for (w, queues) in backup_workers.iter().enumerate() {
                    got[w].extend(queues.inbox.try_iter());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            for (w, records) in got.iter().enumerate() {
                assert_eq!(records.len(), 25, "worker {w}");
                assert!(records.iter().all(|r| r.local_port().unwrap() % 4 == w as u16), "worker {w}");
            }
            let mut all: Vec<Record> = got.concat();
            all.sort_by_key(|r| r.client_port());
            assert_eq!(all, records);
            let (master_counters, backup_counters) = (Arc::clone(master.counters()), Arc::clone(backup.counters()));
            let (m, b) = (&master_counters.master, &backup_counters.backup);
            assert_eq!((m.records_sent.get(), m.send_errors.get(), m.rate_dropped.get()), (100, 0, 0));
            // Batched: a datagram holds what the workers queued between two polls.
            assert!((1..50).contains(&m.datagrams_sent.get()), "{} datagrams", m.datagrams_sent.get());
            assert_eq!(b.datagrams_received.get(), m.datagrams_sent.get());
            assert_eq!((b.records_received.get(), b.records_handed.get()), (100, 100));
            // Stopping a master sends what the workers had queued, however recently.
            for port in 6000..6005 {
                master_workers[0].push(record(port, 1024), &queued);
            }
            master.stop(Role::Master).unwrap();
            assert_eq!(m.records_sent.get(), 105, "sent before the stop returned");
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.records_handed.get() < 105 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut last: Vec<u16> = backup_workers[0].inbox.try_iter().map(|r| r.client_port()).collect();
            last.sort_unstable();
            assert_eq!(last, (6000..6005).collect::<Vec<u16>>());
            // Started again (a new run, within the same second): taken.
            master.start(&spec(Role::Master, "lo", 7)).unwrap();
            master_workers[1].push(record(7000, 1024), &queued);
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.records_handed.get() < 106 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!((b.records_handed.get(), b.stale.get()), (106, 0));
            assert_eq!(backup_workers[0].inbox.try_recv().map(|r| r.client_port()), Ok(7000));
            // Another syncid is not taken. (The master's loopback is off, but `lo` reflects
            // what is sent out of it, so a backup of the master's namespace would read it
            // here, unlike on the kernel interface of a director.)
            master.stop(Role::Master).unwrap();
            master.start(&spec(Role::Master, "lo", 8)).unwrap();
            master_workers[0].push(record(1, 1024), &queued);
            let deadline = Instant::now() + Duration::from_secs(10);
            while b.syncid_mismatch.get() == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(b.syncid_mismatch.get(), 1);
            assert_eq!(b.records_handed.get(), 106);
            assert!(backup_workers.iter().all(|w| w.inbox.try_recv().is_err()));
        });
        thread.join().unwrap();
    }
}
