//! The positions of one byte in a text, found 64 bytes at a time: the
//! newlines of a replayed file, the spaces of a word count's lines.
//!
//! `memchr`'s iterator searches afresh from each match, which pays its setup
//! for every match when matches are a few bytes apart (a space every five
//! bytes in text). [`BytePositions`] compares a block of 64 bytes at once
//! into a bit mask and hands out its set bits, so a match costs a few
//! instructions however close the next one is. [`mask_16`] compares the 16
//! bytes at one position, for a search within one short string (the field
//! `split_part_view` wants from each line).
//!
//! ```
//! use sluice_core::byte_positions::BytePositions;
//! let found: Vec<usize> = BytePositions::new(b' ', b"to be or not").collect();
//! assert_eq!(found, vec![2, 5, 8]);
//! ```

/// The positions of `needle` in a haystack, in order (see the module docs).
#[derive(Debug, Clone)]
pub struct BytePositions<'a> {
    haystack: &'a [u8],
    needle: u8,
    /// Where the block `mask` describes starts.
    base: usize,
    /// The matches of that block not yet handed out, one bit per byte.
    mask: u64,
    /// Where the next block starts.
    next_block: usize,
}

impl<'a> BytePositions<'a> {
    pub fn new(needle: u8, haystack: &'a [u8]) -> Self {
        Self {
            haystack,
            needle,
            base: 0,
            mask: 0,
            next_block: 0,
        }
    }
}

impl Iterator for BytePositions<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            if self.next_block >= self.haystack.len() {
                return None;
            }
            self.base = self.next_block;
            self.next_block = (self.base + 64).min(self.haystack.len());
            self.mask = mask_of(&self.haystack[self.base..self.next_block], self.needle);
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.base + bit)
    }
}

/// Bit `i` set where `haystack[at + i] == needle`, for the 16 bytes from
/// `at` (fewer where `haystack` ends sooner): one comparison, for a search
/// within one short string that must not pay a search's setup.
///
/// ```
/// use sluice_core::byte_positions::mask_16;
/// assert_eq!(mask_16(b"12 w7 x", 0, b' '), 0b100100);
/// assert_eq!(mask_16(b"12 w7 x", 3, b' '), 0b100);
/// ```
#[inline]
pub fn mask_16(haystack: &[u8], at: usize, needle: u8) -> u32 {
    let rest = haystack.get(at..).unwrap_or_default();
    #[cfg(target_arch = "x86_64")]
    if let Some(chunk) = rest.first_chunk::<16>() {
        return u32::from(sse2::mask_of_16(chunk, needle));
    }
    rest.iter()
        .take(16)
        .enumerate()
        .fold(0, |m, (i, &b)| m | (u32::from(b == needle) << i))
}

/// Bit `i` set where `block[i] == needle`; `block` has at most 64 bytes.
#[inline]
fn mask_of(block: &[u8], needle: u8) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if let Ok(block) = <&[u8; 64]>::try_from(block) {
        return sse2::mask_of_64(block, needle);
    }
    block
        .iter()
        .enumerate()
        .fold(0, |m, (i, &b)| m | (u64::from(b == needle) << i))
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    /// [`super::mask_16`] for 16 bytes.
    #[inline]
    pub fn mask_of_16(chunk: &[u8; 16], needle: u8) -> u16 {
        // SAFETY: SSE2 is part of every x86_64 CPU; the unaligned load reads
        // the 16 bytes of `chunk`.
        unsafe {
            let bytes = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
            _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, _mm_set1_epi8(needle as i8))) as u16
        }
    }

    /// [`super::mask_of`] for a whole block, 16 bytes per comparison.
    #[inline]
    pub fn mask_of_64(block: &[u8; 64], needle: u8) -> u64 {
        // SAFETY: SSE2 is part of every x86_64 CPU; each unaligned load reads
        // 16 bytes at offset 0, 16, 32 or 48 of a 64-byte array.
        unsafe {
            let wanted = _mm_set1_epi8(needle as i8);
            let mut mask = 0u64;
            for (i, chunk) in block.chunks_exact(16).enumerate() {
                let bytes = _mm_loadu_si128(chunk.as_ptr() as *const __m128i);
                let equal = _mm_movemask_epi8(_mm_cmpeq_epi8(bytes, wanted)) as u16;
                mask |= u64::from(equal) << (16 * i);
            }
            mask
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::{BytePositions, mask_16};

    /// The same positions as a byte-by-byte scan, on texts of every length
    /// around the block size, with matches dense, sparse and at the ends.
    #[test]
    fn positions_equal_a_scan() {
        let mut rng = StdRng::seed_from_u64(3);
        for len in (0..200).chain([1000, 4096, 65_537]) {
            for density in [0.0, 0.05, 0.5, 1.0] {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        if rng.random_bool(density) {
                            b'\n'
                        } else {
                            rng.random_range(0..=255u8)
                        }
                    })
                    .collect();
                let expected: Vec<usize> = (0..len).filter(|&i| text[i] == b'\n').collect();
                let found: Vec<usize> = BytePositions::new(b'\n', &text).collect();
                assert_eq!(found, expected, "length {len}, density {density}");
            }
        }
    }

    /// The same bits as a byte-by-byte comparison, from every start near
    /// a haystack's end (where fewer than 16 bytes are left).
    #[test]
    fn mask_16_equals_a_scan() {
        let mut rng = StdRng::seed_from_u64(5);
        let text: Vec<u8> = (0..100)
            .map(|_| if rng.random_bool(0.3) { b' ' } else { b'a' })
            .collect();
        for at in 0..=text.len() + 2 {
            let expected = (0..16)
                .filter(|i| text.get(at + i) == Some(&b' '))
                .fold(0u32, |m, i| m | (1 << i));
            assert_eq!(mask_16(&text, at, b' '), expected, "from {at}");
        }
    }
}
