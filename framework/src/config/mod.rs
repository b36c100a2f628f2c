//! Typed YAML experiment configuration.
//!
//! YAML is parsed with `serde_norway`, a maintained fork of the archived `serde_yaml` with the same
//! API and data model (`serde_yml` is avoided: RustSec advisory RUSTSEC-2025-0068). Every section is
//! deserialised into a typed struct that rejects unknown keys; plugin sections are [`PluginSpec`]s
//! that the selected plugin deserialises into its own typed config with [`PluginSpec::parse`].

mod plugin_spec;

pub use plugin_spec::PluginSpec;

/// The dotted key an error is about: `base` + the serde path inside it, plus the offending field
/// for "unknown field" errors (serde reports those at the containing map).
pub(crate) fn error_key(base: &str, inner: &str, message: &str) -> String {
    let mut key = base.to_string();
    if !inner.is_empty() && inner != "." {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(inner);
    }
    if let Some(field) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
        if !key.ends_with(field) {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(field);
        }
    }
    key
}
