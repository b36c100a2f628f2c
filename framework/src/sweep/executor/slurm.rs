//! The Slurm executor: the trials go to Slurm as one job array per wave (`sbatch --parsable
//! --array=<plan indices>%<jobs>`), each array task running `fairlab sweep trial` on the task's plan
//! index. Progress is read from the journal the tasks write; `squeue` says which tasks are still
//! queued or running, and `scontrol` why a task that left the queue without journaling a result
//! ended (Slurm forgets finished jobs after `MinJobAge`, and accounting is usually off, so the
//! journal keeps the record). Failed trials with retries left form the next wave. Tasks still queued
//! or running from an earlier driver (killed, or stopped with Ctrl-C before they were cancelled) are
//! waited for, not submitted twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{retry_allowed, settle_attempt, Executor, TrialCommand};
use crate::interrupt::{self, Interrupted};
use crate::sweep::journal::{JournalEntry, TrialState};
use crate::sweep::{Execution, SweepDir};

/// How long `squeue` may keep failing (slurmctld restarting, say) before the sweep gives up waiting.
const QUEUE_OUTAGE: Duration = Duration::from_secs(120);
/// How long cancelled tasks get to leave the queue after Ctrl-C.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

/// The Slurm programs, by path or by name on `PATH`.
#[derive(Debug, Clone)]
pub struct SlurmCommands {
    /// `sbatch`.
    pub sbatch: PathBuf,
    /// `squeue`.
    pub squeue: PathBuf,
    /// `scontrol`.
    pub scontrol: PathBuf,
    /// `scancel`.
    pub scancel: PathBuf,
}

impl Default for SlurmCommands {
    fn default() -> Self {
        Self {
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scontrol: "scontrol".into(),
            scancel: "scancel".into(),
        }
    }
}

/// Runs trials as Slurm array tasks.
#[derive(Debug)]
pub struct SlurmExecutor {
    command: TrialCommand,
    execution: Execution,
    commands: SlurmCommands,
}

/// A task of an array job that this executor waits for.
#[derive(Debug, Clone)]
struct Task {
    /// `<array job id>_<plan index>`.
    id: String,
    /// The attempt it runs.
    attempt: u32,
}

impl SlurmExecutor {
    /// An executor submitting `command` through the Slurm programs `commands`, with the `sbatch`
    /// settings, `jobs` (the array throttle) and `retries` of `execution`.
    pub fn new(command: TrialCommand, execution: &Execution, commands: SlurmCommands) -> Self {
        Self {
            command,
            execution: execution.clone(),
            commands,
        }
    }

    /// The `sbatch` arguments of one wave (everything but the script).
    pub fn sbatch_args(&self, dir: &SweepDir, indices: &[usize]) -> anyhow::Result<Vec<String>> {
        let s = &self.execution.slurm;
        let logs = dir.logs_dir()?;
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name=fairlab-{}-{}", dir.plan.name, &dir.plan.sweep_id[..8]),
            format!("--array={}%{}", array_ranges(indices), self.execution.jobs.max(1)),
            format!("--output={}/slurm-%A_%a.out", logs.display()),
            format!(
                "--chdir={}",
                std::env::current_dir()
                    .context("cannot read the working directory")?
                    .display()
            ),
        ];
        let optional = [
            ("--partition", s.partition.clone()),
            ("--time", self.execution.slurm_time()),
            ("--cpus-per-task", s.cpus_per_task.map(|c| c.to_string())),
            ("--mem", s.mem.clone()),
            ("--gres", s.gpus.filter(|g| *g > 0).map(|g| format!("gpu:{g}"))),
            ("--account", s.account.clone()),
            ("--qos", s.qos.clone()),
        ];
        args.extend(
            optional
                .into_iter()
                .filter_map(|(flag, v)| v.map(|v| format!("{flag}={v}"))),
        );
        args.extend(s.extra_args.iter().cloned());
        Ok(args)
    }

    /// Submit one wave; returns the array job id. The tasks are journaled QUEUED.
    fn submit(
        &self,
        dir: &SweepDir,
        indices: &[usize],
        wave: usize,
    ) -> anyhow::Result<(String, BTreeMap<usize, Task>)> {
        let scripts = dir.path().join("slurm");
        std::fs::create_dir_all(&scripts).with_context(|| format!("cannot create {}", scripts.display()))?;
        let script = scripts.join(format!("wave-{wave}.sh"));
        let mut line = vec![shell_quote(&self.command.program.display().to_string())];
        line.extend(self.command.args.iter().map(|a| shell_quote(a)));
        let text = format!(
            "#!/bin/sh\n# fairlab sweep {} ({}), wave {wave}: each array task runs the trial whose plan index is its task id.\nexec {}\n",
            dir.plan.name,
            dir.plan.sweep_id,
            line.join(" ")
        );
        std::fs::write(&script, text).with_context(|| format!("cannot write {}", script.display()))?;
        let args = self.sbatch_args(dir, indices)?;
        let output = Command::new(&self.commands.sbatch)
            .args(&args)
            .arg(&script)
            .output()
            .with_context(|| format!("cannot run {} (is Slurm installed?)", self.commands.sbatch.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            anyhow::bail!(
                "sbatch refused the sweep's job array (exit {}): {}\n  command: sbatch {} {}",
                output.status.code().map_or("?".to_string(), |c| c.to_string()),
                String::from_utf8_lossy(&output.stderr).trim(),
                args.join(" "),
                script.display()
            );
        }
        let job = stdout.trim().split(';').next().unwrap_or_default().trim().to_string();
        anyhow::ensure!(
            !job.is_empty() && job.bytes().all(|b| b.is_ascii_digit()),
            "sbatch printed `{}` instead of a job id",
            stdout.trim()
        );
        let statuses = dir.statuses()?;
        let mut tasks = BTreeMap::new();
        for &index in indices {
            let trial = &dir.plan.trials[index];
            let attempt = statuses.get(&trial.id).map_or(0, |s| s.attempts) + 1;
            let id = format!("{job}_{index}");
            let entry = JournalEntry::new(&trial.id, index, TrialState::Queued, attempt, &format!("slurm:{id}"));
            dir.journal.append(&entry)?;
            tasks.insert(index, Task { id, attempt });
        }
        tracing::info!("submitted job array {job} ({} trials, wave {wave})", indices.len());
        Ok((job, tasks))
    }

    /// Tasks of the sweep still queued or running from an earlier submission, by plan index.
    fn live_tasks(&self, dir: &SweepDir, indices: &[usize]) -> anyhow::Result<BTreeMap<usize, Task>> {
        let statuses = dir.statuses()?;
        let mut candidates = BTreeMap::new();
        for &index in indices {
            let Some(status) = statuses.get(&dir.plan.trials[index].id) else {
                continue;
            };
            let last = &status.last;
            if let (false, Some(id)) = (last.state.is_terminal(), last.worker.strip_prefix("slurm:")) {
                candidates.insert(
                    index,
                    Task {
                        id: id.to_string(),
                        attempt: last.attempt,
                    },
                );
            }
        }
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let jobs: BTreeSet<&str> = candidates.values().filter_map(|t| t.id.split('_').next()).collect();
        let queued = self.queue(&jobs.into_iter().collect::<Vec<_>>())?;
        Ok(candidates
            .into_iter()
            .filter(|(_, t)| queued.contains_key(&t.id))
            .collect())
    }

    /// The tasks of `jobs` Slurm still lists, with their states (`PENDING`, `RUNNING`, ...).
    fn queue(&self, jobs: &[&str]) -> anyhow::Result<BTreeMap<String, String>> {
        let output = Command::new(&self.commands.squeue)
            .args(["--noheader", "--array", "--format=%i|%T"])
            .arg(format!("--jobs={}", jobs.join(",")))
            .output()
            .with_context(|| format!("cannot run {}", self.commands.squeue.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            // A job Slurm has already forgotten is not an error: it has left the queue.
            if stderr.contains("Invalid job id") {
                return Ok(BTreeMap::new());
            }
            anyhow::bail!("squeue failed ({}): {}", output.status, stderr.trim());
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.trim().split_once('|'))
            .map(|(id, state)| (id.trim().to_string(), state.trim().to_string()))
            .collect())
    }

    /// What `scontrol show job` still knows of a finished task: `TIMEOUT (exit 0:15, reason ...)`.
    fn task_end(&self, id: &str) -> Option<(String, String)> {
        let output = Command::new(&self.commands.scontrol)
            .args(["show", "job", "-o", id])
            .output()
            .ok()
            .filter(|o| o.status.success())?;
        let text = String::from_utf8_lossy(&output.stdout);
        let fields: BTreeMap<&str, &str> = text.split_whitespace().filter_map(|f| f.split_once('=')).collect();
        let state = fields.get("JobState")?.to_string();
        let mut detail = Vec::new();
        if let Some(code) = fields.get("ExitCode") {
            detail.push(format!("exit {code}"));
        }
        if let Some(reason) = fields.get("Reason").filter(|r| **r != "None") {
            detail.push(format!("reason {reason}"));
        }
        Some((state, detail.join(", ")))
    }

    /// Wait until every task has left the queue, journaling the ones that ended without a result;
    /// `on_end` sees each final entry. On Ctrl-C the jobs are cancelled.
    fn wait(
        &self,
        dir: &SweepDir,
        tasks: &BTreeMap<usize, Task>,
        on_end: &mut dyn FnMut(&JournalEntry),
    ) -> anyhow::Result<bool> {
        let poll = Duration::from_secs_f64(self.execution.slurm.poll_seconds.unwrap_or(2.0));
        let jobs: BTreeSet<String> = tasks
            .values()
            .filter_map(|t| t.id.split('_').next().map(String::from))
            .collect();
        let jobs: Vec<&str> = jobs.iter().map(String::as_str).collect();
        let mut open: BTreeMap<usize, &Task> = tasks.iter().map(|(i, t)| (*i, t)).collect();
        let mut failing_since: Option<Instant> = None;
        let mut cancelled: Option<Instant> = None;
        while !open.is_empty() {
            if cancelled.is_none() && interrupt::requested() {
                let status = Command::new(&self.commands.scancel).args(&jobs).status();
                if !status.is_ok_and(|s| s.success()) {
                    tracing::warn!("scancel {} failed; cancel the jobs by hand", jobs.join(" "));
                }
                cancelled = Some(Instant::now());
            }
            let queue = match self.queue(&jobs) {
                Ok(q) => {
                    failing_since = None;
                    q
                }
                Err(e) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > QUEUE_OUTAGE {
                        return Err(e.context(format!(
                            "Slurm's queue has been unreadable for {}s; the tasks may still run: `fairlab sweep resume {}` waits for them",
                            QUEUE_OUTAGE.as_secs(),
                            dir.path().display()
                        )));
                    }
                    tracing::warn!("{e:#}; retrying");
                    std::thread::sleep(poll);
                    continue;
                }
            };
            let gave_up = cancelled.is_some_and(|c| c.elapsed() > CANCEL_WAIT);
            let statuses = dir.statuses()?;
            let mut ended = Vec::new();
            for (&index, task) in &open {
                let last = statuses.get(&dir.plan.trials[index].id).map(|s| &s.last);
                let recorded = last.filter(|l| l.attempt == task.attempt && l.state.is_terminal());
                if let Some(entry) = recorded {
                    ended.push((index, entry.clone()));
                } else if !queue.contains_key(&task.id) || gave_up {
                    let lost = match (cancelled, self.task_end(&task.id)) {
                        (Some(_), _) => (TrialState::Killed, format!("{Interrupted}; Slurm task {} cancelled", task.id)),
                        (None, Some((state, detail))) => (
                            if state == "CANCELLED" { TrialState::Killed } else { TrialState::Failed },
                            format!(
                                "Slurm task {} ended {state} ({detail}) without recording a result (log: {}/slurm-{}.out)",
                                task.id,
                                dir.path().join("logs").display(),
                                task.id
                            ),
                        ),
                        (None, None) => (
                            TrialState::Failed,
                            format!(
                                "Slurm task {} left the queue without recording a result, and Slurm no longer knows how it ended (log: {}/slurm-{}.out)",
                                task.id,
                                dir.path().join("logs").display(),
                                task.id
                            ),
                        ),
                    };
                    let worker = format!("slurm:{}", task.id);
                    ended.push((index, settle_attempt(dir, index, task.attempt, &worker, lost, false)?));
                }
            }
            for (index, entry) in ended {
                open.remove(&index);
                on_end(&entry);
            }
            if !open.is_empty() {
                std::thread::sleep(poll);
            }
        }
        Ok(cancelled.is_some())
    }
}

impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn execute(
        &mut self,
        dir: &SweepDir,
        indices: &[usize],
        on_end: &mut dyn FnMut(&JournalEntry),
    ) -> anyhow::Result<()> {
        let retries = self.execution.retries;
        let mut tries: BTreeMap<usize, u32> = BTreeMap::new();
        let mut ended: BTreeMap<usize, JournalEntry> = BTreeMap::new();
        let mut record = |entry: &JournalEntry, ended: &mut BTreeMap<usize, JournalEntry>| {
            ended.insert(entry.index, entry.clone());
            on_end(entry);
        };
        let live = self.live_tasks(dir, indices)?;
        let mut pending: Vec<usize> = indices.iter().copied().filter(|i| !live.contains_key(i)).collect();
        if !live.is_empty() {
            eprintln!(
                "waiting for {} trial(s) still in Slurm's queue from an earlier submission",
                live.len()
            );
            for &i in live.keys() {
                tries.insert(i, 1);
            }
            if self.wait(dir, &live, &mut |e| record(e, &mut ended))? {
                return Err(Interrupted.into());
            }
            pending.extend(live.keys().filter(|i| retry_allowed(&ended[i], tries[i], retries)));
        }
        let mut wave = std::fs::read_dir(dir.path().join("slurm")).map_or(0, |d| d.count());
        while !pending.is_empty() {
            interrupt::check()?;
            wave += 1;
            let (job, tasks) = self.submit(dir, &pending, wave)?;
            eprintln!(
                "submitted {} trial(s) as Slurm job array {job} (at most {} at once)",
                pending.len(),
                self.execution.jobs
            );
            for &i in &pending {
                *tries.entry(i).or_default() += 1;
            }
            if self.wait(dir, &tasks, &mut |e| record(e, &mut ended))? {
                return Err(Interrupted.into());
            }
            pending.retain(|i| ended.get(i).is_some_and(|e| retry_allowed(e, tries[i], retries)));
        }
        Ok(())
    }
}

/// Plan indices as Slurm's array list: `0-3,5,7-9` (sorted, runs collapsed).
pub fn array_ranges(indices: &[usize]) -> String {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// `text` quoted for `sh` (single quotes, embedded ones escaped).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_lists_collapse_runs() {
        assert_eq!(array_ranges(&[0, 1, 2, 3]), "0-3");
        assert_eq!(array_ranges(&[7, 0, 1, 3, 9, 8]), "0-1,3,7-9");
        assert_eq!(array_ranges(&[5]), "5");
    }

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
