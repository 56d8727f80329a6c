//! Property tests of the rewrites against an independent oracle.
//!
//! Packets are built by etherparse (not by the gateway's own views), every
//! rewrite runs on a `BufFrame`, and the result is parsed again by etherparse,
//! whose full checksum computation is the oracle: after any rewrite every
//! checksum must be right, the fields must be the ones asked for, and
//! rewriting back must restore the original.

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use gateway::frame::{BufFrame, Frame, L4Offload};
use gateway::wire::classify::{classify, Classified, ClassifyPolicy, Ipv4Meta};
use gateway::wire::tcp::{TcpOption, TcpOptions};
use gateway::wire::MacAddr;
use gateway::xmit::{
    dr, fnat, icmp_error, nat, tun, DrRewrite, FnatRewrite, IcmpErrorRewrite, NatRewrite, Offload, Toa, ToaOutcome,
    TunEncap,
};
use proptest::prelude::*;

const STRICT: ClassifyPolicy = ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true };

#[derive(Debug, Clone)]
struct Tcp {
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn tcp_bytes(t: &Tcp) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(t.src.0, t.dst.0, 64)
        .tcp(t.src.1, t.dst.1, t.seq, 29200);
    if let Some(ack) = t.ack {
        b = b.ack(ack);
    }
    if t.syn {
        b = b.syn();
    }
    let b = b.options_raw(&t.options).expect("options fit");
    let mut out = Vec::new();
    b.write(&mut out, &t.payload).unwrap();
    out
}

fn udp_bytes(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// Raw option bytes, whole words, at most 40 bytes: a random sequence of
/// real options at random alignments, padded with NOPs.
fn options() -> impl Strategy<Value = Vec<u8>> {
    let one = prop_oneof![
        any::<u16>().prop_map(|m| {
            let b = m.to_be_bytes();
            vec![2, 4, b[0], b[1]]
        }),
        Just(vec![1]),
        Just(vec![4, 2]),
        any::<u8>().prop_map(|s| vec![3, 3, s]),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| [
            vec![8, 10],
            a.to_be_bytes().to_vec(),
            b.to_be_bytes().to_vec()
        ]
        .concat()),
        proptest::collection::vec(any::<u32>(), 2..=6).prop_map(|edges| {
            let n = edges.len() / 2 * 2;
            let mut v = vec![5, (2 + 4 * n) as u8];
            for e in &edges[..n] {
                v.extend_from_slice(&e.to_be_bytes());
            }
            v
        }),
    ];
    proptest::collection::vec(one, 0..6).prop_map(|opts| {
        let mut v: Vec<u8> = Vec::new();
        for o in opts {
            if v.len() + o.len() <= 40 {
                v.extend(o);
            }
        }
        while v.len() & 3 != 0 {
            v.push(1);
        }
        v
    })
}

fn tcp_packet() -> impl Strategy<Value = Tcp> {
    (
        (any::<[u8; 4]>(), any::<u16>()),
        (any::<[u8; 4]>(), any::<u16>()),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        options(),
        proptest::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(src, dst, seq, ack, syn, options, payload)| Tcp { src, dst, seq, ack, syn, options, payload })
}

fn meta(f: &BufFrame) -> Ipv4Meta {
    match classify(f, STRICT) {
        Ok(Classified::Ipv4(m)) => m,
        other => panic!("does not classify: {other:?}"),
    }
}

fn same_checksum(a: u16, b: u16) -> bool {
    a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0)
}

/// The oracle: etherparse parses the frame and recomputes every checksum.
fn assert_valid(bytes: &[u8]) -> SlicedPacket<'_> {
    let p = SlicedPacket::from_ethernet(bytes).expect("etherparse parses the result");
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not ipv4") };
    let h = ip.header();
    assert!(
        same_checksum(h.header_checksum(), h.to_header().calc_header_checksum()),
        "ipv4 header checksum {:#06x}",
        h.header_checksum()
    );
    let (src, dst) = (h.source(), h.destination());
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            assert!(same_checksum(t.checksum(), t.calc_checksum_ipv4(src, dst).unwrap()), "tcp checksum")
        }
        Some(TransportSlice::Udp(u)) if u.checksum() != 0 => {
            let want = u.to_header().calc_checksum_ipv4_raw(src, dst, u.payload()).unwrap();
            assert!(same_checksum(u.checksum(), want), "udp checksum");
        }
        _ => {}
    }
    p
}

fn tcp_of<'a>(p: &'a SlicedPacket<'a>) -> &'a etherparse::TcpSlice<'a> {
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => t,
        other => panic!("not tcp: {other:?}"),
    }
}

fn ip_of<'a>(p: &'a SlicedPacket<'a>) -> etherparse::Ipv4HeaderSlice<'a> {
    match &p.net {
        Some(NetSlice::Ipv4(ip)) => ip.header(),
        _ => panic!("not ipv4"),
    }
}

fn addr(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn parsed_options(opts: &[u8]) -> Vec<TcpOption<'_>> {
    TcpOptions::new(opts).map_while(Result::ok).map(|(_, o)| o).collect()
}

/// Bytes with every checksum field zeroed, to compare two frames that may
/// differ only in how they spell a zero checksum.
fn without_checksums(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v[24] = 0;
    v[25] = 0;
    let l4 = 14 + usize::from(v[14] & 0x0f) * 4;
    match v[23] {
        6 => {
            v[l4 + 16] = 0;
            v[l4 + 17] = 0;
        }
        17 => {
            v[l4 + 6] = 0;
            v[l4 + 7] = 0;
        }
        _ => {}
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// FNAT inbound: every checksum verifies and every field is the one
    /// asked for, with sequence and timestamp deltas, MSS clamp and TOA in
    /// any mix.
    #[test]
    fn fnat_inbound_fields_and_checksums(
        t in tcp_packet(),
        l in (any::<[u8; 4]>(), any::<u16>()),
        r in (any::<[u8; 4]>(), any::<u16>()),
        seq_delta in any::<u32>(),
        ack_delta in any::<u32>(),
        tsval_delta in any::<u32>(),
        tsecr_delta in any::<u32>(),
        clamp in proptest::option::of(536u16..9000),
        toa in any::<bool>(),
    ) {
        let before = tcp_bytes(&t);
        let mut f = BufFrame::new(&before);
        let mut m = meta(&f);
        let rw = FnatRewrite {
            seq_delta,
            ack_delta,
            tsval_delta,
            tsecr_delta,
            mss_clamp: clamp,
            toa: toa.then_some(Toa { addr: addr(t.src.0), port: t.src.1 }),
            ..FnatRewrite::inbound(addr(l.0), l.1, addr(r.0), r.1)
        };
        let outcome = fnat::rewrite(&mut f, &mut m, &rw, Offload::NONE).unwrap();
        let out = f.data().to_vec();
        let p = assert_valid(&out);
        let (ip, tcp) = (ip_of(&p), tcp_of(&p));
        prop_assert_eq!((ip.source(), tcp.source_port()), l);
        prop_assert_eq!((ip.destination(), tcp.destination_port()), r);
        prop_assert_eq!(tcp.sequence_number(), t.seq.wrapping_add(seq_delta));
        let want_ack = t.ack.map_or(0, |a| a.wrapping_sub(ack_delta));
        prop_assert_eq!(tcp.acknowledgment_number(), want_ack);
        prop_assert_eq!(tcp.payload(), &t.payload[..]);
        prop_assert_eq!(m.l4_len, meta(&f).l4_len, "the meta follows the frame's length");

        let expect_toa = toa && t.options.len() <= 32;
        prop_assert_eq!(outcome, if toa { if expect_toa { ToaOutcome::Inserted } else { ToaOutcome::NoOptionSpace } } else { ToaOutcome::NotRequested });
        let mut got = parsed_options(tcp.options());
        if expect_toa {
            prop_assert_eq!(got.remove(0), TcpOption::ClientAddress { port: t.src.1, addr: Ipv4Addr::from(t.src.0) });
        }
        let orig = parsed_options(&t.options);
        prop_assert_eq!(got.len(), orig.len());
        for (g, o) in got.iter().zip(&orig) {
            match (g, o) {
                (TcpOption::MaxSegmentSize(g), TcpOption::MaxSegmentSize(o)) => {
                    let want = match clamp { Some(c) if t.syn => (*o).min(c), _ => *o };
                    prop_assert_eq!(*g, want);
                }
                (TcpOption::Sack(g), TcpOption::Sack(o)) => {
                    let d = if t.ack.is_some() { ack_delta } else { 0 };
                    let want: Vec<_> = o.iter().map(|(a, b)| (a.wrapping_sub(d), b.wrapping_sub(d))).collect();
                    prop_assert_eq!(g.iter().collect::<Vec<_>>(), want);
                }
                (TcpOption::Timestamps { tsval: gv, tsecr: ge }, TcpOption::Timestamps { tsval: ov, tsecr: oe }) => {
                    // TSecr is echoed only with ACK set (RFC 7323 §3.2).
                    let d = if t.ack.is_some() { tsecr_delta } else { 0 };
                    prop_assert_eq!((*gv, *ge), (ov.wrapping_add(tsval_delta), oe.wrapping_sub(d)));
                }
                _ => prop_assert_eq!(g, o),
            }
        }
    }

    /// Inbound then the inverse rewrite restores the original packet.
    #[test]
    fn fnat_and_nat_round_trip(
        t in tcp_packet(),
        l in (any::<[u8; 4]>(), any::<u16>()),
        r in (any::<[u8; 4]>(), any::<u16>()),
        seq_delta in any::<u32>(),
        ack_delta in any::<u32>(),
        tsval_delta in any::<u32>(),
        tsecr_delta in any::<u32>(),
    ) {
        let before = tcp_bytes(&t);
        let mut f = BufFrame::new(&before);
        let mut m = meta(&f);
        let there = FnatRewrite {
            seq_delta,
            ack_delta,
            tsval_delta,
            tsecr_delta,
            ..FnatRewrite::inbound(addr(l.0), l.1, addr(r.0), r.1)
        };
        fnat::rewrite(&mut f, &mut m, &there, Offload::NONE).unwrap();
        let back = FnatRewrite {
            seq_delta: seq_delta.wrapping_neg(),
            ack_delta: ack_delta.wrapping_neg(),
            tsval_delta: tsval_delta.wrapping_neg(),
            tsecr_delta: tsecr_delta.wrapping_neg(),
            ..FnatRewrite::outbound(addr(t.src.0), t.src.1, addr(t.dst.0), t.dst.1)
        };
        fnat::rewrite(&mut f, &mut m, &back, Offload::NONE).unwrap();
        assert_valid(f.data());
        prop_assert_eq!(without_checksums(f.data()), without_checksums(&before));

        let mut f = BufFrame::new(&before);
        let mut m = meta(&f);
        nat::rewrite_inbound(&mut f, &mut m, &NatRewrite::new(addr(r.0), r.1), Offload::NONE).unwrap();
        assert_valid(f.data());
        nat::rewrite_inbound(&mut f, &mut m, &NatRewrite::new(addr(t.dst.0), t.dst.1), Offload::NONE).unwrap();
        prop_assert_eq!(without_checksums(f.data()), without_checksums(&before));
        nat::rewrite_outbound(&mut f, &mut m, &NatRewrite::new(addr(l.0), l.1), Offload::NONE).unwrap();
        let out = f.data().to_vec();
        let p = assert_valid(&out);
        prop_assert_eq!((ip_of(&p).source(), tcp_of(&p).source_port()), l);
        prop_assert_eq!((ip_of(&p).destination(), tcp_of(&p).destination_port()), t.dst);
    }

    /// The conversation as the two ends see it: the client's segment goes to
    /// the real server with a shifted sequence number; the server's answer,
    /// acknowledging (and SACKing) in the shifted space, reaches the client
    /// from the VIP acknowledging the client's own numbers, across 2^32.
    #[test]
    fn seq_ack_deltas_round_trip_through_a_conversation(
        client in (any::<[u8; 4]>(), 1024u16..),
        vip in (any::<[u8; 4]>(), 1u16..1024),
        local in (any::<[u8; 4]>(), 1024u16..),
        real in (any::<[u8; 4]>(), 1u16..),
        seq in any::<u32>(),
        delta in any::<u32>(),
        server_seq in any::<u32>(),
        len in 0usize..100,
    ) {
        let request = Tcp { src: client, dst: vip, seq, ack: Some(server_seq), syn: false, options: vec![], payload: vec![7; len] };
        let mut f = BufFrame::new(&tcp_bytes(&request));
        let mut m = meta(&f);
        let inbound = FnatRewrite { seq_delta: delta, ..FnatRewrite::inbound(addr(local.0), local.1, addr(real.0), real.1) };
        fnat::rewrite(&mut f, &mut m, &inbound, Offload::NONE).unwrap();
        let seen_by_server = f.data().to_vec();
        let p = assert_valid(&seen_by_server);
        let shifted = tcp_of(&p).sequence_number();
        prop_assert_eq!(shifted, seq.wrapping_add(delta));

        let acked = shifted.wrapping_add(len as u32);
        let sack = [&[1u8, 1, 5, 10][..], &acked.wrapping_sub(3000).to_be_bytes(), &acked.wrapping_sub(1000).to_be_bytes()].concat();
        let reply = Tcp { src: real, dst: local, seq: server_seq, ack: Some(acked), syn: false, options: sack, payload: vec![] };
        let mut f = BufFrame::new(&tcp_bytes(&reply));
        let mut m = meta(&f);
        let outbound = FnatRewrite { ack_delta: delta, ..FnatRewrite::outbound(addr(vip.0), vip.1, addr(client.0), client.1) };
        fnat::rewrite(&mut f, &mut m, &outbound, Offload::NONE).unwrap();
        let seen_by_client = f.data().to_vec();
        let p = assert_valid(&seen_by_client);
        let (ip, tcp) = (ip_of(&p), tcp_of(&p));
        prop_assert_eq!((ip.source(), tcp.source_port(), ip.destination(), tcp.destination_port()), (vip.0, vip.1, client.0, client.1));
        let client_end = seq.wrapping_add(len as u32);
        prop_assert_eq!(tcp.acknowledgment_number(), client_end);
        let Some(TcpOption::Sack(blocks)) = parsed_options(tcp.options()).into_iter().find(|o| matches!(o, TcpOption::Sack(_))) else {
            panic!("sack lost")
        };
        prop_assert_eq!(blocks.iter().collect::<Vec<_>>(), vec![(client_end.wrapping_sub(3000), client_end.wrapping_sub(1000))]);
    }

    /// UDP through FNAT and NAT, with and without a checksum.
    #[test]
    fn udp_rewrites_keep_checksums(
        src in (any::<[u8; 4]>(), any::<u16>()),
        dst in (any::<[u8; 4]>(), any::<u16>()),
        to in (any::<[u8; 4]>(), any::<u16>()),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        no_checksum in any::<bool>(),
    ) {
        let mut before = udp_bytes(src, dst, &payload);
        if no_checksum {
            before[40] = 0;
            before[41] = 0;
        }
        let mut f = BufFrame::new(&before);
        let mut m = meta(&f);
        fnat::rewrite(&mut f, &mut m, &FnatRewrite::inbound(addr(to.0), to.1, addr(src.0), src.1), Offload::NONE).unwrap();
        let out = f.data().to_vec();
        assert_valid(&out);
        prop_assert_eq!(out[40] == 0 && out[41] == 0, no_checksum, "zero means none, and only that");
        nat::rewrite_outbound(&mut f, &mut m, &NatRewrite::new(addr(dst.0), dst.1), Offload::NONE).unwrap();
        assert_valid(f.data());
    }

    /// The offload path writes exactly what the software path writes, except
    /// the checksum fields, which hold what DPDK wants the NIC to finish.
    #[test]
    fn offload_and_software_paths_agree(
        t in tcp_packet(),
        l in (any::<[u8; 4]>(), any::<u16>()),
        r in (any::<[u8; 4]>(), any::<u16>()),
        toa in any::<bool>(),
    ) {
        let before = tcp_bytes(&t);
        let rw = FnatRewrite {
            toa: toa.then_some(Toa { addr: addr(t.src.0), port: t.src.1 }),
            ..FnatRewrite::inbound(addr(l.0), l.1, addr(r.0), r.1)
        };
        let mut soft = BufFrame::new(&before);
        let mut m = meta(&soft);
        fnat::rewrite(&mut soft, &mut m, &rw, Offload::NONE).unwrap();
        let mut hard = BufFrame::new(&before);
        let mut m = meta(&hard);
        fnat::rewrite(&mut hard, &mut m, &rw, Offload::ALL).unwrap();
        prop_assert_eq!(without_checksums(soft.data()), without_checksums(hard.data()));
        let h = hard.data();
        prop_assert_eq!(&h[24..26], &[0, 0]);
        let l4_len = u16::from_be_bytes([h[16], h[17]]) - 20;
        let pseudo = gateway::wire::checksum::fold(gateway::wire::checksum::pseudo_header_v4(l.0, r.0, 6, l4_len));
        prop_assert_eq!(u16::from_be_bytes([h[50], h[51]]), pseudo);
        let off = hard.tx_offload();
        prop_assert!(off.ipv4_checksum);
        prop_assert_eq!((off.l2_len, off.l3_len, off.l4), (14, 20, L4Offload::Tcp));
        prop_assert_eq!(soft.tx_offload(), Default::default());
    }

    /// TOA on any option layout: the packet stays valid, and the option goes
    /// in exactly when there is room in the header and under the MTU.
    #[test]
    fn toa_insertion_leaves_the_packet_valid(t in tcp_packet(), mtu in 60u16..200) {
        let before = tcp_bytes(&t);
        let mut f = BufFrame::new(&before);
        let mut m = meta(&f);
        let total = before.len() - 14;
        let outcome = gateway::xmit::tcp_opts::insert_toa(&mut f, &mut m, 4242, [1, 2, 3, 4], mtu, Offload::NONE);
        let want = if t.options.len() > 32 {
            ToaOutcome::NoOptionSpace
        } else if total + 8 > usize::from(mtu) {
            ToaOutcome::ExceedsMtu
        } else {
            ToaOutcome::Inserted
        };
        prop_assert_eq!(outcome, want);
        let out = f.data().to_vec();
        let p = assert_valid(&out);
        if outcome == ToaOutcome::Inserted {
            prop_assert!(out.len() - 14 <= usize::from(mtu));
            prop_assert_eq!(tcp_of(&p).payload(), &t.payload[..]);
            prop_assert_eq!(m, meta(&f));
        } else {
            prop_assert_eq!(out, before);
        }
    }

    /// DR changes nothing above Ethernet; TUN wraps the untouched packet in
    /// a valid outer header.
    #[test]
    fn dr_and_tun_leave_the_packet_intact(t in tcp_packet(), gw in any::<[u8; 4]>(), rip in any::<[u8; 4]>(), ident in any::<u16>()) {
        let before = tcp_bytes(&t);
        let mut f = BufFrame::new(&before);
        dr::rewrite(&mut f, &DrRewrite { dst_mac: MacAddr([2, 9, 9, 9, 9, 9]), src_mac: MacAddr([2, 8, 8, 8, 8, 8]) }).unwrap();
        prop_assert_eq!(&f.data()[14..], &before[14..]);
        prop_assert_eq!(&f.data()[..12], &[2, 9, 9, 9, 9, 9, 2, 8, 8, 8, 8, 8]);

        let mut f = BufFrame::new(&before);
        let mut m = meta(&f);
        let encap = TunEncap { src: addr(gw), dst: addr(rip), ttl: 32, ident, mtu: 1500 };
        tun::encapsulate(&mut f, &mut m, &encap, Offload::NONE).unwrap();
        let out = f.data();
        let p = SlicedPacket::from_ethernet(out).unwrap();
        let outer = ip_of(&p);
        prop_assert_eq!(outer.header_checksum(), outer.to_header().calc_header_checksum());
        prop_assert_eq!((outer.source(), outer.destination(), outer.ttl(), outer.identification()), (gw, rip, 32, ident));
        prop_assert_eq!(outer.dont_fragment(), before[20] & 0x40 != 0);
        prop_assert_eq!(&out[34..], &before[14..]);
    }

    /// An ICMP error about any packet the gateway sent is relayed with the
    /// quoted packet restored to what the client sent, at any quote length.
    #[test]
    fn icmp_errors_relayed_consistently(t in tcp_packet(), quote in 28usize..200, seq_delta in any::<u32>()) {
        let client = (t.src, t.dst);
        let (lip, rip) = (([172, 16, 0, 1], 5001u16), ([172, 16, 0, 20], 8080u16));
        let mut sent = BufFrame::new(&tcp_bytes(&t));
        let mut m = meta(&sent);
        fnat::rewrite(&mut sent, &mut m, &FnatRewrite { seq_delta, ..FnatRewrite::inbound(addr(lip.0), lip.1, addr(rip.0), rip.1) }, Offload::NONE).unwrap();
        let quoted = &sent.data()[14..];
        let quoted = &quoted[..quote.min(quoted.len())];
        let mut err = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 3], [2, 0, 0, 0, 0, 4])
            .ipv4([172, 16, 0, 9], lip.0, 60)
            .icmpv4(etherparse::Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit))
            .write(&mut err, quoted)
            .unwrap();
        let mut f = BufFrame::new(&err);
        let mut m = meta(&f);
        let rw = IcmpErrorRewrite {
            outer_src: Some(addr(client.1 .0)),
            outer_dst: Some(addr(client.0 .0)),
            inner_src: Some((addr(client.0 .0), client.0 .1)),
            inner_dst: Some((addr(client.1 .0), client.1 .1)),
            inner_seq_delta: seq_delta.wrapping_neg(),
            decrement_ttl: true,
        };
        icmp_error::rewrite(&mut f, &mut m, &rw, Offload::NONE).unwrap();
        let out = f.data().to_vec();
        // Strict classification verifies the outer and ICMP checksums.
        let m2 = meta(&f);
        prop_assert_eq!(m.l4_len, m2.l4_len);
        let q = gateway::wire::icmp_error_inner(&out, &m2).unwrap();
        prop_assert_eq!(q.tuple.src, addr(client.0 .0));
        prop_assert_eq!((q.tuple.src_port, q.tuple.dst_port), (client.0 .1, client.1 .1));
        // The quoted bytes are what the client sent, checksums included
        // when quoted.
        let original = tcp_bytes(&t);
        let want = &original[14..14 + quoted.len()];
        let got = &out[42..];
        prop_assert_eq!(got.len(), want.len());
        let word = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
        for at in (0..got.len()).step_by(2) {
            match at {
                // The quoted IPv4 and TCP checksums may spell zero either way.
                10 | 36 if at + 1 < got.len() => prop_assert!(same_checksum(word(got, at), word(want, at))),
                // Half a checksum cannot be updated (its other half is
                // unknown) and no receiver can check it.
                36 => {}
                _ => prop_assert_eq!(&got[at..(at + 2).min(got.len())], &want[at..(at + 2).min(want.len())], "quoted byte {}", at),
            }
        }
    }
}
