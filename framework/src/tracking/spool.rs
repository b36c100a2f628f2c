//! Runs that outlive a tracking server's outage. [`SpoolingStore`] puts a tracking server's store
//! (the REST store) in front of an embedded [`FileStore`], the spool: while the server answers,
//! everything goes to it; once a request has failed through every retry ([`is_server_unavailable`]),
//! the store is offline for the rest of the process, and each run that logs anything more is
//! mirrored into the spool under its own id, marked for sync, and goes on there. `fairlab runs
//! sync` ([`sync`](super::sync)) replays the spooled part to the server later.
//!
//! What reached the server stays there and is not spooled again; what the spool holds is exactly
//! what the server may not have: every batch that failed (it may have been committed before the
//! connection broke; re-sending an identical metric point is idempotent on MLflow's SQL store, and
//! params and tags are re-sent with the same values) and everything logged afterwards.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::rest::client::is_server_unavailable;
use super::{
    ArtifactEntry, ExperimentInfo, FileStore, MetricPoint, RunInfo, RunRecord, RunStatus, Tracker, RUN_NAME_TAG,
};

/// Tag of a spooled run: the tracking server it belongs to.
pub const SERVER_TAG: &str = "fairlab.spool.server";
/// Tag of a spooled run: its id on the server (absent while a run created offline has not been
/// synced yet).
pub const SERVER_RUN_ID_TAG: &str = "fairlab.spool.server_run_id";
/// Tag of a spooled run: the name of its experiment on the server.
pub const SERVER_EXPERIMENT_TAG: &str = "fairlab.spool.experiment";
/// Tag of a spooled run: [`PENDING`] until `fairlab runs sync` has replayed it, then [`SYNCED`].
pub const STATE_TAG: &str = "fairlab.spool.state";
/// Tag of a synced run: when it was synced (Unix milliseconds).
pub const SYNCED_AT_TAG: &str = "fairlab.spool.synced_at";
/// Prefix of the spool's own tags, which are never sent to the server.
pub const TAG_PREFIX: &str = "fairlab.spool.";
/// [`STATE_TAG`] of a run waiting to be synced.
pub const PENDING: &str = "pending";
/// [`STATE_TAG`] of a synced run.
pub const SYNCED: &str = "synced";

/// The spool's folder: `$FAIRLAB_SPOOL_DIR`, else `$XDG_DATA_HOME/fairlab/spool`, else
/// `~/.local/share/fairlab/spool`, else `.fairlab/spool`.
pub fn default_spool_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("FAIRLAB_SPOOL_DIR")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("fairlab/spool")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/fairlab/spool")))
        .unwrap_or_else(|| PathBuf::from(".fairlab/spool"))
}

/// What the spool needs to mirror a run the server created.
#[derive(Debug, Clone)]
struct Origin {
    /// The run's experiment's id on the server (its name is looked up when the run is mirrored).
    experiment_id: String,
    /// The run's name.
    run_name: String,
    /// When the run started (Unix milliseconds).
    start_time: i64,
}

/// The spool's side of the store, behind one lock so that concurrent senders mirror a run once.
#[derive(Default)]
struct Spool {
    /// The spool's file store, opened on the first outage.
    store: Option<Arc<FileStore>>,
    /// Runs living in the spool (mirrored, or created there while offline).
    runs: HashSet<String>,
    /// Experiments handed out by the spool while offline: names by id.
    experiments: HashMap<String, String>,
}

/// A tracking server's store with an offline spool (see the module documentation).
pub struct SpoolingStore {
    /// The server's store.
    primary: Arc<dyn Tracker>,
    /// The spool's folder (a [`FileStore`] root).
    dir: PathBuf,
    /// Whether the server was found unavailable (for good, in this process).
    offline: AtomicBool,
    /// Names of the server's experiments seen, by id.
    experiments: Mutex<HashMap<String, String>>,
    /// Runs created or read through this store, by id.
    origins: Mutex<HashMap<String, Origin>>,
    /// The spool.
    spool: Mutex<Spool>,
}

impl SpoolingStore {
    /// `primary` (a server's store) spooling to the file store at `dir` during an outage.
    pub fn new(primary: Arc<dyn Tracker>, dir: impl AsRef<Path>) -> SpoolingStore {
        SpoolingStore {
            primary,
            dir: dir.as_ref().to_path_buf(),
            offline: AtomicBool::new(false),
            experiments: Mutex::default(),
            origins: Mutex::default(),
            spool: Mutex::default(),
        }
    }

    /// Whether the server was found unavailable and runs now go to the spool.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// Whether `run_id` lives in the spool now.
    pub fn is_spooled(&self, run_id: &str) -> bool {
        self.lock_spool().runs.contains(run_id)
    }

    fn lock_spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spool_store(&self, spool: &mut Spool) -> anyhow::Result<Arc<FileStore>> {
        if let Some(store) = &spool.store {
            return Ok(store.clone());
        }
        let store = Arc::new(FileStore::open(&self.dir).map_err(|e| {
            e.context(format!(
                "the tracking server {} is unavailable and the offline spool {} cannot be opened",
                self.primary.uri(),
                self.dir.display()
            ))
        })?);
        spool.store = Some(store.clone());
        Ok(store)
    }

    /// Record an outage: warn once, and send everything to the spool from now on.
    fn go_offline(&self, error: &anyhow::Error) {
        if !self.offline.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "the tracking server {} is unavailable ({error:#}); runs go on and are logged to the offline spool {} \
                 (`fairlab runs sync` sends them to the server once it is back)",
                self.primary.uri(),
                self.dir.display()
            );
        }
    }

    /// Run `online` against the server unless the run is spooled or the store offline; on an
    /// outage (or then), run `spooled` against the spool, mirroring the run there first.
    fn route<T>(
        &self,
        run_id: &str,
        online: impl FnOnce(&dyn Tracker) -> anyhow::Result<T>,
        spooled: impl FnOnce(&FileStore) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        if !self.is_offline() && !self.is_spooled(run_id) {
            match online(self.primary.as_ref()) {
                Err(e) if is_server_unavailable(&e) => self.go_offline(&e),
                other => return other,
            }
        }
        let store = self.mirror(run_id)?;
        spooled(&store)
    }

    /// The spool's store, holding `run_id` (mirrored from what this store knows of the run when it
    /// is not there yet).
    fn mirror(&self, run_id: &str) -> anyhow::Result<Arc<FileStore>> {
        let mut spool = self.lock_spool();
        let store = self.spool_store(&mut spool)?;
        if spool.runs.contains(run_id) {
            return Ok(store);
        }
        let origin = self
            .origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .cloned()
            .unwrap_or_else(|| Origin {
                experiment_id: String::new(),
                run_name: String::new(),
                start_time: super::now_ms(),
            });
        let experiment = match origin.experiment_id.as_str() {
            "" => "Default".to_string(),
            id => self.experiment_name(id).unwrap_or_else(|| format!("experiment {id}")),
        };
        let experiment_id = store.get_or_create_experiment(&experiment)?;
        let mut tags = vec![
            (SERVER_TAG.to_string(), self.primary.uri()),
            (SERVER_RUN_ID_TAG.to_string(), run_id.to_string()),
            (SERVER_EXPERIMENT_TAG.to_string(), experiment),
            (STATE_TAG.to_string(), PENDING.to_string()),
        ];
        if !origin.run_name.is_empty() {
            tags.push((RUN_NAME_TAG.to_string(), origin.run_name.clone()));
        }
        if store.get_run(run_id).is_ok() {
            // Spooled by an earlier process (and perhaps synced since): it continues there and is
            // pending again; what it held already is sent again, which changes nothing on the server.
            store.reopen_run(run_id)?;
            store.log_batch(run_id, &[], &[], &[(STATE_TAG.to_string(), PENDING.to_string())])?;
        } else {
            store.create_run_with_id(&experiment_id, run_id, &origin.run_name, origin.start_time, &tags)?;
        }
        spool.runs.insert(run_id.to_string());
        tracing::warn!(
            "run {run_id} continues in the offline spool {} (`fairlab runs sync` sends it to {})",
            self.dir.display(),
            self.primary.uri()
        );
        Ok(store)
    }

    /// The name of the server experiment `experiment_id`, when seen.
    fn experiment_name(&self, experiment_id: &str) -> Option<String> {
        self.experiments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(experiment_id)
            .cloned()
    }

    /// Remember what the spool needs to mirror the run `info` describes.
    fn remember_origin(&self, info: &RunInfo) {
        self.origins.lock().unwrap_or_else(PoisonError::into_inner).insert(
            info.run_id.clone(),
            Origin {
                experiment_id: info.experiment_id.clone(),
                run_name: info.run_name.clone(),
                start_time: info.start_time,
            },
        );
    }

    /// Create a run in the spool (the server being unavailable) in the experiment named `experiment`.
    fn create_spooled_run(
        &self,
        experiment: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> anyhow::Result<RunInfo> {
        let mut spool = self.lock_spool();
        let store = self.spool_store(&mut spool)?;
        let experiment_id = store.get_or_create_experiment(experiment)?;
        let mut all_tags = tags.to_vec();
        all_tags.extend([
            (SERVER_TAG.to_string(), self.primary.uri()),
            (SERVER_EXPERIMENT_TAG.to_string(), experiment.to_string()),
            (STATE_TAG.to_string(), PENDING.to_string()),
        ]);
        let info = store.create_run(&experiment_id, run_name, start_time, &all_tags)?;
        spool.runs.insert(info.run_id.clone());
        tracing::warn!(
            "run {} was created in the offline spool {} (`fairlab runs sync` creates it on {} later)",
            info.run_id,
            self.dir.display(),
            self.primary.uri()
        );
        Ok(info)
    }

    /// A read: from the server; from the spool when that fails and the run is spooled (the spool
    /// holds only what the server may lack, so a read of a run the server has goes there).
    fn read<T>(
        &self,
        run_id: &str,
        server: impl FnOnce(&dyn Tracker) -> anyhow::Result<T>,
        spooled: impl FnOnce(&FileStore) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let error = match server(self.primary.as_ref()) {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        let spool = {
            let spool = self.lock_spool();
            spool.runs.contains(run_id).then(|| spool.store.clone()).flatten()
        };
        match spool {
            Some(store) => spooled(&store),
            None => Err(error),
        }
    }
}

impl Tracker for SpoolingStore {
    fn uri(&self) -> String {
        self.primary.uri()
    }

    fn get_or_create_experiment(&self, name: &str) -> anyhow::Result<String> {
        if !self.is_offline() {
            match self.primary.get_or_create_experiment(name) {
                Ok(id) => {
                    self.experiments
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id.clone(), name.to_string());
                    return Ok(id);
                }
                Err(e) if is_server_unavailable(&e) => self.go_offline(&e),
                Err(e) => return Err(e),
            }
        }
        let mut spool = self.lock_spool();
        let id = self.spool_store(&mut spool)?.get_or_create_experiment(name)?;
        spool.experiments.insert(id.clone(), name.to_string());
        Ok(id)
    }

    fn list_experiments(&self) -> anyhow::Result<Vec<ExperimentInfo>> {
        let all = self.primary.list_experiments()?;
        self.experiments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(all.iter().map(|e| (e.experiment_id.clone(), e.name.clone())));
        Ok(all)
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> anyhow::Result<RunInfo> {
        let spooled_experiment = self.lock_spool().experiments.get(experiment_id).cloned();
        if let Some(name) = spooled_experiment {
            return self.create_spooled_run(&name, run_name, start_time, tags);
        }
        if !self.is_offline() {
            match self.primary.create_run(experiment_id, run_name, start_time, tags) {
                Ok(info) => {
                    self.remember_origin(&info);
                    return Ok(info);
                }
                Err(e) if is_server_unavailable(&e) => self.go_offline(&e),
                Err(e) => return Err(e),
            }
        }
        let experiment = self
            .experiment_name(experiment_id)
            .unwrap_or_else(|| format!("experiment {experiment_id}"));
        self.create_spooled_run(&experiment, run_name, start_time, tags)
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> anyhow::Result<()> {
        self.route(
            run_id,
            |server| server.log_batch(run_id, metrics, params, tags),
            |spool| spool.log_batch(run_id, metrics, params, tags),
        )
    }

    fn log_artifact(&self, run_id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.route(
            run_id,
            |server| server.log_artifact(run_id, path, bytes),
            |spool| spool.log_artifact(run_id, path, bytes),
        )
    }

    fn list_artifacts(&self, run_id: &str, path: Option<&str>) -> anyhow::Result<Vec<ArtifactEntry>> {
        self.read(
            run_id,
            |server| server.list_artifacts(run_id, path),
            |spool| spool.list_artifacts(run_id, path),
        )
    }

    fn read_artifact(&self, run_id: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        self.read(
            run_id,
            |server| server.read_artifact(run_id, path),
            |spool| spool.read_artifact(run_id, path),
        )
    }

    fn set_terminated(&self, run_id: &str, status: RunStatus, end_time: i64) -> anyhow::Result<()> {
        self.route(
            run_id,
            |server| server.set_terminated(run_id, status, end_time),
            |spool| {
                spool.set_terminated(run_id, status, end_time)?;
                tracing::warn!(
                    "run {run_id} ended {} in the offline spool {}: run `fairlab runs sync` once {} is back",
                    status.as_str(),
                    self.dir.display(),
                    self.primary.uri()
                );
                Ok(())
            },
        )
    }

    fn reopen_run(&self, run_id: &str) -> anyhow::Result<()> {
        self.primary.reopen_run(run_id)?;
        // A reopened run may be mirrored later, when its experiment's name cannot be asked for.
        let experiment_id = self
            .origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .map(|o| o.experiment_id.clone());
        if experiment_id.is_some_and(|id| self.experiment_name(&id).is_none()) {
            if let Err(e) = self.list_experiments() {
                tracing::debug!("cannot list the experiments of {}: {e:#}", self.primary.uri());
            }
        }
        Ok(())
    }

    fn get_run(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let record = self.read(run_id, |server| server.get_run(run_id), |spool| spool.get_run(run_id))?;
        // A run read to be resumed may be mirrored later: remember what the spool needs.
        self.remember_origin(&record.info);
        Ok(record)
    }

    fn metric_history(&self, run_id: &str, key: &str) -> anyhow::Result<Vec<MetricPoint>> {
        self.read(
            run_id,
            |server| server.metric_history(run_id, key),
            |spool| spool.metric_history(run_id, key),
        )
    }

    fn search_runs(&self, experiment_ids: &[String]) -> anyhow::Result<Vec<RunRecord>> {
        self.primary.search_runs(experiment_ids)
    }

    fn max_in_flight(&self) -> usize {
        self.primary.max_in_flight()
    }

    fn spooled_to(&self, run_id: &str) -> Option<PathBuf> {
        self.is_spooled(run_id).then(|| self.dir.clone())
    }
}

impl std::fmt::Debug for SpoolingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolingStore")
            .field("server", &self.primary.uri())
            .field("spool", &self.dir)
            .field("offline", &self.is_offline())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    //! The spool and its sync against a stand-in server: a file store that can be switched to
    //! answer every call as an outage (the real server is killed and restarted in
    //! tests/mlflow_server_cli.rs).

    use super::*;
    use crate::tracking::rest::client::ServerUnavailable;
    use crate::tracking::sync::{pending_runs, sync_run};
    use crate::tracking::ActiveRun;

    /// A file store playing a server that can go down, or refuse metrics (a 400, not an outage).
    struct Server {
        store: FileStore,
        down: AtomicBool,
        refuse_metrics: AtomicBool,
    }

    impl Server {
        fn up<T>(&self, call: impl FnOnce(&FileStore) -> anyhow::Result<T>) -> anyhow::Result<T> {
            if self.down.load(Ordering::SeqCst) {
                return Err(anyhow::Error::new(ServerUnavailable {
                    request: "POST http://127.0.0.1:9/api/2.0/mlflow/x".to_string(),
                    tries: 3,
                }));
            }
            call(&self.store)
        }
    }

    impl Tracker for Server {
        fn uri(&self) -> String {
            "http://127.0.0.1:9".to_string()
        }
        fn get_or_create_experiment(&self, name: &str) -> anyhow::Result<String> {
            self.up(|s| s.get_or_create_experiment(name))
        }
        fn list_experiments(&self) -> anyhow::Result<Vec<ExperimentInfo>> {
            self.up(|s| s.list_experiments())
        }
        fn create_run(&self, e: &str, n: &str, t: i64, tags: &[(String, String)]) -> anyhow::Result<RunInfo> {
            self.up(|s| s.create_run(e, n, t, tags))
        }
        fn log_batch(
            &self,
            id: &str,
            m: &[MetricPoint],
            p: &[(String, String)],
            t: &[(String, String)],
        ) -> anyhow::Result<()> {
            if !m.is_empty() && self.refuse_metrics.load(Ordering::SeqCst) {
                anyhow::bail!("POST http://127.0.0.1:9/api/2.0/mlflow/runs/log-batch answered 400: no");
            }
            self.up(|s| s.log_batch(id, m, p, t))
        }
        fn log_artifact(&self, id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
            self.up(|s| s.log_artifact(id, path, bytes))
        }
        fn list_artifacts(&self, id: &str, path: Option<&str>) -> anyhow::Result<Vec<ArtifactEntry>> {
            self.up(|s| s.list_artifacts(id, path))
        }
        fn read_artifact(&self, id: &str, path: &str) -> anyhow::Result<Vec<u8>> {
            self.up(|s| s.read_artifact(id, path))
        }
        fn set_terminated(&self, id: &str, status: RunStatus, end: i64) -> anyhow::Result<()> {
            self.up(|s| s.set_terminated(id, status, end))
        }
        fn reopen_run(&self, id: &str) -> anyhow::Result<()> {
            self.up(|s| s.reopen_run(id))
        }
        fn get_run(&self, id: &str) -> anyhow::Result<RunRecord> {
            self.up(|s| s.get_run(id))
        }
        fn metric_history(&self, id: &str, key: &str) -> anyhow::Result<Vec<MetricPoint>> {
            self.up(|s| s.metric_history(id, key))
        }
        fn search_runs(&self, ids: &[String]) -> anyhow::Result<Vec<RunRecord>> {
            self.up(|s| s.search_runs(ids))
        }
        fn max_in_flight(&self) -> usize {
            4
        }
    }

    fn setup() -> (tempfile::TempDir, Arc<Server>, Arc<SpoolingStore>) {
        let dir = tempfile::tempdir().unwrap();
        let server = Arc::new(Server {
            store: FileStore::open(dir.path().join("server")).unwrap(),
            down: AtomicBool::new(false),
            refuse_metrics: AtomicBool::new(false),
        });
        let store = Arc::new(SpoolingStore::new(server.clone(), dir.path().join("spool")));
        (dir, server, store)
    }

    fn steps(store: &dyn Tracker, run_id: &str, key: &str) -> Vec<i64> {
        let mut steps: Vec<i64> = store
            .metric_history(run_id, key)
            .unwrap()
            .iter()
            .map(|p| p.step)
            .collect();
        steps.sort_unstable();
        steps
    }

    #[test]
    fn an_outage_mid_run_is_spooled_and_sync_completes_the_run_without_gap_or_duplicate() {
        let (dir, server, store) = setup();
        let run = ActiveRun::start(store.clone(), "exp", "outage", Vec::new()).unwrap();
        let id = run.id().to_string();
        run.log_params(&[("lr".to_string(), "0.1".to_string())]).unwrap();
        for step in 0..500 {
            run.log_metric("loss", step as f64, step).unwrap();
        }
        run.flush().unwrap();
        server.down.store(true, Ordering::SeqCst);
        for step in 500..1200 {
            run.log_metric("loss", step as f64, step).unwrap();
        }
        run.log_metric("acc", f64::NAN, 3).unwrap();
        run.set_tags(&[("phase".to_string(), "after".to_string())]).unwrap();
        run.log_artifact("nested/metrics.json", b"{}").unwrap();
        run.finish().unwrap();
        assert!(store.is_offline() && store.is_spooled(&id));

        // The server has the first part, the spool the rest, and nothing is in both.
        server.down.store(false, Ordering::SeqCst);
        assert_eq!(steps(&server.store, &id, "loss"), (0..500).collect::<Vec<_>>());
        assert_eq!(server.store.get_run(&id).unwrap().info.status, RunStatus::Running);
        let spool = FileStore::open(dir.path().join("spool")).unwrap();
        assert_eq!(steps(&spool, &id, "loss"), (500..1200).collect::<Vec<_>>());

        let pending = pending_runs(&spool).unwrap();
        assert_eq!(pending.len(), 1);
        let synced = sync_run(&spool, &pending[0], server.as_ref()).unwrap();
        assert_eq!((synced.server_run_id.as_str(), synced.created), (id.as_str(), false));
        assert_eq!((synced.metric_points, synced.artifacts), (701, 1));

        let record = server.store.get_run(&id).unwrap();
        assert_eq!(record.info.status, RunStatus::Finished);
        assert_eq!(steps(&server.store, &id, "loss"), (0..1200).collect::<Vec<_>>());
        assert!(server.store.metric_history(&id, "acc").unwrap()[0].value.is_nan());
        assert_eq!(record.params["lr"], "0.1");
        assert_eq!(record.tags["phase"], "after");
        assert!(
            !record.tags.keys().any(|k| k.starts_with(TAG_PREFIX)),
            "spool tags stay local"
        );
        assert_eq!(server.store.read_artifact(&id, "nested/metrics.json").unwrap(), b"{}");
        assert!(
            pending_runs(&spool).unwrap().is_empty(),
            "a synced run is not pending any more"
        );
    }

    #[test]
    fn a_run_started_during_an_outage_is_created_on_the_server_by_the_sync() {
        let (dir, server, store) = setup();
        server.down.store(true, Ordering::SeqCst);
        let run = ActiveRun::start(store.clone(), "offline-exp", "born-offline", Vec::new()).unwrap();
        let spool_id = run.id().to_string();
        for step in 0..10 {
            run.log_metric("loss", 1.0 / (step + 1) as f64, step).unwrap();
        }
        run.fail("diverged").unwrap();
        assert_eq!(store.get_run(&spool_id).unwrap().info.status, RunStatus::Failed);

        server.down.store(false, Ordering::SeqCst);
        let spool = FileStore::open(dir.path().join("spool")).unwrap();
        let pending = pending_runs(&spool).unwrap();
        let synced = sync_run(&spool, &pending[0], server.as_ref()).unwrap();
        assert!(synced.created);
        let record = server.store.get_run(&synced.server_run_id).unwrap();
        assert_eq!(record.info.run_name, "born-offline");
        assert_eq!(record.info.status, RunStatus::Failed);
        assert_eq!(record.tags[crate::tracking::FAILURE_REASON_TAG], "diverged");
        assert_eq!(
            steps(&server.store, &synced.server_run_id, "loss"),
            (0..10).collect::<Vec<_>>()
        );
        let experiment = server.store.get_or_create_experiment("offline-exp").unwrap();
        assert_eq!(record.info.experiment_id, experiment);
        // The server's id is recorded in the spool before anything else is sent.
        assert_eq!(
            spool.get_run(&spool_id).unwrap().tags[SERVER_RUN_ID_TAG],
            synced.server_run_id
        );
    }

    #[test]
    fn a_run_still_running_in_the_spool_stays_pending() {
        let (dir, server, store) = setup();
        let run = ActiveRun::start(store.clone(), "exp", "live", Vec::new()).unwrap();
        server.down.store(true, Ordering::SeqCst);
        run.log_metric("loss", 1.0, 0).unwrap();
        run.flush().unwrap();
        server.down.store(false, Ordering::SeqCst);
        let spool = FileStore::open(dir.path().join("spool")).unwrap();
        let pending = pending_runs(&spool).unwrap();
        let synced = sync_run(&spool, &pending[0], server.as_ref()).unwrap();
        assert_eq!(synced.status, RunStatus::Running);
        assert_eq!(pending_runs(&spool).unwrap().len(), 1);
        run.finish().unwrap();
    }

    #[test]
    fn a_resumed_run_hit_by_an_outage_keeps_its_name_and_experiment() {
        let (dir, server, store) = setup();
        let run = ActiveRun::start(store.clone(), "exp", "named", Vec::new()).unwrap();
        let id = run.id().to_string();
        run.log_metric("loss", 1.0, 0).unwrap();
        run.finish().unwrap();

        // Another process resumes it, and loses the server.
        let later = Arc::new(SpoolingStore::new(server.clone(), dir.path().join("spool")));
        let resumed = ActiveRun::resume(later.clone(), &id).unwrap();
        server.down.store(true, Ordering::SeqCst);
        resumed.log_metric("loss", 0.5, 1).unwrap();
        resumed.finish().unwrap();
        let spool = FileStore::open(dir.path().join("spool")).unwrap();
        let mirrored = spool.get_run(&id).unwrap();
        assert_eq!(mirrored.info.run_name, "named");
        assert_eq!(mirrored.tags[SERVER_EXPERIMENT_TAG], "exp");

        server.down.store(false, Ordering::SeqCst);
        sync_run(&spool, &pending_runs(&spool).unwrap()[0], server.as_ref()).unwrap();
        let record = server.store.get_run(&id).unwrap();
        assert_eq!(record.info.run_name, "named");
        assert_eq!(record.info.status, RunStatus::Finished);
        assert_eq!(steps(&server.store, &id, "loss"), vec![0, 1]);

        // Resumed again by a third process, which loses the server too: the spooled run continues.
        let third = Arc::new(SpoolingStore::new(server.clone(), dir.path().join("spool")));
        let again = ActiveRun::resume(third.clone(), &id).unwrap();
        server.down.store(true, Ordering::SeqCst);
        again.log_metric("loss", 0.25, 2).unwrap();
        again.finish().unwrap();
        let pending = pending_runs(&spool).unwrap();
        assert_eq!(pending.len(), 1, "pending again");
        assert_eq!(steps(&spool, &id, "loss"), vec![1, 2]);
    }

    #[test]
    fn metrics_the_server_refuses_turn_a_finished_run_failed_with_the_count() {
        let (_dir, server, store) = setup();
        let run = ActiveRun::start(store.clone(), "exp", "refused-metrics", Vec::new()).unwrap();
        let id = run.id().to_string();
        server.refuse_metrics.store(true, Ordering::SeqCst);
        for step in 0..3 {
            run.log_metric("loss", 1.0, step).unwrap();
        }
        let error = format!("{:#}", run.finish().unwrap_err());
        assert!(
            error.contains("3 metric point(s)") && error.contains("answered 400: no"),
            "{error}"
        );
        let record = server.store.get_run(&id).unwrap();
        assert_eq!(record.info.status, RunStatus::Failed);
        assert!(record.tags[crate::tracking::FAILURE_REASON_TAG].contains("3 metric point(s)"));
        assert!(!store.is_offline(), "a refusal is not an outage");
    }

    #[test]
    fn refusals_are_not_outages() {
        let (_dir, _server, store) = setup();
        let run = ActiveRun::start(store.clone(), "exp", "refused", Vec::new()).unwrap();
        run.log_params(&[("p".to_string(), "1".to_string())]).unwrap();
        let error = run.log_params(&[("p".to_string(), "2".to_string())]).unwrap_err();
        assert!(format!("{error:#}").contains("p"), "{error:#}");
        assert!(!store.is_offline());
        run.finish().unwrap();
    }
}
