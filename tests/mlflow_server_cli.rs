//! `fairlab run` and `fairlab runs` against a real `mlflow server` 3.17.2: the quickstart's every
//! field read back through the REST API and MLflow's Python client; 8 runs logging at once; Ctrl-C
//! (KILLED, nothing lost); a sweep as parent and child runs; a server killed mid-run and restarted,
//! after which `fairlab runs sync` completes the run with no gap and no duplicate; and a run started
//! while its server is down (no server needed), which waits in the spool.
//!
//! The shared server is `FAIRLAB_MLFLOW_SERVER` (scripts/test.sh starts it); the outage test starts
//! and kills its own through scripts/mlflow-server.sh. Without a server and the `.venv` holding
//! mlflow the server tests say SKIPPED and pass, unless `FAIRLAB_REQUIRE_MLFLOW=1` (scripts/test.sh).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fairlab_framework::tracking::{self, RestStore, RunRecord, RunStatus, Tracker};
use serde_json::Value;
use sha2::{Digest, Sha256};

use common::{absolute_paths, interrupt, root, run_id, shared_cache, shared_server};

/// A fresh experiment name, so that tests sharing a server do not see each other's runs.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// `fairlab` with the tracking environment of `server` and `experiment`, spooling into `spool`.
fn fairlab(server: &str, experiment: &str, spool: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("fairlab"));
    cmd.current_dir(root())
        .env("MLFLOW_TRACKING_URI", server)
        .env("MLFLOW_EXPERIMENT_NAME", experiment)
        .env("FAIRLAB_SPOOL_DIR", spool)
        .env_remove("RUST_LOG");
    cmd
}

/// The quickstart's arguments with `epochs` epochs and the shared feature cache.
fn quickstart_args(epochs: usize, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "run".to_string(),
        "experiments/quickstart.yaml".to_string(),
        "--set".to_string(),
        format!("debiaser.epochs={epochs}"),
        "--set".to_string(),
        format!("features.cache_dir={}", shared_cache().display()),
    ];
    for e in extra {
        args.extend(["--set".to_string(), e.clone()]);
    }
    args
}

/// Run to the end; returns stdout, failing the test with both streams unless it exits 0.
fn success(cmd: &mut Command) -> String {
    let out = cmd.output().expect("fairlab runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "{:?} failed ({}):\n{stdout}\n{stderr}",
        cmd,
        out.status
    );
    stdout.into_owned()
}

/// Everything a run holds, as a comparable value: info, params, tags, every metric's history
/// (value, step, and timestamp unless `timestamps` is false) and every artifact's SHA-256.
#[derive(Debug, PartialEq)]
struct Snapshot {
    status: String,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    history: BTreeMap<String, Vec<(String, i64, Option<i64>)>>,
    artifacts: BTreeMap<String, String>,
}

/// A metric value as text that compares NaN equal to NaN.
fn value_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else {
        format!("{value:?}")
    }
}

/// The snapshot of a run read through a Rust store.
fn snapshot(store: &dyn Tracker, run_id: &str, timestamps: bool) -> Snapshot {
    let record = store.get_run(run_id).unwrap();
    let history = record
        .metrics
        .keys()
        .map(|key| {
            let mut points: Vec<(String, i64, Option<i64>)> = store
                .metric_history(run_id, key)
                .unwrap()
                .into_iter()
                .map(|p| (value_text(p.value), p.step, timestamps.then_some(p.timestamp)))
                .collect();
            points.sort_by_key(|p| (p.1, p.2));
            (key.clone(), points)
        })
        .collect();
    let artifacts = tracking::all_artifacts(store, run_id)
        .unwrap()
        .into_iter()
        .filter(|a| !a.is_dir)
        .map(|a| {
            let bytes = store.read_artifact(run_id, &a.path).unwrap();
            (a.path, hex::encode(Sha256::digest(&bytes)))
        })
        .collect();
    Snapshot {
        status: record.info.status.as_str().to_string(),
        params: record.params,
        tags: record.tags,
        history,
        artifacts,
    }
}

/// The snapshot of a run read by MLflow's Python client (scripts/check_mlflow_store.py).
fn python_snapshot(server: &str, run_id: &str) -> Snapshot {
    let python = root().join(".venv/bin/python");
    let out = Command::new(&python)
        .arg(root().join("scripts/check_mlflow_store.py"))
        .args([server, run_id])
        .output()
        .unwrap_or_else(|e| panic!("{} cannot be run: {e}", python.display()));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["warnings"],
        Value::Array(Vec::new()),
        "MLflow warned while reading"
    );
    let strings = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    };
    let value = |v: &Value| match v {
        Value::Number(n) => value_text(n.as_f64().unwrap()),
        Value::String(s) if s == "NaN" => "NaN".to_string(),
        other => panic!("unexpected metric value {other}"),
    };
    let history = json["metric_history"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, points)| {
            let mut points: Vec<(String, i64, Option<i64>)> = points
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (value(&p["value"]), p["step"].as_i64().unwrap(), p["timestamp"].as_i64()))
                .collect();
            points.sort_by_key(|p| (p.1, p.2));
            (key.clone(), points)
        })
        .collect();
    let artifacts = json["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_dir"] == Value::Bool(false))
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Snapshot {
        status: json["status"].as_str().unwrap().to_string(),
        params: strings(&json["params"]),
        tags: strings(&json["tags"]),
        history,
        artifacts,
    }
}

/// Assert two maps are equal, naming the first keys that differ (a whole-map diff is unreadable).
fn same_maps<V: PartialEq + std::fmt::Debug>(what: &str, got: &BTreeMap<String, V>, expected: &BTreeMap<String, V>) {
    let keys: BTreeSet<&String> = got.keys().chain(expected.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != expected.get(*k))
        .take(5)
        .map(|k| {
            format!(
                "{what} `{k}`: server {:?}, embedded store {:?}",
                got.get(k),
                expected.get(k)
            )
        })
        .collect();
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}

/// The runs of an experiment on the server.
fn runs_of(store: &RestStore, experiment: &str) -> Vec<RunRecord> {
    let id = store.get_or_create_experiment(experiment).unwrap();
    store.search_runs(&[id]).unwrap()
}

/// Wait until `child`'s run in `experiment` has logged a training epoch to the server; the run.
fn wait_for_training(child: &mut std::process::Child, rest: &RestStore, experiment: &str) -> RunRecord {
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(600), "training never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "fairlab exited before training was seen"
        );
        if let Some(run) = runs_of(rest, experiment)
            .into_iter()
            .find(|r| r.metrics.contains_key("train_loss"))
        {
            return run;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_field_the_quickstart_logs_reads_back_identically_through_rest_and_python() {
    let Some(server) = shared_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let experiment = unique("quickstart-fields");
    let args = quickstart_args(3, &[]);
    let stdout = success(fairlab(&server, &experiment, &dir.path().join("spool")).args(&args));
    let id = run_id(&stdout);
    assert!(stdout.contains(&format!("logged to {server}")), "{stdout}");

    // The same quickstart into the embedded store, for the values it should have logged.
    let local = dir.path().join("mlruns");
    let local_stdout = success(
        fairlab(
            &format!("file:{}", local.display()),
            &experiment,
            &dir.path().join("spool"),
        )
        .args(&args),
    );
    let local_store = fairlab_framework::tracking::FileStore::open(&local).unwrap();
    let expected = snapshot(&local_store, &run_id(&local_stdout), false);

    let rest = RestStore::open(&server).unwrap();
    let through_rest = snapshot(&rest, &id, true);
    let through_python = python_snapshot(&server, &id);
    assert_eq!(through_rest, through_python, "REST and Python read the run differently");

    assert_eq!(through_rest.status, "FINISHED");
    same_maps("param", &through_rest.params, &expected.params);
    let without_timestamps: BTreeMap<_, Vec<_>> = through_rest
        .history
        .iter()
        .map(|(k, points)| {
            (
                k.clone(),
                points.iter().map(|(v, s, _)| (v.clone(), *s, None)).collect(),
            )
        })
        .collect();
    same_maps("metric history", &without_timestamps, &expected.history);
    same_maps("artifact", &through_rest.artifacts, &expected.artifacts);
    // Tags: the same keys and values, but for what differs between two runs by design.
    let differs = ["fairlab.feature_cache"];
    let keep = |tags: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        tags.iter()
            .filter(|(k, _)| !differs.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    same_maps("tag", &keep(&through_rest.tags), &keep(&expected.tags));
    assert!(through_rest.history["train_loss"].len() == 3);
    assert!(
        through_rest.artifacts.contains_key("config.yaml")
            && through_rest.artifacts.contains_key("predictions/test.csv")
    );

    // `fairlab runs show/list` read the server too.
    let show = success(
        fairlab(&server, &experiment, &dir.path().join("spool")).args(["runs", "show", &id, "--format", "json"]),
    );
    let shown: Value = serde_json::from_str(&show).unwrap();
    assert_eq!(shown["status"], "FINISHED", "{show}");
    let listed = success(fairlab(&server, &experiment, &dir.path().join("spool")).args([
        "runs",
        "list",
        "--experiment",
        &experiment,
    ]));
    assert!(listed.contains(&id), "{listed}");
}

#[test]
fn eight_runs_log_to_the_server_at_once() {
    let Some(server) = shared_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let experiment = unique("eight-at-once");
    let epochs = 15;
    let children: Vec<_> = (0..8)
        .map(|seed| {
            fairlab(&server, &experiment, &dir.path().join("spool"))
                .args(quickstart_args(epochs, &[format!("seed={seed}")]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let rest = RestStore::open(&server).unwrap();
    let runs = runs_of(&rest, &experiment);
    assert_eq!(runs.len(), 8);
    let seeds: BTreeSet<&str> = runs.iter().map(|r| r.params["seed"].as_str()).collect();
    assert_eq!(seeds.len(), 8, "one run per seed");
    for run in &runs {
        assert_eq!(run.info.status, RunStatus::Finished);
        let steps: Vec<i64> = rest
            .metric_history(&run.info.run_id, "train_loss")
            .unwrap()
            .iter()
            .map(|p| p.step)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            steps,
            (1..=epochs as i64).collect::<Vec<_>>(),
            "epochs are steps 1..={epochs}"
        );
        assert!(run.metrics.contains_key("test_auc"));
    }
    assert!(!dir.path().join("spool").exists(), "nothing was spooled");
}

#[test]
fn ctrl_c_ends_a_server_run_as_killed_with_every_logged_epoch() {
    let Some(server) = shared_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let experiment = unique("ctrl-c");
    let mut child = fairlab(&server, &experiment, &dir.path().join("spool"))
        .args(quickstart_args(100_000, &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = RestStore::open(&server).unwrap();
    let run = wait_for_training(&mut child, &rest, &experiment);
    std::thread::sleep(Duration::from_millis(500));
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let record = rest.get_run(&run.info.run_id).unwrap();
    assert_eq!(record.info.status, RunStatus::Killed);
    assert!(record.tags["fairlab.failure_reason"].contains("Ctrl-C"));
    let steps: Vec<i64> = rest
        .metric_history(&run.info.run_id, "train_loss")
        .unwrap()
        .iter()
        .map(|p| p.step)
        .collect();
    let last = *steps.iter().max().unwrap();
    let mut sorted = steps.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=last).collect::<Vec<_>>(), "every epoch once, no gap");
}

/// A server of our own (scripts/mlflow-server.sh) in `dir` on `port`: start it, returning its URI.
fn start_server(dir: &Path, port: u16) -> String {
    let out = Command::new(root().join("scripts/mlflow-server.sh"))
        .args(["start", "--port", &port.to_string()])
        .env("FAIRLAB_MLFLOW_DIR", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    format!("http://127.0.0.1:{port}")
}

fn stop_server(dir: &Path) {
    let out = Command::new(root().join("scripts/mlflow-server.sh"))
        .arg("stop")
        .env("FAIRLAB_MLFLOW_DIR", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Stops the server when the test ends, even by a panic.
struct ServerGuard<'a>(&'a Path);

impl Drop for ServerGuard<'_> {
    fn drop(&mut self) {
        stop_server(self.0);
    }
}

#[test]
fn a_server_killed_mid_run_and_restarted_gets_the_whole_run_from_runs_sync() {
    if shared_server().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let spool = dir.path().join("spool");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = start_server(&server_dir, port);
    let _guard = ServerGuard(&server_dir);
    let experiment = unique("outage");
    let epochs = 300;
    let mut child = fairlab(&server, &experiment, &spool)
        .args(quickstart_args(epochs, &[]))
        // Give up on the server quickly once it is gone.
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        .env("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0.1")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = RestStore::open(&server).unwrap();
    let run = wait_for_training(&mut child, &rest, &experiment);
    stop_server(&server_dir);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the run goes on without its server:\n{stderr}");
    assert!(stderr.contains("offline spool"), "{stderr}");
    let id = run.info.run_id.clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("run {id} FINISHED")), "{stdout}");
    assert!(stdout.contains("then to the offline spool"), "{stdout}");

    // Syncing while the server is down fails clearly and keeps the run pending.
    let mut sync = fairlab(&server, &experiment, &spool);
    sync.args(["runs", "sync"])
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "5");
    let down = sync.output().unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("stay pending"));

    start_server(&server_dir, port);
    let synced = success(fairlab(&server, &experiment, &spool).args(["runs", "sync"]));
    assert!(synced.contains(&format!("synced run {id}")), "{synced}");
    assert!(synced.contains("1 run(s) synced"), "{synced}");

    let record = rest.get_run(&id).unwrap();
    assert_eq!(record.info.status, RunStatus::Finished);
    let steps: Vec<i64> = rest
        .metric_history(&id, "train_loss")
        .unwrap()
        .iter()
        .map(|p| p.step)
        .collect();
    let mut sorted = steps.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (1..=epochs as i64).collect::<Vec<_>>(),
        "no gap and no duplicate"
    );
    assert!(record.metrics.contains_key("test_auc") && record.metrics.contains_key("test_leakage_auc_sex"));
    let artifacts: Vec<String> = rest
        .list_artifacts(&id, None)
        .unwrap()
        .into_iter()
        .map(|a| a.path)
        .collect();
    for expected in ["config.yaml", "metrics.json", "predictions"] {
        assert!(artifacts.iter().any(|a| a == expected), "{artifacts:?}");
    }
    assert!(record.params.contains_key("seed"));

    // Everything is sent once: a second sync has nothing to do.
    let again = success(fairlab(&server, &experiment, &spool).args(["runs", "sync"]));
    assert!(again.contains("nothing to sync"), "{again}");
}

#[test]
fn a_sweep_on_the_server_is_a_parent_run_with_one_child_run_per_trial() {
    let Some(server) = shared_server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let experiment = unique("sweep");
    let sweep = dir.path().join("seeds.yaml");
    let text = std::fs::read_to_string(root().join("experiments/quickstart.yaml")).unwrap()
        + "\nsweep:\n  method: grid\n  metric: {name: test_auc, goal: maximize}\n  parameters:\n    seed: {values: [0, 1, 2]}\n";
    std::fs::write(&sweep, text).unwrap();
    let mut cmd = fairlab(&server, &experiment, &dir.path().join("spool"));
    cmd.current_dir(dir.path()).arg("run").arg(&sweep).args(["--jobs", "2"]);
    let sets = absolute_paths().into_iter().chain(["debiaser.epochs=3".to_string()]);
    for set in sets {
        cmd.args(["--set", &set]);
    }
    success(&mut cmd);

    let rest = RestStore::open(&server).unwrap();
    let runs = runs_of(&rest, &experiment);
    let (parents, children): (Vec<&RunRecord>, Vec<&RunRecord>) =
        runs.iter().partition(|r| !r.tags.contains_key("mlflow.parentRunId"));
    assert_eq!((parents.len(), children.len()), (1, 3), "one parent, three children");
    let parent = parents[0];
    assert_eq!(parent.info.status, RunStatus::Finished);
    assert!(
        parent.metrics.contains_key("best_test_auc"),
        "{:?}",
        parent.metrics.keys()
    );
    for child in &children {
        assert_eq!(child.tags["mlflow.parentRunId"], parent.info.run_id);
        assert_eq!(child.tags["fairlab.sweep_id"], parent.tags["fairlab.sweep_id"]);
        assert_eq!(child.info.status, RunStatus::Finished);
        assert!(child.metrics.contains_key("test_auc"));
    }
    let seeds: BTreeSet<&str> = children.iter().map(|c| c.params["seed"].as_str()).collect();
    assert_eq!(seeds, BTreeSet::from(["0", "1", "2"]));
}

#[test]
fn a_run_started_while_its_server_is_down_is_spooled_and_waits_for_sync() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    let quiet = |cmd: &mut Command| {
        cmd.env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0");
    };
    let nothing = success(fairlab(&server, "down", &spool).args(["runs", "sync"]));
    assert!(
        nothing.contains("nothing to sync: there is no offline spool"),
        "{nothing}"
    );

    let mut run = fairlab(&server, "down", &spool);
    run.args(quickstart_args(3, &[]));
    quiet(&mut run);
    let out = run.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("is unavailable"), "{stderr}");
    assert!(stdout.contains("then to the offline spool"), "{stdout}");
    let id = run_id(&stdout);

    // The spool is an ordinary embedded store.
    let shown = success(
        fairlab(&format!("file:{}", spool.display()), "down", &spool).args(["runs", "show", &id, "--format", "json"]),
    );
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["status"], "FINISHED");
    assert_eq!(shown["tags"]["fairlab.spool.state"], "pending");
    assert_eq!(shown["tags"]["fairlab.spool.server"], server.as_str());

    let planned = success(fairlab(&server, "down", &spool).args(["runs", "sync", "--dry-run"]));
    assert!(
        planned.contains(&format!(
            "would send run {id} (quickstart, FINISHED) to a new run on {server}"
        )),
        "{planned}"
    );
    let mut sync = fairlab(&server, "down", &spool);
    sync.args(["runs", "sync"]);
    quiet(&mut sync);
    let out = sync.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains(&format!("not sent: run {id} (quickstart)")), "{stdout}");
    assert!(stdout.contains("0 run(s) synced, 0 skipped, 1 not sent"), "{stdout}");
    assert!(stderr.contains("stay pending"), "{stderr}");
}

#[test]
fn sync_skips_runs_still_running_and_a_spool_that_cannot_be_made_fails_the_run_clearly() {
    use fairlab_framework::tracking::spool::{PENDING, SERVER_TAG, STATE_TAG};
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");

    // A spooled run whose process died: still RUNNING in the spool.
    let store = fairlab_framework::tracking::FileStore::open(&spool).unwrap();
    let experiment = store.get_or_create_experiment("crashed").unwrap();
    let tags = [(SERVER_TAG, server.as_str()), (STATE_TAG, PENDING)].map(|(k, v)| (k.to_string(), v.to_string()));
    let id = store.create_run(&experiment, "crashed", 0, &tags).unwrap().run_id;
    let skipped = success(fairlab(&server, "down", &spool).args(["runs", "sync"]));
    assert!(
        skipped.contains(&format!("skipped run {id} (crashed): still RUNNING in the spool")),
        "{skipped}"
    );
    assert!(skipped.contains("0 run(s) synced, 1 skipped, 0 not sent"), "{skipped}");
    let out = fairlab(&server, "down", &spool)
        .args(["runs", "sync", "--include-running"])
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("not sent: run {id} (crashed)")));

    // No spool can be made (its folder would be under a file): the run cannot start, and says why.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let out = fairlab(&server, "down", &blocker.join("spool"))
        .args(quickstart_args(3, &[]))
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is unavailable and the offline spool"), "{stderr}");
    assert!(stderr.contains("cannot be opened"), "{stderr}");
}
