//! Every example of IPVSADM.md's last section, run with the real gwctl binary against the
//! control server and the model, output compared byte for byte with what ipvsadm prints for
//! the same table. The expected texts are written out from ipvsadm's format strings
//! (`print_title`, `print_service_entry`, `print_largenum`, `list_conn`, DPVS's `-G`).

mod common;

use common::Gateway;
use gateway::stats::TrafficCounts;

/// The examples, in the order IPVSADM.md gives them: each is a change that prints nothing.
fn configure(gw: &Gateway) {
    for line in [
        "-A -t 192.168.0.200:80 -s rr",
        "-a -t 192.168.0.200:80 -r 172.16.100.10 -m",
        "-a -t 192.168.0.200:80 -r 172.16.100.11:8080 -m -w 2",
        "-E -t 192.168.0.200:80 -s wlc -p 600 -M 255.255.255.0",
        "-A -u 10.0.0.1:53 -s sh",
        "-A -t 10.0.0.1:0 -s rr -p",
        "-A -f 10 -s rr -p",
        "-A -t 10.0.0.1:80 -s rr -j enable",
        "-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -b -w 3",
        "-P -t 10.0.0.1:80 -z 192.168.1.254 -F dpdk1",
    ] {
        gw.ok(line);
    }
}

/// Acts as the dataplane: one connection established and one not yet on 172.16.100.10:80,
/// and one persistence template pointing at it.
fn bind_connections(gw: &Gateway) {
    let running = gw.running();
    let snap = &running.services;
    let id = snap.service_id(&gateway::model::ServiceKey::tcp(common::ip("192.168.0.200"), 80)).unwrap();
    let svc = snap.service(id);
    let dest = &svc.dests()[svc.dest_index(common::ip("172.16.100.10"), 80).unwrap()];
    dest.counters().bind();
    dest.counters().bind();
    dest.counters().set_active(true);
    dest.counters().bind_template();
}

/// Acts as the dataplane: traffic through the two real servers of 192.168.0.200:80, one
/// estimator step that makes the rates equal to the first part's per-second figures
/// (a quarter of the way toward four times them), then the rest of the traffic. The
/// numbers exercise every width and unit of the listings.
fn record_traffic(gw: &Gateway) {
    let running = gw.running();
    let snap = &running.services;
    let key = gateway::model::ServiceKey::tcp(common::ip("192.168.0.200"), 80);
    let svc = snap.service(snap.service_id(&key).unwrap());
    let dest = |addr: &str, port| svc.dests()[svc.dest_index(common::ip(addr), port).unwrap()].counters();
    let (rs10, rs11) = (dest("172.16.100.10", 80), dest("172.16.100.11", 8080));
    // (conns, in packets, in bytes, out packets, out bytes)
    let feed = |d: &gateway::model::DestCounters, (conns, ip, ib, op, ob): (u64, u64, u64, u64, u64)| {
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
    feed(rs10, (990, 99_999_700, 999_900_000_000, 0, 0));
    feed(rs11, (232, 23_456_749, 499_976_543_211, 99_999_669, 249_999_995_000));
}

const LIST: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.0.200:80 wlc persistent 600 mask 255.255.255.0
  -> 172.16.100.10:80             Masq    1      1          1         
  -> 172.16.100.11:8080           Masq    2      0          0         
TCP  10.0.0.1:0 rr persistent 300
TCP  10.0.0.1:80 rr synproxy
  -> 192.168.1.2:8080             FullNat 3      0          0         
UDP  10.0.0.1:53 sh
FWM  10 rr persistent 300
";

const LIST_NAMES: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.168.0.200:http wlc persistent 600 mask 255.255.255.0
  -> 172.16.100.10:http           Masq    1      1          1         
  -> 172.16.100.11:8080           Masq    2      0          0         
TCP  10.0.0.1:0 rr persistent 300
TCP  10.0.0.1:http rr synproxy
  -> 192.168.1.2:8080             FullNat 3      0          0         
UDP  10.0.0.1:domain sh
FWM  10 rr persistent 300
";

const STATS: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.0.200:80                 1234  123456K 99999999    1500G     250G
  -> 172.16.100.10:80                 1000  100000K      290    1000G     4000
  -> 172.16.100.11:8080                234 23456789 99999709     500G     249G
TCP  10.0.0.1:0                          0        0        0        0        0
TCP  10.0.0.1:80                         0        0        0        0        0
  -> 192.168.1.2:8080                    0        0        0        0        0
UDP  10.0.0.1:53                         0        0        0        0        0
FWM  10                                  0        0        0        0        0
";

const STATS_EXACT: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  192.168.0.200:80                 1234 123456789 99999999 1500000000000 250000000000
  -> 172.16.100.10:80                 1000 100000000      290 1000000000000     4000
  -> 172.16.100.11:8080                234 23456789 99999709 500000000000 249999996000
TCP  10.0.0.1:0                          0        0        0        0        0
TCP  10.0.0.1:80                         0        0        0        0        0
  -> 192.168.1.2:8080                    0        0        0        0        0
UDP  10.0.0.1:53                         0        0        0        0        0
FWM  10                                  0        0        0        0        0
";

const RATE: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  192.168.0.200:80                   12      340      330  123456K     5000
  -> 172.16.100.10:80                   10      300      290  100000K     4000
  -> 172.16.100.11:8080                  2       40       40 23456789     1000
TCP  10.0.0.1:0                          0        0        0        0        0
TCP  10.0.0.1:80                         0        0        0        0        0
  -> 192.168.1.2:8080                    0        0        0        0        0
UDP  10.0.0.1:53                         0        0        0        0        0
FWM  10                                  0        0        0        0        0
";

const CONNS: &str = "IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:53  ESTABLISHED 203.0.113.5:40000  192.168.0.200:80   172.16.100.10:80
UDP 01:01  UDP         203.0.113.6:5353   10.0.0.1:53        172.16.100.12:53
";

const LADDRS: &str = "VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     
10.0.0.1:80          1        
                              192.168.1.254        3          42        
";

const THRESHOLDS: &str = "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.0.200:80 wlc persistent 600 mask 255.255.255.0
  -> 172.16.100.10:80             0          0          1          1         
  -> 172.16.100.11:8080           0          0          0          0         
";

const PERSISTENT_CONN: &str = "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  192.168.0.200:80 wlc persistent 600 mask 255.255.255.0
  -> 172.16.100.10:80             1         1           1          1         
  -> 172.16.100.11:8080           2         0           0          0         
";

const SAVED: &str = "-A -t 192.168.0.200:80 -s wlc -p 600 -M 255.255.255.0
-a -t 192.168.0.200:80 -r 172.16.100.10:80 -m -w 1
-a -t 192.168.0.200:80 -r 172.16.100.11:8080 -m -w 2
-A -t 10.0.0.1:0 -s rr -p 300
-A -t 10.0.0.1:80 -s rr -j enable
-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -b -w 3
-P -t 10.0.0.1:80 -z 192.168.1.254 -F dpdk1
-A -u 10.0.0.1:53 -s sh
-A -f 10 -s rr -p 300
";

fn expect(gw: &Gateway, args: &str, stdout: &str) {
    let o = gw.gwctl(args);
    assert_eq!(o.stderr, "", "gwctl {args}");
    assert_eq!(o.code, 0, "gwctl {args}");
    assert_eq!(o.stdout, stdout, "gwctl {args}");
}

#[test]
fn every_example_prints_what_ipvsadm_prints() {
    let gw = Gateway::start("examples");
    configure(&gw);
    bind_connections(&gw);
    record_traffic(&gw);
    expect(&gw, "-Ln", LIST);
    expect(&gw, "-L -n", LIST);
    // No arguments: `-L` with names (from controlled databases here).
    let dir = gw.socket.parent().unwrap().to_path_buf();
    std::fs::write(dir.join("hosts"), "").unwrap();
    std::fs::write(dir.join("services"), "http 80/tcp\ndomain 53/udp\n").unwrap();
    let (hosts, services) = (dir.join("hosts"), dir.join("services"));
    let env = [("GWCTL_HOSTS", hosts.to_str().unwrap()), ("GWCTL_SERVICES", services.to_str().unwrap())];
    let o = common::gwctl_with(&gw.socket, [], "", &env);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert_eq!(o.stdout, LIST_NAMES);
    expect(&gw, "--list --numeric", LIST);
    expect(&gw, "-Ln --stats", STATS);
    expect(&gw, "-Ln --stats --exact", STATS_EXACT);
    expect(&gw, "-L -n --rate", RATE);
    expect(&gw, "-lnc", CONNS);
    expect(&gw, "-L --timeout", "Timeout (tcp tcpfin udp): 900 120 300\n");
    expect(&gw, "-G -t 10.0.0.1:80", LADDRS);
    expect(&gw, "-Ln --thresholds -t 192.168.0.200:80", THRESHOLDS);
    expect(&gw, "-Ln --persistent-conn -t 192.168.0.200:80", PERSISTENT_CONN);
    expect(&gw, "-L --daemon", "");
    // ipvsadm's list_daemon, master first whatever the order they started in.
    gw.ok("--start-daemon backup --mcast-interface lo");
    gw.ok("--start-daemon master --mcast-interface lo --syncid 7");
    let daemons = "master sync daemon (mcast=lo, syncid=7)\nbackup sync daemon (mcast=lo, syncid=255)\n";
    expect(&gw, "-L --daemon", daemons);
    expect(&gw, "-Ln --daemon", daemons);
    let sync = gw.gwctl("sync");
    assert_eq!((sync.code, sync.stderr.as_str()), (0, ""));
    assert!(sync.stdout.starts_with(daemons), "{}", sync.stdout);
    assert!(sync.stdout.contains("\nmaster\n    records sent 0\n    datagrams sent 0\n    send errors 0\n"));
    for reason in ["truncated", "bad_version", "size_mismatch", "bad_record", "bad_option"] {
        assert!(sync.stdout.contains(&format!("\n    malformed {reason} 0\n")), "{reason}: {}", sync.stdout);
    }
    for reason in ["no_service", "no_dest", "no_local_address", "port_in_use", "table_full", "stale"] {
        assert!(sync.stdout.contains(&format!("\n    refused {reason} 0\n")), "{reason}: {}", sync.stdout);
    }
    let json = gw.gwctl("--json sync");
    let reply: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(reply["reply"], "daemons");
    assert_eq!(reply["daemons"][0], serde_json::json!({"state": "master", "mcast_interface": "lo", "syncid": 7}));
    assert_eq!(reply["backup"]["datagrams_received"], 0);
    // ipvsadm's save has no daemons.
    expect(&gw, "-S -n", SAVED);
    gw.ok("--stop-daemon master");
    gw.ok("--stop-daemon backup");
    expect(&gw, "-L --daemon", "");
    gw.ok("--set 900 120 300");
    gw.ok("--set 0 60 0");
    expect(&gw, "-L --timeout", "Timeout (tcp tcpfin udp): 900 60 300\n");
    gw.ok("-Z -t 192.168.0.200:80");
    expect(
        &gw,
        "-Ln --stats",
        &STATS
            .replace("1234  123456K 99999999    1500G     250G", "   0        0        0        0        0")
            .replace("1000  100000K      290    1000G     4000", "   0        0        0        0        0")
            .replace(" 234 23456789 99999709     500G     249G", "   0        0        0        0        0"),
    );
    gw.ok("-Z");
    // The worker runs exactly what the last change published.
    assert_eq!(gw.running().services.timeouts().tcp_fin(), 60);
}

#[test]
fn save_clear_restore_gives_back_the_same_save() {
    let gw = Gateway::start("roundtrip");
    configure(&gw);
    gw.ok("-a -t 192.168.0.200:80 -r 172.16.100.12 -m -w 0 -x 100 -y 50");
    let saved = gw.gwctl("-S -n");
    assert_eq!(saved.code, 0);
    assert!(
        saved.stdout.contains("-a -t 192.168.0.200:80 -r 172.16.100.12:80 -m -w 0 -x 100 -y 50\n"),
        "{}",
        saved.stdout
    );
    gw.ok("-C");
    expect(&gw, "-S -n", "");
    expect(
        &gw,
        "-Ln",
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    // Comments, blank lines and a leading program name are accepted, as ipvsadm does.
    let input = format!("# saved by gwctl -S -n\n\n{}ipvsadm -A -t 10.9.9.9:443 -s rr\n", saved.stdout);
    let o = gw.gwctl_in("-R", &input);
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (0, "", ""));
    gw.ok("-D -t 10.9.9.9:443");
    expect(&gw, "-S -n", &saved.stdout);
}

#[test]
fn names_without_n_come_from_the_hosts_and_services_files() {
    let gw = Gateway::start("names");
    gw.ok("-A -t 192.168.0.200:80 -s rr");
    gw.ok("-a -t 192.168.0.200:80 -r 172.16.100.10:8080 -m");
    let dir = gw.socket.parent().unwrap().to_path_buf();
    let hosts = dir.join("hosts");
    let services = dir.join("services");
    std::fs::write(&hosts, "192.168.0.200 vip.example vip\n").unwrap();
    std::fs::write(&services, "http 80/tcp www\n").unwrap();
    let env = [("GWCTL_HOSTS", hosts.to_str().unwrap()), ("GWCTL_SERVICES", services.to_str().unwrap())];
    let o = common::gwctl_with(&gw.socket, ["-L"], "", &env);
    assert_eq!(
        o.stdout,
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  vip.example:http rr\n  -> 172.16.100.10:8080           Masq    1      0          0         \n"
    );
    let o = common::gwctl_with(&gw.socket, ["-S"], "", &env);
    assert_eq!(o.stdout, "-A -t vip.example:http -s rr\n-a -t vip.example:http -r 172.16.100.10:8080 -m -w 1\n");
    // Names are accepted on input too.
    let o = common::gwctl_with(&gw.socket, ["-a", "-t", "vip:www", "-r", "172.16.100.11:http", "-m"], "", &env);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    let o = gw.gwctl("-S -n");
    assert!(o.stdout.contains("-a -t 192.168.0.200:80 -r 172.16.100.11:80 -m -w 1\n"), "{}", o.stdout);
}

#[test]
fn json_listings_are_the_reply_structure() {
    let gw = Gateway::start("json");
    configure(&gw);
    record_traffic(&gw);
    let o = gw.gwctl("-Ln --json");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["reply"], "services");
    assert_eq!(v["info"]["conn_table_size"], 4096);
    let services = v["services"].as_array().unwrap();
    assert_eq!(services.len(), 5);
    assert_eq!(services[0]["config"]["service"]["tcp"]["addr"], "192.168.0.200");
    assert_eq!(services[0]["servers"][1]["config"]["weight"], 2);
    assert_eq!(services[0]["stats"]["in_packets"], 123_456_789);
    assert_eq!(services[0]["stats"]["in_pps"], 340);
    assert_eq!(services[0]["servers"][1]["stats"]["conns"], 234);
    let bare = gw.gwctl("--json");
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    assert!(bare.stdout.starts_with("{\n  \"reply\": \"services\""), "{}", bare.stdout);
    let o = gw.gwctl("-A -t 10.0.0.9:80 -s rr --json");
    assert_eq!(o.code, 0);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!((v["reply"].as_str(), v["generation"].as_u64()), (Some("applied"), Some(11)));
    for args in [
        "-lnc --json",
        "-L --timeout --json",
        "-G -t 10.0.0.1:80 --json",
        "--json link",
        "--json stats",
        "mark show --json",
    ] {
        let o = gw.gwctl(args);
        assert_eq!(o.code, 0, "{args}: {}", o.stderr);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{args}: {e}"));
        assert!(v["reply"].is_string(), "{args}");
    }
}

#[test]
fn help_and_version_need_no_gateway() {
    let missing = std::env::temp_dir().join("gwctl-no-such-gateway.sock");
    let o = common::gwctl_with(&missing, ["-h"], "", &[]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    assert!(
        o.stdout.starts_with(
            "gwctl v0.1.0 (ipvsadm 1.31 compatible, IPVS v1.2.1)\nUsage:\n  gwctl -A|E -t|u|f service-address"
        ),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("  --fullnat      -b                   full NAT"));
    let o = common::gwctl_with(&missing, ["--version"], "", &[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "gwctl v0.1.0 (ipvsadm 1.31 compatible, IPVS v1.2.1)\n"));
}

/// `gwctl -Sn | gwctl -R` of a production-sized table: 100 000 rules (20 000 services of 4
/// real servers each) restore as one transaction. With a bad last line nothing is applied;
/// without it everything is, and `-Sn` gives the rules back. Prints the times.
#[test]
fn a_restore_of_100k_rules_is_one_transaction() {
    let gw = Gateway::start("restore100k");
    let mut rules = String::new();
    for s in 0..20_000u32 {
        let vip = std::net::Ipv4Addr::from(0x0a00_0000 + s);
        rules.push_str(&format!("-A -t {vip}:80 -s wrr\n"));
        for r in 0..4u32 {
            let rip = std::net::Ipv4Addr::from(0xac10_0000 + s * 4 + r);
            rules.push_str(&format!("-a -t {vip}:80 -r {rip}:8080 -m -w {}\n", r + 1));
        }
    }
    assert_eq!(rules.lines().count(), 100_000);

    // The last line adds a real server that already exists: nothing is restored.
    let bad = format!("{rules}-a -t 10.0.0.0:80 -r 172.16.0.0:8080 -m\n");
    let o = gw.gwctl_in("-R", &bad);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (1, "Destination already exists\nline 100001: real server 172.16.0.0:8080 already exists in service TCP 10.0.0.0:80; nothing was restored\n")
    );
    assert_eq!(gw.running().services.services().len(), 0, "nothing applied");
    expect(&gw, "-S -n", "");

    let t = std::time::Instant::now();
    let o = gw.gwctl_in("-R", &rules);
    let restore = t.elapsed();
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (0, "", ""));
    assert_eq!(gw.running().services.services().len(), 20_000);
    assert_eq!(gw.running().services.generation(), 1, "one snapshot");
    let t = std::time::Instant::now();
    let saved = gw.gwctl("-S -n");
    let save = t.elapsed();
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    assert_eq!(saved.stdout.lines().count(), 100_000);
    let mut want: Vec<&str> = rules.lines().collect();
    let mut got: Vec<&str> = saved.stdout.lines().collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    eprintln!("100k rules: -R {restore:?}, -Sn {save:?}");
}

/// A connection listing that misses rows (a worker that did not answer, the listing's bound)
/// prints the rows it has exactly as ipvsadm does, then says what is missing, and fails.
#[test]
fn an_incomplete_connection_listing_says_so_and_fails() {
    let missing = vec![
        "worker 1 did not answer within 2s: its connections after the first 0 are missing".to_string(),
        "the listing stops at 1000000 connections, its bound; the workers' tables hold more".to_string(),
    ];
    let gw = Gateway::start_with(
        &std::env::temp_dir(),
        "incomplete",
        common::FixedCounters { missing, ..Default::default() },
    );
    let o = gw.gwctl("-lnc");
    assert_eq!(o.stdout, CONNS, "the rows it has, byte for byte");
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            1,
            "gwctl: the connection listing is incomplete: worker 1 did not answer within 2s: its connections after the first 0 are missing\n\
             gwctl: the connection listing is incomplete: the listing stops at 1000000 connections, its bound; the workers' tables hold more\n"
        )
    );
    let o = gw.gwctl("--json -lnc");
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("\"incomplete\": ["), "{}", o.stdout);
}
