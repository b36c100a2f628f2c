//! Transformer building blocks shared by the CLIP and BLIP models: the `hidden_act` activations,
//! layer norm, the two-layer MLP, multi-head scaled-dot-product attention, attention masks, the
//! pre-norm encoder, ViT patch embeddings, and config-file helpers.
//!
//! Everything here is written with differentiable candle tensor ops (no custom op without a
//! backward pass), so gradients flow back to the inputs, e.g. to `pixel_values`. Layer norm and
//! softmax run in at least f32 whatever the model dtype. Tensor names specific to one model family stay in
//! that family's module; the names here (`fc1`, `fc2`, `layer_norm1`, `layer_norm2`, `self_attn`,
//! `mlp`, `layers.N`) are the ones CLIP and BLIP share.

pub mod activation;
pub mod attention;
pub mod config;
pub mod encoder;
pub mod layer_norm;
pub mod mask;
pub mod mlp;
pub mod outputs;
pub mod patch_embeddings;
pub mod precision;

pub use activation::Activation;
pub use encoder::{Encoder, EncoderConfig, SelfAttention};
pub use layer_norm::LayerNorm;
pub use mlp::Mlp;
pub use outputs::PooledOutputs;
pub use patch_embeddings::PatchEmbeddings;
