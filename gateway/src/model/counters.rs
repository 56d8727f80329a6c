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
//! The traffic counters (`--stats`) are here too, for the server and for its service, so a
//! packet reaches both through the one pointer its connection already holds. They are
//! counted per packet, but each worker writes its own slot ([`Traffic`]), so they share
//! nothing between workers either.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::stats::Traffic;

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
    /// The traffic of the service the server belongs to.
    service: Arc<Traffic>,
}

impl Default for DestCounters {
    /// No thresholds, outside any service.
    fn default() -> DestCounters {
        DestCounters::new(0, 0)
    }
}

impl DestCounters {
    /// Counters of a server outside any service (tests, benchmarks): its service traffic is
    /// its own, for one worker.
    pub fn new(upper_threshold: u32, lower_threshold: u32) -> DestCounters {
        Self::for_service(upper_threshold, lower_threshold, &Arc::new(Traffic::new(1)), 1)
    }

    /// Counters of a server of the service whose traffic is `service`, counted by up to
    /// `workers` workers.
    pub fn for_service(
        upper_threshold: u32,
        lower_threshold: u32,
        service: &Arc<Traffic>,
        workers: usize,
    ) -> DestCounters {
        DestCounters {
            active: AtomicU32::new(0),
            inactive: AtomicU32::new(0),
            persistent: AtomicU32::new(0),
            upper_threshold: AtomicU32::new(upper_threshold),
            lower_threshold: AtomicU32::new(lower_threshold),
            overloaded: AtomicBool::new(false),
            passive: PassiveCounters::default(),
            traffic: Traffic::new(workers),
            service: Arc::clone(service),
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

    /// The traffic of the service this server was created for.
    pub fn service_traffic(&self) -> &Arc<Traffic> {
        &self.service
    }

    /// `worker` scheduled a new connection to this server.
    #[inline]
    pub fn count_connection(&self, worker: u16) {
        self.traffic.connection(worker);
        self.service.connection(worker);
    }

    /// `worker` forwarded client packets (`bytes` of IP length in all) to this server.
    #[inline]
    pub fn count_inbound(&self, worker: u16, packets: u64, bytes: u64) {
        self.traffic.inbound(worker, packets, bytes);
        self.service.inbound(worker, packets, bytes);
    }

    /// `worker` forwarded replies (`bytes` of IP length in all) from this server.
    #[inline]
    pub fn count_outbound(&self, worker: u16, packets: u64, bytes: u64) {
        self.traffic.outbound(worker, packets, bytes);
        self.service.outbound(worker, packets, bytes);
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
