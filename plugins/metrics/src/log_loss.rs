//! `bce`: mean binary cross-entropy of the scores.

use fairlab_framework::metric::{Metric, Scope, SetMetric, SetStats};

/// Mean of `-[y ln p + (1-y) ln(1-p)]` with `p` clipped to `[1e-15, 1 - 1e-15]`.
pub struct Bce;

impl Metric for Bce {
    fn name(&self) -> &str {
        "bce"
    }

    fn description(&self) -> &str {
        "mean binary cross-entropy of y_score, p clipped to [1e-15, 1-1e-15]"
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Set(self)
    }
}

impl SetMetric for Bce {
    fn compute(&self, stats: &SetStats) -> Option<f64> {
        (stats.n() > 0).then(|| stats.log_loss_sum() / stats.n() as f64)
    }
}
