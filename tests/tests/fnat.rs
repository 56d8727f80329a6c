//! FNAT with real Linux TCP: gatewayd runs from a configuration file, is
//! configured with gwctl in ipvsadm syntax, and load-balances curl's requests
//! from a client namespace across two HTTP servers in a server namespace.
//! The servers see the local address as the source; rr alternates them.

use std::process::Command;
use std::time::Duration;

use gateway_e2e::{gatewayd_bin, gwctl_bin, tag, wait_until, Daemon, Netns};

const VIP: &str = "10.0.0.100";
const LIP: &str = "192.168.1.200";

#[test]
fn fnat_round_robin_through_gatewayd() {
    let t = tag();
    let (tap_c, tap_s) = (format!("gwt{t}c"), format!("gwt{t}s"));
    let client = Netns::new(&format!("gwt{t}-fc"));
    let servers = Netns::new(&format!("gwt{t}-fs"));
    let dir = std::env::temp_dir().join(format!("gwt{t}-fnat"));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("gatewayd.sock");
    let config = dir.join("gatewayd.json");
    std::fs::write(
        &config,
        format!(
            r#"{{
  "eal": ["-l", "0-1", "--no-pci", "--in-memory", "--file-prefix=gwt{t}f", "--log-level=lib.eal:error",
          "--vdev=net_tap0,iface={tap_c}", "--vdev=net_tap1,iface={tap_s}"],
  "ports": [
    {{"device": "net_tap0", "name": "client", "addrs": ["10.0.0.254/24"]}},
    {{"device": "net_tap1", "name": "servers", "addrs": ["192.168.1.254/24"]}}
  ],
  "conn_capacity": 65536
}}"#
        ),
    )
    .unwrap();

    let mut command = Command::new(gatewayd_bin());
    command.arg("--config").arg(&config).arg("--socket").arg(&socket);
    let mut gatewayd = Daemon::spawn("gatewayd-fnat", command);
    assert!(
        wait_until(Duration::from_secs(20), || gatewayd.log().contains("running")),
        "gatewayd did not start:\n{}",
        gatewayd.log()
    );
    client.adopt(&tap_c, "10.0.0.1/24");
    servers.adopt(&tap_s, "192.168.1.10/24");
    servers.ip(&["addr", "add", "192.168.1.11/24", "dev", &tap_s]);

    // Two real servers, each saying who it is.
    let mut https = Vec::new();
    for (i, rs) in ["192.168.1.10", "192.168.1.11"].iter().enumerate() {
        let root = dir.join(format!("rs{}", i + 1));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("index.html"), format!("rs{}\n", i + 1)).unwrap();
        https.push(servers.spawn(
            &format!("http-rs{}", i + 1),
            "python3",
            &["-m", "http.server", "8080", "--bind", rs, "--directory", root.to_str().unwrap()],
        ));
    }

    // Both servers listen before any request goes through the VIP.
    for rs in ["192.168.1.10", "192.168.1.11"] {
        assert!(
            wait_until(Duration::from_secs(10), || servers
                .output("curl", &["-s", "--max-time", "1", &format!("http://{rs}:8080/index.html")])
                .status
                .success()),
            "real server {rs} did not start"
        );
    }

    let gwctl = |args: &[&str]| {
        let out = Command::new(gwctl_bin()).env("GATEWAYD_SOCKET", &socket).args(args).output().expect("run gwctl");
        assert!(
            out.status.success(),
            "gwctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    gwctl(&["-A", "-t", &format!("{VIP}:80"), "-s", "rr"]);
    gwctl(&["-P", "-t", &format!("{VIP}:80"), "-z", LIP, "-F", "servers"]);
    gwctl(&["-a", "-t", &format!("{VIP}:80"), "-r", "192.168.1.10:8080", "-b"]);
    gwctl(&["-a", "-t", &format!("{VIP}:80"), "-r", "192.168.1.11:8080", "-b"]);

    let fetch = || {
        let out = client.output("curl", &["-sS", "--max-time", "5", &format!("http://{VIP}/index.html")]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(
        wait_until(Duration::from_secs(15), || fetch().starts_with("rs")),
        "no answer through the VIP; gatewayd log:\n{}",
        gatewayd.log()
    );
    let answers: Vec<String> = (0..6).map(|_| fetch()).collect();
    let rs1 = answers.iter().filter(|a| *a == "rs1").count();
    let rs2 = answers.iter().filter(|a| *a == "rs2").count();
    assert_eq!((rs1, rs2), (3, 3), "rr alternates the two servers: {answers:?}");
    for pair in answers.windows(2) {
        assert_ne!(pair[0], pair[1], "rr alternates: {answers:?}");
    }

    // Each server saw the local address as the client, never the real client.
    for http in &https {
        let log = http.log();
        assert!(log.contains(&format!("{LIP} - -")), "the server sees the local address:\n{log}");
        assert!(!log.contains("10.0.0.1 - -"), "the client address must not reach the server:\n{log}");
    }

    // Bad control requests get an error and change nothing; traffic keeps flowing.
    let before = gwctl(&["-Sn"]);
    for garbage in [&b"\x00\xffnot json at all\n"[..], &vec![b'x'; 4 << 20][..]] {
        use std::io::{Read, Write};
        let mut conn = std::os::unix::net::UnixStream::connect(&socket).expect("connect to the control socket");
        conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = conn.write_all(garbage);
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        assert!(reply.contains("error"), "an error reply, got {reply:?}");
    }
    let refused = Command::new(gwctl_bin())
        .env("GATEWAYD_SOCKET", &socket)
        .args(["-a", "-t", &format!("{VIP}:80"), "-r", "192.168.1.10:8080", "-b"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "a duplicate server is refused");
    assert_eq!(gwctl(&["-Sn"]), before, "the table is unchanged");
    assert!(fetch().starts_with("rs"), "forwarding goes on after bad requests");

    let listing = gwctl(&["-Ln"]);
    assert!(listing.contains(&format!("TCP  {VIP}:80 rr")), "{listing}");
    assert!(listing.contains("  -> 192.168.1.10:8080            FullNat 1"), "{listing}");

    // The workers' and ports' counters are served to gwctl.
    let stats = gwctl(&["stats"]);
    assert!(stats.starts_with("worker 0 (lcore 1)"), "{stats}");
    let new_conns: u64 = stats
        .split("new connections ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection count in {stats}"));
    assert!(new_conns >= 7, "every request was a new connection on the worker: {stats}");
    let links = gwctl(&["link"]);
    assert_eq!(links.matches("link/ether").count(), 2, "both ports listed: {links}");

    let status = gatewayd.terminate(Duration::from_secs(10)).expect("gatewayd stops on SIGTERM");
    let log = gatewayd.log();
    assert!(status.success(), "gatewayd exit status {status}:\n{log}");
    assert!(!log.contains("not returned"), "mbufs leaked:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
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
        ("not json", "expected ident"),
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
    let missing = Command::new(gatewayd_bin()).args(["--config", "/nonexistent/gw.json"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/gw.json"));
    let _ = std::fs::remove_dir_all(&dir);
}
