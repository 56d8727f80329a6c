//! The configuration file of `gatewayd` (`--config FILE`). JSON; unknown keys and bad values
//! are refused before anything starts, with the key and the value in the message. Addresses,
//! routes and static neighbours from the file become the initial network configuration, so
//! `gwctl addr/route/neigh show` list them and `gwctl` can change them; its `services` are
//! ipvsadm command lines (`gwapi::cmdline`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use gwapi::addr::LinkAddr;
use gwapi::api::{Change, InterfaceAddr, NeighbourConfig, RouteConfig, SyncDaemonConfig};
use gwapi::cmdline;
use gwapi::names::Names;

use crate::control::GatewayConfig;
use crate::model::{NetConfig, Snapshot};
use crate::net::exception::KernelRate;
use crate::net::IpCidr;
use crate::sync::daemon::DaemonSpec;
use crate::synproxy;
use crate::worker::idle::IdleMode;

/// The configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// EAL arguments, as on a DPDK command line (lcores, devices, memory).
    pub eal: Vec<String>,
    pub ports: Vec<PortSpec>,
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    #[serde(default)]
    pub neighbours: Vec<NeighbourSpec>,
    /// Connections per worker.
    #[serde(default = "default_conn_capacity")]
    pub conn_capacity: u32,
    /// Live connections of a worker (both families) from which it takes each rx burst
    /// in stages, prefetching the connections' lines ahead (see
    /// [`crate::worker::WorkerConfig::staged_from`]); 0 stages every burst.
    #[serde(default = "default_staged_from")]
    pub staged_from: u64,
    /// Mbufs in the pool (default: enough for every queue plus traffic).
    #[serde(default)]
    pub mbufs: Option<u32>,
    /// The control socket (else `--socket`, `$GATEWAYD_SOCKET`, the default).
    #[serde(default)]
    pub control_socket: Option<String>,
    /// Connection timeouts in seconds, as `ipvsadm --set` (0 or absent: the default).
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// Services to start with: one ipvsadm rule per entry, as `gwctl -S` prints them
    /// (`"-A -t 10.0.0.100:80 -s rr"`, `"-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -b"`).
    #[serde(default)]
    pub services: Vec<String>,
    /// Health checks of the services' real servers: one `gwctl --health` command line per
    /// entry, with or without the `--health` (`"-t 10.0.0.100:80 --check http --url /"`).
    #[serde(default)]
    pub health: Vec<String>,
    /// What the SYN proxy (`-j enable`) offers and how it treats failures.
    #[serde(default)]
    pub synproxy: SynProxySpec,
    /// When a worker counts as stalled, and what a stopped or stalled worker does to the daemon.
    #[serde(default)]
    pub watchdog: WatchdogSpec,
    /// Packets per second the workers together hand to each port's kernel
    /// interface, by class: `{"control": 5000, "bulk": 20000}` (the defaults;
    /// either may be left out). See [`crate::net::exception`].
    #[serde(default)]
    pub kernel_rate: KernelRateSpec,
    /// Where the Prometheus exporter listens (`"127.0.0.1:9469"`; port 0: any free
    /// port, which gatewayd prints); absent: no exporter. See [`super::metrics`].
    #[serde(default, deserialize_with = "listen_addr")]
    pub metrics: Option<SocketAddr>,
    /// The least severe log lines written: `"error"`, `"warn"`, `"info"` (the default),
    /// `"debug"` or `"trace"`; `$GATEWAYD_LOG` overrides it. See [`crate::logging`].
    #[serde(default = "default_log_level", deserialize_with = "log_level")]
    pub log_level: log::LevelFilter,
    /// What a worker does when a poll finds nothing: `"poll"` (the default: poll
    /// again at once, a whole core per worker) or `"sleep"` (back off, up to a
    /// millisecond, so other programs get the cores). See [`crate::worker::idle`].
    #[serde(default, deserialize_with = "idle_mode")]
    pub idle: IdleMode,
    /// A port's kernel interface (`"gwk0"`) on which gatewayd puts each VIP it
    /// can serve, as a /32, for a routing daemon to announce; absent: none.
    /// See [`crate::local::announce`].
    #[serde(default)]
    pub announce: Option<String>,
    /// Connection sync daemons started with the gateway, as `gwctl --start-daemon` starts
    /// them: `[{"state": "master", "mcast_interface": "gwk0", "syncid": 7}]`, at most one
    /// master and one backup. The interface is a Linux one (normally a port's kernel
    /// interface); it must exist once the ports are open. See [`crate::sync::daemon`].
    #[serde(default)]
    pub sync: Vec<SyncDaemonConfig>,
}

fn default_log_level() -> log::LevelFilter {
    log::LevelFilter::Info
}

/// `"log_level"`: one of the level names, the others named in the refusal.
fn log_level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<log::LevelFilter, D::Error> {
    let text = String::deserialize(d)?;
    crate::logging::parse_level(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "\"log_level\": {text:?} is not a log level (one of {})",
            crate::logging::LEVEL_NAMES.join(", ")
        ))
    })
}

/// `"idle"`: one of the mode names, the others named in the refusal.
fn idle_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<IdleMode, D::Error> {
    let text = String::deserialize(d)?;
    IdleMode::parse(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "\"idle\": {text:?} is not an idle mode (one of {})",
            IdleMode::NAMES.join(", ")
        ))
    })
}

/// `"metrics"`: an IP address and a port, named in the refusal (serde's own
/// message for a `SocketAddr` names neither the key nor the value).
fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "\"metrics\": {text:?} is not an IP address and port (such as \"127.0.0.1:9469\")"
        ))
    })
}

/// The `watchdog` object: see [`crate::worker::watchdog`].
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchdogSpec {
    /// Seconds a worker's heartbeat may stand still before it counts as stalled.
    pub stall_seconds: u32,
    /// `"exit"` (the default): a stopped or stalled worker makes gatewayd
    /// exit non-zero, so its supervisor restarts it or fails over.
    /// `"continue"`: log it, show it in `gwctl stats`, keep running.
    pub on_failure: OnWorkerFailure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnWorkerFailure {
    Exit,
    Continue,
}

impl Default for WatchdogSpec {
    fn default() -> WatchdogSpec {
        WatchdogSpec { stall_seconds: 5, on_failure: OnWorkerFailure::Exit }
    }
}

/// The `synproxy` object. The SYN-ACK's options must match the real
/// servers': the client keeps them for the whole connection.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynProxySpec {
    /// The MSS the SYN-ACK announces: at most the servers'.
    pub mss: u16,
    /// The window-scale shift announced: the servers' (Linux: 7 with the
    /// default `tcp_rmem`); 0 to 14.
    pub wscale: u8,
    /// The SYN-ACK's window.
    pub window: u16,
    pub sack: bool,
    /// Without timestamps, neither SACK nor window scaling can be offered
    /// (they ride in the cookie's TSval).
    pub timestamps: bool,
    /// SYNs resent to a silent server before the client is reset.
    pub syn_retries: u8,
    /// `"drop"` or `"rst"`: what an ACK with a bad cookie gets.
    pub invalid_ack: InvalidAckSpec,
    /// Handshakes each worker keeps open at once.
    pub handshakes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidAckSpec {
    Drop,
    Rst,
}

impl Default for SynProxySpec {
    fn default() -> SynProxySpec {
        let d = synproxy::Settings::with_seed([0; 16]);
        SynProxySpec {
            mss: d.synack.mss,
            wscale: d.synack.wscale.unwrap_or(0),
            window: d.synack.window,
            sack: d.synack.sack,
            timestamps: d.synack.timestamps,
            syn_retries: d.syn_retries,
            invalid_ack: InvalidAckSpec::Drop,
            handshakes: d.handshakes,
        }
    }
}

impl SynProxySpec {
    /// The workers' settings, with `seed` (the same for all of them).
    pub fn settings(&self, seed: [u8; 16]) -> Result<synproxy::Settings, ConfigError> {
        if !(synproxy::MSS_TABLE[0]..=9000 - 40).contains(&self.mss) {
            return Err(ConfigError(format!("\"synproxy\".\"mss\": {} is not in 536..=8960", self.mss)));
        }
        if self.wscale > synproxy::cookie::MAX_WSCALE {
            return Err(ConfigError(format!("\"synproxy\".\"wscale\": {} is above 14 (RFC 7323)", self.wscale)));
        }
        if self.handshakes == 0 {
            return Err(ConfigError("\"synproxy\".\"handshakes\": 0 leaves no room for a handshake".into()));
        }
        if self.handshakes > synproxy::handshakes::MAX_HANDSHAKES {
            return Err(ConfigError(format!(
                "\"synproxy\".\"handshakes\": {} is above {} (each worker allocates them all at start)",
                self.handshakes,
                synproxy::handshakes::MAX_HANDSHAKES
            )));
        }
        if self.syn_retries > 8 {
            return Err(ConfigError(format!(
                "\"synproxy\".\"syn_retries\": {} would hold a handshake for {} s; at most 8",
                self.syn_retries,
                (1u32 << (self.syn_retries + 1)) - 1
            )));
        }
        let mut s = synproxy::Settings::with_seed(seed);
        s.synack.mss = self.mss;
        s.synack.wscale = Some(self.wscale);
        s.synack.window = self.window;
        s.synack.sack = self.sack;
        s.synack.timestamps = self.timestamps;
        s.syn_retries = self.syn_retries;
        s.invalid_ack = match self.invalid_ack {
            InvalidAckSpec::Drop => synproxy::InvalidAck::Drop,
            InvalidAckSpec::Rst => synproxy::InvalidAck::Reset,
        };
        s.handshakes = self.handshakes;
        Ok(s)
    }
}

/// The `kernel_rate` object: packets per second per port, by class.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelRateSpec {
    pub control: u32,
    pub bulk: u32,
}

impl Default for KernelRateSpec {
    fn default() -> KernelRateSpec {
        let d = KernelRate::default();
        KernelRateSpec { control: d.control, bulk: d.bulk }
    }
}

impl KernelRateSpec {
    /// The workers' rates, each within [`KernelRate::LIMITS`].
    pub fn rate(&self) -> Result<KernelRate, ConfigError> {
        let limits = KernelRate::LIMITS;
        for (class, pps) in [("control", self.control), ("bulk", self.bulk)] {
            if !limits.contains(&pps) {
                return Err(ConfigError(format!(
                    "\"kernel_rate\".\"{class}\": {pps} is not in {}..={} (packets per second per port)",
                    limits.start(),
                    limits.end()
                )));
            }
        }
        Ok(KernelRate { control: self.control, bulk: self.bulk })
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    #[serde(default)]
    pub tcp: u32,
    #[serde(default)]
    pub tcp_fin: u32,
    #[serde(default)]
    pub udp: u32,
    /// How long a half-open connection (SYN_RECV) lives: what a SYN flood's
    /// entries cost before they expire (no ipvsadm option sets it; DPVS's
    /// `syn_recv`).
    #[serde(default)]
    pub syn_recv: u32,
}

fn default_staged_from() -> u64 {
    crate::worker::STAGED_FROM
}

fn default_conn_capacity() -> u32 {
    1 << 20
}

/// One DPDK port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// The DPDK device name (`net_tap0`, a PCI address).
    pub device: String,
    /// The name operators use for it (`gwctl ... dev NAME`, `-F NAME`).
    pub name: String,
    /// Interface addresses, `a.b.c.d/len`.
    #[serde(default)]
    pub addrs: Vec<String>,
    #[serde(default = "default_mtu")]
    pub mtu: u16,
    /// The name of this port's kernel exception interface (`"gwk0"`): gatewayd
    /// creates it (a DPDK `net_tap`) with the port's MAC, MTU and addresses, and
    /// what the datapath does not consume of the gateway's own traffic goes
    /// there (see `local`). Absent: no kernel interface.
    #[serde(default)]
    pub kernel: Option<String>,
}

/// Why `name` cannot be a Linux interface name (`dev_valid_name` in the
/// kernel): 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn interface_name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_INTERFACE_NAME {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is not a name")
    } else if name.contains(['/', ':']) || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("contains '/', ':', whitespace or a control character")
    } else {
        None
    }
}

/// The longest Linux interface name (IFNAMSIZ less its NUL).
pub const MAX_INTERFACE_NAME: usize = 15;

fn default_mtu() -> u16 {
    1500
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// `a.b.c.d/len`.
    pub dst: String,
    #[serde(default)]
    pub via: Option<String>,
    /// A port `name`.
    pub dev: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighbourSpec {
    pub addr: String,
    pub lladdr: String,
    pub dev: String,
}

/// The largest configuration file read: far beyond any real one (a
/// thousand services with ten servers each is under 1 MB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The most mbufs a pool may have: 2^26 mbufs of 2 KB are 150 GB of
/// hugepages; more cannot be installed and DPDK's size arithmetic overflows.
pub const MAX_MBUFS: u32 = 1 << 26;

/// Descriptors of each rx and tx queue (the ports' defaults).
pub(super) const RX_DESCRIPTORS: u16 = 1024;
pub(super) const TX_DESCRIPTORS: u16 = 1024;

/// The per-lcore cache of the mbuf pool.
pub(super) const POOL_CACHE: u32 = 256;

/// Descriptors of a kernel interface's rx and tx queue (its `net_tap`).
pub(super) const KERNEL_RX_DESCRIPTORS: u16 = 512;
pub(super) const KERNEL_TX_DESCRIPTORS: u16 = 512;

/// Mbufs each ring toward the exception loop holds (control and bulk): a
/// few milliseconds of a flood at the rate limits, while the loop drains them.
pub(super) const KERNEL_RING: u32 = 1024;

/// Mbufs each health-probe ring holds (one into each worker, one back): a
/// probe is a handful of packets and a check runs a few a second per server.
pub(super) const PROBE_RING: u32 = 64;

/// The fewest mbufs with which `workers` workers forward on `ports` ports,
/// `kernels` of them with a kernel interface: every rx ring filled and every
/// tx ring full (each queue holds its descriptors' mbufs), each lcore's pool
/// cache at its flush threshold (1.5 times its size), and the bursts a worker
/// holds while it works (one being received, one pending per port and per
/// peer worker); with kernel interfaces, their queues (the tap's rx and tx,
/// the port's extra tx queue), the two rings toward them full and the
/// exception loop's bursts; the health probes' rings full. With fewer, rx queues starve: every packet is an
/// `rx_nombuf` and nothing is forwarded.
pub fn min_mbufs(ports: usize, workers: usize, kernels: usize) -> u64 {
    let (ports, workers, kernels) = (ports as u64, workers as u64, kernels as u64);
    let queues = ports * workers * u64::from(RX_DESCRIPTORS + TX_DESCRIPTORS);
    let caches = (workers + 1) * u64::from(POOL_CACHE) * 3 / 2;
    let bursts = workers * (1 + ports + workers) * crate::dpdk::BURST_SIZE as u64;
    let kernel = if kernels == 0 {
        0
    } else {
        let per_interface = u64::from(KERNEL_RX_DESCRIPTORS + KERNEL_TX_DESCRIPTORS + TX_DESCRIPTORS)
            + 2 * crate::dpdk::BURST_SIZE as u64;
        kernels * per_interface + 2 * u64::from(KERNEL_RING)
    };
    let probes = (workers + 1) * u64::from(PROBE_RING);
    queues + caches + bursts + kernel + probes
}

/// Refuses a `"mbufs"` the queues cannot run with or that cannot be installed.
pub(super) fn check_mbufs(mbufs: u32, ports: usize, workers: usize, kernels: usize) -> Result<(), ConfigError> {
    let least = min_mbufs(ports, workers, kernels);
    if u64::from(mbufs) < least {
        let with_kernel = if kernels == 0 { String::new() } else { format!(", {kernels} kernel interface(s)") };
        return Err(ConfigError(format!(
            "\"mbufs\": {mbufs} is fewer than the {least} that {ports} port(s) with {workers} worker(s){with_kernel} need \
             ({RX_DESCRIPTORS} rx and {TX_DESCRIPTORS} tx descriptors per queue, pool caches, bursts)"
        )));
    }
    if mbufs > MAX_MBUFS {
        return Err(ConfigError(format!("\"mbufs\": {mbufs} is above {MAX_MBUFS} (2 KB of hugepage memory each)")));
    }
    Ok(())
}

/// Where the file must hold JSON objects: serde reads a struct from an
/// array too (`"timeouts": [1000, 2000, 3000]` would silently become tcp,
/// tcp_fin and udp), so the shape is checked first, naming the key.
fn check_objects(value: &serde_json::Value) -> Result<(), ConfigError> {
    use serde_json::Value;
    fn object(v: &Value, key: &str) -> Result<(), ConfigError> {
        match v {
            Value::Object(_) => Ok(()),
            other => Err(ConfigError(format!("{key}: expected an object {{\"name\": value, ...}}, not {other}"))),
        }
    }
    object(value, "the configuration")?;
    for key in ["timeouts", "synproxy", "watchdog", "kernel_rate"] {
        if let Some(v) = value.get(key) {
            object(v, &format!("\"{key}\""))?;
        }
    }
    for key in ["ports", "routes", "neighbours", "sync"] {
        if let Some(Value::Array(items)) = value.get(key) {
            for (i, item) in items.iter().enumerate() {
                object(item, &format!("\"{key}\"[{i}]"))?;
            }
        }
    }
    Ok(())
}

/// A configuration problem: what, where, with which value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a configuration file. At most [`MAX_CONFIG_BYTES`]
    /// are read: a path such as `/dev/zero` is refused, not read until memory runs out.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let cannot_read = |e: std::io::Error| ConfigError(format!("cannot read {}: {e}", path.display()));
        let file = std::fs::File::open(path).map_err(cannot_read)?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes).map_err(cannot_read)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError(format!(
                "{}: larger than {MAX_CONFIG_BYTES} bytes: not a configuration file",
                path.display()
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            ConfigError(format!("{}: not UTF-8 text (byte {})", path.display(), e.utf8_error().valid_up_to()))
        })?;
        Self::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        check_objects(&value)?;
        // From the text again, not the value: serde_json's errors then say where (line, column).
        let config: Config = serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        if config.ports.is_empty() {
            return Err(ConfigError("\"ports\": at least one port is needed".into()));
        }
        if !(1..=crate::conn::table::MAX_CAPACITY).contains(&config.conn_capacity) {
            return Err(ConfigError(format!(
                "\"conn_capacity\": {} is not in 1..={} (connections per worker)",
                config.conn_capacity,
                crate::conn::table::MAX_CAPACITY
            )));
        }
        if let Some(mbufs) = config.mbufs {
            // The workers' count is known once the EAL has read its lcores;
            // one worker's needs are the least any configuration has.
            check_mbufs(mbufs, config.ports.len(), 1, config.kernel_interfaces())?;
        }
        config.synproxy.settings([0; 16])?;
        config.kernel_rate.rate()?;
        if let Some(dev) = &config.announce {
            if !config.ports.iter().any(|p| p.kernel.as_ref() == Some(dev)) {
                return Err(ConfigError(format!(
                    "\"announce\": {dev:?} is not the kernel interface of any port (a port's \"kernel\")"
                )));
            }
        }
        if !(1..=3600).contains(&config.watchdog.stall_seconds) {
            return Err(ConfigError(format!(
                "\"watchdog\".\"stall_seconds\": {} is not in 1..=3600",
                config.watchdog.stall_seconds
            )));
        }
        config.sync_daemons()?;
        // The network, timeouts and services, as the gateway would start with them, and
        // their health checks.
        let initial = config.initial(1)?;
        config.apply_health(&mut crate::control::ControlState::new(
            initial,
            Box::new(crate::control::NoWorkers),
            Box::new(crate::control::NoDataplane::default()),
        ))?;
        Ok(config)
    }

    /// The sync daemons to start, checked: a syncid in 0..=255, an interface name Linux
    /// takes, one daemon per state.
    pub fn sync_daemons(&self) -> Result<Vec<DaemonSpec>, ConfigError> {
        let mut specs: Vec<DaemonSpec> = Vec::new();
        for (i, daemon) in self.sync.iter().enumerate() {
            let key = format!("\"sync\"[{i}]");
            let spec =
                crate::control::apply::daemon_spec(daemon).map_err(|e| ConfigError(format!("{key}: {}", e.message)))?;
            if let Some(why) = interface_name_error(&spec.mcast_interface) {
                return Err(ConfigError(format!("{key}.\"mcast_interface\": {:?} {why}", spec.mcast_interface)));
            }
            if let Some(first) = specs.iter().position(|s| s.role == spec.role) {
                return Err(ConfigError(format!(
                    "{key}: a second {} sync daemon (\"sync\"[{first}] is one)",
                    spec.role.name()
                )));
            }
            specs.push(spec);
        }
        Ok(specs)
    }

    /// The configuration the gateway starts with: the file's network, timeouts and
    /// services, validated together, with traffic counters for `workers` workers.
    pub fn initial(&self, workers: usize) -> Result<GatewayConfig, ConfigError> {
        let mut base =
            GatewayConfig { services: Snapshot::for_workers(workers), net: Arc::new(self.net()?), held: None };
        if self.timeouts.syn_recv != 0 {
            let mut ed = base.services.edit();
            ed.set_state_timeout(crate::conn::State::SynRecv, self.timeouts.syn_recv);
            base.services = ed.finish();
        }
        let rules = cmdline::parse_rules(&self.services.join("\n"), &Names::system()).map_err(|e| {
            let text = e.usage.as_ref().and_then(|u| u.message.clone()).unwrap_or_else(|| "not an ipvsadm rule".into());
            ConfigError(format!("\"services\"[{}]: {:?}: {text}", e.line - 1, e.text))
        })?;
        if let Some(rule) =
            rules.iter().find(|r| matches!(r.change, Change::StartDaemon { .. } | Change::StopDaemon { .. }))
        {
            return Err(ConfigError(format!(
                "\"services\"[{}]: {:?}: sync daemons are started by the \"sync\" key, not in \"services\"",
                rule.line - 1,
                self.services[rule.line - 1]
            )));
        }
        let mut changes: Vec<Change> = rules.iter().map(|r| r.change.clone()).collect();
        let t = self.timeouts;
        if (t.tcp, t.tcp_fin, t.udp) != (0, 0, 0) {
            changes.push(Change::SetTimeouts { tcp: t.tcp, tcp_fin: t.tcp_fin, udp: t.udp });
        }
        base.with_changes(&changes).map_err(|e| {
            let key = match e.change_index.and_then(|i| rules.get(i)) {
                Some(rule) => format!("\"services\"[{}]: {:?}", rule.line - 1, self.services[rule.line - 1]),
                None => "\"timeouts\"".to_string(),
            };
            ConfigError(format!("{key}: {}", e.message))
        })
    }

    /// Applies the `"health"` checks to `state` (which runs [`Config::initial`]), as one
    /// change; a refusal names the entry.
    pub fn apply_health(&self, state: &mut crate::control::ControlState) -> Result<(), ConfigError> {
        let mut changes = Vec::new();
        for (i, line) in self.health.iter().enumerate() {
            let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            if words.iter().all(|w| w != "--health") {
                words.insert(0, "--health".into());
            }
            let refused = |message: String| ConfigError(format!("\"health\"[{i}]: {line:?}: {message}"));
            match cmdline::health::parse(&words, &Names::system()) {
                Ok((command, _)) => match command.change() {
                    Some(change) => changes.push(change),
                    None => return Err(refused("not a health check (-L lists them)".into())),
                },
                Err(e) => return Err(refused(e.message.unwrap_or_default())),
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        state.handle(gwapi::api::Request::Apply { changes }).map(drop).map_err(|e| {
            let i = e.change_index.unwrap_or(0);
            ConfigError(format!(
                "\"health\"[{i}]: {:?}: {}",
                self.health.get(i).cloned().unwrap_or_default(),
                e.message
            ))
        })
    }

    /// How many ports have a kernel interface.
    pub fn kernel_interfaces(&self) -> usize {
        self.ports.iter().filter(|p| p.kernel.is_some()).count()
    }

    fn port_index(&self, name: &str, key: &str) -> Result<u16, ConfigError> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as u16)
            .ok_or_else(|| ConfigError(format!("{key}: no port named {name:?}")))
    }

    /// The network configuration the file describes, as the control plane keeps it.
    pub fn net(&self) -> Result<NetConfig, ConfigError> {
        let mut net = NetConfig::default();
        let mut names = BTreeMap::new();
        for (i, p) in self.ports.iter().enumerate() {
            if names.insert(p.name.clone(), i).is_some() {
                return Err(ConfigError(format!("\"ports\": name {:?} is used twice", p.name)));
            }
            if let Some(first) = self.ports[..i].iter().position(|q| q.device == p.device) {
                return Err(ConfigError(format!("\"ports\"[{i}].\"device\": {:?} is already port {first}", p.device)));
            }
            if !(68..=9000).contains(&p.mtu) {
                return Err(ConfigError(format!("\"ports\"[{i}].\"mtu\": {} is not in 68..=9000", p.mtu)));
            }
            if let Some(kernel) = &p.kernel {
                if let Some(why) = interface_name_error(kernel) {
                    return Err(ConfigError(format!(
                        "\"ports\"[{i}].\"kernel\": {kernel:?} {why}: not a Linux interface name"
                    )));
                }
                if let Some(first) = self.ports[..i].iter().position(|q| q.kernel.as_ref() == Some(kernel)) {
                    return Err(ConfigError(format!(
                        "\"ports\"[{i}].\"kernel\": {kernel:?} is already the kernel interface of port {first}"
                    )));
                }
            }
            for a in &p.addrs {
                let (addr, prefix_len) =
                    prefix(a).map_err(|e| ConfigError(format!("\"ports\"[{i}].\"addrs\": {e}")))?;
                net.add_addr(InterfaceAddr { addr, prefix_len, ifname: p.name.clone() })
                    .map_err(|e| ConfigError(format!("\"ports\"[{i}].\"addrs\": {e}")))?;
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("\"routes\"[{i}]");
            let (dst, prefix_len) = prefix(&r.dst).map_err(|e| ConfigError(format!("{key}.\"dst\": {e}")))?;
            let via = match &r.via {
                None => None,
                Some(v) => Some(
                    v.parse::<IpAddr>()
                        .map_err(|_| ConfigError(format!("{key}.\"via\": {v:?} is not an IP address")))?,
                ),
            };
            self.port_index(&r.dev, &format!("{key}.\"dev\""))?;
            net.add_route(RouteConfig { dst, prefix_len, via, ifname: r.dev.clone() })
                .map_err(|e| ConfigError(format!("{key}: {e}")))?;
        }
        for (i, n) in self.neighbours.iter().enumerate() {
            let key = format!("\"neighbours\"[{i}]");
            let addr: IpAddr = n
                .addr
                .parse()
                .map_err(|_| ConfigError(format!("{key}.\"addr\": {:?} is not an IP address", n.addr)))?;
            let lladdr = n.lladdr.parse::<LinkAddr>().map_err(|e| ConfigError(format!("{key}.\"lladdr\": {e}")))?.0;
            self.port_index(&n.dev, &format!("{key}.\"dev\""))?;
            net.add_neighbour(NeighbourConfig { addr, lladdr, ifname: n.dev.clone() })
                .map_err(|e| ConfigError(format!("{key}: {e}")))?;
        }
        Ok(net)
    }
}

/// An IPv4 or IPv6 prefix, `a.b.c.d/len` or `x:y::z/len`, as (address, length).
fn prefix(text: &str) -> Result<(IpAddr, u8), crate::net::CidrError> {
    text.parse::<IpCidr>().map(|c| (c.addr(), c.prefix_len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PORTS: &str = r#""ports": [{"device": "net_tap0", "name": "a", "addrs": ["10.0.0.254/24"]},
                                         {"device": "net_tap1", "name": "b", "addrs": ["192.168.1.254/24"]}]"#;

    fn refusal(members: &str) -> String {
        let text = format!(r#"{{"eal": [], {TWO_PORTS}{members}}}"#);
        match Config::parse(&text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn every_refusal_names_the_key_and_the_value() {
        let cases = [
            (
                r#", "timeouts": [1000, 2000, 3000]"#,
                "\"timeouts\": expected an object {\"name\": value, ...}, not [1000,2000,3000]",
            ),
            (r#", "synproxy": [1460]"#, "\"synproxy\": expected an object"),
            (r#", "routes": [["0.0.0.0/0", "10.0.0.1", "a"]]"#, "\"routes\"[0]: expected an object"),
            (r#", "synproxy": {"handshakes": 4294967295}"#, "\"synproxy\".\"handshakes\": 4294967295 is above 1048576"),
            (r#", "conn_capacity": 4294967295"#, "\"conn_capacity\": 4294967295 is not in 1..=134217726"),
            (r#", "conn_capacity": 0"#, "\"conn_capacity\": 0 is not in 1..="),
            (r#", "mbufs": 2047"#, "\"mbufs\": 2047 is fewer than the 5120 that 2 port(s) with 1 worker(s) need"),
            (r#", "mbufs": 3000000000"#, "\"mbufs\": 3000000000 is above 67108864"),
            (
                r#", "routes": [{"dst": "10.1.2.3/16", "dev": "a"}]"#,
                "\"routes\"[0]: invalid prefix for given prefix length: 10.1.2.3/16 has host bits set",
            ),
            (
                r#", "metrics": "localhost:9469""#,
                "\"metrics\": \"localhost:9469\" is not an IP address and port (such as \"127.0.0.1:9469\")",
            ),
            (r#", "metrics": "127.0.0.1""#, "\"metrics\": \"127.0.0.1\" is not an IP address and port"),
            (r#", "metrics": "127.0.0.1:65536""#, "\"metrics\": \"127.0.0.1:65536\" is not an IP address and port"),
            (r#", "metrics": 9469"#, "invalid type: integer `9469`, expected a string"),
            (
                r#", "log_level": "nonsense""#,
                "\"log_level\": \"nonsense\" is not a log level (one of error, warn, info, debug, trace)",
            ),
            (r#", "log_level": "INFO""#, "\"log_level\": \"INFO\" is not a log level"),
            (r#", "log_level": 3"#, "invalid type: integer `3`, expected a string"),
            (r#", "idle": "spin""#, "\"idle\": \"spin\" is not an idle mode (one of poll, sleep)"),
            (r#", "idle": "Sleep""#, "\"idle\": \"Sleep\" is not an idle mode"),
            (r#", "idle": true"#, "invalid type: boolean `true`, expected a string"),
            (r#", "staged_from": -1"#, "invalid value: integer `-1`, expected u64 at line 2"),
            (r#", "staged_from": "never""#, "invalid type: string \"never\", expected u64 at line 2"),
            (
                r#", "kernel_rate": {"control": 0}"#,
                "\"kernel_rate\".\"control\": 0 is not in 1..=1000000 (packets per second per port)",
            ),
            (r#", "kernel_rate": {"bulk": 1000001}"#, "\"kernel_rate\".\"bulk\": 1000001 is not in 1..=1000000"),
            (r#", "kernel_rate": {"bulk": -1}"#, "invalid value: integer `-1`, expected u32"),
            (r#", "kernel_rate": {"arp": 10}"#, "unknown field `arp`, expected `control` or `bulk`"),
            (r#", "kernel_rate": 5000"#, "\"kernel_rate\": expected an object"),
            (
                r#", "announce": "gwk0""#,
                "\"announce\": \"gwk0\" is not the kernel interface of any port (a port's \"kernel\")",
            ),
            (r#", "announce": ["gwk0"]"#, "invalid type: sequence, expected a string"),
            (
                r#", "sync": [{"state": "master", "mcast_interface": "gwk0", "syncid": 256}]"#,
                "\"sync\"[0]: syncid 256 is out of range 0..=255",
            ),
            (
                r#", "sync": [{"state": "backup", "mcast_interface": "gw k0", "syncid": 1}]"#,
                "\"sync\"[0].\"mcast_interface\": \"gw k0\" contains '/', ':', whitespace or a control character",
            ),
            (
                r#", "sync": [{"state": "backup", "mcast_interface": "gwk0", "syncid": 1},
                              {"state": "master", "mcast_interface": "gwk0", "syncid": 1},
                              {"state": "backup", "mcast_interface": "gwk1", "syncid": 2}]"#,
                "\"sync\"[2]: a second backup sync daemon (\"sync\"[0] is one)",
            ),
            (r#", "sync": [{"state": "primary", "mcast_interface": "gwk0", "syncid": 1}]"#, "unknown variant `primary`"),
            (r#", "sync": [{"state": "master", "syncid": 1}]"#, "missing field `mcast_interface`"),
            (
                r#", "services": ["-A -t 10.0.0.1:80", "--start-daemon master --mcast-interface gwk0"]"#,
                "\"services\"[1]: \"--start-daemon master --mcast-interface gwk0\": sync daemons are started by the \"sync\" key",
            ),
        ];
        for (members, want) in cases {
            let got = refusal(members);
            assert!(got.contains(want), "{members}: expected {want:?} in {got:?}");
        }
    }

    #[test]
    fn announcing_names_a_ports_kernel_interface() {
        let ports = r#""ports": [{"device": "net_tap0", "name": "a", "addrs": ["10.0.0.254/24"], "kernel": "gwk0"}]"#;
        let parse = |members: &str| Config::parse(&format!(r#"{{"eal": [], {ports}{members}}}"#));
        assert_eq!(parse("").unwrap().announce, None);
        assert_eq!(parse(r#", "announce": "gwk0""#).unwrap().announce.as_deref(), Some("gwk0"));
        let refused = parse(r#", "announce": "gwk1""#).expect_err("another name is refused").0;
        assert!(refused.contains("\"announce\": \"gwk1\" is not the kernel interface of any port"), "{refused}");
    }

    #[test]
    fn sync_daemons_are_read_master_and_backup() {
        let text = format!(
            r#"{{"eal": [], {TWO_PORTS}, "sync": [{{"state": "backup", "mcast_interface": "gwk0", "syncid": 0}},
                                                {{"state": "master", "mcast_interface": "gwk1", "syncid": 7}}]}}"#
        );
        let specs = Config::parse(&text).unwrap().sync_daemons().unwrap();
        let specs: Vec<(&str, &str, u8)> =
            specs.iter().map(|s| (s.role.name(), s.mcast_interface.as_str(), s.syncid)).collect();
        assert_eq!(specs, vec![("backup", "gwk0", 0), ("master", "gwk1", 7)]);
        let none = Config::parse(&format!(r#"{{"eal": [], {TWO_PORTS}}}"#)).unwrap();
        assert!(none.sync_daemons().unwrap().is_empty());
    }

    #[test]
    fn health_checks_are_gwctl_command_lines_refused_by_entry() {
        let service = r#", "services": ["-A -t 10.0.0.100:80 -s rr", "-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -m"]"#;
        let with = |health: &str| format!(r#"{{"eal": [], {TWO_PORTS}{service}, "health": {health}}}"#);
        let config = Config::parse(&with(
            r#"["-t 10.0.0.100:80 --check http --url /ok --delay-loop 2", "--health -t 10.0.0.100:80 -r 192.168.1.10:8080 --check tcp", "-t 10.0.0.100:80 --passive --passive-failures 2"]"#,
        ))
        .unwrap();
        assert_eq!(config.health.len(), 3);
        for (health, message) in [
            (
                r#"["-t 10.0.0.100:80 --check tcp", "-t 10.0.0.100:80 --check ping"]"#,
                "\"health\"[1]: \"-t 10.0.0.100:80 --check ping\": unknown check `ping' specified (tcp, http, https, udp or misc)",
            ),
            (
                r#"["-t 10.0.0.1:80 --check tcp"]"#,
                "\"health\"[0]: \"-t 10.0.0.1:80 --check tcp\": service TCP 10.0.0.1:80 not defined",
            ),
            (r#"["-L"]"#, "\"health\"[0]: \"-L\": not a health check (-L lists them)"),
            (
                r#"["-t 10.0.0.100:80 --passive --passive-backoff 0"]"#,
                "\"health\"[0]: \"-t 10.0.0.100:80 --passive --passive-backoff 0\": illegal --passive-backoff `0' specified (seconds S or S:MAX, each 0.01 to 86400, MAX not under S)",
            ),
            (
                r#"["-t 10.0.0.1:80 --passive"]"#,
                "\"health\"[0]: \"-t 10.0.0.1:80 --passive\": service TCP 10.0.0.1:80 not defined",
            ),
            (
                r#"["-t 10.0.0.100:80 --check misc --script /nonexistent/check"]"#,
                "\"health\"[0]: \"-t 10.0.0.100:80 --check misc --script /nonexistent/check\": misc script /nonexistent/check: No such file or directory (os error 2)",
            ),
        ] {
            assert_eq!(Config::parse(&with(health)).map(drop).unwrap_err().0, message);
        }
    }

    #[test]
    fn services_may_send_the_proxy_protocol_header() {
        let with = |services: &str| format!(r#"{{"eal": [], {TWO_PORTS}, "services": {services}}}"#);
        let config = Config::parse(&with(
            r#"["-A -t 10.0.0.100:80 -s rr --proxy-protocol v2", "-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -b"]"#,
        ))
        .unwrap();
        let initial = config.initial(1).unwrap();
        let spec = *initial.services.services()[0].spec();
        assert_eq!(spec.proxy_protocol, Some(crate::wire::proxy_protocol::Version::V2));
        for (services, message) in [
            (
                r#"["-A -u 10.0.0.100:53 --proxy-protocol v1"]"#,
                "\"services\"[0]: \"-A -u 10.0.0.100:53 --proxy-protocol v1\": the PROXY protocol is only for TCP services (-t), not UDP 10.0.0.100:53",
            ),
            (
                r#"["-A -t 10.0.0.100:80 --proxy-protocol v3"]"#,
                "\"services\"[0]: \"-A -t 10.0.0.100:80 --proxy-protocol v3\": illegal proxy-protocol value `v3' specified (v1 or v2)",
            ),
            (
                r#"["-A -t 10.0.0.100:80 --proxy-protocol v1", "-a -t 10.0.0.100:80 -r 192.168.1.10 -g"]"#,
                "\"services\"[1]: \"-a -t 10.0.0.100:80 -r 192.168.1.10 -g\": the PROXY protocol on TCP 10.0.0.100:80 needs the replies to pass the gateway, but real server 192.168.1.10:80 is direct-routed (-g): use masquerading (-m) or fullnat (-b)",
            ),
        ] {
            let refused = Config::parse(&with(services)).and_then(|c| c.initial(1).map(drop));
            assert_eq!(refused.unwrap_err().0, message);
        }
    }

    #[test]
    fn ipv6_services_are_rules_as_gwctl_saves_them() {
        let with = |services: &str| format!(r#"{{"eal": [], {TWO_PORTS}, "services": {services}}}"#);
        let config = Config::parse(&with(
            r#"["-A -t [2001:db8::1]:443 -s rr -p 600 -M 64", "-a -t [2001:db8::1]:443 -r [2001:db8:1::20]:8443 -b -w 3", "-P -t [2001:db8::1]:443 -z 2001:db8:ff::1 -F b", "-A -u 2001:db8::53 -s sh -p", "-a -u [2001:db8::53]:0 -r 2001:db8:1::53 -g"]"#,
        ))
        .unwrap();
        let initial = config.initial(1).unwrap();
        let services = initial.services.services();
        assert_eq!(services.len(), 2);
        let key = crate::model::ServiceKey::tcp("2001:db8::1".parse().unwrap(), 443);
        let web = initial.services.service(initial.services.service_id(&key).unwrap());
        assert_eq!(web.spec().persistence.unwrap().netmask, "ffff:ffff:ffff:ffff::".parse::<IpAddr>().unwrap());
        assert_eq!(web.dests().len(), 1);
        // ipvsadm's own text for a server of the other family, with the entry.
        let refused = Config::parse(&with(r#"["-A -t [2001:db8::1]:443", "-a -t [2001:db8::1]:443 -r 10.0.0.2 -m"]"#))
            .and_then(|c| c.initial(1).map(drop));
        assert_eq!(
            refused.unwrap_err().0,
            "\"services\"[1]: \"-a -t [2001:db8::1]:443 -r 10.0.0.2 -m\": Different address family is allowed only for tunneling servers"
        );
    }

    #[test]
    fn the_metrics_listener_is_off_unless_an_address_is_given() {
        let parse = |members: &str| Config::parse(&format!(r#"{{"eal": [], {TWO_PORTS}{members}}}"#)).unwrap().metrics;
        assert_eq!(parse(""), None);
        assert_eq!(parse(r#", "metrics": "127.0.0.1:9469""#), Some("127.0.0.1:9469".parse().unwrap()));
        assert_eq!(parse(r#", "metrics": "[::1]:0""#), Some("[::1]:0".parse().unwrap()));
    }

    #[test]
    fn the_log_level_is_info_unless_another_is_given() {
        let parse =
            |members: &str| Config::parse(&format!(r#"{{"eal": [], {TWO_PORTS}{members}}}"#)).unwrap().log_level;
        assert_eq!(parse(""), log::LevelFilter::Info);
        assert_eq!(parse(r#", "log_level": "debug""#), log::LevelFilter::Debug);
        assert_eq!(parse(r#", "log_level": "error""#), log::LevelFilter::Error);
    }

    #[test]
    fn bursts_are_staged_from_4k_connections_unless_told_otherwise() {
        let parse =
            |members: &str| Config::parse(&format!(r#"{{"eal": [], {TWO_PORTS}{members}}}"#)).map(|c| c.staged_from);
        assert_eq!(parse(""), Ok(4096));
        assert_eq!(parse(r#", "staged_from": 0"#), Ok(0));
        assert_eq!(parse(r#", "staged_from": 1000000"#), Ok(1_000_000));
    }

    #[test]
    fn workers_poll_unless_told_to_sleep_when_idle() {
        let parse = |members: &str| Config::parse(&format!(r#"{{"eal": [], {TWO_PORTS}{members}}}"#)).unwrap().idle;
        assert_eq!(parse(""), IdleMode::Poll);
        assert_eq!(parse(r#", "idle": "poll""#), IdleMode::Poll);
        assert_eq!(parse(r#", "idle": "sleep""#), IdleMode::Sleep);
    }

    #[test]
    fn the_kernel_rate_has_defaults_and_either_class_may_be_set() {
        let parse = |members: &str| {
            Config::parse(&format!(r#"{{"eal": [], {TWO_PORTS}{members}}}"#)).unwrap().kernel_rate.rate().unwrap()
        };
        assert_eq!(parse(""), KernelRate { control: 5000, bulk: 20_000 });
        assert_eq!(parse(r#", "kernel_rate": {"bulk": 100}"#), KernelRate { control: 5000, bulk: 100 });
        assert_eq!(
            parse(r#", "kernel_rate": {"control": 1, "bulk": 1000000}"#),
            KernelRate { control: 1, bulk: 1_000_000 }
        );
    }

    #[test]
    fn a_top_level_array_is_not_a_configuration() {
        let err = Config::parse(r#"[[], [{"device": "d", "name": "a"}]]"#).unwrap_err().0;
        assert!(err.starts_with("the configuration: expected an object"), "{err}");
        let err = Config::parse(r#"{"eal": [], "ports": [["d", "a"]]}"#).unwrap_err().0;
        assert!(err.starts_with("\"ports\"[0]: expected an object"), "{err}");
    }

    #[test]
    fn ports_routes_and_neighbours_take_ipv6_beside_ipv4() {
        let text = r#"{"eal": [],
            "ports": [{"device": "d0", "name": "a", "addrs": ["10.0.0.254/24", "2001:db8::fe/64"]}],
            "routes": [{"dst": "2001:db8:9::/48", "via": "2001:db8::1", "dev": "a"}, {"dst": "::/0", "via": "2001:db8::2", "dev": "a"}],
            "neighbours": [{"addr": "2001:db8::1", "lladdr": "52:54:00:12:34:56", "dev": "a"}]}"#;
        let net = Config::parse(text).unwrap().net().unwrap();
        let addrs: Vec<String> = net.addrs().iter().map(|a| format!("{}/{}", a.addr, a.prefix_len)).collect();
        assert_eq!(addrs, ["10.0.0.254/24", "2001:db8::fe/64"]);
        let routes: Vec<String> =
            net.routes().iter().map(|r| format!("{}/{} via {:?}", r.dst, r.prefix_len, r.via)).collect();
        assert_eq!(routes, ["2001:db8:9::/48 via Some(2001:db8::1)", "::/0 via Some(2001:db8::2)"]);
        assert_eq!(net.neighbours()[0].addr, "2001:db8::1".parse::<std::net::IpAddr>().unwrap());
        let refused = |text: &str| Config::parse(text).and_then(|c| c.net()).unwrap_err().0;
        assert_eq!(
            refused(r#"{"eal": [], "ports": [{"device": "d0", "name": "a", "addrs": ["2001:db8::fe/129"]}]}"#),
            "\"ports\"[0].\"addrs\": \"129\" is not a prefix length (0..=128)"
        );
        assert_eq!(
            refused(
                r#"{"eal": [], "ports": [{"device": "d0", "name": "a"}], "routes": [{"dst": "2001:db8::/32", "via": "10.0.0.1", "dev": "a"}]}"#
            ),
            "\"routes\"[0]: gateway 10.0.0.1 is not of the same address family as 2001:db8::"
        );
    }

    #[test]
    fn ports_never_share_a_device_an_address_or_a_subnet() {
        let parse =
            |ports: &str| Config::parse(&format!(r#"{{"eal": [], "ports": [{ports}]}}"#)).map(|_| ()).map_err(|e| e.0);
        assert_eq!(
            parse(r#"{"device": "net_tap0", "name": "a"}, {"device": "net_tap0", "name": "b"}"#),
            Err("\"ports\"[1].\"device\": \"net_tap0\" is already port 0".into())
        );
        assert_eq!(
            parse(
                r#"{"device": "d0", "name": "a", "addrs": ["10.0.0.254/24"]}, {"device": "d1", "name": "b", "addrs": ["10.0.0.254/24"]}"#
            ),
            Err("\"ports\"[1].\"addrs\": address 10.0.0.254 already exists on a".into())
        );
        assert_eq!(
            parse(
                r#"{"device": "d0", "name": "a", "addrs": ["10.0.0.254/16"]}, {"device": "d1", "name": "b", "addrs": ["10.0.7.1/24"]}"#
            ),
            Err(
                "\"ports\"[1].\"addrs\": 10.0.7.1/24 overlaps 10.0.0.254/16 on a: each subnet belongs to one interface"
                    .into()
            )
        );
        assert_eq!(
            parse(
                r#"{"device": "d0", "name": "a", "addrs": ["10.0.0.254/24", "10.0.0.253/24"]}, {"device": "d1", "name": "b", "addrs": ["10.0.1.1/24"]}"#
            ),
            Ok(())
        );
    }

    #[test]
    fn a_kernel_interface_needs_a_linux_interface_name_of_its_own() {
        let parse = |a: &str, b: &str| {
            let text = format!(
                r#"{{"eal": [], "ports": [{{"device": "d0", "name": "a"{a}}}, {{"device": "d1", "name": "b"{b}}}]}}"#
            );
            Config::parse(&text).map(|c| c.ports.iter().map(|p| p.kernel.clone()).collect::<Vec<_>>()).map_err(|e| e.0)
        };
        assert_eq!(parse("", ""), Ok(vec![None, None]));
        assert_eq!(
            parse(r#", "kernel": "gwk0""#, r#", "kernel": "abcdefghijklmno""#),
            Ok(vec![Some("gwk0".into()), Some("abcdefghijklmno".into())])
        );
        let refused = [
            (r#", "kernel": """#, "\"ports\"[0].\"kernel\": \"\" is empty: not a Linux interface name"),
            (
                r#", "kernel": "abcdefghijklmnop""#,
                "\"ports\"[0].\"kernel\": \"abcdefghijklmnop\" is longer than 15 bytes: not a Linux interface name",
            ),
            (r#", "kernel": "gw/k0""#, "\"ports\"[0].\"kernel\": \"gw/k0\" contains '/', ':', whitespace"),
            (r#", "kernel": "gwk0:1""#, "\"ports\"[0].\"kernel\": \"gwk0:1\" contains '/', ':', whitespace"),
            (r#", "kernel": "gw k0""#, "\"ports\"[0].\"kernel\": \"gw k0\" contains '/', ':', whitespace"),
            (r#", "kernel": "..""#, "\"ports\"[0].\"kernel\": \"..\" is not a name"),
            (r#", "kernel": 7"#, "invalid type: integer `7`, expected a string"),
        ];
        for (member, want) in refused {
            let got = parse(member, "").unwrap_err();
            assert!(got.contains(want), "{member}: expected {want:?} in {got:?}");
        }
        assert_eq!(
            parse(r#", "kernel": "gwk0""#, r#", "kernel": "gwk0""#),
            Err("\"ports\"[1].\"kernel\": \"gwk0\" is already the kernel interface of port 0".into())
        );
    }

    #[test]
    fn the_mbuf_bounds_follow_the_queues() {
        // 2 ports, 1 worker: 4096 descriptors' mbufs, 2 caches of 384, 4 bursts of 32,
        // the probe rings into the worker and back (64 each).
        assert_eq!(min_mbufs(2, 1, 0), 4096 + 768 + 128 + 2 * 64);
        assert!(min_mbufs(2, 2, 0) > 2 * min_mbufs(2, 1, 0) - 1000);
        assert!(check_mbufs(5120, 2, 1, 0).is_ok());
        assert!(check_mbufs(5119, 2, 1, 0).is_err());
        // What parses with one worker can still be too few for the workers the EAL gives.
        let err = check_mbufs(8191, 2, 2, 0).unwrap_err().0;
        assert!(err.contains("\"mbufs\": 8191 is fewer than the 9856 that 2 port(s) with 2 worker(s) need"), "{err}");
        assert!(check_mbufs(MAX_MBUFS, 2, 1, 0).is_ok() && check_mbufs(MAX_MBUFS + 1, 2, 1, 0).is_err());
        // A kernel interface: the tap's queues (512 + 512), the port's extra
        // tx queue (1024), two bursts, and the two rings toward it (2 x 1024).
        assert_eq!(min_mbufs(2, 1, 1), min_mbufs(2, 1, 0) + 2048 + 64 + 2048);
        let err = check_mbufs(4992, 2, 1, 1).unwrap_err().0;
        assert!(
            err.contains("fewer than the 9280 that 2 port(s) with 1 worker(s), 1 kernel interface(s) need"),
            "{err}"
        );
        // The README's example and the defaults are accepted.
        let readme = format!(
            r#"{{"eal": [], {TWO_PORTS}, "mbufs": 32767, "conn_capacity": 1048576, "synproxy": {{"handshakes": 4096}}}}"#
        );
        assert!(Config::parse(&readme).is_ok());
    }

    #[test]
    fn an_endless_file_is_refused_after_its_bound() {
        let started = std::time::Instant::now();
        let err = Config::load(Path::new("/dev/zero")).unwrap_err().0;
        assert_eq!(err, format!("/dev/zero: larger than {MAX_CONFIG_BYTES} bytes: not a configuration file"));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "refused quickly: {:?}", started.elapsed());
    }

    /// A configuration file with `n` static neighbours on the "client" port.
    fn with_neighbours(n: usize) -> String {
        let neighbours: Vec<String> = (0..n)
            .map(|i| {
                let addr = std::net::Ipv4Addr::from(0x0a00_0000 + i as u32 + 1);
                format!(
                    r#"{{"addr": "{addr}", "lladdr": "52:54:00:00:{:02x}:{:02x}", "dev": "client"}}"#,
                    i >> 8,
                    i & 0xff
                )
            })
            .collect();
        format!(
            r#"{{"eal": [], "ports": [{{"device": "net_tap0", "name": "client", "addrs": ["10.0.0.254/8"]}}], "neighbours": [{}]}}"#,
            neighbours.join(",")
        )
    }

    #[test]
    fn static_neighbours_beyond_what_the_table_holds_are_refused_at_load() {
        let max = crate::net::MAX_STATIC_NEIGHBOURS;
        let config = Config::parse(&with_neighbours(max)).expect("the limit itself is accepted");
        assert_eq!(config.net().unwrap().neighbours().len(), max);
        assert_eq!(
            Config::parse(&with_neighbours(max + 1)).unwrap_err().to_string(),
            "\"neighbours\"[1024]: neighbour 10.0.4.1 on client refused: at most 1024 static neighbours"
        );
    }
}
