//! The golden cases of `tests/fixtures/metrics/` (computed with scikit-learn and fairlearn, see its
//! README), run through the same library calls as `fairlab metrics`: every key within 1e-9
//! relative (or 1e-12 absolute), null where null, no key missing or extra, and every group the
//! case names in `_warnings_about` named in a warning.

use std::path::{Path, PathBuf};

use fairlab_framework::metric::evaluate;
use fairlab_framework::Registry;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/metrics")
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    fairlab_metrics::register(&mut registry);
    registry
}

/// `--threshold T` and `--group-col C` from a case's `.args` file.
fn case_args(path: &Path) -> (f64, Vec<String>) {
    let mut threshold = 0.5;
    let mut group_cols = Vec::new();
    if let Ok(text) = std::fs::read_to_string(path) {
        let mut tokens = text.split_whitespace();
        while let Some(flag) = tokens.next() {
            let value = tokens
                .next()
                .unwrap_or_else(|| panic!("{}: `{flag}` has no value", path.display()));
            match flag {
                "--threshold" => threshold = value.parse().expect("a number"),
                "--group-col" => group_cols.push(value.to_string()),
                other => panic!("{}: unexpected flag `{other}`", path.display()),
            }
        }
    }
    (threshold, group_cols)
}

/// Append to `errors` every difference between `actual` and `expected` under `path`.
fn compare(path: &str, expected: &Value, actual: &Value, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e
                .iter()
                .filter(|(k, _)| !k.starts_with('_') && k.as_str() != "warnings")
            {
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

/// Every group in `_warnings_about` must be named, with its attribute, in some warning.
fn check_warnings(expected: &Value, actual: &Value, errors: &mut Vec<String>) {
    let warnings: Vec<&str> = actual["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for about in expected["_warnings_about"].as_array().into_iter().flatten() {
        let (attribute, group) = (about["attribute"].as_str().unwrap(), about["group"].as_str().unwrap());
        if !warnings
            .iter()
            .any(|w| w.contains(&format!("'{attribute}'")) && w.contains(&format!("'{group}'")))
        {
            errors.push(format!(
                "no warning names attribute '{attribute}' group '{group}': {warnings:?}"
            ));
        }
    }
    if expected["warnings"] != actual["warnings"] {
        errors.push(format!(
            "warnings: expected {}, got {}",
            expected["warnings"], actual["warnings"]
        ));
    }
}

#[test]
fn golden_cases_match_the_contract() {
    let registry = registry();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/fixtures/metrics")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 6,
        "expected at least 6 golden cases, found {}",
        cases.len()
    );
    let mut errors = Vec::new();
    for csv in &cases {
        let stem = csv.with_extension("");
        let (threshold, group_cols) = case_args(&stem.with_extension("args"));
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(stem.with_extension("expected.json")).unwrap()).unwrap();
        let predictions = fairlab_metrics::read_predictions(csv, &group_cols).unwrap();
        let report = evaluate(&registry, &predictions.as_set(), threshold).unwrap();
        let actual = serde_json::to_value(&report).unwrap();
        let name = stem.file_name().unwrap().to_string_lossy().to_string();
        let mut case_errors = Vec::new();
        compare(&name, &expected, &actual, &mut case_errors);
        check_warnings(&expected, &actual, &mut case_errors);
        errors.extend(case_errors);
    }
    assert!(
        errors.is_empty(),
        "{} differences:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
