//! The pipeline driven with crafted packets, as the wire would deliver them:
//! a client network on port 0, a server network on port 1.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::frame::{BufFrame, Frame};
use crate::model::snapshot::LocalAddr;
use crate::model::{
    DestSpec, ForwardMethod, NetView, PortView, SchedulerKind, ServiceKey, ServiceSpec, Snapshot, SnapshotEditor,
};
use crate::net::Ipv4Cidr;
use crate::wire::arp::{ArpRepr, OP_REPLY};
use crate::wire::icmp::{msg_type, Icmpv4Repr};
use crate::wire::tcp::{flags, TcpOption, TcpPacket};
use crate::wire::{build, DropReason, MacAddr};
use crate::xmit::test_support::{assert_checksums_valid, tcp_frame, udp_frame};
use crate::xmit::Offload;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const GW_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const GW_SERVER_SIDE: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 254);
const LIP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 200);
const RS1: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const RS2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 11);

const MAC_PORT0: MacAddr = MacAddr([0x02, 0x47, 0x57, 0, 0, 0]);
const MAC_PORT1: MacAddr = MacAddr([0x02, 0x47, 0x57, 0, 0, 1]);
const MAC_CLIENT: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x01]);
const MAC_RS1: MacAddr = MacAddr([0x52, 0x54, 0, 0, 1, 0x10]);
const MAC_RS2: MacAddr = MacAddr([0x52, 0x54, 0, 0, 1, 0x11]);

/// What the pipeline handed out.
#[derive(Default)]
struct Recorder {
    sent: Vec<(u16, Vec<u8>)>,
    redirected: Vec<(u16, Vec<u8>)>,
    freed: usize,
    learned: Vec<(IpAddr, MacAddr, u16)>,
    /// Handed to the kernel interface: (port, class, bytes).
    kernel: Vec<(u16, crate::net::KernelClass, Vec<u8>)>,
    /// Handed to the health prober.
    prober: Vec<Vec<u8>>,
    no_mbufs: bool,
}

impl Io<BufFrame> for Recorder {
    fn send(&mut self, port: u16, frame: BufFrame) {
        self.sent.push((port, frame.data().to_vec()));
    }
    fn redirect(&mut self, worker: u16, frame: BufFrame) {
        self.redirected.push((worker, frame.data().to_vec()));
    }
    fn free(&mut self, _frame: BufFrame) {
        self.freed += 1;
    }
    fn alloc(&mut self) -> Option<BufFrame> {
        (!self.no_mbufs).then(|| BufFrame::new(&[]))
    }
    fn neighbour_learned(&mut self, ip: IpAddr, mac: MacAddr, port: u16) {
        self.learned.push((ip, mac, port));
    }
    fn to_kernel(&mut self, port: u16, frame: BufFrame, class: crate::net::KernelClass) {
        self.kernel.push((port, class, frame.data().to_vec()));
    }
    fn to_prober(&mut self, frame: BufFrame) {
        self.prober.push(frame.data().to_vec());
    }
}

impl Recorder {
    fn take_sent(&mut self) -> Vec<(u16, Vec<u8>)> {
        std::mem::take(&mut self.sent)
    }
}

fn cidr(s: &str) -> Ipv4Cidr {
    s.parse().unwrap()
}

fn net() -> Arc<NetView> {
    let ports = vec![
        PortView {
            mac: MAC_PORT0,
            mtu: 1500,
            offload: Offload::NONE,
            addrs: vec![cidr("10.0.0.254/24")],
            steering: None,
            kernel: false,
        },
        PortView {
            mac: MAC_PORT1,
            mtu: 1500,
            offload: Offload::NONE,
            addrs: vec![cidr("192.168.1.254/24")],
            steering: None,
            kernel: false,
        },
    ];
    Arc::new(NetView::with_connected_routes(ports, &[]).unwrap())
}

/// `-E ... -j enable` on the service `key` of the snapshot being edited.
fn enable_synproxy(ed: &mut SnapshotEditor, key: ServiceKey) {
    let snap = ed.current();
    let spec = *snap.service(snap.service_id(&key).unwrap()).spec();
    ed.edit_service(ServiceSpec { synproxy: true, ..spec }).unwrap();
}

fn service(method: ForwardMethod, scheduler: SchedulerKind) -> Arc<Snapshot> {
    let key = ServiceKey::tcp(VIP.into(), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler, ..ServiceSpec::new(key) }).unwrap();
    for rs in [RS1, RS2] {
        ed.add_dest(&key, DestSpec::new(rs.into(), rport(method)).with_method(method)).unwrap();
    }
    if method == ForwardMethod::FullNat {
        ed.add_laddr(&key, LocalAddr { addr: LIP.into(), ifname: "port1".into() }).unwrap();
    }
    let udp = ServiceKey::udp(VIP.into(), 53);
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(udp) }).unwrap();
    ed.add_dest(&udp, DestSpec::new(RS1.into(), 53).with_method(method)).unwrap();
    if method == ForwardMethod::FullNat {
        ed.add_laddr(&udp, LocalAddr { addr: LIP.into(), ifname: "port1".into() }).unwrap();
    }
    ed.finish()
}

/// DR and TUN cannot change the port (the real server answers the client itself).
fn rport(method: ForwardMethod) -> u16 {
    match method {
        ForwardMethod::FullNat | ForwardMethod::Masq => 8080,
        ForwardMethod::DirectRoute | ForwardMethod::Tunnel => 80,
    }
}

fn worker(id: u16, workers: u16, method: ForwardMethod) -> Worker<BufFrame> {
    let mut cfg = WorkerConfig::new(id, workers);
    cfg.conn_capacity = 1024;
    cfg.template_capacity = 64;
    Worker::new(&cfg, service(method, SchedulerKind::Rr), net(), 1000).unwrap()
}

/// A frame from `src_mac` to `dst_mac` (the bytes of `ip_frame` after its Ethernet header).
fn on_wire(src_mac: MacAddr, dst_mac: MacAddr, ip_frame: &[u8]) -> BufFrame {
    let mut b = ip_frame.to_vec();
    b[..6].copy_from_slice(&dst_mac.0);
    b[6..12].copy_from_slice(&src_mac.0);
    BufFrame::new(&b)
}

fn arp_reply(from_ip: Ipv4Addr, from_mac: MacAddr, to_ip: Ipv4Addr, to_mac: MacAddr) -> BufFrame {
    let reply = ArpRepr {
        operation: OP_REPLY,
        sender_hardware_addr: from_mac,
        sender_protocol_addr: from_ip,
        target_hardware_addr: to_mac,
        target_protocol_addr: to_ip,
    };
    BufFrame::new(&build::arp(from_mac, to_mac, &reply))
}

fn arp_request(from_ip: Ipv4Addr, from_mac: MacAddr, target: Ipv4Addr) -> BufFrame {
    let mut f = BufFrame::new(&[]);
    crate::net::arp::write_arp_request(&mut f, from_mac, from_ip, target).unwrap();
    f
}

fn ip_src(b: &[u8]) -> (Ipv4Addr, u16) {
    (Ipv4Addr::new(b[26], b[27], b[28], b[29]), u16::from_be_bytes([b[34], b[35]]))
}

fn ip_dst(b: &[u8]) -> (Ipv4Addr, u16) {
    (Ipv4Addr::new(b[30], b[31], b[32], b[33]), u16::from_be_bytes([b[36], b[37]]))
}

fn macs(b: &[u8]) -> (MacAddr, MacAddr) {
    (MacAddr(b[0..6].try_into().unwrap()), MacAddr(b[6..12].try_into().unwrap()))
}

fn toa_of(b: &[u8]) -> Option<(u16, Ipv4Addr)> {
    let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
    tcp.option_iter().find_map(|o| match o {
        Ok((_, TcpOption::ClientAddress { port, addr })) => Some((port, addr)),
        _ => None,
    })
}

/// Resolves RS1 and the client by feeding the ARP replies the network would send.
fn resolve(w: &mut Worker<BufFrame>, io: &mut Recorder, now: u32) {
    w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, now, io);
    w.process(arp_reply(RS2, MAC_RS2, GW_SERVER_SIDE, MAC_PORT1), 1, now, io);
    w.process(arp_reply(CLIENT, MAC_CLIENT, GW_CLIENT_SIDE, MAC_PORT0), 0, now, io);
}

/// A single worker of `method` whose neighbours (both real servers and the
/// client) are already resolved, and its recorder.
fn resolved(method: ForwardMethod) -> (Worker<BufFrame>, Recorder) {
    let mut w = worker(0, 1, method);
    let mut io = Recorder::default();
    resolve(&mut w, &mut io, 1000);
    (w, io)
}

/// [`resolved`] for FNAT, its bursts in stages from `staged_from` live
/// connections on (0: every burst; `u64::MAX`: none, packet by packet).
fn resolved_staged_from(staged_from: u64) -> (Worker<BufFrame>, Recorder) {
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.conn_capacity = 1024;
    cfg.template_capacity = 64;
    cfg.staged_from = staged_from;
    let mut w = Worker::new(&cfg, service(ForwardMethod::FullNat, SchedulerKind::Rr), net(), 1000).unwrap();
    let mut io = Recorder::default();
    resolve(&mut w, &mut io, 1000);
    (w, io)
}

#[test]
fn fnat_first_packet_waits_for_arp_then_flows_both_ways() {
    let mut w = worker(0, 1, ForwardMethod::FullNat);
    let mut io = Recorder::default();
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 0, flags::SYN, &[2, 4, 5, 0xb4], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);

    // The SYN waits; an ARP request for the chosen real server goes out of port 1.
    let sent = io.take_sent();
    assert_eq!(sent.len(), 1, "only the ARP request");
    let (port, req) = &sent[0];
    assert_eq!(*port, 1);
    let mut want = BufFrame::new(&[]);
    crate::net::arp::write_arp_request(&mut want, MAC_PORT1, GW_SERVER_SIDE, RS1).unwrap();
    assert_eq!(req, want.data(), "who-has {RS1} tell {GW_SERVER_SIDE}");

    // The reply arrives: the SYN leaves, fully rewritten, to RS1's MAC.
    w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
    let sent = io.take_sent();
    assert_eq!(sent.len(), 1);
    let (port, out) = &sent[0];
    assert_eq!(*port, 1);
    assert_eq!(macs(out), (MAC_RS1, MAC_PORT1));
    let (lip, lport) = ip_src(out);
    assert_eq!(lip, LIP, "the real server sees the local address");
    assert_eq!(ip_dst(out), (RS1, 8080));
    assert_eq!(toa_of(out), Some((40000, CLIENT)), "the client address rides in a TOA option");
    assert_checksums_valid(out);
    assert_eq!(io.learned, vec![(RS1.into(), MAC_RS1, 1)], "other workers are told");

    // The SYN-ACK comes back to the local port and leaves for the client as from the VIP.
    w.process(arp_reply(CLIENT, MAC_CLIENT, GW_CLIENT_SIDE, MAC_PORT0), 0, 1000, &mut io);
    let synack = tcp_frame((RS1, 8080), (LIP, lport), 5000, 1001, flags::SYN | flags::ACK, &[], &[]);
    w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1001, &mut io);
    let sent = io.take_sent();
    assert_eq!(sent.len(), 1);
    let (port, out) = &sent[0];
    assert_eq!(*port, 0);
    assert_eq!(macs(out), (MAC_CLIENT, MAC_PORT0));
    assert_eq!((ip_src(out), ip_dst(out)), ((VIP, 80), (CLIENT, 40000)));
    assert_checksums_valid(out);

    // The client's ACK completes the handshake (still with TOA), then data flows without it.
    let ack = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags::ACK, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &ack), 0, 1001, &mut io);
    let data =
        tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags::ACK | flags::PSH, &[], b"GET / HTTP/1.0\r\n\r\n");
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &data), 0, 1002, &mut io);
    let sent = io.take_sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(toa_of(&sent[0].1), Some((40000, CLIENT)));
    assert_eq!(toa_of(&sent[1].1), None, "established: no more TOA");
    assert!(sent[1].1.ends_with(b"GET / HTTP/1.0\r\n\r\n"));
    for (_, b) in &sent {
        assert_checksums_valid(b);
        assert_eq!(ip_src(b), (LIP, lport));
    }
    let c = w.counters();
    assert_eq!((c.new_conns.get(), c.total_drops()), (1, 0));
    assert_eq!((c.conns_live.get(), c.conns_capacity.get()), (1, 1024), "the table gauges, before any tick");
    assert_eq!(io.freed, 2, "the two ARP replies were consumed");

    // --stats: IP lengths before the rewrite, on the service and on RS1 alone.
    use crate::stats::TrafficCounts;
    let ip_len = |frame: &[u8]| (frame.len() - 14) as u64;
    let want = crate::stats::Totals {
        conns: 1,
        in_packets: 3,
        out_packets: 1,
        in_bytes: ip_len(&syn) + ip_len(&ack) + ip_len(&data),
        out_bytes: ip_len(&synack),
    };
    let snap = w.director().snapshot().clone();
    let svc = &snap.services()[0];
    assert_eq!(svc.traffic().totals(), want);
    assert_eq!(svc.dests()[0].counters().traffic().totals(), want);
    assert_eq!(svc.dests()[1].counters().traffic().totals(), crate::stats::Totals::default());
}

/// A VLAN-tagged frame leaves the untagged path early (packet by packet, the
/// loop classifies it apart): its connection opens and flows as an untagged
/// one's, the tag kept, and an untagged frame of the same flow finds the same
/// connection. In both loops.
#[test]
fn a_tagged_frame_is_forwarded_as_an_untagged_one_is() {
    use crate::wire::ethernet::VlanTag;
    use crate::wire::tcp::TcpRepr;
    let tag = VlanTag { pcp: 0, dei: false, vid: 10 };
    let segment = |tcp_flags, seq, payload: &'static [u8]| TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: seq,
        ack_number: 0,
        flags: tcp_flags,
        window_len: 65535,
        options: &[],
        payload,
    };
    let tagged = |tcp_flags, seq, payload| {
        build::ipv4(CLIENT, VIP).macs(MAC_CLIENT, MAC_PORT0).vlan(tag).tcp(&segment(tcp_flags, seq, payload))
    };
    for staged_from in [0, u64::MAX] {
        let (mut w, mut io) = resolved_staged_from(staged_from);
        w.process(BufFrame::new(&tagged(flags::SYN, 1000, b"")), 0, 1000, &mut io);
        w.process(BufFrame::new(&tagged(flags::ACK, 1001, b"tagged")), 0, 1000, &mut io);
        let untagged = build::ipv4(CLIENT, VIP).macs(MAC_CLIENT, MAC_PORT0).tcp(&segment(flags::ACK, 1007, b"plain"));
        w.process(BufFrame::new(&untagged), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 3, "staged from {staged_from}: {} dropped", w.counters().total_drops());
        for (i, (port, out)) in sent.iter().enumerate() {
            assert_eq!(*port, 1);
            assert_eq!(macs(out), (MAC_RS1, MAC_PORT1));
            // The IP header after the tag, when there is one.
            let ip = if i < 2 { &out[4..] } else { &out[..] };
            if i < 2 {
                assert_eq!(out[12..16], [0x81, 0x00, 0x00, 0x0a], "the tag stays");
            }
            assert_eq!(ip_src(ip).0, LIP);
            assert_eq!(ip_dst(ip), (RS1, 8080));
        }
        assert_eq!(ip_src(&sent[1].1[4..]), ip_src(&sent[2].1), "one connection, one local port");
        assert!(sent[1].1.ends_with(b"tagged") && sent[2].1.ends_with(b"plain"));
        assert_eq!(w.counters().new_conns.get(), 1);
    }
}

/// A segment with IP options is not a plain packet: packet by packet it is
/// classified apart, yet it finds its connection and leaves as a plain one
/// would, its options kept and its checksums right. In both loops.
#[test]
fn a_segment_with_ip_options_is_forwarded_as_a_plain_one_is() {
    use crate::wire::ipv4::Ipv4Packet;
    // Four NOPs after the fixed header: IHL 6, 4 more bytes in all.
    let with_options = |plain: Vec<u8>| {
        let mut b = plain;
        b.splice(34..34, [1, 1, 1, 1]);
        b[14] = 0x46;
        let total = u16::from_be_bytes([b[16], b[17]]) + 4;
        b[16..18].copy_from_slice(&total.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut b[14..]).fill_checksum();
        b
    };
    for staged_from in [0, u64::MAX] {
        let (mut w, mut io) = resolved_staged_from(staged_from);
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let ack = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 0, flags::ACK, &[], b"optioned");
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &with_options(ack)), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 2, "staged from {staged_from}: {} dropped", w.counters().total_drops());
        let out = &sent[1].1;
        assert_eq!(macs(out), (MAC_RS1, MAC_PORT1));
        assert_eq!((out[14], &out[34..38]), (0x46, &[1u8, 1, 1, 1][..]), "the options stay");
        assert_checksums_valid(out);
        // `ip_src` and `ip_dst` read a plain header's offsets.
        let without_options: Vec<u8> = out[..34].iter().chain(&out[38..]).copied().collect();
        assert_eq!(ip_src(&without_options), ip_src(&sent[0].1), "one connection, one local port");
        assert_eq!(ip_dst(&without_options), (RS1, 8080));
        assert!(out.ends_with(b"optioned"));
        assert_eq!(w.counters().new_conns.get(), 1);
    }
}

#[test]
fn a_syn_without_option_room_goes_without_toa_and_is_counted() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);
    // 40 bytes of options: MSS, then NOPs to the limit.
    let mut options = vec![2, 4, 5, 0xb4];
    options.resize(40, 1);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 0, flags::SYN, &options, &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let sent = io.take_sent();
    assert_eq!(sent.len(), 1, "the SYN still goes");
    assert_eq!(toa_of(&sent[0].1), None);
    assert_checksums_valid(&sent[0].1);
    assert_eq!(w.counters().toa_not_inserted.get(), 1);
}

#[test]
fn rr_alternates_real_servers_and_udp_works() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);
    let mut servers = Vec::new();
    for i in 0..4 {
        let syn = tcp_frame((CLIENT, 40000 + i), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let sent = io.take_sent();
        servers.push(ip_dst(&sent[0].1).0);
    }
    assert_eq!(servers, vec![RS1, RS2, RS1, RS2]);
    let dns = udp_frame((CLIENT, 5353), (VIP, 53), b"query", true);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &dns), 0, 1000, &mut io);
    let sent = io.take_sent();
    assert_eq!((ip_src(&sent[0].1).0, ip_dst(&sent[0].1)), (LIP, (RS1, 53)));
    assert_checksums_valid(&sent[0].1);
}

/// wrr over RS1 -w 1 and RS2 -w 2, configured as `gwctl -R` (one snapshot) or typed line by
/// line (a snapshot each), or given to the worker at start (a configuration file): every
/// way, the first SYNs go where ipvsadm replaying the lines into IPVS sends them.
#[test]
fn wrr_after_a_restore_starts_where_typing_the_lines_would() {
    let key = ServiceKey::tcp(VIP.into(), 80);
    let lines: [&dyn Fn(&mut crate::model::SnapshotEditor); 4] = [
        &|ed| ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wrr, ..ServiceSpec::new(key) }).unwrap(),
        &|ed| ed.add_laddr(&key, LocalAddr { addr: LIP.into(), ifname: "port1".into() }).unwrap(),
        &|ed| ed.add_dest(&key, DestSpec::new(RS1.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap(),
        &|ed| {
            ed.add_dest(&key, DestSpec::new(RS2.into(), 8080).with_method(ForwardMethod::FullNat).with_weight(2))
                .unwrap()
        },
    ];
    let first_six = |w: &mut Worker<BufFrame>| {
        let mut io = Recorder::default();
        resolve(w, &mut io, 1000);
        (0..6)
            .map(|i| {
                let syn = tcp_frame((CLIENT, 41000 + i), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
                w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
                ip_dst(&io.take_sent()[0].1).0
            })
            .collect::<Vec<_>>()
    };
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.conn_capacity = 1024;
    cfg.template_capacity = 64;
    let typed_order = vec![RS1, RS2, RS2, RS1, RS2, RS2];

    // Typed: one snapshot per line.
    let mut w = Worker::new(&cfg, Snapshot::empty(), net(), 1000).unwrap();
    let mut snap = Snapshot::empty();
    for line in lines {
        let mut ed = snap.edit();
        line(&mut ed);
        snap = ed.finish();
        w.switch(snap.clone(), net());
    }
    assert_eq!(first_six(&mut w), typed_order, "typed line by line");

    // Restored: all lines in one snapshot.
    let mut ed = Snapshot::empty().edit();
    lines.iter().for_each(|line| line(&mut ed));
    let batch = ed.finish();
    let mut w = Worker::new(&cfg, Snapshot::empty(), net(), 1000).unwrap();
    w.switch(batch.clone(), net());
    assert_eq!(first_six(&mut w), typed_order, "restored in one batch");

    // Started with it (gatewayd's configuration file).
    let mut w = Worker::new(&cfg, batch, net(), 1000).unwrap();
    assert_eq!(first_six(&mut w), typed_order, "started with the batch");
}

#[test]
fn a_new_syn_on_a_finished_connections_ports_is_scheduled_afresh() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let first = io.take_sent().remove(0).1;
    assert_eq!(ip_dst(&first).0, RS1);

    // A retransmitted SYN of the live connection stays on it.
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    assert_eq!(ip_src(&io.take_sent().remove(0).1), ip_src(&first));

    // The client closes (TIME_WAIT); its next connection from the same port is a new one.
    let fin = tcp_frame((CLIENT, 40000), (VIP, 80), 2, 0, flags::FIN | flags::ACK, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &fin), 0, 1001, &mut io);
    io.take_sent();
    let again = tcp_frame((CLIENT, 40000), (VIP, 80), 7777, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &again), 0, 1002, &mut io);
    let second = io.take_sent().remove(0).1;
    assert_eq!(ip_dst(&second).0, RS2, "scheduled again: rr moves on");
    assert_ne!(ip_src(&second), ip_src(&first), "a new local port");
    let c = w.counters();
    assert_eq!((c.new_conns.get(), c.conns_reused.get(), c.total_drops()), (2, 1, 0));
    assert_eq!(w.director().conns().len(), 1, "the finished connection is gone");
}

/// `frame` with its TTL set to `ttl` (and its IPv4 checksum fixed).
fn with_ttl(mut frame: Vec<u8>, ttl: u8) -> Vec<u8> {
    let mut ip = crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut frame[14..]);
    ip.set_ttl(ttl);
    ip.fill_checksum();
    frame
}

/// The (type, code, rest of header) of the ICMP message in `frame`.
fn icmp_header(frame: &[u8]) -> (u8, u8, [u8; 4]) {
    (frame[34], frame[35], [frame[38], frame[39], frame[40], frame[41]])
}

#[test]
fn a_routers_icmp_errors_for_expiring_and_oversized_packets() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);

    // TTL 1: time exceeded, back to the client from our address on its link;
    // no connection is created for it.
    let syn = with_ttl(tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]), 1);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!((port, macs(&out)), (0, (MAC_CLIENT, MAC_PORT0)));
    assert_eq!((ip_src(&out).0, ip_dst(&out).0), (GW_CLIENT_SIDE, CLIENT));
    assert_eq!(icmp_header(&out), (11, 0, [0; 4]));
    assert_eq!(&out[42..70], &syn[14..42], "quotes the header and 8 bytes");
    assert_checksums_valid(&out);
    assert_eq!(w.director().conns().len(), 0);
    assert_eq!(w.counters().dropped(DropReason::TtlExpired.into()), 1);
    assert_eq!(w.counters().icmp_errors_sent.get(), 1);

    // TTL 2 goes, one hop less.
    let syn = with_ttl(tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]), 2);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!((port, out[22]), (1, 1));
    assert_checksums_valid(&out);

    // TUN adds 20 bytes: a full-size DF packet gets fragmentation needed with
    // the MTU it must shrink to.
    let mut w = worker(0, 1, ForwardMethod::Tunnel);
    resolve(&mut w, &mut io, 1000);
    io.take_sent();
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    io.take_sent();
    let big = tcp_frame((CLIENT, 40000), (VIP, 80), 2, 1, flags::ACK, &[], &[0x61; 1460]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &big), 0, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!((port, ip_src(&out).0, ip_dst(&out).0), (0, GW_CLIENT_SIDE, CLIENT));
    assert_eq!(icmp_header(&out), (3, 4, [0, 0, 0x05, 0xc8]), "fragmentation needed, MTU 1480");
    assert_checksums_valid(&out);
    assert_eq!(w.counters().dropped(DropReason::MtuExceeded.into()), 1);
}

#[test]
fn icmp_errors_about_a_connection_reach_its_other_side_rewritten() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let sent = io.take_sent().remove(0).1;
    let (lip, lport) = ip_src(&sent);

    // RS1 answers the SYN with port unreachable: the client gets it from the
    // VIP, about its own packet.
    let unreachable = crate::xmit::test_support::icmp_error(RS1, lip, 3, 3, &sent[14..], 28);
    w.process(on_wire(MAC_RS1, MAC_PORT1, &unreachable), 1, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!((port, macs(&out)), (0, (MAC_CLIENT, MAC_PORT0)));
    assert_eq!((ip_src(&out).0, ip_dst(&out).0), (VIP, CLIENT));
    let quoted = &out[42..];
    assert_eq!(&quoted[12..16], &CLIENT.octets());
    assert_eq!(&quoted[16..20], &VIP.octets());
    assert_eq!(
        (u16::from_be_bytes([quoted[20], quoted[21]]), u16::from_be_bytes([quoted[22], quoted[23]])),
        (40000, 80)
    );
    assert_checksums_valid(&out);
    assert_eq!(w.counters().icmp_errors_relayed.get(), 1);

    // An error quoting a connection nobody has is dropped, counted.
    let mut stranger = sent.clone();
    stranger[36..38].copy_from_slice(&(lport ^ 1).to_be_bytes());
    let unknown = crate::xmit::test_support::icmp_error(RS1, lip, 3, 3, &stranger[14..], 28);
    w.process(on_wire(MAC_RS1, MAC_PORT1, &unknown), 1, 1000, &mut io);
    assert!(io.take_sent().is_empty());
    assert_eq!(w.counters().dropped(Discard::NoConnection), 1);
}

#[test]
fn local_ports_are_chosen_so_the_nic_hashes_replies_to_the_owners_queue() {
    use crate::net::rss::{ReplySteering, DEFAULT_KEY};
    let steering = Arc::new(ReplySteering::new(&DEFAULT_KEY, &ReplySteering::round_robin_reta(2, 128)).unwrap());
    let mut net = (*net()).clone();
    net.ports[1].steering = Some(steering.clone());
    let net = Arc::new(net);
    for id in 0..2u16 {
        let mut cfg = WorkerConfig::new(id, 2);
        cfg.conn_capacity = 1024;
        let mut w =
            Worker::<BufFrame>::new(&cfg, service(ForwardMethod::FullNat, SchedulerKind::Rr), net.clone(), 1000)
                .unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        for i in 0..64u16 {
            let syn = tcp_frame((CLIENT, 20000 + i), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
            let out = io.take_sent().remove(0).1;
            let ((lip, lport), (rip, rport)) = (ip_src(&out), ip_dst(&out));
            assert_eq!(lport as usize % 2, usize::from(id), "the worker's own port share");
            assert_eq!(
                steering.queue(steering.base(rip, rport, lip), lport),
                id,
                "the reply lands on worker {id}'s queue"
            );
        }
    }
}

#[test]
fn nat_rewrites_the_destination_and_the_reply_source() {
    let (mut w, mut io) = resolved(ForwardMethod::Masq);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let out = io.take_sent().remove(0).1;
    assert_eq!((ip_src(&out), ip_dst(&out)), ((CLIENT, 40000), (RS1, 8080)), "NAT keeps the client address");
    assert_checksums_valid(&out);
    let synack = tcp_frame((RS1, 8080), (CLIENT, 40000), 9, 2, flags::SYN | flags::ACK, &[], &[]);
    w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io);
    let (port, back) = io.take_sent().remove(0);
    assert_eq!(port, 0);
    assert_eq!((ip_src(&back), ip_dst(&back)), ((VIP, 80), (CLIENT, 40000)));
    assert_checksums_valid(&back);
}

#[test]
fn dr_changes_only_the_mac() {
    let (mut w, mut io) = resolved(ForwardMethod::DirectRoute);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!(port, 1);
    assert_eq!(macs(&out), (MAC_RS1, MAC_PORT1));
    assert_eq!(&out[12..], &syn[12..], "the IP packet is untouched");
}

#[test]
fn tun_encapsulates_toward_the_real_server() {
    let (mut w, mut io) = resolved(ForwardMethod::Tunnel);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!(port, 1);
    assert_eq!(out[23], 4, "IP-in-IP");
    assert_eq!(&out[26..30], &GW_SERVER_SIDE.octets(), "outer source: the gateway on the egress port");
    assert_eq!(&out[30..34], &RS1.octets(), "outer destination: the real server");
    assert_eq!(&out[34..], &syn[14..], "the inner packet is the client's");
    assert_eq!(crate::wire::checksum::checksum(&out[14..34]), 0, "outer checksum");
}

#[test]
fn replies_to_another_workers_port_are_redirected_to_it() {
    let mut w0 = worker(0, 2, ForwardMethod::FullNat);
    let mut w1 = worker(1, 2, ForwardMethod::FullNat);
    let (mut io0, mut io1) = (Recorder::default(), Recorder::default());
    resolve(&mut w0, &mut io0, 1000);
    resolve(&mut w1, &mut io1, 1000);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w0.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io0);
    let (_, out) = io0.take_sent().remove(0);
    let (_, lport) = ip_src(&out);
    assert_eq!(lport & 1, 0, "worker 0 of 2 allocates even ports");

    // The reply lands on worker 1's queue: it goes to worker 0, which forwards it.
    let synack = tcp_frame((RS1, 8080), (LIP, lport), 5, 2, flags::SYN | flags::ACK, &[], &[]);
    w1.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io1);
    assert!(io1.sent.is_empty());
    let (to, frame) = io1.redirected.remove(0);
    assert_eq!(to, 0);
    assert_eq!(w1.counters().redirected_out.get(), 1);
    w0.process_redirected(BufFrame::new(&frame), 1, 1000, &mut io0);
    let (port, back) = io0.take_sent().remove(0);
    assert_eq!((port, ip_src(&back), ip_dst(&back)), (0, (VIP, 80), (CLIENT, 40000)));
    assert_eq!(w0.counters().redirected_in.get(), 1);

    // A reply to an unused port of worker 0's own range is dropped there.
    let stray = tcp_frame((RS1, 8080), (LIP, lport + 2), 5, 2, flags::ACK, &[], &[]);
    w0.process(on_wire(MAC_RS1, MAC_PORT1, &stray), 1, 1000, &mut io0);
    assert_eq!(w0.counters().dropped(Discard::NoConnection), 1);
}

#[test]
fn arp_and_ping_for_our_addresses() {
    let mut w = worker(0, 1, ForwardMethod::FullNat);
    let mut io = Recorder::default();
    for (port, target, mac) in [(0, VIP, MAC_PORT0), (0, GW_CLIENT_SIDE, MAC_PORT0), (1, LIP, MAC_PORT1)] {
        w.process(arp_request(CLIENT, MAC_CLIENT, target), port, 1000, &mut io);
        let (out_port, reply) = io.take_sent().remove(0);
        assert_eq!(out_port, port);
        assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
        assert_eq!(&reply[22..28], &mac.0, "{target} is at our port's MAC");
        assert_eq!(&reply[28..32], &target.octets());
    }
    w.process(arp_request(CLIENT, MAC_CLIENT, Ipv4Addr::new(10, 0, 0, 77)), 0, 1000, &mut io);
    assert!(io.sent.is_empty(), "no answer for addresses that are not ours");
    assert_eq!(w.neighbours().lookup(CLIENT, 1000).map(|n| n.mac), Some(MAC_CLIENT), "learned from requests to us");

    let echo = Icmpv4Repr { msg_type: msg_type::ECHO_REQUEST, msg_code: 0, rest_of_header: 0, data: b"ping" };
    let ping = build::ipv4(CLIENT, VIP).dont_frag(false).icmp(&echo);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &ping), 0, 1000, &mut io);
    let (port, pong) = io.take_sent().remove(0);
    assert_eq!((port, pong[34], &pong[26..30], &pong[30..34]), (0, 0, &VIP.octets()[..], &CLIENT.octets()[..]));
    assert_checksums_valid(&pong);
}

const MAC_SPOOF: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0xee, 0xee]);

#[test]
fn arp_from_another_segment_cannot_take_a_servers_or_the_clients_address() {
    let mut w = worker(0, 1, ForwardMethod::FullNat);
    let mut io = Recorder::default();
    // Before RS1 is known: a request to us from the client segment claiming RS1.
    w.process(arp_request(RS1, MAC_SPOOF, GW_CLIENT_SIDE), 0, 1000, &mut io);
    assert_eq!(io.take_sent().len(), 1, "the request to us is still answered");
    assert_eq!(w.neighbours().lookup(RS1, 1000), None, "but its sender is not learned");
    resolve(&mut w, &mut io, 1000);
    // Once known: a reply and a request from the client segment claiming RS1,
    // and one from the server segment claiming the client.
    w.process(arp_reply(RS1, MAC_SPOOF, GW_CLIENT_SIDE, MAC_PORT0), 0, 1000, &mut io);
    w.process(arp_request(RS1, MAC_SPOOF, GW_CLIENT_SIDE), 0, 1000, &mut io);
    w.process(arp_request(CLIENT, MAC_SPOOF, GW_SERVER_SIDE), 1, 1000, &mut io);
    w.process(arp_request(CLIENT, MAC_SPOOF, Ipv4Addr::new(192, 168, 1, 99)), 1, 1000, &mut io);
    io.take_sent();
    assert_eq!(w.counters().neighbours_wrong_port.get(), 5);
    assert!(io.learned.iter().all(|(_, mac, _)| *mac != MAC_SPOOF), "nothing spread to the other workers");
    let n = w.neighbours();
    assert_eq!(n.lookup(RS1, 1000).map(|n| (n.mac, n.port)), Some((MAC_RS1, 1)));
    assert_eq!(n.lookup(CLIENT, 1000).map(|n| (n.mac, n.port)), Some((MAC_CLIENT, 0)));

    // Traffic still reaches RS1 and comes back to the client.
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    let (port, out) = io.take_sent().remove(0);
    assert_eq!((port, macs(&out), ip_dst(&out)), (1, (MAC_RS1, MAC_PORT1), (RS1, 8080)));
    let synack = tcp_frame((RS1, 8080), ip_src(&out), 5, 2, flags::SYN | flags::ACK, &[], &[]);
    w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io);
    let (port, back) = io.take_sent().remove(0);
    assert_eq!((port, macs(&back), ip_dst(&back)), (0, (MAC_CLIENT, MAC_PORT0), (CLIENT, 40000)));

    // The right segment may still move an address (a server replaced).
    w.process(arp_request(RS1, MAC_RS2, GW_SERVER_SIDE), 1, 1001, &mut io);
    assert_eq!(w.neighbours().lookup(RS1, 1001).map(|n| n.mac), Some(MAC_RS2));
}

/// The test network with a default route out of the client port, so that any
/// address may be a client's and ARP from the client segment may claim many.
fn net_with_default_route() -> Arc<NetView> {
    let mut view = (*net()).clone();
    let default =
        crate::net::Route { dst: cidr("0.0.0.0/0"), via: Some(Ipv4Addr::new(10, 0, 0, 253)), port: 0, src: None };
    view.routes.add(default).unwrap();
    Arc::new(view)
}

#[test]
fn a_flood_of_arp_senders_does_not_keep_out_a_server_resolved_afterwards() {
    let cfg = WorkerConfig::new(0, 1);
    let mut w: Worker<BufFrame> =
        Worker::new(&cfg, service(ForwardMethod::FullNat, SchedulerKind::Rr), net_with_default_route(), 1000).unwrap();
    let mut io = Recorder::default();
    // 10,000 forged requesters (more than the 4096 learned entries), each asking for us.
    for i in 0..10_000u32 {
        let sender = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 1)) + i);
        let mac = MacAddr([0x52, 0x54, 1, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        w.process(arp_request(sender, mac, GW_CLIENT_SIDE), 0, 1000, &mut io);
    }
    io.take_sent();
    let share = cfg.neighbour_capacity / 4;
    assert_eq!(w.neighbours().unsolicited(), share, "requesters hold at most a quarter of the table");
    let c = w.counters().clone();
    assert_eq!(c.neighbours_unsolicited_full.get(), 10_000 - share as u64, "every refusal counted");
    assert!(io.learned.is_empty(), "requesters are not spread to the other workers");
    assert!(w
        .counters()
        .nonzero_events()
        .contains(&("neighbours refused unsolicited full", c.neighbours_unsolicited_full.get())));

    // A real server resolved afterwards is reached at once.
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1001, &mut io);
    assert_eq!(
        io.take_sent().iter().map(|(p, b)| (*p, macs(b).0)).collect::<Vec<_>>(),
        vec![(1, MacAddr::BROADCAST)],
        "an ARP request for RS1"
    );
    w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1001, &mut io);
    assert_eq!(io.take_sent().iter().map(|(p, b)| (*p, macs(b).0)).collect::<Vec<_>>(), vec![(1, MAC_RS1)]);
    assert_eq!(io.learned, vec![(RS1.into(), MAC_RS1, 1)], "and the other workers are told");
    assert_eq!(c.neighbours_table_full.get(), 0);
}

#[test]
fn a_table_full_of_needed_neighbours_refuses_and_counts_newcomers() {
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.neighbour_capacity = 1;
    let mut w: Worker<BufFrame> =
        Worker::new(&cfg, service(ForwardMethod::FullNat, SchedulerKind::Rr), net(), 1000).unwrap();
    let mut io = Recorder::default();
    w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
    w.process(arp_reply(RS2, MAC_RS2, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
    let c = w.counters();
    assert_eq!((c.neighbours_learned.get(), c.neighbours_table_full.get()), (1, 1));
    assert!(c.nonzero_events().contains(&("neighbours refused table full", 1)));
}

#[test]
fn static_neighbours_are_installed_when_arp_has_filled_the_table() {
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.neighbour_capacity = 2;
    let mut w: Worker<BufFrame> =
        Worker::new(&cfg, service(ForwardMethod::FullNat, SchedulerKind::Rr), net(), 1000).unwrap();
    let mut io = Recorder::default();
    resolve(&mut w, &mut io, 1000);
    assert_eq!(w.neighbours().len(), 2, "RS1 and RS2 fill the learned room");
    let mut view = (*net()).clone();
    view.static_neighbours = (0..crate::net::MAX_STATIC_NEIGHBOURS as u32)
        .map(|i| (Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 16, 0, 0)) + i), MAC_RS2, 1))
        .collect();
    view.static_neighbours[0] = (CLIENT, MAC_CLIENT, 0);
    let snap = w.director().snapshot().clone();
    w.switch(snap, Arc::new(view));
    assert_eq!(w.neighbours().statics(), crate::net::MAX_STATIC_NEIGHBOURS, "every one installed");
    assert_eq!(w.neighbours().lookup(CLIENT, 5000).map(|n| n.mac), Some(MAC_CLIENT), "permanent");
    assert_eq!(w.neighbours().lookup(RS1, 1000).map(|n| n.mac), Some(MAC_RS1), "learned ones kept");
    // Removed from the configuration: gone from the table.
    let snap = w.director().snapshot().clone();
    w.switch(snap, net());
    assert_eq!((w.neighbours().statics(), w.neighbours().lookup(CLIENT, 5000)), (0, None));
}

#[test]
fn an_answer_reaches_the_worker_that_asked_and_requesters_stay_local() {
    let mut w0 = worker(0, 2, ForwardMethod::FullNat);
    let mut w1 = worker(1, 2, ForwardMethod::FullNat);
    let (mut io0, mut io1) = (Recorder::default(), Recorder::default());
    // Worker 1 sends to the client (on-link): it asks, and the answer lands on worker 0's queue.
    w1.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io1);
    let syn = tcp_frame((CLIENT, 40001), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w1.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io1);
    let (_, to_rs) = io1.take_sent().remove(0);
    let synack = tcp_frame((RS1, 8080), ip_src(&to_rs), 5, 2, flags::SYN | flags::ACK, &[], &[]);
    w1.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io1);
    assert_eq!(io1.take_sent().iter().map(|(p, b)| (*p, macs(b).0)).collect::<Vec<_>>(), vec![(0, MacAddr::BROADCAST)]);

    w0.process(arp_request(Ipv4Addr::new(10, 0, 0, 2), MAC_SPOOF, GW_CLIENT_SIDE), 0, 1000, &mut io0);
    w0.process(arp_reply(CLIENT, MAC_CLIENT, GW_CLIENT_SIDE, MAC_PORT0), 0, 1000, &mut io0);
    assert_eq!(io0.learned, vec![(CLIENT.into(), MAC_CLIENT, 0)], "the answer is passed on, the requester is not");
    w1.learn_neighbour(CLIENT.into(), MAC_CLIENT, 0, 1000, &mut io1);
    assert_eq!(io1.take_sent().iter().map(|(p, b)| (*p, macs(b).0)).collect::<Vec<_>>(), vec![(0, MAC_CLIENT)]);
    assert!(w1.neighbours().lookup(CLIENT, 1000).unwrap().needed);

    // An update naming a port that does not reach the address is refused.
    w1.learn_neighbour(RS2.into(), MAC_SPOOF, 0, 1000, &mut io1);
    assert_eq!(w1.neighbours().lookup(RS2, 1000), None);
    assert_eq!(w1.counters().neighbours_wrong_port.get(), 1);
}

#[test]
fn bad_and_unwanted_packets_are_counted_and_good_traffic_continues() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);

    w.process(BufFrame::new(&syn[..30]), 0, 1000, &mut io);
    let mut frag = syn.clone();
    frag[20..22].copy_from_slice(&0x2000u16.to_be_bytes());
    let sum = crate::wire::checksum::checksum(&{
        let mut h = frag[14..34].to_vec();
        h[10..12].fill(0);
        h
    });
    frag[24..26].copy_from_slice(&sum.to_be_bytes());
    w.process(BufFrame::new(&frag), 0, 1000, &mut io);
    let mut bad_sum = syn.clone();
    bad_sum[24] ^= 0xff;
    w.process(BufFrame::new(&bad_sum), 0, 1000, &mut io);
    let other_port = tcp_frame((CLIENT, 40000), (VIP, 81), 1, 0, flags::SYN, &[], &[]);
    w.process(BufFrame::new(&other_port), 0, 1000, &mut io);
    let stranger = tcp_frame((CLIENT, 40000), (Ipv4Addr::new(10, 0, 0, 99), 80), 1, 0, flags::SYN, &[], &[]);
    w.process(BufFrame::new(&stranger), 0, 1000, &mut io);
    let no_syn = tcp_frame((CLIENT, 40001), (VIP, 80), 1, 0, flags::ACK, &[], &[]);
    w.process(BufFrame::new(&no_syn), 0, 1000, &mut io);
    let c = w.counters();
    for (reason, n) in [
        (Discard::Wire(DropReason::Truncated), 1),
        (Discard::Wire(DropReason::Fragment), 1),
        (Discard::Wire(DropReason::BadIpChecksum), 1),
        (Discard::NoService, 1),
        (Discard::NotForUs, 1),
        (Discard::NoConnection, 1),
    ] {
        assert_eq!(c.dropped(reason), n, "{}", reason.name());
    }
    assert!(io.sent.is_empty());
    assert_eq!(io.freed, 3 + 6, "ARP replies and every dropped frame were freed");

    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    assert_eq!(io.take_sent().len(), 1, "good traffic still flows");
}

#[test]
fn unresolved_neighbours_time_out_and_queues_are_bounded() {
    let mut w = worker(0, 1, ForwardMethod::FullNat);
    let mut io = Recorder::default();
    for i in 0..20 {
        let syn = tcp_frame((CLIENT, 40000 + i * 2), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    }
    // rr over two servers: 10 SYNs per server, all waiting; two ARP requests.
    assert_eq!(io.take_sent().len(), 2);
    w.tick(1001, &mut io);
    assert_eq!(io.take_sent().len(), 2, "ARP retried once a second");
    w.tick(1003, &mut io);
    assert_eq!(w.counters().dropped(Discard::NeighbourTimeout), 20);
    assert_eq!(io.freed, 20);

    let mut io = Recorder { no_mbufs: true, ..Recorder::default() };
    for i in 0..40u16 {
        let syn = tcp_frame((CLIENT, 41000 + i), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1003, &mut io);
    }
    assert_eq!(w.counters().dropped(Discard::NeighbourQueueFull), 40 - 2 * 16, "16 per next hop");
    assert!(w.counters().dropped(Discard::NoMbuf) >= 2, "no mbuf for the ARP requests is counted");
}

#[test]
fn a_new_snapshot_switches_services_and_keeps_connections() {
    let (mut w, mut io) = resolved(ForwardMethod::FullNat);
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
    assert_eq!(io.take_sent().len(), 1);

    // The service goes away: the existing connection lives on, new ones are refused.
    w.switch(Snapshot::empty(), net());
    let data = tcp_frame((CLIENT, 40000), (VIP, 80), 2, 1, flags::ACK, &[], b"x");
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &data), 0, 1000, &mut io);
    assert_eq!(io.take_sent().len(), 1, "bound connection still forwarded");
    let syn2 = tcp_frame((CLIENT, 40002), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn2), 0, 1000, &mut io);
    assert!(io.sent.is_empty());
    assert_eq!(w.counters().dropped(Discard::NotForUs), 1, "the VIP is no longer ours");
    let _ = IpAddr::from(VIP);
}

/// wlc over DR servers of weights 1 and 2, each pick against the counts every
/// earlier connection left, as IPVS counts them: a SYN's connection is
/// inactive (SYN_RECV), the client's ACK makes it active (256 inactive ones).
#[test]
fn wlc_counts_every_earlier_connection_of_a_burst() {
    let key = ServiceKey::tcp(VIP.into(), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(key) }).unwrap();
    for (rs, weight) in [(RS1, 1), (RS2, 2)] {
        ed.add_dest(&key, DestSpec::new(rs.into(), 80).with_method(ForwardMethod::DirectRoute).with_weight(weight))
            .unwrap();
    }
    let snap = ed.finish();
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.conn_capacity = 1024;
    let mut w = Worker::new(&cfg, snap.clone(), net(), 1000).unwrap();
    let mut io = Recorder::default();
    resolve(&mut w, &mut io, 1000);
    let syn_to = |w: &mut Worker<BufFrame>, io: &mut Recorder, cport: u16| {
        let syn = tcp_frame((CLIENT, cport), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, io);
        macs(&io.take_sent().remove(0).1).0
    };
    // 30 SYNs back to back: inactive counts per weight, 10:20.
    let burst: Vec<MacAddr> = (0..30).map(|i| syn_to(&mut w, &mut io, 40000 + i)).collect();
    assert_eq!(burst.iter().filter(|&&m| m == MAC_RS1).count(), 10, "{burst:?}");
    let counts =
        |i: usize| (snap.service(0).dests()[i].counters().active(), snap.service(0).dests()[i].counters().inactive());
    assert_eq!((counts(0), counts(1)), ((0, 10), (0, 20)));
    // The first connection's ACK: RS1 now weighs 256 + 9, so RS2 takes the
    // next ones until its own count per weight is higher (IPVS does the same).
    let ack = tcp_frame((CLIENT, 40000), (VIP, 80), 2, 1, flags::ACK, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &ack), 0, 1000, &mut io);
    assert_eq!(macs(&io.take_sent().remove(0).1).0, MAC_RS1, "the ACK follows its connection");
    assert_eq!(counts(0), (1, 9));
    let after: Vec<MacAddr> = (30..40).map(|i| syn_to(&mut w, &mut io, 40000 + i)).collect();
    assert_eq!(after, vec![MAC_RS2; 10]);
}

/// A spoofed SYN flood fills a small table: a real client still gets in
/// (the oldest half-open entry is shed for it), its connection outlives the
/// rest of the flood, and once the flood's SYN_RECV timeout passes the
/// per-burst expiry empties the table in a few bursts, not 256 a second.
#[test]
fn a_syn_flood_neither_locks_clients_out_nor_lingers() {
    let mut cfg = WorkerConfig::new(0, 1);
    cfg.conn_capacity = 300;
    let mut w = Worker::new(&cfg, service(ForwardMethod::FullNat, SchedulerKind::Rr), net(), 1000).unwrap();
    let mut io = Recorder::default();
    resolve(&mut w, &mut io, 1000);
    let flood = |w: &mut Worker<BufFrame>, io: &mut Recorder, from: u32, now: u32| {
        for i in from..from + 1000 {
            let src = Ipv4Addr::from(0xc612_0000 + i); // 198.18.0.0/15
            let syn = tcp_frame((src, 1024 + (i % 60000) as u16), (VIP, 80), i, 0, flags::SYN, &[], &[]);
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, now, io);
        }
        io.take_sent().len()
    };
    assert_eq!(flood(&mut w, &mut io, 0, 1000), 1000, "every spoofed SYN went to a server");
    assert!(w.director().conns().is_full());

    // The real client's handshake, through a full table of half-open entries.
    let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 0, flags::SYN, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1001, &mut io);
    let sent = io.take_sent();
    assert_eq!(sent.len(), 1, "the real SYN was admitted: {:?}", w.counters().nonzero_drops());
    let (rs, lport) = (ip_dst(&sent[0].1).0, ip_src(&sent[0].1).1);
    let synack = tcp_frame((rs, 8080), (LIP, lport), 5000, 1001, flags::SYN | flags::ACK, &[], &[]);
    w.process(on_wire(if rs == RS1 { MAC_RS1 } else { MAC_RS2 }, MAC_PORT1, &synack), 1, 1001, &mut io);
    let ack = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags::ACK, &[], &[]);
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &ack), 0, 1001, &mut io);
    assert_eq!(io.take_sent().len(), 2);

    // The flood goes on: it sheds its own entries, never the established one.
    assert_eq!(flood(&mut w, &mut io, 1000, 1002), 1000);
    let data = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags::ACK | flags::PSH, &[], b"GET /");
    w.process(on_wire(MAC_CLIENT, MAC_PORT0, &data), 0, 1003, &mut io);
    let sent = io.take_sent();
    assert_eq!((sent.len(), ip_src(&sent[0].1)), (1, (LIP, lport)), "the real connection kept its entry");
    assert_eq!(w.counters().dropped(Discard::TableFull), 0, "nothing refused");

    // Past the flood's SYN_RECV timeout every half-open entry is due at once:
    // a few bursts' expiry slices take them all.
    let now = 1002 + 60;
    let mut bursts = 0;
    while w.director().conns().len() > 1 && bursts < 100 {
        w.expire(now);
        bursts += 1;
    }
    assert_eq!(w.director().conns().len(), 1);
    assert!(bursts <= 299usize.div_ceil(pipeline::EXPIRY_BUDGET), "{bursts} bursts");
    w.tick(now + 1, &mut io);
    let c = w.counters();
    assert_eq!(
        (c.conns_live.get(), c.conns_expired.get(), c.conns_shed.get(), c.conns_reclaimed.get()),
        (1, 299, 2001 - 300, 0)
    );
    assert_eq!(w.director().pools().pool(LIP.into()).unwrap().in_use(), 1, "every local port of the flood came back");
}

/// The SYN proxy through the whole pipeline, on one FNAT worker whose
/// service has `-j enable`.
mod synproxy {
    use super::*;
    use crate::conn::{Proxy, State};
    use crate::wire::tcp::TcpOption;

    /// A Linux SYN's options: MSS 1460, SACK-permitted, timestamps (TSval
    /// 5000), NOP, window scale 7.
    const SYN_OPTIONS: [u8; 20] = [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0x13, 0x88, 0, 0, 0, 0, 1, 3, 3, 7];
    const ISN: u32 = 0x1000_0000;
    const SERVER_ISN: u32 = 0x7000_0000;
    const SERVER_TSVAL: u32 = 900_000;

    fn proxied(
        method: ForwardMethod,
        settings: impl FnOnce(&mut crate::synproxy::Settings),
    ) -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        cfg.synproxy.seed = *b"worker-test-seed";
        settings(&mut cfg.synproxy);
        let mut ed = service(method, SchedulerKind::Rr).edit();
        enable_synproxy(&mut ed, ServiceKey::tcp(VIP.into(), 80));
        let mut w = Worker::new(&cfg, ed.finish(), net(), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        (w, io)
    }

    /// TSval and TSecr of a frame's timestamps option.
    fn timestamps(b: &[u8]) -> Option<(u32, u32)> {
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        tcp.option_iter().find_map(|o| match o {
            Ok((_, TcpOption::Timestamps { tsval, tsecr })) => Some((tsval, tsecr)),
            _ => None,
        })
    }

    fn seq_ack(b: &[u8]) -> (u32, u32) {
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        (tcp.seq_number(), tcp.ack_number())
    }

    fn ts_option(tsval: u32, tsecr: u32) -> [u8; 12] {
        let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        o[4..8].copy_from_slice(&tsval.to_be_bytes());
        o[8..12].copy_from_slice(&tsecr.to_be_bytes());
        o
    }

    fn client(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>, now: u32) {
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &frame), 0, now, io);
    }

    fn server(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>, now: u32) {
        w.process(on_wire(MAC_RS1, MAC_PORT1, &frame), 1, now, io);
    }

    /// The client's SYN, answered by the gateway: (cookie, our TSval).
    fn syn_ack(w: &mut Worker<BufFrame>, io: &mut Recorder) -> (u32, u32) {
        client(w, io, tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &SYN_OPTIONS, b""), 1000);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "one SYN-ACK, nothing toward the servers");
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        assert_eq!(macs(b), (MAC_CLIENT, MAC_PORT0));
        assert_eq!((ip_src(b), ip_dst(b)), ((VIP, 80), (CLIENT, 40000)));
        assert_checksums_valid(b);
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        assert_eq!(tcp.flags(), flags::SYN | flags::ACK);
        assert_eq!(tcp.ack_number(), ISN + 1);
        let options: Vec<_> = tcp.option_iter().map(|o| o.unwrap().1).collect();
        assert!(options.contains(&TcpOption::MaxSegmentSize(1460)));
        assert!(options.contains(&TcpOption::SackPermitted));
        assert!(options.contains(&TcpOption::WindowScale(7)));
        let (tsval, tsecr) = timestamps(b).expect("timestamps answered");
        assert_eq!(tsecr, 5000);
        assert!(w.director().conns().is_empty(), "a SYN leaves no state");
        assert_eq!(w.counters().synproxy.syn_acks_sent.get(), 1);
        (tcp.seq_number(), tsval)
    }

    /// Up to the SYN the server gets: the client's ACK of our SYN-ACK.
    /// Returns (cookie, our TSval).
    fn to_server_syn(w: &mut Worker<BufFrame>, io: &mut Recorder) -> (u32, u32) {
        let (cookie, our_tsval) = syn_ack(w, io);
        let ack =
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie + 1, flags::ACK, &ts_option(5001, our_tsval), b"");
        client(w, io, ack, 1000);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "the SYN to the server only");
        let (port, b) = &sent[0];
        assert_eq!(*port, 1);
        assert_eq!(macs(b), (MAC_RS1, MAC_PORT1));
        assert_eq!(ip_src(b).0, LIP);
        assert_eq!(ip_dst(b), (RS1, 8080));
        assert_checksums_valid(b);
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        assert_eq!(tcp.flags(), flags::SYN);
        assert_eq!(tcp.seq_number(), ISN, "the client's own ISN");
        let options: Vec<_> = tcp.option_iter().map(|o| o.unwrap().1).collect();
        assert!(options.contains(&TcpOption::MaxSegmentSize(1460)));
        assert!(options.contains(&TcpOption::SackPermitted));
        assert!(options.contains(&TcpOption::WindowScale(7)));
        assert!(options.contains(&TcpOption::Timestamps { tsval: 5001, tsecr: 0 }));
        assert_eq!(toa_of(b), Some((40000, CLIENT)), "the client's address rides on the SYN");
        assert_eq!(w.counters().synproxy.cookies_valid.get(), 1);
        assert_eq!(w.director().conns().len(), 1);
        (cookie, our_tsval)
    }

    #[test]
    fn a_proxied_connection_runs_with_shifted_sequence_numbers_and_timestamps() {
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |_| {});
        let (cookie, our_tsval) = to_server_syn(&mut w, &mut io);
        let lport = {
            let (_, c) = w.director().conns().iter().next().unwrap();
            assert!(matches!(c.proxy(), Proxy::Handshake(_)));
            c.lport
        };

        // The client's request arrives before the server answered: it waits.
        let request = tcp_frame(
            (CLIENT, 40000),
            (VIP, 80),
            ISN + 1,
            cookie + 1,
            flags::ACK | flags::PSH,
            &ts_option(5002, our_tsval),
            b"GET /",
        );
        client(&mut w, &mut io, request, 1000);
        assert!(io.take_sent().is_empty(), "held until the server is connected");

        // The server's SYN-ACK is consumed; the client's ACK and request follow,
        // in the server's numbering.
        let synack = tcp_frame(
            (RS1, 8080),
            (LIP, lport),
            SERVER_ISN,
            ISN + 1,
            flags::SYN | flags::ACK,
            &[&[2, 4, 5, 0xb4, 4, 2][..], &ts_option(SERVER_TSVAL, 5001)[2..], &[1, 3, 3, 7]].concat(),
            b"",
        );
        server(&mut w, &mut io, synack, 1000);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 2, "the client's ACK and its request, nothing to the client");
        for (i, (port, b)) in sent.iter().enumerate() {
            assert_eq!(*port, 1);
            assert_checksums_valid(b);
            assert_eq!(ip_dst(b), (RS1, 8080));
            assert_eq!(seq_ack(b), (ISN + 1, SERVER_ISN + 1), "packet {i}: ack in the server's numbering");
            assert_eq!(
                timestamps(b).unwrap(),
                (5001 + i as u32, SERVER_TSVAL),
                "packet {i}: TSecr is the server's TSval"
            );
        }
        assert_eq!(
            toa_of(&sent[0].1),
            Some((40000, CLIENT)),
            "the ACK completing the server's handshake carries the TOA"
        );
        assert_eq!(&sent[1].1[sent[1].1.len() - 5..], b"GET /");
        assert_eq!(w.counters().synproxy.server_handshakes.get(), 1);
        let (_, c) = w.director().conns().iter().next().unwrap();
        assert_eq!(c.state(), State::Established);

        // The server's answer reaches the client in our numbering, SACK included.
        let sack = [1, 1, 5, 10, 0x70, 0, 0, 0x10, 0x70, 0, 0, 0x20];
        let reply = tcp_frame(
            (RS1, 8080),
            (LIP, lport),
            SERVER_ISN + 1,
            ISN + 6,
            flags::ACK,
            &[&ts_option(SERVER_TSVAL + 7, 5002)[..], &sack[..]].concat(),
            b"200 OK",
        );
        server(&mut w, &mut io, reply, 1001);
        let sent = io.take_sent();
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        assert_checksums_valid(b);
        assert_eq!((ip_src(b), ip_dst(b)), ((VIP, 80), (CLIENT, 40000)));
        assert_eq!(seq_ack(b), (cookie + 1, ISN + 6));
        assert_eq!(timestamps(b).unwrap(), (our_tsval + 7, 5002), "the server's clock shifted to ours");

        // And the client's SACK of it goes back into the server's numbering.
        let sack = [&(cookie + 1).to_be_bytes()[..], &(cookie + 3).to_be_bytes()[..]].concat();
        let client_sack = [&[1, 1, 5, 10][..], &sack[..], &ts_option(5003, our_tsval + 7)[..]].concat();
        client(
            &mut w,
            &mut io,
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 6, cookie + 7, flags::ACK, &client_sack, b""),
            1001,
        );
        let sent = io.take_sent();
        let b = &sent[0].1;
        assert_checksums_valid(b);
        assert_eq!(seq_ack(b), (ISN + 6, SERVER_ISN + 7));
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        let edges: Vec<(u32, u32)> = tcp
            .option_iter()
            .find_map(|o| match o {
                Ok((_, TcpOption::Sack(blocks))) => Some(blocks.iter().collect()),
                _ => None,
            })
            .unwrap();
        assert_eq!(edges, [(SERVER_ISN + 1, SERVER_ISN + 3)]);
        assert_eq!(timestamps(b).unwrap(), (5003, SERVER_TSVAL + 7));
    }

    /// The SYN proxy and a PROXY header on one service: the server's numbers
    /// shift by the cookie's delta, the client's by the header, at once.
    #[test]
    fn a_proxied_connection_with_a_proxy_header_shifts_both_ways() {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        cfg.synproxy.seed = *b"worker-test-seed";
        let key = ServiceKey::tcp(VIP.into(), 80);
        let mut ed = service(ForwardMethod::FullNat, SchedulerKind::Rr).edit();
        let spec = *ed.current().service(ed.current().service_id(&key).unwrap()).spec();
        let v2 = Some(crate::wire::proxy_protocol::Version::V2);
        ed.edit_service(ServiceSpec { synproxy: true, proxy_protocol: v2, ..spec }).unwrap();
        let mut w = Worker::new(&cfg, ed.finish(), net(), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        let header = crate::wire::proxy_protocol::Repr {
            version: crate::wire::proxy_protocol::Version::V2,
            src: (CLIENT, 40000),
            dst: (VIP, 80),
        };
        let mut buf = [0; crate::wire::proxy_protocol::MAX_LEN];
        let len = header.emit(&mut buf);
        let hdr = buf[..len].to_vec();
        let payload = |b: &[u8]| TcpPacket::new_checked(&b[34..]).unwrap().payload().to_vec();

        let (cookie, our_tsval) = syn_ack(&mut w, &mut io);
        let ack =
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie + 1, flags::ACK, &ts_option(5001, our_tsval), b"");
        client(&mut w, &mut io, ack, 1000);
        let sent = io.take_sent();
        assert_eq!(seq_ack(&sent[0].1).0, ISN, "the SYN to the server: the client's ISN");
        assert_eq!(toa_of(&sent[0].1), None, "no TOA with the PROXY protocol");
        let lport = ip_src(&sent[0].1).1;
        let synack = tcp_frame(
            (RS1, 8080),
            (LIP, lport),
            SERVER_ISN,
            ISN + 1,
            flags::SYN | flags::ACK,
            &[&[2, 4, 5, 0xb4, 4, 2][..], &ts_option(SERVER_TSVAL, 5001)[2..], &[1, 3, 3, 7]].concat(),
            b"",
        );
        server(&mut w, &mut io, synack, 1000);
        // The client's held ACK completes the server's handshake with the header.
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        assert_checksums_valid(&sent[0].1);
        assert_eq!(seq_ack(&sent[0].1), (ISN + 1, SERVER_ISN + 1));
        assert_eq!(payload(&sent[0].1), hdr);

        // The request goes with the header again (not acknowledged yet).
        let request = tcp_frame(
            (CLIENT, 40000),
            (VIP, 80),
            ISN + 1,
            cookie + 1,
            flags::ACK | flags::PSH,
            &ts_option(5002, our_tsval),
            b"GET /",
        );
        client(&mut w, &mut io, request, 1000);
        let sent = io.take_sent();
        assert_checksums_valid(&sent[0].1);
        assert_eq!(seq_ack(&sent[0].1), (ISN + 1, SERVER_ISN + 1));
        assert_eq!(payload(&sent[0].1), [&hdr[..], b"GET /"].concat());
        assert_eq!(timestamps(&sent[0].1).unwrap(), (5002, SERVER_TSVAL));

        // The answer: the server's seq into the cookie's space, its ack out of the header's.
        let n = hdr.len() as u32;
        let reply = tcp_frame(
            (RS1, 8080),
            (LIP, lport),
            SERVER_ISN + 1,
            ISN + 1 + n + 5,
            flags::ACK,
            &ts_option(SERVER_TSVAL + 7, 5002),
            b"200 OK",
        );
        server(&mut w, &mut io, reply, 1001);
        let sent = io.take_sent();
        let b = &sent[0].1;
        assert_checksums_valid(b);
        assert_eq!((ip_src(b), ip_dst(b)), ((VIP, 80), (CLIENT, 40000)));
        assert_eq!(seq_ack(b), (cookie + 1, ISN + 6));
        assert_eq!(timestamps(b).unwrap(), (our_tsval + 7, 5002));

        // The client's next segment: its seq past the header, its ack into the server's space.
        let next = tcp_frame(
            (CLIENT, 40000),
            (VIP, 80),
            ISN + 6,
            cookie + 7,
            flags::ACK,
            &ts_option(5003, our_tsval + 7),
            b"",
        );
        client(&mut w, &mut io, next, 1001);
        let sent = io.take_sent();
        assert_checksums_valid(&sent[0].1);
        assert_eq!(seq_ack(&sent[0].1), (ISN + 6 + n, SERVER_ISN + 7));
        assert!(payload(&sent[0].1).is_empty());
        assert_eq!(w.counters().proxy_headers_inserted.get(), 2);
    }

    #[test]
    fn a_bad_cookie_is_dropped_or_reset_and_opens_nothing() {
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |_| {});
        let (cookie, _) = syn_ack(&mut w, &mut io);
        for forged in [cookie ^ 1, cookie.wrapping_add(0x4000_0000)] {
            client(
                &mut w,
                &mut io,
                tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, forged + 1, flags::ACK, &[], b""),
                1000,
            );
        }
        // Another client's ISN with this cookie: the cookie binds the tuple and ISN.
        client(&mut w, &mut io, tcp_frame((CLIENT, 40001), (VIP, 80), ISN + 1, cookie + 1, flags::ACK, &[], b""), 1000);
        client(&mut w, &mut io, tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 2, cookie + 1, flags::ACK, &[], b""), 1000);
        assert!(io.take_sent().is_empty());
        assert_eq!(w.counters().synproxy.cookies_invalid.get(), 4);
        assert_eq!(w.counters().dropped(Discard::SynProxyBadCookie), 4);
        assert!(w.director().conns().is_empty());
        // A stale cookie: two periods (128 s) later it no longer checks.
        w.tick(1000 + 128, &mut io);
        client(&mut w, &mut io, tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie + 1, flags::ACK, &[], b""), 1128);
        assert_eq!(w.counters().synproxy.cookies_invalid.get(), 5);

        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |s| s.invalid_ack = crate::synproxy::InvalidAck::Reset);
        client(
            &mut w,
            &mut io,
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, 0xabcd_0001, flags::ACK, &[], b""),
            1000,
        );
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        assert_checksums_valid(b);
        assert_eq!((ip_src(b), ip_dst(b)), ((VIP, 80), (CLIENT, 40000)));
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        assert_eq!(
            (tcp.flags(), tcp.seq_number()),
            (flags::RST, 0xabcd_0001),
            "RST at the sequence number the ACK expects"
        );
        assert!(w.director().conns().is_empty());
    }

    #[test]
    fn a_silent_server_gets_the_syn_again_then_the_client_is_reset() {
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |s| s.syn_retries = 2);
        let (cookie, _) = to_server_syn(&mut w, &mut io);
        // Due after one to two seconds (whole seconds counted), then 2 s more.
        for (now, resent) in [(1000, 0), (1001, 0), (1002, 1), (1003, 0), (1004, 1)] {
            w.tick(now, &mut io);
            let sent = io.take_sent();
            assert_eq!(sent.len(), resent, "at {now}");
            for (port, b) in &sent {
                assert_eq!(*port, 1);
                assert_checksums_valid(b);
                let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
                assert_eq!((tcp.flags(), tcp.seq_number()), (flags::SYN, ISN));
            }
        }
        assert_eq!(w.counters().synproxy.syn_retransmits.get(), 2);
        w.tick(1007, &mut io);
        assert!(io.take_sent().is_empty(), "not yet: 4 s after the last");
        w.tick(1008, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "the client's RST");
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        assert_eq!((ip_src(b), ip_dst(b)), ((VIP, 80), (CLIENT, 40000)));
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        assert_eq!((tcp.flags(), tcp.seq_number()), (flags::RST, cookie + 1));
        assert_eq!(w.counters().synproxy.server_timeouts.get(), 1);
        assert!(w.director().conns().is_empty(), "the connection is gone, its local port free");
    }

    #[test]
    fn a_refusing_server_resets_the_client_in_our_numbering() {
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |_| {});
        let (cookie, _) = to_server_syn(&mut w, &mut io);
        let lport = w.director().conns().iter().next().unwrap().1.lport;
        server(
            &mut w,
            &mut io,
            tcp_frame((RS1, 8080), (LIP, lport), 0, ISN + 1, flags::RST | flags::ACK, &[], b""),
            1000,
        );
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        assert_checksums_valid(b);
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        assert_eq!(tcp.flags() & flags::RST, flags::RST);
        assert_eq!(tcp.seq_number(), cookie + 1);
        assert_eq!(w.counters().synproxy.server_resets.get(), 1);
        assert_eq!(w.director().conns().iter().next().unwrap().1.state(), State::Close);
    }

    #[test]
    fn held_packets_are_bounded_and_other_server_segments_refused() {
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |_| {});
        let (cookie, our_tsval) = to_server_syn(&mut w, &mut io);
        for i in 0..crate::synproxy::HELD_PER_HANDSHAKE as u32 + 2 {
            let data = tcp_frame(
                (CLIENT, 40000),
                (VIP, 80),
                ISN + 1,
                cookie + 1,
                flags::ACK,
                &ts_option(5002 + i, our_tsval),
                b"x",
            );
            client(&mut w, &mut io, data, 1000);
        }
        assert!(io.take_sent().is_empty());
        assert_eq!(w.counters().dropped(Discard::SynProxyHoldFull), 2);
        let lport = w.director().conns().iter().next().unwrap().1.lport;
        // A SYN-ACK for another ISN does not complete the handshake.
        server(
            &mut w,
            &mut io,
            tcp_frame((RS1, 8080), (LIP, lport), SERVER_ISN, ISN + 77, flags::SYN | flags::ACK, &[], b""),
            1000,
        );
        assert_eq!(w.counters().dropped(Discard::SynProxyUnexpected), 1);
        assert!(io.take_sent().is_empty());
        // No mbuf for the copy of the ACK: dropped, counted, nothing opened.
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |_| {});
        let (cookie, tsval) = syn_ack(&mut w, &mut io);
        io.no_mbufs = true;
        client(
            &mut w,
            &mut io,
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie + 1, flags::ACK, &ts_option(5001, tsval), b""),
            1000,
        );
        assert_eq!(w.counters().dropped(Discard::NoMbuf), 1);
        assert!(w.director().conns().is_empty());
    }

    #[test]
    fn a_new_connection_on_a_finished_proxied_connections_ports_opens_afresh() {
        let (mut w, mut io) = proxied(ForwardMethod::FullNat, |_| {});
        let (cookie, our_tsval) = to_server_syn(&mut w, &mut io);
        let lport = w.director().conns().iter().next().unwrap().1.lport;
        let synack = tcp_frame(
            (RS1, 8080),
            (LIP, lport),
            SERVER_ISN,
            ISN + 1,
            flags::SYN | flags::ACK,
            &ts_option(SERVER_TSVAL, 5001),
            b"",
        );
        server(&mut w, &mut io, synack, 1000);
        io.take_sent();
        // Client FIN, server FIN: TIME_WAIT.
        client(
            &mut w,
            &mut io,
            tcp_frame(
                (CLIENT, 40000),
                (VIP, 80),
                ISN + 1,
                cookie + 1,
                flags::FIN | flags::ACK,
                &ts_option(5002, our_tsval),
                b"",
            ),
            1000,
        );
        server(
            &mut w,
            &mut io,
            tcp_frame(
                (RS1, 8080),
                (LIP, lport),
                SERVER_ISN + 1,
                ISN + 2,
                flags::FIN | flags::ACK,
                &ts_option(SERVER_TSVAL + 1, 5002),
                b"",
            ),
            1000,
        );
        assert_eq!(io.take_sent().len(), 2);
        assert_eq!(w.director().conns().iter().next().unwrap().1.state(), State::TimeWait);

        // The same ports again: answered by the proxy, not the old connection.
        const ISN2: u32 = 0x2000_0000;
        client(&mut w, &mut io, tcp_frame((CLIENT, 40000), (VIP, 80), ISN2, 0, flags::SYN, &SYN_OPTIONS, b""), 1001);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 0, "the SYN-ACK goes back to the client");
        let tcp = TcpPacket::new_checked(&sent[0].1[34..]).unwrap();
        assert_eq!((tcp.flags(), tcp.ack_number()), (flags::SYN | flags::ACK, ISN2 + 1));
        let (cookie2, tsval2) = (tcp.seq_number(), timestamps(&sent[0].1).unwrap().0);
        // A stray ACK of the old connection still reaches it.
        client(
            &mut w,
            &mut io,
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 2, cookie + 2, flags::ACK, &ts_option(5003, our_tsval), b""),
            1001,
        );
        assert_eq!(io.take_sent().len(), 1);
        assert_eq!(w.counters().conns_reused.get(), 0);
        // The new connection's ACK ends the old one and opens a new one.
        client(
            &mut w,
            &mut io,
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN2 + 1, cookie2 + 1, flags::ACK, &ts_option(5004, tsval2), b""),
            1001,
        );
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        let tcp = TcpPacket::new_checked(&sent[0].1[34..]).unwrap();
        assert_eq!((sent[0].0, tcp.flags(), tcp.seq_number()), (1, flags::SYN, ISN2), "a SYN to a server");
        assert_eq!(w.counters().conns_reused.get(), 1);
        assert_eq!(w.counters().synproxy.cookies_valid.get(), 2);
        let conns: Vec<_> = w.director().conns().iter().map(|(_, c)| (c.state(), c.proxy())).collect();
        assert_eq!(conns.len(), 1);
        assert!(matches!(conns[0], (State::SynRecv, Proxy::Handshake(_))), "{conns:?}");
    }

    #[test]
    fn nat_proxies_too() {
        let (mut w, mut io) = proxied(ForwardMethod::Masq, |_| {});
        let (cookie, our_tsval) = syn_ack(&mut w, &mut io);
        client(
            &mut w,
            &mut io,
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie + 1, flags::ACK, &ts_option(5001, our_tsval), b""),
            1000,
        );
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!((ip_src(&sent[0].1), ip_dst(&sent[0].1)), ((CLIENT, 40000), (RS1, 8080)));
        let synack = tcp_frame(
            (RS1, 8080),
            (CLIENT, 40000),
            SERVER_ISN,
            ISN + 1,
            flags::SYN | flags::ACK,
            &ts_option(SERVER_TSVAL, 5001),
            b"",
        );
        server(&mut w, &mut io, synack, 1000);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "the client's ACK");
        assert_eq!(seq_ack(&sent[0].1), (ISN + 1, SERVER_ISN + 1));
        let reply = tcp_frame(
            (RS1, 8080),
            (CLIENT, 40000),
            SERVER_ISN + 1,
            ISN + 1,
            flags::ACK,
            &ts_option(SERVER_TSVAL + 1, 5001),
            b"hi",
        );
        server(&mut w, &mut io, reply, 1000);
        let sent = io.take_sent();
        assert_eq!(ip_src(&sent[0].1), (VIP, 80));
        assert_eq!(seq_ack(&sent[0].1), (cookie + 1, ISN + 1));
        assert_eq!(timestamps(&sent[0].1).unwrap(), (our_tsval + 1, 5001));
    }
}

/// Firewall-mark services (`-f`): the destination is no VIP of the worker,
/// only a mark rule leads to the service (the seed's LVS-FWM example).
mod fwmark {
    use super::*;
    use crate::model::MarkRule;

    /// Held by the gateway as an interface address (`gwctl addr add`), as
    /// the seed's director holds it with ifconfig; no Inet service has it.
    pub(super) const FWM_VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 101);

    /// `service(method)` plus `-f 1 -s rr` with both real servers (port 0:
    /// the packet's port) and the rule `mark add 1 -d FWM_VIP` (any protocol,
    /// any port); `proxy` sets `-j enable` on those services, adding the ones
    /// missing with a NAT server (a proxied service's replies pass the gateway).
    pub(super) fn worker_with_fwmark(method: ForwardMethod, proxy: &[ServiceKey]) -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        let mut ed = service(method, SchedulerKind::Rr).edit();
        let fwm = ServiceKey::Fwmark(1);
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(fwm) }).unwrap();
        for rs in [RS1, RS2] {
            ed.add_dest(&fwm, DestSpec::new(rs.into(), 0).with_method(method)).unwrap();
        }
        ed.add_mark_rule(MarkRule { mark: 1, dst: FWM_VIP.into(), prefix_len: 32, proto: None, ports: vec![] })
            .unwrap();
        for &key in proxy {
            if ed.current().service_id(&key).is_none() {
                ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(key) }).unwrap();
                ed.add_dest(&key, DestSpec::new(RS1.into(), 0).with_method(ForwardMethod::Masq)).unwrap();
            }
            enable_synproxy(&mut ed, key);
        }
        let mut w = Worker::new(&cfg, ed.finish(), net(), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        (w, io)
    }

    fn client(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &frame), 0, 1000, io);
        io.take_sent()
    }

    /// Two SYNs alternate the real servers (rr), a segment of the first
    /// connection follows it, a stray ACK is dropped as IPVS does, and UDP
    /// reaches the service too; with `reply`, the NAT reply is rewritten back.
    fn schedules_tcp_and_udp(method: ForwardMethod, proxy: &[ServiceKey]) {
        let (mut w, mut io) = worker_with_fwmark(method, proxy);
        let mut servers = Vec::new();
        for cport in [40000, 40001] {
            let syn = tcp_frame((CLIENT, cport), (FWM_VIP, 80), 1, 0, flags::SYN, &[], &[]);
            let sent = client(&mut w, &mut io, syn.clone());
            assert_eq!(sent.len(), 1, "{method:?} {proxy:?}: the SYN is forwarded");
            let (port, out) = &sent[0];
            assert_eq!(*port, 1);
            match method {
                ForwardMethod::DirectRoute => {
                    assert_eq!(&out[12..], &syn[12..], "DR leaves the IP packet untouched");
                    servers.push(if macs(out).0 == MAC_RS1 { RS1 } else { RS2 });
                }
                _ => {
                    assert_eq!(ip_dst(out).1, 80, "port 0 keeps the packet's port");
                    servers.push(ip_dst(out).0);
                }
            }
        }
        assert_eq!(servers, vec![RS1, RS2], "{method:?} {proxy:?}: rr alternates");
        let data = tcp_frame((CLIENT, 40000), (FWM_VIP, 80), 2, 1, flags::ACK, &[], b"GET");
        assert_eq!(client(&mut w, &mut io, data).len(), 1, "the connection's next segment follows it");
        let stray = tcp_frame((CLIENT, 40009), (FWM_VIP, 80), 2, 1, flags::ACK, &[], b"x");
        assert!(client(&mut w, &mut io, stray).is_empty());
        assert_eq!(w.counters().dropped(Discard::NoConnection), 1, "a stray ACK opens nothing");

        let dns = udp_frame((CLIENT, 5353), (FWM_VIP, 53), b"query", true);
        let sent = client(&mut w, &mut io, dns);
        assert_eq!(sent.len(), 1, "{method:?} {proxy:?}: UDP is forwarded");
        assert_eq!(sent[0].0, 1);
        if method == ForwardMethod::Masq {
            let (rs, rport) = ip_dst(&sent[0].1);
            assert_eq!(rport, 53);
            assert_checksums_valid(&sent[0].1);
            let mac = if rs == RS1 { MAC_RS1 } else { MAC_RS2 };
            let reply = udp_frame((rs, 53), (CLIENT, 5353), b"answer", true);
            w.process(on_wire(mac, MAC_PORT1, &reply), 1, 1000, &mut io);
            let back = io.take_sent();
            assert_eq!(back.len(), 1);
            assert_eq!(
                (back[0].0, ip_src(&back[0].1)),
                (0, (FWM_VIP, 53)),
                "the NAT reply comes from the marked destination"
            );
        }
        assert_eq!(w.counters().new_conns.get(), 3);
        assert_eq!(w.counters().total_drops(), 1);
    }

    #[test]
    fn dr_and_nat_fwmark_services_schedule_tcp_and_udp_without_a_proxied_service() {
        schedules_tcp_and_udp(ForwardMethod::DirectRoute, &[]);
        schedules_tcp_and_udp(ForwardMethod::Masq, &[]);
    }

    #[test]
    fn dr_and_nat_fwmark_services_schedule_tcp_and_udp_beside_a_proxied_service() {
        schedules_tcp_and_udp(ForwardMethod::DirectRoute, &[ServiceKey::tcp(VIP.into(), 81)]);
        schedules_tcp_and_udp(ForwardMethod::Masq, &[ServiceKey::tcp(VIP.into(), 80)]);
    }

    /// lblc over a marked /16: a client choosing the destination addresses
    /// fills the worker's map; past its capacity each new one evicts the
    /// stalest, and `gwctl stats` shows how many (after the next tick).
    #[test]
    fn lblc_destinations_past_the_maps_capacity_are_evicted_and_counted() {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 32 * 1024;
        let fwm = ServiceKey::Fwmark(2);
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Lblc, ..ServiceSpec::new(fwm) }).unwrap();
        ed.add_dest(&fwm, DestSpec::new(RS1.into(), 0).with_method(ForwardMethod::DirectRoute)).unwrap();
        ed.add_mark_rule(MarkRule {
            mark: 2,
            dst: Ipv4Addr::new(10, 1, 0, 0).into(),
            prefix_len: 16,
            proto: None,
            ports: vec![],
        })
        .unwrap();
        let mut w = Worker::new(&cfg, ed.finish(), net(), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        let capacity = 16 * 1024;
        for n in 0..capacity + 3 {
            let dst = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + n);
            let dns = udp_frame((CLIENT, 5353), (dst, 53), b"q", true);
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &dns), 0, 1000, &mut io);
        }
        assert_eq!(io.take_sent().len(), capacity as usize + 3, "every datagram forwarded");
        w.tick(1000, &mut io);
        assert_eq!(w.counters().lblc_evictions.get(), 3);
        assert!(w.counters().nonzero_events().contains(&("lblc destinations evicted", 3)));
    }

    #[test]
    fn a_proxied_fwmark_service_answers_the_syn_itself() {
        let (mut w, mut io) = worker_with_fwmark(ForwardMethod::Masq, &[ServiceKey::Fwmark(1)]);
        let sent =
            client(&mut w, &mut io, tcp_frame((CLIENT, 40000), (FWM_VIP, 80), 7, 0, flags::SYN, &[2, 4, 5, 0xb4], &[]));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 0, "the SYN-ACK goes back to the client");
        assert_eq!(ip_src(&sent[0].1), (FWM_VIP, 80));
        let tcp = TcpPacket::new_checked(&sent[0].1[34..]).unwrap();
        assert_eq!((tcp.flags(), tcp.ack_number()), (flags::SYN | flags::ACK, 8));
        // UDP to the same mark is scheduled as usual.
        assert_eq!(client(&mut w, &mut io, udp_frame((CLIENT, 5353), (FWM_VIP, 53), b"q", true)).len(), 1);
        assert!(w.director().conns().len() == 1);
    }
}

/// A port whose link goes down takes its routes with it: traffic for a
/// network behind it follows the next less specific route (here the default
/// route over the client port) until the link returns, as a router's would.
#[test]
fn routes_over_a_down_port_fail_over_and_come_back() {
    let far_server = Ipv4Addr::new(172, 16, 0, 10);
    let (server_gw, client_gw) = (Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(10, 0, 0, 1));
    let ports = net().ports.clone();
    let routes = [
        crate::net::Route { dst: cidr("172.16.0.0/16"), via: Some(server_gw), port: 1, src: None },
        crate::net::Route { dst: cidr("0.0.0.0/0"), via: Some(client_gw), port: 0, src: None },
    ];
    let mut view = NetView::with_connected_routes(ports, &routes).unwrap();
    view.static_neighbours = vec![(server_gw, MAC_RS1, 1), (client_gw, MAC_CLIENT, 0)];
    let key = ServiceKey::tcp(VIP.into(), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec::new(key)).unwrap();
    ed.add_dest(&key, DestSpec::new(far_server.into(), 80).with_method(ForwardMethod::Masq)).unwrap();
    let mut w = Worker::new(&WorkerConfig::new(0, 1), ed.finish(), Arc::new(view), 1000).unwrap();
    let mut io = Recorder::default();
    let mut syn_leaves_by = |w: &mut Worker<BufFrame>, cport: u16| {
        let syn = tcp_frame((Ipv4Addr::new(10, 0, 0, 7), cport), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{:?}", w.counters().nonzero_drops());
        assert_eq!(ip_dst(&sent[0].1).0, far_server);
        (sent[0].0, macs(&sent[0].1).0)
    };
    assert_eq!(syn_leaves_by(&mut w, 40000), (1, MAC_RS1), "the route over the servers' port");
    w.follow_links(1 << 1);
    assert_eq!(syn_leaves_by(&mut w, 40001), (0, MAC_CLIENT), "port 1 down: the default route takes over");
    w.follow_links(0b11);
    assert_eq!(
        syn_leaves_by(&mut w, 40003),
        (1, MAC_RS1),
        "no live route at all: the configured one, for the port to drop as link_down"
    );
    w.follow_links(0);
    assert_eq!(syn_leaves_by(&mut w, 40002), (1, MAC_RS1), "the link is back: so is its route");
}

/// A SYN-proxied fwmark service through the worker: its destinations are
/// no service's VIP, so every decision rests on the mark's service, which
/// the proxy must find among the snapshot's services.
mod fwmark_synproxy {
    use super::fwmark::{worker_with_fwmark, FWM_VIP};
    use super::*;
    use crate::conn::{Proxy, State};

    const ISN: u32 = 0x1000_0000;
    const SERVER_ISN: u32 = 0x7000_0000;

    fn from_client(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &frame), 0, 1000, io);
        io.take_sent()
    }

    fn seq_ack(b: &[u8]) -> (u32, u32) {
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        (tcp.seq_number(), tcp.ack_number())
    }

    /// The client's SYN is answered with a cookie, its ACK opens the
    /// connection to a real server chosen by the mark's scheduler, the
    /// server's SYN-ACK is consumed and the client's ACK completes its
    /// handshake; from then on both directions flow, the server's shifted
    /// into the numbering the client saw. UDP to the same mark is scheduled
    /// as usual beside it.
    #[test]
    fn a_proxied_nat_fwmark_service_completes_the_handshake_and_carries_both_ways() {
        let (mut w, mut io) = worker_with_fwmark(ForwardMethod::Masq, &[ServiceKey::Fwmark(1)]);
        let syn = tcp_frame((CLIENT, 40000), (FWM_VIP, 80), ISN, 0, flags::SYN, &[2, 4, 5, 0xb4], &[]);
        let sent = from_client(&mut w, &mut io, syn);
        assert_eq!(sent.len(), 1, "the SYN-ACK only");
        assert_eq!((sent[0].0, ip_src(&sent[0].1)), (0, (FWM_VIP, 80)));
        let (cookie, acked) = seq_ack(&sent[0].1);
        assert_eq!(acked, ISN + 1);
        assert!(w.director().conns().is_empty(), "a SYN leaves no state");

        let ack = tcp_frame((CLIENT, 40000), (FWM_VIP, 80), ISN + 1, cookie + 1, flags::ACK, &[], &[]);
        let sent = from_client(&mut w, &mut io, ack);
        assert_eq!(sent.len(), 1, "the SYN to the server: {:?}", w.counters().nonzero_drops());
        let (port, syn_out) = &sent[0];
        assert_eq!(*port, 1);
        assert_checksums_valid(syn_out);
        let (rs, rport) = ip_dst(syn_out);
        assert!(rs == RS1 || rs == RS2);
        assert_eq!(rport, 80, "port 0 keeps the packet's port");
        assert_eq!(ip_src(syn_out), (CLIENT, 40000), "NAT keeps the client's address");
        let tcp = TcpPacket::new_checked(&syn_out[34..]).unwrap();
        assert_eq!((tcp.flags(), tcp.seq_number()), (flags::SYN, ISN));
        assert_eq!(w.counters().synproxy.cookies_valid.get(), 1);

        // The client's request before the server answered waits for it.
        let request =
            tcp_frame((CLIENT, 40000), (FWM_VIP, 80), ISN + 1, cookie + 1, flags::ACK | flags::PSH, &[], b"GET /");
        assert!(from_client(&mut w, &mut io, request).is_empty());

        let rs_mac = if rs == RS1 { MAC_RS1 } else { MAC_RS2 };
        let synack = tcp_frame((rs, 80), (CLIENT, 40000), SERVER_ISN, ISN + 1, flags::SYN | flags::ACK, &[], &[]);
        w.process(on_wire(rs_mac, MAC_PORT1, &synack), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 2, "the client's ACK and its request, to the server");
        for (port, b) in &sent {
            assert_eq!((*port, ip_dst(b)), (1, (rs, 80)));
            assert_eq!(seq_ack(b), (ISN + 1, SERVER_ISN + 1), "acknowledged in the server's numbering");
            assert_checksums_valid(b);
        }
        let (_, c) = w.director().conns().iter().next().unwrap();
        assert!(matches!(c.proxy(), Proxy::Deltas { .. }));
        assert_eq!(c.state(), State::Established);

        let answer = tcp_frame((rs, 80), (CLIENT, 40000), SERVER_ISN + 1, ISN + 6, flags::ACK, &[], b"200 OK");
        w.process(on_wire(rs_mac, MAC_PORT1, &answer), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        let (port, b) = &sent[0];
        assert_eq!((*port, ip_src(b), ip_dst(b)), (0, (FWM_VIP, 80), (CLIENT, 40000)));
        assert_eq!(seq_ack(b), (cookie + 1, ISN + 6), "the server's bytes in the numbering the client saw");
        assert_checksums_valid(b);

        let dns = udp_frame((CLIENT, 5353), (FWM_VIP, 53), b"query", true);
        let sent = from_client(&mut w, &mut io, dns);
        assert_eq!(sent.len(), 1, "UDP to the proxied mark is scheduled");
        assert_eq!(ip_dst(&sent[0].1).1, 53);
        assert_eq!(w.counters().new_conns.get(), 2);
        assert_eq!(w.counters().total_drops(), 0, "{:?}", w.counters().nonzero_drops());
    }

    /// A proxied Inet service beside the mark: TCP to the marked destination
    /// is scheduled by the mark's service, not answered by the proxy, whose
    /// cookie check an ACK to it never reaches; a TCP packet no rule marks
    /// is not for us.
    #[test]
    fn an_unproxied_fwmark_service_beside_a_proxied_one_is_scheduled_not_proxied() {
        let (mut w, mut io) = worker_with_fwmark(ForwardMethod::Masq, &[ServiceKey::tcp(VIP.into(), 80)]);
        let syn = tcp_frame((CLIENT, 40000), (FWM_VIP, 80), ISN, 0, flags::SYN, &[], &[]);
        let sent = from_client(&mut w, &mut io, syn);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, 1, "the SYN goes to a server, not back to the client");
        assert_eq!(w.counters().synproxy.syn_acks_sent.get(), 0);

        let stray = tcp_frame((CLIENT, 40001), (FWM_VIP, 80), ISN, 1, flags::ACK, &[], &[]);
        assert!(from_client(&mut w, &mut io, stray).is_empty());
        assert_eq!(w.counters().synproxy.cookies_invalid.get(), 0, "no cookie is checked for the mark");

        let unmarked = Ipv4Addr::new(10, 0, 0, 102);
        let syn = tcp_frame((CLIENT, 40002), (unmarked, 80), ISN, 0, flags::SYN, &[], &[]);
        assert!(from_client(&mut w, &mut io, syn).is_empty());
        assert_eq!(w.counters().dropped(Discard::NotForUs), 1);
        assert_eq!(w.director().conns().len(), 1);
    }
}

/// Held addresses (issue 14): with a kernel interface, a VIP or local address
/// is answered and opens connections only while the kernel interfaces carry
/// it; keepalived moves it between directors.
mod held {
    use super::*;

    /// [`net`] with `held` as the kernel interfaces' addresses.
    fn net_holding(held: Option<&[Ipv4Addr]>) -> Arc<NetView> {
        let mut view = Arc::into_inner(net()).unwrap();
        view.held = held.map(|h| h.iter().map(|&a| IpAddr::V4(a)).collect());
        Arc::new(view)
    }

    /// The worker's services, over a view holding `held`.
    fn hold(w: &mut Worker<BufFrame>, held: Option<&[Ipv4Addr]>) {
        let snap = w.director().snapshot().clone();
        w.switch(snap, net_holding(held));
    }

    /// Whether ARP for `target` on `port` is answered.
    fn answers_arp(w: &mut Worker<BufFrame>, io: &mut Recorder, port: u16, target: Ipv4Addr) -> bool {
        w.process(arp_request(CLIENT, MAC_CLIENT, target), port, 1000, io);
        let sent = io.take_sent();
        assert!(sent.len() <= 1);
        sent.first().is_some_and(|(p, reply)| *p == port && reply[20..22] == [0, 2] && reply[28..32] == target.octets())
    }

    fn client(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: &[u8]) -> Vec<(u16, Vec<u8>)> {
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, frame), 0, 1000, io);
        io.take_sent()
    }

    #[test]
    fn arp_for_a_vip_or_local_address_is_answered_only_while_held() {
        let mut w = worker(0, 1, ForwardMethod::FullNat);
        let mut io = Recorder::default();
        hold(&mut w, Some(&[]));
        assert!(!answers_arp(&mut w, &mut io, 0, VIP), "an unheld VIP gets no ARP answer");
        assert!(!answers_arp(&mut w, &mut io, 1, LIP), "an unheld local address gets no ARP answer");
        assert!(answers_arp(&mut w, &mut io, 0, GW_CLIENT_SIDE), "the port's own address is always answered");
        let echo = Icmpv4Repr { msg_type: msg_type::ECHO_REQUEST, msg_code: 0, rest_of_header: 0, data: b"ping" };
        let ping = build::ipv4(CLIENT, VIP).dont_frag(false).icmp(&echo);
        assert!(client(&mut w, &mut io, &ping).is_empty(), "nor is a ping to an unheld VIP");

        hold(&mut w, Some(&[VIP]));
        assert!(answers_arp(&mut w, &mut io, 0, VIP), "held: answered");
        assert!(!answers_arp(&mut w, &mut io, 1, LIP), "the local address is still not held");
        assert_eq!(client(&mut w, &mut io, &ping).len(), 1, "a held VIP answers pings");

        hold(&mut w, Some(&[VIP, LIP, Ipv4Addr::new(10, 0, 0, 77)]));
        assert!(answers_arp(&mut w, &mut io, 1, LIP));
        assert!(
            !answers_arp(&mut w, &mut io, 0, Ipv4Addr::new(10, 0, 0, 77)),
            "holding an address that is no VIP or local address makes it no address of ours"
        );

        // No kernel interface: every address is held, as without this feature.
        hold(&mut w, Some(&[]));
        hold(&mut w, None);
        assert!(answers_arp(&mut w, &mut io, 0, VIP));
        assert!(answers_arp(&mut w, &mut io, 1, LIP));
        assert_eq!(w.counters().dropped(Discard::NotHeld), 0, "ARP and pings are not connections");
    }

    #[test]
    fn a_syn_to_an_unheld_vip_is_dropped_while_its_connections_continue() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        let sent = client(&mut w, &mut io, &syn);
        assert_eq!(sent.len(), 1);
        let (_, lport) = ip_src(&sent[0].1);

        // keepalived moved the VIP and the local address to the other director.
        hold(&mut w, Some(&[]));
        let data = tcp_frame((CLIENT, 40000), (VIP, 80), 2, 1, flags::ACK, &[], b"GET");
        let sent = client(&mut w, &mut io, &data);
        assert_eq!(sent.len(), 1, "the established connection is still forwarded");
        assert_eq!((ip_src(&sent[0].1), ip_dst(&sent[0].1)), ((LIP, lport), (RS1, 8080)));
        let reply = tcp_frame((RS1, 8080), (LIP, lport), 5, 5, flags::ACK, &[], b"200");
        w.process(on_wire(MAC_RS1, MAC_PORT1, &reply), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "a reply to the unheld local address is still forwarded");
        assert_eq!((sent[0].0, ip_src(&sent[0].1), ip_dst(&sent[0].1)), (0, (VIP, 80), (CLIENT, 40000)));

        let syn2 = tcp_frame((CLIENT, 40001), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        assert!(client(&mut w, &mut io, &syn2).is_empty());
        let dns = udp_frame((CLIENT, 5353), (VIP, 53), b"query", true);
        assert!(client(&mut w, &mut io, &dns).is_empty());
        let elsewhere = tcp_frame((CLIENT, 40002), (VIP, 8443), 1, 0, flags::SYN, &[], &[]);
        assert!(client(&mut w, &mut io, &elsewhere).is_empty());
        let c = w.counters();
        assert_eq!(c.dropped(Discard::NotHeld), 3, "each new flow to the unheld VIP counted");
        assert_eq!((c.new_conns.get(), c.total_drops()), (1, 3));

        // A bare SYN on the ports of the connection once it is finished would
        // open it afresh: not while unheld.
        let fin = tcp_frame((CLIENT, 40000), (VIP, 80), 5, 1, flags::RST, &[], &[]);
        assert_eq!(client(&mut w, &mut io, &fin).len(), 1);
        assert!(client(&mut w, &mut io, &syn).is_empty());
        assert_eq!(w.counters().dropped(Discard::NotHeld), 4);

        // Held again: new connections open.
        hold(&mut w, Some(&[VIP, LIP]));
        assert_eq!(client(&mut w, &mut io, &syn2).len(), 1);
        assert_eq!(w.counters().new_conns.get(), 2);
    }

    #[test]
    fn replies_to_an_unheld_local_address_still_reach_their_owner() {
        let mut w0 = worker(0, 2, ForwardMethod::FullNat);
        let mut w1 = worker(1, 2, ForwardMethod::FullNat);
        let (mut io0, mut io1) = (Recorder::default(), Recorder::default());
        resolve(&mut w0, &mut io0, 1000);
        resolve(&mut w1, &mut io1, 1000);
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        let (_, out) = client(&mut w0, &mut io0, &syn).remove(0);
        let (_, lport) = ip_src(&out);
        hold(&mut w0, Some(&[VIP]));
        hold(&mut w1, Some(&[VIP]));

        // The reply lands on worker 1's queue, which has no connection of it.
        let synack = tcp_frame((RS1, 8080), (LIP, lport), 5, 2, flags::SYN | flags::ACK, &[], &[]);
        w1.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io1);
        let (to, frame) = io1.redirected.remove(0);
        assert_eq!(to, 0, "handed to the owner as when held");
        w0.process_redirected(BufFrame::new(&frame), 1, 1000, &mut io0);
        let (port, back) = io0.take_sent().remove(0);
        assert_eq!((port, ip_src(&back), ip_dst(&back)), (0, (VIP, 80), (CLIENT, 40000)));
        assert_eq!(w0.counters().total_drops() + w1.counters().total_drops(), 0);
    }

    #[test]
    fn icmp_errors_about_a_connection_of_an_unheld_local_address_still_reach_its_client() {
        let mut w = worker(0, 1, ForwardMethod::FullNat);
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        let (_, sent) = client(&mut w, &mut io, &syn).remove(0);
        let (lip, lport) = ip_src(&sent);
        // keepalived moved the VIP and the local address to the other director.
        hold(&mut w, Some(&[]));

        let unreachable = crate::xmit::test_support::icmp_error(RS1, lip, 3, 3, &sent[14..], 28);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &unreachable), 1, 1000, &mut io);
        let (port, out) = io.take_sent().remove(0);
        assert_eq!((port, ip_src(&out).0, ip_dst(&out).0), (0, VIP, CLIENT), "relayed to the client as when held");
        assert_eq!(w.counters().icmp_errors_relayed.get(), 1);

        // One about no connection is nobody's: not_held, not the kernel's.
        let mut stranger = sent.clone();
        stranger[36..38].copy_from_slice(&(lport ^ 1).to_be_bytes());
        let unknown = crate::xmit::test_support::icmp_error(RS1, lip, 3, 3, &stranger[14..], 28);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &unknown), 1, 1000, &mut io);
        assert!(io.take_sent().is_empty() && io.kernel.is_empty());
        assert_eq!(w.counters().dropped(Discard::NotHeld), 1);
        assert_eq!(w.counters().dropped(Discard::NotForUs), 0);
    }

    #[test]
    fn an_unheld_vip_gets_no_cookie_and_a_fwmark_destination_is_unaffected() {
        let vip = ServiceKey::tcp(VIP.into(), 80);
        let (mut w, mut io) = super::fwmark::worker_with_fwmark(ForwardMethod::Masq, &[vip]);
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        let sent = client(&mut w, &mut io, &syn);
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].0, ip_src(&sent[0].1)), (0, (VIP, 80)), "held: the SYN proxy answers");

        hold(&mut w, Some(&[]));
        assert!(client(&mut w, &mut io, &syn).is_empty(), "unheld: no SYN-ACK");
        assert_eq!(w.counters().dropped(Discard::NotHeld), 1);
        let fwm = tcp_frame((CLIENT, 40001), (super::fwmark::FWM_VIP, 80), 1, 0, flags::SYN, &[], &[]);
        let sent = client(&mut w, &mut io, &fwm);
        assert_eq!(sent.len(), 1, "the fwmark service's destination is not a VIP: it is scheduled as ever");
        assert_eq!(sent[0].0, 1);
        assert_eq!(w.counters().dropped(Discard::NotHeld), 1);
    }
}

/// The gateway's own traffic toward the ports' kernel interfaces (see
/// `pipeline::kernel` for the rules).
mod kernel_path {
    use super::*;
    use crate::net::exception::KernelRate;
    use crate::net::KernelClass::{self, Bulk, Control};
    use crate::xmit::test_support::icmp_error;

    const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const MAC_PEER: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x02]);
    const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 99);
    const MAC_VRRP: MacAddr = MacAddr([0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);

    /// [`net`], with a kernel interface on both ports or on none.
    fn net_with_kernel(kernel: bool) -> Arc<NetView> {
        let mut ports = net().ports.clone();
        for p in &mut ports {
            p.kernel = kernel;
        }
        Arc::new(NetView::with_connected_routes(ports, &[]).unwrap())
    }

    /// A FNAT worker (one of `workers`) with neighbours resolved and the
    /// kernel rates `rate`.
    fn worker_with(kernel: bool, rate: KernelRate, workers: u16) -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(0, workers);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        cfg.kernel_rate = rate;
        let snap = service(ForwardMethod::FullNat, SchedulerKind::Rr);
        let mut w = Worker::new(&cfg, snap.clone(), net_with_kernel(false), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        io.freed = 0;
        // The kernel interfaces appear once the neighbours are known: their
        // ARP replies are not what the tests count.
        w.switch(snap, net_with_kernel(kernel));
        (w, io)
    }

    fn kernel_worker() -> (Worker<BufFrame>, Recorder) {
        worker_with(true, KernelRate::default(), 1)
    }

    fn ip_proto_frame(protocol: u8, dst: Ipv4Addr, dst_mac: MacAddr) -> Vec<u8> {
        build::ipv4(PEER, dst)
            .macs(MAC_PEER, dst_mac)
            .ttl(255)
            .ip_payload(protocol, &[0x21, 0x01, 0x64, 0x01, 0, 0, 0, 0])
    }

    const PEER6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

    /// A neighbour solicitation from a peer for another peer's address.
    fn ns_for_another() -> Vec<u8> {
        build::neighbor_solicit(MAC_PEER, PEER6, std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))
    }

    /// A router advertisement to all nodes.
    fn router_advert() -> Vec<u8> {
        let ra = crate::wire::icmpv6::NdiscRepr::RouterAdvert {
            hop_limit: 64,
            flags: 0,
            router_lifetime: 1800,
            reachable_time: 0,
            retrans_timer: 0,
            lladdr: Some(MAC_PEER),
            mtu: None,
        };
        let all_nodes = crate::wire::ipv6::ALL_NODES;
        build::ipv6(PEER6, all_nodes).macs(MAC_PEER, build::multicast_mac(all_nodes)).hop_limit(255).ndisc(&ra)
    }

    /// An IPv6 TCP SYN to `dst_mac`, for an address that is none of ours.
    fn ipv6_syn(dst_mac: MacAddr) -> Vec<u8> {
        let dst = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
        let syn = build::tcp_frame_v6((PEER6, 40000), (dst, 22), 1, 0, flags::SYN, &[], &[]);
        on_wire(MAC_PEER, dst_mac, &syn).data().to_vec()
    }

    fn lldp_frame() -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
        f.extend_from_slice(&MAC_PEER.0);
        f.extend_from_slice(&[0x88, 0xcc, 0x02, 0x07, 0x04, 0x52, 0x54, 0, 0, 0, 0x02, 0, 0]);
        f
    }

    fn echo(msg_type: u8, dst: Ipv4Addr) -> Vec<u8> {
        let echo = Icmpv4Repr { msg_type, msg_code: 0, rest_of_header: 0x0042_0001, data: b"ping" };
        build::ipv4(PEER, dst).macs(MAC_PEER, MAC_PORT0).icmp(&echo)
    }

    /// What the kernel's own traffic looks like, each with the class it goes
    /// to the kernel as, and the drop it is on a port without a kernel
    /// interface (`None`: an ARP frame the worker consumes, freed).
    fn the_kernels_own() -> Vec<(&'static str, Vec<u8>, KernelClass, Option<Discard>)> {
        let ssh_to_us = tcp_frame((PEER, 40000), (GW_CLIENT_SIDE, 22), 1, 0, flags::SYN, &[], &[]);
        let ssh_to_vip = tcp_frame((PEER, 40000), (VIP, 22), 1, 1, flags::ACK | flags::PSH, &[], b"ls\n");
        let syn_to_vip_no_service = tcp_frame((PEER, 40000), (VIP, 81), 1, 0, flags::SYN, &[], &[]);
        let udp_to_vip_no_service = udp_frame((PEER, 5000), (VIP, 54), b"q", true);
        let bgp_in = tcp_frame((PEER, 179), (GW_CLIENT_SIDE, 40000), 1, 1, flags::ACK, &[], b"keepalive");
        let bgp_out = with_ttl(tcp_frame((PEER, 40001), (GW_CLIENT_SIDE, 179), 1, 0, flags::SYN, &[], &[]), 1);
        let ssh_ttl1 = with_ttl(tcp_frame((PEER, 40002), (GW_CLIENT_SIDE, 22), 1, 0, flags::SYN, &[], &[]), 1);
        let never_sent = tcp_frame((GW_CLIENT_SIDE, 22), (PEER, 40000), 1, 0, flags::SYN | flags::ACK, &[], &[]);
        let unreachable = icmp_error(PEER, GW_CLIENT_SIDE, 3, 3, &never_sent[14..], 28);
        let bcast = |dst| udp_frame((PEER, 68), (dst, 67), b"dhcp", true);
        let mdns = udp_frame((PEER, 5353), (Ipv4Addr::new(224, 0, 0, 251), 5353), b"mdns", true);
        let mut gratuitous = arp_request(PEER, MAC_PEER, PEER).data().to_vec();
        gratuitous[..6].copy_from_slice(&MacAddr::BROADCAST.0);
        vec![
            ("ssh to our address", ssh_to_us, Bulk, Some(Discard::LocalUnhandled)),
            ("ssh to the VIP, no service on 22", ssh_to_vip, Bulk, Some(Discard::NoConnection)),
            ("SYN to the VIP, no service on 81", syn_to_vip_no_service, Bulk, Some(Discard::NoService)),
            ("UDP to the VIP, no service on 54", udp_to_vip_no_service, Bulk, Some(Discard::NoService)),
            ("BGP from the peer's port 179", bgp_in, Control, Some(Discard::LocalUnhandled)),
            ("eBGP open, TTL 1", bgp_out, Control, Some(Discard::Wire(DropReason::TtlExpired))),
            ("ssh with TTL 1", ssh_ttl1, Bulk, Some(Discard::Wire(DropReason::TtlExpired))),
            (
                "echo reply to the kernel's ping",
                echo(msg_type::ECHO_REPLY, GW_CLIENT_SIDE),
                Bulk,
                Some(Discard::LocalUnhandled),
            ),
            ("port unreachable about no connection", unreachable, Bulk, Some(Discard::NoConnection)),
            ("UDP to the limited broadcast", bcast(Ipv4Addr::BROADCAST), Bulk, Some(Discard::NotForUs)),
            ("UDP to the directed broadcast", bcast(Ipv4Addr::new(10, 0, 0, 255)), Bulk, Some(Discard::NotForUs)),
            ("UDP to a multicast group", mdns, Bulk, Some(Discard::NotForUs)),
            (
                "VRRP advert",
                ip_proto_frame(112, Ipv4Addr::new(224, 0, 0, 18), MAC_VRRP),
                Control,
                Some(DropReason::UnknownProtocol.into()),
            ),
            (
                "IGMP report",
                ip_proto_frame(2, Ipv4Addr::new(224, 0, 0, 22), MAC_VRRP),
                Control,
                Some(DropReason::UnknownProtocol.into()),
            ),
            (
                "OSPF hello",
                ip_proto_frame(89, Ipv4Addr::new(224, 0, 0, 5), MAC_VRRP),
                Control,
                Some(DropReason::UnknownProtocol.into()),
            ),
            (
                "GRE to our address",
                ip_proto_frame(47, GW_CLIENT_SIDE, MAC_PORT0),
                Bulk,
                Some(DropReason::UnknownProtocol.into()),
            ),
            ("GRE to the VIP", ip_proto_frame(47, VIP, MAC_PORT0), Bulk, Some(DropReason::UnknownProtocol.into())),
            ("IPv6 neighbour solicitation for another address", ns_for_another(), Control, None),
            (
                "IPv6 router advertisement",
                router_advert(),
                Control,
                Some(Discard::Ndisc(crate::net::ndisc::NdiscDrop::NotNeighbour)),
            ),
            ("IPv6 to our MAC, not our address", ipv6_syn(MAC_PORT0), Bulk, Some(Discard::NotForUs)),
            ("LLDP", lldp_frame(), Bulk, Some(DropReason::UnsupportedEthertype.into())),
            ("ARP request for another address", arp_request(PEER, MAC_PEER, ELSEWHERE).data().to_vec(), Control, None),
            ("ARP reply", arp_reply(PEER, MAC_PEER, GW_CLIENT_SIDE, MAC_PORT0).data().to_vec(), Control, None),
            ("gratuitous ARP", gratuitous, Control, None),
        ]
    }

    #[test]
    fn the_kernels_own_traffic_goes_to_the_kernel_as_it_came_with_its_class() {
        for (what, bytes, class, _) in the_kernels_own() {
            let (mut w, mut io) = kernel_worker();
            w.process(BufFrame::new(&bytes), 0, 1000, &mut io);
            assert_eq!(io.kernel, vec![(0, class, bytes.clone())], "{what}");
            assert!(io.sent.is_empty(), "{what}: nothing answered or forwarded: {:?}", io.sent);
            assert_eq!((io.freed, w.counters().total_drops()), (0, 0), "{what}: {:?}", w.counters().nonzero_drops());
            let counted = w.counters().kernel.nonzero();
            assert_eq!(
                counted,
                [crate::worker::counters::KernelCount { port: 0, class, handed: 1, rate_limited: 0 }],
                "{what}"
            );
            assert_eq!(w.director().conns().len(), 0, "{what}: no connection");
        }
    }

    #[test]
    fn without_a_kernel_interface_the_same_traffic_is_dropped_as_before() {
        for (what, bytes, _, drop) in the_kernels_own() {
            let (mut w, mut io) = worker_with(false, KernelRate::default(), 1);
            w.process(BufFrame::new(&bytes), 0, 1000, &mut io);
            assert!(io.kernel.is_empty(), "{what}");
            let drops = w.counters().nonzero_drops();
            // A router's answer to TTL 1, as before, in the frame itself.
            let answers = io.sent.iter().filter(|(_, b)| b[34] == 11).count();
            assert_eq!(answers, usize::from(drop == Some(DropReason::TtlExpired.into())), "{what}");
            assert_eq!(io.freed + answers, 1, "{what}");
            match drop {
                Some(reason) => assert_eq!(drops, [(reason.name(), 1)], "{what}"),
                None => assert!(drops.is_empty() && io.sent.is_empty(), "{what}: an ARP frame consumed: {drops:?}"),
            }
            assert!(w.counters().kernel.nonzero().is_empty(), "{what}");
        }
    }

    #[test]
    fn arp_is_learned_before_it_goes_to_the_kernel() {
        let (mut w, mut io) = kernel_worker();
        w.process(arp_reply(PEER, MAC_PEER, GW_CLIENT_SIDE, MAC_PORT0), 0, 1000, &mut io);
        assert_eq!(w.neighbours().lookup(PEER, 1000).map(|n| n.mac), Some(MAC_PEER), "a reply to us is learned");
        assert_eq!(io.kernel.len(), 1);
        // A server's new MAC, announced by gratuitous ARP: the entry follows it
        // and the kernel hears it too.
        let moved = MacAddr([0x52, 0x54, 0, 0, 1, 0x99]);
        let mut gratuitous = arp_request(RS1, moved, RS1).data().to_vec();
        gratuitous[..6].copy_from_slice(&MacAddr::BROADCAST.0);
        w.process(BufFrame::new(&gratuitous), 1, 1000, &mut io);
        assert_eq!(w.neighbours().lookup(RS1, 1000).map(|n| n.mac), Some(moved));
        assert_eq!(io.kernel[1], (1, Control, gratuitous));
    }

    #[test]
    fn vip_traffic_and_the_workers_own_answers_never_reach_the_kernel() {
        let (mut w, mut io) = kernel_worker();
        // A connection through the VIP, both ways.
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let (_, out) = io.take_sent().remove(0);
        let lport = ip_src(&out).1;
        let synack = tcp_frame((RS1, 8080), (LIP, lport), 5, 2, flags::SYN | flags::ACK, &[], &[]);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io);
        let dns = udp_frame((CLIENT, 5353), (VIP, 53), b"query", true);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &dns), 0, 1000, &mut io);
        assert_eq!(io.take_sent().len(), 2, "the SYN-ACK and the query are forwarded");
        // ARP and ping for our addresses: the worker answers alone.
        for target in [VIP, GW_CLIENT_SIDE] {
            w.process(arp_request(CLIENT, MAC_CLIENT, target), 0, 1000, &mut io);
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &echo(msg_type::ECHO_REQUEST, target)), 0, 1000, &mut io);
        }
        w.process(arp_request(RS1, MAC_RS1, LIP), 1, 1000, &mut io);
        assert_eq!(io.take_sent().len(), 5, "three ARP replies, two echo replies");
        // A service's packets of no connection stay the datapath's drops.
        let stray_ack = tcp_frame((CLIENT, 40001), (VIP, 80), 1, 1, flags::ACK, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &stray_ack), 0, 1000, &mut io);
        let late_reply = tcp_frame((RS1, 8080), (LIP, lport ^ 0x100), 5, 2, flags::ACK, &[], &[]);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &late_reply), 1, 1000, &mut io);
        let ttl1 = with_ttl(tcp_frame((CLIENT, 40002), (VIP, 80), 1, 0, flags::SYN, &[], &[]), 1);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &ttl1), 0, 1000, &mut io);
        assert_eq!(io.take_sent().len(), 1, "time exceeded, as a router's");
        // Not ours at all: transit, and other hosts' unicast MACs.
        let transit = tcp_frame((CLIENT, 40003), (ELSEWHERE, 22), 1, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &transit), 0, 1000, &mut io);
        w.process(BufFrame::new(&ip_proto_frame(47, ELSEWHERE, MAC_PORT0)), 0, 1000, &mut io);
        w.process(BufFrame::new(&ipv6_syn(MAC_CLIENT)), 0, 1000, &mut io);
        w.process(BufFrame::new(&echo(msg_type::ECHO_REPLY, ELSEWHERE)), 0, 1000, &mut io);

        assert!(io.kernel.is_empty(), "{:?}", io.kernel);
        assert!(w.counters().kernel.nonzero().is_empty());
        let c = w.counters();
        assert_eq!(c.dropped(Discard::NoConnection), 2, "{:?}", c.nonzero_drops());
        assert_eq!(c.dropped(DropReason::TtlExpired.into()), 1);
        assert_eq!(c.dropped(Discard::NotForUs), 3);
        assert_eq!(c.dropped(DropReason::UnknownProtocol.into()), 1);
    }

    #[test]
    fn malformed_packets_to_us_stay_counted_drops() {
        let (mut w, mut io) = kernel_worker();
        let ssh = tcp_frame((PEER, 40000), (GW_CLIENT_SIDE, 22), 1, 0, flags::SYN, &[], &[]);
        let mut bad_sum = ssh.clone();
        bad_sum[24] ^= 0xff;
        let mut frag = with_ttl(ssh.clone(), 64);
        frag[20] |= 0x20;
        let frag = with_ttl(frag, 64);
        let mut bad_op = arp_request(PEER, MAC_PEER, ELSEWHERE).data().to_vec();
        bad_op[21] = 9;
        let vrrp = ip_proto_frame(112, Ipv4Addr::new(224, 0, 0, 18), MAC_VRRP);
        let mut vrrp_bad_len = vrrp.clone();
        vrrp_bad_len[16..18].copy_from_slice(&0xffffu16.to_be_bytes());
        for bytes in [&ssh[..30], &bad_sum, &frag, &bad_op, &vrrp_bad_len, &lldp_frame()[..13]] {
            w.process(BufFrame::new(bytes), 0, 1000, &mut io);
        }
        assert!(io.kernel.is_empty(), "{:?}", io.kernel);
        let c = w.counters();
        for (reason, n) in [
            (Discard::Wire(DropReason::Truncated), 2),
            (Discard::Wire(DropReason::BadIpChecksum), 1),
            (Discard::Wire(DropReason::Fragment), 1),
            (Discard::Wire(DropReason::BadTotalLength), 1),
            (Discard::BadArp, 1),
        ] {
            assert_eq!(c.dropped(reason), n, "{}: {:?}", reason.name(), c.nonzero_drops());
        }
        assert_eq!(io.freed, 6);
    }

    #[test]
    fn a_bulk_flood_is_rate_limited_while_control_still_passes() {
        // 300 bulk and 30 control a second per port, over 3 workers: this
        // worker's share is 100 and 10.
        let (mut w, mut io) = worker_with(true, KernelRate { control: 30, bulk: 300 }, 3);
        let flood = tcp_frame((PEER, 40000), (GW_CLIENT_SIDE, 22), 1, 0, flags::SYN, &[], &[]);
        let vrrp = ip_proto_frame(112, Ipv4Addr::new(224, 0, 0, 18), MAC_VRRP);
        for second in [1000, 1001] {
            for i in 0..1000 {
                w.process(BufFrame::new(&flood), 0, second, &mut io);
                if i % 100 == 0 {
                    w.process(BufFrame::new(&vrrp), 0, second, &mut io);
                }
            }
        }
        let handed = |class| io.kernel.iter().filter(|(_, c, _)| *c == class).count();
        assert_eq!((handed(Control), handed(Bulk)), (20, 200), "every advert, and 100 of the flood a second");
        let c = w.counters().clone();
        assert_eq!(c.dropped(Discard::KernelRateLimited), 1800);
        let count = |port, class, handed, rate_limited| crate::worker::counters::KernelCount {
            port,
            class,
            handed,
            rate_limited,
        };
        assert_eq!(c.kernel.nonzero(), [count(0, Control, 20, 0), count(0, Bulk, 200, 1800)]);

        // The other port has its own buckets; a control flood beyond its rate is limited too.
        let arp = arp_request(RS1, MAC_RS1, Ipv4Addr::new(192, 168, 1, 99)).data().to_vec();
        for _ in 0..15 {
            w.process(BufFrame::new(&arp), 1, 1001, &mut io);
        }
        assert_eq!(c.kernel.nonzero()[2..], [count(1, Control, 10, 5)]);
    }

    /// A local address that is also an interface address: the kernel's own
    /// connections from it come back as replies to a local port; what no
    /// connection of the datapath's takes is the kernel's, through the
    /// port's owner.
    #[test]
    fn a_local_address_that_is_an_interface_address_shares_it_with_the_kernel() {
        let mut ports = net_with_kernel(true).ports.clone();
        ports[1].addrs.push(cidr("192.168.1.200/24"));
        let net = Arc::new(NetView::with_connected_routes(ports, &[]).unwrap());
        let (mut w, mut io) = worker_with(true, KernelRate::default(), 2);
        w.switch(w.director().snapshot().clone(), net);
        let from_server = |frame: Vec<u8>| on_wire(MAC_RS1, MAC_PORT1, &frame).data().to_vec();
        let ssh = from_server(tcp_frame((RS1, 40000), (LIP, 22), 1, 0, flags::SYN, &[], &[]));
        w.process(BufFrame::new(&ssh), 1, 1000, &mut io);
        assert_eq!(io.kernel, [(1, Bulk, ssh)], "port 22 is no worker's local port");
        let partition = crate::model::laddr::PortPartition::new(2, 0).unwrap();
        let mine = (1024..).find(|&p| partition.owner(p) == 0).unwrap();
        let reply = from_server(tcp_frame((RS1, 179), (LIP, mine), 1, 1, flags::ACK, &[], &[]));
        w.process(BufFrame::new(&reply), 1, 1000, &mut io);
        assert_eq!(io.kernel[1], (1, Control, reply), "BGP from the local address");
        let theirs = (1024..).find(|&p| partition.owner(p) == 1).unwrap();
        let reply = from_server(tcp_frame((RS1, 8080), (LIP, theirs), 1, 1, flags::ACK, &[], &[]));
        w.process(BufFrame::new(&reply), 1, 1000, &mut io);
        assert_eq!(io.redirected, [(1, reply)], "the owner decides");
        assert_eq!(w.counters().total_drops(), 0, "{:?}", w.counters().nonzero_drops());
    }
}

/// Connection sync between two workers standing for two directors: the
/// master's worker queues records as the rules of `crate::sync` say, and the
/// backup's installs them and carries the connection on.
mod sync {
    use super::*;
    use crate::conn::State;
    use crate::sync::queue::{queues, DaemonQueues, Refusal};
    use crate::sync::wire::{ConnRepr, Record};

    fn synced(method: ForwardMethod) -> (Worker<BufFrame>, Recorder, DaemonQueues) {
        let (mut w, io) = resolved(method);
        let (daemon, mut ends) = queues(1);
        w.set_sync(ends.pop().unwrap());
        (w, io, daemon)
    }

    /// What the worker queued by the end of its loop iteration at `now`.
    fn records(w: &mut Worker<BufFrame>, daemon: &DaemonQueues, now: u32) -> Vec<ConnRepr<Ipv4Addr>> {
        w.expire(now);
        let v4 = |r| match r {
            Record::V4(r) => r,
            Record::V6(r) => panic!("an IPv6 record of an IPv4 connection: {r:?}"),
        };
        daemon.from_workers[0].try_iter().map(v4).collect()
    }

    fn client(w: &mut Worker<BufFrame>, io: &mut Recorder, flags: u8, payload: &[u8], now: u32) {
        let f = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags, &[], payload);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &f), 0, now, io);
    }

    #[test]
    fn an_established_fnat_connection_moves_to_the_backup_and_carries_on() {
        let (mut master, mut io, daemon) = synced(ForwardMethod::FullNat);
        daemon.master.set(true);
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 0, flags::SYN, &[], &[]);
        master.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let (_, lport) = ip_src(&io.take_sent()[0].1);
        assert!(records(&mut master, &daemon, 1000).is_empty(), "SYN_RECV is never synced");
        let synack = tcp_frame((RS1, 8080), (LIP, lport), 5000, 1001, flags::SYN | flags::ACK, &[], &[]);
        master.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io);
        assert!(records(&mut master, &daemon, 1000).is_empty());
        client(&mut master, &mut io, flags::ACK, &[], 1001);
        let sent = records(&mut master, &daemon, 1001);
        assert_eq!(sent.len(), 1, "synced once it is established");
        let record = sent[0];
        assert_eq!((record.protocol, record.state, record.timeout_secs), (6, 1, 900));
        assert_eq!(record.client, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(record.real_server, std::net::SocketAddrV4::new(RS1, 8080));
        assert_eq!(record.fnat_local, Some(std::net::SocketAddrV4::new(LIP, lport)));
        client(&mut master, &mut io, flags::ACK | flags::PSH, b"more", 1002);
        assert!(records(&mut master, &daemon, 1002).is_empty(), "no state change, no record");
        assert_eq!(master.counters().sync.queued.get(), 1);

        // The backup installs it; the real server is counted active once.
        let (mut backup, mut bio, bdaemon) = synced(ForwardMethod::FullNat);
        bdaemon.to_workers[0].send(record.into()).unwrap();
        backup.take_synced(1010);
        let c = backup.counters().clone();
        assert_eq!((c.sync.installed.get(), c.sync.updated.get()), (1, 0));
        let rs1 = backup.director().snapshot().services()[0].dests()[0].counters().clone();
        assert_eq!((rs1.active(), rs1.inactive()), (1, 0));
        let (id, _) = backup.director().conns().iter().next().unwrap();
        let conn = backup.director().conn(id);
        assert_eq!((conn.state(), conn.expires()), (State::Established, 1010 + 900 + crate::sync::BACKUP_GRACE_SECS));
        assert_eq!(backup.director().pools().pool(LIP.into()).unwrap().in_use(), 1, "the port is taken");

        // Client data and the server's reply pass through the backup, as through the master.
        client(&mut backup, &mut bio, flags::ACK | flags::PSH, b"after failover", 1011);
        let reply = tcp_frame((RS1, 8080), (LIP, lport), 5001, 1015, flags::ACK, &[], b"ok");
        backup.process(on_wire(MAC_RS1, MAC_PORT1, &reply), 1, 1011, &mut bio);
        let sent = bio.take_sent();
        assert_eq!(sent.len(), 2, "both forwarded: {:?}", backup.counters().total_drops());
        assert_eq!((ip_src(&sent[0].1), ip_dst(&sent[0].1)), ((LIP, lport), (RS1, 8080)));
        assert_eq!((ip_src(&sent[1].1), ip_dst(&sent[1].1)), ((VIP, 80), (CLIENT, 40000)));

        // The same record again refreshes, counting nothing twice.
        bdaemon.to_workers[0].send(record.into()).unwrap();
        backup.take_synced(1050);
        assert_eq!((c.sync.installed.get(), c.sync.updated.get()), (1, 1));
        assert_eq!((rs1.active(), rs1.inactive()), (1, 0));

        // The master's FIN moves it on, synced; the old ESTABLISHED record is then stale.
        client(&mut master, &mut io, flags::FIN | flags::ACK, &[], 1003);
        let fin = records(&mut master, &daemon, 1003);
        assert_eq!(fin.len(), 1);
        assert_eq!(fin[0].state, 7, "CLOSE_WAIT (IPVS names the state after the client's FIN so)");
        for r in [fin[0], record] {
            bdaemon.to_workers[0].send(r.into()).unwrap();
        }
        backup.take_synced(1060);
        assert_eq!(c.sync.updated.get(), 2);
        assert_eq!(c.sync.refused[Refusal::Stale.index()].get(), 1);
        assert_eq!(backup.director().conn(id).state(), State::CloseWait);
        assert_eq!((rs1.active(), rs1.inactive()), (0, 1));

        // What this backup cannot carry is refused, by reason.
        let other_client = ConnRepr { client: "10.0.0.2:1".parse().unwrap(), ..record };
        let cases = [
            (ConnRepr { virtual_service: "10.0.0.100:81".parse().unwrap(), ..record }, Refusal::NoService),
            (ConnRepr { real_server: "192.168.1.99:8080".parse().unwrap(), ..other_client }, Refusal::NoDest),
            (
                ConnRepr { fnat_local: Some("192.168.1.77:2000".parse().unwrap()), ..other_client },
                Refusal::NoLocalAddress,
            ),
            (other_client, Refusal::PortInUse),
            (ConnRepr { real_server: std::net::SocketAddrV4::new(RS2, 8080), ..record }, Refusal::Conflict),
            (ConnRepr { flags: crate::sync::wire::conn_flags::TEMPLATE, ..other_client }, Refusal::Unsupported),
        ];
        for (r, _) in &cases {
            bdaemon.to_workers[0].send((*r).into()).unwrap();
        }
        backup.take_synced(1070);
        for (_, why) in cases {
            assert_eq!(c.sync.refused[why.index()].get(), 1 + u64::from(why == Refusal::Stale), "{why:?}");
        }
        assert_eq!(backup.director().conns().len(), 1, "nothing half-installed");
        assert_eq!(backup.director().pools().pool(LIP.into()).unwrap().in_use(), 1);

        // Without a master running, the workers queue nothing.
        daemon.master.set(false);
        client(&mut master, &mut io, flags::RST, &[], 1004);
        assert!(records(&mut master, &daemon, 1004).is_empty());
    }

    #[test]
    fn udp_is_synced_at_its_first_reply_then_on_refreshes() {
        let (mut master, mut io, daemon) = synced(ForwardMethod::Masq);
        daemon.master.set(true);
        let query = udp_frame((CLIENT, 5353), (VIP, 53), b"q", true);
        master.process(on_wire(MAC_CLIENT, MAC_PORT0, &query), 0, 1000, &mut io);
        master.process(on_wire(MAC_CLIENT, MAC_PORT0, &query), 0, 1000, &mut io);
        assert!(records(&mut master, &daemon, 1000).is_empty(), "no reply yet: maybe a one-way flow");
        let answer = udp_frame((RS1, 53), (CLIENT, 5353), b"a", true);
        master.process(on_wire(MAC_RS1, MAC_PORT1, &answer), 1, 1001, &mut io);
        master.process(on_wire(MAC_RS1, MAC_PORT1, &answer), 1, 1001, &mut io);
        let sent = records(&mut master, &daemon, 1001);
        assert_eq!(sent.len(), 1, "the first reply syncs it, once");
        assert_eq!((sent[0].protocol, sent[0].state, sent[0].fnat_local), (17, 0, None));
        assert_eq!(sent[0].timeout_secs, 300);
        // A packet at 1200 moves the deadline past the one it was filed by
        // (1301): the wheel re-files it then, and the refresh carries the rest.
        master.process(on_wire(MAC_CLIENT, MAC_PORT0, &query), 0, 1200, &mut io);
        for now in 1290..1320 {
            master.expire(now);
        }
        let refresh = records(&mut master, &daemon, 1320);
        assert_eq!(refresh.len(), 1, "one refresh when the wheel re-files it");
        assert!((180..=200).contains(&refresh[0].timeout_secs), "{}", refresh[0].timeout_secs);
    }
}

/// The health checker's probes: sent as the prober hands them, replies handed back.
mod probes {
    use super::*;
    use crate::net::probe::{self, PROBE_PORTS};

    /// A probe frame as the prober's link makes it: the route target, then the packet.
    fn probe_frame(toward: Ipv4Addr, ip_packet: &[u8]) -> BufFrame {
        let mut bytes = Vec::new();
        probe::emit(toward, ip_packet, &mut bytes);
        BufFrame::new(&bytes)
    }

    #[test]
    fn a_probe_is_routed_toward_its_target_and_waits_for_arp_like_any_packet() {
        let mut w = worker(0, 1, ForwardMethod::DirectRoute);
        let mut io = Recorder::default();
        // A DR probe: addressed to the VIP, routed toward the server.
        let syn = tcp_frame((GW_SERVER_SIDE, 64600), (VIP, 80), 7, 0, flags::SYN, &[], &[]);
        w.send_probe(probe_frame(RS1, &syn[14..]), 1000, &mut io);
        let sent = io.take_sent();
        let mut want = BufFrame::new(&[]);
        crate::net::arp::write_arp_request(&mut want, MAC_PORT1, GW_SERVER_SIDE, RS1).unwrap();
        assert_eq!(sent, vec![(1, want.data().to_vec())], "who-has the server, not the VIP");
        w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1);
        let (port, out) = &sent[0];
        assert_eq!(*port, 1);
        assert_eq!(macs(out), (MAC_RS1, MAC_PORT1), "to the server's MAC");
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        assert_eq!(&out[14..], &syn[14..], "the packet itself untouched");
        assert_eq!(w.counters().probes_sent.get(), 1);
    }

    #[test]
    fn a_probe_without_a_route_or_a_whole_header_is_counted_and_freed() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        let freed = io.freed;
        let syn = tcp_frame((LIP, 64600), (RS1, 8080), 7, 0, flags::SYN, &[], &[]);
        w.send_probe(probe_frame(Ipv4Addr::new(172, 16, 0, 1), &syn[14..]), 1000, &mut io);
        w.send_probe(BufFrame::new(&[192, 168, 1, 10, 0x45]), 1000, &mut io);
        assert!(io.take_sent().is_empty());
        assert_eq!((w.counters().dropped(Discard::NoRoute), w.counters().dropped(Discard::BadProbe)), (1, 1));
        assert_eq!(io.freed - freed, 2);
        assert_eq!(w.counters().probes_sent.get(), 0);
    }

    #[test]
    fn replies_to_probe_ports_go_to_the_prober_and_nothing_else_does() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        // FNAT: the server answers the local address; NAT, DR, TUN: the gateway's address.
        let to_lip = tcp_frame((RS1, 8080), (LIP, *PROBE_PORTS.start()), 9, 8, flags::SYN | flags::ACK, &[], &[]);
        let to_gw = tcp_frame((VIP, 80), (GW_SERVER_SIDE, *PROBE_PORTS.end()), 9, 8, flags::RST, &[], &[]);
        let (to_lip, to_gw) = (on_wire(MAC_RS1, MAC_PORT1, &to_lip), on_wire(MAC_RS1, MAC_PORT1, &to_gw));
        let want = vec![to_lip.data().to_vec(), to_gw.data().to_vec()];
        w.process(to_lip, 1, 1000, &mut io);
        w.process(to_gw, 1, 1000, &mut io);
        assert_eq!(io.prober, want, "as received");
        assert_eq!(w.counters().probe_replies.get(), 2);
        // Below the probe ports: a reply to an unused local port, a packet to the gateway.
        let below = *PROBE_PORTS.start() - 1;
        let other = tcp_frame((RS1, 8080), (LIP, below), 9, 8, flags::ACK, &[], &[]);
        let local = tcp_frame((RS1, 8080), (GW_SERVER_SIDE, below), 9, 8, flags::ACK, &[], &[]);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &other), 1, 1000, &mut io);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &local), 1, 1000, &mut io);
        assert_eq!(io.prober.len(), 2);
        assert_eq!(w.counters().dropped(Discard::NoConnection), 1);
        assert_eq!(w.counters().dropped(Discard::LocalUnhandled), 1);
        // A probe port of an address that is not ours is not a probe's.
        let stranger = tcp_frame((RS1, 8080), (Ipv4Addr::new(192, 168, 1, 77), 65000), 9, 8, flags::ACK, &[], &[]);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &stranger), 1, 1000, &mut io);
        assert_eq!((io.prober.len(), w.counters().dropped(Discard::NotForUs)), (2, 1));
    }

    #[test]
    fn an_icmp_error_about_a_probe_goes_to_the_prober() {
        let (mut w, mut io) = resolved(ForwardMethod::Masq);
        // The server's port unreachable about a UDP probe from the gateway's address.
        let probe = crate::wire::build::udp_frame((GW_SERVER_SIDE, 65000), (RS1, 53), b"ping", true);
        let error = crate::xmit::test_support::icmp_error(RS1, GW_SERVER_SIDE, 3, 3, &probe[14..], 32);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &error), 1, 1000, &mut io);
        assert_eq!(io.prober.len(), 1);
        assert!(io.kernel.is_empty() && io.sent.is_empty());
    }
}

/// Connections of a service sending a PROXY protocol header, through the
/// whole pipeline.
mod proxy_header {
    use super::*;
    use crate::wire::proxy_protocol::{Repr, Version};

    const ISN: u32 = 0xffff_fff0;

    fn worker_sending(method: ForwardMethod, version: Version, synproxy: bool) -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        let key = ServiceKey::tcp(VIP.into(), 80);
        let mut ed = service(method, SchedulerKind::Rr).edit();
        let spec = *ed.current().service(ed.current().service_id(&key).unwrap()).spec();
        ed.edit_service(ServiceSpec { proxy_protocol: Some(version), synproxy, ..spec }).unwrap();
        let mut w = Worker::new(&cfg, ed.finish(), net(), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        (w, io)
    }

    fn seq_ack(b: &[u8]) -> (u32, u32) {
        let tcp = TcpPacket::new_checked(&b[34..]).unwrap();
        (tcp.seq_number(), tcp.ack_number())
    }

    fn payload(b: &[u8]) -> Vec<u8> {
        TcpPacket::new_checked(&b[34..]).unwrap().payload().to_vec()
    }

    fn client(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &frame), 0, 1000, io);
        io.take_sent()
    }

    fn server(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        w.process(on_wire(MAC_RS1, MAC_PORT1, &frame), 1, 1000, io);
        io.take_sent()
    }

    fn header(version: Version) -> Vec<u8> {
        let repr = crate::conn::proxy_protocol::repr(version, (CLIENT, 40000), (VIP, 80));
        let mut buf = [0; crate::wire::proxy_protocol::MAX_LEN];
        let n = repr.emit(&mut buf);
        buf[..n].to_vec()
    }

    /// The SYN and SYN-ACK: returns the local port (or the client's, NAT).
    fn handshake(w: &mut Worker<BufFrame>, io: &mut Recorder, method: ForwardMethod) -> (Ipv4Addr, u16) {
        let sent = client(w, io, tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &[2, 4, 5, 0xb4], b""));
        assert_eq!(sent.len(), 1);
        assert_eq!(seq_ack(&sent[0].1).0, ISN, "the SYN passes unshifted");
        assert_eq!(toa_of(&sent[0].1), None, "no TOA with the PROXY protocol");
        let to = ip_src(&sent[0].1);
        assert_eq!(to.0, if method == ForwardMethod::FullNat { LIP } else { CLIENT });
        let synack = tcp_frame((RS1, 8080), to, 7000, ISN.wrapping_add(1), flags::SYN | flags::ACK, &[], b"");
        let sent = server(w, io, synack);
        assert_eq!(seq_ack(&sent[0].1), (7000, ISN.wrapping_add(1)), "the SYN-ACK acknowledges the client's ISN");
        to
    }

    #[test]
    fn the_header_goes_before_the_first_byte_and_the_numbers_shift() {
        for version in [Version::V2, Version::V1] {
            let (mut w, mut io) = worker_sending(ForwardMethod::FullNat, version, false);
            let hdr = header(version);
            let n = hdr.len() as u32;
            let to = handshake(&mut w, &mut io, ForwardMethod::FullNat);
            let start = ISN.wrapping_add(1);

            // The ACK completing the handshake carries the header (a server
            // that speaks first needs it now).
            let sent =
                client(&mut w, &mut io, tcp_frame((CLIENT, 40000), (VIP, 80), start, 7001, flags::ACK, &[], b""));
            assert_eq!(sent.len(), 1);
            assert_checksums_valid(&sent[0].1);
            assert_eq!(seq_ack(&sent[0].1), (start, 7001));
            assert_eq!(payload(&sent[0].1), hdr);
            let (repr, len) = Repr::<Ipv4Addr>::parse(&payload(&sent[0].1)).unwrap();
            assert_eq!((repr.src, repr.dst, len), ((CLIENT, 40000), (VIP, 80), hdr.len()));

            // The request, before the server acknowledged the header: it
            // carries the same header again, and again when retransmitted.
            let request = tcp_frame((CLIENT, 40000), (VIP, 80), start, 7001, flags::ACK | flags::PSH, &[], b"GET /");
            for _ in 0..2 {
                let sent = client(&mut w, &mut io, request.clone());
                assert_checksums_valid(&sent[0].1);
                assert_eq!(seq_ack(&sent[0].1), (start, 7001));
                assert_eq!(payload(&sent[0].1), [&hdr[..], b"GET /"].concat());
            }

            // The server acknowledges part of the header: the client sees
            // nothing of its own acknowledged.
            let partial = tcp_frame((RS1, 8080), to, 7001, start.wrapping_add(3), flags::ACK, &[], b"");
            let sent = server(&mut w, &mut io, partial);
            assert_checksums_valid(&sent[0].1);
            assert_eq!(seq_ack(&sent[0].1), (7001, start));

            // The answer acknowledges header and request, SACKing a block.
            let edge = start.wrapping_add(n + 100);
            let sack = [&[1, 1, 5, 10][..], &edge.to_be_bytes(), &edge.wrapping_add(10).to_be_bytes()].concat();
            let reply = tcp_frame((RS1, 8080), to, 7001, start.wrapping_add(n + 5), flags::ACK, &sack, b"200 OK");
            let sent = server(&mut w, &mut io, reply);
            let b = &sent[0].1;
            assert_checksums_valid(b);
            assert_eq!((ip_src(b), ip_dst(b)), ((VIP, 80), (CLIENT, 40000)));
            assert_eq!(seq_ack(b), (7001, start.wrapping_add(5)));
            let blocks: Vec<(u32, u32)> = TcpPacket::new_checked(&b[34..])
                .unwrap()
                .option_iter()
                .find_map(|o| match o {
                    Ok((_, TcpOption::Sack(blocks))) => Some(blocks.iter().collect()),
                    _ => None,
                })
                .unwrap();
            assert_eq!(blocks, [(start.wrapping_add(100), start.wrapping_add(110))]);

            // From now on the client's segments are shifted, even one at the
            // start (a retransmission the server has), and carry no header.
            for (seq, data) in [(start, &b"GET /"[..]), (start.wrapping_add(5), &b""[..])] {
                let f = tcp_frame((CLIENT, 40000), (VIP, 80), seq, 7007, flags::ACK, &[], data);
                let sent = client(&mut w, &mut io, f);
                assert_checksums_valid(&sent[0].1);
                assert_eq!(seq_ack(&sent[0].1), (seq.wrapping_add(n), 7007));
                assert_eq!(payload(&sent[0].1), data);
            }
            let c = w.counters();
            assert_eq!((c.proxy_headers_inserted.get(), c.proxy_headers_alone.get(), c.total_drops()), (3, 0, 0));
        }
    }

    #[test]
    fn a_full_first_segment_follows_its_header_sent_alone() {
        let (mut w, mut io) = worker_sending(ForwardMethod::FullNat, Version::V2, false);
        let hdr = header(Version::V2);
        handshake(&mut w, &mut io, ForwardMethod::FullNat);
        let start = ISN.wrapping_add(1);
        let full = vec![0x42; 1460];
        let f = tcp_frame((CLIENT, 40000), (VIP, 80), start, 7001, flags::ACK | flags::PSH, &[], &full);
        let sent = client(&mut w, &mut io, f.clone());
        assert_eq!(sent.len(), 2, "the header's own segment, then the data");
        for (_, b) in &sent {
            assert_checksums_valid(b);
            assert_eq!((ip_src(b).0, ip_dst(b)), (LIP, (RS1, 8080)));
            assert!(b.len() <= 14 + 1500);
        }
        assert_eq!(seq_ack(&sent[0].1), (start, 7001));
        assert_eq!(payload(&sent[0].1), hdr);
        assert_eq!(seq_ack(&sent[1].1), (start.wrapping_add(28), 7001));
        assert_eq!(payload(&sent[1].1), full);
        assert_eq!(w.counters().proxy_headers_alone.get(), 1);

        // No frame for the header: the segment is dropped and counted; the
        // client's retransmission tries again.
        io.no_mbufs = true;
        assert!(client(&mut w, &mut io, f).is_empty());
        assert_eq!(w.counters().proxy_headers_refused_no_mbuf.get(), 1);
        assert_eq!(w.counters().dropped(Discard::NoMbuf), 1);
    }

    #[test]
    fn nat_and_a_fin_without_data() {
        let (mut w, mut io) = worker_sending(ForwardMethod::Masq, Version::V1, false);
        let hdr = header(Version::V1);
        let to = handshake(&mut w, &mut io, ForwardMethod::Masq);
        assert_eq!(to, (CLIENT, 40000));
        let start = ISN.wrapping_add(1);
        let fin = tcp_frame((CLIENT, 40000), (VIP, 80), start, 7001, flags::ACK | flags::FIN, &[], b"");
        let sent = client(&mut w, &mut io, fin);
        let b = &sent[0].1;
        assert_checksums_valid(b);
        assert_eq!((ip_src(b), ip_dst(b)), ((CLIENT, 40000), (RS1, 8080)));
        assert_eq!(TcpPacket::new_checked(&b[34..]).unwrap().flags(), flags::ACK | flags::FIN);
        assert_eq!(payload(b), hdr);
        // The server acknowledges header and FIN: the client sees its FIN acknowledged.
        let n = hdr.len() as u32;
        let ack = tcp_frame((RS1, 8080), to, 7001, start.wrapping_add(n + 1), flags::ACK | flags::FIN, &[], b"");
        let sent = server(&mut w, &mut io, ack);
        assert_eq!(seq_ack(&sent[0].1), (7001, start.wrapping_add(1)));
        assert_eq!(ip_src(&sent[0].1), (VIP, 80));
    }

    #[test]
    fn a_syn_with_data_goes_without_it() {
        let (mut w, mut io) = worker_sending(ForwardMethod::FullNat, Version::V2, false);
        // TCP Fast Open: a cookie option and data on the SYN.
        let opts = [2, 4, 5, 0xb4, 34, 2, 1, 1];
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &opts, b"GET /");
        let sent = client(&mut w, &mut io, syn);
        assert_eq!(sent.len(), 1);
        assert_checksums_valid(&sent[0].1);
        assert_eq!(seq_ack(&sent[0].1).0, ISN);
        assert!(payload(&sent[0].1).is_empty(), "the data would come before the header");
        assert_eq!(w.counters().proxy_syn_data_stripped.get(), 1);
    }

    #[test]
    fn an_icmp_error_from_the_servers_side_quotes_the_clients_numbers() {
        let (mut w, mut io) = worker_sending(ForwardMethod::FullNat, Version::V2, false);
        let to = handshake(&mut w, &mut io, ForwardMethod::FullNat);
        let start = ISN.wrapping_add(1);
        client(&mut w, &mut io, tcp_frame((CLIENT, 40000), (VIP, 80), start, 7001, flags::ACK, &[], b""));
        let later = tcp_frame((CLIENT, 40000), (VIP, 80), start.wrapping_add(100), 7001, flags::ACK, &[], b"more");
        let sent = client(&mut w, &mut io, later);
        assert_eq!(seq_ack(&sent[0].1).0, start.wrapping_add(128));
        // A router on the servers' side: fragmentation needed for that segment.
        let too_big = crate::xmit::test_support::icmp_error(RS2, to.0, 3, 4, &sent[0].1[14..], 48);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &too_big), 1, 1000, &mut io);
        let (port, out) = io.take_sent().remove(0);
        assert_eq!(port, 0);
        assert_checksums_valid(&out);
        let quoted = &out[42..];
        assert_eq!((&quoted[12..16], &quoted[16..20]), (&CLIENT.octets()[..], &VIP.octets()[..]));
        let seq = u32::from_be_bytes([quoted[24], quoted[25], quoted[26], quoted[27]]);
        assert_eq!(seq, start.wrapping_add(100), "the client's own sequence number");
    }

    #[test]
    fn connections_of_other_services_carry_nothing() {
        let (mut w, mut io) = worker_sending(ForwardMethod::FullNat, Version::V2, false);
        let q = udp_frame((CLIENT, 5353), (VIP, 53), b"query", true);
        let sent = client(&mut w, &mut io, q);
        assert_eq!(&sent[0].1[42..], b"query");
        let (_, c) = w.director().conns().iter().next().unwrap();
        assert!(!c.has_proxy_header());
    }
}

/// IPv6 through the pipeline: neighbour discovery for our addresses and our
/// next hops, echo, FNAT, NAT and DR connections, the ICMPv6 errors a
/// router sends, and IPv4 beside it.
mod ipv6 {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::conn::Proxy;
    use crate::net::Ipv6Cidr;
    use crate::wire::build::{self, tcp_frame_v6, udp_frame_v6};
    use crate::wire::ethernet::EthernetFrame;
    use crate::wire::icmpv6::{self, na_flags, Icmpv6Packet, Icmpv6Repr, NdiscRepr};
    use crate::wire::ip_proto;
    use crate::wire::ipv6::Ipv6Packet;
    use crate::wire::tcp::{TcpOption, TcpPacket};
    use crate::wire::udp::UdpPacket;

    const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const GW6_CLIENT_SIDE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
    const GW6_SERVER_SIDE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe);
    const LIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x200);
    const RS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);

    fn cidr6(s: &str) -> Ipv6Cidr {
        s.parse().unwrap()
    }

    fn net6(mtu: u16) -> Arc<NetView> {
        let mut ports = net().ports.clone();
        ports[1].mtu = mtu;
        let mut view = NetView::with_connected_routes(ports, &[]).unwrap();
        let addrs = [(0, cidr6("2001:db8::fe/64")), (1, cidr6("2001:db8:1::fe/64"))];
        view.v6 = crate::model::NetView6::new(&view.ports, &addrs, &[]).unwrap();
        Arc::new(view)
    }

    /// A TCP service on [VIP6]:80 with RS6 in `method` (FNAT from LIP6), a
    /// UDP one on [VIP6]:53, and the IPv4 services of [`service`].
    fn services6(method: ForwardMethod) -> Arc<Snapshot> {
        let mut ed = service(ForwardMethod::FullNat, SchedulerKind::Rr).edit();
        let rport = rport(method);
        for (key, port) in [(ServiceKey::tcp(VIP6.into(), 80), rport), (ServiceKey::udp(VIP6.into(), 53), 53)] {
            ed.add_service(ServiceSpec::new(key)).unwrap();
            ed.add_dest(&key, DestSpec::new(RS6.into(), port).with_method(method)).unwrap();
            if method == ForwardMethod::FullNat {
                ed.add_laddr(&key, LocalAddr { addr: LIP6.into(), ifname: "port1".into() }).unwrap();
            }
        }
        ed.finish()
    }

    fn worker6(method: ForwardMethod, mtu: u16) -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        (Worker::new(&cfg, services6(method), net6(mtu), 1000).unwrap(), Recorder::default())
    }

    fn ns(from_mac: MacAddr, from: Ipv6Addr, target: Ipv6Addr) -> BufFrame {
        BufFrame::new(&build::neighbor_solicit(from_mac, from, target))
    }

    fn na(from_mac: MacAddr, from: Ipv6Addr, to_mac: MacAddr, to: Ipv6Addr) -> BufFrame {
        let advert = NdiscRepr::NeighborAdvert {
            flags: na_flags::SOLICITED | na_flags::OVERRIDE,
            target_addr: from,
            lladdr: Some(from_mac),
        };
        BufFrame::new(&build::ipv6(from, to).macs(from_mac, to_mac).hop_limit(255).ndisc(&advert))
    }

    /// The IPv6 header and what follows the Ethernet header of `frame`.
    fn ip6(frame: &[u8]) -> Ipv6Packet<&[u8]> {
        Ipv6Packet::new_checked(&frame[14..]).unwrap()
    }

    fn macs(frame: &[u8]) -> (MacAddr, MacAddr) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        (eth.src_addr(), eth.dst_addr())
    }

    /// The client solicits the VIP, which the gateway advertises as its own.
    fn client_resolves_the_vip(w: &mut Worker<BufFrame>, io: &mut Recorder) {
        w.process(ns(MAC_CLIENT, CLIENT6, VIP6), 0, 1000, io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "one advertisement: {sent:?}");
        let (port, reply) = &sent[0];
        assert_eq!(*port, 0);
        assert_eq!(macs(reply), (MAC_PORT0, MAC_CLIENT));
        let ip = ip6(reply);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (VIP6, CLIENT6, 255));
        let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(msg.verify_checksum(VIP6, CLIENT6));
        assert_eq!(
            NdiscRepr::parse(&msg).unwrap(),
            NdiscRepr::NeighborAdvert {
                flags: na_flags::ROUTER | na_flags::SOLICITED | na_flags::OVERRIDE,
                target_addr: VIP6,
                lladdr: Some(MAC_PORT0)
            }
        );
        assert_eq!(w.counters().nd_advertisements.get(), 1);
    }

    /// A first packet toward RS6 waits while the gateway solicits it; the
    /// server's advertisement releases it. Returns the released frame.
    fn server_resolved(w: &mut Worker<BufFrame>, io: &mut Recorder, first: Vec<u8>) -> Vec<u8> {
        w.process(BufFrame::new(&first), 0, 1000, io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "only the solicitation leaves: {sent:?}");
        let (port, solicit) = &sent[0];
        assert_eq!(*port, 1);
        assert_eq!(macs(solicit), (MAC_PORT1, build::multicast_mac(build::solicited_node(RS6))));
        let ip = ip6(solicit);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (GW6_SERVER_SIDE, build::solicited_node(RS6), 255));
        let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(msg.verify_checksum(GW6_SERVER_SIDE, build::solicited_node(RS6)));
        assert_eq!(
            NdiscRepr::parse(&msg).unwrap(),
            NdiscRepr::NeighborSolicit { target_addr: RS6, lladdr: Some(MAC_PORT1) }
        );
        w.process(na(MAC_RS1, RS6, MAC_PORT1, GW6_SERVER_SIDE), 1, 1000, io);
        let mut sent = io.take_sent();
        assert_eq!(sent.len(), 1, "the waiting packet: {sent:?}");
        let (port, out) = sent.remove(0);
        assert_eq!(port, 1);
        assert_eq!(macs(&out), (MAC_PORT1, MAC_RS1));
        out
    }

    #[test]
    fn fnat_v6_resolves_both_sides_and_translates_both_ways() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1500);
        client_resolves_the_vip(&mut w, &mut io);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        let out = server_resolved(&mut w, &mut io, syn);
        let ip = ip6(&out);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (LIP6, RS6, 63));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.dst_port(), 8080);
        assert!(tcp.verify_checksum_v6(LIP6, RS6), "the rewritten segment's checksum holds");
        let lport = tcp.src_port();
        assert_eq!(w.director6().conns().len(), 1);
        assert_eq!(w.director().conns().len(), 0, "IPv4's table is untouched");

        // The server answers; the client (learned from its solicitation) gets it from the VIP.
        let syn_ack = tcp_frame_v6((RS6, 8080), (LIP6, lport), 5000, 1001, flags::SYN | flags::ACK, &[], b"");
        w.process(on_wire(MAC_RS1, MAC_PORT1, &syn_ack), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, back) = &sent[0];
        assert_eq!(*port, 0);
        assert_eq!(macs(back), (MAC_PORT0, MAC_CLIENT));
        let ip = ip6(back);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, CLIENT6));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (80, 40000));
        assert!(tcp.verify_checksum_v6(VIP6, CLIENT6));

        // IPv4 beside it, through the same worker.
        w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
        let syn4 = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 0, flags::SYN, &[], b"");
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn4), 0, 1000, &mut io);
        assert_eq!(w.director().conns().len(), 1);
        assert_eq!(w.director6().conns().len(), 1);
    }

    /// The IPv4 local address of the NAT64 service (the IPv4 services'
    /// is LIP: an address serves one side or the other).
    const LIP64: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 201);

    /// NAT64: [VIP6]:80 with RS1 (IPv4) in FNAT from LIP64, beside the IPv4
    /// services of [`service`]; port 1's MTU `mtu`.
    fn worker_nat64(mtu: u16) -> (Worker<BufFrame>, Recorder) {
        let mut ed = service(ForwardMethod::FullNat, SchedulerKind::Rr).edit();
        let key = ServiceKey::tcp(VIP6.into(), 80);
        ed.add_service(ServiceSpec::new(key)).unwrap();
        ed.add_dest(&key, DestSpec::new(RS1.into(), 8080).with_method(ForwardMethod::FullNat)).unwrap();
        ed.add_laddr(&key, LocalAddr { addr: LIP64.into(), ifname: "port1".into() }).unwrap();
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        (Worker::new(&cfg, ed.finish(), net6(mtu), 1000).unwrap(), Recorder::default())
    }

    #[test]
    fn nat64_translates_an_ipv6_client_to_an_ipv4_server_and_back() {
        let (mut w, mut io) = worker_nat64(1500);
        client_resolves_the_vip(&mut w, &mut io);
        w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
        io.take_sent();
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[2, 4, 0x05, 0xa0], b"");
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, out) = &sent[0];
        assert_eq!((*port, macs(out)), (1, (MAC_PORT1, MAC_RS1)));
        assert_eq!(&out[12..14], &[0x08, 0x00], "an IPv4 frame");
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.ttl(), ip.dont_frag()), (LIP64, RS1, 63, true));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(LIP64, RS1));
        assert_eq!(tcp.dst_port(), 8080);
        let opts: Vec<_> = tcp.option_iter().map(|o| o.unwrap().1).collect();
        assert_eq!(opts[0], TcpOption::ClientAddressV6 { port: 40000, addr: CLIENT6 }, "the client in the TOA");
        let lport = tcp.src_port();
        assert_eq!((w.director6().conns().len(), w.director().conns().len()), (1, 0), "an IPv6 connection");

        // The server answers over IPv4; the client gets it over IPv6 from the VIP.
        let syn_ack = tcp_frame((RS1, 8080), (LIP64, lport), 5000, 1001, flags::SYN | flags::ACK, &[], b"hi");
        w.process(on_wire(MAC_RS1, MAC_PORT1, &syn_ack), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, back) = &sent[0];
        assert_eq!((*port, macs(back)), (0, (MAC_PORT0, MAC_CLIENT)));
        let ip = ip6(back);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (VIP6, CLIENT6, 63));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.payload()), (80, 40000, &b"hi"[..]));
        assert!(tcp.verify_checksum_v6(VIP6, CLIENT6));

        // ICMP errors cross the families too, each side told about its own
        // packet: fragmentation needed on the servers' side (quoting the
        // SYN the server was sent) reaches the client as packet too big...
        let to_server = out.clone();
        let repr = crate::wire::icmp::Icmpv4Repr {
            msg_type: crate::wire::icmp::msg_type::DEST_UNREACHABLE,
            msg_code: crate::wire::icmp::code::FRAG_NEEDED,
            rest_of_header: 1400,
            data: &to_server[14..],
        };
        let frag_needed = build::ipv4(RS1, LIP64).macs(MAC_RS1, MAC_PORT1).icmp(&repr);
        w.process(BufFrame::new(&frag_needed), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, ptb) = &sent[0];
        assert_eq!((*port, macs(ptb)), (0, (MAC_PORT0, MAC_CLIENT)));
        let ip = ip6(ptb);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, CLIENT6));
        assert!(Icmpv6Packet::new_checked(ip.payload()).unwrap().verify_checksum(VIP6, CLIENT6));
        let m = ip.payload();
        assert_eq!((m[0], &m[4..8]), (icmpv6::msg_type::PACKET_TOO_BIG, &1420u32.to_be_bytes()[..]));
        assert_eq!(Ipv6Packet::new_checked(&m[8..]).unwrap().src_addr(), CLIENT6, "the client's SYN quoted");
        // ... and packet too big on the client's side (quoting the SYN-ACK
        // the client was sent) reaches the server as fragmentation needed.
        let to_client = back.clone();
        let too_big =
            build::icmpv6_error(CLIENT6, VIP6, icmpv6::msg_type::PACKET_TOO_BIG, 0, 1300, &to_client[14..], 1232);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &too_big), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, frag) = &sent[0];
        assert_eq!((*port, macs(frag)), (1, (MAC_PORT1, MAC_RS1)));
        let ip = crate::wire::ipv4::Ipv4Packet::new_checked(&frag[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (LIP64, RS1));
        let m = ip.payload();
        assert_eq!((m[0], m[1], &m[6..8]), (3, 4, &1280u16.to_be_bytes()[..]));
        assert_eq!(
            crate::wire::ipv4::Ipv4Packet::new_unchecked(&m[8..]).src_addr(),
            RS1,
            "the server's SYN-ACK quoted"
        );
        assert_eq!(w.counters().icmp_errors_relayed.get(), 2);

        // An IPv6 packet carrying the connection's IPv4 side as mapped
        // addresses (its reply key) is dropped, not reflected to the server.
        let spoofed = tcp_frame_v6(
            (RS1.to_ipv6_mapped(), 8080),
            (LIP64.to_ipv6_mapped(), lport),
            5001,
            1001,
            flags::ACK,
            &[],
            b"x",
        );
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &spoofed), 0, 1000, &mut io);
        assert!(io.take_sent().is_empty(), "nothing leaves for the mapped reply key");
        assert_eq!(w.counters().dropped(Discard::Wire(crate::wire::DropReason::NotRewritable)), 1);

        // A reply to a local port no connection has is dropped as before.
        let stray = tcp_frame((RS1, 8080), (LIP64, lport ^ 2), 1, 1, flags::ACK, &[], b"");
        w.process(on_wire(MAC_RS1, MAC_PORT1, &stray), 1, 1000, &mut io);
        assert!(io.take_sent().is_empty());
        assert_eq!(w.counters().dropped(Discard::NoConnection), 1);
    }

    #[test]
    fn nat64_answers_a_client_segment_too_big_for_the_ipv4_link_with_the_ipv6_size_that_fits() {
        let (mut w, mut io) = worker_nat64(1280);
        client_resolves_the_vip(&mut w, &mut io);
        w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        io.take_sent();
        // 1280 bytes of TCP: 1320 over IPv6, 1300 over IPv4, 20 too many.
        let big = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 1, flags::ACK, &[], &[7; 1260]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &big), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, ptb) = &sent[0];
        assert_eq!(*port, 0);
        let ip = ip6(ptb);
        assert_eq!(ip.dst_addr(), CLIENT6);
        let msg = ip.payload();
        assert_eq!((msg[0], &msg[4..8]), (icmpv6::msg_type::PACKET_TOO_BIG, &1300u32.to_be_bytes()[..]));
        assert_eq!(w.counters().dropped(Discard::Wire(crate::wire::DropReason::MtuExceeded)), 1);
    }

    #[test]
    fn udp_over_v6_fnat_and_a_reply() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1500);
        let q = udp_frame_v6((CLIENT6, 5353), (VIP6, 53), b"query");
        let out = server_resolved(&mut w, &mut io, q);
        let ip = ip6(&out);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (LIP6, RS6));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum_v6(LIP6, RS6));
        assert_eq!(udp.payload(), b"query");
    }

    #[test]
    fn nat_v6_keeps_the_client_and_dr_v6_sends_the_packet_unchanged() {
        let (mut w, mut io) = worker6(ForwardMethod::Masq, 1500);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        let out = server_resolved(&mut w, &mut io, syn);
        let ip = ip6(&out);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (CLIENT6, RS6));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 8080));
        assert!(tcp.verify_checksum_v6(CLIENT6, RS6));

        let (mut w, mut io) = worker6(ForwardMethod::DirectRoute, 1500);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        let out = server_resolved(&mut w, &mut io, syn.clone());
        assert_eq!(&out[14..], &syn[14..], "DR: the IPv6 packet goes as it came");
    }

    #[test]
    fn tun_v6_encapsulates_toward_the_server_and_relays_errors_the_same_way() {
        let (mut w, mut io) = worker6(ForwardMethod::Tunnel, 1500);
        client_resolves_the_vip(&mut w, &mut io);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        let out = server_resolved(&mut w, &mut io, syn.clone());
        let ip = ip6(&out);
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.next_header(), ip.hop_limit()),
            (GW6_SERVER_SIDE, RS6, crate::wire::ip_proto::IPV6, 64),
            "IPv6-in-IPv6 from the gateway's address on the servers' port"
        );
        assert_eq!(usize::from(ip.payload_len()), syn.len() - 14);
        assert_eq!(&out[54..], &syn[14..], "the inner packet is the client's");
        assert_eq!(w.director6().conns().len(), 1);

        // 1500 bytes fit the link, not with the outer header: packet too big
        // to the client, with the MTU it must shrink to.
        let big = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 1, flags::ACK, &[], &[7; 1440]);
        assert_eq!(big.len() - 14, 1500);
        w.process(BufFrame::new(&big), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, 0, "back to the client");
        let ip = ip6(&sent[0].1);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (GW6_CLIENT_SIDE, CLIENT6));
        let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((msg.msg_type(), msg.mtu()), (icmpv6::msg_type::PACKET_TOO_BIG, 1460));
        assert!(msg.verify_checksum(GW6_CLIENT_SIDE, CLIENT6));
        assert_eq!(w.counters().dropped(DropReason::MtuExceeded.into()), 1);

        // A router on the client's side finds the server's reply (from the
        // VIP, past the gateway) too big: the error goes to the server as the
        // client's packets do, tunnelled and unchanged.
        let router = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
        let reply = tcp_frame_v6((VIP6, 80), (CLIENT6, 40000), 5000, 1001, flags::ACK, &[], &[0; 1400]);
        let too_big = build::icmpv6_error(router, VIP6, icmpv6::msg_type::PACKET_TOO_BIG, 0, 1400, &reply[14..], 1232);
        w.process(BufFrame::new(&too_big), 0, 1000, &mut io);
        let mut sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, out) = sent.remove(0);
        assert_eq!((port, macs(&out)), (1, (MAC_PORT1, MAC_RS1)));
        let ip = ip6(&out);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (GW6_SERVER_SIDE, RS6, 41));
        assert_eq!(&out[54..], &too_big[14..], "the error as the router sent it");
        assert_eq!(w.counters().icmp_errors_relayed.get(), 1);
    }

    #[test]
    fn echo_requests_to_our_addresses_are_answered() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1500);
        for to in [VIP6, GW6_CLIENT_SIDE] {
            let echo = Icmpv6Repr {
                msg_type: icmpv6::msg_type::ECHO_REQUEST,
                msg_code: 0,
                rest_of_header: 0x0042_0001,
                data: b"ping",
            };
            let req = build::ipv6(CLIENT6, to).macs(MAC_CLIENT, MAC_PORT0).icmpv6(&echo);
            w.process(BufFrame::new(&req), 0, 1000, &mut io);
            let sent = io.take_sent();
            assert_eq!(sent.len(), 1, "{to}: {sent:?}");
            let ip = ip6(&sent[0].1);
            assert_eq!((ip.src_addr(), ip.dst_addr()), (to, CLIENT6));
            let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert_eq!(
                (msg.msg_type(), msg.echo_ident(), msg.echo_seq(), msg.data()),
                (icmpv6::msg_type::ECHO_REPLY, 0x42, 1, &b"ping"[..])
            );
            assert!(msg.verify_checksum(to, CLIENT6));
        }
        assert_eq!(w.counters().icmp_echo_replies.get(), 2);
    }

    #[test]
    fn hop_limit_one_and_a_too_big_packet_get_the_routers_errors() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1280);
        client_resolves_the_vip(&mut w, &mut io);
        let expiring =
            build::ipv6(CLIENT6, VIP6).macs(MAC_CLIENT, MAC_PORT0).hop_limit(1).tcp(&crate::wire::tcp::TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq_number: 1,
                ack_number: 0,
                flags: flags::SYN,
                window_len: 65535,
                options: &[],
                payload: &[],
            });
        w.process(BufFrame::new(&expiring), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let ip = ip6(&sent[0].1);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (GW6_CLIENT_SIDE, CLIENT6));
        let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((msg.msg_type(), msg.msg_code()), (icmpv6::msg_type::TIME_EXCEEDED, 0));
        assert_eq!(w.counters().dropped(DropReason::TtlExpired.into()), 1);
        assert_eq!(w.director6().conns().len(), 0, "no connection for it");

        // A connection, then a segment too big for the servers' 1280-byte link.
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        server_resolved(&mut w, &mut io, syn);
        let big = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 1, flags::ACK, &[], &[7; 1300]);
        w.process(BufFrame::new(&big), 0, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, 0, "back to the client");
        let ip = ip6(&sent[0].1);
        let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(msg.msg_type(), icmpv6::msg_type::PACKET_TOO_BIG);
        assert!(msg.mtu() <= 1280, "{}", msg.mtu());
        assert!(msg.verify_checksum(GW6_CLIENT_SIDE, CLIENT6));
    }

    /// The SYN proxy in front of [VIP6]:80 (FNAT to RS6), the client's
    /// address learned.
    fn proxied6() -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        cfg.synproxy.seed = *b"worker-test-seed";
        let mut ed = services6(ForwardMethod::FullNat).edit();
        enable_synproxy(&mut ed, ServiceKey::tcp(VIP6.into(), 80));
        let mut w = Worker::new(&cfg, ed.finish(), net6(1500), 1000).unwrap();
        let mut io = Recorder::default();
        client_resolves_the_vip(&mut w, &mut io);
        (w, io)
    }

    /// MSS 1440, SACK-permitted, timestamps (TSval 5000, TSecr 0), NOP,
    /// window scale 7: a Linux SYN over IPv6 on Ethernet.
    const SYN_OPTIONS6: [u8; 20] = [2, 4, 5, 0xa0, 4, 2, 8, 10, 0, 0, 0x13, 0x88, 0, 0, 0, 0, 1, 3, 3, 7];
    const ISN6: u32 = 0x1000_0000;
    const SERVER_ISN6: u32 = 0x7000_0000;
    const SERVER_TSVAL6: u32 = 900_000;

    fn ts6(tsval: u32, tsecr: u32) -> [u8; 12] {
        let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        o[4..8].copy_from_slice(&tsval.to_be_bytes());
        o[8..12].copy_from_slice(&tsecr.to_be_bytes());
        o
    }

    fn from_client(frame: &[u8]) -> Vec<u8> {
        on_wire(MAC_CLIENT, MAC_PORT0, frame).data().to_vec()
    }

    /// The TCP options of an IPv6 frame.
    fn options6(b: &[u8]) -> Vec<TcpOption<'static>> {
        let ip = ip6(b);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        tcp.option_iter()
            .map(|o| match o.unwrap().1 {
                TcpOption::Timestamps { tsval, tsecr } => TcpOption::Timestamps { tsval, tsecr },
                TcpOption::MaxSegmentSize(m) => TcpOption::MaxSegmentSize(m),
                TcpOption::WindowScale(w) => TcpOption::WindowScale(w),
                TcpOption::SackPermitted => TcpOption::SackPermitted,
                _ => TcpOption::NoOperation,
            })
            .filter(|o| *o != TcpOption::NoOperation)
            .collect()
    }

    fn tsopt6(b: &[u8]) -> (u32, u32) {
        options6(b)
            .into_iter()
            .find_map(|o| match o {
                TcpOption::Timestamps { tsval, tsecr } => Some((tsval, tsecr)),
                _ => None,
            })
            .expect("timestamps")
    }

    /// The client's SYN to the proxied VIP6, answered with the cookie
    /// SYN-ACK: (cookie, our TSval).
    fn cookie_syn_ack6(w: &mut Worker<BufFrame>, io: &mut Recorder) -> (u32, u32) {
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), ISN6, 0, flags::SYN, &SYN_OPTIONS6, b"");
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "one SYN-ACK, nothing toward the servers: {sent:?}");
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        assert_eq!(macs(b), (MAC_PORT0, MAC_CLIENT));
        let ip = ip6(b);
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (VIP6, CLIENT6, ip_proto::TCP));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum_v6(VIP6, CLIENT6));
        assert_eq!((tcp.src_port(), tcp.dst_port(), tcp.flags()), (80, 40000, flags::SYN | flags::ACK));
        assert_eq!(tcp.ack_number(), ISN6 + 1);
        let cookie = tcp.seq_number();
        assert_eq!(cookie >> 30, 2, "the client's 1440 is entry 2 of the IPv6 table");
        let options = options6(b);
        // 1460 for IPv4 is 1440 over IPv6: the same 1500-byte MTU.
        assert!(options.contains(&TcpOption::MaxSegmentSize(1440)), "{options:?}");
        assert!(options.contains(&TcpOption::SackPermitted));
        assert!(options.contains(&TcpOption::WindowScale(7)));
        let (tsval, tsecr) = tsopt6(b);
        assert_eq!(tsecr, 5000);
        assert!(w.director6().conns().is_empty(), "a SYN leaves no state");
        assert_eq!(w.counters().synproxy.syn_acks_sent.get(), 1);
        (cookie, tsval)
    }

    #[test]
    fn syn_proxy_v6_answers_with_a_cookie_opens_the_server_on_the_ack_and_shifts_for_the_connection() {
        let (mut w, mut io) = proxied6();
        let (cookie, our_tsval) = cookie_syn_ack6(&mut w, &mut io);

        // The client's ACK proves the cookie: the SYN to the server, with the
        // client's ISN and options, waits for the server's address.
        let ack =
            tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), ISN6 + 1, cookie + 1, flags::ACK, &ts6(5001, our_tsval), b"");
        let syn = server_resolved(&mut w, &mut io, from_client(&ack));
        let ip = ip6(&syn);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (LIP6, RS6));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum_v6(LIP6, RS6));
        assert_eq!((tcp.dst_port(), tcp.flags(), tcp.seq_number()), (8080, flags::SYN, ISN6));
        let lport = tcp.src_port();
        let options = options6(&syn);
        for o in [
            TcpOption::MaxSegmentSize(1440),
            TcpOption::SackPermitted,
            TcpOption::WindowScale(7),
            TcpOption::Timestamps { tsval: 5001, tsecr: 0 },
        ] {
            assert!(options.contains(&o), "{o:?} in {options:?}");
        }
        assert_eq!(w.counters().synproxy.cookies_valid.get(), 1);
        assert_eq!(w.director6().conns().len(), 1);
        assert!(matches!(w.director6().conns().iter().next().unwrap().1.proxy(), Proxy::Handshake(_)));

        // The client's request before the server answered: held.
        let request = tcp_frame_v6(
            (CLIENT6, 40000),
            (VIP6, 80),
            ISN6 + 1,
            cookie + 1,
            flags::ACK | flags::PSH,
            &ts6(5002, our_tsval),
            b"GET /",
        );
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &request), 0, 1000, &mut io);
        assert!(io.take_sent().is_empty(), "held until the server answers");

        // The server's SYN-ACK is consumed; the client's ACK and request follow,
        // in the server's numbering.
        let mut synack_opts = [0u8; 20];
        synack_opts[..4].copy_from_slice(&[2, 4, 5, 0xa0]);
        synack_opts[4..16].copy_from_slice(&ts6(SERVER_TSVAL6, 5001));
        synack_opts[4..6].copy_from_slice(&[4, 2]);
        synack_opts[16..].copy_from_slice(&[1, 3, 3, 7]);
        let synack =
            tcp_frame_v6((RS6, 8080), (LIP6, lport), SERVER_ISN6, ISN6 + 1, flags::SYN | flags::ACK, &synack_opts, b"");
        w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 2, "the client's ACK and its request: {sent:?}");
        for (i, (port, b)) in sent.iter().enumerate() {
            assert_eq!(*port, 1);
            let ip = ip6(b);
            assert_eq!((ip.src_addr(), ip.dst_addr()), (LIP6, RS6));
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum_v6(LIP6, RS6), "segment {i}");
            assert_eq!((tcp.seq_number(), tcp.ack_number()), (ISN6 + 1, SERVER_ISN6 + 1), "segment {i}");
            assert_eq!(tsopt6(b).1, SERVER_TSVAL6, "the TSecr in the server's clock, segment {i}");
            assert_eq!(tcp.payload(), if i == 0 { &b""[..] } else { &b"GET /"[..] });
        }
        assert_eq!(w.counters().synproxy.server_handshakes.get(), 1);
        assert!(matches!(w.director6().conns().iter().next().unwrap().1.proxy(), Proxy::Deltas { .. }));

        // The server's answer reaches the client in our numbering.
        let reply = tcp_frame_v6(
            (RS6, 8080),
            (LIP6, lport),
            SERVER_ISN6 + 1,
            ISN6 + 6,
            flags::ACK | flags::PSH,
            &ts6(SERVER_TSVAL6 + 10, 5002),
            b"HTTP/1.1 200 OK",
        );
        w.process(on_wire(MAC_RS1, MAC_PORT1, &reply), 1, 1000, &mut io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (port, b) = &sent[0];
        assert_eq!(*port, 0);
        let ip = ip6(b);
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, CLIENT6));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum_v6(VIP6, CLIENT6));
        assert_eq!((tcp.src_port(), tcp.dst_port()), (80, 40000));
        assert_eq!((tcp.seq_number(), tcp.ack_number()), (cookie + 1, ISN6 + 6));
        assert_eq!(tsopt6(b), (our_tsval + 10, 5002), "the server's clock shifted onto ours");
        assert_eq!(tcp.payload(), b"HTTP/1.1 200 OK");
        assert_eq!(w.director().conns().len(), 0, "IPv4's table is untouched");
    }

    #[test]
    fn syn_proxy_v6_drops_and_counts_a_bad_cookie() {
        let (mut w, mut io) = proxied6();
        let (cookie, our_tsval) = cookie_syn_ack6(&mut w, &mut io);
        for bad in [
            // Another cookie.
            tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), ISN6 + 1, cookie + 2, flags::ACK, &ts6(5001, our_tsval), b""),
            // This cookie from another client port.
            tcp_frame_v6((CLIENT6, 40001), (VIP6, 80), ISN6 + 1, cookie + 1, flags::ACK, &ts6(5001, our_tsval), b""),
        ] {
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &bad), 0, 1000, &mut io);
        }
        assert!(io.take_sent().is_empty(), "nothing answered, nothing to the server");
        assert_eq!(w.counters().synproxy.cookies_invalid.get(), 2);
        assert_eq!(w.counters().synproxy.cookies_valid.get(), 0);
        assert_eq!(w.counters().dropped(Discard::SynProxyBadCookie), 2);
        assert!(w.director6().conns().is_empty());
    }

    /// The IPv6 twin of the sync module's FNAT test: the master's worker
    /// queues an IPv6 record, the backup's installs it in its IPv6 table and
    /// carries the connection on from the same local address and port.
    #[test]
    fn a_nat64_connection_moves_to_the_backup_with_its_ipv4_side_mapped_and_carries_on() {
        use crate::sync::queue::queues;
        use crate::sync::wire::Record;
        let mapped = |a: Ipv4Addr, port| std::net::SocketAddrV6::new(a.to_ipv6_mapped(), port, 0, 0);
        let (mut master, mut io) = worker_nat64(1500);
        let (daemon, mut ends) = queues(1);
        master.set_sync(ends.pop().unwrap());
        daemon.master.set(true);
        client_resolves_the_vip(&mut master, &mut io);
        master.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1000, &mut io);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        master.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        let out = io.take_sent().pop().expect("the SYN to the server").1;
        let lport = TcpPacket::new_checked(&out[34..]).unwrap().src_port();
        let syn_ack = tcp_frame((RS1, 8080), (LIP64, lport), 5000, 1001, flags::SYN | flags::ACK, &[], b"");
        master.process(on_wire(MAC_RS1, MAC_PORT1, &syn_ack), 1, 1000, &mut io);
        let ack = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 5001, flags::ACK, &[], b"");
        for now in [1001, 1002] {
            master.process(on_wire(MAC_CLIENT, MAC_PORT0, &ack), 0, now, &mut io);
            master.expire(now);
        }
        let sent: Vec<Record> = daemon.from_workers[0].try_iter().collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let Record::V6(record) = sent[0] else { panic!("an IPv6 record: {:?}", sent[0]) };
        assert_eq!((record.real_server, record.fnat_local), (mapped(RS1, 8080), Some(mapped(LIP64, lport))));

        // The backup installs it with its IPv4 server and local port, and
        // the server's reply passes through it to the client.
        let (mut backup, mut bio) = worker_nat64(1500);
        let (bdaemon, mut bends) = queues(1);
        backup.set_sync(bends.pop().unwrap());
        bdaemon.to_workers[0].send(sent[0]).unwrap();
        backup.take_synced(1000);
        assert_eq!(backup.counters().sync.installed.get(), 1, "{:?}", backup.counters().nonzero_drops());
        assert_eq!(backup.director6().pools().pool(LIP64.into()).unwrap().in_use(), 1, "the IPv4 port is taken");
        client_resolves_the_vip(&mut backup, &mut bio);
        let reply = tcp_frame((RS1, 8080), (LIP64, lport), 5001, 1006, flags::ACK, &[], b"ok");
        backup.process(on_wire(MAC_RS1, MAC_PORT1, &reply), 1, 1000, &mut bio);
        let sent_back = bio.take_sent();
        assert_eq!(sent_back.len(), 1, "{:?}", backup.counters().nonzero_drops());
        let ip = ip6(&sent_back[0].1);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((ip.src_addr(), tcp.src_port(), ip.dst_addr(), tcp.dst_port()), (VIP6, 80, CLIENT6, 40000));
    }

    #[test]
    fn an_established_fnat_v6_connection_moves_to_the_backup_and_carries_on() {
        use crate::conn::State;
        use crate::sync::queue::{queues, Refusal};
        use crate::sync::wire::{ConnRepr, Record};
        let at = |a, port| std::net::SocketAddrV6::new(a, port, 0, 0);
        let (mut master, mut io) = worker6(ForwardMethod::FullNat, 1500);
        let (daemon, mut ends) = queues(1);
        master.set_sync(ends.pop().unwrap());
        daemon.master.set(true);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        let out = server_resolved(&mut master, &mut io, syn);
        let lport = TcpPacket::new_checked(ip6(&out).payload()).unwrap().src_port();
        let syn_ack = tcp_frame_v6((RS6, 8080), (LIP6, lport), 5000, 1001, flags::SYN | flags::ACK, &[], b"");
        master.process(on_wire(MAC_RS1, MAC_PORT1, &syn_ack), 1, 1000, &mut io);
        master.expire(1000);
        assert_eq!(daemon.from_workers[0].try_iter().count(), 0, "SYN_RECV is never synced");
        let ack = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 5001, flags::ACK, &[], b"");
        for now in [1001, 1002] {
            master.process(BufFrame::new(&ack), 0, now, &mut io);
            master.expire(now);
        }
        let sent: Vec<Record> = daemon.from_workers[0].try_iter().collect();
        assert_eq!(sent.len(), 1, "synced once it is established: {sent:?}");
        let Record::V6(record) = sent[0] else { panic!("an IPv6 record: {:?}", sent[0]) };
        assert_eq!((record.protocol, record.state, record.timeout_secs), (6, 1, 900));
        assert_eq!((record.client, record.virtual_service), (at(CLIENT6, 40000), at(VIP6, 80)));
        assert_eq!((record.real_server, record.fnat_local), (at(RS6, 8080), Some(at(LIP6, lport))));
        assert_eq!(master.counters().sync.queued.get(), 1);

        // The backup installs it in its IPv6 table.
        let (mut backup, mut bio) = worker6(ForwardMethod::FullNat, 1500);
        let (bdaemon, mut bends) = queues(1);
        backup.set_sync(bends.pop().unwrap());
        bdaemon.to_workers[0].send(sent[0]).unwrap();
        backup.take_synced(1000);
        let c = backup.counters().clone();
        assert_eq!((c.sync.installed.get(), c.sync.updated.get()), (1, 0));
        let (id, conn) = backup.director6().conns().iter().next().unwrap();
        assert_eq!((conn.state(), conn.expires()), (State::Established, 1000 + 900 + crate::sync::BACKUP_GRACE_SECS));
        assert_eq!(backup.director6().pools().pool(LIP6.into()).unwrap().in_use(), 1, "the port is taken");
        assert!(backup.director().conns().is_empty(), "IPv4's table is untouched");

        // The client's data and the server's reply pass through the backup
        // (which learns the client's address as the master did).
        client_resolves_the_vip(&mut backup, &mut bio);
        let data = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 5001, flags::ACK | flags::PSH, &[], b"after");
        let out = server_resolved(&mut backup, &mut bio, data);
        let ip = ip6(&out);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((ip.src_addr(), tcp.src_port(), ip.dst_addr(), tcp.dst_port()), (LIP6, lport, RS6, 8080));
        assert_eq!(tcp.payload(), b"after");
        let reply = tcp_frame_v6((RS6, 8080), (LIP6, lport), 5001, 1006, flags::ACK, &[], b"ok");
        backup.process(on_wire(MAC_RS1, MAC_PORT1, &reply), 1, 1000, &mut bio);
        let sent_back = bio.take_sent();
        assert_eq!(sent_back.len(), 1, "{:?}", backup.counters().nonzero_drops());
        let ip = ip6(&sent_back[0].1);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((ip.src_addr(), tcp.src_port(), ip.dst_addr(), tcp.dst_port()), (VIP6, 80, CLIENT6, 40000));

        // The master's FIN moves it on, synced; the old ESTABLISHED record is then stale.
        let fin = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1001, 5001, flags::FIN | flags::ACK, &[], b"");
        master.process(BufFrame::new(&fin), 0, 1003, &mut io);
        master.expire(1003);
        let fin_record: Vec<Record> = daemon.from_workers[0].try_iter().collect();
        assert!(matches!(fin_record[..], [Record::V6(ConnRepr { state: 7, .. })]), "CLOSE_WAIT: {fin_record:?}");
        let no_service = ConnRepr { virtual_service: at(VIP6, 81), client: at(CLIENT6, 1), ..record };
        for r in [fin_record[0], sent[0], Record::V6(no_service)] {
            bdaemon.to_workers[0].send(r).unwrap();
        }
        backup.take_synced(1004);
        assert_eq!(c.sync.updated.get(), 1);
        assert_eq!(c.sync.refused[Refusal::Stale.index()].get(), 1);
        assert_eq!(c.sync.refused[Refusal::NoService.index()].get(), 1);
        assert_eq!(backup.director6().conn(id).state(), State::CloseWait);
    }

    #[test]
    fn persistence_over_ipv6_keeps_a_clients_prefix_on_one_server() {
        // rr over two servers, -p 300 -M 64: clients of one /64 stick to the
        // server the first of them got; another /64 takes the next one.
        let key = ServiceKey::tcp(VIP6.into(), 80);
        let mut ed = Snapshot::empty().edit();
        let netmask: IpAddr = "ffff:ffff:ffff:ffff::".parse().unwrap();
        let persistence = Some(crate::model::Persistence { timeout: 300, netmask });
        ed.add_service(ServiceSpec { persistence, ..ServiceSpec::new(key) }).unwrap();
        let rs6b = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11);
        for rs in [RS6, rs6b] {
            ed.add_dest(&key, DestSpec::new(rs.into(), 80).with_method(ForwardMethod::Masq)).unwrap();
        }
        let mut cfg = WorkerConfig::new(0, 1);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        let mut w = Worker::new(&cfg, ed.finish(), net6(1500), 1000).unwrap();
        let mut io = Recorder::default();
        let server_of = |w: &mut Worker<BufFrame>, io: &mut Recorder, client: Ipv6Addr, port: u16| {
            let syn = tcp_frame_v6((client, port), (VIP6, 80), 1, 0, flags::SYN, &[], b"");
            w.process(BufFrame::new(&syn), 0, 1000, io);
            let (_, c) = w.director6().conns().iter().find(|(_, c)| c.client == client && c.cport == port).unwrap();
            c.raddr
        };
        let first = server_of(&mut w, &mut io, CLIENT6, 40000);
        let same_prefix = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0xabcd, 0, 0, 7);
        for port in 40001..40005 {
            assert_eq!(server_of(&mut w, &mut io, same_prefix, port), first, "the /64 sticks");
            assert_eq!(server_of(&mut w, &mut io, CLIENT6, port), first);
        }
        let other_prefix = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1);
        assert_ne!(server_of(&mut w, &mut io, other_prefix, 40000), first, "another /64 is scheduled afresh (rr)");
    }

    #[test]
    fn an_ipv6_vip_no_kernel_interface_carries_is_not_served_until_one_does() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1500);
        let held = |addrs: Vec<IpAddr>| {
            let mut view = (*net6(1500)).clone();
            view.held = Some(addrs);
            Arc::new(view)
        };
        w.switch(w.director().snapshot().clone(), held(vec![LIP6.into()]));
        w.process(ns(MAC_CLIENT, CLIENT6, VIP6), 0, 1000, &mut io);
        assert!(io.take_sent().is_empty(), "no advertisement for a VIP another director holds");
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        w.process(BufFrame::new(&syn), 0, 1000, &mut io);
        assert_eq!(w.counters().dropped(Discard::NotHeld), 1);
        assert_eq!(w.director6().conns().len(), 0);
        // keepalived moves it here.
        w.switch(w.director().snapshot().clone(), held(vec![LIP6.into(), VIP6.into()]));
        client_resolves_the_vip(&mut w, &mut io);
    }

    #[test]
    fn malformed_neighbour_discovery_is_counted_and_solicitations_for_others_ignored() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1500);
        // Hop limit 64: not from the link (RFC 4861 §7.1.1).
        let forged = build::ipv6(CLIENT6, build::solicited_node(VIP6))
            .macs(MAC_CLIENT, build::multicast_mac(build::solicited_node(VIP6)))
            .hop_limit(64)
            .ndisc(&NdiscRepr::NeighborSolicit { target_addr: VIP6, lladdr: Some(MAC_CLIENT) });
        w.process(BufFrame::new(&forged), 0, 1000, &mut io);
        assert_eq!(w.counters().dropped(Discard::Ndisc(crate::net::ndisc::NdiscDrop::BadHopLimit)), 1);
        // A solicitation for an address that is not ours: no answer.
        let other = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);
        w.process(ns(MAC_CLIENT, CLIENT6, other), 0, 1000, &mut io);
        assert!(io.take_sent().is_empty());
        assert_eq!(w.counters().nd_advertisements.get(), 0);
    }

    /// Connections of an IPv6 service sending a PROXY protocol header: the
    /// IPv4 tests' cases ([`super::super::proxy_header`]) over IPv6, with
    /// the TCP6 headers' bytes.
    /// The egress cache for IPv6 (see [`super::super::egress`]): the next
    /// packet follows a neighbour's new MAC, and waits for neighbour
    /// discovery once the neighbour's lifetime is over.
    #[test]
    fn a_neighbours_new_mac_or_its_end_reaches_the_next_ipv6_packet() {
        let (mut w, mut io) = worker6(ForwardMethod::FullNat, 1500);
        client_resolves_the_vip(&mut w, &mut io);
        let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 1000, 0, flags::SYN, &[], b"");
        server_resolved(&mut w, &mut io, syn.clone());
        let again = |w: &mut Worker<BufFrame>, io: &mut Recorder, now: u32| {
            w.process(BufFrame::new(&syn), 0, now, io);
            let sent = io.take_sent();
            assert_eq!(sent.len(), 1, "{sent:?}");
            (sent[0].0, macs(&sent[0].1))
        };
        assert_eq!(again(&mut w, &mut io, 1000), (1, (MAC_PORT1, MAC_RS1)));
        w.process(na(MAC_RS2, RS6, MAC_PORT1, GW6_SERVER_SIDE), 1, 1001, &mut io);
        assert_eq!(again(&mut w, &mut io, 1001), (1, (MAC_PORT1, MAC_RS2)), "the new MAC");
        let lifetime = WorkerConfig::new(0, 1).neighbour_lifetime;
        assert_eq!(again(&mut w, &mut io, 1001 + lifetime - 1), (1, (MAC_PORT1, MAC_RS2)));
        let solicit = (MAC_PORT1, build::multicast_mac(build::solicited_node(RS6)));
        assert_eq!(again(&mut w, &mut io, 1001 + lifetime), (1, solicit), "only the solicitation");
    }

    mod proxy_header {
        use super::*;
        use crate::wire::proxy_protocol::{Repr, Version};

        const ISN: u32 = 0xffff_fff0;
        /// `PROXY TCP6 <CLIENT6> <VIP6> 40000 80`.
        const V1: &[u8] = b"PROXY TCP6 2001:db8::1 2001:db8::100 40000 80\r\n";
        const V2: [u8; 52] = [
            0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
            0x21, 0x21, 0x00, 0x24, // v2 PROXY, TCP over IPv6, 36 bytes follow
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, // CLIENT6
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, // VIP6
            0x9c, 0x40, 0x00, 0x50, // 40000, 80
        ];

        fn header(version: Version) -> &'static [u8] {
            match version {
                Version::V1 => V1,
                Version::V2 => &V2,
            }
        }

        /// [`services6`] with `version` (and the SYN proxy if `synproxy`) on
        /// [VIP6]:80, the client's address learned.
        fn sending6(method: ForwardMethod, version: Version, synproxy: bool) -> (Worker<BufFrame>, Recorder) {
            let mut cfg = WorkerConfig::new(0, 1);
            cfg.conn_capacity = 1024;
            cfg.template_capacity = 64;
            cfg.synproxy.seed = *b"worker-test-seed";
            let key = ServiceKey::tcp(VIP6.into(), 80);
            let mut ed = services6(method).edit();
            let spec = *ed.current().service(ed.current().service_id(&key).unwrap()).spec();
            ed.edit_service(ServiceSpec { proxy_protocol: Some(version), synproxy, ..spec }).unwrap();
            let mut w = Worker::new(&cfg, ed.finish(), net6(1500), 1000).unwrap();
            let mut io = Recorder::default();
            client_resolves_the_vip(&mut w, &mut io);
            (w, io)
        }

        fn tcp6(b: &[u8]) -> TcpPacket<&[u8]> {
            TcpPacket::new_checked(&b[54..]).unwrap()
        }

        fn seq_ack6(b: &[u8]) -> (u32, u32) {
            (tcp6(b).seq_number(), tcp6(b).ack_number())
        }

        fn payload6(b: &[u8]) -> Vec<u8> {
            tcp6(b).payload().to_vec()
        }

        /// The addresses and ports of an IPv6 TCP frame, its checksum checked.
        fn ends6(b: &[u8]) -> ((Ipv6Addr, u16), (Ipv6Addr, u16)) {
            let ip = ip6(b);
            let (src, dst) = (ip.src_addr(), ip.dst_addr());
            assert_eq!(usize::from(ip.payload_len()), b.len() - 54, "the payload length follows the segment");
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum_v6(src, dst), "tcp checksum");
            ((src, tcp.src_port()), (dst, tcp.dst_port()))
        }

        fn client6(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &frame), 0, 1000, io);
            io.take_sent()
        }

        fn server6(w: &mut Worker<BufFrame>, io: &mut Recorder, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
            w.process(on_wire(MAC_RS1, MAC_PORT1, &frame), 1, 1000, io);
            io.take_sent()
        }

        /// The SYN and SYN-ACK: returns where the server's segments go (the
        /// local address and port, or the client's, NAT).
        fn handshake6(w: &mut Worker<BufFrame>, io: &mut Recorder, method: ForwardMethod) -> (Ipv6Addr, u16) {
            let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), ISN, 0, flags::SYN, &[2, 4, 5, 0xa0], b"");
            let out = server_resolved(w, io, syn);
            let (from, to) = ends6(&out);
            assert_eq!(to, (RS6, 8080));
            assert_eq!(from.0, if method == ForwardMethod::FullNat { LIP6 } else { CLIENT6 });
            assert_eq!(seq_ack6(&out).0, ISN, "the SYN passes unshifted");
            assert_eq!(tcp6(&out).header_len(), 24, "no TOA with the PROXY protocol");
            let synack = tcp_frame_v6((RS6, 8080), from, 7000, ISN.wrapping_add(1), flags::SYN | flags::ACK, &[], b"");
            let sent = server6(w, io, synack);
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert_eq!(ends6(&sent[0].1), ((VIP6, 80), (CLIENT6, 40000)));
            assert_eq!(seq_ack6(&sent[0].1), (7000, ISN.wrapping_add(1)), "the client's ISN acknowledged");
            from
        }

        #[test]
        fn the_tcp6_header_goes_before_the_first_byte_and_the_numbers_shift() {
            for method in [ForwardMethod::FullNat, ForwardMethod::Masq] {
                for version in [Version::V1, Version::V2] {
                    let (mut w, mut io) = sending6(method, version, false);
                    let hdr = header(version);
                    let n = hdr.len() as u32;
                    let to = handshake6(&mut w, &mut io, method);
                    let start = ISN.wrapping_add(1);
                    let from_client = (to.0, if method == ForwardMethod::FullNat { to.1 } else { 40000 });

                    // The ACK completing the handshake carries the header.
                    let ack = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), start, 7001, flags::ACK, &[], b"");
                    let sent = client6(&mut w, &mut io, ack);
                    assert_eq!(sent.len(), 1, "{method:?} {version}");
                    assert_eq!(ends6(&sent[0].1), (from_client, (RS6, 8080)));
                    assert_eq!(seq_ack6(&sent[0].1), (start, 7001));
                    assert_eq!(payload6(&sent[0].1), hdr, "{method:?} {version}");
                    let (repr, len) = Repr::<Ipv6Addr>::parse(&payload6(&sent[0].1)).unwrap();
                    assert_eq!((repr.src, repr.dst, len), ((CLIENT6, 40000), (VIP6, 80), hdr.len()));

                    // The request and its retransmission: the same header again.
                    let request =
                        tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), start, 7001, flags::ACK | flags::PSH, &[], b"GET /");
                    for _ in 0..2 {
                        let sent = client6(&mut w, &mut io, request.clone());
                        ends6(&sent[0].1);
                        assert_eq!(seq_ack6(&sent[0].1), (start, 7001));
                        assert_eq!(payload6(&sent[0].1), [hdr, b"GET /"].concat());
                    }

                    // Part of the header acknowledged: none of the client's bytes.
                    let partial = tcp_frame_v6((RS6, 8080), to, 7001, start.wrapping_add(3), flags::ACK, &[], b"");
                    let sent = server6(&mut w, &mut io, partial);
                    assert_eq!(ends6(&sent[0].1), ((VIP6, 80), (CLIENT6, 40000)));
                    assert_eq!(seq_ack6(&sent[0].1), (7001, start));

                    // Header and request acknowledged, a block SACKed: both shifted back.
                    let edge = start.wrapping_add(n + 100);
                    let sack = [&[1, 1, 5, 10][..], &edge.to_be_bytes(), &edge.wrapping_add(10).to_be_bytes()].concat();
                    let reply =
                        tcp_frame_v6((RS6, 8080), to, 7001, start.wrapping_add(n + 5), flags::ACK, &sack, b"200 OK");
                    let sent = server6(&mut w, &mut io, reply);
                    let b = &sent[0].1;
                    assert_eq!(ends6(b), ((VIP6, 80), (CLIENT6, 40000)));
                    assert_eq!(seq_ack6(b), (7001, start.wrapping_add(5)));
                    let blocks: Vec<(u32, u32)> = tcp6(b)
                        .option_iter()
                        .find_map(|o| match o {
                            Ok((_, TcpOption::Sack(blocks))) => Some(blocks.iter().collect()),
                            _ => None,
                        })
                        .unwrap();
                    assert_eq!(blocks, [(start.wrapping_add(100), start.wrapping_add(110))]);

                    // From now on shifts only, even at the start.
                    for (seq, data) in [(start, &b"GET /"[..]), (start.wrapping_add(5), &b""[..])] {
                        let f = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), seq, 7007, flags::ACK, &[], data);
                        let sent = client6(&mut w, &mut io, f);
                        ends6(&sent[0].1);
                        assert_eq!(seq_ack6(&sent[0].1), (seq.wrapping_add(n), 7007));
                        assert_eq!(payload6(&sent[0].1), data);
                    }
                    let c = w.counters();
                    assert_eq!(
                        (c.proxy_headers_inserted.get(), c.proxy_headers_alone.get(), c.total_drops()),
                        (3, 0, 0),
                        "{method:?} {version}"
                    );
                    assert_eq!(w.director().conns().len(), 0, "IPv4's table is untouched");
                }
            }
        }

        #[test]
        fn a_full_first_segment_follows_its_tcp6_header_sent_alone() {
            let (mut w, mut io) = sending6(ForwardMethod::FullNat, Version::V2, false);
            handshake6(&mut w, &mut io, ForwardMethod::FullNat);
            let start = ISN.wrapping_add(1);
            // 1500 bytes of IPv6 packet: no room for 52 more.
            let full = vec![0x42; 1500 - 40 - 20];
            let f = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), start, 7001, flags::ACK | flags::PSH, &[], &full);
            let sent = client6(&mut w, &mut io, f.clone());
            assert_eq!(sent.len(), 2, "the header's own segment, then the data");
            for (port, b) in &sent {
                assert_eq!(*port, 1);
                assert_eq!(ends6(b).1, (RS6, 8080));
                assert!(b.len() <= 14 + 1500);
            }
            assert_eq!(seq_ack6(&sent[0].1), (start, 7001));
            assert_eq!(payload6(&sent[0].1), V2);
            assert_eq!(tcp6(&sent[0].1).flags(), flags::ACK | flags::PSH);
            assert_eq!(seq_ack6(&sent[1].1), (start.wrapping_add(52), 7001));
            assert_eq!(payload6(&sent[1].1), full);
            assert_eq!(w.counters().proxy_headers_alone.get(), 1);

            io.no_mbufs = true;
            assert!(client6(&mut w, &mut io, f).is_empty());
            assert_eq!(w.counters().proxy_headers_refused_no_mbuf.get(), 1);
        }

        #[test]
        fn a_tcp6_syn_with_data_goes_without_it_and_a_fin_carries_the_header() {
            let (mut w, mut io) = sending6(ForwardMethod::FullNat, Version::V1, false);
            let opts = [2, 4, 5, 0xa0, 34, 2, 1, 1];
            let syn = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), ISN, 0, flags::SYN, &opts, b"GET /");
            let out = server_resolved(&mut w, &mut io, syn);
            ends6(&out);
            assert_eq!(seq_ack6(&out).0, ISN);
            assert!(payload6(&out).is_empty(), "the data would come before the header");
            assert_eq!(w.counters().proxy_syn_data_stripped.get(), 1);
            let to = ends6(&out).0;
            let synack = tcp_frame_v6((RS6, 8080), to, 7000, ISN.wrapping_add(1), flags::SYN | flags::ACK, &[], b"");
            server6(&mut w, &mut io, synack);
            let start = ISN.wrapping_add(1);
            let fin = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), start, 7001, flags::ACK | flags::FIN, &[], b"");
            let sent = client6(&mut w, &mut io, fin);
            ends6(&sent[0].1);
            assert_eq!(tcp6(&sent[0].1).flags(), flags::ACK | flags::FIN);
            assert_eq!(payload6(&sent[0].1), V1);
        }

        #[test]
        fn an_icmpv6_error_from_the_servers_side_quotes_the_clients_numbers() {
            let (mut w, mut io) = sending6(ForwardMethod::FullNat, Version::V2, false);
            let to = handshake6(&mut w, &mut io, ForwardMethod::FullNat);
            let start = ISN.wrapping_add(1);
            client6(&mut w, &mut io, tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), start, 7001, flags::ACK, &[], b""));
            let later =
                tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), start.wrapping_add(100), 7001, flags::ACK, &[], b"more");
            let sent = client6(&mut w, &mut io, later);
            assert_eq!(seq_ack6(&sent[0].1).0, start.wrapping_add(152));
            // A router on the servers' side: packet too big for that segment.
            let router = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x99);
            let ptb = icmpv6::msg_type::PACKET_TOO_BIG;
            let too_big = build::icmpv6_error(router, to.0, ptb, 0, 1280, &sent[0].1[14..], 1232);
            let out = server6(&mut w, &mut io, too_big);
            assert_eq!(out.len(), 1, "{out:?}");
            let (port, b) = &out[0];
            assert_eq!(*port, 0);
            let ip = ip6(b);
            assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, CLIENT6), "from the VIP, as the connection's packets");
            let msg = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert!(msg.verify_checksum(VIP6, CLIENT6));
            let quoted = Ipv6Packet::new_checked(msg.data()).unwrap();
            assert_eq!((quoted.src_addr(), quoted.dst_addr()), (CLIENT6, VIP6));
            let seq = TcpPacket::new_unchecked(quoted.payload()).seq_number();
            assert_eq!(seq, start.wrapping_add(100), "the client's own sequence number");
        }

        #[test]
        fn the_syn_proxy_and_the_tcp6_header_shift_together() {
            let (mut w, mut io) = sending6(ForwardMethod::FullNat, Version::V2, true);
            let (cookie, our_tsval) = cookie_syn_ack6(&mut w, &mut io);
            let ack = tcp_frame_v6(
                (CLIENT6, 40000),
                (VIP6, 80),
                ISN6 + 1,
                cookie + 1,
                flags::ACK,
                &ts6(5001, our_tsval),
                b"",
            );
            let syn = server_resolved(&mut w, &mut io, from_client(&ack));
            let (lip, _) = ends6(&syn);
            assert_eq!((tcp6(&syn).flags(), tcp6(&syn).seq_number()), (flags::SYN, ISN6));
            assert!(payload6(&syn).is_empty());
            let request = tcp_frame_v6(
                (CLIENT6, 40000),
                (VIP6, 80),
                ISN6 + 1,
                cookie + 1,
                flags::ACK | flags::PSH,
                &ts6(5002, our_tsval),
                b"GET /",
            );
            assert!(client6(&mut w, &mut io, request).is_empty(), "held until the server answers");

            // The server's SYN-ACK: the client's ACK and request follow, both
            // starting at the client's ISN + 1, both with the header.
            let synack = tcp_frame_v6(
                (RS6, 8080),
                lip,
                SERVER_ISN6,
                ISN6 + 1,
                flags::SYN | flags::ACK,
                &ts6(SERVER_TSVAL6, 5001),
                b"",
            );
            let sent = server6(&mut w, &mut io, synack);
            assert_eq!(sent.len(), 2, "{sent:?}");
            for (i, (_, b)) in sent.iter().enumerate() {
                assert_eq!(ends6(b), (lip, (RS6, 8080)));
                assert_eq!(seq_ack6(b), (ISN6 + 1, SERVER_ISN6 + 1), "segment {i}");
                assert_eq!(tsopt6(b).1, SERVER_TSVAL6, "segment {i}");
                let want = if i == 0 { V2.to_vec() } else { [&V2[..], b"GET /"].concat() };
                assert_eq!(payload6(b), want, "segment {i}");
            }

            // The answer: our numbering toward the client, the header taken off its ack.
            let reply = tcp_frame_v6(
                (RS6, 8080),
                lip,
                SERVER_ISN6 + 1,
                ISN6 + 1 + 52 + 5,
                flags::ACK | flags::PSH,
                &ts6(SERVER_TSVAL6 + 10, 5002),
                b"HTTP/1.1 200 OK",
            );
            let sent = server6(&mut w, &mut io, reply);
            let b = &sent[0].1;
            assert_eq!(ends6(b), ((VIP6, 80), (CLIENT6, 40000)));
            assert_eq!(seq_ack6(b), (cookie + 1, ISN6 + 6));
            assert_eq!(tsopt6(b), (our_tsval + 10, 5002));

            // A later client segment: the cookie's delta on its ack, the header's on its seq.
            let more = tcp_frame_v6(
                (CLIENT6, 40000),
                (VIP6, 80),
                ISN6 + 6,
                cookie + 16,
                flags::ACK,
                &ts6(5003, our_tsval + 10),
                b"x",
            );
            let sent = client6(&mut w, &mut io, more);
            assert_eq!(seq_ack6(&sent[0].1), (ISN6 + 6 + 52, SERVER_ISN6 + 16));
            assert_eq!(w.counters().proxy_headers_inserted.get(), 2);
        }
    }
}

/// The staged pipeline ([`WorkerConfig::staged_from`] 0) and the packet-by-packet
/// one are the same function of the input: random bursts of a few flows' packets
/// (handshakes, data, closes, resets, the servers' replies to the local ports
/// the gateway chose), ARP, echo requests and garbage, cut at random, leave
/// both workers with the same outputs after every burst and the same counters.
mod staged_equals_one_by_one {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Input {
        /// A client packet of flow `flow` with TCP flags `flags` (a data
        /// segment when it carries ACK alone).
        Client {
            flow: u16,
            flags: u8,
        },
        /// The server's packet to the `nth` local port seen so far.
        Server {
            nth: usize,
            flags: u8,
        },
        Udp {
            flow: u16,
        },
        /// [`Input::Client`] with a VLAN tag.
        Tagged {
            flow: u16,
            flags: u8,
        },
        Arp,
        Echo,
        Garbage(Vec<u8>),
    }

    fn input() -> impl Strategy<Value = Input> {
        let tcp_flags = prop_oneof![
            Just(flags::SYN),
            Just(flags::ACK),
            Just(flags::ACK | flags::PSH),
            Just(flags::FIN | flags::ACK),
            Just(flags::RST),
            Just(flags::SYN | flags::ACK),
        ];
        prop_oneof![
            4 => (0..6u16, tcp_flags.clone()).prop_map(|(flow, flags)| Input::Client { flow, flags }),
            3 => (0..8usize, tcp_flags.clone()).prop_map(|(nth, flags)| Input::Server { nth, flags }),
            1 => (0..3u16).prop_map(|flow| Input::Udp { flow }),
            1 => (0..6u16, tcp_flags.clone()).prop_map(|(flow, flags)| Input::Tagged { flow, flags }),
            1 => Just(Input::Arp),
            1 => Just(Input::Echo),
            1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Input::Garbage),
        ]
    }

    fn frame(input: &Input, lports: &[u16]) -> (BufFrame, u16) {
        let data = |f: u8| if f & flags::PSH != 0 { &b"GET / HTTP/1.0\r\n\r\n"[..] } else { &[][..] };
        match input {
            Input::Client { flow, flags } => {
                let b = tcp_frame((CLIENT, 40000 + flow), (VIP, 80), 1000, 1, *flags, &[], data(*flags));
                (on_wire(MAC_CLIENT, MAC_PORT0, &b), 0)
            }
            Input::Server { nth, flags } => {
                let lport = lports.get(nth % lports.len().max(1)).copied().unwrap_or(1024);
                let b = tcp_frame((RS1, 8080), (LIP, lport), 5000, 1001, *flags, &[], data(*flags));
                (on_wire(MAC_RS1, MAC_PORT1, &b), 1)
            }
            Input::Udp { flow } => {
                let b = udp_frame((CLIENT, 50000 + flow), (VIP, 53), b"query", true);
                (on_wire(MAC_CLIENT, MAC_PORT0, &b), 0)
            }
            Input::Tagged { flow, flags } => {
                let segment = crate::wire::tcp::TcpRepr {
                    src_port: 40000 + flow,
                    dst_port: 80,
                    seq_number: 1000,
                    ack_number: 1,
                    flags: *flags,
                    window_len: 65535,
                    options: &[],
                    payload: data(*flags),
                };
                let tag = crate::wire::ethernet::VlanTag { pcp: 0, dei: false, vid: 10 };
                (BufFrame::new(&build::ipv4(CLIENT, VIP).macs(MAC_CLIENT, MAC_PORT0).vlan(tag).tcp(&segment)), 0)
            }
            Input::Arp => (arp_request(CLIENT, MAC_CLIENT, GW_CLIENT_SIDE), 0),
            Input::Echo => {
                let echo = Icmpv4Repr {
                    msg_type: msg_type::ECHO_REQUEST,
                    msg_code: 0,
                    rest_of_header: 7 << 16 | 1,
                    data: b"ping",
                };
                (on_wire(MAC_CLIENT, MAC_PORT0, &build::ipv4(CLIENT, VIP).dont_frag(false).icmp(&echo)), 0)
            }
            Input::Garbage(bytes) => (BufFrame::new(bytes), 0),
        }
    }

    type Outputs = (Vec<(u16, Vec<u8>)>, Vec<(u16, Vec<u8>)>, usize, usize);

    fn take(io: &mut Recorder) -> Outputs {
        let out = (io.take_sent(), std::mem::take(&mut io.redirected), io.freed, io.kernel.len());
        io.freed = 0;
        io.kernel.clear();
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn on_any_bursts(inputs in proptest::collection::vec(input(), 1..120), cuts in proptest::collection::vec(1..40usize, 1..12)) {
            let (mut staged, mut staged_io) = resolved_staged_from(0);
            let (mut plain, mut plain_io) = resolved_staged_from(u64::MAX);
            take(&mut staged_io);
            take(&mut plain_io);
            let mut lports: Vec<u16> = Vec::new();
            let mut rest = &inputs[..];
            let mut cut = cuts.iter().cycle();
            let mut now = 1000;
            while !rest.is_empty() {
                let n = (*cut.next().unwrap()).min(rest.len());
                let (burst, tail) = rest.split_at(n);
                rest = tail;
                // Both workers get the same frames on the same port, one burst per port run.
                let frames: Vec<(BufFrame, u16)> = burst.iter().map(|i| frame(i, &lports)).collect();
                let mut start = 0;
                while start < frames.len() {
                    let port = frames[start].1;
                    let end = frames[start..].iter().position(|f| f.1 != port).map_or(frames.len(), |p| start + p);
                    let mut a: Vec<BufFrame> = frames[start..end].iter().map(|f| f.0.clone()).collect();
                    let mut b = a.clone();
                    staged.process_burst(&mut a, port, now, &mut staged_io);
                    plain.process_burst(&mut b, port, now, &mut plain_io);
                    start = end;
                }
                let (out_a, out_b) = (take(&mut staged_io), take(&mut plain_io));
                prop_assert_eq!(&out_a, &out_b);
                for (port, bytes) in &out_a.0 {
                    if *port == 1 && bytes.len() >= 38 && ip_src(bytes).0 == LIP && !lports.contains(&ip_src(bytes).1) {
                        lports.push(ip_src(bytes).1);
                    }
                }
                now += 1;
            }
            let (ca, cb) = (staged.counters(), plain.counters());
            prop_assert_eq!(ca.drops.iter().map(|c| c.get()).collect::<Vec<_>>(), cb.drops.iter().map(|c| c.get()).collect::<Vec<_>>());
            prop_assert_eq!(ca.rx_packets.get(), cb.rx_packets.get());
            prop_assert_eq!(ca.tx_packets.get(), cb.tx_packets.get());
            prop_assert_eq!(staged.director().conns().len(), plain.director().conns().len());
        }
    }
}

/// Bursts through [`Worker::process_burst`], as the DPDK loop hands them over.
/// However the burst is staged, each frame must meet the state every earlier
/// frame of the burst left (the connection a SYN created, a connection a FIN
/// ended and a SYN reopened), every kind of frame must still go where it
/// went one at a time, and the frames of one flow must leave in the order
/// they came.
mod burst {
    use super::*;
    use std::collections::HashSet;

    use crate::conn::{FlowKey, State};
    use crate::model::Protocol;
    use crate::wire::ipv4::Ipv4Packet;

    /// The SYN-proxied service beside the test services (port 80 FNAT, 53 UDP).
    const PROXIED: u16 = 443;
    const MSS: [u8; 4] = [2, 4, 5, 0xb4];
    const SEG: usize = 16;

    /// A client port's initial sequence number, and its server's.
    fn isn(cport: u16) -> u32 {
        u32::from(cport) << 12
    }
    fn server_isn(cport: u16) -> u32 {
        0x7000_0000 + (u32::from(cport) << 12)
    }

    /// Segment `i` (0-based) of the client on `cport`, after its handshake:
    /// [`SEG`] bytes of `i`, sequence numbers following on.
    fn client_seg(cport: u16, i: u8) -> Vec<u8> {
        let seq = isn(cport) + 1 + u32::from(i) * SEG as u32;
        tcp_frame((CLIENT, cport), (VIP, 80), seq, server_isn(cport) + 1, flags::ACK | flags::PSH, &[], &[i; SEG])
    }

    /// The client's ACK of its server's SYN-ACK.
    fn client_ack(cport: u16) -> Vec<u8> {
        tcp_frame((CLIENT, cport), (VIP, 80), isn(cport) + 1, server_isn(cport) + 1, flags::ACK, &[], &[])
    }

    /// The client's FIN after `segs` segments.
    fn client_fin(cport: u16, segs: u8) -> Vec<u8> {
        client_end(cport, segs, flags::FIN | flags::ACK)
    }

    /// The client's segment of `flags` (a FIN or RST) after `segs` segments.
    fn client_end(cport: u16, segs: u8, flags: u8) -> Vec<u8> {
        let seq = isn(cport) + 1 + u32::from(segs) * SEG as u32;
        tcp_frame((CLIENT, cport), (VIP, 80), seq, server_isn(cport) + 1, flags, &[], &[])
    }

    /// Segment `i` of the server `rs` answering the client on `cport` through `lport`.
    fn server_seg(rs: Ipv4Addr, lport: u16, cport: u16, i: u8) -> Vec<u8> {
        let seq = server_isn(cport) + 1 + u32::from(i) * SEG as u32;
        tcp_frame((rs, 8080), (LIP, lport), seq, isn(cport) + 1, flags::ACK | flags::PSH, &[], &[0x80 | i; SEG])
    }

    fn mac_of(rs: Ipv4Addr) -> MacAddr {
        if rs == RS1 {
            MAC_RS1
        } else {
            MAC_RS2
        }
    }

    fn from_client(b: &[u8]) -> BufFrame {
        on_wire(MAC_CLIENT, MAC_PORT0, b)
    }

    fn from_server(rs: Ipv4Addr, b: &[u8]) -> BufFrame {
        on_wire(mac_of(rs), MAC_PORT1, b)
    }

    /// (seq, ack, flags, payload) of a TCP frame.
    fn tcp(b: &[u8]) -> (u32, u32, u8, Vec<u8>) {
        let t = TcpPacket::new_checked(&b[34..]).unwrap();
        (t.seq_number(), t.ack_number(), t.flags(), t.payload().to_vec())
    }

    /// The IPv4 TCP or UDP frames of `sent` from `src` to `dst`, in the
    /// order they left, with the port each left on.
    fn leaving(sent: &[(u16, Vec<u8>)], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> Vec<(u16, Vec<u8>)> {
        sent.iter()
            .filter(|(_, b)| b[12..14] == [8, 0] && matches!(b[23], 6 | 17) && ip_src(b) == src && ip_dst(b) == dst)
            .cloned()
            .collect()
    }

    /// The frames of `sent` of IPv4 protocol `proto` (ICMP) or, for `None`, ARP.
    fn of_kind(sent: &[(u16, Vec<u8>)], proto: Option<u8>) -> Vec<(u16, Vec<u8>)> {
        sent.iter()
            .filter(|(_, b)| match proto {
                None => b[12..14] == [8, 6],
                Some(p) => b[12..14] == [8, 0] && b[23] == p,
            })
            .cloned()
            .collect()
    }

    /// A connection opened before the bursts: its server and local port.
    #[derive(Clone, Copy, Debug)]
    struct Opened {
        rs: Ipv4Addr,
        lport: u16,
    }

    /// Opens the client `cport`'s connection frame by frame (SYN, the
    /// server's SYN-ACK, the client's ACK): established.
    fn establish(w: &mut Worker<BufFrame>, io: &mut Recorder, cport: u16, now: u32) -> Opened {
        let syn = tcp_frame((CLIENT, cport), (VIP, 80), isn(cport), 0, flags::SYN, &MSS, &[]);
        w.process(from_client(&syn), 0, now, io);
        let out = io.take_sent().remove(0).1;
        let ((rs, _), (_, lport)) = (ip_dst(&out), ip_src(&out));
        let synack =
            tcp_frame((rs, 8080), (LIP, lport), server_isn(cport), isn(cport) + 1, flags::SYN | flags::ACK, &MSS, &[]);
        w.process(from_server(rs, &synack), 1, now, io);
        w.process(from_client(&client_ack(cport)), 0, now, io);
        assert_eq!(io.take_sent().len(), 2, "SYN-ACK and ACK of {cport} forwarded");
        assert_eq!(state_of(w, cport), Some(State::Established));
        Opened { rs, lport }
    }

    /// The state of the client `cport`'s connection to VIP:80, if it has one.
    fn state_of(w: &Worker<BufFrame>, cport: u16) -> Option<State> {
        let key = FlowKey { proto: Protocol::Tcp, src: CLIENT, sport: cport, dst: VIP, dport: 80 };
        w.director().lookup(&key).map(|(id, _)| w.director().conn(id).state())
    }

    /// Worker `id` of `workers`, FNAT, its neighbours resolved, with
    /// VIP:[`PROXIED`] a SYN-proxied service of the same servers.
    fn proxying_worker(id: u16, workers: u16) -> (Worker<BufFrame>, Recorder) {
        let mut cfg = WorkerConfig::new(id, workers);
        cfg.conn_capacity = 1024;
        cfg.template_capacity = 64;
        cfg.synproxy.seed = *b"burst-test-seed!";
        let mut ed = service(ForwardMethod::FullNat, SchedulerKind::Rr).edit();
        let key = ServiceKey::tcp(VIP.into(), PROXIED);
        ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(key) }).unwrap();
        for rs in [RS1, RS2] {
            ed.add_dest(&key, DestSpec::new(rs.into(), 8443).with_method(ForwardMethod::FullNat)).unwrap();
        }
        ed.add_laddr(&key, LocalAddr { addr: LIP.into(), ifname: "port1".into() }).unwrap();
        enable_synproxy(&mut ed, key);
        let mut w = Worker::new(&cfg, ed.finish(), net(), 1000).unwrap();
        let mut io = Recorder::default();
        resolve(&mut w, &mut io, 1000);
        (w, io)
    }

    /// Asserts that `out` are the client segments `segs` (then, for `end`
    /// (n, flags), its [`client_end`] after n segments) of `cport`'s
    /// connection `c`, as FNAT forwards them, in order.
    fn assert_client_flow(out: &[(u16, Vec<u8>)], cport: u16, c: Opened, segs: &[u8], end: Option<(u8, u8)>) {
        let want: Vec<(u32, u8, Vec<u8>)> = segs
            .iter()
            .map(|&i| (isn(cport) + 1 + u32::from(i) * SEG as u32, flags::ACK | flags::PSH, vec![i; SEG]))
            .chain(end.map(|(n, fl)| (isn(cport) + 1 + u32::from(n) * SEG as u32, fl, vec![])))
            .collect();
        let got: Vec<(u32, u8, Vec<u8>)> = out
            .iter()
            .map(|(port, b)| {
                assert_eq!((*port, macs(b)), (1, (mac_of(c.rs), MAC_PORT1)), "client {cport} toward {}", c.rs);
                assert_eq!(toa_of(b), None, "established: no TOA");
                assert_checksums_valid(b);
                let (seq, ack, fl, payload) = tcp(b);
                assert_eq!(ack, server_isn(cport) + 1);
                (seq, fl, payload)
            })
            .collect();
        assert_eq!(got, want, "client {cport}'s segments, in order");
    }

    /// One burst from the clients mixing every path, then one from the
    /// servers: established connections' segments interleaved, a new
    /// connection's SYN with its ACK and data behind it, a new UDP flow's
    /// two datagrams, an ARP request for us, a SYN to a proxied service, a
    /// malformed frame; then replies, the new connection's SYN-ACK, an ICMP
    /// error about a connection, a reply for the other worker's local port,
    /// an ARP request and a truncated frame.
    #[test]
    fn a_mixed_burst_goes_where_its_frames_go_one_by_one_in_each_flows_order() {
        let (mut w, mut io) = proxying_worker(0, 2);
        let (mut w1, mut io1) = proxying_worker(1, 2);
        let (ca, cb, cc, cd, cn, cu, cp) = (40000, 40002, 40004, 40006, 41000, 5353, 42000);
        let a = establish(&mut w, &mut io, ca, 1000);
        let b = establish(&mut w, &mut io, cb, 1000);
        let c = establish(&mut w, &mut io, cc, 1000);
        let d = establish(&mut w1, &mut io1, cd, 1000);
        assert_eq!((a.rs, b.rs, c.rs), (RS1, RS2, RS1), "rr");
        assert_eq!((a.lport % 2, d.lport % 2), (0, 1), "each worker's share of the local ports");
        let freed = io.freed;
        let before = (w.counters().rx_packets.get(), w.counters().new_conns.get());

        // The clients' burst.
        let n_syn = tcp_frame((CLIENT, cn), (VIP, 80), isn(cn), 0, flags::SYN, &MSS, &[]);
        let n_ack = client_ack(cn);
        let n_seg = |i: u8| {
            let seq = isn(cn) + 1 + u32::from(i) * SEG as u32;
            tcp_frame((CLIENT, cn), (VIP, 80), seq, server_isn(cn) + 1, flags::ACK | flags::PSH, &[], &[i; SEG])
        };
        let query = |q: &[u8]| udp_frame((CLIENT, cu), (VIP, 53), q, true);
        let proxied_syn = tcp_frame((CLIENT, cp), (VIP, PROXIED), isn(cp), 0, flags::SYN, &MSS, &[]);
        let mut bad_sum = client_seg(ca, 9);
        bad_sum[24] ^= 0xff;
        let mut burst: Vec<BufFrame> = vec![
            from_client(&client_seg(ca, 0)),
            from_client(&n_syn),
            from_client(&client_seg(cb, 0)),
            from_client(&query(b"query one")),
            arp_request(CLIENT, MAC_CLIENT, GW_CLIENT_SIDE),
            from_client(&n_ack),
            from_client(&client_seg(ca, 1)),
            from_client(&bad_sum),
            from_client(&proxied_syn),
            from_client(&n_seg(0)),
            from_client(&client_seg(cc, 0)),
            from_client(&client_seg(ca, 2)),
            from_client(&query(b"query two")),
            from_client(&n_seg(1)),
            from_client(&client_fin(cb, 1)),
            from_client(&client_fin(ca, 3)),
        ];
        let frames = burst.len() as u64;
        w.process_burst(&mut burst, 0, 1010, &mut io);
        let sent = io.take_sent();

        // Established connections: each flow's segments in order, its FIN last.
        let a_out = leaving(&sent, (LIP, a.lport), (a.rs, 8080));
        assert_client_flow(&a_out, ca, a, &[0, 1, 2], Some((3, flags::FIN | flags::ACK)));
        let b_out = leaving(&sent, (LIP, b.lport), (b.rs, 8080));
        assert_client_flow(&b_out, cb, b, &[0], Some((1, flags::FIN | flags::ACK)));
        let c_out = leaving(&sent, (LIP, c.lport), (c.rs, 8080));
        assert_client_flow(&c_out, cc, c, &[0], None);

        // The new connection: its SYN scheduled (rr's next), its ACK and data
        // behind it on the connection the SYN created, in order.
        let n_first = sent.iter().find(|(_, f)| f[23] == 6 && ip_dst(f).1 == 8080 && tcp(f).2 == flags::SYN);
        let n_lport = ip_src(&n_first.expect("the new connection's SYN left").1).1;
        let n_out = leaving(&sent, (LIP, n_lport), (RS2, 8080));
        let n_got: Vec<_> = n_out.iter().map(|(_, f)| (tcp(f), toa_of(f))).collect();
        let toa = Some((cn, CLIENT));
        assert_eq!(
            n_got,
            vec![
                ((isn(cn), 0, flags::SYN, vec![]), toa),
                ((isn(cn) + 1, server_isn(cn) + 1, flags::ACK, vec![]), toa),
                ((isn(cn) + 1, server_isn(cn) + 1, flags::ACK | flags::PSH, vec![0; SEG]), None),
                ((isn(cn) + 1 + SEG as u32, server_isn(cn) + 1, flags::ACK | flags::PSH, vec![1; SEG]), None),
            ],
            "SYN, ACK, data: one connection, in order"
        );
        for (port, f) in &n_out {
            assert_eq!((*port, macs(f)), (1, (MAC_RS2, MAC_PORT1)));
            assert_checksums_valid(f);
        }
        assert!(![a.lport, b.lport, c.lport].contains(&n_lport));

        // The UDP flow: both datagrams on one connection, in order.
        let u_first = sent.iter().find(|(_, f)| f[23] == 17).expect("the first query left");
        let u_lport = ip_src(&u_first.1).1;
        let u_out = leaving(&sent, (LIP, u_lport), (RS1, 53));
        let queries: Vec<_> = u_out.iter().map(|(port, f)| (*port, macs(f), f[42..].to_vec())).collect();
        assert_eq!(
            queries,
            vec![(1, (MAC_RS1, MAC_PORT1), b"query one".to_vec()), (1, (MAC_RS1, MAC_PORT1), b"query two".to_vec())]
        );
        u_out.iter().for_each(|(_, f)| assert_checksums_valid(f));

        // The ARP request is answered on its port, from our MAC to the client's.
        let arp = of_kind(&sent, None);
        assert_eq!(arp.len(), 1);
        let (port, reply) = &arp[0];
        assert_eq!((*port, macs(reply)), (0, (MAC_CLIENT, MAC_PORT0)));
        assert_eq!(
            (&reply[20..22], &reply[22..28], &reply[28..32]),
            (&[0, 2][..], &MAC_PORT0.0[..], &GW_CLIENT_SIDE.octets()[..])
        );
        assert_eq!((&reply[32..38], &reply[38..42]), (&MAC_CLIENT.0[..], &CLIENT.octets()[..]));

        // The proxied SYN is answered with a cookie, and opens nothing.
        let cookie = leaving(&sent, (VIP, PROXIED), (CLIENT, cp));
        assert_eq!(cookie.len(), 1);
        let (port, synack) = &cookie[0];
        assert_eq!((*port, macs(synack)), (0, (MAC_CLIENT, MAC_PORT0)));
        let (_, ack, fl, _) = tcp(synack);
        assert_eq!((fl, ack), (flags::SYN | flags::ACK, isn(cp) + 1));
        assert_checksums_valid(synack);
        assert_eq!(w.counters().synproxy.syn_acks_sent.get(), 1);

        // Nothing else left; the malformed frame was dropped, counted, freed.
        assert_eq!(sent.len(), a_out.len() + b_out.len() + c_out.len() + n_out.len() + u_out.len() + 1 + 1, "{sent:?}");
        assert!(io.redirected.is_empty());
        let cs = w.counters();
        assert_eq!(cs.dropped(DropReason::BadIpChecksum.into()), 1);
        assert_eq!(cs.total_drops(), 1, "{:?}", cs.nonzero_drops());
        assert_eq!(io.freed - freed, 1, "the malformed frame; the others left");
        assert_eq!((cs.rx_packets.get(), cs.new_conns.get()), (before.0 + frames, before.1 + 2));
        assert_eq!(w.director().conns().len(), 3 + 2, "N and the UDP flow: the proxied SYN left no state");
        let states = [ca, cb, cc, cn].map(|cport| state_of(&w, cport));
        assert_eq!(states, [State::CloseWait, State::CloseWait, State::Established, State::Established].map(Some));

        // The servers' burst, on the other port.
        let n_synack =
            tcp_frame((RS2, 8080), (LIP, n_lport), server_isn(cn), isn(cn) + 1, flags::SYN | flags::ACK, &MSS, &[]);
        let unreachable = crate::xmit::test_support::icmp_error(RS1, LIP, 3, 3, &c_out[0].1[14..], 28);
        let d_reply = server_seg(d.rs, d.lport, cd, 0);
        let mut truncated = server_seg(a.rs, a.lport, ca, 7);
        truncated.truncate(30);
        let answer = udp_frame((RS1, 53), (LIP, u_lport), b"answer", true);
        let b_fin = tcp_frame(
            (b.rs, 8080),
            (LIP, b.lport),
            server_isn(cb) + 1,
            isn(cb) + 1 + SEG as u32 + 1,
            flags::FIN | flags::ACK,
            &[],
            &[],
        );
        let replies: Vec<BufFrame> = vec![
            from_server(a.rs, &server_seg(a.rs, a.lport, ca, 0)),
            from_server(RS2, &n_synack),
            from_server(RS1, &unreachable),
            from_server(d.rs, &d_reply),
            from_server(a.rs, &server_seg(a.rs, a.lport, ca, 1)),
            arp_request(RS1, MAC_RS1, LIP),
            BufFrame::new(&truncated),
            from_server(RS1, &answer),
            from_server(RS2, &server_seg(RS2, n_lport, cn, 0)),
            from_server(a.rs, &server_seg(a.rs, a.lport, ca, 2)),
            from_server(b.rs, &b_fin),
        ];
        w.process_burst(&mut replies.into_iter().collect::<Vec<_>>(), 1, 1011, &mut io);
        let sent = io.take_sent();
        let to_client = |sent: &[(u16, Vec<u8>)], cport: u16| {
            let out = leaving(sent, (VIP, 80), (CLIENT, cport));
            out.iter()
                .map(|(port, f)| {
                    assert_eq!((*port, macs(f)), (0, (MAC_CLIENT, MAC_PORT0)));
                    assert_checksums_valid(f);
                    tcp(f)
                })
                .collect::<Vec<_>>()
        };
        let server = |cport: u16, i: u8| {
            (
                server_isn(cport) + 1 + u32::from(i) * SEG as u32,
                isn(cport) + 1,
                flags::ACK | flags::PSH,
                vec![0x80 | i; SEG],
            )
        };
        assert_eq!(to_client(&sent, ca), vec![server(ca, 0), server(ca, 1), server(ca, 2)], "A's replies in order");
        assert_eq!(
            to_client(&sent, cn),
            vec![(server_isn(cn), isn(cn) + 1, flags::SYN | flags::ACK, vec![]), server(cn, 0)],
            "the new connection's SYN-ACK, then its data"
        );
        assert_eq!(
            to_client(&sent, cb),
            vec![(server_isn(cb) + 1, isn(cb) + 2 + SEG as u32, flags::FIN | flags::ACK, vec![])]
        );
        let answers = leaving(&sent, (VIP, 53), (CLIENT, cu));
        assert_eq!(answers.len(), 1);
        assert_eq!(
            (answers[0].0, macs(&answers[0].1), &answers[0].1[42..]),
            (0, (MAC_CLIENT, MAC_PORT0), &b"answer"[..])
        );

        // The ICMP error reaches the client from the VIP, about its own packet.
        let icmp = of_kind(&sent, Some(1));
        assert_eq!(icmp.len(), 1);
        let (port, err) = &icmp[0];
        assert_eq!((*port, macs(err)), (0, (MAC_CLIENT, MAC_PORT0)));
        assert_eq!((ip_src(err).0, ip_dst(err).0, icmp_header(err)), (VIP, CLIENT, (3, 3, [0; 4])));
        let quoted = Ipv4Packet::new_unchecked(&err[42..]);
        assert_eq!((quoted.src_addr(), quoted.dst_addr()), (CLIENT, VIP));
        assert_eq!((u16::from_be_bytes([err[62], err[63]]), u16::from_be_bytes([err[64], err[65]])), (cc, 80));
        assert_checksums_valid(err);
        assert_eq!(w.counters().icmp_errors_relayed.get(), 1);

        // The ARP request for the local address is answered toward the server.
        let arp = of_kind(&sent, None);
        assert_eq!(arp.len(), 1);
        let (port, reply) = &arp[0];
        assert_eq!((*port, macs(reply)), (1, (MAC_RS1, MAC_PORT1)));
        assert_eq!(
            (&reply[20..22], &reply[22..28], &reply[28..32]),
            (&[0, 2][..], &MAC_PORT1.0[..], &LIP.octets()[..])
        );

        assert_eq!(sent.len(), 3 + 2 + 1 + 1 + 1 + 1, "{sent:?}");
        let cs = w.counters();
        assert_eq!((cs.dropped(DropReason::Truncated.into()), cs.total_drops()), (1, 2));
        assert_eq!(cs.redirected_out.get(), 1);
        assert_eq!(state_of(&w, cb), Some(State::TimeWait), "the server's FIN after the client's");

        // The reply for worker 1's local port went to it untouched; it forwards it.
        let (to, frame) = io.redirected.remove(0);
        assert_eq!((to, &frame[..]), (1, from_server(d.rs, &d_reply).data()));
        assert!(io.redirected.is_empty());
        w1.process_redirected(BufFrame::new(&frame), 1, 1011, &mut io1);
        assert_eq!(to_client(&io1.take_sent(), cd), vec![server(cd, 0)]);
    }

    /// Connections ended early in a burst and reopened by a bare SYN later in
    /// it (conn_reuse): an established one by the client's RST (CLOSE), a
    /// half-open one by its FIN (TIME_WAIT). What came before the end goes
    /// on the old connection; each SYN is scheduled afresh on a new local
    /// port, and what follows it goes on the new connection. The servers'
    /// burst then finds the new connections, and no longer the old.
    #[test]
    fn connections_ended_and_reopened_in_one_burst_carry_each_segment_on_its_own() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        let (cx, cy, ch) = (40000, 40002, 40004);
        let x = establish(&mut w, &mut io, cx, 1000);
        let y = establish(&mut w, &mut io, cy, 1000);
        let h_syn = tcp_frame((CLIENT, ch), (VIP, 80), isn(ch), 0, flags::SYN, &MSS, &[]);
        w.process(from_client(&h_syn), 0, 1000, &mut io);
        let h_out = io.take_sent().remove(0).1;
        let h = Opened { rs: ip_dst(&h_out).0, lport: ip_src(&h_out).1 };
        assert_eq!((x.rs, y.rs, h.rs), (RS1, RS2, RS1), "rr");
        assert_eq!(state_of(&w, ch), Some(State::SynRecv));

        let again = |cport: u16| isn(cport) + 0x10_0000;
        let reopen = |cport: u16| {
            let a = again(cport);
            [
                tcp_frame((CLIENT, cport), (VIP, 80), a, 0, flags::SYN, &MSS, &[]),
                tcp_frame((CLIENT, cport), (VIP, 80), a + 1, 0x5000, flags::ACK, &[], &[]),
                tcp_frame((CLIENT, cport), (VIP, 80), a + 1, 0x5000, flags::ACK | flags::PSH, &[], b"again"),
            ]
        };
        let ([x_syn, x_ack, x_data], [h_syn, h_ack, h_data]) = (reopen(cx), reopen(ch));
        let burst = [
            client_seg(cx, 0),
            client_seg(cy, 0),
            client_end(cx, 1, flags::RST | flags::ACK),
            client_fin(ch, 0),
            client_seg(cy, 1),
            x_syn,
            h_syn,
            x_ack,
            h_ack,
            x_data,
            client_seg(cy, 2),
            h_data,
        ];
        w.process_burst(&mut burst.iter().map(|f| from_client(f)).collect::<Vec<_>>(), 0, 1010, &mut io);
        let sent = io.take_sent();

        let x_old = leaving(&sent, (LIP, x.lport), (x.rs, 8080));
        assert_client_flow(&x_old, cx, x, &[0], Some((1, flags::RST | flags::ACK)));
        let h_old: Vec<_> = leaving(&sent, (LIP, h.lport), (h.rs, 8080)).iter().map(|(_, f)| tcp(f)).collect();
        assert_eq!(h_old, vec![(isn(ch) + 1, server_isn(ch) + 1, flags::FIN | flags::ACK, vec![])]);
        let y_out = leaving(&sent, (LIP, y.lport), (y.rs, 8080));
        assert_client_flow(&y_out, cy, y, &[0, 1, 2], None);

        // The rest is the new connections': rr's next servers, new local ports.
        let mut news = 0;
        for (cport, old, rs) in [(cx, x, RS2), (ch, h, RS1)] {
            let syn = sent.iter().find(|(_, f)| tcp(f).0 == again(cport)).expect("the reopening SYN left");
            let lport = ip_src(&syn.1).1;
            assert!(![x.lport, y.lport, h.lport].contains(&lport), "{cport} reopened on a new local port, not {old:?}");
            let out = leaving(&sent, (LIP, lport), (rs, 8080));
            for (port, f) in &out {
                assert_eq!((*port, macs(f)), (1, (mac_of(rs), MAC_PORT1)));
                assert_checksums_valid(f);
            }
            let got: Vec<_> = out.iter().map(|(_, f)| (tcp(f), toa_of(f))).collect();
            let (a, toa) = (again(cport), Some((cport, CLIENT)));
            assert_eq!(
                got,
                vec![
                    ((a, 0, flags::SYN, vec![]), toa),
                    ((a + 1, 0x5000, flags::ACK, vec![]), toa),
                    ((a + 1, 0x5000, flags::ACK | flags::PSH, b"again".to_vec()), None),
                ],
                "{cport}'s new connection: SYN, ACK and data, in order"
            );
            assert_eq!(state_of(&w, cport), Some(State::Established));
            news += out.len();
        }
        assert_eq!(sent.len(), x_old.len() + h_old.len() + y_out.len() + news, "{sent:?}");
        let c = w.counters();
        assert_eq!((c.new_conns.get(), c.conns_reused.get(), c.total_drops()), (5, 2, 0));
        assert_eq!(w.director().conns().len(), 3, "the ended connections are gone");

        // The servers' burst: the reopened connection's SYN-ACK reaches the
        // client; a late segment to the old local port finds nothing.
        let x_new = sent.iter().find(|(_, f)| tcp(f).0 == again(cx)).map(|(_, f)| ip_src(f).1).unwrap();
        let a = again(cx);
        let synack = tcp_frame((RS2, 8080), (LIP, x_new), 0x4fff, a + 1, flags::SYN | flags::ACK, &[], &[]);
        let replies = [
            from_server(RS2, &synack),
            from_server(x.rs, &server_seg(x.rs, x.lport, cx, 0)),
            from_server(y.rs, &server_seg(y.rs, y.lport, cy, 0)),
        ];
        w.process_burst(&mut replies.into_iter().collect::<Vec<_>>(), 1, 1011, &mut io);
        let sent = io.take_sent();
        let to_x: Vec<_> = leaving(&sent, (VIP, 80), (CLIENT, cx)).iter().map(|(_, f)| tcp(f)).collect();
        assert_eq!(to_x, vec![(0x4fff, a + 1, flags::SYN | flags::ACK, vec![])]);
        assert_eq!(leaving(&sent, (VIP, 80), (CLIENT, cy)).len(), 1);
        assert_eq!(sent.len(), 2);
        assert_eq!(w.counters().dropped(Discard::NoConnection), 1, "the old connection's late segment");
    }

    /// Bursts of every size around the DPDK burst of 32, of new connections
    /// interleaved: frame `i` is of flow `i % 8`, its SYN first, then its
    /// handshake ACK, then its segments. Each flow's segments follow its SYN onto its connection,
    /// in order, however the burst is cut into stages.
    #[test]
    fn bursts_of_any_size_carry_each_flow_on_the_connection_its_syn_opened() {
        const FLOWS: usize = 8;
        for n in [0usize, 1, 7, 31, 32, 33, 64, 100] {
            let (mut w, mut io) = resolved(ForwardMethod::FullNat);
            let cport = |i: usize| 40000 + (i % FLOWS) as u16;
            let frames = (0..n).map(|i| match i / FLOWS {
                0 => from_client(&tcp_frame((CLIENT, cport(i)), (VIP, 80), isn(cport(i)), 0, flags::SYN, &MSS, &[])),
                1 => from_client(&client_ack(cport(i))),
                j => from_client(&client_seg(cport(i), (j - 2) as u8)),
            });
            w.process_burst(&mut frames.collect::<Vec<_>>(), 0, 1010, &mut io);
            let sent = io.take_sent();
            assert_eq!(sent.len(), n, "burst of {n}: every frame left");
            let c = w.counters();
            assert_eq!(
                (c.rx_packets.get(), c.new_conns.get(), c.total_drops()),
                (3 + n as u64, n.min(FLOWS) as u64, 0)
            );
            let mut lports = HashSet::new();
            for flow in 0..n.min(FLOWS) {
                let cp = cport(flow);
                let syn = sent.iter().find(|(_, f)| tcp(f).0 == isn(cp)).expect("the flow's SYN left");
                let (lport, rs) = (ip_src(&syn.1).1, ip_dst(&syn.1).0);
                assert_eq!(rs, if flow % 2 == 0 { RS1 } else { RS2 }, "rr, in the flows' order");
                assert!(lports.insert(lport), "a local port per connection");
                let out = leaving(&sent, (LIP, lport), (rs, 8080));
                let handshake: Vec<_> = out.iter().take(2).map(|(_, f)| (tcp(f).2, toa_of(f))).collect();
                let want = [(flags::SYN, Some((cp, CLIENT))), (flags::ACK, Some((cp, CLIENT)))];
                assert_eq!(handshake, want[..out.len().min(2)], "burst of {n}, flow {flow}: SYN, then ACK");
                let segs = (flow..n).step_by(FLOWS).count().saturating_sub(2) as u8;
                let rest = &out[out.len().min(2)..];
                assert_client_flow(rest, cp, Opened { rs, lport }, &(0..segs).collect::<Vec<_>>(), None);
            }
        }
    }
}

/// The egress cache ([`super::egress`]): whatever changes where packets to
/// an address go (the neighbour's MAC, a route, a link, the neighbour's
/// lifetime) reaches the very next packet of a connection already flowing.
mod egress_cache {
    use super::*;

    const MAC_RS1_MOVED: MacAddr = MacAddr([0x52, 0x54, 0, 0, 2, 0x10]);
    const MAC_CLIENT_MOVED: MacAddr = MacAddr([0x52, 0x54, 0, 0, 2, 0x01]);

    /// Opens the FNAT connection from (CLIENT, 40000) to RS1 (rr's first
    /// pick) at `now`; returns its local port.
    fn established(w: &mut Worker<BufFrame>, io: &mut Recorder, now: u32) -> u16 {
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 0, flags::SYN, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, now, io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{:?}", w.counters().nonzero_drops());
        assert_eq!(ip_dst(&sent[0].1), (RS1, 8080));
        let lport = ip_src(&sent[0].1).1;
        let synack = tcp_frame((RS1, 8080), (LIP, lport), 5000, 1001, flags::SYN | flags::ACK, &[], &[]);
        w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, now, io);
        let ack = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags::ACK, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &ack), 0, now, io);
        assert_eq!(io.take_sent().len(), 2);
        lport
    }

    /// The client's next segment at `now`: what left, by port.
    fn from_client(w: &mut Worker<BufFrame>, io: &mut Recorder, now: u32) -> Vec<(u16, Vec<u8>)> {
        let data = tcp_frame((CLIENT, 40000), (VIP, 80), 1001, 5001, flags::ACK | flags::PSH, &[], b"x");
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &data), 0, now, io);
        io.take_sent()
    }

    /// The server's next segment at `now` to local port `lport`.
    fn from_server(w: &mut Worker<BufFrame>, io: &mut Recorder, lport: u16, now: u32) -> Vec<(u16, Vec<u8>)> {
        let data = tcp_frame((RS1, 8080), (LIP, lport), 5001, 1002, flags::ACK | flags::PSH, &[], b"y");
        w.process(on_wire(MAC_RS1, MAC_PORT1, &data), 1, now, io);
        io.take_sent()
    }

    /// The one frame that left, as (port, destination MAC, source MAC).
    fn leaves(sent: &[(u16, Vec<u8>)]) -> (u16, MacAddr, MacAddr) {
        assert_eq!(sent.len(), 1, "{sent:?}");
        let (dst, src) = macs(&sent[0].1);
        (sent[0].0, dst, src)
    }

    #[test]
    fn a_neighbours_new_mac_takes_the_next_packet() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        let lport = established(&mut w, &mut io, 1000);
        assert_eq!(leaves(&from_client(&mut w, &mut io, 1000)), (1, MAC_RS1, MAC_PORT1));
        assert_eq!(leaves(&from_server(&mut w, &mut io, lport, 1000)), (0, MAC_CLIENT, MAC_PORT0));

        // RS1 moves to another MAC and says so (a gratuitous ARP).
        w.process(arp_request(RS1, MAC_RS1_MOVED, RS1), 1, 1001, &mut io);
        assert_eq!(leaves(&from_client(&mut w, &mut io, 1001)), (1, MAC_RS1_MOVED, MAC_PORT1));
        // The client's new MAC, as another worker learned it.
        w.learn_neighbour(CLIENT.into(), MAC_CLIENT_MOVED, 0, 1001, &mut io);
        assert_eq!(leaves(&from_server(&mut w, &mut io, lport, 1001)), (0, MAC_CLIENT_MOVED, MAC_PORT0));
        // And back, by an ARP reply.
        w.process(arp_reply(RS1, MAC_RS1, GW_SERVER_SIDE, MAC_PORT1), 1, 1002, &mut io);
        assert_eq!(leaves(&from_client(&mut w, &mut io, 1002)), (1, MAC_RS1, MAC_PORT1));
        assert_eq!(w.counters().total_drops(), 0);
    }

    /// A connection whose peer is routed no more (the servers' port has
    /// moved to another network): each of its packets is dropped as having
    /// no route and counted, in both directions, and the connection is kept,
    /// so its packets flow again once the route is back.
    #[test]
    fn an_established_connections_packets_without_a_route_are_counted_and_dropped() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        let lport = established(&mut w, &mut io, 1000);
        let snap = w.director().snapshot().clone();
        let mut moved = (*net()).clone();
        moved.ports[1].addrs = vec![cidr("192.168.7.254/24")];
        moved.ports[0].addrs = vec![cidr("10.0.7.254/24")];
        let moved = NetView::with_connected_routes(moved.ports, &[]).unwrap();
        w.switch(snap.clone(), Arc::new(moved));
        assert_eq!(from_client(&mut w, &mut io, 1001), vec![], "no route to the server");
        assert_eq!(from_server(&mut w, &mut io, lport, 1001), vec![], "no route to the client");
        assert_eq!(w.counters().dropped(Discard::NoRoute), 2);
        assert_eq!(w.counters().total_drops(), 2);
        w.switch(snap, net());
        resolve(&mut w, &mut io, 1002);
        assert_eq!(leaves(&from_client(&mut w, &mut io, 1002)), (1, MAC_RS1, MAC_PORT1));
        assert_eq!(leaves(&from_server(&mut w, &mut io, lport, 1002)), (0, MAC_CLIENT, MAC_PORT0));
    }

    #[test]
    fn a_neighbour_past_its_lifetime_is_asked_for_again() {
        let (mut w, mut io) = resolved(ForwardMethod::FullNat);
        let lifetime = WorkerConfig::new(0, 1).neighbour_lifetime;
        let lport = established(&mut w, &mut io, 1000);
        assert_eq!(leaves(&from_client(&mut w, &mut io, 1000 + lifetime - 1)), (1, MAC_RS1, MAC_PORT1));
        // RS1 was confirmed at 1000: past its lifetime, before any tick
        // expires it, the packet waits for ARP as the first one did.
        let sent = from_client(&mut w, &mut io, 1000 + lifetime);
        assert_eq!(sent.len(), 1, "only the ARP request: {sent:?}");
        let mut request = BufFrame::new(&[]);
        crate::net::arp::write_arp_request(&mut request, MAC_PORT1, GW_SERVER_SIDE, RS1).unwrap();
        assert_eq!(sent[0], (1, request.data().to_vec()));
        w.process(arp_reply(RS1, MAC_RS1_MOVED, GW_SERVER_SIDE, MAC_PORT1), 1, 1000 + lifetime, &mut io);
        let waited = io.take_sent();
        assert_eq!(leaves(&waited), (1, MAC_RS1_MOVED, MAC_PORT1), "the waiting packet");
        // Rewritten before it waited, as a packet that does not wait is.
        assert_eq!((ip_src(&waited[0].1), ip_dst(&waited[0].1)), ((LIP, lport), (RS1, 8080)));
        assert_checksums_valid(&waited[0].1);
        assert_eq!(leaves(&from_client(&mut w, &mut io, 1000 + lifetime)), (1, MAC_RS1_MOVED, MAC_PORT1));

        // Expired by the timer this time: the same.
        w.tick(1000 + 2 * lifetime, &mut io);
        io.take_sent();
        assert_eq!(w.neighbours().lookup(RS1, 1000 + 2 * lifetime), None);
        let sent = from_client(&mut w, &mut io, 1000 + 2 * lifetime);
        assert_eq!(sent, vec![(1, request.data().to_vec())]);
    }

    /// A Masq service whose server is behind a gateway on the servers' port
    /// (its MAC `server_gw_mac`), with a default route over the clients' port.
    fn far_view(server_route: bool, server_gw_mac: MacAddr) -> Arc<NetView> {
        let (server_gw, client_gw) = (Ipv4Addr::new(192, 168, 1, 1), Ipv4Addr::new(10, 0, 0, 1));
        let mut routes = vec![crate::net::Route { dst: cidr("0.0.0.0/0"), via: Some(client_gw), port: 0, src: None }];
        if server_route {
            routes.push(crate::net::Route { dst: cidr("172.16.0.0/16"), via: Some(server_gw), port: 1, src: None });
        }
        let mut view = NetView::with_connected_routes(net().ports.clone(), &routes).unwrap();
        view.static_neighbours = vec![(server_gw, server_gw_mac, 1), (client_gw, MAC_CLIENT, 0)];
        Arc::new(view)
    }

    const FAR_SERVER: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 10);

    fn far_worker() -> Worker<BufFrame> {
        let key = ServiceKey::tcp(VIP.into(), 80);
        let mut ed = Snapshot::empty().edit();
        ed.add_service(ServiceSpec::new(key)).unwrap();
        ed.add_dest(&key, DestSpec::new(FAR_SERVER.into(), 80).with_method(ForwardMethod::Masq)).unwrap();
        Worker::new(&WorkerConfig::new(0, 1), ed.finish(), far_view(true, MAC_RS1), 1000).unwrap()
    }

    /// The client's segment (the same connection each time) toward the far server.
    fn toward_far(w: &mut Worker<BufFrame>, io: &mut Recorder, flags: u8) -> (u16, MacAddr, MacAddr) {
        let seg = tcp_frame((Ipv4Addr::new(10, 0, 0, 7), 40000), (VIP, 80), 1, 0, flags, &[], &[]);
        w.process(on_wire(MAC_CLIENT, MAC_PORT0, &seg), 0, 1000, io);
        let sent = io.take_sent();
        assert_eq!(sent.len(), 1, "{:?}", w.counters().nonzero_drops());
        assert_eq!(ip_dst(&sent[0].1), (FAR_SERVER, 80));
        leaves(&sent)
    }

    /// The far worker with its connection open, its first two segments sent
    /// through the servers' gateway (the second from the egress cache).
    fn far_connection() -> (Worker<BufFrame>, Recorder) {
        let mut w = far_worker();
        let mut io = Recorder::default();
        assert_eq!(toward_far(&mut w, &mut io, flags::SYN), (1, MAC_RS1, MAC_PORT1));
        assert_eq!(toward_far(&mut w, &mut io, flags::ACK), (1, MAC_RS1, MAC_PORT1));
        (w, io)
    }

    #[test]
    fn the_clients_of_a_network_behind_a_router_share_one_route_lookup() {
        // 200 clients in two /24s behind the default route's router, each
        // opening a connection to the far server (behind the servers'
        // gateway), which answers each: the routes are decided by 24 bits,
        // so one lookup serves the server's network and one each client
        // network, however many clients.
        let mut w = far_worker();
        let mut io = Recorder::default();
        let clients = (1..=100u8).flat_map(|i| [Ipv4Addr::new(203, 0, 113, i), Ipv4Addr::new(198, 51, 100, i)]);
        for client in clients.clone() {
            let syn = tcp_frame((client, 40000), (VIP, 80), 1, 0, flags::SYN, &[], &[]);
            w.process(on_wire(MAC_CLIENT, MAC_PORT0, &syn), 0, 1000, &mut io);
        }
        let sent = io.take_sent();
        assert_eq!(sent.len(), 200, "{:?}", w.counters().nonzero_drops());
        assert!(sent.iter().all(|(port, b)| *port == 1 && macs(b) == (MAC_RS1, MAC_PORT1)));
        w.tick(1000, &mut io);
        assert_eq!(w.counters().egress_route_lookups.get(), 1, "the server's network");
        for client in clients {
            let synack = tcp_frame((FAR_SERVER, 80), (client, 40000), 5, 2, flags::SYN | flags::ACK, &[], &[]);
            w.process(on_wire(MAC_RS1, MAC_PORT1, &synack), 1, 1000, &mut io);
            let sent = io.take_sent();
            assert_eq!(leaves(&sent), (0, MAC_CLIENT, MAC_PORT0), "to the clients' router");
            assert_eq!(ip_dst(&sent[0].1), (client, 40000));
        }
        w.tick(1000, &mut io);
        assert_eq!(w.counters().egress_route_lookups.get(), 3, "and one for each clients' network");
        assert_eq!(w.counters().total_drops(), 0);
    }

    #[test]
    fn a_new_network_view_reroutes_the_next_packet() {
        let (mut w, mut io) = far_connection();
        let snap = w.director().snapshot().clone();
        // The servers' gateway is replaced (a new static neighbour entry).
        w.switch(snap.clone(), far_view(true, MAC_RS2));
        assert_eq!(toward_far(&mut w, &mut io, flags::ACK), (1, MAC_RS2, MAC_PORT1));
        // The route to the servers is gone: the default route takes over.
        w.switch(snap.clone(), far_view(false, MAC_RS2));
        assert_eq!(toward_far(&mut w, &mut io, flags::ACK), (0, MAC_CLIENT, MAC_PORT0));
        w.switch(snap, far_view(true, MAC_RS1));
        assert_eq!(toward_far(&mut w, &mut io, flags::ACK), (1, MAC_RS1, MAC_PORT1));
        assert_eq!(w.director().conns().len(), 1, "one connection throughout");
    }

    #[test]
    fn a_link_going_down_reroutes_the_next_packet() {
        let (mut w, mut io) = far_connection();
        w.follow_links(1 << 1);
        assert_eq!(toward_far(&mut w, &mut io, flags::ACK), (0, MAC_CLIENT, MAC_PORT0), "the default route");
        w.follow_links(0b11);
        assert_eq!(
            toward_far(&mut w, &mut io, flags::ACK),
            (1, MAC_RS1, MAC_PORT1),
            "no live route: the configured one, for the port to drop as link_down"
        );
        w.follow_links(0);
        assert_eq!(toward_far(&mut w, &mut io, flags::ACK), (1, MAC_RS1, MAC_PORT1));
        assert_eq!(w.director().conns().len(), 1, "one connection throughout");
    }
}
