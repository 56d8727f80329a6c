//! The gateway: a DPDK poll-mode layer-4 load balancer in the LVS tradition.
//!
//! One module per concern, data flowing top to bottom (see `shared/DESIGN.md`):
//! `daemon` assembles the process; `control` applies requests to the `model`
//! and publishes it to the `worker`s, which forward with `sched`, `synproxy`,
//! `conn`, `xmit` (the per-mode rewrites), `net` (the gateway's own addresses)
//! and `wire` (typed views over bytes). `sync` holds connection sync between
//! directors (so far its datagram format). `dpdk` holds the only `unsafe` code:
//! the wrapper over the EAL, and the connection table's huge-page arrays;
//! everything else is safe Rust written against [`frame::Frame`], so it runs on
//! a plain byte buffer in tests, fuzzers and the instruction-count benchmark.

pub mod conn;
pub mod control;
#[cfg(feature = "dpdk")]
pub mod daemon;
// The one module allowed `unsafe` (the workspace denies it everywhere else). Its EAL
// wrapper needs the `dpdk` feature; its huge-page arrays (`dpdk::hugemem`), software
// prefetch (`dpdk::prefetch`) and 16-byte blocks in vector registers (`dpdk::block`)
// do not.
#[allow(unsafe_code)]
pub mod dpdk;
pub mod frame;
pub mod health;
#[cfg(feature = "dpdk")]
pub mod local;
pub mod logging;
pub mod model;
pub mod net;
pub mod sched;
pub mod stats;
pub mod sync;
pub mod synproxy;
pub mod wire;
pub mod worker;
pub mod xmit;
