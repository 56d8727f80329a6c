//! The gateway's own traffic beyond what the workers answer themselves
//! (DESIGN.md, "The gateway's own traffic"): the kernel exception
//! interfaces, the main lcore's loop that carries packets between them and
//! the ports, the addresses the kernel interfaces hold, and the VIPs put on
//! one of them to be announced by a routing daemon.
//!
//! Workers decide what leaves the fast path ([`crate::net::exception`]) and
//! hand it over rings ([`crate::worker::lcore::KernelRings`]); everything
//! here runs on the main lcore, never on a worker.

pub mod announce;
pub mod exception;
pub mod held;
pub mod kernel_iface;
pub mod probe_link;
