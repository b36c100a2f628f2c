//! A trained probe as a run's model, and the shortcut that fits one on the training split.

use super::{train_probe_with, BatchLoss, BatchPlan, LinearProbe, ProbeConfig, ProbeTraining};
use crate::dataset::Split;
use crate::debiaser::{Artifact, DataAccess, FitContext, Predictor};

/// Scores a split by applying the trained probe to its cached features; saved as
/// `model/probe.safetensors`.
pub struct ProbePredictor {
    probe: LinearProbe,
}

impl ProbePredictor {
    /// The predictor of a trained probe.
    pub fn new(probe: LinearProbe) -> Self {
        Self { probe }
    }
}

impl Predictor for ProbePredictor {
    fn predict(&self, data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>> {
        Ok(self.probe.scores(&data.features(split)?)?)
    }

    fn artifacts(&self) -> anyhow::Result<Vec<Artifact>> {
        Ok(vec![self.probe.to_artifact("model/probe.safetensors")?])
    }
}

/// Fit the experiment's target probe on the training split's features and labels with this batch
/// plan and loss, scoring the validation split after every epoch, and return it as the run's
/// predictor. What ERM, resampling and group DRO each amount to.
pub fn fit_target_probe(
    ctx: &mut FitContext<'_>,
    cfg: &ProbeConfig,
    plan: impl BatchPlan,
    loss: impl BatchLoss,
) -> anyhow::Result<Box<dyn Predictor>> {
    let train = ctx.data.features(Split::Train)?;
    let val = ctx.data.features(Split::Val)?;
    let labels = ctx.data.split(Split::Train).labels.clone();
    let training = ProbeTraining::target(Some(&val)).with_plan(plan).with_loss(loss);
    let probe = train_probe_with(ctx, cfg, &train, &labels, training)?;
    Ok(Box::new(ProbePredictor::new(probe)))
}
