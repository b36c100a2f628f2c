//! CLIP's vision tower (`CLIPVisionTransformer`, tensors under `vision_model`).

use candle_core::{IndexOp, Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::attention::{clip_encoder, ClipAttention};
use super::ClipVisionConfig;
use crate::transformer::{Encoder, LayerNorm, PatchEmbeddings, PooledOutputs};

/// Patch embeddings (convolution without bias, `class_embedding [D]`,
/// `position_embedding.weight [1 + patches, D]`), `pre_layrnorm` (transformers' spelling), the encoder and `post_layernorm`.
#[derive(Debug, Clone)]
pub(crate) struct ClipVisionTransformer {
    embeddings: PatchEmbeddings,
    pre_layrnorm: LayerNorm,
    encoder: Encoder<ClipAttention>,
    post_layernorm: LayerNorm,
}

impl ClipVisionTransformer {
    /// Load from `vb` (the `vision_model` prefix).
    pub(crate) fn new(vb: VarBuilder, cfg: &ClipVisionConfig) -> Result<Self> {
        let hidden = cfg.hidden_size;
        let grid = cfg.image_size / cfg.patch_size;
        let vb_embeddings = vb.pp("embeddings");
        let patch_weight = vb_embeddings.get(
            (hidden, cfg.num_channels, cfg.patch_size, cfg.patch_size),
            "patch_embedding.weight",
        )?;
        let embeddings = PatchEmbeddings::new(
            &patch_weight,
            None,
            vb_embeddings.get(hidden, "class_embedding")?,
            vb_embeddings.get((grid * grid + 1, hidden), "position_embedding.weight")?,
            cfg.image_size,
            "vision_config",
        )?;
        let encoder_cfg = cfg.encoder_config();
        Ok(Self {
            embeddings,
            pre_layrnorm: LayerNorm::new(vb.pp("pre_layrnorm"), hidden, cfg.layer_norm_eps)?,
            encoder: clip_encoder(vb.pp("encoder"), &encoder_cfg)?,
            post_layernorm: LayerNorm::new(vb.pp("post_layernorm"), hidden, cfg.layer_norm_eps)?,
        })
    }

    /// `last_hidden_state`: the encoder output `[B, 1 + patches, D]` WITHOUT `post_layernorm`
    /// (transformers' convention); `pooler_output`: `post_layernorm` of the class token, `[B, D]`.
    pub(crate) fn forward(&self, pixel_values: &Tensor) -> Result<PooledOutputs> {
        let hidden = self.embeddings.forward(pixel_values)?.apply(&self.pre_layrnorm)?;
        let last_hidden_state = self.encoder.forward(&hidden, None)?;
        let pooler_output = self.post_layernorm.forward(&last_hidden_state.i((.., 0))?)?;
        Ok(PooledOutputs {
            last_hidden_state,
            pooler_output,
        })
    }
}
