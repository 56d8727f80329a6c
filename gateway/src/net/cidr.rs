//! IPv4 prefixes (`10.0.0.0/24`) as the configuration and the route table use them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// An IPv4 address with a prefix length. The address keeps its host bits, so
/// the same type describes an interface address (`10.0.0.1/24`) and, through
/// [`Ipv4Cidr::network`], the network it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix_len: u8,
}

/// Why text is not an IPv4 prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    BadAddress(String),
    BadPrefixLength(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadAddress(s) => write!(f, "{s:?} is not an IPv4 address"),
            CidrError::BadPrefixLength(s) => write!(f, "{s:?} is not a prefix length (0..=32)"),
        }
    }
}

impl std::error::Error for CidrError {}

impl Ipv4Cidr {
    /// `None` when `prefix_len` is over 32.
    pub const fn new(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Cidr> {
        if prefix_len > 32 {
            return None;
        }
        Some(Ipv4Cidr { addr, prefix_len })
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask as a host-order integer.
    pub fn mask_bits(&self) -> u32 {
        mask_bits(self.prefix_len)
    }

    /// The same prefix with the host bits cleared.
    pub fn network(&self) -> Ipv4Cidr {
        Ipv4Cidr { addr: Ipv4Addr::from(u32::from(self.addr) & self.mask_bits()), prefix_len: self.prefix_len }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask_bits() == 0
    }
}

/// `addr` with every bit past `prefix_len` cleared, in either family (a
/// prefix longer than the family keeps the whole address).
pub fn network_of(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_bits(prefix_len))),
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix_len.min(128))).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
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

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    /// `a.b.c.d/n`, or a bare address meaning `/32`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        let prefix_len = match len {
            None => 32,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 32 && !l.starts_with('+'))
                .ok_or_else(|| CidrError::BadPrefixLength(l.to_owned()))?,
        };
        Ok(Ipv4Cidr { addr, prefix_len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!("10.0.0.256/8".parse::<Ipv4Cidr>(), Err(CidrError::BadAddress("10.0.0.256".into())));
        assert_eq!("10.0.0.0/33".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLength("33".into())));
        assert_eq!("10.0.0.0/+8".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLength("+8".into())));
        assert_eq!("10.0.0.0/".parse::<Ipv4Cidr>(), Err(CidrError::BadPrefixLength("".into())));
        assert_eq!(
            "10.0.0.0/33".parse::<Ipv4Cidr>().unwrap_err().to_string(),
            "\"33\" is not a prefix length (0..=32)"
        );
        assert!(Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 33).is_none());
    }
}
