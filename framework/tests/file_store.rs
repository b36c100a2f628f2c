//! The embedded tracking store against its contract: round trips, the on-disk layout MLflow
//! reads, NaN and infinities, write-once params, key rules, artifacts and concurrent creators.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use fairlab_framework::tracking::{FileStore, MetricPoint, RunStatus, Tracker};

fn open(dir: &Path) -> FileStore {
    FileStore::open(dir.join("mlruns")).unwrap()
}

fn point(key: &str, value: f64, timestamp: i64, step: i64) -> MetricPoint {
    MetricPoint {
        key: key.to_string(),
        value,
        timestamp,
        step,
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn open_creates_the_default_experiment_and_trash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let root = dir.path().join("mlruns").canonicalize().unwrap();
    assert_eq!(store.root(), root);
    assert!(root.join(".trash").is_dir());
    let meta = fs::read_to_string(root.join("0/meta.yaml")).unwrap();
    assert!(meta.contains("experiment_id: \"0\"\n"), "{meta}");
    assert!(meta.contains("name: \"Default\"\n"), "{meta}");
    assert!(
        meta.contains(&format!("artifact_location: \"file://{}/0\"", root.display())),
        "{meta}"
    );
    let experiments = store.list_experiments().unwrap();
    assert_eq!(experiments.len(), 1);
    assert_eq!(experiments[0].name, "Default");
    assert_eq!(store.uri(), format!("file://{}", root.display()));

    // Opening again changes nothing; relative roots become absolute.
    let again = open(dir.path());
    assert_eq!(again.list_experiments().unwrap(), experiments);
    assert_eq!(fs::read_to_string(root.join("0/meta.yaml")).unwrap(), meta);
}

#[test]
fn open_uri_decodes_file_uris() {
    let dir = tempfile::tempdir().unwrap();
    let spaced = dir.path().join("with space");
    let store = FileStore::open(&spaced).unwrap();
    assert!(store.uri().ends_with("/with%20space"), "{}", store.uri());
    let again = FileStore::open_uri(&store.uri()).unwrap();
    assert_eq!(again.root(), store.root());
    assert!(FileStore::open_uri("file://elsewhere/x").is_err());
}

#[test]
fn runs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let exp = store.get_or_create_experiment("fair: \"clip\"").unwrap();
    assert_eq!(exp.len(), 18);
    assert!(exp.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(store.get_or_create_experiment("fair: \"clip\"").unwrap(), exp);

    let tags = pairs(&[("mlflow.user", "ana"), ("note", "multi\nline")]);
    let info = store.create_run(&exp, "seed: 7 'x'", 1_000, &tags).unwrap();
    assert_eq!(info.run_id.len(), 32);
    assert!(info.run_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(info.status, RunStatus::Running);
    assert!(info.artifact_uri.starts_with("file:///"));
    assert!(info
        .artifact_uri
        .ends_with(&format!("/{exp}/{}/artifacts", info.run_id)));

    store
        .log_batch(
            &info.run_id,
            &[
                point("loss", 1.0, 10, 0),
                point("loss", 0.5, 11, 1),
                point("acc", 0.25, 12, 1),
            ],
            &pairs(&[("lr", "0.001"), ("optim/name", "adam")]),
            &pairs(&[("phase", "train")]),
        )
        .unwrap();
    store
        .log_batch(
            &info.run_id,
            &[point("loss", 1.0 / 3.0, 13, 2)],
            &[],
            &pairs(&[("phase", "test")]),
        )
        .unwrap();

    let run = store.get_run(&info.run_id).unwrap();
    assert_eq!(run.info, info);
    assert_eq!(run.params["lr"], "0.001");
    assert_eq!(run.params["optim/name"], "adam");
    assert_eq!(run.tags["phase"], "test", "tags overwrite");
    assert_eq!(run.tags["note"], "multi\nline");
    assert_eq!(run.tags["mlflow.runName"], "seed: 7 'x'");
    assert_eq!(run.metrics["loss"], point("loss", 1.0 / 3.0, 13, 2));
    assert_eq!(run.metrics["acc"].value, 0.25);
    let history = store.metric_history(&info.run_id, "loss").unwrap();
    let values: Vec<f64> = history.iter().map(|p| p.value).collect();
    assert_eq!(values, [1.0, 0.5, 1.0 / 3.0]);
    assert!(store.metric_history(&info.run_id, "never").unwrap().is_empty());

    store.set_terminated(&info.run_id, RunStatus::Finished, 2_000).unwrap();
    let run = store.get_run(&info.run_id).unwrap();
    assert_eq!(run.info.status, RunStatus::Finished);
    assert_eq!(run.info.end_time, Some(2_000));

    // The files are laid out as MLflow writes them.
    let run_dir = store.root().join(&exp).join(&info.run_id);
    assert_eq!(fs::read_to_string(run_dir.join("params/optim/name")).unwrap(), "adam");
    assert_eq!(
        fs::read_to_string(run_dir.join("metrics/loss")).unwrap(),
        "10 1 0\n11 0.5 1\n13 0.3333333333333333 2\n"
    );
    let meta = fs::read_to_string(run_dir.join("meta.yaml")).unwrap();
    for line in [
        format!("experiment_id: \"{exp}\""),
        format!("run_id: \"{}\"", info.run_id),
        "run_name: \"seed: 7 'x'\"".to_string(),
        "status: 3".to_string(),
        "end_time: 2000".to_string(),
        "start_time: 1000".to_string(),
        "source_type: 4".to_string(),
        "user_id: \"ana\"".to_string(),
        "lifecycle_stage: \"active\"".to_string(),
    ] {
        assert!(meta.lines().any(|l| l == line), "missing `{line}` in\n{meta}");
    }
    assert!(fs::read_dir(&run_dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".fairlab-tmp")));
}

#[test]
fn nan_and_infinities() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let exp = store.get_or_create_experiment("e").unwrap();
    let run = store.create_run(&exp, "r", 0, &[]).unwrap();
    store
        .log_batch(
            &run.run_id,
            &[
                point("m", f64::NAN, 1, 0),
                point("m", f64::INFINITY, 2, 1),
                point("m", f64::NEG_INFINITY, 3, 2),
            ],
            &[],
            &[],
        )
        .unwrap();
    let file = store.root().join(&exp).join(&run.run_id).join("metrics/m");
    assert_eq!(
        fs::read_to_string(file).unwrap(),
        "1 NaN 0\n2 1.7976931348623157e308 1\n3 -1.7976931348623157e308 2\n"
    );
    let history = store.metric_history(&run.run_id, "m").unwrap();
    assert!(history[0].value.is_nan());
    assert_eq!(history[1].value, f64::MAX);
    assert_eq!(history[2].value, f64::MIN);
    assert_eq!(store.get_run(&run.run_id).unwrap().metrics["m"].value, f64::MIN);
}

#[test]
fn params_are_write_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let exp = store.get_or_create_experiment("e").unwrap();
    let run = store.create_run(&exp, "r", 0, &[]).unwrap();
    store
        .log_batch(&run.run_id, &[], &pairs(&[("lr", "0.1")]), &[])
        .unwrap();
    // The same value again is fine.
    store
        .log_batch(&run.run_id, &[], &pairs(&[("lr", "0.1")]), &[])
        .unwrap();
    let err = store
        .log_batch(
            &run.run_id,
            &[point("m", 1.0, 1, 0)],
            &pairs(&[("new", "x"), ("lr", "0.2")]),
            &[],
        )
        .unwrap_err()
        .to_string();
    for part in [run.run_id.as_str(), "`lr`", "\"0.1\"", "\"0.2\""] {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
    // A conflicting batch logs nothing.
    let record = store.get_run(&run.run_id).unwrap();
    assert!(!record.params.contains_key("new"));
    assert!(record.metrics.is_empty());

    let err = store
        .log_batch(&run.run_id, &[], &pairs(&[("k", "1"), ("k", "2")]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn bad_keys_and_values_are_rejected_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let exp = store.get_or_create_experiment("e").unwrap();
    let run = store.create_run(&exp, "r", 0, &[]).unwrap();
    for key in ["../escape", "/abs", "a//b", "a:b", "semi;colon", "", "trailing/"] {
        let err = store
            .log_batch(&run.run_id, &[], &pairs(&[(key, "v")]), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("param key"), "{key:?}: {err}");
        assert!(store
            .log_batch(&run.run_id, &[point(key, 1.0, 0, 0)], &[], &[])
            .is_err());
        assert!(store.log_batch(&run.run_id, &[], &[], &pairs(&[(key, "v")])).is_err());
    }
    let long = "x".repeat(6001);
    let err = store
        .log_batch(&run.run_id, &[], &pairs(&[("p", &long)]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("6001 characters"), "{err}");
    let many: Vec<(String, String)> = (0..101).map(|i| (format!("p{i}"), "v".into())).collect();
    let err = store.log_batch(&run.run_id, &[], &many, &[]).unwrap_err().to_string();
    assert!(err.contains("at most 100"), "{err}");
    assert!(store.get_run(&run.run_id).unwrap().params.is_empty());

    // A key cannot be both a value and a folder of values.
    store.log_batch(&run.run_id, &[], &pairs(&[("a/b", "1")]), &[]).unwrap();
    let err = store
        .log_batch(&run.run_id, &[], &pairs(&[("a", "1")]), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`a`"), "{err}");
}

#[test]
fn unknown_runs_and_experiments_are_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let missing = "0123456789abcdef0123456789abcdef";
    let err = store.get_run(missing).unwrap_err().to_string();
    assert!(err.contains(missing) && err.contains(&store.uri()), "{err}");
    let err = store.get_run("../../etc").unwrap_err().to_string();
    assert!(err.contains("not a run id"), "{err}");
    for bad in ["../x", ".trash", ""] {
        assert!(store.search_runs(&[bad.to_string()]).is_err(), "{bad:?}");
    }
    let err = store.search_runs(&["42".to_string()]).unwrap_err().to_string();
    assert!(err.contains("42") && err.contains(&store.uri()), "{err}");
    assert!(store.create_run("42", "r", 0, &[]).is_err());
    assert!(store.get_or_create_experiment(" ").is_err());
}

#[test]
fn set_terminated_needs_a_terminal_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = store.create_run("0", "r", 0, &[]).unwrap();
    let err = store
        .set_terminated(&run.run_id, RunStatus::Running, 5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("RUNNING"), "{err}");
    store.set_terminated(&run.run_id, RunStatus::Killed, 5).unwrap();
    assert_eq!(store.get_run(&run.run_id).unwrap().info.status, RunStatus::Killed);
}

#[test]
fn artifacts_are_stored_listed_and_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let run = store.create_run("0", "r", 0, &[]).unwrap();
    store.log_artifact(&run.run_id, "config.yaml", b"seed: 1\n").unwrap();
    store.log_artifact(&run.run_id, "sub/metrics.json", b"{}").unwrap();
    store.log_artifact(&run.run_id, "sub/deeper/x.bin", &[0u8; 10]).unwrap();
    store.log_artifact(&run.run_id, "config.yaml", b"seed: 2\n").unwrap();

    let root = store.list_artifacts(&run.run_id, None).unwrap();
    let summary: Vec<(&str, bool, Option<u64>)> =
        root.iter().map(|e| (e.path.as_str(), e.is_dir, e.file_size)).collect();
    assert_eq!(summary, [("config.yaml", false, Some(8)), ("sub", true, None)]);
    let sub = store.list_artifacts(&run.run_id, Some("sub")).unwrap();
    let paths: Vec<&str> = sub.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["sub/deeper", "sub/metrics.json"]);
    assert!(store.list_artifacts(&run.run_id, Some("nope")).unwrap().is_empty());
    assert!(store
        .list_artifacts(&run.run_id, Some("config.yaml"))
        .unwrap()
        .is_empty());
    assert_eq!(store.read_artifact(&run.run_id, "config.yaml").unwrap(), b"seed: 2\n");
    assert_eq!(store.read_artifact(&run.run_id, "sub/deeper/x.bin").unwrap(), [0u8; 10]);
    assert!(store
        .root()
        .join("0")
        .join(&run.run_id)
        .join("artifacts/sub/metrics.json")
        .is_file());

    for bad in ["../escape.txt", "sub/../../x", "/etc/passwd", ""] {
        assert!(store.log_artifact(&run.run_id, bad, b"x").is_err(), "{bad:?}");
    }
    assert!(store.list_artifacts(&run.run_id, Some("..")).is_err());
    assert!(store.read_artifact(&run.run_id, "../meta.yaml").is_err());
    let err = store.read_artifact(&run.run_id, "missing.txt").unwrap_err().to_string();
    assert!(err.contains("missing.txt") && err.contains(&run.run_id), "{err}");
    assert!(store.log_artifact(&run.run_id, "sub", b"x").is_err());
}

#[test]
fn search_runs_lists_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = store.get_or_create_experiment("a").unwrap();
    let b = store.get_or_create_experiment("b").unwrap();
    let old = store.create_run(&a, "old", 100, &[]).unwrap();
    let new = store.create_run(&a, "new", 300, &[]).unwrap();
    let other = store.create_run(&b, "other", 200, &[]).unwrap();
    let ids = |runs: Vec<fairlab_framework::tracking::RunRecord>| -> Vec<String> {
        runs.into_iter().map(|r| r.info.run_id).collect()
    };
    assert_eq!(
        ids(store.search_runs(std::slice::from_ref(&a)).unwrap()),
        [new.run_id.clone(), old.run_id.clone()]
    );
    assert_eq!(
        ids(store.search_runs(&[a.clone(), b.clone()]).unwrap()),
        [new.run_id, other.run_id, old.run_id]
    );
    let names: Vec<String> = store.list_experiments().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 3);
    assert_eq!(names[0], "Default");
}

#[test]
fn deleted_experiments_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.get_or_create_experiment("gone").unwrap();
    // What `mlflow experiments delete` does: move the folder to .trash and mark it deleted.
    let trashed = store.root().join(".trash").join(&id);
    fs::rename(store.root().join(&id), &trashed).unwrap();
    let meta = fs::read_to_string(trashed.join("meta.yaml")).unwrap();
    fs::write(
        trashed.join("meta.yaml"),
        meta.replace("lifecycle_stage: \"active\"", "lifecycle_stage: \"deleted\""),
    )
    .unwrap();
    assert!(store.list_experiments().unwrap().iter().all(|e| e.name != "gone"));
    let err = store.get_or_create_experiment("gone").unwrap_err().to_string();
    assert!(err.contains("deleted") && err.contains(&id), "{err}");
}

#[test]
fn threads_creating_the_same_experiment_agree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mlruns");
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                // Each thread opens its own store, as separate processes would.
                scope.spawn(move || {
                    let store = FileStore::open(&root).unwrap();
                    let shared = store.get_or_create_experiment("shared").unwrap();
                    let own = store
                        .get_or_create_experiment(&format!("own-{shared}-{:?}", std::thread::current().id()))
                        .unwrap();
                    (shared, own)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (shared, own) = h.join().unwrap();
                assert_ne!(shared, own);
                shared
            })
            .collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let store = FileStore::open(&root).unwrap();
    let experiments = store.list_experiments().unwrap();
    assert_eq!(experiments.iter().filter(|e| e.name == "shared").count(), 1);
    assert_eq!(experiments.len(), 1 + 1 + 8);
}

#[test]
fn threads_logging_to_one_run_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Tracker> = Arc::new(open(dir.path()));
    let run = store.create_run("0", "r", 0, &[]).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            let run_id = run.run_id.clone();
            scope.spawn(move || {
                for step in 0..50 {
                    store
                        .log_batch(
                            &run_id,
                            &[point("shared", t as f64, step, step)],
                            &pairs(&[("same", "1")]),
                            &[],
                        )
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.metric_history(&run.run_id, "shared").unwrap().len(), 200);
}
