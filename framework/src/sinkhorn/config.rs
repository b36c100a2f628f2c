//! The two knobs of geomloss's `SamplesLoss("sinkhorn", p=2, ...)`: the blur and the ε-scaling ratio.

use serde::{Deserialize, Serialize};

/// Settings of the debiased Sinkhorn divergence, as in geomloss's
/// `SamplesLoss("sinkhorn", p=2, blur=…, scaling=…, debias=True)`.
///
/// The exponent is fixed to `p = 2` (cost `½‖x − y‖²`, temperature `ε = blur²`), the divergence is
/// always debiased, and the marginal constraints are always exact (`reach = None`, balanced OT).
/// Deserializes from YAML such as `{blur: 1e-4, scaling: 0.5}`; a missing field takes geomloss's
/// default and an unknown one is an error, so debiasers can embed it in their settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkhornConfig {
    /// The final blurring scale: the entropic temperature is `ε = blur²`. Must be positive.
    /// Defaults to geomloss's 0.05.
    pub blur: f64,
    /// The ratio between two successive blur scales of the ε-scaling descent, in (0, 1): values near 1
    /// mean more, finer iterations. Defaults to geomloss's 0.5.
    pub scaling: f64,
}

impl Default for SinkhornConfig {
    fn default() -> Self {
        Self {
            blur: 0.05,
            scaling: 0.5,
        }
    }
}

impl SinkhornConfig {
    /// The final temperature `ε = blur²`.
    pub fn epsilon(&self) -> f64 {
        self.blur * self.blur
    }

    /// Checks that `blur` is finite and positive and that `scaling` lies strictly between 0 and 1.
    pub fn validate(&self) -> candle_core::Result<()> {
        if !(self.blur.is_finite() && self.blur > 0.0) {
            candle_core::bail!("sinkhorn: blur must be a finite positive number, got {}", self.blur);
        }
        if !(self.scaling > 0.0 && self.scaling < 1.0) {
            candle_core::bail!(
                "sinkhorn: scaling must lie strictly between 0 and 1, got {}",
                self.scaling
            );
        }
        Ok(())
    }

    /// geomloss's ε-scaling schedule for two clouds whose bounding box has the given diameter:
    /// `[diameter²] + [exp(e) for e in numpy.arange(2 ln diameter, 2 ln blur, 2 ln scaling)] + [blur²]`.
    ///
    /// `arange` includes its start, so `diameter²` appears twice at the head; the list then shrinks by
    /// `scaling²` per step and ends at exactly `blur²`. The `arange` values are reproduced the way numpy
    /// computes them (length `⌈(stop − start)/step⌉`, element `i ≥ 2` = `start + i·((start + step) − start)`).
    /// A zero diameter (every point identical), on which geomloss fails, is replaced by `blur`.
    pub fn epsilon_schedule(&self, diameter: f64) -> Vec<f64> {
        let diameter = if diameter > 0.0 { diameter } else { self.blur };
        let start = 2.0 * diameter.ln();
        let step = 2.0 * self.scaling.ln();
        let steps = ((2.0 * self.blur.ln() - start) / step).ceil().max(0.0) as usize;
        let delta = (start + step) - start;
        let mut schedule = Vec::with_capacity(steps + 2);
        schedule.push(diameter * diameter);
        schedule.extend((0..steps).map(|i| {
            match i {
                0 => start,
                1 => start + step,
                _ => start + i as f64 * delta,
            }
            .exp()
        }));
        schedule.push(self.epsilon());
        schedule
    }
}
