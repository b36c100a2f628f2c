//! Bootstrap confidence intervals: every metric recomputed on resamples of the data, stratified
//! by group, and the percentile interval of its values.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use super::evaluate::evaluate;
use super::input::{GroupColumn, PredictionSet};
use super::report::{BootstrapSettings, MetricValue, MetricsReport};
use crate::registry::Registry;

/// Coverage of the intervals.
const CONFIDENCE: f64 = 0.95;

/// [`evaluate`], plus a 95% percentile confidence interval for every value from `resamples`
/// bootstrap resamples drawn with `seed`. Each resample draws, with replacement, as many samples
/// from each stratum as it holds, a stratum being one combination of groups of all attributes, so
/// every group keeps its size. An interval covers the resamples where the value is defined.
pub fn evaluate_with_bootstrap(
    registry: &Registry,
    set: &PredictionSet<'_>,
    threshold: f64,
    resamples: usize,
    seed: u64,
) -> anyhow::Result<MetricsReport> {
    anyhow::ensure!(resamples > 0, "the number of bootstrap resamples must be at least 1");
    let mut report = evaluate(registry, set, threshold)?;
    let columns: Vec<_> = set.attributes.iter().map(|(_, column)| column.coded()).collect();
    let strata = strata(set.len(), columns.iter().map(|(_, codes)| &codes[..]));
    let mut master = StdRng::seed_from_u64(seed);
    let seeds: Vec<u64> = (0..resamples).map(|_| master.random()).collect();
    let replicas: Vec<MetricsReport> = seeds
        .into_par_iter()
        .map(|seed| {
            let picks = resample(&strata, &mut StdRng::seed_from_u64(seed));
            let gather = |values: &[u8]| picks.iter().map(|&i| values[i as usize]).collect::<Vec<_>>();
            let y_true = gather(set.y_true);
            let y_score: Vec<f64> = picks.iter().map(|&i| set.y_score[i as usize]).collect();
            let y_pred = set.y_pred.map(gather);
            let codes: Vec<Vec<u32>> = columns
                .iter()
                .map(|(_, codes)| picks.iter().map(|&i| codes[i as usize]).collect())
                .collect();
            let resampled = PredictionSet {
                y_true: &y_true,
                y_score: &y_score,
                y_pred: y_pred.as_deref(),
                attributes: set
                    .attributes
                    .iter()
                    .zip(&columns)
                    .zip(&codes)
                    .map(|(((name, _), (levels, _)), codes)| (*name, GroupColumn::Coded { levels, codes }))
                    .collect(),
            };
            evaluate(registry, &resampled, threshold)
        })
        .collect::<anyhow::Result<_>>()?;

    for (k, value) in values_mut(&mut report).into_iter().enumerate() {
        let mut draws: Vec<f64> = replicas.iter().filter_map(|r| values(r)[k].value).collect();
        value.ci = interval(&mut draws);
    }
    report.bootstrap = Some(BootstrapSettings {
        resamples,
        seed,
        confidence: CONFIDENCE,
    });
    Ok(report)
}

/// The samples of each stratum (combination of groups), by interning the group codes attribute
/// after attribute.
fn strata<'a>(n: usize, columns: impl Iterator<Item = &'a [u32]>) -> Vec<Vec<u32>> {
    let mut cell = vec![0u32; n];
    for codes in columns {
        let mut index: HashMap<(u32, u32), u32> = HashMap::new();
        for (c, &code) in cell.iter_mut().zip(codes) {
            let next = index.len() as u32;
            *c = *index.entry((*c, code)).or_insert(next);
        }
    }
    let mut strata: Vec<Vec<u32>> = Vec::new();
    for (i, &c) in cell.iter().enumerate() {
        if strata.len() <= c as usize {
            strata.resize_with(c as usize + 1, Vec::new);
        }
        strata[c as usize].push(i as u32);
    }
    strata
}

/// Sample indices: from each stratum, as many draws with replacement as it has samples.
fn resample(strata: &[Vec<u32>], rng: &mut StdRng) -> Vec<u32> {
    let mut picks = Vec::with_capacity(strata.iter().map(Vec::len).sum());
    for members in strata {
        picks.extend((0..members.len()).map(|_| members[rng.random_range(0..members.len())]));
    }
    picks
}

/// Every metric value of a report, in a fixed order (reports of resamples have the same layout:
/// stratification keeps every group).
fn values(report: &MetricsReport) -> Vec<&MetricValue> {
    let mut out: Vec<&MetricValue> = report.overall.metrics.iter().collect();
    for a in &report.attributes {
        out.extend(&a.metrics);
        for (_, set) in &a.groups {
            out.extend(&set.metrics);
        }
    }
    out
}

/// [`values`], mutably.
fn values_mut(report: &mut MetricsReport) -> Vec<&mut MetricValue> {
    let mut out: Vec<&mut MetricValue> = report.overall.metrics.iter_mut().collect();
    for a in &mut report.attributes {
        out.extend(&mut a.metrics);
        for (_, set) in &mut a.groups {
            out.extend(&mut set.metrics);
        }
    }
    out
}

/// The central [`CONFIDENCE`] percentile interval of `draws` (linear interpolation between order
/// statistics, as numpy's default); `None` without draws.
fn interval(draws: &mut [f64]) -> Option<[f64; 2]> {
    if draws.is_empty() {
        return None;
    }
    draws.sort_unstable_by(f64::total_cmp);
    let quantile = |q: f64| {
        let pos = q * (draws.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        draws[lo] + (draws[hi] - draws[lo]) * (pos - lo as f64)
    };
    let tail = (1.0 - CONFIDENCE) / 2.0;
    Some([quantile(tail), quantile(1.0 - tail)])
}
