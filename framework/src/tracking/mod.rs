//! Tracking, layered like MLflow: the runner talks to an [`ActiveRun`] (the fluent layer), which
//! talks to a [`Tracker`] store chosen by the tracking URI ([`open`]): the embedded
//! [`FileStore`] (MLflow's file-store layout, the default) or a tracking server through its REST
//! API ([`RestStore`]).

mod active_run;
mod file_store;
mod redaction;
pub mod rest;
mod sender;
pub mod spool;
pub mod sync;
mod validation;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use active_run::{ActiveRun, UNCLOSED_RUN_REASON};
pub use file_store::FileStore;
pub use redaction::{is_secret_key, loggable_params, loggable_tags, redact_assignment, redact_yaml, REDACTED};
pub use rest::RestStore;
pub use sender::{MetricSender, QUEUE_CAPACITY};
pub use spool::SpoolingStore;
pub(crate) use validation::validate_key;
pub(crate) use validation::{artifact_parts, check_batch};

/// Tag holding a run's name (MLflow's UI reads it).
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// Tag holding why a run ended FAILED or KILLED (set by [`ActiveRun::fail`], [`ActiveRun::kill`]
/// and by an [`ActiveRun`] dropped without being ended).
pub const FAILURE_REASON_TAG: &str = "fairlab.failure_reason";

/// MLflow's limits on what one call may log. Every store enforces them, so that a run written to
/// one store can be replayed to any other (the MLflow server answers 400 beyond them).
pub mod limits {
    /// Most metric points in one [`log_batch`](super::Tracker::log_batch).
    pub const MAX_METRICS_PER_BATCH: usize = 1000;
    /// Most params, and separately most tags, in one [`log_batch`](super::Tracker::log_batch).
    pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
    /// Most metrics, params and tags together in one [`log_batch`](super::Tracker::log_batch).
    pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
    /// Longest metric, param or tag key, in characters.
    pub const MAX_KEY_LENGTH: usize = 250;
    /// Longest param value, in characters.
    pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
    /// Longest tag value, in characters.
    pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
}

/// Lifecycle state of a run, with MLflow's numeric codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RunStatus {
    /// Still running (or crashed without being ended).
    Running = 1,
    /// Waiting to run.
    Scheduled = 2,
    /// Ended successfully.
    Finished = 3,
    /// Ended with an error; the reason is in the `fairlab.failure_reason` tag.
    Failed = 4,
    /// Stopped by the user (Ctrl-C) or a scheduler.
    Killed = 5,
}

impl RunStatus {
    /// MLflow's name for the status (`FINISHED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// MLflow's numeric code for the status.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Every status, in code order.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Scheduled,
        RunStatus::Finished,
        RunStatus::Failed,
        RunStatus::Killed,
    ];

    /// The status with a numeric code.
    pub fn from_code(code: i64) -> Option<RunStatus> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The status with MLflow's name (`FINISHED`, ...).
    pub fn from_name(name: &str) -> Option<RunStatus> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Finished | RunStatus::Failed | RunStatus::Killed)
    }
}

/// One value of a metric at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Metric key.
    pub key: String,
    /// Value (NaN and infinities allowed; stores encode them as their backend expects).
    pub value: f64,
    /// Unix time in milliseconds.
    pub timestamp: i64,
    /// Step (epoch, iteration, ...).
    pub step: i64,
}

/// Identity and state of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id (32 hex characters).
    pub run_id: String,
    /// Experiment the run belongs to.
    pub experiment_id: String,
    /// Human-readable name.
    pub run_name: String,
    /// Current state.
    pub status: RunStatus,
    /// Start, Unix milliseconds.
    pub start_time: i64,
    /// End, Unix milliseconds, once ended.
    pub end_time: Option<i64>,
    /// Where the run's artifacts are (e.g. `file:///.../artifacts`).
    pub artifact_uri: String,
}

/// A run with its data, as read back from a store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Identity and state.
    pub info: RunInfo,
    /// Parameters.
    pub params: BTreeMap<String, String>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Latest value of every metric (highest step, then latest timestamp).
    pub metrics: BTreeMap<String, MetricPoint>,
}

/// An experiment (a named group of runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentInfo {
    /// Experiment id.
    pub experiment_id: String,
    /// Experiment name.
    pub name: String,
}

/// A file or folder among a run's artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactEntry {
    /// Path relative to the run's artifact root.
    pub path: String,
    /// Whether it is a folder.
    pub is_dir: bool,
    /// Size in bytes, for files.
    pub file_size: Option<u64>,
}

/// A tracking store: MLflow's `AbstractStore`, reduced to what fairlab uses. Implementations must
/// be safe to share between threads.
pub trait Tracker: Send + Sync {
    /// Where the store is, for messages (e.g. `file:///home/me/mlruns`).
    fn uri(&self) -> String;

    /// The id of the experiment with this name, created when missing.
    fn get_or_create_experiment(&self, name: &str) -> anyhow::Result<String>;

    /// All experiments.
    fn list_experiments(&self) -> anyhow::Result<Vec<ExperimentInfo>>;

    /// Create a run in state RUNNING with initial tags.
    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> anyhow::Result<RunInfo>;

    /// Log metrics, params and tags at once. A param that already has a different value is an error.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> anyhow::Result<()>;

    /// Store a file among the run's artifacts at `path` (relative, `/`-separated).
    fn log_artifact(&self, run_id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()>;

    /// List the artifacts directly under `path` (the root when `None`).
    fn list_artifacts(&self, run_id: &str, path: Option<&str>) -> anyhow::Result<Vec<ArtifactEntry>>;

    /// Read an artifact's bytes.
    fn read_artifact(&self, run_id: &str, path: &str) -> anyhow::Result<Vec<u8>>;

    /// End a run.
    fn set_terminated(&self, run_id: &str, status: RunStatus, end_time: i64) -> anyhow::Result<()>;

    /// Set an ended run back to RUNNING (no end time), to continue logging to it.
    fn reopen_run(&self, run_id: &str) -> anyhow::Result<()>;

    /// A run with its params, tags and latest metrics.
    fn get_run(&self, run_id: &str) -> anyhow::Result<RunRecord>;

    /// Every value ever logged for one metric of a run, in logging order.
    fn metric_history(&self, run_id: &str, key: &str) -> anyhow::Result<Vec<MetricPoint>>;

    /// Runs of the given experiments, newest first.
    fn search_runs(&self, experiment_ids: &[String]) -> anyhow::Result<Vec<RunRecord>>;

    /// How many [`log_batch`](Tracker::log_batch) calls a run's background metric sender may have
    /// in flight at once (1: in logging order).
    fn max_in_flight(&self) -> usize {
        1
    }

    /// The offline spool folder `run_id` went on in because the store's server became unavailable
    /// (only a [`SpoolingStore`] has one).
    fn spooled_to(&self, _run_id: &str) -> Option<std::path::PathBuf> {
        None
    }
}

/// Open the store a tracking URI names: `http(s)://...` a tracking server ([`RestStore`], with
/// the offline spool of [`SpoolingStore`] in the folder [`spool::default_spool_dir`] names);
/// `None`, a path or `file:...` the embedded [`FileStore`] (`./mlruns` when `None`).
pub fn open(uri: Option<&str>) -> anyhow::Result<std::sync::Arc<dyn Tracker>> {
    let uri = uri.filter(|u| !u.trim().is_empty());
    match uri {
        None => Ok(std::sync::Arc::new(FileStore::open("mlruns")?)),
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(std::sync::Arc::new(
            SpoolingStore::new(std::sync::Arc::new(RestStore::open(u)?), spool::default_spool_dir()),
        )),
        Some(u) if u.starts_with("file:") => Ok(std::sync::Arc::new(FileStore::open_uri(u)?)),
        Some(path) => Ok(std::sync::Arc::new(FileStore::open(path)?)),
    }
}

/// Every artifact of a run, folders and files, depth first (each folder right before what it holds).
pub fn all_artifacts(tracker: &dyn Tracker, run_id: &str) -> anyhow::Result<Vec<ArtifactEntry>> {
    fn collect(
        tracker: &dyn Tracker,
        run_id: &str,
        path: Option<&str>,
        into: &mut Vec<ArtifactEntry>,
    ) -> anyhow::Result<()> {
        for entry in tracker.list_artifacts(run_id, path)? {
            let folder = entry.is_dir.then(|| entry.path.clone());
            into.push(entry);
            if let Some(folder) = folder {
                collect(tracker, run_id, Some(&folder), into)?;
            }
        }
        Ok(())
    }
    let mut all = Vec::new();
    collect(tracker, run_id, None, &mut all)?;
    Ok(all)
}

/// Current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
