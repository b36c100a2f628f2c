//! `fairclip`: FairCLIP (Luo et al., CVPR 2024). The training loss gets a regulariser:
//!
//! `loss(batch) + lambda * sum_g S(scores of the batch, scores of group g)`
//!
//! `S` is the debiased Sinkhorn divergence of geomloss (`SamplesLoss("sinkhorn", p=2, blur,
//! scaling)`, [`fairlab_framework::sinkhorn`]) between 1-D empirical score distributions. One
//! plugin, two `target`s that say what is trained and which scores are compared:
//!
//! - `target: probe` (the default, [`probe`]): a linear probe on any backbone's frozen features,
//!   BCE plus the regulariser on the probe's logits, to compare with the other probe methods.
//! - `target: clip` ([`finetune`]): FairCLIP itself. The CLIP backbone's trainable weights are
//!   fine-tuned with the contrastive CLIP loss plus the regulariser on image-text similarity
//!   scores, and the fine-tuned model is evaluated zero-shot.
//!
//! Both targets read the same regulariser settings ([`RegulariserConfig`]). The two readings of
//! FairCLIP (`../shared/spec/algorithms.md` §2.3) are selected by `mode`:
//!
//! - `aligned` (the paper's formula; the reproduction study's A-FairCLIP): group `g`'s scores are
//!   the scores of the batch's own members of `g` (groups absent from the batch are skipped).
//!   Gradients flow through both distributions.
//! - `official` (what `finetune_FairCLIP.py` does): group `g`'s scores come from a separate batch
//!   of `group_batch_size` training samples of `g`, computed without gradient and divided by
//!   their sum. The batch's own scores stay raw.
//!
//! Each target's module documents its scores, settings and defaults. The Sinkhorn terms are
//! computed by one piece of code, [`SinkhornTerms`], which logs each group's mean term per epoch
//! as `sinkhorn_<group>`.
//!
//! The sections of the two targets differ, so `target` is read first and the rest of the section
//! is parsed as that target's settings. A key of the other target is an unknown-field error.
//! One plugin rather than two: it is one method, with one regulariser and one set of regulariser
//! keys, applied to two models.

pub mod finetune;
pub mod probe;

use candle_core::{DType, Tensor, D};
use fairlab_framework::config::PluginSpec;
use fairlab_framework::probe::Groups;
use fairlab_framework::sinkhorn::{sinkhorn_divergence, SinkhornConfig};
use fairlab_framework::{ConfigError, Debiaser};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use serde::Deserialize;

/// The plugin name.
pub const KIND: &str = "fairclip";

/// What a `fairclip` section trains.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A linear probe on frozen features ([`probe::FairClipProbe`]).
    #[default]
    Probe,
    /// The CLIP backbone's trainable weights ([`finetune::FairClipFineTune`]).
    Clip,
}

/// Build the `fairclip` debiaser of a section: its `target` (default `probe`) decides which
/// settings the rest of the section holds.
pub fn from_spec(spec: &PluginSpec) -> anyhow::Result<Box<dyn Debiaser>> {
    let mut rest = spec.clone();
    let target = match rest.params.remove("target") {
        None => Target::default(),
        Some(value) => serde_norway::from_value(value).map_err(|e| {
            ConfigError::at_key(
                format!("{}.target", spec.path),
                format!("{e} (`probe`: a linear probe on frozen features; `clip`: fine-tune the CLIP backbone)"),
            )
        })?,
    };
    Ok(match target {
        Target::Probe => Box::new(probe::FairClipProbe::new(rest.parse()?)?),
        Target::Clip => Box::new(finetune::FairClipFineTune::new(rest.parse()?)?),
    })
}

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

/// The regulariser settings both targets share, flattened into their sections. `lambda` and
/// `sinkhorn` default per target (see [`RegulariserConfig::resolve`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegulariserConfig {
    /// The sensitive attribute; the dataset's first when absent.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Which reading of FairCLIP.
    #[serde(default)]
    pub mode: Mode,
    /// Weight of the Sinkhorn terms, at least 0; the target's default when absent.
    #[serde(default)]
    pub lambda: Option<f64>,
    /// The divergence; the target's default when absent (a missing field inside takes
    /// geomloss's default: blur 0.05, scaling 0.5).
    #[serde(default)]
    pub sinkhorn: Option<SinkhornConfig>,
    /// Size of each group's separate batch in `official` mode (FairCLIP's `batchsize_fairloss`).
    #[serde(default = "default_group_batch_size")]
    pub group_batch_size: usize,
}

fn default_group_batch_size() -> usize {
    32
}

/// Checked regulariser settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regulariser {
    /// Which reading of FairCLIP.
    pub mode: Mode,
    /// Weight of the Sinkhorn terms.
    pub lambda: f64,
    /// The divergence.
    pub sinkhorn: SinkhornConfig,
    /// Size of each group's separate batch in `official` mode.
    pub group_batch_size: usize,
}

impl RegulariserConfig {
    /// The settings with a target's defaults for `lambda` and `sinkhorn`, checked: a negative or
    /// non-finite `lambda`, Sinkhorn settings out of range or a zero `group_batch_size` are
    /// [`ConfigError`]s naming the key.
    pub fn resolve(&self, lambda: f64, sinkhorn: SinkhornConfig) -> Result<Regulariser, ConfigError> {
        let lambda = self.lambda.unwrap_or(lambda);
        let sinkhorn = self.sinkhorn.unwrap_or(sinkhorn);
        sinkhorn
            .validate()
            .map_err(|e| ConfigError::at_key("debiaser.sinkhorn", e.to_string()))?;
        if !(lambda.is_finite() && lambda >= 0.0) {
            return Err(ConfigError::at_key(
                "debiaser.lambda",
                format!("must be a finite number >= 0, got {lambda}"),
            ));
        }
        if self.group_batch_size == 0 {
            return Err(ConfigError::at_key("debiaser.group_batch_size", "must be at least 1"));
        }
        Ok(Regulariser {
            mode: self.mode,
            lambda,
            sinkhorn,
            group_batch_size: self.group_batch_size,
        })
    }
}

/// The Sinkhorn terms of the training batches: which scores each group contributes, the
/// divergences, and each group's mean term per epoch for logging.
pub struct SinkhornTerms {
    settings: Regulariser,
    /// Group id of every training sample.
    ids: Vec<u32>,
    /// Group names, indexed by id.
    names: Vec<String>,
    /// Training samples of each group.
    members: Vec<Vec<u32>>,
    /// Draws the separate group batches of `official` mode.
    rng: StdRng,
    /// Sum and count of each group's term this epoch.
    terms: Vec<(f64, usize)>,
    /// Official-mode group terms skipped since the last [`SinkhornTerms::epoch_values`] because the
    /// group's scores summed to (about) zero.
    skipped: usize,
}

impl SinkhornTerms {
    /// The terms for these settings and training groups; `seed` drives the group batches.
    pub fn new(settings: Regulariser, groups: &Groups, seed: u64) -> Self {
        let mut members = vec![Vec::new(); groups.names().len()];
        for (i, &g) in groups.ids().iter().enumerate() {
            members[g as usize].push(i as u32);
        }
        Self {
            settings,
            ids: groups.ids().to_vec(),
            names: groups.names().to_vec(),
            terms: vec![(0.0, 0); members.len()],
            members,
            rng: StdRng::seed_from_u64(seed ^ 0xFA1C),
            skipped: 0,
        }
    }

    /// `loss + lambda * S(scores, y_g)` for every group `g` with samples to compare, the terms
    /// added one by one in `loss`'s dtype; `loss` itself when `lambda` is 0.
    ///
    /// `scores` `[B]` are the batch's scores, with gradient; `batch` the batch's training indices.
    /// Group `g`'s scores `y_g` are, in `aligned` mode, the rows of `scores` of the batch's members
    /// of `g`; in `official` mode, `group_scores(sample)` for a fresh random sample of
    /// `group_batch_size` training indices of `g`, detached and divided by their sum. A sum of about
    /// zero (a probe starting from zero weights scores every sample 0) would make that division
    /// 0/0: the group's term is then skipped for this step and counted in `sinkhorn_skipped`.
    pub fn add_to(
        &mut self,
        mut loss: Tensor,
        scores: &Tensor,
        batch: &[u32],
        group_scores: &mut dyn FnMut(&[u32]) -> anyhow::Result<Tensor>,
    ) -> anyhow::Result<Tensor> {
        if self.settings.lambda == 0.0 {
            return Ok(loss);
        }
        let x = scores.to_dtype(DType::F64)?.unsqueeze(D::Minus1)?;
        for g in 0..self.names.len() {
            let y = match self.settings.mode {
                Mode::Aligned => {
                    let rows: Vec<u32> = (0..batch.len() as u32)
                        .filter(|&r| self.ids[batch[r as usize] as usize] == g as u32)
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    scores.index_select(&Tensor::new(rows.as_slice(), scores.device())?, 0)?
                }
                Mode::Official => {
                    if self.members[g].is_empty() {
                        continue;
                    }
                    let sample: Vec<u32> = self.members[g]
                        .choose_multiple(&mut self.rng, self.settings.group_batch_size)
                        .copied()
                        .collect();
                    let raw = group_scores(&sample)?.detach().to_dtype(DType::F64)?;
                    let total = raw.sum_all()?.to_scalar::<f64>()?;
                    let magnitude = raw.abs()?.sum_all()?.to_scalar::<f64>()?;
                    if !(total.is_finite() && total.abs() > 1e-12 * magnitude && magnitude > 0.0) {
                        self.skipped += 1;
                        continue;
                    }
                    (raw / total)?
                }
            };
            let y = y.to_dtype(DType::F64)?.unsqueeze(D::Minus1)?;
            let term = sinkhorn_divergence(&x, &y, None, None, &self.settings.sinkhorn)?;
            self.terms[g].0 += term.to_scalar::<f64>()?;
            self.terms[g].1 += 1;
            loss = (loss + (term * self.settings.lambda)?.to_dtype(scores.dtype())?)?;
        }
        Ok(loss)
    }

    /// Each group's mean term since the last call, as `sinkhorn_<group>` (groups with no term are
    /// left out), and `sinkhorn_skipped` when official-mode terms were skipped; resets them.
    pub fn epoch_values(&mut self) -> Vec<(String, f64)> {
        let mut values: Vec<(String, f64)> = self
            .names
            .iter()
            .zip(&self.terms)
            .filter(|(_, (_, count))| *count > 0)
            .map(|(name, (sum, count))| (format!("sinkhorn_{name}"), sum / *count as f64))
            .collect();
        if self.skipped > 0 {
            values.push(("sinkhorn_skipped".to_string(), self.skipped as f64));
        }
        self.terms.iter_mut().for_each(|t| *t = (0.0, 0));
        self.skipped = 0;
        values
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use fairlab_framework::Registry;

    use super::*;

    fn spec(yaml: &str) -> PluginSpec {
        PluginSpec::new("debiaser", KIND, serde_norway::from_str(yaml).unwrap())
    }

    fn error(yaml: &str) -> String {
        from_spec(&spec(yaml)).err().expect("an error").to_string()
    }

    #[test]
    fn the_target_selects_the_settings_and_defaults_to_the_probe() {
        assert!(from_spec(&spec("{mode: official, epochs: 3, standardize: false}")).is_ok());
        assert!(from_spec(&spec("{target: probe, lambda: 0.5}")).is_ok());
        assert!(from_spec(&spec(
            "{target: clip, mode: official, texts: {negative: a, positive: b}}"
        ))
        .is_ok());
        let message = error("{target: vit}");
        assert!(
            message.contains("debiaser.target") && message.contains("`clip`"),
            "{message}"
        );
        // A key of the other target is unknown.
        let message = error("{target: clip, standardize: false}");
        assert!(message.contains("standardize"), "{message}");
        let message = error("{target: probe, texts: {negative: a, positive: b}}");
        assert!(message.contains("texts"), "{message}");
        let mut registry = Registry::new();
        crate::register(&mut registry);
        assert!(registry.debiaser(&spec("{target: clip}")).is_ok());
    }

    #[test]
    fn bad_regulariser_settings_are_keyed_errors() {
        for (yaml, key) in [
            ("{lambda: -1}", "debiaser.lambda"),
            ("{target: clip, lambda: .nan}", "debiaser.lambda"),
            ("{sinkhorn: {scaling: 1.5}}", "debiaser.sinkhorn"),
            ("{target: clip, group_batch_size: 0}", "debiaser.group_batch_size"),
        ] {
            let message = error(yaml);
            assert!(message.contains(key), "{yaml}: {message}");
        }
    }

    /// Terms of one batch of 8 scores, groups alternating `A`, `B`; official group scores are
    /// the scores of the sampled indices.
    fn penalty(mode: Mode, scores: &[f32]) -> (f64, Vec<(String, f64)>) {
        let values: Vec<String> = (0..scores.len()).map(|i| ["A", "B"][i % 2].to_string()).collect();
        let settings = Regulariser {
            mode,
            lambda: 1.0,
            sinkhorn: SinkhornConfig {
                blur: 1e-4,
                scaling: 0.5,
            },
            group_batch_size: 4,
        };
        let mut terms = SinkhornTerms::new(settings, &Groups::from_columns(&values, None), 0);
        let x = Tensor::new(scores, &Device::Cpu).unwrap();
        let batch: Vec<u32> = (0..scores.len() as u32).collect();
        let zero = Tensor::new(0f32, &Device::Cpu).unwrap();
        let total = terms
            .add_to(zero, &x, &batch, &mut |sample| {
                Ok(x.index_select(&Tensor::new(sample, &Device::Cpu)?, 0)?)
            })
            .unwrap();
        (total.to_scalar::<f32>().unwrap() as f64, terms.epoch_values())
    }

    #[test]
    fn official_groups_summing_to_zero_are_skipped_not_nan() {
        // A probe at its zero initialisation scores every sample 0.
        let (total, logged) = penalty(Mode::Official, &[0.0; 8]);
        assert_eq!(total, 0.0);
        assert_eq!(logged, vec![("sinkhorn_skipped".to_string(), 2.0)]);
        let (total, _) = penalty(Mode::Official, &[1.0, -1.0, 1.0, -1.0, 2.0, 3.0, 2.0, 3.0]);
        assert!(total.is_finite());
    }

    #[test]
    fn aligned_groups_matching_the_batch_add_nothing_and_official_groups_are_sum_normalised() {
        let same = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let (total, logged) = penalty(Mode::Aligned, &same);
        assert!(total.abs() < 1e-5, "{total}");
        assert_eq!(logged.len(), 2);
        // The same batch against its own members divided by their sum (in (0, 1)): far apart.
        let (total, logged) = penalty(Mode::Official, &same);
        assert!(total > 1.0, "{total}");
        assert!(logged.iter().all(|(name, v)| name.starts_with("sinkhorn_") && *v > 0.5));
    }

    #[test]
    fn official_group_scores_carry_no_gradient_and_aligned_ones_do() {
        let settings = |mode| Regulariser {
            mode,
            lambda: 1.0,
            sinkhorn: SinkhornConfig::default(),
            group_batch_size: 2,
        };
        let values: Vec<String> = ["A", "B", "A", "B"].map(String::from).to_vec();
        let groups = Groups::from_columns(&values, None);
        let dev = Device::Cpu;
        let base = Tensor::new(&[0.0f32, 1.0, 2.0, 5.0], &dev).unwrap();
        for mode in [Mode::Official, Mode::Aligned] {
            // The batch's scores through `a`, the separate group batches' through `b`.
            let a = candle_core::Var::new(1.0f32, &dev).unwrap();
            let b = candle_core::Var::new(1.0f32, &dev).unwrap();
            let scores = base.broadcast_mul(a.as_tensor()).unwrap();
            let mut terms = SinkhornTerms::new(settings(mode), &groups, 0);
            let zero = Tensor::new(0f32, &dev).unwrap();
            let total = terms
                .add_to(zero, &scores, &[0, 1, 2, 3], &mut |sample| {
                    let idx = Tensor::new(sample, &dev)?;
                    Ok(base.index_select(&idx, 0)?.broadcast_mul(b.as_tensor())?)
                })
                .unwrap();
            let grads = total.backward().unwrap();
            assert!(grads.get(a.as_tensor()).is_some(), "{mode:?}");
            assert!(grads.get(b.as_tensor()).is_none(), "{mode:?}");
        }
    }
}
