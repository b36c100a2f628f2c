//! SGD with momentum, dampening, Nesterov and L2 weight decay, as `torch.optim.SGD`.

use candle_core::{Tensor, Var};
use serde::Deserialize;

use crate::gradient::UpdateRule;

/// `sgd` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    #[serde(default)]
    pub momentum: f64,
    /// Dampening of the momentum.
    #[serde(default)]
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0).
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
}

/// The SGD update rule.
pub struct Sgd {
    cfg: SgdConfig,
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// A fresh rule.
    pub fn new(cfg: SgdConfig) -> Self {
        Self {
            cfg,
            buffers: Vec::new(),
        }
    }
}

impl UpdateRule for Sgd {
    fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    fn update(&mut self, index: usize, var: &Var, grad: &Tensor) -> anyhow::Result<()> {
        let c = &self.cfg;
        let mut d = grad.clone();
        if c.weight_decay != 0.0 {
            d = (d + (var.as_tensor() * c.weight_decay)?)?;
        }
        if c.momentum != 0.0 {
            if self.buffers.len() <= index {
                self.buffers.resize(index + 1, None);
            }
            let buf = match self.buffers[index].take() {
                None => d.clone(),
                Some(b) => ((b * c.momentum)? + (&d * (1.0 - c.dampening))?)?,
            };
            d = if c.nesterov {
                (&d + (&buf * c.momentum)?)?
            } else {
                buf.clone()
            };
            self.buffers[index] = Some(buf);
        }
        var.set(&(var.as_tensor() - (d * c.lr)?)?)?;
        Ok(())
    }
}
