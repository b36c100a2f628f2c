//! The `efficientnet-lite0` [`Backbone`] plugin: loads the weights folder and encodes images into
//! 1280-d pooled features.

use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use fairlab_framework::config::PluginSpec;
use fairlab_framework::device::{parse_dtype, select_device};
use fairlab_framework::preprocess::Preprocessing;
use fairlab_framework::{Backbone, ConfigError};

use super::config::EfficientNetLite0Config;
use super::model::EfficientNetLite0;
use super::settings::EfficientNetLite0Settings;

/// The plugin name.
pub const KIND: &str = "efficientnet-lite0";

/// The smallest input resolution: the network's total stride.
const MIN_IMAGE_SIZE: usize = 32;

/// What a weights folder must contain, for error messages.
const EXPECTED_FILES: &str = "config.json and the weights file it names (model.safetensors), \
     as in the EfficientNet-Lite0 bundle described by models/efficientnet-lite0/README.md";

/// A loaded EfficientNet-Lite0 with its preprocessing and identity.
#[derive(Debug, Clone)]
pub struct EfficientNetLite0Backbone {
    model: EfficientNetLite0,
    preprocessing: Preprocessing,
    feature_dim: usize,
    device: Device,
    dtype: DType,
    fingerprint: String,
}

impl EfficientNetLite0Backbone {
    /// Build from a YAML section; bad settings are [`ConfigError`]s naming their key.
    pub fn from_spec(spec: &PluginSpec) -> anyhow::Result<Self> {
        let settings: EfficientNetLite0Settings = spec.parse()?;
        let key = |name: &str| format!("{}.{name}", spec.path);
        let device = select_device(&settings.device).map_err(|e| ConfigError::attach_key(e, key("device")))?;
        let dtype = parse_dtype(&settings.dtype).map_err(|e| ConfigError::attach_key(e, key("dtype")))?;
        let mut backbone =
            Self::load(&settings.weights, &device, dtype).map_err(|e| ConfigError::attach_key(e, key("weights")))?;
        if let Some(size) = settings.image_size {
            if size < MIN_IMAGE_SIZE {
                return Err(ConfigError::at_key(
                    key("image_size"),
                    format!("must be at least {MIN_IMAGE_SIZE} (the network downsamples by 32), got {size}"),
                )
                .into());
            }
            backbone.preprocessing.height = size;
            backbone.preprocessing.width = size;
        }
        Ok(backbone)
    }

    /// Load the weights folder `dir` (`config.json` + the weights file it names) onto `device`.
    /// A missing folder or file is a [`ConfigError`]; a missing tensor or a shape mismatch is an
    /// error naming the file and the tensor.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            return Err(ConfigError::new(format!(
                "weights folder `{}` not found; it must contain {EXPECTED_FILES}",
                dir.display()
            ))
            .into());
        }
        let config_path = existing_file(dir, "config.json")?;
        let config = EfficientNetLite0Config::from_file(&config_path)?;
        let weights_path = existing_file(dir, &config.weights_file)?;
        let fingerprint = format!(
            "{KIND}@sha256:{}",
            fairlab_framework::digest::sha256_files(&[&weights_path])?
        );
        // SAFETY: the mapped file is only read while the tensors are copied out of it; the map is
        // dropped when `vb` is, at the end of this function.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, device) }
            .with_context(|| format!("cannot read the safetensors file {}", weights_path.display()))?;
        let model = EfficientNetLite0::new(vb, &config, dtype).map_err(|e| {
            anyhow::anyhow!(
                "{} does not hold the EfficientNet-Lite0 weights that {} describes: {e}",
                weights_path.display(),
                config_path.display()
            )
        })?;
        tracing::info!(weights = %weights_path.display(), device = ?device, ?dtype, %fingerprint, "loaded {KIND}");
        Ok(Self {
            model,
            preprocessing: config.preprocessing(),
            feature_dim: config.feature_dim,
            device: device.clone(),
            dtype,
            fingerprint,
        })
    }

    /// The network, e.g. for [`EfficientNetLite0::logits`].
    pub fn model(&self) -> &EfficientNetLite0 {
        &self.model
    }
}

/// `dir/name`, or a [`ConfigError`] saying what the folder must contain.
fn existing_file(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ConfigError::new(format!(
            "`{}` not found; the weights folder must contain {EXPECTED_FILES}",
            path.display()
        ))
        .into())
    }
}

impl Backbone for EfficientNetLite0Backbone {
    fn kind(&self) -> &str {
        KIND
    }

    fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    fn feature_dim(&self) -> usize {
        self.feature_dim
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn encode_images(&self, pixel_values: &Tensor) -> anyhow::Result<Tensor> {
        let (_, channels, _, _) = pixel_values.dims4()?;
        anyhow::ensure!(
            channels == 3,
            "{KIND} expects pixel values [B, 3, H, W], got {:?}",
            pixel_values.shape()
        );
        let x = pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        Ok(self.model.forward(&x)?)
    }
}
