//! Equity-scaled metrics (FairCLIP): `es_auc` and `es_acc`.

use fairlab_framework::metric::{AttributeMetric, AttributeValues, Metric, Scope};

/// `x / (1 + sum_g |x_g - x|)` for a per-set metric `x`, unweighted over the groups present;
/// undefined when `x` or any `x_g` is.
pub struct EquityScaled {
    name: &'static str,
    description: &'static str,
    of: [&'static str; 1],
}

impl EquityScaled {
    /// `es_auc`.
    pub fn auc() -> Self {
        Self {
            name: "es_auc",
            description: "equity-scaled AUC: auc / (1 + sum_g |auc_g - auc|)",
            of: ["auc"],
        }
    }

    /// `es_acc`.
    pub fn acc() -> Self {
        Self {
            name: "es_acc",
            description: "equity-scaled accuracy: acc / (1 + sum_g |acc_g - acc|)",
            of: ["acc"],
        }
    }
}

impl Metric for EquityScaled {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn scope(&self) -> Scope<'_> {
        Scope::Attribute(self)
    }
}

impl AttributeMetric for EquityScaled {
    fn requires(&self) -> &[&str] {
        &self.of
    }

    fn compute(&self, attribute: &AttributeValues<'_>) -> Option<f64> {
        let [key] = self.of;
        let overall = attribute.overall(key)?;
        let mut spread = 0.0;
        for group in attribute.groups(key) {
            spread += (group? - overall).abs();
        }
        Some(overall / (1.0 + spread))
    }
}
