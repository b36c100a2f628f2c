//! A plain-text rendering of a [`MetricsReport`] for terminals.

use std::fmt::Write;

use super::report::MetricsReport;
use crate::text_table::{self, Align};

/// Per-set columns of the table.
const SET_COLUMNS: [&str; 5] = ["auc", "acc", "tpr", "tnr", "selection_rate"];
/// Per-attribute columns of the table.
const ATTRIBUTE_COLUMNS: [&str; 6] = ["es_auc", "dpd", "deodds", "eo_p", "eo_n", "worst_auc"];

impl MetricsReport {
    /// An aligned text table: a row for all samples and one per group (`n` and the main per-set
    /// metrics), then a row per attribute (the main fairness metrics), then the warnings.
    /// Values have 4 decimals; undefined ones show as `-`.
    pub fn to_table(&self) -> String {
        let mut set_rows = vec![row("overall", self.n, |k| self.overall(k))];
        for a in &self.attributes {
            for (group, set) in &a.groups {
                set_rows.push(row(&format!("{} = {group}", a.name), set.n, |k| set.get(k)));
            }
        }
        let mut header = vec!["set".to_string(), "n".to_string()];
        header.extend(SET_COLUMNS.iter().map(|c| c.to_string()));
        let mut out = render(header, set_rows);

        if !self.attributes.is_empty() {
            let rows = self
                .attributes
                .iter()
                .map(|a| attribute_row(&a.name, |k| a.get(k)))
                .collect();
            let mut header = vec!["attribute".to_string()];
            header.extend(ATTRIBUTE_COLUMNS.iter().map(|c| c.to_string()));
            out.push('\n');
            out.push_str(&render(header, rows));
        }
        if !self.warnings.is_empty() {
            out.push_str("\nwarnings:\n");
            for w in &self.warnings {
                let _ = writeln!(out, "  {w}");
            }
        }
        out
    }
}

fn row(label: &str, n: u64, value: impl Fn(&str) -> Option<f64>) -> Vec<String> {
    let mut cells = vec![label.to_string(), n.to_string()];
    cells.extend(SET_COLUMNS.iter().map(|k| cell(value(k))));
    cells
}

fn attribute_row(label: &str, value: impl Fn(&str) -> Option<f64>) -> Vec<String> {
    let mut cells = vec![label.to_string()];
    cells.extend(ATTRIBUTE_COLUMNS.iter().map(|k| cell(value(k))));
    cells
}

fn cell(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.4}"))
}

fn render(header: Vec<String>, rows: Vec<Vec<String>>) -> String {
    text_table::render(&header, &rows, Align::Right)
}
