//! The confusion matrix of thresholded binary predictions.

/// Counts of the four outcomes of a binary prediction against a binary label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Label 1, predicted 1.
    pub true_positives: u64,
    /// Label 0, predicted 1.
    pub false_positives: u64,
    /// Label 0, predicted 0.
    pub true_negatives: u64,
    /// Label 1, predicted 0.
    pub false_negatives: u64,
}

impl Confusion {
    /// Count one sample.
    #[inline]
    pub fn observe(&mut self, positive: bool, predicted: bool) {
        match (positive, predicted) {
            (true, true) => self.true_positives += 1,
            (false, true) => self.false_positives += 1,
            (false, false) => self.true_negatives += 1,
            (true, false) => self.false_negatives += 1,
        }
    }

    /// Add another matrix's counts.
    pub fn merge(&mut self, other: &Confusion) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.true_negatives += other.true_negatives;
        self.false_negatives += other.false_negatives;
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.positives() + self.negatives()
    }

    /// Number of samples labelled 1.
    pub fn positives(&self) -> u64 {
        self.true_positives + self.false_negatives
    }

    /// Number of samples labelled 0.
    pub fn negatives(&self) -> u64 {
        self.true_negatives + self.false_positives
    }

    /// Number of samples predicted 1.
    pub fn predicted_positives(&self) -> u64 {
        self.true_positives + self.false_positives
    }
}
