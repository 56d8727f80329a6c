//! What the running dataplane reports through gwctl after real traffic:
//! `-Lnc` (the workers' connection tables), `--stats`, `--rate`, `-Z`, and the
//! connection-table occupancy of `gwctl stats`.

use std::time::Duration;

use gateway_e2e::topology::{fnat_rules, rip, Options, Topology, LIP, VIP};
use gateway_e2e::wait_until;

/// The numbers of the `-Ln --stats`/`--rate` row that starts with `prefix`.
fn row(listing: &str, prefix: &str) -> Vec<u64> {
    let line =
        listing.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no row {prefix:?} in\n{listing}"));
    line[prefix.len()..].split_whitespace().map(|n| n.parse().unwrap_or_else(|_| panic!("{n:?} in {line}"))).collect()
}

#[test]
fn connections_stats_rates_and_zero_come_from_the_workers() {
    let services = fnat_rules("-s rr", &["", ""]);
    let mut topo = Topology::start("lst", Options { servers: 2, services, ..Options::default() });
    let _servers = topo.python_http(&[rip(0), rip(1)]);
    let url = format!("http://{VIP}/");
    topo.wait_for_service(&url);
    topo.gwctl(&["-Z"]);
    let answers = topo.curl_many(None, &url, 6);
    assert_eq!(answers.len(), 6);

    // -Lnc: six client connections, each to one of the servers, through the local address.
    let conns = topo.gwctl(&["-Lnc"]);
    let ours: Vec<&str> = conns.lines().filter(|l| l.contains(&format!("{VIP}:80"))).collect();
    assert!(ours.len() >= 6, "the six connections are listed:\n{conns}");
    for l in &ours {
        assert!(l.starts_with("TCP ") && l.contains("10.0.0.1:"), "{l}");
        assert!(l.contains(&format!("{}:8080", rip(0))) || l.contains(&format!("{}:8080", rip(1))), "{l}");
    }

    // -G: the local address's CONNS are the connections using it now (every one listed
    // above: the service is FNAT through it), CONFLICTS the allocations that found it full.
    let laddrs = topo.gwctl(&["-G", "-t", &format!("{VIP}:80")]);
    let snat: Vec<&str> = laddrs
        .lines()
        .find(|l| l.split_whitespace().next() == Some(LIP))
        .unwrap_or_else(|| panic!("no row for {LIP} in\n{laddrs}"))
        .split_whitespace()
        .collect();
    assert_eq!(snat, [LIP, "0", &ours.len().to_string()], "SNAT_IP CONFLICTS CONNS:\n{laddrs}\n{conns}");

    // --stats --exact: the six connections, three per server; packets and bytes both ways.
    let stats = topo.gwctl(&["-Ln", "--stats", "--exact"]);
    let svc = row(&stats, &format!("TCP  {VIP}:80"));
    assert_eq!(svc[0], 6, "Conns:\n{stats}");
    assert!(
        svc[1] >= 6 * 4 && svc[2] >= 6 * 3,
        "at least SYN, ACK, request, FIN in and SYN-ACK, answer, FIN out per connection:\n{stats}"
    );
    assert!(svc[3] > svc[1] * 40 && svc[4] > svc[2] * 40, "bytes are IP lengths:\n{stats}");
    let (rs1, rs2) = (row(&stats, &format!("  -> {}:8080", rip(0))), row(&stats, &format!("  -> {}:8080", rip(1))));
    assert_eq!((rs1[0], rs2[0]), (3, 3), "rr:\n{stats}");
    for i in 0..5 {
        assert_eq!(rs1[i] + rs2[i], svc[i], "the service is the sum of its servers:\n{stats}");
    }

    // --rate: the estimator (every 2 s) sees the traffic.
    assert!(
        wait_until(Duration::from_secs(6), || row(&topo.gwctl(&["-Ln", "--rate"]), &format!("TCP  {VIP}:80"))[1] > 0),
        "InPPS stays 0:\n{}",
        topo.gwctl(&["-Ln", "--rate"])
    );

    // gwctl stats: the table holds them (refreshed once a second).
    assert!(
        wait_until(Duration::from_secs(3), || topo.worker_counter("connection table ") >= 6),
        "{}",
        topo.gwctl(&["stats"])
    );

    // -Z: counts and rates start again.
    topo.gwctl(&["-Z", "-t", &format!("{VIP}:80")]);
    let zeroed = topo.gwctl(&["-Ln", "--stats", "--exact"]);
    assert_eq!(row(&zeroed, &format!("TCP  {VIP}:80")), [0, 0, 0, 0, 0], "{zeroed}");
    assert_eq!(row(&topo.gwctl(&["-Ln", "--rate"]), &format!("TCP  {VIP}:80")), [0, 0, 0, 0, 0]);
    topo.stop();
}
