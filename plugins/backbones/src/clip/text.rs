//! CLIP's text tower (`CLIPTextTransformer`, tensors under `text_model`) and its pooling rule.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::attention::{clip_encoder, ClipAttention};
use super::ClipTextConfig;
use crate::transformer::mask::causal_mask;
use crate::transformer::{Encoder, LayerNorm, PooledOutputs};

/// The `eos_token_id` that selects transformers' legacy pooling rule (it was the default before
/// transformers PR #24773, and the openai/clip-* configs still carry it).
const LEGACY_EOS_TOKEN_ID: u32 = 2;

/// The position of each row of `input_ids` (`[B, T]`, any integer dtype) whose final hidden state
/// is the pooled output, by transformers' rule: when `eos_token_id` is 2 (legacy configs),
/// `argmax(input_ids)` (the end-of-text token has the highest id in the original vocabulary);
/// otherwise the FIRST position holding `eos_token_id` (padding may repeat it).
///
/// A row without `eos_token_id` is an error (transformers would silently take position 0).
pub fn pooling_positions(input_ids: &Tensor, eos_token_id: u32) -> Result<Vec<usize>> {
    let rows = input_ids.to_dtype(DType::U32)?.to_vec2::<u32>()?;
    rows.iter()
        .enumerate()
        .map(|(row, ids)| {
            if eos_token_id == LEGACY_EOS_TOKEN_ID {
                // The first maximum, as torch.argmax.
                let max = ids.iter().copied().max().unwrap_or(0);
                Ok(ids.iter().position(|&id| id == max).unwrap_or(0))
            } else {
                ids.iter().position(|&id| id == eos_token_id).ok_or_else(|| {
                    candle_core::Error::Msg(format!(
                        "input_ids row {row} holds no end-of-text token (text_config.eos_token_id = {eos_token_id})"
                    ))
                })
            }
        })
        .collect()
}

/// Token and position embeddings, the causal encoder and `final_layer_norm`.
#[derive(Debug, Clone)]
pub(crate) struct ClipTextTransformer {
    token_embedding: Embedding,
    position_embedding: Embedding,
    encoder: Encoder<ClipAttention>,
    final_layer_norm: LayerNorm,
    max_position_embeddings: usize,
    eos_token_id: u32,
}

impl ClipTextTransformer {
    /// Load from `vb` (the `text_model` prefix).
    pub(crate) fn new(vb: VarBuilder, cfg: &ClipTextConfig) -> Result<Self> {
        let hidden = cfg.hidden_size;
        let vb_embeddings = vb.pp("embeddings");
        Ok(Self {
            token_embedding: candle_nn::embedding(cfg.vocab_size, hidden, vb_embeddings.pp("token_embedding"))?,
            position_embedding: candle_nn::embedding(
                cfg.max_position_embeddings,
                hidden,
                vb_embeddings.pp("position_embedding"),
            )?,
            encoder: clip_encoder(vb.pp("encoder"), &cfg.encoder_config())?,
            final_layer_norm: LayerNorm::new(vb.pp("final_layer_norm"), hidden, cfg.layer_norm_eps)?,
            max_position_embeddings: cfg.max_position_embeddings,
            eos_token_id: cfg.eos_token_id,
        })
    }

    /// `input_ids: [B, T]` (integer), `attention_mask: [B, T]` (1 = token, 0 = padding).
    /// Attention is always causal; the padding mask, when given, is added to it. Position ids are
    /// `0..T`. `last_hidden_state`: after `final_layer_norm`, `[B, T, D]`; `pooler_output`: its
    /// row at [`pooling_positions`], `[B, D]`.
    pub(crate) fn forward(&self, input_ids: &Tensor, attention_mask: Option<&Tensor>) -> Result<PooledOutputs> {
        let (batch, seq_len) = input_ids.dims2()?;
        if seq_len > self.max_position_embeddings {
            candle_core::bail!(
                "input_ids have {seq_len} positions but text_config.max_position_embeddings is {}",
                self.max_position_embeddings
            );
        }
        let device = input_ids.device();
        let input_ids = input_ids.to_dtype(DType::U32)?;
        let positions = Tensor::arange(0u32, seq_len as u32, device)?;
        let embeddings = self
            .token_embedding
            .forward(&input_ids)?
            .broadcast_add(&self.position_embedding.forward(&positions)?)?;
        let mask = causal_mask(seq_len, attention_mask, device)?;
        let last_hidden_state = self
            .encoder
            .forward(&embeddings, Some(&mask))?
            .apply(&self.final_layer_norm)?;
        let rows: Vec<u32> = pooling_positions(&input_ids, self.eos_token_id)?
            .into_iter()
            .enumerate()
            .map(|(row, position)| (row * seq_len + position) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, batch, device)?;
        let pooler_output = last_hidden_state.flatten_to(1)?.index_select(&rows, 0)?;
        Ok(PooledOutputs {
            last_hidden_state,
            pooler_output,
        })
    }
}
