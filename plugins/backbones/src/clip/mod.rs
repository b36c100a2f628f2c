//! CLIP (Radford et al. 2021) in transformers' `CLIPModel` layout: configs read from
//! `config.json`, both towers, the projections and the image-text logits, numerically identical
//! to transformers.

mod attention;
pub mod backbone;
pub mod config;
mod model;
mod text;
mod vision;

pub use backbone::ClipBackbone;
pub use config::{ClipConfig, ClipTextConfig, ClipVisionConfig};
pub use model::{l2_normalize, ClipModel};
pub use text::pooling_positions;
