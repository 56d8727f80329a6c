//! The per-lcore worker: the packet pipeline ([`pipeline`]), its counters
//! ([`counters`]), its heartbeat ([`watchdog`]), its backoff when idle
//! ([`idle`]) and the DPDK poll loop around them (`lcore`, with the `dpdk`
//! feature). The pipeline itself is pure Rust, so it is tested and
//! benchmarked on byte buffers.

pub mod counters;
pub mod idle;
#[cfg(feature = "dpdk")]
pub mod lcore;
pub mod pipeline;
pub mod watchdog;

#[cfg(test)]
mod tests;

pub use counters::{Counter, Discard, WorkerCounters};
pub use pipeline::{FrameBurst, Io, Worker, WorkerConfig, WorkerError, STAGE, STAGED_FROM};
