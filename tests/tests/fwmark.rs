//! Firewall-mark services (`-f`), the seed's LVS-FWM example: the gateway
//! holds the marked destination as its own address (`gwctl addr add`, as
//! the seed's director holds the VIP with ifconfig), a `gwctl mark` rule
//! marks TCP to port 80 on it, and `-A -f 1 -s rr` schedules the marked
//! connections: rr alternates, then `-E -f 1 -s rr -p 10` keeps the client
//! on one server. NAT shows the alternation in the servers' answers; DR (the
//! seed's `-g` servers, which share one namespace and so one answer) in the
//! servers' connection counts. A mark on any protocol carries UDP too, and
//! a SYN-proxied mark (`-j enable`) completes each handshake itself first.

use std::time::Duration;

use gateway_e2e::topology::{client_addr, rip, VIP};
use gateway_e2e::{wait_until, Options, Topology, UDP_CLIENT, UDP_ECHO};

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

/// `-A -f 1 -s rr -j enable` over NAT servers, marking every protocol to
/// the held address: curl's connections complete their handshakes with the
/// gateway, then with rr's servers in turn, and UDP datagrams to the same
/// mark are scheduled beside them (port 0 keeps each packet's port), the
/// servers seeing the client and the client the marked address.
#[test]
fn a_syn_proxied_nat_fwmark_service_carries_tcp_and_udp() {
    let mut topo = Topology::start("fwj", Options { servers: 2, servers_via_gateway: true, ..Options::default() });
    let _nginx = topo.nginx_on(&[format!("{}:80", rip(0)), format!("{}:80", rip(1))], false);
    let _echoes: Vec<_> = (0..2)
        .map(|i| {
            let name = format!("rs{}", i + 1);
            topo.servers.spawn(&format!("udp-{name}"), "python3", &["-c", UDP_ECHO, &rip(i), "53", &name])
        })
        .collect();
    topo.gwctl(&["addr", "add", &format!("{VIP}/32"), "dev", "client"]);
    topo.gwctl(&["mark", "add", "1", "-d", VIP]);
    topo.gwctl_line("-A -f 1 -s rr -j enable");
    for i in 0..2 {
        topo.gwctl_line(&format!("-a -f 1 -r {} -m", rip(i)));
    }
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let before = topo.stats();
    let answers = topo.curl_many(None, &who, 6);
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert!(answers.windows(2).all(|p| p[0] != p[1] && p[0].starts_with("rs")), "rr alternates: {answers:?}");
    let after = topo.stats();
    let grew = |name: &str| after.counter(name) - before.counter(name);
    assert!(grew("synproxy cookies valid") >= 6, "{}", after.0);
    assert!(grew("synproxy server handshakes") >= 6, "{}", after.0);

    let ask = |n: usize| {
        let out = topo.client.output("python3", &["-c", UDP_CLIENT, VIP, "53", &n.to_string()]);
        assert!(out.status.success(), "udp client: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(wait_until(Duration::from_secs(15), || ask(1)[0] != "timeout"), "no UDP answer through the mark");
    let answers = ask(4);
    let mut per_server = [0, 0];
    for a in &answers {
        let words: Vec<&str> = a.split_whitespace().collect();
        assert_eq!(words.len(), 4, "an answer, not a timeout: {answers:?}");
        assert_eq!(words[0], format!("{VIP}:53"), "the answer comes from the marked address: {answers:?}");
        assert_eq!(words[2], client_addr(0), "NAT: the server sees the client: {answers:?}");
        per_server[if words[1] == "rs1" { 0 } else { 1 }] += 1;
    }
    assert_eq!(per_server, [2, 2], "rr over the two servers, one per source port: {answers:?}");
    assert!(topo.gatewayd_log().lines().all(|l| !l.contains("panicked")), "{}", topo.gatewayd_log());
    topo.stop();
}
