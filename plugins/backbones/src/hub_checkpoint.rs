//! A checkpoint in Hugging Face layout, from a local folder or the Hub cache
//! ([`fairlab_framework::hub`]), as the `clip` and `blip` plugins load it: `config.json`, the
//! safetensors weights (single or sharded), the image processor config and the tokenizer.

use std::path::PathBuf;

use anyhow::Context;
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::device::{parse_dtype, select_device};
use fairlab_framework::hub::ModelFiles;
use fairlab_framework::preprocess::Preprocessing;
use fairlab_framework::ConfigError;
use serde::{Deserialize, Serialize};

use crate::text_tokenizer::TextTokenizer;

/// `backbone: {kind: clip|blip, model: ..., revision: ..., device: ..., dtype: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubModelSettings {
    /// A Hub repo id (`openai/clip-vit-base-patch16`) or a local folder in Hugging Face layout.
    pub model: String,
    /// Branch, tag or commit of a Hub repo (ignored for a folder).
    #[serde(default = "default_revision")]
    pub revision: String,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// `f32`, `f16` or `bf16`: the dtype of the weights and the features.
    #[serde(default = "default_dtype")]
    pub dtype: String,
}

fn default_revision() -> String {
    "main".to_string()
}

fn default_device() -> String {
    "auto".to_string()
}

fn default_dtype() -> String {
    "f32".to_string()
}

/// A resolved checkpoint: where its files are and how its images are preprocessed, on the device
/// and in the dtype the settings chose.
#[derive(Debug, Clone)]
pub struct HubCheckpoint {
    /// The model's files.
    pub files: ModelFiles,
    /// `config.json`.
    pub config: PathBuf,
    /// The safetensors weights (one file, or the shards of `model.safetensors.index.json`).
    pub weights: Vec<PathBuf>,
    /// The image processor of `preprocessor_config.json` (or `processor_config.json`).
    pub preprocessing: Preprocessing,
    /// `<kind>@sha256:<weights>`: the identity of the weights, part of the feature-cache key.
    pub fingerprint: String,
    /// Where the weights go.
    pub device: Device,
    /// The dtype of the weights and outputs.
    pub dtype: DType,
}

impl HubCheckpoint {
    /// Resolve the checkpoint a plugin section names. Errors carry the settings key
    /// (`backbone.model`, `backbone.device`, ...).
    pub fn from_spec(spec: &PluginSpec, kind: &str) -> anyhow::Result<Self> {
        let settings: HubModelSettings = spec.parse()?;
        let key = |name: &str| format!("{}.{name}", spec.path);
        let device = select_device(&settings.device).map_err(|e| ConfigError::attach_key(e, key("device")))?;
        let dtype = parse_dtype(&settings.dtype).map_err(|e| ConfigError::attach_key(e, key("dtype")))?;
        Self::open(kind, &settings.model, &settings.revision, device, dtype)
            .map_err(|e| ConfigError::attach_key(e, key("model")))
    }

    /// Resolve `model` at `revision` (with the environment's Hub settings) for a `kind` plugin.
    pub fn open(kind: &str, model: &str, revision: &str, device: Device, dtype: DType) -> anyhow::Result<Self> {
        Self::from_files(kind, ModelFiles::resolve(model, revision)?, device, dtype)
    }

    /// The checkpoint held by `files`, for a `kind` plugin: its config, weights and image
    /// processor must be there.
    pub fn from_files(kind: &str, files: ModelFiles, device: Device, dtype: DType) -> anyhow::Result<Self> {
        let config = files.get("config.json")?;
        let weights = files.safetensors()?;
        let processor = match files.get_optional("preprocessor_config.json")? {
            Some(path) => path,
            None => files.get("processor_config.json").map_err(|_| {
                ConfigError::new(format!(
                    "{files} has neither preprocessor_config.json nor processor_config.json: the image preprocessing \
                     (resize, crop, mean/std) is unknown"
                ))
            })?,
        };
        let preprocessing = Preprocessing::from_hf_processor_config(&processor)?;
        let fingerprint = format!("{kind}@sha256:{}", fairlab_framework::digest::sha256_files(&weights)?);
        Ok(Self {
            files,
            config,
            weights,
            preprocessing,
            fingerprint,
            device,
            dtype,
        })
    }

    /// A vision tower's position embeddings fix its input size: the image processor must produce
    /// exactly `image_size × image_size` pixels (`vision_config.image_size`).
    pub fn ensure_input_size(&self, image_size: usize) -> anyhow::Result<()> {
        let p = &self.preprocessing;
        if p.height != image_size || p.width != image_size {
            return Err(ConfigError::new(format!(
                "{}: the image processor makes {}x{} images but vision_config.image_size is {image_size}",
                self.files, p.height, p.width
            ))
            .into());
        }
        Ok(())
    }

    /// A builder over the weights, converting every tensor to the checkpoint's dtype on its device.
    pub fn var_builder(&self) -> anyhow::Result<VarBuilder<'static>> {
        // SAFETY: the files are memory-mapped read-only; fairlab never writes them, and each tensor is
        // copied out of the map when a module is built.
        unsafe { VarBuilder::from_mmaped_safetensors(&self.weights, self.dtype, &self.device) }
            .with_context(|| format!("cannot read the safetensors weights of {}", self.files))
    }

    /// The tokenizer (`tokenizer.json`), truncating to `max_len` tokens and padding with the
    /// model's pad token (`fallback_pad_id` when the folder names none).
    pub fn tokenizer(&self, max_len: usize, fallback_pad_id: u32) -> anyhow::Result<TextTokenizer> {
        let path = self.files.get("tokenizer.json")?;
        let special = ["special_tokens_map.json", "tokenizer_config.json"]
            .iter()
            .filter_map(|name| self.files.get_optional(name).transpose())
            .collect::<anyhow::Result<Vec<_>>>()?;
        TextTokenizer::from_file(&path, &special, max_len, fallback_pad_id)
    }
}
