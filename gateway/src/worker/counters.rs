//! Per-worker counters: written by one worker, read by the control thread.
//!
//! Each counter has exactly one writer, so an increment is a relaxed load and
//! a relaxed store (no locked read-modify-write on the packet path); readers
//! see a value that is at most a few packets old. The block is aligned to a
//! cache line so two workers' counters never share one.

use crate::net::exception::{KernelClass, MAX_KERNEL_PORTS};
use crate::net::ndisc::NdiscDrop;
pub use crate::stats::Counter;
use crate::sync::queue::WorkerSyncCounters;
use crate::synproxy::SynProxyCounters;
use crate::wire::DropReason;

/// Why the dataplane dropped a packet: a malformed or unforwardable packet
/// (the wire layer's reasons) or a decision of the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    Wire(DropReason),
    /// Not for any of our addresses, VIPs or local addresses.
    NotForUs,
    /// To a VIP, but no service matches its protocol and port.
    NoService,
    /// The service has no available real server.
    NoDest,
    /// No free local port on this worker for the FNAT service.
    NoLocalPort,
    /// The connection table is full.
    TableFull,
    /// A packet of no known connection that may not start one (TCP without SYN,
    /// a reply to an unused local port).
    NoConnection,
    /// No route to the packet's next destination.
    NoRoute,
    /// Waiting for a neighbour's MAC, and its queue is full.
    NeighbourQueueFull,
    /// Waited too long for a neighbour's MAC.
    NeighbourTimeout,
    /// A malformed ARP packet.
    BadArp,
    /// A packet to one of our own addresses that we do not answer.
    LocalUnhandled,
    /// The reply's local port belongs to no worker.
    NoOwner,
    /// A redirect ring toward the owner was full.
    RedirectFull,
    /// The transmit queue was full.
    TxFull,
    /// No mbuf for a packet the gateway had to originate (ARP request).
    NoMbuf,
    /// SYN proxy: an ACK of no connection whose cookie did not check.
    SynProxyBadCookie,
    /// SYN proxy: a valid cookie, but the worker's handshakes are all open.
    SynProxyBusy,
    /// SYN proxy: a client packet while its server handshake is open, beyond
    /// what the handshake holds.
    SynProxyHoldFull,
    /// SYN proxy: a server packet while its handshake is open that neither
    /// completes nor refuses it (a SYN-ACK acknowledging something else).
    SynProxyUnexpected,
    /// The egress port's link is down (its memif peer is gone, its cable out).
    LinkDown,
    /// For the kernel interface, but the ring toward the main lcore was full.
    KernelQueueFull,
    /// For the kernel interface, but this worker has no ring toward it.
    NoKernel,
    /// Would open a connection to a VIP or local address that no kernel
    /// interface carries now (another director holds it).
    NotHeld,
    /// For the kernel interface, beyond its rate for the port and class
    /// (counted per port and class in [`KernelCounters`] too).
    KernelRateLimited,
    /// A reply to a health probe, but the ring toward the prober was full.
    ProbeQueueFull,
    /// A health probe from the prober too short to hold its prefix and an
    /// IPv4 header (see [`crate::net::probe`]).
    BadProbe,
    /// A neighbour discovery message refused (RFC 4861 §7.1's checks, each
    /// its own reason), or not a neighbour solicitation or advertisement on
    /// a port without a kernel interface.
    Ndisc(NdiscDrop),
}

impl Discard {
    /// The worker's own reasons, in index order after the wire layer's.
    const OWN: [Discard; 26] = [
        Discard::NotForUs,
        Discard::NoService,
        Discard::NoDest,
        Discard::NoLocalPort,
        Discard::TableFull,
        Discard::NoConnection,
        Discard::NoRoute,
        Discard::NeighbourQueueFull,
        Discard::NeighbourTimeout,
        Discard::BadArp,
        Discard::LocalUnhandled,
        Discard::NoOwner,
        Discard::RedirectFull,
        Discard::TxFull,
        Discard::NoMbuf,
        Discard::SynProxyBadCookie,
        Discard::SynProxyBusy,
        Discard::SynProxyHoldFull,
        Discard::SynProxyUnexpected,
        Discard::LinkDown,
        Discard::KernelQueueFull,
        Discard::NoKernel,
        Discard::NotHeld,
        Discard::KernelRateLimited,
        Discard::ProbeQueueFull,
        Discard::BadProbe,
    ];

    /// Number of reasons: the length of a per-reason counter array.
    pub const COUNT: usize = DropReason::COUNT + Self::OWN.len() + NdiscDrop::COUNT;

    /// Index into a per-reason counter array: a constant per reason (a drop
    /// flood must not cost a search per packet).
    #[inline]
    pub const fn index(self) -> usize {
        DropReason::COUNT
            + match self {
                Discard::Wire(r) => return r.index(),
                Discard::Ndisc(r) => Self::OWN.len() + r.index(),
                Discard::NotForUs => 0,
                Discard::NoService => 1,
                Discard::NoDest => 2,
                Discard::NoLocalPort => 3,
                Discard::TableFull => 4,
                Discard::NoConnection => 5,
                Discard::NoRoute => 6,
                Discard::NeighbourQueueFull => 7,
                Discard::NeighbourTimeout => 8,
                Discard::BadArp => 9,
                Discard::LocalUnhandled => 10,
                Discard::NoOwner => 11,
                Discard::RedirectFull => 12,
                Discard::TxFull => 13,
                Discard::NoMbuf => 14,
                Discard::SynProxyBadCookie => 15,
                Discard::SynProxyBusy => 16,
                Discard::SynProxyHoldFull => 17,
                Discard::SynProxyUnexpected => 18,
                Discard::LinkDown => 19,
                Discard::KernelQueueFull => 20,
                Discard::NoKernel => 21,
                Discard::NotHeld => 22,
                Discard::KernelRateLimited => 23,
                Discard::ProbeQueueFull => 24,
                Discard::BadProbe => 25,
            }
    }

    /// Every reason, in index order.
    pub fn all() -> impl Iterator<Item = Discard> {
        DropReason::ALL.iter().map(|r| Discard::Wire(*r)).chain(Self::OWN).chain(NdiscDrop::ALL.map(Discard::Ndisc))
    }

    /// Stable snake_case name, for `gwctl stats` and exporters.
    pub fn name(self) -> &'static str {
        match self {
            Discard::Wire(r) => r.name(),
            Discard::Ndisc(r) => r.name(),
            Discard::NotForUs => "not_for_us",
            Discard::NoService => "no_service",
            Discard::NoDest => "no_dest",
            Discard::NoLocalPort => "no_local_port",
            Discard::TableFull => "conn_table_full",
            Discard::NoConnection => "no_connection",
            Discard::NoRoute => "no_route",
            Discard::NeighbourQueueFull => "neighbour_queue_full",
            Discard::NeighbourTimeout => "neighbour_timeout",
            Discard::BadArp => "bad_arp",
            Discard::LocalUnhandled => "local_unhandled",
            Discard::NoOwner => "no_owner",
            Discard::RedirectFull => "redirect_ring_full",
            Discard::TxFull => "tx_queue_full",
            Discard::NoMbuf => "no_mbuf",
            Discard::SynProxyBadCookie => "synproxy_bad_cookie",
            Discard::SynProxyBusy => "synproxy_busy",
            Discard::SynProxyHoldFull => "synproxy_hold_full",
            Discard::SynProxyUnexpected => "synproxy_unexpected",
            Discard::LinkDown => "link_down",
            Discard::KernelQueueFull => "kernel_queue_full",
            Discard::NoKernel => "no_kernel",
            Discard::NotHeld => "not_held",
            Discard::KernelRateLimited => "kernel_rate_limited",
            Discard::ProbeQueueFull => "probe_queue_full",
            Discard::BadProbe => "bad_probe",
        }
    }
}

impl From<DropReason> for Discard {
    fn from(r: DropReason) -> Discard {
        Discard::Wire(r)
    }
}

/// Everything one worker counts.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    /// Packets handed to another worker because it owns their connection.
    pub redirected_out: Counter,
    /// Packets received from other workers' redirects.
    pub redirected_in: Counter,
    pub new_conns: Counter,
    pub arp_replies: Counter,
    pub arp_requests: Counter,
    /// Neighbour advertisements sent, answering solicitations for our IPv6 addresses.
    pub nd_advertisements: Counter,
    /// Neighbour solicitations sent, resolving IPv6 next hops.
    pub nd_solicitations: Counter,
    pub neighbours_learned: Counter,
    /// ARP senders not learned: the address is reached by another port (a
    /// frame on one segment claiming an address of another).
    pub neighbours_wrong_port: Counter,
    /// ARP senders not learned: the table is full of addresses we send to.
    pub neighbours_table_full: Counter,
    /// ARP senders we do not send to, not learned: their share of the table
    /// is full (a flood of requesters).
    pub neighbours_unsolicited_full: Counter,
    pub icmp_echo_replies: Counter,
    /// ICMP errors the gateway originated (time exceeded, fragmentation needed).
    pub icmp_errors_sent: Counter,
    /// ICMP errors not sent because of the rate limit.
    pub icmp_errors_limited: Counter,
    /// ICMP errors about a connection's packets passed to its other side.
    pub icmp_errors_relayed: Counter,
    /// FNAT handshake packets sent without the client-address option (no
    /// option space, MTU, or headroom).
    pub toa_not_inserted: Counter,
    /// Health probes this worker sent for the prober, and replies to probes
    /// it handed to the prober (see [`crate::net::probe`]).
    pub probes_sent: Counter,
    pub probe_replies: Counter,
    /// PROXY protocol headers sent in front of a client segment's payload.
    pub proxy_headers_inserted: Counter,
    /// ... sent alone, in a segment of their own, before a client segment they
    /// would have pushed past the MTU (or that had no headroom).
    pub proxy_headers_alone: Counter,
    /// Client segments that had to carry a header and were dropped: no frame for
    /// the header's own segment (the client sends the segment again).
    pub proxy_headers_refused_no_mbuf: Counter,
    /// SYNs to a service sending the header that carried data (TCP Fast Open):
    /// sent without it, which the client sends again after the handshake.
    pub proxy_syn_data_stripped: Counter,
    /// Packets whose way out (next hop, MTU, MACs) the egress cache did not
    /// hold, so it was routed and cached (`worker::pipeline::egress`), both
    /// families, copied once a second. Many a second for steady traffic
    /// mean the cache is thrashing.
    pub egress_route_lookups: Counter,
    /// A client's new SYN found its ports' previous connection finished
    /// (TIME_WAIT or CLOSE): that one ended and a new one was scheduled.
    pub conns_reused: Counter,
    /// lblc/lblcr destinations dropped from a full map for a new one (set each tick).
    pub lblc_evictions: Counter,
    /// Gauges: live connections (set after each burst, which its new ones
    /// join, and once a second, after expiry) and the table's capacity.
    pub conns_live: Counter,
    pub conns_capacity: Counter,
    /// The table's own counts, copied once a second: connections expired,
    /// past their deadline and reclaimed by an insert into the full table,
    /// and half-open ones shed by it (refusals are the drop `conn_table_full`).
    pub conns_expired: Counter,
    pub conns_reclaimed: Counter,
    pub conns_shed: Counter,
    pub synproxy: SynProxyCounters,
    /// Connection sync: records queued toward the daemon, received ones installed.
    pub sync: WorkerSyncCounters,
    /// Toward the ports' kernel interfaces.
    pub kernel: KernelCounters,
    /// Where the poll loop's time goes.
    pub poll: PollCycles,
    pub drops: [Counter; Discard::COUNT],
}

/// Where a worker's poll loop spends its time, in time-stamp counter cycles,
/// as VPP's `show runtime` tells it: how full its bursts are, and what a
/// packet costs in the pipeline, in sending, and in receiving and the rest of
/// the loop. Written by the DPDK loop (`worker::lcore`) with the cycle counter
/// it reads anyway for its clock, plus two reads per burst and two per send.
/// A packet's cost through the device is what the rate depends on, and the
/// instruction counts of the benches cannot show the cache misses in it.
#[derive(Debug, Default)]
pub struct PollCycles {
    /// The counter's cycles per second (a gauge, set when the loop starts).
    pub hz: Counter,
    /// Bursts the pipeline took: non-empty receive bursts from the ports and
    /// from the other workers' redirects (`rx_packets` and `redirected_in`
    /// over it is the mean burst).
    pub bursts: Counter,
    /// Cycles of polls that received or sent something.
    pub busy: Counter,
    /// Cycles of polls that moved nothing, resting in the idle mode included.
    pub idle: Counter,
    /// Of `busy`: in the pipeline, from the received frames to the frames
    /// queued for sending (`Worker::process_burst`).
    pub pipeline: Counter,
    /// Of `busy`: handing the queued frames to the ports and rings.
    pub send: Counter,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            tx_packets: Counter::default(),
            tx_bytes: Counter::default(),
            redirected_out: Counter::default(),
            redirected_in: Counter::default(),
            new_conns: Counter::default(),
            arp_replies: Counter::default(),
            arp_requests: Counter::default(),
            nd_advertisements: Counter::default(),
            nd_solicitations: Counter::default(),
            neighbours_learned: Counter::default(),
            neighbours_wrong_port: Counter::default(),
            neighbours_table_full: Counter::default(),
            neighbours_unsolicited_full: Counter::default(),
            icmp_echo_replies: Counter::default(),
            icmp_errors_sent: Counter::default(),
            icmp_errors_limited: Counter::default(),
            icmp_errors_relayed: Counter::default(),
            toa_not_inserted: Counter::default(),
            egress_route_lookups: Counter::default(),
            probes_sent: Counter::default(),
            probe_replies: Counter::default(),
            proxy_headers_inserted: Counter::default(),
            proxy_headers_alone: Counter::default(),
            proxy_headers_refused_no_mbuf: Counter::default(),
            proxy_syn_data_stripped: Counter::default(),
            conns_reused: Counter::default(),
            lblc_evictions: Counter::default(),
            conns_live: Counter::default(),
            conns_capacity: Counter::default(),
            conns_expired: Counter::default(),
            conns_reclaimed: Counter::default(),
            conns_shed: Counter::default(),
            synproxy: SynProxyCounters::default(),
            sync: WorkerSyncCounters::default(),
            kernel: KernelCounters::default(),
            poll: PollCycles::default(),
            drops: std::array::from_fn(|_| Counter::default()),
        }
    }
}

impl WorkerCounters {
    #[inline]
    pub fn count(&self, reason: Discard) {
        self.drops[reason.index()].inc();
    }

    pub fn dropped(&self, reason: Discard) -> u64 {
        self.drops[reason.index()].get()
    }

    /// Every drop reason with a non-zero count.
    pub fn nonzero_drops(&self) -> Vec<(&'static str, u64)> {
        Discard::all().map(|d| (d.name(), self.dropped(d))).filter(|(_, n)| *n > 0).collect()
    }

    /// The counts of events other than traffic and drops, by name, where non-zero.
    pub fn nonzero_events(&self) -> Vec<(&'static str, u64)> {
        self.events().filter(|(_, n)| *n > 0).collect()
    }

    /// The counts of every event other than traffic and drops, by name (the
    /// SYN proxy's start with "synproxy "), zero or not: a metrics exporter
    /// lists them all from the start.
    pub fn events(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            ("arp replies", &self.arp_replies),
            ("arp requests", &self.arp_requests),
            ("neighbour advertisements", &self.nd_advertisements),
            ("neighbour solicitations", &self.nd_solicitations),
            ("neighbours learned", &self.neighbours_learned),
            ("neighbours refused wrong port", &self.neighbours_wrong_port),
            ("neighbours refused table full", &self.neighbours_table_full),
            ("neighbours refused unsolicited full", &self.neighbours_unsolicited_full),
            ("icmp echo replies", &self.icmp_echo_replies),
            ("icmp errors sent", &self.icmp_errors_sent),
            ("icmp errors rate-limited", &self.icmp_errors_limited),
            ("icmp errors relayed", &self.icmp_errors_relayed),
            ("toa not inserted", &self.toa_not_inserted),
            ("egress route lookups", &self.egress_route_lookups),
            ("health probes sent", &self.probes_sent),
            ("health probe replies", &self.probe_replies),
            ("proxy headers inserted", &self.proxy_headers_inserted),
            ("proxy headers sent alone", &self.proxy_headers_alone),
            ("proxy headers refused no mbuf", &self.proxy_headers_refused_no_mbuf),
            ("proxy syn data stripped", &self.proxy_syn_data_stripped),
            ("connections reused", &self.conns_reused),
            ("lblc destinations evicted", &self.lblc_evictions),
            ("connections expired", &self.conns_expired),
            ("expired connections reclaimed", &self.conns_reclaimed),
            ("half-open connections shed", &self.conns_shed),
        ]
        .into_iter()
        .map(|(name, c)| (name, c.get()))
        .chain(self.synproxy.values())
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}

/// The gateway's own packets a worker handed toward a port's kernel
/// interface (to the ring toward the main lcore: a full ring is the drop
/// `kernel_queue_full`), or refused by the port's rate for their class, per
/// port and [`KernelClass`].
#[derive(Debug)]
pub struct KernelCounters {
    handed: [[Counter; 2]; MAX_KERNEL_PORTS],
    rate_limited: [[Counter; 2]; MAX_KERNEL_PORTS],
}

/// One port's and class's [`KernelCounters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelCount {
    pub port: u16,
    pub class: KernelClass,
    pub handed: u64,
    pub rate_limited: u64,
}

impl Default for KernelCounters {
    fn default() -> Self {
        let per_class = || std::array::from_fn(|_| Counter::default());
        KernelCounters {
            handed: std::array::from_fn(|_| per_class()),
            rate_limited: std::array::from_fn(|_| per_class()),
        }
    }
}

impl KernelCounters {
    /// The count of packets handed to `port`'s kernel interface (`port` below
    /// [`MAX_KERNEL_PORTS`], which the rate limit already checked).
    pub fn handed(&self, port: u16, class: KernelClass) -> &Counter {
        &self.handed[usize::from(port)][class.index()]
    }

    /// The count of packets refused by `port`'s rate for `class`, or `None`
    /// for a port beyond [`MAX_KERNEL_PORTS`].
    pub fn rate_limited(&self, port: u16, class: KernelClass) -> Option<&Counter> {
        self.rate_limited.get(usize::from(port)).map(|c| &c[class.index()])
    }

    /// Every port and class with a packet handed or refused.
    pub fn nonzero(&self) -> Vec<KernelCount> {
        let mut counts = Vec::new();
        for (port, (handed, limited)) in self.handed.iter().zip(&self.rate_limited).enumerate() {
            for class in KernelClass::ALL {
                let (handed, rate_limited) = (handed[class.index()].get(), limited[class.index()].get());
                if handed != 0 || rate_limited != 0 {
                    counts.push(KernelCount { port: port as u16, class, handed, rate_limited });
                }
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        let all: Vec<Discard> = Discard::all().collect();
        assert_eq!(all.len(), Discard::COUNT);
        for (i, d) in all.iter().enumerate() {
            assert_eq!(d.index(), i, "{d:?}");
        }
        let mut names: Vec<&str> = all.iter().map(|d| d.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Discard::COUNT, "names are unique");
    }

    #[test]
    fn counters_add_up() {
        let c = WorkerCounters::default();
        c.count(Discard::NoRoute);
        c.count(Discard::NoRoute);
        c.count(Discard::Wire(DropReason::Fragment));
        assert_eq!(c.dropped(Discard::NoRoute), 2);
        assert_eq!(c.total_drops(), 3);
        assert_eq!(c.nonzero_drops(), vec![("fragment", 1), ("no_route", 2)]);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
    }
}
