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
//! gwctl sync                                       sync daemons and their counters
//! gwctl mark add MARK -d PREFIX [-p tcp|udp] [--dports P[,LO-HI]...]
//! gwctl mark del MARK                              gwctl mark [show]
//! ```
//!
//! The lines are parsed by clap ([`crate::cli`], with each one's `--help`); here they become
//! requests, and replies text. `show` output is one line per entry in the syntax that adds
//! it (so it can be fed back), and `--json` prints the reply structure instead. With a kernel
//! interface, `addr show` then says which VIPs and local addresses are held (`held ADDR`,
//! `not held ADDR`): a runtime state keepalived sets, which no command adds.

use std::fmt::Write as _;
use std::net::IpAddr;

use gwapi::addr::LinkAddr;
use gwapi::api::{
    Change, HeldAddr, InterfaceAddr, LinkInfo, MarkRuleConfig, NeighbourConfig, PollStats, Reply, Request, RouteConfig,
    SyncInfo, TransportProtocol, WorkerStats,
};
use gwapi::ClientError;

use crate::cli::{AddrAction, AddrArgs, Management, MarkAction, NeighAction, RouteAction, ShowAction};
use crate::ipvsadm::args::Globals;
use crate::Io;

/// What a subcommand line asks for.
enum Plan {
    Change(Change),
    Show(Request),
}

/// Runs one management subcommand, parsed ([`crate::cli`]).
pub fn run(command: Management, globals: Globals, io: &mut Io) -> i32 {
    let plan = plan(command);
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
        Reply::Daemons(info) => show_sync(info),
        Reply::Marks { rules } => show_marks(rules),
        other => {
            let _ = writeln!(io.err, "gwctl: unexpected reply from gatewayd: {other:?}");
            return 1;
        }
    };
    let _ = io.out.write_all(text.as_bytes());
    0
}

fn plan(command: Management) -> Plan {
    match command {
        Management::Addr { action: Some(AddrAction::Add(a)) } => {
            Plan::Change(Change::AddAddr { addr: interface_addr(a) })
        }
        Management::Addr { action: Some(AddrAction::Del(a)) } => {
            Plan::Change(Change::DeleteAddr { addr: interface_addr(a) })
        }
        Management::Addr { action: None | Some(AddrAction::Show) } => Plan::Show(Request::ListAddrs),
        Management::Route { action: Some(RouteAction::Add { dst, via, dev }) } => {
            let dst = dst.resolve(via);
            Plan::Change(Change::AddRoute {
                route: RouteConfig { dst: dst.addr, prefix_len: dst.len, via, ifname: dev },
            })
        }
        Management::Route { action: Some(RouteAction::Del { dst }) } => {
            let dst = dst.resolve(None);
            Plan::Change(Change::DeleteRoute { dst: dst.addr, prefix_len: dst.len })
        }
        Management::Route { action: None | Some(RouteAction::Show) } => Plan::Show(Request::ListRoutes),
        Management::Neigh { action: Some(NeighAction::Add { addr, lladdr, dev }) } => {
            Plan::Change(Change::AddNeighbour { neighbour: NeighbourConfig { addr, lladdr: lladdr.0, ifname: dev } })
        }
        Management::Neigh { action: Some(NeighAction::Del { addr, dev }) } => {
            Plan::Change(Change::DeleteNeighbour { addr, ifname: dev })
        }
        Management::Neigh { action: None | Some(NeighAction::Show) } => Plan::Show(Request::ListNeighbours),
        Management::Link { action: None | Some(ShowAction::Show) } => Plan::Show(Request::ListLinks),
        Management::Stats { action: None | Some(ShowAction::Show) } => Plan::Show(Request::GetStats),
        Management::Sync { action: None | Some(ShowAction::Show) } => Plan::Show(Request::ListDaemons),
        Management::Mark { action: Some(MarkAction::Add { mark, dst, protocol, ports }) } => {
            Plan::Change(Change::AddMark {
                rule: MarkRuleConfig {
                    mark,
                    dst: dst.addr,
                    prefix_len: dst.len,
                    protocol: protocol.map(TransportProtocol::from),
                    ports: ports.into_iter().flat_map(|p| p.0).collect(),
                },
            })
        }
        Management::Mark { action: Some(MarkAction::Del { mark }) } => Plan::Change(Change::DeleteMark { mark }),
        Management::Mark { action: None | Some(MarkAction::Show) } => Plan::Show(Request::ListMarks),
    }
}

fn interface_addr(a: AddrArgs) -> InterfaceAddr {
    InterfaceAddr { addr: a.addr.addr, prefix_len: a.addr.len, ifname: a.dev }
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
        if let Some(p) = &w.poll {
            // A burst from another worker's redirects counts its packets as redirected in.
            show_poll(&mut s, p, w.rx_packets + w.redirected_in);
        }
        s
    })
}

/// A worker's [`PollStats`]: how busy it was and how full its bursts, then
/// what a received packet cost, in cycles, in the pipeline, in sending, and
/// in receiving and the rest of the loop (what is left of the busy cycles).
fn show_poll(s: &mut String, p: &PollStats, packets: u64) {
    let total = p.busy.saturating_add(p.idle);
    let busy = if total == 0 { 0.0 } else { 100.0 * p.busy as f64 / total as f64 };
    let seconds = total as f64 / p.hz as f64;
    let per_burst = if p.bursts == 0 { 0.0 } else { packets as f64 / p.bursts as f64 };
    let _ = writeln!(
        s,
        "    poll busy {busy:.1} % of {seconds:.1} s, bursts {} ({per_burst:.1} packets a burst)",
        p.bursts
    );
    if packets > 0 {
        let per_packet = |cycles: u64| cycles / packets;
        let rest = p.busy.saturating_sub(p.pipeline).saturating_sub(p.send);
        let _ = writeln!(
            s,
            "    cycles a packet {}, pipeline {}, send {}, receive and the rest {}",
            per_packet(p.busy),
            per_packet(p.pipeline),
            per_packet(p.send),
            per_packet(rest)
        );
    }
}

/// The daemons as `-L --daemon` lists them, then each role's counters and the workers',
/// one a line (`    NAME VALUE`, as `gwctl stats`), every reason listed, zero or not.
fn show_sync(info: &SyncInfo) -> String {
    let mut s = crate::ipvsadm::format::daemons(&info.daemons);
    let (m, b, w) = (&info.master, &info.backup, &info.workers);
    let mut section = |title: &str, lines: &[(&str, u64)], reasons: (&str, &[(String, u64)])| {
        let _ = writeln!(s, "{title}");
        for (name, n) in lines {
            let _ = writeln!(s, "    {name} {n}");
        }
        let (what, counts) = reasons;
        for (reason, n) in counts {
            let _ = writeln!(s, "    {what} {reason} {n}");
        }
    };
    section(
        "master",
        &[
            ("records sent", m.records_sent),
            ("datagrams sent", m.datagrams_sent),
            ("send errors", m.send_errors),
            ("rate dropped", m.rate_dropped),
        ],
        ("", &[]),
    );
    section(
        "backup",
        &[
            ("datagrams received", b.datagrams_received),
            ("malformed", b.malformed.iter().map(|(_, n)| n).sum()),
            ("syncid mismatch", b.syncid_mismatch),
            ("stale", b.stale),
            ("records received", b.records_received),
            ("records skipped", b.records_skipped),
            ("records handed", b.records_handed),
            ("worker queue full", b.worker_queue_full),
        ],
        ("malformed", &b.malformed),
    );
    section(
        "workers",
        &[
            ("records queued", w.queued),
            ("queue full", w.queue_full),
            ("installed", w.installed),
            ("updated", w.updated),
            ("refused", w.refused.iter().map(|(_, n)| n).sum()),
        ],
        ("refused", &w.refused),
    );
    s
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

    fn plan_of(line: &str) -> Plan {
        let words: Vec<String> = line.split_whitespace().map(String::from).collect();
        match crate::cli::parse(&words) {
            Ok(crate::cli::Cli { command: crate::cli::Command::Manage(m), .. }) => plan(m),
            other => panic!("{line} is not a management line: {other:?}"),
        }
    }

    fn change(line: &str) -> Change {
        match plan_of(line) {
            Plan::Change(c) => c,
            Plan::Show(r) => panic!("{line} is not a change but {r:?}"),
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
            change("addr del 2001:db8::1 --dev dpdk1"),
            Change::DeleteAddr {
                addr: InterfaceAddr { addr: "2001:db8::1".parse().unwrap(), prefix_len: 128, ifname: "dpdk1".into() }
            }
        );
        let default_route = Change::AddRoute {
            route: RouteConfig {
                dst: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                via: Some("10.0.0.254".parse().unwrap()),
                ifname: "dpdk0".into(),
            },
        };
        assert_eq!(change("route add default via 10.0.0.254 dev dpdk0"), default_route);
        // Keyword pairs in either order, as iproute2 takes them.
        assert_eq!(change("route add default dev dpdk0 via 10.0.0.254"), default_route);
        assert_eq!(
            change("route del 192.168.0.0/16"),
            Change::DeleteRoute { dst: "192.168.0.0".parse().unwrap(), prefix_len: 16 }
        );
        assert_eq!(
            change("neigh add 10.0.0.254 dev dpdk0 lladdr 52:54:0:12:34:56"),
            Change::AddNeighbour {
                neighbour: NeighbourConfig {
                    addr: "10.0.0.254".parse().unwrap(),
                    lladdr: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                    ifname: "dpdk0".into()
                }
            }
        );
        assert_eq!(
            change("neigh del 10.0.0.254 dev dpdk0"),
            Change::DeleteNeighbour { addr: "10.0.0.254".parse().unwrap(), ifname: "dpdk0".into() }
        );
        assert_eq!(
            change("mark add 10 -d 172.18.100.7 -p tcp --dports 80,443 --dport 8000-8080"),
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
        assert_eq!(change("mark del 10"), Change::DeleteMark { mark: 10 });
    }

    #[test]
    fn show_is_the_default_and_has_iproute2s_aliases() {
        let shows = [
            ("addr", Request::ListAddrs),
            ("route", Request::ListRoutes),
            ("neigh", Request::ListNeighbours),
            ("link", Request::ListLinks),
            ("stats", Request::GetStats),
            ("sync", Request::ListDaemons),
            ("mark", Request::ListMarks),
        ];
        for (sub, request) in shows {
            for verb in ["", " show", " list", " ls"] {
                match plan_of(&format!("{sub}{verb}")) {
                    Plan::Show(r) => assert_eq!(r, request, "{sub}{verb}"),
                    Plan::Change(c) => panic!("{sub}{verb} planned {c:?}"),
                }
            }
        }
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
    fn sync_shows_the_daemons_then_every_counter() {
        let info = SyncInfo {
            daemons: vec![gwapi::api::SyncDaemonConfig {
                state: gwapi::api::SyncState::Master,
                mcast_interface: "gwk0".into(),
                syncid: 7,
            }],
            master: gwapi::api::SyncMasterStats {
                records_sent: 100,
                datagrams_sent: 4,
                send_errors: 1,
                rate_dropped: 2,
            },
            backup: gwapi::api::SyncBackupStats {
                malformed: vec![("truncated".into(), 3), ("bad_version".into(), 0)],
                ..Default::default()
            },
            workers: gwapi::api::WorkerSyncStats {
                queued: 101,
                queue_full: 1,
                installed: 0,
                updated: 0,
                refused: vec![("no_service".into(), 0), ("stale".into(), 2)],
            },
        };
        assert_eq!(
            show_sync(&info),
            "master sync daemon (mcast=gwk0, syncid=7)
master
    records sent 100
    datagrams sent 4
    send errors 1
    rate dropped 2
backup
    datagrams received 0
    malformed 3
    syncid mismatch 0
    stale 0
    records received 0
    records skipped 0
    records handed 0
    worker queue full 0
    malformed truncated 3
    malformed bad_version 0
workers
    records queued 101
    queue full 1
    installed 0
    updated 0
    refused 2
    refused no_service 0
    refused stale 2
"
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
