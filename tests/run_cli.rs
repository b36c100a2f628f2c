//! `fairlab run`, `fairlab plugins` and `fairlab runs` end to end through the binary, on the real
//! NIH1000 X-rays and the real EfficientNet-Lite0 weights.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use fairlab_framework::runner::{RESUMED_TAG, RESUME_STEPS_TAG};
use fairlab_framework::tracking::{self, RunRecord, RunStatus, Tracker};
use predicates::prelude::*;

use common::{interrupt, root, run_id, shared_cache, shared_server};

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
    interrupt(&child);
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

/// The run with `id` in the store at `uri`.
fn read_run(uri: &str, id: &str) -> (std::sync::Arc<dyn Tracker>, RunRecord) {
    let store = tracking::open(Some(uri)).unwrap();
    let record = store.get_run(id).unwrap();
    (store, record)
}

/// Every file under `dir`, concatenated (lossy UTF-8).
fn all_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            text.push_str(&all_text(&path));
        } else {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    text
}

/// Run the quickstart (3 epochs) into the store at `uri`, resume it with the same config, and
/// check that the second run's metrics follow the first's and nothing else changed.
fn resume_appends_metrics(sb: &Sandbox, uri: &str) {
    let first = sb
        .quickstart(&shared_cache(), &[])
        .env("MLFLOW_TRACKING_URI", uri)
        .assert()
        .success();
    let id = run_id(&String::from_utf8_lossy(&first.get_output().stdout));
    let (store, before) = read_run(uri, &id);
    let history = |key: &str| store.metric_history(&id, key).unwrap();
    let (loss_before, auc_before) = (history("train_loss"), history("test_auc"));
    let highest = before.metrics.values().map(|p| p.step).max().unwrap();

    let second = sb
        .quickstart(&shared_cache(), &[])
        .env("MLFLOW_TRACKING_URI", uri)
        .args(["--resume", &id])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&second.get_output().stdout).into_owned();
    let offset = highest + 1;
    assert!(
        stdout.contains(&format!(
            "run {id} FINISHED (resumed: its new metrics start at step {offset})"
        )),
        "{stdout}"
    );

    let (_, after) = read_run(uri, &id);
    assert_eq!(after.info.status, RunStatus::Finished);
    assert!(after.info.end_time.unwrap() >= before.info.end_time.unwrap());
    assert_eq!(after.params, before.params, "params never change");
    assert_eq!(after.tags[RESUMED_TAG], "1");
    assert_eq!(after.tags[RESUME_STEPS_TAG], offset.to_string());
    let loss = history("train_loss");
    assert_eq!(loss.len(), 2 * loss_before.len(), "{loss:?}");
    assert_eq!(
        loss[..loss_before.len()],
        loss_before[..],
        "the first run's points stay"
    );
    let resumed_steps: Vec<i64> = loss[loss_before.len()..].iter().map(|p| p.step).collect();
    let first_steps: Vec<i64> = loss_before.iter().map(|p| p.step + offset).collect();
    assert_eq!(
        resumed_steps, first_steps,
        "the same steps, shifted after the run's own"
    );
    let auc = history("test_auc");
    assert_eq!(auc.len(), 2);
    assert_eq!((auc[0].step, auc[1].step), (auc_before[0].step, offset));
    assert_eq!(
        after.metrics["test_auc"].step, offset,
        "the latest test_auc is the resumed one"
    );
}

#[test]
fn resume_appends_metrics_after_the_runs_steps_and_keeps_its_params() {
    let sb = Sandbox::new();
    resume_appends_metrics(&sb, &format!("file:{}", sb.store().display()));
    assert_eq!(sb.runs().len(), 1, "no new run");
}

/// The same against a real MLflow server (`FAIRLAB_MLFLOW_SERVER`, set by scripts/test.sh).
#[test]
fn resume_appends_metrics_on_an_mlflow_server() {
    let Some(server) = shared_server() else { return };
    resume_appends_metrics(&Sandbox::new(), &server);
}

#[test]
fn resume_with_a_changed_config_is_exit_2_and_leaves_the_run_untouched() {
    let sb = Sandbox::new();
    let out = sb.quickstart(&shared_cache(), &[]).assert().success();
    let id = run_id(&String::from_utf8_lossy(&out.get_output().stdout));
    let run = &sb.runs()[0];
    let meta = std::fs::read_to_string(run.join("meta.yaml")).unwrap();
    sb.quickstart(&shared_cache(), &["debiaser.epochs=4", "seed=5"])
        .args(["--resume", &id])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(format!("cannot resume run {id}: its params differ")).and(
                predicate::str::contains(
                    "\n  debiaser.epochs: run has 3, config gives 4\n  seed: run has 0, config gives 5",
                ),
            ),
        );
    assert_eq!(
        std::fs::read_to_string(run.join("meta.yaml")).unwrap(),
        meta,
        "status and end time unchanged"
    );
    assert!(!run.join("tags").join(RESUMED_TAG).exists());
    assert_eq!(
        std::fs::read_to_string(run.join("metrics/train_loss"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn resume_refuses_unknown_runs_sweeps_and_dry_runs() {
    let sb = Sandbox::new();
    let unknown = "0123456789abcdef0123456789abcdef";
    sb.quickstart(&shared_cache(), &[])
        .args(["--resume", unknown])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "cannot resume run {unknown}: no run with id {unknown} in the tracking store"
        )));
    sb.fairlab()
        .args(["run", "experiments/sweep-methods.yaml", "--resume", unknown])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--resume continues a single run; experiments/sweep-methods.yaml is a sweep",
        ));
    sb.fairlab()
        .args(["run", "experiments/quickstart.yaml", "--dry-run", "--resume", unknown])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
    assert!(!sb.store().exists() || sb.runs().is_empty());
}

#[test]
fn secrets_never_reach_params_tags_artifacts_or_output() {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(root().join("experiments/quickstart.yaml")).unwrap();
    let file = sb.write(
        "secret.yaml",
        &format!("{text}  tags:\n    api_key: sk-from-the-file-42\n    owner: me\n"),
    );
    let secret_set = "tracking.tags.hf_token=hf_from_the_command_line_42";
    let dry = sb
        .fairlab()
        .arg("run")
        .arg(&file)
        .args(["--dry-run", "--set", secret_set])
        .assert()
        .success();
    let dry_out = String::from_utf8_lossy(&dry.get_output().stdout).into_owned();
    assert!(
        dry_out.contains("hf_token: '***'") && dry_out.contains("api_key: '***'"),
        "{dry_out}"
    );

    let out = sb
        .fairlab()
        .args(["-vv", "run"])
        .arg(&file)
        .args(["--set", "debiaser.epochs=2", "--set", secret_set])
        .arg("--set")
        .arg(format!("features.cache_dir={}", shared_cache().display()))
        .assert()
        .success();
    let output = out.get_output();
    let printed = format!(
        "{dry_out}{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let run = &sb.runs()[0];
    let stored = all_text(run);
    for secret in ["sk-from-the-file-42", "hf_from_the_command_line_42"] {
        assert!(!printed.contains(secret), "{secret} printed");
        assert!(!stored.contains(secret), "{secret} stored");
    }
    let read = |path: &str| std::fs::read_to_string(run.join(path)).unwrap();
    assert_eq!(read("params/tracking.tags.hf_token"), "***");
    assert_eq!(read("params/tracking.tags.api_key"), "***");
    assert_eq!(read("tags/hf_token"), "***");
    assert_eq!(read("tags/owner"), "me");
    assert!(read("artifacts/config.yaml").contains("api_key: '***'"));
}

#[test]
fn long_values_are_cut_to_mlflows_limits_with_a_warning() {
    let sb = Sandbox::new();
    let note = "n".repeat(7000);
    let out = sb
        .quickstart(&shared_cache(), &[&format!("tracking.tags.note={note}")])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("the value of param `tracking.tags.note` is 7000 characters long; MLflow stores at most 6000"),
        "{stderr}"
    );
    let run = &sb.runs()[0];
    assert_eq!(
        std::fs::read_to_string(run.join("params/tracking.tags.note")).unwrap(),
        note[..6000]
    );
    assert_eq!(
        std::fs::read_to_string(run.join("tags/note")).unwrap(),
        note,
        "tags hold 8000"
    );
}

#[test]
fn a_bad_tag_key_is_exit_2_with_line_and_column() {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(root().join("experiments/quickstart.yaml")).unwrap();
    let line = text.lines().count() + 2;
    let bad = sb.write("bad.yaml", &format!("{text}  tags:\n    a:b: x\n"));
    sb.fairlab()
        .arg("run")
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "bad.yaml:{line}:5: `tracking.tags.a:b`: tag key \"a:b\" contains ':'"
        )));
    assert!(!sb.store().exists() || sb.runs().is_empty(), "no run for a bad config");
}
