//! Health checks of real servers on the wire: a check's configuration (`gwctl --health`, the
//! `"health"` key of gatewayd's configuration file) and the checker's state as
//! `gwctl --health -L` lists it.
//!
//! The vocabulary is keepalived's: `delay_loop`, `connect_timeout`, `retry`,
//! `delay_before_retry`, `inhibit_on_failure`, and its checkers `TCP_CHECK`, `HTTP_GET`
//! (with `genhash`'s MD5 `digest`), `SSL_GET`, `UDP_CHECK` and `MISC_CHECK` (with `misc_dynamic`), plus
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
    /// (32 hex digits, as keepalived's `genhash` prints it). With `tls` (`--check https`,
    /// keepalived's `SSL_GET`) the request goes over TLS, with `host` as the SNI when given;
    /// the server's certificate is not verified, as keepalived's `SSL_GET` does not by
    /// default: the check asks whether the server answers, not who it is.
    Http {
        path: String,
        /// The `Host` header; absent: the server's address.
        #[serde(default)]
        host: Option<String>,
        #[serde(default = "default_status")]
        status: u16,
        #[serde(default)]
        digest: Option<String>,
        #[serde(default)]
        tls: bool,
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
            CheckKind::Http { tls: false, .. } => "http",
            CheckKind::Http { tls: true, .. } => "https",
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

/// Passive detection's defaults: inhibited after 3 new connections failed with no success
/// between, for 5 s, doubled on each repeat up to 5 min.
pub const DEFAULT_PASSIVE_FAILURES: u32 = 3;
pub const DEFAULT_PASSIVE_BACKOFF_MS: u64 = 5_000;
pub const DEFAULT_PASSIVE_MAX_BACKOFF_MS: u64 = 300_000;

/// Passive detection of a service's failing servers (DPVS's `dest-check`): a server whose
/// new connections keep failing in the datapath (its RST to the SYN, a handshake timing
/// out, UDP without a reply) is inhibited (weight 0) for a back-off that doubles on each
/// repeat, then tried again; a connection that succeeds resets it. Off unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassiveConfig {
    /// New connections failed in a row (no success between) that inhibit a server.
    #[serde(default = "default_passive_failures")]
    pub failures: u32,
    /// The first inhibition's length.
    #[serde(default = "default_passive_backoff")]
    pub backoff_ms: u64,
    /// The longest one (the doubling stops there).
    #[serde(default = "default_passive_max_backoff")]
    pub max_backoff_ms: u64,
}

fn default_passive_failures() -> u32 {
    DEFAULT_PASSIVE_FAILURES
}
fn default_passive_backoff() -> u64 {
    DEFAULT_PASSIVE_BACKOFF_MS
}
fn default_passive_max_backoff() -> u64 {
    DEFAULT_PASSIVE_MAX_BACKOFF_MS
}

impl Default for PassiveConfig {
    fn default() -> PassiveConfig {
        PassiveConfig {
            failures: DEFAULT_PASSIVE_FAILURES,
            backoff_ms: DEFAULT_PASSIVE_BACKOFF_MS,
            max_backoff_ms: DEFAULT_PASSIVE_MAX_BACKOFF_MS,
        }
    }
}

impl PassiveConfig {
    /// Why the configuration is refused, if it is: failures 1 to [`MAX_COUNT`], back-offs
    /// within [`MIN_INTERVAL_MS`]..=[`MAX_INTERVAL_MS`], the longest not under the first.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_COUNT).contains(&self.failures) {
            return Err(format!("passive failures {} out of range 1..{MAX_COUNT}", self.failures));
        }
        for (what, ms) in [("back-off", self.backoff_ms), ("longest back-off", self.max_backoff_ms)] {
            if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms) {
                return Err(format!(
                    "passive {what} {} s out of range {} to {} s",
                    ms as f64 / 1000.0,
                    MIN_INTERVAL_MS as f64 / 1000.0,
                    MAX_INTERVAL_MS / 1000
                ));
            }
        }
        if self.max_backoff_ms < self.backoff_ms {
            return Err(format!(
                "passive longest back-off {} s is shorter than the first, {} s",
                self.max_backoff_ms as f64 / 1000.0,
                self.backoff_ms as f64 / 1000.0
            ));
        }
        Ok(())
    }
}

/// A real server's new connections by how the datapath saw them end (counted whether or
/// not passive detection is on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassiveCounts {
    /// Answered by the server's RST (NAT, FNAT).
    pub refused: u64,
    /// The handshake timed out.
    pub timed_out: u64,
    /// UDP with no reply until it expired (NAT, FNAT).
    pub unanswered: u64,
    /// Reached ESTABLISHED, or (UDP) got a reply.
    pub succeeded: u64,
}

/// Where passive detection holds a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassiveState {
    /// Taking connections, judged by them.
    Serving,
    /// Inhibited until its back-off ends.
    Down,
    /// Back after a back-off (or an active check's success): its next new connection
    /// decides, a failure inhibits it again for twice as long.
    Trial,
}

/// Passive detection's view of one server in `gwctl --health -L`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassiveHealth {
    pub config: PassiveConfig,
    pub state: PassiveState,
    /// While down: milliseconds until its trial.
    #[serde(default)]
    pub backoff_left_ms: Option<u64>,
    /// Failures since the last success (or the trial).
    pub streak: u32,
    pub counts: PassiveCounts,
    /// Times it was inhibited.
    pub inhibitions: u64,
    /// Why it was last inhibited or brought back.
    #[serde(default)]
    pub reason: String,
}

/// Whether the checker counts a server in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Up,
    Down,
    /// Up as far as an active check knows (or without one), inhibited by passive detection.
    PassiveDown,
}

/// One checked server in `gwctl --health -L`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    pub service: VirtualService,
    pub addr: IpAddr,
    pub port: u16,
    /// The active check; `None`: only passive detection watches the server.
    #[serde(default)]
    pub check: Option<HealthCheckConfig>,
    /// Passive detection, when its service has it on.
    #[serde(default)]
    pub passive: Option<PassiveHealth>,
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
