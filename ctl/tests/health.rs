//! `gwctl --health` through the real binary against an in-process control server: checks set,
//! listed (text and JSON) and deleted, with the refusals only the server can make. The
//! checker's thread does not run here (no probe, no transition): those are the gateway's
//! unit tests and the end-to-end `tests/health.rs`.

mod common;

use common::Gateway;

const SERVICE: &str = "-t 10.0.0.100:80";

fn setup(gw: &Gateway) {
    gw.ok(&format!("-A {SERVICE} -s rr"));
    gw.ok(&format!("-a {SERVICE} -r 192.168.1.10:8080 -m -w 3"));
    gw.ok(&format!("-a {SERVICE} -r 192.168.1.11:8080 -m"));
}

fn fails(gw: &Gateway, args: &str, code: i32, stderr: &str) {
    let o = gw.gwctl(args);
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (code, stderr, ""), "gwctl {args}");
}

#[test]
fn checks_are_set_listed_and_deleted() {
    let gw = Gateway::start("health-set");
    setup(&gw);
    gw.ok(&format!("--health {SERVICE} --check tcp --delay-loop 2"));
    gw.ok(&format!("--health {SERVICE} -r 192.168.1.11:8080 --check http --url /ok --status 204"));
    let listing = gw.gwctl("--health -L");
    assert_eq!(listing.code, 0, "{}", listing.stderr);
    assert_eq!(
        listing.stdout,
        "\
Prot LocalAddress:Port      RemoteAddress:Port          Check  State        Weight Config Result    Checks   Failed Trans   Since  Passive     Reason
TCP  10.0.0.100:80          192.168.1.10:8080           tcp*   up                3      3 -              0        0     0       -  -
TCP  10.0.0.100:80          192.168.1.11:8080           http   up                1      1 -              0        0     0       -  -
"
    );
    let json = gw.gwctl("--health -L --json");
    let servers: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(servers[0]["check"]["delay_loop_ms"], 2000);
    assert_eq!(servers[1]["check"]["kind"]["type"], "http");
    assert_eq!(servers[1]["check"]["kind"]["status"], 204);
    assert_eq!(servers[1]["inherited"], false);
    assert_eq!(servers[1]["state"], "up");

    // -L and -S are ipvsadm's, untouched by checks.
    let saved = gw.gwctl("-S -n").stdout;
    assert!(!saved.contains("health") && saved.contains("-r 192.168.1.10:8080 -m -w 3"), "{saved}");

    // The server's own check goes; the service's applies to it again.
    gw.ok(&format!("--health -D {SERVICE} -r 192.168.1.11:8080"));
    let listing = gw.gwctl("--health -L").stdout;
    assert!(listing.contains("192.168.1.11:8080           tcp*"), "{listing}");
    fails(
        &gw,
        &format!("--health -D {SERVICE} -r 192.168.1.11:8080"),
        1,
        "no health check of server 192.168.1.11:8080 of service TCP 10.0.0.100:80\n",
    );
    // A deleted server and a deleted service take their checks along.
    gw.ok(&format!("-d {SERVICE} -r 192.168.1.10:8080"));
    assert_eq!(gw.gwctl("--health -L").stdout.lines().count(), 2);
    gw.ok(&format!("-D {SERVICE}"));
    assert_eq!(gw.gwctl("--health -L").stdout.lines().count(), 1, "the title alone");
}

#[test]
fn bad_checks_are_refused_by_gwctl_or_the_gateway() {
    let gw = Gateway::start("health-bad");
    setup(&gw);
    let script = std::env::temp_dir().join(format!("gwctl-health-{}.sh", std::process::id()));
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    for (args, code, stderr) in [
        (
            format!("--health {SERVICE} --check icmp"),
            2,
            "unknown check `icmp' specified (tcp, http, https, udp or misc)\n",
        ),
        (format!("--health {SERVICE} --check tcp --retry 1001"), 2, "illegal --retry `1001' specified (0 to 1000)\n"),
        (
            format!("--health {SERVICE} --check http --digest 123"),
            2,
            "illegal digest `123' specified (an MD5 digest: 32 hex digits, as genhash prints it)\n",
        ),
        (
            format!("--health {SERVICE} --check https --host bad_name!"),
            1,
            "host \"bad_name!\" is neither a DNS name nor an address for the TLS SNI\n",
        ),
        (
            format!("--health {SERVICE} --check udp --script /bin/true"),
            2,
            "--script is an option of the misc check, not of `udp'\n",
        ),
        (
            format!("--health {SERVICE} -r 192.168.1.99:8080 --check tcp"),
            1,
            "real server 192.168.1.99:8080 not found in service TCP 10.0.0.100:80\n",
        ),
        ("--health -t 10.0.0.1:80 --check tcp".to_string(), 1, "service TCP 10.0.0.1:80 not defined\n"),
        (
            format!("--health {SERVICE} --check misc --script {}", script.display()),
            1,
            &format!("misc script {} is not an executable file (mode or type)\n", script.display()),
        ),
    ] {
        fails(&gw, &args, code, stderr);
    }
    std::fs::remove_file(&script).unwrap();
    assert_eq!(gw.gwctl("--health -L").stdout.lines().count(), 1, "nothing was set");
}

#[test]
fn passive_detection_is_set_listed_beside_checks_and_deleted() {
    let gw = Gateway::start("health-passive");
    setup(&gw);
    gw.ok(&format!("--health {SERVICE} -r 192.168.1.11:8080 --check tcp"));
    gw.ok(&format!("--health {SERVICE} --passive --passive-failures 5 --passive-backoff 1.5:60"));
    let listing = gw.gwctl("--health -L");
    assert_eq!(
        listing.stdout,
        "\
Prot LocalAddress:Port      RemoteAddress:Port          Check  State        Weight Config Result    Checks   Failed Trans   Since  Passive     Reason
TCP  10.0.0.100:80          192.168.1.10:8080           -      up                3      3 -              0        0     0       -  0/5
TCP  10.0.0.100:80          192.168.1.11:8080           tcp    up                1      1 -              0        0     0       -  0/5
",
        "{}",
        listing.stderr
    );
    let json = gw.gwctl("--health -L --json");
    let servers: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(servers[0]["check"], serde_json::Value::Null);
    assert_eq!(servers[0]["passive"]["config"]["failures"], 5);
    assert_eq!(servers[0]["passive"]["config"]["backoff_ms"], 1500);
    assert_eq!(servers[0]["passive"]["config"]["max_backoff_ms"], 60_000);
    assert_eq!(servers[0]["passive"]["state"], "serving");
    assert_eq!(servers[1]["check"]["kind"]["type"], "tcp");
    // Set again: replaced. Off: the active check stays alone.
    gw.ok(&format!("--health {SERVICE} --passive"));
    let json = gw.gwctl("--health -L --json");
    let servers: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(servers[0]["passive"]["config"]["failures"], 3, "the default");
    gw.ok(&format!("--health -D {SERVICE} --passive"));
    let listing = gw.gwctl("--health -L").stdout;
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(listing.contains("192.168.1.11:8080           tcp    up"), "{listing}");
    fails(&gw, &format!("--health -D {SERVICE} --passive"), 1, "no passive detection on service TCP 10.0.0.100:80\n");
    fails(
        &gw,
        &format!("--health {SERVICE} --passive --passive-backoff 5:1"),
        2,
        "illegal --passive-backoff `5:1' specified (seconds S or S:MAX, each 0.01 to 86400, MAX not under S)\n",
    );
    fails(&gw, "--health -t 10.0.0.1:80 --passive", 1, "service TCP 10.0.0.1:80 not defined\n");
    // A deleted service takes its passive detection along.
    gw.ok(&format!("--health {SERVICE} --passive"));
    gw.ok(&format!("-D {SERVICE}"));
    assert_eq!(gw.gwctl("--health -L").stdout.lines().count(), 1, "the title alone");
}
