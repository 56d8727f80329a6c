//! `gatewayd`: the gateway daemon.
//!
//! `gatewayd --config FILE` runs the load balancer (see `gateway::daemon` and
//! the README for the file). `gatewayd --pair A,B ... -- EAL_ARGS` runs the
//! plain L2 forwarder: ports joined in pairs, whatever one port of a pair
//! receives leaves by the other, on the same per-lcore queue layout as the
//! gateway. It is the benchmark's reference: the I/O limit of a link, against
//! which the gateway's own processing is measured.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::dpdk::{
    needs_fence, Burst, Eal, FenceWorker, IoFence, Mempool, Port, PortConfig, RxQueue, TxQueue, MBUF_DEFAULT_BUF_SIZE,
};
use gateway::worker::Counter;

const USAGE: &str = "\
usage: gatewayd --config FILE [--socket PATH]
       gatewayd [--pair PORT_A,PORT_B]... [--seconds N] [--stats-interval N] -- EAL_ARGS...

The first form runs the load balancer as FILE describes (JSON; see the README)
and serves gwctl on the control socket (--socket, else $GATEWAYD_SOCKET, else
the default). The second form is the plain L2 forwarder:

Forwards between each pair of DPDK ports (both directions) on every worker
lcore until SIGINT/SIGTERM or --seconds elapse. Ports are named as DPDK names
them (a PCI address or a --vdev name such as net_tap0). With no --pair, the
ports are paired in the order DPDK found them (0-1, 2-3, ...).

example:
  gatewayd --seconds 10 -- -l 0-1 --no-pci --vdev=net_tap0,iface=gw0 --vdev=net_tap1,iface=gw1";

struct Options {
    pairs: Vec<(String, String)>,
    seconds: Option<u64>,
    stats_interval: u64,
    eal_args: Vec<String>,
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut opts = Options { pairs: Vec::new(), seconds: None, stats_interval: 1, eal_args: Vec::new() };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--" => {
                opts.eal_args = it.cloned().collect();
                break;
            }
            "-h" | "--help" => return Err(String::new()),
            "--pair" => {
                let v = value("--pair")?;
                let (a, b) = v.split_once(',').ok_or_else(|| format!("--pair {v:?}: expected PORT_A,PORT_B"))?;
                if a.is_empty() || b.is_empty() || a == b {
                    return Err(format!("--pair {v:?}: expected two different port names"));
                }
                opts.pairs.push((a.to_owned(), b.to_owned()));
            }
            "--seconds" => {
                let v = value("--seconds")?;
                opts.seconds = Some(v.parse().map_err(|_| format!("--seconds {v:?}: not a whole number"))?);
            }
            "--stats-interval" => {
                let v = value("--stats-interval")?;
                opts.stats_interval = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--stats-interval {v:?}: not a positive whole number"))?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if opts.eal_args.is_empty() {
        return Err("no EAL arguments: put them after --".into());
    }
    Ok(opts)
}

/// Counters one worker keeps and the main lcore reads.
#[derive(Default)]
struct WorkerCounters {
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
    counters: Arc<WorkerCounters>,
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
    let counters: Vec<Arc<WorkerCounters>> = workers.iter().map(|_| Arc::default()).collect();
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
    println!("gatewayd: {} worker lcore(s) {:?} running; SIGINT or SIGTERM stops", workers.len(), workers);

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

fn report(counters: &[Arc<WorkerCounters>], ports: &[Port]) {
    let sum = |f: fn(&WorkerCounters) -> &Counter| counters.iter().map(|c| f(c).get()).sum::<u64>();
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

/// `gatewayd --config FILE [--socket PATH]`.
fn run_gateway(args: &[String]) -> ExitCode {
    let (mut config, mut socket) = (None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match (arg.as_str(), it.next()) {
            ("--config", Some(v)) => config = Some(v.clone()),
            ("--socket", Some(v)) => socket = Some(v.clone()),
            (other, _) => {
                eprintln!("gatewayd: unexpected argument {other:?} with --config\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(path) = config else {
        eprintln!("gatewayd: --config needs a file\n\n{USAGE}");
        return ExitCode::from(2);
    };
    let config = match gateway::daemon::Config::load(std::path::Path::new(&path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatewayd: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("gatewayd: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    // SIGHUP is ignored, and said so: the file only seeds the configuration,
    // which gwctl then changes, so re-reading it would undo those changes; and
    // a closed terminal must not take the gateway down (by default SIGHUP
    // kills at once, leaving the control socket behind).
    match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(mut hangups) => {
            std::thread::spawn(move || {
                for _ in hangups.forever() {
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "gatewayd: SIGHUP ignored: the configuration file is read only at start; change the running gateway with gwctl"
                    );
                }
            });
        }
        Err(e) => {
            eprintln!("gatewayd: cannot handle SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    }
    // Test builds only (the `failpoints` feature): FAILPOINTS=name=action,...
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    match gateway::daemon::run(config, socket.as_deref(), stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("gatewayd: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().take_while(|a| *a != "--").any(|a| a == "--config") {
        return run_gateway(&args);
    }
    let opts = match parse_options(&args) {
        Ok(o) => o,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("gatewayd: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("gatewayd: {msg}");
            ExitCode::FAILURE
        }
    }
}
