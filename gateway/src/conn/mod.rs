//! The per-worker connection table, the TCP/UDP state machine and its timers.
