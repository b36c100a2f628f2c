//! Depthwise 2-D convolution (one `k × k` filter per channel, `groups = channels`) with TensorFlow
//! "SAME" zero padding, differentiable with respect to its input.
//!
//! candle runs a grouped convolution as one convolution per group, which is very slow for
//! thousands of channels. On CPU in f32 this module uses a direct kernel (a candle custom op with
//! its input-gradient kernel); on other devices or dtypes it sums `k × k` shifted, per-channel
//! scaled views of the padded input with ordinary tensor ops. Both compute the same function.

use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Module, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// TensorFlow "SAME" padding of one axis: `out = ceil(size / stride)`,
/// `total = max((out - 1) * stride + kernel - size, 0)`, the smaller half before.
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// One `[1, C, 1, 1]` scale per kernel tap, row-major, of `[C, 1, k, k]` weights.
fn tap_scales(weight: &Tensor) -> Result<Vec<Tensor>> {
    let (channels, _, kh, kw) = weight.dims4()?;
    let taps = weight.reshape((channels, kh * kw))?;
    (0..kh * kw)
        .map(|t| taps.narrow(1, t, 1)?.reshape((1, channels, 1, 1)))
        .collect()
}

/// A depthwise convolution with fixed weights.
#[derive(Debug, Clone)]
pub struct DepthwiseConv2d {
    implementation: Implementation,
    channels: usize,
    kernel_size: usize,
    stride: usize,
}

#[derive(Debug, Clone)]
enum Implementation {
    /// Row-major `[C, k, k]` weights for the CPU kernel.
    Cpu(Arc<Vec<f32>>),
    /// One `[1, C, 1, 1]` scale per kernel tap (row-major) for the tensor-op version.
    Taps(Vec<Tensor>),
}

impl DepthwiseConv2d {
    /// A convolution with weights `[C, 1, k, k]` (PyTorch layout) and `stride`; the CPU kernel is
    /// used when the weights are f32 on the CPU.
    pub fn new(weight: &Tensor, stride: usize) -> Result<Self> {
        let (channels, one, kernel_size, kernel_w) = weight.dims4()?;
        if one != 1 || kernel_w != kernel_size || stride == 0 {
            candle_core::bail!(
                "depthwise weights must be [C, 1, k, k] with stride >= 1, got {:?}, stride {stride}",
                weight.shape()
            )
        }
        let implementation = if matches!(weight.device(), Device::Cpu) && weight.dtype() == DType::F32 {
            Implementation::Cpu(Arc::new(weight.flatten_all()?.to_vec1::<f32>()?))
        } else {
            Implementation::Taps(tap_scales(weight)?)
        };
        Ok(Self {
            implementation,
            channels,
            kernel_size,
            stride,
        })
    }

    /// The geometry of a forward pass over `[B, C, H, W]`.
    fn geometry(&self, x: &Tensor) -> Result<Geometry> {
        let (batch, channels, in_h, in_w) = x.dims4()?;
        if channels != self.channels {
            candle_core::bail!(
                "depthwise convolution over {} channels got input {:?}",
                self.channels,
                x.shape()
            )
        }
        Ok(Geometry {
            planes: batch * channels,
            channels,
            kernel: self.kernel_size,
            stride: self.stride,
            in_h,
            in_w,
            out_h: in_h.div_ceil(self.stride),
            out_w: in_w.div_ceil(self.stride),
            pad_top: same_padding(in_h, self.kernel_size, self.stride).0,
            pad_left: same_padding(in_w, self.kernel_size, self.stride).0,
        })
    }

    /// The tensor-op version: `Σ_taps scale_tap · padded[.., s·i + di, s·j + dj]`.
    fn forward_taps(&self, x: &Tensor, taps: &[Tensor], g: &Geometry) -> Result<Tensor> {
        let s = self.stride;
        let (bottom, right) = (same_padding(g.in_h, g.kernel, s).1, same_padding(g.in_w, g.kernel, s).1);
        // Extra zero rows/columns at the end make the padded size a multiple of the stride; the
        // kernel never reads them.
        let align =
            |size: usize, before: usize, after: usize| (size + before + after).next_multiple_of(s) - size - before;
        let padded = x
            .pad_with_zeros(2, g.pad_top, align(g.in_h, g.pad_top, bottom))?
            .pad_with_zeros(3, g.pad_left, align(g.in_w, g.pad_left, right))?;
        let (b, c, h, w) = padded.dims4()?;
        // [B, C, H/s, s, W/s, s]: padded row s·i + di is (i + di / s, di % s).
        let phases = padded.reshape((b, c, h / s, s, w / s, s))?;
        let mut sum: Option<Tensor> = None;
        for (t, scale) in taps.iter().enumerate() {
            let (di, dj) = (t / g.kernel, t % g.kernel);
            let view = phases
                .narrow(2, di / s, g.out_h)?
                .narrow(3, di % s, 1)?
                .narrow(4, dj / s, g.out_w)?
                .narrow(5, dj % s, 1)?
                .squeeze(D::Minus1)?
                .squeeze(3)?;
            let term = view.broadcast_mul(scale)?;
            sum = Some(match sum {
                None => term,
                Some(acc) => (acc + term)?,
            });
        }
        sum.ok_or_else(|| candle_core::Error::Msg("depthwise kernel without taps".into()))
    }
}

impl Module for DepthwiseConv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let geometry = self.geometry(x)?;
        match &self.implementation {
            Implementation::Cpu(weight) => x.contiguous()?.apply_op1(CpuDepthwise {
                weight: weight.clone(),
                geometry,
            }),
            Implementation::Taps(taps) => self.forward_taps(x, taps, &geometry),
        }
    }
}

/// Sizes of one depthwise convolution call.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    /// `B * C` planes.
    planes: usize,
    channels: usize,
    kernel: usize,
    stride: usize,
    in_h: usize,
    in_w: usize,
    out_h: usize,
    out_w: usize,
    pad_top: usize,
    pad_left: usize,
}

impl Geometry {
    /// Input index along an axis for output index `o` and kernel offset `k`, if inside the image.
    fn source(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + k).checked_sub(pad).filter(|&i| i < size)
    }

    /// The output columns `ow` whose input column `ow * stride + dj - pad_left` is inside the
    /// image, and the input column of the first of them.
    fn valid_columns(&self, dj: usize) -> (std::ops::Range<usize>, usize) {
        // Clamped: on an input smaller than the padding (a 1x1 map under a 5x5 kernel) no output
        // column may read some taps at all.
        let first = self.pad_left.saturating_sub(dj).div_ceil(self.stride).min(self.out_w);
        let end = (self.in_w + self.pad_left)
            .saturating_sub(dj)
            .div_ceil(self.stride)
            .min(self.out_w)
            .max(first);
        (
            first..end,
            (first * self.stride + dj).saturating_sub(self.pad_left).min(self.in_w),
        )
    }

    /// The input plane `[planes, in_h, in_w]` of a contiguous f32 storage.
    fn input<'a>(storage: &'a CpuStorage, layout: &Layout, len: usize) -> Result<&'a [f32]> {
        match storage {
            CpuStorage::F32(data) => Ok(&data[layout.start_offset()..layout.start_offset() + len]),
            other => candle_core::bail!("the CPU depthwise kernel needs f32, got {:?}", other.dtype()),
        }
    }
}

/// Forward CPU kernel.
struct CpuDepthwise {
    weight: Arc<Vec<f32>>,
    geometry: Geometry,
}

impl CustomOp1 for CpuDepthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
        let input = Geometry::input(storage, layout, g.planes * in_plane)?;
        let mut out = vec![0f32; g.planes * out_plane];
        out.par_chunks_mut(out_plane).enumerate().for_each(|(p, out)| {
            let x = &input[p * in_plane..(p + 1) * in_plane];
            let w = &self.weight[(p % g.channels) * g.kernel * g.kernel..][..g.kernel * g.kernel];
            for oh in 0..g.out_h {
                let out_row = &mut out[oh * g.out_w..(oh + 1) * g.out_w];
                for di in 0..g.kernel {
                    let Some(ih) = Geometry::source(oh, di, g.stride, g.pad_top, g.in_h) else {
                        continue;
                    };
                    let x_row = &x[ih * g.in_w..(ih + 1) * g.in_w];
                    for dj in 0..g.kernel {
                        let (columns, x_start) = g.valid_columns(dj);
                        let weight = w[di * g.kernel + dj];
                        for (y, v) in out_row[columns]
                            .iter_mut()
                            .zip(x_row[x_start..].iter().step_by(g.stride))
                        {
                            *y += weight * v;
                        }
                    }
                }
            }
        });
        let dims = layout.dims();
        Ok((CpuStorage::F32(out), Shape::from((dims[0], dims[1], g.out_h, g.out_w))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad_res.contiguous()?.apply_op1_no_bwd(&CpuDepthwiseInputGrad {
            weight: self.weight.clone(),
            geometry: self.geometry,
            input_shape: arg.shape().clone(),
        })?;
        Ok(Some(grad))
    }
}

/// Gradient of [`CpuDepthwise`] with respect to its input (a transposed depthwise convolution).
struct CpuDepthwiseInputGrad {
    weight: Arc<Vec<f32>>,
    geometry: Geometry,
    input_shape: Shape,
}

impl CustomOp1 for CpuDepthwiseInputGrad {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-input-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.geometry;
        let (in_plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
        let grad_out = Geometry::input(storage, layout, g.planes * out_plane)?;
        let mut grad_in = vec![0f32; g.planes * in_plane];
        grad_in.par_chunks_mut(in_plane).enumerate().for_each(|(p, grad_in)| {
            let dy = &grad_out[p * out_plane..(p + 1) * out_plane];
            let w = &self.weight[(p % g.channels) * g.kernel * g.kernel..][..g.kernel * g.kernel];
            for oh in 0..g.out_h {
                let dy_row = &dy[oh * g.out_w..(oh + 1) * g.out_w];
                for di in 0..g.kernel {
                    let Some(ih) = Geometry::source(oh, di, g.stride, g.pad_top, g.in_h) else {
                        continue;
                    };
                    let dx_row = &mut grad_in[ih * g.in_w..(ih + 1) * g.in_w];
                    for dj in 0..g.kernel {
                        let (columns, x_start) = g.valid_columns(dj);
                        let weight = w[di * g.kernel + dj];
                        for (dx, dy) in dx_row[x_start..].iter_mut().step_by(g.stride).zip(&dy_row[columns]) {
                            *dx += weight * dy;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(grad_in), self.input_shape.clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;

    /// Deterministic, non-symmetric test values.
    fn values(shape: &[usize], seed: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n)
            .map(|i| ((i as f32 * 0.37 + seed).sin() * 10.0).round() / 10.0)
            .collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// The reference: explicit SAME padding, then candle's grouped convolution.
    fn grouped_reference(x: &Tensor, weight: &Tensor, stride: usize) -> Tensor {
        let (_, c, h, w) = x.dims4().unwrap();
        let k = weight.dim(2).unwrap();
        let (top, bottom) = same_padding(h, k, stride);
        let (left, right) = same_padding(w, k, stride);
        let padded = x
            .pad_with_zeros(2, top, bottom)
            .unwrap()
            .pad_with_zeros(3, left, right)
            .unwrap();
        padded.conv2d(weight, 0, stride, 1, c).unwrap()
    }

    #[test]
    fn same_padding_follows_tensorflow() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 3, 1), (1, 1));
        assert_eq!(same_padding(7, 1, 2), (0, 0));
    }

    #[test]
    fn cpu_kernel_and_taps_match_grouped_convolution() {
        for (k, stride, h, w) in [
            (3, 1, 6, 5),
            (3, 2, 6, 6),
            (5, 2, 7, 8),
            (5, 1, 4, 4),
            (3, 2, 1, 1),
            (5, 2, 2, 3),
            (5, 1, 1, 1),
            (5, 1, 2, 2),
            (3, 1, 1, 2),
        ] {
            let x = values(&[2, 3, h, w], 0.3);
            let weight = values(&[3, 1, k, k], 1.7);
            let want = grouped_reference(&x, &weight, stride);
            let conv = DepthwiseConv2d::new(&weight, stride).unwrap();
            assert!(matches!(conv.implementation, Implementation::Cpu(_)));
            let cpu = conv.forward(&x).unwrap();
            let taps_conv = DepthwiseConv2d::new(&weight.to_dtype(DType::F64).unwrap(), stride).unwrap();
            let taps = taps_conv
                .forward(&x.to_dtype(DType::F64).unwrap())
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap();
            assert_eq!(cpu.dims(), want.dims(), "k {k} stride {stride} {h}x{w}");
            assert!(
                max_diff(&cpu, &want) < 1e-5,
                "cpu kernel, k {k} stride {stride} {h}x{w}"
            );
            assert!(max_diff(&taps, &want) < 1e-5, "taps, k {k} stride {stride} {h}x{w}");
        }
    }

    #[test]
    fn cpu_kernel_gradient_matches_taps_gradient() {
        for (k, stride, h, w) in [(3, 1, 7, 6), (5, 2, 7, 6), (3, 2, 7, 6), (5, 1, 1, 1), (5, 2, 2, 3)] {
            let x = Var::from_tensor(&values(&[2, 3, h, w], 0.9)).unwrap();
            let weight = values(&[3, 1, k, k], 2.3);
            let upstream = values(&[2, 3, h.div_ceil(stride), w.div_ceil(stride)], 4.1);
            let loss = |conv: &DepthwiseConv2d| {
                conv.forward(x.as_tensor())
                    .unwrap()
                    .mul(&upstream)
                    .unwrap()
                    .sum_all()
                    .unwrap()
            };
            let cpu_conv = DepthwiseConv2d::new(&weight, stride).unwrap();
            let taps_conv = DepthwiseConv2d {
                implementation: Implementation::Taps(tap_scales(&weight).unwrap()),
                ..cpu_conv.clone()
            };
            let cpu_grad = loss(&cpu_conv).backward().unwrap().remove(x.as_tensor()).unwrap();
            let taps_grad = loss(&taps_conv).backward().unwrap().remove(x.as_tensor()).unwrap();
            assert!(max_diff(&cpu_grad, &taps_grad) < 1e-5, "k {k} stride {stride}");
        }
    }
}
