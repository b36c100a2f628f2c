//! Sample groups for group-aware training: the values of one sensitive attribute, optionally
//! crossed with the label.

use std::collections::BTreeMap;

use crate::dataset::Split;
use crate::debiaser::DataAccess;
use crate::error::ConfigError;
use crate::metric::mlflow_name;

/// A group id for every sample of a split, and the groups' names.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    ids: Vec<u32>,
    names: Vec<String>,
}

/// The name a method's `attribute` setting selects: the given one, or the dataset's first when
/// `None`. An unknown or missing attribute is a [`ConfigError`] keyed `key` listing the available
/// ones.
pub fn attribute_name<'a>(
    data: &'a dyn DataAccess,
    attribute: Option<&'a str>,
    key: &str,
) -> Result<&'a str, ConfigError> {
    let names = data.attribute_names();
    let available = || {
        if names.is_empty() {
            "the dataset has no sensitive attributes".to_string()
        } else {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("the dataset's attributes are {}", quoted.join(", "))
        }
    };
    let name = match attribute {
        Some(name) => name,
        None => names
            .first()
            .ok_or_else(|| ConfigError::at_key(key, format!("no attribute to group by: {}", available())))?,
    };
    if names.iter().any(|n| n == name) {
        Ok(name)
    } else {
        Err(ConfigError::at_key(
            key,
            format!("unknown attribute `{name}`; {}", available()),
        ))
    }
}

/// The column of `split` that [`attribute_name`] selects.
pub fn attribute_column<'a>(
    data: &'a dyn DataAccess,
    split: Split,
    attribute: Option<&'a str>,
    key: &str,
) -> Result<&'a [String], ConfigError> {
    let name = attribute_name(data, attribute, key)?;
    Ok(data
        .split(split)
        .attribute(data.attribute_names(), name)
        .expect("attribute_name returns a known attribute"))
}

impl Groups {
    /// The groups of `split` by `attribute` (`None`: the dataset's first attribute), crossed with
    /// the label when `by_label`. An unknown attribute is a [`ConfigError`] keyed `key` (the
    /// setting that named it, e.g. `debiaser.attribute`) listing the available ones.
    pub fn of(
        data: &dyn DataAccess,
        split: Split,
        attribute: Option<&str>,
        by_label: bool,
        key: &str,
    ) -> Result<Self, ConfigError> {
        let column = attribute_column(data, split, attribute, key)?;
        let labels = &data.split(split).labels;
        Ok(Self::from_columns(column, by_label.then_some(labels.as_slice())))
    }

    /// Groups from an attribute column and, when given, the labels. Groups are numbered in the
    /// sorted order of (value, label) and named by the MLflow-legal value, `_y<label>` appended
    /// when crossed with the label (`M`, `F_y1`, `40-59_y0`).
    pub fn from_columns(values: &[String], labels: Option<&[u8]>) -> Self {
        let key = |i: usize| (values[i].as_str(), labels.map(|l| l[i]));
        let mut numbering: BTreeMap<(&str, Option<u8>), u32> = (0..values.len()).map(|i| (key(i), 0)).collect();
        let mut names = Vec::with_capacity(numbering.len());
        for (id, ((value, label), number)) in numbering.iter_mut().enumerate() {
            *number = id as u32;
            let label = label.map(|l| format!("_y{l}")).unwrap_or_default();
            names.push(format!("{}{label}", mlflow_name(value)));
        }
        let ids = (0..values.len()).map(|i| numbering[&key(i)]).collect();
        Self { ids, names }
    }

    /// The group id of every sample, in the split's order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// The name of every group, by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many samples each group has, by id.
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.names.len()];
        self.ids.iter().for_each(|&g| sizes[g as usize] += 1);
        sizes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn groups_are_numbered_in_sorted_order_and_named_legally() {
        let values = strings(&["M", "F", "M", "80+"]);
        let by_value = Groups::from_columns(&values, None);
        assert_eq!(by_value.names(), ["80plus", "F", "M"]);
        assert_eq!(by_value.ids(), [2, 1, 2, 0]);
        assert_eq!(by_value.sizes(), [1, 1, 2]);
        let crossed = Groups::from_columns(&values, Some(&[1, 0, 0, 1]));
        assert_eq!(crossed.names(), ["80plus_y1", "F_y0", "M_y0", "M_y1"]);
        assert_eq!(crossed.ids(), [3, 1, 2, 0]);
    }
}
