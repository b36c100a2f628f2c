//! `erm`: empirical risk minimisation, a logistic-regression head trained on frozen backbone
//! features with any registered optimiser. The baseline of both papers (linear probing).
//!
//! ```yaml
//! debiaser:
//!   kind: erm
//!   epochs: 30
//!   batch_size: 64
//!   standardize: true
//!   optimizer: {kind: adamw, lr: 0.001, weight_decay: 0.0001}
//! ```

use fairlab_framework::debiaser::{Artifact, DataAccess, FitContext, Predictor};
use fairlab_framework::probe::{train_probe, LinearProbe, ProbeConfig};
use fairlab_framework::{Debiaser, Split};

/// The ERM method.
pub struct Erm {
    cfg: ProbeConfig,
}

impl Erm {
    /// ERM with these probe settings.
    pub fn new(cfg: ProbeConfig) -> Self {
        Self { cfg }
    }
}

impl Debiaser for Erm {
    fn kind(&self) -> &str {
        "erm"
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let train = ctx.data.features(Split::Train)?;
        let val = ctx.data.features(Split::Val)?;
        let labels = ctx.data.split(Split::Train).labels.clone();
        let probe = train_probe(ctx, &self.cfg, &train, &labels, Some(&val))?;
        Ok(Box::new(ProbePredictor { probe }))
    }
}

/// Scores a split by applying the trained probe to its cached features.
struct ProbePredictor {
    probe: LinearProbe,
}

impl Predictor for ProbePredictor {
    fn predict(&self, data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>> {
        Ok(self.probe.scores(&data.features(split)?)?)
    }

    fn artifacts(&self) -> anyhow::Result<Vec<Artifact>> {
        Ok(vec![self.probe.to_artifact("model/probe.safetensors")?])
    }
}
