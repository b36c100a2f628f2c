//! Rates read off the confusion matrix: `acc`, `tpr`, `tnr`, `fpr` and `selection_rate`.

use fairlab_framework::metric::{Confusion, Metric, Scope, SetMetric, SetStats};

/// A per-set metric that is a ratio of confusion-matrix counts.
pub struct Rate {
    name: &'static str,
    description: &'static str,
    rate: fn(&Confusion) -> Option<f64>,
}

impl Metric for Rate {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Set(self)
    }
}

impl SetMetric for Rate {
    fn compute(&self, stats: &SetStats) -> Option<f64> {
        (self.rate)(stats.confusion())
    }
}

/// `num / den`, undefined when `den` is 0.
fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

fn true_negative_rate(c: &Confusion) -> Option<f64> {
    ratio(c.true_negatives, c.negatives())
}

/// `acc`, `tpr`, `tnr`, `fpr`, `selection_rate`, in that order.
pub fn rates() -> [Rate; 5] {
    [
        Rate {
            name: "acc",
            description: "accuracy: mean(y_pred == y_true)",
            rate: |c| ratio(c.true_positives + c.true_negatives, c.total()),
        },
        Rate {
            name: "tpr",
            description: "true positive rate P(y_pred=1 | y_true=1); null without positives",
            rate: |c| ratio(c.true_positives, c.positives()),
        },
        Rate {
            name: "tnr",
            description: "true negative rate P(y_pred=0 | y_true=0); null without negatives",
            rate: true_negative_rate,
        },
        Rate {
            name: "fpr",
            description: "false positive rate, 1 - tnr; null without negatives",
            rate: |c| true_negative_rate(c).map(|tnr| 1.0 - tnr),
        },
        Rate {
            name: "selection_rate",
            description: "share of samples predicted positive: mean(y_pred)",
            rate: |c| ratio(c.predicted_positives(), c.total()),
        },
    ]
}
