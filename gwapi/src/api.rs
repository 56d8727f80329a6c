//! The control API: every request `gwctl` (or any automation) sends to `gatewayd`, and every
//! reply, as serde types shared by both programs.
//!
//! Design choices:
//!
//! - **A wire vocabulary of its own.** These types mirror the gateway's model
//!   (`gateway::model`) but are separate from it, in a crate of their own: the model is free
//!   to change its internal representation, while what is on the socket is versioned
//!   ([`PROTOCOL_VERSION`]) and stable. The conversions live in `gateway::control::apply`.
//! - **Mutations are lists.** [`Request::Apply`] carries a list of [`Change`]s that the server
//!   validates in full and applies all or nothing; one ipvsadm command is a list of one, and
//!   `gwctl -R` sends a whole rule file as one list, so a bad line in a restore changes
//!   nothing (ipvsadm itself applies the lines before the bad one). A rule file of any size
//!   goes as a [`Request::ApplyStream`]: the request line says how many changes follow, one
//!   per line, so no frame grows with the file and the server never holds its JSON text.
//! - **Compatible growth.** New commands, new error kinds and new optional reply fields
//!   keep [`PROTOCOL_VERSION`]: an older server answers a new command with
//!   [`ErrorKind::UnknownCommand`], an older client ignores reply fields it does not know.
//! - **Listings are structured.** The server returns data, never text: `gwctl` formats it the
//!   way ipvsadm does, and `--json` prints the same structure unchanged.
//! - **Numbers the user typed stay wide** (`weight: u32`), so the server's error can name an
//!   out-of-range value instead of serde truncating or rejecting it anonymously.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::health::{HealthCheckConfig, PassiveConfig, PassiveCounts, ServerHealth};

/// The protocol version this build speaks. A request with another version gets
/// [`ErrorKind::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The IPVS version whose behaviour and listings the gateway reproduces (`-L`'s first line,
/// [`GatewayInfo::ipvs_version`], and `gwctl --version`).
pub const IPVS_VERSION: &str = "1.2.1";

/// The largest frame the server reads, newline included: a whole request, or one change of
/// a [`Request::ApplyStream`]; a larger one gets [`ErrorKind::TooLarge`]. One rule (`-a ...`)
/// is about 200 bytes of JSON, so a single [`Request::Apply`] holds some 20 000 rules;
/// larger rule files are streamed. Small enough to bound the memory a client can make the
/// server hold for one frame.
pub const MAX_REQUEST_BYTES: usize = 4 << 20;

/// The most changes one [`Request::ApplyStream`] may carry: ten times a table of a million
/// real servers, and a bound (some 200 bytes each once decoded) on what one client can make
/// the server hold.
pub const MAX_STREAMED_CHANGES: u64 = 10_000_000;

/// The largest reply a client accepts (a connection listing can be long).
pub const MAX_REPLY_BYTES: usize = 256 << 20;

/// What goes on the socket from client to server: one JSON object and a newline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub version: u32,
    pub request: Request,
}

/// What comes back: `{"version":1,"ok":{...}}` or `{"version":1,"error":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub version: u32,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(Reply),
    Error(ApiError),
}

/// A request. The `command` field names the variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Validates every change, then applies them all at once (or none) and returns when
    /// every worker runs the new configuration.
    Apply { changes: Vec<Change> },
    /// An [`Request::Apply`] too large for one frame (`gwctl -R` of a big rule file): this
    /// request line is followed by exactly `changes` lines, each one [`Change`]. The server
    /// reads them all, then applies them as one `Apply` (all or nothing, one snapshot); a
    /// stream that ends early or holds a bad line changes nothing, and the error's
    /// `change_index` says which change it was.
    ApplyStream { changes: u64 },
    /// `-Z`: zeroes the traffic counters of one service or of all.
    Zero { service: Option<VirtualService> },
    /// `-L`, `-S`: the services with their real servers, local addresses and counters.
    ListServices { service: Option<VirtualService> },
    /// `-Lc`: the connection table of every worker.
    ListConnections,
    /// `-L --timeout`.
    GetTimeouts,
    /// `-G`: the local addresses of one service.
    ListLaddrs { service: VirtualService },
    /// `gwctl mark show`.
    ListMarks,
    /// `gwctl addr show`.
    ListAddrs,
    /// `gwctl route show`.
    ListRoutes,
    /// `gwctl neigh show`.
    ListNeighbours,
    /// `gwctl link show`: port and queue counters.
    ListLinks,
    /// `gwctl stats`: per-worker packet counters and drop reasons.
    GetStats,
    /// Version and table size (the first line of `-L`).
    Info,
    /// `-L --daemon`, `gwctl sync`: the sync daemons running and the sync counters.
    ListDaemons,
    /// `gwctl --health -L`: every checked server with its checker's state.
    ListHealth,
}

impl Request {
    /// Every `command` name the server understands: a request naming another one is an
    /// unknown command, reported as such rather than as malformed JSON.
    pub const COMMANDS: [&'static str; 16] = [
        "apply",
        "apply_stream",
        "zero",
        "list_services",
        "list_connections",
        "get_timeouts",
        "list_laddrs",
        "list_marks",
        "list_addrs",
        "list_routes",
        "list_neighbours",
        "list_links",
        "get_stats",
        "info",
        "list_daemons",
        "list_health",
    ];
}

/// One configuration change, validated and applied as part of a [`Request::Apply`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// `-A`.
    AddService { service: ServiceConfig },
    /// `-E`.
    EditService { service: ServiceConfig },
    /// `-D`.
    DeleteService { service: VirtualService },
    /// `-C`: every service goes; mark rules, timeouts and network configuration stay.
    Clear,
    /// `-a`.
    AddServer { service: VirtualService, server: ServerConfig },
    /// `-e`.
    EditServer { service: VirtualService, server: ServerConfig },
    /// `-d`.
    DeleteServer { service: VirtualService, addr: IpAddr, port: u16 },
    /// `--set tcp tcpfin udp`; 0 keeps the current value.
    SetTimeouts { tcp: u32, tcp_fin: u32, udp: u32 },
    /// `-P -z addr -F ifname`.
    AddLaddr { service: VirtualService, laddr: LaddrConfig },
    /// `-Q -z addr`.
    DeleteLaddr { service: VirtualService, addr: IpAddr },
    /// `--start-daemon`: a connection sync daemon. Not part of the configuration snapshot:
    /// the daemon starts when the change is applied (a running one of the same state is
    /// [`ErrorKind::DaemonRunning`], an interface that does not exist [`ErrorKind::NoDevice`]).
    StartDaemon { daemon: SyncDaemonConfig },
    /// `--stop-daemon` ([`ErrorKind::DaemonNotRunning`] if none of that state runs).
    StopDaemon { state: SyncState },
    /// `gwctl mark add`.
    AddMark { rule: MarkRuleConfig },
    /// `gwctl mark del`: every rule of the mark.
    DeleteMark { mark: u32 },
    /// `gwctl addr add`.
    AddAddr { addr: InterfaceAddr },
    /// `gwctl addr del`.
    DeleteAddr { addr: InterfaceAddr },
    /// `gwctl route add`.
    AddRoute { route: RouteConfig },
    /// `gwctl route del`: by destination prefix.
    DeleteRoute { dst: IpAddr, prefix_len: u8 },
    /// `gwctl neigh add`.
    AddNeighbour { neighbour: NeighbourConfig },
    /// `gwctl neigh del`.
    DeleteNeighbour { addr: IpAddr, ifname: String },
    /// `gwctl --health -t VIP:PORT [-r RIP:PORT] --check ...`: the check of one real server,
    /// or (without `server`) of every server of the service that has none of its own;
    /// replaces the one there was.
    SetHealthCheck {
        service: VirtualService,
        #[serde(default)]
        server: Option<(IpAddr, u16)>,
        check: HealthCheckConfig,
    },
    /// `gwctl --health -D -t VIP:PORT [-r RIP:PORT]`: a server held down by it gets its
    /// configured weight back.
    DeleteHealthCheck {
        service: VirtualService,
        #[serde(default)]
        server: Option<(IpAddr, u16)>,
    },
    /// `gwctl --health -t VIP:PORT --passive ...`: passive detection of the service's
    /// failing servers, on (or its settings replaced).
    SetPassive { service: VirtualService, passive: PassiveConfig },
    /// `gwctl --health -D -t VIP:PORT --passive`: off; the servers it held get their
    /// weight back.
    DeletePassive { service: VirtualService },
}

/// The identity of a virtual service: `-t addr:port`, `-u addr:port` or `-f mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VirtualService {
    Tcp { addr: IpAddr, port: u16 },
    Udp { addr: IpAddr, port: u16 },
    Fwmark { mark: u32 },
}

/// `-A`/`-E`: a service and its options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub service: VirtualService,
    /// A scheduler name (`rr`, `wlc`, ..., `mh`); a string so an unknown one is reported by
    /// name.
    #[serde(default = "default_scheduler")]
    pub scheduler: String,
    #[serde(default)]
    pub persistence: Option<PersistenceConfig>,
    /// `-o`: one-packet scheduling (UDP). Not implemented by the workers, so a
    /// request with it set is refused (`apply::service_spec`); replies say false.
    #[serde(default)]
    pub one_packet: bool,
    /// `-j enable`: SYN proxy (DPVS extension).
    #[serde(default)]
    pub synproxy: bool,
    /// `--proxy-protocol v1|v2`: the client's address in a PROXY protocol header in front
    /// of the stream to the real server (TCP, FNAT and NAT servers; no TOA then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// A PROXY protocol version (HAProxy's specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyProtocol {
    /// The text header, `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary header.
    V2,
}

impl ProxyProtocol {
    /// The word gwctl takes and prints: `v1` or `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    /// Reads `v1` or `v2`.
    pub fn parse(s: &str) -> Option<ProxyProtocol> {
        match s {
            "v1" => Some(ProxyProtocol::V1),
            "v2" => Some(ProxyProtocol::V2),
            _ => None,
        }
    }
}

fn default_scheduler() -> String {
    "wlc".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistenceConfig {
    /// Seconds (`-p`).
    pub timeout: u32,
    /// `-M`: a contiguous mask of the service's family.
    pub netmask: IpAddr,
}

/// How packets reach a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Forwarding {
    /// `-b` (DPVS extension).
    FullNat,
    /// `-m`.
    Masq,
    /// `-g`, the default.
    Route,
    /// `-i`.
    Tunnel,
}

/// `-a`/`-e`: a real server and its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: IpAddr,
    pub port: u16,
    #[serde(default = "default_forwarding")]
    pub forwarding: Forwarding,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub upper_threshold: u32,
    #[serde(default)]
    pub lower_threshold: u32,
}

fn default_forwarding() -> Forwarding {
    Forwarding::Route
}

fn default_weight() -> u32 {
    1
}

/// `-P -z addr -F ifname`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaddrConfig {
    pub addr: IpAddr,
    pub ifname: String,
}

/// A local address with its usage (`-G`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaddrInfo {
    pub addr: IpAddr,
    pub ifname: String,
    /// Port allocations that found every port of the address in use (DPVS's
    /// `conflict_cnt`), summed over the workers.
    pub port_conflicts: u64,
    /// Connections using the address now, summed over the workers. Ports are pooled per
    /// address, so this counts the connections of every service listing the address.
    pub conns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Master,
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncDaemonConfig {
    pub state: SyncState,
    /// The Linux interface the sync group is sent to or joined on (a kernel exception
    /// interface of gatewayd, such as `gwk0`).
    pub mcast_interface: String,
    /// 0..=255; a backup with 0 takes every syncid.
    pub syncid: u32,
}

/// The sync daemons running, master first, and the sync counters (`-L --daemon`,
/// `gwctl sync`). The counters outlive the daemons: a restarted one goes on counting.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncInfo {
    pub daemons: Vec<SyncDaemonConfig>,
    pub master: SyncMasterStats,
    pub backup: SyncBackupStats,
    /// The workers' side, summed over the workers.
    pub workers: WorkerSyncStats,
}

/// What the master daemon sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncMasterStats {
    pub records_sent: u64,
    pub datagrams_sent: u64,
    /// Datagrams the socket refused.
    pub send_errors: u64,
    /// Records dropped: their datagram was over the daemon's rate.
    pub rate_dropped: u64,
}

/// What the backup daemon received.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SyncBackupStats {
    pub datagrams_received: u64,
    /// Datagrams dropped whole, by reason (`truncated`, `bad_version`, `size_mismatch`,
    /// `bad_record`, `bad_option`), every reason listed.
    pub malformed: Vec<(String, u64)>,
    /// Datagrams of another syncid, dropped.
    pub syncid_mismatch: u64,
    /// Datagrams that do not follow the last one of their sender (a replay, or one of an
    /// earlier run of it), dropped.
    #[serde(default)]
    pub stale: u64,
    /// Records of the datagrams taken.
    pub records_received: u64,
    /// Records that cannot be read alone (an unknown mandatory option, persistence engine
    /// data): skipped.
    pub records_skipped: u64,
    /// Records handed to the worker that is to carry them.
    pub records_handed: u64,
    /// Records dropped: that worker's queue was full.
    pub worker_queue_full: u64,
}

/// The workers' sync counters, summed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkerSyncStats {
    /// Records queued toward the master daemon.
    pub queued: u64,
    /// Records dropped: the queue toward the daemon was full.
    pub queue_full: u64,
    /// Received records that created a connection.
    pub installed: u64,
    /// Received records that refreshed one.
    pub updated: u64,
    /// Received records refused, by reason, every reason listed.
    pub refused: Vec<(String, u64)>,
}

/// `gwctl mark add MARK -d PREFIX [-p PROTO] [--dports P,LO-HI]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRuleConfig {
    pub mark: u32,
    pub dst: IpAddr,
    pub prefix_len: u8,
    /// `None`: TCP and UDP.
    #[serde(default)]
    pub protocol: Option<TransportProtocol>,
    /// Inclusive ranges; empty matches every port.
    #[serde(default)]
    pub ports: Vec<(u16, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportProtocol {
    Tcp,
    Udp,
}

/// An address the gateway owns on one of its interfaces (`gwctl addr add 10.0.0.1/24 dev
/// dpdk0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceAddr {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub ifname: String,
}

/// Whether the gateway serves an address now. With a kernel interface, a VIP or local
/// address is served (ARP answered, new connections accepted) only while a kernel interface
/// carries it, so keepalived's `virtual_ipaddress` moves it between directors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HeldAddr {
    pub addr: IpAddr,
    pub held: bool,
}

/// A route (`gwctl route add 192.168.0.0/16 via 10.0.0.254 dev dpdk0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub dst: IpAddr,
    pub prefix_len: u8,
    /// The next hop; `None` for an on-link route.
    #[serde(default)]
    pub via: Option<IpAddr>,
    pub ifname: String,
}

/// A static neighbour (`gwctl neigh add 10.0.0.254 lladdr 52:54:00:12:34:56 dev dpdk0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighbourConfig {
    pub addr: IpAddr,
    /// Six bytes, written `aa:bb:cc:dd:ee:ff` on the command line.
    pub lladdr: [u8; 6],
    pub ifname: String,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A change was applied and every worker confirmed it.
    Applied {
        generation: u64,
    },
    /// Counters zeroed.
    Zeroed,
    Services(ServiceTable),
    Connections {
        connections: Vec<ConnectionInfo>,
        /// Why the listing misses connections, one reason each (a worker that did not
        /// answer, the listing's bound); empty when it is complete. Older clients ignore it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        incomplete: Vec<String>,
    },
    Timeouts(TimeoutsInfo),
    Laddrs {
        service: VirtualService,
        laddrs: Vec<LaddrInfo>,
    },
    Marks {
        rules: Vec<MarkRuleConfig>,
    },
    Addrs {
        addrs: Vec<InterfaceAddr>,
        /// With a kernel interface on some port: the VIPs and local addresses of the
        /// services and the addresses the kernel interfaces carry, each with whether it is
        /// held (served here). Absent without kernel interfaces, where every address is
        /// held; older clients ignore it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        held: Option<Vec<HeldAddr>>,
    },
    Routes {
        routes: Vec<RouteConfig>,
    },
    Neighbours {
        neighbours: Vec<NeighbourConfig>,
    },
    Links {
        links: Vec<LinkInfo>,
    },
    Stats {
        workers: Vec<WorkerStats>,
    },
    Info(GatewayInfo),
    Daemons(SyncInfo),
    /// `gwctl --health -L`.
    Health {
        servers: Vec<ServerHealth>,
    },
}

/// The IPVS-compatible version and the connection table size shown by `-L`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// `major.minor.patch` of the IPVS behaviour we reproduce.
    pub ipvs_version: String,
    /// Connection table size (`size=` in `-L`'s first line).
    pub conn_table_size: u64,
    /// The configuration generation workers run.
    pub generation: u64,
}

/// `-L`'s data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceTable {
    pub info: GatewayInfo,
    /// In the order they were added; `gwctl` sorts them as ipvsadm does.
    pub services: Vec<ServiceInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub config: ServiceConfig,
    pub stats: TrafficStats,
    pub servers: Vec<ServerInfo>,
    pub laddrs: Vec<LaddrConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub config: ServerConfig,
    /// ipvsadm's ActiveConn, InActConn and PersistConn.
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: TrafficStats,
    /// The weight the workers schedule with when a health check holds the server at another
    /// than `config.weight`, the configured one (0 while it is down and inhibited): `-L`
    /// shows this one, `-S` the configured one. Older clients ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_weight: Option<u32>,
    /// How its new connections ended (passive health detection's counts).
    #[serde(default)]
    pub passive: PassiveCounts,
}

impl ServerInfo {
    /// A server as configured, with no connections or traffic yet and no health check
    /// holding its weight (a listing of a configuration not yet applied).
    pub fn configured(config: ServerConfig) -> ServerInfo {
        ServerInfo {
            config,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: 0,
            stats: TrafficStats::default(),
            checked_weight: None,
            passive: PassiveCounts::default(),
        }
    }
}

/// Traffic counters and rates of a service or real server (`--stats`, `--rate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficStats {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    /// Per second, over the last estimation interval.
    pub cps: u64,
    pub in_pps: u64,
    pub out_pps: u64,
    pub in_bps: u64,
    pub out_bps: u64,
}

/// One row of `-Lc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub protocol: TransportProtocol,
    /// IPVS state name (`ESTABLISHED`, `SYN_RECV`, ..., `UDP`).
    pub state: String,
    /// Seconds until the entry expires.
    pub expires: u32,
    pub client: (IpAddr, u16),
    pub virtual_addr: (IpAddr, u16),
    pub server: (IpAddr, u16),
    /// The local address of a FNAT connection.
    #[serde(default)]
    pub local: Option<(IpAddr, u16)>,
    /// The worker that owns the entry.
    pub worker: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutsInfo {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// Port counters (`gwctl link show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub name: String,
    pub port_id: u16,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub up: bool,
    /// The driver cannot know the link's state (`up` is then true: the port
    /// is used): a `net_tap` whose kernel interface was moved into another
    /// network namespace, where the PMD's ioctl on its name finds nothing.
    #[serde(default)]
    pub state_unknown: bool,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Receive errors, those for want of an mbuf (`rx_nombuf`) included.
    pub rx_errors: u64,
    /// Of `rx_errors`, packets received with no mbuf to put them in (the pool ran dry).
    #[serde(default)]
    pub rx_nombuf: u64,
    /// Packets the NIC dropped because no descriptor was free.
    pub rx_missed: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub queues: Vec<QueueInfo>,
    /// The port's kernel exception interface and what crossed it; absent
    /// for a port without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelLinkInfo>,
}

/// A port's kernel exception interface (`"kernel"` in gatewayd's
/// configuration) as `gwctl link` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLinkInfo {
    /// The Linux interface's name; `None` when the port has no kernel
    /// interface but frames for one were dropped (`no_kernel`).
    pub name: Option<String>,
    /// Frames handed to the kernel interface.
    pub to_kernel: u64,
    /// Frames the kernel sent that left by the port.
    pub from_kernel: u64,
    /// Frames lost on the way, by reason (`tap_full`: the kernel interface
    /// refused them; `port_full`: the port's tx queue did; `no_kernel`: for a
    /// port without a kernel interface).
    pub drops: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInfo {
    pub queue: u16,
    pub worker: u32,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// One worker's counters (`gwctl stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStats {
    pub worker: u32,
    pub lcore: u32,
    /// `None` while the worker polls; else why not ("stopped: panicked: ...",
    /// "stalled: no poll for 5 s").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets handed to the worker that owns their connection, and received that way.
    pub redirected_out: u64,
    pub redirected_in: u64,
    /// Connections this worker created since it started.
    pub new_connections: u64,
    /// Its connection table: live entries and capacity.
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub connection_capacity: u64,
    /// Other nonzero event counters by name (ARP, ICMP, TOA, connection reuse, SYN proxy).
    #[serde(default)]
    pub events: Vec<(String, u64)>,
    /// Nonzero drop counters by reason name (the classifier's and the pipeline's).
    pub drops: Vec<(String, u64)>,
    /// The gateway's own packets toward the ports' kernel interfaces, per port
    /// and class where any was handed over or refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel: Vec<KernelPathStats>,
    /// Where its poll loop's time went; `None` for a worker that has not
    /// polled (its cycle counter's rate is not known yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollStats>,
}

/// Where a worker's poll loop spent its time, in time-stamp counter cycles
/// since it started (`gwctl stats`' `poll` and `cycles a packet` lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollStats {
    /// The counter's cycles per second.
    pub hz: u64,
    /// Non-empty bursts the pipeline took (from the ports and redirects:
    /// `rx_packets` and `redirected_in` over it is the mean burst).
    pub bursts: u64,
    /// Cycles of polls that received or sent something.
    pub busy: u64,
    /// Cycles of polls that moved nothing (resting included).
    pub idle: u64,
    /// Of `busy`: in the pipeline, and handing frames to the ports and rings.
    pub pipeline: u64,
    pub send: u64,
}

/// What one worker handed toward one port's kernel interface, of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelPathStats {
    pub port_id: u16,
    /// `"control"` (ARP, VRRP, IGMP, OSPF, BGP, IPv6 neighbour discovery) or `"bulk"`.
    pub class: String,
    /// Handed to the ring toward the main lcore (a full ring is the drop `kernel_queue_full`).
    pub handed: u64,
    /// Refused by the port's rate for the class (the drop `kernel_rate_limited`).
    pub rate_limited: u64,
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub kind: ErrorKind,
    /// Names the offending value.
    pub message: String,
    /// For [`Request::Apply`]: the position of the change that was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_index: Option<usize>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into(), change_index: None }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// Why a request was refused. Clients branch on this; the message is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not JSON, not an object of the expected shape, or a field of the wrong type.
    Malformed,
    /// Over [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// The client did not send a complete request in time.
    Timeout,
    UnsupportedVersion,
    UnknownCommand,
    /// The client's uid may not use the control socket.
    PermissionDenied,
    ServiceExists,
    ServiceNotFound,
    DestExists,
    DestNotFound,
    SchedulerNotFound,
    LaddrExists,
    LaddrNotFound,
    MarkRuleExists,
    MarkRuleNotFound,
    /// An address, route or neighbour that is already configured.
    EntryExists,
    EntryNotFound,
    /// A value out of range or inconsistent with the rest of the request.
    InvalidArgument,
    /// A feature this gateway does not have.
    Unsupported,
    /// `--start-daemon` of a state whose daemon runs (ipvsadm: "Daemon has already run").
    DaemonRunning,
    /// `--stop-daemon` of a state whose daemon does not run ("No daemon is running").
    DaemonNotRunning,
    /// `--mcast-interface` names no interface ("No such device").
    NoDevice,
    /// The sync daemon's socket or thread could not be set up.
    DaemonFailed,
    /// The workers did not confirm the new configuration; the previous one stays.
    PublishFailed,
    /// The server is serving as many clients as it serves at once; try again.
    Busy,
}
