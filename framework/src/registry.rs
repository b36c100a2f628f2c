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
/// Builds an optimiser over the given vars from its YAML section.
pub type OptimizerFactory = Box<dyn Fn(&PluginSpec, Vec<Var>) -> anyhow::Result<Box<dyn Optimizer>> + Send + Sync>;
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
        .ok_or_else(|| unknown_kind(kind, &spec.kind, map.keys()).keyed(spec))
}

/// The error for a `kind:` that no plugin has, with the known kinds and the nearest one.
fn unknown_kind<'a>(kind: PluginKind, name: &str, known: impl Iterator<Item = &'a String>) -> UnknownKind {
    let known: Vec<String> = known.cloned().collect();
    let nearest = known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&k.to_lowercase(), &name.to_lowercase()), k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 2).max(2))
        .min()
        .map(|(_, k)| k.clone());
    let mut message = format!(
        "unknown {} kind `{name}`; known kinds: {}",
        kind.as_str(),
        known.join(", ")
    );
    if let Some(n) = nearest {
        message.push_str(&format!(" (did you mean `{n}`?)"));
    }
    UnknownKind(message)
}

struct UnknownKind(String);

impl UnknownKind {
    fn keyed(self, spec: &PluginSpec) -> ConfigError {
        ConfigError::at_key(format!("{}.kind", spec.path), self.0)
    }
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

    /// Build the optimiser a spec names over `vars`.
    pub fn optimizer(&self, spec: &PluginSpec, vars: Vec<Var>) -> anyhow::Result<Box<dyn Optimizer>> {
        lookup(&self.optimizers, PluginKind::Optimizer, spec)?(spec, vars)
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
        let known = match kind {
            PluginKind::Backbone => self.backbones.contains_key(&spec.kind),
            PluginKind::Optimizer => self.optimizers.contains_key(&spec.kind),
            PluginKind::Debiaser => self.debiasers.contains_key(&spec.kind),
            PluginKind::Dataset => self.datasets.contains_key(&spec.kind),
            PluginKind::Metric => self.metrics.contains_key(&spec.kind),
        };
        if known {
            return Ok(());
        }
        let names: Vec<String> = self
            .list()
            .into_iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.name)
            .collect();
        Err(unknown_kind(kind, &spec.kind, names.iter()).keyed(spec))
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
