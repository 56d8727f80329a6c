//! Bad packets from the wire against a running gatewayd: each kind is
//! dropped under its own counter (`gwctl stats`), a packet whose TTL runs out
//! is answered with ICMP time exceeded, and real traffic keeps flowing
//! through a service that came from the configuration file.
//!
//! The packets are crafted with scapy in the client namespace and sent on
//! the client's link, as a misbehaving host would send them.

use gateway_e2e::topology::{fnat_rules, rip, Options, Topology, VIP};

/// Copies of each bad packet.
const COPIES: u64 = 5;

#[test]
fn bad_packets_are_counted_by_reason_and_good_traffic_continues() {
    let services = fnat_rules("-s rr", &["", ""]);
    let mut topo = Topology::start("bad", Options { servers: 2, services, ..Options::default() });
    let _servers = topo.python_http(&[rip(0), rip(1)]);
    let url = format!("http://{VIP}/");
    topo.wait_for_service(&url);

    // The gateway's MAC, learned by the client's kernel while it reached the VIP.
    let neigh = topo.client.output("ip", &["neigh", "show", VIP]);
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    let gw_mac = neigh
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_else(|| panic!("no neighbour entry for {VIP}: {neigh}"))
        .to_owned();

    let script = format!(
        r#"
import sys
from scapy.all import Ether, IP, TCP, Raw, sendp, sr1, conf
conf.verb = 0
iface, mac, vip, n = "{iface}", "{gw_mac}", "{VIP}", {COPIES}
l2 = Ether(dst=mac)
good = IP(src="10.0.0.1", dst=vip) / TCP(sport=4000, dport=80, flags="S")
bad = {{
    # The IP header claims more bytes than the frame has.
    "bad_total_length": bytes(l2 / IP(src="10.0.0.1", dst=vip, len=400) / TCP(dport=80, flags="S")),
    "fragment": bytes(l2 / IP(src="10.0.0.1", dst=vip, flags="MF") / TCP(dport=80, flags="S")),
    "bad_ip_checksum": bytes(l2 / IP(src="10.0.0.1", dst=vip, chksum=0x1234) / TCP(dport=80, flags="S")),
    "bad_tcp_header": bytes(l2 / IP(src="10.0.0.1", dst=vip) / TCP(dport=80, flags="S", dataofs=3)),
    "no_service": bytes(l2 / IP(src="10.0.0.1", dst=vip) / TCP(sport=4001, dport=81, flags="S")),
    "not_for_us": bytes(l2 / IP(src="10.0.0.1", dst="10.0.0.77") / TCP(dport=80, flags="S")),
}}
for name, frame in bad.items():
    sendp([Ether(frame)] * n, iface=iface)
# A runt: an Ethernet header and half an IPv4 header.
sendp([Ether(bytes(l2 / IP(dst=vip))[:24])] * n, iface=iface)
answer = sr1(IP(src="10.0.0.1", dst=vip, ttl=1) / TCP(sport=4002, dport=80, flags="S"), timeout=5)
if answer is None:
    sys.exit("no answer to the TTL 1 SYN")
print("icmp", answer.src, answer.proto, answer.payload.type, answer.payload.code)
"#,
        iface = topo.client_if
    );
    // Debian's python3, which has python3-scapy (scripts/setup.sh), whatever
    // other python3 comes first on the PATH.
    let out = topo.client.output("/usr/bin/python3", &["-c", &script]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scapy: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("icmp 10.0.0.254 1 11 0"),
        "the TTL 1 SYN is answered with time exceeded from our client-side address: {stdout}"
    );

    for reason in ["bad_total_length", "fragment", "bad_ip_checksum", "bad_tcp_header", "no_service"] {
        assert_eq!(topo.worker_counter(&format!("drop {reason} ")), COPIES, "{reason}:\n{}", topo.gwctl(&["stats"]));
    }
    assert!(topo.worker_counter("drop not_for_us ") >= COPIES);
    assert!(topo.worker_counter("drop truncated ") >= COPIES, "the runts");
    assert_eq!(topo.worker_counter("drop ttl_expired "), 1);
    assert_eq!(topo.worker_counter("icmp errors sent "), 1);

    // Still forwarding: both servers of the configured service answer.
    let answers = topo.curl_many(None, &url, 4);
    let mut seen = answers.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["rs1", "rs2"], "rr over the configured servers: {answers:?}");
    topo.stop();
}
