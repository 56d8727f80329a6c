//! Locality-based least connections with replication (IPVS `ip_vs_lblcr.c`): like lblc, but
//! a destination address maps to a *set* of servers. A connection goes to the least loaded
//! member; when that one is overloaded (lblc's sense), wlc picks a server from the whole
//! service and it joins the set, so a hot destination spreads over more servers. A set that
//! has not changed for `expiration` sheds its most loaded member, one per new connection,
//! so the set shrinks back when the load is gone.

use std::collections::HashMap;
use std::net::IpAddr;

use super::lblc::{is_overloaded, CHECK_INTERVAL, DEFAULT_EXPIRATION, ENTRY_TIMEOUT, MAX_SIZE};
use super::{least_weighted, remap};
use crate::service::snapshot::Dest;
use crate::service::DestCounters;

#[derive(Debug, Clone)]
struct Entry {
    /// Server indices, newest first (IPVS adds at the list head; order breaks ties).
    set: Vec<usize>,
    lastmod: u32,
    lastuse: u32,
}

#[derive(Debug, Clone)]
pub struct Lblcr {
    map: HashMap<IpAddr, Entry>,
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
        Lblcr { map: HashMap::new(), expiration, next_check: 0 }
    }

    /// The server set of `dst`, newest first.
    pub fn set(&self, dst: IpAddr) -> Option<&[usize]> {
        self.map.get(&dst).map(|e| e.set.as_slice())
    }

    pub fn pick(&mut self, dests: &[Dest], dst: IpAddr, now: u32) -> Option<usize> {
        self.expire(now);
        let Some(e) = self.map.get_mut(&dst) else {
            let i = least_weighted(dests, DestCounters::overhead)?;
            self.map.insert(dst, Entry { set: vec![i], lastmod: now, lastuse: now });
            return Some(i);
        };
        e.lastuse = now;
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
        self.map.retain(|_, e| {
            e.set = e.set.iter().filter_map(|&i| remap(old, new, i, removed)).collect();
            !e.set.is_empty()
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
    use crate::sched::testutil::*;
    use crate::service::SchedulerKind;

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
