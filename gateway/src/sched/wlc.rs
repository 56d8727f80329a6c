//! Weighted least connections (IPVS `ip_vs_wlc.c`, ipvsadm's default): the available
//! server with the smallest `overhead / weight`, compared as `loh * dw > doh * lw`.

use super::least_weighted;
use crate::service::snapshot::Dest;
use crate::service::DestCounters;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    least_weighted(dests, DestCounters::overhead)
}

#[cfg(test)]
mod tests {
    use crate::sched::testutil::*;
    use crate::service::SchedulerKind;

    #[test]
    fn divides_by_weight() {
        let snap = service(SchedulerKind::Wlc, &[1, 3]);
        load(&snap, 0, 1, 0); // 256 / 1
        load(&snap, 1, 2, 0); // 512 / 3 = 170.7: less
        assert_eq!(picks(&snap, 1), vec![1]);
        load(&snap, 1, 1, 0); // 768 / 3 = 256: tie, first wins
        assert_eq!(picks(&snap, 1), vec![0]);
    }

    #[test]
    fn idle_servers_fill_in_list_order() {
        let snap = service(SchedulerKind::Wlc, &[2, 2, 2]);
        assert_eq!(picks(&snap, 3), vec![0, 0, 0], "counts never move in this test");
    }
}
