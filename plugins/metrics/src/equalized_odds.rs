//! `deodds`: equalized odds difference (fairlearn's `equalized_odds_difference`).

use fairlab_framework::metric::{AttributeMetric, AttributeValues, Metric, Scope};

use crate::spread::spread;

/// `max(spread of tpr, spread of fpr)` over the groups; undefined when either spread is.
pub struct EqualizedOdds;

impl Metric for EqualizedOdds {
    fn name(&self) -> &str {
        "deodds"
    }

    fn description(&self) -> &str {
        "equalized odds difference: max(spread of tpr, spread of fpr) over groups"
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Attribute(self)
    }
}

impl AttributeMetric for EqualizedOdds {
    fn requires(&self) -> &[&str] {
        &["tpr", "fpr"]
    }

    fn compute(&self, attribute: &AttributeValues<'_>) -> Option<f64> {
        Some(spread(attribute, "tpr")?.max(spread(attribute, "fpr")?))
    }
}
