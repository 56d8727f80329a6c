//! Instruction count of classify + rewrite, per packet, per forwarding mode.
//!
//! Machines here have no hardware performance counters, so cycles cannot be
//! measured; callgrind counts instructions exactly. Each path is one
//! `#[inline(never)]` function named `measured_<path>` that classifies one
//! frame and rewrites it, run N times over a `BufFrame` that is reset to the
//! original packet before every iteration (outside the measured function).
//!
//! Exact per-packet figures (only the measured function is counted):
//!
//! ```text
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p \
//!     --toggle-collect='*measured_*' <bench binary> <path> 100000
//! # instructions per packet = "summary" of the output file / 100000
//! ```
//!
//! `gateway/benches/measure_insns.sh` does this for every path and also
//! reports the whole-program count difference between two N, which includes
//! the per-iteration reset (a copy of the packet) as a cross-check.
//!
//! Run without arguments (`cargo bench --bench xmit_insns`), it runs every
//! path a million times and prints nanoseconds per packet, as a smoke test.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use gateway::conn::Direction;
use gateway::frame::{BufFrame, ChecksumStatus, Frame, RxChecksum};
use gateway::model::ForwardMethod;
use gateway::synproxy::{self, SynAckConfig, SynCookies};
use gateway::wire::classify::{classify, classify_ipv6, Classified, ClassifyPolicy};
use gateway::wire::tcp::{TcpPacket, TcpRepr};
use gateway::wire::{build, MacAddr};
use gateway::xmit::{dr, tun, DrRewrite, Egress, Endpoints, Ends, Offload, Rewrite, Shift, TunEncap};

const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const LIP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const RIP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 20);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const LIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0x16, 0, 0, 0, 1);
const RIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0x16, 0, 0, 0, 0x20);

/// The receive path's policy: IPv4 header checksum verified in software,
/// layer 4 left to the end host (as Linux IPVS).
const POLICY: ClassifyPolicy = ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: false };

/// [`tcp_packet`] over IPv6.
fn tcp_packet_v6(src: (Ipv6Addr, u16), dst: (Ipv6Addr, u16), flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    build::ipv6(src.0, dst.0).tcp(&TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: 0x1234_5678,
        ack_number: 0x9abc_def0,
        flags,
        window_len: 502,
        options,
        payload,
    })
}

/// A TCP segment: an established connection's as Linux sends it (ACK|PSH,
/// NOP NOP timestamps, 100 bytes of data), or a handshake segment.
fn tcp_packet(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), flags: u8, options: &[u8], payload: &[u8]) -> Vec<u8> {
    build::ipv4(src.0, dst.0).tcp(&TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq_number: 0x1234_5678,
        ack_number: 0x9abc_def0,
        flags,
        window_len: 502,
        options,
        payload,
    })
}

const TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
/// A SACKing ACK's options as Linux lays them out: NOP NOP TS, NOP NOP
/// SACK with one block.
const TIMESTAMPS_SACK: [u8; 24] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0];
const ACK_PSH: u8 = 0x18;
const DATA: [u8; 100] = [0x61; 100];

/// A Linux SYN's options: MSS 1460, SACK-permitted, timestamps, NOP, window
/// scale 7.
const SYN_OPTIONS: [u8; 20] = [2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 1, 0xe2, 0x40, 0, 0, 0, 0, 1, 3, 3, 7];
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const SYNACK_CFG: SynAckConfig =
    SynAckConfig { mss: 1460, window: 64240, wscale: Some(7), sack: true, timestamps: true, ttl: 64 };
const TS_NOW: u32 = 0x00ab_cdef;
const COOKIE_TIME: u64 = 1_700_000_000;

fn ip(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

#[inline(never)]
fn measured_classify(frame: &mut BufFrame) -> bool {
    matches!(classify(frame, POLICY), Ok(Classified::Ipv4(_)))
}

/// IPv6 classification, not on the worker's path yet: measured beside the
/// IPv4 one so the IPv6 forwarding to come starts from a known figure. The
/// metadata goes through `black_box`, or the unused addresses would not be
/// read at all.
#[inline(never)]
fn measured_classify_v6(frame: &mut BufFrame) -> bool {
    classify_ipv6(frame, POLICY).map(black_box).is_ok()
}

#[inline(never)]
fn measured_fnat(frame: &mut BufFrame, rw: &Translated) -> bool {
    translate(frame, rw, Offload::NONE)
}

#[inline(never)]
fn measured_fnat_offload(frame: &mut BufFrame, rw: &Translated) -> bool {
    translate(frame, rw, Offload::ALL)
}

#[inline(never)]
fn measured_nat_in(frame: &mut BufFrame, rw: &Translated) -> bool {
    translate(frame, rw, Offload::NONE)
}

#[inline(never)]
fn measured_nat_out(frame: &mut BufFrame, rw: &Translated) -> bool {
    translate(frame, rw, Offload::NONE)
}

/// A connection's packet as the worker translates it: the endpoints
/// [`Rewrite::of`] picks for its mode and direction, its sequence shifts,
/// and whether a TOA is asked for.
struct Translated {
    endpoints: Endpoints,
    shift: Shift,
    with_toa: bool,
}

impl Translated {
    fn of(method: ForwardMethod, dir: Direction, shift: Shift, with_toa: bool) -> Translated {
        let ends =
            Ends { client: (CLIENT, 40000), virtual_service: (VIP, 80), local: (LIP, 5001), real_server: (RIP, 8080) };
        let Rewrite::Translate(endpoints) = Rewrite::of(method, dir, &ends) else {
            unreachable!("{method:?} translates")
        };
        Translated { endpoints, shift, with_toa }
    }
}

#[inline(always)]
fn translate(frame: &mut BufFrame, rw: &Translated, offload: Offload) -> bool {
    match classify(frame, POLICY) {
        Ok(Classified::Ipv4(mut m)) => {
            rw.endpoints.translate(frame, &mut m, rw.shift, rw.with_toa, Egress { mtu: 1500, offload }).is_ok()
        }
        _ => false,
    }
}

/// An IPv6 connection's packet as the worker will translate it.
struct Translated6 {
    endpoints: Endpoints<Ipv6Addr>,
    shift: Shift,
    with_toa: bool,
}

impl Translated6 {
    fn of(method: ForwardMethod, dir: Direction, shift: Shift, with_toa: bool) -> Translated6 {
        let ends = Ends {
            client: (CLIENT6, 40000),
            virtual_service: (VIP6, 80),
            local: (LIP6, 5001),
            real_server: (RIP6, 8080),
        };
        let Rewrite::Translate(endpoints) = Rewrite::of(method, dir, &ends) else {
            unreachable!("{method:?} translates")
        };
        Translated6 { endpoints, shift, with_toa }
    }
}

/// classify_ipv6 + the IPv6 translation, next to the IPv4 paths (IPv6 is
/// not on the worker's path yet).
#[inline(never)]
fn measured_v6(frame: &mut BufFrame, rw: &Translated6) -> bool {
    translate_v6(frame, rw, Offload::NONE)
}

#[inline(never)]
fn measured_v6_offload(frame: &mut BufFrame, rw: &Translated6) -> bool {
    translate_v6(frame, rw, Offload::ALL)
}

#[inline(always)]
fn translate_v6(frame: &mut BufFrame, rw: &Translated6, offload: Offload) -> bool {
    match classify_ipv6(frame, POLICY) {
        Ok(mut m) => {
            rw.endpoints.translate(frame, &mut m, rw.shift, rw.with_toa, Egress { mtu: 1500, offload }).is_ok()
        }
        _ => false,
    }
}

#[inline(never)]
fn measured_dr(frame: &mut BufFrame, rw: &DrRewrite) -> bool {
    match classify(frame, POLICY) {
        Ok(Classified::Ipv4(_)) => dr::rewrite(frame, rw).is_ok(),
        _ => false,
    }
}

#[inline(never)]
fn measured_tun(frame: &mut BufFrame, encap: &TunEncap) -> bool {
    match classify(frame, POLICY) {
        Ok(Classified::Ipv4(mut m)) => tun::encapsulate(frame, &mut m, encap, Offload::NONE).is_ok(),
        _ => false,
    }
}

#[inline(never)]
fn measured_synack(frame: &mut BufFrame, cookies: &SynCookies) -> bool {
    match classify(frame, POLICY) {
        Ok(Classified::Ipv4(mut m)) => {
            synproxy::synack_in_place(frame, &mut m, cookies, &SYNACK_CFG, TS_NOW, Offload::NONE).is_ok()
        }
        _ => false,
    }
}

#[inline(never)]
fn measured_synack_offload(frame: &mut BufFrame, cookies: &SynCookies) -> bool {
    match classify(frame, POLICY) {
        Ok(Classified::Ipv4(mut m)) => {
            synproxy::synack_in_place(frame, &mut m, cookies, &SYNACK_CFG, TS_NOW, Offload::ALL).is_ok()
        }
        _ => false,
    }
}

#[inline(never)]
fn measured_cookie_ack(frame: &mut BufFrame, cookies: &SynCookies) -> bool {
    match classify(frame, POLICY) {
        Ok(Classified::Ipv4(m)) => {
            matches!(synproxy::parse_client_ack(frame, &m).map(|a| a.check(&m, cookies)), Ok(Ok(_)))
        }
        _ => false,
    }
}

/// The client's ACK of the SYN-ACK `syn` gets: `seq` ISN + 1, `ack` the
/// cookie + 1, TSecr our TSval.
fn client_ack(syn: &[u8], cookies: &SynCookies) -> Vec<u8> {
    // Not through measured_synack: callgrind would count this call.
    let mut frame = BufFrame::new(syn);
    let Ok(Classified::Ipv4(mut m)) = classify(&frame, POLICY) else { panic!("the SYN classifies") };
    synproxy::synack_in_place(&mut frame, &mut m, cookies, &SYNACK_CFG, TS_NOW, Offload::NONE).expect("a SYN-ACK");
    let synack = TcpPacket::new_checked(&frame.data()[34..]).expect("a SYN-ACK");
    let (cookie, isn) = (synack.seq_number(), synack.ack_number().wrapping_sub(1));
    let tsval = u32::from_be_bytes(synack.options()[8..12].try_into().expect("TS after SACK-permitted"));
    let mut options = TIMESTAMPS;
    options[8..12].copy_from_slice(&tsval.to_be_bytes());
    build::ipv4(CLIENT, VIP).tcp(&TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: isn.wrapping_add(1),
        ack_number: cookie.wrapping_add(1),
        flags: ACK,
        window_len: 502,
        options: &options,
        payload: &[],
    })
}

/// Every measurable path: name, what it is.
const PATHS: &[(&str, &str)] = &[
    ("classify", "classify only (established TCP, IP checksum verified)"),
    ("classify_v6", "classify_ipv6 only (the same TCP segment over IPv6)"),
    ("fnat_in", "classify + FNAT inbound, established, no seq delta"),
    ("fnat_in_seq", "classify + FNAT inbound, established, seq delta"),
    ("fnat_out_ack", "classify + FNAT outbound, ack delta (walks the TS option for SACK)"),
    ("fnat_out_sack", "classify + FNAT outbound, ack delta, a SACK block after the TS option (walked)"),
    ("fnat_in_proxy", "classify + FNAT inbound of a SYN-proxied connection (ack and TSecr deltas)"),
    ("fnat_out_proxy", "classify + FNAT outbound of a SYN-proxied connection (seq and TSval deltas)"),
    ("fnat_in_rxgood", "classify + FNAT inbound, NIC verified the IP checksum"),
    ("fnat_in_offload", "classify + FNAT inbound, TX checksum offload"),
    ("fnat_in_toa", "classify + FNAT inbound with TOA insertion"),
    ("nat_in", "classify + NAT inbound"),
    ("nat_out", "classify + NAT outbound"),
    ("fnat_in_v6", "classify_ipv6 + FNAT inbound, established, no seq delta"),
    ("fnat_in_proxy_v6", "classify_ipv6 + FNAT inbound of a SYN-proxied connection (ack and TSecr deltas)"),
    ("fnat_out_proxy_v6", "classify_ipv6 + FNAT outbound of a SYN-proxied connection (seq and TSval deltas)"),
    ("fnat_in_offload_v6", "classify_ipv6 + FNAT inbound, TX checksum offload"),
    ("fnat_in_toa_v6", "classify_ipv6 + FNAT inbound with the 20-byte IPv6 TOA"),
    ("nat_in_v6", "classify_ipv6 + NAT inbound"),
    ("nat_out_v6", "classify_ipv6 + NAT outbound"),
    ("dr", "classify + DR"),
    ("tun", "classify + TUN encapsulation"),
    ("synack", "classify + SYN-cookie SYN-ACK in place (Linux SYN options)"),
    ("synack_offload", "classify + SYN-cookie SYN-ACK, TX checksum offload"),
    ("cookie_ack", "classify + parse the client's ACK + check its cookie"),
];

/// Runs `path` `n` times; false if the path name is unknown or a packet
/// was refused (which would make the figure meaningless).
fn run(path: &str, n: u64) -> Option<bool> {
    let inbound = tcp_packet((CLIENT, 40000), (VIP, 80), ACK_PSH, &TIMESTAMPS, &DATA);
    let outbound = tcp_packet((RIP, 8080), (LIP, 5001), ACK_PSH, &TIMESTAMPS, &DATA);
    let sacking = tcp_packet((RIP, 8080), (LIP, 5001), ACK, &TIMESTAMPS_SACK, &[]);
    let syn = tcp_packet((CLIENT, 40000), (VIP, 80), SYN, &SYN_OPTIONS, &[]);
    let inbound_v6 = tcp_packet_v6((CLIENT6, 40000), (VIP6, 80), ACK_PSH, &TIMESTAMPS, &DATA);
    let outbound_v6 = tcp_packet_v6((RIP6, 8080), (LIP6, 5001), ACK_PSH, &TIMESTAMPS, &DATA);
    let nat_outbound_v6 = tcp_packet_v6((RIP6, 8080), (CLIENT6, 40000), ACK_PSH, &TIMESTAMPS, &DATA);
    let mut cookies = SynCookies::new(*b"bench-cookie-key");
    cookies.rotate(COOKIE_TIME);
    let ack = client_ack(&syn, &cookies);
    let delta = 0x0101_0101;
    let fnat = |dir, shift, with_toa| Translated::of(ForwardMethod::FullNat, dir, shift, with_toa);
    let fnat_in = fnat(Direction::In, Shift::NONE, false);
    let fnat_in_seq = fnat(Direction::In, Shift { seq: delta, ..Shift::NONE }, false);
    let fnat_out = fnat(Direction::Out, Shift { ack: delta, ..Shift::NONE }, false);
    let fnat_in_proxy = fnat(Direction::In, Shift::proxied(delta, 0x0202_0202, Direction::In), false);
    let fnat_out_proxy = fnat(Direction::Out, Shift::proxied(delta, 0x0202_0202, Direction::Out), false);
    let fnat_toa = fnat(Direction::In, Shift::NONE, true);
    let nat_in = Translated::of(ForwardMethod::Masq, Direction::In, Shift::NONE, false);
    let nat_out = Translated::of(ForwardMethod::Masq, Direction::Out, Shift::NONE, false);
    let fnat6 = |dir, shift, with_toa| Translated6::of(ForwardMethod::FullNat, dir, shift, with_toa);
    let fnat_in_v6 = fnat6(Direction::In, Shift::NONE, false);
    let fnat_in_proxy_v6 = fnat6(Direction::In, Shift::proxied(delta, 0x0202_0202, Direction::In), false);
    let fnat_out_proxy_v6 = fnat6(Direction::Out, Shift::proxied(delta, 0x0202_0202, Direction::Out), false);
    let fnat_toa_v6 = fnat6(Direction::In, Shift::NONE, true);
    let nat_in_v6 = Translated6::of(ForwardMethod::Masq, Direction::In, Shift::NONE, false);
    let nat_out_v6 = Translated6::of(ForwardMethod::Masq, Direction::Out, Shift::NONE, false);
    let dr_rw = DrRewrite { dst_mac: MacAddr([0x52, 0x54, 0, 0, 0, 0x20]), src_mac: MacAddr([2, 0, 0, 0, 0, 0xaa]) };
    let encap = TunEncap { src: ip(LIP), dst: ip(RIP), ttl: 64, ident: 1, mtu: 1500 };

    let packet = match path {
        "fnat_out_ack" | "fnat_out_proxy" | "nat_out" => &outbound,
        "fnat_out_sack" => &sacking,
        "synack" | "synack_offload" => &syn,
        "cookie_ack" => &ack,
        "classify_v6" | "fnat_in_v6" | "fnat_in_proxy_v6" | "fnat_in_offload_v6" | "fnat_in_toa_v6" | "nat_in_v6" => {
            &inbound_v6
        }
        "fnat_out_proxy_v6" => &outbound_v6,
        "nat_out_v6" => &nat_outbound_v6,
        _ => &inbound,
    };
    let mut frame = BufFrame::new(packet);
    let rx_good = RxChecksum { ip: ChecksumStatus::Good, l4: ChecksumStatus::Unknown };
    let mut ok = true;
    for _ in 0..n {
        frame.reset(black_box(packet));
        let f = black_box(&mut frame);
        ok &= match path {
            "classify" => measured_classify(f),
            "classify_v6" => measured_classify_v6(f),
            "fnat_in" => measured_fnat(f, black_box(&fnat_in)),
            "fnat_in_seq" => measured_fnat(f, black_box(&fnat_in_seq)),
            "fnat_out_ack" | "fnat_out_sack" => measured_fnat(f, black_box(&fnat_out)),
            "fnat_in_proxy" => measured_fnat(f, black_box(&fnat_in_proxy)),
            "fnat_out_proxy" => measured_fnat(f, black_box(&fnat_out_proxy)),
            "fnat_in_rxgood" => {
                f.set_rx_checksum(rx_good);
                measured_fnat(f, black_box(&fnat_in))
            }
            "fnat_in_offload" => measured_fnat_offload(f, black_box(&fnat_in)),
            "fnat_in_toa" => measured_fnat(f, black_box(&fnat_toa)),
            "nat_in" => measured_nat_in(f, black_box(&nat_in)),
            "nat_out" => measured_nat_out(f, black_box(&nat_out)),
            "fnat_in_v6" => measured_v6(f, black_box(&fnat_in_v6)),
            "fnat_in_proxy_v6" => measured_v6(f, black_box(&fnat_in_proxy_v6)),
            "fnat_out_proxy_v6" => measured_v6(f, black_box(&fnat_out_proxy_v6)),
            "fnat_in_offload_v6" => measured_v6_offload(f, black_box(&fnat_in_v6)),
            "fnat_in_toa_v6" => measured_v6(f, black_box(&fnat_toa_v6)),
            "nat_in_v6" => measured_v6(f, black_box(&nat_in_v6)),
            "nat_out_v6" => measured_v6(f, black_box(&nat_out_v6)),
            "dr" => measured_dr(f, black_box(&dr_rw)),
            "tun" => measured_tun(f, black_box(&encap)),
            "synack" => measured_synack(f, black_box(&cookies)),
            "synack_offload" => measured_synack_offload(f, black_box(&cookies)),
            "cookie_ack" => measured_cookie_ack(f, black_box(&cookies)),
            "reset" => true,
            _ => return None,
        };
    }
    Some(ok)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let [path, n] = &args[..] {
        let n: u64 = n.parse().expect("N is a number");
        match run(path, n) {
            Some(true) => {}
            Some(false) => panic!("path {path} refused its packet"),
            None => {
                panic!("unknown path {path}; known: reset {}", PATHS.iter().map(|p| p.0).collect::<Vec<_>>().join(" "))
            }
        }
        return;
    }
    const N: u64 = 1_000_000;
    let start = Instant::now();
    run("reset", N);
    let reset_ns = start.elapsed().as_nanos() as f64 / N as f64;
    println!("{:<16} {:>8.1} ns/packet (frame reset only, included below)", "reset", reset_ns);
    for (path, what) in PATHS {
        let start = Instant::now();
        assert_eq!(run(path, N), Some(true), "{path}");
        let ns = start.elapsed().as_nanos() as f64 / N as f64;
        println!("{path:<16} {ns:>8.1} ns/packet  {what}");
    }
}
