//! Unit tests of the statistics, the accumulator and the report (the metric plugins themselves
//! are tested in `plugins/metrics`).

use std::sync::Arc;

use super::*;
use crate::registry::Registry;

/// `n_pos`: the number of positives, as a per-set metric.
struct Positives;

impl Metric for Positives {
    fn name(&self) -> &str {
        "n_pos"
    }
    fn description(&self) -> &str {
        "number of positives"
    }
    fn scope(&self) -> Scope<'_> {
        Scope::Set(self)
    }
}

impl SetMetric for Positives {
    fn compute(&self, stats: &SetStats) -> Option<f64> {
        let p = stats.confusion().positives();
        (p > 0).then_some(p as f64)
    }
}

/// `max_pos`: the largest group's positives, as a per-attribute metric.
struct MaxPositives;

impl Metric for MaxPositives {
    fn name(&self) -> &str {
        "max_pos"
    }
    fn description(&self) -> &str {
        "most positives in a group"
    }
    fn scope(&self) -> Scope<'_> {
        Scope::Attribute(self)
    }
}

impl AttributeMetric for MaxPositives {
    fn requires(&self) -> &[&str] {
        &["n_pos"]
    }
    fn compute(&self, attribute: &AttributeValues<'_>) -> Option<f64> {
        attribute.groups("n_pos").into_iter().flatten().reduce(f64::max)
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register_metric(Arc::new(Positives));
    registry.register_metric(Arc::new(MaxPositives));
    registry
}

fn groups(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

#[test]
fn calibration_bins_follow_the_f64_edges() {
    for (score, bin) in [
        (0.0, 0),
        (0.1, 1),
        (0.29, 2),
        (0.3, 3),
        (0.6, 6),
        (0.7, 7),
        (0.99, 9),
        (1.0, 9),
    ] {
        assert_eq!(calibration_bin(score), bin, "score {score}");
    }
}

#[test]
fn compensated_sums_keep_low_order_bits() {
    let mut sum = CompensatedSum::default();
    for x in [1e16, 1.0, -1e16, 1.0] {
        sum.add(x);
    }
    assert_eq!(sum.value(), 2.0);
    let mut other = CompensatedSum::default();
    other.add(0.5);
    sum.merge(&other);
    assert_eq!(sum.value(), 2.5);
}

#[test]
fn confusion_counts_each_outcome() {
    let mut c = Confusion::default();
    for (positive, predicted) in [
        (true, true),
        (true, false),
        (false, true),
        (false, false),
        (false, false),
    ] {
        c.observe(positive, predicted);
    }
    assert_eq!(
        (c.true_positives, c.false_negatives, c.false_positives, c.true_negatives),
        (1, 1, 1, 2)
    );
    assert_eq!(
        (c.total(), c.positives(), c.negatives(), c.predicted_positives()),
        (5, 2, 3, 2)
    );
}

#[test]
fn batches_merge_into_sorted_rankings() {
    let mut accumulator = Accumulator::new(0.5, ["g"]).unwrap();
    let g = groups(&["a", "b", "a"]);
    accumulator
        .update(&PredictionSet::new(&[1, 0, 1], &[0.9, 0.2, 0.1]).with_attribute("g", &g))
        .unwrap();
    let g = groups(&["c", "a"]);
    accumulator
        .update(&PredictionSet::new(&[1, 0], &[0.5, -0.0]).with_attribute("g", &g))
        .unwrap();
    let overall = accumulator.overall();
    assert_eq!(overall.n(), 5);
    assert_eq!(overall.ranking().positives(), [0.1, 0.5, 0.9]);
    assert_eq!(overall.ranking().negatives(), [0.0, 0.2]);
    assert!(overall.ranking().negatives()[0].is_sign_positive());
    let names: Vec<&String> = accumulator.attributes()[0].groups().keys().collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(accumulator.attributes()[0].groups()["a"].n(), 3);
    accumulator.clear();
    assert_eq!(accumulator.overall().n(), 0);
    assert!(accumulator.attributes()[0].groups().is_empty());
}

#[test]
fn coded_columns_skip_unused_levels_and_join_repeated_ones() {
    let levels = groups(&["x", "unused", "x"]);
    let set = PredictionSet::new(&[1, 0], &[0.7, 0.4]).with_attribute(
        "g",
        GroupColumn::Coded {
            levels: &levels,
            codes: &[0, 2],
        },
    );
    let report = evaluate(&registry(), &set, 0.5).unwrap();
    let g = report.attribute("g").unwrap();
    assert_eq!(g.groups.len(), 1);
    assert_eq!(g.group("x").unwrap().n, 2);
}

#[test]
fn bad_batches_are_rejected() {
    let mut accumulator = Accumulator::new(0.5, ["g"]).unwrap();
    let g = groups(&["a", "b"]);
    let error =
        |set: PredictionSet<'_>, accumulator: &mut Accumulator| accumulator.update(&set).unwrap_err().to_string();
    let message = error(
        PredictionSet::new(&[1, 2], &[0.5, 0.5]).with_attribute("g", &g),
        &mut accumulator,
    );
    assert!(message.contains("y_true of sample 1 is 2"), "{message}");
    let message = error(
        PredictionSet::new(&[1, 0], &[0.5, f64::NAN]).with_attribute("g", &g),
        &mut accumulator,
    );
    assert!(message.contains("y_score of sample 1"), "{message}");
    let message = error(
        PredictionSet::new(&[1, 0], &[0.5]).with_attribute("g", &g),
        &mut accumulator,
    );
    assert!(message.contains("y_score has 1 entries"), "{message}");
    let message = error(
        PredictionSet::new(&[1, 0], &[0.5, 0.5]).with_attribute("h", &g),
        &mut accumulator,
    );
    assert!(message.contains("attributes"), "{message}");
    let message = error(
        PredictionSet::new(&[1, 0], &[0.5, 0.5])
            .with_predictions(&[1, 3])
            .with_attribute("g", &g),
        &mut accumulator,
    );
    assert!(message.contains("y_pred of sample 1 is 3"), "{message}");
    assert!(Accumulator::new(f64::NAN, ["g"]).is_err());
    assert!(Accumulator::new(0.5, ["g", "g"]).is_err());
    let other = Accumulator::new(0.3, ["g"]).unwrap();
    assert!(accumulator.merge(other).unwrap_err().to_string().contains("threshold"));
    assert!(accumulator
        .compute(&registry())
        .unwrap_err()
        .to_string()
        .contains("no samples"));
}

#[test]
fn a_missing_required_metric_is_named() {
    let mut registry = Registry::new();
    registry.register_metric(Arc::new(MaxPositives));
    let g = groups(&["a"]);
    let set = PredictionSet::new(&[1], &[0.5]).with_attribute("g", &g);
    let message = evaluate(&registry, &set, 0.5).unwrap_err().to_string();
    assert!(
        message.contains("`max_pos` needs the per-set metric `n_pos`"),
        "{message}"
    );
}

fn sample_report() -> MetricsReport {
    let g = groups(&["80+", "80+", ">=50", "a_b", "a/b"]);
    let set = PredictionSet::new(&[1, 1, 0, 1, 0], &[0.9, 0.8, 0.3, 0.6, 0.1]).with_attribute("age+", &g);
    evaluate(&registry(), &set, 0.5).unwrap()
}

#[test]
fn reports_serialise_to_the_contract_shape() {
    let json = serde_json::to_string(&sample_report()).unwrap();
    assert!(
        json.starts_with(r#"{"n":5,"threshold":0.5,"overall":{"n":5,"n_pos":3.0},"attributes":{"age+":{"groups":{"80+":{"n":2,"n_pos":2.0},">=50":{"n":1,"n_pos":null},"#),
        "{json}"
    );
    assert!(
        json.contains(r#""a/b":{"n":1,"n_pos":null},"a_b":{"n":1,"n_pos":1.0}},"max_pos":2.0}},"warnings":["#),
        "{json}"
    );
}

#[test]
fn warnings_name_groups_missing_a_class() {
    let report = sample_report();
    assert!(report
        .warnings
        .contains(&"attribute 'age+': group '80+' has no negative sample; tnr and fpr undefined".to_string()));
    assert!(report
        .warnings
        .contains(&"attribute 'age+': group 'a/b' has no positive sample; tpr undefined".to_string()));
}

#[test]
fn flatten_skips_nulls_and_makes_names_mlflow_legal() {
    let flat = sample_report().flatten("test");
    let names: Vec<&str> = flat.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "test_n",
            "test_n_pos",
            "test_ageplus_max_pos",
            "test_ageplus_80plus_n",
            "test_ageplus_80plus_n_pos",
            "test_ageplus___50_n",
            "test_ageplus_a_b_n",
            "test_ageplus_a_b_2_n",
            "test_ageplus_a_b_2_n_pos",
        ]
    );
    assert_eq!(flat[2].1, 2.0);
    assert_eq!(sample_report().flatten("")[0].0, "n");
    assert_eq!(mlflow_name("São Paulo, MA"), "São Paulo_ MA");
}

#[test]
fn tables_align_columns_and_show_nulls_as_dashes() {
    let table = sample_report().to_table();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("set") && lines[0].ends_with("selection_rate"),
        "{table}"
    );
    assert!(lines[1].starts_with("overall") && lines[1].contains(" 5 "), "{table}");
    assert!(lines.iter().any(|l| l.starts_with("age+ = 80+")), "{table}");
    assert!(lines[1].trim_end().ends_with('-'), "{table}");
    assert!(table.contains("\nwarnings:\n  attribute 'age+'"), "{table}");
    let header_width = lines[0].len();
    assert!(lines[1..6].iter().all(|l| l.len() <= header_width), "{table}");
}

#[test]
fn merging_sorted_parts_keeps_every_score_in_order() {
    let parts: Vec<Vec<f64>> = vec![vec![0.1, 0.5], vec![], vec![0.2, 0.5, 0.9], vec![0.0], vec![0.3, 1.0]];
    for k in 0..=parts.len() {
        let slices: Vec<&[f64]> = parts[..k].iter().map(Vec::as_slice).collect();
        let mut expected: Vec<f64> = slices.concat();
        expected.sort_by(f64::total_cmp);
        assert_eq!(super::ranking::merge_all(&slices), expected, "{k} parts");
    }
}
