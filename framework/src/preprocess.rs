//! Image preprocessing: raw images → `[B, 3, H, W]` values in `[0, 1]` ([`Preprocessing::unit_batch`])
//! → normalised backbone input ([`Preprocessing::normalize`]). The two steps are separate so that
//! a debiaser (DNE) can add noise to the `[0, 1]` image and backpropagate through the normalisation.
//! [`Preprocessing::from_hf_processor_config`] reads the settings of a Hugging Face CLIP or BLIP
//! image processor.

mod hf;
pub use hf::{OPENAI_CLIP_MEAN, OPENAI_CLIP_STD};
mod pil;

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How raw images become the input of a backbone.
///
/// Pixels are scaled to `[0, 1]` (`x = v / 255` for 8-bit images, `v / 65535` for 16-bit) and
/// resized with [`Preprocessing::resize`] (the scaling comes first, except that the Pillow methods
/// resize 8-bit images in 8 bits, as Pillow does), then center-cropped when
/// [`Preprocessing::shortest_edge`] is set, then normalised per channel: `(x - mean) / std`.
/// The output always has 3 channels in RGB order: a gray image is replicated to 3 channels (after
/// resizing), an RGB image is kept, an alpha channel is dropped (not composited).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Output height in pixels (the crop height when [`Preprocessing::shortest_edge`] is set).
    pub height: usize,
    /// Output width in pixels (the crop width when [`Preprocessing::shortest_edge`] is set).
    pub width: usize,
    /// How an image is resized.
    pub resize: Resize,
    /// When set, the image keeps its aspect ratio, as transformers' CLIP image processor does: its
    /// shorter edge is resized to this many pixels and its longer edge to
    /// `int(shortest_edge * long / short)` (truncated), then the `height × width` center is
    /// cropped, starting at row `(resized_h - height) / 2` and column `(resized_w - width) / 2`
    /// (floor division). Where the resized image is smaller than the crop, the crop is padded
    /// with zeros (unit value 0, before normalisation) as transformers' `center_crop` pads: the
    /// image starts `ceil((height - resized_h) / 2)` rows down (likewise for columns).
    /// When unset, the image is resized straight to `height × width`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortest_edge: Option<usize>,
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
    /// Pillow's `BICUBIC` (`resample=3`, what transformers' PIL image processors use): the cubic
    /// convolution kernel with `a = -0.5`, antialiased (when downscaling, the kernel is stretched
    /// by the scale factor), separable with the horizontal pass first. 8-bit images are resized in
    /// 8 bits with Pillow's fixed-point arithmetic and rounding after each pass, which reproduces
    /// Pillow exactly; deeper images are resized in floating point with the same weights (clamped
    /// to `[0, 1]`, not rounded).
    Bicubic,
    /// Pillow's `BILINEAR` (`resample=2`): the triangle filter, antialiased like
    /// [`Resize::Bicubic`] and computed the same way. When upscaling it equals
    /// [`Resize::Bilinear`] (up to the 8-bit rounding); when downscaling it averages over the
    /// stretched filter instead of interpolating between two pixels.
    BilinearAntialias,
}

impl Resize {
    /// The name used in settings and in [`Preprocessing::fingerprint`].
    pub fn as_str(self) -> &'static str {
        match self {
            Resize::Bilinear => "bilinear",
            Resize::Bicubic => "bicubic",
            Resize::BilinearAntialias => "bilinear_antialias",
        }
    }

    /// The Pillow filter of a Pillow method; `None` for [`Resize::Bilinear`].
    fn pil_filter(self) -> Option<pil::Filter> {
        match self {
            Resize::Bilinear => None,
            Resize::Bicubic => Some(pil::Filter::Bicubic),
            Resize::BilinearAntialias => Some(pil::Filter::Triangle),
        }
    }
}

impl Preprocessing {
    /// One image as `3 × height × width` values in `[0, 1]`, channel-major (CHW).
    ///
    /// # Panics
    /// On an image with zero width or height.
    pub fn to_unit(&self, img: &image::DynamicImage) -> Vec<f32> {
        let input = (img.height() as usize, img.width() as usize);
        let resized = self.resized_size(input);
        let color = img.color();
        let gray = !color.has_color();
        let channels = if gray { 1 } else { 3 };
        let planes: Vec<Vec<f32>> = match self.resize.pil_filter() {
            Some(filter) if color.bytes_per_pixel() == color.channel_count() => {
                let raw = if gray {
                    img.to_luma8().into_raw()
                } else {
                    img.to_rgb8().into_raw()
                };
                channel_planes(&raw, channels)
                    .iter()
                    .map(|plane| {
                        let levels = pil::resize(plane, input, resized, filter);
                        levels.into_iter().map(|v| f32::from(v) / 255.0).collect()
                    })
                    .collect()
            }
            _ => {
                let raw = if gray {
                    img.to_luma32f().into_raw()
                } else {
                    img.to_rgb32f().into_raw()
                };
                channel_planes(&raw, channels)
                    .iter()
                    .map(|plane| self.resize_plane(plane, input, resized))
                    .collect()
            }
        };
        let mut out = Vec::with_capacity(3 * self.height * self.width);
        for plane in planes {
            out.extend(center_crop(plane, resized, (self.height, self.width)));
        }
        if gray {
            out.repeat(3)
        } else {
            out
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
    /// `shortest_edge=N;` follows the resize method only when [`Preprocessing::shortest_edge`] is
    /// set, so fingerprints without it are those from before the setting existed.
    pub fn fingerprint(&self) -> String {
        let shortest_edge = self
            .shortest_edge
            .map_or(String::new(), |s| format!("shortest_edge={s};"));
        format!(
            "size={}x{};resize={};{shortest_edge}channels=rgb;mean={:?},{:?},{:?};std={:?},{:?},{:?}",
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

    /// The `(height, width)` an `(in_h, in_w)` image is resized to, before the center crop.
    fn resized_size(&self, (in_h, in_w): (usize, usize)) -> (usize, usize) {
        match self.shortest_edge {
            None => (self.height, self.width),
            Some(short_out) => {
                // transformers: `int(size * long / short)`, a true division then truncation.
                let (short, long) = if in_w <= in_h { (in_w, in_h) } else { (in_h, in_w) };
                let long_out = ((short_out * long) as f64 / short as f64) as usize;
                if in_w <= in_h {
                    (long_out, short_out)
                } else {
                    (short_out, long_out)
                }
            }
        }
    }

    /// Resize one row-major unit-valued plane from `input` to `output` `(height, width)`.
    fn resize_plane(&self, src: &[f32], input: (usize, usize), output: (usize, usize)) -> Vec<f32> {
        match self.resize.pil_filter() {
            None => bilinear(src, input.0, input.1, output.0, output.1),
            Some(filter) => pil::resize(src, input, output, filter),
        }
    }
}

/// The channels of an interleaved image buffer as separate row-major planes.
fn channel_planes<T: Copy>(raw: &[T], channels: usize) -> Vec<Vec<T>> {
    (0..channels)
        .map(|c| raw.iter().skip(c).step_by(channels).copied().collect())
        .collect()
}

/// transformers' `center_crop` of a row-major `input` `(height, width)` plane to `output`: the
/// crop starts at `(in - out).div_euclid(2)` on each axis, which is `(in - out) / 2` when the
/// plane is larger and minus the zero padding before the plane when it is smaller. Samples
/// outside the plane are 0.
fn center_crop(src: Vec<f32>, input: (usize, usize), output: (usize, usize)) -> Vec<f32> {
    if input == output {
        return src;
    }
    let ((in_h, in_w), (out_h, out_w)) = (input, output);
    let start = |inp: usize, out: usize| (inp as isize - out as isize).div_euclid(2);
    let (top, left) = (start(in_h, out_h), start(in_w, out_w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for r in 0..out_h as isize {
        let y = top + r;
        for c in 0..out_w as isize {
            let x = left + c;
            let inside = (0..in_h as isize).contains(&y) && (0..in_w as isize).contains(&x);
            out.push(if inside {
                src[y as usize * in_w + x as usize]
            } else {
                0.0
            });
        }
    }
    out
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
            shortest_edge: None,
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
    fn shortest_edge_keeps_the_aspect_ratio_with_truncation() {
        let mut p = prep(32, 32);
        p.shortest_edge = Some(32);
        // (height, width): 40 × 48 (w × h) → 32 × 38.4 → 32 × 38, and so on.
        assert_eq!(p.resized_size((48, 40)), (38, 32));
        assert_eq!(p.resized_size((64, 64)), (32, 32));
        assert_eq!(p.resized_size((45, 57)), (32, 40));
        assert_eq!(p.resized_size((20, 24)), (32, 38));
        p.shortest_edge = None;
        assert_eq!(p.resized_size((20, 24)), (32, 32));
    }

    #[test]
    fn center_crop_takes_the_floor_centred_window() {
        // A 38 × 3 plane whose value is its row: the 32-row crop keeps rows 3..35.
        let rows: Vec<f32> = (0..38).flat_map(|r| [r as f32; 3]).collect();
        let crop = center_crop(rows, (38, 3), (32, 3));
        assert_eq!(crop.len(), 32 * 3);
        assert_eq!((crop[0], crop[32 * 3 - 1]), (3.0, 34.0));
        // Columns 0..5 → 2 columns starting at (5 - 2) / 2 = 1.
        let cols: Vec<f32> = (0..5).map(|c| c as f32).collect();
        assert_eq!(center_crop(cols, (1, 5), (1, 2)), vec![1.0, 2.0]);
    }

    #[test]
    fn center_crop_pads_a_small_plane_with_zeros() {
        // transformers pads a 2-row plane to 5 rows with ceil(3 / 2) = 2 rows above, and a 3-column
        // plane cropped to 2 columns starts at column (3 - 2) / 2 = 0.
        let crop = center_crop(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), (5, 2));
        #[rustfmt::skip]
        let want = [
            0.0, 0.0,
            0.0, 0.0,
            1.0, 2.0,
            4.0, 5.0,
            0.0, 0.0,
        ];
        assert_eq!(crop, want);
    }

    #[test]
    fn to_unit_resizes_then_crops() {
        // A 40 × 48 (w × h) gray image whose rows are 0, 1, 2, …: bicubic to 32 × 38 keeps every
        // column equal, then the crop keeps rows 3..35 of the resized image.
        let img = GrayImage::from_fn(40, 48, |_, y| image::Luma([(y * 5) as u8]));
        let mut p = prep(32, 32);
        p.resize = Resize::Bicubic;
        p.shortest_edge = Some(32);
        let unit = p.to_unit(&DynamicImage::ImageLuma8(img.clone()));
        assert_eq!(unit.len(), 3 * 32 * 32);
        let column = pil::resize(img.as_raw(), (48, 40), (38, 32), pil::Filter::Bicubic);
        for r in 0..32 {
            assert_eq!(unit[r * 32 + 7], f32::from(column[(r + 3) * 32 + 7]) / 255.0, "row {r}");
        }
        // Gray stays gray: all three channels are the same plane.
        assert_eq!(unit[..1024], unit[1024..2048]);
        assert_eq!(unit[..1024], unit[2048..]);
    }

    #[test]
    fn pillow_methods_resize_8bit_images_in_8_bits_and_deeper_ones_in_float() {
        let rgb = RgbImage::from_fn(7, 5, |x, y| image::Rgb([(x * 30) as u8, (y * 50) as u8, 200]));
        let mut p = prep(3, 4);
        p.resize = Resize::Bicubic;
        let eight = p.to_unit(&DynamicImage::ImageRgb8(rgb.clone()));
        assert!(eight.iter().all(|v| (v * 255.0 - (v * 255.0).round()).abs() < 1e-4));
        let sixteen = p.to_unit(&DynamicImage::ImageRgb16(DynamicImage::ImageRgb8(rgb).to_rgb16()));
        assert_eq!(sixteen.len(), eight.len());
        for (a, b) in eight.iter().zip(&sixteen) {
            // Two roundings to 8 bits, the first one carried through the column weights.
            assert!((a - b).abs() <= 1.2 / 255.0, "{a} vs {b}");
        }
        assert!(eight.iter().zip(&sixteen).any(|(a, b)| a != b));
    }

    #[test]
    fn fingerprint_names_the_shortest_edge_only_when_set() {
        let mut p = prep(32, 32);
        p.resize = Resize::Bicubic;
        p.shortest_edge = Some(36);
        assert_eq!(
            p.fingerprint(),
            "size=32x32;resize=bicubic;shortest_edge=36;channels=rgb;mean=0.5,0.25,0.0;std=0.5,0.25,2.0"
        );
        p.shortest_edge = None;
        assert_eq!(
            p.fingerprint(),
            "size=32x32;resize=bicubic;channels=rgb;mean=0.5,0.25,0.0;std=0.5,0.25,2.0"
        );
        p.resize = Resize::BilinearAntialias;
        assert!(p.fingerprint().contains("resize=bilinear_antialias;"));
    }

    #[test]
    fn serde_round_trip() {
        let p = prep(224, 224);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("\"resize\":\"bilinear\""), "{json}");
        assert_eq!(serde_json::from_str::<Preprocessing>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Preprocessing>(&json.replace("\"resize\"", "\"filter\"")).is_err());
        assert!(!json.contains("shortest_edge"), "{json}");
        let mut q = p.clone();
        q.resize = Resize::Bicubic;
        q.shortest_edge = Some(256);
        let json = serde_json::to_string(&q).unwrap();
        assert!(json.contains("\"resize\":\"bicubic\",\"shortest_edge\":256"), "{json}");
        assert_eq!(serde_json::from_str::<Preprocessing>(&json).unwrap(), q);
    }
}
