//! A million connections churn through one worker's Director (schedulers, FNAT port pools,
//! persistence templates, connection table) while the configuration changes under them;
//! afterwards nothing has leaked: no connection, no entry, no port, no template, and every
//! real server's counters are back to zero, including those of a server removed mid-run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use gateway::conn::{tcp_flags::*, Direction, Director, DirectorConfig, FlowKey, Refused};
use gateway::model::{
    DestCounters, DestSpec, ForwardMethod, LocalAddr, Persistence, PortPartition, Protocol, SchedulerKind, ServiceKey,
    ServiceSpec, Snapshot,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn web() -> ServiceKey {
    ServiceKey::tcp(ip("10.0.0.1"), 80)
}

fn all_ports() -> ServiceKey {
    ServiceKey::tcp(ip("10.0.0.2"), 0)
}

fn rs(i: u8) -> DestSpec {
    DestSpec::new(IpAddr::V4(Ipv4Addr::new(192, 168, 1, i)), 8080).with_method(ForwardMethod::FullNat)
}

fn config() -> Arc<Snapshot> {
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec::new(web())).unwrap(); // wlc
    let persistent = Persistence { timeout: 120, netmask: ip("255.255.255.0") };
    ed.add_service(ServiceSpec {
        scheduler: SchedulerKind::Mh,
        persistence: Some(persistent),
        ..ServiceSpec::new(all_ports())
    })
    .unwrap();
    for key in [web(), all_ports()] {
        for i in 2..6 {
            ed.add_dest(&key, rs(i).with_weight(i as u32)).unwrap();
        }
        for l in ["192.168.1.250", "192.168.1.251"] {
            ed.add_laddr(&key, LocalAddr { addr: ip(l), ifname: "dpdk1".into() }).unwrap();
        }
    }
    // ESTABLISHED connections live 100 s instead of 900, to bound the live set.
    ed.set_timeouts(100, 0, 0);
    ed.finish()
}

fn all_counters(snap: &Snapshot) -> Vec<Arc<DestCounters>> {
    snap.services().iter().flat_map(|s| s.dests().iter().map(|d| Arc::clone(d.counters()))).collect()
}

#[test]
fn million_connections_leave_nothing_behind() {
    let snap = config();
    let counters = all_counters(&snap);
    let cfg = DirectorConfig {
        conn_capacity: 60_000,
        template_capacity: 70_000,
        partition: PortPartition::new(2, 1).unwrap(),
        ports: 1025..=65535,
    };
    let mut d = Director::<Ipv4Addr>::new(Arc::clone(&snap), cfg, 0);
    let (mut now, mut made) = (0u32, 0u32);
    let mut round = 0u32;
    while made < 1_000_000 {
        for _ in 0..20_000 {
            let n = made;
            let (dst, dport) = if n % 3 == 0 {
                (Ipv4Addr::new(10, 0, 0, 2), 1 + (n % 1000) as u16)
            } else {
                (Ipv4Addr::new(10, 0, 0, 1), 80)
            };
            let key = FlowKey {
                proto: Protocol::Tcp,
                src: Ipv4Addr::from(0x0b00_0000 + n),
                sport: 1024 + (n % 60_000) as u16,
                dst,
                dport,
            };
            let id = d.connect(&key, now).expect("room for every connection");
            d.on_packet(id, Direction::In, SYN, now);
            d.on_packet(id, Direction::Out, SYN | ACK, now);
            if n % 2 == 0 {
                d.on_packet(id, Direction::In, ACK, now); // ESTABLISHED: active
                if n % 4 == 0 {
                    d.on_packet(id, Direction::In, RST, now); // CLOSE: 10 s
                }
            }
            made += 1;
        }
        // Configuration churn: every other round remove server .5 from the web service
        // (its connections carry on), then add it back; and edit a weight.
        let mut ed = d.snapshot().edit();
        if round.is_multiple_of(2) {
            ed.delete_dest(&web(), ip("192.168.1.5"), 8080).unwrap();
        } else {
            ed.add_dest(&web(), rs(5).with_weight(5)).unwrap();
        }
        ed.edit_dest(&all_ports(), rs(2).with_weight(1 + round % 7)).unwrap();
        d.switch(ed.finish());
        round += 1;
        now += 61; // SYN_RECV (60 s) and CLOSE (10 s) connections of the last round end
        d.expire(now, usize::MAX);
    }
    // ESTABLISHED connections live 100 s, templates 120 s after their last connection.
    d.expire(now + 2000, usize::MAX);
    d.expire(now + 2000 + 500, usize::MAX);

    assert!(d.conns().is_empty());
    assert_eq!(d.conns().stats().inserted, 1_000_000);
    assert_eq!(d.conns().stats().expired, 1_000_000);
    assert_eq!(d.stats().table_full + d.stats().no_local_port + d.stats().no_dest, 0);
    for l in ["192.168.1.250", "192.168.1.251"] {
        let pool = d.pools().pool(ip(l)).unwrap();
        assert_eq!(pool.in_use(), 0, "{l}: ports leaked");
        assert_eq!(pool.available(), (1025..=65535).filter(|p| p & 1 == 1).count());
    }
    assert_eq!(d.pools().stats().bad_release, 0);
    assert!(d.persist().is_empty());
    assert!(d.persist().stats().created > 0);
    for c in counters.iter().chain(all_counters(d.snapshot()).iter()) {
        assert_eq!((c.active(), c.inactive(), c.persistent()), (0, 0, 0));
    }
}

#[test]
fn ipv6_table_and_cross_family_refusals() {
    let key = ServiceKey::tcp(ip("2001:db8::1"), 443);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Rr, ..ServiceSpec::new(key) }).unwrap();
    ed.add_dest(&key, DestSpec::new(ip("2001:db8:1::2"), 443).with_method(ForwardMethod::Masq)).unwrap();
    let snap = ed.finish();
    let cfg = DirectorConfig {
        conn_capacity: 8,
        template_capacity: 8,
        partition: PortPartition::new(1, 0).unwrap(),
        ports: 1025..=65535,
    };
    let mut d6 = Director::<Ipv6Addr>::new(Arc::clone(&snap), cfg.clone(), 0);
    let k = Director::<Ipv6Addr>::key(Protocol::Tcp, ip("2001:db8:9::9"), 5555, ip("2001:db8::1"), 443).unwrap();
    let id = d6.connect(&k, 0).unwrap();
    let c = d6.conn(id).clone();
    assert_eq!(c.raddr, "2001:db8:1::2".parse::<Ipv6Addr>().unwrap());
    assert_eq!(d6.lookup(&c.key(Direction::Out)), Some((id, Direction::Out)));
    // The IPv4 table of the same worker finds no IPv4 service here.
    let mut d4 = Director::<Ipv4Addr>::new(snap, cfg, 0);
    let k4 = Director::<Ipv4Addr>::key(Protocol::Tcp, ip("1.1.1.1"), 1, ip("10.9.9.9"), 443).unwrap();
    assert_eq!(d4.connect(&k4, 0), Err(Refused::NoService));
}
