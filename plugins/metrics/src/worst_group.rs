//! `worst_auc`: the lowest AUC of any group.

use fairlab_framework::metric::{AttributeMetric, AttributeValues, Metric, Scope};

/// `min_g auc_g` over the groups where the AUC is defined; undefined when it is nowhere.
pub struct WorstAuc;

impl Metric for WorstAuc {
    fn name(&self) -> &str {
        "worst_auc"
    }

    fn description(&self) -> &str {
        "lowest group AUC (over groups where it is defined)"
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Attribute(self)
    }
}

impl AttributeMetric for WorstAuc {
    fn requires(&self) -> &[&str] {
        &["auc"]
    }

    fn compute(&self, attribute: &AttributeValues<'_>) -> Option<f64> {
        attribute.groups("auc").into_iter().flatten().reduce(f64::min)
    }
}
