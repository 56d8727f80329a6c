//! Health checks of real servers on the wire: a check's configuration (`gwctl --health`, the
//! `"health"` key of gatewayd's configuration file) and the checker's state as
//! `gwctl --health -L` lists it.
//!
//! The vocabulary is keepalived's: `delay_loop`, `connect_timeout`, `retry`,
//! `delay_before_retry`, `inhibit_on_failure`, and its checkers `TCP_CHECK`, `HTTP_GET`
//! (with `genhash`'s MD5 `digest`), `UDP_CHECK` and `MISC_CHECK` (with `misc_dynamic`), plus
//! `rise`, the successes a down server needs before it is up again. Durations travel in
//! milliseconds so a command line's `0.5` survives; their defaults are keepalived's.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::api::VirtualService;

/// keepalived's `delay_loop` default: a check a minute.
pub const DEFAULT_DELAY_LOOP_MS: u64 = 60_000;
/// keepalived's `connect_timeout` default.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// keepalived's `delay_before_retry` default.
pub const DEFAULT_DELAY_BEFORE_RETRY_MS: u64 = 1_000;
/// keepalived's `retry` default (its MISC_CHECK's is 0: [`HealthCheckConfig::new`]).
pub const DEFAULT_RETRY: u32 = 1;
/// The bounds a duration must lie in: shorter would probe a server thousands of times a
/// second, longer is a typo (a day).
pub const MIN_INTERVAL_MS: u64 = 10;
pub const MAX_INTERVAL_MS: u64 = 86_400_000;
/// The most retries and rises: past that the check would take hours to decide.
pub const MAX_COUNT: u32 = 1000;

/// What a check asks of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckKind {
    /// A TCP connection to the server's address and port opens within the connect timeout.
    Tcp,
    /// `GET path` answered with `status` and, when `digest` is given, a body whose MD5 is it
    /// (32 hex digits, as keepalived's `genhash` prints it).
    Http {
        path: String,
        /// The `Host` header; absent: the server's address.
        #[serde(default)]
        host: Option<String>,
        #[serde(default = "default_status")]
        status: u16,
        #[serde(default)]
        digest: Option<String>,
    },
    /// `payload` sent in one datagram; up if a reply containing `expect` comes back within
    /// the timeout, or (without `expect`) if no ICMP port unreachable does.
    Udp {
        #[serde(default)]
        payload: String,
        #[serde(default)]
        expect: Option<String>,
    },
    /// `script` run with the server in its environment (`GW_SERVER_ADDR`, `GW_SERVER_PORT`,
    /// `GW_SERVICE`), killed at the timeout: exit 0 up, else down; with `dynamic`
    /// (keepalived's `misc_dynamic`) exit 1 down and 2..255 up with weight `exit - 2`.
    Misc {
        script: String,
        #[serde(default)]
        dynamic: bool,
    },
}

fn default_status() -> u16 {
    200
}

impl CheckKind {
    /// The check's name as `--check` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Misc { .. } => "misc",
        }
    }
}

/// What a failed server becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// keepalived's `inhibit_on_failure`: weight 0, its connections live on (the default).
    Inhibit,
    /// Out of the service until it recovers (keepalived without `inhibit_on_failure`).
    Remove,
}

/// One check with its timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    pub kind: CheckKind,
    /// Between two checks of a server.
    #[serde(default = "default_delay_loop")]
    pub delay_loop_ms: u64,
    /// The bound of one probe: the connection, the exchange, a script's run.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Failures after the first before an up server is down.
    #[serde(default = "default_retry")]
    pub retry: u32,
    /// Between a failure and its retry.
    #[serde(default = "default_delay_before_retry")]
    pub delay_before_retry_ms: u64,
    /// Successes in a row before a down server is up again.
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_on_failure")]
    pub on_failure: OnFailure,
}

fn default_delay_loop() -> u64 {
    DEFAULT_DELAY_LOOP_MS
}
fn default_connect_timeout() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_retry() -> u32 {
    DEFAULT_RETRY
}
fn default_delay_before_retry() -> u64 {
    DEFAULT_DELAY_BEFORE_RETRY_MS
}
fn default_rise() -> u32 {
    1
}
fn default_on_failure() -> OnFailure {
    OnFailure::Inhibit
}

impl HealthCheckConfig {
    /// `kind` with keepalived's defaults (a MISC check does not retry).
    pub fn new(kind: CheckKind) -> HealthCheckConfig {
        let retry = if matches!(kind, CheckKind::Misc { .. }) { 0 } else { DEFAULT_RETRY };
        HealthCheckConfig {
            kind,
            delay_loop_ms: DEFAULT_DELAY_LOOP_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            retry,
            delay_before_retry_ms: DEFAULT_DELAY_BEFORE_RETRY_MS,
            rise: 1,
            on_failure: OnFailure::Inhibit,
        }
    }
}

/// Whether the checker counts a server in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Up,
    Down,
}

/// One checked server in `gwctl --health -L`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub service: VirtualService,
    pub addr: IpAddr,
    pub port: u16,
    pub check: HealthCheckConfig,
    /// The check is the service's, not one of this server's own.
    pub inherited: bool,
    pub state: HealthState,
    /// The weight the operator configured (`-a`/`-e -w`).
    pub configured_weight: u32,
    /// The weight the workers schedule with now: 0 while down and inhibited, a dynamic MISC
    /// check's weight; `None` while removed from the service.
    pub weight: Option<u32>,
    /// The last probe's result ("ok", "failed"); `None` before the first.
    #[serde(default)]
    pub last_result: Option<String>,
    /// Why the last probe failed or what it saw ("connection refused", "status 404").
    #[serde(default)]
    pub reason: String,
    /// Seconds since the server last changed state; `None`: it never has.
    #[serde(default)]
    pub since_change_secs: Option<u64>,
    /// Probes run, of which failed, and state changes.
    pub checks: u64,
    pub failures: u64,
    pub transitions: u64,
}
