//! Interning of group values: each distinct value of a column gets a small integer code.

use std::collections::HashMap;

/// Up to this many distinct values, lookups scan a list of hashes (faster than a hash map for the
/// handful of groups sensitive attributes usually have).
const LINEAR_MAX: usize = 16;

/// Distinct byte strings in order of first appearance, with the row of that first appearance.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    values: Vec<Box<[u8]>>,
    hashes: Vec<u64>,
    first_rows: Vec<usize>,
    index: HashMap<Box<[u8]>, u32>,
}

/// FNV-1a: cheap on the short strings group values are.
#[inline]
fn hash(value: &[u8]) -> u64 {
    value.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Interner {
    /// The code of `value`, first seen at `row` if it is new.
    #[inline]
    pub(crate) fn intern(&mut self, value: &[u8], row: usize) -> u32 {
        if self.values.len() > LINEAR_MAX {
            return match self.index.get(value) {
                Some(&code) => code,
                None => self.insert(value, 0, row),
            };
        }
        let h = hash(value);
        let found = self
            .hashes
            .iter()
            .zip(&self.values)
            .position(|(&vh, v)| vh == h && **v == *value);
        match found {
            Some(code) => code as u32,
            None => self.insert(value, h, row),
        }
    }

    fn insert(&mut self, value: &[u8], hash: u64, row: usize) -> u32 {
        let code = self.values.len() as u32;
        self.values.push(value.into());
        self.hashes.push(hash);
        self.first_rows.push(row);
        if self.values.len() > LINEAR_MAX {
            if self.index.is_empty() {
                self.index = self
                    .values
                    .iter()
                    .enumerate()
                    .map(|(c, v)| (v.clone(), c as u32))
                    .collect();
            } else {
                self.index.insert(value.into(), code);
            }
        }
        code
    }

    /// The distinct values by code, each with the row where it first appeared.
    pub(crate) fn values(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.values.iter().map(|v| &**v).zip(self.first_rows.iter().copied())
    }
}
