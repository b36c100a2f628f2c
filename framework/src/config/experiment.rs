//! The typed experiment file: one run of one method on one dataset with one backbone.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::PluginSpec;

/// An experiment, as written in `experiments/*.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Short name; the default run name.
    pub name: String,
    /// Free text shown in `fairlab runs show`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Seed for every random choice of the run (initialisation, shuffling, noise).
    #[serde(default)]
    pub seed: u64,
    /// Where the samples come from (`kind: csv-images`, ...).
    pub dataset: PluginSpec,
    /// The image encoder (`kind: efficientnet-lite0`, ...).
    pub backbone: PluginSpec,
    /// The method (`kind: erm`, ...).
    pub debiaser: PluginSpec,
    /// Feature extraction and its cache.
    #[serde(default)]
    pub features: FeaturesConfig,
    /// How predictions are scored.
    #[serde(default)]
    pub evaluation: EvaluationConfig,
    /// Where and how the run is recorded.
    #[serde(default)]
    pub tracking: TrackingConfig,
}

/// Backbone feature extraction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    /// Images per forward pass.
    pub batch_size: usize,
    /// Reuse features saved by an earlier run with the same backbone, weights, preprocessing and data.
    pub cache: bool,
    /// Where cached features are stored.
    pub cache_dir: PathBuf,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            cache: true,
            cache_dir: PathBuf::from(".fairlab/features"),
        }
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// Scores at or above this are predicted positive.
    pub threshold: f64,
    /// Measure how much of each sensitive attribute the model's representation still reveals:
    /// logs `test_leakage_auc_<attribute>` (see [`crate::leakage`]).
    pub leakage: bool,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            leakage: true,
        }
    }
}

/// Tracking settings (the store itself is chosen by `MLFLOW_TRACKING_URI`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// MLflow experiment name (`MLFLOW_EXPERIMENT_NAME` overrides it).
    pub experiment: String,
    /// Run name; defaults to the experiment file's `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// Extra tags for the run.
    pub tags: BTreeMap<String, String>,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            experiment: "fairlab".to_string(),
            run_name: None,
            tags: BTreeMap::new(),
        }
    }
}
