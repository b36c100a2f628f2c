//! The `Backbone` plugin kind: a (usually frozen, pretrained) image encoder, optionally with a text
//! encoder, that turns preprocessed pixels into feature vectors.

use candle_core::{DType, Device, Tensor, Var};

use crate::preprocess::Preprocessing;

/// An image (and optionally text) encoder.
///
/// Inputs are *normalised* pixel values `[B, 3, H, W]` produced by [`Backbone::preprocessing`]
/// (DNE adds its noise before normalisation, so the two steps are separate). Outputs are features
/// `[B, D]` with `D = feature_dim()`. Forward passes are differentiable with respect to the
/// input (white-box DNE backpropagates through a frozen backbone into the input noise) and with
/// respect to [`Backbone::trainable_vars`] when a backbone exposes them (FairCLIP fine-tunes the
/// vision tower).
pub trait Backbone: Send + Sync {
    /// The plugin kind, e.g. `efficientnet-lite0`.
    fn kind(&self) -> &str;

    /// How raw images must be turned into the input of [`Backbone::encode_images`].
    fn preprocessing(&self) -> &Preprocessing;

    /// Length of one feature vector.
    fn feature_dim(&self) -> usize;

    /// Device the weights live on.
    fn device(&self) -> &Device;

    /// Floating-point type of the weights and the features.
    fn dtype(&self) -> DType;

    /// A stable identity of architecture + weights (e.g. `efficientnet-lite0@sha256:<weights>`),
    /// part of the feature-cache key.
    fn fingerprint(&self) -> String;

    /// Encode normalised pixel values `[B, 3, H, W]` into features `[B, D]`.
    fn encode_images(&self, pixel_values: &Tensor) -> anyhow::Result<Tensor>;

    /// Whether [`Backbone::encode_texts`] embeds texts (CLIP) or returns `None` (image-only
    /// backbones).
    fn has_text_encoder(&self) -> bool {
        false
    }

    /// Encode texts into features `[N, D]` in the space of the image features, for backbones with a
    /// text tower (CLIP). `None` when the backbone has no text encoder.
    fn encode_texts(&self, _texts: &[String]) -> anyhow::Result<Option<Tensor>> {
        Ok(None)
    }

    /// The multiplier of image-text cosine similarities in zero-shot logits (CLIP's
    /// `exp(logit_scale)`), for backbones with a text encoder.
    fn logit_scale(&self) -> anyhow::Result<Option<f64>> {
        Ok(None)
    }

    /// Parameters that a fine-tuning debiaser may train, with their names in the checkpoint's own
    /// naming (so that they can be saved as a partial checkpoint). Empty for frozen backbones.
    fn trainable_weights(&self) -> Vec<(String, Var)> {
        Vec::new()
    }

    /// The vars of [`Backbone::trainable_weights`], for an optimiser.
    fn trainable_vars(&self) -> Vec<Var> {
        self.trainable_weights().into_iter().map(|(_, var)| var).collect()
    }
}
