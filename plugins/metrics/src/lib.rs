//! # fairlab-metrics
//!
//! The built-in [`Metric`](fairlab_framework::Metric) plugins: every key of the fairness-metric
//! contract (`docs/metrics.md`), and reading predictions from CSV for `fairlab metrics`.
//!
//! Per set of samples (all samples, and each group of each attribute): `auc`, `acc`, `tpr`,
//! `tnr`, `fpr`, `selection_rate`, `bce`, `ece`. Per attribute: `es_auc`, `es_acc`, `dpd`,
//! `eo_p`, `eo_n`, `deodds`, `worst_auc`, `auc_gap`, `acc_gap`.

use std::sync::Arc;

use fairlab_framework::Registry;

pub mod auc;
pub mod calibration;
mod chunk;
mod columns;
pub mod equalized_odds;
pub mod equity_scaled;
mod interner;
mod layout;
pub mod log_loss;
mod number;
mod plain;
pub mod predictions;
pub mod rates;
pub mod spread;
mod swar;
mod text;
pub mod worst_group;

pub use predictions::{parse_predictions, read_predictions, AttributeColumn, Predictions};

/// Register every metric of the contract, per-set metrics first, in the contract's order (the
/// order reports list them in).
pub fn register(registry: &mut Registry) {
    registry.register_metric(Arc::new(auc::Auc));
    let [acc, tpr, tnr, fpr, selection_rate] = rates::rates();
    for rate in [acc, tpr, tnr, fpr, selection_rate] {
        registry.register_metric(Arc::new(rate));
    }
    registry.register_metric(Arc::new(log_loss::Bce));
    registry.register_metric(Arc::new(calibration::Ece));
    registry.register_metric(Arc::new(equity_scaled::EquityScaled::auc()));
    registry.register_metric(Arc::new(equity_scaled::EquityScaled::acc()));
    let [dpd, eo_p, eo_n, auc_gap, acc_gap] = spread::spreads();
    for spread in [dpd, eo_p, eo_n] {
        registry.register_metric(Arc::new(spread));
    }
    registry.register_metric(Arc::new(equalized_odds::EqualizedOdds));
    registry.register_metric(Arc::new(worst_group::WorstAuc));
    registry.register_metric(Arc::new(auc_gap));
    registry.register_metric(Arc::new(acc_gap));
}
