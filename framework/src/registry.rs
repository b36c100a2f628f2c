//! The plugin registry: built-in (and, later, dynamically loaded) plugins register a factory under a
//! name; the YAML `kind:` of a section selects one. An unknown kind is a [`ConfigError`] listing the
//! known kinds and suggesting the nearest.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Var;

use crate::backbone::Backbone;
use crate::config::PluginSpec;
use crate::dataset::Dataset;
use crate::debiaser::Debiaser;
use crate::error::ConfigError;
use crate::metric::Metric;
use crate::optimizer::Optimizer;

/// Builds a backbone from its YAML section.
pub type BackboneFactory = Box<dyn Fn(&PluginSpec) -> anyhow::Result<Box<dyn Backbone>> + Send + Sync>;
/// Builds an optimiser over the given vars from its YAML section and a seed (for the random
/// directions of zeroth-order methods).
pub type OptimizerFactory = Box<dyn Fn(&PluginSpec, Vec<Var>, u64) -> anyhow::Result<Box<dyn Optimizer>> + Send + Sync>;
/// Builds a debiaser from its YAML section.
pub type DebiaserFactory = Box<dyn Fn(&PluginSpec) -> anyhow::Result<Box<dyn Debiaser>> + Send + Sync>;
/// Builds a dataset from its YAML section.
pub type DatasetFactory = Box<dyn Fn(&PluginSpec) -> anyhow::Result<Box<dyn Dataset>> + Send + Sync>;

/// The plugin kinds, as shown by `fairlab plugins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginKind {
    /// Image/text encoders.
    Backbone,
    /// Gradient and zeroth-order optimisers.
    Optimizer,
    /// Debiasing methods and baselines.
    Debiaser,
    /// Performance and fairness metrics.
    Metric,
    /// Data sources.
    Dataset,
}

impl PluginKind {
    /// The YAML section / display name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Backbone => "backbone",
            PluginKind::Optimizer => "optimizer",
            PluginKind::Debiaser => "debiaser",
            PluginKind::Metric => "metric",
            PluginKind::Dataset => "dataset",
        }
    }
}

struct Entry<F> {
    description: String,
    factory: F,
}

/// A name and a one-line description of a registered plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Its kind.
    pub kind: PluginKind,
    /// The name YAML `kind:` selects it by.
    pub name: String,
    /// One line on what it is.
    pub description: String,
}

/// All registered plugins, by kind and name.
#[derive(Default)]
pub struct Registry {
    backbones: BTreeMap<String, Entry<BackboneFactory>>,
    optimizers: BTreeMap<String, Entry<OptimizerFactory>>,
    debiasers: BTreeMap<String, Entry<DebiaserFactory>>,
    datasets: BTreeMap<String, Entry<DatasetFactory>>,
    metrics: BTreeMap<String, Entry<Arc<dyn Metric>>>,
    /// Metric names in registration order, the order reports list metrics in.
    metric_order: Vec<String>,
}

fn insert<F>(map: &mut BTreeMap<String, Entry<F>>, kind: PluginKind, name: &str, description: &str, factory: F) {
    let previous = map.insert(
        name.to_string(),
        Entry {
            description: description.to_string(),
            factory,
        },
    );
    assert!(previous.is_none(), "{} plugin `{name}` registered twice", kind.as_str());
}

fn lookup<'a, F>(
    map: &'a BTreeMap<String, Entry<F>>,
    kind: PluginKind,
    spec: &PluginSpec,
) -> Result<&'a F, ConfigError> {
    map.get(&spec.kind)
        .map(|e| &e.factory)
        .ok_or_else(|| unknown_kind(kind, spec, map.keys()))
}

/// The error for a `kind:` that no plugin has, keyed `<section>.kind`, with the known kinds and
/// the nearest one.
fn unknown_kind<'a>(kind: PluginKind, spec: &PluginSpec, known: impl Iterator<Item = &'a String>) -> ConfigError {
    let name = spec.kind.as_str();
    let known: Vec<&String> = known.collect();
    let nearest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&k.to_lowercase(), &name.to_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 2).max(2))
        .min();
    let names: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
    let mut message = format!(
        "unknown {} kind `{name}`; known kinds: {}",
        kind.as_str(),
        names.join(", ")
    );
    if let Some((_, n)) = nearest {
        message.push_str(&format!(" (did you mean `{n}`?)"));
    }
    ConfigError::at_key(format!("{}.kind", spec.path), message)
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register a backbone. Panics when the name is taken (a programming error).
    pub fn register_backbone(&mut self, name: &str, description: &str, factory: BackboneFactory) {
        insert(&mut self.backbones, PluginKind::Backbone, name, description, factory);
    }

    /// Register an optimiser.
    pub fn register_optimizer(&mut self, name: &str, description: &str, factory: OptimizerFactory) {
        insert(&mut self.optimizers, PluginKind::Optimizer, name, description, factory);
    }

    /// Register a debiaser.
    pub fn register_debiaser(&mut self, name: &str, description: &str, factory: DebiaserFactory) {
        insert(&mut self.debiasers, PluginKind::Debiaser, name, description, factory);
    }

    /// Register a dataset.
    pub fn register_dataset(&mut self, name: &str, description: &str, factory: DatasetFactory) {
        insert(&mut self.datasets, PluginKind::Dataset, name, description, factory);
    }

    /// Register a metric under its own name.
    pub fn register_metric(&mut self, metric: Arc<dyn Metric>) {
        let name = metric.name().to_string();
        let description = metric.description().to_string();
        insert(&mut self.metrics, PluginKind::Metric, &name, &description, metric);
        self.metric_order.push(name);
    }

    /// Build the backbone a spec names.
    pub fn backbone(&self, spec: &PluginSpec) -> anyhow::Result<Box<dyn Backbone>> {
        lookup(&self.backbones, PluginKind::Backbone, spec)?(spec)
    }

    /// Build the optimiser a spec names over `vars`; `seed` drives any randomness it has.
    pub fn optimizer(&self, spec: &PluginSpec, vars: Vec<Var>, seed: u64) -> anyhow::Result<Box<dyn Optimizer>> {
        lookup(&self.optimizers, PluginKind::Optimizer, spec)?(spec, vars, seed)
    }

    /// Build the debiaser a spec names.
    pub fn debiaser(&self, spec: &PluginSpec) -> anyhow::Result<Box<dyn Debiaser>> {
        lookup(&self.debiasers, PluginKind::Debiaser, spec)?(spec)
    }

    /// Build the dataset a spec names.
    pub fn dataset(&self, spec: &PluginSpec) -> anyhow::Result<Box<dyn Dataset>> {
        lookup(&self.datasets, PluginKind::Dataset, spec)?(spec)
    }

    /// Check that a spec names a registered plugin of `kind`, without building it.
    pub fn check(&self, kind: PluginKind, spec: &PluginSpec) -> Result<(), ConfigError> {
        match kind {
            PluginKind::Backbone => lookup(&self.backbones, kind, spec).map(|_| ()),
            PluginKind::Optimizer => lookup(&self.optimizers, kind, spec).map(|_| ()),
            PluginKind::Debiaser => lookup(&self.debiasers, kind, spec).map(|_| ()),
            PluginKind::Dataset => lookup(&self.datasets, kind, spec).map(|_| ()),
            PluginKind::Metric => lookup(&self.metrics, kind, spec).map(|_| ()),
        }
    }

    /// All registered metrics, in registration order.
    pub fn metrics(&self) -> impl Iterator<Item = &Arc<dyn Metric>> {
        self.metric_order.iter().map(|name| &self.metrics[name].factory)
    }

    /// Every registered plugin, grouped by kind then sorted by name.
    pub fn list(&self) -> Vec<PluginInfo> {
        fn infos<F>(kind: PluginKind, map: &BTreeMap<String, Entry<F>>) -> impl Iterator<Item = PluginInfo> + '_ {
            map.iter().map(move |(name, e)| PluginInfo {
                kind,
                name: name.clone(),
                description: e.description.clone(),
            })
        }
        infos(PluginKind::Backbone, &self.backbones)
            .chain(infos(PluginKind::Optimizer, &self.optimizers))
            .chain(infos(PluginKind::Debiaser, &self.debiasers))
            .chain(infos(PluginKind::Metric, &self.metrics))
            .chain(infos(PluginKind::Dataset, &self.datasets))
            .collect()
    }
}
