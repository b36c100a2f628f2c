//! `CLIPConfig` as transformers writes it to `config.json`.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::transformer::config::{ensure_encoder, ensure_patches, ensure_positive, from_json, read_json_object};
use crate::transformer::{Activation, EncoderConfig};

/// The text tower (`text_config`). Absent keys take transformers' `CLIPTextConfig` defaults
/// (openai/clip-vit-base-patch32); keys the forward pass does not need are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipTextConfig {
    /// Number of token ids (49408).
    pub vocab_size: usize,
    /// Width of the residual stream (512).
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer (2048).
    pub intermediate_size: usize,
    /// Number of encoder layers (12).
    pub num_hidden_layers: usize,
    /// Number of attention heads (8).
    pub num_attention_heads: usize,
    /// Longest input sequence (77).
    pub max_position_embeddings: usize,
    /// Activation of the MLPs (`quick_gelu`).
    pub hidden_act: Activation,
    /// Epsilon of every layer norm (1e-5).
    pub layer_norm_eps: f64,
    /// The end-of-text id whose position gives the pooled output (49407). The value 2 selects
    /// transformers' legacy rule, `argmax(input_ids)`; see [`super::pooling_positions`].
    pub eos_token_id: u32,
}

impl Default for ClipTextConfig {
    fn default() -> Self {
        Self {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        }
    }
}

/// The vision tower (`vision_config`). Absent keys take transformers' `CLIPVisionConfig`
/// defaults (ViT-B/32 at 224 pixels); keys the forward pass does not need are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipVisionConfig {
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
    /// Input height and width in pixels (224).
    pub image_size: usize,
    /// Patch height and width in pixels (32).
    pub patch_size: usize,
    /// Activation of the MLPs (`quick_gelu`).
    pub hidden_act: Activation,
    /// Epsilon of every layer norm (1e-5).
    pub layer_norm_eps: f64,
}

impl Default for ClipVisionConfig {
    fn default() -> Self {
        Self {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

/// A `CLIPModel` config. Absent keys take transformers' `CLIPConfig` defaults.
/// `logit_scale_init_value` is deliberately not read: the model uses the stored `logit_scale`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct ClipConfig {
    /// The text tower.
    pub text_config: ClipTextConfig,
    /// The vision tower.
    pub vision_config: ClipVisionConfig,
    /// Width of the shared image-text embedding space (512).
    pub projection_dim: usize,
}

impl ClipConfig {
    /// Read and check a `config.json`. The legacy `text_config_dict` / `vision_config_dict` keys
    /// of old checkpoints override `text_config` / `vision_config` key by key, as in
    /// transformers. Errors name the offending key, e.g. `vision_config.hidden_act`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        Self::from_json(Value::Object(read_json_object(path)?))
            .with_context(|| format!("{} is not a supported CLIP config", path.display()))
    }

    /// [`ClipConfig::from_file`] on an already parsed JSON value.
    pub fn from_json(value: Value) -> anyhow::Result<Self> {
        let mut value = value;
        if let Value::Object(map) = &mut value {
            for tower in ["text_config", "vision_config"] {
                if let Some(Value::Object(legacy)) = map.remove(&format!("{tower}_dict")) {
                    let merged = map.entry(tower).or_insert_with(|| Value::Object(Default::default()));
                    if let Value::Object(merged) = merged {
                        merged.extend(legacy);
                    }
                }
            }
        }
        let config: Self = from_json(value)?;
        config.validate()?;
        Ok(config)
    }

    /// Reject values the model cannot run with, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let text = &self.text_config;
        ensure_encoder("text_config", &text.encoder_config())?;
        ensure_positive("text_config.vocab_size", text.vocab_size)?;
        ensure_positive("text_config.max_position_embeddings", text.max_position_embeddings)?;
        let vision = &self.vision_config;
        ensure_encoder("vision_config", &vision.encoder_config())?;
        ensure_patches(
            "vision_config",
            vision.num_channels,
            vision.image_size,
            vision.patch_size,
        )?;
        ensure_positive("projection_dim", self.projection_dim)
    }
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            text_config: ClipTextConfig::default(),
            vision_config: ClipVisionConfig::default(),
            projection_dim: 512,
        }
    }
}

impl ClipTextConfig {
    /// The encoder settings of the text tower.
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

impl ClipVisionConfig {
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
