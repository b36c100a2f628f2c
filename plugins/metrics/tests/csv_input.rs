//! Reading predictions CSV: what is accepted, and that every bad input is a `ConfigError` naming
//! the file, the row (header = row 1) and the column.

use fairlab_framework::metric::evaluate;
use fairlab_framework::Registry;
use fairlab_metrics::{parse_predictions, Predictions};

fn parse(text: &str) -> Predictions {
    parse_predictions("preds.csv", text.as_bytes(), &[]).unwrap()
}

/// The error message for `text` with `--group-col` columns `groups`.
fn error(text: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    parse_predictions("preds.csv", text.as_bytes(), &groups)
        .unwrap_err()
        .to_string()
}

fn assert_names(message: &str, parts: &[&str]) {
    assert!(message.starts_with("preds.csv: "), "{message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` not in: {message}");
    }
}

#[test]
fn reads_labels_scores_predictions_and_attributes() {
    let p = parse(
        "y_true,y_score,y_pred,site,sex\n1,0.9,1,\"Boston, MA\",F\n0,0.2,0,São Paulo,M\n0,1,1,\"Boston, MA\",M\n",
    );
    assert_eq!(p.y_true, [1, 0, 0]);
    assert_eq!(p.y_score, [0.9, 0.2, 1.0]);
    assert_eq!(p.y_pred, Some(vec![1, 0, 1]));
    assert_eq!(p.attributes.len(), 2);
    assert_eq!(p.attributes[0].name, "site");
    assert_eq!(p.attributes[0].levels, ["Boston, MA", "São Paulo"]);
    assert_eq!(p.attributes[0].codes, [0, 1, 0]);
    assert_eq!(p.attributes[1].levels, ["F", "M"]);
}

#[test]
fn group_col_selects_and_orders_attributes() {
    let text = "a,y_score,b,y_true,c\nx,0.5,u,1,p\ny,0.25,v,0,q\n";
    let p = parse_predictions("preds.csv", text.as_bytes(), &["c".to_string(), "a".to_string()]).unwrap();
    let names: Vec<&str> = p.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["c", "a"]);
    assert_eq!(p.y_true, [1, 0]);
    assert_eq!(p.y_pred, None);
}

#[test]
fn accepts_a_byte_order_mark_crlf_and_numeric_labels() {
    let p = parse("\u{feff}y_true,y_score,g\r\n1.0,0.5,a\r\n0,0.25,b\r\n");
    assert_eq!(p.y_true, [1, 0]);
    assert_eq!(p.attributes[0].levels, ["a", "b"]);
}

#[test]
fn large_files_parse_in_chunks_like_small_ones() {
    let mut text = String::from("y_true,y_score,g,h\n");
    let rows = 700_000;
    for i in 0..rows {
        text.push_str(&format!(
            "{},{},{},h{}\n",
            i % 2,
            (i % 1000) as f64 / 1000.0,
            ["a", "b", "c"][i % 3],
            i % 40
        ));
    }
    assert!(text.len() > 8 << 20, "the text must span several chunks");
    let p = parse(&text);
    assert_eq!(p.len(), rows);
    assert_eq!(p.y_score[rows - 1], ((rows - 1) % 1000) as f64 / 1000.0);
    assert_eq!(p.attributes[1].levels.len(), 40);
    let h = &p.attributes[1];
    assert!((0..rows).all(|i| h.levels[h.codes[i] as usize] == format!("h{}", i % 40)));
    // A bad row deep in a later chunk is reported with its row in the whole file.
    let bad = text.replacen("1,0.999,", "1,1.5,", 1);
    let line = bad.lines().position(|l| l.starts_with("1,1.5,")).unwrap() + 1;
    assert_names(&error(&bad, &[]), &[&format!("row {line}, column `y_score`"), "1.5"]);
}

#[test]
fn evaluates_through_the_registry() {
    let mut registry = Registry::new();
    fairlab_metrics::register(&mut registry);
    let p = parse("y_true,y_score,g\n1,0.9,a\n0,0.1,a\n1,0.4,b\n0,0.6,b\n");
    let report = evaluate(&registry, &p.as_set(), 0.5).unwrap();
    assert_eq!(report.overall("auc"), Some(0.75));
    assert_eq!(report.group_value("g", "a", "auc"), Some(1.0));
    assert_eq!(report.group_value("g", "b", "auc"), Some(0.0));
    assert_eq!(report.attribute_value("g", "auc_gap"), Some(1.0));
}

#[test]
fn a_missing_column_is_named() {
    assert_names(
        &error("y_score,g\n0.5,a\n", &[]),
        &["row 1", "column `y_true`", "missing"],
    );
    assert_names(&error("y_true,g\n1,a\n", &[]), &["row 1", "column `y_score`"]);
}

#[test]
fn an_unknown_group_col_is_named() {
    assert_names(
        &error("y_true,y_score,g\n1,0.5,a\n", &["sex"]),
        &["row 1", "column `sex`", "--group-col", "`g`"],
    );
    assert_names(
        &error("y_true,y_score,g\n1,0.5,a\n", &["y_score"]),
        &["column `y_score`", "--group-col"],
    );
}

#[test]
fn a_label_not_0_or_1_is_named() {
    assert_names(
        &error("y_true,y_score\n1,0.5\n2,0.5\n", &[]),
        &["row 3, column `y_true`", "\"2\""],
    );
    assert_names(
        &error("y_true,y_score\nyes,0.5\n", &[]),
        &["row 2, column `y_true`", "\"yes\""],
    );
    assert_names(
        &error("y_true,y_score,y_pred\n1,0.5,0.5\n", &[]),
        &["row 2, column `y_pred`"],
    );
}

#[test]
fn a_score_outside_the_unit_interval_or_nan_is_named() {
    assert_names(
        &error("y_true,y_score\n1,0.5\n0,1.2\n", &[]),
        &["row 3, column `y_score`", "1.2"],
    );
    assert_names(&error("y_true,y_score\n1,-0.1\n", &[]), &["row 2, column `y_score`"]);
    assert_names(
        &error("y_true,y_score\n1,NaN\n", &[]),
        &["row 2, column `y_score`", "NaN"],
    );
    assert_names(&error("y_true,y_score\n1,\n", &[]), &["row 2, column `y_score`"]);
    assert_names(
        &error("y_true,y_score\n1,abc\n", &[]),
        &["row 2, column `y_score`", "abc"],
    );
}

#[test]
fn an_empty_file_or_one_without_rows_is_an_error() {
    assert_names(&error("", &[]), &["empty"]);
    assert_names(&error("\n\n", &[]), &["empty"]);
    assert_names(&error("y_true,y_score,g\n", &[]), &["no data rows"]);
}

#[test]
fn a_ragged_row_is_named() {
    assert_names(
        &error("y_true,y_score,g\n1,0.5,a\n0,0.5\n", &[]),
        &["row 3, column `g`"],
    );
    assert_names(
        &error("y_true,y_score,g\n1,0.5,a,extra\n", &[]),
        &["row 2", "4 fields", "3"],
    );
}

#[test]
fn a_duplicate_column_is_an_error() {
    assert_names(
        &error("y_true,y_score,g,g\n1,0.5,a,b\n", &[]),
        &["row 1, column `g`", "more than once"],
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let message = fairlab_metrics::read_predictions(&path, &[]).unwrap_err().to_string();
    assert!(message.contains("absent.csv"), "{message}");
}

/// The same rows written plainly and with every group value quoted (which takes the general CSV
/// parser instead of the plain fast path) must read the same, or fail the same way.
#[test]
fn the_plain_fast_path_reads_like_the_csv_parser() {
    let rows: [&[(&str, &str, &str)]; 9] = [
        &[("1", "0.5", "a"), ("0", "0.25", "b b"), ("1", "1", "")],
        &[("1", "0.5", "a"), ("2", "0.5", "b")],
        &[("1", "0.5", "a"), ("0", "0.5", "b,extra")],
        &[("0", " 0.75 ", "x"), ("1.0", "0", "y")],
        &[
            ("1", "1.000", "a long group value"),
            ("0", "5e-1", "a long group valuf"),
            ("1", "+0.25", "é"),
        ],
        &[
            ("0", "0.123456789012345678901", "x"),
            ("1", "0.30000000000000004", "x"),
            ("0", "0.0", "y"),
        ],
        &[("1", "1.0000001", "x")],
        &[("1", ".5", "x"), ("0", "1.", "y")],
        &[("1", "", "x")],
    ];
    for rows in rows {
        let ends = [
            ("\n", ""),
            ("\r\n", ""),
            ("\n", "\n"),
            ("\r\n", "\r\n"),
            ("\r", ""),
            ("\r", "\r\n\n"),
        ];
        for (end, blank) in ends {
            let write = |quote: bool| {
                let mut text = format!("y_true,y_score,g{end}");
                for (i, (y, s, g)) in rows.iter().enumerate() {
                    let g = if quote {
                        g.split(',').map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(",")
                    } else {
                        g.to_string()
                    };
                    text.push_str(&format!("{y},{s},{g}{end}"));
                    if i == 0 {
                        text.push_str(blank);
                    }
                }
                text
            };
            let (plain, quoted) = (write(false), write(true));
            let read = |text: &str| parse_predictions("preds.csv", text.as_bytes(), &[]).map_err(|e| e.to_string());
            assert_eq!(read(&plain), read(&quoted), "{plain:?} vs {quoted:?}");
        }
    }
}

/// Hard predictions on the plain fast path read as on the CSV parser's, bad ones named the same.
#[test]
fn predictions_read_alike_on_both_paths() {
    for (pred, bad) in [("1", false), ("1.0", false), ("2", true), ("", true)] {
        let plain = format!("y_true,y_score,y_pred,g\n1,0.9,{pred},a\n0,0.2,0,b\n");
        let quoted = plain.replace(",a\n", ",\"a\"\n");
        let read = |text: &str| parse_predictions("preds.csv", text.as_bytes(), &[]).map_err(|e| e.to_string());
        assert_eq!(read(&plain), read(&quoted), "{plain:?}");
        assert_eq!(read(&plain).is_err(), bad, "{plain:?}");
    }
    let p = parse("y_true,y_score,y_pred,g\n1,0.9,1,a\n0,0.2,0,b\n");
    assert_eq!(p.y_pred, Some(vec![1, 0]));
    assert_names(
        &error("y_true,y_score,y_pred,g\n1,0.9,1,a\n0,0.2,7,b\n", &[]),
        &["row 3, column `y_pred`", "\"7\""],
    );
}

/// A large file (several chunks) with blank lines, and with a quote in its last chunk, reads as
/// the CSV parser reads it from the first row; a bad row before the quote is named as there.
#[test]
fn large_files_with_blank_lines_or_a_late_quote_read_like_the_csv_parser() {
    let mut text = String::from("y_true,y_score,g\n");
    let rows = 600_000;
    for i in 0..rows {
        text.push_str(&format!("{},0.{:06},g{}\n", i % 2, i % 999_983, i % 7));
        if i % 1000 == 0 {
            text.push_str("\r\n\n");
        }
    }
    assert!(text.len() > 8 << 20, "the text must span several chunks");
    let read = |text: &str| parse_predictions("preds.csv", text.as_bytes(), &[]).map_err(|e| e.to_string());
    let first_quoted = |text: &str| text.replacen(",g0\n", ",\"g0\"\n", 1);
    let plain = read(&text).unwrap();
    assert_eq!(plain.len(), rows);
    assert_eq!(Ok(plain), read(&first_quoted(&text)));

    let last = format!("{},0.{:06},g{}\n", (rows - 1) % 2, (rows - 1) % 999_983, (rows - 1) % 7);
    let late_quote = text.replace(&last, &last.replace(",g", ",\"g").replace('\n', "\"\n"));
    assert_ne!(late_quote, text);
    let quoted = read(&late_quote).unwrap();
    assert_eq!(quoted.len(), rows);
    assert_eq!(Ok(quoted), read(&first_quoted(&late_quote)));

    let bad = late_quote.replacen(",0.000010,", ",1.5,", 1);
    assert_ne!(bad, late_quote);
    assert_eq!(read(&bad), read(&first_quoted(&bad)));
    assert_names(&read(&bad).unwrap_err(), &["row 12, column `y_score`", "1.5"]);
}
