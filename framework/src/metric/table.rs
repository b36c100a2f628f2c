//! A plain-text rendering of a [`MetricsReport`] for terminals.

use std::fmt::Write;

use super::report::MetricsReport;

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

/// Left-align the first column, right-align the others, two spaces between columns.
fn render(header: Vec<String>, rows: Vec<Vec<String>>) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(c));
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - width(c));
            if i == 0 {
                line.push_str(c);
                line.push_str(&pad);
            } else {
                line.push_str("  ");
                line.push_str(&pad);
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
