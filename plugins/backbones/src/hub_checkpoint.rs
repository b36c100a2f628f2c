//! A checkpoint in Hugging Face layout, from a local folder or the Hub cache
//! ([`fairlab_framework::hub`]), as the `clip` and `blip` plugins load it: `config.json`, the
//! safetensors weights (single or sharded), the image processor config and the tokenizer.
//!
//! The weights are memory-mapped and frozen (plain tensors: no gradient is ever computed for
//! them), except the tensors under the `trainable` prefixes, which load as [`Var`]s that a
//! fine-tuning debiaser updates in place (see [`HubCheckpoint::with_trainable`]).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::device::{parse_dtype, select_device};
use fairlab_framework::hub::ModelFiles;
use fairlab_framework::preprocess::Preprocessing;
use fairlab_framework::ConfigError;
use serde::{Deserialize, Serialize};

use crate::text_tokenizer::TextTokenizer;

/// `backbone: {kind: clip|blip, model: ..., revision: ..., device: ..., dtype: ..., trainable: [...]}`.
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
    /// Tensor-name prefixes of the weights a fine-tuning debiaser may train, in the checkpoint's
    /// (Hugging Face) naming, e.g. `[vision_model, visual_projection, text_model.encoder]`. A
    /// prefix matches whole dotted components (`text_model.encoder` matches
    /// `text_model.encoder.layers.0...`, not `text_model.encoder_x`). Empty (the default): the
    /// backbone is frozen. Training needs `dtype: f32`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trainable: Vec<String>,
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
    /// Names of the tensors that load as trainable [`Var`]s, sorted; empty for a frozen model
    /// (see [`HubCheckpoint::with_trainable`]).
    pub trainable: Vec<String>,
}

/// The weights of a checkpoint, ready to build a model from.
pub struct CheckpointWeights {
    /// A builder over every tensor, in the checkpoint's dtype on its device; a trainable
    /// tensor is handed out as its [`Var`]'s tensor, so the model computes with the var itself.
    pub builder: VarBuilder<'static>,
    /// The trainable vars with their tensor names, in the order of [`HubCheckpoint::trainable`].
    pub trainable: Vec<(String, Var)>,
}

impl HubCheckpoint {
    /// Resolve the checkpoint a plugin section names. Errors carry the settings key
    /// (`backbone.model`, `backbone.device`, ...).
    pub fn from_spec(spec: &PluginSpec, kind: &str) -> anyhow::Result<Self> {
        let settings: HubModelSettings = spec.parse()?;
        let key = |name: &str| format!("{}.{name}", spec.path);
        let device = select_device(&settings.device).map_err(|e| ConfigError::attach_key(e, key("device")))?;
        let dtype = parse_dtype(&settings.dtype).map_err(|e| ConfigError::attach_key(e, key("dtype")))?;
        let checkpoint = Self::open(kind, &settings.model, &settings.revision, device, dtype)
            .map_err(|e| ConfigError::attach_key(e, key("model")))?;
        if settings.trainable.is_empty() {
            return Ok(checkpoint);
        }
        if dtype != DType::F32 {
            return Err(ConfigError::at_key(
                key("dtype"),
                format!(
                    "fine-tuning (`{}` is set) needs f32 weights, not {}; set `dtype: f32`",
                    key("trainable"),
                    settings.dtype
                ),
            )
            .into());
        }
        checkpoint
            .with_trainable(&settings.trainable)
            .map_err(|e| ConfigError::attach_key(e, key("trainable")))
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
            trainable: Vec::new(),
        })
    }

    /// The same checkpoint with every tensor whose name lies under one of `prefixes` trainable
    /// (a prefix matches whole dotted components: the name itself or `prefix.*`). A prefix that
    /// matches no tensor is a [`ConfigError`] listing the checkpoint's top-level prefixes.
    /// Training needs f32 weights; [`HubCheckpoint::from_spec`] refuses the half types.
    pub fn with_trainable(mut self, prefixes: &[String]) -> anyhow::Result<Self> {
        let names: Vec<String> = self
            .open_weights()?
            .tensors()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let under = |name: &str, prefix: &str| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        };
        if let Some(unmatched) = prefixes.iter().find(|p| !names.iter().any(|n| under(n, p))) {
            let top: BTreeSet<&str> = names.iter().map(|n| n.split('.').next().unwrap_or(n)).collect();
            return Err(ConfigError::new(format!(
                "`{unmatched}` matches no tensor of {}; its top-level prefixes are {}",
                self.files,
                top.into_iter().collect::<Vec<_>>().join(", ")
            ))
            .into());
        }
        let mut trainable: Vec<String> = names
            .into_iter()
            .filter(|n| prefixes.iter().any(|p| under(n, p)))
            .collect();
        trainable.sort();
        self.trainable = trainable;
        Ok(self)
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

    /// The weights, memory-mapped, converted to the checkpoint's dtype on its device as a model
    /// reads them; the [`HubCheckpoint::trainable`] tensors are copied into fresh [`Var`]s.
    pub fn load_weights(&self) -> anyhow::Result<CheckpointWeights> {
        let frozen = self.open_weights()?;
        let mut vars = HashMap::new();
        let mut trainable = Vec::with_capacity(self.trainable.len());
        for name in &self.trainable {
            let var = Var::from_tensor(&frozen.load(name, &self.device)?.to_dtype(self.dtype)?)?;
            trainable.push((name.clone(), var.clone()));
            vars.insert(name.clone(), var);
        }
        let backend = PartlyTrainable { frozen, vars };
        Ok(CheckpointWeights {
            builder: VarBuilder::from_backend(Box::new(backend), self.dtype, self.device.clone()),
            trainable,
        })
    }

    /// The safetensors files, memory-mapped.
    fn open_weights(&self) -> anyhow::Result<MmapedSafetensors> {
        // SAFETY: the files are memory-mapped read-only; fairlab never writes them, and each tensor is
        // copied out of the map when a module is built.
        unsafe { MmapedSafetensors::multi(&self.weights) }
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

/// Memory-mapped frozen tensors, except the trainable ones, which are served from their vars.
struct PartlyTrainable {
    frozen: MmapedSafetensors,
    vars: HashMap<String, Var>,
}

impl SimpleBackend for PartlyTrainable {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        hints: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let Some(var) = self.vars.get(name) else {
            return SimpleBackend::get(&self.frozen, shape, name, hints, dtype, device);
        };
        trainable_as(var, name, dtype)?;
        if var.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: var.shape().clone(),
            }
            .bt());
        }
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        match self.vars.get(name) {
            Some(var) => {
                trainable_as(var, name, dtype)?;
                Ok(var.as_tensor().clone())
            }
            None => SimpleBackend::get_unchecked(&self.frozen, name, dtype, device),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars.contains_key(name) || SimpleBackend::contains_tensor(&self.frozen, name)
    }
}

/// A model must read a trainable tensor in the var's own dtype: a converted copy would not see
/// the optimiser's updates.
fn trainable_as(var: &Var, name: &str, dtype: DType) -> candle_core::Result<()> {
    if var.dtype() != dtype {
        candle_core::bail!(
            "the trainable tensor {name} is {:?} but was requested as {dtype:?}",
            var.dtype()
        );
    }
    Ok(())
}
