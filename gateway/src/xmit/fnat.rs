//! Full NAT: both endpoints of the packet are replaced.
//!
//! Inbound (client to real server), `CIP:cport -> VIP:vport` becomes
//! `LIP:lport -> RIP:rport`; outbound (real server to client), `RIP:rport ->
//! LIP:lport` becomes `VIP:vport -> CIP:cport`. The worker's packets take
//! these endpoints from [`super::dispatch::Rewrite::of`]; the [`FnatRewrite`]
//! here, built only for tests (and the `testing` feature), states one direction by hand: it is the
//! reference the dispatch is checked against byte for byte, and the golden
//! tests below pin the shared core ([`super::translate`]) through it.
//!
//! Sequence numbers: when the director shifts a direction's sequence space
//! (its own ISN towards the real server, or a SYN-proxy cookie), the packets
//! of that direction get `seq_delta` added to `seq`, and the packets of the
//! other direction get the same value as `ack_delta`, subtracted from `ack`
//! and from every SACK edge, so both ends see their own numbering.
//! Timestamps follow the same pattern for the SYN proxy: the client saw the
//! TSval of the director's SYN-ACK, so the server's TSvals are shifted into
//! that space on the way out (`tsval_delta` of the outbound rewrite) and
//! the client's TSecr, echoing them, is shifted back on the way in
//! (`tsecr_delta` of the inbound rewrite, applied to segments with ACK
//! set); the client's TSval and the server's TSecr pass unchanged.
//!
//! The client's address reaches the real server in a TOA option (see
//! [`super::tcp_opts::insert_toa`]); the connection code decides which
//! packets carry it (DPVS: the handshake's ACK and first data packets).

#[cfg(any(test, feature = "testing"))]
use std::net::IpAddr;

#[cfg(any(test, feature = "testing"))]
use crate::frame::Frame;
#[cfg(any(test, feature = "testing"))]
use crate::wire::{ip_proto, Ipv4Meta};

#[cfg(any(test, feature = "testing"))]
use super::tcp_opts::insert_toa;
pub use super::tcp_opts::ToaOutcome;
#[cfg(any(test, feature = "testing"))]
use super::{translate, Offload, Translation, XmitError};

/// The client address to carry to the real server.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toa {
    pub addr: IpAddr,
    pub port: u16,
}

/// The endpoints and TCP adjustments of one FNAT direction.
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FnatRewrite {
    /// New source: the local address and port (inbound), or the VIP and
    /// virtual port (outbound).
    pub src: IpAddr,
    pub src_port: u16,
    /// New destination: the real server (inbound), or the client (outbound).
    pub dst: IpAddr,
    pub dst_port: u16,
    /// Added to the TCP sequence number (mod 2^32).
    pub seq_delta: u32,
    /// Subtracted from the TCP acknowledgment number and SACK edges.
    pub ack_delta: u32,
    /// Added to the TSval of the TCP timestamps option (mod 2^32).
    pub tsval_delta: u32,
    /// Subtracted from the TSecr of the TCP timestamps option (segments
    /// with ACK set).
    pub tsecr_delta: u32,
    /// Upper bound for the MSS option of SYN and SYN-ACK segments.
    pub mss_clamp: Option<u16>,
    /// Client address to insert as a TOA option, when this packet carries it.
    pub toa: Option<Toa>,
    /// Act as a router hop: decrement TTL, refuse at 1.
    pub decrement_ttl: bool,
    /// Egress MTU: TOA insertion never makes the packet exceed it.
    pub mtu: u16,
}

#[cfg(any(test, feature = "testing"))]
impl FnatRewrite {
    /// Client to real server: the packet leaves from `laddr:lport` to
    /// `raddr:rport`.
    pub fn inbound(laddr: IpAddr, lport: u16, raddr: IpAddr, rport: u16) -> Self {
        FnatRewrite {
            src: laddr,
            src_port: lport,
            dst: raddr,
            dst_port: rport,
            seq_delta: 0,
            ack_delta: 0,
            tsval_delta: 0,
            tsecr_delta: 0,
            mss_clamp: None,
            toa: None,
            decrement_ttl: false,
            mtu: 1500,
        }
    }

    /// Real server to client: the packet leaves from `vaddr:vport` to
    /// `caddr:cport`.
    pub fn outbound(vaddr: IpAddr, vport: u16, caddr: IpAddr, cport: u16) -> Self {
        Self::inbound(vaddr, vport, caddr, cport)
    }
}

/// Rewrites a classified TCP or UDP packet in place; the outcome says
/// whether a requested TOA went in. `meta` keeps the packet's tuple as it
/// was received (the connection's key, which the caller already holds); its
/// lengths follow the frame (`l4_len` grows by 8 with a TOA). On error the frame is unchanged: every check (lengths,
/// protocol, address family, TTL) happens before the first write.
#[cfg(any(test, feature = "testing"))]
pub fn rewrite<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    rw: &FnatRewrite,
    offload: Offload,
) -> Result<ToaOutcome, XmitError> {
    translate(frame, meta, offload, || match (rw.src, rw.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => Ok(Translation {
            src: Some((src.octets(), rw.src_port)),
            dst: Some((dst.octets(), rw.dst_port)),
            seq_delta: rw.seq_delta,
            ack_delta: rw.ack_delta,
            tsval_delta: rw.tsval_delta,
            tsecr_delta: rw.tsecr_delta,
            mss_clamp: rw.mss_clamp,
            decrement_ttl: rw.decrement_ttl,
        }),
        (IpAddr::V6(_), _) => Err(XmitError::AddressFamily(rw.src)),
        (_, IpAddr::V6(_)) => Err(XmitError::AddressFamily(rw.dst)),
    })?;
    let Some(toa) = rw.toa else { return Ok(ToaOutcome::NotRequested) };
    match toa.addr {
        IpAddr::V4(client) if meta.protocol == ip_proto::TCP => {
            Ok(insert_toa(frame, meta, toa.port, client.octets(), rw.mtu, offload))
        }
        _ => Ok(ToaOutcome::NotApplicable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufFrame, L4Offload};
    use crate::wire::tcp::{flags, TcpOption, TcpPacket};
    use crate::xmit::test_support::*;
    use std::net::Ipv6Addr;

    fn inbound() -> FnatRewrite {
        FnatRewrite::inbound(LIP.into(), 5001, RIP.into(), 8080)
    }

    fn outbound() -> FnatRewrite {
        FnatRewrite::outbound(VIP.into(), 80, CLIENT.into(), 40000)
    }

    fn run(before: &[u8], rw: &FnatRewrite, offload: Offload) -> (Result<ToaOutcome, XmitError>, BufFrame, Ipv4Meta) {
        let mut meta = meta_of(before);
        let mut f = BufFrame::new(before);
        let r = rewrite(&mut f, &mut meta, rw, offload);
        (r, f, meta)
    }

    #[test]
    fn golden_inbound_established() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1000, 2000, flags::ACK | flags::PSH, &[], b"hello");
        let expected = tcp_frame((LIP, 5001), (RIP, 8080), 1000, 2000, flags::ACK | flags::PSH, &[], b"hello");
        let (r, f, meta) = run(&before, &inbound(), Offload::NONE);
        assert_eq!(r, Ok(ToaOutcome::NotRequested));
        assert_eq!(bytes(&f), expected);
        assert_eq!(meta, meta_of(&before), "the meta keeps the received tuple");
        assert_eq!(f.tx_offload(), Default::default());
    }

    #[test]
    fn golden_outbound_with_sequence_deltas() {
        // The real server acknowledges in the shifted space (ack 5000 + 77)
        // and SACKs a block in it; the client must see its own numbers.
        let sack = [1, 1, 5, 10, 0, 0, 0x13, 0xec, 0, 0, 0x17, 0xd4];
        let before = tcp_frame((RIP, 8080), (LIP, 5001), 9000, 5077, flags::ACK, &sack, b"");
        let sack_expected = [1, 1, 5, 10, 0, 0, 0x13, 0xec - 77, 0, 0, 0x17, 0xd4 - 77];
        let expected = tcp_frame((VIP, 80), (CLIENT, 40000), 9000, 5000, flags::ACK, &sack_expected, b"");
        let rw = FnatRewrite { ack_delta: 77, ..outbound() };
        let (r, f, _) = run(&before, &rw, Offload::NONE);
        assert_eq!(r, Ok(ToaOutcome::NotRequested));
        assert_eq!(bytes(&f), expected);
    }

    #[test]
    fn golden_inbound_syn_with_mss_clamp_and_seq_delta() {
        let opts = [2, 4, 0x05, 0xb4, 4, 2, 1, 1];
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 0xffff_fff0, 0, flags::SYN, &opts, b"");
        let clamped = [2, 4, 0x05, 0x64, 4, 2, 1, 1];
        let expected = tcp_frame((LIP, 5001), (RIP, 8080), 0x10, 0, flags::SYN, &clamped, b"");
        let rw = FnatRewrite { seq_delta: 0x20, mss_clamp: Some(1380), ..inbound() };
        let (_, f, _) = run(&before, &rw, Offload::NONE);
        assert_eq!(bytes(&f), expected);
        // The ACK flag is not set on a SYN: ack_delta must not touch ack.
        let rw = FnatRewrite { ack_delta: 5, ..inbound() };
        let (_, f, _) = run(&before, &rw, Offload::NONE);
        assert_eq!(TcpPacket::new_checked(&bytes(&f)[34..]).unwrap().ack_number(), 0);
    }

    #[test]
    fn timestamps_round_trip_through_a_proxied_connection() {
        // The SYN proxy's SYN-ACK carried TSval T; the server's SYN-ACK V.
        // Outbound adds T - V to the server's TSvals, inbound takes it off
        // the client's TSecr: each end sees only its own clock echoed.
        let (t, v) = (0xffff_f000u32, 0x0001_0000u32);
        let ts_delta = t.wrapping_sub(v);
        let ts = |tsval: u32, tsecr: u32| {
            let mut o = [1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0];
            o[4..8].copy_from_slice(&tsval.to_be_bytes());
            o[8..12].copy_from_slice(&tsecr.to_be_bytes());
            o
        };
        let client_tsval = 0x0abc_0000;
        // The server's clock 0x2000 ticks after its SYN-ACK, as the client
        // must see it: 0x2000 after ours (0x1000, across 2^32).
        let (server_tsval, seen_tsval) = (v + 0x2000, t.wrapping_add(0x2000));
        let from_server =
            tcp_frame((RIP, 8080), (LIP, 5001), 9000, 5000, flags::ACK, &ts(server_tsval, client_tsval), b"OK");
        let to_client =
            tcp_frame((VIP, 80), (CLIENT, 40000), 9000, 5000, flags::ACK, &ts(seen_tsval, client_tsval), b"OK");
        let rw = FnatRewrite { tsval_delta: ts_delta, ..outbound() };
        let (r, f, _) = run(&from_server, &rw, Offload::NONE);
        assert_eq!(r, Ok(ToaOutcome::NotRequested));
        assert_eq!(bytes(&f), to_client, "the client sees our clock go on, past 2^32");

        let echo = ts(client_tsval + 1, seen_tsval);
        let from_client = tcp_frame((CLIENT, 40000), (VIP, 80), 5000, 9002, flags::ACK, &echo, b"");
        let echo = ts(client_tsval + 1, server_tsval);
        let to_server = tcp_frame((LIP, 5001), (RIP, 8080), 5000, 9002, flags::ACK, &echo, b"");
        let rw = FnatRewrite { tsecr_delta: ts_delta, ..inbound() };
        let (_, f, _) = run(&from_client, &rw, Offload::NONE);
        assert_eq!(bytes(&f), to_server, "the server sees its own TSval echoed");
        // With an ack delta and TOA as well, and under offload.
        let rw = FnatRewrite { ack_delta: 2, toa: Some(Toa { addr: CLIENT.into(), port: 40000 }), ..rw };
        let (r, f, _) = run(&from_client, &rw, Offload::NONE);
        assert_eq!(r, Ok(ToaOutcome::Inserted));
        let out = bytes(&f);
        assert_checksums_valid(&out);
        let seg = TcpPacket::new_checked(&out[34..]).unwrap();
        assert_eq!(seg.ack_number(), 9000);
        let opts: Vec<_> = seg.option_iter().map(|o| o.unwrap().1).collect();
        assert_eq!(opts[3], TcpOption::Timestamps { tsval: client_tsval + 1, tsecr: server_tsval });
        let (_, f, _) = run(&from_client, &rw, Offload::ALL);
        assert_eq!(&bytes(&f)[62..74], &out[62..74], "the same option edit under offload");
        // A segment without ACK carries no echo: its TSecr is not shifted.
        let syn = tcp_frame((CLIENT, 40000), (VIP, 80), 4999, 0, flags::SYN, &ts(client_tsval, 0), b"");
        let (_, f, _) = run(&syn, &FnatRewrite { tsecr_delta: ts_delta, ..inbound() }, Offload::NONE);
        assert_eq!(&bytes(&f)[54..66], &ts(client_tsval, 0));
    }

    #[test]
    fn golden_udp_and_zero_checksum() {
        let before = udp_frame((CLIENT, 5353), (VIP, 53), b"query", true);
        let expected = udp_frame((LIP, 5001), (RIP, 8080), b"query", true);
        let (_, f, _) = run(&before, &inbound(), Offload::NONE);
        assert_eq!(bytes(&f), expected);
        let before = udp_frame((CLIENT, 5353), (VIP, 53), b"query", false);
        let expected = udp_frame((LIP, 5001), (RIP, 8080), b"query", false);
        let (_, f, _) = run(&before, &inbound(), Offload::ALL);
        let out = bytes(&f);
        assert_eq!(&out[40..42], &[0, 0], "no checksum stays no checksum");
        assert_eq!(&out[34..40], &expected[34..40]);
        assert_eq!(f.tx_offload().l4, L4Offload::None);
    }

    #[test]
    fn toa_on_the_first_data_packet() {
        let before =
            tcp_frame((CLIENT, 40000), (VIP, 80), 1, 1, flags::ACK, &[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8], b"GET");
        let rw = FnatRewrite { toa: Some(Toa { addr: CLIENT.into(), port: 40000 }), ..inbound() };
        let (r, f, meta) = run(&before, &rw, Offload::NONE);
        assert_eq!(r, Ok(ToaOutcome::Inserted));
        let out = bytes(&f);
        assert_checksums_valid(&out);
        assert_eq!(meta.l4_len, meta_of(&out).l4_len);
        let t = TcpPacket::new_checked(&out[34..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (5001, 8080));
        assert_eq!(t.option_iter().next(), Some(Ok((0, TcpOption::ClientAddress { port: 40000, addr: CLIENT }))));
        assert_eq!(t.payload(), b"GET");
        // An IPv6 client cannot be carried in this TOA: the packet goes on
        // without it.
        let rw = FnatRewrite { toa: Some(Toa { addr: Ipv6Addr::LOCALHOST.into(), port: 1 }), ..inbound() };
        let (r, f, _) = run(&before, &rw, Offload::NONE);
        assert_eq!(r, Ok(ToaOutcome::NotApplicable));
        assert_checksums_valid(&bytes(&f));
    }

    #[test]
    fn offload_stores_the_pseudo_header_sum() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], b"data");
        let (r, f, _) = run(&before, &inbound(), Offload::ALL);
        assert!(r.is_ok());
        let out = bytes(&f);
        assert_eq!(&out[24..26], &[0, 0]);
        let want =
            crate::wire::checksum::fold(crate::wire::checksum::pseudo_header_v4(LIP.octets(), RIP.octets(), 6, 24));
        assert_eq!(u16::from_be_bytes([out[50], out[51]]), want);
        let off = f.tx_offload();
        assert!(off.ipv4_checksum);
        assert_eq!((off.l2_len, off.l3_len, off.l4), (14, 20, L4Offload::Tcp));
    }

    #[test]
    fn ttl_is_decremented_or_expires() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], b"");
        let rw = FnatRewrite { decrement_ttl: true, ..inbound() };
        let (r, f, meta) = run(&before, &rw, Offload::NONE);
        assert!(r.is_ok());
        assert_eq!(bytes(&f)[22], 63);
        assert_eq!(meta.ttl, 64, "the meta keeps the packet as received");
        assert_checksums_valid(&bytes(&f));
        let mut one = before.clone();
        one[22] = 1;
        let mut ip = crate::wire::ipv4::Ipv4Packet::new_unchecked(&mut one[14..]);
        ip.fill_checksum();
        let (r, f, _) = run(&one, &rw, Offload::NONE);
        assert_eq!(r, Err(XmitError::TtlExpired { ttl: 1 }));
        assert_eq!(r.unwrap_err().drop_reason(), crate::wire::DropReason::TtlExpired);
        assert_eq!(bytes(&f), one, "a refused packet is untouched");
    }

    #[test]
    fn refusals() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), 1, 2, flags::ACK, &[], b"");
        let rw = FnatRewrite { dst: Ipv6Addr::LOCALHOST.into(), ..inbound() };
        let (r, f, _) = run(&before, &rw, Offload::NONE);
        assert_eq!(r, Err(XmitError::AddressFamily(Ipv6Addr::LOCALHOST.into())));
        assert_eq!(bytes(&f), before);
        // A meta that promises more bytes than the frame has.
        let mut meta = meta_of(&before);
        meta.l4_len += 100;
        let mut f = BufFrame::new(&before);
        assert!(matches!(rewrite(&mut f, &mut meta, &inbound(), Offload::NONE), Err(XmitError::Truncated { .. })));
        // ICMP is not translated by FNAT.
        let mut meta = meta_of(&before);
        meta.protocol = 1;
        let mut f = BufFrame::new(&before);
        assert_eq!(rewrite(&mut f, &mut meta, &inbound(), Offload::NONE), Err(XmitError::UnsupportedProtocol(1)));
    }
}
