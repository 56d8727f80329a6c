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
//! The map is per worker (a worker's decisions need no lock), and entries expire like
//! IPVS's: every minute, entries unused for `expiration` (24 h by default) go, and when the
//! map holds more than 16384 entries, those unused for a minute go too. A new destination
//! address allocates a map entry; that is once per address, not per connection.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{least_weighted, remap};
use crate::service::snapshot::Dest;
use crate::service::DestCounters;

/// IPVS `sysctl_lblc_expiration` default.
pub const DEFAULT_EXPIRATION: u32 = 24 * 60 * 60;
/// IPVS `CHECK_EXPIRE_INTERVAL`.
pub(super) const CHECK_INTERVAL: u32 = 60;
/// IPVS `ENTRY_TIMEOUT`: the idle time after which entries go when the map is too big.
pub(super) const ENTRY_TIMEOUT: u32 = 60;
/// IPVS `IP_VS_LBLC_TAB_SIZE * 16`.
pub(super) const MAX_SIZE: usize = 1024 * 16;

#[derive(Debug, Clone)]
struct Entry {
    dest: usize,
    lastuse: u32,
}

#[derive(Debug, Clone)]
pub struct Lblc {
    map: HashMap<IpAddr, Entry>,
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
        Lblc { map: HashMap::new(), expiration, next_check: 0 }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn pick(&mut self, dests: &[Dest], dst: IpAddr, now: u32) -> Option<usize> {
        self.expire(now);
        if let Some(e) = self.map.get_mut(&dst) {
            e.lastuse = now;
            let d = &dests[e.dest];
            if d.is_available() && !is_overloaded(d, dests) {
                return Some(e.dest);
            }
        }
        let i = least_weighted(dests, DestCounters::overhead)?;
        self.map.insert(dst, Entry { dest: i, lastuse: now });
        Some(i)
    }

    /// Re-points entries at their servers' new positions, dropping those whose server left.
    pub fn update(&mut self, old: &[Dest], new: &[Dest], removed: &[(IpAddr, u16)]) {
        self.map.retain(|_, e| match remap(old, new, e.dest, removed) {
            Some(i) => {
                e.dest = i;
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
        let expiration = self.expiration;
        self.map.retain(|_, e| now.saturating_sub(e.lastuse) <= expiration);
        if self.map.len() > MAX_SIZE {
            self.map.retain(|_, e| now.saturating_sub(e.lastuse) <= ENTRY_TIMEOUT);
        }
    }
}

/// lblc's overload test (IPVS `is_overloaded` in ip_vs_lblc.c): the server has more active
/// connections than its weight and some other server is below half of its own weight.
pub(super) fn is_overloaded(dest: &Dest, dests: &[Dest]) -> bool {
    let active = dest.counters().active() as u64;
    active > dest.weight() as u64
        && dests.iter().any(|d| (d.counters().active() as u64) * 2 < d.weight() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::testutil::*;
    use crate::service::SchedulerKind;

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
