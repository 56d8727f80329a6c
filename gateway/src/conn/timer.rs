//! A single-level timer wheel with lazy re-arming, for connection and template expiry.
//!
//! Why this shape: a connection's deadline moves forward on nearly every packet, and the
//! packet path must pay at most one store for that. So the entry's *deadline* is a plain
//! field the packet path overwrites, while its *position* in the wheel only says "look at me
//! no later than this tick". When the wheel reaches an entry it compares the two: a deadline
//! that has passed expires the entry, a later one re-files it. A busy connection is therefore
//! re-filed once per wheel turn (`SLOTS` seconds), not once per packet.
//!
//! The one case that cannot be lazy is a deadline moving *earlier* than the entry's slot (a
//! connection going from ESTABLISHED, 900 s, to CLOSE, 10 s); the table re-files it at once,
//! which is why the lists are doubly linked: O(1) unlink from the middle.
//!
//! Deadlines further away than one turn are filed in the last slot of the turn and re-filed
//! when reached, so any timeout works with a fixed 1024-slot wheel (4 KiB of heads). Ticks
//! are seconds, the unit of every IPVS timeout; `u32` seconds do not wrap for 136 years.
//!
//! Links are `u32` indices into the caller's entry array, not pointers, so entries stay in
//! one preallocated slab, the links cost 12 bytes, and everything is safe Rust.
//!
//! Besides "what is due", the wheel answers "what was filed earliest" ([`TimerWheel::pop_earliest`]):
//! with one timeout for every entry of a wheel, that is the entry idle longest, which is what
//! a full connection table sheds first.

/// "No entry" in a link.
pub const NIL: u32 = u32::MAX;

/// The wheel bookkeeping an entry carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub next: u32,
    pub prev: u32,
    /// The tick of the slot the entry is filed in.
    pub armed: u32,
}

impl Default for Link {
    fn default() -> Self {
        Link { next: NIL, prev: NIL, armed: 0 }
    }
}

/// An entry the wheel can file.
pub trait Timed {
    fn link(&self) -> &Link;
    fn link_mut(&mut self) -> &mut Link;
}

#[derive(Debug, Clone)]
pub struct TimerWheel {
    heads: Box<[u32]>,
    /// The next tick to process: every entry filed at an earlier tick has been processed.
    cursor: u32,
    /// Entries filed.
    filed: u32,
}

impl TimerWheel {
    pub const SLOTS: u32 = 1024;

    pub fn new(now: u32) -> TimerWheel {
        TimerWheel { heads: vec![NIL; Self::SLOTS as usize].into_boxed_slice(), cursor: now, filed: 0 }
    }

    /// The slot tick for `deadline`: not before the cursor, not beyond one turn.
    #[inline(always)]
    fn tick_for(&self, deadline: u32) -> u32 {
        deadline.clamp(self.cursor, self.cursor.saturating_add(Self::SLOTS - 1))
    }

    /// Files entry `id` to be looked at by `deadline`. It must not be filed already.
    pub fn arm<T: Timed>(&mut self, items: &mut [T], id: u32, deadline: u32) {
        let tick = self.tick_for(deadline);
        let slot = (tick % Self::SLOTS) as usize;
        let head = self.heads[slot];
        *items[id as usize].link_mut() = Link { next: head, prev: NIL, armed: tick };
        if head != NIL {
            items[head as usize].link_mut().prev = id;
        }
        self.heads[slot] = id;
        self.filed += 1;
    }

    /// Takes entry `id` out of the wheel.
    pub fn disarm<T: Timed>(&mut self, items: &mut [T], id: u32) {
        let l = *items[id as usize].link();
        if l.prev != NIL {
            items[l.prev as usize].link_mut().next = l.next;
        } else {
            self.heads[(l.armed % Self::SLOTS) as usize] = l.next;
        }
        if l.next != NIL {
            items[l.next as usize].link_mut().prev = l.prev;
        }
        *items[id as usize].link_mut() = Link::default();
        self.filed -= 1;
    }

    /// Re-files `id` if `deadline` is before its slot; otherwise leaves it for later (lazy).
    #[inline]
    pub fn advance_deadline<T: Timed>(&mut self, items: &mut [T], id: u32, deadline: u32) {
        if deadline < items[id as usize].link().armed {
            self.disarm(items, id);
            self.arm(items, id, deadline);
        }
    }

    /// Takes out and returns the next entry filed at a tick up to `now`, or `None` when
    /// every slot up to `now` is empty. The caller expires the entry or re-arms it.
    pub fn pop_due<T: Timed>(&mut self, items: &mut [T], now: u32) -> Option<u32> {
        // After a gap of a turn or more every filed tick is due: visit each slot once rather
        // than every tick of the gap (a clock that jumped would otherwise cost a loop over
        // the whole gap).
        if now.saturating_sub(self.cursor) >= Self::SLOTS {
            self.cursor = now - (Self::SLOTS - 1);
        }
        while self.cursor <= now {
            let head = self.heads[(self.cursor % Self::SLOTS) as usize];
            if head != NIL {
                self.disarm(items, head);
                return Some(head);
            }
            if self.cursor == u32::MAX {
                break;
            }
            self.cursor += 1;
        }
        None
    }

    /// Takes out the entry filed at the earliest tick, due or not, and returns it with that
    /// tick; `None` when nothing is filed. Looks at most one turn of slots (4 KiB of heads),
    /// and only while something is filed.
    pub fn pop_earliest<T: Timed>(&mut self, items: &mut [T]) -> Option<(u32, u32)> {
        if self.filed == 0 {
            return None;
        }
        let from = self.cursor % Self::SLOTS;
        let head = (0..Self::SLOTS).map(|k| self.heads[((from + k) % Self::SLOTS) as usize]).find(|&h| h != NIL)?;
        let tick = items[head as usize].link().armed;
        self.disarm(items, head);
        Some((head, tick))
    }

    /// Entries filed.
    pub fn len(&self) -> usize {
        self.filed as usize
    }

    pub fn is_empty(&self) -> bool {
        self.filed == 0
    }

    /// The tick an entry due at `deadline` would be filed at now.
    pub fn slot_tick(&self, deadline: u32) -> u32 {
        self.tick_for(deadline)
    }

    pub fn cursor(&self) -> u32 {
        self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Clone)]
    struct Item {
        link: Link,
        deadline: u32,
    }

    impl Timed for Item {
        fn link(&self) -> &Link {
            &self.link
        }
        fn link_mut(&mut self) -> &mut Link {
            &mut self.link
        }
    }

    /// Runs the wheel up to `now` the way the connection table does; returns expired ids.
    fn run(w: &mut TimerWheel, items: &mut [Item], now: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(id) = w.pop_due(items, now) {
            let d = items[id as usize].deadline;
            if d <= now {
                out.push(id);
            } else {
                w.arm(items, id, d);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn expires_at_deadline_even_beyond_one_turn_and_lazily_extended() {
        let mut items = vec![Item::default(); 4];
        let mut w = TimerWheel::new(100);
        for (id, d) in [(0u32, 105u32), (1, 100 + 5000), (2, 110), (3, 107)] {
            items[id as usize].deadline = d;
            w.arm(&mut items, id, d);
        }
        items[2].deadline = 200; // a packet extends it: one store, no re-filing
        assert_eq!(run(&mut w, &mut items, 104), Vec::<u32>::new());
        assert_eq!(run(&mut w, &mut items, 107), vec![0, 3]);
        assert_eq!(run(&mut w, &mut items, 199), Vec::<u32>::new());
        assert_eq!(run(&mut w, &mut items, 200), vec![2]);
        assert_eq!(run(&mut w, &mut items, 5099), Vec::<u32>::new());
        assert_eq!(run(&mut w, &mut items, 5100), vec![1]);
    }

    #[test]
    fn earlier_deadline_refiles_and_disarm_unlinks_from_the_middle() {
        let mut items = vec![Item::default(); 3];
        let mut w = TimerWheel::new(0);
        for id in 0..3 {
            items[id as usize].deadline = 900;
            w.arm(&mut items, id, 900);
        }
        items[1].deadline = 10;
        w.advance_deadline(&mut items, 1, 10);
        assert_eq!(items[1].link.armed, 10);
        w.disarm(&mut items, 0); // tail of the slot-900 list
        assert_eq!(run(&mut w, &mut items, 10), vec![1]);
        assert_eq!(run(&mut w, &mut items, 900), vec![2]);
    }

    #[test]
    fn earliest_filed_first_due_or_not() {
        let mut items = vec![Item::default(); 4];
        let mut w = TimerWheel::new(1000);
        assert_eq!(w.pop_earliest(&mut items), None);
        // Across the wheel's wrap: tick 1030 is slot 6, tick 2000 slot 976, the cursor at 1000
        // is slot 1000.
        for (id, d) in [(0u32, 1030u32), (1, 2000), (2, 1001), (3, 1030)] {
            items[id as usize].deadline = d;
            w.arm(&mut items, id, d);
        }
        assert_eq!(w.len(), 4);
        assert_eq!(w.pop_earliest(&mut items), Some((2, 1001)));
        let mut same = [w.pop_earliest(&mut items).unwrap(), w.pop_earliest(&mut items).unwrap()];
        same.sort();
        assert_eq!(same, [(0, 1030), (3, 1030)]);
        assert_eq!(w.pop_earliest(&mut items), Some((1, 2000)));
        assert!(w.is_empty());
        assert_eq!(w.pop_earliest(&mut items), None);
        // Popping left the due-order walk consistent: nothing is found twice.
        assert_eq!(run(&mut w, &mut items, 5000), Vec::<u32>::new());
    }

    #[test]
    fn idle_gap_longer_than_a_turn() {
        let mut items = vec![Item::default(); 1];
        let mut w = TimerWheel::new(0);
        items[0].deadline = 3000;
        w.arm(&mut items, 0, 3000);
        assert_eq!(run(&mut w, &mut items, 10_000), vec![0]);
        assert_eq!(w.cursor(), 10_001);
        // A clock jump of years costs one turn of the wheel, and loses no entry.
        items[0].deadline = 10_500;
        w.arm(&mut items, 0, 10_500);
        assert_eq!(run(&mut w, &mut items, 2_000_000_000), vec![0]);
        assert_eq!(w.cursor(), 2_000_000_001);
    }
}
