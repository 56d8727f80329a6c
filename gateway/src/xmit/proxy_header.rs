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
//! Checksums are computed in full for the segment that gets the header (one
//! or two packets per connection; a v1 header of odd length would move the
//! payload's byte parity, which an incremental update cannot follow cheaply),
//! or left to the port when it offloads them.

use crate::frame::{Frame, L4Offload};
use crate::wire::checksum::{self, Delta};
use crate::wire::{ip_proto, ipv4, tcp, Ipv4Meta};

use super::{pseudo_header_checksum, request_offload, Offload};

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

/// The TCP header's length (data offset) of the segment `meta` describes,
/// checked against the frame.
fn tcp_header_len<F: Frame>(frame: &F, meta: &Ipv4Meta) -> Result<usize, HeaderRefused> {
    let l4 = meta.l4_offset();
    if meta.protocol != ip_proto::TCP
        || frame.len() < meta.l3_offset() + meta.ip_total_len()
        || usize::from(meta.l4_len) < tcp::MIN_HEADER_LEN
        || usize::from(meta.l3_len) < ipv4::MIN_HEADER_LEN
    {
        return Err(HeaderRefused::Malformed);
    }
    let len = usize::from(frame.data()[l4 + tcp::offset::DATA_OFFSET] >> 4) * 4;
    if len < tcp::MIN_HEADER_LEN || len > usize::from(meta.l4_len) {
        return Err(HeaderRefused::Malformed);
    }
    Ok(len)
}

/// Inserts `header` between the TCP header and the payload of the segment
/// `meta` describes, fixing the IPv4 total length and both checksums (or the
/// offload request). `meta.l4_len` grows by the header's length.
pub fn insert_header<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
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
    meta.l4_len += n as u16;
    finish_segment(frame, meta, new_total as u16, offload);
    Ok(())
}

/// Builds in `into` a segment carrying `header` alone, from the TCP segment
/// `meta` describes in `from` (already translated: its addresses, ports,
/// acknowledgment and options are the ones to send): the same headers with
/// sequence number `seq`, ACK and PSH, and the header as payload. Returns
/// its meta. Checksums are computed in full.
pub fn header_segment<F: Frame>(
    from: &F,
    meta: &Ipv4Meta,
    seq: u32,
    header: &[u8],
    into: &mut F,
) -> Result<Ipv4Meta, HeaderRefused> {
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
    m.l4_len = (headers - l4 + header.len()) as u16;
    m.tcp_flags = flags;
    finish_segment(into, &m, (usize::from(m.l3_len) + usize::from(m.l4_len)) as u16, Offload::NONE);
    Ok(m)
}

/// Writes the IPv4 total length `total` and both checksums of the TCP
/// segment `meta` describes (or zeroes and requests them, per `offload`).
fn finish_segment<F: Frame>(frame: &mut F, meta: &Ipv4Meta, total: u16, offload: Offload) {
    let (l3, l4, l4_len) = (meta.l3_offset(), meta.l4_offset(), usize::from(meta.l4_len));
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
    let at = l4 + tcp::offset::CHECKSUM;
    let c = if offload.tcp_checksum {
        pseudo_header_checksum(&fixed, ip_proto::TCP, l4_len as u16)
    } else {
        data[at..at + 2].copy_from_slice(&[0, 0]);
        let src = [fixed[12], fixed[13], fixed[14], fixed[15]];
        let dst = [fixed[16], fixed[17], fixed[18], fixed[19]];
        checksum::finish(
            checksum::sum(&data[l4..l4 + l4_len]) + checksum::pseudo_header_v4(src, dst, ip_proto::TCP, l4_len as u16),
        )
    };
    data[at..at + 2].copy_from_slice(&c.to_be_bytes());
    let l4_offload = if offload.tcp_checksum { L4Offload::Tcp } else { L4Offload::None };
    request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
}

/// Removes the payload of the TCP segment `meta` describes (a SYN carrying
/// TCP Fast Open data, which would reach the server before the header):
/// the frame ends after the TCP header, the IPv4 total length and both
/// checksums are computed again (in full: the frame as received, before its
/// rewrite). The client sends the data again once the handshake is done, as
/// for any server that does not take data on a SYN (RFC 7413 §4.2.2).
pub fn strip_payload<F: Frame>(frame: &mut F, meta: &mut Ipv4Meta) -> Result<(), HeaderRefused> {
    let headers = tcp_header_len(frame, meta)?;
    let end = meta.l4_offset() + headers;
    frame.trim(frame.len() - end).map_err(|_| HeaderRefused::Malformed)?;
    meta.l4_len = headers as u16;
    finish_segment(frame, meta, (usize::from(meta.l3_len) + headers) as u16, Offload::NONE);
    Ok(())
}

/// Sets the acknowledgment number of the TCP segment `meta` describes to
/// `ack`, updating its checksum (the frame as received: checksums in full).
pub fn raise_ack<F: Frame>(frame: &mut F, meta: &Ipv4Meta, ack: u32) -> Result<(), HeaderRefused> {
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
}
