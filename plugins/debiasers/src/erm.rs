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

use fairlab_framework::debiaser::{FitContext, Predictor};
use fairlab_framework::probe::{fit_target_probe, MeanBce, ProbeConfig, Shuffled};
use fairlab_framework::Debiaser;

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
        fit_target_probe(ctx, &self.cfg, Shuffled::default(), MeanBce)
    }
}
