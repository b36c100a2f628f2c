//! The experiment runner: data -> backbone features (cached) -> debiaser -> metrics on val and test
//! -> tracking.
//!
//! Configuration problems that can be found without touching data (unknown keys, unknown plugin
//! kinds, bad plugin settings) are reported before a run is created. From then on every failure
//! ends the run as FAILED with its reason in the `fairlab.failure_reason` tag, so nothing is
//! silently dropped.

use std::cell::OnceCell;
use std::collections::HashMap;

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
use crate::tracking::{self, ActiveRun};

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

/// Run one experiment end to end.
pub fn run(registry: &Registry, experiment: &Experiment, options: &RunOptions) -> Result<RunOutcome, RunError> {
    validate(registry, experiment).map_err(RunError::before_run)?;
    let c = &experiment.config;
    let tracker = tracking::open(options.tracking_uri.as_deref()).map_err(RunError::before_run)?;
    let experiment_name = options
        .experiment_name
        .clone()
        .unwrap_or_else(|| c.tracking.experiment.clone());
    let run_name = c.tracking.run_name.clone().unwrap_or_else(|| c.name.clone());
    let mut tags = run_tags(experiment);
    tags.retain(|(k, _)| !options.tags.iter().any(|(o, _)| o == k));
    tags.extend(options.tags.iter().cloned());
    let run = ActiveRun::start(tracker.clone(), &experiment_name, &run_name, tags).map_err(RunError::before_run)?;
    let run_id = run.id().to_string();
    let fail = |error: anyhow::Error| RunError {
        error,
        run_id: Some(run_id.clone()),
        tracking_uri: Some(tracker.uri()),
    };

    match execute(registry, experiment, &run) {
        Ok((val, test, cache)) => {
            run.finish().map_err(fail)?;
            Ok(RunOutcome {
                run_id: run_id.clone(),
                tracking_uri: tracker.uri(),
                experiment_name,
                val,
                test,
                cache,
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
) -> anyhow::Result<(MetricsReport, MetricsReport, CacheStatus)> {
    let c = &experiment.config;
    let params: Vec<(String, String)> = experiment.flat_params().into_iter().collect();
    run.log_params(&params)?;
    run.log_artifact("config.yaml", experiment.resolved_yaml().as_bytes())?;

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
        run,
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
            run.log_metrics(0, &borrowed(&leakage))?;
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
        run.log_metrics(0, &borrowed(&report.flatten(split.as_str())))?;
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
    run: &'a ActiveRun,
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
            self.run.log_metrics(epoch as i64, &borrowed(&values))?;
            anyhow::bail!(RunFailure::new(format!(
                "the training loss is {train_loss} at epoch {epoch}"
            )));
        }
        if let Some(scores) = val_scores {
            values.extend(score(self.registry, self.data, Split::Val, scores, self.threshold)?.flatten("val"));
        }
        self.run.log_metrics(epoch as i64, &borrowed(&values))
    }

    fn log(&mut self, step: usize, values: &[(&str, f64)]) -> anyhow::Result<()> {
        interrupt::check()?;
        self.run.log_metrics(step as i64, values)
    }

    fn progress(&mut self, done: usize, total: usize) {
        let bar = self
            .bar
            .get_or_insert_with(|| crate::progress::bar(total as u64, "training"));
        bar.set_position(done as u64);
    }
}
