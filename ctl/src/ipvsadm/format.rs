//! ipvsadm's listings, byte for byte: `print_title`, `print_service_entry`,
//! `print_largenum`, `list_conn`, `list_timeout`, the `-S` rule format, and DPVS's `-G`.
//!
//! The quirks are reproduced on purpose, because scripts parse this output: service names
//! of IPv4 services are cut at 33 bytes and real-server names at 28; sorting uses libipvs's
//! comparators, which subtract 32-bit addresses into an `int` (so 10.0.0.1 sorts *after*
//! 192.168.0.200: the difference wraps), with a merge sort like glibc's `qsort`.

use std::fmt::Write;
use std::net::IpAddr;

use gwapi::addr::{family_bits, mask_prefix_len};

use gwapi::api::{
    ConnectionInfo, Forwarding, LaddrInfo, ServerInfo, ServiceInfo, ServiceTable, SyncDaemonConfig, SyncState,
    TimeoutsInfo, TransportProtocol, VirtualService,
};

use super::args::Format;
use crate::names::Names;

/// `addrport_to_anyname`: IPv6 addresses in brackets, `[2001:db8::1]:80`, and the whole
/// cut at 59 bytes (ipvsadm `snprintf`s it into 60), which only a long host name reaches.
pub fn addr_port(addr: IpAddr, port: u16, proto: TransportProtocol, fmt: &Format, names: &Names) -> String {
    let (open, close) = if addr.is_ipv4() { ("", "") } else { ("[", "]") };
    if fmt.numeric {
        return format!("{open}{}{close}:{port}", ntop(addr));
    }
    let host = names.host_name(addr).map(str::to_string).unwrap_or_else(|| ntop(addr));
    let port = names.service_name(port, proto).map(str::to_string).unwrap_or_else(|| port.to_string());
    truncate(format!("{open}{host}{close}:{port}"), 59)
}

/// glibc's `inet_ntop`. It differs from Rust's `Display` in one case: an IPv4-compatible
/// IPv6 address (96 zero bits, then an IPv4 address not in `0.0.0.0/16`) is printed with
/// the IPv4 address dotted, `::192.0.2.1`, where Rust prints `::c000:201`.
pub fn ntop(addr: IpAddr) -> String {
    match addr {
        IpAddr::V6(a) => {
            let w = a.segments();
            if w[..6] == [0; 6] && w[6] != 0 {
                let o = a.octets();
                format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15])
            } else {
                a.to_string()
            }
        }
        IpAddr::V4(a) => a.to_string(),
    }
}

/// `print_largenum`.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let digits = n.to_string().len();
        let width = if digits <= 8 { 9 } else { digits + 1 };
        return format!("{n:>width$}");
    }
    if n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

/// `print_title`.
pub fn title(fmt: &Format) -> String {
    let head = "Prot LocalAddress:Port";
    if fmt.stats {
        format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if fmt.rate {
        format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if fmt.thresholds {
        format!(
            "{head:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if fmt.persistent_conn {
        format!(
            "{head:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if !fmt.rule {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
            .to_string()
    } else {
        String::new()
    }
}

fn proto_of(vs: &VirtualService) -> TransportProtocol {
    match vs {
        VirtualService::Udp { .. } => TransportProtocol::Udp,
        // ipvsadm gives fwmark services TCP for name lookups.
        _ => TransportProtocol::Tcp,
    }
}

/// Whether a service is IPv6 (fwmark services: as their persistence mask says, which is
/// where `-6` leaves its trace).
fn is_v6(svc: &ServiceInfo) -> bool {
    match svc.config.service {
        VirtualService::Tcp { addr, .. } | VirtualService::Udp { addr, .. } => addr.is_ipv6(),
        VirtualService::Fwmark { .. } => svc.config.persistence.is_some_and(|p| p.netmask.is_ipv6()),
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// The mask's prefix length; the model refuses masks with holes.
fn prefix_len(mask: IpAddr) -> u8 {
    mask_prefix_len(mask).unwrap_or(family_bits(mask))
}

/// The service's name as `print_service_entry` builds it.
pub fn service_name(svc: &ServiceInfo, fmt: &Format, names: &Names) -> String {
    let v6 = is_v6(svc);
    match svc.config.service {
        VirtualService::Fwmark { mark } => match (fmt.rule, v6) {
            (true, true) => format!("-f {mark} -6"),
            (true, false) => format!("-f {mark}"),
            (false, true) => format!("FWM  {mark} IPv6"),
            (false, false) => format!("FWM  {mark}"),
        },
        VirtualService::Tcp { addr, port } | VirtualService::Udp { addr, port } => {
            let proto = proto_of(&svc.config.service);
            let vname = addr_port(addr, port, proto, fmt, names);
            let (flag, word) = match proto {
                TransportProtocol::Tcp => ("-t", "TCP"),
                TransportProtocol::Udp => ("-u", "UDP"),
            };
            if fmt.rule {
                format!("{flag} {vname}")
            } else if v6 {
                format!("{word}  {vname}")
            } else {
                truncate(format!("{word}  {vname}"), 33)
            }
        }
    }
}

fn fwd_name(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "Masq",
        Forwarding::Route => "Route",
        Forwarding::Tunnel => "Tunnel",
        Forwarding::FullNat => "FullNat",
    }
}

fn fwd_switch(f: Forwarding) -> &'static str {
    match f {
        Forwarding::Masq => "-m",
        Forwarding::Route => "-g",
        Forwarding::Tunnel => "-i",
        Forwarding::FullNat => "-b",
    }
}

/// `print_service_entry`: the service line and one line per real server (and, in the rule
/// format, one `-P` line per local address so `-R` restores them).
pub fn service_entry(svc: &ServiceInfo, fmt: &Format, names: &Names) -> String {
    let mut out = String::new();
    let name = service_name(svc, fmt, names);
    let v6 = is_v6(svc);
    let c = &svc.config;
    if fmt.rule {
        let _ = write!(out, "-A {name} -s {}", c.scheduler);
        if let Some(p) = c.persistence {
            let _ = write!(out, " -p {}", p.timeout);
            match p.netmask {
                IpAddr::V4(m) if m != std::net::Ipv4Addr::BROADCAST => {
                    let _ = write!(out, " -M {m}");
                }
                IpAddr::V6(_) if prefix_len(p.netmask) != 128 => {
                    let _ = write!(out, " -M {}", prefix_len(p.netmask));
                }
                _ => {}
            }
        }
        if c.one_packet {
            out.push_str(" -o");
        }
        if c.synproxy {
            out.push_str(" -j enable");
        }
        if let Some(v) = c.proxy_protocol {
            let _ = write!(out, " --proxy-protocol {}", v.as_str());
        }
    } else if fmt.stats || fmt.rate {
        let _ = write!(out, "{name:<33}");
        let s = &svc.stats;
        let nums = if fmt.stats {
            [s.conns, s.in_packets, s.out_packets, s.in_bytes, s.out_bytes]
        } else {
            [s.cps, s.in_pps, s.out_pps, s.in_bps, s.out_bps]
        };
        for n in nums {
            out.push_str(&largenum(n, fmt.exact));
        }
    } else {
        let _ = write!(out, "{name} {}", c.scheduler);
        if let Some(p) = c.persistence {
            let _ = write!(out, " persistent {}", p.timeout);
            match p.netmask {
                IpAddr::V4(m) if !v6 && m != std::net::Ipv4Addr::BROADCAST => {
                    let _ = write!(out, " mask {m}");
                }
                IpAddr::V6(_) if v6 && prefix_len(p.netmask) != 128 => {
                    let _ = write!(out, " mask {}", prefix_len(p.netmask));
                }
                _ => {}
            }
        }
        if c.one_packet {
            out.push_str(" ops");
        }
        if c.synproxy {
            out.push_str(" synproxy");
        }
        if let Some(v) = c.proxy_protocol {
            let _ = write!(out, " proxy-protocol {}", v.as_str());
        }
    }
    out.push('\n');

    let mut servers: Vec<&ServerInfo> = svc.servers.iter().collect();
    if !fmt.nosort {
        merge_sort(&mut servers, &|a, b| cmp_dests(a, b));
    }
    let proto = proto_of(&c.service);
    for d in servers {
        let cfg = &d.config;
        let dname = addr_port(cfg.addr, cfg.port, proto, fmt, names);
        // The server's own family decides, as `e->af` does in ipvsadm.
        let dname = if !fmt.rule && cfg.addr.is_ipv4() { truncate(dname, 28) } else { dname };
        if fmt.rule {
            let _ = write!(out, "-a {name} -r {dname} {} -w {}", fwd_switch(cfg.forwarding), cfg.weight);
            if cfg.upper_threshold != 0 {
                let _ = write!(out, " -x {}", cfg.upper_threshold);
            }
            if cfg.lower_threshold != 0 {
                let _ = write!(out, " -y {}", cfg.lower_threshold);
            }
            out.push('\n');
        } else if fmt.stats {
            let _ = write!(out, "  -> {dname:<28}");
            let s = &d.stats;
            for n in [s.conns, s.in_packets, s.out_packets, s.in_bytes, s.out_bytes] {
                out.push_str(&largenum(n, fmt.exact));
            }
            out.push('\n');
        } else if fmt.rate {
            let s = &d.stats;
            let _ = write!(out, "  -> {dname:<28} {:>8} {:>8} {:>8}", s.cps, s.in_pps, s.out_pps);
            out.push_str(&largenum(s.in_bps, fmt.exact));
            out.push_str(&largenum(s.out_bps, fmt.exact));
            out.push('\n');
        } else if fmt.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                cfg.upper_threshold, cfg.lower_threshold, d.active_conns, d.inactive_conns
            );
        } else if fmt.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.checked_weight.unwrap_or(cfg.weight),
                d.persistent_conns,
                d.active_conns,
                d.inactive_conns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(cfg.forwarding),
                // A server a health check holds shows the weight in force, as keepalived's
                // inhibited server does in ipvsadm's listing; -S saves the configured one.
                d.checked_weight.unwrap_or(cfg.weight),
                d.active_conns,
                d.inactive_conns
            );
        }
    }
    if fmt.rule {
        for l in &svc.laddrs {
            let _ = writeln!(out, "-P {name} -z {} -F {}", ntop(l.addr), l.ifname);
        }
    }
    out
}

/// `list_all`: the version line (not in the rule format), the title and every service.
pub fn list_all(table: &ServiceTable, fmt: &Format, names: &Names) -> String {
    let mut out = String::new();
    if !fmt.rule {
        let _ = writeln!(
            out,
            "IP Virtual Server version {} (size={})",
            table.info.ipvs_version, table.info.conn_table_size
        );
    }
    let mut services: Vec<&ServiceInfo> = table.services.iter().collect();
    if !fmt.nosort {
        merge_sort(&mut services, &|a, b| cmp_services(a, b));
    }
    out.push_str(&title(fmt));
    for svc in services {
        out.push_str(&service_entry(svc, fmt, names));
    }
    out
}

/// `list_service`: the title and the one service, no version line.
pub fn list_service(svc: &ServiceInfo, fmt: &Format, names: &Names) -> String {
    let mut out = title(fmt);
    out.push_str(&service_entry(svc, fmt, names));
    out
}

/// `list_conn` and `print_conn`. With `--persistent-conn` the title has ipvsadm's two
/// persistence-engine columns; rows fill them only for a connection with engine data
/// (IPVS's SIP engine), which this gateway does not have, so rows keep their six columns.
pub fn list_connections(conns: &[ConnectionInfo], fmt: &Format, names: &Names) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if fmt.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(out, "pro expire {:<11} {:<18} {:<18} destination", "state", "source", "virtual");
    }
    for c in conns {
        let proto = c.protocol;
        let word = match proto {
            TransportProtocol::Tcp => "TCP",
            TransportProtocol::Udp => "UDP",
        };
        let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        let cname = addr_port(c.client.0, c.client.1, proto, fmt, names);
        let vname = addr_port(c.virtual_addr.0, c.virtual_addr.1, proto, fmt, names);
        let dname = addr_port(c.server.0, c.server.1, proto, fmt, names);
        let _ = writeln!(out, "{word:<3} {expire:<6} {:<11} {cname:<18} {vname:<18} {dname}", c.state);
    }
    out
}

/// `list_timeout`.
pub fn timeouts(t: &TimeoutsInfo) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcp_fin, t.udp)
}

/// `-L --daemon`: ipvsadm's `list_daemon`, master first (a running daemon per line).
pub fn daemons(daemons: &[SyncDaemonConfig]) -> String {
    let mut out = String::new();
    for state in [SyncState::Master, SyncState::Backup] {
        for d in daemons.iter().filter(|d| d.state == state) {
            let name = if state == SyncState::Master { "master" } else { "backup" };
            let _ = writeln!(out, "{name} sync daemon (mcast={}, syncid={})", d.mcast_interface, d.syncid);
        }
    }
    out
}

/// DPVS's `-G` listing of a service's local addresses (always numeric, as DPVS prints it).
pub fn laddrs(service: &VirtualService, laddrs: &[LaddrInfo]) -> String {
    let mut out = format!("{:<20} {:<8} {:<20} {:<10} {:<10}\n", "VIP:VPORT", "TOTAL", "SNAT_IP", "CONFLICTS", "CONNS");
    let vname = match *service {
        VirtualService::Tcp { addr, port } | VirtualService::Udp { addr, port } => {
            addr_port(addr, port, proto_of(service), &Format { numeric: true, ..Format::default() }, &Names::none())
        }
        VirtualService::Fwmark { mark } => format!("FWM  {mark}"),
    };
    let _ = writeln!(out, "{vname:<20} {:<8} ", laddrs.len());
    for l in laddrs {
        let _ = writeln!(out, "{:<20} {:<8} {:<20} {:<10} {:<10}", "", "", ntop(l.addr), l.port_conflicts, l.conns);
    }
    out
}

/// `(int)(a - b)` of two 32-bit words, as libipvs computes it: the sign of a wrapped
/// difference.
fn c_sub(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn addr_words(addr: IpAddr) -> Vec<u32> {
    match addr {
        IpAddr::V4(a) => vec![u32::from(a)],
        IpAddr::V6(a) => a.octets().chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect(),
    }
}

fn cmp_addr(a: IpAddr, b: IpAddr) -> i32 {
    addr_words(a).into_iter().zip(addr_words(b)).map(|(x, y)| c_sub(x, y)).find(|&r| r != 0).unwrap_or(0)
}

/// libipvs's `ipvs_cmp_services`: fwmark, family, protocol, address, port.
fn cmp_services(a: &ServiceInfo, b: &ServiceInfo) -> i32 {
    // (fwmark, af, protocol, addr, port) as the kernel reports them.
    let key = |s: &ServiceInfo| -> (u32, i32, i32, Option<IpAddr>, i32) {
        let af = if is_v6(s) { 10 } else { 2 };
        match s.config.service {
            VirtualService::Tcp { addr, port } => (0, af, 6, Some(addr), i32::from(port)),
            VirtualService::Udp { addr, port } => (0, af, 17, Some(addr), i32::from(port)),
            VirtualService::Fwmark { mark } => (mark, af, 6, None, 0),
        }
    };
    let (ka, kb) = (key(a), key(b));
    let r = c_sub(ka.0, kb.0);
    if r != 0 {
        return r;
    }
    for r in [ka.1 - kb.1, ka.2 - kb.2] {
        if r != 0 {
            return r;
        }
    }
    if let (Some(x), Some(y)) = (ka.3, kb.3) {
        if x.is_ipv4() == y.is_ipv4() {
            let r = cmp_addr(x, y);
            if r != 0 {
                return r;
            }
        }
    }
    ka.4 - kb.4
}

/// libipvs's `ipvs_cmp_dests`: address, port.
fn cmp_dests(a: &ServerInfo, b: &ServerInfo) -> i32 {
    let (x, y) = (&a.config, &b.config);
    if x.addr.is_ipv4() == y.addr.is_ipv4() {
        let r = cmp_addr(x.addr, y.addr);
        if r != 0 {
            return r;
        }
    }
    i32::from(x.port) - i32::from(y.port)
}

/// glibc's `qsort` is a top-down merge sort (`msort`): halves of sizes n/2 and n - n/2,
/// merged taking from the left while `cmp(left, right) <= 0`. The comparators above are not
/// a total order, so only the same algorithm gives the same order; unlike `slice::sort_by`
/// it also cannot panic on an inconsistent comparator.
pub fn merge_sort<T: Copy>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = items.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    merge_sort(&mut items[..n1], cmp);
    merge_sort(&mut items[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&items[i], &items[j]) <= 0 {
            merged.push(items[i]);
            i += 1;
        } else {
            merged.push(items[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&items[i..n1]);
    merged.extend_from_slice(&items[j..n]);
    items.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_matches_print_largenum() {
        assert_eq!(largenum(0, false), "        0");
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(999_999_999, false), "  999999K");
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        assert_eq!(largenum(123_456_789_012, false), "     123G");
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        assert_eq!(largenum(5, true), "        5");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(12_345_678, true), " 12345678");
    }

    #[test]
    fn merge_sort_is_stable_and_total_on_totals() {
        let mut v = [5, 3, 9, 1, 3, 7];
        merge_sort(&mut v, &|a: &i32, b: &i32| a - b);
        assert_eq!(v, [1, 3, 3, 5, 7, 9]);
    }

    use gwapi::api::{GatewayInfo, PersistenceConfig, ServerConfig, ServiceConfig, TrafficStats};

    fn service(vs: VirtualService, persistence: Option<PersistenceConfig>, servers: &[(&str, u16)]) -> ServiceInfo {
        ServiceInfo {
            config: ServiceConfig {
                service: vs,
                scheduler: "rr".into(),
                persistence,
                one_packet: false,
                synproxy: false,
                proxy_protocol: None,
            },
            stats: TrafficStats::default(),
            servers: servers
                .iter()
                .map(|(a, p)| {
                    ServerInfo::configured(ServerConfig {
                        addr: a.parse().unwrap(),
                        port: *p,
                        forwarding: Forwarding::Masq,
                        weight: 1,
                        upper_threshold: 0,
                        lower_threshold: 0,
                    })
                })
                .collect(),
            laddrs: vec![],
        }
    }

    fn numeric() -> Format {
        Format { numeric: true, ..Format::default() }
    }

    #[test]
    fn ipv6_services_use_brackets_prefix_masks_and_are_not_cut() {
        let v6 = service(
            VirtualService::Tcp { addr: "2001:db8:1234:5678:9abc:def0:1234:5678".parse().unwrap(), port: 443 },
            Some(PersistenceConfig { timeout: 60, netmask: "ffff:ffff:ffff:ffff::".parse().unwrap() }),
            &[("2001:db8:1234:5678:9abc:def0:1234:9999", 8443)],
        );
        assert_eq!(
            service_entry(&v6, &numeric(), &Names::none()),
            "TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:443 rr persistent 60 mask 64\n  -> [2001:db8:1234:5678:9abc:def0:1234:9999]:8443 Masq    1      0          0         \n"
        );
        let rule = Format { rule: true, ..numeric() };
        assert_eq!(
            service_entry(&v6, &rule, &Names::none()),
            "-A -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -s rr -p 60 -M 64\n-a -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -r [2001:db8:1234:5678:9abc:def0:1234:9999]:8443 -m -w 1\n"
        );
        let fwm6 = service(
            VirtualService::Fwmark { mark: 7 },
            Some(PersistenceConfig {
                timeout: 300,
                netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(),
            }),
            &[],
        );
        assert_eq!(service_entry(&fwm6, &numeric(), &Names::none()), "FWM  7 IPv6 rr persistent 300\n");
        assert_eq!(service_entry(&fwm6, &rule, &Names::none()), "-A -f 7 -6 -s rr -p 300\n");
    }

    #[test]
    fn a_server_held_by_its_health_check_lists_the_weight_in_force_and_saves_the_configured_one() {
        let vip = VirtualService::Tcp { addr: "10.0.0.100".parse().unwrap(), port: 80 };
        let mut svc = service(vip, None, &[("192.168.1.10", 80), ("192.168.1.11", 80)]);
        svc.servers[0].config.weight = 5;
        svc.servers[0].checked_weight = Some(0);
        assert_eq!(
            service_entry(&svc, &numeric(), &Names::none()),
            "TCP  10.0.0.100:80 rr\n  -> 192.168.1.10:80              Masq    0      0          0         \n  -> 192.168.1.11:80              Masq    1      0          0         \n"
        );
        let persistent = Format { persistent_conn: true, ..numeric() };
        assert!(service_entry(&svc, &persistent, &Names::none())
            .contains(&format!("  -> {:<28} {:<9} 0", "192.168.1.10:80", 0)));
        let rule = Format { rule: true, ..numeric() };
        assert_eq!(
            service_entry(&svc, &rule, &Names::none()),
            "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.1.10:80 -m -w 5\n-a -t 10.0.0.100:80 -r 192.168.1.11:80 -m -w 1\n"
        );
    }

    #[test]
    fn long_ipv4_names_are_cut_like_ipvsadm() {
        let names = Names::parse("10.0.0.1 a-very-long-host-name.example.org\n", "");
        let svc =
            service(VirtualService::Udp { addr: "10.0.0.1".parse().unwrap(), port: 53 }, None, &[("10.0.0.1", 5353)]);
        let text = service_entry(&svc, &Format::default(), &names);
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), "UDP  a-very-long-host-name.exampl rr");
        assert_eq!(lines.next().unwrap(), "  -> a-very-long-host-name.exampl Masq    1      0          0         ");
    }

    #[test]
    fn sorting_follows_libipvs_and_nosort_keeps_insertion_order() {
        let tcp = |a: &str, p| VirtualService::Tcp { addr: a.parse().unwrap(), port: p };
        let table = ServiceTable {
            info: GatewayInfo { ipvs_version: "1.2.1".into(), conn_table_size: 4096, generation: 1 },
            services: vec![
                service(VirtualService::Fwmark { mark: 1 }, None, &[]),
                service(VirtualService::Udp { addr: "10.0.0.1".parse().unwrap(), port: 53 }, None, &[]),
                service(tcp("10.0.0.1", 80), None, &[("10.1.1.2", 80), ("10.1.1.1", 81), ("10.1.1.1", 80)]),
                service(tcp("192.168.0.200", 80), None, &[]),
                service(tcp("10.0.0.1", 22), None, &[]),
            ],
        };
        let firsts = |fmt: &Format| -> Vec<String> {
            list_all(&table, fmt, &Names::none())
                .lines()
                .skip(3)
                .filter(|l| !l.starts_with("  ->"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            firsts(&numeric()),
            [
                "TCP  192.168.0.200:80 rr",
                "TCP  10.0.0.1:22 rr",
                "TCP  10.0.0.1:80 rr",
                "UDP  10.0.0.1:53 rr",
                "FWM  1 rr"
            ]
        );
        let dests: Vec<String> = list_all(&table, &numeric(), &Names::none())
            .lines()
            .skip(3)
            .filter(|l| l.starts_with("  ->"))
            .map(|l| l[5..20].trim().to_string())
            .collect();
        assert_eq!(dests, ["10.1.1.1:80", "10.1.1.1:81", "10.1.1.2:80"]);
        let nosort = Format { nosort: true, ..numeric() };
        assert_eq!(
            firsts(&nosort),
            [
                "FWM  1 rr",
                "UDP  10.0.0.1:53 rr",
                "TCP  10.0.0.1:80 rr",
                "TCP  192.168.0.200:80 rr",
                "TCP  10.0.0.1:22 rr"
            ]
        );
    }

    #[test]
    fn one_packet_and_synproxy_flags() {
        let mut svc = service(VirtualService::Udp { addr: "10.0.0.1".parse().unwrap(), port: 53 }, None, &[]);
        svc.config.one_packet = true;
        assert_eq!(service_entry(&svc, &numeric(), &Names::none()), "UDP  10.0.0.1:53 rr ops\n");
        assert_eq!(
            service_entry(&svc, &Format { rule: true, ..numeric() }, &Names::none()),
            "-A -u 10.0.0.1:53 -s rr -o\n"
        );
        let mut web = service(VirtualService::Tcp { addr: "10.0.0.1".parse().unwrap(), port: 80 }, None, &[]);
        (web.config.synproxy, web.config.proxy_protocol) = (true, Some(gwapi::api::ProxyProtocol::V2));
        assert_eq!(service_entry(&web, &numeric(), &Names::none()), "TCP  10.0.0.1:80 rr synproxy proxy-protocol v2\n");
        assert_eq!(
            service_entry(&web, &Format { rule: true, ..numeric() }, &Names::none()),
            "-A -t 10.0.0.1:80 -s rr -j enable --proxy-protocol v2\n"
        );
    }

    #[test]
    fn server_rates_are_64_bit_as_in_ipvsadm_1_31() {
        let mut svc = service(
            VirtualService::Tcp { addr: "2001:db8::1".parse().unwrap(), port: 80 },
            None,
            &[("2001:db8::10", 80)],
        );
        svc.servers[0].stats.in_pps = 5_000_000_000;
        let rate = Format { rate: true, ..numeric() };
        // `"  -> %-28s %8llu %8llu %8llu"` of `stats64`, then two `print_largenum`s.
        assert_eq!(
            service_entry(&svc, &rate, &Names::none()).lines().nth(1).unwrap(),
            "  -> [2001:db8::10]:80                   0 5000000000        0        0        0"
        );
    }

    #[test]
    fn addresses_print_as_glibc_inet_ntop_prints_them() {
        for (addr, text) in [
            ("::192.0.2.7", "::192.0.2.7"),
            ("::ffff:192.0.2.7", "::ffff:192.0.2.7"),
            ("::1", "::1"),
            ("::", "::"),
            ("::0.0.1.0", "::100"),
            ("1:0:1:0:0:1:0:0", "1:0:1::1:0:0"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("10.0.0.1", "10.0.0.1"),
        ] {
            assert_eq!(ntop(addr.parse().unwrap()), text, "{addr}");
        }
    }

    #[test]
    fn addresses_compare_like_libipvs() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "192.168.0.200".parse().unwrap();
        assert!(cmp_addr(a, b) > 0, "the wrapped difference is positive");
        assert!(cmp_addr("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()) < 0);
    }
}
