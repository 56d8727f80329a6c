//! `gatewayd`: the assembly of the running gateway from its configuration file: EAL,
//! mempool, ports (one rx and one tx queue per worker on each), redirect rings, workers on
//! their lcores, and the control server on the main lcore.
//!
//! - [`config`]: the configuration file, validated in full before anything starts.
//! - [`workers`]: the workers as the control plane reaches them: what they receive (the
//!   service snapshot and the network view resolved from the configuration) and what they
//!   report (counters, connection tables, local-address usage).
//! - [`metrics`]: the Prometheus exporter (`"metrics"` in the file), which serves the control
//!   plane's answers over HTTP.

pub mod config;
pub mod metrics;
pub mod workers;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use crate::control::{self, ControlSocket, ControlState, ServerOptions};
use crate::dpdk::{
    needs_fence, Eal, IoFence, LcoreJob, LinkState, Mempool, Port, PortConfig, Ring, RingSync, MBUF_DEFAULT_BUF_SIZE,
};
use crate::synproxy;
use crate::wire::MacAddr;
use crate::worker::lcore::{DownPorts, LcoreWorker};
use crate::worker::watchdog::{Liveness, Verdict, Watchdog};
use crate::worker::{Worker, WorkerConfig, WorkerCounters};
use crate::xmit::Offload;
pub use config::Config;
use config::{check_mbufs, min_mbufs, OnWorkerFailure, MAX_MBUFS, POOL_CACHE, RX_DESCRIPTORS, TX_DESCRIPTORS};

/// Connections a worker copies per `gwctl -Lc` page: copying a worker's table
/// stalls its forwarding for as long as the copy takes, so the listing pages
/// through it (a page of 16k entries is a pause of about a millisecond).
const CONNECTIONS_PER_PAGE: usize = 16_384;

/// The most rows one `gwctl -Lc` lists (about 250 MB of reply, what a client
/// accepts); a larger table's listing says it stops there.
const CONNECTIONS_LISTED: usize = 1_000_000;

/// The running dataplane as the control plane reads it: `gwctl link` from the
/// ports' own counters, the rest from the [`workers`] readers (their counters,
/// port pools and connection tables).
struct RunningDataplane {
    ports: Vec<(Port, String, u16)>,
    conn_capacity: u64,
    stats: workers::WorkerStatsReader,
    laddrs: workers::LaddrUsageReader,
    connections: workers::ConnectionLister,
}

impl control::DataplaneView for RunningDataplane {
    fn laddr_stats(&self, _service: &crate::model::ServiceKey, addr: std::net::IpAddr) -> (u64, u64) {
        self.laddrs.usage(addr)
    }

    fn connections(&self) -> control::ConnectionListing {
        self.connections.connections()
    }

    fn worker_stats(&self) -> Vec<gwapi::api::WorkerStats> {
        self.stats.worker_stats()
    }

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
                    rx_nombuf: s.rx_nombuf,
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
            log::info!("gatewayd: port {name} ({}): link {what}", port.driver());
        } else if changed && state == LinkState::Down {
            log::warn!(
                "gatewayd: port {name} ({}): link went down: not polled, its traffic dropped as link_down",
                port.driver()
            );
        } else if changed {
            log::info!("gatewayd: port {name} ({}): link came up", port.driver());
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
    let metrics_listener = config.metrics.map(metrics::bind).transpose()?;
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
    let mut specs: Vec<(u16, workers::OpenedPort)> = Vec::new();
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
            workers::OpenedPort {
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

    // workers::net_view wants the ports indexed by DPDK port id; ids the file
    // does not name (none, normally) get a name no configuration can use.
    let max_id = specs.iter().map(|(id, _)| usize::from(*id)).max().unwrap_or(0);
    let mut ports: Vec<workers::OpenedPort> = (0..=max_id)
        .map(|i| workers::OpenedPort {
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
        workers::worker_updates(ports, &initial).map_err(|e| format!("network configuration: {e}"))?;
    let channels = workers::control_channels(usize::from(workers), first.clone(), convert, Duration::from_secs(2));
    // One cookie secret for every worker: a cookie minted on one validates on any.
    let synproxy = config.synproxy.settings(synproxy::random_seed()).map_err(|e| e.to_string())?;
    let epoch = crate::dpdk::rdtsc();
    let mut jobs = Vec::new();
    let mut handles = Vec::new();
    for (w, ((mut inbox, rx), (tx, (redirect_in, neigh_in)))) in channels
        .inboxes
        .into_iter()
        .zip(rx_per_worker)
        .zip(tx_per_worker.into_iter().zip(ring_rx.into_iter().zip(neigh_rx)))
        .enumerate()
    {
        let w = w as u16;
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
        handles.push(workers::WorkerHandle {
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
            idle: config.idle,
            pool: pool.clone(),
            epoch,
            liveness,
            down_ports: down_ports.clone(),
            fence: fence_workers.next().flatten(),
            kernel: None,
        };
        let stop = stop.clone();
        let job = eal
            .launch(lcore, move || lcore_worker.run(stop, move |worker, now| inbox.poll(worker, now)))
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
    let view = RunningDataplane {
        ports: open_ports
            .iter()
            .zip(&config.ports)
            .map(|(p, spec)| (p.clone_handle(), spec.name.clone(), spec.mtu))
            .collect(),
        conn_capacity: u64::from(config.conn_capacity) * u64::from(workers),
        stats: workers::WorkerStatsReader { workers: handles },
        laddrs: workers::LaddrUsageReader { asker: channels.laddrs },
        connections: workers::ConnectionLister {
            asker: channels.connections,
            page: CONNECTIONS_PER_PAGE,
            max_rows: CONNECTIONS_LISTED,
        },
    };
    let state = ControlState::new(initial, Box::new(channels.sink), Box::new(view));
    let server = control_socket.serve(state).spawn().map_err(|e| format!("control socket {}: {e}", path.display()))?;
    let exporter = metrics_listener.map(|listener| metrics::Exporter::spawn(listener, &path)).transpose()?;
    if let Some(exporter) = &exporter {
        log::info!("gatewayd: metrics at http://{}{}", exporter.local_addr(), metrics::METRICS_PATH);
    }
    log::info!(
        "gatewayd: running with {workers} worker(s) on lcores {lcores:?}, {} port(s); control socket {}",
        open_ports.len(),
        path.display()
    );
    // systemd's Type=notify (packaging/gatewayd.service): ready once workers poll and gwctl is served.
    notify_systemd(sd_notify::NotifyState::Ready);

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
            match &verdict {
                Verdict::Resumed { .. } => log::info!("gatewayd: {} {what}", names[w]),
                _ => log::error!("gatewayd: {} {what}", names[w]),
            }
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
                    log::error!("gatewayd: {}", failure.as_deref().unwrap_or_default());
                    std::process::exit(1);
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    notify_systemd(sd_notify::NotifyState::Stopping);
    // Workers stop first (stop is set), then the fence, the control server, then ports.
    let joined = join_workers(jobs.into_iter().flatten().collect());
    drop(fence);
    drop(watched);
    drop(exporter);
    server.shutdown();
    for c in &counters {
        log::info!(
            "worker: rx {} tx {} new_conns {} redirected_out {} redirected_in {} drops {:?}",
            c.rx_packets.get(),
            c.tx_packets.get(),
            c.new_conns.get(),
            c.redirected_out.get(),
            c.redirected_in.get(),
            c.nonzero_drops()
        );
    }
    release(open_ports, pool, eal);
    match failure {
        Some(failure) => Err(failure),
        None => joined,
    }
}

/// Tells systemd (a Type=notify unit) what gatewayd is doing; nothing when
/// $NOTIFY_SOCKET is unset (not started by systemd).
fn notify_systemd(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(false, &[state]) {
        log::warn!("gatewayd: cannot notify systemd ($NOTIFY_SOCKET): {e}");
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
        log::warn!("gatewayd: {} mbufs not returned to the pool at exit", pool.in_use_count());
    }
    drop(pool);
    if let Err((_, e)) = eal.cleanup() {
        log::warn!("gatewayd: {e}");
    }
}
