//! The `Metric` plugin kind. A metric is a named function of accumulated statistics, of one of two
//! scopes: a per-set metric ([`SetMetric`]) is computed from the [`SetStats`] of all samples and of
//! every group of every attribute; a per-attribute metric ([`AttributeMetric`]) combines the
//! per-set values of an attribute's groups into one number (a gap, an equity-scaled score, ...).

use super::report::SetReport;
use super::set_stats::SetStats;

/// A metric plugin: a report key, a description and how it is computed.
pub trait Metric: Send + Sync {
    /// The key in reports, e.g. `auc`.
    fn name(&self) -> &str;

    /// One line on what it measures, as shown by `fairlab plugins`.
    fn description(&self) -> &str;

    /// What it is computed over, with the computation.
    fn scope(&self) -> Scope<'_>;
}

/// What a metric is computed over.
#[derive(Clone, Copy)]
pub enum Scope<'a> {
    /// Once per set of samples: all samples, and each group of each attribute.
    Set(&'a dyn SetMetric),
    /// Once per attribute, from the per-set values of all samples and of the attribute's groups.
    Attribute(&'a dyn AttributeMetric),
}

/// The computation of a per-set metric.
pub trait SetMetric: Send + Sync {
    /// The value on a set of samples, `None` where it is undefined (e.g. AUC with one class).
    fn compute(&self, stats: &SetStats) -> Option<f64>;
}

/// The computation of a per-attribute metric.
pub trait AttributeMetric: Send + Sync {
    /// The per-set metrics whose values [`AttributeMetric::compute`] reads; evaluation fails
    /// clearly when one of them is not registered.
    fn requires(&self) -> &[&str];

    /// The value for one attribute, `None` where it is undefined.
    fn compute(&self, attribute: &AttributeValues<'_>) -> Option<f64>;
}

/// The per-set values a per-attribute metric combines: those of all samples and of each group
/// present in the data (sorted by group name).
#[derive(Debug, Clone, Copy)]
pub struct AttributeValues<'a> {
    pub(crate) overall: &'a SetReport,
    pub(crate) groups: &'a [(String, SetReport)],
}

impl AttributeValues<'_> {
    /// The value of per-set metric `key` on all samples.
    pub fn overall(&self, key: &str) -> Option<f64> {
        self.overall.get(key)
    }

    /// The value of per-set metric `key` on each group, in group order.
    pub fn groups(&self, key: &str) -> Vec<Option<f64>> {
        self.groups.iter().map(|(_, set)| set.get(key)).collect()
    }

    /// Number of groups present.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }
}
