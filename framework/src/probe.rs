//! A linear probe (logistic regression on frozen features), shared by every method that trains a
//! classifier head: ERM, DNE's sensitive-attribute classifier and final probe, and the baselines.

use candle_core::{DType, Device, Tensor, Var, D};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;

use crate::config::PluginSpec;
use crate::debiaser::{Artifact, FitContext};
use crate::error::RunFailure;
use crate::tensor_io;

/// How a probe is trained.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Passes over the training features.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Samples per optimiser step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The optimiser (`kind: adamw`, `sgd`, ...).
    #[serde(default = "default_optimizer")]
    pub optimizer: PluginSpec,
    /// Standardise features with the training mean and standard deviation first.
    #[serde(default = "default_true")]
    pub standardize: bool,
}

fn default_epochs() -> usize {
    30
}
fn default_batch_size() -> usize {
    64
}
fn default_true() -> bool {
    true
}
fn default_optimizer() -> PluginSpec {
    let params = serde_norway::from_str("{lr: 0.001, weight_decay: 0.0001}").expect("static YAML");
    PluginSpec::new("debiaser.optimizer", "adamw", params)
}

/// Numerically stable mean binary cross-entropy on logits:
/// `max(x, 0) - x*y + log(1 + exp(-|x|))`, averaged with optional per-sample weights.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let per_sample = ((logits.relu()? - (logits * targets)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    match weights {
        None => per_sample.mean_all(),
        Some(w) => (per_sample * w)?.sum_all()? / w.sum_all()?.to_scalar::<f32>()? as f64,
    }
}

/// Logistic regression `sigmoid(((x - mean) / std) · w + b)`.
pub struct LinearProbe {
    mean: Tensor,
    std: Tensor,
    weight: Var,
    bias: Var,
}

impl LinearProbe {
    /// A zero-initialised probe for `dim` features; standardisation from `train` when asked.
    pub fn new(train: &Tensor, standardize: bool) -> candle_core::Result<Self> {
        let (_, dim) = train.dims2()?;
        let device = train.device();
        let (mean, std) = if standardize {
            let mean = train.mean(0)?;
            let var = train.broadcast_sub(&mean)?.sqr()?.mean(0)?;
            (mean, (var.sqrt()? + 1e-6)?)
        } else {
            (
                Tensor::zeros(dim, DType::F32, device)?,
                Tensor::ones(dim, DType::F32, device)?,
            )
        };
        Ok(Self {
            mean,
            std,
            weight: Var::zeros((dim, 1), DType::F32, device)?,
            bias: Var::zeros(1, DType::F32, device)?,
        })
    }

    /// The trainable vars (weight, bias).
    pub fn vars(&self) -> Vec<Var> {
        vec![self.weight.clone(), self.bias.clone()]
    }

    /// Logits `[N]` for features `[N, D]`.
    pub fn logits(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        let x = features.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        x.matmul(self.weight.as_tensor())?
            .squeeze(D::Minus1)?
            .broadcast_add(self.bias.as_tensor())
    }

    /// P(y = 1) for features `[N, D]`.
    pub fn scores(&self, features: &Tensor) -> candle_core::Result<Vec<f64>> {
        candle_nn::ops::sigmoid(&self.logits(features)?)?
            .to_dtype(DType::F64)?
            .to_vec1()
    }

    /// The probe as a safetensors artifact (`mean`, `std`, `weight`, `bias`).
    pub fn to_artifact(&self, path: &str) -> anyhow::Result<Artifact> {
        let tensors = [
            ("mean", &self.mean),
            ("std", &self.std),
            ("weight", self.weight.as_tensor()),
            ("bias", self.bias.as_tensor()),
        ];
        Ok(Artifact {
            path: path.to_string(),
            bytes: tensor_io::to_safetensors(&tensors, Default::default())?,
        })
    }
}

/// Train a probe on `features` `[N, D]` with binary `labels`, reporting every epoch (training loss
/// and, when `val` is given, validation scores) to the context's monitor. A non-finite loss fails
/// the run.
pub fn train_probe(
    ctx: &mut FitContext<'_>,
    cfg: &ProbeConfig,
    features: &Tensor,
    labels: &[u8],
    val: Option<&Tensor>,
) -> anyhow::Result<LinearProbe> {
    let device: Device = features.device().clone();
    let n = labels.len();
    anyhow::ensure!(n > 0, RunFailure::new("the training split is empty"));
    anyhow::ensure!(
        cfg.batch_size > 0,
        crate::ConfigError::at_key("debiaser.batch_size", "must be at least 1")
    );
    let probe = LinearProbe::new(features, cfg.standardize)?;
    let mut optimizer = ctx.optimizer(&cfg.optimizer, probe.vars())?;
    let targets = Tensor::from_iter(labels.iter().map(|&l| l as f32), &device)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = StdRng::seed_from_u64(ctx.seed);
    for epoch in 1..=cfg.epochs {
        order.shuffle(&mut rng);
        let mut total = 0.0;
        for chunk in order.chunks(cfg.batch_size) {
            let idx = Tensor::new(chunk, &device)?;
            let x = features.index_select(&idx, 0)?;
            let y = targets.index_select(&idx, 0)?;
            let report = optimizer.step(&mut |_| Ok(bce_with_logits(&probe.logits(&x)?, &y, None)?))?;
            total += report.loss * chunk.len() as f64;
        }
        let val_scores = val.map(|v| probe.scores(v)).transpose()?;
        ctx.monitor.epoch(epoch, total / n as f64, val_scores.as_deref())?;
        ctx.monitor.progress(epoch, cfg.epochs);
    }
    Ok(probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_bce_matches_the_naive_formula_and_survives_large_logits() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[-2.0f32, 0.5, 3.0], &dev).unwrap();
        let y = Tensor::new(&[0.0f32, 1.0, 1.0], &dev).unwrap();
        let got = bce_with_logits(&x, &y, None).unwrap().to_scalar::<f32>().unwrap() as f64;
        let naive: f64 = [(-2.0f64, 0.0f64), (0.5, 1.0), (3.0, 1.0)]
            .iter()
            .map(|&(x, y)| {
                let p = 1.0 / (1.0 + (-x).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 3.0;
        assert!((got - naive).abs() < 1e-6, "{got} vs {naive}");
        let big = Tensor::new(&[500.0f32, -500.0], &dev).unwrap();
        let t = Tensor::new(&[0.0f32, 1.0], &dev).unwrap();
        let loss = bce_with_logits(&big, &t, None).unwrap().to_scalar::<f32>().unwrap();
        assert!((loss - 500.0).abs() < 1e-3, "{loss}");
        let w = Tensor::new(&[1.0f32, 3.0], &dev).unwrap();
        let weighted = bce_with_logits(&big, &t, Some(&w)).unwrap().to_scalar::<f32>().unwrap();
        assert!((weighted - 500.0).abs() < 1e-3);
    }
}
