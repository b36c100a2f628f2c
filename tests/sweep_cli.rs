//! `fairlab run SWEEP.yaml`: planning through the binary (dry runs, saved plans, located errors).
//! Nothing is trained, so these tests need neither the data nor the weights.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

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
fn the_methods_sweep_dry_run_lists_25_trials_and_writes_nothing() {
    let sb = Sandbox::new();
    let out = stdout(sb.fairlab().arg("run").arg(methods()).arg("--dry-run"));
    for expected in [
        "sweep:     sweep-methods (id ",
        "directory: .fairlab/sweeps/sweep-methods-",
        "method:    grid",
        "metric:    test_auc (maximize)",
        "pareto:    test_sex_deodds (minimize)",
        "trials:    25",
        "  seed ~ categorical [0, 1, 2, 3, 4]",
        "  zip name, debiaser (5 points)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let header = out.lines().find(|l| l.starts_with("#  ")).unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["#", "id", "seed", "name", "debiaser"]
    );
    let rows = trial_rows(&out);
    assert_eq!(rows.len(), 25);
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
fn without_dry_run_the_plan_is_saved_and_execution_is_refused() {
    let sb = Sandbox::new();
    let assert = sb
        .fairlab()
        .arg("run")
        .arg(methods())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: sweep execution is not implemented yet; the plan is in .fairlab/sweeps/sweep-methods-",
        ));
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let dir = stderr.trim().rsplit(' ').next().unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sb.dir.path().join(dir).join("plan.json")).unwrap()).unwrap();
    let trials = plan["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 25);
    assert_eq!(trials[1]["config"]["debiaser"]["kind"], "dne");
    assert_eq!(trials[1]["config"]["name"], "dne-adam");
    assert_eq!(trials[5]["config"]["seed"], 1);
    assert!(dir.ends_with(&plan["sweep_id"].as_str().unwrap()[..8]), "{dir}");
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
            "methods.yaml:{line}:11: `debiaser.by`: in trial 3 (seed=0, name=resampling"
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
