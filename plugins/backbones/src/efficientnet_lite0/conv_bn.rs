//! A convolution followed by an inference-mode BatchNorm, folded into one convolution with a bias,
//! with TensorFlow "SAME" padding.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Conv2dConfig, VarBuilder};

use super::depthwise::{same_padding, DepthwiseConv2d};

/// Shape of a [`ConvBn`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvBnConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels (equal to `in_channels` when `depthwise`).
    pub out_channels: usize,
    /// Square kernel size.
    pub kernel_size: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// One filter per channel (`groups = channels`) instead of a full convolution.
    pub depthwise: bool,
    /// BatchNorm epsilon.
    pub eps: f64,
}

/// `BN(conv(x))` with the BatchNorm's running statistics and affine parameters folded into the
/// convolution's weight and bias.
#[derive(Debug, Clone)]
pub struct ConvBn {
    conv: Convolution,
    /// `[1, out, 1, 1]`.
    bias: Tensor,
}

#[derive(Debug, Clone)]
enum Convolution {
    /// A 1x1 stride-1 convolution as a matrix product with `[out, in]` weights.
    Pointwise(Tensor),
    /// A full convolution with `[out, in, k, k]` weights.
    Full {
        weight: Tensor,
        kernel_size: usize,
        stride: usize,
    },
    /// A depthwise one.
    Depthwise(DepthwiseConv2d),
}

impl ConvBn {
    /// Load the convolution `conv` (no bias) and the BatchNorm `bn` from `vb` in f32, fold them,
    /// and keep the result in `dtype`.
    pub fn new(vb: &VarBuilder, conv: &str, bn: &str, cfg: &ConvBnConfig, dtype: DType) -> Result<Self> {
        let groups = if cfg.depthwise { cfg.in_channels } else { 1 };
        if cfg.depthwise && cfg.out_channels != cfg.in_channels {
            candle_core::bail!(
                "depthwise convolution {conv} must keep the channel count ({} -> {})",
                cfg.in_channels,
                cfg.out_channels
            )
        }
        let conv_cfg = Conv2dConfig {
            stride: cfg.stride,
            groups,
            ..Default::default()
        };
        let conv_layer = candle_nn::conv2d_no_bias(
            cfg.in_channels,
            cfg.out_channels,
            cfg.kernel_size,
            conv_cfg,
            vb.pp(conv),
        )?;
        let bn_layer = candle_nn::batch_norm(cfg.out_channels, cfg.eps, vb.pp(bn))?;
        let folded = conv_layer.absorb_bn(&bn_layer)?;
        // The BatchNorm's running statistics are `Var`s: detach so that no forward pass records a
        // backprop graph towards them (which would keep every activation alive).
        let weight = folded.weight().detach().to_dtype(dtype)?;
        let bias = folded
            .bias()
            .expect("absorb_bn sets a bias")
            .detach()
            .to_dtype(dtype)?
            .reshape((1, cfg.out_channels, 1, 1))?;
        let conv = if cfg.depthwise {
            Convolution::Depthwise(DepthwiseConv2d::new(&weight, cfg.stride)?)
        } else if cfg.kernel_size == 1 && cfg.stride == 1 {
            Convolution::Pointwise(weight.reshape((cfg.out_channels, cfg.in_channels))?)
        } else {
            Convolution::Full {
                weight,
                kernel_size: cfg.kernel_size,
                stride: cfg.stride,
            }
        };
        Ok(Self { conv, bias })
    }
}

impl Module for ConvBn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.conv {
            Convolution::Depthwise(depthwise) => depthwise.forward(x)?,
            Convolution::Pointwise(weight) => {
                let (b, c, h, w) = x.dims4()?;
                let out = weight.dim(0)?;
                if x.track_op() {
                    // Differentiable path (DNE backpropagates into the input): one 2-D matmul, so
                    // that backprop's gradient for the (constant) weight is `[C, out]`, not one
                    // `[out, C]` copy per image as a batched matmul of the broadcast weight gives.
                    x.permute((0, 2, 3, 1))?
                        .reshape((b * h * w, c))?
                        .matmul(&weight.t()?)?
                        .reshape((b, h, w, out))?
                        .permute((0, 3, 1, 2))?
                } else {
                    weight
                        .broadcast_left(b)?
                        .matmul(&x.reshape((b, c, h * w))?)?
                        .reshape((b, out, h, w))?
                }
            }
            Convolution::Full {
                weight,
                kernel_size,
                stride,
            } => {
                let (_, _, h, w) = x.dims4()?;
                let (top, bottom) = same_padding(h, *kernel_size, *stride);
                let (left, right) = same_padding(w, *kernel_size, *stride);
                x.pad_with_zeros(2, top, bottom)?
                    .pad_with_zeros(3, left, right)?
                    .conv2d(weight, 0, *stride, 1, 1)?
            }
        };
        y.broadcast_add(&self.bias)
    }
}
