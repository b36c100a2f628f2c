//! `group-dro`: online group distributionally robust optimisation (Sagawa et al., "Distributionally
//! Robust Neural Networks for Group Shifts", ICLR 2020), the probe trained to minimise the
//! worst-group loss rather than the average one.
//!
//! Groups are the values of `attribute` crossed with the label (`groups: attribute-label`, the
//! paper's setting) or the values alone (`groups: attribute`). The method keeps a weight `q_g` per
//! group, uniform at first. On every mini-batch (shuffled, as ERM) it mirrors `LossComputer` of the
//! authors' code (`kohpangwei/group_DRO`, `loss.py`, `is_robust` without `btl`):
//!
//! 1. `ℓ_g`: the mean cross-entropy of the batch's samples of group `g`, **0 for a group absent
//!    from the batch**;
//! 2. with `generalization_adjustment` `C > 0`, `ℓ_g += C / sqrt(n_g)` for every group (`n_g`: its
//!    training size), present or not;
//! 3. `q_g ← q_g · exp(η · ℓ_g)` (`η` = `step_size`, `ℓ` detached), then `q ← q / Σ q`: an absent
//!    group's weight is multiplied by 1 and only renormalised;
//! 4. loss `Σ_g q_g ℓ_g` with the new, detached `q` (so, as in the reference, the reported loss
//!    includes the constant adjustment terms; gradients do not).
//!
//! After each epoch `dro_weight_<group>` (`q_g` then) and `dro_loss_<group>` (the group's mean
//! unadjusted loss over the epoch's batches) are logged, e.g. `dro_weight_F_y1`.
//!
//! ```yaml
//! debiaser:
//!   kind: group-dro
//!   attribute: sex          # default: the dataset's first attribute
//!   groups: attribute-label # or attribute
//!   step_size: 0.01         # η
//!   generalization_adjustment: 0.0
//!   epochs: 30
//!   batch_size: 64
//!   standardize: true
//!   optimizer: {kind: adamw, lr: 0.001, weight_decay: 0.0001}
//! ```

use candle_core::{DType, Tensor};
use fairlab_framework::debiaser::{FitContext, Predictor};
use fairlab_framework::probe::{bce_per_sample, fit_target_probe, Batch, BatchLoss, Groups, ProbeConfig, Shuffled};
use fairlab_framework::{ConfigError, Debiaser, Split};
use serde::Deserialize;

/// The settings of `group-dro`: its own next to the probe's, in one flat section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDroConfig {
    /// The sensitive attribute that defines the groups; the dataset's first when absent.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Whether groups are attribute values or (value, label) cells.
    #[serde(default)]
    pub groups: Grouping,
    /// `η`, the step size of the group-weight update.
    #[serde(default = "default_step_size")]
    pub step_size: f64,
    /// `C`: `C / sqrt(n_g)` is added to each group's loss (0 disables it).
    #[serde(default)]
    pub generalization_adjustment: f64,
    /// How the probe is trained.
    #[serde(flatten)]
    pub probe: ProbeConfig,
}

fn default_step_size() -> f64 {
    0.01
}

/// What a group is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grouping {
    /// A value of the attribute.
    Attribute,
    /// A (value, label) cell.
    #[default]
    AttributeLabel,
}

/// The group-DRO method.
pub struct GroupDro {
    cfg: GroupDroConfig,
}

impl GroupDro {
    /// Group DRO with these settings; `step_size` and `generalization_adjustment` must be finite
    /// and non-negative.
    pub fn new(cfg: GroupDroConfig) -> Result<Self, ConfigError> {
        for (key, value) in [
            ("step_size", cfg.step_size),
            ("generalization_adjustment", cfg.generalization_adjustment),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                let message = format!("must be a finite number at least 0, got {value}");
                return Err(ConfigError::at_key(format!("debiaser.{key}"), message));
            }
        }
        Ok(Self { cfg })
    }
}

impl Debiaser for GroupDro {
    fn kind(&self) -> &str {
        "group-dro"
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let by_label = self.cfg.groups == Grouping::AttributeLabel;
        let attribute = self.cfg.attribute.as_deref();
        let groups = Groups::of(ctx.data, Split::Train, attribute, by_label, "debiaser.attribute")?;
        let loss = GroupDroLoss::new(groups, self.cfg.step_size, self.cfg.generalization_adjustment);
        fit_target_probe(ctx, &self.cfg.probe, Shuffled::default(), loss)
    }
}

/// The adversarial group weights `q` and their exponentiated-gradient update.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupWeights {
    q: Vec<f64>,
    adjustment: Vec<f64>,
    step_size: f64,
}

impl GroupWeights {
    /// Uniform weights over groups of these training sizes, with step size `η` and
    /// generalization adjustment `C`.
    pub fn new(sizes: &[usize], step_size: f64, generalization_adjustment: f64) -> Self {
        let adjustment = sizes
            .iter()
            .map(|&n| generalization_adjustment / (n as f64).sqrt())
            .collect();
        Self {
            q: vec![1.0 / sizes.len() as f64; sizes.len()],
            adjustment,
            step_size,
        }
    }

    /// The current weights, by group id.
    pub fn q(&self) -> &[f64] {
        &self.q
    }

    /// Update from one batch's per-group mean losses (0 for absent groups) and return the
    /// adjusted losses `ℓ_g + C / sqrt(n_g)` that the new weights apply to.
    pub fn update(&mut self, group_loss: &[f64]) -> Vec<f64> {
        let adjusted: Vec<f64> = group_loss.iter().zip(&self.adjustment).map(|(l, a)| l + a).collect();
        self.q
            .iter_mut()
            .zip(&adjusted)
            .for_each(|(q, l)| *q *= (self.step_size * l).exp());
        let total: f64 = self.q.iter().sum();
        self.q.iter_mut().for_each(|q| *q /= total);
        adjusted
    }
}

/// The online group-DRO objective, with per-epoch statistics for logging.
pub struct GroupDroLoss {
    groups: Groups,
    weights: GroupWeights,
    epoch_loss: Vec<f64>,
    epoch_count: Vec<usize>,
}

impl GroupDroLoss {
    /// The objective over the training split's `groups`.
    pub fn new(groups: Groups, step_size: f64, generalization_adjustment: f64) -> Self {
        let weights = GroupWeights::new(&groups.sizes(), step_size, generalization_adjustment);
        let count = groups.names().len();
        Self {
            groups,
            weights,
            epoch_loss: vec![0.0; count],
            epoch_count: vec![0; count],
        }
    }
}

impl BatchLoss for GroupDroLoss {
    fn loss(&mut self, batch: &Batch<'_>) -> anyhow::Result<Tensor> {
        let (g_count, b_count) = (self.groups.names().len(), batch.indices.len());
        let mut membership = vec![0f32; g_count * b_count];
        let mut counts = vec![0usize; g_count];
        for (b, &i) in batch.indices.iter().enumerate() {
            let g = self.groups.ids()[i as usize] as usize;
            membership[g * b_count + b] = 1.0;
            counts[g] += 1;
        }
        let device = batch.logits.device();
        let membership = Tensor::from_vec(membership, (g_count, b_count), device)?;
        let denominators: Vec<f32> = counts.iter().map(|&c| c.max(1) as f32).collect();
        let per_sample = bce_per_sample(batch.logits, batch.targets)?.unsqueeze(1)?;
        let group_loss = membership
            .matmul(&per_sample)?
            .squeeze(1)?
            .broadcast_div(&Tensor::from_vec(denominators, g_count, device)?)?;
        let values: Vec<f64> = group_loss.to_dtype(DType::F64)?.to_vec1()?;
        let adjusted = self.weights.update(&values);
        for g in 0..g_count {
            self.epoch_loss[g] += values[g] * counts[g] as f64;
            self.epoch_count[g] += counts[g];
        }
        let q = self.weights.q();
        let constant: f64 = q
            .iter()
            .zip(adjusted.iter().zip(&values))
            .map(|(q, (a, l))| q * (a - l))
            .sum();
        let q = Tensor::from_iter(q.iter().map(|&w| w as f32), device)?;
        Ok(((group_loss * q)?.sum_all()? + constant)?)
    }

    fn epoch_values(&mut self) -> Vec<(String, f64)> {
        let mut values = Vec::new();
        for (g, name) in self.groups.names().iter().enumerate() {
            values.push((format!("dro_weight_{name}"), self.weights.q()[g]));
            if self.epoch_count[g] > 0 {
                values.push((
                    format!("dro_loss_{name}"),
                    self.epoch_loss[g] / self.epoch_count[g] as f64,
                ));
            }
        }
        self.epoch_loss.iter_mut().for_each(|l| *l = 0.0);
        self.epoch_count.iter_mut().for_each(|c| *c = 0);
        values
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use fairlab_framework::probe::LinearProbe;

    use super::*;

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn two_updates_follow_the_loss_computer_formula() {
        // q ∝ q · exp(0.1 ℓ), normalised; group 2 absent from batch 1, group 1 from batch 2.
        let mut w = GroupWeights::new(&[10, 10, 10], 0.1, 0.0);
        assert_eq!(w.update(&[1.0, 2.0, 0.0]), [1.0, 2.0, 0.0]);
        // [e^0.1, e^0.2, 1] / (e^0.1 + e^0.2 + 1)
        close(w.q(), &[0.3322249935333472, 0.36716540111092544, 0.3006096053557273]);
        w.update(&[0.5, 0.0, 3.0]);
        // q1 · [e^0.05, 1, e^0.3], normalised
        close(w.q(), &[0.3112254017413455, 0.32718226930869276, 0.3615923289499618]);
    }

    #[test]
    fn the_group_with_the_higher_loss_gains_weight_and_an_absent_one_is_only_renormalised() {
        let mut w = GroupWeights::new(&[5, 5, 5, 5], 0.01, 0.0);
        let before = w.q().to_vec();
        w.update(&[0.2, 1.5, 0.0, 0.0]);
        let after = w.q();
        assert!(after[1] > before[1] && after[1] > after[0], "{after:?}");
        // The absent groups' weights shrink by the normaliser alone: their ratio is unchanged and
        // q_absent · Σ_g q_g exp(η ℓ_g) is the old weight.
        let normaliser: f64 = [0.2f64, 1.5, 0.0, 0.0].iter().map(|l| 0.25 * (0.01 * l).exp()).sum();
        close(&[after[2] * normaliser, after[3] / after[2]], &[0.25, 1.0]);
    }

    #[test]
    fn the_generalization_adjustment_adds_c_over_root_group_size_to_every_group() {
        let mut w = GroupWeights::new(&[4, 100, 25], 0.1, 2.0);
        // 2/sqrt(n) = [1, 0.2, 0.4]
        close(&w.update(&[0.5, 0.0, 0.5]), &[1.5, 0.2, 0.9]);
        close(w.q(), &[0.35462753916420386, 0.31139682181868983, 0.33397563901710636]);
    }

    #[test]
    fn the_batch_loss_weights_the_present_groups_mean_losses_and_logs_them() {
        let names: Vec<String> = ["a", "a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let groups = Groups::from_columns(&names, None);
        let mut loss = GroupDroLoss::new(groups, 0.5, 0.0);
        let features = Tensor::new(&[[1f32], [2.], [3.], [4.]], &Device::Cpu).unwrap();
        let probe = LinearProbe::new(&features, false).unwrap();
        // A zero probe: every sample's loss is ln 2; group c (sample 3) is absent.
        let indices = [0u32, 1, 2];
        let x = features.narrow(0, 0, 3).unwrap();
        let logits = probe.logits(&x).unwrap();
        let targets = Tensor::new(&[1f32, 0., 1.], &Device::Cpu).unwrap();
        let batch = Batch {
            probe: &probe,
            features: &features,
            indices: &indices,
            logits: &logits,
            targets: &targets,
        };
        let value = loss.loss(&batch).unwrap().to_scalar::<f32>().unwrap() as f64;
        let ln2 = 2f64.ln();
        let z = 2.0 * (0.5 * ln2).exp() + 1.0;
        let q = [(0.5 * ln2).exp() / z, (0.5 * ln2).exp() / z, 1.0 / z];
        assert!((value - 2.0 * q[0] * ln2).abs() < 1e-6, "{value}");
        let logged = loss.epoch_values();
        let names: Vec<&str> = logged.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "dro_weight_a",
                "dro_loss_a",
                "dro_weight_b",
                "dro_loss_b",
                "dro_weight_c"
            ]
        );
        let values: Vec<f64> = logged.iter().map(|(_, v)| *v).collect();
        let want = [q[0], ln2, q[1], ln2, q[2]];
        assert!(values.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{values:?}");
        assert_eq!(loss.epoch_values().len(), 3, "statistics restart every epoch");
    }
}
