//! [`SetStats`]: the mergeable sufficient statistics of one set of samples (all samples, or one
//! group of one attribute), from which every per-set metric is computed.

use super::calibration::{calibration_bin, Calibration};
use super::confusion::Confusion;
use super::ranking::Ranking;
use super::sum::CompensatedSum;

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` before taking logarithms.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// One sample, with what every statistic needs precomputed once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observation {
    positive: bool,
    predicted: bool,
    score: f64,
    log_loss: f64,
    bin: usize,
}

impl Observation {
    /// A sample with label `positive`, probability `score` of class 1 (in [0, 1]) and predicted
    /// class `predicted`.
    #[inline]
    pub(crate) fn new(positive: bool, score: f64, predicted: bool) -> Self {
        let p = score.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
        let log_loss = if positive { -p.ln() } else { -(1.0 - p).ln() };
        Self {
            positive,
            predicted,
            score,
            log_loss,
            bin: calibration_bin(score),
        }
    }
}

/// The fixed-size part of [`SetStats`] (everything but the ranking), cheap to keep per thread.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Tally {
    confusion: Confusion,
    log_loss: CompensatedSum,
    calibration: Calibration,
}

impl Tally {
    /// Count one sample.
    #[inline]
    pub(crate) fn observe(&mut self, o: &Observation) {
        self.confusion.observe(o.positive, o.predicted);
        self.log_loss.add(o.log_loss);
        self.calibration.observe(o.bin, o.score, o.positive);
    }

    /// Add another tally.
    pub(crate) fn merge(&mut self, other: &Tally) {
        self.confusion.merge(&other.confusion);
        self.log_loss.merge(&other.log_loss);
        self.calibration.merge(&other.calibration);
    }

    /// The confusion matrix so far.
    pub(crate) fn confusion(&self) -> &Confusion {
        &self.confusion
    }
}

/// Sufficient statistics of one set of samples: the confusion matrix at the threshold, the summed
/// log loss, the calibration bins and the sorted scores per class. Two states merge into the state
/// of the union of their samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetStats {
    tally: Tally,
    ranking: Ranking,
}

impl SetStats {
    pub(crate) fn new(tally: Tally, ranking: Ranking) -> Self {
        Self { tally, ranking }
    }

    /// Number of samples.
    pub fn n(&self) -> u64 {
        self.tally.confusion.total()
    }

    /// Counts of true/false positives/negatives of the predictions.
    pub fn confusion(&self) -> &Confusion {
        &self.tally.confusion
    }

    /// Sum over the samples of `-[y ln p + (1-y) ln(1-p)]`, p clipped by [`LOG_LOSS_EPS`].
    pub fn log_loss_sum(&self) -> f64 {
        self.tally.log_loss.value()
    }

    /// The calibration bins of the scores.
    pub fn calibration(&self) -> &Calibration {
        &self.tally.calibration
    }

    /// The sorted scores of each class.
    pub fn ranking(&self) -> &Ranking {
        &self.ranking
    }

    /// Add the samples another state has seen.
    pub fn merge(&mut self, other: SetStats) {
        self.tally.merge(&other.tally);
        self.ranking.merge(other.ranking);
    }
}
