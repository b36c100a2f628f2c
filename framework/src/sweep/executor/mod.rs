//! Executors: how a sweep's trials get run. Each attempt of a trial is one `fairlab sweep trial`
//! process (a [`TrialCommand`]) that journals its own start and end; the executor decides where and
//! how many at once, enforces the timeout, retries failed trials, stops everything cleanly on
//! Ctrl-C, and journals the attempts that ended without recording a result (a crash, a timeout, a
//! lost node).
//!
//! - [`LocalExecutor`]: child processes on this machine, `jobs` at a time.
//! - [`SlurmExecutor`]: one `sbatch --array` per wave of trials, polled through `squeue` and
//!   `scontrol`.

mod local;
mod slurm;

use std::path::PathBuf;

pub use local::LocalExecutor;
pub use slurm::{SlurmCommands, SlurmExecutor};

use super::journal::{JournalEntry, TrialState};
use super::{Execution, ExecutorKind, SweepDir};

/// The command that runs one attempt of one trial: `program args... --index I` (a Slurm array task
/// takes its index from `SLURM_ARRAY_TASK_ID` instead). It inherits the environment; the trial
/// finds the tracking store in the sweep directory's parent-run record.
#[derive(Debug, Clone)]
pub struct TrialCommand {
    /// The fairlab binary.
    pub program: PathBuf,
    /// Its arguments up to the index, e.g. `sweep trial --dir DIR`.
    pub args: Vec<String>,
}

/// Runs a set of a sweep's trials to their end.
pub trait Executor {
    /// `local` or `slurm`.
    fn name(&self) -> &'static str;

    /// Run the trials at plan `indices` of the sweep, retrying failed attempts as the execution
    /// settings allow, and return when each has ended. `on_end` sees every attempt's final journal
    /// entry as it is observed. After Ctrl-C (or SIGTERM) the trials still running are stopped and
    /// recorded KILLED, and the error is [`crate::interrupt::Interrupted`].
    fn execute(
        &mut self,
        dir: &SweepDir,
        indices: &[usize],
        on_end: &mut dyn FnMut(&JournalEntry),
    ) -> anyhow::Result<()>;
}

/// The executor the settings name.
pub fn executor(execution: &Execution, command: TrialCommand) -> Box<dyn Executor> {
    match execution.executor {
        ExecutorKind::Local => Box::new(LocalExecutor::new(command, execution)),
        ExecutorKind::Slurm => Box::new(SlurmExecutor::new(command, execution, SlurmCommands::default())),
    }
}

/// Whether a trial whose latest attempt ended with `last`, after `tries` attempts in this execution,
/// gets another: it failed (a killed trial was stopped on purpose) and `retries` allows more. Every
/// execution (a resume, say) starts counting afresh.
pub fn retry_allowed(last: &JournalEntry, tries: u32, retries: u32) -> bool {
    last.state == TrialState::Failed && tries <= retries
}

/// The final entry of `attempt` of trial `index`, appending one with `state` and `reason` when the
/// attempt's process ended without recording it (a crash, a kill, a lost node). `overrule` forces the
/// appended entry even over one the process wrote (a timeout is a failure even though the process,
/// stopped by SIGTERM, recorded KILLED).
fn settle_attempt(
    dir: &SweepDir,
    index: usize,
    attempt: u32,
    worker: &str,
    lost: (TrialState, String),
    overrule: bool,
) -> anyhow::Result<JournalEntry> {
    let trial = &dir.plan.trials[index];
    let recorded = dir
        .statuses()?
        .remove(&trial.id)
        .map(|s| s.last)
        .filter(|last| last.attempt == attempt && last.state.is_terminal());
    match recorded {
        Some(last) if !overrule => Ok(last),
        recorded => {
            let (state, reason) = lost;
            let mut entry = JournalEntry::new(&trial.id, index, state, attempt, worker).with_reason(reason);
            if let Some(r) = recorded {
                entry.run_id = r.run_id;
                entry.duration_ms = r.duration_ms;
            }
            dir.journal.append(&entry)?;
            Ok(entry)
        }
    }
}

#[cfg(all(test, unix))]
mod tests;
