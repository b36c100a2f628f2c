//! Multi-head scaled-dot-product attention on already projected queries, keys and values.

use candle_core::{Result, Tensor, D};

use super::precision::compute_dtype;

/// `[B, T, H * Dh]` to `[B, H, T, Dh]` (contiguous) for `num_heads` heads.
pub fn split_heads(xs: &Tensor, num_heads: usize) -> Result<Tensor> {
    let (batch, seq_len, hidden) = xs.dims3()?;
    xs.reshape((batch, seq_len, num_heads, hidden / num_heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// `[B, H, T, Dh]` back to `[B, T, H * Dh]`.
pub fn merge_heads(xs: &Tensor) -> Result<Tensor> {
    let (batch, num_heads, seq_len, head_dim) = xs.dims4()?;
    xs.transpose(1, 2)?.reshape((batch, seq_len, num_heads * head_dim))
}

/// `softmax(q kᵀ / sqrt(Dh) + mask) v` for `q: [B, H, Tq, Dh]`, `k, v: [B, H, Tk, Dh]`.
///
/// `mask` is additive and broadcastable to `[B, H, Tq, Tk]` (see [`super::mask`]). The scores,
/// the mask and the softmax are in at least f32 (see [`compute_dtype`]); the result has the dtype
/// of `v`.
pub fn scaled_dot_product_attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    let scale = (q.dim(D::Minus1)? as f64).powf(-0.5);
    let scores = (q.matmul(&k.t()?)? * scale)?.to_dtype(compute_dtype(q.dtype()))?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(&mask.to_dtype(scores.dtype())?)?,
        None => scores,
    };
    softmax_last_dim(&scores)?.to_dtype(v.dtype())?.matmul(v)
}

/// Softmax over the last dimension from differentiable ops (candle's fused softmax has no
/// backward pass). The row maximum is a constant shift, so it is detached.
fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    let max = xs.max_keepdim(D::Minus1)?.detach();
    let exp = xs.broadcast_sub(&max)?.exp()?;
    exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)
}
