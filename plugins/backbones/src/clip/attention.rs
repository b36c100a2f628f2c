//! CLIP's attention block (`q_proj`, `k_proj`, `v_proj`, `out_proj`) and the encoder built from
//! it, used by both towers.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::transformer::attention::{merge_heads, scaled_dot_product_attention, split_heads};
use crate::transformer::{Encoder, EncoderConfig, SelfAttention};

/// `CLIPAttention`: multi-head self-attention with separate, biased projections.
#[derive(Debug, Clone)]
pub(crate) struct ClipAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
}

impl ClipAttention {
    fn new(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Self> {
        let size = cfg.hidden_size;
        Ok(Self {
            q_proj: candle_nn::linear(size, size, vb.pp("q_proj"))?,
            k_proj: candle_nn::linear(size, size, vb.pp("k_proj"))?,
            v_proj: candle_nn::linear(size, size, vb.pp("v_proj"))?,
            out_proj: candle_nn::linear(size, size, vb.pp("out_proj"))?,
            num_heads: cfg.num_attention_heads,
        })
    }
}

impl SelfAttention for ClipAttention {
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let heads = |proj: &Linear| split_heads(&proj.forward(xs)?, self.num_heads);
        let attended = scaled_dot_product_attention(
            &heads(&self.q_proj)?,
            &heads(&self.k_proj)?,
            &heads(&self.v_proj)?,
            mask,
        )?;
        self.out_proj.forward(&merge_heads(&attended)?)
    }
}

/// `CLIPEncoder`: load `layers.N` of a tower from `vb` (its `encoder` prefix).
pub(crate) fn clip_encoder(vb: VarBuilder, cfg: &EncoderConfig) -> Result<Encoder<ClipAttention>> {
    Encoder::new(vb, cfg, |vb| ClipAttention::new(vb, cfg))
}
