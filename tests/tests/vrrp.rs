//! Active/backup directors with the real keepalived (Debian's package): two
//! gatewayd, each in its own namespace with kernel interfaces gwk0 (client
//! segment) and gwk1 (servers' segment), one keepalived per director running
//! VRRP on gwk0 (advert_int 1, priorities 150 and 100), whose
//! `virtual_ipaddress` is the VIP on gwk0. The gateway holds (answers ARP
//! for, accepts) only what its kernel interfaces carry, so keepalived moving
//! the VIP moves the service.
//!
//! FNAT rather than NAT or DR: its real servers need nothing but their own
//! address (no default route through a floating gateway address as NAT needs,
//! no VIP on lo and ARP sysctls as DR needs). Each director has a local
//! address of its own, held for good (see `pair.rs` for why it does not
//! float). Established connections do not survive a failover (that is
//! connection sync, another issue): each probe here is a new connection.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gateway_e2e::pair::{director_lip, port_mac, Pair, PairOptions, Segment};
use gateway_e2e::topology::{rip, VIP};
use gateway_e2e::{wait_until, Daemon};

/// What the issue promises: answers again within this long after the master fails.
const FAILOVER_BOUND: Duration = Duration::from_secs(4);

/// Director `n`'s FNAT service: VIP:80 over the two python servers, from
/// its own local address.
fn services(n: u8) -> Vec<String> {
    let mut rules = vec![format!("-A -t {VIP}:80 -s rr"), format!("-P -t {VIP}:80 -z {} -F servers", director_lip(n))];
    rules.extend((0..2).map(|i| format!("-a -t {VIP}:80 -r {}:8080 -b", rip(i))));
    rules
}

/// A pair serving FNAT VIP:80 over two python servers, director 1 MASTER
/// (priority 150) and director 2 BACKUP (100), with the VIP on director 1.
fn start(short: &str) -> (Pair, Vec<Daemon>) {
    let mut pair = Pair::start(short, PairOptions { servers: 2, services, extra_config: String::new() });
    let servers = pair.python_http(&[rip(0), rip(1)]);
    pair.start_keepalived(1, &Pair::keepalived_conf(1, "MASTER", 150));
    pair.start_keepalived(2, &Pair::keepalived_conf(2, "BACKUP", 100));
    wait_for_master(&pair, 1, Duration::from_secs(10));
    // The backup hears the master's adverts: past its master-down interval
    // (3 adverts and its skew, 3.6 s) it has still not taken over.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(pair.vip_carriers(), [1], "the backup stays backup:\n{}", pair.director(2).keepalived_log());
        std::thread::sleep(Duration::from_millis(200));
    }
    (pair, servers)
}

/// Waits until director `n` alone carries the VIP.
fn wait_for_master(pair: &Pair, n: u8, timeout: Duration) {
    assert!(
        wait_until(timeout, || pair.vip_carriers() == [n]),
        "director {n} did not become the only master in {timeout:?}: carriers {:?}\n\
         director 1's keepalived:\n{}\ndirector 2's keepalived:\n{}",
        pair.vip_carriers(),
        pair.director(1).keepalived_log(),
        pair.director(2).keepalived_log()
    );
}

/// "new connections" of director `n` (0 when its gatewayd is down).
fn new_connections(pair: &Pair, n: u8) -> u64 {
    let d = pair.director(n);
    if d.gatewayd_pid() == 0 {
        return 0;
    }
    d.stats().counter("new connections")
}

/// `count` requests through the VIP, each a new connection, all answered by
/// a real server; asserts director `n` carried them all.
fn served_by(pair: &Pair, n: u8, count: u64) {
    let other = 3 - n;
    let (mine, theirs) = (new_connections(pair, n), new_connections(pair, other));
    for _ in 0..count {
        // 8 s: a request in the first seconds after the VIP moved back can
        // wait for the client's next SYN retransmission (at 1, 3 and 7 s) while
        // its neighbour entry follows keepalived's gratuitous ARPs (a cause not
        // pinned down yet: see the session note); the failover bound is checked
        // apart, by `failover`.
        let answer = pair.curl(&format!("http://{VIP}/"), "8");
        assert!(matches!(answer.as_deref(), Some("rs1" | "rs2")), "a real server answers through the VIP: {answer:?}");
    }
    assert!(new_connections(pair, n) - mine >= count, "director {n} carried the requests");
    assert_eq!(new_connections(pair, other), theirs, "director {other} carried none");
    // ARP for the VIP: only director n answers; each local address is its own director's.
    assert_eq!(pair.arp_answers(Segment::Client, VIP), [port_mac(n, 0)], "who answers ARP for the VIP");
    assert_eq!(pair.arp_answers(Segment::Servers, &director_lip(n)), [port_mac(n, 1)], "director {n}'s local address");
    assert_eq!(pair.client_neighbour(VIP).as_deref(), Some(port_mac(n, 0).as_str()), "the client's neighbour entry");
}

/// One request of the prober.
#[derive(Debug, Clone, Copy)]
struct Probe {
    started: Instant,
    finished: Instant,
    ok: bool,
}

/// Requests the VIP from the client namespace every 100 ms, a new
/// connection each, given up after `max_time` seconds, until `stop`.
fn probe(client_ns: &str, max_time: &str, stop: &AtomicBool) -> Vec<Probe> {
    let url = format!("http://{VIP}/");
    let mut probes = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let out = Command::new("ip")
            .args(["netns", "exec", client_ns, "curl", "-sS", "--max-time", max_time, &url])
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout);
        let ok = out.status.success() && matches!(body.trim(), "rs1" | "rs2");
        probes.push(Probe { started, finished: Instant::now(), ok });
        std::thread::sleep(Duration::from_millis(100).saturating_sub(started.elapsed()));
    }
    probes
}

/// The probes as "+START(DURATION)", or "-START(DURATION)" for a failure,
/// in seconds from `at`.
fn timeline(probes: &[Probe], at: Instant) -> String {
    let secs =
        |t: Instant| t.saturating_duration_since(at).as_secs_f64() - at.saturating_duration_since(t).as_secs_f64();
    let each: Vec<String> = probes
        .iter()
        .map(|p| {
            let took = (p.finished - p.started).as_secs_f64();
            format!("{}{:.2}({took:.2})", if p.ok { '+' } else { '-' }, secs(p.started))
        })
        .collect();
    each.join(" ")
}

/// Runs two probers for a second, then `fault`, then `after` more. The
/// quick one (each request given up after 0.5 s) times the failover: the
/// first of its requests after the fault that is answered. The patient one
/// (2 s: a SYN lost on the way is resent after 1 s) checks that once
/// answers came back every new connection is answered. Every request that
/// ended before the fault must have succeeded. Returns the failover time.
fn failover(pair: &mut Pair, after: Duration, fault: impl FnOnce(&mut Pair)) -> Duration {
    let client_ns = pair.client.name().to_owned();
    let stop = AtomicBool::new(false);
    let (quick, patient, at) = std::thread::scope(|s| {
        let quick = s.spawn(|| probe(&client_ns, "0.5", &stop));
        let patient = s.spawn(|| probe(&client_ns, "2", &stop));
        std::thread::sleep(Duration::from_secs(1));
        let at = Instant::now();
        fault(pair);
        std::thread::sleep(after);
        stop.store(true, Ordering::Relaxed);
        (quick.join().expect("the quick prober"), patient.join().expect("the patient prober"), at)
    });
    let report = || format!("quick: {}\npatient: {}", timeline(&quick, at), timeline(&patient, at));
    for p in quick.iter().chain(&patient).filter(|p| p.finished < at) {
        assert!(p.ok, "the master served before the fault:\n{}", report());
    }
    let back = quick
        .iter()
        .find(|p| p.started >= at && p.ok)
        .unwrap_or_else(|| panic!("no answer after the fault:\n{}", report()))
        .finished;
    let after_window: Vec<&Probe> = patient.iter().filter(|p| p.started >= back).collect();
    assert!(after_window.len() >= 10, "enough requests after the failover:\n{}", report());
    assert!(after_window.iter().all(|p| p.ok), "requests failed after the failover window:\n{}", report());
    let slowest = after_window.iter().map(|p| p.finished - p.started).max().unwrap_or_default();
    eprintln!(
        "{} requests after the failover, all answered, the slowest in {:.2} s",
        after_window.len(),
        slowest.as_secs_f64()
    );
    back - at
}

#[test]
fn the_backup_takes_over_when_the_masters_gatewayd_dies_and_gives_the_vip_back() {
    let (mut pair, _servers) = start("vgw");
    served_by(&pair, 1, 4);
    let dead_pid = pair.director(1).gatewayd_pid();

    let took = failover(&mut pair, Duration::from_secs(7), |pair| {
        pair.kill_gatewayd(1);
    });
    eprintln!("failover after SIGKILL of the master's gatewayd (pid {dead_pid}): {:.2} s", took.as_secs_f64());
    assert!(took <= FAILOVER_BOUND, "answers again within {FAILOVER_BOUND:?}, took {took:?}");
    wait_for_master(&pair, 2, Duration::from_secs(1));
    served_by(&pair, 2, 4);

    // The master returns (its keepalived ran on, and follows gwk0 coming
    // back) and, with the higher priority, takes the VIP back.
    let back = Instant::now();
    pair.start_gatewayd(1);
    wait_for_master(&pair, 1, Duration::from_secs(10));
    eprintln!(
        "the returning master took the VIP back {:.2} s after its gatewayd started",
        back.elapsed().as_secs_f64()
    );
    // keepalived put the VIP on gwk0; gatewayd serves it once it has seen
    // that (it follows the kernel interface's addresses), and the client
    // once the gratuitous ARP arrived: on a loaded machine that can take
    // longer than one curl's timeout, so wait until a request went through
    // the returning master (one answered by the backup in the last moment
    // it held the VIP proves nothing) before counting.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let before = new_connections(&pair, 1);
            pair.curl(&format!("http://{VIP}/"), "1").is_some() && new_connections(&pair, 1) > before
        }),
        "the returning master serves the VIP"
    );
    served_by(&pair, 1, 4);
    pair.stop_gatewayd(2);
}

#[test]
fn the_backup_takes_over_when_only_the_masters_keepalived_dies_and_the_master_lets_the_vip_go() {
    let (mut pair, _servers) = start("vka");
    served_by(&pair, 1, 4);

    let took = failover(&mut pair, Duration::from_secs(5), |pair| pair.kill_keepalived(1));
    eprintln!("failover after SIGKILL of the master's keepalived: {:.2} s", took.as_secs_f64());
    assert!(took <= FAILOVER_BOUND, "answers again within {FAILOVER_BOUND:?}, took {took:?}");
    wait_for_master(&pair, 2, Duration::from_secs(1));
    // Director 1's gatewayd still runs, but holds neither address any more:
    // only director 2 answers ARP for them and carries the requests.
    assert_ne!(pair.director(1).gatewayd_pid(), 0);
    served_by(&pair, 2, 4);

    // keepalived back on the master: priority 150 takes the VIP back.
    pair.start_keepalived(1, &Pair::keepalived_conf(1, "MASTER", 150));
    wait_for_master(&pair, 1, Duration::from_secs(10));
    served_by(&pair, 1, 4);
    for n in [1, 2] {
        pair.stop_gatewayd(n);
    }
}
