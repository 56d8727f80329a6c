//! Layer 2 and 3 for the gateway itself: its addresses, routes, neighbours
//! (ARP, and neighbour discovery for IPv6) and ICMP. Everything here is pure
//! Rust over [`crate::frame::Frame`] and the views in [`crate::wire`]; the
//! workers call it for packets that are not load-balanced traffic, and to
//! find the next hop of those that are. Routes and neighbours are generic
//! over the address family and default to IPv4.

pub mod arp;
pub mod cidr;
pub mod exception;
pub mod icmp;
pub mod ndisc;
pub mod neigh;
pub mod probe;
pub mod route;
pub mod rss;

pub use cidr::{Cidr, CidrError, FamilyAddr, IpCidr, Ipv4Cidr, Ipv6Cidr};
pub use exception::KernelClass;
pub use neigh::{Learned, Lease, Neighbour, NeighbourTable, Origin, PendingQueue, Queued, MAX_STATIC_NEIGHBOURS};
pub use route::{NextHop, Route, RouteError, RouteTable};
