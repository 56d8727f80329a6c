//! The control API of the gateway, shared by `gatewayd` and `gwctl`: what goes over the
//! control socket and how, and the ipvsadm command language both programs read. Pure Rust,
//! serde only, so `gwctl` builds without the data plane.
//!
//! - [`api`]: the request and reply types (serde), versioned.
//! - [`protocol`]: framing (one newline-terminated JSON object each way per connection) and
//!   layered decoding with a specific error for each kind of bad request.
//! - [`client`]: the client end of the socket (the server is `gateway::control::server`).
//! - [`cmdline`], [`names`]: ipvsadm's command line and rule files (`-S`/`-R` format), and
//!   the host and service names they may use; `gwctl` parses commands with them and
//!   `gatewayd` its configuration file's `services`.
//! - [`addr`]: addresses as users write them (netmask arithmetic, link-layer address text).
//! - [`socket_path`]: where the two programs meet.

pub mod addr;
pub mod api;
pub mod client;
pub mod cmdline;
pub mod health;
pub mod names;
pub mod protocol;

use std::ffi::OsStr;
use std::path::PathBuf;

pub use client::{Client, ClientError};

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
