//! Sweeps from the command line:
//!
//! - `fairlab run SWEEP.yaml [--set K=V]... [--dry-run] [--jobs N] [--executor local|slurm] [--dir D]`:
//!   plan the sweep (`--dry-run` prints the frozen plan), then run every trial that is not finished
//!   and print the report. Running it again resumes.
//! - `fairlab sweep status|resume|report SWEEP`: SWEEP is a sweep directory or the sweep's file.
//! - `fairlab sweep trial --dir D [--index I]`: one trial in this process (what executors start;
//!   a Slurm array task takes its index from `SLURM_ARRAY_TASK_ID`).
//!
//! Exit codes: 0 every trial finished, 1 some did not (or the sweep failed), 2 bad usage or
//! configuration, 130 interrupted.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use fairlab_framework::config::inline_yaml;
use fairlab_framework::interrupt::{self, Interrupted};
use fairlab_framework::runner;
use fairlab_framework::sweep::{
    self, clip, Duration, ExecutorKind, JournalEntry, Method, SweepDir, SweepPlan, TrialCommand, TrialState,
};
use fairlab_framework::text_table::{self, Align};
use fairlab_framework::Registry;

use super::run::RunArgs;

/// Widest table cell, in characters.
const CELL: usize = 40;

/// `fairlab sweep ...`.
#[derive(Subcommand)]
pub enum SweepCommand {
    /// Show every trial of a sweep with its state, the best trial and the Pareto front.
    Status(TargetArgs),
    /// Run the trials of a sweep that are missing, failed or killed (never a finished one).
    Resume(ResumeArgs),
    /// Write the sweep's report (results.json and results.csv in its directory) and print it.
    Report(TargetArgs),
    /// Run one trial of a sweep in this process (what the executors start).
    #[command(hide = true)]
    Trial(TrialArgs),
}

/// Which sweep.
#[derive(Args)]
pub struct TargetArgs {
    /// A sweep directory, or the sweep's YAML file (its default directory is used).
    pub sweep: PathBuf,
    /// With a YAML file: the `--set` flags it was run with (they change the trials, hence the id).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Arguments of `fairlab sweep resume`.
#[derive(Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    execution: ExecutionArgs,
}

/// Execution settings that override the file's `sweep.execution` for this run.
#[derive(Args, Default, Clone)]
pub struct ExecutionArgs {
    /// Trials at once (local child processes, or the Slurm array's throttle).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Where trials run.
    #[arg(long, value_name = "local|slurm", value_parser = parse_executor)]
    pub executor: Option<ExecutorKind>,
    /// Longest one attempt may run (90s, 30m, 2h, 1h30m).
    #[arg(long, value_name = "DURATION", value_parser = Duration::parse)]
    pub timeout: Option<Duration>,
    /// Further attempts for a failed trial.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
}

impl ExecutionArgs {
    /// Whether any flag was given.
    pub fn any(&self) -> bool {
        self.jobs.is_some() || self.executor.is_some() || self.timeout.is_some() || self.retries.is_some()
    }

    fn apply(&self, plan: &mut SweepPlan) -> Result<(), fairlab_framework::ConfigError> {
        let e = &mut plan.spec.execution;
        if let Some(jobs) = self.jobs {
            e.jobs = jobs;
        }
        if let Some(executor) = self.executor {
            e.executor = executor;
        }
        if let Some(timeout) = self.timeout {
            e.timeout = Some(timeout);
        }
        if let Some(retries) = self.retries {
            e.retries = retries;
        }
        e.validate()
    }
}

fn parse_executor(text: &str) -> Result<ExecutorKind, String> {
    match text {
        "local" => Ok(ExecutorKind::Local),
        "slurm" => Ok(ExecutorKind::Slurm),
        other => Err(format!("`{other}` is not an executor: local or slurm")),
    }
}

/// Arguments of `fairlab sweep trial`.
#[derive(Args)]
pub struct TrialArgs {
    /// The sweep directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The trial's plan index (default: `$SLURM_ARRAY_TASK_ID`).
    #[arg(long)]
    pub index: Option<usize>,
}

/// `fairlab run SWEEP.yaml`: plan the sweep (validating every trial's plugin settings), then print
/// it (`--dry-run`) or run it.
pub fn run(args: &RunArgs, registry: &Registry) -> ExitCode {
    let mut plan = match plan(&args.experiment, &args.overrides, registry) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if let Err(e) = args.execution.apply(&mut plan) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let dir = args.dir.clone().unwrap_or_else(|| plan.default_dir());
    if args.dry_run {
        print!("{}", describe(&plan, &dir));
        eprintln!(
            "{}: valid; {} trial(s) planned, nothing was run (--dry-run)",
            args.experiment.display(),
            plan.trials.len()
        );
        return ExitCode::SUCCESS;
    }
    match SweepDir::create(&dir, plan) {
        Ok(dir) => execute(&dir),
        Err(e) => {
            eprintln!("error: {e:#}");
            super::exit_code(&e)
        }
    }
}

/// `fairlab sweep ...`.
pub fn command(command: &SweepCommand, registry: &Registry) -> ExitCode {
    let result = match command {
        SweepCommand::Status(target) => open(target, registry).and_then(|dir| {
            let report = dir.report()?;
            println!(
                "sweep {} ({}) in {}",
                dir.plan.name,
                dir.plan.sweep_id,
                dir.path().display()
            );
            print!("{}", report.to_table());
            Ok(ExitCode::SUCCESS)
        }),
        SweepCommand::Report(target) => open(target, registry).and_then(|dir| {
            let report = dir.report()?;
            report.write(dir.path())?;
            print!("{}", report.to_table());
            println!(
                "written: {} and {}",
                dir.path().join(sweep::RESULTS_JSON).display(),
                dir.path().join(sweep::RESULTS_CSV).display()
            );
            Ok(ExitCode::SUCCESS)
        }),
        SweepCommand::Resume(args) => open(&args.target, registry).and_then(|mut dir| {
            args.execution.apply(&mut dir.plan)?;
            if args.execution.any() {
                let path = dir.path().to_path_buf();
                dir = SweepDir::create(&path, dir.plan)?;
            }
            Ok(execute(&dir))
        }),
        SweepCommand::Trial(args) => trial(args, registry),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        super::exit_code(&e)
    })
}

/// The plan of a sweep file, or the exit code after printing why there is none.
fn plan(path: &Path, overrides: &[String], registry: &Registry) -> Result<SweepPlan, ExitCode> {
    SweepPlan::from_experiment_file(path, overrides, |e| runner::validate(registry, e)).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The sweep a [`TargetArgs`] names: a directory as it is, a YAML file through its plan.
fn open(target: &TargetArgs, registry: &Registry) -> anyhow::Result<SweepDir> {
    if target.sweep.is_file() {
        let plan =
            SweepPlan::from_experiment_file(&target.sweep, &target.overrides, |e| runner::validate(registry, e))?;
        let dir = plan.default_dir();
        anyhow::ensure!(
            dir.join(sweep::PLAN_FILE).is_file(),
            fairlab_framework::ConfigError::new(format!(
                "{} has not been run yet (no {}); `fairlab run {}` starts it",
                target.sweep.display(),
                dir.display(),
                target.sweep.display()
            ))
        );
        return SweepDir::open(&dir);
    }
    anyhow::ensure!(
        target.overrides.is_empty(),
        fairlab_framework::ConfigError::new("--set only applies when the sweep is given as its YAML file")
    );
    SweepDir::open(&target.sweep)
}

/// Run what is not finished, printing each attempt's end, then the report.
fn execute(dir: &SweepDir) -> ExitCode {
    if let Err(e) = interrupt::install() {
        tracing::warn!("Ctrl-C will not stop the sweep cleanly: {e:#}");
    }
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find the fairlab binary to start trials with: {e}");
            return ExitCode::from(1);
        }
    };
    let command = TrialCommand {
        program,
        args: vec![
            "sweep".to_string(),
            "trial".to_string(),
            "--dir".to_string(),
            dir.path().display().to_string(),
        ],
    };
    let execution = &dir.plan.spec.execution;
    let mut executor = sweep::executor::executor(execution, command);
    let todo = match sweep::trials_to_run(dir) {
        Ok(todo) => todo,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(1);
        }
    };
    let total = dir.plan.trials.len();
    eprintln!(
        "sweep {} ({}): {} of {total} trial(s) to run, {} at a time ({}), in {}",
        dir.plan.name,
        dir.plan.sweep_id,
        todo.len(),
        execution.jobs,
        executor.name(),
        dir.path().display()
    );
    let metric = dir.plan.spec.metric.name.clone();
    let started = std::time::Instant::now();
    let mut on_end = |e: &JournalEntry| eprintln!("{}", progress_line(e, started.elapsed(), &metric));
    let options = sweep::DriveOptions {
        tracking_uri: super::tracking_uri(),
        experiment_name: std::env::var("MLFLOW_EXPERIMENT_NAME").ok().filter(|n| !n.is_empty()),
    };
    let outcome = match sweep::drive(dir, executor.as_mut(), &options, &mut on_end) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("error: {e:#}");
            return super::exit_code(&e);
        }
    };
    println!();
    print!("{}", outcome.report.to_table());
    println!(
        "results: {} and {}",
        dir.path().join(sweep::RESULTS_JSON).display(),
        dir.path().join(sweep::RESULTS_CSV).display()
    );
    println!(
        "parent run {} in {} (experiment '{}')",
        outcome.parent.run_id, outcome.parent.tracking_uri, outcome.parent.experiment_name
    );
    let unfinished = total - outcome.report.count(TrialState::Finished);
    match outcome.error {
        Some(e) if e.is::<Interrupted>() => {
            eprintln!(
                "sweep interrupted; `fairlab sweep resume {}` goes on",
                dir.path().display()
            );
            ExitCode::from(130)
        }
        Some(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        None if unfinished > 0 => {
            eprintln!(
                "{unfinished} of {total} trial(s) did not finish; `fairlab sweep resume {}` runs them again",
                dir.path().display()
            );
            ExitCode::from(1)
        }
        None => ExitCode::SUCCESS,
    }
}

/// `[   12.3s] trial 2 (1a2b...) FINISHED in 4.1s, test_auc 0.7123` or `... FAILED: reason`, the
/// time in brackets counted from the start of the sweep.
fn progress_line(e: &JournalEntry, since_start: std::time::Duration, metric: &str) -> String {
    let mut line = format!(
        "[{:>7.1}s] trial {} ({}) {}",
        since_start.as_secs_f64(),
        e.index,
        e.trial,
        e.state
    );
    if e.attempt > 1 {
        line.push_str(&format!(" (attempt {})", e.attempt));
    }
    if let Some(ms) = e.duration_ms {
        line.push_str(&format!(" in {:.1}s", ms as f64 / 1000.0));
    }
    if let Some(v) = e.metrics.get(metric) {
        line.push_str(&format!(", {metric} {v:.4}"));
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!(": {}", clip(reason.lines().next().unwrap_or_default(), 200)));
    }
    line
}

/// `fairlab sweep trial`: exit 0 when the trial finished, 1 when it failed, 130 when it was killed.
fn trial(args: &TrialArgs, registry: &Registry) -> anyhow::Result<ExitCode> {
    if let Err(e) = interrupt::install() {
        tracing::warn!("SIGTERM will not stop the trial cleanly: {e:#}");
    }
    let index = match args.index {
        Some(i) => i,
        None => std::env::var("SLURM_ARRAY_TASK_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| fairlab_framework::ConfigError::new("give --index (no SLURM_ARRAY_TASK_ID is set)"))?,
    };
    let dir = SweepDir::open(&args.dir)?;
    let result = sweep::run_trial(registry, &dir, index)?;
    let e = &result.entry;
    eprintln!(
        "trial {index} ({}) {}{}",
        e.trial,
        e.state,
        e.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
    );
    Ok(match result.state {
        TrialState::Finished => ExitCode::SUCCESS,
        TrialState::Killed => ExitCode::from(130),
        _ => ExitCode::from(1),
    })
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
    let header = rows.remove(0);
    out.push_str(&text_table::render(&header, &rows, Align::Left));
    out
}
