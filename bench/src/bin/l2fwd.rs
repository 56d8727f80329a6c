//! `l2fwd`: the benchmark's plain L2 forwarder.
//!
//! Ports joined in pairs: whatever one port of a pair receives leaves by the
//! other, on the same per-lcore queue layout (and, for drivers that need it,
//! the same I/O fence) as the gateway. It is the benchmark's reference, the
//! I/O limit of a link against which the gateway's own processing is
//! measured; the end-to-end tests use it as a memif peer.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use gateway::dpdk::{
    needs_fence, Burst, Eal, FenceWorker, IoFence, Mempool, Port, PortConfig, RxQueue, TxQueue, MBUF_DEFAULT_BUF_SIZE,
};
use gateway::worker::Counter;

/// Forwards between each pair of DPDK ports (both directions) on every worker
/// lcore until SIGINT/SIGTERM or --seconds elapse.
#[derive(Debug, Parser)]
#[command(
    name = "l2fwd",
    after_help = "example:\n  l2fwd --seconds 10 -- -l 0-1 --no-pci --vdev=net_tap0,iface=gw0 --vdev=net_tap1,iface=gw1"
)]
struct Options {
    /// Two ports to join, named as DPDK names them (a PCI address or a --vdev
    /// name such as net_tap0). Repeatable. Without it, the ports are paired in
    /// the order DPDK found them (0-1, 2-3, ...).
    #[arg(long = "pair", value_name = "PORT_A,PORT_B", value_parser = parse_pair)]
    pairs: Vec<(String, String)>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,
    /// Print the counters every N seconds.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    stats_interval: u64,
    /// The DPDK EAL's arguments.
    #[arg(last = true, required = true, value_name = "EAL_ARGS")]
    eal_args: Vec<String>,
}

fn parse_pair(v: &str) -> Result<(String, String), String> {
    let (a, b) = v.split_once(',').ok_or("expected PORT_A,PORT_B")?;
    if a.is_empty() || b.is_empty() || a == b {
        return Err("expected two different port names".into());
    }
    Ok((a.to_owned(), b.to_owned()))
}

/// Counters one worker keeps and the main lcore reads.
#[derive(Default)]
struct ForwardCounters {
    rx: Counter,
    tx: Counter,
    /// Packets the tx queue refused (counted, then freed).
    tx_dropped: Counter,
}

/// One forwarding direction as a worker sees it.
struct Lane {
    rx: RxQueue,
    tx: TxQueue,
}

/// `fence`: this worker's side of the I/O fence, when a port needs one (as in the gateway).
fn worker_loop(
    mut lanes: Vec<Lane>,
    mut fence: Option<FenceWorker>,
    stop: Arc<AtomicBool>,
    counters: Arc<ForwardCounters>,
) {
    let mut burst = Burst::new();
    while !stop.load(Ordering::Relaxed) {
        if fence.as_mut().is_some_and(|f| !f.may_poll()) {
            continue;
        }
        for lane in lanes.iter_mut() {
            let n = lane.rx.rx_burst(&mut burst);
            if n == 0 {
                continue;
            }
            let sent = lane.tx.tx_burst(&mut burst);
            counters.rx.add(n as u64);
            counters.tx.add(sent as u64);
            counters.tx_dropped.add(burst.clear() as u64);
        }
    }
}

fn run(opts: Options) -> Result<(), String> {
    let eal = Eal::init(&opts.eal_args).map_err(|e| e.to_string())?;
    let workers = eal.worker_lcores();
    if workers.is_empty() {
        return Err("no worker lcores: give the EAL at least two (for example -l 0-1)".into());
    }

    let pairs = if opts.pairs.is_empty() {
        let names: Vec<String> = (0..64u16).filter_map(gateway::dpdk::port_name).collect();
        if names.len() < 2 || !names.len().is_multiple_of(2) {
            return Err(format!("need an even number of ports to pair, DPDK has {names:?}"));
        }
        names.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect()
    } else {
        opts.pairs.clone()
    };

    let queues = workers.len() as u16;
    let pool_size = (4096 * pairs.len() as u32 * 2 * queues as u32).next_power_of_two() - 1;
    let pool = Mempool::new(&eal, "gw_pool", pool_size, 256, MBUF_DEFAULT_BUF_SIZE).map_err(|e| e.to_string())?;
    let config = PortConfig { rx_queues: queues, tx_queues: queues, ..PortConfig::default() };

    // Per worker, the lanes it serves: (rx of A -> tx of B) and back.
    let mut lanes: Vec<Vec<Lane>> = (0..workers.len()).map(|_| Vec::new()).collect();
    let mut ports = Vec::new();
    for (a, b) in &pairs {
        let (port_a, rx_a, tx_a) = Port::open(&eal, a, &config, &pool).map_err(|e| e.to_string())?;
        let (port_b, rx_b, tx_b) = Port::open(&eal, b, &config, &pool).map_err(|e| e.to_string())?;
        for (w, (((ra, ta), rb), tb)) in rx_a.into_iter().zip(tx_a).zip(rx_b).zip(tx_b).enumerate() {
            lanes[w].push(Lane { rx: ra, tx: tb });
            lanes[w].push(Lane { rx: rb, tx: ta });
        }
        println!("forwarding {a} (port {}) <-> {b} (port {})", port_a.id(), port_b.id());
        ports.push(port_a);
        ports.push(port_b);
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    let counters: Vec<Arc<ForwardCounters>> = workers.iter().map(|_| Arc::default()).collect();
    let (fence, mut fence_workers) = if ports.iter().any(|p| needs_fence(p.driver())) {
        let (fence, handles) =
            IoFence::new(&eal, workers.len(), gateway::daemon::FENCE_HOLD).map_err(|e| e.to_string())?;
        (Some(fence), handles.into_iter().map(Some).collect())
    } else {
        (None, workers.iter().map(|_| None).collect::<Vec<_>>())
    };
    let mut jobs = Vec::new();
    for ((lcore, lanes), counters) in workers.iter().zip(lanes).zip(&counters) {
        let (stop, counters) = (stop.clone(), counters.clone());
        let fence = fence_workers.remove(0);
        jobs.push(eal.launch(*lcore, move || worker_loop(lanes, fence, stop, counters)).map_err(|e| e.to_string())?);
    }
    println!("l2fwd: {} worker lcore(s) {:?} running; SIGINT or SIGTERM stops", workers.len(), workers);

    let started = Instant::now();
    let mut last_report = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if opts.seconds.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            stop.store(true, Ordering::Relaxed);
        }
        if last_report.elapsed() >= Duration::from_secs(opts.stats_interval) {
            last_report = Instant::now();
            report(&counters, &ports);
        }
    }
    let joined = gateway::daemon::join_workers(jobs);
    drop(fence);
    report(&counters, &ports);
    gateway::daemon::release(ports, pool, eal);
    joined
}

fn report(counters: &[Arc<ForwardCounters>], ports: &[Port]) {
    let sum = |f: fn(&ForwardCounters) -> &Counter| counters.iter().map(|c| f(c).get()).sum::<u64>();
    let mut line =
        format!("workers: rx {} tx {} tx_dropped {}", sum(|c| &c.rx), sum(|c| &c.tx), sum(|c| &c.tx_dropped));
    for port in ports {
        if let Ok(s) = port.stats() {
            line += &format!(
                " | {}: ipackets {} opackets {} imissed {} ierrors {} oerrors {} rx_nombuf {}",
                port.name(),
                s.ipackets,
                s.opackets,
                s.imissed,
                s.ierrors,
                s.oerrors,
                s.rx_nombuf
            );
        }
    }
    println!("{line}");
}

fn main() -> ExitCode {
    let opts = Options::parse();
    // The shared teardown (gateway::daemon::release) warns through the log.
    gateway::logging::init(log::LevelFilter::Info);
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("l2fwd: {msg}");
            ExitCode::FAILURE
        }
    }
}
