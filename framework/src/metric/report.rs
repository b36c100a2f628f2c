//! [`MetricsReport`]: every metric on all samples, on each group and per attribute, with warnings.
//! It serialises to the JSON of the metrics contract (`docs/metrics.md`).

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// One metric's value; `None` where the metric is undefined (JSON null).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// The metric's key, e.g. `auc`.
    pub key: String,
    /// Its value.
    pub value: Option<f64>,
    /// Its bootstrap percentile confidence interval `[low, high]`, when one was computed and the
    /// value is defined in at least one resample.
    pub ci: Option<[f64; 2]>,
}

/// The per-set metrics of one set of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SetReport {
    /// Number of samples.
    pub n: u64,
    /// The per-set metrics, in registration order.
    pub metrics: Vec<MetricValue>,
}

impl SetReport {
    /// The value of metric `key`; `None` when it is undefined or not in the report.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).and_then(|m| m.value)
    }
}

/// One attribute: its groups' per-set metrics and its per-attribute metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeReport {
    /// The attribute's name.
    pub name: String,
    /// Each group present in the data, sorted by name, with its per-set metrics.
    pub groups: Vec<(String, SetReport)>,
    /// The per-attribute metrics, in registration order.
    pub metrics: Vec<MetricValue>,
}

impl AttributeReport {
    /// The value of per-attribute metric `key`; `None` when undefined or not in the report.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.metrics.iter().find(|m| m.key == key).and_then(|m| m.value)
    }

    /// The per-set metrics of one group.
    pub fn group(&self, name: &str) -> Option<&SetReport> {
        self.groups.iter().find(|(g, _)| g == name).map(|(_, set)| set)
    }
}

/// The result of an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsReport {
    /// Number of samples.
    pub n: u64,
    /// The decision threshold used where hard predictions were not given.
    pub threshold: f64,
    /// The per-set metrics of all samples.
    pub overall: SetReport,
    /// Each attribute, in input order.
    pub attributes: Vec<AttributeReport>,
    /// Data problems that make some values undefined (e.g. a group with no positive sample).
    pub warnings: Vec<String>,
    /// How the confidence intervals were computed, when they were.
    pub bootstrap: Option<BootstrapSettings>,
}

/// Settings of a bootstrap: percentile intervals from resamples stratified by group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapSettings {
    /// Number of resamples.
    pub resamples: usize,
    /// Seed of the resampling; the same seed gives the same intervals.
    pub seed: u64,
    /// Coverage of the intervals, e.g. 0.95.
    pub confidence: f64,
}

impl MetricsReport {
    /// The value of per-set metric `key` on all samples.
    pub fn overall(&self, key: &str) -> Option<f64> {
        self.overall.get(key)
    }

    /// One attribute's report.
    pub fn attribute(&self, name: &str) -> Option<&AttributeReport> {
        self.attributes.iter().find(|a| a.name == name)
    }

    /// The value of per-attribute metric `key` for attribute `attribute`.
    pub fn attribute_value(&self, attribute: &str, key: &str) -> Option<f64> {
        self.attribute(attribute).and_then(|a| a.get(key))
    }

    /// The value of per-set metric `key` on group `group` of attribute `attribute`.
    pub fn group_value(&self, attribute: &str, group: &str, key: &str) -> Option<f64> {
        self.attribute(attribute)
            .and_then(|a| a.group(group))
            .and_then(|s| s.get(key))
    }
}

/// A value: plain, or `{"value": .., "ci": [lo, hi]}` in a report with confidence intervals.
struct ValueJson<'a>(&'a MetricValue, bool);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ValueJson(m, with_ci) = *self;
        if !with_ci {
            return m.value.serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("value", &m.value)?;
        map.serialize_entry("ci", &m.ci)?;
        map.end()
    }
}

/// `{"n": .., key: value, ..}`.
struct SetJson<'a>(&'a SetReport, bool);

impl Serialize for SetJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.0.metrics.len()))?;
        map.serialize_entry("n", &self.0.n)?;
        for m in &self.0.metrics {
            map.serialize_entry(&m.key, &ValueJson(m, self.1))?;
        }
        map.end()
    }
}

/// `{group: {..}, ..}`.
struct GroupsJson<'a>(&'a [(String, SetReport)], bool);

impl Serialize for GroupsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, set)| (name, SetJson(set, self.1))))
    }
}

/// `{"groups": {..}, key: value, ..}`.
struct AttributeJson<'a>(&'a AttributeReport, bool);

impl Serialize for AttributeJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.0.metrics.len()))?;
        map.serialize_entry("groups", &GroupsJson(&self.0.groups, self.1))?;
        for m in &self.0.metrics {
            map.serialize_entry(&m.key, &ValueJson(m, self.1))?;
        }
        map.end()
    }
}

/// `{attribute: {..}, ..}`.
struct AttributesJson<'a>(&'a [AttributeReport], bool);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|a| (&a.name, AttributeJson(a, self.1))))
    }
}

impl Serialize for MetricsReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let with_ci = self.bootstrap.is_some();
        let mut map = serializer.serialize_map(Some(5 + usize::from(with_ci)))?;
        map.serialize_entry("n", &self.n)?;
        map.serialize_entry("threshold", &self.threshold)?;
        map.serialize_entry("overall", &SetJson(&self.overall, with_ci))?;
        map.serialize_entry("attributes", &AttributesJson(&self.attributes, with_ci))?;
        map.serialize_entry("warnings", &self.warnings)?;
        if let Some(bootstrap) = &self.bootstrap {
            map.serialize_entry("bootstrap", bootstrap)?;
        }
        map.end()
    }
}
