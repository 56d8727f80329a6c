//! Neighbours (the ARP cache, and its IPv6 counterpart filled by neighbour
//! discovery) and the packets waiting for one to resolve. Both types are
//! generic over the address ([`FamilyAddr`]) and default to IPv4.
//!
//! The table is bounded: entries come from the network (ARP), so a flood of
//! forged senders must not grow it without limit nor crowd out the addresses
//! the gateway sends to. Learned entries are of two kinds:
//! - needed: an address the gateway sends to (it answered our request, or it
//!   is a route's gateway or a real server). When the table is full, a new
//!   needed entry evicts the stalest unsolicited one, and only when there is
//!   none is it refused.
//! - unsolicited: the sender of an ARP packet to us that we do not send to
//!   (Linux keeps such a requester as STALE). They may fill at most a quarter
//!   of the table and are evicted first, so a flood of forged requesters costs
//!   at most a round trip for a client we later answer.
//!
//! Static entries (configuration) have their own bound,
//! [`MAX_STATIC_NEIGHBOURS`], outside the learned capacity: the control plane
//! refuses more than that, so every accepted entry is installed in every
//! worker and statics never take the room ARP needs. Entries learned from ARP
//! expire after a lifetime unless refreshed; static ones never do. Time is a
//! coarse tick in seconds passed in by the caller, so the table never reads a
//! clock. Which port may teach which address is the caller's decision (the
//! pipeline checks the route); the table only records it.
//!
//! A cache of lookups (the workers' egress cache) stays right without
//! asking the table again: an answer holds while [`NeighbourTable::version`]
//! is unchanged (it moves with every change that alters or removes an
//! answer) and its [`Lease`] holds (a learned entry's lifetime).
//!
//! [`PendingQueue`] holds packets whose next hop has no MAC yet, bounded in
//! total and per next hop, in preallocated storage: queuing, releasing and
//! dropping never allocate.

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;

use super::cidr::FamilyAddr;
use crate::model::fasthash::FastMap;
use crate::wire::MacAddr;

/// The most static (permanent) neighbours a table holds, on top of its learned
/// capacity. `gwctl neigh add` and the config file's "neighbours" are refused
/// beyond it, naming the entry and this limit.
pub const MAX_STATIC_NEIGHBOURS: usize = 1024;

/// A resolved neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub mac: MacAddr,
    pub port: u16,
    /// When it was last confirmed (tick seconds); `None` for a static entry.
    pub confirmed: Option<u32>,
    /// The gateway sends to this address ([`Origin::Needed`]); `false` for an
    /// unsolicited entry, which is evicted first.
    pub needed: bool,
}

/// Why the network told us about a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An address the gateway sends to: it answered our request, or it is a
    /// route's gateway or a real server.
    Needed,
    /// The sender of a packet to us that the gateway does not otherwise need.
    Unsolicited,
}

/// What [`NeighbourTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    New,
    /// Known already; its MAC or port changed, or it became needed.
    Changed,
    /// Known already, same MAC and port: only the lifetime was refreshed.
    Refreshed,
    /// Static entries are never overwritten by the network.
    Static,
    /// The table is full of needed entries; the neighbour was not added.
    Full,
    /// Unsolicited entries fill their share of the table; not added.
    UnsolicitedFull,
}

/// Why a configuration change to the table was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighError<A: FamilyAddr = Ipv4Addr> {
    /// Already [`MAX_STATIC_NEIGHBOURS`] (the value) static entries.
    TooManyStatic(usize),
    NotFound(A),
}

impl<A: FamilyAddr> fmt::Display for NeighError<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeighError::TooManyStatic(n) => write!(f, "the neighbour table holds at most {n} static entries"),
            NeighError::NotFound(ip) => write!(f, "no neighbour entry for {ip}"),
        }
    }
}

impl<A: FamilyAddr> std::error::Error for NeighError<A> {}

/// How long an answer of [`NeighbourTable::lookup_leased`] holds, the table
/// unchanged: from `since` for `life` seconds, in the table's wrapping tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    since: u32,
    life: u32,
}

impl Lease {
    /// A lease that never holds, for a slot no answer filled yet.
    pub const NONE: Lease = Lease { since: 0, life: 0 };

    /// Whether the answer still holds at `now`: what
    /// [`NeighbourTable::lookup`] would say, the table unchanged.
    #[inline(always)]
    pub fn holds(&self, now: u32) -> bool {
        now.wrapping_sub(self.since) < self.life
    }
}

#[derive(Debug, Clone)]
pub struct NeighbourTable<A: FamilyAddr = Ipv4Addr> {
    entries: FastMap<A, Neighbour>,
    /// Moves (wrapping) with every change that alters or removes an answer:
    /// see [`NeighbourTable::version`].
    version: u32,
    /// Learned entries (needed and unsolicited) at most.
    capacity: usize,
    /// Unsolicited entries at most: a quarter of `capacity`.
    unsolicited_capacity: usize,
    lifetime: u32,
    statics: usize,
    unsolicited: usize,
}

impl<A: FamilyAddr> NeighbourTable<A> {
    /// A table of at most `capacity` learned entries (a quarter of them
    /// unsolicited) plus [`MAX_STATIC_NEIGHBOURS`] static ones, whose learned
    /// entries live `lifetime` seconds after their last confirmation. The
    /// whole is reserved now: learning never allocates.
    pub fn new(capacity: usize, lifetime: u32) -> NeighbourTable<A> {
        let mut entries = FastMap::default();
        entries.reserve(capacity + MAX_STATIC_NEIGHBOURS);
        NeighbourTable {
            entries,
            version: 0,
            capacity,
            unsolicited_capacity: capacity / 4,
            lifetime,
            statics: 0,
            unsolicited: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Changes with every change to the table that alters or removes an
    /// answer of [`lookup`](Self::lookup): a MAC or port changed, an entry
    /// deleted, replaced by a static one or expired. Not with a new entry
    /// (no answer was given for it before) nor a refreshed one (its answer
    /// only lasts longer). An answer taken with [`lookup_leased`] holds while
    /// this is unchanged and its [`Lease`] holds.
    ///
    /// [`lookup_leased`]: Self::lookup_leased
    #[inline(always)]
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The next version: an answer changed.
    fn changed(&mut self) {
        self.version = self.version.wrapping_add(1);
    }

    /// How many entries are static, and how many unsolicited.
    pub fn statics(&self) -> usize {
        self.statics
    }

    pub fn unsolicited(&self) -> usize {
        self.unsolicited
    }

    /// Records what the network said about `ip` at time `now`. A known entry
    /// is updated whatever `origin` (and becomes needed if this one is); a new
    /// one is added within its kind's share.
    pub fn learn(&mut self, ip: A, mac: MacAddr, port: u16, origin: Origin, now: u32) -> Learned {
        let needed = origin == Origin::Needed;
        if let Some(n) = self.entries.get_mut(&ip) {
            if n.confirmed.is_none() {
                return Learned::Static;
            }
            let upgraded = needed && !n.needed;
            if upgraded {
                self.unsolicited -= 1;
            }
            let changed = n.mac != mac || n.port != port || upgraded;
            *n = Neighbour { mac, port, confirmed: Some(now), needed: needed || n.needed };
            if !changed {
                return Learned::Refreshed;
            }
            self.changed();
            return Learned::Changed;
        }
        let learned = self.entries.len() - self.statics;
        if !needed {
            if self.unsolicited >= self.unsolicited_capacity {
                return Learned::UnsolicitedFull;
            }
            if learned >= self.capacity {
                return Learned::Full;
            }
            self.unsolicited += 1;
        } else if learned >= self.capacity && !self.evict_unsolicited(now) {
            return Learned::Full;
        }
        self.entries.insert(ip, Neighbour { mac, port, confirmed: Some(now), needed });
        Learned::New
    }

    /// Removes the unsolicited entry confirmed longest ago, if any. A scan of
    /// the table, only when it is full, a needed address arrives and there is
    /// an unsolicited entry to find (a table full of needed ones costs none).
    fn evict_unsolicited(&mut self, now: u32) -> bool {
        if self.unsolicited == 0 {
            return false;
        }
        let stalest = self
            .entries
            .iter()
            .filter(|(_, n)| !n.needed && n.confirmed.is_some())
            .max_by_key(|(_, n)| n.confirmed.map(|t| now.wrapping_sub(t)))
            .map(|(ip, _)| *ip);
        stalest.is_some_and(|ip| self.delete(ip).is_ok())
    }

    /// Adds or replaces a permanent entry (configuration), replacing a
    /// learned one for the same address.
    pub fn add_static(&mut self, ip: A, mac: MacAddr, port: u16) -> Result<(), NeighError<A>> {
        let is_static = self.entries.get(&ip).is_some_and(|n| n.confirmed.is_none());
        if !is_static {
            if self.statics >= MAX_STATIC_NEIGHBOURS {
                return Err(NeighError::TooManyStatic(MAX_STATIC_NEIGHBOURS));
            }
            let _ = self.delete(ip);
            self.statics += 1;
        }
        let n = Neighbour { mac, port, confirmed: None, needed: true };
        if self.entries.insert(ip, n) != Some(n) {
            self.changed();
        }
        Ok(())
    }

    /// Removes an entry, static or learned.
    pub fn delete(&mut self, ip: A) -> Result<Neighbour, NeighError<A>> {
        let n = self.entries.remove(&ip).ok_or(NeighError::NotFound(ip))?;
        self.changed();
        if n.confirmed.is_none() {
            self.statics -= 1;
        } else if !n.needed {
            self.unsolicited -= 1;
        }
        Ok(n)
    }

    /// The live entry for `ip` at time `now`.
    #[inline]
    pub fn lookup(&self, ip: A, now: u32) -> Option<&Neighbour> {
        self.lookup_leased(ip, now).map(|(n, _)| n)
    }

    /// [`lookup`](Self::lookup), with how long its answer holds: a learned
    /// entry until its lifetime ends, a static one for as long as the tick
    /// can count (2^32 - 1 seconds from `now`), both only while the
    /// [`version`](Self::version) stays.
    #[inline]
    pub fn lookup_leased(&self, ip: A, now: u32) -> Option<(&Neighbour, Lease)> {
        let n = self.entries.get(&ip)?;
        let lease = self.lease(n, now);
        lease.holds(now).then_some((n, lease))
    }

    #[inline(always)]
    fn lease(&self, n: &Neighbour, now: u32) -> Lease {
        match n.confirmed {
            Some(since) => Lease { since, life: self.lifetime },
            None => Lease { since: now, life: u32::MAX },
        }
    }

    /// Drops expired entries; returns how many.
    pub fn expire(&mut self, now: u32) -> usize {
        let before = self.entries.len();
        let lifetime = self.lifetime;
        let mut unsolicited_gone = 0;
        self.entries.retain(|_, n| {
            let keep = n.confirmed.is_none_or(|t| now.wrapping_sub(t) < lifetime);
            if !keep && !n.needed {
                unsolicited_gone += 1;
            }
            keep
        });
        self.unsolicited -= unsolicited_gone;
        let gone = before - self.entries.len();
        if gone > 0 {
            self.changed();
        }
        gone
    }

    /// Every entry (live or not yet expired), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&A, &Neighbour)> {
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
pub struct PendingQueue<F, A: FamilyAddr = Ipv4Addr> {
    items: VecDeque<Waiting<F, A>>,
    capacity: usize,
    per_hop: usize,
}

struct Waiting<F, A> {
    hop: A,
    since: u32,
    frame: F,
}

impl<F, A: FamilyAddr> PendingQueue<F, A> {
    /// At most `capacity` packets in all and `per_hop` per next hop.
    pub fn new(capacity: usize, per_hop: usize) -> PendingQueue<F, A> {
        PendingQueue { items: VecDeque::with_capacity(capacity), capacity, per_hop }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Queues `frame` for next hop `hop` at time `now`.
    pub fn push(&mut self, hop: A, frame: F, now: u32) -> Queued<F> {
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
    pub fn is_waiting(&self, hop: A) -> bool {
        self.items.iter().any(|w| w.hop == hop)
    }

    /// Takes out, in arrival order, every packet waiting for `hop`.
    pub fn release(&mut self, hop: A, mut out: impl FnMut(F)) -> usize {
        self.take_where(|w| w.hop == hop, &mut out)
    }

    /// Takes out every packet that has waited at least `max_wait` seconds.
    pub fn expire(&mut self, now: u32, max_wait: u32, mut out: impl FnMut(F)) -> usize {
        self.take_where(|w| now.wrapping_sub(w.since) >= max_wait, &mut out)
    }

    /// Distinct next hops with packets waiting, for re-sending ARP requests.
    pub fn hops(&self, mut each: impl FnMut(A)) {
        for (i, w) in self.items.iter().enumerate() {
            if self.items.iter().take(i).all(|earlier| earlier.hop != w.hop) {
                each(w.hop);
            }
        }
    }

    fn take_where(&mut self, pred: impl Fn(&Waiting<F, A>) -> bool, out: &mut impl FnMut(F)) -> usize {
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
    use std::net::Ipv6Addr;

    const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    use Origin::{Needed, Unsolicited};

    fn ip_n(n: u16) -> Ipv4Addr {
        Ipv4Addr::new(10, 1, (n >> 8) as u8, n as u8)
    }

    #[test]
    fn learn_refresh_change_and_expire() {
        let mut t = NeighbourTable::new(8, 300);
        assert_eq!(t.learn(ip(1), MAC_A, 0, Needed, 100), Learned::New);
        assert_eq!(t.learn(ip(1), MAC_A, 0, Needed, 200), Learned::Refreshed);
        assert_eq!(t.lookup(ip(1), 499).map(|n| n.mac), Some(MAC_A));
        assert_eq!(t.lookup(ip(1), 500), None, "expired 300 s after the last confirmation");
        assert_eq!(t.learn(ip(1), MAC_B, 1, Needed, 450), Learned::Changed);
        assert_eq!(t.lookup(ip(1), 460), Some(&Neighbour { mac: MAC_B, port: 1, confirmed: Some(450), needed: true }));
        assert_eq!(t.expire(749), 0);
        assert_eq!(t.expire(750), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn the_version_moves_with_every_changed_or_removed_answer_and_leases_end_as_lookups_do() {
        let mut t = NeighbourTable::new(8, 300);
        let v = t.version();
        assert_eq!(t.learn(ip(1), MAC_A, 0, Needed, 100), Learned::New);
        assert_eq!(t.learn(ip(1), MAC_A, 0, Needed, 200), Learned::Refreshed);
        assert_eq!(t.version(), v, "a new or refreshed entry changes no answer");
        let (_, lease) = t.lookup_leased(ip(1), 200).unwrap();
        assert!(lease.holds(499) && !lease.holds(500), "300 s from the last confirmation");
        assert_eq!(t.lookup_leased(ip(1), 500), None);
        assert_eq!(t.learn(ip(1), MAC_B, 0, Needed, 300), Learned::Changed);
        let v = t.version();
        assert_ne!(v, v.wrapping_sub(1));
        assert_eq!(t.expire(599), 0);
        assert_eq!(t.version(), v, "nothing expired");
        assert_eq!(t.expire(600), 1);
        assert_ne!(t.version(), v, "expired");
        let v = t.version();
        t.add_static(ip(2), MAC_A, 1).unwrap();
        assert_ne!(t.version(), v, "a static entry");
        let v = t.version();
        t.add_static(ip(2), MAC_A, 1).unwrap();
        assert_eq!(t.version(), v, "the same static entry again");
        let (_, lease) = t.lookup_leased(ip(2), 7).unwrap();
        assert!(lease.holds(7) && lease.holds(7u32.wrapping_sub(2)), "for as long as the tick counts");
        t.add_static(ip(2), MAC_B, 1).unwrap();
        assert_ne!(t.version(), v, "a static entry changed");
        let v = t.version();
        t.delete(ip(2)).unwrap();
        assert_ne!(t.version(), v, "deleted");
        // An unsolicited entry evicted for a needed one.
        let mut t = NeighbourTable::new(4, 300);
        assert_eq!(t.learn(ip(1), MAC_A, 0, Unsolicited, 0), Learned::New);
        for n in 2..5 {
            assert_eq!(t.learn(ip(n), MAC_A, 0, Needed, 1), Learned::New);
        }
        let v = t.version();
        assert_eq!(t.learn(ip(5), MAC_A, 0, Needed, 2), Learned::New);
        assert_eq!(t.lookup(ip(1), 2), None);
        assert_ne!(t.version(), v, "evicted");
    }

    #[test]
    fn static_entries_never_expire_nor_change() {
        let mut t = NeighbourTable::new(8, 10);
        t.add_static(ip(1), MAC_A, 0).unwrap();
        assert_eq!(t.learn(ip(1), MAC_B, 0, Needed, 5), Learned::Static);
        assert_eq!(t.expire(1_000_000), 0);
        assert_eq!(t.lookup(ip(1), 1_000_000).unwrap().mac, MAC_A);
        assert_eq!(t.delete(ip(1)).unwrap().mac, MAC_A);
        assert_eq!(t.delete(ip(1)), Err(NeighError::NotFound(ip(1))));
        assert_eq!(t.statics(), 0);
    }

    #[test]
    fn a_table_full_of_needed_entries_refuses_newcomers_and_keeps_the_rest() {
        let mut t = NeighbourTable::new(2, 300);
        assert_eq!(t.learn(ip(1), MAC_A, 0, Needed, 0), Learned::New);
        assert_eq!(t.learn(ip(2), MAC_A, 0, Needed, 0), Learned::New);
        assert_eq!(t.learn(ip(3), MAC_A, 0, Needed, 0), Learned::Full);
        assert_eq!(t.learn(ip(2), MAC_B, 0, Unsolicited, 1), Learned::Changed, "known entries still update");
        assert!(t.lookup(ip(2), 1).unwrap().needed, "and stay needed");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn unsolicited_entries_keep_to_a_quarter_and_make_way_for_needed_ones() {
        let mut t = NeighbourTable::new(8, 300);
        for n in 0..2 {
            assert_eq!(t.learn(ip_n(n), MAC_A, 0, Unsolicited, u32::from(n)), Learned::New);
        }
        // A flood of requesters: refused beyond a quarter of the table.
        for n in 2..1000 {
            assert_eq!(t.learn(ip_n(n), MAC_A, 0, Unsolicited, 10), Learned::UnsolicitedFull);
        }
        assert_eq!((t.len(), t.unsolicited()), (2, 2));
        for n in 0..6 {
            assert_eq!(t.learn(ip(n), MAC_B, 1, Needed, 20), Learned::New, "needed addresses find room");
        }
        // Full: a needed newcomer evicts the stalest unsolicited entry.
        assert_eq!(t.learn(ip(6), MAC_B, 1, Needed, 21), Learned::New);
        assert_eq!(t.lookup(ip_n(0), 21), None, "confirmed at 0, the stalest");
        assert!(t.lookup(ip_n(1), 21).is_some());
        // A known unsolicited entry becomes needed when it answers us.
        assert_eq!(t.learn(ip_n(1), MAC_A, 0, Needed, 22), Learned::Changed);
        assert_eq!(t.learn(ip_n(1), MAC_A, 0, Unsolicited, 22), Learned::Refreshed, "and stays needed");
        assert_eq!(t.unsolicited(), 0);
        assert_eq!(t.learn(ip(7), MAC_B, 1, Needed, 23), Learned::Full, "nothing left to evict");
        assert_eq!(t.learn(ip_n(2), MAC_A, 0, Unsolicited, 23), Learned::Full);
        // Expiry and deletion give the room back, counted right.
        assert_eq!(t.expire(23 + 300), 8);
        assert_eq!((t.len(), t.unsolicited()), (0, 0));
        assert_eq!(t.learn(ip_n(3), MAC_A, 0, Unsolicited, 400), Learned::New);
        t.delete(ip_n(3)).unwrap();
        assert_eq!(t.unsolicited(), 0);
    }

    #[test]
    fn statics_have_their_own_bound_outside_the_learned_capacity() {
        let mut t = NeighbourTable::new(2, 300);
        assert_eq!(t.learn(ip(1), MAC_A, 0, Unsolicited, 0), Learned::UnsolicitedFull, "2 / 4 = no unsolicited room");
        assert_eq!(t.learn(ip(1), MAC_A, 0, Needed, 0), Learned::New);
        assert_eq!(t.learn(ip(2), MAC_A, 0, Needed, 0), Learned::New);
        for n in 0..MAX_STATIC_NEIGHBOURS as u16 {
            t.add_static(ip_n(n), MAC_B, 1).unwrap();
        }
        assert_eq!(t.add_static(ip(3), MAC_B, 1), Err(NeighError::TooManyStatic(MAX_STATIC_NEIGHBOURS)));
        assert_eq!(
            NeighError::<Ipv4Addr>::TooManyStatic(MAX_STATIC_NEIGHBOURS).to_string(),
            "the neighbour table holds at most 1024 static entries"
        );
        t.add_static(ip_n(0), MAC_A, 0).expect("replacing a static entry takes no room");
        assert_eq!((t.len(), t.statics()), (2 + MAX_STATIC_NEIGHBOURS, MAX_STATIC_NEIGHBOURS));
        t.delete(ip_n(5)).unwrap();
        // A static entry replacing a learned one frees the learned room.
        t.add_static(ip(2), MAC_B, 1).unwrap();
        assert_eq!(t.learn(ip(3), MAC_A, 0, Needed, 1), Learned::New);
        assert_eq!(t.len(), 2 + MAX_STATIC_NEIGHBOURS);
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

    fn ip6(last: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last)
    }

    #[test]
    fn ipv6_neighbours_learn_expire_and_stay_static() {
        let mut t: NeighbourTable<Ipv6Addr> = NeighbourTable::new(8, 300);
        assert_eq!(t.learn(ip6(1), MAC_A, 0, Needed, 100), Learned::New);
        assert_eq!(t.learn(ip6(1), MAC_A, 0, Needed, 200), Learned::Refreshed);
        assert_eq!(t.learn(ip6(1), MAC_B, 1, Needed, 250), Learned::Changed);
        assert_eq!(t.lookup(ip6(1), 549).map(|n| (n.mac, n.port)), Some((MAC_B, 1)));
        assert_eq!(t.lookup(ip6(1), 550), None, "expired 300 s after the last confirmation");
        t.add_static(ip6(2), MAC_A, 0).unwrap();
        assert_eq!(t.learn(ip6(2), MAC_B, 0, Needed, 5), Learned::Static);
        assert_eq!(t.expire(1_000_000), 1);
        assert_eq!(t.lookup(ip6(2), 1_000_000).unwrap().mac, MAC_A);
        assert_eq!(t.delete(ip6(1)), Err(NeighError::NotFound(ip6(1))));
        assert_eq!(NeighError::NotFound(ip6(1)).to_string(), "no neighbour entry for 2001:db8::1");
        // Unsolicited senders keep to their quarter here too.
        assert_eq!(t.learn(ip6(10), MAC_A, 0, Unsolicited, 0), Learned::New);
        assert_eq!(t.learn(ip6(11), MAC_A, 0, Unsolicited, 0), Learned::New);
        assert_eq!(t.learn(ip6(12), MAC_A, 0, Unsolicited, 0), Learned::UnsolicitedFull);
    }

    #[test]
    fn ipv6_pending_queue_is_bounded_per_hop() {
        let mut q: PendingQueue<&str, Ipv6Addr> = PendingQueue::new(3, 2);
        assert_eq!(q.push(ip6(1), "a1", 0), Queued::First);
        assert_eq!(q.push(ip6(1), "a2", 0), Queued::Behind);
        assert_eq!(q.push(ip6(1), "a3", 0), Queued::Full("a3"));
        assert_eq!(q.push(ip6(2), "b1", 1), Queued::First);
        let mut hops = Vec::new();
        q.hops(|h| hops.push(h));
        assert_eq!(hops, vec![ip6(1), ip6(2)]);
        let mut out = Vec::new();
        assert_eq!(q.release(ip6(1), |f| out.push(f)), 2);
        assert_eq!(out, vec!["a1", "a2"]);
        assert_eq!(q.expire(4, 3, |f| out.push(f)), 1);
        assert!(q.is_empty());
    }
}
