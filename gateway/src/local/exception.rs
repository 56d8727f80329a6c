//! The exception loop: the one thread that carries packets between the
//! workers, the kernel interfaces and the data ports (DESIGN.md, "The
//! gateway's own traffic").
//!
//! Toward the kernel, the workers' frames arrive on two rings shared by all
//! of them, by [`KernelClass`]: each turn takes all the control ring holds
//! when the turn starts, then at most [`BULK_BURSTS_PER_TURN`] bursts of the
//! bulk ring, so a flood at the gateway's address (bulk) never delays ARP,
//! VRRP or BGP. Each frame goes to
//! the kernel interface of the port it arrived on (`mbuf.port()`). What the
//! kernel sends leaves by its data port's own extra tx queue (index = number
//! of workers), which no worker touches. A port whose driver pairs rx and tx
//! queues (`net_tap`, `net_af_packet`) has an extra rx queue as well, which
//! its peer's flows hash to like any other: the loop polls it and hands what
//! arrives to a worker over that worker's redirect ring, as another worker
//! would.
//!
//! It runs on a plain thread, not an EAL lcore, beside the main lcore's
//! control thread: DPDK's rx and tx bursts need only that no other thread use
//! the same queue, and the mbuf pool's get and put take the pool's
//! multi-producer, multi-consumer ring when the caller has no lcore cache,
//! so nothing here needs an lcore id. With nothing to carry, it backs off
//! ([`IdleBackoff`]) to at most a millisecond's sleep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::kernel_iface::KernelIface;
use crate::dpdk::{Burst, FenceWorker, RingReceiver, RingSender, RxQueue, TxQueue};
use crate::net::KernelClass;
use crate::worker::idle::IdleBackoff;
use crate::worker::Counter;

/// Bursts taken from the bulk ring per turn, after the whole control ring:
/// 256 frames, so a turn stays short and the kernel's replies and the control
/// ring are served again soon under a flood.
pub const BULK_BURSTS_PER_TURN: usize = 8;

/// One data port's exception-path counters; the exception loop is their one writer.
#[derive(Debug, Default)]
pub struct ExceptionCounters {
    /// Frames handed to the kernel interface.
    pub to_kernel: Counter,
    /// Frames the kernel sent that left by the data port.
    pub from_kernel: Counter,
    /// Toward the kernel, refused by the tap (its queue or the kernel's backlog full).
    pub tap_full: Counter,
    /// From the kernel, refused by the data port's tx queue.
    pub port_full: Counter,
    /// Frames for the kernel interface of a port that has none.
    pub no_kernel: Counter,
    /// Received on the port's extra rx queue, refused by the worker's redirect ring.
    pub relay_full: Counter,
}

impl ExceptionCounters {
    /// The drops by name, in a fixed order (for `gwctl link` and the metrics).
    pub fn drops(&self) -> [(&'static str, u64); 4] {
        [
            ("tap_full", self.tap_full.get()),
            ("port_full", self.port_full.get()),
            ("no_kernel", self.no_kernel.get()),
            ("relay_full", self.relay_full.get()),
        ]
    }
}

/// One data port with a kernel interface, as the loop serves it.
pub struct KernelPath {
    /// The data port's DPDK id (what `mbuf.port()` says of its frames).
    pub port: u16,
    pub iface: KernelIface,
    /// The data port's extra tx queue, for what the kernel sends.
    pub out: TxQueue,
    /// The data port's extra rx queue, when its driver pairs queues, and the
    /// redirect ring of the worker that processes what arrives on it.
    pub relay: Option<(RxQueue, RingSender)>,
}

/// Everything the exception loop owns.
pub struct ExceptionLoop {
    /// The workers' frames, indexed by [`KernelClass::index`].
    pub rings: [RingReceiver; 2],
    pub paths: Vec<KernelPath>,
    /// Every data port's counters, indexed by DPDK port id.
    pub counters: Vec<Arc<ExceptionCounters>>,
    /// Its side of the I/O fence, when a data port needs one: it transmits on
    /// data ports like a worker.
    pub fence: Option<FenceWorker>,
}

impl ExceptionLoop {
    /// Starts the loop on a thread of its own; it returns when `stop` is set,
    /// dropping its queues (the kernel interfaces go with their ports) and
    /// every mbuf it still holds.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("gw-exception".into()).spawn(move || self.run(&stop))
    }

    /// The loop itself (see the module docs).
    pub fn run(self, stop: &AtomicBool) {
        let ExceptionLoop { rings: [mut control, mut bulk], mut paths, counters, mut fence } = self;
        debug_assert_eq!((KernelClass::Control.index(), KernelClass::Bulk.index()), (0, 1));
        let ports = counters.len().max(paths.iter().map(|p| usize::from(p.port) + 1).max().unwrap_or(0));
        let mut by_port: Vec<Option<usize>> = vec![None; ports];
        for (i, path) in paths.iter().enumerate() {
            by_port[usize::from(path.port)] = Some(i);
        }
        let mut taps = Taps { paths: &mut paths, by_port, counters: &counters };
        // Frames waiting for each path's tap, filled from the rings.
        let mut pending: Vec<Burst> = taps.paths.iter().map(|_| Burst::new()).collect();
        let mut burst = Burst::new();
        let mut backoff = IdleBackoff::default();
        while !stop.load(Ordering::Relaxed) {
            // A test build can make the loop panic here
            // (FAILPOINTS=exception-loop=panic(..)); a release has no failpoints.
            #[cfg(feature = "failpoints")]
            fail::fail_point!("exception-loop");
            if let Some(fence) = &mut fence {
                if !fence.may_poll() {
                    backoff.rest_after(false);
                    continue;
                }
            }
            let mut worked = false;
            // All the control ring holds now, not what keeps arriving: the
            // workers' rate limit bounds it, this bounds the turn regardless.
            let mut control_left = control.len();
            while control_left > 0 {
                let n = control.recv_burst(&mut burst);
                if n == 0 {
                    break;
                }
                control_left = control_left.saturating_sub(n);
                worked = true;
                taps.sort(&mut burst, &mut pending);
            }
            for _ in 0..BULK_BURSTS_PER_TURN {
                if bulk.recv_burst(&mut burst) == 0 {
                    break;
                }
                worked = true;
                taps.sort(&mut burst, &mut pending);
            }
            for (i, waiting) in pending.iter_mut().enumerate() {
                taps.send(i, waiting);
            }
            for path in taps.paths.iter_mut() {
                if path.iface.rx.rx_burst(&mut burst) == 0 {
                    continue;
                }
                worked = true;
                let counters = &counters[usize::from(path.port)];
                counters.from_kernel.add(path.out.tx_burst(&mut burst) as u64);
                counters.port_full.add(burst.clear() as u64);
            }
            for path in taps.paths.iter_mut() {
                let Some((rx, ring)) = &mut path.relay else { continue };
                if rx.rx_burst(&mut burst) == 0 {
                    continue;
                }
                worked = true;
                ring.send_burst(&mut burst);
                counters[usize::from(path.port)].relay_full.add(burst.clear() as u64);
            }
            backoff.rest_after(worked);
        }
    }
}

/// The kernel interfaces as the frames from the rings find them.
struct Taps<'a> {
    paths: &'a mut [KernelPath],
    /// Index into `paths` by data port id.
    by_port: Vec<Option<usize>>,
    counters: &'a [Arc<ExceptionCounters>],
}

impl Taps<'_> {
    /// Moves each frame of `burst` to the pending burst of its port's tap,
    /// sending a pending burst that is full; counts and frees a frame for a
    /// port with no kernel interface.
    fn sort(&mut self, burst: &mut Burst, pending: &mut [Burst]) {
        for m in burst.drain() {
            let port = usize::from(m.port());
            let Some(i) = self.by_port.get(port).copied().flatten() else {
                // Every frame a worker has comes from a data port, so has counters.
                if let Some(counters) = self.counters.get(port) {
                    counters.no_kernel.inc();
                }
                continue;
            };
            if pending[i].is_full() {
                self.send(i, &mut pending[i]);
            }
            // Room was just made.
            let _ = pending[i].push(m);
        }
    }

    /// Sends `waiting` to path `i`'s tap; what it refuses is counted and freed.
    fn send(&mut self, i: usize, waiting: &mut Burst) {
        if waiting.is_empty() {
            return;
        }
        let path = &mut self.paths[i];
        let counters = &self.counters[usize::from(path.port)];
        counters.to_kernel.add(path.iface.tx.tx_burst(waiting) as u64);
        counters.tap_full.add(waiting.clear() as u64);
    }
}
