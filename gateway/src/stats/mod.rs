//! Counters written by workers and read by the control thread: the single-writer
//! [`Counter`] and the per-service and per-server [`Traffic`] counters.

pub mod counter;
pub mod traffic;

pub use counter::Counter;
pub use traffic::{Estimator, Rates, Totals, Traffic, TrafficCounts, ESTIMATE_INTERVAL};
