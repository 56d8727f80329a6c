//! Per-real-server connection counters: the only state workers share (DESIGN.md invariant 1).
//!
//! The connection counts are touched once per connection event (bind, state change,
//! unbind), never per packet, with relaxed atomics: a scheduler on another worker reading a count that is one connection
//! stale makes the same decision IPVS makes under its own races, and no ordering with other
//! memory is implied by these numbers.
//!
//! The counters live in an `Arc` that the snapshot editor carries from one snapshot to the
//! next, so an edit keeps them; a connection holds its own handle, so a connection bound to a
//! removed real server still decrements the right counters when it ends.
//!
//! The thresholds live here too, not only in the snapshot, because the overload flag is
//! re-evaluated when a connection ends, possibly after its server left the snapshot: the
//! check needs the thresholds in force, which the editor stores here when it publishes.
//!
//! The passive health detection's counts are here too ([`PassiveCounters`]): a real
//! server's new connections that failed (by how) or succeeded, counted by the connection
//! table once per connection when its handshake ends, and read by the control plane's
//! passive policy (`health::passive`), which decides what they mean.
//!
//! The traffic counters (`--stats`) are here too, reached through the one pointer a
//! connection already holds. They are counted per packet, but each worker writes its own
//! slot ([`Traffic`]), so they share nothing between workers either. A service's traffic
//! is not counted apart but summed from its servers' ([`ServiceTraffic`]): a packet writes
//! one slot instead of two (`measure_pipeline.sh`: 10 instructions an established packet,
//! 16 a new connection).

use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use crate::stats::{Estimator, Totals, Traffic, TrafficCounts};

/// Connection counts, the overload flag and the traffic of one real server.
#[derive(Debug)]
pub struct DestCounters {
    active: AtomicU32,
    inactive: AtomicU32,
    persistent: AtomicU32,
    upper_threshold: AtomicU32,
    lower_threshold: AtomicU32,
    overloaded: AtomicBool,
    passive: PassiveCounters,
    traffic: Traffic,
    /// The traffic of the service the server was created for, which sums this server's.
    service: Weak<ServiceTraffic>,
}

/// The traffic of one service: the sum of the traffic of every real server created for
/// it, those still in it and those removed whose connections still count (IPVS counts a
/// packet to its server's service as long as the connection lives). A removed server's
/// counts stay in the sum once nothing can count to it any more.
///
/// Only the control thread reads it; workers count to the servers.
#[derive(Debug, Default)]
pub struct ServiceTraffic {
    members: Mutex<Members>,
    estimator: Estimator,
}

#[derive(Debug, Default)]
struct Members {
    /// The servers whose traffic is counted here: held, so none of their counts is lost
    /// before they are folded into `retired`.
    counting: Vec<Arc<DestCounters>>,
    /// The final counts of servers no connection, template or snapshot holds any more.
    retired: Totals,
}

impl ServiceTraffic {
    pub fn new() -> Arc<ServiceTraffic> {
        Arc::new(ServiceTraffic::default())
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        // The data is counters and handles: a panic elsewhere cannot leave it inconsistent.
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counters for a new real server of this service, counted by up to `workers` workers,
    /// its traffic summed into this service's.
    pub fn add_server(
        self: &Arc<Self>,
        upper_threshold: u32,
        lower_threshold: u32,
        workers: usize,
    ) -> Arc<DestCounters> {
        let counters =
            Arc::new(DestCounters::counting(upper_threshold, lower_threshold, Arc::downgrade(self), workers));
        self.members().counting.push(Arc::clone(&counters));
        counters
    }

    /// The counters of a server removed from this service, still counting here, for the
    /// server coming back (IPVS's trash): `None` when they are gone, or are another
    /// service's. Under the members' lock, so that they cannot be folded away meanwhile.
    pub fn revive(self: &Arc<Self>, removed: &Weak<DestCounters>) -> Option<Arc<DestCounters>> {
        let _members = self.members();
        removed.upgrade().filter(|c| c.counts_for(self))
    }
}

impl TrafficCounts for ServiceTraffic {
    /// The retired servers' counts and the counting ones'. A server only this sum holds
    /// is folded into the retired counts: nothing can count to it any more.
    fn raw(&self) -> Totals {
        let mut members = self.members();
        let Members { counting, retired } = &mut *members;
        let mut sum = *retired;
        counting.retain(|c| {
            // Alone here, it stays alone: only `revive` could hand it out again, under the
            // lock held here.
            let alone = Arc::strong_count(c) == 1;
            if alone {
                // The last other holder's counts happened before its release of the
                // handle, which this count read.
                fence(Acquire);
            }
            let counts = c.traffic.raw();
            sum = sum.plus(&counts);
            if alone {
                *retired = retired.plus(&counts);
            }
            !alone
        });
        sum
    }

    fn estimator(&self) -> &Estimator {
        &self.estimator
    }
}

impl Default for DestCounters {
    /// No thresholds, outside any service.
    fn default() -> DestCounters {
        DestCounters::new(0, 0)
    }
}

impl DestCounters {
    /// Counters of a server outside any service (tests, benchmarks), for one worker.
    pub fn new(upper_threshold: u32, lower_threshold: u32) -> DestCounters {
        DestCounters::counting(upper_threshold, lower_threshold, Weak::new(), 1)
    }

    fn counting(upper_threshold: u32, lower_threshold: u32, service: Weak<ServiceTraffic>, workers: usize) -> Self {
        DestCounters {
            active: AtomicU32::new(0),
            inactive: AtomicU32::new(0),
            persistent: AtomicU32::new(0),
            upper_threshold: AtomicU32::new(upper_threshold),
            lower_threshold: AtomicU32::new(lower_threshold),
            overloaded: AtomicBool::new(false),
            passive: PassiveCounters::default(),
            traffic: Traffic::new(workers),
            service,
        }
    }

    /// How this server's new connections ended (passive health detection).
    pub fn passive(&self) -> &PassiveCounters {
        &self.passive
    }

    /// This server's traffic (`--stats` of a real server).
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Whether this server's traffic is summed into `service`'s.
    pub fn counts_for(&self, service: &Arc<ServiceTraffic>) -> bool {
        std::ptr::eq(self.service.as_ptr(), Arc::as_ptr(service))
    }

    /// `worker` scheduled a new connection to this server.
    #[inline]
    pub fn count_connection(&self, worker: u16) {
        self.traffic.connection(worker);
    }

    /// `worker` forwarded client packets (`bytes` of IP length in all) to this server.
    #[inline]
    pub fn count_inbound(&self, worker: u16, packets: u64, bytes: u64) {
        self.traffic.inbound(worker, packets, bytes);
    }

    /// `worker` forwarded replies (`bytes` of IP length in all) from this server.
    #[inline]
    pub fn count_outbound(&self, worker: u16, packets: u64, bytes: u64) {
        self.traffic.outbound(worker, packets, bytes);
    }

    /// Connections in ESTABLISHED (TCP); ipvsadm's ActiveConn.
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }

    /// All other connections (TCP not established, UDP); ipvsadm's InActConn.
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }

    /// Live persistence templates pointing at this server; ipvsadm's PersistConn.
    pub fn persistent(&self) -> u32 {
        self.persistent.load(Relaxed)
    }

    /// Active plus inactive: what the thresholds are compared with.
    pub fn total(&self) -> u32 {
        self.active().saturating_add(self.inactive())
    }

    /// IPVS's connection overhead used by lc, wlc, lblc and lblcr: `active * 256 + inactive`.
    /// An active connection weighs 256 inactive ones because it holds server resources for
    /// longer; 64 bits so a weighted comparison cannot overflow.
    pub fn overhead(&self) -> u64 {
        ((self.active() as u64) << 8) + self.inactive() as u64
    }

    /// Whether the upper threshold was reached and the count has not yet fallen below the
    /// lower one. Every scheduler skips an overloaded server.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }

    pub fn upper_threshold(&self) -> u32 {
        self.upper_threshold.load(Relaxed)
    }

    pub fn lower_threshold(&self) -> u32 {
        self.lower_threshold.load(Relaxed)
    }

    /// A new connection is bound to the server. Like IPVS (the dest's `conn_flags` carry
    /// `IP_VS_CONN_F_INACTIVE`), it starts inactive; TCP makes it active on ESTABLISHED.
    pub fn bind(&self) {
        self.inactive.fetch_add(1, Relaxed);
        self.check_upper();
    }

    /// A connection ends; `active` is whether it was counted as active.
    pub fn unbind(&self, active: bool) {
        let counter = if active { &self.active } else { &self.inactive };
        // Saturating: a counter must never wrap to 4 billion and wedge the server as
        // overloaded, even if a caller unbinds twice by mistake.
        let _ = counter.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
        self.check_lower();
    }

    /// A connection moves between active and inactive (TCP state change).
    pub fn set_active(&self, active: bool) {
        let (from, to) = if active { (&self.inactive, &self.active) } else { (&self.active, &self.inactive) };
        let _ = from.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
        to.fetch_add(1, Relaxed);
    }

    /// A persistence template now points at this server.
    pub fn bind_template(&self) {
        self.persistent.fetch_add(1, Relaxed);
    }

    pub fn unbind_template(&self) {
        let _ = self.persistent.fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Installs edited thresholds. Like IPVS's `__ip_vs_update_dest`, removing the upper
    /// threshold or raising it clears the overload flag at once.
    pub fn set_thresholds(&self, upper: u32, lower: u32) {
        let old_upper = self.upper_threshold.swap(upper, Relaxed);
        self.lower_threshold.store(lower, Relaxed);
        if upper == 0 || upper > old_upper {
            self.overloaded.store(false, Relaxed);
        }
    }

    /// IPVS `ip_vs_bind_dest`: overloaded once the total reaches the upper threshold.
    fn check_upper(&self) {
        let upper = self.upper_threshold();
        if upper != 0 && self.total() >= upper {
            self.overloaded.store(true, Relaxed);
        }
    }

    /// IPVS `ip_vs_unbind_dest`: usable again below the lower threshold, or below 3/4 of
    /// the upper one when no lower threshold is set.
    fn check_lower(&self) {
        if !self.is_overloaded() {
            return;
        }
        let (upper, lower) = (self.upper_threshold() as u64, self.lower_threshold() as u64);
        let total = self.total() as u64;
        let usable = if lower != 0 {
            total < lower
        } else if upper != 0 {
            total * 4 < upper * 3
        } else {
            true
        };
        if usable {
            self.overloaded.store(false, Relaxed);
        }
    }
}

/// How a new connection to a real server failed, as the connection table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnFailure {
    /// The server answered the SYN with a RST (NAT, FNAT: the table sees its replies).
    Refused,
    /// The handshake timed out: the connection expired half-open, the server never having
    /// answered (NAT, FNAT) or the client having sent its SYN again (DR, TUN).
    TimedOut,
    /// A UDP connection expired without a single reply (NAT, FNAT).
    Unanswered,
}

/// A real server's new connections by how they ended, and the failures since the last
/// success. Written once per connection (when its handshake succeeds or fails), by any
/// worker, with relaxed atomics, like the connection counts beside them; never per packet.
#[derive(Debug, Default)]
pub struct PassiveCounters {
    refused: AtomicU64,
    timed_out: AtomicU64,
    unanswered: AtomicU64,
    succeeded: AtomicU64,
    /// Failures since the last success, over every worker (what the passive policy counts
    /// from when a success came since its last look).
    streak: AtomicU32,
}

/// [`PassiveCounters`] read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassiveReading {
    pub refused: u64,
    pub timed_out: u64,
    pub unanswered: u64,
    pub succeeded: u64,
    pub streak: u32,
}

impl PassiveReading {
    /// Failures of every kind.
    pub fn failed(&self) -> u64 {
        self.refused.wrapping_add(self.timed_out).wrapping_add(self.unanswered)
    }
}

impl PassiveCounters {
    /// A new connection failed.
    #[cold]
    pub fn fail(&self, how: ConnFailure) {
        let counter = match how {
            ConnFailure::Refused => &self.refused,
            ConnFailure::TimedOut => &self.timed_out,
            ConnFailure::Unanswered => &self.unanswered,
        };
        counter.fetch_add(1, Relaxed);
        self.streak.fetch_add(1, Relaxed);
    }

    /// A new connection succeeded (TCP ESTABLISHED, a UDP reply).
    #[inline]
    pub fn succeed(&self) {
        self.succeeded.fetch_add(1, Relaxed);
        // Read first: a server whose connections succeed keeps the line clean of a store.
        if self.streak.load(Relaxed) != 0 {
            self.streak.store(0, Relaxed);
        }
    }

    pub fn read(&self) -> PassiveReading {
        PassiveReading {
            refused: self.refused.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
            unanswered: self.unanswered.load(Relaxed),
            succeeded: self.succeeded.load(Relaxed),
            streak: self.streak.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ESTIMATE_INTERVAL;

    fn totals(conns: u64, in_packets: u64, in_bytes: u64) -> Totals {
        Totals { conns, in_packets, out_packets: 0, in_bytes, out_bytes: 0 }
    }

    #[test]
    fn a_service_counts_what_its_servers_count() {
        let service = ServiceTraffic::new();
        let (a, b) = (service.add_server(0, 0, 2), service.add_server(0, 0, 2));
        a.count_connection(0);
        a.count_inbound(0, 2, 100);
        b.count_connection(1);
        b.count_inbound(1, 1, 40);
        b.count_outbound(1, 3, 900);
        let both = Totals { conns: 2, in_packets: 3, out_packets: 3, in_bytes: 140, out_bytes: 900 };
        assert_eq!(service.totals(), both);
        assert_eq!(a.traffic().totals(), totals(1, 2, 100), "each server counts its own");
        // -Z of the service leaves its servers' counts, and the reverse.
        service.zero();
        assert_eq!(service.totals(), Totals::default());
        a.count_inbound(0, 1, 10);
        assert_eq!(service.totals(), totals(0, 1, 10));
        a.traffic().zero();
        assert_eq!(service.totals(), totals(0, 1, 10));
        // The rates follow the sums.
        service.zero();
        for _ in 0..100 {
            b.count_inbound(0, 1, 50);
        }
        service.estimate(ESTIMATE_INTERVAL);
        assert_eq!(service.rates().in_pps, 13, "a quarter of the way to 50 packets/s, rounded");
        let other = DestCounters::new(0, 0);
        other.count_inbound(0, 5, 500);
        assert_eq!(service.totals().in_packets, 100, "a server outside the service is not its");
    }

    #[test]
    fn a_removed_servers_counts_stay_in_its_service() {
        let service = ServiceTraffic::new();
        let server = service.add_server(0, 0, 1);
        let connection = Arc::clone(&server);
        let trash = Arc::downgrade(&server);
        // Removed from the snapshot: a connection still counts to it, and to the service.
        drop(server);
        connection.count_inbound(0, 1, 60);
        assert_eq!(service.totals(), totals(0, 1, 60));
        // Back in the service while the connection lives: the same counters.
        let revived = service.revive(&trash).expect("still counting");
        assert!(Arc::ptr_eq(&revived, &connection));
        drop(revived);
        // Not another service's.
        assert!(ServiceTraffic::new().revive(&trash).is_none());
        // The connection ends: the counts stay in the sum, the server goes.
        connection.count_inbound(0, 1, 40);
        drop(connection);
        assert_eq!(service.totals(), totals(0, 2, 100));
        assert!(trash.upgrade().is_none(), "folded into the service, the server is gone");
        assert!(service.revive(&trash).is_none());
        assert_eq!(service.totals(), totals(0, 2, 100), "and its counts stay");
        let next = service.add_server(0, 0, 1);
        next.count_inbound(0, 1, 1);
        assert_eq!(service.totals(), totals(0, 3, 101));
    }

    #[test]
    fn overloaded_at_upper_until_below_lower() {
        let c = DestCounters::new(3, 2);
        c.bind();
        c.bind();
        assert!(!c.is_overloaded());
        c.bind();
        assert!(c.is_overloaded(), "3 connections reach the upper threshold 3");
        c.unbind(false);
        assert!(c.is_overloaded(), "2 is not below the lower threshold 2");
        c.unbind(false);
        assert!(!c.is_overloaded(), "1 is below the lower threshold");
    }

    #[test]
    fn without_lower_threshold_three_quarters_of_upper() {
        let c = DestCounters::new(8, 0);
        for _ in 0..8 {
            c.bind();
        }
        assert!(c.is_overloaded());
        c.unbind(false);
        c.unbind(false);
        assert!(c.is_overloaded(), "6 * 4 = 24 is not below 8 * 3 = 24");
        c.unbind(false);
        assert!(!c.is_overloaded(), "5 * 4 < 24");
    }

    #[test]
    fn active_and_inactive_move_together() {
        let c = DestCounters::new(0, 0);
        c.bind();
        c.bind();
        c.set_active(true);
        assert_eq!((c.active(), c.inactive()), (1, 1));
        assert_eq!(c.overhead(), 257);
        c.unbind(true);
        c.unbind(false);
        assert_eq!((c.active(), c.inactive()), (0, 0));
        c.unbind(false);
        assert_eq!(c.inactive(), 0, "a stray unbind saturates instead of wrapping");
    }

    #[test]
    fn passive_counts_by_kind_and_a_success_ends_the_streak() {
        let c = DestCounters::default();
        let p = c.passive();
        p.fail(ConnFailure::Refused);
        p.fail(ConnFailure::TimedOut);
        p.fail(ConnFailure::Unanswered);
        p.fail(ConnFailure::Refused);
        let r = p.read();
        assert_eq!((r.refused, r.timed_out, r.unanswered, r.succeeded, r.streak), (2, 1, 1, 0, 4));
        assert_eq!(r.failed(), 4);
        p.succeed();
        assert_eq!((p.read().succeeded, p.read().streak, p.read().failed()), (1, 0, 4));
        assert_eq!(p.read().streak, 0);
    }

    #[test]
    fn raising_the_upper_threshold_clears_overload() {
        let c = DestCounters::new(1, 0);
        c.bind();
        assert!(c.is_overloaded());
        c.set_thresholds(1, 0);
        assert!(c.is_overloaded(), "an unchanged threshold keeps the flag");
        c.set_thresholds(5, 0);
        assert!(!c.is_overloaded());
    }
}
