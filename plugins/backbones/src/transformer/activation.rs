//! The activation functions named by a config's `hidden_act`.

use candle_core::{Module, Result, Tensor};
use serde::Deserialize;

/// An activation function as named by `hidden_act` in a Hugging Face `config.json`.
///
/// Deserialises from the name; an unknown name is an error that lists the supported ones (serde
/// reports it under the key, e.g. `vision_config.hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Activation {
    /// `quick_gelu`: `x * sigmoid(1.702 x)`, the OpenAI CLIP approximation.
    QuickGelu,
    /// `gelu`: the exact GELU, `x * (1 + erf(x / sqrt(2))) / 2`.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`: the tanh approximation of GELU.
    GeluTanh,
    /// `relu`: `max(x, 0)`.
    Relu,
    /// `silu` or `swish`: `x * sigmoid(x)`.
    Silu,
}

/// Every accepted `hidden_act` name with the activation it selects.
const NAMES: [(&str, Activation); 8] = [
    ("quick_gelu", Activation::QuickGelu),
    ("gelu", Activation::Gelu),
    ("gelu_new", Activation::GeluTanh),
    ("gelu_pytorch_tanh", Activation::GeluTanh),
    ("gelu_fast", Activation::GeluTanh),
    ("relu", Activation::Relu),
    ("silu", Activation::Silu),
    ("swish", Activation::Silu),
];

impl TryFrom<String> for Activation {
    type Error = String;

    fn try_from(name: String) -> std::result::Result<Self, String> {
        NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, activation)| *activation)
            .ok_or_else(|| {
                let expected: Vec<&str> = NAMES.iter().map(|(known, _)| *known).collect();
                format!(
                    "unsupported activation `{name}`; expected one of {}",
                    expected.join(", ")
                )
            })
    }
}

impl Module for Activation {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self {
            Self::QuickGelu => xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?,
            Self::Gelu => xs.gelu_erf(),
            Self::GeluTanh => xs.gelu(),
            Self::Relu => xs.relu(),
            Self::Silu => xs.silu(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names_parse_and_unknown_names_list_the_choices() {
        assert_eq!(
            Activation::try_from("gelu_pytorch_tanh".to_string()),
            Ok(Activation::GeluTanh)
        );
        let err = Activation::try_from("foo".to_string()).unwrap_err();
        assert!(err.contains("`foo`") && err.contains("quick_gelu"), "{err}");
    }

    #[test]
    fn values_match_the_pytorch_definitions() {
        let xs = Tensor::new(&[-2.0f32, -0.5, 0.0, 1.0, 3.0], &Device::Cpu).unwrap();
        let reference = |f: fn(f64) -> f64| [-2.0, -0.5, 0.0, 1.0, 3.0].map(|x| f(x) as f32);
        let tanh_gelu =
            |x: f64| 0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3))).tanh());
        let cases: [(Activation, [f32; 5]); 4] = [
            (Activation::QuickGelu, reference(|x| x / (1.0 + (-1.702 * x).exp()))),
            (Activation::GeluTanh, reference(tanh_gelu)),
            (Activation::Relu, reference(|x| x.max(0.0))),
            (Activation::Silu, reference(|x| x / (1.0 + (-x).exp()))),
        ];
        for (activation, expected) in cases {
            let got = activation.forward(&xs).unwrap().to_vec1::<f32>().unwrap();
            for (g, e) in got.iter().zip(expected) {
                assert!((g - e).abs() < 1e-5, "{activation:?}: {got:?} vs {expected:?}");
            }
        }
        // Exact GELU at a few points (erf from a table: erf(1/sqrt 2) = 0.682689492).
        let got = Activation::Gelu.forward(&xs).unwrap().to_vec1::<f32>().unwrap();
        assert!((got[3] - 0.841_344_7).abs() < 1e-6, "{got:?}");
        assert_eq!(got[2], 0.0);
    }
}
