//! BLIP's vision tower (`BlipVisionModel`, tensors under `vision_model`).

use candle_core::{IndexOp, Module, Result, Tensor, D};
use candle_nn::{Linear, VarBuilder};

use super::BlipVisionConfig;
use crate::transformer::attention::{merge_heads, scaled_dot_product_attention, split_heads};
use crate::transformer::{Encoder, EncoderConfig, LayerNorm, PatchEmbeddings, PooledOutputs, SelfAttention};

/// `BlipAttention`: multi-head self-attention with one fused, biased `qkv` projection (queries,
/// keys and values in that order along the output) and an output `projection`.
#[derive(Debug, Clone)]
struct BlipAttention {
    qkv: Linear,
    projection: Linear,
    num_heads: usize,
}

impl BlipAttention {
    fn new(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        let size = cfg.hidden_size;
        Ok(Self {
            qkv: candle_nn::linear(size, 3 * size, vb.pp("qkv"))?,
            projection: candle_nn::linear(size, size, vb.pp("projection"))?,
            num_heads: cfg.num_attention_heads,
        })
    }
}

impl SelfAttention for BlipAttention {
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let qkv = self.qkv.forward(xs)?.chunk(3, D::Minus1)?;
        let heads = |index: usize| split_heads(&qkv[index], self.num_heads);
        let attended = scaled_dot_product_attention(&heads(0)?, &heads(1)?, &heads(2)?, mask)?;
        self.projection.forward(&merge_heads(&attended)?)
    }
}

/// Patch embeddings (convolution with bias, `class_embedding [1, 1, D]`,
/// `position_embedding [1, 1 + patches, D]`), the encoder and `post_layernorm`.
#[derive(Debug, Clone)]
pub(crate) struct BlipVisionModel {
    embeddings: PatchEmbeddings,
    encoder: Encoder<BlipAttention>,
    post_layernorm: LayerNorm,
}

impl BlipVisionModel {
    /// Load from `vb` (the `vision_model` prefix).
    pub(crate) fn new(vb: VarBuilder, cfg: &BlipVisionConfig) -> Result<Self> {
        let hidden = cfg.hidden_size;
        let grid = cfg.image_size / cfg.patch_size;
        let num_positions = grid * grid + 1;
        let vb_embeddings = vb.pp("embeddings");
        let patch_weight = vb_embeddings.get(
            (hidden, cfg.num_channels, cfg.patch_size, cfg.patch_size),
            "patch_embedding.weight",
        )?;
        let patch_bias = vb_embeddings.get(hidden, "patch_embedding.bias")?;
        let class_embedding = vb_embeddings.get((1, 1, hidden), "class_embedding")?.reshape(hidden)?;
        let position_embedding = vb_embeddings
            .get((1, num_positions, hidden), "position_embedding")?
            .reshape((num_positions, hidden))?;
        let embeddings = PatchEmbeddings::new(
            &patch_weight,
            Some(patch_bias),
            class_embedding,
            position_embedding,
            cfg.image_size,
            "vision_config",
        )?;
        let encoder_cfg = cfg.encoder_config();
        Ok(Self {
            embeddings,
            encoder: Encoder::new(vb.pp("encoder"), &encoder_cfg, |vb| {
                BlipAttention::new(vb, &encoder_cfg)
            })?,
            post_layernorm: LayerNorm::new(vb.pp("post_layernorm"), hidden, cfg.layer_norm_eps)?,
        })
    }

    /// `last_hidden_state`: the encoder output WITH `post_layernorm`, `[B, 1 + patches, D]`;
    /// `pooler_output`: `post_layernorm` applied AGAIN to its class-token row, `[B, D]` (as
    /// transformers' `BlipVisionModel` does).
    pub(crate) fn forward(&self, pixel_values: &Tensor) -> Result<PooledOutputs> {
        let hidden = self.encoder.forward(&self.embeddings.forward(pixel_values)?, None)?;
        let last_hidden_state = hidden.apply(&self.post_layernorm)?;
        let pooler_output = self.post_layernorm.forward(&last_hidden_state.i((.., 0))?)?;
        Ok(PooledOutputs {
            last_hidden_state,
            pooler_output,
        })
    }
}
