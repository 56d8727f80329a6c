//! Raw bindings to the system DPDK (22.11 as Debian ships it), generated at
//! build time by bindgen from the headers pkg-config finds, plus the `gw_*`
//! out-of-line wrappers for DPDK's static-inline hot-path functions
//! (`csrc/shim.c`).
//!
//! Nothing here is safe to call directly from application code: the one safe
//! layer over it is `gateway::dpdk`. Flag macros that bindgen cannot evaluate
//! (`RTE_BIT64(..)` and shifts) are defined below as Rust constants and
//! checked against the C values in this crate's tests.

#![no_std]
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code)]
#![allow(clippy::all)]
#![allow(unnecessary_transmutes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// `RTE_BIT64(n)`.
pub const fn rte_bit64(n: u32) -> u64 {
    1u64 << n
}

pub const RTE_MBUF_F_RX_RSS_HASH: u64 = rte_bit64(1);
pub const RTE_MBUF_F_RX_IP_CKSUM_BAD: u64 = rte_bit64(4);
pub const RTE_MBUF_F_RX_IP_CKSUM_GOOD: u64 = rte_bit64(7);
pub const RTE_MBUF_F_RX_IP_CKSUM_MASK: u64 = rte_bit64(4) | rte_bit64(7);
pub const RTE_MBUF_F_RX_L4_CKSUM_BAD: u64 = rte_bit64(3);
pub const RTE_MBUF_F_RX_L4_CKSUM_GOOD: u64 = rte_bit64(8);
pub const RTE_MBUF_F_RX_L4_CKSUM_MASK: u64 = rte_bit64(3) | rte_bit64(8);
pub const RTE_MBUF_F_TX_TCP_CKSUM: u64 = 1u64 << 52;
pub const RTE_MBUF_F_TX_UDP_CKSUM: u64 = 3u64 << 52;
pub const RTE_MBUF_F_TX_L4_MASK: u64 = 3u64 << 52;
pub const RTE_MBUF_F_TX_IP_CKSUM: u64 = 1u64 << 54;
pub const RTE_MBUF_F_TX_IPV4: u64 = 1u64 << 55;
pub const RTE_MBUF_F_TX_IPV6: u64 = 1u64 << 56;

pub const RTE_ETH_RX_OFFLOAD_IPV4_CKSUM: u64 = rte_bit64(1);
pub const RTE_ETH_RX_OFFLOAD_UDP_CKSUM: u64 = rte_bit64(2);
pub const RTE_ETH_RX_OFFLOAD_TCP_CKSUM: u64 = rte_bit64(3);
pub const RTE_ETH_RX_OFFLOAD_RSS_HASH: u64 = rte_bit64(19);
pub const RTE_ETH_TX_OFFLOAD_IPV4_CKSUM: u64 = rte_bit64(1);
pub const RTE_ETH_TX_OFFLOAD_UDP_CKSUM: u64 = rte_bit64(2);
pub const RTE_ETH_TX_OFFLOAD_TCP_CKSUM: u64 = rte_bit64(3);
pub const RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: u64 = rte_bit64(16);

pub const RTE_ETH_RSS_IPV4: u64 = rte_bit64(2);
pub const RTE_ETH_RSS_FRAG_IPV4: u64 = rte_bit64(3);
pub const RTE_ETH_RSS_NONFRAG_IPV4_TCP: u64 = rte_bit64(4);
pub const RTE_ETH_RSS_NONFRAG_IPV4_UDP: u64 = rte_bit64(5);
pub const RTE_ETH_RSS_NONFRAG_IPV4_OTHER: u64 = rte_bit64(7);
pub const RTE_ETH_RSS_IPV6: u64 = rte_bit64(8);
pub const RTE_ETH_RSS_FRAG_IPV6: u64 = rte_bit64(9);
pub const RTE_ETH_RSS_NONFRAG_IPV6_TCP: u64 = rte_bit64(10);
pub const RTE_ETH_RSS_NONFRAG_IPV6_UDP: u64 = rte_bit64(11);
pub const RTE_ETH_RSS_NONFRAG_IPV6_OTHER: u64 = rte_bit64(13);
pub const RTE_ETH_RSS_IPV6_EX: u64 = rte_bit64(15);
pub const RTE_ETH_RSS_IPV6_TCP_EX: u64 = rte_bit64(16);
pub const RTE_ETH_RSS_IPV6_UDP_EX: u64 = rte_bit64(17);
pub const RTE_ETH_RSS_IP: u64 = RTE_ETH_RSS_IPV4
    | RTE_ETH_RSS_FRAG_IPV4
    | RTE_ETH_RSS_NONFRAG_IPV4_OTHER
    | RTE_ETH_RSS_IPV6
    | RTE_ETH_RSS_FRAG_IPV6
    | RTE_ETH_RSS_NONFRAG_IPV6_OTHER
    | RTE_ETH_RSS_IPV6_EX;
pub const RTE_ETH_RSS_TCP: u64 = RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_IPV6_TCP_EX;
pub const RTE_ETH_RSS_UDP: u64 = RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP | RTE_ETH_RSS_IPV6_UDP_EX;

/// `RTE_RING_NAMESIZE`: 32-byte memzone names less the "RG_" prefix.
pub const RTE_RING_NAMESIZE: u32 = 29;
/// `RTE_MEMPOOL_NAMESIZE`: ring names less the "MP_" prefix.
pub const RTE_MEMPOOL_NAMESIZE: u32 = 26;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hand-written flag constant equals the value the C headers define.
    #[test]
    fn flag_constants_match_the_headers() {
        // SAFETY: the gw_RTE_* statics are immutable `const uint64_t` objects
        // defined in shim.c; reading them has no side effect.
        let pairs = unsafe {
            [
                ("RTE_MBUF_F_RX_RSS_HASH", RTE_MBUF_F_RX_RSS_HASH, gw_RTE_MBUF_F_RX_RSS_HASH),
                ("RTE_MBUF_F_RX_IP_CKSUM_MASK", RTE_MBUF_F_RX_IP_CKSUM_MASK, gw_RTE_MBUF_F_RX_IP_CKSUM_MASK),
                ("RTE_MBUF_F_RX_IP_CKSUM_GOOD", RTE_MBUF_F_RX_IP_CKSUM_GOOD, gw_RTE_MBUF_F_RX_IP_CKSUM_GOOD),
                ("RTE_MBUF_F_RX_IP_CKSUM_BAD", RTE_MBUF_F_RX_IP_CKSUM_BAD, gw_RTE_MBUF_F_RX_IP_CKSUM_BAD),
                ("RTE_MBUF_F_RX_L4_CKSUM_MASK", RTE_MBUF_F_RX_L4_CKSUM_MASK, gw_RTE_MBUF_F_RX_L4_CKSUM_MASK),
                ("RTE_MBUF_F_RX_L4_CKSUM_GOOD", RTE_MBUF_F_RX_L4_CKSUM_GOOD, gw_RTE_MBUF_F_RX_L4_CKSUM_GOOD),
                ("RTE_MBUF_F_RX_L4_CKSUM_BAD", RTE_MBUF_F_RX_L4_CKSUM_BAD, gw_RTE_MBUF_F_RX_L4_CKSUM_BAD),
                ("RTE_MBUF_F_TX_IPV4", RTE_MBUF_F_TX_IPV4, gw_RTE_MBUF_F_TX_IPV4),
                ("RTE_MBUF_F_TX_IPV6", RTE_MBUF_F_TX_IPV6, gw_RTE_MBUF_F_TX_IPV6),
                ("RTE_MBUF_F_TX_IP_CKSUM", RTE_MBUF_F_TX_IP_CKSUM, gw_RTE_MBUF_F_TX_IP_CKSUM),
                ("RTE_MBUF_F_TX_TCP_CKSUM", RTE_MBUF_F_TX_TCP_CKSUM, gw_RTE_MBUF_F_TX_TCP_CKSUM),
                ("RTE_MBUF_F_TX_UDP_CKSUM", RTE_MBUF_F_TX_UDP_CKSUM, gw_RTE_MBUF_F_TX_UDP_CKSUM),
                ("RTE_MBUF_F_TX_L4_MASK", RTE_MBUF_F_TX_L4_MASK, gw_RTE_MBUF_F_TX_L4_MASK),
                ("RTE_ETH_RX_OFFLOAD_RSS_HASH", RTE_ETH_RX_OFFLOAD_RSS_HASH, gw_RTE_ETH_RX_OFFLOAD_RSS_HASH),
                ("RTE_ETH_RX_OFFLOAD_IPV4_CKSUM", RTE_ETH_RX_OFFLOAD_IPV4_CKSUM, gw_RTE_ETH_RX_OFFLOAD_IPV4_CKSUM),
                ("RTE_ETH_RX_OFFLOAD_TCP_CKSUM", RTE_ETH_RX_OFFLOAD_TCP_CKSUM, gw_RTE_ETH_RX_OFFLOAD_TCP_CKSUM),
                ("RTE_ETH_RX_OFFLOAD_UDP_CKSUM", RTE_ETH_RX_OFFLOAD_UDP_CKSUM, gw_RTE_ETH_RX_OFFLOAD_UDP_CKSUM),
                ("RTE_ETH_TX_OFFLOAD_IPV4_CKSUM", RTE_ETH_TX_OFFLOAD_IPV4_CKSUM, gw_RTE_ETH_TX_OFFLOAD_IPV4_CKSUM),
                ("RTE_ETH_TX_OFFLOAD_TCP_CKSUM", RTE_ETH_TX_OFFLOAD_TCP_CKSUM, gw_RTE_ETH_TX_OFFLOAD_TCP_CKSUM),
                ("RTE_ETH_TX_OFFLOAD_UDP_CKSUM", RTE_ETH_TX_OFFLOAD_UDP_CKSUM, gw_RTE_ETH_TX_OFFLOAD_UDP_CKSUM),
                (
                    "RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE",
                    RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE,
                    gw_RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE,
                ),
                ("RTE_ETH_RSS_IP", RTE_ETH_RSS_IP, gw_RTE_ETH_RSS_IP),
                ("RTE_ETH_RSS_TCP", RTE_ETH_RSS_TCP, gw_RTE_ETH_RSS_TCP),
                ("RTE_ETH_RSS_UDP", RTE_ETH_RSS_UDP, gw_RTE_ETH_RSS_UDP),
            ]
        };
        // SAFETY: as above.
        let sizes = unsafe {
            [
                ("RTE_RING_NAMESIZE", RTE_RING_NAMESIZE, gw_RTE_RING_NAMESIZE),
                ("RTE_MEMPOOL_NAMESIZE", RTE_MEMPOOL_NAMESIZE, gw_RTE_MEMPOOL_NAMESIZE),
            ]
        };
        for (name, rust, c) in sizes {
            assert_eq!(rust, c, "{name}: Rust {rust} != C {c}");
        }
        for (name, rust, c) in pairs {
            assert_eq!(rust, c, "{name}: Rust {rust:#x} != C {c:#x}");
        }
    }
}
