//! Between-group spreads `max_g x_g - min_g x_g`: `dpd`, `eo_p`, `eo_n`, `auc_gap`, `acc_gap`.

use fairlab_framework::metric::{AttributeMetric, AttributeValues, Metric, Scope};

/// The spread of a per-set metric over an attribute's groups.
pub struct Spread {
    name: &'static str,
    description: &'static str,
    of: [&'static str; 1],
}

impl Spread {
    /// A spread named `name` of per-set metric `of`.
    const fn new(name: &'static str, of: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            of: [of],
        }
    }
}

/// `dpd`, `eo_p`, `eo_n`, `auc_gap`, `acc_gap`, in that order.
pub fn spreads() -> [Spread; 5] {
    [
        Spread::new(
            "dpd",
            "selection_rate",
            "demographic parity difference: spread of selection_rate over groups",
        ),
        Spread::new(
            "eo_p",
            "tpr",
            "equal opportunity on positives: spread of tpr over groups where defined",
        ),
        Spread::new(
            "eo_n",
            "tnr",
            "equal opportunity on negatives: spread of tnr over groups where defined",
        ),
        Spread::new("auc_gap", "auc", "spread of auc over groups where defined"),
        Spread::new("acc_gap", "acc", "spread of acc over groups"),
    ]
}

/// `max_g x_g - min_g x_g` over the groups where `key` is defined. An attribute with a single
/// group has spread 0; with two or more groups, fewer than two defined values give `None`.
pub fn spread(attribute: &AttributeValues<'_>, key: &str) -> Option<f64> {
    if attribute.group_count() == 1 {
        return Some(0.0);
    }
    let defined: Vec<f64> = attribute.groups(key).into_iter().flatten().collect();
    if defined.len() < 2 {
        return None;
    }
    let max = defined.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = defined.iter().copied().fold(f64::INFINITY, f64::min);
    Some(max - min)
}

impl Metric for Spread {
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

impl AttributeMetric for Spread {
    fn requires(&self) -> &[&str] {
        &self.of
    }

    fn compute(&self, attribute: &AttributeValues<'_>) -> Option<f64> {
        spread(attribute, self.of[0])
    }
}
