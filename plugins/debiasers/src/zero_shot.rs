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
//!
//! The classifier itself, [`ZeroShotClassifier`], also evaluates the model that `fairclip`'s
//! `target: clip` fine-tunes, on image features recomputed through it.

use candle_core::{DType, Device, Tensor, D};
use fairlab_framework::debiaser::{DataAccess, FitContext, Predictor};
use fairlab_framework::{Backbone, ConfigError, Debiaser, Split};
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

impl ClassPrompts {
    /// A [`ConfigError`] keyed `<key>.negative` or `<key>.positive` (`key`: the setting, e.g.
    /// `debiaser.prompts`) when a class has no prompt or an empty one.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        for (name, prompts) in [("negative", &self.negative), ("positive", &self.positive)] {
            if prompts.is_empty() || prompts.iter().any(|p| p.trim().is_empty()) {
                return Err(ConfigError::at_key(
                    format!("{key}.{name}"),
                    "list at least one non-empty prompt",
                ));
            }
        }
        Ok(())
    }
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
        cfg.prompts.validate("debiaser.prompts")?;
        Ok(Self { cfg })
    }
}

impl Debiaser for ZeroShot {
    fn kind(&self) -> &str {
        KIND
    }

    fn fit(&mut self, ctx: &mut FitContext<'_>) -> anyhow::Result<Box<dyn Predictor>> {
        let backbone = ctx.data.backbone();
        require_text_encoder(backbone, "debiaser.kind", &format!("`{KIND}`"))?;
        Ok(Box::new(ZeroShotPredictor {
            classifier: ZeroShotClassifier::new(backbone, &self.cfg.prompts, self.cfg.scale)?,
        }))
    }
}

/// A [`ConfigError`] keyed `key` unless `backbone` has a text encoder: `method` (e.g.
/// `` `zero-shot` ``) needs one.
pub fn require_text_encoder(backbone: &dyn Backbone, key: &str, method: &str) -> Result<(), ConfigError> {
    if backbone.has_text_encoder() {
        return Ok(());
    }
    Err(ConfigError::at_key(
        key,
        format!(
            "{method} needs a backbone with a text encoder (e.g. clip); `{}` has none",
            backbone.kind()
        ),
    ))
}

/// Rows scaled to unit L2 norm.
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    x.broadcast_div(&x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// Scores image features by their similarity to the prompts of the two classes: the class
/// embeddings are computed once, from the backbone's text tower as it is when the classifier is
/// built (a fine-tuned tower gives other embeddings), and detached.
pub struct ZeroShotClassifier {
    /// `[2, D]` unit class embeddings (negative, positive), f32 on the CPU.
    classes: Tensor,
    /// Multiplier of the cosines.
    scale: f64,
}

impl ZeroShotClassifier {
    /// Embed `prompts` with `backbone`'s text tower (each class's prompts averaged and
    /// normalised again) and resolve `scale`. A backbone without a text encoder is an error (see
    /// [`require_text_encoder`] for a keyed one); `scale: logit-scale` on a backbone without a
    /// learned scale is a [`ConfigError`] keyed `debiaser.scale`.
    pub fn new(backbone: &dyn Backbone, prompts: &ClassPrompts, scale: LogitScale) -> anyhow::Result<Self> {
        let mut class_embeds = Vec::new();
        for prompts in [&prompts.negative, &prompts.positive] {
            let embeds = backbone
                .encode_texts(prompts)?
                .ok_or_else(|| anyhow::anyhow!("backbone `{}` has no text encoder", backbone.kind()))?;
            let embeds = embeds.detach().to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
            class_embeds.push(l2_normalize(&l2_normalize(&embeds)?.mean_keepdim(0)?)?);
        }
        let scale = match scale {
            LogitScale::Cosine => 1.0,
            LogitScale::LogitScale => backbone.logit_scale()?.ok_or_else(|| {
                ConfigError::at_key(
                    "debiaser.scale",
                    format!("`{}` has no learned logit scale; use `scale: cosine`", backbone.kind()),
                )
            })?,
        };
        Ok(Self {
            classes: Tensor::cat(&class_embeds, 0)?,
            scale,
        })
    }

    /// P(class 1) of every row of image `features` `[N, D]`:
    /// `sigmoid(scale * (cos_pos - cos_neg))`.
    pub fn scores(&self, features: &Tensor) -> anyhow::Result<Vec<f64>> {
        let features = features.detach().to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        let cosines = l2_normalize(&features)?
            .matmul(&self.classes.t()?)?
            .to_dtype(DType::F64)?;
        let margin = (cosines.narrow(1, 1, 1)? - cosines.narrow(1, 0, 1)?)?.affine(self.scale, 0.0)?;
        Ok(candle_nn::ops::sigmoid(&margin)?.flatten_all()?.to_vec1::<f64>()?)
    }
}

/// Scores a split's cached features with the classifier.
struct ZeroShotPredictor {
    classifier: ZeroShotClassifier,
}

impl Predictor for ZeroShotPredictor {
    fn predict(&self, data: &dyn DataAccess, split: Split) -> anyhow::Result<Vec<f64>> {
        self.classifier.scores(&data.features(split)?)
    }
}
