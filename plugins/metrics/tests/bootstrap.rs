//! Bootstrap confidence intervals: reproducible from the seed, around the point estimates, null
//! where a value is never defined, and serialised as `{"value": .., "ci": [lo, hi]}`.

use fairlab_framework::metric::{evaluate, evaluate_with_bootstrap, MetricsReport};
use fairlab_framework::Registry;
use fairlab_metrics::Predictions;

fn registry() -> Registry {
    let mut registry = Registry::new();
    fairlab_metrics::register(&mut registry);
    registry
}

fn case(name: &str) -> Predictions {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/metrics")
        .join(name);
    fairlab_metrics::read_predictions(&path, &[]).unwrap()
}

fn bootstrap(p: &Predictions, seed: u64) -> MetricsReport {
    evaluate_with_bootstrap(&registry(), &p.as_set(), 0.5, 200, seed).unwrap()
}

#[test]
fn intervals_are_reproducible_and_surround_the_point_estimates() {
    let p = case("case_02.csv");
    let (a, b, c) = (bootstrap(&p, 7), bootstrap(&p, 7), bootstrap(&p, 8));
    assert_eq!(a, b);
    assert_ne!(a, c);
    let plain = evaluate(&registry(), &p.as_set(), 0.5).unwrap();
    assert_eq!(a.flatten("x"), plain.flatten("x"), "the values are the point estimates");
    let auc = a.overall.metrics.iter().find(|m| m.key == "auc").unwrap();
    let [lo, hi] = auc.ci.unwrap();
    assert!(lo < auc.value.unwrap() && auc.value.unwrap() < hi, "{lo} {auc:?} {hi}");
    let sex = a.attribute("sex").unwrap();
    for m in sex
        .metrics
        .iter()
        .chain(sex.groups.iter().flat_map(|(_, s)| &s.metrics))
    {
        let [lo, hi] = m.ci.unwrap_or_else(|| panic!("{} has no interval", m.key));
        assert!(lo <= hi, "{}: {lo} > {hi}", m.key);
    }
}

#[test]
fn a_value_never_defined_has_no_interval() {
    let r = bootstrap(&case("case_06.csv"), 1);
    let group = r.attribute("age_group").unwrap().group("80+").unwrap();
    let auc = group.metrics.iter().find(|m| m.key == "auc").unwrap();
    assert_eq!((auc.value, auc.ci), (None, None));
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["attributes"]["age_group"]["groups"]["80+"]["auc"]["ci"].is_null());
    assert_eq!(
        json["attributes"]["age_group"]["groups"]["80+"]["n"], 17,
        "counts stay plain"
    );
    assert_eq!(json["bootstrap"]["resamples"], 200);
    assert_eq!(json["overall"]["acc"]["ci"].as_array().unwrap().len(), 2);
}

#[test]
fn zero_resamples_is_an_error() {
    let p = case("case_01.csv");
    assert!(evaluate_with_bootstrap(&registry(), &p.as_set(), 0.5, 0, 0).is_err());
}
