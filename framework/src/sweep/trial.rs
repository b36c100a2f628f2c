//! Running one trial of a sweep in this process (`fairlab sweep trial`): what an executor's child
//! process or a Slurm array task does. The trial is taken from the frozen plan, run as a child run of
//! the sweep's parent run, and its start and end are appended to the journal, with the final
//! metrics on a FINISHED entry.

use std::time::Instant;

use super::journal::{JournalEntry, TrialState};
use super::SweepDir;
use crate::config::Experiment;
use crate::interrupt::Interrupted;
use crate::registry::Registry;
use crate::runner::{self, RunOptions};

/// Tag naming the sweep a run belongs to.
pub const SWEEP_ID_TAG: &str = "fairlab.sweep_id";
/// Tag naming the trial a run is an attempt of.
pub const TRIAL_ID_TAG: &str = "fairlab.trial_id";
/// MLflow's tag for a child run's parent (the MLflow UI nests runs by it).
pub const PARENT_RUN_TAG: &str = "mlflow.parentRunId";

/// How an attempt ended.
#[derive(Debug)]
pub struct TrialResult {
    /// FINISHED, FAILED or KILLED.
    pub state: TrialState,
    /// The journal entry that recorded it.
    pub entry: JournalEntry,
}

/// Who runs this attempt: `slurm:<array job>_<task>` inside a Slurm array task, else `host:pid`.
pub fn worker_name() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(job), Some(task)) = (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        return format!("slurm:{job}_{task}");
    }
    format!("{}:{}", crate::runner::host_name(), std::process::id())
}

/// Run trial `index` of the sweep in `dir` in this process. The attempt number is one more than
/// the attempts the journal has seen. Errors before the attempt starts (a bad index, no parent run,
/// an unwritable journal) are returned; the trial's own failure is a FAILED (or, after Ctrl-C or
/// SIGTERM, KILLED) result.
pub fn run_trial(registry: &Registry, dir: &SweepDir, index: usize) -> anyhow::Result<TrialResult> {
    let trial = dir.plan.trials.get(index).ok_or_else(|| {
        anyhow::anyhow!(
            "the sweep in {} has {} trials (0..={}); there is no trial {index}",
            dir.path().display(),
            dir.plan.trials.len(),
            dir.plan.trials.len().saturating_sub(1)
        )
    })?;
    let parent = dir.parent()?.ok_or_else(|| {
        anyhow::anyhow!(
            "the sweep in {} has no parent run yet: start it with `fairlab run` or `fairlab sweep resume`",
            dir.path().display()
        )
    })?;
    let attempt = dir.statuses()?.get(&trial.id).map_or(0, |s| s.attempts) + 1;
    let worker = worker_name();
    let entry = |state| JournalEntry::new(&trial.id, index, state, attempt, &worker);
    dir.journal.append(&entry(TrialState::Running))?;

    let experiment = Experiment::from_config(dir.plan.experiment.clone(), trial.config.clone());
    let options = RunOptions {
        tracking_uri: Some(parent.tracking_uri.clone()),
        experiment_name: Some(parent.experiment_name.clone()),
        tags: vec![
            (PARENT_RUN_TAG.to_string(), parent.run_id.clone()),
            (SWEEP_ID_TAG.to_string(), dir.plan.sweep_id.clone()),
            (TRIAL_ID_TAG.to_string(), trial.id.clone()),
            ("fairlab.trial_index".to_string(), index.to_string()),
            ("fairlab.attempt".to_string(), attempt.to_string()),
        ],
        resume: None,
    };
    let started = Instant::now();
    let outcome = runner::run(registry, &experiment, &options);
    let duration_ms = Some(started.elapsed().as_millis() as u64);
    let done = match outcome {
        Ok(outcome) => {
            let mut done = entry(TrialState::Finished);
            done.run_id = Some(outcome.run_id);
            done.metrics = outcome
                .val
                .flatten("val")
                .into_iter()
                .chain(outcome.test.flatten("test"))
                .filter(|(_, v)| v.is_finite())
                .collect();
            done
        }
        Err(failure) => {
            let state = if failure.error.is::<Interrupted>() {
                TrialState::Killed
            } else {
                TrialState::Failed
            };
            let mut done = entry(state).with_reason(format!("{:#}", failure.error));
            done.run_id = failure.run_id;
            done
        }
    };
    let done = JournalEntry { duration_ms, ..done };
    dir.journal.append(&done)?;
    Ok(TrialResult {
        state: done.state,
        entry: done,
    })
}
