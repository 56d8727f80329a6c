//! `gwctl --health`: sets and deletes health checks, lists the checker's state.
//!
//! The listing is one line per checked server: its service and address (always numeric: a
//! health listing is read while something is wrong, when name lookups are the last thing
//! wanted), the check, whether it is up, the weight in force beside the configured one (a
//! down, inhibited server: `0` of its configured weight), the last result and why, how long
//! ago it last changed state, and its counts. `--json` prints the reply's structure.

use std::net::SocketAddr;

use gwapi::api::{Reply, Request, VirtualService};
use gwapi::cmdline::health::HealthCommand;
use gwapi::cmdline::Globals;
use gwapi::health::{HealthState, ServerHealth};

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

/// The text listing.
pub fn list(servers: &[ServerHealth]) -> String {
    let mut out = format!(
        "{:<27} {:<27} {:<5} {:<5} {:>6} {:>6} {:<7} {:>8} {:>8} {:>5} {:>7}  {}\n",
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
        "Reason"
    );
    for s in servers {
        let check = if s.inherited { format!("{}*", s.check.kind.name()) } else { s.check.kind.name().to_string() };
        let state = match s.state {
            HealthState::Up => "up",
            HealthState::Down => "down",
        };
        let weight = s.weight.map_or("-".to_string(), |w| w.to_string());
        let since = s.since_change_secs.map_or("-".to_string(), |t| format!("{t}s"));
        let line = format!(
            "{:<27} {:<27} {:<5} {:<5} {:>6} {:>6} {:<7} {:>8} {:>8} {:>5} {:>7}  {}",
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
            s.reason
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
    use gwapi::health::{CheckKind, HealthCheckConfig};

    #[test]
    fn one_line_per_server_with_the_weight_in_force_beside_the_configured_one() {
        let vip = "10.0.0.100".parse().unwrap();
        let up = ServerHealth {
            service: VirtualService::Tcp { addr: vip, port: 80 },
            addr: "192.168.1.10".parse().unwrap(),
            port: 80,
            check: HealthCheckConfig::new(CheckKind::Tcp),
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
            check: HealthCheckConfig::new(CheckKind::Http { path: "/".into(), host: None, status: 200, digest: None }),
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
        assert_eq!(
            list(&[up, down, removed]),
            "\
Prot LocalAddress:Port      RemoteAddress:Port          Check State Weight Config Result    Checks   Failed Trans   Since  Reason
TCP  10.0.0.100:80          192.168.1.10:80             tcp*  up         3      3 ok            12        0     0       -  ok
TCP  10.0.0.100:80          192.168.1.11:8080           http  down       0      3 failed        13        2     1      7s  status 404, expected 200
TCP  10.0.0.100:80          192.168.1.12:8080           http  down       -      3 failed        13        2     1      7s  status 404, expected 200
"
        );
    }
}
