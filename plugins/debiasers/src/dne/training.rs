//! Step 2 of DNE: train the noise plane to fool the frozen sensitive-attribute classifier,
//! white-box (any gradient optimiser backpropagates through the frozen backbone into the noise)
//! or black-box (GeZO only evaluates the loss at perturbed noise planes).
//!
//! Loss per batch (`engine_finetune.py:64-72`): `-lambda_sa * BCE(g(phi(x + noise)), a) +
//! lambda_reg * ||noise||_2` (Frobenius norm, not squared). Minimising it maximises the classifier's
//! cross-entropy (unbounded; the released code has no utility term).

use candle_core::Tensor;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::features::encode_unit;
use fairlab_framework::probe::{bce_with_logits, LinearProbe};
use fairlab_framework::{ConfigError, FitContext, RunFailure};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;

use super::noise::NoiseEdit;

/// How the noise is trained (`debiaser.noise`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseConfig {
    /// Epochs: passes over shuffled mini-batches of the training split (for GeZO, rounds).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Images per mini-batch (the released code: 128, `drop_last=True`).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Optimiser steps per epoch; default: as many as the epoch's mini-batches allow (each step
    /// uses `batches_per_step` of them: 1 for gradient methods, GeZO's `batches_per_candidate`).
    /// The released GeZO code takes 1 step per epoch on the epoch's first 2 batches.
    #[serde(default)]
    pub steps_per_epoch: Option<usize>,
    /// The optimiser: `adam` (white-box, the released code uses lr 5e-5), `sgd`, or `gezo`.
    #[serde(default = "default_optimizer")]
    pub optimizer: PluginSpec,
    /// Weight of the (negated) classifier cross-entropy, `lambda_1`.
    #[serde(default = "default_lambda_sa")]
    pub lambda_sa: f64,
    /// Weight of the noise's L2 norm (0.001 in the released command; its argparse default is 0.01).
    #[serde(default = "default_lambda_reg")]
    pub lambda_reg: f64,
    /// Re-create the optimiser (resetting its state, e.g. Adam's moments) at every epoch, as the
    /// released white-box code does (`engine_finetune.py:56`). Set it to false for GeZO's paper
    /// variant, whose velocity and step size must persist.
    #[serde(default = "default_true")]
    pub reset_optimizer_each_epoch: bool,
}

fn default_epochs() -> usize {
    25
}
fn default_batch_size() -> usize {
    128
}
fn default_optimizer() -> PluginSpec {
    let params = serde_norway::from_str("{lr: 0.00005}").expect("static YAML");
    PluginSpec::new("debiaser.noise.optimizer", "adam", params)
}
fn default_lambda_sa() -> f64 {
    1.0
}
fn default_lambda_reg() -> f64 {
    0.001
}
fn default_true() -> bool {
    true
}

impl Default for NoiseConfig {
    fn default() -> Self {
        serde_norway::from_str("{}").expect("every field has a default")
    }
}

/// What the noise training did, for logging and the results table.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoiseTrainingReport {
    /// Optimiser steps taken.
    pub steps: u64,
    /// Mini-batch forward passes through backbone and classifier.
    pub forward_passes: u64,
    /// Backward passes (0 for GeZO).
    pub backward_passes: u64,
    /// Images pushed through the backbone (forward passes x batch size).
    pub image_queries: u64,
}

/// The data the noise is trained on: unit-range training pixels and their binary attribute.
pub struct NoiseData<'a> {
    /// `[N, 3, H, W]` unit-range pixels of the training split, on the compute device.
    pub pixels: &'a Tensor,
    /// The sensitive attribute (0/1) of each sample, `[N]` f32.
    pub attribute: &'a Tensor,
}

/// Train `noise` against the frozen classifier `classifier` (applied to backbone features).
pub fn train_noise(
    ctx: &mut FitContext<'_>,
    cfg: &NoiseConfig,
    noise: &NoiseEdit,
    classifier: &LinearProbe,
    data: &NoiseData<'_>,
) -> anyhow::Result<NoiseTrainingReport> {
    let n = data.pixels.dim(0)?;
    if cfg.batch_size == 0 {
        return Err(ConfigError::at_key("debiaser.noise.batch_size", "must be at least 1").into());
    }
    let batch_size = cfg.batch_size.min(n);
    let batches_per_epoch = n / batch_size;
    let backbone = ctx.data.backbone();
    let loss_on = |idx: &Tensor| -> anyhow::Result<Tensor> {
        let unit = data.pixels.index_select(idx, 0)?;
        let features = encode_unit(backbone, &noise.apply(&unit)?)?;
        let logits = classifier.logits(&features)?;
        let targets = data.attribute.index_select(idx, 0)?;
        let ce = bce_with_logits(&logits, &targets, None)?;
        Ok(((ce * -cfg.lambda_sa)? + (noise.l2()? * cfg.lambda_reg)?)?)
    };
    let build = |epoch: usize| {
        ctx.registry
            .optimizer(&cfg.optimizer, vec![noise.var().clone()], ctx.seed ^ epoch as u64)
    };
    let mut optimizer = build(0)?;
    let per_step = optimizer.batches_per_step();
    let steps = match cfg.steps_per_epoch {
        Some(s) => s,
        None => batches_per_epoch / per_step,
    };
    if steps == 0 || steps * per_step > batches_per_epoch {
        return Err(ConfigError::at_key(
            "debiaser.noise.steps_per_epoch",
            format!(
                "{steps} steps of {per_step} mini-batch(es) need {} batches, but the {n} training images give \
                 {batches_per_epoch} batches of {batch_size}",
                steps * per_step
            ),
        )
        .into());
    }
    let mut rng = StdRng::seed_from_u64(ctx.seed.wrapping_add(0xD1E));
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut report = NoiseTrainingReport::default();
    for epoch in 1..=cfg.epochs {
        if cfg.reset_optimizer_each_epoch && epoch > 1 {
            optimizer = build(epoch)?;
        }
        order.shuffle(&mut rng);
        let device = data.pixels.device();
        let batches = order
            .chunks_exact(batch_size)
            .take(steps * per_step)
            .map(|chunk| Tensor::new(chunk, device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut epoch_loss = 0.0;
        for step in batches.chunks(per_step) {
            let outcome = optimizer.step(&mut |slot| loss_on(&step[slot]))?;
            if !outcome.loss.is_finite() {
                anyhow::bail!(RunFailure::new(format!(
                    "the noise loss is {} at epoch {epoch}",
                    outcome.loss
                )));
            }
            epoch_loss += outcome.loss;
            report.steps += 1;
            report.forward_passes += outcome.forward_passes;
            report.backward_passes += outcome.backward_passes;
            report.image_queries += outcome.forward_passes * batch_size as u64;
        }
        ctx.monitor.log(
            epoch,
            &[
                ("dne_noise_loss", epoch_loss / steps as f64),
                ("dne_noise_l2", noise.l2_value()?),
                ("dne_noise_step_size", optimizer.learning_rate()),
                ("dne_forward_passes", report.forward_passes as f64),
                ("dne_backward_passes", report.backward_passes as f64),
            ],
        )?;
        ctx.monitor.progress(epoch, cfg.epochs);
    }
    Ok(report)
}

/// Binary codes of a two-group attribute column: the groups sorted by name get 0 and 1 (so `F`/`M`
/// gives M = 1, as DNE's Male = 1). Errors unless there are exactly two groups.
pub fn binary_codes(column: &[String], attribute: &str) -> anyhow::Result<(Vec<u8>, [String; 2])> {
    let mut groups: Vec<&String> = column.iter().collect();
    groups.sort();
    groups.dedup();
    if groups.len() != 2 {
        return Err(ConfigError::at_key(
            "debiaser.attribute",
            format!(
                "DNE needs a binary sensitive attribute; `{attribute}` has {} group(s) in the training split: {:?}",
                groups.len(),
                groups
            ),
        )
        .into());
    }
    let names = [groups[0].clone(), groups[1].clone()];
    let codes = column.iter().map(|g| u8::from(*g == names[1])).collect();
    Ok((codes, names))
}
