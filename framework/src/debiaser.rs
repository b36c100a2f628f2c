//! The `Debiaser` plugin kind: a method that fits on training data through a backbone and produces a
//! [`Predictor`] that scores any split (a trained probe, a probe on noise-edited images, a
//! fine-tuned model, ...).

use candle_core::{Device, Tensor, Var};

use crate::backbone::Backbone;
use crate::config::PluginSpec;
use crate::dataset::Split;
use crate::optimizer::Optimizer;
use crate::registry::Registry;

/// Labels and sensitive attributes of one split, aligned with its features.
#[derive(Debug, Clone, Default)]
pub struct SplitData {
    /// Sample ids, in order.
    pub ids: Vec<String>,
    /// Binary target labels.
    pub labels: Vec<u8>,
    /// One column per sensitive attribute (in the dataset's attribute order), one value per sample.
    pub attributes: Vec<Vec<String>>,
}

impl SplitData {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The column of the named attribute.
    pub fn attribute(&self, names: &[String], name: &str) -> Option<&[String]> {
        names
            .iter()
            .position(|n| n == name)
            .map(|i| self.attributes[i].as_slice())
    }
}

/// What a debiaser can read: the backbone, each split's labels/attributes and (cached) features.
pub trait DataAccess {
    /// The backbone the experiment uses.
    fn backbone(&self) -> &dyn Backbone;

    /// Names of the sensitive attributes.
    fn attribute_names(&self) -> &[String];

    /// Labels and attributes of a split.
    fn split(&self, split: Split) -> &SplitData;

    /// Backbone features of every sample of a split, `[N, D]` f32 on the compute device, from the
    /// on-disk feature cache when present.
    fn features(&self, split: Split) -> anyhow::Result<Tensor>;

    /// Preprocessed images of samples `start..start+len` of a split, *before* normalisation
    /// (`[len, 3, H, W]`, values in [0, 1]); for methods that edit the input (DNE).
    fn unit_pixels(&self, split: Split, start: usize, len: usize) -> anyhow::Result<Tensor>;
}

/// Receives what a debiaser reports while it trains.
pub trait TrainingMonitor {
    /// Record one epoch: its mean training loss and, when given, the model's scores on the
    /// validation split (the runner turns them into `val_*` metrics). Returns an error, which the
    /// debiaser must propagate, when the loss is not finite.
    fn epoch(&mut self, epoch: usize, train_loss: f64, val_scores: Option<&[f64]>) -> anyhow::Result<()>;

    /// Record extra named values at a step (e.g. forward-pass counts, leakage accuracy).
    fn log(&mut self, step: usize, values: &[(&str, f64)]) -> anyhow::Result<()>;

    /// Advance a progress indicator by one unit of `total` (epochs or steps).
    fn progress(&mut self, done: usize, total: usize);
}

/// Everything a debiaser needs to fit.
pub struct FitContext<'a> {
    /// Data and features.
    pub data: &'a dyn DataAccess,
    /// To build optimisers (and other plugins) from nested specs.
    pub registry: &'a Registry,
    /// The compute device.
    pub device: Device,
    /// The experiment seed; a debiaser seeds every random choice from it.
    pub seed: u64,
    /// Where to report training progress.
    pub monitor: &'a mut dyn TrainingMonitor,
}

impl FitContext<'_> {
    /// Build the optimiser described by `spec` over `vars`, seeded from the experiment seed.
    pub fn optimizer(&self, spec: &PluginSpec, vars: Vec<Var>) -> anyhow::Result<Box<dyn Optimizer>> {
        self.registry.optimizer(spec, vars, self.seed)
    }
}

/// A file a fitted model wants saved with the run (probe weights, a noise tensor, a PNG, ...).
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Path relative to the run's artifact root.
    pub path: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// A fitted model that scores samples: P(label = 1) for every sample of a split.
pub trait Predictor {
    /// Scores in [0, 1] for every sample of `split`, in the split's order.
    fn predict(&self, data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>>;

    /// The features `[N, D]` the model's classifier reads for `split`: the backbone's features
    /// unless the method changes them (DNE: features of noise-edited images). The runner probes
    /// them for sensitive-attribute leakage.
    fn representation(&self, data: &dyn DataAccess, split: Split) -> anyhow::Result<Tensor> {
        data.features(split)
    }

    /// Files to store with the run.
    fn artifacts(&self) -> anyhow::Result<Vec<Artifact>> {
        Ok(Vec::new())
    }
}

/// A debiasing (or baseline) method.
pub trait Debiaser {
    /// The plugin kind, e.g. `erm`.
    fn kind(&self) -> &str;

    /// Fit on the training split (and, for model selection, the validation split).
    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>>;
}
