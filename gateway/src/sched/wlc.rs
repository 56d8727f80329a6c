//! Weighted least connections (IPVS `ip_vs_wlc.c`, ipvsadm's default): the available
//! server with the smallest `overhead / weight`, compared as `loh * dw > doh * lw`.

use super::least_weighted;
use crate::model::snapshot::Dest;
use crate::model::DestCounters;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    least_weighted(dests, DestCounters::overhead)
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn divides_by_weight() {
        let snap = service(SchedulerKind::Wlc, &[1, 3]);
        load(&snap, 0, 1, 0); // 256 / 1
        load(&snap, 1, 2, 0); // 512 / 3 = 170.7: less
        assert_eq!(picks(&snap, 1), vec![1]);
        load(&snap, 1, 1, 0); // 768 / 3 = 256: tie, first wins
        assert_eq!(picks(&snap, 1), vec![0]);
    }

    proptest::proptest! {
        /// wlc picks the first available server with the least overhead per weight.
        #[test]
        fn picks_the_first_least_loaded_per_weight(
            servers in proptest::collection::vec((0u32..5, 0u32..4, 0u32..600), 1..8)
        ) {
            let weights: Vec<u32> = servers.iter().map(|s| s.0).collect();
            let snap = service(SchedulerKind::Wlc, &weights);
            for (i, &(_, active, inactive)) in servers.iter().enumerate() {
                load(&snap, i, active, inactive);
            }
            let oh = |i: usize| (servers[i].1 as u64) * 256 + servers[i].2 as u64;
            let mut want: Option<usize> = None;
            for i in (0..servers.len()).filter(|&i| servers[i].0 > 0) {
                let better = want.is_none_or(|b| oh(i) * (servers[b].0 as u64) < oh(b) * servers[i].0 as u64);
                if better {
                    want = Some(i);
                }
            }
            let svc = snap.service(0);
            let got = crate::sched::Scheduler::new(svc).pick(svc, &flow("1.1.1.1"), 0);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn idle_servers_fill_in_list_order() {
        let snap = service(SchedulerKind::Wlc, &[2, 2, 2]);
        assert_eq!(picks(&snap, 3), vec![0, 0, 0], "counts never move in this test");
    }
}
