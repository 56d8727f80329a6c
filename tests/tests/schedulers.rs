//! Schedulers seen from a real client: weighted round robin splits
//! connections by weight, source hashing and persistence keep a client on
//! one server, and weight 0 quiesces a server while its connections finish.

use std::time::Duration;

use gateway_e2e::topology::{client_addr, rip, VIP};
use gateway_e2e::{run, wait_until, Options, Topology};

fn rips(n: usize) -> Vec<String> {
    (0..n).map(rip).collect()
}

fn count(answers: &[String], who: &str) -> usize {
    answers.iter().filter(|a| *a == who).count()
}

#[test]
fn wrr_three_to_one() {
    let mut topo = Topology::start("wrr", Options { servers: 2, ..Options::default() });
    let _nginx = topo.nginx(&rips(2), false);
    topo.fnat_service("-s wrr", &["-w 3", "-w 1"]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    let answers = topo.curl_many(None, &who, 400);
    assert_eq!(answers.len(), 400, "every request answered");
    let (rs1, rs2) = (count(&answers, "rs1"), count(&answers, "rs2"));
    assert_eq!(rs1 + rs2, 400, "{answers:?}");
    // wrr is deterministic: exactly 300:100 over whole cycles of four. Allow
    // a little for a retried connection; an even split (rr) or chance is far outside.
    assert!((290..=310).contains(&rs1), "3:1 split, got rs1 {rs1} rs2 {rs2}");
    topo.stop();
}

#[test]
fn source_hashing_and_persistence_keep_a_client_on_one_server() {
    let clients = 6;
    let mut topo = Topology::start("sh", Options { servers: 3, clients, ..Options::default() });
    let _nginx = topo.nginx(&rips(3), false);
    let who = format!("http://{VIP}/who");

    // For each scheduling, each client's five connections and the set of
    // servers all clients reached.
    let per_client = |topo: &Topology| -> Vec<Vec<String>> {
        (0..usize::from(clients)).map(|c| topo.curl_many(Some(&client_addr(c)), &who, 5)).collect()
    };
    let check = |what: &str, seen: &[Vec<String>], distinct_servers: std::ops::RangeInclusive<usize>| {
        let mut servers: Vec<&String> = Vec::new();
        for (c, answers) in seen.iter().enumerate() {
            assert_eq!(answers.len(), 5, "{what}: client {c}: {answers:?}");
            assert!(answers.iter().all(|a| a == &answers[0] && a.starts_with("rs")), "{what}: client {c} stays: {answers:?}");
            servers.push(&answers[0]);
        }
        servers.sort();
        servers.dedup();
        assert!(distinct_servers.contains(&servers.len()), "{what}: servers reached {servers:?} ({seen:?})");
    };

    // sh: the client address picks the server; six clients over three servers reach more than one.
    topo.fnat_service("-s sh", &["", "", ""]);
    topo.wait_for_service(&who);
    check("sh", &per_client(&topo), 2..=3);

    // rr with -p: a client's first connection is scheduled (rr: the six
    // clients cover all three servers), the rest follow it.
    topo.gwctl_line(&format!("-E -t {VIP}:80 -s rr -p 60"));
    check("rr -p", &per_client(&topo), 3..=3);

    // -M 255.255.255.0: the whole /24 is one persistence client (fresh
    // service, so no template of the per-address persistence remains).
    topo.gwctl_line(&format!("-D -t {VIP}:80"));
    topo.fnat_service("-s rr -p 60 -M 255.255.255.0", &["", "", ""]);
    topo.wait_for_service(&who);
    check("rr -p -M /24", &per_client(&topo), 1..=1);
    topo.stop();
}

#[test]
fn weight_zero_takes_no_new_connections_while_an_old_one_finishes() {
    let mut topo = Topology::start("w0", Options { servers: 2, ..Options::default() });
    let _nginx = topo.nginx(&rips(2), false);
    // 2 MiB fetched at 512 KiB/s: a connection that lives about four seconds.
    let blob = topo.www().join("slow");
    run("sh", &["-c", &format!("head -c 2M /dev/urandom > {}", blob.display())]);
    topo.fnat_service("-s rr", &[""]);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let got = topo.dir().join("slow.got");
    let mut slow = topo.client.spawn(
        "slow-download",
        "curl",
        &["-sS", "--max-time", "30", "--limit-rate", "512k", "-o", got.to_str().unwrap(), &format!("http://{VIP}/slow")],
    );
    let rs1 = format!("{}:8080", rip(0));
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::metadata(&got).is_ok_and(|m| m.len() > 0)),
        "the slow download started"
    );
    // A second server, and the first quiesced, while the download runs.
    topo.gwctl_line(&format!("-a -t {VIP}:80 -r {}:8080 -b", rip(1)));
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {rs1} -b -w 0"));
    let (weight, active, _) = topo.server_row(&rs1);
    assert_eq!((weight, active), (0, 1), "rs1 quiesced with its download still active");
    let answers = topo.curl_many(None, &who, 20);
    assert_eq!(answers, vec!["rs2".to_owned(); 20], "no new connection goes to the quiesced server");
    assert!(slow.is_running(), "the download outlived the change (else this test proves nothing)");

    let status = slow.wait(Duration::from_secs(20)).expect("the slow download finishes");
    assert!(status.success(), "the download on the quiesced server completes: {}", slow.log());
    let sha = |p: &std::path::Path| String::from_utf8_lossy(&run("sha256sum", &[p.to_str().unwrap()]).stdout)[..64].to_owned();
    assert_eq!(sha(&got), sha(&blob), "and arrives intact");
    topo.stop();
}
