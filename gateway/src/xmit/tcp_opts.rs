//! TCP option edits: SACK edges moved with an acknowledgment delta, the MSS
//! clamp, timestamps moved with a TSval/TSecr delta, and insertion of the
//! TOA client-address option.
//!
//! Edits happen in place during one walk over the option space
//! ([`edit_options`], with the edits in one [`OptionEdits`]), made with the
//! crate's one option walker, [`TcpOptions`], after a byte comparison that
//! recognises the NOP NOP timestamps opening of almost every segment.
//! Options can sit at any alignment (a sender may put a lone NOP before
//! MSS, or a single NOP before the timestamps), so each changed value
//! enters the checksum with its parity (see [`Delta::replace_bytes`]). A
//! malformed option ends the walk, and so does an option of a known kind
//! with an impossible length (a timestamps option that is not 10 bytes
//! long): what was already edited stays consistent, the rest is forwarded
//! untouched, since no field of it is where an edit would write.
//!
//! TOA is inserted right after the fixed 20-byte header, before the existing
//! options. Appending it after them instead would put it behind an
//! End-of-List a sender may have used as padding, where the real server's
//! `toa` module would never look. To make room the frame grows at the front
//! (`prepend(8)`) and the Ethernet, IPv4 and fixed TCP headers (54 to 98
//! bytes) move forward by 8: cheaper than moving the payload back, and
//! what DPVS does too. The IPv6 TOA ([`insert_toa_v6`]) is 20 bytes, and
//! moves the IPv6 header with any extension headers the same way. An IPv4
//! FNAT packet's TOA goes in during its translation
//! ([`translate_inserting`]), so that each checksum is updated once.

use crate::frame::{Frame, L4Offload};
use crate::wire::checksum::Delta;
use crate::wire::tcp::{self, kind, toa_v6_bytes, TcpOption, TcpOptions};
use crate::wire::{ip_proto, ipv4, ipv6, Ipv4Meta, Ipv6Meta};

use super::{
    check_translation, check_translation_v6, pseudo_header_checksum, request_offload, request_offload_v6,
    translate_bytes, translate_bytes_v6, Offload, Translation, Unapplied, XmitError,
};

/// The edits of one walk over a TCP option block. The default (all zero,
/// no clamp) changes nothing; callers skip the walk then.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptionEdits {
    /// Subtracted (mod 2^32) from every SACK edge.
    pub sack_delta: u32,
    /// Every MSS above it is lowered to it.
    pub mss_clamp: Option<u16>,
    /// Added (mod 2^32) to the TSval of the timestamps option.
    pub tsval_delta: u32,
    /// Subtracted (mod 2^32) from the TSecr of the timestamps option.
    pub tsecr_delta: u32,
}

/// Walks `options` (the bytes after the fixed TCP header, which starts at an
/// even offset) and applies `edits`: SACK edges and the timestamps moved by
/// their deltas, every MSS above the clamp lowered to it. Each change is
/// recorded in `delta`, with the parity of its offset.
pub fn edit_options(options: &mut [u8], edits: OptionEdits, delta: &mut Delta) {
    let ts_edit = (edits.tsval_delta | edits.tsecr_delta) != 0;
    let mut next = 0;
    // Linux, the BSDs and Windows open the options of every segment after
    // the handshake with NOP NOP TS (RFC 7323 Appendix A): that layout is
    // recognised in one comparison, its timestamps sit at even offsets, and
    // the walk goes on after it (for SACK).
    if let Some(head) = options.first_chunk_mut::<12>() {
        if head[..4] == [kind::NOP, kind::NOP, kind::TIMESTAMPS, 10] {
            if ts_edit {
                edit_timestamps(&mut head[4..12], false, edits, delta);
            }
            next = 12;
        }
    }
    edit_walked(options, next, edits, delta);
}

/// The walk of [`edit_options`] from `next` on, one option a step, so the
/// walk's borrow of `options` ends before the option is edited; a malformed
/// option or End-of-List ends it.
#[inline(always)]
fn edit_walked(options: &mut [u8], mut next: usize, edits: OptionEdits, delta: &mut Delta) {
    let ts_edit = (edits.tsval_delta | edits.tsecr_delta) != 0;
    // The bound checked here as well as in the walker: after NOP NOP TS it
    // is all an established segment's walk costs.
    while next < options.len() {
        let mut walk = TcpOptions::from_offset(options, next);
        let Some(Ok((at, option))) = walk.next() else { return };
        next = walk.offset();
        // The option is `options[at..next]`; its value starts at `at + 2`.
        // Every value edited here starts at `at + 2` plus a multiple of 4,
        // so it has the parity of `at`.
        let odd = at % 2 == 1;
        match option {
            TcpOption::MaxSegmentSize(mss) => {
                if let Some(clamp) = edits.mss_clamp.filter(|&clamp| mss > clamp) {
                    let (old, new) = (mss.to_be_bytes(), clamp.to_be_bytes());
                    options[at + 2..next].copy_from_slice(&new);
                    delta.replace_bytes(odd, &old, &new);
                }
            }
            TcpOption::Sack(_) if edits.sack_delta != 0 => {
                for edge in options[at + 2..next].chunks_exact_mut(4) {
                    let old = [edge[0], edge[1], edge[2], edge[3]];
                    let new = u32::from_be_bytes(old).wrapping_sub(edits.sack_delta).to_be_bytes();
                    edge.copy_from_slice(&new);
                    replace4_at(delta, odd, old, new);
                }
            }
            TcpOption::Timestamps { .. } if ts_edit => edit_timestamps(&mut options[at + 2..next], odd, edits, delta),
            _ => {}
        }
    }
}

/// Moves TSval and TSecr, the 8 bytes `ts` after a timestamps option's kind
/// and length, which start at an offset of parity `odd`.
#[inline(always)]
fn edit_timestamps(ts: &mut [u8], odd: bool, edits: OptionEdits, delta: &mut Delta) {
    let old_val = [ts[0], ts[1], ts[2], ts[3]];
    let old_ecr = [ts[4], ts[5], ts[6], ts[7]];
    let val = u32::from_be_bytes(old_val).wrapping_add(edits.tsval_delta).to_be_bytes();
    let ecr = u32::from_be_bytes(old_ecr).wrapping_sub(edits.tsecr_delta).to_be_bytes();
    ts[..4].copy_from_slice(&val);
    ts[4..8].copy_from_slice(&ecr);
    replace4_at(delta, odd, old_val, val);
    replace4_at(delta, odd, old_ecr, ecr);
}

/// Records that 4 bytes at an offset of parity `odd` changed: at an even
/// offset (the usual place, after NOP NOP) as a plain 32-bit field,
/// otherwise through [`Delta::replace_bytes`], which swaps the bytes of the
/// change.
#[inline(always)]
fn replace4_at(delta: &mut Delta, odd: bool, old: [u8; 4], new: [u8; 4]) {
    if odd {
        delta.replace_bytes(true, &old, &new);
    } else {
        delta.replace4(old, new);
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
///
/// The insertion alone, into a packet translated already: what the
/// one-pass [`translate_inserting`], which the datapath runs, is tested
/// against.
#[cfg(any(test, feature = "testing"))]
pub fn insert_toa<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    port: u16,
    addr: [u8; 4],
    mtu: u16,
    offload: Offload,
) -> ToaOutcome {
    insert_option_v4(frame, meta, mtu, offload, || tcp::toa_bytes(port, addr.into()))
}

/// [`insert_toa`] carrying an IPv6 client in an IPv4 packet (NAT64): DPVS's
/// 20-byte IPv6 TOA, which its `toa` module reads from IPv4 segments too
/// (its NAT64 support). `meta.l4_len` grows by 20 on success.
pub fn insert_toa_v6_in_v4<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    port: u16,
    addr: [u8; 16],
    mtu: u16,
    offload: Offload,
) -> ToaOutcome {
    insert_option_v4(frame, meta, mtu, offload, || toa_v6_bytes(port, addr.into()))
}

/// The IPv4 half of both: `option` (made only once the room is) goes in
/// after the fixed TCP header.
#[inline(always)]
fn insert_option_v4<F: Frame, const N: usize>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    mtu: u16,
    offload: Offload,
    option: impl FnOnce() -> [u8; N],
) -> ToaOutcome {
    if meta.protocol != ip_proto::TCP || usize::from(meta.l3_len) < ipv4::MIN_HEADER_LEN {
        return ToaOutcome::NotApplicable;
    }
    let l3 = meta.l3_offset();
    let (header_len, toa) = match make_room(frame, meta, mtu, option) {
        Ok(made) => made,
        Err(outcome) => return outcome,
    };
    let Some(grown) = grow_lengths_v4(frame.data_mut(), meta, header_len, &toa) else {
        return ToaOutcome::NotApplicable;
    };
    let data = frame.data_mut();
    // In range: grow_lengths_v4 found both headers.
    let Some((ip_part, tcp_part)) = data.get_mut(l3..).and_then(|b| b.split_at_mut_checked(usize::from(meta.l3_len)))
    else {
        return ToaOutcome::NotApplicable;
    };
    let Some(ip) = ip_part.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else { return ToaOutcome::NotApplicable };
    let Some(th) = tcp_part.first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>() else { return ToaOutcome::NotApplicable };
    let ip_checksum = if offload.ipv4_checksum {
        // DPDK's contract for TX_IP_CKSUM: the field holds zero.
        [0, 0]
    } else {
        grown.header.apply_bytes([ip[10], ip[11]])
    };
    ip[10..12].copy_from_slice(&ip_checksum);
    let c = if offload.tcp_checksum {
        pseudo_header_checksum(ip, ip_proto::TCP, meta.l4_len).to_be_bytes()
    } else {
        grown.segment.apply_bytes([th[16], th[17]])
    };
    th[16..18].copy_from_slice(&c);
    let l4_offload = if offload.tcp_checksum { L4Offload::Tcp } else { L4Offload::None };
    request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
    ToaOutcome::Inserted
}

/// [`super::translate`] of a TCP packet with `option` (a TOA) inserted
/// after its fixed header, in one pass: the insertion's changes to the
/// total length, the data offset and the segment go into the translation's
/// checksum updates, each checksum updated once. Translating, then
/// inserting ([`insert_toa`]), updated each twice, checked the packet
/// twice, and called out of line for the second (with `Frame::len`
/// inlined, 40 instructions a SYN: `measure_pipeline.sh`'s `new`).
///
/// The translation's refusals come first, the frame untouched. An option
/// that cannot go in (the outcome says why) leaves the packet translated
/// without it. `meta.l4_len` grows by `N` when it goes in.
#[inline(always)]
pub(crate) fn translate_inserting<F: Frame, const N: usize>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    mtu: u16,
    offload: Offload,
    build: impl FnOnce() -> Result<Translation, XmitError>,
    option: impl FnOnce() -> [u8; N],
) -> Result<ToaOutcome, XmitError> {
    let t = &build()?;
    check_translation(frame.data(), meta, t)?;
    let made = make_room(frame, meta, mtu, option);
    let data = frame.data_mut();
    let (unapplied, outcome) = match made {
        Ok((header_len, toa)) => match grow_lengths_v4(data, meta, header_len, &toa) {
            Some(grown) => (grown, ToaOutcome::Inserted),
            None => return Err(half_built(data, meta.l4_offset())),
        },
        Err(outcome) => (Unapplied::NONE, outcome),
    };
    let l4_offload = translate_bytes(data, meta, t, offload, unapplied)?;
    // As in `translate`: a frame fresh from the NIC carries no transmit
    // request, so there is nothing to clear when no offload is used.
    if offload.ipv4_checksum || l4_offload != L4Offload::None {
        request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
    }
    Ok(outcome)
}

/// The refusal of a frame whose headers [`make_room`] found but the
/// lengths' update did not: never seen, as both read the same offsets. The
/// frame has moved by then, so it must not go out: the refusal has it
/// dropped, counted as truncated, never quoted in an ICMP error.
#[cold]
fn half_built(data: &[u8], l4_offset: usize) -> XmitError {
    XmitError::Truncated { needed: l4_offset + tcp::MIN_HEADER_LEN, len: data.len() }
}

/// Once [`make_room`] put `toa` in: the IPv4 total length and the TCP data
/// offset of the packet `meta` describes grown by `N` (`meta.l4_len` too),
/// and the changes this made to both checksums, unapplied. `None` (the
/// frame changed) only if the headers are not where `meta` says, which
/// `make_room` checked.
#[inline(always)]
fn grow_lengths_v4<const N: usize>(
    data: &mut [u8],
    meta: &mut Ipv4Meta,
    header_len: usize,
    toa: &[u8; N],
) -> Option<Unapplied> {
    let (ip_part, tcp_part) = data.get_mut(meta.l3_offset()..)?.split_at_mut_checked(usize::from(meta.l3_len))?;
    let ip = ip_part.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>()?;
    let th = tcp_part.first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>()?;
    let at = ipv4::offset::LENGTH;
    let old_total = [ip[at], ip[at + 1]];
    // The packet fits a u16 MTU (make_room checked), so its length does.
    let new_total = (u16::from_be_bytes(old_total) + N as u16).to_be_bytes();
    ip[at..at + 2].copy_from_slice(&new_total);
    let mut header = Delta::new();
    header.replace2(old_total, new_total);
    let segment = grow_header(th, header_len, toa);
    meta.l4_len += N as u16;
    Some(Unapplied { header, segment })
}

/// [`insert_toa`] for an IPv6 packet: the 20-byte option DPVS sends and
/// its `toa` module reads (kind 254, length 20, port, IPv6 address), right
/// after the fixed TCP header; the IPv6 payload length grows by 20 (there
/// is no header checksum), the extension headers, if any, move with the
/// fixed headers. `meta.l4_len` grows by 20 on success; the same refusals.
///
/// The insertion alone, as [`insert_toa`] is: the reference of
/// [`translate_inserting_v6`].
#[cfg(any(test, feature = "testing"))]
pub fn insert_toa_v6<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv6Meta,
    port: u16,
    addr: [u8; 16],
    mtu: u16,
    offload: Offload,
) -> ToaOutcome {
    if meta.protocol != ip_proto::TCP || usize::from(meta.l3_len) < ipv6::HEADER_LEN {
        return ToaOutcome::NotApplicable;
    }
    let l3 = meta.l3_offset();
    let (header_len, toa) = match make_room(frame, meta, mtu, || toa_v6_bytes(port, addr.into())) {
        Ok(made) => made,
        Err(outcome) => return outcome,
    };
    let Some(grown) = grow_lengths_v6(frame.data_mut(), meta, header_len, &toa) else {
        return ToaOutcome::NotApplicable;
    };
    let data = frame.data_mut();
    // In range: grow_lengths_v6 found both headers.
    let Some((ip_part, tcp_part)) = data.get_mut(l3..).and_then(|b| b.split_at_mut_checked(usize::from(meta.l3_len)))
    else {
        return ToaOutcome::NotApplicable;
    };
    let Some(ip) = ip_part.first_chunk_mut::<{ ipv6::HEADER_LEN }>() else { return ToaOutcome::NotApplicable };
    let Some(th) = tcp_part.first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>() else { return ToaOutcome::NotApplicable };
    let c = if offload.tcp_checksum {
        super::pseudo_header_checksum_v6(ip, ip_proto::TCP, u32::from(meta.l4_len)).to_be_bytes()
    } else {
        grown.apply_bytes([th[16], th[17]])
    };
    th[16..18].copy_from_slice(&c);
    let l4_offload = if offload.tcp_checksum { L4Offload::Tcp } else { L4Offload::None };
    request_offload_v6(frame, meta, l4_offload);
    ToaOutcome::Inserted
}

/// [`translate_inserting`] for IPv6: DPVS's 20-byte TOA carrying `port`
/// and `addr` goes in during the translation, the TCP checksum updated
/// once; the translation's refusals (its MTU's among them) first.
#[inline(always)]
pub(crate) fn translate_inserting_v6<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv6Meta,
    mtu: u16,
    offload: Offload,
    build: impl FnOnce() -> Translation<[u8; 16]>,
    (port, addr): (u16, [u8; 16]),
) -> Result<ToaOutcome, XmitError> {
    let t = &build();
    check_translation_v6(frame.data(), meta, t, mtu)?;
    let made = make_room(frame, meta, mtu, || toa_v6_bytes(port, addr.into()));
    let data = frame.data_mut();
    let (unapplied, outcome) = match made {
        Ok((header_len, toa)) => match grow_lengths_v6(data, meta, header_len, &toa) {
            Some(grown) => (grown, ToaOutcome::Inserted),
            None => return Err(half_built(data, meta.l4_offset())),
        },
        Err(outcome) => (Delta::new(), outcome),
    };
    let l4_offload = translate_bytes_v6(data, meta, t, mtu, offload, unapplied)?;
    if l4_offload != L4Offload::None {
        request_offload_v6(frame, meta, l4_offload);
    }
    Ok(outcome)
}

/// [`grow_lengths_v4`] for IPv6: the payload length and the TCP data offset
/// grown by `N` (`meta.l4_len` too), and the change to the TCP checksum
/// (IPv6 has no header checksum), unapplied.
#[inline(always)]
fn grow_lengths_v6<const N: usize>(
    data: &mut [u8],
    meta: &mut Ipv6Meta,
    header_len: usize,
    toa: &[u8; N],
) -> Option<Delta> {
    let (ip_part, tcp_part) = data.get_mut(meta.l3_offset()..)?.split_at_mut_checked(usize::from(meta.l3_len))?;
    let ip = ip_part.first_chunk_mut::<{ ipv6::HEADER_LEN }>()?;
    let th = tcp_part.first_chunk_mut::<{ tcp::MIN_HEADER_LEN }>()?;
    let at = ipv6::offset::PAYLOAD_LEN;
    // The packet fits a u16 MTU (make_room checked), so its payload does.
    let payload_len = u16::from_be_bytes([ip[at], ip[at + 1]]) + N as u16;
    ip[at..at + 2].copy_from_slice(&payload_len.to_be_bytes());
    let segment = grow_header(th, header_len, toa);
    meta.l4_len += N as u16;
    Some(segment)
}

/// Where a classified packet's layers are, as a TOA's insertion needs them,
/// per family.
trait Layers {
    /// The offsets of the IP and TCP headers, the TCP segment's length and
    /// the IP packet's.
    fn layers(&self) -> (usize, usize, usize, usize);
    /// Moves `data[N..N + moved]` to the front (see [`move_headers`]).
    fn move_headers<const N: usize>(data: &mut [u8], moved: usize);
}

impl Layers for Ipv4Meta {
    #[inline(always)]
    fn layers(&self) -> (usize, usize, usize, usize) {
        (self.l3_offset(), self.l4_offset(), usize::from(self.l4_len), self.ip_total_len())
    }
    #[inline(always)]
    fn move_headers<const N: usize>(data: &mut [u8], moved: usize) {
        move_headers::<N, { 14 + ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN }>(data, moved);
    }
}

impl Layers for Ipv6Meta {
    #[inline(always)]
    fn layers(&self) -> (usize, usize, usize, usize) {
        (self.l3_offset(), self.l4_offset(), usize::from(self.l4_len), self.ip_total_len())
    }
    #[inline(always)]
    fn move_headers<const N: usize>(data: &mut [u8], moved: usize) {
        move_headers::<N, { 14 + ipv6::HEADER_LEN + tcp::MIN_HEADER_LEN }>(data, moved);
    }
}

/// Moves `data[N..N + moved]` to the front. Nearly every packet's headers
/// are untagged Ethernet, the family's fixed IP header and the fixed TCP
/// header (`USUAL` bytes): moved at a known length, through registers, the
/// copy is a few wide moves instead of a call to `memmove`
/// (`measure_pipeline.sh`: 12 instructions fewer an IPv4 SYN, 23 an IPv6
/// one).
#[inline(always)]
fn move_headers<const N: usize, const USUAL: usize>(data: &mut [u8], moved: usize) {
    let usual = (moved == USUAL).then(|| data.get(N..)?.first_chunk::<USUAL>().copied()).flatten();
    match usual {
        Some(headers) => data[..USUAL].copy_from_slice(&headers),
        None => data.copy_within(N..N + moved, 0),
    }
}

/// What both families check before a TOA goes into the TCP packet `meta`
/// describes, and the move that makes room for it: the frame grows at the
/// front by the option's length and everything up to the end of the fixed
/// TCP header moves there, the option (made by `toa` only then: held across
/// the frame's calls it would cost register spills) written after it.
/// Returns the TCP header length before the insertion and the option, or
/// the outcome of a refusal, the frame untouched.
#[inline(always)]
fn make_room<F: Frame, M: Layers, const N: usize>(
    frame: &mut F,
    meta: &M,
    mtu: u16,
    toa: impl FnOnce() -> [u8; N],
) -> Result<(usize, [u8; N]), ToaOutcome> {
    let (l3, l4, l4_len, total) = meta.layers();
    let moved = l4 + tcp::MIN_HEADER_LEN;
    if frame.len() < l3 + total || l4_len < tcp::MIN_HEADER_LEN {
        return Err(ToaOutcome::NotApplicable);
    }
    let header_len = usize::from(frame.data()[l4 + tcp::offset::DATA_OFFSET] >> 4) * 4;
    if header_len < tcp::MIN_HEADER_LEN || header_len > l4_len {
        return Err(ToaOutcome::NotApplicable);
    }
    if header_len + N > tcp::MAX_HEADER_LEN {
        return Err(ToaOutcome::NoOptionSpace);
    }
    if total + N > usize::from(mtu) {
        return Err(ToaOutcome::ExceedsMtu);
    }
    if frame.prepend(N).is_err() {
        return Err(ToaOutcome::NoHeadroom);
    }
    let data = frame.data_mut();
    M::move_headers::<N>(data, moved);
    let toa = toa();
    data[moved..moved + N].copy_from_slice(&toa);
    Ok((header_len, toa))
}

/// Sets the data offset of the TCP header `th`, `header_len` bytes long
/// before `toa` went in after it, and returns the change to its checksum:
/// the data offset, the option's bytes (at an even offset), and the
/// pseudo-header's length, grown by the option's.
#[inline(always)]
fn grow_header<const N: usize>(th: &mut [u8; tcp::MIN_HEADER_LEN], header_len: usize, toa: &[u8; N]) -> Delta {
    let old_word = u16::from_be_bytes([th[12], th[13]]);
    th[12] = (th[12] & 0x0f) | ((((header_len + N) / 4) as u8) << 4);
    let new_word = u16::from_be_bytes([th[12], th[13]]);
    let mut d = Delta::new();
    d.replace16(old_word, new_word);
    d.add_bytes(toa);
    d.add16(N as u16);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufFrame, Frame};
    use crate::wire::checksum;
    use crate::wire::tcp::TcpPacket;
    use crate::xmit::test_support::*;

    fn edit(options: &[u8], edits: OptionEdits) -> Vec<u8> {
        // Built into a real packet so the checksum oracle applies.
        let b = tcp_frame((CLIENT, 1000), (VIP, 80), 1, 2, 0x12, options, b"xyz");
        let mut out = b.clone();
        let mut d = Delta::new();
        let opts_len = options.len();
        edit_options(&mut out[54..54 + opts_len], edits, &mut d);
        let c = d.apply(u16::from_be_bytes([out[50], out[51]]));
        out[50..52].copy_from_slice(&c.to_be_bytes());
        assert_checksums_valid(&out);
        out
    }

    fn clamp(mss: u16) -> OptionEdits {
        OptionEdits { mss_clamp: Some(mss), ..OptionEdits::default() }
    }

    fn sack(delta: u32) -> OptionEdits {
        OptionEdits { sack_delta: delta, ..OptionEdits::default() }
    }

    fn ts(tsval_delta: u32, tsecr_delta: u32) -> OptionEdits {
        OptionEdits { tsval_delta, tsecr_delta, ..OptionEdits::default() }
    }

    /// Edits `options` in a packet and checks the result against the same
    /// packet built with `want` and its checksum computed in full: the
    /// incremental update must give the very same bytes.
    fn edit_matches(options: &[u8], edits: OptionEdits, want: &[u8]) {
        let out = edit(options, edits);
        let full = tcp_frame((CLIENT, 1000), (VIP, 80), 1, 2, 0x12, want, b"xyz");
        assert_eq!(&out[54..54 + want.len()], want, "options");
        assert_eq!(out, full, "incremental checksum {:02x?} vs full {:02x?}", &out[50..52], &full[50..52]);
    }

    #[test]
    fn mss_is_clamped_at_any_alignment() {
        // NOP, MSS 1460 at odd offset 1, then NOP NOP NOP padding.
        let out = edit(&[1, 2, 4, 0x05, 0xb4, 1, 1, 1], clamp(1400));
        assert_eq!(&out[54..62], &[1, 2, 4, 0x05, 0x78, 1, 1, 1]);
        // Aligned, and an MSS below the clamp stays.
        let out = edit(&[2, 4, 0x02, 0x18, 1, 1, 1, 1], clamp(1400));
        assert_eq!(&out[54..58], &[2, 4, 0x02, 0x18]);
        let out = edit(&[2, 4, 0xff, 0xff, 1, 1, 1, 1], clamp(1400));
        assert_eq!(&out[54..58], &[2, 4, 0x05, 0x78]);
    }

    #[test]
    fn sack_edges_move_with_wraparound() {
        // NOP NOP SACK with 2 blocks (Linux layout), and one at an odd offset.
        let opts = [1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 5];
        let out = edit(&opts, sack(16));
        let packet = TcpPacket::new_checked(&out[34..]).unwrap();
        let parsed: Vec<_> = packet.option_iter().collect();
        let Ok((2, TcpOption::Sack(blocks))) = parsed[2] else { panic!("{parsed:?}") };
        assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![(0xffff_fffa, 4), (0xffff_ffe0, 0xffff_fff5)]);
        let odd = [1, 5, 10, 0, 0, 1, 0, 0, 0, 2, 0, 1, 1, 1, 1, 1];
        let out = edit(&odd, sack(0x0101));
        assert_eq!(&out[57..65], &[0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0xff]);
    }

    #[test]
    fn malformed_options_end_the_walk_without_harm() {
        // MSS with a length running past the option space.
        let out = edit(&[2, 12, 0xff, 0xff], clamp(1000));
        assert_eq!(&out[54..58], &[2, 12, 0xff, 0xff]);
        // End of list: the "MSS" after it is padding, not an option.
        let out = edit(&[0, 2, 4, 0xff], clamp(1000));
        assert_eq!(&out[54..58], &[0, 2, 4, 0xff]);
    }

    #[test]
    fn timestamps_of_a_linux_data_segment() {
        // Linux's data-segment layout: NOP NOP TS, TSval at option offset 4
        // (even). TSval 0x0001e243 + 0x1000_0002, TSecr 0x77000001 - 0x0100_0002.
        let opts = [1, 1, 8, 10, 0x00, 0x01, 0xe2, 0x43, 0x77, 0x00, 0x00, 0x01];
        let want = [1, 1, 8, 10, 0x10, 0x01, 0xe2, 0x45, 0x75, 0xff, 0xff, 0xff];
        edit_matches(&opts, ts(0x1000_0002, 0x0100_0002), &want);
        // Across 2^32 both ways.
        let opts = [1, 1, 8, 10, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x05];
        let want = [1, 1, 8, 10, 0x00, 0x00, 0x00, 0x10, 0xff, 0xff, 0xff, 0xfb];
        edit_matches(&opts, ts(0x20, 10), &want);
        // Only one of the two deltas: the other field stays.
        let want = [1, 1, 8, 10, 0xff, 0xff, 0xff, 0xf0, 0x00, 0x00, 0x00, 0x04];
        edit_matches(&opts, ts(0, 1), &want);
        let want = [1, 1, 8, 10, 0xff, 0xff, 0xff, 0xf1, 0x00, 0x00, 0x00, 0x05];
        edit_matches(&opts, ts(1, 0), &want);
        // No timestamp delta: the option is left alone even when the walk
        // runs for another edit.
        edit_matches(&opts, sack(5), &opts);
    }

    #[test]
    fn timestamps_at_any_alignment() {
        // 0 to 3 NOPs before the option put TSval at option offsets 2 to 5,
        // so at both parities of the packet; the rest is NOP padding.
        for pad in 0..4 {
            let mut opts = vec![1; pad];
            opts.extend_from_slice(&[8, 10, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]);
            let mut want = vec![1; pad];
            want.extend_from_slice(&[8, 10, 0x12, 0x34, 0x57, 0x78, 0x9a, 0xbb, 0xde, 0xf0]);
            opts.resize(12 + 4 * (pad / 3), 1);
            want.resize(opts.len(), 1);
            edit_matches(&opts, ts(0x100, 0x0001_0000), &want);
        }
        // A lone NOP: TSval at offset 3, the parity the checksum must swap.
        let out = edit(&[1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0], ts(0xff, 1));
        assert_eq!(&out[54..66], &[1, 8, 10, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn sack_and_timestamps_edited_together() {
        // Linux's layout of a SACKing ACK: NOP NOP TS, NOP NOP SACK (2
        // blocks), one clamp that must not touch anything (no MSS here).
        let opts = [
            1, 1, 8, 10, 0, 0, 0x10, 0x00, 0, 0, 0x20, 0x00, // TS
            1, 1, 5, 18, 0, 0, 0, 100, 0, 0, 0, 200, 0, 0, 1, 0, 0, 0, 2, 0, // SACK
        ];
        let want = [
            1, 1, 8, 10, 0, 0, 0x10, 0x07, 0, 0, 0x1f, 0xfd, //
            1, 1, 5, 18, 0, 0, 0, 90, 0, 0, 0, 190, 0, 0, 0, 246, 0, 0, 1, 246, //
        ];
        let edits = OptionEdits { sack_delta: 10, mss_clamp: Some(536), tsval_delta: 7, tsecr_delta: 3 };
        edit_matches(&opts, edits, &want);
        // The same in the other order, SACK first at an odd offset.
        let opts = [1, 5, 10, 0, 0, 0, 100, 0, 0, 0, 200, 8, 10, 0, 0, 0x10, 0x00, 0, 0, 0x20, 0x00, 1, 1, 1];
        let want = [1, 5, 10, 0, 0, 0, 90, 0, 0, 0, 190, 8, 10, 0, 0, 0x10, 0x07, 0, 0, 0x1f, 0xfd, 1, 1, 1];
        edit_matches(&opts, edits, &want);
    }

    #[test]
    fn malformed_timestamps_are_left_alone() {
        let edits = OptionEdits { sack_delta: 1, mss_clamp: Some(536), tsval_delta: 0x0101_0101, tsecr_delta: 1 };
        // A length running past the option space, a timestamps option of
        // the wrong length, a zero length before it, an End of List before it.
        for opts in [
            &[1, 1, 8, 10, 0, 0, 0, 1][..],
            &[8, 8, 0, 0, 0, 1, 0, 0],
            &[1, 1, 8, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0],
            &[3, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            &[3, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
            &[0, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        ] {
            edit_matches(opts, edits, opts);
        }
        // Every prefix of a SACK + TS block, as a truncated header would
        // give it: no panic, options cut short stay as they were, and the
        // recorded change is exactly the change in the bytes.
        let block = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 5, 10, 0, 0, 0, 9, 0, 0, 0, 12];
        for n in 0..=block.len() {
            let mut b = block[..n].to_vec();
            let mut d = Delta::new();
            edit_options(&mut b, edits, &mut d);
            if n < 12 {
                assert_eq!(b, &block[..n], "a cut timestamps option is untouched");
            } else {
                assert_eq!(&b[4..12], &[1, 1, 1, 2, 0, 0, 0, 1]);
            }
            if (12..block.len()).contains(&n) {
                assert_eq!(&b[12..], &block[12..n], "a cut SACK option is untouched");
            }
            assert_eq!(d.apply(checksum::checksum(&block[..n])), checksum::checksum(&b), "prefix {n}");
        }
        let mut nothing = [];
        edit_options(&mut nothing, edits, &mut Delta::new());
        edit_options(&mut [8], edits, &mut Delta::new());
    }

    fn syn_with(options: &[u8]) -> Vec<u8> {
        tcp_frame((CLIENT, 40000), (RIP, 8080), 7, 0, 0x02, options, b"")
    }

    #[test]
    fn toa_is_inserted_after_the_fixed_header() {
        let before =
            tcp_frame((CLIENT, 40000), (RIP, 8080), 7, 9, 0x18, &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], b"GET /");
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
    fn toa_moves_headers_of_any_length() {
        // An IPv4 header with 4 bytes of options (NOP NOP NOP EOL): 58 bytes
        // of headers move, not the usual 54.
        let plain = tcp_frame((CLIENT, 40000), (RIP, 8080), 7, 9, 0x10, &[], b"data");
        let mut before = plain[..34].to_vec();
        before.extend_from_slice(&[1, 1, 1, 0]);
        before.extend_from_slice(&plain[34..]);
        before[14] = 0x46;
        let total = u16::from_be_bytes([before[16], before[17]]) + 4;
        before[16..18].copy_from_slice(&total.to_be_bytes());
        before[24..26].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&before[14..38]);
        before[24..26].copy_from_slice(&c.to_be_bytes());
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        assert_eq!(insert_toa(&mut f, &mut meta, 40000, CLIENT.octets(), 1500, Offload::NONE), ToaOutcome::Inserted);
        let after = bytes(&f);
        assert_checksums_valid(&after);
        assert_eq!(meta, meta_of(&after));
        assert_eq!(&after[34..38], &[1, 1, 1, 0], "the IP options moved with the header");
        assert_eq!(&after[38..50], &before[38..50], "the fixed TCP header up to its data offset");
        assert_eq!(&after[58..66], &[254, 8, 0x9c, 0x40, 192, 168, 1, 10]);
        assert_eq!(&after[66..], b"data");
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
        assert_eq!(after[46] >> 4, 8, "the data offset counts the option");
        assert_eq!(&after[24..26], &[0, 0], "DPDK's contract: the IPv4 checksum field holds zero");
        // What the NIC would do: fill both checksums from scratch.
        let mut nic = after.clone();
        nic[24..26].copy_from_slice(&[0, 0]);
        let ipc = checksum::checksum(&nic[14..34]);
        nic[24..26].copy_from_slice(&ipc.to_be_bytes());
        let phdr = u16::from_be_bytes([nic[50], nic[51]]);
        assert_eq!(phdr, checksum::fold(checksum::pseudo_header_v4(CLIENT.octets(), RIP.octets(), 6, 32)));
        nic[50..52].copy_from_slice(&[0, 0]);
        let tc = checksum::finish(
            checksum::sum(&nic[34..]) + checksum::pseudo_header_v4(CLIENT.octets(), RIP.octets(), 6, 32),
        );
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

    #[test]
    fn v6_toa_is_dpvs_layout_after_the_fixed_header() {
        let ts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        let before = tcp_frame_v6((CLIENT6, 40000), (RIP6, 8080), 7, 9, 0x18, &ts, b"GET /");
        let mut meta = meta_v6_of(&before);
        let mut f = BufFrame::new(&before);
        let out = insert_toa_v6(&mut f, &mut meta, 40000, CLIENT6.octets(), 1500, Offload::NONE);
        assert_eq!(out, ToaOutcome::Inserted);
        let after = bytes(&f);
        assert_eq!(after.len(), before.len() + 20);
        assert_checksums_valid_v6(&after);
        assert_eq!(meta, meta_v6_of(&after));
        // Ethernet and IPv6 but for the payload length, the fixed TCP
        // header but for the data offset and checksum, then the option:
        // kind 254, length 20, port 40000, 2001:db8:c::10.
        assert_eq!(&after[..18], &before[..18]);
        assert_eq!(u16::from_be_bytes([after[18], after[19]]), 20 + 20 + 12 + 5);
        assert_eq!(&after[20..66], &before[20..66]);
        assert_eq!(after[66], 13 << 4);
        assert_eq!(&after[67..70], &before[67..70]);
        let toa = [254, 20, 0x9c, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        assert_eq!(&after[74..94], &toa);
        assert_eq!(&after[94..], &before[74..]);
    }

    #[test]
    fn v6_toa_refusals_leave_the_frame_untouched() {
        let syn = tcp_frame_v6((CLIENT6, 40000), (RIP6, 8080), 7, 0, 0x02, &[2, 4, 5, 0xa0], b"");
        let mut meta = meta_v6_of(&syn);
        let mut f = BufFrame::with_geometry(&syn, 19, 256);
        let addr = CLIENT6.octets();
        assert_eq!(insert_toa_v6(&mut f, &mut meta, 1, addr, 1500, Offload::NONE), ToaOutcome::NoHeadroom);
        assert_eq!(bytes(&f), syn);
        let mut f = BufFrame::new(&syn);
        // 40 + 24 + 20 = 84 bytes: an MTU of 83 leaves no room for it.
        assert_eq!(insert_toa_v6(&mut f, &mut meta, 1, addr, 83, Offload::NONE), ToaOutcome::ExceedsMtu);
        assert_eq!(bytes(&f), syn);
        assert_eq!(insert_toa_v6(&mut f, &mut meta, 1, addr, 84, Offload::NONE), ToaOutcome::Inserted);
        assert_checksums_valid_v6(&bytes(&f));
        let dns = udp_frame_v6((CLIENT6, 1), (RIP6, 53), b"q");
        let mut meta = meta_v6_of(&dns);
        let mut f = BufFrame::new(&dns);
        assert_eq!(insert_toa_v6(&mut f, &mut meta, 1, addr, 1500, Offload::NONE), ToaOutcome::NotApplicable);
        assert_eq!(bytes(&f), dns);
    }
}
