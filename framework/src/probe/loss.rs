//! The per-batch loss of probe training: binary cross-entropy on logits, and the [`BatchLoss`]
//! interface through which methods substitute their own (group DRO, Sinkhorn-regularised, ...).

use candle_core::Tensor;

use super::LinearProbe;

/// Numerically stable per-sample binary cross-entropy on logits, `[B]`:
/// `max(x, 0) - x*y + log(1 + exp(-|x|))`.
pub fn bce_per_sample(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    (logits.relu()? - (logits * targets)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// [`bce_per_sample`] averaged, with optional per-sample weights.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor, weights: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let per_sample = bce_per_sample(logits, targets)?;
    match weights {
        None => per_sample.mean_all(),
        Some(w) => (per_sample * w)?.sum_all()? / w.sum_all()?.to_scalar::<f32>()? as f64,
    }
}

/// One mini-batch as a [`BatchLoss`] sees it, at the parameter values being evaluated.
pub struct Batch<'a> {
    /// The probe being trained. A loss that needs predictions on other samples (e.g. a
    /// Sinkhorn term comparing this batch with a batch of another group) computes them with
    /// `probe.logits(&features.index_select(&idx, 0)?)`, which stays differentiable.
    pub probe: &'a LinearProbe,
    /// Every training sample's features `[N, D]`, in the order of the labels.
    pub features: &'a Tensor,
    /// The batch's samples, as indices into the training set (the rows of `features`); a group id
    /// or any other per-sample property is looked up through them.
    pub indices: &'a [u32],
    /// The probe's logits on the batch `[B]`.
    pub logits: &'a Tensor,
    /// The batch's binary targets `[B]` (f32, 0 or 1).
    pub targets: &'a Tensor,
}

/// The loss that probe training minimises, batch by batch. It may keep state across batches (the
/// group weights of group DRO): gradient optimisers evaluate it once per step; zeroth-order ones
/// several times per step, each evaluation counting as one call.
pub trait BatchLoss {
    /// The scalar loss on `batch`, differentiable with respect to the probe's vars.
    fn loss(&mut self, batch: &Batch<'_>) -> anyhow::Result<Tensor>;

    /// Named values to log at the end of each epoch (after its last step), e.g. group weights.
    /// Names must be MLflow-legal; the training loop prefixes them for an auxiliary model.
    fn epoch_values(&mut self) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// The mean binary cross-entropy of the batch: plain ERM.
#[derive(Debug, Clone, Copy, Default)]
pub struct MeanBce;

impl BatchLoss for MeanBce {
    fn loss(&mut self, batch: &Batch<'_>) -> anyhow::Result<Tensor> {
        Ok(bce_with_logits(batch.logits, batch.targets, None)?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn stable_bce_matches_the_naive_formula_and_survives_large_logits() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[-2.0f32, 0.5, 3.0], &dev).unwrap();
        let y = Tensor::new(&[0.0f32, 1.0, 1.0], &dev).unwrap();
        let got = bce_with_logits(&x, &y, None).unwrap().to_scalar::<f32>().unwrap() as f64;
        let naive: f64 = [(-2.0f64, 0.0f64), (0.5, 1.0), (3.0, 1.0)]
            .iter()
            .map(|&(x, y)| {
                let p = 1.0 / (1.0 + (-x).exp());
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 3.0;
        assert!((got - naive).abs() < 1e-6, "{got} vs {naive}");
        let big = Tensor::new(&[500.0f32, -500.0], &dev).unwrap();
        let t = Tensor::new(&[0.0f32, 1.0], &dev).unwrap();
        let loss = bce_with_logits(&big, &t, None).unwrap().to_scalar::<f32>().unwrap();
        assert!((loss - 500.0).abs() < 1e-3, "{loss}");
        let w = Tensor::new(&[1.0f32, 3.0], &dev).unwrap();
        let weighted = bce_with_logits(&big, &t, Some(&w)).unwrap().to_scalar::<f32>().unwrap();
        assert!((weighted - 500.0).abs() < 1e-3);
    }
}
