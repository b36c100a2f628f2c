//! `fairclip` with `target: clip`: FairCLIP's fine-tuning of CLIP (`finetune_FairCLIP.py`,
//! `../shared/spec/algorithms.md` §2.2–2.4) on the backbone's trainable weights
//! (`backbone.trainable`).
//!
//! Each epoch shuffles the training split (seeded from the experiment seed) into mini-batches of
//! `batch_size` images paired with their texts. The last batch may be smaller, as with PyTorch's
//! default `drop_last=False`. Per batch:
//!
//! - logits `L = exp(logit_scale) * normalize(img) @ normalize(txt)^T` (`B x B`). The learned
//!   temperature is read once and held constant: FairCLIP does not train it.
//! - the CLIP loss `(CE(L, arange B) + CE(L^T, arange B)) / 2`,
//! - plus `lambda * sum_g S(x, y_g)` (see the [parent module](super)) on per-pair scores:
//!   - `official`: `x_i = sum_k L[i,k] * L[k,i]` (the diagonal of `L @ L`, the released code's
//!     `diag(L_img @ L_txt^T)`), raw. `y_g`: the same quantity for a separate batch of
//!     `group_batch_size` training pairs of group `g`, computed without gradient and divided by
//!     its sum.
//!   - `aligned` (A-FairCLIP): `x = diag(L)`, the scaled cosine of each matched pair; `y_g` the
//!     entries of the batch's members of `g`, with gradient, not normalised.
//!
//! **Texts.** FairCLIP trains on GPT-4 summaries of clinical notes, or with `--text_source label`
//! on one prompt per class ("A photo of glaucoma" / "A photo of non-glaucoma"). fairlab's
//! datasets have no text column yet, so this target trains in label mode: `texts` gives the
//! prompt of each class. A batch therefore holds duplicate texts, and the CLIP loss asks each
//! image to match its own copy of a prompt better than the identical copies paired with the
//! other images of its class. Those targets are ambiguous; FairCLIP's label mode trains on them
//! as they are, and so does this. The prompts are encoded once per evaluation of the loss, and
//! their embeddings are shared by the pairs (the same values and gradients as encoding every copy).
//!
//! **Training.** The optimiser comes from the registry over `backbone.trainable_vars()`. Its
//! default is FairCLIP's: `adam` with lr 1e-5, betas (0.1, 0.1), eps 1e-6, and weight decay 6e-5
//! as coupled L2. Everything runs in f32, with no fp16 weights (the reproduction's fix for the
//! fp16 overflow, §2.9 problem 3). Each epoch logs `train_loss` and the validation metrics of the
//! zero-shot scores (`val_*`), then `contrastive_loss` (the mean CLIP loss), `sinkhorn_<group>`,
//! and `clip_weight_change_l2`, the L2 distance of the trainable weights from the pretrained ones.
//!
//! **Model selection** never looks at the test split. FairCLIP keeps the epoch with the best
//! *test* AUC (§2.9 problem 1); here `selection: best-val-auc` (the default) keeps the epoch with
//! the best validation AUC (the earliest of ties), restoring a snapshot of the trainable weights,
//! and `selection: last` keeps the last epoch. The kept epoch is logged as `selected_epoch`.
//! Besides the optimiser's state, the run keeps one or two copies of the trainable weights: the
//! pretrained values (for `clip_weight_change_l2`) and, with `best-val-auc`, the best epoch's.
//!
//! **Evaluation** is zero-shot with the fine-tuned model, as FairCLIP evaluates (see
//! [`crate::zero_shot`]). The class `prompts` default to the training `texts`, and the scale is
//! the raw cosine. Image features are recomputed through the fine-tuned backbone, because the
//! runner's cached features are those of the pretrained weights. The run's representation (for
//! the leakage probe) is the fine-tuned image embeddings.
//!
//! ```yaml
//! backbone:
//!   kind: clip
//!   model: openai/clip-vit-base-patch16
//!   trainable: [vision_model, visual_projection, text_model.encoder]   # FairCLIP's towers
//! debiaser:
//!   kind: fairclip
//!   target: clip
//!   attribute: race
//!   mode: official                  # or aligned
//!   lambda: 0.000001                # the default (FairCLIP's script)
//!   sinkhorn: {blur: 0.000001, scaling: 0.5}   # the default (FairCLIP's script at HEAD)
//!   group_batch_size: 32
//!   epochs: 10
//!   batch_size: 32
//!   optimizer: {kind: adam, lr: 0.00001, beta1: 0.1, beta2: 0.1, eps: 0.000001, weight_decay: 0.00006}
//!   texts: {negative: "A photo of non-glaucoma", positive: "A photo of glaucoma"}
//!   prompts:                        # zero-shot evaluation; default: the texts
//!     negative: ["A photo of non-glaucoma"]
//!     positive: ["A photo of glaucoma"]
//!   scale: cosine
//!   selection: best-val-auc         # or last
//! ```

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::loss::cross_entropy;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::debiaser::{Artifact, DataAccess, FitContext, Predictor};
use fairlab_framework::features::encode_unit;
use fairlab_framework::metric::{evaluate, PredictionSet};
use fairlab_framework::probe::Groups;
use fairlab_framework::sinkhorn::SinkhornConfig;
use fairlab_framework::{tensor_io, Backbone, ConfigError, Debiaser, Split};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;

use super::{Mode, Regulariser, RegulariserConfig, SinkhornTerms, KIND};
use crate::batched::map_split;
use crate::zero_shot::{l2_normalize, require_text_encoder, ClassPrompts, LogitScale, ZeroShotClassifier};

/// How the method is named in messages.
const METHOD: &str = "`fairclip` with `target: clip`";

/// The training text of each class (FairCLIP's `--text_source label`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassTexts {
    /// The text paired with images of class 0.
    pub negative: String,
    /// The text paired with images of class 1.
    pub positive: String,
}

impl Default for ClassTexts {
    fn default() -> Self {
        Self {
            negative: "a chest x-ray with no finding".to_string(),
            positive: "a chest x-ray with an abnormal finding".to_string(),
        }
    }
}

/// Which epoch's weights the run keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The epoch with the best validation AUC (the earliest of ties); the last epoch when no
    /// epoch has a defined AUC.
    #[default]
    BestValAuc,
    /// The last epoch.
    Last,
}

/// `fairclip` settings for `target: clip`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FairClipFineTuneConfig {
    /// The regulariser (default `lambda` 1e-6, `sinkhorn` `{blur: 1e-6, scaling: 0.5}`, as
    /// FairCLIP's script).
    #[serde(flatten)]
    pub regulariser: RegulariserConfig,
    /// Passes over the training pairs (FairCLIP: 10).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Pairs per optimiser step (FairCLIP: 32).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The optimiser of the trainable weights (default: FairCLIP's Adam).
    #[serde(default = "default_optimizer")]
    pub optimizer: PluginSpec,
    /// The training text of each class.
    #[serde(default)]
    pub texts: ClassTexts,
    /// The zero-shot prompts of each class; default: the training texts.
    #[serde(default)]
    pub prompts: Option<ClassPrompts>,
    /// How zero-shot cosines become scores (FairCLIP: raw cosines).
    #[serde(default)]
    pub scale: LogitScale,
    /// Which epoch's weights the run keeps.
    #[serde(default)]
    pub selection: Selection,
}

fn default_epochs() -> usize {
    10
}
fn default_batch_size() -> usize {
    32
}
fn default_optimizer() -> PluginSpec {
    let params = serde_norway::from_str("{lr: 0.00001, beta1: 0.1, beta2: 0.1, eps: 0.000001, weight_decay: 0.00006}")
        .expect("static YAML");
    PluginSpec::new("debiaser.optimizer", "adam", params)
}

/// FairCLIP's fine-tuning.
pub struct FairClipFineTune {
    cfg: FairClipFineTuneConfig,
    regulariser: Regulariser,
    prompts: ClassPrompts,
}

impl FairClipFineTune {
    /// FairCLIP fine-tuning with these settings. Bad regulariser settings, a zero `batch_size`,
    /// and empty texts or prompts are [`ConfigError`]s naming the key.
    pub fn new(cfg: FairClipFineTuneConfig) -> anyhow::Result<Self> {
        let sinkhorn = SinkhornConfig {
            blur: 1e-6,
            scaling: 0.5,
        };
        let regulariser = cfg.regulariser.resolve(1e-6, sinkhorn)?;
        if cfg.batch_size == 0 {
            return Err(ConfigError::at_key("debiaser.batch_size", "must be at least 1").into());
        }
        for (name, text) in [("negative", &cfg.texts.negative), ("positive", &cfg.texts.positive)] {
            if text.trim().is_empty() {
                return Err(ConfigError::at_key(format!("debiaser.texts.{name}"), "must not be empty").into());
            }
        }
        let prompts = cfg.prompts.clone().unwrap_or_else(|| ClassPrompts {
            negative: vec![cfg.texts.negative.clone()],
            positive: vec![cfg.texts.positive.clone()],
        });
        prompts.validate("debiaser.prompts")?;
        Ok(Self {
            cfg,
            regulariser,
            prompts,
        })
    }

    /// The zero-shot scores of the validation split with the weights as they are now.
    fn val_scores(&self, data: &dyn DataAccess) -> anyhow::Result<Vec<f64>> {
        let backbone = data.backbone();
        let classifier = ZeroShotClassifier::new(backbone, &self.prompts, self.cfg.scale)?;
        classifier.scores(&map_split(data, Split::Val, |unit| encode_unit(backbone, unit))?)
    }
}

impl Debiaser for FairClipFineTune {
    fn kind(&self) -> &str {
        KIND
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let backbone = ctx.data.backbone();
        require_text_encoder(backbone, "debiaser.target", METHOD)?;
        let vars = backbone.trainable_vars();
        if vars.is_empty() {
            return Err(ConfigError::at_key(
                "backbone.trainable",
                format!(
                    "{METHOD} fine-tunes the backbone, but `{}` has no trainable weights: set backbone.trainable, \
                     e.g. [vision_model, visual_projection, text_model.encoder] (FairCLIP's towers)",
                    backbone.kind()
                ),
            )
            .into());
        }
        let groups = Groups::of(
            ctx.data,
            Split::Train,
            self.cfg.regulariser.attribute.as_deref(),
            false,
            "debiaser.attribute",
        )?;
        let mut terms = SinkhornTerms::new(self.regulariser, &groups, ctx.seed);
        let pairs = TrainingPairs::new(ctx.data, &self.cfg.texts)?;
        let pretrained = snapshot(&vars)?;
        let mut optimizer = ctx.optimizer(&self.cfg.optimizer, vars.clone())?;
        let per_step = optimizer.batches_per_step().max(1);
        let val_labels = ctx.data.split(Split::Val).labels.clone();
        let mode = self.regulariser.mode;
        let mut rng = StdRng::seed_from_u64(ctx.seed);
        let mut order: Vec<u32> = (0..pairs.len() as u32).collect();
        let mut best: Option<(usize, f64, Vec<Tensor>)> = None;
        for epoch in 1..=self.cfg.epochs {
            order.shuffle(&mut rng);
            let batches: Vec<&[u32]> = order.chunks(self.cfg.batch_size).collect();
            let (mut total, mut samples) = (0.0, 0);
            let (mut contrastive_sum, mut contrastive_samples) = (0.0, 0);
            for step in batches.chunks(per_step) {
                let report = optimizer.step(&mut |slot| {
                    let batch = step[slot % step.len()];
                    let texts = pairs.class_texts()?;
                    let logits = pairs.logits(batch, &texts)?;
                    let contrastive = clip_loss(&logits)?;
                    contrastive_sum += contrastive.to_scalar::<f32>()? as f64 * batch.len() as f64;
                    contrastive_samples += batch.len();
                    let scores = pair_scores(&logits, mode)?;
                    let frozen_texts = texts.detach();
                    terms.add_to(contrastive, &scores, batch, &mut |sample| {
                        Ok(pair_scores(&pairs.logits(sample, &frozen_texts)?, mode)?)
                    })
                })?;
                let count: usize = step.iter().map(|b| b.len()).sum();
                total += report.loss * count as f64;
                samples += count;
            }
            let val_scores = self.val_scores(ctx.data)?;
            ctx.monitor
                .epoch(epoch, total / samples.max(1) as f64, Some(&val_scores))?;
            let mut values = terms.epoch_values();
            values.push((
                "contrastive_loss".to_string(),
                contrastive_sum / contrastive_samples.max(1) as f64,
            ));
            values.push(("clip_weight_change_l2".to_string(), distance(&vars, &pretrained)?));
            log(ctx, epoch, &values)?;
            if self.cfg.selection == Selection::BestValAuc {
                let report = evaluate(ctx.registry, &PredictionSet::new(&val_labels, &val_scores), 0.5)?;
                if let Some(auc) = report.overall.get("auc").filter(|auc| auc.is_finite()) {
                    if best.as_ref().is_none_or(|(_, best_auc, _)| auc > *best_auc) {
                        best = Some((epoch, auc, snapshot(&vars)?));
                    }
                }
            }
            ctx.monitor.progress(epoch, self.cfg.epochs);
        }
        let selected = match best {
            Some((epoch, _, weights)) => {
                for (var, value) in vars.iter().zip(&weights) {
                    var.set(value)?;
                }
                epoch
            }
            None => self.cfg.epochs,
        };
        let change = distance(&vars, &pretrained)?;
        log(
            ctx,
            self.cfg.epochs,
            &[
                ("selected_epoch".to_string(), selected as f64),
                ("clip_weight_change_l2".to_string(), change),
            ],
        )?;
        tracing::info!(selected, weight_change_l2 = change, "FairCLIP fine-tuning done");
        let embeddings = Split::ALL
            .into_iter()
            .map(|split| Ok((split, map_split(ctx.data, split, |unit| encode_unit(backbone, unit))?)))
            .collect::<anyhow::Result<_>>()?;
        let weights = backbone
            .trainable_weights()
            .into_iter()
            .map(|(name, var)| Ok((name, var.as_tensor().detach().to_device(&Device::Cpu)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Box::new(FineTunedClip {
            classifier: ZeroShotClassifier::new(backbone, &self.prompts, self.cfg.scale)?,
            embeddings,
            weights,
            backbone: backbone.fingerprint(),
        }))
    }
}

/// Log named values at `step`.
fn log(ctx: &mut FitContext<'_>, step: usize, values: &[(String, f64)]) -> anyhow::Result<()> {
    let pairs: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    ctx.monitor.log(step, &pairs)
}

/// The training split as image-text pairs: its unit-range pixels (kept on the CPU; each batch
/// is moved to the backbone's device) and the text of each label.
pub struct TrainingPairs<'a> {
    backbone: &'a dyn Backbone,
    /// `[N, 3, H, W]` unit-range pixels, on the CPU.
    pixels: Tensor,
    /// The label of each pair, which selects its text.
    labels: Vec<u8>,
    /// The texts of class 0 and 1.
    texts: [String; 2],
    /// `exp(logit_scale)`, held constant.
    scale: f64,
}

impl<'a> TrainingPairs<'a> {
    /// The training split of `data` with `texts`; an error if the backbone has no learned
    /// logit scale.
    pub fn new(data: &'a dyn DataAccess, texts: &ClassTexts) -> anyhow::Result<Self> {
        let backbone = data.backbone();
        let pixels = map_split(data, Split::Train, |unit| Ok(unit.to_device(&Device::Cpu)?))?;
        Self::from_pixels(backbone, pixels, data.split(Split::Train).labels.clone(), texts)
    }

    /// Pairs of `pixels` `[N, 3, H, W]` (unit range) with the texts of `labels`.
    pub fn from_pixels(
        backbone: &'a dyn Backbone,
        pixels: Tensor,
        labels: Vec<u8>,
        texts: &ClassTexts,
    ) -> anyhow::Result<Self> {
        let scale = backbone.logit_scale()?.ok_or_else(|| {
            ConfigError::at_key(
                "debiaser.target",
                format!("{METHOD}: `{}` has no learned logit scale", backbone.kind()),
            )
        })?;
        Ok(Self {
            backbone,
            pixels: pixels.to_device(&Device::Cpu)?,
            labels,
            texts: [texts.negative.clone(), texts.positive.clone()],
            scale,
        })
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The text embeddings of the two classes `[2, D]` (f32), with gradient.
    pub fn class_texts(&self) -> anyhow::Result<Tensor> {
        let embeds = self
            .backbone
            .encode_texts(&self.texts)?
            .ok_or_else(|| anyhow::anyhow!("backbone `{}` has no text encoder", self.backbone.kind()))?;
        Ok(embeds.to_dtype(DType::F32)?)
    }

    /// The logits `[B, B]` of pairs `batch` (see [`similarity_logits`]), the images through the
    /// backbone and each pair's text taken from `class_texts` (as [`TrainingPairs::class_texts`]
    /// returns).
    pub fn logits(&self, batch: &[u32], class_texts: &Tensor) -> anyhow::Result<Tensor> {
        let device = self.backbone.device();
        let unit = self
            .pixels
            .index_select(&Tensor::new(batch, &Device::Cpu)?, 0)?
            .to_device(device)?;
        let images = encode_unit(self.backbone, &unit)?;
        let labels: Vec<u32> = batch.iter().map(|&i| self.labels[i as usize] as u32).collect();
        let texts = class_texts.index_select(&Tensor::new(labels.as_slice(), class_texts.device())?, 0)?;
        Ok(similarity_logits(&images, &texts, self.scale)?)
    }
}

/// `scale * normalize(images) @ normalize(texts)^T`: `[B, M]` logits of images `[B, D]` against
/// texts `[M, D]` (CLIP's `logits_per_image`).
pub fn similarity_logits(images: &Tensor, texts: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    l2_normalize(images)?.matmul(&l2_normalize(texts)?.t()?)? * scale
}

/// The CLIP loss of square logits `[B, B]` whose diagonal holds the matched pairs:
/// `(CE(L, arange B) + CE(L^T, arange B)) / 2`.
pub fn clip_loss(logits: &Tensor) -> candle_core::Result<Tensor> {
    let n = logits.dim(0)?;
    let targets = Tensor::arange(0u32, n as u32, logits.device())?;
    let per_image = cross_entropy(logits, &targets)?;
    let per_text = cross_entropy(&logits.t()?.contiguous()?, &targets)?;
    (per_image + per_text)? / 2.0
}

/// The per-pair scores `[B]` the regulariser compares, from square logits `L` `[B, B]`:
/// `official`: `x_i = sum_k L[i,k] * L[k,i]` (the diagonal of `L @ L`); `aligned`: `L[i,i]`.
pub fn pair_scores(logits: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
    match mode {
        Mode::Official => (logits * logits.t()?)?.sum(1),
        Mode::Aligned => {
            let n = logits.dim(0)?;
            (logits * Tensor::eye(n, logits.dtype(), logits.device())?)?.sum(1)
        }
    }
}

/// Detached copies of the vars' values.
fn snapshot(vars: &[Var]) -> candle_core::Result<Vec<Tensor>> {
    vars.iter().map(|v| v.as_tensor().detach().copy()).collect()
}

/// The L2 distance between the vars and `reference` (as from [`snapshot`]), over all of them.
fn distance(vars: &[Var], reference: &[Tensor]) -> candle_core::Result<f64> {
    let mut sum = 0.0;
    for (var, value) in vars.iter().zip(reference) {
        let diff = (var.as_tensor().detach() - value)?.to_dtype(DType::F64)?;
        sum += diff.sqr()?.sum_all()?.to_scalar::<f64>()?;
    }
    Ok(sum.sqrt())
}

/// The fine-tuned model: zero-shot scores of each split's fine-tuned image embeddings.
struct FineTunedClip {
    classifier: ZeroShotClassifier,
    /// Each split's image embeddings `[N, D]` through the fine-tuned backbone.
    embeddings: HashMap<Split, Tensor>,
    /// The fine-tuned weights (the selected epoch's), by checkpoint tensor name, on the CPU.
    weights: Vec<(String, Tensor)>,
    /// The fingerprint of the pretrained backbone they were fine-tuned from.
    backbone: String,
}

impl Predictor for FineTunedClip {
    fn predict(&self, _data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>> {
        self.classifier.scores(&self.embeddings[&split])
    }

    fn representation(&self, _data: &dyn DataAccess, split: Split) -> anyhow::Result<Tensor> {
        Ok(self.embeddings[&split].clone())
    }

    /// `model/finetuned.safetensors`: the fine-tuned tensors under their checkpoint names (the
    /// frozen rest is the pretrained checkpoint the metadata names), loadable over it.
    fn artifacts(&self) -> anyhow::Result<Vec<Artifact>> {
        let tensors: Vec<(&str, &Tensor)> = self.weights.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let metadata = HashMap::from([
            ("base".to_string(), self.backbone.clone()),
            ("method".to_string(), METHOD.to_string()),
        ]);
        Ok(vec![Artifact {
            path: "model/finetuned.safetensors".to_string(),
            bytes: tensor_io::to_safetensors(&tensors, metadata)?,
        }])
    }
}

#[cfg(test)]
mod tests {
    use fairlab_framework::Registry;

    use super::*;

    fn tensor(rows: &[[f32; 2]; 2]) -> Tensor {
        Tensor::new(rows, &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn the_clip_loss_averages_the_image_and_text_cross_entropies() {
        // Images: CE([2, 0], 0) = CE([1, 3], 1) = ln(1 + e^-2). Texts (columns): CE([2, 1], 0) =
        // ln(1 + e^-1), CE([0, 3], 1) = ln(1 + e^-3).
        let loss = clip_loss(&tensor(&[[2.0, 0.0], [1.0, 3.0]])).unwrap();
        let expected =
            ((1.0 + (-2f64).exp()).ln() + ((1.0 + (-1f64).exp()).ln() + (1.0 + (-3f64).exp()).ln()) / 2.0) / 2.0;
        assert!((loss.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-6);
        assert!((expected - 0.153926).abs() < 1e-6);
    }

    #[test]
    fn official_scores_are_the_diagonal_of_l_squared_and_aligned_ones_the_diagonal() {
        let logits = tensor(&[[1.0, 2.0], [3.0, 4.0]]);
        // L @ L = [[7, 10], [15, 22]].
        assert_eq!(values(&pair_scores(&logits, Mode::Official).unwrap()), [7.0, 22.0]);
        assert_eq!(values(&pair_scores(&logits, Mode::Aligned).unwrap()), [1.0, 4.0]);
        // Scaled cosines: [[1, 0], [0, 2]] against [[1, 1], [0, 1]].
        let logits = similarity_logits(
            &tensor(&[[1.0, 0.0], [0.0, 2.0]]),
            &tensor(&[[1.0, 1.0], [0.0, 1.0]]),
            10.0,
        )
        .unwrap();
        let half = 10.0 * 0.5f32.sqrt();
        let got = values(&logits);
        for (g, e) in got.iter().zip([half, 0.0, half, 10.0]) {
            assert!((g - e).abs() < 1e-5, "{got:?}");
        }
    }

    /// The tiny random-weight CLIP fixture with these trainable prefixes.
    fn tiny_clip(trainable: &str) -> Box<dyn Backbone> {
        let mut registry = Registry::new();
        fairlab_backbones::register(&mut registry);
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/hf/models/tiny-clip");
        let yaml = format!("{{model: '{folder}', device: cpu, trainable: {trainable}}}");
        let spec = PluginSpec::new("backbone", "clip", serde_norway::from_str(&yaml).unwrap());
        registry.backbone(&spec).unwrap()
    }

    /// The loss of 8 random pairs (labels and groups alternating) in `mode`, with `lambda` 1.
    fn loss(pairs: &TrainingPairs<'_>, mode: Mode) -> Tensor {
        let groups: Vec<String> = (0..8).map(|i| ["A", "B"][i % 2].to_string()).collect();
        let settings = Regulariser {
            mode,
            lambda: 1.0,
            sinkhorn: SinkhornConfig {
                blur: 1e-3,
                scaling: 0.5,
            },
            group_batch_size: 3,
        };
        let mut terms = SinkhornTerms::new(settings, &Groups::from_columns(&groups, None), 0);
        let batch: Vec<u32> = (0..8).collect();
        let texts = pairs.class_texts().unwrap();
        let logits = pairs.logits(&batch, &texts).unwrap();
        let scores = pair_scores(&logits, mode).unwrap();
        let frozen = texts.detach();
        terms
            .add_to(clip_loss(&logits).unwrap(), &scores, &batch, &mut |sample| {
                Ok(pair_scores(&pairs.logits(sample, &frozen)?, mode)?)
            })
            .unwrap()
    }

    fn random_pairs<'a>(backbone: &'a dyn Backbone) -> TrainingPairs<'a> {
        let pixels = Tensor::rand(0f32, 1f32, (8, 3, 32, 32), &Device::Cpu).unwrap();
        let labels = (0..8).map(|i| (i % 2) as u8).collect();
        TrainingPairs::from_pixels(backbone, pixels, labels, &ClassTexts::default()).unwrap()
    }

    #[test]
    fn the_loss_reaches_every_trainable_tower_and_a_step_leaves_frozen_weights_alone() {
        // FairCLIP's towers: both the image and the text side get gradients, in both modes.
        let clip = tiny_clip("[vision_model, visual_projection, text_model.encoder]");
        let pairs = random_pairs(clip.as_ref());
        for mode in [Mode::Official, Mode::Aligned] {
            let grads = loss(&pairs, mode).backward().unwrap();
            let vars = clip.trainable_vars();
            assert_eq!(vars.len(), 72);
            assert!(vars.iter().all(|v| grads.get(v).is_some()), "{mode:?}");
        }

        // Only the vision side trainable: a step changes the image features, not the texts.
        let clip = tiny_clip("[vision_model, visual_projection]");
        let pairs = random_pairs(clip.as_ref());
        let texts = pairs.class_texts().unwrap();
        let images = pairs.logits(&[0, 1, 2], &texts).unwrap();
        let grads = loss(&pairs, Mode::Official).backward().unwrap();
        for var in clip.trainable_vars() {
            let grad = grads.get(&var).expect("a gradient for every vision var");
            var.set(&(var.as_tensor() - (grad * 0.1).unwrap()).unwrap()).unwrap();
        }
        let texts_after = pairs.class_texts().unwrap();
        assert_eq!(values(&texts_after), values(&texts), "the frozen text tower moved");
        let moved = (pairs.logits(&[0, 1, 2], &texts_after).unwrap() - images).unwrap();
        assert!(moved.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 1e-4);
    }
}
