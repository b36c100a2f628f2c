//! `dne`: Debiased Noise Editing (Jin et al., MICCAI 2024), the three-step pipeline of the released
//! code on any backbone:
//!
//! 1. linear-probe a classifier of the (binary) sensitive attribute on frozen backbone features
//!    (`train_saCls.py`: Adam lr 1e-4, 50 epochs, batch 64);
//! 2. train one noise plane, zero-initialised and added to every preprocessed image before
//!    normalisation, that maximises that classifier's cross-entropy with an L2 penalty: white-box by
//!    backpropagation through the frozen backbone (`optimizer: {kind: adam}`, `train_dne.py`) or
//!    black-box with GeZO (`optimizer: {kind: gezo}`, `train_dne_gezo.py`);
//! 3. linear-probe the target task on features of noised images (train, val and test are all
//!    noised, `finetune_fm.py --adddne`).
//!
//! It logs the step-1 attribute classifier's accuracy and AUC on the test split before and after
//! the noise (`dne_sa_test_*`: the leakage the noise removes from *that* classifier); the runner's
//! `test_leakage_auc_*` retrains an adversary on the noised features (an adaptive attacker, the
//! stricter measure). The noise is saved as `noise/noise.safetensors` and `noise/noise.png`.
//!
//! ```yaml
//! debiaser:
//!   kind: dne
//!   attribute: sex
//!   sa_classifier: {epochs: 50, batch_size: 64, optimizer: {kind: adam, lr: 0.0001}}
//!   noise:
//!     epochs: 25
//!     batch_size: 128
//!     lambda_sa: 1.0
//!     lambda_reg: 0.001
//!     optimizer: {kind: adam, lr: 0.00005}     # or {kind: gezo, variant: as-coded}
//!   probe: {epochs: 30, batch_size: 64, optimizer: {kind: adamw, lr: 0.0003}}
//! ```

mod noise;
mod training;

use std::collections::HashMap;

use candle_core::Tensor;
use fairlab_framework::debiaser::{Artifact, DataAccess, FitContext, Predictor};
use fairlab_framework::features::encode_unit;
use fairlab_framework::metric::{evaluate, PredictionSet};
use fairlab_framework::probe::{
    attribute_column, attribute_name, train_probe, train_probe_with, LinearProbe, ProbeConfig, ProbeTraining,
};
use fairlab_framework::{Debiaser, Registry, Split};
use serde::Deserialize;

use crate::batched::map_split;
pub use noise::NoiseEdit;
pub use training::{binary_codes, train_noise, NoiseConfig, NoiseData, NoiseTrainingReport};

/// `dne` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DneConfig {
    /// The sensitive attribute the noise hides (binary); default: the dataset's first attribute.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Step 1: the sensitive-attribute classifier.
    #[serde(default = "default_sa_classifier")]
    pub sa_classifier: ProbeConfig,
    /// Step 2: the noise.
    #[serde(default)]
    pub noise: NoiseConfig,
    /// Step 3: the target-task probe on noised features.
    #[serde(default)]
    pub probe: ProbeConfig,
}

fn default_sa_classifier() -> ProbeConfig {
    serde_norway::from_str("{epochs: 50, batch_size: 64, optimizer: {kind: adam, lr: 0.0001}}")
        .expect("static probe settings")
}

/// The DNE method.
pub struct Dne {
    cfg: DneConfig,
}

impl Dne {
    /// DNE with these settings.
    pub fn new(cfg: DneConfig) -> Self {
        Self { cfg }
    }
}

/// Accuracy and AUC of attribute scores against attribute codes, as `(name, value)` pairs named
/// `dne_sa_test_{acc,auc}_<suffix>`; an undefined value (one group only) is left out.
fn leakage(registry: &Registry, codes: &[u8], scores: &[f64], suffix: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let report = evaluate(registry, &PredictionSet::new(codes, scores), 0.5)?;
    Ok(["acc", "auc"]
        .into_iter()
        .filter_map(|key| Some((format!("dne_sa_test_{key}_{suffix}"), report.overall.get(key)?)))
        .collect())
}

/// Backbone features of a whole split with the noise added to every image.
fn noised_features(data: &dyn DataAccess, noise: &NoiseEdit, split: Split) -> anyhow::Result<Tensor> {
    map_split(data, split, |unit| encode_unit(data.backbone(), &noise.apply(unit)?))
}

impl Debiaser for Dne {
    fn kind(&self) -> &str {
        "dne"
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let key = "debiaser.attribute";
        let attribute = attribute_name(ctx.data, self.cfg.attribute.as_deref(), key)?.to_string();
        let column = |split: Split| attribute_column(ctx.data, split, Some(&attribute), key);
        let (train_codes, groups) = binary_codes(column(Split::Train)?, &attribute)?;
        let test_codes = codes_for(column(Split::Test)?, &groups, &attribute)?;
        tracing::info!(attribute, ?groups, "DNE: group {} is class 1", groups[1]);

        // Step 1: the sensitive-attribute classifier on clean features.
        let train_clean = ctx.data.features(Split::Train)?;
        let sa_probe = train_probe_with(
            ctx,
            &self.cfg.sa_classifier,
            &train_clean,
            &train_codes,
            ProbeTraining::auxiliary("dne_sa_"),
        )?;
        let test_clean = ctx.data.features(Split::Test)?;
        let mut values = leakage(ctx.registry, &test_codes, &sa_probe.scores(&test_clean)?, "clean")?;

        // Step 2: the noise.
        let n = ctx.data.split(Split::Train).len();
        let pixels = ctx.data.unit_pixels(Split::Train, 0, n)?;
        let (_, _, height, width) = pixels.dims4()?;
        let noise = NoiseEdit::zeros(height, width, pixels.device())?;
        let attribute_targets = Tensor::from_iter(train_codes.iter().map(|&c| c as f32), pixels.device())?;
        let report = train_noise(
            ctx,
            &self.cfg.noise,
            &noise,
            &sa_probe,
            &NoiseData {
                pixels: &pixels,
                attribute: &attribute_targets,
            },
        )?;
        drop(pixels);

        // Step 3: features of noised images, leakage after the noise, and the target probe.
        let noised: HashMap<Split, Tensor> = Split::ALL
            .into_iter()
            .map(|split| Ok((split, noised_features(ctx.data, &noise, split)?)))
            .collect::<anyhow::Result<_>>()?;
        values.extend(leakage(
            ctx.registry,
            &test_codes,
            &sa_probe.scores(&noised[&Split::Test])?,
            "noised",
        )?);
        values.push(("dne_noise_steps".to_string(), report.steps as f64));
        values.push(("dne_noise_image_queries".to_string(), report.image_queries as f64));
        let pairs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        ctx.monitor.log(0, &pairs)?;
        let labels = ctx.data.split(Split::Train).labels.clone();
        let probe = train_probe(
            ctx,
            &self.cfg.probe,
            &noised[&Split::Train],
            &labels,
            Some(&noised[&Split::Val]),
        )?;
        Ok(Box::new(DnePredictor {
            probe,
            sa_probe,
            noise,
            noised,
        }))
    }
}

/// Codes of another split's attribute column with the training split's group order.
fn codes_for(column: &[String], groups: &[String; 2], attribute: &str) -> anyhow::Result<Vec<u8>> {
    column
        .iter()
        .map(|g| match groups.iter().position(|n| n == g) {
            Some(i) => Ok(i as u8),
            None => {
                anyhow::bail!("attribute `{attribute}` has group `{g}` outside the training split's groups {groups:?}")
            }
        })
        .collect()
}

/// Scores splits with the target probe on noised features.
struct DnePredictor {
    probe: LinearProbe,
    sa_probe: LinearProbe,
    noise: NoiseEdit,
    noised: HashMap<Split, Tensor>,
}

impl Predictor for DnePredictor {
    fn predict(&self, _data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>> {
        Ok(self.probe.scores(&self.noised[&split])?)
    }

    fn representation(&self, _data: &dyn DataAccess, split: Split) -> anyhow::Result<Tensor> {
        Ok(self.noised[&split].clone())
    }

    fn artifacts(&self) -> anyhow::Result<Vec<Artifact>> {
        Ok(vec![
            self.probe.to_artifact("model/probe.safetensors")?,
            self.sa_probe.to_artifact("model/sa_classifier.safetensors")?,
            self.noise.safetensors_artifact("noise/noise.safetensors")?,
            self.noise.png_artifact("noise/noise.png")?,
        ])
    }
}
