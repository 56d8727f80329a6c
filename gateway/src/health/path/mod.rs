//! Probes along each real server's forwarding path (DESIGN.md, "The gateway's
//! own traffic"): generated in process and sent by a worker the way the
//! server's clients' packets are, so a DR server that lost the VIP on `lo`, or
//! a broken tunnel, fails its check (keepalived, probing RIP:port from the
//! kernel, sees neither).
//!
//! | mode | the probe, as the server receives it | routed toward |
//! |---|---|---|
//! | FNAT | local address:probe port -> RIP:rport | RIP (via the route table) |
//! | NAT | gateway address:probe port -> RIP:rport | RIP |
//! | DR | gateway address:probe port -> VIP:vport, to the server's MAC | RIP (the next hop is the server itself) |
//! | TUN | IPIP(gateway address -> RIP) around gateway address:probe port -> VIP:vport | RIP |
//!
//! The server's replies come back to the probe port ([`crate::net::probe`]):
//! through the gateway in FNAT and NAT, straight from the server (from the VIP)
//! in DR and TUN; a worker hands them over.
//!
//! The seams: [`RouteResolver`] says how one server is reached now (from the
//! published configuration); [`ProbeLink`] carries IPv4 packets to and from the
//! workers (the DPDK rings in gatewayd, memory in tests).
//!
//! # The prober
//!
//! [`PathProber`] is a [`Prober`] that carries its probes itself: the checker
//! starts each ([`Prober::start`]), which resolves the route (a server without
//! one fails with the resolver's reason) and hands the probe, with where its
//! outcome goes, to one thread, `gw-probe`, which owns everything else: the
//! link, a smoltcp interface and its sockets, and the probes in flight, and
//! finishes each by its check's timeout. So a thousand servers checked each
//! second cost no thread each. One thread because the stack is one state
//! machine over one link (no lock on any packet); the probes are small, and
//! the thread sleeps while none is in flight. MISC checks are not network
//! probes: they run their script on a thread of their own, as
//! a blocking prober would ([`super::probe::on_own_thread`]).
//!
//! smoltcp because a TCP probe must be a real TCP connection (the HTTP check
//! reads a reply of many segments, and a server must see a proper handshake
//! and close), and the gateway has no TCP of its own: the kernel's is out of
//! reach of a packet that must leave by a worker with a chosen source address
//! and, for DR and TUN, a chosen framing. The interface is `Medium::Ip`: it
//! emits and takes bare IPv4 packets, and the workers do the routing and the
//! neighbours, as for the clients' packets.
//!
//! Addresses: a probe leaves from the address the route names (an FNAT local
//! address, the gateway's address toward the server), and those are many and
//! change with the configuration. The interface holds one address of its own,
//! [`STACK_ADDR`] (RFC 7600's dummy address, on no wire), a default route via
//! it, and AnyIP: smoltcp then takes a packet to any unicast address (AnyIP
//! accepts the destinations routed via one of the interface's own addresses),
//! and each socket is bound to its probe's address and port. What reaches the
//! stack is filtered before it: a packet goes in only if it is a live probe's
//! (to its address and port, from the address and port it probed, of its
//! protocol); anything else is dropped and counted. ICMP errors never go in
//! (smoltcp gives them to no TCP or UDP socket): a destination unreachable
//! quoting a live probe (in TUN mode, also inside a quoted tunnel packet: a
//! server without the tunnel answers "protocol unreachable") fails it, as the
//! kernel fails a connected socket ("ICMP port unreachable").
//!
//! Ports: every probe has a source port of its own from
//! [`crate::net::probe::PROBE_PORTS`], whatever its address, so the port alone
//! names the probe a packet belongs to (at most 1024 probes in flight). Ports
//! are handed out round robin, so a quick re-probe of a server does not come
//! from the port of the connection the server may still hold in TIME_WAIT.
//!
//! Framing: each packet the stack emits goes to the link toward the route's
//! server ([`ProbeRoute::server`], every mode); in TUN mode it is first wrapped
//! in an outer IPv4 header to the server ([`framing::encapsulate`]), as the
//! tunnel's transmit wraps a client's packet. Replies are plain IPv4 (DR and TUN
//! servers answer from the VIP, directly).
//!
//! An https check (keepalived's `SSL_GET`) is the HTTP check over TLS: a rustls client
//! ([`super::tls`], no certificate verification, as keepalived's) whose records go
//! through the probe's smoltcp socket, pumped by the stack thread each turn like the plain
//! request and reply; the decrypted reply is judged as the HTTP check's. A failed handshake
//! fails the probe with "TLS handshake failed: ...", and rustls' alert is not waited for:
//! the connection is reset as any failed probe's.
//!
//! A TCP check is up once connected, then closes with a FIN (a reset after a
//! linger if the server does not close in turn); a probe that fails or runs
//! out of time resets its connection, so no server keeps a half-open one.

mod framing;
mod stack;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gwapi::health::CheckKind;

use super::engine::{Outcome, ProbeJob, TargetKey};
use super::probe::{self, timed_out, Completion, Prober};
use stack::{Request, Stack, Task};
pub use stack::{PROBE_MTU, STACK_ADDR, STOPPED};

/// The forwarding mode a probe imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathMode {
    Fnat,
    Nat,
    Dr,
    Tun,
}

/// How a probe reaches one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRoute {
    pub mode: PathMode,
    /// The probe's source address: one of the service's local addresses (FNAT,
    /// while this director holds it), else the gateway's address toward the
    /// server.
    pub src: Ipv4Addr,
    /// The address and port the server sees the probe sent to: RIP:rport (FNAT,
    /// NAT), VIP:vport (DR, TUN).
    pub dst: SocketAddrV4,
    /// The real server's own address: the route target, and TUN's outer destination.
    pub server: Ipv4Addr,
}

/// How each server is reached, from the configuration in force.
pub trait RouteResolver: Send + Sync {
    /// The route of `key`'s probes now, or why there is none (the reason becomes
    /// the probe's failure: "no route to 10.0.9.9", "no such server").
    fn resolve(&self, key: &TargetKey) -> Result<ProbeRoute, String>;
}

/// The prober's side of the dataplane: IPv4 packets both ways.
pub trait ProbeLink: Send + 'static {
    /// Hands `packet` to a worker, to be routed toward `toward`; `false` when
    /// refused (the ring is full, no buffer), which the probe sees as a loss.
    fn send(&mut self, toward: Ipv4Addr, packet: &[u8]) -> bool;
    /// Moves the next IPv4 packet the workers handed over for the prober into
    /// `buf` (cleared first); `false` when there is none now.
    fn recv(&mut self, buf: &mut Vec<u8>) -> bool;
}

/// What the prober did, for the daemon's metrics.
#[derive(Debug, Default)]
pub struct PathCounters {
    /// Probes started (a MISC check's script is not one).
    probes: AtomicU64,
    /// Packets handed to the link.
    sent: AtomicU64,
    /// Packets the link refused (a probe sees the loss).
    link_refusals: AtomicU64,
    /// Packets the stack emitted that could not be framed (none expected).
    unframed: AtomicU64,
    /// Packets from the link that were a live probe's (ICMP errors included).
    replies: AtomicU64,
    /// Packets from the link that were no live probe's, or no packet at all.
    rx_dropped: AtomicU64,
}

/// [`PathCounters`] read at once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PathStats {
    pub probes: u64,
    pub sent: u64,
    pub link_refusals: u64,
    pub unframed: u64,
    pub replies: u64,
    pub rx_dropped: u64,
}

impl PathCounters {
    pub fn stats(&self) -> PathStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PathStats {
            probes: get(&self.probes),
            sent: get(&self.sent),
            link_refusals: get(&self.link_refusals),
            unframed: get(&self.unframed),
            replies: get(&self.replies),
            rx_dropped: get(&self.rx_dropped),
        }
    }
}

/// How much longer than the check's timeout a caller waits for the thread's
/// answer (the thread answers at the deadline; this only covers a thread
/// that stopped answering).
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Probes along each server's forwarding path (see the module doc).
pub struct PathProber {
    requests: mpsc::Sender<Request>,
    resolver: Arc<dyn RouteResolver>,
    counters: Arc<PathCounters>,
}

impl PathProber {
    /// Starts the `gw-probe` thread over `link`. It runs until `stop` is set
    /// (probes in flight then fail with [`STOPPED`]) or the prober is dropped
    /// and its last probe has ended.
    pub fn spawn(
        link: Box<dyn ProbeLink>,
        resolver: Arc<dyn RouteResolver>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<(Arc<PathProber>, JoinHandle<()>)> {
        let counters = Arc::new(PathCounters::default());
        let (requests, incoming) = mpsc::channel();
        let stack = Stack::new(link, Arc::clone(&counters));
        let thread = std::thread::Builder::new().name("gw-probe".into()).spawn(move || stack.run(incoming, &stop))?;
        Ok((Arc::new(PathProber { requests, resolver, counters }), thread))
    }

    pub fn counters(&self) -> &PathCounters {
        &self.counters
    }
}

impl PathProber {
    /// `job` as the stack thread runs it, `Ok(None)` for a MISC check (a script, not a
    /// network probe), or why it cannot run (an https check's host no SNI can name).
    fn task(job: &ProbeJob) -> Result<Option<Task>, String> {
        let check = &job.check;
        Ok(Some(match check.kind() {
            CheckKind::Misc { .. } => return Ok(None),
            CheckKind::Tcp => Task::Tcp,
            CheckKind::Http { path, host, status, tls, .. } => {
                let request = probe::http_request(path, host.as_deref(), SocketAddr::new(job.key.addr, job.key.port))
                    .into_bytes();
                let tls = match tls {
                    true => Some(Box::new(super::tls::connect(host.as_deref(), job.key.addr, &request)?)),
                    false => None,
                };
                Task::Http { request, expected: *status, digest: check.digest, tls }
            }
            CheckKind::Udp { payload, expect } => {
                Task::Udp { payload: payload.as_bytes().to_vec(), expect: expect.clone() }
            }
        }))
    }
}

impl Prober for PathProber {
    fn probe(&self, job: &ProbeJob) -> Outcome {
        let check = &job.check;
        let task = match Self::task(job) {
            Ok(Some(task)) => task,
            Ok(None) => {
                let CheckKind::Misc { script, dynamic } = check.kind() else { unreachable!("only MISC has no task") };
                return probe::misc(script, *dynamic, job, check.timeout);
            }
            Err(reason) => return Outcome::Down(reason),
        };
        let (reply, outcome) = mpsc::sync_channel(1);
        self.hand_over(job, task, Completion::new(move |o| drop(reply.try_send(o))));
        match outcome.recv_timeout(check.timeout + ANSWER_GRACE) {
            Ok(outcome) => outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => Outcome::Down(timed_out(check.timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Outcome::Down(STOPPED.into()),
        }
    }

    fn start(self: Arc<Self>, job: ProbeJob, done: Completion) {
        match Self::task(&job) {
            Ok(Some(task)) => self.hand_over(&job, task, done),
            // A script blocks: on a thread of its own, as any blocking probe.
            Ok(None) => probe::on_own_thread(self, job, done),
            Err(reason) => done.finish(Outcome::Down(reason)),
        }
    }
}

impl PathProber {
    /// Hands `task` to the stack thread, which finishes `done` by the check's timeout;
    /// a route the resolver cannot give fails it at once.
    fn hand_over(&self, job: &ProbeJob, task: Task, done: Completion) {
        let route = match self.resolver.resolve(&job.key) {
            Ok(route) => route,
            Err(reason) => return done.finish(Outcome::Down(reason)),
        };
        let timeout = job.check.timeout;
        let request = Request { route, task, timeout, deadline: Instant::now() + timeout, reply: done };
        if let Err(mpsc::SendError(request)) = self.requests.send(request) {
            request.reply.finish(Outcome::Down(STOPPED.into()));
        }
    }
}
