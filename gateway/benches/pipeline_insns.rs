//! Instructions per packet through the whole worker pipeline on a byte
//! buffer: classify, connection lookup, TCP state and timer update, FNAT
//! rewrite, route, neighbour, Ethernet addresses, hand-off to the port.
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

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use gateway::frame::{BufFrame, Frame};
use gateway::model::snapshot::LocalAddr;
use gateway::model::{DestSpec, ForwardMethod, SchedulerKind, ServiceKey, ServiceSpec, Snapshot};
use gateway::model::{NetView, PortView};
use gateway::net::Ipv4Cidr;
use gateway::wire::checksum::Delta;
use gateway::wire::tcp::{flags, TcpPacket, TcpRepr};
use gateway::wire::{build, MacAddr};
use gateway::worker::{Io, Worker, WorkerConfig};
use gateway::xmit::Offload;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 200);
const RS: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);

/// Keeps the last frame sent so the loop can reuse its buffer.
#[derive(Default)]
struct Loopback {
    sent: Option<BufFrame>,
    lost: u64,
}

impl Io<BufFrame> for Loopback {
    fn send(&mut self, _port: u16, frame: BufFrame) {
        self.sent = Some(frame);
    }
    fn redirect(&mut self, _worker: u16, frame: BufFrame) {
        self.lost += 1;
        self.sent = Some(frame);
    }
    fn free(&mut self, frame: BufFrame) {
        self.lost += 1;
        self.sent = Some(frame);
    }
    fn alloc(&mut self) -> Option<BufFrame> {
        Some(BufFrame::new(&[]))
    }
    fn neighbour_learned(&mut self, _ip: std::net::IpAddr, _mac: MacAddr, _port: u16) {}
    fn to_kernel(&mut self, _port: u16, frame: BufFrame, _class: gateway::net::KernelClass) {
        self.lost += 1;
        self.sent = Some(frame);
    }
    fn to_prober(&mut self, frame: BufFrame) {
        self.lost += 1;
        self.sent = Some(frame);
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

/// The worker with its FNAT service on VIP:80 and, when `synproxy`, a `-j`
/// service on VIP:81 (only then: a proxied service costs every new flow a
/// service lookup), and when `header`, a `--proxy-protocol v2` service on
/// VIP:82 whose connection is the one set up (else VIP:80's).
fn setup(synproxy: bool, header: bool) -> (Worker<BufFrame>, Loopback, u16) {
    let key = ServiceKey::tcp(VIP.into(), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(key) }).unwrap();
    ed.add_dest(&key, DestSpec::new(RS.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
    ed.add_laddr(&key, LocalAddr { addr: LIP.into(), ifname: "servers".into() }).unwrap();
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
    let net = Arc::new(NetView::with_connected_routes(ports, &[]).unwrap());
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.conn_capacity = 1 << 16;
    let snap = ed.finish();
    let mut w = Worker::new(&cfg, snap, net, 1).unwrap();
    let mut io = Loopback::default();
    w.learn_neighbour(RS.into(), MacAddr([0x52, 0x54, 0, 0, 1, 0x10]), 1, 1, &mut io);
    w.learn_neighbour(CLIENT.into(), MacAddr([0x52, 0x54, 0, 0, 0, 1]), 0, 1, &mut io);
    w.process(BufFrame::new(&tcp((CLIENT, 40000), (VIP, vport), flags::SYN, &[])), 0, 1, &mut io);
    let syn = io.sent.take().expect("the SYN was forwarded");
    let lport = u16::from_be_bytes([syn.data()[34], syn.data()[35]]);
    (w, io, lport)
}

#[inline(never)]
fn measured_pipeline(w: &mut Worker<BufFrame>, frame: BufFrame, port: u16, io: &mut Loopback) {
    w.process(frame, port, 1, io);
}

/// Runs `n` packets of `path`; false when the path is unknown or a packet was lost.
fn run(path: &str, n: u64) -> bool {
    let (mut w, mut io, lport) = setup(path == "synproxy", path.starts_with("proxied"));
    let (template, port) = match path {
        "reset" | "established" => (tcp((CLIENT, 40000), (VIP, 80), flags::ACK | flags::PSH, &[0x5a; 64]), 0),
        "reply" | "proxied-reply" => (tcp((RS, 8080), (LIP, lport), flags::ACK | flags::PSH, &[0x5a; 64]), 1),
        // seq 1000 is the SYN's: past the header's start (1001), so shifted.
        "proxied" => (tcp((CLIENT, 40000), (VIP, 82), flags::ACK | flags::PSH, &[0x5a; 64]), 0),
        "new" => (tcp((CLIENT, 50000), (VIP, 80), flags::SYN, &[]), 0),
        "synproxy" => (tcp((CLIENT, 50000), (VIP, 81), flags::SYN, &[]), 0),
        _ => return false,
    };
    let mut frame = BufFrame::new(&template);
    for i in 0..n {
        frame.reset(&template);
        if path == "reset" {
            black_box(&mut frame);
            continue;
        }
        if path == "new" {
            // A fresh client port each time: every SYN creates a connection.
            let sport = 1024 + (i % 60000) as u16;
            // Keep the TCP checksum right so classify's view stays valid.
            let mut t = TcpPacket::new_unchecked(&mut frame.data_mut()[34..]);
            let mut delta = Delta::new();
            delta.replace16(t.src_port(), sport);
            t.set_src_port(sport);
            t.set_checksum(delta.apply(t.checksum()));
        }
        measured_pipeline(&mut w, frame, port, &mut io);
        frame = io.sent.take().expect("a frame came out");
        if path == "new" {
            // A RST from the client closes it again, outside the measured part.
            let sport = 1024 + (i % 60000) as u16;
            w.process(BufFrame::new(&tcp((CLIENT, sport), (VIP, 80), flags::RST, &[])), 0, 1, &mut io);
            io.sent.take();
            w.tick(1 + (i / 50_000) as u32 * 20, &mut io);
        }
    }
    io.lost == 0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let [path, n] = &args[..] {
        assert!(run(path, n.parse().expect("N is a number")), "path {path} failed or is unknown");
        return;
    }
    const N: u64 = 1_000_000;
    for path in ["reset", "established", "reply", "new", "synproxy", "proxied", "proxied-reply"] {
        let n = if path == "new" { N / 10 } else { N };
        let start = Instant::now();
        assert!(run(path, n), "{path}");
        println!("{path:<12} {:>8.1} ns/packet", start.elapsed().as_nanos() as f64 / n as f64);
    }
}
