//! `fairlab run SWEEP.yaml [--set KEY=VALUE]... [--dry-run]`: an experiment file with a `sweep:`
//! section is planned into trials (see `fairlab_framework::sweep`); `--dry-run` prints the frozen
//! plan. Executing the trials is not implemented yet: without `--dry-run` the plan is saved to the
//! sweep directory and the command exits with code 2.

use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

use fairlab_framework::config::inline_yaml;
use fairlab_framework::runner;
use fairlab_framework::sweep::{clip, Method, SweepPlan};
use fairlab_framework::Registry;

use super::run::RunArgs;

/// Widest table cell, in characters.
const CELL: usize = 40;

/// Plan the sweep (validating every trial's plugin settings), then print it (`--dry-run`) or save it.
pub fn run(args: &RunArgs, registry: &Registry) -> ExitCode {
    let plan =
        match SweepPlan::from_experiment_file(&args.experiment, &args.overrides, |e| runner::validate(registry, e)) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
    let dir = plan.default_dir();
    if args.dry_run {
        print!("{}", describe(&plan, &dir));
        eprintln!(
            "{}: valid; {} trial(s) planned, nothing was run (--dry-run)",
            args.experiment.display(),
            plan.trials.len()
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = plan.write(&dir) {
        eprintln!("error: {e:#}");
        return super::exit_code(&e);
    }
    eprintln!(
        "error: sweep execution is not implemented yet; the plan is in {}",
        dir.display()
    );
    ExitCode::from(2)
}

/// The plan for people: its identity and settings, the resolved ranges, notes, and one row per trial
/// with the values that vary between trials.
fn describe(plan: &SweepPlan, dir: &Path) -> String {
    let spec = &plan.spec;
    let mut out = String::new();
    let mut line = |label: &str, value: &dyn std::fmt::Display| {
        writeln!(out, "{label:<10} {value}").expect("writing to a String");
    };
    line("sweep:", &format!("{} (id {})", plan.name, plan.sweep_id));
    line("file:", &plan.experiment.display());
    line("directory:", &dir.display());
    match spec.method {
        Method::Grid => line("method:", &"grid"),
        Method::Random => line("method:", &format!("random (seed {})", spec.seed)),
    }
    line("metric:", &spec.metric);
    if let Some(pareto) = &spec.pareto {
        line("pareto:", pareto);
    }
    if !plan.cli_overrides.is_empty() {
        line("--set:", &plan.cli_overrides.join(" "));
    }
    line("trials:", &plan.trials.len());
    writeln!(out, "axes:").unwrap();
    for p in &spec.parameters {
        writeln!(out, "  {} ~ {}", p.path, clip(&p.distribution.to_string(), 100)).unwrap();
    }
    for group in &spec.zip {
        writeln!(out, "  zip {} ({} points)", group.paths.join(", "), group.points.len()).unwrap();
    }
    for note in &plan.notes {
        writeln!(out, "note: {note}").unwrap();
    }
    out.push('\n');

    let cells: Vec<Vec<String>> = plan
        .trials
        .iter()
        .map(|t| t.overrides.iter().map(|(_, v)| clip(&inline_yaml(v), CELL)).collect())
        .collect();
    let paths: Vec<&str> = spec.paths().collect();
    let varies = |k: usize| cells.iter().any(|row| row[k] != cells[0][k]);
    let mut shown: Vec<usize> = (0..paths.len()).filter(|&k| varies(k)).collect();
    if shown.is_empty() {
        shown = (0..paths.len()).collect();
    }
    let mut rows = vec![["#", "id"]
        .iter()
        .map(|s| s.to_string())
        .chain(shown.iter().map(|&k| paths[k].to_string()))
        .collect::<Vec<_>>()];
    rows.extend(plan.trials.iter().zip(&cells).map(|(t, row)| {
        [t.index.to_string(), t.id.clone()]
            .into_iter()
            .chain(shown.iter().map(|&k| row[k].clone()))
            .collect()
    }));
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let padded: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        writeln!(out, "{}", padded.join("  ").trim_end()).unwrap();
    }
    out
}
