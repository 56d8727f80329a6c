//! Software prediction of the NIC's receive-side scaling (Toeplitz hash), so
//! the gateway can choose a FNAT local port whose *reply* the NIC already
//! delivers to the worker that owns the connection (DESIGN.md invariant 2).
//!
//! The Toeplitz hash is linear over GF(2): flipping input bit `i` flips the
//! hash by a fixed 32-bit word (the key window at bit `i`). So the hash of a
//! reply (RIP:rport -> LIP:lport) splits into a part that does not depend on
//! the local port, computed once per new connection, XOR a part that depends
//! only on the local port, looked up in a 65,536-entry table computed once per
//! key. Checking a candidate port is then one XOR, one mask and one
//! redirection-table load: cheap enough to scan candidates at connection setup.
//!
//! Peers either rely on `rte_flow` rules (DPVS's fdir) or hand every reply to
//! its owner in software; predicting the hash removes the hop on NICs with
//! plain RSS only.

use std::net::Ipv4Addr;

/// The de-facto standard 40-byte key (Microsoft's RSS verification key, also
/// the default of many NICs and DPDK's examples).
pub const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0, 0xd0, 0xca, 0x2b,
    0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac,
    0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key` (the key must be at least
/// `input.len() + 4` bytes long; shorter keys are treated as zero-padded).
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    for (i, byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= key_window(key, i * 8 + bit);
            }
        }
    }
    hash
}

/// The 32 key bits starting at bit `pos`.
fn key_window(key: &[u8], pos: usize) -> u32 {
    let byte = pos / 8;
    let shift = pos % 8;
    let get = |i: usize| u64::from(key.get(i).copied().unwrap_or(0));
    let word = (get(byte) << 32) | (get(byte + 1) << 24) | (get(byte + 2) << 16) | (get(byte + 3) << 8) | get(byte + 4);
    ((word << shift) >> 8) as u32
}

/// The hash a NIC computes for an IPv4 TCP/UDP packet with these fields
/// (input order: source address, destination address, source port,
/// destination port).
pub fn hash_ipv4_l4(key: &[u8], src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16) -> u32 {
    let mut input = [0u8; 12];
    input[0..4].copy_from_slice(&src.octets());
    input[4..8].copy_from_slice(&dst.octets());
    input[8..10].copy_from_slice(&src_port.to_be_bytes());
    input[10..12].copy_from_slice(&dst_port.to_be_bytes());
    toeplitz(key, &input)
}

/// Predicts which rx queue receives the replies of FNAT connections: for one
/// RSS key and redirection table, and any real server and local address, the
/// queue a reply to each local port lands on.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplySteering {
    key: Vec<u8>,
    /// Hash contribution of each destination (local) port value.
    port_part: Box<[u32]>,
    /// rx queue per redirection-table entry; its length is a power of two.
    reta: Box<[u16]>,
}

impl std::fmt::Debug for ReplySteering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplySteering").field("reta_size", &self.reta.len()).finish()
    }
}

/// Why a redirection table cannot be used for prediction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SteeringError {
    /// Empty, or its size is not a power of two (hash bits index it).
    BadRetaSize(usize),
    /// The key is shorter than the 16 bytes a 12-byte IPv4 input needs.
    KeyTooShort(usize),
}

impl std::fmt::Display for SteeringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SteeringError::BadRetaSize(n) => write!(f, "redirection table size {n} is not a power of two"),
            SteeringError::KeyTooShort(n) => write!(f, "RSS key of {n} bytes is too short (at least 16)"),
        }
    }
}

impl std::error::Error for SteeringError {}

impl ReplySteering {
    /// `reta[i]` is the queue of hash values whose low bits equal `i`.
    pub fn new(key: &[u8], reta: &[u16]) -> Result<ReplySteering, SteeringError> {
        if key.len() < 16 {
            return Err(SteeringError::KeyTooShort(key.len()));
        }
        if reta.is_empty() || !reta.len().is_power_of_two() {
            return Err(SteeringError::BadRetaSize(reta.len()));
        }
        // The destination port is input bits 80..96; its part of the hash is
        // the XOR of the key windows of its set bits.
        let windows: Vec<u32> = (0..16).map(|b| key_window(key, 80 + b)).collect();
        let mut port_part = vec![0u32; 65536].into_boxed_slice();
        for port in 1..65536usize {
            // Build from the value without its lowest set bit: one XOR each.
            let low = port.trailing_zeros() as usize;
            port_part[port] = port_part[port & (port - 1)] ^ windows[15 - low];
        }
        Ok(ReplySteering { key: key.to_vec(), port_part, reta: reta.into() })
    }

    /// A redirection table spreading `queues` queues round-robin over
    /// `size` entries, as drivers do by default.
    pub fn round_robin_reta(queues: u16, size: usize) -> Vec<u16> {
        (0..size).map(|i| (i % usize::from(queues.max(1))) as u16).collect()
    }

    /// The port-independent part of the reply hash for replies from
    /// `rip:rport` to local address `lip` (computed once per connection).
    #[inline]
    pub fn base(&self, rip: Ipv4Addr, rport: u16, lip: Ipv4Addr) -> u32 {
        hash_ipv4_l4(&self.key, rip, lip, rport, 0)
    }

    /// The rx queue that receives a reply to local port `lport`, given
    /// [`ReplySteering::base`].
    #[inline]
    pub fn queue(&self, base: u32, lport: u16) -> u16 {
        let hash = base ^ self.port_part[usize::from(lport)];
        self.reta[hash as usize & (self.reta.len() - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// Microsoft's RSS verification suite (IPv4 with TCP ports), default key:
    /// (destination, source, expected hash).
    const VECTORS: [(&str, u16, &str, u16, u32); 5] = [
        ("161.142.100.80", 1766, "66.9.149.187", 2794, 0x51cc_c178),
        ("65.69.140.83", 4739, "199.92.111.2", 14230, 0xc626_b0ea),
        ("12.22.207.184", 38024, "24.19.198.95", 12898, 0x5c2b_394a),
        ("209.142.163.6", 2217, "38.27.205.30", 48228, 0xafc7_327f),
        ("202.188.127.2", 1303, "153.39.163.191", 44251, 0x10e8_28a2),
    ];

    #[test]
    fn matches_the_published_verification_vectors() {
        for (dst, dport, src, sport, want) in VECTORS {
            assert_eq!(
                hash_ipv4_l4(&DEFAULT_KEY, ip(src), ip(dst), sport, dport),
                want,
                "{src}:{sport} -> {dst}:{dport}"
            );
        }
        // Addresses only (no ports): the first vector's IPv4 figure.
        let mut input = [0u8; 8];
        input[..4].copy_from_slice(&ip("66.9.149.187").octets());
        input[4..].copy_from_slice(&ip("161.142.100.80").octets());
        assert_eq!(toeplitz(&DEFAULT_KEY, &input), 0x323e_8fc2);
    }

    #[test]
    fn split_hash_equals_the_full_hash_for_every_port() {
        let reta: Vec<u16> = (0..128).map(|i| (i * 7 % 5) as u16).collect();
        let s = ReplySteering::new(&DEFAULT_KEY, &reta).unwrap();
        let (rip, lip, rport) = (ip("192.0.2.10"), ip("198.51.100.7"), 8080);
        let base = s.base(rip, rport, lip);
        for lport in (0..=u16::MAX).step_by(97).chain([0, 1, 1024, 65535]) {
            let full = hash_ipv4_l4(&DEFAULT_KEY, rip, lip, rport, lport);
            assert_eq!(s.queue(base, lport), reta[full as usize & 127], "lport {lport}");
        }
    }

    #[test]
    fn every_queue_gets_a_share_of_the_ports() {
        let s = ReplySteering::new(&DEFAULT_KEY, &ReplySteering::round_robin_reta(4, 128)).unwrap();
        let base = s.base(ip("10.1.0.5"), 80, ip("10.2.0.1"));
        let mut per_queue = [0u32; 4];
        for lport in 1024..=u16::MAX {
            per_queue[usize::from(s.queue(base, lport))] += 1;
        }
        let even = (65536 - 1024) / 4;
        for n in per_queue {
            assert!(n.abs_diff(even) < even / 10, "uneven spread {per_queue:?}");
        }
    }

    /// The same hash as DPDK's own software implementation on arbitrary tuples.
    #[cfg(feature = "dpdk")]
    #[test]
    fn agrees_with_dpdk_softrss() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        };
        for _ in 0..1000 {
            let (src, dst, ports) = (next(), next(), next());
            let (sport, dport) = ((ports >> 16) as u16, ports as u16);
            let ours = hash_ipv4_l4(&DEFAULT_KEY, Ipv4Addr::from(src), Ipv4Addr::from(dst), sport, dport);
            assert_eq!(ours, crate::dpdk::softrss(&[src, dst, ports], &DEFAULT_KEY));
        }
    }

    #[test]
    fn bad_tables_and_keys_are_refused() {
        assert_eq!(ReplySteering::new(&DEFAULT_KEY, &[0, 1, 2]).unwrap_err(), SteeringError::BadRetaSize(3));
        assert_eq!(ReplySteering::new(&DEFAULT_KEY, &[]).unwrap_err(), SteeringError::BadRetaSize(0));
        assert_eq!(ReplySteering::new(&DEFAULT_KEY[..8], &[0]).unwrap_err(), SteeringError::KeyTooShort(8));
    }
}
