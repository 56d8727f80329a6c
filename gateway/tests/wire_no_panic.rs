//! Hostile input never panics: classification and every rewrite, on any
//! bytes, with any parameters, any frame geometry, and even a classification
//! that does not match the frame.
//!
//! [`exercise`] is the whole classify + rewrite path driven by one byte
//! string. It runs here under proptest (in CI, on every `cargo test`) and is
//! shared with the cargo-fuzz target in `fuzz/` (which includes this file),
//! so both explore the same code with the same invariants.
//!
//! Besides "no panic", it checks that a rewrite never invalidates a packet:
//! when the input passed strict classification (all checksums verified in
//! software) and a rewrite succeeded with software checksums, the result
//! passes strict classification too.
//!
//! The same bytes also go through the IPv6 parsers ([`exercise_ipv6`]):
//! `classify_ipv6`, whose every acceptance the typed views must agree
//! with, and the views, reprs, extension-header and neighbour-discovery
//! option walks on their own; and through NAT64's translations both ways
//! (segments and ICMP errors), whose output, from a valid packet, is valid
//! in the other family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gateway::frame::{BufFrame, ChecksumStatus, Frame, RxChecksum};
use gateway::wire::arp::ArpPacket;
use gateway::wire::classify::{
    classify, classify_ipv6_bytes, icmpv6_error_inner, Classified, ClassifyPolicy, Ipv4Meta,
};
use gateway::wire::ethernet::EthernetFrame;
use gateway::wire::icmpv6::{Icmpv6Packet, Icmpv6Repr, NdOptions, NdiscRepr, Quoted};
use gateway::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use gateway::wire::tcp::TcpPacket;
use gateway::wire::udp::UdpPacket;
use gateway::wire::{ip_proto, MacAddr};
use gateway::xmit::{dr, fnat, icmp_error, nat, nat64, tcp_opts, tun};
use gateway::xmit::{DrRewrite, Egress, FnatRewrite, IcmpErrorRewrite, NatRewrite, Offload, Toa, ToaOutcome, TunEncap};

const STRICT: ClassifyPolicy = ClassifyPolicy { verify_ip_checksum: true, verify_l4_checksum: true };

/// Control bytes taken from the front of the input.
const CONTROL: usize = 8;

fn status(bits: u8) -> ChecksumStatus {
    match bits & 3 {
        1 => ChecksumStatus::Good,
        2 => ChecksumStatus::Bad,
        _ => ChecksumStatus::Unknown,
    }
}

fn still_valid(f: &BufFrame, was_valid: bool, what: &str) {
    if was_valid {
        let r = classify(f, STRICT);
        assert!(matches!(r, Ok(Classified::Ipv4(_))), "{what} broke a valid packet: {r:?}");
    }
}

/// Runs classification and every rewrite on a frame made from `input`. The
/// first [`CONTROL`] bytes choose the frame geometry, the NIC's checksum
/// verdicts, the policy and the rewrite parameters; the rest is the frame.
pub fn exercise(input: &[u8]) {
    let (control, bytes) = input.split_at(input.len().min(CONTROL));
    let c = |i: usize| control.get(i).copied().unwrap_or(0);
    let word = u32::from_be_bytes([c(4), c(5), c(6), c(7)]);
    let headroom = usize::from(c(0));
    let frame = BufFrame::with_geometry(bytes, headroom, bytes.len() + usize::from(c(1)));
    let mut received = frame.clone();
    received.set_rx_checksum(RxChecksum { ip: status(c(3)), l4: status(c(3) >> 2) });
    let policy = ClassifyPolicy { verify_ip_checksum: c(2) & 1 != 0, verify_l4_checksum: c(2) & 2 != 0 };
    let offload = Offload { ipv4_checksum: c(2) & 8 != 0, tcp_checksum: c(2) & 16 != 0, udp_checksum: c(2) & 32 != 0 };
    let was_valid = matches!(classify(&frame, STRICT), Ok(Classified::Ipv4(_))) && offload == Offload::NONE;
    exercise_ipv6(bytes, received.rx_checksum(), policy);

    let meta = match classify(&received, policy) {
        Ok(Classified::Ipv4(m)) => m,
        Ok(Classified::Arp { l2_len }) => {
            let _ = ArpPacket::new_checked(&bytes[usize::from(l2_len)..])
                .map(|p| (p.operation(), p.sender_protocol_addr()));
            return;
        }
        // Exercised above, with the IPv6 views' agreement checked.
        Ok(Classified::Ipv6(_)) => return,
        Err(reason) => {
            let _ = reason.name();
            return;
        }
    };
    let a = |x: u32| IpAddr::V4(Ipv4Addr::from(x));
    let mtu = 68 + u16::from(c(1)) * 6;
    let fnat_rw = FnatRewrite {
        seq_delta: word,
        ack_delta: word.rotate_left(8),
        tsval_delta: word.rotate_left(16),
        tsecr_delta: word.rotate_left(24),
        mss_clamp: Some(u16::from(c(1)) * 8),
        toa: Some(Toa { addr: a(word ^ 0x5a5a_5a5a), port: c(6).into() }),
        decrement_ttl: c(2) & 4 != 0,
        mtu,
        ..FnatRewrite::inbound(a(word), c(4).into(), a(!word), c(5).into())
    };

    // The same rewrites with the true classification and with a corrupted
    // one (as if the frame had changed since): errors are fine, panics not.
    let mut wrong = meta;
    wrong.l4_len = wrong.l4_len.wrapping_add(u16::from(c(6)) >> 4);
    wrong.l3_len = wrong.l3_len.wrapping_add(c(7) & 0x0c);
    wrong.protocol = if c(7) & 1 != 0 { 6 } else { wrong.protocol };
    for (m, honest) in [(meta, true), (wrong, meta == wrong)] {
        let valid = was_valid && honest;

        let mut f = frame.clone();
        let mut mm = m;
        let no_toa = FnatRewrite { toa: None, ..fnat_rw };
        if fnat::rewrite(&mut f, &mut mm, &no_toa, offload).is_ok() {
            still_valid(&f, valid, "fnat");
        }
        let mut f = frame.clone();
        let mut mm = m;
        if let Ok(outcome) = fnat::rewrite(&mut f, &mut mm, &fnat_rw, offload) {
            still_valid(&f, valid, "fnat with toa");
            if outcome == ToaOutcome::Inserted {
                assert!(mm.ip_total_len() <= usize::from(mtu), "toa beyond the mtu");
            }
        }

        let nat_rw = NatRewrite {
            seq_delta: word,
            ack_delta: !word,
            tsval_delta: word.swap_bytes(),
            tsecr_delta: !word.swap_bytes(),
            decrement_ttl: c(2) & 4 != 0,
            ..NatRewrite::new(a(word), c(5).into())
        };
        let mut f = frame.clone();
        let mut mm = m;
        if nat::rewrite_inbound(&mut f, &mut mm, &nat_rw, offload).is_ok() {
            still_valid(&f, valid, "nat inbound");
        }
        let mut f = frame.clone();
        let mut mm = m;
        if nat::rewrite_outbound(&mut f, &mut mm, &nat_rw, offload).is_ok() {
            still_valid(&f, valid, "nat outbound");
        }

        let mut f = frame.clone();
        let _ = dr::rewrite(&mut f, &DrRewrite { dst_mac: MacAddr([c(4); 6]), src_mac: MacAddr([c(5); 6]) });

        let mut f = frame.clone();
        let mut mm = m;
        let encap = TunEncap { src: a(word), dst: a(!word), ttl: c(6), ident: c(7).into(), mtu };
        if tun::encapsulate(&mut f, &mut mm, &encap, offload).is_ok() {
            assert!(f.len() - mm.l3_offset() <= usize::from(mtu), "tunnel beyond the mtu");
        }

        let mut f = frame.clone();
        let mut mm = m;
        let icmp_rw = IcmpErrorRewrite {
            outer_src: Some(a(word)),
            outer_dst: (c(6) & 1 != 0).then_some(a(!word)),
            inner_src: Some((a(word.rotate_left(3)), c(4).into())),
            inner_dst: (c(6) & 2 != 0).then_some((a(word.rotate_left(5)), c(5).into())),
            inner_seq_delta: word,
            decrement_ttl: c(2) & 4 != 0,
        };
        if icmp_error::rewrite(&mut f, &mut mm, &icmp_rw, offload).is_ok() {
            still_valid(&f, valid, "icmp error");
        }

        let mut f = frame.clone();
        if icmp_error::error_reply(&mut f, &m, Ipv4Addr::from(word), icmp_error::OriginatedError::TimeExceeded).is_ok()
        {
            still_valid(&f, honest, "time exceeded");
        }
        let mut f = frame.clone();
        let too_big = icmp_error::OriginatedError::FragmentationNeeded { next_hop_mtu: mtu };
        if icmp_error::error_reply(&mut f, &m, Ipv4Addr::from(word), too_big).is_ok() {
            still_valid(&f, honest, "fragmentation needed");
        }

        let mut f = frame.clone();
        let mut mm: Ipv4Meta = m;
        if tcp_opts::insert_toa(&mut f, &mut mm, 1, [1, 2, 3, 4], mtu, offload) == ToaOutcome::Inserted {
            still_valid(&f, valid, "toa");
        }

        // NAT64, a server's packet or an error about one to the client side.
        let (vip6, client6) = (Ipv6Addr::from(u128::from(word) << 64 | 1), Ipv6Addr::from(!u128::from(word)));
        let strict4 = honest && matches!(classify(&frame, STRICT), Ok(Classified::Ipv4(_)));
        let mut f = frame.clone();
        let egress = Egress { mtu, offload: Offload::NONE };
        if nat64::to_ipv6(&mut f, &m, (vip6, c(4).into()), (client6, c(5).into()), egress).is_ok() && strict4 {
            let r = classify_ipv6_bytes(f.data(), RxChecksum::default(), STRICT);
            assert!(r.is_ok(), "nat64 to ipv6 broke a valid packet: {r:?}");
        }
        let mut f = frame.clone();
        if nat64::icmp_error_to_v6(&mut f, &m, (vip6, client6), ((client6, 1), (vip6, 2))).is_ok() {
            let error = Icmpv6Packet::new_checked(&f.data()[usize::from(m.l2_len) + ipv6::HEADER_LEN..])
                .expect("nat64 wrote a short icmpv6 error");
            assert!(error.verify_checksum(vip6, client6), "nat64's icmpv6 error checksum");
        }
    }
    let _ = gateway::wire::icmp_error_inner(&bytes[..bytes.len().min(usize::from(c(7)) * 4)], &meta);
}

/// NAT64 on a classified IPv6 packet: a client's packet, or an error about
/// one, to the servers' side; a valid one stays valid over IPv4.
fn exercise_nat64(bytes: &[u8], m: &gateway::wire::Ipv6Meta, strict: bool) {
    let (local, server) = (Ipv4Addr::new(192, 168, 1, 201), Ipv4Addr::from(u32::from(m.dst_port) << 16 | 7));
    let frame = BufFrame::new(bytes);
    let mut f = frame.clone();
    let egress = Egress { mtu: 1500, offload: Offload::NONE };
    if nat64::to_ipv4(&mut f, m, (local, 1), (server, 2), Some((m.src, m.src_port)), egress).is_ok() && strict {
        let r = classify(&f, STRICT);
        assert!(matches!(r, Ok(Classified::Ipv4(_))), "nat64 to ipv4 broke a valid packet: {r:?}");
    }
    let mut f = frame.clone();
    if nat64::icmp_error_to_v4(&mut f, m, (local, server), ((server, 2), (local, 1))).is_ok() {
        let r = classify(&f, STRICT);
        assert!(matches!(r, Ok(Classified::Ipv4(_))), "nat64's icmp error does not verify: {r:?}");
    }
}

/// The IPv6 parsers on `bytes`: the classification pass (checked against
/// the typed views when it accepts), then every view on its own.
pub fn exercise_ipv6(bytes: &[u8], rx: RxChecksum, policy: ClassifyPolicy) {
    if let Ok(m) = classify_ipv6_bytes(bytes, rx, policy) {
        let eth = EthernetFrame::new_checked(bytes).expect("classify_ipv6 accepted a bad ethernet header");
        assert_eq!(eth.header_len(), usize::from(m.l2_len));
        let ip = Ipv6Packet::new_checked(eth.payload()).expect("classify_ipv6 accepted a bad ipv6 header");
        let upper = ip.upper_layer().expect("classify_ipv6 accepted a bad extension-header chain");
        assert!(!upper.is_fragment(), "classify_ipv6 accepted a fragment");
        assert_eq!((ipv6::HEADER_LEN + upper.ext_len, upper.protocol), (usize::from(m.l3_len), m.protocol));
        let l4 = &ip.payload()[upper.ext_len..];
        assert_eq!(l4.len(), usize::from(m.l4_len));
        let strict = classify_ipv6_bytes(bytes, RxChecksum::default(), STRICT).is_ok();
        exercise_nat64(bytes, &m, strict);
        match m.protocol {
            ip_proto::TCP => {
                let t = TcpPacket::new_checked(l4).expect("classify_ipv6 accepted a bad tcp header");
                assert_eq!((t.src_port(), t.dst_port(), t.flags()), (m.src_port, m.dst_port, m.tcp_flags));
                assert_eq!(t.verify_checksum_v6(m.src, m.dst), strict);
            }
            ip_proto::UDP => {
                let u = UdpPacket::new_checked(l4).expect("classify_ipv6 accepted a bad udp header");
                assert_eq!((u.src_port(), u.dst_port()), (m.src_port, m.dst_port));
                assert_ne!(u.checksum(), 0, "classify_ipv6 accepted udp without a checksum");
                assert_eq!(u.verify_checksum_v6(m.src, m.dst), strict);
            }
            _ => {
                let i = Icmpv6Packet::new_checked(l4).expect("classify_ipv6 accepted a bad icmpv6 header");
                assert_eq!((i.msg_type(), i.msg_code()), (m.icmp_type, m.icmp_code));
                assert_eq!(i.verify_checksum(m.src, m.dst), strict);
                let _ = i.quoted();
                if let Ok(q) = icmpv6_error_inner(bytes, &m) {
                    assert!(q.l3_offset + q.l3_len + 8 <= bytes.len(), "a quote beyond the frame");
                }
                if let Ok(nd) = NdiscRepr::parse(&i) {
                    // What is read is written back the same (the options
                    // kept, in the repr's order) and read again.
                    let mut out = vec![0u8; nd.buffer_len()];
                    nd.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), m.src, m.dst);
                    let again = Icmpv6Packet::new_checked(&out[..]).unwrap();
                    assert_eq!(NdiscRepr::parse(&again), Ok(nd));
                    assert!(again.verify_checksum(m.src, m.dst));
                }
                if strict {
                    // A valid message is emitted back to the same bytes, but
                    // for the checksum's two encodings of zero.
                    let repr = Icmpv6Repr::parse(&i);
                    let mut out = vec![0u8; repr.buffer_len()];
                    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), m.src, m.dst);
                    assert_eq!((&out[..2], &out[4..]), (&l4[..2], &l4[4..]));
                    let (ours, theirs) = (Icmpv6Packet::new_unchecked(&out[..]).checksum(), i.checksum());
                    assert!(ours == theirs || (ours, theirs) == (0, 0xffff), "{ours:#x} for {theirs:#x}");
                }
            }
        }
        // The fixed header round-trips through its repr.
        let mut header = [0u8; ipv6::HEADER_LEN];
        Ipv6Repr::parse(&ip).emit(&mut Ipv6Packet::new_unchecked(&mut header[..]));
        assert_eq!(&header[..], &eth.payload()[..ipv6::HEADER_LEN]);
    }
    // The views on their own, on the bytes with and without the Ethernet
    // header, as if they were any layer.
    for at in [0, 14.min(bytes.len())] {
        let b = &bytes[at..];
        if let Ok(ip) = Ipv6Packet::new_checked(b) {
            if let Ok(upper) = ip.upper_layer() {
                assert!(upper.ext_len <= ip.payload().len());
            }
        }
        for next_header in [ipv6::ext::HOP_BY_HOP, ipv6::ext::FRAGMENT, b.first().copied().unwrap_or(0)] {
            if let Ok(upper) = ipv6::upper_layer(next_header, b) {
                assert!(upper.ext_len <= b.len());
            }
        }
        if let Ok(q) = Quoted::parse(b) {
            assert!(q.l4.len() + ipv6::HEADER_LEN + q.upper.ext_len <= b.len());
        }
        if let Ok(i) = Icmpv6Packet::new_checked(b) {
            let _ = (i.mtu(), i.echo_ident(), Icmpv6Repr::parse(&i), i.quoted(), NdiscRepr::parse(&i));
        }
        assert!(NdOptions::new(b).count() <= b.len() / 8 + 1, "an option walk that does not advance");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway::wire::arp::{ArpRepr, OP_REQUEST};
    use gateway::wire::build;
    use gateway::wire::ethernet::VlanTag;
    use gateway::wire::icmp::Icmpv4Repr;
    use gateway::wire::tcp::{flags, TcpRepr};
    use gateway::wire::udp::UdpRepr;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    /// Valid packets of every kind, as starting points for mutation.
    fn seeds() -> Vec<Vec<u8>> {
        let (client, vip) = (Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(10, 0, 0, 100));
        let tcp = |tag: Option<VlanTag>, options: &[u8], payload: &[u8], flags: u8| {
            let mut frame = build::ipv4(client, vip).dont_frag(false);
            if let Some(tag) = tag {
                frame = frame.vlan(tag);
            }
            frame.tcp(&TcpRepr {
                src_port: 40000,
                dst_port: 80,
                seq_number: 0xffff_ff00,
                ack_number: 0x10,
                flags,
                window_len: 0,
                options,
                payload,
            })
        };
        let syn = tcp(None, &[2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7], b"", flags::SYN);
        let sack = [1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x80];
        let ack = tcp(None, &sack, b"data", flags::ACK);
        let tagged = tcp(Some(VlanTag { pcp: 0, dei: false, vid: 7 }), &sack, b"data", flags::ACK);
        let dns = UdpRepr { src_port: 40000, dst_port: 53, payload: b"\x12\x34\x01\x00" };
        let udp = build::ipv4(client, vip).dont_frag(false).udp(&dns, false);
        let frag_needed = Icmpv4Repr { msg_type: 3, msg_code: 4, rest_of_header: 0, data: &ack[14..] };
        let icmp = build::ipv4(vip, client).dont_frag(false).icmp(&frag_needed);
        let who_has = ArpRepr {
            operation: OP_REQUEST,
            sender_hardware_addr: MacAddr::default(),
            sender_protocol_addr: Ipv4Addr::UNSPECIFIED,
            target_hardware_addr: MacAddr::default(),
            target_protocol_addr: Ipv4Addr::UNSPECIFIED,
        };
        let arp = build::arp(MacAddr::default(), MacAddr::default(), &who_has);
        vec![syn, ack, udp, icmp, tagged, arp]
    }

    /// Valid IPv6 packets of every kind.
    fn seeds_v6() -> Vec<Vec<u8>> {
        use gateway::wire::ipv6::ext;
        let client: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let sack = [1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0x80];
        let syn = build::tcp_frame_v6((client, 40000), (vip, 80), 0xffff_ff00, 0, flags::SYN, &[2, 4, 5, 0xa0], b"");
        let ack = build::tcp_frame_v6((client, 40000), (vip, 80), 1, 2, flags::ACK, &sack, b"data");
        let chain = [
            ext::DEST_OPTS,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
            ext::ROUTING,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
            ip_proto::UDP,
            0,
            4,
            0,
            0,
            0,
            0,
            0,
        ];
        let dns = UdpRepr { src_port: 40000, dst_port: 53, payload: b"\x12\x34\x01\x00" };
        let udp = build::ipv6(client, vip)
            .vlan(VlanTag { pcp: 0, dei: false, vid: 7 })
            .ext_headers(ext::HOP_BY_HOP, &chain)
            .udp(&dns);
        let too_big = build::icmpv6_error(vip, client, 2, 0, 1280, &ack[14..], 60);
        let echo = Icmpv6Repr { msg_type: 128, msg_code: 0, rest_of_header: 0x1234_0001, data: b"ping" };
        let echo = build::ipv6(client, vip).icmpv6(&echo);
        let ns = build::neighbor_solicit(MacAddr([2, 0, 0, 0, 0, 9]), client, vip);
        vec![syn, ack, udp, too_big, echo, ns]
    }

    #[test]
    fn seeds_are_valid_and_exercised() {
        for (i, s) in seeds().into_iter().enumerate() {
            let f = BufFrame::new(&s);
            assert!(classify(&f, STRICT).is_ok(), "seed {i}");
            exercise(&[&[128, 250, 3, 0, 1, 2, 3, 4][..], &s].concat());
        }
        for (i, s) in seeds_v6().into_iter().enumerate() {
            assert!(classify_ipv6_bytes(&s, RxChecksum::default(), STRICT).is_ok(), "ipv6 seed {i}");
            exercise(&[&[128, 250, 3, 0, 1, 2, 3, 4][..], &s].concat());
        }
    }

    /// Writes the seeds, with a few control prefixes, as a cargo-fuzz seed
    /// corpus when `WIRE_FUZZ_SEEDS` names a directory:
    /// `WIRE_FUZZ_SEEDS=fuzz/seeds/classify_rewrite cargo test -p gateway
    /// --no-default-features --test wire_no_panic write_fuzz_seeds`.
    #[test]
    fn write_fuzz_seeds() {
        let Some(dir) = std::env::var_os("WIRE_FUZZ_SEEDS") else { return };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let controls: [[u8; CONTROL]; 3] =
            [[128, 64, 3, 0, 1, 2, 3, 4], [128, 0, 7, 5, 0xff, 0xff, 0xff, 0xf0], [8, 200, 56, 0, 9, 9, 9, 9]];
        for (i, s) in seeds().into_iter().chain(seeds_v6()).enumerate() {
            for (j, c) in controls.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}-{j}")), [&c[..], &s].concat()).unwrap();
            }
        }
    }

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(any::<u8>(), CONTROL),
            proptest::sample::select([seeds(), seeds_v6()].concat()),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            any::<usize>(),
            any::<bool>(),
        )
            .prop_map(|(control, mut packet, flips, cut, do_cut)| {
                for (at, x) in flips {
                    let n = packet.len();
                    packet[at % n] ^= x;
                }
                if do_cut {
                    packet.truncate(cut % (packet.len() + 1));
                }
                [control, packet].concat()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            exercise(&input);
        }

        #[test]
        fn mutated_valid_packets(input in mutated()) {
            exercise(&input);
        }
    }
}
