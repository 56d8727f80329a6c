//! gatewayd's life as an operator sees it: a worker that dies or stalls is
//! named in the log and makes the daemon exit non-zero (or, with
//! `"watchdog": {"on_failure": "continue"}`, shows in `gwctl stats`); a
//! second daemon on a taken socket stops before it touches a device; SIGHUP
//! is ignored; a closed stderr does not panic the shutdown; a bad command
//! line is refused with exit code 2 and the usage; configuration changes and
//! refused requests are logged (the refusals rate-limited), with timestamps,
//! or with syslog priorities under systemd, at the file's `"log_level"`.
//!
//! Workers are made to panic or stall with the gateway's failpoints
//! (`FAILPOINTS=worker-poll=...`), which only a gatewayd built with the
//! `failpoints` feature has: `cargo test --workspace` builds it so (this
//! crate's dev-dependency turns the feature on); alone, build it first with
//! `cargo build -p gateway --features failpoints`.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway_e2e::topology::VIP;
use gateway_e2e::{gatewayd_bin, run, wait_until, Options, Topology};

const NO_FAILPOINTS: &str =
    "the failpoint did not fire: is gatewayd built with the failpoints feature (cargo build -p gateway --features failpoints)?";

fn with_failpoint(action: &str, watchdog: &str) -> Options {
    Options {
        servers: 1,
        env: vec![("FAILPOINTS".into(), format!("worker-poll={action}")), ("RUST_BACKTRACE".into(), "0".into())],
        extra_config: format!(r#""watchdog": {watchdog}"#),
        ..Options::default()
    }
}

#[test]
fn a_worker_that_panics_is_named_and_gatewayd_exits_non_zero() {
    // The worker polls for 3 s (sleeping in its first iteration), then panics.
    let mut topo = Topology::start("wpx", with_failpoint("1*sleep(3000)->panic(injected failure)", "{}"));
    let status = topo.wait_gatewayd_exit(Duration::from_secs(20)).expect(NO_FAILPOINTS);
    let log = topo.gatewayd_log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("gatewayd: worker 0 (lcore 1) stopped: panicked: injected failure"), "{log}");
    assert!(!topo.socket().exists(), "the control socket is removed");
}

#[test]
fn a_stalled_worker_is_named_and_gatewayd_exits_non_zero() {
    let mut topo = Topology::start("wsx", with_failpoint("sleep(60000)", r#"{"stall_seconds": 2}"#));
    let started = Instant::now();
    let status = topo.wait_gatewayd_exit(Duration::from_secs(20)).expect(NO_FAILPOINTS);
    let log = topo.gatewayd_log();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("gatewayd: worker 0 (lcore 1) stalled: no poll for 2 s"), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "exits without waiting for the stuck lcore: {:?}",
        started.elapsed()
    );
    assert!(!topo.socket().exists(), "the control socket is removed");
}

#[test]
fn with_continue_a_stalled_then_dead_worker_shows_in_gwctl_stats() {
    let mut topo = Topology::start(
        "wpc",
        with_failpoint("1*sleep(5000)->panic(injected failure)", r#"{"stall_seconds": 1, "on_failure": "continue"}"#),
    );
    let stats = || topo.gwctl(&["stats"]);
    assert!(
        wait_until(Duration::from_secs(10), || stats().starts_with("worker 0 (lcore 1) stalled: no poll for ")),
        "{NO_FAILPOINTS}\n{}",
        stats()
    );
    assert!(
        wait_until(Duration::from_secs(15), || stats()
            .starts_with("worker 0 (lcore 1) stopped: panicked: injected failure\n")),
        "{}",
        stats()
    );
    // The daemon still answers and takes configuration it can keep.
    assert!(topo.gwctl(&["-Ln"]).contains("IP Virtual Server"));
    let log = topo.gatewayd_log();
    assert!(log.contains("worker 0 (lcore 1) stalled: no poll for 1 s"), "{log}");
    assert!(log.contains("worker 0 (lcore 1) stopped: panicked: injected failure"), "{log}");
    assert!(!log.contains("exiting"), "{log}");
    topo.stop();
}

#[test]
fn a_second_gatewayd_on_a_taken_socket_refuses_before_opening_its_ports() {
    let topo = Topology::start("dup", Options { servers: 1, ..Options::default() });
    let tap = format!("{}q", topo.id());
    assert!(tap.len() <= 15, "{tap}");
    let config = topo.dir().join("second.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"eal": ["-l", "0-1", "--no-pci", "--in-memory", "--file-prefix={tap}", "--vdev=net_tap0,iface={tap}"],
                "ports": [{{"device": "net_tap0", "name": "client", "addrs": ["10.9.0.254/24"]}}]}}"#
        ),
    )
    .unwrap();
    let mut second = KillOnDrop(
        Command::new(gatewayd_bin())
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(topo.socket())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Its tap would exist from the moment it opened the port: it never does.
    let deadline = Instant::now() + Duration::from_secs(15);
    while second.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let seen = Command::new("ip")
            .args(["link", "show", &tap])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(!seen.success(), "the second gatewayd opened its port before finding the socket taken");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = second.output();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "control socket {}: another server is listening on {}",
            topo.socket().display(),
            topo.socket().display()
        )),
        "{err}"
    );
    assert!(!err.contains("EAL"), "the EAL never started: {err}");
    // The first one is untouched.
    assert!(topo.gwctl(&["-Ln"]).contains("IP Virtual Server"));
}

#[test]
fn sighup_is_ignored_and_a_closed_stderr_does_not_panic_the_shutdown() {
    let mut topo = Topology::start("hup", Options { servers: 1, ..Options::default() });
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    run("kill", &["-HUP", &topo.gatewayd_pid().to_string()]);
    assert!(
        wait_until(Duration::from_secs(5), || topo.gatewayd_log().contains("WARN  gatewayd: SIGHUP ignored")),
        "{}",
        topo.gatewayd_log()
    );
    assert!(topo.gwctl(&["-Ln"]).contains(&format!("TCP  {VIP}:80 rr")), "the configuration survives SIGHUP");
    topo.stop();
    assert!(!topo.socket().exists(), "a clean exit removes the socket");

    // Again from the same file, as systemd runs it (stderr to journald: our
    // lines carry their syslog priority, no timestamp; DPDK's own are plain), with stderr a pipe whose
    // reader leaves once the daemon runs: the shutdown's log lines must not
    // panic on it.
    // systemd names the journal's stream by device and inode; so does this test.
    let (reader, writer) = std::io::pipe().unwrap();
    let pipe = std::fs::metadata(format!("/proc/self/fd/{}", writer.as_raw_fd())).unwrap();
    let mut daemon = KillOnDrop(
        Command::new(gatewayd_bin())
            .arg("--config")
            .arg(topo.config_path())
            .arg("--socket")
            .arg(topo.socket())
            .env("JOURNAL_STREAM", format!("{}:{}", pipe.dev(), pipe.ino()))
            .env_remove("GATEWAYD_LOG")
            .stdout(Stdio::piped())
            .stderr(writer)
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(reader);
    let mut line = String::new();
    while !line.contains("running") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "gatewayd ended before running");
    }
    assert!(line.starts_with("<6>gatewayd: running with 1 worker(s)"), "{line:?}");
    drop(stderr);
    run("kill", &["-TERM", &daemon.0.id().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while daemon.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = daemon.output();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {}: {printed}", out.status);
    assert!(!printed.contains("panicked"), "{printed}");
}

/// The log line containing `text`, if any.
fn log_line(log: &str, text: &str) -> Option<String> {
    log.lines().find(|l| l.contains(text)).map(str::to_owned)
}

#[test]
fn changes_and_refused_requests_are_logged_and_a_bad_log_level_is_refused() {
    let topo = Topology::start("log", Options { servers: 1, ..Options::default() });
    topo.gwctl_line(&format!("-A -t {VIP}:80 -s rr"));
    topo.gwctl(&["addr", "add", "10.0.0.77/32", "dev", "client"]);
    let log = topo.gatewayd_log();
    // One info line per applied request, stamped in RFC 3339 UTC.
    let changed = log_line(&log, "gatewayd: configuration changed: 1 change: add_service 1; generation ")
        .unwrap_or_else(|| panic!("{log}"));
    let (stamp, rest) = changed.split_once(' ').unwrap();
    assert!(
        stamp.len() == "2026-12-04T17:58:45.123Z".len() && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
        "{changed}"
    );
    assert!(rest.starts_with("INFO  gatewayd: configuration changed"), "{changed}");
    assert!(log.contains("INFO  gatewayd: configuration changed: 1 change: add_addr 1; generation "), "{log}");
    assert!(log.contains("INFO  gatewayd: address 10.0.0.77/32 added on client"), "{log}");

    // A refused request is a warning naming the request and the error.
    let missing = ["-a", "-t", "10.0.0.99:80", "-r", "10.0.0.98:80"];
    let out = topo.gwctl_output(&missing, None);
    assert!(!out.status.success());
    let log = topo.gatewayd_log();
    let refused = log_line(&log, "gatewayd: refused apply (change 0): ").unwrap_or_else(|| panic!("{log}"));
    assert!(refused.contains(" WARN  gatewayd: refused apply (change 0): ServiceNotFound: "), "{refused}");
    assert!(refused.contains("10.0.0.99:80"), "{refused}");
    assert!(!log.contains("configuration changed: 1 change: add_server"), "nothing applied: {log}");

    // A client looping on bad requests gets at most 10 lines a second logged;
    // the ones held back are counted, in the next line let through or, when
    // none comes, in a line of their own: every refusal is accounted for.
    let before = log.matches("gatewayd: refused ").count();
    let started = Instant::now();
    let tries = 40;
    for _ in 0..tries {
        assert!(!topo.gwctl_output(&missing, None).status.success());
    }
    let seconds = started.elapsed().as_secs() + 1;
    let logged = || topo.gatewayd_log().matches("gatewayd: refused ").count() - before;
    let suppressed = || -> usize {
        let log = topo.gatewayd_log();
        let count_after = |marker: &str| {
            log.lines()
                .filter_map(|l| l.split_once(marker))
                .map(|(_, rest)| rest.split(' ').next().unwrap().parse::<usize>().unwrap())
                .sum::<usize>()
        };
        count_after("; suppressed ") + count_after("gatewayd: suppressed ")
    };
    assert!(logged() as u64 <= 10 * (seconds + 1), "{} refusals logged in {seconds} s", logged());
    assert!(
        wait_until(Duration::from_secs(6), || logged() + suppressed() == tries),
        "{} logged + {} suppressed of {tries}:\n{}",
        logged(),
        suppressed(),
        topo.gatewayd_log()
    );
    if seconds <= 2 {
        assert!(suppressed() > 0, "{tries} refusals in {seconds} s, none suppressed");
    }

    // A log level that is none is refused at start, by --check-config too.
    let file = std::fs::read_to_string(topo.config_path()).unwrap();
    let bad = topo.config_path().with_file_name("bad-log-level.json");
    let with_level = file.replacen('{', r#"{"log_level": "nonsense", "#, 1);
    std::fs::write(&bad, with_level).unwrap();
    for check in [true, false] {
        let mut command = Command::new(gatewayd_bin());
        command.arg("--config").arg(&bad).arg("--socket").arg(topo.socket().with_file_name("bad.sock"));
        if check {
            command.arg("--check-config");
        }
        let out = command.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.starts_with("gatewayd: bad configuration: "), "{err}");
        assert!(
            err.contains(r#""log_level": "nonsense" is not a log level (one of error, warn, info, debug, trace)"#),
            "{err}"
        );
        assert!(!err.contains("EAL"), "refused before the EAL started: {err}");
    }
    // The running gateway was not disturbed.
    assert!(topo.gwctl(&["-Ln"]).contains(&format!("TCP  {VIP}:80 rr")));
}

/// A gatewayd this test started by hand, killed (by its PID) if the test fails.
struct KillOnDrop(Child);

impl KillOnDrop {
    /// Waits for the exit (after the caller's bounded wait) and collects the output.
    fn output(mut self) -> std::process::Output {
        let _ = self.0.kill();
        let mut out = std::process::Output { status: self.0.wait().unwrap(), stdout: Vec::new(), stderr: Vec::new() };
        use std::io::Read;
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_end(&mut out.stderr);
        }
        if let Some(mut o) = self.0.stdout.take() {
            let _ = o.read_to_end(&mut out.stdout);
        }
        out
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A command line gatewayd does not know is refused before anything is read
/// or started: exit code 2, what is wrong and the usage on stderr.
#[test]
fn a_bad_command_line_is_refused_with_exit_code_2() {
    let cases: [(&[&str], &str); 5] = [
        // The plain forwarder's flag: that is bench's l2fwd now.
        (&["--config", "/nonexistent/gw.json", "--pair", "net_tap0,net_tap1"], "unexpected argument '--pair' found"),
        (&[], "the following required arguments were not provided:\n  --config <FILE>"),
        (&["--config"], "a value is required for '--config <FILE>' but none was supplied"),
        (
            &["--socket", "/nonexistent/gw.sock", "--config", "/nonexistent/gw.json", "extra"],
            "unexpected argument 'extra' found",
        ),
        (&["--config", "/nonexistent/a.json", "--config", "/nonexistent/b.json"], "cannot be used multiple times"),
    ];
    for (args, want) in cases {
        let out = Command::new(gatewayd_bin()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.contains(want), "{args:?}: expected {want:?} in {err}");
        assert!(err.contains("try '--help'"), "{args:?}: points to the usage: {err}");
        assert!(!err.contains("bad configuration") && !err.contains("EAL"), "{args:?}: nothing read or started: {err}");
    }
    let help = Command::new(gatewayd_bin()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    assert!(
        text.contains("Usage: gatewayd") && text.contains("--config <FILE>") && text.contains("--socket <PATH>"),
        "{text}"
    );
}
