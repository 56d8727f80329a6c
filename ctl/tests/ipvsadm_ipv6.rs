//! IPv6 in the ipvsadm surface, with the real gwctl binary against the control server and
//! the model: v6 services and real servers (TCP and UDP; NAT, DR and FNAT with a v6 local
//! address; persistence with a prefix-length mask; a v6 fwmark service) next to v4 ones,
//! listed in every format byte for byte as ipvsadm 1.31 prints them, a mixed-family table
//! through `-S`, `-C`, `-R`, and the bad inputs with ipvsadm's own error texts.
//!
//! The expected texts were derived from ipvsadm.c's format strings, not from gwctl:
//! `print_title`; `print_service_entry`'s `"%-4s %s"` service name, cut at 33 bytes only
//! when `se->af != AF_INET6`, `" mask %i"` (the prefix length) for an IPv6 service and
//! `" -M %i"` in the rule format, `"  -> %-28s %-7s %-6d %-10u %-10u"` and its `--stats`,
//! `--rate`, `--thresholds` and `--persistent-conn` siblings with the server name cut at 28
//! bytes only when `e->af != AF_INET6`; `addrport_to_anyname`'s `"%s%s%s:%u"` with `[`
//! and `]` around anything not `AF_INET`; `print_largenum`; `print_conn`'s
//! `"%-3s %-6s %-11s %-18s %-18s %s"` (a v6 address overflows its column); libipvs's
//! `ipvs_cmp_services` order (fwmark, family, protocol, address, port); DPVS's `-G`.

mod common;

use common::{ip, FixedCounters, Gateway};
use gateway::model::{DestCounters, ServiceKey};
use gateway::stats::TrafficCounts;
use gwapi::api::{ConnectionInfo, TransportProtocol};

/// A dual-stack table: every line is a change that prints nothing.
const RULES: [&str; 19] = [
    "-A -t 192.168.0.200:80 -s rr",
    "-a -t 192.168.0.200:80 -r 172.16.100.10 -m",
    "-A -t [2001:db8::1]:80 -s rr",
    "-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m",
    "-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m -w 2",
    "-E -t [2001:db8::1]:80 -s wlc -p 600 -M 64",
    // FNAT with a v6 local address.
    "-A -t [2001:db8::2]:443 -s rr",
    "-a -t [2001:db8::2]:443 -r [2001:db8:1::20]:8443 -b -w 3",
    "-P -t [2001:db8::2]:443 -z 2001:db8:ff::1 -F dpdk1",
    // A name of 45 bytes: not cut, as a v4 one would be at 33.
    "-A -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -s rr",
    // DR: the server's port is the service's; a bare v6 server address takes it.
    "-a -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -r 2001:db8:1234:5678:9abc:def0:1234:9999 -g",
    "-A -u 10.0.0.1:53 -s sh",
    "-A -u [2001:db8::53]:53 -s sh -p",
    "-a -u [2001:db8::53]:53 -r 2001:db8:1::53 -g",
    "-A -f 10 -6 -s rr -p 120 -M 48",
    "-A -f 3 -s rr -p",
    // Added and taken away again: a v6 server and service delete by their bracketed names.
    "-a -t [2001:db8::1]:80 -r [2001:db8::12]:80 -m",
    "-d -t [2001:db8::1]:80 -r [2001:db8::12]:80",
    "-D -t [2001:db8::9]:80",
];

fn configure(gw: &Gateway) {
    gw.ok("-A -t [2001:db8::9]:80 -s rr");
    for line in RULES {
        gw.ok(line);
    }
}

/// Acts as the dataplane on [2001:db8::1]:80: one connection established and one not yet
/// on its first server, with a persistence template; traffic through both servers and one
/// estimator step of a quarter second, which makes the rates the fed figures.
fn act_as_dataplane(gw: &Gateway) {
    let running = gw.running();
    let snap = &running.services;
    let svc = snap.service(snap.service_id(&ServiceKey::tcp(ip("2001:db8::1"), 80)).unwrap());
    let dest = |addr: &str, port| svc.dests()[svc.dest_index(ip(addr), port).unwrap()].counters();
    let (rs10, rs11) = (dest("2001:db8::10", 80), dest("2001:db8::11", 8080));
    rs10.bind();
    rs10.bind();
    rs10.set_active(true);
    rs10.bind_template();
    // (conns, in packets, in bytes, out packets, out bytes)
    let feed = |d: &DestCounters, (conns, ip, ib, op, ob): (u64, u64, u64, u64, u64)| {
        for _ in 0..conns {
            d.count_connection(0);
        }
        d.count_inbound(0, ip, ib);
        d.count_outbound(0, op, ob);
    };
    feed(rs10, (10, 300, 100_000_000, 290, 4000));
    feed(rs11, (2, 40, 23_456_789, 40, 1000));
    let quarter_second = std::time::Duration::from_millis(250);
    svc.traffic().estimate(quarter_second);
    rs10.traffic().estimate(quarter_second);
    rs11.traffic().estimate(quarter_second);
}

/// Connections the dataplane lists besides the two fixed IPv4 ones: a v6 client, and an
/// IPv4-compatible one, which glibc's `inet_ntop` (and so ipvsadm) prints dotted.
fn v6_connections() -> FixedCounters {
    let conn = |protocol, state: &str, expires, client, vip, server| ConnectionInfo {
        protocol,
        state: state.into(),
        expires,
        client,
        virtual_addr: vip,
        server,
        local: None,
        worker: 0,
    };
    FixedCounters {
        more_connections: vec![
            conn(
                TransportProtocol::Tcp,
                "SYN_RECV",
                7,
                (ip("2001:db8:ffff::5"), 40001),
                (ip("2001:db8::1"), 80),
                (ip("2001:db8::10"), 80),
            ),
            conn(
                TransportProtocol::Udp,
                "UDP",
                300,
                (ip("::192.0.2.7"), 5353),
                (ip("2001:db8::53"), 53),
                (ip("2001:db8:1::53"), 53),
            ),
        ],
        ..FixedCounters::default()
    }
}

const LIST: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.0.200:80 rr
  -> 172.16.100.10:80             Masq    1      0          0         
UDP  10.0.0.1:53 sh
TCP  [2001:db8::1]:80 wlc persistent 600 mask 64
  -> [2001:db8::10]:80            Masq    1      1          1         
  -> [2001:db8::11]:8080          Masq    2      0          0         
TCP  [2001:db8::2]:443 rr
  -> [2001:db8:1::20]:8443        FullNat 3      0          0         
TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:443 rr
  -> [2001:db8:1234:5678:9abc:def0:1234:9999]:443 Route   1      0          0         
UDP  [2001:db8::53]:53 sh persistent 300
  -> [2001:db8:1::53]:53          Route   1      0          0         
FWM  3 rr persistent 300
FWM  10 IPv6 rr persistent 120 mask 48
";

const STATS: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.0.200:80                    0        0        0        0        0
  -> 172.16.100.10:80                    0        0        0        0        0
UDP  10.0.0.1:53                         0        0        0        0        0
TCP  [2001:db8::1]:80                   12      340      330  123456K     5000
  -> [2001:db8::10]:80                  10      300      290  100000K     4000
  -> [2001:db8::11]:8080                 2       40       40 23456789     1000
TCP  [2001:db8::2]:443                   0        0        0        0        0
  -> [2001:db8:1::20]:8443               0        0        0        0        0
TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:443        0        0        0        0        0
  -> [2001:db8:1234:5678:9abc:def0:1234:9999]:443        0        0        0        0        0
UDP  [2001:db8::53]:53                   0        0        0        0        0
  -> [2001:db8:1::53]:53                 0        0        0        0        0
FWM  3                                   0        0        0        0        0
FWM  10 IPv6                             0        0        0        0        0
";

const RATE: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  192.168.0.200:80                    0        0        0        0        0
  -> 172.16.100.10:80                    0        0        0        0        0
UDP  10.0.0.1:53                         0        0        0        0        0
TCP  [2001:db8::1]:80                   12      340      330  123456K     5000
  -> [2001:db8::10]:80                  10      300      290  100000K     4000
  -> [2001:db8::11]:8080                 2       40       40 23456789     1000
TCP  [2001:db8::2]:443                   0        0        0        0        0
  -> [2001:db8:1::20]:8443               0        0        0        0        0
TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:443        0        0        0        0        0
  -> [2001:db8:1234:5678:9abc:def0:1234:9999]:443        0        0        0        0        0
UDP  [2001:db8::53]:53                   0        0        0        0        0
  -> [2001:db8:1::53]:53                 0        0        0        0        0
FWM  3                                   0        0        0        0        0
FWM  10 IPv6                             0        0        0        0        0
";

const THRESHOLDS: &str = "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  [2001:db8::1]:80 wlc persistent 600 mask 64
  -> [2001:db8::10]:80            0          0          1          1         
  -> [2001:db8::11]:8080          0          0          0          0         
";

const PERSISTENT_CONN: &str = "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  [2001:db8::1]:80 wlc persistent 600 mask 64
  -> [2001:db8::10]:80            1         1           1          1         
  -> [2001:db8::11]:8080          2         0           0          0         
";

const CONNS: &str = "IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:53  ESTABLISHED 203.0.113.5:40000  192.168.0.200:80   172.16.100.10:80
UDP 01:01  UDP         203.0.113.6:5353   10.0.0.1:53        172.16.100.12:53
TCP 00:07  SYN_RECV    [2001:db8:ffff::5]:40001 [2001:db8::1]:80   [2001:db8::10]:80
UDP 05:00  UDP         [::192.0.2.7]:5353 [2001:db8::53]:53  [2001:db8:1::53]:53
";

const LADDRS: &str = "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     
[2001:db8::2]:443    1        
                              2001:db8:ff::1       3          42        
";

/// `-c --persistent-conn`: `list_conn`'s title with the persistence engine's columns.
const CONNS_PE_TITLE: &str = "IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
";

const SAVED: &str = "-A -t 192.168.0.200:80 -s rr
-a -t 192.168.0.200:80 -r 172.16.100.10:80 -m -w 1
-A -u 10.0.0.1:53 -s sh
-A -t [2001:db8::1]:80 -s wlc -p 600 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m -w 1
-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m -w 2
-A -t [2001:db8::2]:443 -s rr
-a -t [2001:db8::2]:443 -r [2001:db8:1::20]:8443 -b -w 3
-P -t [2001:db8::2]:443 -z 2001:db8:ff::1 -F dpdk1
-A -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -s rr
-a -t [2001:db8:1234:5678:9abc:def0:1234:5678]:443 -r [2001:db8:1234:5678:9abc:def0:1234:9999]:443 -g -w 1
-A -u [2001:db8::53]:53 -s sh -p 300
-a -u [2001:db8::53]:53 -r [2001:db8:1::53]:53 -g -w 1
-A -f 3 -s rr -p 300
-A -f 10 -6 -s rr -p 120 -M 48
";

fn expect(gw: &Gateway, args: &str, stdout: &str) {
    let o = gw.gwctl(args);
    assert_eq!(o.stderr, "", "gwctl {args}");
    assert_eq!(o.code, 0, "gwctl {args}");
    assert_eq!(o.stdout, stdout, "gwctl {args}");
}

#[test]
fn ipv6_services_list_in_every_format_as_ipvsadm_prints_them() {
    let gw = Gateway::start_with(&std::env::temp_dir(), "v6-formats", v6_connections());
    configure(&gw);
    act_as_dataplane(&gw);
    expect(&gw, "-Ln", LIST);
    expect(&gw, "-Ln --stats", STATS);
    expect(&gw, "-Ln --rate", RATE);
    expect(&gw, "-Ln --thresholds -t [2001:db8::1]:80", THRESHOLDS);
    expect(&gw, "-Ln --persistent-conn -t [2001:db8::1]:80", PERSISTENT_CONN);
    expect(&gw, "-lnc", CONNS);
    let rows = CONNS.split_once("destination\n").unwrap().1;
    expect(&gw, "-lnc --persistent-conn", &format!("{CONNS_PE_TITLE}{rows}"));
    expect(&gw, "-S -n", SAVED);
    // -Z and -e by bracketed names.
    gw.ok("-Z -t [2001:db8::1]:80");
    let zero = "   0        0        0        0        0\n";
    let zeroed = STATS
        .replace("  12      340      330  123456K     5000\n", zero)
        .replace("  10      300      290  100000K     4000\n", zero)
        .replace("   2       40       40 23456789     1000\n", zero);
    assert_ne!(zeroed, STATS);
    expect(&gw, "-Ln --stats", &zeroed);
    gw.ok("-e -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m -w 5");
    assert!(gw.gwctl("-S -n").stdout.contains("\n-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m -w 5\n"));
    // One service by its bracketed name (`list_service`: no version line).
    let head = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    let udp = "UDP  [2001:db8::53]:53 sh persistent 300\n  -> [2001:db8:1::53]:53          Route   1      0          0         \n";
    expect(&gw, "-Ln -u [2001:db8::53]:53", &format!("{head}{udp}"));
    expect(&gw, "-Ln -f 10", &format!("{head}FWM  10 IPv6 rr persistent 120 mask 48\n"));
    let o = gw.gwctl("-Ln -t [2001:db8::3]:80");
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (1, "", "No such service\n"));
    // The FNAT service's v6 local address in DPVS's -G layout (`list_laddrs_print_*`: the
    // service as `addrport_to_anyname` numeric, the local address as bare `inet_ntop`).
    expect(&gw, "-G -t [2001:db8::2]:443", LADDRS);
    // The worker runs the v6 services the listing shows.
    let running = gw.running();
    let snap = &running.services;
    for (vip, port) in [("2001:db8::1", 80), ("2001:db8::2", 443)] {
        assert!(snap.service_id(&ServiceKey::tcp(ip(vip), port)).is_some(), "{vip}");
    }
}

#[test]
fn a_mixed_family_save_clears_and_restores_to_the_same_save() {
    let gw = Gateway::start("v6-roundtrip");
    configure(&gw);
    gw.ok("-a -u [2001:db8::53]:53 -r [2001:db8:1::54]:53 -g -w 0 -x 100 -y 50");
    let saved = gw.gwctl("-S -n");
    assert_eq!((saved.code, saved.stderr.as_str()), (0, ""));
    assert!(
        saved.stdout.contains("-a -u [2001:db8::53]:53 -r [2001:db8:1::54]:53 -g -w 0 -x 100 -y 50\n"),
        "{}",
        saved.stdout
    );
    gw.ok("-C");
    expect(&gw, "-S -n", "");
    let o = gw.gwctl_in("-R", &saved.stdout);
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (0, "", ""));
    expect(&gw, "-S -n", &saved.stdout);
    assert_eq!(gw.running().services.services().len(), 8);

    // A rule file whose last line puts an IPv4 server behind a v6 service: ipvsadm's text,
    // the line, and nothing restored.
    gw.ok("-C");
    let bad = format!("{}-a -t [2001:db8::2]:443 -r 10.0.0.2:8443 -m\n", saved.stdout);
    let o = gw.gwctl_in("-R", &bad);
    let line = saved.stdout.lines().count() + 1;
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            2,
            format!(
                "Different address family is allowed only for tunneling servers\n\
                 line {line}: -a -t [2001:db8::2]:443 -r 10.0.0.2:8443 -m; nothing was restored\n"
            )
            .as_str()
        )
    );
    expect(&gw, "-S -n", "");
}

/// Run `args`, expect a refusal with `status` and exactly `stderr`, and no change.
fn refused(gw: &Gateway, args: &str, status: i32, stderr: &str) {
    let before = gw.gwctl("-S -n").stdout;
    let o = gw.gwctl(args);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (status, "", stderr), "gwctl {args}");
    assert_eq!(gw.gwctl("-S -n").stdout, before, "gwctl {args} changed nothing");
}

#[test]
fn bad_ipv6_input_gets_ipvsadms_error_texts() {
    let gw = Gateway::start("v6-errors");
    gw.ok("-A -t [2001:db8::1]:80 -s rr");
    gw.ok("-A -t 10.0.0.1:80 -s rr");
    let family = "Different address family is allowed only for tunneling servers\n";
    // ipvsadm checks the family before asking the kernel; both directions, every method
    // but tunnelling (DR is the default).
    for args in [
        "-a -t [2001:db8::1]:80 -r 192.168.1.2:80 -m",
        "-a -t [2001:db8::1]:80 -r 192.168.1.2",
        "-a -t 10.0.0.1:80 -r [2001:db8::10]:80 -m",
        "-a -t 10.0.0.1:80 -r 2001:db8::10 -g",
        "-a -t 10.0.0.1:80 -r [2001:db8::10]:80 -b",
    ] {
        refused(&gw, args, 2, family);
    }
    // A tunnelled server passes ipvsadm's check; this gateway has no v4-in-v6 tunnel yet
    // and says so with the values.
    refused(
        &gw,
        "-a -t [2001:db8::1]:80 -r 192.168.1.2 -i",
        1,
        "real server 192.168.1.2:80 is not of the same address family as service TCP [2001:db8::1]:80\n",
    );
    refused(
        &gw,
        "-a -t 10.0.0.1:80 -r 2001:db8::10 -i",
        1,
        "real server [2001:db8::10]:80 is not of the same address family as service TCP 10.0.0.1:80\n",
    );
    let service = "illegal virtual server address[:port] specified\n";
    let server = "illegal real server address[:port] specified\n";
    for bad in
        ["[2001:db8::1:80", "2001:db8::1]:80", "[2001:db8::1]", "[2001:db8::1]:no-such-service", "[2001:db8::1]:65536"]
    {
        refused(&gw, &format!("-A -t {bad} -s rr"), 2, service);
        refused(&gw, &format!("-a -t [2001:db8::1]:80 -r {bad} -m"), 2, server);
    }
    let v6_mask = "illegal ipv6 netmask specified\n";
    refused(&gw, "-E -t [2001:db8::1]:80 -s rr -p 60 -M 129", 2, v6_mask);
    refused(&gw, "-E -t [2001:db8::1]:80 -s rr -p 60 -M 255.255.255.0", 2, v6_mask);
    refused(&gw, "-A -t [2001:db8::5]:80 -p -M 0", 2, v6_mask);
    refused(
        &gw,
        "-E -t 10.0.0.1:80 -s rr -p 60 -M 64",
        2,
        "illegal virtual server persistent mask specified: `64' is a prefix length, which only an IPv6 service takes; an IPv4 service's mask is dotted (255.255.255.0)\n",
    );
    // A local address must be of the family of the service's FNAT servers.
    gw.ok("-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -b");
    refused(
        &gw,
        "-P -t [2001:db8::1]:80 -z 192.168.1.254 -F dpdk1",
        1,
        "local address 192.168.1.254 is not of the address family of real server [2001:db8::10]:80 in service TCP [2001:db8::1]:80\n",
    );
    refused(
        &gw,
        "-P -t 10.0.0.1:80 -z 2001:db8::254 -F dpdk1",
        1,
        "local address 2001:db8::254 is not of the same address family as service TCP 10.0.0.1:80\n",
    );
    // NAT64: IPv4 servers in full NAT behind an IPv6 service, with IPv4 local
    // addresses; never mixed with IPv6 servers, the SYN proxy or the PROXY
    // protocol, and an IPv4 local address is not shared with an IPv4 service.
    gw.ok("-A -t [2001:db8::64]:80 -s rr");
    gw.ok("-a -t [2001:db8::64]:80 -r 192.168.1.20:8080 -b");
    gw.ok("-P -t [2001:db8::64]:80 -z 192.168.1.250 -F dpdk1");
    refused(
        &gw,
        "-a -t [2001:db8::64]:80 -r [2001:db8::20]:80 -b",
        1,
        "real server [2001:db8::20]:80 is not of the address family of real server 192.168.1.20:8080 in service TCP [2001:db8::64]:80: a service's real servers are of one family (an IPv6 service's IPv4 servers are reached by NAT64)\n",
    );
    refused(
        &gw,
        "-P -t [2001:db8::64]:80 -z 2001:db8::250 -F dpdk1",
        1,
        "local address 2001:db8::250 is not of the address family of real server 192.168.1.20:8080 in service TCP [2001:db8::64]:80\n",
    );
    refused(
        &gw,
        "-E -t [2001:db8::64]:80 -s rr -j enable",
        1,
        "the SYN proxy (-j enable) is not available for NAT64 (IPv6 service TCP [2001:db8::64]:80 with IPv4 real servers)\n",
    );
    gw.ok("-A -t 10.0.0.64:80 -s rr");
    refused(
        &gw,
        "-P -t 10.0.0.64:80 -z 192.168.1.250 -F dpdk1",
        1,
        "local address 192.168.1.250 of service TCP 10.0.0.64:80 is a local address of service TCP [2001:db8::64]:80 too: an IPv4 local address serves IPv4 services or NAT64 ones, not both (each has its own port pools)\n",
    );
    gw.ok("-D -t 10.0.0.64:80");
    assert!(gw
        .gwctl("-Ln -t [2001:db8::64]:80")
        .stdout
        .contains("  -> 192.168.1.20:8080            FullNat 1      0          0"));
    gw.ok("-D -t [2001:db8::64]:80");
    // The edges that are accepted: -M 128 (the default, so not shown) and -M 1.
    gw.ok("-E -t [2001:db8::1]:80 -s rr -p 60 -M 128");
    let listed = |gw: &Gateway| gw.gwctl("-Ln -t [2001:db8::1]:80").stdout.lines().nth(2).unwrap().to_string();
    assert_eq!(listed(&gw), "TCP  [2001:db8::1]:80 rr persistent 60");
    gw.ok("-E -t [2001:db8::1]:80 -s rr -p 60 -M 1");
    assert_eq!(listed(&gw), "TCP  [2001:db8::1]:80 rr persistent 60 mask 1");
}

/// Without `-n`, v6 addresses take their hosts-file names inside the brackets, are not cut
/// at 28 or 33 bytes, and are cut at 59 (`addrport_to_anyname`'s 60-byte buffer); the
/// order is still the addresses' (`ipvs_cmp_dests`).
#[test]
fn ipv6_names_are_bracketed_and_cut_only_at_59_bytes() {
    let gw = Gateway::start("v6-names");
    gw.ok("-A -t [2001:db8::1]:80 -s rr");
    gw.ok("-a -t [2001:db8::1]:80 -r [2001:db8::10]:8080 -m");
    gw.ok("-a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -m");
    let dir = gw.socket.parent().unwrap().to_path_buf();
    let (hosts, services) = (dir.join("hosts"), dir.join("services"));
    std::fs::write(
        &hosts,
        "2001:db8::1 www6.example.org www6\n2001:db8::10 rs10.example\n\
         2001:db8::11 a-very-long-host-name-for-an-ipv6-real-server.example.org.x\n",
    )
    .unwrap();
    std::fs::write(&services, "http 80/tcp www\n").unwrap();
    let env = [("GWCTL_HOSTS", hosts.to_str().unwrap()), ("GWCTL_SERVICES", services.to_str().unwrap())];
    let o = common::gwctl_with(&gw.socket, ["-L"], "", &env);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(
        o.stdout,
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  [www6.example.org]:http rr
  -> [rs10.example]:8080          Masq    1      0          0         
  -> [a-very-long-host-name-for-an-ipv6-real-server.example.org. Masq    1      0          0         
"
    );
    let o = common::gwctl_with(&gw.socket, ["-S"], "", &env);
    assert_eq!(
        o.stdout,
        "-A -t [www6.example.org]:http -s rr
-a -t [www6.example.org]:http -r [rs10.example]:8080 -m -w 1
-a -t [www6.example.org]:http -r [a-very-long-host-name-for-an-ipv6-real-server.example.org. -m -w 1
"
    );
}
