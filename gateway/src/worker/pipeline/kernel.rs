//! The gateway's own packets that the datapath does not consume, handed to
//! the kernel interface of the port they arrived on (see
//! [`crate::net::exception`]), when that port has one
//! ([`PortView::kernel`](crate::model::PortView)). On a port without one,
//! each of them is the drop it was before, under the same reason.
//!
//! The rules, in the order the pipeline meets them:
//! - **ARP** (control): after the worker learned what it learns from it, a
//!   request it does not answer, a reply or a gratuitous ARP goes to the
//!   kernel as it came (the same frame, not a copy). A request the worker
//!   answers is answered by the worker alone.
//! - **Other EtherTypes** (IPv6 until the gateway speaks it, LLDP, ...) to
//!   the port's MAC or to a multicast or broadcast MAC: IPv6 neighbour
//!   discovery (ICMPv6 133 to 137) is control, the rest bulk.
//! - **IPv4 protocols other than TCP, UDP and ICMP** (VRRP, IGMP, OSPF: control;
//!   GRE, ESP, ...: bulk) to one of the gateway's addresses, to a multicast
//!   group (224.0.0.0/4) or to a broadcast address (255.255.255.255, or the
//!   directed broadcast of one of the arrival port's prefixes).
//! - **ICMP** to one of the gateway's addresses, other than the echo requests
//!   the workers answer (bulk): echo replies to the kernel's own pings, and
//!   errors about no connection of the datapath's.
//! - **TCP and UDP** (control for BGP, port 179 either way; else bulk) to a
//!   multicast or broadcast address, or to one of the gateway's addresses
//!   where no service matches the protocol and port: an interface address
//!   (sshd, bgpd on the director), or a VIP on a port with no service. What a
//!   service matches stays the datapath's even without a connection (a TCP
//!   segment other than a SYN is `no_connection`, as in IPVS), and so does a
//!   local address that is not also an interface address (a reply to an
//!   unused local port). A TTL of 1 expires only what the gateway would
//!   forward: one of these packets goes to the kernel, whose hop it is.
//!
//! Malformed packets stay drops under their reasons: the classifier refused
//! them before any of this is decided (only an unknown protocol or
//! EtherType, on a well-formed header, is looked at again).
//!
//! Each worker rate-limits per port and class ([`KernelLimiter`]), and counts
//! what it handed over and what the limit refused per port and class
//! ([`crate::worker::counters::KernelCounters`]; a refusal is also the drop
//! `kernel_rate_limited`). Control and bulk have their own buckets and their
//! own rings, so a bulk flood cannot take what control needs.
//!
//! None of it is on the forwarding path: it is reached only where a frame
//! used to be dropped (or, for ARP, freed), in functions kept out of line.
//!
//! [`KernelLimiter`]: crate::net::exception::KernelLimiter

use std::net::Ipv4Addr;

use super::{Arrival, Io, Worker};
use crate::frame::Frame;
use crate::net::exception::{non_ipv4, other_ipv4};
use crate::net::KernelClass;
use crate::wire::{classify, Classified, DropReason, Ipv4Meta};
use crate::worker::counters::Discard;
use crate::xmit::XmitError;

impl<F: Frame> Worker<F> {
    /// Whether `port` has a kernel interface.
    pub(super) fn has_kernel(&self, port: u16) -> bool {
        self.net.ports.get(usize::from(port)).is_some_and(|p| p.kernel)
    }

    /// Hands `frame` to the kernel interface of the port it arrived on, if
    /// the port's rate for `class` allows; counted either way.
    pub(super) fn hand_to_kernel(&mut self, frame: F, class: KernelClass, at: Arrival, io: &mut impl Io<F>) {
        if self.kernel_limiter.allow(at.port, class, at.now) {
            self.counters.kernel.handed(at.port, class).inc();
            return io.to_kernel(at.port, frame, class);
        }
        if let Some(refused) = self.counters.kernel.rate_limited(at.port, class) {
            refused.inc();
        }
        self.discard(frame, Discard::KernelRateLimited, io);
    }

    /// A packet to the gateway that the datapath does not consume: to the
    /// kernel interface as `class` when the port has one, else dropped as
    /// `reason`.
    #[cold]
    #[inline(never)]
    pub(super) fn hand_to_kernel_or_discard(
        &mut self,
        frame: F,
        class: KernelClass,
        reason: Discard,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        if self.has_kernel(at.port) {
            return self.hand_to_kernel(frame, class, at, io);
        }
        self.discard(frame, reason, io);
    }

    /// An ARP packet the worker learned from and does not answer (a request
    /// for another address, a reply, a gratuitous ARP): the kernel learns
    /// from it too, when the port has a kernel interface; else it is freed.
    #[cold]
    #[inline(never)]
    pub(super) fn consumed_arp(&mut self, frame: F, at: Arrival, io: &mut impl Io<F>) {
        if self.has_kernel(at.port) {
            return self.hand_to_kernel(frame, KernelClass::Control, at, io);
        }
        io.free(frame);
    }

    /// A frame the classifier refused as `reason`: an unknown IPv4 protocol
    /// or EtherType may be the kernel's; anything else is dropped.
    #[cold]
    #[inline(never)]
    pub(super) fn unclassified(&mut self, frame: F, reason: DropReason, at: Arrival, io: &mut impl Io<F>) {
        let class = match reason {
            _ if !self.has_kernel(at.port) => None,
            DropReason::UnknownProtocol | DropReason::UnsupportedEthertype => match other_ipv4(frame.data()) {
                Some((protocol, dst)) => (self.addrs.of(dst).is_own() || self.is_group_or_broadcast(dst, at.port))
                    .then(|| KernelClass::of_ip(protocol, 0, 0)),
                // Other EtherTypes, and IPv6 of a protocol the datapath does
                // not speak (VRRP, OSPF), by MAC: the rule IPv6 had before the
                // gateway spoke it.
                None => {
                    let port_mac = self.net.ports.get(usize::from(at.port)).map(|p| p.mac);
                    non_ipv4(frame.data())
                        .filter(|&(dst, _)| Some(dst) == port_mac || dst.is_multicast())
                        .map(|(_, class)| class)
                }
            },
            _ => None,
        };
        match class {
            Some(class) => self.hand_to_kernel(frame, class, at, io),
            None => self.discard(frame, reason.into(), io),
        }
    }

    /// A TCP or UDP packet the datapath does not forward, which it would
    /// drop as `reason`: to the kernel interface when it is the kernel's
    /// (see the module's rules), else dropped. Its headers are read again
    /// here rather than passed: the forwarding path keeps nothing alive for
    /// this one.
    #[cold]
    #[inline(never)]
    pub(super) fn unconsumed_flow(&mut self, frame: F, reason: Discard, at: Arrival, io: &mut impl Io<F>) {
        // A service matched but could not take the packet (no server, no
        // local port, a full table): the datapath's, flood or not.
        let served = matches!(reason, Discard::NoDest | Discard::NoLocalPort | Discard::TableFull);
        if served || !self.has_kernel(at.port) {
            return self.discard(frame, reason, io);
        }
        let class = match classify(&frame, self.classify) {
            Ok(Classified::Ipv4(meta)) => self.kernel_flow(&meta, at.port),
            _ => None,
        };
        match class {
            Some(class) => self.hand_to_kernel(frame, class, at, io),
            None => self.discard(frame, reason, io),
        }
    }

    /// A TCP or UDP packet whose TTL expires here: the kernel's, when it is
    /// addressed to it (no hop of the gateway's), else refused as a router
    /// refuses it.
    #[cold]
    #[inline(never)]
    pub(super) fn expiring(&mut self, frame: F, meta: Ipv4Meta, at: Arrival, io: &mut impl Io<F>) {
        match self.kernel_flow(&meta, at.port) {
            Some(class) => self.hand_to_kernel(frame, class, at, io),
            None => self.refuse(frame, &meta, XmitError::TtlExpired { ttl: meta.ttl }, at, io),
        }
    }

    /// The class of a TCP or UDP packet that goes to the kernel interface of
    /// `port`, or `None` when it does not (no interface, or the datapath's).
    fn kernel_flow(&self, meta: &Ipv4Meta, port: u16) -> Option<KernelClass> {
        if !self.has_kernel(port) {
            return None;
        }
        let class = KernelClass::of_ip(meta.protocol, meta.src_port, meta.dst_port);
        if self.is_group_or_broadcast(meta.dst, port) {
            return Some(class);
        }
        let roles = self.addrs.of(meta.dst);
        let local_address_only = roles.is_local() && !roles.is_interface();
        if !roles.is_own() || local_address_only {
            return None;
        }
        let proto = crate::model::Protocol::from_number(meta.protocol)?;
        let served = self.director.snapshot().find(proto, meta.dst.into(), meta.dst_port).is_some();
        (!served).then_some(class)
    }

    /// Whether `ip` is a multicast group or a broadcast address on `port`:
    /// the limited broadcast, or the directed broadcast of one of its prefixes.
    fn is_group_or_broadcast(&self, ip: Ipv4Addr, port: u16) -> bool {
        let directed = |p: &crate::model::PortView| {
            p.addrs.iter().any(|a| a.prefix_len() <= 30 && u32::from(ip) == u32::from(a.addr()) | !a.mask_bits())
        };
        ip.is_multicast() || ip.is_broadcast() || self.net.ports.get(usize::from(port)).is_some_and(directed)
    }
}
