//! A sweep directory: everything a sweep needs and leaves, so that any process on any node that
//! sees the directory can run a trial, report progress or resume the sweep.
//!
//! ```text
//! .fairlab/sweeps/<name>-<8 hex>/
//!   plan.json        the frozen plan (trials, ids, configs)
//!   journal.jsonl    append-only trial states (the source of truth for status and resume)
//!   parent.json      the sweep's parent run: tracking URI, experiment, run id
//!   driver.lock      held by the process driving the sweep
//!   logs/            each attempt's output (local: <index>-<id>.<attempt>.log; Slurm: slurm-<job>_<index>.out)
//!   slurm/           the batch scripts submitted
//!   results.json     the report (also results.csv)
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::journal::{Journal, TrialStatus};
use super::report::SweepReport;
use super::{SweepPlan, PLAN_FILE};

/// The parent run's file in a sweep directory.
pub const PARENT_FILE: &str = "parent.json";
/// The driver's lock file in a sweep directory.
pub const LOCK_FILE: &str = "driver.lock";

/// The sweep's parent run in the tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRun {
    /// The store (`file:///...` or `http://...`), absolute.
    pub tracking_uri: String,
    /// The MLflow experiment of the parent and of every trial.
    pub experiment_name: String,
    /// The parent run's id.
    pub run_id: String,
}

/// An open sweep directory: its path, plan and journal.
#[derive(Debug, Clone)]
pub struct SweepDir {
    path: PathBuf,
    /// The frozen plan.
    pub plan: SweepPlan,
    /// The trial states.
    pub journal: Journal,
}

/// Held while a process drives the sweep; released when dropped.
#[derive(Debug)]
pub struct DriverLock {
    _file: File,
}

impl SweepDir {
    /// Open an existing sweep directory (its `plan.json` is read and checked).
    pub fn open(path: &Path) -> anyhow::Result<SweepDir> {
        anyhow::ensure!(
            path.join(PLAN_FILE).is_file(),
            "{} is not a sweep directory (it has no {PLAN_FILE}); `fairlab run SWEEP.yaml` creates one",
            path.display()
        );
        let plan = SweepPlan::read(path)?;
        let path = absolute(path);
        Ok(SweepDir {
            journal: Journal::in_dir(&path),
            path,
            plan,
        })
    }

    /// Create the directory for `plan`, or reopen it when it already holds the same sweep (its
    /// `plan.json` is then replaced, which only changes execution settings: the trials are the
    /// same). A directory holding another sweep is an error.
    pub fn create(path: &Path, plan: SweepPlan) -> anyhow::Result<SweepDir> {
        if path.join(PLAN_FILE).is_file() {
            let existing = SweepPlan::read(path)?;
            anyhow::ensure!(
                existing.sweep_id == plan.sweep_id,
                "{} holds sweep {} ({} trials), not this one ({}, {} trials); choose another --dir",
                path.display(),
                existing.sweep_id,
                existing.trials.len(),
                plan.sweep_id,
                plan.trials.len()
            );
        }
        plan.write(path)?;
        let path = absolute(path);
        Ok(SweepDir {
            journal: Journal::in_dir(&path),
            path,
            plan,
        })
    }

    /// The directory (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the driver lock, or fail at once when another process drives this sweep.
    pub fn lock(&self) -> anyhow::Result<DriverLock> {
        let path = self.path.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DriverLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another fairlab process is running the sweep in {} (it holds {LOCK_FILE}); \
                 `fairlab sweep status {}` shows its progress",
                self.path.display(),
                self.path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
    }

    /// The parent run recorded by an earlier driver, if any.
    pub fn parent(&self) -> anyhow::Result<Option<ParentRun>> {
        let path = self.path.join(PARENT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Ok(Some(serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a parent-run record", path.display())
                })?))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Record the parent run (atomically).
    pub fn set_parent(&self, parent: &ParentRun) -> anyhow::Result<()> {
        let path = self.path.join(PARENT_FILE);
        crate::tensor_io::write_atomic(&path, (serde_json::to_string_pretty(parent)? + "\n").as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// The folder of attempt logs (created when missing).
    pub fn logs_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self.path.join("logs");
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// Where a local attempt's output goes: `logs/<index>-<id>.<attempt>.log`.
    pub fn attempt_log(&self, index: usize, attempt: u32) -> anyhow::Result<PathBuf> {
        let id = &self.plan.trials[index].id;
        Ok(self.logs_dir()?.join(format!("{index}-{id}.{attempt}.log")))
    }

    /// The latest state of every trial with a journal entry, by trial id.
    pub fn statuses(&self) -> anyhow::Result<std::collections::BTreeMap<String, TrialStatus>> {
        self.journal.statuses()
    }

    /// The report of the sweep as the journal stands.
    pub fn report(&self) -> anyhow::Result<SweepReport> {
        Ok(SweepReport::build(&self.plan, &self.statuses()?))
    }
}

/// `path` made absolute against the working directory (as given when that fails).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
