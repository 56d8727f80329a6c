//! What the control plane reads from the running dataplane: connection entries, local
//! address usage, port counters and per-worker drop counters. The dataplane implements
//! [`DataplaneView`]; the control plane only reads through it (and asks it to zero
//! counters), so listing never blocks a worker.
//!
//! Connection counts (ActiveConn, InActConn, PersistConn) and traffic counters (`--stats`,
//! `--rate`, `-Z`) are not here: they live in the model's per-server and per-service
//! counters, which the snapshot carries.

use std::net::IpAddr;

use gwapi::api::{ConnectionInfo, LinkInfo, WorkerStats};

use crate::model::ServiceKey;

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
    /// The capacity of the connection tables, summed over workers (`size=` of `-L`).
    fn conn_table_size(&self) -> u64;
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
