//! Weighted failover (IPVS `ip_vs_fo.c`): every new connection goes to the available server
//! with the highest weight, the first of them in list order on a tie. The others stand by:
//! lowering the primary's weight (or its reaching its upper threshold) fails over to the
//! next heaviest.

use crate::model::snapshot::Dest;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    heaviest(dests, Dest::is_available)
}

/// The first server of the highest weight among those `eligible` admits (IPVS compares
/// `weight > highest so far`, so a later server of equal weight never displaces it).
pub(super) fn heaviest(dests: &[Dest], eligible: impl Fn(&Dest) -> bool) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, d) in dests.iter().enumerate() {
        if eligible(d) && best.is_none_or(|(_, w)| d.weight() > w) {
            best = Some((i, d.weight()));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use crate::model::snapshot::Snapshot;
    use crate::model::{DestSpec, ForwardMethod, SchedulerKind, ServiceSpec};
    use crate::sched::testutil::*;
    use crate::sched::Scheduler;

    #[test]
    fn the_heaviest_server_takes_everything_whatever_its_load() {
        let snap = service(SchedulerKind::Fo, &[2, 5, 3]);
        load(&snap, 1, 40, 300);
        assert_eq!(picks(&snap, 4), vec![1, 1, 1, 1]);
    }

    #[test]
    fn a_tie_goes_to_the_first_in_list_order() {
        let snap = service(SchedulerKind::Fo, &[1, 4, 4]);
        assert_eq!(picks(&snap, 2), vec![1, 1]);
    }

    #[test]
    fn fails_over_to_the_next_heaviest_when_the_primary_is_overloaded() {
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Fo, ..ServiceSpec::new(key()) }).unwrap();
        add(&mut ed, 0, 1);
        let primary = DestSpec::new(rs(1), 80).with_method(ForwardMethod::Masq).with_weight(9).with_thresholds(1, 0);
        ed.add_dest(&key(), primary).unwrap();
        add(&mut ed, 2, 3);
        let snap = ed.finish();
        assert_eq!(picks(&snap, 1), vec![1]);
        snap.service(0).dests()[1].counters().bind();
        assert_eq!(picks(&snap, 2), vec![2, 2], "the primary at its threshold: the next heaviest");

        let quiesced = service(SchedulerKind::Fo, &[0, 0]);
        let svc = quiesced.service(0);
        assert_eq!(Scheduler::new(svc).pick(svc, &flow("1.1.1.1"), 0), None, "no server of weight above 0");
    }
}
