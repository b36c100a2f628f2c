//! `auc`: ROC AUC of the scores, exact, ties counted half (= scikit-learn's `roc_auc_score`).

use fairlab_framework::metric::{Metric, Ranking, Scope, SetMetric, SetStats};

/// ROC AUC: the probability that a random positive scores above a random negative, ties counting
/// half. Undefined for a set with one class.
pub struct Auc;

impl Metric for Auc {
    fn name(&self) -> &str {
        "auc"
    }

    fn description(&self) -> &str {
        "ROC AUC of y_score, exact, ties counted half; null with one class"
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Set(self)
    }
}

impl SetMetric for Auc {
    fn compute(&self, stats: &SetStats) -> Option<f64> {
        roc_auc(stats.ranking())
    }
}

/// Exact ROC AUC from sorted scores in one merge-like scan: each block of positives with equal
/// score gains the negatives scored below it plus half of those scored equal. The pair count is
/// kept doubled in integers, so the only rounding is the final division.
pub fn roc_auc(ranking: &Ranking) -> Option<f64> {
    let (positives, negatives) = (ranking.positives(), ranking.negatives());
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut twice_pairs: u128 = 0;
    let mut below = 0;
    let mut i = 0;
    while i < positives.len() {
        let score = positives[i];
        let block_end = i + positives[i..].iter().take_while(|&&s| s == score).count();
        below += negatives[below..].iter().take_while(|&&s| s < score).count();
        let tied = negatives[below..].iter().take_while(|&&s| s == score).count();
        twice_pairs += (block_end - i) as u128 * (2 * below + tied) as u128;
        i = block_end;
    }
    Some(twice_pairs as f64 / (2.0 * positives.len() as f64 * negatives.len() as f64))
}
