//! Configuration changes while real traffic flows, and a saved rule file
//! restored into a fresh gateway.

use std::time::Duration;

use gateway_e2e::topology::{rip, VIP};
use gateway_e2e::{wait_until, Options, Topology};

fn rips(n: usize) -> Vec<String> {
    (0..n).map(rip).collect()
}

#[test]
fn add_a_server_and_quiesce_another_under_load_without_a_failed_request() {
    let mut topo = Topology::start("ld", Options { servers: 3, ..Options::default() });
    // No keep-alive: every wrk request is a new connection, scheduled by the
    // table of the moment.
    let _nginx = topo.nginx(&rips(3), false);
    topo.fnat_service("-s rr", &["", ""]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let mut wrk = topo.client.spawn(
        "wrk",
        "sh",
        &["-c", &format!("ulimit -n 20000 && exec wrk -t2 -c50 -d5s --timeout 10s http://{VIP}/who")],
    );
    // Change the table once the load is on.
    assert!(wait_until(Duration::from_secs(5), || topo.access_log(1).len() > 200), "wrk reaches the servers");
    topo.gwctl_line(&format!("-a -t {VIP}:80 -r {}:8080 -b", rip(2)));
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {}:8080 -b -w 0", rip(0)));
    // gwctl answers once every worker uses the new table: from here on rs1
    // gets no new connection, only the requests already on its connections.
    let rs1_at_switch = topo.access_log(1).len();
    let rs3_at_switch = topo.access_log(3).len();
    assert!(wrk.is_running(), "the changes happened under load");

    let status = wrk.wait(Duration::from_secs(30)).expect("wrk finishes");
    let out = wrk.log();
    assert!(status.success(), "wrk: {out}");
    assert!(!out.contains("Socket errors"), "no failed connection:\n{out}");
    assert!(!out.contains("Non-2xx"), "only 2xx answers:\n{out}");
    let rs1_after = topo.access_log(1).len() - rs1_at_switch;
    let rs2_after = topo.access_log(2).len();
    let rs3_after = topo.access_log(3).len() - rs3_at_switch;
    assert!(rs3_after > 200, "the added server takes connections: {rs3_after}\n{out}");
    assert!(rs2_after > 200, "{out}");
    // At most wrk's 50 connections were open on rs1 when it was quiesced.
    // (The local ports of any excess tell whether old gateway entries were
    // reused: FNAT gives every new connection a free local port.)
    let rs1_log = topo.access_log_ports(1);
    let old_ports: std::collections::HashSet<u16> = rs1_log[..rs1_at_switch].iter().map(|e| e.2).collect();
    let reused = rs1_log[rs1_at_switch..].iter().filter(|e| old_ports.contains(&e.2)).count();
    let requests = topo.access_log(1).len() + rs2_after + topo.access_log(3).len();
    let new_conns = topo.worker_counter("new connections");
    assert!(
        rs1_after <= 50,
        "rs1 got {rs1_after} requests after weight 0, {reused} of them on local ports it had served before; \
         {requests} requests (one per connection) made {new_conns} new connections on the gateway:\n{out}"
    );
    for n in 1..=3 {
        assert!(topo.access_log(n).iter().all(|(_, s)| *s == 200), "rs{n} answered everything");
    }
    topo.stop();
}

/// A fresh topology with nginx on three servers; `configure` sets the
/// table; returns the saved rules and the answers to 12 connections.
fn rotation(short: &str, configure: impl FnOnce(&Topology)) -> (String, Vec<String>) {
    let mut topo = Topology::start(short, Options { servers: 3, ..Options::default() });
    let _nginx = topo.nginx(&rips(3), false);
    configure(&topo);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    let answers = topo.curl_many(None, &who, 12);
    let saved = topo.gwctl(&["-Sn"]);
    topo.stop();
    (saved, answers)
}

#[test]
fn saved_rules_restored_into_a_fresh_gateway_give_the_same_rotation() {
    let (saved, first) = rotation("sv1", |topo| topo.fnat_service("-s wrr", &["-w 3", "-w 2", "-w 1"]));
    assert!(saved.contains("-P -t") && saved.contains("-w 3"), "the saved rules carry the local address and weights:\n{saved}");
    let (resaved, second) = rotation("sv2", |topo| {
        let out = topo.gwctl_output(&["-R"], Some(&saved));
        assert!(out.status.success(), "gwctl -R: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(resaved, saved, "the restored table saves the same");
    assert_eq!(first.len(), 12);
    let share = |who: &str| first.iter().filter(|a| *a == who).count();
    assert_eq!((share("rs1"), share("rs2"), share("rs3")), (6, 4, 2), "wrr 3:2:1 over two cycles: {first:?}");
    let mut cycle = second[..6].to_vec();
    cycle.sort();
    assert_eq!(cycle, ["rs1", "rs1", "rs1", "rs2", "rs2", "rs3"], "the restored weights: {second:?}");
    // Not only the same shares: the same interleaving, as ipvsadm -R replaying
    // the same lines into a fresh kernel gives. Where in the cycle the
    // measured requests start depends on how many probes waiting for the
    // service took (a probe sent before a server listens still takes a pick).
    assert_eq!(first[6..], first[..6], "one cycle repeats: {first:?}");
    assert_eq!(second[6..], second[..6], "one cycle repeats: {second:?}");
    let cycle = &first[..6];
    assert!(
        (0..6).any(|k| (0..6).all(|i| second[i] == cycle[(k + i) % 6])),
        "the same rotation after the restore, up to where it starts: restored {second:?}, configured by hand {first:?}"
    );
}
