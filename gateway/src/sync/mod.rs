//! Connection sync between directors (ipvsadm's `--start-daemon master|backup`): a master
//! multicasts the connections it carries so a backup can carry them on after a failover.
//!
//! The parts, each in its own file:
//!
//! - [`wire`]: the datagram, IPVS's sync protocol version 1 with our options for FNAT and the
//!   SYN proxy.
//! - [`queue`]: the bounded queues between the workers and the sync daemon. A worker pushes
//!   a [`wire::Record`] (of the connection's family) for a connection that needs syncing (it never blocks or allocates:
//!   a full queue is a counted drop) and takes the records a backup daemon received for the
//!   connections it is to carry, between bursts.
//! - [`owner`]: which worker of a backup carries a received connection.
//! - [`daemon`]: the daemons (threads of gatewayd, not workers): as master it batches the workers'
//!   records into datagrams and multicasts them on the `--mcast-interface`, a kernel
//!   exception interface; as backup it receives the group's datagrams there, checks them and
//!   hands each record to its owning worker.
//!
//! When a worker syncs a connection (IPVS's rules, adapted to a table that keeps no packet
//! count per entry):
//!
//! - TCP: when it becomes ESTABLISHED (never in SYN_RECV: a SYN flood is not synced), then
//!   on every later state change; a connection that never reached ESTABLISHED is not synced.
//! - UDP: at its first reply (NAT, FNAT) or its first re-filing (DR, TUN: no replies seen), so
//!   a one-packet flow is never synced.
//! - Then again each time its timer wheel re-files it (a packet moved its deadline since it was
//!   filed): at most once per timeout, with the time it has left. A backup keeps a synced
//!   connection for that time plus [`BACKUP_GRACE_SECS`], so the next refresh finds it alive.
//!
//! A record carries the time left, not IPVS's full state timeout, so the backup's deadline
//! follows the master's.

pub mod daemon;
pub mod owner;
pub mod queue;
pub mod record;
pub mod wire;

/// Seconds a backup keeps a synced connection past the time its record gave it: the master
/// refreshes a connection when its timer wheel reaches the previous deadline, so the refresh
/// arrives just after that deadline.
pub const BACKUP_GRACE_SECS: u32 = 60;
