//! What a run may show of its configuration: secrets are replaced by [`REDACTED`] everywhere a run
//! records or prints its config (params, tags, the `config.yaml` artifact, `--dry-run`, a sweep's
//! plan artifact), and values longer than MLflow stores are cut, with a warning, before they are
//! logged (the MLflow server would cut them silently).
//!
//! A key is a secret by its name, see [`is_secret_key`]. Secret tags are redacted like params
//! rather than dropped: the key stays visible, so a reader can tell that a secret was configured
//! and that its value was deliberately withheld.

use serde_norway::Value;

use super::limits::{MAX_PARAM_VALUE_LENGTH, MAX_TAG_VALUE_LENGTH};

/// What a secret's value is replaced by.
pub const REDACTED: &str = "***";

/// Words that make a key a secret, when a word of the key ends with one of them (`hf_token`,
/// `HFToken`, `accesstoken`, `db_password`, `client_secret`, `apiKey`).
const SECRET_WORDS: [&str; 6] = ["token", "password", "passwd", "secret", "secrets", "apikey"];

/// Whether the value of `key` is a secret that must never be logged or printed.
///
/// The key (a dotted or `/`-separated path, or a single name) is split into parts at `.` and
/// `/`, each part into words at every other non-alphanumeric character (`_`, `-`, spaces) and at
/// camelCase boundaries, all compared case-insensitively. The key is a secret when any word, or
/// any two adjacent words written together, ends with `token`, `password`, `passwd`, `secret`,
/// `secrets` or `apikey`: `tracking.tags.hf_token`, `backbone.api_key`, `apiKey`,
/// `MLFLOW_TRACKING_PASSWORD`, `secrets.hub` (and everything under it), `auth/AccessToken`.
/// Counts and tokenizers are not secrets: `max_tokens`, `tokenizer`, `tokens_per_batch`. The rule
/// errs towards redacting: `pad_token_id` is treated as a secret.
pub fn is_secret_key(key: &str) -> bool {
    key.split(['.', '/']).any(|part| {
        let words = words(part);
        let joined_pairs = words.windows(2).map(|pair| pair.concat());
        words
            .iter()
            .cloned()
            .chain(joined_pairs)
            .any(|word| SECRET_WORDS.iter().any(|secret| word.ends_with(secret)))
    })
}

/// The lowercase words of one key part: split at non-alphanumeric characters and where a lowercase
/// letter or digit is followed by an uppercase one.
fn words(part: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in part.chars() {
        if !c.is_alphanumeric() {
            words.push(std::mem::take(&mut word));
            previous_lower = false;
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_numeric();
        word.extend(c.to_lowercase());
    }
    words.push(word);
    words.retain(|w| !w.is_empty());
    words
}

/// Params as they may be logged: secrets redacted, values longer than MLflow's 6000 characters
/// cut to that length with a warning naming the key and both lengths.
pub fn loggable_params(params: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    loggable("param", MAX_PARAM_VALUE_LENGTH, params)
}

/// Tags as they may be logged: secrets redacted, values longer than MLflow's 8000 characters cut
/// to that length with a warning naming the key and both lengths.
pub fn loggable_tags(tags: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    loggable("tag", MAX_TAG_VALUE_LENGTH, tags)
}

fn loggable(kind: &str, limit: usize, entries: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    entries
        .into_iter()
        .map(|(key, value)| {
            if is_secret_key(&key) {
                return (key, REDACTED.to_string());
            }
            let length = value.chars().count();
            if length <= limit {
                return (key, value);
            }
            tracing::warn!(
                "the value of {kind} `{key}` is {length} characters long; MLflow stores at most {limit}, so its first {limit} are logged"
            );
            let cut = value.chars().take(limit).collect();
            (key, cut)
        })
        .collect()
}

/// Replace the value of every secret key in a YAML document (at any depth, whole sections
/// included) by [`REDACTED`].
pub fn redact_yaml(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            for (key, v) in map.iter_mut() {
                if key.as_str().is_some_and(is_secret_key) {
                    *v = Value::String(REDACTED.to_string());
                } else {
                    redact_yaml(v);
                }
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(redact_yaml),
        Value::Tagged(tagged) => redact_yaml(&mut tagged.value),
        _ => {}
    }
}

/// A `KEY=VALUE` assignment (a `--set` flag) as it may be shown: `KEY=***` when the key is a
/// secret, else unchanged.
pub fn redact_assignment(assignment: &str) -> String {
    match assignment.split_once('=') {
        Some((key, _)) if is_secret_key(key.trim()) => format!("{key}={REDACTED}"),
        _ => assignment.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised_by_their_words() {
        for key in [
            "tracking.tags.hf_token",
            "backbone.api_key",
            "backbone.apiKey",
            "backbone.apikey",
            "x.API-KEY",
            "MLFLOW_TRACKING_PASSWORD",
            "MLFLOW_TRACKING_TOKEN",
            "db.passwd",
            "client_secret",
            "secrets.hub.user",
            "auth/AccessToken",
            "HFToken",
            "githubtoken",
            "pass_word",
            "tracking.tags.Token",
        ] {
            assert!(is_secret_key(key), "{key} is a secret");
        }
        for key in [
            "debiaser.epochs",
            "backbone.tokenizer",
            "backbone.max_tokens",
            "tokens_per_batch",
            "tracking.tags.owner",
            "secretary",
            "keyboard",
            "api",
            "mlflow.note.content",
            "",
        ] {
            assert!(!is_secret_key(key), "{key} is not a secret");
        }
    }

    #[test]
    fn params_have_secrets_redacted_and_long_values_cut() {
        let long = "x".repeat(MAX_PARAM_VALUE_LENGTH + 1000);
        let params = loggable_params([
            ("tracking.tags.hf_token".to_string(), "hf_abc".to_string()),
            ("note".to_string(), long.clone()),
            ("debiaser.epochs".to_string(), "3".to_string()),
        ]);
        assert_eq!(params[0], ("tracking.tags.hf_token".to_string(), REDACTED.to_string()));
        assert_eq!(params[1].1.chars().count(), MAX_PARAM_VALUE_LENGTH);
        assert!(long.starts_with(&params[1].1));
        assert_eq!(params[2], ("debiaser.epochs".to_string(), "3".to_string()));
    }

    #[test]
    fn tags_are_cut_at_the_tag_limit_counting_characters() {
        let fits = "é".repeat(MAX_TAG_VALUE_LENGTH);
        let long = "é".repeat(MAX_TAG_VALUE_LENGTH + 1);
        let tags = loggable_tags([
            ("fits".to_string(), fits.clone()),
            ("long".to_string(), long),
            ("hf_token".to_string(), "hf_abc".to_string()),
        ]);
        assert_eq!(tags[0].1, fits);
        assert_eq!(tags[1].1, fits);
        assert_eq!(tags[2].1, REDACTED);
    }

    #[test]
    fn yaml_secrets_are_redacted_at_any_depth() {
        let mut doc: Value = serde_norway::from_str(
            "name: q\ntracking:\n  tags: {hf_token: hf_abc, owner: me}\nsecrets:\n  hub: [a, b]\nlist:\n  - {api_key: k}\n",
        )
        .unwrap();
        redact_yaml(&mut doc);
        assert!(!serde_norway::to_string(&doc).unwrap().contains("hf_abc"));
        assert_eq!(doc["tracking"]["tags"]["hf_token"], Value::from(REDACTED));
        assert_eq!(doc["tracking"]["tags"]["owner"], Value::from("me"));
        assert_eq!(doc["secrets"], Value::from(REDACTED));
        assert_eq!(doc["list"][0]["api_key"], Value::from(REDACTED));
    }

    #[test]
    fn assignments_show_no_secret_value() {
        assert_eq!(
            redact_assignment("tracking.tags.hf_token=hf_abc"),
            "tracking.tags.hf_token=***"
        );
        assert_eq!(redact_assignment("debiaser.epochs=3"), "debiaser.epochs=3");
        assert_eq!(redact_assignment("no equals sign"), "no equals sign");
    }
}
