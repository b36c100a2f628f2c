//! The `Optimizer` plugin kind: one interface for gradient methods (SGD, Adam, AdamW) and for
//! zeroth-order methods (GeZO) that only evaluate the loss at perturbed parameters.
//!
//! An optimizer owns the [`Var`]s it updates (as in candle-nn: `new(vars, cfg)`). Each
//! [`Optimizer::step`] receives the objective as a closure that evaluates the loss at the *current*
//! values of those vars on one of the step's mini-batches and returns a scalar tensor. A gradient
//! method calls it once (batch slot 0) and backpropagates; a zeroth-order method sets the vars to
//! perturbed values, calls it several times (on slots `0..batches_per_step()`) without ever calling
//! `backward`, and leaves the vars at the accepted point.

use candle_core::{Tensor, Var};

/// The loss at the current parameter values on mini-batch slot `b` of the step (`b <
/// batches_per_step()`): a scalar tensor (rank 0 or one element). The caller decides which data a
/// slot stands for; calling it twice with the same slot must evaluate the same data.
pub type Objective<'a> = dyn FnMut(usize) -> anyhow::Result<Tensor> + 'a;

/// What one optimisation step did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepReport {
    /// The loss that the step is accountable for: for gradient methods the loss before the
    /// update, for zeroth-order methods the loss of the accepted candidate.
    pub loss: f64,
    /// How many times the objective was evaluated (forward passes).
    pub forward_passes: u64,
    /// How many backward passes were run (always 0 for zeroth-order methods).
    pub backward_passes: u64,
}

/// An optimiser over a fixed set of variables.
pub trait Optimizer: Send {
    /// The plugin kind, e.g. `adamw`.
    fn kind(&self) -> &str;

    /// Perform one step on the owned vars, evaluating `objective` as often as the method needs.
    fn step(&mut self, objective: &mut Objective<'_>) -> anyhow::Result<StepReport>;

    /// Current learning rate (step size for zeroth-order methods).
    fn learning_rate(&self) -> f64;

    /// Change the learning rate (used by schedules).
    fn set_learning_rate(&mut self, lr: f64);

    /// The vars this optimiser updates.
    fn vars(&self) -> &[Var];

    /// How many distinct mini-batches one [`Optimizer::step`] evaluates (the slots its objective
    /// is called with). 1 for gradient methods.
    fn batches_per_step(&self) -> usize {
        1
    }
}

/// Read a scalar loss tensor as `f64`, failing clearly when it is not a single element.
pub fn scalar_loss(loss: &Tensor) -> anyhow::Result<f64> {
    let n = loss.elem_count();
    anyhow::ensure!(
        n == 1,
        "the objective must return a scalar loss, got shape {:?}",
        loss.shape()
    );
    Ok(loss
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?[0])
}
