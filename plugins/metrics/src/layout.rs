//! The header of a predictions CSV: which field of a record holds the label, the score, the
//! prediction and each attribute, and how problems are located in the file.

use fairlab_framework::error::Location;
use fairlab_framework::ConfigError;

use crate::predictions::{Y_PRED, Y_SCORE, Y_TRUE};

/// What one field of a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The true label.
    Label,
    /// The score.
    Score,
    /// The hard prediction.
    Prediction,
    /// The attribute with this index among the selected ones.
    Attribute(usize),
    /// A column that is not read.
    Unused,
}

/// Which field of a record holds what.
pub(crate) struct Layout {
    /// The column names, in file order.
    pub(crate) names: Vec<String>,
    /// The field of the true labels.
    pub(crate) y_true: usize,
    /// The field of the scores.
    pub(crate) y_score: usize,
    /// The field of the hard predictions, if any.
    pub(crate) y_pred: Option<usize>,
    /// The fields of the selected attributes, in the order they were selected.
    pub(crate) attributes: Vec<usize>,
    /// The role of every field, in file order.
    pub(crate) roles: Vec<Role>,
}

/// An error about the whole file `source`.
pub(crate) fn file_error(source: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(message).with_location(Location {
        source: source.to_string(),
        line: None,
        column: None,
    })
}

impl Layout {
    /// The layout of a header row; `group_cols` selects the attribute columns (all other columns
    /// when empty).
    pub(crate) fn new(source: &str, header: &csv::ByteRecord, group_cols: &[String]) -> Result<Self, ConfigError> {
        let mut names = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let name = String::from_utf8(field.to_vec())
                .map_err(|_| file_error(source, format!("row 1, column {}: the name is not valid UTF-8", i + 1)))?;
            names.push(name);
        }
        let header_error =
            |column: &str, message: String| file_error(source, format!("row 1, column `{column}`: {message}"));
        let find = |name: &str| -> Result<Option<usize>, ConfigError> {
            let mut found = names.iter().enumerate().filter(|(_, n)| *n == name).map(|(i, _)| i);
            let first = found.next();
            if found.next().is_some() {
                return Err(header_error(
                    name,
                    "the header names this column more than once".to_string(),
                ));
            }
            Ok(first)
        };
        let columns = || names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let required = |name: &str| {
            find(name)?.ok_or_else(|| header_error(name, format!("missing column; the header has {}", columns())))
        };
        let y_true = required(Y_TRUE)?;
        let y_score = required(Y_SCORE)?;
        let y_pred = find(Y_PRED)?;
        let attributes = if group_cols.is_empty() {
            let mut attributes = Vec::new();
            for (i, name) in names.iter().enumerate() {
                if ![Y_TRUE, Y_SCORE, Y_PRED].contains(&name.as_str()) {
                    find(name)?;
                    attributes.push(i);
                }
            }
            attributes
        } else {
            let mut attributes: Vec<usize> = Vec::new();
            for col in group_cols {
                if [Y_TRUE, Y_SCORE, Y_PRED].contains(&col.as_str()) {
                    return Err(header_error(
                        col,
                        "--group-col must name an attribute column, not a label, score or prediction column"
                            .to_string(),
                    ));
                }
                let i = find(col)?.ok_or_else(|| {
                    header_error(
                        col,
                        format!("no such column (--group-col); the header has {}", columns()),
                    )
                })?;
                if !attributes.contains(&i) {
                    attributes.push(i);
                }
            }
            attributes
        };
        let mut roles = vec![Role::Unused; names.len()];
        roles[y_true] = Role::Label;
        roles[y_score] = Role::Score;
        if let Some(y_pred) = y_pred {
            roles[y_pred] = Role::Prediction;
        }
        for (a, &field) in attributes.iter().enumerate() {
            roles[field] = Role::Attribute(a);
        }
        Ok(Self {
            names,
            y_true,
            y_score,
            y_pred,
            attributes,
            roles,
        })
    }

    /// Number of fields of a record.
    pub(crate) fn width(&self) -> usize {
        self.names.len()
    }

    /// An error at data row `record` (0-based, after the header) and, when known, a column.
    pub(crate) fn error(&self, source: &str, record: usize, column: Option<usize>, message: String) -> ConfigError {
        let row = record + 2;
        let message = match column {
            Some(c) => format!("row {row}, column `{}`: {message}", self.names[c]),
            None => format!("row {row}: {message}"),
        };
        file_error(source, message)
    }
}
