//! Layer normalisation over the last dimension, computed in at least f32 and differentiable.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::precision::compute_dtype;

/// `torch.nn.LayerNorm` over the last dimension with the config's epsilon.
///
/// Unlike `candle_nn::LayerNorm` (whose fused kernel has no backward pass) this is made of plain
/// tensor ops, so gradients flow through it. The statistics and the affine transform are computed
/// in f32 for half-precision inputs (see [`compute_dtype`]) and cast back to the input dtype.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Load `weight` and `bias` (both `[size]`) from `vb`.
    pub fn new(vb: VarBuilder, size: usize, eps: f64) -> Result<Self> {
        let dtype = compute_dtype(vb.dtype());
        let weight = vb.get(size, "weight")?.to_dtype(dtype)?;
        let bias = vb.get(size, "bias")?.to_dtype(dtype)?;
        Ok(Self { weight, bias, eps })
    }
}

impl Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dtype = xs.dtype();
        let xs = xs.to_dtype(self.weight.dtype())?;
        let centered = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
        let variance = centered.sqr()?.mean_keepdim(D::Minus1)?;
        centered
            .broadcast_div(&(variance + self.eps)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?
            .to_dtype(dtype)
    }
}
