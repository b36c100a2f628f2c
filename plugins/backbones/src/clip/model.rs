//! `CLIPModel`: both towers, their projections and the learned temperature.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

use super::text::ClipTextTransformer;
use super::vision::ClipVisionTransformer;
use super::ClipConfig;
use crate::transformer::PooledOutputs;

/// Divide each row of `[N, D]` by its L2 norm (transformers' `x / x.norm(p=2, dim=-1)`).
pub fn l2_normalize(embeds: &Tensor) -> Result<Tensor> {
    embeds.broadcast_div(&embeds.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}

/// A CLIP model with transformers' tensor names: `vision_model.*`, `text_model.*`,
/// `visual_projection.weight`, `text_projection.weight` and `logit_scale`.
///
/// Outputs have the dtype of the weights (the `VarBuilder`'s dtype); every forward pass is
/// differentiable with respect to `pixel_values`.
#[derive(Debug, Clone)]
pub struct ClipModel {
    config: ClipConfig,
    vision_model: ClipVisionTransformer,
    text_model: ClipTextTransformer,
    visual_projection: Linear,
    text_projection: Linear,
    logit_scale: Tensor,
}

impl ClipModel {
    /// Load the model from `vb` (the checkpoint's root). A missing tensor or a shape mismatch is
    /// an error naming the tensor and the tower; an invalid `cfg` is an error naming the key.
    pub fn new(vb: VarBuilder, cfg: &ClipConfig) -> Result<Self> {
        cfg.validate()
            .map_err(|err| candle_core::Error::Msg(format!("invalid CLIP config: {err}")))?;
        let vision_model = ClipVisionTransformer::new(vb.pp("vision_model"), &cfg.vision_config)
            .map_err(|err| err.context("cannot load the CLIP vision tower"))?;
        let text_model = ClipTextTransformer::new(vb.pp("text_model"), &cfg.text_config)
            .map_err(|err| err.context("cannot load the CLIP text tower"))?;
        let heads = || -> Result<_> {
            let visual_projection = candle_nn::linear_no_bias(
                cfg.vision_config.hidden_size,
                cfg.projection_dim,
                vb.pp("visual_projection"),
            )?;
            let text_projection = candle_nn::linear_no_bias(
                cfg.text_config.hidden_size,
                cfg.projection_dim,
                vb.pp("text_projection"),
            )?;
            Ok((visual_projection, text_projection, vb.get((), "logit_scale")?))
        };
        let (visual_projection, text_projection, logit_scale) =
            heads().map_err(|err| err.context("cannot load the CLIP projections"))?;
        Ok(Self {
            config: cfg.clone(),
            vision_model,
            text_model,
            visual_projection,
            text_projection,
            logit_scale,
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The vision tower on `pixel_values: [B, C, S, S]` (any float dtype). `last_hidden_state`:
    /// encoder output `[B, 1 + patches, vision D]` WITHOUT `post_layernorm`; `pooler_output`:
    /// `post_layernorm` of the class token, `[B, vision D]`.
    pub fn vision_outputs(&self, pixel_values: &Tensor) -> Result<PooledOutputs> {
        self.vision_model.forward(pixel_values)
    }

    /// The text tower on `input_ids: [B, T]` (integer) with an optional padding
    /// `attention_mask: [B, T]` (1 = token). `last_hidden_state`: after `final_layer_norm`,
    /// `[B, T, text D]`; `pooler_output`: the end-of-text row (see
    /// [`super::pooling_positions`]), `[B, text D]`.
    pub fn text_outputs(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<PooledOutputs> {
        self.text_model.forward(input_ids, attention_mask)
    }

    /// Image embeddings `[B, projection_dim]`: `visual_projection` of the vision pooler output,
    /// NOT normalised (transformers' `get_image_features`).
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        self.visual_projection
            .forward(&self.vision_outputs(pixel_values)?.pooler_output)
    }

    /// Text embeddings `[B, projection_dim]`: `text_projection` of the text pooler output, NOT
    /// normalised (transformers' `get_text_features`).
    pub fn text_features(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        self.text_projection
            .forward(&self.text_outputs(input_ids, attention_mask)?.pooler_output)
    }

    /// The stored temperature parameter `logit_scale`, a scalar in log space (the logits are
    /// scaled by its exponential).
    pub fn logit_scale(&self) -> &Tensor {
        &self.logit_scale
    }

    /// `[images, texts]` logits: `exp(logit_scale)` times the cosine similarity of every image
    /// embedding `[N, projection_dim]` with every text embedding `[M, projection_dim]` (both as
    /// returned by [`ClipModel::image_features`] and [`ClipModel::text_features`]). Transpose for
    /// transformers' `logits_per_text`.
    pub fn logits_per_image(&self, image_embeds: &Tensor, text_embeds: &Tensor) -> Result<Tensor> {
        let cosine = l2_normalize(image_embeds)?.matmul(&l2_normalize(text_embeds)?.t()?)?;
        cosine.broadcast_mul(&self.logit_scale.exp()?.to_dtype(cosine.dtype())?)
    }
}
