//! Maglev hashing (Eisenbud et al., NSDI 2016), IPVS's `mh` scheduler. The permutation
//! hashes are our own (seeded splitmix64 rather than the kernel's siphash), so the table is
//! not bit-for-bit the kernel's; the construction and its properties are the same.
//!
//! Each server walks its own permutation of the `M` table slots (`offset + k * skip mod M`,
//! with `offset` and `skip` hashed from its address and port) and the servers take turns
//! claiming their next free slot until the table is full. `M` is prime so every `skip` is
//! coprime to it and every permutation visits every slot. The result:
//!
//! - balance: with equal weights every server owns `floor(M/N)` or `ceil(M/N)` slots;
//! - minimal disruption: removing a server frees only its slots, and the others' preference
//!   lists are unchanged, so most of them re-claim the same slots; measured in the tests.
//!
//! The table is a pure function of the servers' addresses, ports and weights: the hashes are
//! seeded with constants and the servers take their turns in address order, whatever order
//! they were added in. Directors with the same configuration (scale-out behind ECMP) pick
//! the same server for a flow, including after servers were added or removed on each in a
//! different order.
//!
//! Weights are turns per round: a server of weight `w` claims `w / gcd` slots per round.
//! Servers of weight 0 get no slots. A connection goes to the slot of its source address
//! (as IPVS mh does by default), so a client keeps its server while the list is unchanged.
//! An overloaded server yields no server, like dh and sh.
//!
//! The table is built once per snapshot edit on the control plane (about `M ln M` probes)
//! and shared read-only by all workers: 2 bytes per slot, 128 KiB at the default `M`.

use std::net::IpAddr;

use super::hash::hash_addr;
use super::NO_DEST;
use crate::model::snapshot::Dest;
use crate::model::ConfigError;

/// The default table size, IPVS's and Google's choice: the prime 65537.
pub const DEFAULT_TABLE_SIZE: usize = 65537;

const SEED_OFFSET: u64 = 0x6d61_676c_6576_6f66; // fixed: tables must agree across workers
const SEED_SKIP: u64 = 0x6d61_676c_6576_736b;
const SEED_LOOKUP: u64 = 0x6d61_676c_6576_6c6b;

#[derive(Debug, Clone)]
pub struct Maglev {
    table: Box<[u16]>,
}

fn is_prime(n: usize) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| !n.is_multiple_of(d))
}

impl Maglev {
    /// A table of the default size.
    pub fn new(dests: &[Dest]) -> Maglev {
        Maglev::with_size(dests, DEFAULT_TABLE_SIZE).expect("65537 is prime")
    }

    /// A table of `size` slots; `size` must be a prime.
    pub fn with_size(dests: &[Dest], size: usize) -> Result<Maglev, ConfigError> {
        if !is_prime(size) || size > u32::MAX as usize {
            return Err(ConfigError::TableSizeNotPrime(size));
        }
        let m = size as u64;
        let mut table = vec![NO_DEST; size].into_boxed_slice();
        let g = dests.iter().map(|d| d.weight()).fold(0, super::gcd) as u64;
        // (index, offset, skip, turns per round, next position in its permutation)
        let mut servers: Vec<(u16, u64, u64, u64, u64)> = dests
            .iter()
            .enumerate()
            .filter(|(_, d)| d.weight() > 0)
            .map(|(i, d)| {
                let offset = hash_addr(d.addr(), d.port(), SEED_OFFSET) % m;
                let skip = hash_addr(d.addr(), d.port(), SEED_SKIP) % (m - 1) + 1;
                (i as u16, offset, skip, d.weight() as u64 / g, 0)
            })
            .collect();
        // Turns are taken in the servers' (address, port) order, not the
        // order they were added in: two directors with the same servers build
        // the same table however the servers arrived, so a flow an ECMP
        // router moves to the other director keeps its real server.
        servers.sort_unstable_by_key(|&(idx, ..)| {
            let d = &dests[usize::from(idx)];
            (d.addr(), d.port())
        });
        if servers.is_empty() {
            return Ok(Maglev { table });
        }
        let mut filled = 0;
        'fill: loop {
            for (idx, offset, skip, turns, next) in servers.iter_mut() {
                for _ in 0..*turns {
                    let slot = loop {
                        let c = ((*offset + *next * *skip) % m) as usize;
                        *next += 1;
                        if table[c] == NO_DEST {
                            break c;
                        }
                    };
                    table[slot] = *idx;
                    filled += 1;
                    if filled == size {
                        break 'fill;
                    }
                }
            }
        }
        Ok(Maglev { table })
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table: server index per slot.
    pub fn slots(&self) -> &[u16] {
        &self.table
    }

    pub fn slot_of(&self, src: IpAddr) -> usize {
        (hash_addr(src, 0, SEED_LOOKUP) % self.table.len() as u64) as usize
    }

    pub fn pick(&self, dests: &[Dest], src: IpAddr) -> Option<usize> {
        let i = self.table[self.slot_of(src)] as usize;
        dests.get(i).filter(|d| d.is_available()).map(|_| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SchedulerKind;
    use crate::sched::testutil::*;
    use crate::sched::Prepared;
    use std::sync::Arc;

    fn table(snap: &crate::model::snapshot::Snapshot) -> &Maglev {
        match snap.service(0).prepared() {
            Some(Prepared::Mh(t)) => t,
            other => panic!("no Maglev table: {other:?}"),
        }
    }

    fn shares(t: &Maglev, n: usize) -> Vec<usize> {
        let mut count = vec![0; n];
        for &s in t.slots() {
            count[s as usize] += 1;
        }
        count
    }

    #[test]
    fn balanced_within_one_percent_for_100_servers() {
        let snap = service(SchedulerKind::Mh, &[1; 100]);
        let t = table(&snap);
        assert_eq!(t.len(), 65537);
        let count = shares(t, 100);
        let mean = 65537.0 / 100.0;
        for c in count {
            assert!((c as f64 - mean).abs() / mean < 0.01, "{c} slots vs mean {mean}");
        }
    }

    #[test]
    fn weights_scale_shares() {
        let snap = service(SchedulerKind::Mh, &[1, 2, 0]);
        let count = shares(table(&snap), 3);
        assert_eq!(count[2], 0, "weight 0 gets no slot");
        let third = 65537.0 / 3.0;
        assert!((count[0] as f64 - third).abs() / third < 0.01, "{count:?}");
    }

    /// Removing one of N servers moves its 1/N of the slots plus a little more: the
    /// measured share is printed (`cargo test mh -- --nocapture`).
    #[test]
    fn removing_one_of_n_moves_about_one_nth() {
        for n in [10usize, 100] {
            let before = service(SchedulerKind::Mh, &vec![1; n]);
            let mut ed = before.edit();
            ed.delete_dest(&key(), rs(n / 3), 80).unwrap();
            let after = ed.finish();
            let addr = |snap: &crate::model::snapshot::Snapshot, i: u16| snap.service(0).dests()[i as usize].addr();
            let (tb, ta) = (table(&before), table(&after));
            let moved = (0..tb.len()).filter(|&c| addr(&before, tb.slots()[c]) != addr(&after, ta.slots()[c])).count();
            let share = moved as f64 / tb.len() as f64;
            let ideal = 1.0 / n as f64;
            println!("mh: N={n}: {:.3}% of slots moved (ideal {:.3}%)", share * 100.0, ideal * 100.0);
            assert!(share >= ideal * 0.99, "at least the removed server's slots move");
            assert!(share < ideal * 2.0, "disruption {share} too far above 1/N");
        }
    }

    /// The server each of a spread of sources is given, by address.
    fn picks(snap: &crate::model::snapshot::Snapshot) -> Vec<IpAddr> {
        let (t, dests) = (table(snap), snap.service(0).dests());
        (0..2000u32)
            .map(|i| {
                let src = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i * 7919));
                dests[t.pick(dests, src).unwrap()].addr()
            })
            .collect()
    }

    fn with_servers(order: &[(usize, u32)]) -> Arc<crate::model::snapshot::Snapshot> {
        let mut ed = service(SchedulerKind::Mh, &[]).edit();
        for &(i, w) in order {
            add(&mut ed, i, w);
        }
        ed.finish()
    }

    #[test]
    fn directors_with_the_same_servers_pick_the_same_one_whatever_order_they_came_in() {
        let one = with_servers(&[(0, 1), (1, 2), (2, 1), (3, 3), (4, 1)]);
        let other = with_servers(&[(3, 3), (4, 1), (0, 1), (2, 1), (1, 2)]);
        assert_ne!(
            one.service(0).dests()[0].addr(),
            other.service(0).dests()[0].addr(),
            "the lists really are in other orders"
        );
        assert_eq!(picks(&one), picks(&other));

        // A server added on one and removed on the other, then the reverse:
        // both end with the same set, by different paths.
        let mut ed = one.edit();
        ed.delete_dest(&key(), rs(2), 80).unwrap();
        add(&mut ed, 5, 2);
        let one = ed.finish();
        let mut ed = other.edit();
        add(&mut ed, 5, 2);
        ed.delete_dest(&key(), rs(2), 80).unwrap();
        let other = ed.finish();
        assert_eq!(picks(&one), picks(&other));
        assert!(picks(&one).iter().all(|&a| a != rs(2)), "the removed server is picked by nobody");
    }

    #[test]
    fn table_size_must_be_prime() {
        let snap = service(SchedulerKind::Mh, &[1, 1]);
        let dests = snap.service(0).dests();
        assert_eq!(Maglev::with_size(dests, 65536).unwrap_err().to_string(), "Maglev table size 65536 is not a prime");
        let small = Maglev::with_size(dests, 13).unwrap();
        assert!(small.slots().iter().all(|&s| s < 2));
        let empty = Maglev::with_size(&[], 7).unwrap();
        assert!(empty.slots().iter().all(|&s| s == NO_DEST));
    }
}
