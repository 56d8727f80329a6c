//! Locality-based least connections with replication (IPVS `ip_vs_lblcr.c`): like lblc, but
//! a destination address maps to a *set* of servers. A connection goes to the least loaded
//! member; when that one is overloaded (lblc's sense), wlc picks a server from the whole
//! service and it joins the set, so a hot destination spreads over more servers. A set that
//! has not changed for `expiration` sheds its most loaded member, one per new connection,
//! so the set shrinks back when the load is gone.
//!
//! The map is lblc's ([`LocalityMap`]): bounded, the stalest destination making room for a
//! new one, counted. A set's buffer stays with its slot, so once the map is full a new
//! destination reuses the buffer of the one it replaces.

use std::net::IpAddr;

use super::lblc::{is_overloaded, CHECK_INTERVAL, DEFAULT_EXPIRATION};
use super::locality::{LocalityMap, CAPACITY};
use super::{least_weighted, remap};
use crate::model::snapshot::Dest;
use crate::model::DestCounters;

#[derive(Debug, Clone, Default)]
struct Entry {
    /// Server indices, newest first (IPVS adds at the list head; order breaks ties).
    set: Vec<usize>,
    lastmod: u32,
}

#[derive(Debug, Clone)]
pub struct Lblcr {
    map: LocalityMap<Entry>,
    expiration: u32,
    next_check: u32,
}

impl Default for Lblcr {
    fn default() -> Self {
        Lblcr::with_expiration(DEFAULT_EXPIRATION)
    }
}

impl Lblcr {
    pub fn with_expiration(expiration: u32) -> Lblcr {
        Lblcr::with_capacity(expiration, CAPACITY)
    }

    pub fn with_capacity(expiration: u32, capacity: u32) -> Lblcr {
        Lblcr { map: LocalityMap::new(capacity), expiration, next_check: 0 }
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

    /// The server set of `dst`, newest first.
    pub fn set(&self, dst: IpAddr) -> Option<&[usize]> {
        self.map.get(dst).map(|e| e.set.as_slice())
    }

    pub fn pick(&mut self, dests: &[Dest], dst: IpAddr, now: u32) -> Option<usize> {
        self.expire(now);
        let Some(e) = self.map.get_mut(dst, now) else {
            let i = least_weighted(dests, DestCounters::overhead)?;
            self.map.insert(dst, now, |e| {
                e.set.clear();
                e.set.push(i);
                e.lastmod = now;
            });
            return Some(i);
        };
        let min = set_min(&e.set, dests);
        if e.set.len() > 1 && now.saturating_sub(e.lastmod) > self.expiration {
            if let Some(m) = set_max(&e.set, dests) {
                e.set.retain(|&i| i != m);
                e.lastmod = now;
            }
        }
        if let Some(i) = min.filter(|&i| !is_overloaded(&dests[i], dests)) {
            return Some(i);
        }
        let i = least_weighted(dests, DestCounters::overhead)?;
        if !e.set.contains(&i) {
            e.set.insert(0, i);
        }
        e.lastmod = now;
        Some(i)
    }

    pub fn update(&mut self, old: &[Dest], new: &[Dest], removed: &[(IpAddr, u16)]) {
        self.map.retain(|e| {
            e.set = e.set.iter().filter_map(|&i| remap(old, new, i, removed)).collect();
            !e.set.is_empty()
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

/// The least loaded available member (IPVS `ip_vs_dest_set_min`).
fn set_min(set: &[usize], dests: &[Dest]) -> Option<usize> {
    let mut best: Option<(usize, u64, u64)> = None;
    for &i in set {
        let d = &dests[i];
        if !d.is_available() {
            continue;
        }
        let (doh, dw) = (d.counters().overhead(), d.weight() as u64);
        if best.is_none_or(|(_, loh, lw)| loh * dw > doh * lw) {
            best = Some((i, doh, dw));
        }
    }
    best.map(|(i, _, _)| i)
}

/// The most loaded member with a weight (IPVS `ip_vs_dest_set_max`).
fn set_max(set: &[usize], dests: &[Dest]) -> Option<usize> {
    let mut most: Option<(usize, u64, u64)> = None;
    for &i in set {
        let d = &dests[i];
        if d.weight() == 0 {
            continue;
        }
        let (doh, dw) = (d.counters().overhead(), d.weight() as u64);
        if most.is_none_or(|(_, moh, mw)| moh * dw < doh * mw) {
            most = Some((i, doh, dw));
        }
    }
    most.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;

    #[test]
    fn a_full_map_evicts_its_stalest_destination_and_counts_it() {
        let snap = service(SchedulerKind::Lblcr, &[1, 1]);
        let dests = snap.service(0).dests();
        let mut s = Lblcr::with_capacity(DEFAULT_EXPIRATION, 2);
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        s.pick(dests, ip("8.8.8.8"), 0);
        s.pick(dests, ip("8.8.4.4"), 1);
        s.pick(dests, ip("8.8.8.8"), 2);
        s.pick(dests, ip("1.1.1.1"), 3);
        assert_eq!((s.len(), s.evictions()), (2, 1));
        assert!(s.set(ip("8.8.4.4")).is_none(), "the stalest went");
        assert_eq!(s.set(ip("1.1.1.1")).map(<[usize]>::len), Some(1), "a fresh set of one");
        assert!(s.set(ip("8.8.8.8")).is_some());
    }

    #[test]
    fn set_grows_under_load_and_shrinks_after_expiration() {
        let snap = service(SchedulerKind::Lblcr, &[2, 2, 2]);
        let dests = snap.service(0).dests();
        let dst: IpAddr = "8.8.8.8".parse().unwrap();
        let mut s = Lblcr::with_expiration(300);
        assert_eq!(s.pick(dests, dst, 0), Some(0));
        assert_eq!(s.set(dst), Some(&[0][..]));
        load(&snap, 0, 3, 0); // 3 active > weight 2 while others idle: overloaded
        assert_eq!(s.pick(dests, dst, 10), Some(1), "wlc's choice joins the set");
        assert_eq!(s.set(dst), Some(&[1, 0][..]));
        load(&snap, 1, 3, 0);
        assert_eq!(s.pick(dests, dst, 20), Some(2));
        assert_eq!(s.set(dst), Some(&[2, 1, 0][..]));
        // Load goes away; sets unchanged for more than 300 s shed their most loaded member,
        // one per scheduling decision.
        let c1 = snap.service(0).dests()[1].counters();
        for _ in 0..3 {
            c1.unbind(true);
        }
        assert_eq!(s.pick(dests, dst, 200), Some(2), "set changed at 20: no shedding yet");
        assert_eq!(s.set(dst).unwrap().len(), 3);
        assert_eq!(s.pick(dests, dst, 400), Some(2), "min of the set is server 2 (idle)");
        assert_eq!(s.set(dst), Some(&[2, 1][..]), "server 0 (most loaded) shed");
        assert_eq!(s.pick(dests, dst, 500), Some(2), "set changed at 400: no shedding yet");
        assert_eq!(s.set(dst).unwrap().len(), 2);
        s.pick(dests, dst, 701);
        assert_eq!(s.set(dst).unwrap().len(), 1, "shrinks to one member, never to zero");
        s.pick(dests, dst, 900);
        assert_eq!(s.set(dst).unwrap().len(), 1);
        s.pick(dests, dst, 1300);
        assert_eq!(s.set(dst), Some(&[1][..]), "unused for 400 s > 300: expired, rebuilt by wlc");
    }
}
