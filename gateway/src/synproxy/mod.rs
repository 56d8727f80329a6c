//! The SYN proxy: SYN cookies answered by the gateway, so real servers see
//! only clients that completed a handshake.
//!
//! - [`cookie`]: the keyed SYN cookies (SipHash-2-4, rotating per-period
//!   secrets, MSS table, window scale and SACK in the TSval).
//! - [`siphash`]: the keyed hash.

pub mod cookie;
pub mod counters;
pub mod handshake;
pub mod siphash;

pub use cookie::{CookieError, CookieInput, Decoded, SynCookies, TsOptions, MSS_TABLE};
pub use counters::SynProxyCounters;
pub use handshake::{
    parse_client_ack, parse_server_synack, server_ack_in_place, server_syn_in_place, synack_in_place, ClientAck,
    HandshakeError, ProxyDeltas, ServerSynAck, SynAckConfig,
};
