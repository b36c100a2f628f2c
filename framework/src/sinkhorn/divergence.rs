//! The debiased Sinkhorn divergence `S_ε(a, b)`, differentiable in candle like geomloss's.

use candle_core::Tensor;

use super::bounds::BoundingBox;
use super::cloud::cloud_pair;
use super::solver::{anneal, exponent};
use super::SinkhornConfig;

/// The debiased Sinkhorn divergence `S_ε(a, b) = OT_ε(a, b) − ½ OT_ε(a, a) − ½ OT_ε(b, b)` between the weighted
/// point clouds `(a, x)` and `(b, y)`, exactly as geomloss's
/// `SamplesLoss("sinkhorn", p=2, blur, scaling, debias=True)(a, x, b, y)` computes it.
///
/// - `x`: `[n, D]` points, or `[n]` for 1-D points (read as `n × 1`); `y`: `[m, D]` or `[m]`, same device.
/// - `a`, `b`: `[n]` and `[m]` nonnegative weights summing to 1; `None` means uniform (`1/n`, `1/m`).
/// - The cost is `C(x, y) = ½‖x − y‖²` and the temperature `ε = blur²` (see [`SinkhornConfig`]).
///
/// Returns a scalar tensor in `x`'s dtype. The ε-scaling loop runs on detached f64 copies on the CPU; the last,
/// non-averaged Sinkhorn update is then rebuilt in f64 with candle ops on `x`'s device, with the potentials
/// detached and only the first argument of each cost matrix attached (`C(x, y.detach())`, `C(x, x.detach())`,
/// `C(y, x.detach())`, `C(y, y.detach())`), as geomloss does. Backpropagation therefore yields geomloss's
/// envelope-theorem gradients: w.r.t. `x`, `a_i (Σ_k Q_ik x_k − Σ_j P_ij y_j)` with `P`, `Q` the final transport
/// plans of OT(a, b) and OT(a, a) normalised per row; w.r.t. `y`, the symmetric expression; and w.r.t. explicit
/// weights, `f_ba − f_aa` and `g_ab − g_bb` (the dual potentials). Second derivatives are not meaningful.
///
/// Errors if the settings are out of range, a cloud is empty, not finite or of the wrong rank, the dimensions or
/// devices differ, or the weights have the wrong length, a negative entry or a sum other than 1.
pub fn sinkhorn_divergence(
    x: &Tensor,
    y: &Tensor,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
    cfg: &SinkhornConfig,
) -> candle_core::Result<Tensor> {
    cfg.validate()?;
    let (xs, ys) = cloud_pair(x, y, a, b)?;
    let bounds = BoundingBox::of(&xs, &ys);
    let potentials = anneal(&xs, &ys, &cfg.epsilon_schedule(bounds.diameter()));

    // geomloss's last extrapolation at ε = blur², not averaged, all four from the potentials above.
    let eps = cfg.epsilon();
    let device = xs.points.device();
    let constant = |log_weights: &[f64], potential: &[f64]| {
        Tensor::from_vec(exponent(log_weights, potential, eps), potential.len(), device)
    };
    let (alpha, beta) = (&xs.log_weights, &ys.log_weights);
    let h_ab = constant(beta, &potentials.g_ab)?;
    let h_ba = constant(alpha, &potentials.f_ba)?;
    let h_aa = constant(alpha, &potentials.f_aa)?;
    let h_bb = constant(beta, &potentials.g_bb)?;
    // Centring on a detached point changes no distance and keeps the expanded squares small.
    let center = Tensor::from_vec(bounds.center(), (1, xs.dim), device)?;
    let x_c = xs.points.broadcast_sub(&center)?;
    let y_c = ys.points.broadcast_sub(&center)?;
    let f_ba = softmin(eps, &half_squared_distances(&x_c, &y_c.detach())?, &h_ab)?;
    let g_ab = softmin(eps, &half_squared_distances(&y_c, &x_c.detach())?, &h_ba)?;
    let f_aa = softmin(eps, &half_squared_distances(&x_c, &x_c.detach())?, &h_aa)?;
    let g_bb = softmin(eps, &half_squared_distances(&y_c, &y_c.detach())?, &h_bb)?;
    let loss = ((xs.weights * (f_ba - f_aa)?)?.sum_all()? + (ys.weights * (g_ab - g_bb)?)?.sum_all()?)?;
    loss.to_dtype(x.dtype())
}

/// `C[i, j] = ½‖p_i − q_j‖²` for `[n, D]` and `[m, D]` points, as geomloss's `(‖p‖² − 2 p·q + ‖q‖²) / 2`.
fn half_squared_distances(p: &Tensor, q: &Tensor) -> candle_core::Result<Tensor> {
    let p_squared = p.sqr()?.sum_keepdim(1)?;
    let q_squared = q.sqr()?.sum_keepdim(1)?.t()?;
    let cross = p.matmul(&q.t()?)?;
    p_squared.broadcast_sub(&(cross * 2.0)?)?.broadcast_add(&q_squared)? * 0.5
}

/// The soft-C-transform `f_i = −ε log Σ_j exp(h_j − C_ij / ε)` of a `[n, m]` cost and `[m]` exponents, through a
/// log-sum-exp whose subtracted row maximum is detached (the value and gradient do not depend on it).
fn softmin(eps: f64, cost: &Tensor, h: &Tensor) -> candle_core::Result<Tensor> {
    let exponents = (cost / eps)?.neg()?.broadcast_add(&h.unsqueeze(0)?)?;
    let max = exponents.max_keepdim(1)?.detach();
    let log_sum_exp = (exponents.broadcast_sub(&max)?.exp()?.sum_keepdim(1)?.log()? + max)?;
    log_sum_exp.squeeze(1)? * -eps
}
