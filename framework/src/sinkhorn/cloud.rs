//! A weighted point cloud, validated and copied to the CPU in f64 for the Sinkhorn loop.

use candle_core::{DType, Tensor};

/// How far the weights of a cloud may sum from 1 (f32 weights round to about 1e-7).
const WEIGHT_SUM_TOLERANCE: f64 = 1e-5;

/// geomloss's `log_weights`: the log of a zero weight is clamped to this instead of −∞.
const LOG_ZERO_WEIGHT: f64 = -100_000.0;

/// A weighted point cloud: the input tensors for the differentiable step and detached f64 copies for the loop.
pub(crate) struct Cloud {
    /// The points as an `[n, D]` f64 tensor on the input's device, still attached to the input's graph.
    pub(crate) points: Tensor,
    /// The weights as an `[n]` f64 tensor on the same device (attached to the given weights, if any).
    pub(crate) weights: Tensor,
    /// The points, row-major `n × D`, detached.
    pub(crate) coords: Vec<f64>,
    /// `log a_i` for every point (zero weights give −100 000 like geomloss).
    pub(crate) log_weights: Vec<f64>,
    /// The dimension `D` of the points.
    pub(crate) dim: usize,
}

impl Cloud {
    /// Validates `points` (`[n, D]`, or `[n]` read as `n × 1`; nonempty and finite) and `weights` (`[n]` on the
    /// same device, finite, nonnegative, summing to 1; `None` = uniform). `name` is the argument's name for errors.
    pub(crate) fn new(name: &str, points: &Tensor, weights: Option<&Tensor>) -> candle_core::Result<Self> {
        let points = match points.rank() {
            1 => points.unsqueeze(1)?,
            2 => points.clone(),
            _ => candle_core::bail!(
                "sinkhorn: {name} must be a [n, D] point cloud (or [n] for 1-D points), got shape {:?}",
                points.dims()
            ),
        };
        let (n, dim) = points.dims2()?;
        if n == 0 || dim == 0 {
            candle_core::bail!(
                "sinkhorn: {name} must hold at least one point of dimension ≥ 1, got shape [{n}, {dim}]"
            );
        }
        let points = points.to_dtype(DType::F64)?;
        let coords = points.flatten_all()?.to_vec1::<f64>()?;
        if let Some(bad) = coords.iter().position(|c| !c.is_finite()) {
            candle_core::bail!(
                "sinkhorn: {name}[{}, {}] is {}, not finite",
                bad / dim,
                bad % dim,
                coords[bad]
            );
        }
        let weights = match weights {
            Some(w) => Self::given_weights(name, w, n, &points)?,
            None => Tensor::full(1.0 / n as f64, n, points.device())?,
        };
        let log_weights = weights
            .to_vec1::<f64>()?
            .into_iter()
            .map(|w| if w > 0.0 { w.ln() } else { LOG_ZERO_WEIGHT })
            .collect();
        Ok(Self {
            points,
            weights,
            coords,
            log_weights,
            dim,
        })
    }

    /// The number of points.
    pub(crate) fn len(&self) -> usize {
        self.log_weights.len()
    }

    /// Point `i` as a slice of `D` coordinates.
    pub(crate) fn point(&self, i: usize) -> &[f64] {
        &self.coords[i * self.dim..(i + 1) * self.dim]
    }

    /// Checks explicit weights against the `n` points and converts them to f64 on the points' device.
    fn given_weights(name: &str, weights: &Tensor, n: usize, points: &Tensor) -> candle_core::Result<Tensor> {
        if weights.dims() != [n] {
            candle_core::bail!(
                "sinkhorn: the weights of {name} must have shape [{n}] (one per point), got {:?}",
                weights.dims()
            );
        }
        if !weights.device().same_device(points.device()) {
            candle_core::bail!("sinkhorn: the weights of {name} are on another device than {name}");
        }
        let weights = weights.to_dtype(DType::F64)?;
        let values = weights.to_vec1::<f64>()?;
        if let Some(bad) = values.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            candle_core::bail!(
                "sinkhorn: weight {bad} of {name} is {}, not a finite nonnegative number",
                values[bad]
            );
        }
        let sum: f64 = values.iter().sum();
        if (sum - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            candle_core::bail!("sinkhorn: the weights of {name} must sum to 1, got {sum}");
        }
        Ok(weights)
    }
}

/// Validates the two clouds of a divergence: each on its own, then that they share a device and a dimension.
pub(crate) fn cloud_pair(
    x: &Tensor,
    y: &Tensor,
    a: Option<&Tensor>,
    b: Option<&Tensor>,
) -> candle_core::Result<(Cloud, Cloud)> {
    if !x.device().same_device(y.device()) {
        candle_core::bail!("sinkhorn: x and y are on different devices");
    }
    let (x, y) = (Cloud::new("x", x, a)?, Cloud::new("y", y, b)?);
    if x.dim != y.dim {
        candle_core::bail!(
            "sinkhorn: x has points of dimension {} but y of dimension {}",
            x.dim,
            y.dim
        );
    }
    Ok((x, y))
}
