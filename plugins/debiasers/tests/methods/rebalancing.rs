//! Resampling and group DRO against ERM on features where a minority group's decision boundary
//! differs from the majority's: both must help the minority.

use fairlab_framework::debiaser::{DataAccess, SplitData};
use fairlab_framework::Split;

use crate::support::{self, Gaussian, SyntheticData, SyntheticSplit};

/// `n` samples of 4 features, 10% in group `min`, labels balanced within each group. In `maj` the
/// label shows in feature 0; in `min` feature 0 points the other way and feature 1 carries it.
/// Features 2 and 3 are noise.
fn split(rng: &mut Gaussian, n: usize) -> SyntheticSplit {
    let mut features = Vec::new();
    let mut data = SplitData::default();
    let mut groups = Vec::new();
    for i in 0..n {
        let minority = i % 10 == 0;
        let label = u8::from(rng.uniform() < 0.5);
        let s = if label == 1 { 1.0 } else { -1.0 };
        let (x0, x1) = if minority {
            (-s + 0.8 * rng.normal(), 1.5 * s + 0.8 * rng.normal())
        } else {
            (s + 0.8 * rng.normal(), rng.normal())
        };
        features.extend([x0, x1, rng.normal(), rng.normal()].map(|v| v as f32));
        data.ids.push(format!("s{i}"));
        data.labels.push(label);
        groups.push(if minority { "min" } else { "maj" }.to_string());
    }
    data.attributes = vec![groups];
    SyntheticSplit { features, dim: 4, data }
}

fn data() -> SyntheticData {
    let mut rng = Gaussian::new(11);
    let splits = [
        (Split::Train, split(&mut rng, 2000)),
        (Split::Val, split(&mut rng, 500)),
        (Split::Test, split(&mut rng, 2000)),
    ];
    SyntheticData::new(&["grp"], splits)
}

/// Test-split accuracy of each (group, label) cell, `[maj_y0, maj_y1, min_y0, min_y1]`.
fn cell_accuracies(method: &str, settings: &str) -> Vec<f64> {
    let data = data();
    let predictor = support::fit(method, settings, &data, 0).0.unwrap();
    let scores = predictor.predict(&data, Split::Test).unwrap();
    let test = data.split(Split::Test);
    let mut hits = [0usize; 4];
    let mut totals = [0usize; 4];
    for (i, score) in scores.iter().enumerate() {
        let cell = 2 * usize::from(test.attributes[0][i] == "min") + test.labels[i] as usize;
        totals[cell] += 1;
        hits[cell] += usize::from((*score >= 0.5) == (test.labels[i] == 1));
    }
    hits.iter().zip(totals).map(|(&h, t)| h as f64 / t as f64).collect()
}

fn worst(accuracies: &[f64]) -> f64 {
    accuracies.iter().copied().fold(f64::INFINITY, f64::min)
}

const PROBE: &str = "epochs: 30, batch_size: 64, optimizer: {kind: adamw, lr: 0.01, weight_decay: 0.0}";

#[test]
fn group_dro_raises_the_worst_group_accuracy_over_erm() {
    let erm = cell_accuracies("erm", &format!("{{{PROBE}}}"));
    let dro = cell_accuracies("group-dro", &format!("{{{PROBE}, attribute: grp, step_size: 0.1}}"));
    assert!(worst(&dro) > worst(&erm) + 0.15, "erm {erm:?}, group-dro {dro:?}");
}

#[test]
fn resampling_raises_the_minority_accuracy_over_erm() {
    let erm = cell_accuracies("erm", &format!("{{{PROBE}}}"));
    let by_group = cell_accuracies("resampling", &format!("{{{PROBE}, attribute: grp}}"));
    let by_cell = cell_accuracies("resampling", &format!("{{{PROBE}, by: group-label}}"));
    for balanced in [&by_group, &by_cell] {
        // the minority's positives (recall) and negatives
        assert!(balanced[3] > erm[3] + 0.15, "erm {erm:?}, resampling {balanced:?}");
        assert!(balanced[2] > erm[2] + 0.15, "erm {erm:?}, resampling {balanced:?}");
    }
}
