//! Least connections (IPVS `ip_vs_lc.c`): the available server with the smallest overhead
//! `active * 256 + inactive`, ignoring weights except that weight 0 is skipped. Ties go to
//! the first in list order.

use crate::model::snapshot::Dest;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.is_available() {
            continue;
        }
        let doh = d.counters().overhead();
        if best.is_none_or(|(_, loh)| doh < loh) {
            best = Some((i, doh));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn counts_active_as_256_inactive() {
        let snap = service(SchedulerKind::Lc, &[1, 100, 1]);
        load(&snap, 0, 1, 0); // 256
        load(&snap, 1, 0, 255); // 255: least, weight does not matter
        load(&snap, 2, 0, 300);
        assert_eq!(picks(&snap, 1), vec![1]);
        load(&snap, 1, 0, 1); // 256: tie with server 0, first wins
        assert_eq!(picks(&snap, 1), vec![0]);
    }
}
