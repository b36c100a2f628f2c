//! Executors driven with stand-in programs: shell scripts in place of the trial process and of
//! Slurm's commands, for the paths a real run rarely takes (a trial that dies without a result, a
//! timeout, sbatch refusing, a node going down, tasks left from an earlier driver). The real thing
//! is tested end to end in `tests/sweep_cli.rs` (local) and `tests/slurm_cli.rs` (a real Slurm).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::sweep::tests::{plan, sweep};
use crate::sweep::{Duration, JournalEntry, TrialState};

/// A sweep directory with `trials` trials (seeds 0..trials) and the given execution settings.
fn sweep_dir(root: &Path, trials: usize, execution: &str) -> SweepDir {
    let seeds: Vec<String> = (0..trials).map(|s| s.to_string()).collect();
    let text = sweep(&format!(
        "  method: grid\n  parameters:\n    seed: {{values: [{}]}}\n  execution: {execution}\n",
        seeds.join(", ")
    ));
    SweepDir::create(&root.join("sweep"), plan(&text, &[]).unwrap()).unwrap()
}

/// An executable shell script `name` in `root` with `body`.
fn script(root: &Path, name: &str, body: &str) -> PathBuf {
    let path = root.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run(executor: &mut dyn Executor, dir: &SweepDir) -> (anyhow::Result<()>, Vec<JournalEntry>) {
    let mut ended = Vec::new();
    let indices: Vec<usize> = (0..dir.plan.trials.len()).collect();
    let result = executor.execute(dir, &indices, &mut |e| ended.push(e.clone()));
    (result, ended)
}

fn local(program: PathBuf, dir: &SweepDir) -> LocalExecutor {
    let command = TrialCommand {
        program,
        args: Vec::new(),
    };
    LocalExecutor::new(command, &dir.plan.spec.execution)
}

#[test]
fn a_trial_process_that_ends_without_a_result_is_failed_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(tmp.path(), 2, "{jobs: 2, retries: 1}");
    let (result, ended) = run(
        &mut local(script(tmp.path(), "trial", "echo hello; exit 3"), &dir),
        &dir,
    );
    result.unwrap();
    assert_eq!(ended.len(), 4, "two trials, two attempts each: {ended:?}");
    for e in &ended {
        assert_eq!(e.state, TrialState::Failed);
        let reason = e.reason.as_deref().unwrap();
        assert!(
            reason.contains("exited with code 3 without recording a result"),
            "{reason}"
        );
        let log = reason.rsplit("log: ").next().unwrap().trim_end_matches(')');
        assert_eq!(std::fs::read_to_string(log).unwrap(), "hello\n");
    }
    let statuses = dir.statuses().unwrap();
    assert!(statuses
        .values()
        .all(|s| s.attempts == 2 && s.last.state == TrialState::Failed));
}

#[test]
fn an_attempt_over_the_timeout_is_stopped_and_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(tmp.path(), 1, "{timeout: 1s}");
    let started = std::time::Instant::now();
    let (result, ended) = run(&mut local(script(tmp.path(), "trial", "exec sleep 30"), &dir), &dir);
    result.unwrap();
    assert!(started.elapsed().as_secs() < 20, "SIGTERM did not stop it");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].state, TrialState::Failed);
    assert!(
        ended[0].reason.as_deref().unwrap().starts_with("timed out after 1s"),
        "{ended:?}"
    );
}

#[test]
fn a_missing_program_is_an_error_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(tmp.path(), 2, "{jobs: 1}");
    let (result, ended) = run(&mut local(tmp.path().join("nope"), &dir), &dir);
    assert!(format!("{:#}", result.unwrap_err()).contains("cannot start"));
    assert!(ended.is_empty());
}

/// Fake Slurm commands in `root`; every call is appended to `root/calls`.
fn fake_slurm(root: &Path, sbatch: &str, squeue: &str, scontrol: &str) -> SlurmCommands {
    let log = root.join("calls");
    let body = |name: &str, rest: &str| format!("echo \"{name} $*\" >> '{}'\n{rest}", log.display());
    SlurmCommands {
        sbatch: script(root, "sbatch", &body("sbatch", sbatch)),
        squeue: script(root, "squeue", &body("squeue", squeue)),
        scontrol: script(root, "scontrol", &body("scontrol", scontrol)),
        scancel: script(root, "scancel", &body("scancel", "")),
    }
}

fn calls(root: &Path, program: &str) -> Vec<String> {
    std::fs::read_to_string(root.join("calls"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(program))
        .map(String::from)
        .collect()
}

fn slurm(dir: &SweepDir, commands: SlurmCommands) -> SlurmExecutor {
    let command = TrialCommand {
        program: "/opt/fairlab".into(),
        args: vec!["sweep".into(), "trial".into()],
    };
    SlurmExecutor::new(command, &dir.plan.spec.execution, commands)
}

#[test]
fn sbatch_refusing_the_array_is_an_error_with_its_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(tmp.path(), 3, "{executor: slurm, slurm: {partition: gpu}}");
    let commands = fake_slurm(
        tmp.path(),
        "echo 'sbatch: error: invalid partition specified: gpu' >&2; exit 1",
        "",
        "",
    );
    let (result, ended) = run(&mut slurm(&dir, commands), &dir);
    let message = format!("{:#}", result.unwrap_err());
    assert!(
        message
            .contains("sbatch refused the sweep's job array (exit 1): sbatch: error: invalid partition specified: gpu"),
        "{message}"
    );
    assert!(message.contains("--partition=gpu"), "{message}");
    assert!(ended.is_empty());
    assert!(dir.statuses().unwrap().is_empty(), "nothing was queued");
}

#[test]
fn tasks_lost_with_their_node_are_failed_with_slurms_state_and_retried_as_a_new_array() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(
        tmp.path(),
        3,
        "{executor: slurm, jobs: 2, retries: 1, timeout: 30m, slurm: {partition: gpu, gpus: 1, mem: 8G, cpus_per_task: 4, poll_seconds: 0.01, extra_args: [--constraint=a100]}}",
    );
    // Every task vanishes from the queue at once, and scontrol says its node failed.
    let commands = fake_slurm(
        tmp.path(),
        "echo 42",
        "exit 0",
        "echo \"JobId=43 ArrayJobId=42 ArrayTaskId=0 JobState=NODE_FAIL Reason=NodeDown Dependency=(null) ExitCode=0:0\"",
    );
    let (result, ended) = run(&mut slurm(&dir, commands), &dir);
    result.unwrap();
    assert_eq!(ended.len(), 6, "3 trials x 2 attempts: {ended:?}");
    for e in &ended {
        assert_eq!(e.state, TrialState::Failed);
        let reason = e.reason.as_deref().unwrap();
        assert!(
            reason.contains(&format!(
                "Slurm task 42_{} ended NODE_FAIL (exit 0:0, reason NodeDown)",
                e.index
            )),
            "{reason}"
        );
    }
    let sbatch = calls(tmp.path(), "sbatch");
    assert_eq!(sbatch.len(), 2, "{sbatch:?}");
    for expected in [
        "--parsable",
        "--array=0-2%2",
        "--partition=gpu",
        "--time=32",
        "--cpus-per-task=4",
        "--mem=8G",
        "--gres=gpu:1",
        "--constraint=a100",
        "--job-name=fairlab-quick-",
    ] {
        assert!(sbatch[0].contains(expected), "{expected} not in {}", sbatch[0]);
    }
    let script = std::fs::read_to_string(dir.path().join("slurm/wave-1.sh")).unwrap();
    assert!(script.ends_with("exec '/opt/fairlab' 'sweep' 'trial'\n"), "{script}");
    let queued = dir
        .journal
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.state == TrialState::Queued)
        .count();
    assert_eq!(queued, 6);
    assert!(dir.statuses().unwrap().values().all(|s| s.attempts == 2));
}

#[test]
fn tasks_still_queued_from_an_earlier_driver_are_waited_for_not_resubmitted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(tmp.path(), 2, "{executor: slurm, slurm: {poll_seconds: 0.01}}");
    // An earlier driver submitted job 7; its task 0 is still running and will finish, task 1 is gone.
    for index in 0..2 {
        let trial = &dir.plan.trials[index];
        let queued = JournalEntry::new(&trial.id, index, TrialState::Queued, 1, &format!("slurm:7_{index}"));
        dir.journal.append(&queued).unwrap();
    }
    let finish = {
        let trial = &dir.plan.trials[0];
        let mut done = JournalEntry::new(&trial.id, 0, TrialState::Finished, 1, "slurm:7_0");
        done.metrics.insert("test_auc".into(), 0.7);
        serde_json::to_string(&done).unwrap()
    };
    // squeue lists 7_0 twice, then the task "finishes" (journals its result) and leaves the queue.
    let journal = dir.journal.path().display().to_string();
    let squeue = format!(
        "n=$(grep -c squeue '{calls}')\nif [ \"$n\" -le 2 ]; then echo '7_0|RUNNING'; elif [ \"$n\" -eq 3 ]; then echo '{finish}' >> '{journal}'; fi",
        calls = tmp.path().join("calls").display()
    );
    let commands = fake_slurm(tmp.path(), "echo 8", &squeue, "exit 1");
    let (result, ended) = run(&mut slurm(&dir, commands), &dir);
    result.unwrap();
    let states: Vec<(usize, TrialState)> = ended.iter().map(|e| (e.index, e.state)).collect();
    assert!(states.contains(&(0, TrialState::Finished)), "{ended:?}");
    let sbatch = calls(tmp.path(), "sbatch");
    assert_eq!(sbatch.len(), 1, "{sbatch:?}");
    assert!(
        sbatch[0].contains("--array=1%1"),
        "only the lost trial is submitted again: {}",
        sbatch[0]
    );
    let lost = ended.iter().find(|e| e.index == 1 && e.worker == "slurm:8_1").unwrap();
    assert!(
        lost.reason
            .as_deref()
            .unwrap()
            .contains("Slurm no longer knows how it ended"),
        "{lost:?}"
    );
}

#[test]
fn durations_in_the_execution_section_parse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sweep_dir(tmp.path(), 1, "{timeout: 1h30m}");
    assert_eq!(dir.plan.spec.execution.timeout, Some(Duration::parse("5400").unwrap()));
}
