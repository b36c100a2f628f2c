//! The debiased Sinkhorn divergence of geomloss, differentiable in candle (FairCLIP's distribution-matching loss).
//!
//! [`sinkhorn_divergence`] follows geomloss's `SamplesLoss("sinkhorn", p=2, blur, scaling, debias=True)` step for
//! step: cost `½‖x − y‖²`, `ε = blur²`, the ε-scaling schedule of [`SinkhornConfig::epsilon_schedule`] starting
//! from the [`bounding_diameter`] of the two clouds, symmetric averaged log-domain updates, a final non-averaged
//! update, and the envelope-theorem gradient. The loop works on detached f64 copies on the CPU; only the final
//! update is built from candle ops, on the input's device. Time and memory are O(n·m + n² + m²).

mod bounds;
mod cloud;
mod config;
mod divergence;
mod solver;

pub use bounds::bounding_diameter;
pub use config::SinkhornConfig;
pub use divergence::sinkhorn_divergence;
