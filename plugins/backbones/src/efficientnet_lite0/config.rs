//! The architecture description read from the weights folder's `config.json`.

use std::path::Path;

use anyhow::Context;
use fairlab_framework::preprocess::{Preprocessing, Resize};
use serde::Deserialize;

/// EfficientNet-Lite0 as described by `config.json` (only the fields the model needs; the file's
/// descriptive fields are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EfficientNetLite0Config {
    /// File name of the weights inside the folder, e.g. `model.safetensors`.
    pub weights_file: String,
    /// Training resolution (square), e.g. 224.
    pub image_size: usize,
    /// Length of the pooled feature vector, e.g. 1280.
    pub feature_dim: usize,
    /// Activation after every BatchNorm except the blocks' projections; only `relu6` is supported.
    pub activation: String,
    /// Squeeze-and-excitation; EfficientNet-Lite has none, so only `false` is supported.
    pub use_se: bool,
    /// Whether convolutions have a bias; only `false` is supported (BatchNorm follows every one).
    pub conv_bias: bool,
    /// BatchNorm settings.
    pub batch_norm: BatchNormConfig,
    /// Convolution padding.
    pub padding: PaddingConfig,
    /// The stem convolution.
    pub stem: ConvConfig,
    /// Every MBConv block, in order.
    pub blocks: Vec<BlockConfig>,
    /// The 1x1 head convolution.
    pub head: ConvConfig,
    /// The ImageNet classifier.
    pub classifier: ClassifierConfig,
    /// Input normalisation the weights were trained with.
    pub preprocessing: NormalizationConfig,
}

/// BatchNorm settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchNormConfig {
    /// Added to the running variance (1e-3 for the TensorFlow-trained weights).
    pub eps: f64,
}

/// Convolution padding.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PaddingConfig {
    /// Only `tf_same` (TensorFlow "SAME", asymmetric for even strides) is supported.
    pub mode: String,
}

/// A convolution followed by BatchNorm and the activation (stem and head).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConvConfig {
    /// Tensor-name prefix of the convolution, e.g. `_conv_stem`.
    pub conv: String,
    /// Tensor-name prefix of the BatchNorm, e.g. `_bn0`.
    pub bn: String,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel_size: usize,
    /// Stride (1 when absent).
    #[serde(default = "one")]
    pub stride: usize,
}

/// One MBConv block: optional 1x1 expansion, depthwise kxk, 1x1 projection, optional residual.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BlockConfig {
    /// Position in `_blocks.{index}`.
    pub index: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Channels of the depthwise stage (`in_channels * expand_ratio`).
    pub hidden_channels: usize,
    /// Depthwise kernel size.
    pub kernel_size: usize,
    /// Depthwise stride.
    pub stride: usize,
    /// Whether a 1x1 expansion convolution comes first.
    pub has_expand_conv: bool,
    /// Whether the input is added to the output.
    pub residual: bool,
}

/// The classifier head.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClassifierConfig {
    /// Tensor-name prefix, e.g. `_fc`.
    pub name: String,
    /// Input features.
    pub in_features: usize,
    /// Classes.
    pub out_features: usize,
}

/// Per-channel input normalisation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NormalizationConfig {
    /// Mean of the `[0, 1]` RGB values.
    pub mean: [f32; 3],
    /// Standard deviation of the `[0, 1]` RGB values.
    pub std: [f32; 3],
}

fn one() -> usize {
    1
}

impl EfficientNetLite0Config {
    /// Read and check `config.json`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let config: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an EfficientNet-Lite config", path.display()))?;
        config
            .check()
            .with_context(|| format!("unsupported architecture in {}", path.display()))?;
        Ok(config)
    }

    /// Reject settings this implementation does not support.
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.activation == "relu6",
            "activation `{}` (only relu6 is implemented)",
            self.activation
        );
        anyhow::ensure!(!self.use_se, "squeeze-and-excitation (use_se: true) is not implemented");
        anyhow::ensure!(
            !self.conv_bias,
            "convolution biases (conv_bias: true) are not implemented"
        );
        anyhow::ensure!(
            self.padding.mode == "tf_same",
            "padding mode `{}` (only tf_same is implemented)",
            self.padding.mode
        );
        anyhow::ensure!(!self.blocks.is_empty(), "no blocks");
        anyhow::ensure!(
            self.head.out_channels == self.feature_dim && self.classifier.in_features == self.feature_dim,
            "feature_dim {} differs from the head's {} output channels or the classifier's {} inputs",
            self.feature_dim,
            self.head.out_channels,
            self.classifier.in_features
        );
        Ok(())
    }

    /// The preprocessing the weights expect: bilinear resize to `image_size`, then the configured
    /// normalisation.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            height: self.image_size,
            width: self.image_size,
            resize: Resize::Bilinear,
            shortest_edge: None,
            mean: self.preprocessing.mean,
            std: self.preprocessing.std,
        }
    }
}
