//! Neighbours (the ARP cache) and the packets waiting for one to resolve.
//!
//! The table is bounded: entries come from the network (ARP), so a flood of
//! forged senders must not grow it without limit. When full, a new neighbour
//! is refused and counted; static entries and existing ones keep working.
//! Entries learned from ARP expire after a lifetime unless refreshed; static
//! ones never do. Time is a coarse tick in seconds passed in by the caller, so
//! the table never reads a clock.
//!
//! [`PendingQueue`] holds packets whose next hop has no MAC yet, bounded in
//! total and per next hop, in preallocated storage: queuing, releasing and
//! dropping never allocate.

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;

use crate::service::fasthash::FastMap;
use crate::wire::MacAddr;

/// A resolved neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: MacAddr,
    pub port: u16,
    /// When it was last confirmed (tick seconds); `None` for a static entry.
    pub confirmed: Option<u32>,
}

/// What [`NeighbourTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    New,
    /// Known already; its MAC or port changed.
    Changed,
    /// Known already, same MAC and port: only the lifetime was refreshed.
    Refreshed,
    /// Static entries are never overwritten by the network.
    Static,
    /// The table is full; the neighbour was not added.
    Full,
}

/// Why a configuration change to the table was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighError {
    Full(usize),
    NotFound(Ipv4Addr),
}

impl fmt::Display for NeighError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeighError::Full(n) => write!(f, "the neighbour table is full ({n} entries)"),
            NeighError::NotFound(ip) => write!(f, "no neighbour entry for {ip}"),
        }
    }
}

impl std::error::Error for NeighError {}

#[derive(Debug, Clone)]
pub struct NeighbourTable {
    entries: FastMap<Ipv4Addr, Neighbour>,
    capacity: usize,
    lifetime: u32,
}

impl NeighbourTable {
    /// A table of at most `capacity` entries whose learned entries live
    /// `lifetime` seconds after their last confirmation.
    pub fn new(capacity: usize, lifetime: u32) -> NeighbourTable {
        let mut entries = FastMap::default();
        entries.reserve(capacity);
        NeighbourTable { entries, capacity, lifetime }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records what the network said about `ip` at time `now`.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16, now: u32) -> Learned {
        if let Some(n) = self.entries.get_mut(&ip) {
            if n.confirmed.is_none() {
                return Learned::Static;
            }
            let changed = n.mac != mac || n.port != port;
            *n = Neighbour { mac, port, confirmed: Some(now) };
            return if changed { Learned::Changed } else { Learned::Refreshed };
        }
        if self.entries.len() >= self.capacity {
            return Learned::Full;
        }
        self.entries.insert(ip, Neighbour { mac, port, confirmed: Some(now) });
        Learned::New
    }

    /// Adds or replaces a permanent entry (configuration).
    pub fn add_static(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16) -> Result<(), NeighError> {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.capacity {
            return Err(NeighError::Full(self.capacity));
        }
        self.entries.insert(ip, Neighbour { mac, port, confirmed: None });
        Ok(())
    }

    /// Removes an entry, static or learned.
    pub fn delete(&mut self, ip: Ipv4Addr) -> Result<Neighbour, NeighError> {
        self.entries.remove(&ip).ok_or(NeighError::NotFound(ip))
    }

    /// The live entry for `ip` at time `now`.
    #[inline]
    pub fn lookup(&self, ip: Ipv4Addr, now: u32) -> Option<&Neighbour> {
        self.entries.get(&ip).filter(|n| self.is_live(n, now))
    }

    fn is_live(&self, n: &Neighbour, now: u32) -> bool {
        n.confirmed.is_none_or(|t| now.wrapping_sub(t) < self.lifetime)
    }

    /// Drops expired entries; returns how many.
    pub fn expire(&mut self, now: u32) -> usize {
        let before = self.entries.len();
        let lifetime = self.lifetime;
        self.entries.retain(|_, n| n.confirmed.is_none_or(|t| now.wrapping_sub(t) < lifetime));
        before - self.entries.len()
    }

    /// Every entry (live or not yet expired), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Ipv4Addr, &Neighbour)> {
        self.entries.iter()
    }
}

/// What happened to a packet offered to the pending queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued<F> {
    /// Queued; the first packet for this next hop, so an ARP request is due.
    First,
    /// Queued behind others for the same next hop.
    Behind,
    /// Refused: the queue (or this next hop's share) is full. The packet is
    /// handed back for the caller to drop and count.
    Full(F),
}

/// Packets waiting for their next hop's MAC, oldest first.
pub struct PendingQueue<F> {
    items: VecDeque<Waiting<F>>,
    capacity: usize,
    per_hop: usize,
}

struct Waiting<F> {
    hop: Ipv4Addr,
    since: u32,
    frame: F,
}

impl<F> PendingQueue<F> {
    /// At most `capacity` packets in all and `per_hop` per next hop.
    pub fn new(capacity: usize, per_hop: usize) -> PendingQueue<F> {
        PendingQueue { items: VecDeque::with_capacity(capacity), capacity, per_hop }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues `frame` for next hop `hop` at time `now`.
    pub fn push(&mut self, hop: Ipv4Addr, frame: F, now: u32) -> Queued<F> {
        let same_hop = self.items.iter().filter(|w| w.hop == hop).count();
        if self.items.len() >= self.capacity || same_hop >= self.per_hop {
            return Queued::Full(frame);
        }
        self.items.push_back(Waiting { hop, since: now, frame });
        if same_hop == 0 {
            Queued::First
        } else {
            Queued::Behind
        }
    }

    /// Whether anything waits for `hop`.
    pub fn is_waiting(&self, hop: Ipv4Addr) -> bool {
        self.items.iter().any(|w| w.hop == hop)
    }

    /// Takes out, in arrival order, every packet waiting for `hop`.
    pub fn release(&mut self, hop: Ipv4Addr, mut out: impl FnMut(F)) -> usize {
        self.take_where(|w| w.hop == hop, &mut out)
    }

    /// Takes out every packet that has waited at least `max_wait` seconds.
    pub fn expire(&mut self, now: u32, max_wait: u32, mut out: impl FnMut(F)) -> usize {
        self.take_where(|w| now.wrapping_sub(w.since) >= max_wait, &mut out)
    }

    /// Distinct next hops with packets waiting, for re-sending ARP requests.
    pub fn hops(&self, mut each: impl FnMut(Ipv4Addr)) {
        for (i, w) in self.items.iter().enumerate() {
            if self.items.iter().take(i).all(|earlier| earlier.hop != w.hop) {
                each(w.hop);
            }
        }
    }

    fn take_where(&mut self, pred: impl Fn(&Waiting<F>) -> bool, out: &mut impl FnMut(F)) -> usize {
        // Rotate through the queue once, keeping order: no allocation.
        let mut taken = 0;
        for _ in 0..self.items.len() {
            let w = self.items.pop_front().expect("length checked");
            if pred(&w) {
                out(w.frame);
                taken += 1;
            } else {
                self.items.push_back(w);
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    #[test]
    fn learn_refresh_change_and_expire() {
        let mut t = NeighbourTable::new(8, 300);
        assert_eq!(t.learn(ip(1), MAC_A, 0, 100), Learned::New);
        assert_eq!(t.learn(ip(1), MAC_A, 0, 200), Learned::Refreshed);
        assert_eq!(t.lookup(ip(1), 499).map(|n| n.mac), Some(MAC_A));
        assert_eq!(t.lookup(ip(1), 500), None, "expired 300 s after the last confirmation");
        assert_eq!(t.learn(ip(1), MAC_B, 1, 450), Learned::Changed);
        assert_eq!(t.lookup(ip(1), 460), Some(&Neighbour { mac: MAC_B, port: 1, confirmed: Some(450) }));
        assert_eq!(t.expire(749), 0);
        assert_eq!(t.expire(750), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn static_entries_never_expire_nor_change() {
        let mut t = NeighbourTable::new(8, 10);
        t.add_static(ip(1), MAC_A, 0).unwrap();
        assert_eq!(t.learn(ip(1), MAC_B, 0, 5), Learned::Static);
        assert_eq!(t.expire(1_000_000), 0);
        assert_eq!(t.lookup(ip(1), 1_000_000).unwrap().mac, MAC_A);
        assert_eq!(t.delete(ip(1)).unwrap().mac, MAC_A);
        assert_eq!(t.delete(ip(1)), Err(NeighError::NotFound(ip(1))));
    }

    #[test]
    fn a_full_table_refuses_newcomers_and_keeps_the_rest() {
        let mut t = NeighbourTable::new(2, 300);
        assert_eq!(t.learn(ip(1), MAC_A, 0, 0), Learned::New);
        assert_eq!(t.learn(ip(2), MAC_A, 0, 0), Learned::New);
        assert_eq!(t.learn(ip(3), MAC_A, 0, 0), Learned::Full);
        assert_eq!(t.add_static(ip(4), MAC_A, 0), Err(NeighError::Full(2)));
        assert_eq!(t.learn(ip(2), MAC_B, 0, 1), Learned::Changed, "known entries still update");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn pending_queue_is_bounded_and_keeps_order() {
        let mut q = PendingQueue::new(4, 3);
        assert_eq!(q.push(ip(1), "a1", 0), Queued::First);
        assert_eq!(q.push(ip(2), "b1", 0), Queued::First);
        assert_eq!(q.push(ip(1), "a2", 1), Queued::Behind);
        assert_eq!(q.push(ip(1), "a3", 1), Queued::Behind);
        assert_eq!(q.push(ip(1), "a4", 1), Queued::Full("a4"), "per-hop limit");
        assert_eq!(q.push(ip(3), "c1", 1), Queued::Full("c1"), "total limit");
        let mut hops = Vec::new();
        q.hops(|h| hops.push(h));
        assert_eq!(hops, vec![ip(1), ip(2)]);
        let mut out = Vec::new();
        assert_eq!(q.release(ip(1), |f| out.push(f)), 3);
        assert_eq!(out, vec!["a1", "a2", "a3"]);
        assert!(q.is_waiting(ip(2)) && !q.is_waiting(ip(1)));
        let mut dropped = Vec::new();
        assert_eq!(q.expire(2, 3, |f| dropped.push(f)), 0);
        assert_eq!(q.expire(3, 3, |f| dropped.push(f)), 1);
        assert_eq!(dropped, vec!["b1"]);
        assert!(q.is_empty());
    }
}
