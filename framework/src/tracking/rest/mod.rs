//! The MLflow REST store: a [`Tracker`] over a tracking server's REST API (`MLFLOW_TRACKING_URI=
//! http(s)://...`), with artifacts through the server's proxied artifact API.
//!
//! - [`client`]: HTTP, credentials and retries, configured from MLflow's environment variables.
//! - [`wire`]: the JSON MLflow reads and writes (NaN and infinities as strings, `{}` for empty).

pub mod client;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use anyhow::Context;
use serde_json::json;

use self::client::{ApiError, ClientSettings, RestClient};
use self::wire::{
    key_values, ArtifactsPage, CreateExperimentResponse, ExperimentResponse, ExperimentsPage, HistoryPage, LogBatch,
    Metric, RunResponse, RunsPage,
};
use super::{ArtifactEntry, ExperimentInfo, MetricPoint, RunInfo, RunRecord, RunStatus, Tracker};

/// The prefix of the artifact URIs of a server that proxies artifacts.
const PROXIED_ARTIFACTS: &str = "mlflow-artifacts:/";
/// Results per page of search and history requests.
const PAGE: &str = "1000";
/// `log-batch` requests a run's metric sender keeps in flight.
const MAX_IN_FLIGHT: usize = 4;

/// A tracking server, through its REST API.
#[derive(Debug)]
pub struct RestStore {
    client: RestClient,
    /// Artifact URIs of the runs seen, by run id.
    artifact_uris: Mutex<HashMap<String, String>>,
}

impl RestStore {
    /// The server at `uri` (`http(s)://host:port[/prefix]`), with settings from the environment.
    pub fn open(uri: &str) -> anyhow::Result<RestStore> {
        Self::with_settings(uri, ClientSettings::from_env()?)
    }

    /// The server at `uri` with explicit client settings.
    pub fn with_settings(uri: &str, settings: ClientSettings) -> anyhow::Result<RestStore> {
        Ok(RestStore {
            client: RestClient::new(uri, settings)?,
            artifact_uris: Mutex::default(),
        })
    }

    fn remember(&self, info: &RunInfo) {
        self.artifact_uris
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info.run_id.clone(), info.artifact_uri.clone());
    }

    /// The proxied artifact path of `path` in `run_id`'s artifacts:
    /// `api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<path>`.
    fn artifact_path(&self, run_id: &str, path: &str) -> anyhow::Result<String> {
        let known = self
            .artifact_uris
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .cloned();
        let uri = match known {
            Some(uri) => uri,
            None => self.get_run(run_id)?.info.artifact_uri,
        };
        let root = uri.strip_prefix(PROXIED_ARTIFACTS).ok_or_else(|| {
            anyhow::anyhow!(
                "run {run_id} keeps its artifacts at `{uri}`, which the server does not proxy; \
                 start the server with --serve-artifacts (the default) and an experiment without a custom artifact_location"
            )
        })?;
        let parts = super::artifact_parts(path)?;
        Ok(format!(
            "api/2.0/mlflow-artifacts/artifacts/{}/{}",
            root.trim_matches('/'),
            parts.iter().map(|p| encode_segment(p)).collect::<Vec<_>>().join("/")
        ))
    }
}

impl Tracker for RestStore {
    fn uri(&self) -> String {
        self.client.base().to_string()
    }

    fn get_or_create_experiment(&self, name: &str) -> anyhow::Result<String> {
        let found = |r: anyhow::Result<ExperimentResponse>| -> anyhow::Result<Option<String>> {
            match r {
                Ok(r) => Ok(Some(r.experiment.experiment_id)),
                Err(e) if api_code(&e) == Some("RESOURCE_DOES_NOT_EXIST") => Ok(None),
                Err(e) => Err(e),
            }
        };
        if let Some(id) = found(self.client.get("experiments/get-by-name", &[("experiment_name", name)]))? {
            return Ok(id);
        }
        match self
            .client
            .post::<CreateExperimentResponse>("experiments/create", &json!({ "name": name }))
        {
            Ok(created) => Ok(created.experiment_id),
            // Another client created it between the two requests.
            Err(e) if api_code(&e) == Some("RESOURCE_ALREADY_EXISTS") => {
                found(self.client.get("experiments/get-by-name", &[("experiment_name", name)]))?
                    .ok_or_else(|| anyhow::anyhow!("experiment `{name}` exists but cannot be read"))
            }
            Err(e) => Err(e),
        }
    }

    fn list_experiments(&self) -> anyhow::Result<Vec<ExperimentInfo>> {
        let experiments = all_pages(|token| {
            let mut body = json!({ "max_results": 1000 });
            if let Some(t) = token {
                body["page_token"] = json!(t);
            }
            let page: ExperimentsPage = self.client.post("experiments/search", &body)?;
            Ok((page.experiments, page.next_page_token))
        })?;
        Ok(experiments
            .into_iter()
            .filter(|e| e.lifecycle_stage != "deleted")
            .map(|e| ExperimentInfo {
                experiment_id: e.experiment_id,
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
        let user = tags.iter().find(|(k, _)| k == "mlflow.user").map(|(_, v)| v.clone());
        let mut body = json!({
            "experiment_id": experiment_id,
            "start_time": start_time,
            "tags": key_values(tags),
        });
        if !run_name.is_empty() {
            body["run_name"] = json!(run_name);
        }
        if let Some(user) = user {
            body["user_id"] = json!(user);
        }
        let created: RunResponse = self.client.post("runs/create", &body)?;
        let info: RunInfo = created.run.info.try_into()?;
        self.remember(&info);
        Ok(info)
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> anyhow::Result<()> {
        // The server refuses a param key twice in one batch, even with the same value.
        let params: Vec<(String, String)> = super::check_batch(run_id, metrics, params, tags)?
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = LogBatch {
            run_id,
            metrics: metrics.iter().map(Metric::from).collect(),
            params: key_values(&params),
            tags: key_values(tags),
        };
        self.client.post::<serde_json::Value>("runs/log-batch", &body)?;
        Ok(())
    }

    fn log_artifact(&self, run_id: &str, path: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let target = self.artifact_path(run_id, path)?;
        self.client
            .put_bytes(&target, bytes)
            .with_context(|| format!("cannot upload artifact `{path}` of run {run_id}"))
    }

    fn list_artifacts(&self, run_id: &str, path: Option<&str>) -> anyhow::Result<Vec<ArtifactEntry>> {
        let mut query = vec![("run_id", run_id)];
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            query.push(("path", p));
        }
        let page: ArtifactsPage = self.client.get("artifacts/list", &query)?;
        Ok(page
            .files
            .into_iter()
            .map(|f| ArtifactEntry {
                path: f.path,
                is_dir: f.is_dir,
                file_size: f.file_size,
            })
            .collect())
    }

    fn read_artifact(&self, run_id: &str, path: &str) -> anyhow::Result<Vec<u8>> {
        let target = self.artifact_path(run_id, path)?;
        self.client
            .get_bytes(&target)
            .with_context(|| format!("cannot read artifact `{path}` of run {run_id}"))
    }

    fn set_terminated(&self, run_id: &str, status: RunStatus, end_time: i64) -> anyhow::Result<()> {
        anyhow::ensure!(
            status.is_terminal(),
            "cannot end run {run_id} with status {}: use FINISHED, FAILED or KILLED",
            status.as_str()
        );
        let body = json!({ "run_id": run_id, "status": status.as_str(), "end_time": end_time });
        self.client.post::<serde_json::Value>("runs/update", &body)?;
        Ok(())
    }

    fn reopen_run(&self, run_id: &str) -> anyhow::Result<()> {
        let body = json!({ "run_id": run_id, "status": RunStatus::Running.as_str() });
        self.client.post::<serde_json::Value>("runs/update", &body)?;
        Ok(())
    }

    fn get_run(&self, run_id: &str) -> anyhow::Result<RunRecord> {
        let r: RunResponse = self.client.get("runs/get", &[("run_id", run_id)])?;
        let record: RunRecord = r.run.try_into()?;
        self.remember(&record.info);
        Ok(record)
    }

    fn metric_history(&self, run_id: &str, key: &str) -> anyhow::Result<Vec<MetricPoint>> {
        let points = all_pages(|token| {
            let mut query = vec![("run_id", run_id), ("metric_key", key), ("max_results", PAGE)];
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            let page: HistoryPage = self.client.get("metrics/get-history", &query)?;
            Ok((page.metrics, page.next_page_token))
        })?;
        Ok(points.into_iter().map(MetricPoint::from).collect())
    }

    fn search_runs(&self, experiment_ids: &[String]) -> anyhow::Result<Vec<RunRecord>> {
        let runs = all_pages(|token| {
            let mut body = json!({
                "experiment_ids": experiment_ids,
                "max_results": 1000,
                "order_by": ["attributes.start_time DESC"],
            });
            if let Some(t) = token {
                body["page_token"] = json!(t);
            }
            let page: RunsPage = self.client.post("runs/search", &body)?;
            Ok((page.runs, page.next_page_token))
        })?;
        runs.into_iter().map(RunRecord::try_from).collect()
    }

    /// Several requests in flight hide the server's per-request latency (and uvicorn's Nagle
    /// stall); MLflow's SQL pool serves 4 comfortably.
    fn max_in_flight(&self) -> usize {
        MAX_IN_FLIGHT
    }
}

/// Every item of a paginated listing: `fetch` gets the page token (`None` for the first page) and
/// returns a page's items and the next token; an absent or empty token ends the listing.
fn all_pages<T>(
    mut fetch: impl FnMut(Option<&str>) -> anyhow::Result<(Vec<T>, Option<String>)>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (items, next) = fetch(token.as_deref())?;
        out.extend(items);
        match next.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// The MLflow `error_code` of an [`ApiError`], if `e` is one.
fn api_code(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<ApiError>().and_then(|a| a.code.as_deref())
}

/// A path segment percent-encoded for a URL (unreserved characters kept).
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_paths_are_encoded_per_segment() {
        assert_eq!(encode_segment("metrics val.json"), "metrics%20val.json");
        assert_eq!(encode_segment("a%b"), "a%25b");
    }
}
