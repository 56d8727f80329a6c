//! A control server with the model, in the test process, and a way to run the real `gwctl`
//! binary against it.
//!
//! The server publishes through real worker mailboxes: a "worker" thread polls its mailbox
//! as a dataplane worker will, and keeps the configuration it runs where the test can reach
//! it, so a test can act as the dataplane (bind connections to a real server's counters) and
//! see the result in listings; traffic counters (`--stats`, `--rate`) live in the same model,
//! so a test feeds them the same way. What only a running dataplane knows (connection
//! entries, local-address usage, port and worker counters) comes from [`FixedCounters`],
//! with values chosen to exercise every number format.

#![allow(dead_code)]

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use gateway::control::publish::broadcast;
use gateway::control::{
    ConnectionListing, ControlServer, ControlState, DataplaneView, GatewayConfig, HeldInput, ServerHandle,
    ServerOptions,
};
use gateway::model::ServiceKey;
use gwapi::api::{ConnectionInfo, KernelPathStats, LinkInfo, PollStats, QueueInfo, TransportProtocol, WorkerStats};

pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// What a running dataplane would report, with fixed values; `missing` is why its
/// connection listing is incomplete (empty: it is complete); `more_connections` follow
/// the two fixed IPv4 ones in the connection listing.
#[derive(Default)]
pub struct FixedCounters {
    pub missing: Vec<String>,
    pub more_connections: Vec<ConnectionInfo>,
}

impl DataplaneView for FixedCounters {
    fn laddr_stats(&self, _service: &ServiceKey, _addr: IpAddr) -> (u64, u64) {
        (3, 42)
    }

    fn connections(&self) -> ConnectionListing {
        let connections = vec![
            ConnectionInfo {
                protocol: TransportProtocol::Tcp,
                state: "ESTABLISHED".into(),
                expires: 893,
                client: (ip("203.0.113.5"), 40000),
                virtual_addr: (ip("192.168.0.200"), 80),
                server: (ip("172.16.100.10"), 80),
                local: None,
                worker: 0,
            },
            ConnectionInfo {
                protocol: TransportProtocol::Udp,
                state: "UDP".into(),
                expires: 61,
                client: (ip("203.0.113.6"), 5353),
                virtual_addr: (ip("10.0.0.1"), 53),
                server: (ip("172.16.100.12"), 53),
                local: None,
                worker: 1,
            },
        ];
        let connections = connections.into_iter().chain(self.more_connections.iter().cloned()).collect();
        ConnectionListing { connections, incomplete: self.missing.clone() }
    }

    fn links(&self) -> Vec<LinkInfo> {
        vec![LinkInfo {
            name: "dpdk0".into(),
            port_id: 0,
            mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            mtu: 1500,
            up: true,
            state_unknown: false,
            rx_packets: 10,
            rx_bytes: 1000,
            rx_errors: 0,
            rx_nombuf: 0,
            rx_missed: 2,
            tx_packets: 9,
            tx_bytes: 900,
            tx_errors: 0,
            queues: vec![QueueInfo {
                queue: 0,
                worker: 0,
                rx_packets: 10,
                rx_bytes: 1000,
                tx_packets: 9,
                tx_bytes: 900,
            }],
            kernel: None,
        }]
    }

    fn worker_stats(&self) -> Vec<WorkerStats> {
        vec![WorkerStats {
            worker: 0,
            lcore: 1,
            health: None,
            rx_packets: 10,
            rx_bytes: 1000,
            tx_packets: 9,
            tx_bytes: 900,
            redirected_out: 1,
            redirected_in: 2,
            new_connections: 2,
            connections: 1,
            connection_capacity: 4096,
            events: vec![("arp replies".into(), 3)],
            drops: vec![("truncated".into(), 1), ("kernel_rate_limited".into(), 4)],
            kernel: vec![
                KernelPathStats { port_id: 0, class: "control".into(), handed: 7, rate_limited: 0 },
                KernelPathStats { port_id: 0, class: "bulk".into(), handed: 20, rate_limited: 4 },
            ],
            poll: Some(PollStats {
                hz: 1_000_000,
                bursts: 4,
                busy: 250_000,
                idle: 750_000,
                pipeline: 120_000,
                send: 50_000,
            }),
        }]
    }

    fn conn_table_size(&self) -> u64 {
        4096
    }
}

pub struct Gateway {
    pub socket: PathBuf,
    server: Option<ServerHandle>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
    running: Arc<Mutex<GatewayConfig>>,
    /// Where gatewayd's watch of its kernel interfaces hands the held addresses.
    held: HeldInput,
}

impl Gateway {
    pub fn start(name: &str) -> Gateway {
        Gateway::start_in(&std::env::temp_dir(), name)
    }

    /// A gateway whose socket directory is created under `base`.
    pub fn start_in(base: &Path, name: &str) -> Gateway {
        Gateway::start_with(base, name, FixedCounters::default())
    }

    /// A gateway whose dataplane reports `counters`.
    pub fn start_with(base: &Path, name: &str, counters: FixedCounters) -> Gateway {
        let dir = base.join(format!("gwctl-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let socket = dir.join("gatewayd.sock");
        let initial = GatewayConfig::empty();
        let (sink, mut mailboxes) = broadcast(1, &initial, Duration::from_secs(10));
        let mut mailbox = mailboxes.remove(0);
        let running = Arc::new(Mutex::new(initial.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (running, stop) = (running.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    mailbox.poll(|config| *running.lock().unwrap() = config.clone());
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        };
        let state = ControlState::new(initial, Box::new(sink), Box::new(counters));
        // The test drives the rate estimator itself, so its figures are exact.
        let options =
            ServerOptions { estimate_interval: Duration::from_secs(24 * 3600), ..ServerOptions::new(&socket) };
        let server = ControlServer::bind(options, state).unwrap();
        let held = server.held_input();
        let server = server.spawn().unwrap();
        Gateway { socket, server: Some(server), stop, worker: Some(worker), running, held }
    }

    /// The configuration the worker runs.
    pub fn running(&self) -> GatewayConfig {
        self.running.lock().unwrap().clone()
    }

    /// Publishes what the kernel interfaces carry, as gatewayd's watch of them does
    /// (`None`: no kernel interface).
    pub fn hold(&self, addrs: Option<&[&str]>) {
        let held = addrs.map(|a| a.iter().map(|s| s.parse().unwrap()).collect());
        self.held.set_held(held).unwrap();
    }

    /// Runs gwctl with whitespace-separated arguments.
    pub fn gwctl(&self, args: &str) -> Output {
        self.gwctl_in(args, "")
    }

    /// Runs gwctl with `stdin` as its input.
    pub fn gwctl_in(&self, args: &str, stdin: &str) -> Output {
        gwctl_with(&self.socket, args.split_whitespace(), stdin, &[])
    }

    /// Runs gwctl and asserts it succeeded without output.
    pub fn ok(&self, args: &str) {
        let o = self.gwctl(args);
        assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (0, "", ""), "gwctl {args}");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        if let Some(dir) = self.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs the gwctl binary with the socket passed through `GATEWAYD_SOCKET`.
pub fn gwctl_with<'a>(
    socket: &Path,
    args: impl IntoIterator<Item = &'a str>,
    stdin: &str,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gwctl"));
    cmd.args(args).env("GATEWAYD_SOCKET", socket);
    run(cmd, stdin, env)
}

pub fn run(mut cmd: Command, stdin: &str, env: &[(&str, &str)]) -> Output {
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}
