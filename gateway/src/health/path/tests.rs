//! The prober against servers on a second smoltcp stack (the "farm") behind
//! an in-memory link: the farm takes what the prober sends toward each
//! server as that server would (its addresses, its tunnel), answers from its
//! sockets (smoltcp's own RST and ICMP port unreachable for closed ports),
//! and a link that drops what it is told toward no server.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gwapi::api::VirtualService;
use gwapi::health::{CheckKind, HealthCheckConfig};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpListenEndpoint};

use super::stack::Queues;
use super::*;
use crate::health::check::Check;
use crate::health::md5::md5_hex;
use crate::net::probe::PROBE_PORTS;
use crate::wire::checksum;
use crate::wire::ip_proto;
use crate::wire::ipv4::Ipv4Packet;

const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const FARM_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const BODY: &str = "hello health\n";

#[derive(Clone)]
enum Behaviour {
    /// Accepts, closes when the prober does.
    Accept,
    /// Answers one request with this reply, then closes.
    Http(String),
    /// Resets the connection on a request.
    Reset,
    /// As `Http`, over TLS with a self-signed certificate ([`tls_server`]).
    Https(String),
    /// Sends this as soon as anything arrives, then closes: a server speaking plain HTTP
    /// to a TLS client's hello (nginx answers its 400 at once).
    Greet(String),
}

/// The TLS servers' configuration.
fn tls_server() -> Arc<rustls::ServerConfig> {
    crate::health::tls::test_server_config()
}

/// One real server: the address the link delivers to, the addresses it takes
/// packets for (its own, and the VIP in DR and TUN), whether it decapsulates
/// IPIP, and its open ports.
#[derive(Clone)]
struct Server {
    rip: Ipv4Addr,
    addrs: Vec<Ipv4Addr>,
    tunnel: bool,
    tcp: Vec<(u16, Behaviour)>,
    /// Open UDP ports and their answer (none: silent).
    udp: Vec<(u16, Option<&'static str>)>,
}

impl Server {
    fn new(rip: Ipv4Addr) -> Server {
        Server { rip, addrs: vec![rip], tunnel: false, tcp: Vec::new(), udp: Vec::new() }
    }
}

struct Listener {
    handle: SocketHandle,
    endpoint: (Ipv4Addr, u16),
    behaviour: Behaviour,
    request: Vec<u8>,
    answered: bool,
    /// `Https`: the server's side of the TLS connection.
    tls: Option<rustls::ServerConnection>,
    /// Replaced by a fresh listener once it left LISTEN.
    replaced: bool,
}

/// The servers' stack.
struct Farm {
    iface: Interface,
    device: Queues,
    sockets: SocketSet<'static>,
    servers: Vec<Server>,
    listeners: Vec<Listener>,
    udp: Vec<(SocketHandle, Option<&'static str>)>,
    epoch: Instant,
    shared: Arc<Shared>,
}

/// What the test sees of the link.
#[derive(Default)]
struct Shared {
    /// Everything the prober sent: (toward, packet).
    sent: Mutex<Vec<(Ipv4Addr, Vec<u8>)>>,
    /// Packets the prober receives before the farm's.
    inject: Mutex<VecDeque<Vec<u8>>>,
    /// The HTTP requests the farm read.
    requests: Mutex<Vec<String>>,
    /// The SNI of each TLS connection the farm answered.
    sni: Mutex<Vec<Option<String>>>,
    refuse: AtomicBool,
}

impl Farm {
    fn new(servers: Vec<Server>, shared: Arc<Shared>) -> Farm {
        let mut device = Queues::default();
        let mut iface = Interface::new(Config::new(HardwareAddress::Ip), &mut device, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| a.push(IpCidr::new(IpAddress::Ipv4(FARM_ADDR), 32)).unwrap());
        iface.routes_mut().add_default_ipv4_route(FARM_ADDR).unwrap();
        iface.set_any_ip(true);
        let mut farm = Farm {
            iface,
            device,
            sockets: SocketSet::new(Vec::new()),
            servers: servers.clone(),
            listeners: Vec::new(),
            udp: Vec::new(),
            epoch: Instant::now(),
            shared,
        };
        for server in &servers {
            for &addr in &server.addrs {
                for (port, behaviour) in &server.tcp {
                    farm.listen((addr, *port), behaviour.clone());
                }
                for &(port, answer) in &server.udp {
                    let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 4], vec![0; 4096]);
                    let mut socket = udp::Socket::new(buf(), buf());
                    socket.bind(IpListenEndpoint { addr: Some(IpAddress::Ipv4(addr)), port }).unwrap();
                    let handle = farm.sockets.add(socket);
                    farm.udp.push((handle, answer));
                }
            }
        }
        farm
    }

    fn listen(&mut self, endpoint: (Ipv4Addr, u16), behaviour: Behaviour) {
        let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; 4096]), tcp::SocketBuffer::new(vec![0; 4096]));
        socket.listen(IpListenEndpoint { addr: Some(IpAddress::Ipv4(endpoint.0)), port: endpoint.1 }).unwrap();
        let handle = self.sockets.add(socket);
        self.listeners.push(Listener {
            handle,
            endpoint,
            behaviour: behaviour.clone(),
            request: Vec::new(),
            answered: false,
            tls: matches!(behaviour, Behaviour::Https(_)).then(|| rustls::ServerConnection::new(tls_server()).unwrap()),
            replaced: false,
        });
    }

    /// A packet the prober sent toward `toward`, as the server there takes it.
    fn deliver(&mut self, toward: Ipv4Addr, packet: &[u8]) {
        let Some(server) = self.servers.iter().find(|s| s.rip == toward) else { return };
        let Ok(ip) = Ipv4Packet::new_checked(packet) else { return };
        let inner = if ip.protocol() == ip_proto::IPIP && ip.dst_addr() == server.rip && server.tunnel {
            ip.payload().to_vec()
        } else {
            packet.to_vec()
        };
        let Ok(inner_ip) = Ipv4Packet::new_checked(&inner[..]) else { return };
        if server.addrs.contains(&inner_ip.dst_addr()) {
            self.device.rx.push_back(inner);
        }
    }

    fn poll(&mut self) {
        let now = smoltcp::time::Instant::from_micros(self.epoch.elapsed().as_micros() as i64);
        self.iface.poll(now, &mut self.device, &mut self.sockets);
        let mut fresh = Vec::new();
        for l in &mut self.listeners {
            let socket = self.sockets.get_mut::<tcp::Socket>(l.handle);
            if socket.state() != tcp::State::Listen && !l.replaced {
                l.replaced = true;
                fresh.push((l.endpoint, l.behaviour.clone()));
            }
            match &l.behaviour {
                Behaviour::Accept => {
                    if socket.state() == tcp::State::CloseWait {
                        socket.close();
                    }
                }
                Behaviour::Greet(greeting) => {
                    let mut buf = [0u8; 1024];
                    if !l.answered && matches!(socket.recv_slice(&mut buf), Ok(1..)) {
                        l.answered = true;
                        socket.send_slice(greeting.as_bytes()).unwrap();
                        socket.close();
                    }
                }
                Behaviour::Https(reply) => {
                    use std::io::{Read, Write};
                    let Some(conn) = l.tls.as_mut() else { continue };
                    while matches!(conn.read_tls(&mut super::stack::SocketIo(socket)), Ok(1..)) {
                        if conn.process_new_packets().is_err() {
                            socket.abort();
                            break;
                        }
                    }
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = conn.reader().read(&mut buf) {
                        l.request.extend_from_slice(&buf[..n]);
                    }
                    if !l.answered && l.request.windows(4).any(|w| w == b"\r\n\r\n") {
                        l.answered = true;
                        self.shared.requests.lock().unwrap().push(String::from_utf8_lossy(&l.request).into_owned());
                        self.shared.sni.lock().unwrap().push(conn.server_name().map(str::to_string));
                        conn.writer().write_all(reply.as_bytes()).unwrap();
                        conn.send_close_notify();
                    }
                    while conn.wants_write() {
                        if !matches!(conn.write_tls(&mut super::stack::SocketIo(socket)), Ok(1..)) {
                            break;
                        }
                    }
                    if l.answered && !conn.wants_write() && socket.state() == tcp::State::Established {
                        socket.close();
                    }
                }
                Behaviour::Http(_) | Behaviour::Reset => {
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = socket.recv_slice(&mut buf) {
                        l.request.extend_from_slice(&buf[..n]);
                    }
                    if !l.answered && l.request.windows(4).any(|w| w == b"\r\n\r\n") {
                        l.answered = true;
                        self.shared.requests.lock().unwrap().push(String::from_utf8_lossy(&l.request).into_owned());
                        if let Behaviour::Http(reply) = &l.behaviour {
                            socket.send_slice(reply.as_bytes()).unwrap();
                            socket.close();
                        } else {
                            socket.abort();
                        }
                    }
                }
            }
        }
        for (endpoint, behaviour) in fresh {
            self.listen(endpoint, behaviour);
        }
        for &(handle, answer) in &self.udp {
            let socket = self.sockets.get_mut::<udp::Socket>(handle);
            if let Ok((_, meta)) = socket.recv() {
                if let Some(answer) = answer {
                    socket.send_slice(answer.as_bytes(), meta.endpoint).unwrap();
                }
            }
        }
        self.iface.poll(now, &mut self.device, &mut self.sockets);
    }
}

struct TestLink(Farm);

impl ProbeLink for TestLink {
    fn send(&mut self, toward: Ipv4Addr, packet: &[u8]) -> bool {
        if self.0.shared.refuse.load(Ordering::Relaxed) {
            return false;
        }
        self.0.shared.sent.lock().unwrap().push((toward, packet.to_vec()));
        self.0.deliver(toward, packet);
        true
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> bool {
        if let Some(p) = self.0.shared.inject.lock().unwrap().pop_front() {
            *buf = p;
            return true;
        }
        if self.0.device.tx.is_empty() {
            self.0.poll();
        }
        let Some(p) = self.0.device.tx.pop_front() else { return false };
        *buf = p;
        true
    }
}

#[derive(Default)]
struct Routes(HashMap<(IpAddr, u16), ProbeRoute>);

impl RouteResolver for Routes {
    fn resolve(&self, key: &TargetKey) -> Result<ProbeRoute, String> {
        self.0.get(&(key.addr, key.port)).copied().ok_or_else(|| "no such server".into())
    }
}

/// A prober over a farm of `servers`, reached by `routes`.
struct Bench {
    prober: Arc<PathProber>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bench {
    fn new(servers: Vec<Server>, routes: Vec<ProbeRoute>) -> Bench {
        let shared = Arc::new(Shared::default());
        // Each route is the one of its server's port the probe goes to (the
        // real server's port: the route's own in FNAT and NAT, 80 in DR and TUN).
        let resolver = Routes(routes.into_iter().map(|r| ((IpAddr::V4(r.server), key_port(&r)), r)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let link = Box::new(TestLink(Farm::new(servers, Arc::clone(&shared))));
        let (prober, thread) = PathProber::spawn(link, Arc::new(resolver), Arc::clone(&stop)).unwrap();
        Bench { prober, shared, stop, thread: Some(thread) }
    }

    fn probe(&self, kind: CheckKind, rip: Ipv4Addr, port: u16, timeout_ms: u64) -> Outcome {
        self.prober.probe(&job(kind, rip, port, timeout_ms))
    }

    /// The TCP or UDP packets sent so far: (toward, the probe as the server
    /// gets it, i.e. inside the tunnel in TUN mode).
    fn sent(&self) -> Vec<(Ipv4Addr, Vec<u8>)> {
        let sent = self.shared.sent.lock().unwrap();
        sent.iter()
            .map(|(toward, p)| {
                let ip = Ipv4Packet::new_checked(&p[..]).unwrap();
                let inner = if ip.protocol() == ip_proto::IPIP { ip.payload().to_vec() } else { p.clone() };
                (*toward, inner)
            })
            .collect()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn job(kind: CheckKind, rip: Ipv4Addr, port: u16, timeout_ms: u64) -> ProbeJob {
    let mut c = HealthCheckConfig::new(kind);
    c.connect_timeout_ms = timeout_ms;
    ProbeJob {
        key: TargetKey { service: VirtualService::Tcp { addr: VIP.into(), port: 80 }, addr: rip.into(), port },
        check: Arc::new(Check::new(&c).unwrap()),
        ticket: 1,
    }
}

/// The real server's port a route's probe checks (the tests' DR and TUN
/// servers listen on the VIP's port).
fn key_port(r: &ProbeRoute) -> u16 {
    r.dst.port()
}

fn route(mode: PathMode, src: Ipv4Addr, dst: SocketAddrV4, server: Ipv4Addr) -> ProbeRoute {
    ProbeRoute { mode, src, dst, server }
}

/// A TCP packet's source port and flags.
fn tcp_of(packet: &[u8]) -> (u16, u8) {
    let ip = Ipv4Packet::new_checked(packet).unwrap();
    let l4 = ip.payload();
    (u16::from_be_bytes([l4[0], l4[1]]), l4[13])
}

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const FIN: u8 = 0x01;
const UP: Outcome = Outcome::Up { weight: None };

fn rip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 2, n)
}

#[test]
fn tcp_connects_and_closes_is_refused_by_a_reset_and_times_out() {
    let mut server = Server::new(rip(11));
    server.tcp.push((80, Behaviour::Accept));
    let nat = |port| route(PathMode::Nat, GW, SocketAddrV4::new(rip(11), port), rip(11));
    let lost = route(PathMode::Nat, GW, SocketAddrV4::new(rip(99), 80), rip(99));
    let bench = Bench::new(vec![server], vec![nat(80), nat(81), lost]);
    assert_eq!(bench.probe(CheckKind::Tcp, rip(11), 80, 2000), UP);
    // The probe closes with a FIN, and the server's close completes it: no reset.
    let deadline = Instant::now() + std::time::Duration::from_secs(2);
    while !bench.sent().iter().any(|(_, p)| tcp_of(p).1 & FIN != 0) && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    let flags: Vec<u8> = bench.sent().iter().map(|(_, p)| tcp_of(p).1).collect();
    assert!(flags.iter().any(|f| f & FIN != 0), "{flags:x?}");
    assert!(!flags.iter().any(|f| f & RST != 0), "{flags:x?}");
    // A closed port: the server's stack resets the SYN.
    assert_eq!(bench.probe(CheckKind::Tcp, rip(11), 81, 2000), Outcome::Down("connection refused".into()));
    // Nobody there: timed out, and the connection attempt reset.
    let before = bench.sent().len();
    let start = Instant::now();
    assert_eq!(bench.probe(CheckKind::Tcp, rip(99), 80, 200), Outcome::Down("timed out after 0.2 s".into()));
    assert!(start.elapsed() < std::time::Duration::from_millis(600), "{:?}", start.elapsed());
    std::thread::sleep(std::time::Duration::from_millis(20));
    let to_lost: Vec<u8> =
        bench.sent()[before..].iter().filter(|(t, _)| *t == rip(99)).map(|(_, p)| tcp_of(p).1).collect();
    assert_eq!(to_lost.first(), Some(&SYN), "{to_lost:x?}");
    assert!(to_lost.last().is_some_and(|f| f & RST != 0), "{to_lost:x?}");
    // A server no route names.
    assert_eq!(bench.probe(CheckKind::Tcp, rip(50), 80, 200), Outcome::Down("no such server".into()));
}

#[test]
fn http_status_and_digest() {
    let reply = |status: &str| format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len());
    let mut server = Server::new(rip(12));
    server.tcp.push((80, Behaviour::Http(reply("200 OK"))));
    server.tcp.push((8080, Behaviour::Http(reply("404 Not Found"))));
    server.tcp.push((8081, Behaviour::Reset));
    server.tcp.push((8082, Behaviour::Accept));
    server.tcp.push((8083, Behaviour::Http("garbage\r\n".into())));
    let fnat = |port| route(PathMode::Fnat, LADDR, SocketAddrV4::new(rip(12), port), rip(12));
    let bench = Bench::new(vec![server], (80..=80).chain(8080..=8083).map(fnat).collect());
    let http = |digest: Option<&str>| CheckKind::Http {
        path: "/health".into(),
        host: Some("www.example".into()),
        status: 200,
        digest: digest.map(str::to_string),
        tls: false,
    };
    let right = md5_hex(BODY.as_bytes());
    assert_eq!(bench.probe(http(Some(&right)), rip(12), 80, 2000), UP);
    let req = bench.shared.requests.lock().unwrap()[0].clone();
    assert!(req.starts_with("GET /health HTTP/1.0\r\nHost: www.example\r\n"), "{req}");
    let zeros = "00000000000000000000000000000000";
    assert_eq!(
        bench.probe(http(Some(zeros)), rip(12), 80, 2000),
        Outcome::Down(format!("digest {right}, expected {zeros}"))
    );
    assert_eq!(bench.probe(http(None), rip(12), 8080, 2000), Outcome::Down("status 404, expected 200".into()));
    assert_eq!(bench.probe(http(None), rip(12), 8081, 2000), Outcome::Down("connection reset by peer".into()));
    assert_eq!(
        bench.probe(http(None), rip(12), 8083, 2000),
        Outcome::Down("no complete HTTP header in the reply".into())
    );
    // Accepts and never answers: timed out, and the connection reset.
    assert_eq!(bench.probe(http(None), rip(12), 8082, 200), Outcome::Down("timed out after 0.2 s".into()));
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(bench.sent().last().is_some_and(|(_, p)| tcp_of(p).1 & RST != 0));
    // Every probe left from the local address.
    assert!(bench
        .sent()
        .iter()
        .all(|(t, p)| *t == rip(12) && Ipv4Packet::new_checked(&p[..]).unwrap().src_addr() == LADDR));
}

#[test]
fn https_status_digest_sni_and_a_failed_handshake() {
    let reply = |status: &str| format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{BODY}", BODY.len());
    let mut server = Server::new(rip(22));
    server.tcp.push((443, Behaviour::Https(reply("200 OK"))));
    server.tcp.push((8443, Behaviour::Https(reply("404 Not Found"))));
    server.tcp.push((80, Behaviour::Greet("HTTP/1.1 400 Bad Request\r\n\r\n".into())));
    server.tcp.push((8082, Behaviour::Accept));
    let fnat = |port| route(PathMode::Fnat, LADDR, SocketAddrV4::new(rip(22), port), rip(22));
    let bench = Bench::new(vec![server], [443, 8443, 80, 8082].into_iter().map(fnat).collect());
    let https = |host: Option<&str>, digest: Option<&str>| CheckKind::Http {
        path: "/health.html".into(),
        host: host.map(str::to_string),
        status: 200,
        digest: digest.map(str::to_string),
        tls: true,
    };
    let right = md5_hex(BODY.as_bytes());
    assert_eq!(bench.probe(https(Some("www.example"), Some(&right)), rip(22), 443, 2000), UP);
    let req = bench.shared.requests.lock().unwrap()[0].clone();
    assert!(req.starts_with("GET /health.html HTTP/1.0\r\nHost: www.example\r\n"), "{req}");
    // Without a host: no SNI (the server's address), the Host header its address.
    assert_eq!(bench.probe(https(None, None), rip(22), 443, 2000), UP);
    assert_eq!(*bench.shared.sni.lock().unwrap(), [Some("www.example".to_string()), None]);
    assert!(bench.shared.requests.lock().unwrap()[1].contains("Host: 10.0.2.22:443\r\n"));
    let zeros = "00000000000000000000000000000000";
    assert_eq!(
        bench.probe(https(None, Some(zeros)), rip(22), 443, 2000),
        Outcome::Down(format!("digest {right}, expected {zeros}"))
    );
    assert_eq!(bench.probe(https(None, None), rip(22), 8443, 2000), Outcome::Down("status 404, expected 200".into()));
    // A plain HTTP server's answer to the hello.
    let plain = bench.probe(https(None, None), rip(22), 80, 2000);
    assert_eq!(
        plain,
        Outcome::Down("TLS handshake failed: received corrupt message of type InvalidContentType".into())
    );
    // A server that accepts and never answers the hello.
    assert_eq!(bench.probe(https(None, None), rip(22), 8082, 200), Outcome::Down("timed out after 0.2 s".into()));
}

#[test]
fn udp_reply_pattern_silence_and_port_unreachable() {
    let mut server = Server::new(rip(13));
    server.udp.push((53, Some("pong ok")));
    server.udp.push((55, None));
    let nat = |port| route(PathMode::Nat, GW, SocketAddrV4::new(rip(13), port), rip(13));
    let bench = Bench::new(vec![server], vec![nat(53), nat(54), nat(55)]);
    let udp = |expect: Option<&str>| CheckKind::Udp { payload: "ping".into(), expect: expect.map(str::to_string) };
    assert_eq!(bench.probe(udp(Some("ok")), rip(13), 53, 2000), UP);
    assert_eq!(
        bench.probe(udp(Some("fine")), rip(13), 53, 2000),
        Outcome::Down("reply of 7 bytes does not contain \"fine\"".into())
    );
    // Nobody answers but nobody refuses: up without a pattern, down with one.
    assert_eq!(bench.probe(udp(None), rip(13), 55, 200), UP);
    assert_eq!(bench.probe(udp(Some("ok")), rip(13), 55, 200), Outcome::Down("timed out after 0.2 s".into()));
    // A closed port: the server's ICMP error, quoting the probe, fails it at once.
    let start = Instant::now();
    assert_eq!(bench.probe(udp(None), rip(13), 54, 2000), Outcome::Down("ICMP port unreachable".into()));
    assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
}

#[test]
fn dr_reaches_the_vip_at_the_servers_address_and_fails_without_the_vip() {
    let mut with_vip = Server::new(rip(14));
    with_vip.addrs.push(VIP);
    with_vip.tcp.push((80, Behaviour::Accept));
    // This one lost the VIP: it still answers on its own address.
    let mut without = Server::new(rip(15));
    without.tcp.push((80, Behaviour::Accept));
    let dr = |server| route(PathMode::Dr, GW, SocketAddrV4::new(VIP, 80), server);
    let bench = Bench::new(vec![with_vip, without], vec![dr(rip(14)), dr(rip(15))]);
    assert_eq!(bench.probe(CheckKind::Tcp, rip(14), 80, 2000), UP);
    let (toward, syn) = bench.sent()[0].clone();
    let ip = Ipv4Packet::new_checked(&syn[..]).unwrap();
    assert_eq!((toward, ip.src_addr(), ip.dst_addr(), ip.protocol()), (rip(14), GW, VIP, ip_proto::TCP));
    assert_eq!(bench.probe(CheckKind::Tcp, rip(15), 80, 200), Outcome::Down("timed out after 0.2 s".into()));
}

#[test]
fn tun_wraps_each_probe_to_the_server_and_fails_without_the_tunnel() {
    let mut tunnelled = Server::new(rip(16));
    tunnelled.addrs.push(VIP);
    tunnelled.tunnel = true;
    tunnelled.tcp.push((80, Behaviour::Accept));
    // No tunnel device: the server's stack refuses protocol 4.
    let mut plain = Server::new(rip(17));
    plain.addrs.push(VIP);
    plain.tcp.push((80, Behaviour::Accept));
    let tun = |server| route(PathMode::Tun, GW, SocketAddrV4::new(VIP, 80), server);
    let bench = Bench::new(vec![tunnelled, plain], vec![tun(rip(16)), tun(rip(17))]);
    assert_eq!(bench.probe(CheckKind::Tcp, rip(16), 80, 2000), UP);
    let (toward, frame) = bench.shared.sent.lock().unwrap()[0].clone();
    assert_eq!(toward, rip(16));
    // The outer header, byte by byte: v4/IHL 5, TOS copied (0), the total
    // length, ident (the first), DF copied from the SYN, TTL 64, IPIP,
    // a valid checksum, GW -> RIP.
    let total = (frame.len() as u16).to_be_bytes();
    assert_eq!(frame[..4], [0x45, 0x00, total[0], total[1]]);
    assert_eq!(frame[4..10], [0x00, 0x01, 0x40, 0x00, 64, 4]);
    assert_eq!(frame[12..20], [10, 0, 0, 1, 10, 0, 2, 16]);
    assert!(checksum::verify_ipv4_header(&frame[..20]));
    let inner = Ipv4Packet::new_checked(&frame[20..]).unwrap();
    assert!(inner.dont_frag());
    assert_eq!((inner.src_addr(), inner.dst_addr(), tcp_of(&frame[20..]).1), (GW, VIP, SYN));
    assert_eq!(bench.probe(CheckKind::Tcp, rip(17), 80, 2000), Outcome::Down("ICMP protocol unreachable".into()));
}

#[test]
fn ports_are_probe_ports_handed_round_robin() {
    let mut server = Server::new(rip(18));
    server.tcp.push((80, Behaviour::Accept));
    let bench = Bench::new(vec![server], vec![route(PathMode::Nat, GW, SocketAddrV4::new(rip(18), 80), rip(18))]);
    for _ in 0..4 {
        assert_eq!(bench.probe(CheckKind::Tcp, rip(18), 80, 2000), UP);
    }
    let syns: Vec<u16> =
        bench.sent().iter().map(|(_, p)| tcp_of(p)).filter(|(_, f)| f & SYN != 0).map(|(port, _)| port).collect();
    assert_eq!(syns.len(), 4, "{syns:?}");
    assert!(syns.iter().all(|p| PROBE_PORTS.contains(p)), "{syns:?}");
    assert!(syns.windows(2).all(|w| w[1] == w[0] + 1), "one after the other: {syns:?}");
}

#[test]
fn two_hundred_servers_at_once() {
    let servers: Vec<Server> = (0..200u8)
        .map(|i| {
            let mut s = Server::new(Ipv4Addr::new(10, 3, 0, i));
            s.tcp.push((80, Behaviour::Accept));
            s
        })
        .collect();
    let routes = servers.iter().map(|s| route(PathMode::Fnat, LADDR, SocketAddrV4::new(s.rip, 80), s.rip)).collect();
    let bench = Arc::new(Bench::new(servers, routes));
    let start = Instant::now();
    let threads: Vec<_> = (0..200u8)
        .map(|i| {
            let bench = Arc::clone(&bench);
            std::thread::spawn(move || bench.probe(CheckKind::Tcp, Ipv4Addr::new(10, 3, 0, i), 80, 3000))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), UP);
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(3), "{:?}", start.elapsed());
    let stats = bench.prober.counters().stats();
    assert_eq!((stats.probes, stats.link_refusals, stats.unframed), (200, 0, 0));
}

#[test]
fn garbage_from_the_link_is_dropped_and_counted() {
    let mut server = Server::new(rip(19));
    server.tcp.push((80, Behaviour::Accept));
    let bench = Bench::new(vec![server], vec![route(PathMode::Nat, GW, SocketAddrV4::new(rip(19), 80), rip(19))]);
    // An IPv4 TCP packet to a probe port no probe has, then cut at every length.
    #[rustfmt::skip]
    let stray: Vec<u8> = vec![
        0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 2, 19, 10, 0, 0, 1,
        0, 80, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ];
    let mut garbage: Vec<Vec<u8>> = (0..=stray.len()).map(|n| stray[..n].to_vec()).collect();
    garbage.push(vec![0xff; 1500]);
    garbage.push(vec![0x45; 60]);
    // An ICMP port unreachable quoting a cut header.
    let mut icmp =
        vec![0x45, 0, 0, 31, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 2, 19, 10, 0, 0, 1, 3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0];
    let c = checksum::checksum(&icmp[20..]);
    icmp[22..24].copy_from_slice(&c.to_be_bytes());
    garbage.push(icmp);
    let count = garbage.len() as u64;
    bench.shared.inject.lock().unwrap().extend(garbage);
    // The stack takes them (a probe wakes it) and still probes.
    assert_eq!(bench.probe(CheckKind::Tcp, rip(19), 80, 2000), UP);
    let stats = bench.prober.counters().stats();
    assert!(stats.rx_dropped >= count, "{stats:?}");
    assert!(stats.replies >= 1 && stats.sent >= 1, "{stats:?}");
}

#[test]
fn a_refusing_link_is_counted_and_the_probe_times_out() {
    let mut server = Server::new(rip(20));
    server.tcp.push((80, Behaviour::Accept));
    let bench = Bench::new(vec![server], vec![route(PathMode::Nat, GW, SocketAddrV4::new(rip(20), 80), rip(20))]);
    bench.shared.refuse.store(true, Ordering::Relaxed);
    assert_eq!(bench.probe(CheckKind::Tcp, rip(20), 80, 100), Outcome::Down("timed out after 0.1 s".into()));
    assert!(bench.prober.counters().stats().link_refusals >= 1);
    bench.shared.refuse.store(false, Ordering::Relaxed);
    assert_eq!(bench.probe(CheckKind::Tcp, rip(20), 80, 2000), UP);
}

#[test]
fn misc_checks_run_their_script_and_stopping_fails_what_is_in_flight() {
    let bench = Bench::new(Vec::new(), vec![route(PathMode::Nat, GW, SocketAddrV4::new(rip(21), 80), rip(21))]);
    let misc = |script: &str| CheckKind::Misc { script: script.into(), dynamic: false };
    assert_eq!(bench.probe(misc("/bin/true"), rip(21), 80, 2000), UP);
    assert_eq!(bench.probe(misc("/bin/false"), rip(21), 80, 2000), Outcome::Down("exit 1".into()));
    assert_eq!(bench.prober.counters().stats().probes, 0, "a script is not a network probe");
    // A probe toward nobody, stopped half way.
    let prober = Arc::clone(&bench.prober);
    let t = std::thread::spawn(move || prober.probe(&job(CheckKind::Tcp, rip(21), 80, 5000)));
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(bench);
    assert_eq!(t.join().unwrap(), Outcome::Down(STOPPED.into()));
}
