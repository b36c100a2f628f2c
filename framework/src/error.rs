//! Error classes the CLI maps to exit codes: [`ConfigError`] (exit 2, bad usage or configuration)
//! and [`RunFailure`] (exit 1, the run started and failed). Everything else is an `anyhow::Error`
//! that also ends a run as FAILED.

use std::fmt;

/// Where in a YAML source a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (or `--set` for a command-line override).
    pub source: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        Ok(())
    }
}

/// A bad experiment file, a bad `--set` override, an unknown plugin kind or a bad plugin setting.
/// The CLI exits with code 2 on it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}{}{}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default(), key.as_ref().map(|k| format!("`{k}`: ")).unwrap_or_default(), message)]
pub struct ConfigError {
    /// Where the problem is, when it could be located.
    pub location: Option<Location>,
    /// The dotted key path of the offending setting, when known.
    pub key: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// An error with only a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            location: None,
            key: None,
            message: message.into(),
        }
    }

    /// An error about one key.
    pub fn at_key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            location: None,
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// Give an unkeyed [`ConfigError`] inside `err` the settings key it came from (e.g.
    /// `backbone.model`); any other error passes through unchanged.
    pub fn attach_key(err: anyhow::Error, key: impl Into<String>) -> anyhow::Error {
        match err.downcast::<ConfigError>() {
            Ok(mut config_error) => {
                config_error.key.get_or_insert_with(|| key.into());
                config_error.into()
            }
            Err(other) => other,
        }
    }

    /// Attach a location.
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }
}

/// A run that started and failed for a reason that is not a bug: missing data, a NaN loss, ...
/// The run is recorded FAILED with this reason; the CLI exits with code 1.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct RunFailure {
    /// Human-readable reason, also stored in the run's `fairlab.failure_reason` tag.
    pub reason: String,
}

impl RunFailure {
    /// A failure with a reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}
