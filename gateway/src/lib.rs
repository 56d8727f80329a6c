//! The gateway: a DPDK poll-mode layer-4 load balancer in the LVS tradition.
//!
//! Data flows top to bottom through the modules (see `shared/DESIGN.md`):
//! `dpdk` (the only `unsafe` wrapper over the EAL) feeds frames to `wire`
//! (typed views over bytes) and `xmit` (the per-mode rewrites), steered by
//! `service`, `sched` and `conn`. Everything but `dpdk` is safe Rust that is
//! written against [`frame::Frame`], so it runs on a plain byte buffer in
//! tests, fuzzers and the instruction-count benchmark.

#[cfg(feature = "dpdk")]
pub mod daemon;
// The one module allowed `unsafe` (the workspace denies it everywhere else).
pub mod conn;
pub mod control;
#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;
pub mod frame;
pub mod net;
pub mod sched;
pub mod service;
pub mod stats;
pub mod synproxy;
pub mod wire;
pub mod worker;
pub mod xmit;
