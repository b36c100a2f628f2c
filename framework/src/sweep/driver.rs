//! Driving a sweep: take the directory's lock, open (or reopen) the parent run, hand the trials that
//! are not finished to an executor, then write the report and end the parent run. Running it again
//! (`fairlab sweep resume`, or the same `fairlab run SWEEP.yaml`) runs exactly the trials that are
//! missing, failed or killed, never a finished one.

use std::sync::Arc;

use super::executor::Executor;
use super::journal::{JournalEntry, TrialState};
use super::report::{SweepReport, RESULTS_CSV, RESULTS_JSON};
use super::trial::SWEEP_ID_TAG;
use super::{ParentRun, SweepDir, PLAN_FILE};
use crate::interrupt::Interrupted;
use crate::tracking::{self, ActiveRun, Tracker};

/// Where the sweep's runs go.
#[derive(Debug, Clone, Default)]
pub struct DriveOptions {
    /// Tracking URI (`MLFLOW_TRACKING_URI`); `None` = `./mlruns`.
    pub tracking_uri: Option<String>,
    /// Experiment name (`MLFLOW_EXPERIMENT_NAME`), overriding the sweep file's `tracking.experiment`.
    pub experiment_name: Option<String>,
}

/// What a drive did.
#[derive(Debug)]
pub struct DriveOutcome {
    /// The report after it.
    pub report: SweepReport,
    /// The parent run.
    pub parent: ParentRun,
    /// How many trials were handed to the executor.
    pub started: usize,
    /// Set when the drive stopped early (Ctrl-C, an executor error): the cause.
    pub error: Option<anyhow::Error>,
}

/// The plan indices of the trials a drive runs: every trial whose latest state is not FINISHED.
/// QUEUED and RUNNING ones are included: the caller holds the driver lock, so no other driver runs
/// them; an executor waits for the ones its scheduler still runs rather than starting them twice.
pub fn trials_to_run(dir: &SweepDir) -> anyhow::Result<Vec<usize>> {
    let statuses = dir.statuses()?;
    Ok(dir
        .plan
        .trials
        .iter()
        .filter(|t| statuses.get(&t.id).is_none_or(|s| s.last.state != TrialState::Finished))
        .map(|t| t.index)
        .collect())
}

/// Run the sweep in `dir` with `executor`. `on_end` sees every attempt's final journal entry.
/// Errors before any trial starts (the lock, the tracker) are returned; later ones end the parent
/// run (KILLED after Ctrl-C, FAILED otherwise) and come back in [`DriveOutcome::error`] with the
/// report as far as it got.
pub fn drive(
    dir: &SweepDir,
    executor: &mut dyn Executor,
    options: &DriveOptions,
    on_end: &mut dyn FnMut(&JournalEntry),
) -> anyhow::Result<DriveOutcome> {
    let _lock = dir.lock()?;
    let tracker = tracking::open(options.tracking_uri.as_deref())?;
    let (run, parent) = parent_run(dir, tracker, options)?;
    let todo = trials_to_run(dir)?;
    let error = executor.execute(dir, &todo, on_end).err();
    let report = dir.report()?;
    report.write(dir.path())?;
    end_parent(dir, run, &report, error.as_ref())?;
    Ok(DriveOutcome {
        report,
        parent,
        started: todo.len(),
        error,
    })
}

/// The sweep's parent run: the one recorded in the directory when it lives in the same store
/// (reopened), else a new one (recorded).
fn parent_run(
    dir: &SweepDir,
    tracker: Arc<dyn Tracker>,
    options: &DriveOptions,
) -> anyhow::Result<(ActiveRun, ParentRun)> {
    let plan = &dir.plan;
    let experiment_name = options.experiment_name.clone().unwrap_or_else(|| {
        plan.trials
            .first()
            .map_or_else(|| "fairlab".to_string(), |t| t.config.tracking.experiment.clone())
    });
    if let Some(parent) = dir.parent()? {
        if parent.tracking_uri == tracker.uri() && parent.experiment_name == experiment_name {
            let run = ActiveRun::resume(tracker, &parent.run_id)?;
            return Ok((run, parent));
        }
        tracing::warn!(
            "the sweep's parent run {} is in {} (experiment `{}`); starting a new parent run in {} (experiment `{experiment_name}`)",
            parent.run_id,
            parent.tracking_uri,
            parent.experiment_name,
            tracker.uri()
        );
    }
    let tags = vec![
        (SWEEP_ID_TAG.to_string(), plan.sweep_id.clone()),
        ("fairlab.sweep_dir".to_string(), dir.path().display().to_string()),
        (
            "fairlab.experiment_file".to_string(),
            plan.experiment.display().to_string(),
        ),
        ("fairlab.version".to_string(), crate::VERSION.to_string()),
    ];
    let run = ActiveRun::start(tracker.clone(), &experiment_name, &plan.name, tags)?;
    let spec = &plan.spec;
    let mut params = vec![
        ("sweep.method".to_string(), spec.method.to_string()),
        ("sweep.metric".to_string(), spec.metric.to_string()),
        ("sweep.trials".to_string(), plan.trials.len().to_string()),
        ("sweep.seed".to_string(), spec.seed.to_string()),
    ];
    if let Some(p) = &spec.pareto {
        params.push(("sweep.pareto".to_string(), p.to_string()));
    }
    params.extend(
        spec.parameters
            .iter()
            .map(|p| (format!("sweep.parameters.{}", p.path), p.distribution.to_string())),
    );
    run.log_params(&tracking::loggable_params(params))?;
    run.log_artifact(PLAN_FILE, plan.redacted_json()?.as_bytes())?;
    let parent = ParentRun {
        tracking_uri: tracker.uri(),
        experiment_name,
        run_id: run.id().to_string(),
    };
    dir.set_parent(&parent)?;
    Ok((run, parent))
}

/// Log the report to the parent run and end it: FINISHED when every trial finished, KILLED after
/// Ctrl-C, FAILED otherwise, with the reason.
fn end_parent(
    dir: &SweepDir,
    run: ActiveRun,
    report: &SweepReport,
    error: Option<&anyhow::Error>,
) -> anyhow::Result<()> {
    let mut metrics: Vec<(String, f64)> = [
        TrialState::Finished,
        TrialState::Failed,
        TrialState::Killed,
        TrialState::Pending,
    ]
    .into_iter()
    .map(|s| {
        (
            format!("sweep_trials_{}", s.as_str().to_lowercase()),
            report.count(s) as f64,
        )
    })
    .collect();
    if let Some(best) = report.best.and_then(|i| report.trials[i].metric) {
        metrics.push((format!("best_{}", report.metric.name), best));
    }
    let borrowed: Vec<(&str, f64)> = metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    run.log_metrics(0, &borrowed)?;
    if let Some(best) = report.best {
        run.set_tags(&[("fairlab.best_trial".to_string(), report.trials[best].id.clone())])?;
    }
    for file in [RESULTS_JSON, RESULTS_CSV] {
        run.log_artifact(file, &std::fs::read(dir.path().join(file))?)?;
    }
    let unfinished = report.trials.len() - report.count(TrialState::Finished);
    match error {
        Some(e) if e.is::<Interrupted>() => run.kill(&format!("{e}; {}", report.counts_line())),
        Some(e) => run.fail(&format!("{e:#}")),
        None if unfinished == 0 => run.finish(),
        None => {
            let failed: Vec<String> = report
                .trials
                .iter()
                .filter(|t| t.state != TrialState::Finished)
                .map(|t| t.index.to_string())
                .collect();
            run.fail(&format!(
                "{unfinished} of {} trials did not finish (trials {}); `fairlab sweep resume {}` runs them again",
                report.trials.len(),
                failed.join(", "),
                dir.path().display()
            ))
        }
    }
}
