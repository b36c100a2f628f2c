//! Image preprocessing: raw images → `[B, 3, H, W]` values in `[0, 1]` ([`Preprocessing::unit_batch`])
//! → normalised backbone input ([`Preprocessing::normalize`]). The two steps are separate so that
//! a debiaser (DNE) can add noise to the `[0, 1]` image and backpropagate through the normalisation.

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How raw images become the input of a backbone.
///
/// Pixels are scaled to `[0, 1]` first (`x = v / 255` for 8-bit images, `v / 65535` for 16-bit),
/// then resized with [`Preprocessing::resize`], then normalised per channel: `(x - mean) / std`.
/// The output always has 3 channels in RGB order: a gray image is replicated to 3 channels, an RGB
/// image is kept, an alpha channel is dropped (not composited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Output height in pixels.
    pub height: usize,
    /// Output width in pixels.
    pub width: usize,
    /// How an image is brought to `height × width`.
    pub resize: Resize,
    /// Per-channel (R, G, B) mean subtracted from the `[0, 1]` values.
    pub mean: [f32; 3],
    /// Per-channel (R, G, B) standard deviation the centred values are divided by.
    pub std: [f32; 3],
}

/// A resize method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Bilinear interpolation straight to `height × width` (the aspect ratio is not kept), with
    /// half-pixel centres and no antialiasing, as PyTorch's
    /// `interpolate(mode="bilinear", align_corners=False)`: output pixel `d` reads the source
    /// coordinate `max((d + 0.5) * in / out - 0.5, 0)` between its floor and the next pixel, the
    /// latter clamped to the last one. An image already at the target size is unchanged.
    Bilinear,
}

impl Resize {
    /// The name used in settings and in [`Preprocessing::fingerprint`].
    pub fn as_str(self) -> &'static str {
        match self {
            Resize::Bilinear => "bilinear",
        }
    }
}

impl Preprocessing {
    /// One image as `3 × height × width` values in `[0, 1]`, channel-major (CHW).
    ///
    /// # Panics
    /// On an image with zero width or height.
    pub fn to_unit(&self, img: &image::DynamicImage) -> Vec<f32> {
        let (in_w, in_h) = (img.width() as usize, img.height() as usize);
        let plane = self.height * self.width;
        if img.color().has_color() {
            let rgb = img.to_rgb32f();
            let mut out = Vec::with_capacity(3 * plane);
            for c in 0..3 {
                let channel: Vec<f32> = rgb.pixels().map(|p| p.0[c]).collect();
                out.extend(self.resize_plane(&channel, in_h, in_w));
            }
            out
        } else {
            let gray = self.resize_plane(img.to_luma32f().as_raw(), in_h, in_w);
            gray.repeat(3)
        }
    }

    /// A batch of images as a `[B, 3, height, width]` f32 tensor of values in `[0, 1]` on `device`.
    pub fn unit_batch(&self, images: &[image::DynamicImage], device: &Device) -> anyhow::Result<Tensor> {
        let data: Vec<f32> = images.par_iter().flat_map_iter(|img| self.to_unit(img)).collect();
        Ok(Tensor::from_vec(
            data,
            (images.len(), 3, self.height, self.width),
            device,
        )?)
    }

    /// `(x - mean) / std` per channel of a `[B, 3, H, W]` tensor, with differentiable tensor ops
    /// (gradients flow back into `unit`). The result has the dtype and device of `unit`.
    pub fn normalize(&self, unit: &Tensor) -> anyhow::Result<Tensor> {
        let (_, channels, _, _) = unit.dims4()?;
        anyhow::ensure!(
            channels == 3,
            "normalize expects [B, 3, H, W] pixel values, got shape {:?}",
            unit.shape()
        );
        let per_channel = |values: &[f32; 3]| -> candle_core::Result<Tensor> {
            Tensor::new(values, unit.device())?
                .to_dtype(unit.dtype())?
                .reshape((1, 3, 1, 1))
        };
        Ok(unit
            .broadcast_sub(&per_channel(&self.mean)?)?
            .broadcast_div(&per_channel(&self.std)?)?)
    }

    /// A stable one-line description of every setting, part of the feature-cache key.
    pub fn fingerprint(&self) -> String {
        format!(
            "size={}x{};resize={};channels=rgb;mean={:?},{:?},{:?};std={:?},{:?},{:?}",
            self.height,
            self.width,
            self.resize.as_str(),
            self.mean[0],
            self.mean[1],
            self.mean[2],
            self.std[0],
            self.std[1],
            self.std[2]
        )
    }

    /// Resize one `in_h × in_w` row-major plane to `height × width`.
    fn resize_plane(&self, src: &[f32], in_h: usize, in_w: usize) -> Vec<f32> {
        match self.resize {
            Resize::Bilinear => bilinear(src, in_h, in_w, self.height, self.width),
        }
    }
}

/// One output coordinate of a linear interpolation: the two source indices and their weights.
struct Tap {
    lo: usize,
    hi: usize,
    w_lo: f32,
    w_hi: f32,
}

/// The taps of a half-pixel-centre linear resize of one axis from `input` to `output` samples,
/// computed in f32 like PyTorch's CPU kernel.
fn linear_taps(input: usize, output: usize) -> Vec<Tap> {
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|d| {
            let src = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let lo = (src as usize).min(input - 1);
            let hi = (lo + 1).min(input - 1);
            let w_hi = (src - lo as f32).clamp(0.0, 1.0);
            Tap {
                lo,
                hi,
                w_lo: 1.0 - w_hi,
                w_hi,
            }
        })
        .collect()
}

/// Bilinear resize of a row-major `in_h × in_w` plane (see [`Resize::Bilinear`]).
fn bilinear(src: &[f32], in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let rows = linear_taps(in_h, out_h);
    let cols = linear_taps(in_w, out_w);
    let mut out = Vec::with_capacity(out_h * out_w);
    for r in &rows {
        let (top, bottom) = (
            &src[r.lo * in_w..(r.lo + 1) * in_w],
            &src[r.hi * in_w..(r.hi + 1) * in_w],
        );
        out.extend(cols.iter().map(|c| {
            r.w_lo * (c.w_lo * top[c.lo] + c.w_hi * top[c.hi])
                + r.w_hi * (c.w_lo * bottom[c.lo] + c.w_hi * bottom[c.hi])
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Var};
    use image::{DynamicImage, GrayImage, RgbImage, RgbaImage};

    use super::*;

    fn prep(height: usize, width: usize) -> Preprocessing {
        Preprocessing {
            height,
            width,
            resize: Resize::Bilinear,
            mean: [0.5, 0.25, 0.0],
            std: [0.5, 0.25, 2.0],
        }
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() < 1e-6, "element {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn bilinear_upsampling_uses_half_pixel_centres() {
        // torch.nn.functional.interpolate([[0, 1], [2, 3]], size=(4, 4), mode="bilinear", align_corners=False)
        let up = bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4);
        #[rustfmt::skip]
        let want = [
            0.0, 0.25, 0.75, 1.0,
            0.5, 0.75, 1.25, 1.5,
            1.5, 1.75, 2.25, 2.5,
            2.0, 2.25, 2.75, 3.0,
        ];
        assert_close(&up, &want);
    }

    #[test]
    fn bilinear_non_square_and_downsampling() {
        // 1 × 3 → 2 × 2: rows both read row 0; columns read source x = 0.25 and 1.75.
        let out = bilinear(&[0.0, 10.0, 20.0], 1, 3, 2, 2);
        assert_close(&out, &[2.5, 17.5, 2.5, 17.5]);
        // 4 → 2 without antialiasing: source x = 0.5 and 2.5.
        let down = bilinear(&[0.0, 1.0, 2.0, 3.0], 1, 4, 1, 2);
        assert_close(&down, &[0.5, 2.5]);
    }

    #[test]
    fn same_size_is_identity() {
        let src: Vec<f32> = (0..15).map(|v| v as f32 / 7.0).collect();
        assert_eq!(bilinear(&src, 3, 5, 3, 5), src);
    }

    #[test]
    fn gray_is_replicated_to_three_channels() {
        let img = DynamicImage::ImageLuma8(GrayImage::from_raw(2, 1, vec![0, 255]).unwrap());
        let unit = prep(1, 2).to_unit(&img);
        assert_close(&unit, &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn rgb_is_kept_and_alpha_dropped() {
        let rgb = DynamicImage::ImageRgb8(RgbImage::from_raw(1, 1, vec![255, 51, 0]).unwrap());
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_raw(1, 1, vec![255, 51, 0, 7]).unwrap());
        let want = [1.0, 0.2, 0.0];
        assert_close(&prep(1, 1).to_unit(&rgb), &want);
        assert_close(&prep(1, 1).to_unit(&rgba), &want);
    }

    #[test]
    fn unit_batch_stacks_chw_images() {
        let a = DynamicImage::ImageLuma8(GrayImage::from_raw(1, 1, vec![255]).unwrap());
        let b = DynamicImage::ImageRgb8(RgbImage::from_raw(1, 1, vec![0, 255, 0]).unwrap());
        let batch = prep(2, 3).unit_batch(&[a, b], &Device::Cpu).unwrap();
        assert_eq!(batch.dims(), &[2, 3, 2, 3]);
        let per_channel = batch.mean((2, 3)).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(per_channel, vec![vec![1.0, 1.0, 1.0], vec![0.0, 1.0, 0.0]]);
    }

    #[test]
    fn normalize_is_per_channel_and_differentiable() {
        let p = prep(1, 1);
        let unit = Var::from_tensor(&Tensor::new(&[[[[1.0f32]], [[1.0]], [[1.0]]]], &Device::Cpu).unwrap()).unwrap();
        let normalized = p.normalize(unit.as_tensor()).unwrap();
        assert_eq!(
            normalized.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![1.0, 3.0, 0.5]
        );
        let grads = normalized.sum_all().unwrap().backward().unwrap();
        let grad = grads
            .get(unit.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(grad, vec![2.0, 4.0, 0.5]);
        let half = p.normalize(&unit.as_tensor().to_dtype(DType::F16).unwrap()).unwrap();
        assert_eq!(half.dtype(), DType::F16);
        assert!(p
            .normalize(&Tensor::zeros((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap())
            .is_err());
    }

    #[test]
    fn fingerprint_names_every_setting() {
        let p = prep(224, 200);
        assert_eq!(
            p.fingerprint(),
            "size=224x200;resize=bilinear;channels=rgb;mean=0.5,0.25,0.0;std=0.5,0.25,2.0"
        );
        let mut q = p.clone();
        q.std[2] = 2.5;
        assert_ne!(p.fingerprint(), q.fingerprint());
    }

    #[test]
    fn serde_round_trip() {
        let p = prep(224, 224);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"resize\":\"bilinear\""), "{json}");
        assert_eq!(serde_json::from_str::<Preprocessing>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Preprocessing>(&json.replace("\"resize\"", "\"filter\"")).is_err());
    }
}
