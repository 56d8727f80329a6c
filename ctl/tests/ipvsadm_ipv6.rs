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
//! `ipvs_cmp_services` order (fwmark, family, protocol, address, port).

mod common;

use common::{ip, FixedCounters, Gateway};
use gateway::model::{DestCounters, ServiceKey};
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
    // One service by its bracketed name (`list_service`: no version line).
    let head = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    let udp = "UDP  [2001:db8::53]:53 sh persistent 300\n  -> [2001:db8:1::53]:53          Route   1      0          0         \n";
    expect(&gw, "-Ln -u [2001:db8::53]:53", &format!("{head}{udp}"));
    expect(&gw, "-Ln -f 10", &format!("{head}FWM  10 IPv6 rr persistent 120 mask 48\n"));
    let o = gw.gwctl("-Ln -t [2001:db8::3]:80");
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (1, "", "No such service\n"));
    // The FNAT service's v6 local address, in DPVS's -G layout.
    let o = gw.gwctl("-G -t [2001:db8::2]:443");
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert!(o.stdout.starts_with("VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n[2001:db8::2]:443    1        \n"), "{}", o.stdout);
    assert!(o.stdout.contains(&format!("{:<20} {:<8} {:<20} ", "", "", "2001:db8:ff::1")), "{}", o.stdout);
    // The worker runs the v6 services the listing shows.
    let running = gw.running();
    let snap = &running.services;
    for (vip, port) in [("2001:db8::1", 80), ("2001:db8::2", 443)] {
        assert!(snap.service_id(&ServiceKey::tcp(ip(vip), port)).is_some(), "{vip}");
    }
}
