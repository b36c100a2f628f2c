//! The embedded tracking store: MLflow's file-store layout, which the Python client, `mlflow ui`
//! and `mlflow migrate-filestore` read (MLflow 3 asks for `MLFLOW_ALLOW_FILE_STORE=true`):
//!
//! ```text
//! <root>/.trash/                               deleted experiments (`mlflow experiments delete`)
//! <root>/0/meta.yaml                           the "Default" experiment
//! <root>/<experiment id>/meta.yaml             name, artifact location, lifecycle stage
//! <root>/<experiment id>/<run id>/meta.yaml    run info; the status is MLflow's integer code
//! <root>/<experiment id>/<run id>/metrics/<key>    one "<ts ms> <value> <step>" line per point
//! <root>/<experiment id>/<run id>/params/<key>     the value, no trailing newline
//! <root>/<experiment id>/<run id>/tags/<key>       the value, no trailing newline
//! <root>/<experiment id>/<run id>/artifacts/<path> artifact files
//! ```
//!
//! A `/` in a metric, param or tag key makes sub-folders, as in MLflow. Rules kept, so that MLflow
//! reads the store: `meta.yaml` files are written to a temporary file and renamed into place, with
//! every string double-quoted; ±inf metric values are clamped to ±`f64::MAX` (MLflow's UI cannot
//! show infinities, and its SQL store clamps the same way) and NaN is written `NaN`; params are
//! write-once; keys follow MLflow's portable key rules.
//!
//! Experiment ids are 18-digit numeric strings, like the random ones the Python client picks, but
//! derived from the experiment name: two processes creating the same experiment at the same time
//! pick the same id, so the one that loses the race finds the winner's experiment instead of
//! creating a duplicate. Run ids are uuid4 hex strings.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use anyhow::{anyhow, bail, Context};
use serde_norway::{Mapping, Value};
use sha2::{Digest, Sha256};

use super::limits::MAX_TAG_VALUE_LENGTH;
use super::validation::{artifact_parts, check_batch, validate_key, validate_value_length};
use super::{now_ms, ArtifactEntry, ExperimentInfo, MetricPoint, RunInfo, RunRecord, RunStatus, Tracker, RUN_NAME_TAG};

/// Name of the metadata file of experiments and runs.
const META_FILE: &str = "meta.yaml";
/// Folder holding deleted experiments.
const TRASH_DIR: &str = ".trash";
/// Root folder of MLflow's model registry, which is not an experiment.
const MODELS_DIR: &str = "models";
/// Folders inside an experiment folder that are not runs (MLflow's `RESERVED_EXPERIMENT_FOLDERS`).
const RESERVED_EXPERIMENT_FOLDERS: [&str; 4] = ["tags", "datasets", "traces", "models"];
/// Id of the experiment every MLflow store has.
const DEFAULT_EXPERIMENT_ID: &str = "0";
/// Name of the experiment every MLflow store has.
const DEFAULT_EXPERIMENT_NAME: &str = "Default";
/// MLflow's `lifecycle_stage` of experiments and runs that are not deleted.
const ACTIVE: &str = "active";
/// MLflow's `SourceType.LOCAL`.
const SOURCE_TYPE_LOCAL: i64 = 4;
/// MLflow's longest experiment name.
const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// Smallest experiment id derived from a name (ids have 18 digits).
const DERIVED_ID_MIN: u64 = 100_000_000_000_000_000;
/// Number of 18-digit experiment ids.
const DERIVED_ID_SPAN: u64 = 900_000_000_000_000_000;
/// Prefix of temporary files; artifact listings skip them.
const TMP_PREFIX: &str = ".fairlab-tmp-";
/// Tag MLflow reads the run name from.
/// Tag MLflow reads the user from.
const USER_TAG: &str = "mlflow.user";

/// The embedded tracking store: one folder in MLflow's file-store layout (see the module docs).
/// Safe to share between threads, and between processes writing the same folder.
#[derive(Debug)]
pub struct FileStore {
    /// Absolute root folder (the `mlruns` folder).
    root: PathBuf,
    /// Run folders found so far, by run id, so that logging does not scan the store every time.
    run_dirs: Mutex<HashMap<String, PathBuf>>,
}

/// An experiment folder with what its `meta.yaml` says.
struct ExperimentEntry {
    /// Experiment id (the folder's name).
    id: String,
    /// Experiment name.
    name: String,
    /// Whether the experiment is deleted (in `.trash`, or not in the active lifecycle stage).
    deleted: bool,
}

/// A run's `meta.yaml`: the raw mapping (rewritten with changes, so that fields written by other
/// MLflow writers survive) and the typed view of it.
struct RunMeta {
    /// Every field of the file.
    map: Mapping,
    /// The typed fields.
    info: RunInfo,
    /// Whether the run is not deleted.
    active: bool,
}

/// What to do when the target of [`write_atomically`] exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Replace it.
    Replace,
    /// Keep it and report that nothing was written.
    Keep,
}

impl FileStore {
    /// Write a run's status and end time (`None`: still running) into its `meta.yaml`.
    fn set_status(&self, run_id: &str, status: RunStatus, end_time: Option<i64>) -> anyhow::Result<()> {
        let (run_dir, mut meta) = self.writable_run_dir(run_id)?;
        meta.map.insert("status".into(), status.code().into());
        meta.map
            .insert("end_time".into(), end_time.map_or(Value::Null, Value::from));
        let meta_path = run_dir.join(META_FILE);
        write_atomically(&run_dir, &meta_path, to_yaml(&meta.map).as_bytes(), Existing::Replace)
            .with_context(|| format!("cannot write {}", meta_path.display()))?;
        Ok(())
    }

    /// Create a run with a given id (32 hex characters), as [`Tracker::create_run`] does with a
    /// new one: how a run that lives on a tracking server is mirrored here (the offline spool).
    /// An existing run with that id is an error.
    pub fn create_run_with_id(
        &self,
        experiment_id: &str,
        run_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> anyhow::Result<RunInfo> {
        let experiment_dir = self.root.join(experiment_id);
        let experiment = self
            .experiments()?
            .into_iter()
            .find(|e| e.id == experiment_id && !e.deleted)
            .ok_or_else(|| {
                anyhow!(
                    "no active experiment with id {experiment_id} in the tracking store {}",
                    self.uri()
                )
            })?;
        for (key, value) in tags {
            validate_key("tag", key)?;
            validate_value_length("tag", key, value, MAX_TAG_VALUE_LENGTH)?;
        }
        let name_tag = tags
            .iter()
            .rev()
            .find(|(k, _)| k == RUN_NAME_TAG)
            .map(|(_, v)| v.as_str());
        if let Some(tag) = name_tag.filter(|t| !run_name.is_empty() && *t != run_name) {
            bail!(
                "run name `{run_name}` and tag {RUN_NAME_TAG}=`{tag}` disagree (experiment `{}`)",
                experiment.name
            );
        }
        validate_run_id(run_id)?;
        if self.run_dir(run_id).is_ok() {
            bail!("run {run_id} exists already in the tracking store {}", self.uri());
        }
        let run_id = run_id.to_string();
        let run_name = match (run_name, name_tag) {
            ("", Some(tag)) => tag.to_string(),
            ("", None) => run_id[..8].to_string(),
            (name, _) => name.to_string(),
        };
        let user = tags
            .iter()
            .rev()
            .find(|(k, _)| k == USER_TAG)
            .map_or("unknown", |(_, v)| v.as_str());

        let run_dir = experiment_dir.join(&run_id);
        for sub in ["metrics", "params", "tags", "artifacts"] {
            let dir = run_dir.join(sub);
            fs::create_dir_all(&dir).with_context(|| format!("cannot create run folder {}", dir.display()))?;
        }
        let artifact_uri = path_to_file_uri(&run_dir.join("artifacts"));
        let mut meta = Mapping::new();
        meta.insert("artifact_uri".into(), artifact_uri.as_str().into());
        meta.insert("end_time".into(), Value::Null);
        meta.insert("entry_point_name".into(), "".into());
        meta.insert("experiment_id".into(), experiment_id.into());
        meta.insert("lifecycle_stage".into(), ACTIVE.into());
        meta.insert("run_id".into(), run_id.as_str().into());
        meta.insert("run_name".into(), run_name.as_str().into());
        meta.insert("source_name".into(), "".into());
        meta.insert("source_type".into(), SOURCE_TYPE_LOCAL.into());
        meta.insert("source_version".into(), "".into());
        meta.insert("start_time".into(), start_time.into());
        meta.insert("status".into(), RunStatus::Running.code().into());
        meta.insert("tags".into(), Value::Sequence(Vec::new()));
        meta.insert("user_id".into(), user.into());
        let mut all_tags = tags.to_vec();
        if name_tag.is_none() {
            all_tags.push((RUN_NAME_TAG.to_string(), run_name.clone()));
        }
        for (key, value) in &all_tags {
            write_key_value(&run_dir, "tags", key, value, Existing::Replace)?;
        }
        let meta_path = run_dir.join(META_FILE);
        write_atomically(&run_dir, &meta_path, to_yaml(&meta).as_bytes(), Existing::Replace)
            .with_context(|| format!("cannot write {}", meta_path.display()))?;
        self.run_dirs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_id.clone(), run_dir);
        Ok(RunInfo {
            run_id,
            experiment_id: experiment_id.to_string(),
            run_name,
            status: RunStatus::Running,
            start_time,
            end_time: None,
            artifact_uri,
        })
    }

    /// Open the store rooted at `root` (relative paths are taken from the current folder), creating
    /// the folder, `.trash/` and the `Default` experiment (`0/meta.yaml`) when missing.
    pub fn open(root: impl AsRef<Path>) -> anyhow::Result<FileStore> {
        let root = root.as_ref();
        fs::create_dir_all(root)
            .with_context(|| format!("cannot create the tracking store folder {}", root.display()))?;
        let root = fs::canonicalize(root)
            .with_context(|| format!("cannot resolve the tracking store folder {}", root.display()))?;
        let trash = root.join(TRASH_DIR);
        fs::create_dir_all(&trash).with_context(|| format!("cannot create {}", trash.display()))?;
        let store = FileStore {
            root,
            run_dirs: Mutex::default(),
        };
        if !trash.join(DEFAULT_EXPERIMENT_ID).exists() {
            store.claim_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME)?;
        }
        Ok(store)
    }

    /// Open the store a `file:` URI names (`file:///abs/path`, `file://localhost/abs/path` or
    /// `file:relative/path`, percent-encoded as MLflow writes them).
    pub fn open_uri(uri: &str) -> anyhow::Result<FileStore> {
        let path = file_uri_to_path(uri).ok_or_else(|| {
            anyhow!("`{uri}` is not a local file URI (expected file:///absolute/path or file:relative/path)")
        })?;
        FileStore::open(path)
    }

    /// The store's absolute root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Make sure the experiment folder `id` exists with a `meta.yaml`, writing one for `name` when
    /// missing, and return the name the folder belongs to (another name when someone else owns it).
    fn claim_experiment(&self, id: &str, name: &str) -> anyhow::Result<String> {
        let dir = self.root.join(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create experiment folder {}", dir.display())),
        }
        let now = now_ms();
        let mut meta = Mapping::new();
        meta.insert("artifact_location".into(), path_to_file_uri(&dir).into());
        meta.insert("creation_time".into(), now.into());
        meta.insert("experiment_id".into(), id.into());
        meta.insert("last_update_time".into(), now.into());
        meta.insert("lifecycle_stage".into(), ACTIVE.into());
        meta.insert("name".into(), name.into());
        let meta_path = dir.join(META_FILE);
        write_atomically(&dir, &meta_path, to_yaml(&meta).as_bytes(), Existing::Keep)
            .with_context(|| format!("cannot write {}", meta_path.display()))?;
        let meta = read_meta(&meta_path)?;
        get_str(&meta, "name").ok_or_else(|| anyhow!("{} has no experiment name", meta_path.display()))
    }

    /// Folders of active (root) and deleted (`.trash`) experiments, without reading them.
    fn experiment_dirs(&self) -> anyhow::Result<Vec<(PathBuf, bool)>> {
        let mut dirs = Vec::new();
        for (parent, deleted) in [(self.root.clone(), false), (self.root.join(TRASH_DIR), true)] {
            for name in subdir_names(&parent)? {
                if !name.starts_with('.') && (deleted || name != MODELS_DIR) {
                    dirs.push((parent.join(name), deleted));
                }
            }
        }
        Ok(dirs)
    }

    /// Every readable experiment, active and deleted, ordered by id. Folders without a readable
    /// `meta.yaml` are skipped (with a warning when the file exists but cannot be read).
    fn experiments(&self) -> anyhow::Result<Vec<ExperimentEntry>> {
        let mut entries = Vec::new();
        for (dir, in_trash) in self.experiment_dirs()? {
            let meta_path = dir.join(META_FILE);
            if !meta_path.is_file() {
                continue;
            }
            let meta = match read_meta(&meta_path) {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!("skipping experiment folder {}: {e:#}", dir.display());
                    continue;
                }
            };
            let (Some(id), Some(name)) = (get_str(&meta, "experiment_id"), get_str(&meta, "name")) else {
                tracing::warn!(
                    "skipping experiment folder {}: its meta.yaml lacks `experiment_id` or `name`",
                    dir.display()
                );
                continue;
            };
            let active = get_str(&meta, "lifecycle_stage").is_none_or(|s| s == ACTIVE);
            entries.push(ExperimentEntry {
                id,
                name,
                deleted: in_trash || !active,
            });
        }
        entries.sort_by(|a, b| (a.id.len(), &a.id).cmp(&(b.id.len(), &b.id)));
        Ok(entries)
    }

    /// The folder of a run, searched in every experiment (active and deleted) as MLflow does.
    fn run_dir(&self, run_id: &str) -> anyhow::Result<PathBuf> {
        validate_run_id(run_id)?;
        let mut cache = self.run_dirs.lock().unwrap_or_else(PoisonError::into_inner);
        // A cached folder moves when its experiment is deleted or restored: check it still holds the run.
        if let Some(dir) = cache.get(run_id) {
            if dir.join(META_FILE).is_file() {
                return Ok(dir.clone());
            }
        }
        for (experiment_dir, _) in self.experiment_dirs()? {
            let dir = experiment_dir.join(run_id);
            if dir.join(META_FILE).is_file() {
                cache.insert(run_id.to_string(), dir.clone());
                return Ok(dir);
            }
        }
        bail!("no run with id {run_id} in the tracking store {}", self.uri())
    }

    /// Read a run's folder into a record.
    fn read_run(&self, run_dir: &Path) -> anyhow::Result<(RunRecord, bool)> {
        let meta = read_run_meta(run_dir)?;
        let params = read_key_values(&run_dir.join("params"))?;
        let tags = read_key_values(&run_dir.join("tags"))?;
        let mut metrics = BTreeMap::new();
        let metrics_dir = run_dir.join("metrics");
        for key in file_keys(&metrics_dir)? {
            let points = read_metric_file(&metrics_dir.join(&key), &key)?;
            if let Some(latest) = latest_point(points) {
                metrics.insert(key, latest);
            }
        }
        let mut info = meta.info;
        if info.run_name.is_empty() {
            info.run_name = tags.get(RUN_NAME_TAG).cloned().unwrap_or_default();
        }
        let record = RunRecord {
            info,
            params,
            tags,
            metrics,
        };
        Ok((record, meta.active))
    }

    /// The folder of a run that may be written to (it exists and is not deleted).
    fn writable_run_dir(&self, run_id: &str) -> anyhow::Result<(PathBuf, RunMeta)> {
        let run_dir = self.run_dir(run_id)?;
        let meta = read_run_meta(&run_dir)?;
        if !meta.active {
            bail!("run {run_id} is deleted; restore it before logging to it");
        }
        Ok((run_dir, meta))
    }

    /// The local folder of a run's artifacts.
    fn artifact_root(&self, run_id: &str) -> anyhow::Result<PathBuf> {
        let meta = read_run_meta(&self.run_dir(run_id)?)?;
        let uri = meta.info.artifact_uri;
        file_uri_to_path(&uri).ok_or_else(|| {
            anyhow!("the artifacts of run {run_id} are at {uri}, which is not a local file URI; the file store only reaches local artifacts")
        })
    }
}

impl Tracker for FileStore {
    fn uri(&self) -> String {
        path_to_file_uri(&self.root)
    }

    fn get_or_create_experiment(&self, name: &str) -> anyhow::Result<String> {
        if name.trim().is_empty() {
            bail!("an experiment name must not be empty");
        }
        let length = name.chars().count();
        if length > MAX_EXPERIMENT_NAME_LENGTH {
            bail!("experiment name `{name}` is {length} characters long; MLflow allows at most {MAX_EXPERIMENT_NAME_LENGTH}");
        }
        let experiments = self.experiments()?;
        if let Some(active) = experiments.iter().find(|e| e.name == name && !e.deleted) {
            return Ok(active.id.clone());
        }
        if let Some(deleted) = experiments.iter().find(|e| e.name == name) {
            bail!(
                "experiment `{name}` (id {id}) is deleted in {}; restore it (`mlflow experiments restore --experiment-id {id}`) or remove it for good (`mlflow gc`)",
                self.uri(),
                id = deleted.id
            );
        }
        // Probe ids from the one the name hashes to; every process walks the same sequence, and an
        // id once taken stays taken, so racing creators of one name meet at the same id.
        let mut id = name_derived_id(name);
        loop {
            let id_text = id.to_string();
            if !self.root.join(TRASH_DIR).join(&id_text).exists() && self.claim_experiment(&id_text, name)? == name {
                return Ok(id_text);
            }
            id = DERIVED_ID_MIN + (id - DERIVED_ID_MIN + 1) % DERIVED_ID_SPAN;
        }
    }

    fn list_experiments(&self) -> anyhow::Result<Vec<ExperimentInfo>> {
        Ok(self
            .experiments()?
            .into_iter()
            .filter(|e| !e.deleted)
            .map(|e| ExperimentInfo {
                experiment_id: e.id,
                name: e.name,
            })
            .collect())
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> anyhow::Result<RunInfo> {
        let run_id = uuid::Uuid::new_v4().simple().to_string();
        self.create_run_with_id(experiment_id, &run_id, run_name, start_time, tags)
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> anyhow::Result<()> {
        let batch_params = check_batch(run_id, metrics, params, tags)?;
        let (run_dir, _) = self.writable_run_dir(run_id)?;

        // Check every param before writing anything, so that a conflicting batch logs nothing.
        let mut new_params = Vec::new();
        for (key, value) in batch_params {
            match read_existing_value(&run_dir, "params", key)? {
                Some(old) if old == value => {}
                Some(old) => return Err(param_conflict(run_id, key, &old, value)),
                None => new_params.push((key, value)),
            }
        }
        for (key, value) in new_params {
            if !write_key_value(&run_dir, "params", key, value, Existing::Keep)? {
                // Another writer logged this param between the check and the write.
                let old = read_existing_value(&run_dir, "params", key)?.unwrap_or_default();
                if old != value {
                    return Err(param_conflict(run_id, key, &old, value));
                }
            }
        }
        for (key, value) in tags {
            write_key_value(&run_dir, "tags", key, value, Existing::Replace)?;
        }

        let mut lines: BTreeMap<&str, String> = BTreeMap::new();
        for point in metrics {
            let line = format!(
                "{} {} {}\n",
                point.timestamp,
                format_metric_value(point.value),
                point.step
            );
            lines.entry(&point.key).or_default().push_str(&line);
        }
        for (key, text) in lines {
            let path = key_path(&run_dir.join("metrics"), key);
            create_parent(&path, "metric", key, run_id)?;
            // One append per key: O_APPEND writes of a few lines do not interleave with other writers.
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut file| file.write_all(text.as_bytes()))
                .with_context(|| format!("cannot append metric `{key}` of run {run_id} to {}", path.display()))?;
        }
        Ok(())
    }

    fn log_artifact(&self, run_id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let parts = artifact_parts(path)?;
        if parts.is_empty() {
            bail!("an artifact path must name a file (got `{path}`)");
        }
        self.writable_run_dir(run_id)?;
        let target = parts.iter().fold(self.artifact_root(run_id)?, |p, part| p.join(part));
        let parent = target.parent().expect("an artifact path has at least one component");
        fs::create_dir_all(parent).with_context(|| {
            format!(
                "cannot create folder {} for artifact `{path}` of run {run_id}",
                parent.display()
            )
        })?;
        if target.is_dir() {
            bail!("cannot write artifact `{path}` of run {run_id}: it is a folder of artifacts");
        }
        write_atomically(parent, &target, bytes, Existing::Replace)
            .with_context(|| format!("cannot write artifact `{path}` of run {run_id} to {}", target.display()))?;
        Ok(())
    }

    fn list_artifacts(&self, run_id: &str, path: Option<&str>) -> anyhow::Result<Vec<ArtifactEntry>> {
        let parts = artifact_parts(path.unwrap_or(""))?;
        let dir = parts.iter().fold(self.artifact_root(run_id)?, |p, part| p.join(part));
        if !dir.is_dir() {
            // As MLflow: listing a file or a missing folder gives nothing.
            return Ok(Vec::new());
        }
        let prefix: String = parts.iter().map(|p| format!("{p}/")).collect();
        let mut entries = Vec::new();
        let read = fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in read {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TMP_PREFIX) {
                continue;
            }
            let metadata =
                fs::metadata(entry.path()).with_context(|| format!("cannot read {}", entry.path().display()))?;
            entries.push(ArtifactEntry {
                path: format!("{prefix}{name}"),
                is_dir: metadata.is_dir(),
                file_size: metadata.is_file().then_some(metadata.len()),
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    fn read_artifact(&self, run_id: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        let parts = artifact_parts(path)?;
        let target = parts.iter().fold(self.artifact_root(run_id)?, |p, part| p.join(part));
        if parts.is_empty() || !target.is_file() {
            bail!(
                "run {run_id} has no artifact file `{path}` (looked for {})",
                target.display()
            );
        }
        fs::read(&target)
            .with_context(|| format!("cannot read artifact `{path}` of run {run_id} ({})", target.display()))
    }

    fn set_terminated(&self, run_id: &str, status: RunStatus, end_time: i64) -> anyhow::Result<()> {
        if !status.is_terminal() {
            bail!(
                "cannot end run {run_id} with status {}: use FINISHED, FAILED or KILLED",
                status.as_str()
            );
        }
        self.set_status(run_id, status, Some(end_time))
    }

    fn reopen_run(&self, run_id: &str) -> anyhow::Result<()> {
        self.set_status(run_id, RunStatus::Running, None)
    }

    fn get_run(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let run_dir = self.run_dir(run_id)?;
        Ok(self.read_run(&run_dir)?.0)
    }

    fn metric_history(&self, run_id: &str, key: &str) -> anyhow::Result<Vec<MetricPoint>> {
        validate_key("metric", key)?;
        let path = key_path(&self.run_dir(run_id)?.join("metrics"), key);
        if !path.is_file() {
            return Ok(Vec::new());
        }
        read_metric_file(&path, key)
    }

    fn search_runs(&self, experiment_ids: &[String]) -> anyhow::Result<Vec<RunRecord>> {
        let mut runs = Vec::new();
        for experiment_id in experiment_ids {
            // MLflow's experiment-id rule; it also keeps the id a single folder name.
            let valid_id = experiment_id.starts_with(|c: char| c.is_ascii_alphanumeric())
                && experiment_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let experiment_dir = [
                self.root.join(experiment_id),
                self.root.join(TRASH_DIR).join(experiment_id),
            ]
            .into_iter()
            .find(|dir| valid_id && dir.join(META_FILE).is_file())
            .ok_or_else(|| {
                anyhow!(
                    "no experiment with id {experiment_id} in the tracking store {}",
                    self.uri()
                )
            })?;
            for name in subdir_names(&experiment_dir)? {
                let run_dir = experiment_dir.join(&name);
                if name.starts_with('.')
                    || RESERVED_EXPERIMENT_FOLDERS.contains(&name.as_str())
                    || !run_dir.join(META_FILE).is_file()
                {
                    continue;
                }
                match self.read_run(&run_dir) {
                    Ok((record, true)) => {
                        self.run_dirs
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(record.info.run_id.clone(), run_dir);
                        runs.push(record);
                    }
                    Ok((_, false)) => {}
                    Err(e) => {
                        tracing::warn!("skipping run folder {}: {e:#}", run_dir.display())
                    }
                }
            }
        }
        runs.sort_by(|a, b| (b.info.start_time, &b.info.run_id).cmp(&(a.info.start_time, &a.info.run_id)));
        Ok(runs)
    }
}

/// The 18-digit experiment id a name hashes to (SHA-256, so it is the same in every process and
/// every build).
fn name_derived_id(name: &str) -> u64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    DERIVED_ID_MIN + u64::from_be_bytes(head) % DERIVED_ID_SPAN
}

/// The error for a param logged again with another value.
fn param_conflict(run_id: &str, key: &str, old: &str, new: &str) -> anyhow::Error {
    anyhow!("param `{key}` of run {run_id} is already logged with value {old:?}; it cannot change to {new:?} (params are write-once, as in MLflow)")
}

/// Check a run id the way MLflow does (it becomes a folder name).
fn validate_run_id(run_id: &str) -> anyhow::Result<()> {
    let mut chars = run_id.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && run_id.len() <= 256
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        bail!(
            "`{run_id}` is not a run id (expected letters, digits, `_` and `-`, like 0123456789abcdef0123456789abcdef)"
        );
    }
    Ok(())
}

/// The file of a key under `dir` (a `/` in the key makes sub-folders).
fn key_path(dir: &Path, key: &str) -> PathBuf {
    key.split('/').fold(dir.to_path_buf(), |p, part| p.join(part))
}

/// Create the folder a key's file goes in.
fn create_parent(path: &Path, kind: &str, key: &str, run_id: &str) -> anyhow::Result<()> {
    let parent = path.parent().expect("a key path is inside the run folder");
    fs::create_dir_all(parent).with_context(|| {
        format!(
            "cannot create folder {} for {kind} `{key}` of run {run_id} (is there a {kind} named like one of its folders?)",
            parent.display()
        )
    })
}

/// Write a param or tag file (`folder` is `params` or `tags`), returning whether it was written
/// (`false` when `existing` is [`Existing::Keep`] and the key already has a file).
fn write_key_value(run_dir: &Path, folder: &str, key: &str, value: &str, existing: Existing) -> anyhow::Result<bool> {
    let kind = &folder[..folder.len() - 1];
    let run_id = run_dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let path = key_path(&run_dir.join(folder), key);
    create_parent(&path, kind, key, &run_id)?;
    if path.is_dir() {
        bail!("{kind} `{key}` of run {run_id} clashes with the {kind}s whose keys start with `{key}/`");
    }
    // The temporary file goes in the run folder, where MLflow does not look for params or tags.
    write_atomically(run_dir, &path, value.as_bytes(), existing)
        .with_context(|| format!("cannot write {kind} `{key}` of run {run_id} to {}", path.display()))
}

/// The value a param or tag file holds, if it exists.
fn read_existing_value(run_dir: &Path, folder: &str, key: &str) -> anyhow::Result<Option<String>> {
    let path = key_path(&run_dir.join(folder), key);
    if path.is_dir() {
        bail!(
            "`{key}` in {} is a folder (keys starting with `{key}/` exist), not a value",
            run_dir.join(folder).display()
        );
    }
    match fs::read_to_string(&path) {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write `bytes` to `target` through a temporary file in `tmp_dir` (same file system), so readers
/// never see a partial file. Returns whether it was written: with [`Existing::Keep`], an existing
/// target is left alone (the check and the write are one atomic step: a hard link).
fn write_atomically(tmp_dir: &Path, target: &Path, bytes: &[u8], existing: Existing) -> io::Result<bool> {
    let tmp = tmp_dir.join(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let result = fs::write(&tmp, bytes).and_then(|()| match existing {
        Existing::Replace => fs::rename(&tmp, target).map(|()| true),
        Existing::Keep => match fs::hard_link(&tmp, target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        },
    });
    if !(existing == Existing::Replace && matches!(result, Ok(true))) {
        // Best effort: the temporary file is hidden from MLflow and from artifact listings anyway.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Names of the sub-folders of `dir` (none when it does not exist).
fn subdir_names(dir: &Path) -> anyhow::Result<Vec<String>> {
    let read = match fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in read {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// Keys of the files under `dir`, recursively, with `/` between folder names (none when `dir` does
/// not exist).
fn file_keys(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = pending.pop() {
        let read = match fs::read_dir(&folder) {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", folder.display())),
        };
        for entry in read {
            let entry = entry.with_context(|| format!("cannot list {}", folder.display()))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push((entry.path(), format!("{name}/")));
            } else {
                keys.push(name);
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// Every key and value of a params or tags folder.
fn read_key_values(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for key in file_keys(dir)? {
        let path = key_path(dir, &key);
        let value = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        values.insert(key, value);
    }
    Ok(values)
}

/// Every point of a metric file, in file order. Lines have 2 (`ts value`, step 0), 3
/// (`ts value step`) or 5 (`ts value step dataset digest`) fields; values use Python's float
/// syntax (`nan`, `inf`, `1e-07`, ...) or Rust's (`NaN`).
fn read_metric_file(path: &Path, key: &str) -> anyhow::Result<Vec<MetricPoint>> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read metric file {}", path.display()))?;
    let mut points = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let parsed = match fields.as_slice() {
            [ts, value] => parse_point(ts, value, "0"),
            [ts, value, step] | [ts, value, step, _, _] => parse_point(ts, value, step),
            _ => None,
        };
        let (timestamp, value, step) = parsed.ok_or_else(|| {
            anyhow!(
                "{}:{}: malformed metric line `{line}` (expected `<timestamp ms> <value> <step>`)",
                path.display(),
                number + 1
            )
        })?;
        points.push(MetricPoint {
            key: key.to_string(),
            value,
            timestamp,
            step,
        });
    }
    Ok(points)
}

/// Parse the fields of a metric line.
fn parse_point(timestamp: &str, value: &str, step: &str) -> Option<(i64, f64, i64)> {
    Some((timestamp.parse().ok()?, value.parse().ok()?, step.parse().ok()?))
}

/// The latest point: highest step, then latest timestamp, then last written (as MLflow picks it).
fn latest_point(points: Vec<MetricPoint>) -> Option<MetricPoint> {
    points.into_iter().reduce(|best, point| {
        if (point.step, point.timestamp) >= (best.step, best.timestamp) {
            point
        } else {
            best
        }
    })
}

/// A metric value as written in a metric file: ±inf clamped to ±`f64::MAX`, NaN as `NaN`, and
/// shortest round-trip decimal otherwise (exponent form for very large or small magnitudes).
fn format_metric_value(value: f64) -> String {
    let value = value.clamp(f64::MIN, f64::MAX);
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// Read a `meta.yaml` file as a mapping.
fn read_meta(path: &Path) -> anyhow::Result<Mapping> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("{} is not a YAML mapping", path.display()))
}

/// Read a run's `meta.yaml`.
fn read_run_meta(run_dir: &Path) -> anyhow::Result<RunMeta> {
    let path = run_dir.join(META_FILE);
    let map = read_meta(&path)?;
    let missing = |field: &str| anyhow!("{} has no `{field}`", path.display());
    let run_id = get_str(&map, "run_id")
        .or_else(|| get_str(&map, "run_uuid"))
        .ok_or_else(|| missing("run_id"))?;
    let code = get_int(&map, "status").unwrap_or(RunStatus::Running.code());
    let status =
        RunStatus::from_code(code).ok_or_else(|| anyhow!("{}: unknown run status code {code}", path.display()))?;
    let info = RunInfo {
        run_id,
        experiment_id: get_str(&map, "experiment_id").ok_or_else(|| missing("experiment_id"))?,
        run_name: get_str(&map, "run_name").unwrap_or_default(),
        status,
        start_time: get_int(&map, "start_time").unwrap_or(0),
        end_time: get_int(&map, "end_time"),
        artifact_uri: get_str(&map, "artifact_uri").ok_or_else(|| missing("artifact_uri"))?,
    };
    let active = get_str(&map, "lifecycle_stage").is_none_or(|s| s == ACTIVE);
    Ok(RunMeta { map, info, active })
}

/// A string field of a mapping (numbers are turned into text, as MLflow does for legacy ids).
fn get_str(map: &Mapping, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An integer field of a mapping.
fn get_int(map: &Mapping, key: &str) -> Option<i64> {
    match map.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A mapping as block YAML, keys sorted, with every string double-quoted.
fn to_yaml(map: &Mapping) -> String {
    let mut entries: Vec<(String, &Value)> = map.iter().map(|(k, v)| (yaml_key(k), v)).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
        .into_iter()
        .map(|(k, v)| format!("{k}: {}\n", yaml_flow(v)))
        .collect()
}

/// A mapping key: plain when it is an identifier (as all MLflow fields are), quoted otherwise.
fn yaml_key(key: &Value) -> String {
    match key {
        Value::String(s)
            if s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            s.clone()
        }
        other => yaml_flow(other),
    }
}

/// A value in YAML flow style, with plain identifiers as keys and double-quoted strings.
fn yaml_flow(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => yaml_quote(s),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(yaml_flow).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_key(k), yaml_flow(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Tagged(tagged) => format!("{} {}", tagged.tag, yaml_flow(&tagged.value)),
    }
}

/// A string as a YAML double-quoted scalar. Control characters, line separators and the byte
/// order mark are escaped, so that PyYAML (which rejects some raw characters and folds raw line
/// breaks) reads the exact string back.
fn yaml_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}') => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `file://` URI of an absolute path, percent-encoded as Python's `Path.as_uri` does.
fn path_to_file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// The local path a `file:` URI names (`None` for other schemes, remote hosts or bad encoding).
fn file_uri_to_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file:")?;
    let encoded = match rest.strip_prefix("//") {
        Some(after) => {
            let slash = after.find('/')?;
            if !matches!(&after[..slash], "" | "localhost") {
                return None;
            }
            &after[slash..]
        }
        None => rest,
    };
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(byte) = input.next() {
        if byte == b'%' {
            let hex = [input.next()?, input.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(byte);
        }
    }
    Some(PathBuf::from(String::from_utf8(bytes).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_values_are_written_as_python_reads_them() {
        assert_eq!(format_metric_value(1.0), "1");
        assert_eq!(format_metric_value(0.5), "0.5");
        assert_eq!(format_metric_value(-0.25), "-0.25");
        assert_eq!(format_metric_value(1e-7), "1e-7");
        assert_eq!(format_metric_value(f64::INFINITY), "1.7976931348623157e308");
        assert_eq!(format_metric_value(f64::NEG_INFINITY), "-1.7976931348623157e308");
        assert_eq!(format_metric_value(f64::NAN), "NaN");
        assert_eq!(format_metric_value(0.0), "0");
        for v in [0.1, 1.0 / 3.0, 12345.678, 1e20, -3e-300] {
            assert_eq!(format_metric_value(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn metric_lines_in_python_syntax_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        fs::write(
            &path,
            "1 nan 0\n2 inf 1\n3 -inf 2\n4 1e-07\n5 0.5 7 ds digest\n\n6 NaN 8\n",
        )
        .unwrap();
        let points = read_metric_file(&path, "m").unwrap();
        let summary: Vec<(i64, i64)> = points.iter().map(|p| (p.timestamp, p.step)).collect();
        assert_eq!(summary, [(1, 0), (2, 1), (3, 2), (4, 0), (5, 7), (6, 8)]);
        assert!(points[0].value.is_nan() && points[5].value.is_nan());
        assert_eq!(points[1].value, f64::INFINITY);
        assert_eq!(points[2].value, f64::NEG_INFINITY);
        assert_eq!(points[3].value, 1e-7);
        assert_eq!(points[4].value, 0.5);

        fs::write(&path, "1 0.5 0\n1 2 3 4\n").unwrap();
        let err = read_metric_file(&path, "m").unwrap_err().to_string();
        assert!(err.contains(":2: malformed metric line `1 2 3 4`"), "{err}");
    }

    #[test]
    fn latest_point_prefers_step_then_time_then_order() {
        let point = |value, timestamp, step| MetricPoint {
            key: "k".into(),
            value,
            timestamp,
            step,
        };
        let latest = latest_point(vec![
            point(1.0, 5, 2),
            point(2.0, 1, 3),
            point(3.0, 1, 3),
            point(4.0, 9, 1),
        ])
        .unwrap();
        assert_eq!(latest.value, 3.0);
        assert!(latest_point(Vec::new()).is_none());
    }

    #[test]
    fn yaml_strings_are_quoted_and_read_back_exactly() {
        for text in [
            "plain",
            "seed: 42 \"quoted\" 'single'",
            "multi\nline\ttab\r",
            "back\\slash",
            "ünïcode ✓ 🙂",
            "\u{85}\u{2028}\u{feff}\u{7}",
            "",
            "null",
            "123",
        ] {
            let mut map = Mapping::new();
            map.insert("name".into(), text.into());
            let yaml = to_yaml(&map);
            assert!(yaml.starts_with("name: \""), "{yaml}");
            let back: Mapping = serde_norway::from_str(&yaml).unwrap();
            assert_eq!(get_str(&back, "name").as_deref(), Some(text), "{yaml}");
        }
    }

    #[test]
    fn yaml_keeps_other_value_kinds() {
        let mut map = Mapping::new();
        map.insert("b".into(), Value::Null);
        map.insert("a".into(), 4i64.into());
        map.insert("c".into(), Value::Sequence(Vec::new()));
        map.insert("d".into(), true.into());
        map.insert("odd key".into(), "v".into());
        assert_eq!(to_yaml(&map), "\"odd key\": \"v\"\na: 4\nb: null\nc: []\nd: true\n");
    }

    #[test]
    fn file_uris_round_trip() {
        for path in ["/tmp/plain", "/tmp/with space/and%percent", "/tmp/ünï:code#?"] {
            let uri = path_to_file_uri(Path::new(path));
            assert!(uri.starts_with("file:///"), "{uri}");
            assert_eq!(file_uri_to_path(&uri), Some(PathBuf::from(path)), "{uri}");
        }
        assert_eq!(path_to_file_uri(Path::new("/a b")), "file:///a%20b");
        assert_eq!(file_uri_to_path("file://localhost/x/y"), Some(PathBuf::from("/x/y")));
        assert_eq!(file_uri_to_path("file:rel/dir"), Some(PathBuf::from("rel/dir")));
        assert_eq!(file_uri_to_path("file://server/share"), None);
        assert_eq!(file_uri_to_path("http://x/y"), None);
        assert_eq!(file_uri_to_path("file:///bad%zz"), None);
    }

    #[test]
    fn keys_follow_mlflow_rules() {
        for good in ["lr", "optim/name", "test_auc", "a b", "x-y.z", "a..b", "ünï"] {
            validate_key("param", good).unwrap();
        }
        for bad in [
            "", "/abs", "a/", "a//b", "./a", "a/./b", "..", "../x", "a/../b", "..a", "a:b", "a\\b", "a\nb", "a*b",
        ] {
            assert!(validate_key("param", bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_key("param", &"k".repeat(250)).is_ok());
        let err = validate_key("param", &"k".repeat(251)).unwrap_err().to_string();
        assert!(err.contains("251 characters"), "{err}");
    }

    #[test]
    fn run_ids_are_checked_before_touching_paths() {
        validate_run_id("0123456789abcdef0123456789abcdef").unwrap();
        for bad in ["", "../x", "a/b", "-a", ".trash"] {
            assert!(validate_run_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn derived_ids_have_18_digits_and_are_stable() {
        let id = name_derived_id("fairclip");
        assert_eq!(id.to_string().len(), 18);
        assert_eq!(id, name_derived_id("fairclip"));
        assert_ne!(id, name_derived_id("fairclip2"));
    }
}
