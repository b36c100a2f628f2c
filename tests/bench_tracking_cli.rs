//! `fairlab bench tracking` through the binary: without a tracking server it refuses at once with
//! what to set (exit 2); against a real MLflow server (`FAIRLAB_MLFLOW_SERVER`, which
//! `scripts/test.sh` starts with `scripts/mlflow-server.sh`) a small run prints the JSON object
//! `scripts/bench-tracking.sh` reads.

mod common;

use assert_cmd::Command;
use predicates::prelude::*;

use common::shared_server;

fn fairlab() -> Command {
    let mut cmd = Command::cargo_bin("fairlab").unwrap();
    cmd.env_remove("MLFLOW_TRACKING_URI").env_remove("RUST_LOG");
    cmd
}

#[test]
fn without_a_tracking_server_it_says_what_to_set() {
    fairlab().args(["bench", "tracking"]).assert().code(2).stderr(
        predicate::str::contains("MLFLOW_TRACKING_URI is not set").and(predicate::str::contains("http://HOST:PORT")),
    );
    fairlab()
        .args(["bench", "tracking"])
        .env("MLFLOW_TRACKING_URI", "file:./mlruns")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "MLFLOW_TRACKING_URI=file:./mlruns is a local store",
        ));
}

#[test]
fn a_small_run_against_a_real_server_prints_every_field() {
    let Some(server) = shared_server() else { return };
    let output = fairlab()
        .env("MLFLOW_TRACKING_URI", &server)
        .args(["bench", "tracking", "--points", "2000", "--in-flight", "1,4", "--json"])
        .args(["--experiment", "fairlab bench tracking test"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&output).expect("one JSON object");
    assert_eq!(report["server"], server.trim_end_matches('/'));
    assert!(
        report["mlflow_version"].as_str().is_some_and(|v| !v.is_empty()),
        "{report}"
    );
    assert_eq!(report["runs"], 1);
    assert_eq!(report["points_per_run"], 2000);
    let number = |pointer: &str| {
        report
            .pointer(pointer)
            .and_then(serde_json::Value::as_f64)
            .filter(|x| x.is_finite() && *x > 0.0)
            .unwrap_or_else(|| panic!("{pointer} is not a positive number in {report}"))
    };
    let rate = number("/fairlab/points_per_s");
    assert!((rate * number("/fairlab/wall_s") - 2000.0).abs() < 1e-6, "{report}");
    let (median, p99, max) = (
        number("/fairlab/call_us/median"),
        number("/fairlab/call_us/p99"),
        number("/fairlab/call_us/max"),
    );
    assert!(median <= p99 && p99 <= max, "{report}");
    let ceiling = number("/ceiling/points_per_s");
    assert!(
        (number("/fairlab_over_ceiling") - rate / ceiling).abs() < 1e-9,
        "{report}"
    );
    assert_eq!(report["ceiling"]["batch"], 1000);
    let trials = report["ceiling"]["trials"].as_array().unwrap();
    let tried: Vec<_> = trials.iter().map(|t| t["in_flight"].as_u64().unwrap()).collect();
    assert_eq!(tried, [1, 4]);
    assert!(trials
        .iter()
        .any(|t| t["points_per_s"] == report["ceiling"]["points_per_s"]));
}
