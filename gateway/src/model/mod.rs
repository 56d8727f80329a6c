//! The configuration model: virtual services, real servers, local-address pools, and the
//! gateway's own network configuration.
//!
//! - [`types`]: the model's vocabulary (protocols, forwarding methods, scheduler names,
//!   service keys, service and real-server specs); the API's own is `gwapi::api`.
//! - [`error`]: what a rejected edit says.
//! - [`snapshot`]: the immutable snapshot workers read, and the editor that makes the next.
//! - [`counters`]: the per-real-server connection counters shared by all workers.
//! - [`laddr`]: per-worker local-address port pools for FNAT.
//! - [`persist`]: per-worker persistence templates.
//! - [`net`]: the gateway's addresses, routes and static neighbours ([`NetConfig`]), and
//!   the same as the workers route with it ([`NetView`]).
//! - [`fasthash`]: the fast, unseeded hasher of maps whose keys the operator controls.

pub mod counters;
pub mod error;
pub mod fasthash;
pub mod laddr;
pub mod net;
pub mod persist;
pub mod snapshot;
pub mod types;

pub use counters::DestCounters;
pub use error::ConfigError;
pub use laddr::{LaddrPools, PortPartition, PortPool};
pub use net::{NetConfig, NetView, NetView6, PortView, PortView6};
pub use persist::{PersistTable, TemplateKey};
pub use snapshot::{Dest, LocalAddr, Service, ServiceId, Snapshot, SnapshotEditor};
pub use types::{
    DestSpec, ForwardMethod, MarkRule, Persistence, Protocol, SchedulerKind, ServiceKey, ServiceSpec, SockAddr,
};
