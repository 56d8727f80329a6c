//! FNAT with real Linux TCP and UDP: gatewayd is configured with gwctl in
//! ipvsadm syntax and load-balances a client namespace's traffic across real
//! servers (nginx, python) that see the local address as the source.

use std::process::Command;
use std::time::Duration;

use gateway_e2e::tcp::{self, Segment, ACK, SYN};
use gateway_e2e::topology::{client_addr, rip, LIP, VIP};
use gateway_e2e::{gatewayd_bin, tag, wait_until, Options, Topology, WrkSummary, UDP_CLIENT, UDP_ECHO};

fn rips(n: usize) -> Vec<String> {
    (0..n).map(rip).collect()
}

/// A FNAT service on VIP:80 with scheduler `sched` over `servers` real servers on port 8080.
fn fnat_service(topo: &Topology, sched: &str, servers: usize) {
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s {sched}"));
    topo.gwctl_line(&format!("-P -t {VIP}:80 -z {LIP} -F servers"));
    for r in rips(servers) {
        topo.gwctl_line(&format!("-a -t {VIP}:80 -r {r}:8080 -b"));
    }
}

#[test]
fn fnat_round_robin_through_gatewayd() {
    let mut topo = Topology::start("rr", Options::default());
    let _nginx = topo.nginx(&rips(3), true);
    fnat_service(&topo, "rr", 3);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    // rr: every window of three consecutive connections meets each server once.
    let answers = topo.curl_many(None, &who, 9);
    assert_eq!(answers.len(), 9, "{answers:?}");
    for window in answers.chunks(3) {
        let mut w = window.to_vec();
        w.sort();
        assert_eq!(w, ["rs1", "rs2", "rs3"], "rr rotates over the three servers: {answers:?}");
    }
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "rr alternates: {answers:?}");
    }

    // Each server saw the local address as the client, never the real client.
    for n in 1..=3 {
        let log = topo.access_log(n);
        assert!(!log.is_empty(), "rs{n} served requests");
        assert!(log.iter().all(|(addr, _)| addr == LIP), "rs{n} sees only the local address: {log:?}");
    }

    // Bad control requests get an error and change nothing; traffic keeps flowing.
    let before = topo.gwctl(&["-Sn"]);
    for garbage in [&b"\x00\xffnot json at all\n"[..], &vec![b'x'; 4 << 20][..]] {
        use std::io::{Read, Write};
        let mut conn = std::os::unix::net::UnixStream::connect(topo.socket()).expect("connect to the control socket");
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = conn.write_all(garbage);
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        assert!(reply.contains("error"), "an error reply, got {reply:?}");
    }
    let refused = topo.gwctl_output(&["-a", "-t", &format!("{VIP}:80"), "-r", &format!("{}:8080", rip(0)), "-b"], None);
    assert!(!refused.status.success(), "a duplicate server is refused");
    assert_eq!(topo.gwctl(&["-Sn"]), before, "the table is unchanged");
    assert!(topo.curl(&who).starts_with("rs"), "forwarding goes on after bad requests");

    let listing = topo.gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  {VIP}:80 rr")), "{listing}");
    assert!(listing.contains("  -> 192.168.1.10:8080            FullNat 1"), "{listing}");

    // The workers' and ports' counters are served to gwctl.
    let stats = topo.gwctl(&["stats"]);
    assert!(stats.starts_with("worker 0 (lcore 1)"), "{stats}");
    assert!(topo.worker_counter("new connections") >= 11, "every request was a new connection: {stats}");
    // And where the worker's time went: its bursts, at most one a packet,
    // and the cycles a packet cost.
    let stats = topo.stats();
    let (bursts, packets) = (stats.counter("bursts"), stats.counter("RX: packets"));
    assert!(bursts > 0 && bursts <= packets, "{bursts} bursts for {packets} packets: {}", stats.0);
    assert!(stats.counter("cycles a packet") > 0, "{}", stats.0);
    let links = topo.gwctl(&["link"]);
    assert_eq!(links.matches("link/ether").count(), 2, "both ports listed: {links}");
    topo.stop();
}

#[test]
fn fnat_large_download_and_a_thousand_concurrent_connections() {
    let mut topo = Topology::start("big", Options::default());
    let nginx = topo.nginx(&rips(2), true);
    fnat_service(&topo, "rr", 2);
    topo.wait_for_service(&format!("http://{VIP}/who"));

    // 100 MB of incompressible bytes, compared by checksum.
    topo.download_intact("100M", 90);

    // A thousand concurrent keep-alive connections for a few seconds.
    let before = topo.worker_counter("new connections");
    let wrk = topo.client.sh(&format!("ulimit -n 20000 && exec wrk -t2 -c1000 -d3s --timeout 10s http://{VIP}/who"));
    let out = String::from_utf8_lossy(&wrk.stdout).into_owned();
    assert!(wrk.status.success(), "wrk: {out}{}", String::from_utf8_lossy(&wrk.stderr));
    eprintln!("{out}");
    let wrk = WrkSummary::parse(&out);
    assert_eq!(wrk.socket_errors, 0, "no socket errors:\n{out}");
    assert_eq!(wrk.non_2xx, 0, "only 2xx answers:\n{out}");
    assert!(wrk.requests >= 1000, "every connection was answered:\n{out}");
    let opened = topo.worker_counter("new connections") - before;
    assert!(opened >= 1000, "wrk's connections crossed the gateway as {opened} new connections:\n{out}");
    drop(nginx);
    topo.stop();
}

/// Every burst in stages (`"staged_from": 0`), as a worker past 4k live
/// connections takes them: rr over real servers, a download checked byte for
/// byte, and a few hundred concurrent connections, whose SYNs share bursts (a
/// burst's new connections index their reply keys at its end).
#[test]
fn fnat_with_every_burst_staged() {
    let opts = Options { extra_config: r#""staged_from": 0"#.into(), ..Options::default() };
    let mut topo = Topology::start("stg", opts);
    assert!(topo.gatewayd_log().contains("bursts staged from 0 live connections"), "{}", topo.gatewayd_log());
    let nginx = topo.nginx(&rips(3), true);
    fnat_service(&topo, "rr", 3);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let answers = topo.curl_many(None, &who, 6);
    for window in answers.chunks(3) {
        let mut w = window.to_vec();
        w.sort();
        assert_eq!(w, ["rs1", "rs2", "rs3"], "rr rotates over the three servers: {answers:?}");
    }

    topo.download_intact("20M", 60);

    let before = topo.worker_counter("new connections");
    let wrk = topo.client.sh(&format!("ulimit -n 4096 && exec wrk -t2 -c300 -d2s --timeout 10s http://{VIP}/who"));
    let out = String::from_utf8_lossy(&wrk.stdout).into_owned();
    assert!(wrk.status.success(), "wrk: {out}{}", String::from_utf8_lossy(&wrk.stderr));
    let wrk = WrkSummary::parse(&out);
    assert_eq!((wrk.socket_errors, wrk.non_2xx), (0, 0), "no socket errors, only 2xx answers:\n{out}");
    assert!(wrk.requests >= 300, "every connection was answered:\n{out}");
    let opened = topo.worker_counter("new connections") - before;
    assert!(opened >= 300, "wrk's connections crossed the gateway as {opened} new connections:\n{out}");
    drop(nginx);
    topo.stop();
}

#[test]
fn fnat_udp_round_robin_with_the_local_address_as_source() {
    let mut topo = Topology::start("udp", Options::default());
    let echoes: Vec<_> = rips(2)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            topo.servers.spawn(
                &format!("udp-rs{}", i + 1),
                "python3",
                &["-c", UDP_ECHO, r, "5353", &format!("rs{}", i + 1)],
            )
        })
        .collect();
    topo.gwctl_line(&format!("-A -u {VIP}:53 -s rr"));
    topo.gwctl_line(&format!("-P -u {VIP}:53 -z {LIP} -F servers"));
    for r in rips(2) {
        topo.gwctl_line(&format!("-a -u {VIP}:53 -r {r}:5353 -b"));
    }
    let ask = |n: usize| {
        let out = topo.client.output("python3", &["-c", UDP_CLIENT, VIP, "53", &n.to_string()]);
        assert!(out.status.success(), "udp client: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    // The first datagrams may wait for the echo servers to bind and the gateway to resolve them.
    assert!(wait_until(Duration::from_secs(15), || ask(1)[0] != "timeout"), "no UDP answer through the VIP");
    let answers = ask(8);
    assert_eq!(answers.len(), 8);
    let mut per_server = [0, 0];
    for a in &answers {
        let words: Vec<&str> = a.split_whitespace().collect();
        assert_eq!(words.len(), 4, "an answer, not a timeout: {answers:?}");
        assert_eq!(words[0], format!("{VIP}:53"), "the answer comes from the VIP: {answers:?}");
        assert_eq!(words[2], LIP, "the server sees the local address: {answers:?}");
        per_server[if words[1] == "rs1" { 0 } else { 1 }] += 1;
    }
    assert_eq!(per_server, [4, 4], "rr over the two servers, one per source port: {answers:?}");
    drop(echoes);
    topo.stop();
}

#[test]
fn a_bad_configuration_is_refused_before_anything_starts() {
    let t = tag();
    let dir = std::env::temp_dir().join(format!("gwt{t}-badcfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (r#"{"eal": [], "ports": [], "colour": "blue"}"#, "unknown field `colour`"),
        (r#"{"eal": [], "ports": [{"device": "net_tap9", "name": "a", "addrs": ["10.0.0.300/24"]}]}"#, "\"ports\"[0].\"addrs\": \"10.0.0.300\" is not an IPv4 address"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "routes": [{"dst": "0.0.0.0/0", "via": "10.0.0.1", "dev": "b"}]}"#, "\"routes\"[0].\"dev\": no port named \"b\""),
        (r#"{"eal": [], "ports": []}"#, "at least one port"),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "services": ["-A -t 10.0.0.100:80 -s rr", "-a -t 10.0.0.100:80 -r 192.168.1.10 -m -w 70000"]}"#,
            "\"services\"[1]: \"-a -t 10.0.0.100:80 -r 192.168.1.10 -m -w 70000\": ",
        ),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "services": ["-A -t 10.0.0.100:80", "-a -t 10.0.0.100:80 -r 192.168.1.10 -m", "-a -t 10.0.0.100:80 -r 192.168.1.10 -m"]}"#,
            "\"services\"[2]: \"-a -t 10.0.0.100:80 -r 192.168.1.10 -m\": ",
        ),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "services": ["-a -t 10.0.0.100:80 -r 192.168.1.10 -m"]}"#,
            "\"services\"[0]",
        ),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "timeouts": {"tcp": 99999999}}"#, "\"timeouts\": timeout 99999999 is out of range"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "timeouts": {"fin": 3}}"#, "unknown field `fin`"),
        ("not json", "expected ident"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "synproxy": {"wscale": 15}}"#, "\"synproxy\".\"wscale\": 15 is above 14"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "synproxy": {"mss": 100}}"#, "\"synproxy\".\"mss\": 100 is not in 536..=8960"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "synproxy": {"invalid_ack": "ignore"}}"#, "unknown variant `ignore`, expected `drop` or `rst`"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "synproxy": {"handshakes": 0}}"#, "\"synproxy\".\"handshakes\": 0"),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "services": ["-A -t 10.0.0.100:80 -s rr -j enable", "-a -t 10.0.0.100:80 -r 192.168.1.10 -g"]}"#,
            "SYN proxy on TCP 10.0.0.100:80 needs the replies to pass the gateway",
        ),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "services": ["-A -u 10.0.0.100:53 -s rr -o"]}"#,
            "\"services\"[0]: \"-A -u 10.0.0.100:53 -s rr -o\": One-Packet Scheduling (-o) is not supported by this gateway",
        ),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "timeouts": [1000, 2000, 3000]}"#, "\"timeouts\": expected an object {\"name\": value, ...}, not [1000,2000,3000]"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "synproxy": {"handshakes": 4294967295}}"#, "\"synproxy\".\"handshakes\": 4294967295 is above 1048576"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "conn_capacity": 4294967295}"#, "\"conn_capacity\": 4294967295 is not in 1..=134217726"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}, {"device": "e", "name": "b"}], "mbufs": 2047}"#, "\"mbufs\": 2047 is fewer than the 5120 that 2 port(s) with 1 worker(s) need"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "mbufs": 3000000000}"#, "\"mbufs\": 3000000000 is above 67108864"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}, {"device": "d", "name": "b"}]}"#, "\"ports\"[1].\"device\": \"d\" is already port 0"),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a", "addrs": ["10.0.0.254/24"]}, {"device": "e", "name": "b", "addrs": ["10.0.0.254/24"]}]}"#,
            "\"ports\"[1].\"addrs\": address 10.0.0.254 already exists on a",
        ),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a", "addrs": ["10.0.0.254/16"]}, {"device": "e", "name": "b", "addrs": ["10.0.9.1/24"]}]}"#,
            "\"ports\"[1].\"addrs\": 10.0.9.1/24 overlaps 10.0.0.254/16 on a",
        ),
        (
            r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "routes": [{"dst": "10.1.2.3/16", "dev": "a"}]}"#,
            "\"routes\"[0]: invalid prefix for given prefix length: 10.1.2.3/16 has host bits set",
        ),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "watchdog": {"stall_seconds": 0}}"#, "\"watchdog\".\"stall_seconds\": 0 is not in 1..=3600"),
        (r#"{"eal": [], "ports": [{"device": "d", "name": "a"}], "watchdog": {"on_failure": "ignore"}}"#, "unknown variant `ignore`, expected `exit` or `continue`"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.json"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new(gatewayd_bin()).arg("--config").arg(&path).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains("bad configuration") && err.contains(want), "{text}: expected {want:?} in {err}");
        assert!(!err.contains("EAL"), "nothing started: {err}");
    }
    // A file that never ends is refused after 16 MB, at once.
    let started = std::time::Instant::now();
    let endless = Command::new(gatewayd_bin()).args(["--config", "/dev/zero"]).output().unwrap();
    let err = String::from_utf8_lossy(&endless.stderr);
    assert_eq!(endless.status.code(), Some(2), "{err}");
    assert!(err.contains("/dev/zero: larger than 16777216 bytes: not a configuration file"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let missing = Command::new(gatewayd_bin()).args(["--config", "/nonexistent/gw.json"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/gw.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fnat_toa_option_carries_the_client_address_on_the_handshake() {
    let mut topo = Topology::start("toa", Options { servers: 1, clients: 2, ..Options::default() });
    let _nginx = topo.nginx(&rips(1), false);
    fnat_service(&topo, "rr", 1);
    let who = format!("http://{VIP}/who");
    topo.wait_for_service(&who);

    let capture = topo.servers.capture("toa", &topo.servers_if, "tcp port 8080", &topo.dir().join("toa.pcap"));
    // Two clients with known addresses and ports: the option must carry each one's own.
    let clients = [(client_addr(0), 40123u16), (client_addr(1), 40457u16)];
    for (addr, port) in &clients {
        let out = topo
            .client
            .output("curl", &["-sS", "--max-time", "5", "--interface", addr, "--local-port", &port.to_string(), &who]);
        assert!(out.status.success(), "curl from {addr}:{port}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rs1");
    }
    let frames = capture.frames();
    let segments = tcp::segments(&frames);
    let lip: std::net::Ipv4Addr = LIP.parse().unwrap();
    let to_server: Vec<&Segment> = segments.iter().filter(|s| s.src == lip && s.dport == 8080).collect();
    let syns: Vec<&&Segment> = to_server.iter().filter(|s| s.flags & SYN != 0).collect();
    assert_eq!(syns.len(), 2, "one SYN toward the server per connection: {to_server:#?}");

    let toa = |s: &Segment| -> Vec<Vec<u8>> {
        s.option_list().into_iter().filter(|(k, _)| *k == 254).map(|(_, o)| o).collect()
    };
    for (syn, (addr, port)) in syns.iter().zip(&clients) {
        // kind 254, length 8, the client's port (2 bytes) then its IPv4 address (4 bytes).
        let ip = addr.parse::<std::net::Ipv4Addr>().unwrap().octets();
        let p = port.to_be_bytes();
        let want = vec![254u8, 8, p[0], p[1], ip[0], ip[1], ip[2], ip[3]];
        assert_eq!(toa(syn), vec![want.clone()], "the SYN to the server carries {addr}:{port}: {syn:?}");
        // The ACK completing the handshake (where a toa module reads it) carries it too.
        let conn: Vec<&&Segment> = to_server.iter().filter(|s| s.sport == syn.sport).collect();
        let ack =
            conn.iter().find(|s| s.flags & (SYN | ACK) == ACK).unwrap_or_else(|| panic!("a handshake ACK: {conn:#?}"));
        assert_eq!(toa(ack), vec![want], "the handshake ACK carries {addr}:{port}: {ack:?}");
        // The server answers the local address, never the client.
        assert!(segments
            .iter()
            .filter(|s| s.dport == syn.sport)
            .all(|s| s.dst == lip && s.sport == 8080 && toa(s).is_empty()));
    }
    assert!(topo.access_log(1).iter().all(|(a, s)| a == LIP && *s == 200), "{:?}", topo.access_log(1));
    assert_eq!(topo.worker_counter("toa not inserted"), 0, "no refused insertion: {}", topo.gwctl(&["stats"]));
    topo.stop();
}
