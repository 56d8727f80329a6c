//! Health checks of real servers, with keepalived's checker semantics.
//!
//! - [`check`]: a check as the checker runs it ([`Check`]), validated from the API's
//!   [`gwapi::health::HealthCheckConfig`];
//! - [`engine`]: the state machine on a given clock: when each server is due, what an
//!   outcome makes of it (`delay_loop`, `retry`, `delay_before_retry`, `rise`);
//! - [`probe`]: the seam [`Prober`], and what every prober shares (the HTTP and UDP
//!   judges, the MISC script runner);
//! - [`path`]: [`PathProber`], which probes along each server's forwarding path, from the
//!   gateway's own addresses through a worker, on a TCP/IP stack in process (smoltcp);
//! - [`routes`]: how each server is reached now, from the configuration the workers run
//!   (the path prober's [`path::RouteResolver`]);
//! - [`tls`]: the https check's TLS client (rustls, no certificate verification, as
//!   keepalived's `SSL_GET`);
//! - [`md5`]: the HTTP check's digest, as keepalived's `genhash` computes it;
//! - [`passive`]: passive detection (DPVS's `dest-check`): the policy that inhibits a server
//!   whose new connections keep failing in the datapath, with an exponential back-off;
//! - [`runner`]: the checker's thread (a std thread beside the control server, never a
//!   worker): it starts due probes, feeds their outcomes to the engine and hands each
//!   transition to the control plane, which changes the weight by the normal atomic publish
//!   (`control::health`).
//!
//! Each server has at most one probe in flight, bounded by its check's timeout, and the
//! first probes are spread over the delay loop. gatewayd's path prober carries all its
//! probes on one thread; a blocking prober (a MISC script) runs each on a thread of its own.

pub mod check;
pub mod engine;
pub mod md5;
pub mod passive;
pub mod path;
pub mod probe;
pub mod routes;
pub mod runner;
pub mod tls;

pub use check::{Check, CheckError};
pub use engine::{Engine, Health, Outcome, ProbeJob, TargetKey, TargetStatus, Transition};
pub use path::PathProber;
pub use probe::Prober;
pub use runner::Checker;
