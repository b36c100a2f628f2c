//! `BlipForConditionalGeneration`: the vision tower and the caption decoder.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::text_decoder::BlipTextLmHeadModel;
use super::vision::BlipVisionModel;
use super::BlipConfig;
use crate::transformer::PooledOutputs;

/// BLIP for captioning with transformers' tensor names: `vision_model.*` and `text_decoder.*`.
///
/// Outputs have the dtype of the weights (the `VarBuilder`'s dtype); every forward pass is
/// differentiable with respect to `pixel_values`.
#[derive(Debug, Clone)]
pub struct BlipForConditionalGeneration {
    config: BlipConfig,
    vision_model: BlipVisionModel,
    text_decoder: BlipTextLmHeadModel,
}

impl BlipForConditionalGeneration {
    /// Load the model from `vb` (the checkpoint's root). A missing tensor or a shape mismatch is
    /// an error naming the tensor and the part; an invalid `cfg` is an error naming the key.
    pub fn new(vb: VarBuilder, cfg: &BlipConfig) -> Result<Self> {
        cfg.validate()
            .map_err(|err| candle_core::Error::Msg(format!("invalid BLIP config: {err}")))?;
        let vision_model = BlipVisionModel::new(vb.pp("vision_model"), &cfg.vision_config)
            .map_err(|err| err.context("cannot load the BLIP vision tower"))?;
        let text_decoder =
            BlipTextLmHeadModel::new(vb.pp("text_decoder"), &cfg.text_config, cfg.ties_word_embeddings())
                .map_err(|err| err.context("cannot load the BLIP text decoder"))?;
        Ok(Self {
            config: cfg.clone(),
            vision_model,
            text_decoder,
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &BlipConfig {
        &self.config
    }

    /// The vision tower on `pixel_values: [B, C, S, S]` (any float dtype).
    /// `last_hidden_state`: encoder output WITH `post_layernorm`, `[B, 1 + patches, D]` (the
    /// decoder's `encoder_hidden_states`); `pooler_output`: `post_layernorm` applied a second time
    /// to its class-token row, `[B, D]` (a transformers quirk, kept for identical numbers).
    pub fn vision_outputs(&self, pixel_values: &Tensor) -> Result<PooledOutputs> {
        self.vision_model.forward(pixel_values)
    }

    /// The pooled image features `[B, D]`: [`BlipForConditionalGeneration::vision_outputs`]'
    /// `pooler_output` (transformers' `image_embeds` / vision `pooler_output`).
    pub fn image_features(&self, pixel_values: &Tensor) -> Result<Tensor> {
        Ok(self.vision_outputs(pixel_values)?.pooler_output)
    }

    /// Teacher-forced caption logits `[B, T, vocab]` for `input_ids: [B, T]` (integer, starting
    /// with `bos_token_id`) and the image tokens `encoder_hidden_states: [B, N, D]` (the vision
    /// `last_hidden_state`): causal self-attention, cross-attention to every image token, no
    /// padding mask. Position `t` predicts token `t + 1`.
    pub fn text_logits(&self, input_ids: &Tensor, encoder_hidden_states: &Tensor) -> Result<Tensor> {
        self.text_decoder.forward(input_ids, encoder_hidden_states)
    }
}
