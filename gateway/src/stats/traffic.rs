//! Traffic counters of a service or a real server: what `ipvsadm --stats`, `--rate` and
//! `-Z` show.
//!
//! Workers count every packet, so the counters must not be shared between workers (a
//! contended cache line per packet would cost more than the rest of the forwarding). Each
//! worker has its own cache-line slot, written only by it; the control thread sums the
//! slots when it lists. This is the per-CPU layout of IPVS's `ip_vs_stats`.
//!
//! `-Z` cannot clear a slot another thread writes without a lock on the packet path, so the
//! control side keeps a baseline: zeroing records the current sums and later listings
//! subtract them. The rate estimator is IPVS's (`ip_vs_est.c`): every two seconds the
//! control thread takes the increase since the last sample as the new rate and moves an
//! exponentially weighted average a quarter of the way toward it. Both live behind a mutex
//! only the control thread takes ([`Estimator`]).
//!
//! A service's traffic is not counted apart: it is the sum of its real servers' (see
//! `model::counters::ServiceTraffic`), so a packet writes one slot, not two. What
//! `--stats`, `--rate` and `-Z` do with raw sums is [`TrafficCounts`]' to say, for both.

use std::sync::Mutex;
use std::time::Duration;

use super::Counter;

/// One worker's counters, alone in a cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    conns: Counter,
    in_packets: Counter,
    out_packets: Counter,
    in_bytes: Counter,
    out_bytes: Counter,
}

impl Slot {
    fn totals(&self) -> Totals {
        Totals {
            conns: self.conns.get(),
            in_packets: self.in_packets.get(),
            out_packets: self.out_packets.get(),
            in_bytes: self.in_bytes.get(),
            out_bytes: self.out_bytes.get(),
        }
    }
}

/// Counts since start (or the last `-Z`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl Totals {
    fn fields(&self) -> [u64; 5] {
        [self.conns, self.in_packets, self.out_packets, self.in_bytes, self.out_bytes]
    }

    /// `self` and `other` added, as the counters wrap.
    pub fn plus(&self, other: &Totals) -> Totals {
        let (a, b) = (self.fields(), other.fields());
        let s = |i: usize| a[i].wrapping_add(b[i]);
        Totals { conns: s(0), in_packets: s(1), out_packets: s(2), in_bytes: s(3), out_bytes: s(4) }
    }

    fn minus(&self, base: &Totals) -> Totals {
        let (a, b) = (self.fields(), base.fields());
        let d = |i: usize| a[i].wrapping_sub(b[i]);
        Totals { conns: d(0), in_packets: d(1), out_packets: d(2), in_bytes: d(3), out_bytes: d(4) }
    }
}

/// Per-second rates, averaged as IPVS averages them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

/// How often [`TrafficCounts::estimate`] should run (IPVS's estimator period).
pub const ESTIMATE_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct ControlSide {
    /// Raw sums at the last `-Z`.
    baseline: Totals,
    /// Raw sums at the last estimate.
    last: Totals,
    /// The averages, per second, unrounded.
    avg: [f64; 5],
}

/// The `-Z` baseline and the rate estimator of one set of traffic counters, over the raw
/// sums its owner reads: behind a mutex only the control thread takes.
#[derive(Debug, Default)]
pub struct Estimator {
    control: Mutex<ControlSide>,
}

impl Estimator {
    fn control(&self) -> std::sync::MutexGuard<'_, ControlSide> {
        // The data is plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What `--stats`, `--rate` and `-Z` read and do: the same for a real server's counters
/// and for a service's, which differ in where their raw sums come from.
pub trait TrafficCounts {
    /// Sums since start, before any `-Z`.
    fn raw(&self) -> Totals;
    /// The baseline and the rates.
    fn estimator(&self) -> &Estimator;

    /// Sums since start or the last [`TrafficCounts::zero`].
    fn totals(&self) -> Totals {
        let raw = self.raw();
        raw.minus(&self.estimator().control().baseline)
    }

    /// The averaged rates as of the last [`TrafficCounts::estimate`].
    fn rates(&self) -> Rates {
        let avg = self.estimator().control().avg;
        let r = |i: usize| avg[i].round() as u64;
        Rates { cps: r(0), in_pps: r(1), out_pps: r(2), in_bps: r(3), out_bps: r(4) }
    }

    /// `-Z`: counts and rates start again from zero.
    fn zero(&self) {
        let raw = self.raw();
        let mut c = self.estimator().control();
        c.baseline = raw;
        c.last = raw;
        c.avg = [0.0; 5];
    }

    /// One estimator step, `elapsed` after the previous one (normally
    /// [`ESTIMATE_INTERVAL`]).
    fn estimate(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if secs <= 0.0 {
            return;
        }
        let raw = self.raw();
        let mut c = self.estimator().control();
        let delta = raw.minus(&c.last).fields();
        c.last = raw;
        for (avg, d) in c.avg.iter_mut().zip(delta) {
            *avg += (d as f64 / secs - *avg) / 4.0;
        }
    }
}

/// The traffic counters of one real server, a slot per worker.
#[derive(Debug)]
pub struct Traffic {
    slots: Box<[Slot]>,
    estimator: Estimator,
}

impl Traffic {
    /// Counters for `workers` workers (ids `0..workers`); a worker with a larger id counts
    /// nothing, so a mis-sized table loses statistics, never memory safety.
    pub fn new(workers: usize) -> Traffic {
        Traffic { slots: (0..workers.max(1)).map(|_| Slot::default()).collect(), estimator: Estimator::default() }
    }

    /// A new connection was scheduled here by `worker`.
    #[inline]
    pub fn connection(&self, worker: u16) {
        if let Some(s) = self.slots.get(usize::from(worker)) {
            s.conns.inc();
        }
    }

    /// `packets` of `bytes` in all (IP lengths) from clients toward the real server.
    #[inline]
    pub fn inbound(&self, worker: u16, packets: u64, bytes: u64) {
        if let Some(s) = self.slots.get(usize::from(worker)) {
            s.in_packets.add(packets);
            s.in_bytes.add(bytes);
        }
    }

    /// `packets` of `bytes` in all (IP lengths) from the real server toward clients.
    #[inline]
    pub fn outbound(&self, worker: u16, packets: u64, bytes: u64) {
        if let Some(s) = self.slots.get(usize::from(worker)) {
            s.out_packets.add(packets);
            s.out_bytes.add(bytes);
        }
    }
}

impl TrafficCounts for Traffic {
    fn raw(&self) -> Totals {
        self.slots.iter().fold(Totals::default(), |sum, s| sum.plus(&s.totals()))
    }

    fn estimator(&self) -> &Estimator {
        &self.estimator
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_workers_and_ignores_unknown_ones() {
        let t = Traffic::new(2);
        t.connection(0);
        t.connection(1);
        t.inbound(0, 1, 60);
        t.inbound(1, 1, 40);
        t.outbound(1, 1, 1500);
        t.inbound(7, 1, 1000);
        t.connection(7);
        assert_eq!(t.totals(), Totals { conns: 2, in_packets: 2, out_packets: 1, in_bytes: 100, out_bytes: 1500 });
    }

    #[test]
    fn zero_keeps_counting_from_a_baseline() {
        let t = Traffic::new(1);
        t.inbound(0, 1, 100);
        t.zero();
        assert_eq!(t.totals(), Totals::default());
        t.inbound(0, 1, 10);
        assert_eq!(t.totals().in_bytes, 10);
        assert_eq!(t.totals().in_packets, 1);
    }

    #[test]
    fn rates_approach_a_steady_rate_by_quarters() {
        let t = Traffic::new(1);
        for _ in 0..200 {
            t.inbound(0, 1, 50);
        }
        t.estimate(ESTIMATE_INTERVAL);
        // 100 packets/s this period; the average moves a quarter of the way from 0.
        assert_eq!(t.rates().in_pps, 25);
        assert_eq!(t.rates().in_bps, 1250);
        for _ in 0..40 {
            for _ in 0..200 {
                t.inbound(0, 1, 50);
            }
            t.estimate(ESTIMATE_INTERVAL);
        }
        assert_eq!(t.rates().in_pps, 100);
        t.estimate(ESTIMATE_INTERVAL);
        assert_eq!(t.rates().in_pps, 75, "no traffic: a quarter of the way down");
        t.zero();
        assert_eq!(t.rates(), Rates::default());
    }

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 64);
    }
}
