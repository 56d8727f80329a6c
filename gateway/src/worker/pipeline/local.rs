//! The gateway's own addresses and its neighbours: ARP (answered for our
//! addresses, senders learned as Linux learns them), ICMP echo, the packets
//! waiting for a neighbour, and the sends every path ends in.

use std::net::{IpAddr, Ipv4Addr};

use super::{Arrival, Io, Worker};
use crate::frame::Frame;
use crate::model::NetView;
use crate::net::arp::{handle_arp, write_arp_request, ArpSeen, ArpVerdict};
use crate::net::icmp::echo_reply_in_place;
use crate::net::{KernelClass, Learned, Origin};
use crate::wire::icmp::msg_type;
use crate::wire::{DropReason, EthAddrs, Ipv4Meta, MacAddr};
use crate::worker::counters::{Discard, WorkerCounters};
use crate::xmit;

impl<F: Frame> Worker<F> {
    pub(super) fn arp(&mut self, mut frame: F, l2_len: usize, in_port: u16, now: u32, io: &mut impl Io<F>) {
        let Some(port) = self.net.ports.get(usize::from(in_port)) else {
            return self.discard(frame, Discard::NotForUs, io);
        };
        let our_mac = port.mac;
        let seen = match handle_arp(&mut frame, l2_len, our_mac, |ip| self.addrs.of(ip).is_own()) {
            Ok(seen) => seen,
            Err(_) => return self.discard(frame, Discard::BadArp, io),
        };
        if seen.learnable {
            self.learn_sender(&seen, in_port, now, io);
        }
        match seen.verdict {
            ArpVerdict::Reply => {
                self.counters.arp_replies.inc();
                self.send_on_port(in_port, frame, io);
            }
            ArpVerdict::Consumed => self.consumed_arp(frame, Arrival { port: in_port, now }, io),
        }
    }

    /// Learns an ARP packet's sender, as Linux does: a known entry is
    /// refreshed by any ARP, a new one is made only from a packet to us. The
    /// sender must be on the port the gateway reaches its address by (the
    /// route's egress port), else one frame on the client segment claiming a
    /// real server's address would take that server's traffic. Addresses the
    /// gateway sends to are learned as needed; others (requesters) only in
    /// their bounded share of the table. Every refusal is counted.
    fn learn_sender(&mut self, seen: &ArpSeen, in_port: u16, now: u32, io: &mut impl Io<F>) {
        let (ip, mac) = (seen.sender_ip, seen.sender_mac);
        if !seen.for_us && self.neighbours.lookup(ip, now).is_none() {
            return;
        }
        if !self.reached_by(ip, in_port) {
            return self.counters.neighbours_wrong_port.inc();
        }
        if self.learn(ip, mac, in_port, self.origin_of(ip), now, io) {
            // The others hear of an answer (ARP lands on one worker's queue
            // whichever worker asked) and of what they need; a requester stays
            // here, so a flood of them does not spread.
            if seen.answer || self.neighbours.lookup(ip, now).is_some_and(|n| n.needed) {
                io.neighbour_learned(ip.into(), mac, in_port);
            }
        }
    }

    /// Whether packets to `ip` leave by `port`: the only port whose ARP may
    /// tell us where `ip` is.
    fn reached_by(&self, ip: Ipv4Addr, port: u16) -> bool {
        self.net.routes.next_hop(ip).is_some_and(|hop| hop.port == port)
    }

    /// Whether the gateway sends to `ip`: a real server, a route's gateway,
    /// or an address packets wait for here.
    fn origin_of(&self, ip: Ipv4Addr) -> Origin {
        if self.addrs.of(ip).is_needed() || self.pending.is_waiting(ip) {
            Origin::Needed
        } else {
            Origin::Unsolicited
        }
    }

    /// Records a neighbour another worker learned, from the port it names, and
    /// sends what waited for it here.
    pub fn learn_neighbour(&mut self, ip: IpAddr, mac: MacAddr, port: u16, now: u32, io: &mut impl Io<F>) {
        let ip = match ip {
            IpAddr::V4(ip) => ip,
            IpAddr::V6(ip) => return self.learn_neighbour6(ip, mac, port, now, io),
        };
        // The sender checked the port against the same routes, unless a new
        // configuration arrived in between.
        if !self.reached_by(ip, port) {
            return self.counters.neighbours_wrong_port.inc();
        }
        self.learn(ip, mac, port, self.origin_of(ip), now, io);
    }

    /// Records a neighbour, counting a refusal, and sends what waited for it.
    /// Returns whether the entry is new or changed.
    fn learn(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16, origin: Origin, now: u32, io: &mut impl Io<F>) -> bool {
        let news = match self.neighbours.learn(ip, mac, port, origin, now) {
            Learned::New | Learned::Changed => {
                self.counters.neighbours_learned.inc();
                true
            }
            Learned::Refreshed | Learned::Static => false,
            Learned::Full => {
                self.counters.neighbours_table_full.inc();
                return false;
            }
            Learned::UnsolicitedFull => {
                self.counters.neighbours_unsolicited_full.inc();
                return false;
            }
        };
        if let Some(n) = self.neighbours.lookup(ip, now).copied() {
            if let Some(src_mac) = self.net.ports.get(usize::from(n.port)).map(|p| p.mac) {
                let counters = &self.counters;
                self.pending.release(ip, |f| send_to_neighbour(counters, f, n.port, EthAddrs::new(n.mac, src_mac), io));
            }
        }
        news
    }

    /// ICMP to one of our addresses: an echo request is answered, an error
    /// about a connection's packet is forwarded to its other side; the rest
    /// is the kernel interface's, if the port has one.
    pub(super) fn icmp(&mut self, mut frame: F, meta: Ipv4Meta, in_port: u16, now: u32, io: &mut impl Io<F>) {
        let at = Arrival { port: in_port, now };
        if !self.addrs.of(meta.dst).is_own() {
            // An address another director holds now still has its
            // connections here (they go on, as their packets do): an error
            // about one of them reaches its other side.
            if meta.is_icmp_error() && self.addrs.is_unheld(meta.dst) {
                return self.forward_icmp_error_unheld(frame, meta, at, io);
            }
            return self.discard(frame, Discard::NotForUs, io);
        }
        if meta.is_icmp_error() {
            return self.forward_icmp_error(frame, meta, at, io);
        }
        if meta.icmp_type != msg_type::ECHO_REQUEST {
            return self.hand_to_kernel_or_discard(frame, KernelClass::Bulk, Discard::LocalUnhandled, at, io);
        }
        match echo_reply_in_place(&mut frame, &meta) {
            Ok(()) => {
                self.counters.icmp_echo_replies.inc();
                self.send_on_port(in_port, frame, io);
            }
            Err(reason) => self.discard(frame, reason.into(), io),
        }
    }

    pub(super) fn send_arp_request(&self, port: u16, target: Ipv4Addr, io: &mut impl Io<F>) {
        send_arp_request(&self.net, &self.counters, port, target, io);
    }

    /// Counts and hands a fully addressed frame to port `port`.
    pub(super) fn send_on_port(&self, port: u16, frame: F, io: &mut impl Io<F>) {
        send_on_port(&self.counters, port, frame, io);
    }
}

/// Counts and hands a fully addressed frame to port `port`. Inlined: a
/// forwarded packet's last step, which the compiler would otherwise call out
/// of line from the staged burst (16 instructions a packet).
#[inline(always)]
pub(super) fn send_on_port<F: Frame>(counters: &WorkerCounters, port: u16, frame: F, io: &mut impl Io<F>) {
    counters.tx_packets.inc();
    counters.tx_bytes.add(frame.len() as u64);
    io.send(port, frame);
}

/// Writes the next hop's and the egress port's MACs (`addrs`) and sends the
/// frame. Inlined: as a call, passing the frame costs more than the work.
#[inline(always)]
pub(super) fn send_to_neighbour<F: Frame>(
    counters: &WorkerCounters,
    mut frame: F,
    port: u16,
    addrs: EthAddrs,
    io: &mut impl Io<F>,
) {
    if xmit::dr::readdress(&mut frame, addrs).is_err() {
        counters.count(DropReason::Truncated.into());
        return io.free(frame);
    }
    send_on_port(counters, port, frame, io);
}

/// Sends an ARP request for `target` out of `port`, from the port's first address.
pub(super) fn send_arp_request<F: Frame>(
    net: &NetView,
    counters: &WorkerCounters,
    port: u16,
    target: Ipv4Addr,
    io: &mut impl Io<F>,
) {
    let (Some(view), Some(src)) = (net.ports.get(usize::from(port)), net.source_on(port)) else {
        return;
    };
    let Some(mut req) = io.alloc() else {
        counters.count(Discard::NoMbuf);
        return;
    };
    if write_arp_request(&mut req, view.mac, src, target).is_err() {
        counters.count(Discard::NoMbuf);
        return io.free(req);
    }
    counters.arp_requests.inc();
    send_on_port(counters, port, req, io);
}
