//! gatewayd on a `net_memif` port whose peer comes and goes (issue 24,
//! items 15 and 16): the peer process exits cleanly (SIGINT, which sends
//! gatewayd a memif disconnect) and is started again, five times, while
//! gatewayd keeps running; after each return the client's requests pass
//! through the gateway again, and `gwctl link` shows the port down while the
//! peer is away and up once it is back, and what the servers send toward the
//! absent peer is dropped as `link_down`. The servers' port, a tap moved into
//! their namespace, shows `<UNKNOWN>` (gatewayd cannot see the interface
//! there), not `<DOWN>`, and forwards. gatewayd then stops cleanly with
//! every mbuf back in its pool.
//!
//! Before the I/O fence (`gateway::dpdk::IoFence`) the memif PMD's
//! interrupt thread unmapped the peer's regions while the worker polled
//! them, and gatewayd died of SIGSEGV within a few peer exits.

use std::time::Duration;

use gateway_e2e::topology::{rip, VIP};
use gateway_e2e::{wait_until, Link, Options, Topology};

/// The peer's clean exits and restarts.
const ROUNDS: usize = 5;

/// `gwctl link`'s line for port `name`.
fn link_line(topo: &Topology, name: &str) -> String {
    let out = topo.gwctl(&["link"]);
    out.lines()
        .find(|l| l.contains(&format!(": {name}: ")))
        .unwrap_or_else(|| panic!("no port {name} in gwctl link:\n{out}"))
        .to_owned()
}

fn client_link(topo: &Topology) -> String {
    link_line(topo, "client")
}

#[test]
fn gatewayd_survives_its_memif_peer_leaving_and_returning() {
    let mut topo = Topology::start("mif", Options { link: Link::Memif, servers: 1, ..Options::default() });
    let _nginx = topo.nginx(&[rip(0)], false);
    topo.fnat_service("-s rr", &[""]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    let servers = link_line(&topo, "servers");
    assert!(servers.contains("<UNKNOWN>"), "a tap in another namespace: {servers}");
    // A download the client will not be there to finish: its segments and
    // retransmissions meet the down port.
    gateway_e2e::random_file(&topo.www().join("blob"), "20M");
    let download = topo.client.spawn(
        "gwt-memif-download",
        "curl",
        &["-sS", "--limit-rate", "200k", "--max-time", "60", "-o", "/dev/null", &format!("http://{VIP}/blob")],
    );
    std::thread::sleep(Duration::from_millis(500));

    for round in 1..=ROUNDS {
        // A flood in flight while the peer leaves: gatewayd's worker is
        // inside the PMD's rx and tx (answering the echoes) most of the time.
        let flood = topo.client.spawn("gwt-memif-flood", "hping3", &["--flood", "--icmp", "-q", "10.0.0.254"]);
        std::thread::sleep(Duration::from_millis(200));
        let status = topo.interrupt_memif_peer();
        drop(flood);
        assert!(status.success(), "round {round}: the peer's clean exit failed: {status}");
        assert!(
            topo.gatewayd_running(),
            "round {round}: gatewayd died when its memif peer left:\n{}",
            topo.gatewayd_log()
        );
        assert!(
            wait_until(Duration::from_secs(5), || client_link(&topo).contains("DOWN")),
            "round {round}: gwctl link does not show the port down without its peer: {}",
            client_link(&topo)
        );
        if round == 1 {
            assert!(
                wait_until(Duration::from_secs(10), || topo.worker_counter("drop link_down") > 0),
                "the servers' segments toward the absent client are not counted as link_down: {}",
                topo.stats().0
            );
        }

        topo.start_memif_peer();
        assert!(
            topo.gatewayd_running(),
            "round {round}: gatewayd died when its memif peer returned:\n{}",
            topo.gatewayd_log()
        );
        assert!(!client_link(&topo).contains("DOWN"), "round {round}: the port is up again: {}", client_link(&topo));
        assert_eq!(topo.curl(&who), "rs1", "round {round}: the service answers through the returned peer");
    }

    drop(download);
    let log = topo.stop();
    assert_eq!(
        log.matches("port client (net_memif): link went down").count(),
        ROUNDS,
        "each departure is logged once:\n{log}"
    );
}
