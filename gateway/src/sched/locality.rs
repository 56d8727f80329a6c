//! The destination map of lblc and lblcr: destination address -> that scheduler's entry,
//! bounded, because a client chooses the addresses (every SYN to a new destination of a
//! fwmark or port-0 service would otherwise grow it without end).
//!
//! IPVS bounds its map softly (over 16384 entries, its periodic check drops those idle for
//! a minute); here [`CAPACITY`] is a hard bound: a new destination beyond it takes the
//! place of the stalest entry (least recently used), and the eviction is counted
//! ([`LocalityMap::evictions`], `gwctl stats`: "lblc destinations evicted"). Entries are
//! kept in use order on a doubly linked list through their slots, so the stalest is its
//! tail, and expiry by idle time pops from the tail only what has expired.
//!
//! The index is open addressing with linear probing over slot numbers, at most half full
//! and without tombstones (removal shifts the run back), hashed with a per-map random
//! SipHash key ([`RandomState`]): a client cannot aim collisions at it. Slots grow up to
//! the capacity and are reused after that; the index is allocated at the first insert.
//! Once the map is full nothing allocates, and an evicted or removed slot hands its value
//! to the next insert (lblcr's server set keeps its buffer).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;

/// Entries per map: IPVS's `IP_VS_LBLC_TAB_SIZE * 16`, its soft limit made hard.
pub const CAPACITY: u32 = 1024 * 16;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Slot<V> {
    addr: IpAddr,
    hash: u32,
    lastuse: u32,
    /// Toward the most recently used (`prev`) and the stalest (`next`); a free slot
    /// links the free list through `next`.
    prev: u32,
    next: u32,
    value: V,
}

#[derive(Debug, Clone)]
pub struct LocalityMap<V> {
    capacity: u32,
    slots: Vec<Slot<V>>,
    /// Slot numbers, `NIL` where empty; a power of two of at least twice the capacity.
    index: Vec<u32>,
    hasher: RandomState,
    /// Most and least recently used live slots.
    head: u32,
    tail: u32,
    free: u32,
    len: u32,
    evictions: u64,
}

impl<V: Default> LocalityMap<V> {
    pub fn new(capacity: u32) -> Self {
        assert!(capacity > 0 && capacity < NIL / 4, "locality map capacity {capacity}");
        LocalityMap {
            capacity,
            slots: Vec::new(),
            index: Vec::new(),
            hasher: RandomState::new(),
            head: NIL,
            tail: NIL,
            free: NIL,
            len: 0,
            evictions: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries that made room for a new destination since the map was created.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The entry of `addr`, without marking it used.
    pub fn get(&self, addr: IpAddr) -> Option<&V> {
        let (_, slot) = self.find(addr)?;
        Some(&self.slots[slot as usize].value)
    }

    /// The entry of `addr`, marked used at `now`.
    pub fn get_mut(&mut self, addr: IpAddr, now: u32) -> Option<&mut V> {
        let (_, slot) = self.find(addr)?;
        self.touch(slot, now);
        Some(&mut self.slots[slot as usize].value)
    }

    /// Adds an entry for `addr` (not in the map), used at `now`: `init` sets its value,
    /// given a default one or the value of a slot freed or evicted before (reuse its
    /// buffers). When the map is full the stalest entry makes room, counted.
    pub fn insert(&mut self, addr: IpAddr, now: u32, init: impl FnOnce(&mut V)) {
        debug_assert!(self.find(addr).is_none(), "{addr} is in the map already");
        if self.index.is_empty() {
            self.index = vec![NIL; (2 * self.capacity as usize).next_power_of_two()];
        }
        let slot = if self.free != NIL {
            let s = self.free;
            self.free = self.slots[s as usize].next;
            s
        } else if (self.slots.len() as u32) < self.capacity {
            self.slots.push(Slot { addr, hash: 0, lastuse: now, prev: NIL, next: NIL, value: V::default() });
            self.slots.len() as u32 - 1
        } else {
            let stalest = self.tail;
            self.unlink_and_unindex(stalest);
            self.evictions += 1;
            stalest
        };
        let hash = self.hash(addr);
        let s = &mut self.slots[slot as usize];
        (s.addr, s.hash, s.lastuse) = (addr, hash, now);
        init(&mut s.value);
        let mask = self.index.len() - 1;
        let mut pos = hash as usize & mask;
        while self.index[pos] != NIL {
            pos = (pos + 1) & mask;
        }
        self.index[pos] = slot;
        self.push_front(slot);
        self.len += 1;
    }

    /// Drops the entries unused for more than `max_idle` seconds at `now`.
    pub fn expire(&mut self, now: u32, max_idle: u32) {
        while self.tail != NIL && now.saturating_sub(self.slots[self.tail as usize].lastuse) > max_idle {
            self.remove_slot(self.tail);
        }
    }

    /// Keeps the entries for which `keep` is true (it may edit them); not counted as
    /// evictions.
    pub fn retain(&mut self, mut keep: impl FnMut(&mut V) -> bool) {
        let mut slot = self.head;
        while slot != NIL {
            let next = self.slots[slot as usize].next;
            if !keep(&mut self.slots[slot as usize].value) {
                self.remove_slot(slot);
            }
            slot = next;
        }
    }

    fn hash(&self, addr: IpAddr) -> u32 {
        self.hasher.hash_one(addr) as u32
    }

    /// (index position, slot) of `addr`.
    fn find(&self, addr: IpAddr) -> Option<(usize, u32)> {
        if self.len == 0 {
            return None;
        }
        let mask = self.index.len() - 1;
        let mut pos = self.hash(addr) as usize & mask;
        loop {
            let slot = self.index[pos];
            if slot == NIL {
                return None;
            }
            if self.slots[slot as usize].addr == addr {
                return Some((pos, slot));
            }
            pos = (pos + 1) & mask;
        }
    }

    fn touch(&mut self, slot: u32, now: u32) {
        self.slots[slot as usize].lastuse = now;
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    fn push_front(&mut self, slot: u32) {
        let old = self.head;
        let s = &mut self.slots[slot as usize];
        (s.prev, s.next) = (NIL, old);
        if old != NIL {
            self.slots[old as usize].prev = slot;
        } else {
            self.tail = slot;
        }
        self.head = slot;
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = (self.slots[slot as usize].prev, self.slots[slot as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    /// Takes a live slot out of the use list and the index (the caller reuses or frees it).
    fn unlink_and_unindex(&mut self, slot: u32) {
        self.unlink(slot);
        let mask = self.index.len() - 1;
        let mut pos = self.slots[slot as usize].hash as usize & mask;
        while self.index[pos] != slot {
            pos = (pos + 1) & mask;
        }
        self.unindex(pos);
        self.len -= 1;
    }

    fn remove_slot(&mut self, slot: u32) {
        self.unlink_and_unindex(slot);
        self.slots[slot as usize].next = self.free;
        self.free = slot;
    }

    /// Empties index position `hole`, moving back the entries of the run after it whose
    /// probe would otherwise pass the hole (backward-shift deletion: no tombstones).
    fn unindex(&mut self, mut hole: usize) {
        let mask = self.index.len() - 1;
        let mut pos = hole;
        loop {
            pos = (pos + 1) & mask;
            let slot = self.index[pos];
            if slot == NIL {
                break;
            }
            let home = self.slots[slot as usize].hash as usize & mask;
            // The entry at `pos` stays unless its home is cyclically outside (hole, pos].
            let stays = if hole < pos { hole < home && home <= pos } else { hole < home || home <= pos };
            if !stays {
                self.index[hole] = slot;
                hole = pos;
            }
        }
        self.index[hole] = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn full_map_evicts_the_stalest_and_counts_it() {
        let mut m: LocalityMap<u32> = LocalityMap::new(3);
        for n in 1..=3 {
            m.insert(ip(n), n, |v| *v = n * 10);
        }
        // 1 is used again: 2 is now the stalest.
        assert_eq!(m.get_mut(ip(1), 4).copied(), Some(10));
        m.insert(ip(4), 5, |v| *v = 40);
        assert_eq!((m.len(), m.evictions()), (3, 1));
        assert_eq!(m.get(ip(2)), None, "the stalest went");
        assert_eq!([1, 3, 4].map(|n| m.get(ip(n)).copied()), [Some(10), Some(30), Some(40)]);
        m.insert(ip(5), 6, |v| *v = 50);
        assert_eq!(m.get(ip(3)), None);
        assert_eq!(m.evictions(), 2);
    }

    #[test]
    fn expiry_and_retain_free_slots_for_reuse_without_evicting() {
        let mut m: LocalityMap<Vec<u32>> = LocalityMap::new(4);
        for n in 1..=4 {
            m.insert(ip(n), n * 100, |v| *v = vec![n; 8]);
        }
        m.expire(400, 250); // 1 (idle 300) goes; 2 (idle 200) stays
        assert_eq!((m.len(), m.get(ip(1)), m.get(ip(2)).map(Vec::len)), (3, None, Some(8)));
        m.retain(|v| v[0] != 3);
        assert_eq!((m.len(), m.get(ip(3))), (2, None));
        // The freed slots come back with their buffers, and nothing was evicted.
        m.insert(ip(9), 500, |v| {
            assert!(v.capacity() >= 8, "a freed slot's value is handed over");
            v.clear();
            v.push(9);
        });
        m.insert(ip(10), 500, |v| *v = vec![10]);
        assert_eq!((m.len(), m.evictions()), (4, 0));
        assert_eq!(m.get(ip(9)), Some(&vec![9]));
    }

    #[test]
    fn ipv4_and_ipv6_destinations_are_distinct_keys() {
        let mut m: LocalityMap<u8> = LocalityMap::new(8);
        m.insert(ip(1), 0, |v| *v = 4);
        m.insert("::1".parse().unwrap(), 0, |v| *v = 6);
        assert_eq!(m.get(ip(1)), Some(&4));
        assert_eq!(m.get("::1".parse().unwrap()), Some(&6));
        assert_eq!(m.get("::2".parse().unwrap()), None);
    }

    proptest::proptest! {
        /// Against a model (a map plus use times): the same entries, never more than the
        /// capacity, and an eviction exactly when a new address meets a full map, taking
        /// the least recently used.
        #[test]
        fn behaves_like_a_bounded_lru_map(ops in proptest::collection::vec((0u8..4, 0u32..24), 1..400)) {
            let cap = 8;
            let mut m: LocalityMap<u32> = LocalityMap::new(cap);
            let mut model: HashMap<u32, (u32, u32)> = HashMap::new(); // addr -> (value, lastuse)
            let mut evictions = 0;
            for (now, (op, a)) in (1u32..).zip(ops) {
                match op {
                    0 | 1 => {
                        if let Some(v) = m.get_mut(ip(a), now) {
                            let e = model.get_mut(&a).expect("in the model");
                            proptest::prop_assert_eq!(*v, e.0);
                            e.1 = now;
                        } else {
                            proptest::prop_assert!(!model.contains_key(&a));
                            if model.len() == cap as usize {
                                let (&stalest, _) = model.iter().min_by_key(|(_, e)| e.1).unwrap();
                                model.remove(&stalest);
                                evictions += 1;
                            }
                            m.insert(ip(a), now, |v| *v = a + now);
                            model.insert(a, (a + now, now));
                        }
                    }
                    2 => {
                        m.retain(|v| *v % 3 != 0);
                        model.retain(|_, e| e.0 % 3 != 0);
                    }
                    _ => {
                        m.expire(now, 10);
                        model.retain(|_, e| now - e.1 <= 10);
                    }
                }
                proptest::prop_assert_eq!(m.len(), model.len());
                proptest::prop_assert_eq!(m.evictions(), evictions);
                for a in 0..24 {
                    proptest::prop_assert_eq!(m.get(ip(a)).copied(), model.get(&a).map(|e| e.0));
                }
            }
        }
    }
}
