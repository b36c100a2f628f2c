//! Helpers for reading a Hugging Face `config.json` and checking its values, with errors that
//! name the offending key.

use std::path::Path;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::EncoderConfig;

/// Read `path` as a JSON object.
pub fn read_json_object(path: &Path) -> anyhow::Result<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => anyhow::bail!("{} is not a JSON object", path.display()),
    }
}

/// Deserialise `value`; an error names the key path, e.g.
/// `vision_config.hidden_act: unsupported activation ...`.
pub fn from_json<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(value).map_err(|err| anyhow::anyhow!("{err}"))
}

/// `key` must be positive.
pub fn ensure_positive(key: &str, value: usize) -> anyhow::Result<()> {
    anyhow::ensure!(value > 0, "{key}: must be positive, got 0");
    Ok(())
}

/// The checks of a tower's encoder settings under the config key `prefix` (e.g.
/// `text_config`): positive sizes, heads dividing the width, a finite positive epsilon.
pub fn ensure_encoder(prefix: &str, cfg: &EncoderConfig) -> anyhow::Result<()> {
    ensure_positive(&format!("{prefix}.hidden_size"), cfg.hidden_size)?;
    ensure_positive(&format!("{prefix}.intermediate_size"), cfg.intermediate_size)?;
    ensure_positive(&format!("{prefix}.num_attention_heads"), cfg.num_attention_heads)?;
    anyhow::ensure!(
        cfg.hidden_size.is_multiple_of(cfg.num_attention_heads),
        "{prefix}.num_attention_heads: {} heads do not divide hidden_size {}",
        cfg.num_attention_heads,
        cfg.hidden_size
    );
    let eps = cfg.layer_norm_eps;
    anyhow::ensure!(
        eps.is_finite() && eps > 0.0,
        "{prefix}.layer_norm_eps: must be a positive number, got {eps}"
    );
    Ok(())
}

/// The checks of a ViT tower's input settings under `prefix`: at least one channel and one
/// patch per image.
pub fn ensure_patches(prefix: &str, num_channels: usize, image_size: usize, patch_size: usize) -> anyhow::Result<()> {
    ensure_positive(&format!("{prefix}.num_channels"), num_channels)?;
    ensure_positive(&format!("{prefix}.patch_size"), patch_size)?;
    anyhow::ensure!(
        image_size >= patch_size,
        "{prefix}.image_size: {image_size} is smaller than patch_size {patch_size}"
    );
    Ok(())
}
