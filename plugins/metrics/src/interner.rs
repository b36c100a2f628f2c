//! Interning of group values: each distinct value of a column gets a small integer code.
//!
//! Sensitive attributes have a handful of short values, so a value is looked up by its first
//! eight bytes and its length (its key) in a small open-addressing table: one multiplication and,
//! nearly always, one probe, with no byte compared for values of up to eight bytes. A column with
//! many distinct values moves to a hash map.

use std::collections::HashMap;

/// Bytes of a value packed into its [`prefix`].
const PREFIX_BYTES: usize = 8;

/// Slots of the table (a power of two; the table takes 1 KiB).
const TABLE_SLOTS: usize = 64;

/// Up to this many distinct values (half the slots), lookups use the table.
const TABLE_MAX: usize = TABLE_SLOTS / 2;

/// The code of an empty slot.
const EMPTY: u32 = u32::MAX;

/// A slot of the table: the prefix and length of a value, and its code. (The length is kept in 32
/// bits, which tells the lengths of values of up to [`PREFIX_BYTES`] bytes apart, the only ones
/// whose bytes are not compared.)
#[derive(Debug, Clone, Copy)]
struct Slot {
    prefix: u64,
    len: u32,
    code: u32,
}

/// Distinct byte strings in order of first appearance, with the row of that first appearance.
#[derive(Debug)]
pub(crate) struct Interner {
    values: Vec<Box<[u8]>>,
    first_rows: Vec<usize>,
    table: Box<[Slot; TABLE_SLOTS]>,
    /// Every value, once there are more than [`TABLE_MAX`].
    index: HashMap<Box<[u8]>, u32>,
}

impl Default for Interner {
    fn default() -> Self {
        let empty = Slot {
            prefix: 0,
            len: 0,
            code: EMPTY,
        };
        Self {
            values: Vec::new(),
            first_rows: Vec::new(),
            table: Box::new([empty; TABLE_SLOTS]),
            index: HashMap::new(),
        }
    }
}

/// The first [`PREFIX_BYTES`] bytes of a value as an integer, zero padded.
#[inline]
pub(crate) fn prefix(value: &[u8]) -> u64 {
    value
        .iter()
        .take(PREFIX_BYTES)
        .enumerate()
        .fold(0, |p, (i, &b)| p | u64::from(b) << (8 * i))
}

/// The first slot to probe for a key (Fibonacci hashing: the top bits of a multiplication).
#[inline]
fn home(prefix: u64, len: usize) -> usize {
    ((prefix ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TABLE_SLOTS.trailing_zeros())) as usize
}

impl Interner {
    /// The code of `value`, whose [`prefix`] is given, first seen at `row` if it is new.
    #[inline(always)]
    pub(crate) fn intern(&mut self, value: &[u8], prefix: u64, row: usize) -> u32 {
        if !self.index.is_empty() {
            return self.intern_indexed(value, row);
        }
        let mut slot = home(prefix, value.len());
        loop {
            let Slot { prefix: p, len, code } = self.table[slot];
            if code == EMPTY {
                return self.insert(value, prefix, row, slot);
            }
            let (short, same_len) = (value.len() <= PREFIX_BYTES, len == value.len() as u32);
            if p == prefix && same_len && (short || *self.values[code as usize] == *value) {
                return code;
            }
            slot = (slot + 1) % TABLE_SLOTS;
        }
    }

    /// A new value, whose key goes to the empty `slot` of the table.
    #[cold]
    fn insert(&mut self, value: &[u8], prefix: u64, row: usize, slot: usize) -> u32 {
        let code = self.push(value, row);
        self.table[slot] = Slot {
            prefix,
            len: value.len() as u32,
            code,
        };
        if self.values.len() > TABLE_MAX {
            self.index = self
                .values
                .iter()
                .enumerate()
                .map(|(c, v)| (v.clone(), c as u32))
                .collect();
        }
        code
    }

    /// The code of `value` once the values are in the hash map.
    fn intern_indexed(&mut self, value: &[u8], row: usize) -> u32 {
        if let Some(&code) = self.index.get(value) {
            return code;
        }
        let code = self.push(value, row);
        self.index.insert(value.into(), code);
        code
    }

    fn push(&mut self, value: &[u8], row: usize) -> u32 {
        self.values.push(value.into());
        self.first_rows.push(row);
        (self.values.len() - 1) as u32
    }

    /// The distinct values by code, each with the row where it first appeared.
    pub(crate) fn values(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.values.iter().map(|v| &**v).zip(self.first_rows.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sharing_a_prefix_or_a_length_get_their_own_codes() {
        let values: [&[u8]; 8] = [
            b"",
            b"a",
            b"a\0",
            b"abcdefgh",
            b"abcdefghi",
            b"abcdefghj",
            b"abcdefgh\0",
            b"b",
        ];
        let mut interner = Interner::default();
        for round in 0..2 {
            for (i, v) in values.iter().enumerate() {
                assert_eq!(interner.intern(v, prefix(v), round * 10 + i), i as u32, "{v:?}");
            }
        }
        let firsts: Vec<usize> = interner.values().map(|(_, row)| row).collect();
        assert_eq!(firsts, (0..values.len()).collect::<Vec<_>>());
    }

    #[test]
    fn many_values_move_to_a_hash_map() {
        let mut interner = Interner::default();
        let values: Vec<String> = (0..1000).map(|i| format!("g{i}")).collect();
        for round in 0..2 {
            for (i, v) in values.iter().enumerate() {
                assert_eq!(interner.intern(v.as_bytes(), prefix(v.as_bytes()), round), i as u32);
            }
        }
        assert_eq!(interner.values().count(), values.len());
    }
}
