//! Round robin (IPVS `ip_vs_rr.c`): the next available server after the one picked last,
//! in list order, wrapping around.

use std::net::IpAddr;

use super::remap;
use crate::model::snapshot::Dest;

#[derive(Debug, Default, Clone)]
pub struct RoundRobin {
    /// Index of the server picked last; `None` before the first pick (IPVS: the list head).
    last: Option<usize>,
}

impl RoundRobin {
    pub fn pick(&mut self, dests: &[Dest]) -> Option<usize> {
        let n = dests.len();
        let start = self.last.map_or(0, |l| l + 1);
        let found = (0..n).map(|k| (start + k) % n).find(|&i| dests[i].is_available())?;
        self.last = Some(found);
        Some(found)
    }

    /// Keeps the position at the same server if it survived the edit, else restarts.
    pub fn update(&mut self, old: &[Dest], new: &[Dest], removed: &[(IpAddr, u16)]) {
        self.last = self.last.and_then(|l| remap(old, new, l, removed));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn cycles_in_list_order() {
        let snap = service(SchedulerKind::Rr, &[1, 5, 1]);
        assert_eq!(picks(&snap, 7), vec![0, 1, 2, 0, 1, 2, 0]);
    }
}
