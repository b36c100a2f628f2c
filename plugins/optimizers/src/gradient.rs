//! The shared part of every gradient method: evaluate the objective once, backpropagate, and hand
//! each var's gradient to a per-tensor update rule.

use candle_core::{Tensor, Var};
use fairlab_framework::optimizer::{scalar_loss, Objective};
use fairlab_framework::{Optimizer, StepReport};

/// A per-tensor update rule with its own state (momentum buffers, moments).
pub trait UpdateRule: Send {
    /// Current learning rate.
    fn learning_rate(&self) -> f64;
    /// Change the learning rate.
    fn set_learning_rate(&mut self, lr: f64);
    /// Called once per step before the per-var updates (e.g. to advance the step counter).
    fn begin_step(&mut self) {}
    /// Update var number `index` given its gradient.
    fn update(&mut self, index: usize, var: &Var, grad: &Tensor) -> anyhow::Result<()>;
}

/// An [`Optimizer`] that backpropagates the objective and applies an [`UpdateRule`].
pub struct GradientOptimizer<R> {
    kind: &'static str,
    vars: Vec<Var>,
    rule: R,
}

impl<R: UpdateRule> GradientOptimizer<R> {
    /// Optimise `vars` with `rule`.
    pub fn new(kind: &'static str, vars: Vec<Var>, rule: R) -> Self {
        Self { kind, vars, rule }
    }
}

impl<R: UpdateRule> Optimizer for GradientOptimizer<R> {
    fn kind(&self) -> &str {
        self.kind
    }

    fn step(&mut self, objective: &mut Objective<'_>) -> anyhow::Result<StepReport> {
        let loss = objective(0)?;
        let value = scalar_loss(&loss)?;
        let grads = loss.backward()?;
        self.rule.begin_step();
        for (i, var) in self.vars.iter().enumerate() {
            if let Some(grad) = grads.get(var) {
                self.rule.update(i, var, grad)?;
            }
        }
        Ok(StepReport {
            loss: value,
            forward_passes: 1,
            backward_passes: 1,
        })
    }

    fn learning_rate(&self) -> f64 {
        self.rule.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.rule.set_learning_rate(lr)
    }

    fn vars(&self) -> &[Var] {
        &self.vars
    }
}
