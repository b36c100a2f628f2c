//! The EfficientNet-Lite0 network: stem, MBConv blocks, head, global average pool, ImageNet
//! classifier. Tensor names follow lukemelas/EfficientNet-PyTorch.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::config::{BlockConfig, ConvConfig, EfficientNetLite0Config};
use super::conv_bn::{ConvBn, ConvBnConfig};

/// `min(max(x, 0), 6)`.
fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// Stem or head: `ReLU6(BN(conv(x)))`.
fn conv_bn_act(vb: &VarBuilder, cfg: &ConvConfig, eps: f64, dtype: DType) -> Result<ConvBn> {
    let shape = ConvBnConfig {
        in_channels: cfg.in_channels,
        out_channels: cfg.out_channels,
        kernel_size: cfg.kernel_size,
        stride: cfg.stride,
        depthwise: false,
        eps,
    };
    ConvBn::new(vb, &cfg.conv, &cfg.bn, &shape, dtype)
}

/// An inverted-residual (MBConv) block without squeeze-and-excitation.
#[derive(Debug, Clone)]
pub struct MbConvBlock {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl MbConvBlock {
    /// Load `_blocks.{index}` from `vb` (the model root).
    pub fn new(vb: &VarBuilder, cfg: &BlockConfig, eps: f64, dtype: DType) -> Result<Self> {
        let vb = vb.pp(format!("_blocks.{}", cfg.index));
        let pointwise = |in_channels, out_channels| ConvBnConfig {
            in_channels,
            out_channels,
            kernel_size: 1,
            stride: 1,
            depthwise: false,
            eps,
        };
        let expand = if cfg.has_expand_conv {
            let shape = pointwise(cfg.in_channels, cfg.hidden_channels);
            Some(ConvBn::new(&vb, "_expand_conv", "_bn0", &shape, dtype)?)
        } else {
            None
        };
        let depthwise_shape = ConvBnConfig {
            in_channels: cfg.hidden_channels,
            out_channels: cfg.hidden_channels,
            kernel_size: cfg.kernel_size,
            stride: cfg.stride,
            depthwise: true,
            eps,
        };
        let depthwise = ConvBn::new(&vb, "_depthwise_conv", "_bn1", &depthwise_shape, dtype)?;
        let project = ConvBn::new(
            &vb,
            "_project_conv",
            "_bn2",
            &pointwise(cfg.hidden_channels, cfg.out_channels),
            dtype,
        )?;
        Ok(Self {
            expand,
            depthwise,
            project,
            residual: cfg.residual,
        })
    }
}

impl Module for MbConvBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = match &self.expand {
            Some(expand) => relu6(&expand.forward(x)?)?,
            None => x.clone(),
        };
        let hidden = relu6(&self.depthwise.forward(&hidden)?)?;
        let out = self.project.forward(&hidden)?;
        if self.residual {
            out + x
        } else {
            Ok(out)
        }
    }
}

/// EfficientNet-Lite0 in inference mode (BatchNorm folded, no dropout).
///
/// [`Module::forward`] maps normalised pixels `[B, 3, H, W]` to the pooled features `[B, 1280]`;
/// [`EfficientNetLite0::logits`] applies the ImageNet classifier to them.
#[derive(Debug, Clone)]
pub struct EfficientNetLite0 {
    stem: ConvBn,
    blocks: Vec<MbConvBlock>,
    head: ConvBn,
    classifier: Linear,
}

impl EfficientNetLite0 {
    /// Build the network from `vb` (f32 weights; folded and stored in `dtype`).
    pub fn new(vb: VarBuilder, cfg: &EfficientNetLite0Config, dtype: DType) -> Result<Self> {
        let eps = cfg.batch_norm.eps;
        let stem = conv_bn_act(&vb, &cfg.stem, eps, dtype)?;
        let blocks = cfg
            .blocks
            .iter()
            .map(|b| MbConvBlock::new(&vb, b, eps, dtype))
            .collect::<Result<_>>()?;
        let head = conv_bn_act(&vb, &cfg.head, eps, dtype)?;
        let fc = candle_nn::linear(
            cfg.classifier.in_features,
            cfg.classifier.out_features,
            vb.pp(&cfg.classifier.name),
        )?;
        let classifier = Linear::new(
            fc.weight().to_dtype(dtype)?,
            fc.bias().map(|b| b.to_dtype(dtype)).transpose()?,
        );
        Ok(Self {
            stem,
            blocks,
            head,
            classifier,
        })
    }

    /// ImageNet logits `[B, 1000]` of pooled features `[B, 1280]` (no softmax).
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        self.classifier.forward(features)
    }
}

impl Module for EfficientNetLite0 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = relu6(&self.stem.forward(x)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        relu6(&self.head.forward(&x)?)?.mean((2, 3))
    }
}
