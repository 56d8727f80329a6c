//! The DPDK layer with `--no-huge --no-shconf` (no hugepages, no files). DPDK 22.11 refuses
//! `--no-huge --in-memory`: no-huge implies legacy memory, which in-memory rejects.
#![cfg(feature = "dpdk")]

mod common;

#[test]
fn dpdk_layer_without_hugepages() {
    let mut args = common::base_args("gw_test_nohuge");
    args.extend(["--no-huge".into(), "--no-shconf".into()]);
    let eal = gateway::dpdk::Eal::init(&args).expect("EAL init with --no-huge");
    common::run_all(eal);
}
