//! BLIP (Li et al. 2022) for captioning in transformers' `BlipForConditionalGeneration`
//! layout: configs read from `config.json`, the vision tower (with its pooled output) and the
//! teacher-forced caption decoder, numerically identical to transformers.

pub mod backbone;
pub mod config;
mod model;
mod text_decoder;
mod vision;

pub use backbone::BlipBackbone;
pub use config::{BlipConfig, BlipTextConfig, BlipVisionConfig};
pub use model::BlipForConditionalGeneration;
