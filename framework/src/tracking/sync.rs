//! Replaying the offline spool ([`SpoolingStore`](super::SpoolingStore)) to the tracking server:
//! what `fairlab runs sync` does. A spooled run is sent whole: its params, tags (without the
//! spool's own), every metric's full history in `log-batch`es of at most 1000 points, its
//! artifacts, and, once it has ended, its status and end time; then it is marked synced in the
//! spool. Sending twice is harmless: identical metric points are idempotent on MLflow's SQL store,
//! params are re-sent with the same values and tags and artifacts overwrite themselves, so a sync
//! interrupted half-way is simply run again. A run created in the spool (the server was down when
//! it started) is first created on the server, and the id it gets there is written into the spool
//! before anything else, so that a second sync does not create it twice.

use super::limits::{MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH};
use super::spool::{PENDING, SERVER_EXPERIMENT_TAG, SERVER_RUN_ID_TAG, STATE_TAG, SYNCED, SYNCED_AT_TAG, TAG_PREFIX};
use super::{all_artifacts, now_ms, FileStore, RunRecord, RunStatus, Tracker, RUN_NAME_TAG};

/// What a sync sent for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedRun {
    /// The run's id in the spool.
    pub spool_run_id: String,
    /// The run's id on the server.
    pub server_run_id: String,
    /// Whether the sync created the run on the server.
    pub created: bool,
    /// Params sent.
    pub params: usize,
    /// Tags sent.
    pub tags: usize,
    /// Metric points sent.
    pub metric_points: usize,
    /// Artifact files sent.
    pub artifacts: usize,
    /// The run's status in the spool (sent to the server when it is an end).
    pub status: RunStatus,
}

/// The spool's runs still waiting to be synced, oldest first.
pub fn pending_runs(spool: &FileStore) -> anyhow::Result<Vec<RunRecord>> {
    let experiments: Vec<String> = spool.list_experiments()?.into_iter().map(|e| e.experiment_id).collect();
    let mut runs: Vec<RunRecord> = spool
        .search_runs(&experiments)?
        .into_iter()
        .filter(|r| r.tags.get(STATE_TAG).map(String::as_str) == Some(PENDING))
        .collect();
    runs.sort_by_key(|r| r.info.start_time);
    Ok(runs)
}

/// Send the spooled run `run` to `server` (see the module documentation). A run that has ended is
/// marked synced in the spool; one still RUNNING there (its process is still logging, or died)
/// stays pending, so that a later sync sends the rest.
pub fn sync_run(spool: &FileStore, run: &RunRecord, server: &dyn Tracker) -> anyhow::Result<SyncedRun> {
    let spool_run_id = run.info.run_id.as_str();
    // A run mirrored from the server has its name there already (the spool's copy of it may be a
    // stand-in when the spool did not know it).
    let mirrored = run.tags.contains_key(SERVER_RUN_ID_TAG);
    let own_tags: Vec<(String, String)> = run
        .tags
        .iter()
        .filter(|(k, _)| !(k.starts_with(TAG_PREFIX) || (mirrored && k.as_str() == RUN_NAME_TAG)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (server_run_id, created) = match run.tags.get(SERVER_RUN_ID_TAG) {
        Some(id) => (id.clone(), false),
        None => {
            let experiment = run.tags.get(SERVER_EXPERIMENT_TAG).map_or("Default", String::as_str);
            let experiment_id = server.get_or_create_experiment(experiment)?;
            let created = server.create_run(&experiment_id, &run.info.run_name, run.info.start_time, &own_tags)?;
            spool.log_batch(
                spool_run_id,
                &[],
                &[],
                &[(SERVER_RUN_ID_TAG.to_string(), created.run_id.clone())],
            )?;
            (created.run_id, true)
        }
    };
    let id = server_run_id.as_str();

    let params: Vec<(String, String)> = run.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for chunk in params.chunks(MAX_PARAMS_TAGS_PER_BATCH) {
        server.log_batch(id, &[], chunk, &[])?;
    }
    for chunk in own_tags.chunks(MAX_PARAMS_TAGS_PER_BATCH) {
        server.log_batch(id, &[], &[], chunk)?;
    }
    let mut metric_points = 0;
    for key in run.metrics.keys() {
        let history = spool.metric_history(spool_run_id, key)?;
        for chunk in history.chunks(MAX_METRICS_PER_BATCH) {
            server.log_batch(id, chunk, &[], &[])?;
        }
        metric_points += history.len();
    }
    let mut artifacts = 0;
    for file in all_artifacts(spool, spool_run_id)?.into_iter().filter(|a| !a.is_dir) {
        server.log_artifact(id, &file.path, &spool.read_artifact(spool_run_id, &file.path)?)?;
        artifacts += 1;
    }
    if run.info.status.is_terminal() {
        server.set_terminated(id, run.info.status, run.info.end_time.unwrap_or_else(now_ms))?;
        spool.log_batch(
            spool_run_id,
            &[],
            &[],
            &[
                (STATE_TAG.to_string(), SYNCED.to_string()),
                (SYNCED_AT_TAG.to_string(), now_ms().to_string()),
            ],
        )?;
    }
    Ok(SyncedRun {
        spool_run_id: spool_run_id.to_string(),
        server_run_id,
        created,
        params: params.len(),
        tags: own_tags.len(),
        metric_points,
        artifacts,
        status: run.info.status,
    })
}
