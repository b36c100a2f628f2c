//! The fluent layer: [`ActiveRun`], an RAII handle on one run of a [`Tracker`], like the run that
//! `mlflow.start_run()` opens. It ends the run exactly once: [`ActiveRun::finish`],
//! [`ActiveRun::fail`] or [`ActiveRun::kill`], or, when it is dropped without being ended (a
//! panic, an early return through `?`), FAILED with a reason saying so.

use std::sync::Arc;

use super::limits::{MAX_PARAMS_TAGS_PER_BATCH, MAX_TAG_VALUE_LENGTH};
use super::validation::validate_key;
use super::{now_ms, MetricPoint, MetricSender, RunInfo, RunStatus, Tracker, FAILURE_REASON_TAG};

/// The failure reason recorded for a run whose [`ActiveRun`] was dropped without being ended.
pub const UNCLOSED_RUN_REASON: &str = "the run ended without being closed (crash or panic)";

/// A run in progress. Metrics go through a background [`MetricSender`] (the logging call only
/// queues them); params, tags and artifacts go straight to the store. The run is ended by
/// [`finish`], [`fail`] or [`kill`], which first wait for every queued metric, or marked FAILED
/// when the handle is dropped without one of them.
///
/// [`finish`]: ActiveRun::finish
/// [`fail`]: ActiveRun::fail
/// [`kill`]: ActiveRun::kill
pub struct ActiveRun {
    /// The store the run lives in.
    tracker: Arc<dyn Tracker>,
    /// The run as created.
    info: RunInfo,
    /// Sends the run's metrics in the background.
    sender: MetricSender,
    /// Whether the run was ended (or an end was attempted) through this handle.
    ended: bool,
}

impl ActiveRun {
    /// Start a run named `run_name` in `experiment` (created when missing), with `tags` plus the
    /// tags MLflow's UI shows: `mlflow.runName`, `mlflow.user` (from `$USER`, else `$LOGNAME`,
    /// else `unknown`), `mlflow.source.name` (`fairlab`) and `mlflow.source.type` (`LOCAL`).
    /// A tag in `tags` with one of these keys replaces the default.
    pub fn start(
        tracker: Arc<dyn Tracker>,
        experiment: &str,
        run_name: &str,
        tags: Vec<(String, String)>,
    ) -> anyhow::Result<ActiveRun> {
        let experiment_id = tracker.get_or_create_experiment(experiment)?;
        let user = ["USER", "LOGNAME"]
            .into_iter()
            .filter_map(|var| std::env::var(var).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_else(|| "unknown".to_string());
        let mut all_tags: Vec<(String, String)> = [
            ("mlflow.runName", run_name.to_string()),
            ("mlflow.user", user),
            ("mlflow.source.name", "fairlab".to_string()),
            ("mlflow.source.type", "LOCAL".to_string()),
        ]
        .into_iter()
        .filter(|(key, _)| !tags.iter().any(|(k, _)| k == key))
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        all_tags.extend(tags);
        let info = tracker.create_run(&experiment_id, run_name, now_ms(), &all_tags)?;
        tracing::debug!(
            "started run {} ({run_name}) in experiment `{experiment}` of {}",
            info.run_id,
            tracker.uri()
        );
        Ok(ActiveRun {
            sender: MetricSender::start(tracker.clone(), &info.run_id)?,
            tracker,
            info,
            ended: false,
        })
    }

    /// Continue the existing run `run_id`: it is set back to RUNNING and logged to like a new one
    /// (its params stay write-once).
    pub fn resume(tracker: Arc<dyn Tracker>, run_id: &str) -> anyhow::Result<ActiveRun> {
        let mut info = tracker.get_run(run_id)?.info;
        tracker.reopen_run(run_id)?;
        info.status = RunStatus::Running;
        info.end_time = None;
        tracing::debug!("resumed run {run_id} of {}", tracker.uri());
        Ok(ActiveRun {
            sender: MetricSender::start(tracker.clone(), &info.run_id)?,
            tracker,
            info,
            ended: false,
        })
    }

    /// The run id.
    pub fn id(&self) -> &str {
        &self.info.run_id
    }

    /// The run as it was created (its status there stays RUNNING; read the store for the current one).
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The store the run lives in.
    pub fn tracker(&self) -> &Arc<dyn Tracker> {
        &self.tracker
    }

    /// Log params, in batches of at most 100. Logging a param again with the same value is
    /// harmless; with another value it is an error (params are write-once).
    pub fn log_params(&self, params: &[(String, String)]) -> anyhow::Result<()> {
        for chunk in params.chunks(MAX_PARAMS_TAGS_PER_BATCH) {
            self.tracker.log_batch(self.id(), &[], chunk, &[])?;
        }
        Ok(())
    }

    /// Log metric values at `step`, all timestamped now (queued; see [`log_metric`]).
    ///
    /// [`log_metric`]: ActiveRun::log_metric
    pub fn log_metrics(&self, step: i64, values: &[(&str, f64)]) -> anyhow::Result<()> {
        let timestamp = now_ms();
        for &(key, value) in values {
            self.queue(key, value, timestamp, step)?;
        }
        Ok(())
    }

    /// Log one metric value at `step`, timestamped now: the call a training loop makes per point.
    /// It checks the key and queues the point for the background sender (a few hundred
    /// nanoseconds); it waits only when the sender is [`QUEUE_CAPACITY`] points behind.
    ///
    /// [`QUEUE_CAPACITY`]: super::QUEUE_CAPACITY
    pub fn log_metric(&self, key: &str, value: f64, step: i64) -> anyhow::Result<()> {
        self.queue(key, value, now_ms(), step)
    }

    fn queue(&self, key: &str, value: f64, timestamp: i64, step: i64) -> anyhow::Result<()> {
        validate_key("metric", key)?;
        self.sender.send(MetricPoint {
            key: key.to_string(),
            value,
            timestamp,
            step,
        })
    }

    /// Wait until every metric logged so far has reached the store; an error says how many the
    /// store refused.
    pub fn flush(&self) -> anyhow::Result<()> {
        self.sender.flush()
    }

    /// Set tags (an existing tag gets the new value), in batches of at most 100.
    pub fn set_tags(&self, tags: &[(String, String)]) -> anyhow::Result<()> {
        for chunk in tags.chunks(MAX_PARAMS_TAGS_PER_BATCH) {
            self.tracker.log_batch(self.id(), &[], &[], chunk)?;
        }
        Ok(())
    }

    /// Store `bytes` as the artifact at `path` (relative, `/`-separated).
    pub fn log_artifact(&self, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.tracker.log_artifact(self.id(), path, bytes)
    }

    /// End the run as FINISHED.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.end(RunStatus::Finished, None)
    }

    /// End the run as FAILED, recording `reason` in the `fairlab.failure_reason` tag (cut to
    /// MLflow's 8000-character tag limit).
    pub fn fail(mut self, reason: &str) -> anyhow::Result<()> {
        self.end(RunStatus::Failed, Some(reason))
    }

    /// End the run as KILLED (stopped by the user or a scheduler), recording `reason` in the
    /// `fairlab.failure_reason` tag.
    pub fn kill(mut self, reason: &str) -> anyhow::Result<()> {
        self.end(RunStatus::Killed, Some(reason))
    }

    /// Record the reason, if any, and end the run. The handle counts as ended even when the store
    /// fails, so that dropping it does not try a second time.
    /// Metrics still queued are sent first; if some could not be logged, a FINISHED run ends
    /// FAILED instead, with that as its reason, and the error is returned.
    fn end(&mut self, status: RunStatus, reason: Option<&str>) -> anyhow::Result<()> {
        self.ended = true;
        let (status, reason, lost) = match self.sender.flush() {
            Ok(()) => (status, reason.map(str::to_string), None),
            Err(lost) if status == RunStatus::Finished => (RunStatus::Failed, Some(format!("{lost:#}")), Some(lost)),
            Err(lost) => (status, Some(format!("{}; {lost:#}", reason.unwrap_or_default())), None),
        };
        self.mark_ended(status, reason.as_deref())?;
        lost.map_or(Ok(()), Err)
    }

    fn mark_ended(&self, status: RunStatus, reason: Option<&str>) -> anyhow::Result<()> {
        if let Some(reason) = reason {
            let reason: String = reason.chars().take(MAX_TAG_VALUE_LENGTH).collect();
            self.set_tags(&[(FAILURE_REASON_TAG.to_string(), reason)])?;
        }
        self.tracker.set_terminated(self.id(), status, now_ms())
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if let Err(e) = self.end(RunStatus::Failed, Some(UNCLOSED_RUN_REASON)) {
            tracing::warn!(
                "run {} was dropped without being ended, and marking it FAILED in {} failed: {e:#}",
                self.info.run_id,
                self.tracker.uri()
            );
        }
    }
}

impl std::fmt::Debug for ActiveRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveRun")
            .field("info", &self.info)
            .field("tracker", &self.tracker.uri())
            .field("ended", &self.ended)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::FileStore;

    fn store() -> (tempfile::TempDir, Arc<dyn Tracker>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Tracker> = Arc::new(FileStore::open(dir.path().join("mlruns")).unwrap());
        (dir, store)
    }

    #[test]
    fn start_sets_the_tags_mlflow_shows_and_finish_ends_the_run() {
        let (_dir, store) = store();
        let run = ActiveRun::start(
            store.clone(),
            "exp",
            "seed-7",
            vec![("fairlab.version".into(), "0.1.0".into())],
        )
        .unwrap();
        let id = run.id().to_string();
        assert_eq!(run.info().run_name, "seed-7");
        assert_eq!(run.info().status, RunStatus::Running);
        run.finish().unwrap();

        let record = store.get_run(&id).unwrap();
        assert_eq!(record.info.status, RunStatus::Finished);
        assert!(record.info.end_time.is_some());
        let tag = |k: &str| record.tags.get(k).map(String::as_str);
        assert_eq!(tag("mlflow.runName"), Some("seed-7"));
        assert_eq!(tag("mlflow.source.name"), Some("fairlab"));
        assert_eq!(tag("mlflow.source.type"), Some("LOCAL"));
        assert_eq!(tag("fairlab.version"), Some("0.1.0"));
        assert!(tag("mlflow.user").is_some_and(|u| !u.is_empty()));
        assert_eq!(tag(FAILURE_REASON_TAG), None);
    }

    #[test]
    fn given_tags_replace_the_defaults() {
        let (_dir, store) = store();
        let run = ActiveRun::start(
            store.clone(),
            "exp",
            "r",
            vec![("mlflow.source.name".into(), "sweep.yaml".into())],
        )
        .unwrap();
        let record = store.get_run(run.id()).unwrap();
        assert_eq!(record.tags["mlflow.source.name"], "sweep.yaml");
        run.finish().unwrap();
    }

    #[test]
    fn logging_is_chunked_within_mlflow_limits() {
        let (_dir, store) = store();
        let run = ActiveRun::start(store.clone(), "exp", "big", Vec::new()).unwrap();
        let params: Vec<(String, String)> = (0..250).map(|i| (format!("p{i}"), i.to_string())).collect();
        run.log_params(&params).unwrap();
        let names: Vec<String> = (0..2500).map(|i| format!("m{i}")).collect();
        let values: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), 1.5)).collect();
        run.log_metrics(3, &values).unwrap();
        let tags: Vec<(String, String)> = (0..150).map(|i| (format!("t{i}"), "v".to_string())).collect();
        run.set_tags(&tags).unwrap();
        run.flush().unwrap();
        let record = store.get_run(run.id()).unwrap();
        assert_eq!(record.params.len(), 250);
        assert_eq!(record.metrics.len(), 2500);
        assert_eq!(record.metrics["m2499"].step, 3);
        assert!(record.tags.contains_key("t149"));
        run.finish().unwrap();
    }

    #[test]
    fn fail_and_kill_record_the_reason() {
        let (_dir, store) = store();
        for (status, end) in [(RunStatus::Failed, "fail"), (RunStatus::Killed, "kill")] {
            let run = ActiveRun::start(store.clone(), "exp", end, Vec::new()).unwrap();
            let id = run.id().to_string();
            let reason = format!("because {end}");
            match status {
                RunStatus::Failed => run.fail(&reason).unwrap(),
                _ => run.kill(&reason).unwrap(),
            }
            let record = store.get_run(&id).unwrap();
            assert_eq!(record.info.status, status);
            assert_eq!(record.tags[FAILURE_REASON_TAG], reason);
        }
    }

    #[test]
    fn long_reasons_are_cut_to_the_tag_limit() {
        let (_dir, store) = store();
        let run = ActiveRun::start(store.clone(), "exp", "long", Vec::new()).unwrap();
        let id = run.id().to_string();
        run.fail(&"x".repeat(MAX_TAG_VALUE_LENGTH + 10)).unwrap();
        let record = store.get_run(&id).unwrap();
        assert_eq!(record.tags[FAILURE_REASON_TAG].len(), MAX_TAG_VALUE_LENGTH);
    }

    #[test]
    fn a_dropped_run_is_marked_failed() {
        let (_dir, store) = store();
        let id = {
            let run = ActiveRun::start(store.clone(), "exp", "dropped", Vec::new()).unwrap();
            run.id().to_string()
        };
        let record = store.get_run(&id).unwrap();
        assert_eq!(record.info.status, RunStatus::Failed);
        assert_eq!(record.tags[FAILURE_REASON_TAG], UNCLOSED_RUN_REASON);
    }

    #[test]
    fn a_panic_marks_the_run_failed() {
        let (_dir, store) = store();
        let (tx, rx) = std::sync::mpsc::channel();
        let panicking_store = store.clone();
        let joined = std::thread::spawn(move || {
            let run = ActiveRun::start(panicking_store, "exp", "panics", Vec::new()).unwrap();
            tx.send(run.id().to_string()).unwrap();
            panic!("training diverged");
        })
        .join();
        assert!(joined.is_err());
        let record = store.get_run(&rx.recv().unwrap()).unwrap();
        assert_eq!(record.info.status, RunStatus::Failed);
        assert_eq!(record.tags[FAILURE_REASON_TAG], UNCLOSED_RUN_REASON);
    }

    #[test]
    fn an_early_return_through_question_mark_marks_the_run_failed() {
        let (_dir, store) = store();
        let mut started = None;
        let mut body = || -> anyhow::Result<()> {
            let run = ActiveRun::start(store.clone(), "exp", "early", Vec::new())?;
            started = Some(run.id().to_string());
            run.log_params(&[("bad:key".to_string(), "1".to_string())])?;
            run.finish()
        };
        assert!(body().is_err());
        let record = store.get_run(&started.unwrap()).unwrap();
        assert_eq!(record.info.status, RunStatus::Failed);
    }
}
