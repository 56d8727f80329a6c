//! Generates bindings to the system DPDK at build time and compiles the C shim
//! for its static-inline functions. Nothing generated is checked in.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = pkg_config::Config::new().atleast_version(MIN_DPDK).probe("libdpdk").unwrap_or_else(|e| {
        panic!(
            "\n\ndpdk-sys: DPDK >= {MIN_DPDK} was not found by pkg-config ({e}).\n\
                 Install the Debian package: apt-get install libdpdk-dev dpdk pkg-config\n\
                 (or run scripts/setup.sh as root).\n\n"
        )
    });

    // The full cflags matter: they carry `-include rte_config.h` and the
    // `-march` DPDK was built for, without which the inline functions differ.
    let cflags = pkg_config_cflags();

    let mut build = cc::Build::new();
    build.file("csrc/shim.c").include("csrc").opt_level(3).warnings(false);
    for flag in &cflags {
        build.flag(flag);
    }
    build.compile("gw_dpdk_shim");

    let shim_header = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("csrc/shim.h");
    let mut builder = bindgen::Builder::default()
        .header(shim_header.to_str().expect("utf-8 path"))
        .clang_args(&cflags)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .use_core()
        .layout_tests(true)
        .derive_default(true)
        .prepend_enum_name(false)
        .default_enum_style(bindgen::EnumVariation::Consts)
        // Packed and aligned at once: Rust cannot represent these; nothing here reads them.
        .opaque_type("rte_arp_ipv4")
        .opaque_type("rte_arp_hdr")
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .opaque_type("rte_gtp_psc_generic_hdr");

    for f in ALLOWED_FUNCTIONS {
        builder = builder.allowlist_function(f);
    }
    for t in ALLOWED_TYPES {
        builder = builder.allowlist_type(t);
    }
    for v in ALLOWED_VARS {
        builder = builder.allowlist_var(v);
    }

    let bindings = builder.generate().expect("dpdk-sys: bindgen failed on the DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(&out).expect("dpdk-sys: cannot write bindings.rs");

    // Keep the link line honest: pkg-config already emitted the libraries.
    let _ = lib;
}

fn pkg_config_cflags() -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("dpdk-sys: cannot run pkg-config (apt-get install pkg-config)");
    assert!(out.status.success(), "dpdk-sys: pkg-config --cflags libdpdk failed");
    let text = String::from_utf8(out.stdout).expect("pkg-config output is not UTF-8");
    // `-include rte_config.h` is two words that must stay together.
    let mut flags = Vec::new();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "-include" {
            if let Some(file) = words.next() {
                flags.push(format!("-include{file}"));
            }
        } else {
            flags.push(w.to_string());
        }
    }
    flags
}

/// The control-path functions the safe layer uses, and the shim.
const ALLOWED_FUNCTIONS: &[&str] = &[
    "gw_.*",
    "rte_eal_init",
    "rte_eal_cleanup",
    "rte_eal_alarm_set",
    "rte_eal_alarm_cancel",
    "rte_eal_remote_launch",
    "rte_eal_wait_lcore",
    "rte_eal_get_lcore_state",
    "rte_eal_process_type",
    "rte_get_main_lcore",
    "rte_get_next_lcore",
    "rte_lcore_count",
    "rte_lcore_is_enabled",
    "rte_socket_id",
    "rte_strerror",
    "rte_get_tsc_hz",
    "rte_eth_dev_count_avail",
    "rte_eth_dev_get_port_by_name",
    "rte_eth_dev_get_name_by_port",
    "rte_eth_dev_is_valid_port",
    "rte_eth_dev_info_get",
    "rte_eth_dev_configure",
    "rte_eth_dev_socket_id",
    "rte_eth_dev_start",
    "rte_eth_dev_stop",
    "rte_eth_dev_close",
    "rte_eth_dev_set_mtu",
    "rte_eth_dev_get_mtu",
    "rte_eth_dev_rss_hash_conf_get",
    "rte_eth_dev_rss_reta_query",
    "rte_eth_rx_queue_setup",
    "rte_eth_tx_queue_setup",
    "rte_eth_promiscuous_enable",
    "rte_eth_macaddr_get",
    "rte_eth_link_get_nowait",
    "rte_eth_stats_get",
    "rte_eth_stats_reset",
    "rte_pktmbuf_pool_create",
    "rte_pktmbuf_free_bulk",
    "rte_mempool_avail_count",
    "rte_mempool_in_use_count",
    "rte_mempool_free",
    "rte_mempool_lookup",
    "rte_ring_create",
    "rte_ring_free",
    "rte_eal_hotplug_add",
    "rte_eal_hotplug_remove",
];

const ALLOWED_TYPES: &[&str] = &[
    "rte_mbuf",
    "rte_mempool",
    "rte_ring",
    "rte_eth_conf",
    "rte_eth_dev_info",
    "rte_eth_rxconf",
    "rte_eth_txconf",
    "rte_eth_link",
    "rte_eth_stats",
    "rte_ether_addr",
    "rte_eth_rss_conf",
    "rte_eth_rss_reta_entry64",
    "rte_lcore_state_t",
    "rte_proc_type_t",
    "rte_rmt_call_main_t",
    "lcore_function_t",
];

const ALLOWED_VARS: &[&str] = &[
    "gw_RTE_.*",
    "RTE_MAX_LCORE",
    "RTE_MAX_ETHPORTS",
    "RTE_PKTMBUF_HEADROOM",
    "RTE_MBUF_DEFAULT_BUF_SIZE",
    "RTE_MBUF_DEFAULT_DATAROOM",
    "RTE_ETHER_ADDR_LEN",
    "RTE_ETH_MQ_RX_NONE",
    "RTE_ETH_MQ_RX_RSS",
    "RTE_ETH_LINK_UP",
    "RTE_ETH_LINK_FULL_DUPLEX",
    "RING_F_SP_ENQ",
    "RING_F_SC_DEQ",
    "SOCKET_ID_ANY",
    "LCORE_ID_ANY",
    "RTE_ETH_NAME_MAX_LEN",
    "RTE_ETH_RETA_GROUP_SIZE",
];
