//! ARP for IPv4 over Ethernet (RFC 826), the only kind a gateway port answers.

use std::net::Ipv4Addr;

use super::ethernet::{MacAddr, ETHERTYPE_IPV4};
use super::{be16, put16, Error, Layer};

pub const HARDWARE_ETHERNET: u16 = 1;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

mod field {
    use std::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
    pub const LEN: usize = 28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::LEN;

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Checks the length and that the packet maps IPv4 to Ethernet addresses.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let len = buffer.as_ref().len();
        if len < field::LEN {
            return Err(Error::Truncated { layer: Layer::Arp, needed: field::LEN, len });
        }
        let p = ArpPacket { buffer };
        if p.hardware_type() != HARDWARE_ETHERNET
            || p.protocol_type() != ETHERTYPE_IPV4
            || p.hardware_len() != 6
            || p.protocol_len() != 4
        {
            return Err(Error::UnsupportedArp {
                hardware: p.hardware_type(),
                protocol: p.protocol_type(),
                hlen: p.hardware_len(),
                plen: p.protocol_len(),
            });
        }
        Ok(p)
    }

    pub fn hardware_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE)
    }
    pub fn protocol_type(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE)
    }
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER)
    }
    pub fn sender_hardware_addr(&self) -> MacAddr {
        MacAddr(self.buffer.as_ref()[field::SHA].try_into().unwrap_or_default())
    }
    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.buffer.as_ref()[field::SPA]).unwrap_or_default())
    }
    pub fn target_hardware_addr(&self) -> MacAddr {
        MacAddr(self.buffer.as_ref()[field::THA].try_into().unwrap_or_default())
    }
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.buffer.as_ref()[field::TPA]).unwrap_or_default())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Writes the fixed Ethernet/IPv4 type and length fields.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, field::HTYPE, HARDWARE_ETHERNET);
        put16(b, field::PTYPE, ETHERTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }
    pub fn set_operation(&mut self, op: u16) {
        put16(self.buffer.as_mut(), field::OPER, op);
    }
    pub fn set_sender_hardware_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0);
    }
    pub fn set_sender_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }
    pub fn set_target_hardware_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0);
    }
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }
}

/// An Ethernet/IPv4 ARP packet as values: what [`ArpRepr::emit`] writes
/// and [`ArpRepr::parse`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// [`OP_REQUEST`] or [`OP_REPLY`].
    pub operation: u16,
    pub sender_hardware_addr: MacAddr,
    pub sender_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: MacAddr,
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// The packet's values (a checked view is already Ethernet/IPv4).
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> ArpRepr {
        ArpRepr {
            operation: packet.operation(),
            sender_hardware_addr: packet.sender_hardware_addr(),
            sender_protocol_addr: packet.sender_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        }
    }

    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet; the buffer must hold [`PACKET_LEN`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_ethernet_ipv4();
        packet.set_operation(self.operation);
        packet.set_sender_hardware_addr(self.sender_hardware_addr);
        packet.set_sender_protocol_addr(self.sender_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // eth/ipv4, request
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
    ];

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(p.hardware_type(), 1);
        assert_eq!(p.protocol_type(), 0x0800);
        assert_eq!((p.hardware_len(), p.protocol_len()), (6, 4));
        assert_eq!(p.operation(), OP_REQUEST);
        assert_eq!(p.sender_hardware_addr(), MacAddr([0x52, 0x54, 0, 0, 0, 1]));
        assert_eq!(p.sender_protocol_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.target_hardware_addr(), MacAddr::default());
        assert_eq!(p.target_protocol_addr(), Ipv4Addr::new(10, 0, 0, 2));
    }

    #[test]
    fn emit_same_bytes() {
        let mut buf = [0xeeu8; 28];
        let mut p = ArpPacket::new_unchecked(&mut buf[..]);
        p.set_ethernet_ipv4();
        p.set_operation(OP_REQUEST);
        p.set_sender_hardware_addr(MacAddr([0x52, 0x54, 0, 0, 0, 1]));
        p.set_sender_protocol_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_target_hardware_addr(MacAddr::default());
        p.set_target_protocol_addr(Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn other_kinds_are_refused() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated { layer: Layer::Arp, needed: 28, len: 27 }
        );
        let mut ipv6 = REQUEST;
        ipv6[2] = 0x86;
        ipv6[3] = 0xdd;
        assert_eq!(
            ArpPacket::new_checked(&ipv6[..]).unwrap_err(),
            Error::UnsupportedArp { hardware: 1, protocol: 0x86dd, hlen: 6, plen: 4 }
        );
    }

    #[test]
    fn repr_round_trips_the_literal_request() {
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap());
        assert_eq!(
            repr,
            ArpRepr {
                operation: OP_REQUEST,
                sender_hardware_addr: MacAddr([0x52, 0x54, 0, 0, 0, 1]),
                sender_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
                target_hardware_addr: MacAddr::default(),
                target_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
            }
        );
        let mut buf = [0xeeu8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }
}
