//! Weighted round robin (IPVS `ip_vs_wrr.c`).
//!
//! A current weight `cw` starts at the maximum weight and steps down by the gcd of the
//! weights; each pass over the list picks the servers whose weight is at least `cw`. Servers
//! are therefore interleaved rather than served in runs: weights 4, 3, 2 give
//! A A B A B C A B C. The gcd step skips passes that would pick nothing.

use crate::model::snapshot::Dest;

#[derive(Debug, Clone)]
pub struct WeightedRoundRobin {
    /// Index of the server picked last; `None` is the list head (IPVS `mark->cl`).
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

/// What wrr derives from a server list's weights: their gcd `di` (1 if none is positive)
/// and IPVS's maximum `mw = max - (di - 1)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrrMeasure {
    di: i64,
    mw: i64,
}

impl WrrMeasure {
    pub fn of(dests: &[Dest]) -> WrrMeasure {
        let di = dests.iter().map(|d| d.weight()).filter(|&w| w > 0).fold(0, super::gcd).max(1) as i64;
        let max = dests.iter().map(|d| d.weight() as i64).max().unwrap_or(0);
        WrrMeasure { di, mw: (max - (di - 1)).max(0) }
    }
}

impl WeightedRoundRobin {
    /// IPVS `ip_vs_wrr_init_svc` over servers measuring `m`.
    pub fn with_measure(m: WrrMeasure) -> WeightedRoundRobin {
        WeightedRoundRobin { cl: None, cw: m.mw, mw: m.mw, di: m.di }
    }

    pub fn pick(&mut self, dests: &[Dest]) -> Option<usize> {
        let n = dests.len();
        if self.mw == 0 || n == 0 {
            return None;
        }
        // One full descent of cw visits every server at every level; if nothing was found
        // after that, nothing is available (IPVS reaches the same verdict with its
        // last-pass bookkeeping).
        let levels = (self.mw / self.di + 1) as usize;
        let mut pos = self.cl;
        for _ in 0..levels * (n + 1) + 1 {
            let next = pos.map_or(0, |p| p + 1);
            if next >= n {
                // Back at the list head: next level down.
                pos = None;
                self.cw -= self.di;
                if self.cw <= 0 {
                    self.cw = self.mw;
                }
                continue;
            }
            pos = Some(next);
            let d = &dests[next];
            if d.is_available() && d.weight() as i64 >= self.cw {
                self.cl = pos;
                return pos;
            }
        }
        None
    }

    /// IPVS `ip_vs_wrr_dest_changed`: restart at the head, keep the current weight if it is
    /// still meaningful.
    pub fn update(&mut self, dests: &[Dest]) {
        self.update_measured(WrrMeasure::of(dests));
    }

    /// [`WeightedRoundRobin::update`] to servers measuring `m`.
    pub fn update_measured(&mut self, m: WrrMeasure) {
        let WrrMeasure { di, mw } = m;
        self.cl = None;
        self.di = di;
        self.mw = mw;
        if self.cw > mw || self.cw == 0 {
            self.cw = mw;
        } else if di > 1 {
            self.cw = (self.cw / di) * di + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn weights_4_3_2_over_9_picks() {
        let snap = service(SchedulerKind::Wrr, &[4, 3, 2]);
        // cw=4: A; cw=3: A B; cw=2: A B C; cw=1: A B C.
        assert_eq!(picks(&snap, 18), [[0, 0, 1, 0, 1, 2, 0, 1, 2]; 2].concat());
    }

    proptest::proptest! {
        /// Over one full cycle (sum of weight / gcd picks) every server is picked exactly
        /// weight / gcd times; with no positive weight nothing is picked.
        #[test]
        fn one_cycle_picks_each_server_by_weight(weights in proptest::collection::vec(0u32..12, 1..7)) {
            let snap = service(SchedulerKind::Wrr, &weights);
            let g = weights.iter().copied().filter(|&w| w > 0).fold(0, crate::sched::gcd);
            let want: Vec<u32> = weights.iter().map(|w| w.checked_div(g).unwrap_or(0)).collect();
            let cycle: u32 = want.iter().sum();
            let svc = snap.service(0);
            let mut s = crate::sched::Scheduler::new(svc);
            let mut count = vec![0u32; weights.len()];
            for _ in 0..cycle {
                count[s.pick(svc, &flow("1.1.1.1"), 0).unwrap()] += 1;
            }
            proptest::prop_assert_eq!(count, want);
            if g == 0 {
                proptest::prop_assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), None);
            }
        }
    }

    #[test]
    fn gcd_steps_and_quiescent_servers() {
        // gcd 2: levels 6 (mw = 6 - 1 = 5 -> cw 5, 3, 1), weights 6 and 2.
        let snap = service(SchedulerKind::Wrr, &[6, 2, 0]);
        assert_eq!(picks(&snap, 8), vec![0, 0, 0, 1, 0, 0, 0, 1]);
        let none = service(SchedulerKind::Wrr, &[0, 0]);
        let svc = none.service(0);
        let mut s = crate::sched::Scheduler::new(svc);
        assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), None);
    }
}
