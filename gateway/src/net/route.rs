//! Static routes with longest-prefix match, for either family: the tables
//! are generic over the address ([`FamilyAddr`]) and default to IPv4, so
//! `RouteTable` is the IPv4 table and `RouteTable<Ipv6Addr>` the IPv6 one.
//!
//! Routes are few (connected networks plus a handful of static ones) and read
//! on every packet that leaves, so lookup is one hash probe per distinct
//! prefix length present, longest first: typically two or three probes, no
//! allocation, no lock. The table is built on the control plane and published
//! to workers read-only, like the service snapshot.

use std::fmt;
use std::net::Ipv4Addr;

use super::cidr::{Cidr, FamilyAddr};
use crate::model::fasthash::FastMap;

/// One route: packets to `dst` leave by `port`, to `via` when set, otherwise
/// straight to their destination (a connected network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<A: FamilyAddr = Ipv4Addr> {
    /// The destination network (host bits clear).
    pub dst: Cidr<A>,
    pub via: Option<A>,
    pub port: u16,
    /// Preferred source address for packets the gateway itself sends.
    pub src: Option<A>,
}

/// Where a packet goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop<A: FamilyAddr = Ipv4Addr> {
    pub port: u16,
    /// The address whose MAC the frame is sent to.
    pub addr: A,
    pub src: Option<A>,
}

/// Why a route change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError<A: FamilyAddr = Ipv4Addr> {
    Exists(Cidr<A>),
    NotFound(Cidr<A>),
    /// The table holds at most this many routes.
    Full(usize),
}

impl<A: FamilyAddr> fmt::Display for RouteError<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Exists(d) => write!(f, "a route to {d} already exists"),
            RouteError::NotFound(d) => write!(f, "no route to {d}"),
            RouteError::Full(n) => write!(f, "the route table is full ({n} routes)"),
        }
    }
}

impl<A: FamilyAddr> std::error::Error for RouteError<A> {}

/// The most routes a table holds: static configuration, not a full BGP view.
pub const MAX_ROUTES: usize = 65536;

/// Whether `port` is in `down`, a set of ports as one bit per port id (bit
/// `p` set: port `p`'s link is down). Ports past 63 have no bit and are never
/// down. The one reading of that set, shared by routing and the poll loop.
#[inline]
pub fn port_is_down(down: u64, port: u16) -> bool {
    1u64.checked_shl(u32::from(port)).is_some_and(|bit| down & bit != 0)
}

/// Up to this many routes of one prefix length are compared in turn.
const FEW: usize = 4;

/// The routes of one prefix length, by network address. A few (the usual
/// case: a connected network or two, a default route) are compared in turn,
/// which costs a packet less than hashing its address, above all IPv6's 128
/// bits (`measure_pipeline.sh`: the IPv6 route lookup was twice IPv4's);
/// more go in a map.
#[derive(Debug, Clone)]
enum Prefixes<A: FamilyAddr> {
    Few(Vec<(A::Bits, Route<A>)>),
    Many(FastMap<A::Bits, Route<A>>),
}

impl<A: FamilyAddr> Prefixes<A> {
    #[inline(always)]
    fn get(&self, net: &A::Bits) -> Option<&Route<A>> {
        match self {
            Prefixes::Few(routes) => routes.iter().find(|(n, _)| n == net).map(|(_, r)| r),
            Prefixes::Many(routes) => routes.get(net),
        }
    }

    fn len(&self) -> usize {
        match self {
            Prefixes::Few(routes) => routes.len(),
            Prefixes::Many(routes) => routes.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the route to `net`, which the level does not hold yet.
    fn insert(&mut self, net: A::Bits, route: Route<A>) {
        match self {
            Prefixes::Few(routes) if routes.len() < FEW => routes.push((net, route)),
            Prefixes::Few(routes) => {
                let mut many: FastMap<_, _> = routes.drain(..).collect();
                many.insert(net, route);
                *self = Prefixes::Many(many);
            }
            Prefixes::Many(routes) => {
                routes.insert(net, route);
            }
        }
    }

    fn remove(&mut self, net: &A::Bits) -> Option<Route<A>> {
        match self {
            Prefixes::Few(routes) => {
                let i = routes.iter().position(|(n, _)| n == net)?;
                Some(routes.remove(i).1)
            }
            Prefixes::Many(routes) => routes.remove(net),
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Route<A>) -> bool) {
        match self {
            Prefixes::Few(routes) => routes.retain(|(_, r)| keep(r)),
            Prefixes::Many(routes) => routes.retain(|_, r| keep(r)),
        }
    }

    fn values(&self) -> impl Iterator<Item = &Route<A>> {
        let (few, many) = match self {
            Prefixes::Few(routes) => (Some(routes.iter().map(|(_, r)| r)), None),
            Prefixes::Many(routes) => (None, Some(routes.values())),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}

/// The routes of one prefix length, with its netmask at hand.
#[derive(Debug, Clone)]
struct Level<A: FamilyAddr> {
    prefix_len: u8,
    mask: A::Bits,
    routes: Prefixes<A>,
}

#[derive(Debug, Clone)]
pub struct RouteTable<A: FamilyAddr = Ipv4Addr> {
    /// Per prefix length present, longest first.
    by_len: Vec<Level<A>>,
    len: usize,
}

impl<A: FamilyAddr> Default for RouteTable<A> {
    fn default() -> Self {
        RouteTable { by_len: Vec::new(), len: 0 }
    }
}

impl<A: FamilyAddr> RouteTable<A> {
    pub fn new() -> RouteTable<A> {
        RouteTable::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a route; its destination's host bits are cleared first.
    pub fn add(&mut self, mut route: Route<A>) -> Result<(), RouteError<A>> {
        route.dst = route.dst.network();
        if self.len >= MAX_ROUTES {
            return Err(RouteError::Full(MAX_ROUTES));
        }
        let plen = route.dst.prefix_len();
        let level = || Level { prefix_len: plen, mask: A::mask(plen), routes: Prefixes::Few(Vec::new()) };
        let pos = match self.by_len.iter().position(|l| l.prefix_len <= plen) {
            Some(i) if self.by_len[i].prefix_len == plen => i,
            Some(i) => {
                self.by_len.insert(i, level());
                i
            }
            None => {
                self.by_len.push(level());
                self.by_len.len() - 1
            }
        };
        let key = route.dst.addr().to_bits();
        if self.by_len[pos].routes.get(&key).is_some() {
            return Err(RouteError::Exists(route.dst));
        }
        self.by_len[pos].routes.insert(key, route);
        self.len += 1;
        Ok(())
    }

    /// Removes the route to exactly `dst`.
    pub fn delete(&mut self, dst: Cidr<A>) -> Result<Route<A>, RouteError<A>> {
        let dst = dst.network();
        let pos = self.by_len.iter().position(|l| l.prefix_len == dst.prefix_len()).ok_or(RouteError::NotFound(dst))?;
        let route = self.by_len[pos].routes.remove(&dst.addr().to_bits()).ok_or(RouteError::NotFound(dst))?;
        if self.by_len[pos].routes.is_empty() {
            self.by_len.remove(pos);
        }
        self.len -= 1;
        Ok(route)
    }

    /// The most specific route to `ip`.
    #[inline]
    pub fn lookup(&self, ip: A) -> Option<&Route<A>> {
        let ip = ip.to_bits();
        self.by_len.iter().find_map(|l| l.routes.get(&(ip & l.mask)))
    }

    /// How many leading bits of an address decide its route here: the
    /// longest prefix present (0 without routes). Addresses alike in those
    /// bits have the same route.
    pub fn deciding_bits(&self) -> u8 {
        self.by_len.first().map_or(0, |l| l.prefix_len)
    }

    /// Where a packet to `ip` goes next.
    #[inline]
    pub fn next_hop(&self, ip: A) -> Option<NextHop<A>> {
        self.lookup(ip).map(|r| NextHop { port: r.port, addr: r.via.unwrap_or(ip), src: r.src })
    }

    /// Every route, most specific first.
    pub fn iter(&self) -> impl Iterator<Item = &Route<A>> {
        self.by_len.iter().flat_map(|l| l.routes.values())
    }

    /// The routes that leave by a usable port: those whose port is in `down`
    /// (bit `p` set: port `p`'s link is down; ports past 63 are never down)
    /// are left out, so a less specific route over a live port, where there
    /// is one, takes their traffic until the link returns (where there is
    /// none, the worker still sends by the configured route, to be dropped
    /// as `link_down`). Built when a link changes, never per packet.
    pub fn without_ports(&self, down: u64) -> RouteTable<A> {
        let mut usable = self.clone();
        if down == 0 {
            return usable;
        }
        for level in &mut usable.by_len {
            level.routes.retain(|r| !port_is_down(down, r.port));
        }
        usable.by_len.retain(|l| !l.routes.is_empty());
        usable.len = usable.by_len.iter().map(|l| l.routes.len()).sum();
        usable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Ipv4Cidr;
    use std::net::Ipv6Addr;

    fn route(dst: &str, via: Option<&str>, port: u16) -> Route {
        Route { dst: dst.parse().unwrap(), via: via.map(|v| v.parse().unwrap()), port, src: None }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.add(route("0.0.0.0/0", Some("10.0.0.254"), 0)).unwrap();
        t.add(route("10.0.0.0/24", None, 0)).unwrap();
        t.add(route("192.168.1.0/24", None, 1)).unwrap();
        t.add(route("192.168.1.128/25", Some("192.168.1.1"), 2)).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t.next_hop(ip("10.0.0.7")), Some(NextHop { port: 0, addr: ip("10.0.0.7"), src: None }));
        assert_eq!(t.next_hop(ip("192.168.1.5")).unwrap().port, 1);
        assert_eq!(t.next_hop(ip("192.168.1.200")), Some(NextHop { port: 2, addr: ip("192.168.1.1"), src: None }));
        assert_eq!(t.next_hop(ip("203.0.113.1")).unwrap().addr, ip("10.0.0.254"));
        let order: Vec<u8> = t.iter().map(|r| r.dst.prefix_len()).collect();
        assert_eq!(order, vec![25, 24, 24, 0]);
    }

    #[test]
    fn a_length_with_many_routes_moves_to_a_map_and_keeps_every_one() {
        // Past FEW routes of one length the level is a map: every route is
        // found, refused twice, deleted, and the default still catches the rest.
        let mut t = RouteTable::new();
        t.add(route("0.0.0.0/0", Some("10.0.0.254"), 0)).unwrap();
        for i in 0..10u8 {
            t.add(route(&format!("172.16.{i}.0/24"), None, u16::from(i % 3))).unwrap();
            assert_eq!(
                t.add(route(&format!("172.16.{i}.9/24"), None, 0)),
                Err(RouteError::Exists(format!("172.16.{i}.0/24").parse().unwrap()))
            );
        }
        assert_eq!(t.len(), 11);
        for i in 0..10u8 {
            assert_eq!(t.next_hop(ip(&format!("172.16.{i}.7"))).unwrap().port, u16::from(i % 3), "{i}");
        }
        assert_eq!(t.without_ports(1 << 1).len(), 11 - 3, "the map's routes over port 1 left out");
        for i in (0..10u8).step_by(2) {
            t.delete(format!("172.16.{i}.0/24").parse().unwrap()).unwrap();
        }
        assert_eq!(t.len(), 6);
        assert_eq!(t.next_hop(ip("172.16.2.7")).unwrap().addr, ip("10.0.0.254"), "deleted: the default takes it");
        assert_eq!(t.next_hop(ip("172.16.3.7")).unwrap().addr, ip("172.16.3.7"));
        assert_eq!(t.iter().count(), 6);
    }

    #[test]
    fn routes_over_a_down_port_give_way_to_less_specific_ones() {
        let mut t = RouteTable::new();
        t.add(route("0.0.0.0/0", Some("10.0.0.254"), 0)).unwrap();
        t.add(route("10.0.0.0/24", None, 0)).unwrap();
        t.add(route("192.168.1.0/24", None, 1)).unwrap();
        t.add(route("172.16.0.0/16", Some("192.168.1.1"), 1)).unwrap();
        assert_eq!(t.without_ports(0).len(), 4, "nothing down: every route");
        let usable = t.without_ports(1 << 1);
        assert_eq!(usable.len(), 2);
        // Port 1's destinations now follow the default route over port 0.
        assert_eq!(usable.next_hop(ip("192.168.1.5")), Some(NextHop { port: 0, addr: ip("10.0.0.254"), src: None }));
        assert_eq!(usable.next_hop(ip("172.16.3.4")).unwrap().port, 0);
        assert_eq!(usable.next_hop(ip("10.0.0.7")).unwrap().addr, ip("10.0.0.7"));
        // With port 0 down as well nothing is left.
        assert!(t.without_ports(0b11).next_hop(ip("192.168.1.5")).is_none());
        // Ports past the mask's 64 bits are never taken for down.
        let mut high = RouteTable::new();
        high.add(route("10.9.0.0/16", None, 70)).unwrap();
        assert_eq!(high.without_ports(u64::MAX).len(), 1);
        assert_eq!(t.len(), 4, "the configured table is untouched");
    }

    #[test]
    fn no_default_route_means_no_next_hop() {
        let mut t = RouteTable::new();
        t.add(route("10.0.0.0/8", None, 0)).unwrap();
        assert_eq!(t.next_hop(ip("11.0.0.1")), None);
    }

    #[test]
    fn duplicates_and_missing_routes_are_refused() {
        let mut t = RouteTable::new();
        t.add(route("10.0.0.9/24", None, 0)).unwrap();
        assert_eq!(t.add(route("10.0.0.0/24", None, 1)), Err(RouteError::Exists("10.0.0.0/24".parse().unwrap())));
        assert_eq!(t.delete("10.0.1.0/24".parse().unwrap()), Err(RouteError::NotFound("10.0.1.0/24".parse().unwrap())));
        assert_eq!(t.delete("10.0.0.0/24".parse().unwrap()).unwrap().port, 0);
        assert!(t.is_empty() && t.lookup(ip("10.0.0.1")).is_none());
        assert_eq!(
            RouteError::Exists("10.0.0.0/24".parse::<Ipv4Cidr>().unwrap()).to_string(),
            "a route to 10.0.0.0/24 already exists"
        );
    }

    fn route6(dst: &str, via: Option<&str>, port: u16) -> Route<Ipv6Addr> {
        Route { dst: dst.parse().unwrap(), via: via.map(|v| v.parse().unwrap()), port, src: None }
    }

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_longest_prefix_wins_at_every_length() {
        let mut t: RouteTable<Ipv6Addr> = RouteTable::new();
        t.add(route6("::/0", Some("fe80::1"), 0)).unwrap();
        t.add(route6("2001:db8::/48", Some("2001:db8:ffff::1"), 1)).unwrap();
        t.add(route6("2001:db8:0:1::/64", None, 2)).unwrap();
        t.add(route6("2001:db8:0:1::42/128", Some("2001:db8:0:1::fe"), 3)).unwrap();
        assert_eq!(t.len(), 4);
        let hop = |s: &str| t.next_hop(ip6(s)).unwrap();
        assert_eq!(hop("2001:db8:0:1::42"), NextHop { port: 3, addr: ip6("2001:db8:0:1::fe"), src: None });
        assert_eq!(hop("2001:db8:0:1::43"), NextHop { port: 2, addr: ip6("2001:db8:0:1::43"), src: None });
        assert_eq!(hop("2001:db8:0:2::1"), NextHop { port: 1, addr: ip6("2001:db8:ffff::1"), src: None });
        assert_eq!(hop("2001:db8:1::1"), NextHop { port: 0, addr: ip6("fe80::1"), src: None });
        assert_eq!(hop("::1").port, 0);
        let order: Vec<u8> = t.iter().map(|r| r.dst.prefix_len()).collect();
        assert_eq!(order, vec![128, 64, 48, 0]);
        // Without a default route, what no prefix covers has no next hop.
        t.delete("::/0".parse().unwrap()).unwrap();
        assert_eq!(t.next_hop(ip6("2001:db9::1")), None);
        assert_eq!(t.next_hop(ip6("2001:db8:0:1::42")).unwrap().port, 3);
    }

    #[test]
    fn ipv6_routes_over_a_down_port_give_way_to_less_specific_ones() {
        let mut t: RouteTable<Ipv6Addr> = RouteTable::new();
        t.add(route6("::/0", Some("2001:db8::fe"), 0)).unwrap();
        t.add(route6("2001:db8::/64", None, 0)).unwrap();
        t.add(route6("2001:db8:1::/64", None, 1)).unwrap();
        let usable = t.without_ports(1 << 1);
        assert_eq!(usable.len(), 2);
        assert_eq!(
            usable.next_hop(ip6("2001:db8:1::5")),
            Some(NextHop { port: 0, addr: ip6("2001:db8::fe"), src: None })
        );
        assert!(t.without_ports(0b11).next_hop(ip6("2001:db8:1::5")).is_none());
        assert_eq!(t.len(), 3, "the configured table is untouched");
    }

    #[test]
    fn ipv6_duplicates_and_missing_routes_are_refused() {
        let mut t: RouteTable<Ipv6Addr> = RouteTable::new();
        t.add(route6("2001:db8::9/64", None, 0)).unwrap();
        let net: Cidr<Ipv6Addr> = "2001:db8::/64".parse().unwrap();
        assert_eq!(t.add(route6("2001:db8::/64", None, 1)), Err(RouteError::Exists(net)));
        assert_eq!(t.lookup(ip6("2001:db8::1")).unwrap().dst, net, "stored with the host bits clear");
        let other: Cidr<Ipv6Addr> = "2001:db8::/63".parse().unwrap();
        assert_eq!(t.delete(other), Err(RouteError::NotFound(other)));
        assert_eq!(t.delete(net).unwrap().port, 0);
        assert!(t.is_empty() && t.lookup(ip6("2001:db8::1")).is_none());
        assert_eq!(RouteError::Exists(net).to_string(), "a route to 2001:db8::/64 already exists");
    }
}
