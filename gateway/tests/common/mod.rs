//! Scenarios shared by the EAL test binaries. DPDK initialises once per
//! process, so each test binary runs one `#[test]` that initialises the EAL
//! its own way (hugepages or not) and then runs every scenario here in turn.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use gateway::dpdk::{Burst, Eal, Mempool, Port, PortConfig, Ring, RingSync, BURST_SIZE};
use gateway::frame::Frame;
use gateway::wire::ethernet::{EthernetFrame, EthernetRepr, MacAddr};

pub const POOL_SIZE: u32 = 4095;

/// EAL arguments common to every test: two lcores, no PCI scan, quiet logs,
/// three loopback ring ports (what one sends, it receives). Closing a port
/// removes a virtual device, so each scenario opens its own.
pub fn base_args(file_prefix: &str) -> Vec<String> {
    ["-l", "0-1", "--no-pci", "--log-level=lib.eal:error", "--vdev=net_ring0", "--vdev=net_ring1", "--vdev=net_ring2"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--file-prefix={file_prefix}")])
        .collect()
}

/// A distinct, recognisable 60..=1514-byte Ethernet frame for packet `i`.
pub fn test_frame(i: u32) -> Vec<u8> {
    let len = 60 + (i as usize * 37) % (1514 - 60);
    let mut f = vec![0u8; len];
    let eth = EthernetRepr {
        src_addr: MacAddr([0x02, 0, 0, 0, 0, 0x02]),
        dst_addr: MacAddr([0x02, 0, 0, 0, 0, 0x01]),
        vlan: None,
        ethertype: 0x88b5, // local experimental ethertype
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    f[14..18].copy_from_slice(&i.to_be_bytes());
    for (k, b) in f[18..].iter_mut().enumerate() {
        *b = (i as usize).wrapping_mul(31).wrapping_add(k) as u8;
    }
    f
}

fn frame_index(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[14..18].try_into().unwrap())
}

/// Sends `count` frames out of a loopback ring port and reads them back:
/// every byte identical, in order, and the port counters agree.
pub fn loopback_is_byte_identical(eal: &Eal, pool: &Mempool) {
    let config = PortConfig { rx_queues: 1, tx_queues: 1, ..PortConfig::default() };
    let (port, mut rxq, mut txq) = Port::open(eal, "net_ring0", &config, pool).expect("open net_ring0");
    let (mut rxq, mut txq) = (rxq.remove(0), txq.remove(0));
    port.reset_stats().unwrap();
    assert!(port.link().unwrap().up, "a ring port's link is up once started");

    const COUNT: u32 = 1000;
    let mut sent_bytes = 0u64;
    let mut next_rx = 0u32;
    let mut burst = Burst::new();
    let mut i = 0;
    while i < COUNT {
        while !burst.is_full() && i < COUNT {
            let frame = test_frame(i);
            sent_bytes += frame.len() as u64;
            burst.push(pool.alloc_with(&frame).expect("mbuf")).unwrap();
            i += 1;
        }
        let n = burst.len();
        assert_eq!(txq.tx_burst(&mut burst), n, "a loopback ring has room for one burst");
        let mut rx = Burst::new();
        while rxq.rx_burst(&mut rx) > 0 {
            for m in rx.drain() {
                assert_eq!(m.data(), &test_frame(next_rx)[..], "frame {next_rx} came back changed");
                next_rx += 1;
            }
        }
    }
    assert_eq!(next_rx, COUNT, "every frame came back");
    let stats = port.stats().unwrap();
    assert_eq!((stats.opackets, stats.ipackets), (COUNT as u64, COUNT as u64));
    // net_ring counts packets but not bytes; a driver that counts bytes must agree.
    if stats.obytes + stats.ibytes != 0 {
        assert_eq!((stats.obytes, stats.ibytes), (sent_bytes, sent_bytes));
    }
    assert_eq!(stats.imissed + stats.ierrors + stats.oerrors + stats.rx_nombuf, 0);
    drop((port, rxq, txq));
    assert!(pool.is_full(), "mbufs leaked: {} out", pool.in_use_count());
}

/// Transmits more than the loopback ring holds: what the port refuses stays in
/// the burst and is freed by it, so nothing leaks.
pub fn unsent_packets_are_not_leaked(eal: &Eal, pool: &Mempool) {
    let (port, mut rxq, mut txq) = Port::open(eal, "net_ring1", &PortConfig::default(), pool).expect("open");
    let (mut txq, _rxq) = (txq.remove(0), rxq.remove(0));
    let mut refused = 0;
    let mut accepted = 0;
    for _ in 0..200 {
        let mut burst = Burst::new();
        for i in 0..BURST_SIZE as u32 {
            burst.push(pool.alloc_with(&test_frame(i)).unwrap()).unwrap();
        }
        accepted += txq.tx_burst(&mut burst);
        refused += burst.clear();
    }
    assert!(refused > 0, "the ring port must have filled up (accepted {accepted})");
    assert_eq!(port.stats().unwrap().opackets, accepted as u64);
    assert_eq!(pool.in_use_count() as usize, accepted, "only the queued mbufs are out");
    drop((port, txq, _rxq));
    assert!(pool.is_full(), "closing the port returns its queued mbufs: {} out", pool.in_use_count());
}

/// A worker lcore polls a port and passes what it receives to the main lcore
/// through an rte_ring; the main lcore checks every byte.
pub fn worker_moves_packets_through_a_ring(eal: &Eal, pool: &Mempool) {
    const COUNT: u32 = 5000;
    let worker = *eal.worker_lcores().first().expect("tests run with -l 0-1");
    let (port, mut rxq, mut txq) = Port::open(eal, "net_ring2", &PortConfig::default(), pool).expect("open");
    let (rxq, mut txq) = (rxq.remove(0), txq.remove(0));
    let (mut to_main, mut from_worker) =
        Ring::new(eal, "to_main", 1024, RingSync::Single, RingSync::Single).expect("ring");
    assert!(to_main.try_clone().is_none(), "a single-producer ring has one sender");

    let job = eal
        .launch(worker, move || {
            let mut rxq = rxq;
            assert_eq!(gateway::dpdk::lcore_id(), Some(worker));
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut moved = 0u32;
            let mut burst = Burst::new();
            while moved < COUNT && Instant::now() < deadline {
                rxq.rx_burst(&mut burst);
                while !burst.is_empty() {
                    moved += to_main.send_burst(&mut burst) as u32;
                }
            }
            moved
        })
        .expect("launch");

    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut sent, mut received) = (0u32, 0u32);
    let mut burst = Burst::new();
    while received < COUNT && Instant::now() < deadline {
        while sent < COUNT && !burst.is_full() {
            burst.push(pool.alloc_with(&test_frame(sent)).expect("mbuf")).unwrap();
            sent += 1;
        }
        txq.tx_burst(&mut burst);
        // What the port could not take yet is retried, not dropped.
        sent -= burst.len() as u32;
        burst.clear();
        let mut got = Burst::new();
        from_worker.recv_burst(&mut got);
        for m in got.drain() {
            assert_eq!(frame_index(m.data()), received, "packets arrive in order");
            assert_eq!(m.data(), &test_frame(received)[..]);
            received += 1;
        }
    }
    assert_eq!(job.join().expect("worker ran"), COUNT);
    assert_eq!(received, COUNT);
    assert!(from_worker.is_empty());
    drop((port, txq, from_worker));
    assert!(pool.is_full(), "mbufs leaked: {} out", pool.in_use_count());
}

/// Mbufs left in a ring are freed with it.
pub fn ring_frees_what_it_holds(eal: &Eal, pool: &Mempool) {
    let (mut tx, rx) = Ring::new(eal, "leftover", 64, RingSync::Multi, RingSync::Single).expect("ring");
    let mut second = tx.try_clone().expect("a multi-producer ring hands out senders");
    let mut burst = Burst::new();
    for i in 0..10 {
        burst.push(pool.alloc_with(&test_frame(i)).unwrap()).unwrap();
    }
    assert_eq!(tx.send_burst(&mut burst), 10);
    assert!(second.send(pool.alloc_with(&test_frame(10)).unwrap()).is_ok());
    assert_eq!(rx.len(), 11);
    assert_eq!(pool.in_use_count(), 11);
    drop((tx, second, rx));
    assert!(pool.is_full(), "a dropped ring frees its mbufs");
}

/// An mbuf is a frame: resizing and offload requests behave like BufFrame's.
pub fn mbuf_is_a_frame(pool: &Mempool) {
    use gateway::frame::{FrameError, L4Offload, TxOffload};
    let mut m = pool.alloc_with(&[1, 2, 3, 4]).unwrap();
    assert_eq!(m.headroom(), gateway::dpdk::MBUF_HEADROOM);
    m.prepend(2).unwrap();
    m.data_mut()[..2].copy_from_slice(&[8, 9]);
    assert_eq!(m.data(), &[8, 9, 1, 2, 3, 4]);
    assert_eq!((m.headroom(), m.packet_len()), (gateway::dpdk::MBUF_HEADROOM - 2, 6), "the packet grew with its data");
    m.adj(3).unwrap();
    m.trim(1).unwrap();
    assert_eq!(m.data(), &[2, 3]);
    assert_eq!(m.packet_len(), 2);
    let head = m.headroom();
    assert_eq!(m.prepend(head + 1), Err(FrameError::NoHeadroom { wanted: head + 1, available: head }));
    assert_eq!(m.adj(3), Err(FrameError::TooShort { wanted: 3, len: 2 }));
    assert_eq!((m.data(), m.headroom(), m.packet_len()), (&[2, 3][..], head, 2), "refused resizes change nothing");
    m.prepend(head).unwrap();
    assert_eq!((m.headroom(), m.len(), m.packet_len()), (0, head + 2, head as u32 + 2), "the whole headroom taken");
    m.adj(head).unwrap();
    let offload = TxOffload { l2_len: 14, l3_len: 20, ipv4_checksum: true, ipv6: false, l4: L4Offload::Tcp };
    m.set_tx_offload(offload);
    assert_eq!(m.tx_offload(), offload);
    // IPv6 with extension headers: no header checksum, a longer l3_len.
    let offload = TxOffload { l2_len: 18, l3_len: 48, ipv4_checksum: false, ipv6: true, l4: L4Offload::Udp };
    m.set_tx_offload(offload);
    assert_eq!(m.tx_offload(), offload);
    m.set_tx_offload(TxOffload::default());
    assert_eq!(m.tx_offload(), TxOffload::default());
    assert_eq!(m.rss_hash(), None, "a locally allocated mbuf has no RSS hash");
    drop(m);
    assert!(pool.is_full());
}

/// Runs every scenario against an initialised EAL, then cleans up.
pub fn run_all(eal: Eal) {
    let pool = Mempool::new(&eal, "test_pool", POOL_SIZE, 32, gateway::dpdk::MBUF_DEFAULT_BUF_SIZE).expect("mempool");
    assert!(pool.is_full());
    mbuf_is_a_frame(&pool);
    loopback_is_byte_identical(&eal, &pool);
    unsent_packets_are_not_leaked(&eal, &pool);
    worker_moves_packets_through_a_ring(&eal, &pool);
    ring_frees_what_it_holds(&eal, &pool);
    assert!(pool.is_full(), "mbufs leaked: {} out", pool.in_use_count());

    // Cleanup refuses while an mbuf is out, and succeeds once it is back.
    let held = pool.alloc().unwrap();
    drop(pool);
    let (eal, err) = eal.cleanup().expect_err("an mbuf is still out");
    assert!(err.to_string().contains("1 mbufs not returned"), "{err}");
    drop(held);
    eal.cleanup().map_err(|(_, e)| e).expect("clean up");
    assert!(matches!(Eal::init(&["--no-huge"]), Err(gateway::dpdk::DpdkError::EalCleanedUp)));
}
