//! The proxied handshake, built in place on the frames that trigger it.
//!
//! ```text
//!  client                      gateway                          real server
//!    | SYN isn=I ------------>  |                                    |
//!    | <---- SYN-ACK seq=C ack=I+1   (synack_in_place; C = cookie)   |
//!    | ACK seq=I+1 ack=C+1 ---> |  check the cookie, schedule        |
//!    |                          |  SYN seq=I (server_syn_in_place) ->|  then FNAT/NAT
//!    |                          | <------------- SYN-ACK seq=S ack=I+1
//!    |                          |  (consumed) the client's ACK, ack=S+1 ->|
//!    | <========= data, seq/ack shifted by C - S (ProxyDeltas) =====>|
//! ```
//!
//! Each step rewrites the received frame into the one to send: a SYN
//! becomes its SYN-ACK, the client's ACK becomes the SYN to the server, and
//! a segment no connection wants becomes its RST ([`reset_in_place`]). The
//! server's SYN-ACK needs no answer built: a copy of the client's ACK,
//! shifted by the [`ProxyDeltas`] like every later packet, completes the
//! server's handshake (and carries the TOA in FNAT). The frames built here
//! are whole IPv4/TCP packets with a 20-byte IP header, or IPv6/TCP packets
//! with the 40-byte fixed header ([`HandshakeMeta`] is what differs per
//! family; IP options and extension headers of the received packet are
//! dropped, as is any payload: a SYN's data is not acknowledged, and the
//! payload of the client's ACK travels in that copy).
//!
//! Options in Linux's two handshake layouts are recognised by comparing a
//! few bytes at fixed offsets; any other block is read with the crate's one
//! option walker ([`crate::wire::tcp::TcpOptions`], which `xmit::tcp_opts`
//! edits with too). They are written in Linux's layout (MSS,
//! SACK-permitted in the padding of the timestamps, NOP + window scale).
//! Checksums are computed in full over the 40 to 60 header bytes (there is
//! no payload to sum), or left to the NIC under [`Offload`] with the
//! pseudo-header sum in the TCP field, as everywhere in `xmit`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frame::{Frame, FrameError, L4Offload};
use crate::wire::checksum;
use crate::wire::ethernet;
use crate::wire::tcp::{self, flags, TcpOption, TcpOptions};
use crate::wire::{ip_proto, ipv4, ipv6, DropReason, Error as WireError, Ipv4Meta, Ipv6Meta};
use crate::xmit::{request_offload, request_offload_v6, Offload};

use super::cookie::{encode_tsval, CookieAddr, CookieInput, Decoded, SynCookies, TsOptions, MAX_WSCALE};

/// TTL of the packets the gateway originates (the SYN-ACK, the ACK to the
/// server).
pub const DEFAULT_TTL: u8 = 64;

/// The MSS a host must assume when a SYN carries none (RFC 9293 §3.7.1).
pub const DEFAULT_MSS: u16 = 536;

/// Longest option block built here: MSS 4 + SACK-permitted/timestamps 12 +
/// window scale 4.
const MAX_OPTIONS: usize = 20;

/// What the gateway's SYN-ACK offers. The real servers must agree with it:
/// the client keeps what the SYN-ACK said for the whole connection, and
/// only sequence numbers and timestamps are translated afterwards (Linux's
/// `SYNPROXY` target and DPVS ask the same of their configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynAckConfig {
    /// The MSS we announce over IPv4: at most the servers' MSS. Over IPv6
    /// the SYN-ACK announces the same MTU's MSS, 20 bytes less
    /// ([`HandshakeMeta::MSS_LESS`]), as a host on that link would.
    pub mss: u16,
    /// The window field (never scaled in a SYN-ACK). 0, as DPVS and Linux's
    /// `SYNPROXY` send, keeps the client from sending data before the
    /// server is connected, but then the client needs a window update once
    /// it is; a non-zero window lets data arrive early, to be held until
    /// the server's SYN-ACK.
    pub window: u16,
    /// Our window-scale shift, offered when the client offers scaling. It
    /// must equal the servers' shift: the client scales the servers' window
    /// fields by it. `None`: no window scaling.
    pub wscale: Option<u8>,
    /// Offer SACK when the client does.
    pub sack: bool,
    /// Answer the client's timestamps. Window scale and SACK are carried in
    /// our TSval, so without timestamps neither is offered (as Linux does
    /// when it answers with a cookie).
    pub timestamps: bool,
    pub ttl: u8,
}

/// Why a handshake packet could not be built. The frame is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The frame is shorter than its classification says (a meta from
    /// another frame, or a frame changed since).
    Truncated { needed: usize, len: usize },
    /// Not a TCP packet.
    NotTcp { protocol: u8 },
    /// The TCP data offset is below 5 words or beyond the segment.
    BadDataOffset { data_offset: u8, len: usize },
    /// The segment's flags are not those of the step (a SYN-ACK where a SYN
    /// was expected, a RST, a SYN with FIN...).
    UnexpectedFlags { flags: u8, expected: Step },
    /// A malformed TCP option: no legitimate stack sends one in a handshake.
    BadOption(WireError),
    /// The frame cannot grow to hold the reply's options.
    NoRoom(FrameError),
}

/// The handshake segment a function expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The client's SYN: SYN without ACK, RST or FIN.
    ClientSyn,
    /// The client's ACK of our SYN-ACK: ACK without SYN or RST.
    ClientAck,
    /// The server's SYN-ACK: SYN and ACK, without RST or FIN.
    ServerSynAck,
}

impl Step {
    const fn mask(self) -> u8 {
        match self {
            Step::ClientSyn | Step::ServerSynAck => flags::SYN | flags::ACK | flags::RST | flags::FIN,
            Step::ClientAck => flags::SYN | flags::ACK | flags::RST,
        }
    }

    const fn want(self) -> u8 {
        match self {
            Step::ClientSyn => flags::SYN,
            Step::ClientAck => flags::ACK,
            Step::ServerSynAck => flags::SYN | flags::ACK,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::ClientSyn => "a SYN without ACK, RST or FIN",
            Step::ClientAck => "an ACK without SYN or RST",
            Step::ServerSynAck => "a SYN-ACK without RST or FIN",
        })
    }
}

impl HandshakeError {
    /// The drop counter this error is counted in.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            HandshakeError::Truncated { .. } => DropReason::Truncated,
            HandshakeError::NotTcp { .. } | HandshakeError::UnexpectedFlags { .. } => DropReason::NotRewritable,
            HandshakeError::BadDataOffset { .. } | HandshakeError::BadOption(_) => DropReason::BadTcpHeader,
            HandshakeError::NoRoom(_) => DropReason::NoRoom,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Truncated { needed, len } => {
                write!(f, "frame of {len} bytes is shorter than the {needed} bytes classified")
            }
            HandshakeError::NotTcp { protocol } => write!(f, "ip protocol {protocol} is not tcp"),
            HandshakeError::BadDataOffset { data_offset, len } => {
                write!(f, "tcp data offset {data_offset} does not fit a {len}-byte segment")
            }
            HandshakeError::UnexpectedFlags { flags, expected } => {
                write!(f, "tcp flags {flags:#04x} where {expected} was expected")
            }
            HandshakeError::BadOption(e) => write!(f, "handshake segment with {e}"),
            HandshakeError::NoRoom(e) => write!(f, "frame cannot hold the reply: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The handshake options a segment carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeenOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// TSval and TSecr.
    pub timestamps: Option<(u32, u32)>,
}

/// The fixed TCP header, the options and the payload length of a classified
/// TCP packet, every length checked.
struct Segment<'a> {
    header: &'a [u8; tcp::MIN_HEADER_LEN],
    options: &'a [u8],
}

impl Segment<'_> {
    fn seq(&self) -> u32 {
        u32::from_be_bytes([self.header[4], self.header[5], self.header[6], self.header[7]])
    }
    fn ack(&self) -> u32 {
        u32::from_be_bytes([self.header[8], self.header[9], self.header[10], self.header[11]])
    }
    fn window(&self) -> u16 {
        u16::from_be_bytes([self.header[14], self.header[15]])
    }
    fn flags(&self) -> u8 {
        self.header[tcp::offset::FLAGS]
    }

    fn expect(&self, step: Step) -> Result<(), HandshakeError> {
        let flags = self.flags();
        if flags & step.mask() != step.want() {
            return Err(HandshakeError::UnexpectedFlags { flags, expected: step });
        }
        Ok(())
    }

    /// The handshake options; the walk stops at End-of-List.
    #[inline(always)]
    fn scan(&self) -> Result<SeenOptions, HandshakeError> {
        match linux_layout(self.options) {
            Some(seen) => Ok(seen),
            None => walk(self.options),
        }
    }
}

/// The two option blocks Linux sends in a handshake, recognised at fixed
/// offsets (as Linux's own `tcp_parse_aligned_timestamp` recognises the
/// second): a SYN's MSS, SACK-permitted, timestamps, NOP, window scale
/// (20 bytes), and an ACK's NOP, NOP, timestamps (12 bytes). The generic
/// walk costs ~40 instructions an option, which a SYN flood pays per SYN;
/// these two compare a few bytes. So is no option at all, a flood tool's
/// bare SYN (hping3's): the walk's call alone costs ~30. Anything else is
/// walked.
#[inline(always)]
fn linux_layout(options: &[u8]) -> Option<SeenOptions> {
    use tcp::kind::{MSS, NOP, SACK_PERMITTED, TIMESTAMPS, WINDOW_SCALE};
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    if options.is_empty() {
        return Some(SeenOptions::default());
    }
    if let Ok(o) = <&[u8; 20]>::try_from(options) {
        let shape = [o[0], o[1], o[4], o[5], o[6], o[7], o[16], o[17], o[18]];
        if shape == [MSS, 4, SACK_PERMITTED, 2, TIMESTAMPS, 10, NOP, WINDOW_SCALE, 3] {
            return Some(SeenOptions {
                mss: Some(u16::from_be_bytes([o[2], o[3]])),
                wscale: Some(o[19]),
                sack_permitted: true,
                timestamps: Some((be32(&o[8..12]), be32(&o[12..16]))),
            });
        }
    } else if let Ok(o) = <&[u8; 12]>::try_from(options) {
        if o[..4] == [NOP, NOP, TIMESTAMPS, 10] {
            return Some(SeenOptions { timestamps: Some((be32(&o[4..8]), be32(&o[8..12]))), ..SeenOptions::default() });
        }
    }
    None
}

/// The handshake options, walked.
#[inline(never)]
fn walk(options: &[u8]) -> Result<SeenOptions, HandshakeError> {
    let mut seen = SeenOptions::default();
    for option in TcpOptions::new(options) {
        match option.map_err(HandshakeError::BadOption)?.1 {
            TcpOption::MaxSegmentSize(mss) => seen.mss = Some(mss),
            TcpOption::WindowScale(shift) => seen.wscale = Some(shift),
            TcpOption::SackPermitted => seen.sack_permitted = true,
            TcpOption::Timestamps { tsval, tsecr } => seen.timestamps = Some((tsval, tsecr)),
            _ => {}
        }
    }
    Ok(seen)
}

/// What the handshake builders need of a classified packet's IP layer, per
/// family: its fields, and how a reply's IP header is written. Each family
/// gets its own monomorphised copy of the builders.
pub trait HandshakeMeta: Copy {
    /// The family's address, which the cookie binds.
    type Addr: CookieAddr;
    /// The fixed IP header the builders write.
    const IP_HEADER_LEN: usize;
    /// What the IP header takes beyond IPv4's 20 bytes: the MSS a SYN-ACK
    /// announces is [`SynAckConfig::mss`] less this.
    const MSS_LESS: u16;
    fn protocol(&self) -> u8;
    fn src(&self) -> Self::Addr;
    fn dst(&self) -> Self::Addr;
    fn src_port(&self) -> u16;
    fn dst_port(&self) -> u16;
    fn l2_len(&self) -> usize;
    /// The IP header with its options or extension headers.
    fn l3_len(&self) -> usize;
    /// Where the IP packet ends in the frame.
    fn ip_end(&self) -> usize;
    /// The TTL or hop limit.
    fn ttl(&self) -> u8;
    /// The DSCP of the packet (`data` is its frame).
    fn dscp(&self, data: &[u8]) -> u8;
    /// Writes `reply` over the frame after its Ethernet header, as
    /// [`write_reply`] describes for IPv4.
    fn write_reply<F: Frame>(
        frame: &mut F,
        meta: &mut Self,
        reply: &Reply<Self::Addr>,
        offload: Offload,
    ) -> Result<(), HandshakeError>;

    /// What a cookie for this packet is bound to.
    #[inline(always)]
    fn cookie_input(&self, isn: u32) -> CookieInput<Self::Addr> {
        CookieInput { saddr: self.src(), daddr: self.dst(), sport: self.src_port(), dport: self.dst_port(), isn }
    }
}

impl HandshakeMeta for Ipv4Meta {
    type Addr = Ipv4Addr;
    const IP_HEADER_LEN: usize = ipv4::MIN_HEADER_LEN;
    const MSS_LESS: u16 = 0;
    #[inline(always)]
    fn protocol(&self) -> u8 {
        self.protocol
    }
    #[inline(always)]
    fn src(&self) -> Ipv4Addr {
        self.src
    }
    #[inline(always)]
    fn dst(&self) -> Ipv4Addr {
        self.dst
    }
    #[inline(always)]
    fn src_port(&self) -> u16 {
        self.src_port
    }
    #[inline(always)]
    fn dst_port(&self) -> u16 {
        self.dst_port
    }
    #[inline(always)]
    fn l2_len(&self) -> usize {
        usize::from(self.l2_len)
    }
    #[inline(always)]
    fn l3_len(&self) -> usize {
        usize::from(self.l3_len)
    }
    #[inline(always)]
    fn ip_end(&self) -> usize {
        self.l3_offset() + self.ip_total_len()
    }
    #[inline(always)]
    fn ttl(&self) -> u8 {
        self.ttl
    }
    #[inline(always)]
    fn dscp(&self, data: &[u8]) -> u8 {
        data.get(self.l3_offset() + 1).map_or(0, |tos| tos >> 2)
    }
    #[inline(always)]
    fn write_reply<F: Frame>(
        frame: &mut F,
        meta: &mut Self,
        reply: &Reply<Ipv4Addr>,
        offload: Offload,
    ) -> Result<(), HandshakeError> {
        write_reply(frame, meta, reply, offload)
    }
}

impl HandshakeMeta for Ipv6Meta {
    type Addr = Ipv6Addr;
    const IP_HEADER_LEN: usize = ipv6::HEADER_LEN;
    const MSS_LESS: u16 = (ipv6::HEADER_LEN - ipv4::MIN_HEADER_LEN) as u16;
    fn protocol(&self) -> u8 {
        self.protocol
    }
    fn src(&self) -> Ipv6Addr {
        self.src
    }
    fn dst(&self) -> Ipv6Addr {
        self.dst
    }
    fn src_port(&self) -> u16 {
        self.src_port
    }
    fn dst_port(&self) -> u16 {
        self.dst_port
    }
    fn l2_len(&self) -> usize {
        usize::from(self.l2_len)
    }
    fn l3_len(&self) -> usize {
        usize::from(self.l3_len)
    }
    fn ip_end(&self) -> usize {
        self.l3_offset() + self.ip_total_len()
    }
    fn ttl(&self) -> u8 {
        self.hop_limit
    }
    /// The top six bits of the traffic class, which straddles the first
    /// two bytes.
    fn dscp(&self, data: &[u8]) -> u8 {
        let at = self.l3_offset();
        data.get(at..at + 2).map_or(0, |b| ((b[0] << 4) | (b[1] >> 4)) >> 2)
    }
    fn write_reply<F: Frame>(
        frame: &mut F,
        meta: &mut Self,
        reply: &Reply<Ipv6Addr>,
        offload: Offload,
    ) -> Result<(), HandshakeError> {
        write_reply_v6(frame, meta, reply, offload)
    }
}

/// The TCP segment of a classified frame, or why it is not one.
fn segment<'a, M: HandshakeMeta>(data: &'a [u8], meta: &M) -> Result<Segment<'a>, HandshakeError> {
    if meta.protocol() != ip_proto::TCP {
        return Err(HandshakeError::NotTcp { protocol: meta.protocol() });
    }
    let end = meta.ip_end();
    let len = data.len();
    if meta.l2_len() < ethernet::HEADER_LEN || meta.l3_len() < M::IP_HEADER_LEN {
        return Err(HandshakeError::Truncated { needed: ethernet::HEADER_LEN + M::IP_HEADER_LEN, len });
    }
    let l4_offset = meta.l2_len() + meta.l3_len();
    let l4 = data.get(l4_offset..end).ok_or(HandshakeError::Truncated { needed: end, len })?;
    let (header, rest) = l4
        .split_first_chunk::<{ tcp::MIN_HEADER_LEN }>()
        .ok_or(HandshakeError::Truncated { needed: l4_offset + tcp::MIN_HEADER_LEN, len })?;
    let data_offset = header[tcp::offset::DATA_OFFSET] >> 4;
    let options = (usize::from(data_offset) * 4)
        .checked_sub(tcp::MIN_HEADER_LEN)
        .and_then(|n| rest.get(..n))
        .ok_or(HandshakeError::BadDataOffset { data_offset, len: l4.len() })?;
    Ok(Segment { header, options })
}

/// An option block in Linux's handshake layout, as big-endian 32-bit
/// words: MSS; SACK-permitted (or two NOPs) then timestamps; NOP then
/// window scale. Words past `len` are zero.
#[derive(Debug, Clone, Copy)]
struct OptionBlock {
    words: [u32; MAX_OPTIONS / 4],
    /// Words used.
    len: usize,
}

impl OptionBlock {
    #[inline(always)]
    fn handshake(mss: Option<u16>, sack_permitted: bool, timestamps: Option<(u32, u32)>, wscale: Option<u8>) -> Self {
        use tcp::kind::{MSS, NOP, SACK_PERMITTED, TIMESTAMPS, WINDOW_SCALE};
        let word = |a: u8, b: u8, c: u8, d: u8| u32::from_be_bytes([a, b, c, d]);
        // Whole words at the offsets the layout fixes: a SYN-ACK is built
        // for every SYN of a flood, so no generic emitter here.
        let mut words = [0u32; MAX_OPTIONS / 4];
        let mut n = 0;
        if let Some(mss) = mss {
            words[n] = word(MSS, 4, 0, 0) | u32::from(mss);
            n += 1;
        }
        match timestamps {
            Some((tsval, tsecr)) => {
                // SACK-permitted takes the place of the two NOPs that align
                // the timestamps.
                let (a, b) = if sack_permitted { (SACK_PERMITTED, 2) } else { (NOP, NOP) };
                words[n] = word(a, b, TIMESTAMPS, 10);
                words[n + 1] = tsval;
                words[n + 2] = tsecr;
                n += 3;
            }
            None if sack_permitted => {
                words[n] = word(NOP, NOP, SACK_PERMITTED, 2);
                n += 1;
            }
            None => {}
        }
        if let Some(shift) = wscale {
            words[n] = word(NOP, WINDOW_SCALE, 3, shift);
            n += 1;
        }
        OptionBlock { words, len: n }
    }
}

/// A handshake segment to write over a received frame.
pub struct Reply<A> {
    src: A,
    dst: A,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    dscp: u8,
    ttl: u8,
    options: OptionBlock,
    /// Turn the Ethernet header around (a reply on the receiving port);
    /// otherwise the pipeline addresses the frame when it forwards it.
    swap_macs: bool,
}

/// Writes `reply` as the frame's IPv4 and TCP headers after its Ethernet
/// header (kept, VLAN tag included), sizes the frame to it and updates
/// `meta` to describe it. Resizing comes first: on error nothing is written.
///
/// The headers are 32-bit words computed in registers, both checksums are
/// summed from those words (32-bit big-endian words sum to the same ones'
/// complement as 16-bit ones, see [`checksum`]), and each byte is stored
/// once and never read back: a SYN flood pays this per SYN (measured with
/// `benches/xmit_insns.rs`, path `synack`).
#[inline(always)]
fn write_reply<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv4Meta,
    reply: &Reply<Ipv4Addr>,
    offload: Offload,
) -> Result<(), HandshakeError> {
    let l2 = usize::from(meta.l2_len);
    let tcp_len = tcp::MIN_HEADER_LEN + 4 * reply.options.len;
    let total = ipv4::MIN_HEADER_LEN + tcp_len;
    let new_len = l2 + total;
    let len = frame.len();
    if new_len > len {
        frame.append(new_len - len).map_err(HandshakeError::NoRoom)?;
    } else if new_len < len {
        frame.trim(len - new_len).map_err(HandshakeError::NoRoom)?;
    }

    let (src, dst) = (u32::from(reply.src), u32::from(reply.dst));
    let mut ip = [
        // Version 4, IHL 5; DSCP with ECN 0 (the proxy negotiates no ECN,
        // so nothing it sends is ECT); total length.
        0x4500_0000 | u32::from(reply.dscp) << 18 | total as u32,
        // Ident 0 (RFC 6864: an atomic datagram, DF and unfragmented,
        // needs no unique ID), DF.
        u32::from(ipv4::FLAG_DF),
        // TTL, protocol, checksum 0.
        u32::from(reply.ttl) << 24 | u32::from(ip_proto::TCP) << 16,
        src,
        dst,
    ];
    if !offload.ipv4_checksum {
        ip[2] |= u32::from(checksum::finish(ip.iter().map(|&w| u64::from(w)).sum()));
    }
    let mut th = tcp_words(reply, tcp_len);
    let (tcp_checksum, l4_offload) = if offload.tcp_checksum {
        // DPDK's contract: the folded pseudo-header sum, not inverted.
        (
            checksum::fold(checksum::pseudo_header_v4(
                reply.src.octets(),
                reply.dst.octets(),
                ip_proto::TCP,
                tcp_len as u16,
            )),
            L4Offload::Tcp,
        )
    } else {
        let pseudo = u64::from(src) + u64::from(dst) + u64::from(ip_proto::TCP) + tcp_len as u64;
        let words: u64 = th.iter().map(|&w| u64::from(w)).sum::<u64>()
            + reply.options.words.iter().map(|&w| u64::from(w)).sum::<u64>();
        (checksum::finish(pseudo + words), L4Offload::None)
    };
    th[4] = u32::from(tcp_checksum) << 16;

    let data = frame.data_mut();
    if reply.swap_macs {
        let (dst, src) = data.split_at_mut(6);
        dst.swap_with_slice(&mut src[..6]);
    }
    // The frame was sized to l2 + total above; a frame that does not
    // honour its own length gets nothing written rather than a panic.
    if let Some(out) = data.get_mut(l2..new_len) {
        let (fixed, options) = out.split_at_mut(ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN);
        for (i, w) in ip.iter().chain(&th).enumerate() {
            fixed[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        for (i, w) in reply.options.words[..reply.options.len].iter().enumerate() {
            options[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
    }

    meta.l3_len = ipv4::MIN_HEADER_LEN as u8;
    meta.l4_len = tcp_len as u16;
    meta.ttl = reply.ttl;
    meta.src = reply.src;
    meta.dst = reply.dst;
    meta.src_port = reply.sport;
    meta.dst_port = reply.dport;
    meta.tcp_flags = reply.flags;
    request_offload(frame, meta, offload.ipv4_checksum, l4_offload);
    Ok(())
}

/// [`write_reply`] for IPv6: the fixed 40-byte header (traffic class the
/// reply's DSCP, flow label 0, next header TCP: the received packet's
/// extension headers go), the TCP header and options, the checksum over
/// the IPv6 pseudo-header.
fn write_reply_v6<F: Frame>(
    frame: &mut F,
    meta: &mut Ipv6Meta,
    reply: &Reply<Ipv6Addr>,
    offload: Offload,
) -> Result<(), HandshakeError> {
    let l2 = usize::from(meta.l2_len);
    let tcp_len = tcp::MIN_HEADER_LEN + 4 * reply.options.len;
    let new_len = l2 + ipv6::HEADER_LEN + tcp_len;
    let len = frame.len();
    if new_len > len {
        frame.append(new_len - len).map_err(HandshakeError::NoRoom)?;
    } else if new_len < len {
        frame.trim(len - new_len).map_err(HandshakeError::NoRoom)?;
    }
    let (src, dst) = (reply.src.octets(), reply.dst.octets());
    // Version 6, traffic class (DSCP, ECN 0), flow label 0; payload length,
    // next header, hop limit.
    let head = [
        6 << 28 | u32::from(reply.dscp) << 22,
        (tcp_len as u32) << 16 | u32::from(ip_proto::TCP) << 8 | u32::from(reply.ttl),
    ];
    let mut th = tcp_words(reply, tcp_len);
    let pseudo = checksum::pseudo_header_v6(src, dst, ip_proto::TCP, tcp_len as u32);
    let (tcp_checksum, l4_offload) = if offload.tcp_checksum {
        (checksum::fold(pseudo), L4Offload::Tcp)
    } else {
        let words: u64 = th.iter().map(|&w| u64::from(w)).sum::<u64>()
            + reply.options.words.iter().map(|&w| u64::from(w)).sum::<u64>();
        (checksum::finish(pseudo + words), L4Offload::None)
    };
    th[4] = u32::from(tcp_checksum) << 16;

    let data = frame.data_mut();
    if reply.swap_macs {
        let (dst, src) = data.split_at_mut(6);
        dst.swap_with_slice(&mut src[..6]);
    }
    if let Some(out) = data.get_mut(l2..new_len) {
        let (ip, rest) = out.split_at_mut(ipv6::HEADER_LEN);
        ip[..4].copy_from_slice(&head[0].to_be_bytes());
        ip[4..8].copy_from_slice(&head[1].to_be_bytes());
        ip[8..24].copy_from_slice(&src);
        ip[24..40].copy_from_slice(&dst);
        let (fixed, options) = rest.split_at_mut(tcp::MIN_HEADER_LEN);
        for (i, w) in th.iter().enumerate() {
            fixed[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        for (i, w) in reply.options.words[..reply.options.len].iter().enumerate() {
            options[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
    }

    meta.l3_len = ipv6::HEADER_LEN as u16;
    meta.l4_len = tcp_len as u16;
    meta.protocol = ip_proto::TCP;
    meta.hop_limit = reply.ttl;
    meta.src = reply.src;
    meta.dst = reply.dst;
    meta.src_port = reply.sport;
    meta.dst_port = reply.dport;
    meta.tcp_flags = reply.flags;
    request_offload_v6(frame, meta, l4_offload);
    Ok(())
}

/// The fixed TCP header of `reply`, checksum 0, as big-endian words.
#[inline(always)]
fn tcp_words<A>(reply: &Reply<A>, tcp_len: usize) -> [u32; 5] {
    [
        u32::from(reply.sport) << 16 | u32::from(reply.dport),
        reply.seq,
        reply.ack,
        // Data offset with the reserved bits and AE clear, flags, window.
        ((tcp_len / 4) as u32) << 28 | u32::from(reply.flags) << 16 | u32::from(reply.window),
        // Checksum 0, urgent pointer 0.
        0,
    ]
}

/// Turns a client's SYN into the gateway's SYN-ACK, in place: MACs,
/// addresses and ports swapped, `seq` the cookie, `ack` the client's ISN +
/// 1, our MSS, and, when the client offered them and `cfg` allows, SACK,
/// timestamps (our TSval from `ts_now`, a millisecond clock, carrying the
/// negotiated options) and window scaling; the payload dropped. Returns the
/// cookie. `meta` describes the SYN-ACK afterwards.
#[inline]
pub fn synack_in_place<F: Frame, M: HandshakeMeta>(
    frame: &mut F,
    meta: &mut M,
    cookies: &SynCookies,
    cfg: &SynAckConfig,
    ts_now: u32,
    offload: Offload,
) -> Result<u32, HandshakeError> {
    let (isn, seen) = {
        let seg = segment(frame.data(), meta)?;
        seg.expect(Step::ClientSyn)?;
        (seg.seq(), seg.scan()?)
    };
    let input = meta.cookie_input(isn);
    let cookie = cookies.make(&input, seen.mss.unwrap_or(DEFAULT_MSS));

    let timestamps = seen.timestamps.filter(|_| cfg.timestamps);
    // What the SYN-ACK accepts is what the TSval records, so without
    // timestamps nothing beyond the MSS is negotiated.
    let negotiated = TsOptions {
        wscale: seen.wscale.filter(|_| cfg.wscale.is_some()).map(|w| w.min(MAX_WSCALE)),
        sack_permitted: seen.sack_permitted && cfg.sack,
    };
    let (timestamps, negotiated) = match timestamps {
        Some((tsval, _)) => (Some((encode_tsval(ts_now, negotiated), tsval)), negotiated),
        None => (None, TsOptions::default()),
    };
    let our_wscale = cfg.wscale.filter(|_| negotiated.wscale.is_some()).map(|w| w.min(MAX_WSCALE));
    let reply = Reply {
        src: meta.dst(),
        dst: meta.src(),
        sport: meta.dst_port(),
        dport: meta.src_port(),
        seq: cookie,
        ack: isn.wrapping_add(1),
        flags: flags::SYN | flags::ACK,
        window: cfg.window,
        dscp: 0,
        ttl: cfg.ttl,
        options: OptionBlock::handshake(
            Some(cfg.mss.saturating_sub(M::MSS_LESS)),
            negotiated.sack_permitted,
            timestamps,
            our_wscale,
        ),
        swap_macs: true,
    };
    M::write_reply(frame, meta, &reply, offload)?;
    Ok(cookie)
}

/// What the client's ACK of our SYN-ACK carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAck {
    /// The client's ISN: `seq - 1`.
    pub isn: u32,
    /// Our cookie: `ack - 1`.
    pub cookie: u32,
    /// The window field (in the client's scaled units).
    pub window: u16,
    /// TSval and TSecr, when the client uses timestamps. TSecr is our
    /// SYN-ACK's TSval, options bits included.
    pub timestamps: Option<(u32, u32)>,
}

impl ClientAck {
    /// What the cookie is checked against.
    #[inline(always)]
    pub fn cookie_input<M: HandshakeMeta>(&self, meta: &M) -> CookieInput<M::Addr> {
        meta.cookie_input(self.isn)
    }

    /// Checks the cookie and recovers the options it and the TSecr carry.
    #[inline]
    pub fn check<M: HandshakeMeta>(&self, meta: &M, cookies: &SynCookies) -> Result<Decoded, super::CookieError> {
        cookies.check(&self.cookie_input(meta), self.cookie, self.timestamps.map(|(_, tsecr)| tsecr))
    }
}

/// Reads a client's ACK that may complete a proxied handshake (no
/// connection exists for it yet).
#[inline]
pub fn parse_client_ack<F: Frame, M: HandshakeMeta>(frame: &F, meta: &M) -> Result<ClientAck, HandshakeError> {
    let seg = segment(frame.data(), meta)?;
    seg.expect(Step::ClientAck)?;
    let seen = seg.scan()?;
    Ok(ClientAck {
        isn: seg.seq().wrapping_sub(1),
        cookie: seg.ack().wrapping_sub(1),
        window: seg.window(),
        timestamps: seen.timestamps,
    })
}

/// Turns the client's validated ACK into the SYN the real server gets, in
/// place: still from the client to the virtual service (the pipeline then
/// applies the connection's FNAT or NAT rewrite to it, as to any inbound
/// packet), `seq` the client's ISN, the options the client negotiated with
/// us (MSS from the table, window scale, SACK, and timestamps with the
/// client's current TSval), the client's window unscaled (capped to 16
/// bits), DSCP and TTL kept, payload dropped. MACs are left to the
/// forwarding. Retransmitting the SYN means keeping a copy of this frame,
/// or rebuilding it from `ack` and `decoded`.
#[inline]
pub fn server_syn_in_place<F: Frame, M: HandshakeMeta>(
    frame: &mut F,
    meta: &mut M,
    ack: &ClientAck,
    decoded: &Decoded,
    offload: Offload,
) -> Result<(), HandshakeError> {
    let dscp = {
        let data = frame.data();
        segment(data, meta)?;
        meta.dscp(data)
    };
    let window = match decoded.wscale {
        Some(shift) => (u32::from(ack.window) << shift).min(u32::from(u16::MAX)) as u16,
        None => ack.window,
    };
    let timestamps = ack.timestamps.filter(|_| decoded.timestamps).map(|(tsval, _)| (tsval, 0));
    let reply = Reply {
        src: meta.src(),
        dst: meta.dst(),
        sport: meta.src_port(),
        dport: meta.dst_port(),
        seq: ack.isn,
        ack: 0,
        flags: flags::SYN,
        window,
        dscp,
        ttl: meta.ttl(),
        options: OptionBlock::handshake(Some(decoded.mss), decoded.sack_permitted, timestamps, decoded.wscale),
        swap_macs: false,
    };
    M::write_reply(frame, meta, &reply, offload)
}

/// What the real server's SYN-ACK carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSynAck {
    /// The server's ISN.
    pub isn: u32,
    /// Its acknowledgment: the client's ISN + 1 when it answers our SYN.
    pub ack: u32,
    /// Its unscaled window.
    pub window: u16,
    pub options: SeenOptions,
}

/// Reads the real server's answer to the proxied SYN. The caller compares
/// `ack` with the connection's ISN + 1 before trusting it, and can compare
/// `options.wscale` with [`SynAckConfig::wscale`].
#[inline]
pub fn parse_server_synack<F: Frame, M: HandshakeMeta>(frame: &F, meta: &M) -> Result<ServerSynAck, HandshakeError> {
    let seg = segment(frame.data(), meta)?;
    seg.expect(Step::ServerSynAck)?;
    Ok(ServerSynAck { isn: seg.seq(), ack: seg.ack(), window: seg.window(), options: seg.scan()? })
}

/// Answers a client segment that opens nothing (an ACK whose cookie failed,
/// or the client side of a handshake the server never completed) with a
/// RST, in place and back where it came from (MACs, addresses and ports
/// swapped): `seq` the segment's `ack`, no ACK flag, no options, no payload
/// (RFC 9293 §3.10.7.1, a segment with ACK to a closed port). The client
/// accepts it: its `ack` is the next sequence number the client expects.
#[inline]
pub fn reset_in_place<F: Frame, M: HandshakeMeta>(
    frame: &mut F,
    meta: &mut M,
    ttl: u8,
    offload: Offload,
) -> Result<(), HandshakeError> {
    let ack = segment(frame.data(), meta)?.ack();
    let reply = Reply {
        src: meta.dst(),
        dst: meta.src(),
        sport: meta.dst_port(),
        dport: meta.src_port(),
        seq: ack,
        ack: 0,
        flags: flags::RST,
        window: 0,
        dscp: 0,
        ttl,
        options: OptionBlock::handshake(None, false, None, None),
        swap_macs: true,
    };
    M::write_reply(frame, meta, &reply, offload)
}

/// The translation a proxied connection applies for its whole life once
/// the server's SYN-ACK is in: the client numbers the server's bytes from
/// our cookie `C`, the server from its ISN `S`, and the client's own
/// numbering is untouched (the server's SYN carried the client's ISN).
///
/// - `seq = C - S` (mod 2^32). Server to client: add it to `seq`. Client
///   to server: subtract it from `ack` and from every SACK edge. In `xmit`
///   terms that is the outbound rewrite's `seq_delta` and the inbound
///   rewrite's `ack_delta`. A shift of the client's own sequence space (an
///   FNAT ISN of the gateway's) goes in the other two fields (inbound
///   `seq_delta`, outbound `ack_delta`); should both ever shift one field,
///   the deltas add (mod 2^32).
/// - `ts = T - V` (mod 2^32), when both sides use timestamps, with `T` our
///   SYN-ACK's TSval (the TSecr of the client's ACK) and `V` the server's
///   TSval in its SYN-ACK. Server to client: add it to TSval (the client
///   last saw `T`, and its PAWS check would drop anything older). Client to
///   server: subtract it from TSecr. The client's TSval and the server's
///   TSecr pass unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyDeltas {
    pub seq: u32,
    pub ts: Option<u32>,
}

impl ProxyDeltas {
    /// From our cookie, our SYN-ACK's TSval (`ClientAck::timestamps`'
    /// TSecr) and the server's SYN-ACK.
    pub fn new(cookie: u32, our_tsval: Option<u32>, synack: &ServerSynAck) -> ProxyDeltas {
        ProxyDeltas {
            seq: cookie.wrapping_sub(synack.isn),
            ts: our_tsval.zip(synack.options.timestamps).map(|(ours, (theirs, _))| ours.wrapping_sub(theirs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{BufFrame, TxOffload};
    use crate::synproxy::CookieError;
    use crate::wire::ipv4::Ipv4Packet;
    use crate::wire::tcp::TcpPacket;
    use crate::xmit::test_support::*;
    use crate::xmit::{fnat, FnatRewrite};

    const SEED: [u8; 16] = *b"synproxy-test-k!";
    /// The time the cookies are minted and checked at.
    const NOW: u64 = 1_700_000_000;
    /// Our millisecond timestamp clock.
    const TS_NOW: u32 = 0x00ab_cdef;
    const ISN: u32 = 0x1234_5678;
    const CLIENT_TSVAL: u32 = 0x0001_e240;

    /// The options of a Linux SYN: MSS 1460, SACK-permitted, timestamps
    /// (TSval 123456, TSecr 0), NOP, window scale 7.
    const LINUX_SYN_OPTIONS: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03,
        0x03, 0x07,
    ];

    const CFG: SynAckConfig =
        SynAckConfig { mss: 1452, window: 64240, wscale: Some(9), sack: true, timestamps: true, ttl: 63 };

    fn cookies() -> SynCookies {
        let mut c = SynCookies::new(SEED);
        c.rotate(NOW);
        c
    }

    fn linux_syn() -> Vec<u8> {
        tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &LINUX_SYN_OPTIONS, b"")
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Fills the IPv4 and TCP checksums of an untagged frame.
    fn fill_checksums(b: &mut [u8]) {
        let mut ip = Ipv4Packet::new_unchecked(&mut b[14..34]);
        ip.fill_checksum();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        TcpPacket::new_unchecked(&mut b[34..]).fill_checksum(src, dst);
    }

    /// An independent parser's view of a frame: its checksums, and the TCP
    /// header fields and options.
    fn etherparse_view(b: &[u8]) -> (u32, u32, u16, Vec<etherparse::TcpOptionElement>) {
        let parsed = etherparse::SlicedPacket::from_ethernet(b).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = parsed.net else { panic!("not ipv4") };
        let header = ip.header().to_header();
        assert_eq!(header.calc_header_checksum(), header.header_checksum, "ipv4 checksum");
        let Some(etherparse::TransportSlice::Tcp(t)) = parsed.transport else { panic!("not tcp") };
        assert_eq!(t.calc_checksum_ipv4(header.source, header.destination).unwrap(), t.checksum(), "tcp checksum");
        let options = t.options_iterator().map(|o| o.unwrap()).collect();
        (t.sequence_number(), t.acknowledgment_number(), t.window_size(), options)
    }

    fn synack(
        before: &[u8],
        cfg: &SynAckConfig,
        offload: Offload,
    ) -> (Result<u32, HandshakeError>, BufFrame, Ipv4Meta) {
        let mut meta = meta_of(before);
        let mut f = BufFrame::new(before);
        let r = synack_in_place(&mut f, &mut meta, &cookies(), cfg, TS_NOW, offload);
        (r, f, meta)
    }

    #[test]
    fn golden_synack_to_a_linux_syn() {
        let (r, f, meta) = synack(&linux_syn(), &CFG, Offload::NONE);
        let cookie = r.unwrap();
        #[rustfmt::skip]
        let mut want = vec![
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // MACs swapped
            0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, // 60 bytes, ident 0, DF
            0x3f, 0x06, 0x00, 0x00, // ttl 63, tcp, checksum
            10, 0, 0, 100, 192, 168, 1, 10, // VIP -> client
            0x00, 0x50, 0x9c, 0x40, // 80 -> 40000
            0, 0, 0, 0, // seq: the cookie
            0x12, 0x34, 0x56, 0x79, // ack: ISN + 1
            0xa0, 0x12, 0xfa, 0xf0, // 40-byte header, SYN|ACK, window 64240
            0x00, 0x00, 0x00, 0x00, // checksum, urgent
            0x02, 0x04, 0x05, 0xac, // MSS 1452
            0x04, 0x02, 0x08, 0x0a, 0x00, 0xab, 0xcd, 0xd7, 0x00, 0x01, 0xe2, 0x40, // SACK-perm, TS (wscale 7 | SACK), echo
            0x01, 0x03, 0x03, 0x09, // NOP, window scale 9
        ];
        put32(&mut want, 38, cookie);
        fill_checksums(&mut want);
        assert_eq!(bytes(&f), want);
        assert_checksums_valid(&want);
        assert_eq!(meta, meta_of(&want), "the meta describes the SYN-ACK");
        assert_eq!(f.tx_offload(), TxOffload::default());
        let (seq, ack, window, options) = etherparse_view(&want);
        assert_eq!((seq, ack, window), (cookie, ISN + 1, 64240));
        use etherparse::TcpOptionElement::*;
        assert_eq!(
            options,
            vec![
                MaximumSegmentSize(1452),
                SelectiveAcknowledgementPermitted,
                Timestamp(0x00ab_cdd7, CLIENT_TSVAL),
                Noop,
                WindowScale(9)
            ]
        );
        // The ACK the client answers with validates and gives back its options.
        let input = CookieInput { saddr: CLIENT, daddr: VIP, sport: 40000, dport: 80, isn: ISN };
        let d = cookies().check(&input, cookie, Some(0x00ab_cdd7)).unwrap();
        assert_eq!(d, Decoded { mss: 1460, wscale: Some(7), sack_permitted: true, timestamps: true });
    }

    #[test]
    fn golden_reset_answers_an_ack_where_it_expects() {
        // An ACK with 5 bytes of data and a timestamps option: the RST drops both.
        let opts = [0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2];
        let before =
            tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, 0xc0de_0001, flags::ACK | flags::PSH, &opts, b"hello");
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        reset_in_place(&mut f, &mut meta, 64, Offload::NONE).unwrap();
        #[rustfmt::skip]
        let mut want = vec![
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // MACs swapped
            0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, // 40 bytes, ident 0, DF
            0x40, 0x06, 0x00, 0x00, // ttl 64, tcp, checksum
            10, 0, 0, 100, 192, 168, 1, 10, // VIP -> client
            0x00, 0x50, 0x9c, 0x40, // 80 -> 40000
            0xc0, 0xde, 0x00, 0x01, // seq: the ACK's ack
            0x00, 0x00, 0x00, 0x00, // ack 0
            0x50, 0x04, 0x00, 0x00, // 20-byte header, RST, window 0
            0x00, 0x00, 0x00, 0x00, // checksum, urgent
        ];
        fill_checksums(&mut want);
        assert_eq!(bytes(&f), want);
        assert_eq!(meta, meta_of(&want));
        // Not a TCP segment: refused, untouched.
        let udp = udp_frame((CLIENT, 40000), (VIP, 53), b"x", true);
        let mut meta = meta_of(&udp);
        let mut f = BufFrame::new(&udp);
        assert_eq!(reset_in_place(&mut f, &mut meta, 64, Offload::NONE), Err(HandshakeError::NotTcp { protocol: 17 }));
        assert_eq!(bytes(&f), udp);
    }

    #[test]
    fn without_client_timestamps_only_the_mss_is_offered() {
        // MSS 1400, SACK-permitted, NOP, window scale 7: no timestamps to
        // carry the other two in.
        let opts = [0x02, 0x04, 0x05, 0x78, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07, 0x01, 0x01];
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &opts, b"");
        let (r, f, _) = synack(&before, &CFG, Offload::NONE);
        let cookie = r.unwrap();
        let out = bytes(&f);
        assert_eq!(out.len(), 14 + 20 + 24);
        assert_eq!(&out[54..58], &[0x02, 0x04, 0x05, 0xac]);
        assert_eq!(out[46], 0x60);
        let (_, _, _, options) = etherparse_view(&out);
        assert_eq!(options, vec![etherparse::TcpOptionElement::MaximumSegmentSize(1452)]);
        let input = CookieInput { saddr: CLIENT, daddr: VIP, sport: 40000, dport: 80, isn: ISN };
        assert_eq!(cookies().check(&input, cookie, None).unwrap().mss, 1300);
    }

    #[test]
    fn configuration_limits_what_is_negotiated() {
        // No window scaling and no SACK on our side: neither is offered,
        // and the TSval says so.
        let cfg = SynAckConfig { wscale: None, sack: false, ..CFG };
        let (_, f, _) = synack(&linux_syn(), &cfg, Offload::NONE);
        let out = bytes(&f);
        assert_eq!(
            &out[54..70],
            &[0x02, 0x04, 0x05, 0xac, 0x01, 0x01, 0x08, 0x0a, 0x00, 0xab, 0xcd, 0xcf, 0x00, 0x01, 0xe2, 0x40]
        );
        assert_eq!(out.len(), 70);
        assert_eq!(decode(0x00ab_cdcf), TsOptions { wscale: None, sack_permitted: false });
        // Timestamps off: nothing but the MSS.
        let cfg = SynAckConfig { timestamps: false, ..CFG };
        let (_, f, _) = synack(&linux_syn(), &cfg, Offload::NONE);
        assert_eq!(&bytes(&f)[54..], &[0x02, 0x04, 0x05, 0xac]);
        // A shift above 14 from either side is sent and recorded as 14.
        let mut opts = LINUX_SYN_OPTIONS;
        opts[19] = 20;
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &opts, b"");
        let cfg = SynAckConfig { wscale: Some(15), ..CFG };
        let (_, f, _) = synack(&before, &cfg, Offload::NONE);
        let out = bytes(&f);
        assert_eq!(&out[70..74], &[0x01, 0x03, 0x03, 14]);
        assert_eq!(decode(u32::from_be_bytes([out[62], out[63], out[64], out[65]])).wscale, Some(14));
    }

    fn decode(tsval: u32) -> TsOptions {
        crate::synproxy::cookie::decode_tsecr(tsval).unwrap()
    }

    #[test]
    fn tagged_syn_with_ip_options_and_data() {
        // 802.1Q tag, a 24-byte IP header (router alert), a 4-byte MSS-only
        // option block and 6 bytes of data (a SYN with data is legal).
        let untagged = tcp_frame(
            (CLIENT, 40000),
            (VIP, 80),
            ISN,
            0,
            flags::SYN | flags::ECE | flags::CWR,
            &[2, 4, 5, 0xb4],
            b"hello!",
        );
        let mut b = untagged[..12].to_vec();
        b.extend_from_slice(&[0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
        b.extend_from_slice(&untagged[14..34]);
        b.extend_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        b.extend_from_slice(&untagged[34..]);
        b[18] = 0x46;
        let total = (b.len() - 18) as u16;
        b[20..22].copy_from_slice(&total.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut b[18..42]).fill_checksum();
        let before = b;
        let (r, f, meta) = synack(&before, &CFG, Offload::NONE);
        r.unwrap();
        let out = bytes(&f);
        assert_eq!(out.len(), 18 + 20 + 24, "IP options and data are gone");
        assert_eq!(&out[..18], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00]);
        assert_eq!(out[18], 0x45);
        assert_eq!((meta.l2_len, meta.l3_len, meta.l4_len), (18, 20, 24));
        // No ECE: the proxy does not negotiate ECN.
        assert_eq!(out[18 + 20 + 13], flags::SYN | flags::ACK);
        let parsed = etherparse::SlicedPacket::from_ethernet(&out).unwrap();
        let Some(etherparse::TransportSlice::Tcp(t)) = parsed.transport else { panic!() };
        assert_eq!(t.payload(), b"");
        assert!(Ipv4Packet::new_checked(&out[18..]).unwrap().verify_checksum());
        assert!(TcpPacket::new_checked(&out[38..]).unwrap().verify_checksum(VIP, CLIENT));
    }

    #[test]
    fn a_bare_syn_grows_when_it_can() {
        let before = tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &[], b"");
        assert_eq!(before.len(), 54);
        // No tailroom: refused, frame untouched.
        let mut meta = meta_of(&before);
        let mut f = BufFrame::with_geometry(&before, 128, before.len());
        let r = synack_in_place(&mut f, &mut meta, &cookies(), &CFG, TS_NOW, Offload::NONE);
        assert_eq!(r, Err(HandshakeError::NoRoom(FrameError::NoTailroom { wanted: 4, available: 0 })));
        assert_eq!(bytes(&f), before);
        assert_eq!(meta, meta_of(&before));
        // With room: MSS only, and the client without MSS gets the 536 cookie.
        let (r, f, _) = synack(&before, &CFG, Offload::NONE);
        let cookie = r.unwrap();
        let out = bytes(&f);
        assert_eq!(out.len(), 58);
        assert_checksums_valid(&out);
        let input = CookieInput { saddr: CLIENT, daddr: VIP, sport: 40000, dport: 80, isn: ISN };
        assert_eq!(cookies().check(&input, cookie, None).unwrap().mss, 536);
    }

    #[test]
    fn checksum_offload() {
        let (r, f, _) = synack(&linux_syn(), &CFG, Offload::ALL);
        r.unwrap();
        let out = bytes(&f);
        assert_eq!(&out[24..26], &[0, 0], "DPDK's contract: the IPv4 checksum field holds zero");
        let phdr = checksum::fold(checksum::pseudo_header_v4(VIP.octets(), CLIENT.octets(), 6, 40));
        assert_eq!(u16::from_be_bytes([out[50], out[51]]), phdr);
        assert_eq!(
            f.tx_offload(),
            TxOffload { l2_len: 14, l3_len: 20, ipv4_checksum: true, ipv6: false, l4: L4Offload::Tcp }
        );
        // What the NIC does: both checksums from scratch; then all is valid.
        let mut nic = out.clone();
        fill_checksums(&mut nic);
        assert_checksums_valid(&nic);
        let (_, soft, _) = synack(&linux_syn(), &CFG, Offload::NONE);
        assert_eq!(nic, bytes(&soft), "offloaded and software results are the same packet");
        // IP checksum offload alone.
        let ip_only = Offload { ipv4_checksum: true, tcp_checksum: false, udp_checksum: false };
        let (_, f, _) = synack(&linux_syn(), &CFG, ip_only);
        assert!(TcpPacket::new_checked(&bytes(&f)[34..]).unwrap().verify_checksum(VIP, CLIENT));
        assert_eq!(f.tx_offload().l4, L4Offload::None);
    }

    #[test]
    fn odd_input_is_refused_untouched() {
        let syn = linux_syn();
        let cases: Vec<(Vec<u8>, Option<Ipv4Meta>, HandshakeError)> = vec![
            (
                tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 1, flags::SYN | flags::ACK, &[], b""),
                None,
                HandshakeError::UnexpectedFlags { flags: 0x12, expected: Step::ClientSyn },
            ),
            (
                tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN | flags::FIN, &[], b""),
                None,
                HandshakeError::UnexpectedFlags { flags: 0x03, expected: Step::ClientSyn },
            ),
            (
                tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN | flags::RST, &[], b""),
                None,
                HandshakeError::UnexpectedFlags { flags: 0x06, expected: Step::ClientSyn },
            ),
            (
                // An MSS option of length 3.
                tcp_frame((CLIENT, 40000), (VIP, 80), ISN, 0, flags::SYN, &[2, 3, 5, 1], b""),
                None,
                HandshakeError::BadOption(WireError::BadTcpOption { kind: 2, len: 3 }),
            ),
            (udp_frame((CLIENT, 40000), (VIP, 80), b"x", true), None, HandshakeError::NotTcp { protocol: 17 }),
            (
                syn.clone(),
                Some(Ipv4Meta { l4_len: meta_of(&syn).l4_len + 1, ..meta_of(&syn) }),
                HandshakeError::Truncated { needed: syn.len() + 1, len: syn.len() },
            ),
            (
                syn.clone(),
                Some(Ipv4Meta { l4_len: 19, ..meta_of(&syn) }),
                HandshakeError::Truncated { needed: 54, len: syn.len() },
            ),
            (
                syn.clone(),
                Some(Ipv4Meta { l4_len: 39, ..meta_of(&syn) }),
                HandshakeError::BadDataOffset { data_offset: 10, len: 39 },
            ),
        ];
        for (before, meta, want) in cases {
            let mut meta = meta.unwrap_or_else(|| meta_of(&before));
            let kept = meta;
            let mut f = BufFrame::new(&before);
            let r = synack_in_place(&mut f, &mut meta, &cookies(), &CFG, TS_NOW, Offload::ALL);
            assert_eq!(r, Err(want));
            assert_eq!(bytes(&f), before, "{want}");
            assert_eq!(meta, kept);
            assert_eq!(f.tx_offload(), TxOffload::default());
        }
    }

    /// A client's ACK of our SYN-ACK with timestamps.
    fn client_ack(cookie: u32, tsecr: u32, payload: &[u8]) -> Vec<u8> {
        let mut opts = [0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0];
        put32(&mut opts, 4, CLIENT_TSVAL + 3);
        put32(&mut opts, 8, tsecr);
        tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie.wrapping_add(1), flags::ACK, &opts, payload)
    }

    #[test]
    fn a_forged_or_stale_ack_fails_the_check() {
        let (r, f, _) = synack(&linux_syn(), &CFG, Offload::NONE);
        let cookie = r.unwrap();
        let tsval = u32::from_be_bytes(bytes(&f)[62..66].try_into().unwrap());
        let good = client_ack(cookie, tsval, b"");
        let meta = meta_of(&good);
        let ack = parse_client_ack(&BufFrame::new(&good), &meta).unwrap();
        assert_eq!(ack, ClientAck { isn: ISN, cookie, window: 65535, timestamps: Some((CLIENT_TSVAL + 3, tsval)) });
        assert!(ack.check(&meta, &cookies()).is_ok());
        let forged = client_ack(cookie ^ 0x100, tsval, b"");
        let ack = parse_client_ack(&BufFrame::new(&forged), &meta_of(&forged)).unwrap();
        assert!(matches!(ack.check(&meta_of(&forged), &cookies()), Err(CookieError::Mismatch { .. })));
        let mut later = SynCookies::new(SEED);
        later.rotate(NOW + 128);
        let ack = parse_client_ack(&BufFrame::new(&good), &meta).unwrap();
        assert!(ack.check(&meta, &later).is_err());
        // Not an ACK of a handshake.
        for flags in [flags::SYN | flags::ACK, flags::RST | flags::ACK, 0] {
            let b = tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie.wrapping_add(1), flags, &[], b"");
            assert_eq!(
                parse_client_ack(&BufFrame::new(&b), &meta_of(&b)),
                Err(HandshakeError::UnexpectedFlags { flags, expected: Step::ClientAck })
            );
        }
    }

    const LIP_PORT: u16 = 5001;
    const SERVER_ISN: u32 = 0xfedc_ba98;
    const SERVER_TSVAL: u32 = 0x7700_0001;

    /// The whole proxied handshake on bytes, FNAT rewrites included, then
    /// one data packet each way with the deltas applied.
    #[test]
    fn proxied_handshake_through_fnat() {
        let cookies = cookies();
        // 1. SYN -> SYN-ACK.
        let mut meta = meta_of(&linux_syn());
        let mut f = BufFrame::new(&linux_syn());
        let cookie = synack_in_place(&mut f, &mut meta, &cookies, &CFG, TS_NOW, Offload::NONE).unwrap();
        let our_tsval = u32::from_be_bytes(bytes(&f)[62..66].try_into().unwrap());

        // 2. The client's ACK (window field 600, scaled by its shift 7)
        //    becomes the SYN, which FNAT sends from LIP to the server.
        let before = tcp_frame(
            (CLIENT, 40000),
            (VIP, 80),
            ISN + 1,
            cookie.wrapping_add(1),
            flags::ACK,
            &[1, 1, 8, 10, 0, 1, 0xe2, 0x43, 0, 0xab, 0xcd, 0xd7],
            b"",
        );
        let mut before = before;
        before[48..50].copy_from_slice(&600u16.to_be_bytes());
        fill_checksums(&mut before);
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        let ack = parse_client_ack(&f, &meta).unwrap();
        let decoded = ack.check(&meta, &cookies).unwrap();
        assert_eq!(decoded, Decoded { mss: 1460, wscale: Some(7), sack_permitted: true, timestamps: true });
        server_syn_in_place(&mut f, &mut meta, &ack, &decoded, Offload::NONE).unwrap();
        #[rustfmt::skip]
        let mut want_syn = vec![
            0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, // MACs as received
            0x45, 0x00, 0x00, 0x3c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // ttl kept
            192, 168, 1, 10, 10, 0, 0, 100, // still client -> VIP
            0x9c, 0x40, 0x00, 0x50,
            0x12, 0x34, 0x56, 0x78, // the client's ISN
            0x00, 0x00, 0x00, 0x00,
            0xa0, 0x02, 0xff, 0xff, // SYN, window 600 << 7 capped at 65535
            0x00, 0x00, 0x00, 0x00,
            0x02, 0x04, 0x05, 0xb4, // MSS 1460 from the cookie
            0x04, 0x02, 0x08, 0x0a, 0x00, 0x01, 0xe2, 0x43, 0x00, 0x00, 0x00, 0x00, // SACK-perm, TS (client's, 0)
            0x01, 0x03, 0x03, 0x07, // the client's shift
        ];
        fill_checksums(&mut want_syn);
        assert_eq!(bytes(&f), want_syn);
        assert_eq!(meta, meta_of(&want_syn));
        let inbound = FnatRewrite::inbound(LIP.into(), LIP_PORT, RIP.into(), 8080);
        fnat::rewrite(&mut f, &mut meta, &inbound, Offload::NONE).unwrap();
        let at_server = bytes(&f);
        assert_checksums_valid(&at_server);
        let (seq, ack_no, window, _) = etherparse_view(&at_server);
        assert_eq!((seq, ack_no, window), (ISN, 0, 65535));

        // 3. The server's SYN-ACK.
        let synack_opts = [2, 4, 5, 0xb4, 4, 2, 8, 10, 0x77, 0, 0, 1, 0, 1, 0xe2, 0x43, 1, 3, 3, 9];
        let server_synack =
            tcp_frame((RIP, 8080), (LIP, LIP_PORT), SERVER_ISN, ISN + 1, flags::SYN | flags::ACK, &synack_opts, b"");
        let meta = meta_of(&server_synack);
        let f = BufFrame::new(&server_synack);
        let synack = parse_server_synack(&f, &meta).unwrap();
        assert_eq!(
            synack,
            ServerSynAck {
                isn: SERVER_ISN,
                ack: ISN + 1,
                window: 65535,
                options: SeenOptions {
                    mss: Some(1460),
                    wscale: Some(9),
                    sack_permitted: true,
                    timestamps: Some((SERVER_TSVAL, CLIENT_TSVAL + 3))
                },
            }
        );
        // 4. The SYN-ACK is consumed: the client's own ACK, shifted into the
        //    server's numbering, completes the server's handshake.
        let deltas = ProxyDeltas::new(cookie, ack.timestamps.map(|(_, tsecr)| tsecr), &synack);
        let completing = FnatRewrite { ack_delta: deltas.seq, tsecr_delta: deltas.ts.unwrap(), ..inbound };
        let mut meta = meta_of(&before);
        let mut f = BufFrame::new(&before);
        fnat::rewrite(&mut f, &mut meta, &completing, Offload::NONE).unwrap();
        let (seq, ack_no, window, options) = etherparse_view(&bytes(&f));
        assert_eq!(
            (seq, ack_no, window),
            (ISN + 1, SERVER_ISN + 1, 600),
            "the client's window field, in its own scale"
        );
        assert_eq!(
            options[2],
            etherparse::TcpOptionElement::Timestamp(CLIENT_TSVAL + 3, SERVER_TSVAL),
            "TSecr: the server's TSval"
        );

        // 5. Data both ways with the deltas.
        assert_eq!(deltas.seq, cookie.wrapping_sub(SERVER_ISN));
        assert_eq!(deltas.ts, Some(our_tsval.wrapping_sub(SERVER_TSVAL)));
        assert_eq!(SERVER_TSVAL.wrapping_add(deltas.ts.unwrap()), our_tsval, "the client sees our clock go on");
        // Server -> client: its byte 1 is the client's byte C + 1.
        let reply = tcp_frame((RIP, 8080), (LIP, LIP_PORT), SERVER_ISN + 1, ISN + 1 + 5, flags::ACK, &[], b"HTTP/");
        let outbound =
            FnatRewrite { seq_delta: deltas.seq, ..FnatRewrite::outbound(VIP.into(), 80, CLIENT.into(), 40000) };
        let mut meta = meta_of(&reply);
        let mut f = BufFrame::new(&reply);
        fnat::rewrite(&mut f, &mut meta, &outbound, Offload::NONE).unwrap();
        let (seq, ack_no, _, _) = etherparse_view(&bytes(&f));
        assert_eq!((seq, ack_no), (cookie.wrapping_add(1), ISN + 6));
        // Client -> server: its ACK of byte C + 6 (and a SACK of C+11..C+21)
        // is the server's S + 6.
        let mut sack = [1, 1, 5, 10, 0, 0, 0, 0, 0, 0, 0, 0];
        put32(&mut sack, 4, cookie.wrapping_add(11));
        put32(&mut sack, 8, cookie.wrapping_add(21));
        let data = tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, cookie.wrapping_add(6), flags::ACK, &sack, b"GET /");
        let inbound = FnatRewrite { ack_delta: deltas.seq, ..inbound };
        let mut meta = meta_of(&data);
        let mut f = BufFrame::new(&data);
        fnat::rewrite(&mut f, &mut meta, &inbound, Offload::NONE).unwrap();
        let (seq, ack_no, _, options) = etherparse_view(&bytes(&f));
        assert_eq!((seq, ack_no), (ISN + 1, SERVER_ISN + 6));
        assert_eq!(
            options[2],
            etherparse::TcpOptionElement::SelectiveAcknowledgement(
                (SERVER_ISN + 11, SERVER_ISN + 21),
                [None, None, None]
            )
        );
    }

    #[test]
    fn server_synack_refusals_and_a_server_without_timestamps() {
        for flags in [flags::SYN, flags::SYN | flags::ACK | flags::RST, flags::ACK] {
            let b = tcp_frame((RIP, 8080), (LIP, LIP_PORT), SERVER_ISN, ISN + 1, flags, &[], b"");
            assert_eq!(
                parse_server_synack(&BufFrame::new(&b), &meta_of(&b)),
                Err(HandshakeError::UnexpectedFlags { flags, expected: Step::ServerSynAck })
            );
        }
        let b = tcp_frame(
            (RIP, 8080),
            (LIP, LIP_PORT),
            SERVER_ISN,
            ISN + 1,
            flags::SYN | flags::ACK,
            &[2, 4, 5, 0xb4],
            b"",
        );
        let synack = parse_server_synack(&BufFrame::new(&b), &meta_of(&b)).unwrap();
        assert_eq!(synack.options, SeenOptions { mss: Some(1460), ..SeenOptions::default() });
        // Without the server's timestamps there is no timestamp delta: the
        // client's TSecr then reaches a server that ignores it.
        assert_eq!(ProxyDeltas::new(7, Some(9), &synack), ProxyDeltas { seq: 7u32.wrapping_sub(SERVER_ISN), ts: None });
    }

    #[test]
    fn server_syn_without_timestamps_or_scaling() {
        // The client offered neither: the SYN carries the MSS alone and the
        // client's window as is.
        let ack_frame = tcp_frame((CLIENT, 40000), (VIP, 80), ISN + 1, 0x5555, flags::ACK, &[], b"early data");
        let mut meta = meta_of(&ack_frame);
        let mut f = BufFrame::new(&ack_frame);
        let ack = parse_client_ack(&f, &meta).unwrap();
        let decoded = Decoded { mss: 1300, wscale: None, sack_permitted: false, timestamps: false };
        server_syn_in_place(&mut f, &mut meta, &ack, &decoded, Offload::NONE).unwrap();
        let out = bytes(&f);
        assert_eq!(out.len(), 58, "the data is dropped");
        let (seq, ack_no, window, options) = etherparse_view(&out);
        assert_eq!((seq, ack_no, window), (ISN, 0, 65535));
        assert_eq!(options, vec![etherparse::TcpOptionElement::MaximumSegmentSize(1300)]);
        // SACK without timestamps (not produced by a cookie, but laid out
        // as Linux does).
        let decoded = Decoded { sack_permitted: true, ..decoded };
        let mut meta = meta_of(&ack_frame);
        let mut f = BufFrame::new(&ack_frame);
        server_syn_in_place(&mut f, &mut meta, &ack, &decoded, Offload::NONE).unwrap();
        assert_eq!(&bytes(&f)[54..], &[2, 4, 0x05, 0x14, 1, 1, 4, 2]);
        assert_checksums_valid(&bytes(&f));
        // A scaled window below 65535 is sent exactly: 100 << 2.
        let mut small = ack_frame.clone();
        small[48..50].copy_from_slice(&100u16.to_be_bytes());
        fill_checksums(&mut small);
        let mut meta = meta_of(&small);
        let mut f = BufFrame::new(&small);
        let ack = parse_client_ack(&f, &meta).unwrap();
        let decoded = Decoded { wscale: Some(2), ..decoded };
        server_syn_in_place(&mut f, &mut meta, &ack, &decoded, Offload::NONE).unwrap();
        assert_eq!(etherparse_view(&bytes(&f)).2, 400);
    }

    #[test]
    fn the_linux_layouts_are_recognised_and_nothing_else() {
        let ack_ts = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];
        // And a bare SYN's none.
        for o in [&LINUX_SYN_OPTIONS[..], &ack_ts[..], &[][..]] {
            assert!(linux_layout(o).is_some(), "{o:?}");
            assert_eq!(linux_layout(o).map(Ok), Some(walk(o)));
        }
        // The same options in another order, or one byte off the shape,
        // are walked.
        let reordered = [2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0];
        let mut off_shape = LINUX_SYN_OPTIONS;
        off_shape[17] = 30;
        for o in [&reordered[..], &off_shape[..], &ack_ts[..11], &[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1][..]] {
            assert_eq!(linux_layout(o), None, "{o:?}");
        }
        assert_eq!(
            walk(&reordered).unwrap(),
            walk(&LINUX_SYN_OPTIONS).map(|s| SeenOptions { timestamps: Some((1, 0)), ..s }).unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn the_fast_path_agrees_with_the_walk(
            mut syn in proptest::array::uniform20(proptest::prelude::any::<u8>()),
            mut ack in proptest::array::uniform12(proptest::prelude::any::<u8>()),
            force in proptest::prelude::any::<bool>(),
        ) {
            if force {
                for i in [0, 1, 4, 5, 6, 7, 16, 17, 18] {
                    syn[i] = LINUX_SYN_OPTIONS[i];
                }
                ack[..4].copy_from_slice(&[1, 1, 8, 10]);
            }
            for o in [&syn[..], &ack[..]] {
                match linux_layout(o) {
                    Some(seen) => proptest::prop_assert_eq!(Ok(seen), walk(o)),
                    None => proptest::prop_assert!(!force),
                }
            }
        }
    }

    #[test]
    fn error_messages_name_the_values() {
        let e = HandshakeError::UnexpectedFlags { flags: 0x12, expected: Step::ClientSyn };
        assert_eq!(e.to_string(), "tcp flags 0x12 where a SYN without ACK, RST or FIN was expected");
        assert_eq!(e.drop_reason(), DropReason::NotRewritable);
        let e = HandshakeError::BadDataOffset { data_offset: 10, len: 39 };
        assert_eq!(e.to_string(), "tcp data offset 10 does not fit a 39-byte segment");
        assert_eq!(e.drop_reason(), DropReason::BadTcpHeader);
        let e = HandshakeError::BadOption(WireError::BadTcpOption { kind: 2, len: 3 });
        assert_eq!(e.to_string(), "handshake segment with bad tcp option kind 2 with length 3");
        assert_eq!(HandshakeError::NotTcp { protocol: 17 }.to_string(), "ip protocol 17 is not tcp");
        assert_eq!(
            HandshakeError::NoRoom(FrameError::NoTailroom { wanted: 4, available: 0 }).drop_reason(),
            DropReason::NoRoom
        );
    }

    /// An IPv6 frame from `src` to `dst` with a hop-by-hop header (PadN)
    /// before TCP and DSCP 10 in the traffic class.
    fn v6_segment(
        src: (Ipv6Addr, u16),
        dst: (Ipv6Addr, u16),
        seq: u32,
        ack: u32,
        flags: u8,
        options: &[u8],
    ) -> Vec<u8> {
        use crate::wire::ipv6::ext;
        let chain = [ip_proto::TCP, 0, 1, 4, 0, 0, 0, 0];
        let mut b = crate::wire::build::ipv6(src.0, dst.0).ext_headers(ext::HOP_BY_HOP, &chain).tcp(&tcp::TcpRepr {
            src_port: src.1,
            dst_port: dst.1,
            seq_number: seq,
            ack_number: ack,
            flags,
            window_len: 64800,
            options,
            payload: b"",
        });
        // Traffic class 0x28: DSCP 10, ECN 0.
        b[14] = 0x62;
        b[15] = 0x80 | (b[15] & 0x0f);
        b
    }

    #[test]
    fn over_ipv6_the_segments_get_the_fixed_header_the_v6_mss_and_the_v6_pseudo_header() {
        use crate::wire::ipv6::Ipv6Packet;
        let syn = v6_segment((CLIENT6, 40000), (VIP6, 80), ISN, 0, flags::SYN, &LINUX_SYN_OPTIONS);
        let (mut f, mut meta) = (BufFrame::new(&syn), meta_v6_of(&syn));
        let cookie = synack_in_place(&mut f, &mut meta, &cookies(), &CFG, TS_NOW, Offload::NONE).unwrap();
        let out = f.data().to_vec();
        assert_checksums_valid_v6(&out);
        assert_eq!(meta, meta_v6_of(&out), "meta describes the SYN-ACK");
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        // The extension header is gone, the traffic class is 0.
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.next_header(), ip.hop_limit()),
            (VIP6, CLIENT6, ip_proto::TCP, 63)
        );
        assert_eq!(&out[14..16], &[0x60, 0]);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.seq_number(), tcp.ack_number(), tcp.flags()), (cookie, ISN + 1, flags::SYN | flags::ACK));
        assert_eq!(cookie >> 30, 2, "the client's 1460 rounds to 1440 in the IPv6 table");
        // Our 1452 (IPv4) is 1432 over IPv6: the same MTU.
        let mss = TcpOptions::new(tcp.options()).find_map(|o| match o.unwrap().1 {
            TcpOption::MaxSegmentSize(m) => Some(m),
            _ => None,
        });
        assert_eq!(mss, Some(1432));
        let has = |want: TcpOption| TcpOptions::new(tcp.options()).any(|o| o.unwrap().1 == want);
        assert!(has(TcpOption::SackPermitted) && has(TcpOption::WindowScale(9)), "SACK and our shift offered");
        let our_tsval = TcpOptions::new(tcp.options())
            .find_map(|o| match o.unwrap().1 {
                TcpOption::Timestamps { tsval, .. } => Some(tsval),
                _ => None,
            })
            .unwrap();

        // The client's ACK: valid for its own tuple, rebuilt as the server's
        // SYN with the client's DSCP and the options the cookie carried.
        let mut ts = [1, 1, 8, 10, 0, 1, 0xe2, 0x41, 0, 0, 0, 0];
        ts[8..].copy_from_slice(&our_tsval.to_be_bytes());
        let ack = v6_segment((CLIENT6, 40000), (VIP6, 80), ISN + 1, cookie + 1, flags::ACK, &ts);
        let (mut f, mut meta) = (BufFrame::new(&ack), meta_v6_of(&ack));
        let client_ack = parse_client_ack(&f, &meta).unwrap();
        let decoded = client_ack.check(&meta, &cookies()).unwrap();
        assert_eq!(decoded, Decoded { mss: 1440, wscale: Some(7), sack_permitted: true, timestamps: true });
        let mut other = meta;
        other.src_port = 40001;
        assert!(matches!(client_ack.check(&other, &cookies()), Err(CookieError::Mismatch { .. })));
        server_syn_in_place(&mut f, &mut meta, &client_ack, &decoded, Offload::NONE).unwrap();
        let out = f.data().to_vec();
        assert_checksums_valid_v6(&out);
        assert_eq!(meta, meta_v6_of(&out));
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr(), ip.next_header(), ip.hop_limit()),
            (CLIENT6, VIP6, ip_proto::TCP, 64)
        );
        assert_eq!(&out[14..16], &[0x62, 0x80], "the client's DSCP kept");
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.seq_number(), tcp.flags()), (ISN, flags::SYN));

        // A RST for the same ACK, back to the client in our numbering.
        let (mut f, mut meta) = (BufFrame::new(&ack), meta_v6_of(&ack));
        reset_in_place(&mut f, &mut meta, 64, Offload::NONE).unwrap();
        let out = f.data().to_vec();
        assert_checksums_valid_v6(&out);
        let ip = Ipv6Packet::new_checked(&out[14..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (VIP6, CLIENT6));
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((tcp.seq_number(), tcp.flags()), (cookie + 1, flags::RST));
    }
}
