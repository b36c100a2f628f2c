//! `BlipConfig` as transformers writes it to `config.json` (the parts captioning needs).

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::transformer::config::{ensure_encoder, ensure_patches, ensure_positive, from_json, read_json_object};
use crate::transformer::{Activation, EncoderConfig};

/// The text decoder (`text_config`). Absent keys take transformers' `BlipTextConfig` defaults
/// (BLIP-base); keys the forward pass does not need are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BlipTextConfig {
    /// Number of token ids (30524).
    pub vocab_size: usize,
    /// Width of the residual stream (768).
    pub hidden_size: usize,
    /// Width of the image tokens the cross-attention reads. transformers' `BlipConfig` overwrites
    /// it with `vision_config.hidden_size`, and so does [`BlipConfig::from_json`].
    pub encoder_hidden_size: usize,
    /// Width of the feed-forward hidden layer (3072).
    pub intermediate_size: usize,
    /// Number of layers (12).
    pub num_hidden_layers: usize,
    /// Number of attention heads (8).
    pub num_attention_heads: usize,
    /// Longest input sequence (512).
    pub max_position_embeddings: usize,
    /// Activation of the feed-forward layers and the LM head's transform (`gelu`).
    pub hidden_act: Activation,
    /// Epsilon of every layer norm (1e-12).
    pub layer_norm_eps: f64,
    /// Whether layers have cross-attention (true); only `true` is supported.
    pub is_decoder: bool,
    /// The id that starts a caption (`[DEC]`, 30522); not used by the forward pass.
    pub bos_token_id: Option<u32>,
    /// The id that ends a caption (2); not used by the forward pass.
    pub eos_token_id: Option<u32>,
    /// The separator id (`[SEP]`, 102); not used by the forward pass.
    pub sep_token_id: Option<u32>,
    /// The padding id (0); not used by the forward pass.
    pub pad_token_id: Option<u32>,
    /// Whether the LM head shares the word embeddings; when absent, the top-level
    /// [`BlipConfig::tie_word_embeddings`] decides.
    pub tie_word_embeddings: Option<bool>,
}

impl Default for BlipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30524,
            hidden_size: 768,
            encoder_hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 512,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-12,
            is_decoder: true,
            bos_token_id: Some(30522),
            eos_token_id: Some(2),
            sep_token_id: Some(102),
            pad_token_id: Some(0),
            tie_word_embeddings: None,
        }
    }
}

/// The vision tower (`vision_config`). Absent keys take transformers' `BlipVisionConfig`
/// defaults (ViT-B/16 at 384 pixels); keys the forward pass does not need are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BlipVisionConfig {
    /// Width of the residual stream (768).
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer (3072).
    pub intermediate_size: usize,
    /// Number of encoder layers (12).
    pub num_hidden_layers: usize,
    /// Number of attention heads (12).
    pub num_attention_heads: usize,
    /// Input channels (3).
    pub num_channels: usize,
    /// Input height and width in pixels (384).
    pub image_size: usize,
    /// Patch height and width in pixels (16).
    pub patch_size: usize,
    /// Activation of the MLPs (`gelu`).
    pub hidden_act: Activation,
    /// Epsilon of every layer norm (1e-5).
    pub layer_norm_eps: f64,
}

impl Default for BlipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 384,
            patch_size: 16,
            hidden_act: Activation::Gelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl BlipVisionConfig {
    /// The encoder settings of the vision tower.
    pub fn encoder_config(&self) -> EncoderConfig {
        EncoderConfig {
            hidden_size: self.hidden_size,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            activation: self.hidden_act,
            layer_norm_eps: self.layer_norm_eps,
        }
    }
}

/// A `BlipForConditionalGeneration` config. Absent keys take transformers' defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct BlipConfig {
    /// The text decoder.
    pub text_config: BlipTextConfig,
    /// The vision tower.
    pub vision_config: BlipVisionConfig,
    /// Whether the LM head shares the word embeddings when `text_config` does not say (true).
    pub tie_word_embeddings: bool,
}

impl Default for BlipConfig {
    fn default() -> Self {
        Self {
            text_config: BlipTextConfig::default(),
            vision_config: BlipVisionConfig::default(),
            tie_word_embeddings: true,
        }
    }
}

impl BlipConfig {
    /// Read and check a `config.json`. As in transformers, the legacy `text_config_dict` /
    /// `vision_config_dict` keys replace `text_config` / `vision_config`, and
    /// `text_config.encoder_hidden_size` is set to `vision_config.hidden_size`. Errors name the
    /// offending key, e.g. `text_config.hidden_act`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        Self::from_json(Value::Object(read_json_object(path)?))
            .with_context(|| format!("{} is not a supported BLIP config", path.display()))
    }

    /// [`BlipConfig::from_file`] on an already parsed JSON value.
    pub fn from_json(value: Value) -> anyhow::Result<Self> {
        let mut value = value;
        if let Value::Object(map) = &mut value {
            for tower in ["text_config", "vision_config"] {
                if let Some(legacy @ Value::Object(_)) = map.remove(&format!("{tower}_dict")) {
                    map.insert(tower.to_string(), legacy);
                }
            }
        }
        let mut config: Self = from_json(value)?;
        config.text_config.encoder_hidden_size = config.vision_config.hidden_size;
        config.validate()?;
        Ok(config)
    }

    /// Whether the LM head uses the word embeddings when the checkpoint has no
    /// `text_decoder.cls.predictions.decoder.weight`: `text_config.tie_word_embeddings`, else the
    /// top-level `tie_word_embeddings`.
    pub fn ties_word_embeddings(&self) -> bool {
        self.text_config.tie_word_embeddings.unwrap_or(self.tie_word_embeddings)
    }

    /// Reject values the model cannot run with, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let vision = &self.vision_config;
        ensure_encoder("vision_config", &vision.encoder_config())?;
        ensure_patches(
            "vision_config",
            vision.num_channels,
            vision.image_size,
            vision.patch_size,
        )?;
        let text = &self.text_config;
        let text_encoder = EncoderConfig {
            hidden_size: text.hidden_size,
            num_attention_heads: text.num_attention_heads,
            intermediate_size: text.intermediate_size,
            num_hidden_layers: text.num_hidden_layers,
            activation: text.hidden_act,
            layer_norm_eps: text.layer_norm_eps,
        };
        ensure_encoder("text_config", &text_encoder)?;
        ensure_positive("text_config.vocab_size", text.vocab_size)?;
        ensure_positive("text_config.max_position_embeddings", text.max_position_embeddings)?;
        anyhow::ensure!(
            text.is_decoder,
            "text_config.is_decoder: false is not supported (the caption decoder needs cross-attention)"
        );
        Ok(())
    }
}
