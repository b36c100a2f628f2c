//! Flat `(name, value)` pairs for experiment trackers, with MLflow-legal names.

use std::collections::HashSet;

use super::report::{MetricsReport, SetReport};

impl MetricsReport {
    /// Every defined value as `(name, value)`, undefined ones skipped: `{prefix}_{key}` for all
    /// samples (including `{prefix}_n`), `{prefix}_{attribute}_{key}` per attribute and
    /// `{prefix}_{attribute}_{group}_{key}` per group. Attribute and group names are made
    /// MLflow-legal by [`mlflow_name`]; groups whose legal names collide get `_2`, `_3`, ...
    /// appended in group order. With an empty prefix the names start at the key.
    pub fn flatten(&self, prefix: &str) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        push_set(&mut out, prefix, &self.overall);
        for attribute in &self.attributes {
            let stem = join(prefix, &mlflow_name(&attribute.name));
            for m in &attribute.metrics {
                if let Some(v) = m.value {
                    out.push((join(&stem, &m.key), v));
                }
            }
            let mut taken = HashSet::new();
            for (group, set) in &attribute.groups {
                let base = mlflow_name(group);
                let mut name = base.clone();
                let mut k = 2;
                while !taken.insert(name.clone()) {
                    name = format!("{base}_{k}");
                    k += 1;
                }
                push_set(&mut out, &join(&stem, &name), set);
            }
        }
        out
    }
}

/// `name` with every character MLflow does not allow in a metric name replaced: `+` becomes
/// `plus` (so `80+` stays readable) and anything other than an alphanumeric, `_`, `-`, `.` or a
/// space becomes `_`. `/` is replaced too, so that no name can read as a path (`a/../b`).
pub fn mlflow_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '+' => out.push_str("plus"),
            c if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ') => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}_{name}")
    }
}

fn push_set(out: &mut Vec<(String, f64)>, stem: &str, set: &SetReport) {
    out.push((join(stem, "n"), set.n as f64));
    for m in &set.metrics {
        if let Some(v) = m.value {
            out.push((join(stem, &m.key), v));
        }
    }
}
