//! Connection-table benchmark: bytes per connection, lookups per second with 1M and 10M
//! live connections on one core, new-connection setup time, and fixed-work modes for
//! counting instructions under callgrind.
//!
//! ```text
//! cargo bench -p gateway --no-default-features --bench conn_table            # report
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> setup 100000
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> setup 200000
//!   -> (I(200000) - I(100000)) / 100000 = instructions per new connection
//! ... lookup 1000000 / lookup 2000000 likewise for instructions per lookup loop
//!   iteration, and keys 1000000 / keys 2000000 for the loop alone (random index and key
//!   construction), to subtract; packet 1000000 / packet 2000000 for lookup plus the
//!   state and timer update of an established connection (the whole per-packet cost)
//! ```
//!
//! The setup path is the whole of `Director::connect`: service lookup, wlc over 8 real
//! servers, FNAT local port from 16 local addresses, insert into the table. Lookups are of
//! random live connections (independent, so the core may overlap their cache misses, as a
//! worker does across a burst).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use gateway::conn::table::Conn;
use gateway::conn::{tcp_flags, ConnTable, Direction, Director, DirectorConfig, FlowKey, NewConn, NO_TEMPLATE};
use gateway::model::{
    DestCounters, DestSpec, ForwardMethod, LocalAddr, PortPartition, Protocol, SchedulerKind, ServiceKey, ServiceSpec,
    Snapshot,
};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// CPU time of this (single-threaded) process, from `/proc/self/stat` (utime + stime, in
/// clock ticks of 10 ms). The machine is shared, so wall-clock time would count the time
/// other processes hold the core; the runs below last seconds, so 10 ms is fine-grained
/// enough. Falls back to wall-clock time where `/proc` is missing.
fn cpu_time() -> std::time::Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        // Fields after the parenthesised command name; utime and stime are 14th and 15th.
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    });
    match ticks {
        Some(t) => std::time::Duration::from_millis(t * 10),
        None => {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            START.get_or_init(Instant::now).elapsed()
        }
    }
}

/// xorshift64*: cheap reproducible randomness.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn client_key(i: u32) -> FlowKey<Ipv4Addr> {
    FlowKey {
        proto: Protocol::Tcp,
        src: Ipv4Addr::from(0x0100_0000 + i),
        sport: 1024 + (i % 60_000) as u16,
        dst: VIP,
        dport: 80,
    }
}

/// A table holding `n` live, established DR-style connections (client key i for i in 0..n).
fn filled_table(n: u32) -> ConnTable<Ipv4Addr> {
    let dest = Arc::new(DestCounters::default());
    let mut t = ConnTable::new(n, 0);
    for i in 0..n {
        let k = client_key(i);
        let c = NewConn {
            proto: Protocol::Tcp,
            client: k.src,
            cport: k.sport,
            vaddr: k.dst,
            vport: k.dport,
            laddr: k.src,
            lport: k.sport,
            raddr: Ipv4Addr::new(192, 168, 1, (i % 64) as u8 + 1),
            rport: 80,
            method: ForwardMethod::DirectRoute,
            dest: Arc::clone(&dest),
            template: NO_TEMPLATE,
            proxy_header: None,
        };
        let id = t.insert(c, 0).expect("capacity");
        t.on_packet(id, Direction::In, tcp_flags::SYN, 0);
        t.on_packet(id, Direction::In, tcp_flags::ACK, 0);
    }
    t
}

/// The per-packet path of an established connection: lookup, then state and timer update.
fn packets(t: &mut ConnTable<Ipv4Addr>, n: u32, count: u64, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut acc = 0u64;
    for k in 0..count {
        let i = (rng.next() % n as u64) as u32;
        let (id, dir) = t.lookup(black_box(&client_key(i))).expect("live connection");
        let state = t.on_packet(id, dir, tcp_flags::ACK, 1 + (k >> 20) as u32);
        acc = acc.wrapping_add(id as u64 + state as u64);
    }
    acc
}

fn lookups(t: &ConnTable<Ipv4Addr>, n: u32, count: u64, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut acc = 0u64;
    for _ in 0..count {
        let i = (rng.next() % n as u64) as u32;
        let (id, _) = t.lookup(black_box(&client_key(i))).expect("live connection");
        acc = acc.wrapping_add(id as u64);
    }
    acc
}

fn burst_lookups(t: &ConnTable<Ipv4Addr>, n: u32, count: u64, seed: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut acc = 0u64;
    let mut keys = [client_key(0); 32];
    let mut out = [None; 32];
    for _ in 0..count / 32 {
        for k in keys.iter_mut() {
            *k = client_key((rng.next() % n as u64) as u32);
        }
        t.lookup_burst(black_box(&keys), &mut out);
        for o in &out {
            acc = acc.wrapping_add(o.expect("live connection").0 as u64);
        }
    }
    acc
}

fn director(capacity: u32) -> Director<Ipv4Addr> {
    let key = ServiceKey::tcp(IpAddr::V4(VIP), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(key) }).unwrap();
    for i in 0..8u8 {
        let rs = DestSpec::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 2 + i)), 8080).with_method(ForwardMethod::FullNat);
        ed.add_dest(&key, rs).unwrap();
    }
    for i in 0..16u8 {
        let addr = IpAddr::V4(Ipv4Addr::new(192, 168, 2, 1 + i));
        ed.add_laddr(&key, LocalAddr { addr, ifname: "dpdk1".into() }).unwrap();
    }
    let cfg = DirectorConfig {
        conn_capacity: capacity,
        template_capacity: 1024,
        partition: PortPartition::new(1, 0).unwrap(),
        ports: 1025..=65535,
    };
    Director::new(ed.finish(), cfg, 0)
}

fn setup(d: &mut Director<Ipv4Addr>, n: u32) -> u64 {
    let mut acc = 0u64;
    for i in 0..n {
        let id = d.connect(black_box(&client_key(i)), 0).expect("room");
        acc = acc.wrapping_add(id as u64);
    }
    acc
}

/// The process's resident memory and how much of it is on transparent huge pages, in MiB,
/// from `/proc/self/smaps_rollup`: the table's arrays are most of it.
fn huge_pages_of_rss() -> Option<(u64, u64)> {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let kb = |name: &str| -> Option<u64> {
        let line = rollup.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some((kb("AnonHugePages:")? / 1024, kb("Rss:")? / 1024))
}

fn report() {
    println!("entry: {} bytes (IPv4), {} bytes (IPv6)", size_of::<Conn<Ipv4Addr>>(), size_of::<Conn<Ipv6Addr>>());
    for n in [1_000_000u32, 10_000_000] {
        let t0 = cpu_time();
        let t = filled_table(n);
        let fill = cpu_time() - t0;
        // Best of three runs, in CPU time: the machine is shared, and the best run is the
        // one least disturbed by other processes.
        let count = 10_000_000u64;
        lookups(&t, n, 1_000_000, 7); // warm-up
        let (mut el, mut bel) = (std::time::Duration::MAX, std::time::Duration::MAX);
        let (mut acc, mut bacc) = (0, 0);
        for run in 0..3 {
            let t0 = cpu_time();
            acc ^= lookups(&t, n, count, 42 + run);
            el = el.min(cpu_time() - t0);
            let t0 = cpu_time();
            bacc ^= burst_lookups(&t, n, count, 43 + run);
            bel = bel.min(cpu_time() - t0);
        }
        println!(
            "{n:>9} live: {} bytes/conn (entry {} + index {}), fill {:.2} s ({:.0} ns/insert), \
             {:.1} M lookups/s ({:.1} ns/lookup), in bursts of 32: {:.1} M/s ({:.1} ns) [{}]",
            t.bytes_per_conn(),
            size_of::<Conn<Ipv4Addr>>(),
            t.bytes_per_conn() - size_of::<Conn<Ipv4Addr>>(),
            fill.as_secs_f64(),
            fill.as_nanos() as f64 / n as f64,
            count as f64 / el.as_secs_f64() / 1e6,
            el.as_nanos() as f64 / count as f64,
            count as f64 / bel.as_secs_f64() / 1e6,
            bel.as_nanos() as f64 / count as f64,
            (acc ^ bacc) % 10,
        );
        let (huge, rss) = huge_pages_of_rss().unwrap_or_default();
        println!("{:>9}       {}; process: {huge} MiB on huge pages of {rss} MiB resident", "", t.backing());
    }
    let n = 1_000_000;
    let mut d = director(n);
    let t0 = cpu_time();
    let acc = setup(&mut d, n);
    let el = cpu_time() - t0;
    println!(
        "setup (find service + wlc of 8 + FNAT port + insert): {:.0} ns/connection over {n} [{}]",
        el.as_nanos() as f64 / n as f64,
        acc % 10
    );
}

fn main() {
    // `cargo bench` passes `--bench`; ignore flags.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let count = |i: usize| args.get(i).and_then(|s| s.parse::<u32>().ok()).unwrap_or(100_000);
    match args.first().map(String::as_str) {
        Some("setup") => {
            let n = count(1);
            let mut d = director(1 << 20);
            println!("setup x{n}: {}", setup(&mut d, n));
        }
        Some("lookup") => {
            let t = filled_table(100_000);
            println!("lookup x{}: {}", count(1), lookups(&t, 100_000, count(1) as u64, 42));
        }
        Some("burst") => {
            let t = filled_table(100_000);
            println!("burst x{}: {}", count(1), burst_lookups(&t, 100_000, count(1) as u64, 42));
        }
        Some("packet") => {
            let mut t = filled_table(100_000);
            println!("packet x{}: {}", count(1), packets(&mut t, 100_000, count(1) as u64, 42));
        }
        Some("keys") => {
            // The lookup loop without the lookup: subtract to get the lookup alone.
            let t = filled_table(100_000);
            let mut rng = Rng(42);
            let mut acc = 0u64;
            for _ in 0..count(1) {
                let i = (rng.next() % 100_000) as u32;
                acc = acc.wrapping_add(black_box(&client_key(i)).sport as u64);
            }
            println!("keys x{}: {} {}", count(1), acc, t.len());
        }
        _ => report(),
    }
}
