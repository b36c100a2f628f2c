//! The local executor: each attempt is a child process of this one, at most `jobs` at a time,
//! started as soon as a slot frees. Children run in their own process group, so that a Ctrl-C in the
//! terminal reaches only the driver, which then stops them with one SIGTERM each (they end their
//! runs as KILLED) and escalates to SIGKILL after a grace period.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{retry_allowed, settle_attempt, Executor, TrialCommand};
use crate::interrupt::{self, Interrupted};
use crate::sweep::journal::{JournalEntry, TrialState};
use crate::sweep::{Execution, SweepDir};

/// How long a child may take to end after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);
/// How often running children are checked.
const POLL: Duration = Duration::from_millis(5);

/// Runs trials as child processes of this one.
#[derive(Debug)]
pub struct LocalExecutor {
    command: TrialCommand,
    jobs: usize,
    timeout: Option<Duration>,
    retries: u32,
}

/// Why the driver stopped a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    Interrupt,
}

/// A running attempt.
struct Attempt {
    index: usize,
    attempt: u32,
    child: Child,
    started: Instant,
    log: PathBuf,
    stop: Option<(Stop, Instant)>,
}

impl LocalExecutor {
    /// An executor running `command` for each attempt, with `jobs`, `timeout` and `retries` from
    /// `execution`.
    pub fn new(command: TrialCommand, execution: &Execution) -> Self {
        Self {
            command,
            jobs: execution.jobs.max(1),
            timeout: execution.timeout.map(|t| t.to_std()),
            retries: execution.retries,
        }
    }

    fn spawn(&self, dir: &SweepDir, index: usize) -> anyhow::Result<Attempt> {
        let trial = &dir.plan.trials[index];
        let attempt = dir.statuses()?.get(&trial.id).map_or(0, |s| s.attempts) + 1;
        let log = dir.attempt_log(index, attempt)?;
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(&self.command.program);
        command
            .args(&self.command.args)
            .arg("--index")
            .arg(index.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.command.program.display()))?;
        Ok(Attempt {
            index,
            attempt,
            child,
            started: Instant::now(),
            log,
            stop: None,
        })
    }

    /// Journal how a child's attempt ended and return the final entry.
    fn settle(&self, dir: &SweepDir, a: &Attempt, status: ExitStatus) -> anyhow::Result<JournalEntry> {
        let worker = format!("{}:{}", crate::runner::host_name(), a.child.id());
        let log = a.log.display();
        let (lost, overrule) = match a.stop {
            Some((Stop::Timeout, _)) => {
                let limit = self.timeout.map_or(0, |t| t.as_secs());
                let reason = format!("timed out after {}s (log: {log})", limit);
                ((TrialState::Failed, reason), true)
            }
            Some((Stop::Interrupt, _)) => ((TrialState::Killed, format!("{}", Interrupted)), false),
            None => {
                let reason = format!(
                    "the trial process {} without recording a result (log: {log})",
                    describe(status)
                );
                ((TrialState::Failed, reason), false)
            }
        };
        settle_attempt(dir, a.index, a.attempt, &worker, lost, overrule)
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn execute(
        &mut self,
        dir: &SweepDir,
        indices: &[usize],
        on_end: &mut dyn FnMut(&JournalEntry),
    ) -> anyhow::Result<()> {
        let mut queue: VecDeque<usize> = indices.iter().copied().collect();
        let mut tries: HashMap<usize, u32> = HashMap::new();
        let mut running: Vec<Attempt> = Vec::new();
        let mut interrupted = false;
        let mut failure: Option<anyhow::Error> = None;
        loop {
            if !interrupted && (interrupt::requested() || failure.is_some()) {
                interrupted = true;
                queue.clear();
                for a in &mut running {
                    terminate(&mut a.child);
                    a.stop = Some((Stop::Interrupt, Instant::now()));
                }
            }
            while !interrupted && running.len() < self.jobs {
                let Some(index) = queue.pop_front() else { break };
                match self.spawn(dir, index) {
                    Ok(a) => {
                        *tries.entry(index).or_default() += 1;
                        running.push(a);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if running.is_empty() {
                break;
            }
            let mut ended = Vec::new();
            for (i, a) in running.iter_mut().enumerate() {
                match a.child.try_wait()? {
                    Some(status) => ended.push((i, status)),
                    None => match a.stop {
                        None if self.timeout.is_some_and(|t| a.started.elapsed() > t) => {
                            terminate(&mut a.child);
                            a.stop = Some((Stop::Timeout, Instant::now()));
                        }
                        Some((_, since)) if since.elapsed() > GRACE => {
                            let _ = a.child.kill();
                        }
                        _ => {}
                    },
                }
            }
            if ended.is_empty() {
                std::thread::sleep(POLL);
                continue;
            }
            for (i, status) in ended.into_iter().rev() {
                let a = running.swap_remove(i);
                let entry = self.settle(dir, &a, status)?;
                on_end(&entry);
                if !interrupted && retry_allowed(&entry, tries[&a.index], self.retries) {
                    queue.push_back(a.index);
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None if interrupted => Err(Interrupted.into()),
            None => Ok(()),
        }
    }
}

/// Ask a child to stop (SIGTERM: it ends its run as KILLED at the next safe point).
fn terminate(child: &mut Child) {
    #[cfg(unix)]
    // SAFETY: `kill` has no memory-safety preconditions; the pid is our unreaped child's.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    #[cfg(not(unix))]
    let _ = child.kill();
}

/// `exited with code 3` or `was killed by signal 9`.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("was killed by signal {signal}");
    }
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => format!("ended ({status})"),
    }
}
