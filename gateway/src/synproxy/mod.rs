//! The SYN proxy: the gateway answers a client's SYN itself with a SYN
//! cookie, and opens the connection to a real server only when the client's
//! ACK proves the handshake (RFC 4987 §3.6 and §3.7; Bernstein's SYN cookies,
//! Linux `net/ipv4/syncookies.c`, Linux's `SYNPROXY` target
//! `net/netfilter/nf_synproxy_core.c`, DPVS `src/ipvs/ip_vs_synproxy.c`).
//! A spoofed SYN costs one SYN-ACK, built in place from the SYN (no
//! allocation, no table entry); the real server never sees it.
//!
//! - [`cookie`]: the cookies. AES-128 as the MAC, because an IPv4 SYN's
//!   fields are one block and the processor's AES instructions make that
//!   block ten instructions (Linux keys its cookies with SipHash-2-4: a
//!   proxied SYN took 804 instructions with it here, 680 with AES; DPVS
//!   computes two MD5 blocks per cookie).
//! - [`handshake`]: the segments the gateway builds in place (SYN-ACK to
//!   the client, SYN to the server, RST) and
//!   [`ProxyDeltas`], the translation the connection applies afterwards.
//! - [`counters`]: what a worker counts.
//!
//! Where things are encoded. Our SYN-ACK's sequence number is the cookie:
//! the MSS index (Linux's table 536/1300/1440/1460 for IPv4,
//! 1220/1420/1440/8940 for IPv6) in its top two bits and 30 bits of the
//! MAC of the client's tuple and ISN under the period's key, the word of it
//! that index names.
//! Both families take the same path, monomorphised: the cookie input and
//! the segments built in place are generic over the address family
//! ([`CookieAddr`], [`HandshakeMeta`]), and each family's connection table
//! names slots of its own handshake slab. When the client sends timestamps, our TSval's low six
//! bits carry the window-scale shift and SACK-permitted as negotiated (the
//! layout of Linux's `cookie_init_timestamp`), and the client's ACK echoes
//! them in its TSecr. Without timestamps, the SYN-ACK offers only the MSS,
//! as Linux's does. ECN is never negotiated: a proxy that accepted it could
//! not make the server accept it too.
//!
//! The window. The counter advances every 64 s and a cookie is accepted in
//! its own period and the next (64 to 128 s), like Linux's two 60-second
//! periods: longer than any client waits for a SYN-ACK before resending
//! its SYN (which gets a fresh cookie), short enough that a captured cookie
//! goes stale. Each period has its own key, derived from one master seed;
//! every worker holds the same seed and derives the same keys from the
//! time it is given, so a cookie minted on one worker validates on another
//! with no shared state. Workers must read the time from one clock: a
//! worker whose clock runs a period behind the minting worker's would
//! reject the cookie (its RTT-long life makes that a boundary case only).
//!
//! What is kept. Nothing per SYN. Per worker: the seed, the counter and
//! two keys ([`SynCookies`]). Per validated connection, from the client's
//! ACK until the server answers: the client's ISN, our cookie, the client's
//! window field and the [`Decoded`] options (enough to rebuild the SYN for
//! a retransmission), and the held client packets; then, for the
//! connection's life, [`ProxyDeltas`]: one `u32` sequence delta and, when
//! both ends use timestamps, one `u32` timestamp delta. Not kept, so not
//! passed on: the client's exact MSS (rounded down to the table), and
//! anything the client sent with its SYN (data, ECN, unknown options).
//!
//! Contracts the configuration must keep, since the client holds what the
//! SYN-ACK said for the whole connection: our MSS at most the servers',
//! our window-scale shift equal to the servers' (the client scales their
//! windows by it; [`ServerSynAck`] reports theirs so a mismatch can be
//! counted), SACK and timestamps offered only if the servers use them. The
//! proxy works in FNAT and NAT only: in DR and TUN the replies bypass the
//! gateway, so the sequence delta cannot be applied.

pub mod cookie;
pub mod counters;
pub mod handshake;
pub mod handshakes;

use std::fmt;

pub use cookie::{CookieAddr, CookieError, CookieInput, Decoded, SynCookies, TsOptions, MSS_TABLE, MSS_TABLE_V6};
pub use counters::SynProxyCounters;
pub use handshake::{
    parse_client_ack, parse_server_synack, reset_in_place, server_syn_in_place, synack_in_place, ClientAck,
    HandshakeError, HandshakeMeta, ProxyDeltas, ServerSynAck, SynAckConfig,
};
pub use handshakes::{Handshake, Handshakes, HELD_PER_HANDSHAKE};

/// What an ACK whose cookie fails gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidAck {
    /// Dropped and counted: a forger learns nothing (Linux's choice).
    Drop,
    /// A RST, as a host answers an ACK to no connection: a real client
    /// whose handshake the gateway forgot (a restart) stops at once.
    Reset,
}

/// How a worker's SYN proxy behaves (the configuration file's `synproxy`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// What the SYN-ACK offers.
    pub synack: SynAckConfig,
    /// SYNs sent again to a silent server (after 1 to 2 s, then 2, 4 ... s) before the
    /// connection is given up and the client reset.
    pub syn_retries: u8,
    pub invalid_ack: InvalidAck,
    /// Handshakes one worker keeps open at once.
    pub handshakes: u32,
    /// The cookies' secret: random, and the same on every worker.
    pub seed: [u8; 16],
}

impl Settings {
    /// The defaults with a fresh random seed.
    pub fn new() -> Settings {
        Settings::with_seed(random_seed())
    }

    /// Linux's defaults for what the SYN-ACK offers (MSS 1460 for Ethernet,
    /// window-scale shift 7, which a Linux server with the classic 6 MB
    /// `tcp_rmem` maximum also uses), with cookies keyed by `seed`.
    pub fn with_seed(seed: [u8; 16]) -> Settings {
        Settings {
            synack: SynAckConfig {
                mss: 1460,
                window: 65535,
                wscale: Some(7),
                sack: true,
                timestamps: true,
                ttl: handshake::DEFAULT_TTL,
            },
            syn_retries: 3,
            invalid_ack: InvalidAck::Drop,
            handshakes: 4096,
            seed,
        }
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::new()
    }
}

impl fmt::Debug for Settings {
    // The seed stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("synack", &self.synack)
            .field("syn_retries", &self.syn_retries)
            .field("invalid_ack", &self.invalid_ack)
            .field("handshakes", &self.handshakes)
            .finish_non_exhaustive()
    }
}

/// 128 bits from the OS's generator (`/dev/urandom`); where that cannot be
/// read, the keys std's `RandomState` draws from the OS, run through its
/// SipHash.
pub fn random_seed() -> [u8; 16] {
    use std::io::Read;
    let mut seed = [0; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut seed)).is_ok() {
        return seed;
    }
    let seeds = crate::conn::HashSeed::random();
    let again = crate::conn::HashSeed::random();
    seed[..8].copy_from_slice(&(seeds.a ^ again.b).to_le_bytes());
    seed[8..].copy_from_slice(&(seeds.b ^ again.a).to_le_bytes());
    seed
}
