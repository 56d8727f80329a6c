//! Health checks built in: gatewayd checks its real servers with keepalived's semantics and
//! sets their weight through the normal configuration path.
//!
//! Probes travel each server's forwarding path, generated in gatewayd and sent by a worker:
//! - the checker's semantics: the director runs in a namespace of its own with kernel
//!   interfaces (gwk0, gwk1), as in production; two nginx instances (one per real server,
//!   each with its own document root) serve a FNAT service; the service's HTTP check
//!   (status and digest) comes from the configuration file's `"health"`, the rest is set
//!   with `gwctl --health`;
//! - FNAT and NAT: three servers behind both, with no kernel interface at all (the probes
//!   can only take the datapath); the servers' logs show each probe from the local address
//!   (FNAT) or the gateway's (NAT);
//! - https (keepalived's SSL_GET): nginx with a self-signed certificate behind FNAT, its
//!   page's status and digest judged over TLS, and a plain HTTP port failing the handshake;
//! - DR and TUN: a server that loses the VIP, or whose tunnel breaks, is down although it
//!   still answers at its own address (where keepalived's check looks).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway_e2e::health::{health_row, listed_weight, saved_weight};
use gateway_e2e::topology::{
    fnat_rules, nginx_in, nginx_with_tls_in, rip, Options, Topology, GW_SERVERS, KERNEL_CLIENT, KERNEL_SERVERS, LIP,
    VIP,
};
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

/// The same for a server that does not answer at all: each probe waits out its
/// `connect_timeout` (1 s), so detection takes two of them, the retry delay and up to a
/// delay loop.
const DETECT_SILENT: Duration = Duration::from_secs(6);

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
    assert_eq!(row[13..].join(" "), "status 404, expected 200");
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
    assert!(health_row(&topo, up)[13..].join(" ").starts_with(&format!("digest {HEALTH_DIGEST}, expected 0000")));
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
    assert_eq!(row[13..].join(" "), "connection refused");
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
        (
            format!("--health -t {VIP}:80 --check ping"),
            2,
            "unknown check `ping' specified (tcp, http, https, udp or misc)",
        ),
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

/// The probes' source ports (gatewayd's `net::probe::PROBE_PORTS`).
const PROBE_PORTS: std::ops::RangeInclusive<u16> = 64512..=65535;

/// The sources (address, port) of the requests for `/health.html` in `server`'s access log.
fn probe_sources(server: &Server) -> Vec<(String, u16)> {
    let log = std::fs::read_to_string(server.www.parent().unwrap().join("rs1.access")).unwrap_or_default();
    log.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

/// Waits until every server of `rows` (server column) was checked and is up.
fn wait_all_up(topo: &Topology, servers: &[String]) {
    for r in servers {
        assert!(
            wait_until(Duration::from_secs(10), || {
                let row = health_row(topo, r);
                row[4] == "up" && row[7] == "ok"
            }),
            "{r} not checked up: {}\n{}",
            topo.gwctl(&["--health", "-L"]),
            topo.gatewayd_log()
        );
    }
}

#[test]
fn fnat_and_nat_servers_are_probed_through_the_datapath() {
    let mut services = fnat_rules("-s rr", &["", "", ""]);
    services.push(format!("-A -t {VIP}:81 -s rr"));
    services.extend((0..3).map(|i| format!("-a -t {VIP}:81 -r {}:8080 -m", rip(i))));
    let checks = [80, 81].map(|port| format!("\"-t {VIP}:{port} --check http --url /health.html {TIMING}\""));
    let options = Options {
        servers: 3,
        servers_via_gateway: true,
        services,
        extra_config: format!("\"health\": [{}]", checks.join(", ")),
        ..Options::default()
    };
    let topo = Topology::start("hpn", options);
    let mut servers: Vec<Server> = (0..3).map(|i| start_server(&topo, i)).collect();
    let rs: Vec<String> = (0..3).map(|i| format!("{}:8080", rip(i))).collect();
    wait_all_up(&topo, &rs);
    for port in [80, 81] {
        assert!(wait_until(Duration::from_secs(10), || topo
            .curl(&format!("http://{VIP}:{port}/name.txt"))
            .starts_with("server")));
    }

    // No kernel interface: the probes left by the datapath, FNAT's from the local address,
    // NAT's from the gateway's, each from a probe port.
    let sources = probe_sources(&servers[0]);
    for from in [LIP, GW_SERVERS] {
        assert!(sources.iter().any(|(a, p)| a == from && PROBE_PORTS.contains(p)), "no probe from {from}: {sources:?}");
    }
    let stats = topo.stats();
    assert!(stats.counter("health probes sent") > 0 && stats.counter("health probe replies") > 0, "{}", stats.0);

    // Server 1's nginx stops: down in both services, and no request fails from then on.
    let victim = servers.remove(1);
    let dir = victim.www.parent().unwrap().to_path_buf();
    drop(victim.nginx);
    let detected = wait_weight(&topo, &rs[1], Some(0), DETECT);
    eprintln!("FNAT: a stopped server detected in {detected:?}");
    wait_weight_of(&topo, 81, &rs[1], Some(0), DETECT);
    assert_eq!(health_row(&topo, &rs[1])[13..].join(" "), "connection refused");
    for port in [80, 81] {
        for _ in 0..6 {
            let name = topo.curl(&format!("http://{VIP}:{port}/name.txt"));
            assert!(name == "server0" || name == "server2", "port {port}: {name:?}");
        }
    }

    // It comes back after `rise` successes.
    let _back = nginx_in(&topo.servers, &dir, &format!("{}-1b", topo.id()), std::slice::from_ref(&rs[1]), true);
    let recovered = wait_weight(&topo, &rs[1], Some(1), DETECT);
    eprintln!("FNAT: recovered in {recovered:?} (rise 2)");
    wait_weight_of(&topo, 81, &rs[1], Some(1), DETECT);
}

#[test]
fn https_checks_judge_the_page_over_tls_and_fail_a_plain_http_server() {
    // One service, two ports of one server: nginx speaks TLS on 8443 and plain HTTP on
    // 8080. The configuration file's https check is inherited by both.
    let (tls, plain) = (format!("{}:8443", rip(0)), format!("{}:8080", rip(0)));
    let services = vec![
        format!("-A -t {VIP}:443 -s rr"),
        format!("-P -t {VIP}:443 -z {LIP} -F servers"),
        format!("-a -t {VIP}:443 -r {tls} -b"),
        format!("-a -t {VIP}:443 -r {plain} -b"),
    ];
    let check = format!("-t {VIP}:443 --check https --url /health.html --digest {HEALTH_DIGEST} {TIMING}");
    let options = Options {
        servers: 1,
        servers_via_gateway: true,
        services,
        extra_config: format!("\"health\": [{check:?}]"),
        ..Options::default()
    };
    let topo = Topology::start("hs", options);
    let dir = topo.dir().join("rs-tls");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("health.html"), HEALTH_PAGE).unwrap();
    let _nginx = nginx_with_tls_in(
        &topo.servers,
        &dir,
        &format!("{}-tls", topo.id()),
        std::slice::from_ref(&plain),
        std::slice::from_ref(&tls),
        true,
    );

    // Up over TLS (the certificate, self-signed for another name, is not verified).
    wait_all_up(&topo, std::slice::from_ref(&tls));
    let row = health_row(&topo, &tls);
    assert_eq!(&row[3..8], ["https*", "up", "1", "1", "ok"], "{row:?}");
    // The TLS probes reached nginx's TLS server (its access log: rs2, the second block)
    // from the local address, through the datapath.
    let log = std::fs::read_to_string(dir.join("rs2.access")).unwrap_or_default();
    assert!(log.lines().any(|l| l.starts_with(&format!("{LIP} 200 "))), "{log}");

    // The plain HTTP port answers the hello with its 400: the handshake fails.
    wait_weight(&topo, &plain, Some(0), DETECT);
    let reason = health_row(&topo, &plain)[13..].join(" ");
    assert!(reason.starts_with("TLS handshake failed: "), "{reason}");
    eprintln!("a plain HTTP server under an https check: {reason}");

    // The page goes: down by its status, read over TLS; back after rise 2.
    std::fs::remove_file(www.join("health.html")).unwrap();
    let detected = wait_weight(&topo, &tls, Some(0), DETECT);
    eprintln!("https: a 404 detected in {detected:?}");
    assert_eq!(health_row(&topo, &tls)[13..].join(" "), "status 404, expected 200");
    std::fs::write(www.join("health.html"), "changed\n").unwrap();
    let wrong_digest = wait_until(DETECT, || health_row(&topo, &tls)[13..].join(" ").starts_with("digest "));
    let reason = health_row(&topo, &tls)[13..].join(" ");
    assert!(wrong_digest && reason.ends_with(&format!("expected {HEALTH_DIGEST}")), "{reason}");
    std::fs::write(www.join("health.html"), HEALTH_PAGE).unwrap();
    wait_weight(&topo, &tls, Some(1), DETECT);

    // Clients reach the TLS server through the VIP meanwhile (the plain one has weight 0).
    let page = topo.client.output("curl", &["-sk", "--max-time", "2", &format!("https://{VIP}/health.html")]);
    assert_eq!(String::from_utf8_lossy(&page.stdout), HEALTH_PAGE);
}

/// As [`wait_weight`], for the server `rs` of the TCP service on port `port` of the VIP.
fn wait_weight_of(topo: &Topology, port: u16, rs: &str, want: Option<u32>, within: Duration) {
    let service = format!("{VIP}:{port}");
    let weight = || {
        let listing = topo.gwctl(&["-Ln"]);
        let mut in_service = false;
        listing.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.first() == Some(&"TCP") {
                in_service = f.get(1) == Some(&service.as_str());
            }
            (in_service && f.len() >= 4 && f[0] == "->" && f[1] == rs).then(|| f[3].parse::<u32>().unwrap())
        })
    };
    assert!(
        wait_until(within, || weight() == want),
        "{rs} of {service} not at weight {want:?}:\n{}\n{}",
        topo.gwctl(&["-Ln"]),
        topo.gwctl(&["--health", "-L"])
    );
}

#[test]
fn dr_and_tun_servers_are_probed_at_the_vip_along_their_path() {
    let topo = Topology::start("hpd", Options { servers: 1, bypass: true, ..Options::default() });
    let tun_if = format!("{}t", topo.id());
    let start_decap = || {
        let decap = topo.servers.spawn("ipip-decap", env!("CARGO_BIN_EXE_ipip_decap"), &[&tun_if]);
        assert!(wait_until(Duration::from_secs(10), || decap.log().contains("ready")), "{}", decap.log());
        topo.servers.ip(&["link", "set", &tun_if, "up"]);
        topo.servers.sysctl(&format!("net.ipv4.conf.{tun_if}.rp_filter"), "0");
        decap
    };
    let decap = start_decap();
    topo.servers_hold_the_vip(&[&tun_if]);
    let rip0 = rip(0);
    // The server answers at the VIP (DR on 80, TUN on 81) and at its own address.
    let _nginx = topo.nginx_on(&[format!("{VIP}:80"), format!("{VIP}:81"), format!("{rip0}:80")], false);
    for (port, flag) in [(80, "-g"), (81, "-i")] {
        topo.gwctl_line(&format!("-A -t {VIP}:{port} -s rr"));
        topo.gwctl_line(&format!("-a -t {VIP}:{port} -r {rip0}:{port} {flag}"));
        topo.gwctl_line(&format!("--health -t {VIP}:{port} --check tcp {TIMING}"));
    }
    let (dr, tun) = (format!("{rip0}:80"), format!("{rip0}:81"));
    wait_all_up(&topo, &[dr.clone(), tun.clone()]);
    topo.wait_for_service(&format!("http://{VIP}:80/who"));

    // The tunnel breaks (its decapsulator stops): TUN is down, DR is not.
    drop(decap);
    let detected = wait_weight_of_timed(&topo, 81, &tun, Some(0));
    eprintln!("TUN: a broken tunnel detected in {detected:?}");
    assert_eq!(health_row(&topo, &tun)[13..].join(" "), "timed out after 1 s");
    assert_eq!(health_row(&topo, &dr)[4], "up");
    let _decap = start_decap();
    wait_weight_of(&topo, 81, &tun, Some(1), DETECT);

    // The VIP leaves the server's lo: both are down, though nginx still answers at RIP:80,
    // where a check from outside the forwarding path (keepalived's) would look.
    topo.servers.ip(&["addr", "del", &format!("{VIP}/32"), "dev", "lo"]);
    let detected = wait_weight_of_timed(&topo, 80, &dr, Some(0));
    eprintln!("DR: a server without the VIP detected in {detected:?}");
    wait_weight_of(&topo, 81, &tun, Some(0), DETECT_SILENT);
    let direct = topo.servers.output("curl", &["-s", "--max-time", "2", &format!("http://{rip0}:80/who")]);
    assert_eq!(String::from_utf8_lossy(&direct.stdout), "rs3\n", "still serving at its own address");
    topo.servers.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
    wait_weight_of(&topo, 80, &dr, Some(1), DETECT);
    wait_weight_of(&topo, 81, &tun, Some(1), DETECT);
    topo.wait_for_service(&format!("http://{VIP}:80/who"));
}

/// [`wait_weight_of`] within [`DETECT_SILENT`], returning how long it took.
fn wait_weight_of_timed(topo: &Topology, port: u16, rs: &str, want: Option<u32>) -> Duration {
    let start = Instant::now();
    wait_weight_of(topo, port, rs, want, DETECT_SILENT);
    start.elapsed()
}

/// TCP servers on every `address port` line of the file `argv[1]`: each accepts and closes at
/// once; prints "ready" when all listen.
const TCP_SERVERS: &str = r#"
import asyncio, sys
async def main():
    async def served(reader, writer):
        writer.close()
    for line in open(sys.argv[1]):
        addr, port = line.split()
        await asyncio.start_server(served, addr, int(port), backlog=64)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"#;

/// The probe load of a thousand servers checked each second: all come up and stay up, and
/// gwctl keeps answering. Prints the probes per second the workers carried, the checker's
/// CPU time and gwctl's latency (the figures the issue asks for).
#[test]
fn a_thousand_servers_checked_every_second() {
    const ADDRESSES: usize = 100;
    const PORTS: u16 = 10;
    let servers: Vec<(String, u16)> =
        (0..ADDRESSES).flat_map(|i| (0..PORTS).map(move |p| (rip(i), 9000 + p))).collect();
    let mut services = vec![format!("-A -t {VIP}:80 -s rr"), format!("-P -t {VIP}:80 -z {LIP} -F servers")];
    services.extend(servers.iter().map(|(a, p)| format!("-a -t {VIP}:80 -r {a}:{p} -b")));
    let check = "-t 10.0.0.100:80 --check tcp --delay-loop 1 --connect-timeout 1 --retry 1 --rise 1";
    let options = Options {
        servers: ADDRESSES as u8,
        services,
        extra_config: format!("\"health\": [{check:?}]"),
        ..Options::default()
    };
    let topo = Topology::start("hpk", options);
    let list = topo.dir().join("servers.txt");
    std::fs::write(&list, servers.iter().map(|(a, p)| format!("{a} {p}\n")).collect::<String>()).unwrap();
    let listeners = topo.servers.spawn("tcp-servers", "python3", &["-c", TCP_SERVERS, list.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(20), || listeners.log().contains("ready")), "{}", listeners.log());

    let up = |listing: &str| listing.lines().filter(|l| l.split_whitespace().nth(4) == Some("up")).count();
    let ok = |listing: &str| listing.lines().filter(|l| l.split_whitespace().nth(7) == Some("ok")).count();
    assert!(
        wait_until(Duration::from_secs(20), || ok(&topo.gwctl(&["--health", "-L"])) == servers.len()),
        "not every server checked ok:\n{}",
        topo.gatewayd_log()
    );

    // Ten seconds of steady state.
    let pid = topo.gatewayd_pid();
    let cpu = |thread: &str| thread_cpu_ticks(pid, thread);
    let (sent0, checker0, prober0, all0, start) = (
        topo.worker_counter("health probes sent"),
        cpu("gw-health"),
        cpu("gw-probe"),
        cpu_ticks(&format!("/proc/{pid}/stat")),
        Instant::now(),
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let asked = Instant::now();
        let listing = topo.gwctl(&["-Ln"]);
        slowest = slowest.max(asked.elapsed());
        assert_eq!(listing.lines().filter(|l| l.trim_start().starts_with("-> 192.168.")).count(), servers.len());
        std::thread::sleep(Duration::from_millis(900));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let probes = (topo.worker_counter("health probes sent") - sent0) as f64 / elapsed;
    let ticks = 100.0 * elapsed; // USER_HZ
    let (checker, prober, all) = (
        (cpu("gw-health") - checker0) as f64 / ticks,
        (cpu("gw-probe") - prober0) as f64 / ticks,
        (cpu_ticks(&format!("/proc/{pid}/stat")).unwrap_or(0) - all0.unwrap_or(0)) as f64 / ticks,
    );
    let listing = topo.gwctl(&["--health", "-L"]);
    assert_eq!(up(&listing), servers.len(), "a server flapped:\n{listing}");
    eprintln!(
        "{} servers, checked each second: {probes:.0} probe packets/s through the workers; checker thread {:.1}% \
         of a core, prober thread {:.1}%, gatewayd in all {:.1}%; slowest gwctl -Ln {slowest:?}",
        servers.len(),
        checker * 100.0,
        prober * 100.0,
        all * 100.0
    );
}

/// The user and system time (clock ticks) of gatewayd's threads named `name`.
fn thread_cpu_ticks(pid: u32, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| cpu_ticks(t.path().join("stat").to_str()?))
        .sum()
}

/// The user and system time (clock ticks) a `/proc/.../stat` file gives.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(stat).ok()?;
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}
