//! keepalived's `virtual_server` blocks as gatewayd's services, real servers and health
//! checks.
//!
//! Every keyword inside a `virtual_server` is either mapped or refused with its line: none
//! is dropped, since a check or an option silently left out would make the imported
//! gateway differ from the director it replaces. The blocks of keepalived.conf that are
//! not the LVS part (VRRP, `global_defs`, ...) are skipped whole: gatewayd leaves them to
//! keepalived itself, which can keep running them beside it.
//!
//! DPVS's keepalived (the fullnat one) adds `lb_kind FNAT`, `syn_proxy`, and the top-level
//! `local_address_group NAME { ADDRESS IFNAME ... }` a service names with
//! `laddr_group_name`: they map to `-b`, `-j enable` and `-P` local addresses.
//!
//! keepalived's defaults apply where a keyword is absent: `delay_loop` 60 s,
//! `connect_timeout` 5 s, `retry` 1 (`MISC_CHECK`: 0), `delay_before_retry` 1 s, protocol
//! TCP, `lvs_method` NAT, `lvs_sched` wlc (ipvsadm's), weight 1, a real server's port the
//! service's, and a failed server removed from the service unless `inhibit_on_failure`
//! (of the `virtual_server` or of the `real_server`) keeps it at weight 0. A real server
//! without a checker is not checked, as in keepalived.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gwapi::addr::mask_prefix_len;
use gwapi::api::{Change, Forwarding, LaddrConfig, PersistenceConfig, ServerConfig, ServiceConfig, VirtualService};
use gwapi::cmdline::health::duration_ms;
use gwapi::cmdline::{number, MAX_TIMEOUT};
use gwapi::health::{CheckKind, HealthCheckConfig, OnFailure, MAX_COUNT};

use super::syntax::Statement;

/// The top-level blocks that are not the LVS part: skipped whole.
pub const SKIPPED_BLOCKS: &[&str] = &[
    "global_defs",
    "vrrp_instance",
    "vrrp_sync_group",
    "vrrp_script",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "garp_group",
];

/// One `virtual_server`, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedService {
    /// The line of its `virtual_server`.
    pub line: usize,
    pub config: ServiceConfig,
    pub servers: Vec<ImportedServer>,
    /// A fullnat service's local addresses (`laddr_group_name`), each with the line that
    /// names it.
    pub laddrs: Vec<(usize, LaddrConfig)>,
}

/// One `real_server`, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedServer {
    pub line: usize,
    pub config: ServerConfig,
    /// Its checker's check; `None` without one.
    pub check: Option<HealthCheckConfig>,
}

/// What a keepalived.conf imports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Import {
    pub services: Vec<ImportedService>,
    /// The top-level blocks skipped: (line, keyword).
    pub skipped: Vec<(usize, String)>,
    /// Where gatewayd's check is stricter than keepalived's: (line, what differs).
    pub notes: Vec<(usize, String)>,
}

impl Import {
    /// The changes that apply it, in one request, each with the line it comes from: each
    /// service, then its servers, then their checks (a check names a server that must
    /// exist).
    pub fn changes(&self) -> Vec<(usize, Change)> {
        let mut changes = Vec::new();
        for s in &self.services {
            let vs = s.config.service;
            changes.push((s.line, Change::AddService { service: s.config.clone() }));
            changes.extend(
                s.laddrs.iter().map(|(line, laddr)| (*line, Change::AddLaddr { service: vs, laddr: laddr.clone() })),
            );
            changes.extend(s.servers.iter().map(|r| (r.line, Change::AddServer { service: vs, server: r.config })));
            changes.extend(s.servers.iter().filter_map(|r| {
                let check = r.check.clone()?;
                Some((
                    r.line,
                    Change::SetHealthCheck { service: vs, server: Some((r.config.addr, r.config.port)), check },
                ))
            }));
        }
        changes
    }
}

/// A keyword that cannot be imported, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: usize,
    pub keyword: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a keyword gwctl maps in that block (`within`).
    Unknown { within: &'static str },
    /// A keepalived feature gatewayd does not have, and why.
    Unsupported(String),
    /// A value that is not what the keyword takes.
    BadValue { value: String, expected: &'static str },
    /// Too few or too many values.
    ValueCount { expected: &'static str },
    /// A block where a value was expected, or the other way round.
    Shape { expected: &'static str },
    /// Given twice in one block.
    Repeated { first: usize },
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, k) = (self.line, &self.keyword);
        match &self.problem {
            Problem::Unknown { within } => write!(f, "line {line}: unknown keyword `{k}' in {within}"),
            Problem::Unsupported(why) => write!(f, "line {line}: `{k}' is not supported: {why}"),
            Problem::BadValue { value, expected } => {
                write!(f, "line {line}: {k}: invalid value `{value}' (expected {expected})")
            }
            Problem::ValueCount { expected } => write!(f, "line {line}: {k}: expected {expected}"),
            Problem::Shape { expected } => write!(f, "line {line}: {k}: expected {expected}"),
            Problem::Repeated { first } => write!(f, "line {line}: {k} given twice (first at line {first})"),
        }
    }
}

impl std::error::Error for ImportError {}

fn error(s: &Statement, problem: Problem) -> ImportError {
    ImportError { line: s.line, keyword: s.keyword.clone(), problem }
}

fn unsupported(s: &Statement, why: impl Into<String>) -> ImportError {
    error(s, Problem::Unsupported(why.into()))
}

/// The one value of a keyword without a block.
fn one_value(s: &Statement) -> Result<&str, ImportError> {
    match (s.values.as_slice(), &s.block) {
        ([v], None) => Ok(v),
        (_, Some(_)) => Err(error(s, Problem::Shape { expected: "a value, not a block" })),
        _ => Err(error(s, Problem::ValueCount { expected: "one value" })),
    }
}

/// A flag: no value, no block.
fn flag(s: &Statement) -> Result<(), ImportError> {
    match (s.values.is_empty(), &s.block) {
        (true, None) => Ok(()),
        (_, Some(_)) => Err(error(s, Problem::Shape { expected: "no block" })),
        (false, None) => Err(error(s, Problem::ValueCount { expected: "no value" })),
    }
}

fn inner(s: &Statement) -> Result<&[Statement], ImportError> {
    s.block.as_deref().ok_or_else(|| error(s, Problem::Shape { expected: "a block in braces" }))
}

fn integer(s: &Statement, min: u32, max: u32, expected: &'static str) -> Result<u32, ImportError> {
    let v = one_value(s)?;
    number(v, min, max).ok_or_else(|| error(s, Problem::BadValue { value: v.into(), expected }))
}

fn seconds(s: &Statement) -> Result<u64, ImportError> {
    let v = one_value(s)?;
    duration_ms(v).ok_or_else(|| error(s, Problem::BadValue { value: v.into(), expected: "seconds, 0.01 to 86400" }))
}

fn address(s: &Statement, v: &str) -> Result<IpAddr, ImportError> {
    v.parse().map_err(|_| error(s, Problem::BadValue { value: v.into(), expected: "an IP address" }))
}

fn port(s: &Statement, v: &str) -> Result<u16, ImportError> {
    number(v, 0, 65535)
        .map(|p| p as u16)
        .ok_or_else(|| error(s, Problem::BadValue { value: v.into(), expected: "a port, 0 to 65535" }))
}

/// keepalived's older spellings and the keyword each stands for.
const ALIASES: &[(&str, &str)] = &[("lb_algo", "lvs_sched"), ("lb_kind", "lvs_method"), ("nb_get_retry", "retry")];

/// The keyword `keyword` stands for.
fn canonical(keyword: &str) -> &str {
    ALIASES.iter().find(|(alias, _)| *alias == keyword).map_or(keyword, |(_, k)| k)
}

/// Refuses a keyword seen before in the same block, under either of its spellings (`seen`
/// holds the block's keywords).
fn once<'a>(s: &'a Statement, seen: &mut Vec<(&'a str, usize)>) -> Result<(), ImportError> {
    let keyword = canonical(&s.keyword);
    if let Some(&(_, first)) = seen.iter().find(|(k, _)| *k == keyword) {
        return Err(error(s, Problem::Repeated { first }));
    }
    seen.push((keyword, s.line));
    Ok(())
}

/// Maps a whole keepalived.conf (read by [`super::syntax::parse`]); every keyword that
/// cannot be mapped is in the error list, in file order.
pub fn import(statements: &[Statement]) -> Result<Import, Vec<ImportError>> {
    let mut out = Import::default();
    let mut errors = Vec::new();
    // Groups first: a virtual_server may name one defined further down.
    let mut groups = Vec::new();
    for s in statements.iter().filter(|s| s.keyword == "local_address_group") {
        match local_address_group(s) {
            Ok(group) => groups.push(group),
            Err(mut e) => errors.append(&mut e),
        }
    }
    for s in statements {
        match s.keyword.as_str() {
            "local_address_group" => {}
            "virtual_server" => match virtual_server(s, &groups) {
                Ok(service) => out.services.push(service),
                Err(mut e) => errors.append(&mut e),
            },
            k if SKIPPED_BLOCKS.contains(&k) => out.skipped.push((s.line, s.keyword.clone())),
            "virtual_server_group" => errors.push(unsupported(
                s,
                "virtual_server groups are not imported: write one virtual_server per address and port",
            )),
            _ => errors.push(error(s, Problem::Unknown { within: "keepalived.conf's top level" })),
        }
    }
    if errors.is_empty() {
        out.notes = stricter_checks(statements);
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The HTTP_GET urls without a status_code: keepalived takes any 2xx there, gatewayd's
/// check one status, 200.
fn stricter_checks(statements: &[Statement]) -> Vec<(usize, String)> {
    let mut notes = Vec::new();
    for s in statements {
        let block = s.block.as_deref().unwrap_or_default();
        if s.keyword == "url" && !block.iter().any(|u| u.keyword == "status_code") {
            notes.push((
                s.line,
                "url without status_code: gatewayd expects 200 (keepalived any 2xx); add status_code for another"
                    .into(),
            ));
        }
        notes.extend(stricter_checks(block));
    }
    notes
}

/// DPVS keepalived's `local_address_group NAME { ADDRESS IFNAME ... }`: a fullnat
/// service's local addresses (`-P -z ADDRESS -F IFNAME`).
struct LocalAddressGroup<'a> {
    name: &'a str,
    laddrs: Vec<(usize, LaddrConfig)>,
}

fn local_address_group(g: &Statement) -> Result<LocalAddressGroup<'_>, Vec<ImportError>> {
    let name = one_value_of_block(g).map_err(|e| vec![e])?;
    let mut laddrs = Vec::new();
    let mut errors = Vec::new();
    for s in inner(g).map_err(|e| vec![e])? {
        let entry = match (s.values.as_slice(), &s.block) {
            ([ifname], None) => address(s, &s.keyword).map(|addr| LaddrConfig { addr, ifname: ifname.clone() }),
            _ => Err(error(s, Problem::ValueCount { expected: "ADDRESS IFNAME (one address a line, no range)" })),
        };
        match entry {
            Ok(laddr) => laddrs.push((s.line, laddr)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(LocalAddressGroup { name, laddrs })
    } else {
        Err(errors)
    }
}

/// The one value before a block (`local_address_group NAME {`).
fn one_value_of_block(s: &Statement) -> Result<&str, ImportError> {
    match s.values.as_slice() {
        [v] => Ok(v),
        _ => Err(error(s, Problem::ValueCount { expected: "one name before the block" })),
    }
}

/// What a virtual_server's `real_server`s inherit from it.
struct ServiceDefaults {
    service: VirtualService,
    forwarding: Forwarding,
    delay_loop_ms: u64,
    inhibit: bool,
    virtualhost: Option<String>,
}

fn virtual_server(vs: &Statement, groups: &[LocalAddressGroup]) -> Result<ImportedService, Vec<ImportError>> {
    let mut errors = Vec::new();
    let block = inner(vs).map_err(|e| vec![e])?;
    // The address: the protocol is known only once the block is read.
    enum Address {
        Inet(IpAddr, u16),
        Fwmark(u32),
    }
    let address = match vs.values.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["fwmark", mark] => number(mark, 1, u32::MAX).map(Address::Fwmark).ok_or_else(|| {
            error(vs, Problem::BadValue { value: mark.to_string(), expected: "a mark, 1 to 4294967295" })
        }),
        ["group", _] => Err(unsupported(
            vs,
            "virtual_server groups are not imported: write one virtual_server per address and port",
        )),
        [addr, p] => address(vs, addr).and_then(|a| Ok(Address::Inet(a, port(vs, p)?))),
        _ => Err(error(vs, Problem::ValueCount { expected: "ADDRESS PORT, fwmark MARK or group NAME" })),
    };
    // A bad address is one error; the block is still read for the others.
    let address = address.unwrap_or_else(|e| {
        errors.push(e);
        Address::Fwmark(1)
    });

    let mut seen = Vec::new();
    let mut scheduler = "wlc".to_string();
    let mut forwarding = Forwarding::Masq;
    let mut persistence_timeout = None;
    let mut granularity: Option<(&Statement, &str)> = None;
    let mut udp = false;
    let mut defaults_delay = gwapi::health::DEFAULT_DELAY_LOOP_MS;
    let mut inhibit = false;
    let mut virtualhost = None;
    let mut synproxy = false;
    let mut laddrs = Vec::new();
    let mut real_servers = Vec::new();
    for s in block {
        if s.keyword != "real_server" {
            if let Err(e) = once(s, &mut seen) {
                errors.push(e);
                continue;
            }
        }
        let mapped: Result<(), ImportError> = (|| {
            match s.keyword.as_str() {
                "real_server" => real_servers.push(s),
                "lvs_sched" | "lb_algo" => {
                    let v = one_value(s)?;
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        return Err(error(s, Problem::BadValue { value: v.into(), expected: "a scheduler name" }));
                    }
                    scheduler = v.to_string();
                }
                "lvs_method" | "lb_kind" => {
                    forwarding = match one_value(s)? {
                        "NAT" => Forwarding::Masq,
                        "DR" => Forwarding::Route,
                        "TUN" => Forwarding::Tunnel,
                        // DPVS's keepalived spells fullnat so.
                        "FNAT" => Forwarding::FullNat,
                        v => {
                            return Err(error(
                                s,
                                Problem::BadValue { value: v.into(), expected: "NAT, DR, TUN or FNAT" },
                            ))
                        }
                    }
                }
                "persistence_timeout" => {
                    persistence_timeout = Some(integer(s, 1, MAX_TIMEOUT, "seconds, 1 to 2678400")?);
                }
                "persistence_granularity" => granularity = Some((s, one_value(s)?)),
                "protocol" => {
                    udp = match one_value(s)? {
                        "TCP" => false,
                        "UDP" => true,
                        "SCTP" => return Err(unsupported(s, "gatewayd balances TCP and UDP")),
                        v => return Err(error(s, Problem::BadValue { value: v.into(), expected: "TCP or UDP" })),
                    }
                }
                "delay_loop" => defaults_delay = seconds(s)?,
                "inhibit_on_failure" => {
                    flag(s)?;
                    inhibit = true;
                }
                "virtualhost" => virtualhost = Some(one_value(s)?.to_string()),
                // DPVS keepalived's.
                "syn_proxy" => {
                    flag(s)?;
                    synproxy = true;
                }
                "laddr_group_name" => {
                    let name = one_value(s)?;
                    let group = groups.iter().find(|g| g.name == name).ok_or_else(|| {
                        error(
                            s,
                            Problem::BadValue { value: name.into(), expected: "the name of a local_address_group" },
                        )
                    })?;
                    laddrs = group.laddrs.clone();
                }
                _ => return Err(error(s, Problem::Unknown { within: "virtual_server" })),
            }
            Ok(())
        })();
        if let Err(e) = mapped {
            errors.push(e);
        }
    }

    let service = match address {
        Address::Inet(addr, port) if udp => VirtualService::Udp { addr, port },
        Address::Inet(addr, port) => VirtualService::Tcp { addr, port },
        Address::Fwmark(mark) => VirtualService::Fwmark { mark },
    };
    let v6 = matches!(address, Address::Inet(IpAddr::V6(_), _));
    let netmask = match granularity {
        None if v6 => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
        None => IpAddr::V4(Ipv4Addr::BROADCAST),
        Some((s, v)) => {
            let mask = if v6 {
                number(v, 1, 128).map(|bits| IpAddr::V6(Ipv6Addr::from(u128::MAX << (128 - bits))))
            } else {
                v.parse::<Ipv4Addr>().ok().map(IpAddr::V4).filter(|m| mask_prefix_len(*m).is_some())
            };
            match mask {
                Some(m) => m,
                None => {
                    let expected = if v6 { "a prefix length, 1 to 128" } else { "a contiguous netmask" };
                    errors.push(error(s, Problem::BadValue { value: v.into(), expected }));
                    IpAddr::V4(Ipv4Addr::BROADCAST)
                }
            }
        }
    };
    if let (Some((s, _)), None) = (granularity, persistence_timeout) {
        errors.push(unsupported(s, "persistence_granularity without persistence_timeout"));
    }
    let config = ServiceConfig {
        service,
        scheduler,
        persistence: persistence_timeout.map(|timeout| PersistenceConfig { timeout, netmask }),
        one_packet: false,
        synproxy,
        // keepalived.conf has no PROXY protocol keyword.
        proxy_protocol: None,
    };
    if let (Some(s), false) = (seen.iter().find(|(k, _)| *k == "laddr_group_name"), forwarding == Forwarding::FullNat) {
        errors.push(ImportError {
            line: s.1,
            keyword: s.0.to_string(),
            problem: Problem::Unsupported("local addresses are a fullnat (lb_kind FNAT) service's".into()),
        });
    }
    let defaults = ServiceDefaults { service, forwarding, delay_loop_ms: defaults_delay, inhibit, virtualhost };
    let mut imported = ImportedService { line: vs.line, config, servers: Vec::new(), laddrs };
    for rs in real_servers {
        match real_server(rs, &defaults) {
            Ok((config, check)) => imported.servers.push(ImportedServer { line: rs.line, config, check }),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(imported)
    } else {
        Err(errors)
    }
}

fn real_server(
    rs: &Statement,
    d: &ServiceDefaults,
) -> Result<(ServerConfig, Option<HealthCheckConfig>), Vec<ImportError>> {
    let service_port = match d.service {
        VirtualService::Tcp { port, .. } | VirtualService::Udp { port, .. } => port,
        VirtualService::Fwmark { .. } => 0,
    };
    let (addr, port) = match rs.values.as_slice() {
        [a] => (address(rs, a).map_err(|e| vec![e])?, service_port),
        [a, p] => (address(rs, a).map_err(|e| vec![e])?, port(rs, p).map_err(|e| vec![e])?),
        _ => return Err(vec![error(rs, Problem::ValueCount { expected: "ADDRESS [PORT]" })]),
    };
    let mut server =
        ServerConfig { addr, port, forwarding: d.forwarding, weight: 1, upper_threshold: 0, lower_threshold: 0 };
    // A real_server without a block is a server without a checker.
    let block = rs.block.as_deref().unwrap_or_default();
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    let mut inhibit = d.inhibit;
    let mut checker: Option<&Statement> = None;
    for s in block {
        if let Err(e) = once(s, &mut seen) {
            errors.push(e);
            continue;
        }
        let mapped: Result<(), ImportError> = (|| {
            match s.keyword.as_str() {
                "weight" => server.weight = integer(s, 0, 65535, "a weight, 0 to 65535")?,
                "uthreshold" => server.upper_threshold = integer(s, 0, u32::MAX, "a number of connections")?,
                "lthreshold" => server.lower_threshold = integer(s, 0, u32::MAX, "a number of connections")?,
                "inhibit_on_failure" => {
                    flag(s)?;
                    inhibit = true;
                }
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" => match checker {
                    Some(first) => {
                        return Err(unsupported(
                            s,
                            format!(
                                "a second checker (the first at line {}): gatewayd runs one check per server",
                                first.line
                            ),
                        ))
                    }
                    None => checker = Some(s),
                },
                "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "BFD_CHECK" | "FILE_CHECK" | "PING_CHECK" => {
                    return Err(unsupported(
                        s,
                        "gatewayd's checks are TCP_CHECK, HTTP_GET, SSL_GET and MISC_CHECK (and gwctl --health's udp)",
                    ))
                }
                _ => return Err(error(s, Problem::Unknown { within: "real_server" })),
            }
            Ok(())
        })();
        if let Err(e) = mapped {
            errors.push(e);
        }
    }
    let on_failure = if inhibit { OnFailure::Inhibit } else { OnFailure::Remove };
    let check = match checker {
        None => None,
        Some(c) => match check(c, &server, d) {
            Ok(mut check) => {
                check.on_failure = on_failure;
                Some(check)
            }
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        },
    };
    if errors.is_empty() {
        Ok((server, check))
    } else {
        Err(errors)
    }
}

/// A `TCP_CHECK`, `HTTP_GET`, `SSL_GET` (`HTTP_GET` over TLS: gwctl's https check) or
/// `MISC_CHECK` block.
fn check(c: &Statement, server: &ServerConfig, d: &ServiceDefaults) -> Result<HealthCheckConfig, Vec<ImportError>> {
    let block = inner(c).map_err(|e| vec![e])?;
    if !c.values.is_empty() {
        return Err(vec![error(c, Problem::ValueCount { expected: "no value before the block" })]);
    }
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    let (mut path, mut digest, mut status) = (None, None, None);
    let mut host = d.virtualhost.clone();
    let (mut script, mut dynamic) = (None, false);
    let mut timing: Vec<&Statement> = Vec::new();
    let kind = c.keyword.as_str();
    for s in block {
        if let Err(e) = once(s, &mut seen) {
            errors.push(e);
            continue;
        }
        let mapped: Result<(), ImportError> = (|| {
            match (kind, s.keyword.as_str()) {
                ("TCP_CHECK" | "HTTP_GET" | "SSL_GET", "connect_timeout")
                | (_, "retry" | "nb_get_retry" | "delay_before_retry" | "delay_loop") => timing.push(s),
                ("TCP_CHECK" | "HTTP_GET" | "SSL_GET", "connect_port") => {
                    let p = port(s, one_value(s)?)?;
                    if p != server.port {
                        return Err(unsupported(
                            s,
                            format!("connect_port {p} is not the real server's port {}: gatewayd probes the server's own port", server.port),
                        ));
                    }
                }
                ("TCP_CHECK" | "HTTP_GET" | "SSL_GET", "connect_ip") => {
                    let a = address(s, one_value(s)?)?;
                    if a != server.addr {
                        return Err(unsupported(
                            s,
                            format!(
                                "connect_ip {a} is not the real server's address {}: gatewayd probes the server itself",
                                server.addr
                            ),
                        ));
                    }
                }
                ("HTTP_GET" | "SSL_GET", "virtualhost") => host = Some(one_value(s)?.to_string()),
                ("HTTP_GET" | "SSL_GET", "url") => {
                    let mut url_seen = Vec::new();
                    for u in inner(s)? {
                        once(u, &mut url_seen)?;
                        match u.keyword.as_str() {
                            "path" => {
                                let p = one_value(u)?;
                                if !p.starts_with('/')
                                    || p.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                                {
                                    return Err(error(
                                        u,
                                        Problem::BadValue { value: p.into(), expected: "a path starting with /" },
                                    ));
                                }
                                path = Some(p.to_string());
                            }
                            "digest" => {
                                let v = one_value(u)?;
                                if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                                    return Err(error(
                                        u,
                                        Problem::BadValue { value: v.into(), expected: "an MD5 digest, 32 hex digits" },
                                    ));
                                }
                                digest = Some(v.to_ascii_lowercase());
                            }
                            "status_code" => status = Some(integer(u, 100, 599, "one HTTP status, 100 to 599")? as u16),
                            _ => return Err(error(u, Problem::Unknown { within: "url" })),
                        }
                    }
                    if path.is_none() {
                        return Err(error(s, Problem::Shape { expected: "a path in the url block" }));
                    }
                }
                ("MISC_CHECK", "misc_path") => {
                    let p = one_value(s)?;
                    if p.split_whitespace().count() != 1 {
                        return Err(unsupported(
                            s,
                            format!("misc_path `{p}' has arguments: gatewayd runs the script alone, with the server's address and port as arguments 1 and 2"),
                        ));
                    }
                    script = Some(p.to_string());
                }
                ("MISC_CHECK", "misc_timeout") => timing.push(s),
                ("MISC_CHECK", "misc_dynamic") => {
                    flag(s)?;
                    dynamic = true;
                }
                _ => {
                    return Err(error(
                        s,
                        Problem::Unknown {
                            within: match kind {
                                "TCP_CHECK" => "TCP_CHECK",
                                "HTTP_GET" => "HTTP_GET",
                                "SSL_GET" => "SSL_GET",
                                _ => "MISC_CHECK",
                            },
                        },
                    ))
                }
            }
            Ok(())
        })();
        if let Err(e) = mapped {
            errors.push(e);
        }
    }
    let kind = match kind {
        "TCP_CHECK" => CheckKind::Tcp,
        "HTTP_GET" | "SSL_GET" => match path {
            Some(path) => CheckKind::Http { path, host, status: status.unwrap_or(200), digest, tls: kind == "SSL_GET" },
            None => {
                // A url refused above is not said missing as well.
                if errors.is_empty() {
                    errors.push(error(c, Problem::Shape { expected: "a url block with a path" }));
                }
                CheckKind::Tcp
            }
        },
        _ => match script {
            Some(script) => CheckKind::Misc { script, dynamic },
            None => {
                if errors.is_empty() {
                    errors.push(error(c, Problem::Shape { expected: "a misc_path" }));
                }
                CheckKind::Tcp
            }
        },
    };
    let mut check = HealthCheckConfig::new(kind);
    check.delay_loop_ms = d.delay_loop_ms;
    for s in timing {
        let set = match s.keyword.as_str() {
            "connect_timeout" | "misc_timeout" => seconds(s).map(|ms| check.connect_timeout_ms = ms),
            "delay_before_retry" => seconds(s).map(|ms| check.delay_before_retry_ms = ms),
            "delay_loop" => seconds(s).map(|ms| check.delay_loop_ms = ms),
            _ => integer(s, 0, MAX_COUNT, "a count, 0 to 1000").map(|n| check.retry = n),
        };
        if let Err(e) = set {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(check)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keepalived::syntax::parse;

    /// A keepalived.conf as operators write them: VRRP beside two virtual_servers, one
    /// checked by HTTP_GET with a digest and a status, the other by TCP_CHECK and, for one
    /// server, MISC_CHECK.
    pub const REALISTIC: &str = r#"! Configuration File for keepalived
global_defs {
   notification_email {
     admin@example.com
   }
   router_id LVS_DEVEL
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
    virtual_ipaddress {
        10.0.0.100
    }
}

virtual_server 10.0.0.100 80 {
    delay_loop 6
    lvs_sched wrr
    lvs_method NAT
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    inhibit_on_failure

    real_server 192.168.1.10 8080 {
        weight 3
        HTTP_GET {
            url {
              path /health.html
              digest 3B1FB749C971D7A2C6A517B37F735DF2
              status_code 200
            }
            connect_port 8080
            connect_timeout 3
            retry 3
            delay_before_retry 2
        }
    }
    real_server 192.168.1.11 8080 {
        weight 1
    }
}

virtual_server 10.0.0.100 53 {
    lb_algo rr
    lb_kind DR
    protocol UDP

    real_server 192.168.1.20 53 {
        TCP_CHECK {
            connect_timeout 2
            nb_get_retry 2
        }
    }
    real_server 192.168.1.21 53 {
        inhibit_on_failure
        MISC_CHECK {
            misc_path "/etc/keepalived/check_dns.sh"
            misc_timeout 4
            misc_dynamic
        }
    }
}
"#;

    fn import_text(text: &str) -> Result<Import, Vec<String>> {
        import(&parse(text).unwrap()).map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_realistic_file_maps_with_keepalived_s_defaults() {
        let got = import_text(REALISTIC).unwrap();
        assert_eq!(got.skipped, vec![(2, "global_defs".to_string()), (9, "vrrp_instance".to_string())]);
        let vip: IpAddr = "10.0.0.100".parse().unwrap();
        let web = VirtualService::Tcp { addr: vip, port: 80 };
        let dns = VirtualService::Udp { addr: vip, port: 53 };
        let server = |addr: &str, port, forwarding, weight| ServerConfig {
            addr: addr.parse().unwrap(),
            port,
            forwarding,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        };
        let mut http = HealthCheckConfig::new(CheckKind::Http {
            path: "/health.html".into(),
            host: None,
            status: 200,
            digest: Some("3b1fb749c971d7a2c6a517b37f735df2".into()),
            tls: false,
        });
        (http.delay_loop_ms, http.connect_timeout_ms, http.retry, http.delay_before_retry_ms) = (6000, 3000, 3, 2000);
        // keepalived's defaults: delay_loop 60, retry 1 (misc 0); removed without
        // inhibit_on_failure.
        let mut tcp = HealthCheckConfig::new(CheckKind::Tcp);
        (tcp.connect_timeout_ms, tcp.retry, tcp.on_failure) = (2000, 2, OnFailure::Remove);
        let mut misc =
            HealthCheckConfig::new(CheckKind::Misc { script: "/etc/keepalived/check_dns.sh".into(), dynamic: true });
        misc.connect_timeout_ms = 4000;
        assert_eq!(
            (tcp.delay_loop_ms, misc.delay_loop_ms, misc.retry, misc.on_failure),
            (60_000, 60_000, 0, OnFailure::Inhibit)
        );
        assert_eq!(
            got.services,
            vec![
                ImportedService {
                    line: 20,
                    config: ServiceConfig {
                        service: web,
                        scheduler: "wrr".into(),
                        persistence: Some(PersistenceConfig {
                            timeout: 300,
                            netmask: "255.255.255.0".parse().unwrap()
                        }),
                        one_packet: false,
                        synproxy: false,
                        proxy_protocol: None,
                    },
                    servers: vec![
                        ImportedServer {
                            line: 29,
                            config: server("192.168.1.10", 8080, Forwarding::Masq, 3),
                            check: Some(http),
                        },
                        ImportedServer {
                            line: 43,
                            config: server("192.168.1.11", 8080, Forwarding::Masq, 1),
                            check: None
                        },
                    ],
                    laddrs: vec![],
                },
                ImportedService {
                    line: 48,
                    config: ServiceConfig {
                        service: dns,
                        scheduler: "rr".into(),
                        persistence: None,
                        one_packet: false,
                        synproxy: false,
                        proxy_protocol: None,
                    },
                    servers: vec![
                        ImportedServer {
                            line: 53,
                            config: server("192.168.1.20", 53, Forwarding::Route, 1),
                            check: Some(tcp)
                        },
                        ImportedServer {
                            line: 59,
                            config: server("192.168.1.21", 53, Forwarding::Route, 1),
                            check: Some(misc)
                        },
                    ],
                    laddrs: vec![],
                },
            ]
        );
        // One request: services, their servers, then the checks.
        let kinds: Vec<(usize, &str)> = got
            .changes()
            .iter()
            .map(|(line, c)| {
                (
                    *line,
                    match c {
                        Change::AddService { .. } => "service",
                        Change::AddServer { .. } => "server",
                        Change::SetHealthCheck { .. } => "check",
                        _ => "other",
                    },
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (20, "service"),
                (29, "server"),
                (43, "server"),
                (29, "check"),
                (48, "service"),
                (53, "server"),
                (59, "server"),
                (53, "check"),
                (59, "check")
            ]
        );
    }

    #[test]
    fn the_dry_run_prints_ipvsadm_rules_and_health_lines() {
        let got = crate::keepalived::dry_run_text(&import_text(REALISTIC).unwrap());
        assert_eq!(
            got,
            "\
-A -t 10.0.0.100:80 -s wrr -p 300 -M 255.255.255.0
-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -m -w 3
-a -t 10.0.0.100:80 -r 192.168.1.11:8080 -m -w 1
-A -u 10.0.0.100:53 -s rr
-a -u 10.0.0.100:53 -r 192.168.1.20:53 -g -w 1
-a -u 10.0.0.100:53 -r 192.168.1.21:53 -g -w 1
--health -t 10.0.0.100:80 -r 192.168.1.10:8080 --check http --url /health.html --status 200 \
--digest 3b1fb749c971d7a2c6a517b37f735df2 --delay-loop 6 --connect-timeout 3 --retry 3 --delay-before-retry 2 \
--rise 1 --on-failure inhibit
--health -u 10.0.0.100:53 -r 192.168.1.20:53 --check tcp --delay-loop 60 --connect-timeout 2 --retry 2 \
--delay-before-retry 1 --rise 1 --on-failure remove
--health -u 10.0.0.100:53 -r 192.168.1.21:53 --check misc --script /etc/keepalived/check_dns.sh --dynamic \
--delay-loop 60 --connect-timeout 4 --retry 0 --delay-before-retry 1 --rise 1 --on-failure inhibit
"
        );
    }

    #[test]
    fn dpvs_fullnat_with_its_local_address_group_and_syn_proxy() {
        let text = "virtual_server 10.0.0.100 80 {\n\
                    \x20 lb_kind FNAT\n\
                    \x20 syn_proxy\n\
                    \x20 laddr_group_name laddr_g1\n\
                    \x20 real_server 192.168.1.10 8080\n\
                    }\n\
                    local_address_group laddr_g1 {\n\
                    \x20 192.168.100.200 dpdk1\n\
                    \x20 192.168.100.201 dpdk1\n\
                    }\n";
        let got = import_text(text).unwrap();
        assert_eq!(
            crate::keepalived::dry_run_text(&got),
            "\
-A -t 10.0.0.100:80 -s wlc -j enable
-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -b -w 1
-P -t 10.0.0.100:80 -z 192.168.100.200 -F dpdk1
-P -t 10.0.0.100:80 -z 192.168.100.201 -F dpdk1
"
        );
        // The local addresses come right after their service, before its servers.
        let lines: Vec<usize> = got.changes().iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![1, 8, 9, 5]);

        for (text, message) in [
            (
                "local_address_group g {\n 192.168.100.200-210 dpdk1\n}\n",
                "line 2: 192.168.100.200-210: invalid value `192.168.100.200-210' (expected an IP address)",
            ),
            ("local_address_group g {\n 192.168.100.200\n}\n", "line 2: 192.168.100.200: expected ADDRESS IFNAME"),
            (
                "local_address_group g {\n}\nvirtual_server 10.0.0.100 80 {\n lb_kind NAT\n laddr_group_name g\n}\n",
                "line 5: `laddr_group_name' is not supported: local addresses are a fullnat (lb_kind FNAT) service's",
            ),
        ] {
            let errors = import_text(text).unwrap_err();
            assert!(errors.len() == 1 && errors[0].starts_with(message), "{text}\n{errors:?}");
        }
    }

    #[test]
    fn an_http_check_without_status_code_is_noted_as_stricter_than_keepalived_s() {
        let text = "virtual_server 10.0.0.100 80 {\n real_server 192.168.1.10 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n";
        let got = import_text(text).unwrap();
        assert_eq!(
            got.notes,
            vec![(
                4,
                "url without status_code: gatewayd expects 200 (keepalived any 2xx); add status_code for another"
                    .to_string()
            )]
        );
        assert!(import_text(REALISTIC).unwrap().notes.is_empty());
    }

    #[test]
    fn fwmark_services_and_a_server_without_a_port() {
        let got = import_text(
            "virtual_server fwmark 7 {\n lvs_method TUN\n real_server 192.168.1.30 {\n  weight 0\n }\n real_server 192.168.1.31\n}\n",
        )
        .unwrap();
        let s = &got.services[0];
        assert_eq!(s.config.service, VirtualService::Fwmark { mark: 7 });
        assert_eq!(s.config.scheduler, "wlc");
        let servers: Vec<_> = s.servers.iter().map(|r| (r.config.port, r.config.forwarding, r.config.weight)).collect();
        assert_eq!(servers, vec![(0, Forwarding::Tunnel, 0), (0, Forwarding::Tunnel, 1)]);
    }

    #[test]
    fn ssl_get_is_the_https_check() {
        let text = "virtual_server 10.0.0.100 443 {\n\
                    \x20 real_server 192.168.1.10 443 {\n\
                    \x20   inhibit_on_failure\n\
                    \x20   SSL_GET {\n\
                    \x20     url {\n\
                    \x20       path /health.html\n\
                    \x20       digest 3B1FB749C971D7A2C6A517B37F735DF2\n\
                    \x20       status_code 204\n\
                    \x20     }\n\
                    \x20     virtualhost www.example\n\
                    \x20     connect_timeout 3\n\
                    \x20     retry 2\n\
                    \x20     delay_before_retry 0.5\n\
                    \x20   }\n\
                    \x20 }\n\
                    }\n";
        let got = import_text(text).unwrap();
        let mut https = HealthCheckConfig::new(CheckKind::Http {
            path: "/health.html".into(),
            host: Some("www.example".into()),
            status: 204,
            digest: Some("3b1fb749c971d7a2c6a517b37f735df2".into()),
            tls: true,
        });
        (https.connect_timeout_ms, https.retry, https.delay_before_retry_ms) = (3000, 2, 500);
        assert_eq!(got.services[0].servers[0].check, Some(https));
        // Its block takes what HTTP_GET's takes, and nothing else.
        let text = "virtual_server 10.0.0.100 443 {\n\
                    \x20 real_server 192.168.1.10 443 {\n\
                    \x20   SSL_GET {\n\
                    \x20     url { path / }\n\
                    \x20     misc_path /bin/true\n\
                    \x20   }\n\
                    \x20 }\n\
                    }\n";
        assert_eq!(import_text(text).unwrap_err(), vec!["line 5: unknown keyword `misc_path' in SSL_GET"]);
    }

    #[test]
    fn every_keyword_that_does_not_map_is_named_with_its_line() {
        let text = "virtual_server 10.0.0.100 80 {\n\
                    \x20 lvs_method LVS\n\
                    \x20 sorry_server 192.168.1.99 80\n\
                    \x20 real_server 192.168.1.10 80 {\n\
                    \x20   weight 3\n\
                    \x20   notify_up /bin/up\n\
                    \x20   SMTP_CHECK {\n\
                    \x20     helo_name gw\n\
                    \x20   }\n\
                    \x20 }\n\
                    }\n\
                    virtual_server group web {\n\
                    }\n\
                    vrrp_instance VI_1 {\n\
                    }\n\
                    bogus_block {\n\
                    }\n";
        assert_eq!(
            import_text(text).unwrap_err(),
            vec![
                "line 2: lvs_method: invalid value `LVS' (expected NAT, DR, TUN or FNAT)",
                "line 3: unknown keyword `sorry_server' in virtual_server",
                "line 6: unknown keyword `notify_up' in real_server",
                "line 7: `SMTP_CHECK' is not supported: gatewayd's checks are TCP_CHECK, HTTP_GET, SSL_GET and \
                 MISC_CHECK (and gwctl --health's udp)",
                "line 12: `virtual_server' is not supported: virtual_server groups are not imported: write one \
                 virtual_server per address and port",
                "line 16: unknown keyword `bogus_block' in keepalived.conf's top level",
            ]
        );
    }

    #[test]
    fn a_bad_address_does_not_hide_the_errors_of_its_block() {
        assert_eq!(
            import_text("virtual_server 10.0.0.300 80 {\n ha_suspend\n}\n").unwrap_err(),
            vec![
                "line 1: virtual_server: invalid value `10.0.0.300' (expected an IP address)",
                "line 2: unknown keyword `ha_suspend' in virtual_server",
            ]
        );
    }

    #[test]
    fn bad_values_and_unmappable_checks_are_refused() {
        let server =
            |body: &str| format!("virtual_server 10.0.0.100 80 {{\n real_server 192.168.1.10 80 {{\n{body}\n }}\n}}\n");
        let service = |body: &str| format!("virtual_server 10.0.0.100 80 {{\n{body}\n}}\n");
        for (text, message) in [
            (service("lvs_method LVS"), "line 2: lvs_method: invalid value `LVS' (expected NAT, DR, TUN or FNAT)"),
            (
                service("lb_kind FNAT\nladdr_group_name nowhere"),
                "line 3: laddr_group_name: invalid value `nowhere' (expected the name of a local_address_group)",
            ),
            (service("delay_loop ten"), "line 2: delay_loop: invalid value `ten' (expected seconds, 0.01 to 86400)"),
            (service("persistence_timeout 0"), "line 2: persistence_timeout: invalid value `0'"),
            (
                service("persistence_timeout 60\npersistence_granularity 255.0.255.0"),
                "line 3: persistence_granularity: invalid value `255.0.255.0' (expected a contiguous netmask)",
            ),
            (service("protocol SCTP"), "line 2: `protocol' is not supported: gatewayd balances TCP and UDP"),
            (service("lvs_sched rr\nlvs_sched wrr"), "line 3: lvs_sched given twice (first at line 2)"),
            (service("lb_algo rr\nlvs_sched wrr"), "line 3: lvs_sched given twice (first at line 2)"),
            (server("TCP_CHECK {\n retry 2\n nb_get_retry 3\n}"), "line 5: nb_get_retry given twice (first at line 4)"),
            (service("inhibit_on_failure yes"), "line 2: inhibit_on_failure: expected no value"),
            (service("delay_loop"), "line 2: delay_loop: expected one value"),
            (
                "virtual_server 10.0.0.300 80 {\n}\n".to_string(),
                "line 1: virtual_server: invalid value `10.0.0.300' (expected an IP address)",
            ),
            (
                "virtual_server 10.0.0.100 http {\n}\n".to_string(),
                "line 1: virtual_server: invalid value `http' (expected a port, 0 to 65535)",
            ),
            (server("weight 70000"), "line 3: weight: invalid value `70000' (expected a weight, 0 to 65535)"),
            (server("weight -1"), "line 3: weight: invalid value `-1'"),
            (server("TCP_CHECK {\n connect_timeout 0\n}"), "line 4: connect_timeout: invalid value `0'"),
            (
                server("TCP_CHECK {\n retry 1001\n}"),
                "line 4: retry: invalid value `1001' (expected a count, 0 to 1000)",
            ),
            (
                server("TCP_CHECK {\n connect_port 81\n}"),
                "line 4: `connect_port' is not supported: connect_port 81 is not the real server's port 80",
            ),
            (
                server("TCP_CHECK {\n}\nMISC_CHECK {\n misc_path /bin/true\n}"),
                "line 5: `MISC_CHECK' is not supported: a second checker (the first at line 3)",
            ),
            (
                server("HTTP_GET {\n url {\n  path /\n  status_code 200-299\n }\n}"),
                "line 6: status_code: invalid value `200-299' (expected one HTTP status, 100 to 599)",
            ),
            (
                server("HTTP_GET {\n url {\n  path /\n  digest abc\n }\n}"),
                "line 6: digest: invalid value `abc' (expected an MD5 digest, 32 hex digits)",
            ),
            (server("HTTP_GET {\n url {\n  path /\n  regex ok\n }\n}"), "line 6: unknown keyword `regex' in url"),
            (server("HTTP_GET {\n connect_timeout 3\n}"), "line 3: HTTP_GET: expected a url block with a path"),
            (
                server("MISC_CHECK {\n misc_path \"/bin/check 10.0.0.1\"\n}"),
                "line 4: `misc_path' is not supported: misc_path `/bin/check 10.0.0.1' has arguments",
            ),
            (server("MISC_CHECK {\n misc_timeout 3\n}"), "line 3: MISC_CHECK: expected a misc_path"),
            (
                server("MISC_CHECK {\n misc_path /bin/true\n connect_port 80\n}"),
                "line 5: unknown keyword `connect_port' in MISC_CHECK",
            ),
        ] {
            let errors = import_text(&text).unwrap_err();
            assert!(errors.len() == 1 && errors[0].starts_with(message), "{text}\n{errors:?}");
        }
    }
}
