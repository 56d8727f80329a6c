//! Schedulers seen from a real client: weighted round robin splits
//! connections by weight, source hashing and persistence keep a client on
//! one server (also on port 0, and a /24 as one client), destination hashing
//! keeps a destination on one server, lc and wlc follow long-lived
//! connections, weight 0 quiesces a server while its connections finish, and
//! an upper threshold turns new connections away; fo fails over by weight,
//! ovf overflows past each weight, and twos keeps the less loaded of two
//! random draws.

use std::time::Duration;

use gateway_e2e::topology::{client_addr, rip, LIP, VIP};
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
            assert!(
                answers.iter().all(|a| a == &answers[0] && a.starts_with("rs")),
                "{what}: client {c} stays: {answers:?}"
            );
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
        &[
            "-sS",
            "--max-time",
            "30",
            "--limit-rate",
            "512k",
            "-o",
            got.to_str().unwrap(),
            &format!("http://{VIP}/slow"),
        ],
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
    assert_eq!(gateway_e2e::sha256(&got), gateway_e2e::sha256(&blob), "and arrives intact");
    topo.stop();
}

/// Holds long-lived HTTP keep-alive connections: opens N connections to
/// ADDR:PORT one after the other, asks `/who` on each and prints the answer
/// ("rsN"), then keeps them all open and idle (at most 60 s). SIGTERM resets
/// them (RST, not FIN: the gateway forgets a reset connection sooner).
const HOLD: &str = r#"
import signal, socket, struct, sys, time
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
def reset(*_):
    for s in held:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, reset)
for i in range(n):
    s = socket.create_connection((addr, port), timeout=5)
    s.sendall(b"GET /who HTTP/1.1\r\nHost: vip\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        body += s.recv(4096)
    print(body.decode().strip(), flush=True)
    held.append(s)
time.sleep(60)
"#;

/// Starts a holder of `n` long-lived connections to VIP:`port` and returns it
/// with the server each connection reached.
fn hold(topo: &Topology, port: u16, n: usize) -> (gateway_e2e::Daemon, Vec<String>) {
    let holder = topo.client.spawn("hold", "python3", &["-c", HOLD, VIP, &port.to_string(), &n.to_string()]);
    let answers = || holder.log().lines().map(str::to_owned).collect::<Vec<_>>();
    assert!(
        wait_until(Duration::from_secs(10), || answers().len() >= n),
        "{n} long-lived connections: {}",
        holder.log()
    );
    let got = answers();
    assert!(got.iter().all(|a| a == "rs1" || a == "rs2"), "{got:?}");
    (holder, got)
}

#[test]
fn lc_and_wlc_send_new_connections_to_the_server_with_fewer_long_lived_ones() {
    let mut topo = Topology::start("lc", Options { servers: 2, ..Options::default() });
    // Keep-alive: a held connection stays open (and active) after its answer.
    let _nginx = topo.nginx(&rips(2), true);
    let (rs1, rs2) = (format!("{}:8080", rip(0)), format!("{}:8080", rip(1)));
    // One service per scheduler, over the same two servers: rs1 weight 1, rs2 weight 3.
    for (port, sched) in [(80u16, "lc"), (81, "wlc")] {
        let svc = format!("{VIP}:{port}");
        topo.gwctl_line(&format!("-A -t {svc} -s {sched}"));
        topo.gwctl_line(&format!("-P -t {svc} -z {LIP} -F servers"));
        topo.gwctl_line(&format!("-a -t {svc} -r {rs1} -b -w 1"));
        topo.wait_for_service(&format!("http://{svc}/who"));
        let row = |rs: &str| topo.server_row_of(&svc, rs);
        // The probes are over: no connection of this service is active.
        assert!(wait_until(Duration::from_secs(5), || row(&rs1).1 == 0), "{}", topo.gwctl(&["-Ln"]));

        // Three long-lived connections, all on rs1 (the only server yet).
        let (_first, got) = hold(&topo, port, 3);
        assert_eq!(got, ["rs1"; 3]);
        assert_eq!(row(&rs1).1, 3, "{sched}: rs1 shows the three held connections active:\n{}", topo.gwctl(&["-Ln"]));

        // rs2 joins: every short connection goes to it (rr would alternate),
        // since rs1's three active connections weigh 3 * 256.
        topo.gwctl_line(&format!("-a -t {svc} -r {rs2} -b -w 3"));
        let before = (topo.access_log(1).len(), topo.access_log(2).len());
        let answers = topo.curl_many(None, &format!("http://{svc}/who"), 20);
        assert_eq!(answers, vec!["rs2".to_owned(); 20], "{sched}: new connections go to the less loaded server");
        // nginx logs a request just after answering it: the last line may come a moment later.
        assert!(
            wait_until(Duration::from_secs(2), || topo.access_log(2).len() == before.1 + 20),
            "{sched}: rs2 logged all of them: {} of 20",
            topo.access_log(2).len() - before.1
        );
        assert_eq!(topo.access_log(1).len(), before.0, "{sched}: rs1 logged none of them");
        // Closed, they count as inactive on rs2; rs1 still holds its three.
        assert!(wait_until(Duration::from_secs(5), || row(&rs2).1 == 0), "{sched}: {}", topo.gwctl(&["-Ln"]));
        let (_, a1, _) = row(&rs1);
        let (_, a2, i2) = row(&rs2);
        assert_eq!((a1, a2), (3, 0), "{sched}:\n{}", topo.gwctl(&["-Ln"]));
        assert!((1..=20).contains(&i2), "{sched}: rs2's closed connections are inactive:\n{}", topo.gwctl(&["-Ln"]));

        // Eight more long-lived connections, one after the other: each goes
        // to the least loaded server, so the active counts even out: equally
        // for lc (weights ignored), 1:3 for wlc.
        let (_second, got) = hold(&topo, port, 8);
        let on = |who: &str| got.iter().filter(|a| *a == who).count() as u64;
        let (a1, a2) = (3 + on("rs1"), on("rs2"));
        let listing = topo.gwctl(&["-Ln"]);
        assert_eq!(
            (row(&rs1).1, row(&rs2).1),
            (a1, a2),
            "{sched}: gwctl agrees with the servers that answered {got:?}:\n{listing}"
        );
        if sched == "lc" {
            assert!(a1.abs_diff(a2) <= 1, "lc evens out active connections: rs1 {a1}, rs2 {a2} ({got:?})\n{listing}");
        } else {
            assert!(
                (3 * a1).abs_diff(a2) <= 3,
                "wlc keeps active/weight even: rs1 {a1}/1, rs2 {a2}/3 ({got:?})\n{listing}"
            );
        }
    }
    topo.stop();
}

#[test]
fn dh_sends_each_destination_to_one_server_whoever_the_client() {
    let clients = 20;
    let mut topo = Topology::start("dh", Options { servers: 3, clients, ..Options::default() });
    let _nginx = topo.nginx(&rips(3), false);
    // Three virtual addresses with dh over the same three servers. IPVS's
    // dh bucket (hash_32 of the address, 8 bits) of 10.0.0.100, .101, .102
    // is 248, 90 and 187: 2, 0 and 1 modulo 3, so they land on three
    // different servers in whatever order the list holds them.
    let vips = ["10.0.0.100", "10.0.0.101", "10.0.0.102"];
    for vip in vips {
        topo.gwctl_line(&format!("-A -t {vip}:80 -s dh"));
        topo.gwctl_line(&format!("-P -t {vip}:80 -z {LIP} -F servers"));
        for r in rips(3) {
            topo.gwctl_line(&format!("-a -t {vip}:80 -r {r}:8080 -b"));
        }
        topo.wait_for_service(&format!("http://{vip}/who"));
    }
    // Each client asks each address once, a new connection each.
    let urls: Vec<String> = vips.iter().map(|v| format!("http://{v}/who")).collect();
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); vips.len()];
    for c in 0..usize::from(clients) {
        let from = client_addr(c);
        let mut args = vec!["-sS", "--max-time", "5", "-H", "Connection: close", "--interface", &from];
        args.extend(urls.iter().map(String::as_str));
        let out = topo.client.output("curl", &args);
        assert!(out.status.success(), "curl from {from}: {}", String::from_utf8_lossy(&out.stderr));
        let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(answers.len(), vips.len(), "{from}: {answers:?}");
        for (v, a) in answers.into_iter().enumerate() {
            seen[v].push(a);
        }
    }
    for (vip, answers) in vips.iter().zip(&seen) {
        assert!(
            answers[0].starts_with("rs") && answers.iter().all(|a| a == &answers[0]),
            "{vip}: one server for 20 clients: {answers:?}"
        );
    }
    let mut servers: Vec<&String> = seen.iter().map(|a| &a[0]).collect();
    servers.sort();
    servers.dedup();
    assert_eq!(servers.len(), 3, "the three addresses hash to three servers: {seen:?}");
    // Each server's log holds its address's twenty requests (and the probes before).
    for n in 1..=3 {
        assert!(topo.access_log(n).len() >= usize::from(clients), "rs{n} logged its destination's requests");
    }
    topo.stop();
}

#[test]
fn persistence_on_port_zero_keeps_a_client_on_one_server_for_every_port() {
    let clients = 4;
    let mut topo = Topology::start("p0", Options { servers: 2, clients, ..Options::default() });
    // Both servers listen on ports 80 and 81; /who names the listener:
    // rs1 = rip(0):80, rs2 = rip(0):81, rs3 = rip(1):80, rs4 = rip(1):81.
    let listens: Vec<String> = rips(2).iter().flat_map(|r| [format!("{r}:80"), format!("{r}:81")]).collect();
    let _nginx = topo.nginx_on(&listens, false);
    // Port 0: every port of the VIP; real servers on port 0 keep the client's destination port.
    topo.gwctl_line(&format!("-A -t {VIP}:0 -s rr -p 60"));
    topo.gwctl_line(&format!("-P -t {VIP}:0 -z {LIP} -F servers"));
    for r in rips(2) {
        topo.gwctl_line(&format!("-a -t {VIP}:0 -r {r} -b"));
    }
    let listing = topo.gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  {VIP}:0 rr persistent 60")), "{listing}");
    topo.wait_for_service(&format!("http://{VIP}/who"));

    let server_of = |answer: &str| match answer {
        "rs1" | "rs2" => 0,
        "rs3" | "rs4" => 1,
        other => panic!("not an answer: {other:?}"),
    };
    let mut servers_reached = Vec::new();
    for c in 0..usize::from(clients) {
        let from = client_addr(c);
        // Alternate the ports over one client's six connections.
        let mut args = vec!["-sS".to_owned(), "--max-time".into(), "5".into(), "-H".into(), "Connection: close".into()];
        args.extend(["--interface".into(), from.clone()]);
        for i in 0..6 {
            args.push(format!("http://{VIP}:{}/who", 80 + i % 2));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = topo.client.output("curl", &args);
        assert!(out.status.success(), "curl from {from}: {}", String::from_utf8_lossy(&out.stderr));
        let answers: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        assert_eq!(answers.len(), 6, "{from}: {answers:?}");
        for (i, a) in answers.iter().enumerate() {
            // The client's destination port reached the server unchanged.
            let want_port_81 = i % 2 == 1;
            assert_eq!(
                a == "rs2" || a == "rs4",
                want_port_81,
                "{from}: connection {i} to port {} answered by {a}: {answers:?}",
                80 + i % 2
            );
        }
        let server = server_of(&answers[0]);
        assert!(answers.iter().all(|a| server_of(a) == server), "{from}: one server for all ports: {answers:?}");
        servers_reached.push(server);
    }
    servers_reached.sort();
    servers_reached.dedup();
    assert_eq!(servers_reached, [0, 1], "rr placed the clients' first connections on both servers");

    // A port no server listens on passes through too: the server's reset comes back.
    let refused = topo.client.output("curl", &["-sS", "--max-time", "5", &format!("http://{VIP}:82/")]);
    assert_eq!(
        refused.status.code(),
        Some(7),
        "connection refused by the real server: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    topo.stop();
}

#[test]
fn upper_threshold_turns_new_connections_away_until_the_server_has_room() {
    let mut topo = Topology::start("thr", Options { servers: 2, ..Options::default() });
    let _nginx = topo.nginx(&rips(2), true);
    let (rs1, rs2) = (format!("{}:8080", rip(0)), format!("{}:8080", rip(1)));
    let who = format!("http://{VIP}/who");
    // The probes go to rs2 only: rs1 starts with no connection at all (the
    // threshold counts inactive connections too, as IPVS does).
    topo.fnat_service("-s rr", &[]);
    topo.gwctl_line(&format!("-a -t {VIP}:80 -r {rs2} -b"));
    topo.wait_for_service(&who);
    topo.gwctl_line(&format!("-a -t {VIP}:80 -r {rs1} -b -x 2"));
    let listing = topo.gwctl(&["-Ln", "--thresholds"]);
    assert!(
        listing.lines().any(|l| l.contains(&rs1) && l.split_whitespace().skip(2).take(2).eq(["2", "0"])),
        "{listing}"
    );

    // rs2 quiesced for a moment: two long-lived connections land on rs1.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {rs2} -b -w 0"));
    let (mut holder, got) = hold(&topo, 80, 2);
    assert_eq!(got, ["rs1", "rs1"]);
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {rs2} -b -w 1"));
    assert_eq!(topo.server_row(&rs1), (1, 2, 0), "rs1 holds two active connections:\n{}", topo.gwctl(&["-Ln"]));

    // At its threshold rs1 takes nothing new: rr sends everything to rs2.
    let answers = topo.curl_many(None, &who, 10);
    assert_eq!(answers, vec!["rs2".to_owned(); 10], "no new connection to the server at its upper threshold");
    assert_eq!(topo.access_log(1).len(), 2, "rs1 logged only the held connections' requests");

    // The held connections end (reset): once the gateway forgets them rs1 has room again.
    assert!(holder.terminate(Duration::from_secs(5)).is_some(), "the holder resets its connections");
    assert!(
        wait_until(Duration::from_secs(20), || topo.server_row(&rs1) == (1, 0, 0)),
        "rs1's reset connections are forgotten:\n{}",
        topo.gwctl(&["-Ln"])
    );
    let answers = topo.curl_many(None, &who, 10);
    // rr alternates again, but each closed connection stays counted (inactive)
    // until it expires: after two, rs1 is at its threshold again.
    assert_eq!(
        answers.iter().filter(|a| *a == "rs1").count(),
        2,
        "rs1 takes connections again, up to its threshold: {answers:?}"
    );
    assert_eq!(answers.iter().filter(|a| *a == "rs2").count(), 8, "{answers:?}");
    let (_, a1, i1) = topo.server_row(&rs1);
    assert_eq!(a1 + i1, 2, "{}", topo.gwctl(&["-Ln"]));
    topo.stop();
}

/// Opens N connections to ADDR:PORT at once (non-blocking connects, all SYNs
/// before any handshake completes on our side), prints "connected" when all
/// are, then holds them (at most 60 s); SIGTERM resets them.
const BURST: &str = r#"
import select, signal, socket, struct, sys, time
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
def reset(*_):
    for s in held:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    sys.exit(0)
signal.signal(signal.SIGTERM, reset)
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    held.append(s)
for s in held:
    s.connect_ex((addr, port))
pending, deadline = list(held), time.time() + 10
while pending and time.time() < deadline:
    _, ready, _ = select.select([], pending, [], 1)
    pending = [s for s in pending if s not in ready]
print("connected" if not pending else "timeout", flush=True)
time.sleep(60)
"#;

/// A burst of new connections, with IPVS's semantics: each pick counts every
/// connection created before it, even in the same rx burst. The servers are
/// DR, where a connection is SYN_RECV (inactive, as in IPVS) until the
/// client's ACK makes it ESTABLISHED (active, 256 inactive ones' worth). So
/// the split of a burst depends on which ACKs the gateway saw before each
/// pick (the first connection established before the others' SYNs arrive
/// sends all of them to the other server, in IPVS as here). The test takes
/// the timing out: the bypass link is down while the 30 SYNs go through,
/// so no handshake completes before every connection is scheduled; wlc then
/// splits them by inactive count per weight, 10:20. With the link up again,
/// the servers' SYN-ACK retransmissions complete the handshakes and the 30
/// long-lived connections are active in the same split.
#[test]
fn wlc_splits_a_burst_of_new_connections_by_weight() {
    let mut topo = Topology::start("wlb", Options { servers: 2, bypass: true, ..Options::default() });
    topo.servers_hold_the_vip(&[]);
    let _nginx = topo.nginx_on(&[format!("{VIP}:80")], true);
    let (rs1, rs2) = (format!("{}:80", rip(0)), format!("{}:80", rip(1)));
    let service = |topo: &Topology| {
        topo.gwctl_line(&format!("-A -t {VIP}:80 -s wlc"));
        topo.gwctl_line(&format!("-a -t {VIP}:80 -r {rs1} -g -w 1"));
        topo.gwctl_line(&format!("-a -t {VIP}:80 -r {rs2} -g -w 2"));
    };
    service(&topo);
    topo.wait_for_service(&format!("http://{VIP}/who"));
    // The probes are connections too: start again from empty servers.
    topo.gwctl_line(&format!("-D -t {VIP}:80"));
    service(&topo);
    let rows = |topo: &Topology| (topo.server_row(&rs1), topo.server_row(&rs2));
    assert_eq!(rows(&topo), ((1, 0, 0), (2, 0, 0)), "{}", topo.gwctl(&["-Ln"]));

    let (bypass_client, _) = topo.bypass_ifs();
    topo.client.ip(&["link", "set", &bypass_client, "down"]);
    let holder = topo.client.spawn("burst", "python3", &["-c", BURST, VIP, "80", "30"]);
    let scheduled = || {
        let ((_, a1, i1), (_, a2, i2)) = rows(&topo);
        a1 + i1 + a2 + i2 == 30
    };
    assert!(wait_until(Duration::from_secs(10), scheduled), "30 SYNs scheduled:\n{}", topo.gwctl(&["-Ln"]));
    let listing = topo.gwctl(&["-Ln"]);
    let ((_, a1, n1), (_, a2, n2)) = rows(&topo);
    assert_eq!((a1, a2), (0, 0), "no handshake completed yet:\n{listing}");
    assert!(n1.abs_diff(10) <= 3 && n2.abs_diff(20) <= 3, "wlc 1:2 over a burst of 30: rs1 {n1}, rs2 {n2}\n{listing}");

    topo.client.ip(&["link", "set", &bypass_client, "up"]);
    assert!(
        wait_until(Duration::from_secs(15), || holder.log().contains("connected")),
        "30 connections: {}",
        holder.log()
    );
    let established = || rows(&topo) == ((1, n1, 0), (2, n2, 0));
    assert!(
        wait_until(Duration::from_secs(5), established),
        "the {n1}:{n2} split, now active:\n{}",
        topo.gwctl(&["-Ln"])
    );
    drop(holder);
    topo.stop();
}

/// `gwctl -Sn`, cleared with `-C` and given back with `-R`, saves the same
/// rules again: the scheduler name survives the round trip.
fn save_clear_restore(topo: &Topology) {
    let saved = topo.gwctl(&["-Sn"]);
    topo.gwctl(&["-C"]);
    let out = topo.gwctl_output(&["-R"], Some(&saved));
    assert!(out.status.success(), "gwctl -R: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(topo.gwctl(&["-Sn"]), saved, "restored rules save the same");
}

#[test]
fn fo_sends_everything_to_the_heaviest_server_and_fails_over() {
    let mut topo = Topology::start("fo", Options { servers: 3, ..Options::default() });
    let _nginx = topo.nginx(&rips(3), false);
    topo.fnat_service("-s fo", &["-w 2", "-w 5", "-w 5"]);
    let saved = topo.gwctl(&["-Sn"]);
    assert!(saved.contains(&format!("-A -t {VIP}:80 -s fo")), "{saved}");
    save_clear_restore(&topo);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    // Weights 2, 5, 5: the first of the heaviest takes every connection.
    assert_eq!(topo.curl_many(None, &who, 20), vec!["rs2".to_owned(); 20]);
    // Its weight lowered below the others: the other weight 5 takes over.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {}:8080 -b -w 1", rip(1)));
    assert_eq!(topo.curl_many(None, &who, 20), vec!["rs3".to_owned(); 20], "failover to the next heaviest");
    // That one quiesced too: the weight 2 server is the heaviest left.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {}:8080 -b -w 0", rip(2)));
    assert_eq!(topo.curl_many(None, &who, 20), vec!["rs1".to_owned(); 20], "then to the weight 2 server");
    topo.stop();
}

#[test]
fn ovf_fills_the_heaviest_server_up_to_its_weight_then_overflows() {
    let mut topo = Topology::start("ovf", Options { servers: 2, ..Options::default() });
    // Keep-alive: a held connection stays open (and active) after its answer.
    let _nginx = topo.nginx(&rips(2), true);
    let (rs1, rs2) = (format!("{}:8080", rip(0)), format!("{}:8080", rip(1)));
    topo.fnat_service("-s ovf", &["-w 1", "-w 2"]);
    save_clear_restore(&topo);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);
    // The probes are over: no connection is active (inactive ones do not count for ovf).
    assert!(
        wait_until(Duration::from_secs(5), || topo.server_row(&rs1).1 + topo.server_row(&rs2).1 == 0),
        "{}",
        topo.gwctl(&["-Ln"])
    );

    // IPVS's ovf skips a server only when its active connections exceed its
    // weight: rs2 (weight 2) takes three, then rs1 (weight 1) two.
    let (mut holder, got) = hold(&topo, 80, 5);
    assert_eq!(got, ["rs2", "rs2", "rs2", "rs1", "rs1"], "{}", topo.gwctl(&["-Ln"]));
    assert_eq!((topo.server_row(&rs1).1, topo.server_row(&rs2).1), (2, 3), "{}", topo.gwctl(&["-Ln"]));

    // Every server over its weight: a new connection finds none and is dropped.
    let refused = topo.stats().counter("drop no_dest");
    assert_eq!(topo.curl(&who), "", "no server takes a connection past every weight");
    let now = topo.stats();
    assert!(now.counter("drop no_dest") > refused, "the SYNs are counted as finding no server:\n{}", now.0);

    // The held connections end: rs2 is the first choice again.
    assert!(holder.terminate(Duration::from_secs(5)).is_some(), "the holder resets its connections");
    assert!(
        wait_until(Duration::from_secs(20), || topo.server_row(&rs1).1 + topo.server_row(&rs2).1 == 0),
        "the reset connections are forgotten:\n{}",
        topo.gwctl(&["-Ln"])
    );
    assert_eq!(topo.curl_many(None, &who, 10), vec!["rs2".to_owned(); 10]);
    topo.stop();
}

#[test]
fn twos_draws_two_servers_by_weight_and_keeps_the_less_loaded() {
    let mut topo = Topology::start("two", Options { servers: 3, ..Options::default() });
    let _nginx = topo.nginx(&rips(3), true);
    let rs = |i: usize| format!("{}:8080", rip(i));
    // rs3 has weight 0: never drawn.
    topo.fnat_service("-s twos", &["-w 1", "-w 4", "-w 0"]);
    save_clear_restore(&topo);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    // Three long-lived connections on rs1, rs2 quiesced meanwhile.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {} -b -w 0", rs(1)));
    let (_holder, got) = hold(&topo, 80, 3);
    assert_eq!(got, ["rs1"; 3]);
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {} -b -w 4", rs(1)));

    // Weights 1 and 4: a draw names rs1 with chance 2 in 6 (IPVS's draw gives
    // the first server one chance more). rs1 carries 3 * 256 of load against
    // the short connections rs2 gathers, so it wins only when both draws name
    // it: 1 in 9, about 10 of 90; one random choice would give it about 30.
    // Random, but both bounds are more than four standard deviations away.
    let answers = topo.curl_many(None, &who, 90);
    assert_eq!(answers.len(), 90, "{answers:?}");
    let (on1, on2) = (count(&answers, "rs1"), count(&answers, "rs2"));
    assert_eq!(on1 + on2, 90, "rs3 (weight 0) takes none: {answers:?}");
    assert!((1..=22).contains(&on1), "the loaded rs1 wins only when drawn twice: rs1 {on1}, rs2 {on2}");
    assert_eq!(topo.server_row(&rs(0)).1, 3, "{}", topo.gwctl(&["-Ln"]));
    topo.stop();
}
