//! IPv6 through the gateway with real Linux TCP and UDP: curl and nginx over
//! IPv6 through FNAT, NAT and DR services on IPv6 VIPs, the gateway
//! answering neighbour solicitations and echo requests for its own IPv6
//! addresses and resolving its next hops by neighbour discovery, the SYN
//! proxy in front of an IPv6 FNAT service, and IPv4 traffic through the
//! same gateway at the same time.
//!
//! The topology is the IPv4 one ([`Topology`]) with IPv6 addresses added on
//! both sides: the gateway's by `gwctl addr add`, the namespaces' with
//! `nodad` (duplicate address detection would hold each address back for a
//! second or two).

use std::time::Duration;

use gateway_e2e::topology::{rip, VIP};
use gateway_e2e::{sha256, wait_until, Options, Topology};

/// The client side: the client, the gateway's address, the VIP.
const CLIENT6: &str = "2001:db8::1";
const GW_CLIENT6: &str = "2001:db8::fe";
const VIP6: &str = "2001:db8::100";
/// The servers' side: the gateway's address and its local address (FNAT).
const GW_SERVERS6: &str = "2001:db8:1::fe";
const LIP6: &str = "2001:db8:1::200";
/// The bypass link (DR replies).
const BYPASS_CLIENT6: &str = "fd00:b::1";
const BYPASS_SERVERS6: &str = "fd00:b::2";

/// Real server `i`'s IPv6 address.
fn rip6(i: usize) -> String {
    format!("2001:db8:1::{}", 10 + i)
}

/// Adds the IPv6 side to a started topology: addresses on the gateway's
/// ports and in the namespaces, and the client's route to nothing but its
/// own subnet (the VIP is on it: the gateway answers neighbour solicitations
/// for it).
fn add_ipv6(topo: &Topology) {
    topo.gwctl(&["addr", "add", &format!("{GW_CLIENT6}/64"), "dev", "client"]);
    topo.gwctl(&["addr", "add", &format!("{GW_SERVERS6}/64"), "dev", "servers"]);
    topo.client.ip(&["-6", "addr", "add", &format!("{CLIENT6}/64"), "dev", &topo.client_if, "nodad"]);
    for i in 0..3 {
        topo.servers.ip(&["-6", "addr", "add", &format!("{}/64", rip6(i)), "dev", &topo.servers_if, "nodad"]);
    }
}

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
    add_ipv6(&topo);
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
    let listing = topo.gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  [{VIP6}]:80 rr")), "{listing}");
    assert!(listing.contains(&format!("-> [{}]:8080", rip6(0))), "{listing}");
    topo.stop();
}

#[test]
fn a_100_mb_download_over_ipv6_fnat_arrives_intact() {
    let mut topo = Topology::start("d6", Options { servers: 1, ..Options::default() });
    add_ipv6(&topo);
    let _nginx = nginx6(&topo, true);
    let file = topo.www().join("big");
    let made = std::process::Command::new("head")
        .args(["-c", "100000000", "/dev/urandom"])
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .unwrap();
    assert!(made.success());
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
    topo.stop();
}

#[test]
fn nat_over_ipv6_keeps_the_client_address() {
    let mut topo = Topology::start("n6", Options::default());
    add_ipv6(&topo);
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
    add_ipv6(&topo);
    let (bc, bs) = topo.bypass_ifs();
    topo.client.ip(&["-6", "addr", "add", &format!("{BYPASS_CLIENT6}/64"), "dev", &bc, "nodad"]);
    topo.servers.ip(&["-6", "addr", "add", &format!("{BYPASS_SERVERS6}/64"), "dev", &bs, "nodad"]);
    topo.servers.ip(&["-6", "route", "add", "2001:db8::/64", "via", BYPASS_CLIENT6]);
    // The real server holds the VIP on lo (Linux answers neighbour
    // solicitations only for addresses of the interface asked on).
    topo.servers.ip(&["-6", "addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"]);
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

#[test]
fn udp_over_ipv6_fnat_answers_each_datagram() {
    let mut topo = Topology::start("u6", Options { servers: 1, ..Options::default() });
    add_ipv6(&topo);
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
    add_ipv6(&topo);
    let _nginx = nginx6(&topo, true);
    let file = topo.www().join("big");
    let made = std::process::Command::new("head")
        .args(["-c", "20000000", "/dev/urandom"])
        .stdout(std::fs::File::create(&file).unwrap())
        .status()
        .unwrap();
    assert!(made.success());
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
