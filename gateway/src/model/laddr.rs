//! Local-address port pools for FNAT: which (local address, local port) a new connection's
//! packets to the real server come from.
//!
//! Ownership (DESIGN.md invariant 2): worker `w` of `n` owns the ports with
//! `port & mask == w`, `mask = n.next_power_of_two() - 1`, as DPVS does. A reply to
//! `laddr:lport` therefore belongs to a worker that a pure function of the port names, so a
//! flow rule (or a redirect ring) can get it there. Each worker holds a pool of its own ports
//! for every local address; pools are never shared, so allocation takes no lock.
//!
//! One pool per *address*, shared by every service that lists the address: a port is handed
//! out at most once per address while in use, so two live connections never share
//! `(laddr, lport)`, let alone toward the same real server, and the connection table's reply
//! key `(raddr, rport, laddr, lport)` is always unique. (Per-real-server pools would multiply
//! capacity but cost 64 K ports of memory per server and address.)
//!
//! Free ports wait in a FIFO ring: a released port goes to the back, so the longest-free port
//! is reused first. That maximises the time before a 4-tuple recurs, which is what keeps a
//! real server's TIME_WAIT entry for the old connection from swallowing the new SYN.
//! Allocation and release are O(1), never allocate (the ring is preallocated to the worker's
//! share of the port range), and a bitmap refuses double releases.
//!
//! Usage per address (`-G`'s CONFLICTS and CONNS, as DPVS counts them per local address):
//! a pool knows its ports in use, which are its live connections, and counts its conflicts,
//! the allocations that found every port of the address in use (DPVS's `conflict_cnt`: a
//! port fetch that failed, so the next address was tried). Both are the worker's own
//! plain integers, read between bursts when the control plane asks ([`LaddrPools::usage`]).
//!
//! RSS-aware choice: [`PortPool::alloc_preferring`] takes a predicate and tries a few
//! candidates before settling for the next free port. The dataplane can pass "the NIC's
//! Toeplitz hash of the reply 4-tuple lands on this worker's queue", so replies arrive on
//! the owner without a flow rule or a ring hop, and fall back to ownership by mask when no
//! candidate qualifies.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::error::ConfigError;
use super::fasthash::FastMap;
use super::snapshot::{ServiceId, Snapshot};
use crate::conn::Family;

/// The ports one worker owns: those with `port & mask == worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPartition {
    mask: u16,
    worker: u16,
}

impl PortPartition {
    /// Worker `worker` of `workers` (1..=32768).
    pub fn new(workers: u16, worker: u16) -> Result<PortPartition, ConfigError> {
        if !(1..=1 << 15).contains(&workers) || worker >= workers {
            return Err(ConfigError::InvalidWorker { worker, workers });
        }
        Ok(PortPartition { mask: workers.next_power_of_two() - 1, worker })
    }

    pub fn mask(&self) -> u16 {
        self.mask
    }

    /// The worker owning `port` (a reply to it must reach that worker).
    pub fn owner(&self, port: u16) -> u16 {
        port & self.mask
    }

    pub fn owns(&self, port: u16) -> bool {
        self.owner(port) == self.worker
    }
}

/// The local port range: everything above the well-known ports, as DPVS, but
/// the health probes' ports at the top ([`crate::net::probe::PROBE_PORTS`]).
pub const DEFAULT_PORTS: RangeInclusive<u16> = 1025..=64511;

/// One worker's free ports of one local address.
///
/// `free` is a ring in release order; `in_use` is the truth. A port [`PortPool::take`]n
/// out of turn (a connection a sync record brought) stays in the ring, marked in use, and is
/// passed over when the ring reaches it, so taking one costs no search through the ring.
#[derive(Debug, Clone)]
pub struct PortPool {
    free: VecDeque<u16>,
    in_use: Box<[u64; 1024]>,
    used: u32,
    /// The ports this pool hands out (its worker's share of the range).
    owned: u32,
    partition: PortPartition,
    range: RangeInclusive<u16>,
}

/// Why [`PortPool::take`] refused a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeError {
    /// Outside the range, or another worker's.
    NotOwned,
    /// Already in use.
    InUse,
}

impl PortPool {
    pub fn new(partition: PortPartition, range: RangeInclusive<u16>) -> PortPool {
        let ports: Vec<u16> = range.clone().filter(|&p| partition.owns(p)).collect();
        let mut free = VecDeque::with_capacity(ports.len());
        let owned = ports.len() as u32;
        free.extend(ports);
        PortPool { free, in_use: Box::new([0; 1024]), used: 0, owned, partition, range }
    }

    pub fn available(&self) -> usize {
        (self.owned - self.used) as usize
    }

    pub fn in_use(&self) -> u32 {
        self.used
    }

    fn is_used(&self, port: u16) -> bool {
        self.in_use[(port / 64) as usize] & (1 << (port % 64)) != 0
    }

    /// The next free port in the ring, passing over ports taken out of turn.
    #[inline(always)]
    fn next_free(&mut self) -> Option<u16> {
        while let Some(port) = self.free.pop_front() {
            if !self.is_used(port) {
                return Some(port);
            }
        }
        None
    }

    /// The longest-free port, or `None` when every port is in use.
    #[inline(always)]
    pub fn alloc(&mut self) -> Option<u16> {
        let port = self.next_free()?;
        self.mark(port);
        Some(port)
    }

    /// Like [`PortPool::alloc`], but tries up to `tries` free ports for one that `prefer`
    /// accepts (rejected ones go to the back of the ring), else takes the next free one.
    pub fn alloc_preferring(&mut self, tries: usize, mut prefer: impl FnMut(u16) -> bool) -> Option<u16> {
        for _ in 0..tries.min(self.free.len()) {
            let port = self.next_free()?;
            if prefer(port) {
                self.mark(port);
                return Some(port);
            }
            self.free.push_back(port);
        }
        self.alloc()
    }

    /// Takes `port` out of turn, for a connection that already uses it (another director
    /// gave it, and a sync record brought it here).
    pub fn take(&mut self, port: u16) -> Result<(), TakeError> {
        if !self.range.contains(&port) || !self.partition.owns(port) {
            return Err(TakeError::NotOwned);
        }
        if self.is_used(port) {
            return Err(TakeError::InUse);
        }
        self.mark(port);
        Ok(())
    }

    /// Returns `port`; `false` (and no change) if it was not handed out by this pool.
    pub fn release(&mut self, port: u16) -> bool {
        let (w, b) = ((port / 64) as usize, port % 64);
        if self.in_use[w] & (1 << b) == 0 {
            return false;
        }
        self.in_use[w] &= !(1 << b);
        self.used -= 1;
        self.free.push_back(port);
        true
    }

    fn mark(&mut self, port: u16) {
        self.in_use[(port / 64) as usize] |= 1 << (port % 64);
        self.used += 1;
    }
}

#[derive(Debug, Clone)]
struct Pool {
    addr: IpAddr,
    ports: PortPool,
    /// The address left the configuration; the pool goes when its last port returns.
    retired: bool,
    /// Allocations that found every port in use.
    conflicts: u64,
}

/// How a worker uses one local address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaddrUsage {
    /// Allocations that found every port of the address (this worker's share) in use.
    pub conflicts: u64,
    /// Connections using the address now (its ports in use).
    pub conns: u64,
}

/// Counters of a worker's pools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LaddrStats {
    /// New connections refused because every local address of their service was out of ports
    /// (or the service has none).
    pub exhausted: u64,
    /// Releases of ports that were not in use (a bug elsewhere; counted, never applied).
    pub bad_release: u64,
}

/// A worker's port pools, one per local address of any service in its snapshot.
///
/// A new connection finds its service's pools by position, with no hashing: the pools sit
/// in slots, and [`LaddrPools::sync`] lists each service's slots in the order of its
/// addresses. Only a release, at a connection's end, finds a pool by its address.
#[derive(Debug, Clone)]
pub struct LaddrPools {
    partition: PortPartition,
    range: RangeInclusive<u16>,
    /// The pools; a slot is empty once its address left every service and its last port
    /// came back, until a new address takes it.
    slots: Vec<Option<Pool>>,
    /// Each address's slot, keyed by [`addr_key`]: one or two words to hash instead of an
    /// `IpAddr` enum.
    slot_of: FastMap<u128, u32>,
    /// Each service's local addresses, by the [`ServiceId`] of the snapshot last synced.
    of_service: Vec<ServiceAddrs>,
    stats: LaddrStats,
}

/// A service's local addresses: their pools' slots, in the service's order, and the one its
/// next connection tries first. Each service rotates over its own addresses, as DPVS's
/// `laddr_curr` does: with one counter for all, another service's connections in between
/// would skip addresses, and the start was a division per connection.
#[derive(Debug, Clone)]
struct ServiceAddrs {
    slots: Box<[u32]>,
    next: usize,
}

impl ServiceAddrs {
    /// The index of the address to try first, moving the rotation on.
    #[inline(always)]
    fn advance(&mut self) -> usize {
        let start = if self.next < self.slots.len() { self.next } else { 0 };
        self.next = start + 1;
        start
    }
}

impl LaddrPools {
    pub fn new(partition: PortPartition, range: RangeInclusive<u16>) -> LaddrPools {
        LaddrPools {
            partition,
            range,
            slots: Vec::new(),
            slot_of: FastMap::default(),
            of_service: Vec::new(),
            stats: LaddrStats::default(),
        }
    }

    pub fn partition(&self) -> PortPartition {
        self.partition
    }

    pub fn stats(&self) -> LaddrStats {
        self.stats
    }

    fn pool_of(&self, addr: IpAddr) -> Option<&Pool> {
        let slot = *self.slot_of.get(&addr_key(addr))?;
        self.slots[slot as usize].as_ref()
    }

    fn pool_of_mut(&mut self, addr: IpAddr) -> Option<&mut Pool> {
        let slot = *self.slot_of.get(&addr_key(addr))?;
        self.slots[slot as usize].as_mut()
    }

    pub fn pool(&self, addr: IpAddr) -> Option<&PortPool> {
        self.pool_of(addr).map(|p| &p.ports)
    }

    /// Follows a snapshot switch: creates pools for new addresses; an address no service
    /// lists any more keeps its pool until its ports are all back, so a port still in use
    /// is never handed out again if the address returns. Allocates; runs between bursts.
    pub fn sync(&mut self, snap: &Snapshot) {
        for p in self.slots.iter_mut().flatten() {
            p.retired = true;
        }
        let mut of_service = Vec::with_capacity(snap.services().len());
        for svc in snap.services() {
            let slots = svc.laddrs().iter().map(|l| self.slot_for(l.addr)).collect();
            of_service.push(ServiceAddrs { slots, next: 0 });
        }
        self.of_service = of_service;
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|p| p.retired && p.ports.in_use() == 0) {
                self.vacate(slot);
            }
        }
    }

    /// The slot of `addr`'s pool, not retired: its own, else a new one.
    fn slot_for(&mut self, addr: IpAddr) -> u32 {
        let key = addr_key(addr);
        if let Some(&slot) = self.slot_of.get(&key) {
            if let Some(p) = self.slots[slot as usize].as_mut() {
                p.retired = false;
                return slot;
            }
        }
        let pool =
            Pool { addr, ports: PortPool::new(self.partition, self.range.clone()), retired: false, conflicts: 0 };
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(vacant) => {
                self.slots[vacant] = Some(pool);
                vacant
            }
            None => {
                self.slots.push(Some(pool));
                self.slots.len() - 1
            }
        } as u32;
        self.slot_of.insert(key, slot);
        slot
    }

    /// Drops the pool in `slot`: its address is in no service and none of its ports in use.
    fn vacate(&mut self, slot: usize) {
        if let Some(p) = self.slots[slot].take() {
            self.slot_of.remove(&addr_key(p.addr));
        }
    }

    /// A local address and port of family `A` for a new connection of service `sid` (of the
    /// snapshot last synced), trying its addresses in turn; `None` (counted) if all are out of
    /// ports. An address `A` cannot hold (see [`Family::from_server_ip`]) would be passed
    /// over, but the snapshot refuses a service such an address (`LaddrFamilyMismatch`).
    pub fn alloc<A: Family>(&mut self, sid: ServiceId) -> Option<(A, u16)> {
        self.alloc_preferring(sid, 0, |_, _| true)
    }

    /// [`LaddrPools::alloc`] with an RSS preference (see the module docs).
    #[inline]
    pub fn alloc_preferring<A: Family>(
        &mut self,
        sid: ServiceId,
        tries: usize,
        mut prefer: impl FnMut(A, u16) -> bool,
    ) -> Option<(A, u16)> {
        let (slots, start) = match self.of_service.get_mut(sid as usize) {
            Some(s) => {
                let start = s.advance();
                (&s.slots[..], start)
            }
            None => (&[][..], 0),
        };
        let n = slots.len();
        if n > 0 {
            for k in 0..n {
                let slot = slots[if start + k < n { start + k } else { start + k - n }];
                // Every listed slot holds a pool: `sync` listed it, and a listed pool is
                // not retired, so it is never vacated.
                let Some(pool) = self.slots[slot as usize].as_mut() else { continue };
                let Some(addr) = A::from_server_ip(pool.addr) else { continue };
                let port = if tries == 0 {
                    pool.ports.alloc()
                } else {
                    pool.ports.alloc_preferring(tries, |p| prefer(addr, p))
                };
                if let Some(port) = port {
                    return Some((addr, port));
                }
                pool.conflicts += 1;
            }
        }
        self.stats.exhausted += 1;
        None
    }

    /// This worker's usage of local address `addr` (zero for an address it has no pool of).
    pub fn usage(&self, addr: IpAddr) -> LaddrUsage {
        self.pool_of(addr).map_or_else(LaddrUsage::default, |p| LaddrUsage {
            conflicts: p.conflicts,
            conns: u64::from(p.ports.in_use()),
        })
    }

    /// Takes port `port` of local address `addr` out of turn (see [`PortPool::take`]);
    /// `NotOwned` too if no service has the address.
    pub fn take(&mut self, addr: IpAddr, port: u16) -> Result<(), TakeError> {
        let pool = self.pool_of_mut(addr).filter(|p| !p.retired).ok_or(TakeError::NotOwned)?;
        pool.ports.take(port)
    }

    /// Returns a port taken with [`LaddrPools::alloc`] or [`LaddrPools::take`].
    pub fn release(&mut self, addr: IpAddr, port: u16) {
        let Some(&slot) = self.slot_of.get(&addr_key(addr)) else {
            self.stats.bad_release += 1;
            return;
        };
        let Some(pool) = self.slots[slot as usize].as_mut() else {
            self.stats.bad_release += 1;
            return;
        };
        if !pool.ports.release(port) {
            self.stats.bad_release += 1;
        }
        if pool.retired && pool.ports.in_use() == 0 {
            self.vacate(slot as usize);
        }
    }
}

/// An address as a map key: its 128 bits, IPv4 in the IPv4-mapped form `::ffff:a.b.c.d`
/// (which is never a local address of its own on the wire).
fn addr_key(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ServiceKey, ServiceSpec};
    use std::collections::HashSet;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// An IPv4 connection's local address and port, as an `IpAddr`.
    fn alloc4(pools: &mut LaddrPools, sid: ServiceId) -> Option<(IpAddr, u16)> {
        pools.alloc::<std::net::Ipv4Addr>(sid).map(|(a, p)| (a.into(), p))
    }

    fn laddr(s: &str) -> crate::model::LocalAddr {
        crate::model::LocalAddr { addr: ip(s), ifname: "dpdk0".into() }
    }

    #[test]
    fn partition_rejects_bad_worker_numbers() {
        assert_eq!(PortPartition::new(4, 4).unwrap_err().to_string(), "worker 4 does not exist (0..4)");
        assert!(PortPartition::new(0, 0).is_err());
    }

    #[test]
    fn a_port_taken_out_of_turn_is_passed_over_and_comes_back() {
        let mut pool = PortPool::new(PortPartition::new(2, 0).unwrap(), 2000..=2007);
        assert_eq!(pool.take(2003), Err(TakeError::NotOwned), "worker 1's");
        assert_eq!(pool.take(1998), Err(TakeError::NotOwned), "outside the range");
        assert_eq!(pool.take(2002), Ok(()));
        assert_eq!(pool.take(2002), Err(TakeError::InUse));
        assert_eq!((pool.in_use(), pool.available()), (1, 3));
        assert_eq!(
            [pool.alloc(), pool.alloc(), pool.alloc(), pool.alloc()],
            [Some(2000), Some(2004), Some(2006), None]
        );
        assert!(pool.release(2002));
        assert_eq!(pool.alloc(), Some(2002), "released, it is free again, once");
        assert!(pool.release(2000) && pool.release(2002));
        assert_eq!([pool.alloc(), pool.alloc(), pool.alloc()], [Some(2000), Some(2002), None]);
    }

    #[test]
    fn partition_by_low_bits() {
        let p = PortPartition::new(3, 2).unwrap();
        assert_eq!(p.mask(), 3);
        let pool = PortPool::new(p, DEFAULT_PORTS);
        assert_eq!(pool.available(), (1025..=64511).filter(|x| x & 3 == 2).count());
        let mut pool = pool;
        while let Some(port) = pool.alloc() {
            assert_eq!(port & 3, 2);
            assert_eq!(p.owner(port), 2);
        }
    }

    #[test]
    fn fifo_reuse_no_double_handout_and_exhaustion() {
        let mut pool = PortPool::new(PortPartition::new(1, 0).unwrap(), 2000..=2003);
        let got: Vec<u16> = (0..4).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!(got, vec![2000, 2001, 2002, 2003]);
        assert_eq!(pool.alloc(), None);
        assert!(pool.release(2001));
        assert!(!pool.release(2001), "double release refused");
        assert!(!pool.release(3000), "never handed out");
        assert!(pool.release(2000));
        assert_eq!(pool.alloc(), Some(2001), "longest-free first");
        assert_eq!(pool.in_use(), 3);
    }

    #[test]
    fn preference_tries_then_falls_back() {
        let mut pool = PortPool::new(PortPartition::new(1, 0).unwrap(), 2000..=2009);
        assert_eq!(pool.alloc_preferring(8, |p| p == 2005), Some(2005));
        assert_eq!(pool.alloc_preferring(3, |_| false), Some(2009), "2006..=2008 rotated, then next");
        let mut seen = HashSet::new();
        while let Some(p) = pool.alloc() {
            assert!(seen.insert(p));
        }
        assert_eq!(seen.len(), 8);
    }

    /// An edit of an empty snapshot adding service 10.0.0.1:80 with `laddrs`.
    fn service_with(laddrs: &[&str]) -> (crate::model::SnapshotEditor, ServiceKey) {
        let key = ServiceKey::tcp(ip("10.0.0.1"), 80);
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(key)).unwrap();
        for a in laddrs {
            ed.add_laddr(&key, laddr(a)).unwrap();
        }
        (ed, key)
    }

    #[test]
    fn each_service_rotates_over_its_own_addresses() {
        let (mut ed, key) = service_with(&["192.168.1.1", "192.168.1.2", "192.168.1.3"]);
        let other = ServiceKey::tcp(ip("10.0.0.2"), 80);
        ed.add_service(ServiceSpec::new(other)).unwrap();
        ed.add_laddr(&other, laddr("192.168.1.9")).unwrap();
        let snap = ed.finish();
        let (sid, other_sid) = (snap.service_id(&key).unwrap(), snap.service_id(&other).unwrap());
        let mut pools = LaddrPools::new(PortPartition::new(1, 0).unwrap(), 5000..=5099);
        pools.sync(&snap);
        let mut order = Vec::new();
        for _ in 0..7 {
            order.push(alloc4(&mut pools, sid).unwrap().0);
            // Another service's connection in between moves only its own rotation.
            assert_eq!(alloc4(&mut pools, other_sid).unwrap().0, ip("192.168.1.9"));
        }
        let want: Vec<IpAddr> =
            ["192.168.1.1", "192.168.1.2", "192.168.1.3"].iter().cycle().take(7).map(|a| ip(a)).collect();
        assert_eq!(order, want);
        // A snapshot with fewer addresses: the rotation starts over within them.
        let mut ed = snap.edit();
        ed.delete_laddr(&key, ip("192.168.1.3")).unwrap();
        ed.delete_laddr(&key, ip("192.168.1.2")).unwrap();
        let fewer = ed.finish();
        pools.sync(&fewer);
        for _ in 0..3 {
            assert_eq!(alloc4(&mut pools, sid).unwrap().0, ip("192.168.1.1"));
        }
    }

    #[test]
    fn pools_follow_snapshots_and_exhaustion_is_counted() {
        let (mut ed, key) = service_with(&["192.168.1.254", "192.168.1.253"]);
        let bare = ServiceKey::tcp(ip("10.0.0.2"), 80);
        ed.add_service(ServiceSpec::new(bare)).unwrap();
        let snap = ed.finish();
        let (sid, bare_sid) = (snap.service_id(&key).unwrap(), snap.service_id(&bare).unwrap());
        let mut pools = LaddrPools::new(PortPartition::new(2, 1).unwrap(), 5000..=5007);
        pools.sync(&snap);
        let mut got = HashSet::new();
        for _ in 0..8 {
            let (a, p) = alloc4(&mut pools, sid).unwrap();
            assert_eq!(p & 1, 1);
            assert!(got.insert((a, p)), "({a}, {p}) handed out twice");
        }
        assert_eq!(alloc4(&mut pools, sid), None);
        assert_eq!(pools.stats().exhausted, 1);
        // Each address was tried and found full: one conflict each; all 8 ports in use.
        for a in ["192.168.1.254", "192.168.1.253"] {
            assert_eq!(pools.usage(ip(a)), LaddrUsage { conflicts: 1, conns: 4 }, "{a}");
        }
        assert_eq!(pools.usage(ip("192.168.1.1")), LaddrUsage::default(), "no pool");
        // Remove one address while its ports are in use: the pool stays until they return.
        let mut ed = snap.edit();
        ed.delete_laddr(&key, ip("192.168.1.254")).unwrap();
        let snap2 = ed.finish();
        pools.sync(&snap2);
        assert!(pools.pool(ip("192.168.1.254")).is_some());
        for &(a, p) in got.iter().filter(|(a, _)| *a == ip("192.168.1.254")) {
            pools.release(a, p);
        }
        assert!(pools.pool(ip("192.168.1.254")).is_none(), "dropped with its last port");
        pools.release(ip("192.168.1.254"), 5001);
        assert_eq!(pools.stats().bad_release, 1);
        assert_eq!(alloc4(&mut pools, bare_sid), None, "a service without local addresses is refused");
        assert_eq!(alloc4(&mut pools, 99), None, "and a service the snapshot does not have");
        assert_eq!(pools.stats().exhausted, 3);
    }

    #[test]
    fn an_address_back_in_a_service_keeps_its_ports_and_a_vacated_slot_serves_a_new_one() {
        let (ed, key) = service_with(&["192.168.1.254"]);
        let snap = ed.finish();
        let mut pools = LaddrPools::new(PortPartition::new(1, 0).unwrap(), 5000..=5001);
        pools.sync(&snap);
        let sid = snap.service_id(&key).unwrap();
        assert_eq!(alloc4(&mut pools, sid), Some((ip("192.168.1.254"), 5000)));
        // Out of the service with a port in use, then back: the port is still taken.
        let mut ed = snap.edit();
        ed.delete_laddr(&key, ip("192.168.1.254")).unwrap();
        let without = ed.finish();
        pools.sync(&without);
        assert_eq!(alloc4(&mut pools, sid), None, "the service has no address now");
        assert_eq!(pools.take(ip("192.168.1.254"), 5001), Err(TakeError::NotOwned), "retired");
        pools.sync(&snap);
        assert_eq!(alloc4(&mut pools, sid), Some((ip("192.168.1.254"), 5001)));
        assert_eq!(alloc4(&mut pools, sid), None, "5000 is still the first connection's");
        // Out again; its ports come back, the pool goes, and a new address takes its slot.
        pools.sync(&without);
        pools.release(ip("192.168.1.254"), 5000);
        pools.release(ip("192.168.1.254"), 5001);
        assert!(pools.pool(ip("192.168.1.254")).is_none());
        let mut ed = without.edit();
        ed.add_laddr(&key, laddr("192.168.1.253")).unwrap();
        let other = ed.finish();
        pools.sync(&other);
        assert_eq!(pools.slots.len(), 1, "the vacated slot was reused");
        assert_eq!(alloc4(&mut pools, sid), Some((ip("192.168.1.253"), 5000)));
        assert_eq!(pools.usage(ip("192.168.1.253")).conns, 1);
        assert_eq!(pools.usage(ip("192.168.1.254")), LaddrUsage::default());
        assert_eq!(pools.stats().bad_release, 0);
    }
}
