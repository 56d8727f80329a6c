//! IP prefixes (`10.0.0.0/24`, `2001:db8::/64`) as the configuration and the
//! route tables use them, for either family through [`FamilyAddr`].

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::BitAnd;
use std::str::FromStr;

/// An address of one IP family, as the prefix and route code needs it: its
/// bits as an integer and the netmask of a prefix length. Implemented by
/// [`Ipv4Addr`] (`u32`) and [`Ipv6Addr`] (`u128`); code generic over it is
/// monomorphised, so the IPv4 instance does exactly the `u32` work it did
/// before there was a second family.
pub trait FamilyAddr: Copy + Eq + Hash + fmt::Debug + fmt::Display + FromStr + Send + Sync + 'static {
    /// The address as a host-order integer.
    type Bits: Copy + Eq + Hash + fmt::Debug + BitAnd<Output = Self::Bits> + Send + Sync + 'static;
    /// Address length in bits: the longest prefix.
    const BITS: u8;
    /// The family's version number, for messages ("IPv4", "IPv6").
    const VERSION: u8;

    fn to_bits(self) -> Self::Bits;
    fn from_bits(bits: Self::Bits) -> Self;
    /// The netmask of `prefix_len` (capped at [`BITS`](Self::BITS)).
    fn mask(prefix_len: u8) -> Self::Bits;
    /// The address in 64 bits, for a multiply-shift hash (IPv6's halves
    /// folded together).
    fn fold(self) -> u64;
}

impl FamilyAddr for Ipv4Addr {
    type Bits = u32;
    const BITS: u8 = 32;
    const VERSION: u8 = 4;

    #[inline]
    fn to_bits(self) -> u32 {
        u32::from(self)
    }
    #[inline]
    fn from_bits(bits: u32) -> Ipv4Addr {
        Ipv4Addr::from(bits)
    }
    #[inline]
    fn mask(prefix_len: u8) -> u32 {
        mask_bits(prefix_len)
    }
    #[inline(always)]
    fn fold(self) -> u64 {
        // The bytes as the machine loads them: a hash needs no byte swap.
        u64::from(u32::from_ne_bytes(self.octets()))
    }
}

impl FamilyAddr for Ipv6Addr {
    type Bits = u128;
    const BITS: u8 = 128;
    const VERSION: u8 = 6;

    #[inline]
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    #[inline]
    fn from_bits(bits: u128) -> Ipv6Addr {
        Ipv6Addr::from(bits)
    }
    #[inline]
    fn mask(prefix_len: u8) -> u128 {
        mask_bits_v6(prefix_len)
    }
    #[inline(always)]
    fn fold(self) -> u64 {
        let bits = self.to_bits();
        (bits >> 64) as u64 ^ bits as u64
    }
}

/// An address with a prefix length. The address keeps its host bits, so
/// the same type describes an interface address (`10.0.0.1/24`) and, through
/// [`Cidr::network`], the network it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr<A: FamilyAddr = Ipv4Addr> {
    addr: A,
    prefix_len: u8,
}

/// An IPv4 prefix.
pub type Ipv4Cidr = Cidr<Ipv4Addr>;
/// An IPv6 prefix.
pub type Ipv6Cidr = Cidr<Ipv6Addr>;

/// Why text is not a prefix of the family asked for (`version`: 4 or 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    BadAddress { text: String, version: u8 },
    BadPrefixLength { text: String, version: u8 },
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadAddress { text, version } => write!(f, "{text:?} is not an IPv{version} address"),
            CidrError::BadPrefixLength { text, version } => {
                let bits = if *version == 4 { 32 } else { 128 };
                write!(f, "{text:?} is not a prefix length (0..={bits})")
            }
        }
    }
}

impl std::error::Error for CidrError {}

/// A prefix of either family, where one list holds both (a port's addresses
/// in the configuration file, a kernel interface's): IPv6 when the text has
/// a colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpCidr {
    V4(Ipv4Cidr),
    V6(Ipv6Cidr),
}

impl IpCidr {
    pub fn addr(&self) -> IpAddr {
        match self {
            IpCidr::V4(c) => c.addr().into(),
            IpCidr::V6(c) => c.addr().into(),
        }
    }

    pub fn prefix_len(&self) -> u8 {
        match self {
            IpCidr::V4(c) => c.prefix_len(),
            IpCidr::V6(c) => c.prefix_len(),
        }
    }
}

impl FromStr for IpCidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            s.parse().map(IpCidr::V6)
        } else {
            s.parse().map(IpCidr::V4)
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::V4(c) => c.fmt(f),
            IpCidr::V6(c) => c.fmt(f),
        }
    }
}

impl<A: FamilyAddr> Cidr<A> {
    /// `None` when `prefix_len` is longer than the family's addresses.
    pub const fn new(addr: A, prefix_len: u8) -> Option<Cidr<A>> {
        if prefix_len > A::BITS {
            return None;
        }
        Some(Cidr { addr, prefix_len })
    }

    pub fn addr(&self) -> A {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask as a host-order integer.
    #[inline]
    pub fn mask_bits(&self) -> A::Bits {
        A::mask(self.prefix_len)
    }

    /// The same prefix with the host bits cleared.
    pub fn network(&self) -> Cidr<A> {
        Cidr { addr: A::from_bits(self.addr.to_bits() & self.mask_bits()), prefix_len: self.prefix_len }
    }

    pub fn contains(&self, ip: A) -> bool {
        let mask = self.mask_bits();
        ip.to_bits() & mask == self.addr.to_bits() & mask
    }
}

/// `addr` with every bit past `prefix_len` cleared, in either family (a
/// prefix longer than the family keeps the whole address).
pub fn network_of(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_bits(prefix_len))),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask_bits_v6(prefix_len)).into()),
    }
}

/// The netmask of a prefix length (at most 32) as a host-order integer.
/// Inline: every route lookup computes it, across the crate boundary.
#[inline]
pub(crate) fn mask_bits(prefix_len: u8) -> u32 {
    match prefix_len {
        0 => 0,
        n => u32::MAX << (32 - n.min(32)),
    }
}

/// The IPv6 netmask of a prefix length (at most 128).
#[inline]
fn mask_bits_v6(prefix_len: u8) -> u128 {
    match prefix_len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n.min(128))),
    }
}

impl<A: FamilyAddr> fmt::Display for Cidr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl<A: FamilyAddr> FromStr for Cidr<A> {
    type Err = CidrError;

    /// `address/n`, or a bare address meaning the whole address (`/32`,
    /// `/128`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let version = A::VERSION;
        let addr: A = addr.parse().map_err(|_| CidrError::BadAddress { text: addr.to_owned(), version })?;
        let prefix_len = match len {
            None => A::BITS,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= A::BITS && !l.starts_with('+'))
                .ok_or_else(|| CidrError::BadPrefixLength { text: l.to_owned(), version })?,
        };
        Ok(Cidr { addr, prefix_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_of_either_family_is_read_by_its_text() {
        let v4: IpCidr = "10.0.0.254/24".parse().unwrap();
        let v6: IpCidr = "2001:db8::fe/64".parse().unwrap();
        assert_eq!(
            (v4.addr(), v4.prefix_len(), v4.to_string()),
            ("10.0.0.254".parse().unwrap(), 24, "10.0.0.254/24".into())
        );
        assert_eq!(
            (v6.addr(), v6.prefix_len(), v6.to_string()),
            ("2001:db8::fe".parse().unwrap(), 64, "2001:db8::fe/64".into())
        );
        assert_eq!(
            "2001:db8::fe/129".parse::<IpCidr>().unwrap_err().to_string(),
            "\"129\" is not a prefix length (0..=128)"
        );
        assert_eq!("10.0.0.300/24".parse::<IpCidr>().unwrap_err().to_string(), "\"10.0.0.300\" is not an IPv4 address");
    }

    #[test]
    fn parses_and_prints() {
        let c: Ipv4Cidr = "10.1.2.3/24".parse().unwrap();
        assert_eq!((c.addr(), c.prefix_len()), (Ipv4Addr::new(10, 1, 2, 3), 24));
        assert_eq!(c.to_string(), "10.1.2.3/24");
        assert_eq!(c.network().to_string(), "10.1.2.0/24");
        assert_eq!("192.0.2.1".parse::<Ipv4Cidr>().unwrap().prefix_len(), 32);
        assert_eq!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().mask_bits(), 0);
    }

    #[test]
    fn contains_follows_the_mask() {
        let c: Ipv4Cidr = "10.1.2.0/23".parse().unwrap();
        assert!(c.contains(Ipv4Addr::new(10, 1, 3, 255)));
        assert!(!c.contains(Ipv4Addr::new(10, 1, 4, 0)));
        assert!("0.0.0.0/0".parse::<Ipv4Cidr>().unwrap().contains(Ipv4Addr::new(203, 0, 113, 9)));
        let host: Ipv4Cidr = "10.0.0.1/32".parse().unwrap();
        assert!(host.contains(Ipv4Addr::new(10, 0, 0, 1)) && !host.contains(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn family_generic_prefix_helpers() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network_of(ip("10.1.2.3"), 8), ip("10.0.0.0"));
        assert_eq!(network_of(ip("10.1.2.3"), 0), ip("0.0.0.0"));
        assert_eq!(network_of(ip("2001:db8::1"), 32), ip("2001:db8::"));
        assert_eq!(network_of(ip("2001:db8::1"), 128), ip("2001:db8::1"));
    }

    #[test]
    fn bad_text_is_refused_with_the_value() {
        assert_eq!(
            "10.0.0.256/8".parse::<Ipv4Cidr>(),
            Err(CidrError::BadAddress { text: "10.0.0.256".into(), version: 4 })
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Cidr>(),
            Err(CidrError::BadPrefixLength { text: "33".into(), version: 4 })
        );
        assert_eq!(
            "10.0.0.0/+8".parse::<Ipv4Cidr>(),
            Err(CidrError::BadPrefixLength { text: "+8".into(), version: 4 })
        );
        assert_eq!("10.0.0.0/".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLength { text: "".into(), version: 4 }));
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Cidr>().unwrap_err().to_string(),
            "\"33\" is not a prefix length (0..=32)"
        );
        assert!(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 33).is_none());
    }

    #[test]
    fn ipv6_prefixes_parse_contain_and_refuse() {
        let c: Ipv6Cidr = "2001:db8:1:2::5/48".parse().unwrap();
        assert_eq!(c.to_string(), "2001:db8:1:2::5/48");
        assert_eq!(c.network().to_string(), "2001:db8:1::/48");
        assert_eq!(c.mask_bits(), u128::MAX << 80);
        assert!(c.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!c.contains("2001:db8:2::1".parse().unwrap()));
        assert_eq!("::/0".parse::<Ipv6Cidr>().unwrap().mask_bits(), 0);
        assert!("::/0".parse::<Ipv6Cidr>().unwrap().contains("fe80::1".parse().unwrap()));
        let host: Ipv6Cidr = "2001:db8::1".parse().unwrap();
        assert_eq!((host.prefix_len(), host.mask_bits()), (128, u128::MAX));
        assert!(host.contains("2001:db8::1".parse().unwrap()) && !host.contains("2001:db8::2".parse().unwrap()));
        assert_eq!(
            "2001:db8::/129".parse::<Ipv6Cidr>().unwrap_err().to_string(),
            "\"129\" is not a prefix length (0..=128)"
        );
        assert_eq!("10.0.0.0/8".parse::<Ipv6Cidr>().unwrap_err().to_string(), "\"10.0.0.0\" is not an IPv6 address");
        assert_eq!(
            "2001:db8::/32".parse::<Ipv4Cidr>().unwrap_err().to_string(),
            "\"2001:db8::\" is not an IPv4 address"
        );
        assert!(Ipv6Cidr::new(Ipv6Addr::UNSPECIFIED, 129).is_none());
        assert!(Ipv6Cidr::new(Ipv6Addr::UNSPECIFIED, 128).is_some());
    }
}
