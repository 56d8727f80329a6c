//! What the safe DPDK layer costs per call and per packet: the out-of-line
//! shim call with no work, mbuf alloc+free, an rte_ring round trip, and a
//! loopback net_ring port's tx+rx, each in bursts of 32.
//!
//!     cargo bench -p gateway --bench dpdk_calls
//!
//! Times come from the TSC over a fixed number of iterations on the main
//! lcore; on shared machines compare figures from the same run only.

use std::hint::black_box;

use gateway::dpdk::{self, Burst, Eal, Mempool, Port, PortConfig, Ring, RingSync, BURST_SIZE, MBUF_DEFAULT_BUF_SIZE};

fn per_op_ns(ticks: u64, ops: u64) -> f64 {
    ticks as f64 * 1e9 / dpdk::tsc_hz() as f64 / ops as f64
}

fn measure(name: &str, ops_per_iter: u64, iters: u64, mut f: impl FnMut()) {
    for _ in 0..iters / 10 {
        f();
    }
    let start = dpdk::rdtsc();
    for _ in 0..iters {
        f();
    }
    let ticks = dpdk::rdtsc() - start;
    println!("{name:<44} {:>8.2} ns/op", per_op_ns(ticks, iters * ops_per_iter));
}

fn main() {
    let args = ["-l", "0", "--no-pci", "--no-huge", "--no-shconf", "--log-level=lib.eal:error", "--vdev=net_ring0"];
    let eal = Eal::init(&args).expect("EAL init");
    let pool = Mempool::new(&eal, "bench_pool", 8191, 256, MBUF_DEFAULT_BUF_SIZE).expect("mempool");
    let frame = [0u8; 64];
    const ITERS: u64 = 200_000;

    measure("shim call (rte_lcore_id, out of line)", 1, ITERS * 32, || {
        black_box(dpdk::lcore_id());
    });
    measure("mbuf alloc + free (per packet)", 1, ITERS * 8, || {
        black_box(pool.alloc());
    });

    let (mut tx, mut rx) = Ring::new(&eal, "bench_ring", 1024, RingSync::Single, RingSync::Single).unwrap();
    let mut burst = Burst::new();
    for _ in 0..BURST_SIZE {
        burst.push(pool.alloc_with(&frame).unwrap()).unwrap();
    }
    measure("ring enqueue + dequeue, burst 32 (per packet)", BURST_SIZE as u64, ITERS, || {
        tx.send_burst(&mut burst);
        rx.recv_burst(&mut burst);
    });

    let (port, mut rxq, mut txq) = Port::open(&eal, "net_ring0", &PortConfig::default(), &pool).unwrap();
    let (mut rxq, mut txq) = (rxq.remove(0), txq.remove(0));
    measure("net_ring tx + rx burst 32 (per packet)", BURST_SIZE as u64, ITERS, || {
        txq.tx_burst(&mut burst);
        rxq.rx_burst(&mut burst);
    });
    assert_eq!(burst.len(), BURST_SIZE, "every packet came back");
    measure("empty rx poll (per call)", 1, ITERS * 8, || {
        let mut empty = Burst::new();
        black_box(rxq.rx_burst(&mut empty));
    });

    drop((burst, port, rxq, txq, tx, rx));
    assert!(pool.is_full(), "the benchmark leaked {} mbufs", pool.in_use_count());
    drop(pool);
    eal.cleanup().map_err(|(_, e)| e).expect("cleanup");
}
