//! The two-layer feed-forward block `fc2(act(fc1(x)))`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::Activation;

/// The transformer MLP with tensors `fc1.{weight,bias}` and `fc2.{weight,bias}`.
#[derive(Debug, Clone)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl Mlp {
    /// Load `fc1` (`hidden_size -> intermediate_size`) and `fc2` (back) from `vb`.
    pub fn new(vb: VarBuilder, hidden_size: usize, intermediate_size: usize, activation: Activation) -> Result<Self> {
        Ok(Self {
            fc1: candle_nn::linear(hidden_size, intermediate_size, vb.pp("fc1"))?,
            fc2: candle_nn::linear(intermediate_size, hidden_size, vb.pp("fc2"))?,
            activation,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        xs.apply(&self.fc1)?.apply(&self.activation)?.apply(&self.fc2)
    }
}
