//! Scale-out: two active directors behind an ECMP router that learns the
//! VIPs by BGP (BIRD 2 everywhere; `tests/src/ecmp.rs` builds it), `mh` on
//! DR and NAT services, TCP and UDP. Checked, in one run to keep it short:
//! - the router spreads the clients' flows over both directors (each counts
//!   new connections), every flow is answered by one real server;
//! - a director whose servers of a VIP are all quiesced (`-w 0`) withdraws
//!   that VIP (the router keeps the other director only), and announces it
//!   again when one is back;
//! - a director killed (SIGKILL of gatewayd: its kernel interface and the
//!   BGP session go) is dropped by the router within BFD's detection time
//!   (1 s; the BGP hold time, 3 s, is the backstop), while
//!   long-lived UDP flows and new connections carry on through the other
//!   director to the same real servers: the same client tuple gets the same
//!   server through either director. The failover time and the share of flows
//!   that kept their server are printed;
//! - a director stopped cleanly (SIGTERM) withdraws its VIPs at once (a BGP
//!   UPDATE before it stops), well inside the hold time;
//! - a director whose worker fails (a failpoint's panic; the watchdog's
//!   `"on_failure": "continue"` keeps gatewayd running) withdraws them too.
//!   This needs a gatewayd built with the `failpoints` feature (see
//!   `lifecycle.rs`).
//!
//! Established TCP connections of a killed director move too: before the
//! kill each director becomes a connection-sync master and the other's
//! backup (`--start-daemon`), so the other has their entries and carries them
//! on (TCP downloads through both VIPs complete, intact). Without sync it
//! would drop their segments (no_connection, as IPVS); new connections and
//! UDP flows (a datagram opens a connection) would carry on.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gateway_e2e::wait_until;

use gateway_e2e::ecmp::{
    client_addr, rip, Ecmp, BFD_INTERVAL, BFD_MULTIPLIER, BLOB_BYTES, HOLD_TIME, KEEPALIVE_TIME, SESSIONS_CLIENT,
    UDP_PORT, VIP_DR, VIP_NAT,
};

/// How many loop iterations director 2's worker makes before the failpoint
/// makes it panic: a few seconds of an idle worker that sleeps, enough for
/// its routes to come back first.
const WORKER_POLLS_BEFORE_PANIC: u32 = 50000;

/// TCP and UDP flows per VIP: 4 client addresses, 12 source ports each.
fn flow_sources(first_port: u16) -> Vec<String> {
    (0..4).flat_map(|a| (0..12).map(move |p| format!("{}:{}", client_addr(a), first_port + p))).collect()
}

/// The flows of every (protocol, VIP) and the server that answered each.
type Answers = BTreeMap<(bool, &'static str), BTreeMap<String, String>>;

/// Runs every flow of `sources` against both VIPs over TCP and UDP; asserts
/// each was answered by a real server.
fn run_flows(ecmp: &Ecmp, sources: &[String]) -> Answers {
    let mut answers = Answers::new();
    for udp in [false, true] {
        for vip in [VIP_DR, VIP_NAT] {
            let got: BTreeMap<String, String> = ecmp.flows(udp, vip, sources).into_iter().collect();
            let failed: Vec<_> = got.iter().filter(|(_, a)| !a.starts_with("rs")).collect();
            assert!(
                failed.is_empty() && got.len() == sources.len(),
                "{} flows to {vip}: {} of {} failed: {failed:?}",
                if udp { "UDP" } else { "TCP" },
                failed.len(),
                sources.len()
            );
            answers.insert((udp, vip), got);
        }
    }
    answers
}

/// Of `before`'s flows that `select` picks (UDP?, VIP, source), how many
/// `after` answered from the same server, and how many there are.
fn kept(before: &Answers, after: &Answers, select: impl Fn(bool, &str, &str) -> bool) -> (usize, usize) {
    let mut same = 0;
    let mut total = 0;
    for (&(udp, vip), flows) in before {
        for (flow, server) in flows.iter().filter(|(flow, _)| select(udp, vip, flow)) {
            total += 1;
            same += usize::from(after.get(&(udp, vip)).and_then(|f| f.get(flow)) == Some(server));
        }
    }
    (same, total)
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

#[test]
fn two_directors_behind_an_ecmp_router_share_flows_and_keep_their_servers_when_one_leaves() {
    let mut ecmp = Ecmp::start("ecm");
    let new_conns = |ecmp: &Ecmp, n: u8| ecmp.pair.director(n).stats().counter("new connections");

    // Spread: both directors carry flows, each flow answered by one server.
    let sources = flow_sources(40000);
    let before = run_flows(&ecmp, &sources);
    let (d1, d2) = (new_conns(&ecmp, 1), new_conns(&ecmp, 2));
    eprintln!("{} flows: director 1 opened {d1} connections, director 2 {d2}", 4 * sources.len());
    assert!(d1 > 0 && d2 > 0, "the router spreads flows over both directors: {d1} and {d2}");
    assert_eq!(d1 + d2, 4 * sources.len() as u64, "each flow is one connection on one director");
    let servers: BTreeSet<&String> = before.values().flat_map(|f| f.values()).collect();
    assert_eq!(servers.len(), 3, "mh uses every server: {servers:?}");
    // Which director carried each flow, from their connection listings.
    let on_d1 = ecmp.connections_of(1);
    let carried_by_d1 = |udp: bool, vip: &str, flow: &str| {
        let port = if udp { UDP_PORT } else { 80 };
        on_d1.contains(&(udp, flow.to_owned(), format!("{vip}:{port}")))
    };
    let listed = on_d1.len() + ecmp.connections_of(2).len();
    assert_eq!(listed, 4 * sources.len(), "each flow is listed by one director");

    // Quiesced servers: director 2 withdraws the NAT VIP only, and serves it
    // again once a server is back; the flows keep their servers meanwhile.
    let quiesce = |weight: &str| {
        for flag in ["-t", "-u"] {
            let port = if flag == "-t" { "80" } else { "5353" };
            for i in 0..3 {
                let rs = format!("{}:{port}", rip(i));
                ecmp.pair.director(2).gwctl(&["-e", flag, &format!("{VIP_NAT}:{port}"), "-r", &rs, "-m", "-w", weight]);
            }
        }
    };
    quiesce("0");
    let took = ecmp.wait_next_hops(VIP_NAT, &[1], Duration::from_secs(3));
    eprintln!("director 2 withdrew {VIP_NAT} {:.2} s after its servers were quiesced", took.as_secs_f64());
    assert_eq!(ecmp.next_hops(VIP_DR), [1, 2], "the DR VIP stays on both");
    let nat_before = &before[&(false, VIP_NAT)];
    let answers: BTreeMap<String, String> = ecmp.flows(false, VIP_NAT, &sources).into_iter().collect();
    assert_eq!(&answers, nat_before, "through director 1 alone, every NAT flow reaches the same server");
    quiesce("1");
    ecmp.wait_next_hops(VIP_NAT, &[1, 2], Duration::from_secs(3));

    // Connection sync both ways from now on, and downloads over TCP that
    // will outlive director 1: 8 flows of known source ports to both VIPs,
    // slow enough to span the failover.
    ecmp.start_sync();
    let downloads: Vec<(String, &str, std::path::PathBuf, gateway_e2e::Daemon)> = (0..8)
        .map(|i| {
            let (vip, from) =
                (if i % 2 == 0 { VIP_DR } else { VIP_NAT }, format!("{}:{}", client_addr(i % 4), 45000 + i));
            let got = ecmp.pair.dir().join(format!("got{i}"));
            let (addr, port) = from.split_once(':').expect("addr:port");
            let curl = ecmp.clients.spawn(
                &format!("download-{i}"),
                "curl",
                &[
                    "-sS",
                    "--interface",
                    addr,
                    "--local-port",
                    port,
                    "--limit-rate",
                    "400k",
                    "--max-time",
                    "40",
                    "-o",
                    got.to_str().expect("UTF-8 path"),
                    &format!("http://{vip}/blob"),
                ],
            );
            (from, vip, got, curl)
        })
        .collect();

    // Director 1 dies. Long-lived UDP flows run through it all.
    let sessions: Vec<String> = (0..16)
        .map(|i| {
            let vip = if i % 2 == 0 { VIP_DR } else { VIP_NAT };
            format!("{}:{}>{vip}", client_addr(i % 4), 41000 + i)
        })
        .collect();
    let mut args = vec!["-c", SESSIONS_CLIENT, "9"];
    args.extend(sessions.iter().map(String::as_str));
    let clients = ecmp.clients.name().to_owned();
    let on_d1: Vec<bool> = downloads.iter().map(|(from, vip, _, _)| ecmp.director_of(from, vip) == 1).collect();
    let (prober, killed_at, withdrawn_after, why_down) = std::thread::scope(|s| {
        let prober = s.spawn(|| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &clients, "python3"])
                .args(&args)
                .output()
                .expect("run the sessions' client")
        });
        std::thread::sleep(Duration::from_secs(2));
        let killed_at = unix_now();
        ecmp.pair.kill_gatewayd(1);
        let mut took = Duration::ZERO;
        for vip in [VIP_DR, VIP_NAT] {
            took = took.max(ecmp.wait_next_hops(vip, &[2], HOLD_TIME + KEEPALIVE_TIME));
        }
        let why_down = ecmp.bird_protocols("router");
        (prober.join().expect("the sessions' thread"), killed_at, took, why_down)
    });
    assert!(prober.status.success(), "sessions' client: {}", String::from_utf8_lossy(&prober.stderr));
    let detection = BFD_INTERVAL * BFD_MULTIPLIER;
    eprintln!(
        "director 1 killed: the router withdrew its routes {:.2} s later (BFD detection {:.1} s, BGP hold time {} s)",
        withdrawn_after.as_secs_f64(),
        detection.as_secs_f64(),
        HOLD_TIME.as_secs()
    );
    assert!(withdrawn_after < HOLD_TIME, "within the hold time: {withdrawn_after:?}");
    // BFD's doing, not the hold timer's.
    assert!(
        why_down.lines().any(|l| l.starts_with("director1 ") && l.contains("BFD session down")),
        "BFD ended the session with director 1:\n{why_down}"
    );

    // Every session kept one server; those the router moved (a gap in
    // their answers) came back within the hold time and a bit.
    let mut answered: BTreeMap<usize, Vec<(f64, String)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&prober.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [t, i, rs] = f.as_slice() {
            answered.entry(i.parse().expect("index")).or_default().push((t.parse().expect("time"), (*rs).to_owned()));
        }
    }
    let mut moved = 0;
    let mut failover = 0f64;
    for (i, spec) in sessions.iter().enumerate() {
        let answers = answered.get(&i).unwrap_or_else(|| panic!("session {spec} got no answer"));
        let servers: BTreeSet<&String> = answers.iter().map(|(_, rs)| rs).collect();
        assert_eq!(servers.len(), 1, "session {spec} kept one server: {servers:?}");
        let last_before = answers.iter().rev().find(|(t, _)| *t < killed_at).map(|a| a.0);
        let first_after = answers.iter().find(|(t, _)| *t >= killed_at).map(|a| a.0);
        let (Some(last_before), Some(first_after)) = (last_before, first_after) else {
            panic!("session {spec} answered before and after the kill: {answers:?}");
        };
        assert!(
            answers.last().is_some_and(|(t, _)| *t > killed_at + 5.0),
            "session {spec} is answered to the end: {answers:?}"
        );
        if first_after - last_before > 0.5 {
            moved += 1;
            failover = failover.max(first_after - killed_at);
        }
    }
    assert!(moved > 0, "some sessions went through director 1");
    assert!(
        failover <= (detection + Duration::from_secs(1)).as_secs_f64(),
        "the moved sessions are answered again soon after BFD's detection time: {failover:.2} s"
    );
    eprintln!(
        "{moved} of {} long-lived UDP flows moved to director 2, all to the same server, answered again {failover:.2} s \
         after the kill",
        sessions.len()
    );

    // The downloads complete, intact, also those director 1 carried: its
    // connections were synced to director 2 (each director is the other's
    // sync master and backup), which carries them on.
    let want = gateway_e2e::sha256(&ecmp.blob());
    for (from, vip, got, mut curl) in downloads {
        let status = curl.wait(Duration::from_secs(60)).expect("the download ends");
        assert!(status.success(), "download from {from} to {vip}: {status}\n{}", curl.log());
        assert_eq!(std::fs::metadata(&got).map_or(0, |m| m.len()), BLOB_BYTES as u64, "{from} to {vip}: length");
        assert_eq!(gateway_e2e::sha256(&got), want, "{from} to {vip}: the download arrives intact");
        let _ = std::fs::remove_file(&got);
    }
    let carried_on = on_d1.iter().filter(|&&on| on).count();
    assert!(carried_on > 0, "the router sent some downloads through director 1");
    eprintln!(
        "{carried_on} of 8 TCP downloads were on director 1 when it died and completed through director 2 (synced)"
    );

    // The same tuples again, all through director 2 now: the same servers,
    // also for the flows director 1 carried before.
    let after = run_flows(&ecmp, &sources);
    let (same, total) = kept(&before, &after, |_, _, _| true);
    let (moved_same, moved) = kept(&before, &after, carried_by_d1);
    eprintln!(
        "flows that kept their server when director 1 left: {moved_same} of the {moved} it carried ({:.0}%); \
         {same} of all {total}",
        100.0 * moved_same as f64 / moved as f64
    );
    assert!(moved > 0, "director 1 carried flows");
    assert_eq!(same, total, "mh: every flow keeps its server through either director");

    // Director 1 back: announced again; then director 2 stops cleanly and
    // withdraws before it goes, far quicker than the hold time.
    ecmp.pair.start_gatewayd(1);
    for vip in [VIP_DR, VIP_NAT] {
        ecmp.wait_next_hops(vip, &[1, 2], Duration::from_secs(15));
    }
    let pid = ecmp.pair.director(2).gatewayd_pid().to_string();
    gateway_e2e::run("kill", &["-TERM", &pid]);
    let mut took = Duration::ZERO;
    for vip in [VIP_DR, VIP_NAT] {
        took = took.max(ecmp.wait_next_hops(vip, &[1], HOLD_TIME));
    }
    eprintln!("director 2 stopped by SIGTERM: its routes were gone {:.2} s after", took.as_secs_f64());
    assert!(took < HOLD_TIME, "withdrawn before the hold time could end the session: {took:?}");
    let log = ecmp.pair.stop_gatewayd(2);
    assert!(log.contains(&format!("withdrawing {VIP_DR}")), "gatewayd logs its withdrawals:\n{log}");
    let last = run_flows(&ecmp, &sources);
    assert_eq!(kept(&before, &last, |_, _, _| true), (total, total), "director 1 alone: the same servers");

    // Director 2 back, with a worker that panics after a while (the
    // gateway's failpoint): gatewayd runs on ("on_failure": "continue"),
    // but withdraws its VIPs.
    let failpoint = format!("worker-poll={WORKER_POLLS_BEFORE_PANIC}*off->panic(injected failure)");
    ecmp.pair.start_gatewayd_with_env(2, &[("FAILPOINTS".into(), failpoint), ("RUST_BACKTRACE".into(), "0".into())]);
    let panicked = |ecmp: &Ecmp| ecmp.pair.director(2).gatewayd_log().contains("stopped: panicked: injected failure");
    let both = |ecmp: &Ecmp| [VIP_DR, VIP_NAT].iter().all(|vip| ecmp.next_hops(vip) == [1, 2]);
    assert!(
        wait_until(Duration::from_secs(20), || both(&ecmp) || panicked(&ecmp)) && !panicked(&ecmp),
        "director 2 announced again before its worker failed (is gatewayd built with the failpoints feature?):\n{}",
        ecmp.pair.director(2).gatewayd_log()
    );
    let started = std::time::Instant::now();
    assert!(wait_until(Duration::from_secs(40), || panicked(&ecmp)), "the failpoint fired");
    eprintln!("director 2's worker panicked {:.1} s after its routes came back", started.elapsed().as_secs_f64());
    let mut took = Duration::ZERO;
    for vip in [VIP_DR, VIP_NAT] {
        took = took.max(ecmp.wait_next_hops(vip, &[1], Duration::from_secs(2)));
    }
    eprintln!("director 2's worker panicked: its routes were gone {:.2} s after it was seen", took.as_secs_f64());
    let log = ecmp.pair.director(2).gatewayd_log();
    assert!(
        log.contains(&format!("withdrawing {VIP_DR}: off gwk0 (worker 0 stopped: panicked: injected failure)")),
        "gatewayd names why it withdraws:\n{log}"
    );
    let last = run_flows(&ecmp, &sources);
    assert_eq!(kept(&before, &last, |_, _, _| true), (total, total), "director 1 alone again: the same servers");
}
