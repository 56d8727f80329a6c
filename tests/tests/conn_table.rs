//! The connection table under a spoofed SYN flood (no SYN proxy): a full
//! table sheds its oldest half-open entries for new connections, so a real
//! client gets in at once, and the flood's entries go as soon as their
//! SYN_RECV timeout allows, all of them counted in `gwctl stats`.

use std::time::{Duration, Instant};

use gateway_e2e::topology::{fnat_rules, rip, Options, Topology, VIP};
use gateway_e2e::wait_until;

const CAPACITY: u64 = 2000;
const FLOOD: u64 = 5000;
/// The half-open timeout the test configures: long enough that the flood
/// fills the table before its first entries expire, short enough to watch
/// them go.
const SYN_RECV: u64 = 8;

#[test]
fn a_syn_flood_sheds_half_open_entries_and_a_real_client_gets_in() {
    let mut topo = Topology::start(
        "ctf",
        Options {
            servers: 1,
            services: fnat_rules("-s rr", &[""]),
            conn_capacity: CAPACITY as u32,
            extra_config: format!(r#""timeouts": {{"syn_recv": {SYN_RECV}}}"#),
            ..Options::default()
        },
    );
    // Each packet re-arms a connection with its state's timeout (IPVS): the
    // server answers every SYN once and does not retransmit, so the flood's
    // entries see their last packet at once and expire SYN_RECV later.
    topo.servers.sysctl("net.ipv4.tcp_synack_retries", "0");
    let _nginx = topo.nginx(&[rip(0)], false);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    // Spoofed SYNs, bounded in count; hping3's exit status only says whether
    // anything answered it (nothing does: the sources are random).
    let count = FLOOD.to_string();
    let flood = topo.client.output("hping3", &["-q", "-S", "--rand-source", "-p", "80", "-c", &count, "--faster", VIP]);
    assert!(
        String::from_utf8_lossy(&flood.stderr).contains("packets transmitted"),
        "hping3 did not run: {}",
        String::from_utf8_lossy(&flood.stderr)
    );
    let flooded = topo.stats();
    assert!(flooded.counter("new connections") >= CAPACITY + 500, "the flood reached the gateway:\n{}", flooded.0);
    assert_eq!(flooded.counter("connection table"), CAPACITY, "the flood filled the table:\n{}", flooded.0);

    // A real client gets through the full table at once.
    let started = Instant::now();
    assert_eq!(topo.curl(&who), "rs1", "the real client was let in:\n{}", topo.stats().0);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());

    // The flood's entries go when their timeout allows, not 256 a second.
    assert!(
        wait_until(Duration::from_secs(SYN_RECV + 6), || topo.stats().counter("connection table") <= 2),
        "the table did not drain:\n{}",
        topo.stats().0
    );
    let after = topo.stats();
    // Shed relative to what reached the gateway: a loaded machine's tap
    // drops part of hping3's burst before the worker sees it (seen in CI:
    // 3378 of 5000).
    let shed = after.counter("half-open connections shed");
    let arrived = flooded.counter("new connections");
    assert!(shed >= arrived - CAPACITY - 500, "a full table shed half-open entries for new ones:\n{}", after.0);
    assert_eq!(after.counter("drop conn_table_full"), 0, "nothing refused:\n{}", after.0);
    // Every connection made is accounted for: live, expired, reclaimed or shed.
    let gone = after.counter("connections expired") + after.counter("expired connections reclaimed") + shed;
    assert_eq!(after.counter("new connections"), after.counter("connection table") + gone, "{}", after.0);
    topo.stop();
}
