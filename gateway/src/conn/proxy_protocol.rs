//! A connection's PROXY protocol header: when it goes, and how it shifts the
//! client's sequence space.
//!
//! The header ([`crate::wire::proxy_protocol`]) is `len` bytes the real server
//! reads before the client's first byte, so the server's view of the client's
//! stream is the client's, `len` bytes later: client sequence number `s` is
//! `s + len` at the server. The header itself occupies `[isn + 1, isn + 1 +
//! len)` of the server's view, `isn` being the client's initial sequence number.
//!
//! Which client segment carries it: every segment that starts at `isn + 1`
//! (not a SYN, not a RST) until the server has acknowledged the header. That
//! one rule covers the hard cases:
//! - the ACK completing the handshake starts at `isn + 1` with no data: it
//!   carries the header, so a server that speaks first (SMTP, a banner) gets
//!   its header without waiting for client data;
//! - the client's first data segment, and any retransmission of it, starts
//!   there too: the same header goes again, identical (the server drops the
//!   bytes it already has, as for any retransmission);
//! - a FIN with no data starts there as well;
//! - a SYN carrying data (TCP Fast Open) would put it before the header: the
//!   worker sends the SYN without it, and the client, finding its data not
//!   acknowledged by the SYN-ACK, sends it again after the handshake;
//! - once the server has acknowledged the header (an ACK at or past `isn + 1 +
//!   len`), nothing more carries it: later pure ACKs at `isn + 1` (a client
//!   acknowledging a banner) are only shifted, not turned into duplicates.
//!
//! Every other client segment gets `len` added to `seq`; every server segment
//! gets `len` taken off `ack` and its SACK edges (together with the SYN
//! proxy's deltas, which shift the other direction's numbers). A server ACK
//! inside the header (it has part or none of it) means "none of the client's
//! data": it reaches the client as `isn + 1`.
//!
//! Where the state lives: the connection entry is one 64-byte cache line with
//! no byte to spare, and the SYN proxy's two words hold its own deltas for the
//! connection's life (a service can use both). Growing the entry would cost
//! every connection of every service a second cache line. So the entry keeps
//! one flag bit ("this connection sends a header") and the state (8 bytes) is
//! in a side array of the table, indexed by connection id, which the table
//! allocates only once some service of the snapshot uses the PROXY protocol
//! ([`crate::conn::ConnTable::enable_proxy_headers`]). Connections of other
//! services never touch it, and a gateway without such services pays nothing.
//! IPv6's table (128-byte entries) keeps its connections' state the same way,
//! allocated once an IPv6 service uses the PROXY protocol: the state is the
//! same 8 bytes for either family (a TCP6 v1 line is 104 bytes at most).

use super::state::tcp_flags;
use crate::wire::proxy_protocol::{ProxyAddr, Repr, Version};

const ISN_KNOWN: u8 = 1;
const ACKED: u8 = 2;
const V2: u8 = 4;

/// The PROXY header state of one connection (8 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderState {
    /// The client's initial sequence number + 1, where the header starts.
    start: u32,
    /// The header's length on the wire.
    len: u8,
    bits: u8,
}

/// What a client segment gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Its numbers as they are (a SYN).
    Pass,
    /// The header in front of its payload, `seq` unchanged.
    CarryHeader,
    /// `seq` shifted by this much.
    Shift(u32),
}

/// What a server segment gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    /// Taken off `ack` and the SACK edges.
    pub ack_delta: u32,
    /// The segment's `ack` is inside the header: raise it to this (the end of
    /// the header, the client's `isn + 1` once shifted) first.
    pub raise_ack_to: Option<u32>,
}

impl HeaderState {
    /// The state of a new connection from `client` to `virtual_service`,
    /// of either family (the header's length is all it keeps of them: at
    /// most 104 bytes, a v1 line for IPv6).
    pub fn new<A: ProxyAddr>(version: Version, client: (A, u16), virtual_service: (A, u16)) -> HeaderState {
        let repr = repr(version, client, virtual_service);
        HeaderState { start: 0, len: repr.len() as u8, bits: if version == Version::V2 { V2 } else { 0 } }
    }

    pub fn version(&self) -> Version {
        if self.bits & V2 != 0 {
            Version::V2
        } else {
            Version::V1
        }
    }

    /// The header's length.
    pub fn len(&self) -> u32 {
        u32::from(self.len)
    }

    /// Never empty: a header has at least its signature.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the server has acknowledged the whole header.
    pub fn acked(&self) -> bool {
        self.bits & ACKED != 0
    }

    /// A client segment with sequence number `seq` and TCP flags `flags`.
    #[inline]
    pub fn inbound(&mut self, seq: u32, flags: u8) -> Inbound {
        if flags & tcp_flags::SYN != 0 {
            // The client's SYN (or our SYN to the server, built from the SYN
            // proxy's cookie ACK): the header starts after it.
            self.start = seq.wrapping_add(1);
            self.bits |= ISN_KNOWN;
            return Inbound::Pass;
        }
        if self.bits & ISN_KNOWN == 0 {
            // No SYN seen: a connection installed by the sync, established
            // before it came here ([`HeaderState::established`]).
            return Inbound::Shift(self.len());
        }
        if self.bits & ACKED == 0 && seq == self.start && flags & tcp_flags::RST == 0 {
            return Inbound::CarryHeader;
        }
        Inbound::Shift(self.len())
    }

    /// A server segment acknowledging `ack` (`flags` has ACK set; without it
    /// there is nothing to shift).
    #[inline]
    pub fn outbound(&mut self, ack: u32, flags: u8) -> Outbound {
        let len = self.len();
        if flags & tcp_flags::ACK == 0 {
            return Outbound { ack_delta: 0, raise_ack_to: None };
        }
        if self.bits & (ACKED | ISN_KNOWN) != ISN_KNOWN {
            return Outbound { ack_delta: len, raise_ack_to: None };
        }
        let into = ack.wrapping_sub(self.start);
        if into < len {
            return Outbound { ack_delta: len, raise_ack_to: Some(self.start.wrapping_add(len)) };
        }
        if into < 1 << 31 {
            self.bits |= ACKED;
        }
        Outbound { ack_delta: len, raise_ack_to: None }
    }

    /// What brings the sequence number `seq` of a client segment as the
    /// server received it (quoted by an ICMP error) back to the client's: the
    /// header's own segment kept its number, every other was shifted.
    pub fn quoted_delta(&self, seq: u32) -> u32 {
        let carried = self.bits & ISN_KNOWN != 0 && seq.wrapping_sub(self.start) < self.len();
        if carried {
            0
        } else {
            self.len().wrapping_neg()
        }
    }

    /// A connection that was established elsewhere (a sync record): the
    /// header went long ago, only the shift remains.
    pub fn established(mut self) -> HeaderState {
        self.bits |= ACKED;
        self
    }
}

/// The header of the connection from `client` to `virtual_service`.
pub fn repr<A: ProxyAddr>(version: Version, client: (A, u16), virtual_service: (A, u16)) -> Repr<A> {
    Repr { version, src: client, dst: virtual_service }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::wire::tcp::flags::{ACK, FIN, PSH, RST, SYN};

    const CLIENT: (Ipv4Addr, u16) = (Ipv4Addr::new(192, 168, 1, 10), 40000);
    const VS: (Ipv4Addr, u16) = (Ipv4Addr::new(10, 0, 0, 1), 80);

    #[test]
    fn lengths_follow_the_version_and_the_addresses() {
        assert_eq!(HeaderState::new(Version::V2, CLIENT, VS).len(), 28);
        // "PROXY TCP4 192.168.1.10 10.0.0.1 40000 80\r\n"
        assert_eq!(HeaderState::new(Version::V1, CLIENT, VS).len(), 43);
        assert_eq!(HeaderState::new(Version::V1, CLIENT, VS).version(), Version::V1);
        assert_eq!(HeaderState::new(Version::V2, CLIENT, VS).version(), Version::V2);
        let client6 = (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10), 40000);
        let vs6 = (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 80);
        assert_eq!(HeaderState::new(Version::V2, client6, vs6).len(), 52);
        // "PROXY TCP6 2001:db8::10 2001:db8::1 40000 80\r\n"
        assert_eq!(HeaderState::new(Version::V1, client6, vs6).len(), 46);
        // The longest v1 line still fits the state's byte.
        let full = (Ipv6Addr::from([0xfe; 16]), 65535);
        assert_eq!(HeaderState::new(Version::V1, full, full).len(), 104);
    }

    #[test]
    fn the_header_rides_every_segment_at_the_start_until_acknowledged() {
        let mut s = HeaderState::new(Version::V2, CLIENT, VS);
        let isn = 0xffff_fff0u32;
        assert_eq!(s.inbound(isn, SYN), Inbound::Pass);
        // The server's SYN-ACK acknowledges isn + 1: inside the header, so
        // raised to its end, and the client sees isn + 1.
        let syn_ack = s.outbound(isn.wrapping_add(1), SYN | ACK);
        assert_eq!(syn_ack, Outbound { ack_delta: 28, raise_ack_to: Some(isn.wrapping_add(29)) });
        // The handshake's ACK, then the first data, then its retransmission:
        // all start at isn + 1 and carry the header.
        let start = isn.wrapping_add(1);
        assert_eq!(s.inbound(start, ACK), Inbound::CarryHeader);
        assert_eq!(s.inbound(start, ACK | PSH), Inbound::CarryHeader);
        assert_eq!(s.inbound(start, ACK | PSH), Inbound::CarryHeader);
        // A later segment is shifted; a RST at the start is too (it carries no header).
        assert_eq!(s.inbound(start.wrapping_add(100), ACK), Inbound::Shift(28));
        assert_eq!(s.inbound(start, RST | ACK), Inbound::Shift(28));
        // The server has part of the header: still nothing of the client's.
        assert_eq!(s.outbound(start.wrapping_add(27), ACK).raise_ack_to, Some(start.wrapping_add(28)));
        assert!(!s.acked());
        // The whole header: from now on, shifts only.
        assert_eq!(s.outbound(start.wrapping_add(28), ACK), Outbound { ack_delta: 28, raise_ack_to: None });
        assert!(s.acked());
        assert_eq!(s.inbound(start, ACK), Inbound::Shift(28));
        assert_eq!(s.inbound(start, ACK | FIN), Inbound::Shift(28));
        assert_eq!(s.outbound(start.wrapping_add(28), ACK).raise_ack_to, None);
        // No ACK flag: nothing to shift.
        assert_eq!(s.outbound(0, RST), Outbound { ack_delta: 0, raise_ack_to: None });
    }

    #[test]
    fn a_quoted_segment_goes_back_to_the_clients_numbering() {
        let mut s = HeaderState::new(Version::V2, CLIENT, VS);
        s.inbound(1000, SYN);
        assert_eq!(s.quoted_delta(1001), 0, "the header's own segment kept its number");
        assert_eq!(s.quoted_delta(1001 + 28), 28u32.wrapping_neg());
        assert_eq!(s.quoted_delta(1001 + 5000), 28u32.wrapping_neg());
    }

    #[test]
    fn a_fin_without_data_carries_the_header() {
        let mut s = HeaderState::new(Version::V1, CLIENT, VS);
        assert_eq!(s.inbound(1000, SYN), Inbound::Pass);
        assert_eq!(s.inbound(1001, ACK | FIN), Inbound::CarryHeader);
    }

    #[test]
    fn an_ack_from_before_the_start_does_not_count_as_the_header_acknowledged() {
        let mut s = HeaderState::new(Version::V2, CLIENT, VS);
        s.inbound(5000, SYN);
        // An ack far behind (a stray segment): no raise (it is not inside the
        // header), and the header is not taken as acknowledged.
        assert_eq!(s.outbound(4000, ACK), Outbound { ack_delta: 28, raise_ack_to: None });
        assert!(!s.acked());
    }

    #[test]
    fn a_synced_connection_only_shifts() {
        let mut s = HeaderState::new(Version::V2, CLIENT, VS).established();
        assert_eq!(s.inbound(1, ACK), Inbound::Shift(28));
        assert_eq!(s.outbound(1, ACK), Outbound { ack_delta: 28, raise_ack_to: None });
        // Without even the flag, a connection whose SYN was never seen shifts.
        let mut s = HeaderState::new(Version::V2, CLIENT, VS);
        assert_eq!(s.inbound(1, ACK), Inbound::Shift(28));
    }

    #[test]
    fn the_state_is_eight_bytes() {
        assert_eq!(std::mem::size_of::<HeaderState>(), 8);
    }
}
