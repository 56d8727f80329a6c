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

use std::net::{IpAddr, Ipv4Addr};

use gateway::frame::{BufFrame, ChecksumStatus, Frame, RxChecksum};
use gateway::wire::arp::ArpPacket;
use gateway::wire::classify::{classify, Classified, ClassifyPolicy, Ipv4Meta};
use gateway::wire::MacAddr;
use gateway::xmit::{dr, fnat, icmp_error, nat, tcp_opts, tun};
use gateway::xmit::{DrRewrite, FnatRewrite, IcmpErrorRewrite, NatRewrite, Offload, Toa, ToaOutcome, TunEncap};

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

    let meta = match classify(&received, policy) {
        Ok(Classified::Ipv4(m)) => m,
        Ok(Classified::Arp { l2_len }) => {
            let _ = ArpPacket::new_checked(&bytes[usize::from(l2_len)..])
                .map(|p| (p.operation(), p.sender_protocol_addr()));
            return;
        }
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
    }
    let _ = gateway::wire::icmp_error_inner(&bytes[..bytes.len().min(usize::from(c(7)) * 4)], &meta);
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

    #[test]
    fn seeds_are_valid_and_exercised() {
        for (i, s) in seeds().into_iter().enumerate() {
            let f = BufFrame::new(&s);
            assert!(classify(&f, STRICT).is_ok(), "seed {i}");
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
        for (i, s) in seeds().into_iter().enumerate() {
            for (j, c) in controls.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i}-{j}")), [&c[..], &s].concat()).unwrap();
            }
        }
    }

    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(any::<u8>(), CONTROL),
            proptest::sample::select(seeds()),
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
