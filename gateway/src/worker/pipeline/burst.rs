//! A received burst, in stages (DPDK's l3fwd, VPP's nodes): each stage runs
//! over the whole burst before the next starts, so the cache misses of one
//! stage overlap across packets instead of each packet waiting for its own.
//!
//! 1. Prefetch every frame's headers.
//! 2. Classify each; for a TCP or UDP flow, hash its key and prefetch the
//!    connection index's line where the key's walk starts.
//! 3. Prefetch the entry each flow's home slot points at.
//! 4. Take each frame in arrival order to where it goes
//!    ([`Worker::dispatch`]): the lookup finds the index and entry in cache,
//!    and whatever a packet needs beyond the connection (a new one, ARP,
//!    ICMP, the SYN proxy, a redirect) happens there, on its own path, as it
//!    did packet by packet. A new FNAT connection's reply key alone waits
//!    for the end of the stage to go into the index, its line prefetched
//!    ([`ConnTable::defer_reply_keys`]): that key holds the local port the
//!    connection takes, so no earlier stage could have prefetched it.
//!
//! [`ConnTable::defer_reply_keys`]: crate::conn::table::ConnTable::defer_reply_keys
//!
//! Only pure work moves ahead of stage 4: classification reads the frame, and
//! a key's hash depends on the key and the table's seed, never on the table's
//! contents. Every lookup still happens in stage 4, in order, so a packet
//! sees what the packets before it did to the table (the SYN that created its
//! connection, the SYN that ended and reopened it), and a flow's packets
//! leave in the order they came.
//!
//! The frames stay where the caller holds them ([`FrameBurst`]): the first
//! stages read them in place, and only their classification and hash (small,
//! `Copy`) are kept between stages.

use crate::conn::table::KeyHash;
use crate::dpdk::prefetch::prefetch;
use crate::frame::Frame;
use crate::model::Protocol;
use crate::wire::{
    classify, classify_plain_ipv4, classify_untagged_ipv4, classify_untagged_ipv6, ip_proto, Classified, DropReason,
    Ipv4Meta,
};

use super::{Arrival, Io, Worker};

/// Frames one pass of the stages holds: DPDK's rx burst.
pub const STAGE: usize = 32;

/// Frames a worker takes as one burst: read in place, then taken in order.
pub trait FrameBurst<F> {
    /// The frames, in arrival order.
    fn frames(&self) -> &[F];
    /// Takes the first `n` frames (at most [`FrameBurst::frames`]' length),
    /// in order.
    fn take_front(&mut self, n: usize) -> impl Iterator<Item = F>;
}

impl<F> FrameBurst<F> for Vec<F> {
    fn frames(&self) -> &[F] {
        self
    }
    fn take_front(&mut self, n: usize) -> impl Iterator<Item = F> {
        self.drain(..n)
    }
}

/// A burst of one frame ([`Worker::process`]).
impl<F> FrameBurst<F> for Option<F> {
    fn frames(&self) -> &[F] {
        self.as_slice()
    }
    fn take_front(&mut self, n: usize) -> impl Iterator<Item = F> {
        self.take().filter(|_| n > 0).into_iter()
    }
}

impl<F: Frame> Worker<F> {
    /// Processes a burst of frames received on `in_port`, in stages (see the
    /// module doc), [`STAGE`] at a time; leaves `frames` empty. The frames of
    /// one flow leave in the order they came.
    pub fn process_burst(&mut self, frames: &mut impl FrameBurst<F>, in_port: u16, now: u32, io: &mut impl Io<F>) {
        self.run_stages(frames, |_| in_port, false, now, io);
    }

    /// Processes a burst other workers redirected here; `port` tells the port
    /// each frame arrived on.
    pub fn process_redirected_burst(
        &mut self,
        frames: &mut impl FrameBurst<F>,
        port: impl Fn(&F) -> u16,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        self.run_stages(frames, port, true, now, io);
    }

    /// Processes one received frame: a burst of one.
    pub fn process(&mut self, frame: F, in_port: u16, now: u32, io: &mut impl Io<F>) {
        self.process_burst(&mut Some(frame), in_port, now, io);
    }

    /// Processes a frame another worker redirected here.
    pub fn process_redirected(&mut self, frame: F, in_port: u16, now: u32, io: &mut impl Io<F>) {
        self.process_redirected_burst(&mut Some(frame), |_| in_port, now, io);
    }

    /// The burst in stages (see the module doc), or packet by packet below
    /// [`WorkerConfig::staged_from`] live connections, where the tables sit
    /// in the caches and the stages' ~95 more instructions a packet
    /// (`measure_pipeline.sh`) would buy little.
    ///
    /// [`WorkerConfig::staged_from`]: super::WorkerConfig::staged_from
    #[inline(always)]
    fn run_stages(
        &mut self,
        frames: &mut impl FrameBurst<F>,
        port: impl Fn(&F) -> u16,
        redirected: bool,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        if self.conns_live() < self.staged_from {
            self.run_packet_by_packet(frames, port, redirected, now, io);
            return self.gauge_live();
        }
        // In stages: what each stage leaves for the next, per frame.
        let mut staged: [(Result<Classified, DropReason>, KeyHash); STAGE] =
            [(Err(DropReason::Truncated), KeyHash::default()); STAGE];
        while !frames.frames().is_empty() {
            let burst = &frames.frames()[..frames.frames().len().min(STAGE)];
            let n = burst.len();
            // 1. Headers on the way; the burst counted.
            let mut bytes = 0;
            for frame in burst {
                prefetch(frame.data().as_ptr());
                bytes += frame.len() as u64;
            }
            if redirected {
                self.counters.redirected_in.add(n as u64);
            } else {
                self.counters.rx_packets.add(n as u64);
                self.counters.rx_bytes.add(bytes);
            }
            // 2. Classified, flows hashed, their index lines on the way.
            for (frame, (c, h)) in burst.iter().zip(&mut staged) {
                // Untagged IPv4 first, its meta at hand for the hash.
                match classify_untagged_ipv4(frame, self.classify) {
                    Some(Ok(meta)) => {
                        *h = self.flow_hash4(&meta);
                        self.director.conns().prefetch_slot(*h);
                        *c = Ok(Classified::Ipv4(meta));
                    }
                    Some(Err(reason)) => (*c, *h) = (Err(reason), KeyHash::default()),
                    None => {
                        *c = classify(frame, self.classify);
                        *h = self.flow_hash(c);
                        match c {
                            Ok(Classified::Ipv4(_)) => self.director.conns().prefetch_slot(*h),
                            Ok(Classified::Ipv6(_)) => self.v6.director.conns().prefetch_slot(*h),
                            _ => {}
                        }
                    }
                }
            }
            // 3. The entries the index lines point at.
            for &(ref c, h) in &staged[..n] {
                match c {
                    Ok(Classified::Ipv4(_)) => self.director.conns().prefetch_entry(h),
                    Ok(Classified::Ipv6(_)) => self.v6.director.conns().prefetch_entry(h),
                    _ => {}
                }
            }
            // 4. Each frame where it goes, in arrival order. The new
            // connections' reply keys, whose index lines no stage before could
            // prefetch, are indexed at the end, their lines prefetched meanwhile.
            self.director.defer_reply_keys();
            self.v6.director.defer_reply_keys();
            // The arrival port is read here, from the frame at hand: kept
            // from stage 2, it was one more array to walk.
            for (frame, &(ref c, h)) in frames.take_front(n).zip(&staged) {
                let at = Arrival { port: port(&frame), now };
                // A packet's meta is taken where it lies: the whole
                // classification, copied out, is IPv6's size (~10 instructions
                // a staged IPv4 packet, ~7 an IPv6 one, `measure_pipeline.sh`).
                match c {
                    Ok(Classified::Ipv4(meta)) => self.dispatch_ipv4(frame, *meta, Some(h), at, io),
                    Ok(Classified::Ipv6(meta)) => self.handle_v6(frame, *meta, Some(h), at, io),
                    _ => self.dispatch_apart(frame, *c, at, io),
                }
            }
            self.director.index_reply_keys();
            self.v6.director.index_reply_keys();
        }
        self.gauge_live();
    }

    /// [`Worker::run_stages`] below the threshold: each frame classified and
    /// taken where it goes before the next. Out of line, so that the
    /// compiler allocates its registers apart from the stages'.
    #[inline(never)]
    fn run_packet_by_packet(
        &mut self,
        frames: &mut impl FrameBurst<F>,
        port: impl Fn(&F) -> u16,
        redirected: bool,
        now: u32,
        io: &mut impl Io<F>,
    ) {
        let n = frames.frames().len();
        for frame in frames.take_front(n) {
            self.count_received(&frame, redirected);
            let at = Arrival { port: port(&frame), now };
            // The flow's hash is computed where its key is. A plain IPv4
            // packet is TCP or UDP: straight to its flow, no ICMP test.
            match classify_plain_ipv4(&frame, self.classify) {
                Some(meta) => self.handle_flow(frame, meta, None, at, io),
                None => match classify_untagged_ipv6(&frame, self.classify) {
                    Some(Ok(meta)) => self.handle_v6(frame, meta, None, at, io),
                    Some(Err(reason)) => self.unclassified(frame, reason, at, io),
                    None => self.classify_and_dispatch(frame, at, io),
                },
            }
        }
    }

    /// [`Worker::run_packet_by_packet`] for a frame neither plain IPv4 nor
    /// untagged IPv6 (ARP, ICMP, IP options, a tagged frame, a drop): out of
    /// line, so that the loop holds one copy of the IPv4 dispatch, not a
    /// second for these.
    #[inline(never)]
    fn classify_and_dispatch(&mut self, frame: F, at: Arrival, io: &mut impl Io<F>) {
        let classified = classify(&frame, self.classify);
        self.dispatch(frame, classified, None, at, io);
    }

    /// [`Worker::dispatch`] for a frame of the stages that is neither IPv4
    /// nor IPv6 (ARP, a drop), out of line as [`Worker::classify_and_dispatch`].
    #[inline(never)]
    fn dispatch_apart(
        &mut self,
        frame: F,
        classified: Result<Classified, DropReason>,
        at: Arrival,
        io: &mut impl Io<F>,
    ) {
        self.dispatch(frame, classified, None, at, io);
    }

    #[inline(always)]
    fn count_received(&self, frame: &F, redirected: bool) {
        if redirected {
            self.counters.redirected_in.inc();
        } else {
            self.counters.rx_packets.inc();
            self.counters.rx_bytes.add(frame.len() as u64);
        }
    }

    /// The hash of a TCP or UDP packet's flow key in its family's table.
    #[inline(always)]
    fn flow_hash(&self, classified: &Result<Classified, DropReason>) -> KeyHash {
        match classified {
            Ok(Classified::Ipv4(meta)) => self.flow_hash4(meta),
            Ok(Classified::Ipv6(meta)) if meta.protocol != ip_proto::ICMPV6 => {
                match Protocol::from_number(meta.protocol) {
                    Some(proto) => self.v6.director.conns().hash_of(&super::ipv6::flow_key6(proto, meta)),
                    None => KeyHash::default(),
                }
            }
            _ => KeyHash::default(),
        }
    }

    /// [`Worker::flow_hash`] for an IPv4 packet.
    #[inline(always)]
    fn flow_hash4(&self, meta: &Ipv4Meta) -> KeyHash {
        match Protocol::from_number(meta.protocol) {
            Some(proto) => self.director.conns().hash_of(&super::dispatch::flow_key(proto, meta)),
            None => KeyHash::default(),
        }
    }
}
