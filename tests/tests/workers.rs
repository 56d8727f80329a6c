//! Two workers on multi-queue ports: connections spread over both, every
//! answer correct, and replies that reach the wrong worker's queue are
//! handed to the owner (the redirect counters move).

use gateway_e2e::topology::{client_addr, rip, VIP};
use std::time::Duration;

use gateway_e2e::{wait_until, Options, Topology};

/// The per-worker values of a `gwctl stats` counter ("new connections").
fn per_worker(stats: &str, name: &str) -> Vec<u64> {
    stats
        .split("worker ")
        .skip(1)
        .map(|block| {
            block
                .split(name)
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.trim_end_matches(',').parse().ok())
                .unwrap_or_else(|| panic!("no {name:?} in {stats}"))
        })
        .collect()
}

#[test]
fn two_workers_on_two_queue_taps_carry_every_connection() {
    let clients = 4;
    let mut topo = Topology::start("w2", Options { workers: 2, clients, servers: 3, ..Options::default() });
    let _nginx = topo.nginx(&(0..3).map(rip).collect::<Vec<_>>(), false);
    topo.fnat_service("-s rr", &["", "", ""]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    // 4 client addresses x 100 connections, each from a fresh source port.
    for c in 0..usize::from(clients) {
        let answers = topo.curl_many(Some(&client_addr(c)), &who, 100);
        assert_eq!(answers.len(), 100, "client {c}: every request answered");
        assert!(answers.iter().all(|a| ["rs1", "rs2", "rs3"].contains(&a.as_str())), "client {c}: {answers:?}");
    }
    // And concurrent ones.
    let wrk = topo.client.sh(&format!("ulimit -n 20000 && exec wrk -t2 -c200 -d2s --timeout 10s http://{VIP}/who"));
    let out = String::from_utf8_lossy(&wrk.stdout).into_owned();
    assert!(wrk.status.success() && out.contains(" requests in "), "wrk: {out}");
    assert!(!out.contains("Socket errors") && !out.contains("Non-2xx"), "no failed request:\n{out}");

    let stats = topo.gwctl(&["stats"]);
    assert!(stats.contains("worker 1 (lcore 2)"), "two workers: {stats}");
    let new_conns = per_worker(&stats, "new connections");
    assert_eq!(new_conns.len(), 2, "{stats}");
    assert!(new_conns.iter().all(|&n| n >= 50), "both workers take new connections: {stats}");
    let redirected = |stats: &str| -> (u64, u64) {
        (per_worker(stats, "redirected out").iter().sum(), per_worker(stats, " in ").iter().sum())
    };
    let (out_total, _) = redirected(&stats);
    assert!(out_total > 0, "replies reached the other worker's queue and were redirected: {stats}");
    // Once the last packets of the closing connections are through, every
    // redirected packet has arrived at its owner.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let (o, i) = redirected(&topo.gwctl(&["stats"]));
            o == i && o >= out_total
        }),
        "redirected out and in differ: {}",
        topo.gwctl(&["stats"])
    );
    topo.stop();
}
