//! MLflow's rules for what one logging call may hold (keys, value lengths, batch limits) and for
//! artifact paths, checked the same way by every store, so that a run written to one store can be
//! replayed to any other.

use std::collections::BTreeMap;

use anyhow::bail;

use super::limits::{
    MAX_ENTITIES_PER_BATCH, MAX_KEY_LENGTH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH, MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
};
use super::MetricPoint;

/// Check a batch: MLflow's limits, every key, every param and tag value's length, and no param
/// twice with different values. Returns the params by key (duplicates with equal values merged).
pub(crate) fn check_batch<'a>(
    run_id: &str,
    metrics: &[MetricPoint],
    params: &'a [(String, String)],
    tags: &[(String, String)],
) -> anyhow::Result<BTreeMap<&'a str, &'a str>> {
    check_batch_limits(run_id, metrics.len(), params.len(), tags.len())?;
    for point in metrics {
        validate_key("metric", &point.key)?;
    }
    let mut batch_params: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in params {
        validate_key("param", key)?;
        validate_value_length("param", key, value, MAX_PARAM_VALUE_LENGTH)?;
        if let Some(previous) = batch_params.insert(key, value) {
            if previous != value {
                bail!(
                    "param `{key}` appears twice in one batch for run {run_id}, with values {previous:?} and {value:?}"
                );
            }
        }
    }
    for (key, value) in tags {
        validate_key("tag", key)?;
        validate_value_length("tag", key, value, MAX_TAG_VALUE_LENGTH)?;
    }
    Ok(batch_params)
}

/// Reject a batch larger than MLflow accepts.
fn check_batch_limits(run_id: &str, metrics: usize, params: usize, tags: usize) -> anyhow::Result<()> {
    for (what, count, limit) in [
        ("metric points", metrics, MAX_METRICS_PER_BATCH),
        ("params", params, MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", tags, MAX_PARAMS_TAGS_PER_BATCH),
        (
            "metrics, params and tags together",
            metrics + params + tags,
            MAX_ENTITIES_PER_BATCH,
        ),
    ] {
        if count > limit {
            bail!("a batch for run {run_id} holds {count} {what}; MLflow accepts at most {limit} per batch (split it)");
        }
    }
    Ok(())
}

/// Check a metric, param or tag key against MLflow's rules, in their portable form (the one MLflow
/// applies on Windows, where `:` cannot be in a file name): letters, digits, `_ - . /` and spaces,
/// at most 250 characters, and a normalised relative path (the key becomes a file path).
pub(crate) fn validate_key(kind: &str, key: &str) -> anyhow::Result<()> {
    if key.is_empty() {
        bail!("a {kind} key must not be empty");
    }
    let length = key.chars().count();
    if length > MAX_KEY_LENGTH {
        bail!("{kind} key `{key}` is {length} characters long; MLflow allows at most {MAX_KEY_LENGTH}");
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ')))
    {
        bail!(
            "{kind} key {key:?} contains {bad:?}; keys may only contain letters, digits, `_`, `-`, `.`, `/` and spaces"
        );
    }
    if key.starts_with("..")
        || key.starts_with('/')
        || key.ends_with('/')
        || key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
    {
        bail!("{kind} key {key:?} is not a plain relative path: MLflow stores keys as file paths, so a key may not start with `/` or `..`, end with `/`, contain `//`, or have `.` or `..` parts");
    }
    Ok(())
}

/// Reject a param or tag value longer than MLflow stores.
pub(crate) fn validate_value_length(kind: &str, key: &str, value: &str, limit: usize) -> anyhow::Result<()> {
    let length = value.chars().count();
    if length > limit {
        bail!("the value of {kind} `{key}` is {length} characters long; MLflow stores at most {limit}");
    }
    Ok(())
}

/// Split an artifact path into its parts, rejecting absolute paths and `..`; empty and `.` parts
/// are dropped, so `""` is the artifact root.
pub(crate) fn artifact_parts(path: &str) -> anyhow::Result<Vec<&str>> {
    if path.starts_with('/') {
        bail!("artifact path `{path}` must be relative to the run's artifact folder");
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.contains(&"..") {
        bail!("artifact path `{path}` must stay inside the run's artifact folder (no `..`)");
    }
    Ok(parts)
}
