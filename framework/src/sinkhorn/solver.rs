//! geomloss's symmetric, log-domain Sinkhorn loop with ε-scaling, on detached f64 copies of the clouds.

use super::cloud::Cloud;

/// A dense cost matrix `C[i, j] = ½‖p_i − q_j‖²`, row-major.
struct CostMatrix {
    /// The number of columns (points of the second cloud).
    cols: usize,
    /// The `rows × cols` entries.
    entries: Vec<f64>,
}

impl CostMatrix {
    /// The halved squared distances between every point of `p` (rows) and of `q` (columns).
    fn between(p: &Cloud, q: &Cloud) -> Self {
        let entries = (0..p.len())
            .flat_map(|i| {
                (0..q.len()).map(move |j| {
                    let squared: f64 = p.point(i).iter().zip(q.point(j)).map(|(a, b)| (a - b) * (a - b)).sum();
                    squared / 2.0
                })
            })
            .collect();
        Self { cols: q.len(), entries }
    }

    /// The soft-C-transform `f_i = −ε log Σ_j exp(h_j − C_ij / ε)`, with a max-subtracted log-sum-exp.
    fn softmin(&self, eps: f64, h: &[f64]) -> Vec<f64> {
        let mut exponents = vec![0.0; self.cols];
        self.entries
            .chunks_exact(self.cols)
            .map(|row| {
                for ((z, &c), &h) in exponents.iter_mut().zip(row).zip(h) {
                    *z = h - c / eps;
                }
                let max = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = exponents.iter().map(|z| (z - max).exp()).sum();
                -eps * (max + sum.ln())
            })
            .collect()
    }
}

/// `log w + potential / ε`, the exponent a softmin reads from the other side's potential.
pub(crate) fn exponent(log_weights: &[f64], potential: &[f64], eps: f64) -> Vec<f64> {
    log_weights.iter().zip(potential).map(|(l, p)| l + p / eps).collect()
}

/// The midpoint of two potentials, geomloss's symmetrised update.
fn average(old: &[f64], new: &[f64]) -> Vec<f64> {
    old.iter().zip(new).map(|(o, n)| 0.5 * (o + n)).collect()
}

/// The four dual potentials of the debiased problem: `f_ba` and `g_ab` for OT(a, b) (on x and on y), `f_aa` for
/// OT(a, a) and `g_bb` for OT(b, b).
pub(crate) struct Potentials {
    /// OT(a, b)'s potential on the points of x.
    pub(crate) f_ba: Vec<f64>,
    /// OT(a, b)'s potential on the points of y.
    pub(crate) g_ab: Vec<f64>,
    /// OT(a, a)'s potential on the points of x.
    pub(crate) f_aa: Vec<f64>,
    /// OT(b, b)'s potential on the points of y.
    pub(crate) g_bb: Vec<f64>,
}

/// Runs geomloss's `sinkhorn_loop` over `schedule` (initialisation at `schedule[0]`, then one averaged symmetric
/// update per entry) and returns the potentials *before* its last, non-averaged extrapolation, which the caller
/// performs with differentiable ops.
pub(crate) fn anneal(x: &Cloud, y: &Cloud, schedule: &[f64]) -> Potentials {
    let c_xy = CostMatrix::between(x, y);
    let c_yx = CostMatrix::between(y, x);
    let c_xx = CostMatrix::between(x, x);
    let c_yy = CostMatrix::between(y, y);
    let (alpha, beta) = (&x.log_weights, &y.log_weights);
    let eps = schedule[0];
    let mut p = Potentials {
        f_ba: c_xy.softmin(eps, beta),
        g_ab: c_yx.softmin(eps, alpha),
        f_aa: c_xx.softmin(eps, alpha),
        g_bb: c_yy.softmin(eps, beta),
    };
    for &eps in schedule {
        let ft_ba = c_xy.softmin(eps, &exponent(beta, &p.g_ab, eps));
        let gt_ab = c_yx.softmin(eps, &exponent(alpha, &p.f_ba, eps));
        let ft_aa = c_xx.softmin(eps, &exponent(alpha, &p.f_aa, eps));
        let gt_bb = c_yy.softmin(eps, &exponent(beta, &p.g_bb, eps));
        p = Potentials {
            f_ba: average(&p.f_ba, &ft_ba),
            g_ab: average(&p.g_ab, &gt_ab),
            f_aa: average(&p.f_aa, &ft_aa),
            g_bb: average(&p.g_bb, &gt_bb),
        };
    }
    p
}
