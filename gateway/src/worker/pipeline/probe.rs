//! The health checker's probes (see [`crate::net::probe`]): a worker sends
//! what the prober hands it as one of its own packets, and hands the prober
//! the replies, which arrive at one of the gateway's addresses and a probe
//! port.
//!
//! Replies are recognised only where a packet of no connection would
//! otherwise be dropped or given to the kernel interface, so probes cost the
//! forwarding path nothing.

use std::net::Ipv4Addr;

use super::{Io, Worker};
use crate::frame::Frame;
use crate::net::probe::{is_probe_port, ProbeFrame, PREFIX_LEN};
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4, HEADER_LEN as ETHERNET_LEN};
use crate::worker::counters::Discard;

impl<F: Frame> Worker<F> {
    /// Whether a packet to `dst`:`dst_port` of no connection answers a probe.
    #[inline]
    pub(super) fn answers_probe(&self, dst: Ipv4Addr, dst_port: u16) -> bool {
        is_probe_port(dst_port) && {
            let roles = self.addrs.of(dst);
            roles.is_interface() || roles.is_local()
        }
    }

    /// Hands a reply to a probe to the prober.
    #[cold]
    #[inline(never)]
    pub(super) fn hand_to_prober(&mut self, frame: F, io: &mut impl Io<F>) {
        self.counters.probe_replies.inc();
        io.to_prober(frame);
    }

    /// Sends a probe from the prober: an IPv4 packet behind its route target
    /// ([`ProbeFrame`]), routed toward the target as the server's clients'
    /// packets are (the route table, ARP and the neighbour queue).
    #[cold]
    #[inline(never)]
    pub fn send_probe(&mut self, mut frame: F, now: u32, io: &mut impl Io<F>) {
        let toward = match ProbeFrame::new_checked(frame.data()) {
            Ok(view) => view.toward(),
            Err(_) => return self.discard(frame, Discard::BadProbe, io),
        };
        let Some(hop) = self.routes.next_hop(toward) else {
            return self.discard(frame, Discard::NoRoute, io);
        };
        // The prefix and the bytes before it become the Ethernet header; the
        // MACs are written when the next hop's is known.
        if frame.prepend(ETHERNET_LEN - PREFIX_LEN).is_err() {
            return self.discard(frame, Discard::BadProbe, io);
        }
        let mut l2 = EthernetFrame::new_unchecked(&mut frame.data_mut()[..ETHERNET_LEN]);
        l2.set_outer_ethertype(ETHERTYPE_IPV4);
        self.counters.probes_sent.inc();
        self.send_via(frame, hop, now, io);
    }
}
