//! The plugin's YAML settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `backbone: {kind: efficientnet-lite0, weights: ..., device: ..., dtype: ..., image_size: ...}` (the extraction
/// batch size is the runner's `features.batch_size`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientNetLite0Settings {
    /// Folder holding `config.json` and `model.safetensors`.
    #[serde(default = "default_weights")]
    pub weights: PathBuf,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// `f32`, `f16` or `bf16`: the dtype of the weights and the features.
    #[serde(default = "default_dtype")]
    pub dtype: String,
    /// Input resolution (square) the images are resized to; default: the training resolution in
    /// `config.json` (224). The network is fully convolutional with global pooling, so any size
    /// of at least 32 works; smaller inputs are much faster (DNE backpropagates through them).
    #[serde(default)]
    pub image_size: Option<usize>,
}

impl Default for EfficientNetLite0Settings {
    fn default() -> Self {
        Self {
            weights: default_weights(),
            device: default_device(),
            dtype: default_dtype(),
            image_size: None,
        }
    }
}

fn default_weights() -> PathBuf {
    PathBuf::from("models/efficientnet-lite0")
}

fn default_device() -> String {
    "auto".to_string()
}

fn default_dtype() -> String {
    "f32".to_string()
}
