//! ViT input embeddings: the image is cut into patch tokens by the patch "convolution" (kernel =
//! stride = patch size), a learned class token goes first, and learned position embeddings are
//! added.

use candle_core::{IndexOp, Result, Tensor};
use candle_nn::Linear;

/// Patch, class and position embeddings of a ViT tower. The model modules load the tensors
/// under their own names and shapes and hand them over here.
///
/// The patch convolution is computed as what it is, a linear map of each non-overlapping patch:
/// the same numbers as `conv2d`, with a backward pass, and in every dtype candle's matmul has
/// (its CPU `conv2d` has no bf16).
#[derive(Debug, Clone)]
pub struct PatchEmbeddings {
    projection: Linear,
    class_embedding: Tensor,
    position_embedding: Tensor,
    num_channels: usize,
    patch_size: usize,
    image_size: usize,
    config_prefix: &'static str,
}

impl PatchEmbeddings {
    /// `patch_weight`: the convolution kernel `[D, C, P, P]`; `patch_bias`: `[D]` if the
    /// convolution has one; `class_embedding`: `[D]`; `position_embedding`: `[1 + patches, D]`;
    /// `image_size`: the input height and width. `config_prefix` (e.g. `vision_config`) names the
    /// config in errors about the input size.
    pub fn new(
        patch_weight: &Tensor,
        patch_bias: Option<Tensor>,
        class_embedding: Tensor,
        position_embedding: Tensor,
        image_size: usize,
        config_prefix: &'static str,
    ) -> Result<Self> {
        let (_, num_channels, patch_size, _) = patch_weight.dims4()?;
        Ok(Self {
            projection: Linear::new(patch_weight.flatten_from(1)?, patch_bias),
            class_embedding,
            position_embedding,
            num_channels,
            patch_size,
            image_size,
            config_prefix,
        })
    }

    /// `pixel_values: [B, C, S, S]` (any float dtype; cast to the weights' dtype) to tokens
    /// `[B, 1 + patches, D]`, class token first, patches in row-major order.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = pixel_values.dims4()?;
        let (size, patch) = (self.image_size, self.patch_size);
        if (channels, height, width) != (self.num_channels, size, size) {
            candle_core::bail!(
                "pixel_values are {channels}x{height}x{width} but {prefix}.num_channels = {} and \
                 {prefix}.image_size = {size} expect {}x{size}x{size}",
                self.num_channels,
                self.num_channels,
                prefix = self.config_prefix
            );
        }
        // Like a strided convolution, drop the pixels past the last whole patch.
        let grid = size / patch;
        let patches = pixel_values
            .to_dtype(self.class_embedding.dtype())?
            .narrow(2, 0, grid * patch)?
            .narrow(3, 0, grid * patch)?
            .reshape((batch, channels, grid, patch, grid, patch))?
            .permute((0, 2, 4, 1, 3, 5))?
            .reshape((batch, grid * grid, channels * patch * patch))?
            .apply(&self.projection)?;
        let hidden = self.class_embedding.dim(0)?;
        let class = self
            .class_embedding
            .reshape((1, 1, hidden))?
            .broadcast_as((batch, 1, hidden))?;
        let tokens = Tensor::cat(&[&class, &patches], 1)?;
        let num_tokens = tokens.dim(1)?;
        tokens.broadcast_add(&self.position_embedding.i(..num_tokens)?)
    }
}
