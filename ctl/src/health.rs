//! `gwctl --health`: sets and deletes health checks, lists the checker's state.
//!
//! The listing is one line per checked server: its service and address (always numeric: a
//! health listing is read while something is wrong, when name lookups are the last thing
//! wanted), the check, whether it is up, the weight in force beside the configured one (a
//! down, inhibited server: `0` of its configured weight), the last result and why, how long
//! ago it last changed state, and its counts. `--json` prints the reply's structure.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use gwapi::api::{Reply, Request, VirtualService};
use gwapi::cmdline::health::HealthCommand;
use gwapi::cmdline::Globals;
use gwapi::health::{CheckKind, HealthCheckConfig, HealthState, OnFailure, PassiveState, ServerHealth};

use crate::Io;

/// Runs a parsed `--health` command; returns the exit status (ipvsadm's: 1 refused, 2
/// unreachable).
pub fn run(command: &HealthCommand, globals: &Globals, io: &mut Io) -> i32 {
    let client = crate::client(globals);
    let request = match command.change() {
        Some(change) => Request::Apply { changes: vec![change] },
        None => Request::ListHealth,
    };
    let reply = match client.call(&request) {
        Ok(reply) => reply,
        Err(gwapi::ClientError::Refused(e)) => {
            let _ = writeln!(io.err, "{}", e.message);
            return 1;
        }
        Err(e) => {
            let _ = writeln!(io.err, "gwctl: {e}");
            return 2;
        }
    };
    match reply {
        Reply::Applied { .. } => 0,
        Reply::Health { servers } if globals.json => match serde_json::to_string_pretty(&servers) {
            Ok(text) => {
                let _ = writeln!(io.out, "{text}");
                0
            }
            Err(e) => {
                let _ = writeln!(io.err, "gwctl: cannot print the reply as JSON: {e}");
                1
            }
        },
        Reply::Health { servers } => {
            let _ = io.out.write_all(list(&servers).as_bytes());
            0
        }
        other => {
            let _ = writeln!(io.err, "gwctl: unexpected reply from gatewayd: {other:?}");
            1
        }
    }
}

/// The service as `-L`'s numeric form names it.
fn service_name(service: &VirtualService) -> String {
    match *service {
        VirtualService::Tcp { addr, port } => format!("TCP  {}", SocketAddr::new(addr, port)),
        VirtualService::Udp { addr, port } => format!("UDP  {}", SocketAddr::new(addr, port)),
        VirtualService::Fwmark { mark } => format!("FWM  {mark}"),
    }
}

/// The `--health` command line that sets `check` (numeric, every option written out), as
/// `gwctl --health` and the configuration file's `"health"` read it back.
pub fn command_line(service: &VirtualService, server: Option<(IpAddr, u16)>, check: &HealthCheckConfig) -> String {
    let mut line = match *service {
        VirtualService::Tcp { addr, port } => format!("--health -t {}", SocketAddr::new(addr, port)),
        VirtualService::Udp { addr, port } => format!("--health -u {}", SocketAddr::new(addr, port)),
        VirtualService::Fwmark { mark } => format!("--health -f {mark}"),
    };
    if let Some((addr, port)) = server {
        let _ = write!(line, " -r {}", SocketAddr::new(addr, port));
    }
    let _ = write!(line, " --check {}", check.kind.name());
    match &check.kind {
        CheckKind::Tcp => {}
        CheckKind::Http { path, host, status, digest, .. } => {
            let _ = write!(line, " --url {path}");
            if let Some(h) = host {
                let _ = write!(line, " --host {h}");
            }
            let _ = write!(line, " --status {status}");
            if let Some(d) = digest {
                let _ = write!(line, " --digest {d}");
            }
        }
        CheckKind::Udp { payload, expect } => {
            let _ = write!(line, " --payload {payload}");
            if let Some(e) = expect {
                let _ = write!(line, " --expect {e}");
            }
        }
        CheckKind::Misc { script, dynamic } => {
            let _ = write!(line, " --script {script}");
            if *dynamic {
                line.push_str(" --dynamic");
            }
        }
    }
    // f64's shortest form: 60000 is `60`, 1500 `1.5`, 10 `0.01`.
    let secs = |ms: u64| (ms as f64 / 1000.0).to_string();
    let on_failure = match check.on_failure {
        OnFailure::Inhibit => "inhibit",
        OnFailure::Remove => "remove",
    };
    let _ = write!(
        line,
        " --delay-loop {} --connect-timeout {} --retry {} --delay-before-retry {} --rise {} --on-failure {on_failure}",
        secs(check.delay_loop_ms),
        secs(check.connect_timeout_ms),
        check.retry,
        secs(check.delay_before_retry_ms),
        check.rise
    );
    line
}

/// The text listing. `Passive` is `-` without passive detection, else the failures in a
/// row against the ones that inhibit (`1/3`), the back-off left while it is down (`3/3 5s`),
/// or `trial`.
pub fn list(servers: &[ServerHealth]) -> String {
    let mut out = format!(
        "{:<27} {:<27} {:<6} {:<12} {:>6} {:>6} {:<7} {:>8} {:>8} {:>5} {:>7}  {:<10}  {}\n",
        "Prot LocalAddress:Port",
        "RemoteAddress:Port",
        "Check",
        "State",
        "Weight",
        "Config",
        "Result",
        "Checks",
        "Failed",
        "Trans",
        "Since",
        "Passive",
        "Reason"
    );
    for s in servers {
        let check = match &s.check {
            Some(c) if s.inherited => format!("{}*", c.kind.name()),
            Some(c) => c.kind.name().to_string(),
            None => "-".to_string(),
        };
        let state = match s.state {
            HealthState::Up => "up",
            HealthState::Down => "down",
            HealthState::PassiveDown => "passive-down",
        };
        let weight = s.weight.map_or("-".to_string(), |w| w.to_string());
        let since = s.since_change_secs.map_or("-".to_string(), |t| format!("{t}s"));
        let passive = match &s.passive {
            None => "-".to_string(),
            Some(p) => match p.state {
                PassiveState::Trial => "trial".to_string(),
                PassiveState::Serving => format!("{}/{}", p.streak, p.config.failures),
                PassiveState::Down => {
                    format!("{}/{} {}s", p.streak, p.config.failures, p.backoff_left_ms.unwrap_or(0).div_ceil(1000))
                }
            },
        };
        let reason = match (&s.passive, s.state, &s.check) {
            (Some(p), HealthState::PassiveDown, _) | (Some(p), _, None) => p.reason.as_str(),
            _ => s.reason.as_str(),
        };
        let line = format!(
            "{:<27} {:<27} {:<6} {:<12} {:>6} {:>6} {:<7} {:>8} {:>8} {:>5} {:>7}  {:<10}  {}",
            service_name(&s.service),
            SocketAddr::new(s.addr, s.port).to_string(),
            check,
            state,
            weight,
            s.configured_weight,
            s.last_result.as_deref().unwrap_or("-"),
            s.checks,
            s.failures,
            s.transitions,
            since,
            passive,
            reason
        );
        // No reason yet: no trailing blanks.
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gwapi::health::{PassiveConfig, PassiveCounts, PassiveHealth};
    use gwapi::names::Names;

    #[test]
    fn a_check_s_command_line_reads_back_as_the_same_check() {
        let vs = VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 };
        let server = Some(("192.168.1.10".parse().unwrap(), 8080));
        let mut http = HealthCheckConfig::new(CheckKind::Http {
            path: "/health".into(),
            host: Some("www.example.com".into()),
            status: 204,
            digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
            tls: false,
        });
        http.delay_loop_ms = 2500;
        let https = HealthCheckConfig::new(CheckKind::Http {
            path: "/health.html".into(),
            host: Some("www.example.com".into()),
            status: 200,
            digest: None,
            tls: true,
        });
        http.on_failure = OnFailure::Remove;
        let misc = HealthCheckConfig::new(CheckKind::Misc { script: "/bin/check".into(), dynamic: true });
        let udp = HealthCheckConfig::new(CheckKind::Udp { payload: "ping".into(), expect: Some("pong".into()) });
        for (service, server, check) in [
            (vs, server, http),
            (vs, None, https),
            (VirtualService::Fwmark { mark: 7 }, None, misc),
            (VirtualService::Udp { addr: "10.0.0.100".parse().unwrap(), port: 53 }, None, udp),
        ] {
            let line = command_line(&service, server, &check);
            let words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
            let (parsed, _) = gwapi::cmdline::health::parse(&words, &Names::none()).unwrap();
            assert_eq!(parsed, HealthCommand::Set { service, server, check }, "{line}");
        }
        assert_eq!(
            command_line(&vs, server, &HealthCheckConfig::new(CheckKind::Tcp)),
            "--health -t 10.0.0.100:80 -r 192.168.1.10:8080 --check tcp --delay-loop 60 --connect-timeout 5 \
             --retry 1 --delay-before-retry 1 --rise 1 --on-failure inhibit"
        );
    }

    #[test]
    fn one_line_per_server_with_the_weight_in_force_beside_the_configured_one() {
        let vip = "10.0.0.100".parse().unwrap();
        let up = ServerHealth {
            service: VirtualService::Tcp { addr: vip, port: 80 },
            addr: "192.168.1.10".parse().unwrap(),
            port: 80,
            check: Some(HealthCheckConfig::new(CheckKind::Tcp)),
            passive: None,
            inherited: true,
            state: HealthState::Up,
            configured_weight: 3,
            weight: Some(3),
            last_result: Some("ok".into()),
            reason: "ok".into(),
            since_change_secs: None,
            checks: 12,
            failures: 0,
            transitions: 0,
        };
        let down = ServerHealth {
            addr: "192.168.1.11".parse().unwrap(),
            port: 8080,
            check: Some(HealthCheckConfig::new(CheckKind::Http {
                path: "/".into(),
                host: None,
                status: 200,
                digest: None,
                tls: false,
            })),
            inherited: false,
            state: HealthState::Down,
            weight: Some(0),
            last_result: Some("failed".into()),
            reason: "status 404, expected 200".into(),
            since_change_secs: Some(7),
            checks: 13,
            failures: 2,
            transitions: 1,
            ..up.clone()
        };
        let removed = ServerHealth { addr: "192.168.1.12".parse().unwrap(), weight: None, ..down.clone() };
        // Passive detection alone: no check, its own state, back-off and reason.
        let passive = PassiveHealth {
            config: PassiveConfig::default(),
            state: PassiveState::Down,
            backoff_left_ms: Some(4200),
            streak: 3,
            counts: PassiveCounts { refused: 3, ..Default::default() },
            inhibitions: 1,
            reason: "3 new connections failed in a row (3 refused); inhibited for 5s".into(),
        };
        let passive_down = ServerHealth {
            addr: "192.168.1.13".parse().unwrap(),
            check: None,
            passive: Some(passive.clone()),
            inherited: false,
            state: HealthState::PassiveDown,
            weight: Some(0),
            last_result: None,
            reason: String::new(),
            since_change_secs: None,
            checks: 0,
            failures: 0,
            transitions: 0,
            ..up.clone()
        };
        let trial = ServerHealth {
            addr: "192.168.1.14".parse().unwrap(),
            state: HealthState::Up,
            weight: Some(3),
            passive: Some(PassiveHealth { state: PassiveState::Trial, backoff_left_ms: None, ..passive }),
            ..up.clone()
        };
        let https = ServerHealth {
            addr: "192.168.1.15".parse().unwrap(),
            check: Some(HealthCheckConfig::new(CheckKind::Http {
                path: "/".into(),
                host: None,
                status: 200,
                digest: None,
                tls: true,
            })),
            inherited: true,
            reason: "TLS handshake failed: corrupt message".into(),
            ..down.clone()
        };
        assert_eq!(
            list(&[up, down, removed, passive_down, trial, https]),
            "\
Prot LocalAddress:Port      RemoteAddress:Port          Check  State        Weight Config Result    Checks   Failed Trans   Since  Passive     Reason
TCP  10.0.0.100:80          192.168.1.10:80             tcp*   up                3      3 ok            12        0     0       -  -           ok
TCP  10.0.0.100:80          192.168.1.11:8080           http   down              0      3 failed        13        2     1      7s  -           status 404, expected 200
TCP  10.0.0.100:80          192.168.1.12:8080           http   down              -      3 failed        13        2     1      7s  -           status 404, expected 200
TCP  10.0.0.100:80          192.168.1.13:80             -      passive-down      0      3 -              0        0     0       -  3/3 5s      3 new connections failed in a row (3 refused); inhibited for 5s
TCP  10.0.0.100:80          192.168.1.14:80             tcp*   up                3      3 ok            12        0     0       -  trial       ok
TCP  10.0.0.100:80          192.168.1.15:8080           https* down              0      3 failed        13        2     1      7s  -           TLS handshake failed: corrupt message
"
        );
    }
}
