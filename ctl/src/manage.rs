//! Gateway management beyond ipvsadm, in iproute2's style:
//!
//! ```text
//! gwctl addr  add|del ADDR[/LEN] dev IFNAME        gwctl addr [show]
//! gwctl route add PREFIX|default [via GW] dev IFNAME
//! gwctl route del PREFIX|default                   gwctl route [show]
//! gwctl neigh add ADDR lladdr MAC dev IFNAME
//! gwctl neigh del ADDR dev IFNAME                  gwctl neigh [show]
//! gwctl link [show]                                port and queue counters
//! gwctl stats                                      per-worker packet and drop counters
//! gwctl mark add MARK -d PREFIX [-p tcp|udp] [--dports P[,LO-HI]...]
//! gwctl mark del MARK                              gwctl mark [show]
//! ```
//!
//! `show` output is one line per entry in the syntax that adds it (so it can be fed back),
//! and `--json` prints the reply structure instead. With a kernel interface, `addr show`
//! then says which VIPs and local addresses are held (`held ADDR`, `not held ADDR`): a
//! runtime state keepalived sets, which no command adds.

use std::fmt::Write as _;
use std::net::IpAddr;

use gwapi::addr::{family_bits, LinkAddr};
use gwapi::api::{
    Change, HeldAddr, InterfaceAddr, LinkInfo, MarkRuleConfig, NeighbourConfig, Reply, Request, RouteConfig,
    TransportProtocol, WorkerStats,
};
use gwapi::ClientError;

use crate::ipvsadm::args::Globals;
use crate::Io;

/// The words that select a management subcommand instead of an ipvsadm command line.
pub const SUBCOMMANDS: [&str; 6] = ["addr", "route", "neigh", "link", "stats", "mark"];

struct Usage(String);

fn usage<T>(message: impl Into<String>) -> Result<T, Usage> {
    Err(Usage(message.into()))
}

/// What a subcommand line asks for.
enum Plan {
    Change(Change),
    Show(Request),
}

/// Runs `gwctl SUBCOMMAND ARGS...`.
pub fn run(sub: &str, args: &[String], mut globals: Globals, io: &mut Io) -> i32 {
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--json" => globals.json = true,
            "--socket" if i + 1 < args.len() => {
                globals.socket = Some(args[i + 1].clone().into());
                i += 1;
            }
            w => words.push(w),
        }
        i += 1;
    }
    let plan = match plan(sub, &words) {
        Ok(p) => p,
        Err(Usage(m)) => {
            let _ = writeln!(io.err, "{m}");
            let _ = writeln!(io.err, "Try `gwctl -h' or 'gwctl --help' for more information.");
            return 2;
        }
    };
    let client = crate::client(&globals);
    let request = match &plan {
        Plan::Change(c) => Request::Apply { changes: vec![c.clone()] },
        Plan::Show(r) => r.clone(),
    };
    let reply = match client.call(&request) {
        Ok(r) => r,
        Err(ClientError::Refused(e)) => {
            let _ = writeln!(io.err, "{}", e.message);
            return 1;
        }
        Err(e) => {
            let _ = writeln!(io.err, "gwctl: {e}");
            return 2;
        }
    };
    if let (Plan::Change(_), false) = (&plan, globals.json) {
        return 0;
    }
    if globals.json {
        return match serde_json::to_string_pretty(&reply) {
            Ok(s) => {
                let _ = writeln!(io.out, "{s}");
                0
            }
            Err(e) => {
                let _ = writeln!(io.err, "gwctl: cannot print the reply as JSON: {e}");
                1
            }
        };
    }
    let text = match &reply {
        Reply::Addrs { addrs, held } => show_addrs(addrs, held.as_deref()),
        Reply::Routes { routes } => show_routes(routes),
        Reply::Neighbours { neighbours } => show_neighbours(neighbours),
        Reply::Links { links } => show_links(links),
        Reply::Stats { workers } => show_stats(workers),
        Reply::Marks { rules } => show_marks(rules),
        other => {
            let _ = writeln!(io.err, "gwctl: unexpected reply from gatewayd: {other:?}");
            return 1;
        }
    };
    let _ = io.out.write_all(text.as_bytes());
    0
}

fn plan(sub: &str, w: &[&str]) -> Result<Plan, Usage> {
    let verb = w.first().copied().unwrap_or("show");
    let rest = if w.is_empty() { &[][..] } else { &w[1..] };
    let is_show = matches!(verb, "show" | "list" | "ls");
    if is_show && !rest.is_empty() {
        return usage(format!("unexpected argument {}", rest[0]));
    }
    Ok(match (sub, verb) {
        ("addr", "add") | ("addr", "del") => {
            let (addr, prefix_len) = prefix_arg(rest.first().copied(), true)?;
            let ifname = dev(&rest[1..])?;
            let a = InterfaceAddr { addr, prefix_len, ifname };
            Plan::Change(if verb == "add" { Change::AddAddr { addr: a } } else { Change::DeleteAddr { addr: a } })
        }
        ("addr", _) if is_show => Plan::Show(Request::ListAddrs),
        ("route", "add") => {
            let (dst, prefix_len) = prefix_arg(rest.first().copied(), false)?;
            let mut via = None;
            let mut ifname = None;
            let mut k = 1;
            while k < rest.len() {
                match (rest[k], rest.get(k + 1)) {
                    ("via", Some(v)) => via = Some(addr_arg(v)?),
                    ("dev", Some(d)) => ifname = Some(d.to_string()),
                    (other, _) => return usage(format!("unexpected argument {other}")),
                }
                k += 2;
            }
            let ifname = ifname.ok_or(Usage("route add needs dev IFNAME".into()))?;
            Plan::Change(Change::AddRoute { route: RouteConfig { dst, prefix_len, via, ifname } })
        }
        ("route", "del") => {
            let (dst, prefix_len) = prefix_arg(rest.first().copied(), false)?;
            if let Some(extra) = rest.get(1) {
                return usage(format!("unexpected argument {extra}"));
            }
            Plan::Change(Change::DeleteRoute { dst, prefix_len })
        }
        ("route", _) if is_show => Plan::Show(Request::ListRoutes),
        ("neigh", "add") => {
            let addr = addr_arg(rest.first().copied().unwrap_or(""))?;
            let mut lladdr = None;
            let mut ifname = None;
            let mut k = 1;
            while k < rest.len() {
                match (rest[k], rest.get(k + 1)) {
                    ("lladdr", Some(m)) => {
                        lladdr = Some(
                            m.parse::<LinkAddr>().map_err(|_| Usage(format!("invalid link-layer address {m:?}")))?.0,
                        )
                    }
                    ("dev", Some(d)) => ifname = Some(d.to_string()),
                    (other, _) => return usage(format!("unexpected argument {other}")),
                }
                k += 2;
            }
            let lladdr = lladdr.ok_or(Usage("neigh add needs lladdr MAC".into()))?;
            let ifname = ifname.ok_or(Usage("neigh add needs dev IFNAME".into()))?;
            Plan::Change(Change::AddNeighbour { neighbour: NeighbourConfig { addr, lladdr, ifname } })
        }
        ("neigh", "del") => {
            let addr = addr_arg(rest.first().copied().unwrap_or(""))?;
            let ifname = dev(&rest[1..])?;
            Plan::Change(Change::DeleteNeighbour { addr, ifname })
        }
        ("neigh", _) if is_show => Plan::Show(Request::ListNeighbours),
        ("link", _) if is_show => Plan::Show(Request::ListLinks),
        ("stats", _) if is_show => Plan::Show(Request::GetStats),
        ("mark", "add") => Plan::Change(Change::AddMark { rule: mark_rule(rest)? }),
        ("mark", "del") => {
            let mark = mark_arg(rest.first().copied().unwrap_or(""))?;
            if let Some(extra) = rest.get(1) {
                return usage(format!("unexpected argument {extra}"));
            }
            Plan::Change(Change::DeleteMark { mark })
        }
        ("mark", _) if is_show => Plan::Show(Request::ListMarks),
        (_, verb) => return usage(format!("gwctl {sub}: unknown command {verb:?}")),
    })
}

fn addr_arg(s: &str) -> Result<IpAddr, Usage> {
    s.parse().map_err(|_| Usage(format!("invalid address {s:?}")))
}

/// `ADDR/LEN`, `ADDR` (a host prefix), or for routes `default`.
fn prefix_arg(s: Option<&str>, is_addr: bool) -> Result<(IpAddr, u8), Usage> {
    let Some(s) = s else {
        return usage(if is_addr { "missing address" } else { "missing prefix" });
    };
    if !is_addr && s == "default" {
        return Ok((IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0));
    }
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr = addr_arg(a)?;
    let prefix_len = match len {
        None => family_bits(addr),
        Some(l) => match l.parse::<u8>() {
            Ok(n) if n <= family_bits(addr) => n,
            _ => return usage(format!("invalid prefix length {l:?} for {addr}")),
        },
    };
    Ok((addr, prefix_len))
}

fn dev(rest: &[&str]) -> Result<String, Usage> {
    match rest {
        ["dev", name] => Ok(name.to_string()),
        [] | ["dev"] => usage("missing dev IFNAME"),
        [other, ..] if *other != "dev" => usage(format!("unexpected argument {other}")),
        [_, _, extra, ..] => usage(format!("unexpected argument {extra}")),
        _ => usage("missing dev IFNAME"),
    }
}

fn mark_arg(s: &str) -> Result<u32, Usage> {
    crate::ipvsadm::args::number(s, 1, u32::MAX).ok_or(Usage(format!("invalid fwmark value `{s}' specified")))
}

fn mark_rule(w: &[&str]) -> Result<MarkRuleConfig, Usage> {
    let mark = mark_arg(w.first().copied().unwrap_or(""))?;
    let mut dst = None;
    let mut protocol = None;
    let mut ports = Vec::new();
    let mut k = 1;
    while k < w.len() {
        let value = w.get(k + 1).copied();
        match (w[k], value) {
            ("-d" | "--destination", Some(v)) => dst = Some(prefix_arg(Some(v), true)?),
            ("-p" | "--protocol", Some(v)) => {
                protocol = Some(match v {
                    "tcp" => TransportProtocol::Tcp,
                    "udp" => TransportProtocol::Udp,
                    _ => return usage(format!("unknown protocol {v:?} (tcp or udp)")),
                })
            }
            ("--dports" | "--dport", Some(v)) => {
                for part in v.split(',') {
                    let (lo, hi) = part.split_once(['-', ':']).unwrap_or((part, part));
                    let port = |p: &str| p.parse::<u16>().map_err(|_| Usage(format!("invalid port {p:?}")));
                    ports.push((port(lo)?, port(hi)?));
                }
            }
            (other, None) if other.starts_with('-') => return usage(format!("{other}: missing argument")),
            (other, _) => return usage(format!("unexpected argument {other}")),
        }
        k += 2;
    }
    let (dst, prefix_len) = dst.ok_or(Usage("mark add needs -d ADDR[/LEN]".into()))?;
    Ok(MarkRuleConfig { mark, dst, prefix_len, protocol, ports })
}

fn prefix_text(addr: IpAddr, len: u8) -> String {
    if len == 0 && addr.is_unspecified() && addr.is_ipv4() {
        "default".into()
    } else {
        format!("{addr}/{len}")
    }
}

/// The interface addresses; then, with a kernel interface, whether each VIP, local
/// address and kernel interface address is held (`held ADDR`, `not held ADDR`).
fn show_addrs(addrs: &[InterfaceAddr], held: Option<&[HeldAddr]>) -> String {
    let mut s = addrs.iter().fold(String::new(), |mut s, a| {
        let family = if a.addr.is_ipv4() { "inet" } else { "inet6" };
        let _ = writeln!(s, "{family} {}/{} dev {}", a.addr, a.prefix_len, a.ifname);
        s
    });
    for h in held.unwrap_or_default() {
        let _ = writeln!(s, "{} {}", if h.held { "held" } else { "not held" }, h.addr);
    }
    s
}

fn show_routes(routes: &[RouteConfig]) -> String {
    routes.iter().fold(String::new(), |mut s, r| {
        s.push_str(&prefix_text(r.dst, r.prefix_len));
        if let Some(via) = r.via {
            let _ = write!(s, " via {via}");
        }
        let _ = writeln!(s, " dev {}", r.ifname);
        s
    })
}

fn show_neighbours(ns: &[NeighbourConfig]) -> String {
    ns.iter().fold(String::new(), |mut s, n| {
        let _ = writeln!(s, "{} dev {} lladdr {} PERMANENT", n.addr, n.ifname, LinkAddr(n.lladdr));
        s
    })
}

fn show_links(links: &[LinkInfo]) -> String {
    links.iter().fold(String::new(), |mut s, l| {
        let state = match (l.up, l.state_unknown) {
            (_, true) => "UNKNOWN",
            (true, false) => "UP",
            (false, false) => "DOWN",
        };
        let _ = writeln!(s, "{}: {}: <{state}> mtu {}", l.port_id, l.name, l.mtu);
        let _ = writeln!(s, "    link/ether {}", LinkAddr(l.mac));
        let _ = writeln!(
            s,
            "    RX: packets {} bytes {} errors {} missed {}",
            l.rx_packets, l.rx_bytes, l.rx_errors, l.rx_missed
        );
        let _ = writeln!(s, "    TX: packets {} bytes {} errors {}", l.tx_packets, l.tx_bytes, l.tx_errors);
        for q in &l.queues {
            let _ = writeln!(
                s,
                "    queue {} (worker {}): RX packets {} bytes {} TX packets {} bytes {}",
                q.queue, q.worker, q.rx_packets, q.rx_bytes, q.tx_packets, q.tx_bytes
            );
        }
        if let Some(k) = &l.kernel {
            let _ = write!(
                s,
                "    kernel {}: to kernel packets {} from kernel packets {}",
                k.name.as_deref().unwrap_or("(none)"),
                k.to_kernel,
                k.from_kernel
            );
            for (reason, n) in &k.drops {
                let _ = write!(s, " {reason} {n}");
            }
            s.push('\n');
        }
        s
    })
}

fn show_stats(workers: &[WorkerStats]) -> String {
    workers.iter().fold(String::new(), |mut s, w| {
        let _ = match &w.health {
            None => writeln!(s, "worker {} (lcore {})", w.worker, w.lcore),
            Some(health) => writeln!(s, "worker {} (lcore {}) {health}", w.worker, w.lcore),
        };
        let _ = writeln!(s, "    RX: packets {} bytes {}", w.rx_packets, w.rx_bytes);
        let _ = writeln!(s, "    TX: packets {} bytes {}", w.tx_packets, w.tx_bytes);
        let _ = writeln!(
            s,
            "    redirected out {} in {}, new connections {}",
            w.redirected_out, w.redirected_in, w.new_connections
        );
        let _ = writeln!(s, "    connection table {} of {}", w.connections, w.connection_capacity);
        for (event, n) in &w.events {
            let _ = writeln!(s, "    {event} {n}");
        }
        for (reason, n) in &w.drops {
            let _ = writeln!(s, "    drop {reason} {n}");
        }
        for k in &w.kernel {
            let _ = writeln!(
                s,
                "    kernel port {} {}: handed {} rate-limited {}",
                k.port_id, k.class, k.handed, k.rate_limited
            );
        }
        s
    })
}

fn show_marks(rules: &[MarkRuleConfig]) -> String {
    rules.iter().fold(String::new(), |mut s, r| {
        let _ = write!(s, "{} -d {}/{}", r.mark, r.dst, r.prefix_len);
        match r.protocol {
            Some(TransportProtocol::Tcp) => s.push_str(" -p tcp"),
            Some(TransportProtocol::Udp) => s.push_str(" -p udp"),
            None => {}
        }
        if !r.ports.is_empty() {
            let list: Vec<String> =
                r.ports.iter().map(|&(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }).collect();
            let _ = write!(s, " --dports {}", list.join(","));
        }
        s.push('\n');
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(line: &str) -> Result<Plan, Usage> {
        let w: Vec<&str> = line.split_whitespace().collect();
        plan(w[0], &w[1..])
    }

    fn change(line: &str) -> Change {
        match plan_of(line) {
            Ok(Plan::Change(c)) => c,
            _ => panic!("{line} is not a change"),
        }
    }

    fn usage_message(line: &str) -> String {
        match plan_of(line) {
            Err(Usage(m)) => m,
            Ok(_) => panic!("{line} parsed"),
        }
    }

    #[test]
    fn subcommands_parse_to_changes() {
        assert_eq!(
            change("addr add 10.0.0.1/24 dev dpdk0"),
            Change::AddAddr {
                addr: InterfaceAddr { addr: "10.0.0.1".parse().unwrap(), prefix_len: 24, ifname: "dpdk0".into() }
            }
        );
        assert_eq!(
            change("route add default via 10.0.0.254 dev dpdk0"),
            Change::AddRoute {
                route: RouteConfig {
                    dst: "0.0.0.0".parse().unwrap(),
                    prefix_len: 0,
                    via: Some("10.0.0.254".parse().unwrap()),
                    ifname: "dpdk0".into()
                }
            }
        );
        assert_eq!(
            change("mark add 10 -d 172.18.100.7 -p tcp --dports 80,443,8000-8080"),
            Change::AddMark {
                rule: MarkRuleConfig {
                    mark: 10,
                    dst: "172.18.100.7".parse().unwrap(),
                    prefix_len: 32,
                    protocol: Some(TransportProtocol::Tcp),
                    ports: vec![(80, 80), (443, 443), (8000, 8080)],
                }
            }
        );
        assert!(matches!(plan_of("link"), Ok(Plan::Show(Request::ListLinks))));
        assert!(matches!(plan_of("stats"), Ok(Plan::Show(Request::GetStats))));
    }

    #[test]
    fn bad_subcommand_lines_name_the_problem() {
        assert_eq!(usage_message("addr add 10.0.0.1/33 dev dpdk0"), "invalid prefix length \"33\" for 10.0.0.1");
        assert_eq!(usage_message("addr add 10.0.0.1/24"), "missing dev IFNAME");
        assert_eq!(
            usage_message("neigh add 10.0.0.254 lladdr 52:54 dev dpdk0"),
            "invalid link-layer address \"52:54\""
        );
        assert_eq!(usage_message("route add 10.0.0.0/8"), "route add needs dev IFNAME");
        assert_eq!(usage_message("mark add 0 -d 10.0.0.1"), "invalid fwmark value `0' specified");
        assert_eq!(usage_message("link flap"), "gwctl link: unknown command \"flap\"");
        assert_eq!(usage_message("addr show extra"), "unexpected argument extra");
    }

    #[test]
    fn show_lines_read_back_as_add_lines() {
        let marks = vec![MarkRuleConfig {
            mark: 10,
            dst: "172.18.100.0".parse().unwrap(),
            prefix_len: 24,
            protocol: Some(TransportProtocol::Tcp),
            ports: vec![(80, 80), (443, 443)],
        }];
        let line = show_marks(&marks);
        assert_eq!(line, "10 -d 172.18.100.0/24 -p tcp --dports 80,443\n");
        assert_eq!(change(&format!("mark add {}", line.trim())), Change::AddMark { rule: marks[0].clone() });
        let routes =
            vec![RouteConfig { dst: "0.0.0.0".parse().unwrap(), prefix_len: 0, via: None, ifname: "dpdk0".into() }];
        assert_eq!(show_routes(&routes), "default dev dpdk0\n");
    }

    #[test]
    fn addr_show_says_which_addresses_are_held_only_with_a_kernel_interface() {
        let addrs = vec![InterfaceAddr { addr: "10.0.0.254".parse().unwrap(), prefix_len: 24, ifname: "dpdk0".into() }];
        assert_eq!(show_addrs(&addrs, None), "inet 10.0.0.254/24 dev dpdk0\n", "unchanged without one");
        let held = vec![
            HeldAddr { addr: "10.0.0.100".parse().unwrap(), held: true },
            HeldAddr { addr: "192.168.1.200".parse().unwrap(), held: false },
        ];
        assert_eq!(
            show_addrs(&addrs, Some(&held)),
            "inet 10.0.0.254/24 dev dpdk0\nheld 10.0.0.100\nnot held 192.168.1.200\n"
        );
    }

    #[test]
    fn a_port_with_a_kernel_interface_shows_one_more_line() {
        let plain = LinkInfo {
            name: "dpdk0".into(),
            port_id: 0,
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
            up: true,
            state_unknown: false,
            rx_packets: 10,
            rx_bytes: 1000,
            rx_errors: 0,
            rx_nombuf: 0,
            rx_missed: 0,
            tx_packets: 9,
            tx_bytes: 900,
            tx_errors: 0,
            queues: Vec::new(),
            kernel: None,
        };
        let lines = "0: dpdk0: <UP> mtu 1500\n    link/ether 02:00:00:00:00:01\n    RX: packets 10 bytes 1000 errors 0 missed 0\n    TX: packets 9 bytes 900 errors 0\n";
        assert_eq!(show_links(std::slice::from_ref(&plain)), lines);
        let with_kernel = LinkInfo {
            kernel: Some(gwapi::api::KernelLinkInfo {
                name: Some("gwk0".into()),
                to_kernel: 7,
                from_kernel: 5,
                drops: vec![("tap_full".into(), 2), ("port_full".into(), 0), ("no_kernel".into(), 0)],
            }),
            ..plain
        };
        assert_eq!(
            show_links(&[with_kernel]),
            format!(
                "{lines}    kernel gwk0: to kernel packets 7 from kernel packets 5 tap_full 2 port_full 0 no_kernel 0\n"
            )
        );
    }
}
