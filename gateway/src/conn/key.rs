//! Connection keys: the 5-tuple a packet is looked up by, generic over the address family.
//!
//! The table is generic over [`Family`] rather than storing `IpAddr`: an `IpAddr` is 17
//! bytes whatever the family, so an IPv4 entry would pay for IPv6 addresses it never holds.
//! A worker keeps one table per family; IPv6 adds a second table, not a redesign.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Protocol;

/// An address family the connection table can hold.
pub trait Family: Copy + Eq + Hash + Debug + 'static {
    /// The address as 64 bits for hashing: IPv4 as is, IPv6 folded with a seeded multiply.
    fn hash_word(self, seed: u64) -> u64;
    fn to_ip(self) -> IpAddr;
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// An address on the servers' side of a connection (its real server, its local
    /// address) as the table holds it: one of the family, or in an IPv6 connection an
    /// IPv4 one as IPv4-mapped (`::ffff:a.b.c.d`): NAT64's ([`crate::xmit::nat64`]).
    /// Such addresses never belong on the wire (RFC 4291 §2.5.5.2): an IPv6 packet that
    /// carries them anyway reaches only what the IPv4 packet it impersonates would.
    fn from_server_ip(ip: IpAddr) -> Option<Self>;
    /// The address [`Family::from_server_ip`] was given.
    fn to_server_ip(self) -> IpAddr;
    /// Two addresses as one value, compared at once ([`Conn::holds`]).
    ///
    /// [`Conn::holds`]: super::table::Conn::holds
    type Pair: Eq;
    fn pair(a: Self, b: Self) -> Self::Pair;
}

impl Family for Ipv4Addr {
    /// Both addresses in one word, as the machine loads them from a
    /// connection's entry, where they lie side by side.
    type Pair = u64;
    #[inline(always)]
    fn pair(a: Self, b: Self) -> u64 {
        u64::from(u32::from_ne_bytes(a.octets())) | u64::from(u32::from_ne_bytes(b.octets())) << 32
    }
    #[inline]
    fn hash_word(self, _seed: u64) -> u64 {
        // The bytes as the machine loads them: a hash needs no byte swap.
        u64::from(u32::from_ne_bytes(self.octets()))
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
    fn from_server_ip(ip: IpAddr) -> Option<Self> {
        Self::from_ip(ip)
    }
    fn to_server_ip(self) -> IpAddr {
        self.to_ip()
    }
}

impl Family for Ipv6Addr {
    type Pair = (Ipv6Addr, Ipv6Addr);
    #[inline(always)]
    fn pair(a: Self, b: Self) -> Self::Pair {
        (a, b)
    }
    #[inline]
    fn hash_word(self, seed: u64) -> u64 {
        // The bytes as the machine loads them: a hash needs no byte swap.
        let v = u128::from_ne_bytes(self.octets());
        folded_multiply((v >> 64) as u64 ^ seed, v as u64 ^ seed.rotate_left(17))
    }
    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }
    fn from_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
    fn from_server_ip(ip: IpAddr) -> Option<Self> {
        match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(a) => Some(mapped(a)),
        }
    }
    fn to_server_ip(self) -> IpAddr {
        self.to_canonical()
    }
}

/// `a` IPv4-mapped: out of line, so the IPv6 connections' paths that may
/// meet a NAT64 address are compiled as if they could not (in line, it cost
/// the IPv6 new connection ~100 instructions, `measure_pipeline.sh`'s new6).
#[cold]
#[inline(never)]
fn mapped(a: Ipv4Addr) -> Ipv6Addr {
    a.to_ipv6_mapped()
}

/// The 5-tuple of a packet as it arrives: client to virtual service for [`Direction::In`],
/// real server to local address (FNAT) or client (NAT) for [`Direction::Out`].
///
/// [`Direction::In`]: super::Direction::In
/// [`Direction::Out`]: super::Direction::Out
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey<A> {
    pub proto: Protocol,
    pub src: A,
    pub sport: u16,
    pub dst: A,
    pub dport: u16,
}

/// The upper and lower halves of a 64x64 bit product XORed together: the mixing step of
/// foldhash/ahash. With secret seeds on both operands, a client cannot aim its 5-tuples at
/// one bucket without knowing the seeds.
#[inline]
pub fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Seeds of one table's hash function.
#[derive(Debug, Clone, Copy)]
pub struct HashSeed {
    pub a: u64,
    pub b: u64,
}

impl HashSeed {
    /// Seeds from the process's random state (std's `RandomState` is seeded from the OS
    /// once per thread and perturbed per instance), so no dependency is needed.
    pub fn random() -> HashSeed {
        use std::hash::{BuildHasher, Hasher};
        let rs = std::collections::hash_map::RandomState::new();
        let mut h = rs.build_hasher();
        h.write_u64(0x636f_6e6e);
        let a = h.finish();
        h.write_u64(a);
        HashSeed { a: a | 1, b: h.finish() | 1 }
    }
}

impl<A: Family> FlowKey<A> {
    /// The key's hash under `seed`. Two folded multiplies: after the first
    /// alone, keys that differ in one word only (clients counting up to one
    /// VIP, as a benchmark's or a NAT's do) were spread by a multiply with
    /// the other word, whose top bits some seeds made nearly regular, and the
    /// index clustered (57 probes an insert instead of 1.2 with one seed of
    /// the test below, before the addresses were hashed unswapped). The
    /// second spreads them as random keys would, for 2 instructions.
    #[inline]
    pub fn hash(&self, seed: HashSeed) -> u64 {
        let a = self.src.hash_word(seed.a) ^ ((self.proto as u64) << 56);
        let b = self.dst.hash_word(seed.b).rotate_left(32) ^ ((self.sport as u64) << 16) ^ self.dport as u64;
        folded_multiply(folded_multiply(a ^ seed.a, b ^ seed.b), MIX)
    }
}

/// The second multiply's constant: odd, the fractional bits of the golden
/// ratio's inverse (Fibonacci hashing's). Unkeyed: what it mixes is keyed
/// already.
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

#[cfg(test)]
mod tests {
    use super::*;

    /// Linear probing's mean probes per insert of `keys` into `1 << bits`
    /// slots homed by the hash's top bits, as the connection index homes them.
    fn mean_probes(keys: &[FlowKey<Ipv4Addr>], seed: HashSeed, bits: u32) -> f64 {
        let mut taken = vec![false; 1 << bits];
        let mask = (1usize << bits) - 1;
        let mut probes = 0u64;
        for k in keys {
            let mut pos = (k.hash(seed) >> (64 - bits)) as usize;
            probes += 1;
            while taken[pos] {
                pos = (pos + 1) & mask;
                probes += 1;
            }
            taken[pos] = true;
        }
        probes as f64 / keys.len() as f64
    }

    /// A benchmark's (or a NAT's) flows are structured: clients counting up
    /// one address at a time, then one port, to one VIP; and the replies of
    /// a few servers to local addresses and ports counting up. With the
    /// seeds of any table, such keys must fill the index as random ones
    /// would (at this load, about 1.2 probes an insert): with the hash ending
    /// in its first multiply and the addresses byte-swapped, one seed gave 57.
    #[test]
    fn structured_flows_spread_as_random_ones_for_every_seed() {
        let vip = Ipv4Addr::new(10, 0, 0, 1);
        let keys: Vec<_> = (0..40_000u32)
            .chain(1 << 20..(1 << 20) + 40_000)
            .flat_map(|i| {
                let client = FlowKey {
                    proto: Protocol::Tcp,
                    // Two sets: 4096 clients of ten ports each, and 40 000
                    // clients of one port.
                    src: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 1, 0, 0)) + if i < 1 << 20 { i % 4096 } else { i }),
                    sport: 1024 + if i < 1 << 20 { (i / 4096) as u16 } else { 0 },
                    dst: vip,
                    dport: 80,
                };
                let reply = FlowKey {
                    proto: Protocol::Tcp,
                    src: Ipv4Addr::new(192, 168, 1, 10 + (i % 4) as u8),
                    sport: 80,
                    dst: Ipv4Addr::new(192, 168, 1, 100 + (i % 64) as u8),
                    dport: 1024 + (i % (1 << 20) / 64) as u16 + if i < 1 << 20 { 0 } else { 1000 },
                };
                [client, reply]
            })
            .collect();
        for n in 0..16u64 {
            let seed = HashSeed { a: 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(2 * n + 1) | 1, b: (n << 40 ^ 0x5555) | 1 };
            let mean = mean_probes(&keys, seed, 19);
            assert!(mean < 1.45, "seed {n}: {mean:.3} probes an insert");
        }
    }

    #[test]
    fn hash_depends_on_every_field() {
        let seed = HashSeed { a: 0x1234_5678_9abc_def1, b: 0x0fed_cba9_8765_4321 };
        let k = FlowKey {
            proto: Protocol::Tcp,
            src: Ipv4Addr::new(1, 2, 3, 4),
            sport: 40000,
            dst: Ipv4Addr::new(10, 0, 0, 1),
            dport: 80,
        };
        let h = k.hash(seed);
        let variants = [
            FlowKey { proto: Protocol::Udp, ..k },
            FlowKey { src: Ipv4Addr::new(1, 2, 3, 5), ..k },
            FlowKey { sport: 40001, ..k },
            FlowKey { dst: Ipv4Addr::new(10, 0, 0, 2), ..k },
            FlowKey { dport: 81, ..k },
            // swapped direction must not collide with the original
            FlowKey { src: k.dst, dst: k.src, sport: k.dport, dport: k.sport, ..k },
        ];
        for v in variants {
            assert_ne!(v.hash(seed), h, "{v:?}");
        }
        let s1 = HashSeed::random();
        let s2 = HashSeed::random();
        assert!(s1.a != s2.a || s1.b != s2.b);
    }
}
