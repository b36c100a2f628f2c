//! The probe training loop every probe-based method runs.

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{Batch, BatchLoss, BatchPlan, LinearProbe, MeanBce, ProbeConfig, Shuffled};
use crate::debiaser::FitContext;
use crate::error::{ConfigError, RunFailure};

/// Where a probe's training is reported.
#[derive(Debug, Clone, Copy)]
pub enum Report<'a> {
    /// The experiment's target model: every epoch goes to `monitor.epoch(epoch, train_loss,
    /// val_scores)` (the runner logs `train_loss` and the `val_*` metrics, and fails the run on a
    /// non-finite loss), followed by `monitor.progress(epoch, epochs)`. `val`: the validation
    /// features to score after each epoch.
    Target {
        /// Validation features `[N, D]`, or `None` to log only the training loss.
        val: Option<&'a Tensor>,
    },
    /// An auxiliary model trained next to the target (DNE's sensitive-attribute classifier): every
    /// epoch logs `<prefix>train_loss` with `monitor.log(epoch, ..)`; `monitor.epoch` and
    /// `monitor.progress` are never called, so the target's metrics and progress bar are left
    /// alone. A non-finite loss is logged, then fails the run.
    Auxiliary {
        /// Prepended to every logged name, e.g. `sa_`.
        prefix: &'a str,
    },
}

/// How [`train_probe_with`] trains: the batch plan, the loss and where results are reported.
pub struct ProbeTraining<'a> {
    /// The mini-batches of each epoch.
    pub plan: Box<dyn BatchPlan + 'a>,
    /// The loss of each batch.
    pub loss: Box<dyn BatchLoss + 'a>,
    /// Where each epoch is reported.
    pub report: Report<'a>,
}

impl<'a> ProbeTraining<'a> {
    /// The experiment's target model ([`Report::Target`]) trained as ERM: [`Shuffled`] batches,
    /// [`MeanBce`].
    pub fn target(val: Option<&'a Tensor>) -> Self {
        Self::reporting(Report::Target { val })
    }

    /// An auxiliary model logged under `prefix` ([`Report::Auxiliary`]) trained as ERM. DNE's
    /// sensitive-attribute classifier: `train_probe_with(ctx, &cfg, &features, &sa_labels,
    /// ProbeTraining::auxiliary("sa_"))`.
    pub fn auxiliary(prefix: &'a str) -> Self {
        Self::reporting(Report::Auxiliary { prefix })
    }

    fn reporting(report: Report<'a>) -> Self {
        Self {
            plan: Box::new(Shuffled::default()),
            loss: Box::new(MeanBce),
            report,
        }
    }

    /// The same with another batch plan.
    pub fn with_plan(mut self, plan: impl BatchPlan + 'a) -> Self {
        self.plan = Box::new(plan);
        self
    }

    /// The same with another loss.
    pub fn with_loss(mut self, loss: impl BatchLoss + 'a) -> Self {
        self.loss = Box::new(loss);
        self
    }
}

/// Train a probe as the experiment's target model with ERM: shuffled mini-batches, mean binary
/// cross-entropy, every epoch reported with validation scores when `val` is given. Shorthand for
/// [`train_probe_with`] and [`ProbeTraining::target`].
pub fn train_probe(
    ctx: &mut FitContext<'_>,
    cfg: &ProbeConfig,
    features: &Tensor,
    labels: &[u8],
    val: Option<&Tensor>,
) -> anyhow::Result<LinearProbe> {
    train_probe_with(ctx, cfg, features, labels, ProbeTraining::target(val))
}

/// Train a probe on `features` `[N, D]` with binary `labels` for `cfg.epochs` epochs.
///
/// Each epoch takes its batches from `training.plan` (seeded from `ctx.seed`) and runs one
/// optimiser step per `optimizer.batches_per_step()` consecutive batches: objective slot `b` of a
/// step evaluates `training.loss` on the step's `b`-th batch (on batch `b mod k` when fewer, `k`,
/// remain). The epoch's training loss is the mean of the steps' losses weighted by their samples.
/// After each epoch it is reported as `training.report` says, then `training.loss`'s
/// [`BatchLoss::epoch_values`] are logged at step `epoch` (prefixed for an auxiliary model).
pub fn train_probe_with(
    ctx: &mut FitContext<'_>,
    cfg: &ProbeConfig,
    features: &Tensor,
    labels: &[u8],
    mut training: ProbeTraining<'_>,
) -> anyhow::Result<LinearProbe> {
    let device: Device = features.device().clone();
    let n = labels.len();
    anyhow::ensure!(n > 0, RunFailure::new("the training split is empty"));
    anyhow::ensure!(
        cfg.batch_size > 0,
        ConfigError::at_key("debiaser.batch_size", "must be at least 1")
    );
    anyhow::ensure!(
        features.dims2()?.0 == n,
        "{} feature rows for {n} labels",
        features.dims2()?.0
    );
    let probe = LinearProbe::new(features, cfg.standardize)?;
    let mut optimizer = ctx.optimizer(&cfg.optimizer, probe.vars())?;
    let per_step = optimizer.batches_per_step().max(1);
    let targets = Tensor::from_iter(labels.iter().map(|&l| l as f32), &device)?;
    let mut rng = StdRng::seed_from_u64(ctx.seed);
    for epoch in 1..=cfg.epochs {
        let batches = training.plan.epoch(n, cfg.batch_size, &mut rng)?;
        let (mut total, mut samples) = (0.0, 0);
        for step in batches.chunks(per_step) {
            let inputs = step
                .iter()
                .map(|indices| {
                    let idx = Tensor::new(indices.as_slice(), &device)?;
                    Ok((features.index_select(&idx, 0)?, targets.index_select(&idx, 0)?))
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            let loss = &mut training.loss;
            let report = optimizer.step(&mut |slot| {
                let b = slot % step.len();
                let (x, y) = &inputs[b];
                let logits = probe.logits(x)?;
                loss.loss(&Batch {
                    probe: &probe,
                    features,
                    indices: &step[b],
                    logits: &logits,
                    targets: y,
                })
            })?;
            let count: usize = step.iter().map(Vec::len).sum();
            total += report.loss * count as f64;
            samples += count;
        }
        anyhow::ensure!(samples > 0, "the batch plan gave no sample in epoch {epoch}");
        let train_loss = total / samples as f64;
        let extra = training.loss.epoch_values();
        match training.report {
            Report::Target { val } => {
                let val_scores = val.map(|v| probe.scores(v)).transpose()?;
                ctx.monitor.epoch(epoch, train_loss, val_scores.as_deref())?;
                log(ctx, epoch, "", &extra)?;
                ctx.monitor.progress(epoch, cfg.epochs);
            }
            Report::Auxiliary { prefix } => {
                log(ctx, epoch, prefix, &[("train_loss".to_string(), train_loss)])?;
                anyhow::ensure!(
                    train_loss.is_finite(),
                    RunFailure::new(format!(
                        "the training loss of the auxiliary `{prefix}` probe is {train_loss} at epoch {epoch}"
                    ))
                );
                log(ctx, epoch, prefix, &extra)?;
            }
        }
    }
    Ok(probe)
}

/// Log `values` at `step`, each name prefixed.
fn log(ctx: &mut FitContext<'_>, step: usize, prefix: &str, values: &[(String, f64)]) -> anyhow::Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = values.iter().map(|(name, _)| format!("{prefix}{name}")).collect();
    let pairs: Vec<(&str, f64)> = names
        .iter()
        .map(String::as_str)
        .zip(values.iter().map(|v| v.1))
        .collect();
    ctx.monitor.log(step, &pairs)
}
