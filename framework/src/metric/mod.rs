//! Metrics: the streaming statistics an evaluation accumulates, the `Metric` plugin kind that
//! turns them into numbers, and the report.
//!
//! An evaluation keeps one [`SetStats`] (confusion matrix at the threshold, summed log loss,
//! calibration bins, sorted scores per class) for all samples and for every group of every
//! sensitive attribute, in an [`Accumulator`] that is updated in one pass per batch and merges
//! across batches and workers. Each registered [`Metric`] is then computed from those statistics:
//! per set ([`SetMetric`], e.g. `auc`) or per attribute ([`AttributeMetric`], e.g. `dpd`).
//! [`evaluate`] does all of this for one [`PredictionSet`] and returns a [`MetricsReport`];
//! [`evaluate_with_bootstrap`] adds percentile confidence intervals from stratified resamples.

mod accumulator;
mod bootstrap;
mod calibration;
mod confusion;
mod evaluate;
mod flatten;
mod input;
mod plugin;
mod ranking;
mod report;
mod set_stats;
mod sum;
mod table;
#[cfg(test)]
mod tests;

pub use accumulator::{Accumulator, AttributeStats};
pub use bootstrap::evaluate_with_bootstrap;
pub use calibration::{calibration_bin, Calibration, CalibrationBin, CALIBRATION_BINS};
pub use confusion::Confusion;
pub use evaluate::evaluate;
pub use flatten::mlflow_name;
pub use input::{GroupColumn, PredictionSet};
pub use plugin::{AttributeMetric, AttributeValues, Metric, Scope, SetMetric};
pub use ranking::Ranking;
pub use report::{AttributeReport, BootstrapSettings, MetricValue, MetricsReport, SetReport};
pub use set_stats::{SetStats, LOG_LOSS_EPS};
pub use sum::CompensatedSum;
