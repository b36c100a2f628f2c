//! A plugin section of an experiment: `kind:` plus the plugin's own settings.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_norway::{Mapping, Value};

use crate::error::ConfigError;

/// Name of the hidden key the loader adds to every plugin section so that a spec knows its own
/// dotted path (serde gives a `Deserialize` impl no context).
pub(crate) const PATH_KEY: &str = "__fairlab_path";

/// A plugin section: `{kind: NAME, ...settings}`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSpec {
    /// The plugin name selected by `kind:`.
    pub kind: String,
    /// The other settings of the section, for the plugin to deserialise.
    pub params: Mapping,
    /// Dotted path of the section in the experiment (e.g. `debiaser.optimizer`), for messages.
    pub path: String,
}

impl PluginSpec {
    /// A spec built in code (tests, defaults).
    pub fn new(path: &str, kind: &str, params: Mapping) -> Self {
        Self {
            kind: kind.to_string(),
            params,
            path: path.to_string(),
        }
    }

    /// Deserialise the settings into the plugin's typed config. Unknown keys and wrong types are
    /// [`ConfigError`]s naming the full dotted key (the CLI adds file, line and column).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let value = Value::Mapping(self.params.clone());
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let message = e.into_inner().to_string();
            let key = crate::config::error_key(&self.path, &inner, &message);
            ConfigError::at_key(
                key,
                format!("{message} (in the `{}` {} plugin's settings)", self.kind, self.path),
            )
        })
    }
}

impl<'de> Deserialize<'de> for PluginSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut params = Mapping::deserialize(deserializer)?;
        let path = match params.remove(PATH_KEY) {
            Some(Value::String(p)) => p,
            _ => String::new(),
        };
        let kind = match params.remove("kind") {
            Some(Value::String(k)) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`kind` must be a plugin name (a string), got {}",
                    serde_norway::to_string(&other).unwrap_or_default().trim()
                )))
            }
            None => {
                return Err(D::Error::custom(
                    "missing `kind` (the plugin to use); `fairlab plugins` lists them",
                ))
            }
        };
        Ok(Self { kind, params, path })
    }
}

impl Serialize for PluginSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = Mapping::new();
        map.insert(Value::String("kind".into()), Value::String(self.kind.clone()));
        for (k, v) in &self.params {
            let mut v = v.clone();
            strip_paths(&mut v);
            map.insert(k.clone(), v);
        }
        map.serialize(serializer)
    }
}

/// Remove the loader's hidden path keys from nested plugin sections.
fn strip_paths(value: &mut Value) {
    match value {
        Value::Mapping(map) => {
            map.remove(PATH_KEY);
            map.values_mut().for_each(strip_paths);
        }
        Value::Sequence(items) => items.iter_mut().for_each(strip_paths),
        _ => {}
    }
}
