//! Shortest expected delay (IPVS `ip_vs_sed.c`): the available server with the smallest
//! `(active + 1) / weight`, the delay a new connection would see if it were served after the
//! active ones. Inactive connections are ignored.

use super::least_weighted;
use crate::model::snapshot::Dest;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    least_weighted(dests, |c| c.active() as u64 + 1)
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn weights_1_2_3_active_1_2_3_picks_the_third() {
        let snap = service(SchedulerKind::Sed, &[1, 2, 3]);
        load(&snap, 0, 1, 0); // 2 / 1
        load(&snap, 1, 2, 0); // 3 / 2
        load(&snap, 2, 3, 50); // 4 / 3, inactive ignored
        assert_eq!(picks(&snap, 1), vec![2]);
    }
}
