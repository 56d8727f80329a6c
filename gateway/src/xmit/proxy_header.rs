//! Putting a PROXY protocol header ([`crate::wire::proxy_protocol`]) in
//! front of a TCP segment's payload, and the edits around it: the bytes
//! only. Which segment carries it and how the connection's numbers shift is
//! [`crate::conn::proxy_protocol`]'s business.
//!
//! - [`insert_header`]: the header goes into the segment itself, between the
//!   TCP header and the payload. The frame grows at the front (the Ethernet,
//!   IP and TCP headers move back by the header's length, as the TOA does),
//!   so the payload is not copied.
//! - [`header_segment`]: when that would make the packet longer than the
//!   egress MTU (a first segment at full MSS) or the frame has no headroom,
//!   the header goes alone in a segment of its own, built from the data
//!   segment's headers, and the data segment follows shifted.
//! - [`raise_ack`]: a server's ACK inside the header is moved to its end
//!   before the translation shifts it.
//!
//! Both families, through [`SegmentMeta`]: what differs is only where the
//! IP header says its length (IPv4's total length and header checksum,
//! IPv6's payload length, which counts the extension headers, moved with
//! the fixed header) and the pseudo-header of the TCP checksum.
//!
//! Checksums are computed in full for the segment that gets the header (one
//! or two packets per connection; a v1 header of odd length would move the
//! payload's byte parity, which an incremental update cannot follow cheaply),
//! or left to the port when it offloads them.

use crate::frame::{Frame, L4Offload};
use crate::wire::checksum::{self, Delta};
use crate::wire::{ip_proto, ipv4, ipv6, tcp, Ipv4Meta, Ipv6Meta};

use super::{pseudo_header_checksum, pseudo_header_checksum_v6, request_offload, request_offload_v6, Offload};

/// Why a header could not go into a segment. The frame is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRefused {
    /// The segment with the header would be `len` bytes on a `mtu`-byte link.
    ExceedsMtu { len: usize, mtu: u16 },
    /// The frame has no room to grow at the front.
    NoHeadroom,
    /// Not a TCP segment the classification describes (a meta from another frame).
    Malformed,
}

/// The classification of a TCP segment, either family: where its layers
/// are, and how its IP header and checksum are written again once its
/// length changed.
pub trait SegmentMeta: Copy {
    /// The fixed IP header (IPv4's without options, IPv6's without
    /// extension headers).
    const IP_HEADER_LEN: usize;
    fn protocol(&self) -> u8;
    /// Where the IP header starts in the frame.
    fn l3_offset(&self) -> usize;
    /// The IP header with its options or extension headers.
    fn l3_len(&self) -> usize;
    /// The TCP header and payload.
    fn l4_len(&self) -> usize;
    fn set_l4_len(&mut self, len: usize);
    fn tcp_flags(&self) -> u8;
    fn set_tcp_flags(&mut self, flags: u8);
    /// Writes the IP header's length for [`SegmentMeta::l4_len`] and the
    /// checksums, in full (or zeroed and requested, per `offload`).
    fn finish<F: Frame>(&self, frame: &mut F, offload: Offload);

    /// Where the TCP header starts in the frame.
    fn l4_offset(&self) -> usize {
        self.l3_offset() + self.l3_len()
    }
    /// The IP packet's length.
    fn ip_total_len(&self) -> usize {
        self.l3_len() + self.l4_len()
    }
}

impl SegmentMeta for Ipv4Meta {
    const IP_HEADER_LEN: usize = ipv4::MIN_HEADER_LEN;
    fn protocol(&self) -> u8 {
        self.protocol
    }
    fn l3_offset(&self) -> usize {
        Ipv4Meta::l3_offset(self)
    }
    fn l3_len(&self) -> usize {
        usize::from(self.l3_len)
    }
    fn l4_len(&self) -> usize {
        usize::from(self.l4_len)
    }
    fn set_l4_len(&mut self, len: usize) {
        self.l4_len = len as u16;
    }
    fn tcp_flags(&self) -> u8 {
        self.tcp_flags
    }
    fn set_tcp_flags(&mut self, flags: u8) {
        self.tcp_flags = flags;
    }
    /// The total length and the header checksum, then the TCP checksum.
    fn finish<F: Frame>(&self, frame: &mut F, offload: Offload) {
        let (l3, l4, l4_len) = (Ipv4Meta::l3_offset(self), Ipv4Meta::l4_offset(self), usize::from(self.l4_len));
        let total = self.ip_total_len() as u16;
        let data = frame.data_mut();
        let ip = &mut data[l3..l4];
        ip[ipv4::offset::LENGTH..ipv4::offset::LENGTH + 2].copy_from_slice(&total.to_be_bytes());
        ip[ipv4::offset::CHECKSUM..ipv4::offset::CHECKSUM + 2].copy_from_slice(&[0, 0]);
        if !offload.ipv4_checksum {
            let c = checksum::checksum(ip);
            ip[ipv4::offset::CHECKSUM..ipv4::offset::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        }
        let mut fixed = [0u8; ipv4::MIN_HEADER_LEN];
        fixed.copy_from_slice(&data[l3..l3 + ipv4::MIN_HEADER_LEN]);
        let c = if offload.tcp_checksum {
            pseudo_header_checksum(&fixed, ip_proto::TCP, l4_len as u16)
        } else {
            let src = [fixed[12], fixed[13], fixed[14], fixed[15]];
            let dst = [fixed[16], fixed[17], fixed[18], fixed[19]];
            tcp_checksum(&mut data[l4..l4 + l4_len], checksum::pseudo_header_v4(src, dst, ip_proto::TCP, l4_len as u16))
        };
        data[l4 + tcp::offset::CHECKSUM..l4 + tcp::offset::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        let l4_offload = if offload.tcp_checksum { L4Offload::Tcp } else { L4Offload::None };
        request_offload(frame, self, offload.ipv4_checksum, l4_offload);
    }
}

impl SegmentMeta for Ipv6Meta {
    const IP_HEADER_LEN: usize = ipv6::HEADER_LEN;
    fn protocol(&self) -> u8 {
        self.protocol
    }
    fn l3_offset(&self) -> usize {
        Ipv6Meta::l3_offset(self)
    }
    fn l3_len(&self) -> usize {
        usize::from(self.l3_len)
    }
    fn l4_len(&self) -> usize {
        usize::from(self.l4_len)
    }
    fn set_l4_len(&mut self, len: usize) {
        self.l4_len = len as u16;
    }
    fn tcp_flags(&self) -> u8 {
        self.tcp_flags
    }
    fn set_tcp_flags(&mut self, flags: u8) {
        self.tcp_flags = flags;
    }
    /// The payload length (extension headers and TCP segment), then the TCP
    /// checksum over the IPv6 pseudo-header.
    fn finish<F: Frame>(&self, frame: &mut F, offload: Offload) {
        let (l3, l4, l4_len) = (Ipv6Meta::l3_offset(self), Ipv6Meta::l4_offset(self), usize::from(self.l4_len));
        // The packet fits a u16 MTU, so its payload does.
        let payload_len = (self.ip_total_len() - ipv6::HEADER_LEN) as u16;
        let data = frame.data_mut();
        let at = l3 + ipv6::offset::PAYLOAD_LEN;
        data[at..at + 2].copy_from_slice(&payload_len.to_be_bytes());
        let mut fixed = [0u8; ipv6::HEADER_LEN];
        fixed.copy_from_slice(&data[l3..l3 + ipv6::HEADER_LEN]);
        let c = if offload.tcp_checksum {
            pseudo_header_checksum_v6(&fixed, ip_proto::TCP, l4_len as u32)
        } else {
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src.copy_from_slice(&fixed[ipv6::offset::SRC..ipv6::offset::SRC + 16]);
            dst.copy_from_slice(&fixed[ipv6::offset::DST..ipv6::offset::DST + 16]);
            tcp_checksum(&mut data[l4..l4 + l4_len], checksum::pseudo_header_v6(src, dst, ip_proto::TCP, l4_len as u32))
        };
        data[l4 + tcp::offset::CHECKSUM..l4 + tcp::offset::CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
        let l4_offload = if offload.tcp_checksum { L4Offload::Tcp } else { L4Offload::None };
        request_offload_v6(frame, self, l4_offload);
    }
}

/// The checksum of TCP segment `segment` (its checksum field zeroed first)
/// with the pseudo-header sum `pseudo`.
fn tcp_checksum(segment: &mut [u8], pseudo: u64) -> u16 {
    segment[tcp::offset::CHECKSUM..tcp::offset::CHECKSUM + 2].copy_from_slice(&[0, 0]);
    checksum::finish(checksum::sum(segment) + pseudo)
}

/// The TCP header's length (data offset) of the segment `meta` describes,
/// checked against the frame.
fn tcp_header_len<F: Frame, M: SegmentMeta>(frame: &F, meta: &M) -> Result<usize, HeaderRefused> {
    let l4 = meta.l4_offset();
    if meta.protocol() != ip_proto::TCP
        || frame.len() < meta.l3_offset() + meta.ip_total_len()
        || meta.l4_len() < tcp::MIN_HEADER_LEN
        || meta.l3_len() < M::IP_HEADER_LEN
    {
        return Err(HeaderRefused::Malformed);
    }
    let len = usize::from(frame.data()[l4 + tcp::offset::DATA_OFFSET] >> 4) * 4;
    if len < tcp::MIN_HEADER_LEN || len > meta.l4_len() {
        return Err(HeaderRefused::Malformed);
    }
    Ok(len)
}

/// Inserts `header` between the TCP header and the payload of the segment
/// `meta` describes, fixing the IP length and the checksums (or the offload
/// request). `meta`'s layer-4 length grows by the header's length.
pub fn insert_header<F: Frame, M: SegmentMeta>(
    frame: &mut F,
    meta: &mut M,
    header: &[u8],
    mtu: u16,
    offload: Offload,
) -> Result<(), HeaderRefused> {
    let n = header.len();
    let moved = meta.l4_offset() + tcp_header_len(frame, meta)?;
    let new_total = meta.ip_total_len() + n;
    if new_total > usize::from(mtu) {
        return Err(HeaderRefused::ExceedsMtu { len: new_total, mtu });
    }
    frame.prepend(n).map_err(|_| HeaderRefused::NoHeadroom)?;
    let data = frame.data_mut();
    data.copy_within(n..n + moved, 0);
    data[moved..moved + n].copy_from_slice(header);
    meta.set_l4_len(meta.l4_len() + n);
    meta.finish(frame, offload);
    Ok(())
}

/// Builds in `into` a segment carrying `header` alone, from the TCP segment
/// `meta` describes in `from` (already translated: its addresses, ports,
/// acknowledgment and options are the ones to send): the same headers with
/// sequence number `seq`, ACK and PSH, and the header as payload. Returns
/// its meta. Checksums are computed in full.
pub fn header_segment<F: Frame, M: SegmentMeta>(
    from: &F,
    meta: &M,
    seq: u32,
    header: &[u8],
    into: &mut F,
) -> Result<M, HeaderRefused> {
    let headers = meta.l4_offset() + tcp_header_len(from, meta)?;
    let want = headers + header.len();
    let have = into.len();
    let sized = if have < want { into.append(want - have) } else { into.trim(have - want) };
    sized.map_err(|_| HeaderRefused::NoHeadroom)?;
    let data = into.data_mut();
    data[..headers].copy_from_slice(&from.data()[..headers]);
    data[headers..].copy_from_slice(header);
    let l4 = meta.l4_offset();
    data[l4 + tcp::offset::SEQ..l4 + tcp::offset::SEQ + 4].copy_from_slice(&seq.to_be_bytes());
    let flags = (data[l4 + tcp::offset::FLAGS] & tcp::flags::ACK) | tcp::flags::PSH;
    data[l4 + tcp::offset::FLAGS] = flags;
    let mut m = *meta;
    m.set_l4_len(headers - l4 + header.len());
    m.set_tcp_flags(flags);
    m.finish(into, Offload::NONE);
    Ok(m)
}

/// Removes the payload of the TCP segment `meta` describes (a SYN carrying
/// TCP Fast Open data, which would reach the server before the header):
/// the frame ends after the TCP header, the IP length and the checksums are
/// computed again (in full: the frame as received, before its rewrite). The
/// client sends the data again once the handshake is done, as for any
/// server that does not take data on a SYN (RFC 7413 §4.2.2).
pub fn strip_payload<F: Frame, M: SegmentMeta>(frame: &mut F, meta: &mut M) -> Result<(), HeaderRefused> {
    let headers = tcp_header_len(frame, meta)?;
    let end = meta.l4_offset() + headers;
    frame.trim(frame.len() - end).map_err(|_| HeaderRefused::Malformed)?;
    meta.set_l4_len(headers);
    meta.finish(frame, Offload::NONE);
    Ok(())
}

/// Sets the acknowledgment number of the TCP segment `meta` describes to
/// `ack`, updating its checksum (the frame as received: checksums in full).
pub fn raise_ack<F: Frame, M: SegmentMeta>(frame: &mut F, meta: &M, ack: u32) -> Result<(), HeaderRefused> {
    tcp_header_len(frame, meta)?;
    let l4 = meta.l4_offset();
    let data = frame.data_mut();
    let at = l4 + tcp::offset::ACK;
    let old = [data[at], data[at + 1], data[at + 2], data[at + 3]];
    let mut d = Delta::new();
    d.replace4(old, ack.to_be_bytes());
    data[at..at + 4].copy_from_slice(&ack.to_be_bytes());
    let c = l4 + tcp::offset::CHECKSUM;
    let sum = d.apply_bytes([data[c], data[c + 1]]);
    data[c..c + 2].copy_from_slice(&sum);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::BufFrame;
    use crate::wire::tcp::{flags, TcpPacket};
    use crate::xmit::test_support::*;

    const V2: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c, 192, 168, 1,
        10, 10, 0, 0, 100, 0x9c, 0x40, 0x00, 0x50,
    ];
    const V1: &[u8] = b"PROXY TCP4 192.168.1.10 10.0.0.100 40000 80\r\n";
    const TS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8];

    #[test]
    fn the_header_goes_in_front_of_the_payload() {
        for header in [&V2[..], V1] {
            let before = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK | flags::PSH, &TS, b"GET / HTTP/1.0");
            let mut body = header.to_vec();
            body.extend_from_slice(b"GET / HTTP/1.0");
            let expected = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK | flags::PSH, &TS, &body);
            let (mut meta, mut f) = (meta_of(&before), BufFrame::new(&before));
            assert_eq!(insert_header(&mut f, &mut meta, header, 1500, Offload::NONE), Ok(()));
            assert_eq!(bytes(&f), expected, "header of {} bytes", header.len());
            assert_eq!(meta, meta_of(&expected));
        }
    }

    #[test]
    fn a_pure_ack_becomes_the_header_segment() {
        let before = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK, &[], b"");
        let expected = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK, &[], V1);
        let (mut meta, mut f) = (meta_of(&before), BufFrame::new(&before));
        insert_header(&mut f, &mut meta, V1, 1500, Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);
        // Under offload: the IPv4 checksum is zero, the TCP field holds the
        // pseudo-header sum, and the request is recorded.
        let (mut meta, mut f) = (meta_of(&before), BufFrame::new(&before));
        insert_header(&mut f, &mut meta, V1, 1500, Offload::ALL).unwrap();
        let out = bytes(&f);
        assert_eq!(&out[24..26], &[0, 0]);
        let phdr = checksum::fold(checksum::pseudo_header_v4(LIP.octets(), RIP.octets(), 6, 20 + V1.len() as u16));
        assert_eq!(u16::from_be_bytes([out[50], out[51]]), phdr);
        assert_eq!(f.tx_offload().l4, L4Offload::Tcp);
        assert_eq!(&out[..24], &expected[..24]);
        assert_eq!(&out[54..], &expected[54..]);
    }

    #[test]
    fn refused_past_the_mtu_or_the_headroom_and_unchanged() {
        let full = vec![0x5a; 1500 - 20 - 20];
        let before = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK, &[], &full);
        let (mut meta, mut f) = (meta_of(&before), BufFrame::new(&before));
        assert_eq!(
            insert_header(&mut f, &mut meta, &V2, 1500, Offload::NONE),
            Err(HeaderRefused::ExceedsMtu { len: 1528, mtu: 1500 })
        );
        assert_eq!(bytes(&f), before);
        assert_eq!(meta, meta_of(&before));
        let small = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK, &[], b"x");
        let (mut meta, mut f) = (meta_of(&small), BufFrame::with_geometry(&small, 20, 256));
        assert_eq!(insert_header(&mut f, &mut meta, &V2, 1500, Offload::NONE), Err(HeaderRefused::NoHeadroom));
        assert_eq!(bytes(&f), small);
        let udp = udp_frame((LIP, 5001), (RIP, 8080), b"q", true);
        let (mut meta, mut f) = (meta_of(&udp), BufFrame::new(&udp));
        assert_eq!(insert_header(&mut f, &mut meta, &V2, 1500, Offload::NONE), Err(HeaderRefused::Malformed));
    }

    #[test]
    fn the_header_alone_for_a_full_segment() {
        let full = vec![0x5a; 1500 - 20 - 20 - 12];
        let data = tcp_frame((LIP, 5001), (RIP, 8080), 1001 + 28, 7, flags::ACK | flags::FIN, &TS, &full);
        let expected = tcp_frame((LIP, 5001), (RIP, 8080), 1001, 7, flags::ACK | flags::PSH, &TS, &V2);
        let mut into = BufFrame::new(&[0; 60]);
        let m = header_segment(&BufFrame::new(&data), &meta_of(&data), 1001, &V2, &mut into).unwrap();
        assert_eq!(bytes(&into), expected);
        assert_eq!(m, meta_of(&expected));
        let out = bytes(&into);
        let seg = TcpPacket::new_checked(&out[34..]).unwrap();
        assert_eq!(seg.payload(), &V2);
    }

    #[test]
    fn a_syn_loses_its_data() {
        let opts = [2, 4, 5, 0xb4, 34, 2, 1, 1];
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 77, 0, flags::SYN, &opts, b"GET /");
        let expected = tcp_frame((CLIENT, 40000), (VIP, 80), 77, 0, flags::SYN, &opts, b"");
        let (mut meta, mut f) = (meta_of(&before), BufFrame::new(&before));
        strip_payload(&mut f, &mut meta).unwrap();
        assert_eq!(bytes(&f), expected);
        assert_eq!(meta, meta_of(&expected));
    }

    #[test]
    fn an_ack_raised_keeps_the_checksum() {
        let before = tcp_frame((RIP, 8080), (LIP, 5001), 9, 1001, flags::ACK, &[], b"220 hello\r\n");
        let expected = tcp_frame((RIP, 8080), (LIP, 5001), 9, 1029, flags::ACK, &[], b"220 hello\r\n");
        let mut f = BufFrame::new(&before);
        raise_ack(&mut f, &meta_of(&before), 1029).unwrap();
        assert_eq!(bytes(&f), expected);
    }

    /// `PROXY TCP6 <CLIENT6> <VIP6> 40000 80`, v2: the TCP6 header as the
    /// worker emits it for test_support's addresses.
    const V2_TCP6: [u8; 52] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 0x24, 0x20, 0x01,
        0x0d, 0xb8, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0x01, 0x00, 0x9c, 0x40, 0x00, 0x50,
    ];
    const V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8:c::10 2001:db8::100 40000 80\r\n";

    #[test]
    fn over_ipv6_the_header_goes_in_front_of_the_payload() {
        for header in [&V2_TCP6[..], V1_TCP6] {
            let before =
                tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1001, 7, flags::ACK | flags::PSH, &TS, b"GET / HTTP/1.0");
            let body = [header, b"GET / HTTP/1.0"].concat();
            let expected = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1001, 7, flags::ACK | flags::PSH, &TS, &body);
            let (mut meta, mut f) = (meta_v6_of(&before), BufFrame::new(&before));
            assert_eq!(insert_header(&mut f, &mut meta, header, 1500, Offload::NONE), Ok(()));
            assert_eq!(bytes(&f), expected, "header of {} bytes", header.len());
            assert_eq!(meta, meta_v6_of(&expected));
        }
        // Under offload: the TCP field holds the IPv6 pseudo-header sum, the request says IPv6.
        let before = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1001, 7, flags::ACK, &[], b"");
        let (mut meta, mut f) = (meta_v6_of(&before), BufFrame::new(&before));
        insert_header(&mut f, &mut meta, &V2_TCP6, 1500, Offload::ALL).unwrap();
        let out = bytes(&f);
        let phdr = checksum::fold(checksum::pseudo_header_v6(LIP6.octets(), RIP6.octets(), 6, 20 + 52));
        assert_eq!(u16::from_be_bytes([out[70], out[71]]), phdr);
        assert!(f.tx_offload().ipv6 && f.tx_offload().l4 == L4Offload::Tcp);
        // Past the MTU: refused, the frame unchanged.
        let full = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1001, 7, flags::ACK, &[], &[0x5a; 1500 - 40 - 20]);
        let (mut meta, mut f) = (meta_v6_of(&full), BufFrame::new(&full));
        assert_eq!(
            insert_header(&mut f, &mut meta, &V2_TCP6, 1500, Offload::NONE),
            Err(HeaderRefused::ExceedsMtu { len: 1552, mtu: 1500 })
        );
        assert_eq!(bytes(&f), full);
    }

    #[test]
    fn over_ipv6_extension_headers_move_with_the_fixed_header() {
        use crate::wire::build::ipv6;
        use crate::wire::ipv6::ext;
        use crate::wire::tcp::TcpRepr;
        // One destination-options header (8 bytes, padding only) before TCP.
        let chain = [ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0];
        let segment = |payload: &'static [u8]| TcpRepr {
            src_port: 5001,
            dst_port: 8080,
            seq_number: 1001,
            ack_number: 7,
            flags: flags::ACK,
            window_len: 65535,
            options: &[],
            payload,
        };
        let frame = |payload| ipv6(LIP6, RIP6).ext_headers(ext::DEST_OPTS, &chain).tcp(&segment(payload));
        let before = frame(b"data");
        let expected = frame(b"PROXY TCP6 2001:db8:c::10 2001:db8::100 40000 80\r\ndata");
        let (mut meta, mut f) = (meta_v6_of(&before), BufFrame::new(&before));
        assert_eq!(meta.l3_len, 48);
        insert_header(&mut f, &mut meta, V1_TCP6, 1500, Offload::NONE).unwrap();
        assert_eq!(bytes(&f), expected);
        assert_eq!(meta, meta_v6_of(&expected));
    }

    #[test]
    fn over_ipv6_the_header_alone_and_a_syn_without_its_data() {
        let full = vec![0x5a; 1500 - 40 - 20 - 12];
        let data = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1001 + 52, 7, flags::ACK, &TS, &full);
        let expected = tcp_frame_v6((LIP6, 5001), (RIP6, 8080), 1001, 7, flags::ACK | flags::PSH, &TS, &V2_TCP6);
        let mut into = BufFrame::new(&[0; 60]);
        let m = header_segment(&BufFrame::new(&data), &meta_v6_of(&data), 1001, &V2_TCP6, &mut into).unwrap();
        assert_eq!(bytes(&into), expected);
        assert_eq!(m, meta_v6_of(&expected));
        assert_checksums_valid_v6(&bytes(&into));

        let opts = [2, 4, 5, 0xa0, 34, 2, 1, 1];
        let before = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 77, 0, flags::SYN, &opts, b"GET /");
        let expected = tcp_frame_v6((CLIENT6, 40000), (VIP6, 80), 77, 0, flags::SYN, &opts, b"");
        let (mut meta, mut f) = (meta_v6_of(&before), BufFrame::new(&before));
        strip_payload(&mut f, &mut meta).unwrap();
        assert_eq!(bytes(&f), expected);
        assert_eq!(meta, meta_v6_of(&expected));
    }
}
