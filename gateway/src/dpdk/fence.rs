//! Keeping the workers out of port I/O while the EAL interrupt thread works.
//!
//! Why. Some PMDs tear a port's data path down from the EAL interrupt thread,
//! with nothing that orders it against the lcores polling the port. net_memif
//! (DPDK 22.11) is one: when its peer leaves (a clean exit sends a disconnect
//! message, a killed peer closes the control socket), the interrupt thread's
//! `memif_disconnect` clears the port's connected flag and at once unmaps the
//! shared regions that hold the rings and packet buffers. A worker that had
//! passed the flag check at the top of `eth_memif_rx`/`eth_memif_tx` (or was
//! preempted just after it, which two busy cores make likely) then reads or
//! writes unmapped memory: SIGSEGV in the worker, inside the PMD. The PMD
//! raises no link-state event before it unmaps (it has no LSC interrupt
//! support) and takes no lock the data path could share, so nothing done on
//! the application's own threads can order the two. The one thing the
//! application can hold is the interrupt thread itself.
//!
//! How. An EAL alarm callback, which runs on the interrupt thread, is the only
//! time workers may touch ports: it opens the fence, sleeps for `hold` (the
//! interrupt thread does nothing else meanwhile), closes the fence, waits until
//! every worker has finished the loop iteration it was in, re-arms itself and
//! returns. The interrupt thread then handles what arrived meanwhile (memif
//! connects and disconnects among it) while no worker is inside a burst
//! function, and comes back to the callback at the next alarm. So the
//! interrupt thread runs anything other than this callback only while the
//! fence is closed and acknowledged.
//!
//! Cost: interrupt handling waits up to `hold` (a memif connection, a few
//! messages each way, takes a few holds), and workers skip one turn of the
//! interrupt thread, usually microseconds, every `hold`. Per loop iteration a
//! worker reads one shared atomic and writes its own acknowledgement only
//! when the phase changed. `gatewayd` uses a fence only when a port's driver
//! tears down this way (see [`needs_fence`]).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{strerror, DpdkError, Eal, EalRef};

/// An acknowledgement meaning "this worker polls no port any more".
const LEFT: u64 = u64::MAX;

/// How soon the callback comes back after it returned, in microseconds: long
/// enough for the EAL's alarm loop to go back to epoll (it reruns alarms that
/// are already due without looking at other events), short enough that the
/// workers' pause stays a blip.
const TURN_US: u64 = 50;

/// One worker's acknowledgement, on a cache line of its own.
#[repr(align(64))]
struct Ack(AtomicU64);

struct Shared {
    /// Even: workers may poll ports; odd: they may not. Only the callback changes it.
    phase: AtomicU64,
    /// Per worker: the last phase it saw at the top of a loop iteration, or [`LEFT`].
    acks: Box<[Ack]>,
    hold: Duration,
    stop: AtomicBool,
}

/// Whether the interrupt thread may proceed: every worker saw `phase` (or left).
fn all_acknowledged(shared: &Shared, phase: u64) -> bool {
    shared.acks.iter().all(|a| {
        let ack = a.0.load(Ordering::Acquire);
        ack == phase || ack == LEFT
    })
}

/// The alarm callback: the workers' turn, then the interrupt thread's.
extern "C" fn turn(arg: *mut c_void) {
    // SAFETY: `arg` is the pointer `IoFence::new` made with Arc::into_raw; the
    // Arc is released only after rte_eal_alarm_cancel has returned, which
    // waits for a running callback and removes a pending one.
    let shared = unsafe { &*(arg as *const Shared) };
    if shared.stop.load(Ordering::Acquire) {
        return;
    }
    // Open: the phase becomes even.
    shared.phase.fetch_add(1, Ordering::AcqRel);
    let until = Instant::now() + shared.hold;
    while Instant::now() < until && !shared.stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1).min(shared.hold));
    }
    // Close, and wait until no worker is inside a burst function.
    let closed = shared.phase.fetch_add(1, Ordering::AcqRel) + 1;
    // Workers drop their handles when they stop, so this ends; `stop` ends
    // it too when the fence goes before its workers ever ran (start-up errors).
    while !all_acknowledged(shared, closed) && !shared.stop.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    if !shared.stop.load(Ordering::Acquire) {
        // SAFETY: `turn` has the signature rte_eal_alarm_set wants; `arg`
        // stays valid until the alarm is cancelled (see above). Re-arming
        // from inside the callback is allowed.
        let ret = unsafe { dpdk_sys::rte_eal_alarm_set(TURN_US, Some(turn), arg) };
        if ret != 0 {
            // Without the alarm, workers would wait for ever; let them run
            // unfenced rather than stop the gateway, and say so.
            eprintln!("gatewayd: the I/O fence cannot re-arm ({}); ports are polled unfenced", strerror(ret));
            shared.phase.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Gates the workers' port I/O to the times the EAL interrupt thread is
/// held (see the module docs). Workers start fenced: they poll nothing until
/// the first turn, shortly after [`IoFence::new`].
pub struct IoFence {
    shared: Arc<Shared>,
    /// The pointer the alarm carries (one strong count of `shared`).
    raw: *const Shared,
    _eal: EalRef,
}

// SAFETY: `raw` is only an owned Arc count, released once in Drop; everything
// it points to is atomics and plain data.
unsafe impl Send for IoFence {}

impl IoFence {
    /// A fence for `workers` workers whose turns last `hold`.
    pub fn new(eal: &Eal, workers: usize, hold: Duration) -> Result<(IoFence, Vec<FenceWorker>), DpdkError> {
        let shared = Arc::new(Shared {
            phase: AtomicU64::new(1),
            acks: (0..workers).map(|_| Ack(AtomicU64::new(1))).collect(),
            hold,
            stop: AtomicBool::new(false),
        });
        let raw = Arc::into_raw(shared.clone());
        // SAFETY: `turn` matches the callback type; `raw` stays valid until
        // Drop cancels the alarm.
        let ret = unsafe { dpdk_sys::rte_eal_alarm_set(TURN_US, Some(turn), raw as *mut c_void) };
        if ret != 0 {
            // SAFETY: the alarm was not set, so this is the only use of the count.
            drop(unsafe { Arc::from_raw(raw) });
            return Err(DpdkError::Alarm { code: ret, reason: strerror(ret) });
        }
        let handles = (0..workers).map(|index| FenceWorker { shared: shared.clone(), index, seen: 1 }).collect();
        Ok((IoFence { shared, raw, _eal: eal.handle() }, handles))
    }
}

impl Drop for IoFence {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // SAFETY: cancels every pending alarm with our argument and waits for
        // one that is running on the interrupt thread; after it returns the
        // callback can no longer run, so the alarm's count can go.
        unsafe {
            dpdk_sys::rte_eal_alarm_cancel(Some(turn), self.raw as *mut c_void);
            drop(Arc::from_raw(self.raw));
        }
    }
}

/// One worker's side of the fence.
pub struct FenceWorker {
    shared: Arc<Shared>,
    index: usize,
    seen: u64,
}

impl FenceWorker {
    /// Call at the top of every loop iteration, before any port I/O: whether
    /// this iteration may poll and transmit. Acknowledges a closed fence, so
    /// the interrupt thread may go on once every worker has called this.
    #[inline]
    pub fn may_poll(&mut self) -> bool {
        let phase = self.shared.phase.load(Ordering::Acquire);
        if phase != self.seen {
            self.seen = phase;
            self.shared.acks[self.index].0.store(phase, Ordering::Release);
        }
        phase.is_multiple_of(2)
    }
}

impl Drop for FenceWorker {
    /// A worker that stopped (or panicked) never holds the interrupt thread.
    fn drop(&mut self) {
        self.shared.acks[self.index].0.store(LEFT, Ordering::Release);
    }
}

/// Whether a port of driver `driver` (`rte_eth_dev_info.driver_name`) needs
/// an [`IoFence`]: its PMD unmaps the data path from the interrupt thread.
pub fn needs_fence(driver: &str) -> bool {
    driver == "net_memif"
}
