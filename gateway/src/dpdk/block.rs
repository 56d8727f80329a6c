//! 16-byte blocks made in a vector register and stored whole, for code that
//! hands a block to a function reading it back at once as 16 bytes (the SYN
//! cookies' AES, `synproxy::cookie`). Written as narrower stores (four
//! words, or a `u128`'s two halves), such a block cannot be forwarded to
//! the 16-byte load: the load waits until the stores retire, some 15 ns a
//! block on this machine's processor (20 ns a cookie against 3.6 in a
//! loop of them).
//!
//! Compiled with or without the `dpdk` feature, as `prefetch` is.

/// The block of four 4-byte words, each as its bytes lie in memory, the
/// first word first.
#[inline(always)]
pub fn block_of_words(words: [[u8; 4]; 4]) -> [u8; 16] {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_set_epi32, _mm_storeu_si128};
        let word = |i: usize| i32::from_ne_bytes(words[i]);
        let mut block = [0u8; 16];
        // SAFETY: SSE2 is part of the x86_64 baseline; `_mm_storeu_si128`
        // writes 16 bytes with no alignment requirement, and `block` is 16
        // bytes the function owns. Element 0 of `_mm_set_epi32` is stored
        // first, each element as its native-endian bytes: `words` in order.
        unsafe {
            let v = _mm_set_epi32(word(3), word(2), word(1), word(0));
            _mm_storeu_si128(block.as_mut_ptr().cast(), v);
        }
        block
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut block = [0u8; 16];
        for (to, word) in block.chunks_exact_mut(4).zip(words) {
            to.copy_from_slice(&word);
        }
        block
    }
}

/// `a ^ b`, byte by byte.
#[inline(always)]
pub fn xor_blocks(a: [u8; 16], b: [u8; 16]) -> [u8; 16] {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_loadu_si128, _mm_storeu_si128, _mm_xor_si128};
        let mut block = [0u8; 16];
        // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned loads
        // read the 16 bytes of `a` and `b`, the unaligned store writes the
        // 16 of `block`, all owned here.
        unsafe {
            let v = _mm_xor_si128(_mm_loadu_si128(a.as_ptr().cast()), _mm_loadu_si128(b.as_ptr().cast()));
            _mm_storeu_si128(block.as_mut_ptr().cast(), v);
        }
        block
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        (u128::from_ne_bytes(a) ^ u128::from_ne_bytes(b)).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_go_in_order_each_as_its_bytes() {
        let block = block_of_words([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13, 14, 15]]);
        assert_eq!(block, std::array::from_fn::<u8, 16, _>(|i| i as u8));
    }

    #[test]
    fn xor_is_bytewise() {
        let a = std::array::from_fn::<u8, 16, _>(|i| i as u8);
        let b = std::array::from_fn::<u8, 16, _>(|i| 0xf0 | (15 - i as u8));
        assert_eq!(xor_blocks(a, b), std::array::from_fn::<u8, 16, _>(|i| (i as u8) ^ (0xf0 | (15 - i as u8))));
        assert_eq!(xor_blocks(a, a), [0; 16]);
    }
}
