//! `fairclip` with `target: probe` (the default): FairCLIP's Sinkhorn regulariser on the score
//! distribution of a linear probe over any backbone's features, so that it can be compared with
//! the other methods on the same features. The loss of a mini-batch is
//!
//! `BCE(batch) + lambda * sum_g S(probe logits of the batch, probe logits of group g)`
//!
//! In `official` mode group `g`'s logits are the probe's on a separate sample of `g`'s training
//! features (see the [parent module](super) for the two modes).
//!
//! ```yaml
//! debiaser:
//!   kind: fairclip
//!   target: probe          # the default
//!   attribute: sex
//!   mode: aligned          # or official
//!   lambda: 0.1            # the default
//!   sinkhorn: {blur: 0.0001, scaling: 0.5}   # the default
//!   group_batch_size: 32   # official mode only
//!   epochs: 30
//!   batch_size: 64
//!   optimizer: {kind: adamw, lr: 0.0003, weight_decay: 0.01}
//! ```

use candle_core::Tensor;
use fairlab_framework::debiaser::{FitContext, Predictor};
use fairlab_framework::probe::{bce_with_logits, fit_target_probe, Batch, BatchLoss, Groups, ProbeConfig, Shuffled};
use fairlab_framework::sinkhorn::SinkhornConfig;
use fairlab_framework::{Debiaser, Split};
use serde::Deserialize;

use super::{Regulariser, RegulariserConfig, SinkhornTerms, KIND};

/// `fairclip` probe settings: the regulariser's and the probe's, in one flat section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairClipProbeConfig {
    /// The regulariser (default `lambda` 0.1, `sinkhorn` `{blur: 1e-4, scaling: 0.5}`).
    #[serde(flatten)]
    pub regulariser: RegulariserConfig,
    /// How the probe is trained.
    #[serde(flatten)]
    pub probe: ProbeConfig,
}

/// The FairCLIP-regularised probe.
pub struct FairClipProbe {
    attribute: Option<String>,
    regulariser: Regulariser,
    probe: ProbeConfig,
}

impl FairClipProbe {
    /// FairCLIP (probe target) with these settings; bad regulariser settings are keyed
    /// [`fairlab_framework::ConfigError`]s.
    pub fn new(cfg: FairClipProbeConfig) -> anyhow::Result<Self> {
        let sinkhorn = SinkhornConfig {
            blur: 1e-4,
            scaling: 0.5,
        };
        Ok(Self {
            regulariser: cfg.regulariser.resolve(0.1, sinkhorn)?,
            attribute: cfg.regulariser.attribute,
            probe: cfg.probe,
        })
    }
}

impl Debiaser for FairClipProbe {
    fn kind(&self) -> &str {
        KIND
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let groups = Groups::of(
            ctx.data,
            Split::Train,
            self.attribute.as_deref(),
            false,
            "debiaser.attribute",
        )?;
        let loss = SinkhornRegularised {
            terms: SinkhornTerms::new(self.regulariser, &groups, ctx.seed),
        };
        fit_target_probe(ctx, &self.probe, Shuffled::default(), loss)
    }
}

/// The batch loss: mean BCE plus the Sinkhorn terms on the probe's logits; it logs the mean of
/// each group's term per epoch as `sinkhorn_<group>`.
pub struct SinkhornRegularised {
    terms: SinkhornTerms,
}

impl BatchLoss for SinkhornRegularised {
    fn loss(&mut self, batch: &Batch<'_>) -> anyhow::Result<Tensor> {
        let bce = bce_with_logits(batch.logits, batch.targets, None)?;
        self.terms.add_to(bce, batch.logits, batch.indices, &mut |sample| {
            let idx = Tensor::new(sample, batch.features.device())?;
            Ok(batch.probe.logits(&batch.features.index_select(&idx, 0)?)?)
        })
    }

    fn epoch_values(&mut self) -> Vec<(String, f64)> {
        self.terms.epoch_values()
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use fairlab_framework::probe::LinearProbe;

    use super::*;

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
        let cfg: FairClipProbeConfig =
            serde_norway::from_str(&format!("{{mode: {mode}, lambda: {lambda}, group_batch_size: 4}}")).unwrap();
        let fairclip = FairClipProbe::new(cfg).unwrap();
        let mut loss = SinkhornRegularised {
            terms: SinkhornTerms::new(fairclip.regulariser, &groups, 0),
        };
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
}
