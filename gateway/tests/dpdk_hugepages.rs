//! The DPDK layer on hugepages (reserved by scripts/setup.sh).
#![cfg(feature = "dpdk")]

mod common;

#[test]
fn dpdk_layer_on_hugepages() {
    let free = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap_or_default();
    assert!(
        free.trim().parse::<u32>().unwrap_or(0) >= 128,
        "this test needs hugepages: run scripts/setup.sh as root (nr_hugepages = {})",
        free.trim()
    );
    let mut args = common::base_args("gw_test_huge");
    args.extend(["--in-memory".into(), "-m".into(), "128".into()]);
    let eal = gateway::dpdk::Eal::init(&args).expect("EAL init on hugepages");
    common::run_all(eal);
}
