use proptest::prelude::*;
use serde_norway::Value;

use super::*;
use crate::config::inline_yaml;
use crate::error::ConfigError;

const BASE: &str = "\
name: quick
seed: 3
dataset: {kind: csv-images, root: data/nih1000}
backbone: {kind: efficientnet-lite0}
debiaser:
  kind: erm
  epochs: 5
  optimizer: {kind: adamw, lr: 0.001}
";

/// Plan `text` (written to a temporary sweep.yaml) with `--set`s and no plugin checks.
pub(in crate::sweep) fn plan(text: &str, sets: &[&str]) -> Result<SweepPlan, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.yaml");
    std::fs::write(&path, text).unwrap();
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    SweepPlan::from_experiment_file(&path, &sets, |_| Ok(()))
}

/// BASE plus a sweep section (indented by the caller).
pub(in crate::sweep) fn sweep(section: &str) -> String {
    format!("{BASE}sweep:\n  metric: {{name: test_auc, goal: maximize}}\n{section}")
}

/// Each trial's overrides as `path=value` strings.
fn rows(plan: &SweepPlan) -> Vec<String> {
    plan.trials
        .iter()
        .map(|t| {
            t.overrides
                .iter()
                .map(|(k, v)| format!("{k}={}", inline_yaml(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn grid_is_the_product_of_parameters_then_zip_groups_first_slowest() {
    let p = plan(
        &sweep(
            "  method: grid
  parameters:
    seed: {values: [0, 1]}
    debiaser.optimizer.lr: {value: 0.01}
  zip:
    - debiaser.kind: [erm, resampling]
      debiaser.epochs: [30, 5]
",
        ),
        &[],
    )
    .unwrap();
    assert_eq!(
        rows(&p),
        [
            "seed=0 debiaser.optimizer.lr=0.01 debiaser.kind=erm debiaser.epochs=30",
            "seed=0 debiaser.optimizer.lr=0.01 debiaser.kind=resampling debiaser.epochs=5",
            "seed=1 debiaser.optimizer.lr=0.01 debiaser.kind=erm debiaser.epochs=30",
            "seed=1 debiaser.optimizer.lr=0.01 debiaser.kind=resampling debiaser.epochs=5",
        ]
    );
    let t = &p.trials[3];
    assert_eq!((t.index, t.config.seed), (3, 1));
    assert_eq!(t.config.debiaser.kind, "resampling");
    assert_eq!(t.config.debiaser.path, "debiaser");
    assert_eq!(t.config.debiaser.params["epochs"], Value::from(5));
    assert_eq!(t.config.name, "quick", "unswept keys come from the experiment");
    assert_eq!(p.spec.metric.goal, Goal::Maximize);
    assert!(p.notes.is_empty(), "{:?}", p.notes);
}

#[test]
fn zip_values_can_be_whole_sections() {
    let p = plan(
        &sweep(
            "  method: grid
  zip:
    - name: [erm, fairclip]
      debiaser:
        - {kind: erm, epochs: 1}
        - {kind: fairclip, lambda: 0.1, sinkhorn: {blur: 0.0001}}
",
        ),
        &[],
    )
    .unwrap();
    assert_eq!(p.trials.len(), 2);
    assert_eq!(p.trials[1].config.name, "fairclip");
    assert_eq!(p.trials[1].config.debiaser.kind, "fairclip");
    assert!(
        !p.trials[1].config.debiaser.params.contains_key("optimizer"),
        "a section replaces the base's"
    );
}

const RANDOM: &str = "  method: random
  run_cap: 8
  seed: 5
  parameters:
    debiaser.optimizer.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
    debiaser.epochs: {min: 1, max: 100}
";

#[test]
fn random_sweeps_are_reproducible_given_their_seed() {
    let a = plan(&sweep(RANDOM), &[]).unwrap();
    let again = plan(&sweep(RANDOM), &[]).unwrap();
    assert_eq!((&a.sweep_id, &a.trials), (&again.sweep_id, &again.trials));
    assert_eq!(a.trials.len(), 8);
    for t in &a.trials {
        let lr = t.config.debiaser.params["optimizer"]["lr"].as_f64().unwrap();
        assert!((1e-5..=1e-2).contains(&lr), "{lr}");
        assert!(
            t.config.debiaser.params["epochs"].is_u64(),
            "int_uniform gives integers"
        );
    }
    let other = plan(&sweep(&RANDOM.replace("seed: 5", "seed: 6")), &[]).unwrap();
    assert_ne!(rows(&a), rows(&other));
    // Each parameter draws from its own stream: reordering or adding parameters changes nothing else.
    let reordered = RANDOM.replace(
        "    debiaser.optimizer.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}\n    debiaser.epochs: {min: 1, max: 100}\n",
        "    debiaser.epochs: {min: 1, max: 100}\n    seed: {values: [1, 2, 3]}\n    debiaser.optimizer.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}\n",
    );
    let b = plan(&sweep(&reordered), &[]).unwrap();
    let lrs = |p: &SweepPlan| -> Vec<Value> {
        p.trials
            .iter()
            .map(|t| t.config.debiaser.params["optimizer"]["lr"].clone())
            .collect()
    };
    assert_eq!(lrs(&a), lrs(&b));
}

#[test]
fn distributions_are_inferred_as_in_wandb() {
    let p = plan(
        &sweep(
            "  method: random
  run_cap: 3
  parameters:
    seed: {values: [1, 2]}
    name: {value: fixed}
    debiaser.epochs: {min: 1, max: 9}
    debiaser.optimizer.lr: {min: 0.001, max: 0.1}
",
        ),
        &[],
    )
    .unwrap();
    let names: Vec<&str> = p.spec.parameters.iter().map(|p| p.distribution.name()).collect();
    assert_eq!(names, ["categorical", "constant", "int_uniform", "uniform"]);
}

#[test]
fn ids_ignore_key_order_and_sweep_layout() {
    let a = plan(
        &sweep("  method: grid\n  parameters:\n    seed: {values: [0, 1]}\n    debiaser.epochs: {values: [1, 2]}\n"),
        &[],
    )
    .unwrap();
    let reordered = "\
sweep:
  parameters:
    debiaser.epochs: {values: [1, 2]}
    seed: {values: [0, 1]}
  metric: {goal: maximize, name: test_auc}
  method: grid
debiaser:
  optimizer: {lr: 0.001, kind: adamw}
  epochs: 5
  kind: erm
backbone: {kind: efficientnet-lite0}
dataset: {root: data/nih1000, kind: csv-images}
seed: 3
name: quick
";
    let b = plan(reordered, &[]).unwrap();
    let ids = |p: &SweepPlan| {
        let mut ids: Vec<String> = p.trials.iter().map(|t| t.id.clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.sweep_id, b.sweep_id);
    assert_ne!(a.trials[0].id, a.trials[1].id);
    // A value written out that equals the default resolves to the same config.
    let explicit = plan(
        &sweep("  method: grid\n  parameters:\n    seed: {values: [0, 1]}\n    debiaser.epochs: {values: [1, 2]}\n")
            .replace("name: quick\n", "name: quick\nfeatures: {batch_size: 64}\n"),
        &[],
    )
    .unwrap();
    assert_eq!(explicit.sweep_id, a.sweep_id);
    assert_eq!(
        a.default_dir(),
        Path::new(SWEEPS_DIR).join(format!("quick-{}", &a.sweep_id[..8]))
    );
}

#[test]
fn run_cap_keeps_the_first_grid_trials() {
    let p = plan(
        &sweep("  method: grid\n  run_cap: 3\n  parameters:\n    seed: {min: 0, max: 9}\n"),
        &[],
    )
    .unwrap();
    assert_eq!(rows(&p), ["seed=0", "seed=1", "seed=2"]);
    assert_eq!(p.notes, ["run_cap 3 keeps the first 3 of the grid's 10 points"]);
}

#[test]
fn duplicate_trials_are_dropped_with_a_note() {
    let p = plan(
        &sweep("  method: random\n  run_cap: 20\n  parameters:\n    seed: {values: [0, 1]}\n"),
        &[],
    )
    .unwrap();
    assert_eq!(p.trials.len(), 2);
    assert_eq!(p.trials.iter().map(|t| t.index).collect::<Vec<_>>(), [0, 1]);
    assert!(
        p.notes[0].starts_with("18 trial(s) resolved to the same config"),
        "{:?}",
        p.notes
    );
}

#[test]
fn command_line_sets_change_the_sweep_or_every_trial() {
    let text = sweep("  method: grid\n  parameters:\n    seed: {values: [0, 1, 2]}\n");
    let p = plan(&text, &["sweep.run_cap=2", "debiaser.epochs=7"]).unwrap();
    assert_eq!(p.trials.len(), 2);
    assert!(p.trials.iter().all(|t| t.config.debiaser.params["epochs"] == 7));
    assert_eq!(p.cli_overrides, ["sweep.run_cap=2", "debiaser.epochs=7"]);
    let err = plan(&text, &["seed=9"]).unwrap_err();
    assert_eq!(err.to_string(), "--set seed=9: `seed`: would overwrite the swept `seed` in every trial; change `sweep.parameters` or `sweep.zip` instead");
    let err = plan(&text, &["sweep.method=bayes"]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--set sweep.method=bayes: `sweep.method`: unknown variant `bayes`"),
        "{err}"
    );
}

/// The line of `needle` in `text`, 1-based.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_bad_trial_names_the_trial_and_points_at_its_value() {
    let text = sweep("  method: grid\n  parameters:\n    seed:\n      values:\n        - 1\n        - many\n");
    let err = plan(&text, &[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("seed"));
    assert!(err.message.starts_with("in trial 1 (seed=many): invalid type"), "{err}");
    let loc = err.location.unwrap();
    assert_eq!((loc.line, loc.column), (Some(line_of(&text, "- many")), Some(11)));
}

#[test]
fn plugin_checks_see_located_trials() {
    let text = sweep(
        "  method: grid\n  zip:\n    - debiaser:\n        - {kind: erm}\n        - {kind: erm, epochs: 2, bad: 1}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sweep.yaml");
    std::fs::write(&path, &text).unwrap();
    let err = SweepPlan::from_experiment_file(&path, &[], |e| match e.config.debiaser.params.get("bad") {
        Some(_) => Err(e.locate(ConfigError::at_key("debiaser.bad", "unknown field `bad`"))),
        None => Ok(()),
    })
    .unwrap_err();
    let loc = err.location.clone().unwrap();
    assert_eq!(
        (loc.line, loc.column),
        (Some(line_of(&text, "bad: 1")), Some(34)),
        "{err}"
    );
    assert!(
        err.message
            .starts_with("in trial 1 (debiaser={kind: erm, epochs: 2, bad: 1})"),
        "{err}"
    );
}

/// Every validation error: the sweep section, the key it names, a piece of the message.
#[test]
fn every_validation_error_names_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        ("  method: grid\n  parameters:\n    seed: {values: [1], bogus: 2}\n", "sweep.parameters.seed.bogus", "unknown field `bogus`"),
        ("  method: grid\n  parameters:\n    seed: {values: [1]}\n  early_terminate: {}\n", "sweep.early_terminate", "unknown field"),
        ("  method: grid\n  parameters:\n    debiaser.momentum: {values: [1]}\n", "sweep.parameters.debiaser.momentum", "set it in the experiment first"),
        ("  method: grid\n  parameters:\n    seed: {values: [1]}\n  zip:\n    - seed: [1, 2]\n", "sweep.zip.0.seed", "is also swept"),
        ("  method: grid\n  parameters:\n    debiaser.epochs: {values: [1]}\n  zip:\n    - debiaser: [{kind: erm}]\n", "sweep.zip.0.debiaser", "overlaps"),
        ("  method: grid\n  zip:\n    - seed: [1, 2]\n      name: [a]\n", "sweep.zip.0.name", "1 values, but `seed` has 2"),
        ("  method: grid\n  parameters:\n    debiaser.optimizer.lr: {min: 0.1, max: 1.0}\n", "sweep.parameters.debiaser.optimizer.lr", "grid cannot enumerate a uniform"),
        ("  method: grid\n  parameters:\n    seed: {min: 0, max: 100000}\n", "sweep.parameters.seed", "at most 10000"),
        ("  method: random\n  run_cap: 2\n  parameters:\n    debiaser.optimizer.lr: {distribution: log_uniform_values, min: 0, max: 1}\n", "sweep.parameters.debiaser.optimizer.lr.min", "must be > 0"),
        ("  method: random\n  run_cap: 2\n  parameters:\n    debiaser.optimizer.lr: {min: 0.5, max: 0.1}\n", "sweep.parameters.debiaser.optimizer.lr.min", "greater than max"),
        ("  method: random\n  parameters:\n    seed: {values: [1]}\n", "sweep.run_cap", "needs `run_cap`"),
        ("  method: grid\n  parameters:\n    seed: {values: []}\n", "sweep.parameters.seed.values", "empty"),
        ("  method: random\n  run_cap: 1\n  parameters:\n    seed: {values: [1, 2], probabilities: [0.5, 0.6]}\n", "sweep.parameters.seed.probabilities", "sum to 1.1"),
        ("  method: random\n  run_cap: 1\n  parameters:\n    seed: {values: [1, 2], probabilities: [1]}\n", "sweep.parameters.seed.probabilities", "1 probabilities for 2 values"),
        ("  method: grid\n  parameters:\n    sweep.seed: {values: [1]}\n", "sweep.parameters.sweep.seed", "its own `sweep` section"),
        ("  method: grid\n  parameters:\n    seed: {distribution: normal, values: [1]}\n", "sweep.parameters.seed.values", "unknown field `values`"),
        ("  method: grid\n  parameters:\n    seed: {min: 1.5, max: 3, q: 0.5}\n", "sweep.parameters.seed.q", "inferred as uniform"),
        ("  method: random\n  run_cap: 1\n  parameters:\n    seed: {distribution: int_uniform, min: 1.5, max: 3}\n", "sweep.parameters.seed", "invalid type: floating point `1.5`"),
        ("  method: grid\n  parameters:\n    seed: {}\n", "sweep.parameters.seed", "give `value`, `values`, or `min` and `max`"),
        ("  method: grid\n  parameters:\n    seed: [1, 2]\n", "sweep.parameters.seed", "a parameter is a mapping"),
        ("  method: grid\n  run_cap: 0\n  parameters:\n    seed: {values: [1]}\n", "sweep.run_cap", "at least 1"),
        ("  method: grid\n", "sweep.parameters", "at least one parameter"),
        ("  parameters:\n    seed: {values: [1]}\n", "sweep.method", "missing"),
    ];
    for (section, key, message) in cases {
        let err = plan(&sweep(section), &[]).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(*key), "{section}: {err}");
        assert!(err.message.contains(message), "{section}: {err}");
        assert!(
            err.location.as_ref().is_some_and(|l| l.line.is_some()),
            "{section}: {err}"
        );
    }
    let no_metric = format!("{BASE}sweep:\n  method: grid\n  parameters:\n    seed: {{values: [1]}}\n");
    let err = plan(&no_metric, &[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("sweep.metric"));
    assert_eq!(err.location.unwrap().line, Some(line_of(&no_metric, "sweep:")));
}

#[test]
fn errors_point_at_the_sweep_key() {
    let text = sweep("  method: grid\n  parameters:\n    debiaser.momentum: {values: [1]}\n");
    let err = plan(&text, &[]).unwrap_err();
    let loc = err.location.unwrap();
    assert_eq!((loc.line, loc.column), (Some(line_of(&text, "momentum")), Some(5)));
}

#[test]
fn notes_flag_ignored_probabilities_and_log_uniform_bounds_that_look_like_values() {
    let p = plan(
        &sweep("  method: grid\n  parameters:\n    seed: {values: [1, 2], probabilities: [0.5, 0.5]}\n"),
        &[],
    )
    .unwrap();
    assert!(p.notes[0].contains("only apply to method: random"), "{:?}", p.notes);
    let p = plan(
        &sweep("  method: random\n  run_cap: 1\n  parameters:\n    debiaser.optimizer.lr: {distribution: log_uniform, min: 0.00001, max: 0.01}\n"),
        &[],
    )
    .unwrap();
    assert!(p.notes[0].contains("values [1.00001, 1.01005]"), "{:?}", p.notes);
}

#[test]
fn the_plan_round_trips_through_plan_json() {
    let p = plan(
        &sweep("  method: grid\n  parameters:\n    seed: {values: [0, 1]}\n  zip:\n    - debiaser: [{kind: erm, optimizer: {kind: sgd, lr: 0.1}}]\n"),
        &[],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = p.write(dir.path()).unwrap();
    assert_eq!(file, dir.path().join(PLAN_FILE));
    let back = SweepPlan::read(dir.path()).unwrap();
    assert_eq!(back, p);
    assert_eq!(
        back.trials[1].config.debiaser.params["optimizer"]["lr"],
        Value::from(0.1)
    );
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("\"lr\": 0.1", "\"lr\": 0.2");
    std::fs::write(&file, edited).unwrap();
    let err = SweepPlan::read(dir.path()).unwrap_err();
    assert!(format!("{err:#}").contains("does not match its id"), "{err:#}");
}

#[test]
fn secrets_stay_out_of_the_plan_artifact_and_cannot_be_swept() {
    let text = sweep("  method: grid\n  parameters:\n    seed: {values: [0, 1]}\n");
    let text = text.replacen("seed: 3\n", "seed: 3\ntracking:\n  tags: {hf_token: hf_in_file}\n", 1);
    let p = plan(&text, &["tracking.tags.api_key=hf_on_command_line"]).unwrap();
    assert_eq!(p.cli_overrides, ["tracking.tags.api_key=***"]);
    assert_eq!(
        p.trials[0].config.tracking.tags["hf_token"], "hf_in_file",
        "trials run with the value"
    );
    let json = p.redacted_json().unwrap();
    assert!(
        !json.contains("hf_in_file") && !json.contains("hf_on_command_line"),
        "{json}"
    );
    assert!(json.contains("\"hf_token\": \"***\""), "{json}");
    let shown: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(shown["trials"][1]["config"]["seed"], 1);

    let swept = text.replace(
        "    seed: {values: [0, 1]}",
        "    tracking.tags.hf_token: {values: [a, b]}",
    );
    let err = plan(&swept, &[]).unwrap_err();
    assert_eq!(err.key.as_deref(), Some("sweep.parameters.tracking.tags.hf_token"));
    assert!(err.message.contains("is a secret and cannot be swept"), "{err}");
    assert_eq!(err.location.unwrap().line, Some(line_of(&swept, "hf_token: {values")));
}

#[test]
fn sweep_files_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let (yes, no) = (dir.path().join("yes.yaml"), dir.path().join("no.yaml"));
    std::fs::write(&yes, sweep("  method: grid\n")).unwrap();
    std::fs::write(&no, BASE).unwrap();
    assert!(declares_sweep(&yes));
    assert!(!declares_sweep(&no));
    assert!(!declares_sweep(&dir.path().join("missing.yaml")));
    assert_eq!(clip("abcdef", 4), "abc…");
    assert_eq!(clip("abc", 4), "abc");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A grid has one trial per combination: the product of the parameters' and zip groups' sizes.
    #[test]
    fn grid_size_is_the_product_of_axis_sizes(seeds in 1usize..5, epochs in 1usize..5, zip in 1usize..4) {
        let list = |n: usize, prefix: &str| (0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>().join(", ");
        let section = format!(
            "  method: grid\n  parameters:\n    seed: {{values: [{}]}}\n    debiaser.epochs: {{min: 1, max: {epochs}}}\n  zip:\n    - name: [{}]\n      debiaser.optimizer.lr: [{}]\n",
            list(seeds, ""),
            list(zip, "n"),
            list(zip, "0.0"),
        );
        let p = plan(&sweep(&section), &[]).unwrap();
        prop_assert_eq!(p.trials.len(), seeds * epochs * zip);
        prop_assert_eq!(p.spec.grid_size(), (seeds * epochs * zip) as u64);
    }
}

#[test]
fn the_report_ranks_finished_trials_and_shows_only_what_varies() {
    let p = plan(
        &sweep(
            "  method: grid
  pareto: {name: test_sex_deodds, goal: minimize}
  parameters:
    seed: {values: [0, 1, 2]}
    debiaser.epochs: {value: 7}
",
        ),
        &[],
    )
    .unwrap();
    let finished = |i: usize, auc: f64, gap: f64| {
        let mut e = JournalEntry::new(&p.trials[i].id, i, TrialState::Finished, 1, "w");
        e.metrics = [("test_auc".to_string(), auc), ("test_sex_deodds".to_string(), gap)].into();
        e
    };
    let failed = JournalEntry::new(&p.trials[2].id, 2, TrialState::Failed, 1, "w").with_reason("boom");
    let statuses = journal::fold(vec![finished(0, 0.70, 0.10), finished(1, 0.75, 0.20), failed]);
    let report = SweepReport::build(&p, &statuses);
    assert_eq!(report.best, Some(1));
    assert_eq!(report.pareto_front, vec![1, 0]);
    assert_eq!(report.count(TrialState::Finished), 2);
    assert_eq!(report.counts_line(), "2 FINISHED, 1 FAILED");
    assert_eq!(
        report.trials[0].params.keys().collect::<Vec<_>>(),
        ["seed"],
        "epochs does not vary"
    );
    assert_eq!(report.trials[2].metric, None);
    let csv = report.to_csv();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "index,id,state,attempts,seed,test_auc,test_sex_deodds,best,pareto,run_id,duration_ms,reason"
    );
    assert!(lines.nth(1).unwrap().ends_with(",1,0.75,0.2,true,true,,,"), "{csv}");
    assert!(csv.trim_end().ends_with(",FAILED,1,2,,,false,false,,,boom"), "{csv}");
    let table = report.to_table();
    assert!(table.contains("best by test_auc (maximize): trial 1"), "{table}");
    assert!(
        table.contains("pareto front (test_auc (maximize) vs test_sex_deodds (minimize)): trials 1, 0"),
        "{table}"
    );
    assert_eq!(report.missing_metric_note(), None);

    let mut wrong = p.clone();
    wrong.spec.metric.name = "test_acu".to_string();
    let note = SweepReport::build(&wrong, &statuses).missing_metric_note().unwrap();
    assert_eq!(
        note,
        "no finished trial logged `test_acu`; test metrics they logged: test_auc, test_sex_deodds"
    );
}
