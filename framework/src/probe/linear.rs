//! The linear probe itself: standardisation plus a logistic-regression head.

use candle_core::{DType, Tensor, Var, D};

use crate::debiaser::Artifact;
use crate::tensor_io;

/// Logistic regression `sigmoid(((x - mean) / std) · w + b)`.
pub struct LinearProbe {
    mean: Tensor,
    std: Tensor,
    weight: Var,
    bias: Var,
}

impl LinearProbe {
    /// A zero-initialised probe for `dim` features; standardisation from `train` when asked.
    pub fn new(train: &Tensor, standardize: bool) -> candle_core::Result<Self> {
        let (_, dim) = train.dims2()?;
        let device = train.device();
        let (mean, std) = if standardize {
            let mean = train.mean(0)?;
            let var = train.broadcast_sub(&mean)?.sqr()?.mean(0)?;
            (mean, (var.sqrt()? + 1e-6)?)
        } else {
            (
                Tensor::zeros(dim, DType::F32, device)?,
                Tensor::ones(dim, DType::F32, device)?,
            )
        };
        Ok(Self {
            mean,
            std,
            weight: Var::zeros((dim, 1), DType::F32, device)?,
            bias: Var::zeros(1, DType::F32, device)?,
        })
    }

    /// The trainable vars (weight, bias).
    pub fn vars(&self) -> Vec<Var> {
        vec![self.weight.clone(), self.bias.clone()]
    }

    /// Logits `[N]` for features `[N, D]`.
    pub fn logits(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        let x = features.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        x.matmul(self.weight.as_tensor())?
            .squeeze(D::Minus1)?
            .broadcast_add(self.bias.as_tensor())
    }

    /// P(y = 1) for features `[N, D]`.
    pub fn scores(&self, features: &Tensor) -> candle_core::Result<Vec<f64>> {
        candle_nn::ops::sigmoid(&self.logits(features)?)?
            .to_dtype(DType::F64)?
            .to_vec1()
    }

    /// The probe as a safetensors artifact (`mean`, `std`, `weight`, `bias`).
    pub fn to_artifact(&self, path: &str) -> anyhow::Result<Artifact> {
        let tensors = [
            ("mean", &self.mean),
            ("std", &self.std),
            ("weight", self.weight.as_tensor()),
            ("bias", self.bias.as_tensor()),
        ];
        Ok(Artifact {
            path: path.to_string(),
            bytes: tensor_io::to_safetensors(&tensors, Default::default())?,
        })
    }
}
