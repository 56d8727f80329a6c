//! The plain L2 forwarder (the bench crate's `l2fwd`) carries real Linux
//! traffic between two namespaces over DPDK tap ports: ping, an HTTP page,
//! and a 20 MB download that arrives intact. Then SIGTERM stops it cleanly with every mbuf back in its pool.

use std::time::Duration;

use gateway_e2e::{l2fwd_bin, tag, wait_until, Daemon, Netns};

#[test]
fn forwards_real_tcp_between_namespaces() {
    let t = tag();
    let (tap_a, tap_b) = (format!("gwt{t}a"), format!("gwt{t}b"));
    let client = Netns::new(&format!("gwt{t}-client"));
    let server = Netns::new(&format!("gwt{t}-server"));

    let mut command = std::process::Command::new(l2fwd_bin());
    command.args(["--stats-interval", "3600", "--"]).args([
        "-l",
        "0-1",
        "--no-pci",
        "--in-memory",
        &format!("--file-prefix=gwt{t}"),
        "--log-level=lib.eal:error",
        &format!("--vdev=net_tap0,iface={tap_a}"),
        &format!("--vdev=net_tap1,iface={tap_b}"),
    ]);
    let mut forwarder = Daemon::spawn("l2fwd", command);
    assert!(
        wait_until(Duration::from_secs(20), || forwarder.log().contains("running")),
        "l2fwd did not start:\n{}",
        forwarder.log()
    );
    client.adopt(&tap_a, "10.99.0.1/24");
    server.adopt(&tap_b, "10.99.0.2/24");

    let ping = client.output("ping", &["-c", "3", "-i", "0.2", "-W", "2", "10.99.0.2"]);
    assert!(ping.status.success(), "ping failed:\n{}", String::from_utf8_lossy(&ping.stdout));

    // A 20 MB file with known content, served by the server namespace.
    let root = std::env::temp_dir().join(format!("gwt{t}-www"));
    std::fs::create_dir_all(&root).unwrap();
    let blob: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(root.join("blob"), &blob).unwrap();
    std::fs::write(root.join("index.html"), "hello through l2fwd\n").unwrap();
    let _http = server.spawn(
        "http",
        "python3",
        &["-m", "http.server", "8080", "--bind", "10.99.0.2", "--directory", root.to_str().unwrap()],
    );
    let fetch =
        |path: &str| client.output("curl", &["-sS", "--max-time", "20", &format!("http://10.99.0.2:8080/{path}")]);
    assert!(
        wait_until(Duration::from_secs(10), || fetch("index.html").stdout == b"hello through l2fwd\n"),
        "no HTTP answer through l2fwd"
    );
    let download = fetch("blob");
    assert!(download.status.success(), "download failed: {}", String::from_utf8_lossy(&download.stderr));
    assert_eq!(download.stdout.len(), blob.len(), "download length");
    assert!(download.stdout == blob, "download content differs");
    let _ = std::fs::remove_dir_all(&root);

    let status = forwarder.terminate(Duration::from_secs(10)).expect("l2fwd stops on SIGTERM");
    let log = forwarder.log();
    assert!(status.success(), "l2fwd exit status {status}:\n{log}");
    assert!(!log.contains("not returned"), "mbufs leaked:\n{log}");
    // The last counters line: every packet received was sent or counted as dropped.
    let last = log.lines().rev().find(|l| l.starts_with("workers:")).expect("counters line");
    let field = |name: &str| -> u64 {
        let words: Vec<&str> = last.split_whitespace().collect();
        let i = words.iter().position(|w| *w == name).unwrap_or_else(|| panic!("{name} in {last}"));
        words[i + 1].parse().unwrap()
    };
    assert!(field("rx") > 20 * 1024 * 1024 / 1500, "the download crossed l2fwd: {last}");
    assert_eq!(field("rx"), field("tx") + field("tx_dropped"), "{last}");
}
