//! The prober's thread: one smoltcp interface and socket set, the link, and
//! the probes in flight, keyed by their source port (see the module doc of
//! [`super`] for the design).

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConnection;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint};

use super::framing::{self, Arrival, FramingError};
use super::{PathCounters, PathMode, ProbeLink, ProbeRoute};
use crate::health::engine::Outcome;
use crate::health::probe::{judge_http, judge_udp, timed_out, Completion, MAX_HTTP_REPLY};
use crate::health::tls;
use crate::net::probe::PROBE_PORTS;
use crate::wire::ip_proto;

/// The stack's own address: RFC 7600's IPv4 dummy address, on no wire. The
/// default route points at it so that, with AnyIP, the interface takes
/// packets to any address (the probes' sources are the gateway's addresses).
pub const STACK_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 0, 8);

/// The largest packet the stack emits: a 1500-byte MTU less the TUN mode's
/// outer header, whatever the mode, so every probe fits every path.
pub const PROBE_MTU: usize = 1500 - framing::OUTER_LEN;

/// How long the thread sleeps with no probe in flight (it still empties the
/// link, and notices a stop, this often).
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often the link and the stack are polled with probes in flight.
const BUSY_POLL: Duration = Duration::from_millis(1);
/// The most packets taken from the link in one turn.
const RX_BURST: usize = 256;
/// How long a finished TCP probe waits for its connection to close (the
/// server's FIN, the ACK of ours) before resetting it.
const LINGER: Duration = Duration::from_secs(3);
/// A TCP probe's receive buffer (the HTTP reply streams through it).
const TCP_RX: usize = 16 * 1024;
/// An https probe's send buffer: the handshake's flights and the request, as rustls hands
/// them over (what does not fit waits in rustls until the next turn).
const TLS_TX: usize = 4096;
/// A UDP probe's receive buffer: a few replies of a full MTU.
const UDP_RX_PACKETS: usize = 4;

/// The failure of probes the thread stopped before their end.
pub const STOPPED: &str = "the path prober stopped";

/// What a probe does once connected (TCP) or bound (UDP).
#[derive(Debug)]
pub enum Task {
    Tcp,
    /// `tls`: an https check, `request` already written into it (see [`pump_tls`]).
    Http {
        request: Vec<u8>,
        expected: u16,
        digest: Option<[u8; 16]>,
        tls: Option<Box<ClientConnection>>,
    },
    Udp {
        payload: Vec<u8>,
        expect: Option<String>,
    },
}

impl Task {
    fn protocol(&self) -> u8 {
        match self {
            Task::Tcp | Task::Http { .. } => ip_proto::TCP,
            Task::Udp { .. } => ip_proto::UDP,
        }
    }
}

/// A probe to run, from [`super::PathProber::probe`].
#[derive(Debug)]
pub struct Request {
    pub route: ProbeRoute,
    pub task: Task,
    /// The check's timeout: the probe's whole run, as its failure says.
    pub timeout: Duration,
    pub deadline: Instant,
    /// Where the outcome goes.
    pub reply: Completion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP: the SYN is out.
    Connecting,
    /// HTTP: the request goes out and the reply comes in; UDP: waiting for a
    /// reply.
    Exchanging,
    /// Answered; the connection closes until then, when it is reset.
    Lingering(Instant),
    /// Reset: the RST goes out with the next poll, then the probe ends.
    Aborting,
    /// Over: removed at the end of the turn.
    Done,
}

/// A probe in flight.
struct Live {
    route: ProbeRoute,
    handle: SocketHandle,
    task: Task,
    phase: Phase,
    timeout: Duration,
    deadline: Instant,
    /// `None` once answered.
    reply: Option<Completion>,
    /// HTTP: request bytes sent, reply bytes received.
    sent: usize,
    body: Vec<u8>,
}

impl Live {
    fn answer(&mut self, outcome: Outcome) {
        if let Some(reply) = self.reply.take() {
            reply.finish(outcome);
        }
    }

    /// Whether an arriving packet is this probe's: from the address and
    /// port it was sent to, to its source, of its protocol.
    fn owns(&self, arrival: &Arrival) -> bool {
        let protocol = match *arrival {
            Arrival::Segment { protocol, .. } | Arrival::Unreachable { protocol, .. } => protocol,
        };
        *arrival.local().ip() == self.route.src
            && arrival.remote() == self.route.dst
            && protocol == self.task.protocol()
    }
}

/// smoltcp's device: packets the link delivered for a live probe, and those
/// the stack emitted, until the turn frames and sends them.
/// (The tests' servers run on one too.)
#[derive(Default)]
pub(super) struct Queues {
    pub(super) rx: VecDeque<Vec<u8>>,
    pub(super) tx: VecDeque<Vec<u8>>,
}

pub(super) struct RxToken(Vec<u8>);
pub(super) struct TxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl smoltcp::phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl smoltcp::phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut packet = vec![0; len];
        let r = f(&mut packet);
        self.0.push_back(packet);
        r
    }
}

impl Device for Queues {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(RxToken, TxToken<'_>)> {
        let packet = self.rx.pop_front()?;
        Some((RxToken(packet), TxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<TxToken<'_>> {
        Some(TxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = PROBE_MTU;
        caps
    }
}

/// The thread's state.
pub struct Stack {
    link: Box<dyn ProbeLink>,
    device: Queues,
    iface: Interface,
    sockets: SocketSet<'static>,
    probes: HashMap<u16, Live>,
    /// The offset in [`PROBE_PORTS`] the next port is looked for from.
    cursor: usize,
    epoch: Instant,
    counters: Arc<PathCounters>,
    /// The TUN mode's outer identification.
    ident: u16,
    rx_buf: Vec<u8>,
    frame_buf: Vec<u8>,
}

impl Stack {
    pub fn new(link: Box<dyn ProbeLink>, counters: Arc<PathCounters>) -> Stack {
        let epoch = Instant::now();
        let mut device = Queues::default();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed();
        let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|addrs| {
            // A new interface has no address and room for one: this cannot fail.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(STACK_ADDR), 32));
        });
        // A new interface has no route and room for one: this cannot fail.
        let _ = iface.routes_mut().add_default_ipv4_route(STACK_ADDR);
        iface.set_any_ip(true);
        Stack {
            link,
            device,
            iface,
            sockets: SocketSet::new(Vec::new()),
            probes: HashMap::new(),
            cursor: 0,
            epoch,
            counters,
            ident: 0,
            rx_buf: Vec::with_capacity(2048),
            frame_buf: Vec::with_capacity(2048),
        }
    }

    /// Runs probes from `requests` until `stop` is set, or the requests'
    /// senders are all gone and no probe is left.
    pub fn run(mut self, requests: Receiver<Request>, stop: &AtomicBool) {
        let mut busy = false;
        let mut open = true;
        loop {
            if stop.load(Ordering::Relaxed) {
                for live in self.probes.values_mut() {
                    live.answer(Outcome::Down(STOPPED.into()));
                }
                return;
            }
            let wait = match (busy, self.probes.is_empty()) {
                (true, _) => Duration::ZERO,
                (false, true) => IDLE_WAIT,
                (false, false) => BUSY_POLL,
            };
            let first = if open {
                match requests.recv_timeout(wait) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        open = false;
                        None
                    }
                }
            } else if self.probes.is_empty() {
                return;
            } else {
                std::thread::sleep(wait);
                None
            };
            let mut started = false;
            for request in first.into_iter().chain(std::iter::from_fn(|| requests.try_recv().ok())) {
                self.start(request);
                started = true;
            }
            busy = self.turn() || started;
        }
    }

    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64)
    }

    /// The next free probe port, round robin: the port after the last one
    /// handed out, so a quick re-probe of a server leaves from another port
    /// than the connection the server may still hold in TIME_WAIT.
    fn allocate_port(&mut self) -> Option<u16> {
        let first = *PROBE_PORTS.start();
        let count = PROBE_PORTS.len();
        let cursor = self.cursor;
        let offset =
            (0..count).map(|i| (cursor + i) % count).find(|&o| !self.probes.contains_key(&(first + o as u16)))?;
        self.cursor = (offset + 1) % count;
        Some(first + offset as u16)
    }

    /// Opens the probe's socket and sends its first packet (with the next poll).
    pub fn start(&mut self, request: Request) {
        self.counters.probes.fetch_add(1, Ordering::Relaxed);
        let Request { route, task, timeout, deadline, reply } = request;
        let fail = |reply: Completion, reason: String| reply.finish(Outcome::Down(reason));
        let Some(port) = self.allocate_port() else {
            return fail(reply, format!("all {} probe ports are in use", PROBE_PORTS.len()));
        };
        let local = IpListenEndpoint { addr: Some(IpAddress::Ipv4(route.src)), port };
        let remote = IpEndpoint::new(IpAddress::Ipv4(*route.dst.ip()), route.dst.port());
        let handle = match &task {
            Task::Tcp | Task::Http { .. } => {
                let tx = match &task {
                    Task::Http { tls: Some(_), .. } => TLS_TX,
                    Task::Http { request, .. } => request.len(),
                    _ => 0,
                };
                let mut socket = tcp::Socket::new(
                    tcp::SocketBuffer::new(vec![0; TCP_RX]),
                    tcp::SocketBuffer::new(vec![0; tx.max(1)]),
                );
                socket.set_nagle_enabled(false);
                socket.set_ack_delay(None);
                if let Err(e) = socket.connect(self.iface.context(), remote, local) {
                    return fail(reply, format!("cannot connect to {}: {e}", route.dst));
                }
                self.sockets.add(socket)
            }
            Task::Udp { payload, .. } => {
                let mtu_room = PROBE_MTU - 28;
                if payload.len() > mtu_room {
                    return fail(reply, format!("a payload of {} bytes exceeds the probe's {mtu_room}", payload.len()));
                }
                let rx = udp::PacketBuffer::new(
                    vec![udp::PacketMetadata::EMPTY; UDP_RX_PACKETS],
                    vec![0; UDP_RX_PACKETS * PROBE_MTU],
                );
                let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 1], vec![0; payload.len().max(1)]);
                let mut socket = udp::Socket::new(rx, tx);
                if let Err(e) = socket
                    .bind(local)
                    .map_err(|e| e.to_string())
                    .and_then(|()| socket.send_slice(payload, remote).map_err(|e| e.to_string()))
                {
                    return fail(reply, format!("cannot send to {}: {e}", route.dst));
                }
                self.sockets.add(socket)
            }
        };
        let phase = match task {
            Task::Udp { .. } => Phase::Exchanging,
            _ => Phase::Connecting,
        };
        let live =
            Live { route, handle, task, phase, timeout, deadline, reply: Some(reply), sent: 0, body: Vec::new() };
        self.probes.insert(port, live);
    }

    /// One turn: the link's packets in, the stack polled, the probes moved
    /// on, the stack's packets out. Whether anything came or went.
    pub fn turn(&mut self) -> bool {
        let mut moved = false;
        for _ in 0..RX_BURST {
            if !self.link.recv(&mut self.rx_buf) {
                break;
            }
            moved = true;
            self.arrive();
        }
        let now = self.now();
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        self.drive(Instant::now());
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        moved |= self.flush();
        let sockets = &mut self.sockets;
        self.probes.retain(|_, live| {
            let keep = live.phase != Phase::Done;
            if !keep {
                sockets.remove(live.handle);
            }
            keep
        });
        moved
    }

    /// Takes the packet in `rx_buf`: to the stack if it is a live probe's
    /// segment, the probe's failure if it is an ICMP error quoting it, else
    /// dropped.
    fn arrive(&mut self) {
        let arrival = framing::arrival(&self.rx_buf);
        let live = arrival.and_then(|a| self.probes.get_mut(&a.local().port()).filter(|l| l.owns(&a)).map(|l| (a, l)));
        let Some((arrival, live)) = live else {
            self.counters.rx_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.counters.replies.fetch_add(1, Ordering::Relaxed);
        match arrival {
            Arrival::Segment { .. } => self.device.rx.push_back(self.rx_buf.clone()),
            Arrival::Unreachable { code, .. } => {
                live.answer(Outcome::Down(framing::unreachable_reason(code)));
                live.phase = match live.task {
                    Task::Udp { .. } => Phase::Done,
                    _ => {
                        self.sockets.get_mut::<tcp::Socket>(live.handle).abort();
                        Phase::Aborting
                    }
                };
            }
        }
    }

    /// Moves every probe on after a poll.
    fn drive(&mut self, now: Instant) {
        for live in self.probes.values_mut() {
            match (live.phase, &live.task) {
                (Phase::Done, _) => {}
                (Phase::Aborting, _) => live.phase = Phase::Done,
                (_, Task::Udp { expect, .. }) => {
                    let socket = self.sockets.get_mut::<udp::Socket>(live.handle);
                    let outcome = match socket.recv() {
                        Ok((data, _)) => judge_udp(Some(data), expect.as_deref(), live.timeout),
                        Err(_) if now >= live.deadline => judge_udp(None, expect.as_deref(), live.timeout),
                        Err(_) => continue,
                    };
                    live.answer(outcome);
                    live.phase = Phase::Done;
                }
                (_, _) => drive_tcp(live, self.sockets.get_mut::<tcp::Socket>(live.handle), now),
            }
        }
    }

    /// Frames the stack's packets and hands them to the link. Whether any went.
    fn flush(&mut self) -> bool {
        let mut any = false;
        while let Some(packet) = self.device.tx.pop_front() {
            any = true;
            let route = framing::source_port(&packet).and_then(|p| self.probes.get(&p)).map(|l| l.route);
            let Some(route) = route else {
                self.counters.unframed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let framed = match route.mode {
                PathMode::Tun => {
                    self.ident = self.ident.wrapping_add(1);
                    encapsulated(&route, self.ident, &packet, &mut self.frame_buf).map(|()| &self.frame_buf[..])
                }
                PathMode::Fnat | PathMode::Nat | PathMode::Dr => Ok(&packet[..]),
            };
            let Ok(framed) = framed else {
                self.counters.unframed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if self.link.send(route.server, framed) {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                self.counters.link_refusals.fetch_add(1, Ordering::Relaxed);
            }
        }
        any
    }
}

fn encapsulated(route: &ProbeRoute, ident: u16, packet: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
    framing::encapsulate(route.src, route.server, ident, packet, out)
}

/// Moves a TCP or HTTP probe on.
fn drive_tcp(live: &mut Live, socket: &mut tcp::Socket<'_>, now: Instant) {
    let abort = |live: &mut Live, socket: &mut tcp::Socket<'_>| {
        socket.abort();
        live.phase = Phase::Aborting;
    };
    if let Phase::Lingering(until) = live.phase {
        match socket.state() {
            // Closed, or the server has our last ACK: nothing of ours is left.
            tcp::State::Closed | tcp::State::TimeWait => live.phase = Phase::Done,
            _ if now >= until => abort(live, socket),
            _ => {}
        }
        return;
    }
    if live.phase == Phase::Connecting {
        match socket.state() {
            tcp::State::SynSent | tcp::State::SynReceived => {}
            tcp::State::Closed => {
                // Only a RST closes a connection being opened.
                live.answer(Outcome::Down("connection refused".into()));
                live.phase = Phase::Done;
                return;
            }
            _ => live.phase = Phase::Exchanging,
        }
    }
    if live.phase == Phase::Exchanging {
        let Task::Http { request, expected, digest, tls } = &mut live.task else {
            // A TCP check is up once connected; close it the proper way.
            live.answer(Outcome::Up { weight: None });
            socket.close();
            live.phase = Phase::Lingering(now + LINGER);
            return;
        };
        let (expected, digest) = (*expected, *digest);
        let ended = match tls {
            Some(conn) => match pump_tls(conn, socket, &mut live.body) {
                Ok(ended) => ended,
                Err(reason) => {
                    live.answer(Outcome::Down(reason));
                    abort(live, socket);
                    return;
                }
            },
            None => {
                if live.sent < request.len() {
                    live.sent += socket.send_slice(&request[live.sent..]).unwrap_or(0);
                }
                let mut chunk = [0u8; 4096];
                while live.body.len() < MAX_HTTP_REPLY {
                    match socket.recv_slice(&mut chunk) {
                        Ok(n) if n > 0 => live.body.extend_from_slice(&chunk[..n]),
                        _ => break,
                    }
                }
                !socket.may_recv()
            }
        };
        if socket.state() == tcp::State::Closed {
            live.answer(Outcome::Down("connection reset by peer".into()));
            live.phase = Phase::Done;
            return;
        }
        let full = live.body.len() >= MAX_HTTP_REPLY;
        if full || ended {
            live.answer(judge_http(&live.body, expected, digest.as_ref()));
            if full {
                // The server is still sending: a reset stops it.
                abort(live, socket);
            } else {
                if let Task::Http { tls: Some(conn), .. } = &mut live.task {
                    // The TLS close before the TCP one, as a well-behaved client's.
                    conn.send_close_notify();
                    let _ = conn.write_tls(&mut SocketIo(socket));
                }
                socket.close();
                live.phase = Phase::Lingering(now + LINGER);
            }
            return;
        }
    }
    if now >= live.deadline {
        live.answer(Outcome::Down(timed_out(live.timeout)));
        abort(live, socket);
    }
}

/// A TCP socket as rustls' transport: nothing to read or no room to write is `WouldBlock`,
/// the server's FIN (or a reset) the end of the stream. (The tests' TLS servers use it too.)
pub(super) struct SocketIo<'a, 'b>(pub(super) &'a mut tcp::Socket<'b>);

impl std::io::Read for SocketIo<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.recv_slice(buf) {
            Ok(0) => Err(std::io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            // Finished (the FIN) or not connected (reset): the end.
            Err(_) => Ok(0),
        }
    }
}

impl std::io::Write for SocketIo<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.send_slice(buf) {
            Ok(n) if n > 0 || buf.is_empty() => Ok(n),
            Ok(_) => Err(std::io::ErrorKind::WouldBlock.into()),
            Err(_) => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Moves an https probe's bytes between rustls and its socket: the server's records in,
/// the decrypted reply into `body` (at most [`MAX_HTTP_REPLY`]), rustls' records (the
/// handshake, then the request it holds) out. Whether the reply has ended (the server's
/// close_notify, or its FIN without one, as most servers' and keepalived's reading
/// allows); a TLS failure as the probe's reason.
fn pump_tls(conn: &mut ClientConnection, socket: &mut tcp::Socket<'_>, body: &mut Vec<u8>) -> Result<bool, String> {
    use std::io::{ErrorKind, Read};
    let mut ended = false;
    while !ended && body.len() < MAX_HTTP_REPLY {
        let (closed, more) = match conn.read_tls(&mut SocketIo(socket)) {
            Ok(0) => (true, false),
            Ok(_) => (false, true),
            Err(e) if e.kind() == ErrorKind::WouldBlock => (false, false),
            Err(e) => return Err(format!("TLS: {e}")),
        };
        conn.process_new_packets().map_err(|e| tls::reason(conn, &e))?;
        if closed && conn.is_handshaking() {
            return Err(tls::CLOSED_IN_HANDSHAKE.into());
        }
        let mut chunk = [0u8; 4096];
        while body.len() < MAX_HTTP_REPLY {
            match conn.reader().read(&mut chunk) {
                Ok(0) => {
                    // The server's close_notify.
                    ended = true;
                    break;
                }
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The FIN without a close_notify.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    ended = true;
                    break;
                }
                Err(e) => return Err(format!("TLS: {e}")),
            }
        }
        ended |= closed;
        if !more {
            break;
        }
    }
    while conn.wants_write() {
        match conn.write_tls(&mut SocketIo(socket)) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    Ok(ended)
}

/// A seed for the stack's initial sequence numbers, different each start.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
