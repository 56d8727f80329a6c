//! Passive health detection (DPVS's `dest-check`): a real server whose new connections keep
//! failing in the datapath is inhibited without any active check, backed off, tried again,
//! and back once it answers.
//!
//! Three real servers of a FNAT rr service: nginx answers on the first two; nothing listens
//! on the third's port, so its kernel answers every SYN with a RST. Each curl is one new
//! connection through the VIP.

use std::time::{Duration, Instant};

use gateway_e2e::health::{health_row, listed_weight, saved_weight};
use gateway_e2e::topology::{fnat_rules, nginx_in, rip, Options, Topology, VIP};
use gateway_e2e::wait_until;

fn wait_weight(topo: &Topology, rs: &str, want: u32, within: Duration) -> Duration {
    let start = Instant::now();
    assert!(
        wait_until(within, || listed_weight(topo, rs) == Some(want)),
        "{rs} not at weight {want} within {within:?}:\n{}\n{}\ngatewayd log:\n{}",
        topo.gwctl(&["-Ln"]),
        topo.gwctl(&["--health", "-L"]),
        topo.gatewayd_log()
    );
    start.elapsed()
}

/// `n` new connections through the VIP: each answer's body, "" for a failed one.
fn curls(topo: &Topology, n: usize) -> Vec<String> {
    (0..n).map(|_| topo.curl(&format!("http://{VIP}/who"))).collect()
}

/// The JSON `gwctl --json -Ln` gives of `rs`'s passive counts.
fn counts(topo: &Topology, rs: &str) -> serde_json::Value {
    let reply: serde_json::Value = serde_json::from_str(&topo.gwctl(&["--json", "-Ln"])).unwrap();
    let servers = reply.pointer("/services/0/servers").unwrap_or_else(|| panic!("{reply}"));
    let (addr, port) = rs.split_once(':').unwrap();
    servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["config"]["addr"] == addr && s["config"]["port"].as_u64() == port.parse().ok())
        .unwrap_or_else(|| panic!("{rs} not in {servers}"))["passive"]
        .clone()
}

#[test]
fn a_server_answering_syns_with_rst_is_inhibited_backed_off_and_back() {
    let topo = Topology::start(
        "pd",
        Options { servers: 3, services: fnat_rules("-s rr", &["", "", ""]), ..Options::default() },
    );
    let _nginx = topo.nginx(&[rip(0), rip(1)], false);
    let rs: Vec<String> = (0..3).map(|i| format!("{}:8080", rip(i))).collect();
    let bad = &rs[2];
    assert!(wait_until(Duration::from_secs(15), || topo.curl(&format!("http://{VIP}/who")).starts_with("rs")));

    // Off (the default): the refusals are counted, nothing changes.
    let before = counts(&topo, bad)["refused"].as_u64().unwrap();
    let answers = curls(&topo, 9);
    assert_eq!(answers.iter().filter(|a| a.is_empty()).count(), 3, "rr: every third is refused: {answers:?}");
    assert_eq!(counts(&topo, bad)["refused"].as_u64().unwrap(), before + 3);
    assert!(counts(&topo, &rs[0])["succeeded"].as_u64().unwrap() >= 3);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(listed_weight(&topo, bad), Some(1), "passive detection is off");
    assert_eq!(topo.gwctl(&["--health", "-L"]).lines().count(), 1, "nothing watched");

    // On: after 3 refusals in a row it is inhibited, without any active check.
    topo.gwctl_line(&format!("--health -t {VIP}:80 --passive --passive-failures 3 --passive-backoff 2:8"));
    let row = health_row(&topo, bad);
    assert_eq!(&row[3..7], ["-", "up", "1", "1"], "{row:?}");
    assert_eq!(row[12], "0/3", "failures from before it was on do not count: {row:?}");
    let start = Instant::now();
    let mut failed = 0;
    while listed_weight(&topo, bad) != Some(0) {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", topo.gatewayd_log());
        failed += curls(&topo, 1).iter().filter(|a| a.is_empty()).count();
    }
    assert!(failed >= 3, "{failed} failures");
    let row = health_row(&topo, bad);
    assert_eq!(&row[4..6], ["passive-down", "0"], "{row:?}");
    // 3 failures, or more if curls reached it before the policy's next look (every
    // 100 ms, later on a loaded machine).
    let streak = row[12].strip_suffix("/3").unwrap_or_else(|| panic!("{row:?}"));
    assert!(streak.parse::<u32>().is_ok_and(|n| n >= 3), "{row:?}");
    // The back-off left, in whole seconds, read some time after it began.
    assert!(row[13] == "2s" || row[13] == "1s", "back-off left: {row:?}");
    assert_eq!(
        row[14..].join(" "),
        format!("{streak} new connections failed in a row ({streak} refused); inhibited for 2s"),
        "{row:?}"
    );
    // A weight set by hand while it is inhibited is the one it comes back with.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {bad} -b -w 2"));
    assert_eq!(listed_weight(&topo, bad), Some(0), "passive detection's 0 stays in force");
    assert_eq!(saved_weight(&topo, bad), 2);
    // Meanwhile no new connection goes to it.
    let answers = curls(&topo, 6);
    assert!(answers.iter().all(|a| a.starts_with("rs")), "{answers:?}");

    // The back-off ends: on trial with its weight; one failure inhibits it for twice as long.
    wait_weight(&topo, bad, 2, Duration::from_secs(5));
    assert_eq!(health_row(&topo, bad)[12], "trial");
    let start = Instant::now();
    while listed_weight(&topo, bad) != Some(0) {
        assert!(start.elapsed() < Duration::from_secs(20), "{}", topo.gatewayd_log());
        curls(&topo, 1);
    }
    let json: serde_json::Value = serde_json::from_str(&topo.gwctl(&["--json", "--health", "-L"])).unwrap();
    let p = json.as_array().unwrap().iter().find(|s| s["addr"] == rip(2)).unwrap()["passive"].clone();
    assert_eq!((p["state"].as_str(), p["inhibitions"].as_u64()), (Some("down"), Some(2)), "{p}");
    let left = p["backoff_left_ms"].as_u64().unwrap();
    assert!(p["reason"].as_str().is_some_and(|r| r.ends_with("inhibited for 4s")), "doubled to 4 s: {p}");
    assert!(left <= 4000, "{left} ms left of 4 s");

    // nginx on its port: the next trial succeeds and it stays.
    let late = topo.dir().join("late");
    let _late_nginx = nginx_in(&topo.servers, &late, &format!("{}-late", topo.id()), std::slice::from_ref(bad), false);
    let back = wait_weight(&topo, bad, 2, Duration::from_secs(6));
    eprintln!("back for its trial after {back:?}");
    let answers = curls(&topo, 12);
    assert!(answers.iter().all(|a| a.starts_with("rs")), "{answers:?}");
    assert!(!std::fs::read_to_string(late.join("rs1.access")).unwrap_or_default().is_empty(), "it served some");
    let row = health_row(&topo, bad);
    assert_eq!(&row[4..6], ["up", "2"], "{row:?}");
    assert_eq!(row[12], "0/3", "serving again: {row:?}");
    assert_eq!(listed_weight(&topo, bad), Some(2));

    // Off again: nothing watched; bad input is refused with a message naming it.
    topo.gwctl_line(&format!("--health -D -t {VIP}:80 --passive"));
    assert_eq!(topo.gwctl(&["--health", "-L"]).lines().count(), 1);
    for (line, status, message) in [
        (format!("--health -t {VIP}:80 --passive --passive-failures 0"), 2, "illegal --passive-failures `0' specified"),
        (format!("--health -t {VIP}:80 --passive --passive-backoff 10:5"), 2, "illegal --passive-backoff `10:5'"),
        (format!("--health -t {VIP}:80 -r {bad} --passive"), 2, "--passive is set per service"),
        (format!("--health -t {VIP}:80 --passive --check tcp"), 2, "Illegal 'check' option with --passive"),
        ("--health -t 10.0.0.99:80 --passive".to_string(), 1, "service TCP 10.0.0.99:80 not defined"),
        (format!("--health -D -t {VIP}:80 --passive"), 1, &format!("no passive detection on service TCP {VIP}:80")),
    ] {
        let out = topo.gwctl_output(&line.split_whitespace().collect::<Vec<_>>(), None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{line}: {err}");
        assert!(err.contains(message), "{line}: {err}");
    }
    let log = topo.gatewayd_log();
    assert!(log.contains(&format!("health: server {bad} of TCP {VIP}:80 passive-down (")), "{log}");
    assert!(log.contains("new connections failed in a row ("), "{log}");
    assert!(
        log.contains(&format!("health: server {bad} of TCP {VIP}:80 passive-up (back-off over: on trial)")),
        "{log}"
    );
}
