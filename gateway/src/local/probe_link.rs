//! The prober's link to the workers over DPDK rings (see
//! [`crate::net::probe`] and [`crate::health::path`]): a probe goes to a
//! worker's probe ring as an mbuf holding its route target and IPv4 packet;
//! replies come back, as the workers received them, on one ring they all feed.
//!
//! The prober runs on a plain thread, like the exception loop: the mbuf
//! pool's get and put take the pool's shared ring when the caller has no lcore
//! cache, and each ring end here has this one user.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use crate::dpdk::{Burst, Mbuf, Mempool, RingReceiver, RingSender, BURST_SIZE};
use crate::frame::Frame;
use crate::health::path::ProbeLink;
use crate::net::probe;
use crate::wire::ethernet::{EthernetFrame, ETHERTYPE_IPV4};

/// The prober's ends of the probe rings.
pub struct RingProbeLink {
    pool: Mempool,
    /// Toward each worker, by id.
    to_workers: Vec<RingSender>,
    from_workers: RingReceiver,
    /// Replies received and not yet read, in arrival order.
    waiting: VecDeque<Mbuf>,
    burst: Burst,
    frame: Vec<u8>,
}

impl RingProbeLink {
    pub fn new(pool: Mempool, to_workers: Vec<RingSender>, from_workers: RingReceiver) -> RingProbeLink {
        RingProbeLink {
            pool,
            to_workers,
            from_workers,
            waiting: VecDeque::with_capacity(BURST_SIZE),
            burst: Burst::new(),
            frame: Vec::new(),
        }
    }
}

/// The worker that sends the probes toward `toward`: always the same one for
/// a server, so its probes leave in order, and servers spread over workers.
fn worker_for(toward: Ipv4Addr, workers: usize) -> usize {
    (u32::from(toward) as usize) % workers.max(1)
}

impl ProbeLink for RingProbeLink {
    fn send(&mut self, toward: Ipv4Addr, packet: &[u8]) -> bool {
        let worker = worker_for(toward, self.to_workers.len());
        let Some(ring) = self.to_workers.get_mut(worker) else {
            return false;
        };
        probe::emit(toward, packet, &mut self.frame);
        let Some(m) = self.pool.alloc_with(&self.frame) else { return false };
        ring.send(m).is_ok()
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> bool {
        loop {
            if self.waiting.is_empty() {
                if self.from_workers.recv_burst(&mut self.burst) == 0 {
                    return false;
                }
                self.waiting.extend(self.burst.drain());
            }
            let Some(m) = self.waiting.pop_front() else { return false };
            // Workers hand over only IPv4 packets they classified, possibly
            // behind a VLAN tag.
            if let Ok(frame) = EthernetFrame::new_checked(m.data()) {
                if frame.ethertype() == ETHERTYPE_IPV4 {
                    buf.clear();
                    buf.extend_from_slice(frame.payload());
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_probes_always_leave_by_the_same_worker() {
        let a = Ipv4Addr::new(10, 0, 2, 11);
        assert_eq!(worker_for(a, 2), worker_for(a, 2));
        assert_ne!(worker_for(a, 2), worker_for(Ipv4Addr::new(10, 0, 2, 12), 2));
        assert_eq!(worker_for(a, 0), 0);
    }
}
