//! Turning accumulated statistics into a [`MetricsReport`] with every registered metric.

use rayon::prelude::*;

use super::accumulator::Accumulator;
use super::input::PredictionSet;
use super::plugin::{AttributeMetric, AttributeValues, Scope, SetMetric};
use super::report::{AttributeReport, MetricValue, MetricsReport, SetReport};
use super::set_stats::SetStats;
use crate::registry::Registry;

/// Every metric registered in `registry` on `set`; samples without a hard prediction are predicted
/// positive when `y_score >= threshold`.
pub fn evaluate(registry: &Registry, set: &PredictionSet<'_>, threshold: f64) -> anyhow::Result<MetricsReport> {
    let mut accumulator = Accumulator::new(threshold, set.attributes.iter().map(|(name, _)| *name))?;
    accumulator.update(set)?;
    accumulator.compute(registry)
}

impl Accumulator {
    /// Every metric registered in `registry` on the samples seen so far. Fails when there is no
    /// sample, or when a per-attribute metric needs a per-set metric that is not registered.
    pub fn compute(&self, registry: &Registry) -> anyhow::Result<MetricsReport> {
        anyhow::ensure!(self.overall().n() > 0, "there are no samples to evaluate");
        let mut set_metrics: Vec<(&str, &dyn SetMetric)> = Vec::new();
        let mut attribute_metrics: Vec<(&str, &dyn AttributeMetric)> = Vec::new();
        for metric in registry.metrics() {
            match metric.scope() {
                Scope::Set(m) => set_metrics.push((metric.name(), m)),
                Scope::Attribute(m) => attribute_metrics.push((metric.name(), m)),
            }
        }
        for (name, metric) in &attribute_metrics {
            for key in metric.requires() {
                anyhow::ensure!(
                    set_metrics.iter().any(|(k, _)| k == key),
                    "metric `{name}` needs the per-set metric `{key}`, which is not registered"
                );
            }
        }

        let set_report = |stats: &SetStats| SetReport {
            n: stats.n(),
            metrics: set_metrics
                .iter()
                .map(|(key, m)| metric_value(key, m.compute(stats)))
                .collect(),
        };
        // Every set at once: AUC is a linear scan of each set's scores.
        let sets: Vec<&SetStats> = std::iter::once(self.overall())
            .chain(self.attributes().iter().flat_map(|a| a.groups().values()))
            .collect();
        let mut reports = sets.par_iter().map(|s| set_report(s)).collect::<Vec<_>>().into_iter();
        let overall = reports.next().expect("the overall set is always first");

        let attributes = self
            .attributes()
            .iter()
            .map(|a| {
                let groups: Vec<(String, SetReport)> = a
                    .groups()
                    .keys()
                    .cloned()
                    .zip(reports.by_ref().take(a.groups().len()))
                    .collect();
                let values = AttributeValues {
                    overall: &overall,
                    groups: &groups,
                };
                let metrics = attribute_metrics
                    .iter()
                    .map(|(key, m)| metric_value(key, m.compute(&values)))
                    .collect();
                AttributeReport {
                    name: a.name().to_string(),
                    groups,
                    metrics,
                }
            })
            .collect();
        Ok(MetricsReport {
            n: overall.n,
            threshold: self.threshold(),
            overall,
            attributes,
            warnings: self.warnings(),
            bootstrap: None,
        })
    }

    /// One warning per set without a positive or without a negative sample.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut check = |prefix: String, stats: &SetStats| {
            if stats.confusion().positives() == 0 {
                warnings.push(format!("{prefix} no positive sample; tpr undefined"));
            }
            if stats.confusion().negatives() == 0 {
                warnings.push(format!("{prefix} no negative sample; tnr and fpr undefined"));
            }
        };
        check("overall: there is".to_string(), self.overall());
        for a in self.attributes() {
            for (group, stats) in a.groups() {
                check(format!("attribute '{}': group '{group}' has", a.name()), stats);
            }
        }
        warnings
    }
}

/// A value as reported: a non-finite result counts as undefined.
fn metric_value(key: &str, value: Option<f64>) -> MetricValue {
    MetricValue {
        key: key.to_string(),
        value: value.filter(|v| v.is_finite()),
        ci: None,
    }
}
