//! Eight bytes at a time in a `u64` (SIMD within a register): finding bytes of a kind without a
//! branch per byte. Words are read little-endian, so the first byte is
//! the lowest, and "the first byte such that" is the lowest set bit of a mask.

/// Bytes in a word.
pub(crate) const WORD: usize = 8;

/// A word with every byte 1.
const ONES: u64 = u64::from_le_bytes([1; WORD]);

/// A word with the high bit of every byte set.
const HIGHS: u64 = u64::from_le_bytes([0x80; WORD]);

/// The [`WORD`] bytes at `pos`, if `bytes` has that many there.
#[inline]
pub(crate) fn word_at(bytes: &[u8], pos: usize) -> Option<u64> {
    let word = bytes.get(pos..pos + WORD)?;
    Some(u64::from_le_bytes(word.try_into().expect("a slice of WORD bytes")))
}

/// The index of the first byte a mask from this module marks ([`WORD`] when none).
#[inline]
pub(crate) fn first(mask: u64) -> usize {
    mask.trailing_zeros() as usize / 8
}

/// The high bit of the bytes of `word` below `limit` (at most 128): exact up to and including the
/// first such byte (later bytes can be marked wrongly, which [`first`] never looks at).
#[inline]
pub(crate) fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The high bit of the bytes of `word` equal to `byte`, exact up to the first such byte.
#[inline]
pub(crate) fn bytes_equal(word: u64, byte: u8) -> u64 {
    bytes_below(word ^ (ONES * u64::from(byte)), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &[u8]) -> u64 {
        word_at(text, 0).expect("eight bytes")
    }

    #[test]
    fn every_byte_value_is_found_or_not() {
        for b in 0..=255u8 {
            for at in 0..WORD {
                let mut text = *b"aaaaaaaa";
                text[at] = b;
                let w = word(&text);
                assert_eq!(first(bytes_equal(w, b)), if b == b'a' { 0 } else { at }, "{b} at {at}");
                let below = first(bytes_below(w, b'-'));
                assert_eq!(below, if b < b'-' { at } else { WORD }, "{b} at {at}");
            }
        }
    }
}
