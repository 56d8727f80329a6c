//! The per-worker connection table, the TCP/UDP state machine and its timers.
//!
//! - [`director`]: everything a worker owns to place connections (snapshot view,
//!   schedulers, port pools, templates, table) and the new-connection path.
//! - [`table`]: the table itself (slab of 64-byte entries, open-addressing index over both
//!   directions' 5-tuples, lazy timer wheel, per-server counters kept in step).
//! - [`proxy_protocol`]: when a connection's PROXY protocol header goes and how it shifts the
//!   client's numbers (its state is beside the table, not in the entry).
//! - [`key`]: 5-tuple keys generic over the address family, and their seeded hash.
//! - [`state`]: IPVS's TCP state table and the per-state timeouts (`--set tcp tcpfin udp`).
//! - [`timer`]: the timer wheel.

pub mod director;
pub mod key;
pub mod proxy_protocol;
pub mod state;
pub mod table;
pub mod timer;

pub use director::{Director, DirectorConfig, DirectorStats, Refused};
pub use key::{Family, FlowKey, HashSeed};
pub use state::{tcp_flags, tcp_transition, Direction, State, Timeouts};
pub use table::{Conn, ConnId, ConnTable, InsertError, NewConn, Proxy, TableBacking, TableStats, NO_TEMPLATE};
