//! The exact state behind ROC AUC: every score of the positives and of the negatives, each kept
//! sorted so that two states merge in linear time and AUC (ties counted half) is one linear scan.

use std::cmp::Ordering;

/// Scores of the samples labelled 1 and of those labelled 0, each sorted ascending.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranking {
    positives: Vec<f64>,
    negatives: Vec<f64>,
}

impl Ranking {
    /// A ranking of scores already sorted with [`sort_scores`] (or merged from such).
    pub(crate) fn from_sorted(positives: Vec<f64>, negatives: Vec<f64>) -> Self {
        Self { positives, negatives }
    }

    /// Scores of the samples labelled 1, ascending.
    pub fn positives(&self) -> &[f64] {
        &self.positives
    }

    /// Scores of the samples labelled 0, ascending.
    pub fn negatives(&self) -> &[f64] {
        &self.negatives
    }

    /// Add another ranking's scores.
    pub fn merge(&mut self, other: Ranking) {
        self.positives = merge_sorted(std::mem::take(&mut self.positives), other.positives);
        self.negatives = merge_sorted(std::mem::take(&mut self.negatives), other.negatives);
    }
}

/// Sort scores ascending (none NaN; -0.0 before 0.0) as order-preserving integer keys, which
/// sort about twice as fast as floats compared with `total_cmp`. The conversions collect in place.
/// (Sets are sorted in parallel with each other, so each sort runs on one thread.)
pub(crate) fn sort_scores(scores: &mut Vec<f64>) {
    let mut keys: Vec<u64> = std::mem::take(scores).into_iter().map(order_key).collect();
    keys.sort_unstable();
    *scores = keys.into_iter().map(from_order_key).collect();
}

/// An integer whose unsigned order is the `total_cmp` order of the float.
fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The float of an [`order_key`].
fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

/// All scores of several sorted slices, sorted: halves merged recursively, so each score is copied
/// about log2(parts) times and two parts need no intermediate copy.
pub(crate) fn merge_all(parts: &[&[f64]]) -> Vec<f64> {
    match parts {
        [] => Vec::new(),
        [one] => one.to_vec(),
        [a, b] => merge_slices(a, b),
        _ => {
            let (left, right) = parts.split_at(parts.len() / 2);
            merge_slices(&merge_all(left), &merge_all(right))
        }
    }
}

fn merge_sorted(a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    merge_slices(&a, &b)
}

fn merge_slices(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].total_cmp(&b[j]) != Ordering::Greater {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}
