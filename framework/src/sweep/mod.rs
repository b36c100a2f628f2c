//! Sweeps: an experiment file with a `sweep:` section (W&B's shape, plus Hydra-style `zip:` groups)
//! expands into a frozen [`SweepPlan`] of trials with deterministic ids.
//!
//! ```yaml
//! sweep:
//!   method: grid                                    # grid | random
//!   metric: {name: test_auc, goal: maximize}       # required; goal defaults to minimize
//!   pareto: {name: test_sex_deodds, goal: minimize} # optional second objective
//!   run_cap: 20      # random: the number of trials (required); grid: keep the first N
//!   seed: 0          # seed of the random draws
//!   parameters:      # dotted paths the experiment already sets
//!     seed: {values: [0, 1, 2, 3, 4]}
//!     debiaser.optimizer.lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
//!   zip:             # each group is one axis: its i-th point sets every path to its i-th value
//!     - debiaser.kind: [erm, dne]
//!       debiaser.epochs: [30, 5]
//! ```
//!
//! - [`spec`](SweepSpec): the typed, validated section; every error names its `sweep.` key and
//!   is located in the file.
//! - [`Distribution`]: W&B's distributions (inferred when `distribution:` is absent), grid
//!   enumeration and seeded sampling.
//! - [`SweepPlan`]: the trials (each the experiment without `sweep:` plus its values, plus the
//!   command-line `--set`s), their ids, the sweep id and directory, and `plan.json`.
//! - [`Execution`]: `sweep.execution`, how trials are run (executor, jobs, timeout, retries, Slurm).
//! - [`SweepDir`]: the sweep directory, with the [`Journal`] of trial states and the parent run.
//! - [`run_trial`]: one trial in this process, as a child run of the parent (`fairlab sweep trial`).
//! - [`executor`]: the [`Executor`]s that run trials, locally or as Slurm job arrays.
//! - [`drive`]: run what is not finished, then the [`SweepReport`] (best trial, Pareto front).

mod canonical;
mod directory;
mod distribution;
mod driver;
mod execution;
pub mod executor;
mod journal;
mod plan;
mod points;
mod report;
mod spec;
mod trial;

use std::path::Path;

pub use directory::{DriverLock, ParentRun, SweepDir, LOCK_FILE, PARENT_FILE};
pub use distribution::{Distribution, MAX_GRID_VALUES};
pub use driver::{drive, trials_to_run, DriveOptions, DriveOutcome};
pub use execution::{Duration, Execution, ExecutorKind, SlurmSettings};
pub use executor::{Executor, TrialCommand};
pub use journal::{Journal, JournalEntry, TrialState, TrialStatus, JOURNAL_FILE};
pub use plan::{SweepPlan, Trial, PLAN_FILE, SWEEPS_DIR};
pub use report::{pareto_front, SweepReport, TrialRow, RESULTS_CSV, RESULTS_JSON};
pub use spec::{Goal, Method, Objective, Parameter, SweepSpec, ZipGroup, MAX_TRIALS};
pub use trial::{run_trial, worker_name, TrialResult, PARENT_RUN_TAG, SWEEP_ID_TAG, TRIAL_ID_TAG};

/// Whether `path` holds a YAML mapping with a top-level `sweep:` key. Unreadable or invalid files
/// are not sweeps: the experiment loader reports what is wrong with them.
pub fn declares_sweep(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_norway::from_str::<serde_norway::Value>(&text).ok())
        .is_some_and(|doc| doc.get("sweep").is_some())
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests;
