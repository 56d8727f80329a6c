//! Never queue (IPVS `ip_vs_nq.c`): an idle server (no active connection) if there is one,
//! the first in list order; otherwise sed's choice.

use crate::model::snapshot::Dest;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for (i, d) in dests.iter().enumerate() {
        if !d.is_available() {
            continue;
        }
        let active = d.counters().active() as u64;
        if active == 0 {
            return Some(i);
        }
        let (doh, dw) = (active + 1, d.weight() as u64);
        if best.is_none_or(|(_, loh, lw)| loh * dw > doh * lw) {
            best = Some((i, doh, dw));
        }
    }
    best.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn picks_an_idle_server_first() {
        let snap = service(SchedulerKind::Nq, &[10, 10, 1]);
        load(&snap, 0, 1, 0);
        load(&snap, 1, 1, 0);
        load(&snap, 2, 0, 7); // idle: no active connection, low weight does not matter
        assert_eq!(picks(&snap, 1), vec![2]);
        load(&snap, 2, 1, 0);
        // No idle server: sed's rule, (1+1)/10 < (1+1)/1; tie between 0 and 1 goes to 0.
        assert_eq!(picks(&snap, 1), vec![0]);
    }
}
