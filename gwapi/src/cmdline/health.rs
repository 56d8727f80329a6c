//! `gwctl --health ...`: health checks of real servers, in ipvsadm's style.
//!
//! ```text
//! gwctl --health -t|u|f service [-r server] --check tcp|http|https|udp|misc [check options] [timing]
//! gwctl --health -D -t|u|f service [-r server]
//! gwctl --health -t|u|f service --passive [--passive-failures N] [--passive-backoff S[:MAX]]
//! gwctl --health -D -t|u|f service --passive
//! gwctl --health -L [--json]
//! ```
//!
//! `--passive` turns on passive detection for a service (it is per service: no `-r`, no
//! check options beside it); `-D ... --passive` turns it off, leaving the active checks.
//!
//! Without `-r` the check is the service's, inherited by every server of it that has none of
//! its own. Durations are seconds (`0.5` allowed). Options that do not belong to the check
//! chosen are refused rather than ignored, so a typo'd command never installs a check that
//! silently differs from the one meant. What only gatewayd can judge (the script exists and
//! is executable, the service and server exist) it judges.

use std::net::IpAddr;

use super::{number, parse_fwmark, parse_service, virtual_service, Globals, ServiceArg, UsageError};
use crate::api::{Change, TransportProtocol, VirtualService};
use crate::health::{
    CheckKind, HealthCheckConfig, OnFailure, PassiveConfig, DEFAULT_PASSIVE_MAX_BACKOFF_MS, MAX_COUNT, MAX_INTERVAL_MS,
    MIN_INTERVAL_MS,
};
use crate::names::Names;

/// What a `--health` command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCommand {
    Set { service: VirtualService, server: Option<(IpAddr, u16)>, check: HealthCheckConfig },
    Delete { service: VirtualService, server: Option<(IpAddr, u16)> },
    SetPassive { service: VirtualService, passive: PassiveConfig },
    DeletePassive { service: VirtualService },
    List,
}

impl HealthCommand {
    /// The change a `Set` or `Delete` makes; `None` for `List`.
    pub fn change(&self) -> Option<Change> {
        match self {
            HealthCommand::Set { service, server, check } => {
                Some(Change::SetHealthCheck { service: *service, server: *server, check: check.clone() })
            }
            HealthCommand::Delete { service, server } => {
                Some(Change::DeleteHealthCheck { service: *service, server: *server })
            }
            HealthCommand::SetPassive { service, passive } => {
                Some(Change::SetPassive { service: *service, passive: *passive })
            }
            HealthCommand::DeletePassive { service } => Some(Change::DeletePassive { service: *service }),
            HealthCommand::List => None,
        }
    }
}

/// The options `--health` takes: (long name, short letter, takes a value).
const OPTIONS: &[(&str, Option<char>, bool)] = &[
    ("health", None, false),
    ("delete-service", Some('D'), false),
    ("list", Some('L'), false),
    ("tcp-service", Some('t'), true),
    ("udp-service", Some('u'), true),
    ("fwmark-service", Some('f'), true),
    ("real-server", Some('r'), true),
    ("check", None, true),
    ("url", None, true),
    ("host", None, true),
    ("status", None, true),
    ("digest", None, true),
    ("payload", None, true),
    ("expect", None, true),
    ("script", None, true),
    ("dynamic", None, false),
    ("connect-timeout", None, true),
    ("delay-loop", None, true),
    ("retry", None, true),
    ("delay-before-retry", None, true),
    ("rise", None, true),
    ("on-failure", None, true),
    ("passive", None, false),
    ("passive-failures", None, true),
    ("passive-backoff", None, true),
    ("json", None, false),
    ("socket", None, true),
];

/// Which check each check-specific option belongs to.
const CHECK_OPTIONS: &[(&str, &str)] = &[
    ("url", "http"),
    ("host", "http"),
    ("status", "http"),
    ("digest", "http"),
    ("payload", "udp"),
    ("expect", "udp"),
    ("script", "misc"),
    ("dynamic", "misc"),
];

/// Whether `args` is a `--health` command line.
pub fn is_health(args: &[String]) -> bool {
    args.iter().any(|a| a == "--health")
}

/// Parses a `--health` command line (without the program name).
pub fn parse(args: &[String], names: &Names) -> Result<(HealthCommand, Globals), UsageError> {
    let mut given: Vec<(&'static str, String)> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        let (spec, attached) = if let Some(long) = word.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let spec = OPTIONS
                .iter()
                .find(|o| o.0 == name)
                .ok_or_else(|| UsageError::fail(format!("{word}: unknown option for --health")))?;
            (spec, attached)
        } else if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('-');
            let spec = OPTIONS
                .iter()
                .find(|o| o.1 == Some(c))
                .ok_or_else(|| UsageError::fail(format!("-{c}: unknown option for --health")))?;
            let rest: String = chars.collect();
            (spec, (!rest.is_empty()).then_some(rest))
        } else {
            return Err(UsageError::fail(format!("unexpected argument {word}")));
        };
        let value = match (spec.2, attached) {
            (false, None) => String::new(),
            (false, Some(_)) => {
                return Err(UsageError::fail(format!("--{}: option does not take an argument", spec.0)))
            }
            (true, Some(v)) => v,
            (true, None) => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| UsageError::fail(format!("--{}: missing argument", spec.0)))?
            }
        };
        if given.iter().any(|(n, _)| *n == spec.0) {
            return Err(UsageError::fail(format!("multiple '{}' options specified", spec.0)));
        }
        given.push((spec.0, value));
        i += 1;
    }
    let get = |name: &str| given.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
    let globals = Globals { json: get("json").is_some(), socket: get("socket").map(Into::into) };

    if get("list").is_some() {
        if let Some((other, _)) = given.iter().find(|(n, _)| !matches!(*n, "health" | "list" | "json" | "socket")) {
            return Err(UsageError::fail(format!("Illegal '{other}' option with --health -L")));
        }
        return Ok((HealthCommand::List, globals));
    }

    let (service_arg, proto) = match (get("tcp-service"), get("udp-service"), get("fwmark-service")) {
        (Some(s), None, None) => (service(s, TransportProtocol::Tcp, names)?, TransportProtocol::Tcp),
        (None, Some(s), None) => (service(s, TransportProtocol::Udp, names)?, TransportProtocol::Udp),
        (None, None, Some(m)) => (ServiceArg::Fwmark { mark: parse_fwmark(m)?, ipv6: false }, TransportProtocol::Tcp),
        (None, None, None) => {
            return Err(UsageError::fail("You need to supply the 'service-address' option for --health"))
        }
        _ => return Err(UsageError::fail("multiple 'service-address' options specified")),
    };
    let service_port = match service_arg {
        ServiceArg::Inet { port, .. } => port,
        ServiceArg::Fwmark { .. } => 0,
    };
    let server = match get("real-server") {
        Some(raw) => {
            let (addr, port) = parse_service(raw, proto, names)
                .ok_or_else(|| UsageError::fail("illegal real server address[:port] specified"))?;
            Some((addr, port.unwrap_or(service_port)))
        }
        None => None,
    };
    let service = virtual_service(&service_arg);

    if get("passive").is_some() {
        if server.is_some() {
            return Err(UsageError::fail("--passive is set per service: -r is not taken with it"));
        }
        let delete = get("delete-service").is_some();
        if let Some((other, _)) = given.iter().find(|(n, _)| {
            !matches!(
                *n,
                "health"
                    | "passive"
                    | "delete-service"
                    | "tcp-service"
                    | "udp-service"
                    | "fwmark-service"
                    | "json"
                    | "socket"
            ) && (delete || !matches!(*n, "passive-failures" | "passive-backoff"))
        }) {
            let with = if delete { "--health -D --passive" } else { "--passive" };
            return Err(UsageError::fail(format!("Illegal '{other}' option with {with}")));
        }
        if delete {
            return Ok((HealthCommand::DeletePassive { service }, globals));
        }
        let mut passive = PassiveConfig::default();
        if let Some(v) = get("passive-failures") {
            passive.failures = number(v, 1, MAX_COUNT).ok_or_else(|| {
                UsageError::fail(format!("illegal --passive-failures `{v}' specified (1 to {MAX_COUNT})"))
            })?;
        }
        if let Some(v) = get("passive-backoff") {
            let bad = || {
                UsageError::fail(format!(
                    "illegal --passive-backoff `{v}' specified (seconds S or S:MAX, each {} to {}, MAX not under S)",
                    MIN_INTERVAL_MS as f64 / 1000.0,
                    MAX_INTERVAL_MS / 1000
                ))
            };
            let (first, max) = match v.split_once(':') {
                Some((a, b)) => (duration_ms(a).ok_or_else(bad)?, duration_ms(b).ok_or_else(bad)?),
                None => {
                    let first = duration_ms(v).ok_or_else(bad)?;
                    (first, first.max(DEFAULT_PASSIVE_MAX_BACKOFF_MS))
                }
            };
            if max < first {
                return Err(bad());
            }
            (passive.backoff_ms, passive.max_backoff_ms) = (first, max);
        }
        return Ok((HealthCommand::SetPassive { service, passive }, globals));
    }
    for option in ["passive-failures", "passive-backoff"] {
        if get(option).is_some() {
            return Err(UsageError::fail(format!("--{option} is an option of --passive")));
        }
    }

    if get("delete-service").is_some() {
        if let Some((other, _)) = given.iter().find(|(n, _)| {
            !matches!(
                *n,
                "health"
                    | "delete-service"
                    | "tcp-service"
                    | "udp-service"
                    | "fwmark-service"
                    | "real-server"
                    | "json"
                    | "socket"
            )
        }) {
            return Err(UsageError::fail(format!("Illegal '{other}' option with --health -D")));
        }
        return Ok((HealthCommand::Delete { service, server }, globals));
    }

    let kind_name =
        get("check").ok_or_else(|| UsageError::fail("You need to supply the 'check' option for --health"))?;
    for (option, belongs) in CHECK_OPTIONS {
        // The https check is the http check over TLS: it takes the same options.
        let same = *belongs == kind_name || (*belongs == "http" && kind_name == "https");
        if get(option).is_some() && !same {
            return Err(UsageError::fail(format!(
                "--{option} is an option of the {belongs} check, not of `{kind_name}'"
            )));
        }
    }
    let kind = match kind_name {
        "tcp" => CheckKind::Tcp,
        "http" | "https" => {
            let path = get("url").unwrap_or("/").to_string();
            if !path.starts_with('/') || path.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                return Err(UsageError::fail(format!(
                    "illegal url `{path}' specified (a path starting with /, without spaces)"
                )));
            }
            let host = get("host").map(str::to_string);
            if let Some(h) = &host {
                if h.is_empty() || h.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
                    return Err(UsageError::fail(format!("illegal host `{h}' specified")));
                }
            }
            let status = match get("status") {
                Some(s) => number(s, 100, 599)
                    .ok_or_else(|| UsageError::fail(format!("illegal status `{s}' specified (100..599)")))?
                    as u16,
                None => 200,
            };
            let digest = get("digest").map(|d| d.to_ascii_lowercase());
            if let Some(d) = &digest {
                if d.len() != 32 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(UsageError::fail(format!(
                        "illegal digest `{d}' specified (an MD5 digest: 32 hex digits, as genhash prints it)"
                    )));
                }
            }
            CheckKind::Http { path, host, status, digest, tls: kind_name == "https" }
        }
        "udp" => CheckKind::Udp {
            payload: get("payload").unwrap_or_default().to_string(),
            expect: get("expect").map(str::to_string),
        },
        "misc" => {
            let script = get("script")
                .ok_or_else(|| UsageError::fail("You need to supply the 'script' option for a misc check"))?;
            CheckKind::Misc { script: script.to_string(), dynamic: get("dynamic").is_some() }
        }
        other => {
            return Err(UsageError::fail(format!("unknown check `{other}' specified (tcp, http, https, udp or misc)")))
        }
    };
    let mut check = HealthCheckConfig::new(kind);
    let seconds = |name: &str, into: &mut u64| -> Result<(), UsageError> {
        if let Some(v) = get(name) {
            *into = duration_ms(v).ok_or_else(|| {
                UsageError::fail(format!(
                    "illegal --{name} `{v}' specified (seconds, {} to {})",
                    MIN_INTERVAL_MS as f64 / 1000.0,
                    MAX_INTERVAL_MS / 1000
                ))
            })?;
        }
        Ok(())
    };
    seconds("delay-loop", &mut check.delay_loop_ms)?;
    seconds("connect-timeout", &mut check.connect_timeout_ms)?;
    seconds("delay-before-retry", &mut check.delay_before_retry_ms)?;
    if let Some(v) = get("retry") {
        check.retry = number(v, 0, MAX_COUNT)
            .ok_or_else(|| UsageError::fail(format!("illegal --retry `{v}' specified (0 to {MAX_COUNT})")))?;
    }
    if let Some(v) = get("rise") {
        check.rise = number(v, 1, MAX_COUNT)
            .ok_or_else(|| UsageError::fail(format!("illegal --rise `{v}' specified (1 to {MAX_COUNT})")))?;
    }
    if let Some(v) = get("on-failure") {
        check.on_failure = match v {
            "inhibit" => OnFailure::Inhibit,
            "remove" => OnFailure::Remove,
            _ => return Err(UsageError::fail(format!("illegal --on-failure `{v}' specified (inhibit or remove)"))),
        };
    }
    Ok((HealthCommand::Set { service, server, check }, globals))
}

fn service(s: &str, proto: TransportProtocol, names: &Names) -> Result<ServiceArg, UsageError> {
    let (addr, port) = parse_service(s, proto, names)
        .ok_or_else(|| UsageError::fail("illegal virtual server address[:port] specified"))?;
    Ok(ServiceArg::Inet { proto, addr, port: port.unwrap_or(0) })
}

/// Seconds with up to three decimals (`1`, `0.5`, `2.25`) in milliseconds, within
/// [`MIN_INTERVAL_MS`]..=[`MAX_INTERVAL_MS`].
pub fn duration_ms(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 3 {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().ok()? };
    let ms = whole.checked_mul(1000)?.checked_add(frac)?;
    (MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&ms).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthCheckConfig;

    fn parse_line(line: &str) -> Result<HealthCommand, String> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args, &Names::none()).map(|(c, _)| c).map_err(|e| e.message.unwrap_or_default())
    }

    fn vs() -> VirtualService {
        VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 }
    }

    #[test]
    fn an_http_check_of_one_server_with_its_timing() {
        let got = parse_line(
            "--health -t 10.0.0.100:80 -r 192.168.1.10 --check http --url /health --status 204 \
             --digest 9B3A0C85A887A256D6939DA88AABD8CD --delay-loop 0.5 --connect-timeout 2 --retry 2 \
             --delay-before-retry 0.25 --rise 3 --on-failure remove",
        )
        .unwrap();
        let mut check = HealthCheckConfig::new(CheckKind::Http {
            path: "/health".into(),
            host: None,
            status: 204,
            digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
            tls: false,
        });
        check.delay_loop_ms = 500;
        check.connect_timeout_ms = 2000;
        check.retry = 2;
        check.delay_before_retry_ms = 250;
        check.rise = 3;
        check.on_failure = OnFailure::Remove;
        // The server's port is the service's, as with ipvsadm's -r.
        let server = Some(("192.168.1.10".parse().unwrap(), 80));
        assert_eq!(got, HealthCommand::Set { service: vs(), server, check });
    }

    #[test]
    fn an_https_check_takes_the_http_check_s_options() {
        let HealthCommand::Set { check, .. } = parse_line(
            "--health -t 10.0.0.100:443 --check https --url /health.html --host www.example --status 204 \
             --digest 9B3A0C85A887A256D6939DA88AABD8CD",
        )
        .unwrap() else {
            panic!("not a set")
        };
        assert_eq!(
            check.kind,
            CheckKind::Http {
                path: "/health.html".into(),
                host: Some("www.example".into()),
                status: 204,
                digest: Some("9b3a0c85a887a256d6939da88aabd8cd".into()),
                tls: true,
            }
        );
        assert_eq!(check.kind.name(), "https");
        let HealthCommand::Set { check, .. } = parse_line("--health -t 10.0.0.100:443 --check https").unwrap() else {
            panic!("not a set")
        };
        let defaults = CheckKind::Http { path: "/".into(), host: None, status: 200, digest: None, tls: true };
        assert_eq!(check.kind, defaults);
        // The API's JSON of an http check written before https existed still reads.
        let old: CheckKind = serde_json::from_str(r#"{"type":"http","path":"/"}"#).unwrap();
        assert_eq!(old, CheckKind::Http { path: "/".into(), host: None, status: 200, digest: None, tls: false });
    }

    #[test]
    fn defaults_are_keepalived_s() {
        let HealthCommand::Set { check, server: None, .. } =
            parse_line("--health -t 10.0.0.100:80 --check tcp").unwrap()
        else {
            panic!("not a service check")
        };
        assert_eq!((check.delay_loop_ms, check.connect_timeout_ms, check.retry, check.rise), (60_000, 5_000, 1, 1));
        assert_eq!(check.on_failure, OnFailure::Inhibit);
        let HealthCommand::Set { check, .. } =
            parse_line("--health -t 10.0.0.100:80 --check misc --script /bin/true --dynamic").unwrap()
        else {
            panic!("not a set")
        };
        assert_eq!(check.retry, 0, "MISC_CHECK does not retry by default");
        assert_eq!(check.kind, CheckKind::Misc { script: "/bin/true".into(), dynamic: true });
    }

    #[test]
    fn delete_and_list() {
        assert_eq!(
            parse_line("--health -D -t 10.0.0.100:80 -r 192.168.1.10:8080").unwrap(),
            HealthCommand::Delete { service: vs(), server: Some(("192.168.1.10".parse().unwrap(), 8080)) }
        );
        assert_eq!(parse_line("--health -L --json").unwrap(), HealthCommand::List);
    }

    #[test]
    fn bad_input_is_named() {
        for (line, message) in [
            (
                "--health -t 10.0.0.100:80 --check ping",
                "unknown check `ping' specified (tcp, http, https, udp or misc)",
            ),
            ("--health -t 10.0.0.100:80 --check http --url health", "illegal url `health' specified"),
            ("--health -t 10.0.0.100:80 --check https --url health", "illegal url `health' specified"),
            ("--health -t 10.0.0.100:80 --check https --host", "--host: missing argument"),
            (
                "--health -t 10.0.0.100:80 --check https --payload x",
                "--payload is an option of the udp check, not of `https'",
            ),
            ("--health -t 10.0.0.100:80 --check http --status 700", "illegal status `700' specified (100..599)"),
            ("--health -t 10.0.0.100:80 --check http --digest abc", "illegal digest `abc' specified"),
            ("--health -t 10.0.0.100:80 --check tcp --connect-timeout 0", "illegal --connect-timeout `0' specified"),
            ("--health -t 10.0.0.100:80 --check tcp --delay-loop 100000", "illegal --delay-loop `100000' specified"),
            ("--health -t 10.0.0.100:80 --check tcp --delay-loop 1.0001", "illegal --delay-loop `1.0001'"),
            ("--health -t 10.0.0.100:80 --check tcp --rise 0", "illegal --rise `0' specified (1 to 1000)"),
            ("--health -t 10.0.0.100:80 --check tcp --url /", "--url is an option of the http check, not of `tcp'"),
            ("--health -t 10.0.0.100:80 --check misc", "You need to supply the 'script' option for a misc check"),
            ("--health -t 10.0.0.100:80 --check tcp --on-failure drop", "illegal --on-failure `drop' specified"),
            ("--health -r 1.2.3.4 --check tcp", "You need to supply the 'service-address' option for --health"),
            ("--health -t 10.0.0.100:80", "You need to supply the 'check' option for --health"),
            ("--health -L -t 10.0.0.100:80", "Illegal 'tcp-service' option with --health -L"),
            ("--health -D -t 10.0.0.100:80 --check tcp", "Illegal 'check' option with --health -D"),
            ("--health -t 10.0.0.100:80 --check tcp --bogus", "--bogus: unknown option for --health"),
            ("--health -t 10.0.0.100:80 --check tcp --check http", "multiple 'check' options specified"),
        ] {
            let got = parse_line(line).unwrap_err();
            assert!(got.starts_with(message), "{line}: {got}");
        }
    }

    #[test]
    fn passive_detection_per_service_with_its_defaults() {
        assert_eq!(
            parse_line("--health -t 10.0.0.100:80 --passive").unwrap(),
            HealthCommand::SetPassive { service: vs(), passive: PassiveConfig::default() }
        );
        assert_eq!(
            parse_line("--health -t 10.0.0.100:80 --passive --passive-failures 5 --passive-backoff 2:60").unwrap(),
            HealthCommand::SetPassive {
                service: vs(),
                passive: PassiveConfig { failures: 5, backoff_ms: 2000, max_backoff_ms: 60_000 }
            }
        );
        // A first back-off past the default longest one is its own longest.
        let HealthCommand::SetPassive { passive, .. } =
            parse_line("--health -t 10.0.0.100:80 --passive --passive-backoff 600").unwrap()
        else {
            panic!("not passive")
        };
        assert_eq!((passive.backoff_ms, passive.max_backoff_ms), (600_000, 600_000));
        assert_eq!(
            parse_line("--health -D -t 10.0.0.100:80 --passive").unwrap(),
            HealthCommand::DeletePassive { service: vs() }
        );
        for (line, message) in [
            ("--health -t 10.0.0.100:80 -r 192.168.1.10 --passive", "--passive is set per service: -r is not taken"),
            ("--health -t 10.0.0.100:80 --passive --check tcp", "Illegal 'check' option with --passive"),
            ("--health -t 10.0.0.100:80 --passive --retry 2", "Illegal 'retry' option with --passive"),
            ("--health -t 10.0.0.100:80 --passive --passive-failures 0", "illegal --passive-failures `0' specified"),
            ("--health -t 10.0.0.100:80 --passive --passive-failures x", "illegal --passive-failures `x' specified"),
            ("--health -t 10.0.0.100:80 --passive --passive-backoff 10:5", "illegal --passive-backoff `10:5'"),
            ("--health -t 10.0.0.100:80 --passive --passive-backoff 0", "illegal --passive-backoff `0'"),
            ("--health -t 10.0.0.100:80 --passive --passive-backoff 1:", "illegal --passive-backoff `1:'"),
            (
                "--health -t 10.0.0.100:80 --check tcp --passive-failures 3",
                "--passive-failures is an option of --passive",
            ),
            (
                "--health -D -t 10.0.0.100:80 --passive --passive-backoff 2",
                "Illegal 'passive-backoff' option with --health -D --passive",
            ),
            ("--health -t 10.0.0.100:80 --passive --passive", "multiple 'passive' options specified"),
        ] {
            let got = parse_line(line).unwrap_err();
            assert!(got.starts_with(message), "{line}: {got}");
        }
    }

    #[test]
    fn durations_are_seconds_with_at_most_milliseconds() {
        assert_eq!(duration_ms("1"), Some(1000));
        assert_eq!(duration_ms("0.5"), Some(500));
        assert_eq!(duration_ms(".25"), Some(250));
        assert_eq!(duration_ms("0.001"), None, "under the 10 ms floor");
        assert_eq!(duration_ms("1e3"), None);
        assert_eq!(duration_ms(""), None);
        assert_eq!(duration_ms("-1"), None);
    }
}
