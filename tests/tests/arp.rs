//! ARP spoofing across segments against a running gatewayd: a host on the
//! client link claiming the real servers' addresses, and one on the servers'
//! link claiming the client's, change nothing the gateway sends (it learns an
//! address only from the port its route leaves by), and each refusal is
//! counted in `gwctl stats`.
//!
//! The frames are crafted with scapy and sent from the namespaces, as a
//! misbehaving host would send them.

use gateway_e2e::topology::{fnat_rules, rip, Options, Topology, CLIENT, GW_SERVERS, VIP};
use gateway_e2e::Netns;

/// Copies of each forged frame.
const COPIES: u64 = 3;

/// Sends, from `ns` on `iface`, a broadcast ARP request to `gateway` and an
/// ARP reply to it, each claiming every address of `claimed` with a forged MAC.
fn claim(ns: &Netns, iface: &str, gateway: &str, claimed: &[&str]) {
    let claimed: Vec<String> = claimed.iter().map(|a| format!("{a:?}")).collect();
    let script = format!(
        r#"
from scapy.all import Ether, ARP, sendp, conf
conf.verb = 0
forged = "52:54:00:ee:ee:ee"
frames = []
for addr in [{claimed}]:
    frames.append(Ether(src=forged, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=forged, psrc=addr, pdst="{gateway}"))
    frames.append(Ether(src=forged, dst="ff:ff:ff:ff:ff:ff") / ARP(op=2, hwsrc=forged, psrc=addr, pdst="{gateway}"))
sendp(frames * {COPIES}, iface="{iface}")
"#,
        claimed = claimed.join(", ")
    );
    // Debian's python3, which has python3-scapy (scripts/setup.sh).
    let out = ns.output("/usr/bin/python3", &["-c", &script]);
    assert!(out.status.success(), "scapy: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn arp_claiming_another_segments_addresses_is_refused_and_traffic_continues() {
    let services = fnat_rules("-s rr", &["", ""]);
    let mut topo = Topology::start("arp", Options { servers: 2, services, ..Options::default() });
    let _servers = topo.python_http(&[rip(0), rip(1)]);
    let url = format!("http://{VIP}/");
    topo.wait_for_service(&url);

    // The client link claims both real servers; the servers' link claims the client.
    let (rs1, rs2) = (rip(0), rip(1));
    claim(&topo.client, &topo.client_if, "10.0.0.254", &[&rs1, &rs2]);
    claim(&topo.servers, &topo.servers_if, GW_SERVERS, &[CLIENT]);
    let frames = (2 * 2 + 2) * COPIES;
    assert!(
        gateway_e2e::wait_until(std::time::Duration::from_secs(5), || topo
            .worker_counter("neighbours refused wrong port ")
            >= frames),
        "every forged frame refused:\n{}",
        topo.gwctl(&["stats"])
    );
    assert_eq!(topo.worker_counter("neighbours refused wrong port "), frames);

    // Both servers still answer through the VIP, and their answers reach the client.
    let mut answers: Vec<String> = (0..4).map(|_| topo.curl(&url)).collect();
    answers.sort();
    answers.dedup();
    assert_eq!(answers, ["rs1", "rs2"], "rr over both servers after the forged ARP");
    topo.stop();
}
