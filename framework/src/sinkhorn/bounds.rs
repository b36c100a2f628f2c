//! The bounding box of two point clouds, which sets the start of the ε-scaling schedule.

use candle_core::Tensor;

use super::cloud::{cloud_pair, Cloud};

/// The per-coordinate minimum and maximum over the points of two clouds.
pub(crate) struct BoundingBox {
    /// `(min, max)` of every coordinate.
    ranges: Vec<(f64, f64)>,
}

impl BoundingBox {
    /// The smallest axis-aligned box holding every point of `x` and of `y` (same dimension).
    pub(crate) fn of(x: &Cloud, y: &Cloud) -> Self {
        let ranges = (0..x.dim)
            .map(|d| {
                let coordinate = x.coords.iter().chain(&y.coords).skip(d).step_by(x.dim);
                coordinate.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
                    (lo.min(c), hi.max(c))
                })
            })
            .collect();
        Self { ranges }
    }

    /// `‖max − min‖₂`, geomloss's `max_diameter`.
    pub(crate) fn diameter(&self) -> f64 {
        self.ranges
            .iter()
            .map(|(lo, hi)| (hi - lo) * (hi - lo))
            .sum::<f64>()
            .sqrt()
    }

    /// The centre of the box, one value per coordinate.
    pub(crate) fn center(&self) -> Vec<f64> {
        self.ranges.iter().map(|(lo, hi)| 0.5 * (lo + hi)).collect()
    }
}

/// The diameter geomloss starts its ε-scaling from: the length of the diagonal of the bounding box of `x ∪ y`
/// (`[n, D]` and `[m, D]`, or `[n]` and `[m]` for 1-D points), validated like [`super::sinkhorn_divergence`].
pub fn bounding_diameter(x: &Tensor, y: &Tensor) -> candle_core::Result<f64> {
    let (x, y) = cloud_pair(x, y, None, None)?;
    Ok(BoundingBox::of(&x, &y).diameter())
}
