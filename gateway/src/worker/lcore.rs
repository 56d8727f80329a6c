//! The poll loop of one worker lcore: the pipeline fed from DPDK queues.
//!
//! Per iteration: take a newly published configuration if there is one,
//! apply neighbour updates from the other workers, receive a burst on every
//! port's queue and run each packet through the pipeline, then the packets
//! other workers redirected here, then flush what the pipeline queued for
//! transmission and redirection. Connections expire every iteration (a
//! bounded slice each); the other timers run once per second. With
//! `"idle": "sleep"`, an iteration that received nothing and queued nothing
//! is idle, and a run of them backs off
//! ([`IdleBackoff`](super::idle::IdleBackoff)); the heartbeat and the
//! control plane's poll still come every iteration, so the watchdog sees a
//! resting worker beat and configuration changes apply within a pause.
//! Each poll's cycles are counted busy or idle, and the busy ones' pipeline
//! and sending apart ([`PollCycles`](super::counters::PollCycles)).
//!
//! Two things can keep a worker off its ports. A port whose link is down
//! ([`DownPorts`], kept by the control thread from the driver's link state)
//! is neither polled nor fed: what the pipeline sends to it is dropped as
//! `link_down`. And where a PMD tears ports down from the EAL interrupt
//! thread (net_memif), the worker touches no port while the
//! [`IoFence`](crate::dpdk::IoFence) is closed. Both are read once per loop
//! iteration. Nothing here
//! allocates or locks per packet: bursts are fixed arrays, redirect rings are
//! DPDK rings, and neighbour updates ride bounded std channels (lock-free
//! `try_send`/`try_recv`), touched only when a neighbour changes.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use super::counters::{Counter, Discard, WorkerCounters};
use super::idle::IdleMode;
use super::pipeline::{FrameBurst, Io, Worker, STAGE};
use super::watchdog::Liveness;
use crate::dpdk::{self, Burst, FenceWorker, Mbuf, Mempool, RingReceiver, RingSender, RxQueue, TxQueue};
use crate::net::route::port_is_down;
use crate::net::KernelClass;
use crate::wire::MacAddr;

/// A neighbour one worker learned, for the others.
pub type NeighbourUpdate = (IpAddr, MacAddr, u16);

/// The most neighbour updates one iteration collects before sending.
const MAX_UPDATES: usize = 64;

/// The ports whose link is down, as one bit per port id (ports 0 to 63; a
/// port with a higher id is never marked). The control thread writes it when
/// a link changes; workers read it once per loop iteration.
#[derive(Debug, Default)]
pub struct DownPorts(AtomicU64);

impl DownPorts {
    /// Marks `port` down or usable; returns whether that changed anything.
    pub fn set(&self, port: u16, down: bool) -> bool {
        let Some(bit) = 1u64.checked_shl(u32::from(port)) else { return false };
        let old =
            if down { self.0.fetch_or(bit, Ordering::Release) } else { self.0.fetch_and(!bit, Ordering::Release) };
        (old & bit != 0) != down
    }

    /// The current set: bit `p` is port `p`.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// This worker's rings toward the main lcore's exception path, one per
/// [`KernelClass`] (indexed by [`KernelClass::index`]); the main lcore
/// drains the control ring first.
pub struct KernelRings(pub [RingSender; 2]);

/// This worker's rings to and from the health checker's prober (see
/// [`crate::net::probe`]): probes to send come in on a ring of its own, the
/// replies go out on one all workers share.
pub struct ProbeRings {
    pub from_prober: RingReceiver,
    pub to_prober: RingSender,
}

/// Everything one worker lcore owns.
pub struct LcoreWorker {
    pub worker: Worker<Mbuf>,
    /// (port id, this worker's rx queue on it).
    pub rx: Vec<(u16, RxQueue)>,
    /// (port id, this worker's tx queue on it).
    pub tx: Vec<(u16, TxQueue)>,
    /// Packets other workers redirected to this one.
    pub redirect_in: RingReceiver,
    /// Toward each worker, by id (`None` for this one).
    pub redirect_out: Vec<Option<RingSender>>,
    pub neighbours_in: Receiver<NeighbourUpdate>,
    pub neighbours_out: Vec<SyncSender<NeighbourUpdate>>,
    pub pool: Mempool,
    /// The TSC value every worker counts its seconds from, so all agree on
    /// the time (SYN cookies minted on one worker are checked on another).
    pub epoch: u64,
    /// The heartbeat the main lcore's watchdog reads.
    pub liveness: Arc<Liveness>,
    /// Ports not to poll or feed.
    pub down_ports: Arc<DownPorts>,
    /// This worker's side of the I/O fence, when a port needs one.
    pub fence: Option<FenceWorker>,
    /// Toward the kernel interfaces, when any port has one.
    pub kernel: Option<KernelRings>,
    /// To and from the prober.
    pub probes: ProbeRings,
    /// What an iteration with nothing to do is followed by.
    pub idle: IdleMode,
}

/// Whole seconds since `epoch`, counted from 1, at TSC value `tsc`. A TSC
/// behind the epoch (the epoch was read on the main lcore; TSCs of two cores
/// need not agree to the cycle) counts as the epoch itself.
// A DPDK burst fits one pass of the pipeline's stages (`take_front` below).
const _: () = assert!(dpdk::BURST_SIZE <= STAGE);

/// A received burst, taken whole by the worker's staged pipeline.
impl FrameBurst<Mbuf> for Burst {
    fn frames(&self) -> &[Mbuf] {
        self.as_slice()
    }
    /// Takes every mbuf: a burst holds at most [`STAGE`] (the pipeline's
    /// stage), so `n` is always its length.
    fn take_front(&mut self, n: usize) -> impl Iterator<Item = Mbuf> {
        debug_assert_eq!(n, self.len());
        self.drain()
    }
}

/// Drops the frames chained over several mbufs (jumbo frames are not
/// forwarded), counted; the others stay in order.
#[cold]
#[inline(never)]
fn drop_chained(burst: &mut Burst, counters: &WorkerCounters) {
    let mut kept = Burst::new();
    for m in burst.drain() {
        if m.segments() == 1 {
            let _ = kept.push(m);
        } else {
            counters.count(Discard::Wire(crate::wire::DropReason::NoRoom));
        }
    }
    std::mem::swap(burst, &mut kept);
}

pub fn seconds_since(epoch: u64, tsc: u64, hz: u64) -> u32 {
    1u32.saturating_add((tsc.saturating_sub(epoch) / hz.max(1)).min(u64::from(u32::MAX)) as u32)
}

/// Runs `f`, adding the cycles it took to `spent` (two reads of the cycle
/// counter: for a burst, not for a packet).
#[inline(always)]
fn timed<T>(spent: &Counter, f: impl FnOnce() -> T) -> T {
    let start = dpdk::rdtsc();
    let out = f();
    spent.add(dpdk::rdtsc().wrapping_sub(start));
    out
}

/// Where one queue of outgoing frames goes: a port's tx queue or a ring
/// toward another worker.
trait Outlet {
    /// Hands over what it can from the front of `burst`; the rest stays.
    fn take(&mut self, burst: &mut Burst);
}

impl Outlet for TxQueue {
    fn take(&mut self, burst: &mut Burst) {
        self.tx_burst(burst);
    }
}

impl Outlet for RingSender {
    fn take(&mut self, burst: &mut Burst) {
        self.send_burst(burst);
    }
}

/// Frames queued toward one outlet, flushed when the burst fills and at the
/// end of every loop iteration; what the outlet refuses is counted and freed.
struct OutletQueue<O> {
    outlet: O,
    burst: Burst,
    refused: Discard,
}

impl<O: Outlet> OutletQueue<O> {
    fn new(outlet: O, refused: Discard) -> Self {
        OutletQueue { outlet, burst: Burst::new(), refused }
    }

    fn flush(&mut self, counters: &WorkerCounters) {
        if !self.burst.is_empty() {
            self.outlet.take(&mut self.burst);
            counters.drops[self.refused.index()].add(self.burst.clear() as u64);
        }
    }

    fn push(&mut self, frame: Mbuf, counters: &WorkerCounters) {
        if self.burst.is_full() {
            self.flush(counters);
        }
        // A flush always empties the burst.
        let _ = self.burst.push(frame);
    }
}

struct LcoreIo<'a> {
    /// Indexed by port id (`None` for ids this gateway did not open).
    tx: &'a mut [Option<OutletQueue<TxQueue>>],
    /// Indexed by worker id (`None` for this worker).
    redirect: &'a mut [Option<OutletQueue<RingSender>>],
    pool: &'a Mempool,
    learned: &'a mut Vec<NeighbourUpdate>,
    counters: &'a WorkerCounters,
    /// [`DownPorts`] as this iteration read it.
    down: u64,
    /// Toward the main lcore's exception path, by [`KernelClass::index`].
    kernel: &'a mut [OutletQueue<RingSender>],
    /// Toward the prober.
    prober: &'a mut OutletQueue<RingSender>,
    /// Whether this iteration queued a frame toward any outlet.
    queued: bool,
}

impl LcoreIo<'_> {
    fn flush(&mut self) {
        for out in self.tx.iter_mut().flatten() {
            out.flush(self.counters);
        }
        for out in self.redirect.iter_mut().flatten() {
            out.flush(self.counters);
        }
        for out in self.kernel.iter_mut() {
            out.flush(self.counters);
        }
        self.prober.flush(self.counters);
    }
}

impl Io<Mbuf> for LcoreIo<'_> {
    fn send(&mut self, port: u16, frame: Mbuf) {
        if port_is_down(self.down, port) {
            return self.counters.count(Discard::LinkDown);
        }
        self.queued = true;
        match self.tx.get_mut(usize::from(port)) {
            Some(Some(out)) => out.push(frame, self.counters),
            _ => self.counters.count(Discard::NoRoute),
        }
    }

    fn redirect(&mut self, worker: u16, frame: Mbuf) {
        self.queued = true;
        match self.redirect.get_mut(usize::from(worker)) {
            Some(Some(out)) => out.push(frame, self.counters),
            _ => self.counters.count(Discard::NoOwner),
        }
    }

    fn free(&mut self, frame: Mbuf) {
        drop(frame);
    }

    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    fn neighbour_learned(&mut self, ip: IpAddr, mac: MacAddr, port: u16) {
        if self.learned.len() < MAX_UPDATES {
            self.learned.push((ip, mac, port));
        }
    }

    fn to_kernel(&mut self, _port: u16, frame: Mbuf, class: KernelClass) {
        // The frame keeps its rx port id (mbuf.port): the main lcore sends it
        // to that port's kernel interface.
        self.queued = true;
        match self.kernel.get_mut(class.index()) {
            Some(out) => out.push(frame, self.counters),
            None => self.counters.count(Discard::NoKernel),
        }
    }

    fn to_prober(&mut self, frame: Mbuf) {
        self.queued = true;
        self.prober.push(frame, self.counters);
    }
}

impl LcoreWorker {
    /// Runs until `stop` is set. `poll_control(worker, now)` is called once per
    /// iteration: it switches the worker when the control plane published a
    /// change and answers the control plane's questions.
    pub fn run(self, stop: Arc<AtomicBool>, mut poll_control: impl FnMut(&mut Worker<Mbuf>, u32)) {
        let LcoreWorker {
            mut worker,
            mut rx,
            tx,
            redirect_in,
            redirect_out,
            neighbours_in,
            neighbours_out,
            pool,
            epoch,
            down_ports,
            mut fence,
            liveness,
            kernel,
            probes,
            idle,
        } = self;
        let mut redirect_in = redirect_in;
        let ports = tx.iter().map(|(p, _)| usize::from(*p) + 1).max().unwrap_or(0);
        let mut by_port: Vec<Option<OutletQueue<TxQueue>>> = (0..ports).map(|_| None).collect();
        for (port, queue) in tx {
            by_port[usize::from(port)] = Some(OutletQueue::new(queue, Discard::TxFull));
        }
        let mut tx = by_port;
        let mut redirect: Vec<Option<OutletQueue<RingSender>>> =
            redirect_out.into_iter().map(|r| r.map(|r| OutletQueue::new(r, Discard::RedirectFull))).collect();
        let mut kernel: Vec<OutletQueue<RingSender>> = kernel
            .map(|KernelRings(rings)| rings.map(|r| OutletQueue::new(r, Discard::KernelQueueFull)).into())
            .unwrap_or_default();
        let ProbeRings { mut from_prober, to_prober } = probes;
        let mut to_prober = OutletQueue::new(to_prober, Discard::ProbeQueueFull);
        let mut learned = Vec::with_capacity(MAX_UPDATES);
        let counters = worker.counters().clone();
        let hz = dpdk::tsc_hz();
        let mut last_tick = 0u32;
        let mut burst = Burst::new();
        let mut backoff = idle.backoff();
        let cycles = &counters.poll;
        cycles.hz.set(hz);
        // The previous poll: when it started and whether it moved anything.
        let mut poll_started = dpdk::rdtsc();
        let mut worked = false;

        while !stop.load(Ordering::Relaxed) {
            // The clock's one read a poll also ends the previous poll's
            // accounting, whichever way it ended (a closed fence `continue`s).
            let started = dpdk::rdtsc();
            let previous = started.wrapping_sub(poll_started);
            if worked { &cycles.busy } else { &cycles.idle }.add(previous);
            (poll_started, worked) = (started, false);
            liveness.beat();
            // A test build can make a worker panic or stall here
            // (FAILPOINTS=worker-poll=panic(..) or sleep(ms)); a release has no failpoints.
            #[cfg(feature = "failpoints")]
            fail::fail_point!("worker-poll");
            let now = seconds_since(epoch, started, hz);
            poll_control(&mut worker, now);
            worker.take_synced(now);
            if fence.as_mut().is_some_and(|f| !f.may_poll()) {
                continue;
            }
            let down = down_ports.get();
            worker.follow_links(down);
            let mut io = LcoreIo {
                tx: &mut tx,
                redirect: &mut redirect,
                pool: &pool,
                learned: &mut learned,
                counters: &counters,
                down,
                kernel: &mut kernel,
                prober: &mut to_prober,
                queued: false,
            };
            let mut received = false;
            while let Ok((ip, mac, port)) = neighbours_in.try_recv() {
                received = true;
                worker.learn_neighbour(ip, mac, port, now, &mut io);
            }
            for (port, queue) in rx.iter_mut() {
                if port_is_down(down, *port) || queue.rx_burst(&mut burst) == 0 {
                    continue;
                }
                received = true;
                if burst.as_slice().iter().any(|m| m.segments() != 1) {
                    drop_chained(&mut burst, &counters);
                }
                timed(&cycles.pipeline, || worker.process_burst(&mut burst, *port, now, &mut io));
                cycles.bursts.inc();
            }
            if redirect_in.recv_burst(&mut burst) > 0 {
                received = true;
                timed(&cycles.pipeline, || worker.process_redirected_burst(&mut burst, Mbuf::port, now, &mut io));
                cycles.bursts.inc();
            }
            if from_prober.recv_burst(&mut burst) > 0 {
                received = true;
                for m in burst.drain() {
                    worker.send_probe(m, now, &mut io);
                }
            }
            if now != last_tick {
                last_tick = now;
                worker.tick(now, &mut io);
            } else {
                worker.expire(now);
            }
            if io.queued {
                timed(&cycles.send, || io.flush());
            } else {
                io.flush();
            }
            worked = received || io.queued;
            for update in learned.drain(..) {
                for peer in &neighbours_out {
                    // A full channel drops the update; the peer resolves by ARP.
                    let _ = peer.try_send(update);
                }
            }
            if let Some(backoff) = backoff.as_mut() {
                backoff.rest_after(worked);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_runs_backwards_or_overflows() {
        let hz = 2_000_000_000;
        assert_eq!(seconds_since(1_000, 1_000, hz), 1);
        assert_eq!(seconds_since(1_000, 1_000 + 3 * hz, hz), 4);
        // A TSC a few cycles behind the epoch (read on another core) is the epoch.
        assert_eq!(seconds_since(1_000, 990, hz), 1);
        assert_eq!(seconds_since(u64::MAX, 0, hz), 1);
        assert_eq!(seconds_since(0, u64::MAX, 1), u32::MAX);
        assert_eq!(seconds_since(0, 5, 0), 6, "a zero frequency does not divide by zero");
    }

    #[test]
    fn down_ports_are_marked_and_cleared_one_by_one() {
        let down = DownPorts::default();
        assert!(!port_is_down(down.get(), 0), "every port starts usable");
        assert!(down.set(3, true), "a change");
        assert!(!down.set(3, true), "no change the second time");
        assert!(down.set(0, true));
        assert!(port_is_down(down.get(), 3) && port_is_down(down.get(), 0) && !port_is_down(down.get(), 1));
        assert!(down.set(3, false));
        assert!(!port_is_down(down.get(), 3) && port_is_down(down.get(), 0), "only port 3 came back");
        assert!(down.set(63, true) && port_is_down(down.get(), 63));
        // Port ids past the set's 64 bits are never marked, so never skipped.
        assert!(!down.set(64, true));
        assert!(!port_is_down(down.get(), 64) && !port_is_down(u64::MAX, 200));
    }
}
