//! The egress cache: per worker and family, where packets to a destination
//! go (the next hop, its port's MTU, offloads and MAC, the next hop's MAC),
//! so a connection's packet is sent with no route, port or neighbour
//! lookup. `measure_pipeline.sh`, an established IPv4 packet: 770
//! instructions without the cache, 697 with a hit.
//!
//! Two direct-mapped tables, a multiply-shift hash picking the slot:
//! - **On-link destinations** (the servers, clients on a connected network),
//!   by address: each has a MAC of its own.
//! - **Destinations behind a router** (the clients, usually), by network:
//!   the leading bits that decide any address's route (the longest prefix
//!   in the routes, /24 with connected /24s and a default route) decide
//!   the whole answer, since the next hop is the router. All the clients of
//!   one network share an entry, so a worker with more active clients than
//!   slots still hits. `reply-clients` (16 384 clients behind a router):
//!   855 instructions a packet while they were cached by address (nearly
//!   every reply missed), 697 by network, against 684 for `reply`'s one
//!   client.
//!
//! A lookup probes the first table, then the second (both inline: a call
//! out of line cost a routed client ~20 instructions more); a miss routes (most of
//! its cost: keying the cache by next hop alone, routing every packet, cost
//! 828 a packet, more than no cache), takes the next hop's MAC from 64
//! next-hop slots, else the neighbour table, and fills the table the answer
//! belongs in.
//!
//! Keyed by destination, not by connection: an IPv4 connection entry is one
//! cache line already (see [`crate::conn::key`]), and a side array per
//! connection would be a second cache miss per packet. Addresses are the
//! clients' choice, so they may collide on purpose; that makes their
//! packets miss (at the cost of a route lookup), never answers wrong.
//!
//! An entry answers only while nothing it was built from changed:
//! - routes, ports (MTU, offloads, MAC), static neighbours: a new
//!   [`NetView`](crate::model::NetView), or a port's link going down or up
//!   (the worker's routes less those over down ports), start a new
//!   generation ([`EgressCache::invalidate`]), which also takes the new
//!   routes' deciding bits;
//! - neighbours: any change to the table that alters or removes an answer
//!   moves its [`version`](NeighbourTable::version), which starts a new
//!   generation at the next lookup; and the entry keeps its neighbour's
//!   [`Lease`], so it stops answering when the neighbour table's lookup
//!   would (a learned neighbour's lifetime ends at a tick, whether or not
//!   `expire` has run since).

use crate::model::PortView;
use crate::net::{FamilyAddr, Lease, NeighbourTable, NextHop, RouteTable};
use crate::wire::{EthAddrs, MacAddr};
use crate::xmit::{Egress, Offload};

/// The bytes of one family's on-link table: 4096 IPv4 entries of one cache
/// line, 2048 IPv6 ones of two. Only the slots in use are touched.
const CACHE_BYTES: usize = 256 << 10;

/// The bytes of one family's table of networks behind routers: as many
/// slots as the on-link table, so that routes decided by every bit of an
/// address (a host route) leave as much room as one table keyed by address.
const ROUTED_BYTES: usize = CACHE_BYTES;

/// Where a packet to one destination goes, and how it is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Resolved<A: FamilyAddr> {
    pub(super) hop: NextHop<A>,
    pub(super) egress: Egress,
    /// Once the next hop's MAC is resolved, the frame's Ethernet addresses:
    /// the next hop's MAC, then the egress port's.
    pub(super) macs: Option<EthAddrs>,
}

impl<A: FamilyAddr> Resolved<A> {
    /// This answer for sending to `to` itself rather than the route's next
    /// hop, over the same port (DR: the server is on the link). The next
    /// hop's MAC stays when the route's next hop is `to` already, the usual
    /// case.
    #[inline(always)]
    pub(super) fn on_link(&self, to: A) -> Resolved<A> {
        if self.hop.addr == to {
            return *self;
        }
        Resolved { hop: NextHop { addr: to, ..self.hop }, macs: None, ..*self }
    }

    /// The next hop's MAC, once resolved.
    #[cfg(test)]
    fn dst_mac(&self) -> Option<MacAddr> {
        self.macs.map(|m| m.dst())
    }
}

/// The next hop toward `to` by the `live` routes (those over ports whose
/// link is up), else by the `configured` ones: the packet then goes to a
/// down port, which drops it as link_down, saying why, not no_route. With
/// the MTU, offloads and MAC of its port.
#[inline(always)]
pub(super) fn route<A: FamilyAddr>(
    live: &RouteTable<A>,
    configured: &RouteTable<A>,
    ports: &[PortView],
    to: A,
) -> Option<(NextHop<A>, Egress, MacAddr)> {
    let hop = live.next_hop(to).or_else(|| configured.next_hop(to))?;
    let port = ports.get(usize::from(hop.port))?;
    Some((hop, Egress { mtu: port.mtu, offload: port.offload }, port.mac))
}

/// One slot: where packets to `to` go (with the next hop's MAC), filled in
/// `generation`, holding while `lease` does. The answer is one field, so a
/// hit copies it whole (a field at a time cost twice as much).
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Entry<A: FamilyAddr> {
    to: A,
    generation: u32,
    lease: Lease,
    out: Resolved<A>,
}

// One cache line for IPv4.
const _: () = assert!(std::mem::size_of::<Entry<std::net::Ipv4Addr>>() == 64);

impl<A: FamilyAddr> Entry<A> {
    /// Whether the slot holds the answer for `key` at `now`: filled for it
    /// in `generation`, and its neighbour's lease holds.
    #[inline(always)]
    fn answers(&self, key: A, generation: u32, now: u32) -> bool {
        self.to == key && self.generation == generation && self.lease.holds(now)
    }

    /// A slot never filled: generation 0 is never current.
    fn empty() -> Entry<A> {
        let unspecified = A::from_bits(A::mask(0));
        Entry {
            to: unspecified,
            generation: 0,
            lease: Lease::NONE,
            out: Resolved {
                hop: NextHop { port: 0, addr: unspecified, src: None },
                egress: Egress { mtu: 0, offload: Offload::NONE },
                macs: None,
            },
        }
    }
}

/// Next hops' slots: routers and on-link servers are few.
const HOPS: usize = 64;

/// A next hop's MAC (a neighbour table answer), filled in `generation`,
/// holding while `lease` does: what a destination's miss takes when its
/// next hop is known, so many destinations behind one router (the clients)
/// miss without a neighbour table lookup.
#[derive(Debug, Clone, Copy)]
struct HopEntry<A: FamilyAddr> {
    addr: A,
    generation: u32,
    lease: Lease,
    mac: MacAddr,
}

/// One family's egress cache (see the module docs).
pub(super) struct EgressCache<A: FamilyAddr> {
    /// On-link destinations, by address.
    entries: Box<[Entry<A>]>,
    /// Destinations behind a router, by network (`to` holds the network).
    routed: Box<[Entry<A>]>,
    /// The netmask of the leading bits that decide a route: the longest
    /// prefix of the configured routes, of which the live ones are a subset.
    deciding: A::Bits,
    hops: Box<[HopEntry<A>]>,
    /// What entries must have been filled in to answer; never 0.
    generation: u32,
    /// The neighbour table's version when the generation started.
    neighbours: u32,
    /// Lookups that had to route (every miss): counted here, off the hit
    /// path, and published by the worker's tick.
    route_lookups: u64,
    /// The answer of the last miss, which [`EgressCache::resolve`] lends
    /// when it was not cached (its next hop unresolved).
    missed: Resolved<A>,
}

impl<A: FamilyAddr> EgressCache<A> {
    /// Slots: a power of two.
    const LEN: usize = {
        let len = CACHE_BYTES / std::mem::size_of::<Entry<A>>();
        assert!(len.is_power_of_two());
        len
    };
    /// What a 64-bit hash is shifted right by to index a slot.
    const SHIFT: u32 = 64 - Self::LEN.trailing_zeros();
    /// Slots of the routed table: a power of two.
    const ROUTED_LEN: usize = {
        let len = ROUTED_BYTES / std::mem::size_of::<Entry<A>>();
        assert!(len.is_power_of_two());
        len
    };

    /// An empty cache, allocated once here.
    pub(super) fn new() -> EgressCache<A> {
        let unspecified = A::from_bits(A::mask(0));
        let no_hop = HopEntry { addr: unspecified, generation: 0, lease: Lease::NONE, mac: MacAddr::default() };
        EgressCache {
            entries: vec![Entry::empty(); Self::LEN].into_boxed_slice(),
            routed: vec![Entry::empty(); Self::ROUTED_LEN].into_boxed_slice(),
            // No routes yet: networks are whole addresses until there are.
            deciding: A::mask(A::BITS),
            hops: vec![no_hop; HOPS].into_boxed_slice(),
            generation: 1,
            neighbours: 0,
            route_lookups: 0,
            missed: Entry::empty().out,
        }
    }

    /// Forgets every entry: the routes or ports changed. `routes` are the
    /// configured routes (the live ones are a subset of them).
    pub(super) fn invalidate(&mut self, routes: &RouteTable<A>) {
        self.deciding = A::mask(routes.deciding_bits());
        self.forget();
    }

    /// How many lookups the cache did not answer, so that they were routed.
    pub(super) fn route_lookups(&self) -> u64 {
        self.route_lookups
    }

    /// Starts a new generation: no entry filled before answers. Out of
    /// line: a lookup calls it only when the neighbour table changed.
    #[cold]
    #[inline(never)]
    fn forget(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // After 2^32 generations old entries could match again: forget
            // them for good (never per packet: a new view or a neighbour
            // change per generation).
            self.entries.fill(Entry::empty());
            self.routed.fill(Entry::empty());
            for h in self.hops.iter_mut() {
                h.generation = 0;
            }
            self.generation = 1;
        }
    }

    /// Where a packet to `to` goes at `now`: the cached answer while it
    /// holds, else `route`'s (see [`route`]) with the next hop's MAC looked
    /// up in `neighbours`, cached once the next hop is resolved. `None`
    /// without a route. The answer is lent where it lies (`measure_pipeline.sh`:
    /// an established packet cost 18 instructions more while it came out as
    /// an `Option` of a copy).
    #[inline(always)]
    pub(super) fn resolve(
        &mut self,
        to: A,
        now: u32,
        neighbours: &NeighbourTable<A>,
        route: impl FnOnce(A) -> Option<(NextHop<A>, Egress, MacAddr)>,
    ) -> Option<&Resolved<A>> {
        if neighbours.version() != self.neighbours {
            self.neighbours = neighbours.version();
            self.forget();
        }
        let slot = Self::slot(to);
        if self.entries.get(slot).is_some_and(|e| e.answers(to, self.generation, now)) {
            return self.entries.get(slot).map(|e| &e.out);
        }
        let network = self.network_of(to);
        let routed = Self::routed_slot(network);
        if self.routed.get(routed).is_some_and(|e| e.answers(network, self.generation, now)) {
            return self.routed.get(routed).map(|e| &e.out);
        }
        self.miss(slot, to, now, neighbours, route)
    }

    /// The network `to` is cached under when it is behind a router.
    #[inline(always)]
    fn network_of(&self, to: A) -> A {
        A::from_bits(to.to_bits() & self.deciding)
    }

    /// [`EgressCache::resolve`] when the on-link slot does not answer: the
    /// network's, else routed, then the next hop's MAC from the next hops'
    /// slots, else the neighbour table.
    #[inline(never)]
    fn miss(
        &mut self,
        slot: usize,
        to: A,
        now: u32,
        neighbours: &NeighbourTable<A>,
        route: impl FnOnce(A) -> Option<(NextHop<A>, Egress, MacAddr)>,
    ) -> Option<&Resolved<A>> {
        self.route_lookups += 1;
        let (hop, egress, src_mac) = route(to)?;
        let hop_slot = Self::hop_slot(hop.addr);
        let (mac, lease) = match self.hops.get(hop_slot) {
            Some(h) if h.addr == hop.addr && h.generation == self.generation && h.lease.holds(now) => (h.mac, h.lease),
            _ => {
                let Some((n, lease)) = neighbours.lookup_leased(hop.addr, now) else {
                    self.missed = Resolved { hop, egress, macs: None };
                    return Some(&self.missed);
                };
                if let Some(h) = self.hops.get_mut(hop_slot) {
                    *h = HopEntry { addr: hop.addr, generation: self.generation, lease, mac: n.mac };
                }
                (n.mac, lease)
            }
        };
        let out = Resolved { hop, egress, macs: Some(EthAddrs::new(mac, src_mac)) };
        self.missed = out;
        // Through a router, every address of the network goes the same way.
        let (table, slot, key) = if hop.addr == to {
            (&mut self.entries, slot, to)
        } else {
            let network = self.network_of(to);
            (&mut self.routed, Self::routed_slot(network), network)
        };
        if let Some(e) = table.get_mut(slot) {
            *e = Entry { to: key, generation: self.generation, lease, out };
        }
        Some(&self.missed)
    }

    /// The next hops' slot of `addr`.
    #[inline(always)]
    fn hop_slot(addr: A) -> usize {
        (addr.fold().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - HOPS.trailing_zeros())) as usize
    }

    /// The slot of `to`: the top bits of a multiply-shift hash.
    #[inline(always)]
    fn slot(to: A) -> usize {
        (to.fold().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> Self::SHIFT) as usize
    }

    /// The routed table's slot of `network`.
    #[inline(always)]
    fn routed_slot(network: A) -> usize {
        (network.fold().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::ROUTED_LEN.trailing_zeros())) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::net::{Origin, Route};

    const TO: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const MAC_PORT: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xa]);
    const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xb]);
    const EGRESS: Egress = Egress { mtu: 1500, offload: Offload::NONE };

    /// Resolves `to` at `now`, counting the route lookups in `routed`.
    fn resolve(
        cache: &mut EgressCache<Ipv4Addr>,
        t: &NeighbourTable,
        to: Ipv4Addr,
        now: u32,
        routed: &Cell<u32>,
    ) -> Option<Resolved<Ipv4Addr>> {
        cache
            .resolve(to, now, t, |to| {
                routed.set(routed.get() + 1);
                Some((NextHop { port: 1, addr: to, src: None }, EGRESS, MAC_PORT))
            })
            .copied()
    }

    #[test]
    fn an_entry_answers_until_its_neighbour_changes_expires_or_the_cache_is_invalidated() {
        let (mut cache, mut t, routed) = (EgressCache::new(), NeighbourTable::new(8, 300), Cell::new(0));
        let hop = NextHop { port: 1, addr: TO, src: None };
        let unresolved = Resolved { hop, egress: EGRESS, macs: None };
        assert_eq!(resolve(&mut cache, &t, TO, 100, &routed), Some(unresolved));
        assert_eq!(resolve(&mut cache, &t, TO, 100, &routed), Some(unresolved));
        assert_eq!(routed.get(), 2, "an unresolved next hop is not cached");

        t.learn(TO, MAC_A, 1, Origin::Needed, 100);
        let to_a = Resolved { macs: Some(EthAddrs::new(MAC_A, MAC_PORT)), ..unresolved };
        for now in [100, 200, 399] {
            assert_eq!(resolve(&mut cache, &t, TO, now, &routed), Some(to_a));
        }
        assert_eq!(routed.get(), 3, "routed once, then from the cache");
        assert_eq!(resolve(&mut cache, &t, TO, 400, &routed), Some(unresolved), "past the neighbour's lifetime");

        t.learn(TO, MAC_A, 1, Origin::Needed, 400);
        assert_eq!(resolve(&mut cache, &t, TO, 400, &routed), Some(to_a));
        t.learn(TO, MAC_B, 1, Origin::Needed, 401);
        assert_eq!(
            resolve(&mut cache, &t, TO, 401, &routed),
            Some(Resolved { macs: Some(EthAddrs::new(MAC_B, MAC_PORT)), ..to_a })
        );
        assert_eq!(routed.get(), 6);
        cache.invalidate(&RouteTable::new());
        assert_eq!(
            resolve(&mut cache, &t, TO, 401, &routed),
            Some(Resolved { macs: Some(EthAddrs::new(MAC_B, MAC_PORT)), ..to_a })
        );
        assert_eq!(routed.get(), 7, "routed again");
        t.delete(TO).unwrap();
        assert_eq!(resolve(&mut cache, &t, TO, 401, &routed), Some(unresolved));
    }

    #[test]
    fn colliding_addresses_take_turns_and_an_old_generation_never_answers() {
        let (mut cache, mut t, routed) = (EgressCache::new(), NeighbourTable::new(8, 300), Cell::new(0));
        let slot = EgressCache::<Ipv4Addr>::slot(TO);
        let other = (1..u32::MAX)
            .map(|n| Ipv4Addr::from(u32::from(TO) + n))
            .find(|a| EgressCache::<Ipv4Addr>::slot(*a) == slot)
            .unwrap();
        t.learn(TO, MAC_A, 1, Origin::Needed, 0);
        t.learn(other, MAC_B, 1, Origin::Needed, 0);
        let mac = |r: Option<Resolved<Ipv4Addr>>| r.and_then(|r| r.dst_mac());
        assert_eq!(mac(resolve(&mut cache, &t, TO, 0, &routed)), Some(MAC_A));
        assert_eq!(mac(resolve(&mut cache, &t, other, 0, &routed)), Some(MAC_B));
        assert_eq!(mac(resolve(&mut cache, &t, TO, 0, &routed)), Some(MAC_A));
        assert_eq!(routed.get(), 3, "each took the slot from the other");

        // Once the generation wraps, what was filled before cannot answer.
        cache.generation = u32::MAX;
        assert_eq!(mac(resolve(&mut cache, &t, TO, 0, &routed)), Some(MAC_A));
        cache.forget();
        assert_eq!(cache.generation, 1);
        assert!(cache.entries.iter().chain(cache.routed.iter()).all(|e| e.generation == 0), "forgotten");
        assert_eq!(mac(resolve(&mut cache, &t, TO, 0, &routed)), Some(MAC_A));
        assert_eq!(routed.get(), 5);
    }

    /// A route to `dst` by `via` (on-link without), over port 1.
    fn route_to(dst: &str, via: Option<Ipv4Addr>) -> Route {
        Route { dst: dst.parse().unwrap(), via, port: 1, src: None }
    }

    /// Resolves `to` at `now` by `routes` over one port (port 1; port 0 is
    /// unused), counting the route lookups in `routed`.
    fn resolve_by(
        cache: &mut EgressCache<Ipv4Addr>,
        t: &NeighbourTable,
        routes: &RouteTable,
        to: Ipv4Addr,
        now: u32,
        routed: &Cell<u32>,
    ) -> Option<Resolved<Ipv4Addr>> {
        let port = PortView {
            mac: MAC_PORT,
            mtu: 1500,
            offload: Offload::NONE,
            addrs: Vec::new(),
            steering: None,
            kernel: false,
        };
        let ports = [port.clone(), port];
        cache
            .resolve(to, now, t, |to| {
                routed.set(routed.get() + 1);
                route(routes, routes, &ports, to)
            })
            .copied()
    }

    const ROUTER_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const ROUTER_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn the_addresses_of_a_network_behind_a_router_share_one_entry_and_on_link_ones_do_not() {
        let (mut cache, mut t, routed) = (EgressCache::new(), NeighbourTable::new(8, 300), Cell::new(0));
        let mut routes = RouteTable::new();
        routes.add(route_to("10.0.0.0/24", None)).unwrap();
        routes.add(route_to("0.0.0.0/0", Some(ROUTER_A))).unwrap();
        cache.invalidate(&routes);
        t.learn(ROUTER_A, MAC_A, 1, Origin::Needed, 0);
        let on_link = (Ipv4Addr::new(10, 0, 0, 7), Ipv4Addr::new(10, 0, 0, 8));
        t.learn(on_link.0, MAC_B, 1, Origin::Needed, 0);
        t.learn(on_link.1, MAC_B, 1, Origin::Needed, 0);
        let hop = |r: Option<Resolved<Ipv4Addr>>| r.map(|r| (r.hop.addr, r.dst_mac()));

        // 203.0.113.0/24: any address there is routed the same (the routes
        // are decided by 24 bits), through router A.
        for last in [1, 2, 200, 1, 2] {
            let to = Ipv4Addr::new(203, 0, 113, last);
            assert_eq!(hop(resolve_by(&mut cache, &t, &routes, to, 0, &routed)), Some((ROUTER_A, Some(MAC_A))));
        }
        assert_eq!(routed.get(), 1, "routed once for the whole network");
        let other_network = Ipv4Addr::new(203, 0, 114, 1);
        assert_eq!(hop(resolve_by(&mut cache, &t, &routes, other_network, 0, &routed)), Some((ROUTER_A, Some(MAC_A))));
        assert_eq!(routed.get(), 2, "another network is another entry");

        // On-link addresses each have their own MAC and entry.
        for _ in 0..2 {
            for to in [on_link.0, on_link.1] {
                assert_eq!(hop(resolve_by(&mut cache, &t, &routes, to, 0, &routed)), Some((to, Some(MAC_B))));
            }
        }
        assert_eq!(routed.get(), 4, "each on-link address routed once");

        // The router's MAC moves: its entry stops answering.
        t.learn(ROUTER_A, MAC_B, 1, Origin::Needed, 1);
        let to = Ipv4Addr::new(203, 0, 113, 9);
        assert_eq!(hop(resolve_by(&mut cache, &t, &routes, to, 1, &routed)), Some((ROUTER_A, Some(MAC_B))));
        assert_eq!(routed.get(), 5);
    }

    #[test]
    fn a_more_specific_route_narrows_the_networks_that_share_an_entry() {
        let (mut cache, mut t, routed) = (EgressCache::new(), NeighbourTable::new(8, 300), Cell::new(0));
        t.learn(ROUTER_A, MAC_A, 1, Origin::Needed, 0);
        t.learn(ROUTER_B, MAC_B, 1, Origin::Needed, 0);
        let mut routes = RouteTable::new();
        routes.add(route_to("0.0.0.0/0", Some(ROUTER_A))).unwrap();
        cache.invalidate(&routes);
        let (inside, outside) = (Ipv4Addr::new(198, 51, 100, 129), Ipv4Addr::new(198, 51, 100, 1));
        let via = |cache: &mut EgressCache<Ipv4Addr>, routes: &RouteTable, to| {
            resolve_by(cache, &t, routes, to, 0, &routed).and_then(|r| r.dst_mac())
        };
        assert_eq!(via(&mut cache, &routes, outside), Some(MAC_A));
        assert_eq!(via(&mut cache, &routes, inside), Some(MAC_A));
        assert_eq!(routed.get(), 1, "one network: every address is decided by 0 bits");

        // 198.51.100.128/25 through router B: 25 bits decide now.
        routes.add(route_to("198.51.100.128/25", Some(ROUTER_B))).unwrap();
        cache.invalidate(&routes);
        for _ in 0..2 {
            assert_eq!(via(&mut cache, &routes, inside), Some(MAC_B));
            assert_eq!(via(&mut cache, &routes, outside), Some(MAC_A));
        }
        assert_eq!(routed.get(), 3, "the two halves are two entries");
        let neighbour_in_the_b_half = Ipv4Addr::new(198, 51, 100, 200);
        assert_eq!(via(&mut cache, &routes, neighbour_in_the_b_half), Some(MAC_B));
        assert_eq!(routed.get(), 3, "B's half answered from its entry");
    }

    #[test]
    fn on_link_keeps_the_mac_only_for_the_same_address() {
        let hop = NextHop { port: 1, addr: TO, src: None };
        let r = Resolved { hop, egress: EGRESS, macs: Some(EthAddrs::new(MAC_A, MAC_PORT)) };
        assert_eq!(r.on_link(TO), r);
        let server = Ipv4Addr::new(10, 0, 0, 9);
        let direct = r.on_link(server);
        assert_eq!((direct.hop.addr, direct.dst_mac()), (server, None));
        assert_eq!((direct.hop.port, direct.egress), (r.hop.port, r.egress), "over the same port");
    }
}
