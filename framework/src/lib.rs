//! # fairlab-framework
//!
//! The core of fairlab: the plugin traits ([`Backbone`], [`Optimizer`], [`Debiaser`], [`Metric`],
//! [`Dataset`], [`Tracker`]), the [`Registry`] that maps YAML `kind:` names to plugins, the typed
//! YAML [`config`] and its [`sweep`]s, the experiment [`runner`] and the tracking layer ([`tracking`]).
//!
//! Plugins live in separate crates under `plugins/`; each exposes `register(&mut Registry)`.

pub mod backbone;
pub mod config;
pub mod dataset;
pub mod debiaser;
pub mod device;
pub mod digest;
pub mod error;
pub mod features;
pub mod hub;
pub mod interrupt;
pub mod leakage;
pub mod metric;
pub mod optimizer;
pub mod preprocess;
pub mod probe;
pub mod progress;
pub mod registry;
pub mod runner;
pub mod sinkhorn;
pub mod sweep;
pub mod tensor_io;
pub mod text_table;
pub mod tracking;

pub use backbone::Backbone;
pub use dataset::{Dataset, Sample, Split};
pub use debiaser::{Debiaser, FitContext, Predictor};
pub use error::{ConfigError, RunFailure};
pub use metric::Metric;
pub use optimizer::{Optimizer, StepReport};
pub use registry::Registry;
pub use tracking::Tracker;

/// The fairlab version, logged as a tag with every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
