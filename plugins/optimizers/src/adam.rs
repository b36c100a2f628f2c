//! Adam and AdamW, as `torch.optim.Adam` (L2 decay added to the gradient) and `torch.optim.AdamW`
//! (decoupled decay applied to the weights).

use candle_core::{Tensor, Var};
use serde::Deserialize;

use crate::gradient::UpdateRule;

/// `adam` / `adamw` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Exponential decay of the first moment.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Exponential decay of the second moment.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Added to the denominator for stability.
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Weight decay (L2 for `adam`, decoupled for `adamw`; PyTorch's defaults are 0 and 0.01).
    pub weight_decay: Option<f64>,
}

fn default_lr() -> f64 {
    1e-3
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_eps() -> f64 {
    1e-8
}

/// The Adam/AdamW update rule.
pub struct Adam {
    cfg: AdamConfig,
    weight_decay: f64,
    decoupled: bool,
    step: i32,
    moments: Vec<Option<(Tensor, Tensor)>>,
}

impl Adam {
    /// A fresh rule; `decoupled` selects AdamW.
    pub fn new(cfg: AdamConfig, decoupled: bool) -> Self {
        let weight_decay = cfg.weight_decay.unwrap_or(if decoupled { 0.01 } else { 0.0 });
        Self {
            cfg,
            weight_decay,
            decoupled,
            step: 0,
            moments: Vec::new(),
        }
    }
}

impl UpdateRule for Adam {
    fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    fn begin_step(&mut self) {
        self.step += 1;
    }

    fn update(&mut self, index: usize, var: &Var, grad: &Tensor) -> anyhow::Result<()> {
        let c = &self.cfg;
        let theta = var.as_tensor();
        let mut g = grad.clone();
        let mut theta_next = theta.clone();
        if self.weight_decay != 0.0 {
            if self.decoupled {
                theta_next = (theta * (1.0 - c.lr * self.weight_decay))?;
            } else {
                g = (g + (theta * self.weight_decay)?)?;
            }
        }
        if self.moments.len() <= index {
            self.moments.resize(index + 1, None);
        }
        let (m, v) = match self.moments[index].take() {
            Some(mv) => mv,
            None => (g.zeros_like()?, g.zeros_like()?),
        };
        let m = ((m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
        let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
        let m_hat = (&m / (1.0 - c.beta1.powi(self.step)))?;
        let v_hat = (&v / (1.0 - c.beta2.powi(self.step)))?;
        let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
        var.set(&(theta_next - (update * c.lr)?)?)?;
        self.moments[index] = Some((m, v));
        Ok(())
    }
}
