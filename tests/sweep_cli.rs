//! Sweeps through the binary: planning (dry runs, saved plans, located errors), then real sweeps of
//! the quickstart on NIH1000, locally and on a real Slurm (`scripts/slurm-local.sh start`; the test
//! is skipped without one unless `FAIRLAB_REQUIRE_SLURM=1`, which the README's test command sets).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

use common::{absolute_paths, interrupt, root};

fn methods() -> PathBuf {
    root().join("experiments/sweep-methods.yaml")
}

/// A working directory of its own (sweep directories are relative to it).
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn fairlab(&self) -> Command {
        let mut cmd = Command::cargo_bin("fairlab").unwrap();
        cmd.current_dir(self.dir.path()).env_remove("RUST_LOG");
        cmd
    }

    /// `experiments/erm.yaml` with `sweep` appended, saved as `name`.
    fn erm_sweep(&self, name: &str, sweep: &str) -> PathBuf {
        let text = std::fs::read_to_string(root().join("experiments/erm.yaml")).unwrap() + sweep;
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `fairlab` with a stand-in `sbatch` first on `PATH` that refuses every job (an invalid
    /// partition): a Slurm sweep gets planned and its directory made, and nothing runs.
    fn with_refusing_sbatch(&self) -> Command {
        let bin = self.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let sbatch = bin.join("sbatch");
        std::fs::write(
            &sbatch,
            "#!/bin/sh\necho 'sbatch: error: invalid partition specified: gpu' >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = self.fairlab();
        cmd.env("PATH", path);
        cmd
    }

    fn sweeps(&self) -> PathBuf {
        self.dir.path().join(".fairlab/sweeps")
    }
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// The trial rows of a dry run's table: index and id.
fn trial_rows(stdout: &str) -> Vec<(usize, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut cells = l.split_whitespace();
            let index = cells.next()?.parse().ok()?;
            let id = cells.next()?;
            (id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())).then(|| (index, id.to_string()))
        })
        .collect()
}

#[test]
fn the_methods_sweep_dry_run_lists_35_trials_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = stdout(sb.fairlab().arg("run").arg(methods()).arg("--dry-run"));
    for expected in [
        "sweep:     sweep-methods (id ",
        "directory: .fairlab/sweeps/sweep-methods-",
        "method:    grid",
        "metric:    test_auc (maximize)",
        "pareto:    test_sex_deodds (minimize)",
        "trials:    35",
        "  seed ~ categorical [0, 1, 2, 3, 4]",
        "  zip name, debiaser (7 points)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let header = out.lines().find(|l| l.starts_with("#  ")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["#", "id", "seed", "name", "debiaser"]
    );
    let rows = trial_rows(&out);
    assert_eq!(rows.len(), 35);
    assert!(rows.iter().enumerate().all(|(i, (index, _))| *index == i));
    let dne = out.lines().find(|l| l.starts_with("1 ")).unwrap();
    assert!(
        dne.contains(" 0 ") && dne.contains("dne-adam") && dne.contains("{kind: dne"),
        "{dne}"
    );
    assert!(!sb.sweeps().exists(), "a dry run writes nothing");
    // Planning again gives the same ids.
    assert_eq!(
        trial_rows(&stdout(sb.fairlab().arg("run").arg(methods()).arg("--dry-run"))),
        rows
    );
}

#[test]
fn sbatch_refusing_the_sweep_keeps_the_plan_and_exits_1_with_its_message() {
    let sb = Sandbox::new();
    let assert = sb
        .with_refusing_sbatch()
        .env(
            "MLFLOW_TRACKING_URI",
            format!("file:{}", sb.dir.path().join("mlruns").display()),
        )
        .arg("run")
        .arg(methods())
        .args(["--executor", "slurm", "--set", "sweep.execution.slurm.partition=gpu"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "sbatch refused the sweep's job array (exit 1): sbatch: error: invalid partition specified: gpu",
        ));
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(stdout.contains("trials: 35 PENDING"), "{stdout}");
    let dir = std::fs::read_dir(sb.sweeps()).unwrap().next().unwrap().unwrap().path();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let trials = plan["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 35);
    assert_eq!(trials[1]["config"]["debiaser"]["kind"], "dne");
    assert_eq!(trials[1]["config"]["name"], "dne-adam");
    assert_eq!(trials[7]["config"]["seed"], 1);
    assert_eq!(plan["spec"]["execution"]["slurm"]["partition"], "gpu");
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        name,
        format!("sweep-methods-{}", &plan["sweep_id"].as_str().unwrap()[..8])
    );
    let parent: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("parent.json")).unwrap()).unwrap();
    let meta = std::fs::read_dir(sb.dir.path().join("mlruns"))
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path().join(parent["run_id"].as_str()?).join("meta.yaml")))
        .find(|p| p.exists())
        .unwrap();
    assert!(
        std::fs::read_to_string(meta).unwrap().contains("status: 4"),
        "the parent run is FAILED"
    );
}

#[test]
fn random_sweeps_print_their_resolved_ranges() {
    let sb = Sandbox::new();
    let file = sb.erm_sweep(
        "lr.yaml",
        "sweep:
  method: random
  run_cap: 6
  metric: {name: test_auc, goal: maximize}
  parameters:
    debiaser.optimizer.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
    debiaser.epochs: {min: 5, max: 50}
",
    );
    let out = stdout(sb.fairlab().arg("run").arg(&file).arg("--dry-run"));
    assert!(out.contains("method:    random (seed 0)"), "{out}");
    assert!(
        out.contains("  debiaser.optimizer.lr ~ log_uniform_values [1e-5, 0.01]"),
        "{out}"
    );
    assert!(out.contains("  debiaser.epochs ~ int_uniform [5, 50]"), "{out}");
    assert_eq!(trial_rows(&out).len(), 6);
    let capped = stdout(sb.fairlab().arg("run").arg(&file).args([
        "--dry-run",
        "--set",
        "sweep.run_cap=2",
        "--set",
        "debiaser.batch_size=32",
    ]));
    assert!(
        capped.contains("--set:     sweep.run_cap=2 debiaser.batch_size=32"),
        "{capped}"
    );
    // The `--set` changes every trial's resolved config, hence its id.
    assert_eq!(trial_rows(&capped).len(), 2);
    assert_ne!(trial_rows(&capped)[0].1, trial_rows(&out)[0].1);
}

#[test]
fn sweep_errors_are_exit_2_with_file_line_and_column() {
    let sb = Sandbox::new();
    let file = sb.erm_sweep(
        "bad.yaml",
        "sweep:
  method: grid
  metric: {name: test_auc}
  parameters:
    debiaser.momentum: {values: [0.9, 0.99]}
",
    );
    let line = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .position(|l| l.contains("momentum"))
        .unwrap()
        + 1;
    sb.fairlab()
        .arg("run")
        .arg(&file)
        .arg("--dry-run")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "bad.yaml:{line}:5: `sweep.parameters.debiaser.momentum`: `debiaser.momentum` is not in the experiment; set it in the experiment first"
        )));
}

#[test]
fn a_bad_plugin_setting_in_one_trial_points_at_its_sweep_value() {
    let sb = Sandbox::new();
    let text = std::fs::read_to_string(methods())
        .unwrap()
        .replace("by: group\n", "by: groop\n");
    let file = sb.dir.path().join("methods.yaml");
    std::fs::write(&file, &text).unwrap();
    let line = text.lines().position(|l| l.contains("by: groop")).unwrap() + 1;
    sb.fairlab().arg("run").arg(&file).assert().code(2).stderr(
        predicate::str::contains(format!(
            "methods.yaml:{line}:11: `debiaser.by`: in trial 5 (seed=0, name=resampling"
        ))
        .and(predicate::str::contains("unknown variant `groop`")),
    );
    assert!(!sb.sweeps().exists(), "no plan for a bad sweep");
}

#[test]
fn a_set_over_a_swept_path_is_refused() {
    Sandbox::new()
        .fairlab()
        .arg("run")
        .arg(methods())
        .args(["--dry-run", "--set", "seed=7"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--set seed=7: `seed`: would overwrite the swept `seed` in every trial",
        ));
}

/// The quickstart as a 6-trial sweep (seeds 0-5, 3 epochs) in which trial 5 fails: its learning
/// rate of 1e30 makes the loss NaN. Data, weights and feature cache are given as absolute `--set`s.
fn six_trials(sb: &Sandbox) -> (PathBuf, Vec<String>) {
    let text = std::fs::read_to_string(root().join("experiments/quickstart.yaml")).unwrap()
        + "
sweep:
  method: grid
  metric: {name: test_auc, goal: maximize}
  pareto: {name: test_sex_deodds, goal: minimize}
  zip:
    - seed: [0, 1, 2, 3, 4, 5]
      debiaser.optimizer.lr: [0.0003, 0.0003, 0.0003, 0.0003, 0.0003, 1.0e+30]
";
    let path = sb.dir.path().join("six.yaml");
    std::fs::write(&path, text).unwrap();
    let sets = absolute_paths().into_iter().chain(["debiaser.epochs=3".to_string()]);
    let args = sets.flat_map(|s| ["--set".to_string(), s]).collect();
    (path, args)
}

/// The sandbox's only sweep directory.
fn only_sweep(sb: &Sandbox) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(sb.sweeps())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn journal(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every run folder of the sandbox's store, with its `mlflow.parentRunId` tag and status code.
fn store_runs(sb: &Sandbox) -> Vec<(String, Option<String>, String)> {
    let mut runs = Vec::new();
    for experiment in std::fs::read_dir(sb.dir.path().join("mlruns")).unwrap() {
        let experiment = experiment.unwrap().path();
        for run in std::fs::read_dir(&experiment).into_iter().flatten() {
            let run = run.unwrap().path();
            let Ok(meta) = std::fs::read_to_string(run.join("meta.yaml")) else {
                continue;
            };
            let status = meta
                .lines()
                .find_map(|l| l.strip_prefix("status: "))
                .unwrap()
                .to_string();
            let parent = std::fs::read_to_string(run.join("tags/mlflow.parentRunId")).ok();
            runs.push((run.file_name().unwrap().to_string_lossy().into_owned(), parent, status));
        }
    }
    runs
}

/// Checks shared by the local and the Slurm sweep: 5 trials finished, trial 5 failed with its
/// reason; the report files; a parent run with 6 child runs.
fn check_six_trial_sweep(sb: &Sandbox, stdout: &str) -> PathBuf {
    assert!(stdout.contains("trials: 5 FINISHED, 1 FAILED"), "{stdout}");
    assert!(stdout.contains("best by test_auc (maximize): trial "), "{stdout}");
    let dir = only_sweep(sb);
    let results = json(&dir.join("results.json"));
    let trials = results["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6);
    for (i, t) in trials.iter().enumerate() {
        let expected = if i == 5 { "FAILED" } else { "FINISHED" };
        assert_eq!(t["state"], expected, "{t}");
    }
    assert!(trials[5]["reason"].as_str().unwrap().contains("NaN"), "{}", trials[5]);
    let best = results["best"].as_u64().unwrap() as usize;
    assert!(best < 5);
    let best_auc = trials[best]["metric"].as_f64().unwrap();
    assert!(trials[..5].iter().all(|t| t["metric"].as_f64().unwrap() <= best_auc));
    assert!(!results["pareto_front"].as_array().unwrap().is_empty());
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("index,id,state,attempts,debiaser.optimizer.lr,seed,"),
        "{csv}"
    );

    let parent = json(&dir.join("parent.json"))["run_id"].as_str().unwrap().to_string();
    let runs = store_runs(sb);
    let (parents, children): (Vec<_>, Vec<_>) = runs.iter().partition(|r| r.0 == parent);
    assert_eq!(parents[0].2, "4", "the parent run is FAILED: a trial failed");
    assert_eq!(children.len(), 6, "{runs:?}");
    assert!(
        children.iter().all(|c| c.1.as_deref() == Some(parent.as_str())),
        "{runs:?}"
    );
    assert_eq!(children.iter().filter(|c| c.2 == "3").count(), 5);
    dir
}

#[test]
fn a_local_sweep_runs_every_trial_and_resume_reruns_only_the_failed_one() {
    let sb = Sandbox::new();
    let (file, sets) = six_trials(&sb);
    let assert = sb
        .fairlab()
        .env(
            "MLFLOW_TRACKING_URI",
            format!("file:{}", sb.dir.path().join("mlruns").display()),
        )
        .arg("run")
        .arg(&file)
        .args(&sets)
        .args(["--jobs", "2"])
        .assert()
        .code(1);
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("6 of 6 trial(s) to run, 2 at a time (local)"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 6 trial(s) did not finish"), "{stderr}");
    let dir = check_six_trial_sweep(&sb, &stdout);
    let first = journal(&dir);
    assert_eq!(first.len(), 12, "a RUNNING and a final entry per trial");
    assert!(dir.join("logs").read_dir().unwrap().count() == 6);

    // Resume: only trial 5 runs again (and fails again); the finished ones are untouched.
    let resume = sb
        .fairlab()
        .env(
            "MLFLOW_TRACKING_URI",
            format!("file:{}", sb.dir.path().join("mlruns").display()),
        )
        .args(["sweep", "resume"])
        .arg(&dir)
        .assert()
        .code(1);
    let stderr = String::from_utf8(resume.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("1 of 6 trial(s) to run"), "{stderr}");
    let after = journal(&dir);
    assert_eq!(after[..12], first[..]);
    let new: Vec<_> = after[12..]
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["state"].as_str().unwrap().to_string(),
                e["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(new, [(5, "RUNNING".to_string(), 2), (5, "FAILED".to_string(), 2)]);
    assert_eq!(store_runs(&sb).len(), 8, "the same parent run, one more child");

    // Status, through the sweep file and its --sets, reads the same journal.
    let status = stdout_of(sb.fairlab().args(["sweep", "status"]).arg(&file).args(&sets));
    assert!(status.contains("trials: 5 FINISHED, 1 FAILED"), "{status}");
    assert!(status.contains(" 2 "), "attempts shown for trial 5: {status}");
}

#[test]
fn ctrl_c_stops_a_local_sweep_and_marks_running_trials_killed() {
    let sb = Sandbox::new();
    let (file, mut sets) = six_trials(&sb);
    sets.extend(["--set".to_string(), "debiaser.epochs=100000".to_string()]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fairlab"))
        .current_dir(sb.dir.path())
        .env(
            "MLFLOW_TRACKING_URI",
            format!("file:{}", sb.dir.path().join("mlruns").display()),
        )
        .arg("run")
        .arg(&file)
        .args(&sets)
        .args(["--jobs", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both running trials have logged a training epoch, then press Ctrl-C.
    let started = std::time::Instant::now();
    loop {
        assert!(started.elapsed().as_secs() < 600, "training never started");
        assert!(child.try_wait().unwrap().is_none(), "fairlab exited early");
        let training = sb.sweeps().exists()
            && store_runs(&sb)
                .iter()
                .filter(|r| r.1.is_some())
                .filter(|r| {
                    std::fs::read_dir(sb.dir.path().join("mlruns"))
                        .unwrap()
                        .any(|e| e.unwrap().path().join(&r.0).join("metrics/train_loss").exists())
                })
                .count()
                == 2;
        if training {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("trials: 4 PENDING, 2 KILLED"), "{stdout}");
    let runs = store_runs(&sb);
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.2 == "5"), "parent and children KILLED: {runs:?}");
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// Whether a Slurm controller answers (`scripts/slurm-local.sh start` sets one up).
fn slurm_is_up() -> bool {
    std::process::Command::new("sinfo")
        .arg("--noheader")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_sweep_runs_as_a_job_array_on_a_real_slurm_and_resumes() {
    if !slurm_is_up() {
        assert!(
            std::env::var("FAIRLAB_REQUIRE_SLURM").as_deref() != Ok("1"),
            "FAIRLAB_REQUIRE_SLURM=1 but no Slurm answers: start one with scripts/slurm-local.sh start and export SLURM_CONF"
        );
        eprintln!("skipped: no Slurm (scripts/slurm-local.sh start)");
        return;
    }
    let sb = Sandbox::new();
    let (file, sets) = six_trials(&sb);
    let store = format!("file:{}", sb.dir.path().join("mlruns").display());
    let assert = sb
        .fairlab()
        .env("MLFLOW_TRACKING_URI", &store)
        .arg("run")
        .arg(&file)
        .args(&sets)
        .args([
            "--executor",
            "slurm",
            "--jobs",
            "3",
            "--set",
            "sweep.execution.slurm.poll_seconds=0.5",
        ])
        .assert()
        .code(1);
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("submitted 6 trial(s) as Slurm job array "), "{stderr}");
    let dir = check_six_trial_sweep(&sb, &stdout);
    let entries = journal(&dir);
    let queued: Vec<&serde_json::Value> = entries.iter().filter(|e| e["state"] == "QUEUED").collect();
    assert_eq!(queued.len(), 6);
    let job = queued[0]["worker"]
        .as_str()
        .unwrap()
        .strip_prefix("slurm:")
        .unwrap()
        .split('_')
        .next()
        .unwrap()
        .to_string();
    for e in entries.iter().filter(|e| e["state"] != "QUEUED") {
        assert_eq!(e["worker"], format!("slurm:{job}_{}", e["index"]), "{e}");
    }
    for i in 0..6 {
        assert!(dir.join(format!("logs/slurm-{job}_{i}.out")).exists());
    }

    let resume = sb
        .fairlab()
        .env("MLFLOW_TRACKING_URI", &store)
        .args(["sweep", "resume"])
        .arg(&dir)
        .assert()
        .code(1);
    let stderr = String::from_utf8(resume.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("1 of 6 trial(s) to run, 3 at a time (slurm)"),
        "{stderr}"
    );
    assert!(stderr.contains("submitted 1 trial(s) as Slurm job array "), "{stderr}");
    let after = journal(&dir);
    assert_eq!(after[..entries.len()], entries[..]);
    let new: Vec<(u64, &str)> = after[entries.len()..]
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(new, [(5, "QUEUED"), (5, "RUNNING"), (5, "FAILED")]);
    assert!(dir.join("slurm/wave-2.sh").exists());
}

/// A sweep directory (the methods sweep, planned and refused by a stand-in sbatch: nothing ran).
fn planned_sweep(sb: &Sandbox) -> PathBuf {
    sb.with_refusing_sbatch()
        .env(
            "MLFLOW_TRACKING_URI",
            format!("file:{}", sb.dir.path().join("mlruns").display()),
        )
        .arg("run")
        .arg(methods())
        .args(["--executor", "slurm"])
        .assert()
        .code(1);
    only_sweep(sb)
}

#[test]
fn sweep_command_misuse_is_a_clear_error_with_its_exit_code() {
    let sb = Sandbox::new();
    // Sweep flags on an experiment without `sweep:`.
    sb.fairlab()
        .arg("run")
        .arg(root().join("experiments/erm.yaml"))
        .args(["--jobs", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--dir, --jobs, --executor, --timeout and --retries apply to sweeps;",
        ))
        .stderr(predicate::str::contains("has no `sweep:` section"));
    // Execution settings out of range, from the command line and from the file.
    sb.fairlab()
        .arg("run")
        .arg(methods())
        .args(["--dry-run", "--jobs", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`sweep.execution.jobs`: must be at least 1"));
    sb.fairlab()
        .arg("run")
        .arg(methods())
        .args(["--dry-run", "--timeout", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("`soon` is not a duration"));
    let file = sb.erm_sweep(
        "mem.yaml",
        "\nsweep:\n  method: grid\n  metric: {name: test_auc}\n  parameters:\n    seed: {values: [0, 1]}\n  execution:\n    slurm: {mem: 8 GB}\n",
    );
    sb.fairlab()
        .arg("run")
        .arg(&file)
        .arg("--dry-run")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mem.yaml:"))
        .stderr(predicate::str::contains(
            "`sweep.execution.slurm.mem`: `8 GB` is not a memory size",
        ));
    // Status of a sweep file that never ran, and of a folder that is not a sweep.
    let never = sb.erm_sweep(
        "never.yaml",
        "\nsweep:\n  method: grid\n  metric: {name: test_auc}\n  parameters:\n    seed: {values: [0, 1]}\n",
    );
    sb.fairlab()
        .args(["sweep", "status"])
        .arg(&never)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("has not been run yet"));
    sb.fairlab()
        .args(["sweep", "status"])
        .arg(sb.dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "is not a sweep directory (it has no plan.json)",
        ));
}

#[test]
fn a_second_driver_is_refused_and_a_trial_needs_an_index() {
    let sb = Sandbox::new();
    let dir = planned_sweep(&sb);
    // Another process drives the sweep: it holds driver.lock.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("driver.lock"))
        .unwrap();
    lock.lock().unwrap();
    sb.fairlab()
        .env(
            "MLFLOW_TRACKING_URI",
            format!("file:{}", sb.dir.path().join("mlruns").display()),
        )
        .args(["sweep", "resume"])
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "another fairlab process is running the sweep in",
        ));
    drop(lock);
    sb.fairlab()
        .env_remove("SLURM_ARRAY_TASK_ID")
        .args(["sweep", "trial", "--dir"])
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("give --index (no SLURM_ARRAY_TASK_ID is set)"));
    sb.fairlab()
        .args(["sweep", "trial", "--index", "99", "--dir"])
        .arg(&dir)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has 35 trials (0..=34); there is no trial 99"));
}
