//! `gwctl addr|route|neigh|link|stats|mark` through the binary against the control server.

mod common;

use common::Gateway;

fn expect(gw: &Gateway, args: &str, code: i32, stdout: &str, stderr: &str) {
    let o = gw.gwctl(args);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (code, stdout, stderr), "gwctl {args}");
}

#[test]
fn addresses_routes_and_neighbours_are_configuration() {
    let gw = Gateway::start("net");
    gw.ok("addr add 10.0.0.1/24 dev dpdk0");
    gw.ok("addr add 2001:db8::1/64 dev dpdk0");
    gw.ok("route add default via 10.0.0.254 dev dpdk0");
    gw.ok("route add 192.168.0.0/16 dev dpdk1");
    gw.ok("neigh add 10.0.0.254 lladdr 52:54:00:12:34:56 dev dpdk0");
    expect(&gw, "addr", 0, "inet 10.0.0.1/24 dev dpdk0\ninet6 2001:db8::1/64 dev dpdk0\n", "");
    expect(&gw, "route show", 0, "default via 10.0.0.254 dev dpdk0\n192.168.0.0/16 dev dpdk1\n", "");
    expect(&gw, "neigh show", 0, "10.0.0.254 dev dpdk0 lladdr 52:54:00:12:34:56 PERMANENT\n", "");
    // The worker runs the same table.
    assert_eq!(gw.running().net.routes().len(), 2);

    expect(&gw, "addr add 10.0.0.1/24 dev dpdk0", 1, "", "address 10.0.0.1 already exists on dpdk0\n");
    // An address or a subnet another port holds: the gateway would answer ARP for it
    // on both, or have two connected routes for one destination.
    expect(&gw, "addr add 10.0.0.1/24 dev dpdk1", 1, "", "address 10.0.0.1 already exists on dpdk0\n");
    expect(
        &gw,
        "addr add 10.0.0.200/25 dev dpdk1",
        1,
        "",
        "10.0.0.200/25 overlaps 10.0.0.1/24 on dpdk0: each subnet belongs to one interface\n",
    );
    gw.ok("addr add 10.0.0.2/24 dev dpdk0");
    gw.ok("addr del 10.0.0.2/24 dev dpdk0");
    expect(
        &gw,
        "route add 192.168.1.0/16 dev dpdk1",
        1,
        "",
        "invalid prefix for given prefix length: 192.168.1.0/16 has host bits set\n",
    );
    expect(&gw, "neigh del 10.0.0.253 dev dpdk0", 1, "", "neighbour 10.0.0.253 not found on dpdk0\n");
    expect(
        &gw,
        "addr add 10.0.0.1/40 dev dpdk0",
        2,
        "",
        "invalid prefix length \"40\" for 10.0.0.1\nTry `gwctl -h' or 'gwctl --help' for more information.\n",
    );

    gw.ok("addr del 2001:db8::1/64 dev dpdk0");
    gw.ok("route del default");
    gw.ok("neigh del 10.0.0.254 dev dpdk0");
    expect(&gw, "addr show", 0, "inet 10.0.0.1/24 dev dpdk0\n", "");
    expect(&gw, "route", 0, "192.168.0.0/16 dev dpdk1\n", "");
    expect(&gw, "neigh", 0, "", "");
    // ipvsadm's -C clears services only.
    gw.ok("-C");
    expect(&gw, "addr show", 0, "inet 10.0.0.1/24 dev dpdk0\n", "");
}

#[test]
fn mark_rules_select_fwmark_services() {
    let gw = Gateway::start("marks");
    gw.ok("-A -f 10 -s rr");
    gw.ok("mark add 10 -d 172.18.100.7 -p tcp --dports 80,443");
    expect(&gw, "mark show", 0, "10 -d 172.18.100.7/32 -p tcp --dports 80,443\n", "");
    let running = gw.running();
    let id = running.services.find(gateway::model::Protocol::Tcp, common::ip("172.18.100.7"), 443).unwrap();
    assert_eq!(running.services.service(id).key(), gateway::model::ServiceKey::Fwmark(10));
    expect(&gw, "mark del 11", 1, "", "no match rule for mark 11\n");
    gw.ok("mark del 10");
    expect(&gw, "mark", 0, "", "");
}

#[test]
fn link_and_stats_show_dataplane_counters() {
    let gw = Gateway::start("counters");
    expect(
        &gw,
        "link show",
        0,
        "0: dpdk0: <UP> mtu 1500\n    link/ether 52:54:00:12:34:56\n    RX: packets 10 bytes 1000 errors 0 missed 2\n    TX: packets 9 bytes 900 errors 0\n    queue 0 (worker 0): RX packets 10 bytes 1000 TX packets 9 bytes 900\n",
        "",
    );
    expect(
        &gw,
        "stats",
        0,
        "worker 0 (lcore 1)\n    RX: packets 10 bytes 1000\n    TX: packets 9 bytes 900\n    redirected out 1 in 2, new connections 2\n    connection table 1 of 4096\n    arp replies 3\n    drop truncated 1\n    drop kernel_rate_limited 4\n    kernel port 0 control: handed 7 rate-limited 0\n    kernel port 0 bulk: handed 20 rate-limited 4\n    poll busy 25.0 % of 1.0 s, bursts 4 (3.0 packets a burst)\n    cycles a packet 20833, pipeline 10000, send 4166, receive and the rest 6666\n",
        "",
    );
}

#[test]
fn static_neighbours_past_the_limit_are_refused_not_dropped() {
    use gwapi::api::{Change, NeighbourConfig, Request};
    let gw = Gateway::start("neigh-limit");
    let max = gateway::net::MAX_STATIC_NEIGHBOURS;
    let changes = (0..max)
        .map(|i| Change::AddNeighbour {
            neighbour: NeighbourConfig {
                addr: std::net::IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32 + 1)),
                lladdr: [0x52, 0x54, 0, 0, (i >> 8) as u8, i as u8],
                ifname: "dpdk0".into(),
            },
        })
        .collect();
    gwapi::Client::new(&gw.socket).call(&Request::Apply { changes }).unwrap();
    expect(
        &gw,
        "neigh add 10.0.4.1 lladdr 52:54:00:00:04:00 dev dpdk0",
        1,
        "",
        "neighbour 10.0.4.1 on dpdk0 refused: at most 1024 static neighbours\n",
    );
    assert_eq!(gw.running().net.neighbours().len(), max, "the workers run the accepted ones");
    gw.ok("neigh del 10.0.0.1 dev dpdk0");
    gw.ok("neigh add 10.0.4.1 lladdr 52:54:00:00:04:00 dev dpdk0");
}

/// Held addresses (issue 14) are a runtime input from the kernel interfaces, not
/// configuration: `gwctl addr` shows them, the workers run them, and `-S`, `-C` and `-R`
/// neither save nor clear them.
#[test]
fn held_addresses_are_shown_published_and_never_saved() {
    let gw = Gateway::start("held");
    gw.ok("addr add 10.0.0.254/24 dev dpdk0");
    gw.ok("-A -t 10.0.0.100:80 -s rr");
    gw.ok("-a -t 10.0.0.100:80 -r 192.168.1.10:8080 -m");
    gw.ok("-A -u 10.0.0.101:53 -s rr");
    let saved = gw.gwctl("-S -n");
    assert_eq!(saved.code, 0);
    expect(&gw, "addr", 0, "inet 10.0.0.254/24 dev dpdk0\n", "");
    assert!(!gw.gwctl("addr --json").stdout.contains("held"), "no kernel interface: the reply is as before");

    // keepalived put the VIP 10.0.0.100 on the kernel interface, beside the port's address.
    gw.hold(Some(&["10.0.0.254", "10.0.0.100"]));
    let held = gw.running().held.expect("published to the worker");
    assert_eq!(held.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["10.0.0.100", "10.0.0.254"]);
    expect(&gw, "addr", 0, "inet 10.0.0.254/24 dev dpdk0\nheld 10.0.0.100\nnot held 10.0.0.101\nheld 10.0.0.254\n", "");
    let json: serde_json::Value = serde_json::from_str(&gw.gwctl("addr --json").stdout).unwrap();
    assert_eq!(json["held"][1], serde_json::json!({"addr": "10.0.0.101", "held": false}));
    assert_eq!(gw.gwctl("-S -n").stdout, saved.stdout, "-S saves services only");

    // -C clears the services, -R restores them: the held set stays as the kernel has it.
    gw.ok("-C");
    expect(&gw, "addr", 0, "inet 10.0.0.254/24 dev dpdk0\nheld 10.0.0.100\nheld 10.0.0.254\n", "");
    let restored = gw.gwctl_in("-R", &saved.stdout);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert!(gw.running().held.is_some());
    expect(&gw, "addr", 0, "inet 10.0.0.254/24 dev dpdk0\nheld 10.0.0.100\nnot held 10.0.0.101\nheld 10.0.0.254\n", "");

    // The VIP moved to the other director.
    gw.hold(Some(&["10.0.0.254"]));
    expect(
        &gw,
        "addr",
        0,
        "inet 10.0.0.254/24 dev dpdk0\nnot held 10.0.0.100\nnot held 10.0.0.101\nheld 10.0.0.254\n",
        "",
    );
    gw.hold(None);
    expect(&gw, "addr", 0, "inet 10.0.0.254/24 dev dpdk0\n", "");
    assert!(gw.running().held.is_none());
}

#[test]
fn ipv6_addresses_routes_and_neighbours() {
    let gw = Gateway::start("net6");
    gw.ok("addr add 10.0.0.1/24 dev dpdk0");
    gw.ok("addr add 2001:db8::1/64 dev dpdk0");
    gw.ok("addr add 2001:db8:1::1/64 dev dpdk1");
    // A host address: the family's full length.
    gw.ok("addr add 2001:db8:ff::1 dev dpdk1");
    // `default` with an IPv6 next hop is ::/0, as iproute2 takes it; both defaults coexist.
    gw.ok("route add default via 10.0.0.254 dev dpdk0");
    gw.ok("route add default via 2001:db8::fe dev dpdk0");
    gw.ok("route add 2001:db8:100::/48 via 2001:db8:1::fe dev dpdk1");
    gw.ok("route add 2001:db8:200::/40 dev dpdk1");
    gw.ok("neigh add 2001:db8::fe lladdr 52:54:00:12:34:57 dev dpdk0");
    gw.ok("neigh add 10.0.0.254 lladdr 52:54:00:12:34:56 dev dpdk0");
    expect(
        &gw,
        "addr show",
        0,
        "inet 10.0.0.1/24 dev dpdk0\ninet6 2001:db8::1/64 dev dpdk0\ninet6 2001:db8:1::1/64 dev dpdk1\ninet6 2001:db8:ff::1/128 dev dpdk1\n",
        "",
    );
    expect(
        &gw,
        "route show",
        0,
        "default via 10.0.0.254 dev dpdk0\n::/0 via 2001:db8::fe dev dpdk0\n2001:db8:100::/48 via 2001:db8:1::fe dev dpdk1\n2001:db8:200::/40 dev dpdk1\n",
        "",
    );
    expect(
        &gw,
        "neigh show",
        0,
        "2001:db8::fe dev dpdk0 lladdr 52:54:00:12:34:57 PERMANENT\n10.0.0.254 dev dpdk0 lladdr 52:54:00:12:34:56 PERMANENT\n",
        "",
    );
    assert_eq!(gw.running().net.routes().len(), 4);

    expect(&gw, "addr add 2001:db8::1/64 dev dpdk0", 1, "", "address 2001:db8::1 already exists on dpdk0\n");
    expect(
        &gw,
        "addr add 2001:db8::2/48 dev dpdk1",
        1,
        "",
        "2001:db8::2/48 overlaps 2001:db8::1/64 on dpdk0: each subnet belongs to one interface\n",
    );
    expect(
        &gw,
        "addr add 2001:db8::1/129 dev dpdk0",
        2,
        "",
        "invalid prefix length \"129\" for 2001:db8::1\nTry `gwctl -h' or 'gwctl --help' for more information.\n",
    );
    expect(
        &gw,
        "route add 2001:db8:300::1/48 dev dpdk1",
        1,
        "",
        "invalid prefix for given prefix length: 2001:db8:300::1/48 has host bits set\n",
    );
    expect(
        &gw,
        "route add 2001:db8:300::/48 via 10.0.0.254 dev dpdk1",
        1,
        "",
        "gateway 10.0.0.254 is not of the same address family as 2001:db8:300::\n",
    );
    expect(
        &gw,
        "neigh add 2001:db8::fd lladdr 52:54:00:12:34 dev dpdk0",
        2,
        "",
        "\"52:54:00:12:34\" is not a MAC address (aa:bb:cc:dd:ee:ff)\nTry `gwctl -h' or 'gwctl --help' for more information.\n",
    );
    expect(&gw, "neigh del 2001:db8::fd dev dpdk0", 1, "", "neighbour 2001:db8::fd not found on dpdk0\n");

    // `route del default` is IPv4's, as `ip route del default`; ::/0 names the other.
    gw.ok("route del default");
    gw.ok("route del ::/0");
    gw.ok("route del 2001:db8:100::/48");
    gw.ok("addr del 2001:db8:ff::1/128 dev dpdk1");
    gw.ok("addr del 2001:db8::1/64 dev dpdk0");
    gw.ok("neigh del 2001:db8::fe dev dpdk0");
    expect(&gw, "addr", 0, "inet 10.0.0.1/24 dev dpdk0\ninet6 2001:db8:1::1/64 dev dpdk1\n", "");
    expect(&gw, "route", 0, "2001:db8:200::/40 dev dpdk1\n", "");
    expect(&gw, "neigh", 0, "10.0.0.254 dev dpdk0 lladdr 52:54:00:12:34:56 PERMANENT\n", "");
    assert_eq!(gw.running().net.routes().len(), 1);
}
