//! MLflow's key rules, checked on the keys a run logs from its config (the flattened params and the
//! `tracking.tags`), so that a bad key is a configuration error with its file position before any
//! run starts, instead of a run that fails when the store refuses it.

use super::{flat_params_of, ExperimentConfig};
use crate::error::ConfigError;
use crate::tracking::validate_key;

/// Check every `tracking.tags` key and every param key against MLflow's rules (allowed characters,
/// at most 250 characters, a plain relative path). Errors name the offending dotted key.
pub(crate) fn check(config: &ExperimentConfig) -> Result<(), ConfigError> {
    for tag in config.tracking.tags.keys() {
        validate_key("tag", tag).map_err(|e| ConfigError::at_key(format!("tracking.tags.{tag}"), format!("{e}")))?;
    }
    for param in flat_params_of(config).keys() {
        validate_key("param", param).map_err(|e| {
            ConfigError::at_key(
                param,
                format!("{e} (every config key is logged as a param: the dotted path to it, with its value)"),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Experiment;

    const EXP: &str = "\
name: q
dataset: {kind: csv-images}
backbone: {kind: efficientnet-lite0}
debiaser: {kind: erm}
tracking:
  tags:
    owner: me
";

    fn error(tags: &str) -> String {
        let text = EXP.replace("    owner: me", tags);
        Experiment::from_str("exp.yaml", &text, Vec::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_tag_keys_load() {
        let e = Experiment::from_str("exp.yaml", EXP, Vec::new()).unwrap();
        assert_eq!(e.config.tracking.tags["owner"], "me");
    }

    #[test]
    fn a_tag_key_with_a_colon_is_located() {
        let e = error("    owner: me\n    a:b: x");
        assert!(
            e.starts_with("exp.yaml:8:5: `tracking.tags.a:b`: tag key \"a:b\" contains ':'"),
            "{e}"
        );
    }

    #[test]
    fn a_tag_key_over_250_characters_is_located() {
        let long = "k".repeat(300);
        let e = error(&format!("    {long}: x"));
        assert!(
            e.starts_with(&format!("exp.yaml:7:5: `tracking.tags.{long}`: tag key")),
            "{e}"
        );
        assert!(e.contains("300 characters long; MLflow allows at most 250"), "{e}");
    }

    #[test]
    fn a_tag_key_whose_param_key_is_too_long_is_located() {
        let long = "k".repeat(240);
        let e = error(&format!("    {long}: x"));
        assert!(
            e.starts_with(&format!("exp.yaml:7:5: `tracking.tags.{long}`: param key")),
            "{e}"
        );
        assert!(e.contains("254 characters long"), "{e}");
    }
}
