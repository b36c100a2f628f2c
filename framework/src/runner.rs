//! The experiment runner: data -> backbone features (cached) -> debiaser -> metrics on val and test
//! -> tracking.
//!
//! Configuration problems that can be found without touching data (unknown keys, unknown plugin
//! kinds, bad plugin settings) are reported before a run is created. From then on every failure
//! ends the run as FAILED with its reason in the `fairlab.failure_reason` tag, so nothing is
//! silently dropped.
//!
//! A run can also be resumed ([`RunOptions::resume`]): the experiment runs again into an ended run
//! whose params equal the ones the config gives, its metrics logged at steps after the run's own.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::Tensor;

use crate::backbone::Backbone;
use crate::config::Experiment;
use crate::dataset::{Dataset, Split};
use crate::debiaser::{DataAccess, FitContext, SplitData, TrainingMonitor};
use crate::error::{ConfigError, RunFailure};
use crate::features::{CacheStatus, FeatureCache, SplitFeatures};
use crate::interrupt::{self, Interrupted};
use crate::metric::{evaluate, MetricsReport, PredictionSet};
use crate::registry::{PluginKind, Registry};
use crate::tracking::{self, ActiveRun, RunRecord, RunStatus, Tracker};

/// Tag counting how often a run was resumed.
pub const RESUMED_TAG: &str = "fairlab.resumed";
/// Tag listing, comma-separated in order, the first step of each resume of a run.
pub const RESUME_STEPS_TAG: &str = "fairlab.resume_steps";

/// Where a run goes and how it is shown.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Tracking URI (`MLFLOW_TRACKING_URI`); `None` = `./mlruns`.
    pub tracking_uri: Option<String>,
    /// Experiment name (`MLFLOW_EXPERIMENT_NAME`), overriding the file's `tracking.experiment`.
    pub experiment_name: Option<String>,
    /// More tags for the run (a sweep's trial gets `mlflow.parentRunId` and its ids); they replace
    /// the runner's own tags with the same key.
    pub tags: Vec<(String, String)>,
    /// Continue this ended run instead of starting one: the config must give exactly the params
    /// the run has (a difference is a [`ConfigError`] listing each one, and the run is left
    /// untouched). The run is reopened, keeps its params, tags and config, and gets the new
    /// metrics at steps after its highest one (the final `val_`/`test_` metrics too, so their
    /// latest value is the resumed one), the [`RESUMED_TAG`] and [`RESUME_STEPS_TAG`] tags, and
    /// ends FINISHED, FAILED or KILLED as usual. `tags` and `experiment_name` are ignored (the run
    /// stays where it is).
    pub resume: Option<String>,
}

/// What a finished run produced.
pub struct RunOutcome {
    /// The run id in the tracking store.
    pub run_id: String,
    /// The store's URI.
    pub tracking_uri: String,
    /// The experiment (MLflow) name the run was logged under.
    pub experiment_name: String,
    /// Metrics on the validation split.
    pub val: MetricsReport,
    /// Metrics on the test split.
    pub test: MetricsReport,
    /// Whether features came from the cache.
    pub cache: CacheStatus,
    /// For a resumed run, the step its new metrics start at.
    pub resumed_at_step: Option<i64>,
    /// The offline spool the run went on in, when its tracking server became unavailable.
    pub spooled_to: Option<std::path::PathBuf>,
}

/// A run that failed, with the id of the FAILED run when one was created.
#[derive(Debug)]
pub struct RunError {
    /// The cause.
    pub error: anyhow::Error,
    /// The FAILED run, when the failure happened after the run was created.
    pub run_id: Option<String>,
    /// The store's URI, when a run was created.
    pub tracking_uri: Option<String>,
}

impl RunError {
    fn before_run(error: impl Into<anyhow::Error>) -> Self {
        Self {
            error: error.into(),
            run_id: None,
            tracking_uri: None,
        }
    }
}

/// Check everything that can be checked without data: plugin kinds and plugin settings.
pub fn validate(registry: &Registry, experiment: &Experiment) -> Result<(), ConfigError> {
    let c = &experiment.config;
    let checks = [
        (PluginKind::Dataset, &c.dataset),
        (PluginKind::Backbone, &c.backbone),
        (PluginKind::Debiaser, &c.debiaser),
    ];
    for (kind, spec) in checks {
        registry.check(kind, spec).map_err(|e| experiment.locate(e))?;
    }
    registry
        .debiaser(&c.debiaser)
        .map(drop)
        .map_err(|e| match e.downcast::<ConfigError>() {
            Ok(ce) => experiment.locate(ce),
            Err(other) => ConfigError::at_key("debiaser", format!("{other:#}")),
        })
}

/// Run one experiment end to end, in a new run or, with [`RunOptions::resume`], in an existing one.
pub fn run(registry: &Registry, experiment: &Experiment, options: &RunOptions) -> Result<RunOutcome, RunError> {
    validate(registry, experiment).map_err(RunError::before_run)?;
    let tracker = tracking::open(options.tracking_uri.as_deref()).map_err(RunError::before_run)?;
    let params = tracking::loggable_params(experiment.flat_params());
    let (run, experiment_name, beginning) = match &options.resume {
        None => start(experiment, options, &tracker, params)?,
        Some(run_id) => resume(experiment, &tracker, run_id, &params)?,
    };
    let resumed_at_step = match &beginning {
        Beginning::New { .. } => None,
        Beginning::Resumed { step_offset, .. } => Some(*step_offset),
    };
    let run_id = run.id().to_string();
    let fail = |error: anyhow::Error| RunError {
        error,
        run_id: Some(run_id.clone()),
        tracking_uri: Some(tracker.uri()),
    };

    match execute(registry, experiment, &run, beginning) {
        Ok((val, test, cache)) => {
            run.finish().map_err(fail)?;
            Ok(RunOutcome {
                run_id: run_id.clone(),
                tracking_uri: tracker.uri(),
                experiment_name,
                val,
                test,
                cache,
                resumed_at_step,
                spooled_to: tracker.spooled_to(&run_id),
            })
        }
        Err(error) if error.is::<Interrupted>() => {
            let reason = error.to_string();
            if let Err(e) = run.kill(&reason) {
                tracing::warn!("could not mark run {run_id} KILLED: {e:#}");
            }
            Err(fail(error))
        }
        Err(error) => {
            let error = match error.downcast::<ConfigError>() {
                Ok(ce) => experiment.locate(ce).into(),
                Err(other) => other,
            };
            let reason = format!("{error:#}");
            tracing::error!(run_id = %run_id, "run failed: {reason}");
            if let Err(e) = run.fail(&reason) {
                tracing::warn!("could not mark run {run_id} FAILED: {e:#}");
            }
            Err(fail(error))
        }
    }
}

/// How a run's records begin.
enum Beginning {
    /// A new run: its params (ready to log) and config are logged first.
    New { params: Vec<(String, String)> },
    /// A resumed run, which has its params and config: its metrics start at `step_offset`, and
    /// `tags` record the resume.
    Resumed {
        step_offset: i64,
        tags: Vec<(String, String)>,
    },
}

/// Start a new run with the runner's tags and `options.tags`.
fn start(
    experiment: &Experiment,
    options: &RunOptions,
    tracker: &Arc<dyn Tracker>,
    params: Vec<(String, String)>,
) -> Result<(ActiveRun, String, Beginning), RunError> {
    let c = &experiment.config;
    let experiment_name = options
        .experiment_name
        .clone()
        .unwrap_or_else(|| c.tracking.experiment.clone());
    let run_name = c.tracking.run_name.clone().unwrap_or_else(|| c.name.clone());
    let mut tags = run_tags(experiment);
    tags.retain(|(k, _)| !options.tags.iter().any(|(o, _)| o == k));
    tags.extend(options.tags.iter().cloned());
    let tags = tracking::loggable_tags(tags);
    let run = ActiveRun::start(tracker.clone(), &experiment_name, &run_name, tags).map_err(RunError::before_run)?;
    Ok((run, experiment_name, Beginning::New { params }))
}

/// Reopen the run `run_id` after checking that it has exactly `params`; the run is not touched
/// when it cannot be read or its params differ (both [`ConfigError`]s).
fn resume(
    experiment: &Experiment,
    tracker: &Arc<dyn Tracker>,
    run_id: &str,
    params: &[(String, String)],
) -> Result<(ActiveRun, String, Beginning), RunError> {
    let record = tracker
        .get_run(run_id)
        .map_err(|e| RunError::before_run(ConfigError::new(format!("cannot resume run {run_id}: {e:#}"))))?;
    let differences = param_differences(&record, params);
    if !differences.is_empty() {
        return Err(RunError::before_run(ConfigError::new(format!(
            "cannot resume run {run_id}: its params differ from the ones {} gives, and MLflow params never change (resume with the run's config, or start a new run):\n  {}",
            experiment.path.display(),
            differences.join("\n  ")
        ))));
    }
    if record.info.status == RunStatus::Running {
        tracing::warn!(
            "run {run_id} is still RUNNING (crashed, or running elsewhere): if another process logs to it, both write to the same steps"
        );
    }
    let step_offset = record.metrics.values().map(|p| p.step + 1).max().unwrap_or(0);
    let resumes: u64 = record.tags.get(RESUMED_TAG).and_then(|n| n.parse().ok()).unwrap_or(0) + 1;
    let steps = match record.tags.get(RESUME_STEPS_TAG) {
        Some(earlier) => format!("{earlier},{step_offset}"),
        None => step_offset.to_string(),
    };
    let tags = tracking::loggable_tags([
        (RESUMED_TAG.to_string(), resumes.to_string()),
        (RESUME_STEPS_TAG.to_string(), steps),
    ]);
    let experiment_name = tracker
        .list_experiments()
        .ok()
        .and_then(|all| all.into_iter().find(|e| e.experiment_id == record.info.experiment_id))
        .map_or_else(|| record.info.experiment_id.clone(), |e| e.name);
    let run = ActiveRun::resume(tracker.clone(), run_id).map_err(RunError::before_run)?;
    tracing::info!("resuming run {run_id} (resume {resumes}): metrics from step {step_offset}");
    Ok((run, experiment_name, Beginning::Resumed { step_offset, tags }))
}

/// Each difference between a run's params and the ones a config gives, as
/// `key: run has X, config gives Y` (a missing value is `nothing`; a secret's value, which a run
/// logged before secrets were redacted may hold, is `***`), in key order.
fn param_differences(record: &RunRecord, params: &[(String, String)]) -> Vec<String> {
    let config: HashMap<&str, &str> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut keys: Vec<&str> = record
        .params
        .keys()
        .map(String::as_str)
        .chain(config.keys().copied())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let shown = |value: Option<&str>| match value {
                None => "nothing".to_string(),
                Some(_) if tracking::is_secret_key(key) => tracking::REDACTED.to_string(),
                Some(v) => crate::sweep::clip(v, 80),
            };
            let (run, config) = (record.params.get(key).map(String::as_str), config.get(key).copied());
            (run != config).then(|| format!("{key}: run has {}, config gives {}", shown(run), shown(config)))
        })
        .collect()
}

fn run_tags(experiment: &Experiment) -> Vec<(String, String)> {
    let c = &experiment.config;
    let mut tags = vec![
        ("fairlab.version".to_string(), crate::VERSION.to_string()),
        ("fairlab.seed".to_string(), c.seed.to_string()),
        (
            "fairlab.experiment_file".to_string(),
            experiment.path.display().to_string(),
        ),
        ("fairlab.debiaser".to_string(), c.debiaser.kind.clone()),
        ("fairlab.backbone".to_string(), c.backbone.kind.clone()),
        ("fairlab.host".to_string(), host_name()),
    ];
    if let Some(commit) = git_commit() {
        tags.push(("mlflow.source.git.commit".to_string(), commit));
    }
    if let Some(d) = &c.description {
        tags.push(("mlflow.note.content".to_string(), d.clone()));
    }
    tags.extend(c.tracking.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    tags
}

/// This machine's name (`$HOSTNAME`, else `/etc/hostname`, else `unknown`).
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| s.len() == 40)
}

fn execute(
    registry: &Registry,
    experiment: &Experiment,
    run: &ActiveRun,
    beginning: Beginning,
) -> anyhow::Result<(MetricsReport, MetricsReport, CacheStatus)> {
    let c = &experiment.config;
    let metrics = match beginning {
        Beginning::New { params } => {
            run.log_params(&params)?;
            run.log_artifact("config.yaml", experiment.redacted_yaml().as_bytes())?;
            MetricLog { run, step_offset: 0 }
        }
        Beginning::Resumed { step_offset, tags } => {
            run.set_tags(&tags)?;
            MetricLog { run, step_offset }
        }
    };

    let dataset = registry.dataset(&c.dataset)?;
    let backbone = registry.backbone(&c.backbone)?;
    tracing::info!(
        dataset = dataset.name(),
        samples = dataset.samples().len(),
        backbone = backbone.kind(),
        "loaded"
    );
    let cache = FeatureCache::new(c.features.cache.then(|| c.features.cache_dir.clone()));
    let (features, cache_status) = cache.get_or_extract(backbone.as_ref(), dataset.as_ref(), c.features.batch_size)?;
    run.set_tags(&[("fairlab.feature_cache".to_string(), describe_cache(&cache_status))])?;

    let data = ExperimentData::new(dataset.as_ref(), backbone.as_ref(), features);
    let mut monitor = RunMonitor {
        metrics,
        registry,
        data: &data,
        threshold: c.evaluation.threshold,
        bar: None,
    };
    let mut debiaser = registry.debiaser(&c.debiaser)?;
    let device = backbone.device().clone();
    let predictor = {
        let mut ctx = FitContext {
            data: &data,
            registry,
            device,
            seed: c.seed,
            monitor: &mut monitor,
        };
        let predictor = debiaser.fit(&mut ctx)?;
        if c.evaluation.leakage {
            let leakage: Vec<(String, f64)> = crate::leakage::measure(&mut ctx, predictor.as_ref())?
                .into_iter()
                .map(|(attribute, auc)| (format!("test_leakage_auc_{attribute}"), auc))
                .collect();
            metrics.log(0, &borrowed(&leakage))?;
        }
        predictor
    };
    if let Some(bar) = monitor.bar.take() {
        bar.finish_and_clear();
    }
    for artifact in predictor.artifacts()? {
        run.log_artifact(&artifact.path, &artifact.bytes)?;
    }

    let mut reports = Vec::new();
    for split in [Split::Val, Split::Test] {
        let scores = predictor.predict(&data, split)?;
        let report = score(registry, &data, split, &scores, c.evaluation.threshold)?;
        metrics.log(0, &borrowed(&report.flatten(split.as_str())))?;
        run.log_artifact(
            &format!("predictions/{split}.csv"),
            predictions_csv(&data, split, &scores).as_bytes(),
        )?;
        run.log_artifact(
            &format!("metrics/{split}.json"),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        reports.push(report);
    }
    let test = reports.pop().expect("two reports");
    let val = reports.pop().expect("two reports");
    run.log_artifact("metrics.json", serde_json::to_string_pretty(&test)?.as_bytes())?;
    Ok((val, test, cache_status))
}

/// Logs a run's metrics at steps shifted by `step_offset`, so that a resumed run's steps continue
/// after the ones it had.
#[derive(Clone, Copy)]
struct MetricLog<'a> {
    run: &'a ActiveRun,
    step_offset: i64,
}

impl MetricLog<'_> {
    /// Log `values` at `step` (plus the offset).
    fn log(&self, step: i64, values: &[(&str, f64)]) -> anyhow::Result<()> {
        self.run.log_metrics(self.step_offset + step, values)
    }
}

fn describe_cache(status: &CacheStatus) -> String {
    match status {
        CacheStatus::Hit(p) => format!("hit {}", p.display()),
        CacheStatus::Stored(p) => format!("stored {}", p.display()),
        CacheStatus::Disabled => "disabled".to_string(),
    }
}

fn borrowed(values: &[(String, f64)]) -> Vec<(&str, f64)> {
    values.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

/// Compute the metric contract on one split's scores.
fn score(
    registry: &Registry,
    data: &ExperimentData<'_>,
    split: Split,
    scores: &[f64],
    threshold: f64,
) -> anyhow::Result<MetricsReport> {
    let split_data = data.split(split);
    anyhow::ensure!(
        scores.len() == split_data.len(),
        "the predictor returned {} scores for the {split} split of {} samples",
        scores.len(),
        split_data.len()
    );
    if let Some(bad) = scores.iter().position(|s| !s.is_finite()) {
        anyhow::bail!(RunFailure::new(format!(
            "the model's score for {split} sample `{}` is {}",
            split_data.ids[bad], scores[bad]
        )));
    }
    let mut set = PredictionSet::new(&split_data.labels, scores);
    for (name, column) in data.attribute_names().iter().zip(&split_data.attributes) {
        set = set.with_attribute(name, column);
    }
    evaluate(registry, &set, threshold)
}

/// `id,y_true,y_score,<attributes...>`: readable by `fairlab metrics`.
fn predictions_csv(data: &ExperimentData<'_>, split: Split, scores: &[f64]) -> String {
    let s = data.split(split);
    let mut out = format!("id,y_true,y_score,{}\n", data.attribute_names().join(","));
    for i in 0..s.len() {
        let attrs: Vec<&str> = s.attributes.iter().map(|col| col[i].as_str()).collect();
        out.push_str(&format!(
            "{},{},{},{}\n",
            s.ids[i],
            s.labels[i],
            scores[i],
            attrs.join(",")
        ));
    }
    out
}

/// The runner's [`DataAccess`]: splits, cached features, and pixels on demand.
struct ExperimentData<'a> {
    dataset: &'a dyn Dataset,
    backbone: &'a dyn Backbone,
    splits: HashMap<Split, SplitData>,
    features: SplitFeatures,
    on_device: HashMap<Split, OnceCell<Tensor>>,
}

impl<'a> ExperimentData<'a> {
    fn new(dataset: &'a dyn Dataset, backbone: &'a dyn Backbone, features: SplitFeatures) -> Self {
        let splits = Split::ALL
            .into_iter()
            .map(|split| {
                let samples = dataset.split(split);
                let attributes = (0..dataset.attribute_names().len())
                    .map(|a| samples.iter().map(|s| s.attributes[a].clone()).collect())
                    .collect();
                let data = SplitData {
                    ids: samples.iter().map(|s| s.id.clone()).collect(),
                    labels: samples.iter().map(|s| s.label).collect(),
                    attributes,
                };
                (split, data)
            })
            .collect();
        let on_device = Split::ALL.into_iter().map(|s| (s, OnceCell::new())).collect();
        Self {
            dataset,
            backbone,
            splits,
            features,
            on_device,
        }
    }
}

impl DataAccess for ExperimentData<'_> {
    fn backbone(&self) -> &dyn Backbone {
        self.backbone
    }

    fn attribute_names(&self) -> &[String] {
        self.dataset.attribute_names()
    }

    fn split(&self, split: Split) -> &SplitData {
        &self.splits[&split]
    }

    fn features(&self, split: Split) -> anyhow::Result<Tensor> {
        let cell = &self.on_device[&split];
        if let Some(t) = cell.get() {
            return Ok(t.clone());
        }
        let t = self.features[&split].to_device(self.backbone.device())?;
        Ok(cell.get_or_init(|| t).clone())
    }

    fn unit_pixels(&self, split: Split, start: usize, len: usize) -> anyhow::Result<Tensor> {
        let samples = self.dataset.split(split);
        let end = (start + len).min(samples.len());
        anyhow::ensure!(start < end, "no {split} samples in {start}..{}", start + len);
        crate::features::unit_pixels(self.backbone, self.dataset, &samples[start..end])
    }
}

/// Logs what the debiaser reports to the run.
struct RunMonitor<'a> {
    metrics: MetricLog<'a>,
    registry: &'a Registry,
    data: &'a ExperimentData<'a>,
    threshold: f64,
    bar: Option<indicatif::ProgressBar>,
}

impl TrainingMonitor for RunMonitor<'_> {
    fn epoch(&mut self, epoch: usize, train_loss: f64, val_scores: Option<&[f64]>) -> anyhow::Result<()> {
        interrupt::check()?;
        let mut values = vec![("train_loss".to_string(), train_loss)];
        if !train_loss.is_finite() {
            self.metrics.log(epoch as i64, &borrowed(&values))?;
            anyhow::bail!(RunFailure::new(format!(
                "the training loss is {train_loss} at epoch {epoch}"
            )));
        }
        if let Some(scores) = val_scores {
            values.extend(score(self.registry, self.data, Split::Val, scores, self.threshold)?.flatten("val"));
        }
        self.metrics.log(epoch as i64, &borrowed(&values))
    }

    fn log(&mut self, step: usize, values: &[(&str, f64)]) -> anyhow::Result<()> {
        interrupt::check()?;
        self.metrics.log(step as i64, values)
    }

    fn progress(&mut self, done: usize, total: usize) {
        let bar = self
            .bar
            .get_or_insert_with(|| crate::progress::bar(total as u64, "training"));
        bar.set_position(done as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::RunInfo;

    fn record(params: &[(&str, &str)]) -> RunRecord {
        RunRecord {
            info: RunInfo {
                run_id: "r".into(),
                experiment_id: "1".into(),
                run_name: "r".into(),
                status: RunStatus::Finished,
                start_time: 0,
                end_time: Some(1),
                artifact_uri: String::new(),
            },
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            tags: Default::default(),
            metrics: Default::default(),
        }
    }

    fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn param_differences_list_changed_added_and_removed_keys() {
        let run = record(&[("a", "1"), ("b", "2"), ("gone", "x"), ("hf_token", "hf_old")]);
        let same = [("gone", "x"), ("b", "2"), ("a", "1"), ("hf_token", "hf_old")];
        assert!(param_differences(&run, &owned(&same)).is_empty());
        assert_eq!(
            param_differences(
                &run,
                &owned(&[("a", "1"), ("b", "3"), ("hf_token", "***"), ("new", &"y".repeat(100))])
            ),
            [
                "b: run has 2, config gives 3".to_string(),
                "gone: run has x, config gives nothing".to_string(),
                "hf_token: run has ***, config gives ***".to_string(),
                format!("new: run has nothing, config gives {}…", "y".repeat(79)),
            ]
        );
    }
}
