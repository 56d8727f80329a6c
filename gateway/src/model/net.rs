//! The gateway's own network configuration: the addresses it owns, its routes and its static
//! neighbours (`gwctl addr|route|neigh`, the configuration file's `ports` and `routes`).
//!
//! This is configuration, published with the service snapshot in one
//! [`GatewayConfig`](crate::control::GatewayConfig); the dataplane's `net` layer (ARP, routing, ICMP for
//! own addresses) consumes it. Like the snapshot editor, every method checks its whole
//! change before making it, so a refused change leaves the table as it was.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use gwapi::addr::family_bits;
use gwapi::api::{InterfaceAddr, NeighbourConfig, RouteConfig};

use crate::net::cidr::network_of;
use crate::net::rss::ReplySteering;
use crate::net::{Ipv4Cidr, Ipv6Cidr, Route, RouteError, RouteTable, MAX_STATIC_NEIGHBOURS};
use crate::wire::ipv6::link_local;
use crate::wire::MacAddr;
use crate::xmit::Offload;

/// Linux's IFNAMSIZ less the terminating NUL: DPDK port names follow the same limit here so
/// they can be shown by the same tools.
pub const MAX_IFNAME_LEN: usize = 15;

/// Addresses, routes and neighbours, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetConfig {
    addrs: Vec<InterfaceAddr>,
    routes: Vec<RouteConfig>,
    neighbours: Vec<NeighbourConfig>,
}

/// Why a network configuration change was refused. Each variant names the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    PrefixTooLong {
        addr: IpAddr,
        prefix_len: u8,
    },
    /// A route's destination has bits set beyond its prefix length (iproute2 refuses it too).
    HostBitsSet {
        dst: IpAddr,
        prefix_len: u8,
    },
    FamilyMismatch {
        dst: IpAddr,
        via: IpAddr,
    },
    BadIfname(String),
    AddrExists {
        addr: IpAddr,
        ifname: String,
    },
    /// The address's subnet overlaps one on another interface: the connected
    /// routes would disagree on which port reaches it.
    SubnetOverlaps {
        addr: IpAddr,
        prefix_len: u8,
        other: IpAddr,
        other_prefix_len: u8,
        other_ifname: String,
    },
    AddrNotFound {
        addr: IpAddr,
        ifname: String,
    },
    RouteExists {
        dst: IpAddr,
        prefix_len: u8,
    },
    RouteNotFound {
        dst: IpAddr,
        prefix_len: u8,
    },
    NeighbourExists {
        addr: IpAddr,
        ifname: String,
    },
    NeighbourNotFound {
        addr: IpAddr,
        ifname: String,
    },
    /// A neighbour's link-layer address that no host can have (multicast or all zeros).
    BadLladdr([u8; 6]),
    /// Already `limit` static neighbours: every worker's table holds that many besides the
    /// ones it learns, and an entry accepted here must be installed in all of them.
    TooManyNeighbours {
        addr: IpAddr,
        ifname: String,
        limit: usize,
    },
    /// An address that cannot be a host's (unspecified, multicast, broadcast).
    NotUnicast(IpAddr),
}

impl NetError {
    /// Whether the error is about an entry that exists or not (as opposed to a bad value).
    pub fn is_exists(&self) -> bool {
        matches!(self, NetError::AddrExists { .. } | NetError::RouteExists { .. } | NetError::NeighbourExists { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            NetError::AddrNotFound { .. } | NetError::RouteNotFound { .. } | NetError::NeighbourNotFound { .. }
        )
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use NetError::*;
        match self {
            PrefixTooLong { addr, prefix_len } => {
                write!(f, "prefix length {prefix_len} is too long for {addr}")
            }
            HostBitsSet { dst, prefix_len } => {
                write!(f, "invalid prefix for given prefix length: {dst}/{prefix_len} has host bits set")
            }
            FamilyMismatch { dst, via } => {
                write!(f, "gateway {via} is not of the same address family as {dst}")
            }
            BadIfname(name) => write!(
                f,
                "interface name {name:?} is invalid (1 to {MAX_IFNAME_LEN} characters, no '/', no whitespace)"
            ),
            AddrExists { addr, ifname } => write!(f, "address {addr} already exists on {ifname}"),
            SubnetOverlaps { addr, prefix_len, other, other_prefix_len, other_ifname } => write!(
                f,
                "{addr}/{prefix_len} overlaps {other}/{other_prefix_len} on {other_ifname}: each subnet belongs to one interface"
            ),
            AddrNotFound { addr, ifname } => write!(f, "address {addr} not found on {ifname}"),
            RouteExists { dst, prefix_len } => write!(f, "route {dst}/{prefix_len} already exists"),
            RouteNotFound { dst, prefix_len } => write!(f, "route {dst}/{prefix_len} not found"),
            NeighbourExists { addr, ifname } => {
                write!(f, "neighbour {addr} already exists on {ifname}")
            }
            NeighbourNotFound { addr, ifname } => {
                write!(f, "neighbour {addr} not found on {ifname}")
            }
            BadLladdr(mac) => write!(f, "link-layer address {} is not a unicast MAC", MacAddr(*mac)),
            TooManyNeighbours { addr, ifname, limit } => {
                write!(f, "neighbour {addr} on {ifname} refused: at most {limit} static neighbours")
            }
            NotUnicast(addr) => write!(f, "{addr} is not a unicast address"),
        }
    }
}

impl std::error::Error for NetError {}

fn check_prefix(addr: IpAddr, prefix_len: u8) -> Result<(), NetError> {
    if prefix_len > family_bits(addr) {
        return Err(NetError::PrefixTooLong { addr, prefix_len });
    }
    Ok(())
}

fn check_ifname(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && !name.contains('/')
        && !name.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(NetError::BadIfname(name.to_string()))
    }
}

fn check_unicast(addr: IpAddr) -> Result<(), NetError> {
    let bad = addr.is_unspecified() || addr.is_multicast() || matches!(addr, IpAddr::V4(a) if a.is_broadcast());
    if bad {
        Err(NetError::NotUnicast(addr))
    } else {
        Ok(())
    }
}

impl NetConfig {
    pub fn addrs(&self) -> &[InterfaceAddr] {
        &self.addrs
    }

    pub fn routes(&self) -> &[RouteConfig] {
        &self.routes
    }

    pub fn neighbours(&self) -> &[NeighbourConfig] {
        &self.neighbours
    }

    /// `addr add`: an address belongs to one interface, and so does its subnet. Linux
    /// allows both on two interfaces, but the gateway answers ARP and routes by them: the
    /// same address on two ports would answer for both, overlapping subnets would make
    /// two connected routes for one destination. More addresses in one subnet on the same
    /// interface are fine.
    pub fn add_addr(&mut self, a: InterfaceAddr) -> Result<(), NetError> {
        check_prefix(a.addr, a.prefix_len)?;
        check_ifname(&a.ifname)?;
        check_unicast(a.addr)?;
        if let Some(x) = self.addrs.iter().find(|x| x.addr == a.addr) {
            return Err(NetError::AddrExists { addr: a.addr, ifname: x.ifname.clone() });
        }
        let shorter = |x: &InterfaceAddr| x.prefix_len.min(a.prefix_len);
        if let Some(x) = self.addrs.iter().find(|x| {
            x.ifname != a.ifname
                && x.addr.is_ipv4() == a.addr.is_ipv4()
                && network_of(x.addr, shorter(x)) == network_of(a.addr, shorter(x))
        }) {
            return Err(NetError::SubnetOverlaps {
                addr: a.addr,
                prefix_len: a.prefix_len,
                other: x.addr,
                other_prefix_len: x.prefix_len,
                other_ifname: x.ifname.clone(),
            });
        }
        self.addrs.push(a);
        Ok(())
    }

    /// `addr del`: by address and interface; the prefix length need not match, as in
    /// iproute2 when it is omitted.
    pub fn delete_addr(&mut self, addr: IpAddr, ifname: &str) -> Result<(), NetError> {
        let i = self
            .addrs
            .iter()
            .position(|x| x.addr == addr && x.ifname == ifname)
            .ok_or_else(|| NetError::AddrNotFound { addr, ifname: ifname.to_string() })?;
        self.addrs.remove(i);
        Ok(())
    }

    /// `route add`: one route per destination prefix.
    pub fn add_route(&mut self, r: RouteConfig) -> Result<(), NetError> {
        check_prefix(r.dst, r.prefix_len)?;
        check_ifname(&r.ifname)?;
        if network_of(r.dst, r.prefix_len) != r.dst {
            return Err(NetError::HostBitsSet { dst: r.dst, prefix_len: r.prefix_len });
        }
        if let Some(via) = r.via {
            if via.is_ipv4() != r.dst.is_ipv4() {
                return Err(NetError::FamilyMismatch { dst: r.dst, via });
            }
            check_unicast(via)?;
        }
        if self.routes.iter().any(|x| x.dst == r.dst && x.prefix_len == r.prefix_len) {
            return Err(NetError::RouteExists { dst: r.dst, prefix_len: r.prefix_len });
        }
        self.routes.push(r);
        Ok(())
    }

    pub fn delete_route(&mut self, dst: IpAddr, prefix_len: u8) -> Result<(), NetError> {
        let i = self
            .routes
            .iter()
            .position(|x| x.dst == dst && x.prefix_len == prefix_len)
            .ok_or(NetError::RouteNotFound { dst, prefix_len })?;
        self.routes.remove(i);
        Ok(())
    }

    /// `neigh add`: a static (permanent) neighbour entry, at most [`MAX_STATIC_NEIGHBOURS`].
    pub fn add_neighbour(&mut self, n: NeighbourConfig) -> Result<(), NetError> {
        check_ifname(&n.ifname)?;
        check_unicast(n.addr)?;
        if MacAddr(n.lladdr).is_multicast() || n.lladdr == [0; 6] {
            return Err(NetError::BadLladdr(n.lladdr));
        }
        if self.neighbours.iter().any(|x| x.addr == n.addr && x.ifname == n.ifname) {
            return Err(NetError::NeighbourExists { addr: n.addr, ifname: n.ifname });
        }
        if self.neighbours.len() >= MAX_STATIC_NEIGHBOURS {
            return Err(NetError::TooManyNeighbours { addr: n.addr, ifname: n.ifname, limit: MAX_STATIC_NEIGHBOURS });
        }
        self.neighbours.push(n);
        Ok(())
    }

    pub fn delete_neighbour(&mut self, addr: IpAddr, ifname: &str) -> Result<(), NetError> {
        let i = self
            .neighbours
            .iter()
            .position(|x| x.addr == addr && x.ifname == ifname)
            .ok_or_else(|| NetError::NeighbourNotFound { addr, ifname: ifname.to_string() })?;
        self.neighbours.remove(i);
        Ok(())
    }
}

/// A port as the workers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView {
    pub mac: MacAddr,
    pub mtu: u16,
    pub offload: Offload,
    /// Interface addresses on this port; the first is the source of the
    /// gateway's own packets (ARP requests, tunnel headers).
    pub addrs: Vec<Ipv4Cidr>,
    /// Which rx queue the NIC's RSS hash gives a reply arriving here, when
    /// the device lets us predict it: a FNAT connection then takes a local
    /// port whose replies land on its own worker's queue, so they need no
    /// redirect even without flow rules (DESIGN.md invariant 2).
    pub steering: Option<Arc<ReplySteering>>,
    /// Whether the port has a kernel exception interface: what the datapath
    /// does not consume of the gateway's own traffic goes there (see
    /// [`crate::net::exception`]) instead of being dropped.
    pub kernel: bool,
}

/// The gateway's layer-2/3 configuration as the workers route with it (ports by DPDK
/// port id, connected routes added), published to them read-only beside the snapshot.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    /// Indexed by DPDK port id.
    pub ports: Vec<PortView>,
    pub routes: RouteTable,
    /// Permanent neighbours: (address, MAC, port).
    pub static_neighbours: Vec<(Ipv4Addr, MacAddr, u16)>,
    /// The IPv6 side: each port's addresses, the IPv6 routes and permanent
    /// neighbours. Beside the IPv4 fields rather than in them, so the IPv4
    /// path reads what it did.
    pub v6: NetView6,
    /// The addresses the kernel interfaces carry, when any port has one: a
    /// VIP or local address is served (ARP answered, new connections
    /// accepted) only while it is among them, so keepalived moves it between
    /// directors. `None` (no kernel interface): every address is held.
    pub held: Option<Vec<IpAddr>>,
}

impl NetView {
    /// Connected routes for every interface address, plus `routes`.
    pub fn with_connected_routes(ports: Vec<PortView>, routes: &[Route]) -> Result<NetView, RouteError> {
        let mut table = RouteTable::new();
        for (port, view) in ports.iter().enumerate() {
            for a in &view.addrs {
                let route = Route { dst: a.network(), via: None, port: port as u16, src: Some(a.addr()) };
                match table.add(route) {
                    Ok(()) | Err(RouteError::Exists(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for r in routes {
            table.add(*r)?;
        }
        let v6 = NetView6::link_local_only(&ports);
        Ok(NetView { ports, routes: table, static_neighbours: Vec::new(), v6, held: None })
    }

    /// The source of the gateway's own packets on `port`: its first address.
    pub(crate) fn source_on(&self, port: u16) -> Option<Ipv4Addr> {
        self.ports.get(usize::from(port))?.addrs.first().map(|a| a.addr())
    }
}

/// A port's IPv6 addresses as the workers see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortView6 {
    /// `fe80::/64` with the port's MAC as modified EUI-64: what neighbour
    /// discovery and routers on the link use, the source of solicitations
    /// when no configured address fits. Every port has one; it has no
    /// route (each port's link is its own `fe80::/64`).
    pub link_local: Ipv6Addr,
    /// Configured interface addresses on this port.
    pub addrs: Vec<Ipv6Cidr>,
}

impl PortView6 {
    /// Whether `ip` is an address of this port (its link-local one
    /// included): a neighbour solicitation for it is answered.
    pub fn holds(&self, ip: Ipv6Addr) -> bool {
        ip == self.link_local || self.addrs.iter().any(|a| a.addr() == ip)
    }

    /// The source of the gateway's own packets toward `toward` on this
    /// port (RFC 4861 §7.2.2 leaves the choice among the port's
    /// addresses): the link-local address toward a link-local one, else an
    /// address whose subnet holds `toward`, else the first address, else
    /// the link-local one.
    pub fn source_toward(&self, toward: Ipv6Addr) -> Ipv6Addr {
        if toward.is_unicast_link_local() {
            return self.link_local;
        }
        let on_link = self.addrs.iter().find(|a| a.contains(toward));
        on_link.or(self.addrs.first()).map_or(self.link_local, |a| a.addr())
    }
}

/// The IPv6 side of [`NetView`].
#[derive(Debug, Clone, Default)]
pub struct NetView6 {
    /// Indexed by DPDK port id, as [`NetView::ports`].
    pub ports: Vec<PortView6>,
    /// Connected routes of the interface addresses, and the static routes.
    pub routes: RouteTable<Ipv6Addr>,
    /// Permanent neighbours: (address, MAC, port).
    pub static_neighbours: Vec<(Ipv6Addr, MacAddr, u16)>,
}

impl NetView6 {
    /// Each of `ports` with its link-local address only, no route.
    pub fn link_local_only(ports: &[PortView]) -> NetView6 {
        let ports = ports.iter().map(|p| PortView6 { link_local: link_local(p.mac), addrs: Vec::new() }).collect();
        NetView6 { ports, routes: RouteTable::new(), static_neighbours: Vec::new() }
    }

    /// The IPv6 view of `ports`: their link-local addresses, `addrs` (port
    /// id and address; a port id past `ports` is ignored, as the caller
    /// resolved it from the same ports) each with its connected route, then
    /// `routes`. Refused, naming it, when a static route repeats another or
    /// the table is full.
    pub fn new(
        ports: &[PortView],
        addrs: &[(u16, Ipv6Cidr)],
        routes: &[Route<Ipv6Addr>],
    ) -> Result<NetView6, RouteError<Ipv6Addr>> {
        let mut view = NetView6::link_local_only(ports);
        for (port, a) in addrs {
            let Some(p) = view.ports.get_mut(usize::from(*port)) else { continue };
            p.addrs.push(*a);
            let route = Route { dst: a.network(), via: None, port: *port, src: Some(a.addr()) };
            match view.routes.add(route) {
                Ok(()) | Err(RouteError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        for r in routes {
            view.routes.add(*r)?;
        }
        Ok(view)
    }

    /// The port whose address (link-local included) `ip` is.
    pub fn port_of(&self, ip: Ipv6Addr) -> Option<u16> {
        self.ports.iter().position(|p| p.holds(ip)).and_then(|i| u16::try_from(i).ok())
    }

    /// The source of the gateway's own packets on `port` toward `toward`
    /// (see [`PortView6::source_toward`]).
    pub fn source_on(&self, port: u16, toward: Ipv6Addr) -> Option<Ipv6Addr> {
        Some(self.ports.get(usize::from(port))?.source_toward(toward))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmit::Offload;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_changes_name_the_value_and_change_nothing() {
        let mut net = NetConfig::default();
        let a = InterfaceAddr { addr: ip("10.0.0.1"), prefix_len: 24, ifname: "dpdk0".into() };
        net.add_addr(a.clone()).unwrap();
        let before = net.clone();
        let cases: Vec<(Result<(), NetError>, &str)> = vec![
            (net.add_addr(a.clone()), "address 10.0.0.1 already exists on dpdk0"),
            (
                net.add_addr(InterfaceAddr { ifname: "dpdk1".into(), ..a.clone() }),
                "address 10.0.0.1 already exists on dpdk0",
            ),
            (
                net.add_addr(InterfaceAddr { addr: ip("10.0.0.129"), prefix_len: 25, ifname: "dpdk1".into() }),
                "10.0.0.129/25 overlaps 10.0.0.1/24 on dpdk0: each subnet belongs to one interface",
            ),
            (
                net.add_addr(InterfaceAddr { addr: ip("10.9.9.9"), prefix_len: 8, ifname: "dpdk1".into() }),
                "10.9.9.9/8 overlaps 10.0.0.1/24 on dpdk0: each subnet belongs to one interface",
            ),
            (net.add_addr(InterfaceAddr { prefix_len: 33, ..a.clone() }), "prefix length 33 is too long for 10.0.0.1"),
            (
                net.add_addr(InterfaceAddr { ifname: "a-name-far-too-long".into(), ..a.clone() }),
                "interface name \"a-name-far-too-long\" is invalid (1 to 15 characters, no '/', no whitespace)",
            ),
            (
                net.add_route(RouteConfig {
                    dst: ip("192.168.1.1"),
                    prefix_len: 24,
                    via: None,
                    ifname: "dpdk0".into(),
                }),
                "invalid prefix for given prefix length: 192.168.1.1/24 has host bits set",
            ),
            (
                net.add_route(RouteConfig {
                    dst: ip("192.168.0.0"),
                    prefix_len: 16,
                    via: Some(ip("2001:db8::1")),
                    ifname: "dpdk0".into(),
                }),
                "gateway 2001:db8::1 is not of the same address family as 192.168.0.0",
            ),
            (net.delete_route(ip("0.0.0.0"), 0), "route 0.0.0.0/0 not found"),
            (
                net.add_neighbour(NeighbourConfig {
                    addr: ip("10.0.0.254"),
                    lladdr: [1, 0, 0x5e, 0, 0, 1],
                    ifname: "dpdk0".into(),
                }),
                "link-layer address 01:00:5e:00:00:01 is not a unicast MAC",
            ),
            (net.delete_neighbour(ip("10.0.0.254"), "dpdk0"), "neighbour 10.0.0.254 not found on dpdk0"),
            (net.delete_addr(ip("10.0.0.1"), "dpdk1"), "address 10.0.0.1 not found on dpdk1"),
        ];
        for (result, message) in cases {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
        assert_eq!(net, before);
    }

    #[test]
    fn static_neighbours_beyond_the_limit_are_refused_by_name() {
        let mut net = NetConfig::default();
        let neighbour = |i: usize| NeighbourConfig {
            addr: IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32 + 1)),
            lladdr: [0x52, 0x54, 0, 0, (i >> 8) as u8, i as u8],
            ifname: "dpdk0".into(),
        };
        for i in 0..MAX_STATIC_NEIGHBOURS {
            net.add_neighbour(neighbour(i)).unwrap();
        }
        let before = net.clone();
        let refused = net.add_neighbour(neighbour(MAX_STATIC_NEIGHBOURS)).unwrap_err();
        assert_eq!(refused.to_string(), "neighbour 10.0.4.1 on dpdk0 refused: at most 1024 static neighbours");
        assert!(!refused.is_exists() && !refused.is_not_found(), "an invalid argument");
        assert_eq!(net, before);
        net.delete_neighbour(ip("10.0.0.1"), "dpdk0").unwrap();
        net.add_neighbour(neighbour(MAX_STATIC_NEIGHBOURS)).expect("room again after a deletion");
    }

    #[test]
    fn add_and_delete_each_kind() {
        let mut net = NetConfig::default();
        // A second address in a port's subnet, and a disjoint subnet on another port.
        for (addr, prefix_len, ifname) in
            [("10.0.0.1", 24, "dpdk0"), ("10.0.0.2", 24, "dpdk0"), ("10.0.1.1", 24, "dpdk1")]
        {
            net.add_addr(InterfaceAddr { addr: ip(addr), prefix_len, ifname: ifname.into() }).unwrap();
        }
        for (addr, ifname) in [("10.0.0.1", "dpdk0"), ("10.0.0.2", "dpdk0"), ("10.0.1.1", "dpdk1")] {
            net.delete_addr(ip(addr), ifname).unwrap();
        }
        net.add_route(RouteConfig {
            dst: ip("0.0.0.0"),
            prefix_len: 0,
            via: Some(ip("10.0.0.254")),
            ifname: "dpdk0".into(),
        })
        .unwrap();
        net.add_neighbour(NeighbourConfig {
            addr: ip("10.0.0.254"),
            lladdr: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            ifname: "dpdk0".into(),
        })
        .unwrap();
        assert_eq!(net.routes().len(), 1);
        assert_eq!(net.neighbours().len(), 1);
        net.delete_route(ip("0.0.0.0"), 0).unwrap();
        net.delete_neighbour(ip("10.0.0.254"), "dpdk0").unwrap();
        assert_eq!(net, NetConfig::default());
    }

    #[test]
    fn ipv6_changes_are_checked_as_ipv4_ones() {
        let mut net = NetConfig::default();
        let a = InterfaceAddr { addr: ip("2001:db8::1"), prefix_len: 64, ifname: "dpdk0".into() };
        net.add_addr(a.clone()).unwrap();
        // The families do not overlap each other: ::ffff:10.0.0.1 is not 10.0.0.1.
        net.add_addr(InterfaceAddr { addr: ip("10.0.0.1"), prefix_len: 8, ifname: "dpdk1".into() }).unwrap();
        net.add_addr(InterfaceAddr { addr: ip("::ffff:10.0.0.2"), prefix_len: 120, ifname: "dpdk0".into() }).unwrap();
        let before = net.clone();
        let route = |dst: &str, prefix_len, via: Option<&str>| RouteConfig {
            dst: ip(dst),
            prefix_len,
            via: via.map(ip),
            ifname: "dpdk0".into(),
        };
        let cases: Vec<(Result<(), NetError>, &str)> = vec![
            (net.add_addr(a.clone()), "address 2001:db8::1 already exists on dpdk0"),
            (
                net.add_addr(InterfaceAddr { addr: ip("2001:db8::2"), prefix_len: 48, ifname: "dpdk1".into() }),
                "2001:db8::2/48 overlaps 2001:db8::1/64 on dpdk0: each subnet belongs to one interface",
            ),
            (
                net.add_addr(InterfaceAddr { prefix_len: 129, ..a.clone() }),
                "prefix length 129 is too long for 2001:db8::1",
            ),
            (net.add_addr(InterfaceAddr { addr: ip("ff02::1"), ..a.clone() }), "ff02::1 is not a unicast address"),
            (
                net.add_route(route("2001:db8:1::1", 64, None)),
                "invalid prefix for given prefix length: 2001:db8:1::1/64 has host bits set",
            ),
            (
                net.add_route(route("2001:db8:1::", 64, Some("10.0.0.254"))),
                "gateway 10.0.0.254 is not of the same address family as 2001:db8:1::",
            ),
            (net.add_route(route("::", 0, Some("::"))), ":: is not a unicast address"),
            (net.delete_route(ip("::"), 0), "route ::/0 not found"),
            (
                net.add_neighbour(NeighbourConfig {
                    addr: ip("ff02::1:ff00:1"),
                    lladdr: [0x52, 0x54, 0, 0, 0, 1],
                    ifname: "dpdk0".into(),
                }),
                "ff02::1:ff00:1 is not a unicast address",
            ),
            (
                net.add_neighbour(NeighbourConfig {
                    addr: ip("2001:db8::fe"),
                    lladdr: [0x33, 0x33, 0, 0, 0, 1],
                    ifname: "dpdk0".into(),
                }),
                "link-layer address 33:33:00:00:00:01 is not a unicast MAC",
            ),
            (net.delete_addr(ip("2001:db8::1"), "dpdk1"), "address 2001:db8::1 not found on dpdk1"),
        ];
        for (result, message) in cases {
            assert_eq!(result.unwrap_err().to_string(), message);
        }
        assert_eq!(net, before);
        // Each kind added and deleted.
        net.add_route(route("2001:db8:100::", 48, Some("2001:db8::fe"))).unwrap();
        net.add_route(route("::", 0, Some("fe80::1"))).unwrap();
        assert_eq!(net.add_route(route("::", 0, None)).unwrap_err().to_string(), "route ::/0 already exists");
        let fe =
            NeighbourConfig { addr: ip("2001:db8::fe"), lladdr: [0x52, 0x54, 0, 0, 0, 0xfe], ifname: "dpdk0".into() };
        net.add_neighbour(fe.clone()).unwrap();
        assert!(net.add_neighbour(fe).unwrap_err().is_exists());
        assert_eq!((net.routes().len(), net.neighbours().len()), (2, 1));
        net.delete_route(ip("::"), 0).unwrap();
        net.delete_route(ip("2001:db8:100::"), 48).unwrap();
        net.delete_neighbour(ip("2001:db8::fe"), "dpdk0").unwrap();
        assert_eq!(net, before);
    }

    fn port(mac: [u8; 6], addr: &str) -> PortView {
        PortView {
            mac: MacAddr(mac),
            mtu: 1500,
            offload: Offload::NONE,
            addrs: vec![addr.parse().unwrap()],
            steering: None,
            kernel: false,
        }
    }

    #[test]
    fn the_ipv6_view_has_link_local_and_connected_routes() {
        let ports =
            vec![port([0x52, 0x54, 0, 0x12, 0x34, 0x56], "10.0.0.1/24"), port([2, 0, 0, 0, 0, 2], "10.0.1.1/24")];
        let v4_only = NetView::with_connected_routes(ports.clone(), &[]).unwrap();
        assert_eq!(v4_only.v6.ports[0].link_local, "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
        assert!(v4_only.v6.routes.is_empty() && v4_only.v6.ports[1].addrs.is_empty());
        let a = |s: &str| s.parse::<Ipv6Cidr>().unwrap();
        let ip6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let addrs = [
            (0, a("2001:db8::1/64")),
            (0, a("2001:db8::2/64")),
            (1, a("2001:db8:1::1/64")),
            (7, a("2001:db8:7::1/64")),
        ];
        let statics = [Route { dst: a("2001:db8:1::/64"), via: None, port: 0, src: None }];
        assert_eq!(
            NetView6::new(&ports, &addrs, &statics).unwrap_err().to_string(),
            "a route to 2001:db8:1::/64 already exists",
            "a static route repeating a connected one"
        );
        let v6 = NetView6::new(&ports, &addrs, &[]).unwrap();
        assert_eq!(v6.routes.len(), 2, "one connected route per subnet; the unknown port 7 is left out");
        assert_eq!(v6.routes.next_hop(ip6("2001:db8::9")).unwrap().src, Some(ip6("2001:db8::1")));
        assert_eq!(v6.port_of(ip6("2001:db8::2")), Some(0));
        assert_eq!(v6.port_of(ip6("2001:db8:7::1")), None);
        assert_eq!(v6.source_on(1, ip6("2001:db9::1")), Some(ip6("2001:db8:1::1")), "off-link: the first address");
        assert_eq!(v6.source_on(0, ip6("2001:db8::9")), Some(ip6("2001:db8::1")));
        assert_eq!(v6.source_on(9, ip6("2001:db8::9")), None);
        let bare = NetView6::link_local_only(&ports);
        assert_eq!(bare.source_on(1, ip6("2001:db8::9")), Some(bare.ports[1].link_local), "no address: link-local");
    }
}
