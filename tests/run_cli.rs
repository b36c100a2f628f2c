//! `fairlab run`, `fairlab plugins` and `fairlab runs` end to end through the binary, on the real
//! NIH1000 X-rays and the real EfficientNet-Lite0 weights.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Features shared by the tests that don't test the cache itself (extracted once).
fn shared_cache() -> PathBuf {
    root().join("target/test-feature-cache")
}

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("mlruns")
    }

    fn fairlab(&self) -> Command {
        let mut cmd = Command::cargo_bin("fairlab").unwrap();
        cmd.current_dir(root())
            .env("MLFLOW_TRACKING_URI", format!("file:{}", self.store().display()))
            .env_remove("MLFLOW_EXPERIMENT_NAME")
            .env_remove("RUST_LOG");
        cmd
    }

    /// `fairlab run experiments/quickstart.yaml` with a few epochs and the given cache.
    fn quickstart(&self, cache: &Path, extra: &[&str]) -> Command {
        let mut cmd = self.fairlab();
        cmd.args(["run", "experiments/quickstart.yaml", "--set", "debiaser.epochs=3"])
            .arg("--set")
            .arg(format!("features.cache_dir={}", cache.display()));
        for e in extra {
            cmd.args(["--set", e]);
        }
        cmd
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// The single run's folder in the store.
    fn runs(&self) -> Vec<PathBuf> {
        let mut runs = Vec::new();
        for exp in std::fs::read_dir(self.store()).unwrap().flatten() {
            if !exp.path().join("meta.yaml").exists() {
                continue;
            }
            for run in std::fs::read_dir(exp.path()).unwrap().flatten() {
                if run.path().join("meta.yaml").exists() {
                    runs.push(run.path());
                }
            }
        }
        runs
    }
}

fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn quickstart_runs_end_to_end_and_logs_everything() {
    let sb = Sandbox::new();
    let out = sb
        .quickstart(&shared_cache(), &[])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8(out).unwrap();
    assert!(stdout.contains("test metrics (148 samples"), "{stdout}");
    assert!(stdout.contains("sex") && stdout.contains("age_group"), "{stdout}");
    let id = run_id(&stdout);
    let runs = sb.runs();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert!(run.ends_with(&id));
    let meta = std::fs::read_to_string(run.join("meta.yaml")).unwrap();
    assert!(meta.contains("status: 3"), "{meta}");
    assert_eq!(
        std::fs::read_to_string(run.join("params/debiaser.epochs")).unwrap(),
        "3"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("params/dataset.attributes")).unwrap(),
        "[sex, age_group]"
    );
    let train_loss = std::fs::read_to_string(run.join("metrics/train_loss")).unwrap();
    assert_eq!(train_loss.lines().count(), 3, "one point per epoch");
    assert!(run.join("metrics/val_auc").exists() && run.join("metrics/test_auc").exists());
    assert!(run.join("metrics/test_sex_es_auc").exists());
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("artifacts/metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["n"], 148);
    let auc = metrics["overall"]["auc"].as_f64().unwrap();
    assert!(auc > 0.5 && auc < 1.0, "{auc}");
    assert!(metrics["attributes"]["sex"]["groups"]["F"]["n"].as_u64().unwrap() > 0);
    let config = std::fs::read_to_string(run.join("artifacts/config.yaml")).unwrap();
    assert!(config.contains("epochs: 3"), "the resolved config is saved: {config}");
    assert!(run.join("artifacts/model/probe.safetensors").exists());
    assert!(run.join("artifacts/predictions/test.csv").exists());
    for tag in [
        "mlflow.runName",
        "mlflow.user",
        "mlflow.source.name",
        "fairlab.version",
        "fairlab.seed",
        "fairlab.host",
    ] {
        assert!(run.join("tags").join(tag).exists(), "tag {tag}");
    }

    sb.fairlab()
        .args(["runs", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains(&id));
    sb.fairlab()
        .args(["runs", "show", &id])
        .assert()
        .success()
        .stdout(predicate::str::contains("FINISHED"));
}

#[test]
fn runs_are_deterministic_given_the_seed() {
    let (a, b) = (Sandbox::new(), Sandbox::new());
    for sb in [&a, &b] {
        sb.quickstart(&shared_cache(), &["seed=7"]).assert().success();
    }
    let read = |sb: &Sandbox| std::fs::read_to_string(sb.runs()[0].join("artifacts/metrics.json")).unwrap();
    assert_eq!(read(&a), read(&b));
}

#[test]
fn a_second_run_hits_the_feature_cache() {
    let sb = Sandbox::new();
    let cache = sb.dir.path().join("features");
    sb.quickstart(&cache, &[])
        .assert()
        .success()
        .stdout(predicate::str::contains("features: extracted, cached in"));
    sb.quickstart(&cache, &["seed=1"])
        .assert()
        .success()
        .stdout(predicate::str::contains("features: from the cache"));
    assert_eq!(cached_files(&cache), 1);
}

/// The feature files in a cache folder (beside them: one lock file per entry).
fn cached_files(cache: &Path) -> usize {
    std::fs::read_dir(cache)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "safetensors")
        })
        .count()
}

#[test]
fn runs_started_together_extract_the_features_once() {
    let sb = Sandbox::new();
    let cache = sb.dir.path().join("features");
    let children: Vec<_> = ["seed=1", "seed=2"]
        .into_iter()
        .map(|seed| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("fairlab"));
            cmd.current_dir(root())
                .env("MLFLOW_TRACKING_URI", format!("file:{}", sb.store().display()))
                .args([
                    "run",
                    "experiments/quickstart.yaml",
                    "--set",
                    "debiaser.epochs=2",
                    "--set",
                    seed,
                ])
                .arg("--set")
                .arg(format!("features.cache_dir={}", cache.display()))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    let extracted = outputs
        .iter()
        .filter(|o| o.contains("features: extracted, cached in"))
        .count();
    let hits = outputs
        .iter()
        .filter(|o| o.contains("features: from the cache"))
        .count();
    assert_eq!((extracted, hits), (1, 1), "{outputs:?}");
    assert_eq!(cached_files(&cache), 1);
}

#[test]
fn a_nan_loss_marks_the_run_failed() {
    let sb = Sandbox::new();
    sb.quickstart(&shared_cache(), &["debiaser.optimizer.lr=.nan"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("the training loss is NaN at epoch")
                .and(predicate::str::contains("recorded as FAILED")),
        );
    let run = &sb.runs()[0];
    assert!(std::fs::read_to_string(run.join("meta.yaml"))
        .unwrap()
        .contains("status: 4"));
    let reason = std::fs::read_to_string(run.join("tags/fairlab.failure_reason")).unwrap();
    assert!(reason.contains("NaN"), "{reason}");
}

#[test]
fn a_missing_data_folder_is_a_clear_failure() {
    let sb = Sandbox::new();
    sb.quickstart(&shared_cache(), &["dataset.root=data/nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("dataset folder data/nope does not exist"));
    let run = &sb.runs()[0];
    assert!(std::fs::read_to_string(run.join("tags/fairlab.failure_reason"))
        .unwrap()
        .contains("data/nope"));
}

/// Run the quickstart with the line `find` replaced by `replace`; expect exit 2, no run, and a
/// message containing `expected` (with `{line}` standing for the edited line's number).
fn bad_quickstart(find: &str, replace: &str, expected: &str) {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(root().join("experiments/quickstart.yaml")).unwrap();
    let line = text
        .lines()
        .position(|l| l == find)
        .expect("the line is in the quickstart")
        + 1;
    let bad = sb.write("bad.yaml", &text.replace(find, replace));
    let expected = expected.replace("{line}", &line.to_string());
    sb.fairlab()
        .args(["run"])
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(expected));
    assert!(!sb.store().exists() || sb.runs().is_empty(), "no run for a bad config");
}

#[test]
fn an_unknown_key_is_exit_2_with_line_and_column() {
    bad_quickstart(
        "  standardize: true",
        "  standardise: true",
        "bad.yaml:{line}:3: `debiaser.standardise`: unknown field `standardise`",
    );
}

#[test]
fn a_wrong_type_is_exit_2_with_line_and_column() {
    bad_quickstart("seed: 0", "seed: zero", "bad.yaml:{line}:1: `seed`: invalid type");
}

#[test]
fn an_unknown_plugin_kind_is_exit_2_with_a_suggestion() {
    bad_quickstart(
        "  kind: erm",
        "  kind: ermm",
        "bad.yaml:{line}:3: `debiaser.kind`: unknown debiaser kind `ermm`; known kinds: dne, erm, fairclip, group-dro, resampling, zero-shot (did you mean `erm`?)",
    );
}

#[test]
fn a_bad_override_names_the_set_flag() {
    Sandbox::new()
        .quickstart(&shared_cache(), &["debiaser.epochs=many"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--set debiaser.epochs=many").and(predicate::str::contains("invalid type")));
}

#[test]
fn dry_run_prints_the_resolved_config_and_runs_nothing() {
    let sb = Sandbox::new();
    sb.fairlab()
        .args([
            "run",
            "experiments/quickstart.yaml",
            "--dry-run",
            "--set",
            "debiaser.epochs=11",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("epochs: 11").and(predicate::str::contains("kind: efficientnet-lite0")));
    assert!(!sb.store().exists());
}

#[test]
fn plugins_lists_every_kind() {
    Sandbox::new().fairlab().arg("plugins").assert().success().stdout(
        predicate::str::contains("backbones:")
            .and(predicate::str::contains("efficientnet-lite0"))
            .and(predicate::str::contains("debiasers:"))
            .and(predicate::str::contains("erm"))
            .and(predicate::str::contains("adamw"))
            .and(predicate::str::contains("csv-images"))
            .and(predicate::str::contains("es_auc")),
    );
}

#[test]
fn ctrl_c_ends_the_run_as_killed() {
    let sb = Sandbox::new();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("fairlab"));
    cmd.current_dir(root())
        .env("MLFLOW_TRACKING_URI", format!("file:{}", sb.store().display()))
        .args(["run", "experiments/quickstart.yaml", "--set", "debiaser.epochs=100000"])
        .arg("--set")
        .arg(format!("features.cache_dir={}", shared_cache().display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let started = std::time::Instant::now();
    // Wait until training has logged an epoch, then press Ctrl-C.
    while !sb.store().exists()
        || sb
            .runs()
            .first()
            .map(|r| !r.join("metrics/train_loss").exists())
            .unwrap_or(true)
    {
        assert!(started.elapsed().as_secs() < 600, "training never started");
        assert!(child.try_wait().unwrap().is_none(), "fairlab exited early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("recorded as KILLED"), "{stderr}");
    let run = &sb.runs()[0];
    assert!(std::fs::read_to_string(run.join("meta.yaml"))
        .unwrap()
        .contains("status: 5"));
    assert!(std::fs::read_to_string(run.join("tags/fairlab.failure_reason"))
        .unwrap()
        .contains("Ctrl-C"));
}
