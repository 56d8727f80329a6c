//! Weighted overflow (IPVS `ip_vs_ovf.c`): the available server with the highest weight
//! takes new connections while its active connections do not exceed its weight; past that
//! they overflow to the next heaviest such server, and so on. A tie goes to the first in
//! list order. Only active connections count (IPVS's own caveat: this suits TCP, since a
//! UDP connection is never active), and a server over its weight is skipped, not
//! penalised: with every server over its weight there is no server.

use super::fo::heaviest;
use crate::model::snapshot::Dest;

pub fn pick(dests: &[Dest]) -> Option<usize> {
    // IPVS skips a server when `activeconns > weight`: one at exactly its weight still
    // takes the next connection.
    heaviest(dests, |d| d.is_available() && d.counters().active() <= d.weight())
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;
    use crate::sched::Scheduler;

    fn pick_one(snap: &crate::model::snapshot::Snapshot) -> Option<usize> {
        let svc = snap.service(0);
        Scheduler::new(svc).pick(svc, &flow("1.1.1.1"), 0)
    }

    #[test]
    fn the_heaviest_server_fills_up_to_its_weight_then_overflows_in_weight_order() {
        let snap = service(SchedulerKind::Ovf, &[2, 3, 3, 1]);
        assert_eq!(pick_one(&snap), Some(1), "weight 3, the first of the two");
        load(&snap, 1, 3, 0);
        assert_eq!(pick_one(&snap), Some(1), "3 active is not more than its weight 3");
        load(&snap, 1, 1, 0);
        assert_eq!(pick_one(&snap), Some(2), "4 active: overflow to the other weight 3");
        load(&snap, 2, 4, 0);
        assert_eq!(pick_one(&snap), Some(0), "then to weight 2");
        load(&snap, 0, 3, 0);
        assert_eq!(pick_one(&snap), Some(3), "then to weight 1");
        load(&snap, 3, 2, 0);
        assert_eq!(pick_one(&snap), None, "every server over its weight: none");
    }

    #[test]
    fn inactive_connections_do_not_count() {
        let snap = service(SchedulerKind::Ovf, &[1, 2]);
        load(&snap, 1, 2, 500);
        assert_eq!(pick_one(&snap), Some(1));
    }

    #[test]
    fn a_server_back_within_its_weight_takes_connections_again() {
        let snap = service(SchedulerKind::Ovf, &[1, 2]);
        load(&snap, 1, 3, 0);
        assert_eq!(pick_one(&snap), Some(0));
        let c = snap.service(0).dests()[1].counters();
        c.set_active(false);
        c.unbind(false);
        assert_eq!((c.active(), c.inactive()), (2, 0));
        assert_eq!(pick_one(&snap), Some(1), "back to 2 active of weight 2");
    }
}
