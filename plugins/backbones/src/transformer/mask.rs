//! Additive attention masks: 0 where a query may attend to a key, a very large negative number
//! where it may not.

use candle_core::{DType, Device, Result, Tensor};

/// The additive score of a masked position, `f32::MIN` like transformers' `torch.finfo(f32).min`.
/// Masks that are added together are clamped back to it, so a score never becomes `-inf` and a
/// fully masked row stays finite.
pub const MASKED: f32 = f32::MIN;

/// The mask of a decoder or causal text encoder: `[1, 1, T, T]` causal (query `i` sees keys
/// `j <= i`), plus, when `attention_mask` (`[B, T]`, 1 = token, 0 = padding, any numeric dtype)
/// is given, the padding mask of the keys, giving `[B, 1, T, T]`. f32.
pub fn causal_mask(seq_len: usize, attention_mask: Option<&Tensor>, device: &Device) -> Result<Tensor> {
    let causal: Vec<f32> = (0..seq_len)
        .flat_map(|i| (0..seq_len).map(move |j| if j > i { MASKED } else { 0.0 }))
        .collect();
    let causal = Tensor::from_vec(causal, (1, 1, seq_len, seq_len), device)?;
    match attention_mask {
        None => Ok(causal),
        Some(attention_mask) => {
            let (batch, keys) = attention_mask.dims2()?;
            if keys != seq_len {
                candle_core::bail!("attention_mask has {keys} positions but the input has {seq_len}");
            }
            let padding =
                ((1.0 - attention_mask.to_dtype(DType::F32)?)? * f64::from(MASKED))?.reshape((batch, 1, 1, seq_len))?;
            causal.broadcast_add(&padding)?.maximum(MASKED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_and_padding_masks_combine() {
        let device = Device::Cpu;
        let attention_mask = Tensor::new(&[[1u32, 1, 0], [1, 1, 1]], &device).unwrap();
        let mask = causal_mask(3, Some(&attention_mask), &device).unwrap();
        assert_eq!(mask.dims(), &[2, 1, 3, 3]);
        let rows = mask.squeeze(1).unwrap().to_vec3::<f32>().unwrap();
        let m = MASKED;
        assert_eq!(rows[0], vec![vec![0.0, m, m], vec![0.0, 0.0, m], vec![0.0, 0.0, m]]);
        assert_eq!(rows[1], vec![vec![0.0, m, m], vec![0.0, 0.0, m], vec![0.0, 0.0, 0.0]]);
        let causal_only = causal_mask(3, None, &device).unwrap();
        assert_eq!(causal_only.dims(), &[1, 1, 3, 3]);
    }
}
