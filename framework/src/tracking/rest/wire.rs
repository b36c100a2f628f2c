//! MLflow's REST JSON, as the 3.x server reads and writes it. Everything optional is defaulted
//! (empty results come back as `{}`), unknown fields are ignored (new servers add some), and metric
//! values are numbers or the strings `"NaN"`, `"Infinity"`, `"-Infinity"` in both directions: a
//! JSON `null` is refused by the server, and a lowercase `"nan"` is silently stored as 0.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::tracking::{MetricPoint, RunInfo, RunRecord, RunStatus};

/// A metric value on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value(pub f64);

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_nan() {
            serializer.serialize_str("NaN")
        } else if v == f64::INFINITY {
            serializer.serialize_str("Infinity")
        } else if v == f64::NEG_INFINITY {
            serializer.serialize_str("-Infinity")
        } else {
            serializer.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(f64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Number(v) => Ok(Value(v)),
            Written::Text(t) => match t.as_str() {
                "NaN" | "nan" => Ok(Value(f64::NAN)),
                "Infinity" | "inf" => Ok(Value(f64::INFINITY)),
                "-Infinity" | "-inf" => Ok(Value(f64::NEG_INFINITY)),
                other => other
                    .parse()
                    .map(Value)
                    .map_err(|_| serde::de::Error::custom(format!("`{other}` is not a metric value"))),
            },
        }
    }
}

/// A metric point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Key.
    pub key: String,
    /// Value.
    pub value: Value,
    /// Unix milliseconds (required by the server).
    pub timestamp: i64,
    /// Step.
    #[serde(default)]
    pub step: i64,
}

impl From<&MetricPoint> for Metric {
    fn from(p: &MetricPoint) -> Self {
        Metric {
            key: p.key.clone(),
            value: Value(p.value),
            timestamp: p.timestamp,
            step: p.step,
        }
    }
}

impl From<Metric> for MetricPoint {
    fn from(m: Metric) -> Self {
        MetricPoint {
            key: m.key,
            value: m.value.0,
            timestamp: m.timestamp,
            step: m.step,
        }
    }
}

/// A param or tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value (always a string on the wire).
    #[serde(default)]
    pub value: String,
}

/// Pairs as key/value objects.
pub fn key_values(pairs: &[(String, String)]) -> Vec<KeyValue> {
    pairs
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// `runs/log-batch`'s body.
#[derive(Debug, Serialize)]
pub struct LogBatch<'a> {
    /// The run.
    pub run_id: &'a str,
    /// Metric points.
    pub metrics: Vec<Metric>,
    /// Params.
    pub params: Vec<KeyValue>,
    /// Tags.
    pub tags: Vec<KeyValue>,
}

/// An experiment.
#[derive(Debug, Clone, Deserialize)]
pub struct Experiment {
    /// Id.
    pub experiment_id: String,
    /// Name.
    pub name: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// `experiments/get-by-name`'s answer.
#[derive(Debug, Deserialize)]
pub struct ExperimentResponse {
    /// The experiment.
    pub experiment: Experiment,
}

/// `experiments/create`'s answer.
#[derive(Debug, Deserialize)]
pub struct CreateExperimentResponse {
    /// The new experiment's id.
    pub experiment_id: String,
}

/// `experiments/search`'s answer.
#[derive(Debug, Default, Deserialize)]
pub struct ExperimentsPage {
    /// This page.
    #[serde(default)]
    pub experiments: Vec<Experiment>,
    /// The next page, if any.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A run's identity and state.
#[derive(Debug, Clone, Deserialize)]
pub struct WireRunInfo {
    /// Id.
    pub run_id: String,
    /// Experiment id.
    pub experiment_id: String,
    /// Name.
    #[serde(default)]
    pub run_name: String,
    /// `RUNNING`, `FINISHED`, ...
    pub status: String,
    /// Unix milliseconds.
    #[serde(default)]
    pub start_time: i64,
    /// Unix milliseconds, once ended.
    #[serde(default)]
    pub end_time: Option<i64>,
    /// `mlflow-artifacts:/<experiment>/<run>/artifacts` when the server proxies artifacts.
    #[serde(default)]
    pub artifact_uri: String,
}

impl TryFrom<WireRunInfo> for RunInfo {
    type Error = anyhow::Error;

    fn try_from(w: WireRunInfo) -> anyhow::Result<RunInfo> {
        let status = RunStatus::from_name(&w.status)
            .ok_or_else(|| anyhow::anyhow!("run {} has an unknown status `{}`", w.run_id, w.status))?;
        Ok(RunInfo {
            run_id: w.run_id,
            experiment_id: w.experiment_id,
            run_name: w.run_name,
            status,
            start_time: w.start_time,
            end_time: w.end_time,
            artifact_uri: w.artifact_uri,
        })
    }
}

/// A run's data.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RunData {
    /// Latest value per metric key.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Params.
    #[serde(default)]
    pub params: Vec<KeyValue>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    /// Identity and state.
    pub info: WireRunInfo,
    /// Data.
    #[serde(default)]
    pub data: RunData,
}

impl TryFrom<Run> for RunRecord {
    type Error = anyhow::Error;

    fn try_from(run: Run) -> anyhow::Result<RunRecord> {
        Ok(RunRecord {
            info: run.info.try_into()?,
            params: run.data.params.into_iter().map(|p| (p.key, p.value)).collect(),
            tags: run.data.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            metrics: run
                .data
                .metrics
                .into_iter()
                .map(|m| (m.key.clone(), m.into()))
                .collect(),
        })
    }
}

/// `runs/create` and `runs/get`'s answer.
#[derive(Debug, Deserialize)]
pub struct RunResponse {
    /// The run.
    pub run: Run,
}

/// `runs/search`'s answer.
#[derive(Debug, Default, Deserialize)]
pub struct RunsPage {
    /// This page.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// The next page, if any.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `metrics/get-history`'s answer.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryPage {
    /// This page.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// The next page, if any.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A file of `artifacts/list`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileInfo {
    /// Path relative to the run's artifact root.
    pub path: String,
    /// Whether it is a folder.
    #[serde(default)]
    pub is_dir: bool,
    /// Size in bytes, for files.
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// `artifacts/list`'s answer.
#[derive(Debug, Default, Deserialize)]
pub struct ArtifactsPage {
    /// The entries.
    #[serde(default)]
    pub files: Vec<FileInfo>,
}

/// An MLflow error body.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    /// `RESOURCE_DOES_NOT_EXIST`, `INVALID_PARAMETER_VALUE`, ...
    #[serde(default)]
    pub error_code: String,
    /// What the server says.
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_travel_as_mlflows_strings() {
        let json = serde_json::to_string(&[
            Value(0.5),
            Value(f64::NAN),
            Value(f64::INFINITY),
            Value(f64::NEG_INFINITY),
        ])
        .unwrap();
        assert_eq!(json, r#"[0.5,"NaN","Infinity","-Infinity"]"#);
        let back: Vec<Value> =
            serde_json::from_str(r#"[0.5, "NaN", "Infinity", "-Infinity", 1.7976931348623157e308]"#).unwrap();
        assert_eq!(back[0], Value(0.5));
        assert!(back[1].0.is_nan());
        assert_eq!(back[2].0, f64::INFINITY);
        assert_eq!(back[3].0, f64::NEG_INFINITY);
        assert_eq!(back[4].0, f64::MAX);
        assert!(serde_json::from_str::<Value>(r#""lots""#).is_err());
    }

    #[test]
    fn empty_answers_are_empty_pages() {
        let page: RunsPage = serde_json::from_str("{}").unwrap();
        assert!(page.runs.is_empty() && page.next_page_token.is_none());
        let run: RunResponse = serde_json::from_str(
            r#"{"run": {"info": {"run_id": "r", "experiment_id": "1", "status": "FINISHED", "start_time": 5,
                "artifact_uri": "mlflow-artifacts:/1/r/artifacts", "workspace": "default"}, "inputs": {}}}"#,
        )
        .unwrap();
        let record = RunRecord::try_from(run.run).unwrap();
        assert_eq!(record.info.status, RunStatus::Finished);
        assert!(record.metrics.is_empty());
    }
}
