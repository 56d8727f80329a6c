//! The control plane: the API shared by `gatewayd` and `gwctl`, the Unix-socket server, and
//! the code that applies requests to the configuration model.
//!
//! - [`api`]: the request and reply types (serde), versioned.
//! - [`protocol`]: framing (one newline-terminated JSON object each way per connection) and
//!   layered decoding with a specific error for each kind of bad request.
//! - [`apply`]: [`ControlState`], which validates each request in full against a private copy
//!   of the configuration, publishes the result and only then makes it current.
//! - [`publish`]: the seam to the workers ([`SnapshotSink`]) and a channel-based
//!   implementation ([`publish::broadcast`]) whose mailboxes workers poll between bursts.
//! - [`dataplane`]: the read-only seam to counters the workers keep ([`DataplaneView`]).
//! - [`query`]: questions answered by every worker between bursts (its connection table).
//! - [`net`]: the gateway's addresses, routes and neighbours as configuration.
//! - [`bridge`]: the network configuration as the workers' `NetView`, and `gwctl stats`
//!   from the workers' own counters.
//! - [`server`], [`client`]: the two ends of the socket.
//! - [`cmdline`], [`names`]: ipvsadm's command line and rule files (`-S`/`-R` format), and
//!   the host and service names they may use; shared by `gwctl` and `gatewayd`'s
//!   configuration file.
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
//! let path = control::socket_path(None); // --socket, else $GATEWAYD_SOCKET, else the default
//! let server = ControlServer::bind(ServerOptions::new(path), state)?.spawn()?;
//! // ... at exit:
//! server.shutdown();
//! # Ok(()) }
//! ```

pub mod api;
pub mod apply;
pub mod bridge;
pub mod client;
pub mod cmdline;
pub mod dataplane;
pub mod names;
pub mod net;
pub mod protocol;
pub mod publish;
pub mod query;
pub mod server;

use std::ffi::OsStr;
use std::path::PathBuf;

pub use apply::ControlState;
pub use client::{Client, ClientError};
pub use dataplane::{ConnectionListing, DataplaneView, NoDataplane};
pub use net::NetConfig;
pub use publish::{GatewayConfig, NoWorkers, PublishError, ServiceFlags, SnapshotSink};
pub use server::{ControlServer, ControlSocket, ServerHandle, ServerOptions};

/// Where `gatewayd` listens and `gwctl` connects unless told otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/gatewayd/gatewayd.sock";

/// The environment variable both programs read for the socket path.
pub const SOCKET_ENV: &str = "GATEWAYD_SOCKET";

/// The control socket path: the `--socket` flag if given, else `$GATEWAYD_SOCKET` if set and
/// not empty, else [`DEFAULT_SOCKET_PATH`].
pub fn socket_path(flag: Option<&OsStr>) -> PathBuf {
    if let Some(p) = flag {
        return PathBuf::from(p);
    }
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_SOCKET_PATH),
    }
}
