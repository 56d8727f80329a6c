//! What the control plane reads from the running dataplane: connection entries, local
//! address usage, port counters and per-worker drop counters. The dataplane implements
//! [`DataplaneView`]; the control plane only reads through it (and asks it to zero
//! counters), so listing never blocks a worker.
//!
//! Connection counts (ActiveConn, InActConn, PersistConn) and traffic counters (`--stats`,
//! `--rate`, `-Z`) are not here: they live in the model's per-server and per-service
//! counters, which the snapshot carries.

use std::net::IpAddr;

use gwapi::api::{ConnectionInfo, LinkInfo, WorkerStats, WorkerSyncStats};

use crate::model::ServiceKey;
use crate::sync::queue::{Refusal, WorkerSyncCounters};

/// Read access to the running dataplane's state. Every answer but the table size
/// defaults to "nothing seen" (zero counters, empty lists), so a view states only
/// what it really has.
pub trait DataplaneView: Send {
    /// Usage of a FNAT local address of a service: (port conflicts, connections), summed
    /// over workers.
    fn laddr_stats(&self, _service: &ServiceKey, _addr: IpAddr) -> (u64, u64) {
        (0, 0)
    }
    /// Every worker's connection entries (`-Lc`).
    fn connections(&self) -> ConnectionListing {
        ConnectionListing::default()
    }
    /// Port and queue counters (`gwctl link`).
    fn links(&self) -> Vec<LinkInfo> {
        Vec::new()
    }
    /// Per-worker packet and drop counters (`gwctl stats`).
    fn worker_stats(&self) -> Vec<WorkerStats> {
        Vec::new()
    }
    /// The workers' sync counters, summed (`gwctl sync`).
    fn worker_sync(&self) -> WorkerSyncStats {
        sum_worker_sync([])
    }
    /// The capacity of the connection tables, summed over workers (`size=` of `-L`).
    fn conn_table_size(&self) -> u64;
}

/// The sum of workers' sync counters, every refusal reason listed.
pub fn sum_worker_sync<'a>(workers: impl IntoIterator<Item = &'a WorkerSyncCounters>) -> WorkerSyncStats {
    let mut refused = [0u64; Refusal::COUNT];
    let mut sum = WorkerSyncStats::default();
    for w in workers {
        sum.queued += w.queued.get();
        sum.queue_full += w.queue_full.get();
        sum.installed += w.installed.get();
        sum.updated += w.updated.get();
        for (total, counter) in refused.iter_mut().zip(&w.refused) {
            *total += counter.get();
        }
    }
    sum.refused = Refusal::ALL.iter().map(|r| (r.name().to_string(), refused[r.index()])).collect();
    sum
}

/// `-Lc`'s rows, and why the listing misses some if it does (a worker that did not answer,
/// a listing cut at its bound): a listing is never silently short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionListing {
    pub connections: Vec<ConnectionInfo>,
    pub incomplete: Vec<String>,
}

/// The view of a gateway whose dataplane is not running: no traffic has been seen, so
/// every counter is zero and every table is empty. The connection table size is the
/// configured capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDataplane {
    pub conn_table_size: u64,
}

impl Default for NoDataplane {
    /// IPVS's default table size (`size=4096`), so listings look as users expect.
    fn default() -> Self {
        NoDataplane { conn_table_size: 4096 }
    }
}

impl DataplaneView for NoDataplane {
    fn conn_table_size(&self) -> u64 {
        self.conn_table_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_sync_counters_are_summed_with_every_refusal_named() {
        let (a, b) = (WorkerSyncCounters::default(), WorkerSyncCounters::default());
        a.queued.add(3);
        b.queued.add(4);
        a.queue_full.inc();
        b.installed.add(5);
        a.updated.add(2);
        a.refuse(Refusal::NoDest);
        b.refuse(Refusal::NoDest);
        b.refuse(Refusal::Stale);
        let sum = sum_worker_sync([&a, &b]);
        assert_eq!((sum.queued, sum.queue_full, sum.installed, sum.updated), (7, 1, 5, 2));
        let refused: Vec<(&str, u64)> = sum.refused.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(
            refused,
            vec![
                ("no_service", 0),
                ("no_dest", 2),
                ("no_local_address", 0),
                ("port_in_use", 0),
                ("table_full", 0),
                ("conflict", 0),
                ("stale", 1),
                ("unsupported", 0)
            ]
        );
        assert_eq!(NoDataplane::default().worker_sync().refused.len(), Refusal::COUNT);
    }
}
