//! Hash functions of the hashing schedulers.

use std::net::IpAddr;

/// The kernel's `GOLDEN_RATIO_32`, the multiplier of `hash_32`.
const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The kernel's `hash_32(val, bits)`: multiplicative (Fibonacci) hashing, keeping the top
/// `bits` bits, which are the best mixed ones.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// IPVS's `ip_vs_addr_fold`: an IPv4 address as a host-order number; an IPv6 address as
/// the XOR of its four 32-bit words.
pub fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let o = a.octets();
            (0..4).fold(0, |acc, w| acc ^ u32::from_be_bytes([o[4 * w], o[4 * w + 1], o[4 * w + 2], o[4 * w + 3]]))
        }
    }
}

/// A 64-bit finaliser (splitmix64's): every input bit affects every output bit.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hashes an address and port with `seed`, for Maglev. Fixed seeds make the table a pure
/// function of the server list, the same on every worker and across restarts.
pub fn hash_addr(addr: IpAddr, port: u16, seed: u64) -> u64 {
    let (hi, lo) = match addr {
        IpAddr::V4(a) => (0, u32::from(a) as u64),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            ((v >> 64) as u64, v as u64)
        }
    };
    mix64(mix64(seed ^ hi) ^ lo ^ ((port as u64) << 48))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_is_the_kernels() {
        // hash_32(1, 8) = 0x61C88647 >> 24.
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(addr_fold("10.0.0.1".parse().unwrap()), 0x0a00_0001);
        assert_eq!(addr_fold("::1".parse().unwrap()), 1);
    }
}
