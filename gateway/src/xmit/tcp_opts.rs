//! TCP option edits: SACK edges moved with an acknowledgment delta, the MSS
//! clamp, and insertion of the TOA client-address option.
//!
//! Edits happen in place during one walk over the option space. Options can
//! sit at any alignment (a sender may put a lone NOP before MSS), so each
//! changed value enters the checksum with its parity (see
//! [`Delta::replace_bytes`]). A malformed option ends the walk: what was
//! already edited stays consistent, the rest is forwarded untouched.
//!
//! TOA is inserted right after the fixed 20-byte header, before the existing
//! options. Appending it after them instead would put it behind an
//! End-of-List a sender may have used as padding, where the real server's
//! `toa` module would never look. To make room the frame grows at the front
//! (`prepend(8)`) and the Ethernet, IPv4 and fixed TCP headers (54 to 98
//! bytes) move forward by 8: cheaper than moving the payload back, and
//! what DPVS does too.

use crate::frame::{Frame, L4Offload};
use crate::wire::checksum::Delta;
use crate::wire::tcp::{self, kind, toa_bytes, TOA_LEN};
use crate::wire::{ip_proto, ipv4, Ipv4Meta};

use super::{pseudo_header_checksum, request_offload, Offload};

/// Walks `options` (the bytes after the fixed TCP header, which starts at an
/// even offset) and subtracts `sack_delta` from every SACK edge and lowers
/// every MSS above `mss_clamp` to it, recording the changes in `delta`.
pub fn edit_options(options: &mut [u8], sack_delta: u32, mss_clamp: Option<u16>, delta: &mut Delta) {
    let mut at = 0;
    while let Some(&k) = options.get(at) {
        if k == kind::END {
            return;
        }
        if k == kind::NOP {
            at += 1;
            continue;
        }
        let Some(len) = options.get(at + 1).map(|&l| usize::from(l)) else { return };
        let Some(option) = options.get_mut(at..at + len).filter(|_| len >= 2) else { return };
        match (k, len) {
            (kind::MSS, 4) => {
                if let Some(clamp) = mss_clamp {
                    let old = [option[2], option[3]];
                    if u16::from_be_bytes(old) > clamp {
                        let new = clamp.to_be_bytes();
                        option[2..4].copy_from_slice(&new);
                        delta.replace_bytes((at + 2) % 2 == 1, &old, &new);
                    }
                }
            }
            (kind::SACK, 10 | 18 | 26 | 34) if sack_delta != 0 => {
                for (i, edge) in option[2..].chunks_exact_mut(4).enumerate() {
                    let old = [edge[0], edge[1], edge[2], edge[3]];
                    let new = u32::from_be_bytes(old).wrapping_sub(sack_delta).to_be_bytes();
                    edge.copy_from_slice(&new);
                    delta.replace_bytes((at + 2 + 4 * i) % 2 == 1, &old, &new);
                }
            }
            _ => {}
        }
        at += len;
    }
}

/// What happened to a requested TOA insertion. Only `Inserted` changes the
/// frame; the others leave it as it was, still valid, and are worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToaOutcome {
    NotRequested,
    Inserted,
    /// The TCP header already carries more than 32 bytes of options.
    NoOptionSpace,
    /// 8 more bytes would exceed the egress MTU.
    ExceedsMtu,
    /// The frame has fewer than 8 bytes of headroom.
    NoHeadroom,
    /// Not a TCP packet, or shorter than classified.
    NotApplicable,
}

/// Inserts a TOA option carrying `port` and `addr` into the TCP packet of a
/// frame classified as `meta`, fixing the IPv4 total length, the TCP data
/// offset and both checksums (or the offload request). `meta.l4_len` grows
/// by 8 on success. Refuses, leaving the frame untouched, when the options
/// are full or the packet would exceed `mtu`.
pub fn insert_toa<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    port: u16,
    addr: [u8; 4],
    mtu: u16,
    offload: Offload,
) -> ToaOutcome {
    let l3 = meta.l3_offset();
    let l4 = meta.l4_offset();
    let moved = l4 + tcp::MIN_HEADER_LEN;
    if meta.protocol != ip_proto::TCP
        || frame.len() < l3 + meta.ip_total_len()
        || usize::from(meta.l4_len) < tcp::MIN_HEADER_LEN
        || usize::from(meta.l3_len) < ipv4::MIN_HEADER_LEN
    {
        return ToaOutcome::NotApplicable;
    }
    let header_len = usize::from(frame.data()[l4 + tcp::offset::DATA_OFFSET] >> 4) * 4;
    if header_len < tcp::MIN_HEADER_LEN || header_len > usize::from(meta.l4_len) {
        return ToaOutcome::NotApplicable;
    }
    if header_len + TOA_LEN > tcp::MAX_HEADER_LEN {
        return ToaOutcome::NoOptionSpace;
    }
    let new_total = meta.ip_total_len() + TOA_LEN;
    if new_total > usize::from(mtu) {
        return ToaOutcome::ExceedsMtu;
    }
    if frame.prepend(TOA_LEN).is_err() {
        return ToaOutcome::NoHeadroom;
    }
    let data = frame.data_mut();
    data.copy_within(TOA_LEN..TOA_LEN + moved, 0);
    let toa = toa_bytes(port, addr.into());
    data[moved..moved + TOA_LEN].copy_from_slice(&toa);

    // Bounds: the frame held l3 + total >= l4 + 20 bytes before growing by 8.
    let (ip_part, tcp_part) = data[l3..].split_at_mut(usize::from(meta.l3_len));
    let Some(ip) = ip_part.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else { return ToaOutcome::NotApplicable };
    let Some(th) = tcp_part.first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>() else { return ToaOutcome::NotApplicable };

    let old_total = u16::from_be_bytes([ip[2], ip[3]]);
    let new_total = new_total as u16;
    ip[2..4].copy_from_slice(&new_total.to_be_bytes());
    if offload.ipv4_checksum {
        // DPDK's contract for TX_IP_CKSUM: the field holds zero.
        ip[10..12].copy_from_slice(&[0, 0]);
    } else {
        let mut d = Delta::new();
        d.replace16(old_total, new_total);
        let c = d.apply(u16::from_be_bytes([ip[10], ip[11]]));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }

    let old_word = u16::from_be_bytes([th[12], th[13]]);
    th[12] = (th[12] & 0x0f) | ((((header_len + TOA_LEN) / 4) as u8) << 4);
    let new_word = u16::from_be_bytes([th[12], th[13]]);
    meta.l4_len += TOA_LEN as u16;
    let c = if offload.tcp_checksum {
        pseudo_header_checksum(ip, ip_proto::TCP, meta.l4_len)
    } else {
        let mut d = Delta::new();
        d.replace16(old_word, new_word);
        d.add_bytes(&toa);
        // The pseudo-header's TCP length grew by 8 too.
        d.add16(TOA_LEN as u16);
        d.apply(u16::from_be_bytes([th[16], th[17]]))
    };
    th[16..18].copy_from_slice(&c.to_be_bytes());
    let l4_offload = if offload.tcp_checksum { L4Offload::Tcp } else { L4Offload::None };
    request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
    ToaOutcome::Inserted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufFrame, Frame};
    use crate::wire::checksum;
    use crate::wire::tcp::{TcpOption, TcpPacket};
    use crate::xmit::test_support::*;

    fn edit(options: &[u8], sack_delta: u32, clamp: Option<u16>) -> Vec<u8> {
        // Built into a real packet so the checksum oracle applies.
        let b = tcp_frame((CLIENT, 1000), (VIP, 80), 1, 2, 0x12, options, b"xyz");
        let mut out = b.clone();
        let mut d = Delta::new();
        let opts_len = options.len();
        edit_options(&mut out[54..54 + opts_len], sack_delta, clamp, &mut d);
        let c = d.apply(u16::from_be_bytes([out[50], out[51]]));
        out[50..52].copy_from_slice(&c.to_be_bytes());
        assert_checksums_valid(&out);
        out
    }

    #[test]
    fn mss_is_clamped_at_any_alignment() {
        // NOP, MSS 1460 at odd offset 1, then NOP NOP NOP padding.
        let out = edit(&[1, 2, 4, 0x05, 0xb4, 1, 1, 1], 0, Some(1400));
        assert_eq!(&out[54..62], &[1, 2, 4, 0x05, 0x78, 1, 1, 1]);
        // Aligned, and an MSS below the clamp stays.
        let out = edit(&[2, 4, 0x02, 0x18, 1, 1, 1, 1], 0, Some(1400));
        assert_eq!(&out[54..58], &[2, 4, 0x02, 0x18]);
        let out = edit(&[2, 4, 0xff, 0xff, 1, 1, 1, 1], 0, Some(1400));
        assert_eq!(&out[54..58], &[2, 4, 0x05, 0x78]);
    }

    #[test]
    fn sack_edges_move_with_wraparound() {
        // NOP NOP SACK with 2 blocks (Linux layout), and one at an odd offset.
        let opts = [1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5];
        let out = edit(&opts, 16, None);
        let packet = TcpPacket::new_checked(&out[34..]).unwrap();
        let parsed: Vec<_> = packet.option_iter().collect();
        let Ok((2, TcpOption::Sack(blocks))) = parsed[2] else { panic!("{parsed:?}") };
        assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![(0xffff_fffa, 4), (0xffff_ffe0, 0xffff_fff5)]);
        let odd = [1, 5, 10, 0, 0, 1, 0, 0, 0, 2, 0, 1, 1, 1, 1, 1];
        let out = edit(&odd, 0x0101, None);
        assert_eq!(&out[57..65], &[0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff]);
    }

    #[test]
    fn malformed_options_end_the_walk_without_harm() {
        // MSS with a length running past the option space.
        let out = edit(&[2, 12, 0xff, 0xff], 0, Some(1000));
        assert_eq!(&out[54..58], &[2, 12, 0xff, 0xff]);
        // End of list: the "MSS" after it is padding, not an option.
        let out = edit(&[0, 2, 4, 0xff], 0, Some(1000));
        assert_eq!(&out[54..58], &[0, 2, 4, 0xff]);
    }

    fn syn_with(options: &[u8]) -> Vec<u8> {
        tcp_frame((CLIENT, 40000), (RIP, 8080), 7, 0, 0x02, options, b"")
    }

    #[test]
    fn toa_is_inserted_after_the_fixed_header() {
        let before = tcp_frame((CLIENT, 40000), (RIP, 8080), 7, 9, 0x18, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], b"GET /");
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        let out = insert_toa(&mut f, &mut meta, 40000, CLIENT.octets(), 1500, Offload::NONE);
        assert_eq!(out, ToaOutcome::Inserted);
        let after = bytes(&f);
        assert_eq!(after.len(), before.len() + 8);
        assert_eq!(f.headroom(), crate::frame::DEFAULT_HEADROOM - 8);
        assert_checksums_valid(&after);
        assert_eq!(meta, meta_of(&after));
        // Everything up to the options is the same but for the lengths.
        assert_eq!(&after[..16], &before[..16]);
        assert_eq!(&after[18..24], &before[18..24]);
        assert_eq!(u16::from_be_bytes([after[16], after[17]]), 20 + 20 + 12 + 5 + 8);
        assert_eq!(&after[34..46], &before[34..46]);
        assert_eq!(after[46] >> 4, 10);
        assert_eq!(&after[54..62], &[254, 8, 0x9c, 0x40, 192, 168, 1, 10]);
        assert_eq!(&after[62..], &before[54..]);
        let t = TcpPacket::new_checked(&after[34..]).unwrap();
        let opts: Vec<_> = t.option_iter().map(|o| o.unwrap().1).collect();
        assert_eq!(opts[0], TcpOption::ClientAddress { port: 40000, addr: CLIENT });
        assert_eq!(opts[3], TcpOption::Timestamps { tsval: 1, tsecr: 2 });
        assert_eq!(t.payload(), b"GET /");
    }

    #[test]
    fn toa_refused_when_options_are_full() {
        // 40 bytes of options: MSS, SACK-perm, TS, NOP, WS, then 20 NOPs.
        let mut opts = vec![2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
        opts.resize(40, 1);
        let before = syn_with(&opts);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1500, Offload::NONE), ToaOutcome::NoOptionSpace);
        assert_eq!(bytes(&f), before);
        assert_checksums_valid(&bytes(&f));
        // 36 bytes of options is also too many (36 + 8 > 40), 32 fits exactly.
        let before = syn_with(&opts[..36]);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1500, Offload::NONE), ToaOutcome::NoOptionSpace);
        let before = syn_with(&opts[..32]);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1500, Offload::NONE), ToaOutcome::Inserted);
        let after = bytes(&f);
        assert_eq!(after[46] >> 4, 15);
        assert_checksums_valid(&after);
    }

    #[test]
    fn toa_never_exceeds_the_mtu_or_the_headroom() {
        let payload = vec![0x5a; 1500 - 20 - 20];
        let before = tcp_frame((CLIENT, 1), (RIP, 2), 3, 4, 0x10, &[], &payload);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1500, Offload::NONE), ToaOutcome::ExceedsMtu);
        assert_eq!(bytes(&f), before);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1508, Offload::NONE), ToaOutcome::Inserted);
        assert_checksums_valid(&bytes(&f));

        let before = syn_with(&[]);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::with_geometry(&before, 7, 128);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1500, Offload::NONE), ToaOutcome::NoHeadroom);
        assert_eq!(bytes(&f), before);
    }

    #[test]
    fn toa_with_checksum_offload() {
        let before = syn_with(&[2, 4, 5, 0xb4]);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 9, [9, 9, 9, 9], 1500, Offload::ALL), ToaOutcome::Inserted);
        let after = bytes(&f);
        let off = f.tx_offload();
        assert!(off.ipv4_checksum);
        assert_eq!(off.l4, L4Offload::Tcp);
        assert_eq!((off.l2_len, off.l3_len), (14, 20));
        assert_eq!(&after[24..26], &[0, 0], "DPDK's contract: the IPv4 checksum field holds zero");
        // What the NIC would do: fill both checksums from scratch.
        let mut nic = after.clone();
        nic[24..26].copy_from_slice(&[0, 0]);
        let ipc = checksum::checksum(&nic[14..34]);
        nic[24..26].copy_from_slice(&ipc.to_be_bytes());
        let phdr = u16::from_be_bytes([nic[50], nic[51]]);
        assert_eq!(phdr, checksum::fold(checksum::pseudo_header_v4(CLIENT.octets(), RIP.octets(), 6, 32)));
        nic[50..52].copy_from_slice(&[0, 0]);
        let tc = checksum::finish(checksum::sum(&nic[34..]) + checksum::pseudo_header_v4(CLIENT.octets(), RIP.octets(), 6, 32));
        nic[50..52].copy_from_slice(&tc.to_be_bytes());
        assert_checksums_valid(&nic);
    }

    #[test]
    fn toa_skips_what_is_not_tcp() {
        let before = udp_frame((CLIENT, 1), (RIP, 2), b"hi", true);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 1, [1, 2, 3, 4], 1500, Offload::NONE), ToaOutcome::NotApplicable);
        assert_eq!(bytes(&f), before);
    }
}
