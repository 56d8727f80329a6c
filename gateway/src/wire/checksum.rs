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
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

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
    u64::from(u32::from_be_bytes(src))
        + u64::from(u32::from_be_bytes(dst))
        + u64::from(protocol)
        + u64::from(l4_len)
}

/// The change made to checksummed data, accumulated field by field and applied
/// once (RFC 1624 eqn. 3). Cheap to copy: the same address change feeds the
/// IPv4 header checksum and the TCP/UDP pseudo-header.
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

    /// A 16-bit field at an even offset changed from `old` to `new`.
    #[inline]
    pub fn replace16(&mut self, old: u16, new: u16) {
        self.0 += u64::from(!old) + u64::from(new);
    }

    /// A 32-bit field at an even offset changed from `old` to `new`.
    #[inline]
    pub fn replace32(&mut self, old: u32, new: u32) {
        self.0 += u64::from(!old) + u64::from(new);
    }

    /// Bytes starting at an offset of parity `odd` changed from `old` to
    /// `new` (same length).
    pub fn replace_bytes(&mut self, odd: bool, old: &[u8], new: &[u8]) {
        let removed = !fold(sum(old));
        let added = fold(sum(new));
        let d = fold(u64::from(removed) + u64::from(added));
        self.0 += u64::from(if odd { d.swap_bytes() } else { d });
    }

    /// Data summing to `acc` was added (inserted bytes, a grown length).
    #[inline]
    pub fn add(&mut self, acc: u64) {
        self.0 += acc;
    }

    /// A 16-bit quantity was added to a summed value (a length that grew).
    #[inline]
    pub fn add16(&mut self, value: u16) {
        self.0 += u64::from(value);
    }

    /// Both changes together.
    #[inline]
    pub fn merge(&mut self, other: Delta) {
        self.0 += other.0;
    }

    /// The new checksum given the one that was stored before the changes.
    #[inline]
    pub fn apply(self, checksum: u16) -> u16 {
        !fold(u64::from(!checksum) + self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The IPv4 header from RFC 1071-style worked examples (Wikipedia's
    /// "IPv4 header checksum" example): checksum 0xb861.
    const IP_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
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

    fn recompute(data: &[u8], at: usize) -> u16 {
        let mut v = data.to_vec();
        v[at] = 0;
        v[at + 1] = 0;
        checksum(&v)
    }

    proptest! {
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
