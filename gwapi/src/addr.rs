//! Addresses as the API's users write them: the family arithmetic of a netmask or prefix
//! (`-M`, `route add 10.0.0.0/8`) and the text form of a link-layer address
//! (`neigh add ... lladdr 52:54:00:12:34:56`), shared by `gwctl` and the daemon's
//! configuration file.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The number of address bits of `addr`'s family (32 or 128).
pub fn family_bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// The prefix length of a contiguous netmask (`255.255.255.0` is 24); `None`
/// when the mask has holes.
pub fn mask_prefix_len(mask: IpAddr) -> Option<u8> {
    let (ones, zeros, bits) = match mask {
        IpAddr::V4(m) => (u32::from(m).leading_ones(), u32::from(m).trailing_zeros(), 32),
        IpAddr::V6(m) => (u128::from(m).leading_ones(), u128::from(m).trailing_zeros(), 128),
    };
    (ones + zeros == bits).then_some(ones as u8)
}

/// A 48-bit link-layer (Ethernet) address in its text form, `aa:bb:cc:dd:ee:ff`; the API
/// itself carries the six bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkAddr(pub [u8; 6]);

impl fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// Text that is not a link-layer address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddrError(pub String);

impl fmt::Display for LinkAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a MAC address (aa:bb:cc:dd:ee:ff)", self.0)
    }
}

impl std::error::Error for LinkAddrError {}

impl FromStr for LinkAddr {
    type Err = LinkAddrError;

    /// `aa:bb:cc:dd:ee:ff`, one or two hex digits per byte, as iproute2 accepts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LinkAddrError(s.to_owned());
        let mut mac = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut mac {
            let part = parts.next().ok_or_else(bad)?;
            if part.is_empty() || part.len() > 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            None => Ok(LinkAddr(mac)),
            Some(_) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn family_and_mask_arithmetic() {
        assert_eq!((family_bits(ip("10.0.0.1")), family_bits(ip("::1"))), (32, 128));
        assert_eq!(mask_prefix_len(ip("255.255.255.0")), Some(24));
        assert_eq!(mask_prefix_len(ip("0.0.0.0")), Some(0));
        assert_eq!(mask_prefix_len(ip("255.255.255.255")), Some(32));
        assert_eq!(mask_prefix_len(ip("255.0.255.0")), None);
        assert_eq!(mask_prefix_len(ip("ffff:ffff::")), Some(32));
        assert_eq!(mask_prefix_len(ip("ffff:0:ffff::")), None);
    }

    #[test]
    fn link_addrs_parse_and_print() {
        let mac: LinkAddr = "52:54:0:12:34:5f".parse().unwrap();
        assert_eq!(mac, LinkAddr([0x52, 0x54, 0, 0x12, 0x34, 0x5f]));
        assert_eq!(mac.to_string(), "52:54:00:12:34:5f");
        for bad in
            ["", "52:54:00:12:34", "52:54:00:12:34:56:78", "52:54:00:12:34:5g", "052:54:00:12:34:56", "52::00:12:34:56"]
        {
            assert_eq!(bad.parse::<LinkAddr>(), Err(LinkAddrError(bad.into())), "{bad}");
        }
        assert_eq!(
            "xx".parse::<LinkAddr>().unwrap_err().to_string(),
            "\"xx\" is not a MAC address (aa:bb:cc:dd:ee:ff)"
        );
    }
}
