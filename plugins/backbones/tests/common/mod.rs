//! Helpers shared by the backbone tests (CLIP, BLIP, EfficientNet-Lite0).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};

/// Every model output must match transformers within this (the fixtures' tolerance).
pub const TOLERANCE: f32 = 1e-4;

/// `tests/fixtures/hf/models/{name}` of the workspace.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/hf/models")
        .join(name)
}

/// The fixture's `reference/reference.safetensors`, id tensors converted from i64 to u32.
pub fn load_reference(name: &str) -> HashMap<String, Tensor> {
    let path = fixture(name).join("reference/reference.safetensors");
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(key, tensor)| match tensor.dtype() {
            DType::I64 => (key, tensor.to_dtype(DType::U32).unwrap()),
            _ => (key, tensor),
        })
        .collect()
}

/// Largest absolute difference of two tensors of the same shape (compared in f32).
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a = a.to_dtype(DType::F32).unwrap();
    let b = b.to_dtype(DType::F32).unwrap();
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Assert `got` matches the reference within [`TOLERANCE`], printing the error.
pub fn check(name: &str, got: &Tensor, expected: &Tensor) {
    let err = max_abs_diff(got, expected);
    eprintln!("{name}: max abs error {err:e}");
    assert!(err < TOLERANCE, "{name} differs by {err}");
}

/// A copy of the fixture's `model.safetensors` without the tensor `name`, written into `dir`.
pub fn weights_without(fixture_name: &str, name: &str, dir: &Path) -> PathBuf {
    let weights = fixture(fixture_name).join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(weights, &Device::Cpu).unwrap();
    tensors.remove(name).unwrap();
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

/// Backpropagate the scalar `loss(x)` to `x` (f64) and compare the gradient with a central
/// finite difference along a random direction; also require it to be nonzero.
pub fn check_gradient(x: &Tensor, loss: impl Fn(&Tensor) -> Tensor) {
    assert_eq!(x.dtype(), DType::F64);
    let var = Var::from_tensor(x).unwrap();
    let grads = loss(var.as_tensor()).backward().unwrap();
    let grad = grads.get(var.as_tensor()).expect("no gradient for the input");
    assert_eq!(grad.dims(), x.dims());
    let direction = Tensor::randn(0f64, 1f64, x.shape(), x.device()).unwrap();
    let analytic = (grad * &direction)
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let h = 1e-4;
    let at = |sign: f64| {
        let shifted = (x + (&direction * (sign * h)).unwrap()).unwrap();
        loss(&shifted).to_scalar::<f64>().unwrap()
    };
    let numeric = (at(1.0) - at(-1.0)) / (2.0 * h);
    eprintln!("directional derivative: backward {analytic:e}, finite difference {numeric:e}");
    assert!(analytic.abs() > 1e-6, "gradient vanishes: {analytic}");
    assert!(
        (analytic - numeric).abs() <= 1e-5 * numeric.abs().max(1.0),
        "{analytic} vs {numeric}"
    );
}
