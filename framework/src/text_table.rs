//! Aligned plain-text tables for terminals: one renderer for every command that prints rows.

/// How the columns after the first are aligned (the first is always left-aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// `rows` under `header`, each column padded to its widest cell (counted in characters), two spaces
/// between columns, no trailing spaces, one line per row.
pub fn render(header: &[String], rows: &[Vec<String>], others: Align) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - width(cell));
            if i > 0 {
                line.push_str("  ");
            }
            if i == 0 || others == Align::Left {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let header = strings(&["set", "n", "auc"]);
        let rows = vec![strings(&["overall", "12", "0.5"]), strings(&["sex = F", "3", "-"])];
        assert_eq!(
            render(&header, &rows, Align::Right),
            "set       n  auc\noverall  12  0.5\nsex = F   3    -\n"
        );
        assert_eq!(
            render(&header, &rows, Align::Left),
            "set      n   auc\noverall  12  0.5\nsex = F  3   -\n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let rows = vec![strings(&["é…", "x"])];
        assert_eq!(render(&strings(&["ab", "c"]), &rows, Align::Left), "ab  c\né…  x\n");
    }
}
