//! The dtype numerically sensitive steps (layer norm, softmax) run in.

use candle_core::DType;

/// f32 for the half types (f16, bf16), the dtype itself otherwise (f32, f64), as transformers
/// upcasts the softmax and PyTorch's layer norm accumulates in f32.
pub fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}
