//! The `clip` [`Backbone`] plugin: a Hugging Face `CLIPModel` (Hub repo or local folder) whose
//! features are the projected image embeddings, with the text tower, its tokenizer and the
//! learned temperature for zero-shot classification. The weights under `trainable` prefixes
//! (e.g. FairCLIP's `[vision_model, visual_projection, text_model.encoder]`) are
//! [`Backbone::trainable_weights`] for fine-tuning; the others stay frozen.

use candle_core::{DType, Device, Tensor, Var};
use fairlab_framework::config::PluginSpec;
use fairlab_framework::preprocess::Preprocessing;
use fairlab_framework::{Backbone, ConfigError};

use super::{ClipConfig, ClipModel};
use crate::hub_checkpoint::HubCheckpoint;
use crate::text_tokenizer::TextTokenizer;

/// The plugin name.
pub const KIND: &str = "clip";

/// A loaded CLIP with its tokenizer and image preprocessing.
#[derive(Debug, Clone)]
pub struct ClipBackbone {
    model: ClipModel,
    tokenizer: TextTokenizer,
    checkpoint: HubCheckpoint,
    /// The weights under `backbone.trainable`, as vars the model computes with.
    trainable: Vec<(String, Var)>,
}

impl ClipBackbone {
    /// Build from a YAML section (`model`, `revision`, `device`, `dtype`, `trainable`); errors
    /// name their key.
    pub fn from_spec(spec: &PluginSpec) -> anyhow::Result<Self> {
        let checkpoint = HubCheckpoint::from_spec(spec, KIND)?;
        Self::load(checkpoint).map_err(|e| ConfigError::attach_key(e, format!("{}.model", spec.path)))
    }

    /// Build the model, its tokenizer and its preprocessing from a resolved checkpoint. An
    /// unsupported config, a missing tensor, a shape mismatch, or a preprocessing whose output size
    /// differs from the vision tower's `image_size` is an error naming the file and the key or
    /// tensor.
    pub fn load(checkpoint: HubCheckpoint) -> anyhow::Result<Self> {
        let config = ClipConfig::from_file(&checkpoint.config)
            .map_err(|e| ConfigError::new(format!("{} ({}): {e:#}", checkpoint.files, checkpoint.config.display())))?;
        checkpoint.ensure_input_size(config.vision_config.image_size)?;
        let weights = checkpoint.load_weights()?;
        let model = ClipModel::new(weights.builder, &config).map_err(|e| {
            anyhow::anyhow!(
                "{}: the weights do not match its CLIP config.json: {e}",
                checkpoint.files
            )
        })?;
        let text = &config.text_config;
        let tokenizer = checkpoint.tokenizer(text.max_position_embeddings, text.eos_token_id)?;
        tracing::info!(model = %checkpoint.files, fingerprint = %checkpoint.fingerprint, "loaded {KIND}");
        Ok(Self {
            model,
            tokenizer,
            checkpoint,
            trainable: weights.trainable,
        })
    }

    /// The network.
    pub fn model(&self) -> &ClipModel {
        &self.model
    }

    /// The tokenizer the text tower reads.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }
}

impl Backbone for ClipBackbone {
    fn kind(&self) -> &str {
        KIND
    }

    fn preprocessing(&self) -> &Preprocessing {
        &self.checkpoint.preprocessing
    }

    fn feature_dim(&self) -> usize {
        self.model.config().projection_dim
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

    fn has_text_encoder(&self) -> bool {
        true
    }

    fn encode_texts(&self, texts: &[String]) -> anyhow::Result<Option<Tensor>> {
        let tokens = self.tokenizer.encode(texts, self.device())?;
        Ok(Some(
            self.model
                .text_features(&tokens.input_ids, Some(&tokens.attention_mask))?,
        ))
    }

    fn logit_scale(&self) -> anyhow::Result<Option<f64>> {
        let log_scale = self
            .model
            .logit_scale()
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        Ok(log_scale.first().map(|s| s.exp()))
    }
}
