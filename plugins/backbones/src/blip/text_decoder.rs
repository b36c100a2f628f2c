//! BLIP's caption decoder (`BlipTextLMHeadModel`, tensors under `text_decoder`): a post-norm
//! BERT with causal self-attention, cross-attention to the image tokens, and an LM head.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, Linear, VarBuilder};

use super::BlipTextConfig;
use crate::transformer::attention::{merge_heads, scaled_dot_product_attention, split_heads};
use crate::transformer::mask::causal_mask;
use crate::transformer::{Activation, LayerNorm};

/// BERT's `self`: `query`, `key` and `value` projections and multi-head attention. Keys and
/// values come from the attended sequence (the text itself, or the image tokens for
/// cross-attention, whose width is `key_size`).
#[derive(Debug, Clone)]
struct BertSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_heads: usize,
}

impl BertSelfAttention {
    fn new(vb: VarBuilder, cfg: &BlipTextConfig, key_size: usize) -> Result<Self> {
        let size = cfg.hidden_size;
        Ok(Self {
            query: candle_nn::linear(size, size, vb.pp("query"))?,
            key: candle_nn::linear(key_size, size, vb.pp("key"))?,
            value: candle_nn::linear(key_size, size, vb.pp("value"))?,
            num_heads: cfg.num_attention_heads,
        })
    }

    fn forward(&self, xs: &Tensor, attended: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let heads = |proj: &Linear, input: &Tensor| split_heads(&proj.forward(input)?, self.num_heads);
        let attended = scaled_dot_product_attention(
            &heads(&self.query, xs)?,
            &heads(&self.key, attended)?,
            &heads(&self.value, attended)?,
            mask,
        )?;
        merge_heads(&attended)
    }
}

/// BERT's post-norm residual output: `LayerNorm(dense(x) + residual)`.
#[derive(Debug, Clone)]
struct DenseAddNorm {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl DenseAddNorm {
    fn new(vb: VarBuilder, cfg: &BlipTextConfig, in_size: usize) -> Result<Self> {
        Ok(Self {
            dense: candle_nn::linear(in_size, cfg.hidden_size, vb.pp("dense"))?,
            layer_norm: LayerNorm::new(vb.pp("LayerNorm"), cfg.hidden_size, cfg.layer_norm_eps)?,
        })
    }

    fn forward(&self, xs: &Tensor, residual: &Tensor) -> Result<Tensor> {
        (self.dense.forward(xs)? + residual)?.apply(&self.layer_norm)
    }
}

/// BERT's `attention` / `crossattention`: `self` then `output`.
#[derive(Debug, Clone)]
struct BertAttention {
    attention: BertSelfAttention,
    output: DenseAddNorm,
}

impl BertAttention {
    fn new(vb: VarBuilder, cfg: &BlipTextConfig, key_size: usize) -> Result<Self> {
        Ok(Self {
            attention: BertSelfAttention::new(vb.pp("self"), cfg, key_size)?,
            output: DenseAddNorm::new(vb.pp("output"), cfg, cfg.hidden_size)?,
        })
    }

    fn forward(&self, xs: &Tensor, attended: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        self.output.forward(&self.attention.forward(xs, attended, mask)?, xs)
    }
}

/// One decoder layer: causal self-attention, cross-attention, feed-forward, each post-norm.
#[derive(Debug, Clone)]
struct BertLayer {
    attention: BertAttention,
    crossattention: BertAttention,
    intermediate: Linear,
    activation: Activation,
    output: DenseAddNorm,
}

impl BertLayer {
    fn new(vb: VarBuilder, cfg: &BlipTextConfig) -> Result<Self> {
        Ok(Self {
            attention: BertAttention::new(vb.pp("attention"), cfg, cfg.hidden_size)?,
            crossattention: BertAttention::new(vb.pp("crossattention"), cfg, cfg.encoder_hidden_size)?,
            intermediate: candle_nn::linear(cfg.hidden_size, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            activation: cfg.hidden_act,
            output: DenseAddNorm::new(vb.pp("output"), cfg, cfg.intermediate_size)?,
        })
    }

    fn forward(&self, xs: &Tensor, image_tokens: &Tensor, causal: &Tensor) -> Result<Tensor> {
        let xs = self.attention.forward(xs, xs, Some(causal))?;
        let xs = self.crossattention.forward(&xs, image_tokens, None)?;
        let hidden = xs.apply(&self.intermediate)?.apply(&self.activation)?;
        self.output.forward(&hidden, &xs)
    }
}

/// `BlipTextLMHeadModel`: `bert.embeddings`, `bert.encoder.layer.N` and `cls.predictions`.
#[derive(Debug, Clone)]
pub(crate) struct BlipTextLmHeadModel {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    embeddings_layer_norm: LayerNorm,
    layers: Vec<BertLayer>,
    transform_dense: Linear,
    activation: Activation,
    transform_layer_norm: LayerNorm,
    decoder: Linear,
    max_position_embeddings: usize,
}

impl BlipTextLmHeadModel {
    /// Load from `vb` (the `text_decoder` prefix). The LM head's weight is
    /// `cls.predictions.decoder.weight` when the checkpoint has it, otherwise the word embeddings
    /// when `tie_word_embeddings` (transformers does not save the tied tensor); its bias is
    /// `cls.predictions.bias`.
    pub(crate) fn new(vb: VarBuilder, cfg: &BlipTextConfig, tie_word_embeddings: bool) -> Result<Self> {
        let hidden = cfg.hidden_size;
        let vb_embeddings = vb.pp("bert.embeddings");
        let word_embeddings = candle_nn::embedding(cfg.vocab_size, hidden, vb_embeddings.pp("word_embeddings"))?;
        let vb_layers = vb.pp("bert.encoder.layer");
        let layers = (0..cfg.num_hidden_layers)
            .map(|index| BertLayer::new(vb_layers.pp(index), cfg))
            .collect::<Result<_>>()?;
        let vb_head = vb.pp("cls.predictions");
        let decoder_weight = if vb_head.contains_tensor("decoder.weight") || !tie_word_embeddings {
            vb_head.get((cfg.vocab_size, hidden), "decoder.weight")?
        } else {
            word_embeddings.embeddings().clone()
        };
        let decoder = Linear::new(decoder_weight, Some(vb_head.get(cfg.vocab_size, "bias")?));
        Ok(Self {
            position_embeddings: candle_nn::embedding(
                cfg.max_position_embeddings,
                hidden,
                vb_embeddings.pp("position_embeddings"),
            )?,
            embeddings_layer_norm: LayerNorm::new(vb_embeddings.pp("LayerNorm"), hidden, cfg.layer_norm_eps)?,
            word_embeddings,
            layers,
            transform_dense: candle_nn::linear(hidden, hidden, vb_head.pp("transform.dense"))?,
            activation: cfg.hidden_act,
            transform_layer_norm: LayerNorm::new(vb_head.pp("transform.LayerNorm"), hidden, cfg.layer_norm_eps)?,
            decoder,
            max_position_embeddings: cfg.max_position_embeddings,
        })
    }

    /// Teacher-forced logits `[B, T, vocab]` of `input_ids: [B, T]` (integer) given the image
    /// tokens `encoder_hidden_states: [B, N, encoder_hidden_size]`: causal self-attention
    /// (position ids `0..T`, no padding mask) and cross-attention to all `N` image tokens.
    pub(crate) fn forward(&self, input_ids: &Tensor, encoder_hidden_states: &Tensor) -> Result<Tensor> {
        let (batch, seq_len) = input_ids.dims2()?;
        let image_batch = encoder_hidden_states.dim(0)?;
        if image_batch != batch {
            candle_core::bail!("input_ids have {batch} rows but encoder_hidden_states have {image_batch}");
        }
        if seq_len > self.max_position_embeddings {
            candle_core::bail!(
                "input_ids have {seq_len} positions but text_config.max_position_embeddings is {}",
                self.max_position_embeddings
            );
        }
        let device = input_ids.device();
        let positions = Tensor::arange(0u32, seq_len as u32, device)?;
        let mut xs = self
            .word_embeddings
            .forward(&input_ids.to_dtype(DType::U32)?)?
            .broadcast_add(&self.position_embeddings.forward(&positions)?)?
            .apply(&self.embeddings_layer_norm)?;
        let image_tokens = encoder_hidden_states.to_dtype(xs.dtype())?;
        let causal = causal_mask(seq_len, None, device)?;
        for layer in &self.layers {
            xs = layer.forward(&xs, &image_tokens, &causal)?;
        }
        xs.apply(&self.transform_dense)?
            .apply(&self.activation)?
            .apply(&self.transform_layer_norm)?
            .apply(&self.decoder)
    }
}
