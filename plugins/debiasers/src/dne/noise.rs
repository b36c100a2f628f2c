//! The noise edit of DNE: one `[H, W]` plane, zero-initialised, added to every preprocessed image
//! (broadcast over the batch and the three channels) *before* normalisation, with no clamp, as in
//! DNE's `DNELayer` (`engine_finetune.py:27-33`).

use std::collections::HashMap;
use std::io::Cursor;

use candle_core::{DType, Device, Tensor, Var};
use fairlab_framework::debiaser::Artifact;
use fairlab_framework::tensor_io;

/// The trainable noise plane.
pub struct NoiseEdit {
    plane: Var,
}

impl NoiseEdit {
    /// A zero plane of `height x width` on `device`.
    pub fn zeros(height: usize, width: usize, device: &Device) -> candle_core::Result<Self> {
        Ok(Self {
            plane: Var::zeros((height, width), DType::F32, device)?,
        })
    }

    /// The var an optimiser updates.
    pub fn var(&self) -> &Var {
        &self.plane
    }

    /// `unit + noise` for unit-range pixels `[B, 3, H, W]`, differentiable in the noise.
    pub fn apply(&self, unit: &Tensor) -> candle_core::Result<Tensor> {
        unit.broadcast_add(self.plane.as_tensor())
    }

    /// The plane's Frobenius norm (not squared), DNE's regulariser, as a differentiable scalar.
    /// Computed as `sqrt(sum(noise^2) + 1e-12)`: at the zero initialisation the plain norm's
    /// gradient is 0/0, where PyTorch's `norm` returns the subgradient 0; the tiny offset gives the
    /// same 0 and changes the value by at most 1e-6.
    pub fn l2(&self) -> candle_core::Result<Tensor> {
        (self.plane.as_tensor().sqr()?.sum_all()? + 1e-12)?.sqrt()
    }

    /// The Frobenius norm as a number.
    pub fn l2_value(&self) -> candle_core::Result<f64> {
        self.l2()?.to_dtype(DType::F64)?.to_scalar::<f64>()
    }

    /// The plane as a safetensors artifact (tensor `noise`, `[H, W]` f32).
    pub fn safetensors_artifact(&self, path: &str) -> anyhow::Result<Artifact> {
        let metadata = HashMap::from([(
            "added_to".to_string(),
            "unit-range pixels [B, 3, H, W] before normalisation, broadcast over batch and channels, no clamp"
                .to_string(),
        )]);
        Ok(Artifact {
            path: path.to_string(),
            bytes: tensor_io::to_safetensors(&[("noise", self.plane.as_tensor())], metadata)?,
        })
    }

    /// A grey PNG of the plane: mid-grey is 0, white and black are +-max|noise| (so the picture shows
    /// the pattern whatever its scale).
    pub fn png_artifact(&self, path: &str) -> anyhow::Result<Artifact> {
        let (height, width) = self.plane.dims2()?;
        let values = self.plane.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        let scale = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let pixels = values
            .iter()
            .map(|v| {
                let unit = if scale > 0.0 { v / scale } else { 0.0 };
                (127.5 + 127.5 * unit).round().clamp(0.0, 255.0) as u8
            })
            .collect();
        let image = image::GrayImage::from_raw(width as u32, height as u32, pixels)
            .ok_or_else(|| anyhow::anyhow!("noise plane of {height}x{width} does not fit an image"))?;
        let mut bytes = Vec::new();
        image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)?;
        Ok(Artifact {
            path: path.to_string(),
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_broadcasts_over_batch_and_channels_and_exports() {
        let dev = Device::Cpu;
        let noise = NoiseEdit::zeros(2, 3, &dev).unwrap();
        noise
            .var()
            .set(&Tensor::new(&[[0.5f32, -1.0, 0.0], [0.25, 0.0, 2.0]], &dev).unwrap())
            .unwrap();
        let unit = Tensor::ones((2, 3, 2, 3), DType::F32, &dev).unwrap();
        let noised = noise.apply(&unit).unwrap();
        let v: Vec<f32> = noised.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&v[..6], &[1.5, 0.0, 1.0, 1.25, 1.0, 3.0]);
        assert_eq!(&v[30..], &[1.5, 0.0, 1.0, 1.25, 1.0, 3.0]);
        let l2 = noise.l2_value().unwrap();
        assert!((l2 - (0.25f64 + 1.0 + 0.0625 + 4.0).sqrt()).abs() < 1e-6);
        let zero = NoiseEdit::zeros(4, 4, &dev).unwrap();
        let grad = zero.l2().unwrap().backward().unwrap();
        let g: Vec<f32> = grad.get(zero.var()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(
            g.iter().all(|v| *v == 0.0),
            "the norm's gradient at zero must be 0, got {g:?}"
        );
        let png = noise.png_artifact("noise/noise.png").unwrap();
        let decoded = image::load_from_memory(&png.bytes).unwrap().to_luma8();
        assert_eq!(decoded.dimensions(), (3, 2));
        assert_eq!(decoded.get_pixel(2, 1).0[0], 255);
        assert_eq!(decoded.get_pixel(1, 0).0[0], 64);
        assert_eq!(decoded.get_pixel(2, 0).0[0], 128);
    }
}
