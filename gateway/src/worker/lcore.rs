//! The poll loop of one worker lcore: the pipeline fed from DPDK queues.
//!
//! Per iteration: take a newly published configuration if there is one,
//! apply neighbour updates from the other workers, receive a burst on every
//! port's queue and run each packet through the pipeline, then the packets
//! other workers redirected here, then flush what the pipeline queued for
//! transmission and redirection. Timers run once per second. Nothing here
//! allocates or locks per packet: bursts are fixed arrays, redirect rings are
//! DPDK rings, and neighbour updates ride bounded std channels (lock-free
//! `try_send`/`try_recv`), touched only when a neighbour changes.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use super::counters::{Discard, WorkerCounters};
use super::pipeline::{Io, Worker};
use crate::dpdk::{self, Burst, Mbuf, Mempool, RingReceiver, RingSender, RxQueue, TxQueue};
use crate::wire::MacAddr;

/// A neighbour one worker learned, for the others.
pub type NeighbourUpdate = (Ipv4Addr, MacAddr, u16);

/// The most neighbour updates one iteration collects before sending.
const MAX_UPDATES: usize = 64;

/// Everything one worker lcore owns.
pub struct LcoreWorker {
    pub worker: Worker<Mbuf>,
    /// (port id, this worker's rx queue on it).
    pub rx: Vec<(u16, RxQueue)>,
    /// (port id, this worker's tx queue on it).
    pub tx: Vec<(u16, TxQueue)>,
    /// Packets other workers redirected to this one.
    pub redirect_in: RingReceiver,
    /// Toward each worker, by id (`None` for this one).
    pub redirect_out: Vec<Option<RingSender>>,
    pub neighbours_in: Receiver<NeighbourUpdate>,
    pub neighbours_out: Vec<SyncSender<NeighbourUpdate>>,
    pub pool: Mempool,
}

struct LcoreIo<'a> {
    tx: &'a mut [(u16, TxQueue, Burst)],
    redirect: &'a mut [(Option<RingSender>, Burst)],
    pool: &'a Mempool,
    learned: &'a mut Vec<NeighbourUpdate>,
    counters: &'a WorkerCounters,
}

impl LcoreIo<'_> {
    fn flush(&mut self) {
        for (_, queue, burst) in self.tx.iter_mut() {
            if !burst.is_empty() {
                queue.tx_burst(burst);
                self.counters.drops[Discard::TxFull.index()].add(burst.clear() as u64);
            }
        }
        for (ring, burst) in self.redirect.iter_mut() {
            if !burst.is_empty() {
                if let Some(ring) = ring {
                    ring.send_burst(burst);
                }
                self.counters.drops[Discard::RedirectFull.index()].add(burst.clear() as u64);
            }
        }
    }
}

impl Io<Mbuf> for LcoreIo<'_> {
    fn send(&mut self, port: u16, frame: Mbuf) {
        let Some((_, queue, burst)) = self.tx.iter_mut().find(|(p, _, _)| *p == port) else {
            self.counters.count(Discard::NoRoute);
            return;
        };
        if burst.is_full() {
            queue.tx_burst(burst);
            self.counters.drops[Discard::TxFull.index()].add(burst.clear() as u64);
        }
        // Room was just made.
        let _ = burst.push(frame);
    }

    fn redirect(&mut self, worker: u16, frame: Mbuf) {
        let Some((ring, burst)) = self.redirect.get_mut(usize::from(worker)) else {
            self.counters.count(Discard::NoOwner);
            return;
        };
        if burst.is_full() {
            if let Some(ring) = ring {
                ring.send_burst(burst);
            }
            self.counters.drops[Discard::RedirectFull.index()].add(burst.clear() as u64);
        }
        let _ = burst.push(frame);
    }

    fn free(&mut self, frame: Mbuf) {
        drop(frame);
    }

    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    fn neighbour_learned(&mut self, ip: Ipv4Addr, mac: MacAddr, port: u16) {
        if self.learned.len() < MAX_UPDATES {
            self.learned.push((ip, mac, port));
        }
    }
}

impl LcoreWorker {
    /// Runs until `stop` is set. `poll_config` is called once per iteration
    /// and switches the worker when the control plane published a change.
    pub fn run(self, stop: Arc<AtomicBool>, mut poll_config: impl FnMut(&mut Worker<Mbuf>)) {
        let LcoreWorker { mut worker, mut rx, tx, redirect_in, redirect_out, neighbours_in, neighbours_out, pool } = self;
        let mut redirect_in = redirect_in;
        let mut tx: Vec<(u16, TxQueue, Burst)> = tx.into_iter().map(|(p, q)| (p, q, Burst::new())).collect();
        let mut redirect: Vec<(Option<RingSender>, Burst)> =
            redirect_out.into_iter().map(|r| (r, Burst::new())).collect();
        let mut learned = Vec::with_capacity(MAX_UPDATES);
        let counters = worker.counters().clone();
        let hz = dpdk::tsc_hz().max(1);
        let start = dpdk::rdtsc();
        let mut last_tick = 0u32;
        let mut burst = Burst::new();

        while !stop.load(Ordering::Relaxed) {
            let now = 1 + ((dpdk::rdtsc() - start) / hz) as u32;
            poll_config(&mut worker);
            let mut io =
                LcoreIo { tx: &mut tx, redirect: &mut redirect, pool: &pool, learned: &mut learned, counters: &counters };
            while let Ok((ip, mac, port)) = neighbours_in.try_recv() {
                worker.learn_neighbour(ip, mac, port, now, &mut io);
            }
            for (port, queue) in rx.iter_mut() {
                if queue.rx_burst(&mut burst) == 0 {
                    continue;
                }
                for m in burst.drain() {
                    if m.segments() != 1 {
                        // Jumbo frames chained over mbufs are not forwarded.
                        counters.count(Discard::Wire(crate::wire::DropReason::NoRoom));
                        continue;
                    }
                    worker.process(m, *port, now, &mut io);
                }
            }
            if redirect_in.recv_burst(&mut burst) > 0 {
                for m in burst.drain() {
                    let port = m.port();
                    worker.process_redirected(m, port, now, &mut io);
                }
            }
            if now != last_tick {
                last_tick = now;
                worker.tick(now, &mut io);
            }
            io.flush();
            for update in learned.drain(..) {
                for peer in &neighbours_out {
                    // A full channel drops the update; the peer resolves by ARP.
                    let _ = peer.try_send(update);
                }
            }
        }
    }
}
