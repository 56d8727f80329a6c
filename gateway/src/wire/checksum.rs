//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Full computation is for input validation, for building the few packets the
//! gateway originates (ICMP errors) and for tests. The forwarding path never
//! sums a payload: every rewrite records what it changed in a [`Delta`] and
//! applies it to the checksum it found, which is what RFC 1624 (eqn. 3)
//! describes: `HC' = ~(~HC + ~m + m')`.
//!
//! Values are summed as big-endian numbers taken from the wire bytes. Summing
//! 32-bit words into a `u64` and folding at the end is the same ones'
//! complement sum as summing 16-bit words (2^16 ≡ 1 modulo 2^16 - 1), and it
//! halves the additions; a 32-bit field can therefore be replaced in a
//! `Delta` with one call. A field that starts at an odd offset from the
//! beginning of the checksummed data contributes its bytes swapped (RFC 1071
//! §2(B)); [`Delta::replace_bytes`] takes the parity into account so TCP
//! options at any alignment can be edited.

/// Partial ones' complement sum of `data` as big-endian 16-bit words (a
/// trailing odd byte is padded with zero), not yet folded.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = rest.chunks_exact(2);
    for w in &mut tail {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let Some(&last) = tail.remainder().first() {
        acc += u64::from(last) << 8;
    }
    acc
}

/// Folds a partial sum to 16 bits with end-around carry. A non-zero sum never
/// folds to zero, so "negative zero" (0xffff) is what a valid packet sums to.
#[inline]
pub fn fold(acc: u64) -> u16 {
    // Ones' complement addition of the halves: an add and an add-with-carry.
    let (s, carry) = (acc as u32).overflowing_add((acc >> 32) as u32);
    let s = s + u32::from(carry);
    let (s, carry) = (s as u16).overflowing_add((s >> 16) as u16);
    s + u16::from(carry)
}

/// Ones' complement sum of `data` read as native-endian words. It is the
/// byte-swapped big-endian sum on little-endian machines, so it is only
/// good for a test against negative zero (0xffff either way), which is what
/// [`verify_ipv4_header`] needs, and for the native-endian [`Delta`].
#[inline]
fn sum_ne(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = rest.chunks_exact(2);
    for w in &mut tail {
        acc += u64::from(u16::from_ne_bytes([w[0], w[1]]));
    }
    if let Some(&last) = tail.remainder().first() {
        acc += u64::from(u16::from_ne_bytes([last, 0]));
    }
    acc
}

/// True when an IPv4 header (20 to 60 bytes) has a right checksum. The
/// fixed 20 bytes are summed as five unrolled native-endian words: this runs
/// for every received packet.
#[inline(always)]
pub fn verify_ipv4_header(header: &[u8]) -> bool {
    match header.split_first_chunk::<20>() {
        Some((fixed, options)) => verify_ipv4_header_parts(fixed, options),
        None => false,
    }
}

/// [`verify_ipv4_header`] on a header split into its fixed part and options.
#[inline(always)]
pub fn verify_ipv4_header_parts(fixed: &[u8; 20], options: &[u8]) -> bool {
    let w = |i: usize| u64::from(u32::from_ne_bytes([fixed[i], fixed[i + 1], fixed[i + 2], fixed[i + 3]]));
    let mut acc = w(0) + w(4) + w(8) + w(12) + w(16);
    if !options.is_empty() {
        acc += sum_ne(options);
    }
    is_negative_zero(acc)
}

/// `fold(acc) == 0xffff`, without the fold: the fold keeps a sum modulo
/// 0xffff (2^16 ≡ 1) and takes no non-zero sum to zero, so the sums that
/// fold to negative zero are the non-zero multiples of 0xffff. Multiplied by
/// the inverse of 0xffff modulo 2^64 (0xffff is odd), the multiples of 0xffff
/// are exactly the products up to `u64::MAX / 0xffff`, and zero alone goes to
/// zero: one multiplication and one comparison (`measure_pipeline.sh`: every
/// IPv4 packet whose header is verified in software 4 instructions fewer
/// than with the fold).
#[inline(always)]
fn is_negative_zero(acc: u64) -> bool {
    const MULTIPLES: u64 = u64::MAX / 0xffff;
    acc.wrapping_mul(INVERSE_OF_FFFF).wrapping_sub(1) < MULTIPLES
}

/// The inverse of 0xffff modulo 2^64, by Newton's iteration (each step
/// doubles the bits that are right; 0xffff is its own inverse modulo 2^3).
const INVERSE_OF_FFFF: u64 = {
    let mut inv: u64 = 0xffff;
    let mut i = 0;
    while i < 5 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(0xffff_u64.wrapping_mul(inv)));
        i += 1;
    }
    inv
};

/// The checksum to store for data summing to `acc` (with the checksum field
/// taken as zero).
#[inline]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// The checksum of `data` (its checksum field must hold zero).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// True when `data`, checksum field included, plus `extra` (a pseudo-header
/// sum, or 0) sums to negative zero, i.e. the stored checksum is right.
pub fn verify(data: &[u8], extra: u64) -> bool {
    fold(sum(data) + extra) == 0xffff
}

/// Sum of the IPv4 pseudo-header TCP and UDP checksums cover (RFC 793, 768).
#[inline]
pub fn pseudo_header_v4(src: [u8; 4], dst: [u8; 4], protocol: u8, l4_len: u16) -> u64 {
    u64::from(u32::from_be_bytes(src)) + u64::from(u32::from_be_bytes(dst)) + u64::from(protocol) + u64::from(l4_len)
}

/// Sum of the IPv6 pseudo-header that TCP, UDP and ICMPv6 checksums cover
/// (RFC 8200 §8.1): both addresses, the upper-layer length as 32 bits and
/// the next header (the upper-layer protocol, not an extension header's).
#[inline]
pub fn pseudo_header_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, l4_len: u32) -> u64 {
    sum(&src) + sum(&dst) + u64::from(l4_len >> 16) + u64::from(l4_len & 0xffff) + u64::from(next_header)
}

/// The change made to checksummed data, accumulated field by field and applied
/// once (RFC 1624 eqn. 3). Cheap to copy: the same address change feeds the
/// IPv4 header checksum and the TCP/UDP pseudo-header.
///
/// Internally the sum is kept in native byte order (RFC 1071 §2(B): the
/// ones' complement sum commutes with byte swapping), so fields go in and
/// the checksum comes out as wire bytes with no byte swaps on the fast path.
/// The `u16`/`u32` methods take big-endian values for readability
/// elsewhere; the compiler reduces them to the same code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u64);

impl Delta {
    pub const fn new() -> Self {
        Delta(0)
    }

    /// True when nothing was recorded.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// A 2-byte field at an even offset changed from `old` to `new`.
    #[inline(always)]
    pub fn replace2(&mut self, old: [u8; 2], new: [u8; 2]) {
        self.0 += u64::from(!u16::from_ne_bytes(old)) + u64::from(u16::from_ne_bytes(new));
    }

    /// A 4-byte field at an even offset changed from `old` to `new`.
    #[inline(always)]
    pub fn replace4(&mut self, old: [u8; 4], new: [u8; 4]) {
        self.0 += u64::from(!u32::from_ne_bytes(old)) + u64::from(u32::from_ne_bytes(new));
    }

    /// A 16-byte field at an even offset changed from `old` to `new`: an
    /// IPv6 address, in its header and in the pseudo-header of TCP, UDP and
    /// ICMPv6 at once, as [`replace4`](Self::replace4) is for IPv4.
    ///
    /// Taken as two 64-bit words of each address, in whatever order the
    /// machine's byte order gives them (the sum does not care), summed with
    /// the end-around carry of one's complement arithmetic (a carry out of
    /// bit 63 is worth 1, as 2^64 is 1 modulo 2^16 - 1), then folded once
    /// into the accumulator, which so stays as small as the other changes
    /// assume: three add-with-carry steps instead of eight shifted 32-bit
    /// additions.
    #[inline(always)]
    pub fn replace_ipv6_addr(&mut self, old: [u8; 16], new: [u8; 16]) {
        let (old, new) = (u128::from_ne_bytes(old), u128::from_ne_bytes(new));
        let mut words = !(old as u64);
        for word in [!((old >> 64) as u64), new as u64, (new >> 64) as u64] {
            let (sum, carry) = words.overflowing_add(word);
            // With a carry out, `sum` is at most 2^64 - 2: adding 1 cannot wrap.
            words = sum + u64::from(carry);
        }
        self.0 += (words & 0xffff_ffff) + (words >> 32);
    }

    /// The first byte of a 2-byte field at an even offset went down by one
    /// (a TTL decremented from at least 1): the same change whatever the
    /// field held, `!old + (old - one)`, so the field need not be read.
    #[inline(always)]
    pub fn decrement_first_byte(&mut self) {
        self.0 += u64::from(!u16::from_ne_bytes([1, 0]));
    }

    /// A 16-bit field at an even offset changed from `old` to `new`.
    #[inline(always)]
    pub fn replace16(&mut self, old: u16, new: u16) {
        self.replace2(old.to_be_bytes(), new.to_be_bytes());
    }

    /// A 32-bit field at an even offset changed from `old` to `new`.
    #[inline(always)]
    pub fn replace32(&mut self, old: u32, new: u32) {
        self.replace4(old.to_be_bytes(), new.to_be_bytes());
    }

    /// Bytes starting at an offset of parity `odd` changed from `old` to
    /// `new` (same length).
    pub fn replace_bytes(&mut self, odd: bool, old: &[u8], new: &[u8]) {
        let removed = !fold(sum(old));
        let added = fold(sum(new));
        let d = fold(u64::from(removed) + u64::from(added));
        self.add16(if odd { d.swap_bytes() } else { d });
    }

    /// Bytes were inserted at an even offset.
    #[inline]
    pub fn add_bytes(&mut self, data: &[u8]) {
        self.0 += sum_ne(data);
    }

    /// A big-endian 16-bit quantity was added to the summed data (a length
    /// that grew, in a pseudo-header).
    #[inline(always)]
    pub fn add16(&mut self, value: u16) {
        self.0 += u64::from(u16::from_ne_bytes(value.to_be_bytes()));
    }

    /// Both changes together.
    #[inline(always)]
    pub fn merge(&mut self, other: Delta) {
        self.0 += other.0;
    }

    /// The new checksum bytes given the ones stored before the changes.
    #[inline(always)]
    pub fn apply_bytes(self, checksum: [u8; 2]) -> [u8; 2] {
        (!fold(u64::from(!u16::from_ne_bytes(checksum)) + self.0)).to_ne_bytes()
    }

    /// The new checksum given the one that was stored before the changes.
    #[inline(always)]
    pub fn apply(self, checksum: u16) -> u16 {
        u16::from_be_bytes(self.apply_bytes(checksum.to_be_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The IPv4 header from RFC 1071-style worked examples (Wikipedia's
    /// "IPv4 header checksum" example): checksum 0xb861.
    const IP_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    #[test]
    fn known_header_checksum() {
        let mut h = IP_HEADER;
        assert!(verify(&h, 0));
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[0xff]), 0xff00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn fold_never_turns_nonzero_into_zero() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(u64::MAX), 0xffff);
    }

    #[test]
    fn negative_zero_is_a_non_zero_multiple_of_ffff() {
        assert_eq!(0xffff_u64.wrapping_mul(INVERSE_OF_FFFF), 1);
        for acc in [0, 1, 0xfffe, 0xffff, 0x1_0000, 0x1_fffe, 0x1_fffd, 5 * 0xffff, u64::MAX, u64::MAX - 1] {
            assert_eq!(is_negative_zero(acc), fold(acc) == 0xffff, "{acc:#x}");
        }
        // 2^64 - 1 is itself a multiple (0xffff * 0x1_0001_0001_0001).
        assert!(is_negative_zero(u64::MAX - 0xffff) && !is_negative_zero(u64::MAX - 0xfffe));
    }

    #[test]
    fn fast_ipv4_header_verification() {
        assert!(verify_ipv4_header(&IP_HEADER));
        let mut h = IP_HEADER;
        h[8] = 63;
        assert!(!verify_ipv4_header(&h));
        assert!(!verify_ipv4_header(&IP_HEADER[..19]));
        // With 4 bytes of options (router alert), checksum refilled.
        let mut long = [0u8; 24];
        long[..20].copy_from_slice(&IP_HEADER);
        long[0] = 0x46;
        long[20..].copy_from_slice(&[0x94, 0x04, 0, 0]);
        long[10] = 0;
        long[11] = 0;
        let c = checksum(&long);
        long[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify_ipv4_header(&long));
        long[22] = 1;
        assert!(!verify_ipv4_header(&long));
        // An odd tail is handled like the big-endian sum does.
        assert_eq!(fold(sum_ne(&[0x12, 0x34, 0x56])).to_ne_bytes(), fold(sum(&[0x12, 0x34, 0x56])).to_be_bytes());
    }

    #[test]
    fn inserted_bytes_and_lengths() {
        // A 12-byte block; 4 bytes inserted at an even offset plus the
        // length it holds growing by 4, as a pseudo-header would.
        let mut data = vec![0x00, 0x00, 0x00, 0x0c, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04];
        let c = checksum(&data);
        data[..2].copy_from_slice(&c.to_be_bytes());
        let inserted = [0xfe, 0x08, 0x12, 0x34];
        data.extend_from_slice(&inserted);
        let mut d = Delta::new();
        d.add_bytes(&inserted);
        d.replace16(12, 16);
        data[2..4].copy_from_slice(&16u16.to_be_bytes());
        data[..2].copy_from_slice(&d.apply(c).to_be_bytes());
        assert!(verify(&data, 0));
        let mut e = Delta::new();
        assert!(e.is_empty());
        e.add16(4);
        assert_eq!(e.apply(0xffff), !4);
    }

    #[test]
    fn incremental_update_matches_recomputation() {
        let mut h = IP_HEADER;
        let mut d = Delta::new();
        let old = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let new = 0x0a00_0001u32;
        h[12..16].copy_from_slice(&new.to_be_bytes());
        d.replace32(old, new);
        let updated = d.apply(0xb861);
        h[10..12].copy_from_slice(&updated.to_be_bytes());
        assert!(verify(&h, 0));
    }

    /// A UDP datagram [2001:db8::1]:40000 -> [2001:db8::35]:53 with 4 bytes
    /// of data; 0x81fb was computed outside this crate.
    const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x35];
    const V6_UDP: [u8; 12] = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x81, 0xfb, 0xca, 0xfe, 0xba, 0xbe];

    #[test]
    fn ipv6_pseudo_header() {
        let pseudo = pseudo_header_v6(V6_SRC, V6_DST, 17, 12);
        assert!(verify(&V6_UDP, pseudo));
        let mut zeroed = V6_UDP;
        zeroed[6..8].fill(0);
        assert_eq!(finish(sum(&zeroed) + pseudo), 0x81fb);
        let theirs = etherparse::UdpSlice::from_slice(&V6_UDP).unwrap().to_header();
        assert_eq!(theirs.calc_checksum_ipv6_raw(V6_SRC, V6_DST, &V6_UDP[8..]).unwrap(), 0x81fb);
        // A length beyond 16 bits (a jumbogram's) counts both halves.
        assert_eq!(fold(pseudo_header_v6([0; 16], [0; 16], 6, 0x1_0002)), 6 + 1 + 2);
    }

    #[test]
    fn ipv6_address_change_matches_recomputation() {
        // The destination rewritten, as a NAT does: the pseudo-header changes
        // and the checksum follows incrementally.
        let new_dst = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x10];
        let mut d = Delta::new();
        d.replace_ipv6_addr(V6_DST, new_dst);
        let updated = d.apply(u16::from_be_bytes([V6_UDP[6], V6_UDP[7]]));
        let mut b = V6_UDP;
        b[6..8].copy_from_slice(&updated.to_be_bytes());
        assert!(verify(&b, pseudo_header_v6(V6_SRC, new_dst, 17, 12)));
        b[6..8].fill(0);
        assert_eq!(updated, finish(sum(&b) + pseudo_header_v6(V6_SRC, new_dst, 17, 12)));
    }

    fn recompute(data: &[u8], at: usize) -> u16 {
        let mut v = data.to_vec();
        v[at] = 0;
        v[at + 1] = 0;
        checksum(&v)
    }

    proptest! {
        #[test]
        fn negative_zero_is_what_folds_to_ffff(acc in any::<u64>(), multiple in 0..u64::MAX / 0xffff) {
            prop_assert_eq!(is_negative_zero(acc), fold(acc) == 0xffff);
            prop_assert_eq!(is_negative_zero(multiple * 0xffff), multiple != 0);
        }

        /// A TTL decremented changes the checksum as the field's
        /// replacement does, whatever its byte and the protocol's beside it.
        #[test]
        fn a_decremented_first_byte_is_its_replacement(ttl in 1u8.., protocol: u8, before: u64) {
            let (mut replaced, mut decremented) = (Delta(before >> 16), Delta(before >> 16));
            replaced.replace2([ttl, protocol], [ttl - 1, protocol]);
            decremented.decrement_first_byte();
            prop_assert_eq!(replaced, decremented);
        }

        #[test]
        fn replace_bytes_at_any_offset(
            mut data in proptest::collection::vec(any::<u8>(), 8..64),
            pos in 2usize..60,
            new in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            // The checksum field lives in bytes 0..2.
            prop_assume!(pos + new.len() <= data.len());
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            let old = data[pos..pos + new.len()].to_vec();
            data[pos..pos + new.len()].copy_from_slice(&new);
            let mut d = Delta::new();
            d.replace_bytes(pos % 2 == 1, &old, &new);
            let updated = d.apply(c);
            data[0..2].copy_from_slice(&updated.to_be_bytes());
            prop_assert!(verify(&data, 0));
            // Both encodings of zero verify; the value otherwise equals a
            // full recomputation.
            let full = recompute(&data, 0);
            prop_assert!(updated == full || (updated == 0 && full == 0xffff) || (updated == 0xffff && full == 0));
        }

        #[test]
        fn ipv6_address_changes_match_recomputation(
            data in proptest::collection::vec(any::<u8>(), 8..64),
            src in any::<[u8; 16]>(), dst in any::<[u8; 16]>(), new_src in any::<[u8; 16]>(),
        ) {
            let len = data.len() as u32;
            let c = finish(sum(&data) + pseudo_header_v6(src, dst, 6, len));
            let mut d = Delta::new();
            d.replace_ipv6_addr(src, new_src);
            let updated = d.apply(c);
            let full = finish(sum(&data) + pseudo_header_v6(new_src, dst, 6, len));
            prop_assert!(updated == full || (updated == 0 && full == 0xffff) || (updated == 0xffff && full == 0));
        }

        #[test]
        fn fold_matches_the_textbook_loop(acc in any::<u64>()) {
            let mut s = acc;
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            prop_assert_eq!(fold(acc), s as u16);
        }

        #[test]
        fn replace16_and_32_match_recomputation(
            mut data in proptest::collection::vec(any::<u8>(), 12..40),
            v16 in any::<u16>(), v32 in any::<u32>(),
        ) {
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            let old16 = u16::from_be_bytes([data[2], data[3]]);
            let old32 = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            data[2..4].copy_from_slice(&v16.to_be_bytes());
            data[4..8].copy_from_slice(&v32.to_be_bytes());
            let mut d = Delta::new();
            d.replace16(old16, v16);
            d.replace32(old32, v32);
            data[0..2].copy_from_slice(&d.apply(c).to_be_bytes());
            prop_assert!(verify(&data, 0));
        }
    }
}
