//! The control plane's server side: the Unix-socket server, and the code that applies
//! requests to the configuration model and publishes it to the workers. The API it speaks
//! (requests, replies, framing, the client, the ipvsadm language) is the `gwapi` crate.
//!
//! - [`apply`]: [`ControlState`], which validates each request in full against a private copy
//!   of the configuration, publishes the result and only then makes it current.
//! - [`mailbox`]: the one channel to the workers: the control thread posts a request to every
//!   worker's slot, each answers between bursts, and the answers are collected with a deadline.
//! - [`publish`]: the seam to the workers ([`SnapshotSink`]) and its implementation on the
//!   mailbox ([`publish::broadcast`]): every worker switches to the newest configuration.
//! - [`dataplane`]: the read-only seam to counters the workers keep ([`DataplaneView`]).
//! - [`health`]: the configured health checks and the servers the checker holds at another
//!   weight than their configured one.
//! - [`query`]: questions every worker answers through the mailbox (its connection table, its
//!   port pools).
//! - [`server`]: the server end of the socket.
//!
//! Embedding in `gatewayd`:
//!
//! ```no_run
//! use gateway::control::{self, ControlServer, ControlState, GatewayConfig, ServerOptions};
//! # fn main() -> std::io::Result<()> {
//! let initial = GatewayConfig::empty();
//! let (sink, _mailboxes) = control::publish::broadcast(2, &initial, std::time::Duration::from_secs(2));
//! // ... one mailbox per worker, which calls `mailbox.poll(|update| ...)` between bursts ...
//! let state = ControlState::new(initial, Box::new(sink), Box::new(control::NoDataplane::default()));
//! let path = gwapi::socket_path(None); // --socket, else $GATEWAYD_SOCKET, else the default
//! let server = ControlServer::bind(ServerOptions::new(path), state)?.spawn()?;
//! // ... at exit:
//! server.shutdown();
//! # Ok(()) }
//! ```

pub mod apply;
pub mod dataplane;
pub mod health;
pub mod mailbox;
pub mod publish;
pub mod query;
pub mod server;

pub use apply::ControlState;
pub use dataplane::{ConnectionListing, DataplaneView, NoDataplane};
pub use publish::{GatewayConfig, NoWorkers, PublishError, SnapshotSink};
pub use server::{ControlServer, ControlSocket, HealthInput, HeldInput, ServerHandle, ServerOptions};
