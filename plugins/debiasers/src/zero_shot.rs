//! `zero-shot`: no training; a backbone with a text encoder (CLIP) scores each image by its
//! similarity to prompts of the two classes, as FairCLIP evaluates its models.
//!
//! ```yaml
//! debiaser:
//!   kind: zero-shot
//!   prompts:
//!     negative: ["A photo of non-glaucoma"]
//!     positive: ["A photo of glaucoma"]
//!   scale: cosine        # FairCLIP: softmax over raw cosines; `logit-scale`: CLIP's exp(logit_scale) * cosine
//! ```
//!
//! Image features and prompt embeddings are L2-normalised; several prompts of one class are
//! averaged and normalised again (CLIP's prompt ensembling). The positive-class probability is
//! `softmax(s * [cos_neg, cos_pos])[1] = sigmoid(s * (cos_pos - cos_neg))`, with `s = 1` for `cosine`.

use candle_core::{DType, Device, Tensor, D};
use fairlab_framework::debiaser::{DataAccess, FitContext, Predictor};
use fairlab_framework::{ConfigError, Debiaser, Split};
use serde::{Deserialize, Serialize};

/// The plugin name.
pub const KIND: &str = "zero-shot";

/// The prompts of each class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassPrompts {
    /// Prompts of class 0.
    pub negative: Vec<String>,
    /// Prompts of class 1.
    pub positive: Vec<String>,
}

/// How cosine similarities become logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogitScale {
    /// Raw cosines, as FairCLIP's evaluation (probabilities cluster near 0.5; AUC is unaffected).
    #[default]
    Cosine,
    /// Cosines times the backbone's learned temperature (CLIP's `exp(logit_scale)`).
    LogitScale,
}

/// The `zero-shot` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotConfig {
    /// The prompts of each class.
    pub prompts: ClassPrompts,
    /// How cosines become logits.
    #[serde(default)]
    pub scale: LogitScale,
}

/// The zero-shot method.
pub struct ZeroShot {
    cfg: ZeroShotConfig,
}

impl ZeroShot {
    /// Zero-shot classification with these prompts; an empty prompt list is a [`ConfigError`].
    pub fn new(cfg: ZeroShotConfig) -> anyhow::Result<Self> {
        for (name, prompts) in [("negative", &cfg.prompts.negative), ("positive", &cfg.prompts.positive)] {
            if prompts.is_empty() || prompts.iter().any(|p| p.trim().is_empty()) {
                return Err(ConfigError::at_key(
                    format!("debiaser.prompts.{name}"),
                    "list at least one non-empty prompt",
                )
                .into());
            }
        }
        Ok(Self { cfg })
    }
}

impl Debiaser for ZeroShot {
    fn kind(&self) -> &str {
        KIND
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let backbone = ctx.data.backbone();
        let text_error = || {
            ConfigError::at_key(
                "debiaser.kind",
                format!(
                    "`{KIND}` needs a backbone with a text encoder (e.g. clip); `{}` has none",
                    backbone.kind()
                ),
            )
        };
        if !backbone.has_text_encoder() {
            return Err(text_error().into());
        }
        let mut class_embeds = Vec::new();
        for prompts in [&self.cfg.prompts.negative, &self.cfg.prompts.positive] {
            let embeds = backbone.encode_texts(prompts)?.ok_or_else(text_error)?;
            let mean = l2_normalize(&embeds.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)?.mean_keepdim(0)?;
            class_embeds.push(l2_normalize(&mean)?);
        }
        let scale = match self.cfg.scale {
            LogitScale::Cosine => 1.0,
            LogitScale::LogitScale => backbone.logit_scale()?.ok_or_else(|| {
                ConfigError::at_key(
                    "debiaser.scale",
                    format!("`{}` has no learned logit scale; use `scale: cosine`", backbone.kind()),
                )
            })?,
        };
        Ok(Box::new(ZeroShotPredictor {
            classes: Tensor::cat(&class_embeds, 0)?,
            scale,
        }))
    }
}

/// Rows scaled to unit L2 norm.
fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// Scores images by their similarity to the class embeddings.
struct ZeroShotPredictor {
    /// `[2, D]` unit class embeddings (negative, positive).
    classes: Tensor,
    /// Multiplier of the cosines.
    scale: f64,
}

impl Predictor for ZeroShotPredictor {
    fn predict(&self, data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>> {
        let features = data.features(split)?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        let cosines = l2_normalize(&features)?
            .matmul(&self.classes.t()?)?
            .to_dtype(DType::F64)?;
        let margin = (cosines.narrow(1, 1, 1)? - cosines.narrow(1, 0, 1)?)?.affine(self.scale, 0.0)?;
        let probs = candle_nn::ops::sigmoid(&margin)?.flatten_all()?.to_vec1::<f64>()?;
        Ok(probs)
    }
}
