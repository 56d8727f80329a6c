//! gatewayd's Prometheus exporter: `"metrics": "127.0.0.1:9469"` in the configuration
//! file serves the Prometheus text exposition (format 0.0.4) at `/metrics` on that address.
//!
//! What it serves is what `gwctl` shows, collected when a scrape arrives and at no other
//! time: the exporter asks the control server the questions `gwctl -Ln --stats`,
//! `gwctl stats` and `gwctl link` ask ([`Request::ListServices`], [`Request::GetStats`],
//! [`Request::ListLinks`]) over the control socket, as a client of its own daemon. So every
//! number has one source, the control plane's answer ([`crate::control::ControlState`]
//! over the model's snapshot and the daemon's [`crate::control::DataplaneView`]), which
//! reads the counters the workers already keep (relaxed atomics; nothing per packet, no
//! question to a worker); and a metric equals the `gwctl` column of the same moment.
//!
//! Crates, for the simplest robust whole:
//! - `prometheus-client` (the Prometheus project's Rust client) encodes the exposition:
//!   names, label escaping and `# HELP`/`# TYPE` lines by a maintained encoder. Its
//!   [`Collector`] is the collect-at-scrape hook: each scrape's answers are encoded as
//!   constant counters and gauges, with no registry of live metrics to keep in step with
//!   services that come and go. (`metrics-exporter-prometheus` keeps a recorder of its own
//!   that the code would have to push every value into before each render: a second copy
//!   of the counters.)
//! - `tiny_http` answers HTTP: one small dependency, no async runtime. Scrapes are
//!   answered one at a time on the exporter's thread, `gw-metrics`, which the main lcore's
//!   thread starts, so it (and `tiny_http`'s connection threads) run where the control
//!   plane runs, never on a worker's lcore.
//!
//! Metrics (prefix `gateway_`; counters end in `_total`; bytes in bytes):
//! - per service (`service="TCP 10.0.0.100:80"`, ipvsadm's naming) and real server
//!   (`server="192.168.1.10:8080"`): connections, packets and bytes by `direction` (`in`:
//!   client to server, `out`: back), and per server the active, inactive and persistent
//!   connections and the weight, and how its new connections ended (passive health
//!   detection's counts: failures by `reason`, successes);
//! - per worker (`worker="0"`): up (polling), received and sent packets and bytes,
//!   redirected packets by `direction`, connections created and live, the table's
//!   capacity, drops by `reason` and other events by `event` (zero included, so a rate
//!   is right from the first one), the SYN proxy's events apart, and the gateway's own
//!   packets handed toward each port's kernel interface or refused by its rate, by
//!   `port` and `class` (zero included for every port);
//! - per port (`port="client"`, the configuration's name): link up, the DPDK port
//!   counters (received, missed for want of a descriptor, lost for want of an mbuf,
//!   errors; sent, errors);
//! - connection sync (`gwctl sync`, [`Request::ListDaemons`]): which daemons run (by
//!   `state`), the master's records and datagrams sent, send errors and records over its
//!   rate; the backup's datagrams received, malformed ones by `reason`, syncid mismatches,
//!   stale ones (replays), records received, skipped, handed to a worker and dropped at a
//!   full worker queue; the workers' records queued, dropped at a full queue, installed, updated and refused by
//!   `reason` (every reason listed, zero included);
//! - the configuration's generation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use gwapi::api::{
    KernelPathStats, LinkInfo, PollStats, Reply, Request, ServiceInfo, SyncInfo, SyncState, TrafficStats, WorkerStats,
};
use gwapi::client::Client;

use crate::control::apply::service_key;
use crate::model::types::SockAddr;
use crate::net::KernelClass;
use crate::worker::counters::{Discard, WorkerCounters};

/// The path scrapes ask for.
pub const METRICS_PATH: &str = "/metrics";

/// How long a scrape waits for the control server: a request in progress (a large
/// configuration change) may hold it; beyond this the scrape fails with 503.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the exporter's thread looks at its stop flag between requests.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Binds the exporter's address. `gatewayd` does it before it touches a device, so an
/// address in use or not local stops the daemon at start, naming the address.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).map_err(|e| format!("metrics listener {addr}: {e}"))
}

/// The running exporter; dropping it stops its thread.
pub struct Exporter {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    /// Serves scrapes on `listener` from the answers of the control server at `control_socket`.
    pub fn spawn(listener: TcpListener, control_socket: &Path) -> Result<Exporter, String> {
        let addr = listener.local_addr().map_err(|e| format!("metrics listener: {e}"))?;
        let server =
            tiny_http::Server::from_listener(listener, None).map_err(|e| format!("metrics listener {addr}: {e}"))?;
        let client = Client::new(control_socket).with_timeout(CONTROL_TIMEOUT);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("gw-metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match server.recv_timeout(STOP_POLL) {
                        Ok(Some(request)) => answer(request, &client),
                        Ok(None) => {}
                        // tiny_http's accept loop ended (the listener failed): nothing
                        // more will arrive; say so once instead of spinning.
                        Err(e) => {
                            use std::io::Write;
                            let _ = writeln!(std::io::stderr(), "gatewayd: metrics listener {addr} failed: {e}");
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("metrics thread: {e}"))?;
        Ok(Exporter { addr, stop, thread: Some(thread) })
    }

    /// The address it listens on (the bound port when the file said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one HTTP request; a client that left before the answer is nobody's concern.
fn answer(request: tiny_http::Request, client: &Client) {
    let path = request.url().split('?').next().unwrap_or_default();
    let response = match (request.method(), path) {
        (tiny_http::Method::Get | tiny_http::Method::Head, METRICS_PATH) => match Scrape::query(client) {
            Ok(scrape) => text(200, scrape.exposition(), prometheus_client::encoding::prometheus_text::CONTENT_TYPE),
            Err(e) => text(503, format!("gatewayd: no answer from the control server: {e}\n"), PLAIN),
        },
        (tiny_http::Method::Get | tiny_http::Method::Head, _) => {
            text(404, format!("gatewayd serves its metrics at {METRICS_PATH}\n"), PLAIN)
        }
        _ => text(405, format!("gatewayd's exporter answers GET {METRICS_PATH} only\n"), PLAIN),
    };
    let _ = request.respond(response);
}

const PLAIN: &str = "text/plain; charset=utf-8";

fn text(status: u16, body: String, content_type: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let response = tiny_http::Response::from_string(body).with_status_code(status);
    match tiny_http::Header::from_bytes("Content-Type", content_type) {
        Ok(header) => response.with_header(header),
        // Only a constant of this module is given; it is a valid header value.
        Err(()) => response,
    }
}

/// One scrape's answers from the control server.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    pub generation: u64,
    pub services: Vec<ServiceInfo>,
    pub workers: Vec<WorkerStats>,
    pub links: Vec<LinkInfo>,
    pub sync: SyncInfo,
}

impl Scrape {
    /// Asks the control server what `gwctl -Ln --stats`, `gwctl stats` and `gwctl link` ask.
    pub fn query(client: &Client) -> Result<Scrape, String> {
        let unexpected = |what: &str, reply: Reply| format!("{what}: unexpected reply {reply:?}");
        let table = match client.call(&Request::ListServices { service: None }).map_err(|e| e.to_string())? {
            Reply::Services(table) => table,
            other => return Err(unexpected("services", other)),
        };
        let workers = match client.call(&Request::GetStats).map_err(|e| e.to_string())? {
            Reply::Stats { workers } => workers,
            other => return Err(unexpected("worker counters", other)),
        };
        let links = match client.call(&Request::ListLinks).map_err(|e| e.to_string())? {
            Reply::Links { links } => links,
            other => return Err(unexpected("ports", other)),
        };
        let sync = match client.call(&Request::ListDaemons).map_err(|e| e.to_string())? {
            Reply::Daemons(sync) => sync,
            other => return Err(unexpected("sync daemons", other)),
        };
        Ok(Scrape { generation: table.info.generation, services: table.services, workers, links, sync })
    }

    /// The Prometheus text exposition of these answers.
    pub fn exposition(self) -> String {
        let mut registry = Registry::with_prefix("gateway");
        registry.register_collector(Box::new(self));
        let mut text = String::new();
        // Writing to a String fails only if an encoder refuses a value; ours are plain numbers.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }
}

/// A label set of one sample.
type Labels = Vec<(&'static str, String)>;

/// Writes one metric family: its `# HELP` and `# TYPE` lines, then its samples.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        let sample = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(sample)?,
            _ => ConstGauge::new(value).encode(sample)?,
        }
    }
    Ok(())
}

/// `in` and `out` samples of one traffic counter pair.
fn by_direction(labels: &Labels, inward: u64, outward: u64) -> [(Labels, u64); 2] {
    let with = |direction: &str| {
        let mut l = labels.clone();
        l.push(("direction", direction.to_string()));
        l
    };
    [(with("in"), inward), (with("out"), outward)]
}

/// An event's name as a label value: `"icmp errors rate-limited"` is `icmp_errors_rate_limited`.
fn label_value(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Every name in `all` with its count in `reported` (which lists non-zero counts only).
fn zero_filled(all: impl Iterator<Item = &'static str>, reported: &[(String, u64)]) -> BTreeMap<&'static str, u64> {
    let mut counts: BTreeMap<&'static str, u64> = all.map(|name| (name, 0)).collect();
    for (name, n) in reported {
        if let Some(count) = counts.get_mut(name.as_str()) {
            *count = *n;
        }
    }
    counts
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let e = &mut encoder;
        family(
            e,
            "config_generation",
            "The configuration generation the workers run; each applied change raises it.",
            Gauge,
            [(Labels::new(), self.generation)],
        )?;
        self.encode_services(e)?;
        self.encode_workers(e)?;
        self.encode_sync(e)?;

        let port = |l: &LinkInfo| vec![("port", l.name.clone())];
        let per_port = |value: fn(&LinkInfo) -> u64| self.links.iter().map(move |l| (port(l), value(l)));
        family(
            e,
            "port_up",
            "1 when the port's link is up (or its state unknown), else 0.",
            Gauge,
            per_port(|l| u64::from(l.up)),
        )?;
        family(
            e,
            "port_rx_packets",
            "Packets the port received (DPDK ipackets).",
            Counter,
            per_port(|l| l.rx_packets),
        )?;
        family(e, "port_rx_bytes", "Bytes the port received (DPDK ibytes).", Counter, per_port(|l| l.rx_bytes))?;
        family(
            e,
            "port_rx_missed_packets",
            "Packets the NIC dropped because no receive descriptor was free (DPDK imissed).",
            Counter,
            per_port(|l| l.rx_missed),
        )?;
        family(
            e,
            "port_rx_no_mbuf_packets",
            "Packets lost because the mbuf pool was empty (DPDK rx_nombuf).",
            Counter,
            per_port(|l| l.rx_nombuf),
        )?;
        family(
            e,
            "port_rx_errors",
            "Erroneous packets received (DPDK ierrors).",
            Counter,
            per_port(|l| l.rx_errors.saturating_sub(l.rx_nombuf)),
        )?;
        family(e, "port_tx_packets", "Packets the port sent (DPDK opackets).", Counter, per_port(|l| l.tx_packets))?;
        family(e, "port_tx_bytes", "Bytes the port sent (DPDK obytes).", Counter, per_port(|l| l.tx_bytes))?;
        family(
            e,
            "port_tx_errors",
            "Packets the port failed to send (DPDK oerrors).",
            Counter,
            per_port(|l| l.tx_errors),
        )?;
        // The exception path, for ports with a kernel interface (or frames for one).
        let kernel = || self.links.iter().filter_map(|l| l.kernel.as_ref().map(|k| (port(l), k)));
        family(
            e,
            "port_kernel_packets",
            "Frames between the port and its kernel interface: to_kernel (the gateway's own traffic handed to the \
             kernel), from_kernel (what the kernel sent out of the port).",
            Counter,
            kernel().flat_map(|(labels, k)| {
                [("to_kernel", k.to_kernel), ("from_kernel", k.from_kernel)].map(|(direction, n)| {
                    let mut l = labels.clone();
                    l.push(("direction", direction.to_string()));
                    (l, n)
                })
            }),
        )?;
        family(
            e,
            "port_kernel_dropped_packets",
            "Frames lost between the port and its kernel interface, by reason: tap_full (the kernel interface \
             refused them), port_full (the port's tx queue did), no_kernel (for a port without one).",
            Counter,
            kernel().flat_map(|(labels, k)| {
                k.drops.iter().map(move |(reason, n)| {
                    let mut l = labels.clone();
                    l.push(("reason", reason.clone()));
                    (l, *n)
                })
            }),
        )
    }
}

impl Scrape {
    fn encode_sync(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let sync = &self.sync;
        let running = |state: SyncState| u64::from(sync.daemons.iter().any(|d| d.state == state));
        family(
            e,
            "sync_daemon_running",
            "1 while the connection sync daemon of the state (master, backup) runs, else 0.",
            Gauge,
            [("master", running(SyncState::Master)), ("backup", running(SyncState::Backup))]
                .map(|(state, n)| (vec![("state", state.to_string())], n)),
        )?;
        let one = |n: u64| [(Labels::new(), n)];
        let by_reason = |counts: &[(String, u64)]| {
            counts.iter().map(|(reason, n)| (vec![("reason", reason.clone())], *n)).collect::<Vec<_>>()
        };
        let (m, b, w) = (&sync.master, &sync.backup, &sync.workers);
        family(e, "sync_sent_records", "Records the master sync daemon sent.", Counter, one(m.records_sent))?;
        family(e, "sync_sent_datagrams", "Datagrams the master sync daemon sent.", Counter, one(m.datagrams_sent))?;
        family(e, "sync_send_errors", "Datagrams the master's socket refused.", Counter, one(m.send_errors))?;
        family(
            e,
            "sync_rate_dropped_records",
            "Records the master dropped: their datagram was over its rate.",
            Counter,
            one(m.rate_dropped),
        )?;
        family(
            e,
            "sync_received_datagrams",
            "Datagrams the backup sync daemon received.",
            Counter,
            one(b.datagrams_received),
        )?;
        family(
            e,
            "sync_malformed_datagrams",
            "Datagrams the backup dropped whole as malformed, by reason.",
            Counter,
            by_reason(&b.malformed),
        )?;
        family(
            e,
            "sync_syncid_mismatch_datagrams",
            "Datagrams of another syncid, dropped by the backup.",
            Counter,
            one(b.syncid_mismatch),
        )?;
        family(
            e,
            "sync_stale_datagrams",
            "Datagrams the backup dropped as stale: a replay, or one of an earlier run of their sender.",
            Counter,
            one(b.stale),
        )?;
        family(
            e,
            "sync_received_records",
            "Records of the datagrams the backup took.",
            Counter,
            one(b.records_received),
        )?;
        family(
            e,
            "sync_skipped_records",
            "Records the backup cannot read alone (an unknown mandatory option, persistence-engine data), skipped.",
            Counter,
            one(b.records_skipped),
        )?;
        family(e, "sync_handed_records", "Records the backup handed to a worker.", Counter, one(b.records_handed))?;
        family(
            e,
            "sync_worker_queue_full_records",
            "Records the backup dropped: the owning worker's queue was full.",
            Counter,
            one(b.worker_queue_full),
        )?;
        family(e, "sync_queued_records", "Records the workers queued toward the master.", Counter, one(w.queued))?;
        family(
            e,
            "sync_queue_full_records",
            "Records the workers dropped: the queue toward the master was full.",
            Counter,
            one(w.queue_full),
        )?;
        family(e, "sync_installed_records", "Received records that created a connection.", Counter, one(w.installed))?;
        family(e, "sync_updated_records", "Received records that refreshed a connection.", Counter, one(w.updated))?;
        family(
            e,
            "sync_refused_records",
            "Received records the workers refused, by reason.",
            Counter,
            by_reason(&w.refused),
        )
    }

    fn encode_services(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let services: Vec<(Labels, &ServiceInfo)> =
            self.services.iter().map(|s| (vec![("service", service_key(&s.config.service).to_string())], s)).collect();
        let servers: Vec<(Labels, &gwapi::api::ServerInfo)> = services
            .iter()
            .flat_map(|(labels, s)| {
                s.servers.iter().map(move |r| {
                    let mut l = labels.clone();
                    l.push(("server", SockAddr(r.config.addr, r.config.port).to_string()));
                    (l, r)
                })
            })
            .collect();
        let traffic = |e: &mut DescriptorEncoder, what: &str, rows: Vec<(&Labels, &TrafficStats)>| -> fmt::Result {
            family(
                e,
                &format!("{what}_connections"),
                &format!("Connections scheduled to the {what} (ipvsadm --stats Conns)."),
                Counter,
                rows.iter().map(|(l, t)| ((*l).clone(), t.conns)),
            )?;
            family(
                e,
                &format!("{what}_packets"),
                &format!("Packets of the {what}'s connections: in, client to server; out, back (InPkts, OutPkts)."),
                Counter,
                rows.iter().flat_map(|(l, t)| by_direction(l, t.in_packets, t.out_packets)),
            )?;
            family(
                e,
                &format!("{what}_bytes"),
                &format!("Bytes of the {what}'s connections: in, client to server; out, back (InBytes, OutBytes)."),
                Counter,
                rows.iter().flat_map(|(l, t)| by_direction(l, t.in_bytes, t.out_bytes)),
            )
        };
        traffic(e, "service", services.iter().map(|(l, s)| (l, &s.stats)).collect())?;
        traffic(e, "server", servers.iter().map(|(l, r)| (l, &r.stats)).collect())?;
        let per_server =
            |value: fn(&gwapi::api::ServerInfo) -> u64| servers.iter().map(move |(l, r)| (l.clone(), value(r)));
        family(
            e,
            "server_active_connections",
            "The real server's established connections (ipvsadm ActiveConn).",
            Gauge,
            per_server(|r| u64::from(r.active_conns)),
        )?;
        family(
            e,
            "server_inactive_connections",
            "The real server's connections in other states (ipvsadm InActConn).",
            Gauge,
            per_server(|r| u64::from(r.inactive_conns)),
        )?;
        family(
            e,
            "server_persistent_connections",
            "Persistence templates pointing at the real server (ipvsadm PersistConn).",
            Gauge,
            per_server(|r| u64::from(r.persistent_conns)),
        )?;
        family(
            e,
            "server_passive_failures",
            "The real server's new connections that failed, by how (refused: its RST to the SYN; timed_out: the \
             handshake; unanswered: UDP without a reply), counted whether passive detection is on or not.",
            Counter,
            servers.iter().flat_map(|(l, r)| {
                [
                    ("refused", r.passive.refused),
                    ("timed_out", r.passive.timed_out),
                    ("unanswered", r.passive.unanswered),
                ]
                .map(|(how, n)| {
                    let mut l = l.clone();
                    l.push(("reason", how.to_string()));
                    (l, n)
                })
            }),
        )?;
        family(
            e,
            "server_passive_successes",
            "The real server's new connections that succeeded (ESTABLISHED; UDP: a reply).",
            Counter,
            per_server(|r| r.passive.succeeded),
        )?;
        family(
            e,
            "server_weight",
            "The real server's weight in force (0: quiesced, or down and inhibited by its health check).",
            Gauge,
            per_server(|r| u64::from(r.checked_weight.unwrap_or(r.config.weight))),
        )
    }

    fn encode_workers(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let worker = |w: &WorkerStats| vec![("worker", w.worker.to_string())];
        let per_worker = |value: fn(&WorkerStats) -> u64| self.workers.iter().map(move |w| (worker(w), value(w)));
        family(
            e,
            "worker_up",
            "1 while the worker polls, 0 once it stopped or stalled (gwctl stats says why).",
            Gauge,
            per_worker(|w| u64::from(w.health.is_none())),
        )?;
        family(
            e,
            "worker_rx_packets",
            "Packets the worker received from its queues.",
            Counter,
            per_worker(|w| w.rx_packets),
        )?;
        family(
            e,
            "worker_rx_bytes",
            "Bytes the worker received from its queues.",
            Counter,
            per_worker(|w| w.rx_bytes),
        )?;
        family(e, "worker_tx_packets", "Packets the worker sent.", Counter, per_worker(|w| w.tx_packets))?;
        family(e, "worker_tx_bytes", "Bytes the worker sent.", Counter, per_worker(|w| w.tx_bytes))?;
        family(
            e,
            "worker_redirected_packets",
            "Packets handed to the worker that owns their connection (out), or received that way (in).",
            Counter,
            self.workers.iter().flat_map(|w| by_direction(&worker(w), w.redirected_in, w.redirected_out)),
        )?;
        family(
            e,
            "worker_connections_created",
            "Connections the worker created.",
            Counter,
            per_worker(|w| w.new_connections),
        )?;
        family(
            e,
            "worker_connections",
            "Entries in the worker's connection table.",
            Gauge,
            per_worker(|w| w.connections),
        )?;
        family(
            e,
            "worker_connection_capacity",
            "The capacity of the worker's connection table.",
            Gauge,
            per_worker(|w| w.connection_capacity),
        )?;
        family(
            e,
            "worker_dropped_packets",
            "Packets the worker dropped, by reason (gwctl stats' drops).",
            Counter,
            self.workers.iter().flat_map(|w| {
                zero_filled(Discard::all().map(Discard::name), &w.drops).into_iter().map(move |(reason, n)| {
                    let mut l = worker(w);
                    l.push(("reason", reason.to_string()));
                    (l, n)
                })
            }),
        )?;
        let event_names: Vec<&'static str> = WorkerCounters::default().events().map(|(name, _)| name).collect();
        let event_names = &event_names;
        let events = |synproxy: bool| {
            self.workers.iter().flat_map(move |w| {
                zero_filled(event_names.iter().copied(), &w.events).into_iter().filter_map(move |(name, n)| {
                    let own = name.strip_prefix("synproxy ");
                    if own.is_some() != synproxy {
                        return None;
                    }
                    let mut l = worker(w);
                    l.push(("event", label_value(own.unwrap_or(name))));
                    Some((l, n))
                })
            })
        };
        family(
            e,
            "worker_events",
            "Other things the worker did or refused: ARP, ICMP, client-address options, connection reuse and expiry.",
            Counter,
            events(false),
        )?;
        family(
            e,
            "synproxy_events",
            "The SYN proxy's work on the worker: SYN-ACKs with cookies, cookies checked, server handshakes.",
            Counter,
            events(true),
        )?;
        let kernel = |value: fn(&KernelPathStats) -> u64| {
            self.workers.iter().flat_map(move |w| {
                self.links.iter().flat_map(move |l| {
                    KernelClass::ALL.map(|class| {
                        let n = w.kernel.iter().find(|k| k.port_id == l.port_id && k.class == class.name());
                        let mut labels = worker(w);
                        labels.push(("port", l.name.clone()));
                        labels.push(("class", class.name().to_string()));
                        (labels, n.map_or(0, value))
                    })
                })
            })
        };
        family(
            e,
            "worker_kernel_packets",
            "The gateway's own packets the worker handed toward the port's kernel interface, by class.",
            Counter,
            kernel(|k| k.handed),
        )?;
        family(
            e,
            "worker_kernel_rate_limited_packets",
            "The gateway's own packets for the port's kernel interface the worker dropped over its rate, by class.",
            Counter,
            kernel(|k| k.rate_limited),
        )?;
        self.encode_poll(e)
    }

    /// The workers' [`PollStats`], for those that polled: cycles by what the
    /// poll loop did, so that a rate's cycles a packet can be taken apart.
    fn encode_poll(&self, e: &mut DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let polled = || self.workers.iter().filter_map(|w| Some((vec![("worker", w.worker.to_string())], w.poll?)));
        let parts = |part: &'static str, value: fn(&PollStats) -> u64| {
            polled().map(move |(mut l, p)| {
                l.push(("part", part.to_string()));
                (l, value(&p))
            })
        };
        family(
            e,
            "worker_cycles_per_second",
            "The rate of the worker's cycle counter, which its poll cycles count.",
            Gauge,
            polled().map(|(l, p)| (l, p.hz)),
        )?;
        family(
            e,
            "worker_poll_cycles",
            "The worker's cycles: busy (polls that moved packets; of them, pipeline and send) and idle.",
            Counter,
            parts("busy", |p| p.busy)
                .chain(parts("idle", |p| p.idle))
                .chain(parts("pipeline", |p| p.pipeline))
                .chain(parts("send", |p| p.send)),
        )?;
        family(
            e,
            "worker_bursts",
            "Non-empty bursts the worker's pipeline took (rx packets over it: the mean burst).",
            Counter,
            polled().map(|(l, p)| (l, p.bursts)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gwapi::api::{Forwarding, ServerConfig, ServerInfo, ServiceConfig, VirtualService};

    fn scrape() -> Scrape {
        let vip = "10.0.0.100".parse().unwrap();
        let server = |last: u8, conns: u64, active: u32| ServerInfo {
            config: ServerConfig {
                addr: std::net::IpAddr::from([192, 168, 1, last]),
                port: 8080,
                forwarding: Forwarding::FullNat,
                weight: u32::from(last),
                upper_threshold: 0,
                lower_threshold: 0,
            },
            active_conns: active,
            inactive_conns: 2,
            persistent_conns: 0,
            checked_weight: None,
            passive: gwapi::health::PassiveCounts { refused: 3, timed_out: 1, unanswered: 0, succeeded: conns },
            stats: TrafficStats {
                conns,
                in_packets: 7,
                out_packets: 5,
                in_bytes: 700,
                out_bytes: 5000,
                ..Default::default()
            },
        };
        Scrape {
            generation: 3,
            services: vec![ServiceInfo {
                config: ServiceConfig {
                    service: VirtualService::Tcp { addr: vip, port: 80 },
                    scheduler: "rr".into(),
                    persistence: None,
                    one_packet: false,
                    synproxy: false,
                    proxy_protocol: None,
                },
                stats: TrafficStats {
                    conns: 4,
                    in_packets: 14,
                    out_packets: 10,
                    in_bytes: 1400,
                    out_bytes: 10000,
                    ..Default::default()
                },
                servers: vec![server(10, 3, 1), server(11, 1, 0)],
                laddrs: Vec::new(),
            }],
            workers: vec![WorkerStats {
                worker: 0,
                lcore: 1,
                health: None,
                rx_packets: 30,
                rx_bytes: 3000,
                tx_packets: 29,
                tx_bytes: 2900,
                redirected_out: 1,
                redirected_in: 2,
                new_connections: 4,
                connections: 3,
                connection_capacity: 65536,
                events: vec![("arp replies".into(), 2), ("synproxy syn-acks sent".into(), 6)],
                drops: vec![("no_service".into(), 9)],
                kernel: vec![KernelPathStats { port_id: 0, class: "bulk".into(), handed: 12, rate_limited: 3 }],
                poll: Some(PollStats {
                    hz: 2_000_000_000,
                    bursts: 5,
                    busy: 9000,
                    idle: 1000,
                    pipeline: 6000,
                    send: 2000,
                }),
            }],
            links: vec![LinkInfo {
                name: "client".into(),
                port_id: 0,
                mac: [0; 6],
                mtu: 1500,
                up: true,
                state_unknown: false,
                rx_packets: 40,
                rx_bytes: 4000,
                rx_errors: 5,
                rx_nombuf: 3,
                rx_missed: 1,
                tx_packets: 39,
                tx_bytes: 3900,
                tx_errors: 0,
                queues: Vec::new(),
                kernel: None,
            }],
            sync: SyncInfo {
                daemons: vec![gwapi::api::SyncDaemonConfig {
                    state: SyncState::Backup,
                    mcast_interface: "gwk0".into(),
                    syncid: 7,
                }],
                backup: gwapi::api::SyncBackupStats {
                    datagrams_received: 12,
                    malformed: vec![("truncated".into(), 2), ("bad_version".into(), 0)],
                    records_handed: 30,
                    ..Default::default()
                },
                workers: gwapi::api::WorkerSyncStats {
                    installed: 25,
                    refused: vec![("no_service".into(), 5), ("stale".into(), 0)],
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn sync_is_counted_by_role_and_reason() {
        let text = scrape().exposition();
        assert_eq!(
            samples(&text, "gateway_sync_daemon_running"),
            [r#"gateway_sync_daemon_running{state="master"} 0"#, r#"gateway_sync_daemon_running{state="backup"} 1"#],
            "{text}"
        );
        assert_eq!(
            samples(&text, "gateway_sync_received_datagrams_total"),
            ["gateway_sync_received_datagrams_total 12"]
        );
        assert_eq!(samples(&text, "gateway_sync_handed_records_total"), ["gateway_sync_handed_records_total 30"]);
        assert_eq!(samples(&text, "gateway_sync_sent_records_total"), ["gateway_sync_sent_records_total 0"]);
        assert_eq!(
            samples(&text, "gateway_sync_malformed_datagrams_total"),
            [
                r#"gateway_sync_malformed_datagrams_total{reason="truncated"} 2"#,
                r#"gateway_sync_malformed_datagrams_total{reason="bad_version"} 0"#
            ]
        );
        assert_eq!(samples(&text, "gateway_sync_installed_records_total"), ["gateway_sync_installed_records_total 25"]);
        assert_eq!(
            samples(&text, "gateway_sync_refused_records_total"),
            [
                r#"gateway_sync_refused_records_total{reason="no_service"} 5"#,
                r#"gateway_sync_refused_records_total{reason="stale"} 0"#
            ]
        );
    }

    /// The sample lines of `name` (`name{...} value` or `name value`).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' ']))).collect()
    }

    #[test]
    fn services_and_servers_are_labelled_as_ipvsadm_names_them() {
        let text = scrape().exposition();
        assert!(text.contains("# TYPE gateway_server_connections_total counter\n"), "{text}");
        assert_eq!(
            samples(&text, "gateway_server_connections_total"),
            [
                r#"gateway_server_connections_total{service="TCP 10.0.0.100:80",server="192.168.1.10:8080"} 3"#,
                r#"gateway_server_connections_total{service="TCP 10.0.0.100:80",server="192.168.1.11:8080"} 1"#,
            ]
        );
        assert_eq!(
            samples(&text, "gateway_service_bytes_total"),
            [
                r#"gateway_service_bytes_total{service="TCP 10.0.0.100:80",direction="in"} 1400"#,
                r#"gateway_service_bytes_total{service="TCP 10.0.0.100:80",direction="out"} 10000"#,
            ]
        );
        assert!(text.contains("# TYPE gateway_server_active_connections gauge\n"), "{text}");
        assert_eq!(
            samples(&text, "gateway_server_active_connections"),
            [
                r#"gateway_server_active_connections{service="TCP 10.0.0.100:80",server="192.168.1.10:8080"} 1"#,
                r#"gateway_server_active_connections{service="TCP 10.0.0.100:80",server="192.168.1.11:8080"} 0"#,
            ]
        );
        assert_eq!(samples(&text, "gateway_server_weight").len(), 2);
        // Passive detection's counts, whether it is on or not.
        let failures = samples(&text, "gateway_server_passive_failures_total");
        assert_eq!(failures.len(), 6, "three reasons for two servers: {text}");
        assert!(failures.contains(
            &r#"gateway_server_passive_failures_total{service="TCP 10.0.0.100:80",server="192.168.1.10:8080",reason="refused"} 3"#
        ));
        assert!(failures.contains(
            &r#"gateway_server_passive_failures_total{service="TCP 10.0.0.100:80",server="192.168.1.11:8080",reason="unanswered"} 0"#
        ));
        assert_eq!(samples(&text, "gateway_server_passive_successes_total").len(), 2);
        // A server its health check holds down shows the weight in force, as `-L` does.
        let mut held = scrape();
        held.services[0].servers[0].checked_weight = Some(0);
        let text = held.exposition();
        assert_eq!(
            samples(&text, "gateway_server_weight"),
            [
                r#"gateway_server_weight{service="TCP 10.0.0.100:80",server="192.168.1.10:8080"} 0"#,
                r#"gateway_server_weight{service="TCP 10.0.0.100:80",server="192.168.1.11:8080"} 11"#,
            ]
        );
        assert_eq!(samples(&text, "gateway_config_generation"), ["gateway_config_generation 3"]);
    }

    #[test]
    fn every_drop_reason_and_event_is_listed_zero_or_not() {
        let text = scrape().exposition();
        let drops = samples(&text, "gateway_worker_dropped_packets_total");
        assert_eq!(drops.len(), Discard::COUNT, "{text}");
        assert!(drops.contains(&r#"gateway_worker_dropped_packets_total{worker="0",reason="no_service"} 9"#));
        assert!(drops.contains(&r#"gateway_worker_dropped_packets_total{worker="0",reason="no_route"} 0"#));
        let events = samples(&text, "gateway_worker_events_total");
        assert!(events.contains(&r#"gateway_worker_events_total{worker="0",event="arp_replies"} 2"#), "{text}");
        assert!(events.contains(&r#"gateway_worker_events_total{worker="0",event="icmp_errors_rate_limited"} 0"#));
        assert!(events.iter().all(|l| !l.contains("synproxy")), "the SYN proxy's are apart: {events:?}");
        let synproxy = samples(&text, "gateway_synproxy_events_total");
        assert_eq!(synproxy.len(), 8, "{text}");
        assert!(synproxy.contains(&r#"gateway_synproxy_events_total{worker="0",event="syn_acks_sent"} 6"#));
        assert!(synproxy.contains(&r#"gateway_synproxy_events_total{worker="0",event="server_wscale_mismatches"} 0"#));
        assert_eq!(
            samples(&text, "gateway_worker_redirected_packets_total"),
            [
                r#"gateway_worker_redirected_packets_total{worker="0",direction="in"} 2"#,
                r#"gateway_worker_redirected_packets_total{worker="0",direction="out"} 1"#,
            ]
        );
        assert_eq!(samples(&text, "gateway_worker_up"), [r#"gateway_worker_up{worker="0"} 1"#]);
    }

    #[test]
    fn a_polling_workers_cycles_are_listed_by_part() {
        let text = scrape().exposition();
        assert_eq!(
            samples(&text, "gateway_worker_poll_cycles_total"),
            [
                r#"gateway_worker_poll_cycles_total{worker="0",part="busy"} 9000"#,
                r#"gateway_worker_poll_cycles_total{worker="0",part="idle"} 1000"#,
                r#"gateway_worker_poll_cycles_total{worker="0",part="pipeline"} 6000"#,
                r#"gateway_worker_poll_cycles_total{worker="0",part="send"} 2000"#,
            ],
            "{text}"
        );
        assert_eq!(samples(&text, "gateway_worker_bursts_total"), [r#"gateway_worker_bursts_total{worker="0"} 5"#]);
        assert_eq!(
            samples(&text, "gateway_worker_cycles_per_second"),
            [r#"gateway_worker_cycles_per_second{worker="0"} 2000000000"#]
        );
        // A worker that has not polled has no cycles to show.
        let mut before = scrape();
        before.workers[0].poll = None;
        let text = before.exposition();
        assert!(samples(&text, "gateway_worker_poll_cycles_total").is_empty(), "{text}");
    }

    #[test]
    fn the_kernel_path_is_counted_per_port_and_class_zero_or_not() {
        let text = scrape().exposition();
        assert!(text.contains("# TYPE gateway_worker_kernel_packets_total counter\n"), "{text}");
        assert_eq!(
            samples(&text, "gateway_worker_kernel_packets_total"),
            [
                r#"gateway_worker_kernel_packets_total{worker="0",port="client",class="control"} 0"#,
                r#"gateway_worker_kernel_packets_total{worker="0",port="client",class="bulk"} 12"#,
            ]
        );
        assert_eq!(
            samples(&text, "gateway_worker_kernel_rate_limited_packets_total"),
            [
                r#"gateway_worker_kernel_rate_limited_packets_total{worker="0",port="client",class="control"} 0"#,
                r#"gateway_worker_kernel_rate_limited_packets_total{worker="0",port="client",class="bulk"} 3"#,
            ]
        );
    }

    #[test]
    fn port_errors_and_lost_mbufs_are_counted_apart() {
        let text = scrape().exposition();
        assert_eq!(
            samples(&text, "gateway_port_rx_no_mbuf_packets_total"),
            [r#"gateway_port_rx_no_mbuf_packets_total{port="client"} 3"#]
        );
        assert_eq!(
            samples(&text, "gateway_port_rx_errors_total"),
            [r#"gateway_port_rx_errors_total{port="client"} 2"#]
        );
        assert_eq!(
            samples(&text, "gateway_port_rx_missed_packets_total"),
            [r#"gateway_port_rx_missed_packets_total{port="client"} 1"#]
        );
        assert_eq!(samples(&text, "gateway_port_up"), [r#"gateway_port_up{port="client"} 1"#]);
    }

    #[test]
    fn the_exception_path_is_counted_for_ports_with_a_kernel_interface_only() {
        assert!(
            !scrape().exposition().contains("gateway_port_kernel_packets_total{"),
            "no kernel interface, no samples"
        );
        let mut s = scrape();
        s.links[0].kernel = Some(gwapi::api::KernelLinkInfo {
            name: Some("gwk0".into()),
            to_kernel: 12,
            from_kernel: 11,
            drops: vec![
                ("tap_full".into(), 1),
                ("port_full".into(), 0),
                ("no_kernel".into(), 0),
                ("relay_full".into(), 0),
            ],
        });
        let text = s.exposition();
        assert_eq!(
            samples(&text, "gateway_port_kernel_packets_total"),
            [
                r#"gateway_port_kernel_packets_total{port="client",direction="to_kernel"} 12"#,
                r#"gateway_port_kernel_packets_total{port="client",direction="from_kernel"} 11"#,
            ]
        );
        assert_eq!(
            samples(&text, "gateway_port_kernel_dropped_packets_total"),
            [
                r#"gateway_port_kernel_dropped_packets_total{port="client",reason="tap_full"} 1"#,
                r#"gateway_port_kernel_dropped_packets_total{port="client",reason="port_full"} 0"#,
                r#"gateway_port_kernel_dropped_packets_total{port="client",reason="no_kernel"} 0"#,
                r#"gateway_port_kernel_dropped_packets_total{port="client",reason="relay_full"} 0"#,
            ]
        );
    }

    #[test]
    fn a_gateway_without_services_still_describes_every_family() {
        let text = Scrape::default().exposition();
        assert!(text.contains("# TYPE gateway_server_connections_total counter\n"), "{text}");
        assert!(samples(&text, "gateway_server_connections_total").is_empty());
        assert_eq!(samples(&text, "gateway_config_generation"), ["gateway_config_generation 0"]);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = scrape();
        s.links[0].name = "a\"b\\c".into();
        let text = s.exposition();
        assert_eq!(samples(&text, "gateway_port_up"), [r#"gateway_port_up{port="a\"b\\c"} 1"#], "{text}");
    }

    /// The Grafana dashboard in the repository asks only for what the exporter serves.
    #[test]
    fn the_dashboard_uses_the_served_metrics_and_labels() {
        let text = scrape().exposition();
        let dashboard: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/grafana/gatewayd.json")).expect("the dashboard is JSON");
        let mut targets = Vec::new();
        let mut panels: Vec<&serde_json::Value> = dashboard["panels"].as_array().expect("panels").iter().collect();
        while let Some(panel) = panels.pop() {
            panels.extend(panel["panels"].as_array().into_iter().flatten());
            targets.extend(panel["targets"].as_array().into_iter().flatten());
        }
        assert!(targets.len() > 20, "{} queries", targets.len());
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            let names: Vec<&str> = expr
                .match_indices("gateway_")
                .map(|(at, _)| {
                    let rest = &expr[at..];
                    &rest[..rest.find(|c: char| !c.is_ascii_alphanumeric() && c != '_').unwrap_or(rest.len())]
                })
                .collect();
            assert!(!names.is_empty(), "{expr}");
            for name in names {
                assert!(
                    text.lines().any(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' ']))),
                    "the dashboard asks for {name}, which is not served: {expr}"
                );
            }
            let legend = target["legendFormat"].as_str().unwrap_or_default();
            for label in legend.split("{{").skip(1).filter_map(|l| l.split_once("}}")).map(|(l, _)| l) {
                assert!(text.contains(&format!("{label}=\"")), "legend label {label} is on no metric: {legend}");
            }
        }
    }

    #[test]
    fn event_names_become_label_values() {
        assert_eq!(label_value("icmp errors rate-limited"), "icmp_errors_rate_limited");
        assert_eq!(label_value("syn-acks sent"), "syn_acks_sent");
    }

    #[test]
    fn an_address_in_use_is_refused_with_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr).unwrap_err();
        assert!(err.starts_with(&format!("metrics listener {addr}: ")) && err.contains("in use"), "{err}");
    }
}
