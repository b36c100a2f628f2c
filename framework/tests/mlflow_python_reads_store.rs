//! Proof that the real MLflow Python client reads what the embedded [`FileStore`] writes: a run
//! is logged through [`ActiveRun`], then `scripts/check_mlflow_store.py` reads it back with
//! `MlflowClient` and the JSON it prints is checked field by field.
//!
//! The Python interpreter is `$FAIRLAB_PYTHON` when set (it must then have `mlflow`), else
//! `.venv/bin/python` under the workspace root. Without one that can import `mlflow`, the test
//! says loudly that it was skipped, and passes; the project's test script installs
//! `mlflow==3.17.2` into `.venv` first, so there it always runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use fairlab_framework::tracking::{
    ActiveRun, FileStore, MetricPoint, RestStore, RunStatus, Tracker, FAILURE_REASON_TAG,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const CONFIG_YAML: &[u8] = b"backbone: clip-vit-b16\nseed: 7\n";
const METRICS_JSON: &[u8] = b"{\"test_auc\": 0.8125}";
const FAILURE: &str = "CUDA out of memory while fitting the debiaser\n(second line: 'quoted' \"too\")";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the framework crate is inside the workspace")
        .to_path_buf()
}

/// The interpreter to use, or why there is none.
fn python_with_mlflow() -> Result<PathBuf, String> {
    let explicit = std::env::var_os("FAIRLAB_PYTHON").map(PathBuf::from);
    let python = match &explicit {
        Some(python) => python.clone(),
        None => {
            let venv = workspace_root().join(".venv/bin/python");
            if !venv.exists() {
                return Err(format!(
                    "FAIRLAB_PYTHON is not set and {} does not exist",
                    venv.display()
                ));
            }
            venv
        }
    };
    let probe = Command::new(&python)
        .args(["-c", "import mlflow; print(mlflow.__version__)"])
        .output();
    let problem = match probe {
        Ok(out) if out.status.success() => return Ok(python),
        Ok(out) => format!(
            "{} cannot import mlflow: {}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("no error message")
        ),
        Err(e) => format!("{} cannot be run: {e}", python.display()),
    };
    // An interpreter named explicitly must work: skipping would hide a broken setup.
    assert!(explicit.is_none(), "FAIRLAB_PYTHON is set, but {problem}");
    Err(problem)
}

/// Run the checker script on one run of `store` (a folder or a server URL) and parse its JSON.
fn read_back(python: &Path, store: &str, run_id: &str) -> Value {
    let script = workspace_root().join("scripts/check_mlflow_store.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(store)
        .arg(run_id)
        .output()
        .expect("the Python interpreter runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("MLflow's Python client read run {run_id} as:\n{stdout}");
    serde_json::from_str(&stdout).expect("the checker prints JSON")
}

/// A value as the checker writes it: a number, or "NaN" / "Infinity" / "-Infinity".
fn as_f64(value: &Value) -> f64 {
    match value {
        Value::Number(n) => n.as_f64().expect("a finite number"),
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => panic!("not a metric value: {other}"),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn mlflow_python_client_reads_what_the_file_store_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("mlruns");
    let store: Arc<dyn Tracker> = Arc::new(FileStore::open(&store_dir).unwrap());
    check_round_trip(
        store,
        &store_dir.display().to_string(),
        "fairlab python check: ünïcode ✓",
    );
}

/// The same run logged to a real MLflow server through the REST store (`FAIRLAB_MLFLOW_SERVER`,
/// which `scripts/test.sh` sets after `scripts/mlflow-server.sh start`), read back through the REST
/// store and through the Python client.
#[test]
fn mlflow_python_client_reads_what_the_rest_store_logged_to_a_server() {
    let Some(server) = std::env::var("FAIRLAB_MLFLOW_SERVER").ok().filter(|s| !s.is_empty()) else {
        assert!(
            std::env::var("FAIRLAB_REQUIRE_MLFLOW").as_deref() != Ok("1"),
            "FAIRLAB_REQUIRE_MLFLOW=1 but FAIRLAB_MLFLOW_SERVER is not set: start one with scripts/mlflow-server.sh start"
        );
        eprintln!("SKIPPED: no MLflow server (FAIRLAB_MLFLOW_SERVER); scripts/mlflow-server.sh start");
        return;
    };
    let store: Arc<dyn Tracker> = Arc::new(RestStore::open(&server).unwrap());
    let experiment = format!("fairlab rest check ünïcode ✓ {}", uuid::Uuid::new_v4().simple());
    check_round_trip(store, &server, &experiment);
}

/// Log a finished run (params, NaN and infinite metrics over steps, tags with newlines and quotes,
/// nested artifacts) and a failed one to `store`, then check that MLflow's Python client, reading
/// `target` (the store's folder or the server's URL), sees every field as the store itself does.
fn check_round_trip(store: Arc<dyn Tracker>, target: &str, experiment: &str) {
    let run_name = "seed: 7 \"quoted\" 'single'";

    let run = ActiveRun::start(
        store.clone(),
        experiment,
        run_name,
        pairs(&[("fairlab.version", fairlab_framework::VERSION)]),
    )
    .unwrap();
    let run_id = run.id().to_string();
    let params = pairs(&[("lr", "0.001"), ("a/b", "nested"), ("backbone", "clip-vit-b16")]);
    run.log_params(&params).unwrap();
    run.log_metrics(0, &[("loss", 1.0), ("odd", f64::NAN), ("nan_last", 2.0)])
        .unwrap();
    run.log_metrics(1, &[("loss", 0.5), ("odd", f64::INFINITY), ("nan_last", f64::NAN)])
        .unwrap();
    run.log_metrics(2, &[("loss", 1.0 / 3.0), ("test_auc", 0.8125), ("tiny", 1e-7)])
        .unwrap();
    run.set_tags(&pairs(&[("dataset", "fairvlmed"), ("note", "multi\nline")]))
        .unwrap();
    run.log_artifact("config.yaml", CONFIG_YAML).unwrap();
    run.log_artifact("sub/metrics.json", METRICS_JSON).unwrap();
    run.finish().unwrap();

    let failed = ActiveRun::start(store.clone(), experiment, "seed-8", Vec::new()).unwrap();
    let failed_id = failed.id().to_string();
    failed.log_metrics(0, &[("loss", 0.9)]).unwrap();
    failed.fail(FAILURE).unwrap();

    let python = match python_with_mlflow() {
        Ok(python) => python,
        Err(why) => {
            eprintln!();
            eprintln!("##################################################################");
            eprintln!("## SKIPPED: MLflow's Python client did not check the file store ##");
            eprintln!("## because {why}");
            eprintln!("## Install it: python3 -m venv .venv && .venv/bin/pip install mlflow==3.17.2");
            eprintln!("## (or point FAIRLAB_PYTHON at an interpreter that has mlflow)");
            eprintln!("##################################################################");
            return;
        }
    };

    // The finished run.
    let got = read_back(&python, target, &run_id);
    let ours = store.get_run(&run_id).unwrap();
    assert_eq!(got["warnings"], serde_json::json!([]), "MLflow warned");
    assert_eq!(got["run_id"], run_id.as_str());
    assert_eq!(got["run_name"], run_name);
    assert_eq!(got["status"], "FINISHED");
    assert_eq!(got["lifecycle_stage"], "active");
    assert_eq!(got["start_time"], ours.info.start_time);
    assert_eq!(got["end_time"], ours.info.end_time.unwrap());
    assert_eq!(got["artifact_uri"], ours.info.artifact_uri.as_str());
    assert_eq!(got["experiment"]["name"], experiment);
    assert_eq!(got["experiment"]["experiment_id"], ours.info.experiment_id.as_str());
    assert_eq!(got["experiment"]["lifecycle_stage"], "active");
    assert_eq!(got["tracking_uri"], store.uri().as_str());

    let got_params: Vec<(String, String)> = got["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let mut expected_params = params.clone();
    expected_params.sort();
    assert_eq!(got_params, expected_params);

    let tags = &got["tags"];
    assert_eq!(tags["mlflow.runName"], run_name);
    assert_eq!(tags["mlflow.source.name"], "fairlab");
    assert_eq!(tags["mlflow.source.type"], "LOCAL");
    assert_eq!(tags["mlflow.user"], ours.tags["mlflow.user"].as_str());
    assert_eq!(got["user_id"], ours.tags["mlflow.user"].as_str());
    assert_eq!(tags["fairlab.version"], fairlab_framework::VERSION);
    assert_eq!(tags["dataset"], "fairvlmed");
    assert_eq!(tags["note"], "multi\nline");
    assert!(tags.get(FAILURE_REASON_TAG).is_none());

    // Latest values: +inf reads back clamped to f64::MAX, NaN as NaN.
    let metrics = &got["metrics"];
    assert_eq!(metrics.as_object().unwrap().len(), 5);
    assert_eq!(as_f64(&metrics["loss"]), 1.0 / 3.0);
    assert_eq!(metrics["odd"], serde_json::json!(1.7976931348623157e308));
    assert_eq!(as_f64(&metrics["odd"]), f64::MAX);
    assert_eq!(metrics["nan_last"], "NaN");
    assert_eq!(as_f64(&metrics["test_auc"]), 0.8125);
    assert_eq!(as_f64(&metrics["tiny"]), 1e-7);

    // Every point of every metric, as the Rust store reads them.
    for key in ["loss", "odd", "nan_last", "test_auc", "tiny"] {
        let theirs = got["metric_history"][key].as_array().unwrap();
        let ours: Vec<MetricPoint> = store.metric_history(&run_id, key).unwrap();
        assert_eq!(theirs.len(), ours.len(), "history of {key}");
        for (t, o) in theirs.iter().zip(&ours) {
            assert_eq!(t["step"], o.step, "{key}");
            assert_eq!(t["timestamp"], o.timestamp, "{key}");
            assert!(same_value(as_f64(&t["value"]), o.value), "{key}: {t} vs {o:?}");
        }
    }
    let odd: Vec<f64> = got["metric_history"]["odd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| as_f64(&p["value"]))
        .collect();
    assert!(odd[0].is_nan());
    assert_eq!(odd[1], f64::MAX);

    let artifacts = got["artifacts"].as_array().unwrap();
    let expected = serde_json::json!([
        {"path": "config.yaml", "is_dir": false, "file_size": CONFIG_YAML.len(), "sha256": sha256(CONFIG_YAML)},
        {"path": "sub", "is_dir": true},
        {"path": "sub/metrics.json", "is_dir": false, "file_size": METRICS_JSON.len(), "sha256": sha256(METRICS_JSON)},
    ]);
    assert_eq!(&Value::Array(artifacts.clone()), &expected);

    let listed: Vec<(&str, &str)> = got["experiment_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["run_id"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.contains(&(run_id.as_str(), "FINISHED")));
    assert!(listed.contains(&(failed_id.as_str(), "FAILED")));

    // The failed run.
    let got = read_back(&python, target, &failed_id);
    assert_eq!(got["warnings"], serde_json::json!([]), "MLflow warned");
    assert_eq!(got["status"], "FAILED");
    assert_eq!(got["run_name"], "seed-8");
    assert!(got["end_time"].is_i64());
    assert_eq!(got["tags"][FAILURE_REASON_TAG], FAILURE);
    assert_eq!(as_f64(&got["metrics"]["loss"]), 0.9);
    assert_eq!(got["artifacts"], serde_json::json!([]));
    assert_eq!(store.get_run(&failed_id).unwrap().info.status, RunStatus::Failed);
}

/// `mlflow migrate-filestore` moves an embedded store into MLflow's SQL store losslessly (the way a
/// user brings local runs to a server).
#[test]
fn mlflow_migrate_filestore_moves_runs_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("mlruns");
    let store: Arc<dyn Tracker> = Arc::new(FileStore::open(&store_dir).unwrap());
    let run = ActiveRun::start(store.clone(), "migrated", "seed-3", Vec::new()).unwrap();
    let run_id = run.id().to_string();
    run.log_params(&pairs(&[("debiaser.kind", "erm")])).unwrap();
    run.log_metrics(0, &[("val_auc", 0.5)]).unwrap();
    run.log_metrics(1, &[("val_auc", 0.625), ("odd", f64::NAN)]).unwrap();
    run.finish().unwrap();
    let failed = ActiveRun::start(store, "migrated", "seed-4", Vec::new()).unwrap();
    let failed_id = failed.id().to_string();
    failed.fail("the training loss is NaN at epoch 2").unwrap();

    let python = match python_with_mlflow() {
        Ok(python) => python,
        Err(why) => {
            eprintln!("SKIPPED: mlflow migrate-filestore was not checked because {why}");
            return;
        }
    };
    let db = dir.path().join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    let out = Command::new(&python)
        .args(["-m", "mlflow", "migrate-filestore", "--source"])
        .arg(&store_dir)
        .args(["--target", &uri])
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "migrate-filestore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = r#"
import json, math, sys
from mlflow.tracking import MlflowClient
c = MlflowClient(sys.argv[1])
out = {}
for run_id in sys.argv[2:]:
    r = c.get_run(run_id)
    hist = [(m.step, m.value) for m in c.get_metric_history(run_id, "val_auc")]
    out[run_id] = {"status": r.info.status, "params": r.data.params, "reason": r.data.tags.get("fairlab.failure_reason"),
                   "val_auc": hist, "odd_is_nan": math.isnan(r.data.metrics["odd"]) if "odd" in r.data.metrics else None}
print(json.dumps(out))
"#;
    let out = Command::new(&python)
        .args(["-c", reader, &uri, &run_id, &failed_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reading the migrated store failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("migrated: {got}");
    assert_eq!(got[&run_id]["status"], "FINISHED");
    assert_eq!(got[&run_id]["params"]["debiaser.kind"], "erm");
    assert_eq!(got[&run_id]["val_auc"], serde_json::json!([[0, 0.5], [1, 0.625]]));
    assert_eq!(got[&run_id]["odd_is_nan"], true);
    assert_eq!(got[&failed_id]["status"], "FAILED");
    assert_eq!(got[&failed_id]["reason"], "the training loss is NaN at epoch 2");
}
