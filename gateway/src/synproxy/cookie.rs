//! Keyed SYN cookies: the sequence number of our SYN-ACK authenticates the
//! client's SYN, so its ACK can be validated with no state kept in between.
//!
//! A cookie is 32 bits: the MSS table index in the top two bits, and below
//! them 30 bits of a MAC of the client's SYN: `AES-128(key_c, saddr daddr
//! sport dport isn)`, whose 128 bits are four words, the MSS index choosing
//! the one the cookie carries. `c` is the time counter (64-second periods)
//! and `key_c` the secret of that period. A check reads the index,
//! recomputes the MAC for the current period, then for the previous one,
//! and compares the index's 30 bits. Hence:
//!
//! - forgery: a random ACK passes with probability 2 x 2^-30 = 2^-29 (two
//!   periods tried), the same odds as Linux's construction (8 counter bits
//!   of which 2 values pass, 24 hashed bits of which 4 values pass);
//! - every bit is authenticated: another index names another word of the
//!   MAC, as unknown as the first, so a flipped bit anywhere fails the
//!   check (Linux's index can be nudged by adding to the cookie). The price
//!   is that the top two bits are predictable from the client's MSS: an
//!   off-path attacker still faces 30 unknown bits of the proxied
//!   connection's sequence space, far more than a receive window;
//! - lifetime: a cookie minted in period `c` is accepted through period
//!   `c + 1`, i.e. between 64 and 128 seconds, like Linux's
//!   `MAX_SYNCOOKIE_AGE = 2` of 60-second periods. A client that has not
//!   answered by then retransmits its SYN and gets a fresh cookie. Minting
//!   costs one MAC, checking one (a fresh cookie) or two (last period's,
//!   and every forgery).
//!
//! The MAC. An IPv4 SYN's fields are one 16-byte block, and AES-128 is a
//! pseudo-random function on one block: with the round keys expanded once a
//! period, a cookie is ten AES rounds, which the processor's AES
//! instructions (AES-NI, ARMv8's crypto extension) run as ten instructions.
//! An IPv6 SYN's fields are three blocks, MACed as CBC-MAC, a PRF on
//! messages of one fixed length; each family has keys of its own, so
//! neither length ever meets the other under one key (where CBC-MAC would
//! not be one). The RustCrypto `aes` crate provides the cipher: it picks the
//! processor's instructions at run time and falls back to a constant-time
//! software AES, so every machine mints the same cookies from one seed.
//! With Linux's SipHash-2-4 (its cookies' since 4.13: ten rounds of adds,
//! rotates and xors for 21 bytes) a proxied SYN took 804 instructions
//! through the whole pipeline, with AES 680 (`measure_pipeline.sh`'s
//! `synproxy`).
//!
//! Secrets: one per period and family, derived as `AES-128(master, "sc" f
//! c)` from a 128-bit master seed the control plane hands every worker.
//! Derivation is deterministic, so workers rotate independently (from the
//! time they are given, no syscall, no shared state) and still agree: a
//! cookie minted on one worker validates on any other. Only the current and
//! previous keys are held; a leaked period key is useless two periods later.
//!
//! MSS: the index of the largest entry of the family's table not above the
//! client's MSS: Linux's IPv4 `msstab` (`536, 1300, 1440, 1460`), or its
//! IPv6 one (`1220, 1420, 1440, 8940`: the MTUs 1280, 1480, 1500 and 9000
//! less 60 bytes of headers, `net/ipv6/syncookies.c`). The real server is
//! told that value, never more than the client announced (a client below
//! the table gets its first entry: 536, the RFC 9293 default every IPv4
//! host must accept; 1220, what the IPv6 minimum MTU carries, as in Linux).
//!
//! The family: [`CookieInput`] holds the client's and the service's
//! addresses of either ([`CookieAddr`]).
//!
//! Window scale and SACK-permitted do not fit the cookie; when the client
//! sends timestamps they ride in the low 6 bits of our TSval, as Linux's
//! `cookie_init_timestamp` does, and come back in the TSecr of the ACK:
//! bits 0-3 the client's window-scale shift (15: none), bit 4
//! SACK-permitted, bit 5 ECN (never set: the proxy does not negotiate ECN,
//! see the module doc of [`super`]). These bits are not authenticated, as in
//! Linux: only the holder of a valid cookie can send them, and all they can
//! change is the options of that holder's own connection.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128Enc, Block};

use crate::dpdk::block::{block_of_words, xor_blocks};

/// The MSS values an IPv4 cookie can carry (Linux's `msstab` for IPv4),
/// ascending.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// The MSS values an IPv6 cookie can carry (Linux's `msstab` for IPv6:
/// MTUs 1280, 1480, 1500 and 9000 less 60 bytes of headers), ascending.
pub const MSS_TABLE_V6: [u16; 4] = [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60];

/// `log2` of the counter period in seconds: 64 s.
pub const PERIOD_SHIFT: u32 = 6;

/// Counter periods a cookie stays valid: the one it was minted in and the
/// next.
pub const VALID_PERIODS: u32 = 2;

/// Low bits of our TSval that carry the options.
const TS_OPT_BITS: u32 = 6;
const TS_OPT_MASK: u32 = (1 << TS_OPT_BITS) - 1;
const TS_WSCALE_MASK: u32 = 0x0f;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;

/// The largest window-scale shift (RFC 7323 §2.3).
pub const MAX_WSCALE: u8 = 14;

/// Where the MSS index sits in a cookie; the hash fills the bits below.
const MSS_SHIFT: u32 = 30;
const MAC_MASK: u32 = (1 << MSS_SHIFT) - 1;

/// The fields a cookie is bound to: the client's SYN as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieInput<A = Ipv4Addr> {
    /// The client.
    pub saddr: A,
    /// The virtual service.
    pub daddr: A,
    pub sport: u16,
    pub dport: u16,
    /// The client's initial sequence number (its SYN's `seq`; its ACK's
    /// `seq - 1`).
    pub isn: u32,
}

/// An address family a cookie binds: how its SYN's fields are MACed, and
/// its MSS table. Each family is its own monomorphised copy of
/// [`SynCookies::make`] and [`SynCookies::check`].
pub trait CookieAddr: Copy + fmt::Debug + Eq {
    /// The MSS values a cookie of this family can carry, ascending.
    const MSS_TABLE: [u16; 4];
    /// The MAC of `input` under the period's `keys` (the family's own).
    fn mac(keys: &PeriodKeys, input: &CookieInput<Self>) -> [u8; 16];
}

impl CookieAddr for Ipv4Addr {
    const MSS_TABLE: [u16; 4] = MSS_TABLE;

    /// The fields are one block: the client, the service, the ports and the
    /// client's ISN.
    #[inline(always)]
    fn mac(keys: &PeriodKeys, input: &CookieInput<Ipv4Addr>) -> [u8; 16] {
        let [ports, isn] = ports_and_isn(input);
        encrypt(&keys.v4, block_of_words([input.saddr.octets(), input.daddr.octets(), ports, isn]))
    }
}

impl CookieAddr for Ipv6Addr {
    const MSS_TABLE: [u16; 4] = MSS_TABLE_V6;

    /// CBC-MAC over three blocks: the client, the service, then the ports
    /// and the ISN (zero-padded), the same fields in the same order as
    /// IPv4's.
    #[inline(always)]
    fn mac(keys: &PeriodKeys, input: &CookieInput<Ipv6Addr>) -> [u8; 16] {
        let chain = |mac: [u8; 16], block: [u8; 16]| encrypt(&keys.v6, xor_blocks(mac, block));
        let [ports, isn] = ports_and_isn(input);
        let mac = encrypt(&keys.v6, input.saddr.octets());
        chain(chain(mac, input.daddr.octets()), block_of_words([ports, isn, [0; 4], [0; 4]]))
    }
}

/// The ports and the ISN as the MAC reads them, in network order. The
/// blocks are made by [`block_of_words`] and chained by [`xor_blocks`]:
/// written byte by byte, a block reached the cipher's 16-byte load before
/// its stores had retired, and waited for them (see `dpdk::block`).
#[inline(always)]
fn ports_and_isn<A>(input: &CookieInput<A>) -> [[u8; 4]; 2] {
    let ([s0, s1], [d0, d1]) = (input.sport.to_be_bytes(), input.dport.to_be_bytes());
    [[s0, s1, d0, d1], input.isn.to_be_bytes()]
}

#[inline(always)]
fn encrypt(key: &Aes128Enc, block: [u8; 16]) -> [u8; 16] {
    let mut block = Block::from(block);
    key.encrypt_block(&mut block);
    block.into()
}

/// One period's secrets, one AES key per family (see the module doc: a
/// CBC-MAC key must only ever MAC messages of one length), their round keys
/// expanded.
#[derive(Clone)]
pub struct PeriodKeys {
    v4: Aes128Enc,
    v6: Aes128Enc,
}

impl PeriodKeys {
    /// The keys of period `counter`: `AES-128(master, "sc" f c)`, `f` the
    /// family (4 or 6), distinct blocks under a PRF, so independent keys.
    fn derive(master: &Aes128Enc, counter: u32) -> PeriodKeys {
        let key = |family: u8| {
            let mut block = [0u8; 16];
            block[..3].copy_from_slice(&[b's', b'c', family]);
            block[3..7].copy_from_slice(&counter.to_le_bytes());
            Aes128Enc::new(&Block::from(encrypt(master, block)))
        };
        PeriodKeys { v4: key(4), v6: key(6) }
    }
}

impl fmt::Debug for PeriodKeys {
    // Keys are secrets: never let a log line carry them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeriodKeys(..)")
    }
}

/// Options recovered from a valid cookie and the ACK's TSecr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// The client's MSS, rounded down to an entry of the family's table
    /// ([`MSS_TABLE`], [`MSS_TABLE_V6`]).
    pub mss: u16,
    /// The client's window-scale shift, when window scaling was negotiated.
    pub wscale: Option<u8>,
    /// SACK was negotiated.
    pub sack_permitted: bool,
    /// The client uses timestamps (its ACK carried them).
    pub timestamps: bool,
}

/// Options to record in our TSval (see [`encode_tsval`]): those both the
/// client offered and the SYN-ACK accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TsOptions {
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
}

/// Why an ACK's cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// The cookie matches neither the current nor the previous period:
    /// forged, for another connection, or older than the window.
    Mismatch { cookie: u32, counter: u32 },
    /// The TSecr carries option bits our TSval never has.
    BadTimestampBits { tsecr: u32 },
}

impl fmt::Display for CookieError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CookieError::Mismatch { cookie, counter } => write!(
                f,
                "syn cookie {cookie:#010x} is valid in neither period {counter} nor {} \
                 (forged, another connection's, or expired)",
                counter.wrapping_sub(1)
            ),
            CookieError::BadTimestampBits { tsecr } => {
                write!(f, "timestamp echo {tsecr:#010x} carries option bits no syn cookie encodes")
            }
        }
    }
}

impl std::error::Error for CookieError {}

/// One worker's SYN-cookie state: the master seed and the keys of the
/// current and previous periods. No allocation, no lock, no syscall; every
/// worker owns one, built from the same seed.
#[derive(Clone)]
pub struct SynCookies {
    master: Aes128Enc,
    counter: u32,
    current: PeriodKeys,
    previous: PeriodKeys,
}

impl SynCookies {
    /// State for period 0 (call [`SynCookies::rotate`] with the time before
    /// use). `seed` must be secret and random, and the same on every worker.
    pub fn new(seed: [u8; 16]) -> SynCookies {
        let master = Aes128Enc::new(&Block::from(seed));
        let (current, previous) = (PeriodKeys::derive(&master, 0), PeriodKeys::derive(&master, u32::MAX));
        SynCookies { master, counter: 0, current, previous }
    }

    /// The counter of `now_secs` (seconds on any clock every worker shares).
    #[inline]
    pub fn counter_at(now_secs: u64) -> u32 {
        (now_secs >> PERIOD_SHIFT) as u32
    }

    /// Moves to the period of `now_secs`. Cheap when the period has not
    /// changed (one comparison): call it once per burst. The previous key
    /// stays valid for one period; a jump (or a clock stepped back) derives
    /// both keys afresh.
    #[inline]
    pub fn rotate(&mut self, now_secs: u64) {
        let counter = Self::counter_at(now_secs);
        if counter != self.counter {
            self.rotate_to(counter);
        }
    }

    #[cold]
    fn rotate_to(&mut self, counter: u32) {
        let next = PeriodKeys::derive(&self.master, counter);
        let current = std::mem::replace(&mut self.current, next);
        self.previous = if counter == self.counter.wrapping_add(1) {
            current
        } else {
            PeriodKeys::derive(&self.master, counter.wrapping_sub(1))
        };
        self.counter = counter;
    }

    /// The current period.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The cookie for a SYN whose MSS option is `client_mss` (536 when it
    /// had none).
    #[inline]
    pub fn make<A: CookieAddr>(&self, input: &CookieInput<A>, client_mss: u16) -> u32 {
        let index = mss_index_in(&A::MSS_TABLE, client_mss);
        (index << MSS_SHIFT) | mac_word(A::mac(&self.current, input), index)
    }

    /// Validates the cookie an ACK carries (`ack - 1`; `input.isn` is
    /// `seq - 1`) and recovers the options: the MSS from the cookie, window
    /// scale and SACK from `tsecr`, the ACK's timestamp echo when it has the
    /// option.
    #[inline]
    pub fn check<A: CookieAddr>(
        &self,
        input: &CookieInput<A>,
        cookie: u32,
        tsecr: Option<u32>,
    ) -> Result<Decoded, CookieError> {
        let index = cookie >> MSS_SHIFT;
        let matches = |keys: &PeriodKeys| mac_word(A::mac(keys, input), index) == cookie & MAC_MASK;
        if !matches(&self.current) && !matches(&self.previous) {
            return Err(CookieError::Mismatch { cookie, counter: self.counter });
        }
        let ts = match tsecr {
            Some(tsecr) => decode_tsecr(tsecr)?,
            None => TsOptions::default(),
        };
        Ok(Decoded {
            mss: A::MSS_TABLE[index as usize],
            wscale: ts.wscale,
            sack_permitted: ts.sack_permitted,
            timestamps: tsecr.is_some(),
        })
    }
}

impl fmt::Debug for SynCookies {
    // Keys are secrets: the period is all a log line may show.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynCookies").field("counter", &self.counter).finish_non_exhaustive()
    }
}

/// The MAC bits a cookie with MSS index `index` carries: that word of the
/// MAC, as its low 30 bits.
#[inline(always)]
fn mac_word(mac: [u8; 16], index: u32) -> u32 {
    (u128::from_le_bytes(mac) >> (32 * (index & 3))) as u32 & MAC_MASK
}

/// Whether this processor has the AES instructions the cookies' MAC runs
/// on. Without them the `aes` crate's software AES takes some 4,000
/// instructions a block (callgrind, `aes_force_soft`) against ten, so each
/// SYN the proxy answers costs some seven times what it does with them
/// (`measure_pipeline.sh`'s `synproxy`: 680 instructions).
pub fn hardware_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    let found = std::arch::is_x86_feature_detected!("aes");
    #[cfg(target_arch = "aarch64")]
    let found = std::arch::is_aarch64_feature_detected!("aes");
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let found = false;
    found
}

/// The index of the largest [`MSS_TABLE`] entry not above `mss` (0 below
/// the table).
#[inline]
pub fn mss_index(mss: u16) -> u32 {
    mss_index_in(&MSS_TABLE, mss)
}

/// The index of the largest entry of `table` not above `mss` (0 below it).
#[inline(always)]
fn mss_index_in(table: &[u16; 4], mss: u16) -> u32 {
    // Three comparisons, no loop: the table is fixed.
    u32::from(mss >= table[1]) + u32::from(mss >= table[2]) + u32::from(mss >= table[3])
}

/// Our TSval for a SYN-ACK: the timestamp clock `ts_now` with its low 6
/// bits replaced by `opts`, never ahead of the clock (a TSval from the
/// future would make the client's later PAWS checks against the real
/// clock fail), as Linux's `cookie_init_timestamp`.
#[inline]
pub fn encode_tsval(ts_now: u32, opts: TsOptions) -> u32 {
    let wscale = opts.wscale.map_or(TS_WSCALE_MASK, |w| u32::from(w.min(MAX_WSCALE)));
    let bits = wscale | if opts.sack_permitted { TS_SACK } else { 0 };
    let ts = (ts_now & !TS_OPT_MASK) | bits;
    // ts and ts_now differ only in the low bits, so a plain comparison is
    // the modular one.
    if ts > ts_now {
        ts.wrapping_sub(TS_OPT_MASK + 1)
    } else {
        ts
    }
}

/// The options [`encode_tsval`] put into the TSval the client echoes.
#[inline]
pub fn decode_tsecr(tsecr: u32) -> Result<TsOptions, CookieError> {
    if tsecr & TS_ECN != 0 {
        return Err(CookieError::BadTimestampBits { tsecr });
    }
    let w = tsecr & TS_WSCALE_MASK;
    Ok(TsOptions { wscale: (w != TS_WSCALE_MASK).then_some(w as u8), sack_permitted: tsecr & TS_SACK != 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 16] = *b"0123456789abcdef";

    fn input() -> CookieInput {
        CookieInput {
            saddr: Ipv4Addr::new(192, 168, 1, 10),
            daddr: Ipv4Addr::new(10, 0, 0, 100),
            sport: 40000,
            dport: 80,
            isn: 0x1234_5678,
        }
    }

    fn at(now: u64) -> SynCookies {
        let mut c = SynCookies::new(SEED);
        c.rotate(now);
        c
    }

    #[test]
    fn valid_within_the_window() {
        let minted_at = 1_000_000;
        let cookie = at(minted_at).make(&input(), 1460);
        // Same period, the next, and the last second of the next.
        let period_start = minted_at & !63;
        for now in [minted_at, minted_at + 1, period_start + 64, period_start + 127] {
            assert_eq!(at(now).check(&input(), cookie, None).map(|d| d.mss), Ok(1460), "at {now}");
        }
    }

    #[test]
    fn invalid_after_the_window_and_before_minting() {
        let minted_at = 1_000_000;
        let period_start = minted_at & !63;
        let cookie = at(minted_at).make(&input(), 1460);
        for now in [period_start + 128, period_start + 1000, period_start - 1, 0] {
            let c = at(now);
            assert_eq!(
                c.check(&input(), cookie, None),
                Err(CookieError::Mismatch { cookie, counter: SynCookies::counter_at(now) }),
                "at {now}"
            );
        }
    }

    #[test]
    fn tampering_is_rejected() {
        let c = at(5000);
        let cookie = c.make(&input(), 1440);
        assert!(c.check(&input(), cookie, None).is_ok());
        for bit in 0..32 {
            assert!(c.check(&input(), cookie ^ (1 << bit), None).is_err(), "cookie bit {bit}");
        }
        let tampered = [
            CookieInput { saddr: Ipv4Addr::new(192, 168, 1, 11), ..input() },
            CookieInput { daddr: Ipv4Addr::new(10, 0, 0, 101), ..input() },
            CookieInput { sport: 40001, ..input() },
            CookieInput { dport: 443, ..input() },
            CookieInput { isn: input().isn + 1, ..input() },
            // Addresses swapped: the reverse direction is another flow.
            CookieInput { saddr: input().daddr, daddr: input().saddr, ..input() },
        ];
        for t in tampered {
            assert!(c.check(&t, cookie, None).is_err(), "{t:?}");
        }
        // Another seed (another gateway, or a restarted one).
        let other = {
            let mut o = SynCookies::new(*b"fedcba9876543210");
            o.rotate(5000);
            o
        };
        assert!(other.check(&input(), cookie, None).is_err());
    }

    #[test]
    fn every_mss_entry_round_trips() {
        let c = at(77_777);
        for (i, &mss) in MSS_TABLE.iter().enumerate() {
            assert_eq!(mss_index(mss), i as u32);
            let cookie = c.make(&input(), mss);
            assert_eq!(c.check(&input(), cookie, None).unwrap().mss, mss);
        }
        // Between and beyond the entries: rounded down; below: the minimum.
        for (mss, want) in [(0, 536), (535, 536), (1299, 536), (1300, 1300), (1452, 1440), (1459, 1440), (9000, 1460)] {
            let cookie = c.make(&input(), mss);
            assert_eq!(c.check(&input(), cookie, None).unwrap().mss, want, "client mss {mss}");
        }
    }

    #[test]
    fn every_wscale_and_sack_combination_round_trips() {
        let c = at(1);
        let cookie = c.make(&input(), 1460);
        for ts_now in [0u32, 1, 63, 64, 0x8000_0000, u32::MAX, 0x1234_5678] {
            for wscale in (0..=MAX_WSCALE).map(Some).chain([None]) {
                for sack_permitted in [false, true] {
                    let opts = TsOptions { wscale, sack_permitted };
                    let tsval = encode_tsval(ts_now, opts);
                    // Never ahead of the clock, at most one option block behind.
                    assert!(ts_now.wrapping_sub(tsval) < 2 * (TS_OPT_MASK + 1), "{ts_now} {tsval}");
                    assert_eq!(decode_tsecr(tsval), Ok(opts));
                    let d = c.check(&input(), cookie, Some(tsval)).unwrap();
                    assert_eq!((d.wscale, d.sack_permitted, d.timestamps), (wscale, sack_permitted, true));
                }
            }
        }
        // A shift above 14 is recorded as 14 (RFC 7323 §2.3).
        let tsval = encode_tsval(1000, TsOptions { wscale: Some(15), sack_permitted: false });
        assert_eq!(decode_tsecr(tsval).unwrap().wscale, Some(14));
        // Without timestamps in the ACK nothing beyond the MSS is known.
        let d = c.check(&input(), cookie, None).unwrap();
        assert_eq!(d, Decoded { mss: 1460, wscale: None, sack_permitted: false, timestamps: false });
    }

    #[test]
    fn tsval_bits_are_literal() {
        // wscale 7 and SACK: 0b01_0111 in the low bits of the clock.
        let opts = TsOptions { wscale: Some(7), sack_permitted: true };
        assert_eq!(encode_tsval(0x0001_00ff, opts), 0x0001_00d7);
        // Clock low bits below the options: one block back.
        assert_eq!(encode_tsval(0x0001_0005, opts), 0x0000_ffd7);
        // No window scaling: 0xf.
        assert_eq!(encode_tsval(0x100, TsOptions::default()), 0xcf);
        assert_eq!(decode_tsecr(0x20), Err(CookieError::BadTimestampBits { tsecr: 0x20 }));
        let c = at(1);
        let cookie = c.make(&input(), 536);
        assert_eq!(c.check(&input(), cookie, Some(0x20)), Err(CookieError::BadTimestampBits { tsecr: 0x20 }));
    }

    #[test]
    fn rotation_keeps_the_previous_secret_for_one_period() {
        let mut c = at(640); // period 10
        let old = c.make(&input(), 1300);
        c.rotate(704); // period 11: the old key is now the previous one
        assert_eq!(c.counter(), 11);
        assert!(c.check(&input(), old, None).is_ok());
        let new = c.make(&input(), 1300);
        assert_ne!(new, old, "a new period mints another cookie");
        c.rotate(768); // period 12: the period-10 key is gone
        assert!(c.check(&input(), old, None).is_err());
        assert!(c.check(&input(), new, None).is_ok());
        // Rotating within a period changes nothing.
        c.rotate(830);
        assert!(c.check(&input(), new, None).is_ok());
        // A jump, and a clock stepped back, derive both keys afresh: the
        // result equals a fresh instance at that time.
        for t in [100_000, 640] {
            c.rotate(t);
            let fresh = at(t);
            assert_eq!(c.make(&input(), 1460), fresh.make(&input(), 1460));
            let prev = at(t - 64).make(&input(), 1460);
            assert!(c.check(&input(), prev, None).is_ok(), "previous of {t}");
        }
    }

    #[test]
    fn workers_with_the_same_seed_agree() {
        // One worker rotated step by step, the other started late.
        let mut a = at(0);
        for t in (0..=10 * 64).step_by(64) {
            a.rotate(t);
        }
        let b = at(10 * 64 + 30);
        let cookie = a.make(&input(), 1440);
        assert_eq!(b.check(&input(), cookie, None).map(|d| d.mss), Ok(1440));
        assert_eq!(b.make(&input(), 1440), cookie);
    }

    #[test]
    fn counter_wraps_without_losing_the_window() {
        // 2^32 periods of 64 s are ~8700 years away, but the arithmetic is
        // modular anyway: period 0 follows period u32::MAX.
        let last = u64::from(u32::MAX) << PERIOD_SHIFT;
        let cookie = at(last).make(&input(), 536);
        let next = at(last + 64);
        assert_eq!(next.counter(), 0);
        assert!(next.check(&input(), cookie, None).is_ok());
    }

    #[test]
    fn cookies_spread_over_the_hashed_bits() {
        // Only the MSS index is fixed; the period and the tuple show nowhere.
        let c = at(12345);
        let (mut ones, mut zeros) = (0u32, 0u32);
        for isn in 0..256 {
            let cookie = c.make(&CookieInput { isn, ..input() }, 1460);
            assert_eq!(cookie >> MSS_SHIFT, 3);
            ones |= cookie;
            zeros |= !cookie;
        }
        assert_eq!((ones, zeros), (u32::MAX, MAC_MASK));
    }

    fn input6() -> CookieInput<Ipv6Addr> {
        CookieInput {
            saddr: "2001:db8:1::10".parse().unwrap(),
            daddr: "2001:db8::100".parse().unwrap(),
            sport: 40000,
            dport: 80,
            isn: 0x1234_5678,
        }
    }

    #[test]
    fn ipv6_cookies_check_for_their_own_tuple_only() {
        let c = at(5000);
        let cookie = c.make(&input6(), 1440);
        assert_eq!(c.check(&input6(), cookie, None).map(|d| d.mss), Ok(1440));
        for bit in 0..32 {
            assert!(c.check(&input6(), cookie ^ (1 << bit), None).is_err(), "cookie bit {bit}");
        }
        let other: Ipv6Addr = "2001:db8:1::11".parse().unwrap();
        // The last byte and the first of each address count.
        let first_byte: Ipv6Addr = "3001:db8:1::10".parse().unwrap();
        let tampered = [
            CookieInput { saddr: other, ..input6() },
            CookieInput { saddr: first_byte, ..input6() },
            CookieInput { daddr: "2001:db8::101".parse().unwrap(), ..input6() },
            CookieInput { sport: 40001, ..input6() },
            CookieInput { dport: 443, ..input6() },
            CookieInput { isn: input6().isn + 1, ..input6() },
            CookieInput { saddr: input6().daddr, daddr: input6().saddr, ..input6() },
        ];
        for t in tampered {
            assert!(c.check(&t, cookie, None).is_err(), "{t:?}");
        }
        // Valid through the next period, not after.
        let later = at(5000 + 64);
        assert!(later.check(&input6(), cookie, None).is_ok());
        assert!(at(5000 + 128).check(&input6(), cookie, None).is_err());
        // The same client as an IPv4-mapped address is another input: an
        // IPv4 cookie does not pass as an IPv6 one.
        let v4 = c.make(&input(), 1440);
        let v4in = input();
        let mapped = CookieInput {
            saddr: v4in.saddr.to_ipv6_mapped(),
            daddr: v4in.daddr.to_ipv6_mapped(),
            sport: v4in.sport,
            dport: v4in.dport,
            isn: v4in.isn,
        };
        assert!(c.check(&mapped, v4, None).is_err());
    }

    #[test]
    fn ipv6_cookies_carry_linuxs_ipv6_mss_table() {
        assert_eq!(MSS_TABLE_V6, [1220, 1420, 1440, 8940]);
        let c = at(77_777);
        for (i, &mss) in MSS_TABLE_V6.iter().enumerate() {
            let cookie = c.make(&input6(), mss);
            assert_eq!(cookie >> MSS_SHIFT, i as u32);
            assert_eq!(c.check(&input6(), cookie, None).unwrap().mss, mss);
        }
        // Rounded down; below the table (or no option: 536), the minimum.
        for (mss, want) in
            [(0, 1220), (536, 1220), (1419, 1220), (1440, 1440), (1460, 1440), (8939, 1440), (9000, 8940)]
        {
            let cookie = c.make(&input6(), mss);
            assert_eq!(c.check(&input6(), cookie, None).unwrap().mss, want, "client mss {mss}");
        }
        // The options ride the TSecr as for IPv4.
        let cookie = c.make(&input6(), 1440);
        let opts = TsOptions { wscale: Some(7), sack_permitted: true };
        let d = c.check(&input6(), cookie, Some(encode_tsval(0x1234_5678, opts))).unwrap();
        assert_eq!(d, Decoded { mss: 1440, wscale: Some(7), sack_permitted: true, timestamps: true });
    }

    fn hex(s: &str) -> [u8; 16] {
        std::array::from_fn(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
    }

    #[test]
    fn the_ipv4_mac_is_aes_128_of_the_fields_as_one_block() {
        // FIPS-197 appendix C.1: key 00..0f, plaintext 00112233..ff.
        let key = Aes128Enc::new(&Block::from(hex("000102030405060708090a0b0c0d0e0f")));
        let keys = PeriodKeys { v4: key.clone(), v6: key };
        let fields = CookieInput {
            saddr: Ipv4Addr::new(0x00, 0x11, 0x22, 0x33),
            daddr: Ipv4Addr::new(0x44, 0x55, 0x66, 0x77),
            sport: 0x8899,
            dport: 0xaabb,
            isn: 0xccdd_eeff,
        };
        let mac = Ipv4Addr::mac(&keys, &fields);
        assert_eq!(mac, hex("69c4e0d86a7b0430d8cdb78070b4c55a"));
        // Each MSS index carries its own word, little-endian.
        assert_eq!(mac_word(mac, 0), 0xd8e0_c469 & MAC_MASK);
        assert_eq!(mac_word(mac, 3), 0x5ac5_b470 & MAC_MASK);
    }

    #[test]
    fn the_ipv6_mac_is_cbc_mac_of_three_blocks() {
        // SP 800-38A F.2.1 (CBC-AES128.Encrypt), its IV folded into the first
        // block: the first two ciphertext blocks are the chain after the
        // addresses.
        let key = Aes128Enc::new(&Block::from(hex("2b7e151628aed2a6abf7158809cf4f3c")));
        let keys = PeriodKeys { v4: key.clone(), v6: key.clone() };
        let iv = hex("000102030405060708090a0b0c0d0e0f");
        let fields = CookieInput {
            saddr: Ipv6Addr::from(xor_blocks(hex("6bc1bee22e409f96e93d7e117393172a"), iv)),
            daddr: Ipv6Addr::from(hex("ae2d8a571e03ac9c9eb76fac45af8e51")),
            sport: 0x0102,
            dport: 0x0304,
            isn: 0x0506_0708,
        };
        let after_addresses = hex("5086cb9b507219ee95db113a917678b2");
        let last = hex("01020304050607080000000000000000");
        assert_eq!(Ipv6Addr::mac(&keys, &fields), encrypt(&key, xor_blocks(after_addresses, last)));
        assert_eq!(
            encrypt(&key, xor_blocks(hex("6bc1bee22e409f96e93d7e117393172a"), iv)),
            hex("7649abac8119b246cee98e9b12e9197d")
        );
    }

    #[test]
    fn each_family_and_period_has_a_key_of_its_own() {
        // One MAC input read as both families' first block: an IPv4 SYN's
        // block and an IPv6 client address with the same 16 bytes.
        let c = at(5000);
        let block = hex("c0a8010a0a000064_9c40005012345678".replace('_', "").as_str());
        assert_ne!(encrypt(&c.current.v4, block), encrypt(&c.current.v6, block));
        assert_ne!(encrypt(&c.current.v4, block), encrypt(&c.previous.v4, block));
        // And the IPv4 block is the SYN's fields.
        assert_eq!(Ipv4Addr::mac(&c.current, &input()), encrypt(&c.current.v4, block));
    }

    #[test]
    fn error_messages_name_the_values() {
        let e = CookieError::Mismatch { cookie: 0xdead_beef, counter: 7 };
        assert_eq!(
            e.to_string(),
            "syn cookie 0xdeadbeef is valid in neither period 7 nor 6 (forged, another connection's, or expired)"
        );
        assert_eq!(
            CookieError::BadTimestampBits { tsecr: 0x25 }.to_string(),
            "timestamp echo 0x00000025 carries option bits no syn cookie encodes"
        );
    }
}
