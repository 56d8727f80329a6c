//! The gateway on `net_af_packet` ports over veth pairs instead of taps:
//! FNAT rr, a download that arrives intact, and concurrent connections.

use gateway_e2e::topology::{rip, LIP, VIP};
use gateway_e2e::{Link, Options, Topology};

#[test]
fn fnat_over_af_packet_on_veth() {
    let mut topo = Topology::start("afp", Options { link: Link::AfPacket, servers: 2, ..Options::default() });
    let _nginx = topo.nginx(&[rip(0), rip(1)], true);
    topo.fnat_service("-s rr", &["", ""]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    let answers = topo.curl_many(None, &who, 6);
    assert_eq!(answers.len(), 6);
    assert!(answers.windows(2).all(|p| p[0] != p[1] && p[0].starts_with("rs")), "rr alternates: {answers:?}");
    for n in 1..=2 {
        assert!(topo.access_log(n).iter().all(|(a, s)| a == LIP && *s == 200), "rs{n} sees the local address");
    }

    // 20 MB compared by checksum.
    topo.download_intact("20M", 60);

    let wrk = topo.client.sh(&format!("ulimit -n 20000 && exec wrk -t2 -c200 -d2s --timeout 10s http://{VIP}/who"));
    let out = String::from_utf8_lossy(&wrk.stdout).into_owned();
    assert!(wrk.status.success() && out.contains(" requests in "), "wrk: {out}");
    assert!(!out.contains("Socket errors") && !out.contains("Non-2xx"), "no failed request:\n{out}");
    topo.stop();
}
