//! The configuration model: virtual services, real servers, local-address pools.
//!
//! - [`types`]: the vocabulary shared with `gwctl` (protocols, forwarding methods, scheduler
//!   names, service keys, service and real-server specs).
//! - [`error`]: what a rejected edit says.

pub mod error;
pub mod types;

pub use error::ConfigError;
pub use types::{
    DestSpec, ForwardMethod, MarkRule, Persistence, Protocol, SchedulerKind, ServiceKey,
    ServiceSpec, SockAddr,
};
