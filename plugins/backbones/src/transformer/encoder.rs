//! The pre-norm transformer encoder shared by CLIP's two towers and BLIP's vision tower:
//! `layers.N.{layer_norm1, self_attn, layer_norm2, mlp}`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::{Activation, LayerNorm, Mlp};

/// A self-attention block: the one part of an encoder layer whose tensor names differ between
/// model families (CLIP's `q_proj`/`k_proj`/`v_proj`/`out_proj`, BLIP's fused `qkv`/`projection`).
pub trait SelfAttention {
    /// `[B, T, D]` to `[B, T, D]`; `mask` is an additive f32 mask broadcastable to
    /// `[B, heads, T, T]`.
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor>;
}

/// The sizes and settings of an [`Encoder`], taken from a tower's config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
    /// Width of the residual stream (`hidden_size`).
    pub hidden_size: usize,
    /// Number of attention heads (`num_attention_heads`), used by the attention blocks.
    pub num_attention_heads: usize,
    /// Width of the MLP's hidden layer (`intermediate_size`).
    pub intermediate_size: usize,
    /// Number of layers (`num_hidden_layers`).
    pub num_hidden_layers: usize,
    /// The MLP's activation (`hidden_act`).
    pub activation: Activation,
    /// Epsilon of every layer norm (`layer_norm_eps`).
    pub layer_norm_eps: f64,
}

/// One pre-norm layer: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.
#[derive(Debug, Clone)]
struct EncoderLayer<A> {
    self_attn: A,
    layer_norm1: LayerNorm,
    mlp: Mlp,
    layer_norm2: LayerNorm,
}

impl<A: SelfAttention> EncoderLayer<A> {
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let xs = (xs + self.self_attn.forward(&xs.apply(&self.layer_norm1)?, mask)?)?;
        &xs + xs.apply(&self.layer_norm2)?.apply(&self.mlp)?
    }
}

/// A stack of pre-norm layers under `layers.N`, generic over the attention block.
#[derive(Debug, Clone)]
pub struct Encoder<A> {
    layers: Vec<EncoderLayer<A>>,
}

impl<A: SelfAttention> Encoder<A> {
    /// Load `layers.0 ..` from `vb` (the `encoder` prefix); `attention` loads one layer's
    /// attention block from its `self_attn` prefix.
    pub fn new(vb: VarBuilder, cfg: &EncoderConfig, attention: impl Fn(VarBuilder) -> Result<A>) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = (0..cfg.num_hidden_layers)
            .map(|index| {
                let vb = vb.pp(index);
                Ok(EncoderLayer {
                    self_attn: attention(vb.pp("self_attn"))?,
                    layer_norm1: LayerNorm::new(vb.pp("layer_norm1"), cfg.hidden_size, cfg.layer_norm_eps)?,
                    mlp: Mlp::new(vb.pp("mlp"), cfg.hidden_size, cfg.intermediate_size, cfg.activation)?,
                    layer_norm2: LayerNorm::new(vb.pp("layer_norm2"), cfg.hidden_size, cfg.layer_norm_eps)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Run every layer on `[B, T, D]` with the same additive `mask`.
    pub fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let mut xs = xs.clone();
        for layer in &self.layers {
            xs = layer.forward(&xs, mask)?;
        }
        Ok(xs)
    }
}
