//! IPv6 through the gateway with real Linux TCP and UDP: curl, wrk and nginx
//! over IPv6 through FNAT (with the IPv6 TOA), NAT, DR and TUN services on
//! IPv6 VIPs, the gateway answering neighbour solicitations and echo requests
//! for its own IPv6 addresses and resolving its next hops by neighbour
//! discovery, the SYN proxy in front of an IPv6 FNAT service, IPv4 traffic
//! through the same gateway at the same time, path MTU discovery through it,
//! bad IPv6 packets each under its counter, and with kernel interfaces an
//! IPv6 VIP served only while held; and NAT64, an IPv6-only client reaching
//! IPv4 servers through an IPv6 VIP.
//!
//! The topology is the IPv4 one ([`Topology`]) with IPv6 addresses added on
//! both sides ([`Topology::add_ipv6`]): the gateway's by `gwctl addr add`,
//! the namespaces' with `nodad`. The PROXY protocol over IPv6 is tested
//! with IPv4's, in `proxy_protocol.rs`.

use std::time::Duration;

use gateway_e2e::tcp;
use gateway_e2e::topology::{rip, rip6, CLIENT6, GW_CLIENT6, GW_SERVERS6, KERNEL_CLIENT, LIP6, VIP, VIP6};
use gateway_e2e::{random_file, sha256, wait_until, Options, Topology, WrkSummary};

/// The bypass link (DR and TUN replies).
const BYPASS_CLIENT6: &str = "fd00:b::1";
const BYPASS_SERVERS6: &str = "fd00:b::2";

/// nginx on the three real servers' IPv6 addresses, port 8080.
fn nginx6(topo: &Topology, keepalive: bool) -> gateway_e2e::Daemon {
    let listens: Vec<String> = (0..3).map(|i| format!("[{}]:8080", rip6(i))).collect();
    topo.nginx_on(&listens, keepalive)
}

fn curl6(topo: &Topology, url: &str) -> String {
    let out = topo.client.output("curl", &["-sS", "-g", "--max-time", "5", url]);
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    } else {
        String::new()
    }
}

/// `n` requests in one curl, each a new connection; each answer's first line.
fn curl6_many(topo: &Topology, url: &str, n: usize) -> Vec<String> {
    let glob = format!("{url}?[1-{n}]");
    let out = topo.client.output("curl", &["-sS", "--max-time", "60", "-H", "Connection: close", &glob]);
    assert!(out.status.success(), "curl {glob}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

fn wait_for_service6(topo: &Topology, url: &str) {
    assert!(
        wait_until(Duration::from_secs(15), || curl6(topo, url).starts_with("rs")),
        "no answer from {url} through the gateway; stats:\n{}\ngatewayd log:\n{}",
        topo.gwctl(&["stats"]),
        topo.gatewayd_log()
    );
}

#[test]
fn fnat_over_ipv6_rotates_the_servers_which_see_the_local_address_while_ipv4_runs_beside() {
    let mut topo = Topology::start("f6", Options::default());
    topo.add_ipv6();
    // rs1..rs3 on the IPv6 addresses, rs4..rs6 on the IPv4 ones.
    let listens: Vec<String> =
        (0..3).map(|i| format!("[{}]:8080", rip6(i))).chain((0..3).map(|i| format!("{}:8080", rip(i)))).collect();
    let _nginx = topo.nginx_on(&listens, false);
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP6} -F servers"));
    for i in 0..3 {
        topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -b", rip6(i)));
    }
    // An IPv4 service to the same servers at the same time.
    topo.fnat_service("-s rr", &["", "", ""]);
    let url6 = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url6);

    // The gateway answers for its own IPv6 addresses: ping the VIP and the
    // interface address (echo requests answered by the workers).
    for target in [VIP6, GW_CLIENT6] {
        let out = topo.client.output("ping", &["-6", "-c", "2", "-i", "0.2", "-W", "2", target]);
        assert!(out.status.success(), "ping {target}: {}", String::from_utf8_lossy(&out.stdout));
    }
    // ... answering the client's solicitations for them, and resolving the
    // servers by soliciting them.
    let stats = topo.stats();
    assert!(stats.counter("neighbour advertisements") >= 2, "{}", stats.0);
    assert!(stats.counter("neighbour solicitations") >= 1, "{}", stats.0);

    let answers = curl6_many(&topo, &url6, 6);
    // rr: the three servers in turn (where the turn starts depends on the requests before).
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert!(answers.iter().all(|a| ["rs1", "rs2", "rs3"].contains(&a.as_str())), "{answers:?}");
    assert!(answers.windows(3).all(|w| w[0] != w[1] && w[1] != w[2] && w[0] != w[2]), "rr over IPv6: {answers:?}");
    // IPv4 beside it, through the same worker.
    let answers4 = topo.curl_many(None, &format!("http://{VIP}/who"), 3);
    assert_eq!(answers4.len(), 3, "{answers4:?}");
    assert!(answers4.iter().all(|a| ["rs4", "rs5", "rs6"].contains(&a.as_str())), "{answers4:?}");

    // FNAT: the servers see the local address, never the client.
    for n in 1..=3 {
        let log = topo.access_log(n);
        let v6: Vec<&(String, u16)> = log.iter().filter(|(a, _)| a.contains(':')).collect();
        assert!(v6.len() >= 2, "rs{n} served the IPv6 requests: {log:?}");
        assert!(v6.iter().all(|(a, s)| a == LIP6 && *s == 200), "rs{n} sees the local address: {log:?}");
    }
    // The workers list their IPv6 connections with their IPv4 ones.
    let conns = topo.gwctl(&["-Lnc"]);
    assert!(conns.contains(&format!("[{CLIENT6}]:")) && conns.contains(&format!("[{VIP6}]:80")), "{conns}");
    assert!(conns.contains(&format!("{VIP}:80")), "{conns}");
    let listing = topo.gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  [{VIP6}]:80 rr")), "{listing}");
    assert!(listing.contains(&format!("-> [{}]:8080", rip6(0))), "{listing}");
    topo.stop();
}

#[test]
fn over_ipv6_fnat_a_100_mb_download_arrives_intact_the_toa_carries_the_client_and_wrk_opens_1000_connections() {
    let mut topo = Topology::start("d6", Options { servers: 1, ..Options::default() });
    topo.add_ipv6();
    let _nginx = nginx6(&topo, true);
    let file = topo.www().join("big");
    random_file(&file, "100000000");
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP6} -F servers"));
    topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -b", rip6(0)));
    wait_for_service6(&topo, &format!("http://[{VIP6}]/who"));

    let got = topo.dir().join("got");
    let out = topo.client.output(
        "curl",
        &["-sS", "-g", "--max-time", "120", "-o", got.to_str().unwrap(), &format!("http://[{VIP6}]/big")],
    );
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256(&got), sha256(&file), "the download is the file");
    let _ = std::fs::remove_file(&got);
    let _ = std::fs::remove_file(&file);

    // The TOA: the SYN and the handshake's ACK toward the server carry the
    // client's address and port as DPVS's IPv6 TOA (kind 254, length 20).
    let capture = topo.servers.capture("toa6", &topo.servers_if, "ip6 and tcp port 8080", &topo.dir().join("toa.pcap"));
    let out = topo
        .client
        .output("curl", &["-sS", "-g", "--max-time", "5", "--local-port", "40123", &format!("http://[{VIP6}]/who")]);
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let segments = tcp::segments(&capture.frames());
    let lip: std::net::IpAddr = LIP6.parse().unwrap();
    let to_server: Vec<&tcp::Segment> = segments.iter().filter(|s| s.src == lip && s.dport == 8080).collect();
    let mut want = vec![254u8, 20, 40123u16.to_be_bytes()[0], 40123u16.to_be_bytes()[1]];
    want.extend_from_slice(&CLIENT6.parse::<std::net::Ipv6Addr>().unwrap().octets());
    let syn = to_server.iter().find(|s| s.has(tcp::SYN, tcp::SYN | tcp::ACK)).expect("the SYN to the server");
    assert_eq!(syn.option(254), Some(want.clone()), "{syn:?}");
    let ack = to_server.iter().find(|s| s.has(tcp::ACK, tcp::SYN | tcp::ACK)).expect("the handshake's ACK");
    assert_eq!(ack.option(254), Some(want), "{ack:?}");
    assert_eq!(topo.worker_counter("toa not inserted"), 0);

    // A thousand concurrent keep-alive connections for a few seconds.
    let before = topo.worker_counter("new connections");
    let wrk = topo.client.sh(&format!("ulimit -n 20000 && exec wrk -t2 -c1000 -d3s --timeout 10s http://[{VIP6}]/who"));
    let out = String::from_utf8_lossy(&wrk.stdout).into_owned();
    assert!(wrk.status.success(), "wrk: {out}{}", String::from_utf8_lossy(&wrk.stderr));
    let summary = WrkSummary::parse(&out);
    assert_eq!(summary.socket_errors, 0, "no socket errors:\n{out}");
    assert_eq!(summary.non_2xx, 0, "only 2xx answers:\n{out}");
    assert!(summary.requests >= 1000, "every connection was answered:\n{out}");
    assert!(topo.worker_counter("new connections") - before >= 1000, "{out}");
    topo.stop();
}

#[test]
fn nat_over_ipv6_keeps_the_client_address() {
    let mut topo = Topology::start("n6", Options::default());
    topo.add_ipv6();
    topo.servers.ip(&["-6", "route", "add", "default", "via", GW_SERVERS6]);
    let _nginx = nginx6(&topo, false);
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    for i in 0..2 {
        topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -m", rip6(i)));
    }
    let url6 = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url6);
    let answers = curl6_many(&topo, &url6, 4);
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert!(answers.windows(2).all(|p| p[0] != p[1]), "rr alternates the two servers: {answers:?}");
    for n in 1..=2 {
        let log = topo.access_log(n);
        assert!(!log.is_empty(), "rs{n} served requests");
        assert!(log.iter().all(|(a, s)| a == CLIENT6 && *s == 200), "rs{n} sees the client: {log:?}");
    }
    topo.stop();
}

#[test]
fn dr_over_ipv6_sends_the_client_packet_unchanged_and_replies_bypass_the_gateway() {
    let mut topo = Topology::start("r6", Options { servers: 1, bypass: true, ..Options::default() });
    topo.add_ipv6();
    servers_hold_the_vip6_and_reply_on_the_bypass(&topo);
    let (bc, _) = topo.bypass_ifs();
    let _nginx = topo.nginx_on(&[format!("[{VIP6}]:80")], true);
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-a -t {svc} -r [{}]:80 -g", rip6(0)));
    let url6 = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url6);

    let gw_side = topo.servers.capture("gw-side", &topo.servers_if, "ip6 and tcp", &topo.dir().join("gw.pcap"));
    let bypass = topo.client.capture("bypass", &bc, "ip6 and tcp", &topo.dir().join("bypass.pcap"));
    let answers = curl6_many(&topo, &url6, 5);
    let (gw_side, bypass) = (gw_side.finish(), bypass.finish());
    assert_eq!(answers, vec!["rs1".to_owned(); 5]);
    // tcpdump -nn prints an IPv6 TCP packet as "IP6 SRC.PORT > DST.PORT: ...".
    let vip80 = format!("IP6 {VIP6}.80 > {CLIENT6}.");
    assert!(bypass.iter().filter(|l| l.contains(&vip80)).count() >= 5 * 3, "replies on the bypass: {bypass:#?}");
    assert!(!gw_side.iter().any(|l| l.contains(&vip80)), "no reply toward the gateway: {gw_side:#?}");
    let requests: Vec<&String> = gw_side.iter().filter(|l| l.contains(&format!("IP6 {CLIENT6}."))).collect();
    assert!(requests.len() >= 5 * 3, "{gw_side:#?}");
    assert!(requests.iter().all(|l| l.contains(&format!("> {VIP6}.80: "))), "addresses untouched: {gw_side:#?}");
    let log = topo.access_log(1);
    assert!(log.iter().filter(|(a, s)| a == CLIENT6 && *s == 200).count() >= 5, "{log:?}");
    topo.stop();
}

/// The bypass link between the client and the servers, the servers' route
/// to the client over it, and the VIP on the servers' lo (Linux answers
/// neighbour solicitations only for addresses of the interface asked on).
fn servers_hold_the_vip6_and_reply_on_the_bypass(topo: &Topology) {
    let (bc, bs) = topo.bypass_ifs();
    topo.client.ip(&["-6", "addr", "add", &format!("{BYPASS_CLIENT6}/64"), "dev", &bc, "nodad"]);
    topo.servers.ip(&["-6", "addr", "add", &format!("{BYPASS_SERVERS6}/64"), "dev", &bs, "nodad"]);
    topo.servers.ip(&["-6", "route", "add", "2001:db8::/64", "via", BYPASS_CLIENT6]);
    topo.servers.ip(&["-6", "addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"]);
}

#[test]
fn tun_over_ipv6_encapsulates_to_a_user_space_decapsulator_and_replies_bypass_the_gateway() {
    let mut topo = Topology::start("t6", Options { servers: 1, bypass: true, ..Options::default() });
    topo.add_ipv6();
    servers_hold_the_vip6_and_reply_on_the_bypass(&topo);
    let tun_if = format!("{}t", topo.id());
    let decap = topo.servers.spawn("ipip-decap", env!("CARGO_BIN_EXE_ipip_decap"), &[&tun_if]);
    assert!(wait_until(Duration::from_secs(10), || decap.log().contains("ready")), "decapsulator: {}", decap.log());
    topo.servers.ip(&["link", "set", &tun_if, "up"]);
    let _nginx = topo.nginx_on(&[format!("[{VIP6}]:80")], true);
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-a -t {svc} -r [{}]:80 -i", rip6(0)));
    let url6 = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url6);

    let (bc, _) = topo.bypass_ifs();
    let gw_side = topo.servers.capture("gw-side", &topo.servers_if, "ip6", &topo.dir().join("gw.pcap"));
    let bypass = topo.client.capture("bypass", &bc, "ip6 and tcp", &topo.dir().join("bypass.pcap"));
    let answers = curl6_many(&topo, &url6, 5);
    let (gw_side, bypass) = (gw_side.finish(), bypass.finish());
    assert_eq!(answers, vec!["rs1".to_owned(); 5]);
    let vip80 = format!("IP6 {VIP6}.80 > {CLIENT6}.");
    assert!(bypass.iter().filter(|l| l.contains(&vip80)).count() >= 5 * 3, "replies on the bypass: {bypass:#?}");
    assert!(!gw_side.iter().any(|l| l.contains(&vip80)), "no reply toward the gateway: {gw_side:#?}");
    // The server's link carries the client's packets inside IPv6 from the
    // gateway's address on it, and nothing of the client's unencapsulated.
    let outer = format!("IP6 {GW_SERVERS6} > {}: IP6 {CLIENT6}.", rip6(0));
    let tunnelled: Vec<&String> = gw_side.iter().filter(|l| l.contains(&outer)).collect();
    assert!(tunnelled.len() >= 5 * 3, "tunnelled packets from the gateway to the server: {gw_side:#?}");
    assert!(tunnelled.iter().all(|l| l.contains(&format!("> {VIP6}.80: "))), "{gw_side:#?}");
    assert!(!gw_side.iter().any(|l| l.contains(&format!(" IP6 {CLIENT6}.")) && !l.contains(&outer)), "{gw_side:#?}");
    let log = topo.access_log(1);
    assert!(log.iter().filter(|(a, s)| a == CLIENT6 && *s == 200).count() >= 5, "the server sees the client: {log:?}");
    drop(decap);
    topo.stop();
}

#[test]
fn udp_over_ipv6_fnat_answers_each_datagram() {
    let mut topo = Topology::start("u6", Options { servers: 1, ..Options::default() });
    topo.add_ipv6();
    // A UDP echo server on the real server, answering with its own prefix.
    let server = format!(
        "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\ns.bind(('{}', 5353))\n\
         while True:\n    d, a = s.recvfrom(2048)\n    s.sendto(b'rs1 ' + a[0].encode() + b' ' + d, a)\n",
        rip6(0)
    );
    let _echo = topo.servers.spawn("udp6-echo", "python3", &["-c", &server]);
    let svc = format!("[{VIP6}]:53");
    topo.gwctl_line(&format!("-A -u {svc} -s rr"));
    topo.gwctl_line(&format!("-P -u {svc} -z {LIP6} -F servers"));
    topo.gwctl_line(&format!("-a -u {svc} -r [{}]:5353 -b", rip6(0)));
    let client = format!(
        "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
         ok = 0\nfor i in range(20):\n    s.sendto(b'ping%d' % i, ('{VIP6}', 53))\n    try:\n        \
         d, a = s.recvfrom(2048)\n    except OSError:\n        continue\n    \
         assert a[0] == '{VIP6}' and a[1] == 53, a\n    print(d.decode())\n    ok += 1\n"
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            let out = topo.client.output("python3", &["-c", &client]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            out.status.success() && text.lines().count() >= 15
        }),
        "UDP over IPv6 through the gateway; stats:\n{}",
        topo.gwctl(&["stats"])
    );
    let out = topo.client.output("python3", &["-c", &client]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // The server saw the local address; the client got the reply from the VIP.
    assert!(text.lines().all(|l| l.starts_with(&format!("rs1 {LIP6} ping"))), "{text}");
    topo.stop();
}

#[test]
fn with_kernel_interfaces_an_ipv6_vip_is_served_only_while_held_and_the_gateways_own_tcp_reaches_the_kernel() {
    let mut topo =
        Topology::start("k6", Options { servers: 1, director_netns: true, kernel: true, ..Options::default() });
    topo.add_ipv6();
    let director = topo.director();
    // The gateway's own IPv6 address on its kernel interface too, as the
    // configuration file's "addrs" puts it there.
    director.ip(&["-6", "addr", "add", &format!("{GW_CLIENT6}/64"), "dev", KERNEL_CLIENT, "nodad"]);
    let _nginx = nginx6(&topo, false);
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -m", rip6(0)));
    topo.servers.ip(&["-6", "route", "add", "default", "via", GW_SERVERS6]);
    let url6 = format!("http://[{VIP6}]/who");

    // Not held: nobody answers for the VIP.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(curl6(&topo, &url6), "", "a VIP no kernel interface carries is not served");
    // keepalived's virtual_ipaddress puts it on gwk0: served.
    director.ip(&["-6", "addr", "add", &format!("{VIP6}/128"), "dev", KERNEL_CLIENT, "nodad"]);
    wait_for_service6(&topo, &url6);
    let held = topo.gwctl(&["addr", "show"]);
    assert!(held.contains(VIP6), "{held}");

    // TCP to the gateway's own address and a port no service has: the
    // kernel's, served by a program in the director's namespace.
    let listener = format!(
        "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('{GW_CLIENT6}', 2222))\ns.listen(8)\n\
         while True:\n    c, a = s.accept()\n    c.sendall(b'kernel ' + a[0].encode() + b'\\n')\n    c.close()\n"
    );
    let _kernel_server = director.spawn("k6-listener", "python3", &["-c", &listener]);
    let client = format!(
        "import socket\nc = socket.create_connection(('{GW_CLIENT6}', 2222), timeout=2)\nprint(c.recv(100).decode().strip())\n"
    );
    let mut answer = String::new();
    let reached = wait_until(Duration::from_secs(10), || {
        let out = topo.client.output("python3", &["-c", &client]);
        answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        out.status.success()
    });
    assert!(reached, "the kernel's TCP over IPv6; stats:\n{}", topo.gwctl(&["stats"]));
    assert_eq!(answer, format!("kernel {CLIENT6}"));

    // Released: no longer served here.
    director.ip(&["-6", "addr", "del", &format!("{VIP6}/128"), "dev", KERNEL_CLIENT]);
    assert!(wait_until(Duration::from_secs(5), || curl6(&topo, &url6).is_empty()), "a released VIP is not served");
    // The client still has the gateway's MAC for it: its SYNs arrive and are refused.
    assert!(topo.stats().counter("not_held") > 0, "{}", topo.gwctl(&["stats"]));
    topo.stop();
}

#[test]
fn a_narrower_link_toward_the_client_gets_packet_too_big_and_the_download_still_completes() {
    // The gateway's client port takes 1280-byte packets: the servers send
    // 1500, the gateway answers packet too big, the server's kernel lowers
    // its path MTU, and the transfer goes on (IPv6 is never fragmented on the way).
    let mut topo = Topology::start("p6", Options { servers: 1, client_port_mtu: Some(1280), ..Options::default() });
    topo.add_ipv6();
    let _nginx = nginx6(&topo, true);
    let file = topo.www().join("mid");
    random_file(&file, "5000000");
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP6} -F servers"));
    topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -b", rip6(0)));
    wait_for_service6(&topo, &format!("http://[{VIP6}]/who"));

    let pcap = topo.dir().join("servers.pcap");
    let capture = topo.servers.capture("ptb", &topo.servers_if, "icmp6", &pcap);
    let got = topo.dir().join("got");
    let out = topo.client.output(
        "curl",
        &["-sS", "-g", "--max-time", "60", "-o", got.to_str().unwrap(), &format!("http://[{VIP6}]/mid")],
    );
    let icmp = capture.finish();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256(&got), sha256(&file), "the download is the file");
    // tcpdump -nn: "IP6 GW > RS: ICMP6, packet too big, mtu 1280, length ..."
    let ptb: Vec<&String> = icmp.iter().filter(|l| l.contains("packet too big")).collect();
    assert!(!ptb.is_empty(), "the server was told: {icmp:#?}");
    assert!(
        ptb.iter().all(|l| l.contains(&format!("IP6 {GW_SERVERS6} > {}", rip6(0))) && l.contains("mtu 1280")),
        "{ptb:#?}"
    );
    assert!(topo.stats().counter("mtu_exceeded") > 0);
    topo.stop();
}

#[test]
fn bad_ipv6_packets_are_counted_by_reason_and_good_traffic_continues() {
    const COPIES: u64 = 5;
    let mut topo = Topology::start("b6", Options { servers: 1, ..Options::default() });
    topo.add_ipv6();
    let _nginx = nginx6(&topo, false);
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP6} -F servers"));
    topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -b", rip6(0)));
    topo.gwctl_line(&format!("-A -u [{VIP6}]:53 -s rr"));
    let url6 = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url6);
    let neigh = topo.client.output("ip", &["-6", "neigh", "show", VIP6]);
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    let gw_mac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no neighbour entry for {VIP6}: {neigh}"))
        .to_owned();

    let script = format!(
        r#"
import sys
from scapy.all import Ether, IPv6, TCP, UDP, IPv6ExtHdrFragment, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, sendp, sr1, conf
conf.verb = 0
iface, mac, src, vip, n = "{iface}", "{gw_mac}", "{CLIENT6}", "{VIP6}", {COPIES}
l2 = Ether(dst=mac)
syn = TCP(sport=4000, dport=80, flags="S")
chain = IPv6ExtHdrDestOpt()
for _ in range(8):
    chain = chain / IPv6ExtHdrDestOpt()
bad = {{
    # The IPv6 header claims more payload than the frame has.
    "bad_payload_length": bytes(l2 / IPv6(src=src, dst=vip, plen=400) / syn),
    "fragment": bytes(l2 / IPv6(src=src, dst=vip) / IPv6ExtHdrFragment(m=1) / syn),
    # Nine extension headers: more than the walk follows.
    "too_many_extension_headers": bytes(l2 / IPv6(src=src, dst=vip) / chain / syn),
    # Hop-by-hop options anywhere but first.
    "bad_extension_header": bytes(l2 / IPv6(src=src, dst=vip) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / syn),
    # UDP without a checksum, which IPv6 makes mandatory.
    "bad_l4_checksum": bytes(l2 / IPv6(src=src, dst=vip) / UDP(sport=4001, dport=53, chksum=0) / b"query"),
    "bad_tcp_header": bytes(l2 / IPv6(src=src, dst=vip) / TCP(dport=80, flags="S", dataofs=3)),
    "no_service": bytes(l2 / IPv6(src=src, dst=vip) / TCP(sport=4002, dport=81, flags="S")),
}}
for name, frame in bad.items():
    sendp([Ether(frame)] * n, iface=iface)
# Runts: an Ethernet header and half an IPv6 header.
sendp([Ether(bytes(l2 / IPv6(src=src, dst=vip))[:34])] * n, iface=iface)
answer = sr1(IPv6(src=src, dst=vip, hlim=1) / TCP(sport=4003, dport=80, flags="S"), timeout=5)
if answer is None:
    sys.exit("no answer to the hop limit 1 SYN")
print("icmp6", answer.src, answer.nh, answer.payload.type, answer.payload.code)
"#,
        iface = topo.client_if
    );
    let out = topo.client.output("/usr/bin/python3", &["-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scapy: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("icmp6 {GW_CLIENT6} 58 3 0")),
        "the hop limit 1 SYN is answered with time exceeded from our client-side address: {stdout}"
    );
    for reason in [
        "bad_payload_length",
        "fragment",
        "too_many_extension_headers",
        "bad_extension_header",
        "bad_l4_checksum",
        "bad_tcp_header",
        "no_service",
    ] {
        assert_eq!(topo.worker_counter(&format!("drop {reason} ")), COPIES, "{reason}:\n{}", topo.gwctl(&["stats"]));
    }
    assert!(topo.worker_counter("drop truncated ") >= COPIES, "the runts");
    assert_eq!(topo.worker_counter("drop ttl_expired "), 1);
    assert_eq!(topo.worker_counter("icmp errors sent "), 1);
    // Still forwarding.
    assert_eq!(curl6(&topo, &url6), "rs1");
    topo.stop();
}

/// The SYN proxy in front of an IPv6 FNAT service (`-j enable`): every
/// connection gets the gateway's cookie SYN-ACK, its ACK validates and opens
/// the server handshake, and a 20 MB download (seq/ack and timestamps
/// shifted for its whole life, SACK and window scaling negotiated through
/// the cookie) arrives intact.
#[test]
fn synproxy_over_ipv6_fnat_curl_and_a_20_mb_download() {
    const N: usize = 12;
    let mut topo = Topology::start("s6", Options::default());
    // The servers announce window scale 7, the proxy's default (see
    // tests/synproxy.rs); the IPv4 sysctl holds for IPv6 TCP too.
    topo.servers.sysctl("net.ipv4.tcp_rmem", "4096 131072 6291456");
    topo.add_ipv6();
    let _nginx = nginx6(&topo, true);
    let file = topo.www().join("big");
    random_file(&file, "20000000");
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr -j enable"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP6} -F servers"));
    for i in 0..3 {
        topo.gwctl_line(&format!("-a -t {svc} -r [{}]:8080 -b", rip6(i)));
    }
    let listing = topo.gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  [{VIP6}]:80 rr synproxy")), "{listing}");
    let url6 = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url6);

    let before = topo.stats();
    let answers = curl6_many(&topo, &url6, N);
    assert_eq!(answers.len(), N, "{answers:?}");
    assert!(answers.iter().all(|a| ["rs1", "rs2", "rs3"].contains(&a.as_str())), "{answers:?}");
    let after = topo.stats();
    for name in ["synproxy syn-acks sent", "synproxy cookies valid", "synproxy server handshakes"] {
        let grew = after.counter(name) - before.counter(name);
        assert!(grew >= N as u64, "{name} counts every connection ({grew}):\n{}", after.0);
    }
    for name in [
        "synproxy cookies invalid",
        "synproxy server wscale mismatches",
        "drop synproxy_bad_cookie",
        "drop synproxy_busy",
        "drop synproxy_hold_full",
        "drop synproxy_unexpected",
    ] {
        assert_eq!(after.counter(name), 0, "{name}:\n{}", after.0);
    }
    for n in 1..=3 {
        let log = topo.access_log(n);
        assert!(!log.is_empty() && log.iter().all(|(a, s)| a == LIP6 && *s == 200), "rs{n}: {log:?}");
    }

    let got = topo.dir().join("got");
    let out = topo.client.output(
        "curl",
        &["-sS", "-g", "--max-time", "120", "-o", got.to_str().unwrap(), &format!("http://[{VIP6}]/big")],
    );
    assert!(out.status.success(), "curl: {}\nstats:\n{}", String::from_utf8_lossy(&out.stderr), topo.stats().0);
    assert_eq!(sha256(&got), sha256(&file), "the download is the file");
    let _ = std::fs::remove_file(&got);
    let _ = std::fs::remove_file(&file);
    topo.stop();
}

/// NAT64's IPv4 local address (the IPv4 services' is `topology::LIP`: an
/// IPv4 local address serves one side or the other).
const LIP64: &str = "192.168.1.201";

#[test]
fn nat64_an_ipv6_only_client_reaches_ipv4_servers_through_an_ipv6_vip() {
    let mut topo = Topology::start("n64", Options { servers: 2, ..Options::default() });
    topo.add_ipv6();
    // The client speaks IPv6 only; the servers IPv4 only (nginx on their IPv4 addresses).
    topo.client.ip(&["-4", "addr", "flush", "dev", &topo.client_if]);
    let _nginx = topo.nginx_on(&[format!("{}:8080", rip(0)), format!("{}:8080", rip(1))], true);
    let file = topo.www().join("big");
    random_file(&file, "100000000");
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP64} -F servers"));
    for i in 0..2 {
        topo.gwctl_line(&format!("-a -t {svc} -r {}:8080 -b", rip(i)));
    }
    let listing = topo.gwctl(&["-Ln"]);
    let rs = |i: usize| format!("  -> {:<28} FullNat 1      0          0         ", format!("{}:8080", rip(i)));
    let want = format!("TCP  [{VIP6}]:80 rr\n{}\n{}\n", rs(0), rs(1));
    assert!(listing.ends_with(&want), "{listing}");
    let url = format!("http://[{VIP6}]/who");
    wait_for_service6(&topo, &url);

    // rr over the two IPv4 servers, which see the IPv4 local address.
    let answers = curl6_many(&topo, &url, 4);
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert!(answers.windows(2).all(|w| w[0] != w[1] && ["rs1", "rs2"].contains(&w[0].as_str())), "{answers:?}");
    for n in 1..=2 {
        let log = topo.access_log(n);
        assert!(!log.is_empty() && log.iter().all(|(a, s)| a == LIP64 && *s == 200), "rs{n}: {log:?}");
    }

    // The handshake toward the server carries the IPv6 client in DPVS's
    // 20-byte TOA, inside the IPv4 segments (its toa module's NAT64 form).
    let capture = topo.servers.capture("toa64", &topo.servers_if, "ip and tcp port 8080", &topo.dir().join("toa.pcap"));
    let out = topo.client.output("curl", &["-sS", "-g", "--max-time", "5", "--local-port", "40164", &url]);
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let segments = tcp::segments(&capture.frames());
    let lip: std::net::IpAddr = LIP64.parse().unwrap();
    let to_server: Vec<&tcp::Segment> = segments.iter().filter(|s| s.src == lip && s.dport == 8080).collect();
    let mut want = vec![254u8, 20, 40164u16.to_be_bytes()[0], 40164u16.to_be_bytes()[1]];
    want.extend_from_slice(&CLIENT6.parse::<std::net::Ipv6Addr>().unwrap().octets());
    let syn = to_server.iter().find(|s| s.has(tcp::SYN, tcp::SYN | tcp::ACK)).expect("the SYN to the server");
    assert_eq!(syn.option(254), Some(want), "{syn:?}");
    assert_eq!(topo.worker_counter("toa not inserted"), 0);

    // 100 MB by sha256, and the connection listed with both families.
    let got = topo.dir().join("got");
    let download = topo.client.spawn(
        "download",
        "curl",
        &[
            "-sS",
            "-g",
            "--limit-rate",
            "40M",
            "--max-time",
            "120",
            "-o",
            got.to_str().unwrap(),
            &format!("http://[{VIP6}]/big"),
        ],
    );
    let mut listed = String::new();
    let seen = wait_until(Duration::from_secs(10), || {
        listed = topo.gwctl(&["-Lnc"]);
        listed.lines().any(|l| l.contains("ESTABLISHED") && l.contains(&format!("[{CLIENT6}]:")) && l.contains(":8080"))
    });
    assert!(seen, "the NAT64 connection in -Lnc:\n{listed}");
    let mut download = download;
    let status = download.wait(Duration::from_secs(120)).expect("the download ends");
    assert!(status.success(), "curl: {}", download.log());
    assert_eq!(sha256(&got), sha256(&file), "the download is the file");
    let _ = std::fs::remove_file(&got);
    let _ = std::fs::remove_file(&file);

    // UDP too: an IPv4 echo server answers the IPv6 client through the VIP.
    let server = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('{}', 5353))\n\
         while True:\n    d, a = s.recvfrom(2048)\n    s.sendto(b'rs1 ' + a[0].encode() + b' ' + d, a)\n",
        rip(0)
    );
    let _echo = topo.servers.spawn("udp4-echo", "python3", &["-c", &server]);
    let udp = format!("[{VIP6}]:53");
    topo.gwctl_line(&format!("-A -u {udp} -s rr"));
    topo.gwctl_line(&format!("-P -u {udp} -z {LIP64} -F servers"));
    topo.gwctl_line(&format!("-a -u {udp} -r {}:5353 -b", rip(0)));
    let client = format!(
        "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\ns.settimeout(1)\n\
         for i in range(10):\n    s.sendto(b'ping%d' % i, ('{VIP6}', 53))\n    try:\n        \
         d, a = s.recvfrom(2048)\n    except OSError:\n        continue\n    \
         assert a[0] == '{VIP6}' and a[1] == 53, a\n    print(d.decode())\n"
    );
    let mut text = String::new();
    let answered = wait_until(Duration::from_secs(15), || {
        let out = topo.client.output("python3", &["-c", &client]);
        text = String::from_utf8_lossy(&out.stdout).to_string();
        out.status.success() && text.lines().count() >= 8
    });
    assert!(answered, "UDP through NAT64: {text}\n{}", topo.gwctl(&["stats"]));
    assert!(text.lines().all(|l| l.starts_with(&format!("rs1 {LIP64} ping"))), "{text}");
    topo.stop();
}

#[test]
fn nat64_a_narrower_client_link_gets_the_ipv4_server_fragmentation_needed_and_the_download_completes() {
    // The client's port takes 1280-byte packets: the IPv4 server's 1500-byte
    // segments would be 1520 over IPv6, so the gateway tells the server
    // (fragmentation needed, MTU 1260: IPv6's header is 20 bytes longer),
    // whose kernel lowers its path MTU, and the transfer goes on.
    let mut topo = Topology::start("m64", Options { servers: 1, client_port_mtu: Some(1280), ..Options::default() });
    topo.add_ipv6();
    let _nginx = topo.nginx_on(&[format!("{}:8080", rip(0))], true);
    let file = topo.www().join("mid");
    random_file(&file, "5000000");
    let svc = format!("[{VIP6}]:80");
    topo.gwctl_line(&format!("-A -t {svc} -s rr"));
    topo.gwctl_line(&format!("-P -t {svc} -z {LIP64} -F servers"));
    topo.gwctl_line(&format!("-a -t {svc} -r {}:8080 -b", rip(0)));
    wait_for_service6(&topo, &format!("http://[{VIP6}]/who"));

    let capture = topo.servers.capture("frag", &topo.servers_if, "icmp", &topo.dir().join("servers.pcap"));
    let got = topo.dir().join("got");
    let out = topo.client.output(
        "curl",
        &["-sS", "-g", "--max-time", "60", "-o", got.to_str().unwrap(), &format!("http://[{VIP6}]/mid")],
    );
    let icmp = capture.finish();
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sha256(&got), sha256(&file), "the download is the file");
    // tcpdump -nn: "IP GW > RS: ICMP LIP tcp port 8080 unreachable - need to frag (mtu 1260), length ..."
    let need_frag: Vec<&String> = icmp.iter().filter(|l| l.contains("need to frag")).collect();
    assert!(!need_frag.is_empty(), "the server was told: {icmp:#?}");
    assert!(
        need_frag.iter().all(|l| l.contains(&format!("> {}:", rip(0))) && l.contains("mtu 1260")),
        "{need_frag:#?}"
    );
    assert!(topo.stats().counter("mtu_exceeded") > 0);
    topo.stop();
}
