//! Weighted random of two choices (IPVS `ip_vs_twos.c`, the "power of two choices"): draw
//! two servers at random, each with a chance by weight, and give the connection to the one
//! less loaded per weight (`overhead / weight`, compared as `w2 * oh1 > w1 * oh2`); the
//! first draw wins a tie.
//!
//! The draw is IPVS's, bias included: with `total` the sum of the available servers'
//! weights, each draw is a number `r` in `0..=total` (`total + 1` values), and the server is
//! the first whose running sum of weights reaches `r`. So the first available server has
//! `weight + 1` chances in `total + 1`, every other one `weight`.
//!
//! The random numbers come from a splitmix64 sequence each worker's scheduler keeps,
//! seeded once from std's per-process random keys (as the lblc maps' hashers are): a
//! connection costs two multiplications, no system call and no shared state.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::hash::mix64;
use crate::model::snapshot::Dest;

/// splitmix64's increment: an odd constant, so the sequence runs through every `u64`.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Debug, Clone)]
pub struct TwoChoices {
    state: u64,
}

impl Default for TwoChoices {
    fn default() -> TwoChoices {
        TwoChoices::with_seed(RandomState::new().hash_one(0u64))
    }
}

impl TwoChoices {
    /// A sequence starting from `seed`: the same seed draws the same servers.
    pub fn with_seed(seed: u64) -> TwoChoices {
        TwoChoices { state: seed }
    }

    pub fn pick(&mut self, dests: &[Dest]) -> Option<usize> {
        let (mut total, mut last) = (0u64, None);
        for (i, d) in dests.iter().enumerate().filter(|(_, d)| d.is_available()) {
            total += d.weight() as u64;
            last = Some(i);
        }
        let last = last?;
        let first = self.below(total + 1);
        let second = self.below(total + 1);
        Some(settle(dests, first, second, last))
    }

    /// A uniform number in `0..bound` (Lemire's multiply-shift; `bound` is far below 2^64,
    /// so the bias is negligible).
    fn below(&mut self, bound: u64) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        ((mix64(self.state) as u128 * bound as u128) >> 64) as u64
    }
}

/// The server the draws `first` and `second` (each in `0..=total`) give: each names the
/// first available server whose running sum of weights reaches it, and the second one
/// wins only if strictly less loaded per weight.
///
/// Another worker may mark a server overloaded between the sum and this walk, so a draw
/// can pass the end: as in IPVS, the first draw then falls back to `last` (the last
/// server available when the weights were summed) and the second draw counts for nothing.
/// (IPVS then compares with the fallback's weight and load left unset, -1 and 0, which
/// hands the connection to the second draw whenever that one has any connection; we
/// compare real loads.)
fn settle(dests: &[Dest], first: u64, second: u64, last: usize) -> usize {
    let mut sum = 0u64;
    let (mut one, mut two) = (None, None);
    for (i, d) in dests.iter().enumerate().filter(|(_, d)| d.is_available()) {
        sum += d.weight() as u64;
        if one.is_none() && first <= sum {
            one = Some(i);
        }
        if two.is_none() && second <= sum {
            two = Some(i);
        }
        if one.is_some() && two.is_some() {
            break;
        }
    }
    let one = one.unwrap_or(last);
    let Some(two) = two else { return one };
    let cost = |i: usize| (dests[i].weight() as u64, dests[i].counters().overhead());
    let ((w1, oh1), (w2, oh2)) = (cost(one), cost(two));
    if w2 * oh1 > w1 * oh2 {
        two
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::Snapshot;
    use crate::model::{DestSpec, ForwardMethod, SchedulerKind, ServiceSpec};
    use crate::sched::testutil::*;

    /// How many of the `(total + 1)^2` pairs of draws give each server.
    fn outcomes(dests: &[Dest]) -> Vec<u64> {
        let total: u64 = dests.iter().filter(|d| d.is_available()).map(|d| d.weight() as u64).sum();
        let last = dests.iter().rposition(Dest::is_available).unwrap();
        let mut got = vec![0; dests.len()];
        for first in 0..=total {
            for second in 0..=total {
                got[settle(dests, first, second, last)] += 1;
            }
        }
        got
    }

    #[test]
    fn unloaded_servers_share_by_weight_the_first_with_one_chance_more() {
        let snap = service(SchedulerKind::Twos, &[1, 3]);
        // Draws 0..=4: 0 and 1 reach server 0, 2..=4 server 1; equal loads keep the first draw.
        assert_eq!(outcomes(snap.service(0).dests()), [2 * 5, 3 * 5]);
    }

    #[test]
    fn the_less_loaded_of_the_two_draws_wins() {
        let snap = service(SchedulerKind::Twos, &[1, 1]);
        load(&snap, 0, 1, 0);
        // Draws 0..=2: server 0 for 0 and 1, server 1 for 2. Server 0 (overhead 256 against
        // 0) is kept only when both draws name it: 2 * 2 of the 9 pairs.
        assert_eq!(outcomes(snap.service(0).dests()), [4, 5]);
    }

    #[test]
    fn load_is_compared_per_weight_and_a_tie_keeps_the_first_draw() {
        let snap = service(SchedulerKind::Twos, &[1, 2]);
        load(&snap, 0, 1, 0); // 256 / 1
        load(&snap, 1, 2, 0); // 512 / 2: a tie
        let dests = snap.service(0).dests();
        assert_eq!(settle(dests, 0, 3, 1), 0);
        assert_eq!(settle(dests, 3, 0, 1), 1);
        load(&snap, 1, 0, 1); // 513 / 2: now server 0 is lighter
        assert_eq!(settle(dests, 3, 0, 1), 0);
    }

    #[test]
    fn a_draw_past_the_servers_still_available_falls_back_as_in_ipvs() {
        // Weights 1, 1, 1 summed to 3; then server 2 turns overloaded (another worker's
        // connection) before the walk: draw 3 reaches no server.
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Twos, ..ServiceSpec::new(key()) }).unwrap();
        add(&mut ed, 0, 1);
        add(&mut ed, 1, 1);
        ed.add_dest(&key(), DestSpec::new(rs(2), 80).with_method(ForwardMethod::Masq).with_thresholds(1, 0)).unwrap();
        let snap = ed.finish();
        let dests = snap.service(0).dests();
        dests[2].counters().bind();
        assert!(!dests[2].is_available());
        assert_eq!(settle(dests, 3, 3, 2), 2, "the first draw falls back to the last server summed");
        load(&snap, 0, 1, 0);
        assert_eq!(settle(dests, 1, 3, 2), 0, "a second draw past the end counts for nothing");
    }

    #[test]
    fn draws_skip_quiescent_and_overloaded_servers() {
        let snap = service(SchedulerKind::Twos, &[0, 2, 0, 1]);
        assert_eq!(outcomes(snap.service(0).dests()), [0, 3 * 4, 0, 4]);
        let none = service(SchedulerKind::Twos, &[0, 0]);
        assert_eq!(TwoChoices::with_seed(1).pick(none.service(0).dests()), None);
    }

    #[test]
    fn the_random_draws_follow_the_chances() {
        let snap = service(SchedulerKind::Twos, &[1, 3, 4]);
        let dests = snap.service(0).dests();
        let mut s = TwoChoices::with_seed(42);
        let mut got = [0u32; 3];
        for _ in 0..90_000 {
            got[s.pick(dests).unwrap()] += 1;
        }
        // Unloaded, the first draw decides: chances 2, 3 and 4 in 9.
        for (i, want) in [20_000, 30_000, 40_000].into_iter().enumerate() {
            assert!(got[i].abs_diff(want) < 1_000, "server {i}: {got:?}");
        }
        let mut again = TwoChoices::with_seed(42);
        let mut s = TwoChoices::with_seed(42);
        assert!((0..100).all(|_| again.pick(dests) == s.pick(dests)), "a seed repeats its draws");
    }
}
