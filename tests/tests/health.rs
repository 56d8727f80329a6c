//! Health checks built in: gatewayd checks its real servers with keepalived's semantics and
//! sets their weight through the normal configuration path.
//!
//! The director runs in a namespace of its own with kernel interfaces (gwk0, gwk1), as in
//! production: the probes are ordinary sockets of that namespace and reach the servers by
//! gwk1 and the DPDK port. Two nginx instances (one per real server, each with its own
//! document root) serve a FNAT service; the service's HTTP check (status and digest) comes
//! from the configuration file's `"health"`, the rest is set with `gwctl --health`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway_e2e::topology::{fnat_rules, nginx_in, rip, Options, Topology, KERNEL_CLIENT, KERNEL_SERVERS, LIP, VIP};
use gateway_e2e::{wait_until, Daemon};

/// The health page and its MD5, as `genhash` prints it (`printf 'healthy\n' | md5sum`).
const HEALTH_PAGE: &str = "healthy\n";
const HEALTH_DIGEST: &str = "3b1fb749c971d7a2c6a517b37f735df2";

/// Timing of every check here: a probe each 0.5 s, one retry 0.2 s after a failure, two
/// successes to come back.
const TIMING: &str = "--delay-loop 0.5 --connect-timeout 1 --retry 1 --delay-before-retry 0.2 --rise 2";

/// The slowest detection allowed: delay_loop x (retry + 1) plus the probes' time and slack
/// for a loaded test machine.
const DETECT: Duration = Duration::from_secs(4);

fn service_check() -> String {
    format!("-t {VIP}:80 --check http --url /health.html --digest {HEALTH_DIGEST} {TIMING}")
}

/// One real server: its nginx and document root.
struct Server {
    www: PathBuf,
    nginx: Daemon,
}

fn start_server(topo: &Topology, i: usize) -> Server {
    let dir = topo.dir().join(format!("rs{i}"));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("health.html"), HEALTH_PAGE).unwrap();
    std::fs::write(www.join("name.txt"), format!("server{i}\n")).unwrap();
    let nginx = nginx_in(&topo.servers, &dir, &format!("{}-{i}", topo.id()), &[format!("{}:8080", rip(i))], true);
    Server { www, nginx }
}

/// The fields of `server`'s line in `gwctl --health -L`: [prot, service, server, check,
/// state, weight, config, result, checks, failed, trans, since, reason...].
fn health_row(topo: &Topology, server: &str) -> Vec<String> {
    let listing = topo.gwctl(&["--health", "-L"]);
    listing
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(server))
        .unwrap_or_else(|| panic!("no {server} in\n{listing}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The weight `gwctl -Ln` shows for `rs`, or `None` while it is not listed.
fn listed_weight(topo: &Topology, rs: &str) -> Option<u32> {
    let listing = topo.gwctl(&["-Ln"]);
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4 && f[0] == "->" && f[1] == rs).then(|| f[3].parse().unwrap())
    })
}

/// The `-w` that `gwctl -Sn` saves for `rs`.
fn saved_weight(topo: &Topology, rs: &str) -> u32 {
    let saved = topo.gwctl(&["-Sn"]);
    let line = saved.lines().find(|l| l.contains(&format!("-r {rs} "))).unwrap_or_else(|| panic!("{saved}"));
    line.split(" -w ").nth(1).and_then(|w| w.split_whitespace().next()).unwrap().parse().unwrap()
}

/// Waits until `rs`'s weight in `-Ln` is `want`; returns how long it took.
fn wait_weight(topo: &Topology, rs: &str, want: Option<u32>, within: Duration) -> Duration {
    let start = Instant::now();
    assert!(
        wait_until(within, || listed_weight(topo, rs) == want),
        "{rs} not at weight {want:?} within {within:?}:\n{}\n{}\ngatewayd log:\n{}",
        topo.gwctl(&["-Ln"]),
        topo.gwctl(&["--health", "-L"]),
        topo.gatewayd_log()
    );
    start.elapsed()
}

/// A client on one keep-alive connection to the VIP: asks `/name.txt` at once, then again
/// each time the file `go` appears (and is removed); prints each answer's body.
const KEEPALIVE_CLIENT: &str = r#"
import http.client, os, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=10)
go = sys.argv[2]
for i in range(2):
    if i:
        while not os.path.exists(go):
            time.sleep(0.05)
        os.remove(go)
    c.request("GET", "/name.txt")
    r = c.getresponse()
    print(r.status, r.read().decode().strip(), flush=True)
"#;

#[test]
fn checks_inhibit_a_failing_server_and_restore_it_with_its_weight() {
    let mut options = Options {
        servers: 2,
        services: fnat_rules("-s rr", &["", ""]),
        director_netns: true,
        kernel: true,
        ..Options::default()
    };
    options.extra_config = format!("\"health\": [{:?}]", service_check());
    let topo = Topology::start("hc", options);
    let servers = [start_server(&topo, 0), start_server(&topo, 1)];
    topo.director().ip(&["addr", "add", &format!("{VIP}/32"), "dev", KERNEL_CLIENT]);
    topo.director().ip(&["addr", "add", &format!("{LIP}/32"), "dev", KERNEL_SERVERS]);
    let rs = [format!("{}:8080", rip(0)), format!("{}:8080", rip(1))];

    // The configuration file's check runs on both servers, inherited from the service.
    for r in &rs {
        assert!(
            wait_until(Duration::from_secs(5), || health_row(&topo, r)[7] == "ok"),
            "{r} never checked: {}\n{}",
            topo.gwctl(&["--health", "-L"]),
            topo.gatewayd_log()
        );
        let row = health_row(&topo, r);
        assert_eq!(&row[3..7], ["http*", "up", "1", "1"], "{row:?}");
    }
    assert!(wait_until(Duration::from_secs(10), || topo.curl(&format!("http://{VIP}/name.txt")).starts_with("server")));

    // A keep-alive connection lands on one server; that server's page goes (404).
    let go = topo.dir().join("go");
    let mut client = Command::new("ip")
        .args(["netns", "exec", topo.client.name(), "python3", "-c", KEEPALIVE_CLIENT, VIP, go.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut answers = BufReader::new(client.stdout.take().unwrap()).lines();
    let first = answers.next().unwrap().unwrap();
    let name = first.strip_prefix("200 ").unwrap_or_else(|| panic!("{first}")).to_string();
    let failing: usize = name.trim_start_matches("server").parse().unwrap();
    let (down, up) = (&rs[failing], &rs[1 - failing]);
    std::fs::remove_file(servers[failing].www.join("health.html")).unwrap();
    let detected = wait_weight(&topo, down, Some(0), DETECT);
    eprintln!("a 404 detected in {detected:?} (delay_loop 0.5 s, retry 1, delay_before_retry 0.2 s)");
    let row = health_row(&topo, down);
    assert_eq!(&row[4..8], ["down", "0", "1", "failed"], "{row:?}");
    assert_eq!(row[12..].join(" "), "status 404, expected 200");
    assert_eq!(saved_weight(&topo, down), 1, "-S saves the configured weight, not the checker's 0");
    // New connections all go to the other server; the kept-alive one carries on.
    for _ in 0..6 {
        assert_eq!(topo.curl(&format!("http://{VIP}/name.txt")), format!("server{}", 1 - failing));
    }
    std::fs::write(&go, "").unwrap();
    assert_eq!(answers.next().unwrap().unwrap(), format!("200 {name}"), "the existing connection continues");
    assert!(client.wait().unwrap().success());

    // A weight set by hand while down is the one it comes back with.
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {down} -b -w 3"));
    assert_eq!(listed_weight(&topo, down), Some(0), "the checker's 0 stays in force");
    assert_eq!(saved_weight(&topo, down), 3);
    std::fs::write(servers[failing].www.join("health.html"), HEALTH_PAGE).unwrap();
    let recovered = wait_weight(&topo, down, Some(3), DETECT);
    eprintln!("recovered after rise 2 in {recovered:?}");
    assert!(recovered >= Duration::from_millis(400), "two successes, 0.5 s apart: {recovered:?}");
    assert_eq!(health_row(&topo, down)[10], "2", "two transitions");

    // A wrong digest is down: the server's own check replaces the service's for it alone.
    topo.gwctl_line(&format!(
        "--health -t {VIP}:80 -r {up} --check http --url /health.html --digest 00000000000000000000000000000000 {TIMING}"
    ));
    wait_weight(&topo, up, Some(0), DETECT);
    assert_eq!(health_row(&topo, up)[3], "http", "its own check");
    assert!(health_row(&topo, up)[12..].join(" ").starts_with(&format!("digest {HEALTH_DIGEST}, expected 0000")));
    topo.gwctl_line(&format!("--health -D -t {VIP}:80 -r {up}"));
    wait_weight(&topo, up, Some(1), DETECT);
    assert_eq!(health_row(&topo, up)[3], "http*", "the service's check again");

    // MISC with misc_dynamic: exit 3 is up with weight 1, whatever the configured weight.
    let script = topo.dir().join("exit3.sh");
    std::fs::write(&script, "#!/bin/sh\n[ \"$GW_SERVER_PORT\" = 8080 ] || exit 1\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    topo.gwctl_line(&format!("-e -t {VIP}:80 -r {up} -b -w 5"));
    topo.gwctl_line(&format!(
        "--health -t {VIP}:80 -r {up} --check misc --script {} --dynamic --delay-loop 0.5",
        script.display()
    ));
    wait_weight(&topo, up, Some(1), DETECT);
    assert_eq!(saved_weight(&topo, up), 5);

    // TCP, with --on-failure remove: the server whose nginx stops is refused its
    // connections and leaves the service (as keepalived removes it), then comes back.
    topo.gwctl_line(&format!("--health -t {VIP}:80 -r {down} --check tcp {TIMING} --on-failure remove"));
    let [s0, s1] = servers;
    let (victim, _other) = if failing == 0 { (s0, s1) } else { (s1, s0) };
    drop(victim.nginx);
    wait_weight(&topo, down, None, DETECT);
    let row = health_row(&topo, down);
    assert_eq!(&row[3..6], ["tcp", "down", "-"], "out of the service: {row:?}");
    assert_eq!(row[12..].join(" "), "connection refused");
    assert!(!topo.gwctl(&["-Sn"]).contains(&format!("-r {down} ")), "out of -S too, as keepalived leaves it");
    let _restarted = nginx_in(
        &topo.servers,
        victim.www.parent().unwrap(),
        &format!("{}-{failing}b", topo.id()),
        std::slice::from_ref(down),
        true,
    );
    wait_weight(&topo, down, Some(3), DETECT);

    // Bad input is refused with a message naming it.
    for (line, status, message) in [
        (format!("--health -t {VIP}:80 --check ping"), 2, "unknown check `ping' specified (tcp, http, udp or misc)"),
        (format!("--health -t {VIP}:80 --check tcp --connect-timeout 0"), 2, "illegal --connect-timeout `0'"),
        (format!("--health -t {VIP}:80 --check http --url nopath"), 2, "illegal url `nopath' specified"),
        (
            format!("--health -t {VIP}:80 --check misc --script {}", topo.dir().join("gatewayd.json").display()),
            1,
            "is not an executable file",
        ),
        (format!("--health -t {VIP}:80 -r 192.168.1.99:8080 --check tcp"), 1, "192.168.1.99:8080"),
        ("--health -t 10.0.0.99:80 --check tcp".to_string(), 1, "service TCP 10.0.0.99:80 not defined"),
    ] {
        let out = topo.gwctl_output(&line.split_whitespace().collect::<Vec<_>>(), None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{line}: {err}");
        assert!(err.contains(message), "{line}: {err}");
    }
    let log = topo.gatewayd_log();
    assert!(log.contains(&format!("health: server {down} of TCP {VIP}:80 down (status 404, expected 200)")), "{log}");
}
