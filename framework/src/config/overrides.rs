//! `--set a.b.c=value` overrides, applied to the parsed YAML before typed deserialisation. A sweep
//! trial's parameter values are overrides too, written in the file itself.

use serde_norway::{Mapping, Value};

use super::SourceMap;
use crate::error::{ConfigError, Location};

/// One `--set KEY=VALUE` override, or one value a sweep trial sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// Dotted key path (`debiaser.optimizer.lr`); numeric segments index sequences.
    pub key: String,
    /// The value, parsed as YAML (`3`, `1e-3`, `true`, `[sex, age]`, `{kind: sgd}`, or a string).
    pub value: Value,
    /// The override as written, for messages; `KEY=***` when the key is a secret (see
    /// [`is_secret_key`](crate::tracking::is_secret_key)).
    pub raw: String,
    /// `None` for a command-line `--set`; for a value written in the experiment file (a sweep
    /// parameter), the dotted key of the file where it is written (e.g.
    /// `sweep.parameters.seed.values.2`), so that errors point there.
    pub origin: Option<String>,
}

impl Override {
    /// Parse `KEY=VALUE`.
    pub fn parse(written: &str) -> Result<Override, ConfigError> {
        let raw = crate::tracking::redact_assignment(written);
        let bad = |why: &str| {
            ConfigError::new(format!(
                "--set {raw}: {why}; expected KEY=VALUE, e.g. --set debiaser.epochs=5"
            ))
        };
        let (key, value) = written.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(|s| s.trim().is_empty()) {
            return Err(bad("empty key segment"));
        }
        let value = if value.trim().is_empty() {
            Value::String(String::new())
        } else {
            serde_norway::from_str(value).map_err(|e| bad(&format!("the value is not valid YAML ({e})")))?
        };
        Ok(Override {
            key: key.to_string(),
            value,
            raw,
            origin: None,
        })
    }

    /// An override of `key` with a value written at the dotted key `origin` of the experiment file.
    pub(crate) fn from_file(key: &str, value: Value, origin: String) -> Override {
        Override {
            raw: format!("{key}={}", super::inline_yaml(&value)),
            key: key.to_string(),
            value,
            origin: Some(origin),
        }
    }

    /// The command-line flag this override came from, for messages.
    pub fn location(&self) -> Location {
        Location {
            source: format!("--set {}", self.raw),
            line: None,
            column: None,
        }
    }

    /// Where `key` (this override's key or a key inside its value) was written: in the file for an
    /// override with an [`origin`](Self::origin), else on the command line.
    pub(crate) fn locate(&self, source_map: &SourceMap, key: &str) -> Location {
        match &self.origin {
            Some(origin) => source_map.locate(&format!("{origin}{}", &key[self.key.len()..])),
            None => self.location(),
        }
    }

    /// Apply to a document, creating missing mappings on the way. Errors carry the key; the
    /// experiment loader locates them.
    pub fn apply(&self, doc: &mut Value) -> Result<(), ConfigError> {
        let segments: Vec<&str> = self.key.split('.').collect();
        let mut node = doc;
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let here = segments[..i].join(".");
            node = match node {
                Value::Mapping(map) => {
                    let k = Value::String(segment.to_string());
                    if last {
                        map.insert(k, self.value.clone());
                        return Ok(());
                    }
                    map.entry(k).or_insert_with(|| Value::Mapping(Mapping::new()))
                }
                Value::Sequence(seq) => {
                    let index: usize = segment.parse().map_err(|_| {
                        ConfigError::at_key(&self.key, format!("`{here}` is a list; `{segment}` is not an index"))
                    })?;
                    let len = seq.len();
                    let slot = seq.get_mut(index).ok_or_else(|| {
                        ConfigError::at_key(
                            &self.key,
                            format!("`{here}` has {len} items; index {index} is out of range"),
                        )
                    })?;
                    if last {
                        *slot = self.value.clone();
                        return Ok(());
                    }
                    slot
                }
                Value::Null => {
                    *node = Value::Mapping(Mapping::new());
                    let Value::Mapping(map) = node else { unreachable!() };
                    let k = Value::String(segment.to_string());
                    if last {
                        map.insert(k, self.value.clone());
                        return Ok(());
                    }
                    map.entry(k).or_insert_with(|| Value::Mapping(Mapping::new()))
                }
                _ => {
                    return Err(ConfigError::at_key(
                        &self.key,
                        format!("`{here}` is a single value, not a section"),
                    ))
                }
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn sets_nested_keys_and_parses_yaml_values() {
        let mut d = doc("a:\n  b: 1\nl: [x, y]\n");
        Override::parse("a.b=2.5").unwrap().apply(&mut d).unwrap();
        Override::parse("a.c.d=true").unwrap().apply(&mut d).unwrap();
        Override::parse("l.1=z").unwrap().apply(&mut d).unwrap();
        Override::parse("n=[1, 2]").unwrap().apply(&mut d).unwrap();
        assert_eq!(d, doc("a:\n  b: 2.5\n  c: {d: true}\nl: [x, z]\nn: [1, 2]\n"));
    }

    #[test]
    fn rejects_malformed_overrides() {
        assert!(Override::parse("novalue").unwrap_err().to_string().contains("no `=`"));
        assert!(Override::parse("a..b=1")
            .unwrap_err()
            .to_string()
            .contains("empty key segment"));
        let mut d = doc("a: 1\nl: [x]\n");
        let e = Override::parse("a.b=1").unwrap().apply(&mut d).unwrap_err();
        assert!(e.to_string().contains("not a section"), "{e}");
        let e = Override::parse("l.3=1").unwrap().apply(&mut d).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
    }
}
