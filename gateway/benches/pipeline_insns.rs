//! Instructions per packet through the whole worker pipeline on a byte
//! buffer: classify, connection lookup, TCP state and timer update, FNAT
//! rewrite, route, neighbour, Ethernet addresses, hand-off to the port.
//! Each measured call hands the worker a burst of 32 frames, as the DPDK
//! loop does (`Worker::process_burst`), so the per-burst stages are shared
//! as they are in the gateway.
//!
//!     gateway/benches/measure_pipeline.sh        # exact counts under callgrind
//!     cargo bench -p gateway --no-default-features --bench pipeline_insns   # ns/packet
//!
//! Paths: `established` (a data segment of a live FNAT connection, client to
//! server), `reply` (the server's answer back to the client), `new` (a SYN
//! that creates a connection: schedule, local port, insert, rewrite with TOA;
//! the connection is expired right after so the table never fills),
//! `synproxy` (a SYN to a `-j` service, answered with a cookie SYN-ACK: the
//! cost of a SYN flood), `proxied` and `proxied-reply` (`established` and
//! `reply` of a connection whose service sends a PROXY protocol header,
//! `--proxy-protocol v2`, past its header: what the sequence shift costs).
//! `established6`, `reply6` and `new6` are `established`, `reply` and `new`
//! over IPv6: an FNAT service on [VIP6]:80 with a v6 local address, beside
//! the IPv4 services in the same worker, to compare the two families.
//! `nat64` and `nat64-reply` are `established` and `reply` of a NAT64
//! connection: [VIP6]:81 in front of the IPv4 server from an IPv4 local
//! address (the client's segment leaves translated to IPv4, the server's
//! reply comes in over IPv4 and leaves as IPv6).
//! `reply-clients` is `reply` spread over the connections of 16 384 clients
//! behind a router (a default route), as the rate sweep's clients are: more
//! destinations than the egress cache holds, so most replies miss it.
//! `handshake` is a connection's opening as the server and the client see it
//! through the gateway: a burst of SYNs (`new`), their servers' SYN-ACKs, then
//! the clients' ACKs (which carry the TOA), each burst measured: three
//! packets a connection, the counts per packet as for the other paths.
//! `connect` is `handshake` without the resets: the table fills to a
//! connection per three packets, from the clients behind the router, with
//! gwbench's capacity and local addresses (`gwbench connect`'s load, for the
//! ns/packet figure; `cargo bench` runs `connect-staged` with a million
//! connections).
//! Any path with `-staged` appended runs with every burst in stages, as
//! gatewayd does past `WorkerConfig::staged_from` live connections; without
//! it, packet by packet (`staged_from` above any table): the two loops side
//! by side, and what the stages' bookkeeping costs.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use gateway::frame::{BufFrame, Frame};
use gateway::model::laddr::DEFAULT_PORTS;
use gateway::model::snapshot::LocalAddr;
use gateway::model::{DestSpec, ForwardMethod, SchedulerKind, ServiceKey, ServiceSpec, Snapshot};
use gateway::model::{NetView, NetView6, PortView};
use gateway::net::{Ipv4Cidr, Ipv6Cidr};
use gateway::wire::checksum::Delta;
use gateway::wire::tcp::{flags, TcpPacket, TcpRepr};
use gateway::wire::{build, MacAddr};
use gateway::worker::{Io, Worker, WorkerConfig};
use gateway::xmit::Offload;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 200);
const LIP64: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 201);
const RS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200);
/// The router `reply-clients`' clients are behind, on the clients' network.
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 253);
/// How many clients `reply-clients` has, each with one connection.
const CLIENTS: u32 = 16_384;
/// The first of them: 172.16.0.0/16, reached through ROUTER.
const FIRST_CLIENT: u32 = u32::from_be_bytes([172, 16, 0, 0]);
const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);

/// Keeps the last frame sent so the loop can reuse its buffer.
#[derive(Default)]
struct Loopback {
    sent: Vec<BufFrame>,
    lost: u64,
}

impl Io<BufFrame> for Loopback {
    fn send(&mut self, _port: u16, frame: BufFrame) {
        self.sent.push(frame);
    }
    fn redirect(&mut self, _worker: u16, frame: BufFrame) {
        self.lost += 1;
        self.sent.push(frame);
    }
    fn free(&mut self, frame: BufFrame) {
        self.lost += 1;
        self.sent.push(frame);
    }
    fn alloc(&mut self) -> Option<BufFrame> {
        Some(BufFrame::new(&[]))
    }
    fn neighbour_learned(&mut self, _ip: std::net::IpAddr, _mac: MacAddr, _port: u16) {}
    fn to_kernel(&mut self, _port: u16, frame: BufFrame, _class: gateway::net::KernelClass) {
        self.lost += 1;
        self.sent.push(frame);
    }
    fn to_prober(&mut self, frame: BufFrame) {
        self.lost += 1;
        self.sent.push(frame);
    }
}

/// A segment of this benchmark's connections: seq 1000, ack 2000, no options.
fn tcp(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), tcp_flags: u8, payload: &[u8]) -> Vec<u8> {
    build::ipv4(src.0, dst.0).tcp(&TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: 1000,
        ack_number: 2000,
        flags: tcp_flags,
        window_len: 65535,
        options: &[],
        payload,
    })
}

/// [`tcp`] over IPv6.
fn tcp6(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), tcp_flags: u8, payload: &[u8]) -> Vec<u8> {
    build::tcp_frame_v6(src, dst, 1000, 2000, tcp_flags, &[], payload)
}

/// Where the TCP header starts in this benchmark's frames (untagged).
const fn l4_offset(v6: bool) -> usize {
    if v6 {
        14 + 40
    } else {
        14 + 20
    }
}

/// The worker with its FNAT service on VIP:80 and, when `synproxy`, a `-j`
/// service on VIP:81 (only then: a proxied service costs every new flow a
/// service lookup), and when `header`, a `--proxy-protocol v2` service on
/// VIP:82 whose connection is the one set up (else VIP:80's). An FNAT
/// service on [VIP6]:80 with LIP6 is always there; when `v6`, the
/// connection set up is its. When `nat64`, a NAT64 service on [VIP6]:81
/// (RS from LIP64), whose connection is the one set up.
fn setup(synproxy: bool, header: bool, v6: bool, nat64: bool, staged: bool) -> (Worker<BufFrame>, Loopback, u16) {
    setup_sized(synproxy, header, v6, nat64, staged, Sizes::SMALL)
}

/// How many connections the worker holds and from how many local addresses
/// (LIP, then `EXTRA_LIPS..`), for VIP:80.
#[derive(Clone, Copy)]
struct Sizes {
    conn_capacity: u32,
    extra_lips: u8,
}

impl Sizes {
    const SMALL: Sizes = Sizes { conn_capacity: 1 << 16, extra_lips: 0 };
}

/// The first of the local addresses beyond LIP: 192.168.1.100 on.
const EXTRA_LIPS: u32 = u32::from_be_bytes([192, 168, 1, 100]);

/// [`setup`] with `sizes`: the worker takes its bursts packet by packet, or
/// every one in stages with `staged`.
fn setup_sized(
    synproxy: bool,
    header: bool,
    v6: bool,
    nat64: bool,
    staged: bool,
    sizes: Sizes,
) -> (Worker<BufFrame>, Loopback, u16) {
    let key = ServiceKey::tcp(VIP.into(), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(key) }).unwrap();
    ed.add_dest(&key, DestSpec::new(RS.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
    ed.add_laddr(&key, LocalAddr { addr: LIP.into(), ifname: "servers".into() }).unwrap();
    for k in 0..u32::from(sizes.extra_lips) {
        let addr = Ipv4Addr::from(EXTRA_LIPS + k).into();
        ed.add_laddr(&key, LocalAddr { addr, ifname: "servers".into() }).unwrap();
    }
    let proxied = ServiceKey::tcp(VIP.into(), 81);
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, synproxy, ..ServiceSpec::new(proxied) }).unwrap();
    ed.add_dest(&proxied, DestSpec::new(RS.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
    ed.add_laddr(&proxied, LocalAddr { addr: LIP.into(), ifname: "servers".into() }).unwrap();
    let vport = if header { 82 } else { 80 };
    if header {
        let with_header = ServiceKey::tcp(VIP.into(), 82);
        let proxy_protocol = Some(gateway::wire::proxy_protocol::Version::V2);
        ed.add_service(ServiceSpec { proxy_protocol, ..ServiceSpec::new(with_header) }).unwrap();
        ed.add_dest(&with_header, DestSpec::new(RS.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
        ed.add_laddr(&with_header, LocalAddr { addr: LIP.into(), ifname: "servers".into() }).unwrap();
    }
    let key6 = ServiceKey::tcp(VIP6.into(), 80);
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(key6) }).unwrap();
    ed.add_dest(&key6, DestSpec::new(RS6.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
    ed.add_laddr(&key6, LocalAddr { addr: LIP6.into(), ifname: "servers".into() }).unwrap();
    if nat64 {
        let key64 = ServiceKey::tcp(VIP6.into(), 81);
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(key64) }).unwrap();
        ed.add_dest(&key64, DestSpec::new(RS.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
        ed.add_laddr(&key64, LocalAddr { addr: LIP64.into(), ifname: "servers".into() }).unwrap();
    }
    let cidr = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
    let ports = vec![
        PortView {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            offload: Offload::NONE,
            addrs: vec![cidr("10.0.0.254/24")],
            steering: None,
            kernel: false,
        },
        PortView {
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            mtu: 1500,
            offload: Offload::NONE,
            addrs: vec![cidr("192.168.1.254/24")],
            steering: None,
            kernel: false,
        },
    ];
    let default = gateway::net::Route { dst: cidr("0.0.0.0/0"), via: Some(ROUTER), port: 0, src: None };
    let mut net = NetView::with_connected_routes(ports, &[default]).unwrap();
    let cidr6 = |s: &str| s.parse::<Ipv6Cidr>().unwrap();
    let addrs6 = [(0, cidr6("2001:db8::fe/64")), (1, cidr6("2001:db8:1::fe/64"))];
    net.v6 = NetView6::new(&net.ports, &addrs6, &[]).unwrap();
    let net = Arc::new(net);
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.conn_capacity = sizes.conn_capacity;
    cfg.staged_from = if staged { 0 } else { u64::MAX };
    let snap = ed.finish();
    let mut w = Worker::new(&cfg, snap, net, 1).unwrap();
    let mut io = Loopback::default();
    w.learn_neighbour(RS.into(), MacAddr([0x52, 0x54, 0, 0, 1, 0x10]), 1, 1, &mut io);
    w.learn_neighbour(CLIENT.into(), MacAddr([0x52, 0x54, 0, 0, 0, 1]), 0, 1, &mut io);
    w.learn_neighbour(ROUTER.into(), MacAddr([0x52, 0x54, 0, 0, 0, 0xfd]), 0, 1, &mut io);
    w.learn_neighbour(RS6.into(), MacAddr([0x52, 0x54, 0, 0, 1, 0x10]), 1, 1, &mut io);
    w.learn_neighbour(CLIENT6.into(), MacAddr([0x52, 0x54, 0, 0, 0, 1]), 0, 1, &mut io);
    let syn = if nat64 {
        tcp6((CLIENT6, 40000), (VIP6, 81), flags::SYN, &[])
    } else if v6 {
        tcp6((CLIENT6, 40000), (VIP6, 80), flags::SYN, &[])
    } else {
        tcp((CLIENT, 40000), (VIP, vport), flags::SYN, &[])
    };
    w.process(BufFrame::new(&syn), 0, 1, &mut io);
    let syn = io.sent.pop().expect("the SYN was forwarded");
    // A NAT64 connection's SYN left as IPv4.
    let l4 = l4_offset(v6 && !nat64);
    let lport = u16::from_be_bytes([syn.data()[l4], syn.data()[l4 + 1]]);
    (w, io, lport)
}

/// Opens a connection from each of the `CLIENTS` clients (port 40000 to
/// VIP:80), answered once by the server so that the measured replies change
/// no state, and returns the local port each was given, in client order.
fn open_clients(w: &mut Worker<BufFrame>, io: &mut Loopback) -> Vec<u16> {
    (0..CLIENTS)
        .map(|i| {
            let client = Ipv4Addr::from(FIRST_CLIENT + i);
            w.process(BufFrame::new(&tcp((client, 40000), (VIP, 80), flags::SYN, &[])), 0, 1, io);
            let syn = io.sent.pop().expect("the SYN was forwarded");
            let l4 = l4_offset(false);
            let lport = u16::from_be_bytes([syn.data()[l4], syn.data()[l4 + 1]]);
            let synack = tcp((RS, 8080), (LIP, lport), flags::SYN | flags::ACK, &[]);
            w.process(BufFrame::new(&synack), 1, 1, io);
            io.sent.pop().expect("the SYN-ACK was forwarded");
            let ack = tcp((client, 40000), (VIP, 80), flags::ACK, &[]);
            w.process(BufFrame::new(&ack), 0, 1, io);
            io.sent.pop().expect("the ACK was forwarded");
            lport
        })
        .collect()
}

/// Sets the TCP destination port of `frame` (IPv4, untagged), checksum and all.
fn set_dst_port(frame: &mut BufFrame, port: u16) {
    let mut t = TcpPacket::new_unchecked(&mut frame.data_mut()[l4_offset(false)..]);
    let mut delta = Delta::new();
    delta.replace16(t.dst_port(), port);
    t.set_dst_port(port);
    t.set_checksum(delta.apply(t.checksum()));
}

#[inline(never)]
fn measured_pipeline(w: &mut Worker<BufFrame>, burst: &mut Vec<BufFrame>, port: u16, io: &mut Loopback) {
    w.process_burst(burst, port, 1, io);
}

thread_local! {
    /// Wall-clock time spent in [`measured_pipeline`], for the ns/packet
    /// figures: the frames' making and the unmeasured resets stay out of it.
    static MEASURED: std::cell::Cell<std::time::Duration> = const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// [`measured_pipeline`], its time added to [`MEASURED`] (outside it, so
/// callgrind's count of it leaves the clock out).
fn timed_pipeline(w: &mut Worker<BufFrame>, burst: &mut Vec<BufFrame>, port: u16, io: &mut Loopback) {
    let start = Instant::now();
    measured_pipeline(w, burst, port, io);
    let took = start.elapsed();
    MEASURED.with(|m| m.set(m.get() + took));
}

/// Frames per measured call: the DPDK rx burst the worker loop hands over.
const BURST: u64 = 32;

fn run(path: &str, n: u64) -> bool {
    // `PATH-staged`: the same, with every burst in stages, as past gatewayd's threshold.
    let (path, staged) = match path.strip_suffix("-staged") {
        Some(p) => (p, true),
        None => (path, false),
    };
    if path == "handshake" || path == "connect" {
        return run_handshakes(n, staged, path == "connect");
    }
    let v6 = path.ends_with('6');
    let nat64 = path.starts_with("nat64");
    let (mut w, mut io, lport) = setup(path == "synproxy", path.starts_with("proxied"), v6, nat64, staged);
    let client_lports = if path == "reply-clients" { open_clients(&mut w, &mut io) } else { Vec::new() };
    let (template, port) = match path {
        "established" => (tcp((CLIENT, 40000), (VIP, 80), flags::ACK | flags::PSH, &[0x5a; 64]), 0),
        "reply" | "proxied-reply" | "reply-clients" => {
            (tcp((RS, 8080), (LIP, lport), flags::ACK | flags::PSH, &[0x5a; 64]), 1)
        }
        "proxied" => (tcp((CLIENT, 40000), (VIP, 82), flags::ACK | flags::PSH, &[0x5a; 64]), 0),
        "new" => (tcp((CLIENT, 50000), (VIP, 80), flags::SYN, &[]), 0),
        "synproxy" => (tcp((CLIENT, 50000), (VIP, 81), flags::SYN, &[]), 0),
        "established6" => (tcp6((CLIENT6, 40000), (VIP6, 80), flags::ACK | flags::PSH, &[0x5a; 64]), 0),
        "reply6" => (tcp6((RS6, 8080), (LIP6, lport), flags::ACK | flags::PSH, &[0x5a; 64]), 1),
        "new6" => (tcp6((CLIENT6, 50000), (VIP6, 80), flags::SYN, &[]), 0),
        "nat64" => (tcp6((CLIENT6, 40000), (VIP6, 81), flags::ACK | flags::PSH, &[0x5a; 64]), 0),
        "nat64-reply" => (tcp((RS, 8080), (LIP64, lport), flags::ACK | flags::PSH, &[0x5a; 64]), 1),
        _ => return false,
    };
    let new = path == "new" || path == "new6";
    let mut spare: Vec<BufFrame> = (0..BURST).map(|_| BufFrame::new(&template)).collect();
    let mut burst = Vec::with_capacity(BURST as usize);
    let mut i = 0u64;
    while i < n {
        let first = i;
        for mut frame in spare.drain(..) {
            frame.reset(&template);
            if new {
                let sport = 1024 + (i % 60000) as u16;
                let mut t = TcpPacket::new_unchecked(&mut frame.data_mut()[l4_offset(v6)..]);
                let mut delta = Delta::new();
                delta.replace16(t.src_port(), sport);
                t.set_src_port(sport);
                t.set_checksum(delta.apply(t.checksum()));
            }
            if !client_lports.is_empty() {
                // Clients in a scattered order, as their replies interleave.
                let k = (i.wrapping_mul(7919) % u64::from(CLIENTS)) as usize;
                set_dst_port(&mut frame, client_lports[k]);
            }
            burst.push(frame);
            i += 1;
        }
        timed_pipeline(&mut w, &mut burst, port, &mut io);
        if io.sent.len() != BURST as usize {
            return false;
        }
        spare.append(&mut io.sent);
        if new {
            for j in first..i {
                let sport = 1024 + (j % 60000) as u16;
                let rst = if v6 {
                    tcp6((CLIENT6, sport), (VIP6, 80), flags::RST, &[])
                } else {
                    tcp((CLIENT, sport), (VIP, 80), flags::RST, &[])
                };
                w.process(BufFrame::new(&rst), 0, 1, &mut io);
                io.sent.clear();
            }
            w.tick(1 + (first / 50_000) as u32 * 20, &mut io);
        }
    }
    io.lost == 0
}

/// The `handshake` path: `n` packets, a third of them SYNs, each burst of
/// SYNs followed by the servers' SYN-ACKs and the clients' ACKs; the
/// connections are reset afterwards, unmeasured, so the table never fills.
/// With `fill` (the `connect` path), they stay: the table fills to `n / 3`
/// connections from the clients behind the router, as in `gwbench connect`,
/// with the capacity and the local addresses gwbench gives gatewayd.
fn run_handshakes(n: u64, staged: bool, fill: bool) -> bool {
    let conns = n / 3;
    let sizes = if fill {
        let conn_capacity = (conns * 2).next_power_of_two().clamp(1 << 16, 1 << 22) as u32;
        let ports = u64::from(*DEFAULT_PORTS.end() - *DEFAULT_PORTS.start()) + 1;
        Sizes { conn_capacity, extra_lips: conns.div_ceil(ports).min(100) as u8 }
    } else {
        Sizes::SMALL
    };
    let (mut w, mut io, _) = setup_sized(false, false, false, false, staged, sizes);
    let l4 = l4_offset(false);
    let client = |c: u64| {
        if fill {
            (Ipv4Addr::from(FIRST_CLIENT + (c % u64::from(CLIENTS)) as u32), 1024 + (c / u64::from(CLIENTS)) as u16)
        } else {
            (CLIENT, 1024 + (c % 60000) as u16)
        }
    };
    let mut opened = 0u64;
    while opened * 3 < n {
        let clients: Vec<(Ipv4Addr, u16)> = (opened..opened + BURST).map(client).collect();
        let frames = |f: &dyn Fn(usize) -> Vec<u8>| (0..BURST as usize).map(|i| BufFrame::new(&f(i))).collect();
        let mut syns: Vec<BufFrame> = frames(&|i| tcp(clients[i], (VIP, 80), flags::SYN, &[]));
        timed_pipeline(&mut w, &mut syns, 0, &mut io);
        if io.sent.len() != BURST as usize {
            return false;
        }
        let locals: Vec<(Ipv4Addr, u16)> = io
            .sent
            .drain(..)
            .map(|f| {
                let d = f.data();
                let ip = Ipv4Addr::new(d[26], d[27], d[28], d[29]);
                (ip, u16::from_be_bytes([d[l4], d[l4 + 1]]))
            })
            .collect();
        let mut synacks = frames(&|i| tcp((RS, 8080), locals[i], flags::SYN | flags::ACK, &[]));
        timed_pipeline(&mut w, &mut synacks, 1, &mut io);
        let mut acks = frames(&|i| tcp(clients[i], (VIP, 80), flags::ACK, &[]));
        timed_pipeline(&mut w, &mut acks, 0, &mut io);
        if io.sent.len() != 2 * BURST as usize {
            return false;
        }
        io.sent.clear();
        if !fill {
            for &c in &clients {
                w.process(BufFrame::new(&tcp(c, (VIP, 80), flags::RST, &[])), 0, 1, &mut io);
                io.sent.clear();
            }
        }
        // A second per million connections when filling, as fast as gwbench
        // opens them (a neighbour learned at the start outlives the run).
        let now = if fill { opened / 1_000_000 } else { opened / 50_000 * 20 };
        w.tick(1 + now as u32, &mut io);
        opened += BURST;
    }
    io.lost == 0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let [path, n] = &args[..] {
        let n = n.parse().expect("N is a number");
        assert!(run(path, n), "path {path} failed or is unknown");
        let ns = MEASURED.with(|m| m.get()).as_nanos() as f64 / n as f64;
        println!("{path:<20} {ns:>8.1} ns/packet");
        return;
    }
    const N: u64 = 1_000_000;
    let paths = ["established", "reply", "reply-clients", "new", "synproxy", "proxied", "proxied-reply"];
    let paths = paths.into_iter().chain(["established6", "reply6", "new6", "nat64", "nat64-reply", "handshake"]);
    // `connect-staged` last: a million connections, the table filled as in
    // `gwbench connect`, staged as gatewayd is past its first 4k.
    for path in paths.chain(["established-staged", "handshake-staged", "connect-staged"]) {
        let n = match path {
            "connect-staged" => 3 * N,
            p if p.starts_with("new") || p.starts_with("handshake") => N / 10,
            _ => N,
        };
        MEASURED.with(|m| m.set(std::time::Duration::ZERO));
        assert!(run(path, n), "{path}");
        let ns = MEASURED.with(|m| m.get()).as_nanos() as f64 / n as f64;
        println!("{path:<20} {ns:>8.1} ns/packet");
    }
}
