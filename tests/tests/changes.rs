//! Configuration changes while real traffic flows, and a saved rule file
//! restored into a fresh gateway.

use std::time::Duration;

use gateway_e2e::topology::{rip, LIP, VIP};
use gateway_e2e::{wait_until, Options, Topology, WrkSummary};

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
/// table; returns the saved rules and the answers to the first 12
/// connections to VIP:80. Readiness is probed through VIP:81 (rr over the
/// same servers, each answering once, so every neighbour is resolved), so
/// no probe takes a pick of VIP:80's scheduler.
fn rotation(short: &str, configure: impl FnOnce(&Topology)) -> (String, Vec<String>) {
    let mut topo = Topology::start(short, Options { servers: 3, ..Options::default() });
    let _nginx = topo.nginx(&rips(3), false);
    configure(&topo);
    let probe = format!("http://{VIP}:81/who");
    topo.wait_for_service(&probe);
    topo.curl_many(None, &probe, 3);
    let answers = topo.curl_many(None, &format!("http://{VIP}/who"), 12);
    let saved = topo.gwctl(&["-Sn"]);
    topo.stop();
    (saved, answers)
}

#[test]
fn saved_rules_restored_into_a_fresh_gateway_give_the_same_rotation() {
    let (saved, first) = rotation("sv1", |topo| {
        topo.fnat_service("-s wrr", &["-w 3", "-w 2", "-w 1"]);
        topo.gwctl_line(&format!("-A -t {VIP}:81 -s rr"));
        topo.gwctl_line(&format!("-P -t {VIP}:81 -z {LIP} -F servers"));
        for i in 0..3 {
            topo.gwctl_line(&format!("-a -t {VIP}:81 -r {}:8080 -b", rip(i)));
        }
    });
    assert!(
        saved.contains("-P -t") && saved.contains("-w 3"),
        "the saved rules carry the local address and weights:\n{saved}"
    );
    let (resaved, second) = rotation("sv2", |topo| {
        let out = topo.gwctl_output(&["-R"], Some(&saved));
        assert!(out.status.success(), "gwctl -R: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(resaved, saved, "the restored table saves the same");
    // Typed line by line, IPVS's wrr is updated at each line: -A (max weight
    // 0), -a -w 3 (current weight 1), -w 2 and -w 1 (it stays 1); so the
    // cycle starts rs1 rs2 rs3, then the weight-3 level.
    let cycle = ["rs1", "rs2", "rs3", "rs1", "rs1", "rs2"];
    assert_eq!(first, [cycle, cycle].concat(), "wrr 3:2:1 configured line by line");
    // The restore is one transaction, yet the same rotation from the same place, as
    // ipvsadm -R replaying the same lines into a fresh kernel gives.
    assert_eq!(second, first, "the rotation after -R");
}

/// wrk against `url` for `secs` seconds with `conns` connections, in the background.
fn wrk(topo: &Topology, conns: u32, secs: u32, url: &str) -> gateway_e2e::Daemon {
    topo.client.spawn(
        "wrk",
        "sh",
        &["-c", &format!("ulimit -n 20000 && exec wrk -t2 -c{conns} -d{secs}s --timeout 5s {url}")],
    )
}

#[test]
fn remove_a_server_and_edit_the_scheduler_under_load() {
    let mut topo = Topology::start("rm", Options { servers: 3, ..Options::default() });
    // No keep-alive: every request a new connection, scheduled by the table of the moment.
    let _nginx = topo.nginx(&rips(3), false);
    topo.fnat_service("-s rr", &["", "", "-w 3"]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    let (rs1, rs2, rs3) = (format!("{}:8080", rip(0)), format!("{}:8080", rip(1)), format!("{}:8080", rip(2)));
    let logged = |n: usize| topo.access_log(n).len();

    // Remove rs1 while 50 concurrent connections run.
    let conns = 50;
    let mut load = wrk(&topo, conns, 3, &who);
    assert!(wait_until(Duration::from_secs(5), || logged(1) > 200), "wrk reaches the servers");
    topo.gwctl_line(&format!("-d -t {VIP}:80 -r {rs1}"));
    let (rs1_at, rs2_at, rs3_at) = (logged(1), logged(2), logged(3));
    assert!(load.is_running(), "the removal happened under load");
    let status = load.wait(Duration::from_secs(20)).expect("wrk finishes");
    let out = load.log();
    assert!(status.success(), "wrk: {out}");
    let summary = WrkSummary::parse(&out);
    // Only requests already on connections to rs1 could fail: at most wrk's
    // concurrency. (The gateway keeps a removed server's connections until
    // they end, as IPVS does, so none should.)
    assert!(summary.failed() <= u64::from(conns), "failures bounded by the requests in flight: {summary:?}\n{out}");
    eprintln!("removal under load: {summary:?}");
    let listing = topo.gwctl(&["-Ln"]);
    assert!(!listing.contains(&rs1), "rs1 is gone:\n{listing}");
    let rs1_after = logged(1) - rs1_at;
    assert!(rs1_after <= conns as usize, "rs1 got {rs1_after} requests after its removal: only those in flight\n{out}");
    assert!(logged(2) - rs2_at > 200 && logged(3) - rs3_at > 200, "rs2 and rs3 carry the load\n{out}");

    // rr ignores the weights (rs3 has 3): an even split. Edit the scheduler
    // to wrr under load: no request fails, and from the edit on rs3 takes three times rs2's share.
    let mut load = wrk(&topo, conns, 3, &who);
    let (rs2_0, rs3_0) = (logged(2), logged(3));
    assert!(wait_until(Duration::from_secs(5), || logged(2) - rs2_0 > 300), "wrk reaches the servers");
    topo.gwctl_line(&format!("-E -t {VIP}:80 -s wrr"));
    let (rs2_at, rs3_at) = (logged(2), logged(3));
    assert!(load.is_running(), "the edit happened under load");
    let status = load.wait(Duration::from_secs(20)).expect("wrk finishes");
    let out = load.log();
    assert!(status.success(), "wrk: {out}");
    let summary = WrkSummary::parse(&out);
    assert_eq!(summary.failed(), 0, "no failed request across the scheduler edit: {summary:?}\n{out}");
    let listing = topo.gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  {VIP}:80 wrr")), "{listing}");
    assert_eq!(
        (topo.server_row(&rs2).0, topo.server_row(&rs3).0),
        (1, 3),
        "the edit kept the servers and weights:\n{listing}"
    );
    let ratio = |a: usize, b: usize| a as f64 / b.max(1) as f64;
    let before = ratio(rs3_at - rs3_0, rs2_at - rs2_0);
    let (d2, d3) = (logged(2) - rs2_at, logged(3) - rs3_at);
    let after = ratio(d3, d2);
    eprintln!("rs3/rs2 before the edit {before:.2}, after {after:.2} ({d3}/{d2})");
    assert!((0.8..=1.25).contains(&before), "rr splits evenly before the edit: rs3/rs2 = {before:.2}");
    // The connections in flight at the edit finish on rr's choice; hundreds follow on wrr's.
    assert!(d2 + d3 > 400 && (2.5..=3.5).contains(&after), "wrr 3:1 after the edit: rs3 {d3}, rs2 {d2}\n{out}");
    for n in 1..=3 {
        assert!(topo.access_log(n).iter().all(|(_, s)| *s == 200), "rs{n} answered everything");
    }
    topo.stop();
}
