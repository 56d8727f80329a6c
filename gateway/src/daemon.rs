//! `gatewayd --config FILE`: the configuration file, and the assembly of the
//! running gateway from it: EAL, mempool, ports (one rx and one tx queue per
//! worker on each), redirect rings, workers on their lcores, and the control
//! server on the main lcore.
//!
//! The file is JSON; unknown keys and bad values are refused before anything
//! starts, with the key and the value in the message. Addresses, routes and
//! static neighbours from the file become the initial network configuration,
//! so `gwctl addr/route/neigh show` list them and `gwctl` can change them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use gwapi::addr::LinkAddr;
use gwapi::api::{Change, InterfaceAddr, NeighbourConfig, RouteConfig};
use gwapi::cmdline;
use gwapi::names::Names;

use crate::control::{self, bridge, ControlSocket, ControlState, GatewayConfig, NetConfig, ServerOptions};
use crate::dpdk::{
    needs_fence, Eal, IoFence, LcoreJob, LinkState, Mempool, Port, PortConfig, Ring, RingSync, MBUF_DEFAULT_BUF_SIZE,
};
use crate::net::Ipv4Cidr;
use crate::service::Snapshot;
use crate::synproxy;
use crate::wire::MacAddr;
use crate::worker::lcore::{DownPorts, LcoreWorker};
use crate::worker::watchdog::{Liveness, Verdict, Watchdog};
use crate::worker::{Worker, WorkerConfig, WorkerCounters};
use crate::xmit::Offload;

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
    /// What the SYN proxy (`-j enable`) offers and how it treats failures.
    #[serde(default)]
    pub synproxy: SynProxySpec,
    /// When a worker counts as stalled, and what a stopped or stalled worker does to the daemon.
    #[serde(default)]
    pub watchdog: WatchdogSpec,
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
}

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
const RX_DESCRIPTORS: u16 = 1024;
const TX_DESCRIPTORS: u16 = 1024;

/// The per-lcore cache of the mbuf pool.
const POOL_CACHE: u32 = 256;

/// The fewest mbufs with which `workers` workers forward on `ports` ports:
/// every rx ring filled and every tx ring full (each queue holds its
/// descriptors' mbufs), each lcore's pool cache at its flush threshold (1.5
/// times its size), and the bursts a worker holds while it works (one being
/// received, one pending per port and per peer worker). With fewer, rx
/// queues starve: every packet is an `rx_nombuf` and nothing is forwarded.
pub fn min_mbufs(ports: usize, workers: usize) -> u64 {
    let (ports, workers) = (ports as u64, workers as u64);
    let queues = ports * workers * u64::from(RX_DESCRIPTORS + TX_DESCRIPTORS);
    let caches = (workers + 1) * u64::from(POOL_CACHE) * 3 / 2;
    let bursts = workers * (1 + ports + workers) * crate::dpdk::BURST_SIZE as u64;
    queues + caches + bursts
}

/// Refuses a `"mbufs"` the queues cannot run with or that cannot be installed.
fn check_mbufs(mbufs: u32, ports: usize, workers: usize) -> Result<(), ConfigError> {
    let least = min_mbufs(ports, workers);
    if u64::from(mbufs) < least {
        return Err(ConfigError(format!(
            "\"mbufs\": {mbufs} is fewer than the {least} that {ports} port(s) with {workers} worker(s) need \
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
    for key in ["timeouts", "synproxy", "watchdog"] {
        if let Some(v) = value.get(key) {
            object(v, &format!("\"{key}\""))?;
        }
    }
    for key in ["ports", "routes", "neighbours"] {
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
            check_mbufs(mbufs, config.ports.len(), 1)?;
        }
        config.synproxy.settings([0; 16])?;
        if !(1..=3600).contains(&config.watchdog.stall_seconds) {
            return Err(ConfigError(format!(
                "\"watchdog\".\"stall_seconds\": {} is not in 1..=3600",
                config.watchdog.stall_seconds
            )));
        }
        // The network, timeouts and services, as the gateway would start with them.
        config.initial(1)?;
        Ok(config)
    }

    /// The configuration the gateway starts with: the file's network, timeouts and
    /// services, validated together, with traffic counters for `workers` workers.
    pub fn initial(&self, workers: usize) -> Result<GatewayConfig, ConfigError> {
        let mut base = GatewayConfig { services: Snapshot::for_workers(workers), net: Arc::new(self.net()?) };
        if self.timeouts.syn_recv != 0 {
            let mut ed = base.services.edit();
            ed.set_state_timeout(crate::conn::State::SynRecv, self.timeouts.syn_recv);
            base.services = ed.finish();
        }
        let rules = cmdline::parse_rules(&self.services.join("\n"), &Names::system()).map_err(|e| {
            let text = e.usage.as_ref().and_then(|u| u.message.clone()).unwrap_or_else(|| "not an ipvsadm rule".into());
            ConfigError(format!("\"services\"[{}]: {:?}: {text}", e.line - 1, e.text))
        })?;
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
            for a in &p.addrs {
                let c: Ipv4Cidr = a.parse().map_err(|e| ConfigError(format!("\"ports\"[{i}].\"addrs\": {e}")))?;
                net.add_addr(InterfaceAddr {
                    addr: c.addr().into(),
                    prefix_len: c.prefix_len(),
                    ifname: p.name.clone(),
                })
                .map_err(|e| ConfigError(format!("\"ports\"[{i}].\"addrs\": {e}")))?;
            }
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("\"routes\"[{i}]");
            let dst: Ipv4Cidr = r.dst.parse().map_err(|e| ConfigError(format!("{key}.\"dst\": {e}")))?;
            let via = match &r.via {
                None => None,
                Some(v) => Some(
                    v.parse::<Ipv4Addr>()
                        .map_err(|_| ConfigError(format!("{key}.\"via\": {v:?} is not an IPv4 address")))?,
                ),
            };
            self.port_index(&r.dev, &format!("{key}.\"dev\""))?;
            net.add_route(RouteConfig {
                dst: dst.addr().into(),
                prefix_len: dst.prefix_len(),
                via: via.map(IpAddr::V4),
                ifname: r.dev.clone(),
            })
            .map_err(|e| ConfigError(format!("{key}: {e}")))?;
        }
        for (i, n) in self.neighbours.iter().enumerate() {
            let key = format!("\"neighbours\"[{i}]");
            let addr: Ipv4Addr = n
                .addr
                .parse()
                .map_err(|_| ConfigError(format!("{key}.\"addr\": {:?} is not an IPv4 address", n.addr)))?;
            let lladdr = n.lladdr.parse::<LinkAddr>().map_err(|e| ConfigError(format!("{key}.\"lladdr\": {e}")))?.0;
            self.port_index(&n.dev, &format!("{key}.\"dev\""))?;
            net.add_neighbour(NeighbourConfig { addr: addr.into(), lladdr, ifname: n.dev.clone() })
                .map_err(|e| ConfigError(format!("{key}: {e}")))?;
        }
        Ok(net)
    }
}

/// Connections a worker copies per `gwctl -Lc` page: copying a worker's table
/// stalls its forwarding for as long as the copy takes, so the listing pages
/// through it (a page of 16k entries is a pause of about a millisecond).
const CONNECTIONS_PER_PAGE: usize = 16_384;

/// The most rows one `gwctl -Lc` lists (about 250 MB of reply, what a client
/// accepts); a larger table's listing says it stops there.
const CONNECTIONS_LISTED: usize = 1_000_000;

/// `gwctl link` from the ports' own counters. The workers' counters and
/// connection tables are read by the `control::bridge` views that wrap this.
struct PortsView {
    ports: Vec<(Port, String, u16)>,
    conn_capacity: u64,
}

impl control::DataplaneView for PortsView {
    fn links(&self) -> Vec<gwapi::api::LinkInfo> {
        self.ports
            .iter()
            .map(|(port, name, mtu)| {
                let s = port.stats().unwrap_or_default();
                let state = port.link_state();
                gwapi::api::LinkInfo {
                    name: name.clone(),
                    port_id: port.id(),
                    mac: port.mac_addr().unwrap_or_default(),
                    mtu: u32::from(*mtu),
                    up: state != LinkState::Down,
                    state_unknown: state == LinkState::Unknown,
                    rx_packets: s.ipackets,
                    rx_bytes: s.ibytes,
                    rx_errors: s.ierrors + s.rx_nombuf,
                    rx_missed: s.imissed,
                    tx_packets: s.opackets,
                    tx_bytes: s.obytes,
                    tx_errors: s.oerrors,
                    queues: Vec::new(),
                }
            })
            .collect()
    }

    fn conn_table_size(&self) -> u64 {
        self.conn_capacity
    }
}

/// Writes a line to standard output. A reader that went away (a closed
/// pipe) loses the line; it must not panic the daemon, least of all at shutdown.
fn say(line: fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// As [`say`], on standard error.
fn warn(line: fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// How often the main lcore checks the stop flag and the workers' heartbeats.
const MAIN_LOOP_PERIOD: Duration = Duration::from_millis(100);

/// How long the I/O fence lets workers poll between two turns of the EAL
/// interrupt thread (see `dpdk::IoFence`): a memif peer's messages wait up
/// to this long, and workers pause for the interrupt thread's turn this often.
pub const FENCE_HOLD: Duration = Duration::from_millis(10);

/// Reads every port's link state, marks the down ones for the workers and
/// says what changed (`at_start`: what each port starts with).
fn watch_links(ports: &[(Port, String)], down: &DownPorts, at_start: bool) {
    for (port, name) in ports {
        let state = port.link_state();
        let changed = down.set(port.id(), state == LinkState::Down);
        let what = match state {
            LinkState::Up => "up",
            LinkState::Down => "down",
            LinkState::Unknown => "state unknown (the kernel interface is in another network namespace): forwarding",
        };
        if at_start {
            say(format_args!("gatewayd: port {name} ({}): link {what}", port.driver()));
        } else if changed {
            let went = if state == LinkState::Down {
                "went down: not polled, its traffic dropped as link_down"
            } else {
                "came up"
            };
            say(format_args!("gatewayd: port {name} ({}): link {went}", port.driver()));
        }
    }
}

/// Runs the gateway until `stop` is set (SIGINT/SIGTERM in `gatewayd`), or
/// until a worker stops or stalls (unless `"watchdog"` says continue).
pub fn run(config: Config, socket: Option<&str>, stop: Arc<AtomicBool>) -> Result<(), String> {
    // The control socket first: a second gatewayd on the same path stops
    // here, before it opens (or takes from the first) any device.
    let path = gwapi::socket_path(socket.or(config.control_socket.as_deref()).map(std::ffi::OsStr::new));
    let control_socket = ControlSocket::bind(ServerOptions::new(&path))
        .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    let eal = Eal::init(&config.eal).map_err(|e| e.to_string())?;
    let lcores = eal.worker_lcores();
    if lcores.is_empty() {
        return Err("no worker lcores: give the EAL at least two (for example \"-l\", \"0-1\")".into());
    }
    let workers = lcores.len() as u16;
    let queues = workers;
    let mbufs = match config.mbufs {
        Some(mbufs) => {
            check_mbufs(mbufs, config.ports.len(), usize::from(workers))
                .map_err(|e| format!("bad configuration: {e}"))?;
            mbufs
        }
        // Room for traffic beyond the queues' needs, rounded as DPDK likes it (2^n - 1).
        None => ((min_mbufs(config.ports.len(), usize::from(workers)) + 8192).next_power_of_two() - 1)
            .min(u64::from(MAX_MBUFS)) as u32,
    };
    let pool = Mempool::new(&eal, "gw_pool", mbufs, POOL_CACHE, MBUF_DEFAULT_BUF_SIZE).map_err(|e| e.to_string())?;

    // Ports: each worker gets rx and tx queue `w` of every port.
    let mut specs: Vec<(u16, bridge::PortSpec)> = Vec::new();
    let mut open_ports = Vec::new();
    let mut rx_per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    let mut tx_per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    for spec in &config.ports {
        let pc = PortConfig {
            rx_queues: queues,
            tx_queues: queues,
            rx_descriptors: RX_DESCRIPTORS,
            tx_descriptors: TX_DESCRIPTORS,
            mtu: None,
            ..PortConfig::default()
        };
        let (port, rxq, txq) =
            Port::open(&eal, &spec.device, &pc, &pool).map_err(|e| format!("port {:?}: {e}", spec.name))?;
        let caps = port.caps();
        specs.push((
            port.id(),
            bridge::PortSpec {
                name: spec.name.clone(),
                mac: MacAddr(port.mac_addr().map_err(|e| e.to_string())?),
                mtu: spec.mtu,
                offload: Offload {
                    ipv4_checksum: caps.tx_ipv4_checksum,
                    tcp_checksum: caps.tx_tcp_checksum,
                    udp_checksum: caps.tx_udp_checksum,
                },
                // Only a device that took our RSS key and reports its table can be predicted.
                steering: if workers > 1 { port.reply_steering().map(Arc::new) } else { None },
            },
        ));
        for (w, (r, t)) in rxq.into_iter().zip(txq).enumerate() {
            rx_per_worker[w].push((port.id(), r));
            tx_per_worker[w].push((port.id(), t));
        }
        open_ports.push(port);
    }

    // Link states, read by the control thread, for the workers.
    let down_ports = Arc::new(DownPorts::default());
    let watched: Vec<(Port, String)> =
        open_ports.iter().zip(&config.ports).map(|(p, spec)| (p.clone_handle(), spec.name.clone())).collect();
    watch_links(&watched, &down_ports, true);
    // A fence for PMDs that unmap a port's data path from the interrupt thread.
    let (fence, fence_workers) = if open_ports.iter().any(|p| needs_fence(p.driver())) {
        let (fence, handles) = IoFence::new(&eal, usize::from(workers), FENCE_HOLD).map_err(|e| e.to_string())?;
        (Some(fence), handles.into_iter().map(Some).collect())
    } else {
        (None, (0..workers).map(|_| None).collect::<Vec<_>>())
    };
    let mut fence_workers = fence_workers.into_iter();

    // Redirect rings (many producers, one consumer each) and neighbour channels.
    let mut ring_tx = Vec::new();
    let mut ring_rx = Vec::new();
    for w in 0..workers {
        let (tx, rx) = Ring::new(&eal, &format!("gw_redirect_{w}"), 4096, RingSync::Multi, RingSync::Single)
            .map_err(|e| e.to_string())?;
        ring_tx.push(tx);
        ring_rx.push(rx);
    }
    let (neigh_tx, neigh_rx): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::sync_channel(256)).unzip();

    // bridge::net_view wants the ports indexed by DPDK port id; ids the file
    // does not name (none, normally) get a name no configuration can use.
    let max_id = specs.iter().map(|(id, _)| usize::from(*id)).max().unwrap_or(0);
    let mut ports: Vec<bridge::PortSpec> = (0..=max_id)
        .map(|i| bridge::PortSpec {
            name: format!("\0unused{i}"),
            mac: MacAddr([0; 6]),
            mtu: 0,
            offload: Offload::NONE,
            steering: None,
        })
        .collect();
    for (id, spec) in specs {
        ports[usize::from(id)] = spec;
    }

    // The control plane and its seam to the workers: each published
    // configuration is resolved to a WorkerUpdate once, on the control thread.
    let initial = config.initial(usize::from(workers)).map_err(|e| e.to_string())?;
    let (first, convert) =
        bridge::worker_updates(ports, &initial).map_err(|e| format!("network configuration: {e}"))?;
    let (sink, mailboxes) =
        control::publish::broadcast_with(usize::from(workers), first.clone(), Duration::from_secs(2), convert);
    // One cookie secret for every worker: a cookie minted on one validates on any.
    let synproxy = config.synproxy.settings(synproxy::random_seed()).map_err(|e| e.to_string())?;
    let epoch = crate::dpdk::rdtsc();
    let mut jobs = Vec::new();
    let mut handles = Vec::new();
    let (asker, answerers) = control::query::queries(usize::from(workers), Duration::from_secs(2));
    let (laddr_asker, laddr_answerers) = control::query::queries(usize::from(workers), Duration::from_secs(2));
    let mut laddr_answerers = laddr_answerers.into_iter();
    for (w, (((mut mailbox, mut answerer), rx), (tx, (redirect_in, neigh_in)))) in mailboxes
        .into_iter()
        .zip(answerers)
        .zip(rx_per_worker)
        .zip(tx_per_worker.into_iter().zip(ring_rx.into_iter().zip(neigh_rx)))
        .enumerate()
    {
        let w = w as u16;
        let mut laddr_answerer = laddr_answerers.next().ok_or("one -G answerer per worker")?;
        let mut cfg = WorkerConfig::new(w, workers);
        cfg.conn_capacity = config.conn_capacity;
        cfg.synproxy = synproxy;
        let mut worker = Worker::new(&cfg, first.services.clone(), first.net.clone(), 1).map_err(|e| e.to_string())?;
        worker.switch(first.services.clone(), first.net.clone());
        let redirect_out =
            (0..workers).map(|peer| if peer == w { None } else { ring_tx[usize::from(peer)].try_clone() }).collect();
        let neighbours_out = (0..workers).filter(|&p| p != w).map(|p| neigh_tx[usize::from(p)].clone()).collect();
        let lcore = lcores[usize::from(w)];
        let liveness = Arc::new(Liveness::default());
        handles.push(bridge::WorkerHandle {
            worker: u32::from(w),
            lcore,
            counters: worker.counters().clone(),
            liveness: liveness.clone(),
        });
        let lcore_worker = LcoreWorker {
            worker,
            rx,
            tx,
            redirect_in,
            redirect_out,
            neighbours_in: neigh_in,
            neighbours_out,
            pool: pool.clone(),
            epoch,
            liveness,
            down_ports: down_ports.clone(),
            fence: fence_workers.next().flatten(),
        };
        let stop = stop.clone();
        let job = eal
            .launch(lcore, move || {
                lcore_worker.run(stop, move |worker, now| {
                    mailbox.poll(|update: &bridge::WorkerUpdate| {
                        worker.switch(update.services.clone(), update.net.clone());
                    });
                    answerer.poll(|query| bridge::connections_of(worker.director().conns(), u32::from(w), now, query));
                    laddr_answerer.poll(|query| bridge::laddr_usage_of(worker.director().pools(), query));
                })
            })
            .map_err(|e| e.to_string())?;
        jobs.push(job);
    }
    drop(ring_tx);
    drop(neigh_tx);
    let counters: Vec<Arc<WorkerCounters>> = handles.iter().map(|h| h.counters.clone()).collect();
    let names: Vec<String> = handles.iter().map(|h| format!("worker {} (lcore {})", h.worker, h.lcore)).collect();
    let mut watchdog = Watchdog::new(
        handles.iter().map(|h| h.liveness.clone()).collect(),
        Duration::from_secs(u64::from(config.watchdog.stall_seconds)),
        std::time::Instant::now(),
    );
    let view = bridge::ConnectionsView {
        asker,
        page: CONNECTIONS_PER_PAGE,
        max_rows: CONNECTIONS_LISTED,
        inner: Box::new(bridge::LaddrsView {
            asker: laddr_asker,
            inner: Box::new(bridge::WorkerCountersView {
                workers: handles,
                inner: Box::new(PortsView {
                    ports: open_ports
                        .iter()
                        .zip(&config.ports)
                        .map(|(p, spec)| (p.clone_handle(), spec.name.clone(), spec.mtu))
                        .collect(),
                    conn_capacity: u64::from(config.conn_capacity) * u64::from(workers),
                }),
            }),
        }),
    };
    let state = ControlState::new(initial, Box::new(sink), Box::new(view));
    let server = control_socket.serve(state).spawn().map_err(|e| format!("control socket {}: {e}", path.display()))?;
    say(format_args!(
        "gatewayd: running with {workers} worker(s) on lcores {lcores:?}, {} port(s); control socket {}",
        open_ports.len(),
        path.display()
    ));

    // Watch the workers until stopped. A job that ended is joined at once
    // (its lcore is idle, so join does not wait) to learn why.
    let mut jobs: Vec<Option<LcoreJob<()>>> = jobs.into_iter().map(Some).collect();
    let mut failure = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(MAIN_LOOP_PERIOD);
        watch_links(&watched, &down_ports, false);
        let verdicts = watchdog.check(std::time::Instant::now(), |w| {
            // A worker that ended after the stop flag (SIGTERM) just obeyed
            // it; seeing its job finished orders its read of the flag before ours.
            let job = jobs[w].take_if(|job| job.is_finished() && !stop.load(Ordering::Relaxed))?;
            Some(match job.join() {
                Ok(()) => "its poll loop returned".to_string(),
                Err(crate::dpdk::DpdkError::LcorePanicked { message, .. }) => format!("panicked: {message}"),
                Err(e) => e.to_string(),
            })
        });
        for verdict in verdicts {
            let (w, what) = match &verdict {
                Verdict::Stopped { worker, why } => (*worker, format!("stopped: {why}")),
                Verdict::Stalled { worker, for_ } => (*worker, format!("stalled: no poll for {} s", for_.as_secs())),
                Verdict::Resumed { worker } => (*worker, "polls again".to_string()),
            };
            warn(format_args!("gatewayd: {} {what}", names[w]));
            if config.watchdog.on_failure == OnWorkerFailure::Exit && !matches!(verdict, Verdict::Resumed { .. }) {
                failure.get_or_insert(format!(
                    "{} {what}; exiting (\"watchdog\": {{\"on_failure\": \"continue\"}} keeps running)",
                    names[w]
                ));
                if matches!(verdict, Verdict::Stalled { .. }) {
                    // A stuck lcore can neither be joined nor have its queues
                    // closed under it: remove the socket and leave the rest
                    // (hugepages, devices) to the process's exit.
                    server.shutdown();
                    warn(format_args!("gatewayd: {}", failure.as_deref().unwrap_or_default()));
                    std::process::exit(1);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    // Workers stop first (stop is set), then the fence, the control server, then ports.
    let joined = join_workers(jobs.into_iter().flatten().collect());
    drop(fence);
    drop(watched);
    server.shutdown();
    for c in &counters {
        say(format_args!(
            "worker: rx {} tx {} new_conns {} redirected_out {} redirected_in {} drops {:?}",
            c.rx_packets.get(),
            c.tx_packets.get(),
            c.new_conns.get(),
            c.redirected_out.get(),
            c.redirected_in.get(),
            c.nonzero_drops()
        ));
    }
    release(open_ports, pool, eal);
    match failure {
        Some(failure) => Err(failure),
        None => joined,
    }
}

/// Waits for every worker lcore; the last failure (a panic) is the error.
pub fn join_workers<T>(jobs: Vec<LcoreJob<T>>) -> Result<(), String> {
    let mut failed = Ok(());
    for job in jobs {
        if let Err(e) = job.join() {
            failed = Err(e.to_string());
        }
    }
    failed
}

/// Closes the ports (their queued mbufs go back to the pool), reports any
/// mbuf still out, and releases DPDK. Call after every worker has stopped.
pub fn release(ports: Vec<Port>, pool: Mempool, eal: Eal) {
    drop(ports);
    if !pool.is_full() {
        warn(format_args!("gatewayd: {} mbufs not returned to the pool at exit", pool.in_use_count()));
    }
    drop(pool);
    if let Err((_, e)) = eal.cleanup() {
        warn(format_args!("gatewayd: {e}"));
    }
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
            (r#", "mbufs": 2047"#, "\"mbufs\": 2047 is fewer than the 4992 that 2 port(s) with 1 worker(s) need"),
            (r#", "mbufs": 3000000000"#, "\"mbufs\": 3000000000 is above 67108864"),
            (
                r#", "routes": [{"dst": "10.1.2.3/16", "dev": "a"}]"#,
                "\"routes\"[0]: invalid prefix for given prefix length: 10.1.2.3/16 has host bits set",
            ),
        ];
        for (members, want) in cases {
            let got = refusal(members);
            assert!(got.contains(want), "{members}: expected {want:?} in {got:?}");
        }
    }

    #[test]
    fn a_top_level_array_is_not_a_configuration() {
        let err = Config::parse(r#"[[], [{"device": "d", "name": "a"}]]"#).unwrap_err().0;
        assert!(err.starts_with("the configuration: expected an object"), "{err}");
        let err = Config::parse(r#"{"eal": [], "ports": [["d", "a"]]}"#).unwrap_err().0;
        assert!(err.starts_with("\"ports\"[0]: expected an object"), "{err}");
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
    fn the_mbuf_bounds_follow_the_queues() {
        // 2 ports, 1 worker: 4096 descriptors' mbufs, 2 caches of 384, 4 bursts of 32.
        assert_eq!(min_mbufs(2, 1), 4096 + 768 + 128);
        assert!(min_mbufs(2, 2) > 2 * min_mbufs(2, 1) - 1000);
        assert!(check_mbufs(4992, 2, 1).is_ok());
        assert!(check_mbufs(4991, 2, 1).is_err());
        // What parses with one worker can still be too few for the workers the EAL gives.
        let err = check_mbufs(8191, 2, 2).unwrap_err().0;
        assert!(err.contains("\"mbufs\": 8191 is fewer than the 9664 that 2 port(s) with 2 worker(s) need"), "{err}");
        assert!(check_mbufs(MAX_MBUFS, 2, 1).is_ok() && check_mbufs(MAX_MBUFS + 1, 2, 1).is_err());
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
        assert!(started.elapsed() < Duration::from_secs(5), "refused quickly: {:?}", started.elapsed());
    }

    /// A configuration file with `n` static neighbours on the "client" port.
    fn with_neighbours(n: usize) -> String {
        let neighbours: Vec<String> = (0..n)
            .map(|i| {
                let addr = Ipv4Addr::from(0x0a00_0000 + i as u32 + 1);
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
