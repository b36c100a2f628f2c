//! The sweep journal: an append-only JSON-lines file (`journal.jsonl` in the sweep directory) of
//! trial state changes, the sweep's source of truth for `status` and `resume`. Several processes
//! (local workers, Slurm array tasks on other nodes) append to it; each entry is one line written
//! with a single `write` under an exclusive file lock, so lines never interleave. A line torn by a
//! writer killed mid-write is closed by the next append and skipped, with a warning, when reading.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The journal's file name in a sweep directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Where a trial stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrialState {
    /// Not started (no entry yet).
    Pending,
    /// Submitted to an executor (e.g. a Slurm array task waiting in the queue).
    Queued,
    /// A process is running it.
    Running,
    /// It ran to the end.
    Finished,
    /// It failed (an error, a non-zero exit, a timeout, a lost node).
    Failed,
    /// It was stopped (Ctrl-C, `scancel`).
    Killed,
}

impl TrialState {
    /// Whether the state ends an attempt (FINISHED, FAILED or KILLED).
    pub fn is_terminal(self) -> bool {
        matches!(self, TrialState::Finished | TrialState::Failed | TrialState::Killed)
    }

    /// The state as written in the journal and shown to people (`FINISHED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Pending => "PENDING",
            TrialState::Queued => "QUEUED",
            TrialState::Running => "RUNNING",
            TrialState::Finished => "FINISHED",
            TrialState::Failed => "FAILED",
            TrialState::Killed => "KILLED",
        }
    }
}

impl std::fmt::Display for TrialState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The trial id.
    pub trial: String,
    /// The trial's index in the plan.
    pub index: usize,
    /// The new state.
    pub state: TrialState,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// Who runs the attempt: `host:pid` of the trial process, or `slurm:JOBID_TASK` for an array
    /// task.
    pub worker: String,
    /// The tracking run of this attempt, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Why it failed or was killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the trial's own work took (the run, without process start), on terminal entries
    /// written by the trial process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Final metrics of a FINISHED trial (flat keys such as `test_auc`, `test_sex_deodds`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

impl JournalEntry {
    /// An entry stamped now, with no run, reason, duration or metrics.
    pub fn new(trial: &str, index: usize, state: TrialState, attempt: u32, worker: &str) -> Self {
        Self {
            time_ms: crate::tracking::now_ms(),
            trial: trial.to_string(),
            index,
            state,
            attempt,
            worker: worker.to_string(),
            run_id: None,
            reason: None,
            duration_ms: None,
            metrics: BTreeMap::new(),
        }
    }

    /// The same entry with a reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// The latest state of one trial, folded from its entries.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialStatus {
    /// The latest entry.
    pub last: JournalEntry,
    /// Attempts made: the highest attempt number of a RUNNING or final entry (QUEUED ones do not
    /// count: the attempt has not started).
    pub attempts: u32,
}

/// A sweep's journal file.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal of the sweep directory `dir` (the file is created by the first append).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(JOURNAL_FILE),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one entry: one line, one `write`, under an exclusive lock, flushed to disk. When
    /// the file does not end with a newline (a writer died mid-line), the torn line is closed
    /// first, so that it cannot swallow this entry.
    pub fn append(&self, entry: &JournalEntry) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)
            .with_context(|| format!("cannot open the sweep journal {}", self.path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock the sweep journal {}", self.path.display()))?;
        let written = ends_mid_line(&mut file)
            .and_then(|torn| {
                if torn {
                    line.insert(0, b'\n');
                }
                file.write_all(&line)
            })
            .and_then(|()| file.sync_data());
        file.unlock()?;
        written.with_context(|| format!("cannot append to the sweep journal {}", self.path.display()))
    }

    /// Every entry in file order. A line that is not an entry (torn by a writer that died
    /// mid-write) is skipped with a warning.
    pub fn entries(&self) -> anyhow::Result<Vec<JournalEntry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", self.path.display())),
        };
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(entry) => entries.push(entry),
                Err(e) => tracing::warn!("{}: line {}: skipping a torn entry: {e}", self.path.display(), i + 1),
            }
        }
        Ok(entries)
    }

    /// The latest state of every trial that has an entry, by trial id.
    pub fn statuses(&self) -> anyhow::Result<BTreeMap<String, TrialStatus>> {
        Ok(fold(self.entries()?))
    }
}

/// The latest state of every trial in `entries` (file order), by trial id.
pub fn fold(entries: Vec<JournalEntry>) -> BTreeMap<String, TrialStatus> {
    let mut out: BTreeMap<String, TrialStatus> = BTreeMap::new();
    for entry in entries {
        let made = match entry.state {
            TrialState::Pending | TrialState::Queued => 0,
            _ => entry.attempt,
        };
        match out.get_mut(&entry.trial) {
            Some(status) => {
                status.attempts = status.attempts.max(made);
                status.last = entry;
            }
            None => {
                out.insert(
                    entry.trial.clone(),
                    TrialStatus {
                        attempts: made,
                        last: entry,
                    },
                );
            }
        }
    }
    out
}

/// Whether the file's last byte is not a newline.
fn ends_mid_line(file: &mut File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(trial: &str, state: TrialState, attempt: u32) -> JournalEntry {
        JournalEntry::new(trial, 0, state, attempt, "test:1")
    }

    #[test]
    fn the_last_entry_of_a_trial_wins_and_attempts_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_dir(dir.path());
        assert!(journal.statuses().unwrap().is_empty());
        journal.append(&entry("a", TrialState::Running, 1)).unwrap();
        journal.append(&entry("b", TrialState::Running, 1)).unwrap();
        journal.append(&entry("a", TrialState::Failed, 1)).unwrap();
        journal.append(&entry("a", TrialState::Running, 2)).unwrap();
        let mut done = entry("a", TrialState::Finished, 2);
        done.metrics.insert("test_auc".to_string(), 0.61);
        journal.append(&done).unwrap();
        let statuses = journal.statuses().unwrap();
        assert_eq!(statuses["a"].last, done);
        assert_eq!(statuses["a"].attempts, 2);
        assert_eq!(statuses["b"].last.state, TrialState::Running);
        journal.append(&entry("b", TrialState::Failed, 1)).unwrap();
        journal.append(&entry("b", TrialState::Queued, 2)).unwrap();
        let statuses = journal.statuses().unwrap();
        assert_eq!(statuses["b"].attempts, 1, "a queued attempt has not started");
    }

    #[test]
    fn a_torn_line_is_closed_by_the_next_append_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_dir(dir.path());
        journal.append(&entry("a", TrialState::Running, 1)).unwrap();
        let mut file = OpenOptions::new().append(true).open(journal.path()).unwrap();
        file.write_all(b"{\"time_ms\": 1, \"tri").unwrap();
        assert_eq!(journal.entries().unwrap().len(), 1);
        journal.append(&entry("a", TrialState::Finished, 1)).unwrap();
        let entries = journal.entries().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].state, TrialState::Finished);
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
    }

    #[test]
    fn entries_read_back_exactly_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_dir(dir.path());
        let mut done = entry("a", TrialState::Finished, 3).with_reason("why");
        done.run_id = Some("r1".to_string());
        done.duration_ms = Some(1234);
        done.metrics.insert("test_auc".to_string(), 0.625);
        journal.append(&done).unwrap();
        assert_eq!(journal.entries().unwrap(), vec![done]);
    }

    #[test]
    fn concurrent_appends_from_many_threads_never_interleave() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::in_dir(dir.path());
        std::thread::scope(|scope| {
            for t in 0..8 {
                let journal = journal.clone();
                scope.spawn(move || {
                    for i in 0..50 {
                        let mut e = entry(&format!("t{t}-{i}"), TrialState::Finished, 1);
                        e.reason = Some("x".repeat(500));
                        journal.append(&e).unwrap();
                    }
                });
            }
        });
        assert_eq!(journal.entries().unwrap().len(), 400);
    }
}
