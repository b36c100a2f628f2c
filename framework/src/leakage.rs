//! Sensitive-attribute leakage: how well an adversary, a linear probe retrained on a model's
//! representation of the training split, recovers each sensitive attribute on the test split.
//! Reported as ROC AUC (0.5 = nothing left to recover), the same measure for every method, so
//! DNE's noise edit can be compared with methods that leave the features alone.

use crate::dataset::Split;
use crate::debiaser::{FitContext, Predictor};
use crate::metric::{evaluate, mlflow_name, PredictionSet};
use crate::probe::{train_probe_with, ProbeConfig, ProbeTraining};

/// `(attribute, test AUC)` for every sensitive attribute. A binary attribute gets one probe (its
/// second group, in name order, against the first); an attribute with more groups gets one
/// one-vs-rest probe per group and the mean of their AUCs. Groups absent from the training or test
/// split (AUC undefined) are skipped; an attribute with no defined AUC is left out.
pub fn measure(ctx: &mut FitContext<'_>, predictor: &dyn Predictor) -> anyhow::Result<Vec<(String, f64)>> {
    // The adversary: the default probe (logistic regression, AdamW, 30 epochs, standardised).
    let cfg = ProbeConfig::default();
    let train = predictor.representation(ctx.data, Split::Train)?;
    let test = predictor.representation(ctx.data, Split::Test)?;
    let names = ctx.data.attribute_names().to_vec();
    let mut out = Vec::new();
    for (a, name) in names.iter().enumerate() {
        let train_column = ctx.data.split(Split::Train).attributes[a].clone();
        let test_column = ctx.data.split(Split::Test).attributes[a].clone();
        let mut groups: Vec<&String> = train_column.iter().collect();
        groups.sort();
        groups.dedup();
        let targets: Vec<&String> = if groups.len() == 2 { vec![groups[1]] } else { groups };
        let mut aucs = Vec::new();
        for group in targets {
            let codes = |column: &[String]| column.iter().map(|g| u8::from(g == group)).collect::<Vec<u8>>();
            let (train_codes, test_codes) = (codes(&train_column), codes(&test_column));
            if train_codes.iter().all(|&c| c == train_codes[0]) {
                continue;
            }
            let prefix = mlflow_name(&format!("leakage_{name}_{group}_"));
            let probe = train_probe_with(ctx, &cfg, &train, &train_codes, ProbeTraining::auxiliary(&prefix))?;
            let scores = probe.scores(&test)?;
            let report = evaluate(ctx.registry, &PredictionSet::new(&test_codes, &scores), 0.5)?;
            aucs.extend(report.overall.get("auc"));
        }
        if !aucs.is_empty() {
            out.push((name.clone(), aucs.iter().sum::<f64>() / aucs.len() as f64));
        }
    }
    Ok(out)
}
