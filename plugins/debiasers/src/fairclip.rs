//! `fairclip`: FairCLIP's Sinkhorn regulariser (Luo et al., CVPR 2024) on the score distribution of
//! a linear probe over any backbone's features, so that it can be compared with the other methods
//! on the same features. The loss of a mini-batch is
//!
//! `BCE(batch) + lambda * sum_g S(scores of the batch, scores of group g)`
//!
//! with `S` the debiased Sinkhorn divergence of geomloss (`SamplesLoss("sinkhorn", p=2, blur,
//! scaling)`, [`fairlab_framework::sinkhorn`]) between 1-D empirical distributions of probe logits.
//! Two modes, as `../shared/spec/algorithms.md` §2.3 describes the two readings:
//!
//! - `aligned` (the paper's formula, the reproduction study's A-FairCLIP): group `g`'s scores are
//!   the logits of the batch's own members of `g` (groups absent from the batch are skipped);
//!   gradients flow through both distributions.
//! - `official` (what `finetune_FairCLIP.py` does): group `g`'s scores come from a separate batch of
//!   `group_batch_size` training samples of `g`, computed without gradient and divided by their
//!   sum; the batch's own scores stay raw.
//!
//! ```yaml
//! debiaser:
//!   kind: fairclip
//!   attribute: sex
//!   mode: aligned          # or official
//!   lambda: 0.1
//!   sinkhorn: {blur: 0.0001, scaling: 0.5}
//!   group_batch_size: 32   # official mode only
//!   epochs: 30
//!   batch_size: 64
//!   optimizer: {kind: adamw, lr: 0.0003, weight_decay: 0.01}
//! ```
//!
//! FairCLIP's CLIP fine-tuning (contrastive loss plus the same regulariser on image-text
//! similarity scores) needs the CLIP backbone and is not part of this plugin yet.

use candle_core::{Tensor, D};
use fairlab_framework::debiaser::{FitContext, Predictor};
use fairlab_framework::probe::{bce_with_logits, fit_target_probe, Batch, BatchLoss, Groups, ProbeConfig, Shuffled};
use fairlab_framework::sinkhorn::{sinkhorn_divergence, SinkhornConfig};
use fairlab_framework::{ConfigError, Debiaser, Split};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use serde::Deserialize;

/// Where each group's score distribution comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The batch's own members of the group, with gradient (the paper; A-FairCLIP).
    #[default]
    Aligned,
    /// A separate batch of the group, without gradient, normalised by its sum (the released code).
    Official,
}

/// `fairclip` settings: its own next to the probe's, in one flat section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairClipConfig {
    /// The sensitive attribute; the dataset's first when absent.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Which reading of FairCLIP.
    #[serde(default)]
    pub mode: Mode,
    /// Weight of the Sinkhorn terms.
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// The divergence (geomloss defaults: blur 0.05, scaling 0.5; FairCLIP: blur 1e-4).
    #[serde(default = "default_sinkhorn")]
    pub sinkhorn: SinkhornConfig,
    /// Size of each group's separate batch in `official` mode (FairCLIP's `batchsize_fairloss`).
    #[serde(default = "default_group_batch_size")]
    pub group_batch_size: usize,
    /// How the probe is trained.
    #[serde(flatten)]
    pub probe: ProbeConfig,
}

fn default_lambda() -> f64 {
    0.1
}
fn default_sinkhorn() -> SinkhornConfig {
    SinkhornConfig {
        blur: 1e-4,
        scaling: 0.5,
    }
}
fn default_group_batch_size() -> usize {
    32
}

/// The FairCLIP-regularised probe.
pub struct FairClip {
    cfg: FairClipConfig,
}

impl FairClip {
    /// FairCLIP (probe mode) with these settings; the Sinkhorn settings are checked here.
    pub fn new(cfg: FairClipConfig) -> anyhow::Result<Self> {
        cfg.sinkhorn
            .validate()
            .map_err(|e| ConfigError::at_key("debiaser.sinkhorn", e.to_string()))?;
        if !(cfg.lambda.is_finite() && cfg.lambda >= 0.0) {
            return Err(ConfigError::at_key("debiaser.lambda", format!("must be >= 0, got {}", cfg.lambda)).into());
        }
        if cfg.group_batch_size == 0 {
            return Err(ConfigError::at_key("debiaser.group_batch_size", "must be at least 1").into());
        }
        Ok(Self { cfg })
    }
}

impl Debiaser for FairClip {
    fn kind(&self) -> &str {
        "fairclip"
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let groups = Groups::of(
            ctx.data,
            Split::Train,
            self.cfg.attribute.as_deref(),
            false,
            "debiaser.attribute",
        )?;
        let loss = SinkhornRegularised::new(&self.cfg, &groups, ctx.seed);
        fit_target_probe(ctx, &self.cfg.probe, Shuffled::default(), loss)
    }
}

/// The batch loss: mean BCE plus `lambda` times the Sinkhorn terms; it logs the mean of each
/// group's term per epoch as `sinkhorn_<group>`.
pub struct SinkhornRegularised {
    mode: Mode,
    lambda: f64,
    sinkhorn: SinkhornConfig,
    group_batch_size: usize,
    /// Group id of every training sample.
    ids: Vec<u32>,
    /// Group names, indexed by id.
    names: Vec<String>,
    /// Training samples of each group.
    members: Vec<Vec<u32>>,
    rng: StdRng,
    /// Sum and count of each group's term this epoch.
    terms: Vec<(f64, usize)>,
}

impl SinkhornRegularised {
    /// The loss for these settings and training groups; `seed` drives the group batches.
    pub fn new(cfg: &FairClipConfig, groups: &Groups, seed: u64) -> Self {
        let mut members = vec![Vec::new(); groups.names().len()];
        for (i, &g) in groups.ids().iter().enumerate() {
            members[g as usize].push(i as u32);
        }
        Self {
            mode: cfg.mode,
            lambda: cfg.lambda,
            sinkhorn: cfg.sinkhorn,
            group_batch_size: cfg.group_batch_size,
            ids: groups.ids().to_vec(),
            names: groups.names().to_vec(),
            terms: vec![(0.0, 0); members.len()],
            members,
            rng: StdRng::seed_from_u64(seed ^ 0xFA1C),
        }
    }

    /// Group `g`'s scores for this batch, or `None` when the group has no sample to compare.
    fn group_scores(&mut self, batch: &Batch<'_>, g: usize) -> anyhow::Result<Option<Tensor>> {
        match self.mode {
            Mode::Aligned => {
                let rows: Vec<u32> = (0..batch.indices.len() as u32)
                    .filter(|&r| self.ids[batch.indices[r as usize] as usize] == g as u32)
                    .collect();
                if rows.is_empty() {
                    return Ok(None);
                }
                let rows = Tensor::new(rows.as_slice(), batch.logits.device())?;
                Ok(Some(batch.logits.index_select(&rows, 0)?))
            }
            Mode::Official => {
                if self.members[g].is_empty() {
                    return Ok(None);
                }
                let sample: Vec<u32> = self.members[g]
                    .choose_multiple(&mut self.rng, self.group_batch_size)
                    .copied()
                    .collect();
                let idx = Tensor::new(sample.as_slice(), batch.features.device())?;
                let scores = batch.probe.logits(&batch.features.index_select(&idx, 0)?)?.detach();
                let total = scores.sum_all()?;
                Ok(Some(scores.broadcast_div(&total)?))
            }
        }
    }
}

impl BatchLoss for SinkhornRegularised {
    fn loss(&mut self, batch: &Batch<'_>) -> anyhow::Result<Tensor> {
        let mut loss = bce_with_logits(batch.logits, batch.targets, None)?;
        if self.lambda == 0.0 {
            return Ok(loss);
        }
        let x = batch.logits.to_dtype(candle_core::DType::F64)?.unsqueeze(D::Minus1)?;
        for g in 0..self.names.len() {
            let Some(y) = self.group_scores(batch, g)? else {
                continue;
            };
            let y = y.to_dtype(candle_core::DType::F64)?.unsqueeze(D::Minus1)?;
            let term = sinkhorn_divergence(&x, &y, None, None, &self.sinkhorn)?;
            let value = term.to_scalar::<f64>()?;
            self.terms[g].0 += value;
            self.terms[g].1 += 1;
            loss = (loss + (term * self.lambda)?.to_dtype(batch.logits.dtype())?)?;
        }
        Ok(loss)
    }

    fn epoch_values(&mut self) -> Vec<(String, f64)> {
        let values = self
            .names
            .iter()
            .zip(&self.terms)
            .filter(|(_, (_, count))| *count > 0)
            .map(|(name, (sum, count))| (format!("sinkhorn_{name}"), sum / *count as f64))
            .collect();
        self.terms.iter_mut().for_each(|t| *t = (0.0, 0));
        values
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use fairlab_framework::probe::LinearProbe;

    use super::*;

    fn config(mode: &str, lambda: f64) -> FairClipConfig {
        serde_norway::from_str(&format!("{{mode: {mode}, lambda: {lambda}, group_batch_size: 4}}")).unwrap()
    }

    /// Loss of one batch of 8 samples whose logits are the features themselves (a probe with
    /// weight 1 and no standardisation), groups alternating `A`, `B`.
    fn batch_loss(mode: &str, lambda: f64, logits: &[f32]) -> (f64, f64, Vec<(String, f64)>) {
        let dev = Device::Cpu;
        let features = Tensor::new(logits, &dev).unwrap().unsqueeze(1).unwrap();
        let probe = LinearProbe::new(&features, false).unwrap();
        probe.vars()[0]
            .set(&Tensor::ones((1, 1), DType::F32, &dev).unwrap())
            .unwrap();
        let values: Vec<String> = (0..logits.len()).map(|i| ["A", "B"][i % 2].to_string()).collect();
        let groups = Groups::from_columns(&values, None);
        let mut loss = SinkhornRegularised::new(&config(mode, lambda), &groups, 0);
        let indices: Vec<u32> = (0..logits.len() as u32).collect();
        let targets = Tensor::zeros(logits.len(), DType::F32, &dev).unwrap();
        let out = probe.logits(&features).unwrap();
        let batch = Batch {
            probe: &probe,
            features: &features,
            indices: &indices,
            logits: &out,
            targets: &targets,
        };
        let total = loss.loss(&batch).unwrap().to_scalar::<f32>().unwrap() as f64;
        let bce = bce_with_logits(&out, &targets, None)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        (total, bce, loss.epoch_values())
    }

    #[test]
    fn groups_with_the_batch_distribution_add_nothing_and_shifted_groups_add_a_penalty() {
        // A and B hold the same values: each group's distribution equals the batch's.
        let same = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let (total, bce, logged) = batch_loss("aligned", 1.0, &same);
        assert!((total - bce).abs() < 1e-5, "{total} vs {bce}");
        assert_eq!(logged.len(), 2);
        // B shifted by 4: both groups now differ from the batch.
        let shifted = [0.0f32, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0];
        let (total, bce, logged) = batch_loss("aligned", 1.0, &shifted);
        assert!(total > bce + 0.5, "{total} vs {bce}");
        assert!(
            logged.iter().all(|(name, v)| name.starts_with("sinkhorn_") && *v > 0.1),
            "{logged:?}"
        );
        let (zero, bce0, _) = batch_loss("aligned", 0.0, &shifted);
        assert!((zero - bce0).abs() < 1e-6);
    }

    #[test]
    fn official_mode_compares_with_sum_normalised_group_batches() {
        let shifted = [1.0f32, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0];
        let (total, bce, logged) = batch_loss("official", 1.0, &shifted);
        // Group scores divided by their sum lie in (0, 1); the raw batch (1..7) is far from them.
        assert!(total > bce + 1.0, "{total} vs {bce}");
        assert_eq!(logged.len(), 2);
    }

    #[test]
    fn bad_settings_are_keyed_errors() {
        let err = FairClip::new(config("aligned", -1.0)).err().unwrap().to_string();
        assert!(err.contains("debiaser.lambda"), "{err}");
        let mut cfg = config("aligned", 1.0);
        cfg.sinkhorn.scaling = 1.5;
        let err = FairClip::new(cfg).err().unwrap().to_string();
        assert!(err.contains("debiaser.sinkhorn"), "{err}");
    }
}
