//! `resampling`: group-balanced sampling, the simplest rebalancing baseline. Each epoch draws as
//! many training samples as the training split has, independently and with replacement, sample `i`
//! with probability proportional to `1 / |group(i)|`, so that every group carries the same
//! probability mass however small it is; the probe is then trained as ERM on those batches.
//!
//! `by: group` balances the values of `attribute` (`F` and `M` each half of the draws);
//! `by: group-label` balances its cells with the label (`F_y0`, `F_y1`, `M_y0`, `M_y1` each a
//! quarter), the usual "group-balanced and class-balanced" variant, which also undoes label
//! imbalance and its correlation with the attribute.
//!
//! ```yaml
//! debiaser:
//!   kind: resampling
//!   attribute: sex      # default: the dataset's first attribute
//!   by: group           # or group-label
//!   epochs: 30
//!   batch_size: 64
//!   standardize: true
//!   optimizer: {kind: adamw, lr: 0.001, weight_decay: 0.0001}
//! ```

use fairlab_framework::debiaser::{FitContext, Predictor};
use fairlab_framework::probe::{fit_target_probe, Groups, MeanBce, ProbeConfig, WeightedSampling};
use fairlab_framework::{Debiaser, Split};
use serde::Deserialize;

/// The settings of `resampling`: its own next to the probe's, in one flat section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResamplingConfig {
    /// The sensitive attribute whose groups are balanced; the dataset's first when absent.
    #[serde(default)]
    pub attribute: Option<String>,
    /// What is balanced.
    #[serde(default)]
    pub by: Balance,
    /// How the probe is trained.
    #[serde(flatten)]
    pub probe: ProbeConfig,
}

/// What [`Resampling`] gives equal probability mass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each value of the attribute.
    #[default]
    Group,
    /// Each (attribute value, label) cell.
    GroupLabel,
}

/// The group-balanced resampling method.
pub struct Resampling {
    cfg: ResamplingConfig,
}

impl Resampling {
    /// Resampling with these settings.
    pub fn new(cfg: ResamplingConfig) -> Self {
        Self { cfg }
    }
}

impl Debiaser for Resampling {
    fn kind(&self) -> &str {
        "resampling"
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let by_label = self.cfg.by == Balance::GroupLabel;
        let attribute = self.cfg.attribute.as_deref();
        let groups = Groups::of(ctx.data, Split::Train, attribute, by_label, "debiaser.attribute")?;
        let plan = WeightedSampling::new(&balanced_weights(&groups))?;
        fit_target_probe(ctx, &self.cfg.probe, plan, MeanBce)
    }
}

/// Per-sample weights `1 / |group|`: every group gets the same total weight.
pub fn balanced_weights(groups: &Groups) -> Vec<f64> {
    let sizes = groups.sizes();
    groups.ids().iter().map(|&g| 1.0 / sizes[g as usize] as f64).collect()
}

#[cfg(test)]
mod tests {
    use fairlab_framework::probe::BatchPlan;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    /// 90 `M` and 10 `F`, labels 1 for 30% of `M` and 80% of `F`.
    fn groups(by_label: bool) -> Groups {
        let values: Vec<String> = (0..100).map(|i| if i < 90 { "M" } else { "F" }.to_string()).collect();
        let labels: Vec<u8> = (0..100)
            .map(|i| u8::from(if i < 90 { i < 27 } else { i >= 92 }))
            .collect();
        Groups::from_columns(&values, by_label.then_some(labels.as_slice()))
    }

    /// How often each group is drawn over `epochs` epochs of the balanced plan.
    fn frequencies(groups: &Groups, epochs: usize, seed: u64) -> Vec<f64> {
        let mut plan = WeightedSampling::new(&balanced_weights(groups)).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = vec![0usize; groups.names().len()];
        for _ in 0..epochs {
            let batches = plan.epoch(100, 16, &mut rng).unwrap();
            assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 100);
            for i in batches.concat() {
                counts[groups.ids()[i as usize] as usize] += 1;
            }
        }
        counts.iter().map(|&c| c as f64 / (epochs * 100) as f64).collect()
    }

    #[test]
    fn every_group_is_drawn_equally_often() {
        let by_group = frequencies(&groups(false), 2000, 1);
        assert_eq!(by_group.len(), 2);
        assert!(by_group.iter().all(|f| (f - 0.5).abs() < 0.01), "{by_group:?}");
        let by_cell = frequencies(&groups(true), 2000, 1);
        assert_eq!(by_cell.len(), 4);
        assert!(by_cell.iter().all(|f| (f - 0.25).abs() < 0.01), "{by_cell:?}");
    }

    #[test]
    fn draws_are_deterministic_under_the_seed() {
        let weights = balanced_weights(&groups(true));
        let draw = |seed| {
            WeightedSampling::new(&weights)
                .unwrap()
                .epoch(100, 16, &mut StdRng::seed_from_u64(seed))
        };
        assert_eq!(draw(3).unwrap(), draw(3).unwrap());
        assert_ne!(draw(3).unwrap(), draw(4).unwrap());
    }
}
