//! Health checks of real servers, with keepalived's checker semantics.
//!
//! - [`check`]: a check as the checker runs it ([`Check`]), validated from the API's
//!   [`gwapi::health::HealthCheckConfig`];
//! - [`engine`]: the state machine on a given clock: when each server is due, what an
//!   outcome makes of it (`delay_loop`, `retry`, `delay_before_retry`, `rise`);
//! - [`probe`]: the seam [`Prober`] and [`SocketProber`], which probes with kernel sockets
//!   from gatewayd's network namespace (as keepalived does);
//! - [`md5`]: the HTTP check's digest, as keepalived's `genhash` computes it;
//! - [`runner`]: the checker's thread (a std thread beside the control server, never a
//!   worker): it runs due probes, feeds their outcomes to the engine and hands each
//!   transition to the control plane, which changes the weight by the normal atomic publish
//!   (`control::health`).
//!
//! The checker runs one thread per probe in flight, each bounded by its check's timeout: few
//! at a time, since each server has at most one probe in flight and the first probes are
//! spread over the delay loop.

pub mod check;
pub mod engine;
pub mod md5;
pub mod probe;
pub mod runner;

pub use check::{Check, CheckError};
pub use engine::{Engine, Health, Outcome, ProbeJob, TargetKey, TargetStatus, Transition};
pub use probe::{Prober, SocketProber};
pub use runner::Checker;
