//! Static routes with longest-prefix match.
//!
//! Routes are few (connected networks plus a handful of static ones) and read
//! on every packet that leaves, so lookup is one hash probe per distinct
//! prefix length present, longest first: typically two or three probes, no
//! allocation, no lock. The table is built on the control plane and published
//! to workers read-only, like the service snapshot.

use std::fmt;
use std::net::Ipv4Addr;

use super::cidr::{mask_bits, Ipv4Cidr};
use crate::model::fasthash::FastMap;

/// One route: packets to `dst` leave by `port`, to `via` when set, otherwise
/// straight to their destination (a connected network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination network (host bits clear).
    pub dst: Ipv4Cidr,
    pub via: Option<Ipv4Addr>,
    pub port: u16,
    /// Preferred source address for packets the gateway itself sends.
    pub src: Option<Ipv4Addr>,
}

/// Where a packet goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    pub port: u16,
    /// The address whose MAC the frame is sent to.
    pub addr: Ipv4Addr,
    pub src: Option<Ipv4Addr>,
}

/// Why a route change was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    Exists(Ipv4Cidr),
    NotFound(Ipv4Cidr),
    /// The table holds at most this many routes.
    Full(usize),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Exists(d) => write!(f, "a route to {d} already exists"),
            RouteError::NotFound(d) => write!(f, "no route to {d}"),
            RouteError::Full(n) => write!(f, "the route table is full ({n} routes)"),
        }
    }
}

impl std::error::Error for RouteError {}

/// The most routes a table holds: static configuration, not a full BGP view.
pub const MAX_ROUTES: usize = 65536;

/// Whether `port` is in `down`, a set of ports as one bit per port id (bit
/// `p` set: port `p`'s link is down). Ports past 63 have no bit and are never
/// down. The one reading of that set, shared by routing and the poll loop.
#[inline]
pub fn port_is_down(down: u64, port: u16) -> bool {
    1u64.checked_shl(u32::from(port)).is_some_and(|bit| down & bit != 0)
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// Per prefix length present, longest first: network address -> route.
    by_len: Vec<(u8, FastMap<u32, Route>)>,
    len: usize,
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a route; its destination's host bits are cleared first.
    pub fn add(&mut self, mut route: Route) -> Result<(), RouteError> {
        route.dst = route.dst.network();
        if self.len >= MAX_ROUTES {
            return Err(RouteError::Full(MAX_ROUTES));
        }
        let plen = route.dst.prefix_len();
        let pos = match self.by_len.iter().position(|(l, _)| *l <= plen) {
            Some(i) if self.by_len[i].0 == plen => i,
            Some(i) => {
                self.by_len.insert(i, (plen, FastMap::default()));
                i
            }
            None => {
                self.by_len.push((plen, FastMap::default()));
                self.by_len.len() - 1
            }
        };
        let key = u32::from(route.dst.addr());
        if self.by_len[pos].1.contains_key(&key) {
            return Err(RouteError::Exists(route.dst));
        }
        self.by_len[pos].1.insert(key, route);
        self.len += 1;
        Ok(())
    }

    /// Removes the route to exactly `dst`.
    pub fn delete(&mut self, dst: Ipv4Cidr) -> Result<Route, RouteError> {
        let dst = dst.network();
        let pos = self.by_len.iter().position(|(l, _)| *l == dst.prefix_len()).ok_or(RouteError::NotFound(dst))?;
        let route = self.by_len[pos].1.remove(&u32::from(dst.addr())).ok_or(RouteError::NotFound(dst))?;
        if self.by_len[pos].1.is_empty() {
            self.by_len.remove(pos);
        }
        self.len -= 1;
        Ok(route)
    }

    /// The most specific route to `ip`.
    #[inline]
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<&Route> {
        let ip = u32::from(ip);
        self.by_len.iter().find_map(|(plen, routes)| routes.get(&(ip & mask_bits(*plen))))
    }

    /// Where a packet to `ip` goes next.
    #[inline]
    pub fn next_hop(&self, ip: Ipv4Addr) -> Option<NextHop> {
        self.lookup(ip).map(|r| NextHop { port: r.port, addr: r.via.unwrap_or(ip), src: r.src })
    }

    /// Every route, most specific first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.by_len.iter().flat_map(|(_, routes)| routes.values())
    }

    /// The routes that leave by a usable port: those whose port is in `down`
    /// (bit `p` set: port `p`'s link is down; ports past 63 are never down)
    /// are left out, so a less specific route over a live port, where there
    /// is one, takes their traffic until the link returns (where there is
    /// none, the worker still sends by the configured route, to be dropped
    /// as `link_down`). Built when a link changes, never per packet.
    pub fn without_ports(&self, down: u64) -> RouteTable {
        let mut usable = self.clone();
        if down == 0 {
            return usable;
        }
        for (_, routes) in &mut usable.by_len {
            routes.retain(|_, r| !port_is_down(down, r.port));
        }
        usable.by_len.retain(|(_, routes)| !routes.is_empty());
        usable.len = usable.by_len.iter().map(|(_, routes)| routes.len()).sum();
        usable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            RouteError::Exists("10.0.0.0/24".parse().unwrap()).to_string(),
            "a route to 10.0.0.0/24 already exists"
        );
    }
}
