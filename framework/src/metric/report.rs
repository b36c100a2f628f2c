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
        self.metrics
            .iter()
            .find(|m| m.key == key)
            .and_then(|m| m.value)
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
        self.metrics
            .iter()
            .find(|m| m.key == key)
            .and_then(|m| m.value)
    }

    /// The per-set metrics of one group.
    pub fn group(&self, name: &str) -> Option<&SetReport> {
        self.groups
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, set)| set)
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

/// `{"n": .., key: value, ..}`.
struct SetJson<'a>(&'a SetReport);

impl Serialize for SetJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.0.metrics.len()))?;
        map.serialize_entry("n", &self.0.n)?;
        for m in &self.0.metrics {
            map.serialize_entry(&m.key, &m.value)?;
        }
        map.end()
    }
}

/// `{group: {..}, ..}`.
struct GroupsJson<'a>(&'a [(String, SetReport)]);

impl Serialize for GroupsJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, set)| (name, SetJson(set))))
    }
}

/// `{"groups": {..}, key: value, ..}`.
struct AttributeJson<'a>(&'a AttributeReport);

impl Serialize for AttributeJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1 + self.0.metrics.len()))?;
        map.serialize_entry("groups", &GroupsJson(&self.0.groups))?;
        for m in &self.0.metrics {
            map.serialize_entry(&m.key, &m.value)?;
        }
        map.end()
    }
}

/// `{attribute: {..}, ..}`.
struct AttributesJson<'a>(&'a [AttributeReport]);

impl Serialize for AttributesJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|a| (&a.name, AttributeJson(a))))
    }
}

impl Serialize for MetricsReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(5))?;
        map.serialize_entry("n", &self.n)?;
        map.serialize_entry("threshold", &self.threshold)?;
        map.serialize_entry("overall", &SetJson(&self.overall))?;
        map.serialize_entry("attributes", &AttributesJson(&self.attributes))?;
        map.serialize_entry("warnings", &self.warnings)?;
        map.end()
    }
}
