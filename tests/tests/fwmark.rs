//! Firewall-mark services (`-f`), the seed's LVS-FWM example: the gateway
//! holds the marked destination as its own address (`gwctl addr add`, as
//! the seed's director holds the VIP with ifconfig), a `gwctl mark` rule
//! marks TCP to port 80 on it, and `-A -f 1 -s rr` schedules the marked
//! connections: rr alternates, then `-E -f 1 -s rr -p 10` keeps the client
//! on one server. NAT shows the alternation in the servers' answers; DR (the
//! seed's `-g` servers, which share one namespace and so one answer) in the
//! servers' connection counts.

use gateway_e2e::topology::{rip, VIP};
use gateway_e2e::{Options, Topology};

/// Holds VIP on the gateway and marks TCP to VIP:80 with mark 1.
fn mark_the_vip(topo: &Topology) {
    topo.gwctl(&["addr", "add", &format!("{VIP}/32"), "dev", "client"]);
    topo.gwctl(&["mark", "add", "1", "-d", VIP, "-p", "tcp", "--dports", "80"]);
}

#[test]
fn nat_fwmark_service_alternates_then_persistence_sticks() {
    let mut topo = Topology::start("fwn", Options { servers: 2, servers_via_gateway: true, ..Options::default() });
    let _nginx = topo.nginx(&[rip(0), rip(1)], false);
    mark_the_vip(&topo);
    topo.gwctl_line("-A -f 1 -s rr");
    for i in 0..2 {
        topo.gwctl_line(&format!("-a -f 1 -r {}:8080 -m", rip(i)));
    }
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let answers = topo.curl_many(None, &who, 6);
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert!(answers.iter().all(|a| a == "rs1" || a == "rs2"), "{answers:?}");
    assert!(answers.windows(2).all(|p| p[0] != p[1]), "rr alternates the two servers: {answers:?}");

    topo.gwctl_line("-E -f 1 -s rr -p 10");
    let answers = topo.curl_many(None, &who, 6);
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert!(
        answers.iter().all(|a| a == &answers[0] && a.starts_with("rs")),
        "persistence keeps the client on one server: {answers:?}"
    );
    assert!(topo.gwctl(&["-Ln"]).contains("FWM  1 rr persistent 10"), "{}", topo.gwctl(&["-Ln"]));
    assert!(topo.gatewayd_log().lines().all(|l| !l.contains("panicked")), "{}", topo.gatewayd_log());
    topo.stop();
}

#[test]
fn dr_fwmark_service_of_the_seed_alternates_then_persistence_sticks() {
    let mut topo = Topology::start("fwd", Options { servers: 2, bypass: true, ..Options::default() });
    // Both real servers live in the one servers namespace, holding the VIP on lo.
    topo.servers_hold_the_vip(&[]);
    let _nginx = topo.nginx_on(&[format!("{VIP}:80")], false);
    mark_the_vip(&topo);
    topo.gwctl_line("-A -f 1 -s rr");
    for i in 0..2 {
        topo.gwctl_line(&format!("-a -f 1 -r {} -g", rip(i)));
    }
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    // The connections each server got since `before`, from its (ActiveConn +
    // InActConn): every connection stays listed while the test runs (DR sees
    // only the client's side of it, and its TIME_WAIT lasts minutes).
    let conns = |topo: &Topology| -> [u64; 2] {
        [0, 1].map(|i| {
            let (_, active, inactive) = topo.server_row_of("1", &format!("{}:0", rip(i)));
            active + inactive
        })
    };
    let since = |before: [u64; 2], now: [u64; 2]| [now[0] - before[0], now[1] - before[1]];
    let before = conns(&topo);
    let answers = topo.curl_many(None, &who, 6);
    assert_eq!(answers, vec!["rs1".to_owned(); 6], "every request answered");
    let rr = since(before, conns(&topo));
    assert_eq!(rr, [3, 3], "rr alternates the two servers:\n{}", topo.gwctl(&["-Ln"]));

    topo.gwctl_line("-E -f 1 -s rr -p 10");
    let before = conns(&topo);
    let answers = topo.curl_many(None, &who, 6);
    assert_eq!(answers, vec!["rs1".to_owned(); 6], "every request answered");
    let sticky = since(before, conns(&topo));
    assert!(
        sticky == [6, 0] || sticky == [0, 6],
        "persistence sends all six to one server: {sticky:?}\n{}",
        topo.gwctl(&["-Ln"])
    );
    topo.stop();
}
