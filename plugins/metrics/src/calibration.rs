//! `ece`: expected calibration error over 10 equal-width score bins.

use fairlab_framework::metric::{Metric, Scope, SetMetric, SetStats};

/// Sum over non-empty bins of `(n_b / n) * |mean(y_true in b) - mean(y_score in b)|`, which is
/// `|positives_b - score_sum_b| / n` summed over the bins.
pub struct Ece;

impl Metric for Ece {
    fn name(&self) -> &str {
        "ece"
    }

    fn description(&self) -> &str {
        "expected calibration error over 10 equal-width bins of y_score"
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Set(self)
    }
}

impl SetMetric for Ece {
    fn compute(&self, stats: &SetStats) -> Option<f64> {
        let n = stats.n();
        (n > 0).then(|| {
            let gap: f64 = stats
                .calibration()
                .bins()
                .iter()
                .map(|b| (b.positives as f64 - b.score_sum.value()).abs())
                .sum();
            gap / n as f64
        })
    }
}
