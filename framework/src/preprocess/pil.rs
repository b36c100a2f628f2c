//! Resampling as Pillow's `Image.resize` does it (`libImaging/Resample.c`), which transformers'
//! PIL image processors call: a separable convolution, horizontal pass first, whose filter support
//! is stretched by the downscale factor (antialiasing) and whose weights are renormalised over the
//! source samples inside the image. 8-bit planes use Pillow's fixed-point weights and round to
//! 8 bits after each pass, so an 8-bit result is exactly Pillow's.

/// A Pillow resampling filter (`PIL.Image.Resampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// `BILINEAR` (2): the triangle filter, support 1.
    Triangle,
    /// `BICUBIC` (3): the cubic convolution kernel with `a = -0.5`, support 2.
    Bicubic,
}

/// Fraction bits of Pillow's fixed-point weights for 8-bit images (`PRECISION_BITS`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

impl Filter {
    /// The filter's half-width at scale 1.
    fn support(self) -> f64 {
        match self {
            Filter::Triangle => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    /// The filter at `x` (Pillow's `bilinear_filter` / `bicubic_filter`).
    fn eval(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Triangle => (1.0 - x).max(0.0),
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// The weights of one output sample over the source samples `first..first + weights.len()`.
struct Window<W> {
    first: usize,
    weights: Vec<W>,
}

/// Pillow's `precompute_coeffs`: the normalised windows of resizing one axis from `input` to
/// `output` samples, with the same floating-point operations in the same order.
fn windows(filter: Filter, input: usize, output: usize) -> Vec<Window<f64>> {
    let scale = input as f64 / output as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    (0..output)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's `(int)` truncates towards zero.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let mut weights: Vec<f64> = (first..end)
                .map(|x| filter.eval((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            Window { first, weights }
        })
        .collect()
}

/// A sample type that [`resize`] convolves.
pub(super) trait Sample: Copy {
    /// The type of one weight.
    type Weight: Copy;
    /// A normalised weight in this sample type's arithmetic.
    fn weight(w: f64) -> Self::Weight;
    /// The weighted sum of `values`, rounded and clamped to the sample range.
    fn convolve(values: impl Iterator<Item = Self>, weights: &[Self::Weight]) -> Self;
}

/// 8-bit samples: Pillow's `normalize_coeffs_8bpc` weights, a sum that starts at one half and
/// `clip8` (round half up, clamp to `0..=255`).
impl Sample for u8 {
    type Weight = i32;

    fn weight(w: f64) -> i32 {
        let scaled = w * f64::from(1u32 << PRECISION_BITS);
        (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
    }

    fn convolve(values: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
        let sum = values.zip(weights).fold(1i64 << (PRECISION_BITS - 1), |acc, (v, &w)| {
            acc + i64::from(v) * i64::from(w)
        });
        (sum >> PRECISION_BITS).clamp(0, 255) as u8
    }
}

/// Unit samples (values in `[0, 1]`, from images deeper than 8 bits): an f64 sum, clamped to
/// `[0, 1]` as 8-bit samples are clamped to `0..=255`, without rounding.
impl Sample for f32 {
    type Weight = f64;

    fn weight(w: f64) -> f64 {
        w
    }

    fn convolve(values: impl Iterator<Item = f32>, weights: &[f64]) -> f32 {
        let sum: f64 = values.zip(weights).map(|(v, &w)| f64::from(v) * w).sum();
        sum.clamp(0.0, 1.0) as f32
    }
}

/// The windows of one axis with weights of type `T::Weight`.
fn kernel<T: Sample>(filter: Filter, input: usize, output: usize) -> Vec<Window<T::Weight>> {
    windows(filter, input, output)
        .into_iter()
        .map(|w| Window {
            first: w.first,
            weights: w.weights.into_iter().map(T::weight).collect(),
        })
        .collect()
}

/// Resize a row-major `in_h × in_w` plane to `out_h × out_w` with `filter`, as Pillow resizes one
/// channel: the rows first (skipped when the width is unchanged), then the columns of that result
/// (skipped when the height is unchanged).
///
/// # Panics
/// On an empty plane.
pub(super) fn resize<T: Sample>(
    src: &[T],
    (in_h, in_w): (usize, usize),
    (out_h, out_w): (usize, usize),
    filter: Filter,
) -> Vec<T> {
    debug_assert_eq!(src.len(), in_h * in_w);
    let horizontal: Vec<T> = if out_w == in_w {
        src.to_vec()
    } else {
        let cols = kernel::<T>(filter, in_w, out_w);
        src.chunks_exact(in_w)
            .flat_map(|row| {
                cols.iter()
                    .map(move |c| T::convolve(row[c.first..].iter().copied(), &c.weights))
            })
            .collect()
    };
    if out_h == in_h {
        return horizontal;
    }
    let rows = kernel::<T>(filter, in_h, out_h);
    let horizontal = &horizontal;
    rows.iter()
        .flat_map(|r| {
            (0..out_w).map(move |x| {
                let column = horizontal[r.first * out_w + x..].iter().step_by(out_w);
                T::convolve(column.copied(), &r.weights)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w}");
        }
    }

    #[test]
    fn bicubic_kernel_values() {
        assert_eq!(Filter::Bicubic.eval(0.0), 1.0);
        assert_eq!(Filter::Bicubic.eval(1.0), 0.0);
        assert_eq!(Filter::Bicubic.eval(-2.0), 0.0);
        assert_eq!(Filter::Bicubic.eval(0.25), 0.8671875);
        assert_eq!(Filter::Bicubic.eval(1.25), -0.0703125);
    }

    #[test]
    fn same_size_windows_are_the_identity() {
        for filter in [Filter::Triangle, Filter::Bicubic] {
            for (i, w) in windows(filter, 5, 5).iter().enumerate() {
                let at = |x: usize| x.checked_sub(w.first).and_then(|k| w.weights.get(k)).copied();
                assert_eq!(at(i), Some(1.0));
                assert!(w.weights.iter().sum::<f64>() == 1.0);
            }
        }
        let src: Vec<u8> = (0..12).map(|v| v * 20).collect();
        assert_eq!(resize(&src, (3, 4), (3, 4), Filter::Bicubic), src);
    }

    #[test]
    fn bicubic_8bit_upscale_rounds_and_clamps() {
        // Output 0: weights 1.0882, -0.0882 over [0, 255] → negative → 0. Output 1: weights
        // 0.7929, 0.2071 → 52.82 → 53. Outputs 2 and 3 mirror them.
        let up = resize(&[0u8, 255], (1, 2), (1, 4), Filter::Bicubic);
        assert_eq!(up, vec![0, 53, 202, 255]);
        // The same along the columns.
        let down = resize(&[0u8, 255], (2, 1), (4, 1), Filter::Bicubic);
        assert_eq!(down, vec![0, 53, 202, 255]);
    }

    #[test]
    fn triangle_upscale_is_half_pixel_linear_interpolation() {
        let up = resize(&[0.0f32, 1.0, 0.5, 0.25], (2, 2), (4, 4), Filter::Triangle);
        let want = super::super::bilinear(&[0.0, 1.0, 0.5, 0.25], 2, 2, 4, 4);
        assert_close(&up, &want, 1e-6);
    }

    #[test]
    fn downscaling_widens_the_filter() {
        // 4 → 2: support 2 and argument scale 1/2, so output 0 reads samples 0..3 with triangle
        // weights 0.75, 0.75, 0.25 (normalised by 1.75) and output 1 reads 1..4 with 0.25, 0.75, 0.75.
        let down = resize(&[0.0f32, 0.1, 0.2, 0.3], (1, 4), (1, 2), Filter::Triangle);
        assert_close(&down, &[0.5 / 7.0, 1.6 / 7.0], 1e-7);
    }
}
