//! Direct routing (LVS gatewaying): only the Ethernet addresses change.
//!
//! The real server holds the VIP on a loopback interface and answers the
//! client directly, so the IP packet must arrive exactly as the client sent
//! it. The frame is re-addressed to the real server's MAC; its source becomes
//! the egress port's MAC, as any sender on the segment must use its own. The
//! VLAN tag, if any, is left to the dataplane's egress handling.

use crate::frame::Frame;
use crate::wire::ethernet::HEADER_LEN;
use crate::wire::{EthAddrs, MacAddr};

use super::XmitError;

/// The Ethernet addresses of one DR transmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrRewrite {
    /// The real server's MAC.
    pub dst_mac: MacAddr,
    /// The egress port's MAC.
    pub src_mac: MacAddr,
}

/// Re-addresses the frame; the IP packet is not touched.
#[inline]
pub fn rewrite<F: Frame>(frame: &mut F, rw: &DrRewrite) -> Result<(), XmitError> {
    readdress(frame, EthAddrs::new(rw.dst_mac, rw.src_mac))
}

/// Writes `addrs` over the frame's Ethernet addresses: every frame the
/// gateway sends to a next hop is addressed here.
#[inline(always)]
pub fn readdress<F: Frame>(frame: &mut F, addrs: EthAddrs) -> Result<(), XmitError> {
    readdress_bytes(frame.data_mut(), &addrs)
}

/// [`readdress`] on a frame's bytes already in hand (a rewrite that took
/// them for its own work addresses the frame with the same access).
#[inline(always)]
pub(crate) fn readdress_bytes(data: &mut [u8], addrs: &EthAddrs) -> Result<(), XmitError> {
    let len = data.len();
    let header = data.first_chunk_mut::<12>().ok_or(XmitError::Truncated { needed: HEADER_LEN, len })?;
    *header = addrs.0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::tcp::flags;
    use crate::xmit::test_support::*;

    #[test]
    fn golden_only_macs_change() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], b"x");
        let mut f = BufFrame::new(&before);
        let rw = DrRewrite { dst_mac: MacAddr([0x52, 0x54, 0, 0, 0, 0x20]), src_mac: MacAddr([2, 0, 0, 0, 0, 0xaa]) };
        rewrite(&mut f, &rw).unwrap();
        let mut expected = before.clone();
        expected[..12].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 0x20, 2, 0, 0, 0, 0, 0xaa]);
        assert_eq!(bytes(&f), expected);
        assert_checksums_valid(&bytes(&f));
        let mut short = BufFrame::new(&[1, 2, 3]);
        assert_eq!(rewrite(&mut short, &rw), Err(XmitError::Truncated { needed: 14, len: 3 }));
    }
}
