//! NAT (-m), DR (-g) and TUN (-i) with real Linux TCP: what reaches the real
//! server, where its replies go, and what the client sees, proved by nginx's
//! log and by tcpdump captures on both sides.

use std::time::Duration;

use gateway_e2e::topology::{rip, CLIENT, GW_SERVERS, VIP};
use gateway_e2e::{wait_until, Options, Topology};

/// The packets of a capture whose (outer) source is `src`, an address or
/// "address.port", as tcpdump -nn prints them ("TIME IP SRC > DST: ...").
fn from<'a>(lines: &'a [String], src: &str) -> Vec<&'a String> {
    lines
        .iter()
        .filter(|l| {
            let token = l.split_once(" IP ").and_then(|(_, rest)| rest.split(' ').next()).unwrap_or("");
            token == src || token.strip_prefix(src).is_some_and(|port| port.starts_with('.'))
        })
        .collect()
}

#[test]
fn nat_servers_route_back_through_the_gateway_and_the_client_sees_the_vip() {
    let mut topo = Topology::start("nat", Options { servers: 2, servers_via_gateway: true, ..Options::default() });
    let rips = [rip(0), rip(1)];
    let _nginx = topo.nginx(&rips, true);
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    for r in &rips {
        topo.gwctl_line(&format!("-a -t {VIP}:80 -r {r}:8080 -m"));
    }
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let pcap = topo.dir().join("client.pcap");
    let capture = topo.client.capture("nat-client", &topo.client_if, "tcp", &pcap);
    let answers = topo.curl_many(None, &who, 4);
    let packets = capture.finish();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert!(answers.iter().all(|a| a == "rs1" || a == "rs2"), "{answers:?}");
    assert!(answers.windows(2).all(|p| p[0] != p[1]), "rr alternates the two servers: {answers:?}");

    // The client talks to the VIP only: every packet it receives comes from VIP:80.
    let to_client: Vec<&String> = packets.iter().filter(|l| l.contains(&format!("> {CLIENT}."))).collect();
    assert!(to_client.len() >= 4 * 3, "SYN-ACK, data and FIN of four connections: {packets:#?}");
    assert!(
        to_client.iter().all(|l| l.contains(&format!("IP {VIP}.80 > "))),
        "replies come from the VIP: {packets:#?}"
    );
    assert!(
        packets.iter().all(|l| !l.contains("192.168.1.")),
        "no real-server address reaches the client: {packets:#?}"
    );

    // NAT keeps the client's address: the servers saw 10.0.0.1.
    for n in 1..=2 {
        let log = topo.access_log(n);
        assert!(!log.is_empty(), "rs{n} served requests");
        assert!(log.iter().all(|(addr, status)| addr == CLIENT && *status == 200), "rs{n} sees the client: {log:?}");
    }
    topo.stop();
}

/// Requests through the VIP with captures on the gateway's link to the
/// servers and on the bypass link; asserts the replies took the bypass.
/// Returns the capture of the gateway-side link.
fn replies_bypass_the_gateway(topo: &Topology, requests: usize) -> Vec<String> {
    let (bypass_client, _) = topo.bypass_ifs();
    let gw_side = topo.servers.capture("gw-side", &topo.servers_if, "ip", &topo.dir().join("gw.pcap"));
    let bypass = topo.client.capture("bypass", &bypass_client, "tcp", &topo.dir().join("bypass.pcap"));
    let client_side = topo.client.capture("client-side", &topo.client_if, "tcp", &topo.dir().join("client.pcap"));
    let answers = topo.curl_many(None, &format!("http://{VIP}/who"), requests);
    assert_eq!(answers, vec!["rs1".to_owned(); requests], "every request answered by the real server");
    let (gw_side, bypass, client_side) = (gw_side.finish(), bypass.finish(), client_side.finish());

    let vip80 = format!("{VIP}.80");
    // Replies: on the bypass link, from the VIP to the client.
    let replies = from(&bypass, &vip80);
    assert!(replies.len() >= requests * 3, "SYN-ACK, data and FIN of each connection on the bypass: {bypass:#?}");
    assert!(replies.iter().all(|l| l.contains(&format!("> {CLIENT}."))), "{bypass:#?}");
    // ... and never on the gateway's links.
    assert!(from(&gw_side, &vip80).is_empty(), "no reply goes back to the gateway: {gw_side:#?}");
    assert!(from(&client_side, &vip80).is_empty(), "no reply comes from the gateway: {client_side:#?}");
    // The requests did come through the gateway.
    assert!(from(&client_side, CLIENT).len() >= requests * 3, "{client_side:#?}");
    gw_side
}

#[test]
fn dr_rewrites_only_the_mac_and_replies_bypass_the_gateway() {
    let mut topo = Topology::start("dr", Options { servers: 1, bypass: true, ..Options::default() });
    topo.servers_hold_the_vip(&[]);
    let _nginx = topo.nginx_on(&[format!("{VIP}:80")], true);
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    topo.gwctl_line(&format!("-a -t {VIP}:80 -r {}:80 -g", rip(0)));
    topo.wait_for_service(&format!("http://{VIP}/who"));

    let gw_side = replies_bypass_the_gateway(&topo, 5);
    // The server's link carries the client's own packets, addressed to the
    // VIP: only the Ethernet header changed.
    let requests = from(&gw_side, CLIENT);
    assert!(requests.len() >= 5 * 3, "{gw_side:#?}");
    assert!(requests.iter().all(|l| l.contains(&format!("> {VIP}.80: "))), "the IP header is untouched: {gw_side:#?}");
    let log = topo.access_log(1);
    assert!(log.iter().filter(|(a, s)| a == CLIENT && *s == 200).count() >= 5, "the server sees the client: {log:?}");
    topo.stop();
}

#[test]
fn tun_encapsulates_to_a_user_space_decapsulator_and_replies_bypass_the_gateway() {
    let mut topo = Topology::start("tun", Options { servers: 1, bypass: true, ..Options::default() });
    let tun_if = format!("{}t", topo.id());
    let decap = topo.servers.spawn("ipip-decap", env!("CARGO_BIN_EXE_ipip_decap"), &[&tun_if]);
    assert!(wait_until(Duration::from_secs(10), || decap.log().contains("ready")), "decapsulator: {}", decap.log());
    topo.servers.ip(&["link", "set", &tun_if, "up"]);
    topo.servers_hold_the_vip(&[&tun_if]);
    let _nginx = topo.nginx_on(&[format!("{VIP}:80")], true);
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    topo.gwctl_line(&format!("-a -t {VIP}:80 -r {}:80 -i", rip(0)));
    topo.wait_for_service(&format!("http://{VIP}/who"));

    let gw_side = replies_bypass_the_gateway(&topo, 5);
    // The server's link carries the client's packets inside IPIP from the gateway.
    let outer = from(&gw_side, GW_SERVERS);
    assert!(outer.len() >= 5 * 3, "tunnelled packets from the gateway to the server: {gw_side:#?}");
    let inner = format!(" > {}: IP {CLIENT}.", rip(0));
    assert!(outer.iter().all(|l| l.contains(&inner) && l.contains(&format!("> {VIP}.80: "))), "{gw_side:#?}");
    assert!(from(&gw_side, CLIENT).is_empty(), "nothing unencapsulated from the client: {gw_side:#?}");
    let log = topo.access_log(1);
    assert!(log.iter().filter(|(a, s)| a == CLIENT && *s == 200).count() >= 5, "the server sees the client: {log:?}");
    drop(decap);
    topo.stop();
}
