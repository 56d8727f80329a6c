//! The per-worker connection table, the TCP/UDP state machine and its timers.
//!
//! - [`state`]: IPVS's TCP state table and the per-state timeouts (`--set tcp tcpfin udp`).

pub mod state;

pub use state::{tcp_flags, tcp_transition, Direction, State, Timeouts};
