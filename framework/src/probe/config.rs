//! The settings every probe-based method shares.

use serde::Deserialize;

use crate::config::PluginSpec;

/// How a probe is trained. Methods with settings of their own embed it with `#[serde(flatten)]`
/// (and `deny_unknown_fields` on their own struct), so that their YAML section stays flat.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Passes over the training features.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Samples per optimiser step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// The optimiser (`kind: adamw`, `sgd`, ...).
    #[serde(default = "default_optimizer")]
    pub optimizer: PluginSpec,
    /// Standardise features with the training mean and standard deviation first.
    #[serde(default = "default_true")]
    pub standardize: bool,
}

impl Default for ProbeConfig {
    /// Every setting at its default: 30 epochs of batch 64, AdamW (lr 1e-3, weight decay 1e-4),
    /// standardised features.
    fn default() -> Self {
        serde_norway::from_str("{}").expect("every probe setting has a default")
    }
}

fn default_epochs() -> usize {
    30
}
fn default_batch_size() -> usize {
    64
}
fn default_true() -> bool {
    true
}
fn default_optimizer() -> PluginSpec {
    let params = serde_norway::from_str("{lr: 0.001, weight_decay: 0.0001}").expect("static YAML");
    PluginSpec::new("debiaser.optimizer", "adamw", params)
}
