//! Two workers (two Directors on two threads) sharing one snapshot: each allocates only the
//! local ports it owns, and the only state they share, the per-server counters, makes an
//! upper threshold hold across both.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use gateway::conn::{tcp_flags::*, Direction, Director, DirectorConfig, FlowKey, Refused};
use gateway::model::{
    DestSpec, ForwardMethod, LocalAddr, PortPartition, Protocol, SchedulerKind, ServiceKey, ServiceSpec, Snapshot,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(client: u32, cport: u16) -> FlowKey<Ipv4Addr> {
    FlowKey {
        proto: Protocol::Tcp,
        src: Ipv4Addr::from(client),
        sport: cport,
        dst: Ipv4Addr::new(10, 0, 0, 1),
        dport: 80,
    }
}

#[test]
fn workers_own_their_ports_and_share_thresholds() {
    let svc = ServiceKey::tcp(ip("10.0.0.1"), 80);
    let mut ed = Snapshot::empty().edit();
    ed.add_service(ServiceSpec { scheduler: SchedulerKind::Wlc, ..ServiceSpec::new(svc) }).unwrap();
    // One server that takes at most 1000 connections, usable again below 500.
    let rs = DestSpec::new(ip("192.168.1.2"), 8080).with_method(ForwardMethod::FullNat).with_thresholds(1000, 500);
    ed.add_dest(&svc, rs).unwrap();
    ed.add_laddr(&svc, LocalAddr { addr: ip("192.168.1.254"), ifname: "dpdk1".into() }).unwrap();
    let snap = ed.finish();
    let counters = Arc::clone(snap.service(0).dests()[0].counters());

    let workers: Vec<_> = (0..2u16)
        .map(|w| {
            let snap = Arc::clone(&snap);
            std::thread::spawn(move || {
                let cfg = DirectorConfig {
                    conn_capacity: 4096,
                    template_capacity: 16,
                    partition: PortPartition::new(2, w).unwrap(),
                    ports: 1025..=65535,
                };
                let mut d = Director::<Ipv4Addr>::new(snap, cfg, 0);
                let mut ids = vec![];
                let mut refused = 0;
                for i in 0..800u32 {
                    match d.connect(&key(0x0100_0000 + i * 2 + w as u32, 40000), 0) {
                        Ok(id) => {
                            let c = d.conn(id);
                            assert_eq!(c.lport & 1, w, "worker {w} got port {}", c.lport);
                            d.on_packet(id, Direction::In, SYN, 0);
                            ids.push(id);
                        }
                        Err(Refused::NoDest) => refused += 1,
                        Err(e) => panic!("{e:?}"),
                    }
                }
                (d, ids.len(), refused)
            })
        })
        .collect();
    let mut directors = vec![];
    let mut accepted = 0;
    for h in workers {
        let (d, n, refused) = h.join().unwrap();
        accepted += n;
        assert_eq!(n + refused, 800);
        directors.push(d);
    }
    // 1600 attempts against an upper threshold of 1000 shared by both workers. The check
    // (at scheduling) and the count (at binding) are two relaxed steps, as in IPVS, so each
    // other worker can slip in one connection past the threshold, no more.
    assert!((1000..=1001).contains(&accepted), "{accepted} accepted");
    assert_eq!(counters.inactive() as usize, accepted);
    assert!(counters.is_overloaded());

    // Connections end on one worker (SYN_RECV lives 60 s): usable again only if fewer
    // than the lower threshold (500) remain.
    let w0 = directors[0].conns().len();
    directors[0].expire(61, usize::MAX);
    assert_eq!(counters.inactive() as usize, accepted - w0);
    assert_eq!(counters.is_overloaded(), accepted - w0 >= 500);
    directors[1].expire(61, usize::MAX);
    assert_eq!(counters.inactive(), 0);
    assert!(!counters.is_overloaded());
    let k = key(0x0200_0000, 1);
    assert!(directors[1].connect(&k, 61).is_ok(), "usable again");
}
