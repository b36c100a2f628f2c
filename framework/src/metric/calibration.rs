//! Equal-width score bins for calibration error: a score `s` falls in bin `min(floor(10·s), 9)`
//! computed in f64, so bin `k` is `[k/10, (k+1)/10)` and a score of 1.0 goes to the last bin.

use super::sum::CompensatedSum;

/// Number of equal-width bins over [0, 1].
pub const CALIBRATION_BINS: usize = 10;

/// The bin of a score in [0, 1].
#[inline]
pub fn calibration_bin(score: f64) -> usize {
    ((score * CALIBRATION_BINS as f64).floor() as usize).min(CALIBRATION_BINS - 1)
}

/// What one bin has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CalibrationBin {
    /// Number of samples in the bin.
    pub count: u64,
    /// Number of those labelled 1.
    pub positives: u64,
    /// Sum of their scores.
    pub score_sum: CompensatedSum,
}

/// Per-bin counts, positives and score sums over [`CALIBRATION_BINS`] equal-width bins.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Calibration {
    bins: [CalibrationBin; CALIBRATION_BINS],
}

impl Calibration {
    /// Count one sample.
    #[inline]
    pub fn observe(&mut self, bin: usize, score: f64, positive: bool) {
        let b = &mut self.bins[bin];
        b.count += 1;
        b.positives += u64::from(positive);
        b.score_sum.add(score);
    }

    /// Add another histogram's bins.
    pub fn merge(&mut self, other: &Calibration) {
        for (b, o) in self.bins.iter_mut().zip(&other.bins) {
            b.count += o.count;
            b.positives += o.positives;
            b.score_sum.merge(&o.score_sum);
        }
    }

    /// The bins, from `[0, 0.1)` to `[0.9, 1]`.
    pub fn bins(&self) -> &[CalibrationBin; CALIBRATION_BINS] {
        &self.bins
    }
}
