//! Locality-based least connections (IPVS `ip_vs_lblc.c`), for cache clusters: each
//! destination address keeps going to the server it was first given, so that server's
//! cache stays warm, unless the server is unavailable or "overloaded" in lblc's own sense
//! (more active connections than its weight while another server is below half its weight);
//! then wlc picks a new server and the map follows.
//!
//! One deliberate difference from IPVS: a mapped server over its upper threshold is left
//! too (IPVS only checks weight and lblc's own overload test there), because every
//! scheduler here skips servers at their threshold.
//!
//! The map is per worker (a worker's decisions need no lock). Entries expire like IPVS's:
//! every minute, those unused for `expiration` (24 h by default) go. It is bounded
//! ([`LocalityMap`], shared with lblcr): past its capacity a new destination address takes
//! the place of the stalest one, counted, where IPVS lets its map grow past 16384 entries
//! and then drops those unused for a minute.

use std::net::IpAddr;

use super::locality::{LocalityMap, CAPACITY};
use super::{least_weighted, remap};
use crate::model::snapshot::Dest;
use crate::model::DestCounters;

/// IPVS `sysctl_lblc_expiration` default.
pub const DEFAULT_EXPIRATION: u32 = 24 * 60 * 60;
/// IPVS `CHECK_EXPIRE_INTERVAL`.
pub(super) const CHECK_INTERVAL: u32 = 60;

#[derive(Debug, Clone)]
pub struct Lblc {
    /// Destination address -> index of its server in the service's list.
    map: LocalityMap<usize>,
    expiration: u32,
    next_check: u32,
}

impl Default for Lblc {
    fn default() -> Self {
        Lblc::with_expiration(DEFAULT_EXPIRATION)
    }
}

impl Lblc {
    pub fn with_expiration(expiration: u32) -> Lblc {
        Lblc::with_capacity(expiration, CAPACITY)
    }

    pub fn with_capacity(expiration: u32, capacity: u32) -> Lblc {
        Lblc { map: LocalityMap::new(capacity), expiration, next_check: 0 }
    }

    /// Destinations that made room for new ones (the map was full).
    pub fn evictions(&self) -> u64 {
        self.map.evictions()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn pick(&mut self, dests: &[Dest], dst: IpAddr, now: u32) -> Option<usize> {
        self.expire(now);
        if let Some(&mut i) = self.map.get_mut(dst, now) {
            let d = &dests[i];
            if d.is_available() && !is_overloaded(d, dests) {
                return Some(i);
            }
        }
        let i = least_weighted(dests, DestCounters::overhead)?;
        match self.map.get_mut(dst, now) {
            Some(e) => *e = i,
            None => self.map.insert(dst, now, |e| *e = i),
        }
        Some(i)
    }

    /// Re-points entries at their servers' new positions, dropping those whose server left.
    pub fn update(&mut self, old: &[Dest], new: &[Dest], removed: &[(IpAddr, u16)]) {
        self.map.retain(|e| match remap(old, new, *e, removed) {
            Some(i) => {
                *e = i;
                true
            }
            None => false,
        });
    }

    fn expire(&mut self, now: u32) {
        if now < self.next_check {
            return;
        }
        self.next_check = now.saturating_add(CHECK_INTERVAL);
        self.map.expire(now, self.expiration);
    }
}

/// lblc's overload test (IPVS `is_overloaded` in ip_vs_lblc.c): the server has more active
/// connections than its weight and some other server is below half of its own weight.
pub(super) fn is_overloaded(dest: &Dest, dests: &[Dest]) -> bool {
    let active = dest.counters().active() as u64;
    active > dest.weight() as u64 && dests.iter().any(|d| (d.counters().active() as u64) * 2 < d.weight() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sticks_to_a_destination_until_overloaded() {
        let snap = service(SchedulerKind::Lblc, &[2, 2]);
        let dests = snap.service(0).dests();
        let mut s = Lblc::default();
        assert_eq!(s.pick(dests, ip("8.8.8.8"), 0), Some(0));
        load(&snap, 0, 1, 0);
        // wlc would now prefer server 1; lblc keeps 8.8.8.8 on server 0.
        assert_eq!(s.pick(dests, ip("8.8.8.8"), 1), Some(0));
        assert_eq!(s.pick(dests, ip("8.8.4.4"), 1), Some(1));
        load(&snap, 0, 2, 0); // 3 active > weight 2, and server 1 has 0 * 2 < 2
        assert_eq!(s.pick(dests, ip("8.8.8.8"), 2), Some(1));
        assert_eq!(s.pick(dests, ip("8.8.8.8"), 2), Some(1), "the map follows");
    }

    #[test]
    fn a_full_map_evicts_its_stalest_destination_and_counts_it() {
        let snap = service(SchedulerKind::Lblc, &[1, 1]);
        let dests = snap.service(0).dests();
        let mut s = Lblc::with_capacity(DEFAULT_EXPIRATION, 2);
        assert_eq!(s.pick(dests, ip("8.8.8.8"), 0), Some(0));
        load(&snap, 0, 1, 0);
        assert_eq!(s.pick(dests, ip("8.8.4.4"), 1), Some(1));
        load(&snap, 1, 1, 0);
        assert_eq!(s.pick(dests, ip("8.8.8.8"), 2), Some(0), "mapped");
        // A third destination: 8.8.4.4, the stalest, makes room.
        load(&snap, 1, 1, 0);
        assert_eq!(s.pick(dests, ip("1.1.1.1"), 3), Some(0));
        assert_eq!((s.len(), s.evictions()), (2, 1));
        // 8.8.4.4 is scheduled afresh (wlc: server 0 now), 8.8.8.8 (stalest) goes.
        assert_eq!(s.pick(dests, ip("8.8.4.4"), 4), Some(0));
        assert_eq!((s.len(), s.evictions()), (2, 2));
    }

    #[test]
    fn entries_expire() {
        let snap = service(SchedulerKind::Lblc, &[1, 1]);
        let dests = snap.service(0).dests();
        let mut s = Lblc::with_expiration(100);
        s.pick(dests, ip("8.8.8.8"), 0);
        s.pick(dests, ip("8.8.4.4"), 50);
        assert_eq!(s.len(), 2);
        s.pick(dests, ip("8.8.4.4"), 120); // check at 120: 8.8.8.8 idle 120 > 100
        assert_eq!(s.len(), 1);
    }
}
