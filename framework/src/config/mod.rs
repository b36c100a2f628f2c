//! Typed YAML experiment configuration.
//!
//! YAML is parsed with `serde_norway`, a maintained fork of the archived `serde_yaml` with the same
//! API and data model. (`serde_yml`, the other fork, is avoided: it has a RustSec advisory.) The
//! file is parsed into a YAML value, `--set` [`Override`]s are applied, and the result is
//! deserialised into [`ExperimentConfig`], which rejects unknown keys. Plugin sections are
//! [`PluginSpec`]s that the selected plugin deserialises into its own typed settings with
//! [`PluginSpec::parse`]. Every [`ConfigError`] carries the dotted key; [`Experiment::locate`] adds
//! file, line and column from a [`SourceMap`] of the file (or names the `--set` it came from).
//! Keys a run would log (params, `tracking.tags`) are checked against MLflow's key rules on load;
//! what a run shows of the config has its secrets redacted ([`Experiment::redacted_yaml`],
//! [`crate::tracking::is_secret_key`]).

mod experiment;
mod logged_keys;
mod overrides;
mod plugin_spec;
mod source_map;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

pub use experiment::{EvaluationConfig, ExperimentConfig, FeaturesConfig, TrackingConfig};
pub use overrides::Override;
pub use plugin_spec::PluginSpec;
pub use source_map::SourceMap;

use crate::error::{ConfigError, Location};

/// A loaded experiment: the typed config plus what is needed to explain errors about it.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The typed, resolved config.
    pub config: ExperimentConfig,
    /// The file it came from.
    pub path: PathBuf,
    /// The overrides applied on top of the file.
    pub overrides: Vec<Override>,
    source_map: SourceMap,
}

impl Experiment {
    /// Read `path`, apply `overrides` (`KEY=VALUE` strings) and deserialise.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Experiment, ConfigError> {
        let (doc, source_map) = read_document(path)?;
        Self::from_document(path.to_path_buf(), doc, source_map, parse_overrides(overrides)?)
    }

    /// Parse an experiment from text; `source` names it in messages.
    pub fn from_str(source: &str, text: &str, overrides: Vec<Override>) -> Result<Experiment, ConfigError> {
        let (doc, source_map) = parse_document(source, text)?;
        Self::from_document(PathBuf::from(source), doc, source_map, overrides)
    }

    /// An experiment from an already resolved config (a sweep trial's, say); `path` is the file it
    /// was planned from. Errors about it carry keys but no file positions.
    pub fn from_config(path: PathBuf, config: ExperimentConfig) -> Experiment {
        Experiment {
            config,
            path,
            overrides: Vec::new(),
            source_map: SourceMap::default(),
        }
    }

    /// Apply `overrides` in order to a parsed document (see [`parse_document`]) and deserialise it;
    /// errors are located through `source_map` and the overrides.
    pub(crate) fn from_document(
        path: PathBuf,
        mut doc: Value,
        source_map: SourceMap,
        overrides: Vec<Override>,
    ) -> Result<Experiment, ConfigError> {
        for o in &overrides {
            o.apply(&mut doc)
                .map_err(|e| locate(&source_map, std::slice::from_ref(o), e))?;
        }
        let config = config_from_value(doc).map_err(|e| locate(&source_map, &overrides, e))?;
        Ok(Experiment {
            config,
            path,
            overrides,
            source_map,
        })
    }

    /// Add file/line/column (or the `--set` that set the key) to an error that has only a key.
    pub fn locate(&self, error: ConfigError) -> ConfigError {
        locate(&self.source_map, &self.overrides, error)
    }

    /// The resolved config as YAML with the value of every secret key (see
    /// [`is_secret_key`](crate::tracking::is_secret_key)) replaced by `***`: what a run saves as
    /// its `config.yaml` artifact and `--dry-run` prints.
    pub fn redacted_yaml(&self) -> String {
        let mut value = serde_norway::to_value(&self.config).expect("an experiment config always serialises");
        crate::tracking::redact_yaml(&mut value);
        serde_norway::to_string(&value).expect("a YAML value always serialises")
    }

    /// The resolved config flattened to dotted keys (MLflow params): scalars as written, lists as
    /// YAML flow sequences. Values are raw: secrets included, long values whole (a run logs them
    /// through [`loggable_params`](crate::tracking::loggable_params)).
    pub fn flat_params(&self) -> BTreeMap<String, String> {
        flat_params_of(&self.config)
    }
}

/// A config flattened to dotted keys, see [`Experiment::flat_params`].
fn flat_params_of(config: &ExperimentConfig) -> BTreeMap<String, String> {
    let value = serde_norway::to_value(config).expect("an experiment config always serialises");
    let mut out = BTreeMap::new();
    flatten(&value, "", &mut out);
    out
}

/// Locate an error's key: in the `--set` that wrote it (or a section containing it), else in the file.
pub(crate) fn locate(source_map: &SourceMap, overrides: &[Override], mut error: ConfigError) -> ConfigError {
    if error.location.is_some() {
        return error;
    }
    let Some(key) = error.key.clone() else {
        return error;
    };
    let written_by = |o: &&Override| key == o.key || key.starts_with(&format!("{}.", o.key));
    error.location = Some(match overrides.iter().rev().find(written_by) {
        Some(o) => o.locate(source_map, &key),
        None => source_map.locate(&key),
    });
    error
}

/// Parse `KEY=VALUE` strings into [`Override`]s.
pub(crate) fn parse_overrides(raw: &[String]) -> Result<Vec<Override>, ConfigError> {
    raw.iter().map(|o| Override::parse(o)).collect()
}

/// Read an experiment file into a YAML document and the [`SourceMap`] of its keys.
pub(crate) fn read_document(path: &Path) -> Result<(Value, SourceMap), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(format!("cannot read experiment file {shown}: {e}")))?;
    parse_document(&shown, &text)
}

/// Parse experiment text (a mapping of sections) into a YAML document and the [`SourceMap`] of its
/// keys; `source` names it in messages.
pub(crate) fn parse_document(source: &str, text: &str) -> Result<(Value, SourceMap), ConfigError> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        let location = e.location().map(|l| Location {
            source: source.to_string(),
            line: Some(l.line()),
            column: Some(l.column()),
        });
        ConfigError {
            location,
            key: None,
            message: format!("invalid YAML: {e}"),
        }
    })?;
    if !matches!(doc, Value::Mapping(_)) {
        return Err(ConfigError::new(
            "an experiment file must be a mapping of sections (name, dataset, backbone, debiaser, ...)",
        )
        .with_location(Location {
            source: source.to_string(),
            line: Some(1),
            column: Some(1),
        }));
    }
    Ok((doc, SourceMap::build(source, text)))
}

/// Deserialise a (resolved) document into the typed config and check the keys a run would log
/// from it; errors carry the dotted key only.
pub(crate) fn config_from_value(mut doc: Value) -> Result<ExperimentConfig, ConfigError> {
    mark_plugin_paths(&mut doc, "");
    let config = deserialize_at("", doc)?;
    logged_keys::check(&config)?;
    Ok(config)
}

/// Deserialise the value found at the dotted key `base` (empty for the whole document); errors
/// carry the full dotted key of the offending setting (unlocated).
pub(crate) fn deserialize_at<T: serde::de::DeserializeOwned>(base: &str, value: Value) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let message = e.into_inner().to_string();
        ConfigError::at_key(error_key(base, &inner, &message), message)
    })
}

fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let k = match k {
                    Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other).unwrap_or_default().trim().to_string(),
                };
                flatten(v, &if prefix.is_empty() { k } else { format!("{prefix}.{k}") }, out);
            }
        }
        Value::Sequence(items) => {
            let parts: Vec<String> = items.iter().map(scalar_text).collect();
            out.insert(prefix.to_string(), format!("[{}]", parts.join(", ")));
        }
        other => {
            out.insert(prefix.to_string(), scalar_text(other));
        }
    }
}

/// A value on one line, YAML flow style (`{kind: adamw, lr: 0.001}`, `[sex, age_group]`), with
/// floats to 6 significant digits: for messages and tables, not for reading back.
pub fn inline_yaml(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_f64() => short_float(n.as_f64().unwrap_or(f64::NAN)),
        Value::Sequence(items) => format!("[{}]", items.iter().map(inline_yaml).collect::<Vec<_>>().join(", ")),
        Value::Mapping(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", inline_yaml(k), inline_yaml(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, inline_yaml(&tagged.value)),
        other => scalar_text(other),
    }
}

/// A float with at most 6 significant digits, in exponent notation when very small or large.
pub(crate) fn short_float(x: f64) -> String {
    let rounded: f64 = format!("{x:.5e}").parse().unwrap_or(x);
    if rounded != 0.0 && rounded.is_finite() && !(1e-4..1e6).contains(&rounded.abs()) {
        format!("{rounded:e}")
    } else {
        format!("{rounded}")
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .replace('\n', " "),
    }
}

/// Tell every plugin section (a mapping with a `kind` key) its dotted path.
fn mark_plugin_paths(value: &mut Value, path: &str) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                if let Value::String(k) = k {
                    let child = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    mark_plugin_paths(v, &child);
                }
            }
            if !path.is_empty() && map.contains_key("kind") {
                map.insert(
                    Value::String(plugin_spec::PATH_KEY.into()),
                    Value::String(path.to_string()),
                );
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                mark_plugin_paths(v, &format!("{path}.{i}"));
            }
        }
        _ => {}
    }
}

/// The dotted key an error is about: `base` + the serde path inside it, plus the offending field
/// for "unknown field" errors (serde reports those at the containing map).
pub(crate) fn error_key(base: &str, inner: &str, message: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    if !base.is_empty() {
        segments.push(base);
    }
    if !inner.is_empty() && inner != "." {
        segments.push(inner);
    }
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        if segments.last() != Some(&field) {
            segments.push(field);
        }
    }
    segments.join(".")
}

#[cfg(test)]
mod tests;
