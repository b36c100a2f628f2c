//! GeZO, DNE's zeroth-order black-box optimiser: every step samples `candidates` Gaussian
//! directions `δ_k ~ N(0, s² I)` over all the vars jointly, evaluates the loss at the displaced
//! points on the step's `batches_per_candidate` mini-batch slots, keeps the best direction and moves
//! along it through a momentum buffer `v`. It only evaluates the objective and never calls
//! `backward`.
//!
//! One algorithm with every choice exposed as a switch; `variant` only picks the switches'
//! defaults, and a switch given explicitly overrides its variant's default:
//!
//! ```yaml
//! # The released code's behaviour (the default variant), with its defaults spelled out.
//! optimizer:
//!   kind: gezo
//!   variant: as-coded
//!   candidates: 10
//!   step_size: 0.03
//!   momentum: 0.9
//!   batches_per_candidate: 2
//! ```
//!
//! ```yaml
//! # The algorithm the paper describes (its Fig. 1d), with one switch overridden.
//! optimizer:
//!   kind: gezo
//!   variant: paper
//!   step_decay: 0.95
//!   candidate_loss: per-batch
//! ```
//!
//! # The released code versus the paper
//!
//! DNE's released `engine_finetune.py` (lines 159–210) runs, per step, with `eps0` the current
//! vars: `v = 0`; `s = init_step`; for each of the `C` candidates `δ_k = s · randn`, for each batch
//! `i`, for `sign` in `(−1, +1)`: evaluate the loss at `eps0 + sign · δ_k`; then `v = μ v + δ_best`
//! and `eps = eps0 + v`. Compared with the paper's description, that code
//!
//! 1. resets its list of losses inside the sign loop, so only `+δ_k` competes: the `−δ_k`
//!    evaluation is wasted but still costs a forward pass (`both_signs: false`,
//!    `query_discarded_sign: true`);
//! 2. lets every (candidate, batch) single-batch loss compete on its own, a greedy argmin over
//!    pairs (`candidate_loss: per-batch`) instead of a candidate's loss averaged over the batches
//!    (`candidate_loss: mean`);
//! 3. re-creates the velocity as zeros at every step, so momentum has no effect and the step moves
//!    by exactly `δ_best` (`persist_velocity: false`);
//! 4. always moves to the best candidate, even when it is worse than the current point, and so
//!    never decays the step size (`accept_only_if_improved: false`).
//!
//! The paper evaluates both signs `d ∈ {−1, +1}`, scores a candidate by its mean loss over the
//! step's batches, keeps `v ← μ v + d_best δ_best` across steps and moves `eps ← eps + v` only when
//! the best candidate's loss is below the current point's loss on the same batches (evaluated
//! first, `batches_per_candidate` extra forward passes); otherwise the vars do not move and the
//! step size decays, `s ← s · step_decay`, persisting across steps.
//!
//! The paper leaves open where a candidate is evaluated once the velocity is not zero, and what a
//! rejection does to the velocity. Read literally (candidates at `eps + d δ`, the vars then moved
//! to the unevaluated `eps + μ v + d δ`), the acceptance test checks a point the step does not go
//! to: on `0.5‖x‖²` in 50 dimensions from `x = 1` (loss 25) no step is ever rejected, the velocity
//! wanders and the loss stalls between 5 and 11 (300 steps, three seeds). So the `paper` variant
//! evaluates each candidate where the step would move, `eps + μ v + d δ`
//! (`momentum_lookahead: true`), which makes the accepted point an evaluated one and the loss
//! non-increasing, and zeroes the velocity on a rejection (`reset_velocity_on_reject: true`);
//! keeping it would centre every later candidate on the rejected `eps + μ v` while `s` decays
//! towards zero, a dead end (the same problem stalls at 4–7 with `s → 0`). With both switches the
//! problem reaches 1e-4 in 300 steps. Set both to false for the literal reading.
//!
//! | setting                    | `as-coded` | `paper` |
//! |----------------------------|------------|---------|
//! | `both_signs`               | false      | true    |
//! | `query_discarded_sign`     | true       | false   |
//! | `candidate_loss`           | per-batch  | mean    |
//! | `persist_velocity`         | false      | true    |
//! | `accept_only_if_improved`  | false      | true    |
//! | `momentum_lookahead`       | false      | true    |
//! | `reset_velocity_on_reject` | false      | true    |
//!
//! Other choices this implementation makes where neither source decides:
//!
//! - With `per-batch` scoring and `accept_only_if_improved`, the winner (candidate, slot) is
//!   compared with the current point's loss on that same slot.
//! - Ties keep the earliest candidate; a NaN or infinite loss never wins, and a step in which no
//!   candidate has a finite loss fails. A current point whose loss is NaN counts as beaten.
//! - The step size persists in the optimiser (schedules set it through `set_learning_rate`); it
//!   only changes by itself on a rejected step, which `as-coded` never has.
//! - The reported loss is the winner's (a single-batch loss with `per-batch` scoring), or the
//!   current point's on a rejected step.
//!
//! Forward passes per step: `candidates × batches_per_candidate × (2 if both_signs or
//! query_discarded_sign else 1) + (batches_per_candidate if accept_only_if_improved else 0)`, that
//! is 40 for `as-coded` and 42 for `paper` with the default settings. Within a step the
//! evaluations run candidate by candidate, `−δ_k` before `+δ_k`, slot `0..batches_per_candidate`
//! for each point (the released code loops over batches outside the signs: the same (point,
//! slot) pairs in another order).
//!
//! The directions come from a `StdRng` seeded with the optimiser's seed: standard normal `f32`
//! draws, var by var, converted to each var's dtype and device and scaled by `s`, so a seed gives
//! the same directions on every device.

use candle_core::{Tensor, Var};
use fairlab_framework::optimizer::{scalar_loss, Objective};
use fairlab_framework::{ConfigError, Optimizer, StepReport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::Deserialize;

/// Which source's behaviour the switches default to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// DNE's released code (`engine_finetune.py`), bugs included.
    #[default]
    AsCoded,
    /// The algorithm the DNE paper describes.
    Paper,
}

/// How a candidate direction is scored against the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateLoss {
    /// Every (candidate, batch slot) single-batch loss competes on its own (the released code).
    PerBatch,
    /// A candidate's loss is its mean over the step's batch slots (the paper).
    Mean,
}

/// `gezo` settings as written in YAML; the unset switches take their [`Variant`]'s defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GezoConfig {
    /// The defaults of the switches: `as-coded` (default) or `paper`.
    #[serde(default)]
    pub variant: Variant,
    /// Gaussian directions sampled per step (`C`), at least 1.
    #[serde(default = "default_candidates")]
    pub candidates: usize,
    /// Initial step size `s`: the per-element standard deviation of a direction; positive.
    #[serde(default = "default_step_size")]
    pub step_size: f64,
    /// Momentum `μ` of the velocity, in `[0, 1)`.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Mini-batch slots each candidate is evaluated on (the same slots for every candidate), at
    /// least 1.
    #[serde(default = "default_batches_per_candidate")]
    pub batches_per_candidate: usize,
    /// Let both `+δ` and `−δ` compete (as-coded false, paper true).
    pub both_signs: Option<bool>,
    /// When only `+δ` competes, still evaluate `−δ` and discard its loss, reproducing the released
    /// code's query cost (as-coded true, paper false); ignored when `both_signs` is true.
    pub query_discarded_sign: Option<bool>,
    /// How candidates are scored (as-coded `per-batch`, paper `mean`).
    pub candidate_loss: Option<CandidateLoss>,
    /// Keep the velocity across steps (as-coded false: re-created as zeros every step; paper true).
    pub persist_velocity: Option<bool>,
    /// Move only when the best candidate beats the current point's loss, evaluated on the same
    /// slots (as-coded false: always move; paper true).
    pub accept_only_if_improved: Option<bool>,
    /// Evaluate a candidate where the step would move, `eps + μ v + d δ`, and move exactly there,
    /// instead of evaluating `eps + d δ` and moving to `eps + μ v + d δ` (as-coded false, paper
    /// true); only matters with `persist_velocity`.
    pub momentum_lookahead: Option<bool>,
    /// Zero the velocity on a rejected step instead of keeping it (as-coded false, paper true).
    pub reset_velocity_on_reject: Option<bool>,
    /// Factor the step size is multiplied by after a rejected step, in `(0, 1]`.
    #[serde(default = "default_step_decay")]
    pub step_decay: f64,
}

fn default_candidates() -> usize {
    10
}
fn default_step_size() -> f64 {
    0.03
}
fn default_momentum() -> f64 {
    0.9
}
fn default_batches_per_candidate() -> usize {
    2
}
fn default_step_decay() -> f64 {
    0.95
}

/// Validated `gezo` settings with every switch resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GezoSettings {
    /// Directions sampled per step.
    pub candidates: usize,
    /// Initial step size.
    pub step_size: f64,
    /// Momentum of the velocity.
    pub momentum: f64,
    /// Mini-batch slots per candidate.
    pub batches_per_candidate: usize,
    /// Both signs of a direction compete.
    pub both_signs: bool,
    /// The non-competing `−δ` is evaluated anyway (only when `both_signs` is false).
    pub query_discarded_sign: bool,
    /// How candidates are scored.
    pub candidate_loss: CandidateLoss,
    /// The velocity persists across steps.
    pub persist_velocity: bool,
    /// Only improving steps move the vars.
    pub accept_only_if_improved: bool,
    /// Step-size factor after a rejected step.
    pub step_decay: f64,
    /// Candidates are evaluated at `eps + μ v + d δ`, where the step moves.
    pub momentum_lookahead: bool,
    /// A rejected step zeroes the velocity.
    pub reset_velocity_on_reject: bool,
}

impl GezoConfig {
    /// Check the ranges and resolve the switches against the variant. `path` is the section's
    /// dotted path (e.g. `debiaser.optimizer`), used to key the errors.
    pub fn resolve(&self, path: &str) -> Result<GezoSettings, ConfigError> {
        let key = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        };
        let check = |ok: bool, name: &str, expected: &str, got: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::at_key(key(name), format!("must be {expected}, got {got}")))
            }
        };
        check(
            self.candidates >= 1,
            "candidates",
            "at least 1",
            self.candidates.to_string(),
        )?;
        let s = self.step_size;
        check(
            s.is_finite() && s > 0.0,
            "step_size",
            "a finite positive number",
            s.to_string(),
        )?;
        let mu = self.momentum;
        check((0.0..1.0).contains(&mu), "momentum", "in [0, 1)", mu.to_string())?;
        let b = self.batches_per_candidate;
        check(b >= 1, "batches_per_candidate", "at least 1", b.to_string())?;
        let decay = self.step_decay;
        check(
            decay > 0.0 && decay <= 1.0,
            "step_decay",
            "in (0, 1]",
            decay.to_string(),
        )?;
        let paper = self.variant == Variant::Paper;
        let both_signs = self.both_signs.unwrap_or(paper);
        Ok(GezoSettings {
            candidates: self.candidates,
            step_size: s,
            momentum: mu,
            batches_per_candidate: b,
            both_signs,
            query_discarded_sign: !both_signs && self.query_discarded_sign.unwrap_or(!paper),
            candidate_loss: self.candidate_loss.unwrap_or(if paper {
                CandidateLoss::Mean
            } else {
                CandidateLoss::PerBatch
            }),
            persist_velocity: self.persist_velocity.unwrap_or(paper),
            accept_only_if_improved: self.accept_only_if_improved.unwrap_or(paper),
            step_decay: decay,
            momentum_lookahead: self.momentum_lookahead.unwrap_or(paper),
            reset_velocity_on_reject: self.reset_velocity_on_reject.unwrap_or(paper),
        })
    }
}

/// The winning candidate of a step so far.
struct Best {
    /// The sampled direction `δ_k`, before its sign.
    direction: Vec<Tensor>,
    /// The sign `d` the direction won with.
    sign: f64,
    /// Its score.
    loss: f64,
    /// The slot of its single-batch loss (`per-batch` scoring), `None` for a mean over slots.
    slot: Option<usize>,
}

/// The GeZO optimiser (see the module documentation).
pub struct Gezo {
    settings: GezoSettings,
    vars: Vec<Var>,
    rng: StdRng,
    /// The current step size `s`.
    step_size: f64,
    /// The velocity `v`, stored only with `persist_velocity`; `None` stands for zero.
    velocity: Option<Vec<Tensor>>,
}

impl Gezo {
    /// Optimise `vars` (floating-point, at least one) with directions drawn from `seed`.
    pub fn new(settings: GezoSettings, vars: Vec<Var>, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(!vars.is_empty(), "gezo needs at least one var to optimise");
        if let Some(var) = vars.iter().find(|v| !v.dtype().is_float()) {
            anyhow::bail!(
                "gezo only optimises floating-point vars, got one of dtype {:?}",
                var.dtype()
            );
        }
        Ok(Self {
            settings,
            vars,
            rng: StdRng::seed_from_u64(seed),
            step_size: settings.step_size,
            velocity: None,
        })
    }

    /// A direction `s · z`, `z` standard normal, with one tensor per var.
    fn sample_direction(&mut self) -> anyhow::Result<Vec<Tensor>> {
        let s = self.step_size;
        let rng = &mut self.rng;
        self.vars
            .iter()
            .map(|var| {
                let z: Vec<f32> = (0..var.elem_count()).map(|_| rng.sample(StandardNormal)).collect();
                Ok((Tensor::from_vec(z, var.shape(), var.device())?.to_dtype(var.dtype())? * s)?)
            })
            .collect()
    }

    /// Set the vars to `values` (one tensor per var).
    fn set_vars(&self, values: &[Tensor]) -> anyhow::Result<()> {
        for (var, value) in self.vars.iter().zip(values) {
            var.set(value)?;
        }
        Ok(())
    }

    /// Sample the step's candidates around `centre`, evaluate them and return the winner.
    fn best_candidate(
        &mut self,
        objective: &mut Objective<'_>,
        centre: &[Tensor],
        forward_passes: &mut u64,
    ) -> anyhow::Result<Best> {
        let cfg = self.settings;
        let signs: &[f64] = if cfg.both_signs || cfg.query_discarded_sign {
            &[-1.0, 1.0]
        } else {
            &[1.0]
        };
        let mut best: Option<Best> = None;
        for _ in 0..cfg.candidates {
            let direction = self.sample_direction()?;
            for &sign in signs {
                self.set_vars(&displaced(centre, &direction, sign)?)?;
                let losses = self.slot_losses(objective, forward_passes)?;
                if sign < 0.0 && !cfg.both_signs {
                    continue;
                }
                let scores: Vec<(f64, Option<usize>)> = match cfg.candidate_loss {
                    CandidateLoss::PerBatch => losses.iter().enumerate().map(|(b, &l)| (l, Some(b))).collect(),
                    CandidateLoss::Mean => vec![(mean(&losses), None)],
                };
                for (loss, slot) in scores {
                    if loss < best.as_ref().map_or(f64::INFINITY, |b| b.loss) {
                        best = Some(Best {
                            direction: direction.clone(),
                            sign,
                            loss,
                            slot,
                        });
                    }
                }
            }
        }
        best.ok_or_else(|| anyhow::anyhow!("gezo: no candidate direction had a finite loss"))
    }

    /// The loss at the vars' current values on every slot of the step.
    fn slot_losses(&self, objective: &mut Objective<'_>, forward_passes: &mut u64) -> anyhow::Result<Vec<f64>> {
        (0..self.settings.batches_per_candidate)
            .map(|slot| {
                *forward_passes += 1;
                scalar_loss(&objective(slot)?)
            })
            .collect()
    }
}

/// `origin + scale · direction`, tensor by tensor.
fn displaced(origin: &[Tensor], direction: &[Tensor], scale: f64) -> anyhow::Result<Vec<Tensor>> {
    origin
        .iter()
        .zip(direction)
        .map(|(o, d)| Ok((o + (d * scale)?)?))
        .collect()
}

/// `factor · tensors`, tensor by tensor.
fn scaled(tensors: &[Tensor], factor: f64) -> anyhow::Result<Vec<Tensor>> {
    tensors.iter().map(|t| Ok((t * factor)?)).collect()
}

/// The arithmetic mean of the slot losses.
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

impl Optimizer for Gezo {
    fn kind(&self) -> &str {
        "gezo"
    }

    fn step(&mut self, objective: &mut Objective<'_>) -> anyhow::Result<StepReport> {
        let cfg = self.settings;
        let mut forward_passes = 0;
        let origin = self
            .vars
            .iter()
            .map(|v| v.as_tensor().detach().copy())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let baseline = if cfg.accept_only_if_improved {
            Some(self.slot_losses(objective, &mut forward_passes)?)
        } else {
            None
        };
        // μ v, the part of the move the velocity contributes (none before the first accepted step
        // and without a persistent velocity, which is then never stored).
        let carried = self.velocity.as_deref().map(|v| scaled(v, cfg.momentum)).transpose()?;
        let centre = match &carried {
            Some(c) if cfg.momentum_lookahead => displaced(&origin, c, 1.0)?,
            _ => origin.clone(),
        };
        let best = self.best_candidate(objective, &centre, &mut forward_passes)?;
        let current = baseline.map(|losses| best.slot.map_or_else(|| mean(&losses), |b| losses[b]));
        let loss = match current {
            Some(current) if best.loss >= current => {
                self.set_vars(&origin)?;
                self.step_size *= cfg.step_decay;
                if cfg.reset_velocity_on_reject {
                    self.velocity = None;
                }
                tracing::debug!(
                    current,
                    candidate = best.loss,
                    step_size = self.step_size,
                    "gezo rejected a step"
                );
                current
            }
            _ => {
                let step = scaled(&best.direction, best.sign)?;
                let velocity = match &carried {
                    Some(c) => displaced(c, &step, 1.0)?,
                    None => step,
                };
                if cfg.momentum_lookahead {
                    self.set_vars(&displaced(&centre, &best.direction, best.sign)?)?;
                } else {
                    self.set_vars(&displaced(&origin, &velocity, 1.0)?)?;
                }
                if cfg.persist_velocity {
                    self.velocity = Some(velocity);
                }
                best.loss
            }
        };
        Ok(StepReport {
            loss,
            forward_passes,
            backward_passes: 0,
        })
    }

    fn learning_rate(&self) -> f64 {
        self.step_size
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.step_size = lr;
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }

    fn batches_per_step(&self) -> usize {
        self.settings.batches_per_candidate
    }
}
