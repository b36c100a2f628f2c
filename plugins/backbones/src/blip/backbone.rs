//! The `blip` [`Backbone`] plugin: a Hugging Face `BlipForConditionalGeneration` (Hub repo or local
//! folder) whose features are the vision model's pooled output (what linear probing uses), with
//! the caption decoder's logits for a prompt.

use candle_core::{DType, Device, Tensor, Var};
use fairlab_framework::config::PluginSpec;
use fairlab_framework::preprocess::Preprocessing;
use fairlab_framework::{Backbone, ConfigError};

use super::{BlipConfig, BlipForConditionalGeneration};
use crate::hub_checkpoint::HubCheckpoint;
use crate::text_tokenizer::TextTokenizer;

/// The plugin name.
pub const KIND: &str = "blip";

/// A loaded BLIP captioning model with its tokenizer and image preprocessing.
#[derive(Debug, Clone)]
pub struct BlipBackbone {
    model: BlipForConditionalGeneration,
    tokenizer: TextTokenizer,
    checkpoint: HubCheckpoint,
    /// The weights under `backbone.trainable`, as vars the model computes with.
    trainable: Vec<(String, Var)>,
}

impl BlipBackbone {
    /// Build from a YAML section (`model`, `revision`, `device`, `dtype`, `trainable`); errors
    /// name their key.
    pub fn from_spec(spec: &PluginSpec) -> anyhow::Result<Self> {
        let checkpoint = HubCheckpoint::from_spec(spec, KIND)?;
        Self::load(checkpoint).map_err(|e| ConfigError::attach_key(e, format!("{}.model", spec.path)))
    }

    /// Build the model, its tokenizer and its preprocessing from a resolved checkpoint (errors as
    /// for [`crate::clip::ClipBackbone::load`]).
    pub fn load(checkpoint: HubCheckpoint) -> anyhow::Result<Self> {
        let config = BlipConfig::from_file(&checkpoint.config)
            .map_err(|e| ConfigError::new(format!("{} ({}): {e:#}", checkpoint.files, checkpoint.config.display())))?;
        checkpoint.ensure_input_size(config.vision_config.image_size)?;
        let weights = checkpoint.load_weights()?;
        let model = BlipForConditionalGeneration::new(weights.builder, &config).map_err(|e| {
            anyhow::anyhow!(
                "{}: the weights do not match its BLIP config.json: {e}",
                checkpoint.files
            )
        })?;
        let text = &config.text_config;
        let tokenizer = checkpoint.tokenizer(text.max_position_embeddings, text.pad_token_id.unwrap_or(0))?;
        tracing::info!(model = %checkpoint.files, fingerprint = %checkpoint.fingerprint, "loaded {KIND}");
        Ok(Self {
            model,
            tokenizer,
            checkpoint,
            trainable: weights.trainable,
        })
    }

    /// The network.
    pub fn model(&self) -> &BlipForConditionalGeneration {
        &self.model
    }

    /// The decoder input for a caption `prompt`, built as transformers'
    /// `BlipForConditionalGeneration.generate` does: the tokenized prompt (`[CLS] ... [SEP]`) with its
    /// first token replaced by `bos_token_id` and the final separator dropped. `[1, T]` u32.
    pub fn caption_input_ids(&self, prompt: &str) -> anyhow::Result<Tensor> {
        let text = &self.model.config().text_config;
        let bos = text.bos_token_id.ok_or_else(|| {
            ConfigError::new(format!(
                "{}: text_config.bos_token_id is not set",
                self.checkpoint.files
            ))
        })?;
        let tokens = self.tokenizer.encode(&[prompt.to_string()], &Device::Cpu)?;
        let mut ids = tokens.input_ids.squeeze(0)?.to_vec1::<u32>()?;
        if ids.len() > 1 && text.sep_token_id.is_some_and(|sep| ids.last() == Some(&sep)) {
            ids.pop();
        }
        ids[0] = bos;
        Ok(Tensor::new(ids.as_slice(), self.device())?.unsqueeze(0)?)
    }

    /// Teacher-forced caption logits `[B, T, vocab]` of `prompt` for normalised `pixel_values`
    /// `[B, 3, H, W]`: the decoder reads [`BlipBackbone::caption_input_ids`] and cross-attends to
    /// every image token.
    pub fn caption_logits(&self, pixel_values: &Tensor, prompt: &str) -> anyhow::Result<Tensor> {
        let x = pixel_values.to_device(self.device())?.to_dtype(self.dtype())?;
        let image_tokens = self.model.vision_outputs(&x)?.last_hidden_state;
        let ids = self.caption_input_ids(prompt)?.repeat((x.dim(0)?, 1))?;
        Ok(self.model.text_logits(&ids, &image_tokens)?)
    }
}

impl Backbone for BlipBackbone {
    fn kind(&self) -> &str {
        KIND
    }

    fn preprocessing(&self) -> &Preprocessing {
        &self.checkpoint.preprocessing
    }

    fn feature_dim(&self) -> usize {
        self.model.config().vision_config.hidden_size
    }

    fn device(&self) -> &Device {
        &self.checkpoint.device
    }

    fn dtype(&self) -> DType {
        self.checkpoint.dtype
    }

    fn fingerprint(&self) -> String {
        self.checkpoint.fingerprint.clone()
    }

    fn encode_images(&self, pixel_values: &Tensor) -> anyhow::Result<Tensor> {
        let x = pixel_values.to_device(self.device())?.to_dtype(self.dtype())?;
        Ok(self.model.image_features(&x)?)
    }

    fn trainable_weights(&self) -> Vec<(String, Var)> {
        self.trainable.clone()
    }
}
