//! `gatewayd`: the assembly of the running gateway from its configuration file: EAL,
//! mempool, ports (one rx and one tx queue per worker on each, and one more tx queue on a
//! port with a kernel interface), the kernel interfaces and the exception loop between them
//! ([`crate::local`]), redirect rings, workers on their lcores, and the control server on
//! the main lcore.
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

use crate::control::{self, publish, ControlSocket, ControlState, ServerOptions};
use crate::dpdk::{
    needs_fence, pairs_queues, Eal, IoFence, LcoreJob, LinkState, Mempool, Port, PortConfig, Ring, RingSender,
    RingSync, MBUF_DEFAULT_BUF_SIZE,
};
use crate::health::routes::PublishedRoutes;
use crate::health::PathProber;
use crate::local::exception::{ExceptionCounters, ExceptionLoop, KernelPath};
use crate::local::held::HeldWatch;
use crate::local::kernel_iface::{KernelIface, KernelIfaceSpec};
use crate::local::probe_link::RingProbeLink;
use crate::net::exception::MAX_KERNEL_PORTS;
use crate::net::{IpCidr, KernelClass};
use crate::sync::daemon::{SharedNetView, SyncDaemons};
use crate::synproxy;
use crate::wire::MacAddr;
use crate::worker::lcore::{DownPorts, KernelRings, LcoreWorker, ProbeRings};
use crate::worker::watchdog::{Liveness, Verdict, Watchdog};
use crate::worker::{Worker, WorkerConfig, WorkerCounters};
use crate::xmit::Offload;
pub use config::Config;
use config::{
    check_mbufs, min_mbufs, OnWorkerFailure, KERNEL_RING, KERNEL_RX_DESCRIPTORS, KERNEL_TX_DESCRIPTORS, MAX_MBUFS,
    POOL_CACHE, PROBE_RING, RX_DESCRIPTORS, TX_DESCRIPTORS,
};

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
    ports: Vec<ShownPort>,
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

    fn worker_sync(&self) -> gwapi::api::WorkerSyncStats {
        control::dataplane::sum_worker_sync(self.stats.workers.iter().map(|w| &w.counters.sync))
    }

    fn links(&self) -> Vec<gwapi::api::LinkInfo> {
        self.ports
            .iter()
            .map(|ShownPort { port, name, mtu, kernel, exception }| {
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
                    kernel: kernel_link(kernel.as_deref(), exception),
                }
            })
            .collect()
    }

    fn conn_table_size(&self) -> u64 {
        self.conn_capacity
    }
}

/// A port as `gwctl link` shows it.
struct ShownPort {
    port: Port,
    name: String,
    mtu: u16,
    /// Its kernel interface's name, if it has one.
    kernel: Option<String>,
    exception: Arc<ExceptionCounters>,
}

/// The kernel-interface part of a port's `gwctl link`: for a port with a
/// kernel interface, or one whose frames found none (which the workers
/// should never send).
fn kernel_link(name: Option<&str>, c: &ExceptionCounters) -> Option<gwapi::api::KernelLinkInfo> {
    (name.is_some() || c.no_kernel.get() != 0).then(|| gwapi::api::KernelLinkInfo {
        name: name.map(str::to_owned),
        to_kernel: c.to_kernel.get(),
        from_kernel: c.from_kernel.get(),
        drops: c.drops().iter().map(|(reason, n)| (reason.to_string(), *n)).collect(),
    })
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
    let kernels = config.kernel_interfaces();
    let mbufs = match config.mbufs {
        Some(mbufs) => {
            check_mbufs(mbufs, config.ports.len(), usize::from(workers), kernels)
                .map_err(|e| format!("bad configuration: {e}"))?;
            mbufs
        }
        // Room for traffic beyond the queues' needs, rounded as DPDK likes it (2^n - 1).
        None => ((min_mbufs(config.ports.len(), usize::from(workers), kernels) + 8192).next_power_of_two() - 1)
            .min(u64::from(MAX_MBUFS)) as u32,
    };
    let pool = Mempool::new(&eal, "gw_pool", mbufs, POOL_CACHE, MBUF_DEFAULT_BUF_SIZE).map_err(|e| e.to_string())?;

    // Ports: each worker gets rx and tx queue `w` of every port; a port with a
    // kernel interface has one more tx queue, the exception loop's.
    let mut specs: Vec<(u16, workers::OpenedPort)> = Vec::new();
    let mut open_ports = Vec::new();
    let mut kernel_paths = Vec::new();
    let mut rx_per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    let mut tx_per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
    for spec in &config.ports {
        // A driver that pairs rx and tx queues gets the extra rx queue too,
        // which the exception loop relays to a worker.
        let extra_rx = spec.kernel.is_some()
            && pairs_queues(&Port::driver_by_name(&spec.device).map_err(|e| format!("port {:?}: {e}", spec.name))?);
        let pc = PortConfig {
            rx_queues: queues + u16::from(extra_rx),
            tx_queues: queues + u16::from(spec.kernel.is_some()),
            rx_descriptors: RX_DESCRIPTORS,
            tx_descriptors: TX_DESCRIPTORS,
            mtu: None,
            ..PortConfig::default()
        };
        let (port, mut rxq, mut txq) =
            Port::open(&eal, &spec.device, &pc, &pool).map_err(|e| format!("port {:?}: {e}", spec.name))?;
        let caps = port.caps();
        let mac = MacAddr(port.mac_addr().map_err(|e| e.to_string())?);
        if let Some(name) = &spec.kernel {
            // The workers keep a rate budget and counters for the first
            // MAX_KERNEL_PORTS port ids only: beyond, every packet for the
            // kernel would be refused.
            if usize::from(port.id()) >= MAX_KERNEL_PORTS {
                return Err(format!(
                    "port {:?}: \"kernel\": {name:?} on DPDK port {}: kernel interfaces are supported on ports 0 to {} only",
                    spec.name,
                    port.id(),
                    MAX_KERNEL_PORTS - 1
                ));
            }
            let out = txq.pop().expect("the port was opened with the exception loop's tx queue");
            let relay = if extra_rx { rxq.pop() } else { None };
            let addrs = spec.addrs.iter().map(|a| a.parse::<IpCidr>()).collect::<Result<Vec<_>, _>>();
            let iface_spec = KernelIfaceSpec {
                name: name.clone(),
                mac,
                mtu: spec.mtu,
                addrs: addrs.map_err(|e| format!("port {:?}: {e}", spec.name))?,
                rx_descriptors: KERNEL_RX_DESCRIPTORS,
                tx_descriptors: KERNEL_TX_DESCRIPTORS,
            };
            let iface =
                KernelIface::create(&eal, &pool, &iface_spec).map_err(|e| format!("port {:?}: {e}", spec.name))?;
            log::info!(
                "gatewayd: port {}: kernel interface {name} (mac {mac}, mtu {}, {} address(es))",
                spec.name,
                spec.mtu,
                iface_spec.addrs.len()
            );
            kernel_paths.push((port.id(), iface, out, relay));
        }
        specs.push((
            port.id(),
            workers::OpenedPort {
                name: spec.name.clone(),
                mac,
                kernel: spec.kernel.is_some(),
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
    // A fence for PMDs that unmap a port's data path from the interrupt thread;
    // the exception loop, which transmits on data ports too, has the last handle.
    let exception_loop = !kernel_paths.is_empty();
    let fenced = usize::from(workers) + usize::from(exception_loop);
    let (fence, fence_workers) = if open_ports.iter().any(|p| needs_fence(p.driver())) {
        let (fence, handles) = IoFence::new(&eal, fenced, FENCE_HOLD).map_err(|e| e.to_string())?;
        (Some(fence), handles.into_iter().map(Some).collect())
    } else {
        (None, (0..fenced).map(|_| None).collect::<Vec<_>>())
    };
    let mut fence_workers = fence_workers.into_iter();

    // Toward the kernel interfaces: two rings (control, bulk) that every worker
    // feeds and the exception loop drains, only when some port has one.
    let kernel_rings: Option<[(RingSender, _); 2]> = if exception_loop {
        let ring = |class: KernelClass| {
            Ring::new(&eal, &format!("gw_kernel_{}", class.name()), KERNEL_RING, RingSync::Multi, RingSync::Single)
                .map_err(|e| e.to_string())
        };
        Some([ring(KernelClass::Control)?, ring(KernelClass::Bulk)?])
    } else {
        None
    };

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
    // The health probes: one ring into each worker (from the prober alone), one
    // back that every worker feeds (see net::probe).
    let (probe_replies_tx, probe_replies) =
        Ring::new(&eal, "gw_probe_replies", PROBE_RING, RingSync::Multi, RingSync::Single)
            .map_err(|e| e.to_string())?;
    let mut probes_in = Vec::new();
    let mut probes_out = Vec::new();
    for w in 0..workers {
        let (tx, rx) = Ring::new(&eal, &format!("gw_probe_{w}"), PROBE_RING, RingSync::Single, RingSync::Single)
            .map_err(|e| e.to_string())?;
        probes_out.push(tx);
        probes_in.push(rx);
    }
    let mut probes_in = probes_in.into_iter();

    // workers::net_view wants the ports indexed by DPDK port id; ids the file
    // does not name (none, normally) get a name no configuration can use.
    let max_id = specs.iter().map(|(id, _)| usize::from(*id)).max().unwrap_or(0);
    let mut ports: Vec<workers::OpenedPort> = (0..=max_id)
        .map(|i| workers::OpenedPort {
            name: format!("\0unused{i}"),
            mac: MacAddr([0; 6]),
            kernel: false,
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
    let mut initial = config.initial(usize::from(workers)).map_err(|e| e.to_string())?;
    // With kernel interfaces, a VIP or local address is served only while one of
    // them carries it (local::held): nothing is held until the watch first reads them.
    let kernel_names: Vec<String> = config.ports.iter().filter_map(|p| p.kernel.clone()).collect();
    let held_watch = if kernel_names.is_empty() {
        None
    } else {
        initial.held = Some(Arc::from([]));
        Some(HeldWatch::open(kernel_names).map_err(|e| format!("the kernel interfaces' addresses: {e}"))?)
    };
    let (first, mut convert) =
        workers::worker_updates(ports, &initial).map_err(|e| format!("network configuration: {e}"))?;
    // The backup sync daemon routes received records by the network view the workers run.
    let sync_net = Arc::new(SharedNetView::new(first.net.clone()));
    // The health probes are routed by the configuration the workers run.
    let probe_routes = Arc::new(PublishedRoutes::new(first.services.clone(), first.net.clone()));
    let convert: publish::Convert<workers::WorkerUpdate> = {
        let (sync_net, probe_routes) = (sync_net.clone(), probe_routes.clone());
        Box::new(move |config| {
            let update = convert(config)?;
            sync_net.set(update.net.clone());
            probe_routes.set(update.services.clone(), update.net.clone());
            Ok(update)
        })
    };
    let channels = workers::control_channels(usize::from(workers), first.clone(), convert, Duration::from_secs(2));
    // One cookie secret for every worker: a cookie minted on one validates on any.
    let synproxy = config.synproxy.settings(synproxy::random_seed()).map_err(|e| e.to_string())?;
    if !synproxy::cookie::hardware_aes() {
        log::warn!(
            "gatewayd: this processor has no AES instructions: the SYN proxy's cookies use software AES, \
             some seven times the work a SYN"
        );
    }
    let kernel_rate = config.kernel_rate.rate().map_err(|e| e.to_string())?;
    let epoch = crate::dpdk::rdtsc();
    // Connection sync: each worker's queues to the sync daemon, and the daemon's ends.
    let (sync_queues, sync_worker_queues) = crate::sync::queue::queues(workers);
    // The sync daemons the file asks for, on their (kernel) interfaces, which exist by now;
    // a master polls queues no worker fills yet, so it may start before them.
    let mut sync = SyncDaemons::new(sync_queues, sync_net);
    for spec in config.sync_daemons().map_err(|e| e.to_string())? {
        sync.start(&spec).map_err(|e| format!("\"sync\": {e}"))?;
    }
    let mut sync_worker_queues = sync_worker_queues.into_iter();
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
        cfg.staged_from = config.staged_from;
        cfg.synproxy = synproxy;
        cfg.kernel_rate = kernel_rate;
        let mut worker = Worker::new(&cfg, first.services.clone(), first.net.clone(), 1).map_err(|e| e.to_string())?;
        // Whether the tables got their huge pages (conn::table, dpdk::hugemem): a lookup
        // costs a page walk more on small pages, so say it once, at start.
        log::info!(
            "gatewayd: worker {w}: connection tables of {} connections: IPv4 {}, IPv6 {} (transparent huge pages: {}); bursts staged from {} live connections",
            worker.director().conns().capacity(),
            worker.director().conns().backing(),
            worker.director6().conns().backing(),
            crate::dpdk::hugemem::transparent_huge_pages().as_deref().unwrap_or("none"),
            config.staged_from,
        );
        worker.switch(first.services.clone(), first.net.clone());
        worker.set_sync(sync_worker_queues.next().expect("one set of sync queues per worker"));
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
            kernel: kernel_rings.as_ref().map(|rings| {
                KernelRings(
                    rings.each_ref().map(|(tx, _)| tx.try_clone().expect("the kernel rings are multi-producer")),
                )
            }),
            probes: ProbeRings {
                from_prober: probes_in.next().expect("one probe ring per worker"),
                to_prober: probe_replies_tx.try_clone().expect("the probe replies' ring is multi-producer"),
            },
        };
        let stop = stop.clone();
        let job = eal
            .launch(lcore, move || lcore_worker.run(stop, move |worker, now| inbox.poll(worker, now)))
            .map_err(|e| e.to_string())?;
        jobs.push(job);
    }
    drop((neigh_tx, probe_replies_tx));
    let probe_link = RingProbeLink::new(pool.clone(), probes_out, probe_replies);
    // Every port's exception counters, by port id (the loop's frames name their port by id).
    let exception_counters: Vec<Arc<ExceptionCounters>> =
        (0..=open_ports.iter().map(|p| usize::from(p.id())).max().unwrap_or(0)).map(|_| Arc::default()).collect();
    // The exception loop (and the kernel interfaces with it) stops after the
    // announced VIPs were withdrawn, so the routing daemon's withdrawal leaves.
    let kernel_stop = Arc::new(AtomicBool::new(false));
    let exception = match kernel_rings {
        Some([(control_tx, control), (bulk_tx, bulk)]) => {
            // The workers have their senders; these would keep the rings past release().
            drop((control_tx, bulk_tx));
            let paths = kernel_paths
                .into_iter()
                .enumerate()
                .map(|(i, (port, iface, out, relay))| {
                    let worker = &ring_tx[i % ring_tx.len()];
                    let relay = relay.map(|rx| (rx, worker.try_clone().expect("redirect rings are multi-producer")));
                    KernelPath { port, iface, out, relay }
                })
                .collect();
            let exception = ExceptionLoop {
                rings: [control, bulk],
                paths,
                counters: exception_counters.clone(),
                fence: fence_workers.next().flatten(),
            };
            Some(
                exception
                    .spawn(kernel_stop.clone())
                    .map_err(|e| format!("cannot start the exception loop's thread: {e}"))?,
            )
        }
        None => None,
    };
    drop(ring_tx);
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
            .map(|(p, spec)| ShownPort {
                port: p.clone_handle(),
                name: spec.name.clone(),
                mtu: spec.mtu,
                kernel: spec.kernel.clone(),
                exception: exception_counters[usize::from(p.id())].clone(),
            })
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
    let mut state = ControlState::new(initial, Box::new(channels.sink), Box::new(view))
        .with_sync(sync)
        .with_probe_routes(probe_routes.clone());
    config.apply_health(&mut state).map_err(|e| e.to_string())?;
    let checker = state.checker();
    let server = control_socket.serve(state);
    let health_input = server.health_input();
    // Passive detection's policy, on a thread of its own beside the checker's (never a
    // worker): a publish it makes may wait for the workers, which the main loop must not.
    let passive = {
        let (input, stop) = (health_input.clone(), stop.clone());
        std::thread::Builder::new()
            .name("gw-passive".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(crate::health::passive::TICK);
                    // A refusal is logged where it happens and decided again next time.
                    let _ = input.passive_tick();
                }
            })
            .map_err(|e| format!("cannot start passive health detection's thread: {e}"))?
    };
    let retract = Arc::clone(&checker);
    let (prober, probe_stack) = PathProber::spawn(Box::new(probe_link), probe_routes, stop.clone())
        .map_err(|e| format!("cannot start the health prober's thread: {e}"))?;
    let health = checker
        .spawn(
            prober,
            move |transition| {
                if let Err(e) = health_input.set_server_health(&transition) {
                    // Not published: the checker takes it back and reports it again.
                    log::warn!(
                        "gatewayd: health: {:?} of {:?} not applied ({e}); it is checked again",
                        transition.health,
                        transition.key
                    );
                    retract.engine().retract(&transition);
                }
            },
            stop.clone(),
        )
        .map_err(|e| format!("cannot start the health checker's thread: {e}"))?;
    let held = held_watch
        .map(|watch| watch.follow(&server, stop.clone()))
        .transpose()
        .map_err(|e| format!("cannot start the held addresses' thread: {e}"))?;
    let server = server.spawn().map_err(|e| format!("control socket {}: {e}", path.display()))?;
    // The VIPs to announce go on their kernel interface once gwctl is served (local::announce).
    let announcer = match &config.announce {
        None => None,
        Some(dev) => {
            let own = config.ports.iter().filter(|p| p.kernel.as_ref() == Some(dev)).flat_map(|p| &p.addrs);
            let own = own.filter_map(|a| a.parse::<crate::net::Ipv4Cidr>().ok()).map(|c| c.addr()).collect();
            Some(crate::local::announce::spawn(dev, own, &path, stop.clone()).map_err(|e| e.to_string())?)
        }
    };
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
    let mut exception = exception;
    let mut failure = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(MAIN_LOOP_PERIOD);
        watch_links(&watched, &down_ports, false);
        // The exception loop ends only when stopped; ended otherwise, it is a
        // failure like a worker's (the kernel interfaces are cut off).
        if let Some(thread) = exception.take_if(|t| t.is_finished() && !stop.load(Ordering::Relaxed)) {
            let why = match thread.join() {
                Ok(()) => "its loop returned".to_string(),
                Err(payload) => format!("panicked: {}", panic_text(payload.as_ref())),
            };
            log::error!("gatewayd: the exception loop (kernel interfaces) stopped: {why}");
            if config.watchdog.on_failure == OnWorkerFailure::Exit {
                failure.get_or_insert(format!(
                    "the exception loop stopped: {why}; exiting (\"watchdog\": {{\"on_failure\": \"continue\"}} keeps running)"
                ));
                break;
            }
        }
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
    // Withdraw the announced VIPs while the routing daemon's session is up: the exception loop
    // (kernel_stop) still carries its UPDATE out.
    if let Some(Err(payload)) = announcer.map(|t| t.join()) {
        log::error!("gatewayd: the announcing thread panicked: {}", panic_text(payload.as_ref()));
    }
    kernel_stop.store(true, Ordering::Relaxed);
    // The checker and the held addresses' watch first, so they publish nothing to
    // stopping workers.
    if let Err(payload) = health.join() {
        log::error!("gatewayd: the health checker panicked: {}", panic_text(payload.as_ref()));
    }
    if let Err(payload) = probe_stack.join() {
        log::error!("gatewayd: the health prober panicked: {}", panic_text(payload.as_ref()));
    }
    if let Err(payload) = passive.join() {
        log::error!("gatewayd: passive health detection panicked: {}", panic_text(payload.as_ref()));
    }
    if let Some(Err(payload)) = held.map(|t| t.join()) {
        log::error!("gatewayd: the held addresses' watch panicked: {}", panic_text(payload.as_ref()));
    }
    // Workers stop first (stop is set), then the exception loop (its kernel
    // interfaces go with it), the fence, the control server, then ports.
    let joined = join_workers(jobs.into_iter().flatten().collect());
    if let Some(Err(payload)) = exception.map(|t| t.join()) {
        log::error!("gatewayd: the exception loop panicked: {}", panic_text(payload.as_ref()));
    }
    drop(fence);
    drop(watched);
    drop(exporter);
    server.shutdown();
    for (port, spec) in open_ports.iter().zip(&config.ports) {
        let c = &exception_counters[usize::from(port.id())];
        if spec.kernel.is_some() || c.no_kernel.get() != 0 {
            log::info!(
                "exception: port {} to_kernel {} from_kernel {} drops {:?}",
                spec.name,
                c.to_kernel.get(),
                c.from_kernel.get(),
                c.drops()
            );
        }
    }
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

/// A thread's panic message.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
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
