//! `fairlab metrics` end to end through the binary: the golden cases of `tests/fixtures/metrics/`
//! as JSON, the table format, and bad input (exit 2, a message naming file, row and column).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics")
}

fn fairlab() -> Command {
    let mut cmd = Command::cargo_bin("fairlab").unwrap();
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Every difference between `actual` and `expected` (keys starting with `_` are notes), numbers
/// within 1e-9 relative or 1e-12 absolute.
fn compare(path: &str, expected: &Value, actual: &Value, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e.iter().filter(|(k, _)| !k.starts_with('_')) {
                match a.get(key) {
                    Some(av) => compare(&format!("{path}.{key}"), ev, av, errors),
                    None => errors.push(format!("{path}.{key}: missing")),
                }
            }
            for key in a.keys().filter(|k| !e.contains_key(*k)) {
                errors.push(format!("{path}.{key}: not expected"));
            }
        }
        (Value::Number(e), Value::Number(a)) => {
            let (e, a) = (e.as_f64().unwrap(), a.as_f64().unwrap());
            if (e - a).abs() > 1e-12 && (e - a).abs() > 1e-9 * e.abs() {
                errors.push(format!("{path}: expected {e}, got {a}"));
            }
        }
        (e, a) if e == a => {}
        (e, a) => errors.push(format!("{path}: expected {e}, got {a}")),
    }
}

#[test]
fn json_output_matches_every_golden_case() {
    let mut errors = Vec::new();
    let mut cases = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let csv = entry.unwrap().path();
        if csv.extension().is_none_or(|x| x != "csv") {
            continue;
        }
        cases += 1;
        let stem = csv.with_extension("");
        let extra = std::fs::read_to_string(stem.with_extension("args")).unwrap_or_default();
        let output = fairlab()
            .arg("metrics")
            .arg(&csv)
            .args(["--format", "json"])
            .args(extra.split_whitespace())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}: {}",
            csv.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let actual: Value = serde_json::from_slice(&output.stdout).unwrap();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(stem.with_extension("expected.json")).unwrap()).unwrap();
        compare(
            &stem.file_name().unwrap().to_string_lossy(),
            &expected,
            &actual,
            &mut errors,
        );
    }
    assert!(cases >= 6, "found {cases} golden cases");
    assert!(
        errors.is_empty(),
        "{} differences:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn table_output_lists_sets_attributes_and_warnings() {
    fairlab()
        .arg("metrics")
        .arg(fixtures().join("case_06.csv"))
        .assert()
        .success()
        .stdout(predicate::str::contains("overall"))
        .stdout(predicate::str::contains("age_group = 80+"))
        .stdout(predicate::str::contains("worst_auc"))
        .stdout(predicate::str::contains("group '80+' has no positive sample"));
}

#[test]
fn group_col_selects_the_attributes() {
    let output = fairlab()
        .arg("metrics")
        .arg(fixtures().join("case_02.csv"))
        .args(["--group-col", "sex", "--format", "json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let attributes: Vec<&String> = report["attributes"].as_object().unwrap().keys().collect();
    assert_eq!(attributes, ["sex"]);
}

/// Run on `text` (written to `bad.csv`) with extra arguments; expect exit 2 and a message with
/// the file name and every one of `parts`.
fn assert_rejected(text: &str, args: &[&str], parts: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    std::fs::write(&path, text).unwrap();
    let mut assert = fairlab().arg("metrics").arg(&path).args(args).assert().code(2);
    assert = assert.stderr(predicate::str::contains("bad.csv"));
    for part in parts {
        assert = assert.stderr(predicate::str::contains(*part));
    }
}

#[test]
fn bad_input_exits_2_naming_file_row_and_column() {
    assert_rejected("y_score,sex\n0.5,F\n", &[], &["row 1", "`y_true`"]);
    assert_rejected("y_true,y_score,sex\n1,0.5,F\n2,0.5,M\n", &[], &["row 3", "`y_true`"]);
    assert_rejected("y_true,y_score,sex\n1,1.5,F\n", &[], &["row 2", "`y_score`"]);
    assert_rejected("y_true,y_score,sex\n1,nan,F\n", &[], &["row 2", "`y_score`", "NaN"]);
    assert_rejected("", &[], &["empty"]);
    assert_rejected("y_true,y_score,sex\n1,0.5,F\n0,0.5\n", &[], &["row 3", "`sex`"]);
    assert_rejected(
        "y_true,y_score,sex\n1,0.5,F\n",
        &["--group-col", "race"],
        &["row 1", "`race`"],
    );
}

#[test]
fn a_missing_file_exits_2() {
    fairlab()
        .args(["metrics", "no/such/preds.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("preds.csv"));
}

#[test]
fn bootstrap_adds_intervals_to_the_json() {
    let output = fairlab()
        .arg("metrics")
        .arg(fixtures().join("case_02.csv"))
        .args(["--format", "json", "--bootstrap", "50", "--seed", "3"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let auc = &report["attributes"]["sex"]["groups"]["F"]["auc"];
    assert!(
        auc["value"].is_f64() && auc["ci"].as_array().unwrap().len() == 2,
        "{auc}"
    );
    assert_eq!(report["bootstrap"]["seed"], 3);
    fairlab()
        .arg("metrics")
        .arg(fixtures().join("case_02.csv"))
        .args(["--bootstrap", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--bootstrap"));
}
