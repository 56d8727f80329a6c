//! Schedulers: which real server gets a new connection.
//!
//! Every scheduler follows the Linux IPVS definition of the same name (`ip_vs_<name>.c`),
//! including its tie-breaking (the first server in list order wins a tie) and its arithmetic
//! (connection overhead `active * 256 + inactive`, weighted comparisons by cross
//! multiplication in 64 bits so no division rounds a decision). `mh` is Maglev hashing.
//! A server with weight 0 (quiescent) or over its upper threshold is never picked by any of
//! them.
//!
//! Two kinds of state, kept apart on purpose (DESIGN.md invariant 1):
//!
//! - Per-worker mutable state (rr's position, wrr's current weight, lblc/lblcr's
//!   bounded destination map, [`locality`], twos's random sequence) lives in a [`Scheduler`] each worker owns; workers never share it, so
//!   round-robin is round-robin per worker, as in DPVS.
//! - Immutable lookup tables of the hashing schedulers (dh, sh: 256 buckets; mh: the Maglev
//!   table) depend only on the server list, so they are built once per snapshot edit on the
//!   control plane ([`Prepared`]) and shared read-only by every worker.
//!
//! Load figures (active/inactive counts) are the shared per-server counters, read with
//! relaxed loads once per new connection.
//!
//! A batch of changes (`gwctl -R`, a configuration file) is one snapshot, yet each worker's
//! scheduler must end where applying the changes one at a time would leave it (as
//! `ipvsadm -R` replays its lines into the kernel): wrr's current weight, for one, depends
//! on every server list it was updated to, not only the last. So the snapshot editor logs,
//! per service, each change that matters to a scheduler ([`EditLog`]: a restart when the
//! service is created or its scheduler changes, and each change of its servers), and a
//! worker switching to the next snapshot replays that log ([`Schedulers::switch`]) instead of
//! jumping from the old server list to the new one. A service the edit did not touch keeps
//! its scheduler as it is.

mod dh;
mod fo;
mod hash;
mod lblc;
mod lblcr;
mod lc;
mod locality;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

use std::net::IpAddr;

use crate::conn::{Family, FlowKey};
use crate::model::snapshot::{Dest, Service, ServiceId, Snapshot};
use crate::model::{DestCounters, SchedulerKind};

pub use dh::DestHash;
pub use lblc::Lblc;
pub use lblcr::Lblcr;
pub use mh::Maglev;
pub use rr::RoundRobin;
pub use sh::SourceHash;
pub use twos::TwoChoices;
pub use wrr::{WeightedRoundRobin, WrrMeasure};

/// One change of a service, as its schedulers must follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditStep {
    /// The service was created, or its scheduler changed: the scheduler starts afresh over
    /// the servers of that moment (measured for wrr).
    Restart { wrr: WrrMeasure },
    /// A server was added, edited or removed (`removed` names the one that left).
    Servers { wrr: WrrMeasure, removed: Option<(IpAddr, u16)> },
}

/// The [`EditStep`]s of one service in the edit that made snapshot `generation`; a log of
/// an older generation means the edit left the service's scheduling alone.
#[derive(Debug, Clone, Default)]
pub struct EditLog {
    generation: u64,
    steps: Vec<EditStep>,
}

impl EditLog {
    /// Appends `step` to the log of the edit making `generation`.
    pub fn record(&mut self, generation: u64, step: EditStep) {
        if self.generation != generation {
            self.generation = generation;
            self.steps.clear();
        }
        self.steps.push(step);
    }

    /// The steps of the edit that made `generation`; empty if it did not touch the service.
    fn steps(&self, generation: u64) -> &[EditStep] {
        if self.generation == generation {
            &self.steps
        } else {
            &[]
        }
    }
}

/// Tables of the hashing schedulers, computed from a service's server list when a snapshot
/// is published. Entries are indices into `Service::dests`; `NO_DEST` marks none.
#[derive(Debug)]
pub enum Prepared {
    Dh(DestHash),
    Sh(SourceHash),
    Mh(Maglev),
}

/// Table entry meaning "no server" (a service holds at most `u16::MAX` servers).
pub const NO_DEST: u16 = u16::MAX;

impl Prepared {
    /// The table `kind` needs for `dests`, `None` if `kind` needs none.
    pub fn build(kind: SchedulerKind, dests: &[Dest]) -> Option<Prepared> {
        match kind {
            SchedulerKind::Dh => Some(Prepared::Dh(DestHash::new(dests))),
            SchedulerKind::Sh => Some(Prepared::Sh(SourceHash::new(dests))),
            SchedulerKind::Mh => Some(Prepared::Mh(Maglev::new(dests))),
            _ => None,
        }
    }
}

/// One worker's scheduler for one service.
#[derive(Debug)]
pub enum Scheduler {
    Rr(RoundRobin),
    Wrr(WeightedRoundRobin),
    Lc,
    Wlc,
    Sed,
    Nq,
    Lblc(Lblc),
    Lblcr(Lblcr),
    Fo,
    Ovf,
    Twos(TwoChoices),
    /// dh, sh and mh keep no per-worker state: their table is in the service.
    Hash,
}

impl Scheduler {
    pub fn new(svc: &Service) -> Scheduler {
        Scheduler::fresh(svc.scheduler(), WrrMeasure::of(svc.dests()))
    }

    /// A scheduler of `kind` as a service's creation (or scheduler change) starts it, over
    /// servers measuring `wrr`.
    fn fresh(kind: SchedulerKind, wrr: WrrMeasure) -> Scheduler {
        match kind {
            SchedulerKind::Wrr => Scheduler::Wrr(WeightedRoundRobin::with_measure(wrr)),
            SchedulerKind::Rr => Scheduler::Rr(RoundRobin::default()),
            SchedulerKind::Lc => Scheduler::Lc,
            SchedulerKind::Wlc => Scheduler::Wlc,
            SchedulerKind::Sed => Scheduler::Sed,
            SchedulerKind::Nq => Scheduler::Nq,
            SchedulerKind::Lblc => Scheduler::Lblc(Lblc::default()),
            SchedulerKind::Lblcr => Scheduler::Lblcr(Lblcr::default()),
            SchedulerKind::Fo => Scheduler::Fo,
            SchedulerKind::Ovf => Scheduler::Ovf,
            SchedulerKind::Twos => Scheduler::Twos(TwoChoices::default()),
            SchedulerKind::Dh | SchedulerKind::Sh | SchedulerKind::Mh => Scheduler::Hash,
        }
    }

    /// The scheduler for `svc` as the edit logged in `steps` leaves it, starting from
    /// `carried` (this worker's scheduler for the service in the previous snapshot, over
    /// `old`'s servers) unless the log restarts it. Each step is what publishing that change
    /// alone would have done.
    fn replay(carried: Option<(Scheduler, &Service)>, svc: &Service, steps: &[EditStep]) -> Scheduler {
        let restart = steps.iter().enumerate().rev().find_map(|(i, s)| match s {
            EditStep::Restart { wrr } => Some((i, *wrr)),
            EditStep::Servers { .. } => None,
        });
        let (mut sched, old, rest) = match (restart, carried) {
            (Some((r, wrr)), _) => (Scheduler::fresh(svc.scheduler(), wrr), None, &steps[r + 1..]),
            (None, Some((s, old))) => (s, Some(old), steps),
            // Not in the previous snapshot and not created by this edit: the log is not
            // this worker's history; start from the servers as they are.
            (None, None) => return Scheduler::new(svc),
        };
        let removed: Vec<(IpAddr, u16)> = rest
            .iter()
            .filter_map(|s| match s {
                EditStep::Servers { removed, .. } => *removed,
                EditStep::Restart { .. } => None,
            })
            .collect();
        // Positions into the old list follow their server to the new one, unless it left at
        // some step (a publish of that step would have dropped them, whatever came back).
        let old_dests = old.map_or(&[][..], |o| o.dests());
        match &mut sched {
            Scheduler::Rr(s) => s.update(old_dests, svc.dests(), &removed),
            Scheduler::Lblc(s) => s.update(old_dests, svc.dests(), &removed),
            Scheduler::Lblcr(s) => s.update(old_dests, svc.dests(), &removed),
            Scheduler::Wrr(s) => {
                for step in rest {
                    if let EditStep::Servers { wrr, .. } = step {
                        s.update_measured(*wrr);
                    }
                }
            }
            Scheduler::Lc
            | Scheduler::Wlc
            | Scheduler::Sed
            | Scheduler::Nq
            | Scheduler::Fo
            | Scheduler::Ovf
            | Scheduler::Twos(_)
            | Scheduler::Hash => {}
        }
        sched
    }

    /// Picks the real server for a new connection, `flow` its first packet's 5-tuple: an
    /// index into `svc.dests()`, or `None` when no server is available. `now` (seconds)
    /// drives lblc/lblcr expiry. Generic over the family, so that only the hashing
    /// schedulers make the addresses `IpAddr`s.
    pub fn pick<A: Family>(&mut self, svc: &Service, flow: &FlowKey<A>, now: u32) -> Option<usize> {
        let dests = svc.dests();
        match self {
            Scheduler::Rr(s) => s.pick(dests),
            Scheduler::Wrr(s) => s.pick(dests),
            Scheduler::Lc => lc::pick(dests),
            Scheduler::Wlc => wlc::pick(dests),
            Scheduler::Sed => sed::pick(dests),
            Scheduler::Nq => nq::pick(dests),
            Scheduler::Lblc(s) => s.pick(dests, flow.dst.to_ip(), now),
            Scheduler::Lblcr(s) => s.pick(dests, flow.dst.to_ip(), now),
            Scheduler::Fo => fo::pick(dests),
            Scheduler::Ovf => ovf::pick(dests),
            Scheduler::Twos(s) => s.pick(dests),
            Scheduler::Hash => match svc.prepared()? {
                Prepared::Dh(t) => t.pick(dests, flow.dst.to_ip()),
                Prepared::Sh(t) => t.pick(dests, flow.src.to_ip()),
                Prepared::Mh(t) => t.pick(dests, flow.src.to_ip()),
            },
        }
    }

    /// lblc/lblcr destinations that made room for new ones (their map was full).
    pub fn evictions(&self) -> u64 {
        match self {
            Scheduler::Lblc(s) => s.evictions(),
            Scheduler::Lblcr(s) => s.evictions(),
            _ => 0,
        }
    }

    /// Carries state across a snapshot switch: `old` and `new` are the same service before
    /// and after an edit. A changed scheduler kind starts afresh.
    pub fn update(&mut self, old: &Service, new: &Service) {
        if old.scheduler() != new.scheduler() {
            *self = Scheduler::new(new);
            return;
        }
        match self {
            Scheduler::Rr(s) => s.update(old.dests(), new.dests(), &[]),
            Scheduler::Wrr(s) => s.update(new.dests()),
            Scheduler::Lblc(s) => s.update(old.dests(), new.dests(), &[]),
            Scheduler::Lblcr(s) => s.update(old.dests(), new.dests(), &[]),
            Scheduler::Lc
            | Scheduler::Wlc
            | Scheduler::Sed
            | Scheduler::Nq
            | Scheduler::Fo
            | Scheduler::Ovf
            | Scheduler::Twos(_)
            | Scheduler::Hash => {}
        }
    }
}

/// A worker's schedulers, one per service of its current snapshot, indexed by [`ServiceId`].
#[derive(Debug, Default)]
pub struct Schedulers {
    scheds: Vec<Scheduler>,
    /// Evictions of lblc/lblcr maps no longer in `scheds` (their service left, or changed
    /// scheduler), so the total never goes back.
    retired_evictions: u64,
}

impl Schedulers {
    /// The schedulers a worker starts `snap` with: as the edit that made it leaves them
    /// (a configuration file is one edit, replayed change by change).
    pub fn new(snap: &Snapshot) -> Schedulers {
        let generation = snap.generation();
        Schedulers {
            scheds: snap
                .services()
                .iter()
                .map(|s| Scheduler::replay(None, s, s.edit_log().steps(generation)))
                .collect(),
            retired_evictions: 0,
        }
    }

    /// lblc/lblcr destinations evicted from full maps, over this worker's life.
    pub fn evictions(&self) -> u64 {
        self.retired_evictions + self.scheds.iter().map(Scheduler::evictions).sum::<u64>()
    }

    /// Follows a snapshot switch, keeping each surviving service's state. When `new` is the
    /// edit right after `old` (the usual case), each service's scheduler replays the edit's
    /// log, so a batch of changes ends where the same changes published one by one would;
    /// after a gap (a refused publish rolled back) it follows from the old server list to
    /// the new one directly. Runs on the worker between bursts; allocates, as a
    /// configuration change may.
    pub fn switch(&mut self, old: &Snapshot, new: &Snapshot) {
        let total = self.evictions();
        let mut prev: Vec<Option<Scheduler>> = self.scheds.drain(..).map(Some).collect();
        let consecutive = new.generation() == old.generation() + 1;
        self.scheds = new
            .services()
            .iter()
            .map(|svc| {
                let carried = old
                    .service_id(&svc.key())
                    .and_then(|id| Some((prev.get_mut(id as usize)?.take()?, old.service(id))));
                if consecutive {
                    let steps = svc.edit_log().steps(new.generation());
                    return match carried {
                        // Untouched by the edit: its scheduler goes on as it is.
                        Some((s, _)) if steps.is_empty() => s,
                        carried => Scheduler::replay(carried, svc, steps),
                    };
                }
                match carried {
                    Some((mut s, old_svc)) => {
                        s.update(old_svc, svc);
                        s
                    }
                    None => Scheduler::new(svc),
                }
            })
            .collect();
        self.retired_evictions = total - self.scheds.iter().map(Scheduler::evictions).sum::<u64>();
    }

    /// The server of service `id` for a new connection of `flow` (an index into its
    /// `dests`). Inlined: its caller pays one call, into the scheduler itself.
    #[inline]
    pub fn pick<A: Family>(&mut self, snap: &Snapshot, id: ServiceId, flow: &FlowKey<A>, now: u32) -> Option<usize> {
        self.scheds[id as usize].pick(snap.service(id), flow, now)
    }
}

/// The first available server minimising `overhead / weight`, ties to the first: the loop
/// shared by wlc, sed and the lblc family. Compares `loh * dw > doh * lw` as IPVS does.
fn least_weighted(dests: &[Dest], overhead: impl Fn(&DestCounters) -> u64) -> Option<usize> {
    let mut best = None;
    let (mut loh, mut lw) = (0u64, 0u64);
    for (i, d) in dests.iter().enumerate() {
        let (dw, c) = (d.weight() as u64, d.counters());
        if dw == 0 || c.is_overloaded() {
            continue;
        }
        let doh = overhead(c);
        if best.is_none() || loh * dw > doh * lw {
            (best, loh, lw) = (Some(i), doh, dw);
        }
    }
    best
}

/// Position of `old[idx]` in `new`, by address and port; `None` if it is not there or it is
/// one of `removed` (it left during the edit, even if it came back).
fn remap(old: &[Dest], new: &[Dest], idx: usize, removed: &[(IpAddr, u16)]) -> Option<usize> {
    let d = old.get(idx)?;
    if removed.contains(&(d.addr(), d.port())) {
        return None;
    }
    new.iter().position(|n| n.addr() == d.addr() && n.port() == d.port())
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::model::snapshot::{Snapshot, SnapshotEditor};
    use crate::model::{DestSpec, ForwardMethod, ServiceKey, ServiceSpec};
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    pub fn key() -> ServiceKey {
        ServiceKey::tcp("10.0.0.1".parse().unwrap(), 80)
    }

    pub fn rs(i: usize) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::new(192, 168, (i / 250) as u8, (i % 250 + 1) as u8))
    }

    /// A snapshot with one service of `kind` and one server per weight, in order.
    pub fn service(kind: SchedulerKind, weights: &[u32]) -> Arc<Snapshot> {
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec { scheduler: kind, ..ServiceSpec::new(key()) }).unwrap();
        for (i, &w) in weights.iter().enumerate() {
            add(&mut ed, i, w);
        }
        ed.finish()
    }

    pub fn add(ed: &mut SnapshotEditor, i: usize, weight: u32) {
        let spec = DestSpec::new(rs(i), 80).with_method(ForwardMethod::Masq).with_weight(weight);
        ed.add_dest(&key(), spec).unwrap();
    }

    pub fn flow(src: &str) -> FlowKey<Ipv4Addr> {
        FlowKey {
            proto: crate::model::Protocol::Tcp,
            src: src.parse().unwrap(),
            sport: 40000,
            dst: "10.0.0.1".parse().unwrap(),
            dport: 80,
        }
    }

    /// `n` picks for the same flow.
    pub fn picks(snap: &Snapshot, n: usize) -> Vec<usize> {
        let svc = snap.service(0);
        let mut s = Scheduler::new(svc);
        (0..n).map(|_| s.pick(svc, &flow("1.1.1.1"), 0).unwrap()).collect()
    }

    /// Sets a server's active and inactive counts.
    pub fn load(snap: &Snapshot, i: usize, active: u32, inactive: u32) {
        let c = snap.service(0).dests()[i].counters();
        for _ in 0..active + inactive {
            c.bind();
        }
        for _ in 0..active {
            c.set_active(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::model::snapshot::SnapshotEditor;
    use crate::model::{ServiceKey, ServiceSpec};

    #[test]
    fn every_scheduler_skips_quiescent_and_overloaded_servers() {
        for kind in SchedulerKind::ALL {
            // Server 0 is quiescent, server 1 is over its threshold, server 2 is usable.
            let mut ed = Snapshot::empty().edit();
            ed.add_service(crate::model::ServiceSpec { scheduler: kind, ..crate::model::ServiceSpec::new(key()) })
                .unwrap();
            add(&mut ed, 0, 0);
            let spec = crate::model::DestSpec::new(rs(1), 80)
                .with_method(crate::model::ForwardMethod::Masq)
                .with_thresholds(1, 0);
            ed.add_dest(&key(), spec).unwrap();
            add(&mut ed, 2, 1);
            let snap = ed.finish();
            snap.service(0).dests()[1].counters().bind();
            assert!(snap.service(0).dests()[1].counters().is_overloaded());
            let svc = snap.service(0);
            let mut s = Scheduler::new(svc);
            for i in 0..50u32 {
                let f = FlowKey { src: i.into(), ..flow("1.1.1.1") };
                let got = s.pick(svc, &f, 0);
                // Hashing schedulers return nothing when the hashed server is unavailable
                // (IPVS without the fallback flag); the others must find server 2.
                if matches!(kind, SchedulerKind::Dh | SchedulerKind::Sh | SchedulerKind::Mh) {
                    assert!(got.is_none() || got == Some(2), "{kind}: {got:?}");
                } else {
                    assert_eq!(got, Some(2), "{kind}");
                }
            }
        }
    }

    #[test]
    fn threshold_blocks_until_below_lower() {
        let mut ed = Snapshot::empty().edit();
        ed.add_service(crate::model::ServiceSpec {
            scheduler: SchedulerKind::Rr,
            ..crate::model::ServiceSpec::new(key())
        })
        .unwrap();
        let spec =
            crate::model::DestSpec::new(rs(0), 80).with_method(crate::model::ForwardMethod::Masq).with_thresholds(4, 2);
        ed.add_dest(&key(), spec).unwrap();
        let snap = ed.finish();
        let svc = snap.service(0);
        let counters = svc.dests()[0].counters();
        let mut s = Scheduler::new(svc);
        for _ in 0..4 {
            assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), Some(0));
            counters.bind();
        }
        assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), None, "at the upper threshold");
        counters.unbind(false);
        assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), None, "3 is not below the lower 2");
        counters.unbind(false);
        assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), None, "2 is not below the lower 2");
        counters.unbind(false);
        assert_eq!(s.pick(svc, &flow("1.1.1.1"), 0), Some(0), "1 is below the lower 2");
    }

    /// Applies each batch of edits as one snapshot (one `-R`, or one line each), following
    /// every switch as a worker does, then picks `n` times.
    type Edit<'a> = &'a dyn Fn(&mut SnapshotEditor);

    fn picks_after(batches: &[&[Edit]], n: usize) -> Vec<usize> {
        let mut snap = Snapshot::empty();
        let mut set = Schedulers::new(&snap);
        for batch in batches {
            let mut ed = snap.edit();
            for edit in *batch {
                edit(&mut ed);
            }
            let next = ed.finish();
            set.switch(&snap, &next);
            snap = next;
        }
        (0..n).map(|_| set.pick(&snap, 0, &flow("1.1.1.1"), 0).unwrap()).collect()
    }

    #[test]
    fn a_batch_leaves_the_schedulers_where_its_changes_one_by_one_would() {
        for kind in [SchedulerKind::Wrr, SchedulerKind::Rr] {
            let create = |ed: &mut SnapshotEditor| {
                ed.add_service(ServiceSpec { scheduler: kind, ..ServiceSpec::new(key()) }).unwrap()
            };
            let rs1 = |ed: &mut SnapshotEditor| add(ed, 0, 1);
            let rs2 = |ed: &mut SnapshotEditor| add(ed, 1, 2);
            let rs3 = |ed: &mut SnapshotEditor| add(ed, 2, 3);
            let del1 = |ed: &mut SnapshotEditor| ed.delete_dest(&key(), rs(0), 80).unwrap();
            let readd1 = |ed: &mut SnapshotEditor| add(ed, 0, 1);
            let lines: [Edit; 3] = [&create, &rs1, &rs2];
            // Typed one per line (ipvsadm -R replays them so), then restored in one batch.
            let typed = picks_after(&[&lines[..1], &lines[1..2], &lines[2..]], 6);
            let restored = picks_after(&[&lines[..]], 6);
            assert_eq!(restored, typed, "{kind}");
            if kind == SchedulerKind::Wrr {
                // IPVS: -A (mw 0), -a w1 (cw 1), -a w2 (cw stays 1): RS1 RS2 RS2 RS1 RS2 RS2.
                assert_eq!(typed, [0, 1, 1, 0, 1, 1]);
            }
            // On top of a running service: picks, then a batch that adds a server and
            // removes and re-adds the one picked last.
            let mut snap = Snapshot::empty();
            let mut one_by_one = Schedulers::new(&snap);
            let mut batch = Schedulers::new(&snap);
            let mut ed = snap.edit();
            create(&mut ed);
            rs1(&mut ed);
            rs2(&mut ed);
            let base = ed.finish();
            one_by_one.switch(&snap, &base);
            batch.switch(&snap, &base);
            snap = base;
            for _ in 0..2 {
                one_by_one.pick(&snap, 0, &flow("1.1.1.1"), 0);
                batch.pick(&snap, 0, &flow("1.1.1.1"), 0);
            }
            let edits: [Edit; 3] = [&rs3, &del1, &readd1];
            let mut seq = snap.clone();
            for edit in edits {
                let mut ed = seq.edit();
                edit(&mut ed);
                let next = ed.finish();
                one_by_one.switch(&seq, &next);
                seq = next;
            }
            let mut ed = snap.edit();
            for edit in edits {
                edit(&mut ed);
            }
            let all = ed.finish();
            batch.switch(&snap, &all);
            let f = flow("1.1.1.1");
            let a: Vec<_> = (0..12).map(|_| one_by_one.pick(&seq, 0, &f, 0)).collect();
            let b: Vec<_> = (0..12).map(|_| batch.pick(&all, 0, &f, 0)).collect();
            assert_eq!(b, a, "{kind} after a batch on a running service");
        }
    }

    #[test]
    fn a_service_the_edit_does_not_touch_keeps_its_place() {
        let snap = service(SchedulerKind::Wrr, &[4, 3, 2]);
        let mut set = Schedulers::new(&snap);
        let f = flow("1.1.1.1");
        let first: Vec<_> = (0..4).map(|_| set.pick(&snap, 0, &f, 0).unwrap()).collect();
        let mut ed = snap.edit();
        ed.add_service(ServiceSpec::new(ServiceKey::tcp("10.0.0.2".parse().unwrap(), 80))).unwrap();
        let next = ed.finish();
        set.switch(&snap, &next);
        let rest: Vec<_> = (0..5).map(|_| set.pick(&next, 0, &f, 0).unwrap()).collect();
        let mut unswitched = Schedulers::new(&snap);
        let reference: Vec<_> = (0..9).map(|_| unswitched.pick(&snap, 0, &f, 0).unwrap()).collect();
        assert_eq!([first, rest].concat(), reference, "the cycle runs on as if nothing happened");
    }

    #[test]
    fn lblc_evictions_survive_a_service_leaving() {
        let old = service(SchedulerKind::Lblc, &[1, 1]);
        let mut set = Schedulers::new(&old);
        // More destinations than a map holds.
        for n in 0..=locality::CAPACITY {
            let f = FlowKey { dst: n.into(), ..flow("1.1.1.1") };
            assert!(set.pick(&old, 0, &f, 0).is_some());
        }
        assert_eq!(set.evictions(), 1);
        let mut ed = old.edit();
        ed.edit_service(crate::model::ServiceSpec {
            scheduler: SchedulerKind::Rr,
            ..crate::model::ServiceSpec::new(key())
        })
        .unwrap();
        let new = ed.finish();
        set.switch(&old, &new);
        assert_eq!(set.evictions(), 1, "the replaced map's evictions stay counted");
    }

    #[test]
    fn schedulers_follow_a_snapshot_switch() {
        let old = service(SchedulerKind::Rr, &[1, 1, 1]);
        let mut set = Schedulers::new(&old);
        let f = flow("1.1.1.1");
        assert_eq!(set.pick(&old, 0, &f, 0), Some(0));
        assert_eq!(set.pick(&old, 0, &f, 0), Some(1));
        let mut ed = old.edit();
        ed.delete_dest(&key(), rs(0), 80).unwrap();
        let new = ed.finish();
        set.switch(&old, &new);
        // rr continues after the server it picked last (rs(1), now at index 0).
        assert_eq!(set.pick(&new, 0, &f, 0), Some(1));
        assert_eq!(new.service(0).dests()[1].addr(), rs(2));
    }
}

/// Greatest common divisor of two weights (wrr steps and Maglev turns use it).
pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
