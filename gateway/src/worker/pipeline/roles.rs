//! What each address is to a worker, per family: one map from an address to
//! its [`Roles`] (an interface address, a VIP, a FNAT local address, one held
//! by another director, a real server or a gateway), rebuilt when the
//! services or the network view change, never per packet.
//!
//! One map rather than a set per role: a packet of no connection asks what
//! its destination is in one lookup (a new connection's SYN asked the local
//! addresses' set, then the VIPs': `measure_pipeline.sh` counted 26
//! instructions more for `new`). A SYN to an exact service asks none while
//! the VIPs are plain ([`AddrRoles::vips_are_plain`]): the service's lookup
//! says the address is a VIP.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;

use crate::model::fasthash::FastBuildHasher;

/// The roles of one address, as bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Roles(u8);

impl Roles {
    const INTERFACE: u8 = 1;
    const VIP: u8 = 2;
    const LOCAL: u8 = 4;
    const UNHELD: u8 = 8;
    const NEEDED: u8 = 16;

    /// The roles of a VIP when [`AddrRoles::vips_are_plain`]: all the
    /// dispatch asks of an address it found an exact service of.
    pub(super) const PLAIN_VIP: Roles = Roles(Self::VIP);

    /// One of the ports' addresses (ARP, echo, the kernel interface's).
    #[inline(always)]
    pub(super) fn is_interface(self) -> bool {
        self.0 & Self::INTERFACE != 0
    }

    /// A virtual service's address.
    #[inline(always)]
    pub(super) fn is_vip(self) -> bool {
        self.0 & Self::VIP != 0
    }

    /// A FNAT local address: real servers answer to it.
    #[inline(always)]
    pub(super) fn is_local(self) -> bool {
        self.0 & Self::LOCAL != 0
    }

    /// A VIP or local address no kernel interface carries now
    /// ([`crate::model::NetView::held`]): another director serves it, so it
    /// opens no connection here; its existing connections run on.
    #[inline(always)]
    pub(super) fn is_unheld(self) -> bool {
        self.0 & Self::UNHELD != 0
    }

    /// An address ARP (neighbour discovery) and echo are answered for: an
    /// interface address, or a VIP or local address held now.
    #[inline(always)]
    pub(super) fn is_own(self) -> bool {
        self.is_interface() || (self.0 & (Self::VIP | Self::LOCAL) != 0 && !self.is_unheld())
    }

    /// A real server or a route's gateway: an address the gateway sends to,
    /// whose MAC is learned as needed (see [`crate::net::neigh`]).
    #[inline(always)]
    pub(super) fn is_needed(self) -> bool {
        self.0 & Self::NEEDED != 0
    }
}

/// The addresses of the roles, by family (see the module docs).
pub(super) struct AddrRoles<A> {
    roles: HashMap<A, Roles, FastBuildHasher>,
    /// Whether some address is unheld: when none is, as on a director that
    /// holds all its addresses, `is_unheld` asks no map.
    any_unheld: bool,
    /// Whether no VIP is also a local address or unheld (see
    /// [`AddrRoles::vips_are_plain`]).
    plain_vips: bool,
}

impl<A> Default for AddrRoles<A> {
    fn default() -> Self {
        AddrRoles { roles: HashMap::default(), any_unheld: false, plain_vips: true }
    }
}

/// What [`AddrRoles::rebuild`] makes the map of.
pub(super) struct Addresses<I, V, L, N> {
    pub(super) interface: I,
    pub(super) vips: V,
    pub(super) local: L,
    /// Real servers and gateways.
    pub(super) needed: N,
}

impl<A: Copy + Eq + Hash> AddrRoles<A> {
    /// The roles of `addr` (none for an address that is nothing to us). Out
    /// of line: inlined into the dispatch, the map's probe cost an
    /// established packet, which never asks, 11 instructions (the loop's
    /// registers were spilled more).
    #[inline(never)]
    pub(super) fn of(&self, addr: A) -> Roles {
        self.roles.get(&addr).copied().unwrap_or_default()
    }

    /// Whether every VIP is held and none is a local address too: the roles
    /// of each are then [`Roles::PLAIN_VIP`] as far as the dispatch asks
    /// (it asks no more of an address it has a service of). The configuration
    /// refuses a VIP that is a local address
    /// ([`crate::model::ConfigError::VipIsLocalAddress`]); the map is asked
    /// anyway, so that the shortcut does not rest on the refusal.
    #[inline(always)]
    pub(super) fn vips_are_plain(&self) -> bool {
        self.plain_vips
    }

    /// Whether `addr` is a VIP or local address another director holds now.
    /// Only the emptiness test is inlined: packets to an unheld address are
    /// rare (nobody is told by ARP to send them here).
    #[inline(always)]
    pub(super) fn is_unheld(&self, addr: A) -> bool {
        self.any_unheld && self.of(addr).is_unheld()
    }

    /// Makes the map afresh: the VIPs and local addresses not in `held` are
    /// unheld (with no list, every address is held).
    pub(super) fn rebuild(
        &mut self,
        addrs: Addresses<
            impl IntoIterator<Item = A>,
            impl IntoIterator<Item = A>,
            impl IntoIterator<Item = A>,
            impl IntoIterator<Item = A>,
        >,
        held: Option<&[IpAddr]>,
    ) where
        A: Into<IpAddr>,
    {
        let held: Option<HashSet<IpAddr, FastBuildHasher>> = held.map(|h| h.iter().copied().collect());
        let held = |a: A| held.as_ref().is_none_or(|h| h.contains(&a.into()));
        self.roles.clear();
        let mut add = |addrs: &mut dyn Iterator<Item = A>, role: u8| {
            for a in addrs {
                self.roles.entry(a).or_default().0 |= role;
            }
        };
        add(&mut addrs.interface.into_iter(), Roles::INTERFACE);
        add(&mut addrs.vips.into_iter(), Roles::VIP);
        add(&mut addrs.local.into_iter(), Roles::LOCAL);
        add(&mut addrs.needed.into_iter(), Roles::NEEDED);
        self.any_unheld = false;
        self.plain_vips = true;
        for (&a, r) in self.roles.iter_mut() {
            if r.0 & (Roles::VIP | Roles::LOCAL) != 0 && !held(a) {
                r.0 |= Roles::UNHELD;
                self.any_unheld = true;
            }
            if r.is_vip() && (r.is_local() || r.is_unheld()) {
                self.plain_vips = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    #[test]
    fn an_address_has_every_role_it_was_given_and_unheld_ones_are_not_own() {
        let mut roles = AddrRoles::default();
        roles.rebuild(
            Addresses {
                interface: [ip(1)],
                vips: [ip(2), ip(3), ip(1)],
                local: [ip(4), ip(5)],
                needed: [ip(6), ip(4)],
            },
            // Held: all but 3 and 5 (an interface address need not be listed).
            Some(&[ip(2), ip(4), ip(6)].map(IpAddr::V4)),
        );
        let (iface_vip, vip, unheld_vip, lip, unheld_lip, server) =
            (roles.of(ip(1)), roles.of(ip(2)), roles.of(ip(3)), roles.of(ip(4)), roles.of(ip(5)), roles.of(ip(6)));
        assert!(iface_vip.is_interface() && iface_vip.is_vip() && iface_vip.is_own());
        assert!(vip.is_vip() && vip.is_own() && !vip.is_interface() && !vip.is_unheld());
        assert!(unheld_vip.is_vip() && unheld_vip.is_unheld() && !unheld_vip.is_own());
        assert!(lip.is_local() && lip.is_needed() && lip.is_own());
        assert!(unheld_lip.is_local() && unheld_lip.is_unheld() && !unheld_lip.is_own());
        assert!(server.is_needed() && !server.is_own() && !server.is_unheld());
        assert_eq!(roles.of(ip(9)), Roles::default(), "nothing to us");
        assert!(roles.is_unheld(ip(3)) && roles.is_unheld(ip(5)) && !roles.is_unheld(ip(2)));

        // Held again: nothing is unheld, and the old roles are gone.
        roles.rebuild(Addresses { interface: [ip(1)], vips: [ip(3)], local: [], needed: [] }, None);
        assert!(!roles.is_unheld(ip(3)) && roles.of(ip(3)).is_own());
        assert_eq!(roles.of(ip(2)), Roles::default());
        assert!(!roles.any_unheld);
    }

    /// The dispatch takes an exact service's address for a plain VIP only when
    /// no VIP is also a local address or unheld: either would change where its
    /// packets go (to the local port's owner; dropped as not held).
    #[test]
    fn vips_are_plain_unless_one_is_also_a_local_address_or_unheld() {
        let mut roles = AddrRoles::default();
        assert!(roles.vips_are_plain(), "no VIP at all");
        let plain = |roles: &mut AddrRoles<Ipv4Addr>, local: &[Ipv4Addr], held: Option<&[IpAddr]>| {
            roles.rebuild(
                Addresses { interface: [ip(1)], vips: [ip(1), ip(2)], local: local.to_vec(), needed: [ip(4)] },
                held,
            );
            roles.vips_are_plain()
        };
        assert!(plain(&mut roles, &[ip(3)], None), "an interface address may be a VIP");
        assert!(!plain(&mut roles, &[ip(3), ip(2)], None), "a VIP is also a local address");
        assert!(plain(&mut roles, &[ip(3)], Some(&[ip(1), ip(2), ip(3)].map(IpAddr::V4))), "all held");
        assert!(!plain(&mut roles, &[ip(3)], Some(&[ip(1), ip(3)].map(IpAddr::V4))), "VIP ip(2) is unheld");
        assert!(plain(&mut roles, &[ip(3)], Some(&[ip(1), ip(2)].map(IpAddr::V4))), "only a local address is unheld");
        assert!(plain(&mut roles, &[ip(3)], None), "rebuilt: plain again");
        assert_eq!(Roles::PLAIN_VIP, Roles(Roles::VIP));
        assert!(Roles::PLAIN_VIP.is_vip() && !Roles::PLAIN_VIP.is_local() && !Roles::PLAIN_VIP.is_unheld());
    }
}
